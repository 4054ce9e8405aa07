/* SPDX-License-Identifier: BSD-3-Clause */
/* Full-frame 1920x1080 updates through gpu/display to a real weston 10
 * (headless, pixman) against memcpy of the same bytes, same run:
 * `meson test -C build --benchmark gpu-display-bench`. A frame counts
 * once the display has committed it to the compositor, which needs a
 * buffer weston released, so weston's side is in the figure. Exits 77
 * without weston. */
#include <poll.h>
#include <time.h>

#include <linux/virtio_gpu.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gpu/display/display-internal.h"
#include "gpu/display.h"
#include "tests/gpu-display/weston.h"

using namespace weston_test;
using Clock = std::chrono::steady_clock;

/* This thread's CPU time, seconds: what majordome-gpu spends, without
 * the waits for weston (which a loaded machine stretches). */
static double cpu_s() {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

static constexpr uint32_t WIDTH = 1920, HEIGHT = 1080;

/* Dispatches until the display committed scanout 0's frame; false after 2 s. */
static bool wait_committed(GpuDisplay *d) {
        auto deadline = Clock::now() + std::chrono::seconds(2);
        while (gpu_display_test_frame_pending(d, 0)) {
                struct pollfd p = { gpu_display_fd(d), POLLIN, 0 };
                if (Clock::now() > deadline || p.fd < 0)
                        return false;
                if (poll(&p, 1, 100) > 0 && gpu_display_dispatch(d) < 0)
                        return false;
        }
        return true;
}

int main(int argc, char **argv) {
        unsigned frames = argc > 1 ? unsigned(atoi(argv[1])) : 300;
        std::vector<uint8_t> image(size_t(WIDTH) * HEIGHT * 4, 0x40), copy(image.size());
        Weston weston(WIDTH + 200, HEIGHT + 200);
        GpuDisplay *d = nullptr;

        std::string why = weston.start();
        if (!why.empty()) {
                fprintf(stderr, "gpu-display-bench: skipped: %s\n", why.c_str());
                return 77;
        }
        if (gpu_display_new(-1, weston.socket_path.c_str(), 1, nullptr, nullptr, &d) < 0 ||
            gpu_display_is_headless(d) || gpu_display_set_mode(d, 0, WIDTH, HEIGHT) < 0 || !wait_committed(d)) {
                fprintf(stderr, "gpu-display-bench: no window on weston\n");
                return 1;
        }

        auto start = Clock::now();
        double cpu_start = cpu_s();
        for (unsigned i = 0; i < frames; i++) {
                image[(i * 4099) % image.size()] ^= 0xff;
                if (gpu_display_update(d, 0, image.data(), WIDTH * 4, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0, 0, WIDTH,
                                       HEIGHT) < 0 ||
                    !wait_committed(d)) {
                        fprintf(stderr, "gpu-display-bench: frame %u not committed\n", i);
                        return 1;
                }
        }
        double display_s = std::chrono::duration<double>(Clock::now() - start).count();
        double display_cpu_s = cpu_s() - cpu_start;

        start = Clock::now();
        cpu_start = cpu_s();
        for (unsigned i = 0; i < frames; i++) {
                image[(i * 4099) % image.size()] ^= 0xff;
                memcpy(copy.data(), image.data(), image.size());
                asm volatile("" : : "r"(copy.data()) : "memory");
        }
        double memcpy_s = std::chrono::duration<double>(Clock::now() - start).count();
        double memcpy_cpu_s = cpu_s() - cpu_start;

        double display_fps = frames / display_s, memcpy_fps = frames / memcpy_s;
        printf("gpu-display-bench: %ux%u full frames: %.0f/s to weston, %.0f/s memcpy, ratio %.3f; "
               "CPU per frame %.0f us vs memcpy %.0f us, ratio %.3f\n",
               WIDTH, HEIGHT, display_fps, memcpy_fps, display_fps / memcpy_fps, display_cpu_s / frames * 1e6,
               memcpy_cpu_s / frames * 1e6, memcpy_cpu_s / display_cpu_s);
        gpu_display_free(d);
        return 0;
}
