/* SPDX-License-Identifier: BSD-3-Clause */
/* Interrupt delivery: PIT through the IOAPIC, the LAPIC timer, and COM1's
 * transmit interrupt through the IOAPIC. Every wait is bounded. */

#include "rt.h"

#define VEC_PIT 0x30
#define VEC_LAPIC 0x31
#define VEC_COM1 0x32
#define PIT_TICKS 5
#define TIMEOUT_MS 1000

static volatile unsigned pit_count, lapic_count, com1_count;
static volatile uint64_t pit_first_tsc, pit_last_tsc, lapic_tsc;
static volatile uint8_t com1_iir;

static void pit_handler(struct irq_frame *f)
{
        uint64_t t = rdtsc();

        if (pit_count++ == 0)
                pit_first_tsc = t;
        pit_last_tsc = t;
        lapic_eoi();
}

static void lapic_handler(struct irq_frame *f)
{
        lapic_tsc = rdtsc();
        lapic_count++;
        lapic_eoi();
}

static void com1_handler(struct irq_frame *f)
{
        /* Reading IIR acknowledges THRE; then stop further interrupts. */
        com1_iir = inb(PORT_COM1 + 2);
        outb(PORT_COM1 + 1, 0);
        com1_count++;
        lapic_eoi();
}

static bool pit_done(void) { return pit_count >= PIT_TICKS; }
static bool lapic_done(void) { return lapic_count > 0; }
static bool com1_done(void) { return com1_count > 0; }

static void test_pit(const struct mp_info *mp)
{
        unsigned pin = mptable_isa_pin(mp, 0);
        uint64_t per_tick_us;
        bool ok;

        irq_set_handler(VEC_PIT, pit_handler);
        ioapic_route(pin, VEC_PIT, lapic_id());
        pit_start(2, PIT_HZ / 100); /* 10 ms */
        sti();
        ok = wait_for(pit_done, TIMEOUT_MS, false);
        cli();
        outb(PORT_PIT_CMD, 0x30); /* stop: mode 0, no count */
        ioapic_mask(pin);
        if (!ok) {
                test_report("irq-pit-ioapic", false, "%u of %u ticks on IOAPIC pin %u in %u ms",
                            pit_count, PIT_TICKS, pin, TIMEOUT_MS);
                return;
        }
        per_tick_us = (pit_last_tsc - pit_first_tsc) * 1000 / tsc_khz / (PIT_TICKS - 1);
        /* Loose bounds: emulation delays ticks and KVM may reinject late
         * ones back to back, but 10 ms ticks cannot average under 1 ms. */
        test_report("irq-pit-ioapic", per_tick_us >= 1000, "%u ticks on IOAPIC pin %u, %lu us apart (10000 programmed)",
                    PIT_TICKS, pin, per_tick_us);
}

static void test_lapic_timer(void)
{
        uint64_t start, elapsed_us;
        uint32_t count;
        bool ok;

        if (!lapic_timer_khz) {
                test_report("irq-lapic-timer", false, "LAPIC timer rate unknown (calibration failed)");
                return;
        }
        count = lapic_timer_khz * 10; /* 10 ms */
        irq_set_handler(VEC_LAPIC, lapic_handler);
        start = rdtsc();
        lapic_timer_start(VEC_LAPIC, count, false);
        sti();
        ok = wait_for(lapic_done, TIMEOUT_MS, false);
        /* One shot means one: give a second one 30 ms to show up. */
        if (ok)
                udelay(30000);
        cli();
        lapic_timer_stop();
        if (!ok) {
                test_report("irq-lapic-timer", false, "no interrupt in %u ms (count %u)", TIMEOUT_MS, count);
                return;
        }
        elapsed_us = (lapic_tsc - start) * 1000 / tsc_khz;
        test_report("irq-lapic-timer", lapic_count == 1 && elapsed_us >= 5000,
                    "%u interrupt(s), first after %lu us (10000 programmed)", lapic_count, elapsed_us);
}

static void test_com1(const struct mp_info *mp)
{
        unsigned pin = mptable_isa_pin(mp, COM1_IRQ);
        bool ok;

        irq_set_handler(VEC_COM1, com1_handler);
        ioapic_route(pin, VEC_COM1, lapic_id());
        outb(PORT_COM1 + 4, 0x0b); /* DTR, RTS, OUT2 (the PC's IRQ gate) */
        outb(PORT_COM1 + 1, 0x02); /* THR empty interrupt */
        sti();
        ok = wait_for(com1_done, TIMEOUT_MS, false);
        cli();
        outb(PORT_COM1 + 1, 0);
        ioapic_mask(pin);
        if (!ok) {
                test_report("irq-com1-ioapic", false, "no THRE interrupt on IOAPIC pin %u in %u ms", pin, TIMEOUT_MS);
                return;
        }
        test_report("irq-com1-ioapic", (com1_iir & 0x0f) == 0x02, "IRQ%u on IOAPIC pin %u, IIR 0x%x",
                    COM1_IRQ, pin, com1_iir);
}

int main(void)
{
        struct mp_info mp;
        bool have_mp = mptable_parse(&mp);
        bool cal;

        lapic_init();
        cal = timer_calibrate();
        test_report("irq-calibrate", cal, "tsc %lu kHz, lapic timer %lu kHz (div 16), MP table %s",
                    tsc_khz, lapic_timer_khz, have_mp ? "found" : "absent: default ISA routing");
        test_pit(have_mp ? &mp : NULL);
        test_lapic_timer();
        test_com1(have_mp ? &mp : NULL);
        return 0;
}
