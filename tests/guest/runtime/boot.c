/* SPDX-License-Identifier: BSD-3-Clause */
/* From the entry to main(): collects what the loader told us. */

#include "rt.h"

/* Offsets in struct boot_params: the zero page is an ABI. Checked against
 * the kernel's uapi header when the build host has it. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_RAMDISK_IMAGE 0x218
#define BP_HDR_RAMDISK_SIZE 0x21c
#define BP_HDR_CMD_LINE_PTR 0x228
#define BP_HDR_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0

#if __has_include(<asm/bootparam.h>)
#include <asm/bootparam.h>
_Static_assert(BP_EXT_RAMDISK_IMAGE == offsetof(struct boot_params, ext_ramdisk_image), "zero page");
_Static_assert(BP_EXT_RAMDISK_SIZE == offsetof(struct boot_params, ext_ramdisk_size), "zero page");
_Static_assert(BP_EXT_CMD_LINE_PTR == offsetof(struct boot_params, ext_cmd_line_ptr), "zero page");
_Static_assert(BP_E820_ENTRIES == offsetof(struct boot_params, e820_entries), "zero page");
_Static_assert(BP_HDR_RAMDISK_IMAGE == offsetof(struct boot_params, hdr.ramdisk_image), "zero page");
_Static_assert(BP_HDR_RAMDISK_SIZE == offsetof(struct boot_params, hdr.ramdisk_size), "zero page");
_Static_assert(BP_HDR_CMD_LINE_PTR == offsetof(struct boot_params, hdr.cmd_line_ptr), "zero page");
_Static_assert(BP_HDR_CMDLINE_SIZE == offsetof(struct boot_params, hdr.cmdline_size), "zero page");
_Static_assert(BP_E820_TABLE == offsetof(struct boot_params, e820_table), "zero page");
_Static_assert(sizeof(struct e820_entry) == sizeof(struct boot_e820_entry), "zero page");
#endif

/* struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
#define PVH_MAGIC 0x336ec578
struct pvh_start_info {
        uint32_t magic, version, flags, nr_modules;
        uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
        uint32_t memmap_entries, reserved;
};
struct pvh_module {
        uint64_t paddr, size, cmdline_paddr, reserved;
};
struct pvh_memmap {
        uint64_t addr, size;
        uint32_t type, reserved;
};

#define CMDLINE_BUF 4096

struct boot_info boot_info;
static char cmdline_buf[CMDLINE_BUF];

static uint32_t rd32(const void *base, unsigned off)
{
        uint32_t v;

        memcpy(&v, (const char *) base + off, sizeof(v));
        return v;
}

static void copy_cmdline(uint64_t addr)
{
        const char *s = (const char *) (uintptr_t) addr;
        size_t i;

        if (!addr)
                return;
        for (i = 0; i < CMDLINE_BUF - 1 && s[i]; i++)
                cmdline_buf[i] = s[i];
        cmdline_buf[i] = '\0';
}

static void from_boot_params(const void *bp)
{
        const unsigned char *p = bp;
        unsigned n = p[BP_E820_ENTRIES];

        boot_info.source = "boot_params";
        boot_info.boot_params = bp;
        copy_cmdline(rd32(bp, BP_HDR_CMD_LINE_PTR) | (uint64_t) rd32(bp, BP_EXT_CMD_LINE_PTR) << 32);
        boot_info.cmdline_size = rd32(bp, BP_HDR_CMDLINE_SIZE);
        boot_info.initrd_addr = rd32(bp, BP_HDR_RAMDISK_IMAGE) | (uint64_t) rd32(bp, BP_EXT_RAMDISK_IMAGE) << 32;
        boot_info.initrd_size = rd32(bp, BP_HDR_RAMDISK_SIZE) | (uint64_t) rd32(bp, BP_EXT_RAMDISK_SIZE) << 32;
        if (n > E820_MAX)
                n = E820_MAX;
        memcpy(boot_info.e820, p + BP_E820_TABLE, n * sizeof(struct e820_entry));
        boot_info.e820_count = n;
}

static void from_pvh(const struct pvh_start_info *si)
{
        boot_info.source = "pvh";
        copy_cmdline(si->cmdline_paddr);
        if (si->nr_modules > 0 && si->modlist_paddr) {
                const struct pvh_module *m = (const void *) (uintptr_t) si->modlist_paddr;

                boot_info.initrd_addr = m->paddr;
                boot_info.initrd_size = m->size;
        }
        if (si->version >= 1 && si->memmap_paddr) {
                const struct pvh_memmap *mm = (const void *) (uintptr_t) si->memmap_paddr;
                unsigned n = si->memmap_entries;

                if (n > E820_MAX)
                        n = E820_MAX;
                /* QEMU counts an empty trailing entry: drop empties. */
                for (unsigned i = 0; i < n; i++) {
                        struct e820_entry *e = &boot_info.e820[boot_info.e820_count];

                        if (!mm[i].size)
                                continue;
                        e->addr = mm[i].addr;
                        e->size = mm[i].size;
                        e->type = mm[i].type;
                        boot_info.e820_count++;
                }
        }
}

/* Called by start.S with a stack and BSS cleared. */
void __attribute__((noreturn)) rt_start(const void *boot_params, const struct pvh_start_info *pvh);
void rt_start(const void *boot_params, const struct pvh_start_info *pvh)
{
        boot_info.source = "none";
        boot_info.cmdline = cmdline_buf;
        if (boot_params)
                from_boot_params(boot_params);
        else if (pvh && pvh->magic == PVH_MAGIC)
                from_pvh(pvh);

        serial_init();
        idt_init();
        if (main() != 0)
                test_report("main", false, "returned an error");
        test_finish();
}

/* Default for guests without SMP: an AP that got here just stops. */
void __attribute__((weak)) ap_main(void)
{
}
