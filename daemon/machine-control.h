/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The daemon's end of one VMM's control connection (docs/control-protocol.md):
 * requests go out at once, each with its own deadline, and replies are
 * matched by id, so nothing waits behind a slow request; events are handed
 * to the VM (machine.c). The connection's fields live in Machine (control_fd,
 * requests, ...); only this file touches them, machine_free() excepted. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/control.h"
#include "daemon/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A reply (r >= 0, reply set) or why none came: -ETIMEDOUT after
 * MACHINE_CONTROL_TIMEOUT_MS, -ENOTCONN when the connection went, -EPROTO for a
 * VMM of another protocol version, -ECANCELED when the VM is freed. */
typedef void (*MachineControlFn)(Machine *vm, int r, const ControlReply *reply, void *userdata);

/* Takes fd (a connected SOCK_SEQPACKET socket) on success. */
int machine_control_attach(Machine *vm, int fd);
/* Closes the connection; every request in flight fails with -ENOTCONN. */
void machine_control_disconnect(Machine *vm);
void machine_control_fail_all(Machine *vm, int r);

/* Sends a request at once. urgent: a stop, which must get through whatever
 * else callers asked for: it is not counted against MACHINE_CONTROL_QUEUE_MAX.
 * -EBUSY with the queue full, -ENOTCONN without a connection, -EPROTO for
 * a VMM not driven (vmm_version != 0). */
int machine_control_request_full(Machine *vm, uint16_t type, const void *payload, size_t length, bool urgent,
                                 MachineControlFn done, void *userdata);
int machine_control_request_payload(Machine *vm, uint16_t type, const void *payload, size_t length,
                                    MachineControlFn done, void *userdata);
int machine_control_request(Machine *vm, uint16_t type, MachineControlFn done, void *userdata);

/* Implemented by machine.c, called from the connection: an event pushed by the
 * VMM (header checked, payload h->length bytes), and a VMM that speaks
 * another protocol version (the connection is dropped). */
void machine_handle_event(Machine *vm, const ControlHeader *h, const uint8_t *payload);
void machine_version_mismatch(Machine *vm, uint16_t version);

#ifdef __cplusplus
}
#endif
