/* SPDX-License-Identifier: BSD-3-Clause */
/* The 2D virtio-gpu device (virtio 1.2 §5.7): see virtio-gpu.h.
 *
 * Section names cited below (virtio 1.2): §5.7.4 device configuration
 * layout, §5.7.6.6 request header, §5.7.6.7 controlq, §5.7.6.9 cursorq.
 * Requests are read as little-endian bytes at the offsets of
 * <linux/virtio_gpu.h>'s structs, never cast: a request is only as long as
 * the driver made it. */
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
/* Per-context fences are among virglrenderer's "unstable" APIs. */
#define VIRGL_RENDERER_UNSTABLE_APIS 1
#include <virgl/virglrenderer.h>

#include "gpu/virtio-gpu.h"
#include "common/macro.h"
#include "common/string-table.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "wayland/cross-domain.h"

#define HDR_SIZE 24
#define BPP 4

typedef struct BackingEntry {
        uint64_t gpa;
        uint32_t len;
        uint64_t start;         /* offset of its first byte in the backing */
} BackingEntry;

/* virglrenderer's struct virgl_box (its virglrenderer_hw.h, which Debian
 * does not ship; the header only declares the name): the same six u32 as
 * virtio_gpu_box. */
struct virgl_box {
        uint32_t x, y, z, w, h, d;
};

/* Gallium's enum pipe_texture_target, as virgl passes it: PIPE_BUFFER 0,
 * PIPE_TEXTURE_1D 1, PIPE_TEXTURE_2D 2, ... PIPE_TEXTURE_CUBE_ARRAY 8. */
#define PIPE_BUFFER 0
#define PIPE_TEXTURE_2D 2
#define PIPE_MAX_TEXTURE_TYPES 9
/* Limits on a 3D resource checked before virglrenderer sees it (it checks
 * its own against the GL it runs on). */
#define VIRGL_MAX_LAYERS 2048   /* depth or array_size: GL_MAX_ARRAY_TEXTURE_LAYERS */
#define VIRGL_MAX_LEVEL 14      /* log2(16384) */
#define VIRGL_MAX_SAMPLES 32
#define VIRGL_MAX_FORMAT 511    /* virgl_formats ends well below */

typedef struct Resource {
        uint32_t id, format, width, height;
        uint64_t bytes;         /* width * height * 4; 3D: the estimate counted against max_memory */
        uint8_t *data;          /* the host's copy, stride width * 4; 3D: the scanout read-back, or NULL */
        bool is_3d;             /* virglrenderer's; format is then a virgl format */
        uint32_t target, depth, array_size, last_level;
        /* A blob (RESOURCE_CREATE_BLOB): guest memory (backing = its
         * entries) or host3d (virglrenderer's, is_3d, a buffer). */
        bool is_blob;
        uint32_t blob_mem, blob_flags;
        uint64_t blob_size;
        bool mapped;            /* MAP_BLOB placed it at map_offset of the region */
        int fd;                 /* a cross-domain host blob's memory (a sealed memfd), or -1 */
        uint64_t map_offset;
        BackingEntry *backing;  /* NULL: none attached */
        struct iovec *iov;      /* 3D: the backing as attached to virglrenderer (it keeps this array) */
        uint32_t n_backing;
        uint64_t backing_len;
} Resource;

typedef struct Scanout {
        uint32_t resource_id;   /* 0: disabled */
        uint32_t x, y, width, height; /* the part of the resource shown */
        /* SET_SCANOUT_BLOB: a guest blob read as a fb_width x fb_height
         * image of format at offset, rows stride apart; each flush copies
         * the damage into pixels (the shown rectangle, width * 4 a row;
         * pixels_bytes counted against max_memory). */
        bool blob;
        uint32_t format, stride, fb_width, fb_height;
        uint64_t offset;
        uint8_t *pixels;
        uint64_t pixels_bytes;
} Scanout;

typedef struct Capset {
        uint32_t id, max_version, max_size;
} Capset;

/* The timeline a held response's fence is on. Each completes in order;
 * between them, in any order (§5.7.6.6: the driver signals a fence and the
 * earlier ones of its own (context, ring) only). */
typedef enum PendingKind {
        PENDING_GLOBAL,         /* virglrenderer's ctx 0 fences: seq against fence_done */
        PENDING_RING,           /* a virgl context's ring: ready from write_context_fence */
        PENDING_CHANNEL,        /* a cross-domain channel ring: ready once an event was written */
} PendingKind;

/* A fenced response held until its fence completes. */
typedef struct Pending {
        uint64_t seq;           /* our fence number given to virglrenderer */
        uint64_t token;
        uint32_t ctx_id;
        uint8_t ring;
        uint8_t kind;           /* PendingKind */
        bool ready;
} Pending;

/* A guest's context: virglrenderer's, a cross-domain one of ours, or
 * (without virglrenderer) a default one with no renderer. */
typedef struct Context {
        uint32_t id;
        CrossDomain *cd;
} Context;

/* Tokens of held chains virtio_gpu_process() pushes itself: the head and
 * the bytes written. */
#define TOKEN_PROCESS (UINT64_C(1) << 63)

struct VirtioGpu {
        VirtioGpuOptions o;
        GpuDisplay *display;
        Resource *res;
        unsigned n_res, cap_res;
        uint64_t mem_used;
        Scanout scanouts[GPU_DISPLAY_MAX_SCANOUTS];
        VirtioGpuCursor cursors[GPU_DISPLAY_MAX_SCANOUTS];
        uint32_t events_read;
        /* Each scanout's size offered to the guest (GET_DISPLAY_INFO's
         * pmode, GET_EDID's preferred timing): the configured one, until
         * the host's window asks another (virtio_gpu_set_preferred_size). */
        uint32_t preferred[GPU_DISPLAY_MAX_SCANOUTS][2];
        uint8_t *req;           /* VIRTIO_GPU_MAX_REQUEST bytes, for virtio_gpu_process */

        /* Contexts: virglrenderer's (virgl: it runs), cross-domain's. */
        bool virgl, three_d, cross_domain;
        Capset capsets[3];
        unsigned n_capsets;
        Context *contexts;      /* alive */
        unsigned n_contexts;
        int epoll_fd;           /* cross-domain's descriptors */
        const GuestMemory *mem; /* the guest memory of the last request (rings) */
        uint32_t *submit;       /* VIRTIO_GPU_MAX_SUBMIT bytes, dword-aligned */
        Pending *pending;       /* FIFO, in fence order */
        unsigned n_pending;
        uint32_t fence_seq;     /* the last global fence number given */
        uint32_t fence_done;    /* the last one virglrenderer said completed */
        uint64_t ring_fence_seq; /* the last per-context fence number given */
        VirtQueue *ctrlq;       /* where virtio_gpu_process() held chains go */
        /* The guest memory map the attached iovecs point into; when the
         * one handed to a call differs, they are found again first. */
        GuestRegion iov_regions[GUEST_MAX_REGIONS];
        unsigned iov_n_regions;
        VirtioChain *push;      /* scratch for pushing a held chain */
};

static const char *const backend_table[_VIRTIO_GPU_BACKEND_MAX] = {
        [VIRTIO_GPU_BACKEND_2D] = "2d",
        [VIRTIO_GPU_BACKEND_VIRGL] = "virgl",
};

DEFINE_STRING_TABLE_TO_STRING(virtio_gpu_backend, VirtioGpuBackend, backend_table)
DEFINE_STRING_TABLE_FROM_STRING(virtio_gpu_backend, VirtioGpuBackend, backend_table, _VIRTIO_GPU_BACKEND_INVALID)

/* virglrenderer keeps one renderer per process (its state is global): the
 * device that owns it, so a second one is refused rather than sharing it
 * unknowingly. The only mutable global here, forced by the library. */
static VirtioGpu *virgl_owner;

static bool seq_reached(uint32_t seq, uint32_t done) {
        return (int32_t) (seq - done) <= 0;
}

/* virglrenderer's write_fence: every fence up to `fence` has completed
 * (ctx 0 fences retire in order). Only recorded here: the responses are
 * completed by virtio_gpu_poll() once virgl_renderer_poll() returns. */
static void virgl_write_fence(void *cookie, uint32_t fence) {
        VirtioGpu *g = cookie;

        if (!seq_reached(fence, g->fence_done))
                g->fence_done = fence;
}

#ifdef HAVE_VIRGL_CONTEXT_FENCE
/* A context's fences retire in order on each ring: every one up to
 * fence_id on (ctx_id, ring_idx) has completed. */
static void virgl_write_context_fence(void *cookie, uint32_t ctx_id, uint32_t ring_idx, uint64_t fence_id) {
        VirtioGpu *g = cookie;

        for (unsigned i = 0; i < g->n_pending; i++) {
                Pending *p = &g->pending[i];

                if (p->kind == PENDING_RING && p->ctx_id == ctx_id && p->ring == ring_idx && p->seq <= fence_id)
                        p->ready = true;
        }
}
#endif

static struct virgl_renderer_callbacks virgl_callbacks = {
#ifdef HAVE_VIRGL_CONTEXT_FENCE
        .version = 3,
        .write_context_fence = virgl_write_context_fence,
#else
        .version = 1,
#endif
        .write_fence = virgl_write_fence,
};

/* What contexts of any type need: their table, held responses. */
static int contexts_start(VirtioGpu *g) {
        g->contexts = calloc(VIRTIO_GPU_MAX_CONTEXTS, sizeof(*g->contexts));
        g->pending = calloc(VIRTIO_GPU_MAX_PENDING, sizeof(*g->pending));
        g->submit = malloc(VIRTIO_GPU_MAX_SUBMIT);
        g->push = calloc(1, sizeof(*g->push));
        if (!g->contexts || !g->pending || !g->submit || !g->push)
                return -ENOMEM;
        g->three_d = true;
        return 0;
}

static int virgl_start(VirtioGpu *g) {
        static const uint32_t ids[] = { VIRTIO_GPU_CAPSET_VIRGL, VIRTIO_GPU_CAPSET_VIRGL2 };

        if (virgl_owner)
                return -EBUSY;
        /* EGL on a surfaceless platform: no window system, no DRM device
         * needed (llvmpipe here). No THREAD_SYNC: its fence thread would
         * exist before the jail (docs/gpu.md); fences are polled. */
        if (virgl_renderer_init(g, VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_USE_SURFACELESS, &virgl_callbacks) != 0)
                return -EIO;
        virgl_owner = g;
        g->virgl = true;
        /* The capsets virglrenderer reports (0.10.4 has no version macro:
         * ask it), each offered only when it fits a response. */
        for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
                uint32_t v = 0, size = 0;

                if (!(g->o.context_types & UINT32_C(1) << ids[i]))
                        continue;
                virgl_renderer_get_cap_set(ids[i], &v, &size);
                if (v == 0 || size == 0 || size > VIRTIO_GPU_MAX_CAPSET_SIZE)
                        continue;
                g->capsets[g->n_capsets++] = (Capset) { .id = ids[i], .max_version = v, .max_size = size };
        }
        return 0;
}

static int device_start(VirtioGpu *g) {
        uint32_t types = g->o.context_types;
        int r;

        if (g->o.backend != VIRTIO_GPU_BACKEND_VIRGL && g->o.backend != VIRTIO_GPU_BACKEND_2D)
                return -EINVAL;
        /* virgl's contexts need virglrenderer; cross-domain's blobs. */
        if (types == 0 && g->o.backend == VIRTIO_GPU_BACKEND_VIRGL)
                types = VIRTIO_GPU_CONTEXT_VIRGL | VIRTIO_GPU_CONTEXT_VIRGL2;
        if ((types & ~VIRTIO_GPU_CONTEXT_ALL) ||
            ((types & (VIRTIO_GPU_CONTEXT_VIRGL | VIRTIO_GPU_CONTEXT_VIRGL2)) &&
             g->o.backend != VIRTIO_GPU_BACKEND_VIRGL) ||
            ((types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN) && !g->o.blob))
                return -EINVAL;
        g->o.context_types = types;
        if (types != 0) {
                r = contexts_start(g);
                if (r < 0)
                        return r;
        }
        if (g->o.backend == VIRTIO_GPU_BACKEND_VIRGL) {
                r = virgl_start(g);
                if (r < 0)
                        return r;
        }
        if (types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN) {
                /* Version 0, as crosvm: sommelier asks for version 0. */
                g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
                if (g->epoll_fd < 0)
                        return -errno;
                g->capsets[g->n_capsets++] = (Capset) { .id = CROSS_DOMAIN_CAPSET, .max_version = 0,
                                                        .max_size = CROSS_DOMAIN_CAPS_SIZE };
                g->cross_domain = true;
        }
        return 0;
}

int virtio_gpu_new(const VirtioGpuOptions *o, GpuDisplay *display, VirtioGpu **ret) {
        VirtioGpu *g;
        int r;

        /* No scanout is a render-only device (display may then be NULL). */
        if (o->n_scanouts > GPU_DISPLAY_MAX_SCANOUTS || (o->n_scanouts > 0 && !display) || o->width == 0 || o->height == 0 ||
            o->width > VIRTIO_GPU_MAX_DIMENSION || o->height > VIRTIO_GPU_MAX_DIMENSION)
                return -EINVAL;
        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->req = malloc(VIRTIO_GPU_MAX_REQUEST);
        if (!g->req) {
                free(g);
                return -ENOMEM;
        }
        g->o = *o;
        for (unsigned i = 0; i < o->n_scanouts; i++) {
                g->preferred[i][0] = o->width;
                g->preferred[i][1] = o->height;
        }
        if (g->o.max_memory == 0)
                g->o.max_memory = VIRTIO_GPU_DEFAULT_MAX_MEMORY;
        if (g->o.host_visible_size == 0)
                g->o.host_visible_size = VIRTIO_GPU_DEFAULT_HOST_VISIBLE_SIZE;
        g->display = display;
        g->epoll_fd = -EBADF;
        r = device_start(g);
        if (r < 0) {
                virtio_gpu_free(g);
                return r;
        }
        *ret = g;
        return 0;
}

uint64_t virtio_gpu_features(const VirtioGpu *g) {
        /* CONTEXT_INIT: a context names its capset (virtio 1.2 §5.7.6.7,
         * CTX_CREATE); the Linux driver takes it only with VIRGL. */
        return VIRTIO_GPU_DEVICE_FEATURES |
               (g->three_d ? UINT64_C(1) << VIRTIO_GPU_F_VIRGL | UINT64_C(1) << VIRTIO_GPU_F_CONTEXT_INIT : 0) |
               (g->o.blob ? UINT64_C(1) << VIRTIO_GPU_F_RESOURCE_BLOB : 0);
}

/* Takes a 3D resource's iovecs back from virglrenderer and frees them. */
static void iov_detach(Resource *r) {
        struct iovec *iov = NULL;
        int n = 0;

        if (!r->iov)
                return;
        virgl_renderer_resource_detach_iov((int) r->id, &iov, &n);
        free(r->iov);
        r->iov = NULL;
}

static void resource_release(Resource *r) {
        free(r->data);
        free(r->backing);
        safe_close(r->fd);
}

static void contexts_destroy(VirtioGpu *g) {
        for (unsigned i = 0; i < g->n_contexts; i++) {
                if (g->contexts[i].cd)
                        cross_domain_free(g->contexts[i].cd);
                else if (g->virgl)
                        virgl_renderer_context_destroy(g->contexts[i].id);
        }
        g->n_contexts = 0;
}

/* Every resource goes (virglrenderer's too). A mapped blob's place in the
 * region is not unmapped one by one: the front-end drops the region's
 * mappings with the device (a reset, or the VM's end). */
static void resources_destroy(VirtioGpu *g) {
        for (unsigned i = 0; i < g->n_res; i++) {
                if (g->res[i].is_3d) {
                        iov_detach(&g->res[i]);
                        virgl_renderer_resource_unref(g->res[i].id);
                }
                g->mem_used -= g->res[i].bytes;
                resource_release(&g->res[i]);
        }
        g->n_res = 0;
}

VirtioGpu *virtio_gpu_free(VirtioGpu *g) {
        if (!g)
                return NULL;
        /* Held responses are dropped: the front-end is going away. */
        contexts_destroy(g);
        safe_close(g->epoll_fd);
        resources_destroy(g);
        if (g->virgl) {
                virgl_renderer_cleanup(g);
                virgl_owner = NULL;
        }
        for (unsigned s = 0; s < GPU_DISPLAY_MAX_SCANOUTS; s++)
                free(g->scanouts[s].pixels);
        free(g->res);
        free(g->req);
        free(g->contexts);
        free(g->pending);
        free(g->submit);
        free(g->push);
        free(g);
        return NULL;
}

uint64_t virtio_gpu_memory_used(const VirtioGpu *g) {
        return g->mem_used;
}

void virtio_gpu_get_cursor(const VirtioGpu *g, unsigned scanout, VirtioGpuCursor *ret) {
        *ret = g->cursors[scanout];
}

/* §5.7.4: events_read, events_clear, num_scanouts, num_capsets. */
static void config_bytes(const VirtioGpu *g, uint8_t out[VIRTIO_GPU_CONFIG_SIZE]) {
        put_le32(out, g->events_read);
        put_le32(out + 4, 0);
        put_le32(out + 8, g->o.n_scanouts);
        put_le32(out + 12, g->n_capsets); /* 0 on the 2D back-end */
}

void virtio_gpu_config_read(const VirtioGpu *g, uint32_t offset, void *data, uint32_t size) {
        uint8_t c[VIRTIO_GPU_CONFIG_SIZE];

        if (offset > VIRTIO_GPU_CONFIG_SIZE || size > VIRTIO_GPU_CONFIG_SIZE - offset)
                return;
        config_bytes(g, c);
        memcpy(data, c + offset, size);
}

void virtio_gpu_config_write(VirtioGpu *g, uint32_t offset, const void *data, uint32_t size) {
        uint8_t clear[4] = { 0 };
        const uint8_t *p = data;

        if (offset > VIRTIO_GPU_CONFIG_SIZE || size > VIRTIO_GPU_CONFIG_SIZE - offset)
                return;
        /* §5.7.4: writing events_clear clears those bits of events_read;
         * the other fields are read-only (writes to them are dropped, as a
         * vhost-user front-end sends the whole configuration back). */
        for (uint32_t i = 0; i < size; i++)
                if (offset + i >= 4 && offset + i < 8)
                        clear[offset + i - 4] = p[i];
        g->events_read &= ~get_le32(clear);
}

void virtio_gpu_raise_display_event(VirtioGpu *g) {
        g->events_read |= VIRTIO_GPU_EVENT_DISPLAY;
}

int virtio_gpu_set_preferred_size(VirtioGpu *g, unsigned scanout, uint32_t width, uint32_t height) {
        if (scanout >= g->o.n_scanouts || width == 0 || height == 0 || width > VIRTIO_GPU_MAX_DIMENSION ||
            height > VIRTIO_GPU_MAX_DIMENSION)
                return -EINVAL;
        if (g->preferred[scanout][0] == width && g->preferred[scanout][1] == height)
                return 0;
        g->preferred[scanout][0] = width;
        g->preferred[scanout][1] = height;
        /* §5.7.4: the display configuration changed; the driver answers
         * with GET_DISPLAY_INFO (and GET_EDID), then clears the bit
         * through events_clear. */
        virtio_gpu_raise_display_event(g);
        return 1;
}

void virtio_gpu_get_preferred_size(const VirtioGpu *g, unsigned scanout, uint32_t *ret_width,
                                   uint32_t *ret_height) {
        *ret_width = g->preferred[scanout][0];
        *ret_height = g->preferred[scanout][1];
}

/* ---- EDID ---- */

void virtio_gpu_make_edid(uint32_t width, uint32_t height, uint8_t e[128]) {
        /* The detailed timing holds 12-bit sizes. */
        uint32_t w = MIN(width, 4095u), h = MIN(height, 4095u);
        /* Reduced blanking, like CVT-RB: fixed horizontal and vertical
         * blanking, 60 Hz; the pixel clock (10 kHz units, 16 bits) is
         * capped, so huge modes get a lower refresh rate. */
        const uint32_t hblank = 160, hfront = 48, hsync = 32, vblank = 30, vfront = 3, vsync = 5;
        uint64_t clock = ((uint64_t) (w + hblank) * (h + vblank) * 60 + 9999) / 10000;
        /* Physical size at 96 dpi, in mm (12 bits) and cm (a byte). */
        uint32_t wmm = MAX(1u, w * 254 / 960), hmm = MAX(1u, h * 254 / 960);
        static const uint8_t header[8] = { 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
        /* sRGB primaries and white point, 10-bit fractions packed. */
        static const uint8_t chroma[10] = { 0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54 };
        static const char name[13] = "Majordome\n   ";
        uint8_t *d = e + 54, sum = 0;

        if (clock > 0xffff)
                clock = 0xffff;
        memset(e, 0, 128);
        memcpy(e, header, sizeof(header));
        /* Manufacturer "MAJ": three 5-bit letters, big-endian. */
        e[8] = (uint8_t) ((13 << 2) | (1 >> 3));
        e[9] = (uint8_t) (((1 & 7) << 5) | 10);
        put_le16(e + 10, 1);    /* product code */
        e[16] = 1;              /* week */
        e[17] = 2026 - 1990;    /* year */
        e[18] = 1;              /* EDID 1.4 */
        e[19] = 4;
        e[20] = 0xa5;           /* digital, 8 bits per colour, DisplayPort */
        e[21] = (uint8_t) MIN(255u, MAX(1u, wmm / 10));
        e[22] = (uint8_t) MIN(255u, MAX(1u, hmm / 10));
        e[23] = 120;            /* gamma 2.2 */
        e[24] = 0x06;           /* sRGB default, preferred timing is native, RGB 4:4:4 */
        memcpy(e + 25, chroma, sizeof(chroma));
        for (unsigned i = 0; i < 8; i++) { /* no standard timings */
                e[38 + 2 * i] = 0x01;
                e[39 + 2 * i] = 0x01;
        }
        /* Descriptor 1: the preferred detailed timing. */
        put_le16(d, (uint16_t) clock);
        d[2] = (uint8_t) w;
        d[3] = (uint8_t) hblank;
        d[4] = (uint8_t) (((w >> 8) << 4) | (hblank >> 8));
        d[5] = (uint8_t) h;
        d[6] = (uint8_t) vblank;
        d[7] = (uint8_t) (((h >> 8) << 4) | (vblank >> 8));
        d[8] = (uint8_t) hfront;
        d[9] = (uint8_t) hsync;
        d[10] = (uint8_t) (((vfront & 0xf) << 4) | (vsync & 0xf));
        d[11] = (uint8_t) (((hfront >> 8) << 6) | ((hsync >> 8) << 4) | ((vfront >> 4) << 2) | (vsync >> 4));
        d[12] = (uint8_t) wmm;
        d[13] = (uint8_t) hmm;
        d[14] = (uint8_t) (((wmm >> 8) << 4) | (hmm >> 8));
        d[17] = 0x1e;           /* digital separate sync, both polarities positive */
        /* Descriptor 2: the monitor name; 3 and 4: dummy (tag 0x10). */
        d = e + 72;
        d[3] = 0xfc;
        memcpy(d + 5, name, sizeof(name));
        e[90 + 3] = 0x10;
        e[108 + 3] = 0x10;
        e[126] = 0;             /* no extension blocks */
        for (unsigned i = 0; i < 127; i++)
                sum = (uint8_t) (sum + e[i]);
        e[127] = (uint8_t) (0x100 - sum);
}

/* ---- resources ---- */

static Resource *resource_find(VirtioGpu *g, uint32_t id) {
        if (id == 0)
                return NULL;
        for (unsigned i = 0; i < g->n_res; i++)
                if (g->res[i].id == id)
                        return &g->res[i];
        return NULL;
}

static bool format_is_valid(uint32_t format) {
        switch (format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
        case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
        case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
        case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
                return true;
        default:
                return false;
        }
}

/* Whether (x, y, w, h) lies inside a width x height image, computed in
 * 64 bits so that x + w cannot wrap. */
static bool rect_inside(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t width, uint32_t height) {
        return (uint64_t) x + w <= width && (uint64_t) y + h <= height;
}

typedef struct Request {
        const uint8_t *p;
        size_t len;
} Request;

static uint32_t cmd_create_2d(VirtioGpu *g, const Request *rq) {
        uint32_t id, format, width, height;
        uint64_t bytes;
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_resource_create_2d. */
        if (rq->len < HDR_SIZE + 16)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        id = get_le32(rq->p + 24);
        format = get_le32(rq->p + 28);
        width = get_le32(rq->p + 32);
        height = get_le32(rq->p + 36);
        /* §5.7.6.7: resource id 0 means none; an id in use is refused. */
        if (id == 0 || resource_find(g, id))
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* §5.7.6.7: format one of enum virtio_gpu_formats (all 32-bit). */
        if (!format_is_valid(format))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* An empty or oversized image is refused; width * height * 4 is
         * computed in 64 bits (at most 16384^2 * 4: no overflow). */
        if (width == 0 || height == 0 || width > VIRTIO_GPU_MAX_DIMENSION || height > VIRTIO_GPU_MAX_DIMENSION)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        bytes = (uint64_t) width * height * BPP;
        if (bytes > g->o.max_memory)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* The guest's resources together stay under max_memory. */
        if (bytes > g->o.max_memory - g->mem_used || g->n_res >= VIRTIO_GPU_MAX_RESOURCES)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        if (g->n_res == g->cap_res) {
                unsigned cap = g->cap_res ? g->cap_res * 2 : 16;
                Resource *n = realloc(g->res, cap * sizeof(*n));

                if (!n)
                        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                g->res = n;
                g->cap_res = cap;
        }
        r = &g->res[g->n_res];
        *r = (Resource) { .fd = -1, .id = id, .format = format, .width = width, .height = height, .bytes = bytes };
        /* Zeroed: a resource shown before any transfer is black. */
        r->data = calloc(1, bytes);
        if (!r->data)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        g->n_res++;
        g->mem_used += bytes;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static void scanout_release(VirtioGpu *g, unsigned s) {
        free(g->scanouts[s].pixels);
        g->mem_used -= g->scanouts[s].pixels_bytes;
        g->scanouts[s] = (Scanout) { 0 };
}

static void scanout_disable(VirtioGpu *g, unsigned s) {
        scanout_release(g, s);
        (void) gpu_display_set_mode(g->display, s, 0, 0);
}

static uint32_t cmd_unref(VirtioGpu *g, const Request *rq) {
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_resource_unref. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r = resource_find(g, get_le32(rq->p + 24));
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* A scanout showing it has nothing to show any more. */
        for (unsigned s = 0; s < g->o.n_scanouts; s++)
                if (g->scanouts[s].resource_id == r->id)
                        scanout_disable(g, s);
        /* A cursor showing it is hidden. */
        for (unsigned s = 0; s < g->o.n_scanouts; s++)
                if (g->cursors[s].resource_id == r->id) {
                        g->cursors[s].resource_id = 0;
                        (void) gpu_display_set_cursor(g->display, s, NULL, 0, 0, 0);
                }
        /* A blob still mapped leaves the region first. */
        if (r->mapped && g->o.shm.unmap)
                (void) g->o.shm.unmap(g->o.shm.ctx, r->map_offset, r->blob_size);
        /* virglrenderer detaches it from every context itself. */
        if (r->is_3d) {
                iov_detach(r);
                virgl_renderer_resource_unref(r->id);
        }
        g->mem_used -= r->bytes;
        resource_release(r);
        *r = g->res[--g->n_res];
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_set_scanout(VirtioGpu *g, const Request *rq) {
        uint32_t x, y, w, h, s, id;
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_set_scanout. */
        if (rq->len < HDR_SIZE + 24)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        x = get_le32(rq->p + 24);
        y = get_le32(rq->p + 28);
        w = get_le32(rq->p + 32);
        h = get_le32(rq->p + 36);
        s = get_le32(rq->p + 40);
        id = get_le32(rq->p + 44);
        if (s >= g->o.n_scanouts)
                return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
        /* §5.7.6.7: resource_id 0 disables the scanout. */
        if (id == 0) {
                scanout_disable(g, s);
                return VIRTIO_GPU_RESP_OK_NODATA;
        }
        r = resource_find(g, id);
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* A blob is shown with SET_SCANOUT_BLOB (not there yet). */
        if (r->is_blob)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* The rectangle shown is a non-empty part of the resource. */
        if (w == 0 || h == 0 || !rect_inside(x, y, w, h, r->width, r->height))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* A 3D resource is shown from a read-back copy: only a 2D texture
         * in one of the eight 32-bit formats (their virgl numbers are the
         * same) can be. */
        if (r->is_3d) {
                if (r->target != PIPE_TEXTURE_2D || !format_is_valid(r->format))
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                if (!r->data) {
                        r->data = calloc((size_t) r->width * r->height, BPP);
                        if (!r->data)
                                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                }
        }
        if (gpu_display_set_mode(g->display, s, w, h) < 0)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        scanout_release(g, s);
        g->scanouts[s] = (Scanout) { .resource_id = id, .x = x, .y = y, .width = w, .height = h };
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static int backing_read(const Resource *r, const GuestMemory *mem, uint64_t off, uint8_t *dst, uint64_t len);

/* Copies rows [y0, y1), columns [x0, x1) of a blob scanout's image from
 * the guest blob into its pixels; SET_SCANOUT_BLOB checked the image lies
 * in the blob, backing_read checks each range against guest RAM again. */
static int blob_scanout_read(const Resource *r, const GuestMemory *mem, Scanout *so, uint32_t x0, uint32_t y0,
                             uint32_t x1, uint32_t y1) {
        for (uint32_t row = y0; row < y1; row++) {
                uint8_t *dst = so->pixels + ((uint64_t) (row - so->y) * so->width + (x0 - so->x)) * BPP;
                int k = backing_read(r, mem, so->offset + (uint64_t) row * so->stride + (uint64_t) x0 * BPP, dst,
                                     (uint64_t) (x1 - x0) * BPP);

                if (k < 0)
                        return k;
        }
        return 0;
}

static uint32_t cmd_flush(VirtioGpu *g, const GuestMemory *mem, const Request *rq) {
        uint32_t x, y, w, h;
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_resource_flush. */
        if (rq->len < HDR_SIZE + 24)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        x = get_le32(rq->p + 24);
        y = get_le32(rq->p + 28);
        w = get_le32(rq->p + 32);
        h = get_le32(rq->p + 36);
        r = resource_find(g, get_le32(rq->p + 40));
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* A blob has no size of its own: its scanouts' images bound the
         * rectangle (each clips it below); at most 16384 wide and high
         * here, so x + w cannot wrap. */
        if (!rect_inside(x, y, w, h, r->is_blob ? VIRTIO_GPU_MAX_DIMENSION : r->width,
                         r->is_blob ? VIRTIO_GPU_MAX_DIMENSION : r->height))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* Each scanout showing the resource gets the flushed rectangle
         * intersected with the part it shows, in its own coordinates. */
        for (unsigned s = 0; s < g->o.n_scanouts; s++) {
                Scanout *so = &g->scanouts[s];
                uint32_t x0, y0, x1, y1;

                if (so->resource_id != r->id)
                        continue;
                x0 = MAX(x, so->x);
                y0 = MAX(y, so->y);
                x1 = MIN(x + w, so->x + so->width); /* both inside the resource: no wrap */
                y1 = MIN(y + h, so->y + so->height);
                if (x0 >= x1 || y0 >= y1)
                        continue;
                if (so->blob) {
                        if (blob_scanout_read(r, mem, so, x0, y0, x1, y1) < 0)
                                continue;
                        (void) gpu_display_update(g->display, s, so->pixels, so->width * BPP, so->format, x0 - so->x,
                                                  y0 - so->y, x1 - x0, y1 - y0);
                        continue;
                }
                if (r->is_3d) {
                        /* Read the damaged rectangle back from virglrenderer
                         * into the copy (ctx 0: the renderer's own). */
                        struct virgl_box box = { .x = x0, .y = y0, .z = 0, .w = x1 - x0, .h = y1 - y0, .d = 1 };
                        struct iovec iov = { .iov_base = r->data, .iov_len = (size_t) r->width * r->height * BPP };

                        if (virgl_renderer_transfer_read_iov(r->id, 0, 0, r->width * BPP, 0, &box,
                                                             (uint64_t) y0 * r->width * BPP + (uint64_t) x0 * BPP,
                                                             &iov, 1) != 0)
                                continue;
                }
                (void) gpu_display_update(g->display, s,
                                          r->data + (uint64_t) so->y * r->width * BPP + (uint64_t) so->x * BPP,
                                          r->width * BPP, r->format, x0 - so->x, y0 - so->y, x1 - x0, y1 - y0);
        }
        return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Copies len bytes at backing offset off into dst, entry by entry through
 * guest_read (each range checked again: the memory table may have
 * changed since the attach). The caller checked off + len fits. */
/* Copies len bytes between buf and a resource's backing from offset off,
 * entry by entry, each range through guest memory's own checks. */
static int backing_copy(const Resource *r, const GuestMemory *mem, uint64_t off, uint8_t *buf, uint64_t len,
                        bool write) {
        uint32_t lo = 0, hi = r->n_backing;

        /* The last entry starting at or before off. */
        while (hi - lo > 1) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (r->backing[mid].start <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        for (uint32_t i = lo; len > 0 && i < r->n_backing; i++) {
                const BackingEntry *b = &r->backing[i];
                uint64_t in = off - b->start;
                uint64_t n = MIN(len, b->len - in);
                int k;

                k = write ? guest_write(mem, b->gpa + in, buf, n) : guest_read(mem, b->gpa + in, buf, n);
                if (k < 0)
                        return k;
                buf += n;
                off += n;
                len -= n;
        }
        return len == 0 ? 0 : -EFAULT;
}

static int backing_read(const Resource *r, const GuestMemory *mem, uint64_t off, uint8_t *dst, uint64_t len) {
        return backing_copy(r, mem, off, dst, len, false);
}

static int backing_write(const Resource *r, const GuestMemory *mem, uint64_t off, const uint8_t *src, uint64_t len) {
        return backing_copy(r, mem, off, (uint8_t *) src, len, true);
}

/* ---- virgl (3D through virglrenderer) ---- */

static int context_index(const VirtioGpu *g, uint32_t id) {
        for (unsigned i = 0; i < g->n_contexts; i++)
                if (g->contexts[i].id == id)
                        return (int) i;
        return -1;
}

/* The cross-domain context a request's header names, or NULL. */
static CrossDomain *context_cross_domain(const VirtioGpu *g, const Request *rq) {
        int i = context_index(g, get_le32(rq->p + 16));

        return get_le32(rq->p + 16) != 0 && i >= 0 ? g->contexts[i].cd : NULL;
}

/* The context a 3D command names in its header: one the guest created. */
static bool context_known(const VirtioGpu *g, const Request *rq) {
        uint32_t id = get_le32(rq->p + 16);

        return id != 0 && context_index(g, id) >= 0;
}

/* An iovec per backing entry, each a host pointer into guest RAM checked
 * now through guest_slice() (the memory table may have changed since the
 * attach): virglrenderer only ever sees ranges inside guest RAM, and only
 * for this one call. NULL on a range no longer in RAM or no memory. */
static struct iovec *backing_iov(const Resource *r, const GuestMemory *mem) {
        struct iovec *iov = calloc(r->n_backing, sizeof(*iov));

        if (!iov)
                return NULL;
        for (uint32_t i = 0; i < r->n_backing; i++) {
                void *p;

                if (guest_slice(mem, r->backing[i].gpa, r->backing[i].len, &p) < 0) {
                        free(iov);
                        return NULL;
                }
                iov[i] = (struct iovec) { .iov_base = p, .iov_len = r->backing[i].len };
        }
        return iov;
}

static void iov_remember_memory(VirtioGpu *g, const GuestMemory *mem) {
        g->iov_n_regions = MIN(mem->n_regions, (unsigned) GUEST_MAX_REGIONS);
        memcpy(g->iov_regions, mem->regions, g->iov_n_regions * sizeof(GuestRegion));
}

/* virglrenderer keeps attached iovecs and reads them when a context's
 * stream transfers (VIRGL_CCMD_TRANSFER3D, COPY_TRANSFER3D). They point
 * into the guest memory map of their attach; before virglrenderer runs
 * with another map (the front-end sent a new memory table), each is found
 * again in it, and a backing no longer all in RAM is detached: virglrenderer
 * never holds a pointer outside guest RAM when it runs. */
static void iov_refresh(VirtioGpu *g, const GuestMemory *mem) {
        if (g->iov_n_regions == mem->n_regions &&
            memcmp(g->iov_regions, mem->regions, g->iov_n_regions * sizeof(GuestRegion)) == 0)
                return;
        for (unsigned i = 0; i < g->n_res; i++) {
                Resource *r = &g->res[i];

                if (!r->iov)
                        continue;
                for (uint32_t k = 0; k < r->n_backing; k++) {
                        void *p;

                        if (guest_slice(mem, r->backing[k].gpa, r->backing[k].len, &p) < 0) {
                                iov_detach(r);
                                break;
                        }
                        r->iov[k].iov_base = p;
                }
        }
        iov_remember_memory(g, mem);
}

/* A transfer between a 3D resource and its guest backing; the caller
 * checked the resource and its box. virglrenderer checks the bytes the
 * box, stride and offset need against the iovecs' total. */
static uint32_t virgl_transfer(VirtioGpu *g, const GuestMemory *mem, Resource *r, bool to_host, uint32_t ctx_id,
                               uint32_t level, uint32_t stride, uint32_t layer_stride, struct virgl_box *box,
                               uint64_t offset) {
        struct iovec *iov;
        int k;

        /* §5.7.6.7: the transfer needs backing pages attached. */
        if (!r->backing)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        iov = backing_iov(r, mem);
        if (!iov)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (to_host)
                k = virgl_renderer_transfer_write_iov(r->id, ctx_id, (int) level, stride, layer_stride, box, offset,
                                                      iov, r->n_backing);
        else
                k = virgl_renderer_transfer_read_iov(r->id, ctx_id, level, stride, layer_stride, box, offset, iov,
                                                     (int) r->n_backing);
        free(iov);
        return k == 0 ? VIRTIO_GPU_RESP_OK_NODATA : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
}

static uint32_t cmd_get_capset_info(VirtioGpu *g, const Request *rq, uint8_t *resp) {
        uint32_t i;

        /* §5.7.6.7: struct virtio_gpu_get_capset_info; capset_index below
         * num_capsets. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        i = get_le32(rq->p + 24);
        if (i >= g->n_capsets)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        memset(resp + HDR_SIZE, 0, sizeof(struct virtio_gpu_resp_capset_info) - HDR_SIZE);
        put_le32(resp + 24, g->capsets[i].id);
        put_le32(resp + 28, g->capsets[i].max_version);
        put_le32(resp + 32, g->capsets[i].max_size);
        return VIRTIO_GPU_RESP_OK_CAPSET_INFO;
}

/* The capset a GET_CAPSET asks for, when it was offered in that version
 * (1..max_version). */
static const Capset *capset_asked(const VirtioGpu *g, const Request *rq) {
        uint32_t id, version;

        if (rq->len < HDR_SIZE + 8)
                return NULL;
        id = get_le32(rq->p + 24);
        version = get_le32(rq->p + 28);
        for (unsigned i = 0; i < g->n_capsets; i++)
                if (g->capsets[i].id == id)
                        return version <= g->capsets[i].max_version && (version >= 1 || g->capsets[i].max_version == 0)
                                       ? &g->capsets[i]
                                       : NULL;
        return NULL;
}

static uint32_t cmd_get_capset(VirtioGpu *g, const Request *rq, uint8_t *resp) {
        const Capset *c;

        /* §5.7.6.7: struct virtio_gpu_get_capset. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        c = capset_asked(g, rq);
        if (!c)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        memset(resp + HDR_SIZE, 0, c->max_size);
        if (c->id == CROSS_DOMAIN_CAPSET)
                /* No GBM device here: no dma-bufs (docs/wayland.md). */
                cross_domain_capabilities(false, resp + HDR_SIZE);
        else
                virgl_renderer_fill_caps(c->id, get_le32(rq->p + 28), resp + HDR_SIZE);
        return VIRTIO_GPU_RESP_OK_CAPSET;
}

static bool capset_offered(const VirtioGpu *g, uint32_t id) {
        for (unsigned i = 0; i < g->n_capsets; i++)
                if (g->capsets[i].id == id)
                        return true;
        return false;
}

/* ---- what a cross-domain context borrows (wayland/cross-domain.h) ---- */

static int cd_connect(void *ctx) {
        VirtioGpu *g = ctx;

        return g->o.connect(g->o.connect_ctx);
}

/* A ring: a guest-memory blob, written through its backing entries. */
static int cd_ring_write(void *ctx, uint32_t id, const struct iovec *iov, unsigned n_iov) {
        VirtioGpu *g = ctx;
        Resource *r = resource_find(g, id);
        uint64_t off = 0;

        if (!r || !r->is_blob || r->blob_mem != VIRTIO_GPU_BLOB_MEM_GUEST || !r->backing || !g->mem)
                return -EINVAL;
        for (unsigned i = 0; i < n_iov; i++) {
                if (iov[i].iov_len > r->blob_size - off)
                        return -EINVAL;
                if (backing_write(r, g->mem, off, iov[i].iov_base, iov[i].iov_len) < 0)
                        return -EFAULT;
                off += iov[i].iov_len;
        }
        return 0;
}

static int cd_ring_size(void *ctx, uint32_t id, uint64_t *ret) {
        Resource *r = resource_find(ctx, id);

        if (!r || !r->is_blob || r->blob_mem != VIRTIO_GPU_BLOB_MEM_GUEST || !r->backing)
                return -EINVAL;
        *ret = r->blob_size;
        return 0;
}

static int cd_resource_fd(void *ctx, uint32_t id, int *ret) {
        Resource *r = resource_find(ctx, id);

        if (!r || r->fd < 0)
                return -EINVAL;
        *ret = r->fd;
        return 0;
}

/* The oldest fence held on the context's channel ring completes (from
 * fences_complete(), with the others). */
static void cd_event_written(void *ctx, uint32_t ctx_id) {
        VirtioGpu *g = ctx;

        for (unsigned i = 0; i < g->n_pending; i++)
                if (g->pending[i].kind == PENDING_CHANNEL && g->pending[i].ctx_id == ctx_id && !g->pending[i].ready) {
                        g->pending[i].ready = true;
                        return;
                }
}

static uint32_t cmd_ctx_create(VirtioGpu *g, const Request *rq) {
        uint32_t id, nlen, init, capset;
        char name[64];
        int k;

        /* §5.7.6.7 (3D): struct virtio_gpu_ctx_create: nlen,
         * context_init, debug_name[64]. */
        if (rq->len < HDR_SIZE + 72)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        id = get_le32(rq->p + 16);
        nlen = get_le32(rq->p + 24);
        /* Context 0 is virglrenderer's own; an id in use is refused;
         * virglrenderer takes ids as int. */
        if (id == 0 || id > INT32_MAX || context_index(g, id) >= 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
        /* VIRTIO_GPU_F_CONTEXT_INIT: context_init's low 8 bits name the
         * capset (0: virgl's default), one offered; no other bit is
         * defined. */
        init = get_le32(rq->p + 28);
        capset = init & VIRTIO_GPU_CONTEXT_INIT_CAPSET_ID_MASK;
        if (nlen > sizeof(name) || (init & ~VIRTIO_GPU_CONTEXT_INIT_CAPSET_ID_MASK) != 0 ||
            (capset != 0 && !capset_offered(g, capset)))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (g->n_contexts >= VIRTIO_GPU_MAX_CONTEXTS)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        /* The default context without virglrenderer (VIRGL offered for
         * cross-domain): the Linux driver makes one for each client that
         * opens the card, dumb buffers and all, and attaches its resources
         * to it. It has no renderer: attach and detach only. */
        if (capset == 0 && !g->virgl) {
                g->contexts[g->n_contexts++] = (Context) { .id = id };
                return VIRTIO_GPU_RESP_OK_NODATA;
        }
        if (capset == CROSS_DOMAIN_CAPSET) {
                CrossDomain *cd;

                const CrossDomainOps ops = { .connect = g->o.connect ? cd_connect : NULL, .ring_write = cd_ring_write,
                                             .ring_size = cd_ring_size, .resource_fd = cd_resource_fd,
                                             .event_written = cd_event_written, .ctx = g };

                if (cross_domain_new(id, g->epoll_fd, &ops, &cd) < 0)
                        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                g->contexts[g->n_contexts++] = (Context) { .id = id, .cd = cd };
                return VIRTIO_GPU_RESP_OK_NODATA;
        }
        memcpy(name, rq->p + 32, nlen);
        if (capset == 0)
                k = virgl_renderer_context_create(id, nlen, name);
        else
                k = virgl_renderer_context_create_with_flags(id, capset, nlen, name);
        if (k != 0)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        g->contexts[g->n_contexts++] = (Context) { .id = id };
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_ctx_destroy(VirtioGpu *g, const Request *rq) {
        int i = context_index(g, get_le32(rq->p + 16));

        if (get_le32(rq->p + 16) == 0 || i < 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
        /* The context's own fences complete now (in ring order, with the
         * next fences_complete()): virglrenderer drops a destroyed
         * context's fences unsignalled, and nothing more is written to a
         * cross-domain channel ring; the guest would wait forever. Global
         * ones stay on virglrenderer's timeline. */
        for (unsigned k = 0; k < g->n_pending; k++)
                if (g->pending[k].kind != PENDING_GLOBAL && g->pending[k].ctx_id == g->contexts[i].id)
                        g->pending[k].ready = true;
        if (g->contexts[i].cd)
                cross_domain_free(g->contexts[i].cd);
        else if (g->virgl)
                virgl_renderer_context_destroy(g->contexts[i].id);
        g->contexts[i] = g->contexts[--g->n_contexts];
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_ctx_resource(VirtioGpu *g, const Request *rq, bool attach) {
        Resource *r;

        /* §5.7.6.7 (3D): struct virtio_gpu_ctx_resource. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (!context_known(g, rq))
                return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
        /* A cross-domain or default context names resources in its
         * commands, if at all: the guest driver attaches every one it
         * uses, which changes nothing. So does a 2D resource (a dumb
         * buffer) on a virgl context: it lives in host memory, out of
         * virglrenderer's reach (QEMU's virgl ignores it too). */
        r = resource_find(g, get_le32(rq->p + 24));
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        if (context_cross_domain(g, rq) || !g->virgl || !r->is_3d)
                return VIRTIO_GPU_RESP_OK_NODATA;
        if (attach)
                virgl_renderer_ctx_attach_resource((int) get_le32(rq->p + 16), (int) r->id);
        else
                virgl_renderer_ctx_detach_resource((int) get_le32(rq->p + 16), (int) r->id);
        return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Bytes a 3D resource is counted for: width * height * depth * array_size
 * * samples at 16 bytes a texel (the widest format, RGBA32F: the format's
 * real size is not known here; 4 for the eight scanout formats), doubled
 * when it has mipmaps (they add at most a third). At most 2^14 * 2^14 *
 * 2^11 * 2^11 * 2^5 * 2^4 * 2: no overflow in 64 bits. */
static uint64_t resource_3d_bytes(uint32_t target, uint32_t format, uint32_t width, uint32_t height, uint32_t depth,
                                  uint32_t array_size, uint32_t last_level, uint32_t samples) {
        uint64_t bpp = target == PIPE_BUFFER ? 1 : format_is_valid(format) ? BPP : 16;
        uint64_t b = (uint64_t) width * height * depth * array_size * MAX(samples, 1u) * bpp;

        return last_level > 0 ? b * 2 : b;
}

static uint32_t cmd_create_3d(VirtioGpu *g, const Request *rq) {
        struct virgl_renderer_resource_create_args a;
        uint64_t bytes;
        Resource *r;

        /* §5.7.6.7 (3D): struct virtio_gpu_resource_create_3d. */
        if (rq->len < HDR_SIZE + 48)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        a = (struct virgl_renderer_resource_create_args) {
                .handle = get_le32(rq->p + 24),
                .target = get_le32(rq->p + 28),
                .format = get_le32(rq->p + 32),
                .bind = get_le32(rq->p + 36),
                .width = get_le32(rq->p + 40),
                .height = get_le32(rq->p + 44),
                .depth = get_le32(rq->p + 48),
                .array_size = get_le32(rq->p + 52),
                .last_level = get_le32(rq->p + 56),
                .nr_samples = get_le32(rq->p + 60),
                .flags = get_le32(rq->p + 64),
        };
        if (a.handle == 0 || resource_find(g, a.handle))
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* What can be checked here: a known target, a format number in
         * range, sizes non-zero and bounded (a buffer is width bytes, one
         * row, one layer); the bind flags and the format itself are
         * virglrenderer's to judge against the GL it runs on. */
        if (a.target >= PIPE_MAX_TEXTURE_TYPES || a.format == 0 || a.format > VIRGL_MAX_FORMAT)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (a.width == 0 || a.height == 0 || a.depth == 0 || a.array_size == 0 || a.last_level > VIRGL_MAX_LEVEL ||
            a.nr_samples > VIRGL_MAX_SAMPLES || a.depth > VIRGL_MAX_LAYERS || a.array_size > VIRGL_MAX_LAYERS)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (a.target == PIPE_BUFFER ? a.height != 1 || a.depth != 1 || a.array_size != 1 || a.last_level != 0
                                    : a.width > VIRTIO_GPU_MAX_DIMENSION || a.height > VIRTIO_GPU_MAX_DIMENSION)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        bytes = resource_3d_bytes(a.target, a.format, a.width, a.height, a.depth, a.array_size, a.last_level,
                                  a.nr_samples);
        if (bytes > g->o.max_memory)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (bytes > g->o.max_memory - g->mem_used || g->n_res >= VIRTIO_GPU_MAX_RESOURCES)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        if (g->n_res == g->cap_res) {
                unsigned cap = g->cap_res ? g->cap_res * 2 : 16;
                Resource *n = realloc(g->res, cap * sizeof(*n));

                if (!n)
                        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                g->res = n;
                g->cap_res = cap;
        }
        /* No iovecs: the backing is handed over per transfer (backing_iov). */
        if (virgl_renderer_resource_create(&a, NULL, 0) != 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        r = &g->res[g->n_res++];
        *r = (Resource) { .fd = -1, .id = a.handle, .format = a.format, .width = a.width, .height = a.height, .bytes = bytes,
                          .is_3d = true, .target = a.target, .depth = a.depth, .array_size = a.array_size,
                          .last_level = a.last_level };
        g->mem_used += bytes;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_transfer_3d(VirtioGpu *g, const GuestMemory *mem, const Request *rq, bool to_host) {
        struct virgl_box box;
        uint32_t ctx_id, level;
        uint64_t offset;
        Resource *r;

        /* §5.7.6.7 (3D): struct virtio_gpu_transfer_host_3d: box, offset,
         * resource_id, level, stride, layer_stride. */
        if (rq->len < HDR_SIZE + 48)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        box = (struct virgl_box) { .x = get_le32(rq->p + 24), .y = get_le32(rq->p + 28), .z = get_le32(rq->p + 32),
                                   .w = get_le32(rq->p + 36), .h = get_le32(rq->p + 40), .d = get_le32(rq->p + 44) };
        offset = get_le64(rq->p + 48);
        level = get_le32(rq->p + 60);
        /* Context 0 (the renderer's own) or one the guest created. */
        ctx_id = get_le32(rq->p + 16);
        if (ctx_id != 0 && context_index(g, ctx_id) < 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
        r = resource_find(g, get_le32(rq->p + 56));
        if (!r || !r->is_3d)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* The box inside the resource's level 0, in 64 bits (no wrap); the
         * level one it has. virglrenderer checks the level's own size. */
        if (level > r->last_level || !rect_inside(box.x, box.y, box.w, box.h, r->width, r->height) ||
            (uint64_t) box.z + box.d > MAX(r->depth, r->array_size))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        return virgl_transfer(g, mem, r, to_host, ctx_id, level, get_le32(rq->p + 64), get_le32(rq->p + 68), &box,
                              offset);
}

static uint32_t cmd_submit_3d(VirtioGpu *g, const Request *rq) {
        CrossDomain *cd;
        uint32_t size;

        /* §5.7.6.7 (3D): struct virtio_gpu_cmd_submit, then size bytes of
         * virgl commands. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (!context_known(g, rq))
                return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
        size = get_le32(rq->p + 24);
        cd = context_cross_domain(g, rq);
        /* Capped, and all of it in the request; virgl's in whole dwords. */
        if ((!cd && size % 4 != 0) || size > VIRTIO_GPU_MAX_SUBMIT)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (rq->len - HDR_SIZE - 8 < size)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (cd) {
                int r = cross_domain_submit(cd, rq->p + HDR_SIZE + 8, size);

                return r == 0 ? VIRTIO_GPU_RESP_OK_NODATA
                       : r == -ENOSPC || r == -ENOMEM ? VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY
                       : r == -EINVAL ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER
                                      : VIRTIO_GPU_RESP_ERR_UNSPEC;
        }
        /* A default context without virglrenderer renders nothing. */
        if (!g->virgl)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (size == 0)
                return VIRTIO_GPU_RESP_OK_NODATA;
        /* Copied into the device's own aligned buffer: virglrenderer
         * decodes dwords in place. It checks the stream itself; a bad one
         * is refused (and may put the context in an error state). */
        memcpy(g->submit, rq->p + HDR_SIZE + 8, size);
        if (virgl_renderer_submit_cmd(g->submit, (int) get_le32(rq->p + 16), (int) (size / 4)) != 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static bool pending_ready(const VirtioGpu *g, const Pending *p) {
        return p->kind == PENDING_GLOBAL ? seq_reached((uint32_t) p->seq, g->fence_done) : p->ready;
}

/* Completes the held responses whose fence completed; how many chains
 * went back to g->ctrlq. Readiness only moves forward along a timeline
 * (seq order; a channel ring's oldest first), so a ready one never
 * overtakes one of its own timeline held before it; a slow timeline holds
 * back no other. */
static unsigned fences_complete(VirtioGpu *g) {
        unsigned kept = 0, pushed = 0;

        for (unsigned i = 0; i < g->n_pending; i++) {
                const Pending *p = &g->pending[i];
                uint64_t t = p->token;

                if (!pending_ready(g, p)) {
                        g->pending[kept++] = *p;
                        continue;
                }
                if ((t & TOKEN_PROCESS) && g->ctrlq) {
                        g->push->head = (uint16_t) t;
                        virtq_push(g->ctrlq, g->push, (uint32_t) (t >> 16));
                        pushed++;
                } else if (g->o.response_done) {
                        g->o.response_done(g->o.response_done_ctx, t);
                }
        }
        g->n_pending = kept;
        return pushed;
}

unsigned virtio_gpu_poll(VirtioGpu *g) {
        unsigned n = 0;

        if (!g->three_d)
                return 0;
        if (g->virgl)
                virgl_renderer_poll();
        if (fences_complete(g) > 0 && g->ctrlq)
                virtq_interrupt(g->ctrlq);
        /* Only virglrenderer's need polling: a channel ring's fence waits
         * for the compositor (virtio_gpu_fd()). */
        for (unsigned i = 0; i < g->n_pending; i++)
                n += g->pending[i].kind != PENDING_CHANNEL;
        return n;
}

int virtio_gpu_fd(const VirtioGpu *g) {
        return g->epoll_fd;
}

void virtio_gpu_dispatch(VirtioGpu *g) {
        struct epoll_event ev[16];
        int n;

        if (g->epoll_fd < 0)
                return;
        n = epoll_wait(g->epoll_fd, ev, ARRAY_SIZE(ev), 0);
        for (int i = 0; i < n; i++) {
                uint32_t ctx_id = (uint32_t) (ev[i].data.u64 >> 32);
                int k = context_index(g, ctx_id);

                /* A context destroyed since: its descriptors are closed. */
                if (ctx_id != 0 && k >= 0 && g->contexts[k].cd)
                        cross_domain_ready(g->contexts[k].cd, (uint32_t) ev[i].data.u64, ev[i].events);
        }
        if (fences_complete(g) > 0 && g->ctrlq)
                virtq_interrupt(g->ctrlq);
}

static uint32_t cmd_transfer(VirtioGpu *g, const GuestMemory *mem, const Request *rq) {
        uint32_t x, y, w, h, stride;
        uint64_t offset;
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_transfer_to_host_2d. */
        if (rq->len < HDR_SIZE + 32)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        x = get_le32(rq->p + 24);
        y = get_le32(rq->p + 28);
        w = get_le32(rq->p + 32);
        h = get_le32(rq->p + 36);
        offset = get_le64(rq->p + 40);
        r = resource_find(g, get_le32(rq->p + 48));
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* A guest blob is read where it is, at flush: nothing to copy (the
         * Linux driver still transfers its dumb buffers). A host3d blob
         * has no image here. */
        if (r->is_blob)
                return r->blob_mem == VIRTIO_GPU_BLOB_MEM_GUEST ? VIRTIO_GPU_RESP_OK_NODATA
                                                                : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* §5.7.6.7: the transfer needs backing pages attached. */
        if (!r->backing)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (!rect_inside(x, y, w, h, r->width, r->height))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (w == 0 || h == 0)
                return VIRTIO_GPU_RESP_OK_NODATA;
        /* A 3D resource (a 2D texture) is written by virglrenderer, rows
         * at its own stride (0: the resource's), as QEMU does. */
        if (r->is_3d) {
                struct virgl_box box = { .x = x, .y = y, .z = 0, .w = w, .h = h, .d = 1 };

                if (r->target != PIPE_TEXTURE_2D)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                return virgl_transfer(g, mem, r, true, 0, 0, 0, 0, &box, offset);
        }
        /* The backing holds the image with the resource's stride; offset
         * is where the rectangle's first pixel is in it. Its last byte,
         * offset + (h - 1) * stride + w * 4, must be inside the backing
         * (at most 2^64 - 1 + 2^30 + 2^16: checked for wrapping). */
        stride = r->width * BPP;
        {
                uint64_t span = (uint64_t) (h - 1) * stride + (uint64_t) w * BPP;

                if (add_overflows_u64(offset, span) || offset + span > r->backing_len)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        }
        /* Whole rows: one run of bytes in the backing and in the resource. */
        if (x == 0 && w == r->width) {
                if (backing_read(r, mem, offset, r->data + (uint64_t) y * stride, (uint64_t) h * stride) < 0)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                return VIRTIO_GPU_RESP_OK_NODATA;
        }
        for (uint32_t row = 0; row < h; row++) {
                uint8_t *dst = r->data + (uint64_t) (y + row) * stride + (uint64_t) x * BPP;

                if (backing_read(r, mem, offset + (uint64_t) row * stride, dst, (uint64_t) w * BPP) < 0)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        }
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_attach(VirtioGpu *g, const GuestMemory *mem, const Request *rq) {
        uint32_t n;
        uint64_t total = 0;
        BackingEntry *e;
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_resource_attach_backing, then
         * nr_entries struct virtio_gpu_mem_entry. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r = resource_find(g, get_le32(rq->p + 24));
        n = get_le32(rq->p + 28);
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* One backing at a time: detach first. A blob's memory is fixed
         * at its creation. */
        if (r->backing || r->is_blob)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (n == 0 || n > VIRTIO_GPU_MAX_BACKING_ENTRIES)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        /* The entries must all have come with the request. */
        if ((uint64_t) (rq->len - HDR_SIZE - 8) < (uint64_t) n * 16)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        e = calloc(n, sizeof(*e));
        if (!e)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *m = rq->p + HDR_SIZE + 8 + (size_t) i * 16;

                e[i] = (BackingEntry) { .gpa = get_le64(m), .len = get_le32(m + 8), .start = total };
                /* Each entry a non-empty range of guest RAM, not wrapping
                 * (guest_range_check refuses both). */
                if (e[i].len == 0 || guest_range_check(mem, e[i].gpa, e[i].len) < 0) {
                        free(e);
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                }
                total += e[i].len; /* at most 16384 * 2^32: no overflow */
        }
        /* The backing holds the whole image (a 3D resource's size is only
         * estimated: virglrenderer checks each transfer against it). */
        if (!r->is_3d && total < r->bytes) {
                free(e);
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        }
        r->backing = e;
        r->n_backing = n;
        r->backing_len = total;
        /* virglrenderer gets the backing too, for its contexts' own
         * transfers (iov_refresh keeps it inside guest RAM). */
        if (r->is_3d) {
                struct iovec *iov = backing_iov(r, mem);

                if (!iov || virgl_renderer_resource_attach_iov((int) r->id, iov, (int) n) != 0) {
                        free(iov);
                        free(e);
                        r->backing = NULL;
                        r->n_backing = 0;
                        r->backing_len = 0;
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                }
                r->iov = iov;
        }
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_detach(VirtioGpu *g, const Request *rq) {
        Resource *r;

        /* §5.7.6.7: struct virtio_gpu_resource_detach_backing. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r = resource_find(g, get_le32(rq->p + 24));
        if (!r)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        if (!r->backing || r->is_blob)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        iov_detach(r);
        free(r->backing);
        r->backing = NULL;
        r->n_backing = 0;
        r->backing_len = 0;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_display_info(VirtioGpu *g, uint8_t *resp) {
        /* §5.7.6.7: one pmode per scanout the device has, all enabled at
         * its preferred size; the rest zero. */
        memset(resp + HDR_SIZE, 0, sizeof(struct virtio_gpu_resp_display_info) - HDR_SIZE);
        for (unsigned s = 0; s < g->o.n_scanouts; s++) {
                uint8_t *m = resp + HDR_SIZE + s * 24;

                put_le32(m + 8, g->preferred[s][0]);
                put_le32(m + 12, g->preferred[s][1]);
                put_le32(m + 16, 1);
        }
        return VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
}

static uint32_t cmd_get_edid(VirtioGpu *g, const Request *rq, uint8_t *resp) {
        /* §5.7.6.7: struct virtio_gpu_cmd_get_edid. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (get_le32(rq->p + 24) >= g->o.n_scanouts)
                return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
        memset(resp + HDR_SIZE, 0, sizeof(struct virtio_gpu_resp_edid) - HDR_SIZE);
        put_le32(resp + HDR_SIZE, 128);
        virtio_gpu_make_edid(g->preferred[get_le32(rq->p + 24)][0], g->preferred[get_le32(rq->p + 24)][1],
                             resp + HDR_SIZE + 8);
        return VIRTIO_GPU_RESP_OK_EDID;
}

/* A cursor resource's image, read afresh (64x64, stride 256): a 2D
 * resource's host copy, as TRANSFER_TO_HOST_2D left it; a 3D texture's
 * read back from virglrenderer into its copy, as a flush reads it. NULL
 * when it cannot be shown. */
static const uint8_t *cursor_pixels(Resource *r) {
        const uint32_t side = VIRTIO_GPU_CURSOR_SIZE;
        struct virgl_box box = { .x = 0, .y = 0, .z = 0, .w = side, .h = side, .d = 1 };
        struct iovec iov;

        if (!r->is_3d)
                return r->data;
        if (r->target != PIPE_TEXTURE_2D || !format_is_valid(r->format))
                return NULL;
        if (!r->data) {
                r->data = calloc((size_t) side * side, BPP);
                if (!r->data)
                        return NULL;
        }
        iov = (struct iovec) { .iov_base = r->data, .iov_len = (size_t) side * side * BPP };
        if (virgl_renderer_transfer_read_iov(r->id, 0, 0, side * BPP, 0, &box, 0, &iov, 1) != 0)
                return NULL;
        return r->data;
}

/* Moves scanout s's cursor on the display. The guest's pos is where the
 * image's top-left goes: the Linux driver sends its cursor plane's
 * crtc_x and crtc_y (signed), which DRM defines so (X servers subtract
 * the hotspot before they move a cursor); the display takes the
 * hotspot's place. */
static void cursor_place(VirtioGpu *g, unsigned s) {
        const VirtioGpuCursor *c = &g->cursors[s];
        int64_t x = (int64_t) (int32_t) c->x + c->hot_x, y = (int64_t) (int32_t) c->y + c->hot_y;

        (void) gpu_display_move_cursor(g->display, s, (int32_t) MIN(x, (int64_t) INT32_MAX),
                                       (int32_t) MIN(y, (int64_t) INT32_MAX));
}

/* §5.7.6.9: UPDATE_CURSOR and MOVE_CURSOR have no response; a bad one is
 * ignored (the cursor stays as it was). */
static void cursor_command(VirtioGpu *g, const Request *rq) {
        uint32_t type, s, id, hot_x, hot_y;
        const uint8_t *pixels = NULL;
        VirtioGpuCursor *c;
        Resource *r = NULL;

        if (rq->len < sizeof(struct virtio_gpu_update_cursor))
                return;
        type = get_le32(rq->p);
        s = get_le32(rq->p + 24);
        if (s >= g->o.n_scanouts)
                return;
        c = &g->cursors[s];
        if (type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
                c->x = get_le32(rq->p + 28);
                c->y = get_le32(rq->p + 32);
                cursor_place(g, s);
                return;
        }
        if (type != VIRTIO_GPU_CMD_UPDATE_CURSOR)
                return;
        id = get_le32(rq->p + 40);
        hot_x = get_le32(rq->p + 44);
        hot_y = get_le32(rq->p + 48);
        /* resource_id 0 hides the cursor; otherwise a 64x64 image with
         * its hotspot inside. */
        if (id != 0) {
                r = resource_find(g, id);
                if (!r || r->width != VIRTIO_GPU_CURSOR_SIZE || r->height != VIRTIO_GPU_CURSOR_SIZE ||
                    hot_x >= VIRTIO_GPU_CURSOR_SIZE || hot_y >= VIRTIO_GPU_CURSOR_SIZE)
                        return;
                pixels = cursor_pixels(r);
                if (!pixels)
                        return;
        }
        *c = (VirtioGpuCursor) {
                .resource_id = id,
                .x = get_le32(rq->p + 28),
                .y = get_le32(rq->p + 32),
                .hot_x = hot_x,
                .hot_y = hot_y,
        };
        (void) gpu_display_set_cursor(g->display, s, pixels, r ? r->format : 0, hot_x, hot_y);
        cursor_place(g, s);
}

/* ---- blobs (VIRTIO_GPU_F_RESOURCE_BLOB) ---- */

/* A free slot in the resource table, or NULL (no memory). */
static Resource *resource_slot(VirtioGpu *g) {
        if (g->n_res == g->cap_res) {
                unsigned cap = g->cap_res ? g->cap_res * 2 : 16;
                Resource *n = realloc(g->res, cap * sizeof(*n));

                if (!n)
                        return NULL;
                g->res = n;
                g->cap_res = cap;
        }
        return &g->res[g->n_res];
}

static uint32_t cmd_create_blob(VirtioGpu *g, const GuestMemory *mem, const Request *rq) {
        uint32_t id, blob_mem, flags, n, ctx_id;
        uint64_t blob_id, size, total = 0;
        BackingEntry *e = NULL;
        CrossDomain *cd;
        Resource *r;
        int fd = -1;

        /* §5.7.6.7 (blob): struct virtio_gpu_resource_create_blob, then
         * nr_entries struct virtio_gpu_mem_entry. */
        if (rq->len < HDR_SIZE + 32)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        ctx_id = get_le32(rq->p + 16);
        id = get_le32(rq->p + 24);
        blob_mem = get_le32(rq->p + 28);
        flags = get_le32(rq->p + 32);
        n = get_le32(rq->p + 36);
        blob_id = get_le64(rq->p + 40);
        size = get_le64(rq->p + 48);
        if (id == 0 || resource_find(g, id))
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* A cross-domain host blob from a file the compositor sent has
         * that file's size (sommelier asks for it as is): its pages. */
        cd = blob_mem == VIRTIO_GPU_BLOB_MEM_HOST3D ? context_cross_domain(g, rq) : NULL;
        if (cd && size <= UINT64_MAX - VIRTIO_GPU_BLOB_PAGE)
                size = ALIGN_UP(size, (uint64_t) VIRTIO_GPU_BLOB_PAGE);
        /* Whole pages (the region maps pages), the three defined flags. */
        if (size == 0 || size % VIRTIO_GPU_BLOB_PAGE != 0 ||
            (flags & ~(uint32_t) (VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE |
                                  VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE)) != 0 ||
            n > VIRTIO_GPU_MAX_BACKING_ENTRIES)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if ((uint64_t) (rq->len - HDR_SIZE - 32) < (uint64_t) n * 16)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (g->n_res >= VIRTIO_GPU_MAX_RESOURCES)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        switch (blob_mem) {
        case VIRTIO_GPU_BLOB_MEM_GUEST:
                /* The guest's own pages, checked as ATTACH_BACKING's; kept
                 * here, never handed to virglrenderer (a context cannot
                 * use it, as a 2D resource). Takes no host memory. */
                if (n == 0)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                e = calloc(n, sizeof(*e));
                if (!e)
                        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                for (uint32_t i = 0; i < n; i++) {
                        const uint8_t *m = rq->p + HDR_SIZE + 32 + (size_t) i * 16;

                        e[i] = (BackingEntry) { .gpa = get_le64(m), .len = get_le32(m + 8), .start = total };
                        if (e[i].len == 0 || guest_range_check(mem, e[i].gpa, e[i].len) < 0) {
                                free(e);
                                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                        }
                        total += e[i].len;
                }
                if (total < size) {
                        free(e);
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                }
                break;
        case VIRTIO_GPU_BLOB_MEM_HOST3D: {
                struct virgl_renderer_resource_create_blob_args a = {
                        .res_handle = id, .ctx_id = ctx_id, .blob_mem = VIRGL_RENDERER_BLOB_MEM_HOST3D,
                        .blob_flags = flags, .blob_id = blob_id, .size = size,
                };

                /* A cross-domain context's: a memfd of ours for an image
                 * requirement or a file the compositor sent (blob_id names
                 * it); counted against max_memory. */
                if (cd) {
                        if (n != 0 || size > g->o.max_memory)
                                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                        if (size > g->o.max_memory - g->mem_used)
                                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                        if (!resource_slot(g))
                                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                        if (cross_domain_create_blob(cd, blob_id, size, &fd) < 0)
                                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                        break;
                }
                /* virglrenderer's memory, made by a context whose stream
                 * gave it blob_id; counted against max_memory. */
                if (!g->virgl || n != 0 || size > g->o.max_memory)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                if (ctx_id == 0 || context_index(g, ctx_id) < 0)
                        return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
                if (size > g->o.max_memory - g->mem_used)
                        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                if (!resource_slot(g))
                        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
                if (virgl_renderer_resource_create_blob(&a) != 0)
                        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
                break;
        }
        default:
                /* HOST3D_GUEST is not there yet; anything else undefined. */
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        }
        r = resource_slot(g);
        if (!r) {
                free(e);
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        }
        g->n_res++;
        *r = (Resource) { .fd = fd, .id = id, .is_blob = true, .blob_mem = blob_mem, .blob_flags = flags, .blob_size = size,
                          .backing = e, .n_backing = e ? n : 0, .backing_len = total,
                          .is_3d = blob_mem == VIRTIO_GPU_BLOB_MEM_HOST3D && fd < 0, .target = PIPE_BUFFER,
                          .bytes = blob_mem == VIRTIO_GPU_BLOB_MEM_HOST3D ? size : 0 };
        g->mem_used += r->bytes;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Whether [offset, offset + len) meets a mapped blob's range. */
static bool region_overlaps(const VirtioGpu *g, uint64_t offset, uint64_t len) {
        for (unsigned i = 0; i < g->n_res; i++) {
                const Resource *o = &g->res[i];

                if (o->mapped && offset < o->map_offset + o->blob_size && o->map_offset < offset + len)
                        return true;
        }
        return false;
}

static uint32_t cmd_map_blob(VirtioGpu *g, const Request *rq, uint8_t *resp) {
        uint32_t fd_type = 0, map_info = 0;
        uint64_t offset;
        Resource *r;
        int fd = -1, k;

        /* §5.7.6.7 (blob): struct virtio_gpu_resource_map_blob. */
        if (rq->len < HDR_SIZE + 16)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r = resource_find(g, get_le32(rq->p + 24));
        offset = get_le64(rq->p + 32);
        if (!r || !r->is_blob)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* Only a mappable host3d blob has host memory to map (a guest
         * blob is the guest's own already), once, at a page of the region
         * it fits in (64-bit: no wrap) and no other blob uses. */
        if (r->blob_mem != VIRTIO_GPU_BLOB_MEM_HOST3D || !(r->blob_flags & VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE) ||
            r->mapped)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (offset % VIRTIO_GPU_BLOB_PAGE != 0 || offset > g->o.host_visible_size ||
            r->blob_size > g->o.host_visible_size - offset || region_overlaps(g, offset, r->blob_size))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (!g->o.shm.map)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        if (r->fd >= 0) {
                /* A cross-domain blob: our memfd, ordinary cached memory. */
                map_info = VIRTIO_GPU_MAP_CACHE_CACHED;
                k = g->o.shm.map(g->o.shm.ctx, r->fd, offset, r->blob_size);
        } else {
                /* The front-end maps a descriptor: virglrenderer must be
                 * able to export the blob as shared memory or a dma-buf
                 * (it cannot on llvmpipe without GBM: docs/gpu.md). */
                if (virgl_renderer_resource_export_blob(r->id, &fd_type, &fd) != 0 || fd < 0)
                        return VIRTIO_GPU_RESP_ERR_UNSPEC;
                if ((fd_type != VIRGL_RENDERER_BLOB_FD_TYPE_SHM && fd_type != VIRGL_RENDERER_BLOB_FD_TYPE_DMABUF) ||
                    virgl_renderer_resource_get_map_info(r->id, &map_info) != 0) {
                        safe_close(fd);
                        return VIRTIO_GPU_RESP_ERR_UNSPEC;
                }
                k = g->o.shm.map(g->o.shm.ctx, fd, offset, r->blob_size);
                safe_close(fd);
        }
        if (k < 0)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r->mapped = true;
        r->map_offset = offset;
        /* struct virtio_gpu_resp_map_info: virglrenderer's cache values
         * are VIRTIO_GPU_MAP_CACHE_*'s. */
        memset(resp + HDR_SIZE, 0, 8);
        put_le32(resp + HDR_SIZE, map_info & VIRTIO_GPU_MAP_CACHE_MASK);
        return VIRTIO_GPU_RESP_OK_MAP_INFO;
}

static uint32_t cmd_set_scanout_blob(VirtioGpu *g, const Request *rq) {
        uint32_t x, y, w, h, s, id, fw, fh, format, stride;
        uint64_t offset, bytes;
        Resource *r;
        uint8_t *pixels;

        /* §5.7.6.7 (blob): struct virtio_gpu_set_scanout_blob: rect,
         * scanout_id, resource_id, width, height, format, padding,
         * strides[4], offsets[4]. One plane (the eight formats have one). */
        if (rq->len < HDR_SIZE + 72)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        x = get_le32(rq->p + 24);
        y = get_le32(rq->p + 28);
        w = get_le32(rq->p + 32);
        h = get_le32(rq->p + 36);
        s = get_le32(rq->p + 40);
        id = get_le32(rq->p + 44);
        fw = get_le32(rq->p + 48);
        fh = get_le32(rq->p + 52);
        format = get_le32(rq->p + 56);
        stride = get_le32(rq->p + 64);
        offset = get_le32(rq->p + 80);
        if (s >= g->o.n_scanouts)
                return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
        if (id == 0) {
                scanout_disable(g, s);
                return VIRTIO_GPU_RESP_OK_NODATA;
        }
        r = resource_find(g, id);
        if (!r || !r->is_blob)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        /* A guest blob holding the whole fb_width x fb_height image (its
         * last byte at offset + (fh - 1) * stride + fw * 4, in 64 bits);
         * the rectangle shown a non-empty part of it. */
        if (r->blob_mem != VIRTIO_GPU_BLOB_MEM_GUEST || !format_is_valid(format) || fw == 0 || fh == 0 ||
            fw > VIRTIO_GPU_MAX_DIMENSION || fh > VIRTIO_GPU_MAX_DIMENSION || stride < fw * BPP ||
            offset + (uint64_t) (fh - 1) * stride + (uint64_t) fw * BPP > r->blob_size || w == 0 || h == 0 ||
            !rect_inside(x, y, w, h, fw, fh))
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        bytes = (uint64_t) w * h * BPP;
        if (bytes > g->o.max_memory - g->mem_used + g->scanouts[s].pixels_bytes)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        pixels = calloc(1, bytes);
        if (!pixels)
                return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
        if (gpu_display_set_mode(g->display, s, w, h) < 0) {
                free(pixels);
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        }
        scanout_release(g, s);
        g->scanouts[s] = (Scanout) { .resource_id = id, .x = x, .y = y, .width = w, .height = h, .blob = true,
                                     .format = format, .stride = stride, .fb_width = fw, .fb_height = fh,
                                     .offset = offset, .pixels = pixels, .pixels_bytes = bytes };
        g->mem_used += bytes;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t cmd_unmap_blob(VirtioGpu *g, const Request *rq) {
        Resource *r;

        /* §5.7.6.7 (blob): struct virtio_gpu_resource_unmap_blob. */
        if (rq->len < HDR_SIZE + 8)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r = resource_find(g, get_le32(rq->p + 24));
        if (!r || !r->is_blob)
                return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
        if (!r->mapped)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (g->o.shm.unmap && g->o.shm.unmap(g->o.shm.ctx, r->map_offset, r->blob_size) < 0)
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        r->mapped = false;
        return VIRTIO_GPU_RESP_OK_NODATA;
}

/* The size of the success response to a request. */
static size_t response_size(const VirtioGpu *g, const Request *rq, uint32_t type) {
        const Capset *c;

        switch (type) {
        case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
                return sizeof(struct virtio_gpu_resp_display_info);
        case VIRTIO_GPU_CMD_GET_EDID:
                return sizeof(struct virtio_gpu_resp_edid);
        case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
                return g->three_d ? sizeof(struct virtio_gpu_resp_capset_info) : HDR_SIZE;
        case VIRTIO_GPU_CMD_GET_CAPSET:
                c = g->three_d ? capset_asked(g, rq) : NULL;
                return c ? HDR_SIZE + c->max_size : HDR_SIZE;
        case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
                return g->o.blob ? sizeof(struct virtio_gpu_resp_map_info) : HDR_SIZE;
        default:
                return HDR_SIZE;
        }
}

/* The 3D commands (virtio 1.2 §5.7.6.7, "3D"), on the virgl back-end. */
static uint32_t handle_3d(VirtioGpu *g, const GuestMemory *mem, uint32_t type, const Request *rq, uint8_t *resp) {
        switch (type) {
        case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
                return cmd_get_capset_info(g, rq, resp);
        case VIRTIO_GPU_CMD_GET_CAPSET:
                return cmd_get_capset(g, rq, resp);
        case VIRTIO_GPU_CMD_CTX_CREATE:
                return cmd_ctx_create(g, rq);
        case VIRTIO_GPU_CMD_CTX_DESTROY:
                return cmd_ctx_destroy(g, rq);
        case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
                return cmd_ctx_resource(g, rq, true);
        case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
                return cmd_ctx_resource(g, rq, false);
        /* virglrenderer's resources: none without it. */
        case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
                return g->virgl ? cmd_create_3d(g, rq) : VIRTIO_GPU_RESP_ERR_UNSPEC;
        case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
                return g->virgl ? cmd_transfer_3d(g, mem, rq, true) : VIRTIO_GPU_RESP_ERR_UNSPEC;
        case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
                return g->virgl ? cmd_transfer_3d(g, mem, rq, false) : VIRTIO_GPU_RESP_ERR_UNSPEC;
        case VIRTIO_GPU_CMD_SUBMIT_3D:
                return cmd_submit_3d(g, rq);
        default:
                return VIRTIO_GPU_RESP_ERR_UNSPEC;
        }
}

/* Room for one more held response (polling once to make some). */
static bool pending_room(VirtioGpu *g) {
        if (g->n_pending >= VIRTIO_GPU_MAX_PENDING && g->virgl) {
                virgl_renderer_poll();
                (void) fences_complete(g);
        }
        return g->n_pending < VIRTIO_GPU_MAX_PENDING;
}

/* A fenced response on the virgl back-end without a ring waits for a
 * fence of ours on virglrenderer's global timeline, created after the
 * command: signalled once everything submitted before has executed.
 * Fences retire in order, so holding every such response (failed ones
 * too) keeps the guest's fence order: the driver takes a fence id as
 * signalling every earlier one of its timeline. */
static bool hold(VirtioGpu *g, uint64_t token) {
        uint32_t seq;

        if (!pending_room(g))
                return false;
        seq = g->fence_seq + 1;
        if (virgl_renderer_create_fence((int) seq, 0) != 0)
                return false;
        g->fence_seq = seq;
        g->pending[g->n_pending++] = (Pending) { .seq = seq, .token = token, .kind = PENDING_GLOBAL };
        return true;
}

/* With a ring (INFO_RING_IDX), on a virgl context: the context's own
 * fence on that ring, so it waits only for that context's work. */
static bool hold_ring(VirtioGpu *g, uint32_t ctx_id, uint8_t ring, uint64_t token) {
#ifdef HAVE_VIRGL_CONTEXT_FENCE
        uint64_t seq;

        if (!pending_room(g))
                return false;
        seq = g->ring_fence_seq + 1;
        if (virgl_renderer_context_create_fence(ctx_id, 0, ring, seq) != 0)
                return hold(g, token);
        g->ring_fence_seq = seq;
        g->pending[g->n_pending++] =
                (Pending) { .seq = seq, .token = token, .ctx_id = ctx_id, .ring = ring, .kind = PENDING_RING };
        return true;
#else
        (void) ctx_id;
        (void) ring;
        return hold(g, token);
#endif
}

static bool hold_cross_domain(VirtioGpu *g, CrossDomain *cd, uint32_t ctx_id, uint64_t token) {
        if (g->n_pending >= VIRTIO_GPU_MAX_PENDING)
                return false;
        g->pending[g->n_pending++] = (Pending) { .token = token, .ctx_id = ctx_id, .ring = CROSS_DOMAIN_CHANNEL_RING,
                                                 .kind = PENDING_CHANNEL };
        /* Written at once when an event waits already (marked ready, and
         * completed by the caller's fences_complete()). */
        cross_domain_fence(cd);
        return true;
}

/* §5.7.6.6 with CONTEXT_INIT: INFO_RING_IDX puts a fence on ring_idx of
 * context ctx_id, one of its at most 64. Checked before the command runs:
 * 0 when the ring exists, else the error answered instead. A ring must
 * belong to a live context; a virgl context has virglrenderer's one ring
 * (it refuses others), a cross-domain one its query and channel rings. On
 * 2D there are no contexts (CONTEXT_INIT is not offered): the ring is only
 * echoed. */
static uint32_t fence_ring_check(VirtioGpu *g, const Request *rq, uint32_t flags) {
        uint8_t ring = rq->p[20];
        int i;

        if (!(flags & VIRTIO_GPU_FLAG_FENCE) || !(flags & VIRTIO_GPU_FLAG_INFO_RING_IDX))
                return 0;
        if (ring >= VIRTIO_GPU_MAX_RINGS)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        if (!g->three_d)
                return 0;
        i = context_index(g, get_le32(rq->p + 16));
        if (get_le32(rq->p + 16) == 0 || i < 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
        if (g->contexts[i].cd)
                return ring <= CROSS_DOMAIN_CHANNEL_RING ? 0 : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
#ifdef HAVE_VIRGL_CONTEXT_FENCE
        if (ring != 0)
                return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
#endif
        return 0;
}

void virtio_gpu_drop_held(VirtioGpu *g) {
        /* The chains were the stopped ring's; response_done tokens are
         * forgotten too: nothing is answered after a reset, nor written
         * into a channel ring for a dropped fence. */
        for (unsigned i = 0; i < g->n_contexts; i++)
                if (g->contexts[i].cd)
                        cross_domain_drop_fences(g->contexts[i].cd);
        g->n_pending = 0;
        g->ctrlq = NULL;
}

void virtio_gpu_reset(VirtioGpu *g) {
        virtio_gpu_drop_held(g);
        contexts_destroy(g);
        for (unsigned s = 0; s < g->o.n_scanouts; s++) {
                if (g->scanouts[s].resource_id != 0)
                        scanout_disable(g, s);
                /* The display keeps a cursor for a window to come. */
                if (g->cursors[s].resource_id != 0)
                        (void) gpu_display_set_cursor(g->display, s, NULL, 0, 0, 0);
                g->cursors[s] = (VirtioGpuCursor) { 0 };
        }
        resources_destroy(g);
        /* The preferred sizes stay: the host's windows keep their size,
         * and the driver that starts again reads them. A pending event
         * goes (that driver reads the display info anyway). */
        g->events_read = 0;
}

size_t virtio_gpu_handle_token(VirtioGpu *g, const GuestMemory *mem, unsigned queue, const void *req,
                               size_t req_len, void *resp_buf, size_t resp_cap, uint64_t token, bool *ret_held) {
        Request rq = { .p = req, .len = req_len };
        uint8_t *resp = resp_buf;
        uint32_t type = req_len >= 4 ? get_le32(rq.p) : 0, flags, rtype, ring_err;
        CrossDomain *cd;
        size_t need;

        *ret_held = false;
        if (mem)
                g->mem = mem;
        if (g->virgl && mem)
                iov_refresh(g, mem);
        if (queue == VIRTIO_GPU_QUEUE_CURSOR) {
                cursor_command(g, &rq);
                return 0;
        }
        if (queue != VIRTIO_GPU_QUEUE_CONTROL)
                return 0;
        /* §5.7.6.7: the device writes its response into the driver's
         * buffer; one too small for it gets nothing (never past it), and
         * the command is not executed. */
        need = req_len >= HDR_SIZE ? response_size(g, &rq, type) : HDR_SIZE;
        if (resp_cap < need)
                return 0;
        memset(resp, 0, HDR_SIZE);
        /* §5.7.6.6: every request starts with struct virtio_gpu_ctrl_hdr. */
        if (req_len < HDR_SIZE) {
                put_le32(resp, VIRTIO_GPU_RESP_ERR_UNSPEC);
                return HDR_SIZE;
        }
        flags = get_le32(rq.p + 4);
        ring_err = fence_ring_check(g, &rq, flags);
        rtype = ring_err;
        if (ring_err == 0)
                switch (type) {
                case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
                        rtype = cmd_display_info(g, resp);
                        break;
                case VIRTIO_GPU_CMD_GET_EDID:
                        rtype = cmd_get_edid(g, &rq, resp);
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
                        rtype = cmd_create_2d(g, &rq);
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_UNREF:
                        rtype = cmd_unref(g, &rq);
                        break;
                case VIRTIO_GPU_CMD_SET_SCANOUT:
                        rtype = cmd_set_scanout(g, &rq);
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
                        rtype = cmd_flush(g, mem, &rq);
                        break;
                case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
                        rtype = cmd_transfer(g, mem, &rq);
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
                        rtype = cmd_attach(g, mem, &rq);
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
                        rtype = cmd_detach(g, &rq);
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
                        rtype = g->o.blob ? cmd_create_blob(g, mem, &rq) : VIRTIO_GPU_RESP_ERR_UNSPEC;
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
                        rtype = g->o.blob ? cmd_map_blob(g, &rq, resp) : VIRTIO_GPU_RESP_ERR_UNSPEC;
                        break;
                case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
                        rtype = g->o.blob ? cmd_unmap_blob(g, &rq) : VIRTIO_GPU_RESP_ERR_UNSPEC;
                        break;
                case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
                        rtype = g->o.blob ? cmd_set_scanout_blob(g, &rq) : VIRTIO_GPU_RESP_ERR_UNSPEC;
                        break;
                default:
                        /* §5.7.6.7: a command the device does not know (3D ones
                         * included on the 2D back-end: VIRGL is not offered), or a
                         * cursor command on the control queue. */
                        rtype = g->three_d ? handle_3d(g, mem, type, &rq, resp) : VIRTIO_GPU_RESP_ERR_UNSPEC;
                        break;
                }
        put_le32(resp, rtype);
        /* §5.7.6.6: a fenced request's response carries the fence back,
         * with its ctx_id, and ring_idx when INFO_RING_IDX is set. 2D
         * completes before the response, so it is signalled now; virgl
         * holds it until the fence completes. */
        if (flags & VIRTIO_GPU_FLAG_FENCE) {
                uint32_t out = VIRTIO_GPU_FLAG_FENCE;

                memcpy(resp + 8, rq.p + 8, 8);   /* fence_id */
                memcpy(resp + 16, rq.p + 16, 4); /* ctx_id */
                if (flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) {
                        out |= VIRTIO_GPU_FLAG_INFO_RING_IDX;
                        resp[20] = rq.p[20];
                }
                put_le32(resp + 4, out);
                cd = g->three_d ? context_cross_domain(g, &rq) : NULL;
                /* A ring refused: answered now (it is no timeline). A
                 * cross-domain context's channel ring: held until an
                 * event is written there (its POLL's wait); its query
                 * ring completes now, as 2D. A virgl context's ring: that
                 * ring's fence; no ring: the global timeline. */
                if (ring_err != 0) {
                        /* answered now */
                } else if (cd && (flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) && rq.p[20] == CROSS_DOMAIN_CHANNEL_RING &&
                         rtype == VIRTIO_GPU_RESP_OK_NODATA)
                        *ret_held = hold_cross_domain(g, cd, get_le32(rq.p + 16), token);
                else if (g->virgl && !cd && (flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) &&
                         context_index(g, get_le32(rq.p + 16)) >= 0)
                        *ret_held = hold_ring(g, get_le32(rq.p + 16), rq.p[20], token);
                else if (g->virgl && !cd)
                        *ret_held = hold(g, token);
        }
        return rtype >= VIRTIO_GPU_RESP_OK_DISPLAY_INFO && rtype < VIRTIO_GPU_RESP_ERR_UNSPEC ? need : HDR_SIZE;
}

size_t virtio_gpu_handle(VirtioGpu *g, const GuestMemory *mem, unsigned queue, const void *req, size_t req_len,
                         void *resp, size_t resp_cap) {
        bool held;

        return virtio_gpu_handle_token(g, mem, queue, req, req_len, resp, resp_cap, 0, &held);
}

void virtio_gpu_process(VirtioGpu *g, VirtQueue *q, VirtioChain *c) {
        uint8_t resp[VIRTIO_GPU_MAX_RESPONSE];

        if (q->index == VIRTIO_GPU_QUEUE_CONTROL)
                g->ctrlq = q;
        while (virtq_pop(q, c) > 0) {
                size_t len = MIN(virtio_reader_remaining(&c->reader), (size_t) VIRTIO_GPU_MAX_REQUEST);
                size_t n;
                bool held;

                /* The walker checked the chain; reading len bytes cannot
                 * fail. */
                if (virtio_reader_read(&c->reader, g->req, len) < 0)
                        len = 0;
                /* The response goes into the chain now; a held one is
                 * handed back (pushed) when its fence completes. */
                n = virtio_gpu_handle_token(g, q->mem, q->index, g->req, len, resp,
                                            virtio_writer_remaining(&c->writer), 0, &held);
                if (n > 0 && virtio_writer_write(&c->writer, resp, n) < 0)
                        n = 0;
                if (held)
                        g->pending[g->n_pending - 1].token = TOKEN_PROCESS | (uint64_t) n << 16 | c->head;
                else
                        virtq_push(q, c, (uint32_t) n);
        }
        /* Fences llvmpipe already passed complete with this batch, and
         * channel events already waiting. */
        if (g->three_d) {
                if (g->virgl)
                        virgl_renderer_poll();
                (void) fences_complete(g);
        }
}
