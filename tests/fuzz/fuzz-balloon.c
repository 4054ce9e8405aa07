/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for virtio-balloon (vmm/devices/virtio-balloon.c),
 * through the walker. The input is a few bytes of setup, then the guest's
 * first 64 KiB: descriptor table, rings, PFN arrays, stats buffers and
 * reported ranges all come from the fuzzer, as from a hostile driver. One
 * queue is enabled per input, at an index and with features the input
 * picks, so inflate, deflate, stats and reporting are all reached (and
 * queues of features not negotiated too). Inflated pages are really
 * punched out of the guest-RAM memfd. The device must never crash, hang,
 * touch memory outside guest RAM, or count more pages in the balloon than
 * the guest has.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <stdlib.h>
#include <string.h>

#include "vmm/devices/virtio-balloon.h"

#define MEM_SIZE (2 * MiB)
#define IMAGE_WINDOW (64 * 1024)
#define N_QUEUES 5

static GuestMemory *mem;
static VirtioDevice *vdev;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        VirtQueue qs[N_QUEUES];
        VirtioBalloonInfo info;
        uint64_t features;
        unsigned index;
        uint8_t cfg[4];
        VirtQueue *q;
        void *dev;

        if (!mem && (guest_memory_new(MEM_SIZE, &mem) < 0 ||
                     virtio_device_new(&virtio_balloon_ops, "deflate-on-oom,page-reporting", mem, &vdev) < 0))
                abort();
        if (size < sizeof(cfg))
                return 0;
        memcpy(cfg, data, sizeof(cfg));
        data += sizeof(cfg);
        size -= sizeof(cfg);

        (void) guest_zero(mem, 0, IMAGE_WINDOW);
        (void) guest_write(mem, 0, data, size < IMAGE_WINDOW ? size : IMAGE_WINDOW);

        memset(qs, 0, sizeof(qs));
        for (unsigned i = 0; i < N_QUEUES; i++) {
                qs[i].index = (uint16_t) i;
                qs[i].max_size = 128;
                qs[i].kick_fd = -1;
                virtq_reset(&qs[i]);
        }
        index = (cfg[0] >> 4) % N_QUEUES;
        q = &qs[index];
        q->size = (uint16_t) (1u << (cfg[0] % 8)); /* 1..128 */
        q->desc_gpa = 0;
        q->avail_gpa = VIRTQ_DESC_BYTES(q->size);
        q->used_gpa = ALIGN_UP(q->avail_gpa + VIRTQ_AVAIL_BYTES(q->size), 4);
        if (virtq_enable(q, mem, cfg[1] & 1, cfg[1] & 2) < 0)
                return 0;
        q->next_avail = cfg[2];

        /* STATS_VQ (1), DEFLATE_ON_OOM (2), PAGE_REPORTING (5) by the input. */
        features = virtio_device_offered(vdev) & ~(UINT64_C(0x26));
        features |= (uint64_t) (cfg[3] & 0x26);
        dev = virtio_device_state(vdev);
        if (virtio_balloon_ops.activate(dev, qs, features) < 0)
                abort();
        (void) virtio_balloon_set_target(vdev, (uint64_t) cfg[3] << 16);

        virtio_balloon_ops.queue_notify(dev, q);
        /* A second round, as after another notification. */
        virtio_balloon_ops.queue_notify(dev, q);
        (void) virtq_should_interrupt(q);

        if (virtio_balloon_get_info(vdev, 0, &info) < 0 || info.inflated_bytes > MEM_SIZE ||
            info.n_stats > VIRTIO_BALLOON_S_NR)
                abort();
        virtio_balloon_ops.reset(dev);
        return 0;
}
