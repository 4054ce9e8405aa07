/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macro.h"
#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Guest-physical layout (x86): RAM from 0, a hole for MMIO below 4 GiB,
 * the rest of RAM above 4 GiB. */
#define GUEST_MMIO_HOLE_START UINT64_C(0xc0000000)
#define GUEST_MMIO_HOLE_END UINT64_C(0x100000000)
#define GUEST_MAX_REGIONS 2
#define GUEST_MEM_ALIGN MiB
#define GUEST_MEM_MAX VMM_CONFIG_MEM_MAX

typedef struct GuestRegion {
        uint64_t gpa;
        uint64_t size;
        uint64_t offset; /* into the memfd */
        uint8_t *host;
} GuestRegion;

typedef struct GuestMemory {
        int memfd;
        uint8_t *base; /* the whole memfd, mapped shared */
        uint64_t size; /* bytes of RAM */
        GuestRegion regions[GUEST_MAX_REGIONS];
        unsigned n_regions;
} GuestMemory;

/* size: non-zero multiple of GUEST_MEM_ALIGN, at most GUEST_MEM_MAX. */
int guest_memory_new(uint64_t size, GuestMemory **ret);
GuestMemory *guest_memory_free(GuestMemory *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(GuestMemory *, guest_memory_free);

/* One past the highest guest-physical RAM address. */
uint64_t guest_memory_end(const GuestMemory *m);

/* 0 if [gpa, gpa+len) lies inside one RAM region, -EFAULT otherwise
 * (outside RAM, straddling the hole, or wrapping). len 0 is checked as 1. */
int guest_range_check(const GuestMemory *m, uint64_t gpa, uint64_t len);

/* Host pointer for a checked range inside one region, or -EFAULT. */
int guest_slice(const GuestMemory *m, uint64_t gpa, uint64_t len, void **ret);

int guest_read(const GuestMemory *m, uint64_t gpa, void *dst, size_t len);
int guest_write(const GuestMemory *m, uint64_t gpa, const void *src, size_t len);
int guest_zero(const GuestMemory *m, uint64_t gpa, size_t len);

#ifdef __cplusplus
}
#endif
