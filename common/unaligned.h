/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Little-endian values at any byte offset: wire messages, PCI
 * configuration space, device registers, compressed-kernel trailers.
 * memcpy keeps unaligned access defined; <endian.h> converts. Never cast
 * a byte buffer to a wider type. */

#include <endian.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline uint16_t get_le16(const void *p) {
        uint16_t v;

        memcpy(&v, p, sizeof(v));
        return le16toh(v);
}

static inline uint32_t get_le32(const void *p) {
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return le32toh(v);
}

static inline uint64_t get_le64(const void *p) {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return le64toh(v);
}

static inline void put_le16(void *p, uint16_t v) {
        v = htole16(v);
        memcpy(p, &v, sizeof(v));
}

static inline void put_le32(void *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, sizeof(v));
}

static inline void put_le64(void *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, sizeof(v));
}

/* The first size bytes (at most 8) of a little-endian value: a register
 * access of 1, 2, 4 or 8 bytes, or a 3-byte PCI class code. */
static inline uint64_t get_le(const void *p, unsigned size) {
        const uint8_t *b = (const uint8_t *) p;
        uint64_t v = 0;

        for (unsigned i = 0; i < size && i < 8; i++)
                v |= (uint64_t) b[i] << (8 * i);
        return v;
}

static inline void put_le(void *p, unsigned size, uint64_t v) {
        uint8_t *b = (uint8_t *) p;

        for (unsigned i = 0; i < size && i < 8; i++)
                b[i] = (uint8_t) (v >> (8 * i));
}

#ifdef __cplusplus
}
#endif
