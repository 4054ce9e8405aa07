/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "vmm/pci/pci.h"
#include "common/unaligned.h"

void pci_device_init(PciDevice *d, uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                     uint16_t subsys_vendor, uint16_t subsys_id) {
        *d = (PciDevice) { .cap_next = 0x40 };
        put_le(d->config + PCI_VENDOR_ID, 2, vendor);
        put_le(d->config + PCI_DEVICE_ID, 2, device);
        d->config[PCI_REVISION_ID] = revision;
        put_le(d->config + PCI_CLASS_PROG, 3, class_code);
        d->config[PCI_HEADER_TYPE] = 0;
        put_le(d->config + PCI_SUBSYSTEM_VENDOR_ID, 2, subsys_vendor);
        put_le(d->config + PCI_SUBSYSTEM_ID, 2, subsys_id);
        /* Command: memory space, bus master and INTx disable are ours to
         * honour; I/O space stays 0 (no I/O BARs). */
        put_le(d->wmask + PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
        d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

int pci_device_add_bar(PciDevice *d, unsigned bar, uint64_t size, bool prefetch,
                       const BusDeviceOps *ops, void *opaque) {
        uint64_t mask;

        if (bar + 1 >= PCI_NUM_BARS || size < 4096 || (size & (size - 1)) || d->bars[bar].size || d->bars[bar + 1].size)
                return -EINVAL;
        d->bars[bar] = (PciBar) { .size = size, .prefetch = prefetch, .ops = ops, .opaque = opaque };
        /* PCI 3.0 §6.2.5.1: the low bits say "64-bit memory"; the address
         * bits below the size read as zero, which is how sizing works. */
        d->config[PCI_BAR0 + 4 * bar] = PCI_BAR_MEM_64 | (prefetch ? PCI_BAR_PREFETCH : 0);
        mask = ~(size - 1);
        put_le(d->wmask + PCI_BAR0 + 4 * bar, 4, (uint32_t) mask & ~0xfu);
        put_le(d->wmask + PCI_BAR0 + 4 * (bar + 1), 4, (uint32_t) (mask >> 32));
        return 0;
}

int pci_device_add_cap(PciDevice *d, const void *cap, uint8_t len) {
        unsigned off = ALIGN_UP((unsigned) d->cap_next, 4u);

        if (len < 2 || off + len > PCI_CONFIG_SIZE)
                return -ENOSPC;
        memcpy(d->config + off, cap, len);
        d->config[off + 1] = 0;
        if (d->cap_last)
                d->config[d->cap_last + 1] = (uint8_t) off;
        else
                d->config[PCI_CAPABILITY_LIST] = (uint8_t) off;
        d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
        d->cap_last = (uint8_t) off;
        d->cap_next = (uint8_t) MIN(off + len, 255u);
        return (int) off;
}

uint64_t pci_bar_address(PciDevice *d, unsigned bar) {
        return ((uint64_t) get_le(d->config + PCI_BAR0 + 4 * bar, 4) & ~UINT64_C(0xf)) |
               (uint64_t) get_le(d->config + PCI_BAR0 + 4 * (bar + 1), 4) << 32;
}

/* Recomputes where each BAR decodes; tells the owner what changed. */
static void bars_update(PciDevice *d) {
        bool mem = get_le(d->config + PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;

        for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
                PciBar *bar = &d->bars[i];
                uint64_t addr;
                bool on;

                if (!bar->size)
                        continue;
                addr = pci_bar_address(d, i);
                /* An address of 0, or one that wraps, decodes nothing. */
                on = mem && addr != 0 && addr + bar->size > addr;
                if (on == bar->mapped && (!on || addr == bar->mapped_addr))
                        continue;
                bar->mapped = on;
                bar->mapped_addr = addr;
                if (d->ops && d->ops->bar_remapped)
                        d->ops->bar_remapped(d->owner, i, on, addr);
        }
}

static PciDevice *device_at(PciBus *b, unsigned slot, unsigned fn) {
        if (slot >= PCI_MAX_SLOTS || fn != 0)
                return NULL;
        return b->slots[slot];
}

static bool access_ok(unsigned offset, unsigned size) {
        return (size == 1 || size == 2 || size == 4) && offset % size == 0 && offset + size <= PCI_CONFIG_SIZE;
}

/* A configuration access the device redirects to a BAR: 1 with the BAR's
 * ops, device and offset (copied under the lock, as window_target() does),
 * 0 for none, -EINVAL for a BAR the device does not have or a range past
 * its end. Bus lock held. */
static int config_redirect(PciDevice *d, unsigned offset, unsigned size, const BusDeviceOps **ret_ops,
                           void **ret_dev, uint64_t *ret_off) {
        unsigned bar = 0;
        uint64_t off = 0;
        int r;

        if (!d->ops || !d->ops->config_to_bar)
                return 0;
        r = d->ops->config_to_bar(d->owner, offset, size, &bar, &off);
        if (r <= 0)
                return r < 0 ? -EINVAL : 0;
        /* The upper half of a 64-bit BAR has size 0, so it is refused too. */
        if (bar >= PCI_NUM_BARS || !d->bars[bar].size || off > d->bars[bar].size ||
            size > d->bars[bar].size - off)
                return -EINVAL;
        *ret_ops = d->bars[bar].ops;
        *ret_dev = d->bars[bar].opaque;
        *ret_off = off;
        return 1;
}

uint32_t pci_config_read(PciBus *b, unsigned slot, unsigned fn, unsigned offset, unsigned size) {
        const BusDeviceOps *ops = NULL;
        void *dev = NULL;
        uint8_t data[4] = {};
        uint64_t off = 0;
        PciDevice *d;
        uint32_t v;
        int r = 0;

        if (!access_ok(offset, size))
                return 0xffffffffu >> (32 - 8 * MIN(size, 4u));
        pthread_mutex_lock(&b->lock);
        d = device_at(b, slot, fn);
        if (d)
                r = config_redirect(d, offset, size, &ops, &dev, &off);
        v = d ? get_le(d->config + offset, size) : 0xffffffffu >> (32 - 8 * size);
        pthread_mutex_unlock(&b->lock);
        if (r < 0)
                return 0;
        if (r > 0) {
                if (ops && ops->read)
                        ops->read(dev, off, data, size);
                v = get_le(data, size);
        }
        return v;
}

void pci_config_write(PciBus *b, unsigned slot, unsigned fn, unsigned offset, unsigned size, uint32_t value) {
        const BusDeviceOps *ops = NULL;
        void *dev = NULL;
        uint8_t data[4];
        uint64_t off = 0;
        PciDevice *d;
        int r = 0;

        if (!access_ok(offset, size))
                return;
        pthread_mutex_lock(&b->lock);
        d = device_at(b, slot, fn);
        if (d)
                r = config_redirect(d, offset, size, &ops, &dev, &off);
        if (d && r == 0) {
                for (unsigned i = 0; i < size; i++) {
                        uint8_t m = d->wmask[offset + i];
                        uint8_t byte = (uint8_t) (value >> (8 * i));
                        d->config[offset + i] = (uint8_t) ((d->config[offset + i] & ~m) | (byte & m));
                }
                if (d->ops && d->ops->config_written)
                        d->ops->config_written(d->owner, offset, size);
                if (offset < PCI_BAR0 + 4 * PCI_NUM_BARS && offset + size > PCI_COMMAND)
                        bars_update(d);
        }
        pthread_mutex_unlock(&b->lock);
        if (r > 0 && ops && ops->write) {
                put_le(data, size, value);
                ops->write(dev, off, data, size);
        }
}

/* ---- configuration mechanism #1 ---- */

static void conf1_decode(uint32_t addr, unsigned *bus, unsigned *slot, unsigned *fn, unsigned *reg) {
        *bus = (addr >> 16) & 0xff;
        *slot = (addr >> 11) & 0x1f;
        *fn = (addr >> 8) & 0x7;
        *reg = addr & 0xfc;
}

static void conf1_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size) {
        PciBus *b = opaque;
        unsigned bus, slot, fn, reg;
        uint32_t addr, v;

        memset(data, 0xff, size);
        if (offset < 4) {
                /* Linux's pci_check_type1() writes 0x80000000 here and
                 * expects it back; only dword accesses are the register. */
                if (offset == 0 && size == 4) {
                        pthread_mutex_lock(&b->lock);
                        put_le(data, 4, b->conf_addr);
                        pthread_mutex_unlock(&b->lock);
                }
                return;
        }
        pthread_mutex_lock(&b->lock);
        addr = b->conf_addr;
        pthread_mutex_unlock(&b->lock);
        if (!(addr & 0x80000000u))
                return;
        conf1_decode(addr, &bus, &slot, &fn, &reg);
        if (bus != 0 || offset - 4 + size > 4)
                return;
        v = pci_config_read(b, slot, fn, reg + (unsigned) (offset - 4), size);
        put_le(data, size, v);
}

static void conf1_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size) {
        PciBus *b = opaque;
        unsigned bus, slot, fn, reg;
        uint32_t addr;

        if (offset < 4) {
                if (offset == 0 && size == 4) {
                        pthread_mutex_lock(&b->lock);
                        b->conf_addr = get_le(data, 4) & 0x80fffffcu;
                        pthread_mutex_unlock(&b->lock);
                }
                return;
        }
        pthread_mutex_lock(&b->lock);
        addr = b->conf_addr;
        pthread_mutex_unlock(&b->lock);
        if (!(addr & 0x80000000u))
                return;
        conf1_decode(addr, &bus, &slot, &fn, &reg);
        if (bus != 0 || offset - 4 + size > 4)
                return;
        pci_config_write(b, slot, fn, reg + (unsigned) (offset - 4), size, get_le(data, size));
}

const BusDeviceOps pci_conf1_bus_ops = {
        .name = "pci-conf1",
        .read = conf1_read,
        .write = conf1_write,
};

/* ---- the BAR window ---- */

static PciBar *bar_lookup(PciBus *b, uint64_t addr, unsigned size, uint64_t *ret_off) {
        for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
                PciDevice *d = b->slots[s];
                if (!d)
                        continue;
                for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
                        PciBar *bar = &d->bars[i];
                        if (bar->mapped && addr >= bar->mapped_addr && addr - bar->mapped_addr < bar->size &&
                            size <= bar->size - (addr - bar->mapped_addr)) {
                                *ret_off = addr - bar->mapped_addr;
                                return bar;
                        }
                }
        }
        return NULL;
}

/* The BAR an access of the MMIO window lands in, looked up under the lock
 * (the guest may move BARs), so the device is called without it. */
static const BusDeviceOps *window_target(PciBus *b, uint64_t offset, unsigned size, void **ret_dev,
                                         uint64_t *ret_off) {
        const BusDeviceOps *ops = NULL;
        PciBar *bar;

        pthread_mutex_lock(&b->lock);
        bar = bar_lookup(b, b->mmio_base + offset, size, ret_off);
        if (bar) {
                ops = bar->ops;
                *ret_dev = bar->opaque;
        }
        pthread_mutex_unlock(&b->lock);
        return ops;
}

static void window_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size) {
        void *dev = NULL;
        uint64_t off = 0;
        const BusDeviceOps *ops = window_target(opaque, offset, size, &dev, &off);

        if (ops && ops->read)
                ops->read(dev, off, data, size);
        else
                memset(data, 0xff, size);
}

static void window_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size) {
        void *dev = NULL;
        uint64_t off = 0;
        const BusDeviceOps *ops = window_target(opaque, offset, size, &dev, &off);

        if (ops && ops->write)
                ops->write(dev, off, data, size);
}

static const BusDeviceOps pci_window_bus_ops = {
        .name = "pci-bars",
        .read = window_read,
        .write = window_write,
};

int pci_bus_init(PciBus *b, Bus *pio, Bus *mmio, uint64_t mmio_base, uint64_t mmio_size) {
        int r;

        *b = (PciBus) { .mmio_base = mmio_base, .mmio_size = mmio_size, .mmio_next = mmio_base, .mmio = mmio };
        pthread_mutex_init(&b->lock, NULL);
        /* 00:00.0, a host bridge (class 06/00/00), what Linux's
         * pci_sanity_check() looks for on bus 0. */
        pci_device_init(&b->host_bridge, 0x8086, 0x29c0, 0x060000, 0, 0, 0);
        b->slots[0] = &b->host_bridge;

        if (pio) {
                r = bus_register(pio, PCI_PORT_CONF_ADDR, 8, &pci_conf1_bus_ops, b);
                if (r < 0)
                        return r;
        }
        if (mmio) {
                r = bus_register(mmio, mmio_base, mmio_size, &pci_window_bus_ops, b);
                if (r < 0)
                        return r;
        }
        return 0;
}

void pci_bus_done(PciBus *b) {
        pthread_mutex_destroy(&b->lock);
}

int pci_bus_add_device(PciBus *b, PciDevice *d, const PciDeviceOps *ops, void *owner) {
        unsigned slot;
        uint64_t next;

        for (slot = 1; slot < PCI_MAX_SLOTS; slot++)
                if (!b->slots[slot])
                        break;
        if (slot >= PCI_MAX_SLOTS)
                return -ENOSPC;

        /* Naturally aligned addresses, as firmware would assign them. */
        next = b->mmio_next;
        for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
                uint64_t addr;
                if (!d->bars[i].size)
                        continue;
                addr = ALIGN_UP(next, d->bars[i].size);
                if (addr + d->bars[i].size > b->mmio_base + b->mmio_size)
                        return -ENOSPC;
                put_le(d->config + PCI_BAR0 + 4 * i, 4,
                       (uint32_t) addr | (d->config[PCI_BAR0 + 4 * i] & 0xfu));
                put_le(d->config + PCI_BAR0 + 4 * (i + 1), 4, (uint32_t) (addr >> 32));
                next = addr + d->bars[i].size;
        }

        pthread_mutex_lock(&b->lock);
        b->mmio_next = next;
        d->ops = ops;
        d->owner = owner;
        d->slot = (uint8_t) slot;
        b->slots[slot] = d;
        pthread_mutex_unlock(&b->lock);
        return (int) slot;
}
