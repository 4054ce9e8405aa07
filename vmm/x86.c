/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>

#include "vmm/layout.h"
#include "vmm/x86.h"

#define PTE_PRESENT (1ull << 0)
#define PTE_WRITE (1ull << 1)
#define PTE_PS (1ull << 7)

int x86_setup_long_mode(const GuestMemory *m, uint64_t entry, uint64_t zero_page, HvBootRegs *ret) {
        /* Linux boot protocol (x86/boot.rst, 64-bit): __BOOT_CS 0x10 is
         * 64-bit code and __BOOT_DS 0x18 flat data. */
        static const uint64_t gdt[] = {
                0,
                0,
                0x00af9b000000ffffull, /* code: present, DPL0, exec/read, L, G */
                0x00cf93000000ffffull, /* data: present, DPL0, read/write, D/B, G */
        };
        uint64_t pml4e = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
        int r;

        r = guest_write(m, LAYOUT_GDT, gdt, sizeof(gdt));
        if (r < 0)
                return r;

        r = guest_zero(m, LAYOUT_PML4, 0x1000);
        if (r < 0)
                return r;
        r = guest_write(m, LAYOUT_PML4, &pml4e, sizeof(pml4e));
        if (r < 0)
                return r;
        r = guest_zero(m, LAYOUT_PDPT, 0x1000);
        if (r < 0)
                return r;

        /* Four page directories of 2 MiB pages: identity map 0..4 GiB, so
         * the kernel, boot_params, cmdline and initrd are all reachable. */
        for (uint64_t pd = 0; pd < 4; pd++) {
                uint64_t pdpte = (LAYOUT_PD + pd * 0x1000) | PTE_PRESENT | PTE_WRITE;
                uint64_t entries[512];

                for (uint64_t i = 0; i < 512; i++)
                        entries[i] = ((pd << 30) | (i << 21)) | PTE_PRESENT | PTE_WRITE | PTE_PS;
                r = guest_write(m, LAYOUT_PD + pd * 0x1000, entries, sizeof(entries));
                if (r < 0)
                        return r;
                r = guest_write(m, LAYOUT_PDPT + pd * 8, &pdpte, sizeof(pdpte));
                if (r < 0)
                        return r;
        }

        *ret = (HvBootRegs) {
                .rip = entry,
                .rsi = zero_page,
                .rsp = LAYOUT_BOOT_STACK,
                .rflags = 0x2,
                .cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG,
                .cr3 = LAYOUT_PML4,
                .cr4 = X86_CR4_PAE,
                .efer = X86_EFER_LME | X86_EFER_LMA,
                .gdt_base = LAYOUT_GDT,
                .gdt_limit = sizeof(gdt) - 1,
                .code_selector = BOOT_CS,
                .data_selector = BOOT_DS,
        };
        return 0;
}
