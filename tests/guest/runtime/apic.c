/* SPDX-License-Identifier: BSD-3-Clause */
/* LAPIC (xAPIC MMIO), IOAPIC, 8259 masking, PIT and time keeping. */

#include "rt.h"

#define VECTOR_TICK 0xf0

uint64_t tsc_khz = 5000000; /* until calibrated: long timeouts, not short */
uint64_t lapic_timer_khz;

void lapic_init(void)
{
        /* The 8259s would also see ISA IRQs; mask them (OCW1 works without
         * initialisation), and their LINT0 path with them. */
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
        lapic_write(LAPIC_SVR, 0x100 | VECTOR_SPURIOUS);
        lapic_write(LAPIC_LVT_LINT0, LAPIC_MASKED);
        lapic_write(LAPIC_LVT_ERROR, LAPIC_MASKED);
        lapic_write(LAPIC_TIMER_DIV, 0x3); /* divide by 16 */
}

void lapic_timer_start(uint8_t vector, uint32_t count, bool periodic)
{
        lapic_write(LAPIC_TIMER_DIV, 0x3);
        lapic_write(LAPIC_LVT_TIMER, vector | (periodic ? LAPIC_TIMER_PERIODIC : 0));
        lapic_write(LAPIC_TIMER_INIT, count);
}

void lapic_timer_stop(void)
{
        lapic_write(LAPIC_LVT_TIMER, LAPIC_MASKED);
        lapic_write(LAPIC_TIMER_INIT, 0);
}

bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo)
{
        lapic_write(LAPIC_ICR_HI, apic_id << 24);
        lapic_write(LAPIC_ICR_LO, icr_lo);
        for (unsigned i = 0; i < 1000; i++)
                if (!(lapic_read(LAPIC_ICR_LO) & (1u << 12)))
                        return true;
        return false;
}

uint32_t ioapic_read(uint32_t reg)
{
        mmio_write32(IOAPIC_BASE, reg);
        return mmio_read32(IOAPIC_BASE + 0x10);
}

void ioapic_write(uint32_t reg, uint32_t v)
{
        mmio_write32(IOAPIC_BASE, reg);
        mmio_write32(IOAPIC_BASE + 0x10, v);
}

unsigned ioapic_pin_count(void)
{
        return ((ioapic_read(1) >> 16) & 0xff) + 1;
}

void ioapic_route(unsigned pin, uint8_t vector, uint8_t apic_id)
{
        /* Fixed delivery, physical destination, active high, edge: ISA. */
        ioapic_write(0x11 + 2 * pin, (uint32_t) apic_id << 24);
        ioapic_write(0x10 + 2 * pin, vector);
}

void ioapic_mask(unsigned pin)
{
        ioapic_write(0x10 + 2 * pin, 1u << 16);
}

void pit_start(uint8_t mode, uint16_t count)
{
        outb(PORT_PIT_CMD, 0x30 | (mode << 1)); /* channel 0, lo/hi byte */
        outb(PORT_PIT_CH0, count & 0xff);
        outb(PORT_PIT_CH0, count >> 8);
}

uint16_t pit_read_ch0(void)
{
        uint8_t lo, hi;

        outb(PORT_PIT_CMD, 0x00); /* latch channel 0 */
        lo = inb(PORT_PIT_CH0);
        hi = inb(PORT_PIT_CH0);
        return lo | (uint16_t) hi << 8;
}

bool timer_calibrate(void)
{
        /* 10 ms of PIT counting (mode 2, reload 65536) measured with the TSC
         * and a free-running, masked LAPIC timer. Reading the counter costs
         * three port exits, so it is read often enough not to miss a wrap. */
        const uint32_t target = PIT_HZ / 100;
        uint64_t t0, t1, limit;
        uint32_t elapsed = 0, l0, l1;
        uint16_t prev, cur;
        unsigned i;

        lapic_write(LAPIC_TIMER_DIV, 0x3);
        lapic_write(LAPIC_LVT_TIMER, LAPIC_MASKED);
        lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
        pit_start(2, 0);
        prev = pit_read_ch0();
        t0 = rdtsc();
        l0 = lapic_read(LAPIC_TIMER_CUR);
        limit = t0 + 1000 * tsc_khz; /* 1 s at the assumed 5 GHz */
        for (i = 0; i < 100000 && elapsed < target && !expired(limit); i++) {
                cur = pit_read_ch0();
                elapsed += (uint16_t) (prev - cur);
                prev = cur;
        }
        t1 = rdtsc();
        l1 = lapic_read(LAPIC_TIMER_CUR);
        /* Mode 0 with no count written: the counter stops, no more IRQ0. */
        outb(PORT_PIT_CMD, 0x30);
        lapic_write(LAPIC_TIMER_INIT, 0);
        if (elapsed < target)
                return false;
        /* cycles per ms = cycles * PIT_HZ / (elapsed * 1000) */
        tsc_khz = (t1 - t0) * PIT_HZ / ((uint64_t) elapsed * 1000);
        lapic_timer_khz = (uint64_t) (l0 - l1) * PIT_HZ / ((uint64_t) elapsed * 1000);
        return tsc_khz > 0;
}

void udelay(uint64_t us)
{
        uint64_t end = rdtsc() + us * tsc_khz / 1000;

        while (!expired(end))
                pause();
}

static void tick_handler(struct irq_frame *f)
{
        lapic_eoi();
}

bool wait_for(bool (*cond)(void), uint64_t timeout_ms, bool halt)
{
        uint64_t end = deadline_ms(timeout_ms);
        bool ok;

        halt = halt && lapic_timer_khz;
        if (halt) {
                irq_set_handler(VECTOR_TICK, tick_handler);
                lapic_timer_start(VECTOR_TICK, lapic_timer_khz ? lapic_timer_khz : 1, true);
        }
        while (!(ok = cond()) && !expired(end)) {
                if (halt) {
                        sti_hlt();
                        cli();
                } else {
                        pause();
                }
        }
        if (halt)
                lapic_timer_stop();
        return ok;
}
