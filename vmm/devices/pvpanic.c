/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "vmm/devices/pvpanic.h"

static void pvpanic_read(void *dev, uint64_t offset, uint8_t *data, unsigned size) {
        memset(data, 0, size);
        /* QEMU's register is one byte; Linux reads it with ioread8(). */
        if (offset == 0 && size == 1)
                data[0] = PVPANIC_EVENTS;
}

static void pvpanic_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size) {
        PvPanic *p = dev;
        uint32_t events, old;

        if (offset != 0 || size != 1)
                return;
        /* Bits the device does not offer are ignored (docs/specs/pvpanic.rst:
         * "the guest should only write events the host supports"). */
        events = data[0] & PVPANIC_EVENTS;
        if (!events)
                return;
        /* Each event once: a guest that writes in a loop cannot flood the
         * host with reports. */
        old = __atomic_fetch_or(&p->reported, events, __ATOMIC_ACQ_REL);
        events &= ~old;
        if (events && p->report)
                p->report(p->userdata, events);
}

const BusDeviceOps pvpanic_bar_ops = {
        .name = "pvpanic",
        .read = pvpanic_read,
        .write = pvpanic_write,
};

int pvpanic_init(PvPanic *p, PvPanicFn report, void *userdata) {
        *p = (PvPanic) { .report = report, .userdata = userdata };
        pci_device_init(&p->pci, PVPANIC_VENDOR, PVPANIC_DEVICE, PVPANIC_CLASS, 1, PVPANIC_VENDOR,
                        PVPANIC_DEVICE);
        return pci_device_add_bar(&p->pci, 0, PVPANIC_BAR_SIZE, false, &pvpanic_bar_ops, p);
}
