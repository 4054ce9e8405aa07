/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* majordome-gpu locks itself in once what it needs is open (its vhost-user
 * socket, the compositor connection): new mount, network, IPC and UTS
 * namespaces with an empty read-only root, uid nobody when root, no
 * capabilities, no_new_privs (seccomp/jail.c), then the gpu.policy seccomp
 * filter (seccomp/policies/gpu.policy). One thread only. */

#include "sandbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SANDBOX_MODE_OFF: nothing; LOG: the jail, and a filter that lets
 * everything through and has the kernel log what gpu.policy would refuse
 * (to develop the policy); ENFORCE: a refused syscall kills the process
 * with SIGSYS. On failure *ret_step names what failed. */
int gpu_sandbox_enter(SandboxMode mode, const char **ret_step);

#ifdef __cplusplus
}
#endif
