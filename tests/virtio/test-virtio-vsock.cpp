/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-vsock through the harness (virtio 1.2 §5.10): the test plays the
 * guest driver on the queues and the host programs on the Unix sockets. */
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/devices/vsock.h"
#include "tests/virtio/harness.h"
#include "seccomp/sandbox.h"
#include "vmm/virtio/device.h"

extern "C" const VirtioDeviceOps virtio_vsock_ops;

using harness::BASE_FEATURES;
using harness::PciDriver;
using harness::read_n;
using harness::readable;
using harness::TempDir;
using harness::unix_connect;
using harness::unix_listen;
using harness::VirtqDriver;

namespace {

constexpr uint64_t GUEST_CID = 3;
constexpr uint32_t RX_BUF = VSOCK_HDR_SIZE + 4096;
constexpr uint64_t RX_AREA = 0x100000;  /* 64 receive buffers, 8 KiB apart */
constexpr uint64_t TX_AREA = 0x400000;  /* 64 transmit slots, 128 KiB apart */
constexpr uint64_t TX_SLOT = 0x20000;
constexpr uint64_t EV_AREA = 0x380000;  /* event buffers, 64 bytes apart */

/* The other end closed: EOF, or ECONNRESET when it closed with our data
 * unread. */
static bool eof_within(int fd, int timeout_ms) {
        char c;
        return readable(fd, timeout_ms) && read(fd, &c, 1) <= 0;
}

struct Packet {
        VsockHdr hdr{};
        std::string data;
};

static VsockHdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len = 0) {
        VsockHdr h{};
        h.src_cid = GUEST_CID;
        h.dst_cid = VSOCK_HOST_CID;
        h.src_port = src_port;
        h.dst_port = dst_port;
        h.len = len;
        h.type = VSOCK_TYPE_STREAM;
        h.op = op;
        h.buf_alloc = 256 * 1024;
        h.fwd_cnt = 0;
        return h;
}

class Vsock : public ::testing::Test {
protected:
        void start(const std::string &extra = "") {
                path = dir.path + "/v.sock";
                std::string arg = "cid=3,path=" + path + extra;
                d.reset(new PciDriver(&virtio_vsock_ops, arg.c_str()));
                ASSERT_EQ(d->error(), 0);
                driver_init();
        }
        /* Resets the device (negotiate writes status 0 first) and sets it
         * up again as a driver that comes back would, with fresh queues. */
        void driver_init(bool set_driver_ok = true) {
                /* Reset before the rings are rewritten under a live device. */
                d->common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
                rx_addr.clear();
                ev_addr.clear();
                rx_posted = tx_sent = ev_posted = 0;
                rx_seen = 0;
                rxq.reset(new VirtqDriver(d->mem(), 0x10000, 64));
                txq.reset(new VirtqDriver(d->mem(), 0x20000, 64));
                evq.reset(new VirtqDriver(d->mem(), 0x30000, 64));
                ASSERT_TRUE(d->negotiate(BASE_FEATURES));
                d->setup_queue(0, *rxq);
                d->setup_queue(1, *txq);
                d->setup_queue(2, *evq);
                if (set_driver_ok)
                        d->driver_ok();
        }
        void SetUp() override { start(); }
        void TearDown() override {
                for (int fd : fds)
                        close(fd);
        }

        int keep(int fd) {
                fds.push_back(fd);
                return fd;
        }

        /* Gives the device n receive buffers. */
        void post_rx(unsigned n, uint32_t len = RX_BUF) {
                for (unsigned i = 0; i < n; i++) {
                        uint64_t addr = RX_AREA + 0x2000 * (uint64_t) (rx_posted % 64);
                        uint16_t head = rxq->add_chain({ { addr, len, true } });
                        rx_addr[head] = addr;
                        rx_posted++;
                }
                d->kick(0);
        }

        /* Sends one packet (header and payload in one buffer, or two) and
         * waits until the device used it. */
        void send_raw(const void *p, size_t n, bool split = false) {
                uint64_t addr = TX_AREA + TX_SLOT * (uint64_t) (tx_sent % 64);
                ASSERT_LE(n, TX_SLOT);
                ASSERT_EQ(guest_write(d->mem(), addr, p, n), 0);
                if (split && n > VSOCK_HDR_SIZE)
                        txq->add_chain({ { addr, VSOCK_HDR_SIZE, false },
                                         { addr + VSOCK_HDR_SIZE, (uint32_t) (n - VSOCK_HDR_SIZE), false } });
                else
                        txq->add_chain({ { addr, (uint32_t) n, false } });
                tx_sent++;
                d->kick(1);
                ASSERT_TRUE(d->wait_used(*txq, (uint16_t) tx_sent));
        }
        void send(VsockHdr h, const std::string &data = "", bool split = false) {
                if (h.op == VSOCK_OP_RW && h.len == 0)
                        h.len = (uint32_t) data.size();
                std::string buf((const char *) &h, sizeof(h));
                buf += data;
                send_raw(buf.data(), buf.size(), split);
        }

        /* The next packet the device put in a receive buffer. */
        bool recv(Packet *p, int timeout_ms = 2000) {
                auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
                while (rxq->used_idx() == rx_seen) {
                        if (std::chrono::steady_clock::now() > end)
                                return false;
                        std::this_thread::sleep_for(std::chrono::microseconds(200));
                }
                VirtqUsedElem u = rxq->used(rx_seen % rxq->size());
                rx_seen++;
                if (u.len < VSOCK_HDR_SIZE)
                        return false;
                std::vector<char> buf(u.len);
                EXPECT_EQ(guest_read(d->mem(), rx_addr[(uint16_t) u.id], buf.data(), u.len), 0);
                memcpy(&p->hdr, buf.data(), sizeof(p->hdr));
                p->data.assign(buf.data() + VSOCK_HDR_SIZE, u.len - VSOCK_HDR_SIZE);
                return true;
        }
        /* No packet within timeout_ms. */
        bool quiet(int timeout_ms = 100) {
                std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
                return rxq->used_idx() == rx_seen;
        }

        /* The guest connects from guest_port to host port; the test
         * accepts on PATH_port. Returns the host's end. */
        int guest_connect(int listener, uint32_t guest_port, uint32_t port) {
                send(hdr(VSOCK_OP_REQUEST, guest_port, port));
                Packet p;
                EXPECT_TRUE(recv(&p));
                EXPECT_EQ(p.hdr.op, VSOCK_OP_RESPONSE);
                EXPECT_EQ(p.hdr.src_port, port);
                EXPECT_EQ(p.hdr.dst_port, guest_port);
                if (!readable(listener, 2000))
                        return -1;
                return keep(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
        }

        VsockStats stats() { return vsock_device_stats(d->device()); }

        /* Posts one event buffer of len bytes, device-writable or not. */
        void post_event(uint32_t len, bool writable = true) {
                uint64_t addr = EV_AREA + 64 * (uint64_t) (ev_posted % 64);
                ASSERT_EQ(guest_write(d->mem(), addr, std::string(len, '\xff').data(), len), 0);
                ev_addr[evq->add_chain({ { addr, len, writable } })] = addr;
                ev_posted++;
                d->kick(2);
        }
        /* The id of used event buffer i; -1 when it came back empty. */
        int64_t event_id(uint16_t i) {
                VirtqUsedElem u = evq->used(i);
                uint32_t id = 0;
                if (u.len != VSOCK_EVENT_SIZE)
                        return -1;
                EXPECT_EQ(guest_read(d->mem(), ev_addr[(uint16_t) u.id], &id, sizeof(id)), 0);
                return id;
        }

        TempDir dir{"vsock-test"};
        std::string path;
        std::unique_ptr<PciDriver> d;
        std::unique_ptr<VirtqDriver> rxq, txq, evq;
        std::map<uint16_t, uint64_t> rx_addr, ev_addr;
        unsigned rx_posted = 0, tx_sent = 0, ev_posted = 0;
        uint16_t rx_seen = 0;
        std::vector<int> fds;
};

TEST(VsockCredit, credit_is_buf_alloc_minus_bytes_in_flight) {
        EXPECT_EQ(vsock_peer_credit(1000, 300, 100), 800u);
        EXPECT_EQ(vsock_peer_credit(1000, 0, 0), 1000u);
}

TEST(VsockCredit, credit_counters_that_wrap_are_u32_arithmetic) {
        /* tx_cnt wrapped past 2^32, fwd_cnt not yet: 21 bytes in flight. */
        EXPECT_EQ(vsock_peer_credit(64, 5, UINT32_C(0xfffffff0)), 43u);
        EXPECT_EQ(vsock_peer_credit(64, UINT32_C(0xffffffff), UINT32_C(0xffffffc0)), 1u);
}

TEST(VsockCredit, peer_claiming_more_forwarded_than_sent_gets_no_credit) {
        EXPECT_EQ(vsock_peer_credit(1024, 0, 100), 0u);
        EXPECT_EQ(vsock_peer_credit(64, 10, 11), 0u);
}

TEST(VsockCredit, in_flight_beyond_buf_alloc_gives_no_credit) {
        EXPECT_EQ(vsock_peer_credit(16, 100, 0), 0u);
}

TEST(VsockOption, option_needs_cid_and_path) {
        uint64_t cid;
        char *path = nullptr;
        unsigned max;
        EXPECT_EQ(vsock_parse_option("cid=3,path=/tmp/x", &cid, &path, &max), 0);
        EXPECT_EQ(cid, 3u);
        EXPECT_STREQ(path, "/tmp/x");
        EXPECT_EQ(max, (unsigned) VSOCK_MAX_CONNECTIONS_DEFAULT);
        free(path);
        EXPECT_EQ(vsock_parse_option("cid=3", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option("path=/tmp/x", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option(nullptr, &cid, &path, &max), -EINVAL);
}

TEST(VsockOption, option_refuses_reserved_cids_and_unknown_keys) {
        uint64_t cid;
        char *path = nullptr;
        unsigned max;
        EXPECT_EQ(vsock_parse_option("cid=2,path=/tmp/x", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option("cid=4294967295,path=/tmp/x", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option("cid=3,path=/tmp/x,color=red", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option("cid=3,path=/tmp/x,max-connections=0", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option("cid=3,path=/tmp/", &cid, &path, &max), -EINVAL);
        EXPECT_EQ(vsock_parse_option(("cid=3,path=/" + std::string(120, 'a')).c_str(), &cid, &path, &max), -EINVAL);
}

TEST(VsockOption, connect_line_is_exactly_connect_and_a_port) {
        uint32_t port;
        EXPECT_EQ(vsock_parse_connect_line("CONNECT 52", &port), 0);
        EXPECT_EQ(port, 52u);
        EXPECT_EQ(vsock_parse_connect_line("CONNECT 4294967296", &port), -EINVAL);
        EXPECT_EQ(vsock_parse_connect_line("CONNECT -1", &port), -EINVAL);
        EXPECT_EQ(vsock_parse_connect_line("CONNECT", &port), -EINVAL);
        EXPECT_EQ(vsock_parse_connect_line("connect 52", &port), -EINVAL);
        EXPECT_EQ(vsock_parse_connect_line("CONNECT 52x", &port), -EINVAL);
}

TEST(VsockCreate, vsock_refuses_a_bad_argument) {
        PciDriver d(&virtio_vsock_ops, "cid=1,path=/tmp/nope");
        EXPECT_EQ(d.error(), -EINVAL);
        PciDriver d2(&virtio_vsock_ops, nullptr);
        EXPECT_EQ(d2.error(), -EINVAL);
}

TEST_F(Vsock, config_holds_the_guest_cid) {
        uint64_t lo = d->bar_read(VIRTIO_PCI_DEVICE_OFF, 4), hi = d->bar_read(VIRTIO_PCI_DEVICE_OFF + 4, 4);
        EXPECT_EQ(lo | hi << 32, GUEST_CID);
}

TEST_F(Vsock, guest_connection_reaches_the_host_socket_for_its_port_and_carries_data_both_ways) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(8);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);

        send(hdr(VSOCK_OP_RW, 5000, 1234), "hello from the guest", true);
        EXPECT_EQ(read_n(h, 20), "hello from the guest");

        ASSERT_EQ(write(h, "hi guest", 8), 8);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RW);
        EXPECT_EQ(p.hdr.src_cid, (uint64_t) VSOCK_HOST_CID);
        EXPECT_EQ(p.hdr.dst_cid, GUEST_CID);
        EXPECT_EQ(p.hdr.buf_alloc, (uint32_t) VSOCK_BUF_ALLOC);
        EXPECT_EQ(p.hdr.fwd_cnt, 20u);
        EXPECT_EQ(p.data, "hi guest");
        EXPECT_EQ(stats().connections, 1u);
}

TEST_F(Vsock, guest_connection_to_a_port_nobody_listens_on_gets_rst) {
        post_rx(2);
        send(hdr(VSOCK_OP_REQUEST, 5000, 4321));
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_EQ(p.hdr.src_port, 4321u);
        EXPECT_EQ(p.hdr.dst_port, 5000u);
        EXPECT_EQ(stats().connections, 0u);
}

TEST_F(Vsock, host_connect_line_reaches_the_guest_and_gets_ok_with_its_port) {
        post_rx(4);
        int h = keep(unix_connect(path));
        ASSERT_EQ(write(h, "CONNECT 52\nearly", 16), 16);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_REQUEST);
        EXPECT_EQ(p.hdr.dst_port, 52u);
        EXPECT_GE(p.hdr.src_port, VSOCK_LOCAL_PORT_BASE);
        uint32_t host_port = p.hdr.src_port;

        send(hdr(VSOCK_OP_RESPONSE, 52, host_port));
        std::string ok = "OK " + std::to_string(host_port) + "\n";
        EXPECT_EQ(read_n(h, ok.size()), ok);
        /* What the program wrote after its line is the stream's start. */
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RW);
        EXPECT_EQ(p.data, "early");

        send(hdr(VSOCK_OP_RW, 52, host_port), "echo");
        EXPECT_EQ(read_n(h, 4), "echo");
}

TEST_F(Vsock, host_connect_refused_by_the_guest_closes_the_host_socket) {
        post_rx(4);
        int h = keep(unix_connect(path));
        ASSERT_EQ(write(h, "CONNECT 53\n", 11), 11);
        Packet p;
        ASSERT_TRUE(recv(&p));
        send(hdr(VSOCK_OP_RST, 53, p.hdr.src_port));
        EXPECT_TRUE(eof_within(h, 2000));
        EXPECT_EQ(stats().connections, 0u);
}

TEST_F(Vsock, host_connect_with_a_bad_line_is_closed) {
        post_rx(4);
        int h = keep(unix_connect(path));
        ASSERT_EQ(write(h, "HELLO 52\n", 9), 9);
        EXPECT_TRUE(eof_within(h, 2000));
        int h2 = keep(unix_connect(path));
        std::string junk(100, 'x');
        ASSERT_EQ(write(h2, junk.data(), junk.size()), 100);
        EXPECT_TRUE(eof_within(h2, 2000));
        EXPECT_TRUE(quiet());
}

TEST_F(Vsock, header_shorter_than_its_chain_is_dropped) {
        post_rx(2);
        VsockHdr h = hdr(VSOCK_OP_REQUEST, 5000, 1234);
        send_raw(&h, 20);
        EXPECT_EQ(stats().bad_packets, 1u);
        EXPECT_TRUE(quiet());
}

TEST_F(Vsock, payload_longer_than_its_chain_gets_rst) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        VsockHdr bad = hdr(VSOCK_OP_RW, 5000, 1234, 100);
        send(bad, "only ten b");
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_TRUE(eof_within(h, 2000));
        EXPECT_EQ(stats().bad_packets, 1u);
}

TEST_F(Vsock, payload_over_the_limit_gets_rst) {
        post_rx(2);
        std::string big(VSOCK_MAX_PAYLOAD + 1, 'x');
        send(hdr(VSOCK_OP_RW, 5000, 1234), big);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
}

TEST_F(Vsock, unknown_op_gets_rst) {
        post_rx(4);
        send(hdr(42, 5000, 1234));
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        send(hdr(VSOCK_OP_INVALID, 5000, 1234));
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
}

TEST_F(Vsock, seqpacket_type_gets_rst) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(2);
        VsockHdr h = hdr(VSOCK_OP_REQUEST, 5000, 1234);
        h.type = VSOCK_TYPE_SEQPACKET;
        send(h);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_FALSE(readable(l, 100));
}

TEST_F(Vsock, forged_source_cid_is_dropped_without_answer) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(2);
        VsockHdr h = hdr(VSOCK_OP_REQUEST, 5000, 1234);
        h.src_cid = 7;
        send(h);
        EXPECT_TRUE(quiet());
        EXPECT_FALSE(readable(l, 10));
        EXPECT_EQ(stats().bad_packets, 1u);
}

TEST_F(Vsock, destination_other_than_the_host_gets_rst) {
        post_rx(2);
        VsockHdr h = hdr(VSOCK_OP_REQUEST, 5000, 1234);
        h.dst_cid = 4;
        send(h);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_EQ(p.hdr.src_cid, 4u);
}

TEST_F(Vsock, data_for_an_unknown_connection_gets_rst) {
        post_rx(2);
        send(hdr(VSOCK_OP_RW, 5000, 1234), "stray");
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_EQ(p.hdr.dst_port, 5000u);
}

TEST_F(Vsock, rst_for_an_unknown_connection_gets_no_answer) {
        post_rx(2);
        send(hdr(VSOCK_OP_RST, 5000, 1234));
        EXPECT_TRUE(quiet());
}

TEST_F(Vsock, a_second_request_for_a_live_connection_gets_rst_and_keeps_it) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        send(hdr(VSOCK_OP_REQUEST, 5000, 1234));
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        send(hdr(VSOCK_OP_RW, 5000, 1234), "still");
        EXPECT_EQ(read_n(h, 5), "still");
}

/* The limit is an option: a fixture of its own. */
class VsockLimited : public Vsock {
protected:
        void SetUp() override { start(",max-connections=2"); }
};

TEST_F(VsockLimited, connection_limit_reached_gets_rst) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(8);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);
        ASSERT_GE(guest_connect(l, 5001, 1234), 0);
        send(hdr(VSOCK_OP_REQUEST, 5002, 1234));
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_EQ(stats().refused_limit, 1u);
        EXPECT_EQ(stats().connections, 2u);
        /* Host programs are refused too: closed, no REQUEST. */
        int h = keep(unix_connect(path));
        ASSERT_EQ(write(h, "CONNECT 9\n", 10), 10);
        EXPECT_TRUE(eof_within(h, 2000));
        EXPECT_TRUE(quiet());
}

TEST_F(Vsock, host_data_waits_for_guest_credit) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(8);
        VsockHdr req = hdr(VSOCK_OP_REQUEST, 5000, 1234);
        req.buf_alloc = 16;
        send(req);
        Packet p;
        ASSERT_TRUE(recv(&p));
        ASSERT_EQ(p.hdr.op, VSOCK_OP_RESPONSE);
        ASSERT_TRUE(readable(l, 2000));
        int h = keep(accept4(l, nullptr, nullptr, SOCK_CLOEXEC));

        std::string data(40, 'a');
        ASSERT_EQ(write(h, data.data(), data.size()), 40);
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RW);
        EXPECT_EQ(p.data.size(), 16u);
        /* Out of credit: asks once, then nothing until the guest frees. */
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_CREDIT_REQUEST);
        EXPECT_TRUE(quiet());

        VsockHdr upd = hdr(VSOCK_OP_CREDIT_UPDATE, 5000, 1234);
        upd.buf_alloc = 16;
        upd.fwd_cnt = 16;
        send(upd);
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RW);
        EXPECT_EQ(p.data.size(), 16u);
}

TEST_F(Vsock, host_data_that_fills_a_buffer_exactly_is_not_followed_by_an_empty_packet) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        std::string full(RX_BUF - VSOCK_HDR_SIZE, 'f');
        ASSERT_EQ(write(h, full.data(), full.size()), (ssize_t) full.size());
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.data, full);
        /* The read found nothing more: no credit update in the next buffer. */
        EXPECT_TRUE(quiet());
        ASSERT_EQ(write(h, "more", 4), 4);
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RW);
        EXPECT_EQ(p.data, "more");
}

TEST_F(Vsock, header_sized_receive_buffer_gets_credit_and_the_data_takes_the_next) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(1);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        ASSERT_EQ(write(h, "data", 4), 4);
        post_rx(1, VSOCK_HDR_SIZE);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_CREDIT_UPDATE);
        /* No new write: the socket is still known to hold data. */
        post_rx(1);
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RW);
        EXPECT_EQ(p.data, "data");
}

TEST_F(Vsock, guest_claiming_more_forwarded_than_sent_gets_no_data) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(8);
        VsockHdr req = hdr(VSOCK_OP_REQUEST, 5000, 1234);
        req.buf_alloc = 1024;
        req.fwd_cnt = 100; /* nothing was sent yet */
        send(req);
        Packet p;
        ASSERT_TRUE(recv(&p));
        ASSERT_EQ(p.hdr.op, VSOCK_OP_RESPONSE);
        ASSERT_TRUE(readable(l, 2000));
        int h = keep(accept4(l, nullptr, nullptr, SOCK_CLOEXEC));
        ASSERT_EQ(write(h, "data", 4), 4);
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_CREDIT_REQUEST);
        EXPECT_TRUE(quiet());
}

TEST_F(Vsock, guest_sending_beyond_its_credit_is_reset) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(8);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        /* The host program never reads: the socket fills, then our
         * buffer; the guest ignores our credit. */
        std::string chunk(VSOCK_MAX_PAYLOAD, 'z');
        Packet p;
        bool reset = false;
        for (int i = 0; i < 64 && !reset; i++) {
                send(hdr(VSOCK_OP_RW, 5000, 1234), chunk);
                /* Our credit updates take receive buffers: give them back,
                 * or the RST would find none. */
                while (rxq->used_idx() != rx_seen && recv(&p)) {
                        reset |= p.hdr.op == VSOCK_OP_RST;
                        post_rx(1);
                }
        }
        EXPECT_TRUE(reset);
        EXPECT_EQ(stats().connections, 0u);
}

TEST_F(Vsock, guest_full_shutdown_closes_the_host_socket_and_answers_rst) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        send(hdr(VSOCK_OP_RW, 5000, 1234), "bye");
        VsockHdr s = hdr(VSOCK_OP_SHUTDOWN, 5000, 1234);
        s.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
        send(s);
        EXPECT_EQ(read_n(h, 3), "bye");
        EXPECT_TRUE(eof_within(h, 2000));
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
        EXPECT_EQ(stats().connections, 0u);
}

TEST_F(Vsock, host_half_close_reaches_the_guest_as_shutdown_send) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        ASSERT_EQ(write(h, "last", 4), 4);
        ASSERT_EQ(shutdown(h, SHUT_WR), 0);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.data, "last");
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_SHUTDOWN);
        EXPECT_EQ(p.hdr.flags, (uint32_t) VSOCK_SHUTDOWN_SEND);
        /* The guest may still send. */
        send(hdr(VSOCK_OP_RW, 5000, 1234), "reply");
        EXPECT_EQ(read_n(h, 5), "reply");
}

TEST_F(Vsock, guest_rst_closes_the_host_socket) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        send(hdr(VSOCK_OP_RST, 5000, 1234));
        EXPECT_TRUE(eof_within(h, 2000));
        EXPECT_EQ(stats().connections, 0u);
}

TEST_F(Vsock, credit_request_is_answered_with_credit_update) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);
        send(hdr(VSOCK_OP_CREDIT_REQUEST, 5000, 1234));
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_CREDIT_UPDATE);
        EXPECT_EQ(p.hdr.buf_alloc, (uint32_t) VSOCK_BUF_ALLOC);
}

TEST_F(Vsock, receive_buffer_too_small_for_a_header_is_returned_empty) {
        post_rx(1, 16);
        send(hdr(VSOCK_OP_REQUEST, 5000, 4321));
        ASSERT_TRUE(d->wait_used(*rxq, 1));
        EXPECT_EQ(rxq->used(0).len, 0u);
        /* The RST waits for a real buffer. */
        post_rx(1);
        rx_seen = 1;
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
}

TEST_F(Vsock, packets_wait_for_receive_buffers) {
        send(hdr(VSOCK_OP_REQUEST, 5000, 4321));
        EXPECT_TRUE(quiet());
        post_rx(1);
        Packet p;
        ASSERT_TRUE(recv(&p));
        EXPECT_EQ(p.hdr.op, VSOCK_OP_RST);
}

TEST_F(Vsock, many_concurrent_streams_each_keep_their_data) {
        constexpr unsigned N = 40;
        int l = keep(unix_listen(path + "_1234"));
        std::vector<int> hs;
        post_rx(48);
        for (unsigned i = 0; i < N; i++) {
                int h = guest_connect(l, 6000 + i, 1234);
                ASSERT_GE(h, 0);
                hs.push_back(h);
        }
        for (unsigned i = 0; i < N; i++)
                send(hdr(VSOCK_OP_RW, 6000 + i, 1234), "stream " + std::to_string(i));
        for (unsigned i = 0; i < N; i++) {
                std::string want = "stream " + std::to_string(i);
                EXPECT_EQ(read_n(hs[i], want.size()), want);
        }
        /* Host to guest: each stream's data lands with its ports. */
        for (unsigned i = 0; i < N; i++) {
                std::string s = "back " + std::to_string(i);
                ASSERT_EQ(write(hs[i], s.data(), s.size()), (ssize_t) s.size());
        }
        post_rx(N);
        std::map<uint32_t, std::string> got;
        Packet p;
        while (got.size() < N && recv(&p))
                if (p.hdr.op == VSOCK_OP_RW)
                        got[p.hdr.dst_port] += p.data;
        ASSERT_EQ(got.size(), N);
        for (unsigned i = 0; i < N; i++)
                EXPECT_EQ(got[6000 + i], "back " + std::to_string(i));
        EXPECT_EQ(stats().connections, N);
}

TEST_F(Vsock, device_reset_closes_every_host_socket) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        d->common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        EXPECT_TRUE(eof_within(h, 2000));
        EXPECT_EQ(stats().connections, 0u);
}

/* Resets the device (the driver's status write of 0) as a vCPU thread. */
void *reset_from_vcpu(void *arg) {
        if (sandbox_enter_role(SANDBOX_ROLE_VCPU) < 0)
                _exit(3);
        ((PciDriver *) arg)->common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        return nullptr;
}

/* In the VMM the driver's reset runs on a vCPU thread under the vcpu
 * role's seccomp filter, which has no epoll_ctl: tearing the streams down
 * there ended the VMM by SIGSYS. Here the reset comes from such a thread
 * with the sandbox enforcing; a death test, so that the filter and its
 * SIGSYS handler stay in a child process. */
TEST_F(Vsock, device_reset_from_a_sandboxed_vcpu_thread_closes_streams_and_nothing_dies) {
        GTEST_FLAG_SET(death_test_style, "threadsafe");
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        EXPECT_EXIT(
                {
                        PolicyError e;
                        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                            virtio_device_table_register_roles() < 0 ||
                            sandbox_setup(SANDBOX_MODE_ENFORCE, nullptr, 0, &e) < 0)
                                _exit(2);
                        /* A plain pthread given the driver: UBSan's vptr
                         * checks on the fixture or on std::thread's state
                         * call pipe2, which the vcpu filter refuses. */
                        pthread_t vcpu;
                        if (pthread_create(&vcpu, nullptr, reset_from_vcpu, d.get()) != 0)
                                _exit(4);
                        pthread_join(vcpu, nullptr);
                        _exit(eof_within(h, 2000) && stats().connections == 0 ? 0 : 1);
                },
                ::testing::ExitedWithCode(0), "");
}

TEST_F(Vsock, event_buffers_stay_with_the_device_while_nothing_happens) {
        int l = keep(unix_listen(path + "_1234"));
        post_event(VSOCK_EVENT_SIZE);
        post_event(VSOCK_EVENT_SIZE);
        post_rx(4);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_EQ(evq->used_idx(), 0u);
        EXPECT_EQ(stats().events_sent, 0u);
}

TEST_F(Vsock, device_reset_with_connections_sends_transport_reset_to_the_driver_that_comes_back) {
        int l = keep(unix_listen(path + "_1234"));
        post_event(VSOCK_EVENT_SIZE);
        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);

        driver_init();
        EXPECT_TRUE(eof_within(h, 2000));
        post_event(VSOCK_EVENT_SIZE);
        ASSERT_TRUE(d->wait_used(*evq, 1));
        EXPECT_EQ(event_id(0), VSOCK_EVENT_TRANSPORT_RESET);
        EXPECT_EQ(stats().events_sent, 1u);
        /* Once: the next buffer stays. */
        post_event(VSOCK_EVENT_SIZE);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_EQ(evq->used_idx(), 1u);
}

TEST_F(Vsock, event_posted_before_driver_ok_gets_the_transport_reset_at_activation) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);

        /* Linux posts its event buffers after DRIVER_OK, others before. */
        driver_init(false);
        post_event(VSOCK_EVENT_SIZE);
        d->driver_ok();
        ASSERT_TRUE(d->wait_used(*evq, 1));
        EXPECT_EQ(event_id(0), VSOCK_EVENT_TRANSPORT_RESET);
}

TEST_F(Vsock, device_reset_without_connections_sends_no_event) {
        post_event(VSOCK_EVENT_SIZE);
        driver_init();
        post_event(VSOCK_EVENT_SIZE);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_EQ(evq->used_idx(), 0u);
        EXPECT_EQ(stats().events_sent, 0u);
}

TEST_F(Vsock, event_buffer_too_small_is_returned_empty_and_the_event_waits) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);
        driver_init();

        post_event(VSOCK_EVENT_SIZE - 1);
        ASSERT_TRUE(d->wait_used(*evq, 1));
        EXPECT_EQ(event_id(0), -1);
        EXPECT_EQ(stats().bad_packets, 1u);
        post_event(VSOCK_EVENT_SIZE);
        ASSERT_TRUE(d->wait_used(*evq, 2));
        EXPECT_EQ(event_id(1), VSOCK_EVENT_TRANSPORT_RESET);
}

TEST_F(Vsock, read_only_event_buffer_is_returned_empty_and_the_event_waits) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);
        driver_init();

        post_event(64, false);
        ASSERT_TRUE(d->wait_used(*evq, 1));
        EXPECT_EQ(event_id(0), -1);
        uint32_t untouched = 0;
        ASSERT_EQ(guest_read(d->mem(), EV_AREA, &untouched, sizeof(untouched)), 0);
        EXPECT_EQ(untouched, 0xffffffffu);
        EXPECT_EQ(stats().bad_packets, 1u);
        post_event(VSOCK_EVENT_SIZE);
        ASSERT_TRUE(d->wait_used(*evq, 2));
        EXPECT_EQ(event_id(1), VSOCK_EVENT_TRANSPORT_RESET);
}

TEST_F(Vsock, streams_work_after_the_transport_reset) {
        int l = keep(unix_listen(path + "_1234"));
        post_rx(4);
        ASSERT_GE(guest_connect(l, 5000, 1234), 0);
        driver_init();
        post_event(VSOCK_EVENT_SIZE);
        ASSERT_TRUE(d->wait_used(*evq, 1));

        post_rx(4);
        int h = guest_connect(l, 5000, 1234);
        ASSERT_GE(h, 0);
        send(hdr(VSOCK_OP_RW, 5000, 1234), "again");
        EXPECT_EQ(read_n(h, 5), "again");
        EXPECT_EQ(stats().connections, 1u);
}

TEST_F(Vsock, vsock_keeps_its_fds_listed) {
        int fds_[32];
        EXPECT_GE(virtio_device_fds(d->device(), fds_, 32), 7u);
}

} // namespace
