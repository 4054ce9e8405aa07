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
#include "memory.h"
#include "unaligned.h"
#include "util.h"

/* Reserved feature bits (virtio 1.2 §6), as vmm/virtio/device.h has them:
 * that header brings the VMM's sandbox, which a back-end does not link. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define TRANSPORT_FEATURES \
        ((UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC) | \
         (UINT64_C(1) << VIRTIO_F_EVENT_IDX) | (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES))
#define PROTOCOL_FEATURES \
        ((UINT64_C(1) << VHOST_USER_PROTOCOL_F_MQ) | (UINT64_C(1) << VHOST_USER_PROTOCOL_F_REPLY_ACK))

typedef struct Ring {
        VirtQueue q;
        int kick_fd, call_fd;
        uint64_t desc_ua, avail_ua, used_ua; /* the front-end's user addresses */
        uint16_t base;
        bool have_addr, started, enabled;
} Ring;

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

int vhost_user_backend_new(int sock, const VhostUserBackendOps *ops, void *ctx, VhostUserBackend **ret) {
        VhostUserBackend *b;

        if (ops->n_queues == 0 || ops->n_queues > VHOST_USER_BACKEND_MAX_QUEUES)
                return -EINVAL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->sock = sock;
        b->ops = ops;
        b->ctx = ctx;
        b->mem.memfd = -EBADF;
        for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++) {
                Ring *r = &b->rings[i];

                r->kick_fd = r->call_fd = -EBADF;
                r->q.index = (uint16_t) i;
                r->q.max_size = VIRTQ_MAX_SIZE;
                r->q.kick_fd = -EBADF;
                r->q.interrupt = ring_interrupt;
                r->q.interrupt_ctx = r;
        }
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
        safe_close(b->sock);
        free(b);
        return NULL;
}

int vhost_user_backend_socket(const VhostUserBackend *b) {
        return b->sock;
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
                return reply_u64(b, m, PROTOCOL_FEATURES);
        case VHOST_USER_GET_QUEUE_NUM:
                return reply_u64(b, m, b->ops->n_queues);
        case VHOST_USER_SET_PROTOCOL_FEATURES:
                b->protocol = get_le64(m->payload) & PROTOCOL_FEATURES;
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
        case VHOST_USER_GET_VRING_BASE: {
                uint8_t p[VHOST_USER_VRING_STATE_SIZE];

                if (!r)
                        return -EINVAL;
                /* Stops the ring: it lets go of the guest's memory. */
                ring_stop(r);
                put_le32(p, index);
                put_le32(p + 4, r->q.next_avail);
                r->base = r->q.next_avail;
                return reply(b, m, p, sizeof(p));
        }
        default:
                /* Known to the codec, not spoken here (SET_VRING_ERR,
                 * BACKEND_REQ_FD, CONFIG, ...): refused. */
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                k = -EOPNOTSUPP;
                break;
        }
        if ((m->flags & VHOST_USER_FLAG_NEED_REPLY) && (b->protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_REPLY_ACK)))
                return reply_u64(b, m, k < 0 ? 1 : 0);
        return k == -EOPNOTSUPP ? 0 : k;
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
                struct pollfd pfd[1 + VHOST_USER_BACKEND_MAX_QUEUES];
                unsigned ring_of[1 + VHOST_USER_BACKEND_MAX_QUEUES];
                nfds_t n = 0;
                int k;

                pfd[n++] = (struct pollfd) { .fd = b->sock, .events = POLLIN };
                /* A disabled ring's kicks wait until it is enabled (a
                 * kick that came before is seen then). */
                for (unsigned i = 0; i < b->ops->n_queues; i++)
                        if (b->rings[i].kick_fd >= 0 && b->rings[i].started && b->rings[i].enabled) {
                                ring_of[n] = i;
                                pfd[n++] = (struct pollfd) { .fd = b->rings[i].kick_fd, .events = POLLIN };
                        }
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                /* Kicks first: the socket may stop a ring and close its fd. */
                for (nfds_t i = 1; i < n; i++) {
                        Ring *r = &b->rings[ring_of[i]];
                        uint64_t v;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        (void) !read(r->kick_fd, &v, sizeof(v));
                        if (b->ops->kicked)
                                b->ops->kicked(b->ctx, ring_of[i]);
                        ring_process(b, r);
                }
                if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        k = on_socket(b);
                        if (k <= 0)
                                return k;
                }
        }
}
