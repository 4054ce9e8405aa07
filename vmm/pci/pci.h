/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* PCI bus 0 behind a host bridge at 00:00.0, reached through configuration
 * mechanism #1 (ports 0xcf8/0xcfc, PCI Local Bus 3.0 §3.2.2.3.2). Each device
 * is one function; its BARs are 64-bit memory BARs placed in the MMIO
 * window by the VMM (the guest may move them; accesses follow). */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PCI_PORT_CONF_ADDR 0xcf8
#define PCI_PORT_CONF_DATA 0xcfc
#define PCI_CONFIG_SIZE 256
#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS 6

/* Configuration space registers (PCI 3.0 §6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define PCI_BAR_MEM_64 0x4
#define PCI_BAR_PREFETCH 0x8

typedef struct PciDevice PciDevice;

typedef struct PciDeviceOps {
        /* A configuration write landed (after the write masks); e.g. the
         * MSI-X control word. Called with the bus lock held. */
        void (*config_written)(void *owner, uint32_t offset, uint32_t size);
        /* A BAR starts or stops decoding, or moved (memory enable in the
         * command register, or a new address). Bus lock held. */
        void (*bar_remapped)(void *owner, unsigned bar, bool enabled, uint64_t addr);
        /* Whether a configuration access at [offset, +size) is an access
         * to one of the device's BARs instead (virtio's pci_cfg_data):
         * 1 with the BAR and the offset in it, 0 for a plain configuration
         * access, -EINVAL to drop it (a read gives 0). The bus checks that
         * the BAR exists and holds [ret_off, +size), then calls the BAR's
         * ops without its lock, as for the MMIO window. Bus lock held.
         * Optional. */
        int (*config_to_bar)(void *owner, unsigned offset, unsigned size, unsigned *ret_bar, uint64_t *ret_off);
} PciDeviceOps;

typedef struct PciBar {
        uint64_t size;          /* 0: no BAR here; else a power of two >= 4 KiB */
        bool prefetch;
        const BusDeviceOps *ops;
        void *opaque;
        bool mapped;            /* decoding at `mapped_addr` */
        uint64_t mapped_addr;
} PciBar;

struct PciDevice {
        uint8_t config[PCI_CONFIG_SIZE];
        uint8_t wmask[PCI_CONFIG_SIZE];
        PciBar bars[PCI_NUM_BARS];
        uint8_t cap_next;       /* where the next capability goes */
        uint8_t cap_last;       /* offset of the last one, 0 for none */
        const PciDeviceOps *ops;
        void *owner;
        uint8_t slot;
};

typedef struct PciBus {
        pthread_mutex_t lock;
        uint32_t conf_addr;
        PciDevice host_bridge;
        PciDevice *slots[PCI_MAX_SLOTS];
        uint64_t mmio_base, mmio_size, mmio_next;
        Bus *mmio;
} PciBus;

/* Registers conf1 on pio and the BAR window [mmio_base, +mmio_size) on mmio. */
int pci_bus_init(PciBus *b, Bus *pio, Bus *mmio, uint64_t mmio_base, uint64_t mmio_size);
void pci_bus_done(PciBus *b);

void pci_device_init(PciDevice *d, uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                     uint16_t subsys_vendor, uint16_t subsys_id);
/* A 64-bit memory BAR at index bar (takes bar and bar+1). size: a power of
 * two, at least 4 KiB. */
int pci_device_add_bar(PciDevice *d, unsigned bar, uint64_t size, bool prefetch,
                       const BusDeviceOps *ops, void *opaque);
/* Appends a capability (cap[0] its id, cap[1] overwritten with the link);
 * returns its offset. -ENOSPC when config space is full. */
int pci_device_add_cap(PciDevice *d, const void *cap, uint8_t len);
/* Puts d in the first free slot and gives its BARs addresses (memory
 * decoding stays off until the guest enables it). -ENOSPC: no slot or no
 * room in the window. */
int pci_bus_add_device(PciBus *b, PciDevice *d, const PciDeviceOps *ops, void *owner);

/* Configuration access to slot/function/offset, size 1, 2 or 4, for conf1
 * and tests. Misaligned, past the end, or no device: reads all ones,
 * writes are dropped. An access the device redirects (config_to_bar) goes
 * to the BAR; a bad one reads 0 or is dropped. */
uint32_t pci_config_read(PciBus *b, unsigned slot, unsigned fn, unsigned offset, unsigned size);
void pci_config_write(PciBus *b, unsigned slot, unsigned fn, unsigned offset, unsigned size, uint32_t value);

uint64_t pci_bar_address(PciDevice *d, unsigned bar);

extern const BusDeviceOps pci_conf1_bus_ops;

#ifdef __cplusplus
}
#endif
