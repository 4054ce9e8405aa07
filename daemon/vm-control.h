/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The daemon's end of one VMM's control connection (docs/control-protocol.md):
 * requests go out at once, each with its own deadline, and replies are
 * matched by id, so nothing waits behind a slow request; events are handed
 * to the VM (vm.c). The connection's fields live in Vm (control_fd,
 * requests, ...); only this file touches them, vm_free() excepted. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A reply (r >= 0, reply set) or why none came: -ETIMEDOUT after
 * VM_CONTROL_TIMEOUT_MS, -ENOTCONN when the connection went, -EPROTO for a
 * VMM of another protocol version, -ECANCELED when the VM is freed. */
typedef void (*VmControlFn)(Vm *vm, int r, const ControlReply *reply, void *userdata);

/* Takes fd (a connected SOCK_SEQPACKET socket) on success. */
int vm_control_attach(Vm *vm, int fd);
/* Closes the connection; every request in flight fails with -ENOTCONN. */
void vm_control_disconnect(Vm *vm);
void vm_control_fail_all(Vm *vm, int r);

/* Sends a request at once. urgent: a stop, which must get through whatever
 * else callers asked for: it is not counted against VM_CONTROL_QUEUE_MAX.
 * -EBUSY with the queue full, -ENOTCONN without a connection, -EPROTO for
 * a VMM not driven (vmm_version != 0). */
int vm_control_request_full(Vm *vm, uint16_t type, const void *payload, size_t length, bool urgent,
                            VmControlFn done, void *userdata);
int vm_control_request_payload(Vm *vm, uint16_t type, const void *payload, size_t length,
                               VmControlFn done, void *userdata);
int vm_control_request(Vm *vm, uint16_t type, VmControlFn done, void *userdata);

/* Implemented by vm.c, called from the connection: an event pushed by the
 * VMM (header checked, payload h->length bytes), and a VMM that speaks
 * another protocol version (the connection is dropped). */
void vm_handle_event(Vm *vm, const ControlHeader *h, const uint8_t *payload);
void vm_version_mismatch(Vm *vm, uint16_t version);

#ifdef __cplusplus
}
#endif
