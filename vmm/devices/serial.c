/* SPDX-License-Identifier: BSD-3-Clause */
/* A 16550A UART: enough for Linux's 8250 driver (probe, loopback test,
 * FIFO, THRE and receive interrupts) and for polled test guests.
 *
 * What the guest transmits is gathered and written in chunks, never a
 * write() per byte: on a newline, when SERIAL_OUT_BUF bytes wait, after
 * SERIAL_FLUSH_DELAY_MS (the main thread's serial_flush_due), and at the
 * end. Written to a regular file, the output may be capped: before a chunk
 * would take the file past the cap, the file is cut to its newest half.
 * The jailed VMM holds only the descriptor, so it cannot rename the file:
 * the cut is done in place (pread, ftruncate, write on an O_APPEND fd). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "vmm/devices/serial.h"

enum {
        REG_DATA = 0, /* RBR / THR, or DLL with DLAB */
        REG_IER = 1,  /* or DLM with DLAB */
        REG_IIR = 2,  /* FCR on write */
        REG_LCR = 3,
        REG_MCR = 4,
        REG_LSR = 5,
        REG_MSR = 6,
        REG_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_MASK 0x0f
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCD 0x80
#define MSR_DSR 0x20
#define MSR_CTS 0x10

#define SERIAL_OUT_BUF 4096
#define SERIAL_FLUSH_DELAY_MS 10

struct Serial {
        pthread_mutex_t lock;
        int out_fd;
        int rx_space_fd;
        int flush_fd;           /* eventfd: output waits for the delayed flush */
        IrqLine irq;

        uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
        bool thre_pending; /* THR-empty interrupt not yet acknowledged */
        bool irq_high;

        uint8_t rx[SERIAL_RX_FIFO];
        size_t rx_head, rx_len;

        uint8_t out[SERIAL_OUT_BUF];
        size_t out_len;
        uint64_t out_since_usec; /* when out[0] came */
        bool flush_armed;       /* the main thread knows output waits */
        uint64_t out_max;       /* a regular file's cap; 0: none */
        uint64_t out_size;      /* the file's size, as we wrote it */
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int serial_new(int out_fd, int rx_space_fd, IrqLine irq, Serial **ret) {
        Serial *s;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->flush_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->flush_fd < 0) {
                free(s);
                return -errno;
        }
        pthread_mutex_init(&s->lock, NULL);
        s->out_fd = out_fd;
        s->rx_space_fd = rx_space_fd;
        s->irq = irq;
        s->dll = 12; /* 9600 baud, as after a BIOS */
        *ret = s;
        return 0;
}

int serial_set_output_max(Serial *s, uint64_t max_bytes) {
        struct stat st;
        int flags;

        if (max_bytes > 0 && max_bytes < SERIAL_OUTPUT_MAX_MIN)
                return -EINVAL;
        if (s->out_fd < 0 || max_bytes == 0)
                return 0;
        if (fstat(s->out_fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return 0; /* a pipe, socket or terminal fills nothing */
        /* After the cut (ftruncate) writes must land at the new end. */
        flags = fcntl(s->out_fd, F_GETFL);
        if (flags < 0 || fcntl(s->out_fd, F_SETFL, flags | O_APPEND) < 0)
                return -errno;
        pthread_mutex_lock(&s->lock);
        s->out_max = max_bytes;
        s->out_size = (uint64_t) st.st_size;
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* Keeps the newest half of the capped file. On a failed read the old
 * output goes rather than the cap. */
static void output_cut_locked(Serial *s) {
        uint64_t keep = MIN(s->out_size, s->out_max / 2 - SERIAL_OUT_BUF);
        uint8_t *buf = keep > 0 ? malloc(keep) : NULL;
        size_t got = 0, put = 0;

        while (buf && got < keep) {
                ssize_t k = pread(s->out_fd, buf + got, keep - got, (off_t) (s->out_size - keep + got));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        if (ftruncate(s->out_fd, 0) < 0) {
                free(buf);
                return;
        }
        s->out_size = 0;
        while (put < got) {
                ssize_t k = write(s->out_fd, buf + put, got - put);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                put += (size_t) k;
        }
        s->out_size = put;
        free(buf);
}

static void output_flush_locked(Serial *s) {
        size_t done = 0;

        if (s->out_len == 0)
                return;
        if (s->out_max > 0 && s->out_size + s->out_len > s->out_max)
                output_cut_locked(s);
        while (done < s->out_len) {
                ssize_t k = write(s->out_fd, s->out + done, s->out_len - done);
                if (k < 0 && errno == EINTR)
                        continue;
                /* A reader that went away must not stop the guest: the
                 * output is lost. */
                if (k <= 0)
                        break;
                done += (size_t) k;
        }
        s->out_size += done;
        s->out_len = 0;
}

void serial_flush(Serial *s) {
        pthread_mutex_lock(&s->lock);
        output_flush_locked(s);
        pthread_mutex_unlock(&s->lock);
}

int serial_flush_fd(Serial *s) {
        return s->flush_fd;
}

int serial_flush_due(Serial *s) {
        uint64_t v, now;
        int ms = -1;

        (void) !read(s->flush_fd, &v, sizeof(v));
        pthread_mutex_lock(&s->lock);
        now = now_usec();
        if (s->out_len > 0 && now >= s->out_since_usec + SERIAL_FLUSH_DELAY_MS * 1000)
                output_flush_locked(s);
        if (s->out_len > 0)
                ms = (int) ((s->out_since_usec + SERIAL_FLUSH_DELAY_MS * 1000 - now + 999) / 1000);
        /* Idle: the next byte wakes us through flush_fd. */
        s->flush_armed = s->out_len > 0;
        pthread_mutex_unlock(&s->lock);
        return ms;
}

Serial *serial_free(Serial *s) {
        if (!s)
                return NULL;
        serial_flush(s);
        safe_close(s->flush_fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

static uint8_t iir_locked(const Serial *s) {
        uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0;

        if ((s->ier & IER_RDI) && s->rx_len > 0)
                return fifo | IIR_RDI;
        if ((s->ier & IER_THRI) && s->thre_pending)
                return fifo | IIR_THRI;
        return fifo | IIR_NO_INT;
}

/* ISA interrupts are edge-triggered: pulse the line when an interrupt
 * condition appears, so every new condition is seen once. */
static void update_irq_locked(Serial *s) {
        bool high = !(iir_locked(s) & IIR_NO_INT);

        if (high && !s->irq_high) {
                irq_line_set(&s->irq, true);
                irq_line_set(&s->irq, false);
        }
        s->irq_high = high;
}

static void rx_push_locked(Serial *s, uint8_t c) {
        if (s->rx_len == SERIAL_RX_FIFO)
                return; /* overrun: the byte is lost, as on hardware */
        s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_FIFO] = c;
        s->rx_len++;
}

static void transmit_locked(Serial *s, uint8_t c) {
        if (s->mcr & MCR_LOOP) {
                rx_push_locked(s, c);
                return;
        }
        if (s->out_fd < 0)
                return;
        if (s->out_len == 0)
                s->out_since_usec = now_usec();
        s->out[s->out_len++] = c;
        if (c == '\n' || s->out_len == sizeof(s->out))
                output_flush_locked(s);
        else if (!s->flush_armed) {
                s->flush_armed = true;
                (void) !write(s->flush_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        }
}

static uint8_t msr_locked(const Serial *s) {
        if (s->mcr & MCR_LOOP) {
                /* 16550 loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
                return ((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) |
                       ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4);
        }
        return MSR_DCD | MSR_DSR | MSR_CTS;
}

static void serial_read(void *dev, uint64_t offset, uint8_t *data, unsigned size) {
        Serial *s = dev;
        uint8_t v = 0;
        bool drained = false;

        pthread_mutex_lock(&s->lock);
        switch (offset) {
        case REG_DATA:
                if (s->lcr & LCR_DLAB)
                        v = s->dll;
                else if (s->rx_len > 0) {
                        v = s->rx[s->rx_head];
                        s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
                        s->rx_len--;
                        drained = s->rx_len == 0;
                }
                break;
        case REG_IER:
                v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
                break;
        case REG_IIR:
                v = iir_locked(s);
                /* Reading IIR acknowledges a THRE interrupt it reports. */
                if ((v & 0x0f) == IIR_THRI)
                        s->thre_pending = false;
                break;
        case REG_LCR:
                v = s->lcr;
                break;
        case REG_MCR:
                v = s->mcr;
                break;
        case REG_LSR:
                v = LSR_THRE | LSR_TEMT | (s->rx_len > 0 ? LSR_DR : 0);
                break;
        case REG_MSR:
                v = msr_locked(s);
                break;
        case REG_SCR:
                v = s->scr;
                break;
        }
        update_irq_locked(s);
        pthread_mutex_unlock(&s->lock);

        if (drained && s->rx_space_fd >= 0)
                (void) !write(s->rx_space_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        memset(data, 0, size);
        data[0] = v;
}

static void serial_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size) {
        Serial *s = dev;
        uint8_t v = data[0];

        pthread_mutex_lock(&s->lock);
        switch (offset) {
        case REG_DATA:
                if (s->lcr & LCR_DLAB)
                        s->dll = v;
                else {
                        transmit_locked(s, v);
                        /* Sent at once: the THR is empty again. */
                        s->thre_pending = true;
                        s->irq_high = false;
                }
                break;
        case REG_IER:
                if (s->lcr & LCR_DLAB)
                        s->dlm = v;
                else {
                        if ((v & IER_THRI) && !(s->ier & IER_THRI))
                                s->thre_pending = true;
                        s->ier = v & IER_MASK;
                }
                break;
        case REG_IIR:
                s->fcr = v;
                if (v & FCR_CLEAR_RX)
                        s->rx_head = s->rx_len = 0;
                break;
        case REG_LCR:
                s->lcr = v;
                break;
        case REG_MCR:
                s->mcr = v & 0x1f;
                break;
        case REG_SCR:
                s->scr = v;
                break;
        }
        update_irq_locked(s);
        pthread_mutex_unlock(&s->lock);
}

size_t serial_input(Serial *s, const uint8_t *data, size_t len) {
        size_t n;

        pthread_mutex_lock(&s->lock);
        n = MIN(len, SERIAL_RX_FIFO - s->rx_len);
        for (size_t i = 0; i < n; i++)
                rx_push_locked(s, data[i]);
        update_irq_locked(s);
        pthread_mutex_unlock(&s->lock);
        return n;
}

size_t serial_rx_space(Serial *s) {
        size_t n;

        pthread_mutex_lock(&s->lock);
        n = SERIAL_RX_FIFO - s->rx_len;
        pthread_mutex_unlock(&s->lock);
        return n;
}

const BusDeviceOps serial_bus_ops = {
        .name = "serial",
        .read = serial_read,
        .write = serial_write,
};
