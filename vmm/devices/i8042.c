/* SPDX-License-Identifier: BSD-3-Clause */
/* An i8042 keyboard controller with no keyboard or mouse attached: it
 * answers the controller commands drivers probe with, and its output
 * port's reset line ends the VM (how a guest without ACPI reboots). */
#include <string.h>

#include "vmm/devices/legacy.h"

enum {
        CMD_READ_CTR = 0x20,
        CMD_WRITE_CTR = 0x60,
        CMD_AUX_DISABLE = 0xa7,
        CMD_AUX_ENABLE = 0xa8,
        CMD_AUX_TEST = 0xa9,
        CMD_SELF_TEST = 0xaa,
        CMD_KBD_TEST = 0xab,
        CMD_KBD_DISABLE = 0xad,
        CMD_KBD_ENABLE = 0xae,
        CMD_READ_OUTPUT_PORT = 0xd0,
        CMD_WRITE_OUTPUT_PORT = 0xd1,
        CMD_PULSE_RESET = 0xfe,
};

#define STATUS_OBF 0x01
#define STATUS_SYSTEM 0x04
#define STATUS_CMD 0x08
#define OUTPUT_PORT_RESET 0x01 /* active low: 0 holds the CPU in reset */

void i8042_init(I8042 *k, PlatformEventFn reset, void *userdata) {
        memset(k, 0, sizeof(*k));
        pthread_mutex_init(&k->lock, NULL);
        k->ctr = 0x30; /* both ports disabled, no interrupts */
        k->reset = reset;
        k->userdata = userdata;
}

static void push_locked(I8042 *k, uint8_t v) {
        if (k->out_len < I8042_BUF) {
                k->out[(k->out_head + k->out_len) % I8042_BUF] = v;
                k->out_len++;
        }
}

static void i8042_read(void *dev, uint64_t offset, uint8_t *data, unsigned size) {
        I8042 *k = dev;

        memset(data, 0, size);
        if (offset != 0 && offset != 4)
                return;
        pthread_mutex_lock(&k->lock);
        if (offset == 0) {
                if (k->out_len > 0) {
                        data[0] = k->out[k->out_head];
                        k->out_head = (k->out_head + 1) % I8042_BUF;
                        k->out_len--;
                }
        } else
                data[0] = STATUS_SYSTEM | (k->pending_cmd ? STATUS_CMD : 0) |
                          (k->out_len > 0 ? STATUS_OBF : 0);
        pthread_mutex_unlock(&k->lock);
}

static void i8042_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size) {
        I8042 *k = dev;
        bool reset = false;
        uint8_t v = data[0];

        if (offset != 0 && offset != 4)
                return;
        pthread_mutex_lock(&k->lock);
        if (offset == 0) {
                /* Data port: the argument of a pending command, or a byte for
                 * a keyboard that is not there (no answer, drivers time out). */
                if (k->pending_cmd == CMD_WRITE_CTR)
                        k->ctr = v;
                else if (k->pending_cmd == CMD_WRITE_OUTPUT_PORT && !(v & OUTPUT_PORT_RESET))
                        reset = true;
                k->pending_cmd = 0;
        } else {
                k->pending_cmd = 0;
                switch (v) {
                case CMD_READ_CTR:
                        push_locked(k, k->ctr);
                        break;
                case CMD_WRITE_CTR:
                case CMD_WRITE_OUTPUT_PORT:
                        k->pending_cmd = v;
                        break;
                case CMD_SELF_TEST:
                        push_locked(k, 0x55);
                        break;
                case CMD_KBD_TEST:
                case CMD_AUX_TEST:
                        push_locked(k, 0x00);
                        break;
                case CMD_KBD_DISABLE:
                        k->ctr |= 0x10;
                        break;
                case CMD_KBD_ENABLE:
                        k->ctr &= ~0x10;
                        break;
                case CMD_AUX_DISABLE:
                        k->ctr |= 0x20;
                        break;
                case CMD_AUX_ENABLE:
                        k->ctr &= ~0x20;
                        break;
                case CMD_READ_OUTPUT_PORT:
                        push_locked(k, OUTPUT_PORT_RESET);
                        break;
                case CMD_PULSE_RESET:
                        reset = true;
                        break;
                default:
                        /* 0xf0-0xff pulse output lines; bit 0 is reset. */
                        if ((v & 0xf0) == 0xf0 && !(v & 0x01))
                                reset = true;
                        break;
                }
        }
        pthread_mutex_unlock(&k->lock);

        if (reset && k->reset)
                k->reset(k->userdata, 0);
}

const BusDeviceOps i8042_bus_ops = {
        .name = "i8042",
        .read = i8042_read,
        .write = i8042_write,
};
