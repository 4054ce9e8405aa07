/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block over PCI with MSI-X: find 1af4:1042, negotiate FLUSH and
 * DISCARD, write a pattern to sectors 2-3, flush, read it back, discard
 * sector 8-15 and read zeroes (run on a sparse image), then print
 * "virtio-block: resize me" and wait for the host to grow the disk through
 * the control socket: a config-change interrupt and a larger capacity.
 * Run with --block IMG,sparse=true --debug-exit; the host checks the image
 * file afterwards (the pattern at byte 1024). */

#include "virtio.h"

#define VEC_QUEUE 0x40
#define VEC_CONFIG 0x41
#define TIMEOUT_MS 3000
#define RESIZE_TIMEOUT_MS 60000

#define F_FLUSH 9
#define F_DISCARD 13

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_DISCARD 11

struct req_hdr {
        uint32_t type, ioprio;
        uint64_t sector;
};

struct discard_seg {
        uint64_t sector;
        uint32_t num_sectors, flags;
};

static struct vq q;
static struct req_hdr hdr __attribute__((aligned(16)));
static struct discard_seg seg __attribute__((aligned(16)));
static uint8_t data[1024] __attribute__((aligned(512)));
static volatile uint8_t status;
static volatile unsigned queue_irqs, config_irqs;

static void queue_irq(struct irq_frame *f)
{
        queue_irqs++;
        lapic_eoi();
}

static void config_irq(struct irq_frame *f)
{
        config_irqs++;
        lapic_eoi();
}

static unsigned want_used, want_irqs;
/* Done when the request is used and its MSI-X interrupt has arrived
 * (no EVENT_IDX: one interrupt per used buffer). */
static bool used_done(void) { return q.used.idx == want_used && queue_irqs >= want_irqs; }
static bool config_changed(void) { return config_irqs > 0; }

/* One request: header, optional data (in or out), status. Returns the
 * status byte, or 0xff when the device did not answer. */
static uint8_t request(uint32_t type, uint64_t sector, void *buf, uint32_t len, bool device_writes)
{
        unsigned n = 0;

        hdr = (struct req_hdr) { .type = type, .sector = sector };
        status = 0xee;
        q.desc[n] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) &hdr, .len = sizeof(hdr),
                                          .flags = VRING_DESC_F_NEXT, .next = (uint16_t) (n + 1) };
        n++;
        if (len) {
                q.desc[n] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) buf, .len = len,
                                                  .flags = VRING_DESC_F_NEXT | (device_writes ? VRING_DESC_F_WRITE : 0),
                                                  .next = (uint16_t) (n + 1) };
                n++;
        }
        q.desc[n] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) &status, .len = 1,
                                          .flags = VRING_DESC_F_WRITE };
        want_used = (uint16_t) (q.used.idx + 1);
        want_irqs = queue_irqs + 1;
        vq_submit(&q, 0);
        sti();
        bool ok = wait_for(used_done, TIMEOUT_MS, false);
        cli();
        return ok ? status : 0xff;
}

static uint64_t capacity(struct virtio_dev *d)
{
        volatile uint32_t *c = (volatile uint32_t *) (uintptr_t) d->device;

        return c[0] | (uint64_t) c[1] << 32;
}

int main(void)
{
        struct virtio_dev d;
        uint64_t cap0, cap1;
        uint8_t st;
        bool ok;

        lapic_init();
        irq_set_handler(VEC_QUEUE, queue_irq);
        irq_set_handler(VEC_CONFIG, config_irq);

        if (!virtio_probe(0x1042, &d)) {
                test_report("virtio-block-probe", false, "no 1af4:1042 with common and notify capabilities");
                test_finish();
        }
        test_report("virtio-block-probe", d.msix_cap != 0, "slot %u bar0 %lx", d.slot, d.bar[0]);

        if (!virtio_negotiate(&d, (1ull << F_FLUSH) | (1ull << F_DISCARD))) {
                test_report("virtio-block-features", false, "FEATURES_OK did not stick");
                test_finish();
        }
        virtio_msix_route(&d, 0, VEC_QUEUE);
        virtio_msix_route(&d, 1, VEC_CONFIG);
        mmio_write16(d.common + VCOMMON_MSIX, 1);
        if (!virtio_setup_queue(&d, &q, 0, 0)) {
                test_report("virtio-block-queue", false, "queue 0 could not be set up");
                test_finish();
        }
        virtio_driver_ok(&d);
        cap0 = capacity(&d);
        test_report("virtio-block-capacity", cap0 > 16, "%lu sectors", cap0);

        for (unsigned i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 13 + 5);
        st = request(T_OUT, 2, data, sizeof(data), false);
        test_report("virtio-block-write", st == 0 && queue_irqs > 0, "status %u, %u interrupt(s)", st, queue_irqs);
        st = request(T_FLUSH, 0, 0, 0, false);
        test_report("virtio-block-flush", st == 0, "status %u", st);

        memset(data, 0, sizeof(data));
        st = request(T_IN, 2, data, sizeof(data), true);
        ok = st == 0;
        for (unsigned i = 0; i < sizeof(data) && ok; i++)
                ok = data[i] == (uint8_t) (i * 13 + 5);
        test_report("virtio-block-read-back", ok, "status %u first bytes %02x %02x", st, data[0], data[1]);

        seg = (struct discard_seg) { .sector = 8, .num_sectors = 8 };
        st = request(T_DISCARD, 0, &seg, sizeof(seg), false);
        memset(data, 0xff, sizeof(data));
        uint8_t st2 = request(T_IN, 8, data, 512, true);
        ok = st == 0 && st2 == 0;
        for (unsigned i = 0; i < 512 && ok; i++)
                ok = data[i] == 0;
        test_report("virtio-block-discard", ok, "status %u, read status %u, byte %02x", st, st2, data[0]);

        st = request(T_IN, cap0, data, 512, true);
        test_report("virtio-block-past-end", st == 1, "status %u (IOERR expected)", st);

        /* The host resizes the disk now (docs/control-protocol.md DISK_RESIZE). */
        printf("virtio-block: resize me\n");
        sti();
        ok = wait_for(config_changed, RESIZE_TIMEOUT_MS, false);
        cli();
        cap1 = capacity(&d);
        test_report("virtio-block-resize", ok && cap1 == 2 * cap0, "%u config interrupt(s), %lu -> %lu sectors",
                    config_irqs, cap0, cap1);
        st = request(T_IN, cap1 - 1, data, 512, true);
        test_report("virtio-block-read-new-end", st == 0, "status %u", st);
        test_finish();
}
