/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Split virtqueues (virtio 1.2 §2.7) and the one descriptor walker every
 * device uses (STYLE.md habit 3). Devices never read a ring: they pop a
 * validated VirtioChain, read what the driver wrote through its reader,
 * write their answer through its writer, and push it back.
 *
 *     VirtioChain *c = ...;            (one per worker, 4 KiB+: not on a small stack)
 *     while ((r = virtq_pop(q, c)) > 0) {
 *             r = virtio_reader_read(&c->reader, &hdr, sizeof(hdr));
 *             ...
 *             r = virtio_writer_write(&c->writer, buf, n);
 *             virtq_push(q, c, virtio_writer_written(&c->writer));
 *     }
 *     (r < 0: the driver broke the rules; the queue is now broken and the
 *      framework marks the device NEEDS_RESET. Just return.)
 *
 * Threading: a queue belongs to its device's worker thread once activated;
 * nothing here locks. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest queue a device may offer. Chains are at most this long
 * (virtio 1.2 §2.7.5.3.1: no chain longer than the queue size). */
#define VIRTQ_MAX_SIZE 256

/* Ring flags (virtio 1.2 §2.7.5, §2.7.6, §2.7.8). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* The guest's structures, little-endian (x86 only, so native); naturally
 * aligned, 16 and 8 bytes. */
typedef struct VirtqDesc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
} VirtqDesc;

typedef struct VirtqUsedElem {
        uint32_t id;
        uint32_t len;
} VirtqUsedElem;

/* Bytes each ring takes for a queue of `size` entries, with the event
 * index fields (virtio 1.2 §2.7). */
#define VIRTQ_DESC_BYTES(size) ((uint64_t) (size) * 16)
#define VIRTQ_AVAIL_BYTES(size) (6 + (uint64_t) (size) * 2)
#define VIRTQ_USED_BYTES(size) (6 + (uint64_t) (size) * 8)

/* One buffer of a chain: a range of guest RAM, checked when the chain was
 * walked (host points into the guest memory mapping). */
typedef struct VirtioSeg {
        uint64_t gpa;
        uint32_t len;
        uint8_t *host;
} VirtioSeg;

typedef struct VirtioCursor {
        const VirtioSeg *segs;
        unsigned n_segs;
        unsigned seg;           /* current segment */
        uint32_t off;           /* into it */
        uint32_t remaining;     /* bytes left in this cursor */
        uint32_t done;          /* bytes read or written so far */
} VirtioCursor;

/* Distinct types so a reader cannot be passed where a writer is meant. */
typedef struct VirtioReader {
        VirtioCursor c;
} VirtioReader;

typedef struct VirtioWriter {
        VirtioCursor c;
} VirtioWriter;

/* A validated descriptor chain: the driver-readable buffers first, then the
 * driver-writable ones. */
typedef struct VirtioChain {
        uint16_t head;          /* what goes back in the used ring */
        unsigned n_readable, n_writable;
        VirtioReader reader;
        VirtioWriter writer;
        VirtioSeg segs[VIRTQ_MAX_SIZE];
} VirtioChain;

typedef struct VirtQueue VirtQueue;

struct VirtQueue {
        /* Programmed by the driver through the transport (virtio 1.2 §4.1.4.3). */
        uint16_t index;
        uint16_t max_size;      /* what the device offers */
        uint16_t size;
        uint16_t msix_vector;   /* VIRTIO_MSI_NO_VECTOR when none */
        bool enabled;
        uint64_t desc_gpa, avail_gpa, used_gpa;

        /* Fixed by virtq_enable(). */
        const GuestMemory *mem;
        bool event_idx, indirect;
        VirtqDesc *desc;        /* host views of the checked rings */
        volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
        volatile uint16_t *used_hdr; /* flags, idx */
        VirtqUsedElem *used_ring;
        volatile uint16_t *avail_event; /* after used->ring[size] */

        /* The worker's. */
        uint16_t next_avail;
        uint16_t next_used;
        uint16_t signalled_used; /* used idx at the last interrupt */
        bool signalled_used_valid;
        bool broken;
        const char *error;      /* why it broke (a spec rule), for the log */

        /* Wired by the framework: the eventfd the driver's notifications
         * arrive on, and how to interrupt the driver for this queue. */
        int kick_fd;
        void (*interrupt)(void *ctx, VirtQueue *q);
        void *interrupt_ctx;
};

/* Resets the driver-programmed fields and the cursors (device reset). */
void virtq_reset(VirtQueue *q);
/* Checks the driver's size and ring addresses and maps the rings: size a
 * power of two, 1..max_size; rings aligned and inside RAM. -EINVAL or
 * -EFAULT; the queue is then marked broken with the reason. */
int virtq_enable(VirtQueue *q, const GuestMemory *mem, bool event_idx, bool indirect);

/* 1 and *ret filled with the next chain; 0 when the driver has made none
 * available (and, with EVENT_IDX, asked to be notified of the next one);
 * -EBADMSG when the driver broke a rule: q->broken is set, q->error says
 * which, and the queue does nothing more until reset. -ESHUTDOWN when the
 * queue was already broken or not enabled. */
int virtq_pop(VirtQueue *q, VirtioChain *ret);
/* Hands a chain back with `written` bytes written (virtio 1.2 §2.7.8). */
void virtq_push(VirtQueue *q, const VirtioChain *c, uint32_t written);
/* Whether the driver wants an interrupt for what was pushed since the last
 * one (EVENT_IDX used_event or VIRTQ_AVAIL_F_NO_INTERRUPT, §2.7.7);
 * records that it got one. */
bool virtq_should_interrupt(VirtQueue *q);
/* virtq_should_interrupt() then q->interrupt(). */
void virtq_interrupt(VirtQueue *q);

/* Cursors. Reads and writes are all or nothing: -EMSGSIZE when fewer than
 * len bytes remain (nothing consumed). */
size_t virtio_reader_remaining(const VirtioReader *r);
int virtio_reader_read(VirtioReader *r, void *buf, size_t len);
int virtio_reader_skip(VirtioReader *r, size_t len);
/* Up to max iovecs covering the next len bytes, pointing into guest RAM,
 * for preadv/pwritev straight from or to the guest; consumes them. Buffers
 * adjacent both in guest-physical memory and in the host mapping share one
 * iovec (never those on either side of the MMIO hole). Returns
 * the number of iovecs, -EMSGSIZE (too few bytes) or -E2BIG (max too small). */
int virtio_reader_iov(VirtioReader *r, size_t len, struct iovec *iov, unsigned max);

size_t virtio_writer_remaining(const VirtioWriter *w);
uint32_t virtio_writer_written(const VirtioWriter *w);
int virtio_writer_write(VirtioWriter *w, const void *buf, size_t len);
int virtio_writer_zero(VirtioWriter *w, size_t len);
int virtio_writer_iov(VirtioWriter *w, size_t len, struct iovec *iov, unsigned max);

#ifdef __cplusplus
}
#endif
