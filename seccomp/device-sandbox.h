/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* How a device process (majordome-gpu, majordome-video) locks itself in
 * once what it needs is open:
 * the given policies compiled first (nothing can be read afterwards), then
 * new mount, network, IPC and UTS namespaces with an empty read-only root,
 * the VMM's jail user when root (jail_resolve_user: majordome-vmm, else
 * nobody), no capabilities, no_new_privs (jail.c), then the
 * seccomp filter. asan.policy is added on top in sanitizer builds. */

#include <stddef.h>

#include "seccomp/sandbox.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEVICE_SANDBOX_MAX_POLICIES 4

/* policies: 1..DEVICE_SANDBOX_MAX_POLICIES names of built-in policies
 * (seccomp/policies/), merged. SANDBOX_MODE_OFF: nothing; LOG: the jail,
 * and a filter that lets everything through and has the kernel log what
 * the policies would refuse; ENFORCE: a refused syscall kills the process
 * with SIGSYS. On failure *ret_step names what failed (-EINVAL, or the
 * failing step's errno). */
int device_sandbox_enter(const char *const *policies, size_t n_policies, SandboxMode mode, const char **ret_step);

#ifdef __cplusplus
}
#endif
