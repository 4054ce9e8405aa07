/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for the virtio-video core's command parser
 * (video/virtio-video.c), decoder or encoder: the input's first byte
 * chooses (odd: the encoder); then a sequence of records, each
 *
 *     u8 op, u16 len, u16 resp_cap, then len bytes
 *
 * op 0: a command from the command queue, answered into resp_cap bytes;
 * op 1: the bytes written into guest RAM at the offset their first 4 bytes
 * give (bitstreams and scatter lists for later commands); op 2: every
 * waiting event taken. One device per input, so streams, resources and
 * queued buffers made by one command meet the next (state persists along
 * the input). Guest RAM is 2 MiB. It must never crash, read or write
 * outside guest RAM, answer a command twice or more than its resp_cap
 * bytes, or leave a command unanswered once the device is freed.
 *
 * Build and run: see tests/fuzz/README.md. */
#include <libavutil/log.h>
#include <stdlib.h>
#include <string.h>

#include "common/unaligned.h"
#include "video/virtio-video.h"

#define MEM_SIZE (2 * MiB)
#define MAX_TAGS 4096

static GuestMemory *mem;
static size_t caps[MAX_TAGS];
static unsigned char answered[MAX_TAGS];

static void respond(void *ctx, uint64_t tag, const void *resp, size_t len) {
        (void) ctx;
        (void) resp;
        if (tag >= MAX_TAGS || answered[tag] || len > caps[tag] || len > VIRTIO_VIDEO_MAX_RESPONSE)
                abort();
        answered[tag] = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        VirtioVideoOptions o = { .encoder = size > 0 && (data[0] & 1), .max_memory = 64 * MiB };
        uint8_t ev[VIRTIO_VIDEO_EVENT_SIZE];
        uint64_t tag = 0;
        VirtioVideo *v;

        if (!mem) {
                if (guest_memory_new(MEM_SIZE, &mem) < 0)
                        abort();
                av_log_set_level(AV_LOG_QUIET);
        }
        memset(mem->base, 0, MEM_SIZE);
        memset(answered, 0, sizeof(answered));
        if (virtio_video_new(&o, respond, NULL, &v) < 0)
                abort();
        if (size > 0) {
                data++;
                size--;
        }
        while (size >= 5 && tag < MAX_TAGS) {
                uint8_t op = data[0];
                size_t len = get_le16(data + 1), cap = get_le16(data + 3) % (VIRTIO_VIDEO_MAX_RESPONSE + 1);

                data += 5;
                size -= 5;
                if (len > size)
                        len = size;
                switch (op % 3) {
                case 0:
                        caps[tag] = cap;
                        virtio_video_command(v, mem, tag, data, len, cap);
                        tag++;
                        break;
                case 1:
                        if (len >= 4) {
                                uint64_t off = get_le32(data) % MEM_SIZE;
                                size_t k = len - 4 < MEM_SIZE - off ? len - 4 : MEM_SIZE - off;

                                if (guest_write(mem, off, data + 4, k) < 0)
                                        abort();
                        }
                        break;
                case 2:
                        while (virtio_video_next_event(v, ev))
                                ;
                        break;
                }
                data += len;
                size -= len;
        }
        virtio_video_free(v);
        /* Every command got its one answer. */
        for (uint64_t t = 0; t < tag; t++)
                if (!answered[t])
                        abort();
        return 0;
}
