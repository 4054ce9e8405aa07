/* SPDX-License-Identifier: BSD-3-Clause */
#include <asm/bootparam.h>
#include <asm/e820.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "vmm/boot/boot.h"
#include "vmm/boot/decompress.h"
#include "vmm/layout.h"
#include "vmm/boot/mptable.h"
#include "common/string-table.h"
#include "common/util.h"

/* Offsets in a bzImage file, Documentation/arch/x86/boot.rst. */
#define BZ_HDR_OFFSET 0x1f1             /* struct setup_header */
#define BZ_JUMP_OFFSET 0x201            /* second byte of the jump at 0x200: header end - 0x202 */
#define BZ_MIN_SIZE 0x206               /* through the "HdrS" magic */
#define BZ_DEFAULT_SETUP_SECTS 4        /* "if setup_sects is 0, the real value is 4" */
#define BZ_ENTRY_64 0x200               /* 64-bit entry, from the protected-mode start */
#define BOOT_FLAG_MAGIC 0xaa55
#define HDRS_MAGIC 0x53726448           /* "HdrS" */
#define LOADER_UNDEFINED 0xff           /* type_of_loader: no assigned id */
#define HEAP_END_PTR 0xfe00             /* the conventional setup heap end */
#define CMDLINE_SIZE_LEGACY 255         /* before protocol 2.06 */
#define INITRD_ADDR_MAX_DEFAULT 0x37ffffff
#define ELF_MAX_PHDRS 64
#define RNG_SEED_BYTES 32               /* 256 bits: the kernel's CRNG is ready at once */

#define PROTO(major, minor) ((major) << 8 | (minor))
#define MIN_VERSION PROTO(2, 12)        /* xloadflags, the 64-bit entry */

static int boot_fail(BootError *e, int r, const char *fmt, ...) _printf_(3, 4);
static int boot_fail(BootError *e, int r, const char *fmt, ...) {
        va_list ap;

        if (e) {
                va_start(ap, fmt);
                vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
                va_end(ap);
        }
        return r;
}

static const char *const kind_names[_BOOT_KIND_MAX] = {
        [BOOT_KIND_BZIMAGE] = "bzimage",
        [BOOT_KIND_ELF] = "elf",
        [BOOT_KIND_BZIMAGE_DECOMPRESSED] = "bzimage-decompressed",
};

DEFINE_STRING_TABLE_TO_STRING(boot_kind, BootKind, kind_names)
DEFINE_STRING_TABLE_FROM_STRING(boot_kind, BootKind, kind_names, _BOOT_KIND_INVALID)

unsigned boot_max_cpus(void) {
        return mptable_max_cpus();
}

/* What the kernel loaders hand on to the common part. */
typedef struct Loaded {
        struct setup_header hdr;        /* becomes boot_params.hdr */
        uint64_t entry, kernel_start, kernel_end;
        uint64_t text_start, text_end;  /* virtual; 0, 0 when unknown */
        BootKind kind;
} Loaded;

static uint64_t low_ram_end(const GuestMemory *m) {
        return m->regions[0].size;      /* region 0 starts at 0 */
}

/* Loads the PT_LOAD segments of a 64-bit x86 ELF at their physical addresses. */
static int elf_load(GuestMemory *m, const uint8_t *p, size_t n, Loaded *l, BootError *e) {
        Elf64_Phdr ph[ELF_MAX_PHDRS];
        uint64_t lo = UINT64_MAX, hi = 0, entry = UINT64_MAX, text_lo = UINT64_MAX, text_hi = 0;
        Elf64_Ehdr eh;
        unsigned n_load = 0;
        int r;

        if (n < sizeof(eh))
                return boot_fail(e, -ENOEXEC, "kernel: truncated ELF, %zu bytes is less than its header", n);
        memcpy(&eh, p, sizeof(eh));
        if (eh.e_ident[EI_CLASS] != ELFCLASS64)
                return boot_fail(e, -ENOEXEC, "kernel: ELF class %u is not ELFCLASS64, need a 64-bit vmlinux",
                                 eh.e_ident[EI_CLASS]);
        if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
                return boot_fail(e, -ENOEXEC, "kernel: ELF is not little-endian");
        if (eh.e_machine != EM_X86_64)
                return boot_fail(e, -ENOEXEC, "kernel: ELF machine %u is not x86-64 (%u)", eh.e_machine, EM_X86_64);
        if (eh.e_type != ET_EXEC)
                return boot_fail(e, -ENOEXEC, "kernel: ELF type %u is not ET_EXEC", eh.e_type);
        if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHDRS)
                return boot_fail(e, -ENOEXEC, "kernel: ELF has %u program headers of %u bytes, need 1..%u of %zu",
                                 eh.e_phnum, eh.e_phentsize, ELF_MAX_PHDRS, sizeof(Elf64_Phdr));
        if (eh.e_phoff > n || (size_t) eh.e_phnum * sizeof(Elf64_Phdr) > n - eh.e_phoff)
                return boot_fail(e, -ENOEXEC, "kernel: ELF program headers at 0x%" PRIx64 " lie past the end of the %zu-byte file",
                                 (uint64_t) eh.e_phoff, n);
        memcpy(ph, p + eh.e_phoff, eh.e_phnum * sizeof(Elf64_Phdr));

        /* Everything is validated before the first byte is copied. */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                const Elf64_Phdr *s = &ph[i];

                if (s->p_type != PT_LOAD || s->p_memsz == 0)
                        continue;
                if (s->p_filesz > s->p_memsz)
                        return boot_fail(e, -ENOEXEC, "kernel: ELF segment %u has filesz 0x%" PRIx64 " > memsz 0x%" PRIx64,
                                         i, (uint64_t) s->p_filesz, (uint64_t) s->p_memsz);
                if (s->p_offset > n || s->p_filesz > n - s->p_offset)
                        return boot_fail(e, -ENOEXEC, "kernel: ELF segment %u data at 0x%" PRIx64 "+0x%" PRIx64 " lies past the end of the %zu-byte file",
                                         i, (uint64_t) s->p_offset, (uint64_t) s->p_filesz, n);
                if (add_overflows_u64(s->p_paddr, s->p_memsz))
                        return boot_fail(e, -ENOEXEC, "kernel: ELF segment %u at 0x%" PRIx64 " + 0x%" PRIx64 " overflows",
                                         i, (uint64_t) s->p_paddr, (uint64_t) s->p_memsz);
                /* Below 1 MiB live the zero page, cmdline, page tables and MP table. */
                if (s->p_paddr < LAYOUT_HIMEM)
                        return boot_fail(e, -ENOEXEC, "kernel: ELF segment %u at 0x%" PRIx64 " is below 1 MiB, where the boot structures live",
                                         i, (uint64_t) s->p_paddr);
                if (guest_range_check(m, s->p_paddr, s->p_memsz) < 0)
                        return boot_fail(e, -ENOMEM, "kernel: ELF segment %u at 0x%" PRIx64 "-0x%" PRIx64 " lies outside guest RAM (%" PRIu64 " MiB)",
                                         i, (uint64_t) s->p_paddr, (uint64_t) (s->p_paddr + s->p_memsz), m->size / MiB);

                /* vmlinux links at virtual addresses; the entry runs with
                 * paging identity-mapped, so translate it to physical. */
                if (eh.e_entry >= s->p_vaddr && eh.e_entry - s->p_vaddr < s->p_memsz)
                        entry = eh.e_entry - s->p_vaddr + s->p_paddr;
                else if (entry == UINT64_MAX && eh.e_entry >= s->p_paddr && eh.e_entry - s->p_paddr < s->p_memsz)
                        entry = eh.e_entry;
                lo = MIN(lo, (uint64_t) s->p_paddr);
                hi = MAX(hi, (uint64_t) (s->p_paddr + s->p_memsz));
                if ((s->p_flags & PF_X) && !add_overflows_u64(s->p_vaddr, s->p_memsz)) {
                        text_lo = MIN(text_lo, (uint64_t) s->p_vaddr);
                        text_hi = MAX(text_hi, (uint64_t) (s->p_vaddr + s->p_memsz));
                }
                n_load++;
        }
        if (n_load == 0)
                return boot_fail(e, -ENOEXEC, "kernel: ELF has no loadable segment");
        if (entry == UINT64_MAX)
                return boot_fail(e, -ENOEXEC, "kernel: ELF entry 0x%" PRIx64 " is in no loadable segment", (uint64_t) eh.e_entry);

        for (unsigned i = 0; i < eh.e_phnum; i++) {
                const Elf64_Phdr *s = &ph[i];

                if (s->p_type != PT_LOAD || s->p_memsz == 0)
                        continue;
                r = guest_write(m, s->p_paddr, p + s->p_offset, s->p_filesz);
                if (r >= 0)
                        r = guest_zero(m, s->p_paddr + s->p_filesz, s->p_memsz - s->p_filesz);
                if (r < 0)
                        return boot_fail(e, r, "kernel: cannot write ELF segment %u", i);
        }

        l->entry = entry;
        l->kernel_start = lo;
        l->kernel_end = hi;
        if (text_lo < text_hi) {
                l->text_start = text_lo;
                l->text_end = text_hi;
        }
        return 0;
}

/* The header a bzImage would carry, for kernels that come without one. */
static void synthetic_header(struct setup_header *h) {
        *h = (struct setup_header) {
                .boot_flag = BOOT_FLAG_MAGIC,
                .header = HDRS_MAGIC,
                .version = PROTO(2, 15),
                .loadflags = LOADED_HIGH | CAN_USE_HEAP,
                .kernel_alignment = 2 * MiB,
                .initrd_addr_max = 0x7fffffff,  /* what x86-64 kernels declare */
                .cmdline_size = LAYOUT_CMDLINE_MAX - 1,
                .xloadflags = XLF_KERNEL_64,
        };
}

static bool is_bzimage(const uint8_t *k, size_t n) {
        uint16_t flag;
        uint32_t magic;

        if (n < BZ_MIN_SIZE)
                return false;
        memcpy(&flag, k + 0x1fe, sizeof(flag));
        memcpy(&magic, k + 0x202, sizeof(magic));
        return flag == BOOT_FLAG_MAGIC || magic == HDRS_MAGIC;
}

/* Reads and validates the setup header; returns the setup part's size. */
static int bzimage_header(const uint8_t *k, size_t n, struct setup_header *h, size_t *ret_setup, BootError *e) {
        size_t len, setup;

        /* The header ends where the jump at 0x200 lands: 0x202 + k[0x201]. */
        len = MIN(0x202 + (size_t) k[BZ_JUMP_OFFSET] - BZ_HDR_OFFSET, sizeof(*h));
        if (n < BZ_HDR_OFFSET + len)
                return boot_fail(e, -ENOEXEC, "kernel: truncated, %zu bytes end inside the setup header", n);
        memset(h, 0, sizeof(*h));
        memcpy(h, k + BZ_HDR_OFFSET, len);

        if (h->boot_flag != BOOT_FLAG_MAGIC)
                return boot_fail(e, -ENOEXEC, "kernel: bzImage boot signature 0x%04x, want 0xaa55", h->boot_flag);
        if (h->header != HDRS_MAGIC)
                return boot_fail(e, -ENOEXEC, "kernel: bzImage has no \"HdrS\" setup header magic");
        if (h->version < MIN_VERSION)
                return boot_fail(e, -ENOEXEC, "kernel: setup header version 0x%x too old, need >= 0x%x",
                                 h->version, MIN_VERSION);

        setup = ((size_t) (h->setup_sects ?: BZ_DEFAULT_SETUP_SECTS) + 1) * 512;
        if (setup >= n)
                return boot_fail(e, -ENOEXEC, "kernel: truncated, %zu bytes but the setup code alone is %zu", n, setup);
        /* syssize counts 16-byte paragraphs of the protected-mode part. */
        if ((uint64_t) h->syssize * 16 > n - setup)
                return boot_fail(e, -ENOEXEC, "kernel: truncated, protected-mode part is %zu bytes, the header says %" PRIu64,
                                 n - setup, (uint64_t) h->syssize * 16);
        if (!(h->xloadflags & XLF_KERNEL_64))
                return boot_fail(e, -ENOEXEC, "kernel: bzImage has no 64-bit entry (XLF_KERNEL_64 not in xloadflags 0x%x)",
                                 h->xloadflags);
        if (h->relocatable_kernel && (h->kernel_alignment == 0 || (h->kernel_alignment & (h->kernel_alignment - 1))))
                return boot_fail(e, -ENOEXEC, "kernel: kernel_alignment 0x%x is not a power of two", h->kernel_alignment);

        *ret_setup = setup;
        return 0;
}

/* Returns 1 when the payload was decompressed and loaded, 0 when the codec is
 * unknown and the caller should boot the bzImage as is. */
static int bzimage_decompress(GuestMemory *m, const uint8_t *pm, size_t pm_size, Loaded *l, BootError *e) {
        _cleanup_free_ void *vmlinux = NULL;
        const struct setup_header *h = &l->hdr;
        size_t size;
        BootCodec codec;
        int r;

        if (h->payload_length == 0 || h->payload_offset > pm_size || h->payload_length > pm_size - h->payload_offset)
                return 0;
        codec = boot_codec_detect(pm + h->payload_offset, h->payload_length);
        r = boot_decompress(codec, pm + h->payload_offset, h->payload_length, BOOT_DECOMPRESS_MAX, &vmlinux, &size);
        if (r == -EOPNOTSUPP)
                return 0;
        if (r == -EFBIG)
                return boot_fail(e, -EBADMSG, "kernel: %s payload decompresses to more than %" PRIu64 " MiB",
                                 boot_codec_to_string(codec), BOOT_DECOMPRESS_MAX / MiB);
        if (r == -ENOMEM)
                return boot_fail(e, r, "kernel: out of memory decompressing the %s payload", boot_codec_to_string(codec));
        if (r < 0)
                return boot_fail(e, -EBADMSG, "kernel: %s payload is corrupt", boot_codec_to_string(codec));

        /* The payload is vmlinux.bin, an ELF, possibly followed by vmlinux.relocs,
         * which a kernel loaded at its link address does not need. */
        if (size < SELFMAG || memcmp(vmlinux, ELFMAG, SELFMAG) != 0)
                return boot_fail(e, -ENOEXEC, "kernel: %s payload is not an ELF vmlinux", boot_codec_to_string(codec));
        r = elf_load(m, vmlinux, size, l, e);
        if (r < 0)
                return r;
        l->hdr.code32_start = (uint32_t) l->kernel_start;
        l->kind = BOOT_KIND_BZIMAGE_DECOMPRESSED;
        return 1;
}

static int bzimage_load(GuestMemory *m, const BootConfig *c, Loaded *l, BootError *e) {
        const uint8_t *k = c->kernel;
        struct setup_header *h = &l->hdr;
        uint64_t align, load, buffer, init_size;
        const uint8_t *pm;
        size_t setup = 0, pm_size;
        int r;

        r = bzimage_header(k, c->kernel_size, h, &setup, e);
        if (r < 0)
                return r;
        pm = k + setup;
        pm_size = c->kernel_size - setup;

        if (c->decompress) {
                r = bzimage_decompress(m, pm, pm_size, l, e);
                if (r != 0)
                        return r < 0 ? r : 0;
        }

        /* The decompressor stub unpacks in place into [buffer, buffer + init_size):
         * a relocatable kernel at its load address aligned up to kernel_alignment
         * but not below pref_address (LOAD_PHYSICAL_ADDR), a fixed one at
         * pref_address (arch/x86/boot/compressed/head_64.S). */
        init_size = MAX((uint64_t) h->init_size, (uint64_t) pm_size);
        align = h->relocatable_kernel ? h->kernel_alignment : 1;
        if (h->relocatable_kernel && IS_ALIGNED(h->pref_address, align) && h->pref_address >= LAYOUT_HIMEM &&
            !add_overflows_u64(h->pref_address, init_size) &&
            guest_range_check(m, h->pref_address, init_size) == 0)
                load = h->pref_address;
        else
                load = ALIGN_UP((uint64_t) LAYOUT_HIMEM, align);
        buffer = h->relocatable_kernel ? MAX(load, h->pref_address) : h->pref_address;

        if (guest_range_check(m, load, pm_size) < 0)
                return boot_fail(e, -ENOMEM, "kernel: %zu bytes at 0x%" PRIx64 " do not fit in guest RAM (%" PRIu64 " MiB)",
                                 pm_size, load, m->size / MiB);
        if (add_overflows_u64(buffer, init_size) || guest_range_check(m, buffer, init_size) < 0)
                return boot_fail(e, -ENOMEM, "kernel: init_size 0x%" PRIx64 " from 0x%" PRIx64 " does not fit in guest RAM (%" PRIu64 " MiB)",
                                 init_size, buffer, m->size / MiB);
        r = guest_write(m, load, pm, pm_size);
        if (r < 0)
                return boot_fail(e, r, "kernel: cannot write the protected-mode part");

        h->code32_start = (uint32_t) load;
        l->entry = load + BZ_ENTRY_64;
        l->kernel_start = load;
        l->kernel_end = MAX(load + pm_size, buffer + init_size);
        l->kind = BOOT_KIND_BZIMAGE;
        return 0;
}

static int cmdline_write(GuestMemory *m, struct setup_header *h, const char *cmdline, BootError *e) {
        size_t len = cmdline ? strlen(cmdline) : 0, limit;
        int r;

        /* cmdline_size excludes the NUL; our own area includes it. */
        limit = h->version >= PROTO(2, 6) ? h->cmdline_size : CMDLINE_SIZE_LEGACY;
        limit = MIN(limit, (size_t) LAYOUT_CMDLINE_MAX - 1);
        if (len > limit)
                return boot_fail(e, -E2BIG, "cmdline: %zu bytes is longer than the %zu the kernel accepts", len, limit);

        r = guest_write(m, LAYOUT_CMDLINE, cmdline ?: "", len + 1);
        if (r < 0)
                return boot_fail(e, r, "cmdline: cannot write it at 0x%x", LAYOUT_CMDLINE);
        h->cmd_line_ptr = LAYOUT_CMDLINE;
        return 0;
}

/* As high as allowed in low RAM, page-aligned, above the kernel. */
static int initrd_load(GuestMemory *m, const BootConfig *c, const Loaded *l, uint64_t *ret_start, BootError *e) {
        uint64_t top, start, floor;
        int r;

        if (!c->initrd || c->initrd_size == 0) {
                *ret_start = 0;
                return 0;
        }
        if (c->initrd_size >= m->size)
                return boot_fail(e, -ENOMEM, "initrd: %zu bytes is larger than guest RAM (%" PRIu64 " MiB)",
                                 c->initrd_size, m->size / MiB);

        /* initrd_addr_max is the highest address the initrd may occupy. */
        top = MIN((uint64_t) (l->hdr.initrd_addr_max ?: INITRD_ADDR_MAX_DEFAULT) + 1, low_ram_end(m));
        floor = ALIGN_UP(l->kernel_end, 4 * KiB);
        if (c->initrd_size > top || ALIGN_DOWN(top - c->initrd_size, 4 * KiB) < floor)
                return boot_fail(e, -ENOMEM, "initrd: %zu bytes do not fit between the kernel end 0x%" PRIx64 " and 0x%" PRIx64,
                                 c->initrd_size, floor, top);
        start = ALIGN_DOWN(top - c->initrd_size, 4 * KiB);

        r = guest_write(m, start, c->initrd, c->initrd_size);
        if (r < 0)
                return boot_fail(e, r, "initrd: cannot write it at 0x%" PRIx64, start);
        *ret_start = start;
        return 0;
}

static void e820_add(struct boot_params *bp, uint64_t start, uint64_t end, uint32_t type) {
        if (end > start && bp->e820_entries < E820_MAX_ENTRIES_ZEROPAGE)
                bp->e820_table[bp->e820_entries++] = (struct boot_e820_entry) {
                        .addr = start, .size = end - start, .type = type,
                };
}

/* The PC map below 1 MiB, then RAM; the MMIO hole below 4 GiB is left out. */
static void e820_fill(const GuestMemory *m, struct boot_params *bp) {
        uint64_t low = low_ram_end(m);

        e820_add(bp, 0, MIN((uint64_t) LAYOUT_LOW_RAM_END, low), E820_RAM);
        e820_add(bp, LAYOUT_EBDA, MIN(UINT64_C(0xa0000), low), E820_RESERVED);
        e820_add(bp, LAYOUT_BIOS_START, MIN((uint64_t) LAYOUT_HIMEM, low), E820_RESERVED);
        e820_add(bp, LAYOUT_HIMEM, low, E820_RAM);
        for (unsigned i = 1; i < m->n_regions; i++)
                e820_add(bp, m->regions[i].gpa, m->regions[i].gpa + m->regions[i].size, E820_RAM);
}

/* A SETUP_RNG_SEED setup_data entry (protocol 2.09+), as QEMU and crosvm
 * give: Linux credits it (random.trust_bootloader, on by default), so its
 * CRNG is ready from the first instruction. Without it, and without
 * RDRAND, every get_random_*() of the boot re-extracts the input pool with
 * BLAKE2s: a tenth of the rig kernel's boot to /init under this host's
 * emulator (bench/README.md). Returns the entry's address, or 0 when the
 * host gave no randomness: the guest then seeds itself, slowly. */
static uint64_t rng_seed_write(GuestMemory *m) {
        /* Header and data written apart: setup_data ends in a flexible
         * array, which ISO C does not let another struct wrap. */
        struct setup_data h = { .next = 0, .type = SETUP_RNG_SEED, .len = RNG_SEED_BYTES };
        uint8_t seed[RNG_SEED_BYTES];
        uint64_t at = 0;

        if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t) sizeof(seed) &&
            guest_write(m, LAYOUT_SETUP_DATA, &h, sizeof(h)) >= 0 &&
            guest_write(m, LAYOUT_SETUP_DATA + sizeof(h), seed, sizeof(seed)) >= 0)
                at = LAYOUT_SETUP_DATA;
        explicit_bzero(seed, sizeof(seed));
        return at;
}

static int zero_page_write(GuestMemory *m, const Loaded *l, uint64_t initrd_start, uint64_t initrd_size) {
        struct boot_params bp = {};

        bp.hdr = l->hdr;
        bp.hdr.type_of_loader = LOADER_UNDEFINED;
        bp.hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
        bp.hdr.heap_end_ptr = HEAP_END_PTR;
        bp.hdr.ramdisk_image = (uint32_t) initrd_start;
        bp.hdr.ramdisk_size = (uint32_t) initrd_size;
        bp.ext_ramdisk_image = (uint32_t) (initrd_start >> 32);
        bp.ext_ramdisk_size = (uint32_t) (initrd_size >> 32);
        bp.hdr.setup_data = rng_seed_write(m);
        e820_fill(m, &bp);
        return guest_write(m, LAYOUT_ZERO_PAGE, &bp, sizeof(bp));
}

int boot_load(GuestMemory *m, const BootConfig *c, BootInfo *ret, BootError *e) {
        const uint8_t *k = c->kernel;
        Loaded l = {};
        uint64_t initrd_start = 0;
        int r;

        if (!k || c->kernel_size == 0)
                return boot_fail(e, -ENOEXEC, "kernel: file is empty");
        if (c->n_cpus == 0)
                return boot_fail(e, -EINVAL, "no CPUs");
        if (c->n_cpus > boot_max_cpus())
                return boot_fail(e, -E2BIG, "%u CPUs requested, the MP table in the EBDA holds at most %u",
                                 c->n_cpus, boot_max_cpus());
        if (!c->initrd && c->initrd_size > 0)
                return boot_fail(e, -EINVAL, "initrd: size without data");

        if (c->kernel_size >= SELFMAG && memcmp(k, ELFMAG, SELFMAG) == 0) {
                r = elf_load(m, k, c->kernel_size, &l, e);
                if (r < 0)
                        return r;
                synthetic_header(&l.hdr);
                l.hdr.code32_start = (uint32_t) l.kernel_start;
                l.kind = BOOT_KIND_ELF;
        } else if (is_bzimage(k, c->kernel_size))
                r = bzimage_load(m, c, &l, e);
        else if (c->kernel_size < BZ_MIN_SIZE)
                r = boot_fail(e, -ENOEXEC, "kernel: %zu bytes is too short for a bzImage or an ELF", c->kernel_size);
        else
                r = boot_fail(e, -ENOEXEC, "kernel: neither a bzImage (no 0xaa55 and \"HdrS\") nor an ELF");
        if (r < 0)
                return r;

        r = cmdline_write(m, &l.hdr, c->cmdline, e);
        if (r < 0)
                return r;
        r = initrd_load(m, c, &l, &initrd_start, e);
        if (r < 0)
                return r;
        r = zero_page_write(m, &l, initrd_start, initrd_start ? c->initrd_size : 0);
        if (r < 0)
                return boot_fail(e, r, "boot_params: cannot write the zero page at 0x%x", LAYOUT_ZERO_PAGE);
        r = mptable_write(m, c->n_cpus);
        if (r < 0)
                return boot_fail(e, r, "mptable: cannot write it for %u CPUs at 0x%x", c->n_cpus, LAYOUT_MPTABLE);

        *ret = (BootInfo) {
                .entry = l.entry,
                .zero_page = LAYOUT_ZERO_PAGE,
                .kernel_start = l.kernel_start,
                .kernel_end = l.kernel_end,
                .text_start = l.text_start,
                .text_end = l.text_end,
                .initrd_start = initrd_start,
                .initrd_size = initrd_start ? c->initrd_size : 0,
                .kind = l.kind,
        };
        return 0;
}
