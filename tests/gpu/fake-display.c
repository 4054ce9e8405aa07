/* SPDX-License-Identifier: BSD-3-Clause */
/* The recording gpu/display.h of tests/gpu: see fake-display.h. Checks its
 * arguments as the real one documents (-EINVAL). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/gpu/fake-display.h"

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
        if (!d)
                return NULL;
        for (unsigned i = 0; i < GPU_DISPLAY_MAX_SCANOUTS; i++)
                free(d->s[i].pixels);
        free(d);
        return NULL;
}

bool gpu_display_is_headless(const GpuDisplay *d) {
        return false;
}

int gpu_display_fd(const GpuDisplay *d) {
        return -1;
}

int gpu_display_dispatch(GpuDisplay *d) {
        return 0;
}

static void record(GpuDisplay *d, FakeDisplayCall c) {
        if (d->n_calls < FAKE_DISPLAY_MAX_CALLS)
                d->calls[d->n_calls++] = c;
}

int gpu_display_set_mode(GpuDisplay *d, unsigned scanout, uint32_t width, uint32_t height) {
        FakeScanout *s;

        if (scanout >= d->n_scanouts || width > 16384 || height > 16384)
                return -EINVAL;
        s = &d->s[scanout];
        free(s->pixels);
        s->pixels = width && height ? calloc((size_t) width * height, 4) : NULL;
        s->width = s->pixels ? width : 0;
        s->height = s->pixels ? height : 0;
        record(d, (FakeDisplayCall) { .kind = 'm', .scanout = scanout, .w = width, .h = height });
        return 0;
}

int gpu_display_update(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t stride, uint32_t format,
                       uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        FakeScanout *s;

        if (scanout >= d->n_scanouts || !d->s[scanout].pixels)
                return -EINVAL;
        s = &d->s[scanout];
        if ((uint64_t) x + w > s->width || (uint64_t) y + h > s->height)
                return -EINVAL;
        for (uint32_t row = 0; row < h; row++)
                memcpy(s->pixels + ((size_t) (y + row) * s->width + x) * 4,
                       (const uint8_t *) pixels + (size_t) (y + row) * stride + (size_t) x * 4, (size_t) w * 4);
        record(d, (FakeDisplayCall) { .kind = 'u', .scanout = scanout, .x = x, .y = y, .w = w, .h = h,
                                      .format = format });
        return 0;
}

int gpu_display_set_cursor(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t format, uint32_t hot_x,
                           uint32_t hot_y) {
        FakeCursor *c;

        if (scanout >= d->n_scanouts)
                return -EINVAL;
        if (pixels && (hot_x >= GPU_DISPLAY_CURSOR_SIZE || hot_y >= GPU_DISPLAY_CURSOR_SIZE))
                return -EINVAL;
        c = &d->cursor[scanout];
        c->shown = pixels != NULL;
        if (pixels) {
                memcpy(c->pixels, pixels, sizeof(c->pixels));
                c->format = format;
                c->hot_x = hot_x;
                c->hot_y = hot_y;
        }
        record(d, (FakeDisplayCall) { .kind = 'c', .scanout = scanout, .x = hot_x, .y = hot_y, .w = c->shown,
                                      .format = format });
        return 0;
}

int gpu_display_move_cursor(GpuDisplay *d, unsigned scanout, int32_t x, int32_t y) {
        if (scanout >= d->n_scanouts)
                return -EINVAL;
        d->cursor[scanout].x = x;
        d->cursor[scanout].y = y;
        record(d, (FakeDisplayCall) { .kind = 'p', .scanout = scanout, .x = (uint32_t) x, .y = (uint32_t) y });
        return 0;
}
