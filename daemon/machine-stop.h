/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Ending a VMM: the graceful step (the VMM's stop), then SIGTERM, then
 * SIGKILL, each after stop_timeout_ms, through its pidfd. The step reached
 * is saved in the state file, so a restarted daemon goes on from it. */

#include "daemon/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* graceful: VMM stop, then SIGTERM, then SIGKILL, each bounded by
 * timeout_ms; kill: SIGKILL at once. The waiter is called once the VMM is
 * gone. Joining a stop already under way is allowed. */
int machine_stop(Machine *vm, bool kill, uint32_t timeout_ms, MachineDoneFn done, void *userdata);

/* After a daemon restart: the step the last daemon had reached is done
 * again and its timer armed (machine_adopt()). */
void machine_stop_resume(Machine *vm);

#ifdef __cplusplus
}
#endif
