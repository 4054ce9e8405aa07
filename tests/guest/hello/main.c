/* SPDX-License-Identifier: BSD-3-Clause */
/* The smallest guest: one line, one verdict. The README's demo. */

#include "rt.h"

int main(void)
{
        printf("Hello from a Majordome guest (booted via %s)\n", boot_info.source);
        test_report("hello", true, "cmdline=\"%s\"", boot_info.cmdline);
        return 0;
}
