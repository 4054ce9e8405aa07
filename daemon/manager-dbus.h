/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MANAGER_BUS_NAME "org.majordome.VmManager1"
#define MANAGER_BUS_PATH "/org/majordome/VmManager1"
#define MANAGER_BUS_INTERFACE "org.majordome.VmManager1"

/* Limits on what one StartVm call may carry. */
#define MANAGER_CONFIG_KEYS_MAX 32
#define MANAGER_CONFIG_FDS_MAX 16 /* kernel, initrd, serial log and 8 disks fit */
/* StartVm's whole config, checked before authorization. */
#define MANAGER_CONFIG_BYTES_MAX (64 * 1024)
#define MANAGER_CONFIG_ITEMS_MAX 1024

int manager_bus_register(Manager *m);

#ifdef __cplusplus
}
#endif
