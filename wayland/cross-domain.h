/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The cross-domain context type of virtio-gpu (capset 5): a guest Wayland
 * proxy (sommelier --virtgpu-channel) speaks to the host's compositor
 * through it. One CrossDomain per guest context: its own compositor
 * connection, its items (image requirements, descriptors from the host,
 * pipes) and its two rings (guest blobs the host writes answers and
 * channel events into). The protocol is sommelier's
 * virtualization/virtgpu_cross_domain_protocol.h, in both of its layouts;
 * docs/wayland.md has the details, the limits and every refusal.
 *
 * It knows nothing of resources or guest memory: the GPU core
 * (gpu/virtio-gpu.c) lends those through CrossDomainOps. Single-threaded,
 * on the device's loop; every descriptor it watches is in the epoll set
 * it is given, with the data (ctx_id << 32 | item), passed back to
 * cross_domain_ready(). The process must ignore SIGPIPE: a pipe whose
 * reader went away answers EPIPE to write(), which a signal would end. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CROSS_DOMAIN_CAPSET 5
#define CROSS_DOMAIN_CAPS_SIZE 16
/* The fence ring channel events complete (sommelier's CROSS_DOMAIN_CHANNEL_RING). */
#define CROSS_DOMAIN_CHANNEL_RING 1

/* Limits per context (a guest past one gets an error on that context). */
#define CROSS_DOMAIN_MAX_ITEMS 1024         /* requirements, host descriptors, pipes */
#define CROSS_DOMAIN_MAX_PIPES 32           /* open read and write pipes */
#define CROSS_DOMAIN_MAX_QUEUED (4 * 1024 * 1024) /* bytes waiting for the compositor or a pipe */
#define CROSS_DOMAIN_MAX_BLOB (256 * 1024 * 1024) /* one image's bytes */
#define CROSS_DOMAIN_MAX_HOST_FILE (16 * 1024 * 1024) /* a file the compositor sends (a keymap) */

typedef struct CrossDomain CrossDomain;

typedef struct CrossDomainOps {
        /* A new connection to the host compositor: a connected stream
         * socket (any flags), or a negative errno. */
        int (*connect)(void *ctx);
        /* Writes the iovecs at offset 0 of a guest-memory blob resource
         * (a ring); -EINVAL when it is none or smaller than their total. */
        int (*ring_write)(void *ctx, uint32_t resource_id, const struct iovec *iov, unsigned n_iov);
        /* A guest-memory blob resource's size (-EINVAL: none). */
        int (*ring_size)(void *ctx, uint32_t resource_id, uint64_t *ret_size);
        /* The descriptor of a host blob resource this module made
         * (borrowed), for SEND; -EINVAL for any other resource. */
        int (*resource_fd)(void *ctx, uint32_t resource_id, int *ret_fd);
        /* One event went into context ctx_id's channel ring: the oldest
         * fence held on its channel ring completes. */
        void (*event_written)(void *ctx, uint32_t ctx_id);
        void *ctx;
} CrossDomainOps;

/* The capset (struct CrossDomainCapabilities): version 1, the Wayland
 * channel, dma-bufs as given (0 without a GBM device), no external GPU
 * memory. */
void cross_domain_capabilities(bool dmabuf, uint8_t ret[CROSS_DOMAIN_CAPS_SIZE]);

/* epoll_fd stays the caller's. -ENOMEM. */
int cross_domain_new(uint32_t ctx_id, int epoll_fd, const CrossDomainOps *ops, CrossDomain **ret);
CrossDomain *cross_domain_free(CrossDomain *cd);

/* The command buffer of a SUBMIT_3D on this context (len bytes, one or
 * more commands each cmd_size long). 0, or -EINVAL (a malformed command:
 * commands before it ran), -ENOSPC (a limit), -EPIPE (the compositor is
 * gone), -ENOMEM, -EIO. */
int cross_domain_submit(CrossDomain *cd, const void *cmds, size_t len);

/* A fence on the channel ring is held: one channel event may be written,
 * after which event_written() completes it. */
void cross_domain_fence(CrossDomain *cd);
/* The device was reset: the held fences are gone, so no event may be
 * written into the channel ring for them. */
void cross_domain_drop_fences(CrossDomain *cd);

/* RESOURCE_CREATE_BLOB (host3d) on this context with blob_id: a new
 * sealed memfd of size bytes for an image requirement (size at most its
 * size, rounded to pages), or the copy of a descriptor the host sent
 * (taken once). *ret_fd is the caller's. -EINVAL (no such id, too
 * large), -ENOMEM. */
int cross_domain_create_blob(CrossDomain *cd, uint64_t blob_id, uint64_t size, int *ret_fd);

/* epoll said item (the data's low 32 bits) is ready with events. */
void cross_domain_ready(CrossDomain *cd, uint32_t item, uint32_t events);

/* Image requirements of a linear width x height image of a DRM format
 * (drm_fourcc.h): the 64-byte struct CrossDomainImageRequirements less
 * the blob id. -EINVAL for a format not known or a size past
 * CROSS_DOMAIN_MAX_BLOB. Exposed for tests. */
typedef struct CrossDomainImage {
        uint32_t strides[4], offsets[4];
        uint64_t size;          /* whole pages */
        unsigned planes;
} CrossDomainImage;
int cross_domain_image_requirements(uint32_t drm_format, uint32_t width, uint32_t height, CrossDomainImage *ret);

#ifdef __cplusplus
}
#endif
