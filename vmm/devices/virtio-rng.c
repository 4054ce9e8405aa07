/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-rng (virtio 1.2 §5.4): one request queue; every buffer the driver
 * makes writable is filled from getrandom(). No configuration, no features. */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/virtio/device.h"

typedef struct VirtioRng {
        VirtioDevice *vdev;
        VirtioChain chain;      /* big: kept off the worker's stack */
} VirtioRng;

static int rng_parse(const char *arg, VmmDevice *ret) {
        return arg ? -EINVAL : 0;
}

static int rng_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        VirtioRng *rng;

        rng = calloc(1, sizeof(*rng));
        if (!rng)
                return -ENOMEM;
        rng->vdev = vdev;
        *ret = rng;
        return 0;
}

static void rng_destroy(void *dev) {
        free(dev);
}

static void rng_config_read(void *dev, uint32_t offset, void *data, uint32_t size) {
        /* §5.4.4: no device configuration; the transport never calls this
         * with config_size 0. */
}

static int rng_activate(void *dev, VirtQueue *queues, uint64_t features) {
        return 0;
}

static void rng_queue_notify(void *dev, VirtQueue *q) {
        VirtioRng *rng = dev;
        uint8_t buf[4096];
        int r;

        while ((r = virtq_pop(q, &rng->chain)) > 0) {
                VirtioWriter *w = &rng->chain.writer;

                /* §5.4.6.1: the device MUST place one or more random bytes
                 * into the buffer; we fill all of it. */
                while (virtio_writer_remaining(w) > 0) {
                        size_t n = MIN(virtio_writer_remaining(w), sizeof(buf));
                        ssize_t k = getrandom(buf, n, 0);

                        if (k <= 0)
                                break; /* EINTR: hand back what we have */
                        (void) virtio_writer_write(w, buf, (size_t) k);
                }
                virtq_push(q, &rng->chain, virtio_writer_written(w));
        }
}

const VirtioDeviceOps virtio_rng_ops = {
        .name = "rng",
        .option_usage = NULL,
        .help = "a virtio-rng device fed by getrandom()",
        .type = VIRTIO_ID_RNG,
        .n_queues = 1,
        .queue_max_size = 256,
        .features = 0,
        .config_size = 0,
        .seccomp_role = "virtio-rng",
        .seccomp_policy = "virtio-rng.policy",
        .parse = rng_parse,
        .create = rng_create,
        .destroy = rng_destroy,
        .config_read = rng_config_read,
        .activate = rng_activate,
        .queue_notify = rng_queue_notify,
};
