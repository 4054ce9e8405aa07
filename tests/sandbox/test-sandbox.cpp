/* SPDX-License-Identifier: BSD-3-Clause */
/* The VMM in its jail on real KVM: every role dies by SIGSYS, with the
 * syscall named, when it calls a forbidden syscall; from inside the jail no
 * host path, process or network is in reach; --seccomp=log only logs; the
 * supervising parent holds no capability and runs under its own filter. */
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <asm/bootparam.h>
#include <zlib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/test-user.h"
#include "tests/integration/vmm-process.h"

namespace {

constexpr int kTimeoutMs = 60000;

struct RoleCase {
        const char *role;
        std::vector<std::string> args;  /* what makes the VMM start that role */
};

std::vector<std::string> vmm_args(const RoleCase &c) {
        std::vector<std::string> a = { "run", "--debug-exit", "--test-sandbox-violation", c.role };
        a.insert(a.end(), c.args.begin(), c.args.end());
        return a;
}

class RoleViolation : public ::testing::TestWithParam<RoleCase> {};

TEST_P(RoleViolation, ForbiddenSyscallKillsWithSigsysAndNamesSyscallAndRole) {
        SKIP_WITHOUT_KVM();
        const RoleCase &c = GetParam();
        std::vector<std::string> args = vmm_args(c);
        if (c.args.back().find("virtio-block") != std::string::npos) {
                /* The block guest needs a disk. */
                static TempDir dir;
                std::string img = dir.file("disk.img");
                write_file(img, std::string(1 << 20, '\0'));
                args.insert(args.begin() + 1, { "--block", img });
        }

        RunResult r = run_vmm(args, kTimeoutMs);

        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.signal, SIGSYS) << "exit " << r.exit_code << "\n" << r.err;
        std::string line = std::string("majordome-vmm: sandbox violation: syscall ptrace (101) in role ") + c.role;
        EXPECT_NE(r.err.find(line), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Roles, RoleViolation, ::testing::Values(
        RoleCase{ "main", { guest_path("spin") } },
        RoleCase{ "vcpu", { guest_path("spin") } },
        RoleCase{ "virtio-rng", { "--rng", guest_path("virtio-rng") } },
        RoleCase{ "virtio-block", { guest_path("virtio-block") } },
        RoleCase{ "virtio-balloon", { "--balloon", guest_path("virtio-balloon") } },
        RoleCase{ "supervisor", { guest_path("spin") } }),
        [](const ::testing::TestParamInfo<RoleCase> &i) {
                std::string n = i.param.role;
                for (auto &ch : n)
                        if (ch == '-')
                                ch = '_';
                return n;
        });

TEST(SandboxLogMode, ForbiddenSyscallIsOnlyLogged) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", "--seccomp", "log", "--test-sandbox-violation", "vcpu",
                                guest_path("hello") }, kTimeoutMs);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.err.find("sandbox violation"), std::string::npos) << r.err;
}

TEST(SandboxPolicyDir, MalformedPolicyIsAUsageErrorWithFileAndLine) {
        const char *src = getenv("MAJORDOME_POLICY_DIR");
        ASSERT_NE(src, nullptr);
        TempDir dir;
        std::string cp = std::string("cp ") + src + "/*.policy " + dir.path;
        ASSERT_EQ(system(cp.c_str()), 0);
        write_file(dir.file("common.policy"), "read: 1\nwrite: 1\nopen_sesame: 1\n");
        RunResult r = run_vmm({ "run", "--seccomp-policy-dir", dir.path, guest_path("hello") }, kTimeoutMs);
        EXPECT_EQ(r.exit_code, 64) << r.err;
        EXPECT_NE(r.err.find("common.policy:3: unknown syscall 'open_sesame'"), std::string::npos) << r.err;
}

TEST(SandboxPolicyDir, BuiltInPoliciesCopiedToADirectoryRunTheGuest) {
        SKIP_WITHOUT_KVM();
        const char *src = getenv("MAJORDOME_POLICY_DIR");
        ASSERT_NE(src, nullptr);
        RunResult r = run_vmm({ "run", "--debug-exit", "--seccomp-policy-dir", src, guest_path("hello") }, kTimeoutMs);
        EXPECT_EQ(r.exit_code, 0) << r.err;
}

/* A TCP listener on 127.0.0.1 and an abstract Unix listener, both on the
 * host's network namespace: the jail must reach neither. */
struct Listeners {
        int tcp = -1, unix_fd = -1;
        unsigned port = 0;
        Listeners() {
                tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_in in = {};
                in.sin_family = AF_INET;
                in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                socklen_t len = sizeof(in);
                if (bind(tcp, (sockaddr *) &in, sizeof(in)) < 0 || listen(tcp, 4) < 0 ||
                    getsockname(tcp, (sockaddr *) &in, &len) < 0)
                        abort();
                port = ntohs(in.sin_port);
                unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_un un = {};
                un.sun_family = AF_UNIX;
                int n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "majordome-probe-%u", port);
                if (bind(unix_fd, (sockaddr *) &un, (socklen_t) (offsetof(sockaddr_un, sun_path) + 1 + n)) < 0 ||
                    listen(unix_fd, 4) < 0)
                        abort();
        }
        ~Listeners() {
                close(tcp);
                close(unix_fd);
        }
};

/* Runs the probe with descriptor 100 open on a host file, as a careless
 * parent might leave it. */
RunResult probe(const std::vector<std::string> &extra, const std::vector<std::string> &env = {}) {
        Listeners l;
        std::vector<std::string> argv = { "/bin/bash", "-c", "exec 100</etc/passwd; exec \"$0\" \"$@\"", vmm_path(),
                                          "run", "--test-jail-probe", std::to_string(l.port) };
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(guest_path("hello"));
        Process p(argv, env);
        return p.wait(kTimeoutMs);
}

bool has(const RunResult &r, const std::string &line) {
        return r.out.find(line + "\n") != std::string::npos;
}

class JailProbe : public ::testing::Test {
protected:
        void SetUp() override {
                std::string why;
                if (!kvm_usable(&why))
                        GTEST_SKIP() << "needs /dev/kvm: " << why;
                jailed_ = probe({});
                ASSERT_EQ(jailed_.exit_code, 0) << jailed_.err;
        }
        RunResult jailed_;
};

TEST_F(JailProbe, CannotOpenAnyHostPath) {
        EXPECT_TRUE(has(jailed_, "probe open-host-file /etc/passwd: blocked (ENOENT)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe open-host-device /dev/kvm: blocked (ENOENT)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe open-proc /proc/self/status: blocked (ENOENT)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe root-has-entries: blocked (ENOENT)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe create-file /probe: blocked (EROFS)")) << jailed_.out;
}

TEST_F(JailProbe, CannotSeeOrSignalHostProcesses) {
        EXPECT_TRUE(has(jailed_, "probe signal-other-processes: blocked (ESRCH)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe pid: 1")) << jailed_.out;
}

TEST_F(JailProbe, CannotReachTheNetwork) {
        EXPECT_TRUE(has(jailed_, "probe tcp-connect 127.0.0.1: blocked (ENETUNREACH)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe unix-connect abstract: blocked (ECONNREFUSED)")) << jailed_.out;
}

TEST_F(JailProbe, KeepsNoPrivilegeAndNoInheritedDescriptor) {
        EXPECT_TRUE(has(jailed_, "probe inherited-fd 100: blocked (EBADF)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe have-capabilities: blocked (EPERM)")) << jailed_.out;
        EXPECT_TRUE(has(jailed_, "probe no-new-privs: 1")) << jailed_.out;
        if (geteuid() == 0) {
                EXPECT_TRUE(has(jailed_, "probe uid: " + std::to_string(test_user::default_jail_uid())))
                        << "majordome-vmm where it exists, else nobody: " << jailed_.out;
        }
}

/* Root becomes the jail user: majordome-vmm (sysusers.d), or the one
 * $MAJORDOME_JAIL_USER names, here a user of the test's own. */
TEST(JailUser, RootBecomesTheNamedUserAndItsGroup) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "the switch is root's: run as root";
        test_user::TestUser user;
        if (!user.ok())
                GTEST_SKIP() << "could not make a user with useradd";
        RunResult r = probe({}, { user.env() });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(has(r, "probe uid: " + std::to_string(user.uid()))) << r.out;
        EXPECT_TRUE(has(r, "probe gid: " + std::to_string(user.gid()))) << r.out;
        EXPECT_TRUE(has(r, "probe have-capabilities: blocked (EPERM)")) << r.out;
        EXPECT_EQ(r.err.find("dropping to nobody"), std::string::npos) << r.err;
}

/* Said with --verbose only: an error stays one line (majordomed warns once
 * at start instead). */
TEST(JailUser, WithoutTheUserRootBecomesNobodyAndSaysSoWhenVerbose) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "the switch is root's: run as root";
        std::string name = "mjd-absent-" + std::to_string(getpid());
        std::string line = "jail: no user " + name + ", dropping to nobody";
        RunResult r = probe({ "--verbose" }, { "MAJORDOME_JAIL_USER=" + name });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(has(r, "probe uid: 65534")) << r.out;
        EXPECT_TRUE(has(r, "probe gid: 65534")) << r.out;
        EXPECT_NE(r.err.find(line), std::string::npos) << r.err;
        r = probe({}, { "MAJORDOME_JAIL_USER=" + name });
        EXPECT_EQ(r.err.find(line), std::string::npos) << r.err;
}

TEST(JailUser, RootItselfIsRefusedAsTheJailUser) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "the look-up is root's: run as root";
        RunResult r = probe({}, { "MAJORDOME_JAIL_USER=root" });
        EXPECT_EQ(r.exit_code, 71) << r.out;
        EXPECT_NE(r.err.find("jail: the user root"), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("probe uid"), std::string::npos) << "no guest ran: " << r.out;
}

/* The same probes without the sandbox reach everything: they test what
 * they claim to. */
TEST(JailProbeControl, WithoutTheSandboxEveryProbeSucceeds) {
        SKIP_WITHOUT_KVM();
        RunResult r = probe({ "--disable-sandbox" });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(has(r, "probe open-host-file /etc/passwd: ok")) << r.out;
        EXPECT_TRUE(has(r, "probe root-has-entries: ok")) << r.out;
        EXPECT_TRUE(has(r, "probe signal-other-processes: ok")) << r.out;
        EXPECT_TRUE(has(r, "probe tcp-connect 127.0.0.1: ok")) << r.out;
        EXPECT_TRUE(has(r, "probe unix-connect abstract: ok")) << r.out;
        EXPECT_TRUE(has(r, "probe inherited-fd 100: ok")) << r.out;
}

/* A running sandboxed VMM (the spin guest), stopped by SIGTERM at the end:
 * the supervisor forwards it, so the VMM exits 0. */
class RunningVmm : public ::testing::Test {
protected:
        void SetUp() override {
                SKIP_WITHOUT_KVM();
                socket_ = dir_.file("control.sock");
                vmm_ = std::make_unique<Process>(std::vector<std::string>{
                        vmm_path(), "run", "--socket", socket_, guest_path("spin") });
                child_ = jailed_vmm(vmm_->pid(), kTimeoutMs);
                ASSERT_GT(child_, 0) << vmm_->err();
        }
        void TearDown() override {
                if (!vmm_)
                        return;
                vmm_->kill(SIGTERM);
                RunResult r = vmm_->wait(kTimeoutMs);
                EXPECT_EQ(r.exit_code, 0) << "the supervisor forwards SIGTERM: " << r.err;
                EXPECT_NE(access(socket_.c_str(), F_OK), 0) << "the supervisor unlinks the socket";
        }
        TempDir dir_;
        std::string socket_;
        std::unique_ptr<Process> vmm_;
        pid_t child_ = -1;
};

TEST_F(RunningVmm, SupervisorHoldsNoCapabilityAndRunsUnderItsOwnFilter) {
        pid_t sup = vmm_->pid();

        EXPECT_EQ(proc_status(sup, "CapEff"), "0000000000000000");
        EXPECT_EQ(proc_status(sup, "CapPrm"), "0000000000000000");
        EXPECT_EQ(proc_status(sup, "CapInh"), "0000000000000000");
        EXPECT_EQ(proc_status(sup, "CapBnd"), "0000000000000000");
        EXPECT_EQ(proc_status(sup, "CapAmb"), "0000000000000000");
        EXPECT_EQ(proc_status(sup, "NoNewPrivs"), "1");
        EXPECT_EQ(proc_status(sup, "Seccomp"), "2");
        EXPECT_EQ(proc_status(sup, "Seccomp_filters"), "1");
}

TEST_F(RunningVmm, SupervisorSeesOnlyTheSocketDirectoryAndTheChild) {
        pid_t sup = vmm_->pid();
        struct stat root, host_root;

        /* Its root is its own empty tmpfs, not the host's. */
        ASSERT_EQ(stat(("/proc/" + std::to_string(sup) + "/root").c_str(), &root), 0);
        ASSERT_EQ(stat("/", &host_root), 0);
        EXPECT_NE(root.st_dev, host_root.st_dev);
        /* stdio, and the child's pidfd. */
        for (const auto &[fd, link] : proc_fd_links(sup)) {
                if (fd > 2) {
                        EXPECT_EQ(link, "anon_inode:[pidfd]") << "fd " << fd;
                }
        }
}

TEST_F(RunningVmm, JailedVmmHoldsNoDevKvmDescriptor) {
        struct stat kvm;
        auto links = proc_fd_links(child_);

        ASSERT_EQ(stat("/dev/kvm", &kvm), 0);
        ASSERT_FALSE(links.empty());
        /* By device number: outside /dev, the name reads "/kvm". */
        for (const auto &[fd, link] : links) {
                struct stat st;
                std::string path = "/proc/" + std::to_string(child_) + "/fd/" + std::to_string(fd);
                if (stat(path.c_str(), &st) == 0) {
                        EXPECT_FALSE(S_ISCHR(st.st_mode) && st.st_rdev == kvm.st_rdev) << "fd " << fd << " -> " << link;
                }
        }
        /* What it does keep of KVM: the VM. */
        bool vm = false;
        for (const auto &[fd, link] : links)
                vm |= link == "anon_inode:kvm-vm";
        EXPECT_TRUE(vm);
}

/* With a jail user of the test's own: the child runs as it, and the
 * supervisor takes it as its euid alone (real and saved uid stay 0), so
 * that it can still forward SIGTERM (TearDown) to the child. */
TEST(JailUser, TheSupervisorTakesTheJailUserAsItsEuidAlone) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "the switch is root's: run as root";
        test_user::TestUser user;
        if (!user.ok())
                GTEST_SKIP() << "could not make a user with useradd";
        TempDir dir;
        Process vmm({ vmm_path(), "run", "--socket", dir.file("control.sock"), guest_path("spin") }, { user.env() });
        pid_t child = jailed_vmm(vmm.pid(), kTimeoutMs);
        ASSERT_GT(child, 0) << vmm.err();
        std::string u = std::to_string(user.uid()), g = std::to_string(user.gid());
        /* Uid: real, effective, saved, filesystem. */
        EXPECT_EQ(proc_status(child, "Uid"), u + "\t" + u + "\t" + u + "\t" + u);
        EXPECT_EQ(proc_status(child, "Gid"), g + "\t" + g + "\t" + g + "\t" + g);
        EXPECT_EQ(proc_status(vmm.pid(), "Uid"), "0\t" + u + "\t0\t0");
        vmm.kill(SIGTERM);
        RunResult r = vmm.wait(kTimeoutMs);
        EXPECT_EQ(r.exit_code, 0) << "the supervisor forwards SIGTERM: " << r.err;
}

/* majordome-gpu, which the VMM starts before its lockdown, jails itself as
 * the same user: the VMM hands $MAJORDOME_JAIL_USER on (and each must be
 * able to signal the other). */
TEST(JailUser, TheDeviceProcessBecomesTheVmmsUserToo) {
        SKIP_WITHOUT_KVM();
        if (geteuid() != 0)
                GTEST_SKIP() << "the switch is root's: run as root";
        if (!getenv("MAJORDOME_GPU"))
                GTEST_SKIP() << "built without gpu support: no device process to look at";
        test_user::TestUser user;
        if (!user.ok())
                GTEST_SKIP() << "could not make a user with useradd";
        TempDir dir;
        Process vmm({ vmm_path(), "run", "--socket", dir.file("control.sock"), "--gpu", "backend=2d",
                      guest_path("spin") }, { user.env() });
        pid_t child = jailed_vmm(vmm.pid(), kTimeoutMs);
        ASSERT_GT(child, 0) << vmm.err();
        ASSERT_TRUE(vmm.wait_for_output("spin: tick 1\n", kTimeoutMs)) << vmm.err();
        std::ifstream children("/proc/" + std::to_string(child) + "/task/" + std::to_string(child) + "/children");
        pid_t gpu = -1;
        ASSERT_TRUE(children >> gpu) << "majordome-gpu is the jailed VMM's child";
        std::string u = std::to_string(user.uid());
        EXPECT_EQ(proc_status(gpu, "Uid"), u + "\t" + u + "\t" + u + "\t" + u);
        EXPECT_EQ(proc_status(gpu, "Seccomp"), "2");
        vmm.kill(SIGTERM);
        EXPECT_EQ(vmm.wait(kTimeoutMs).exit_code, 0);
}

/* The jailed VMM once it is blocked reading descriptor `fd`; -1 on timeout. */
pid_t child_reading(pid_t supervisor, int fd, int timeout_ms) {
        std::string want = "0 0x" + std::to_string(fd) + " "; /* read(fd, ...) */

        for (int waited = 0; waited < timeout_ms; waited += 20) {
                std::ifstream children("/proc/" + std::to_string(supervisor) + "/task/" +
                                       std::to_string(supervisor) + "/children");
                pid_t c;
                if (children >> c) {
                        std::string sys = read_file("/proc/" + std::to_string(c) + "/syscall");
                        if (sys.rfind(want, 0) == 0)
                                return c;
                }
                usleep(20000);
        }
        return -1;
}

/* The kernel is read, parsed and decompressed only once the VMM is
 * jailed: while it waits for the image on a pipe it already has its own
 * root and no capability. */
TEST(JailedImageLoading, KernelIsReadOnlyOnceTheJailIsLocked) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string fifo = dir.file("kernel");
        ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
        Process vmm({ "/bin/bash", "-c", "exec 5<\"$1\"; shift; exec \"$0\" \"$@\"", vmm_path(), fifo,
                      "run", "--debug-exit", "fd:5" });
        Fd w(open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
        ASSERT_GE(w.fd, 0);

        pid_t child = child_reading(vmm.pid(), 5, kTimeoutMs);
        ASSERT_GT(child, 0) << vmm.err();
        struct stat root, host_root;
        ASSERT_EQ(stat(("/proc/" + std::to_string(child) + "/root").c_str(), &root), 0);
        ASSERT_EQ(stat("/", &host_root), 0);
        EXPECT_NE(root.st_dev, host_root.st_dev) << "reading the kernel before pivot_root";
        EXPECT_EQ(proc_status(child, "CapEff"), "0000000000000000") << "reading the kernel with privileges";
        EXPECT_EQ(proc_status(child, "NoNewPrivs"), "1");

        ASSERT_TRUE(write_all(w.fd, read_file(guest_path("hello"))));
        close(w.fd); /* EOF: the image is whole */
        w.fd = -1;
        RunResult r = vmm.wait(kTimeoutMs);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("TEST hello PASS"), std::string::npos) << r.out;
}

/* A bzImage around `elf` (a test guest), its payload gzip-compressed as
 * arch/x86/boot/compressed does (gzip's trailer ends in the size). */
std::string gzip_bzimage(const std::string &elf) {
        z_stream z = {};
        if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                abort();
        std::string payload(deflateBound(&z, elf.size()), '\0');
        z.next_in = (Bytef *) elf.data();
        z.avail_in = (uInt) elf.size();
        z.next_out = (Bytef *) payload.data();
        z.avail_out = (uInt) payload.size();
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
                abort();
        payload.resize(z.total_out);
        deflateEnd(&z);

        std::string pm(1024, '\x90'); /* the decompressor stub: not run */
        size_t payload_offset = pm.size();
        pm += payload;
        pm.resize((pm.size() + 15) / 16 * 16, '\0');

        setup_header h = {};
        h.setup_sects = 1;
        h.syssize = (uint32_t) (pm.size() / 16);
        h.boot_flag = 0xaa55;
        h.jump = (uint16_t) (0xeb | (0x1f1 + sizeof(h) - 0x202) << 8);
        h.header = 0x53726448; /* "HdrS" */
        h.version = 0x20d;
        h.loadflags = LOADED_HIGH;
        h.initrd_addr_max = 0x7fffffff;
        h.kernel_alignment = 2 << 20;
        h.relocatable_kernel = 1;
        h.xloadflags = XLF_KERNEL_64;
        h.cmdline_size = 2047;
        h.payload_offset = (uint32_t) payload_offset;
        h.payload_length = (uint32_t) payload.size();
        h.pref_address = 16 << 20;
        h.init_size = 4 << 20;

        std::string k(1024, '\0');
        memcpy(&k[0x1f1], &h, sizeof(h));
        return k + pm;
}

/* The kernel is parsed and decompressed after the jail, by the jailed VMM
 * without privilege: a gzip bzImage of the hello guest still boots. */
TEST(JailedImageLoading, GzipBzImageIsDecompressedInTheJailAndBoots) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string bz = dir.file("bzImage");
        write_file(bz, gzip_bzimage(read_file(guest_path("hello"))));

        RunResult r = run_vmm({ "run", "--debug-exit", bz }, kTimeoutMs);

        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("TEST hello PASS"), std::string::npos) << r.out << r.err;
}

} // namespace
