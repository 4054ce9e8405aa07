/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A gpu/display.h that records what the device core asked of it: every
 * set_mode, update and cursor call, each scanout's pixels and cursor
 * image as copied (4 bytes a pixel, as given, no conversion), for
 * tests/gpu. */

#include <stdbool.h>
#include <stdint.h>

#include "gpu/display.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FAKE_DISPLAY_MAX_CALLS 64

typedef struct FakeDisplayCall {
        char kind;              /* 'm': set_mode, 'u': update, 'c': set_cursor, 'p': move_cursor */
        unsigned scanout;
        uint32_t x, y, w, h;    /* set_mode: w x h; set_cursor: x, y the hotspot, w 1 shown, 0 hidden;
                                 * move_cursor: x, y as the int32_t given */
        uint32_t format;
} FakeDisplayCall;

typedef struct FakeCursor {
        bool shown;
        uint32_t format, hot_x, hot_y;
        int32_t x, y;
        uint8_t pixels[GPU_DISPLAY_CURSOR_SIZE * GPU_DISPLAY_CURSOR_SIZE * 4];  /* the last image set */
} FakeCursor;

typedef struct FakeScanout {
        uint32_t width, height;
        uint8_t *pixels;        /* width * height * 4, zeroed at each set_mode */
} FakeScanout;

struct GpuDisplay {
        unsigned n_scanouts;
        FakeScanout s[GPU_DISPLAY_MAX_SCANOUTS];
        FakeCursor cursor[GPU_DISPLAY_MAX_SCANOUTS];
        FakeDisplayCall calls[FAKE_DISPLAY_MAX_CALLS];
        unsigned n_calls;
};

#ifdef __cplusplus
}
#endif
