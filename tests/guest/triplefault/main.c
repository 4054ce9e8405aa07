/* SPDX-License-Identifier: BSD-3-Clause */
/* Loads an empty IDT and raises an exception: with no handler for the
 * fault nor the double fault, the CPU shuts down (a triple fault), which
 * the VMM must report with its own exit code. */

#include "rt.h"

int main(void)
{
        struct __attribute__((packed)) {
                uint16_t limit;
                uint64_t base;
        } idtr = { 0, 0 };

        printf("triplefault: loading an empty IDT and executing ud2\n");
        __asm__ volatile("cli; lidt %0; ud2" : : "m"(idtr));
        test_report("triplefault", false, "still running after ud2 with an empty IDT");
        return 1;
}
