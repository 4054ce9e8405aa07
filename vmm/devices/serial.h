/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SERIAL_RX_FIFO 64
#define SERIAL_OUTPUT_MAX_MIN VMM_CONFIG_SERIAL_MAX_MIN

typedef struct Serial Serial;

/* out_fd: where transmitted bytes go (not owned; -1 discards).
 * rx_space_fd: an eventfd bumped when the guest drains the receive FIFO,
 * so the owner can feed more input (not owned; -1 for none). */
int serial_new(int out_fd, int rx_space_fd, IrqLine irq, Serial **ret);
/* Writes what is still buffered, then frees. */
Serial *serial_free(Serial *s);

/* Caps output to a regular file at max_bytes (0: no cap): before the file
 * would grow past it, it is cut to its newest half. Call before the jail
 * (fstat, fcntl). -EINVAL below SERIAL_OUTPUT_MAX_MIN; no effect on a pipe,
 * socket or terminal. */
int serial_set_output_max(Serial *s, uint64_t max_bytes);

/* Transmitted bytes are written in chunks (on a newline, a full buffer or
 * after a short delay). serial_flush_fd() becomes readable when bytes
 * wait for the delay; the owner's loop then calls serial_flush_due(),
 * which writes them once due and returns the milliseconds until the next
 * call is due, or -1 when nothing waits. serial_flush() writes at once. */
int serial_flush_fd(Serial *s);
int serial_flush_due(Serial *s);
void serial_flush(Serial *s);

/* Queues input bytes for the guest; returns how many fit. */
size_t serial_input(Serial *s, const uint8_t *data, size_t len);
size_t serial_rx_space(Serial *s);

extern const BusDeviceOps serial_bus_ops;

#ifdef __cplusplus
}
#endif
