/* SPDX-License-Identifier: BSD-3-Clause */
/* The few libc functions the compiler and the guests need. */

#include "rt.h"

void *memset(void *d, int c, size_t n)
{
        /* rep stos: one emulated instruction instead of a loop. */
        void *p = d;
        __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
        return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
        void *dp = d;
        __asm__ volatile("rep movsb" : "+D"(dp), "+S"(s), "+c"(n) : : "memory");
        return d;
}

void *memmove(void *d, const void *s, size_t n)
{
        unsigned char *dp = d;
        const unsigned char *sp = s;

        if (dp <= sp || dp >= sp + n)
                return memcpy(d, s, n);
        while (n--)
                dp[n] = sp[n];
        return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
        const unsigned char *x = a, *y = b;

        for (size_t i = 0; i < n; i++)
                if (x[i] != y[i])
                        return x[i] < y[i] ? -1 : 1;
        return 0;
}

size_t strlen(const char *s)
{
        size_t n = 0;

        while (s[n])
                n++;
        return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (a[i] != b[i])
                        return (unsigned char) a[i] < (unsigned char) b[i] ? -1 : 1;
                if (!a[i])
                        return 0;
        }
        return 0;
}

const char *parse_u64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;
        unsigned base = 10;
        bool any = false;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                s += 2;
        }
        for (;; s++) {
                unsigned d;

                if (*s >= '0' && *s <= '9')
                        d = *s - '0';
                else if (base == 16 && *s >= 'a' && *s <= 'f')
                        d = *s - 'a' + 10;
                else if (base == 16 && *s >= 'A' && *s <= 'F')
                        d = *s - 'A' + 10;
                else
                        break;
                v = v * base + d;
                any = true;
        }
        if (!any)
                return NULL;
        switch (*s) {
        case 'K': case 'k': v <<= 10; s++; break;
        case 'M': case 'm': v <<= 20; s++; break;
        case 'G': case 'g': v <<= 30; s++; break;
        default: break;
        }
        *ret = v;
        return s;
}

const char *cmdline_get(const char *cmdline, const char *key)
{
        size_t klen = strlen(key);

        for (const char *p = cmdline; *p; ) {
                while (*p == ' ')
                        p++;
                if (!strncmp(p, key, klen) && p[klen] == '=')
                        return p + klen + 1;
                while (*p && *p != ' ')
                        p++;
        }
        return NULL;
}
