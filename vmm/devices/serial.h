/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stddef.h>

#include "bus.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SERIAL_RX_FIFO 64

typedef struct Serial Serial;

/* out_fd: where transmitted bytes go (not owned; -1 discards).
 * rx_space_fd: an eventfd bumped when the guest drains the receive FIFO,
 * so the owner can feed more input (not owned; -1 for none). */
int serial_new(int out_fd, int rx_space_fd, IrqLine irq, Serial **ret);
Serial *serial_free(Serial *s);

/* Queues input bytes for the guest; returns how many fit. */
size_t serial_input(Serial *s, const uint8_t *data, size_t len);
size_t serial_rx_space(Serial *s);

extern const BusDeviceOps serial_bus_ops;

#ifdef __cplusplus
}
#endif
