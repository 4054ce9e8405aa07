/* SPDX-License-Identifier: BSD-3-Clause */
/* Entry points of the test guests.
 *
 * _start: the ELF entry, reached in 64-bit long mode (the Linux 64-bit boot
 *   protocol as our VMM implements it), RSI = struct boot_params.
 * pvh_start32: the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY), reached in 32-bit
 *   flat protected mode with paging off and EBX = struct hvm_start_info, as
 *   QEMU boots an ELF with -kernel. It builds identity page tables for the
 *   first 4 GiB and goes to long mode straight away.
 * ap_trampoline: real-mode code an SMP guest copies below 1 MiB for SIPI. */

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_EM 0x4
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_OSFXSR 0x200
#define CR4_OSXMMEXCPT 0x400
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define STACK_SIZE 0x8000
#define AP_STACK_SIZE 0x1000
#define AP_MAX 31

        .pushsection .note.pvh, "a", @note
        .balign 4
        .long 4                 /* namesz: "Xen\0" */
        .long 4                 /* descsz */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long pvh_start32
        .balign 4
        .popsection

        .section .text.entry, "ax"
        .code64
        .globl _start
_start:
        cli
        mov %rsi, %r12          /* boot_params */
        xor %r13d, %r13d        /* no PVH start_info */
        jmp common64

        .code32
        .globl pvh_start32
pvh_start32:
        cli
        mov %ebx, %esi          /* hvm_start_info, kept in esi */

        /* PML4[0] -> PDPT; PDPT[0..3] -> 4 PDs; 2048 x 2 MiB pages. */
        mov $pvh_pdpt + 3, %eax
        mov %eax, pvh_pml4
        movl $0, pvh_pml4 + 4
        mov $pvh_pd + 3, %eax
        xor %ecx, %ecx
1:      mov %eax, pvh_pdpt(,%ecx,8)
        movl $0, pvh_pdpt + 4(,%ecx,8)
        add $0x1000, %eax
        inc %ecx
        cmp $4, %ecx
        jb 1b
        xor %ecx, %ecx
2:      mov %ecx, %eax
        shl $21, %eax
        or $0x83, %eax          /* present, writable, 2 MiB */
        mov %eax, pvh_pd(,%ecx,8)
        mov %ecx, %eax
        shr $11, %eax           /* bits 32+ of the address */
        mov %eax, pvh_pd + 4(,%ecx,8)
        inc %ecx
        cmp $2048, %ecx
        jb 2b

        lgdt gdt_ptr
        mov %cr4, %eax
        or $CR4_PAE, %eax
        mov %eax, %cr4
        mov $pvh_pml4, %eax
        mov %eax, %cr3
        mov $MSR_EFER, %ecx
        rdmsr
        or $EFER_LME, %eax
        wrmsr
        mov %cr0, %eax
        or $(CR0_PG | CR0_PE), %eax
        mov %eax, %cr0
        ljmp $SEL_CODE64, $pvh_start64

        .code64
pvh_start64:
        xor %r12d, %r12d        /* no boot_params */
        mov %esi, %r13d         /* start_info */

common64:
        /* Our own GDT (same selectors as the VMM's), so APs and the PVH
         * path share it. */
        lgdt gdt_ptr(%rip)
        mov $SEL_DATA, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        lea stack_top(%rip), %rsp
        pushq $SEL_CODE64
        lea 1f(%rip), %rax
        push %rax
        lretq
1:
        /* SSE on (the VMM leaves it off); the runtime is built with
         * -mgeneral-regs-only, guests may still use it. */
        mov %cr0, %rax
        and $~CR0_EM, %rax
        or $CR0_MP, %rax
        mov %rax, %cr0
        mov %cr4, %rax
        or $(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
        mov %rax, %cr4

        lea __bss_start(%rip), %rdi
        lea __bss_end(%rip), %rcx
        sub %rdi, %rcx
        shr $3, %rcx
        xor %eax, %eax
        cld
        rep stosq

        mov %r12, %rdi
        mov %r13, %rsi
        call rt_start
3:      cli
        hlt
        jmp 3b

/* ---- application processors ---- */

        .code16
        .globl ap_trampoline, ap_trampoline_end, ap_trampoline_gdtr, ap_trampoline_cr3
ap_trampoline:
        cli
        mov %cs, %ax
        mov %ax, %ds
        lgdtl ap_trampoline_gdtr - ap_trampoline
        mov $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
        mov %eax, %cr4
        movl ap_trampoline_cr3 - ap_trampoline, %eax
        mov %eax, %cr3
        mov $MSR_EFER, %ecx
        rdmsr
        or $EFER_LME, %eax
        wrmsr
        /* Real mode straight to long mode: PE and PG together. */
        mov %cr0, %eax
        and $~CR0_EM, %eax
        or $(CR0_PG | CR0_PE | CR0_MP), %eax
        mov %eax, %cr0
        ljmpl $SEL_CODE64, $ap_start64
        .balign 8
ap_trampoline_gdtr:
        .word 0
        .long 0
        .balign 4
ap_trampoline_cr3:
        .long 0
ap_trampoline_end:

        .code64
ap_start64:
        mov $SEL_DATA, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        mov $1, %eax
        lock xadd %eax, ap_next(%rip)
        cmp $AP_MAX, %eax
        jae 3b
        inc %eax
        shl $12, %rax           /* AP_STACK_SIZE */
        lea ap_stacks(%rip), %rsp
        add %rax, %rsp
        call idt_load
        call ap_main
        jmp 3b

/* ---- interrupt stubs ---- */

        .macro isr_stub vec
        .balign 16
        .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
        pushq $\vec
        .else
        pushq $0
        pushq $\vec
        .endif
        jmp isr_common
        .endm

        .balign 16
        .globl isr_stubs
isr_stubs:
        .altmacro
        .set vec, 0
        .rept 256
        isr_stub %vec
        .set vec, vec + 1
        .endr

isr_common:
        push %rax
        push %rbx
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %rbp
        push %r8
        push %r9
        push %r10
        push %r11
        push %r12
        push %r13
        push %r14
        push %r15
        cld
        mov %rsp, %rdi
        call irq_dispatch
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rbp
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rbx
        pop %rax
        add $16, %rsp
        iretq

        .section .rodata
        .balign 16
gdt:
        .quad 0
        .quad 0
        .quad 0x00af9a000000ffff        /* 0x10: 64-bit code */
        .quad 0x00cf92000000ffff        /* 0x18: flat data */
gdt_end:
        .balign 8
        .globl gdt_ptr
gdt_ptr:
        .word gdt_end - gdt - 1
        .quad gdt

        .data
        .balign 4
ap_next:
        .long 0

        /* Stacks and page tables need no zeroing: kept out of BSS. */
        .section .noinit, "aw", @nobits
        .balign 16
stack:
        .skip STACK_SIZE
stack_top:
        .balign 4096
ap_stacks:
        .skip AP_STACK_SIZE * (AP_MAX + 1)

        .balign 4096
pvh_pml4:
        .skip 4096
pvh_pdpt:
        .skip 4096
pvh_pd:
        .skip 4096 * 4

        .section .note.GNU-stack, "", @progbits
