/* SPDX-License-Identifier: BSD-3-Clause */
/* The 2D virtio-gpu device core (gpu/virtio-gpu.c) through its API, on a
 * GuestMemory, with a recording display (fake-display.c): each command's
 * response byte for byte, the pixels that reach the display, and each
 * hostile input's answer (virtio 1.2 §5.7). */
#include <gtest/gtest.h>

#include <cstring>
#include <linux/virtio_gpu.h>
#include <vector>

#include "tests/gpu/fake-display.h"
#include "gpu/virtio-gpu.h"
#include "tests/gpu/gpu-request.h"
#include "tests/virtio/harness.h"
#include "common/unaligned.h"

using harness::VirtqDriver;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint64_t BACKING = 0x100000;  /* guest RAM the resources' backing lives in */
constexpr uint64_t MEM_SIZE = 16 * MiB;
constexpr uint32_t FMT = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;

/* A request: the header, then little-endian fields as appended. */
using gpu_test::Req;

/* The 24-byte response header expected. */
Bytes hdr(uint32_t type, uint32_t flags = 0, uint64_t fence = 0, uint32_t ctx = 0, uint8_t ring = 0) {
        return Req(type, flags, fence, ctx, ring).b;
}

const Bytes OK = hdr(VIRTIO_GPU_RESP_OK_NODATA);

Bytes err(uint32_t type) {
        return hdr(type);
}

class Gpu : public ::testing::Test {
protected:
        void SetUp() override { make(2, 64, 48, 0); }
        void TearDown() override {
                virtio_gpu_free(g);
                gpu_display_free(disp);
                guest_memory_free(mem);
        }
        void make(unsigned n, uint32_t w, uint32_t h, uint64_t max_memory) {
                virtio_gpu_free(g);
                gpu_display_free(disp);
                guest_memory_free(mem);
                g = nullptr;
                ASSERT_EQ(guest_memory_new(MEM_SIZE, &mem), 0);
                ASSERT_EQ(gpu_display_new(-1, nullptr, n, nullptr, nullptr, &disp), 0);
                VirtioGpuOptions o = { n, w, h, max_memory };
                ASSERT_EQ(virtio_gpu_new(&o, disp, &g), 0);
        }

        /* Sends one control request; what came back. */
        Bytes cmd(const Bytes &req, size_t cap = VIRTIO_GPU_MAX_RESPONSE) {
                Bytes resp(cap, 0xee);
                size_t n = virtio_gpu_handle(g, mem, VIRTIO_GPU_QUEUE_CONTROL, req.data(), req.size(), resp.data(), cap);
                resp.resize(n);
                return resp;
        }
        Bytes cmd(const Req &r, size_t cap = VIRTIO_GPU_MAX_RESPONSE) { return cmd(r.b, cap); }
        void cursor(const Req &r) {
                uint8_t resp[64];
                EXPECT_EQ(virtio_gpu_handle(g, mem, VIRTIO_GPU_QUEUE_CURSOR, r.b.data(), r.b.size(), resp, sizeof(resp)), 0u);
        }

        Bytes create(uint32_t id, uint32_t w, uint32_t h, uint32_t fmt = FMT) {
                return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(id).u32(fmt).u32(w).u32(h));
        }
        Bytes attach(uint32_t id, const std::vector<std::pair<uint64_t, uint32_t>> &entries) {
                Req r(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
                r.u32(id).u32((uint32_t) entries.size());
                for (auto &e : entries)
                        r.u64(e.first).u32(e.second).u32(0);
                return cmd(r);
        }
        Bytes transfer(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t offset) {
                return cmd(Req(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D).u32(x).u32(y).u32(w).u32(h).u64(offset).u32(id).u32(0));
        }
        Bytes set_scanout(uint32_t s, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
                return cmd(Req(VIRTIO_GPU_CMD_SET_SCANOUT).u32(x).u32(y).u32(w).u32(h).u32(s).u32(id));
        }
        Bytes flush(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
                return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_FLUSH).u32(x).u32(y).u32(w).u32(h).u32(id).u32(0));
        }
        Bytes unref(uint32_t id) { return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(id).u32(0)); }
        Bytes detach(uint32_t id) { return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING).u32(id).u32(0)); }

        /* Guest pixels: (x, y) of a w-wide image at BACKING is tag|y<<8|x. */
        void fill_backing(uint32_t w, uint32_t h, uint32_t tag = 0xff000000) {
                for (uint32_t y = 0; y < h; y++)
                        for (uint32_t x = 0; x < w; x++) {
                                uint8_t p[4];
                                put_le32(p, tag | y << 8 | x);
                                ASSERT_EQ(guest_write(mem, BACKING + ((uint64_t) y * w + x) * 4, p, 4), 0);
                        }
        }
        uint32_t shown(unsigned s, uint32_t x, uint32_t y) const {
                return get_le32(disp->s[s].pixels + ((size_t) y * disp->s[s].width + x) * 4);
        }
        /* A w x h resource id with its whole backing at BACKING. */
        void resource_with_backing(uint32_t id, uint32_t w, uint32_t h) {
                ASSERT_EQ(create(id, w, h), OK);
                ASSERT_EQ(attach(id, { { BACKING, w * h * 4 } }), OK);
        }

        GuestMemory *mem = nullptr;
        GpuDisplay *disp = nullptr;
        VirtioGpu *g = nullptr;
};

/* ---- happy paths ---- */

TEST_F(Gpu, get_display_info_answers_every_scanout_enabled_at_its_size) {
        Bytes want = hdr(VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
        want.resize(sizeof(struct virtio_gpu_resp_display_info), 0);
        for (unsigned s = 0; s < 2; s++) {
                put_le32(&want[24 + s * 24 + 8], 64);
                put_le32(&want[24 + s * 24 + 12], 48);
                put_le32(&want[24 + s * 24 + 16], 1);
        }
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO)), want);
}

TEST_F(Gpu, fenced_request_gets_its_fence_ctx_and_ring_back) {
        uint32_t flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, flags, 0x1122334455667788, 7, 3).u32(1).u32(FMT).u32(4).u32(4)),
                  hdr(VIRTIO_GPU_RESP_OK_NODATA, flags, 0x1122334455667788, 7, 3));
        /* Without FENCE nothing is echoed. */
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 99, 7, 3).u32(1).u32(0)), OK);
}

TEST_F(Gpu, fenced_request_on_a_ring_past_64_is_invalid_parameter_and_not_run) {
        uint32_t flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, flags, 5, 0, 64).u32(1).u32(FMT).u32(4).u32(4)),
                  hdr(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, flags, 5, 0, 64));
        /* Not created: the id is free. */
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(1).u32(FMT).u32(4).u32(4)), OK);
}

TEST_F(Gpu, fenced_request_on_a_ring_completes_at_once_and_is_never_held) {
        uint32_t flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        bool held = true;
        Req r(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, flags, 8, 0, 1);
        r.u32(2).u32(FMT).u32(4).u32(4);
        uint8_t resp[64];
        EXPECT_EQ(virtio_gpu_handle_token(g, mem, VIRTIO_GPU_QUEUE_CONTROL, r.b.data(), r.b.size(), resp, sizeof(resp),
                                          1, &held),
                  24u);
        EXPECT_FALSE(held);
        EXPECT_EQ(virtio_gpu_poll(g), 0u);
}

TEST_F(Gpu, get_edid_answers_a_valid_edid_with_the_mode_preferred) {
        Bytes r = cmd(Req(VIRTIO_GPU_CMD_GET_EDID).u32(1).u32(0));
        ASSERT_EQ(r.size(), sizeof(struct virtio_gpu_resp_edid));
        EXPECT_EQ(Bytes(r.begin(), r.begin() + 24), hdr(VIRTIO_GPU_RESP_OK_EDID));
        EXPECT_EQ(get_le32(&r[24]), 128u);
        EXPECT_EQ(get_le32(&r[28]), 0u);
        const uint8_t *e = &r[32];
        const uint8_t header[8] = { 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
        EXPECT_EQ(memcmp(e, header, 8), 0);
        EXPECT_EQ(e[18], 1);
        EXPECT_EQ(e[19], 4);
        uint8_t sum = 0;
        for (int i = 0; i < 128; i++)
                sum = (uint8_t) (sum + e[i]);
        EXPECT_EQ(sum, 0);
        /* The first detailed timing: 64 x 48. */
        const uint8_t *d = e + 54;
        EXPECT_NE(get_le16(d), 0);
        EXPECT_EQ(d[2] | (d[4] >> 4) << 8, 64);
        EXPECT_EQ(d[5] | (d[7] >> 4) << 8, 48);
        for (size_t i = 32 + 128; i < r.size(); i++)
                ASSERT_EQ(r[i], 0) << i;
}

TEST_F(Gpu, edid_carries_large_modes_in_twelve_bits) {
        uint8_t e[128];
        virtio_gpu_make_edid(3840, 2160, e);
        EXPECT_EQ(e[54 + 2] | (e[54 + 4] >> 4) << 8, 3840);
        EXPECT_EQ(e[54 + 5] | (e[54 + 7] >> 4) << 8, 2160);
        uint8_t sum = 0;
        for (int i = 0; i < 128; i++)
                sum = (uint8_t) (sum + e[i]);
        EXPECT_EQ(sum, 0);
}

TEST_F(Gpu, create_2d_accepts_every_32_bit_format) {
        const uint32_t formats[] = { 1, 2, 3, 4, 67, 68, 121, 134 };
        uint32_t id = 1;
        for (uint32_t f : formats)
                EXPECT_EQ(create(id++, 4, 4, f), OK) << f;
        EXPECT_EQ(virtio_gpu_memory_used(g), 8u * 64);
        EXPECT_EQ(create(id, 4, 4, 5), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Gpu, create_attach_transfer_scanout_flush_shows_the_pixels) {
        fill_backing(8, 4);
        resource_with_backing(1, 8, 4);
        EXPECT_EQ(transfer(1, 0, 0, 8, 4, 0), OK);
        EXPECT_EQ(set_scanout(0, 1, 2, 1, 4, 2), OK);
        ASSERT_EQ(disp->n_calls, 1u);
        EXPECT_EQ(disp->calls[0].kind, 'm');
        EXPECT_EQ(disp->calls[0].w, 4u);
        EXPECT_EQ(disp->calls[0].h, 2u);

        EXPECT_EQ(flush(1, 0, 0, 8, 4), OK);
        ASSERT_EQ(disp->n_calls, 2u);
        const FakeDisplayCall &u = disp->calls[1];
        EXPECT_EQ(u.kind, 'u');
        EXPECT_EQ(u.scanout, 0u);
        EXPECT_EQ(u.format, FMT);
        EXPECT_EQ(u.x, 0u);
        EXPECT_EQ(u.y, 0u);
        EXPECT_EQ(u.w, 4u);
        EXPECT_EQ(u.h, 2u);
        for (uint32_t y = 0; y < 2; y++)
                for (uint32_t x = 0; x < 4; x++)
                        EXPECT_EQ(shown(0, x, y), 0xff000000 | (y + 1) << 8 | (x + 2)) << x << "," << y;
}

TEST_F(Gpu, flush_damage_is_the_rect_intersected_with_the_scanout) {
        fill_backing(8, 4);
        resource_with_backing(1, 8, 4);
        ASSERT_EQ(transfer(1, 0, 0, 8, 4, 0), OK);
        ASSERT_EQ(set_scanout(0, 1, 2, 1, 4, 2), OK);
        EXPECT_EQ(flush(1, 3, 0, 5, 2), OK);
        ASSERT_EQ(disp->n_calls, 2u);
        const FakeDisplayCall &u = disp->calls[1];
        EXPECT_EQ(u.x, 1u);
        EXPECT_EQ(u.y, 0u);
        EXPECT_EQ(u.w, 3u);
        EXPECT_EQ(u.h, 1u);
        /* A flush outside the scanout's part updates nothing. */
        EXPECT_EQ(flush(1, 0, 3, 8, 1), OK);
        EXPECT_EQ(disp->n_calls, 2u);
}

TEST_F(Gpu, flush_reaches_every_scanout_showing_the_resource) {
        resource_with_backing(1, 8, 4);
        ASSERT_EQ(set_scanout(0, 1, 0, 0, 8, 4), OK);
        ASSERT_EQ(set_scanout(1, 1, 4, 0, 4, 4), OK);
        EXPECT_EQ(flush(1, 0, 0, 8, 4), OK);
        ASSERT_EQ(disp->n_calls, 4u);
        EXPECT_EQ(disp->calls[2].scanout, 0u);
        EXPECT_EQ(disp->calls[2].w, 8u);
        EXPECT_EQ(disp->calls[3].scanout, 1u);
        EXPECT_EQ(disp->calls[3].w, 4u);
}

TEST_F(Gpu, partial_transfer_copies_only_its_rect_from_its_offset) {
        fill_backing(8, 4);
        resource_with_backing(1, 8, 4);
        /* Rows 1-2, columns 2-4, read from where they are in the backing
         * (offset = y * stride + x * 4, the stride the resource's). */
        EXPECT_EQ(transfer(1, 2, 1, 3, 2, 1 * 32 + 2 * 4), OK);
        ASSERT_EQ(set_scanout(0, 1, 0, 0, 8, 4), OK);
        ASSERT_EQ(flush(1, 0, 0, 8, 4), OK);
        for (uint32_t y = 0; y < 4; y++)
                for (uint32_t x = 0; x < 8; x++) {
                        bool in = x >= 2 && x < 5 && y >= 1 && y < 3;
                        EXPECT_EQ(shown(0, x, y), in ? 0xff000000 | y << 8 | x : 0u) << x << "," << y;
                }
}

TEST_F(Gpu, transfer_offset_is_where_the_rect_starts_in_the_backing) {
        fill_backing(8, 4);
        resource_with_backing(1, 8, 4);
        /* Offset 0 with a rect at (2, 1): the backing's first pixels land
         * there, one stride apart. */
        EXPECT_EQ(transfer(1, 2, 1, 2, 2, 0), OK);
        ASSERT_EQ(set_scanout(0, 1, 0, 0, 8, 4), OK);
        ASSERT_EQ(flush(1, 0, 0, 8, 4), OK);
        EXPECT_EQ(shown(0, 2, 1), 0xff000000u);
        EXPECT_EQ(shown(0, 3, 1), 0xff000001u);
        EXPECT_EQ(shown(0, 2, 2), 0xff000100u);
        EXPECT_EQ(shown(0, 3, 2), 0xff000101u);
}

TEST_F(Gpu, transfer_reads_across_scattered_backing_entries) {
        /* 4x2: 32 bytes, in entries of 12, 4 and 16 bytes far apart. */
        const uint64_t a = BACKING, b = BACKING + 0x10000, c = BACKING + 0x20000;
        uint8_t px[32];
        for (int i = 0; i < 8; i++)
                put_le32(px + i * 4, 0xab000000 | i);
        ASSERT_EQ(guest_write(mem, a, px, 12), 0);
        ASSERT_EQ(guest_write(mem, b, px + 12, 4), 0);
        ASSERT_EQ(guest_write(mem, c, px + 16, 16), 0);
        ASSERT_EQ(create(1, 4, 2), OK);
        ASSERT_EQ(attach(1, { { a, 12 }, { b, 4 }, { c, 16 } }), OK);
        EXPECT_EQ(transfer(1, 0, 0, 4, 2, 0), OK);
        ASSERT_EQ(set_scanout(0, 1, 0, 0, 4, 2), OK);
        ASSERT_EQ(flush(1, 0, 0, 4, 2), OK);
        for (uint32_t i = 0; i < 8; i++)
                EXPECT_EQ(shown(0, i % 4, i / 4), 0xab000000 | i);
}

TEST_F(Gpu, detach_then_transfer_is_refused_and_attach_again_works) {
        resource_with_backing(1, 4, 4);
        EXPECT_EQ(detach(1), OK);
        EXPECT_EQ(transfer(1, 0, 0, 4, 4, 0), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(detach(1), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(attach(1, { { BACKING, 64 } }), OK);
        EXPECT_EQ(transfer(1, 0, 0, 4, 4, 0), OK);
}

TEST_F(Gpu, unref_of_a_scanouts_resource_disables_the_scanout) {
        resource_with_backing(1, 8, 4);
        ASSERT_EQ(set_scanout(1, 1, 0, 0, 8, 4), OK);
        EXPECT_EQ(unref(1), OK);
        ASSERT_EQ(disp->n_calls, 2u);
        EXPECT_EQ(disp->calls[1].kind, 'm');
        EXPECT_EQ(disp->calls[1].scanout, 1u);
        EXPECT_EQ(disp->calls[1].w, 0u);
        EXPECT_EQ(disp->calls[1].h, 0u);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
        EXPECT_EQ(flush(1, 0, 0, 1, 1), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(Gpu, set_scanout_with_resource_zero_disables_it) {
        EXPECT_EQ(set_scanout(0, 0, 0, 0, 0, 0), OK);
        ASSERT_EQ(disp->n_calls, 1u);
        EXPECT_EQ(disp->calls[0].w, 0u);
}

TEST_F(Gpu, cursor_update_and_move_are_kept_per_scanout) {
        ASSERT_EQ(create(5, 64, 64), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(1).u32(10).u32(20).u32(0).u32(5).u32(3).u32(4).u32(0));
        VirtioGpuCursor c;
        virtio_gpu_get_cursor(g, 1, &c);
        EXPECT_EQ(c.resource_id, 5u);
        EXPECT_EQ(c.x, 10u);
        EXPECT_EQ(c.y, 20u);
        EXPECT_EQ(c.hot_x, 3u);
        EXPECT_EQ(c.hot_y, 4u);
        /* Scanout 0's cursor is another one: moved, still hidden. */
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(0).u32(30).u32(40).u32(0).u32(0).u32(0).u32(0).u32(0));
        virtio_gpu_get_cursor(g, 0, &c);
        EXPECT_EQ(c.resource_id, 0u);
        EXPECT_EQ(c.x, 30u);
        EXPECT_EQ(c.y, 40u);
        virtio_gpu_get_cursor(g, 1, &c);
        EXPECT_EQ(c.resource_id, 5u);
        EXPECT_EQ(c.x, 10u);
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(1).u32(50).u32(60).u32(0).u32(0).u32(0).u32(0).u32(0));
        virtio_gpu_get_cursor(g, 1, &c);
        EXPECT_EQ(c.resource_id, 5u);
        EXPECT_EQ(c.x, 50u);
        EXPECT_EQ(c.y, 60u);
        EXPECT_EQ(c.hot_x, 3u);
        /* Unref'd: the cursor is hidden. */
        ASSERT_EQ(unref(5), OK);
        virtio_gpu_get_cursor(g, 1, &c);
        EXPECT_EQ(c.resource_id, 0u);
}

/* The cursor's pixels as the guest wrote them (tag|y<<8|x), 64 x 64. */
std::vector<uint8_t> cursor_pattern(uint32_t tag) {
        std::vector<uint8_t> p(64 * 64 * 4);
        for (uint32_t y = 0; y < 64; y++)
                for (uint32_t x = 0; x < 64; x++)
                        put_le32(&p[(y * 64 + x) * 4], tag | y << 8 | x);
        return p;
}

/* pos is the image's top-left (the Linux driver's crtc_x, crtc_y); the
 * display is told where the hotspot goes. */
TEST_F(Gpu, cursor_update_gives_the_display_the_exact_image_hotspot_and_place) {
        fill_backing(64, 64, 0x80000000);
        resource_with_backing(5, 64, 64);
        ASSERT_EQ(transfer(5, 0, 0, 64, 64, 0), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(1).u32(10).u32(20).u32(0).u32(5).u32(3).u32(4).u32(0));
        ASSERT_EQ(disp->n_calls, 2u);
        EXPECT_EQ(disp->calls[0].kind, 'c');
        EXPECT_EQ(disp->calls[0].scanout, 1u);
        EXPECT_EQ(disp->calls[1].kind, 'p');
        EXPECT_EQ(disp->calls[1].scanout, 1u);
        const FakeCursor &c = disp->cursor[1];
        EXPECT_TRUE(c.shown);
        EXPECT_EQ(c.format, FMT);
        EXPECT_EQ(c.hot_x, 3u);
        EXPECT_EQ(c.hot_y, 4u);
        EXPECT_EQ(c.x, 10 + 3);
        EXPECT_EQ(c.y, 20 + 4);
        EXPECT_EQ(std::vector<uint8_t>(c.pixels, c.pixels + sizeof(c.pixels)), cursor_pattern(0x80000000));
        EXPECT_FALSE(disp->cursor[0].shown);
}

/* The Linux driver writes a new image into the same resource and sends
 * UPDATE_CURSOR again: the image is read afresh each time. */
TEST_F(Gpu, cursor_update_with_the_same_resource_shows_its_new_image) {
        fill_backing(64, 64, 0x11000000);
        resource_with_backing(5, 64, 64);
        ASSERT_EQ(transfer(5, 0, 0, 64, 64, 0), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(1).u32(2).u32(0).u32(5).u32(0).u32(0).u32(0));
        fill_backing(64, 64, 0x22000000);
        ASSERT_EQ(transfer(5, 0, 0, 64, 64, 0), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(1).u32(2).u32(0).u32(5).u32(0).u32(0).u32(0));
        const FakeCursor &c = disp->cursor[0];
        EXPECT_TRUE(c.shown);
        EXPECT_EQ(std::vector<uint8_t>(c.pixels, c.pixels + sizeof(c.pixels)), cursor_pattern(0x22000000));
}

TEST_F(Gpu, cursor_move_moves_the_display_cursor_signed) {
        ASSERT_EQ(create(5, 64, 64), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(1).u32(2).u32(0).u32(5).u32(6).u32(1).u32(0));
        disp->n_calls = 0;
        /* Left of and above the scanout: the Linux driver sends crtc_x
         * and crtc_y, which may be negative, as u32. */
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(0).u32((uint32_t) -10).u32((uint32_t) -3).u32(0).u32(0).u32(0).u32(0).u32(0));
        ASSERT_EQ(disp->n_calls, 1u);
        EXPECT_EQ(disp->calls[0].kind, 'p');
        /* MOVE_CURSOR's own hot_x, hot_y are not read: the image's. */
        EXPECT_EQ(disp->cursor[0].x, -10 + 6);
        EXPECT_EQ(disp->cursor[0].y, -3 + 1);
        EXPECT_TRUE(disp->cursor[0].shown);
        /* Past INT32_MAX with the hotspot: held there, off the scanout. */
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(0).u32(INT32_MAX).u32(INT32_MAX - 1).u32(0).u32(0).u32(0).u32(0).u32(0));
        EXPECT_EQ(disp->cursor[0].x, INT32_MAX);
        EXPECT_EQ(disp->cursor[0].y, INT32_MAX);
}

TEST_F(Gpu, cursor_resource_zero_hides_the_display_cursor) {
        ASSERT_EQ(create(5, 64, 64), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(1).u32(1).u32(2).u32(0).u32(5).u32(0).u32(0).u32(0));
        ASSERT_TRUE(disp->cursor[1].shown);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(1).u32(7).u32(8).u32(0).u32(0).u32(0).u32(0).u32(0));
        EXPECT_FALSE(disp->cursor[1].shown);
        EXPECT_EQ(disp->cursor[1].x, 7);
        EXPECT_EQ(disp->cursor[1].y, 8);
}

TEST_F(Gpu, unref_of_the_cursors_resource_hides_the_display_cursor) {
        ASSERT_EQ(create(5, 64, 64), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(1).u32(1).u32(2).u32(0).u32(5).u32(0).u32(0).u32(0));
        ASSERT_TRUE(disp->cursor[1].shown);
        ASSERT_EQ(unref(5), OK);
        EXPECT_FALSE(disp->cursor[1].shown);
}

TEST_F(Gpu, bad_cursor_commands_change_nothing_on_the_display) {
        fill_backing(64, 64, 0x33000000);
        resource_with_backing(5, 64, 64);
        ASSERT_EQ(transfer(5, 0, 0, 64, 64, 0), OK);
        ASSERT_EQ(create(6, 32, 64), OK);
        ASSERT_EQ(create(7, 64, 32), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(1).u32(2).u32(0).u32(5).u32(3).u32(4).u32(0));
        unsigned calls = disp->n_calls;
        const std::vector<uint8_t> image = cursor_pattern(0x33000000);

        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(6).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(7).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(77).u32(0).u32(0).u32(0));
        /* A hotspot outside the 64 x 64 image. */
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(5).u32(64).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(5).u32(0).u32(64).u32(0));
        /* Scanouts out of range (the device has two). */
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(2).u32(9).u32(9).u32(0).u32(5).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(2).u32(9).u32(9).u32(0).u32(0).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(UINT32_MAX).u32(9).u32(9).u32(0).u32(0).u32(0).u32(0).u32(0));
        /* Short; another command on the cursor queue. */
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(0).u32(9));
        cursor(Req(VIRTIO_GPU_CMD_RESOURCE_FLUSH).u32(0).u32(0).u32(1).u32(1).u32(5).u32(0).u32(0).u32(0));

        EXPECT_EQ(disp->n_calls, calls);
        const FakeCursor &c = disp->cursor[0];
        EXPECT_TRUE(c.shown);
        EXPECT_EQ(c.x, 1 + 3);
        EXPECT_EQ(c.y, 2 + 4);
        EXPECT_EQ(c.hot_x, 3u);
        EXPECT_EQ(c.hot_y, 4u);
        EXPECT_EQ(std::vector<uint8_t>(c.pixels, c.pixels + sizeof(c.pixels)), image);
        VirtioGpuCursor k;
        virtio_gpu_get_cursor(g, 0, &k);
        EXPECT_EQ(k.resource_id, 5u);
        EXPECT_EQ(k.x, 1u);
        EXPECT_EQ(k.hot_x, 3u);
}

TEST_F(Gpu, config_reports_scanouts_and_events_clear_clears) {
        uint8_t c[16];
        virtio_gpu_raise_display_event(g);
        virtio_gpu_config_read(g, 0, c, sizeof(c));
        EXPECT_EQ(get_le32(c), (uint32_t) VIRTIO_GPU_EVENT_DISPLAY);
        EXPECT_EQ(get_le32(c + 4), 0u);
        EXPECT_EQ(get_le32(c + 8), 2u);
        EXPECT_EQ(get_le32(c + 12), 0u);
        /* The whole configuration written back (as a vhost-user front-end
         * does), events_clear set: events_read cleared, the rest kept. */
        put_le32(c + 4, VIRTIO_GPU_EVENT_DISPLAY);
        put_le32(c + 8, 9);
        virtio_gpu_config_write(g, 0, c, sizeof(c));
        virtio_gpu_config_read(g, 0, c, sizeof(c));
        EXPECT_EQ(get_le32(c), 0u);
        EXPECT_EQ(get_le32(c + 8), 2u);
}

/* The host's window resized: scanout 1's pmode alone says the new size
 * (every other byte as before), and the display event is raised. */
TEST_F(Gpu, preferred_size_changes_that_scanouts_display_info_and_raises_the_event) {
        Bytes want = cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO));
        put_le32(&want[24 + 24 + 8], 800);
        put_le32(&want[24 + 24 + 12], 600);

        EXPECT_EQ(virtio_gpu_set_preferred_size(g, 1, 800, 600), 1);

        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO)), want);
        uint8_t c[4];
        virtio_gpu_config_read(g, 0, c, sizeof(c));
        EXPECT_EQ(get_le32(c), (uint32_t) VIRTIO_GPU_EVENT_DISPLAY);
        uint32_t w, h;
        virtio_gpu_get_preferred_size(g, 1, &w, &h);
        EXPECT_EQ(w, 800u);
        EXPECT_EQ(h, 600u);
}

TEST_F(Gpu, preferred_size_is_edids_preferred_timing_for_that_scanout_only) {
        ASSERT_EQ(virtio_gpu_set_preferred_size(g, 1, 1920, 1080), 1);

        Bytes r1 = cmd(Req(VIRTIO_GPU_CMD_GET_EDID).u32(1).u32(0));
        Bytes r0 = cmd(Req(VIRTIO_GPU_CMD_GET_EDID).u32(0).u32(0));
        uint8_t want1[128], want0[128];
        virtio_gpu_make_edid(1920, 1080, want1);
        virtio_gpu_make_edid(64, 48, want0);
        ASSERT_EQ(r1.size(), sizeof(struct virtio_gpu_resp_edid));
        ASSERT_EQ(r0.size(), sizeof(struct virtio_gpu_resp_edid));
        EXPECT_EQ(memcmp(&r1[32], want1, 128), 0);
        EXPECT_EQ(memcmp(&r0[32], want0, 128), 0);
        const uint8_t *d = &r1[32 + 54];
        EXPECT_EQ(d[2] | (d[4] >> 4) << 8, 1920);
        EXPECT_EQ(d[5] | (d[7] >> 4) << 8, 1080);
}

/* The driver re-reads the display info, then clears the event. The same
 * size again changes nothing and raises nothing. */
TEST_F(Gpu, events_clear_clears_the_display_event_and_the_same_size_raises_none) {
        ASSERT_EQ(virtio_gpu_set_preferred_size(g, 0, 640, 480), 1);
        uint8_t c[8] = {};
        put_le32(c + 4, VIRTIO_GPU_EVENT_DISPLAY);
        virtio_gpu_config_write(g, 0, c, sizeof(c));
        virtio_gpu_config_read(g, 0, c, 4);
        EXPECT_EQ(get_le32(c), 0u);

        EXPECT_EQ(virtio_gpu_set_preferred_size(g, 0, 640, 480), 0);

        virtio_gpu_config_read(g, 0, c, 4);
        EXPECT_EQ(get_le32(c), 0u);
}

TEST_F(Gpu, bad_preferred_sizes_are_refused_and_change_nothing) {
        Bytes info = cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO));
        const uint32_t bad[][3] = {
                { 2, 800, 600 }, { 16, 800, 600 }, { 0, 0, 600 }, { 0, 800, 0 },
                { 0, VIRTIO_GPU_MAX_DIMENSION + 1, 600 }, { 1, 800, VIRTIO_GPU_MAX_DIMENSION + 1 },
        };
        for (auto &b : bad)
                EXPECT_EQ(virtio_gpu_set_preferred_size(g, b[0], b[1], b[2]), -EINVAL) << b[0] << " " << b[1] << "x" << b[2];

        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO)), info);
        uint8_t c[4];
        virtio_gpu_config_read(g, 0, c, sizeof(c));
        EXPECT_EQ(get_le32(c), 0u);
        /* The largest size is fine. */
        EXPECT_EQ(virtio_gpu_set_preferred_size(g, 1, VIRTIO_GPU_MAX_DIMENSION, VIRTIO_GPU_MAX_DIMENSION), 1);
}

/* The window keeps its size across a reset: the new driver is offered
 * it (with no event pending: it reads the display info anyway). */
TEST_F(Gpu, reset_keeps_the_preferred_sizes) {
        ASSERT_EQ(virtio_gpu_set_preferred_size(g, 1, 800, 600), 1);
        Bytes info = cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO));

        virtio_gpu_reset(g);

        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO)), info);
        EXPECT_EQ(get_le32(&info[24 + 24 + 8]), 800u);
        uint8_t c[4];
        virtio_gpu_config_read(g, 0, c, sizeof(c));
        EXPECT_EQ(get_le32(c), 0u);
}

/* A reset leaves a device like a new one: the scanouts' windows close,
 * every resource goes (its ids free again, its memory given back), and
 * the cursor and pending events are forgotten. */
TEST_F(Gpu, reset_drops_resources_scanouts_cursor_and_events) {
        fill_backing(8, 4);
        resource_with_backing(1, 8, 4);
        ASSERT_EQ(create(2, 64, 64), OK);
        ASSERT_EQ(transfer(1, 0, 0, 8, 4, 0), OK);
        ASSERT_EQ(set_scanout(0, 1, 0, 0, 8, 4), OK);
        ASSERT_EQ(set_scanout(1, 1, 0, 0, 4, 4), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(1).u32(2).u32(0).u32(2).u32(0).u32(0).u32(0));
        virtio_gpu_raise_display_event(g);
        ASSERT_GT(virtio_gpu_memory_used(g), 0u);
        unsigned calls = disp->n_calls;

        virtio_gpu_reset(g);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
        /* Scanout 0's window closes and its cursor is hidden (the display
         * would keep it for the next window); scanout 1's window closes. */
        ASSERT_EQ(disp->n_calls, calls + 3);
        const char kinds[] = { 'm', 'c', 'm' };
        const unsigned scanouts[] = { 0, 0, 1 };
        for (unsigned i = 0; i < 3; i++) {
                const FakeDisplayCall &k = disp->calls[calls + i];
                EXPECT_EQ(k.kind, kinds[i]) << i;
                EXPECT_EQ(k.scanout, scanouts[i]) << i;
                EXPECT_EQ(k.w, 0u) << i;
        }
        VirtioGpuCursor c;
        virtio_gpu_get_cursor(g, 0, &c);
        EXPECT_EQ(c.resource_id, 0u);
        uint8_t cfg[4];
        virtio_gpu_config_read(g, 0, cfg, sizeof(cfg));
        EXPECT_EQ(get_le32(cfg), 0u);
        /* The old ids are gone, and free for the driver to use again. */
        EXPECT_EQ(flush(1, 0, 0, 8, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        EXPECT_EQ(unref(2), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        resource_with_backing(1, 8, 4);
        EXPECT_EQ(transfer(1, 0, 0, 8, 4, 0), OK);
        EXPECT_EQ(set_scanout(0, 1, 0, 0, 8, 4), OK);
        EXPECT_EQ(flush(1, 0, 0, 8, 4), OK);
        EXPECT_EQ(shown(0, 3, 2), 0xff000000u | 2 << 8 | 3);
        /* A second reset of an idle device is harmless. */
        virtio_gpu_reset(g);
        virtio_gpu_reset(g);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

/* ---- hostile input ---- */

TEST_F(Gpu, unknown_command_is_err_unspec) {
        EXPECT_EQ(cmd(Req(0x0999)), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_CTX_CREATE).u32(0).u32(0)), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_MOVE_CURSOR)), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(Gpu, short_header_is_err_unspec) {
        Bytes req = Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO, VIRTIO_GPU_FLAG_FENCE, 5).b;
        req.resize(23);
        EXPECT_EQ(cmd(req), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Bytes()), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(Gpu, short_request_is_err_unspec_and_does_nothing) {
        Bytes req = Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(1).u32(FMT).u32(4).u32(4).b;
        req.pop_back();
        EXPECT_EQ(cmd(req), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
        const uint32_t types[] = { VIRTIO_GPU_CMD_RESOURCE_UNREF, VIRTIO_GPU_CMD_SET_SCANOUT, VIRTIO_GPU_CMD_RESOURCE_FLUSH,
                                   VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
                                   VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, VIRTIO_GPU_CMD_GET_EDID };
        for (uint32_t t : types)
                EXPECT_EQ(cmd(Req(t).u32(1)), err(VIRTIO_GPU_RESP_ERR_UNSPEC)) << t;
}

TEST_F(Gpu, response_buffer_too_small_gets_nothing_and_runs_nothing) {
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(1).u32(FMT).u32(4).u32(4), 23).size(), 0u);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO), sizeof(struct virtio_gpu_resp_display_info) - 1).size(), 0u);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_EDID).u32(0).u32(0), sizeof(struct virtio_gpu_resp_edid) - 1).size(), 0u);
        EXPECT_EQ(cmd(Bytes(3, 0), 0).size(), 0u);
}

TEST_F(Gpu, resource_id_zero_is_refused) {
        EXPECT_EQ(create(0, 4, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        EXPECT_EQ(unref(0), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(Gpu, resource_id_reused_is_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        EXPECT_EQ(create(1, 8, 8), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        EXPECT_EQ(virtio_gpu_memory_used(g), 64u);
}

TEST_F(Gpu, resource_never_created_is_refused_by_every_command) {
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
        EXPECT_EQ(unref(7), bad);
        EXPECT_EQ(attach(7, { { BACKING, 64 } }), bad);
        EXPECT_EQ(detach(7), bad);
        EXPECT_EQ(transfer(7, 0, 0, 1, 1, 0), bad);
        EXPECT_EQ(set_scanout(0, 7, 0, 0, 1, 1), bad);
        EXPECT_EQ(flush(7, 0, 0, 1, 1), bad);
}

TEST_F(Gpu, width_or_height_zero_is_refused) {
        EXPECT_EQ(create(1, 0, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(create(1, 4, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Gpu, huge_width_or_height_is_refused) {
        EXPECT_EQ(create(1, 16385, 1), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(create(1, 1, 0xffffffff), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        /* 0x40000000 * 4 wraps u32 to 0: refused, not a zero-byte resource. */
        EXPECT_EQ(create(1, 0x40000000, 1), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        /* Within the sides' limit but past the memory cap on its own. */
        EXPECT_EQ(create(1, 16384, 16384), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(Gpu, memory_cap_exceeded_then_freed_and_ok_again) {
        make(1, 64, 48, 1 * MiB);
        ASSERT_EQ(create(1, 256, 512), OK); /* 512 KiB */
        ASSERT_EQ(create(2, 256, 256), OK); /* 256 KiB */
        EXPECT_EQ(create(3, 256, 512), err(VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY));
        ASSERT_EQ(unref(1), OK);
        EXPECT_EQ(create(3, 256, 512), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 768 * KiB);
}

TEST_F(Gpu, transfer_rect_outside_the_resource_is_refused) {
        resource_with_backing(1, 8, 4);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(transfer(1, 0, 0, 9, 4, 0), bad);
        EXPECT_EQ(transfer(1, 0, 0, 8, 5, 0), bad);
        EXPECT_EQ(transfer(1, 8, 0, 1, 1, 0), bad);
        EXPECT_EQ(transfer(1, 0, 4, 1, 1, 0), bad);
}

TEST_F(Gpu, transfer_rect_overflowing_u32_is_refused) {
        resource_with_backing(1, 8, 4);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(transfer(1, 0xffffffff, 0, 2, 1, 0), bad);
        EXPECT_EQ(transfer(1, 0, 0xfffffffe, 1, 3, 0), bad);
        EXPECT_EQ(transfer(1, 4, 0, 0xfffffffd, 1, 0), bad);
}

TEST_F(Gpu, transfer_offset_past_backing_is_refused) {
        resource_with_backing(1, 8, 4);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(transfer(1, 0, 0, 1, 1, 128), bad);
        EXPECT_EQ(transfer(1, 0, 0, 8, 4, 4), bad);
        EXPECT_EQ(transfer(1, 0, 0, 1, 1, UINT64_MAX - 2), bad);
        EXPECT_EQ(transfer(1, 0, 0, 1, 1, 124), OK);
}

TEST_F(Gpu, backing_entry_outside_ram_is_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        EXPECT_EQ(attach(1, { { MEM_SIZE - 32, 64 } }), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(attach(1, { { 0x200000000, 64 } }), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(attach(1, { { BACKING, 64 } }), OK);
}

TEST_F(Gpu, backing_entry_wrapping_is_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        EXPECT_EQ(attach(1, { { UINT64_MAX - 15, 64 } }), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Gpu, backing_entry_of_zero_length_is_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        EXPECT_EQ(attach(1, { { BACKING, 64 }, { BACKING + 0x1000, 0 } }), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Gpu, too_many_backing_entries_are_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        Bytes req = Req(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING).u32(1).u32(VIRTIO_GPU_MAX_BACKING_ENTRIES + 1).b;
        req.resize(req.size() + (VIRTIO_GPU_MAX_BACKING_ENTRIES + 1) * 16, 0);
        EXPECT_EQ(cmd(req), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        /* nr_entries larger than what came with the request. */
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING).u32(1).u32(2).u64(BACKING).u32(64).u32(0)),
                  err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING).u32(1).u32(0)), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Gpu, backing_too_short_in_total_is_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        EXPECT_EQ(attach(1, { { BACKING, 32 }, { BACKING + 0x1000, 31 } }), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(transfer(1, 0, 0, 1, 1, 0), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(Gpu, attach_twice_without_detach_is_refused) {
        resource_with_backing(1, 4, 4);
        EXPECT_EQ(attach(1, { { BACKING, 64 } }), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(Gpu, scanout_id_out_of_range_is_refused) {
        ASSERT_EQ(create(1, 4, 4), OK);
        EXPECT_EQ(set_scanout(2, 1, 0, 0, 4, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID));
        EXPECT_EQ(set_scanout(0xffffffff, 0, 0, 0, 0, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_EDID).u32(2).u32(0)), err(VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID));
        EXPECT_EQ(disp->n_calls, 0u);
}

TEST_F(Gpu, scanout_rect_outside_or_empty_is_refused) {
        ASSERT_EQ(create(1, 8, 4), OK);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(set_scanout(0, 1, 1, 0, 8, 4), bad);
        EXPECT_EQ(set_scanout(0, 1, 0, 0, 0, 4), bad);
        EXPECT_EQ(set_scanout(0, 1, 0xfffffff0, 0, 0x20, 4), bad);
        EXPECT_EQ(disp->n_calls, 0u);
}

TEST_F(Gpu, flush_rect_outside_is_refused) {
        ASSERT_EQ(create(1, 8, 4), OK);
        ASSERT_EQ(set_scanout(0, 1, 0, 0, 8, 4), OK);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(flush(1, 0, 0, 9, 4), bad);
        EXPECT_EQ(flush(1, 0xffffffff, 0, 2, 1), bad);
        EXPECT_EQ(disp->n_calls, 1u);
}

TEST_F(Gpu, cursor_of_the_wrong_size_is_ignored) {
        ASSERT_EQ(create(5, 64, 64), OK);
        ASSERT_EQ(create(6, 32, 64), OK);
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(1).u32(2).u32(0).u32(5).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(6).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_UPDATE_CURSOR).u32(0).u32(9).u32(9).u32(0).u32(77).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(2).u32(9).u32(9).u32(0).u32(0).u32(0).u32(0).u32(0));
        cursor(Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(0).u32(9)); /* short */
        VirtioGpuCursor c;
        virtio_gpu_get_cursor(g, 0, &c);
        EXPECT_EQ(c.resource_id, 5u);
        EXPECT_EQ(c.x, 1u);
        EXPECT_EQ(c.y, 2u);
}

/* ---- through the control queue ---- */

constexpr uint64_t RING = 0x10000;
constexpr uint64_t REQ = 0x200000;
constexpr uint64_t RESP = 0x300000;

class GpuQueue : public Gpu {
protected:
        void SetUp() override {
                Gpu::SetUp();
                drv = new VirtqDriver(mem, RING, 16);
                q.max_size = 256;
                q.kick_fd = -1;
                q.index = VIRTIO_GPU_QUEUE_CONTROL;
                virtq_reset(&q);
                drv->program(&q);
                ASSERT_EQ(virtq_enable(&q, mem, false, true), 0);
        }
        void TearDown() override {
                delete drv;
                delete chain;
                Gpu::TearDown();
        }
        VirtqDriver *drv = nullptr;
        VirtQueue q{};
        VirtioChain *chain = new VirtioChain;
};

TEST_F(GpuQueue, control_queue_answers_a_good_chain) {
        Bytes req = Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, VIRTIO_GPU_FLAG_FENCE, 42).u32(1).u32(FMT).u32(4).u32(4).b;
        /* The request split over two descriptors. */
        ASSERT_EQ(guest_write(mem, REQ, req.data(), 24), 0);
        ASSERT_EQ(guest_write(mem, REQ + 0x1000, req.data() + 24, req.size() - 24), 0);
        uint16_t head = drv->add_chain({ { REQ, 24, false }, { REQ + 0x1000, (uint32_t) req.size() - 24, false },
                                         { RESP, 64, true } });
        virtio_gpu_process(g, &q, chain);
        ASSERT_EQ(drv->used_idx(), 1);
        EXPECT_EQ(drv->used(0).id, head);
        EXPECT_EQ(drv->used(0).len, 24u);
        Bytes got(24);
        ASSERT_EQ(guest_read(mem, RESP, got.data(), 24), 0);
        EXPECT_EQ(got, hdr(VIRTIO_GPU_RESP_OK_NODATA, VIRTIO_GPU_FLAG_FENCE, 42));
        EXPECT_EQ(virtio_gpu_memory_used(g), 64u);
}

TEST_F(GpuQueue, chain_without_room_for_the_response_comes_back_empty) {
        Bytes req = Req(VIRTIO_GPU_CMD_GET_DISPLAY_INFO).b;
        ASSERT_EQ(guest_write(mem, REQ, req.data(), req.size()), 0);
        ASSERT_EQ(guest_write(mem, RESP, "\x5a\x5a\x5a\x5a", 4), 0);
        drv->add_chain({ { REQ, 24, false }, { RESP, 100, true } });
        drv->add_chain({ { REQ, 24, false } });
        virtio_gpu_process(g, &q, chain);
        ASSERT_EQ(drv->used_idx(), 2);
        EXPECT_EQ(drv->used(0).len, 0u);
        EXPECT_EQ(drv->used(1).len, 0u);
        uint8_t b[4];
        ASSERT_EQ(guest_read(mem, RESP, b, 4), 0);
        EXPECT_EQ(memcmp(b, "\x5a\x5a\x5a\x5a", 4), 0);
        EXPECT_FALSE(q.broken);
}

TEST_F(GpuQueue, malformed_chain_breaks_the_queue_and_the_device_survives) {
        /* A readable buffer after a writable one (§2.7.4.2): the walker
         * refuses the chain; the device pushes nothing and goes on. */
        drv->add_chain({ { RESP, 64, true }, { REQ, 24, false } });
        virtio_gpu_process(g, &q, chain);
        EXPECT_TRUE(q.broken);
        EXPECT_EQ(drv->used_idx(), 0);
        /* The device itself still answers. */
        EXPECT_EQ(create(1, 4, 4), OK);
}

TEST_F(GpuQueue, cursor_queue_chains_come_back_with_nothing_written) {
        Bytes req = Req(VIRTIO_GPU_CMD_MOVE_CURSOR).u32(0).u32(3).u32(4).u32(0).u32(0).u32(0).u32(0).u32(0).b;
        ASSERT_EQ(guest_write(mem, REQ, req.data(), req.size()), 0);
        q.index = VIRTIO_GPU_QUEUE_CURSOR;
        drv->add_chain({ { REQ, (uint32_t) req.size(), false } });
        virtio_gpu_process(g, &q, chain);
        ASSERT_EQ(drv->used_idx(), 1);
        EXPECT_EQ(drv->used(0).len, 0u);
        VirtioGpuCursor c;
        virtio_gpu_get_cursor(g, 0, &c);
        EXPECT_EQ(c.x, 3u);
        EXPECT_EQ(c.y, 4u);
}

} // namespace
