/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include "vmm/hypervisor/hypervisor.h"
#include "vmm/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

#define X86_CR0_PE (1u << 0)
#define X86_CR0_MP (1u << 1)
#define X86_CR0_ET (1u << 4)
#define X86_CR0_NE (1u << 5)
#define X86_CR0_PG (1u << 31)
#define X86_CR4_PAE (1u << 5)
#define X86_EFER_LME (1u << 8)
#define X86_EFER_LMA (1u << 10)

#define BOOT_CS 0x10
#define BOOT_DS 0x18

/* Writes the boot GDT and identity page tables for 0..4 GiB into guest
 * memory and fills the registers for a 64-bit entry at `entry` with RSI
 * pointing at boot_params, as the Linux 64-bit boot protocol asks. */
int x86_setup_long_mode(const GuestMemory *m, uint64_t entry, uint64_t zero_page, HvBootRegs *ret);

#ifdef __cplusplus
}
#endif
