/* SPDX-License-Identifier: BSD-3-Clause */
/* The back-end side of vhost-user (QEMU's docs/interop/vhost-user.rst):
 * what a device process here answers, and how it runs its rings. See
 * vhost-user-backend.h. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/vhost-user-backend.h"
#include "vmm/memory.h"
#include "common/unaligned.h"
#include "common/util.h"

/* Reserved feature bits (virtio 1.2 §6), as vmm/virtio/device.h has them:
 * that header brings the VMM's sandbox, which a back-end does not link. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define TRANSPORT_FEATURES \
        ((UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC) | \
         (UINT64_C(1) << VIRTIO_F_EVENT_IDX) | (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES))
#define PROTOCOL_FEATURES \
        ((UINT64_C(1) << VHOST_USER_PROTOCOL_F_MQ) | (UINT64_C(1) << VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
         (UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ))

typedef struct Ring {
        VirtQueue q;
        int kick_fd, call_fd;
        uint64_t desc_ua, avail_ua, used_ua; /* the front-end's user addresses */
        uint16_t base;
        bool have_addr, started, enabled;
} Ring;

typedef struct Watch {
        int fd;                 /* -1: free slot */
        VhostUserBackendFdHandler handler;
        void *ctx;
} Watch;

typedef struct Mapping {
        uint64_t user_addr;
        void *map;
        size_t map_len;
} Mapping;

struct VhostUserBackend {
        int sock;
        const VhostUserBackendOps *ops;
        void *ctx;
        uint64_t features, protocol;
        GuestMemory mem;        /* regions only: memfd -1, base NULL */
        Mapping maps[GUEST_MAX_REGIONS];
        Ring rings[VHOST_USER_BACKEND_MAX_QUEUES];
        int backend_req;        /* the front-end's request channel, or -1 */
        Watch watches[VHOST_USER_BACKEND_MAX_WATCHES];
};

static void unmap_all(VhostUserBackend *b) {
        for (unsigned i = 0; i < b->mem.n_regions; i++)
                if (b->maps[i].map)
                        munmap(b->maps[i].map, b->maps[i].map_len);
        memset(b->maps, 0, sizeof(b->maps));
        memset(b->mem.regions, 0, sizeof(b->mem.regions));
        b->mem.n_regions = 0;
}

static void ring_stop(Ring *r) {
        safe_close(r->kick_fd);
        r->kick_fd = -EBADF;
        r->started = r->enabled = false;
        r->q.enabled = false;
}

static void ring_interrupt(void *ctx, VirtQueue *q) {
        Ring *r = ctx;

        (void) q;
        if (r->call_fd >= 0)
                (void) !write(r->call_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

/* A ring as a new back-end has it: no addresses, no descriptors. */
static void ring_init(Ring *r, unsigned index) {
        *r = (Ring) { .kick_fd = -EBADF, .call_fd = -EBADF };
        r->q.index = (uint16_t) index;
        r->q.max_size = VIRTQ_MAX_SIZE;
        r->q.kick_fd = -EBADF;
        r->q.interrupt = ring_interrupt;
        r->q.interrupt_ctx = r;
}

int vhost_user_backend_new(int sock, const VhostUserBackendOps *ops, void *ctx, VhostUserBackend **ret) {
        VhostUserBackend *b;

        if (ops->n_queues == 0 || ops->n_queues > VHOST_USER_BACKEND_MAX_QUEUES)
                return -EINVAL;
        if (ops->config_size > VHOST_USER_CONFIG_MAX ||
            (ops->config_size > 0 && (!ops->config_read || !ops->config_write)))
                return -EINVAL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->sock = sock;
        b->ops = ops;
        b->ctx = ctx;
        b->mem.memfd = -EBADF;
        b->backend_req = -EBADF;
        for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_WATCHES; i++)
                b->watches[i].fd = -EBADF;
        for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++)
                ring_init(&b->rings[i], i);
        *ret = b;
        return 0;
}

VhostUserBackend *vhost_user_backend_free(VhostUserBackend *b) {
        if (!b)
                return NULL;
        for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++) {
                ring_stop(&b->rings[i]);
                safe_close(b->rings[i].call_fd);
        }
        unmap_all(b);
        safe_close(b->backend_req);
        safe_close(b->sock);
        free(b);
        return NULL;
}

int vhost_user_backend_socket(const VhostUserBackend *b) {
        return b->sock;
}

int vhost_user_backend_watch_fd(VhostUserBackend *b, int fd, VhostUserBackendFdHandler handler, void *ctx) {
        Watch *free_slot = NULL;

        if (fd < 0 || !handler)
                return -EBADF;
        for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_WATCHES; i++) {
                if (b->watches[i].fd == fd)
                        return -EEXIST;
                if (b->watches[i].fd < 0 && !free_slot)
                        free_slot = &b->watches[i];
        }
        if (!free_slot)
                return -E2BIG;
        *free_slot = (Watch) { .fd = fd, .handler = handler, .ctx = ctx };
        return 0;
}

void vhost_user_backend_unwatch_fd(VhostUserBackend *b, int fd) {
        for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_WATCHES; i++)
                if (fd >= 0 && b->watches[i].fd == fd)
                        b->watches[i] = (Watch) { .fd = -EBADF };
}

static uint64_t protocol_offered(const VhostUserBackend *b) {
        return PROTOCOL_FEATURES | (b->ops->config_size > 0 ? UINT64_C(1) << VHOST_USER_PROTOCOL_F_CONFIG : 0) |
               (b->ops->reset ? UINT64_C(1) << VHOST_USER_PROTOCOL_F_RESET_DEVICE : 0);
}

/* RESET_DEVICE: every ring stops (the device is told, as for
 * GET_VRING_BASE) and forgets its addresses, base and eventfds; the
 * device goes back to its initial state. The memory table, the protocol
 * features and the request channel are the front-end's and stay. */
static void device_reset(VhostUserBackend *b) {
        for (unsigned i = 0; i < b->ops->n_queues; i++) {
                Ring *r = &b->rings[i];
                bool started = r->started;

                ring_stop(r);
                if (started && b->ops->stopped)
                        b->ops->stopped(b->ctx, i);
                safe_close(r->call_fd);
                ring_init(r, i);
        }
        b->features = 0;
        b->ops->reset(b->ctx);
}

int vhost_user_backend_config_changed(VhostUserBackend *b) {
        if (b->backend_req < 0 || !(b->protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ)))
                return -ENOTCONN;
        /* No NEED_REPLY: the loop does not wait on the front-end, whose
         * answer would only say it read the configuration again. */
        return vhost_user_send(b->backend_req, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0, NULL, 0, NULL, 0);
}

/* How long a back-end request waits for the front-end's answer, as the
 * front-end waits for ours. */
#define BACKEND_REQUEST_TIMEOUT_MS 5000

/* A SHMEM_MAP / SHMEM_UNMAP with NEED_REPLY, and the front-end's u64
 * answer (0: done). The loop is not running meanwhile: the front-end
 * answers from its own thread (vmm/devices/vhost-user.c). */
static int shmem_request(VhostUserBackend *b, uint32_t request, uint8_t shmid, int fd, uint64_t fd_offset,
                         uint64_t offset, uint64_t len, uint64_t flags) {
        uint8_t p[VHOST_USER_SHMEM_MAP_SIZE] = { 0 };
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds = 0;
        VhostUserMsg m;
        int r;

        if (b->backend_req < 0 || !(b->protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ)))
                return -ENOTCONN;
        p[0] = shmid;
        put_le64(p + 8, fd_offset);
        put_le64(p + 16, offset);
        put_le64(p + 24, len);
        put_le64(p + 32, flags);
        r = vhost_user_send(b->backend_req, request, VHOST_USER_FLAG_NEED_REPLY, p, sizeof(p), fd >= 0 ? &fd : NULL,
                            fd >= 0 ? 1 : 0);
        if (r < 0)
                return r;
        r = vhost_user_recv(b->backend_req, BACKEND_REQUEST_TIMEOUT_MS, &m, fds, ARRAY_SIZE(fds), &n_fds);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        /* The reply flag, this request, a u64, no descriptor. */
        if (n_fds > 0 || vhost_user_check_reply(request, &m, 0) < 0)
                return -EBADMSG;
        return get_le64(m.payload) == 0 ? 0 : -EREMOTEIO;
}

int vhost_user_backend_shmem_map(VhostUserBackend *b, uint8_t shmid, int fd, uint64_t fd_offset, uint64_t offset,
                                 uint64_t len, uint64_t flags) {
        if (fd < 0)
                return -EBADF;
        if (flags != VHOST_USER_SHMEM_MAP_R && flags != VHOST_USER_SHMEM_MAP_RW)
                return -EINVAL;
        return shmem_request(b, VHOST_USER_BACKEND_SHMEM_MAP, shmid, fd, fd_offset, offset, len, flags);
}

int vhost_user_backend_shmem_unmap(VhostUserBackend *b, uint8_t shmid, uint64_t offset, uint64_t len) {
        return shmem_request(b, VHOST_USER_BACKEND_SHMEM_UNMAP, shmid, -EBADF, 0, offset, len, 0);
}

int vhost_user_backend_request_stop(VhostUserBackend *b) {
        if (b->backend_req < 0 || !(b->protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ)))
                return -ENOTCONN;
        return vhost_user_send(b->backend_req, VHOST_USER_BACKEND_STOP_VM, 0, NULL, 0, NULL, 0);
}

static int reply(VhostUserBackend *b, const VhostUserMsg *m, const void *payload, uint32_t size) {
        return vhost_user_send(b->sock, m->request, VHOST_USER_FLAG_REPLY, payload, size, NULL, 0);
}

static int reply_u64(VhostUserBackend *b, const VhostUserMsg *m, uint64_t v) {
        uint8_t p[8];

        put_le64(p, v);
        return reply(b, m, p, sizeof(p));
}

/* A front-end user address (the front-end's own mapping, named by the mem
 * table's user_addr) to a guest-physical one; the walker checks lengths. */
static int ua_to_gpa(const VhostUserBackend *b, uint64_t ua, uint64_t *ret) {
        for (unsigned i = 0; i < b->mem.n_regions; i++) {
                uint64_t start = b->maps[i].user_addr;

                if (ua >= start && ua - start < b->mem.regions[i].size) {
                        *ret = b->mem.regions[i].gpa + (ua - start);
                        return 0;
                }
        }
        return -EFAULT;
}

static int set_mem_table(VhostUserBackend *b, const VhostUserMsg *m, int *fds, size_t n_fds) {
        uint32_t n = get_le32(m->payload);
        int r = 0;

        unmap_all(b);
        if (n > GUEST_MAX_REGIONS)
                r = -E2BIG;
        for (uint32_t i = 0; r >= 0 && i < n; i++) {
                const uint8_t *e = m->payload + 8 + i * VHOST_USER_MEM_REGION_SIZE;
                VhostUserMemRegion reg = {
                        .gpa = get_le64(e), .size = get_le64(e + 8),
                        .user_addr = get_le64(e + 16), .mmap_offset = get_le64(e + 24),
                };
                void *p;

                if (reg.size == 0 || reg.size > SIZE_MAX || reg.gpa + reg.size < reg.gpa) {
                        r = -EINVAL;
                        break;
                }
                p = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i],
                         (off_t) reg.mmap_offset);
                if (p == MAP_FAILED) {
                        r = -errno;
                        break;
                }
                b->maps[i] = (Mapping) { .user_addr = reg.user_addr, .map = p, .map_len = reg.size };
                b->mem.regions[i] = (GuestRegion) { .gpa = reg.gpa, .size = reg.size,
                                                    .offset = reg.mmap_offset, .host = p };
                b->mem.n_regions = i + 1;
        }
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        if (r < 0)
                unmap_all(b);
        return r;
}

static void ring_process(VhostUserBackend *b, Ring *r) {
        if (!r->started || !r->enabled || !r->q.enabled || r->q.broken)
                return;
        b->ops->queue_notify(b->ctx, &r->q);
        if (r->q.broken) {
                fprintf(stderr, "vhost-user back-end: ring %u: %s\n", r->q.index, r->q.error);
                return;
        }
        virtq_interrupt(&r->q);
}

/* The ring has its addresses and kick: map it through the walker, which
 * checks alignment and that each part is guest RAM (§2.7). */
static int ring_start(VhostUserBackend *b, Ring *r) {
        bool event_idx = b->features & (UINT64_C(1) << VIRTIO_F_EVENT_IDX);
        bool indirect = b->features & (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC);
        int k;

        if (!r->have_addr || ua_to_gpa(b, r->desc_ua, &r->q.desc_gpa) < 0 ||
            ua_to_gpa(b, r->avail_ua, &r->q.avail_gpa) < 0 || ua_to_gpa(b, r->used_ua, &r->q.used_gpa) < 0)
                return -EFAULT;
        k = virtq_enable(&r->q, &b->mem, event_idx, indirect);
        if (k < 0)
                return k;
        r->q.next_avail = r->q.next_used = r->base;
        r->started = true;
        /* Without protocol features a ring runs once it has its kick. */
        if (!(b->features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES)))
                r->enabled = true;
        return 0;
}

/* One checked request. fds are this function's to close. */
static int handle(VhostUserBackend *b, const VhostUserMsg *m, int *fds, size_t n_fds) {
        uint32_t index = get_le32(m->payload);
        Ring *r = index < b->ops->n_queues ? &b->rings[index] : NULL;
        int k = 0;

        switch (m->request) {
        case VHOST_USER_GET_FEATURES:
                return reply_u64(b, m, TRANSPORT_FEATURES | b->ops->features);
        case VHOST_USER_GET_PROTOCOL_FEATURES:
                return reply_u64(b, m, protocol_offered(b));
        case VHOST_USER_GET_QUEUE_NUM:
                return reply_u64(b, m, b->ops->n_queues);
        case VHOST_USER_SET_PROTOCOL_FEATURES:
                b->protocol = get_le64(m->payload) & protocol_offered(b);
                break;
        case VHOST_USER_SET_FEATURES:
                b->features = get_le64(m->payload);
                if (b->features & ~(TRANSPORT_FEATURES | b->ops->features))
                        k = -EINVAL;
                break;
        case VHOST_USER_SET_OWNER:
                break;
        case VHOST_USER_SET_MEM_TABLE:
                k = set_mem_table(b, m, fds, n_fds);
                break;
        case VHOST_USER_SET_VRING_NUM:
                if (!r || get_le32(m->payload + 4) > VIRTQ_MAX_SIZE)
                        return -EINVAL;
                r->q.size = (uint16_t) get_le32(m->payload + 4);
                break;
        case VHOST_USER_SET_VRING_ADDR:
                if (!r)
                        return -EINVAL;
                r->desc_ua = get_le64(m->payload + 8);
                r->used_ua = get_le64(m->payload + 16);
                r->avail_ua = get_le64(m->payload + 24);
                r->have_addr = true;
                break;
        case VHOST_USER_SET_VRING_BASE:
                if (!r)
                        return -EINVAL;
                r->base = (uint16_t) get_le32(m->payload + 4);
                break;
        case VHOST_USER_SET_VRING_CALL:
        case VHOST_USER_SET_VRING_KICK:
                index = (uint32_t) (get_le64(m->payload) & VHOST_USER_VRING_INDEX_MASK);
                r = index < b->ops->n_queues ? &b->rings[index] : NULL;
                /* Polling mode (NOFD) is not spoken here. */
                if (!r || n_fds != 1) {
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        return -EINVAL;
                }
                if (m->request == VHOST_USER_SET_VRING_CALL) {
                        safe_close(r->call_fd);
                        r->call_fd = fds[0];
                        break;
                }
                ring_stop(r);
                r->kick_fd = fds[0];
                k = ring_start(b, r);
                if (k >= 0)
                        ring_process(b, r);
                break;
        case VHOST_USER_SET_VRING_ENABLE:
                if (!r)
                        return -EINVAL;
                r->enabled = get_le32(m->payload + 4) != 0;
                ring_process(b, r);
                break;
        case VHOST_USER_SET_BACKEND_REQ_FD:
                /* The codec checked exactly one fd came with it. */
                safe_close(b->backend_req);
                b->backend_req = fds[0];
                break;
        case VHOST_USER_GET_CONFIG:
        case VHOST_USER_SET_CONFIG: {
                /* The codec checked the header's size matches the payload
                 * and offset + size <= VHOST_USER_CONFIG_MAX. */
                uint32_t offset = get_le32(m->payload), size = get_le32(m->payload + 4);
                bool inside = b->ops->config_size > 0 && offset <= b->ops->config_size &&
                              size <= b->ops->config_size - offset;

                if (m->request == VHOST_USER_SET_CONFIG) {
                        k = inside ? b->ops->config_write(b->ctx, offset, m->payload + VHOST_USER_CONFIG_HEADER_SIZE,
                                                          size)
                                   : -EINVAL;
                        break;
                }
                {
                        uint8_t p[VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX] = { 0 };

                        /* A range outside the configuration: the header
                         * alone, which the front-end takes as a failure
                         * (its size does not match what it asked). */
                        if (!inside)
                                return reply(b, m, m->payload, VHOST_USER_CONFIG_HEADER_SIZE);
                        memcpy(p, m->payload, VHOST_USER_CONFIG_HEADER_SIZE);
                        b->ops->config_read(b->ctx, offset, p + VHOST_USER_CONFIG_HEADER_SIZE, size);
                        return reply(b, m, p, VHOST_USER_CONFIG_HEADER_SIZE + size);
                }
        }
        case VHOST_USER_GET_VRING_BASE: {
                uint8_t p[VHOST_USER_VRING_STATE_SIZE];

                if (!r)
                        return -EINVAL;
                /* Stops the ring: it lets go of the guest's memory. */
                ring_stop(r);
                if (b->ops->stopped)
                        b->ops->stopped(b->ctx, index);
                put_le32(p, index);
                put_le32(p + 4, r->q.next_avail);
                r->base = r->q.next_avail;
                return reply(b, m, p, sizeof(p));
        }
        case VHOST_USER_RESET_DEVICE:
                if (!(b->protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_RESET_DEVICE))) {
                        k = -EOPNOTSUPP;
                        break;
                }
                device_reset(b);
                break;
        default:
                /* Known to the codec, not spoken here (SET_VRING_ERR,
                 * STATUS, ...), or RESET_DEVICE not offered: refused. */
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                k = -EOPNOTSUPP;
                break;
        }
        if ((m->flags & VHOST_USER_FLAG_NEED_REPLY) && (b->protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_REPLY_ACK)))
                return reply_u64(b, m, k < 0 ? 1 : 0);
        /* A refused configuration write is the device's answer, not a
         * broken protocol: the loop goes on. */
        return k == -EOPNOTSUPP || m->request == VHOST_USER_SET_CONFIG ? 0 : k;
}

static int on_socket(VhostUserBackend *b) {
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds = 0;
        /* Zeroed: handle() reads a ring index even from an empty payload. */
        VhostUserMsg m = { 0 };
        int k;

        k = vhost_user_recv(b->sock, -1, &m, fds, ARRAY_SIZE(fds), &n_fds);
        if (k == -ECONNRESET)
                return 0;
        if (k < 0)
                return k;
        k = vhost_user_check_request(&m, n_fds);
        if (k < 0) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                return k;
        }
        if (b->ops->intercept) {
                k = b->ops->intercept(b->ctx, b, &m);
                if (k != 0) {
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        return k < 0 ? k : 1;
                }
        }
        k = handle(b, &m, fds, n_fds);
        return k < 0 ? k : 1;
}

int vhost_user_backend_run(VhostUserBackend *b) {
        for (;;) {
                struct pollfd pfd[1 + VHOST_USER_BACKEND_MAX_QUEUES + VHOST_USER_BACKEND_MAX_WATCHES];
                unsigned ring_of[1 + VHOST_USER_BACKEND_MAX_QUEUES];
                nfds_t n = 0, n_rings;
                int k;

                pfd[n++] = (struct pollfd) { .fd = b->sock, .events = POLLIN };
                /* A disabled ring's kicks wait until it is enabled (a
                 * kick that came before is seen then). */
                for (unsigned i = 0; i < b->ops->n_queues; i++)
                        if (b->rings[i].kick_fd >= 0 && b->rings[i].started && b->rings[i].enabled) {
                                ring_of[n] = i;
                                pfd[n++] = (struct pollfd) { .fd = b->rings[i].kick_fd, .events = POLLIN };
                        }
                n_rings = n;
                for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_WATCHES; i++)
                        if (b->watches[i].fd >= 0)
                                pfd[n++] = (struct pollfd) { .fd = b->watches[i].fd, .events = POLLIN };
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                /* Kicks first: the socket may stop a ring and close its fd. */
                for (nfds_t i = 1; i < n_rings; i++) {
                        Ring *r = &b->rings[ring_of[i]];
                        uint64_t v;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        (void) !read(r->kick_fd, &v, sizeof(v));
                        if (b->ops->kicked)
                                b->ops->kicked(b->ctx, ring_of[i]);
                        ring_process(b, r);
                }
                /* The device's fds: looked up again, as a handler may
                 * unwatch its own or another's. */
                for (nfds_t i = n_rings; i < n; i++) {
                        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        for (unsigned w = 0; w < VHOST_USER_BACKEND_MAX_WATCHES; w++)
                                if (b->watches[w].fd == pfd[i].fd) {
                                        k = b->watches[w].handler(b->watches[w].ctx, pfd[i].fd);
                                        if (k < 0)
                                                return k;
                                        break;
                                }
                }
                if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        k = on_socket(b);
                        if (k <= 0)
                                return k;
                }
        }
}
