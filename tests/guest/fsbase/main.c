/* SPDX-License-Identifier: BSD-3-Clause */
/* Diagnostic for issue #16 (a 2-vCPU rig Linux boot where busybox's first
 * TLS load read 0 through %fs): does the guest's user-mode FS base survive
 * what Linux does to it on these hosts?
 *
 * Every CPU (the BSP and each AP) runs a user-mode (CPL3) loop that reads
 * %fs:0 and compares it with the TLS block its kernel side last installed.
 * The kernel side switches FS base the way Linux without FSGSBASE does
 * (load_seg_legacy: a null selector into %fs, then WRMSR MSR_FS_BASE) on
 * every LAPIC timer tick and on every "system call" (int $4) the loop
 * makes (half of them by SYSCALL through an int $4 trampoline, as the rig
 * kernel's pvm_syscall_tramp), some of which also exit to the VMM (an OUT) or halt (HLT) first, so
 * the vCPU is put and loaded again on the host. Entry from and return to user
 * mode do SWAPGS, and the kernel checks its own GS base through %gs:0.
 *
 * Each TLS block's first word is its own address, as glibc's TCB is, so a
 * wrong FS base reads a wrong (or zero) word. The loop reads the expected
 * block before and after the load and counts only when both agree.
 *
 * cmdline: seconds=N (default 20), tick_hz=N (default 250), expect_cpus=N.
 * Prints "fsbase: cpu C checks N bad B ..." lines every 5 s and at the end,
 * then TEST fsbase PASS|FAIL. Not part of the test suite: a diagnostic,
 * run by hand (see tools/fsbase-flake.sh). */

#include "rt.h"

#define TRAMPOLINE 0x6000
#define MAX_CPUS 8
#define N_TLS 4
#define VEC_TICK 0x40
#define VEC_SYSCALL 4 /* int $4, as the rig kernel's syscall trampoline: other INT n from user mode get #UD here */
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define SEL_UDATA 0x2b
#define SEL_UCODE 0x33
#define SEL_TSS 0x40
#define TLS_MAGIC 0x7f5e1f5e00000000ull

extern char ap_trampoline[], ap_trampoline_end[], ap_trampoline_gdtr[], ap_trampoline_cr3[];
extern char entry_tick[], entry_syscall[], user_loop[];

static inline uint64_t rdmsr(uint32_t msr)
{
        uint32_t lo, hi;
        __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
        return ((uint64_t) hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
        __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t) v), "d"((uint32_t) (v >> 32)) : "memory");
}

/* What the user loop reads and writes: one cache line pair per CPU. The
 * field offsets are used by the assembly below. */
struct ushared {
        volatile uint64_t cur;       /* 0: TLS block the kernel last installed */
        volatile uint64_t checks;    /* 8 */
        volatile uint64_t bad;       /* 16 */
        volatile uint64_t last_got;  /* 24 */
        volatile uint64_t last_want; /* 32 */
        volatile uint64_t pad[3];
} __attribute__((aligned(64)));

struct tls_block {
        uint64_t self;
        uint64_t magic;
        uint8_t pad[4096 - 16];
} __attribute__((aligned(4096)));

/* Per-CPU kernel data, reached through the kernel GS base; word 0 is its
 * own address (checked on every entry). */
struct percpu {
        struct percpu *self;
        unsigned cpu;
        unsigned next;
        uint64_t ticks, syscalls, via_syscall, outs, halts;
        uint64_t kgs_bad, kfs_bad;
        uint64_t kfs_last_got, kfs_last_want;
        uint64_t user_gs;
} __attribute__((aligned(64)));

struct tss {
        uint32_t reserved0;
        uint64_t rsp0, rsp1, rsp2;
        uint64_t reserved1;
        uint64_t ist[7];
        uint64_t reserved2;
        uint16_t reserved3, iomap;
} __attribute__((packed));

static struct ushared ushared[MAX_CPUS];
static struct tls_block tls[MAX_CPUS][N_TLS];
static struct percpu percpu[MAX_CPUS];
static struct tss tss[MAX_CPUS] __attribute__((aligned(128)));
static uint8_t kstacks[MAX_CPUS][16384] __attribute__((aligned(16)));
static uint8_t ustacks[MAX_CPUS][4096] __attribute__((aligned(16)));
static uint64_t gdt[8 + 2 * MAX_CPUS] __attribute__((aligned(16)));
static struct {
        uint16_t limit;
        uint64_t base;
} __attribute__((packed)) gdtr;

static volatile unsigned n_online;
static volatile uint8_t apic_to_cpu[256];
static unsigned n_cpus;
static uint64_t start_tsc, end_tsc, next_report_tsc;
static uint64_t seconds = 20, tick_hz = 250;
static volatile bool finishing;

/* ---- entry code: SWAPGS around user-mode interrupts, like Linux ---- */
__asm__(
        ".text\n"
        ".macro entry name, handler\n"
        ".globl \\name\n"
        "\\name:\n"
        "        testb $3, 8(%rsp)\n"
        "        jz 1f\n"
        "        swapgs\n"
        "1:      push %rax; push %rbx; push %rcx; push %rdx; push %rsi; push %rdi; push %rbp\n"
        "        push %r8; push %r9; push %r10; push %r11; push %r12; push %r13; push %r14; push %r15\n"
        "        cld\n"
        "        mov %rsp, %rdi\n"
        "        call \\handler\n"
        "        pop %r15; pop %r14; pop %r13; pop %r12; pop %r11; pop %r10; pop %r9; pop %r8\n"
        "        pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rbx; pop %rax\n"
        "        testb $3, 8(%rsp)\n"
        "        jz 2f\n"
        "        swapgs\n"
        "2:      iretq\n"
        ".endm\n"
        "entry entry_tick, fs_tick\n"
        "entry entry_syscall, fs_syscall\n"
        /* The user loop: rdi = &ushared[cpu]. r8 counts down to the next
         * system call, r9 picks its kind (0 switch, 1 + OUT, 2 + HLT). */
        ".globl user_loop\n"
        "user_loop:\n"
        "        xor %r9d, %r9d\n"
        "3:      mov $64, %r8d\n"
        "4:      mov 0(%rdi), %rax\n"           /* want (before) */
        "        mov %fs:0, %rdx\n"             /* got */
        "        mov 0(%rdi), %rcx\n"           /* want (after) */
        "        cmp %rax, %rcx\n"
        "        jne 5f\n"                      /* switched in between: no verdict */
        "        incq 8(%rdi)\n"
        "        cmp %rax, %rdx\n"
        "        je 5f\n"
        "        incq 16(%rdi)\n"
        "        mov %rdx, 24(%rdi)\n"
        "        mov %rax, 32(%rdi)\n"
        "5:      dec %r8d\n"
        "        jnz 4b\n"
        "        inc %r9d\n"
        "        mov %r9d, %eax\n"
        "        and $15, %eax\n"               /* 0..13 switch, 14 OUT, 15 HLT */
        "        sub $13, %eax\n"
        "        jg 6f\n"
        "        xor %eax, %eax\n"
        "6:      test $1, %r9d\n"            /* odd: SYSCALL, through LSTAR's int $4 */
        "        jnz 7f\n"
        "        int $4\n"
        "        jmp 3b\n"
        "7:      syscall\n"
        "        jmp 3b\n");

/* The rig kernel's pvm_syscall_tramp: this host completes a user-mode
 * SYSCALL by jumping to MSR_LSTAR still in user mode, so LSTAR points at a
 * user page that traps into the kernel with int $4. */
__attribute__((aligned(4096), section(".data"))) static uint8_t syscall_tramp[4096] = { 0xcd, 0x04, 0x0f, 0x0b };

struct frame {
        uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
        uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
        uint64_t rip, cs, rflags, rsp, ss;
};

static struct percpu *this_cpu(void)
{
        struct percpu *p;

        __asm__ volatile("mov %%gs:0, %0" : "=r"(p));
        return p;
}

/* Linux's load_seg_legacy() for a 64-bit TLS task without FSGSBASE. */
static void switch_fs(struct percpu *p)
{
        uint64_t want, got;

        p->next = (p->next + 1) % N_TLS;
        want = (uintptr_t) &tls[p->cpu][p->next];
        __asm__ volatile("mov %0, %%fs" : : "r"(0) : "memory");
        wrmsr(MSR_FS_BASE, want);
        got = rdmsr(MSR_FS_BASE);
        if (got != want) {
                p->kfs_bad++;
                p->kfs_last_got = got;
                p->kfs_last_want = want;
        }
        ushared[p->cpu].cur = want;
}

static struct percpu *kernel_entry_check(unsigned *ret_cpu)
{
        uint32_t id = lapic_id();
        unsigned cpu = apic_to_cpu[id & 0xff];
        struct percpu *p = this_cpu();

        if (p != &percpu[cpu]) {
                /* Count on the CPU the LAPIC says we are on, and use it. */
                percpu[cpu].kgs_bad++;
                p = &percpu[cpu];
        }
        *ret_cpu = cpu;
        return p;
}

static void report(bool final)
{
        uint64_t checks = 0, bad = 0;

        for (unsigned c = 0; c < n_cpus; c++) {
                struct percpu *p = &percpu[c];
                struct ushared *u = &ushared[c];

                printf("fsbase: cpu %u checks %lu bad %lu (last got 0x%lx want 0x%lx) ticks %lu syscalls %lu "
                       "(%lu via SYSCALL) outs %lu halts %lu kgs_bad %lu kfs_bad %lu (0x%lx want 0x%lx)\n",
                       c, u->checks, u->bad, u->last_got, u->last_want, p->ticks, p->syscalls, p->via_syscall, p->outs, p->halts,
                       p->kgs_bad, p->kfs_bad, p->kfs_last_got, p->kfs_last_want);
                checks += u->checks;
                bad += u->bad + p->kgs_bad + p->kfs_bad;
        }
        if (final) {
                test_report("fsbase", bad == 0 && checks > 0, "%lu checks on %u CPU(s) in %lu s, %lu bad", checks,
                            n_cpus, seconds, bad);
                test_finish();
        }
}

void fs_tick(struct frame *f);
void fs_tick(struct frame *f)
{
        unsigned cpu;
        struct percpu *p = kernel_entry_check(&cpu);

        p->ticks++;
        switch_fs(p);
        lapic_eoi();
        if (cpu == 0 && !finishing) {
                uint64_t now = rdtsc();

                if ((int64_t) (now - end_tsc) >= 0) {
                        finishing = true;
                        report(true);
                }
                if ((int64_t) (now - next_report_tsc) >= 0) {
                        next_report_tsc = now + 5000 * tsc_khz;
                        report(false);
                }
        }
}

void fs_syscall(struct frame *f);
void fs_syscall(struct frame *f)
{
        unsigned cpu;
        struct percpu *p = kernel_entry_check(&cpu);

        p->syscalls++;
        if (f->rip == (uintptr_t) syscall_tramp + 2) {
                /* As pvm_tramp_overflow: SYSCALL left the return in RCX/R11. */
                p->via_syscall++;
                f->rip = f->rcx;
                f->rflags = (f->r11 & 0x3C7FD7ull) | 2;
        }
        /* Like arch_prctl(ARCH_SET_FS) or a context switch: a new base. */
        switch_fs(p);
        if (f->rax == 1) {
                p->outs++;
                outb(0x80, 0); /* an exit to the VMM (no device there) */
        } else if (f->rax == 2) {
                p->halts++;
                __asm__ volatile("sti; hlt; cli" ::: "memory"); /* the next tick wakes us */
        }
}

static void set_gate(unsigned vec, void *handler, unsigned dpl)
{
        struct {
                uint16_t limit;
                uint64_t base;
        } __attribute__((packed)) idtr;
        uint8_t *g;
        uint64_t a = (uintptr_t) handler;

        __asm__ volatile("sidt %0" : "=m"(idtr));
        g = phys(idtr.base + vec * 16);
        *(uint16_t *) (g + 0) = a & 0xffff;
        *(uint16_t *) (g + 2) = SEL_CODE64;
        g[4] = 0;
        g[5] = 0x8e | (dpl << 5);
        *(uint16_t *) (g + 6) = (a >> 16) & 0xffff;
        *(uint32_t *) (g + 8) = a >> 32;
        *(uint32_t *) (g + 12) = 0;
}

/* The identity map user-accessible: U in every level (2 MiB pages). */
static void make_user_accessible(void)
{
        uint64_t *pml4 = phys(read_cr3() & ~0xfffull);

        for (unsigned i = 0; i < 512; i++) {
                if (!(pml4[i] & 1))
                        continue;
                pml4[i] |= 4;
                uint64_t *pdpt = phys(pml4[i] & 0x000ffffffffff000ull);
                for (unsigned j = 0; j < 512; j++) {
                        if (!(pdpt[j] & 1))
                                continue;
                        pdpt[j] |= 4;
                        if (pdpt[j] & 0x80)
                                continue;
                        uint64_t *pd = phys(pdpt[j] & 0x000ffffffffff000ull);
                        for (unsigned k = 0; k < 512; k++)
                                if (pd[k] & 1)
                                        pd[k] |= 4;
                }
        }
        __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

static void gdt_build(void)
{
        gdt[0] = 0;
        gdt[1] = 0;
        gdt[2] = 0x00af9a000000ffffull; /* 0x10 kernel code64 */
        gdt[3] = 0x00cf92000000ffffull; /* 0x18 kernel data */
        gdt[4] = 0x00cffa000000ffffull; /* 0x20 user code32 (unused) */
        gdt[5] = 0x00cff2000000ffffull; /* 0x28 user data */
        gdt[6] = 0x00affa000000ffffull; /* 0x30 user code64 */
        gdt[7] = 0;
        for (unsigned c = 0; c < MAX_CPUS; c++) {
                uint64_t base = (uintptr_t) &tss[c], limit = sizeof(struct tss) - 1;

                tss[c].rsp0 = (uintptr_t) &kstacks[c][sizeof(kstacks[c])];
                tss[c].iomap = sizeof(struct tss);
                gdt[8 + 2 * c] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                                 (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
                gdt[9 + 2 * c] = base >> 32;
        }
        gdtr.limit = sizeof(gdt) - 1;
        gdtr.base = (uintptr_t) gdt;
}

static void __attribute__((noreturn)) cpu_run(unsigned cpu)
{
        struct percpu *p = &percpu[cpu];
        uint64_t ustack = (uintptr_t) &ustacks[cpu][sizeof(ustacks[cpu])];

        __asm__ volatile("lgdt %0" : : "m"(gdtr));
        __asm__ volatile("ltr %w0" : : "r"((uint16_t) (SEL_TSS + 16 * cpu)));
        p->self = p;
        p->cpu = cpu;
        for (unsigned i = 0; i < N_TLS; i++) {
                tls[cpu][i].self = (uintptr_t) &tls[cpu][i];
                tls[cpu][i].magic = TLS_MAGIC | cpu << 8 | i;
        }
        /* Kernel GS base now; SWAPGS before user mode makes it the inactive
         * one, as Linux keeps it. User GS base 0. */
        wrmsr(MSR_GS_BASE, (uintptr_t) p);
        wrmsr(MSR_KERNEL_GS_BASE, 0);
        /* SYSCALL as Linux sets it up: STAR, LSTAR (the trampoline), SFMASK, EFER.SCE. */
        wrmsr(MSR_STAR, (0x23ull << 48) | ((uint64_t) SEL_CODE64 << 32));
        wrmsr(MSR_LSTAR, (uintptr_t) syscall_tramp);
        wrmsr(MSR_SYSCALL_MASK, 0x47700);
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) | 1);
        switch_fs(p);
        lapic_init();
        lapic_timer_start(VEC_TICK, (uint32_t) (lapic_timer_khz * 1000 / tick_hz), true);
        __atomic_fetch_add(&n_online, 1, __ATOMIC_SEQ_CST);

        /* To user mode: iretq with IF set. */
        __asm__ volatile("swapgs\n"
                         "pushq %0\n"
                         "pushq %1\n"
                         "pushq $0x202\n"
                         "pushq %2\n"
                         "pushq %3\n"
                         "iretq\n"
                         :
                         : "i"(SEL_UDATA), "r"(ustack), "i"(SEL_UCODE), "r"((uintptr_t) user_loop),
                           "D"((uintptr_t) &ushared[cpu])
                         : "memory");
        __builtin_unreachable();
}

void ap_main(void)
{
        unsigned cpu = apic_to_cpu[lapic_id() & 0xff];

        cpu_run(cpu);
}

int main(void)
{
        struct mp_info mp;
        uint32_t bsp = lapic_id();
        const char *v;
        unsigned want = 0;

        v = cmdline_get(boot_info.cmdline, "seconds");
        if (v)
                parse_u64(v, &seconds);
        v = cmdline_get(boot_info.cmdline, "tick_hz");
        if (v)
                parse_u64(v, &tick_hz);
        if (!mptable_parse(&mp) || mp.cpu_count == 0 || mp.cpu_count > MAX_CPUS) {
                test_report("fsbase", false, "MP table: %u processors", mp.cpu_count);
                return 0;
        }
        lapic_init();
        if (!timer_calibrate() || !lapic_timer_khz) {
                test_report("fsbase", false, "timer calibration failed");
                return 0;
        }
        n_cpus = mp.cpu_count;
        apic_to_cpu[bsp & 0xff] = 0;
        for (unsigned i = 0, c = 1; i < mp.cpu_count; i++)
                if (mp.cpu_apic_ids[i] != bsp)
                        apic_to_cpu[mp.cpu_apic_ids[i]] = c++;

        make_user_accessible();
        gdt_build();
        set_gate(VEC_TICK, entry_tick, 0);
        set_gate(VEC_SYSCALL, entry_syscall, 3);

        /* APs: the smp guest's INIT-SIPI-SIPI through the shared trampoline. */
        {
                size_t n = ap_trampoline_end - ap_trampoline;
                char *t = phys(TRAMPOLINE);
                uint32_t cr3 = read_cr3();
                struct {
                        uint16_t limit;
                        uint64_t base;
                } __attribute__((packed)) cur;

                __asm__ volatile("sgdt %0" : "=m"(cur));
                uint16_t limit = cur.limit;
                uint32_t base = cur.base;
                memcpy(t, ap_trampoline, n);
                memcpy(t + (ap_trampoline_gdtr - ap_trampoline), &limit, 2);
                memcpy(t + (ap_trampoline_gdtr - ap_trampoline) + 2, &base, 4);
                memcpy(t + (ap_trampoline_cr3 - ap_trampoline), &cr3, 4);
        }
        for (unsigned i = 0; i < mp.cpu_count; i++) {
                uint8_t id = mp.cpu_apic_ids[i];

                if (id == bsp)
                        continue;
                want++;
                lapic_send_ipi(id, 0x00004500);
                udelay(10000);
                lapic_send_ipi(id, 0x00004600 | (TRAMPOLINE >> 12));
                udelay(200);
                lapic_send_ipi(id, 0x00004600 | (TRAMPOLINE >> 12));
        }
        uint64_t deadline = deadline_ms(5000);
        while (n_online < want && !expired(deadline))
                pause();
        if (n_online < want) {
                test_report("fsbase", false, "%u of %u AP(s) came up", n_online, want);
                return 0;
        }
        printf("fsbase: %u CPU(s), %lu s, tick %lu Hz, %u TLS blocks each\n", n_cpus, seconds, tick_hz, N_TLS);
        start_tsc = rdtsc();
        end_tsc = start_tsc + seconds * 1000 * tsc_khz;
        next_report_tsc = start_tsc + 5000 * tsc_khz;
        cpu_run(0);
}
