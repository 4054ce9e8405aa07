/* SPDX-License-Identifier: BSD-3-Clause */
#include <gtest/gtest.h>

#include "vmm/memory.h"

TEST(GuestMemory, RejectsZeroUnalignedAndHugeSizes) {
        GuestMemory *m = nullptr;

        EXPECT_EQ(guest_memory_new(0, &m), -EINVAL);
        EXPECT_EQ(guest_memory_new(MiB + 4096, &m), -EINVAL);
        EXPECT_EQ(guest_memory_new(GUEST_MEM_MAX + MiB, &m), -EINVAL);
        EXPECT_EQ(m, nullptr);
}

TEST(GuestMemory, SmallRamIsOneRegionFromZero) {
        GuestMemory *m = nullptr;

        ASSERT_EQ(guest_memory_new(16 * MiB, &m), 0);
        EXPECT_EQ(m->n_regions, 1u);
        EXPECT_EQ(guest_memory_end(m), 16 * MiB);
        guest_memory_free(m);
}

TEST(GuestMemory, RamAboveTheHoleStartsAt4G) {
        GuestMemory *m = nullptr;

        ASSERT_EQ(guest_memory_new(4 * GiB, &m), 0);
        ASSERT_EQ(m->n_regions, 2u);
        EXPECT_EQ(m->regions[0].size, GUEST_MMIO_HOLE_START);
        EXPECT_EQ(m->regions[1].gpa, GUEST_MMIO_HOLE_END);
        EXPECT_EQ(guest_memory_end(m), GUEST_MMIO_HOLE_END + GiB);
        /* Straddling the hole is refused even though both ends are RAM. */
        EXPECT_EQ(guest_range_check(m, GUEST_MMIO_HOLE_START - 8, 16), -EFAULT);
        EXPECT_EQ(guest_range_check(m, GUEST_MMIO_HOLE_START, 1), -EFAULT);
        EXPECT_EQ(guest_range_check(m, GUEST_MMIO_HOLE_END, 16), 0);
        guest_memory_free(m);
}

TEST(GuestMemory, ReadWriteRoundTripAndBounds) {
        GuestMemory *m = nullptr;
        char buf[8] = {};

        ASSERT_EQ(guest_memory_new(MiB, &m), 0);
        ASSERT_EQ(guest_write(m, 0x1000, "majordo", 8), 0);
        ASSERT_EQ(guest_read(m, 0x1000, buf, 8), 0);
        EXPECT_STREQ(buf, "majordo");
        EXPECT_EQ(guest_read(m, MiB - 4, buf, 8), -EFAULT);
        EXPECT_EQ(guest_write(m, MiB, buf, 1), -EFAULT);
        EXPECT_EQ(guest_range_check(m, UINT64_MAX - 2, 8), -EFAULT) << "wrapping range";
        EXPECT_EQ(guest_range_check(m, MiB - 1, 1), 0);
        guest_memory_free(m);
}
