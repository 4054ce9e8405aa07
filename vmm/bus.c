/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "vmm/bus.h"

int bus_register(Bus *b, uint64_t base, uint64_t len, const BusDeviceOps *ops, void *dev) {
        if (len == 0 || base + len < base)
                return -EINVAL;
        for (unsigned i = 0; i < b->n_ranges; i++) {
                const BusRange *r = &b->ranges[i];
                if (base < r->base + r->len && r->base < base + len)
                        return -EEXIST;
        }
        if (b->n_ranges >= BUS_MAX_RANGES)
                return -ENOSPC;
        b->ranges[b->n_ranges++] = (BusRange) { .base = base, .len = len, .ops = ops, .dev = dev };
        return 0;
}

static const BusRange *bus_find(const Bus *b, uint64_t addr, unsigned size) {
        for (unsigned i = 0; i < b->n_ranges; i++) {
                const BusRange *r = &b->ranges[i];
                /* The whole access must fall inside one device's range. */
                if (addr >= r->base && addr - r->base < r->len && size <= r->len - (addr - r->base))
                        return r;
        }
        return NULL;
}

bool bus_read(const Bus *b, uint64_t addr, uint8_t *data, unsigned size) {
        const BusRange *r = bus_find(b, addr, size);

        if (!r || !r->ops->read) {
                memset(data, 0xff, size);
                return r != NULL;
        }
        r->ops->read(r->dev, addr - r->base, data, size);
        return true;
}

bool bus_write(const Bus *b, uint64_t addr, const uint8_t *data, unsigned size) {
        const BusRange *r = bus_find(b, addr, size);

        if (!r)
                return false;
        if (r->ops->write)
                r->ops->write(r->dev, addr - r->base, data, size);
        return true;
}
