/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The VMM's jail: namespaces, an empty root, no privileges. The steps, in
 * the order run_vm() takes them (docs/sandbox.md):
 *   jail_close_inherited_fds  at start: only stdio and the fd:N passed
 *   jail_fork                 new user (if unprivileged), pid, mount, net,
 *                             ipc and uts namespaces; fork, because a pid
 *                             namespace only applies to children, and before
 *                             the KVM VM exists, because a VM belongs to the
 *                             process that created it
 *   jail_supervise            the parent: locks itself down (an empty root
 *                             with only the control socket's directory, no
 *                             capabilities, its own seccomp filter), then
 *                             relays signals and the exit status
 *   jail_lockdown             the child, once the VM is built: pivot_root into
 *                             an empty read-only tmpfs (with only the
 *                             directories the devices name bind-mounted in),
 *                             the jail user (as root: jail_resolve_user),
 *                             capabilities and bounding set cleared,
 *                             no_new_privs, rlimits */

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/macro.h"
#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define JAIL_NOBODY 65534
/* Whom a jail entered as root becomes: VMM_JAIL_USER, else nobody;
 * $VMM_JAIL_USER_ENV names another (common/vmm-config.h). */
#define JAIL_USER VMM_JAIL_USER
#define JAIL_USER_ENV VMM_JAIL_USER_ENV
#define JAIL_FD_HEADROOM 128
#define JAIL_NOFILE_MIN 256

/* A host directory made visible in the jail's empty root as "/NAME",
 * alone (not what is mounted below it): nosuid, nodev, noexec, and
 * read-only unless `writable`. */
typedef struct JailBind {
        int fd;                 /* the directory, O_PATH is enough; borrowed */
        const char *name;       /* one path component */
        bool writable;
} JailBind;

#define JAIL_BINDS_MAX 16

/* The supervisor's descriptor of the child (a pidfd) is always this one:
 * its seccomp policy (supervisor.policy) lets it signal that one only. */
#define JAIL_SUPERVISOR_PIDFD 3
/* Where the supervisor sees its control socket's directory. */
#define JAIL_SUPERVISOR_SOCKET_DIR "socket"

typedef struct Jail {
        bool forked;            /* in a new pid namespace, with a supervising parent */
        bool user_ns;           /* unprivileged: a user namespace came first */
        bool namespaces;        /* pid/mount/net/ipc/uts namespaces exist */
        pid_t child;            /* in the parent */
        /* Who root becomes (jail_resolve_user); 0: nobody. Kept by
         * jail_fork and jail_unshare. */
        uid_t uid;
        gid_t gid;
} Jail;

/* Looks up the jail user ($MAJORDOME_JAIL_USER, else JAIL_USER) and its
 * primary group into j->uid and j->gid; before the jail, while the user
 * database is reachable. Returns 0, or 1 when there is no such user and
 * j keeps nobody; -EINVAL for a user that is root, -errno when the look-up
 * failed. *ret_name: the name looked up. */
int jail_resolve_user(Jail *j, const char **ret_name);

/* Closes every descriptor >= 3 that is not in keep[]. */
int jail_close_inherited_fds(const int *keep, size_t n_keep);

/* Returns 0 in the jailed child (or in the only process, when this host
 * allows no namespaces: then j->namespaces is false), > 0 (the child's
 * pid) in the parent, which then calls jail_supervise. The child keeps
 * SIGINT, SIGTERM and SIGHUP blocked: as pid 1 of its namespace it would
 * otherwise drop them while their action is the default. On failure
 * *ret_step names what failed. */
int jail_fork(Jail *j, const char **ret_step);

/* For a back-end process that jails itself without a supervisor
 * (majordome-gpu): new mount, network, IPC and UTS namespaces, in a new
 * user namespace first when unprivileged; no pid namespace and no fork.
 * j->namespaces false (and 0) when this host allows none. Then
 * jail_lockdown. */
int jail_unshare(Jail *j, const char **ret_step);

/* The parent: closes its descriptors, drops its clean pages (what it
 * holds of libc and the binary only because set-up touched it), locks
 * itself down (a mount namespace whose root is an empty tmpfs with only
 * `unlink_path`'s directory in it; as root, euid nobody; no capability,
 * not even in the bounding set; no_new_privs; the `supervisor` seccomp
 * role), forwards SIGINT/SIGTERM/SIGHUP to the child through a pidfd,
 * waits for it, unlinks `unlink_path` (the control socket, which the
 * jailed child cannot reach) and exits the way the child did: the same
 * code, or killed by the same signal. Returns only when it could not lock
 * itself down: the child is killed then, and *ret_step says what failed. */
int jail_supervise(const Jail *j, const char *unlink_path, const char **ret_step);

/* The pid the world outside the jail knows this VMM by: the supervising
 * parent's in a jailed child (which is pid 1 of its own namespace),
 * getpid() otherwise. */
pid_t jail_visible_pid(void);

/* The child, single-threaded, once everything it needs is open. binds:
 * the host directories the jail keeps (at most JAIL_BINDS_MAX); their
 * descriptors may be closed afterwards. */
int jail_lockdown(const Jail *j, const JailBind *binds, size_t n_binds, const char **ret_step);

/* Test hook (--test-jail-probe): tries, from inside the jail, what the jail
 * must prevent and prints one "probe NAME: ok|blocked (ERRNO)" line each;
 * `port` is a TCP port on 127.0.0.1 and the abstract socket
 * "@majordome-probe-PORT" the test listens on. */
void jail_probe(FILE *f, unsigned port);

#ifdef __cplusplus
}
#endif
