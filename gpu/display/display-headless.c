/* SPDX-License-Identifier: BSD-3-Clause */
/* gpu/display for a build without Wayland (meson -Dwayland=disabled):
 * always headless. The arguments are checked as display.c checks them, so
 * the device core sees the same errors either way. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "gpu/display.h"
#include "common/log.h"

#define MAX_DIMENSION 16384

struct GpuDisplay {
        unsigned n_scanouts;
        uint32_t width[GPU_DISPLAY_MAX_SCANOUTS];
        uint32_t height[GPU_DISPLAY_MAX_SCANOUTS];
};

int gpu_display_new(int wayland_fd, const char *wayland_path, unsigned n_scanouts,
                    const GpuDisplayCallbacks *callbacks, void *ctx, GpuDisplay **ret) {
        GpuDisplay *d;

        if (wayland_fd >= 0)
                close(wayland_fd);
        if (!ret || n_scanouts == 0 || n_scanouts > GPU_DISPLAY_MAX_SCANOUTS)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->n_scanouts = n_scanouts;
        if (wayland_fd >= 0 || wayland_path)
                log_warning("Display: majordome-gpu was built without wayland support, running headless.");
        else
                log_info("Display: no Wayland compositor given, running headless.");
        *ret = d;
        return 0;
}

GpuDisplay *gpu_display_free(GpuDisplay *d) {
        free(d);
        return NULL;
}

bool gpu_display_is_headless(const GpuDisplay *d) {
        return true;
}

int gpu_display_fd(const GpuDisplay *d) {
        return -1;
}

int gpu_display_dispatch(GpuDisplay *d) {
        return d ? 0 : -EINVAL;
}

int gpu_display_set_mode(GpuDisplay *d, unsigned scanout, uint32_t width, uint32_t height) {
        if (!d || scanout >= d->n_scanouts)
                return -EINVAL;
        if (width > MAX_DIMENSION || height > MAX_DIMENSION || (width == 0) != (height == 0))
                return -EINVAL;
        d->width[scanout] = width;
        d->height[scanout] = height;
        return 0;
}

static bool format_is_supported(uint32_t format) {
        switch (format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
        case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
        case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
        case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
                return true;
        default:
                return false;
        }
}

int gpu_display_update(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t stride, uint32_t format,
                       uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        if (!d || scanout >= d->n_scanouts || d->width[scanout] == 0)
                return -EINVAL;
        if (w == 0 || h == 0 || (uint64_t) x + w > d->width[scanout] || (uint64_t) y + h > d->height[scanout])
                return -EINVAL;
        if (!format_is_supported(format))
                return -EOPNOTSUPP;
        if (!pixels || (uint64_t) stride < ((uint64_t) x + w) * 4)
                return -EINVAL;
        return 0;
}

int gpu_display_set_cursor(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t format, uint32_t hot_x,
                           uint32_t hot_y) {
        if (!d || scanout >= d->n_scanouts)
                return -EINVAL;
        if (!pixels)
                return 0;
        if (hot_x >= GPU_DISPLAY_CURSOR_SIZE || hot_y >= GPU_DISPLAY_CURSOR_SIZE)
                return -EINVAL;
        return format_is_supported(format) ? 0 : -EOPNOTSUPP;
}

int gpu_display_move_cursor(GpuDisplay *d, unsigned scanout, int32_t x, int32_t y) {
        return d && scanout < d->n_scanouts ? 0 : -EINVAL;
}
