/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail.h"
#include "log.h"
#include "policy.h"
#include "gpu/gpu-sandbox.h"

int gpu_sandbox_enter(SandboxMode mode, bool virgl, const char **ret_step) {
        const char *roots[3] = { "gpu.policy" };
        size_t n_roots = 1;
        PolicyProgram prog = {};
        PolicyError e = {};
        Jail j;
        int r;

        if (mode == SANDBOX_MODE_OFF)
                return 0;
        if (virgl)
                roots[n_roots++] = "gpu-virgl.policy";
#if SANDBOX_SANITIZER_POLICY
        roots[n_roots++] = "asan.policy";
#endif
        /* Compiled before the jail: afterwards there is nothing to read. */
        r = policy_compile(sandbox_builtin_policies, sandbox_n_builtin_policies, roots, n_roots, mode == SANDBOX_MODE_LOG ? POLICY_DEFAULT_LOG : POLICY_DEFAULT_KILL, &prog, &e);
        if (r < 0) {
                if (e.message[0])
                        log_error("%s", e.message);
                *ret_step = virgl ? "compiling gpu.policy and gpu-virgl.policy" : "compiling gpu.policy";
                return r;
        }
        r = jail_unshare(&j, ret_step);
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
