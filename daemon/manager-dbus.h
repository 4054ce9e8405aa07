/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <systemd/sd-bus.h>

#include "daemon/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MANAGER_BUS_NAME "org.majordome.VmManager1"
#define MANAGER_BUS_PATH "/org/majordome/VmManager1"
#define MANAGER_BUS_INTERFACE "org.majordome.VmManager1"

int manager_bus_register(Manager *m);

#ifdef __cplusplus
}
#endif
