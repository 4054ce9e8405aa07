/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-console over PCI with MSI-X (virtio 1.2 §5.3): find 1af4:1043,
 * write a line on port 0's transmitq, read the reply the host program
 * (the integration test, on the socket) sends to the receiveq, check it.
 * Run with --console socket:PATH --debug-exit. */

#include "virtio.h"

#define VEC_RX 0x42

static struct vq rxq, txq;
static char out[64] __attribute__((aligned(64)));
static char in[64] __attribute__((aligned(64)));
static unsigned got;

static void rx_irq(struct irq_frame *f) { lapic_eoi(); }
static bool rx_ready(void) { return rxq.used.idx != 0; }
static bool tx_done(void) { return txq.used.idx != 0; }

int main(void)
{
        struct virtio_dev d;
        const char *line = "hello from the guest console\n";

        lapic_init();
        irq_set_handler(VEC_RX, rx_irq);
        if (!virtio_probe(0x1043, &d)) {
                test_report("console-probe", false, "no 1af4:1043");
                test_finish();
        }
        test_report("console-probe", d.msix_cap != 0, "slot %u", d.slot);
        if (!virtio_negotiate(&d, 0)) {
                test_report("console-features", false, "FEATURES_OK did not stick");
                test_finish();
        }
        virtio_msix_route(&d, 0, VEC_RX);
        if (!virtio_setup_queue(&d, &rxq, 0, 0) || !virtio_setup_queue(&d, &txq, 1, 0xffff)) {
                test_report("console-queues", false, "receiveq/transmitq could not be set up");
                test_finish();
        }
        virtio_driver_ok(&d);
        rxq.desc[0] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) in, .len = sizeof(in) - 1,
                                            .flags = VRING_DESC_F_WRITE };
        vq_submit(&rxq, 0);

        memcpy(out, line, strlen(line));
        txq.desc[0] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) out, .len = (uint32_t) strlen(line) };
        vq_submit(&txq, 0);
        test_report("console-write", wait_for(tx_done, 5000, false), "transmitq used %u", txq.used.idx);

        sti();
        bool ok = wait_for(rx_ready, 60000, true);
        cli();
        got = ok ? rxq.used.ring[0].len : 0;
        in[got < sizeof(in) ? got : sizeof(in) - 1] = 0;
        test_report("console-read", ok && got == 15 && memcmp(in, "reply from host", 15) == 0, "%u bytes '%s'",
                    got, in);
        test_finish();
}
