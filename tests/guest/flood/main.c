/* SPDX-License-Identifier: BSD-3-Clause */
/* Floods COM1, as a hostile guest filling its console log would: numbered
 * 64-byte lines, flood_lines=N of them (default 1024), then "flood: end".
 * With forge=1, it then prints text that looks like the VMM's own error
 * line, without a newline, and escape=1 adds terminal escapes to it. Ends
 * through debug-exit with flood_exit=CODE (default 0). */

#include "rt.h"

int main(void)
{
        const char *v;
        uint64_t lines = 1024, code = 0;

        if ((v = cmdline_get(boot_info.cmdline, "flood_lines")))
                parse_u64(v, &lines);
        if ((v = cmdline_get(boot_info.cmdline, "flood_exit")))
                parse_u64(v, &code);
        for (uint64_t i = 0; i < lines; i++)
                /* 6 + 1 + 8 + 1 + 47 + 1 = 64 bytes */
                printf("flood %08lu %s\n", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        printf("flood: end\n");
        if (cmdline_get(boot_info.cmdline, "forge"))
                printf("majordome-vmm: forged");
        if (cmdline_get(boot_info.cmdline, "escape"))
                printf("\033]0;owned\007\033[2J");
        debug_exit((uint8_t) code);
}
