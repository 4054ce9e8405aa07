/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for the cross-domain context type (wayland/cross-domain.c)
 * through the virtio-gpu core (gpu/virtio-gpu.c), as the guest driver and
 * the host compositor drive it. One device per input: the 2D back-end,
 * blob on (a 1 MiB host-visible region whose map callback checks what it is
 * handed), context type cross-domain, a 64 MiB memory cap, 1 MiB of guest
 * RAM; each connection to the "compositor" is a socket pair whose other end
 * the fuzzer holds. Context 7 is made with capset 5 and two guest-blob
 * rings (ids 100 and 101, a page each); the first byte's low two bits
 * choose the INIT sent before the records: 0 the 20-byte one (two rings),
 * 1 the 16-byte one (one ring), 2 and 3 none (the input's own SUBMITs may);
 * its bit 2 gives the device's end of each connection the kernel's
 * smallest send buffer (SENDs then queue), and the pipes are a page.
 * Then records, each
 *
 *     u8 op, u16 len, then len bytes
 *
 * op 0: SUBMIT_3D of the bytes as the command buffer (any cmd_size), fenced
 *       on no ring;
 * op 1: a fenced POLL on the channel ring (1), held until an event;
 * op 2: RESOURCE_CREATE_BLOB: u8 kind (even: host3d, odd: guest, a page at
 *       the gpa the next bytes give), u8 resource id (1..256), u32 blob id,
 *       u32 size; host3d ones on context 7 with MAPPABLE|SHAREABLE;
 * op 3: RESOURCE_MAP_BLOB: u8 resource id, u8 offset in pages;
 * op 4: RESOURCE_UNREF (u8 id, bit 8 clear) or UNMAP_BLOB (bit 8 set: u16);
 * op 5: the compositor (the newest connection) sends: u8 n descriptors (low 3 bits), then n kind
 *       bytes (memfd of the next byte's pages, memfd past
 *       CROSS_DOMAIN_MAX_HOST_FILE, pipe read end, pipe write end, a socket,
 *       /dev/null), then the bytes (at least one, to carry them);
 * op 6: virtio_gpu_dispatch();
 * op 7: the compositor reads all it was sent (descriptors closed);
 * op 8: the fuzzer writes the bytes into, or closes, a pipe end it kept
 *       (the other end of one it sent, or of one the guest had it send);
 * op 9: the compositor (the newest connection) hangs up;
 * op 10: CTX_DESTROY of context 7, then CTX_CREATE of it again (capset 5);
 * op 11: guest RAM writes (u32 offset, then the bytes): the rings' contents.
 *
 * It must never crash, touch memory outside guest RAM, answer past a
 * response buffer, take more than the memory cap, hand the map callback
 * a range outside the region or past its descriptor's pages, complete a
 * channel fence out of order or twice, or leave one held once its context
 * is destroyed; after each input the descriptors open are exactly those
 * open before it, every number (fuzz-vhost-user checks a window from its
 * lowest free one; an input here may hold thousands): none leaked, none
 * closed that was not the device's. The process ignores SIGPIPE, as
 * majordome-gpu does.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu/virtio-gpu.h"
#include "common/unaligned.h"
#include "wayland/cross-domain.h"

#define MEM_SIZE (1 * MiB)
#define REGION_SIZE (1 * MiB)
#define MAX_MEMORY (64 * MiB)
#define CTX 7
#define QUERY 100
#define CHANNEL 101
#define QUERY_GPA 0x10000
#define CHANNEL_GPA 0x20000
#define MAX_CONNECTIONS 16
#define MAX_KEPT 64
#define MAX_TOKENS 4096
/* Descriptor numbers checked for leaks: all below the soft limit here. */
#define MAX_FDS 65536

typedef struct Fuzz {
        int compositors[MAX_CONNECTIONS];
        unsigned n_compositors;
        int kept[MAX_KEPT];             /* pipe ends the fuzzer holds */
        unsigned n_kept;
        uint64_t last_done, n_done, n_held;
        uint64_t fence;
        bool small_buffers;
} Fuzz;

static GuestMemory *mem;
static uint8_t resp[VIRTIO_GPU_MAX_RESPONSE];

/* The open descriptors, as a bitmap of MAX_FDS, from /proc/self/fd
 * (its own directory descriptor left out): every number, as an input can
 * hold thousands at once. */
static void open_fds(uint64_t *ret) {
        struct dirent *e;
        DIR *d;

        memset(ret, 0, MAX_FDS / 8);
        d = opendir("/proc/self/fd");
        if (!d)
                abort();
        while ((e = readdir(d))) {
                int fd = atoi(e->d_name);

                if (e->d_name[0] == '.' || fd == dirfd(d))
                        continue;
                if (fd < 0 || fd >= MAX_FDS)
                        abort();
                ret[fd / 64] |= UINT64_C(1) << (fd % 64);
        }
        closedir(d);
}

static int on_connect(void *ctx) {
        Fuzz *f = ctx;
        int sv[2];

        if (f->n_compositors >= MAX_CONNECTIONS)
                return -ECONNREFUSED;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        /* The kernel's smallest send buffer: a compositor that does not
         * read fills it after a few KiB, and SENDs queue in the module. */
        if (f->small_buffers && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int) { 1 }, sizeof(int)) < 0)
                abort();
        f->compositors[f->n_compositors++] = sv[1];
        return sv[0];
}

/* The front-end's side of MAP_BLOB: the range is in the region, and the
 * guest may touch every page of it (a page past the descriptor's end is a
 * SIGBUS in the guest's mapping, or the VMM's). */
static int on_map(void *ctx, int fd, uint64_t offset, uint64_t len) {
        struct stat st;

        (void) ctx;
        if (offset % VIRTIO_GPU_BLOB_PAGE != 0 || len == 0 || offset > REGION_SIZE || len > REGION_SIZE - offset)
                abort();
        if (fstat(fd, &st) < 0 || st.st_size < 0 ||
            len > ALIGN_UP((uint64_t) st.st_size, (uint64_t) VIRTIO_GPU_BLOB_PAGE))
                abort();
        return 0;
}

static int on_unmap(void *ctx, uint64_t offset, uint64_t len) {
        (void) ctx;
        if (offset > REGION_SIZE || len > REGION_SIZE - offset)
                abort();
        return 0;
}

/* Held channel fences complete in the order they were given (one ring),
 * each once. */
static void on_done(void *ctx, uint64_t token) {
        Fuzz *f = ctx;

        if (token <= f->last_done || token > f->n_held)
                abort();
        f->last_done = token;
        f->n_done++;
}

static uint32_t control(VirtioGpu *g, const uint8_t *req, size_t len, uint64_t token, bool *ret_held) {
        bool held = false;
        size_t n;

        n = virtio_gpu_handle_token(g, mem, VIRTIO_GPU_QUEUE_CONTROL, req, len, resp, sizeof(resp), token, &held);
        if (n < 24 || n > sizeof(resp))
                abort();
        if (ret_held)
                *ret_held = held;
        else if (held)
                abort();
        return get_le32(resp);
}

static void hdr(uint8_t *b, uint32_t type, uint32_t flags, uint64_t fence, uint32_t ctx, uint8_t ring) {
        memset(b, 0, 24);
        put_le32(b, type);
        put_le32(b + 4, flags);
        put_le64(b + 8, fence);
        put_le32(b + 16, ctx);
        b[20] = ring;
}

static uint32_t ctx_create(VirtioGpu *g) {
        uint8_t b[24 + 72] = {};

        hdr(b, VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, CTX, 0);
        put_le32(b + 28, CROSS_DOMAIN_CAPSET);
        return control(g, b, sizeof(b), 0, NULL);
}

static uint32_t create_blob(VirtioGpu *g, uint32_t id, bool guest, uint64_t blob_id, uint64_t size, uint64_t gpa) {
        uint8_t b[24 + 32 + 16] = {};

        hdr(b, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CTX, 0);
        put_le32(b + 24, id);
        put_le32(b + 28, guest ? VIRTIO_GPU_BLOB_MEM_GUEST : VIRTIO_GPU_BLOB_MEM_HOST3D);
        put_le32(b + 32, guest ? VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE
                               : VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE);
        put_le32(b + 36, guest ? 1 : 0);
        put_le64(b + 40, blob_id);
        put_le64(b + 48, size);
        put_le64(b + 56, gpa);
        put_le32(b + 64, 4096);
        return control(g, b, guest ? sizeof(b) : 24 + 32, 0, NULL);
}

/* SUBMIT_3D of len bytes, fenced (on the channel ring when poll). */
static void submit(VirtioGpu *g, Fuzz *f, const uint8_t *cmds, size_t len, bool poll) {
        static uint8_t b[24 + 8 + 65536];
        uint32_t flags = VIRTIO_GPU_FLAG_FENCE | (poll ? VIRTIO_GPU_FLAG_INFO_RING_IDX : 0);
        uint64_t token = f->n_held + 1;
        bool held;

        hdr(b, VIRTIO_GPU_CMD_SUBMIT_3D, flags, ++f->fence, CTX, poll ? CROSS_DOMAIN_CHANNEL_RING : 0);
        put_le32(b + 24, (uint32_t) len);
        put_le32(b + 28, 0);
        memcpy(b + 32, cmds, len);
        (void) control(g, b, 32 + len, token, &held);
        if (held && !poll)
                abort();
        if (held)
                f->n_held++;
}

static int make_fd(Fuzz *f, unsigned kind, unsigned pages) {
        int p[2], fd;

        switch (kind % 6) {
        case 0:
                fd = memfd_create("fuzz", MFD_CLOEXEC);
                if (fd < 0 || ftruncate(fd, (off_t) pages * 4096 + (pages & 1) * 17) < 0)
                        abort();
                return fd;
        case 1:
                fd = memfd_create("big", MFD_CLOEXEC);
                if (fd < 0 || ftruncate(fd, CROSS_DOMAIN_MAX_HOST_FILE + 1) < 0)
                        abort();
                return fd;
        case 2:
        case 3:
                /* One page: the guest's WRITEs fill it and queue. */
                if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 || fcntl(p[0], F_SETPIPE_SZ, 4096) < 0)
                        abort();
                /* The end sent, and the one kept (or closed, past room). */
                if (f->n_kept < MAX_KEPT)
                        f->kept[f->n_kept++] = p[kind % 6 == 2 ? 1 : 0];
                else
                        close(p[kind % 6 == 2 ? 1 : 0]);
                return p[kind % 6 == 2 ? 0 : 1];
        case 4:
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
                        abort();
                close(p[1]);
                return p[0];
        default:
                fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        abort();
                return fd;
        }
}

static void compositor_send(Fuzz *f, const uint8_t *data, size_t len) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 7)];
        } c = {};
        int fds[7];
        unsigned n = 0;
        struct iovec iov;
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (f->n_compositors == 0 || f->compositors[f->n_compositors - 1] < 0 || len < 1)
                return;
        n = data[0] & 7;
        if (len < 1 + n + 2)
                n = 0;
        for (unsigned i = 0; i < n; i++)
                fds[i] = make_fd(f, data[1 + i], data[1 + n] & 31);
        data += 1 + n + (n > 0);
        len -= 1 + n + (n > 0);
        if (len == 0) {
                data = (const uint8_t *) "";
                len = 1;
        }
        iov = (struct iovec) { (void *) data, len };
        if (n > 0) {
                m.msg_control = c.buf;
                m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                c.h.cmsg_level = SOL_SOCKET;
                c.h.cmsg_type = SCM_RIGHTS;
                c.h.cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(&c.h), fds, sizeof(int) * n);
        }
        /* A full socket (a guest that never polls) takes no more: fine. */
        (void) sendmsg(f->compositors[f->n_compositors - 1], &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        for (unsigned i = 0; i < n; i++)
                close(fds[i]);
}

static bool is_fifo(int fd) {
        struct stat st;

        return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static void compositor_read(Fuzz *f) {
        static uint8_t buf[65536];

        for (unsigned k = 0; k < f->n_compositors; k++) {
                for (;;) {
                        union {
                                struct cmsghdr h;
                                char buf[CMSG_SPACE(sizeof(int) * 253)];
                        } c;
                        struct iovec iov = { buf, sizeof(buf) };
                        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
                                            .msg_controllen = sizeof(c.buf) };
                        ssize_t n;

                        if (f->compositors[k] < 0)
                                break;
                        n = recvmsg(f->compositors[k], &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                        if (n <= 0)
                                break;
                        for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
                                if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
                                        continue;
                                for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                                        int fd;

                                        memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                                        /* Pipe ends the guest had us send: kept to write into. */
                                        if (f->n_kept < MAX_KEPT && is_fifo(fd) && fcntl(fd, F_SETFL, O_NONBLOCK) == 0) {
                                                f->kept[f->n_kept++] = fd;
                                                continue;
                                        }
                                        close(fd);
                                }
                        }
                }
        }
}

static void kept_op(Fuzz *f, const uint8_t *data, size_t len) {
        unsigned i;

        if (f->n_kept == 0 || len < 1)
                return;
        i = data[0] % f->n_kept;
        if (len == 1) {
                close(f->kept[i]);
                f->kept[i] = f->kept[--f->n_kept];
                return;
        }
        /* A read end drains; a write end takes the bytes (EBADF/EAGAIN:
         * whichever it is not). */
        if (write(f->kept[i], data + 1, len - 1) < 0) {
                uint8_t buf[4096];

                while (read(f->kept[i], buf, sizeof(buf)) > 0)
                        ;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Fuzz f = {};
        VirtioGpuOptions o = { .n_scanouts = 0, .width = 64, .height = 48, .max_memory = MAX_MEMORY,
                               .backend = VIRTIO_GPU_BACKEND_2D, .response_done = on_done, .response_done_ctx = &f,
                               .blob = true, .host_visible_size = REGION_SIZE,
                               .shm = { .map = on_map, .unmap = on_unmap, .ctx = &f },
                               .context_types = VIRTIO_GPU_CONTEXT_CROSS_DOMAIN, .connect = on_connect,
                               .connect_ctx = &f };
        static uint64_t before[MAX_FDS / 64], after[MAX_FDS / 64];
        VirtioGpu *g;

        if (size < 1)
                return 0;
        if (!mem) {
                signal(SIGPIPE, SIG_IGN);
                if (guest_memory_new(MEM_SIZE, &mem) < 0)
                        abort();
        }
        memset(mem->base, 0, MEM_SIZE);
        /* From 0: a descriptor closed that was never the device's (0, 1,
         * 2 included) is as wrong as one leaked. */
        open_fds(before);

        f.small_buffers = data[0] & 4;
        if (virtio_gpu_new(&o, NULL, &g) < 0)
                abort();
        if (ctx_create(g) != VIRTIO_GPU_RESP_OK_NODATA ||
            create_blob(g, QUERY, true, 0, 4096, QUERY_GPA) != VIRTIO_GPU_RESP_OK_NODATA ||
            create_blob(g, CHANNEL, true, 0, 4096, CHANNEL_GPA) != VIRTIO_GPU_RESP_OK_NODATA)
                abort();
        if ((data[0] & 3) < 2) {
                uint8_t init[20] = { 1 };

                put_le16(init + 2, (data[0] & 3) == 0 ? 20 : 16);
                put_le32(init + 8, QUERY);
                put_le32(init + 12, (data[0] & 3) == 0 ? CHANNEL : 1);
                put_le32(init + 16, 1);
                submit(g, &f, init, (data[0] & 3) == 0 ? 20 : 16, false);
        }
        data++;
        size--;

        while (size >= 3) {
                uint8_t op = data[0];
                size_t len = get_le16(data + 1);

                data += 3;
                size -= 3;
                if (len > size)
                        len = size;
                switch (op % 12) {
                case 0:
                        submit(g, &f, data, len, false);
                        break;
                case 1: {
                        uint8_t poll[16] = { 3, 0, 16, 0 };

                        if (f.n_held < MAX_TOKENS)
                                submit(g, &f, poll, sizeof(poll), true);
                        break;
                }
                case 2:
                        if (len >= 10) {
                                bool guest = data[0] & 1;

                                (void) create_blob(g, 1 + data[1], guest, get_le32(data + 2), get_le32(data + 6),
                                                   guest ? (get_le32(data + 2) % (MEM_SIZE / 4096)) * 4096 : 0);
                        }
                        break;
                case 3:
                        if (len >= 2) {
                                uint8_t b[24 + 16] = {};

                                hdr(b, VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB, 0, 0, CTX, 0);
                                put_le32(b + 24, 1 + data[0]);
                                put_le64(b + 32, (uint64_t) data[1] * 4096);
                                (void) control(g, b, sizeof(b), 0, NULL);
                        }
                        break;
                case 4:
                        if (len >= 2) {
                                uint8_t b[24 + 8] = {};

                                hdr(b, data[1] & 1 ? VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB : VIRTIO_GPU_CMD_RESOURCE_UNREF,
                                    0, 0, CTX, 0);
                                put_le32(b + 24, 1 + data[0]);
                                (void) control(g, b, sizeof(b), 0, NULL);
                        }
                        break;
                case 5:
                        compositor_send(&f, data, len);
                        break;
                case 6:
                        virtio_gpu_dispatch(g);
                        break;
                case 7:
                        compositor_read(&f);
                        break;
                case 8:
                        kept_op(&f, data, len);
                        break;
                case 9:
                        if (f.n_compositors > 0 && f.compositors[f.n_compositors - 1] >= 0) {
                                close(f.compositors[f.n_compositors - 1]);
                                f.compositors[f.n_compositors - 1] = -1;
                        }
                        break;
                case 10: {
                        uint8_t b[24] = {};

                        hdr(b, VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, CTX, 0);
                        (void) control(g, b, sizeof(b), 0, NULL);
                        virtio_gpu_dispatch(g);
                        /* Every channel fence of it is complete. */
                        if (f.n_done != f.n_held)
                                abort();
                        /* Anew, not initialised: the input's own INIT
                         * connects it again (the rings stay). */
                        (void) ctx_create(g);
                        break;
                }
                default:
                        if (len >= 4) {
                                uint64_t off = get_le32(data) % MEM_SIZE;
                                size_t k = len - 4 < MEM_SIZE - off ? len - 4 : MEM_SIZE - off;

                                if (guest_write(mem, off, data + 4, k) < 0)
                                        abort();
                        }
                        break;
                }
                if (virtio_gpu_memory_used(g) > MAX_MEMORY)
                        abort();
                data += len;
                size -= len;
        }

        virtio_gpu_free(g);
        for (unsigned i = 0; i < f.n_compositors; i++)
                if (f.compositors[i] >= 0)
                        close(f.compositors[i]);
        for (unsigned i = 0; i < f.n_kept; i++)
                close(f.kept[i]);
        open_fds(after);
        if (memcmp(before, after, sizeof(before)) != 0) {
                for (int fd = 0; fd < MAX_FDS; fd++)
                        if (((before[fd / 64] ^ after[fd / 64]) >> (fd % 64)) & 1) {
                                char path[64], target[256] = "";

                                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                                (void) !readlink(path, target, sizeof(target) - 1);
                                fprintf(stderr, "descriptor %d %s %s\n", fd,
                                        (after[fd / 64] >> (fd % 64)) & 1 ? "leaked:" : "closed, not the device's", target);
                        }
                abort();
        }
        return 0;
}
