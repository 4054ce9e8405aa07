/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Who may change VMs. Read-only calls are open. Mutating calls: root always;
 * on the session bus the daemon's own uid; on the system bus whoever polkit
 * grants org.majordome.manage-vms, asked over D-Bus (no libpolkit). */

#include <systemd/sd-bus.h>

#include "manager.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AUTH_ACTION_MANAGE "org.majordome.manage-vms"
#define AUTH_QUERIES_MAX 256

/* Returns 1 when the sender of msg may act now; 0 when polkit was asked and
 * the message will be dispatched again once it answered (the handler
 * returns 1 without replying); a negative errno with error set when
 * denied. */
int auth_check_manage(Manager *m, sd_bus_message *msg, sd_bus_error *error);

void auth_queries_free(Manager *m);

#ifdef __cplusplus
}
#endif
