/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for virtio-block requests (vmm/devices/virtio-block.c),
 * through the walker. The input is a few bytes of setup, then the guest's
 * first 64 KiB: descriptor table, rings, request headers, discard segments
 * and data all come from the fuzzer, as from a hostile driver. The device
 * serves everything available on a 1 MiB sparse image in a memfd, so reads,
 * writes, discards, write-zeroes and resizes all reach a real file. It must
 * never crash, hang, touch memory outside guest RAM, or grow the image
 * beyond the capacity it announced.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/devices/virtio-block.h"

#define MEM_SIZE (2 * MiB)
#define IMAGE_WINDOW (64 * 1024)
#define DISK_SIZE (1 * MiB)

static GuestMemory *mem;
static VirtioDevice *vdev;
static int image_fd = -1;

static void setup(void) {
        char arg[64];

        if (guest_memory_new(MEM_SIZE, &mem) < 0)
                abort();
        image_fd = memfd_create("fuzz-block", MFD_CLOEXEC);
        if (image_fd < 0 || ftruncate(image_fd, DISK_SIZE) < 0)
                abort();
        snprintf(arg, sizeof(arg), "fd:%d,sparse=true,id=fuzz", image_fd);
        if (virtio_device_new(&virtio_block_ops, arg, mem, &vdev) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        VirtQueue q = { 0 };
        uint64_t features;
        struct stat st;
        uint8_t cfg[4];
        void *dev;

        if (!mem)
                setup();
        if (size < sizeof(cfg))
                return 0;
        memcpy(cfg, data, sizeof(cfg));
        data += sizeof(cfg);
        size -= sizeof(cfg);

        (void) guest_zero(mem, 0, IMAGE_WINDOW);
        (void) guest_write(mem, 0, data, size < IMAGE_WINDOW ? size : IMAGE_WINDOW);
        /* Start every input from the same disk. */
        if (virtio_block_capacity(vdev) != DISK_SIZE && virtio_block_resize(vdev, DISK_SIZE) < 0)
                abort();

        q.max_size = VIRTQ_MAX_SIZE;
        q.kick_fd = -1;
        virtq_reset(&q);
        q.size = (uint16_t) (1u << (cfg[0] % 9)); /* 1..256 */
        q.desc_gpa = 0;
        q.avail_gpa = VIRTQ_DESC_BYTES(q.size);
        q.used_gpa = ALIGN_UP(q.avail_gpa + VIRTQ_AVAIL_BYTES(q.size), 4);
        if (virtq_enable(&q, mem, cfg[1] & 1, cfg[1] & 2) < 0)
                return 0;
        q.next_avail = cfg[2];

        /* Which of the device's features the "driver" took: FLUSH (9),
         * DISCARD (13), WRITE_ZEROES (14) decided by the input. */
        features = virtio_device_offered(vdev) & ~((UINT64_C(1) << 9) | (UINT64_C(1) << 13) | (UINT64_C(1) << 14));
        features |= (uint64_t) (cfg[3] & 1) << 9 | (uint64_t) ((cfg[3] >> 1) & 1) << 13 |
                    (uint64_t) ((cfg[3] >> 2) & 1) << 14;
        dev = virtio_device_state(vdev);
        if (virtio_block_ops.activate(dev, &q, features) < 0)
                abort();
        /* A resize in the middle, as the control socket could do. */
        if (cfg[3] & 8)
                (void) virtio_block_resize(vdev, 512 * (1 + (uint64_t) cfg[2] * 8));

        virtio_block_ops.queue_notify(dev, &q);
        (void) virtq_should_interrupt(&q);
        virtio_block_ops.reset(dev);

        /* Nothing the guest can do writes past the announced end. */
        if (fstat(image_fd, &st) < 0 || (uint64_t) st.st_size != virtio_block_capacity(vdev))
                abort();
        return 0;
}
