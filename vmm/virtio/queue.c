/* SPDX-License-Identifier: BSD-3-Clause */
/* The descriptor walker: the only code that reads a virtqueue's rings.
 * Everything the driver wrote is copied out of guest memory once and then
 * checked, so a driver changing a descriptor under us cannot make a check
 * and a use disagree. Section numbers are those of virtio 1.2. */
#include <errno.h>
#include <string.h>

#include "vmm/virtio/queue.h"

#define VIRTIO_MSI_NO_VECTOR 0xffff

void virtq_reset(VirtQueue *q) {
        uint16_t index = q->index, max_size = q->max_size;
        int kick_fd = q->kick_fd;
        void (*interrupt)(void *, VirtQueue *) = q->interrupt;
        void *ctx = q->interrupt_ctx;

        *q = (VirtQueue) {
                .index = index,
                .max_size = max_size,
                /* §4.1.4.3: queue_size reads the maximum after reset. */
                .size = max_size,
                .msix_vector = VIRTIO_MSI_NO_VECTOR,
                .kick_fd = kick_fd,
                .interrupt = interrupt,
                .interrupt_ctx = ctx,
        };
}

static int virtq_fail(VirtQueue *q, const char *why) {
        q->broken = true;
        q->error = why;
        return -EBADMSG;
}

static int ring_map(const GuestMemory *mem, uint64_t gpa, uint64_t len, uint64_t align, void **ret) {
        if (!IS_ALIGNED(gpa, align))
                return -EINVAL;
        return guest_slice(mem, gpa, len, ret);
}

int virtq_enable(VirtQueue *q, const GuestMemory *mem, bool event_idx, bool indirect) {
        void *desc, *avail, *used;

        /* §2.7: "Queue Size ... is a power of 2", at most 32768; and no
         * more than the device offered (§4.1.4.3.2). */
        if (q->size == 0 || (q->size & (q->size - 1)) != 0 || q->size > q->max_size) {
                virtq_fail(q, "queue size 0, not a power of two, or over the maximum (2.7, 4.1.4.3.2)");
                return -EINVAL;
        }
        /* §2.7 table "Virtqueue Part Alignment": 16, 2 and 4 bytes, and
         * each part must be guest RAM we can map. */
        if (ring_map(mem, q->desc_gpa, VIRTQ_DESC_BYTES(q->size), 16, &desc) < 0 ||
            ring_map(mem, q->avail_gpa, VIRTQ_AVAIL_BYTES(q->size), 2, &avail) < 0 ||
            ring_map(mem, q->used_gpa, VIRTQ_USED_BYTES(q->size), 4, &used) < 0) {
                virtq_fail(q, "a ring outside guest RAM or misaligned (2.7)");
                return -EFAULT;
        }

        q->mem = mem;
        q->event_idx = event_idx;
        q->indirect = indirect;
        q->desc = desc;
        q->avail = avail;
        q->used_hdr = used;
        q->used_ring = (VirtqUsedElem *) ((uint8_t *) used + 4);
        q->avail_event = (volatile uint16_t *) ((uint8_t *) used + 4 + 8 * (uint64_t) q->size);
        q->next_avail = 0;
        q->next_used = 0;
        q->signalled_used_valid = false;
        q->broken = false;
        q->error = NULL;
        q->enabled = true;
        return 0;
}

static uint16_t avail_idx(const VirtQueue *q) {
        /* Acquire: the ring entries and descriptors the driver wrote before
         * moving idx are visible once we see idx (§2.7.13, the driver's
         * write barrier pairs with this). */
        return __atomic_load_n(&q->avail[1], __ATOMIC_ACQUIRE);
}

static uint16_t avail_ring(const VirtQueue *q, uint16_t i) {
        return __atomic_load_n(&q->avail[2 + (i & (q->size - 1))], __ATOMIC_RELAXED);
}

static VirtqDesc desc_load(const VirtqDesc *d) {
        VirtqDesc copy;

        /* A copy: the guest may rewrite the descriptor while we look. */
        memcpy(&copy, (const void *) d, sizeof(copy));
        return copy;
}

/* Appends one buffer after checking it. */
static int chain_add(VirtQueue *q, VirtioChain *c, const VirtqDesc *d, uint64_t *total) {
        bool writable = d->flags & VIRTQ_DESC_F_WRITE;
        void *host;

        /* §2.7.4.2: "The driver MUST place any device-writable descriptor
         * elements after any device-readable descriptor elements." */
        if (!writable && c->n_writable > 0)
                return virtq_fail(q, "a readable descriptor after a writable one (2.7.4.2)");
        /* §2.7.5.1: no chain over 2^32 bytes in total; the used length is
         * a u32 (§2.7.8). */
        *total += d->len;
        if (*total > UINT32_MAX)
                return virtq_fail(q, "chain longer than 2^32 bytes in total (2.7.5.1)");
        /* A zero-length buffer carries nothing: accepted, not kept. */
        if (d->len == 0)
                return 0;
        /* §2.7.5: addr is a guest-physical address; all of [addr, addr+len)
         * must be RAM: not past the end, not across the MMIO hole, not
         * wrapping (guest_slice checks all three). */
        if (guest_slice(q->mem, d->addr, d->len, &host) < 0)
                return virtq_fail(q, "a buffer outside guest RAM, across the hole or wrapping (2.7.5)");
        if (c->n_readable + c->n_writable >= VIRTQ_MAX_SIZE)
                return virtq_fail(q, "chain longer than the queue size (2.7.5.3.1)");
        c->segs[c->n_readable + c->n_writable] = (VirtioSeg) { .gpa = d->addr, .len = d->len, .host = host };
        if (writable)
                c->n_writable++;
        else
                c->n_readable++;
        return 0;
}

static void cursor_init(VirtioCursor *cur, const VirtioSeg *segs, unsigned n) {
        uint64_t total = 0;

        for (unsigned i = 0; i < n; i++)
                total += segs[i].len;
        *cur = (VirtioCursor) { .segs = segs, .n_segs = n, .remaining = (uint32_t) total };
}

static int walk_indirect(VirtQueue *q, VirtioChain *c, const VirtqDesc *ind, unsigned *hops, uint64_t *total) {
        const VirtqDesc *table;
        void *host;
        uint32_t n;
        uint16_t i = 0;

        /* §2.7.5.3.1: only with VIRTIO_F_INDIRECT_DESC negotiated. */
        if (!q->indirect)
                return virtq_fail(q, "an indirect descriptor without VIRTIO_F_INDIRECT_DESC (2.7.5.3.1)");
        /* §2.7.5.3: the table is len / 16 descriptors; a length that is
         * not a multiple of 16, or zero, is no table. */
        if (ind->len == 0 || ind->len % sizeof(VirtqDesc) != 0)
                return virtq_fail(q, "indirect table length zero or not a multiple of 16 (2.7.5.3)");
        n = ind->len / sizeof(VirtqDesc);
        /* §2.7.5.3.1: no chain longer than the queue size, tables included. */
        if (n > q->size)
                return virtq_fail(q, "indirect table longer than the queue size (2.7.5.3.1)");
        if (guest_slice(q->mem, ind->addr, ind->len, &host) < 0)
                return virtq_fail(q, "indirect table outside guest RAM (2.7.5.3)");
        table = host;

        for (;;) {
                VirtqDesc d = desc_load(&table[i]);
                int r;

                /* A loop inside the table: more hops than entries. */
                if (++*hops > q->size)
                        return virtq_fail(q, "descriptor loop or chain longer than the queue size (2.7.5.1)");
                /* §2.7.5.3.1: "The driver MUST NOT set the
                 * VIRTQ_DESC_F_INDIRECT flag within an indirect descriptor". */
                if (d.flags & VIRTQ_DESC_F_INDIRECT)
                        return virtq_fail(q, "nested indirect table (2.7.5.3.1)");
                r = chain_add(q, c, &d, total);
                if (r < 0)
                        return r;
                if (!(d.flags & VIRTQ_DESC_F_NEXT))
                        return 0;
                /* §2.7.5.3: next indexes the indirect table. */
                if (d.next >= n)
                        return virtq_fail(q, "indirect next index past the table (2.7.5.3)");
                i = d.next;
        }
}

static int walk_chain(VirtQueue *q, uint16_t head, VirtioChain *c) {
        uint64_t total = 0;
        unsigned hops = 0;
        uint16_t i = head;
        int r;

        c->head = head;
        c->n_readable = c->n_writable = 0;
        /* §2.7.6: ring entries are heads of chains in the descriptor table. */
        if (head >= q->size)
                return virtq_fail(q, "head index out of the descriptor table (2.7.6)");

        for (;;) {
                VirtqDesc d = desc_load(&q->desc[i]);

                if (d.flags & VIRTQ_DESC_F_INDIRECT) {
                        /* §2.7.5.3.1: "A driver MUST NOT set both
                         * VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT". The
                         * table ends the chain. */
                        if (d.flags & VIRTQ_DESC_F_NEXT)
                                return virtq_fail(q, "indirect descriptor with NEXT set (2.7.5.3.1)");
                        r = walk_indirect(q, c, &d, &hops, &total);
                        if (r < 0)
                                return r;
                        break;
                }
                /* A chain visiting more descriptors than the table has
                 * loops (§2.7.5.1 forbids loops; the kvmtool walk that
                 * trusted this spun forever). */
                if (++hops > q->size)
                        return virtq_fail(q, "descriptor loop or chain longer than the queue size (2.7.5.1)");
                r = chain_add(q, c, &d, &total);
                if (r < 0)
                        return r;
                if (!(d.flags & VIRTQ_DESC_F_NEXT))
                        break;
                /* §2.7.5: next is an index into the descriptor table. */
                if (d.next >= q->size)
                        return virtq_fail(q, "next index out of the descriptor table (2.7.5)");
                i = d.next;
        }

        cursor_init(&c->reader.c, c->segs, c->n_readable);
        cursor_init(&c->writer.c, c->segs + c->n_readable, c->n_writable);
        return 0;
}

int virtq_pop(VirtQueue *q, VirtioChain *ret) {
        uint16_t idx, pending, head;

        if (!q->enabled || q->broken)
                return -ESHUTDOWN;

        idx = avail_idx(q);
        if (idx == q->next_avail) {
                if (!q->event_idx)
                        return 0;
                /* §2.7.10: tell the driver which index to notify us at, then
                 * look again: it may have added a buffer before seeing it.
                 * The full barrier orders our store before the reload. */
                __atomic_store_n(q->avail_event, q->next_avail, __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                idx = avail_idx(q);
                if (idx == q->next_avail)
                        return 0;
        }
        /* §2.7.6 with §2.7.13.3: the driver never has more than queue-size
         * buffers outstanding, so idx cannot run further ahead than that. */
        pending = (uint16_t) (idx - q->next_avail);
        if (pending > q->size)
                return virtq_fail(q, "available index moved by more than the queue size (2.7.6)");

        head = avail_ring(q, q->next_avail);
        q->next_avail++;
        return walk_chain(q, head, ret) < 0 ? -EBADMSG : 1;
}

void virtq_push(VirtQueue *q, const VirtioChain *c, uint32_t written) {
        VirtqUsedElem *e;

        if (!q->enabled || q->broken)
                return;
        e = &q->used_ring[q->next_used & (q->size - 1)];
        __atomic_store_n(&e->id, c->head, __ATOMIC_RELAXED);
        __atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
        q->next_used++;
        /* §2.7.8.2 / §2.7.13: the element must be visible before idx. */
        __atomic_store_n(&q->used_hdr[1], q->next_used, __ATOMIC_RELEASE);
}

/* §2.7.7.2: Linux's vring_need_event(). */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
        return (uint16_t) (new_idx - event - 1) < (uint16_t) (new_idx - old_idx);
}

bool virtq_should_interrupt(VirtQueue *q) {
        uint16_t old, event;
        bool valid;

        if (!q->enabled || q->broken)
                return false;
        /* Order the used idx store before reading the driver's
         * suppression fields (the driver does the mirror image). */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);

        if (!q->event_idx) {
                /* §2.7.7.2: without EVENT_IDX, honour NO_INTERRUPT. */
                /* Nothing used since the last one (or since the start). */
                if ((q->signalled_used_valid ? q->signalled_used : 0) == q->next_used)
                        return false;
                q->signalled_used = q->next_used;
                q->signalled_used_valid = true;
                return !(__atomic_load_n(&q->avail[0], __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
        }

        old = q->signalled_used;
        valid = q->signalled_used_valid;
        q->signalled_used = q->next_used;
        q->signalled_used_valid = true;
        /* The first one always, once something was used: a device that
         * asks after a turn that pushed nothing (a back-end starting its
         * ring) must not raise a spurious interrupt. */
        if (!valid)
                return q->next_used != 0;
        if (old == q->next_used)
                return false;
        /* used_event sits after avail->ring[size] (§2.7.6). */
        event = __atomic_load_n(&q->avail[2 + q->size], __ATOMIC_RELAXED);
        return need_event(event, q->next_used, old);
}

void virtq_interrupt(VirtQueue *q) {
        if (virtq_should_interrupt(q) && q->interrupt)
                q->interrupt(q->interrupt_ctx, q);
}

/* ---- cursors ---- */

/* Whether b continues a in one iovec: adjacent in guest-physical addresses
 * and in the host mapping. Both were checked to lie inside one RAM region
 * each (chain_add); needing both adjacencies keeps apart a pair that only
 * the host mapping puts side by side, like the last page below the MMIO
 * hole and the first one above it (one memfd, mapped in one piece). */
static bool seg_joins(const VirtioSeg *a, const VirtioSeg *b) {
        return a->gpa + a->len == b->gpa && a->host + a->len == b->host;
}

typedef void (*CursorOp)(uint8_t *guest, uint8_t *buf, size_t n);

static int cursor_advance(VirtioCursor *cur, size_t len, uint8_t *buf, CursorOp op,
                          struct iovec *iov, unsigned max_iov) {
        unsigned n_iov = 0;

        if (len > cur->remaining)
                return -EMSGSIZE;
        /* For iovecs, check the count first so a failure consumes nothing. */
        if (iov) {
                unsigned seg = cur->seg;
                uint32_t off = cur->off;
                size_t left = len;

                while (left > 0) {
                        size_t n = MIN(left, (size_t) (cur->segs[seg].len - off));
                        bool joins = n_iov > 0 && off == 0 && seg_joins(&cur->segs[seg - 1], &cur->segs[seg]);
                        if (n > 0 && !joins && ++n_iov > max_iov)
                                return -E2BIG;
                        left -= n;
                        off += n;
                        if (off == cur->segs[seg].len) {
                                seg++;
                                off = 0;
                        }
                }
                n_iov = 0;
        }

        while (len > 0) {
                const VirtioSeg *s = &cur->segs[cur->seg];
                size_t n = MIN(len, (size_t) (s->len - cur->off));

                if (n > 0) {
                        if (iov && n_iov > 0 && cur->off == 0 && seg_joins(s - 1, s))
                                iov[n_iov - 1].iov_len += n;
                        else if (iov)
                                iov[n_iov++] = (struct iovec) { .iov_base = s->host + cur->off, .iov_len = n };
                        else if (op)
                                op(s->host + cur->off, buf, n);
                        if (buf)
                                buf += n;
                }
                len -= n;
                cur->off += n;
                cur->remaining -= n;
                cur->done += n;
                if (cur->off == s->len) {
                        cur->seg++;
                        cur->off = 0;
                }
        }
        return iov ? (int) n_iov : 0;
}

static void op_read(uint8_t *guest, uint8_t *buf, size_t n) {
        memcpy(buf, guest, n);
}

static void op_write(uint8_t *guest, uint8_t *buf, size_t n) {
        memcpy(guest, buf, n);
}

static void op_zero(uint8_t *guest, uint8_t *buf, size_t n) {
        memset(guest, 0, n);
}

size_t virtio_reader_remaining(const VirtioReader *r) {
        return r->c.remaining;
}

int virtio_reader_read(VirtioReader *r, void *buf, size_t len) {
        return cursor_advance(&r->c, len, buf, op_read, NULL, 0);
}

int virtio_reader_skip(VirtioReader *r, size_t len) {
        return cursor_advance(&r->c, len, NULL, NULL, NULL, 0);
}

int virtio_reader_iov(VirtioReader *r, size_t len, struct iovec *iov, unsigned max) {
        return cursor_advance(&r->c, len, NULL, NULL, iov, max);
}

size_t virtio_writer_remaining(const VirtioWriter *w) {
        return w->c.remaining;
}

uint32_t virtio_writer_written(const VirtioWriter *w) {
        return w->c.done;
}

int virtio_writer_write(VirtioWriter *w, const void *buf, size_t len) {
        return cursor_advance(&w->c, len, (uint8_t *) buf, op_write, NULL, 0);
}

int virtio_writer_zero(VirtioWriter *w, size_t len) {
        return cursor_advance(&w->c, len, NULL, op_zero, NULL, 0);
}

int virtio_writer_iov(VirtioWriter *w, size_t len, struct iovec *iov, unsigned max) {
        return cursor_advance(&w->c, len, NULL, NULL, iov, max);
}
