/* SPDX-License-Identifier: BSD-3-Clause */
/* Pulses the reset line through the i8042: the VMM must end the VM (exit
 * code 0). Reaching the end of main is the failure. */

#include "rt.h"

int main(void)
{
        printf("reset: pulsing the i8042 reset line\n");
        outb(PORT_I8042_CMD, 0xfe);
        /* No interrupts, no timers needed: a bounded spin on the TSC. */
        udelay(1000000);
        test_report("reset", false, "still running 1 s after writing 0xfe to port 0x64");
        return 0;
}
