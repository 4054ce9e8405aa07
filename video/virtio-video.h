/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The virtio-video decoder (device id 31) and encoder (device id 30) as
 * crosvm implements them (devices/src/virtio/video/, the draft's protocol
 * version 3), apart from any transport: majordome-video runs one behind
 * vhost-user (video/main.c), tests and fuzzers call it directly. Decoding
 * and encoding are libavcodec's (FFmpeg: its decoders; libx264, libx265,
 * libvpx), NV12 through libswscale where a codec wants another layout.
 *
 * Two queues: commands (0) and events (1). A command's response may come
 * later than the command (RESOURCE_QUEUE when its buffer is done,
 * STREAM_DRAIN when the stream is drained), so every response goes out
 * through the respond callback, with the tag the transport gave the
 * command; each command gets exactly one response (0 bytes when its
 * buffer could not hold one). Events wait in the device until the
 * transport has an event buffer for them (virtio_video_next_event).
 *
 * Resources are guest pages (VIRTIO_VIDEO_F_RESOURCE_GUEST_PAGES): scatter
 * lists checked against guest RAM when created, each access checked again
 * through the GuestMemory handed to the call. docs/video.md lists every
 * refusal and its answer.
 *
 * Single-threaded: everything runs on the caller's thread (libavcodec may
 * run its own frame threads inside a call when threads > 1). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/virtio/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIRTIO_VIDEO_DEVICE_ID_ENCODER 30
#define VIRTIO_VIDEO_DEVICE_ID_DECODER 31

#define VIRTIO_VIDEO_QUEUE_COMMAND 0
#define VIRTIO_VIDEO_QUEUE_EVENT 1
#define VIRTIO_VIDEO_N_QUEUES 2

/* Feature bits (crosvm device_constants.rs). Object resources (bit 2) are
 * not offered: there is no virtio-gpu to share them with. */
#define VIRTIO_VIDEO_F_RESOURCE_GUEST_PAGES 0
#define VIRTIO_VIDEO_F_RESOURCE_NON_CONTIG 1
#define VIRTIO_VIDEO_F_RESOURCE_VIRTIO_OBJECT 2
#define VIRTIO_VIDEO_DEVICE_FEATURES \
        ((UINT64_C(1) << VIRTIO_VIDEO_F_RESOURCE_GUEST_PAGES) | (UINT64_C(1) << VIRTIO_VIDEO_F_RESOURCE_NON_CONTIG))

/* struct virtio_video_config: version, max_caps_length, max_resp_length,
 * device_name[32]. */
#define VIRTIO_VIDEO_CONFIG_SIZE 44
#define VIRTIO_VIDEO_MAX_CAPS_LENGTH 1024
#define VIRTIO_VIDEO_MAX_RESP_LENGTH 1024

/* Commands (protocol.rs). */
#define VIRTIO_VIDEO_CMD_QUERY_CAPABILITY 0x100
#define VIRTIO_VIDEO_CMD_STREAM_CREATE 0x101
#define VIRTIO_VIDEO_CMD_STREAM_DESTROY 0x102
#define VIRTIO_VIDEO_CMD_STREAM_DRAIN 0x103
#define VIRTIO_VIDEO_CMD_RESOURCE_CREATE 0x104
#define VIRTIO_VIDEO_CMD_RESOURCE_QUEUE 0x105
#define VIRTIO_VIDEO_CMD_RESOURCE_DESTROY_ALL 0x106
#define VIRTIO_VIDEO_CMD_QUEUE_CLEAR 0x107
#define VIRTIO_VIDEO_CMD_GET_PARAMS 0x108
#define VIRTIO_VIDEO_CMD_SET_PARAMS 0x109
#define VIRTIO_VIDEO_CMD_QUERY_CONTROL 0x10a
#define VIRTIO_VIDEO_CMD_GET_CONTROL 0x10b
#define VIRTIO_VIDEO_CMD_SET_CONTROL 0x10c

#define VIRTIO_VIDEO_RESP_OK_NODATA 0x200
#define VIRTIO_VIDEO_RESP_OK_QUERY_CAPABILITY 0x201
#define VIRTIO_VIDEO_RESP_OK_RESOURCE_QUEUE 0x202
#define VIRTIO_VIDEO_RESP_OK_GET_PARAMS 0x203
#define VIRTIO_VIDEO_RESP_OK_QUERY_CONTROL 0x204
#define VIRTIO_VIDEO_RESP_OK_GET_CONTROL 0x205
#define VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION 0x300
#define VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY 0x301
#define VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID 0x302
#define VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID 0x303
#define VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER 0x304
#define VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL 0x305

#define VIRTIO_VIDEO_QUEUE_TYPE_INPUT 0x100
#define VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT 0x101

#define VIRTIO_VIDEO_FORMAT_NV12 3
#define VIRTIO_VIDEO_FORMAT_H264 0x1002
#define VIRTIO_VIDEO_FORMAT_HEVC 0x1003
#define VIRTIO_VIDEO_FORMAT_VP8 0x1004
#define VIRTIO_VIDEO_FORMAT_VP9 0x1005

#define VIRTIO_VIDEO_MEM_TYPE_GUEST_PAGES 0
#define VIRTIO_VIDEO_MEM_TYPE_VIRTIO_OBJECT 1
#define VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER 1

#define VIRTIO_VIDEO_BUFFER_FLAG_ERR 1
#define VIRTIO_VIDEO_BUFFER_FLAG_EOS 2
#define VIRTIO_VIDEO_BUFFER_FLAG_IFRAME 4
#define VIRTIO_VIDEO_BUFFER_FLAG_PFRAME 8

#define VIRTIO_VIDEO_CONTROL_BITRATE 1
#define VIRTIO_VIDEO_CONTROL_PROFILE 2
#define VIRTIO_VIDEO_CONTROL_LEVEL 3
#define VIRTIO_VIDEO_CONTROL_FORCE_KEYFRAME 4
#define VIRTIO_VIDEO_CONTROL_BITRATE_MODE 5
#define VIRTIO_VIDEO_CONTROL_BITRATE_PEAK 6
#define VIRTIO_VIDEO_CONTROL_PREPEND_SPSPPS_TO_IDR 7

#define VIRTIO_VIDEO_EVENT_ERROR 0x100
#define VIRTIO_VIDEO_EVENT_DECODER_RESOLUTION_CHANGED 0x200

/* Wire sizes (protocol.rs; every struct after the 8-byte header). */
#define VIRTIO_VIDEO_HDR_SIZE 8
#define VIRTIO_VIDEO_PARAMS_SIZE 112
#define VIRTIO_VIDEO_RESOURCE_QUEUE_RESP_SIZE 24
#define VIRTIO_VIDEO_EVENT_SIZE 8

/* Limits on what the guest controls. */
#define VIRTIO_VIDEO_MAX_STREAMS 32
#define VIRTIO_VIDEO_MAX_DIMENSION 4096       /* a frame's width or height */
#define VIRTIO_VIDEO_MAX_BUFFERS 32           /* resources per queue of a stream */
#define VIRTIO_VIDEO_MAX_ENTRIES 4096         /* scatter entries per resource */
#define VIRTIO_VIDEO_MAX_PENDING_FRAMES 16    /* decoded frames waiting for an output buffer */
#define VIRTIO_VIDEO_MAX_EVENTS 64            /* events waiting for an event buffer */
#define VIRTIO_VIDEO_DEFAULT_MAX_MEMORY (512 * UINT64_C(1024) * 1024) /* host bytes per stream */
/* The largest request: RESOURCE_CREATE with all its entries. */
#define VIRTIO_VIDEO_MAX_REQUEST (VIRTIO_VIDEO_HDR_SIZE + 80 + VIRTIO_VIDEO_MAX_ENTRIES * 16)
#define VIRTIO_VIDEO_MAX_RESPONSE VIRTIO_VIDEO_MAX_RESP_LENGTH

typedef struct VirtioVideo VirtioVideo;

/* A command's response: resp (len bytes, 0 when the command's buffer was
 * too small) for the command given `tag`. */
typedef void (*VirtioVideoRespond)(void *ctx, uint64_t tag, const void *resp, size_t len);

typedef struct VirtioVideoOptions {
        bool encoder;           /* the encoder (device id 30): NV12 in, bitstreams out; else the decoder */
        unsigned threads;       /* libavcodec threads per stream; 0: 1 */
        uint64_t max_memory;    /* host bytes per stream (input copy, pending frames); 0: the default */
} VirtioVideoOptions;

/* -ENOMEM, -EINVAL. */
int virtio_video_new(const VirtioVideoOptions *options, VirtioVideoRespond respond, void *ctx, VirtioVideo **ret);
/* Answers every command still waiting (RESOURCE_QUEUE with the ERR flag,
 * STREAM_DRAIN with ERR_INVALID_OPERATION), then frees. */
VirtioVideo *virtio_video_free(VirtioVideo *v);

/* One command of req_len bytes from the command queue; resp_cap is what
 * its buffer holds. Answers through respond, now or later. mem is the
 * guest's RAM for this call (resources' pages; frames decoded during it). */
void virtio_video_command(VirtioVideo *v, const GuestMemory *mem, uint64_t tag, const void *req, size_t req_len,
                          size_t resp_cap);

/* Whether an event waits for an event buffer. */
bool virtio_video_has_event(const VirtioVideo *v);
/* The oldest event waiting (struct virtio_video_event, 8 bytes): true and
 * removed, or false when none. */
bool virtio_video_next_event(VirtioVideo *v, uint8_t ret[VIRTIO_VIDEO_EVENT_SIZE]);

/* The device configuration (virtio_video_config); the caller checked
 * offset + size <= VIRTIO_VIDEO_CONFIG_SIZE. Read-only. */
void virtio_video_config_read(const VirtioVideo *v, uint32_t offset, void *data, uint32_t size);

/* Whether this libavcodec decodes a virtio-video coded format. */
bool virtio_video_format_supported(uint32_t format);
/* Whether it encodes one (libx264, libx265, libvpx, libvpx-vp9). */
bool virtio_video_encoder_format_supported(uint32_t format);

/* Streams open now. */
unsigned virtio_video_n_streams(const VirtioVideo *v);

#ifdef __cplusplus
}
#endif
