/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The 2D virtio-gpu device (virtio 1.2 §5.7), apart from any transport:
 * majordome-gpu runs it behind vhost-user (gpu/main.c), tests and fuzzers
 * call it directly.
 *
 * Resources live in host memory (width * height * 4 bytes each); the
 * guest's backing pages are read only by TRANSFER_TO_HOST_2D, through the
 * GuestMemory handed to that call, every range checked. What the guest
 * shows goes to a GpuDisplay (gpu/display.h). Every byte the guest sends is
 * checked; docs/gpu.md lists each refusal and its answer.
 *
 * Single-threaded: everything runs on the back-end's loop. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/display.h"
#include "vmm/memory.h"
#include "vmm/virtio/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIRTIO_GPU_QUEUE_CONTROL 0
#define VIRTIO_GPU_QUEUE_CURSOR 1
#define VIRTIO_GPU_N_QUEUES 2

/* The device's own feature bits (virtio 1.2 §5.7.3): EDID; the virgl
 * back-end adds VIRGL and CONTEXT_INIT (virtio_gpu_features()). */
#define VIRTIO_GPU_DEVICE_FEATURES (UINT64_C(1) << 1)

#define VIRTIO_GPU_DEFAULT_MAX_MEMORY (256 * UINT64_C(1024) * 1024)
#define VIRTIO_GPU_MAX_DIMENSION 16384          /* a resource's width or height */
#define VIRTIO_GPU_MAX_RESOURCES 16384
#define VIRTIO_GPU_MAX_BACKING_ENTRIES 16384
#define VIRTIO_GPU_CURSOR_SIZE GPU_DISPLAY_CURSOR_SIZE /* 64: what the display takes */
/* The largest SUBMIT_3D command buffer: Mesa's virgl driver flushes at
 * 64Ki dwords (VIRGL_MAX_CMDBUF_DWORDS); four times that is room. */
#define VIRTIO_GPU_MAX_SUBMIT (1024 * 1024)
/* The largest request read from a chain: SUBMIT_3D with the largest
 * command buffer (ATTACH_BACKING with all its entries, 256 KiB, is
 * smaller); anything longer is cut there (and then too long for its type,
 * which is fine: only its own struct is read). */
#define VIRTIO_GPU_MAX_REQUEST (32 + VIRTIO_GPU_MAX_SUBMIT)
/* The largest capset offered (a larger one is not offered), and the
 * largest response: OK_CAPSET with it. */
#define VIRTIO_GPU_MAX_CAPSET_SIZE 4096
#define VIRTIO_GPU_MAX_RESPONSE (24 + VIRTIO_GPU_MAX_CAPSET_SIZE)
/* Rings a context may fence on (CONTEXT_INIT; the Linux driver's limit). */
#define VIRTIO_GPU_MAX_RINGS 64
/* Contexts (virgl) alive at once. */
#define VIRTIO_GPU_MAX_CONTEXTS 1024
/* Fenced responses held at once (at most the control queue's size, 256,
 * can be in flight anyway). */
#define VIRTIO_GPU_MAX_PENDING 1024
#define VIRTIO_GPU_CONFIG_SIZE 16

typedef struct VirtioGpu VirtioGpu;

/* What renders: host-memory 2D only, or virglrenderer (3D, capsets
 * VIRGL and VIRGL2, on whatever GL Mesa finds: llvmpipe here). */
typedef enum VirtioGpuBackend {
        VIRTIO_GPU_BACKEND_2D,
        VIRTIO_GPU_BACKEND_VIRGL,
        _VIRTIO_GPU_BACKEND_MAX,
        _VIRTIO_GPU_BACKEND_INVALID = -22, /* -EINVAL */
} VirtioGpuBackend;

const char *virtio_gpu_backend_to_string(VirtioGpuBackend b);
VirtioGpuBackend virtio_gpu_backend_from_string(const char *s);

/* A held response is complete (see virtio_gpu_handle_token()). */
typedef void (*VirtioGpuResponseDone)(void *ctx, uint64_t token);

/* The host-visible shared memory region (virtio 1.2 §5.7.2: shmid 1, the
 * host-visible memory, the front-end's): map len bytes of fd at offset, or unmap them. 0 or a
 * negative errno (the front-end refused, or the channel failed). */
typedef struct VirtioGpuShm {
        int (*map)(void *ctx, int fd, uint64_t offset, uint64_t len);
        int (*unmap)(void *ctx, uint64_t offset, uint64_t len);
        void *ctx;
} VirtioGpuShm;

/* Context types (CONTEXT_INIT's capset ids) as a mask of 1 << capset
 * id, the bits of the VMM's gpu record (common/vmm-config.h, whose
 * vmm_gpu_context_types_from_string() reads crosvm's names for them). */
#define VIRTIO_GPU_CONTEXT_VIRGL (UINT32_C(1) << 1)
#define VIRTIO_GPU_CONTEXT_VIRGL2 (UINT32_C(1) << 2)
#define VIRTIO_GPU_CONTEXT_CROSS_DOMAIN (UINT32_C(1) << 5)
#define VIRTIO_GPU_CONTEXT_ALL (VIRTIO_GPU_CONTEXT_VIRGL | VIRTIO_GPU_CONTEXT_VIRGL2 | VIRTIO_GPU_CONTEXT_CROSS_DOMAIN)

/* A new connection to the host compositor for a cross-domain context: a
 * connected socket, or a negative errno. */
typedef int (*VirtioGpuConnect)(void *ctx);

#define VIRTIO_GPU_DEFAULT_HOST_VISIBLE_SIZE (256 * UINT64_C(1024) * 1024) /* the VMM's region 1 */
#define VIRTIO_GPU_BLOB_PAGE 4096

typedef struct VirtioGpuOptions {
        unsigned n_scanouts;    /* 1..GPU_DISPLAY_MAX_SCANOUTS */
        uint32_t width, height; /* each scanout's mode: 1..VIRTIO_GPU_MAX_DIMENSION */
        uint64_t max_memory;    /* bytes of all the guest's resources together; 0: the default */
        VirtioGpuBackend backend;
        /* Called (from virtio_gpu_poll()) for each held response whose
         * fence completed, in order, with the token given when it was
         * handled. Optional; virtio_gpu_process() pushes its own. */
        VirtioGpuResponseDone response_done;
        void *response_done_ctx;
        /* VIRTIO_GPU_F_RESOURCE_BLOB: blobs offered, MAP_BLOB placing them
         * in [0, host_visible_size) of the region through shm (no map
         * callback: MAP_BLOB answers ERR_UNSPEC). */
        bool blob;
        uint64_t host_visible_size; /* 0: the default */
        VirtioGpuShm shm;
        /* The context types offered (VIRTIO_GPU_CONTEXT_*); 0: the
         * back-end's own (virgl's two on virgl, none on 2D). virgl and
         * virgl2 need the virgl back-end; cross-domain needs blob and
         * offers VIRGL and CONTEXT_INIT on either back-end (the Linux
         * driver takes context init only with VIRGL). */
        uint32_t context_types;
        /* cross-domain: how each context reaches the compositor (none: its
         * INIT with the Wayland channel fails). */
        VirtioGpuConnect connect;
        void *connect_ctx;
} VirtioGpuOptions;

/* The cursor the guest last set on one scanout (UPDATE_CURSOR /
 * MOVE_CURSOR). Each scanout has its own, as QEMU keeps them: the Linux
 * driver sends each CRTC's cursor plane with that CRTC's scanout id. It
 * is shown by the display (gpu_display_set_cursor), its image read from
 * the resource at each UPDATE_CURSOR: the Linux driver sends one again,
 * same resource, after writing a new image into it. */
typedef struct VirtioGpuCursor {
        uint32_t resource_id;   /* 0: hidden */
        uint32_t x, y;          /* the image's top-left in the scanout, an int32 (Linux's crtc_x, crtc_y) */
        uint32_t hot_x, hot_y;
} VirtioGpuCursor;

/* display stays the caller's and outlives the device. -EINVAL, -ENOMEM.
 * The virgl back-end initialises virglrenderer here (Mesa opens and loads
 * its files: do it before any sandbox); virglrenderer is one per process,
 * so a second virgl device at once is -EBUSY, and -EIO when virglrenderer
 * cannot start. */
int virtio_gpu_new(const VirtioGpuOptions *options, GpuDisplay *display, VirtioGpu **ret);
VirtioGpu *virtio_gpu_free(VirtioGpu *g);

/* One request from queue (VIRTIO_GPU_QUEUE_*) of req_len bytes: executes
 * it and writes the response into resp (resp_cap bytes). Returns the bytes
 * written: 0 when resp cannot hold the command's response (the command is
 * then not executed) and for cursor commands, which have none. mem is the
 * guest's RAM for this call only (backing pages). */
size_t virtio_gpu_handle(VirtioGpu *g, const GuestMemory *mem, unsigned queue, const void *req, size_t req_len,
                         void *resp, size_t resp_cap);

/* As virtio_gpu_handle(), with the response written into resp at once
 * but, for a fenced request on the virgl back-end, held: *ret_held is then
 * true and the response counts as done only when its fence has completed
 * (options' response_done(token), from virtio_gpu_poll()); fences complete
 * in the order they were given within a timeline: the global one (no
 * INFO_RING_IDX), or each (context, ring); between timelines, in any order.
 * Otherwise *ret_held is false. */
size_t virtio_gpu_handle_token(VirtioGpu *g, const GuestMemory *mem, unsigned queue, const void *req, size_t req_len,
                               void *resp, size_t resp_cap, uint64_t token, bool *ret_held);

/* Asks virglrenderer which fences completed and completes the responses
 * they held (chains from virtio_gpu_process() are pushed back to their
 * queue, which is then interrupted if the driver wants it). Returns how
 * many responses are still held: call again later (a timer) while it is
 * not 0. The 2D back-end holds nothing. */
unsigned virtio_gpu_poll(VirtioGpu *g);

/* The control queue was stopped (device reset; vhost-user's
 * GET_VRING_BASE): every held response is dropped, neither pushed nor
 * reported; their fences never complete for the guest that reset. */
void virtio_gpu_drop_held(VirtioGpu *g);

/* A device reset (virtio 1.2 §2.4; vhost-user's RESET_DEVICE): held
 * responses are dropped and every context, resource and scanout goes, so
 * the guest's driver starts again on a device like a new one, with none of
 * the old driver's memory counted against max_memory and its ids free.
 * Scanout windows close until the next mode is set; the fence numbers
 * given to virglrenderer go on rising, so a stale fence can never
 * complete a new one. */
void virtio_gpu_reset(VirtioGpu *g);

/* Cross-domain contexts wait on their compositor connections and pipes:
 * this descriptor (an epoll set, -1 when cross-domain is not offered) is
 * readable when one is ready; then virtio_gpu_dispatch() handles them,
 * writes the events into the guest's rings and completes the fences they
 * held (interrupting the control queue as virtio_gpu_poll() does). */
int virtio_gpu_fd(const VirtioGpu *g);
void virtio_gpu_dispatch(VirtioGpu *g);

/* The feature bits the device offers (VIRTIO_GPU_DEVICE_FEATURES, plus
 * VIRTIO_GPU_F_VIRGL and VIRTIO_GPU_F_CONTEXT_INIT on the virgl back-end,
 * VIRTIO_GPU_F_RESOURCE_BLOB with options' blob). */
uint64_t virtio_gpu_features(const VirtioGpu *g);

/* Pops every chain of q (queue index q->index), handles each, pushes it
 * back with the bytes written. c is scratch (large: not on a small stack). */
void virtio_gpu_process(VirtioGpu *g, VirtQueue *q, VirtioChain *c);

/* The device configuration (struct virtio_gpu_config, §5.7.4); the caller
 * checked offset + size <= VIRTIO_GPU_CONFIG_SIZE. Writing events_clear
 * clears those bits of events_read; other fields are read-only. */
void virtio_gpu_config_read(const VirtioGpu *g, uint32_t offset, void *data, uint32_t size);
void virtio_gpu_config_write(VirtioGpu *g, uint32_t offset, const void *data, uint32_t size);
/* Sets VIRTIO_GPU_EVENT_DISPLAY in events_read (the host's display
 * configuration changed); the transport then tells the driver. */
void virtio_gpu_raise_display_event(VirtioGpu *g);

/* The host's window for scanout now has width x height (the user
 * resized it): GET_DISPLAY_INFO's pmode and GET_EDID's preferred timing
 * for that scanout say so from now on (the options' size until then),
 * and VIRTIO_GPU_EVENT_DISPLAY is raised in events_read (§5.7.4); the
 * caller then tells the transport the configuration changed. Kept
 * across virtio_gpu_reset(). 1 when the size changed, 0 when it was
 * that already (nothing raised), -EINVAL for a scanout out of range or
 * a side 0 or past VIRTIO_GPU_MAX_DIMENSION (nothing changed). */
int virtio_gpu_set_preferred_size(VirtioGpu *g, unsigned scanout, uint32_t width, uint32_t height);
/* scanout's preferred size; the caller checked scanout < n_scanouts. */
void virtio_gpu_get_preferred_size(const VirtioGpu *g, unsigned scanout, uint32_t *ret_width,
                                   uint32_t *ret_height);

/* scanout's cursor; the caller checked scanout < n_scanouts. */
void virtio_gpu_get_cursor(const VirtioGpu *g, unsigned scanout, VirtioGpuCursor *ret);
/* Bytes the guest's resources take now. */
uint64_t virtio_gpu_memory_used(const VirtioGpu *g);

/* The 128-byte EDID 1.4 base block describing a width x height display
 * (preferred detailed timing at 60 Hz; sizes past 4095, the block's
 * limit, are given as 4095). */
void virtio_gpu_make_edid(uint32_t width, uint32_t height, uint8_t ret[128]);

#ifdef __cplusplus
}
#endif
