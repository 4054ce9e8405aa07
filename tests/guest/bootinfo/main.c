/* SPDX-License-Identifier: BSD-3-Clause */
/* Checks what the loader handed over against what the test says it passed
 * on the cmdline (see README.md for the keys). */

#include "rt.h"

#define LOW_RESERVED_SLACK (1ull << 20) /* below 1 MiB: EBDA, VGA, BIOS */

static bool in_usable_ram(uint64_t addr, uint64_t size)
{
        for (unsigned i = 0; i < boot_info.e820_count; i++) {
                const struct e820_entry *e = &boot_info.e820[i];

                if (e->type == E820_RAM && addr >= e->addr && addr + size <= e->addr + e->size)
                        return true;
        }
        return false;
}

static void check_cmdline(void)
{
        const char *c = boot_info.cmdline;
        const char *v;
        size_t len = strlen(c);
        static const char end_marker[] = "bootinfo_end";
        size_t mlen = sizeof(end_marker) - 1;
        uint64_t want;

        /* The marker ends the cmdline: a truncated or unterminated cmdline
         * (or trailing garbage) loses it. */
        if (len < mlen || strncmp(c + len - mlen, end_marker, mlen) || (len > mlen && c[len - mlen - 1] != ' ')) {
                test_report("bootinfo-cmdline", false, "does not end with \"%s\": \"%s\"", end_marker, c);
                return;
        }
        v = cmdline_get(c, "expect_cmdline_len");
        if (v && parse_u64(v, &want) && want != len) {
                test_report("bootinfo-cmdline", false, "length %lu, expected %lu", (uint64_t) len, want);
                return;
        }
        test_report("bootinfo-cmdline", true, "%lu bytes via %s", (uint64_t) len, boot_info.source);
}

/* QEMU's PVH memmap is in creation order; Linux sorts it, and so do we for
 * that path only: the zero page our VMM writes must come sorted. */
static void sort_e820(void)
{
        for (unsigned i = 1; i < boot_info.e820_count; i++)
                for (unsigned j = i; j > 0 && boot_info.e820[j].addr < boot_info.e820[j - 1].addr; j--) {
                        struct e820_entry t = boot_info.e820[j];

                        boot_info.e820[j] = boot_info.e820[j - 1];
                        boot_info.e820[j - 1] = t;
                }
}

static void check_e820(void)
{
        const char *v = cmdline_get(boot_info.cmdline, "expect_mem");
        uint64_t usable = 0, expect = 0;

        if (!boot_info.boot_params)
                sort_e820();
        if (boot_info.e820_count == 0) {
                test_report("bootinfo-e820", false, "no e820 entries");
                return;
        }
        for (unsigned i = 0; i < boot_info.e820_count; i++) {
                const struct e820_entry *e = &boot_info.e820[i];

                printf("e820: [0x%016lx-0x%016lx] type %u\n", e->addr, e->addr + e->size - 1, e->type);
                if (e->size == 0) {
                        test_report("bootinfo-e820", false, "entry %u is empty", i);
                        return;
                }
                if (i > 0 && e->addr < boot_info.e820[i - 1].addr + boot_info.e820[i - 1].size) {
                        test_report("bootinfo-e820", false, "entry %u at 0x%lx is unsorted or overlaps the previous one", i, e->addr);
                        return;
                }
                if (e->type != E820_RAM)
                        continue;
                usable += e->size;
                /* Nothing usable where the PC has its holes. */
                if (e->addr < 0x100000 && e->addr + e->size > 0xa0000) {
                        test_report("bootinfo-e820", false, "usable entry %u covers the VGA/BIOS hole", i);
                        return;
                }
                if (e->addr < LAPIC_BASE + 0x1000 && e->addr + e->size > IOAPIC_BASE) {
                        test_report("bootinfo-e820", false, "usable entry %u covers the IOAPIC/LAPIC", i);
                        return;
                }
        }
        if (!in_usable_ram((uintptr_t) __image_start, __image_end - __image_start)) {
                test_report("bootinfo-e820", false, "our image 0x%lx-0x%lx is not in usable RAM",
                            (uint64_t) (uintptr_t) __image_start, (uint64_t) (uintptr_t) __image_end);
                return;
        }
        if (!v) {
                test_report("bootinfo-e820", true, "%lu bytes usable (no expect_mem)", usable);
                return;
        }
        if (!parse_u64(v, &expect)) {
                test_report("bootinfo-e820", false, "bad expect_mem");
                return;
        }
        test_report("bootinfo-e820", usable <= expect && usable + LOW_RESERVED_SLACK >= expect,
                    "%lu bytes usable in %u entries, RAM %lu", usable, boot_info.e820_count, expect);
}

static void check_initrd(void)
{
        const char *v = cmdline_get(boot_info.cmdline, "expect_initrd");
        uint64_t size, seed, a = boot_info.initrd_addr, n = boot_info.initrd_size;
        const uint64_t *w;
        uint64_t pattern[32]; /* i*7 repeats every 256 bytes */

        if (!v) {
                test_report("bootinfo-initrd", n == 0, "no expect_initrd, initrd size %lu", n);
                return;
        }
        v = parse_u64(v, &size);
        if (!v || *v != ':' || !parse_u64(v + 1, &seed)) {
                test_report("bootinfo-initrd", false, "bad expect_initrd (want SIZE:SEED)");
                return;
        }
        if (n != size) {
                test_report("bootinfo-initrd", false, "size %lu at 0x%lx, expected %lu", n, a, size);
                return;
        }
        if (a & 0xfff) {
                test_report("bootinfo-initrd", false, "address 0x%lx is not page aligned", a);
                return;
        }
        if (!in_usable_ram(a, n)) {
                test_report("bootinfo-initrd", false, "0x%lx+%lu is not inside usable RAM", a, n);
                return;
        }
        if (a < (uintptr_t) __image_end && a + n > (uintptr_t) __image_start) {
                test_report("bootinfo-initrd", false, "0x%lx+%lu overlaps the kernel image", a, n);
                return;
        }
        for (unsigned i = 0; i < 256; i++)
                ((uint8_t *) pattern)[i] = (uint8_t) (i * 7 + seed);
        w = phys(a);
        for (uint64_t i = 0; i < n / 8; i++) {
                if (w[i] != pattern[i % 32]) {
                        test_report("bootinfo-initrd", false, "content differs near offset %lu", i * 8);
                        return;
                }
        }
        for (uint64_t i = n & ~7ull; i < n; i++) {
                if (((const uint8_t *) w)[i] != (uint8_t) (i * 7 + seed)) {
                        test_report("bootinfo-initrd", false, "content differs at offset %lu", i);
                        return;
                }
        }
        test_report("bootinfo-initrd", true, "%lu bytes at 0x%lx", n, a);
}

static void check_mptable(void)
{
        const char *v = cmdline_get(boot_info.cmdline, "expect_cpus");
        uint16_t ebda_seg = *(volatile uint16_t *) phys(0x40e);
        struct mp_info mp;
        uint64_t cpus = 0;

        if (!mptable_parse(&mp)) {
                test_report("bootinfo-mptable", false, "no MP floating pointer (BDA EBDA segment 0x%x)", ebda_seg);
                return;
        }
        if (!mp.fps_checksum_ok || !mp.table_checksum_ok) {
                test_report("bootinfo-mptable", false, "bad checksum (pointer %s, table %s at 0x%lx)",
                            mp.fps_checksum_ok ? "ok" : "bad", mp.table_checksum_ok ? "ok" : "bad", mp.table_addr);
                return;
        }
        if (mp.ioapic_count != 1 || mp.ioapic_addr != IOAPIC_BASE) {
                test_report("bootinfo-mptable", false, "%u IOAPICs, first at 0x%x", mp.ioapic_count, mp.ioapic_addr);
                return;
        }
        /* Our VMM's layout (vmm/layout.h): the EBDA at 0x9fc00 holds it. */
        if (boot_info.boot_params && (ebda_seg != 0x9fc0 || mp.fps_addr < 0x9fc00 || mp.fps_addr >= 0xa0000)) {
                test_report("bootinfo-mptable", false, "floating pointer at 0x%lx, EBDA segment 0x%x: expected both at 0x9fc00",
                            mp.fps_addr, ebda_seg);
                return;
        }
        if (v && (!parse_u64(v, &cpus) || cpus != mp.cpu_count)) {
                test_report("bootinfo-mptable", false, "%u processors, expected %lu", mp.cpu_count, cpus);
                return;
        }
        test_report("bootinfo-mptable", true, "at 0x%lx, %u processors, BSP apic %u, %u interrupt entries, EBDA segment 0x%x",
                    mp.fps_addr, mp.cpu_count, mp.bsp_apic_id, mp.irq_count, ebda_seg);
}

int main(void)
{
        printf("bootinfo: via %s, cmdline \"%s\"\n", boot_info.source, boot_info.cmdline);
        check_cmdline();
        check_e820();
        check_initrd();
        check_mptable();
        return 0;
}
