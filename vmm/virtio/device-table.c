/* SPDX-License-Identifier: BSD-3-Clause */
/* The one table of virtio devices (STYLE.md habit 2). Adding a device: one
 * file vmm/devices/virtio-NAME.c with its ops (which name its seccomp role
 * and policy), its policy in seccomp/policies/, one line here and in
 * vmm/meson.build. Order is the order of --help and of PCI slots when
 * several kinds are given. */
#include <string.h>

#include "vmm/virtio/device.h"

extern const VirtioDeviceOps virtio_balloon_ops;
extern const VirtioDeviceOps virtio_block_ops;
extern const VirtioDeviceOps virtio_console_ops;
extern const VirtioDeviceOps virtio_rng_ops;
extern const VirtioDeviceOps virtio_vsock_ops;
extern const VirtioDeviceOps virtio_vhost_user_ops;
extern const VirtioDeviceOps virtio_shared_dir_ops;
extern const VirtioDeviceOps virtio_gpu_ops;
extern const VirtioDeviceOps virtio_video_decoder_ops;
extern const VirtioDeviceOps virtio_video_encoder_ops;

const VirtioDeviceOps *const virtio_device_table[] = {
        &virtio_balloon_ops,
        &virtio_block_ops,
        &virtio_console_ops,
        &virtio_rng_ops,
        &virtio_vsock_ops,
        &virtio_vhost_user_ops,
        &virtio_shared_dir_ops,
        &virtio_gpu_ops,
        &virtio_video_decoder_ops,
        &virtio_video_encoder_ops,
};

const unsigned virtio_device_table_size = ARRAY_SIZE(virtio_device_table);

const VirtioDeviceOps *virtio_device_find_kind(uint32_t kind) {
        return virtio_device_find(vmm_device_kind_to_string(kind));
}

const VirtioDeviceOps *virtio_device_find(const char *name) {
        for (unsigned i = 0; i < virtio_device_table_size; i++)
                if (name && strcmp(virtio_device_table[i]->name, name) == 0)
                        return virtio_device_table[i];
        return NULL;
}

int virtio_device_table_register_roles(void) {
        SandboxRole role;
        int r;

        r = sandbox_role_register(VIRTIO_DEVICE_ROLE, VIRTIO_DEVICE_POLICY, &role);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < virtio_device_table_size; i++) {
                r = virtio_device_sandbox_role(virtio_device_table[i], &role);
                if (r < 0)
                        return r;
        }
        return 0;
}
