/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-vsock over PCI with MSI-X (virtio 1.2 §5.10): find 1af4:1053,
 * read the CID, then a stream each way with the host program of the
 * integration test:
 *   guest -> host: REQUEST to host port 1234 (the test listens on
 *     PATH_1234), send a line, read the test's echo, full SHUTDOWN, RST;
 *   host -> guest: print "vsock-ready", wait for the REQUEST to port 6000
 *     the test's CONNECT makes, accept, echo one line back, wait for the
 *     host's SHUTDOWN.
 * Run with --vsock cid=3,path=PATH --debug-exit.
 *
 * With vsock_test=reset on the command line, after the guest -> host echo
 * and with that stream still open: reset the device (status 0, which the
 * VMM handles on a vCPU thread while the stream's host socket is live),
 * set it up again, expect TRANSPORT_RESET on the event queue (§5.10.6.7),
 * then a second stream to host port 1234 from guest port 5001 echoes
 * "pong after the reset\n", is shut down, and the guest finishes. */

#include "virtio.h"

#define VEC_RX 0x41
#define RX_BUFS 4
#define PKT_MAX 256
#define GUEST_CID 3
#define HOST_CID 2

struct hdr {
        uint64_t src_cid, dst_cid;
        uint32_t src_port, dst_port, len;
        uint16_t type, op;
        uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST };

static struct vq rxq, txq, evq;
static uint32_t ev_buf[4] __attribute__((aligned(16)));
static uint8_t rx_buf[RX_BUFS][sizeof(struct hdr) + PKT_MAX] __attribute__((aligned(64)));
static uint8_t tx_buf[sizeof(struct hdr) + PKT_MAX] __attribute__((aligned(64)));
static uint16_t rx_seen, tx_sent;
static uint32_t fwd_cnt;
static struct hdr got;
static char got_data[PKT_MAX + 1];

static void rx_irq(struct irq_frame *f) { lapic_eoi(); }

static bool rx_ready(void) { return rxq.used.idx != rx_seen; }
static bool tx_done(void) { return txq.used.idx == tx_sent; }

static void send(uint16_t op, uint32_t src_port, uint32_t dst_port, const char *data, uint32_t len, uint32_t flags)
{
        struct hdr h = {
                .src_cid = GUEST_CID, .dst_cid = HOST_CID, .src_port = src_port, .dst_port = dst_port,
                .len = len, .type = 1, .op = op, .flags = flags, .buf_alloc = 4096, .fwd_cnt = fwd_cnt,
        };
        memcpy(tx_buf, &h, sizeof(h));
        memcpy(tx_buf + sizeof(h), data, len);
        txq.desc[0] = (struct vring_desc) { .addr = (uint64_t) (uintptr_t) tx_buf, .len = sizeof(h) + len };
        tx_sent++;
        vq_submit(&txq, 0);
        (void) wait_for(tx_done, 3000, false);
}

/* The next packet, skipping credit updates; false on timeout. */
static bool recv(uint64_t timeout_ms)
{
        for (;;) {
                sti();
                bool ok = wait_for(rx_ready, timeout_ms, true);
                cli();
                if (!ok)
                        return false;
                uint16_t id = (uint16_t) rxq.used.ring[rx_seen % VQ_SIZE].id;
                uint32_t len = rxq.used.ring[rx_seen % VQ_SIZE].len;
                rx_seen++;
                memcpy(&got, rx_buf[id], sizeof(got));
                uint32_t n = len > sizeof(got) ? len - (uint32_t) sizeof(got) : 0;
                if (n > PKT_MAX)
                        n = PKT_MAX;
                memcpy(got_data, rx_buf[id] + sizeof(got), n);
                got_data[n] = 0;
                if (got.op == OP_RW)
                        fwd_cnt += got.len;
                vq_submit(&rxq, id); /* the buffer goes back */
                if (got.op != OP_CREDIT_UPDATE)
                        return true;
        }
}

static bool ev_ready(void) { return evq.used.idx != 0; }

/* Negotiates (from a reset: virtio_negotiate writes status 0 first), sets
 * up rx, tx and, when asked, the event queue with one buffer, DRIVER_OK,
 * then gives the device the receive buffers. */
static void start(struct virtio_dev *d, bool with_events)
{
        if (!virtio_negotiate(d, 0)) {
                test_report("vsock-features", false, "FEATURES_OK did not stick");
                test_finish();
        }
        virtio_msix_route(d, 0, VEC_RX);
        rx_seen = tx_sent = 0;
        fwd_cnt = 0;
        if (!virtio_setup_queue(d, &rxq, 0, 0) || !virtio_setup_queue(d, &txq, 1, 0xffff) ||
            (with_events && !virtio_setup_queue(d, &evq, 2, 0xffff))) {
                test_report("vsock-queues", false, "queues could not be set up");
                test_finish();
        }
        virtio_driver_ok(d);
        for (uint16_t i = 0; i < RX_BUFS; i++) {
                rxq.desc[i] = (struct vring_desc) {
                        .addr = (uint64_t) (uintptr_t) rx_buf[i], .len = sizeof(rx_buf[i]), .flags = VRING_DESC_F_WRITE,
                };
                vq_submit(&rxq, i);
        }
        if (with_events) {
                ev_buf[0] = 0xffffffffu;
                evq.desc[0] = (struct vring_desc) {
                        .addr = (uint64_t) (uintptr_t) ev_buf, .len = sizeof(ev_buf), .flags = VRING_DESC_F_WRITE,
                };
                vq_submit(&evq, 0);
        }
}

/* Resets the device under the open stream 5000 <-> 1234, comes back, and
 * opens a new stream. */
static void reset_and_reconnect(struct virtio_dev *d)
{
        const char *line = "pong after the reset\n";
        uint32_t n = (uint32_t) strlen(line);

        mmio_write8(d->common + VCOMMON_STATUS, 0);
        uint8_t status = mmio_read8(d->common + VCOMMON_STATUS);
        test_report("vsock-reset-with-open-stream", status == 0, "status %x after writing 0", status);

        start(d, true);
        sti();
        bool ok = wait_for(ev_ready, 5000, true);
        cli();
        test_report("vsock-reset-event", ok && evq.used.ring[0].len == 4 && ev_buf[0] == 0,
                    "used %u len %u id %u", evq.used.idx, evq.used.ring[0].len, ev_buf[0]);

        send(OP_REQUEST, 5001, 1234, "", 0, 0);
        ok = recv(5000) && got.op == OP_RESPONSE && got.src_port == 1234 && got.dst_port == 5001;
        test_report("vsock-reset-reconnect", ok, "op %u ports %u->%u", got.op, got.src_port, got.dst_port);
        send(OP_RW, 5001, 1234, line, n, 0);
        ok = recv(10000) && got.op == OP_RW && got.len == n && memcmp(got_data, line, n) == 0;
        test_report("vsock-reset-echo", ok, "op %u len %u '%s'", got.op, got.len, got_data);
        send(OP_SHUTDOWN, 5001, 1234, "", 0, 3);
        ok = recv(5000) && got.op == OP_RST;
        test_report("vsock-reset-close", ok, "op %u", got.op);
        test_finish();
}

int main(void)
{
        struct virtio_dev d;
        const char *line = "ping from the guest\n";
        uint32_t n = (uint32_t) strlen(line);
        const char *mode = cmdline_get(boot_info.cmdline, "vsock_test");
        bool reset_mode = mode && strncmp(mode, "reset", 5) == 0;

        lapic_init();
        irq_set_handler(VEC_RX, rx_irq);
        if (!virtio_probe(0x1053, &d)) {
                test_report("vsock-probe", false, "no 1af4:1053");
                test_finish();
        }
        uint32_t cid = mmio_read32(d.device);
        test_report("vsock-probe", d.msix_cap != 0 && cid == GUEST_CID, "slot %u cid %u", d.slot, cid);
        start(&d, false);

        /* Guest -> host. */
        send(OP_REQUEST, 5000, 1234, "", 0, 0);
        bool ok = recv(5000) && got.op == OP_RESPONSE && got.src_port == 1234 && got.dst_port == 5000;
        test_report("vsock-guest-connect", ok, "op %u ports %u->%u", got.op, got.src_port, got.dst_port);
        send(OP_RW, 5000, 1234, line, n, 0);
        ok = recv(10000) && got.op == OP_RW && got.len == n && memcmp(got_data, line, n) == 0;
        test_report("vsock-guest-echo", ok, "op %u len %u '%s'", got.op, got.len, got_data);
        if (reset_mode)
                reset_and_reconnect(&d);
        send(OP_SHUTDOWN, 5000, 1234, "", 0, 3);
        ok = recv(5000) && got.op == OP_RST;
        test_report("vsock-guest-close", ok, "op %u", got.op);

        /* Host -> guest: the test connects once it reads this line.
         * Credit counters are per stream (§5.10.6.3). */
        fwd_cnt = 0;
        printf("vsock-ready\n");
        ok = recv(60000) && got.op == OP_REQUEST && got.dst_port == 6000 && got.src_cid == HOST_CID;
        uint32_t peer = got.src_port;
        test_report("vsock-host-connect", ok, "op %u port %u from %u", got.op, got.dst_port, peer);
        send(OP_RESPONSE, 6000, peer, "", 0, 0);
        ok = recv(30000) && got.op == OP_RW && got.len > 0;
        uint32_t len = got.len;
        if (ok)
                send(OP_RW, 6000, peer, got_data, len, 0);
        test_report("vsock-host-echo", ok, "echoed %u bytes", len);
        ok = recv(30000) && (got.op == OP_SHUTDOWN || got.op == OP_RST);
        test_report("vsock-host-close", ok, "op %u flags %u", got.op, got.flags);
        if (got.op == OP_SHUTDOWN)
                send(OP_RST, 6000, peer, "", 0, 0);
        test_finish();
}
