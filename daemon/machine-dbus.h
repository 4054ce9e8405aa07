/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <systemd/sd-bus.h>

#include "daemon/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MACHINE_BUS_INTERFACE "org.majordome.Vm1"
#define MACHINE_BUS_PATH_PREFIX "/org/majordome/VmManager1/vm"

/* The fallback vtable, object find and node enumerator for every VM. */
int machine_bus_register(Manager *m);

/* GetVmInfo: the Vm1 properties of vm as an a{sv}. */
int machine_bus_append_info(sd_bus_message *reply, Machine *vm);

/* Shared with manager-dbus.c: the Stop flow and its reply. */
int machine_bus_stop(Machine *vm, sd_bus_message *msg, const char *mode, uint32_t timeout_ms, sd_bus_error *error);

/* The core's changes, as signals and PropertiesChanged (ManagerHooks). */
void machine_bus_added(Manager *m, Machine *vm);
void machine_bus_removed(Manager *m, Machine *vm);
void machine_bus_state_changed(Manager *m, Machine *vm);
void machine_bus_devices_changed(Manager *m, Machine *vm);
void machine_bus_shares_changed(Manager *m, Machine *vm);
void machine_bus_scope_changed(Manager *m, Machine *vm);
void machine_bus_gpu_changed(Manager *m, Machine *vm);
void machine_bus_balloon_changed(Manager *m, Machine *vm);

/* Maps a core errno to a named error. */
int machine_bus_error(sd_bus_error *error, int r, const char *what, const char *msg);

#ifdef __cplusplus
}
#endif
