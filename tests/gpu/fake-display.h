/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A gpu/display.h that records what the device core asked of it: every
 * set_mode and update, and each scanout's pixels as copied (4 bytes a
 * pixel, as given, no conversion), for tests/gpu. */

#include <stdint.h>

#include "gpu/display.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FAKE_DISPLAY_MAX_CALLS 64

typedef struct FakeDisplayCall {
        char kind;              /* 'm': set_mode, 'u': update */
        unsigned scanout;
        uint32_t x, y, w, h;    /* set_mode: w x h */
        uint32_t format;
} FakeDisplayCall;

typedef struct FakeScanout {
        uint32_t width, height;
        uint8_t *pixels;        /* width * height * 4, zeroed at each set_mode */
} FakeScanout;

struct GpuDisplay {
        unsigned n_scanouts;
        FakeScanout s[GPU_DISPLAY_MAX_SCANOUTS];
        FakeDisplayCall calls[FAKE_DISPLAY_MAX_CALLS];
        unsigned n_calls;
};

#ifdef __cplusplus
}
#endif
