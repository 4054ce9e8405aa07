/* SPDX-License-Identifier: BSD-3-Clause */
/* kms-pattern: a real-Linux guest check of virtio-gpu through the kernel's
 * virtio_gpu DRM driver, with plain KMS ioctls (no libdrm in the guest):
 * finds the connected connector, checks its EDID, sets its preferred mode
 * on a dumb buffer holding a known pattern, dirties one rectangle, then
 * page-flips to a second buffer and waits for the flip event. Prints
 *
 *     LINUXTEST gpu-<check> PASS|FAIL detail
 *
 * and finally "LINUXTEST gpu-shown PASS WxH" with the second buffer on
 * screen, which it keeps there for `hold` seconds (argv[1], default 20) so
 * the host can look at the window.
 *
 * The pattern (tests/integration/gpu-pattern.h draws the same on the host):
 * pixel (x, y) is XRGB8888 0x00RRGGBB with R = x & 0xff, G = y & 0xff,
 * B = 0x40 for the first buffer, 0xc0 for the second; the dirtied
 * rectangle (16, 16, 32, 8) of the first buffer is white. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm.h>
#include <drm_mode.h>

#define LINUXTEST_PREFIX "gpu-"
#include "linuxtest.h"

typedef struct Buffer {
        uint32_t handle, pitch, fb;
        uint64_t size;
        uint32_t *pixels;
} Buffer;

static int buffer_new(int fd, uint32_t w, uint32_t h, uint8_t blue, Buffer *b) {
        struct drm_mode_create_dumb create = { .width = w, .height = h, .bpp = 32 };
        struct drm_mode_map_dumb map = {};
        struct drm_mode_fb_cmd fb = {};

        if (xioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &create) < 0)
                return -errno;
        b->handle = create.handle;
        b->pitch = create.pitch;
        b->size = create.size;
        map.handle = b->handle;
        if (xioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0)
                return -errno;
        b->pixels = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t) map.offset);
        if (b->pixels == MAP_FAILED)
                return -errno;
        for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++)
                        b->pixels[y * (b->pitch / 4) + x] = (x & 0xff) << 16 | (y & 0xff) << 8 | blue;
        fb = (struct drm_mode_fb_cmd) {
                .width = w, .height = h, .pitch = b->pitch, .bpp = 32, .depth = 24, .handle = b->handle,
        };
        if (xioctl(fd, DRM_IOCTL_MODE_ADDFB, &fb) < 0)
                return -errno;
        b->fb = fb.fb_id;
        return 0;
}

/* The connector's EDID property blob: a valid base block (header, checksum). */
static void check_edid(int fd, uint32_t connector) {
        struct drm_mode_obj_get_properties props = { .obj_id = connector, .obj_type = DRM_MODE_OBJECT_CONNECTOR };
        uint32_t ids[64];
        uint64_t values[64];
        const uint8_t header[8] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };

        if (xioctl(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &props) < 0 || props.count_props > 64) {
                report("edid", 0, "GETPROPERTIES: %s", strerror(errno));
                return;
        }
        props.props_ptr = (uintptr_t) ids;
        props.prop_values_ptr = (uintptr_t) values;
        if (xioctl(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &props) < 0) {
                report("edid", 0, "GETPROPERTIES: %s", strerror(errno));
                return;
        }
        for (uint32_t i = 0; i < props.count_props; i++) {
                struct drm_mode_get_property p = { .prop_id = ids[i] };
                uint8_t edid[256];
                struct drm_mode_get_blob blob = { .blob_id = (uint32_t) values[i] };
                uint8_t sum = 0;

                if (xioctl(fd, DRM_IOCTL_MODE_GETPROPERTY, &p) < 0 || strcmp(p.name, "EDID") != 0)
                        continue;
                if (values[i] == 0) {
                        report("edid", 0, "the connector has no EDID");
                        return;
                }
                if (xioctl(fd, DRM_IOCTL_MODE_GETPROPBLOB, &blob) < 0 || blob.length < 128 ||
                    blob.length > sizeof(edid)) {
                        report("edid", 0, "EDID blob of %u bytes", blob.length);
                        return;
                }
                blob.data = (uintptr_t) edid;
                if (xioctl(fd, DRM_IOCTL_MODE_GETPROPBLOB, &blob) < 0) {
                        report("edid", 0, "GETPROPBLOB: %s", strerror(errno));
                        return;
                }
                for (int k = 0; k < 128; k++)
                        sum = (uint8_t) (sum + edid[k]);
                report("edid", memcmp(edid, header, 8) == 0 && sum == 0, "%u bytes, header %s, checksum %s",
                       blob.length, memcmp(edid, header, 8) == 0 ? "ok" : "bad", sum == 0 ? "ok" : "bad");
                return;
        }
        report("edid", 0, "no EDID property");
}

int main(int argc, char **argv) {
        uint32_t connectors[8], crtcs[8], encoders[8], fbs[8];
        struct drm_mode_card_res res = {};
        struct drm_mode_get_connector conn = {};
        struct drm_mode_modeinfo *modes;
        uint32_t n_modes;
        struct drm_mode_modeinfo mode;
        struct drm_mode_get_encoder enc = {};
        struct drm_mode_crtc crtc = {};
        struct drm_mode_fb_dirty_cmd dirty = {};
        struct drm_clip_rect clip = { .x1 = 16, .y1 = 16, .x2 = 48, .y2 = 24 };
        struct drm_mode_crtc_page_flip flip = {};
        Buffer a = {}, b = {};
        int hold = argc > 1 ? atoi(argv[1]) : 20, fd, r;
        uint32_t crtc_id = 0;
        char event[64];

        fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
        report("open", fd >= 0, "/dev/dri/card0%s%s", fd < 0 ? ": " : "", fd < 0 ? strerror(errno) : "");
        if (fd < 0)
                return 1;

        res.connector_id_ptr = (uintptr_t) connectors;
        res.crtc_id_ptr = (uintptr_t) crtcs;
        res.encoder_id_ptr = (uintptr_t) encoders;
        res.fb_id_ptr = (uintptr_t) fbs;
        res.count_connectors = res.count_crtcs = res.count_encoders = res.count_fbs = 8;
        if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0 || res.count_connectors < 1 || res.count_crtcs < 1) {
                report("resources", 0, "%s, %u connectors", strerror(errno), res.count_connectors);
                return 1;
        }
        report("resources", 1, "%u connectors, %u crtcs", res.count_connectors, res.count_crtcs);

        /* The first call, with no room for modes, probes the connector
         * (what libdrm's drmModeGetConnector does); the second fills in. */
        conn.connector_id = connectors[0];
        if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &conn) < 0) {
                report("connector", 0, "GETCONNECTOR: %s", strerror(errno));
                return 1;
        }
        n_modes = conn.count_modes;
        if (n_modes < 1 || n_modes > 512) {
                report("connector", 0, "connection %u, %u modes", conn.connection, n_modes);
                return 1;
        }
        modes = calloc(n_modes, sizeof(*modes));
        conn = (struct drm_mode_get_connector) {
                .connector_id = connectors[0],
                .modes_ptr = (uintptr_t) modes,
                .count_modes = n_modes,
        };
        if (!modes || xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &conn) < 0 || conn.connection != 1 ||
            conn.count_modes != n_modes) {
                report("connector", 0, "connection %u, %u modes", conn.connection, conn.count_modes);
                return 1;
        }
        mode = modes[0];
        for (uint32_t i = 0; i < n_modes; i++)
                if (modes[i].type & DRM_MODE_TYPE_PREFERRED) {
                        mode = modes[i];
                        break;
                }
        report("connector", 1, "connected, %u modes, preferred %ux%u", conn.count_modes, mode.hdisplay,
               mode.vdisplay);
        check_edid(fd, conn.connector_id);

        enc.encoder_id = conn.encoder_id ? conn.encoder_id : encoders[0];
        if (xioctl(fd, DRM_IOCTL_MODE_GETENCODER, &enc) == 0 && enc.crtc_id)
                crtc_id = enc.crtc_id;
        else
                crtc_id = crtcs[0];

        r = buffer_new(fd, mode.hdisplay, mode.vdisplay, 0x40, &a);
        if (r >= 0)
                r = buffer_new(fd, mode.hdisplay, mode.vdisplay, 0xc0, &b);
        report("dumb", r >= 0, "two %ux%u dumb buffers, pitch %u%s%s", mode.hdisplay, mode.vdisplay, a.pitch,
               r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
        if (r < 0)
                return 1;

        crtc.crtc_id = crtc_id;
        crtc.fb_id = a.fb;
        crtc.set_connectors_ptr = (uintptr_t) &conn.connector_id;
        crtc.count_connectors = 1;
        crtc.mode = mode;
        crtc.mode_valid = 1;
        r = xioctl(fd, DRM_IOCTL_MODE_SETCRTC, &crtc);
        report("modeset", r == 0, "crtc %u fb %u %ux%u%s%s", crtc_id, a.fb, mode.hdisplay, mode.vdisplay,
               r ? ": " : "", r ? strerror(errno) : "");
        if (r)
                return 1;

        for (int y = clip.y1; y < clip.y2; y++)
                for (int x = clip.x1; x < clip.x2; x++)
                        a.pixels[y * (a.pitch / 4) + x] = 0xffffff;
        dirty.fb_id = a.fb;
        dirty.num_clips = 1;
        dirty.clips_ptr = (uintptr_t) &clip;
        r = xioctl(fd, DRM_IOCTL_MODE_DIRTYFB, &dirty);
        report("dirty", r == 0, "one clip (16,16)-(48,24)%s%s", r ? ": " : "", r ? strerror(errno) : "");

        flip.crtc_id = crtc_id;
        flip.fb_id = b.fb;
        flip.flags = DRM_MODE_PAGE_FLIP_EVENT;
        r = xioctl(fd, DRM_IOCTL_MODE_PAGE_FLIP, &flip);
        if (r == 0) {
                /* The flip's completion comes back as an event on the fd. */
                ssize_t n = read(fd, event, sizeof(event));
                const struct drm_event *e = (const struct drm_event *) event;

                r = n >= (ssize_t) sizeof(*e) && e->type == DRM_EVENT_FLIP_COMPLETE ? 0 : -1;
                report("flip", r == 0, "page flip to fb %u, event %s", b.fb, r == 0 ? "received" : "missing");
        } else {
                report("flip", 0, "PAGE_FLIP: %s", strerror(errno));
        }

        report("shown", failures == 0, "%ux%u", mode.hdisplay, mode.vdisplay);
        sleep((unsigned) hold);
        return failures ? 1 : 0;
}
