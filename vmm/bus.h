/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_MAX_RANGES 64

/* A device's view of an access: offset from the start of its range. Each
 * device serialises its own state; the bus itself is fixed before the
 * first vCPU runs, so lookups need no lock. */
typedef struct BusDeviceOps {
        const char *name;
        void (*read)(void *dev, uint64_t offset, uint8_t *data, unsigned size);
        void (*write)(void *dev, uint64_t offset, const uint8_t *data, unsigned size);
} BusDeviceOps;

typedef struct BusRange {
        uint64_t base, len;
        const BusDeviceOps *ops;
        void *dev;
} BusRange;

typedef struct Bus {
        BusRange ranges[BUS_MAX_RANGES];
        unsigned n_ranges;
} Bus;

/* -EEXIST on overlap, -ENOSPC when full, -EINVAL for an empty or wrapping range. */
int bus_register(Bus *b, uint64_t base, uint64_t len, const BusDeviceOps *ops, void *dev);
/* false when no device claims the access; reads then see all ones. */
bool bus_read(const Bus *b, uint64_t addr, uint8_t *data, unsigned size);
bool bus_write(const Bus *b, uint64_t addr, const uint8_t *data, unsigned size);

/* How devices raise an interrupt line, without knowing the hypervisor. */
typedef struct IrqLine {
        void (*set)(void *ctx, unsigned gsi, bool level);
        void *ctx;
        unsigned gsi;
} IrqLine;

static inline void irq_line_set(const IrqLine *l, bool level) {
        if (l->set)
                l->set(l->ctx, l->gsi, level);
}

#ifdef __cplusplus
}
#endif
