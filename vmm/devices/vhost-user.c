/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user front-end (QEMU's docs/interop/vhost-user.rst; what is
 * implemented: docs/vhost-user.md): a virtio device whose queues another
 * process runs. The guest sees an ordinary virtio PCI device of the
 * back-end's type; the back-end gets the guest RAM memfd, each ring's
 * addresses, the queue's kick eventfd (the ioeventfd the guest's notify
 * writes land on) and a call eventfd that this device's worker turns into
 * the queue's interrupt, so masking and INTx stay the transport's.
 *
 * Who talks when: the set-up handshake at create (before the jail, on the
 * main thread); everything after activation on the device's worker
 * (worker_start, stop, the back-end's own requests), never on a vCPU:
 * configuration reads come from a copy, writes are forwarded by the
 * worker. A back-end that breaks a rule, answers late or hangs up marks the
 * device NEEDS_RESET with the reason, is never spoken to again, and the VM
 * and every other device go on. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/devices/device-process.h"
#include "vmm/devices/virtiofsd.h"
#include "common/log.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "common/vhost-user.h"
#include "vmm/virtio/device.h"

/* How long a back-end may take to answer one request. */
#define VHOST_USER_TIMEOUT_MS 5000
/* virtio-fs (virtio 1.2 §5.11): hiprio and one request queue. */
#define FS_CONFIG_SIZE 40
#define GPU_CONFIG_SIZE 16
/* virtio-gpu's host-visible shared memory region (§5.7.2, id 1), where
 * the back-end maps blobs the guest asks for with RESOURCE_MAP_BLOB. */
#define GPU_SHM_HOST_VISIBLE 1
/* crosvm's virtio_video_config: version, max_caps_length,
 * max_resp_length, device_name[32] (docs/video.md). */
#define VIDEO_CONFIG_SIZE 44
#define GPU_HOST_VISIBLE_SIZE (UINT64_C(256) << 20)
#define FS_NUM_REQUEST_QUEUES 1

/* The transport's own feature bits a back-end may offer: split rings
 * only, as the walker that checks them speaks no other layout. */
#define TRANSPORT_FEATURES \
        ((UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC) | \
         (UINT64_C(1) << VIRTIO_F_EVENT_IDX))
#define DEVICE_FEATURES_MASK ((UINT64_C(1) << 24) - 1)

/* What the front-end speaks of the protocol features. */
#define PROTOCOL_WANTED \
        ((UINT64_C(1) << VHOST_USER_PROTOCOL_F_MQ) | (UINT64_C(1) << VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
         (UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ) | (UINT64_C(1) << VHOST_USER_PROTOCOL_F_CONFIG) | \
         (UINT64_C(1) << VHOST_USER_PROTOCOL_F_RESET_DEVICE))

typedef struct VhostUser {
        VirtioDevice *vdev;
        const VirtioDeviceOps *ops;
        const GuestMemory *mem;
        int sock;                       /* to the back-end */
        int backend_req;                /* our end of SET_BACKEND_REQ_FD, or -1 */
        int config_write_fd;            /* eventfd: the guest wrote the configuration */
        pid_t child;                    /* the back-end we started (shared-dir), or 0 */

        uint64_t backend_features;      /* GET_FEATURES */
        uint64_t protocol;              /* negotiated protocol features */
        uint64_t negotiated;            /* the driver's, at activate */
        VirtQueue *queues;              /* at activate */
        bool started[VIRTIO_MAX_QUEUES];

        pthread_mutex_t lock;           /* config, dirty */
        uint8_t config[VHOST_USER_CONFIG_MAX];
        bool config_from_backend;
        bool config_dirty;

        bool dead;                      /* __atomic: never spoken to again */
        char error[160];                /* why, set once before dead */
} VhostUser;

static bool has_protocol(const VhostUser *u, unsigned bit) {
        return u->protocol & (UINT64_C(1) << bit);
}

/* The back-end broke: NEEDS_RESET with the reason, once. */
_printf_(2, 3)
static int backend_failed(VhostUser *u, const char *fmt, ...) {
        va_list ap;

        if (__atomic_load_n(&u->dead, __ATOMIC_ACQUIRE))
                return -EPIPE;
        va_start(ap, fmt);
        vsnprintf(u->error, sizeof(u->error), fmt, ap);
        va_end(ap);
        __atomic_store_n(&u->dead, true, __ATOMIC_RELEASE);
        log_error("vhost-user %s: %s", u->ops->name, u->error);
        virtio_device_set_needs_reset(u->vdev, u->error);
        return -EPIPE;
}

/* One request; with `reply` its answer (checked), else the back-end's ack
 * where REPLY_ACK was negotiated. */
static int request(VhostUser *u, uint32_t req, const void *payload, uint32_t size, const int *fds, size_t n_fds,
                   VhostUserMsg *reply, uint32_t config_size) {
        VhostUserMsg ack;
        VhostUserMsg *m = reply ? reply : &ack;
        bool want_ack = !reply && has_protocol(u, VHOST_USER_PROTOCOL_F_REPLY_ACK);
        int got[VHOST_USER_FDS_MAX];
        size_t n_got;
        int r;

        if (__atomic_load_n(&u->dead, __ATOMIC_ACQUIRE))
                return -EPIPE;
        r = vhost_user_send(u->sock, req, want_ack ? VHOST_USER_FLAG_NEED_REPLY : 0, payload, size, fds, n_fds);
        if (r < 0)
                return backend_failed(u, "%s: sending: %s", vhost_user_request_to_string(req), strerror(-r));
        if (!reply && !want_ack)
                return 0;
        r = vhost_user_recv(u->sock, VHOST_USER_TIMEOUT_MS, m, got, ARRAY_SIZE(got), &n_got);
        if (r < 0)
                return backend_failed(u, "%s: no answer: %s", vhost_user_request_to_string(req),
                                      r == -EBADMSG ? "malformed message" : strerror(-r));
        /* No reply carries a descriptor. */
        for (size_t i = 0; i < n_got; i++)
                safe_close(got[i]);
        if (n_got > 0 || vhost_user_check_reply(req, m, config_size) < 0)
                return backend_failed(u, "%s: a malformed reply (request %" PRIu32 ", %" PRIu32 " bytes, %zu fds)",
                                      vhost_user_request_to_string(req), m->request, m->size, n_got);
        if (want_ack && get_le64(m->payload) != 0)
                return backend_failed(u, "%s: refused", vhost_user_request_to_string(req));
        return 0;
}

static int request_u64(VhostUser *u, uint32_t req, uint64_t v) {
        uint8_t p[8];

        put_le64(p, v);
        return request(u, req, p, sizeof(p), NULL, 0, NULL, 0);
}

static int get_u64(VhostUser *u, uint32_t req, uint64_t *ret) {
        VhostUserMsg m;
        int r = request(u, req, NULL, 0, NULL, 0, &m, 0);

        if (r >= 0)
                *ret = get_le64(m.payload);
        return r;
}

static int vring_state(VhostUser *u, uint32_t req, uint32_t index, uint32_t num, VhostUserMsg *reply) {
        uint8_t p[VHOST_USER_VRING_STATE_SIZE];

        put_le32(p, index);
        put_le32(p + 4, num);
        return request(u, req, p, sizeof(p), NULL, 0, reply, 0);
}

static int vring_fd(VhostUser *u, uint32_t req, uint32_t index, int fd) {
        uint8_t p[8];

        put_le64(p, index);
        return request(u, req, p, sizeof(p), &fd, 1, NULL, 0);
}

static int fetch_config(VhostUser *u) {
        uint8_t p[VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX] = {};
        uint32_t size = u->ops->config_size;
        VhostUserMsg m;
        int r;

        put_le32(p + 4, size);
        r = request(u, VHOST_USER_GET_CONFIG, p, VHOST_USER_CONFIG_HEADER_SIZE + size, NULL, 0, &m, size);
        if (r < 0)
                return r;
        if (get_le32(m.payload) != 0 || get_le32(m.payload + 4) != size)
                return backend_failed(u, "GET_CONFIG: an answer for another range");
        pthread_mutex_lock(&u->lock);
        memcpy(u->config, m.payload + VHOST_USER_CONFIG_HEADER_SIZE, size);
        pthread_mutex_unlock(&u->lock);
        return 0;
}

/* ---- the handshake, at create ---- */

static int handshake(VhostUser *u, const char *tag) {
        uint64_t theirs = 0, n_queues;
        int r, pair[2];

        r = get_u64(u, VHOST_USER_GET_FEATURES, &u->backend_features);
        if (r < 0)
                return r;
        /* A modern transport: the back-end must speak virtio 1. */
        if (!(u->backend_features & (UINT64_C(1) << VIRTIO_F_VERSION_1)))
                return backend_failed(u, "the back-end does not offer VERSION_1");
        if (u->backend_features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES)) {
                r = get_u64(u, VHOST_USER_GET_PROTOCOL_FEATURES, &theirs);
                if (r < 0)
                        return r;
                r = request_u64(u, VHOST_USER_SET_PROTOCOL_FEATURES, theirs & PROTOCOL_WANTED);
                if (r < 0)
                        return r;
                u->protocol = theirs & PROTOCOL_WANTED;
        }
        r = request(u, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, 0);
        if (r < 0)
                return r;
        if (has_protocol(u, VHOST_USER_PROTOCOL_F_MQ)) {
                r = get_u64(u, VHOST_USER_GET_QUEUE_NUM, &n_queues);
                if (r < 0)
                        return r;
                if (n_queues < u->ops->n_queues)
                        return backend_failed(u, "the back-end runs %" PRIu64 " queues, the device needs %u",
                                              n_queues, u->ops->n_queues);
        }
        if (has_protocol(u, VHOST_USER_PROTOCOL_F_BACKEND_REQ)) {
                uint8_t zero[8] = {};

                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                        return -errno;
                r = request(u, VHOST_USER_SET_BACKEND_REQ_FD, zero, sizeof(zero), &pair[1], 1, NULL, 0);
                safe_close(pair[1]);
                u->backend_req = pair[0];
                if (r < 0)
                        return r;
        }
        /* virtio-fs: a tag given here is the guest's name for the share;
         * else the back-end's configuration is the device's. */
        if (u->ops->type == VIRTIO_ID_FS && tag && tag[0]) {
                memcpy(u->config, tag, strlen(tag));
                put_le32(u->config + 36, FS_NUM_REQUEST_QUEUES);
                return 0;
        }
        if (u->ops->config_size == 0)
                return 0;
        if (!has_protocol(u, VHOST_USER_PROTOCOL_F_CONFIG))
                return backend_failed(u, "the back-end keeps no device configuration (CONFIG)%s",
                                      u->ops->type == VIRTIO_ID_FS ? ": give the share a tag" : "");
        u->config_from_backend = true;
        return fetch_config(u);
}

/* ---- after activation, on the worker ---- */

static int set_mem_table(VhostUser *u) {
        uint8_t p[8 + GUEST_MAX_REGIONS * VHOST_USER_MEM_REGION_SIZE] = {};
        int fds[GUEST_MAX_REGIONS];
        const GuestMemory *mem = u->mem;

        put_le32(p, mem->n_regions);
        for (unsigned i = 0; i < mem->n_regions; i++) {
                uint8_t *e = p + 8 + i * VHOST_USER_MEM_REGION_SIZE;

                put_le64(e, mem->regions[i].gpa);
                put_le64(e + 8, mem->regions[i].size);
                put_le64(e + 16, (uint64_t) (uintptr_t) mem->regions[i].host);
                put_le64(e + 24, mem->regions[i].offset);
                fds[i] = mem->memfd;
        }
        return request(u, VHOST_USER_SET_MEM_TABLE, p, 8 + mem->n_regions * VHOST_USER_MEM_REGION_SIZE, fds,
                       mem->n_regions, NULL, 0);
}

/* Ring addresses are the front-end's own (the mappings SET_MEM_TABLE
 * named), checked when the driver enabled the queue. */
static uint64_t ring_user_addr(VhostUser *u, uint64_t gpa, uint64_t len) {
        void *host = NULL;

        (void) guest_slice(u->mem, gpa, len, &host);
        return (uint64_t) (uintptr_t) host;
}

static int start_queue(VhostUser *u, VirtQueue *q) {
        uint8_t a[VHOST_USER_VRING_ADDR_SIZE] = {};
        VirtioDevice *vdev = u->vdev;
        int r;

        r = vring_state(u, VHOST_USER_SET_VRING_NUM, q->index, q->size, NULL);
        if (r < 0)
                return r;
        put_le32(a, q->index);
        put_le64(a + 8, ring_user_addr(u, q->desc_gpa, VIRTQ_DESC_BYTES(q->size)));
        put_le64(a + 16, ring_user_addr(u, q->used_gpa, VIRTQ_USED_BYTES(q->size)));
        put_le64(a + 24, ring_user_addr(u, q->avail_gpa, VIRTQ_AVAIL_BYTES(q->size)));
        r = request(u, VHOST_USER_SET_VRING_ADDR, a, sizeof(a), NULL, 0, NULL, 0);
        if (r >= 0)
                r = vring_state(u, VHOST_USER_SET_VRING_BASE, q->index, 0, NULL);
        /* The call first: the ring runs once it has its kick. */
        if (r >= 0)
                r = vring_fd(u, VHOST_USER_SET_VRING_CALL, q->index, virtio_device_call_fd(vdev, q->index));
        if (r >= 0)
                r = vring_fd(u, VHOST_USER_SET_VRING_KICK, q->index, virtio_device_kick_fd(vdev, q->index));
        if (r >= 0)
                u->started[q->index] = true;
        /* With protocol features a ring starts disabled. */
        if (r >= 0 && (u->backend_features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES)))
                r = vring_state(u, VHOST_USER_SET_VRING_ENABLE, q->index, 1, NULL);
        return r;
}

static void flush_config_write(VhostUser *u) {
        uint8_t p[VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX] = {};
        uint32_t size = u->ops->config_size;
        bool dirty;

        pthread_mutex_lock(&u->lock);
        dirty = u->config_dirty;
        u->config_dirty = false;
        memcpy(p + VHOST_USER_CONFIG_HEADER_SIZE, u->config, size);
        pthread_mutex_unlock(&u->lock);
        if (!dirty || !u->config_from_backend)
                return;
        put_le32(p + 4, size);
        (void) request(u, VHOST_USER_SET_CONFIG, p, VHOST_USER_CONFIG_HEADER_SIZE + size, NULL, 0, NULL, 0);
}

static void on_config_write(void *dev, int fd, uint32_t events) {
        uint64_t n;

        (void) !read(fd, &n, sizeof(n));
        flush_config_write(dev);
}

static void reply_backend(VhostUser *u, const VhostUserMsg *m, uint64_t status) {
        uint8_t p[8];

        if (!(m->flags & VHOST_USER_FLAG_NEED_REPLY))
                return;
        put_le64(p, status);
        (void) vhost_user_send(u->backend_req, m->request, VHOST_USER_FLAG_REPLY, p, sizeof(p), NULL, 0);
}

/* SHMEM_MAP / SHMEM_UNMAP (crosvm's): u8 shmid, 7 bytes of padding, u64
 * fd offset, u64 offset in the region, u64 length, u64 flags (1 read,
 * 3 read and write; unmap: 0). The framework checks the ranges; a refusal
 * is the back-end's problem, not the device's. */
static int shmem_request(VhostUser *u, const VhostUserMsg *m, int fd) {
        uint8_t shmid = m->payload[0];
        uint64_t fd_offset = get_le64(m->payload + 8), offset = get_le64(m->payload + 16);
        uint64_t len = get_le64(m->payload + 24), flags = get_le64(m->payload + 32);
        int r;

        if (m->request == VHOST_USER_BACKEND_SHMEM_UNMAP)
                return virtio_device_shm_unmap(u->vdev, shmid, offset, len);
        if (flags != VHOST_USER_SHMEM_MAP_R && flags != VHOST_USER_SHMEM_MAP_RW)
                return -EINVAL;
        r = virtio_device_shm_map(u->vdev, shmid, offset, fd, fd_offset, len, flags == VHOST_USER_SHMEM_MAP_RW);
        if (r < 0)
                log_debug("vhost-user %s: SHMEM_MAP of %" PRIu64 " bytes at %" PRIu64 " refused: %s", u->ops->name,
                          len, offset, strerror(-r));
        return r;
}

/* A request on the back-end's channel. */
static void on_backend_request(void *dev, int fd, uint32_t events) {
        VhostUser *u = dev;
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds;
        VhostUserMsg m;
        uint32_t index;
        int r;

        r = vhost_user_recv(fd, VHOST_USER_TIMEOUT_MS, &m, fds, ARRAY_SIZE(fds), &n_fds);
        if (r < 0) {
                (void) virtio_device_unwatch_fd(u->vdev, fd);
                (void) backend_failed(u, "its request channel: %s",
                                      r == -EBADMSG ? "a malformed message" : strerror(-r));
                return;
        }
        r = vhost_user_check_backend_request(&m, n_fds);
        if (r >= 0 && (m.request == VHOST_USER_BACKEND_SHMEM_MAP || m.request == VHOST_USER_BACKEND_SHMEM_UNMAP)) {
                reply_backend(u, &m, shmem_request(u, &m, n_fds > 0 ? fds[0] : -EBADF) < 0 ? 1 : 0);
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                return;
        }
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        if (r == -EBADMSG) {
                (void) virtio_device_unwatch_fd(u->vdev, fd);
                (void) backend_failed(u, "a malformed request %" PRIu32 " of %" PRIu32 " bytes on its channel",
                                      m.request, m.size);
                return;
        }
        switch (r < 0 ? 0 : m.request) {
        case VHOST_USER_BACKEND_CONFIG_CHANGE_MSG:
                if (u->config_from_backend && fetch_config(u) >= 0)
                        virtio_device_config_changed(u->vdev);
                reply_backend(u, &m, 0);
                return;
        case VHOST_USER_BACKEND_VRING_CALL:
                index = get_le32(m.payload);
                if (index < u->ops->n_queues)
                        (void) !write(virtio_device_call_fd(u->vdev, index), &(uint64_t) { 1 }, sizeof(uint64_t));
                reply_backend(u, &m, index < u->ops->n_queues ? 0 : 1);
                return;
        case VHOST_USER_BACKEND_STOP_VM:
                reply_backend(u, &m, 0);
                virtio_device_request_vm_stop(u->vdev, u->ops->type == VIRTIO_ID_GPU ?
                                              "the GPU's window was closed" : "a device's back-end asked to stop");
                return;
        case VHOST_USER_BACKEND_VRING_ERR:
                reply_backend(u, &m, 0);
                (void) backend_failed(u, "it reported an error on queue %" PRIu32, get_le32(m.payload));
                return;
        default:
                /* Unknown: refused, the device goes on. */
                reply_backend(u, &m, 1);
                return;
        }
}

/* The back-end's socket hung up (it died): only the hang-up is watched. */
static void on_backend_hangup(void *dev, int fd, uint32_t events) {
        VhostUser *u = dev;

        (void) virtio_device_unwatch_fd(u->vdev, fd);
        (void) backend_failed(u, "the back-end hung up");
}

static int vhost_user_worker_start(void *dev) {
        VhostUser *u = dev;
        uint64_t features = u->negotiated;
        int r;

        /* What only the worker may do (epoll_ctl): watch our fds. */
        r = virtio_device_watch_fd(u->vdev, u->sock, EPOLLRDHUP, on_backend_hangup);
        if (r >= 0 && u->backend_req >= 0)
                r = virtio_device_watch_fd(u->vdev, u->backend_req, EPOLLIN, on_backend_request);
        if (r >= 0)
                r = virtio_device_watch_fd(u->vdev, u->config_write_fd, EPOLLIN, on_config_write);
        if (r < 0)
                return r;

        if (u->backend_features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES))
                features |= UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES;
        r = request_u64(u, VHOST_USER_SET_FEATURES, features);
        if (r >= 0)
                r = set_mem_table(u);
        for (unsigned i = 0; r >= 0 && i < u->ops->n_queues; i++)
                if (u->queues[i].enabled)
                        r = start_queue(u, &u->queues[i]);
        if (r >= 0)
                flush_config_write(u);
        return r;
}

static int vhost_user_activate(void *dev, VirtQueue *queues, uint64_t features) {
        VhostUser *u = dev;

        if (__atomic_load_n(&u->dead, __ATOMIC_ACQUIRE))
                return -EPIPE;
        u->queues = queues;
        u->negotiated = features;
        return 0;
}

/* On the worker as it stops (a device reset, or the VM's end):
 * GET_VRING_BASE stops each ring (the back-end lets go of the guest's
 * memory for it), then RESET_DEVICE, where the back-end offers it, drops
 * what the device holds for the guest (a GPU's resources and contexts),
 * as §2.4 has a reset do. Sent from here, not from the reset itself: that
 * runs on a vCPU thread, whose seccomp role does not talk to back-ends. */
static void vhost_user_stop(void *dev) {
        VhostUser *u = dev;
        bool ran = false;

        for (unsigned i = 0; i < u->ops->n_queues; i++) {
                VhostUserMsg m;

                if (!u->started[i])
                        continue;
                u->started[i] = false;
                ran = true;
                if (vring_state(u, VHOST_USER_GET_VRING_BASE, i, 0, &m) >= 0 && get_le32(m.payload) != i)
                        (void) backend_failed(u, "GET_VRING_BASE: the answer names ring %" PRIu32,
                                              get_le32(m.payload));
        }
        if (ran && has_protocol(u, VHOST_USER_PROTOCOL_F_RESET_DEVICE))
                (void) request(u, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0, NULL, 0);
}

static void vhost_user_reset(void *dev) {
        VhostUser *u = dev;

        u->queues = NULL;
        u->negotiated = 0;
}

static void vhost_user_config_read(void *dev, uint32_t offset, void *data, uint32_t size) {
        VhostUser *u = dev;

        pthread_mutex_lock(&u->lock);
        memcpy(data, u->config + offset, size);
        pthread_mutex_unlock(&u->lock);
}

static void vhost_user_config_write(void *dev, uint32_t offset, const void *data, uint32_t size) {
        VhostUser *u = dev;

        /* virtio-fs's configuration is read-only (§5.11.4). */
        if (!u->config_from_backend)
                return;
        pthread_mutex_lock(&u->lock);
        memcpy(u->config + offset, data, size);
        u->config_dirty = true;
        pthread_mutex_unlock(&u->lock);
        (void) !write(u->config_write_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

static uint64_t vhost_user_offered(void *dev) {
        VhostUser *u = dev;

        return u->backend_features & (DEVICE_FEATURES_MASK | TRANSPORT_FEATURES);
}

static unsigned vhost_user_fds(void *dev, int *fds, unsigned max) {
        VhostUser *u = dev;
        unsigned n = 0;

        if (n < max)
                fds[n++] = u->sock;
        if (n < max)
                fds[n++] = u->config_write_fd;
        if (n < max && u->backend_req >= 0)
                fds[n++] = u->backend_req;
        return n;
}

static void vhost_user_destroy(void *dev) {
        VhostUser *u = dev;

        if (!u)
                return;
        safe_close(u->sock);
        safe_close(u->backend_req);
        safe_close(u->config_write_fd);
        /* A back-end we started exits when its socket closes (and dies
         * with the VMM's pid namespace): no signal from a jailed thread. */
        pthread_mutex_destroy(&u->lock);
        free(u);
}

static int vhost_user_new(VirtioDevice *vdev, VhostUser **ret) {
        VhostUser *u = calloc(1, sizeof(*u));

        if (!u)
                return -ENOMEM;
        u->vdev = vdev;
        u->ops = virtio_device_ops(vdev);
        u->mem = virtio_device_memory(vdev);
        u->sock = u->backend_req = -EBADF;
        pthread_mutex_init(&u->lock, NULL);
        u->config_write_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (u->config_write_fd < 0) {
                vhost_user_destroy(u);
                return -errno;
        }
        *ret = u;
        return 0;
}

/* ---- --vhost-user TYPE,socket=PATH[,tag=TAG] ---- */

static int vhost_user_parse(const char *arg, VmmDevice *ret) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL, *type, *opt;
        const char *socket_path = NULL;
        int t, r;

        if (!arg)
                return -EINVAL;
        copy = strdup(arg);
        if (!copy)
                return -ENOMEM;
        type = strtok_r(copy, ",", &save);
        t = vmm_vhost_user_type_from_string(type);
        if (t < 0)
                return -EINVAL;
        ret->vhost_user.type = (uint32_t) t;
        ret->vhost_user.fd = -1;
        while ((opt = strtok_r(NULL, ",", &save))) {
                if (strncmp(opt, "socket=", 7) == 0 && opt[7])
                        socket_path = opt + 7;
                else if (strncmp(opt, "tag=", 4) == 0 && strlen(opt + 4) <= VMM_CONFIG_FS_TAG_MAX)
                        strcpy(ret->vhost_user.tag, opt + 4);
                else
                        return -EINVAL;
        }
        if (!socket_path)
                return -EINVAL;
        r = connect_unix(socket_path, SOCK_STREAM, &ret->vhost_user.fd);
        if (r < 0)
                log_error_errno(r, "--vhost-user: connecting to %s: %m", socket_path);
        return r < 0 ? -EINVAL : 0;
}

/* A GPU back-end that can ask (it has the request channel) maps blobs
 * into the host-visible region; one that cannot gets none. */
static int gpu_host_visible(VhostUser *u) {
        if (!has_protocol(u, VHOST_USER_PROTOCOL_F_BACKEND_REQ))
                return 0;
        return virtio_device_add_shm_region(u->vdev, GPU_SHM_HOST_VISIBLE, GPU_HOST_VISIBLE_SIZE);
}

static int vhost_user_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        VhostUser *u;
        int r;

        r = vhost_user_new(vdev, &u);
        if (r < 0)
                return r;
        u->sock = fcntl(config->vhost_user.fd, F_DUPFD_CLOEXEC, 3);
        if (u->sock < 0) {
                r = -errno;
                vhost_user_destroy(u);
                return r;
        }
        r = handshake(u, config->vhost_user.tag);
        if (r < 0) {
                log_error("--vhost-user %s: the back-end's handshake failed%s%s",
                          vmm_vhost_user_type_to_string(config->vhost_user.type), u->error[0] ? ": " : "", u->error);
                vhost_user_destroy(u);
                return r;
        }
        if (config->vhost_user.type == VMM_VHOST_USER_GPU) {
                r = gpu_host_visible(u);
                if (r < 0) {
                        vhost_user_destroy(u);
                        return r;
                }
        }
        *ret = u;
        return 0;
}

/* ---- --shared-dir PATH:TAG[:type=fs][:cache=auto|always|never][:ro][:live] ---- */

static int shared_dir_parse(const char *arg, VmmDevice *ret) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL, *path, *tag, *opt;
        int c;

        if (!arg)
                return -EINVAL;
        copy = strdup(arg);
        if (!copy)
                return -ENOMEM;
        ret->shared_dir.fd = -1;
        path = strtok_r(copy, ":", &save);
        tag = strtok_r(NULL, ":", &save);
        if (!path || !tag || strlen(tag) > VMM_CONFIG_FS_TAG_MAX)
                return -EINVAL;
        strcpy(ret->shared_dir.tag, tag);
        while ((opt = strtok_r(NULL, ":", &save))) {
                if (strcmp(opt, "type=fs") == 0)
                        continue;
                if (strcmp(opt, "ro") == 0) {
                        ret->shared_dir.read_only = true;
                } else if (strcmp(opt, "live") == 0) {
                        ret->shared_dir.live = true;
                } else if (strncmp(opt, "cache=", 6) == 0 && (c = vmm_fs_cache_from_string(opt + 6)) >= 0) {
                        ret->shared_dir.cache = (uint32_t) c;
                } else {
                        return -EINVAL;
                }
        }
        ret->shared_dir.fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ret->shared_dir.fd < 0) {
                log_error_errno(errno, "--shared-dir %s: %m", path);
                return -EINVAL;
        }
        return 0;
}

static int shared_dir_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        VhostUser *u;
        int r;

        r = vhost_user_new(vdev, &u);
        if (r < 0)
                return r;
        r = virtiofsd_spawn(config, &u->sock, &u->child);
        if (r >= 0) {
                r = handshake(u, config->shared_dir.tag);
                if (r < 0)
                        log_error("--shared-dir %s: virtiofsd's handshake failed%s%s", config->shared_dir.tag,
                                  u->error[0] ? ": " : "", u->error);
        }
        if (r < 0) {
                vhost_user_destroy(u);
                return r;
        }
        *ret = u;
        return 0;
}

/* ---- --gpu [backend=2d|virglrenderer][,width=W][,height=H][,displays=N][,max-memory=SIZE]
 *            [,context-types=LIST] ---- */

static int gpu_parse(const char *arg, VmmDevice *ret) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL, *opt;
        uint64_t v;
        int r;

        ret->gpu = (typeof(ret->gpu)) {
                .backend = VMM_GPU_BACKEND_2D,
                .width = VMM_CONFIG_GPU_WIDTH_DEFAULT,
                .height = VMM_CONFIG_GPU_HEIGHT_DEFAULT,
                .displays = VMM_CONFIG_GPU_DISPLAYS_DEFAULT,
                .max_memory = VMM_CONFIG_GPU_MEMORY_DEFAULT,
                .wayland_fd = -1,
        };
        copy = strdup(arg ?: "");
        if (!copy)
                return -ENOMEM;
        /* Ranges are vmm_config_validate()'s: here only the syntax. */
        for (opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
                char *value = strchr(opt, '=');

                if (!value)
                        return -EINVAL;
                *value++ = '\0';
                if (strcmp(opt, "backend") == 0) {
                        r = vmm_gpu_backend_from_string(value);
                        if (r < 0)
                                return log_error("--gpu backend=%s: want 2d or virglrenderer", value), -EINVAL;
                        ret->gpu.backend = (uint32_t) r;
                        continue;
                }
                if (strcmp(opt, "max-memory") == 0) {
                        if (parse_size(value, &ret->gpu.max_memory) < 0)
                                return -EINVAL;
                        continue;
                }
                if (strcmp(opt, "context-types") == 0) {
                        VmmConfigError error;

                        /* Whether the backend has them is vmm_config_validate()'s. */
                        if (vmm_gpu_context_types_from_string(value, &ret->gpu.context_types, &error) < 0)
                                return log_error("--gpu context-types=%s: %s", value, error.message), -EINVAL;
                        continue;
                }
                if (parse_uint(value, 0, UINT32_MAX, &v) < 0)
                        return -EINVAL;
                if (strcmp(opt, "width") == 0)
                        ret->gpu.width = (uint32_t) v;
                else if (strcmp(opt, "height") == 0)
                        ret->gpu.height = (uint32_t) v;
                else if (strcmp(opt, "displays") == 0)
                        ret->gpu.displays = (uint32_t) v;
                else
                        return -EINVAL;
        }
        return 0;
}

/* ---- --video-decoder ffmpeg, --video-encoder ffmpeg ---- */

static int video_parse(const char *arg, VmmDevice *ret) {
        int b = vmm_video_backend_from_string(arg ?: "ffmpeg");

        if (b < 0)
                return log_error("video: backend %s: want ffmpeg", arg), -EINVAL;
        ret->video.backend = (uint32_t) b;
        return 0;
}

/* A device whose process the VMM starts (device-process.c): majordome-gpu,
 * majordome-video. */
static int process_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        VhostUser *u;
        int r;

        r = vhost_user_new(vdev, &u);
        if (r < 0)
                return r;
        r = device_process_spawn(config, &u->sock, &u->child);
        if (r >= 0) {
                r = handshake(u, NULL);
                if (r < 0)
                        log_error("--%s: its device process's handshake failed%s%s",
                                  vmm_device_kind_to_string(config->kind), u->error[0] ? ": " : "", u->error);
        }
        if (r >= 0 && config->kind == VMM_DEVICE_GPU)
                r = gpu_host_visible(u);
        if (r < 0) {
                vhost_user_destroy(u);
                return r;
        }
        *ret = u;
        return 0;
}

/* ---- the ops: one identity per back-end type ---- */

#define VHOST_USER_OPS(ident, vname, vtype, queues, cfg, parse_fn, create_fn)            \
        static const VirtioDeviceOps ident = {                                          \
                .name = vname,                                                          \
                .type = vtype,                                                          \
                .n_queues = queues,                                                     \
                .queue_max_size = VIRTQ_MAX_SIZE,                                       \
                .config_size = cfg,                                                     \
                .seccomp_role = "vhost-user",                                           \
                .seccomp_policy = "vhost-user.policy",                                  \
                .parse = parse_fn,                                                      \
                .create = create_fn,                                                    \
                .destroy = vhost_user_destroy,                                          \
                .config_read = vhost_user_config_read,                                  \
                .config_write = vhost_user_config_write,                                \
                .activate = vhost_user_activate,                                        \
                .stop = vhost_user_stop,                                                \
                .reset = vhost_user_reset,                                              \
                .fds = vhost_user_fds,                                                  \
                .external_queues = true,                                                \
                .offered = vhost_user_offered,                                          \
                .worker_start = vhost_user_worker_start,                                \
        }

VHOST_USER_OPS(vhost_user_rng_ops, "vhost-user-rng", VIRTIO_ID_RNG, 1, 0, vhost_user_parse, vhost_user_create);
VHOST_USER_OPS(vhost_user_fs_ops, "vhost-user-fs", VIRTIO_ID_FS, 1 + FS_NUM_REQUEST_QUEUES, FS_CONFIG_SIZE,
               vhost_user_parse, vhost_user_create);
VHOST_USER_OPS(shared_dir_fs_ops, "shared-dir", VIRTIO_ID_FS, 1 + FS_NUM_REQUEST_QUEUES, FS_CONFIG_SIZE,
               shared_dir_parse, shared_dir_create);
/* virtio-gpu (§5.7.2): control and cursor queues; struct virtio_gpu_config. */
VHOST_USER_OPS(vhost_user_gpu_ops, "vhost-user-gpu", VIRTIO_ID_GPU, 2, GPU_CONFIG_SIZE, vhost_user_parse,
               vhost_user_create);
VHOST_USER_OPS(gpu_gpu_ops, "gpu", VIRTIO_ID_GPU, 2, GPU_CONFIG_SIZE, gpu_parse, process_create);
/* virtio-video (crosvm's protocol 3): command and event queues. */
VHOST_USER_OPS(vhost_user_video_dec_ops, "vhost-user-video-decoder", VIRTIO_ID_VIDEO_DECODER, 2, VIDEO_CONFIG_SIZE,
               vhost_user_parse, vhost_user_create);
VHOST_USER_OPS(vhost_user_video_enc_ops, "vhost-user-video-encoder", VIRTIO_ID_VIDEO_ENCODER, 2, VIDEO_CONFIG_SIZE,
               vhost_user_parse, vhost_user_create);
VHOST_USER_OPS(video_dec_ops, "video-decoder", VIRTIO_ID_VIDEO_DECODER, 2, VIDEO_CONFIG_SIZE, video_parse,
               process_create);
VHOST_USER_OPS(video_enc_ops, "video-encoder", VIRTIO_ID_VIDEO_ENCODER, 2, VIDEO_CONFIG_SIZE, video_parse,
               process_create);

static const VirtioDeviceOps *vhost_user_variant(const VmmDevice *config) {
        if (!config)
                return NULL;
        if (config->kind == VMM_DEVICE_SHARED_DIR)
                return &shared_dir_fs_ops;
        if (config->kind == VMM_DEVICE_GPU)
                return &gpu_gpu_ops;
        if (config->kind == VMM_DEVICE_VIDEO_DECODER)
                return &video_dec_ops;
        if (config->kind == VMM_DEVICE_VIDEO_ENCODER)
                return &video_enc_ops;
        switch (config->vhost_user.type) {
        case VMM_VHOST_USER_RNG:
                return &vhost_user_rng_ops;
        case VMM_VHOST_USER_FS:
                return &vhost_user_fs_ops;
        case VMM_VHOST_USER_GPU:
                return &vhost_user_gpu_ops;
        case VMM_VHOST_USER_VIDEO_DECODER:
                return &vhost_user_video_dec_ops;
        case VMM_VHOST_USER_VIDEO_ENCODER:
                return &vhost_user_video_enc_ops;
        default:
                return NULL;
        }
}

/* The table's entries: what the options parse; the variant is the device. */
#define VHOST_USER_ENTRY(ident, vname, vtype, queues, usage, vhelp, parse_fn, create_fn) \
        const VirtioDeviceOps ident = {                                                  \
                .name = vname,                                                           \
                .option_usage = usage,                                                   \
                .help = vhelp,                                                           \
                .type = vtype,                                                           \
                .n_queues = queues,                                                      \
                .queue_max_size = VIRTQ_MAX_SIZE,                                        \
                .seccomp_role = "vhost-user",                                            \
                .seccomp_policy = "vhost-user.policy",                                   \
                .parse = parse_fn,                                                       \
                .create = create_fn,                                                     \
                .variant = vhost_user_variant,                                           \
        }

VHOST_USER_ENTRY(virtio_vhost_user_ops, "vhost-user", VIRTIO_ID_FS, 1, "TYPE,socket=PATH[,tag=TAG]",
                 "a device whose back-end runs in another process (TYPE: fs, gpu, rng, video-decoder, video-encoder)",
                 vhost_user_parse, vhost_user_create);
VHOST_USER_ENTRY(virtio_shared_dir_ops, "shared-dir", VIRTIO_ID_FS, 1,
                 "PATH:TAG[:type=fs][:cache=auto|always|never][:ro][:live]",
                 "share a host directory over virtio-fs (the VMM starts virtiofsd)", shared_dir_parse,
                 shared_dir_create);
VHOST_USER_ENTRY(virtio_gpu_ops, "gpu", VIRTIO_ID_GPU, 2,
                 "backend=2d|virglrenderer[,width=W][,height=H][,displays=N][,max-memory=SIZE]"
                 "[,context-types=LIST]",
                 "a virtio-gpu (the VMM starts majordome-gpu; see --wayland-sock); LIST: context types "
                 "virgl, virgl2 (virglrenderer), cross-domain, colon-separated (default: the backend's own)", gpu_parse, process_create);
VHOST_USER_ENTRY(virtio_video_decoder_ops, "video-decoder", VIRTIO_ID_VIDEO_DECODER, 2, "[=ffmpeg]",
                 "a virtio-video decoder (the VMM starts majordome-video)", video_parse, process_create);
VHOST_USER_ENTRY(virtio_video_encoder_ops, "video-encoder", VIRTIO_ID_VIDEO_ENCODER, 2, "[=ffmpeg]",
                 "a virtio-video encoder (the VMM starts majordome-video)", video_parse, process_create);
