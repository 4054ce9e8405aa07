/* SPDX-License-Identifier: BSD-3-Clause */
/* The seccomp policy compiler: what it accepts, and malformed policy files
 * rejected with FILE:LINE. No KVM, no privileges: nothing is installed. */
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "seccomp/policy.h"
#include "seccomp/sandbox.h"
#include "vmm/virtio/device.h"

namespace {

struct Compiled {
        int r;
        std::string error;
        unsigned len;
};

Compiled compile(const std::vector<PolicySource> &sources, const char *root = "test.policy") {
        PolicyProgram prog = {};
        PolicyError e;
        const char *roots[] = { root };
        int r = policy_compile(sources.data(), sources.size(), roots, 1, POLICY_DEFAULT_TRAP, &prog, &e);
        Compiled c = { r, e.message, prog.len };
        policy_program_done(&prog);
        return c;
}

Compiled compile_text(const char *text) {
        return compile({ { "test.policy", text } });
}

TEST(PolicyCompiler, AcceptsAllowsArgumentFiltersErrnoAndIncludes) {
        Compiled c = compile({
                { "base.policy", "# comment\n\nread: 1\nwrite: 1  # trailing comment\n" },
                { "test.policy",
                  "@include base.policy\n"
                  "mmap: arg2 & PROT_EXEC == 0\n"
                  "socket: arg0 == AF_UNIX\n"
                  "ioctl: arg1 == KVM_RUN || arg1 == KVM_IRQ_LINE\n"
                  "clone: arg0 & CLONE_THREAD|CLONE_NEWUSER == CLONE_THREAD\n"
                  "prctl: arg0 == 15 && arg1 != 0\n"
                  "clone3: return ENOSYS\n"
                  "futex: arg1 <= 0x80 || arg1 > 1000\n" },
        });
        EXPECT_EQ(c.r, 0) << c.error;
        EXPECT_GT(c.len, 10u);
}

TEST(PolicyCompiler, RejectsUnknownSyscallWithFileAndLine) {
        Compiled c = compile_text("read: 1\n\nnot_a_syscall: 1\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_EQ(c.error, "test.policy:3: unknown syscall 'not_a_syscall'");
}

TEST(PolicyCompiler, RejectsMissingColonWithLine) {
        Compiled c = compile_text("read: 1\nwrite 1\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_EQ(c.error.rfind("test.policy:2: ", 0), 0u) << c.error;
}

TEST(PolicyCompiler, RejectsUnknownConstant) {
        Compiled c = compile_text("socket: arg0 == AF_NOPE\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_EQ(c.error, "test.policy:1: unknown constant 'AF_NOPE'");
}

TEST(PolicyCompiler, RejectsArgumentOutOfRange) {
        Compiled c = compile_text("read: 1\nsocket: arg6 == 1\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_NE(c.error.find("test.policy:2: expected arg0 .. arg5"), std::string::npos) << c.error;
}

TEST(PolicyCompiler, RejectsBadOperatorAndTrailingGarbage) {
        EXPECT_NE(compile_text("socket: arg0 =! 1\n").error.find("test.policy:1: expected a comparison"),
                  std::string::npos);
        EXPECT_NE(compile_text("socket: arg0 == 1 junk\n").error.find("test.policy:1: unexpected 'junk'"),
                  std::string::npos);
        EXPECT_NE(compile_text("socket: arg0 == 1 &&\n").error.find("test.policy:1: expected arg0"),
                  std::string::npos);
}

TEST(PolicyCompiler, RejectsMaskThatCanNeverMatch) {
        Compiled c = compile_text("mmap: arg2 & PROT_EXEC == PROT_WRITE\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_NE(c.error.find("can never be true"), std::string::npos) << c.error;
}

TEST(PolicyCompiler, RejectsSameArgumentTwiceInOneAlternative) {
        Compiled c = compile_text("futex: arg1 > 1 && arg1 < 9\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_NE(c.error.find("test.policy:1: arg1 compared twice"), std::string::npos) << c.error;
}

TEST(PolicyCompiler, RejectsUnknownErrnoAndDirective) {
        EXPECT_EQ(compile_text("clone3: return ENOTANERRNO\n").error, "test.policy:1: unknown errno 'ENOTANERRNO'");
        EXPECT_EQ(compile_text("@frobnicate x\n").error, "test.policy:1: unknown directive '@frobnicate x'");
}

TEST(PolicyCompiler, RejectsConflictingActionsForOneSyscall) {
        Compiled c = compile_text("read: 1\nread: return EPERM\n");
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_EQ(c.error.rfind("test.policy:2: ", 0), 0u) << c.error;
}

TEST(PolicyCompiler, ReportsTheIncludedFilesLineAndRejectsMissingIncludes) {
        Compiled c = compile({
                { "base.policy", "read: 1\nbogus_call: 1\n" },
                { "test.policy", "write: 1\n@include base.policy\n" },
        });
        EXPECT_EQ(c.error, "base.policy:2: unknown syscall 'bogus_call'");
        EXPECT_EQ(compile_text("@include nowhere.policy\n").error, "test.policy:1: @include nowhere.policy: no such policy");
}

TEST(PolicyCompiler, RejectsAnIncludeLoop) {
        Compiled c = compile({
                { "a.policy", "@include test.policy\n" },
                { "test.policy", "read: 1\n@include a.policy\n" },
        });
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_NE(c.error.find("nested too deep"), std::string::npos) << c.error;
}

TEST(PolicyCompiler, EveryBuiltInPolicyCompiles) {
        std::vector<PolicySource> sources(sandbox_builtin_policies,
                                          sandbox_builtin_policies + sandbox_n_builtin_policies);
        for (const PolicySource &p : sources) {
                Compiled c = compile(sources, p.name);
                EXPECT_EQ(c.r, 0) << p.name << ": " << c.error;
        }
}

TEST(PolicyCompiler, EveryRolesPolicyIsBuiltIn) {
        std::vector<PolicySource> sources(sandbox_builtin_policies,
                                          sandbox_builtin_policies + sandbox_n_builtin_policies);
        ASSERT_EQ(virtio_device_table_register_roles(), 0);
        for (unsigned role = 0; role < sandbox_n_roles(); role++) {
                const char *name = sandbox_role_policy((SandboxRole) role);
                ASSERT_NE(name, nullptr);
                Compiled c = compile(sources, name);
                EXPECT_EQ(c.r, 0) << sandbox_role_to_string((SandboxRole) role) << ": " << name << ": " << c.error;
        }
}

TEST(PolicyCompiler, KnowsTheConstantsPoliciesUse) {
        uint64_t v = 0;
        EXPECT_EQ(policy_constant("PROT_EXEC", &v), 0);
        EXPECT_EQ(v, 4u);
        EXPECT_EQ(policy_constant("AF_UNIX", &v), 0);
        EXPECT_EQ(v, 1u);
        EXPECT_EQ(policy_constant("NOT_A_CONSTANT", &v), -ENOENT);
}

TEST(SandboxNames, RolesAndModesRoundTrip) {
        ASSERT_EQ(virtio_device_table_register_roles(), 0);
        for (unsigned i = 0; i < sandbox_n_roles(); i++)
                EXPECT_EQ(sandbox_role_from_string(sandbox_role_to_string((SandboxRole) i)), (SandboxRole) i);
        for (int i = 0; i < _SANDBOX_MODE_MAX; i++)
                EXPECT_EQ(sandbox_mode_from_string(sandbox_mode_to_string((SandboxMode) i)), i);
        EXPECT_EQ(sandbox_role_from_string("nope"), _SANDBOX_ROLE_INVALID);
        EXPECT_EQ(sandbox_role_to_string((SandboxRole) sandbox_n_roles()), nullptr);
}

TEST(SandboxRoles, EachDeviceOfTheTableGetsTheRoleAndPolicyItsOpsName) {
        ASSERT_EQ(virtio_device_table_register_roles(), 0);
        for (unsigned i = 0; i < virtio_device_table_size; i++) {
                const VirtioDeviceOps *ops = virtio_device_table[i];
                SandboxRole role = _SANDBOX_ROLE_INVALID;

                ASSERT_NE(ops->seccomp_role, nullptr) << ops->name;
                ASSERT_EQ(virtio_device_sandbox_role(ops, &role), 0) << ops->name;
                EXPECT_GE(role, _SANDBOX_ROLE_FIXED_MAX) << ops->name;
                EXPECT_EQ(sandbox_role_from_string(ops->seccomp_role), role) << ops->name;
                EXPECT_STREQ(sandbox_role_policy(role), ops->seccomp_policy) << ops->name;
        }
        /* The policies they had when seccomp/ listed them itself. */
        EXPECT_STREQ(sandbox_role_policy(sandbox_role_from_string("virtio-rng")), "virtio-rng.policy");
        EXPECT_STREQ(sandbox_role_policy(sandbox_role_from_string("virtio-block")), "virtio-block.policy");
        EXPECT_STREQ(sandbox_role_policy(sandbox_role_from_string("virtio-vsock")), "virtio-vsock.policy");
        EXPECT_STREQ(sandbox_role_policy(sandbox_role_from_string(VIRTIO_DEVICE_ROLE)), "device.policy");
}

TEST(SandboxRoles, AnOpsTableWithoutARoleGetsTheGenericDeviceRole) {
        VirtioDeviceOps ops = {};
        SandboxRole role = _SANDBOX_ROLE_INVALID;

        ops.name = "gpu";
        ASSERT_EQ(virtio_device_sandbox_role(&ops, &role), 0);
        EXPECT_STREQ(sandbox_role_to_string(role), "virtio-device");
        EXPECT_STREQ(sandbox_role_policy(role), "device.policy");
}

TEST(SandboxRoles, RegisteringAgainIsALookupAndAConflictIsRefused) {
        SandboxRole a = _SANDBOX_ROLE_INVALID, b = _SANDBOX_ROLE_INVALID;

        ASSERT_EQ(sandbox_role_register("test-role", "device.policy", &a), 0);
        ASSERT_EQ(sandbox_role_register("test-role", "device.policy", &b), 0);
        EXPECT_EQ(a, b);
        EXPECT_EQ(sandbox_role_register("test-role", "main.policy", &b), -EEXIST);
        EXPECT_EQ(sandbox_role_register("vcpu", "vcpu.policy", &b), -EEXIST);
        EXPECT_EQ(sandbox_role_register(nullptr, "vcpu.policy", &b), -EINVAL);
}

TEST(SandboxSetup, OffModeEnteringARoleIsANoOp) {
        PolicyError e;
        ASSERT_EQ(sandbox_setup(SANDBOX_MODE_OFF, nullptr, 0, &e), 0);
        EXPECT_EQ(sandbox_enter_role(SANDBOX_ROLE_VCPU), 0);
        EXPECT_EQ(sandbox_current_role(), nullptr);
}

} // namespace
