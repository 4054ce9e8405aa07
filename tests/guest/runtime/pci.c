/* SPDX-License-Identifier: BSD-3-Clause */
/* PCI configuration mechanism #1 (ports 0xcf8/0xcfc). */

#include "rt.h"

static uint32_t addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
        return 0x80000000u | (uint32_t) bus << 16 | (uint32_t) (dev & 31) << 11 |
               (uint32_t) (fn & 7) << 8 | (off & 0xfc);
}

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
        outl(PORT_PCI_ADDR, addr(bus, dev, fn, off));
        return inl(PORT_PCI_DATA);
}

void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v)
{
        outl(PORT_PCI_ADDR, addr(bus, dev, fn, off));
        outl(PORT_PCI_DATA, v);
}

uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
        outl(PORT_PCI_ADDR, addr(bus, dev, fn, off));
        return inw(PORT_PCI_DATA + (off & 2));
}

void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v)
{
        outl(PORT_PCI_ADDR, addr(bus, dev, fn, off));
        outw(PORT_PCI_DATA + (off & 2), v);
}

uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
        outl(PORT_PCI_ADDR, addr(bus, dev, fn, off));
        return inb(PORT_PCI_DATA + (off & 3));
}

bool pci_find(uint16_t vendor, uint16_t device, uint8_t *ret_dev, uint8_t *ret_fn)
{
        for (uint8_t dev = 0; dev < 32; dev++) {
                for (uint8_t fn = 0; fn < 8; fn++) {
                        uint32_t id = pci_read32(0, dev, fn, 0);

                        if ((id & 0xffff) == 0xffff) {
                                if (fn == 0)
                                        break;
                                continue;
                        }
                        if ((id & 0xffff) == vendor && (id >> 16) == device) {
                                *ret_dev = dev;
                                *ret_fn = fn;
                                return true;
                        }
                        /* Single-function device: skip functions 1-7. */
                        if (fn == 0 && !(pci_read8(0, dev, 0, 0x0e) & 0x80))
                                break;
                }
        }
        return false;
}

uint8_t pci_find_cap(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t cap_id)
{
        uint8_t off;

        if (!(pci_read16(bus, dev, fn, 0x06) & 0x10))
                return 0;
        off = pci_read8(bus, dev, fn, 0x34) & 0xfc;
        for (unsigned n = 0; off && n < 48; n++) {
                if (pci_read8(bus, dev, fn, off) == cap_id)
                        return off;
                off = pci_read8(bus, dev, fn, off + 1) & 0xfc;
        }
        return 0;
}
