/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/manager.h"
#include "daemon/machine-control.h"

#define MACHINE_CONTROL_PAYLOAD_MAX 16

struct MachineControlRequest {
        uint16_t type;
        uint32_t id;
        uint64_t deadline_usec; /* CLOCK_MONOTONIC */
        uint8_t payload[MACHINE_CONTROL_PAYLOAD_MAX];
        size_t length;
        void (*done)(Machine *vm, int r, const ControlReply *reply, void *userdata);
        void *userdata;
        MachineControlRequest *next;
};

/* ---- control connection: requests sent at once, each bounded ----
 *
 * Every request goes out as soon as it is made and its reply is matched by
 * id, so nothing waits behind a slow request: the VMM answers balloon-stats
 * asynchronously (docs/control-protocol.md) and everything else at once. */

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void control_arm_timer(Machine *vm) {
        uint64_t next = UINT64_MAX;

        for (MachineControlRequest *q = vm->requests; q; q = q->next)
                next = MIN(next, q->deadline_usec);
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(vm->control_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(vm->control_timer, next);
        (void) sd_event_source_set_enabled(vm->control_timer, SD_EVENT_ONESHOT);
}

/* Unlinks q and calls its callback; the callback may make new requests. */
static void control_complete(Machine *vm, MachineControlRequest *q, int r, const ControlReply *reply) {
        for (MachineControlRequest **p = &vm->requests; *p; p = &(*p)->next)
                if (*p == q) {
                        *p = q->next;
                        break;
                }
        vm->n_requests--;
        q->done(vm, r, reply, q->userdata);
        free(q);
}

void machine_control_fail_all(Machine *vm, int r) {
        while (vm->requests)
                control_complete(vm, vm->requests, r, NULL);
}

void machine_control_disconnect(Machine *vm) {
        vm->control_source = sd_event_source_disable_unref(vm->control_source);
        vm->control_fd = safe_close(vm->control_fd);
        (void) sd_event_source_set_enabled(vm->control_timer, SD_EVENT_OFF);
        machine_control_fail_all(vm, -ENOTCONN);
}

static int on_control_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Machine *vm = userdata;
        uint64_t now = now_monotonic_usec();
        bool found;

        /* A late reply carries an id nobody waits for and is skipped. */
        do {
                found = false;
                for (MachineControlRequest *q = vm->requests; q; q = q->next)
                        if (q->deadline_usec <= now) {
                                control_complete(vm, q, -ETIMEDOUT, NULL);
                                found = true;
                                break;
                        }
        } while (found);
        control_arm_timer(vm);
        return 0;
}

static int on_control_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Machine *vm = userdata;

        for (;;) {
                ControlDatagram d;
                ControlHeader h;
                ControlReply reply;
                MachineControlRequest *q;
                int r;

                r = control_receive(fd, &d);
                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        /* The VMM hung up (exiting); its pidfd tells the rest. */
                        machine_control_disconnect(vm);
                        return 0;
                }
                control_datagram_close_fds(&d);
                if (d.truncated || control_header_decode(d.data, d.len, &h) < 0)
                        continue;
                r = control_header_check(&h, d.len);
                if (r == -EPROTO) {
                        /* Only magic and version are frozen across versions:
                         * nothing else of it can be read. */
                        machine_version_mismatch(vm, h.version);
                        return 0;
                }
                if (r < 0)
                        continue;
                if ((h.type & CONTROL_EVENT) && !(h.type & CONTROL_REPLY)) {
                        machine_handle_event(vm, &h, d.data + CONTROL_HEADER_SIZE);
                        if (vm->control_fd != fd)
                                return 0;
                        continue;
                }
                for (q = vm->requests; q; q = q->next)
                        if (h.id == q->id && h.type == (q->type | CONTROL_REPLY))
                                break;
                if (!q)
                        continue;

                reply = (ControlReply) {
                        .version = h.version,
                        .type = h.type,
                        .status = h.status,
                        .length = h.length,
                };
                memcpy(reply.payload, d.data + CONTROL_HEADER_SIZE, h.length);
                control_complete(vm, q, 0, &reply);
                if (vm->control_fd != fd)
                        return 0; /* a callback disconnected */
        }
        control_arm_timer(vm);
        return 0;
}

int machine_control_attach(Machine *vm, int fd) {
        int flags, r;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        r = sd_event_add_io(vm->manager->event, &vm->control_source, fd, EPOLLIN, on_control_io, vm);
        if (r < 0)
                return r;
        if (!vm->control_timer) {
                r = sd_event_add_time(vm->manager->event, &vm->control_timer, CLOCK_MONOTONIC,
                                      UINT64_MAX, 0, on_control_timeout, vm);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(vm->control_timer, SD_EVENT_OFF);
        }
        vm->control_fd = fd;
        /* Sequence numbers are per connection. */
        vm->last_event_seq = 0;
        return 0;
}

/* urgent: a stop, which must get through whatever else callers asked for:
 * it is not counted against MACHINE_CONTROL_QUEUE_MAX. */
int machine_control_request_full(Machine *vm, uint16_t type, const void *payload, size_t length, bool urgent,
                                 MachineControlFn done, void *userdata) {
        MachineControlRequest *q;
        ControlHeader h;
        int r;

        if (length > MACHINE_CONTROL_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (vm->vmm_version != 0)
                return -EPROTO;
        if (vm->control_fd < 0)
                return -ENOTCONN;
        if (!urgent && vm->n_requests >= MACHINE_CONTROL_QUEUE_MAX)
                return -EBUSY;
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->type = type;
        if (length > 0)
                memcpy(q->payload, payload, length);
        q->length = length;
        q->id = ++vm->next_request_id;
        q->done = done;
        q->userdata = userdata;
        q->deadline_usec = now_monotonic_usec() + (uint64_t) MACHINE_CONTROL_TIMEOUT_MS * 1000;

        h = (ControlHeader) {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = q->type,
                .id = q->id,
                .length = (uint32_t) q->length,
        };
        r = control_send(vm->control_fd, &h, q->payload, NULL, 0);
        if (r < 0) {
                free(q);
                return r;
        }
        q->next = vm->requests;
        vm->requests = q;
        vm->n_requests++;
        control_arm_timer(vm);
        return 0;
}

int machine_control_request_payload(Machine *vm, uint16_t type, const void *payload, size_t length,
                                    MachineControlFn done, void *userdata) {
        return machine_control_request_full(vm, type, payload, length, false, done, userdata);
}

int machine_control_request(Machine *vm, uint16_t type, MachineControlFn done, void *userdata) {
        return machine_control_request_payload(vm, type, NULL, 0, done, userdata);
}

