/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "512M", "2G", "4096", "64K": binary units, optional "iB"/"B" suffix.
 * -EINVAL on syntax, -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret);

/* Decimal unsigned integer within [min, max]; -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* A descriptor number (an option's --fd N): 0..INT32_MAX. */
int parse_fd_number(const char *s, int *ret);

/* Formats bytes as "256 MiB" style into buf. */
const char *format_size(char *buf, size_t n, uint64_t bytes);

/* Reads a whole regular file (at most max bytes) through an fd. */
int read_full_fd(int fd, size_t max, void **ret_data, size_t *ret_size);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* Milliseconds left before deadline_ns (now_ns's clock) for poll(),
 * rounded up; 0 once it passed; -1 for UINT64_MAX (no deadline). */
int deadline_remaining_ms(uint64_t deadline_ns);

/* A new Unix socket of type (blocking, O_CLOEXEC) connected to path. */
int connect_unix(const char *path, int type, int *ret_fd);

/* A new Unix socket of type (made non-blocking and O_CLOEXEC) bound to
 * path, its file mode 0600 whatever the umask: connect() needs write
 * permission on the file, so only its owner (and root) can connect. Sets
 * the process-wide umask for the call: only while no other thread may
 * create files. -EADDRINUSE when something is at path already. */
int bind_private(const char *path, int type, int *ret_fd);

/* A listening Unix stream socket at path (non-blocking, O_CLOEXEC) whose
 * file is 0600 (bind_private). A socket file an earlier run left at path
 * is replaced; anything else there is not ours to remove. */
int listen_private(const char *path, int backlog, int *ret_fd);
/* Listens at path (listen_private), waits for the first connection and
 * returns it (blocking, O_CLOEXEC); the socket file is removed once it is
 * taken, or on failure: a device process's --socket PATH. */
int accept_first(const char *path, int *ret_fd);

/* Whether the peer of the connected Unix socket fd runs as owner or as
 * root (SO_PEERCRED, as this process's user namespace sees it). The
 * socket file's mode is the first gate; this one holds even where the
 * file is reachable (a chmod, a directory others can enter). */
bool peer_uid_is_allowed(int fd, uid_t owner);

static inline bool add_overflows_u64(uint64_t a, uint64_t b) {
        return a + b < a;
}

#ifdef __cplusplus
}
#endif
