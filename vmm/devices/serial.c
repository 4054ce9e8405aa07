/* SPDX-License-Identifier: BSD-3-Clause */
/* A 16550A UART: enough for Linux's 8250 driver (probe, loopback test,
 * FIFO, THRE and receive interrupts) and for polled test guests. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "serial.h"

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

struct Serial {
        pthread_mutex_t lock;
        int out_fd;
        int rx_space_fd;
        IrqLine irq;

        uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
        bool thre_pending; /* THR-empty interrupt not yet acknowledged */
        bool irq_high;

        uint8_t rx[SERIAL_RX_FIFO];
        size_t rx_head, rx_len;
};

int serial_new(int out_fd, int rx_space_fd, IrqLine irq, Serial **ret) {
        Serial *s;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        s->out_fd = out_fd;
        s->rx_space_fd = rx_space_fd;
        s->irq = irq;
        s->dll = 12; /* 9600 baud, as after a BIOS */
        *ret = s;
        return 0;
}

Serial *serial_free(Serial *s) {
        if (!s)
                return NULL;
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
        for (;;) {
                ssize_t k = write(s->out_fd, &c, 1);
                /* A reader that went away must not stop the guest. */
                if (k >= 0 || errno != EINTR)
                        return;
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
