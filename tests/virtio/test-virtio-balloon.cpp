/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-balloon through the harness (virtio 1.2 §5.5): inflate/deflate
 * really free memfd pages, the stats protocol, free page reporting, and the
 * bad input a guest can send. */
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <unistd.h>
#include <vector>

#include "vmm/devices/virtio-balloon.h"
#include "tests/virtio/harness.h"

using harness::PciDriver;
using harness::VirtqDriver;

namespace {

constexpr uint64_t bit(unsigned b) { return UINT64_C(1) << b; }

constexpr uint64_t BASE = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC);
constexpr uint64_t STATS = bit(VIRTIO_BALLOON_F_STATS_VQ);
constexpr uint64_t TELL = bit(VIRTIO_BALLOON_F_MUST_TELL_HOST);
constexpr uint64_t REPORTING = bit(VIRTIO_BALLOON_F_PAGE_REPORTING);
constexpr uint64_t PAGE = VIRTIO_BALLOON_PAGE_SIZE;

constexpr uint64_t PFN_BUF = 0x90000;   /* where the driver writes its PFN arrays */
constexpr uint64_t STATS_BUF = 0x98000;
constexpr uint64_t DATA = 0x400000;     /* pages given to the balloon */

/* Whether the memfd has a hole at off (the page really went back). */
bool is_hole(const GuestMemory *m, uint64_t off) {
        off_t h = lseek(m->memfd, (off_t) off, SEEK_HOLE);
        return h == (off_t) off;
}

void fill(GuestMemory *m, uint64_t gpa, uint64_t len, uint8_t v) {
        std::vector<uint8_t> b(len, v);
        ASSERT_EQ(guest_write(m, gpa, b.data(), b.size()), 0);
}

bool all_zero(GuestMemory *m, uint64_t gpa, uint64_t len) {
        std::vector<uint8_t> b(len);
        if (guest_read(m, gpa, b.data(), b.size()) < 0)
                return false;
        for (uint8_t c : b)
                if (c)
                        return false;
        return true;
}

struct Stat {
        uint16_t tag;
        uint64_t value;
};

/* Packed 10-byte entries (§5.5.6.3). */
std::vector<uint8_t> stats_bytes(const std::vector<Stat> &stats) {
        std::vector<uint8_t> b(stats.size() * 10);
        for (size_t i = 0; i < stats.size(); i++) {
                memcpy(&b[i * 10], &stats[i].tag, 2);
                memcpy(&b[i * 10 + 2], &stats[i].value, 8);
        }
        return b;
}

class Balloon : public ::testing::Test {
protected:
        void start(uint64_t features = BASE | STATS | TELL) {
                ASSERT_EQ(d.error(), 0);
                ASSERT_TRUE(d.negotiate(features));
                d.setup_queue(0, inflate);
                d.setup_queue(1, deflate);
                if (features & STATS)
                        d.setup_queue(2, stats);
                d.driver_ok();
        }

        /* One buffer of PFNs on queue q (inflate 0, deflate 1); waits for it. */
        void send_pfns(VirtqDriver &q, unsigned index, const std::vector<uint32_t> &pfns, uint32_t len = UINT32_MAX) {
                uint16_t want = (uint16_t) (q.used_idx() + 1);
                if (len == UINT32_MAX)
                        len = (uint32_t) (pfns.size() * 4);
                ASSERT_EQ(guest_write(d.mem(), PFN_BUF, pfns.data(), pfns.size() * 4), 0);
                q.add_chain({ { PFN_BUF, len, false } });
                d.kick(index);
                ASSERT_TRUE(d.wait_used(q, want));
        }

        void send_stats(const std::vector<uint8_t> &bytes, uint64_t gpa = STATS_BUF) {
                ASSERT_EQ(guest_write(d.mem(), gpa, bytes.data(), bytes.size()), 0);
                stats.add_chain({ { gpa, (uint32_t) bytes.size(), false } });
                d.kick(2);
        }

        VirtioBalloonCounters counters() {
                VirtioBalloonCounters c;
                virtio_balloon_get_counters(d.device(), &c);
                return c;
        }

        VirtioBalloonInfo info(int timeout_ms = 0) {
                VirtioBalloonInfo i = {};
                EXPECT_EQ(virtio_balloon_get_info(d.device(), timeout_ms, &i), 0);
                return i;
        }

        /* Waits until the worker has taken n stats buffers. */
        bool wait_counters(bool (*cond)(const VirtioBalloonCounters &, const VirtioBalloonInfo &)) {
                for (int i = 0; i < 2000; i++) {
                        if (cond(counters(), info()))
                                return true;
                        usleep(1000);
                }
                return false;
        }

        uint32_t config(unsigned off) { return (uint32_t) d.bar_read(VIRTIO_PCI_DEVICE_OFF + off, 4); }

        PciDriver d{ &virtio_balloon_ops, nullptr };
        VirtqDriver inflate{ d.mem(), 0x10000, 64 };
        VirtqDriver deflate{ d.mem(), 0x20000, 64 };
        VirtqDriver stats{ d.mem(), 0x30000, 64 };
};

uint32_t pfn(uint64_t gpa) { return (uint32_t) (gpa / PAGE); }

} // namespace

TEST(BalloonCreate, balloon_offers_stats_and_must_tell_host_by_default) {
        PciDriver d(&virtio_balloon_ops, nullptr);
        ASSERT_EQ(d.error(), 0);
        uint64_t f = virtio_device_offered(d.device());
        EXPECT_TRUE(f & STATS);
        EXPECT_TRUE(f & TELL);
        EXPECT_FALSE(f & bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
        EXPECT_FALSE(f & REPORTING);
        EXPECT_FALSE(f & bit(VIRTIO_BALLOON_F_FREE_PAGE_HINT));
}

TEST(BalloonCreate, balloon_options_add_deflate_on_oom_and_page_reporting) {
        PciDriver d(&virtio_balloon_ops, "deflate-on-oom,page-reporting");
        ASSERT_EQ(d.error(), 0);
        uint64_t f = virtio_device_offered(d.device());
        EXPECT_TRUE(f & bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
        EXPECT_TRUE(f & REPORTING);
}

TEST(BalloonCreate, balloon_refuses_an_unknown_option) {
        PciDriver d(&virtio_balloon_ops, "deflate-on-oom,bogus");
        EXPECT_EQ(d.error(), -EINVAL);
}

TEST_F(Balloon, balloon_target_shows_in_num_pages) {
        start();
        ASSERT_EQ(virtio_balloon_set_target(d.device(), 8 * MiB + 100), 0);
        EXPECT_EQ(config(0), 8 * MiB / PAGE);
        EXPECT_EQ(info().target_bytes, 8 * MiB);
}

TEST_F(Balloon, balloon_target_over_ram_is_refused) {
        start();
        EXPECT_EQ(virtio_balloon_set_target(d.device(), 17 * MiB), -EINVAL);
        EXPECT_EQ(config(0), 0u);
}

TEST_F(Balloon, balloon_driver_writes_actual_but_not_num_pages) {
        start();
        ASSERT_EQ(virtio_balloon_set_target(d.device(), 4 * MiB), 0);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 0, 4, 7);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 4, 4, 1024);
        EXPECT_EQ(config(0), 1024u);
        EXPECT_EQ(config(4), 1024u);
        EXPECT_EQ(info().actual_bytes, 4 * MiB);
}

TEST_F(Balloon, balloon_tells_the_vm_when_actual_reaches_the_target_and_only_then) {
        start();
        int told = 0;
        virtio_device_set_status_notify(d.device(), [](void *ctx) { ++*static_cast<int *>(ctx); }, &told);
        ASSERT_EQ(virtio_balloon_set_target(d.device(), 4 * MiB), 0);
        EXPECT_EQ(told, 0);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 4, 4, 512);         /* on its way */
        EXPECT_EQ(told, 0);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 4, 4, 1024);        /* there */
        EXPECT_EQ(told, 1);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 4, 4, 1024);        /* the same again */
        EXPECT_EQ(told, 1);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 0, 4, 7);           /* num_pages is not the driver's */
        EXPECT_EQ(told, 1);
        /* A target the driver holds already is reached at once. */
        ASSERT_EQ(virtio_balloon_set_target(d.device(), 4 * MiB), 0);
        EXPECT_EQ(told, 2);
}

TEST_F(Balloon, balloon_inflate_punches_the_pages_out_of_the_memfd) {
        start();
        fill(d.mem(), DATA, 4 * PAGE, 0xaa);
        ASSERT_FALSE(is_hole(d.mem(), DATA));

        send_pfns(inflate, 0, { pfn(DATA), pfn(DATA) + 1, pfn(DATA) + 3 });

        EXPECT_TRUE(is_hole(d.mem(), DATA));
        EXPECT_TRUE(is_hole(d.mem(), DATA + PAGE));
        EXPECT_FALSE(is_hole(d.mem(), DATA + 2 * PAGE));
        EXPECT_TRUE(is_hole(d.mem(), DATA + 3 * PAGE));
        EXPECT_TRUE(all_zero(d.mem(), DATA, PAGE));
        EXPECT_TRUE(virtio_balloon_page_inflated(d.device(), pfn(DATA)));
        EXPECT_FALSE(virtio_balloon_page_inflated(d.device(), pfn(DATA) + 2));
        EXPECT_EQ(info().inflated_bytes, 3 * PAGE);
        EXPECT_EQ(inflate.used(0).len, 0u);
}

TEST_F(Balloon, balloon_deflate_returns_pages_to_the_guest) {
        start();
        send_pfns(inflate, 0, { pfn(DATA), pfn(DATA) + 1 });
        send_pfns(deflate, 1, { pfn(DATA) });

        EXPECT_FALSE(virtio_balloon_page_inflated(d.device(), pfn(DATA)));
        EXPECT_TRUE(virtio_balloon_page_inflated(d.device(), pfn(DATA) + 1));
        EXPECT_EQ(info().inflated_bytes, PAGE);
        /* The guest may write the page again; it is fresh memory. */
        fill(d.mem(), DATA, PAGE, 0x55);
        EXPECT_FALSE(is_hole(d.mem(), DATA));
}

TEST_F(Balloon, balloon_ignores_pfns_outside_ram_and_keeps_the_good_ones) {
        start();
        send_pfns(inflate, 0, { pfn(16 * MiB), UINT32_MAX, pfn(DATA) });

        VirtioBalloonCounters c = counters();
        EXPECT_EQ(c.bad_pfns, 2u);
        EXPECT_EQ(c.pages_inflated, 1u);
        EXPECT_TRUE(virtio_balloon_page_inflated(d.device(), pfn(DATA)));
        EXPECT_EQ(virtio_device_status(d.device()) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

TEST_F(Balloon, balloon_ignores_a_buffer_whose_length_is_not_a_multiple_of_4) {
        start();
        send_pfns(inflate, 0, { pfn(DATA), pfn(DATA) + 1 }, 6);

        EXPECT_EQ(counters().bad_lengths, 1u);
        EXPECT_EQ(counters().pages_inflated, 0u);
        EXPECT_FALSE(virtio_balloon_page_inflated(d.device(), pfn(DATA)));
}

TEST_F(Balloon, balloon_deflating_a_page_never_inflated_is_counted_and_harmless) {
        start();
        fill(d.mem(), DATA, PAGE, 0xaa);
        send_pfns(deflate, 1, { pfn(DATA) });

        EXPECT_EQ(counters().deflated_not_inflated, 1u);
        EXPECT_EQ(info().inflated_bytes, 0u);
        EXPECT_FALSE(all_zero(d.mem(), DATA, PAGE));
}

TEST_F(Balloon, balloon_inflating_a_page_twice_counts_it_once) {
        start();
        send_pfns(inflate, 0, { pfn(DATA), pfn(DATA) });
        send_pfns(inflate, 0, { pfn(DATA) });
        EXPECT_EQ(info().inflated_bytes, PAGE);
}

TEST_F(Balloon, balloon_reset_empties_the_balloon_and_keeps_the_target) {
        start();
        ASSERT_EQ(virtio_balloon_set_target(d.device(), 2 * MiB), 0);
        send_pfns(inflate, 0, { pfn(DATA) });
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 4, 4, 1);

        d.common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);

        EXPECT_FALSE(virtio_balloon_page_inflated(d.device(), pfn(DATA)));
        EXPECT_EQ(info().inflated_bytes, 0u);
        EXPECT_EQ(info().actual_bytes, 0u);
        EXPECT_EQ(info().target_bytes, 2 * MiB);
}

TEST_F(Balloon, balloon_notify_on_a_queue_of_a_feature_not_negotiated_needs_reset) {
        ASSERT_TRUE(d.negotiate(BASE));
        d.setup_queue(0, inflate);
        d.setup_queue(1, deflate);
        d.setup_queue(2, stats);
        d.driver_ok();
        send_stats(stats_bytes({ { 4, 1 } }));
        EXPECT_TRUE(d.wait_status(VIRTIO_STATUS_NEEDS_RESET));
}

/* ---- stats (§5.5.6.3) ---- */

TEST_F(Balloon, balloon_keeps_the_stats_the_driver_sends) {
        start();
        send_stats(stats_bytes({ { 4, 100 * MiB }, { 5, 256 * MiB }, { 0, 7 } }));
        ASSERT_TRUE(wait_counters([](const VirtioBalloonCounters &, const VirtioBalloonInfo &i) { return i.stats_valid; }));

        VirtioBalloonInfo i = info();
        ASSERT_EQ(i.n_stats, 3u);
        EXPECT_EQ(i.stats[0].tag, 0);
        EXPECT_EQ(i.stats[0].value, 7u);
        EXPECT_EQ(i.stats[1].tag, 4);
        EXPECT_EQ(i.stats[1].value, 100 * MiB);
        EXPECT_EQ(i.stats[2].tag, 5);
        /* §5.5.6.3: the device holds the buffer until it wants new stats. */
        EXPECT_EQ(stats.used_idx(), 0);
}

TEST_F(Balloon, balloon_ignores_unknown_stat_tags) {
        start();
        send_stats(stats_bytes({ { 4, 1 }, { 16, 2 }, { 0xffff, 3 } }));
        ASSERT_TRUE(wait_counters([](const VirtioBalloonCounters &, const VirtioBalloonInfo &i) { return i.stats_valid; }));
        EXPECT_EQ(info().n_stats, 1u);
        EXPECT_EQ(counters().unknown_stat_tags, 2u);
}

TEST_F(Balloon, balloon_ignores_a_stats_buffer_not_a_multiple_of_10_bytes) {
        start();
        std::vector<uint8_t> b = stats_bytes({ { 4, 1 } });
        b.push_back(0);
        send_stats(b);
        ASSERT_TRUE(wait_counters([](const VirtioBalloonCounters &c, const VirtioBalloonInfo &) { return c.bad_stats == 1; }));
        EXPECT_EQ(info().n_stats, 0u);
        EXPECT_EQ(virtio_device_status(d.device()) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

TEST_F(Balloon, balloon_reads_at_most_the_entry_limit_of_an_oversized_stats_buffer) {
        start();
        std::vector<Stat> many;
        for (unsigned i = 0; i < VIRTIO_BALLOON_STATS_MAX_ENTRIES + 36; i++)
                many.push_back({ (uint16_t) (i % VIRTIO_BALLOON_S_NR), i });
        send_stats(stats_bytes(many));
        ASSERT_TRUE(wait_counters([](const VirtioBalloonCounters &, const VirtioBalloonInfo &i) { return i.stats_valid; }));

        EXPECT_EQ(counters().stats_entries_dropped, 36u);
        VirtioBalloonInfo i = info();
        EXPECT_EQ(i.n_stats, (unsigned) VIRTIO_BALLOON_S_NR);
        /* Repeated tags: the last one read wins (entry 63 has tag 15). */
        EXPECT_EQ(i.stats[15].value, VIRTIO_BALLOON_STATS_MAX_ENTRIES - 1u);
}

TEST_F(Balloon, balloon_asks_the_guest_for_fresh_stats_by_returning_its_buffer) {
        start();
        send_stats(stats_bytes({ { 4, 1 } }));
        ASSERT_TRUE(wait_counters([](const VirtioBalloonCounters &, const VirtioBalloonInfo &i) { return i.stats_valid; }));

        auto pending = std::async(std::launch::async, [&] { return info(2000); });
        /* The driver sees its buffer come back and sends new numbers. */
        ASSERT_TRUE(d.wait_used(stats, 1));
        EXPECT_EQ(stats.used(0).len, 0u);
        send_stats(stats_bytes({ { 4, 2 } }), STATS_BUF + 0x100);

        VirtioBalloonInfo i = pending.get();
        EXPECT_TRUE(i.stats_fresh);
        ASSERT_EQ(i.n_stats, 1u);
        EXPECT_EQ(i.stats[0].value, 2u);
}

TEST_F(Balloon, balloon_stats_fall_back_to_the_last_ones_when_the_guest_is_silent) {
        start();
        send_stats(stats_bytes({ { 4, 1 } }));
        ASSERT_TRUE(wait_counters([](const VirtioBalloonCounters &, const VirtioBalloonInfo &i) { return i.stats_valid; }));

        VirtioBalloonInfo i = info(100);

        EXPECT_FALSE(i.stats_fresh);
        EXPECT_TRUE(i.stats_valid);
        ASSERT_EQ(i.n_stats, 1u);
        EXPECT_EQ(i.stats[0].value, 1u);
}

TEST_F(Balloon, balloon_stats_without_a_stats_queue_answer_at_once) {
        start(BASE | TELL);
        VirtioBalloonInfo i = info(2000);
        EXPECT_FALSE(i.stats_valid);
        EXPECT_FALSE(i.stats_fresh);
}

/* ---- free page reporting (§5.5.6.7) ---- */

class BalloonReporting : public Balloon {
protected:
        void start_reporting(unsigned reporting_index) {
                ASSERT_EQ(r.error(), 0);
                ASSERT_TRUE(r.negotiate(BASE | STATS | REPORTING));
                r.setup_queue(0, q0);
                r.setup_queue(1, q1);
                r.setup_queue(2, q2);
                r.setup_queue(reporting_index, rq);
                r.driver_ok();
        }
        PciDriver r{ &virtio_balloon_ops, "page-reporting" };
        VirtqDriver q0{ r.mem(), 0x10000, 64 };
        VirtqDriver q1{ r.mem(), 0x20000, 64 };
        VirtqDriver q2{ r.mem(), 0x30000, 64 };
        VirtqDriver rq{ r.mem(), 0x40000, 64 };
};

TEST_F(BalloonReporting, balloon_reported_free_pages_are_punched_on_queue_3_as_linux_numbers_it) {
        start_reporting(3);
        fill(r.mem(), DATA, 2 * MiB, 0xaa);
        rq.add_chain({ { DATA, (uint32_t) (2 * MiB), true } });
        r.kick(3);
        ASSERT_TRUE(r.wait_used(rq, 1));

        EXPECT_TRUE(is_hole(r.mem(), DATA));
        EXPECT_TRUE(is_hole(r.mem(), DATA + 2 * MiB - PAGE));
        VirtioBalloonCounters c;
        virtio_balloon_get_counters(r.device(), &c);
        EXPECT_EQ(c.reported_bytes, 2 * MiB);
        /* Reported pages are not in the balloon: the guest uses them freely. */
        EXPECT_FALSE(virtio_balloon_page_inflated(r.device(), pfn(DATA)));
}

TEST_F(BalloonReporting, balloon_reporting_queue_also_works_at_the_spec_index_4) {
        start_reporting(4);
        fill(r.mem(), DATA, PAGE, 0xaa);
        rq.add_chain({ { DATA, (uint32_t) PAGE, true } });
        r.kick(4);
        ASSERT_TRUE(r.wait_used(rq, 1));
        EXPECT_TRUE(is_hole(r.mem(), DATA));
}

TEST_F(BalloonReporting, balloon_reporting_leaves_partial_pages_alone) {
        start_reporting(3);
        fill(r.mem(), DATA, 3 * PAGE, 0xaa);
        rq.add_chain({ { DATA + 100, (uint32_t) (2 * PAGE), true } });
        r.kick(3);
        ASSERT_TRUE(r.wait_used(rq, 1));
        EXPECT_FALSE(is_hole(r.mem(), DATA));
        EXPECT_TRUE(is_hole(r.mem(), DATA + PAGE));
        EXPECT_FALSE(is_hole(r.mem(), DATA + 2 * PAGE));
}

TEST_F(BalloonReporting, balloon_reporting_buffer_outside_ram_needs_reset_and_frees_nothing) {
        start_reporting(3);
        fill(r.mem(), DATA, PAGE, 0xaa);
        rq.add_chain({ { DATA, (uint32_t) PAGE, true }, { 16 * MiB, (uint32_t) PAGE, true } });
        r.kick(3);
        EXPECT_TRUE(r.wait_status(VIRTIO_STATUS_NEEDS_RESET));
        EXPECT_FALSE(is_hole(r.mem(), DATA));
}

/* ---- guest RAM above the MMIO hole ---- */

TEST(BalloonHighMemory, balloon_refuses_pfns_in_the_mmio_hole_and_punches_ram_above_it) {
        /* 3 GiB below the hole, 16 MiB above: sparse, nothing is touched. */
        PciDriver d(&virtio_balloon_ops, nullptr, 3 * GiB + 16 * MiB);
        ASSERT_EQ(d.error(), 0);
        VirtqDriver inflate{ d.mem(), 0x10000, 64 };
        VirtqDriver deflate{ d.mem(), 0x20000, 64 };
        ASSERT_TRUE(d.negotiate(BASE | TELL));
        d.setup_queue(0, inflate);
        d.setup_queue(1, deflate);
        d.driver_ok();
        uint64_t high = GUEST_MMIO_HOLE_END + MiB;
        fill(d.mem(), high, PAGE, 0xaa);
        std::vector<uint32_t> pfns = { pfn(GUEST_MMIO_HOLE_START), pfn(GUEST_MMIO_HOLE_END - PAGE), pfn(high) };
        ASSERT_EQ(guest_write(d.mem(), PFN_BUF, pfns.data(), 12), 0);

        inflate.add_chain({ { PFN_BUF, 12, false } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(inflate, 1));

        VirtioBalloonCounters c;
        virtio_balloon_get_counters(d.device(), &c);
        EXPECT_EQ(c.bad_pfns, 2u);
        EXPECT_TRUE(virtio_balloon_page_inflated(d.device(), pfn(high)));
        /* Above the hole, RAM sits at memfd offset 3 GiB + (gpa - 4 GiB). */
        EXPECT_TRUE(is_hole(d.mem(), 3 * GiB + MiB));
        EXPECT_TRUE(all_zero(d.mem(), high, PAGE));
}
