/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/memory.h"
#include "common/util.h"

int guest_memory_new(uint64_t size, GuestMemory **ret) {
        _cleanup_(guest_memory_freep) GuestMemory *m = NULL;
        uint64_t low;

        if (size == 0 || !IS_ALIGNED(size, GUEST_MEM_ALIGN) || size > GUEST_MEM_MAX)
                return -EINVAL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->memfd = -EBADF;
        m->base = MAP_FAILED;

        /* A shared memfd, so the balloon can punch holes and device
         * processes can map the same pages. */
        m->memfd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (m->memfd < 0)
                return -errno;
        if (ftruncate(m->memfd, (off_t) size) < 0)
                return -errno;
        m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->memfd, 0);
        if (m->base == MAP_FAILED)
                return -errno;
        (void) madvise(m->base, size, MADV_DONTDUMP);
        m->size = size;

        low = MIN(size, GUEST_MMIO_HOLE_START);
        m->regions[m->n_regions++] = (GuestRegion) {
                .gpa = 0, .size = low, .offset = 0, .host = m->base,
        };
        if (size > low)
                m->regions[m->n_regions++] = (GuestRegion) {
                        .gpa = GUEST_MMIO_HOLE_END,
                        .size = size - low,
                        .offset = low,
                        .host = m->base + low,
                };

        *ret = TAKE_PTR(m);
        return 0;
}

GuestMemory *guest_memory_free(GuestMemory *m) {
        if (!m)
                return NULL;
        if (m->base != MAP_FAILED && m->size > 0)
                munmap(m->base, m->size);
        safe_close(m->memfd);
        free(m);
        return NULL;
}

uint64_t guest_memory_end(const GuestMemory *m) {
        const GuestRegion *r = &m->regions[m->n_regions - 1];
        return r->gpa + r->size;
}

static const GuestRegion *region_for(const GuestMemory *m, uint64_t gpa, uint64_t len) {
        if (len == 0)
                len = 1;
        if (add_overflows_u64(gpa, len))
                return NULL;
        for (unsigned i = 0; i < m->n_regions; i++) {
                const GuestRegion *r = &m->regions[i];
                /* Written so that no sum can wrap: gpa >= r->gpa first. */
                if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
                        return r;
        }
        return NULL;
}

int guest_range_check(const GuestMemory *m, uint64_t gpa, uint64_t len) {
        return region_for(m, gpa, len) ? 0 : -EFAULT;
}

int guest_slice(const GuestMemory *m, uint64_t gpa, uint64_t len, void **ret) {
        const GuestRegion *r = region_for(m, gpa, len);

        if (!r)
                return -EFAULT;
        *ret = r->host + (gpa - r->gpa);
        return 0;
}

int guest_read(const GuestMemory *m, uint64_t gpa, void *dst, size_t len) {
        void *p;
        int r;

        r = guest_slice(m, gpa, len, &p);
        if (r < 0)
                return r;
        memcpy(dst, p, len);
        return 0;
}

int guest_write(const GuestMemory *m, uint64_t gpa, const void *src, size_t len) {
        void *p;
        int r;

        r = guest_slice(m, gpa, len, &p);
        if (r < 0)
                return r;
        memcpy(p, src, len);
        return 0;
}

int guest_zero(const GuestMemory *m, uint64_t gpa, size_t len) {
        void *p;
        int r;

        r = guest_slice(m, gpa, len, &p);
        if (r < 0)
                return r;
        memset(p, 0, len);
        return 0;
}
