/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-rng over PCI with MSI-X: find 1af4:1044, read num_queues and the
 * device features through the PCI configuration access capability,
 * negotiate VERSION_1, set up the request queue, ask for random bytes, wait for the MSI-X
 * interrupt; then notify a queue that does not exist and check the device
 * still answers. Run with --rng --debug-exit.
 *
 * With irq=intx on the command line, as a driver without MSI-X (Linux's
 * pci=nomsi, small OSes) does: MSI-X stays off and the interrupts come on
 * INTx, the IOAPIC pin the PCI interrupt line names, level-triggered,
 * acknowledged by reading the ISR (virtio 1.2 §4.1.4.5). One interrupt is
 * EOI'd without reading the ISR: the line must fire again. */

#include "virtio.h"

#define VEC_RNG 0x40
#define BUF_SIZE 64
#define TIMEOUT_MS 3000

#define VEC_INTX 0x42
#define IOAPIC_LEVEL (1u << 15)

static struct vq q;
static uint8_t buf[3][BUF_SIZE] __attribute__((aligned(64)));
static volatile unsigned irq_count;

static void rng_irq(struct irq_frame *f)
{
        irq_count++;
        lapic_eoi();
}

/* INTx: the ISR read is the acknowledgement; bit 0 is a used buffer. */
static struct virtio_dev dev;
static volatile unsigned intx_deliveries, intx_spurious;
static volatile bool intx_skip_ack;

static void intx_irq(struct irq_frame *f)
{
        intx_deliveries++;
        if (intx_skip_ack) {
                /* Level-triggered: EOI without the ISR read leaves the
                 * device's reason standing, so the line comes back. */
                intx_skip_ack = false;
                lapic_eoi();
                return;
        }
        if (mmio_read8(dev.isr) & 1)
                irq_count++;
        else
                intx_spurious++;
        lapic_eoi();
}

/* Routes the device's INTx pin (the PCI interrupt line) to VEC_INTX. */
static bool intx_route(struct virtio_dev *d, unsigned *ret_pin)
{
        unsigned pin = pci_read8(0, d->slot, 0, 0x3c);
        uint16_t msix_ctrl = d->msix_cap ? pci_read16(0, d->slot, 0, d->msix_cap + 2) : 0;

        *ret_pin = pin;
        if (pci_read8(0, d->slot, 0, 0x3d) != 1 || pin >= ioapic_pin_count() || (msix_ctrl & 0x8000) || !d->isr)
                return false;
        ioapic_write(0x11 + 2 * pin, lapic_id() << 24);
        ioapic_write(0x10 + 2 * pin, VEC_INTX | IOAPIC_LEVEL);
        return true;
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
        bool intx = false;
        const char *mode = cmdline_get(boot_info.cmdline, "irq");

        if (mode && strncmp(mode, "intx", 4) == 0)
                intx = true;
        lapic_init();
        irq_set_handler(VEC_RNG, rng_irq);
        irq_set_handler(VEC_INTX, intx_irq);

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

        dev = d;
        if (intx) {
                unsigned pin;
                bool ok = intx_route(&d, &pin);
                test_report("virtio-rng-intx-route", ok, "pin %u of %u, MSI-X off", pin, ioapic_pin_count());
                if (!ok)
                        test_finish();
        } else {
                virtio_msix_route(&d, 0, VEC_RNG);
        }
        /* 0xffff: no MSI-X vector (§4.1.5.1.2). */
        if (!virtio_setup_queue(&d, &q, 0, intx ? 0xffff : 0)) {
                test_report("virtio-rng-queue", false, "queue 0 could not be set up");
                test_finish();
        }
        virtio_driver_ok(&d);

        bool irq = request(&d, 0);
        used = q.used.idx;
        if (intx)
                test_report("virtio-rng-intx", irq && mmio_read8(d.isr) == 0, "%u interrupt(s), %u delivery(ies)",
                            irq_count, intx_deliveries);
        else
                test_report("virtio-rng-msix", irq, "%u interrupt(s) on vector 0x%x", irq_count, VEC_RNG);
        test_report("virtio-rng-bytes", used == 1 && q.used.ring[0].id == 0 && q.used.ring[0].len == BUF_SIZE &&
                    !all_equal(buf[0], BUF_SIZE),
                    "used idx %u id %u len %u first bytes %02x %02x %02x", used, q.used.ring[0].id,
                    q.used.ring[0].len, buf[0][0], buf[0][1], buf[0][2]);

        if (intx) {
                unsigned before = intx_deliveries;
                intx_skip_ack = true;
                irq = request(&d, 1);
                test_report("virtio-rng-intx-level", irq && intx_deliveries - before >= 2 && !intx_skip_ack,
                            "%u deliveries for one request EOI'd once unread, %u spurious",
                            intx_deliveries - before, intx_spurious);
        }

        /* Bad input: notify queues that do not exist (virtio 1.2 §4.1.4.4),
         * then the real queue must still work. */
        unsigned n = intx ? 2 : 1;
        mmio_write16(d.notify + 5 * d.notify_mult, 5);
        mmio_write16(d.notify + 0xff0, 0xffff);
        irq = request(&d, n);
        test_report("virtio-rng-survives-bad-notify", irq && q.used.idx == n + 1 && q.used.ring[n].len == BUF_SIZE &&
                    !(mmio_read8(d.common + VCOMMON_STATUS) & VIRTIO_STATUS_NEEDS_RESET),
                    "used idx %u status %x", q.used.idx, mmio_read8(d.common + VCOMMON_STATUS));
        test_finish();
}
