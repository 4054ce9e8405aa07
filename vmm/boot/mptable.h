/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Intel MultiProcessor Specification 1.4 tables, in the EBDA where Linux's
 * smp_scan_config() looks for them. */

#include <stddef.h>

#include "vmm/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MPTABLE_SPACE 1024      /* LAYOUT_MPTABLE up to 640 KiB */

/* Bytes the floating pointer plus configuration table take for n_cpus. */
size_t mptable_size(unsigned n_cpus);

/* Most CPUs whose table fits in MPTABLE_SPACE. */
unsigned mptable_max_cpus(void);

/* Writes the floating pointer and the "PCMP" table at LAYOUT_MPTABLE and the
 * EBDA segment into the BIOS data area. -EINVAL for 0 CPUs, -E2BIG when the
 * table would not fit, -EFAULT when RAM does not cover the EBDA. */
int mptable_write(GuestMemory *m, unsigned n_cpus);

#ifdef __cplusplus
}
#endif
