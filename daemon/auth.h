/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Who may change VMs. Read-only calls are open. Mutating calls: root always;
 * on the session bus the daemon's own uid; on the system bus whoever polkit
 * grants org.majordome.manage-vms, asked over D-Bus (no libpolkit). Block
 * devices as disks need org.majordome.manage-devices as well. A VM is
 * changed by the uid that started it; another non-root uid needs
 * org.majordome.manage-any-vm on top of manage-vms.
 *
 * Also who the caller is for the files (and sockets) StartVm opens by
 * path: a privileged daemon opens them with the caller's fsuid, fsgid and groups,
 * never with its own rights. */

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "daemon/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTH_ACTION_MANAGE "org.majordome.manage-vms"
#define AUTH_ACTION_MANAGE_DEVICES "org.majordome.manage-devices"
#define AUTH_ACTION_MANAGE_ANY "org.majordome.manage-any-vm"
#define AUTH_QUERIES_MAX 256
/* One caller cannot take every slot: others are still answered. */
#define AUTH_QUERIES_PER_SENDER_MAX 16
#define AUTH_CALLER_GROUPS_MAX 256

/* Returns 1 when the sender of msg may act now; 0 when polkit was asked and
 * the message will be dispatched again once it answered (the handler
 * returns 1 without replying); a negative errno with error set when
 * denied. A handler may ask for several actions, one after the other: each
 * answer is kept for the message's next dispatch. */
int auth_check(Manager *m, sd_bus_message *msg, const char *action, sd_bus_error *error);

static inline int auth_check_manage(Manager *m, sd_bus_message *msg, sd_bus_error *error) {
        return auth_check(m, msg, AUTH_ACTION_MANAGE, error);
}

/* The sender's uid, from the bus (not from /proc). */
int auth_sender_uid(sd_bus_message *msg, uid_t *ret_uid, sd_bus_error *error);

/* Whether the caller may change a VM that owner started: manage-vms, then,
 * for a non-root caller other than owner on the system bus, manage-any-vm.
 * Returns as auth_check(). */
int auth_check_owner(Manager *m, sd_bus_message *msg, uid_t owner, sd_bus_error *error);

/* Polkit checks asked for or answered and not yet swept. */
unsigned auth_queries_count(Manager *m);

void auth_queries_free(Manager *m);

/* The rights files are opened with for a caller. */
typedef struct AuthCaller {
        bool switch_ids;        /* privileged daemon, unprivileged caller */
        uid_t uid;
        gid_t gid;
        gid_t groups[AUTH_CALLER_GROUPS_MAX];
        int n_groups;
} AuthCaller;

/* Who sent msg, from the bus's record of the connection (not from /proc). */
int auth_caller_from_message(sd_bus_message *msg, AuthCaller *ret, sd_bus_error *error);

/* open(2) with the caller's filesystem ids and groups (this thread only:
 * raw syscalls, restored before returning). Returns an fd or -errno. */
int auth_caller_open(const AuthCaller *c, const char *path, int flags, mode_t mode);

/* Whether the caller may connect to the Unix stream socket whose inode
 * handle names (an O_PATH descriptor the caller opened, auth_caller_open(),
 * which searched the directories on the way as the caller): one
 * connect(2) through /proc/self/fd/N with the caller's file system ids and
 * groups, so the socket's write permission is checked as the caller, then
 * closed. Non-blocking: a listener that does not accept fails with -EAGAIN
 * rather than holding the daemon. 0 or -errno (-ECONNREFUSED: nobody
 * listens there, -EACCES). */
int auth_caller_connect_handle(const AuthCaller *c, int handle);

#ifdef __cplusplus
}
#endif
