/* SPDX-License-Identifier: BSD-3-Clause */
/* The descriptor walker against good and hostile rings (virtio 1.2 §2.7). */
#include <gtest/gtest.h>

#include <cstring>

#include "tests/virtio/harness.h"

using harness::Buf;
using harness::VirtqDriver;

namespace {

constexpr uint64_t RING = 0x10000;
constexpr uint64_t DATA = 0x100000;
constexpr uint64_t TABLE = 0x80000;

class Walker : public ::testing::Test {
protected:
        void SetUp() override { make(16 * MiB, 16, true, true); }
        void TearDown() override {
                delete drv;
                guest_memory_free(mem);
        }
        void make(uint64_t mem_size, uint16_t size, bool event_idx, bool indirect) {
                delete drv;
                guest_memory_free(mem);
                ASSERT_EQ(guest_memory_new(mem_size, &mem), 0);
                drv = new VirtqDriver(mem, RING, size);
                q = {};
                q.max_size = 256;
                q.kick_fd = -1;
                virtq_reset(&q);
                drv->program(&q);
                ASSERT_EQ(virtq_enable(&q, mem, event_idx, indirect), 0);
        }
        /* Pops expecting a violation; the queue must then stay broken. */
        void expect_rejected() {
                EXPECT_EQ(virtq_pop(&q, chain), -EBADMSG);
                EXPECT_TRUE(q.broken);
                EXPECT_NE(q.error, nullptr);
                EXPECT_EQ(virtq_pop(&q, chain), -ESHUTDOWN);
        }

        GuestMemory *mem = nullptr;
        VirtqDriver *drv = nullptr;
        VirtQueue q{};
        VirtioChain *chain = new VirtioChain;
        ~Walker() override { delete chain; }
};

TEST_F(Walker, walker_returns_zero_when_nothing_is_available) {
        EXPECT_EQ(virtq_pop(&q, chain), 0);
        EXPECT_FALSE(q.broken);
}

TEST_F(Walker, walker_reads_readable_and_writes_writable_buffers) {
        const char msg[] = "hello, device";
        ASSERT_EQ(guest_write(mem, DATA, msg, sizeof(msg)), 0);
        uint16_t head = drv->add_chain({ { DATA, sizeof(msg), false }, { DATA + 0x1000, 8, true }, { DATA + 0x2000, 8, true } });

        ASSERT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(chain->head, head);
        EXPECT_EQ(chain->n_readable, 1u);
        EXPECT_EQ(chain->n_writable, 2u);
        char got[sizeof(msg)];
        ASSERT_EQ(virtio_reader_read(&chain->reader, got, sizeof(got)), 0);
        EXPECT_STREQ(got, msg);
        EXPECT_EQ(virtio_writer_remaining(&chain->writer), 16u);
        ASSERT_EQ(virtio_writer_write(&chain->writer, "0123456789abcdef", 16), 0);
        virtq_push(&q, chain, virtio_writer_written(&chain->writer));

        EXPECT_EQ(drv->used_idx(), 1);
        EXPECT_EQ(drv->used(0).id, head);
        EXPECT_EQ(drv->used(0).len, 16u);
        char out[17] = {};
        ASSERT_EQ(guest_read(mem, DATA + 0x1000, out, 8), 0);
        ASSERT_EQ(guest_read(mem, DATA + 0x2000, out + 8, 8), 0);
        EXPECT_STREQ(out, "0123456789abcdef");
}

TEST_F(Walker, reader_refuses_reads_past_the_chain_and_consumes_nothing) {
        drv->add_chain({ { DATA, 4, false } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        uint8_t buf[8];
        EXPECT_EQ(virtio_reader_read(&chain->reader, buf, 8), -EMSGSIZE);
        EXPECT_EQ(virtio_reader_remaining(&chain->reader), 4u);
}

TEST_F(Walker, writer_iov_points_into_guest_memory) {
        drv->add_chain({ { DATA, 100, true }, { DATA + 0x1000, 100, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        struct iovec iov[2];
        ASSERT_EQ(virtio_writer_iov(&chain->writer, 150, iov, 2), 2);
        EXPECT_EQ(iov[0].iov_len, 100u);
        EXPECT_EQ(iov[1].iov_len, 50u);
        EXPECT_EQ(virtio_writer_written(&chain->writer), 150u);
}

TEST_F(Walker, writer_iov_with_too_few_slots_consumes_nothing) {
        drv->add_chain({ { DATA, 100, true }, { DATA + 0x1000, 100, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        struct iovec iov[1];
        EXPECT_EQ(virtio_writer_iov(&chain->writer, 150, iov, 1), -E2BIG);
        EXPECT_EQ(virtio_writer_written(&chain->writer), 0u);
}

TEST_F(Walker, reader_iov_merges_buffers_contiguous_in_guest_memory) {
        drv->add_chain({ { DATA, 4096, false }, { DATA + 4096, 4096, false }, { DATA + 8192, 100, false } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        void *host;
        ASSERT_EQ(guest_slice(mem, DATA, 8292, &host), 0);
        struct iovec iov[1];
        ASSERT_EQ(virtio_reader_iov(&chain->reader, 8292, iov, 1), 1);
        EXPECT_EQ(iov[0].iov_base, host);
        EXPECT_EQ(iov[0].iov_len, 8292u);
        EXPECT_EQ(virtio_reader_remaining(&chain->reader), 0u);
}

TEST_F(Walker, writer_iov_merges_from_the_middle_of_a_buffer_and_stops_at_a_gap) {
        drv->add_chain({ { DATA, 100, true }, { DATA + 100, 100, true }, { DATA + 0x1000, 100, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        ASSERT_EQ(virtio_writer_zero(&chain->writer, 50), 0);
        struct iovec iov[2];
        ASSERT_EQ(virtio_writer_iov(&chain->writer, 200, iov, 2), 2);
        EXPECT_EQ(iov[0].iov_len, 150u);
        EXPECT_EQ(iov[1].iov_len, 50u);
        EXPECT_EQ(virtio_writer_written(&chain->writer), 250u);
}

TEST_F(Walker, writer_iov_does_not_merge_buffers_on_either_side_of_the_hole) {
        /* The last page below the hole and the first above it are adjacent
         * in the host mapping (one memfd), not in guest-physical memory. */
        make(GUEST_MMIO_HOLE_START + 64 * MiB, 16, true, true);
        drv->add_chain({ { GUEST_MMIO_HOLE_START - 4096, 4096, true }, { GUEST_MMIO_HOLE_END, 4096, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        struct iovec iov[2];
        ASSERT_EQ(virtio_writer_iov(&chain->writer, 8192, iov, 2), 2);
        EXPECT_EQ((uint8_t *) iov[0].iov_base + 4096, iov[1].iov_base);
        EXPECT_EQ(iov[0].iov_len, 4096u);
        EXPECT_EQ(iov[1].iov_len, 4096u);
        drv->add_chain({ { GUEST_MMIO_HOLE_START - 4096, 4096, true }, { GUEST_MMIO_HOLE_END, 4096, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(virtio_writer_iov(&chain->writer, 8192, iov, 1), -E2BIG);
        EXPECT_EQ(virtio_writer_written(&chain->writer), 0u);
}

TEST_F(Walker, walker_follows_an_indirect_table) {
        drv->add_indirect(TABLE, { { DATA, 16, false }, { DATA + 0x1000, 32, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(virtio_reader_remaining(&chain->reader), 16u);
        EXPECT_EQ(virtio_writer_remaining(&chain->writer), 32u);
}

TEST_F(Walker, walker_accepts_zero_length_buffers_and_skips_them) {
        drv->add_chain({ { DATA, 0, false }, { DATA + 0x1000, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(chain->n_readable, 0u);
        EXPECT_EQ(virtio_writer_remaining(&chain->writer), 8u);
}

TEST_F(Walker, walker_wraps_the_avail_index_around_65535) {
        drv->set_avail_idx(65535);
        q.next_avail = 65535;
        drv->set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
        drv->publish(0);
        drv->set_desc(1, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
        drv->publish(1);
        EXPECT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(virtq_pop(&q, chain), 0);
}

/* ---- every rule of §2.7 the driver can break ---- */

TEST_F(Walker, walker_rejects_head_index_out_of_range) {
        drv->publish(16);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_next_index_out_of_range) {
        drv->set_desc(0, DATA, 8, VIRTQ_DESC_F_NEXT, 16);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_descriptor_loop) {
        drv->set_desc(0, DATA, 8, VIRTQ_DESC_F_NEXT, 1);
        drv->set_desc(1, DATA, 8, VIRTQ_DESC_F_NEXT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_descriptor_pointing_at_itself) {
        drv->set_desc(3, DATA, 8, VIRTQ_DESC_F_NEXT, 3);
        drv->publish(3);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_loop_inside_indirect_table) {
        drv->write_desc_at(TABLE, 0, DATA, 8, VIRTQ_DESC_F_NEXT, 1);
        drv->write_desc_at(TABLE, 1, DATA, 8, VIRTQ_DESC_F_NEXT, 0);
        drv->set_desc(0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_readable_after_writable) {
        drv->add_chain({ { DATA, 8, true }, { DATA + 0x1000, 8, false } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_buffer_outside_ram) {
        drv->add_chain({ { 16 * MiB - 4, 8, false } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_buffer_in_the_mmio_hole) {
        drv->add_chain({ { GUEST_MMIO_HOLE_START + 0x1000, 8, true } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_buffer_straddling_the_hole) {
        /* RAM on both sides of the hole: 3 GiB below, some above. */
        make(GUEST_MMIO_HOLE_START + 64 * MiB, 16, true, true);
        drv->add_chain({ { GUEST_MMIO_HOLE_START - 4096, 8192, true } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_address_wrapping_u64) {
        drv->add_chain({ { UINT64_MAX - 3, 8, false } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_total_length_over_u32) {
        /* Three 2 GiB - 1 buffers, each inside a 8 GiB guest, sum > 2^32. */
        make(8 * GiB, 16, true, true);
        uint32_t len = 0x7fffffff;
        drv->add_chain({ { 4 * GiB, len, true }, { 4 * GiB, len, true }, { 4 * GiB, len, true } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_when_not_negotiated) {
        make(16 * MiB, 16, true, false);
        drv->add_indirect(TABLE, { { DATA, 16, true } });
        expect_rejected();
}

TEST_F(Walker, walker_rejects_nested_indirect_table) {
        drv->write_desc_at(TABLE, 0, TABLE + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
        drv->write_desc_at(TABLE + 0x1000, 0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
        drv->set_desc(0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_table_length_not_multiple_of_16) {
        drv->write_desc_at(TABLE, 0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
        drv->set_desc(0, TABLE, 20, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_table_of_length_zero) {
        drv->set_desc(0, TABLE, 0, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_table_longer_than_queue) {
        drv->set_desc(0, TABLE, 17 * 16, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_table_outside_ram) {
        drv->set_desc(0, 16 * MiB - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_next_past_table) {
        drv->write_desc_at(TABLE, 0, DATA, 8, VIRTQ_DESC_F_NEXT, 5);
        drv->set_desc(0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_indirect_with_next_flag) {
        drv->write_desc_at(TABLE, 0, DATA, 8, 0, 0);
        drv->set_desc(0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
        drv->publish(0);
        expect_rejected();
}

TEST_F(Walker, walker_rejects_avail_index_moved_more_than_queue_size) {
        drv->set_desc(0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
        drv->set_avail_idx(17);
        expect_rejected();
}

TEST_F(Walker, broken_queue_takes_no_push) {
        drv->publish(99);
        expect_rejected();
        virtq_push(&q, chain, 4);
        EXPECT_EQ(drv->used_idx(), 0);
}

/* ---- queue enable (§2.7, §4.1.4.3.2) ---- */

class QueueEnable : public ::testing::Test {
protected:
        void SetUp() override {
                ASSERT_EQ(guest_memory_new(16 * MiB, &mem), 0);
                q.max_size = 256;
                q.kick_fd = -1;
                virtq_reset(&q);
                q.size = 16;
                q.desc_gpa = 0x10000;
                q.avail_gpa = 0x11000;
                q.used_gpa = 0x12000;
        }
        void TearDown() override { guest_memory_free(mem); }
        GuestMemory *mem = nullptr;
        VirtQueue q{};
};

TEST_F(QueueEnable, queue_enable_accepts_a_good_queue) {
        EXPECT_EQ(virtq_enable(&q, mem, true, true), 0);
        EXPECT_TRUE(q.enabled);
}

TEST_F(QueueEnable, queue_enable_rejects_size_zero) {
        q.size = 0;
        EXPECT_EQ(virtq_enable(&q, mem, true, true), -EINVAL);
        EXPECT_FALSE(q.enabled);
}

TEST_F(QueueEnable, queue_enable_rejects_size_not_power_of_two) {
        q.size = 24;
        EXPECT_EQ(virtq_enable(&q, mem, true, true), -EINVAL);
}

TEST_F(QueueEnable, queue_enable_rejects_size_over_maximum) {
        q.size = 512;
        EXPECT_EQ(virtq_enable(&q, mem, true, true), -EINVAL);
}

TEST_F(QueueEnable, queue_enable_rejects_rings_outside_ram) {
        q.used_gpa = 16 * MiB - 8;
        EXPECT_EQ(virtq_enable(&q, mem, true, true), -EFAULT);
        EXPECT_FALSE(q.enabled);
}

TEST_F(QueueEnable, queue_enable_rejects_misaligned_descriptor_table) {
        q.desc_gpa = 0x10008;
        EXPECT_EQ(virtq_enable(&q, mem, true, true), -EFAULT);
}

/* ---- notification suppression (§2.7.7, §2.7.10) ---- */

TEST_F(Walker, event_idx_interrupts_only_when_used_event_is_crossed) {
        drv->set_used_event(5);
        for (int i = 0; i < 3; i++)
                drv->add_chain({ { DATA, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_TRUE(virtq_should_interrupt(&q)); /* the first one always */
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_FALSE(virtq_should_interrupt(&q)); /* used idx 2, event 5 */
        drv->set_used_event(2);
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_TRUE(virtq_should_interrupt(&q)); /* 2 -> 3 crosses event 2 */
}

TEST_F(Walker, event_idx_publishes_avail_event_when_the_queue_runs_dry) {
        drv->add_chain({ { DATA, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        EXPECT_EQ(virtq_pop(&q, chain), 0);
        EXPECT_EQ(drv->avail_event(), 1);
}

TEST_F(Walker, no_interrupt_flag_suppresses_interrupts_without_event_idx) {
        make(16 * MiB, 16, false, true);
        drv->set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
        drv->add_chain({ { DATA, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_FALSE(virtq_should_interrupt(&q));
}

TEST_F(Walker, no_interrupt_without_new_used_buffers) {
        make(16 * MiB, 16, false, true);
        drv->add_chain({ { DATA, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_TRUE(virtq_should_interrupt(&q));
        EXPECT_FALSE(virtq_should_interrupt(&q));
}

} // namespace

/* A back-end (or device) that asks after a turn that used nothing, as one
 * starting its ring does, raises no interrupt, with or without EVENT_IDX;
 * the first buffer used still interrupts. */
TEST_F(Walker, no_interrupt_before_anything_was_used) {
        EXPECT_FALSE(virtq_should_interrupt(&q));
        drv->add_chain({ { DATA, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_TRUE(virtq_should_interrupt(&q));
}

TEST_F(Walker, no_interrupt_before_anything_was_used_without_event_idx) {
        make(16 * MiB, 16, false, true);
        EXPECT_FALSE(virtq_should_interrupt(&q));
        drv->add_chain({ { DATA, 8, true } });
        ASSERT_EQ(virtq_pop(&q, chain), 1);
        virtq_push(&q, chain, 0);
        EXPECT_TRUE(virtq_should_interrupt(&q));
}
