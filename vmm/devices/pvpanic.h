/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* pvpanic-pci, as QEMU (hw/misc/pvpanic-pci.c, docs/specs/pvpanic.rst) and
 * crosvm offer it: PCI 1b36:0011, class 0x088000 (system peripheral,
 * other), one memory BAR whose byte 0 reads the events the host supports
 * and takes the event the guest reports. Linux's pvpanic-pci driver writes
 * PVPANIC_PANICKED from its panic notifier (and PVPANIC_CRASH_LOADED when
 * a crash kernel takes over). */

#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/pci/pci.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PVPANIC_VENDOR 0x1b36 /* Red Hat, Inc. (QEMU's PCI devices) */
#define PVPANIC_DEVICE 0x0011
#define PVPANIC_CLASS 0x088000
#define PVPANIC_BAR_SIZE 4096 /* the smallest BAR this PCI bus makes; byte 0 is the register */

#define PVPANIC_PANICKED 1u
#define PVPANIC_CRASH_LOADED 2u
#define PVPANIC_EVENTS (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

/* Called from a vCPU thread with the event bits newly reported. */
typedef void (*PvPanicFn)(void *userdata, uint32_t events);

typedef struct PvPanic {
        PciDevice pci;
        PvPanicFn report;
        void *userdata;
        uint32_t reported;      /* __atomic: bits already reported, each at most once */
} PvPanic;

/* Sets up the PCI identity and the BAR; the caller adds p->pci to a bus. */
int pvpanic_init(PvPanic *p, PvPanicFn report, void *userdata);

/* The BAR's accesses (offset in the BAR): only 1-byte accesses at offset 0
 * mean anything; others read 0 and writes are dropped. */
extern const BusDeviceOps pvpanic_bar_ops;

#ifdef __cplusplus
}
#endif
