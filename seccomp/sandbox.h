/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Per-role seccomp filters. A process compiles every role's policy once,
 * before it jails itself (sandbox_setup); then each thread installs its
 * own role's filter when it starts (sandbox_enter_role). Filters are per
 * thread and inherited by threads created later, so a thread must be
 * created by one that is still unfiltered (the main thread, before it
 * enters SANDBOX_ROLE_MAIN) to get exactly its own policy; a thread created
 * by a filtered one gets the intersection of both policies. */

#include <pthread.h>
#include <stdbool.h>

#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum SandboxRole {
        SANDBOX_ROLE_MAIN,              /* the event loop: control socket, signals, serial input */
        SANDBOX_ROLE_VCPU,              /* a vCPU thread: KVM_RUN and the exits it handles */
        SANDBOX_ROLE_VIRTIO_RNG,        /* device workers, one policy each */
        SANDBOX_ROLE_VIRTIO_BLOCK,
        SANDBOX_ROLE_VIRTIO_CONSOLE,
        SANDBOX_ROLE_VIRTIO_BALLOON,
        SANDBOX_ROLE_VIRTIO_VSOCK,
        SANDBOX_ROLE_VIRTIO_DEVICE,     /* a device worker without a policy of its own: device.policy */
        SANDBOX_ROLE_SUPERVISOR,        /* the jail's supervising parent: waits, forwards signals */
        _SANDBOX_ROLE_MAX,
        _SANDBOX_ROLE_INVALID = -1,
} SandboxRole;

const char *sandbox_role_to_string(SandboxRole role);
SandboxRole sandbox_role_from_string(const char *s);
/* The role of a virtio device's worker, by the device's name ("rng",
 * "blk" or "block", "console", "balloon", "vsock"): SANDBOX_ROLE_VIRTIO_DEVICE
 * for a device without a policy of its own yet. */
SandboxRole sandbox_role_for_device(const char *name);
/* The policy file of a role: "vcpu.policy". */
const char *sandbox_role_policy(SandboxRole role);

typedef enum SandboxMode {
        SANDBOX_MODE_OFF,               /* --disable-sandbox: no jail, no filters */
        SANDBOX_MODE_ENFORCE,           /* default: a forbidden syscall ends the VMM by SIGSYS */
        SANDBOX_MODE_LOG,               /* --seccomp=log: allowed, logged by the kernel */
        _SANDBOX_MODE_MAX,
        _SANDBOX_MODE_INVALID = -1,
} SandboxMode;

const char *sandbox_mode_to_string(SandboxMode mode);
SandboxMode sandbox_mode_from_string(const char *s);

/* The policies built into the binary (seccomp/policies/ *.policy). */
extern const PolicySource sandbox_builtin_policies[];
extern const size_t sandbox_n_builtin_policies;

/* Reads every *.policy in `dir` (a development override of the built-in
 * ones); *ret is an array of *ret_n sources to free with
 * sandbox_policy_sources_free. */
int sandbox_policy_sources_load_dir(const char *dir, PolicySource **ret, size_t *ret_n);
void sandbox_policy_sources_free(PolicySource *s, size_t n);

/* Compiles every role's policy (with asan.policy in sanitizer builds) and,
 * in enforce mode, installs the SIGSYS handler that names the forbidden
 * syscall. `sources` NULL: the built-in policies. Process-wide: seccomp is. */
int sandbox_setup(SandboxMode mode, const PolicySource *sources, size_t n_sources, PolicyError *e);
SandboxMode sandbox_get_mode(void);

/* Installs `role`'s filter on the calling thread (no-op when the sandbox is
 * off). Needs PR_SET_NO_NEW_PRIVS, which the jail sets. */
int sandbox_enter_role(SandboxRole role);
/* The role the calling thread entered, or NULL. */
const char *sandbox_current_role(void);

/* Starts a thread that runs fn(arg) under `role`'s filter. Device
 * workers start when the guest activates a device, on a vCPU thread whose
 * filter the new thread would inherit; so with the sandbox on, a filtered
 * caller's thread is created by a spawner thread of that role, which runs
 * under the role's filter alone: the worker inherits exactly that one
 * filter and installs none. Spawners exist for the device roles (-EPERM
 * for another role from a filtered caller); sandbox_spawner_start starts
 * them, called by the unfiltered main thread after the jail and before
 * vm_start. */
int sandbox_thread_create(pthread_t *ret, SandboxRole role, void *(*fn)(void *), void *arg);
int sandbox_spawner_start(void);
void sandbox_spawner_stop(void);

/* Test hook (--test-sandbox-violation=ROLE): the thread entering `role`
 * calls a syscall no policy allows (ptrace) right after its filter is in. */
void sandbox_set_test_violation(SandboxRole role);

/* Frees the compiled filters (threads keep theirs). */
void sandbox_done(void);

#ifdef __cplusplus
}
#endif
