/* SPDX-License-Identifier: BSD-3-Clause */
/* An always-headless gpu/display.h, so majordome-gpu builds until the
 * Wayland implementation lands in this folder (it replaces this file). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "gpu/display.h"

struct GpuDisplay {
        unsigned n_scanouts;
};

int gpu_display_new(int wayland_fd, const char *wayland_path, unsigned n_scanouts,
                    const GpuDisplayCallbacks *callbacks, void *ctx, GpuDisplay **ret) {
        GpuDisplay *d;

        if (wayland_fd >= 0)
                close(wayland_fd);
        if (n_scanouts == 0 || n_scanouts > GPU_DISPLAY_MAX_SCANOUTS)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->n_scanouts = n_scanouts;
        *ret = d;
        return 0;
}

GpuDisplay *gpu_display_free(GpuDisplay *d) {
        free(d);
        return NULL;
}

bool gpu_display_is_headless(const GpuDisplay *d) { return true; }
int gpu_display_fd(const GpuDisplay *d) { return -1; }
int gpu_display_dispatch(GpuDisplay *d) { return 0; }

int gpu_display_set_mode(GpuDisplay *d, unsigned scanout, uint32_t width, uint32_t height) {
        return scanout < d->n_scanouts && width <= 16384 && height <= 16384 ? 0 : -EINVAL;
}

int gpu_display_update(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t stride, uint32_t format,
                       uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        return 0;
}
