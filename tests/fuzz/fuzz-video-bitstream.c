/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target feeding bitstreams to the virtio-video decoder
 * (video/virtio-video.c) the way a guest does: the input's first byte
 * picks the coded format (H.264, HEVC, VP8, VP9), the second how the rest
 * is cut into input buffers (1 to 4096 bytes each); every piece goes
 * through RESOURCE_QUEUE on one input resource in guest RAM, four output
 * resources take the frames and are queued again once answered, and a
 * drain ends the stream. fuzz-video covers the command parser; this one
 * the decoders behind it with the device's framing, limits and NV12
 * conversion. It must never crash, read or write outside guest RAM, or
 * answer a command twice.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <libavutil/log.h>
#include <stdlib.h>
#include <string.h>

#include "common/unaligned.h"
#include "video/virtio-video.h"

#define MEM_SIZE (8 * MiB)
#define INPUT_GPA (1 * MiB)
#define INPUT_SIZE (64 * KiB)
#define OUTPUT_GPA (2 * MiB)
#define OUTPUT_SIZE (1 * MiB)
#define N_OUTPUT 4
#define MAX_TAGS 8192
#define STREAM 1

static GuestMemory *mem;
static unsigned char answered[MAX_TAGS];
static uint64_t output_tag[N_OUTPUT];
static int output_answered[N_OUTPUT];
static uint64_t input_tag;
static int input_busy;

static void respond(void *ctx, uint64_t tag, const void *resp, size_t len) {
        (void) ctx;
        (void) resp;
        if (tag >= MAX_TAGS || answered[tag] || len > VIRTIO_VIDEO_MAX_RESPONSE)
                abort();
        answered[tag] = 1;
        if (input_busy && tag == input_tag)
                input_busy = 0;
        for (unsigned i = 0; i < N_OUTPUT; i++)
                if (output_tag[i] == tag)
                        output_answered[i] = 1;
}

static uint64_t next_tag;

static void command(VirtioVideo *v, const uint8_t *req, size_t len) {
        if (next_tag >= MAX_TAGS)
                return;
        virtio_video_command(v, mem, next_tag++, req, len, VIRTIO_VIDEO_MAX_RESPONSE);
}

static size_t header(uint8_t *p, uint32_t type) {
        memset(p, 0, 256);
        put_le32(p, type);
        put_le32(p + 4, STREAM);
        return 8;
}

/* RESOURCE_CREATE: one plane in one buffer, one scatter entry. */
static void resource_create(VirtioVideo *v, uint32_t queue, uint32_t id, uint64_t gpa, uint32_t size) {
        uint8_t p[256];
        size_t n = header(p, VIRTIO_VIDEO_CMD_RESOURCE_CREATE);

        put_le32(p + n, queue);
        put_le32(p + n + 4, id);
        put_le32(p + n + 8, VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER);
        put_le32(p + n + 12, 1);
        n += 16 + 32;                   /* plane offsets */
        put_le32(p + n, 1);             /* num_entries[0] */
        n += 4 + 28;
        put_le64(p + n, gpa);
        put_le32(p + n + 8, size);
        command(v, p, n + 16);
}

static void resource_queue(VirtioVideo *v, uint32_t queue, uint32_t id, uint64_t ts, uint32_t size) {
        uint8_t p[256];
        size_t n = header(p, VIRTIO_VIDEO_CMD_RESOURCE_QUEUE);

        put_le32(p + n, queue);
        put_le32(p + n + 4, id);
        put_le64(p + n + 8, ts);
        put_le32(p + n + 16, 1);
        put_le32(p + n + 20, size);
        command(v, p, n + 24 + 32);
}

static void queue_output(VirtioVideo *v, unsigned i) {
        output_tag[i] = next_tag;
        output_answered[i] = 0;
        resource_queue(v, VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT, 200 + i, 0, 0);
}

/* Output buffers answered go back to the device, a bounded number of times. */
static void requeue_outputs(VirtioVideo *v, unsigned *budget) {
        for (unsigned i = 0; i < N_OUTPUT && *budget > 0; i++)
                if (output_answered[i]) {
                        (*budget)--;
                        queue_output(v, i);
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint32_t formats[] = {
                VIRTIO_VIDEO_FORMAT_H264, VIRTIO_VIDEO_FORMAT_HEVC, VIRTIO_VIDEO_FORMAT_VP8, VIRTIO_VIDEO_FORMAT_VP9,
        };
        VirtioVideoOptions o = { .max_memory = 64 * MiB };
        uint8_t p[256], ev[VIRTIO_VIDEO_EVENT_SIZE];
        unsigned budget = 256, piece;
        uint64_t ts = 0;
        VirtioVideo *v;
        size_t n;

        if (size < 2)
                return 0;
        if (!mem) {
                if (guest_memory_new(MEM_SIZE, &mem) < 0)
                        abort();
                av_log_set_level(AV_LOG_QUIET);
        }
        memset(answered, 0, sizeof(answered));
        memset(output_answered, 0, sizeof(output_answered));
        for (unsigned i = 0; i < N_OUTPUT; i++)
                output_tag[i] = UINT64_MAX;
        input_busy = 0;
        next_tag = 0;
        if (virtio_video_new(&o, respond, NULL, &v) < 0)
                abort();

        /* STREAM_CREATE: guest pages both ways, the format, a tag. */
        n = header(p, VIRTIO_VIDEO_CMD_STREAM_CREATE);
        put_le32(p + n, VIRTIO_VIDEO_MEM_TYPE_GUEST_PAGES);
        put_le32(p + n + 4, VIRTIO_VIDEO_MEM_TYPE_GUEST_PAGES);
        put_le32(p + n + 8, formats[data[0] % 4]);
        command(v, p, n + 12 + 68);
        resource_create(v, VIRTIO_VIDEO_QUEUE_TYPE_INPUT, 100, INPUT_GPA, INPUT_SIZE);
        for (unsigned i = 0; i < N_OUTPUT; i++) {
                resource_create(v, VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT, 200 + i, OUTPUT_GPA + (uint64_t) i * OUTPUT_SIZE,
                                OUTPUT_SIZE);
                queue_output(v, i);
        }
        piece = 1 + (unsigned) data[1] * 16;
        data += 2;
        size -= 2;

        while (size > 0 && next_tag < MAX_TAGS - 16) {
                size_t k = size < piece ? size : piece;

                if (input_busy)
                        break;          /* the device holds it: nothing more to feed */
                if (guest_write(mem, INPUT_GPA, data, k) < 0)
                        abort();
                input_tag = next_tag;
                input_busy = 1;
                resource_queue(v, VIRTIO_VIDEO_QUEUE_TYPE_INPUT, 100, ts++, (uint32_t) k);
                requeue_outputs(v, &budget);
                while (virtio_video_next_event(v, ev))
                        ;
                data += k;
                size -= k;
        }
        header(p, VIRTIO_VIDEO_CMD_STREAM_DRAIN);
        command(v, p, 8);
        requeue_outputs(v, &budget);
        while (virtio_video_next_event(v, ev))
                ;
        virtio_video_free(v);
        /* Every command got its one answer. */
        for (uint64_t t = 0; t < next_tag; t++)
                if (!answered[t])
                        abort();
        return 0;
}
