/* SPDX-License-Identifier: BSD-3-Clause */
/* Control-socket clients that vanish mid request (tests/faults/README.md):
 * each case abuses a running VMM (spin guest, real sandbox) many times in a
 * row, then a fresh `majordome-vmm info` must still answer, the guest must
 * still tick and the VMM must hold no more descriptors than before. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include "tests/integration/vmm-process.h"

namespace {

/* The sends below are not checked: a VMM with its 16 clients already may
 * refuse a connection and close it first (-EUSERS), which is its right;
 * what counts is that it goes on serving. */
constexpr int kTimeoutMs = 60000;
constexpr int kRounds = 40; /* more than the 16 connections a VMM takes at once */

unsigned count_ticks(const std::string &out) {
        unsigned n = 0;
        for (size_t p = out.find("spin: tick"); p != std::string::npos; p = out.find("spin: tick", p + 1))
                n++;
        return n;
}

/* docs/control-protocol.md: magic, version 1, type, id, status, length, flags. */
std::string header(uint16_t type, uint32_t id, uint32_t length) {
        unsigned char h[24] = { 'M', 'J', 'D', 'M', 1, 0 };
        h[6] = (unsigned char) type;
        h[7] = (unsigned char) (type >> 8);
        memcpy(h + 8, &id, 4);
        memcpy(h + 16, &length, 4);
        return std::string((const char *) h, sizeof(h));
}

int seqpacket_connect(const std::string &path) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un sa = unix_addr(path);
        if (fd >= 0 && connect(fd, (sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Descriptors open in pid and its descendants (the jailed VMM serves the
 * socket from a child). */
unsigned count_fds(pid_t pid) {
        unsigned n = 0;
        std::string d = "/proc/" + std::to_string(pid) + "/fd";
        if (DIR *dir = opendir(d.c_str())) {
                while (dirent *e = readdir(dir))
                        n += e->d_name[0] != '.';
                closedir(dir);
        }
        std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
        for (pid_t c; children >> c;)
                n += count_fds(c);
        return n;
}

class AbandonedClients : public ::testing::Test {
protected:
        void SetUp() override {
                SKIP_WITHOUT_KVM();
                socket_ = dir_.file("control.sock");
                vmm_ = std::make_unique<Process>(
                        std::vector<std::string>{ vmm_path(), "run", "--socket", socket_, guest_path("spin") });
                ASSERT_TRUE(vmm_->wait_for_output("spin: tick 1\n", kTimeoutMs)) << vmm_->out() << vmm_->err();
                /* One answered request first, so the server's own state
                 * (e.g. lazily opened files) is in the baseline. */
                ASSERT_EQ(run_vmm({ "info", socket_ }, 20000).exit_code, 0);
                fds_before_ = count_fds(vmm_->pid());
                /* The count must see the server's process (KVM fds, the
                 * listening socket), or the leak check below means nothing. */
                ASSERT_GT(fds_before_, 6u);
        }

        /* The VMM still serves, the guest still runs, no descriptor leaked. */
        void ExpectStillServing() {
                RunResult r = run_vmm({ "info", socket_ }, 20000);
                EXPECT_EQ(r.exit_code, 0) << r.err << "\nVMM stderr:\n" << vmm_->err();
                EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
                unsigned ticks = count_ticks(vmm_->out());
                EXPECT_TRUE(vmm_->wait_for_output("spin: tick " + std::to_string(ticks + 2) + "\n", kTimeoutMs))
                        << "the guest stopped ticking\n" << vmm_->err();
                EXPECT_FALSE(vmm_->exited(0)) << vmm_->err();
                /* Hang-ups are handled asynchronously: give the server a
                 * moment to close what it holds. */
                unsigned now = 0;
                for (int i = 0; i < 100 && (now = count_fds(vmm_->pid())) > fds_before_; i++)
                        std::this_thread::sleep_for(std::chrono::milliseconds(50));
                EXPECT_LE(now, fds_before_) << "descriptors leaked by abandoned connections";
        }

        TempDir dir_;
        std::string socket_;
        std::unique_ptr<Process> vmm_;
        unsigned fds_before_ = 0;
};

} // namespace

TEST_F(AbandonedClients, RequestThenCloseBeforeTheReply) {
        for (int i = 0; i < kRounds; i++) {
                int fd = seqpacket_connect(socket_);
                ASSERT_GE(fd, 0) << "round " << i << ": " << strerror(errno);
                std::string req = header(1 /* info */, (uint32_t) i, 0);
                (void) send(fd, req.data(), req.size(), MSG_NOSIGNAL);
                close(fd);
        }
        ExpectStillServing();
}

TEST_F(AbandonedClients, ShortAndGarbageDatagramsThenClose) {
        const std::vector<std::string> bad = {
                std::string("MJ", 2),
                std::string("MJDM\x01\x00\x01", 7),
                std::string(24, '\0'),
                std::string(100, '\xa5'),
                std::string(), /* a hang-up on SOCK_SEQPACKET */
        };
        for (int i = 0; i < kRounds; i++) {
                int fd = seqpacket_connect(socket_);
                ASSERT_GE(fd, 0) << "round " << i << ": " << strerror(errno);
                const std::string &m = bad[(size_t) i % bad.size()];
                (void) send(fd, m.data(), m.size(), MSG_NOSIGNAL);
                close(fd);
        }
        ExpectStillServing();
}

/* A header announcing more payload than the datagram has: on a
 * SOCK_SEQPACKET socket the rest never comes, and the server must not
 * wait for it. Then a request split over two datagrams, the client gone
 * after the first. */
TEST_F(AbandonedClients, HeaderClaimingMorePayloadThanSent) {
        for (int i = 0; i < kRounds; i++) {
                int fd = seqpacket_connect(socket_);
                ASSERT_GE(fd, 0) << "round " << i << ": " << strerror(errno);
                std::string req = header(16 /* disk-resize */, (uint32_t) i, 16) + std::string(4, '\0');
                if (i % 2)
                        req = header(1, (uint32_t) i, 4000);
                (void) send(fd, req.data(), req.size(), MSG_NOSIGNAL);
                close(fd);
        }
        ExpectStillServing();
}

TEST_F(AbandonedClients, ConnectAndCloseAtOnce) {
        for (int i = 0; i < 4 * kRounds; i++) {
                int fd = seqpacket_connect(socket_);
                ASSERT_GE(fd, 0) << "round " << i << ": " << strerror(errno);
                close(fd);
        }
        ExpectStillServing();
}

/* Many requests on one connection never read, then a hang-up with the
 * replies queued: the server must not block on the full socket. Requests
 * carry descriptors the server must close. */
TEST_F(AbandonedClients, PipelinedRequestsWithDescriptorsNeverRead) {
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(devnull, 0);
        for (int round = 0; round < 4; round++) {
                int fd = seqpacket_connect(socket_);
                ASSERT_GE(fd, 0) << strerror(errno);
                for (int i = 0; i < 200; i++) {
                        std::string req = header(1, (uint32_t) i, 0);
                        iovec iov = { req.data(), req.size() };
                        union {
                                cmsghdr h;
                                char buf[CMSG_SPACE(sizeof(int))];
                        } control = {};
                        msghdr mh = {};
                        mh.msg_iov = &iov;
                        mh.msg_iovlen = 1;
                        mh.msg_control = control.buf;
                        mh.msg_controllen = sizeof(control.buf);
                        cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(c), &devnull, sizeof(int));
                        /* The server may drop us once our queue is full. */
                        if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                                break;
                }
                close(fd);
        }
        close(devnull);
        ExpectStillServing();
}

/* As many clients as the VMM takes at once (docs/control-protocol.md:
 * 16), each with a request in flight, all gone together: their slots must
 * come back. */
TEST_F(AbandonedClients, FullHouseOfClientsGoneAtOnce) {
        for (int round = 0; round < 3; round++) {
                std::vector<int> fds;
                for (int i = 0; i < 16; i++) {
                        int fd = seqpacket_connect(socket_);
                        ASSERT_GE(fd, 0) << "round " << round << ": " << strerror(errno);
                        std::string req = header(1, (uint32_t) i, 0);
                        (void) send(fd, req.data(), req.size(), MSG_NOSIGNAL);
                        fds.push_back(fd);
                }
                for (int fd : fds)
                        close(fd);
        }
        ExpectStillServing();
}
