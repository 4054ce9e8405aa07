/* SPDX-License-Identifier: BSD-3-Clause */
/* Starts every application processor the MP table lists with INIT-SIPI-SIPI
 * through a real-mode trampoline that goes straight to long mode; each AP
 * reports its APIC id and halts. */

#include "rt.h"

/* A free page below 1 MiB: not the VMM's GDT (0x500), zero page (0x7000),
 * boot stack (below 0x8000) or page tables (0x9000-0xefff). */
#define TRAMPOLINE 0x6000
#define TIMEOUT_MS 2000

extern char ap_trampoline[], ap_trampoline_end[], ap_trampoline_gdtr[], ap_trampoline_cr3[];
extern const struct {
        uint16_t limit;
        uint64_t base;
} __attribute__((packed)) gdt_ptr;

static volatile uint64_t seen_mask; /* bit per APIC id (< 64) */
static volatile unsigned seen_count;
static uint64_t want_mask;
static unsigned want_count;

void ap_main(void)
{
        uint32_t id = lapic_id();

        if (id < 64)
                __atomic_fetch_or(&seen_mask, 1ull << id, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&seen_count, 1, __ATOMIC_SEQ_CST);
        for (;;)
                __asm__ volatile("cli; hlt");
}

static bool all_seen(void)
{
        return __atomic_load_n(&seen_count, __ATOMIC_SEQ_CST) >= want_count &&
               (__atomic_load_n(&seen_mask, __ATOMIC_SEQ_CST) & want_mask) == want_mask;
}

static void install_trampoline(void)
{
        size_t n = ap_trampoline_end - ap_trampoline;
        char *t = phys(TRAMPOLINE);
        uint32_t cr3 = read_cr3();
        uint16_t limit = gdt_ptr.limit;
        uint32_t base = gdt_ptr.base;

        memcpy(t, ap_trampoline, n);
        memcpy(t + (ap_trampoline_gdtr - ap_trampoline), &limit, 2);
        memcpy(t + (ap_trampoline_gdtr - ap_trampoline) + 2, &base, 4);
        memcpy(t + (ap_trampoline_cr3 - ap_trampoline), &cr3, 4);
}

int main(void)
{
        struct mp_info mp;
        uint32_t bsp = lapic_id();
        uint64_t start_tsc, expect = 0;
        const char *v;
        bool ok = true;

        if (!mptable_parse(&mp) || mp.cpu_count == 0) {
                test_report("smp", false, "no MP table processor entries");
                return 0;
        }
        /* The test knows how many vCPUs it asked for; the MP table must say
         * the same, or APs the table forgot would go unnoticed. */
        v = cmdline_get(boot_info.cmdline, "expect_cpus");
        if (v && (!parse_u64(v, &expect) || expect != mp.cpu_count)) {
                test_report("smp", false, "MP table lists %u processors, expect_cpus says %lu", mp.cpu_count, expect);
                return 0;
        }
        lapic_init();
        timer_calibrate();
        install_trampoline();
        for (unsigned i = 0; i < mp.cpu_count; i++) {
                uint8_t id = mp.cpu_apic_ids[i];

                if (id == bsp)
                        continue;
                if (id >= 64) {
                        test_report("smp", false, "APIC id %u too large for this test", id);
                        return 0;
                }
                want_mask |= 1ull << id;
                want_count++;
        }
        printf("smp: BSP apic %u, starting %u AP(s), mask 0x%lx\n", bsp, want_count, want_mask);
        if (!want_count) {
                test_report("smp", true, "1 CPU, nothing to start");
                return 0;
        }

        start_tsc = rdtsc();
        /* INIT to all first, one 10 ms wait, then two SIPIs each. */
        for (unsigned id = 0; id < 64; id++)
                if (want_mask & (1ull << id))
                        ok &= lapic_send_ipi(id, 0x00004500); /* INIT, level assert */
        udelay(10000);
        for (unsigned round = 0; round < 2; round++) {
                for (unsigned id = 0; id < 64; id++)
                        if (want_mask & (1ull << id))
                                ok &= lapic_send_ipi(id, 0x00004600 | (TRAMPOLINE >> 12)); /* SIPI */
                udelay(200);
        }
        if (!ok)
                printf("smp: an IPI stayed pending\n");
        if (!wait_for(all_seen, TIMEOUT_MS, true)) {
                test_report("smp", false, "%u of %u AP(s) reported in %u ms, mask 0x%lx of 0x%lx",
                            seen_count, want_count, TIMEOUT_MS, seen_mask, want_mask);
                return 0;
        }
        test_report("smp", seen_count == want_count, "%u CPU(s) up (APIC ids 0x%lx + BSP %u) in %lu us",
                    seen_count + 1, seen_mask, bsp, (rdtsc() - start_tsc) * 1000 / tsc_khz);
        return 0;
}
