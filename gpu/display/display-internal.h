/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* gpu/display's insides that its tests reach: not for the device core. */

#include <stdbool.h>
#include <stdint.h>

#include "gpu/display.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Converts n pixels of a virtio-gpu 32-bit format to XRGB8888;
 * -EOPNOTSUPP for any other format. */
int gpu_display_convert_row(uint32_t format, uint8_t *dst, const uint8_t *src, uint32_t n);
/* The same into ARGB8888 for the cursor: an A format's alpha kept as it
 * is (premultiplied), an X format's made opaque. */
int gpu_display_convert_cursor_row(uint32_t format, uint8_t *dst, const uint8_t *src, uint32_t n);

/* Calls the xdg_toplevel.close handler of scanout's window as the
 * compositor would (weston's headless back-end has no way to click). */
void gpu_display_test_toplevel_close(GpuDisplay *d, unsigned scanout);

/* Calls the xdg_toplevel.configure handler of scanout's window with
 * that size and states (as a user's interactive resize would send it),
 * then what xdg_surface.configure does, but acks nothing (there is no
 * serial of the compositor's to ack). */
void gpu_display_test_toplevel_configure(GpuDisplay *d, unsigned scanout, int32_t width, int32_t height,
                                         bool maximized, bool fullscreen);

/* Asks the compositor to maximize scanout's window, or to stop
 * (xdg_toplevel.set_maximized, unset_maximized), as a user's maximize
 * button would have the window do. */
void gpu_display_test_set_maximized(GpuDisplay *d, unsigned scanout, bool maximized);
/* Asks the compositor to make scanout's window fullscreen
 * (xdg_toplevel.set_fullscreen, on an output of its choice). */
void gpu_display_test_set_fullscreen(GpuDisplay *d, unsigned scanout);

/* The size of scanout's window buffers; false when it has no window. */
bool gpu_display_test_window_size(const GpuDisplay *d, unsigned scanout, uint32_t *ret_width,
                                  uint32_t *ret_height);

/* Whether scanout has damage not committed to the compositor yet (its
 * window not configured, or both buffers held). */
bool gpu_display_test_frame_pending(const GpuDisplay *d, unsigned scanout);

/* The newest image of scanout (XRGB8888, width * 4 bytes per row): the
 * shadow while damage waits there, else the last committed buffer; NULL
 * before the first commit. */
const uint8_t *gpu_display_test_newest_image(const GpuDisplay *d, unsigned scanout);

#ifdef __cplusplus
}
#endif
