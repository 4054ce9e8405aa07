/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-rng over PCI with MSI-X: find 1af4:1044, read num_queues and the
 * device features through the PCI configuration access capability,
 * negotiate VERSION_1, set up the request queue, ask for random bytes, wait for the MSI-X
 * interrupt; then notify a queue that does not exist and check the device
 * still answers. Run with --rng --debug-exit. */

#include "virtio.h"

#define VEC_RNG 0x40
#define BUF_SIZE 64
#define TIMEOUT_MS 3000

static struct vq q;
static uint8_t buf[2][BUF_SIZE] __attribute__((aligned(64)));
static volatile unsigned irq_count;

static void rng_irq(struct irq_frame *f)
{
        irq_count++;
        lapic_eoi();
}

static unsigned want;
static bool got_irq(void) { return irq_count >= want; }

static bool request(struct virtio_dev *d, unsigned n)
{
        uint16_t head = (uint16_t) n;
        bool ok;

        memset(buf[n], 0, BUF_SIZE);
        q.desc[head] = (struct vring_desc) {
                .addr = (uint64_t) (uintptr_t) buf[n], .len = BUF_SIZE, .flags = VRING_DESC_F_WRITE,
        };
        want = n + 1;
        vq_submit(&q, head);
        sti();
        ok = wait_for(got_irq, TIMEOUT_MS, false);
        cli();
        return ok;
}

static bool all_equal(const uint8_t *p, unsigned n)
{
        for (unsigned i = 1; i < n; i++)
                if (p[i] != p[0])
                        return false;
        return true;
}

int main(void)
{
        struct virtio_dev d;
        uint16_t used;

        lapic_init();
        irq_set_handler(VEC_RNG, rng_irq);

        if (!virtio_probe(0x1044, &d)) {
                test_report("virtio-rng-probe", false, "no 1af4:1044 with common and notify capabilities");
                test_finish();
        }
        test_report("virtio-rng-probe", d.msix_cap != 0, "slot %u bar0 %lx notify x%u", d.slot, d.bar[0], d.notify_mult);

        /* The same common configuration through config space (§4.1.4.8):
         * num_queues, and device feature word 1 (VERSION_1 is its bit 0). */
        if (d.pci_cfg_cap) {
                uint32_t numq = virtio_pci_cfg_read(&d, d.common_bar, d.common_off + VCOMMON_NUMQ, 2);
                virtio_pci_cfg_write(&d, d.common_bar, d.common_off + VCOMMON_DFSELECT, 4, 1);
                uint32_t f1 = virtio_pci_cfg_read(&d, d.common_bar, d.common_off + VCOMMON_DF, 4);
                test_report("virtio-rng-pci-cfg", numq == 1 && (f1 & 1), "cap at 0x%x num_queues %u features[1] %x",
                            d.pci_cfg_cap, numq, f1);
        } else {
                test_report("virtio-rng-pci-cfg", false, "no VIRTIO_PCI_CAP_PCI_CFG capability");
        }

        if (!virtio_negotiate(&d, 0)) {
                test_report("virtio-rng-features", false, "FEATURES_OK did not stick");
                test_finish();
        }
        test_report("virtio-rng-features", true, "VERSION_1");

        virtio_msix_route(&d, 0, VEC_RNG);
        if (!virtio_setup_queue(&d, &q, 0, 0)) {
                test_report("virtio-rng-queue", false, "queue 0 could not be set up");
                test_finish();
        }
        virtio_driver_ok(&d);

        bool irq = request(&d, 0);
        used = q.used.idx;
        test_report("virtio-rng-msix", irq, "%u interrupt(s) on vector 0x%x", irq_count, VEC_RNG);
        test_report("virtio-rng-bytes", used == 1 && q.used.ring[0].id == 0 && q.used.ring[0].len == BUF_SIZE &&
                    !all_equal(buf[0], BUF_SIZE),
                    "used idx %u id %u len %u first bytes %02x %02x %02x", used, q.used.ring[0].id,
                    q.used.ring[0].len, buf[0][0], buf[0][1], buf[0][2]);

        /* Bad input: notify queues that do not exist (virtio 1.2 §4.1.4.4),
         * then the real queue must still work. */
        mmio_write16(d.notify + 5 * d.notify_mult, 5);
        mmio_write16(d.notify + 0xff0, 0xffff);
        irq = request(&d, 1);
        test_report("virtio-rng-survives-bad-notify", irq && q.used.idx == 2 && q.used.ring[1].len == BUF_SIZE &&
                    !(mmio_read8(d.common + VCOMMON_STATUS) & VIRTIO_STATUS_NEEDS_RESET),
                    "used idx %u status %x", q.used.idx, mmio_read8(d.common + VCOMMON_STATUS));
        test_finish();
}
