/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include "daemon/manager.h"
#include "daemon/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Puts a running VM's VMM in a scope of its own, majordome-<name>.scope
 * under machine.slice (with the VM's MemoryMax= and CPUWeight=), through
 * the service manager on the daemon's bus, and registers it with
 * systemd-machined (system bus only; `machinectl list` shows it). Where
 * either is not on the bus the daemon says so once and goes on. Answers
 * come later; nothing waits for them. */
void machined_register(Manager *m, Machine *vm);

#ifdef __cplusplus
}
#endif
