/* SPDX-License-Identifier: BSD-3-Clause */
/* The descriptor walker's cost: ns per chain popped and pushed, for a
 * one-buffer chain, a 4-buffer chain (block-like: header, 2 data, status)
 * and an 8-entry indirect table. Each round the "driver" republishes a
 * full queue of 256 chains; only virtq_pop + virtq_push are timed.
 * Usage: walker-bench [ROUNDS]; prints one line per shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/virtio/queue.h"

#define QSIZE 256
#define RING 0x10000
#define TABLES 0x40000
#define DATA 0x100000

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void put_desc(GuestMemory *m, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next) {
        VirtqDesc d = { .addr = addr, .len = len, .flags = flags, .next = next };
        if (guest_write(m, table + 16 * (uint64_t) i, &d, sizeof(d)) < 0)
                abort();
}

/* Lays out QSIZE / n_desc chains of n_desc buffers (or indirect tables). */
static unsigned build(GuestMemory *m, unsigned n_desc, bool indirect) {
        unsigned chains = indirect ? QSIZE : QSIZE / n_desc;

        for (unsigned c = 0; c < chains; c++) {
                uint16_t head = (uint16_t) (indirect ? c : c * n_desc);
                uint64_t table = indirect ? TABLES + (uint64_t) c * 16 * n_desc : RING;
                unsigned base = indirect ? 0 : head;

                for (unsigned k = 0; k < n_desc; k++) {
                        bool last = k + 1 == n_desc;
                        uint16_t flags = (k >= n_desc / 2 ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
                        put_desc(m, table, base + k, DATA + 4096 * (uint64_t) k, 512, flags, (uint16_t) (base + k + 1));
                }
                if (indirect)
                        put_desc(m, RING, head, table, 16 * n_desc, VIRTQ_DESC_F_INDIRECT, 0);
                uint16_t h = head;
                if (guest_write(m, RING + 16 * QSIZE + 4 + 2 * (uint64_t) c, &h, 2) < 0)
                        abort();
        }
        return chains;
}

static double run(GuestMemory *m, unsigned n_desc, bool indirect, unsigned rounds) {
        static VirtioChain chain;
        VirtQueue q = { .max_size = QSIZE, .kick_fd = -1 };
        unsigned chains = build(m, n_desc, indirect);
        uint64_t total = 0, popped = 0;
        uint16_t idx = 0;

        virtq_reset(&q);
        q.size = QSIZE;
        q.desc_gpa = RING;
        q.avail_gpa = RING + 16 * QSIZE;
        q.used_gpa = ALIGN_UP(q.avail_gpa + VIRTQ_AVAIL_BYTES(QSIZE), 4096);
        if (virtq_enable(&q, m, true, true) < 0)
                abort();

        for (unsigned r = 0; r < rounds; r++) {
                uint64_t t0;
                int k;

                /* The driver: the ring entries stay, only idx moves on. */
                idx = (uint16_t) (idx + chains);
                if (guest_write(m, q.avail_gpa + 2, &idx, 2) < 0)
                        abort();
                /* Offsets into the ring wrap with idx; rewrite the entries
                 * where this round's chains will be read. */
                for (unsigned c = 0; c < chains; c++) {
                        uint16_t h = (uint16_t) (indirect ? c : c * n_desc);
                        if (guest_write(m, q.avail_gpa + 4 + 2 * (uint64_t) ((uint16_t) (q.next_avail + c) % QSIZE), &h, 2) < 0)
                                abort();
                }
                t0 = now_ns();
                while ((k = virtq_pop(&q, &chain)) > 0) {
                        virtq_push(&q, &chain, 0);
                        popped++;
                }
                total += now_ns() - t0;
                if (k < 0) {
                        fprintf(stderr, "walker refused the bench's chains: %s\n", q.error);
                        exit(1);
                }
        }
        return (double) total / (double) popped;
}

int main(int argc, char **argv) {
        unsigned rounds = argc > 1 ? (unsigned) atoi(argv[1]) : 2000;
        GuestMemory *m;

        if (guest_memory_new(16 * MiB, &m) < 0)
                return 1;
        printf("walker: 1-descriptor chain      %6.1f ns/chain\n", run(m, 1, false, rounds));
        printf("walker: 4-descriptor chain      %6.1f ns/chain\n", run(m, 4, false, rounds));
        printf("walker: 8-entry indirect table  %6.1f ns/chain\n", run(m, 8, true, rounds));
        guest_memory_free(m);
        return 0;
}
