/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* What machine.c shares with its parts machine-adopt.c and machine-stop.c
 * (not for the D-Bus layer): the state machine's moves and the waiters of
 * a start or a stop. */

#include "daemon/machine.h"

int machine_waiter_add(MachineWaiter **list, MachineDoneFn done, void *userdata);
/* Calls and frees every waiter on the list. */
void machine_waiters_complete(Machine *vm, MachineWaiter **list, int r, const char *msg, MachineStopStep step);
/* Saves the state file (unless stopped) and tells the wire layer. */
void machine_set_state(Machine *vm, MachineState state);
/* The pidfd's and the start timer's event handlers. */
int machine_on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata);
int machine_on_start_timeout(sd_event_source *s, uint64_t usec, void *userdata);
/* Asks the VMM to push its events (docs/control-protocol.md). */
int machine_subscribe(Machine *vm);
