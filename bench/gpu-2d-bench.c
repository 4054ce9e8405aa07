/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-gpu 2D throughput (issue #13's goal: >= 0.5x memcpy): a 1920x1080
 * frame in guest memory, backed by scattered 4 KiB pages as a Linux guest's
 * dumb buffer is, goes through TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of the
 * whole frame, through the device core (gpu/virtio-gpu.c) with a headless
 * display, against memcpy of the same bytes measured in the same run (the
 * limit: the device copies each byte once), interleaved, the best round
 * of each kept. Prints MB/s of both and the ratio; exits 1 below the goal.
 *
 *     gpu-2d-bench [FRAMES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/display.h"
#include "gpu/virtio-gpu.h"
#include "vmm/memory.h"
#include "common/unaligned.h"

#define WIDTH 1920
#define HEIGHT 1080
#define FRAME ((uint64_t) WIDTH * HEIGHT * 4)
#define PAGES ((FRAME + 4095) / 4096)
#define BACKING 0x1000000               /* guest pages from 16 MiB */
#define GOAL 0.5
#define ROUNDS 5

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint8_t req[VIRTIO_GPU_MAX_REQUEST], resp[VIRTIO_GPU_MAX_RESPONSE];

/* A control request: its header (type) then body; the response's type. */
static uint32_t call(VirtioGpu *g, GuestMemory *mem, uint32_t type, size_t len) {
        put_le32(req, type);
        memset(req + 4, 0, 20);
        if (virtio_gpu_handle(g, mem, VIRTIO_GPU_QUEUE_CONTROL, req, len, resp, sizeof(resp)) < 24)
                return 0;
        return get_le32(resp);
}

int main(int argc, char **argv) {
        unsigned frames = argc > 1 ? (unsigned) atoi(argv[1]) : 100;
        VirtioGpuOptions o = { .n_scanouts = 1, .width = WIDTH, .height = HEIGHT };
        GuestMemory *mem;
        GpuDisplay *display;
        VirtioGpu *g;
        uint8_t *src, *dst;
        uint64_t t0, device_ns, memcpy_ns;

        if (frames == 0 || guest_memory_new(64 << 20, &mem) < 0 ||
            gpu_display_new(-1, NULL, 1, NULL, NULL, &display) < 0 || virtio_gpu_new(&o, display, &g) < 0)
                return 2;

        /* RESOURCE_CREATE_2D 1, B8G8R8X8, WIDTH x HEIGHT. */
        put_le32(req + 24, 1);
        put_le32(req + 28, 2);
        put_le32(req + 32, WIDTH);
        put_le32(req + 36, HEIGHT);
        if (call(g, mem, 0x0101, 40) != 0x1100)
                return 2;
        /* ATTACH_BACKING: every other guest page, so no two are adjacent. */
        put_le32(req + 24, 1);
        put_le32(req + 28, PAGES);
        for (uint64_t i = 0; i < PAGES; i++) {
                put_le64(req + 32 + 16 * i, BACKING + 2 * 4096 * i);
                put_le32(req + 32 + 16 * i + 8, 4096);
                put_le32(req + 32 + 16 * i + 12, 0);
        }
        if (call(g, mem, 0x0106, 32 + 16 * PAGES) != 0x1100)
                return 2;
        /* SET_SCANOUT 0 to the whole resource. */
        put_le32(req + 24, 0);
        put_le32(req + 28, 0);
        put_le32(req + 32, WIDTH);
        put_le32(req + 36, HEIGHT);
        put_le32(req + 40, 0);
        put_le32(req + 44, 1);
        if (call(g, mem, 0x0103, 48) != 0x1100)
                return 2;

        src = malloc(FRAME);
        dst = malloc(FRAME);
        if (!src || !dst)
                return 2;
        memset(src, 0x5a, FRAME);
        memset(dst, 0, FRAME);
        /* Rounds of each, interleaved, the best of each kept: this host's
         * noise (other jobs) hits both alike. */
        device_ns = memcpy_ns = UINT64_MAX;
        for (unsigned round = 0; round < ROUNDS; round++) {
                uint64_t t;

                t0 = now_ns();
                for (unsigned f = 0; f < frames; f++) {
                        /* TRANSFER_TO_HOST_2D: rect, offset 0, resource 1. */
                        put_le32(req + 24, 0);
                        put_le32(req + 28, 0);
                        put_le32(req + 32, WIDTH);
                        put_le32(req + 36, HEIGHT);
                        put_le64(req + 40, 0);
                        put_le32(req + 48, 1);
                        put_le32(req + 52, 0);
                        if (call(g, mem, 0x0105, 56) != 0x1100)
                                return 2;
                        /* RESOURCE_FLUSH: rect, resource 1. */
                        put_le32(req + 40, 1);
                        put_le32(req + 44, 0);
                        if (call(g, mem, 0x0104, 48) != 0x1100)
                                return 2;
                }
                t = now_ns() - t0;
                device_ns = t < device_ns ? t : device_ns;

                /* The limit: one copy of the frame's bytes. */
                t0 = now_ns();
                for (unsigned f = 0; f < frames; f++) {
                        src[f % FRAME] = (uint8_t) f;
                        memcpy(dst, src, FRAME);
                }
                t = now_ns() - t0;
                memcpy_ns = t < memcpy_ns ? t : memcpy_ns;
        }
        if (dst[frames % FRAME] == 0x42)
                putchar(' ');

        double device_mbs = (double) FRAME * frames / (device_ns / 1e9) / 1e6;
        double memcpy_mbs = (double) FRAME * frames / (memcpy_ns / 1e9) / 1e6;
        double ratio = device_mbs / memcpy_mbs;
        printf("gpu-2d: best of %d rounds of %u frames of %dx%d: transfer+flush %.0f MB/s, memcpy %.0f MB/s, ratio %.2fx (goal >= %.1fx) %s\n",
               ROUNDS, frames, WIDTH, HEIGHT, device_mbs, memcpy_mbs, ratio, GOAL, ratio >= GOAL ? "PASS" : "MISS");
        free(src);
        free(dst);
        virtio_gpu_free(g);
        gpu_display_free(display);
        guest_memory_free(mem);
        return ratio >= GOAL ? 0 : 1;
}
