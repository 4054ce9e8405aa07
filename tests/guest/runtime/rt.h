/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The runtime of the freestanding test guests: everything a guest needs to
 * talk to the machine (serial, interrupts, timers, MP table, PCI) and to
 * report a verdict. See tests/guest/README.md for the boot contract. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t) (a) - 1))

/* Ports and addresses; the same values as vmm/layout.h (a contract). */
#define PORT_PIT_CH0 0x40
#define PORT_PIT_CH2 0x42
#define PORT_PIT_CMD 0x43
#define PORT_I8042_CMD 0x64
#define PORT_RTC_INDEX 0x70
#define PORT_RTC_DATA 0x71
#define PORT_DEBUG_EXIT 0xf4
#define PORT_COM1 0x3f8
#define PORT_PCI_ADDR 0xcf8
#define PORT_PCI_DATA 0xcfc
#define COM1_IRQ 4
#define LAPIC_BASE 0xfee00000ull
#define IOAPIC_BASE 0xfec00000ull
#define PIT_HZ 1193182u

/* Selectors of the flat GDT (same layout as the VMM's at 0x500). */
#define SEL_CODE64 0x10
#define SEL_DATA 0x18

/* ---- port I/O and CPU helpers ---- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
/* sti takes effect after the next instruction, so no interrupt is lost
 * between the check and the halt. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

static inline uint64_t rdtsc(void)
{
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t) hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
        __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }

/* A pointer to a guest-physical address (identity mapped). Laundered
 * through asm so the compiler does not reason about constant low addresses
 * (GCC 12 calls any of them out of bounds). */
static inline void *phys(uint64_t addr)
{
        void *p = (void *) (uintptr_t) addr;

        __asm__("" : "+r"(p));
        return p;
}

static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t *) (uintptr_t) addr; }
static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *) (uintptr_t) addr = v; }

/* ---- libc bits (lib.c) ---- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
/* Parses an unsigned number (decimal or 0x hex) with an optional K/M/G
 * suffix; returns the character after it, or NULL if there is no digit. */
const char *parse_u64(const char *s, uint64_t *ret);
/* Finds "key=" as a whole word in a cmdline and returns its value (up to the
 * next space, not terminated), or NULL. */
const char *cmdline_get(const char *cmdline, const char *key);

/* ---- console (console.c) ---- */

void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
int vprintf(const char *fmt, va_list ap);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- verdicts ---- */

/* Exits the VMM (--debug-exit) with code v. Never returns: if the port does
 * nothing, the CPU halts with interrupts off. */
void __attribute__((noreturn)) debug_exit(uint8_t v);
/* Prints a "TEST name PASS|FAIL detail" line and records failures. */
void test_report(const char *name, bool pass, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Exits 0 if every reported test passed and at least one was reported. */
void __attribute__((noreturn)) test_finish(void);

/* ---- boot information (boot.c) ---- */

#define E820_RAM 1
#define E820_MAX 128

struct e820_entry {
        uint64_t addr;
        uint64_t size;
        uint32_t type;
} __attribute__((packed));

/* What the loader told us, from the Linux zero page (our VMM) or from the
 * PVH start_info (QEMU). */
struct boot_info {
        const char *source; /* "boot_params", "pvh" or "none" */
        const void *boot_params;
        const char *cmdline; /* "" when there is none */
        uint64_t cmdline_size; /* hdr.cmdline_size: the loader's cap, 0 if unknown */
        uint64_t initrd_addr;
        uint64_t initrd_size;
        unsigned e820_count;
        struct e820_entry e820[E820_MAX];
};

extern struct boot_info boot_info;
extern char __image_start[], __image_end[];

/* ---- interrupts (idt.c) ---- */

struct irq_frame {
        uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
        uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
        uint64_t vector, error;
        uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*irq_handler_t)(struct irq_frame *f);
void idt_init(void);
void idt_load(void); /* for APs: load the shared IDT */
void irq_set_handler(uint8_t vector, irq_handler_t h);

/* ---- LAPIC / IOAPIC / PIC / PIT / timing (apic.c) ---- */

#define LAPIC_ID 0x20
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LAPIC_TIMER_PERIODIC (1u << 17)
#define LAPIC_MASKED (1u << 16)
#define VECTOR_SPURIOUS 0xff

static inline uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
static inline uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

/* Masks the 8259s and LINT0, enables the LAPIC (software enable, spurious
 * vector 0xff). */
void lapic_init(void);
/* Starts the LAPIC timer (divide by 16); periodic if asked. */
void lapic_timer_start(uint8_t vector, uint32_t count, bool periodic);
void lapic_timer_stop(void);
/* Sends an IPI; waits (bounded) for the delivery status to clear. Returns
 * false if it never did. */
bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo);

uint32_t ioapic_read(uint32_t reg);
void ioapic_write(uint32_t reg, uint32_t v);
/* Routes an IOAPIC pin to a vector on the given LAPIC, edge/high (ISA). */
void ioapic_route(unsigned pin, uint8_t vector, uint8_t apic_id);
void ioapic_mask(unsigned pin);
unsigned ioapic_pin_count(void);

/* Programs PIT channel 0 (mode 2 = rate generator, mode 0 = one shot). */
void pit_start(uint8_t mode, uint16_t count);
uint16_t pit_read_ch0(void);

/* Timing: TSC and LAPIC timer rates measured against the PIT. Before (or if)
 * calibration fails, tsc_khz assumes 5 GHz so that timeouts computed with it
 * are long rather than short. */
extern uint64_t tsc_khz;
extern uint64_t lapic_timer_khz; /* ticks per ms at divide-by-16; 0 unknown */
/* Returns true when the PIT counted and the rates are measured. */
bool timer_calibrate(void);
void udelay(uint64_t us);
/* A deadline in TSC cycles, ms from now. */
static inline uint64_t deadline_ms(uint64_t ms) { return rdtsc() + ms * tsc_khz; }
static inline bool expired(uint64_t deadline) { return (int64_t) (rdtsc() - deadline) >= 0; }

/* ---- MP table (mptable.c) ---- */

#define MP_MAX_CPUS 64
#define MP_MAX_IRQS 64

struct mp_irq {
        uint8_t type; /* 0 INT, 1 NMI, 2 SMI, 3 ExtINT */
        uint16_t flags;
        uint8_t src_bus, src_irq, dst_apic, dst_pin;
        bool src_is_isa;
};

struct mp_info {
        uint64_t fps_addr; /* 0 when no MP table was found */
        uint64_t table_addr;
        bool fps_checksum_ok, table_checksum_ok;
        unsigned cpu_count; /* enabled processors */
        uint8_t cpu_apic_ids[MP_MAX_CPUS];
        uint8_t bsp_apic_id;
        unsigned ioapic_count;
        uint8_t ioapic_id;
        uint32_t ioapic_addr;
        unsigned irq_count;
        struct mp_irq irqs[MP_MAX_IRQS];
        uint32_t lapic_addr;
};

/* Finds and parses the MP table (EBDA, last KiB of base memory, BIOS ROM).
 * Returns false if no floating pointer was found. */
bool mptable_parse(struct mp_info *ret);
/* The IOAPIC pin an ISA IRQ is wired to, from the MP table's I/O interrupt
 * entries, or the PC default (IRQ0 -> pin 2, others identity). */
unsigned mptable_isa_pin(const struct mp_info *mp, unsigned isa_irq);

/* ---- PCI configuration mechanism #1 (pci.c) ---- */

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);
uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v);
/* Finds the first function with this vendor/device id on bus 0. */
bool pci_find(uint16_t vendor, uint16_t device, uint8_t *ret_dev, uint8_t *ret_fn);
/* Walks the capability list; returns the offset of capability id, or 0. */
uint8_t pci_find_cap(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t cap_id);

/* ---- the guest's own code ---- */

/* Called on the boot CPU with a stack, BSS cleared, the runtime's GDT and IDT
 * loaded, boot_info filled and the serial port initialised. */
int main(void);

/* Waits until cond() or timeout_ms. With halt (and a calibrated LAPIC
 * timer), the CPU halts between checks, woken by a 1 ms LAPIC tick, so
 * other vCPUs get the host; interrupts are left disabled on return.
 * Otherwise it spins. Returns cond()'s last value. */
bool wait_for(bool (*cond)(void), uint64_t timeout_ms, bool halt);
