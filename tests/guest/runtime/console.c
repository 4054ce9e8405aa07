/* SPDX-License-Identifier: BSD-3-Clause */
/* Polled 16550 output, printf, and the TEST/verdict protocol. */

#include "rt.h"

#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20

static volatile int print_lock;
static unsigned tests_run, tests_failed;

void serial_init(void)
{
        outb(PORT_COM1 + UART_IER, 0);
        outb(PORT_COM1 + UART_LCR, 0x03);       /* 8N1, DLAB off */
        outb(PORT_COM1 + UART_FCR, 0x07);       /* FIFOs on and cleared */
        outb(PORT_COM1 + UART_MCR, 0x03);       /* DTR, RTS */
}

void serial_putc(char c)
{
        /* Bounded: a VMM that never sets THRE must not hang the guest. */
        for (unsigned i = 0; i < 100000; i++)
                if (inb(PORT_COM1 + UART_LSR) & LSR_THRE)
                        break;
        outb(PORT_COM1 + UART_THR, c);
}

void serial_puts(const char *s)
{
        while (*s)
                serial_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, int width, char pad, bool neg)
{
        char buf[24];
        int n = 0;

        do {
                buf[n++] = "0123456789abcdef"[v % base];
                v /= base;
        } while (v);
        if (neg)
                buf[n++] = '-';
        while (width-- > n)
                serial_putc(pad);
        while (n)
                serial_putc(buf[--n]);
}

static void lock(void)
{
        while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
                pause();
}

static void unlock(void)
{
        __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static int vprintf_locked(const char *fmt, va_list ap)
{
        for (const char *p = fmt; *p; p++) {
                int width = 0, lng = 0;
                char pad = ' ';

                if (*p != '%') {
                        serial_putc(*p);
                        continue;
                }
                p++;
                if (*p == '0') {
                        pad = '0';
                        p++;
                }
                while (*p >= '0' && *p <= '9')
                        width = width * 10 + (*p++ - '0');
                while (*p == 'l' || *p == 'z') {
                        lng = 1;
                        p++;
                }
                switch (*p) {
                case 'd': {
                        int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
                        put_num(v < 0 ? -(uint64_t) v : (uint64_t) v, 10, width, pad, v < 0);
                        break;
                }
                case 'u':
                        put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad, false);
                        break;
                case 'x':
                        put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad, false);
                        break;
                case 'p':
                        serial_puts("0x");
                        put_num((uintptr_t) va_arg(ap, void *), 16, width, pad, false);
                        break;
                case 'c':
                        serial_putc((char) va_arg(ap, int));
                        break;
                case 's': {
                        const char *s = va_arg(ap, const char *);
                        serial_puts(s ? s : "(null)");
                        break;
                }
                case '%':
                        serial_putc('%');
                        break;
                case '\0':
                        return 0;
                default:
                        serial_putc('%');
                        serial_putc(*p);
                        break;
                }
        }
        return 0;
}

int vprintf(const char *fmt, va_list ap)
{
        int r;

        lock();
        r = vprintf_locked(fmt, ap);
        unlock();
        return r;
}

int printf(const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vprintf(fmt, ap);
        va_end(ap);
        return r;
}

void debug_exit(uint8_t v)
{
        cli();
        outb(PORT_DEBUG_EXIT, v);
        for (;;)
                __asm__ volatile("hlt");
}

void test_report(const char *name, bool pass, const char *fmt, ...)
{
        va_list ap;

        tests_run++;
        if (!pass)
                tests_failed++;
        lock();
        serial_puts("TEST ");
        serial_puts(name);
        serial_puts(pass ? " PASS " : " FAIL ");
        va_start(ap, fmt);
        vprintf_locked(fmt, ap);
        va_end(ap);
        serial_putc('\n');
        unlock();
}

void test_finish(void)
{
        bool ok = tests_run > 0 && tests_failed == 0;

        printf("DONE %u tests, %u failed\n", tests_run, tests_failed);
        debug_exit(ok ? 0 : 1);
}
