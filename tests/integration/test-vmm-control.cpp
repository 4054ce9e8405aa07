/* SPDX-License-Identifier: BSD-3-Clause */
/* The control socket of a running VMM: info, pause, resume, stop, and bad
 * messages that must not disturb it. */
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "tests/integration/vmm-process.h"

namespace {

constexpr int kTimeoutMs = 60000;

unsigned count_ticks(const std::string &out) {
        unsigned n = 0;
        for (size_t p = out.find("spin: tick"); p != std::string::npos; p = out.find("spin: tick", p + 1))
                n++;
        return n;
}

class SpinningVm : public ::testing::Test {
protected:
        void SetUp() override {
                std::string why;
                if (!kvm_usable(&why))
                        GTEST_SKIP() << "needs /dev/kvm: " << why;
                socket_ = dir_.file("control.sock");
                vmm_ = std::make_unique<Process>(std::vector<std::string>{
                        vmm_path(), "run", "--cpus", "2", "--socket", socket_, guest_path("spin") });
                ASSERT_TRUE(vmm_->wait_for_output("spin: tick 1\n", kTimeoutMs)) << vmm_->out() << vmm_->err();
        }

        RunResult client(const std::vector<std::string> &args) {
                std::vector<std::string> argv = { vmm_path() };
                argv.insert(argv.end(), args.begin(), args.end());
                Process p(argv);
                return p.wait(20000);
        }

        TempDir dir_;
        std::string socket_;
        std::unique_ptr<Process> vmm_;
};

} // namespace

TEST_F(SpinningVm, InfoReportsRunningStateVcpusAndMemory) {
        RunResult r = client({ "info", socket_ });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("256"), std::string::npos) << r.out;

        r = client({ "info", "--json", socket_ });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("\"state\":\"running\""), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("\"vcpus\":2"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("\"memory_bytes\":268435456"), std::string::npos) << r.out;
}

TEST_F(SpinningVm, PauseStopsGuestTicksAndResumeRestartsThem) {
        RunResult r = client({ "pause", socket_ });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(client({ "info", socket_ }).out.find("paused"), std::string::npos);

        unsigned before = count_ticks(vmm_->out());
        std::this_thread::sleep_for(std::chrono::milliseconds(600));
        unsigned after = count_ticks(vmm_->out());
        EXPECT_EQ(before, after) << "the guest kept running while paused";

        r = client({ "pause", socket_ });
        EXPECT_EQ(r.exit_code, 1) << "pausing twice is an error";
        EXPECT_NE(r.err.find("already"), std::string::npos) << r.err;

        r = client({ "resume", socket_ });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(vmm_->wait_for_output("spin: tick " + std::to_string(after + 2) + "\n", kTimeoutMs))
                << vmm_->out();
        EXPECT_NE(client({ "info", socket_ }).out.find("running"), std::string::npos);
}

TEST_F(SpinningVm, StopPowersOffAndExitsZeroAndRemovesTheSocket) {
        RunResult r = client({ "stop", socket_ });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        RunResult v = vmm_->wait(10000);
        EXPECT_FALSE(v.timed_out);
        EXPECT_EQ(v.exit_code, 0) << v.err;
        EXPECT_NE(access(socket_.c_str(), F_OK), 0) << "socket left behind";
}

TEST_F(SpinningVm, StopWhilePausedStillExits) {
        ASSERT_EQ(client({ "pause", socket_ }).exit_code, 0);
        ASSERT_EQ(client({ "stop", socket_ }).exit_code, 0);
        RunResult v = vmm_->wait(10000);
        EXPECT_FALSE(v.timed_out);
        EXPECT_EQ(v.exit_code, 0) << v.err;
}

TEST_F(SpinningVm, BadMessagesGetErrorsAndTheVmmKeepsServing) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0);
        struct sockaddr_un sa = {};
        sa.sun_family = AF_UNIX;
        strncpy(sa.sun_path, socket_.c_str(), sizeof(sa.sun_path) - 1);
        ASSERT_EQ(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);

        struct timeval tv = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

        /* Truncated header, garbage, wrong version, unknown type, oversized. */
        std::vector<std::string> bad = {
                std::string("MJ", 2),
                std::string(24, '\xff'),
                std::string("MJDM\x07\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 24),
                std::string("MJDM\x01\x00\x63\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 24),
                std::string(8192, 'x'),
        };
        for (auto &m : bad) {
                ASSERT_EQ(send(fd, m.data(), m.size(), 0), (ssize_t) m.size());
                char reply[4096];
                ssize_t n = recv(fd, reply, sizeof(reply), 0);
                ASSERT_GE(n, 24) << "no error reply for a bad message of " << m.size() << " bytes";
                int32_t status;
                memcpy(&status, reply + 12, 4);
                EXPECT_LT(status, 0) << "bad message accepted";
        }
        close(fd);

        RunResult r = client({ "info", socket_ });
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("running"), std::string::npos);
        EXPECT_TRUE(vmm_->wait_for_output("spin: tick " + std::to_string(count_ticks(vmm_->out()) + 1) + "\n",
                                          kTimeoutMs));
}

TEST(VmmControl, ClientWithoutAVmmExitsThree) {
        TempDir dir;
        RunResult r = run_vmm({ "info", dir.file("nothing.sock") }, 10000);
        EXPECT_EQ(r.exit_code, 3) << r.err;
        EXPECT_FALSE(r.err.empty());
}

/* How the daemon drives a VMM: files and the control socket as inherited
 * descriptors, no paths. */
TEST(VmmControl, InheritedDescriptorsForKernelConsoleAndControl) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        std::string console = dir.file("console");
        std::string script = "exec 5<'" + guest_path("spin") + "' 7>'" + console + "'; exec '" + vmm_path() +
                             "' run --serial fd:7 --control-fd 3 fd:5";
        /* The child gets the socket as fd 3 (dup2 without CLOEXEC). */
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
                dup2(sv[1], 3);
                execl("/bin/sh", "sh", "-c", script.c_str(), (char *) nullptr);
                _exit(127);
        }
        close(sv[1]);

        bool ticked = false;
        for (int i = 0; i < 600 && !ticked; i++) {
                ticked = read_file(console).find("spin: tick 1\n") != std::string::npos;
                usleep(100 * 1000);
        }
        EXPECT_TRUE(ticked) << read_file(console);

        /* info, then stop, over the inherited socket (header per docs/control-protocol.md). */
        unsigned char req[24] = { 'M', 'J', 'D', 'M', 1, 0, 1, 0, 9, 0, 0, 0 };
        ASSERT_EQ(send(sv[0], req, sizeof(req), 0), (ssize_t) sizeof(req));
        unsigned char reply[128];
        struct timeval tv = { 10, 0 };
        setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ASSERT_EQ(recv(sv[0], reply, sizeof(reply), 0), 24 + 32);
        EXPECT_EQ(reply[6] | (reply[7] << 8), 0x8001);
        EXPECT_EQ(reply[24], 1) << "state running";

        req[6] = 4; /* stop */
        ASSERT_EQ(send(sv[0], req, sizeof(req), 0), (ssize_t) sizeof(req));
        ASSERT_EQ(recv(sv[0], reply, sizeof(reply), 0), 24);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
        close(sv[0]);
}

namespace {

int connect_raw(const std::string &path) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = unix_addr(path);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

void send_request(int fd, uint16_t type, uint32_t id, const std::string &payload = {}) {
        std::string m("MJDM\x01\x00", 6);
        m += std::string(1, (char) (type & 0xff)) + std::string(1, (char) (type >> 8));
        for (int i = 0; i < 4; i++)
                m += (char) ((id >> (8 * i)) & 0xff);
        m += std::string(4, '\0');
        uint32_t len = (uint32_t) payload.size();
        for (int i = 0; i < 4; i++)
                m += (char) ((len >> (8 * i)) & 0xff);
        m += std::string(4, '\0');
        m += payload;
        ASSERT_EQ(send(fd, m.data(), m.size(), MSG_NOSIGNAL), (ssize_t) m.size());
}

struct RawReply {
        ssize_t n = -1;         /* 0: hang-up, -1: nothing within the timeout */
        uint16_t type = 0;
        uint32_t id = 0;
        int32_t status = 0;
        std::string payload;
};

RawReply recv_reply(int fd, int timeout_ms) {
        RawReply r;
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) <= 0)
                return r;
        char buf[4096];
        r.n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r.n >= 24) {
                memcpy(&r.type, buf + 6, 2);
                memcpy(&r.id, buf + 8, 4);
                memcpy(&r.status, buf + 12, 4);
                r.payload.assign(buf + 24, (size_t) r.n - 24);
        }
        return r;
}

} // namespace

/* defect 10: the socket file must not depend on the umask for its privacy. */
TEST(VmmControlSocket, SocketIsMode0600UnderUmask000) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string sock = dir.file("control.sock");
        mode_t old = umask(0);
        Process vmm({ vmm_path(), "run", "--socket", sock, guest_path("spin") });
        umask(old);
        ASSERT_TRUE(vmm.wait_for_output("spin: tick 1\n", kTimeoutMs)) << vmm.out() << vmm.err();

        struct stat st;
        ASSERT_EQ(lstat(sock.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
}

/* defect 10: even where the file lets another user in, the VMM does not
 * talk to it (SO_PEERCRED). */
TEST(VmmControlSocket, ConnectionFromAnotherUidIsRefused) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to run a client as uid 65534";
        if (access("/usr/bin/setpriv", X_OK) != 0)
                GTEST_SKIP() << "needs setpriv";
        TempDir dir;
        std::string sock = dir.file("control.sock");
        Process vmm({ vmm_path(), "run", "--socket", sock, guest_path("spin") });
        ASSERT_TRUE(vmm.wait_for_output("spin: tick 1\n", kTimeoutMs)) << vmm.out() << vmm.err();
        ASSERT_EQ(chmod(dir.path.c_str(), 0755), 0);
        ASSERT_EQ(chmod(sock.c_str(), 0666), 0);

        Process other({ "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", vmm_path(), "info",
                        sock });
        RunResult r = other.wait(20000);
        EXPECT_NE(r.exit_code, 0) << "uid 65534 was served: " << r.out;
        EXPECT_EQ(r.out.find("State"), std::string::npos) << r.out;

        /* The owner (root here) still is. */
        r = run_vmm({ "info", sock }, 20000);
        EXPECT_EQ(r.exit_code, 0) << r.err;
}

/* defect 10: idle clients cannot hold every slot, and the daemon's own
 * connection (--control-fd) is outside the limit. */
TEST(VmmControlSocket, IdleClientsAreClosedAndTheDaemonConnectionStillWorks) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string sock = dir.file("control.sock");
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        fcntl(sv[0], F_SETFD, FD_CLOEXEC);
        Process vmm({ vmm_path(), "run", "--socket", sock, "--control-fd", std::to_string(sv[1]),
                      guest_path("spin") },
                    { "MAJORDOME_VMM_IDLE_TIMEOUT_MS=1500" });
        close(sv[1]);
        ASSERT_TRUE(vmm.wait_for_output("spin: tick 1\n", kTimeoutMs)) << vmm.out() << vmm.err();

        /* All 16 client slots, taken by clients that never send anything. */
        std::vector<int> idle;
        for (int i = 0; i < 16; i++) {
                int fd = connect_raw(sock);
                ASSERT_GE(fd, 0);
                idle.push_back(fd);
                send_request(fd, 1, 1); /* one info each: admitted, then idle */
                RawReply a = recv_reply(fd, 10000);
                ASSERT_EQ(a.type, 0x8001) << "client " << i << " not admitted (status " << a.status << ")";
        }
        /* The daemon's connection is served with every slot taken. */
        send_request(sv[0], 1, 42);
        RawReply d = recv_reply(sv[0], 10000);
        EXPECT_EQ(d.type, 0x8001);
        EXPECT_EQ(d.id, 42u);
        EXPECT_EQ(d.status, 0);

        /* The idle ones are hung up on after the (shortened) idle timeout. */
        for (int fd : idle) {
                RawReply h = recv_reply(fd, 30000);
                EXPECT_EQ(h.n, 0) << "an idle client was not disconnected";
                close(fd);
        }
        /* A new client gets in, and the daemon's connection never idled out. */
        RunResult r = run_vmm({ "info", sock }, 20000);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        send_request(sv[0], 1, 43);
        d = recv_reply(sv[0], 10000);
        EXPECT_EQ(d.type, 0x8001);
        EXPECT_EQ(d.id, 43u);
        close(sv[0]);
}

/* defect 6: a balloon-stats request waiting for a silent guest does not
 * hold the VMM's loop: info and pause sent after it are answered first. */
TEST(VmmControlBalloon, InfoAndPauseAnswerWhileBalloonStatsIsPending) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string sock = dir.file("control.sock");
        Process vmm({ vmm_path(), "run", "--mem", "64M", "--balloon", "--cmdline", "stats=mute", "--socket", sock,
                      guest_path("virtio-balloon") });
        ASSERT_TRUE(vmm.wait_for_output("balloon: ready", kTimeoutMs)) << vmm.out() << vmm.err();

        Fd fd(connect_raw(sock));
        ASSERT_GE(fd.fd, 0);
        std::string stats_payload("\xb8\x0b\x00\x00\x00\x00\x00\x00", 8); /* 3000 ms */
        send_request(fd.fd, 33, 1, stats_payload);
        send_request(fd.fd, 1, 2);
        send_request(fd.fd, 2, 3);

        RawReply a = recv_reply(fd.fd, 20000);
        RawReply b = recv_reply(fd.fd, 20000);
        RawReply c = recv_reply(fd.fd, 20000);
        EXPECT_EQ(a.type, 0x8001) << "info was not answered first (got type " << std::hex << a.type << ")";
        EXPECT_EQ(a.id, 2u);
        EXPECT_EQ(b.type, 0x8002);
        EXPECT_EQ(b.id, 3u);
        EXPECT_EQ(b.status, 0) << "pause";
        ASSERT_EQ(c.type, 0x8021);
        EXPECT_EQ(c.id, 1u);
        EXPECT_EQ(c.status, 0);
        EXPECT_GE(c.payload.size(), 40u);
}
