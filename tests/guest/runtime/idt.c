/* SPDX-License-Identifier: BSD-3-Clause */
/* A 256-entry IDT; exceptions end the test run with a FAIL line. */

#include "rt.h"

struct idt_gate {
        uint16_t off_lo, sel;
        uint8_t ist, type;
        uint16_t off_mid;
        uint32_t off_hi, zero;
} __attribute__((packed));

extern char isr_stubs[]; /* 256 stubs, 16 bytes apart (start.S) */

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];
static struct {
        uint16_t limit;
        uint64_t base;
} __attribute__((packed)) idt_ptr;

static const char *const exception_names[32] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
        "#SS", "#GP", "#PF", "15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void idt_init(void)
{
        for (unsigned v = 0; v < 256; v++) {
                uint64_t a = (uintptr_t) isr_stubs + v * 16;

                idt[v] = (struct idt_gate) {
                        .off_lo = a & 0xffff,
                        .sel = SEL_CODE64,
                        .type = 0x8e, /* present, DPL 0, interrupt gate */
                        .off_mid = (a >> 16) & 0xffff,
                        .off_hi = a >> 32,
                };
        }
        idt_ptr.limit = sizeof(idt) - 1;
        idt_ptr.base = (uintptr_t) idt;
        idt_load();
}

void idt_load(void)
{
        __asm__ volatile("lidt %0" : : "m"(idt_ptr));
}

void irq_set_handler(uint8_t vector, irq_handler_t h)
{
        __atomic_store_n(&handlers[vector], h, __ATOMIC_RELEASE);
}

void irq_dispatch(struct irq_frame *f);
void irq_dispatch(struct irq_frame *f)
{
        irq_handler_t h = __atomic_load_n(&handlers[f->vector], __ATOMIC_ACQUIRE);
        uint64_t cr2;

        if (h) {
                h(f);
                return;
        }
        if (f->vector < 32) {
                const char *name = exception_names[f->vector];

                __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
                test_report("exception", false, "vector=%lu (%s) error=0x%lx rip=0x%lx cr2=0x%lx rsp=0x%lx",
                            f->vector, name ? name : "?", f->error, f->rip, cr2, f->rsp);
                debug_exit(1);
        }
        if (f->vector == VECTOR_SPURIOUS)
                return; /* no EOI for the spurious vector */
        test_report("unexpected-interrupt", false, "vector=%lu rip=0x%lx", f->vector, f->rip);
        lapic_eoi();
}
