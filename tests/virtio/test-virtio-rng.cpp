/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-rng through the harness (virtio 1.2 §5.4). */
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/virtio/harness.h"

extern "C" const VirtioDeviceOps virtio_rng_ops;

using harness::PciDriver;
using harness::VirtqDriver;

namespace {

constexpr uint64_t FEATURES = (UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << VIRTIO_F_EVENT_IDX) |
                              (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC);

class Rng : public ::testing::Test {
protected:
        void SetUp() override {
                ASSERT_EQ(d.error(), 0);
                ASSERT_TRUE(d.negotiate(FEATURES));
                d.setup_queue(0, q);
                d.driver_ok();
        }
        PciDriver d{ &virtio_rng_ops, nullptr };
        VirtqDriver q{ d.mem(), 0x10000, 64 };
};

static bool all_equal(const std::vector<uint8_t> &v) {
        for (uint8_t b : v)
                if (b != v[0])
                        return false;
        return true;
}

TEST(RngCreate, rng_refuses_an_argument) {
        PciDriver d(&virtio_rng_ops, "bogus");
        EXPECT_EQ(d.error(), -EINVAL);
}

TEST_F(Rng, rng_fills_a_writable_buffer_with_random_bytes) {
        uint16_t head = q.add_chain({ { 0x100000, 64, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        EXPECT_EQ(q.used(0).id, head);
        EXPECT_EQ(q.used(0).len, 64u);
        std::vector<uint8_t> got(64);
        ASSERT_EQ(guest_read(d.mem(), 0x100000, got.data(), got.size()), 0);
        EXPECT_FALSE(all_equal(got));
}

TEST_F(Rng, rng_fills_every_buffer_of_a_multi_segment_chain) {
        q.add_chain({ { 0x100000, 5000, true }, { 0x200000, 3, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        EXPECT_EQ(q.used(0).len, 5003u);
}

TEST_F(Rng, rng_serves_indirect_chains) {
        q.add_indirect(0x80000, { { 0x100000, 32, true }, { 0x101000, 32, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        EXPECT_EQ(q.used(0).len, 64u);
}

TEST_F(Rng, rng_returns_zero_bytes_for_a_read_only_chain) {
        q.add_chain({ { 0x100000, 16, false } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        EXPECT_EQ(q.used(0).len, 0u);
}

TEST_F(Rng, rng_serves_many_requests_in_order) {
        for (int i = 0; i < 40; i++)
                q.add_chain({ { 0x100000 + 0x1000 * (uint64_t) i, 16, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 40));
        for (uint16_t i = 0; i < 40; i++)
                EXPECT_EQ(q.used(i).len, 16u);
}

TEST_F(Rng, rng_marks_needs_reset_for_a_buffer_outside_ram) {
        q.add_chain({ { 1 * GiB, 16, true } });
        d.kick(0);
        EXPECT_TRUE(d.wait_status(VIRTIO_STATUS_NEEDS_RESET));
        EXPECT_EQ(q.used_idx(), 0);
}

TEST_F(Rng, rng_keeps_its_fds_listed) {
        int fds[16];
        EXPECT_GE(virtio_device_fds(d.device(), fds, 16), 3u);
}

} // namespace
