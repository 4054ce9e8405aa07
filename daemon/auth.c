/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/auth.h"
#include "daemon/errors.h"
#include "common/log.h"
#include "common/util.h"

/* One message's authorization: the actions polkit granted it so far, and
 * the one it is being asked about or last refused. Queries are freed once
 * the message was dispatched again after the answer (auth_sweep), whether
 * or not its handler got as far as asking; so a handler that fails early
 * on the second dispatch (the VM is gone) leaves nothing behind. */
struct AuthQuery {
        sd_bus_message *request;
        char *sender;
        sd_bus_slot *slot;      /* non-NULL while polkit has not answered */
        const char *action;     /* asked about; static strings */
        const char *granted[2];
        bool denied;            /* polkit refused action */
        char *denial;           /* why not, when polkit could not be asked */
        Manager *manager;
        AuthQuery *next;
};

static AuthQuery *auth_query_free(AuthQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        free(q->sender);
        free(q->denial);
        free(q);
        return NULL;
}

static void auth_query_unlink(Manager *m, AuthQuery *q) {
        for (AuthQuery **p = &m->auth_queries; *p; p = &(*p)->next)
                if (*p == q) {
                        *p = q->next;
                        return;
                }
}

void auth_queries_free(Manager *m) {
        while (m->auth_queries) {
                AuthQuery *q = m->auth_queries;

                m->auth_queries = q->next;
                auth_query_free(q);
        }
        m->auth_sweep = sd_event_source_disable_unref(m->auth_sweep);
        m->auth_name_watch = sd_bus_slot_unref(m->auth_name_watch);
}

unsigned auth_queries_count(Manager *m) {
        unsigned n = 0;

        for (AuthQuery *q = m->auth_queries; q; q = q->next)
                n++;
        return n;
}

static unsigned auth_queries_count_sender(Manager *m, const char *sender) {
        unsigned n = 0;

        for (AuthQuery *q = m->auth_queries; q; q = q->next)
                if (strcmp(q->sender, sender) == 0)
                        n++;
        return n;
}

/* Drops every query polkit has answered. Runs at idle priority, below the
 * bus: sd-bus keeps its event source pending while messages wait in its
 * read queue, so by now every answered request has been dispatched again. */
static int on_auth_sweep(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        for (AuthQuery **p = &m->auth_queries; *p;) {
                AuthQuery *q = *p;

                if (q->slot) {
                        p = &q->next;
                        continue;
                }
                *p = q->next;
                auth_query_free(q);
        }
        log_debug("polkit: %u checks under way", auth_queries_count(m));
        return 0;
}

static void auth_sweep_schedule(Manager *m) {
        int r;

        if (!m->auth_sweep) {
                r = sd_event_add_defer(m->event, &m->auth_sweep, on_auth_sweep, m);
                if (r < 0) {
                        log_warning_errno(r, "cannot schedule freeing answered polkit checks: %m");
                        return;
                }
                (void) sd_event_source_set_priority(m->auth_sweep, SD_EVENT_PRIORITY_IDLE);
        }
        (void) sd_event_source_set_enabled(m->auth_sweep, SD_EVENT_ONESHOT);
}

/* A caller that left needs no answer: its checks are cancelled. */
static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        const char *name, *old_owner, *new_owner;
        unsigned dropped = 0;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || new_owner[0] != 0)
                return 0;
        for (AuthQuery **p = &m->auth_queries; *p;) {
                AuthQuery *q = *p;

                if (strcmp(q->sender, name) != 0) {
                        p = &q->next;
                        continue;
                }
                *p = q->next;
                auth_query_free(q);
                dropped++;
        }
        if (dropped > 0)
                log_debug("polkit: %s left, %u checks dropped; %u checks under way", name, dropped,
                          auth_queries_count(m));
        return 0;
}

static bool auth_query_granted(const AuthQuery *q, const char *action) {
        for (size_t i = 0; i < ARRAY_SIZE(q->granted); i++)
                if (q->granted[i] && strcmp(q->granted[i], action) == 0)
                        return true;
        return false;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthQuery *q = userdata;
        Manager *m = q->manager;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;

        q->slot = sd_bus_slot_unref(q->slot);
        e = sd_bus_message_get_error(reply);
        if (e) {
                log_debug("polkit: %s: %s", e->name, e->message);
                free(q->denial);
                q->denial = strdup(sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.ServiceUnknown") ?
                                   "polkit is not running, so only root may do this" :
                                   "polkit could not be asked");
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0) {
                        free(q->denial);
                        q->denial = strdup("polkit sent an unreadable answer");
                }
                authorized = r >= 0 && authorized;
        }
        if (authorized) {
                for (size_t i = 0; i < ARRAY_SIZE(q->granted); i++)
                        if (!q->granted[i]) {
                                q->granted[i] = q->action;
                                break;
                        }
        } else
                q->denied = true;
        /* Run the original call again; this time the answer is known. */
        r = sd_bus_enqueue_for_read(m->bus, q->request);
        if (r < 0) {
                log_warning_errno(r, "re-dispatching an authorized call: %m");
                auth_query_unlink(m, q);
                auth_query_free(q);
                return 0;
        }
        auth_sweep_schedule(m);
        return 0;
}

static int auth_ask_polkit(Manager *m, AuthQuery *q, sd_bus_message *msg, const char *action,
                           sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        bool interactive = sd_bus_message_get_allow_interactive_authorization(msg) > 0;
        int r;

        r = sd_bus_message_new_method_call(m->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us",
                                          "system-bus-name", 1, "name", "s", q->sender,
                                          action, 0, interactive ? 1u : 0u, "");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot ask polkit: %m");
        /* An interactive check waits for a person; others are quick. Both
         * are bounded. */
        r = sd_bus_call_async(m->bus, &q->slot, call, on_polkit_reply, q,
                              interactive ? 300ULL * 1000000 : 25ULL * 1000000);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot ask polkit: %m");
        q->action = action;
        q->denied = false;
        return 0;
}

int auth_sender_uid(sd_bus_message *msg, uid_t *ret_uid, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot identify the caller: %m");
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot identify the caller: %m");
        *ret_uid = uid;
        return 0;
}

int auth_check_owner(Manager *m, sd_bus_message *msg, uid_t owner, sd_bus_error *error) {
        uid_t uid;
        int r;

        r = auth_check_manage(m, msg, error);
        if (r <= 0)
                return r;
        r = auth_sender_uid(msg, &uid, error);
        if (r < 0)
                return r;
        /* On the session bus every VM is the daemon's user's. */
        if (m->user || uid == 0 || uid == owner)
                return 1;
        return auth_check(m, msg, AUTH_ACTION_MANAGE_ANY, error);
}

int auth_check(Manager *m, sd_bus_message *msg, const char *action, sd_bus_error *error) {
        AuthQuery *q;
        const char *sender;
        uid_t uid;
        int r;

        for (q = m->auth_queries; q; q = q->next)
                if (q->request == msg)
                        break;
        if (q) {
                if (q->slot)
                        return 0;
                if (auth_query_granted(q, action))
                        return 1;
                if (q->denied && strcmp(q->action, action) == 0)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_ACCESS_DENIED, "Not authorized (%s): %s",
                                                 action, q->denial ?: "polkit said no");
                /* A second action for the same call: ask again, keeping
                 * what was granted. */
                r = auth_ask_polkit(m, q, msg, action, error);
                return r < 0 ? r : 0;
        }

        r = auth_sender_uid(msg, &uid, error);
        if (r < 0)
                return r;
        if (uid == 0 || (m->user && uid == geteuid()))
                return 1;
        if (m->user)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_ACCESS_DENIED,
                                         "Only uid %u may manage this user's VMs", (unsigned) geteuid());

        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_set(error, MAJORDOME_ERROR_ACCESS_DENIED, "Caller has no bus name");
        if (auth_queries_count_sender(m, sender) >= AUTH_QUERIES_PER_SENDER_MAX)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_BUSY,
                                         "Too many authorization checks under way for this caller (limit %d)",
                                         AUTH_QUERIES_PER_SENDER_MAX);
        if (auth_queries_count(m) >= AUTH_QUERIES_MAX)
                return sd_bus_error_set(error, MAJORDOME_ERROR_BUSY, "Too many authorization checks under way");

        /* One match for all callers, added once and without waiting: a
         * caller gone before it is in place is answered by polkit anyway. */
        if (!m->auth_name_watch) {
                r = sd_bus_match_signal_async(m->bus, &m->auth_name_watch, "org.freedesktop.DBus",
                                              "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
                                              on_name_owner_changed, NULL, m);
                if (r < 0)
                        log_warning_errno(r, "cannot watch callers leaving: %m");
        }

        q = calloc(1, sizeof(*q));
        if (!q)
                return sd_bus_error_set_errno(error, -ENOMEM);
        q->manager = m;
        q->sender = strdup(sender);
        if (!q->sender) {
                auth_query_free(q);
                return sd_bus_error_set_errno(error, -ENOMEM);
        }
        q->request = sd_bus_message_ref(msg);
        r = auth_ask_polkit(m, q, msg, action, error);
        if (r < 0) {
                auth_query_free(q);
                return r;
        }
        q->next = m->auth_queries;
        m->auth_queries = q;
        return 0;
}

/* ---- the caller's rights for files opened by path ---- */

/* The bus's record of the caller (GetConnectionCredentials: from its
 * socket when it connected, not from /proc). sd-bus does not read
 * UnixGroupIDs, so we ask ourselves. */
static int caller_read_credentials(sd_bus_message *msg, AuthCaller *c, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bool have_uid = false;
        int r;

        r = sd_bus_call_method(sd_bus_message_get_bus(msg), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionCredentials", error, &reply, "s",
                               sd_bus_message_get_sender(msg));
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0) {
                const char *key;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0 && strcmp(key, "UnixUserID") == 0) {
                        uint32_t uid;

                        r = sd_bus_message_read(reply, "v", "u", &uid);
                        c->uid = uid;
                        have_uid = r >= 0;
                } else if (r >= 0 && strcmp(key, "UnixGroupIDs") == 0) {
                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_enter_container(reply, 'a', "u");
                        while (r >= 0) {
                                uint32_t gid;

                                r = sd_bus_message_read(reply, "u", &gid);
                                if (r <= 0)
                                        break;
                                if (c->n_groups >= AUTH_CALLER_GROUPS_MAX)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_ACCESS_DENIED,
                                                                 "The caller is in more than %d groups",
                                                                 AUTH_CALLER_GROUPS_MAX);
                                c->groups[c->n_groups++] = gid;
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read the caller's credentials: %m");
        if (!have_uid)
                return sd_bus_error_set(error, MAJORDOME_ERROR_ACCESS_DENIED, "The bus does not know the caller's uid");
        return 0;
}

static bool gid_in(gid_t gid, const gid_t *gids, int n) {
        for (int i = 0; i < n; i++)
                if (gids[i] == gid)
                        return true;
        return false;
}

int auth_caller_from_message(sd_bus_message *msg, AuthCaller *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL, *proc = NULL;
        pid_t pid;
        gid_t egid;
        int r;

        *ret = (AuthCaller) {};
        r = caller_read_credentials(msg, ret, error);
        if (r < 0)
                return r;
        /* A privileged daemon acts with the caller's rights; an unprivileged
         * one (--user) has no more than its own caller. */
        ret->switch_ids = geteuid() == 0 && ret->uid != 0;
        if (!ret->switch_ids)
                return 0;
        /* dbus-daemon's UnixGroupIDs hold the primary group too. */
        if (ret->n_groups == 0)
                return sd_bus_error_set(error, MAJORDOME_ERROR_ACCESS_DENIED,
                                        "Cannot identify the caller's groups: the bus gave none");

        /* The fsgid only names the group of files we create: /proc's egid
         * if it is one of the bus's groups (a reused pid can only pick
         * another of the caller's own groups), else the first. */
        ret->gid = ret->groups[0];
        if (sd_bus_query_sender_creds(msg, SD_BUS_CREDS_PID, &creds) >= 0 &&
            sd_bus_creds_get_pid(creds, &pid) >= 0 &&
            sd_bus_creds_new_from_pid(&proc, pid, SD_BUS_CREDS_EGID) >= 0 &&
            sd_bus_creds_get_egid(proc, &egid) >= 0 && gid_in(egid, ret->groups, ret->n_groups))
                ret->gid = egid;
        return 0;
}

/* Raw syscalls: the glibc wrappers of setgroups() change every thread.
 * setfsuid() and setfsgid() return the previous id, never an error; asking
 * with -1 tells whether the change took. */
static int fsids_set(uid_t uid, gid_t gid, const gid_t *groups, int n_groups) {
        if (syscall(SYS_setgroups, (size_t) n_groups, groups) < 0)
                return -errno;
        (void) syscall(SYS_setfsgid, gid);
        if ((gid_t) syscall(SYS_setfsgid, (gid_t) -1) != gid)
                return -EPERM;
        (void) syscall(SYS_setfsuid, uid);
        if ((uid_t) syscall(SYS_setfsuid, (uid_t) -1) != uid)
                return -EPERM;
        return 0;
}

/* Going back must work: a daemon left with a caller's ids would fail or,
 * worse, act with them for the next one. */
static void caller_ids_leave(const gid_t *saved, int n_saved) {
        if (fsids_set(geteuid(), getegid(), saved, n_saved) < 0) {
                log_error("cannot restore the daemon's own file system ids; exiting");
                abort();
        }
}

/* Switches this thread's file system ids to the caller's, saving the
 * daemon's supplementary groups in saved (AUTH_CALLER_GROUPS_MAX) for
 * caller_ids_leave(). fsuid last: leaving 0 drops CAP_DAC_OVERRIDE and
 * friends, so what follows is checked against the caller's ids alone. On
 * failure the daemon's own ids are back. */
static int caller_ids_enter(const AuthCaller *c, gid_t *saved, int *ret_n_saved) {
        int n, r;

        n = getgroups(AUTH_CALLER_GROUPS_MAX, saved);
        if (n < 0)
                return -errno;
        r = fsids_set(c->uid, c->gid, c->groups, c->n_groups);
        if (r < 0) {
                caller_ids_leave(saved, n);
                return r;
        }
        *ret_n_saved = n;
        return 0;
}

int auth_caller_open(const AuthCaller *c, const char *path, int flags, mode_t mode) {
        gid_t saved[AUTH_CALLER_GROUPS_MAX];
        int fd, n = 0, r;

        if (!c->switch_ids) {
                fd = open(path, flags, mode);
                return fd < 0 ? -errno : fd;
        }
        r = caller_ids_enter(c, saved, &n);
        if (r < 0)
                return r;
        fd = open(path, flags, mode);
        r = fd < 0 ? -errno : fd;
        caller_ids_leave(saved, n);
        return r;
}

int auth_caller_connect_handle(const AuthCaller *c, int handle) {
        char path[sizeof("/proc/self/fd/") + 12];
        gid_t saved[AUTH_CALLER_GROUPS_MAX];
        int fd = -EBADF, n = 0, r;

        if (handle < 0)
                return -EBADF;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", handle);
        /* Connecting through the magic link reaches the inode the handle
         * names, whatever the path now points at; the permission checked
         * is the socket's own (write), as the caller. A Unix stream
         * connect never returns EINPROGRESS. */
        if (!c->switch_ids)
                r = connect_unix(path, SOCK_STREAM | SOCK_NONBLOCK, &fd);
        else {
                r = caller_ids_enter(c, saved, &n);
                if (r < 0)
                        return r;
                r = connect_unix(path, SOCK_STREAM | SOCK_NONBLOCK, &fd);
                caller_ids_leave(saved, n);
        }
        if (r < 0)
                return r;
        safe_close(fd);
        return 0;
}
