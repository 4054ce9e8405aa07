/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block (virtio 1.2 §5.2) on a raw image: one request queue served
 * synchronously by the device's worker, with preadv/pwritev between the
 * image and guest RAM (the walker's iovecs), so no request is ever bounced.
 *
 * Durability: a write is acknowledged once pwritev() returned, i.e. it is
 * in the host's page cache and survives the VMM dying. With FLUSH
 * negotiated a FLUSH request is answered after fdatasync(); without it the
 * device is write-through (fdatasync() before each write is acknowledged,
 * §5.2.6.2). Requests are served in the order the driver made them
 * available, so a FLUSH covers every write completed before it was
 * submitted (§5.2.6.1's "stable" writes). Once an fdatasync() has failed,
 * every later one is answered IOERR without asking the kernel: Linux
 * reports a writeback error to a file once and may have dropped the
 * pages, so a later success would call lost writes stable (QEMU's
 * file-posix does the same, "page_cache_inconsistent").
 *
 * Merging: reads (or writes) of consecutive sectors popped one after the
 * other are served by one preadv (pwritev), as QEMU's virtio-blk merges
 * them. The kernel's fixed cost per call, not the copy, is what a 64 KiB
 * request on scattered guest pages spends most on (bench/README.md,
 * block-bench). The merged call's outcome is every merged request's status.
 *
 * Locking: `lock` is held by the worker around each request (each merged
 * group) and by virtio_block_resize() (the control socket's thread), so a
 * request is checked and served against one capacity and a shrink never
 * races with a write past the new end (which would grow the file back). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/devices/virtio-block.h"
#include "common/util.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (§5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

#define SECTOR_SHIFT 9
#define SECTOR_SIZE (1u << SECTOR_SHIFT)

#define QUEUE_SIZE 256
/* §5.2.4 seg_max: data segments of one request; the header and the status
 * byte take two more descriptors of a chain no longer than the queue. */
#define SEG_MAX (QUEUE_SIZE - 2)
#define DISCARD_SEG_MAX 32
/* Per segment (u32 num_sectors): 2 GiB, so one segment never makes an
 * fallocate() that a slow filesystem would spend seconds in. */
#define DISCARD_SECTORS_MAX (UINT32_C(1) << 22)
/* 4 KiB: where hole punching really frees blocks on the usual filesystems. */
#define DISCARD_ALIGNMENT_SECTORS 8
/* Requests one merged preadv/pwritev serves: 1 MiB of 64 KiB requests;
 * the chains wait in VirtioBlock, 6 KiB each. IOV_MAX bounds the iovecs. */
#define MERGE_MAX 16

/* §5.2.6 request header, as the driver lays it out. */
typedef struct BlkReqHeader {
        uint32_t type;
        uint32_t ioprio;
        uint64_t sector;
} BlkReqHeader;

/* §5.2.6 struct virtio_blk_discard_write_zeroes. */
typedef struct BlkDiscardSeg {
        uint64_t sector;
        uint32_t num_sectors;
        uint32_t flags;
} BlkDiscardSeg;

/* §5.2.4 struct virtio_blk_config, up to write_zeroes_may_unmap and its
 * padding (60 bytes; the secure-erase fields after it are not offered). */
typedef struct __attribute__((packed)) BlkConfig {
        uint64_t capacity;
        uint32_t size_max;
        uint32_t seg_max;
        uint16_t cylinders;
        uint8_t heads;
        uint8_t sectors;
        uint32_t blk_size;
        uint8_t physical_block_exp;
        uint8_t alignment_offset;
        uint16_t min_io_size;
        uint32_t opt_io_size;
        uint8_t writeback;
        uint8_t unused0;
        uint16_t num_queues;
        uint32_t max_discard_sectors;
        uint32_t max_discard_seg;
        uint32_t discard_sector_alignment;
        uint32_t max_write_zeroes_sectors;
        uint32_t max_write_zeroes_seg;
        uint8_t write_zeroes_may_unmap;
        uint8_t unused1[3];
} BlkConfig;

_Static_assert(sizeof(BlkConfig) == 60, "virtio_blk_config layout");
_Static_assert(sizeof(BlkReqHeader) == 16, "virtio_blk_outhdr layout");
_Static_assert(sizeof(BlkDiscardSeg) == 16, "virtio_blk_discard_write_zeroes layout");

/* Reads or writes of consecutive sectors waiting for one preadv/pwritev;
 * empty between queue_notify calls. */
typedef struct MergeGroup {
        uint32_t type;                  /* VIRTIO_BLK_T_IN or VIRTIO_BLK_T_OUT */
        uint64_t sector;                /* of the first request */
        uint64_t end;                   /* the sector after the last */
        unsigned n;                     /* requests */
        unsigned n_iov;                 /* their data: iov[0..n_iov) */
} MergeGroup;

typedef struct VirtioBlock {
        VirtioDevice *vdev;
        int fd;
        bool read_only;
        bool sparse;
        bool sync_failed;               /* the worker's: see "Durability" */
        char id[VIRTIO_BLOCK_ID_BYTES];
        uint64_t features;              /* negotiated, the worker's */

        pthread_mutex_t lock;
        uint64_t capacity;              /* sectors; under lock, __atomic for config reads */

        /* The worker's. Big: kept off its stack. */
        VirtioChain chains[MERGE_MAX];
        VirtioChain *slots[MERGE_MAX];  /* the chains; a group is slots[0..n) */
        struct iovec iov[IOV_MAX];
        MergeGroup group;
} VirtioBlock;

/* ---- options ---- */

static int parse_bool(const char *s, bool *ret) {
        if (strcmp(s, "true") == 0 || strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
                *ret = true;
        else if (strcmp(s, "false") == 0 || strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

int virtio_block_parse_options(const char *arg, VirtioBlockOptions *ret) {
        VirtioBlockOptions o = { .fd = -1 };
        _cleanup_free_ char *copy = NULL;
        char *save = NULL, *tok;
        bool first = true;
        int r;

        if (!arg || !*arg)
                return -EINVAL;
        copy = strdup(arg);
        if (!copy)
                return -ENOMEM;

        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), first = false) {
                char *eq = strchr(tok, '=');

                if (first) {
                        if (strncmp(tok, "fd:", 3) == 0) {
                                uint64_t fd;

                                r = parse_uint(tok + 3, 0, INT32_MAX, &fd);
                                if (r < 0)
                                        return -EINVAL;
                                o.fd = (int) fd;
                        } else {
                                if (strlen(tok) >= sizeof(o.path))
                                        return -EINVAL;
                                strcpy(o.path, tok);
                        }
                        continue;
                }
                if (strcmp(tok, "ro") == 0)
                        o.read_only = true;
                else if (strcmp(tok, "sparse") == 0)
                        o.sparse = true;
                else if (eq && strncmp(tok, "ro=", 3) == 0)
                        r = parse_bool(eq + 1, &o.read_only);
                else if (eq && strncmp(tok, "sparse=", 7) == 0)
                        r = parse_bool(eq + 1, &o.sparse);
                else if (eq && strncmp(tok, "id=", 3) == 0) {
                        const char *id = eq + 1;

                        /* §5.2.6: the ID is up to 20 bytes of ASCII. */
                        if (strlen(id) > VIRTIO_BLOCK_ID_BYTES)
                                return -EINVAL;
                        for (const char *p = id; *p; p++)
                                if (*p < 0x20 || *p > 0x7e)
                                        return -EINVAL;
                        strcpy(o.id, id);
                        r = 0;
                } else
                        return -EINVAL;
                if (r < 0)
                        return -EINVAL;
        }
        /* An option list that started with a comma has no image. */
        if (arg[0] == ',' || (o.fd < 0 && !o.path[0]))
                return -EINVAL;
        *ret = o;
        return 0;
}

/* ---- create / destroy ---- */

static int image_size(int fd, uint64_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                *ret = (uint64_t) st.st_size;
                return 0;
        }
        if (S_ISBLK(st.st_mode))
                return ioctl(fd, BLKGETSIZE64, ret) < 0 ? -errno : 0;
        return -EINVAL;
}

/* --block: PATH is opened here (before the jail), fd:N duplicated. */
static int block_parse(const char *arg, VmmDevice *ret) {
        VirtioBlockOptions o;
        int r, fd;

        r = virtio_block_parse_options(arg, &o);
        if (r < 0)
                return r;
        if (o.fd >= 0)
                fd = fcntl(o.fd, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(o.path, (o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ret->block.fd = fd;
        ret->block.read_only = o.read_only;
        ret->block.sparse = o.sparse;
        memcpy(ret->block.id, o.id, sizeof(ret->block.id));
        return 0;
}

static int block_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        _cleanup_close_ int fd = -EBADF;
        const bool read_only = config->block.read_only;
        VirtioBlock *b;
        uint64_t size;
        int r, flags;

        /* The configuration keeps its descriptor; we work on our own
         * close-on-exec duplicate (same open file, same lock). */
        flags = fcntl(config->block.fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (!read_only && (flags & O_ACCMODE) == O_RDONLY)
                return -EACCES;
        fd = fcntl(config->block.fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;

        /* Two writers on one image corrupt it: take the image like crosvm
         * does, shared for a read-only disk, exclusive otherwise. */
        if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;

        r = image_size(fd, &size);
        if (r < 0)
                return r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->vdev = vdev;
        b->read_only = read_only;
        b->sparse = config->block.sparse;
        memcpy(b->id, config->block.id, sizeof(b->id));
        b->capacity = size >> SECTOR_SHIFT;
        pthread_mutex_init(&b->lock, NULL);
        for (size_t i = 0; i < MERGE_MAX; i++)
                b->slots[i] = &b->chains[i];
        b->fd = TAKE_FD(fd);
        *ret = b;
        return 0;
}

static void block_destroy(void *dev) {
        VirtioBlock *b = dev;

        /* No sync here: acknowledged writes are in the host's page cache,
         * which outlives the VMM, and making them stable is what FLUSH is
         * for (§5.2.6.1); the main thread's seccomp role needs no
         * fdatasync for it. */
        safe_close(b->fd);
        pthread_mutex_destroy(&b->lock);
        free(b);
}

static uint64_t block_instance_features(void *dev) {
        VirtioBlock *b = dev;
        uint64_t f = 0;

        /* §5.2.5: a read-only device offers RO; discard and write zeroes
         * would only fail on it. */
        if (b->read_only)
                f |= UINT64_C(1) << VIRTIO_BLK_F_RO;
        else
                f |= (UINT64_C(1) << VIRTIO_BLK_F_DISCARD) | (UINT64_C(1) << VIRTIO_BLK_F_WRITE_ZEROES);
        return f;
}

static unsigned block_fds(void *dev, int *fds, unsigned max) {
        VirtioBlock *b = dev;

        if (max < 1)
                return 0;
        fds[0] = b->fd;
        return 1;
}

/* ---- configuration ---- */

static void block_config_read(void *dev, uint32_t offset, void *data, uint32_t size) {
        VirtioBlock *b = dev;
        BlkConfig c = {
                .capacity = __atomic_load_n(&b->capacity, __ATOMIC_ACQUIRE),
                .seg_max = SEG_MAX,
                .blk_size = SECTOR_SIZE,
                .num_queues = 1,
        };

        if (!b->read_only) {
                c.max_discard_sectors = DISCARD_SECTORS_MAX;
                c.max_discard_seg = DISCARD_SEG_MAX;
                c.discard_sector_alignment = DISCARD_ALIGNMENT_SECTORS;
                c.max_write_zeroes_sectors = DISCARD_SECTORS_MAX;
                c.max_write_zeroes_seg = DISCARD_SEG_MAX;
                /* §5.2.6.2: set iff a write zeroes with unmap may free blocks. */
                c.write_zeroes_may_unmap = b->sparse;
        }
        memcpy(data, (const uint8_t *) &c + offset, size);
}

/* ---- requests ---- */

static int block_activate(void *dev, VirtQueue *queues, uint64_t features) {
        VirtioBlock *b = dev;

        b->features = features;
        return 0;
}

static bool has_feature(const VirtioBlock *b, unsigned bit) {
        return b->features & (UINT64_C(1) << bit);
}

/* fdatasync(), failing for good after its first failure (see the top). */
static int image_sync(VirtioBlock *b) {
        if (b->sync_failed)
                return -EIO;
        if (fdatasync(b->fd) < 0) {
                b->sync_failed = true;
                return -errno;
        }
        return 0;
}

/* Whole of iov[0..n) at off: short transfers are resumed; reads past the end
 * of the file (shrunk behind our back) give zeroes. */
static int image_io(int fd, struct iovec *iov, int n, uint64_t off, bool write) {
        while (n > 0) {
                ssize_t k = write ? pwritev(fd, iov, n, (off_t) off) : preadv(fd, iov, n, (off_t) off);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0) {
                        if (write)
                                return -EIO;
                        for (int i = 0; i < n; i++)
                                memset(iov[i].iov_base, 0, iov[i].iov_len);
                        return 0;
                }
                off += (uint64_t) k;
                while (n > 0 && (size_t) k >= iov->iov_len) {
                        k -= (ssize_t) iov->iov_len;
                        iov++;
                        n--;
                }
                if (n > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + k;
                        iov->iov_len -= (size_t) k;
                }
        }
        return 0;
}

/* Sector range check (§5.2.6.2): [sector, sector + bytes/512) inside the
 * capacity, without overflow anywhere. */
static bool range_ok(const VirtioBlock *b, uint64_t sector, uint64_t bytes) {
        uint64_t n = bytes >> SECTOR_SHIFT;

        if (bytes & (SECTOR_SIZE - 1))
                return false;
        return sector <= b->capacity && n <= b->capacity - sector;
}

static uint8_t do_get_id(VirtioBlock *b, VirtioWriter *w, size_t len) {
        /* §5.2.6: a NUL-padded string of up to 20 bytes; a buffer that cannot
         * hold the 20 bytes gets nothing (IOERR), a longer one NULs. */
        if (len < VIRTIO_BLOCK_ID_BYTES)
                return VIRTIO_BLK_S_IOERR;
        if (virtio_writer_write(w, b->id, VIRTIO_BLOCK_ID_BYTES) < 0 ||
            virtio_writer_zero(w, len - VIRTIO_BLOCK_ID_BYTES) < 0)
                return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
}

static int zero_range(VirtioBlock *b, uint64_t off, uint64_t len) {
        static const uint8_t zeroes[64 * 1024];

        if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len) == 0)
                return 0;
        if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENODEV)
                return -errno;
        /* The filesystem cannot: write them. */
        while (len > 0) {
                size_t n = MIN(len, sizeof(zeroes));
                ssize_t k = pwrite(b->fd, zeroes, n, (off_t) off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                off += (uint64_t) k;
                len -= (uint64_t) k;
        }
        return 0;
}

static int punch_hole(VirtioBlock *b, uint64_t off, uint64_t len) {
        if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len) < 0)
                return -errno;
        return 0;
}

static uint8_t do_discard_write_zeroes(VirtioBlock *b, uint32_t type, VirtioReader *rd) {
        BlkDiscardSeg segs[DISCARD_SEG_MAX];
        size_t len = virtio_reader_remaining(rd);
        unsigned n = (unsigned) (len / sizeof(BlkDiscardSeg));
        bool discard = type == VIRTIO_BLK_T_DISCARD;

        /* Only when negotiated (§5.2.3); a read-only device offers neither. */
        if (!has_feature(b, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
                return b->read_only ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP;
        if (b->read_only)
                return VIRTIO_BLK_S_IOERR;
        /* §5.2.6.1: whole segments, at most max_*_seg of them. */
        if (len == 0 || len % sizeof(BlkDiscardSeg) || n > DISCARD_SEG_MAX)
                return VIRTIO_BLK_S_IOERR;
        if (virtio_reader_read(rd, segs, len) < 0)
                return VIRTIO_BLK_S_IOERR;

        /* All segments are checked before any is acted on: a request is
         * done whole or not at all. */
        for (unsigned i = 0; i < n; i++) {
                /* §5.2.6.2: UNSUPP for unknown flags, and for unmap on a
                 * discard. */
                if (segs[i].flags & ~(discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
                        return VIRTIO_BLK_S_UNSUPP;
                if (segs[i].num_sectors > DISCARD_SECTORS_MAX ||
                    !range_ok(b, segs[i].sector, (uint64_t) segs[i].num_sectors << SECTOR_SHIFT))
                        return VIRTIO_BLK_S_IOERR;
        }

        for (unsigned i = 0; i < n; i++) {
                uint64_t off = segs[i].sector << SECTOR_SHIFT;
                uint64_t bytes = (uint64_t) segs[i].num_sectors << SECTOR_SHIFT;
                int r;

                if (bytes == 0)
                        continue;
                if (discard) {
                        /* A discard is a hint (§5.2.6.2 "MAY deallocate"):
                         * only a sparse image frees blocks, and a filesystem
                         * that cannot punch holes just keeps them. */
                        if (b->sparse)
                                (void) punch_hole(b, off, bytes);
                        continue;
                }
                /* Reads of the range MUST give zeroes afterwards; unmap lets
                 * a sparse image free the blocks instead. */
                r = -EOPNOTSUPP;
                if (b->sparse && (segs[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
                        r = punch_hole(b, off, bytes);
                if (r < 0)
                        r = zero_range(b, off, bytes);
                if (r < 0)
                        return VIRTIO_BLK_S_IOERR;
        }
        if (!discard && !has_feature(b, VIRTIO_BLK_F_FLUSH) && image_sync(b) < 0)
                return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
}

/* Ends a request whose data part is done: skip to the status byte (the
 * chain's last writable byte, §5.2.6) whatever the data buffer got
 * (consuming through iovecs writes nothing), write it, push. */
static void request_done(VirtioBlock *b, VirtQueue *q, VirtioChain *c, uint8_t status) {
        VirtioWriter *w = &c->writer;

        if (virtio_writer_remaining(w) > 1)
                (void) virtio_writer_iov(w, virtio_writer_remaining(w) - 1, b->iov, ARRAY_SIZE(b->iov));
        (void) virtio_writer_write(w, &status, 1);
        virtq_push(q, c, virtio_writer_written(w));
}

/* One request on its own; h NULL when the chain is shorter than the
 * header. Reads and writes come here only when group_add() refused them
 * on an empty group, i.e. when they cannot be served. Under lock. */
static void block_request(VirtioBlock *b, VirtQueue *q, VirtioChain *c, const BlkReqHeader *h) {
        VirtioReader *rd = &c->reader;
        VirtioWriter *w = &c->writer;
        size_t writable = virtio_writer_remaining(w);
        size_t data_in;
        uint8_t status;

        /* No status byte: nothing can be reported. The chain goes back
         * unused so the driver does not lose the descriptors. */
        if (writable == 0) {
                virtq_push(q, c, 0);
                return;
        }
        data_in = writable - 1;

        if (!h)
                status = VIRTIO_BLK_S_IOERR;
        else
                switch (h->type) {
                case VIRTIO_BLK_T_IN:
                case VIRTIO_BLK_T_OUT:
                        /* Past the capacity, more segments than the
                         * iovecs hold, or a write to a read-only device
                         * (§5.2.6.2): nothing is read or written. */
                        status = VIRTIO_BLK_S_IOERR;
                        break;
                case VIRTIO_BLK_T_FLUSH:
                        /* Everything acknowledged so far was written before
                         * this was popped: one fdatasync makes it stable. */
                        status = b->read_only || image_sync(b) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
                        break;
                case VIRTIO_BLK_T_GET_ID:
                        status = do_get_id(b, w, data_in);
                        break;
                case VIRTIO_BLK_T_DISCARD:
                case VIRTIO_BLK_T_WRITE_ZEROES:
                        status = do_discard_write_zeroes(b, h->type, rd);
                        break;
                default:
                        /* §5.2.6.2: GET_LIFETIME, SECURE_ERASE and anything
                         * unknown. */
                        status = VIRTIO_BLK_S_UNSUPP;
                        break;
                }
        request_done(b, q, c, status);
}

/* Adds c, b->slots[group.n], to the group when it can join: a read or a
 * write that would succeed alone (inside the capacity, a status byte, not
 * a write to a read-only disk), of the group's type, starting at the
 * group's end, with room for its iovecs. Otherwise consumes nothing of c.
 * Under lock. */
static bool group_add(VirtioBlock *b, VirtioChain *c, const BlkReqHeader *h) {
        MergeGroup *g = &b->group;
        size_t writable = virtio_writer_remaining(&c->writer);
        size_t len;
        int n;

        if (writable == 0)
                return false;
        if (h->type == VIRTIO_BLK_T_IN)
                len = writable - 1;
        else if (h->type == VIRTIO_BLK_T_OUT && !b->read_only)
                len = virtio_reader_remaining(&c->reader);
        else
                return false;
        if (!range_ok(b, h->sector, len))
                return false;
        if (g->n > 0 && (h->type != g->type || h->sector != g->end))
                return false;
        /* -E2BIG (no room left) consumes nothing. */
        n = h->type == VIRTIO_BLK_T_IN
                    ? virtio_writer_iov(&c->writer, len, b->iov + g->n_iov, ARRAY_SIZE(b->iov) - g->n_iov)
                    : virtio_reader_iov(&c->reader, len, b->iov + g->n_iov, ARRAY_SIZE(b->iov) - g->n_iov);
        if (n < 0)
                return false;
        if (g->n == 0) {
                g->type = h->type;
                g->sector = h->sector;
        }
        g->end = h->sector + (len >> SECTOR_SHIFT);
        g->n_iov += (unsigned) n;
        g->n++;
        return true;
}

/* Serves the group with one call and ends its requests. Under lock. */
static void group_serve(VirtioBlock *b, VirtQueue *q) {
        MergeGroup *g = &b->group;
        bool write = g->type == VIRTIO_BLK_T_OUT;
        uint8_t status = VIRTIO_BLK_S_OK;

        if (g->n == 0)
                return;
        if (image_io(b->fd, b->iov, (int) g->n_iov, g->sector << SECTOR_SHIFT, write) < 0)
                status = VIRTIO_BLK_S_IOERR;
        /* Write-through unless the driver took FLUSH (§5.2.6.2): one
         * fdatasync before any of the writes is acknowledged. */
        else if (write && !has_feature(b, VIRTIO_BLK_F_FLUSH) && image_sync(b) < 0)
                status = VIRTIO_BLK_S_IOERR;
        for (unsigned i = 0; i < g->n; i++)
                request_done(b, q, b->slots[i], status);
        g->n = g->n_iov = 0;
}

/* The lock is held while a group is being built (group.n > 0) and around
 * each request served alone, so a resize waits at most one group. */
static void block_queue_notify(void *dev, VirtQueue *q) {
        VirtioBlock *b = dev;
        MergeGroup *g = &b->group;

        for (;;) {
                VirtioChain *c = b->slots[g->n];
                BlkReqHeader h;
                bool has_header;

                if (virtq_pop(q, c) <= 0)
                        break;
                if (g->n == 0)
                        pthread_mutex_lock(&b->lock);
                has_header = virtio_reader_read(&c->reader, &h, sizeof(h)) >= 0;
                if (has_header && group_add(b, c, &h)) {
                        if (g->n == MERGE_MAX) {
                                group_serve(b, q);
                                pthread_mutex_unlock(&b->lock);
                        }
                        continue;
                }
                if (g->n > 0) {
                        /* c cannot join: the group goes first, in order;
                         * then c may start the next one. */
                        unsigned at = g->n;

                        group_serve(b, q);
                        b->slots[at] = b->slots[0];
                        b->slots[0] = c;
                        if (has_header && group_add(b, c, &h))
                                continue;
                }
                block_request(b, q, c, has_header ? &h : NULL);
                pthread_mutex_unlock(&b->lock);
        }
        if (g->n > 0) {
                group_serve(b, q);
                pthread_mutex_unlock(&b->lock);
        }
}

static void block_reset(void *dev) {
        VirtioBlock *b = dev;

        b->features = 0;
}

/* ---- the VMM's side ---- */

int virtio_block_resize(VirtioDevice *vdev, uint64_t bytes) {
        VirtioBlock *b;
        int r = 0;

        if (!vdev || virtio_device_ops(vdev) != &virtio_block_ops)
                return -ENODEV;
        b = virtio_device_state(vdev);
        if (b->read_only)
                return -EROFS;
        if (bytes == 0 || bytes & (SECTOR_SIZE - 1) || bytes > INT64_MAX)
                return -EINVAL;

        pthread_mutex_lock(&b->lock);
        if (ftruncate(b->fd, (off_t) bytes) < 0)
                r = -errno;
        else
                __atomic_store_n(&b->capacity, bytes >> SECTOR_SHIFT, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&b->lock);
        if (r < 0)
                return r;
        /* §5.2.4: capacity changes are announced with a configuration
         * change notification; the transport bumps config_generation. */
        virtio_device_config_changed(vdev);
        return 0;
}

uint64_t virtio_block_capacity(VirtioDevice *vdev) {
        VirtioBlock *b = virtio_device_state(vdev);

        return __atomic_load_n(&b->capacity, __ATOMIC_ACQUIRE) << SECTOR_SHIFT;
}

int virtio_block_find(VirtioPci *const *devs, unsigned n, unsigned index, VirtioDevice **ret) {
        for (unsigned i = 0; i < n; i++) {
                if (virtio_device_ops(devs[i]->vdev) != &virtio_block_ops)
                        continue;
                if (index-- == 0) {
                        *ret = devs[i]->vdev;
                        return 0;
                }
        }
        return -ENODEV;
}

const VirtioDeviceOps virtio_block_ops = {
        .name = "block",
        .option_usage = "PATH|fd:N[,ro][,sparse=BOOL][,id=SERIAL]",
        .help = "a virtio-block disk on a raw image (repeatable; disk-resize INDEX counts them in order)",
        .type = VIRTIO_ID_BLOCK,
        .n_queues = 1,
        .queue_max_size = QUEUE_SIZE,
        .features = (UINT64_C(1) << VIRTIO_BLK_F_SEG_MAX) | (UINT64_C(1) << VIRTIO_BLK_F_BLK_SIZE) |
                    (UINT64_C(1) << VIRTIO_BLK_F_FLUSH),
        .config_size = sizeof(BlkConfig),
        .seccomp_role = "virtio-block",
        .seccomp_policy = "virtio-block.policy",
        .parse = block_parse,
        .create = block_create,
        .destroy = block_destroy,
        .config_read = block_config_read,
        .activate = block_activate,
        .queue_notify = block_queue_notify,
        .reset = block_reset,
        .fds = block_fds,
        .instance_features = block_instance_features,
};
