/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A small vhost-user back-end (QEMU's docs/interop/vhost-user.rst) for this
 * project's own device processes: it serves one connected socket, maps the
 * front-end's guest memory, and runs each ring through the VMM's own
 * descriptor walker (vmm/virtio/queue.h), so a back-end checks the driver's
 * chains exactly as an in-process device does. A device supplies its
 * feature bits and a queue_notify that pops, processes and pushes.
 *
 * Single-threaded: vhost_user_backend_run() polls the socket and the
 * rings' kick eventfds until the front-end hangs up. */

#include <stdint.h>

#include "vhost-user.h"
#include "virtio/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VHOST_USER_BACKEND_MAX_QUEUES 8

typedef struct VhostUserBackend VhostUserBackend;

typedef struct VhostUserBackendOps {
        uint64_t features;      /* the device's own feature bits */
        unsigned n_queues;      /* 1..VHOST_USER_BACKEND_MAX_QUEUES */
        /* A ring that runs was kicked: pop, process, push. The library
         * sends the interrupt afterwards if the driver wants one. */
        void (*queue_notify)(void *ctx, VirtQueue *q);
        /* The driver notified ring `index` (its kick eventfd fired), just
         * before queue_notify. Optional. */
        void (*kicked)(void *ctx, unsigned index);
        /* Sees every checked request before the library answers it (to
         * misbehave in tests): 1 when it handled the request itself, 0 to
         * let the library answer, negative to end the loop. Optional. */
        int (*intercept)(void *ctx, VhostUserBackend *b, const VhostUserMsg *m);
} VhostUserBackendOps;

/* Takes sock (a connected AF_UNIX stream socket); -ENOMEM. */
int vhost_user_backend_new(int sock, const VhostUserBackendOps *ops, void *ctx, VhostUserBackend **ret);
VhostUserBackend *vhost_user_backend_free(VhostUserBackend *b);
int vhost_user_backend_socket(const VhostUserBackend *b);

/* Serves until the front-end hangs up (0) or breaks the protocol
 * (-EBADMSG, -EOPNOTSUPP, ...). */
int vhost_user_backend_run(VhostUserBackend *b);

#ifdef __cplusplus
}
#endif
