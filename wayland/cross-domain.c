/* SPDX-License-Identifier: BSD-3-Clause */
/* The cross-domain context type: see cross-domain.h and docs/wayland.md. */
#include "wayland/cross-domain.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/unaligned.h"

/* sommelier's virtgpu_cross_domain_protocol.h. */
enum {
        CMD_INIT = 1,
        CMD_GET_IMAGE_REQUIREMENTS = 2,
        CMD_POLL = 3,
        CMD_SEND = 4,
        CMD_RECEIVE = 5,
        CMD_READ = 6,
        CMD_WRITE = 7,
};

#define CHANNEL_TYPE_WAYLAND 1
#define ID_TYPE_VIRTGPU_BLOB 1
#define ID_TYPE_READ_PIPE 3
#define ID_TYPE_WRITE_PIPE 4

#define HDR_SIZE 8                      /* u8 cmd, u8 ring, u16 cmd_size, u32 pad */
#define INIT_SIZE_ONE_RING 16           /* hdr, ring_id, channel_type (before mid-2023) */
#define INIT_SIZE_TWO_RINGS 20          /* hdr, query_ring_id, channel_ring_id, channel_type */
#define GET_REQS_SIZE 24                /* hdr, width, height, drm_format, flags */
#define POLL_SIZE 16                    /* hdr, u64 pad */
#define RW_HDR_SIZE 24                  /* hdr, identifier, hang_up, opaque_data_size, pad */
#define IMAGE_REQS_SIZE 64              /* struct CrossDomainImageRequirements */
/* SEND and RECEIVE: hdr, num_identifiers, opaque_data_size, then
 * identifiers, types and sizes of N each: N = 4 before February 2024,
 * 28 (Wayland's own limit per message) since. */
#define SR_HDR_SIZE(n) (16 + 12 * (n))
#define IDS_OLD 4
#define IDS_NEW 28
/* The most descriptors one recvmsg() can carry (the kernel's SCM_MAX_FD):
 * room for all of them, so none is ever cut off and lost. */
#define RECV_MAX_FDS 253
#define MIN_CHANNEL_RING 512            /* the largest header and some data */
#define MAX_CMD_SIZE 65535              /* cmd_size is 16 bits */

/* Ids: image requirements even, descriptors from the host odd (as crosvm
 * does); a read pipe's id is the guest's choice (0x80000000 and up since
 * 2024, odd numbers it predicts before). */
#define FIRST_IMAGE_ID 2
#define FIRST_HOST_ID 1

typedef enum ItemType {
        ITEM_IMAGE,             /* image requirements: size */
        ITEM_HOST_FILE,         /* a file the compositor sent, copied: fd, size */
        ITEM_WRITE_PIPE,        /* a pipe's write end the compositor sent: fd, queue */
        ITEM_READ_PIPE,         /* the read end of a pipe whose write end went to the compositor */
} ItemType;

typedef struct Item {
        uint32_t id;
        ItemType type;
        int fd;
        uint64_t size;
        uint32_t interest;      /* the epoll events asked for now (pipes) */
        bool watched, paused;   /* paused: hung up with no fence held, out of the set */
        /* ITEM_WRITE_PIPE: bytes the pipe could not take yet, and whether
         * the guest hung up after them. */
        uint8_t *queue;
        size_t queued;
        bool hang_up;
} Item;

/* A message for the compositor its socket could not take yet. */
typedef struct Outgoing {
        uint8_t *data;
        size_t len, off;
        int fds[IDS_NEW];
        unsigned n_fds;         /* sent with the first byte */
        struct Outgoing *next;
} Outgoing;

struct CrossDomain {
        uint32_t ctx_id;
        int epoll_fd;
        CrossDomainOps ops;
        bool initialized;
        bool wayland;                   /* INIT asked for the Wayland channel */
        bool unreachable;               /* ... and the compositor could not be reached */
        uint32_t query_ring, channel_ring;
        uint64_t channel_capacity;      /* bytes one channel event may take */
        unsigned ids;                   /* identifiers per SEND/RECEIVE: 0 until the guest's first SEND */

        int channel;                    /* the compositor connection, or -1 */
        uint32_t channel_interest;
        bool channel_watched, channel_paused, channel_hup, hup_reported;
        Outgoing *out, **out_tail;
        size_t out_bytes;

        /* A message from the compositor not written to the ring yet (its
         * descriptors go out at most `ids` per event, before its bytes). */
        uint8_t *in;
        size_t in_len;
        bool in_pending;
        uint32_t in_ids[RECV_MAX_FDS], in_types[RECV_MAX_FDS];
        uint64_t in_sizes[RECV_MAX_FDS];
        unsigned in_n_ids, in_next_id;

        unsigned fences;                /* channel-ring fences held */
        unsigned rr;                    /* where the next read-pipe scan starts */

        Item *items;
        unsigned n_items, n_pipes;
        uint32_t next_image_id, next_host_id;
};

void cross_domain_capabilities(bool dmabuf, uint8_t ret[CROSS_DOMAIN_CAPS_SIZE]) {
        put_le32(ret, 1);                                    /* version */
        put_le32(ret + 4, UINT32_C(1) << CHANNEL_TYPE_WAYLAND); /* supported_channels */
        put_le32(ret + 8, dmabuf ? 1 : 0);                   /* supports_dmabuf */
        put_le32(ret + 12, 0);                               /* supports_external_gpu_memory */
}

/* ---- image requirements ---------------------------------------------- */

#define FOURCC(a, b, c, d) ((uint32_t) (a) | (uint32_t) (b) << 8 | (uint32_t) (c) << 16 | (uint32_t) (d) << 24)

/* A linear layout per DRM format: bytes per pixel of each plane, and each
 * plane's subsampling (chroma planes of 4:2:0 and 4:2:2 formats). */
typedef struct Format {
        uint32_t fourcc;
        uint8_t planes, cpp[3], hsub, vsub;
} Format;

static const Format formats[] = {
        { FOURCC('R', '8', ' ', ' '), 1, { 1 }, 1, 1 },
        { FOURCC('R', '1', '6', ' '), 1, { 2 }, 1, 1 },
        { FOURCC('R', 'G', '8', '8'), 1, { 2 }, 1, 1 },
        { FOURCC('G', 'R', '8', '8'), 1, { 2 }, 1, 1 },
        { FOURCC('R', 'G', '1', '6'), 1, { 2 }, 1, 1 }, /* RGB565 */
        { FOURCC('B', 'G', '1', '6'), 1, { 2 }, 1, 1 },
        { FOURCC('X', 'R', '1', '5'), 1, { 2 }, 1, 1 },
        { FOURCC('A', 'R', '1', '5'), 1, { 2 }, 1, 1 },
        { FOURCC('X', 'R', '1', '2'), 1, { 2 }, 1, 1 },
        { FOURCC('A', 'R', '1', '2'), 1, { 2 }, 1, 1 },
        { FOURCC('R', 'G', '2', '4'), 1, { 3 }, 1, 1 }, /* RGB888 */
        { FOURCC('B', 'G', '2', '4'), 1, { 3 }, 1, 1 },
        { FOURCC('X', 'R', '2', '4'), 1, { 4 }, 1, 1 }, /* XRGB8888 */
        { FOURCC('A', 'R', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('X', 'B', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('A', 'B', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('R', 'X', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('R', 'A', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('B', 'X', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('B', 'A', '2', '4'), 1, { 4 }, 1, 1 },
        { FOURCC('X', 'R', '3', '0'), 1, { 4 }, 1, 1 },
        { FOURCC('A', 'R', '3', '0'), 1, { 4 }, 1, 1 },
        { FOURCC('X', 'B', '3', '0'), 1, { 4 }, 1, 1 },
        { FOURCC('A', 'B', '3', '0'), 1, { 4 }, 1, 1 },
        { FOURCC('X', 'R', '4', 'H'), 1, { 8 }, 1, 1 },
        { FOURCC('A', 'R', '4', 'H'), 1, { 8 }, 1, 1 },
        { FOURCC('X', 'B', '4', 'H'), 1, { 8 }, 1, 1 },
        { FOURCC('A', 'B', '4', 'H'), 1, { 8 }, 1, 1 },
        { FOURCC('Y', 'U', 'Y', 'V'), 1, { 2 }, 1, 1 },
        { FOURCC('Y', 'V', 'Y', 'U'), 1, { 2 }, 1, 1 },
        { FOURCC('U', 'Y', 'V', 'Y'), 1, { 2 }, 1, 1 },
        { FOURCC('V', 'Y', 'U', 'Y'), 1, { 2 }, 1, 1 },
        { FOURCC('N', 'V', '1', '2'), 2, { 1, 2 }, 2, 2 },
        { FOURCC('N', 'V', '2', '1'), 2, { 1, 2 }, 2, 2 },
        { FOURCC('N', 'V', '1', '6'), 2, { 1, 2 }, 2, 1 },
        { FOURCC('N', 'V', '6', '1'), 2, { 1, 2 }, 2, 1 },
        { FOURCC('P', '0', '1', '0'), 2, { 2, 4 }, 2, 2 },
        { FOURCC('Y', 'U', '1', '2'), 3, { 1, 1, 1 }, 2, 2 }, /* YUV420 */
        { FOURCC('Y', 'V', '1', '2'), 3, { 1, 1, 1 }, 2, 2 },
        { FOURCC('Y', 'U', '1', '6'), 3, { 1, 1, 1 }, 2, 1 },
        { FOURCC('Y', 'V', '1', '6'), 3, { 1, 1, 1 }, 2, 1 },
        { FOURCC('Y', 'U', '2', '4'), 3, { 1, 1, 1 }, 1, 1 },
        { FOURCC('Y', 'V', '2', '4'), 3, { 1, 1, 1 }, 1, 1 },
};

/* Rows start on 64 bytes (a cache line: what GPU allocators use for
 * linear buffers); sommelier and the compositor use the strides given. */
#define STRIDE_ALIGN 64
#define PAGE 4096

int cross_domain_image_requirements(uint32_t fourcc, uint32_t width, uint32_t height, CrossDomainImage *ret) {
        const Format *f = NULL;
        uint64_t offset = 0;

        for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
                if (formats[i].fourcc == fourcc)
                        f = &formats[i];
        if (!f || width == 0 || height == 0 || width > CROSS_DOMAIN_MAX_BLOB || height > CROSS_DOMAIN_MAX_BLOB)
                return -EINVAL;
        *ret = (CrossDomainImage) { .planes = f->planes };
        for (unsigned p = 0; p < f->planes; p++) {
                /* Chroma planes: the subsampled size, rounded up. */
                uint64_t w = p == 0 ? width : (width + f->hsub - 1) / f->hsub;
                uint64_t h = p == 0 ? height : (height + f->vsub - 1) / f->vsub;
                uint64_t stride = ALIGN_UP(w * f->cpp[p], (uint64_t) STRIDE_ALIGN);

                /* All in 64 bits: width and height are each below 2^28. */
                if (stride > UINT32_MAX || offset > UINT32_MAX)
                        return -EINVAL;
                ret->strides[p] = (uint32_t) stride;
                ret->offsets[p] = (uint32_t) offset;
                offset += stride * h;
                if (offset > CROSS_DOMAIN_MAX_BLOB)
                        return -EINVAL;
        }
        ret->size = ALIGN_UP(offset, (uint64_t) PAGE);
        return ret->size <= CROSS_DOMAIN_MAX_BLOB ? 0 : -EINVAL;
}

/* ---- items ------------------------------------------------------------ */

static Item *item_find(CrossDomain *cd, uint32_t id) {
        for (unsigned i = 0; i < cd->n_items; i++)
                if (cd->items[i].id == id)
                        return &cd->items[i];
        return NULL;
}

static Item *item_add(CrossDomain *cd, uint32_t id, ItemType type, int fd, uint64_t size) {
        if (cd->n_items >= CROSS_DOMAIN_MAX_ITEMS)
                return NULL;
        if (!cd->items) {
                cd->items = calloc(CROSS_DOMAIN_MAX_ITEMS, sizeof(*cd->items));
                if (!cd->items)
                        return NULL;
        }
        cd->items[cd->n_items] = (Item) { .id = id, .type = type, .fd = fd, .size = size };
        if (type == ITEM_WRITE_PIPE || type == ITEM_READ_PIPE)
                cd->n_pipes++;
        return &cd->items[cd->n_items++];
}

static void item_remove(CrossDomain *cd, Item *it) {
        if (it->watched)
                (void) epoll_ctl(cd->epoll_fd, EPOLL_CTL_DEL, it->fd, NULL);
        safe_close(it->fd);
        free(it->queue);
        if (it->type == ITEM_WRITE_PIPE || it->type == ITEM_READ_PIPE)
                cd->n_pipes--;
        *it = cd->items[--cd->n_items];
}

/* The next free id of a series stepping by 2 (wrapping below 2^31, where
 * the guest's pipe ids begin). */
static uint32_t id_next(CrossDomain *cd, uint32_t *series, uint32_t first) {
        for (;;) {
                uint32_t id = *series;

                *series = id + 2 >= UINT32_C(0x80000000) ? first : id + 2;
                if (!item_find(cd, id))
                        return id;
        }
}

/* ---- epoll interest ---------------------------------------------------- */

static uint64_t epoll_data(const CrossDomain *cd, uint32_t item) {
        return (uint64_t) cd->ctx_id << 32 | item;
}

static int watch(CrossDomain *cd, int fd, uint32_t item, bool *watched, uint32_t *interest, uint32_t want) {
        struct epoll_event ev = { .events = want, .data.u64 = epoll_data(cd, item) };

        if (*watched && *interest == want)
                return 0;
        if (epoll_ctl(cd->epoll_fd, *watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        *watched = true;
        *interest = want;
        return 0;
}

static void unwatch(CrossDomain *cd, int fd, bool *watched) {
        if (*watched)
                (void) epoll_ctl(cd->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        *watched = false;
}

/* Item 0 is the channel; pipes are watched by their ids (never 0). What
 * is read waits for a fence: with none held nothing is asked for, so a
 * guest that never polls leaves the compositor's bytes in the kernel's
 * socket buffer, not in ours. A hung-up descriptor is reported whatever
 * was asked: it leaves the set, and is read to its end when a fence
 * comes. */
static void interest_update(CrossDomain *cd) {
        bool reading = cd->fences > 0 && !cd->in_pending;

        if (cd->channel >= 0 && !cd->channel_paused)
                (void) watch(cd, cd->channel, 0, &cd->channel_watched, &cd->channel_interest,
                             (reading ? EPOLLIN : 0) | (cd->out ? EPOLLOUT : 0));
        for (unsigned i = 0; i < cd->n_items; i++) {
                Item *it = &cd->items[i];

                if (it->type == ITEM_READ_PIPE && !it->paused)
                        (void) watch(cd, it->fd, it->id, &it->watched, &it->interest, reading ? EPOLLIN : 0);
                else if (it->type == ITEM_WRITE_PIPE && it->fd >= 0)
                        (void) watch(cd, it->fd, it->id, &it->watched, &it->interest, it->queued ? EPOLLOUT : 0);
        }
}

/* ---- life ------------------------------------------------------------- */

int cross_domain_new(uint32_t ctx_id, int epoll_fd, const CrossDomainOps *ops, CrossDomain **ret) {
        CrossDomain *cd = calloc(1, sizeof(*cd));

        if (!cd)
                return -ENOMEM;
        cd->ctx_id = ctx_id;
        cd->epoll_fd = epoll_fd;
        cd->ops = *ops;
        cd->channel = -1;
        cd->out_tail = &cd->out;
        cd->next_image_id = FIRST_IMAGE_ID;
        cd->next_host_id = FIRST_HOST_ID;
        *ret = cd;
        return 0;
}

static void in_drop(CrossDomain *cd) {
        /* Descriptors not handed out yet are items already: they go with
         * the items. */
        free(cd->in);
        cd->in = NULL;
        cd->in_len = 0;
        cd->in_pending = false;
        cd->in_n_ids = cd->in_next_id = 0;
}

static void outgoing_free(Outgoing *o) {
        for (unsigned i = 0; i < o->n_fds; i++)
                safe_close(o->fds[i]);
        free(o->data);
        free(o);
}

static void channel_close(CrossDomain *cd) {
        unwatch(cd, cd->channel, &cd->channel_watched);
        cd->channel = safe_close(cd->channel);
        while (cd->out) {
                Outgoing *o = cd->out;

                cd->out = o->next;
                outgoing_free(o);
        }
        cd->out_tail = &cd->out;
        cd->out_bytes = 0;
}

CrossDomain *cross_domain_free(CrossDomain *cd) {
        if (!cd)
                return NULL;
        channel_close(cd);
        in_drop(cd);
        while (cd->n_items > 0)
                item_remove(cd, &cd->items[cd->n_items - 1]);
        free(cd->items);
        free(cd);
        return NULL;
}

/* ---- guest commands ----------------------------------------------------- */

static int cmd_init(CrossDomain *cd, const uint8_t *p, size_t size) {
        uint32_t query, channel, type;
        uint64_t qsize, csize;
        int fd, r;

        /* The layout is told by the command's own size. */
        if (size != INIT_SIZE_ONE_RING && size != INIT_SIZE_TWO_RINGS)
                return -EINVAL;
        /* Twice is refused, unless the compositor was not there. */
        if (cd->initialized && !cd->unreachable)
                return -EINVAL;
        query = get_le32(p + 8);
        channel = size == INIT_SIZE_TWO_RINGS ? get_le32(p + 12) : query;
        type = get_le32(p + size - 4);
        if (cd->ops.ring_size(cd->ops.ctx, query, &qsize) < 0 || qsize < IMAGE_REQS_SIZE)
                return -EINVAL;
        /* Channel type 0: image requirements only, no compositor. */
        if (type != 0 && type != CHANNEL_TYPE_WAYLAND)
                return -EINVAL;
        if (type == CHANNEL_TYPE_WAYLAND) {
                if (cd->ops.ring_size(cd->ops.ctx, channel, &csize) < 0 || csize < MIN_CHANNEL_RING)
                        return -EINVAL;
                fd = cd->ops.connect ? cd->ops.connect(cd->ops.ctx) : -ENOTCONN;
                if (fd < 0) {
                        log_warning_errno(fd, "cross-domain context %u: cannot reach the compositor: %m", cd->ctx_id);
                        /* The guest's driver never sees this answer: its
                         * POLL gets the channel's hang-up instead, so that
                         * sommelier ends rather than reading empty rings. */
                        cd->query_ring = query;
                        cd->channel_ring = channel;
                        cd->channel_capacity = MIN(csize, (uint64_t) MAX_CMD_SIZE);
                        cd->initialized = cd->wayland = cd->unreachable = true;
                        cd->channel_hup = true;
                        cd->hup_reported = false;
                        return -EPIPE;
                }
                /* Never blocking the device's loop. */
                r = fcntl(fd, F_GETFL);
                if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0) {
                        safe_close(fd);
                        return -EIO;
                }
                cd->channel = fd;
                cd->channel_capacity = MIN(csize, (uint64_t) MAX_CMD_SIZE);
        }
        cd->query_ring = query;
        cd->channel_ring = channel;
        cd->initialized = true;
        cd->wayland = type == CHANNEL_TYPE_WAYLAND;
        cd->unreachable = cd->channel_hup = cd->hup_reported = false;
        interest_update(cd);
        return 0;
}

static int cmd_get_image_requirements(CrossDomain *cd, const uint8_t *p, size_t size) {
        uint8_t answer[IMAGE_REQS_SIZE] = {};
        struct iovec iov = { answer, sizeof(answer) };
        CrossDomainImage img;
        uint32_t id = 0;
        Item *it;
        int r;

        if (size != GET_REQS_SIZE || !cd->initialized)
                return -EINVAL;
        /* flags are gbm usage flags: a linear layout serves them all. */
        r = cross_domain_image_requirements(get_le32(p + 16), get_le32(p + 8), get_le32(p + 12), &img);
        if (r < 0)
                return r;
        /* An id already given for the same size is reused: a guest asking
         * again and again takes no more items. */
        for (unsigned i = 0; i < cd->n_items; i++)
                if (cd->items[i].type == ITEM_IMAGE && cd->items[i].size == img.size)
                        id = cd->items[i].id;
        if (id == 0) {
                id = id_next(cd, &cd->next_image_id, FIRST_IMAGE_ID);
                it = item_add(cd, id, ITEM_IMAGE, -1, img.size);
                if (!it)
                        return -ENOSPC;
        }
        for (unsigned i = 0; i < 4; i++) {
                put_le32(answer + 4 * i, img.strides[i]);
                put_le32(answer + 16 + 4 * i, img.offsets[i]);
        }
        put_le64(answer + 32, 0);               /* DRM_FORMAT_MOD_LINEAR */
        put_le64(answer + 40, img.size);
        put_le32(answer + 48, id);
        put_le32(answer + 52, 1);               /* VIRTIO_GPU_MAP_CACHE_CACHED */
        put_le32(answer + 56, UINT32_MAX);      /* memory_idx -1: no Vulkan */
        put_le32(answer + 60, UINT32_MAX);      /* physical_device_idx -1 */
        return cd->ops.ring_write(cd->ops.ctx, cd->query_ring, &iov, 1);
}

/* Queues what the compositor's socket did not take (the descriptors, not
 * sent yet when nothing was, are duplicated). */
static int out_queue(CrossDomain *cd, const uint8_t *data, size_t len, const int *fds, unsigned n_fds) {
        Outgoing *o;

        if (cd->out_bytes + len > CROSS_DOMAIN_MAX_QUEUED)
                return -ENOSPC;
        o = calloc(1, sizeof(*o));
        if (!o || !(o->data = malloc(len ? len : 1))) {
                free(o);
                return -ENOMEM;
        }
        memcpy(o->data, data, len);
        o->len = len;
        for (unsigned i = 0; i < n_fds; i++) {
                o->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                if (o->fds[i] < 0) {
                        o->n_fds = i;
                        outgoing_free(o);
                        return -EIO;
                }
        }
        o->n_fds = n_fds;
        *cd->out_tail = o;
        cd->out_tail = &o->next;
        cd->out_bytes += len;
        return 0;
}

/* One sendmsg() of data with fds; the bytes sent, or a negative errno
 * (-EAGAIN: nothing could be). */
static ssize_t send_some(int fd, const uint8_t *data, size_t len, const int *fds, unsigned n_fds) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * IDS_NEW)];
        } c;
        struct iovec iov = { (void *) data, len };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (n_fds > 0) {
                memset(&c, 0, sizeof(c));
                m.msg_control = c.buf;
                m.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c.h.cmsg_level = SOL_SOCKET;
                c.h.cmsg_type = SCM_RIGHTS;
                c.h.cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(&c.h), fds, sizeof(int) * n_fds);
        }
        n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        return n < 0 ? -errno : n;
}

/* Sends what waits for the compositor, in order, as far as it goes. */
static int out_flush(CrossDomain *cd) {
        while (cd->out) {
                Outgoing *o = cd->out;
                ssize_t n = send_some(cd->channel, o->data + o->off, o->len - o->off, o->fds,
                                      o->off == 0 ? o->n_fds : 0);

                if (n == -EAGAIN)
                        return 0;
                if (n < 0)
                        return (int) n;
                if (o->off == 0)
                        for (unsigned i = 0; i < o->n_fds; i++)
                                o->fds[i] = safe_close(o->fds[i]);
                o->off += (size_t) n;
                cd->out_bytes -= (size_t) n;
                if (o->off < o->len)
                        return 0;
                cd->out = o->next;
                if (!cd->out)
                        cd->out_tail = &cd->out;
                o->n_fds = 0;
                outgoing_free(o);
        }
        return 0;
}

static int channel_send(CrossDomain *cd, const uint8_t *data, size_t len, const int *fds, unsigned n_fds) {
        ssize_t n = -EAGAIN;

        /* After what is queued already, in order. */
        if (!cd->out) {
                n = send_some(cd->channel, data, len, fds, n_fds);
                if (n < 0 && n != -EAGAIN)
                        return (int) n;
                if (n == (ssize_t) len)
                        return 0;
        }
        if (n > 0)
                return out_queue(cd, data + n, len - (size_t) n, NULL, 0);
        return out_queue(cd, data, len, fds, n_fds);
}

static int cmd_send(CrossDomain *cd, const uint8_t *p, size_t size) {
        uint32_t n_ids, data_size;
        int fds[IDS_NEW], pipe_fds[2] = { -1, -1 };
        uint32_t pipe_id = 0;
        unsigned ids, n = 0;
        size_t hdr;
        int r = 0;

        if (size < 16 || !cd->initialized)
                return -EINVAL;
        n_ids = get_le32(p + 8);
        data_size = get_le32(p + 12);
        /* The header is what the command's size leaves for it. */
        if (data_size > size)
                return -EINVAL;
        hdr = size - data_size;
        if (hdr == SR_HDR_SIZE(IDS_OLD))
                ids = IDS_OLD;
        else if (hdr == SR_HDR_SIZE(IDS_NEW))
                ids = IDS_NEW;
        else
                return -EINVAL;
        if (n_ids > ids)
                return -EINVAL;
        if (cd->channel < 0)
                return -EPIPE;
        cd->ids = ids;
        for (uint32_t i = 0; i < n_ids; i++) {
                uint32_t id = get_le32(p + 16 + 4 * i), type = get_le32(p + 16 + 4 * (ids + i));

                switch (type) {
                case ID_TYPE_VIRTGPU_BLOB:
                        /* Only blobs this module made have a descriptor. */
                        r = cd->ops.resource_fd(cd->ops.ctx, id, &fds[n]);
                        if (r < 0)
                                goto out;
                        n++;
                        break;
                case ID_TYPE_READ_PIPE:
                        /* The compositor writes (clipboard contents) into a
                         * pipe whose read end stays here, the guest's id
                         * its name. One per message, as crosvm. */
                        if (pipe_fds[0] >= 0 || id == 0 || item_find(cd, id)) {
                                r = -EINVAL;
                                goto out;
                        }
                        if (cd->n_pipes >= CROSS_DOMAIN_MAX_PIPES || cd->n_items >= CROSS_DOMAIN_MAX_ITEMS) {
                                r = -ENOSPC;
                                goto out;
                        }
                        if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
                                r = -EIO;
                                goto out;
                        }
                        pipe_id = id;
                        fds[n++] = pipe_fds[1];
                        break;
                default:
                        /* Sync objects, write pipes back: not defined here. */
                        r = -EINVAL;
                        goto out;
                }
        }
        r = channel_send(cd, p + hdr, data_size, fds, n);
        if (r == 0 && pipe_fds[0] >= 0) {
                if (!item_add(cd, pipe_id, ITEM_READ_PIPE, pipe_fds[0], 0))
                        r = -ENOSPC;
                else
                        pipe_fds[0] = -1;
        }
out:
        safe_close(pipe_fds[0]);
        safe_close(pipe_fds[1]);
        if (r == 0)
                interest_update(cd);
        return r;
}

/* Writes what a write pipe can take now; 0, or negative errno when the
 * pipe is gone (its reader closed it). */
static int pipe_flush(Item *it) {
        while (it->queued > 0) {
                ssize_t n = write(it->fd, it->queue, it->queued);

                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                memmove(it->queue, it->queue + n, it->queued - (size_t) n);
                it->queued -= (size_t) n;
        }
        return 0;
}

static int cmd_write(CrossDomain *cd, const uint8_t *p, size_t size) {
        uint32_t id, hang_up, data_size;
        size_t total = 0;
        Item *it;
        int r;

        if (size < RW_HDR_SIZE || !cd->initialized)
                return -EINVAL;
        id = get_le32(p + 8);
        hang_up = get_le32(p + 12);
        data_size = get_le32(p + 16);
        if (data_size != size - RW_HDR_SIZE || hang_up > 1)
                return -EINVAL;
        it = item_find(cd, id);
        /* A pipe the compositor gave, not hung up already. */
        if (!it || it->type != ITEM_WRITE_PIPE || it->hang_up)
                return -EINVAL;
        for (unsigned i = 0; i < cd->n_items; i++)
                if (cd->items[i].type == ITEM_WRITE_PIPE)
                        total += cd->items[i].queued;
        if (total + data_size > CROSS_DOMAIN_MAX_QUEUED)
                return -ENOSPC;
        if (data_size > 0) {
                uint8_t *q = realloc(it->queue, it->queued + data_size);

                if (!q)
                        return -ENOMEM;
                memcpy(q + it->queued, p + RW_HDR_SIZE, data_size);
                it->queue = q;
                it->queued += data_size;
        }
        it->hang_up = hang_up;
        r = pipe_flush(it);
        /* Closed once all of it went, or when its reader is gone (what it
         * did not read is nobody's). */
        if (r < 0 || (it->hang_up && it->queued == 0))
                item_remove(cd, it);
        interest_update(cd);
        return r == -EPIPE ? 0 : r;
}

int cross_domain_submit(CrossDomain *cd, const void *cmds, size_t len) {
        const uint8_t *p = cmds;
        size_t off = 0;

        if (len == 0)
                return -EINVAL;
        while (off < len) {
                uint16_t size;
                int r;

                if (len - off < HDR_SIZE)
                        return -EINVAL;
                size = get_le16(p + off + 2);
                if (size < HDR_SIZE || size > len - off)
                        return -EINVAL;
                switch (p[off]) {
                case CMD_INIT:
                        r = cmd_init(cd, p + off, size);
                        break;
                case CMD_GET_IMAGE_REQUIREMENTS:
                        r = cmd_get_image_requirements(cd, p + off, size);
                        break;
                case CMD_POLL:
                        /* The fence on the channel ring that comes with it
                         * does the waiting (cross_domain_fence()). */
                        r = size == POLL_SIZE && cd->wayland ? 0 : -EINVAL;
                        break;
                case CMD_SEND:
                        r = cmd_send(cd, p + off, size);
                        break;
                case CMD_WRITE:
                        r = cmd_write(cd, p + off, size);
                        break;
                default:
                        /* RECEIVE and READ go to the guest, never from it. */
                        r = -EINVAL;
                        break;
                }
                if (r < 0)
                        return r;
                off += size;
        }
        return 0;
}

/* ---- host events into the channel ring -------------------------------- */

static int ring_event(CrossDomain *cd, const struct iovec *iov, unsigned n) {
        int r = cd->ops.ring_write(cd->ops.ctx, cd->channel_ring, iov, n);

        if (r < 0)
                log_warning_errno(r, "cross-domain context %u: channel ring %u not writable: %m", cd->ctx_id,
                                  cd->channel_ring);
        /* The fence completes either way: a guest that freed its ring
         * reads whatever it has, it does not hang. */
        cd->fences--;
        cd->ops.event_written(cd->ops.ctx, cd->ctx_id);
        return r;
}

/* A descriptor the compositor sent becomes an item: a regular file (a
 * keymap) is copied into a sealed memfd of ours, so the guest never maps
 * a file the compositor could shrink under it; a pipe's write end (the
 * clipboard's send) is kept for WRITE. Anything else: -EINVAL. */
static int host_descriptor(CrossDomain *cd, int fd, uint32_t *ret_id, uint32_t *ret_type, uint64_t *ret_size) {
        struct stat st;
        Item *it;
        int copy = -1, flags;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (cd->n_items >= CROSS_DOMAIN_MAX_ITEMS)
                return -ENOSPC;
        if (S_ISFIFO(st.st_mode)) {
                flags = fcntl(fd, F_GETFL);
                if (flags < 0 || (flags & O_ACCMODE) != O_WRONLY || cd->n_pipes >= CROSS_DOMAIN_MAX_PIPES)
                        return -EINVAL;
                if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
                it = item_add(cd, id_next(cd, &cd->next_host_id, FIRST_HOST_ID), ITEM_WRITE_PIPE, fd, 0);
                if (!it)
                        return -ENOSPC;
                *ret_id = it->id;
                *ret_type = ID_TYPE_WRITE_PIPE;
                *ret_size = 0;
                return 0;
        }
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > CROSS_DOMAIN_MAX_HOST_FILE)
                return -EINVAL;
        copy = memfd_create("cross-domain-host", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (copy < 0)
                return -errno;
        if (ftruncate(copy, ALIGN_UP(st.st_size, (off_t) PAGE)) < 0)
                goto fail;
        for (off_t off = 0; off < st.st_size;) {
                uint8_t buf[16384];
                ssize_t n = pread(fd, buf, MIN((off_t) sizeof(buf), st.st_size - off), off);

                if (n <= 0 || pwrite(copy, buf, (size_t) n, off) != n)
                        goto fail;
                off += n;
        }
        if (fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                goto fail;
        it = item_add(cd, id_next(cd, &cd->next_host_id, FIRST_HOST_ID), ITEM_HOST_FILE, copy, (uint64_t) st.st_size);
        if (!it)
                goto fail;
        safe_close(fd);
        *ret_id = it->id;
        *ret_type = ID_TYPE_VIRTGPU_BLOB;
        *ret_size = (uint64_t) st.st_size;
        return 0;
fail:
        safe_close(copy);
        return -EIO;
}

/* Reads one message from the compositor into cd->in: its bytes (what one
 * channel event can carry) and every descriptor with them. 1 read, 0
 * nothing there, -EPIPE hung up. */
static int channel_read(CrossDomain *cd) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * RECV_MAX_FDS)];
        } c;
        size_t cap = cd->channel_capacity - SR_HDR_SIZE(cd->ids);
        struct msghdr m = { .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
        struct iovec iov;
        ssize_t n;

        cd->in = malloc(cap);
        if (!cd->in)
                return -ENOMEM;
        iov = (struct iovec) { cd->in, cap };
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        n = recvmsg(cd->channel, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        /* On an error nothing was received: the control buffer is not
         * to be read (found by fuzz-cross-domain). */
        if (n < 0) {
                int r = errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;

                in_drop(cd);
                return r;
        }
        cd->in_len = n > 0 ? (size_t) n : 0;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
                unsigned k;
                int *fds;

                if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (unsigned) ((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                fds = (int *) CMSG_DATA(h);
                for (unsigned i = 0; i < k; i++) {
                        int fd;

                        memcpy(&fd, fds + i, sizeof(fd));
                        if (cd->in_n_ids < RECV_MAX_FDS &&
                            host_descriptor(cd, fd, &cd->in_ids[cd->in_n_ids], &cd->in_types[cd->in_n_ids],
                                            &cd->in_sizes[cd->in_n_ids]) == 0) {
                                cd->in_n_ids++;
                        } else {
                                /* The guest would wait for a descriptor it
                                 * never gets: the compositor's message
                                 * cannot be passed on whole. */
                                log_warning("cross-domain context %u: the compositor sent a descriptor that "
                                            "cannot go to the guest (neither a file nor a pipe's write end)",
                                            cd->ctx_id);
                                safe_close(fd);
                        }
                }
        }
        if (n <= 0 && cd->in_n_ids == 0) {
                in_drop(cd);
                return -EPIPE;
        }
        cd->in_pending = true;
        return 1;
}

/* Writes the next RECEIVE of cd->in: up to `ids` descriptors, and the
 * bytes with the last of them. */
static void receive_event(CrossDomain *cd) {
        uint8_t hdr[SR_HDR_SIZE(IDS_NEW)] = {};
        unsigned ids = cd->ids, k = MIN(cd->in_n_ids - cd->in_next_id, ids);
        bool last = cd->in_next_id + k == cd->in_n_ids;
        size_t data = last ? cd->in_len : 0;
        struct iovec iov[2] = { { hdr, SR_HDR_SIZE(ids) }, { cd->in, data } };

        hdr[0] = CMD_RECEIVE;
        put_le16(hdr + 2, (uint16_t) (SR_HDR_SIZE(ids) + data));
        put_le32(hdr + 8, k);
        put_le32(hdr + 12, (uint32_t) data);
        for (unsigned i = 0; i < k; i++) {
                unsigned j = cd->in_next_id + i;

                put_le32(hdr + 16 + 4 * i, cd->in_ids[j]);
                put_le32(hdr + 16 + 4 * (ids + i), cd->in_types[j]);
                put_le32(hdr + 16 + 4 * (2 * ids + i), (uint32_t) MIN(cd->in_sizes[j], (uint64_t) UINT32_MAX));
        }
        cd->in_next_id += k;
        (void) ring_event(cd, iov, data > 0 ? 2 : 1);
        if (last)
                in_drop(cd);
}

/* A READ event: len bytes from a read pipe (or the channel's hang-up:
 * identifier 0, hang_up 1, docs/wayland.md). */
static void read_event(CrossDomain *cd, uint32_t id, bool hang_up, const uint8_t *data, size_t len) {
        uint8_t hdr[RW_HDR_SIZE] = {};
        struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *) data, len } };

        hdr[0] = CMD_READ;
        put_le16(hdr + 2, (uint16_t) (RW_HDR_SIZE + len));
        put_le32(hdr + 8, id);
        put_le32(hdr + 12, hang_up ? 1 : 0);
        put_le32(hdr + 16, (uint32_t) len);
        (void) ring_event(cd, iov, len > 0 ? 2 : 1);
}

/* One read pipe's next event: 1 written, 0 nothing to read. */
static int read_pipe_event(CrossDomain *cd, Item *it) {
        size_t cap = cd->channel_capacity - RW_HDR_SIZE;
        uint8_t *buf = malloc(cap);
        ssize_t n;

        if (!buf)
                return 0;
        n = read(it->fd, buf, cap);
        if (n < 0 && errno == EAGAIN) {
                free(buf);
                return 0;
        }
        if (n > 0) {
                read_event(cd, it->id, false, buf, (size_t) n);
        } else {
                /* Its writer is done (or failed): the guest closes its end. */
                read_event(cd, it->id, true, NULL, 0);
                item_remove(cd, it);
        }
        free(buf);
        return 1;
}

/* Writes channel events while fences are held and there is something to
 * tell: the compositor's next message, a read pipe's bytes, or the
 * compositor's hang-up (once). */
static void events_run(CrossDomain *cd) {
        while (cd->fences > 0 && cd->initialized) {
                bool wrote = false;

                if (cd->in_pending) {
                        receive_event(cd);
                        continue;
                }
                /* Read pipes first from where the last scan stopped, so
                 * none starves the others. */
                for (unsigned k = 0; k < cd->n_items && !wrote; k++) {
                        Item *it = &cd->items[(cd->rr + k) % cd->n_items];

                        if (it->type == ITEM_READ_PIPE && read_pipe_event(cd, it) > 0) {
                                cd->rr = (cd->rr + k + 1) % MAX(cd->n_items, 1u);
                                wrote = true;
                        }
                }
                if (wrote)
                        continue;
                /* The compositor's bytes wait until the guest told us its
                 * layout (its first SEND; Wayland clients speak first). */
                if (cd->channel >= 0 && cd->ids > 0) {
                        int r = channel_read(cd);

                        if (r > 0)
                                continue;
                        if (r == -EPIPE) {
                                log_info("cross-domain context %u: the compositor closed the connection",
                                         cd->ctx_id);
                                channel_close(cd);
                                cd->channel_hup = true;
                        }
                }
                if (cd->channel_hup && !cd->hup_reported) {
                        cd->hup_reported = true;
                        read_event(cd, 0, true, NULL, 0);
                        continue;
                }
                break;
        }
        interest_update(cd);
}

void cross_domain_fence(CrossDomain *cd) {
        cd->fences++;
        events_run(cd);
}

void cross_domain_drop_fences(CrossDomain *cd) {
        cd->fences = 0;
        interest_update(cd);
}

void cross_domain_ready(CrossDomain *cd, uint32_t item, uint32_t events) {
        if (item == 0) {
                if (cd->channel < 0)
                        return;
                if (events & EPOLLOUT) {
                        int r = out_flush(cd);

                        if (r < 0) {
                                log_info("cross-domain context %u: the compositor stopped reading: %s",
                                         cd->ctx_id, strerror(-r));
                                channel_close(cd);
                                cd->channel_hup = true;
                        }
                }
                /* A hang-up with no fence held: out of the set (it would
                 * be reported again and again); read to its end later. */
                if ((events & (EPOLLHUP | EPOLLERR)) && cd->fences == 0 && cd->channel >= 0) {
                        unwatch(cd, cd->channel, &cd->channel_watched);
                        cd->channel_paused = true;
                }
        } else {
                Item *it = item_find(cd, item);

                if (!it)
                        return;
                if (it->type == ITEM_WRITE_PIPE) {
                        int r = pipe_flush(it);

                        if (r < 0 || (events & EPOLLERR) || (it->hang_up && it->queued == 0))
                                item_remove(cd, it);
                } else if ((events & (EPOLLHUP | EPOLLERR)) && cd->fences == 0) {
                        unwatch(cd, it->fd, &it->watched);
                        it->paused = true;
                }
        }
        events_run(cd);
}

int cross_domain_create_blob(CrossDomain *cd, uint64_t blob_id, uint64_t size, int *ret_fd) {
        Item *it = blob_id <= UINT32_MAX ? item_find(cd, (uint32_t) blob_id) : NULL;
        int fd;

        if (!it || size == 0)
                return -EINVAL;
        size = ALIGN_UP(size, (uint64_t) PAGE);
        if (it->type == ITEM_HOST_FILE) {
                /* Taken once: the guest made its blob of it. */
                if (size > ALIGN_UP(it->size, (uint64_t) PAGE))
                        return -EINVAL;
                *ret_fd = TAKE_FD(it->fd);
                item_remove(cd, it);
                return 0;
        }
        if (it->type != ITEM_IMAGE || size > it->size)
                return -EINVAL;
        /* A new buffer each time: the same requirements serve many. Sealed
         * against shrinking: the compositor maps it too, and the guest's
         * mapping of it must never fault. */
        fd = memfd_create("cross-domain", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -ENOMEM;
        if (ftruncate(fd, (off_t) size) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
                safe_close(fd);
                return -ENOMEM;
        }
        *ret_fd = fd;
        return 0;
}
