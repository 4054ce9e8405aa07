/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* majordome-gpu locks itself in once what it needs is open (its vhost-user
 * socket, the compositor connection): new mount, network, IPC and UTS
 * namespaces with an empty read-only root, uid nobody when root, no
 * capabilities, no_new_privs (seccomp/jail.c), then the gpu.policy seccomp
 * filter (seccomp/policies/gpu.policy, and gpu-virgl.policy on top for the
 * virgl back-end). One thread only. */

#include <stdbool.h>

#include "sandbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SANDBOX_MODE_OFF: nothing; LOG: the jail, and a filter that lets
 * everything through and has the kernel log what gpu.policy would refuse
 * (to develop the policy); ENFORCE: a refused syscall kills the process
 * with SIGSYS. virgl adds gpu-virgl.policy (what Mesa's renderer needs at
 * run time, executable memory for llvmpipe's JIT among it); never for 2D.
 * On failure *ret_step names what failed. */
int gpu_sandbox_enter(SandboxMode mode, bool virgl, const char **ret_step);

#ifdef __cplusplus
}
#endif
