/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for the descriptor walker (vmm/virtio/queue.c). The
 * input is a queue configuration followed by the guest's first 64 KiB: the
 * descriptor table, rings and indirect tables all come from the fuzzer.
 * Every chain the walker accepts is read and written to the end, so ASan
 * sees any cursor that strays outside guest RAM. The walker must never
 * crash, hang, or touch memory outside the mapping.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/queue.h"

#define MEM_SIZE (2 * MiB)
#define IMAGE_SIZE (64 * 1024)
#define RING_BASE 0

static GuestMemory *mem;
static VirtioChain chain;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t scratch[64 * 1024];
        VirtQueue q = { 0 };
        uint8_t cfg[4];

        if (!mem && guest_memory_new(MEM_SIZE, &mem) < 0)
                abort();
        if (size < sizeof(cfg))
                return 0;
        memcpy(cfg, data, sizeof(cfg));
        data += sizeof(cfg);
        size -= sizeof(cfg);

        (void) guest_zero(mem, 0, IMAGE_SIZE);
        (void) guest_write(mem, 0, data, size < IMAGE_SIZE ? size : IMAGE_SIZE);

        q.max_size = VIRTQ_MAX_SIZE;
        q.kick_fd = -1;
        virtq_reset(&q);
        q.size = (uint16_t) (1u << (cfg[0] % 10)); /* 1..512: 512 is refused */
        if (cfg[0] & 0x80)
                q.size = cfg[1]; /* any size, also bad ones */
        q.desc_gpa = RING_BASE;
        q.avail_gpa = RING_BASE + VIRTQ_DESC_BYTES(q.size);
        q.used_gpa = ALIGN_UP(q.avail_gpa + VIRTQ_AVAIL_BYTES(q.size), 4);
        if (virtq_enable(&q, mem, cfg[2] & 1, cfg[2] & 2) < 0)
                return 0;
        q.next_avail = cfg[3];

        for (unsigned n = 0; n < 2u * VIRTQ_MAX_SIZE; n++) {
                int r = virtq_pop(&q, &chain);
                size_t k;

                if (r <= 0)
                        break;
                while ((k = virtio_reader_remaining(&chain.reader)) > 0)
                        (void) virtio_reader_read(&chain.reader, scratch, k < sizeof(scratch) ? k : sizeof(scratch));
                while ((k = virtio_writer_remaining(&chain.writer)) > 0)
                        (void) virtio_writer_zero(&chain.writer, k < sizeof(scratch) ? k : sizeof(scratch));
                virtq_push(&q, &chain, virtio_writer_written(&chain.writer));
                (void) virtq_should_interrupt(&q);
        }
        return 0;
}
