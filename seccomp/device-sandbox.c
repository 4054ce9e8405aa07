/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp/device-sandbox.h"
#include "seccomp/jail.h"
#include "common/log.h"
#include "seccomp/policy.h"

int device_sandbox_enter(const char *const *policies, size_t n_policies, SandboxMode mode, const char **ret_step) {
        const char *roots[DEVICE_SANDBOX_MAX_POLICIES + 1];
        size_t n = 0;
        PolicyProgram prog = {};
        PolicyError e = {};
        Jail j = {};
        const char *user;
        int r, u;

        if (mode == SANDBOX_MODE_OFF)
                return 0;
        if (n_policies == 0 || n_policies > DEVICE_SANDBOX_MAX_POLICIES) {
                *ret_step = "choosing the policies";
                return -EINVAL;
        }
        for (; n < n_policies; n++)
                roots[n] = policies[n];
#if SANDBOX_SANITIZER_POLICY
        roots[n++] = "asan.policy";
#endif
        /* Compiled before the jail: afterwards there is nothing to read. */
        r = policy_compile(sandbox_builtin_policies, sandbox_n_builtin_policies, roots, n,
                           mode == SANDBOX_MODE_LOG ? POLICY_DEFAULT_LOG : POLICY_DEFAULT_KILL, &prog, &e);
        if (r < 0) {
                if (e.message[0])
                        log_error("%s", e.message);
                *ret_step = "compiling the seccomp policy";
                return r;
        }
        /* The VMM's user (it passes $MAJORDOME_JAIL_USER on): a VMM must
         * be able to signal its device processes, and they it. */
        u = jail_resolve_user(&j, &user);
        if (u < 0) {
                policy_program_done(&prog);
                *ret_step = "looking up the jail user";
                return u;
        }
        r = jail_unshare(&j, ret_step);
        if (r >= 0 && u > 0 && geteuid() == 0 && !j.user_ns)
                log_debug("jail: no user %s, dropping to nobody", user);
        if (r >= 0)
                r = jail_lockdown(&j, NULL, 0, ret_step);
        if (r >= 0) {
                struct sock_fprog fprog = { .len = prog.len, .filter = prog.filter };

                if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) {
                        r = -errno;
                        *ret_step = "installing the seccomp filter";
                }
        }
        policy_program_done(&prog);
        return r;
}
