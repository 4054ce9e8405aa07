/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Enum <-> string tables: one lookup for every `*_to_string` and
 * `*_from_string` pair. A table is a `static const char *const []`
 * indexed by the enum (designated initializers; holes are NULL). */

#include <stddef.h>

#include "common/macro.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The index of s in table[0..n), or -EINVAL when s is NULL or not there.
 * NULL entries (holes) never match. */
int string_table_lookup(const char *const *table, size_t n, const char *s);

/* table[i], or NULL when i is out of range (a negative i too) or a hole. */
static inline const char *string_table_get(const char *const *table, size_t n, long long i) {
        return i >= 0 && (unsigned long long) i < n ? table[i] : NULL;
}

/* Defines `const char *name##_to_string(type)` over table. */
#define DEFINE_STRING_TABLE_TO_STRING(name, type, table)                             \
        const char *name##_to_string(type i) {                                        \
                return string_table_get(table, ARRAY_SIZE(table), (long long) i);     \
        }

/* Defines `type name##_from_string(const char *)`, which returns invalid
 * for a NULL or unknown string. */
#define DEFINE_STRING_TABLE_FROM_STRING(name, type, table, invalid)                  \
        type name##_from_string(const char *s) {                                      \
                int i = string_table_lookup(table, ARRAY_SIZE(table), s);             \
                return i < 0 ? (invalid) : (type) i;                                  \
        }

/* Both, the systemd way: from_string returns int, the index or -EINVAL. */
#define DEFINE_STRING_TABLE(name, type, table)                                       \
        DEFINE_STRING_TABLE_TO_STRING(name, type, table)                              \
        DEFINE_STRING_TABLE_FROM_STRING(name, int, table, -EINVAL)

#ifdef __cplusplus
}
#endif
