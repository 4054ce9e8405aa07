/* SPDX-License-Identifier: BSD-3-Clause */
/* Runs until stopped: halts with a 100 ms periodic LAPIC timer and prints a
 * tick count, for pause/resume/stop tests over the control socket. */

#include "rt.h"

#define VEC_TICK 0x40

static volatile uint64_t ticks;

static void tick(struct irq_frame *f)
{
        printf("spin: tick %lu\n", ++ticks);
        lapic_eoi();
}

int main(void)
{
        uint64_t per_ms;

        lapic_init();
        if (!timer_calibrate())
                printf("spin: PIT calibration failed, assuming a 1 GHz LAPIC bus\n");
        /* KVM's LAPIC timer runs at 1 GHz: 62500 ticks per ms at div 16. */
        per_ms = lapic_timer_khz ? lapic_timer_khz : 62500;
        irq_set_handler(VEC_TICK, tick);
        lapic_timer_start(VEC_TICK, per_ms * 100, true);
        printf("spin: ready\n");
        for (;;)
                sti_hlt();
}
