/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* x86-64 direct boot per the Linux boot protocol (Documentation/arch/x86/boot.rst):
 * loads a bzImage or an ELF vmlinux, the initrd and the command line into guest
 * memory and writes boot_params (the "zero page"), the e820 map and an MP table.
 * The GDT, page tables and registers are the vCPU code's job: it enters the
 * guest in long mode at BootInfo.entry with RSI = BootInfo.zero_page. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum BootKind {
        BOOT_KIND_BZIMAGE,              /* entered at the 64-bit entry of the decompressor stub */
        BOOT_KIND_ELF,                  /* an ELF vmlinux (or one of our test guests) */
        BOOT_KIND_BZIMAGE_DECOMPRESSED, /* a bzImage whose payload the VMM decompressed */
        _BOOT_KIND_MAX,
        _BOOT_KIND_INVALID = -EINVAL,
} BootKind;

#define BOOT_MAX_CPUS 254                  /* APIC ids 0..253, the IOAPIC takes the next */
#define BOOT_DECOMPRESS_MAX (512 * MiB)    /* cap on a decompressed bzImage payload */
#define BOOT_REASON_MAX 192

typedef struct BootConfig {
        const void *kernel;             /* whole kernel file in host memory */
        size_t kernel_size;
        const void *initrd;             /* may be NULL/0 */
        size_t initrd_size;
        const char *cmdline;            /* may be NULL */
        unsigned n_cpus;                /* 1..boot_max_cpus(), for the MP table */
        bool decompress;                /* decompress a bzImage on the host; falls back
                                         * to a normal bzImage boot for unknown codecs */
} BootConfig;

typedef struct BootInfo {
        uint64_t entry;                 /* guest-physical 64-bit entry point, RIP */
        uint64_t zero_page;             /* guest-physical boot_params, goes in RSI */
        uint64_t kernel_start, kernel_end; /* includes the bzImage's init_size */
        uint64_t text_start, text_end;  /* guest-virtual span of the ELF's executable
                                         * segments; 0, 0 for a bzImage booted as is */
        uint64_t initrd_start, initrd_size;
        BootKind kind;
} BootInfo;

/* Why boot_load() failed, one line for a human, e.g.
 * "kernel: setup header version 0x201 too old, need >= 0x20c". */
typedef struct BootError {
        char reason[BOOT_REASON_MAX];
} BootError;

/* Loads kernel (+initrd, cmdline) into m, writes boot_params, e820 and the MP
 * table. Returns 0, or -errno and fills *error (may be NULL):
 *   -E2BIG    what the user asked does not fit: cmdline longer than the kernel
 *             accepts, more CPUs than boot_max_cpus()
 *   -EINVAL   bad arguments (0 CPUs, initrd size without data)
 *   -ENOEXEC  empty, not a bzImage/ELF, truncated, unsupported header or ELF
 *   -ENOMEM   kernel, init_size or initrd do not fit in guest RAM
 *   -EBADMSG  corrupt compressed payload
 * On failure *ret is untouched but guest memory may have been written. */
int boot_load(GuestMemory *m, const BootConfig *c, BootInfo *ret, BootError *error);

/* Most CPUs whose MP table fits in the EBDA (less than BOOT_MAX_CPUS). */
unsigned boot_max_cpus(void);

const char *boot_kind_to_string(BootKind k);
BootKind boot_kind_from_string(const char *s);

#ifdef __cplusplus
}
#endif
