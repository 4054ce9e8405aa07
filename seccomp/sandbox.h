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

#include "seccomp/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The fixed roles. Device roles are not known here: whoever owns the
 * devices (the VMM's device table) registers each with its policy file
 * (sandbox_role_register) before sandbox_setup, and gets a role numbered
 * from _SANDBOX_ROLE_FIXED_MAX up. */
typedef enum SandboxRole {
        SANDBOX_ROLE_MAIN,              /* the event loop: control socket, signals, serial input */
        SANDBOX_ROLE_VCPU,              /* a vCPU thread: KVM_RUN and the exits it handles */
        SANDBOX_ROLE_SUPERVISOR,        /* the jail's supervising parent: waits, forwards signals */
        _SANDBOX_ROLE_FIXED_MAX,
        _SANDBOX_ROLE_MAX = _SANDBOX_ROLE_FIXED_MAX + 16,       /* fixed plus registered device roles */
        _SANDBOX_ROLE_INVALID = -1,
} SandboxRole;

/* A device role: its worker threads run under `policy` (a policy file
 * name, "virtio-rng.policy"), started by a spawner of their own
 * (sandbox_thread_create). `name` and `policy` must outlive the process
 * (string literals of an ops table). The same name and policy again
 * return the role already registered; the same name with another policy
 * is -EEXIST, a name of a fixed role -EEXIST, no room -ENOSPC, and a new
 * role once sandbox_setup has compiled the filters (sandbox on) -EBUSY:
 * it would have none. Safe from any thread. */
int sandbox_role_register(const char *name, const char *policy, SandboxRole *ret);
/* Names: the fixed roles' and those registered. */
const char *sandbox_role_to_string(SandboxRole role);
SandboxRole sandbox_role_from_string(const char *s);
/* The policy file of a role: "vcpu.policy"; NULL for no such role. */
const char *sandbox_role_policy(SandboxRole role);
/* Roles defined now, fixed and registered: they are [0, n). */
unsigned sandbox_n_roles(void);

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

/* Compiles every role's policy, the registered device roles' too (with
 * asan.policy in sanitizer builds) and, in enforce mode, installs the
 * SIGSYS handler that names the forbidden syscall. `sources` NULL: the
 * built-in policies. Process-wide: seccomp is. */
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
 * filter and installs none. Spawners exist for the registered device
 * roles (-EPERM for another role from a filtered caller);
 * sandbox_spawner_start starts them, called by the unfiltered main thread
 * after the jail and before vm_start. */
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
