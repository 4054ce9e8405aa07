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

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/vmm-process.h"

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

/* What another user gets from a socket of the VMM's: a child that
 * switches to uid and gid 65534 connects to path, sends data and waits for
 * an answer. */
enum class Intruder { Closed = 0, GotData = 1, StillOpen = 2, ConnectFailed = 3, Broken = 4 };

Intruder connect_as_nobody(const std::string &path, const std::string &data, int timeout_ms) {
        sockaddr_un sa = unix_addr(path);
        pid_t pid = fork();
        if (pid < 0)
                return Intruder::Broken;
        if (pid == 0) {
                if (setgroups(0, nullptr) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit((int) Intruder::Broken);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (sockaddr *) &sa, sizeof(sa)) < 0)
                        _exit((int) Intruder::ConnectFailed);
                if (send(fd, data.data(), data.size(), MSG_NOSIGNAL) != (ssize_t) data.size())
                        _exit((int) (errno == EPIPE || errno == ECONNRESET ? Intruder::Closed : Intruder::Broken));
                pollfd p = { fd, POLLIN, 0 };
                if (poll(&p, 1, timeout_ms) != 1)
                        _exit((int) Intruder::StillOpen);
                char c;
                ssize_t k = recv(fd, &c, 1, 0);
                /* Closed with our bytes unread: ECONNRESET. */
                _exit((int) (k == 0 || (k < 0 && errno == ECONNRESET) ? Intruder::Closed :
                             k > 0 ? Intruder::GotData : Intruder::Broken));
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return Intruder::Broken;
        return (Intruder) WEXITSTATUS(status);
}

std::string intruder_name(Intruder i) {
        static const char *const names[] = { "closed", "got data", "still open", "connect failed", "broken" };
        return names[(int) i];
}

/* The listener the vsock guest's connections reach, at PATH_P: the jailed
 * VMM runs as nobody and must reach the directory and the socket
 * (docs/majordome-vmm.md, --vsock). -1 on failure. */
int listen_for_the_guest(const TempDir &t, const std::string &path_p) {
        if (chmod(t.path.c_str(), 0755) < 0)
                return -1;
        int fd = unix_listen(path_p);
        if (fd >= 0 && chmod(path_p.c_str(), 0777) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* The vsock guest's first step: it connects to host port 1234 (the test
 * listens on PATH_1234 as l) and expects its line echoed. The stream is
 * left open in g: the guest closes it first (and checks that it does). */
void echo_the_guests_ping(int l, Process &vmm, Fd &g) {
        pollfd p = { l, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, kGuestTimeoutMs), 1) << vmm.out() << vmm.err();
        g.fd = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
        std::string line = read_line(g.fd, kGuestTimeoutMs);
        ASSERT_EQ(line, "ping from the guest\n");
        /* send: a closed stream must fail the test, not kill it (SIGPIPE). */
        ASSERT_EQ(send(g.fd, line.data(), line.size(), MSG_NOSIGNAL), (ssize_t) line.size());
}

/* Its second: once it printed vsock-ready, we connect into it through
 * PATH ("CONNECT 6000") and it echoes our line. */
void echo_through_the_guests_port(const std::string &path, Process &vmm) {
        ASSERT_TRUE(vmm.wait_for_output("vsock-ready", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        Fd h(unix_connect(path, 5000));
        ASSERT_GE(h.fd, 0);
        ASSERT_EQ(send(h.fd, "CONNECT 6000\n", 13, MSG_NOSIGNAL), 13);
        std::string ok = read_line(h.fd, kGuestTimeoutMs);
        EXPECT_EQ(ok.rfind("OK ", 0), 0u) << ok << vmm.out() << vmm.err();
        ASSERT_EQ(send(h.fd, "echo me, guest\n", 15, MSG_NOSIGNAL), 15);
        EXPECT_EQ(read_line(h.fd, kGuestTimeoutMs), "echo me, guest\n");
        ASSERT_EQ(shutdown(h.fd, SHUT_WR), 0);
}

/* The console guest writes a line and checks the reply it reads. */
void answer_the_guests_console(const std::string &path, Process &vmm) {
        Fd c(unix_connect(path, 10000));
        ASSERT_GE(c.fd, 0) << vmm.err();
        EXPECT_EQ(read_line(c.fd, kGuestTimeoutMs), "hello from the guest console\n");
        ASSERT_EQ(send(c.fd, "reply from host", 15, MSG_NOSIGNAL), 15);
}

/* The guest's end: debug-exit 0 after `passes` passes. */
void expect_guest_passed(Process &vmm, unsigned passes) {
        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), passes) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

mode_t file_mode(const std::string &path) {
        struct stat st;
        return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_mode & 07777 : (mode_t) -1;
}

} // namespace

TEST(VmmVsock, StreamsEchoInitiatedFromEachSide) {
        SKIP_WITHOUT_KVM();
        TempDir t;
        std::string path = t.file("v.sock");
        Fd l(listen_for_the_guest(t, path + "_1234"));
        ASSERT_GE(l.fd, 0);

        Process vmm({ vmm_path(), "run", "--vsock", "cid=3,path=" + path, "--debug-exit", guest_path("virtio-vsock") });

        Fd g;
        ASSERT_NO_FATAL_FAILURE(echo_the_guests_ping(l.fd, vmm, g));      /* guest -> host */
        ASSERT_NO_FATAL_FAILURE(echo_through_the_guests_port(path, vmm)); /* host -> guest */
        ASSERT_NO_FATAL_FAILURE(expect_guest_passed(vmm, 7));
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
        Fd l(listen_for_the_guest(t, path + "_1234"));
        ASSERT_GE(l.fd, 0);

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
        Fd l(listen_for_the_guest(t, path + "_1234"));
        ASSERT_GE(l.fd, 0);

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
        ASSERT_NO_FATAL_FAILURE(echo_through_the_guests_port(path, vmm));

        expect_nothing_of_the_host_reachable(jailed);

        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

/* Host programs connect into the guest through PATH: only the VMM's
 * owner and root may. The file is 0600 whatever the umask, and a client
 * of another uid that reaches it anyway (the file made 0666 here) is
 * closed before its CONNECT line is read: the guest never sees it. */
TEST(VmmVsock, ListenerIsMode0600UnderUmask000AndRefusesAnotherUid) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to run a client as uid 65534";
        TempDir t;
        std::string path = t.file("v.sock");
        Fd l(listen_for_the_guest(t, path + "_1234"));
        ASSERT_GE(l.fd, 0);

        mode_t old = umask(0);
        Process vmm({ vmm_path(), "run", "--vsock", "cid=3,path=" + path, "--debug-exit", guest_path("virtio-vsock") });
        umask(old);

        Fd g;
        ASSERT_NO_FATAL_FAILURE(echo_the_guests_ping(l.fd, vmm, g));
        EXPECT_EQ(file_mode(path), 0600u) << std::oct << file_mode(path);

        ASSERT_TRUE(vmm.wait_for_output("vsock-ready", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        ASSERT_EQ(chmod(path.c_str(), 0666), 0);
        Intruder i = connect_as_nobody(path, "CONNECT 6000\nfrom another user\n", 20000);
        EXPECT_EQ(i, Intruder::Closed) << intruder_name(i);

        /* The guest's one stream on port 6000 is still the owner's. */
        ASSERT_NO_FATAL_FAILURE(echo_through_the_guests_port(path, vmm));
        ASSERT_NO_FATAL_FAILURE(expect_guest_passed(vmm, 7));
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

        ASSERT_NO_FATAL_FAILURE(answer_the_guests_console(path, vmm));
        ASSERT_NO_FATAL_FAILURE(expect_guest_passed(vmm, 3));
}

/* A guest's console is its owner's: the socket file is 0600 whatever the
 * umask, and a client of another uid that reaches it anyway (the file made
 * 0666 here) is closed unread: it gets none of the guest's output and the
 * guest none of its input (the guest checks the reply it reads). */
TEST(VmmConsole, SocketIsMode0600UnderUmask000AndRefusesAnotherUid) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to run a client as uid 65534";
        TempDir t;
        std::string path = t.file("console.sock");
        ASSERT_EQ(chmod(t.path.c_str(), 0755), 0);
        mode_t old = umask(0);
        Process vmm({ vmm_path(), "run", "--console", "socket:" + path, "--debug-exit", guest_path("virtio-console") });
        umask(old);

        for (int i = 0; i < 100 && file_mode(path) == (mode_t) -1 && !vmm.exited(0); i++)
                usleep(100 * 1000);
        ASSERT_EQ(file_mode(path), 0600u) << std::oct << file_mode(path) << vmm.err();

        ASSERT_EQ(chmod(path.c_str(), 0666), 0);
        Intruder i = connect_as_nobody(path, "another user's", 20000);
        EXPECT_EQ(i, Intruder::Closed) << intruder_name(i);

        /* The owner is served: the guest's line was kept for it. */
        ASSERT_NO_FATAL_FAILURE(answer_the_guests_console(path, vmm));
        ASSERT_NO_FATAL_FAILURE(expect_guest_passed(vmm, 3));
}

TEST(VmmConsole, ConsoleOptionRefusesAnUnknownBackend) {
        RunResult r = run_vmm({ "run", "--console", "tty:/dev/null", guest_path("hello") }, 10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}
