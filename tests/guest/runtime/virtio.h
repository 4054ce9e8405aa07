/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A minimal virtio 1.x PCI driver for the test guests: find a device,
 * map its structures from the vendor capabilities, negotiate, set up split
 * queues, route MSI-X vectors to the LAPIC. */

#include "rt.h"

static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *) (uintptr_t) a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *) (uintptr_t) a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *) (uintptr_t) a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *) (uintptr_t) a = v; }

#define VIRTIO_STATUS_ACK 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40

/* Common configuration (virtio 1.2 §4.1.4.3). */
#define VCOMMON_DFSELECT 0x00
#define VCOMMON_DF 0x04
#define VCOMMON_GFSELECT 0x08
#define VCOMMON_GF 0x0c
#define VCOMMON_MSIX 0x10
#define VCOMMON_NUMQ 0x12
#define VCOMMON_STATUS 0x14
#define VCOMMON_Q_SELECT 0x16
#define VCOMMON_Q_SIZE 0x18
#define VCOMMON_Q_MSIX 0x1a
#define VCOMMON_Q_ENABLE 0x1c
#define VCOMMON_Q_NOFF 0x1e
#define VCOMMON_Q_DESC 0x20
#define VCOMMON_Q_AVAIL 0x28
#define VCOMMON_Q_USED 0x30

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

struct vring_desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
} __attribute__((packed));

/* One queue of up to VQ_SIZE entries, laid out in guest memory. */
#define VQ_SIZE 8

struct vq {
        struct vring_desc desc[VQ_SIZE] __attribute__((aligned(16)));
        struct {
                uint16_t flags, idx, ring[VQ_SIZE], used_event;
        } avail __attribute__((aligned(2)));
        struct {
                uint16_t flags, idx;
                struct { uint32_t id, len; } ring[VQ_SIZE];
                uint16_t avail_event;
        } used __attribute__((aligned(4)));
        uint16_t index;
        uint64_t notify; /* address to write the queue index to */
};

struct virtio_dev {
        uint8_t slot;
        uint64_t bar[6];
        uint64_t common, notify, isr, device;
        uint32_t notify_mult;
        uint8_t msix_cap;
        uint64_t msix_table;
        uint8_t pci_cfg_cap;    /* VIRTIO_PCI_CAP_PCI_CFG, 0 if none */
        uint32_t common_off;    /* the common structure's offset in its BAR */
        uint8_t common_bar;
};

/* Finds 1af4:device_id on bus 0, enables memory and bus mastering, reads
 * the capabilities. */
bool virtio_probe(uint16_t device_id, struct virtio_dev *d);
/* Reset, ACK, DRIVER, features (word 1 bit 0 = VERSION_1 always added),
 * FEATURES_OK; true if the device kept FEATURES_OK. */
bool virtio_negotiate(struct virtio_dev *d, uint64_t features);
/* Programs queue index with vector; false if the queue does not exist. */
bool virtio_setup_queue(struct virtio_dev *d, struct vq *q, uint16_t index, uint16_t vector);
/* MSI-X table entry -> LAPIC vector on this CPU, unmasked; MSI-X enabled. */
void virtio_msix_route(struct virtio_dev *d, uint16_t entry, uint8_t lapic_vector);
void virtio_driver_ok(struct virtio_dev *d);
/* A len-byte (1, 2 or 4) access to bar at off through the PCI
 * configuration access capability (virtio 1.2 §4.1.4.8), as firmware
 * does before BARs are mapped. */
uint32_t virtio_pci_cfg_read(struct virtio_dev *d, uint8_t bar, uint32_t off, unsigned len);
void virtio_pci_cfg_write(struct virtio_dev *d, uint8_t bar, uint32_t off, unsigned len, uint32_t v);
/* Puts one chain on the avail ring and notifies. */
void vq_submit(struct vq *q, uint16_t head);
