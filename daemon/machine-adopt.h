/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Re-adoption of running VMMs after a daemon restart, from their state
 * files: the pid's identity checked, the VMM asked for its own view, and
 * one that does not answer (yet) managed from its file until it does. */

#include "daemon/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Re-adopts a VMM listed in a state file; 0 on success. -ESRCH: the VMM is
 * gone (no such pid, or the pid was reused) and -EBADMSG: the file is
 * unusable; the caller removes the entry then, and only then. A VMM that
 * is alive but does not answer is adopted from the state file. A stop or
 * kill under way when the last daemon ended is continued. */
int machine_adopt(Manager *m, const char *state_path, Machine **ret);

#ifdef __cplusplus
}
#endif
