/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-video decode throughput (issue #15's goal: >= 0.9x the ffmpeg
 * CLI): a 1080p H.264 or VP9 stream made now by the ffmpeg CLI (libx264 or
 * libvpx-vp9, lavfi testsrc2) goes through the decoder core
 * (video/virtio-video.c) as a guest would feed it: H.264 in 64 KiB input
 * chunks, VP9 one frame per input buffer (its IVF frames), from guest pages, NV12 frames
 * written into output resources on scattered 64 KiB guest pages; against
 * `ffmpeg -threads 1 -i STREAM -f rawvideo -pix_fmt nv12 -y /dev/null` (the
 * same decoder, one thread each, the same conversion to NV12), timed
 * around the whole process. Rounds interleaved, the best of each kept.
 * Prints frames/s of both and the ratio; exits 1 below the goal, 77
 * without the ffmpeg CLI or libx264.
 *
 *     video-decode-bench [FRAMES [THREADS [h264|vp9]]]   (120 frames, 1 thread, h264) */
#include <libavutil/log.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/memory.h"
#include "common/unaligned.h"
#include "video/virtio-video.h"

#define WIDTH 1920
#define HEIGHT 1080
#define FRAME_BYTES ((size_t) WIDTH * HEIGHT * 3 / 2)
#define IN_GPA 0x100000
#define IN_SIZE (1024 * 1024)          /* the input resource; H.264 uses 64 KiB of it at a time */
#define H264_CHUNK (64 * 1024)
#define OUT_GPA 0x1000000
#define OUT_PIECE (64 * 1024)
#define OUT_PIECES ((FRAME_BYTES + OUT_PIECE - 1) / OUT_PIECE)
#define N_OUT 4
#define GOAL 0.9
#define ROUNDS 3

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

typedef struct Bench {
        GuestMemory *mem;
        VirtioVideo *v;
        uint64_t next_tag;
        uint64_t out_tag[N_OUT];
        bool in_done, drained, eos;
        unsigned frames;
} Bench;

static uint8_t req[VIRTIO_VIDEO_MAX_REQUEST];

static void respond(void *ctx, uint64_t tag, const void *resp, size_t len) {
        Bench *b = ctx;
        const uint8_t *r = resp;

        if (tag == 0) { /* the input buffer */
                b->in_done = true;
                return;
        }
        if (tag == 1) { /* the drain */
                b->drained = true;
                return;
        }
        for (unsigned i = 0; i < N_OUT; i++)
                if (b->out_tag[i] == tag) {
                        b->out_tag[i] = 0;
                        if (len == 24 && (get_le32(r + 16) & VIRTIO_VIDEO_BUFFER_FLAG_EOS))
                                b->eos = true;
                        else if (len == 24 && get_le32(r + 20) == FRAME_BYTES)
                                b->frames++;
                }
}

static size_t hdr(uint32_t type) {
        memset(req, 0, 256);
        put_le32(req, type);
        put_le32(req + 4, 1);
        return 8;
}

static void command(Bench *b, uint64_t tag, size_t len) {
        virtio_video_command(b->v, b->mem, tag, req, len, VIRTIO_VIDEO_MAX_RESPONSE);
}

static size_t queue_req(uint32_t queue, uint32_t size) {
        hdr(VIRTIO_VIDEO_CMD_RESOURCE_QUEUE);
        put_le32(req + 8, queue);
        put_le32(req + 12, 1);
        put_le32(req + 24, 1);
        put_le32(req + 28, size);
        return 8 + 56;
}

static void queue_outputs(Bench *b) {
        for (unsigned i = 0; i < N_OUT; i++)
                if (b->out_tag[i] == 0) {
                        size_t len = queue_req(VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT, 0);

                        put_le32(req + 12, 10 + i);
                        b->out_tag[i] = b->next_tag++;
                        command(b, b->out_tag[i], len);
                }
}

static size_t resource_req(uint32_t queue, uint32_t id, uint64_t gpa, uint32_t n, uint32_t piece, uint64_t stride) {
        hdr(VIRTIO_VIDEO_CMD_RESOURCE_CREATE);
        put_le32(req + 8, queue);
        put_le32(req + 12, id);
        put_le32(req + 16, VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER);
        put_le32(req + 20, 1);
        put_le32(req + 56, n);
        for (uint32_t k = 0; k < n; k++) {
                put_le64(req + 88 + 16 * k, gpa + k * stride);
                put_le32(req + 96 + 16 * k, piece);
        }
        return 88 + 16 * (size_t) n;
}

/* What the guest puts in each input buffer, in order. */
typedef struct Piece {
        const uint8_t *data;
        uint32_t size;
} Piece;

/* The device's decode of the whole stream; ns, 0 on failure. */
static uint64_t device_round(const Piece *pieces, size_t n_pieces, uint32_t format, unsigned want, unsigned threads) {
        Bench b = { .next_tag = 100 };
        VirtioVideoOptions o = { .threads = threads };
        uint64_t t0;
        size_t len;

        if (guest_memory_new(64 << 20, &b.mem) < 0 || virtio_video_new(&o, respond, &b, &b.v) < 0)
                return 0;
        t0 = now_ns();
        len = hdr(VIRTIO_VIDEO_CMD_STREAM_CREATE);
        put_le32(req + 16, format);
        command(&b, 2, 8 + 80);
        command(&b, 3, resource_req(VIRTIO_VIDEO_QUEUE_TYPE_INPUT, 1, IN_GPA, 1, IN_SIZE, 0));
        /* Output pages every other 64 KiB: scattered, as a guest's are. */
        for (unsigned i = 0; i < N_OUT; i++)
                command(&b, 4, resource_req(VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT, 10 + i,
                                            OUT_GPA + (uint64_t) i * 2 * OUT_PIECES * OUT_PIECE, OUT_PIECES, OUT_PIECE,
                                            2 * OUT_PIECE));
        queue_outputs(&b);
        for (size_t k = 0; k < n_pieces; k++) {
                uint32_t n = pieces[k].size;

                guest_write(b.mem, IN_GPA, pieces[k].data, n);
                b.in_done = false;
                len = queue_req(VIRTIO_VIDEO_QUEUE_TYPE_INPUT, n);
                command(&b, 0, len);
                /* The guest reads its frames and gives the buffers back. */
                queue_outputs(&b);
                if (!b.in_done)
                        return 0;
        }
        command(&b, 1, hdr(VIRTIO_VIDEO_CMD_STREAM_DRAIN));
        while (!b.drained) {
                unsigned before = b.frames;

                queue_outputs(&b);
                if (b.frames == before && !b.drained && !b.eos)
                        break;
        }
        t0 = now_ns() - t0;
        virtio_video_free(b.v);
        guest_memory_free(b.mem);
        if (b.frames != want || !b.drained) {
                fprintf(stderr, "device: %u frames of %u, drained %d\n", b.frames, want, b.drained);
                return 0;
        }
        return t0;
}

static uint64_t ffmpeg_round(const char *path, unsigned threads) {
        char cmd[512];
        uint64_t t0 = now_ns();

        snprintf(cmd, sizeof(cmd),
                 "ffmpeg -hide_banner -loglevel error -threads %u -i %s -f rawvideo -pix_fmt nv12 -y /dev/null", threads,
                 path);
        if (system(cmd) != 0)
                return 0;
        return now_ns() - t0;
}

/* IVF (32-byte header, then per frame a u32 size, a u64 pts and the
 * frame): one piece per frame. */
static size_t ivf_pieces(const uint8_t *f, size_t size, Piece *out, size_t max) {
        size_t n = 0, off = 32;

        while (off + 12 <= size && n < max) {
                uint32_t len = get_le32(f + off);

                if (len > size - off - 12 || len > IN_SIZE)
                        break;
                out[n++] = (Piece) { f + off + 12, len };
                off += 12 + len;
        }
        return n;
}

int main(int argc, char **argv) {
        unsigned frames = argc > 1 ? (unsigned) atoi(argv[1]) : 120;
        unsigned threads = argc > 2 ? (unsigned) atoi(argv[2]) : 1;
        bool vp9 = argc > 3 && strcmp(argv[3], "vp9") == 0;
        Piece *pieces;
        size_t n_pieces = 0;
        char dir[] = "/tmp/video-bench-XXXXXX", path[64], cmd[512];
        uint64_t best_dev = UINT64_MAX, best_ff = UINT64_MAX;
        uint8_t *stream;
        size_t size;
        FILE *f;
        double dev_fps, ff_fps, ratio;

        if (frames == 0 || threads == 0 || threads > 16 || !mkdtemp(dir))
                return 2;
        if (system(vp9 ? "ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw libvpx-vp9"
                       : "ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw libx264") != 0) {
                printf("video-decode: SKIP: no ffmpeg CLI with %s\n", vp9 ? "libvpx-vp9" : "libx264");
                return 77;
        }
        snprintf(path, sizeof(path), "%s/a.%s", dir, vp9 ? "ivf" : "h264");
        snprintf(cmd, sizeof(cmd),
                 "ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=%dx%d:rate=30 -frames:v %u %s "
                 "-pix_fmt yuv420p %s",
                 WIDTH, HEIGHT, frames,
                 vp9 ? "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 4M" : "-c:v libx264 -preset veryfast", path);
        if (system(cmd) != 0)
                return 2;
        f = fopen(path, "rb");
        if (!f)
                return 2;
        fseek(f, 0, SEEK_END);
        size = (size_t) ftell(f);
        rewind(f);
        stream = malloc(size);
        if (!stream || fread(stream, 1, size, f) != size)
                return 2;
        fclose(f);
        av_log_set_level(AV_LOG_FATAL);
        pieces = calloc(size / 12 + 2, sizeof(*pieces));
        if (!pieces)
                return 2;
        if (vp9) {
                n_pieces = ivf_pieces(stream, size, pieces, size / 12 + 2);
        } else {
                for (size_t off = 0; off < size; off += H264_CHUNK)
                        pieces[n_pieces++] = (Piece) { stream + off,
                                                       (uint32_t) (size - off < H264_CHUNK ? size - off : H264_CHUNK) };
        }

        for (unsigned r = 0; r < ROUNDS; r++) {
                uint64_t d = device_round(pieces, n_pieces, vp9 ? VIRTIO_VIDEO_FORMAT_VP9 : VIRTIO_VIDEO_FORMAT_H264,
                                          frames, threads),
                         c = ffmpeg_round(path, threads);

                if (d == 0 || c == 0) {
                        printf("video-decode: FAIL: a round failed (device %llu ns, ffmpeg %llu ns)\n",
                               (unsigned long long) d, (unsigned long long) c);
                        return 1;
                }
                best_dev = d < best_dev ? d : best_dev;
                best_ff = c < best_ff ? c : best_ff;
        }
        unlink(path);
        rmdir(dir);
        free(pieces);
        free(stream);
        dev_fps = frames * 1e9 / (double) best_dev;
        ff_fps = frames * 1e9 / (double) best_ff;
        ratio = dev_fps / ff_fps;
        printf("1080p %s, %u thread(s)    %10s\n", vp9 ? "VP9" : "H.264", threads, "frames/s");
        printf("%-28s %10.1f\n", "device core (guest pages)", dev_fps);
        printf("%-28s %10.1f\n", "ffmpeg CLI to NV12", ff_fps);
        printf("video-decode %s: %.2fx ffmpeg (goal >= %.1fx): %s\n", vp9 ? "vp9" : "h264", ratio, GOAL,
               ratio >= GOAL ? "PASS" : "FAIL");
        return ratio >= GOAL ? 0 : 1;
}
