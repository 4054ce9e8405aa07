/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-vsock stream throughput through the device model against an
 * AF_UNIX socketpair, in the same run (issue 3: goal >= 0.5x).
 *
 * No KVM: the tests/virtio harness plays the guest driver on the real PCI
 * transport and the device's worker thread does the work, as under a VM.
 * One stream, host program on a Unix socket (PATH_P), both directions:
 *   host->guest  a host thread writes 64 KiB chunks into its socket; the
 *                fake guest keeps 128 receive buffers of 64 KiB posted,
 *                counts what lands, reposts, and returns credit
 *                (CREDIT_UPDATE) every 256 KiB with a 4 MiB buf_alloc;
 *   guest->host  the fake guest sends 64 KiB RW packets within the
 *                device's credit, a host thread reads its socket.
 * The fake guest polls the used rings (sleeping on the MSI-X vector when
 * idle) and reads no payload byte, so the figure is the device's cost.
 * Each direction has its own reference, a socketpair moving the same bytes
 * with writer and reader threads, 64 KiB at a time, and the send buffer of
 * the writing socket in that direction: the host program's default for
 * host->guest, VSOCK_BUF_ALLOC (what the device asks for its stream
 * sockets) for guest->host. A round runs each reference next to its
 * direction; the verdict is the median over ROUNDS of the per-round ratio.
 *
 * Usage: vsock-bench [MIB [ROUNDS [both|h2g|g2h]]]   (default 256 5 both)
 * Prints one line per direction with its ratio and PASS or FAIL, then a
 * summary line ending in PASS or FAIL for the 0.5x goal (exit 1 on FAIL,
 * 2 when it cannot run). */
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/devices/vsock.h"
#include "tests/virtio/harness.h"

extern "C" const VirtioDeviceOps virtio_vsock_ops;

using harness::BASE_FEATURES;
using harness::PciDriver;
using harness::TempDir;
using harness::VirtqDriver;

namespace {

constexpr uint16_t QSIZE = 256;
constexpr uint32_t CHUNK = 64 * 1024;
constexpr uint32_t SLOT = CHUNK + 4096;
constexpr unsigned N_RX = 128, N_TX = 64;
constexpr uint64_t RX_AREA = 0x100000, TX_AREA = RX_AREA + N_RX * (uint64_t) SLOT + 0x10000;
constexpr uint32_t GUEST_BUF_ALLOC = 4 * 1024 * 1024;
constexpr uint32_t CREDIT_EVERY = 256 * 1024;
constexpr uint64_t CID = 3;

uint64_t now_ns_() {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

double mib_s(uint64_t bytes, uint64_t ns) {
        return (double) bytes / (1024.0 * 1024.0) / ((double) ns / 1e9);
}

void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0) {
                        perror("write");
                        exit(2);
                }
                p += k;
                n -= (size_t) k;
        }
}

void read_all(int fd, uint64_t total) {
        std::vector<char> buf(CHUNK);
        while (total > 0) {
                ssize_t k = read(fd, buf.data(), std::min<uint64_t>(buf.size(), total));
                if (k <= 0) {
                        perror("read");
                        exit(2);
                }
                total -= (uint64_t) k;
        }
}

/* The reference: the same bytes through a socketpair whose writing end
 * has the send buffer of the path it stands for (0: the default). */
uint64_t socketpair_run(uint64_t total, int sndbuf) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                exit(2);
        if (sndbuf > 0 && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
                exit(2);
        std::vector<char> chunk(CHUNK, 'x');
        uint64_t t0 = now_ns_();
        std::thread w([&] {
                for (uint64_t done = 0; done < total; done += CHUNK)
                        write_all(sv[0], chunk.data(), CHUNK);
        });
        read_all(sv[1], total);
        w.join();
        uint64_t ns = now_ns_() - t0;
        close(sv[0]);
        close(sv[1]);
        return ns;
}

class Bench {
public:
        explicit Bench(const std::string &dir) : path_(dir + "/v.sock") {
                std::string arg = "cid=3,path=" + path_;
                d_.reset(new PciDriver(&virtio_vsock_ops, arg.c_str(), 64 * MiB));
                if (d_->error() < 0) {
                        fprintf(stderr, "vsock device: %s\n", strerror(-d_->error()));
                        exit(2);
                }
                rxq_.reset(new VirtqDriver(d_->mem(), 0x10000, QSIZE));
                txq_.reset(new VirtqDriver(d_->mem(), 0x20000 + 0x10000, QSIZE));
                evq_.reset(new VirtqDriver(d_->mem(), 0x60000, 16));
                if (!d_->negotiate(BASE_FEATURES))
                        exit(2);
                /* One MSI-X vector for both queues: the guest sleeps on it
                 * when it has nothing to do, as a real one would. */
                d_->setup_queue(0, *rxq_, 0);
                d_->setup_queue(1, *txq_, 0);
                d_->setup_queue(2, *evq_);
                d_->enable_msix();
                d_->program_vector(0, 0xfee00000, 0x40);
                d_->set_vector_masked(0, false);
                d_->driver_ok();
                for (unsigned i = 0; i < N_RX; i++)
                        post_rx();
                d_->kick(0);
        }

        /* A guest-initiated stream to PATH_port; the host end. */
        int connect(uint32_t guest_port, uint32_t port) {
                std::string lpath = path_ + "_" + std::to_string(port);
                unlink(lpath.c_str());
                int l = harness::unix_listen(lpath);
                guest_port_ = guest_port;
                port_ = port;
                tx_cnt_ = fwd_cnt_ = dev_fwd_cnt_ = 0;
                dev_buf_alloc_ = 0;
                connected_ = false;
                send_ctl(VSOCK_OP_REQUEST);
                while (!connected_)
                        if (!poll_rx(nullptr))
                                idle();
                int h = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
                close(l);
                unlink(lpath.c_str());
                return h;
        }

        /* Host writes total bytes; the guest takes them. */
        uint64_t host_to_guest(int h, uint64_t total) {
                std::vector<char> chunk(CHUNK, 'h');
                uint64_t got = 0, t0 = now_ns_();
                std::thread w([&] {
                        for (uint64_t done = 0; done < total; done += CHUNK)
                                write_all(h, chunk.data(), CHUNK);
                });
                while (got < total)
                        if (!poll_rx(&got))
                                idle();
                w.join();
                return now_ns_() - t0;
        }

        /* The guest sends total bytes; the host reads them. */
        uint64_t guest_to_host(int h, uint64_t total) {
                uint64_t sent = 0, t0 = now_ns_();
                std::thread r([&] { read_all(h, total); });
                for (unsigned i = 0; i < N_TX; i++) {
                        VsockHdr hd = hdr(VSOCK_OP_RW);
                        hd.len = CHUNK;
                        (void) guest_write(d_->mem(), TX_AREA + (uint64_t) i * SLOT, &hd, sizeof(hd));
                }
                while (sent < total) {
                        reap_tx();
                        uint32_t credit = vsock_peer_credit(dev_buf_alloc_, tx_cnt_, dev_fwd_cnt_);
                        uint16_t old = tx_avail_;
                        while (sent < total && credit >= CHUNK && tx_inflight_ < N_TX - 1) {
                                send_data_slot();
                                sent += CHUNK;
                                credit -= CHUNK;
                        }
                        if (old != tx_avail_)
                                notify(1, *txq_, old, tx_avail_);
                        if (!poll_rx(nullptr) && old == tx_avail_)
                                idle();
                }
                r.join();
                return now_ns_() - t0;
        }

private:
        /* EVENT_IDX (virtio 1.2 §2.7.10): notify only when the device asked. */
        void notify(unsigned q, VirtqDriver &vq, uint16_t old_idx, uint16_t new_idx) {
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                uint16_t ev = vq.avail_event();
                if ((uint16_t) (new_idx - ev - 1) < (uint16_t) (new_idx - old_idx))
                        d_->kick(q);
        }

        /* Nothing to do: ask for an interrupt at the next used entry and
         * sleep on the vector (1 ms at most, the guest is not the subject). */
        void idle() {
                rxq_->set_used_event(rx_seen_);
                txq_->set_used_event(tx_seen_);
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                if (rxq_->used_idx() != rx_seen_ || txq_->used_idx() != tx_seen_)
                        return;
                (void) d_->wait_vector(0, 1);
        }

        VsockHdr hdr(uint16_t op) {
                VsockHdr h{};
                h.src_cid = CID;
                h.dst_cid = VSOCK_HOST_CID;
                h.src_port = guest_port_;
                h.dst_port = port_;
                h.type = VSOCK_TYPE_STREAM;
                h.op = op;
                h.buf_alloc = GUEST_BUF_ALLOC;
                h.fwd_cnt = fwd_cnt_;
                return h;
        }

        void post_rx() {
                uint16_t slot = (uint16_t) (rx_posted_ % N_RX);
                rxq_->add_chain({ { RX_AREA + (uint64_t) slot * SLOT, CHUNK + VSOCK_HDR_SIZE, true } });
                rx_head_slot_[(uint16_t) (rx_posted_ % QSIZE)] = slot;
                rx_posted_++;
        }

        void reap_tx() {
                uint16_t u = txq_->used_idx();
                while (tx_seen_ != u) {
                        tx_seen_++;
                        tx_inflight_--;
                }
        }

        /* One tx packet from the next data slot (header written once). */
        void send_data_slot() {
                uint64_t addr = TX_AREA + (uint64_t) (tx_slot_ % N_TX) * SLOT;
                uint32_t fwd = fwd_cnt_;
                (void) guest_write(d_->mem(), addr + offsetof(VsockHdr, fwd_cnt), &fwd, 4);
                txq_->add_chain({ { addr, CHUNK + VSOCK_HDR_SIZE, false } });
                tx_avail_++;
                tx_slot_++;
                tx_inflight_++;
                tx_cnt_ += CHUNK;
        }

        void send_ctl(uint16_t op) {
                VsockHdr h = hdr(op);
                uint64_t addr = TX_AREA + (uint64_t) N_TX * SLOT + (uint64_t) (ctl_n_++ % 16) * 64;
                (void) guest_write(d_->mem(), addr, &h, sizeof(h));
                txq_->add_chain({ { addr, sizeof(h), false } });
                tx_inflight_++;
                tx_avail_++;
                notify(1, *txq_, (uint16_t) (tx_avail_ - 1), tx_avail_);
        }

        /* Takes what the device put in receive buffers, reposts them. */
        bool poll_rx(uint64_t *got) {
                uint16_t u = rxq_->used_idx();
                uint16_t old = (uint16_t) rx_posted_;
                unsigned n = 0;
                reap_tx();
                while (rx_seen_ != u) {
                        VirtqUsedElem e = rxq_->used(rx_seen_ % QSIZE);
                        VsockHdr h;
                        (void) guest_read(d_->mem(), RX_AREA + (uint64_t) rx_head_slot_[(uint16_t) e.id] * SLOT, &h,
                                          sizeof(h));
                        rx_seen_++;
                        post_rx();
                        n++;
                        if (h.dst_port != guest_port_)
                                continue; /* an earlier round's stream closing */
                        dev_buf_alloc_ = h.buf_alloc;
                        dev_fwd_cnt_ = h.fwd_cnt;
                        if (h.op == VSOCK_OP_RESPONSE)
                                connected_ = true;
                        if (h.op == VSOCK_OP_RW) {
                                fwd_cnt_ += h.len;
                                if (got)
                                        *got += h.len;
                                if (fwd_cnt_ - fwd_cnt_sent_ >= CREDIT_EVERY) {
                                        fwd_cnt_sent_ = fwd_cnt_;
                                        send_ctl(VSOCK_OP_CREDIT_UPDATE);
                                }
                        } else if (h.op == VSOCK_OP_RST) {
                                fprintf(stderr, "vsock-bench: the device reset the stream\n");
                                exit(2);
                        }
                }
                if (n)
                        notify(0, *rxq_, old, (uint16_t) rx_posted_);
                return n > 0;
        }

        std::string path_;
        std::unique_ptr<PciDriver> d_;
        std::unique_ptr<VirtqDriver> rxq_, txq_, evq_;
        uint16_t rx_head_slot_[QSIZE] = {};
        uint32_t rx_posted_ = 0;
        uint16_t rx_seen_ = 0, tx_seen_ = 0;
        unsigned tx_inflight_ = 0, tx_slot_ = 0, ctl_n_ = 0;
        uint16_t tx_avail_ = 0;
        uint32_t guest_port_ = 0, port_ = 0;
        bool connected_ = false;
        uint32_t tx_cnt_ = 0, fwd_cnt_ = 0, fwd_cnt_sent_ = 0, dev_fwd_cnt_ = 0, dev_buf_alloc_ = 0;
};

double median(std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
}

/* One direction's figures over the rounds. */
struct Figures {
        const char *name;
        std::vector<double> rate, ref_rate, ratio;

        void add(uint64_t total, uint64_t ns, uint64_t ref_ns) {
                rate.push_back(mib_s(total, ns));
                ref_rate.push_back(mib_s(total, ref_ns));
                ratio.push_back((double) ref_ns / (double) ns);
        }
        bool pass() const { return median(ratio) >= 0.5; }
        void print() const {
                printf("%-12s %6.0f MiB/s  socketpair %6.0f MiB/s  %.2fx (rounds %.2f..%.2f)  %s\n", name,
                       median(rate), median(ref_rate), median(ratio), *std::min_element(ratio.begin(), ratio.end()),
                       *std::max_element(ratio.begin(), ratio.end()), pass() ? "PASS" : "FAIL");
        }
};

} // namespace

int main(int argc, char **argv) {
        uint64_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 256;
        unsigned rounds = argc > 2 ? (unsigned) atoi(argv[2]) : 5;
        std::string which = argc > 3 ? argv[3] : "both";
        bool h2g = which == "both" || which == "h2g", g2h = which == "both" || which == "g2h";
        uint64_t total = mib * 1024 * 1024;

        if (rounds == 0 || mib == 0 || (!h2g && !g2h)) {
                fprintf(stderr, "usage: vsock-bench [MIB [ROUNDS [both|h2g|g2h]]]\n");
                return 2;
        }
        TempDir dir("vsock-bench");
        Bench b(dir.path);
        Figures fh = { "host->guest" }, fg = { "guest->host" };
        for (unsigned r = 0; r < rounds; r++) {
                int h = b.connect(1000 + r, 5000);
                if (h2g) {
                        uint64_t ref = socketpair_run(total, 0);
                        fh.add(total, b.host_to_guest(h, total), ref);
                }
                if (g2h) {
                        uint64_t ref = socketpair_run(total, VSOCK_BUF_ALLOC);
                        fg.add(total, b.guest_to_host(h, total), ref);
                }
                close(h);
        }
        printf("vsock-bench: %" PRIu64 " MiB per run, median of %u rounds\n", mib, rounds);
        bool pass = true;
        std::string summary;
        for (const Figures *f : { &fh, &fg }) {
                if (f->ratio.empty())
                        continue;
                f->print();
                pass = pass && f->pass();
                char part[64];
                snprintf(part, sizeof(part), "%s%s %.2fx", summary.empty() ? "" : ", ", f->name, median(f->ratio));
                summary += part;
        }
        printf("vsock-bench: %s socketpair (goal >= 0.5x each): %s\n", summary.c_str(), pass ? "PASS" : "FAIL");
        return pass ? 0 : 1;
}
