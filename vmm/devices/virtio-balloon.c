/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-balloon (virtio 1.2 §5.5).
 *
 * The host sets a target (num_pages) over the control socket; the driver
 * gives pages back through inflateq (we punch them out of the guest-RAM
 * memfd, which really returns the memory to the host) and takes them back
 * through deflateq (nothing to do: a punched page reads as zeros and is
 * allocated again on the guest's next touch). The device tracks which pages
 * are in the balloon with a bitmap over guest RAM, so a deflate of a page
 * never inflated is seen (and harmless), and so the host knows how much it
 * really got back whatever the driver writes to `actual`.
 *
 * statsq (F_STATS_VQ): the driver keeps one buffer of 10-byte (tag, value)
 * entries queued; the device holds it and returns it when it wants fresh
 * numbers, the driver refills it and queues it again (§5.5.6.3).
 *
 * reporting_vq (F_PAGE_REPORTING, option `page-reporting`): the driver
 * hands over ranges of free memory; they are punched and the buffers
 * returned, and the guest may use the pages again at once (§5.5.6.7).
 *
 * F_DEFLATE_ON_OOM (option `deflate-on-oom`) lets the driver deflate under
 * memory pressure even below the target (§5.5.6.1): nothing for the device
 * to do but accept it. F_MUST_TELL_HOST is offered so the driver deflates
 * before it reuses a page, which keeps the bitmap exact; the device itself
 * does not need it (a page reused without telling is simply allocated
 * again).
 *
 * Queue numbering (§5.5.2): inflateq 0, deflateq 1, then statsq, then
 * reporting_vq, each only when its feature was negotiated. Linux numbers
 * the queues that exist consecutively (reporting_vq is 3 without
 * FREE_PAGE_HINT), while the 1.2 text gives reporting_vq the fixed index 4;
 * we never offer FREE_PAGE_HINT and accept reporting_vq on whichever of 3
 * and 4 the driver enabled. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/devices/virtio-balloon.h"
#include "common/util.h"

#define BALLOON_N_QUEUES 5
#define BALLOON_QUEUE_SIZE 128
#define BALLOON_CONFIG_SIZE 8   /* num_pages, actual; the rest needs features we do not offer */
#define BALLOON_PFN_BATCH 256   /* PFNs read from guest memory at a time */
#define BALLOON_STATS_TIMEOUT_MAX_MS 3000

enum {
        ROLE_NONE,
        ROLE_INFLATE,
        ROLE_DEFLATE,
        ROLE_STATS,
        ROLE_REPORTING,
};

typedef struct VirtioBalloon {
        VirtioDevice *vdev;
        const GuestMemory *mem;
        uint64_t features;      /* offered: the fixed ones and the options' */

        /* The worker's. */
        uint8_t roles[BALLOON_N_QUEUES];
        uint64_t *bitmap;       /* one bit per 4 KiB page of the memfd */
        uint64_t n_pages;
        VirtioChain chain;      /* big: kept off the worker's stack */
        VirtioChain stats_chain; /* the stats buffer the device holds */

        /* Shared with the vCPU (config) and control threads. */
        pthread_mutex_t lock;
        pthread_cond_t stats_cond;
        uint32_t num_pages, actual;
        uint64_t inflated_pages;
        bool stats_active;      /* statsq negotiated and running */
        bool stats_held;        /* stats_chain is ours to return */
        bool stats_in_flight;   /* returned, the driver's answer awaited */
        bool stats_wanted;      /* a caller waits for fresh stats */
        unsigned stats_queue;
        uint64_t stats_generation;
        uint64_t stats_ns;
        /* Readable when the stats changed (new ones, or the queue went
         * away): the control socket's loop answers its waiting
         * balloon-stats requests then, without blocking on stats_cond. */
        int stats_event_fd;
        bool stat_seen[VIRTIO_BALLOON_S_NR];
        uint64_t stat_value[VIRTIO_BALLOON_S_NR];
        VirtioBalloonCounters counters;
} VirtioBalloon;

static int balloon_parse(const char *arg, VmmDevice *ret) {
        const char *p = arg;

        while (p && *p) {
                const char *end = strchrnul(p, ',');
                size_t n = (size_t) (end - p);

                if (n == strlen("deflate-on-oom") && strncmp(p, "deflate-on-oom", n) == 0)
                        ret->balloon.deflate_on_oom = true;
                else if (n == strlen("page-reporting") && strncmp(p, "page-reporting", n) == 0)
                        ret->balloon.page_reporting = true;
                else
                        return -EINVAL;
                p = *end ? end + 1 : end;
        }
        return 0;
}

static int balloon_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        const GuestMemory *mem = virtio_device_memory(vdev);
        pthread_condattr_t ca;
        VirtioBalloon *b;
        uint64_t features = (UINT64_C(1) << VIRTIO_BALLOON_F_MUST_TELL_HOST) |
                            (UINT64_C(1) << VIRTIO_BALLOON_F_STATS_VQ);
        int r;

        if (config->balloon.deflate_on_oom)
                features |= UINT64_C(1) << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
        if (config->balloon.page_reporting)
                features |= UINT64_C(1) << VIRTIO_BALLOON_F_PAGE_REPORTING;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->vdev = vdev;
        b->mem = mem;
        b->n_pages = mem->size / VIRTIO_BALLOON_PAGE_SIZE;
        /* calloc of a large bitmap is mmap'd zero pages: 32 MiB of address
         * space for the largest guest, touched only where pages inflate. */
        b->bitmap = calloc((size_t) ((b->n_pages + 63) / 64), sizeof(uint64_t));
        if (!b->bitmap) {
                free(b);
                return -ENOMEM;
        }
        b->stats_event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->stats_event_fd < 0) {
                r = -errno;
                free(b->bitmap);
                free(b);
                return r;
        }
        pthread_mutex_init(&b->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&b->stats_cond, &ca);
        pthread_condattr_destroy(&ca);

        b->features = features;
        *ret = b;
        return 0;
}

static void balloon_destroy(void *dev) {
        VirtioBalloon *b = dev;

        if (!b)
                return;
        pthread_cond_destroy(&b->stats_cond);
        pthread_mutex_destroy(&b->lock);
        safe_close(b->stats_event_fd);
        free(b->bitmap);
        free(b);
}

static unsigned balloon_fds(void *dev, int *fds, unsigned max) {
        VirtioBalloon *b = dev;

        if (max < 1)
                return 0;
        fds[0] = b->stats_event_fd;
        return 1;
}

static uint64_t balloon_instance_features(void *dev) {
        VirtioBalloon *b = dev;

        return b->features;
}

static void balloon_config_read(void *dev, uint32_t offset, void *data, uint32_t size) {
        VirtioBalloon *b = dev;
        uint8_t cfg[BALLOON_CONFIG_SIZE];
        uint32_t v;

        /* §5.5.4: le32 num_pages, le32 actual (x86: native order). */
        pthread_mutex_lock(&b->lock);
        v = b->num_pages;
        memcpy(cfg, &v, 4);
        v = b->actual;
        memcpy(cfg + 4, &v, 4);
        pthread_mutex_unlock(&b->lock);
        memcpy(data, cfg + offset, size);
}

static void balloon_config_write(void *dev, uint32_t offset, const void *data, uint32_t size) {
        VirtioBalloon *b = dev;
        uint8_t cfg[BALLOON_CONFIG_SIZE];
        bool changed, reached;
        uint32_t v;

        /* §5.5.4: only `actual` is the driver's to write; bytes of
         * num_pages in a write are dropped. */
        pthread_mutex_lock(&b->lock);
        v = b->actual;
        memcpy(cfg + 4, &v, 4);
        memcpy(cfg + offset, data, size);
        memcpy(&v, cfg + 4, 4);
        changed = offset + size > 4 && v != b->actual;
        if (changed)
                b->actual = v;
        reached = changed && v == b->num_pages;
        pthread_mutex_unlock(&b->lock);
        /* Subscribers hear of a target reached (control-protocol.md). */
        if (reached)
                virtio_device_status_changed(b->vdev);
}

static bool feature(uint64_t features, unsigned bit) {
        return features & (UINT64_C(1) << bit);
}

static int balloon_activate(void *dev, VirtQueue *queues, uint64_t features) {
        VirtioBalloon *b = dev;
        unsigned next = 2;

        memset(b->roles, ROLE_NONE, sizeof(b->roles));
        b->roles[0] = ROLE_INFLATE;
        b->roles[1] = ROLE_DEFLATE;
        if (feature(features, VIRTIO_BALLOON_F_STATS_VQ))
                b->roles[next++] = ROLE_STATS;
        if (feature(features, VIRTIO_BALLOON_F_PAGE_REPORTING)) {
                /* See the top of the file: consecutive (Linux) or fixed
                 * index 4 (virtio 1.2 text). */
                unsigned idx = next;

                if (!queues[next].enabled && queues[4].enabled)
                        idx = 4;
                b->roles[idx] = ROLE_REPORTING;
        }

        pthread_mutex_lock(&b->lock);
        b->stats_active = false;
        for (unsigned i = 0; i < BALLOON_N_QUEUES; i++)
                if (b->roles[i] == ROLE_STATS && queues[i].enabled) {
                        b->stats_active = true;
                        b->stats_queue = i;
                }
        b->stats_held = b->stats_in_flight = b->stats_wanted = false;
        pthread_mutex_unlock(&b->lock);
        return 0;
}

static bool bit_test(const uint64_t *bm, uint64_t i) {
        return bm[i / 64] & (UINT64_C(1) << (i % 64));
}

/* Gives [off, off+len) of the memfd back to the host. */
static void punch(VirtioBalloon *b, uint64_t off, uint64_t len) {
        if (len == 0)
                return;
        if (fallocate(b->mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len) == 0)
                return;
        /* Same effect on the shared mapping, for a memfd that cannot punch. */
        if (madvise(b->mem->base + off, len, MADV_REMOVE) == 0)
                return;
        pthread_mutex_lock(&b->lock);
        b->counters.punch_failures++;
        pthread_mutex_unlock(&b->lock);
}

/* The memfd offset of 4 KiB frame pfn, or -EFAULT outside RAM (the MMIO
 * hole included). */
static int pfn_offset(const GuestMemory *mem, uint32_t pfn, uint64_t *ret) {
        uint64_t gpa = (uint64_t) pfn * VIRTIO_BALLOON_PAGE_SIZE;

        for (unsigned i = 0; i < mem->n_regions; i++) {
                const GuestRegion *r = &mem->regions[i];

                if (gpa >= r->gpa && gpa - r->gpa < r->size) {
                        *ret = r->offset + (gpa - r->gpa);
                        return 0;
                }
        }
        return -EFAULT;
}

/* One inflate or deflate buffer: an array of le32 PFNs (§5.5.6). */
static void balloon_pfns(VirtioBalloon *b, VirtioReader *rd, bool inflate) {
        VirtioBalloonCounters d = {};
        uint32_t pfns[BALLOON_PFN_BATCH];
        uint64_t run_off = 0, run_len = 0;
        int64_t delta = 0;
        size_t left = virtio_reader_remaining(rd);

        if (left % 4 != 0) {
                /* §5.5.6: the buffer is an array of 32-bit PFNs. A driver
                 * that sends a fraction of one is broken; nothing of its
                 * buffer is trusted. */
                d.bad_lengths++;
                goto out;
        }

        while (left > 0) {
                size_t n = MIN(left / 4, ARRAY_SIZE(pfns));

                if (virtio_reader_read(rd, pfns, n * 4) < 0)
                        break;
                left -= n * 4;

                for (size_t i = 0; i < n; i++) {
                        uint64_t off, page;
                        uint64_t *word;
                        uint64_t mask;

                        if (pfn_offset(b->mem, pfns[i], &off) < 0) {
                                d.bad_pfns++;
                                continue;
                        }
                        page = off / VIRTIO_BALLOON_PAGE_SIZE;
                        word = &b->bitmap[page / 64];
                        mask = UINT64_C(1) << (page % 64);

                        if (!inflate) {
                                if (*word & mask) {
                                        *word &= ~mask;
                                        delta--;
                                        d.pages_deflated++;
                                } else
                                        d.deflated_not_inflated++;
                                continue;
                        }

                        if (!(*word & mask)) {
                                *word |= mask;
                                delta++;
                        }
                        d.pages_inflated++;
                        /* Punched even when already inflated: without
                         * MUST_TELL_HOST the guest may have used it again.
                         * Adjacent pages go in one call. */
                        if (run_len > 0 && off == run_off + run_len)
                                run_len += VIRTIO_BALLOON_PAGE_SIZE;
                        else {
                                punch(b, run_off, run_len);
                                run_off = off;
                                run_len = VIRTIO_BALLOON_PAGE_SIZE;
                        }
                }
        }
        punch(b, run_off, run_len);

out:
        pthread_mutex_lock(&b->lock);
        b->inflated_pages = (uint64_t) ((int64_t) b->inflated_pages + delta);
        b->counters.pages_inflated += d.pages_inflated;
        b->counters.pages_deflated += d.pages_deflated;
        b->counters.bad_pfns += d.bad_pfns;
        b->counters.bad_lengths += d.bad_lengths;
        b->counters.deflated_not_inflated += d.deflated_not_inflated;
        pthread_mutex_unlock(&b->lock);
}

/* One stats buffer: le16 tag, le64 value, packed (§5.5.6.3). */
static void balloon_stats_read(VirtioBalloon *b, VirtioReader *rd) {
        bool seen[VIRTIO_BALLOON_S_NR] = {};
        uint64_t value[VIRTIO_BALLOON_S_NR] = {};
        size_t left = virtio_reader_remaining(rd), n;
        uint64_t unknown = 0;

        if (left % 10 != 0) {
                pthread_mutex_lock(&b->lock);
                b->counters.bad_stats++;
                pthread_mutex_unlock(&b->lock);
                return;
        }
        n = MIN(left / 10, (size_t) VIRTIO_BALLOON_STATS_MAX_ENTRIES);
        for (size_t i = 0; i < n; i++) {
                uint8_t e[10];
                uint16_t tag;

                if (virtio_reader_read(rd, e, sizeof(e)) < 0)
                        break;
                memcpy(&tag, e, 2);
                /* §5.5.6.3: unknown tags are the driver's business; a
                 * newer driver may send tags we do not know. */
                if (tag >= VIRTIO_BALLOON_S_NR) {
                        unknown++;
                        continue;
                }
                seen[tag] = true;
                memcpy(&value[tag], e + 2, 8);
        }

        pthread_mutex_lock(&b->lock);
        /* A new buffer replaces the old stats: a tag the driver stopped
         * sending is gone. */
        memcpy(b->stat_seen, seen, sizeof(seen));
        memcpy(b->stat_value, value, sizeof(value));
        b->counters.unknown_stat_tags += unknown;
        b->counters.stats_entries_dropped += left / 10 - n;
        b->stats_ns = now_ns();
        pthread_mutex_unlock(&b->lock);
}

static void stats_event_signal(VirtioBalloon *b) {
        uint64_t one = 1;

        /* Non-blocking: a counter already pending says the same. */
        (void) !write(b->stats_event_fd, &one, sizeof(one));
}

static void balloon_stats_notify(VirtioBalloon *b, VirtQueue *q) {
        bool give_back;
        int r;

        while ((r = virtq_pop(q, &b->chain)) > 0) {
                balloon_stats_read(b, &b->chain.reader);

                pthread_mutex_lock(&b->lock);
                /* The driver keeps one buffer queued; one that sends more
                 * gets the older back and the device keeps the newest. */
                if (b->stats_held)
                        virtq_push(q, &b->stats_chain, 0);
                b->stats_chain.head = b->chain.head;
                b->stats_held = true;
                b->stats_in_flight = false;
                b->stats_generation++;
                pthread_cond_broadcast(&b->stats_cond);
                pthread_mutex_unlock(&b->lock);
                stats_event_signal(b);
        }
        if (r < 0)
                return;

        pthread_mutex_lock(&b->lock);
        give_back = b->stats_wanted && b->stats_held && !b->stats_in_flight;
        if (give_back) {
                /* §5.5.6.3: returning the buffer asks for new stats. */
                virtq_push(q, &b->stats_chain, 0);
                b->stats_held = false;
                b->stats_in_flight = true;
        }
        if (b->stats_in_flight)
                b->stats_wanted = false;
        pthread_mutex_unlock(&b->lock);
}

/* Free page reporting (§5.5.6.7): every buffer of the chain is a free
 * range; Linux queues them device-writable. */
static void balloon_report(VirtioBalloon *b, VirtioChain *c) {
        uint64_t freed = 0;

        for (unsigned i = 0; i < c->n_readable + c->n_writable; i++) {
                const VirtioSeg *s = &c->segs[i];
                uint64_t start = ALIGN_UP(s->gpa, (uint64_t) VIRTIO_BALLOON_PAGE_SIZE);
                uint64_t end = ALIGN_DOWN(s->gpa + s->len, (uint64_t) VIRTIO_BALLOON_PAGE_SIZE);
                uint64_t off;

                /* The walker checked the range is RAM of one region;
                 * partial pages are left alone, they hold other data. */
                if (end <= start)
                        continue;
                off = (uint64_t) (s->host - b->mem->base) + (start - s->gpa);
                punch(b, off, end - start);
                freed += end - start;
        }
        pthread_mutex_lock(&b->lock);
        b->counters.reported_bytes += freed;
        pthread_mutex_unlock(&b->lock);
}

static void balloon_queue_notify(void *dev, VirtQueue *q) {
        VirtioBalloon *b = dev;
        uint8_t role = q->index < BALLOON_N_QUEUES ? b->roles[q->index] : ROLE_NONE;
        int r;

        switch (role) {
        case ROLE_INFLATE:
        case ROLE_DEFLATE:
                while ((r = virtq_pop(q, &b->chain)) > 0) {
                        balloon_pfns(b, &b->chain.reader, role == ROLE_INFLATE);
                        virtq_push(q, &b->chain, 0);
                }
                break;
        case ROLE_STATS:
                balloon_stats_notify(b, q);
                break;
        case ROLE_REPORTING:
                while ((r = virtq_pop(q, &b->chain)) > 0) {
                        balloon_report(b, &b->chain);
                        virtq_push(q, &b->chain, 0);
                }
                break;
        default:
                /* A queue of a feature not negotiated (§5.5.2): the driver
                 * has no business using it. */
                virtio_device_set_needs_reset(b->vdev, "virtio-balloon: notify on a queue that does not exist");
                break;
        }
}

static void balloon_reset(void *dev) {
        VirtioBalloon *b = dev;

        /* §2.4: after a reset the driver owns all its memory again; pages
         * still punched read as zeros, like fresh RAM. The host's target
         * stays. */
        memset(b->bitmap, 0, (size_t) ((b->n_pages + 63) / 64) * sizeof(uint64_t));
        memset(b->roles, ROLE_NONE, sizeof(b->roles));
        pthread_mutex_lock(&b->lock);
        b->actual = 0;
        b->inflated_pages = 0;
        b->stats_active = b->stats_held = b->stats_in_flight = b->stats_wanted = false;
        pthread_cond_broadcast(&b->stats_cond);
        pthread_mutex_unlock(&b->lock);
        /* Nobody waits for stats that cannot come any more. */
        stats_event_signal(b);
}

int virtio_balloon_set_target(VirtioDevice *vdev, uint64_t bytes) {
        VirtioBalloon *b;
        bool reached;

        if (!vdev || virtio_device_ops(vdev) != &virtio_balloon_ops)
                return -ENODEV;
        b = virtio_device_state(vdev);
        if (bytes > b->mem->size)
                return -EINVAL;

        pthread_mutex_lock(&b->lock);
        b->num_pages = (uint32_t) (bytes / VIRTIO_BALLOON_PAGE_SIZE);
        reached = b->num_pages == b->actual;
        pthread_mutex_unlock(&b->lock);
        /* Asked for what the driver holds already: reached at once. */
        if (reached)
                virtio_device_status_changed(vdev);
        /* §5.5.6: the driver reads num_pages on a configuration change. */
        if (virtio_device_status(vdev) & VIRTIO_STATUS_DRIVER_OK)
                virtio_device_config_changed(vdev);
        return 0;
}

static void deadline_after(struct timespec *ts, int ms) {
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (long) (ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

int virtio_balloon_request_stats(VirtioDevice *vdev, bool ask, uint64_t *ret_generation) {
        VirtioBalloon *b;
        unsigned stats_queue = 0;
        bool kick = false;

        if (!vdev || virtio_device_ops(vdev) != &virtio_balloon_ops)
                return -ENODEV;
        b = virtio_device_state(vdev);

        pthread_mutex_lock(&b->lock);
        *ret_generation = b->stats_generation;
        if (ask && b->stats_active) {
                /* Requests made while one is already out join it: the
                 * worker returns the buffer only once (stats_in_flight). */
                b->stats_wanted = true;
                stats_queue = b->stats_queue;
                kick = true;
        }
        pthread_mutex_unlock(&b->lock);

        /* The worker returns the held buffer; the driver answers with a
         * new one on its own time. */
        if (kick)
                virtio_device_kick(vdev, stats_queue);
        return kick;
}

int virtio_balloon_stats_event_fd(VirtioDevice *vdev) {
        VirtioBalloon *b;

        if (!vdev || virtio_device_ops(vdev) != &virtio_balloon_ops)
                return -ENODEV;
        b = virtio_device_state(vdev);
        return b->stats_event_fd;
}

bool virtio_balloon_stats_changed(VirtioDevice *vdev, uint64_t generation) {
        VirtioBalloon *b = virtio_device_state(vdev);
        bool changed;

        pthread_mutex_lock(&b->lock);
        changed = b->stats_generation != generation || !b->stats_active;
        pthread_mutex_unlock(&b->lock);
        return changed;
}

static void balloon_info_locked(VirtioBalloon *b, uint64_t generation, VirtioBalloonInfo *ret) {
        VirtioBalloonInfo info = {};

        info.target_bytes = (uint64_t) b->num_pages * VIRTIO_BALLOON_PAGE_SIZE;
        info.actual_bytes = (uint64_t) b->actual * VIRTIO_BALLOON_PAGE_SIZE;
        info.inflated_bytes = b->inflated_pages * VIRTIO_BALLOON_PAGE_SIZE;
        info.stats_valid = b->stats_generation > 0;
        info.stats_fresh = b->stats_generation != generation;
        if (info.stats_valid) {
                uint64_t now = now_ns();

                info.stats_age_ns = now > b->stats_ns ? now - b->stats_ns : 0;
        }
        for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
                if (b->stat_seen[t])
                        info.stats[info.n_stats++] = (VirtioBalloonStat) { .tag = (uint16_t) t, .value = b->stat_value[t] };
        *ret = info;
}

int virtio_balloon_read_info(VirtioDevice *vdev, uint64_t generation, VirtioBalloonInfo *ret) {
        VirtioBalloon *b;

        if (!vdev || virtio_device_ops(vdev) != &virtio_balloon_ops)
                return -ENODEV;
        b = virtio_device_state(vdev);
        pthread_mutex_lock(&b->lock);
        balloon_info_locked(b, generation, ret);
        pthread_mutex_unlock(&b->lock);
        return 0;
}

int virtio_balloon_get_info(VirtioDevice *vdev, int timeout_ms, VirtioBalloonInfo *ret) {
        VirtioBalloon *b;
        uint64_t gen;
        int r;

        if (!vdev || virtio_device_ops(vdev) != &virtio_balloon_ops)
                return -ENODEV;
        b = virtio_device_state(vdev);
        timeout_ms = MIN(timeout_ms, BALLOON_STATS_TIMEOUT_MAX_MS);

        r = virtio_balloon_request_stats(vdev, timeout_ms > 0, &gen);

        pthread_mutex_lock(&b->lock);
        if (r > 0) {
                struct timespec deadline;

                deadline_after(&deadline, timeout_ms);
                while (b->stats_generation == gen && b->stats_active)
                        if (pthread_cond_timedwait(&b->stats_cond, &b->lock, &deadline) == ETIMEDOUT)
                                break;
        }
        balloon_info_locked(b, gen, ret);
        pthread_mutex_unlock(&b->lock);
        return 0;
}

void virtio_balloon_get_counters(VirtioDevice *vdev, VirtioBalloonCounters *ret) {
        VirtioBalloon *b = virtio_device_state(vdev);

        pthread_mutex_lock(&b->lock);
        *ret = b->counters;
        pthread_mutex_unlock(&b->lock);
}

bool virtio_balloon_page_inflated(VirtioDevice *vdev, uint64_t pfn) {
        VirtioBalloon *b = virtio_device_state(vdev);
        uint64_t off;

        if (pfn > UINT32_MAX || pfn_offset(b->mem, (uint32_t) pfn, &off) < 0)
                return false;
        return bit_test(b->bitmap, off / VIRTIO_BALLOON_PAGE_SIZE);
}

const VirtioDeviceOps virtio_balloon_ops = {
        .name = "balloon",
        .option_usage = "[=deflate-on-oom,page-reporting]",
        .help = "a virtio-balloon device (control verbs: balloon, balloon-stats)",
        .type = VIRTIO_ID_BALLOON,
        .n_queues = BALLOON_N_QUEUES,
        .queue_max_size = BALLOON_QUEUE_SIZE,
        /* DEFLATE_ON_OOM and PAGE_REPORTING come with the options. */
        .features = (UINT64_C(1) << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (UINT64_C(1) << VIRTIO_BALLOON_F_STATS_VQ),
        .config_size = BALLOON_CONFIG_SIZE,
        .seccomp_role = "virtio-balloon",
        .seccomp_policy = "virtio-balloon.policy",
        .parse = balloon_parse,
        .create = balloon_create,
        .destroy = balloon_destroy,
        .config_read = balloon_config_read,
        .config_write = balloon_config_write,
        .activate = balloon_activate,
        .queue_notify = balloon_queue_notify,
        .reset = balloon_reset,
        .fds = balloon_fds,
        .instance_features = balloon_instance_features,
};
