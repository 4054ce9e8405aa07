/* SPDX-License-Identifier: BSD-3-Clause */
#include "virtio.h"

static uint64_t bar_address(uint8_t slot, unsigned i)
{
        uint32_t lo = pci_read32(0, slot, 0, 0x10 + 4 * i);
        uint64_t a = lo & ~0xfu;

        if ((lo & 0x6) == 0x4)
                a |= (uint64_t) pci_read32(0, slot, 0, 0x10 + 4 * (i + 1)) << 32;
        return a;
}

bool virtio_probe(uint16_t device_id, struct virtio_dev *d)
{
        uint8_t dev, fn, off;

        memset(d, 0, sizeof(*d));
        if (!pci_find(0x1af4, device_id, &dev, &fn))
                return false;
        d->slot = dev;
        for (unsigned i = 0; i < 6; i++)
                d->bar[i] = bar_address(dev, i);
        /* Memory space and bus master. */
        pci_write16(0, dev, 0, 0x04, pci_read16(0, dev, 0, 0x04) | 0x6);

        off = pci_read8(0, dev, 0, 0x34) & 0xfc;
        for (unsigned n = 0; off && n < 48; n++) {
                uint8_t id = pci_read8(0, dev, 0, off);
                if (id == 0x09) {
                        /* virtio 1.2 §4.1.4: type, bar, offset. */
                        uint8_t type = pci_read8(0, dev, 0, off + 3);
                        uint8_t bar = pci_read8(0, dev, 0, off + 4);
                        uint64_t addr = bar < 6 ? d->bar[bar] + pci_read32(0, dev, 0, off + 8) : 0;
                        if (type == 1) {
                                d->common = addr;
                                d->common_bar = bar;
                                d->common_off = pci_read32(0, dev, 0, off + 8);
                        } else if (type == 2) {
                                d->notify = addr;
                                d->notify_mult = pci_read32(0, dev, 0, off + 16);
                        } else if (type == 3)
                                d->isr = addr;
                        else if (type == 4)
                                d->device = addr;
                        else if (type == 5)
                                d->pci_cfg_cap = off;
                } else if (id == 0x11) {
                        uint32_t t = pci_read32(0, dev, 0, off + 4);
                        d->msix_cap = off;
                        d->msix_table = d->bar[t & 7] + (t & ~7u);
                }
                off = pci_read8(0, dev, 0, off + 1) & 0xfc;
        }
        return d->common && d->notify;
}

bool virtio_negotiate(struct virtio_dev *d, uint64_t features)
{
        uint64_t c = d->common;

        features |= 1ull << 32;
        mmio_write8(c + VCOMMON_STATUS, 0);
        mmio_write8(c + VCOMMON_STATUS, VIRTIO_STATUS_ACK);
        mmio_write8(c + VCOMMON_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
        for (uint32_t w = 0; w < 2; w++) {
                mmio_write32(c + VCOMMON_GFSELECT, w);
                mmio_write32(c + VCOMMON_GF, (uint32_t) (features >> (32 * w)));
        }
        mmio_write8(c + VCOMMON_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
        return mmio_read8(c + VCOMMON_STATUS) & VIRTIO_STATUS_FEATURES_OK;
}

bool virtio_setup_queue(struct virtio_dev *d, struct vq *q, uint16_t index, uint16_t vector)
{
        uint64_t c = d->common;

        memset(q, 0, sizeof(*q));
        mmio_write16(c + VCOMMON_Q_SELECT, index);
        if (mmio_read16(c + VCOMMON_Q_SIZE) < VQ_SIZE)
                return false;
        mmio_write16(c + VCOMMON_Q_SIZE, VQ_SIZE);
        mmio_write16(c + VCOMMON_Q_MSIX, vector);
        if (mmio_read16(c + VCOMMON_Q_MSIX) != vector)
                return false;
        mmio_write32(c + VCOMMON_Q_DESC, (uint32_t) (uintptr_t) q->desc);
        mmio_write32(c + VCOMMON_Q_DESC + 4, 0);
        mmio_write32(c + VCOMMON_Q_AVAIL, (uint32_t) (uintptr_t) &q->avail);
        mmio_write32(c + VCOMMON_Q_AVAIL + 4, 0);
        mmio_write32(c + VCOMMON_Q_USED, (uint32_t) (uintptr_t) &q->used);
        mmio_write32(c + VCOMMON_Q_USED + 4, 0);
        q->index = index;
        q->notify = d->notify + (uint64_t) mmio_read16(c + VCOMMON_Q_NOFF) * d->notify_mult;
        mmio_write16(c + VCOMMON_Q_ENABLE, 1);
        return mmio_read16(c + VCOMMON_Q_ENABLE) == 1;
}

void virtio_msix_route(struct virtio_dev *d, uint16_t entry, uint8_t lapic_vector)
{
        uint64_t e = d->msix_table + 16 * (uint64_t) entry;

        /* PCI 3.0 §6.8.2: message address to this CPU's LAPIC, data the vector. */
        mmio_write32(e, (uint32_t) LAPIC_BASE | (lapic_id() << 12));
        mmio_write32(e + 4, 0);
        mmio_write32(e + 8, lapic_vector);
        mmio_write32(e + 12, 0);
        pci_write16(0, d->slot, 0, d->msix_cap + 2, 0x8000);
}

void virtio_driver_ok(struct virtio_dev *d)
{
        mmio_write8(d->common + VCOMMON_STATUS, mmio_read8(d->common + VCOMMON_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* cap.bar is the capability's byte 4 (id and padding after it are
 * read-only), cap.offset byte 8, cap.length byte 12, pci_cfg_data 16. */
static void pci_cfg_window(struct virtio_dev *d, uint8_t bar, uint32_t off, unsigned len)
{
        pci_write32(0, d->slot, 0, d->pci_cfg_cap + 4, bar);
        pci_write32(0, d->slot, 0, d->pci_cfg_cap + 8, off);
        pci_write32(0, d->slot, 0, d->pci_cfg_cap + 12, len);
}

uint32_t virtio_pci_cfg_read(struct virtio_dev *d, uint8_t bar, uint32_t off, unsigned len)
{
        uint8_t data = d->pci_cfg_cap + 16;

        pci_cfg_window(d, bar, off, len);
        if (len == 1)
                return pci_read8(0, d->slot, 0, data);
        if (len == 2)
                return pci_read16(0, d->slot, 0, data);
        return pci_read32(0, d->slot, 0, data);
}

void virtio_pci_cfg_write(struct virtio_dev *d, uint8_t bar, uint32_t off, unsigned len, uint32_t v)
{
        uint8_t data = d->pci_cfg_cap + 16;

        pci_cfg_window(d, bar, off, len);
        if (len == 2)
                pci_write16(0, d->slot, 0, data, (uint16_t) v);
        else
                pci_write32(0, d->slot, 0, data, v);
}

void vq_submit(struct vq *q, uint16_t head)
{
        q->avail.ring[q->avail.idx % VQ_SIZE] = head;
        /* x86 keeps stores in order; the compiler must too. */
        barrier();
        q->avail.idx++;
        barrier();
        mmio_write16(q->notify, q->index);
}
