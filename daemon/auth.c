/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "errors.h"
#include "log.h"

struct AuthQuery {
        sd_bus_message *request;
        sd_bus_slot *slot;      /* non-NULL while polkit has not answered */
        bool authorized;
        char *denial;           /* why not, when polkit could not be asked */
        Manager *manager;
        AuthQuery *next;
};

static AuthQuery *auth_query_free(AuthQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
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
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;

        q->slot = sd_bus_slot_unref(q->slot);
        e = sd_bus_message_get_error(reply);
        if (e) {
                log_debug("polkit: %s: %s", e->name, e->message);
                q->denial = strdup(sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.ServiceUnknown") ?
                                   "polkit is not running, so only root may do this" :
                                   "polkit could not be asked");
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0)
                        q->denial = strdup("polkit sent an unreadable answer");
                q->authorized = r >= 0 && authorized;
        }
        /* Run the original call again; this time the answer is known. */
        r = sd_bus_enqueue_for_read(q->manager->bus, q->request);
        if (r < 0) {
                log_warning_errno(r, "re-dispatching an authorized call: %m");
                auth_query_unlink(q->manager, q);
                auth_query_free(q);
        }
        return 0;
}

static int auth_count(Manager *m) {
        int n = 0;

        for (AuthQuery *q = m->auth_queries; q; q = q->next)
                n++;
        return n;
}

int auth_check_manage(Manager *m, sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        AuthQuery *q;
        const char *sender;
        uid_t uid;
        bool interactive;
        int r;

        for (q = m->auth_queries; q; q = q->next)
                if (q->request == msg)
                        break;
        if (q) {
                bool ok = q->authorized;

                if (q->slot)
                        return 0;
                auth_query_unlink(m, q);
                if (!ok)
                        r = sd_bus_error_setf(error, MAJORDOME_ERROR_ACCESS_DENIED,
                                              "Not authorized to manage VMs (%s): %s", AUTH_ACTION_MANAGE,
                                              q->denial ?: "polkit said no");
                auth_query_free(q);
                return ok ? 1 : r;
        }

        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot identify the caller: %m");
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot identify the caller: %m");
        if (uid == 0 || (m->user && uid == geteuid()))
                return 1;
        if (m->user)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_ACCESS_DENIED,
                                         "Only uid %u may manage this user's VMs", (unsigned) geteuid());

        if (auth_count(m) >= AUTH_QUERIES_MAX)
                return sd_bus_error_set(error, MAJORDOME_ERROR_BUSY, "Too many authorization checks under way");
        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_set(error, MAJORDOME_ERROR_ACCESS_DENIED, "Caller has no bus name");
        interactive = sd_bus_message_get_allow_interactive_authorization(msg) > 0;

        r = sd_bus_message_new_method_call(m->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us",
                                          "system-bus-name", 1, "name", "s", sender,
                                          AUTH_ACTION_MANAGE, 0, interactive ? 1u : 0u, "");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot ask polkit: %m");

        q = calloc(1, sizeof(*q));
        if (!q)
                return sd_bus_error_set_errno(error, -ENOMEM);
        q->manager = m;
        q->request = sd_bus_message_ref(msg);
        /* An interactive check waits for a person; others are quick. Both
         * are bounded. */
        r = sd_bus_call_async(m->bus, &q->slot, call, on_polkit_reply, q,
                              interactive ? 300ULL * 1000000 : 25ULL * 1000000);
        if (r < 0) {
                auth_query_free(q);
                return sd_bus_error_set_errnof(error, r, "Cannot ask polkit: %m");
        }
        q->next = m->auth_queries;
        m->auth_queries = q;
        return 0;
}
