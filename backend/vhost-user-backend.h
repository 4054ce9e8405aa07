/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A small vhost-user back-end (QEMU's docs/interop/vhost-user.rst) for this
 * project's own device processes: it serves one connected socket, maps the
 * front-end's guest memory, and runs each ring through the VMM's own
 * descriptor walker (vmm/virtio/queue.h), so a back-end checks the driver's
 * chains exactly as an in-process device does. A device supplies its
 * feature bits and a queue_notify that pops, processes and pushes.
 *
 * A device with a configuration space (virtio 1.2 §2.5) gives its size and
 * accessors: the library then offers VHOST_USER_PROTOCOL_F_CONFIG and
 * answers GET_CONFIG / SET_CONFIG through them, and tells the front-end
 * the configuration changed on the back-end request channel
 * (SET_BACKEND_REQ_FD) when the device asks.
 *
 * Single-threaded: vhost_user_backend_run() polls the socket, the rings'
 * kick eventfds and the device's own fds (vhost_user_backend_watch_fd)
 * until the front-end hangs up. */

#include <stdint.h>

#include "common/vhost-user.h"
#include "vmm/virtio/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VHOST_USER_BACKEND_MAX_QUEUES 8
#define VHOST_USER_BACKEND_MAX_WATCHES 4

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
        /* The front-end stopped ring `index` (GET_VRING_BASE: a device
         * reset, or the VM's end), before the answer goes out: chains the
         * device still holds from it must never be pushed. Optional. */
        void (*stopped)(void *ctx, unsigned index);
        /* The front-end reset the device (RESET_DEVICE, offered only when
         * this is set): the rings were stopped (stopped() called for each
         * that ran); the device drops all it holds for the guest, as a new
         * one would be. Optional. */
        void (*reset)(void *ctx);
        /* Sees every checked request before the library answers it (to
         * misbehave in tests): 1 when it handled the request itself, 0 to
         * let the library answer, negative to end the loop. Optional. */
        int (*intercept)(void *ctx, VhostUserBackend *b, const VhostUserMsg *m);
        /* The device configuration (virtio 1.2 §2.5), config_size bytes
         * (at most VHOST_USER_CONFIG_MAX; 0: none, CONFIG not offered).
         * The library checks [offset, offset + size) is inside it before
         * calling either. config_write returns 0 or a negative errno
         * (refused: the front-end gets a failed ack when it asked for one). */
        uint32_t config_size;
        void (*config_read)(void *ctx, uint32_t offset, void *data, uint32_t size);
        int (*config_write)(void *ctx, uint32_t offset, const void *data, uint32_t size);
} VhostUserBackendOps;

/* Called by the loop when a watched fd is readable (or hung up): 0 to go
 * on, negative to end vhost_user_backend_run() with that error. */
typedef int (*VhostUserBackendFdHandler)(void *ctx, int fd);

/* Takes sock (a connected AF_UNIX stream socket); -ENOMEM. */
int vhost_user_backend_new(int sock, const VhostUserBackendOps *ops, void *ctx, VhostUserBackend **ret);
VhostUserBackend *vhost_user_backend_free(VhostUserBackend *b);
int vhost_user_backend_socket(const VhostUserBackend *b);

/* The loop also polls fd for input and calls handler(ctx, fd) (at most
 * VHOST_USER_BACKEND_MAX_WATCHES fds; the fd stays the caller's). -EEXIST,
 * -E2BIG, -EBADF. Unwatching an fd not watched is a no-op; safe from a
 * handler. */
int vhost_user_backend_watch_fd(VhostUserBackend *b, int fd, VhostUserBackendFdHandler handler, void *ctx);
void vhost_user_backend_unwatch_fd(VhostUserBackend *b, int fd);

/* Tells the front-end the device configuration changed
 * (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the back-end request channel),
 * so it reads it again and interrupts the driver. -ENOTCONN when the
 * front-end gave no channel (or did not take BACKEND_REQ), -EPIPE when it
 * went away. */
int vhost_user_backend_config_changed(VhostUserBackend *b);

/* Asks the front-end to map len bytes of fd, from fd_offset, at offset of
 * its shared memory region shmid (VHOST_USER_BACKEND_SHMEM_MAP, crosvm's
 * 1000, on the back-end request channel; docs/vhost-user.md), flags
 * VHOST_USER_SHMEM_MAP_R or _RW; or to unmap exactly such a mapping
 * (SHMEM_UNMAP, 1001). Sent with NEED_REPLY; waits (at most 5 s) for the
 * front-end's u64 answer. 0 when done, -EREMOTEIO when the front-end
 * refused (a range outside the region, not page-aligned, overlapping...),
 * -ENOTCONN with no channel, -EINVAL for other flags, -EBADF for no fd,
 * -EPIPE, -ETIMEDOUT or -EBADMSG when the channel failed. The fd stays the
 * caller's. Call from the loop's thread (a handler or queue_notify). */
int vhost_user_backend_shmem_map(VhostUserBackend *b, uint8_t shmid, int fd, uint64_t fd_offset, uint64_t offset,
                                 uint64_t len, uint64_t flags);
int vhost_user_backend_shmem_unmap(VhostUserBackend *b, uint8_t shmid, uint64_t offset, uint64_t len);
/* Asks the VMM to end the VM (VHOST_USER_BACKEND_STOP_VM, Majordome's
 * own back-end request): the user closed the device's window. -ENOTCONN
 * without a channel, -EPIPE when the front-end went away. */
int vhost_user_backend_request_stop(VhostUserBackend *b);

/* Serves until the front-end hangs up (0) or breaks the protocol
 * (-EBADMSG, -EOPNOTSUPP, ...). */
int vhost_user_backend_run(VhostUserBackend *b);

#ifdef __cplusplus
}
#endif
