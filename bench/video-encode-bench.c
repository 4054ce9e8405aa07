/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-video encode throughput (issue #15's goal: >= 0.9x the ffmpeg
 * CLI): 720p NV12 frames (lavfi testsrc2, made now by the ffmpeg CLI) go
 * through the encoder core (video/virtio-video.c, H.264 on libx264) as a
 * guest would feed them, each frame from guest pages, each packet into
 * output resources on guest pages; against the ffmpeg CLI encoding the
 * same raw file with the device's settings (veryfast, zerolatency, no
 * B-frames, a key frame a second, 1 Mbit/s, main profile, level 4.0, the
 * same thread count), timed around the process. Rounds interleaved, the
 * best of each kept. Prints frames/s of both and the ratio; exits 1 below
 * the goal, 77 without the ffmpeg CLI or libx264.
 *
 *     video-encode-bench [FRAMES [THREADS]]   (120 frames, 1 thread) */
#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/memory.h"
#include "common/unaligned.h"
#include "video/virtio-video.h"

#define WIDTH 1280
#define HEIGHT 720
#define FRAME_BYTES ((size_t) WIDTH * HEIGHT * 3 / 2)
#define IN_GPA 0x100000
#define OUT_GPA 0x1000000
#define OUT_SIZE (1024 * 1024)
#define N_OUT 4
#define GOAL 0.9
#define ROUNDS 3

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

typedef struct Bench {
        uint64_t out_tag[N_OUT];
        bool in_done, drained;
        unsigned packets;
} Bench;

static uint8_t req[512];

static void respond(void *ctx, uint64_t tag, const void *resp, size_t len) {
        Bench *b = ctx;
        const uint8_t *r = resp;

        if (tag == 0) {
                b->in_done = len == 24 && get_le32(r + 16) == 0;
                return;
        }
        if (tag == 1) {
                b->drained = true;
                return;
        }
        for (unsigned i = 0; i < N_OUT; i++)
                if (b->out_tag[i] == tag) {
                        b->out_tag[i] = 0;
                        if (len == 24 && (get_le32(r + 16) & (VIRTIO_VIDEO_BUFFER_FLAG_IFRAME | VIRTIO_VIDEO_BUFFER_FLAG_PFRAME)))
                                b->packets++;
                }
}

static size_t hdr(uint32_t type) {
        memset(req, 0, sizeof(req));
        put_le32(req, type);
        put_le32(req + 4, 1);
        return 8;
}

static size_t queue_req(uint32_t queue, uint32_t id, uint32_t size) {
        hdr(VIRTIO_VIDEO_CMD_RESOURCE_QUEUE);
        put_le32(req + 8, queue);
        put_le32(req + 12, id);
        put_le32(req + 24, 1);
        put_le32(req + 28, size);
        return 8 + 56;
}

static size_t resource_req(uint32_t queue, uint32_t id, uint64_t gpa, uint32_t len) {
        hdr(VIRTIO_VIDEO_CMD_RESOURCE_CREATE);
        put_le32(req + 8, queue);
        put_le32(req + 12, id);
        put_le32(req + 16, VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER);
        put_le32(req + 20, 1);
        put_le32(req + 56, 1);
        put_le64(req + 88, gpa);
        put_le32(req + 96, len);
        return 88 + 16;
}

static void queue_outputs(VirtioVideo *v, GuestMemory *mem, Bench *b, uint64_t *next_tag) {
        for (unsigned i = 0; i < N_OUT; i++)
                if (b->out_tag[i] == 0) {
                        size_t len = queue_req(VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT, 10 + i, 0);

                        b->out_tag[i] = (*next_tag)++;
                        virtio_video_command(v, mem, b->out_tag[i], req, len, 64);
                }
}

static uint64_t device_round(const uint8_t *raw, unsigned frames, unsigned threads) {
        VirtioVideoOptions o = { .encoder = true, .threads = threads };
        uint64_t next_tag = 100, t0;
        Bench b = { 0 };
        GuestMemory *mem;
        VirtioVideo *v;
        size_t len;

        if (guest_memory_new(64 << 20, &mem) < 0 || virtio_video_new(&o, respond, &b, &v) < 0)
                return 0;
        t0 = now_ns();
        hdr(VIRTIO_VIDEO_CMD_STREAM_CREATE);
        put_le32(req + 16, VIRTIO_VIDEO_FORMAT_H264);
        virtio_video_command(v, mem, 2, req, 8 + 80, 64);
        len = hdr(VIRTIO_VIDEO_CMD_SET_PARAMS);
        put_le32(req + 8, VIRTIO_VIDEO_QUEUE_TYPE_INPUT);
        put_le32(req + 12, VIRTIO_VIDEO_FORMAT_NV12);
        put_le32(req + 16, WIDTH);
        put_le32(req + 20, HEIGHT);
        put_le32(req + 48, 30);
        virtio_video_command(v, mem, 3, req, len + VIRTIO_VIDEO_PARAMS_SIZE, 64);
        virtio_video_command(v, mem, 4, req, resource_req(VIRTIO_VIDEO_QUEUE_TYPE_INPUT, 1, IN_GPA, 2 << 20), 64);
        for (unsigned i = 0; i < N_OUT; i++)
                virtio_video_command(v, mem, 5, req,
                                     resource_req(VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT, 10 + i, OUT_GPA + i * OUT_SIZE, OUT_SIZE),
                                     64);
        queue_outputs(v, mem, &b, &next_tag);
        for (unsigned k = 0; k < frames; k++) {
                guest_write(mem, IN_GPA, raw + k * FRAME_BYTES, FRAME_BYTES);
                b.in_done = false;
                len = queue_req(VIRTIO_VIDEO_QUEUE_TYPE_INPUT, 1, (uint32_t) FRAME_BYTES);
                put_le64(req + 16, k);
                virtio_video_command(v, mem, 0, req, len, 64);
                queue_outputs(v, mem, &b, &next_tag);
                if (!b.in_done)
                        return 0;
        }
        virtio_video_command(v, mem, 1, req, hdr(VIRTIO_VIDEO_CMD_STREAM_DRAIN), 64);
        for (unsigned spin = 0; !b.drained && spin < 1000; spin++)
                queue_outputs(v, mem, &b, &next_tag);
        t0 = now_ns() - t0;
        virtio_video_free(v);
        guest_memory_free(mem);
        if (b.packets != frames || !b.drained) {
                fprintf(stderr, "device: %u packets of %u, drained %d\n", b.packets, frames, b.drained);
                return 0;
        }
        return t0;
}

static uint64_t ffmpeg_round(const char *raw, unsigned threads) {
        char cmd[1024];
        uint64_t t0 = now_ns();

        snprintf(cmd, sizeof(cmd),
                 "ffmpeg -hide_banner -loglevel error -f rawvideo -pix_fmt nv12 -s %dx%d -framerate 30 -i %s "
                 "-c:v libx264 -preset veryfast -tune zerolatency -forced-idr 1 -profile:v main -level 4.0 -g 30 "
                 "-bf 0 -b:v 1M -threads %u -f h264 -y /dev/null",
                 WIDTH, HEIGHT, raw, threads);
        if (system(cmd) != 0)
                return 0;
        return now_ns() - t0;
}

int main(int argc, char **argv) {
        unsigned frames = argc > 1 ? (unsigned) atoi(argv[1]) : 120;
        unsigned threads = argc > 2 ? (unsigned) atoi(argv[2]) : 1;
        char dir[] = "/tmp/video-bench-XXXXXX", path[64], cmd[512];
        uint64_t best_dev = UINT64_MAX, best_ff = UINT64_MAX;
        uint8_t *raw;
        FILE *f;
        double dev_fps, ff_fps, ratio;

        if (frames == 0 || threads == 0 || threads > 16 || !mkdtemp(dir))
                return 2;
        if (system("ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw libx264") != 0) {
                printf("video-encode: SKIP: no ffmpeg CLI with libx264\n");
                return 77;
        }
        snprintf(path, sizeof(path), "%s/in.nv12", dir);
        snprintf(cmd, sizeof(cmd),
                 "ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=%dx%d:rate=30 -frames:v %u "
                 "-f rawvideo -pix_fmt nv12 %s",
                 WIDTH, HEIGHT, frames, path);
        if (system(cmd) != 0)
                return 2;
        raw = malloc(FRAME_BYTES * frames);
        f = fopen(path, "rb");
        if (!raw || !f || fread(raw, FRAME_BYTES, frames, f) != frames)
                return 2;
        fclose(f);
        av_log_set_level(AV_LOG_FATAL);

        for (unsigned r = 0; r < ROUNDS; r++) {
                uint64_t d = device_round(raw, frames, threads), c = ffmpeg_round(path, threads);

                if (d == 0 || c == 0) {
                        printf("video-encode: FAIL: a round failed (device %llu ns, ffmpeg %llu ns)\n",
                               (unsigned long long) d, (unsigned long long) c);
                        return 1;
                }
                best_dev = d < best_dev ? d : best_dev;
                best_ff = c < best_ff ? c : best_ff;
        }
        unlink(path);
        rmdir(dir);
        free(raw);
        dev_fps = frames * 1e9 / (double) best_dev;
        ff_fps = frames * 1e9 / (double) best_ff;
        ratio = dev_fps / ff_fps;
        printf("720p H.264 encode, %u thread(s) %7s\n", threads, "frames/s");
        printf("%-28s %10.1f\n", "device core (guest pages)", dev_fps);
        printf("%-28s %10.1f\n", "ffmpeg CLI, same settings", ff_fps);
        printf("video-encode: %.2fx ffmpeg (goal >= %.1fx): %s\n", ratio, GOAL, ratio >= GOAL ? "PASS" : "FAIL");
        return ratio >= GOAL ? 0 : 1;
}
