/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-balloon over PCI with MSI-X, driven by the host test through the
 * control socket (tests/integration/test-vmm-balloon.cpp):
 *
 *   guest: touches BAL_PAGES pages with a pattern, prints "balloon: ready"
 *   host:  measures the guest RAM's resident size, `balloon SOCKET 16M`
 *   guest: config interrupt, num_pages 4096: inflates those pages, writes
 *          actual, prints "balloon: inflated N"
 *   host:  measures again (the pages must be gone), `balloon SOCKET 0`
 *   guest: deflates, checks the pages read back as zeros (the host really
 *          discarded them), touches them again, prints "balloon: retouched"
 *   host:  measures again, asks `balloon-stats` (the guest answers the
 *          stats request), and the guest finishes.
 *
 * The stats buffer is answered whenever the device returns it. Run with
 * --mem 64M --balloon --debug-exit --socket PATH.
 *
 * With `stats=mute` on the cmdline the guest queues its stats buffer once
 * and never answers a request for fresh ones (a silent driver: every
 * balloon-stats that waits for the guest waits its full timeout); it
 * prints "balloon: ready" and then only waits for a target. */

#include "virtio.h"

#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VEC_CONFIG 0x40
#define VEC_QUEUE 0x41
#define BAL_BASE 0x1000000ull   /* 16 MiB: off the image, stack and rings */
#define BAL_PAGES 4096u         /* 16 MiB */
#define PFNS_PER_BUF 256u
#define HOST_TIMEOUT_MS 120000  /* the host test drives the steps */

struct stat_entry {
        uint16_t tag;
        uint64_t value;
} __attribute__((packed));

static struct virtio_dev d;
static struct vq inflateq, deflateq, statsq;
static uint32_t pfns[PFNS_PER_BUF] __attribute__((aligned(64)));
static struct stat_entry stats[3] __attribute__((aligned(64)));
static volatile unsigned config_irqs;
static uint16_t stats_used_seen;
static unsigned stats_answers;
static bool stats_mute;

static void config_irq(struct irq_frame *f)
{
        config_irqs++;
        lapic_eoi();
}

static void queue_irq(struct irq_frame *f)
{
        lapic_eoi();
}

static uint32_t num_pages(void) { return mmio_read32(d.device + 0); }

/* §5.5.6.3: the device returns the buffer when it wants new numbers. */
static void stats_submit(void)
{
        stats[0] = (struct stat_entry) { .tag = 0, .value = stats_answers };            /* swap_in: a counter */
        stats[1] = (struct stat_entry) { .tag = 4, .value = 48ull << 20 };              /* free_memory */
        stats[2] = (struct stat_entry) { .tag = 5, .value = 64ull << 20 };              /* total_memory */
        statsq.desc[0] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) stats, .len = sizeof(stats) };
        vq_submit(&statsq, 0);
}

static void stats_service(void)
{
        if (stats_mute || statsq.used.idx == stats_used_seen)
                return;
        stats_used_seen = statsq.used.idx;
        stats_answers++;
        stats_submit();
}

static uint32_t want_pages;
static bool target_is_want(void)
{
        stats_service();
        return config_irqs > 0 && num_pages() == want_pages;
}

static unsigned answers_needed;
static bool stats_answered(void)
{
        stats_service();
        return stats_answers >= answers_needed;
}

static uint16_t used_want;
static struct vq *used_q;
static bool used_reached(void) { return used_q->used.idx == used_want; }

/* All BAL_PAGES pages through one queue, PFNS_PER_BUF per buffer. */
static bool send_pages(struct vq *q)
{
        for (uint32_t done = 0; done < BAL_PAGES; done += PFNS_PER_BUF) {
                for (uint32_t i = 0; i < PFNS_PER_BUF; i++)
                        pfns[i] = (uint32_t) (BAL_BASE / 4096) + done + i;
                q->desc[0] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) pfns, .len = sizeof(pfns) };
                used_q = q;
                used_want = (uint16_t) (q->used.idx + 1);
                vq_submit(q, 0);
                if (!wait_for(used_reached, 5000, false))
                        return false;
        }
        return true;
}

static void touch(uint8_t v)
{
        for (uint32_t i = 0; i < BAL_PAGES; i++)
                *(volatile uint64_t *) phys(BAL_BASE + 4096ull * i) = 0x0101010101010101ull * v;
}

static unsigned nonzero_pages(void)
{
        unsigned n = 0;

        for (uint32_t i = 0; i < BAL_PAGES; i++)
                n += *(volatile uint64_t *) phys(BAL_BASE + 4096ull * i) != 0;
        return n;
}

int main(void)
{
        bool ok;

        const char *mute = cmdline_get(boot_info.cmdline, "stats");

        stats_mute = mute && strncmp(mute, "mute", 4) == 0;
        lapic_init();
        timer_calibrate();
        irq_set_handler(VEC_CONFIG, config_irq);
        irq_set_handler(VEC_QUEUE, queue_irq);

        if (!virtio_probe(0x1045, &d)) {
                test_report("virtio-balloon-probe", false, "no 1af4:1045 with common and notify capabilities");
                test_finish();
        }
        test_report("virtio-balloon-probe", d.msix_cap != 0 && d.device != 0, "slot %u bar0 %lx", d.slot, d.bar[0]);

        if (!virtio_negotiate(&d, 1ull << VIRTIO_BALLOON_F_STATS_VQ)) {
                test_report("virtio-balloon-features", false, "FEATURES_OK did not stick");
                test_finish();
        }
        virtio_msix_route(&d, 0, VEC_CONFIG);
        virtio_msix_route(&d, 1, VEC_QUEUE);
        mmio_write16(d.common + VCOMMON_MSIX, 0);
        ok = virtio_setup_queue(&d, &inflateq, 0, 1) && virtio_setup_queue(&d, &deflateq, 1, 1) &&
             virtio_setup_queue(&d, &statsq, 2, 1);
        test_report("virtio-balloon-queues", ok && mmio_read16(d.common + VCOMMON_MSIX) == 0,
                    "inflateq, deflateq, statsq; config vector %u", mmio_read16(d.common + VCOMMON_MSIX));
        if (!ok)
                test_finish();
        virtio_driver_ok(&d);
        stats_submit();

        touch(0xa5);
        printf("balloon: ready\n");

        want_pages = BAL_PAGES;
        ok = wait_for(target_is_want, HOST_TIMEOUT_MS, true);
        test_report("virtio-balloon-target", ok, "num_pages %u after %u config interrupt(s)", num_pages(), config_irqs);
        if (!ok)
                test_finish();

        ok = send_pages(&inflateq);
        mmio_write32(d.device + 4, BAL_PAGES);
        test_report("virtio-balloon-inflate", ok && mmio_read32(d.device + 4) == BAL_PAGES,
                    "actual %u", mmio_read32(d.device + 4));
        printf("balloon: inflated %u\n", BAL_PAGES);

        config_irqs = 0;
        want_pages = 0;
        ok = wait_for(target_is_want, HOST_TIMEOUT_MS, true);
        ok = ok && send_pages(&deflateq);
        mmio_write32(d.device + 4, 0);
        test_report("virtio-balloon-deflate", ok, "num_pages %u, stats answered %u", num_pages(), stats_answers);

        /* Deflated pages were discarded by the host: fresh zero pages. */
        unsigned nz = nonzero_pages();
        test_report("virtio-balloon-pages-discarded", nz == 0, "%u of %u pages kept their old contents", nz, BAL_PAGES);
        touch(0x5a);
        printf("balloon: retouched\n");

        answers_needed = stats_answers + 1;
        ok = wait_for(stats_answered, HOST_TIMEOUT_MS, true);
        test_report("virtio-balloon-stats", ok, "%u stats request(s) answered", stats_answers);
        test_finish();
}
