/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Where the VMM puts things in guest-physical memory (x86-64 direct boot).
 * Everything below 1 MiB follows the conventions Linux expects of a PC. */

#define LAYOUT_GDT 0x500              /* boot GDT, 4 entries */
#define LAYOUT_BOOT_STACK 0x8000      /* top of a small stack for the entry, grows down */
#define LAYOUT_ZERO_PAGE 0x7000       /* struct boot_params */
#define LAYOUT_PML4 0x9000            /* identity page tables: PML4, PDPT, 4 PDs */
#define LAYOUT_PDPT 0xa000
#define LAYOUT_PD 0xb000              /* 4 pages: 0xb000..0xefff, 2 MiB pages for 0..4 GiB */
#define LAYOUT_CMDLINE 0x20000
#define LAYOUT_CMDLINE_MAX 0x10000    /* our own cap; the kernel's header may lower it */
#define LAYOUT_EBDA 0x9fc00           /* reserved 1 KiB below 640 KiB */
#define LAYOUT_LOW_RAM_END 0x9fc00
#define LAYOUT_MPTABLE 0x9fc00        /* MP floating pointer + table live in the EBDA */
#define LAYOUT_BIOS_START 0xf0000     /* reserved in e820 */
#define LAYOUT_SETUP_DATA 0xf0000     /* boot_params.hdr.setup_data chain (the RNG seed): in a
                                       * reserved range, so Linux need not split a RAM entry */
#define LAYOUT_HIMEM 0x100000         /* 1 MiB: where a bzImage's protected-mode kernel goes */

/* Legacy I/O ports. */
#define PORT_PIT_BASE 0x40            /* in-kernel PIT, 0x40-0x43 */
#define PORT_I8042_DATA 0x60
#define PORT_SYSTEM_CONTROL_B 0x61    /* PIT gate 2 / speaker, Linux probes it */
#define PORT_I8042_CMD 0x64
#define PORT_RTC_INDEX 0x70
#define PORT_RTC_DATA 0x71
#define PORT_DEBUG_EXIT 0xf4          /* only with --debug-exit; same port as QEMU's isa-debug-exit */
#define PORT_COM1 0x3f8
#define COM1_IRQ 4

/* Interrupt controllers. */
#define LAYOUT_IOAPIC 0xfec00000
#define LAYOUT_LAPIC 0xfee00000
#define IOAPIC_PINS 24
