/* SPDX-License-Identifier: BSD-3-Clause */
/* The VMM in its jail on real KVM: every role dies by SIGSYS, with the
 * syscall named, when it calls a forbidden syscall; from inside the jail no
 * host path, process or network is in reach; --seccomp=log only logs. */
#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm-process.h"

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
        RoleCase{ "virtio-balloon", { "--balloon", guest_path("virtio-balloon") } }),
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
RunResult probe(const std::vector<std::string> &extra) {
        Listeners l;
        std::vector<std::string> argv = { "/bin/bash", "-c", "exec 100</etc/passwd; exec \"$0\" \"$@\"", vmm_path(),
                                          "run", "--test-jail-probe", std::to_string(l.port) };
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(guest_path("hello"));
        Process p(argv);
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
                EXPECT_TRUE(has(jailed_, "probe uid: 65534")) << jailed_.out;
        }
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

} // namespace
