/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/util.h"

/* A decimal number at the start of s: digits only (no sign, no spaces). */
static int parse_leading_u64(const char *s, char **end, unsigned long long *ret) {
        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        *ret = strtoull(s, end, 10);
        return errno == ERANGE ? -ERANGE : 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;
        int r;

        r = parse_leading_u64(s, &end, &v);
        if (r < 0)
                return r;
        if (*end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_fd_number(const char *s, int *ret) {
        uint64_t v;
        int r;

        r = parse_uint(s, 0, INT32_MAX, &v);
        if (r < 0)
                return r;
        *ret = (int) v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char suffix;
                unsigned shift;
        } units[] = {
                { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 },
        };
        unsigned long long v;
        unsigned shift = 0;
        char *end;
        int r;

        r = parse_leading_u64(s, &end, &v);
        if (r < 0)
                return r;

        if (*end != '\0') {
                bool found = false;
                for (size_t i = 0; i < ARRAY_SIZE(units); i++)
                        if (toupper((unsigned char) *end) == units[i].suffix) {
                                shift = units[i].shift;
                                found = true;
                        }
                if (!found)
                        return -EINVAL;
                end++;
                if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
                        return -EINVAL;
        }

        if (shift > 0 && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = (uint64_t) v << shift;
        return 0;
}

const char *format_size(char *buf, size_t n, uint64_t bytes) {
        static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        unsigned i = 0;

        while (i + 1 < ARRAY_SIZE(names) && bytes >= 1024 && bytes % 1024 == 0) {
                bytes /= 1024;
                i++;
        }
        snprintf(buf, n, "%" PRIu64 " %s", bytes, names[i]);
        return buf;
}

int read_full_fd(int fd, size_t max, void **ret_data, size_t *ret_size) {
        _cleanup_free_ char *data = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max)
                return -EFBIG;

        for (;;) {
                ssize_t k;

                if (size == allocated) {
                        size_t want = allocated ? allocated * 2 : 64 * 1024;
                        char *p;

                        if (allocated >= max + 1)
                                return -EFBIG;
                        want = MIN(want, max + 1);
                        p = realloc(data, want);
                        if (!p)
                                return -ENOMEM;
                        data = p;
                        allocated = want;
                }
                k = read(fd, data + size, allocated - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += k;
                if (size > max)
                        return -EFBIG;
        }

        *ret_data = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + ts.tv_nsec;
}

int deadline_remaining_ms(uint64_t deadline_ns) {
        uint64_t now;

        if (deadline_ns == UINT64_MAX)
                return -1;
        now = now_ns();
        if (now >= deadline_ns)
                return 0;
        return (int) MIN((deadline_ns - now + 999999) / 1000000, (uint64_t) INT32_MAX);
}

int connect_unix(const char *path, int type, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t l;

        if (!path || !*path)
                return -EINVAL;
        l = strlen(path);
        if (l >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, l + 1);

        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int bind_private(const char *path, int type, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t l;
        mode_t old;
        int r;

        if (!path || !*path || !ret_fd)
                return -EINVAL;
        l = strlen(path);
        if (l >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, l + 1);

        fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        old = umask(0177);
        r = bind(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int listen_private(const char *path, int backlog, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (!path || !ret_fd)
                return -EINVAL;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
        r = bind_private(path, SOCK_STREAM, &fd);
        if (r < 0)
                return r;
        if (listen(fd, backlog) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int accept_first(const char *path, int *ret_fd) {
        struct pollfd p;
        int l, fd, r;

        r = listen_private(path, 1, &l);
        if (r < 0)
                return r;
        p = (struct pollfd) { .fd = l, .events = POLLIN };
        while (poll(&p, 1, -1) < 0)
                if (errno != EINTR) {
                        r = -errno;
                        goto out;
                }
        fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        *ret_fd = fd;
        r = 0;
out:
        (void) unlink(path);
        close(l);
        return r;
}

bool peer_uid_is_allowed(int fd, uid_t owner) {
        struct ucred cred;
        socklen_t l = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0 || l != sizeof(cred))
                return false;
        return cred.uid == owner || cred.uid == 0;
}
