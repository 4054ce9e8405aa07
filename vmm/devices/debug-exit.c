/* SPDX-License-Identifier: BSD-3-Clause */
/* One write-only byte: the guest's verdict becomes the VMM's exit code.
 * Present only with --debug-exit, at QEMU's isa-debug-exit port. */
#include "vmm/devices/legacy.h"

static void debug_exit_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size) {
        DebugExit *d = dev;

        d->exit(d->userdata, data[0]);
}

const BusDeviceOps debug_exit_bus_ops = {
        .name = "debug-exit",
        .write = debug_exit_write,
};
