/* SPDX-License-Identifier: BSD-3-Clause */
/* The guest's scanouts in windows on the host's Wayland compositor: one
 * xdg-shell toplevel per enabled scanout, filled from two wl_shm buffers
 * (XRGB8888) in one memfd-backed pool, or headless.
 *
 * The newest image is the last committed buffer (the front), except
 * while updates wait in a host-side shadow of the whole image. An update
 * goes straight into a buffer the compositor has released (one copy:
 * the guest's pixels, converted): that buffer is first brought up to
 * date from the front where it missed earlier updates, then committed
 * with the new damage only. While the compositor holds both buffers (no
 * wl_buffer.release yet) or before the window's first configure, updates
 * collect in the shadow and go out together at the next release, so none
 * is lost and a held buffer is never written.
 *
 * The guest's cursor is a subsurface of the window with two ARGB8888
 * buffers of its own, handled alike: its image and place are kept here
 * and the subsurface brought up to date whenever it is behind and a
 * buffer is free. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>
#include <wayland-client.h>

#include "gpu/display.h"
#include "gpu/display/display-internal.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "xdg-decoration-unstable-v1-client-protocol.h"
#include "xdg-shell-client-protocol.h"

#define MAX_DIMENSION 16384u            /* per side, as display.h says */
#define CONNECT_TIMEOUT_MS 2000         /* the one start-up round trip */
#define BYTES_PER_PIXEL 4u
#define MIN_SIDE 64u                    /* the window's min size, per side (a hint) */
#define CLAMP(v, lo, hi) ((v) < (lo) ? (lo) : (v) > (hi) ? (hi) : (v))

/* A rectangle as [x0, x1) x [y0, y1); empty when x0 >= x1. */
typedef struct Rect {
        uint32_t x0, y0, x1, y1;
} Rect;

typedef struct Scanout Scanout;

/* What a configure asks of the window (xdg_toplevel.configure): a size,
 * 0 where the compositor leaves it to the client, and the states that
 * bind the size. */
typedef struct WindowState {
        uint32_t width, height;
        bool maximized, fullscreen;
} WindowState;

#define CURSOR_SIDE GPU_DISPLAY_CURSOR_SIZE
#define CURSOR_BYTES (CURSOR_SIDE * CURSOR_SIDE * BYTES_PER_PIXEL)
/* Two images and a row: a buffer showing part of the second image
 * starts past its first byte, and wl_shm checks offset + stride * height
 * against the pool (weston: "invalid_stride"), not the last byte used. */
#define CURSOR_POOL_BYTES (2 * CURSOR_BYTES + CURSOR_SIDE * BYTES_PER_PIXEL)

/* One of the cursor's two 64 x 64 images in its pool; its wl_buffer
 * shows only the part inside the window (rect), made anew when that
 * part changes. */
typedef struct CursorBuffer {
        Scanout *scanout;
        struct wl_buffer *wl;   /* NULL: none made yet */
        Rect rect;              /* the part of the image wl covers */
        uint8_t *pixels;        /* the whole image, in the cursor pool's mapping */
        bool busy;              /* attached and not released yet */
} CursorBuffer;

typedef struct Buffer {
        Scanout *scanout;
        struct wl_buffer *wl;
        uint8_t *pixels;        /* in the pool's mapping */
        bool busy;              /* attached and not released yet */
        Rect stale;             /* where it differs from the newest image */
} Buffer;

struct Scanout {
        GpuDisplay *display;
        unsigned index;
        uint32_t width, height; /* 0 x 0: disabled */
        uint8_t *shadow;        /* XRGB8888, width * 4 bytes per row */
        Rect shadow_stale;      /* where the shadow is behind the front */
        Rect pending;           /* damage waiting in the shadow; while it is
                                 * not empty the shadow is the newest image */
        Buffer *front;          /* the last committed buffer, or NULL */

        struct wl_surface *surface;
        struct xdg_surface *xdg_surface;
        struct xdg_toplevel *toplevel;
        struct zxdg_toplevel_decoration_v1 *decoration;        /* NULL: none offered */
        bool configured;        /* the first configure was acked */
        /* The compositor's configures. A commit must obey the one acked
         * last (weston kills a client whose buffer is not a maximized
         * window's size, or is larger than a fullscreen one's), so one the
         * mode does not fit waits, not acked, until a mode fits it. */
        WindowState next;       /* the last xdg_toplevel.configure */
        WindowState acked;
        WindowState waiting;
        uint32_t waiting_serial;
        bool has_waiting;
        uint32_t asked_width, asked_height;     /* last reported size; 0 x 0: none */

        struct wl_shm_pool *pool;
        void *map;
        size_t map_size;
        Buffer buffers[2];

        /* The guest's cursor, kept while there is no window: */
        uint8_t *cursor_image;  /* ARGB8888, premultiplied; NULL: never set */
        bool cursor_shown;
        uint32_t cursor_hot_x, cursor_hot_y;
        int32_t cursor_x, cursor_y;
        bool cursor_new_image;  /* not in the committed buffer yet */
        /* and on the compositor, where there is a window: */
        struct wl_surface *cursor_surface;
        struct wl_subsurface *cursor_subsurface;
        struct wl_shm_pool *cursor_pool;
        void *cursor_map;
        CursorBuffer cursor_buffers[2];
        bool cursor_attached;   /* a buffer is committed (shown) */
        Rect cursor_clip;       /* the part of the image that buffer shows */
        bool cursor_placed;     /* the subsurface was put at cursor_left, cursor_top */
        int32_t cursor_left, cursor_top;
};

struct GpuDisplay {
        unsigned n_scanouts;
        GpuDisplayCallbacks callbacks;
        void *ctx;

        struct wl_display *display;     /* NULL: headless */
        struct wl_registry *registry;
        struct wl_compositor *compositor;
        struct wl_shm *shm;
        struct xdg_wm_base *wm_base;
        struct zxdg_decoration_manager_v1 *decoration_manager;  /* optional */
        struct wl_subcompositor *subcompositor;                 /* optional: no cursor without */

        Scanout scanouts[GPU_DISPLAY_MAX_SCANOUTS];
};

/* Whether a width x height buffer obeys st (xdg-shell): a maximized
 * window is exactly its size, a fullscreen one no larger (weston checks
 * both, killing the client otherwise); a 0 leaves that side free. */
static bool state_fits(const WindowState *st, uint32_t width, uint32_t height) {
        if (st->maximized)
                return (st->width == 0 || st->width == width) && (st->height == 0 || st->height == height);
        if (st->fullscreen)
                return (st->width == 0 || width <= st->width) && (st->height == 0 || height <= st->height);
        return true;
}

/* Whether the window may be committed now: configured, and its mode
 * fitting the configure acked last. Else updates wait in the shadow. */
static bool scanout_can_commit(const Scanout *s) {
        return s->configured && state_fits(&s->acked, s->width, s->height);
}

static bool rect_is_empty(const Rect *r) {
        return r->x0 >= r->x1 || r->y0 >= r->y1;
}

static bool rect_contains(const Rect *outer, const Rect *inner) {
        return rect_is_empty(inner) || (outer->x0 <= inner->x0 && outer->y0 <= inner->y0 &&
                                        outer->x1 >= inner->x1 && outer->y1 >= inner->y1);
}

static void rect_union(Rect *a, const Rect *b) {
        if (rect_is_empty(b))
                return;
        if (rect_is_empty(a)) {
                *a = *b;
                return;
        }
        a->x0 = MIN(a->x0, b->x0);
        a->y0 = MIN(a->y0, b->y0);
        a->x1 = MAX(a->x1, b->x1);
        a->y1 = MAX(a->y1, b->y1);
}

/* Pixel conversion. The virtio-gpu format names give the byte order in
 * memory (virtio 1.2 §5.7.6.8; Linux's virtio_gpu.h); XRGB8888 is the
 * little-endian u32 0xXXRRGGBB, bytes B, G, R, X. A scanout's alpha is
 * ignored, so the A and X variants convert alike (the cursor's is
 * kept: gpu_display_convert_cursor_row).
 *
 * The X byte written is always 0xff, never the guest's alpha or junk:
 * the protocol says a compositor ignores it, but weston 10 with pixman
 * does not everywhere (seen here: X = 0 comes back black in its
 * screenshots, X = 0x5a dimmed). So even B8G8R8X8, XRGB8888's own byte
 * order, is a copy with that byte set rather than a bare memcpy. */
#define X_BYTE 0xff000000u

static inline uint32_t load32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static inline void store32(uint8_t *p, uint32_t v) {
        memcpy(p, &v, sizeof(v));
}

int gpu_display_convert_row(uint32_t format, uint8_t *restrict dst, const uint8_t *restrict src, uint32_t n) {
        switch (format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
                /* Bytes B, G, R, A: already XRGB8888's order. */
                for (size_t i = 0; i < n; i++)
                        store32(dst + 4 * i, load32(src + 4 * i) | X_BYTE);
                return 0;
        case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
                /* Bytes A, R, G, B: reversed (shifts, not bswap, which
                 * SSE2 cannot vectorize; the A byte is replaced). */
                for (size_t i = 0; i < n; i++) {
                        uint32_t v = load32(src + 4 * i);
                        store32(dst + 4 * i, (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | X_BYTE);
                }
                return 0;
        case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
                /* Bytes R, G, B, A: swap the first and third. */
                for (size_t i = 0; i < n; i++) {
                        uint32_t v = load32(src + 4 * i);
                        store32(dst + 4 * i, (v & 0x0000ff00u) | ((v >> 16) & 0xffu) | ((v & 0xffu) << 16) | X_BYTE);
                }
                return 0;
        case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
        case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
                /* Bytes A, B, G, R: rotate by one byte. */
                for (size_t i = 0; i < n; i++) {
                        uint32_t v = load32(src + 4 * i);
                        store32(dst + 4 * i, (v >> 8) | X_BYTE);
                }
                return 0;
        default:
                return -EOPNOTSUPP;
        }
}

/* The guest's alpha is passed on as it is: Wayland's ARGB8888 is
 * premultiplied, and so is DRM's, which the Linux driver's cursor is
 * (its plane's default blend mode); nothing here multiplies again. An
 * X format's junk byte stays opaque. Apart from the scanout's loops,
 * which stay as simple as they are. */
int gpu_display_convert_cursor_row(uint32_t format, uint8_t *restrict dst, const uint8_t *restrict src,
                                   uint32_t n) {
        size_t a;       /* the guest's alpha byte in a pixel */
        int r;

        r = gpu_display_convert_row(format, dst, src, n);
        if (r < 0)
                return r;
        switch (format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
                a = 3;
                break;
        case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
                a = 0;
                break;
        default:
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                dst[4 * i + 3] = src[4 * i + a];
        return 0;
}

static bool format_is_supported(uint32_t format) {
        uint8_t in[4] = {}, out[4];
        return gpu_display_convert_row(format, out, in, 1) == 0;
}

/* Wayland objects of one scanout. */

/* A wl_shm pool of size bytes (at most INT32_MAX, wl_shm's limit) in a
 * memfd sealed against shrinking, so the compositor's mapping stays
 * valid, and mapped here at *ret_map. */
static int shm_pool_new(GpuDisplay *d, const char *name, size_t size, void **ret_map, struct wl_shm_pool **ret_pool) {
        _cleanup_close_ int fd = -EBADF;
        void *map;

        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) size) < 0)
                return -errno;
        (void) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL);
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        *ret_map = map;
        *ret_pool = wl_shm_create_pool(d->shm, fd, (int32_t) size);
        return *ret_pool ? 0 : -ENOMEM;
}

static void buffers_destroy(Scanout *s) {
        s->front = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(s->buffers); i++) {
                if (s->buffers[i].wl)
                        wl_buffer_destroy(s->buffers[i].wl);
                s->buffers[i] = (Buffer) {};
        }
        if (s->pool)
                wl_shm_pool_destroy(s->pool);
        s->pool = NULL;
        if (s->map)
                munmap(s->map, s->map_size);
        s->map = NULL;
        s->map_size = 0;
}

/* The cursor's subsurface. */

static void cursor_destroy(Scanout *s) {
        for (size_t i = 0; i < ARRAY_SIZE(s->cursor_buffers); i++) {
                if (s->cursor_buffers[i].wl)
                        wl_buffer_destroy(s->cursor_buffers[i].wl);
                s->cursor_buffers[i] = (CursorBuffer) {};
        }
        if (s->cursor_pool)
                wl_shm_pool_destroy(s->cursor_pool);
        s->cursor_pool = NULL;
        if (s->cursor_map)
                munmap(s->cursor_map, CURSOR_POOL_BYTES);
        s->cursor_map = NULL;
        if (s->cursor_subsurface)
                wl_subsurface_destroy(s->cursor_subsurface);
        s->cursor_subsurface = NULL;
        if (s->cursor_surface)
                wl_surface_destroy(s->cursor_surface);
        s->cursor_surface = NULL;
        s->cursor_attached = false;
        s->cursor_placed = false;
        s->cursor_clip = (Rect) {};
}

static void cursor_buffer_release(void *data, struct wl_buffer *wl_buffer);
static const struct wl_buffer_listener cursor_buffer_listener = {
        .release = cursor_buffer_release,
};

/* The window's cursor subsurface, hidden (no buffer yet), above the
 * window and taking no input; nothing without wl_subcompositor. */
static int cursor_create(Scanout *s) {
        GpuDisplay *d = s->display;
        struct wl_region *empty;
        int r;

        if (!d->subcompositor)
                return 0;
        s->cursor_surface = wl_compositor_create_surface(d->compositor);
        if (!s->cursor_surface)
                return -ENOMEM;
        s->cursor_subsurface = wl_subcompositor_get_subsurface(d->subcompositor, s->cursor_surface, s->surface);
        if (!s->cursor_subsurface)
                return -ENOMEM;
        /* Clicks go to the window below, never to the cursor image. */
        empty = wl_compositor_create_region(d->compositor);
        if (!empty)
                return -ENOMEM;
        wl_surface_set_input_region(s->cursor_surface, empty);
        wl_region_destroy(empty);

        r = shm_pool_new(d, "majordome-cursor", CURSOR_POOL_BYTES, &s->cursor_map, &s->cursor_pool);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ARRAY_SIZE(s->cursor_buffers); i++)
                s->cursor_buffers[i] = (CursorBuffer) {
                        .scanout = s,
                        .pixels = (uint8_t *) s->cursor_map + i * CURSOR_BYTES,
                };
        return 0;
}

/* The part of the cursor image inside the window, in the image's
 * coordinates. A subsurface is not clipped to its parent, and one
 * reaching past it would make the window's default geometry larger
 * (xdg_surface), so only that part is shown. */
static Rect cursor_visible(const Scanout *s, int64_t left, int64_t top) {
        Rect r = {
                .x0 = (uint32_t) CLAMP(-left, 0, CURSOR_SIDE),
                .y0 = (uint32_t) CLAMP(-top, 0, CURSOR_SIDE),
                .x1 = (uint32_t) CLAMP((int64_t) s->width - left, 0, CURSOR_SIDE),
                .y1 = (uint32_t) CLAMP((int64_t) s->height - top, 0, CURSOR_SIDE),
        };
        return rect_is_empty(&r) ? (Rect) {} : r;
}

static bool rect_equal(const Rect *a, const Rect *b) {
        return a->x0 == b->x0 && a->y0 == b->y0 && a->x1 == b->x1 && a->y1 == b->y1;
}

/* b's wl_buffer for part r of its image (rows of the whole image's
 * stride), made anew when it covers another part; b is not held. */
static int cursor_buffer_cover(Scanout *s, CursorBuffer *b, const Rect *r) {
        size_t offset = (size_t) (b - s->cursor_buffers) * CURSOR_BYTES +
                        ((size_t) r->y0 * CURSOR_SIDE + r->x0) * BYTES_PER_PIXEL;

        if (b->wl && rect_equal(&b->rect, r))
                return 0;
        if (b->wl)
                wl_buffer_destroy(b->wl);
        b->rect = *r;
        b->wl = wl_shm_pool_create_buffer(s->cursor_pool, (int32_t) offset, (int32_t) (r->x1 - r->x0),
                                          (int32_t) (r->y1 - r->y0), CURSOR_SIDE * BYTES_PER_PIXEL,
                                          WL_SHM_FORMAT_ARGB8888);
        if (!b->wl)
                return -ENOMEM;
        wl_buffer_add_listener(b->wl, &cursor_buffer_listener, b);
        return 0;
}

/* Brings the subsurface up to the kept cursor: a buffer when the image
 * or its visible part changed (waiting for a release when both are
 * held), its place, and a commit of the window, on which a subsurface's
 * state and place take effect (wl_subsurface: synchronized mode). Nothing
 * before the window's first configure: the window's first commit with a
 * buffer carries the cursor too. */
static void cursor_sync(Scanout *s) {
        int64_t left = (int64_t) s->cursor_x - s->cursor_hot_x, top = (int64_t) s->cursor_y - s->cursor_hot_y;
        Rect visible = cursor_visible(s, left, top);
        bool show = s->cursor_shown && !rect_is_empty(&visible), changed = false;

        if (!s->cursor_surface || !scanout_can_commit(s))
                return;
        if (show && (!s->cursor_attached || s->cursor_new_image || !rect_equal(&visible, &s->cursor_clip))) {
                CursorBuffer *b = NULL;

                for (size_t i = 0; i < ARRAY_SIZE(s->cursor_buffers) && !b; i++)
                        if (!s->cursor_buffers[i].busy)
                                b = &s->cursor_buffers[i];
                if (!b)
                        return;         /* both held: the next release brings it */
                if (cursor_buffer_cover(s, b, &visible) < 0)
                        return;
                memcpy(b->pixels, s->cursor_image, CURSOR_BYTES);
                wl_surface_attach(s->cursor_surface, b->wl, 0, 0);
                wl_surface_damage_buffer(s->cursor_surface, 0, 0, CURSOR_SIDE, CURSOR_SIDE);
                wl_surface_commit(s->cursor_surface);
                b->busy = true;
                s->cursor_attached = true;
                s->cursor_new_image = false;
                s->cursor_clip = visible;
                changed = true;
        } else if (!show && s->cursor_attached) {
                wl_surface_attach(s->cursor_surface, NULL, 0, 0);
                wl_surface_commit(s->cursor_surface);
                s->cursor_attached = false;
                s->cursor_clip = (Rect) {};
                changed = true;
        }
        /* The visible part's top-left goes to its place in the window;
         * only while shown, when it is inside the window (an int32). */
        left += s->cursor_clip.x0;
        top += s->cursor_clip.y0;
        if (show && (!s->cursor_placed || s->cursor_left != left || s->cursor_top != top)) {
                wl_subsurface_set_position(s->cursor_subsurface, (int32_t) left, (int32_t) top);
                s->cursor_placed = true;
                s->cursor_left = (int32_t) left;
                s->cursor_top = (int32_t) top;
                changed = true;
        }
        if (changed)
                wl_surface_commit(s->surface);
}

static void cursor_buffer_release(void *data, struct wl_buffer *wl_buffer) {
        CursorBuffer *b = data;

        b->busy = false;
        cursor_sync(b->scanout);
}

static void window_destroy(Scanout *s) {
        cursor_destroy(s);
        buffers_destroy(s);
        /* Before its toplevel (xdg-decoration's "orphaned" error). */
        if (s->decoration)
                zxdg_toplevel_decoration_v1_destroy(s->decoration);
        s->decoration = NULL;
        if (s->toplevel)
                xdg_toplevel_destroy(s->toplevel);
        if (s->xdg_surface)
                xdg_surface_destroy(s->xdg_surface);
        if (s->surface)
                wl_surface_destroy(s->surface);
        s->toplevel = NULL;
        s->xdg_surface = NULL;
        s->surface = NULL;
        s->configured = false;
        s->next = s->acked = s->waiting = (WindowState) {};
        s->has_waiting = false;
}

static void buffer_release(void *data, struct wl_buffer *wl_buffer);
static const struct wl_buffer_listener buffer_listener = {
        .release = buffer_release,
};

/* A pool for two buffers of the current mode. */
static int buffers_create(Scanout *s) {
        uint32_t stride = s->width * BYTES_PER_PIXEL;
        size_t buffer_size = (size_t) stride * s->height;
        int r;

        /* wl_shm_pool_create takes an int32 size: 2 x 16384 x 16384 x 4
         * does not fit, so the largest modes are refused here. */
        if (2 * buffer_size > INT32_MAX)
                return -E2BIG;

        r = shm_pool_new(s->display, "majordome-scanout", 2 * buffer_size, &s->map, &s->pool);
        if (s->map)
                s->map_size = 2 * buffer_size;
        if (r < 0)
                return r;

        for (size_t i = 0; i < ARRAY_SIZE(s->buffers); i++) {
                Buffer *b = &s->buffers[i];

                b->scanout = s;
                b->pixels = (uint8_t *) s->map + i * buffer_size;
                b->wl = wl_shm_pool_create_buffer(s->pool, (int32_t) (i * buffer_size), (int32_t) s->width,
                                                  (int32_t) s->height, (int32_t) stride, WL_SHM_FORMAT_XRGB8888);
                if (!b->wl)
                        return -ENOMEM;
                wl_buffer_add_listener(b->wl, &buffer_listener, b);
                /* Whole: pending covers the mode, and a buffer is
                 * written from the shadow before it is first shown. */
                b->stale = (Rect) {};
        }
        return 0;
}

/* Copies r of one XRGB8888 image of the mode into another. */
static void copy_rect(const Scanout *s, uint8_t *dst, const uint8_t *src, const Rect *r) {
        size_t stride = (size_t) s->width * BYTES_PER_PIXEL;

        if (rect_is_empty(r))
                return;
        for (uint32_t y = r->y0; y < r->y1; y++) {
                size_t off = y * stride + (size_t) r->x0 * BYTES_PER_PIXEL;
                memcpy(dst + off, src + off, (size_t) (r->x1 - r->x0) * BYTES_PER_PIXEL);
        }
}

/* A buffer the compositor does not hold, the front first (it needs no
 * catching up); NULL when both are held. */
static Buffer *free_buffer(Scanout *s) {
        if (s->front && !s->front->busy)
                return s->front;
        for (size_t i = 0; i < ARRAY_SIZE(s->buffers); i++)
                if (!s->buffers[i].busy)
                        return &s->buffers[i];
        return NULL;
}

/* Commits b, which now holds the newest image, with damage only. */
static void scanout_commit(Scanout *s, Buffer *b, const Rect *damage) {
        wl_surface_attach(s->surface, b->wl, 0, 0);
        wl_surface_damage_buffer(s->surface, (int32_t) damage->x0, (int32_t) damage->y0,
                                 (int32_t) (damage->x1 - damage->x0), (int32_t) (damage->y1 - damage->y0));
        wl_surface_commit(s->surface);
        b->busy = true;
        b->stale = (Rect) {};
        for (size_t i = 0; i < ARRAY_SIZE(s->buffers); i++)
                if (&s->buffers[i] != b)
                        rect_union(&s->buffers[i].stale, damage);
        s->front = b;
}

/* Sends what waits in the shadow through a free buffer, if any. */
static void scanout_present(Scanout *s) {
        Buffer *b;
        Rect copy;

        if (!scanout_can_commit(s) || !s->pool || rect_is_empty(&s->pending))
                return;
        b = free_buffer(s);
        if (!b)
                return;         /* both held: the shadow keeps the pixels until a release */

        copy = b->stale;
        rect_union(&copy, &s->pending);
        copy_rect(s, b->pixels, s->shadow, &copy);
        scanout_commit(s, b, &s->pending);
        s->pending = (Rect) {};
}

static void buffer_release(void *data, struct wl_buffer *wl_buffer) {
        Buffer *b = data;

        b->busy = false;
        scanout_present(b->scanout);
}

/* Acks a configure whose state the mode fits: commits obey it from now
 * on, and what waited for the window goes out. */
static void scanout_ack(Scanout *s, uint32_t serial, const WindowState *st) {
        xdg_surface_ack_configure(s->xdg_surface, serial);
        s->acked = *st;
        s->has_waiting = false;
        s->configured = true;
        scanout_present(s);
        cursor_sync(s);
}

/* Tells the callback of a size the compositor gave the window, once per
 * distinct size (compositors send the same configure often), and not
 * the guest's mode while nothing else was asked: a window merely shown
 * at its mode asks nothing. A size given back after another was asked
 * is told again (the guest was offered the other). */
static void scanout_report_size(Scanout *s, uint32_t width, uint32_t height) {
        GpuDisplay *d = s->display;

        width = CLAMP(width, MIN_SIDE, MAX_DIMENSION);
        height = CLAMP(height, MIN_SIDE, MAX_DIMENSION);
        if (width == s->asked_width && height == s->asked_height)
                return;
        if (s->asked_width == 0 && width == s->width && height == s->height)
                return;
        s->asked_width = width;
        s->asked_height = height;
        if (d->callbacks.resize_requested)
                d->callbacks.resize_requested(d->ctx, s->index, width, height);
}

/* xdg_surface.configure ends a configure sequence: the size is reported,
 * and the configure acked when the mode fits it, else kept waiting (an
 * older waiting one is dropped: acking a serial acks those before it). */
static void scanout_configure(Scanout *s, bool has_serial, uint32_t serial) {
        WindowState st = s->next;

        if (st.width > 0 && st.height > 0)
                scanout_report_size(s, st.width, st.height);
        if (!has_serial)
                return;
        if (state_fits(&st, s->width, s->height))
                scanout_ack(s, serial, &st);
        else {
                s->waiting = st;
                s->waiting_serial = serial;
                s->has_waiting = true;
        }
}

static void xdg_surface_configure(void *data, struct xdg_surface *xdg_surface, uint32_t serial) {
        scanout_configure(data, true, serial);
}

static const struct xdg_surface_listener xdg_surface_listener = {
        .configure = xdg_surface_configure,
};

/* Kept for the xdg_surface.configure that ends the sequence. */
static void toplevel_configure(void *data, struct xdg_toplevel *toplevel, int32_t width, int32_t height,
                               struct wl_array *states) {
        Scanout *s = data;
        const uint32_t *state;

        s->next = (WindowState) { .width = (uint32_t) MAX(width, 0), .height = (uint32_t) MAX(height, 0) };
        wl_array_for_each(state, states) {
                if (*state == XDG_TOPLEVEL_STATE_MAXIMIZED)
                        s->next.maximized = true;
                else if (*state == XDG_TOPLEVEL_STATE_FULLSCREEN)
                        s->next.fullscreen = true;
        }
}

static void toplevel_close(void *data, struct xdg_toplevel *toplevel) {
        Scanout *s = data;
        GpuDisplay *d = s->display;

        if (d->callbacks.close_requested)
                d->callbacks.close_requested(d->ctx, s->index);
}

static const struct xdg_toplevel_listener toplevel_listener = {
        .configure = toplevel_configure,
        .close = toplevel_close,
};

static int window_create(Scanout *s) {
        GpuDisplay *d = s->display;
        char title[32];

        s->surface = wl_compositor_create_surface(d->compositor);
        if (!s->surface)
                return -ENOMEM;
        s->xdg_surface = xdg_wm_base_get_xdg_surface(d->wm_base, s->surface);
        if (!s->xdg_surface)
                return -ENOMEM;
        xdg_surface_add_listener(s->xdg_surface, &xdg_surface_listener, s);
        s->toplevel = xdg_surface_get_toplevel(s->xdg_surface);
        if (!s->toplevel)
                return -ENOMEM;
        xdg_toplevel_add_listener(s->toplevel, &toplevel_listener, s);

        if (d->n_scanouts > 1)
                snprintf(title, sizeof(title), "Majordome %u", s->index);
        else
                snprintf(title, sizeof(title), "Majordome");
        xdg_toplevel_set_title(s->toplevel, title);
        /* The user may resize the window (the guest is told, and may
         * follow with a new mode); not below a sensible size. */
        xdg_toplevel_set_min_size(s->toplevel, MIN_SIDE, MIN_SIDE);
        /* The window matters more than the cursor over it. */
        if (cursor_create(s) < 0)
                cursor_destroy(s);
        xdg_toplevel_set_app_id(s->toplevel, "majordome");

        /* The close button is the compositor's to draw where it can
         * (xdg-decoration, server side: KWin, wlroots compositors); this
         * display draws none itself. Asked before the first commit, as
         * the protocol requires. */
        if (d->decoration_manager) {
                s->decoration = zxdg_decoration_manager_v1_get_toplevel_decoration(d->decoration_manager,
                                                                                   s->toplevel);
                if (s->decoration)
                        zxdg_toplevel_decoration_v1_set_mode(s->decoration,
                                                             ZXDG_TOPLEVEL_DECORATION_V1_MODE_SERVER_SIDE);
        }

        /* xdg-shell: no buffer before the first configure, which this
         * bufferless commit asks for. */
        wl_surface_commit(s->surface);
        return 0;
}

/* The compositor connection. */

static void wm_base_ping(void *data, struct xdg_wm_base *wm_base, uint32_t serial) {
        xdg_wm_base_pong(wm_base, serial);
}

static const struct xdg_wm_base_listener wm_base_listener = {
        .ping = wm_base_ping,
};

static void registry_global(void *data, struct wl_registry *registry, uint32_t name, const char *interface,
                            uint32_t version) {
        GpuDisplay *d = data;

        if (strcmp(interface, wl_compositor_interface.name) == 0 && !d->compositor)
                d->compositor = wl_registry_bind(registry, name, &wl_compositor_interface, MIN(version, 4u));
        else if (strcmp(interface, wl_shm_interface.name) == 0 && !d->shm)
                d->shm = wl_registry_bind(registry, name, &wl_shm_interface, 1);
        else if (strcmp(interface, xdg_wm_base_interface.name) == 0 && !d->wm_base) {
                d->wm_base = wl_registry_bind(registry, name, &xdg_wm_base_interface, 1);
                if (d->wm_base)
                        xdg_wm_base_add_listener(d->wm_base, &wm_base_listener, d);
        } else if (strcmp(interface, zxdg_decoration_manager_v1_interface.name) == 0 && !d->decoration_manager)
                d->decoration_manager = wl_registry_bind(registry, name, &zxdg_decoration_manager_v1_interface, 1);
        else if (strcmp(interface, wl_subcompositor_interface.name) == 0 && !d->subcompositor)
                d->subcompositor = wl_registry_bind(registry, name, &wl_subcompositor_interface, 1);
}

static void registry_global_remove(void *data, struct wl_registry *registry, uint32_t name) {
}

static const struct wl_registry_listener registry_listener = {
        .global = registry_global,
        .global_remove = registry_global_remove,
};

static void disconnect(GpuDisplay *d) {
        for (unsigned i = 0; i < d->n_scanouts; i++)
                window_destroy(&d->scanouts[i]);
        if (d->decoration_manager)
                zxdg_decoration_manager_v1_destroy(d->decoration_manager);
        d->decoration_manager = NULL;
        if (d->subcompositor)
                wl_subcompositor_destroy(d->subcompositor);
        d->subcompositor = NULL;
        if (d->wm_base)
                xdg_wm_base_destroy(d->wm_base);
        if (d->shm)
                wl_shm_destroy(d->shm);
        if (d->compositor)
                wl_compositor_destroy(d->compositor);
        if (d->registry)
                wl_registry_destroy(d->registry);
        if (d->display)
                wl_display_disconnect(d->display);
        d->wm_base = NULL;
        d->shm = NULL;
        d->compositor = NULL;
        d->registry = NULL;
        d->display = NULL;
}

static void sync_done(void *data, struct wl_callback *callback, uint32_t serial) {
        *(bool *) data = true;
}

static const struct wl_callback_listener sync_listener = {
        .done = sync_done,
};

/* wl_display_roundtrip, bounded: a compositor that accepts the
 * connection and then says nothing must not hang majordome-gpu. Each
 * poll waits at most until the deadline. -ETIMEDOUT, or -errno. */
static int roundtrip_bounded(struct wl_display *display, int timeout_ms) {
        uint64_t deadline = now_ns() + (uint64_t) timeout_ms * 1000000u;
        struct wl_callback *callback;
        bool done = false;
        int fd = wl_display_get_fd(display), r = 0;

        callback = wl_display_sync(display);
        if (!callback)
                return -ENOMEM;
        wl_callback_add_listener(callback, &sync_listener, &done);

        while (!done) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int timeout = deadline_remaining_ms(deadline);

                while (wl_display_prepare_read(display) != 0)
                        if (wl_display_dispatch_pending(display) < 0) {
                                r = -errno;
                                goto out;
                        }
                if (done) {
                        wl_display_cancel_read(display);
                        break;
                }
                if (wl_display_flush(display) < 0) {
                        if (errno != EAGAIN) {
                                r = -errno;
                                wl_display_cancel_read(display);
                                goto out;
                        }
                        p.events |= POLLOUT;
                }
                if (timeout == 0) {
                        wl_display_cancel_read(display);
                        r = -ETIMEDOUT;
                        goto out;
                }
                r = poll(&p, 1, timeout);
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        wl_display_cancel_read(display);
                        goto out;
                }
                if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
                        if (wl_display_read_events(display) < 0) {
                                r = -errno;
                                goto out;
                        }
                } else
                        wl_display_cancel_read(display);
                r = 0;
                if (wl_display_dispatch_pending(display) < 0) {
                        r = -errno;
                        goto out;
                }
        }
out:
        wl_callback_destroy(callback);
        return r < 0 ? (r == -EAGAIN ? -EIO : r) : 0;
}

static int connect_socket(int wayland_fd, const char *wayland_path, struct wl_display **ret) {
        _cleanup_close_ int fd = wayland_fd;
        struct wl_display *display;
        int r;

        if (fd < 0) {
                _cleanup_free_ char *path = NULL;

                if (wayland_path[0] != '/') {
                        /* A bare name, as WAYLAND_DISPLAY gives it. */
                        const char *dir = getenv("XDG_RUNTIME_DIR");

                        if (!dir)
                                return -ENOENT;
                        if (asprintf(&path, "%s/%s", dir, wayland_path) < 0)
                                return -ENOMEM;
                }
                r = connect_unix(path ?: wayland_path, SOCK_STREAM, &fd);
                if (r < 0)
                        return r;
        }
        display = wl_display_connect_to_fd(TAKE_FD(fd));        /* closes it on failure */
        if (!display)
                return errno > 0 ? -errno : -EIO;
        *ret = display;
        return 0;
}

/* Connects, or leaves d headless; logs which once. */
static int display_connect(GpuDisplay *d, int wayland_fd, const char *wayland_path) {
        const char *what = wayland_path ?: "the given socket";
        int r;

        if (wayland_fd < 0 && !wayland_path) {
                log_info("Display: no Wayland compositor given, running headless.");
                return 0;
        }

        r = connect_socket(wayland_fd, wayland_path, &d->display);
        if (r < 0) {
                log_warning_errno(r, "Display: cannot reach the Wayland compositor at %s, running headless: %m",
                                  what);
                return 0;
        }

        d->registry = wl_display_get_registry(d->display);
        if (!d->registry) {
                disconnect(d);
                return -ENOMEM;
        }
        wl_registry_add_listener(d->registry, &registry_listener, d);
        r = roundtrip_bounded(d->display, CONNECT_TIMEOUT_MS);
        if (r < 0) {
                log_warning_errno(r, "Display: the Wayland compositor at %s did not answer, running headless: %m",
                                  what);
                disconnect(d);
                return 0;
        }
        if (!d->compositor || !d->shm || !d->wm_base) {
                log_warning("Display: the Wayland compositor at %s lacks %s, running headless.", what,
                            !d->compositor ? "wl_compositor" : !d->shm ? "wl_shm" : "xdg_wm_base");
                disconnect(d);
                return 0;
        }
        log_info("Display: showing %u scanout%s on the Wayland compositor at %s.", d->n_scanouts,
                 d->n_scanouts > 1 ? "s" : "", what);
        if (!d->subcompositor)
                log_info("Display: the Wayland compositor at %s lacks wl_subcompositor, the guest's cursor is not shown.",
                         what);
        return 0;
}

/* The compositor went away (or broke the protocol): headless from now
 * on, said once. */
static int display_lost(GpuDisplay *d) {
        int error = d->display ? wl_display_get_error(d->display) : 0;

        if (error == 0)
                error = EPIPE;
        log_warning_errno(error, "Display: lost the Wayland compositor, running headless from now on: %m");
        disconnect(d);
        return -error;
}

/* Sends what is queued; EAGAIN (socket full) is fine: the rest goes on
 * the next call. A dead connection is torn down by the next dispatch,
 * the caller being told there (its fd reports the hang-up). */
static void display_flush(GpuDisplay *d) {
        (void) wl_display_flush(d->display);
}

static bool display_is_live(const GpuDisplay *d) {
        return d->display && wl_display_get_error(d->display) == 0;
}

int gpu_display_new(int wayland_fd, const char *wayland_path, unsigned n_scanouts,
                    const GpuDisplayCallbacks *callbacks, void *ctx, GpuDisplay **ret) {
        _cleanup_close_ int fd = wayland_fd;
        GpuDisplay *d;
        int r;

        if (!ret || n_scanouts == 0 || n_scanouts > GPU_DISPLAY_MAX_SCANOUTS)
                return -EINVAL;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->n_scanouts = n_scanouts;
        if (callbacks)
                d->callbacks = *callbacks;
        d->ctx = ctx;
        for (unsigned i = 0; i < n_scanouts; i++) {
                d->scanouts[i].display = d;
                d->scanouts[i].index = i;
        }

        r = display_connect(d, TAKE_FD(fd), wayland_path);
        if (r < 0) {
                gpu_display_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

GpuDisplay *gpu_display_free(GpuDisplay *d) {
        if (!d)
                return NULL;
        disconnect(d);
        for (unsigned i = 0; i < d->n_scanouts; i++) {
                free(d->scanouts[i].shadow);
                free(d->scanouts[i].cursor_image);
        }
        free(d);
        return NULL;
}

bool gpu_display_is_headless(const GpuDisplay *d) {
        return !d || !d->display;
}

int gpu_display_fd(const GpuDisplay *d) {
        return d && d->display ? wl_display_get_fd(d->display) : -1;
}

int gpu_display_dispatch(GpuDisplay *d) {
        struct pollfd p;

        if (!d)
                return -EINVAL;
        if (!d->display)
                return 0;
        if (wl_display_get_error(d->display) != 0)
                return display_lost(d);

        while (wl_display_prepare_read(d->display) != 0)
                if (wl_display_dispatch_pending(d->display) < 0)
                        return display_lost(d);

        /* Called when the fd polled readable, but never trusted to be:
         * a zero-timeout poll keeps the read from blocking. */
        p = (struct pollfd) { .fd = wl_display_get_fd(d->display), .events = POLLIN };
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
                if (wl_display_read_events(d->display) < 0)
                        return display_lost(d);
        } else
                wl_display_cancel_read(d->display);

        if (wl_display_dispatch_pending(d->display) < 0)
                return display_lost(d);
        if (wl_display_flush(d->display) < 0 && errno != EAGAIN)
                return display_lost(d);
        return 0;
}

int gpu_display_set_mode(GpuDisplay *d, unsigned scanout, uint32_t width, uint32_t height) {
        Scanout *s;
        uint8_t *shadow = NULL;
        int r;

        if (!d || scanout >= d->n_scanouts)
                return -EINVAL;
        if (width > MAX_DIMENSION || height > MAX_DIMENSION || (width == 0) != (height == 0))
                return -EINVAL;
        s = &d->scanouts[scanout];
        if (s->width == width && s->height == height)
                return 0;

        if (width > 0 && display_is_live(d)) {
                /* Black until the first update (display.h). */
                shadow = malloc((size_t) width * height * BYTES_PER_PIXEL);
                if (!shadow)
                        return -ENOMEM;
                for (size_t i = 0; i < (size_t) width * height; i++)
                        store32(shadow + i * BYTES_PER_PIXEL, X_BYTE);
        }
        free(s->shadow);
        s->shadow = shadow;
        s->width = width;
        s->height = height;
        s->pending = (Rect) { 0, 0, width, height };
        s->shadow_stale = (Rect) {};

        if (!display_is_live(d))
                return 0;

        if (width == 0) {
                window_destroy(s);
                display_flush(d);
                return 0;
        }

        buffers_destroy(s);
        if (!s->surface) {
                r = window_create(s);
                if (r < 0)
                        goto fail;
        }
        r = buffers_create(s);
        if (r < 0)
                goto fail;
        /* A configure that waited for this mode is acked now, before the
         * new buffer's commit. One acked earlier that the mode does not
         * fit holds commits back (updates wait in the shadow): a
         * maximized window is asked to stop being so, and the
         * compositor's next configure frees it; a fullscreen one waits
         * for a mode that fits. */
        if (s->has_waiting && state_fits(&s->waiting, width, height)) {
                WindowState st = s->waiting;

                scanout_ack(s, s->waiting_serial, &st);
        } else if (s->configured && !state_fits(&s->acked, width, height) && s->acked.maximized)
                xdg_toplevel_unset_maximized(s->toplevel);
        scanout_present(s);
        /* The cursor's visible part follows the new size. */
        cursor_sync(s);
        display_flush(d);
        return 0;

fail:
        window_destroy(s);
        free(s->shadow);
        s->shadow = NULL;
        s->width = s->height = 0;
        s->pending = (Rect) {};
        display_flush(d);
        return r;
}

/* Converts rect r of the guest's image (src, stride) into the same
 * place of dst, an XRGB8888 image of the mode. */
static void convert_rect(const Scanout *s, uint8_t *dst, const uint8_t *src, uint32_t stride, uint32_t format,
                         const Rect *r) {
        size_t dst_stride = (size_t) s->width * BYTES_PER_PIXEL;

        for (uint32_t y = r->y0; y < r->y1; y++)
                (void) gpu_display_convert_row(format, dst + y * dst_stride + (size_t) r->x0 * BYTES_PER_PIXEL,
                                               src + (size_t) y * stride + (size_t) r->x0 * BYTES_PER_PIXEL,
                                               r->x1 - r->x0);
}

int gpu_display_update(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t stride, uint32_t format,
                       uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        const uint8_t *src = pixels;
        Scanout *s;
        Buffer *b;
        Rect damage;

        if (!d || scanout >= d->n_scanouts)
                return -EINVAL;
        s = &d->scanouts[scanout];
        if (s->width == 0)
                return -EINVAL;
        if (w == 0 || h == 0 || (uint64_t) x + w > s->width || (uint64_t) y + h > s->height)
                return -EINVAL;
        if (!format_is_supported(format))
                return -EOPNOTSUPP;
        if (!pixels || (uint64_t) stride < ((uint64_t) x + w) * BYTES_PER_PIXEL)
                return -EINVAL;
        if (!display_is_live(d))
                return 0;

        damage = (Rect) { x, y, x + w, y + h };
        b = rect_is_empty(&s->pending) && scanout_can_commit(s) && s->front ? free_buffer(s) : NULL;
        if (b) {
                /* Straight into a released buffer: catch it up from the
                 * front (the newest image) where the update does not
                 * cover what it missed, then convert the update in. */
                if (b != s->front && !rect_contains(&damage, &b->stale))
                        copy_rect(s, b->pixels, s->front->pixels, &b->stale);
                convert_rect(s, b->pixels, src, stride, format, &damage);
                scanout_commit(s, b, &damage);
                rect_union(&s->shadow_stale, &damage);
        } else {
                /* Into the shadow, which first catches up with the front
                 * unless it is the newest image already (pending) or the
                 * update covers what it missed. */
                if (rect_is_empty(&s->pending) && s->front && !rect_contains(&damage, &s->shadow_stale))
                        copy_rect(s, s->shadow, s->front->pixels, &s->shadow_stale);
                s->shadow_stale = (Rect) {};
                convert_rect(s, s->shadow, src, stride, format, &damage);
                rect_union(&s->pending, &damage);
                scanout_present(s);
        }
        display_flush(d);
        return 0;
}

int gpu_display_set_cursor(GpuDisplay *d, unsigned scanout, const void *pixels, uint32_t format, uint32_t hot_x,
                           uint32_t hot_y) {
        Scanout *s;

        if (!d || scanout >= d->n_scanouts)
                return -EINVAL;
        if (pixels) {
                if (hot_x >= CURSOR_SIDE || hot_y >= CURSOR_SIDE)
                        return -EINVAL;
                if (!format_is_supported(format))
                        return -EOPNOTSUPP;
        }
        if (!display_is_live(d))
                return 0;

        s = &d->scanouts[scanout];
        if (pixels) {
                if (!s->cursor_image) {
                        s->cursor_image = malloc(CURSOR_BYTES);
                        if (!s->cursor_image)
                                return -ENOMEM;
                }
                for (uint32_t y = 0; y < CURSOR_SIDE; y++)
                        (void) gpu_display_convert_cursor_row(
                                format, s->cursor_image + (size_t) y * CURSOR_SIDE * BYTES_PER_PIXEL,
                                (const uint8_t *) pixels + (size_t) y * CURSOR_SIDE * BYTES_PER_PIXEL, CURSOR_SIDE);
                s->cursor_hot_x = hot_x;
                s->cursor_hot_y = hot_y;
                s->cursor_new_image = true;
        }
        s->cursor_shown = pixels != NULL;
        cursor_sync(s);
        display_flush(d);
        return 0;
}

int gpu_display_move_cursor(GpuDisplay *d, unsigned scanout, int32_t x, int32_t y) {
        Scanout *s;

        if (!d || scanout >= d->n_scanouts)
                return -EINVAL;
        if (!display_is_live(d))
                return 0;
        s = &d->scanouts[scanout];
        s->cursor_x = x;
        s->cursor_y = y;
        cursor_sync(s);
        display_flush(d);
        return 0;
}

void gpu_display_test_toplevel_close(GpuDisplay *d, unsigned scanout) {
        Scanout *s = &d->scanouts[scanout];

        toplevel_listener.close(s, s->toplevel);
}

void gpu_display_test_toplevel_configure(GpuDisplay *d, unsigned scanout, int32_t width, int32_t height,
                                         bool maximized, bool fullscreen) {
        Scanout *s = &d->scanouts[scanout];
        struct wl_array states;
        uint32_t *state;

        wl_array_init(&states);
        if (maximized && (state = wl_array_add(&states, sizeof(*state))))
                *state = XDG_TOPLEVEL_STATE_MAXIMIZED;
        if (fullscreen && (state = wl_array_add(&states, sizeof(*state))))
                *state = XDG_TOPLEVEL_STATE_FULLSCREEN;
        toplevel_listener.configure(s, s->toplevel, width, height, &states);
        scanout_configure(s, false, 0);
        wl_array_release(&states);
}

void gpu_display_test_set_maximized(GpuDisplay *d, unsigned scanout, bool maximized) {
        Scanout *s = &d->scanouts[scanout];

        if (maximized)
                xdg_toplevel_set_maximized(s->toplevel);
        else
                xdg_toplevel_unset_maximized(s->toplevel);
        display_flush(d);
}

void gpu_display_test_set_fullscreen(GpuDisplay *d, unsigned scanout) {
        xdg_toplevel_set_fullscreen(d->scanouts[scanout].toplevel, NULL);
        display_flush(d);
}

bool gpu_display_test_window_size(const GpuDisplay *d, unsigned scanout, uint32_t *ret_width,
                                  uint32_t *ret_height) {
        const Scanout *s = &d->scanouts[scanout];

        if (!s->surface || !s->pool)
                return false;
        *ret_width = s->width;
        *ret_height = s->height;
        return true;
}

bool gpu_display_test_frame_pending(const GpuDisplay *d, unsigned scanout) {
        return !rect_is_empty(&d->scanouts[scanout].pending);
}

const uint8_t *gpu_display_test_newest_image(const GpuDisplay *d, unsigned scanout) {
        const Scanout *s = &d->scanouts[scanout];

        if (!rect_is_empty(&s->pending))
                return s->shadow;
        return s->front ? s->front->pixels : NULL;
}
