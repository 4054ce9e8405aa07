/* SPDX-License-Identifier: BSD-3-Clause */
/* Intel MultiProcessor Specification 1.4 table parser. */

#include "rt.h"

struct mp_fps {
        char sig[4]; /* "_MP_" */
        uint32_t table;
        uint8_t length; /* in 16-byte units */
        uint8_t rev, checksum, features[5];
} __attribute__((packed));

struct mp_header {
        char sig[4]; /* "PCMP" */
        uint16_t length;
        uint8_t rev, checksum;
        char oem[8], product[12];
        uint32_t oem_table;
        uint16_t oem_size, count;
        uint32_t lapic;
        uint16_t ext_length;
        uint8_t ext_checksum, reserved;
} __attribute__((packed));

static uint8_t sum8(const void *p, size_t n)
{
        const uint8_t *b = p;
        uint8_t s = 0;

        while (n--)
                s += *b++;
        return s;
}

static const struct mp_fps *scan(uint64_t start, uint64_t len)
{
        for (uint64_t a = start; a + 16 <= start + len; a += 16) {
                const struct mp_fps *f = phys(a);

                if (!memcmp(f->sig, "_MP_", 4) && f->length == 1)
                        return f;
        }
        return NULL;
}

bool mptable_parse(struct mp_info *ret)
{
        uint64_t ebda = (uint64_t) *(volatile uint16_t *) phys(0x40e) << 4;
        const struct mp_fps *f = NULL;
        const struct mp_header *h;
        const uint8_t *e, *end;
        unsigned bus_isa[256 / 8] = { 0 };

        memset(ret, 0, sizeof(*ret));
        if (ebda >= 0x80000 && ebda < 0xa0000)
                f = scan(ebda, 1024);
        if (!f)
                f = scan(0x9fc00, 1024);
        if (!f)
                f = scan(0xf0000, 0x10000);
        if (!f)
                return false;

        ret->fps_addr = (uintptr_t) f;
        ret->fps_checksum_ok = sum8(f, 16) == 0;
        ret->table_addr = f->table;
        if (!f->table)
                return true; /* a default configuration: none of ours */
        h = phys(f->table);
        if (memcmp(h->sig, "PCMP", 4))
                return true;
        ret->table_checksum_ok = sum8(h, h->length) == 0;
        ret->lapic_addr = h->lapic;

        e = (const uint8_t *) (h + 1);
        end = (const uint8_t *) h + h->length;
        /* Walk by length, as Linux does: some firmware (qboot) leaves the
         * entry count at 0. */
        while (e < end) {
                switch (e[0]) {
                case 0: /* processor */
                        if ((e[3] & 1) && ret->cpu_count < MP_MAX_CPUS)
                                ret->cpu_apic_ids[ret->cpu_count++] = e[1];
                        if (e[3] & 2)
                                ret->bsp_apic_id = e[1];
                        e += 20;
                        break;
                case 1: /* bus */
                        if (!memcmp(e + 2, "ISA   ", 6))
                                bus_isa[e[1] / 8] |= 1u << (e[1] % 8);
                        e += 8;
                        break;
                case 2: /* I/O APIC */
                        if (e[3] & 1) {
                                if (!ret->ioapic_count) {
                                        ret->ioapic_id = e[1];
                                        memcpy(&ret->ioapic_addr, e + 4, 4);
                                }
                                ret->ioapic_count++;
                        }
                        e += 8;
                        break;
                case 3: /* I/O interrupt assignment */
                        if (ret->irq_count < MP_MAX_IRQS) {
                                struct mp_irq *q = &ret->irqs[ret->irq_count++];

                                q->type = e[1];
                                memcpy(&q->flags, e + 2, 2);
                                q->src_bus = e[4];
                                q->src_irq = e[5];
                                q->dst_apic = e[6];
                                q->dst_pin = e[7];
                        }
                        e += 8;
                        break;
                case 4: /* local interrupt assignment */
                        e += 8;
                        break;
                default:
                        e = end; /* unknown entry: its size is unknown too */
                        break;
                }
        }
        for (unsigned i = 0; i < ret->irq_count; i++)
                ret->irqs[i].src_is_isa = bus_isa[ret->irqs[i].src_bus / 8] & (1u << (ret->irqs[i].src_bus % 8));
        return true;
}

unsigned mptable_isa_pin(const struct mp_info *mp, unsigned isa_irq)
{
        for (unsigned i = 0; mp && i < mp->irq_count; i++)
                if (mp->irqs[i].type == 0 && mp->irqs[i].src_is_isa && mp->irqs[i].src_irq == isa_irq)
                        return mp->irqs[i].dst_pin;
        return isa_irq == 0 ? 2 : isa_irq;
}
