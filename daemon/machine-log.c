/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "daemon/machine-log.h"

/* Length of the UTF-8 sequence at p (n bytes left) and its code point,
 * or 0 when it is not valid UTF-8 (overlong forms, surrogates and values
 * past U+10FFFF included: sd-bus refuses them all). */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *ret) {
        size_t len;
        uint32_t c, min;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0)
                len = 2, c = p[0] & 0x1f, min = 0x80;
        else if ((p[0] & 0xf0) == 0xe0)
                len = 3, c = p[0] & 0x0f, min = 0x800;
        else if ((p[0] & 0xf8) == 0xf0)
                len = 4, c = p[0] & 0x07, min = 0x10000;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return len;
}

char *machine_escape_text(const char *text, size_t n, size_t max) {
        const uint8_t *p = (const uint8_t *) text;
        char *out, *o;

        /* Each input byte takes at most 4 output bytes ("\xNN"). */
        out = malloc(MIN(n, max) * 4 + 4);
        if (!out)
                return NULL;
        o = out;
        for (size_t i = 0; i < n;) {
                char esc[8];
                size_t len;
                uint32_t c = 0;

                len = utf8_decode(p + i, n - i, &c);
                /* C0, DEL and C1 controls move terminals around: escaped,
                 * like bytes that are not UTF-8 and the backslash itself. */
                if (len == 0 || c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\\') {
                        if (len == 1 && c == '\\')
                                snprintf(esc, sizeof(esc), "\\\\");
                        else
                                snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
                        len = 1;
                } else {
                        memcpy(esc, p + i, len);
                        esc[len] = 0;
                }
                if ((size_t) (o - out) + strlen(esc) > max) {
                        strcpy(o, "...");
                        return out;
                }
                o = stpcpy(o, esc);
                i += len;
        }
        *o = 0;
        return out;
}

/* The last "majordome-vmm: ..." line of the VMM's own log, escaped: why it
 * failed. Only the log's tail is read: the daemon's loop never waits on a
 * big file. The guest's console is another file, so guest output cannot
 * pose as the VMM's message. */
char *machine_log_last_vmm_error(const char *vmm_log_path) {
        static const char prefix[] = "majordome-vmm: ";
        _cleanup_close_ int fd = -EBADF;
        char buf[MACHINE_VMM_LOG_TAIL + 1];
        const char *line = NULL, *p, *end;
        struct stat st;
        off_t from;
        ssize_t n;

        fd = open(vmm_log_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return NULL;
        from = st.st_size > MACHINE_VMM_LOG_TAIL ? st.st_size - MACHINE_VMM_LOG_TAIL : 0;
        n = pread(fd, buf, MACHINE_VMM_LOG_TAIL, from);
        if (n <= 0)
                return NULL;
        buf[n] = 0;
        p = buf;
        end = buf + n;
        if (from > 0) {
                /* The first line is cut: start after it. */
                p = memchr(buf, '\n', (size_t) n);
                if (!p)
                        return NULL;
                p++;
        }
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);

                if (len >= strlen(prefix) && memcmp(p, prefix, strlen(prefix)) == 0)
                        line = p;
                p += len + 1;
        }
        if (!line)
                return NULL;
        p = memchr(line, '\n', (size_t) (end - line));
        return machine_escape_text(line + strlen(prefix), (size_t) ((p ?: end) - line) - strlen(prefix),
                                   MACHINE_VMM_ERROR_MAX);
}

