/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "512M", "2G", "4096", "64K": binary units, optional "iB"/"B" suffix.
 * -EINVAL on syntax, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret);

/* Decimal unsigned integer within [min, max]; -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Formats bytes as "256 MiB" style into buf. */
const char *format_size(char *buf, size_t n, uint64_t bytes);

/* Reads a whole regular file (at most max bytes) through an fd. */
int read_full_fd(int fd, size_t max, void **ret_data, size_t *ret_size);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

static inline bool add_overflows_u64(uint64_t a, uint64_t b) {
        return a + b < a;
}

#ifdef __cplusplus
}
#endif
