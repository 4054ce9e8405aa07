/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/layout.h"
#include "vmm/boot/mptable.h"

/* Structures of the MP spec 1.4, chapter 4 (Linux: asm/mpspec_def.h). */
struct mpf_intel {
        char signature[4];              /* "_MP_" */
        uint32_t physptr;               /* the configuration table */
        uint8_t length;                 /* in 16-byte units: 1 */
        uint8_t specification;          /* 4 = version 1.4 */
        uint8_t checksum;
        uint8_t feature1;               /* 0: a configuration table is present */
        uint8_t feature2;               /* bit 7 clear: virtual wire mode, no IMCR */
        uint8_t feature3, feature4, feature5;
} __attribute__((packed));

struct mpc_table {
        char signature[4];              /* "PCMP" */
        uint16_t length;                /* header plus entries */
        uint8_t spec;
        uint8_t checksum;
        char oem[8];
        char productid[12];
        uint32_t oemptr;
        uint16_t oemsize;
        uint16_t oemcount;              /* number of entries */
        uint32_t lapic;
        uint16_t reserved;              /* extended table length */
        uint8_t ext_checksum;
        uint8_t reserved2;
} __attribute__((packed));

struct mpc_cpu {
        uint8_t type, apicid, apicver, cpuflag;
        uint32_t cpufeature;            /* CPUID(1).EAX signature */
        uint32_t featureflag;           /* CPUID(1).EDX */
        uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
        uint8_t type, busid;
        char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
        uint8_t type, apicid, apicver, flags;
        uint32_t apicaddr;
} __attribute__((packed));

/* I/O and local interrupt assignment entries share one layout. */
struct mpc_intsrc {
        uint8_t type, irqtype;
        uint16_t irqflag;               /* 0: polarity and trigger conform to the bus */
        uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };

#define CPU_ENABLED 0x01
#define CPU_BOOTPROCESSOR 0x02
#define MPC_APIC_USABLE 0x01
#define LAPIC_VERSION 0x14
#define IOAPIC_VERSION 0x11
/* Family 6 and FPU + APIC in EDX; Linux takes the real values from CPUID. */
#define CPU_SIGNATURE 0x600
#define CPU_FEATURES 0x201
#define ISA_BUS 0
#define ISA_IRQS 16
/* The ISA IRQs with an I/O interrupt entry: all but 2, the PIC cascade,
 * whose IOAPIC pin carries IRQ0 (below). */
#define N_INTSRC (ISA_IRQS - 1)
#define N_LINTSRC 2

size_t mptable_size(unsigned n_cpus) {
        return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
                (size_t) n_cpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
                sizeof(struct mpc_ioapic) + (N_INTSRC + N_LINTSRC) * sizeof(struct mpc_intsrc);
}

unsigned mptable_max_cpus(void) {
        size_t fixed = mptable_size(0);

        return (unsigned) MIN((MPTABLE_SPACE - fixed) / sizeof(struct mpc_cpu), (size_t) BOOT_MAX_CPUS);
}

static uint8_t checksum(const void *p, size_t n) {
        const uint8_t *b = p;
        uint8_t sum = 0;

        while (n-- > 0)
                sum += *b++;
        return (uint8_t) -sum;
}

int mptable_write(GuestMemory *m, unsigned n_cpus) {
        uint8_t buf[MPTABLE_SPACE] = {};
        struct mpf_intel mpf = {};
        struct mpc_table mpc = {};
        uint8_t ioapic_id = (uint8_t) n_cpus;
        uint16_t ebda_segment = LAYOUT_EBDA >> 4, base_kib = LAYOUT_EBDA / KiB;
        size_t pos = sizeof(mpf) + sizeof(mpc);
        unsigned count = 0;
        int r;

        if (n_cpus == 0)
                return -EINVAL;
        if (n_cpus > mptable_max_cpus())
                return -E2BIG;

/* Appends one entry to buf; sizes were checked above through mptable_size(). */
#define APPEND(entry)                                                   \
        do {                                                            \
                memcpy(buf + pos, &(entry), sizeof(entry));             \
                pos += sizeof(entry);                                   \
                count++;                                                \
        } while (0)

        for (unsigned i = 0; i < n_cpus; i++) {
                struct mpc_cpu cpu = {
                        .type = MP_PROCESSOR,
                        .apicid = (uint8_t) i,
                        .apicver = LAPIC_VERSION,
                        .cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0),
                        .cpufeature = CPU_SIGNATURE,
                        .featureflag = CPU_FEATURES,
                };
                APPEND(cpu);
        }

        struct mpc_bus bus = { .type = MP_BUS, .busid = ISA_BUS, .bustype = { 'I', 'S', 'A', ' ', ' ', ' ' } };
        APPEND(bus);

        struct mpc_ioapic ioapic = {
                .type = MP_IOAPIC,
                .apicid = ioapic_id,
                .apicver = IOAPIC_VERSION,
                .flags = MPC_APIC_USABLE,
                .apicaddr = (uint32_t) LAYOUT_IOAPIC,
        };
        APPEND(ioapic);

        for (unsigned irq = 0; irq < ISA_IRQS; irq++) {
                /* KVM's irqchip routes the PIT (IRQ0) to IOAPIC pin 2, like
                 * PC firmware's interrupt source override. */
                if (irq == 2)
                        continue;
                struct mpc_intsrc src = {
                        .type = MP_INTSRC,
                        .irqtype = MP_INT,
                        .srcbus = ISA_BUS,
                        .srcbusirq = (uint8_t) irq,
                        .dstapic = ioapic_id,
                        .dstirq = (uint8_t) (irq == 0 ? 2 : irq),
                };
                APPEND(src);
        }

        /* The 8259 on LINT0 (virtual wire), NMI on LINT1, on every LAPIC. */
        struct mpc_intsrc lint0 = { .type = MP_LINTSRC, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0 };
        struct mpc_intsrc lint1 = { .type = MP_LINTSRC, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1 };
        APPEND(lint0);
        APPEND(lint1);
#undef APPEND

        memcpy(mpc.signature, "PCMP", 4);
        mpc.length = (uint16_t) (pos - sizeof(mpf));
        mpc.spec = 4;
        memcpy(mpc.oem, "MAJORDOM", 8);
        memcpy(mpc.productid, "MAJORDOMEVMM", 12);
        mpc.oemcount = (uint16_t) count;
        mpc.lapic = (uint32_t) LAYOUT_LAPIC;
        memcpy(buf + sizeof(mpf), &mpc, sizeof(mpc));
        buf[sizeof(mpf) + offsetof(struct mpc_table, checksum)] = checksum(buf + sizeof(mpf), mpc.length);

        memcpy(mpf.signature, "_MP_", 4);
        mpf.physptr = LAYOUT_MPTABLE + sizeof(mpf);
        mpf.length = 1;
        mpf.specification = 4;
        mpf.checksum = checksum(&mpf, sizeof(mpf));
        memcpy(buf, &mpf, sizeof(mpf));

        r = guest_write(m, LAYOUT_MPTABLE, buf, pos);
        if (r < 0)
                return r;

        /* BIOS data area: the EBDA segment at 0x40e, where Linux's
         * get_bios_ebda() and MP scan look, and base memory in KiB at 0x413,
         * which reserve_bios_regions() trusts. */
        r = guest_write(m, 0x40e, &ebda_segment, sizeof(ebda_segment));
        if (r < 0)
                return r;
        return guest_write(m, 0x413, &base_kib, sizeof(base_kib));
}
