/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-vsock and virtio-console on real KVM, with the sandbox on: the
 * test guests talk to this test, which plays the host programs.
 *   vsock: the guest connects to host port 1234 (we listen on PATH_1234)
 *          and we echo its line; then we connect into the guest through
 *          PATH with "CONNECT 6000" and the guest echoes ours.
 *   console: the guest writes a line on the console socket, we read it and
 *          answer; the guest checks the answer. */
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <csignal>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm-process.h"

namespace {

constexpr int kGuestTimeoutMs = 90000;

/* Whether fd becomes readable before timeout_ms, giving up as soon as the
 * VMM has exited (a dead VMM makes no new connection). */
bool readable_while_alive(int fd, Process &vmm, int timeout_ms) {
        for (int waited = 0; waited < timeout_ms; waited += 100) {
                pollfd p = { fd, POLLIN, 0 };
                if (poll(&p, 1, 100) == 1)
                        return true;
                if (vmm.exited(0))
                        return false;
        }
        return false;
}

} // namespace

TEST(VmmVsock, StreamsEchoInitiatedFromEachSide) {
        SKIP_WITHOUT_KVM();
        TempDir t;
        std::string path = t.file("v.sock");
        /* The jailed VMM runs as nobody: it must reach the directory and
         * our socket (docs/majordome-vmm.md, --vsock). */
        ASSERT_EQ(chmod(t.path.c_str(), 0755), 0);
        Fd l(unix_listen(path + "_1234"));
        ASSERT_GE(l.fd, 0);
        ASSERT_EQ(chmod((path + "_1234").c_str(), 0777), 0);

        Process vmm({ vmm_path(), "run", "--vsock", "cid=3,path=" + path, "--debug-exit", guest_path("virtio-vsock") });

        /* Guest -> host: echo the guest's line. */
        pollfd p = { l.fd, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, kGuestTimeoutMs), 1) << vmm.out() << vmm.err();
        Fd g(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
        std::string line = read_line(g.fd, kGuestTimeoutMs);
        EXPECT_EQ(line, "ping from the guest\n");
        ASSERT_EQ(write(g.fd, line.data(), line.size()), (ssize_t) line.size());

        /* Host -> guest, once the guest waits for us. */
        ASSERT_TRUE(vmm.wait_for_output("vsock-ready", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        Fd h(unix_connect(path, 5000));
        ASSERT_GE(h.fd, 0);
        ASSERT_EQ(write(h.fd, "CONNECT 6000\n", 13), 13);
        std::string ok = read_line(h.fd, kGuestTimeoutMs);
        EXPECT_EQ(ok.rfind("OK ", 0), 0u) << ok;
        ASSERT_EQ(write(h.fd, "echo me, guest\n", 15), 15);
        EXPECT_EQ(read_line(h.fd, kGuestTimeoutMs), "echo me, guest\n");
        ASSERT_EQ(shutdown(h.fd, SHUT_WR), 0);

        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 7u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

/* The guest resets the device while its stream to host port 1234 is open.
 * The reset arrives on a vCPU thread, whose seccomp role cannot take the
 * stream's socket out of the device's epoll set: the worker closes it as
 * it stops. The VMM must live on, the host end see EOF, and a new stream
 * after the guest set the device up again must work. */
TEST(VmmVsock, DeviceResetWithAnOpenStreamClosesItAndStreamsWorkAfter) {
        SKIP_WITHOUT_KVM();
        TempDir t;
        std::string path = t.file("v.sock");
        ASSERT_EQ(chmod(t.path.c_str(), 0755), 0);
        Fd l(unix_listen(path + "_1234"));
        ASSERT_GE(l.fd, 0);
        ASSERT_EQ(chmod((path + "_1234").c_str(), 0777), 0);

        Process vmm({ vmm_path(), "run", "--vsock", "cid=3,path=" + path, "--debug-exit", "--cmdline",
                      "vsock_test=reset", guest_path("virtio-vsock") });

        pollfd p = { l.fd, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, kGuestTimeoutMs), 1) << vmm.out() << vmm.err();
        Fd first(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
        std::string line = read_line(first.fd, kGuestTimeoutMs);
        ASSERT_EQ(line, "ping from the guest\n") << vmm.out() << vmm.err();
        ASSERT_EQ(write(first.fd, line.data(), line.size()), (ssize_t) line.size());

        /* The reset closes the first stream. */
        pollfd f = { first.fd, POLLIN, 0 };
        char c;
        ASSERT_EQ(poll(&f, 1, kGuestTimeoutMs), 1) << vmm.out() << vmm.err();
        EXPECT_EQ(read(first.fd, &c, 1), 0);

        /* The device, set up again, carries a new stream. */
        ASSERT_TRUE(readable_while_alive(l.fd, vmm, kGuestTimeoutMs)) << vmm.out() << vmm.err();
        Fd second(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
        line = read_line(second.fd, kGuestTimeoutMs);
        EXPECT_EQ(line, "pong after the reset\n");
        ASSERT_EQ(write(second.fd, line.data(), line.size()), (ssize_t) line.size());

        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 8u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

/* What the jailed VMM holds after guest-initiated connections: its cwd is
 * its own root, and no descriptor names a host path (stdio, which the
 * caller passes on purpose, aside). */
static void expect_nothing_of_the_host_reachable(pid_t vmm) {
        struct stat cwd, root, host_root;
        std::string proc = "/proc/" + std::to_string(vmm);

        ASSERT_EQ(stat((proc + "/cwd").c_str(), &cwd), 0);
        ASSERT_EQ(stat((proc + "/root").c_str(), &root), 0);
        ASSERT_EQ(stat("/", &host_root), 0);
        EXPECT_NE(root.st_dev, host_root.st_dev) << "not jailed";
        char link[4096] = "";
        (void) !readlink((proc + "/cwd").c_str(), link, sizeof(link) - 1);
        EXPECT_TRUE(cwd.st_dev == root.st_dev && cwd.st_ino == root.st_ino)
                << "the cwd is not the jail's root but " << link;
        for (const auto &[fd, link] : proc_fd_links(vmm)) {
                if (fd <= 2)
                        continue;
                bool in_jail = link.rfind("anon_inode:", 0) == 0 || link.rfind("socket:[", 0) == 0 ||
                               link.rfind("pipe:[", 0) == 0 || link.rfind("/memfd:", 0) == 0;
                EXPECT_TRUE(in_jail) << "fd " << fd << " -> " << link;
        }
}

TEST(VmmVsock, JailedVmmKeepsNoHostDirectoryOrCwdAfterGuestConnections) {
        SKIP_WITHOUT_KVM();
        TempDir t;
        std::string path = t.file("v.sock");
        ASSERT_EQ(chmod(t.path.c_str(), 0755), 0);
        Fd l(unix_listen(path + "_1234"));
        ASSERT_GE(l.fd, 0);
        ASSERT_EQ(chmod((path + "_1234").c_str(), 0777), 0);

        Process vmm({ vmm_path(), "run", "--vsock", "cid=3,path=" + path, "--debug-exit", guest_path("virtio-vsock") });
        pid_t jailed = jailed_vmm(vmm.pid(), kGuestTimeoutMs);
        ASSERT_GT(jailed, 0) << vmm.err();

        /* The guest's connection: the VMM connected to PATH_1234. */
        pollfd p = { l.fd, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, kGuestTimeoutMs), 1) << vmm.out() << vmm.err();
        Fd g(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
        ASSERT_GE(g.fd, 0);
        std::string line = read_line(g.fd, kGuestTimeoutMs);
        EXPECT_EQ(line, "ping from the guest\n");

        expect_nothing_of_the_host_reachable(jailed);

        /* The rest of the guest's script, which still works. */
        ASSERT_EQ(write(g.fd, line.data(), line.size()), (ssize_t) line.size());
        ASSERT_TRUE(vmm.wait_for_output("vsock-ready", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        Fd h(unix_connect(path, 5000));
        ASSERT_GE(h.fd, 0);
        ASSERT_EQ(write(h.fd, "CONNECT 6000\n", 13), 13);
        EXPECT_EQ(read_line(h.fd, kGuestTimeoutMs).rfind("OK ", 0), 0u);
        ASSERT_EQ(write(h.fd, "echo me, guest\n", 15), 15);
        EXPECT_EQ(read_line(h.fd, kGuestTimeoutMs), "echo me, guest\n");
        ASSERT_EQ(shutdown(h.fd, SHUT_WR), 0);

        expect_nothing_of_the_host_reachable(jailed);

        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

/* --disable-sandbox: PATH_P by their host path, as before. */
TEST(VmmVsock, GuestConnectionReachesTheHostWithoutTheSandbox) {
        SKIP_WITHOUT_KVM();
        TempDir t;
        std::string path = t.file("v.sock");
        Fd l(unix_listen(path + "_1234"));
        ASSERT_GE(l.fd, 0);

        Process vmm({ vmm_path(), "run", "--disable-sandbox", "--vsock", "cid=3,path=" + path, "--debug-exit",
                      guest_path("virtio-vsock") });

        pollfd p = { l.fd, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, kGuestTimeoutMs), 1) << vmm.out() << vmm.err();
        Fd g(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
        ASSERT_GE(g.fd, 0);
        EXPECT_EQ(read_line(g.fd, kGuestTimeoutMs), "ping from the guest\n");
        vmm.kill(SIGTERM);
        vmm.wait(kGuestTimeoutMs);
}

TEST(VmmVsock, VsockOptionRefusesAReservedCid) {
        TempDir t;
        RunResult r = run_vmm({ "run", "--vsock", "cid=2,path=" + t.file("v"), guest_path("hello") }, 10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}

TEST(VmmConsole, GuestLineReachesTheSocketAndTheReplyReachesTheGuest) {
        SKIP_WITHOUT_KVM();
        TempDir t;
        std::string path = t.file("console.sock");
        Process vmm({ vmm_path(), "run", "--console", "socket:" + path, "--debug-exit", guest_path("virtio-console") });

        Fd c(unix_connect(path, 10000));
        ASSERT_GE(c.fd, 0) << vmm.err();
        EXPECT_EQ(read_line(c.fd, kGuestTimeoutMs), "hello from the guest console\n");
        ASSERT_EQ(send(c.fd, "reply from host", 15, MSG_NOSIGNAL), 15);

        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 3u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

TEST(VmmConsole, ConsoleOptionRefusesAnUnknownBackend) {
        RunResult r = run_vmm({ "run", "--console", "tty:/dev/null", guest_path("hello") }, 10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}
