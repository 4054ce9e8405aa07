/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* virtio-block (virtio 1.2 §5.2): what the rest of the VMM may ask of a
 * block device besides its VirtioDeviceOps. */

#include <stdint.h>

#include "vmm/virtio/device.h"
#include "vmm/virtio/virtio-pci.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const VirtioDeviceOps virtio_block_ops;

/* Option parsing, apart from opening anything: PATH or fd:N, then
 * comma-separated ro, ro=BOOL, sparse, sparse=BOOL, id=SERIAL (at most 20
 * printable ASCII bytes). -EINVAL for anything else. */
#define VIRTIO_BLOCK_ID_BYTES 20

typedef struct VirtioBlockOptions {
        char path[4096];        /* empty when fd >= 0 */
        int fd;                 /* fd:N, else -1 */
        bool read_only;
        bool sparse;
        char id[VIRTIO_BLOCK_ID_BYTES + 1];
} VirtioBlockOptions;

int virtio_block_parse_options(const char *arg, VirtioBlockOptions *ret);

/* Changes the disk's size to `bytes` (a multiple of 512): the image file is
 * grown or shrunk with ftruncate(), the capacity updated and the driver
 * sent a configuration change interrupt (§5.2.4, §4.1.4.5). In-flight
 * requests finish against the old size first. -EROFS for a read-only disk,
 * -EINVAL for a size that is not a whole number of sectors or zero, or the
 * error of ftruncate() (e.g. -EINVAL on a block device). Any thread. */
int virtio_block_resize(VirtioDevice *vdev, uint64_t bytes);

/* The disk's current capacity in bytes (a multiple of 512). */
uint64_t virtio_block_capacity(VirtioDevice *vdev);

/* The index-th block device (counting from 0, in the order the --block
 * options were given) among the VM's virtio devices: -ENODEV when there
 * are fewer. */
int virtio_block_find(VirtioPci *const *devs, unsigned n, unsigned index, VirtioDevice **ret);

#ifdef __cplusplus
}
#endif
