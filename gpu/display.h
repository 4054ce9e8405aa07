/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Where majordome-gpu shows the guest's scanouts: one window per enabled
 * scanout on the host's Wayland compositor (xdg-shell toplevels filled
 * from wl_shm buffers), or nowhere (headless).
 *
 * The device core (virtio-gpu.c) calls this on SET_SCANOUT,
 * RESOURCE_FLUSH and the cursor queue's commands; it never sees Wayland.
 * Single-threaded: everything runs on the back-end's loop, which polls
 * gpu_display_fd() and calls gpu_display_dispatch() when it is
 * readable. */

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GPU_DISPLAY_MAX_SCANOUTS 16     /* VIRTIO_GPU_MAX_SCANOUTS */
#define GPU_DISPLAY_CURSOR_SIZE 64      /* a cursor image's side (virtio 1.2 §5.7.6.9) */

typedef struct GpuDisplay GpuDisplay;

typedef struct GpuDisplayCallbacks {
        /* The user asked to close scanout's window (its close button):
         * the VM should stop. Optional. */
        void (*close_requested)(void *ctx, unsigned scanout);
        /* The compositor gave scanout's window a size (the user resized
         * it, or it was maximized or made fullscreen) that is neither the
         * guest's mode nor the size last reported: the guest should be
         * offered width x height (1..16384 each). Once per distinct size;
         * the window goes on showing the guest's mode until a new one is
         * set. Optional. */
        void (*resize_requested)(void *ctx, unsigned scanout, uint32_t width, uint32_t height);
} GpuDisplayCallbacks;

/* Connects to the compositor: wayland_fd a connected socket (taken, even
 * on failure), else wayland_path a socket path; both absent (-1, NULL):
 * headless. When the compositor cannot be reached or lacks wl_shm or
 * xdg_wm_base, says so once in the log and runs headless: that is not an
 * error. -ENOMEM, -EINVAL (n_scanouts 0 or past the maximum). */
int gpu_display_new(int wayland_fd, const char *wayland_path, unsigned n_scanouts,
                    const GpuDisplayCallbacks *callbacks, void *ctx, GpuDisplay **ret);
GpuDisplay *gpu_display_free(GpuDisplay *d);

bool gpu_display_is_headless(const GpuDisplay *d);
/* The compositor connection's fd to poll for input (-1 when headless), and
 * what to call when it is readable: 0, or negative when the compositor went
 * away (the display is headless from then on; logged once). */
int gpu_display_fd(const GpuDisplay *d);
int gpu_display_dispatch(GpuDisplay *d);

/* Scanout shows a width x height image from now on; 0 x 0 disables it
 * (its window goes away). The window's contents are black until the first
 * update. -EINVAL for a scanout out of range or a size past 16384. */
int gpu_display_set_mode(GpuDisplay *d, unsigned scanout, uint32_t width, uint32_t height);

/* Copies the rectangle (x, y, w, h) of an image into scanout's window at
 * the same place and commits it with that damage only. pixels is the
 * image's first byte, stride its bytes per row, format a virtio-gpu 2D
 * format (VIRTIO_GPU_FORMAT_*: every 32-bit one is accepted, converted to
 * XRGB8888 as needed). The caller has clipped the rectangle to the image
 * and the mode. Headless: 0, nothing done. -EINVAL for a scanout not
 * enabled or a rectangle outside its mode, -EOPNOTSUPP for a format. */
int gpu_display_update(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t stride, uint32_t format,
                       uint32_t x, uint32_t y, uint32_t w, uint32_t h);

/* Each scanout has a cursor of its own, drawn over its window (the
 * guest's position is the truth: nothing forwards host input). Hidden
 * at first. pixels is a GPU_DISPLAY_CURSOR_SIZE-square image, rows
 * GPU_DISPLAY_CURSOR_SIZE * 4 bytes apart, in a virtio-gpu 32-bit format
 * (copied: the caller may reuse it at once); an A format's alpha is kept,
 * taken as premultiplied (what DRM's ARGB8888 is), an X format is opaque.
 * (hot_x, hot_y) is the image's point that goes where
 * gpu_display_move_cursor() says. pixels NULL hides the cursor (format
 * and hotspot then ignored). A scanout without a window keeps its cursor
 * until the window appears. Headless: 0, nothing shown. -EINVAL for a
 * scanout out of range or a hotspot outside the image, -EOPNOTSUPP for
 * a format, -ENOMEM. */
int gpu_display_set_cursor(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t format, uint32_t hot_x,
                           uint32_t hot_y);

/* Puts the hotspot of scanout's cursor at (x, y) of the scanout's image
 * (0, 0 before the first move); the part outside the window is not
 * drawn. Kept while the cursor is hidden. Headless: 0. -EINVAL for a
 * scanout out of range. */
int gpu_display_move_cursor(GpuDisplay *d, unsigned scanout, int32_t x, int32_t y);

#ifdef __cplusplus
}
#endif
