/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtio-gpu core's virgl back-end (gpu/virtio-gpu.c) on the real
 * virglrenderer (Mesa's llvmpipe, surfaceless EGL: no GPU needed), through
 * the core's API and its control queue: capsets as the library reports
 * them, contexts, 3D resources and transfers, a virgl command stream that
 * renders and the pixels read back, fences, and each hostile input's
 * answer (virtio 1.2 §5.7.6.7, 3D commands). */
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <linux/virtio_gpu.h>
#include <unistd.h>
#include <vector>
/* virglrenderer.h has no extern "C" of its own. */
extern "C" {
#include <virgl/virglrenderer.h>
}

#include "tests/gpu/fake-display.h"
#include "gpu/virtio-gpu.h"
#include "tests/gpu/gpu-request.h"
#include "tests/virtio/harness.h"
#include "common/unaligned.h"

using harness::VirtqDriver;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint64_t BACKING = 0x100000;
constexpr uint64_t BACKING2 = 0x400000;
constexpr uint64_t MEM_SIZE = 16 * MiB;

/* Gallium and virgl numbers the tests use (virglrenderer's
 * src/virgl_protocol.h and virgl_hw.h; Debian does not ship them). */
constexpr uint32_t PIPE_BUFFER = 0, PIPE_TEXTURE_2D = 2;
constexpr uint32_t VIRGL_FORMAT_B8G8R8X8_UNORM = 2;
constexpr uint32_t BIND_RENDER_TARGET = 1 << 1, BIND_SAMPLER_VIEW = 1 << 3, BIND_VERTEX_BUFFER = 1 << 4;
constexpr uint32_t VIRGL_CCMD_CREATE_OBJECT = 1, VIRGL_CCMD_SET_FRAMEBUFFER_STATE = 5, VIRGL_CCMD_CLEAR = 7;
constexpr uint32_t VIRGL_OBJECT_SURFACE = 8;
constexpr uint32_t PIPE_CLEAR_COLOR0 = 1 << 2;

constexpr uint32_t cmd0(uint32_t cmd, uint32_t obj, uint32_t len) {
        return cmd | obj << 8 | len << 16;
}

using gpu_test::Req;

Bytes hdr(uint32_t type, uint32_t flags = 0, uint64_t fence = 0, uint32_t ctx = 0, uint8_t ring = 0) {
        return Req(type, flags, fence, ctx, ring).b;
}

const Bytes OK = hdr(VIRTIO_GPU_RESP_OK_NODATA);

Bytes err(uint32_t type) {
        return hdr(type);
}

class Virgl : public ::testing::Test {
protected:
        void SetUp() override { make(64 * MiB); }
        void TearDown() override {
                virtio_gpu_free(g);
                gpu_display_free(disp);
                guest_memory_free(mem);
        }
        void make(uint64_t max_memory) {
                virtio_gpu_free(g);
                gpu_display_free(disp);
                guest_memory_free(mem);
                g = nullptr;
                ASSERT_EQ(guest_memory_new(MEM_SIZE, &mem), 0);
                ASSERT_EQ(gpu_display_new(-1, nullptr, 1, nullptr, nullptr, &disp), 0);
                VirtioGpuOptions o = { 1, 64, 48, max_memory, VIRTIO_GPU_BACKEND_VIRGL, on_done, this };
                ASSERT_EQ(virtio_gpu_new(&o, disp, &g), 0);
        }
        static void on_done(void *ctx, uint64_t token) { ((Virgl *) ctx)->done.push_back(token); }

        Bytes cmd(const Bytes &req, size_t cap = VIRTIO_GPU_MAX_RESPONSE) {
                Bytes resp(cap, 0xee);
                size_t n = virtio_gpu_handle(g, mem, VIRTIO_GPU_QUEUE_CONTROL, req.data(), req.size(), resp.data(), cap);
                resp.resize(n);
                return resp;
        }
        Bytes cmd(const Req &r, size_t cap = VIRTIO_GPU_MAX_RESPONSE) { return cmd(r.b, cap); }
        /* A request with its token; whether it was held. */
        Bytes cmd_held(const Req &r, uint64_t token, bool *held) {
                Bytes resp(VIRTIO_GPU_MAX_RESPONSE, 0xee);
                size_t n = virtio_gpu_handle_token(g, mem, VIRTIO_GPU_QUEUE_CONTROL, r.b.data(), r.b.size(),
                                                   resp.data(), resp.size(), token, held);
                resp.resize(n);
                return resp;
        }
        /* Polls until nothing is held (llvmpipe: at once or nearly). */
        void drain() {
                for (int i = 0; i < 1000 && virtio_gpu_poll(g) > 0; i++)
                        usleep(1000);
                ASSERT_EQ(virtio_gpu_poll(g), 0u);
        }

        Bytes ctx_create(uint32_t ctx, uint32_t nlen = 4, uint32_t init = 0) {
                Req r(VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, ctx);
                r.u32(nlen).u32(init);
                r.zeros(64);
                memcpy(&r.b[32], "test", 4);
                return cmd(r);
        }
        Bytes ctx_destroy(uint32_t ctx) { return cmd(Req(VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, ctx)); }
        Bytes ctx_attach(uint32_t ctx, uint32_t id) {
                return cmd(Req(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, ctx).u32(id).u32(0));
        }
        Bytes create_3d(uint32_t id, uint32_t target, uint32_t format, uint32_t bind, uint32_t w, uint32_t h,
                        uint32_t depth = 1, uint32_t array = 1, uint32_t last_level = 0, uint32_t samples = 0) {
                return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_3D)
                                   .u32(id).u32(target).u32(format).u32(bind).u32(w).u32(h).u32(depth).u32(array)
                                   .u32(last_level).u32(samples).u32(0).u32(0));
        }
        Bytes texture(uint32_t id, uint32_t w = 16, uint32_t h = 8) {
                return create_3d(id, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8X8_UNORM,
                                 BIND_RENDER_TARGET | BIND_SAMPLER_VIEW, w, h);
        }
        Bytes attach(uint32_t id, uint64_t gpa, uint32_t len) {
                return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING).u32(id).u32(1).u64(gpa).u32(len).u32(0));
        }
        Req transfer_req(uint32_t type, uint32_t ctx, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                         uint64_t offset = 0, uint32_t level = 0, uint32_t stride = 0, uint32_t flags = 0,
                         uint64_t fence = 0) {
                Req r(type, flags, fence, ctx);
                r.u32(x).u32(y).u32(0).u32(w).u32(h).u32(1).u64(offset).u32(id).u32(level).u32(stride).u32(0);
                return r;
        }
        Bytes to_host(uint32_t ctx, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t off = 0,
                      uint32_t level = 0) {
                return cmd(transfer_req(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D, ctx, id, x, y, w, h, off, level));
        }
        Bytes from_host(uint32_t ctx, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t off = 0,
                        uint32_t level = 0) {
                return cmd(transfer_req(VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D, ctx, id, x, y, w, h, off, level));
        }
        Req submit_req(uint32_t ctx, const std::vector<uint32_t> &dw, uint32_t flags = 0, uint64_t fence = 0) {
                Req r(VIRTIO_GPU_CMD_SUBMIT_3D, flags, fence, ctx);
                r.u32((uint32_t) dw.size() * 4).u32(0);
                for (uint32_t d : dw)
                        r.u32(d);
                return r;
        }
        Bytes submit(uint32_t ctx, const std::vector<uint32_t> &dw) { return cmd(submit_req(ctx, dw)); }
        /* The virgl commands that clear resource res to an opaque colour:
         * a surface on it, a framebuffer with that one colour buffer, a
         * clear (virgl_protocol.h's encodings). */
        static std::vector<uint32_t> clear_stream(uint32_t res, float r, float gr, float b) {
                auto f = [](float v) {
                        uint32_t u;
                        memcpy(&u, &v, 4);
                        return u;
                };
                return {
                        cmd0(VIRGL_CCMD_CREATE_OBJECT, VIRGL_OBJECT_SURFACE, 5), 1, res, VIRGL_FORMAT_B8G8R8X8_UNORM, 0, 0,
                        cmd0(VIRGL_CCMD_SET_FRAMEBUFFER_STATE, 0, 3), 1, 0, 1,
                        cmd0(VIRGL_CCMD_CLEAR, 0, 8), PIPE_CLEAR_COLOR0, f(r), f(gr), f(b), f(1.0f), 0, 0, 0,
                };
        }
        uint32_t guest_u32(uint64_t gpa) {
                uint8_t p[4];
                EXPECT_EQ(guest_read(mem, gpa, p, 4), 0);
                return get_le32(p);
        }
        /* A 16x8 texture id attached to context ctx with its backing. */
        void texture_in_context(uint32_t ctx, uint32_t id) {
                ASSERT_EQ(ctx_create(ctx), OK);
                ASSERT_EQ(texture(id), OK);
                ASSERT_EQ(attach(id, BACKING, 16 * 8 * 4), OK);
                ASSERT_EQ(ctx_attach(ctx, id), OK);
        }

        GuestMemory *mem = nullptr;
        GpuDisplay *disp = nullptr;
        VirtioGpu *g = nullptr;
        std::vector<uint64_t> done;
};

/* ---- what it offers ---- */

TEST(VirglBackend, backend_names_round_trip) {
        for (int b = 0; b < _VIRTIO_GPU_BACKEND_MAX; b++)
                EXPECT_EQ(virtio_gpu_backend_from_string(virtio_gpu_backend_to_string((VirtioGpuBackend) b)), b);
        EXPECT_STREQ(virtio_gpu_backend_to_string(VIRTIO_GPU_BACKEND_VIRGL), "virgl");
        EXPECT_EQ(virtio_gpu_backend_from_string("virglrenderer"), _VIRTIO_GPU_BACKEND_INVALID);
        EXPECT_EQ(virtio_gpu_backend_from_string(nullptr), _VIRTIO_GPU_BACKEND_INVALID);
}

TEST_F(Virgl, offers_virgl_edid_and_context_init) {
        EXPECT_EQ(virtio_gpu_features(g), (UINT64_C(1) << VIRTIO_GPU_F_VIRGL) | (UINT64_C(1) << VIRTIO_GPU_F_EDID) |
                                                  (UINT64_C(1) << VIRTIO_GPU_F_CONTEXT_INIT));
}

TEST_F(Virgl, a_second_virgl_device_at_once_is_refused) {
        VirtioGpuOptions o = { 0, 64, 48, 0, VIRTIO_GPU_BACKEND_VIRGL, nullptr, nullptr };
        VirtioGpu *second = nullptr;
        EXPECT_EQ(virtio_gpu_new(&o, nullptr, &second), -EBUSY);
        EXPECT_EQ(second, nullptr);
}

TEST_F(Virgl, num_capsets_and_capset_info_are_what_virglrenderer_reports) {
        uint8_t c[16];
        virtio_gpu_config_read(g, 0, c, 16);
        ASSERT_EQ(get_le32(c + 12), 2u) << "VIRGL and VIRGL2";
        const uint32_t ids[2] = { VIRTIO_GPU_CAPSET_VIRGL, VIRTIO_GPU_CAPSET_VIRGL2 };
        for (uint32_t i = 0; i < 2; i++) {
                uint32_t v = 0, size = 0;
                virgl_renderer_get_cap_set(ids[i], &v, &size);
                ASSERT_GT(size, 0u);
                Bytes want = hdr(VIRTIO_GPU_RESP_OK_CAPSET_INFO);
                Req w(0);
                want.resize(40, 0);
                put_le32(&want[24], ids[i]);
                put_le32(&want[28], v);
                put_le32(&want[32], size);
                EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET_INFO).u32(i).u32(0)), want) << i;
        }
}

TEST_F(Virgl, get_capset_answers_the_librarys_bytes) {
        const uint32_t ids[2] = { VIRTIO_GPU_CAPSET_VIRGL, VIRTIO_GPU_CAPSET_VIRGL2 };
        for (uint32_t id : ids) {
                uint32_t v = 0, size = 0;
                virgl_renderer_get_cap_set(id, &v, &size);
                Bytes want = hdr(VIRTIO_GPU_RESP_OK_CAPSET);
                want.resize(24 + size, 0);
                virgl_renderer_fill_caps(id, v, &want[24]);
                Bytes got = cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET).u32(id).u32(v));
                EXPECT_EQ(got.size(), 24u + size) << id;
                EXPECT_EQ(got, want) << id;
        }
}

/* ---- contexts ---- */

TEST_F(Virgl, context_is_created_destroyed_and_created_again) {
        EXPECT_EQ(ctx_create(1), OK);
        EXPECT_EQ(ctx_create(2), OK);
        EXPECT_EQ(ctx_destroy(1), OK);
        EXPECT_EQ(ctx_create(1), OK);
        EXPECT_EQ(ctx_destroy(1), OK);
        EXPECT_EQ(ctx_destroy(2), OK);
}

TEST_F(Virgl, context_init_names_the_capset_and_renders) {
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        ASSERT_EQ(texture(5), OK);
        ASSERT_EQ(attach(5, BACKING, 16 * 8 * 4), OK);
        ASSERT_EQ(ctx_attach(1, 5), OK);
        ASSERT_EQ(submit(1, clear_stream(5, 1, 0, 0)), OK);
        ASSERT_EQ(from_host(1, 5, 0, 0, 16, 8), OK);
        EXPECT_EQ(guest_u32(BACKING) & 0xffffff, 0xff0000u);
        ASSERT_EQ(ctx_create(2, 4, VIRTIO_GPU_CAPSET_VIRGL), OK);
}

TEST_F(Virgl, fence_on_a_ring_comes_back_with_its_ring) {
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        bool held;
        EXPECT_EQ(cmd_held(submit_req(1, {}, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 9), 3, &held),
                  hdr(VIRTIO_GPU_RESP_OK_NODATA, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 9, 1, 0));
        EXPECT_TRUE(held);
        EXPECT_TRUE(done.empty());
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 3 }));
}

TEST_F(Virgl, fences_on_one_ring_complete_in_the_order_given) {
        texture_in_context(1, 5);
        bool held;
        const uint32_t ring = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        for (uint64_t t = 1; t <= 3; t++) {
                cmd_held(submit_req(1, clear_stream(5, 0, 0, 1), ring, t), t, &held);
                EXPECT_TRUE(held);
        }
        /* A failed command on the ring waits behind the others too. */
        cmd_held(submit_req(1, { 0xdeadbeef, 1, 2 }, ring, 4), 4, &held);
        EXPECT_TRUE(held);
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 1, 2, 3, 4 }));
}

TEST_F(Virgl, ring_fences_of_two_contexts_and_the_global_timeline_all_complete) {
        texture_in_context(1, 5);
        ASSERT_EQ(ctx_create(2), OK);
        bool held;
        const uint32_t ring = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        cmd_held(submit_req(1, clear_stream(5, 0, 1, 1), ring, 1), 1, &held);
        EXPECT_TRUE(held);
        cmd_held(submit_req(2, {}, ring, 1), 2, &held);
        EXPECT_TRUE(held);
        cmd_held(submit_req(1, {}, VIRTIO_GPU_FLAG_FENCE, 2), 3, &held);
        EXPECT_TRUE(held);
        cmd_held(submit_req(1, {}, ring, 3), 4, &held);
        EXPECT_TRUE(held);
        drain();
        /* Across timelines in any order; within ctx 1's ring 0, 1 before 4. */
        ASSERT_EQ(done.size(), 4u);
        auto at = [&](uint64_t t) { return std::find(done.begin(), done.end(), t) - done.begin(); };
        for (uint64_t t = 1; t <= 4; t++)
                EXPECT_LT(at(t), 4) << t;
        EXPECT_LT(at(1), at(4));
}

TEST_F(Virgl, context_destroyed_with_ring_fences_held_completes_them_in_ring_order) {
        texture_in_context(1, 5);
        bool held;
        const uint32_t ring = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        cmd_held(submit_req(1, clear_stream(5, 1, 1, 0), ring, 5), 55, &held);
        ASSERT_TRUE(held);
        cmd_held(submit_req(1, {}, ring, 6), 56, &held);
        ASSERT_TRUE(held);
        /* virglrenderer drops a destroyed context's fences unsignalled:
         * ours complete them rather than leave the guest waiting. */
        ASSERT_EQ(ctx_destroy(1), OK);
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 55, 56 }));
        /* The id can be used again, its fences on a fresh timeline. */
        ASSERT_EQ(ctx_create(1), OK);
        cmd_held(submit_req(1, {}, ring, 1), 57, &held);
        ASSERT_TRUE(held);
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 55, 56, 57 }));
}

TEST_F(Virgl, reset_with_fences_held_drops_them) {
        texture_in_context(1, 5);
        bool held;
        cmd_held(submit_req(1, clear_stream(5, 1, 0, 0), VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 1), 1,
                 &held);
        ASSERT_TRUE(held);
        cmd_held(submit_req(1, {}, VIRTIO_GPU_FLAG_FENCE, 2), 2, &held);
        ASSERT_TRUE(held);
        virtio_gpu_drop_held(g);
        drain();
        EXPECT_TRUE(done.empty());
        /* Fences given after the reset complete as usual. */
        cmd_held(submit_req(1, {}, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 1), 3, &held);
        ASSERT_TRUE(held);
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 3 }));
}

/* A device reset: held fences dropped, virglrenderer's contexts and
 * resources destroyed, so the driver's ids are free again and render. */
TEST_F(Virgl, device_reset_destroys_contexts_and_3d_resources) {
        texture_in_context(1, 5);
        ASSERT_EQ(ctx_create(2), OK);
        bool held;
        cmd_held(submit_req(1, clear_stream(5, 1, 0, 0), VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 1), 1,
                 &held);
        ASSERT_TRUE(held);
        ASSERT_GT(virtio_gpu_memory_used(g), 0u);

        virtio_gpu_reset(g);
        drain();
        EXPECT_TRUE(done.empty());
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
        EXPECT_EQ(ctx_destroy(2), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        EXPECT_EQ(from_host(1, 5, 0, 0, 16, 8), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));

        /* The same ids again, and the context renders into the texture. */
        texture_in_context(1, 5);
        ASSERT_EQ(submit(1, clear_stream(5, 0, 1, 0)), OK);
        ASSERT_EQ(guest_zero(mem, BACKING, 16 * 8 * 4), 0);
        ASSERT_EQ(from_host(1, 5, 0, 0, 16, 8), OK);
        EXPECT_EQ(guest_u32(BACKING) & 0xffffff, 0x00ff00u);
}

/* ---- 3D resources and transfers ---- */

TEST_F(Virgl, texture_written_to_host_reads_back_the_same_bytes) {
        texture_in_context(1, 5);
        for (uint32_t i = 0; i < 16 * 8; i++) {
                uint8_t p[4];
                put_le32(p, 0xff000000u | i * 0x010203u);
                ASSERT_EQ(guest_write(mem, BACKING + i * 4, p, 4), 0);
        }
        ASSERT_EQ(to_host(1, 5, 0, 0, 16, 8), OK);
        ASSERT_EQ(guest_zero(mem, BACKING, 16 * 8 * 4), 0);
        ASSERT_EQ(from_host(1, 5, 0, 0, 16, 8), OK);
        for (uint32_t i = 0; i < 16 * 8; i++)
                ASSERT_EQ(guest_u32(BACKING + i * 4) & 0xffffff, (i * 0x010203u) & 0xffffff) << i;
}

TEST_F(Virgl, buffer_written_to_host_reads_back_the_same_bytes) {
        ASSERT_EQ(create_3d(7, PIPE_BUFFER, 64 /* R8_UNORM */, BIND_VERTEX_BUFFER, 4096, 1), OK);
        ASSERT_EQ(attach(7, BACKING, 4096), OK);
        Bytes data(4096);
        for (size_t i = 0; i < data.size(); i++)
                data[i] = (uint8_t) (i * 7);
        ASSERT_EQ(guest_write(mem, BACKING, data.data(), data.size()), 0);
        ASSERT_EQ(to_host(0, 7, 0, 0, 4096, 1), OK);
        ASSERT_EQ(guest_zero(mem, BACKING, 4096), 0);
        ASSERT_EQ(from_host(0, 7, 0, 0, 4096, 1), OK);
        Bytes got(4096);
        ASSERT_EQ(guest_read(mem, BACKING, got.data(), got.size()), 0);
        EXPECT_EQ(got, data);
}

TEST_F(Virgl, memory_counts_3d_resources_and_unref_frees_them) {
        ASSERT_EQ(texture(5, 16, 8), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 16u * 8 * 4);
        ASSERT_EQ(create_3d(6, PIPE_TEXTURE_2D, 31 /* R32G32B32A32_FLOAT */, BIND_SAMPLER_VIEW, 16, 8), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 16u * 8 * 4 + 16 * 8 * 16) << "16 bytes a texel when not known";
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(5).u32(0)), OK);
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(6).u32(0)), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

/* ---- rendering ---- */

TEST_F(Virgl, clear_command_stream_renders_and_reads_back) {
        texture_in_context(1, 5);
        ASSERT_EQ(submit(1, clear_stream(5, 1.0f, 0.0f, 0.0f)), OK);
        ASSERT_EQ(from_host(1, 5, 0, 0, 16, 8), OK);
        for (uint32_t i = 0; i < 16 * 8; i++)
                ASSERT_EQ(guest_u32(BACKING + i * 4) & 0xffffff, 0xff0000u) << "red (B8G8R8X8) at " << i;
}

TEST_F(Virgl, rendered_texture_is_shown_on_the_scanout) {
        texture_in_context(1, 5);
        ASSERT_EQ(submit(1, clear_stream(5, 0.0f, 0.0f, 1.0f)), OK);
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_SET_SCANOUT).u32(0).u32(0).u32(16).u32(8).u32(0).u32(5)), OK);
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_FLUSH).u32(0).u32(0).u32(16).u32(8).u32(5).u32(0)), OK);
        ASSERT_EQ(disp->s[0].width, 16u);
        ASSERT_NE(disp->s[0].pixels, nullptr);
        for (uint32_t y = 0; y < 8; y++)
                for (uint32_t x = 0; x < 16; x++)
                        ASSERT_EQ(get_le32(disp->s[0].pixels + (y * 16 + x) * 4) & 0xffffff, 0x0000ffu) << x << "," << y;
}

/* A 3D cursor is read back from virglrenderer at each UPDATE_CURSOR
 * (the Linux driver's cursors are 2D; another driver's may not be). */
TEST_F(Virgl, cursor_of_a_3d_texture_is_read_back_for_the_display) {
        ASSERT_EQ(ctx_create(1), OK);
        ASSERT_EQ(texture(5, 64, 64), OK);
        ASSERT_EQ(attach(5, BACKING, 64 * 64 * 4), OK);
        ASSERT_EQ(ctx_attach(1, 5), OK);
        Bytes want(64 * 64 * 4);
        for (uint32_t i = 0; i < 64 * 64; i++)
                put_le32(&want[i * 4], 0xff000000u | i * 0x010305u);
        ASSERT_EQ(guest_write(mem, BACKING, want.data(), want.size()), 0);
        ASSERT_EQ(to_host(1, 5, 0, 0, 64, 64), OK);
        Req update(VIRTIO_GPU_CMD_UPDATE_CURSOR);
        update.u32(0).u32(12).u32(34).u32(0).u32(5).u32(1).u32(2).u32(0);
        uint8_t resp[64];
        EXPECT_EQ(virtio_gpu_handle(g, mem, VIRTIO_GPU_QUEUE_CURSOR, update.b.data(), update.b.size(), resp,
                                    sizeof(resp)),
                  0u);
        const FakeCursor &c = disp->cursor[0];
        ASSERT_TRUE(c.shown);
        EXPECT_EQ(c.format, VIRGL_FORMAT_B8G8R8X8_UNORM);
        EXPECT_EQ(c.x, 12 + 1);
        EXPECT_EQ(c.hot_y, 2u);
        for (uint32_t i = 0; i < 64 * 64; i++)
                ASSERT_EQ(get_le32(c.pixels + i * 4) & 0xffffff, get_le32(&want[i * 4]) & 0xffffff) << i;

        /* Rendered into afterwards: the next UPDATE_CURSOR shows it. */
        ASSERT_EQ(submit(1, clear_stream(5, 0.0f, 1.0f, 0.0f)), OK);
        EXPECT_EQ(virtio_gpu_handle(g, mem, VIRTIO_GPU_QUEUE_CURSOR, update.b.data(), update.b.size(), resp,
                                    sizeof(resp)),
                  0u);
        for (uint32_t i = 0; i < 64 * 64; i++)
                ASSERT_EQ(get_le32(c.pixels + i * 4) & 0xffffff, 0x00ff00u) << i;
}

TEST_F(Virgl, scaled_blit_draws_with_a_shader_and_reads_back) {
        texture_in_context(1, 5);
        ASSERT_EQ(submit(1, clear_stream(5, 0.0f, 1.0f, 0.0f)), OK);
        ASSERT_EQ(texture(6, 32, 16), OK);
        ASSERT_EQ(attach(6, BACKING2, 32 * 16 * 4), OK);
        ASSERT_EQ(ctx_attach(1, 6), OK);
        /* VIRGL_CCMD_BLIT: mask RGBA, linear filter, no scissor; dst 6
         * (0,0,0 32x16x1) from src 5 (0,0,0 16x8x1). */
        ASSERT_EQ(submit(1, { cmd0(16, 0, 21), 0xf | 1 << 8, 0, 0, 6, 0, VIRGL_FORMAT_B8G8R8X8_UNORM, 0, 0, 0, 32, 16, 1,
                              5, 0, VIRGL_FORMAT_B8G8R8X8_UNORM, 0, 0, 0, 16, 8, 1 }),
                  OK);
        ASSERT_EQ(from_host(1, 6, 0, 0, 32, 16), OK);
        for (uint32_t i = 0; i < 32 * 16; i++)
                ASSERT_EQ(guest_u32(BACKING2 + i * 4) & 0xffffff, 0x00ff00u) << i;
}

/* VIRGL_CCMD_TRANSFER3D of the whole 16x8 texture res (stride 64): the
 * context's own transfer, through the iovecs attached to virglrenderer. */
std::vector<uint32_t> stream_transfer3d(uint32_t res, uint32_t direction) {
        return { cmd0(43, 0, 13), res, 0, 0, 64, 0, 0, 0, 0, 16, 8, 1, 0, direction };
}

constexpr uint32_t VIRGL_TRANSFER_TO_HOST = 1;

TEST_F(Virgl, stream_transfer_reads_the_attached_backing) {
        texture_in_context(1, 5);
        for (uint32_t i = 0; i < 16 * 8; i++) {
                uint8_t p[4];
                put_le32(p, 0xff000000u | i * 0x030201u);
                ASSERT_EQ(guest_write(mem, BACKING + i * 4, p, 4), 0);
        }
        ASSERT_EQ(submit(1, stream_transfer3d(5, VIRGL_TRANSFER_TO_HOST)), OK);
        ASSERT_EQ(guest_zero(mem, BACKING, 16 * 8 * 4), 0);
        ASSERT_EQ(from_host(1, 5, 0, 0, 16, 8), OK);
        for (uint32_t i = 0; i < 16 * 8; i++)
                ASSERT_EQ(guest_u32(BACKING + i * 4) & 0xffffff, (i * 0x030201u) & 0xffffff) << i;
}

TEST_F(Virgl, attached_backing_follows_a_new_memory_map) {
        texture_in_context(1, 5);
        /* The same guest addresses, mapped elsewhere on the host (a new
         * memory table): green there, red in the old map. */
        GuestMemory *mem2 = nullptr;
        ASSERT_EQ(guest_memory_new(MEM_SIZE, &mem2), 0);
        for (uint32_t i = 0; i < 16 * 8; i++) {
                uint8_t red[4], green[4];
                put_le32(red, 0xffff0000u);
                put_le32(green, 0xff00ff00u);
                ASSERT_EQ(guest_write(mem, BACKING + i * 4, red, 4), 0);
                ASSERT_EQ(guest_write(mem2, BACKING + i * 4, green, 4), 0);
        }
        Bytes req = submit_req(1, stream_transfer3d(5, VIRGL_TRANSFER_TO_HOST)).b;
        Bytes resp(64);
        ASSERT_EQ(virtio_gpu_handle(g, mem2, VIRTIO_GPU_QUEUE_CONTROL, req.data(), req.size(), resp.data(), 64), 24u);
        EXPECT_EQ(Bytes(resp.begin(), resp.begin() + 24), OK);
        ASSERT_EQ(from_host(1, 5, 0, 0, 16, 8), OK) << "back in the first map";
        EXPECT_EQ(guest_u32(BACKING) & 0xffffff, 0x00ff00u) << "read from the new map, not the old";
        guest_memory_free(mem2);
}

TEST_F(Virgl, attached_backing_no_longer_in_ram_is_detached_and_stream_transfers_fail) {
        texture_in_context(1, 5);
        GuestMemory *small = nullptr;
        ASSERT_EQ(guest_memory_new(1 * MiB, &small), 0);
        Bytes req = submit_req(1, stream_transfer3d(5, VIRGL_TRANSFER_TO_HOST)).b;
        Bytes resp(64);
        ASSERT_EQ(virtio_gpu_handle(g, small, VIRTIO_GPU_QUEUE_CONTROL, req.data(), req.size(), resp.data(), 64), 24u);
        EXPECT_EQ(get_le32(resp.data()), (uint32_t) VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        guest_memory_free(small);
        /* The device goes on; a new context renders. */
        ASSERT_EQ(ctx_create(2), OK);
        ASSERT_EQ(ctx_attach(2, 5), OK);
        EXPECT_EQ(submit(2, clear_stream(5, 1, 0, 0)), OK);
}

TEST_F(Virgl, detach_backing_of_a_3d_resource_takes_it_from_virglrenderer) {
        texture_in_context(1, 5);
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING).u32(5).u32(0)), OK);
        EXPECT_EQ(submit(1, stream_transfer3d(5, VIRGL_TRANSFER_TO_HOST)), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        ASSERT_EQ(attach(5, BACKING, 16 * 8 * 4), OK);
        ASSERT_EQ(ctx_create(2), OK);
        ASSERT_EQ(ctx_attach(2, 5), OK);
        EXPECT_EQ(submit(2, stream_transfer3d(5, VIRGL_TRANSFER_TO_HOST)), OK);
}

/* ---- fences ---- */

TEST_F(Virgl, fenced_submit_is_answered_only_after_its_fence) {
        texture_in_context(1, 5);
        bool held = false;
        Bytes r = cmd_held(submit_req(1, clear_stream(5, 0, 1, 0), VIRTIO_GPU_FLAG_FENCE, 77), 1001, &held);
        EXPECT_TRUE(held);
        EXPECT_EQ(r, hdr(VIRTIO_GPU_RESP_OK_NODATA, VIRTIO_GPU_FLAG_FENCE, 77, 1));
        EXPECT_TRUE(done.empty()) << "nothing completes before the device polls its fences";
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 1001 }));
}

TEST_F(Virgl, fences_complete_in_the_order_given) {
        texture_in_context(1, 5);
        bool held;
        for (uint64_t t = 1; t <= 3; t++) {
                cmd_held(submit_req(1, clear_stream(5, 0, 0, 1), VIRTIO_GPU_FLAG_FENCE, t), t, &held);
                EXPECT_TRUE(held);
        }
        /* A failed fenced command waits behind the others too. */
        cmd_held(Req(VIRTIO_GPU_CMD_CTX_DESTROY, VIRTIO_GPU_FLAG_FENCE, 4, 99), 4, &held);
        EXPECT_TRUE(held);
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 1, 2, 3, 4 }));
}

TEST_F(Virgl, unfenced_commands_are_answered_at_once) {
        bool held = true;
        Bytes r = cmd_held(Req(VIRTIO_GPU_CMD_GET_CAPSET_INFO).u32(0).u32(0), 9, &held);
        EXPECT_FALSE(held);
        EXPECT_EQ(get_le32(r.data()), (uint32_t) VIRTIO_GPU_RESP_OK_CAPSET_INFO);
}

TEST_F(Virgl, context_destroyed_with_fences_pending_completes_them) {
        texture_in_context(1, 5);
        bool held;
        cmd_held(submit_req(1, clear_stream(5, 1, 1, 0), VIRTIO_GPU_FLAG_FENCE, 5), 55, &held);
        ASSERT_TRUE(held);
        ASSERT_EQ(ctx_destroy(1), OK);
        drain();
        EXPECT_EQ(done, std::vector<uint64_t>({ 55 }));
        /* The resource outlives the context and can still be read. */
        EXPECT_EQ(from_host(0, 5, 0, 0, 16, 8), OK);
}

TEST_F(Virgl, device_freed_with_fences_pending_drops_them) {
        texture_in_context(1, 5);
        bool held;
        cmd_held(submit_req(1, clear_stream(5, 1, 1, 1), VIRTIO_GPU_FLAG_FENCE, 5), 66, &held);
        ASSERT_TRUE(held);
        g = virtio_gpu_free(g);
        EXPECT_TRUE(done.empty());
        /* And a new device starts afresh. */
        make(64 * MiB);
        EXPECT_EQ(ctx_create(1), OK);
}

/* ---- hostile input ---- */

TEST_F(Virgl, capset_index_past_num_capsets_is_invalid_parameter) {
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET_INFO).u32(2).u32(0)), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET_INFO).u32(UINT32_MAX).u32(0)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Virgl, capset_never_offered_is_invalid_parameter) {
        for (uint32_t id : { 0u, 3u, 4u, 5u, UINT32_MAX })
                EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET).u32(id).u32(1)), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER))
                        << id;
}

TEST_F(Virgl, capset_version_never_offered_is_invalid_parameter) {
        uint32_t v = 0, size = 0;
        virgl_renderer_get_cap_set(VIRTIO_GPU_CAPSET_VIRGL2, &v, &size);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET).u32(VIRTIO_GPU_CAPSET_VIRGL2).u32(v + 1)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET).u32(VIRTIO_GPU_CAPSET_VIRGL2).u32(0)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Virgl, capset_response_buffer_too_small_gets_nothing) {
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_GET_CAPSET).u32(VIRTIO_GPU_CAPSET_VIRGL).u32(1), 100).size(), 0u);
}

TEST_F(Virgl, context_id_zero_is_invalid_context_id) {
        EXPECT_EQ(ctx_create(0), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        EXPECT_EQ(ctx_destroy(0), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
}

TEST_F(Virgl, context_id_reused_is_invalid_context_id) {
        ASSERT_EQ(ctx_create(3), OK);
        EXPECT_EQ(ctx_create(3), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
}

TEST_F(Virgl, context_id_past_int32_is_invalid_context_id) {
        EXPECT_EQ(ctx_create(0x80000000u), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
}

TEST_F(Virgl, context_never_created_is_invalid_context_id) {
        ASSERT_EQ(texture(5), OK);
        EXPECT_EQ(ctx_destroy(9), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        EXPECT_EQ(ctx_attach(9, 5), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        EXPECT_EQ(submit(9, { 0 }), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        ASSERT_EQ(attach(5, BACKING, 16 * 8 * 4), OK);
        EXPECT_EQ(to_host(9, 5, 0, 0, 16, 8), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
}

TEST_F(Virgl, context_name_longer_than_64_is_invalid_parameter) {
        EXPECT_EQ(ctx_create(1, 65), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Virgl, context_init_capset_never_offered_is_invalid_parameter) {
        for (uint32_t capset : { 3u, 4u, 5u, 0xffu })
                EXPECT_EQ(ctx_create(1, 4, capset), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)) << capset;
}

TEST_F(Virgl, context_init_bits_past_the_capset_id_are_invalid_parameter) {
        EXPECT_EQ(ctx_create(1, 4, 0x100 | VIRTIO_GPU_CAPSET_VIRGL2), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Virgl, fence_on_a_ring_past_64_is_invalid_parameter_answered_at_once_and_not_run) {
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        bool held;
        Req r = Req(VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 3, 1, 64)
                        .u32(77).u32(0);
        EXPECT_EQ(cmd_held(r, 1, &held),
                  hdr(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 3, 1, 64));
        EXPECT_FALSE(held);
        r.b[20] = 255;
        EXPECT_EQ(cmd_held(r, 2, &held), hdr(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                                             VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 3, 1, 255));
        EXPECT_FALSE(held);
        drain();
        EXPECT_TRUE(done.empty());
}

#ifdef HAVE_VIRGL_CONTEXT_FENCE
TEST_F(Virgl, fence_on_a_ring_a_virgl_context_lacks_is_invalid_parameter) {
        /* virglrenderer's virgl contexts have one ring, 0. */
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        bool held;
        for (uint8_t ring : { 1, 63 }) {
                Req r = submit_req(1, {}, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 3);
                r.b[20] = ring;
                EXPECT_EQ(cmd_held(r, 1, &held), hdr(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
                                                     VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 3, 1, ring));
                EXPECT_FALSE(held);
        }
}
#endif

TEST_F(Virgl, ring_idx_on_a_context_less_command_is_invalid_context_id_and_not_run) {
        bool held;
        Req r(VIRTIO_GPU_CMD_RESOURCE_CREATE_3D, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 4, 0, 0);
        r.u32(5).u32(PIPE_TEXTURE_2D).u32(VIRGL_FORMAT_B8G8R8X8_UNORM).u32(BIND_RENDER_TARGET).u32(16).u32(8);
        r.u32(1).u32(1).u32(0).u32(0).u32(0).u32(0);
        EXPECT_EQ(cmd_held(r, 1, &held), hdr(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID,
                                             VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 4, 0, 0));
        EXPECT_FALSE(held);
        /* Not created: the id is free. */
        EXPECT_EQ(texture(5), OK);
}

TEST_F(Virgl, ring_idx_of_a_context_never_created_or_destroyed_is_invalid_context_id) {
        bool held;
        const uint32_t ring = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
        EXPECT_EQ(cmd_held(submit_req(7, {}, ring, 2), 1, &held),
                  hdr(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID, ring, 2, 7, 0));
        EXPECT_FALSE(held);
        ASSERT_EQ(ctx_create(7), OK);
        ASSERT_EQ(ctx_destroy(7), OK);
        EXPECT_EQ(cmd_held(submit_req(7, {}, ring, 3), 2, &held),
                  hdr(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID, ring, 3, 7, 0));
        EXPECT_FALSE(held);
}

TEST_F(Virgl, short_3d_requests_are_unspec) {
        for (uint32_t type : { VIRTIO_GPU_CMD_CTX_CREATE, VIRTIO_GPU_CMD_RESOURCE_CREATE_3D,
                               VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D, VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D,
                               VIRTIO_GPU_CMD_SUBMIT_3D, VIRTIO_GPU_CMD_GET_CAPSET, VIRTIO_GPU_CMD_GET_CAPSET_INFO,
                               VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE })
                EXPECT_EQ(cmd(Req(type, 0, 0, 1).u32(1)), err(VIRTIO_GPU_RESP_ERR_UNSPEC)) << type;
}

/* A 2D resource (the Linux driver attaches each dumb buffer to its
 * client's context) is out of virglrenderer's reach: attach and detach
 * change nothing, as QEMU's virgl device has it. */
TEST_F(Virgl, attach_of_an_unknown_resource_is_invalid_resource_id_and_of_a_2d_one_does_nothing) {
        ASSERT_EQ(ctx_create(1), OK);
        EXPECT_EQ(ctx_attach(1, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        EXPECT_EQ(ctx_attach(1, 42), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 0, 0, 1).u32(42).u32(0)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(2).u32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM).u32(4).u32(4)),
                  OK);
        EXPECT_EQ(ctx_attach(1, 2), OK);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 0, 0, 1).u32(2).u32(0)), OK);
        /* Still a 2D resource: a 3D transfer on it is refused. */
        EXPECT_EQ(from_host(1, 2, 0, 0, 4, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(Virgl, resource_3d_id_zero_or_reused_is_invalid_resource_id) {
        EXPECT_EQ(texture(0), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(texture(5), OK);
        EXPECT_EQ(texture(5), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(6).u32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM).u32(4).u32(4)),
                  OK);
        EXPECT_EQ(texture(6), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(Virgl, resource_3d_out_of_range_fields_are_invalid_parameter) {
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        constexpr uint32_t F = VIRGL_FORMAT_B8G8R8X8_UNORM, B = BIND_SAMPLER_VIEW;
        EXPECT_EQ(create_3d(5, 9, F, B, 16, 8), bad) << "target past PIPE_TEXTURE_CUBE_ARRAY";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, 0, B, 16, 8), bad) << "format 0";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, 100000, B, 16, 8), bad) << "format out of range";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 0, 8), bad) << "width 0";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16, 0), bad) << "height 0";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16385, 8), bad) << "width past 16384";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16, 8, 0), bad) << "depth 0";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16, 8, 1, 0), bad) << "array_size 0";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16, 8, 1, 2049), bad) << "array_size past 2048";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16, 8, 1, 1, 15), bad) << "last_level past 14";
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, F, B, 16, 8, 1, 1, 0, 33), bad) << "samples past 32";
        EXPECT_EQ(create_3d(5, PIPE_BUFFER, 64, BIND_VERTEX_BUFFER, 16, 2), bad) << "a buffer of two rows";
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(Virgl, resource_3d_virglrenderer_refuses_is_invalid_parameter) {
        /* In range for the device, not for virglrenderer: no such format. */
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, 500, BIND_SAMPLER_VIEW, 16, 8),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(Virgl, resource_3d_larger_than_the_cap_is_invalid_parameter_and_past_it_out_of_memory) {
        make(1 * MiB);
        EXPECT_EQ(create_3d(5, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8X8_UNORM, BIND_SAMPLER_VIEW, 1024, 512),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        ASSERT_EQ(create_3d(5, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8X8_UNORM, BIND_SAMPLER_VIEW, 512, 384), OK);
        EXPECT_EQ(create_3d(6, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8X8_UNORM, BIND_SAMPLER_VIEW, 512, 384),
                  err(VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY));
        EXPECT_EQ(create_3d(6, PIPE_TEXTURE_2D, VIRGL_FORMAT_B8G8R8X8_UNORM, BIND_SAMPLER_VIEW, 16384, 16384, 1, 2048),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER))
                << "sizes multiplied in 64 bits";
}

TEST_F(Virgl, transfer_3d_box_outside_the_resource_is_invalid_parameter) {
        texture_in_context(1, 5);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(to_host(1, 5, 1, 0, 16, 8), bad);
        EXPECT_EQ(to_host(1, 5, 0, 8, 1, 1), bad);
        EXPECT_EQ(to_host(1, 5, UINT32_MAX, 0, 2, 1), bad) << "x + w wraps";
        EXPECT_EQ(from_host(1, 5, 0, 0, 16, 8, 0, 1), bad) << "level the resource does not have";
        Req r = transfer_req(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D, 1, 5, 0, 0, 16, 8);
        put_le32(&r.b[32], 1); /* z 1, depth 1 */
        EXPECT_EQ(cmd(r), bad);
}

TEST_F(Virgl, transfer_3d_past_the_backing_is_refused_by_virglrenderer) {
        texture_in_context(1, 5);
        EXPECT_EQ(to_host(1, 5, 0, 0, 16, 8, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(from_host(1, 5, 0, 0, 16, 8, UINT64_MAX - 8), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Virgl, transfer_3d_without_backing_is_unspec) {
        ASSERT_EQ(texture(5), OK);
        EXPECT_EQ(to_host(0, 5, 0, 0, 16, 8), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(from_host(0, 5, 0, 0, 16, 8), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(Virgl, transfer_3d_of_unknown_or_2d_resource_is_invalid_resource_id) {
        EXPECT_EQ(to_host(0, 42, 0, 0, 1, 1), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(2).u32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM).u32(4).u32(4)),
                  OK);
        ASSERT_EQ(attach(2, BACKING, 64), OK);
        EXPECT_EQ(to_host(0, 2, 0, 0, 4, 4), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(Virgl, transfer_3d_backing_no_longer_in_ram_is_invalid_parameter) {
        texture_in_context(1, 5);
        /* The memory map shrank under the attached backing. */
        GuestMemory *small = nullptr;
        ASSERT_EQ(guest_memory_new(1 * MiB, &small), 0);
        Bytes resp(64);
        Bytes req = transfer_req(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D, 1, 5, 0, 0, 16, 8).b;
        ASSERT_EQ(virtio_gpu_handle(g, small, VIRTIO_GPU_QUEUE_CONTROL, req.data(), req.size(), resp.data(), 64), 24u);
        EXPECT_EQ(get_le32(resp.data()), (uint32_t) VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        guest_memory_free(small);
}

TEST_F(Virgl, submit_of_garbage_is_refused_and_the_device_survives) {
        texture_in_context(1, 5);
        std::vector<uint32_t> garbage;
        for (uint32_t i = 0; i < 256; i++)
                garbage.push_back(0xdeadbeefu * (i + 1));
        EXPECT_EQ(submit(1, garbage), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        /* A command whose length runs past the buffer: virglrenderer
         * 0.10.4 stops decoding there without an error (so the answer is
         * OK); nothing is read past the buffer and the device goes on. */
        ASSERT_EQ(ctx_create(3), OK);
        EXPECT_EQ(submit(3, { cmd0(VIRGL_CCMD_CLEAR, 0, 200), 0 }).size(), 24u);
        /* Another context still renders. */
        ASSERT_EQ(ctx_create(2), OK);
        ASSERT_EQ(ctx_attach(2, 5), OK);
        ASSERT_EQ(submit(2, clear_stream(5, 1, 0, 0)), OK);
        ASSERT_EQ(from_host(2, 5, 0, 0, 16, 8), OK);
        EXPECT_EQ(guest_u32(BACKING) & 0xffffff, 0xff0000u);
}

TEST_F(Virgl, submit_size_not_in_dwords_or_over_the_cap_is_invalid_parameter) {
        ASSERT_EQ(ctx_create(1), OK);
        Req r = submit_req(1, { 0, 0 });
        put_le32(&r.b[24], 6);
        EXPECT_EQ(cmd(r), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        put_le32(&r.b[24], VIRTIO_GPU_MAX_SUBMIT + 4);
        EXPECT_EQ(cmd(r), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(Virgl, submit_size_past_the_request_is_unspec) {
        ASSERT_EQ(ctx_create(1), OK);
        Req r = submit_req(1, { 0, 0 });
        put_le32(&r.b[24], 12);
        EXPECT_EQ(cmd(r), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(Virgl, scanout_of_a_buffer_or_non_scanout_format_is_invalid_parameter) {
        ASSERT_EQ(create_3d(7, PIPE_BUFFER, 64, BIND_VERTEX_BUFFER, 4096, 1), OK);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_SET_SCANOUT).u32(0).u32(0).u32(16).u32(1).u32(0).u32(7)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        ASSERT_EQ(create_3d(8, PIPE_TEXTURE_2D, 31, BIND_SAMPLER_VIEW, 16, 8), OK);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_SET_SCANOUT).u32(0).u32(0).u32(16).u32(8).u32(0).u32(8)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

/* ---- blobs ---- */

class VirglBlob : public Virgl {
protected:
        void SetUp() override {
                Virgl::SetUp();
                make_blob(64 * MiB, 1 * MiB);
        }
        void make_blob(uint64_t max_memory, uint64_t host_visible) {
                virtio_gpu_free(g);
                g = nullptr;
                VirtioGpuOptions o = { 1, 64, 48, max_memory, VIRTIO_GPU_BACKEND_VIRGL, on_done, this, true,
                                       host_visible, { shm_map, shm_unmap, this } };
                ASSERT_EQ(virtio_gpu_new(&o, disp, &g), 0);
        }
        static int shm_map(void *ctx, int, uint64_t offset, uint64_t len) {
                ((VirglBlob *) ctx)->maps.push_back({ offset, len });
                return 0;
        }
        static int shm_unmap(void *ctx, uint64_t offset, uint64_t len) {
                ((VirglBlob *) ctx)->unmaps.push_back({ offset, len });
                return 0;
        }
        Bytes create_blob(uint32_t id, uint32_t blob_mem, uint32_t flags, uint64_t blob_id, uint64_t size,
                          const std::vector<std::pair<uint64_t, uint32_t>> &entries = {}, uint32_t ctx = 0) {
                Req r(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, ctx);
                r.u32(id).u32(blob_mem).u32(flags).u32((uint32_t) entries.size()).u64(blob_id).u64(size);
                for (auto &e : entries)
                        r.u64(e.first).u32(e.second).u32(0);
                return cmd(r);
        }
        Bytes map_blob(uint32_t id, uint64_t offset) {
                return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB).u32(id).u32(0).u64(offset));
        }
        Bytes unmap_blob(uint32_t id) { return cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB).u32(id).u32(0)); }
        /* Context ctx's stream makes a 4 KiB persistent, coherent buffer
         * with blob id blob_id (VIRGL_CCMD_PIPE_RESOURCE_CREATE). */
        void host3d_blob_id(uint32_t ctx, uint32_t blob_id) {
                ASSERT_EQ(submit(ctx, { cmd0(48, 0, 11), PIPE_BUFFER, 64, BIND_VERTEX_BUFFER, 4096, 1, 1, 1, 0, 0,
                                        (1 << 1) | (1 << 2), blob_id }),
                          OK);
        }
        std::vector<std::pair<uint64_t, uint64_t>> maps, unmaps;
};

TEST_F(VirglBlob, offers_resource_blob) {
        EXPECT_TRUE(virtio_gpu_features(g) & (UINT64_C(1) << VIRTIO_GPU_F_RESOURCE_BLOB));
}

TEST_F(Virgl, blob_commands_without_the_feature_are_unspec) {
        EXPECT_FALSE(virtio_gpu_features(g) & (UINT64_C(1) << VIRTIO_GPU_F_RESOURCE_BLOB));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB).u32(1).u32(1).u32(0).u32(0).u64(0).u64(4096)),
                  err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB).u32(1).u32(0).u64(0)), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

TEST_F(VirglBlob, guest_blob_is_created_from_its_entries_and_takes_no_host_memory) {
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 8192, { { BACKING, 4096 }, { BACKING2, 4096 } }), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(3).u32(0)), OK);
}

TEST_F(VirglBlob, host3d_blob_is_made_from_its_contexts_blob_id_and_counted) {
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        host3d_blob_id(1, 7);
        EXPECT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 7, 4096, {}, 1), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 4096u);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(4).u32(0)), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(VirglBlob, host3d_blob_map_without_an_exportable_blob_is_unspec) {
        /* virglrenderer on llvmpipe, no GBM: nothing to export, so nothing
         * the front-end could map. */
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        host3d_blob_id(1, 7);
        ASSERT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 7, 4096, {}, 1), OK);
        uint32_t type = 0;
        int fd = -1;
        if (virgl_renderer_resource_export_blob(4, &type, &fd) == 0) {
                close(fd);
                GTEST_SKIP() << "this virglrenderer exports host3d blobs";
        }
        EXPECT_EQ(map_blob(4, 0), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_TRUE(maps.empty());
}

TEST_F(VirglBlob, blob_size_zero_or_not_whole_pages_is_invalid_parameter) {
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 0, { { BACKING, 4096 } }),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4095, { { BACKING, 4096 } }),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(VirglBlob, blob_over_the_cap_is_invalid_parameter_and_past_it_out_of_memory) {
        make_blob(64 * 1024, 1 * MiB);
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        EXPECT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 7, 128 * 1024, {}, 1),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        host3d_blob_id(1, 7);
        ASSERT_EQ(create_3d(9, PIPE_BUFFER, 64, BIND_VERTEX_BUFFER, 62 * 1024, 1), OK);
        EXPECT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 7, 4096, {}, 1), err(VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY));
}

TEST_F(VirglBlob, blob_flags_or_memory_type_undefined_are_invalid_parameter) {
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 8, 0, 4096, { { BACKING, 4096 } }),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        for (uint32_t m : { 0u, 3u, 4u, 99u })
                EXPECT_EQ(create_blob(3, m, 0, 0, 4096, { { BACKING, 4096 } }), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER))
                        << m;
}

TEST_F(VirglBlob, guest_blob_entries_outside_ram_short_or_missing_are_refused) {
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { MEM_SIZE - 2048, 4096 } }), bad);
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 8192, { { BACKING, 4096 } }), bad) << "short";
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, {}), bad) << "no entries";
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { BACKING, 0 } }), bad) << "empty entry";
        Req r(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB);
        r.u32(3).u32(VIRTIO_GPU_BLOB_MEM_GUEST).u32(0).u32(2).u64(0).u64(4096).u64(BACKING).u32(4096).u32(0);
        EXPECT_EQ(cmd(r), err(VIRTIO_GPU_RESP_ERR_UNSPEC)) << "fewer entries than nr_entries";
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(VirglBlob, blob_id_zero_or_reused_is_invalid_resource_id) {
        EXPECT_EQ(create_blob(0, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { BACKING, 4096 } }),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(texture(3), OK);
        EXPECT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { BACKING, 4096 } }),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(VirglBlob, host3d_blob_of_unknown_context_or_blob_id_is_refused) {
        EXPECT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 7, 4096, {}, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        EXPECT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 7, 4096, {}, 9), err(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID));
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        EXPECT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 12345, 4096, {}, 1),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)) << "no stream made that blob id";
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(VirglBlob, map_of_a_guest_blob_or_unmappable_blob_is_invalid_parameter) {
        ASSERT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 0, 4096,
                              { { BACKING, 4096 } }),
                  OK);
        EXPECT_EQ(map_blob(3, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        host3d_blob_id(1, 7);
        ASSERT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 7, 4096, {}, 1), OK);
        EXPECT_EQ(map_blob(4, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_TRUE(maps.empty());
}

TEST_F(VirglBlob, map_offset_unaligned_or_outside_the_region_is_invalid_parameter) {
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        host3d_blob_id(1, 7);
        ASSERT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 7, 4096, {}, 1), OK);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(map_blob(4, 100), bad);
        EXPECT_EQ(map_blob(4, 1 * MiB), bad) << "at the region's end";
        EXPECT_EQ(map_blob(4, 1 * MiB - 2048), bad);
        EXPECT_EQ(map_blob(4, UINT64_MAX - 4095), bad) << "offset + size wraps";
        EXPECT_TRUE(maps.empty());
}

TEST_F(VirglBlob, map_or_unmap_of_unknown_or_non_blob_resource_is_invalid_resource_id) {
        EXPECT_EQ(map_blob(42, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(texture(5), OK);
        EXPECT_EQ(map_blob(5, 0), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        EXPECT_EQ(unmap_blob(5), err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
}

TEST_F(VirglBlob, unmap_of_a_blob_not_mapped_is_invalid_parameter) {
        ASSERT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { BACKING, 4096 } }), OK);
        EXPECT_EQ(unmap_blob(3), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        EXPECT_TRUE(unmaps.empty());
}

TEST_F(VirglBlob, guest_blob_takes_2d_transfers_and_context_attach_as_nothing_to_do_and_refuses_backing_and_scanout) {
        ASSERT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { BACKING, 4096 } }), OK);
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D).u32(0).u32(0).u32(1).u32(1).u64(0).u32(3).u32(0)), OK);
        EXPECT_EQ(attach(3, BACKING, 4096), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING).u32(3).u32(0)), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
        EXPECT_EQ(cmd(Req(VIRTIO_GPU_CMD_SET_SCANOUT).u32(0).u32(0).u32(1).u32(1).u32(0).u32(3)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
        /* Not virglrenderer's: a context's streams cannot name it. */
        ASSERT_EQ(ctx_create(1), OK);
        EXPECT_EQ(ctx_attach(1, 3), OK);
}

/* SET_SCANOUT_BLOB: rect, scanout, resource, width, height, format,
 * padding, strides[4], offsets[4]. */
Req scanout_blob_req(uint32_t s, uint32_t id, uint32_t fw, uint32_t fh, uint32_t format, uint32_t stride,
                     uint32_t offset, uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
        Req r(VIRTIO_GPU_CMD_SET_SCANOUT_BLOB);
        r.u32(x).u32(y).u32(w).u32(h).u32(s).u32(id).u32(fw).u32(fh).u32(format).u32(0);
        r.u32(stride).u32(0).u32(0).u32(0).u32(offset).u32(0).u32(0).u32(0);
        return r;
}

constexpr uint32_t FMT2D = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;

TEST_F(VirglBlob, guest_blob_scanout_shows_the_guests_pixels_on_flush) {
        /* A 16x8 image, stride 80, 64 bytes into a two-page blob. */
        for (uint32_t y = 0; y < 8; y++)
                for (uint32_t x = 0; x < 16; x++) {
                        uint8_t p[4];
                        put_le32(p, 0xff000000u | y << 8 | x);
                        ASSERT_EQ(guest_write(mem, BACKING + 64 + y * 80 + x * 4, p, 4), 0);
                }
        ASSERT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, 8192,
                              { { BACKING, 8192 } }),
                  OK);
        ASSERT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 80, 64, 2, 1, 12, 6)), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 12u * 6 * 4) << "the shown copy is counted";
        ASSERT_EQ(disp->s[0].width, 12u);
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_FLUSH).u32(0).u32(0).u32(16).u32(8).u32(3).u32(0)), OK);
        for (uint32_t y = 0; y < 6; y++)
                for (uint32_t x = 0; x < 12; x++)
                        ASSERT_EQ(get_le32(disp->s[0].pixels + (y * 12 + x) * 4), 0xff000000u | (y + 1) << 8 | (x + 2))
                                << x << "," << y;
        /* Unref takes it off the scanout and frees the copy. */
        ASSERT_EQ(cmd(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(3).u32(0)), OK);
        EXPECT_EQ(virtio_gpu_memory_used(g), 0u);
}

TEST_F(VirglBlob, scanout_blob_bad_fields_are_refused) {
        ASSERT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096, { { BACKING, 4096 } }), OK);
        const Bytes bad = err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(cmd(scanout_blob_req(1, 3, 16, 8, FMT2D, 64, 0, 0, 0, 16, 8)), err(VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID));
        EXPECT_EQ(cmd(scanout_blob_req(0, 9, 16, 8, FMT2D, 64, 0, 0, 0, 16, 8)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID));
        ASSERT_EQ(texture(5), OK);
        EXPECT_EQ(cmd(scanout_blob_req(0, 5, 16, 8, FMT2D, 64, 0, 0, 0, 16, 8)),
                  err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID)) << "not a blob";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, 99, 64, 0, 0, 0, 16, 8)), bad) << "format";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 60, 0, 0, 0, 16, 8)), bad) << "stride under width * 4";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 64, 3840, 0, 0, 16, 8)), bad) << "image past the blob";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 65, FMT2D, 64, 0, 0, 0, 16, 8)), bad) << "image past the blob";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 0, 8, FMT2D, 64, 0, 0, 0, 0, 8)), bad) << "width 0";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 64, 0, 1, 0, 16, 8)), bad) << "rect outside";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 64, 0, UINT32_MAX, 0, 2, 8)), bad) << "x + w wraps";
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 64, 0, 0, 0, 0, 8)), bad) << "empty rect";
        Req r = scanout_blob_req(0, 3, 16, 8, FMT2D, 64, 0, 0, 0, 16, 8);
        r.b.resize(r.b.size() - 4);
        EXPECT_EQ(cmd(r), err(VIRTIO_GPU_RESP_ERR_UNSPEC)) << "short";
        EXPECT_EQ(virtio_gpu_memory_used(g), 16u * 8 * 4) << "the texture only";
}

TEST_F(VirglBlob, scanout_blob_of_a_host3d_blob_is_invalid_parameter) {
        ASSERT_EQ(ctx_create(1, 4, VIRTIO_GPU_CAPSET_VIRGL2), OK);
        host3d_blob_id(1, 7);
        ASSERT_EQ(create_blob(4, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 7, 4096, {}, 1), OK);
        EXPECT_EQ(cmd(scanout_blob_req(0, 4, 16, 8, FMT2D, 64, 0, 0, 0, 16, 8)), err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER));
}

TEST_F(VirglBlob, scanout_blob_past_the_memory_cap_is_out_of_memory) {
        make_blob(4096, 1 * MiB);
        ASSERT_EQ(create_blob(3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0, 4096 * 4, { { BACKING, 4096 * 4 } }), OK);
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 64, 32, FMT2D, 256, 0, 0, 0, 64, 32)), err(VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY));
}

TEST_F(Virgl, scanout_blob_without_the_feature_is_unspec) {
        EXPECT_EQ(cmd(scanout_blob_req(0, 3, 16, 8, FMT2D, 64, 0, 0, 0, 16, 8)), err(VIRTIO_GPU_RESP_ERR_UNSPEC));
}

/* ---- through the control queue ---- */

constexpr uint64_t RING = 0x10000;
constexpr uint64_t REQ = 0x200000;
constexpr uint64_t RESP = 0x300000;

class VirglQueue : public Virgl {
protected:
        void SetUp() override {
                Virgl::SetUp();
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
                Virgl::TearDown();
        }
        VirtqDriver *drv = nullptr;
        VirtQueue q{};
        VirtioChain *chain = new VirtioChain;
};

TEST_F(VirglQueue, fenced_chain_goes_back_once_its_fence_completed) {
        texture_in_context(1, 5);
        Bytes req = submit_req(1, clear_stream(5, 1, 0, 1), VIRTIO_GPU_FLAG_FENCE, 9).b;
        ASSERT_EQ(guest_write(mem, REQ, req.data(), req.size()), 0);
        uint16_t head = drv->add_chain({ { REQ, (uint32_t) req.size(), false }, { RESP, 64, true } });
        virtio_gpu_process(g, &q, chain);
        drain();
        ASSERT_EQ(drv->used_idx(), 1);
        EXPECT_EQ(drv->used(0).id, head);
        EXPECT_EQ(drv->used(0).len, 24u);
        Bytes got(24);
        ASSERT_EQ(guest_read(mem, RESP, got.data(), 24), 0);
        EXPECT_EQ(got, hdr(VIRTIO_GPU_RESP_OK_NODATA, VIRTIO_GPU_FLAG_FENCE, 9, 1));
        EXPECT_TRUE(done.empty()) << "the queue's own chains are pushed, not reported";
}

TEST_F(VirglQueue, reset_with_fences_held_drops_them_and_writes_nothing_to_the_ring) {
        texture_in_context(1, 5);
        Bytes ring = submit_req(1, clear_stream(5, 1, 0, 1), VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 9).b;
        Bytes global = submit_req(1, {}, VIRTIO_GPU_FLAG_FENCE, 10).b;
        ASSERT_EQ(guest_write(mem, REQ, ring.data(), ring.size()), 0);
        ASSERT_EQ(guest_write(mem, REQ + 0x1000, global.data(), global.size()), 0);
        drv->add_chain({ { REQ, (uint32_t) ring.size(), false }, { RESP, 64, true } });
        drv->add_chain({ { REQ + 0x1000, (uint32_t) global.size(), false }, { RESP + 0x1000, 64, true } });
        /* process() polls once: only what is still held is dropped. */
        virtio_gpu_process(g, &q, chain);
        uint16_t before = drv->used_idx();
        virtio_gpu_drop_held(g);
        drain();
        EXPECT_EQ(drv->used_idx(), before) << "nothing pushed after the reset";
        EXPECT_TRUE(done.empty());
        /* The device goes on: a fresh queue's fenced chain comes back. */
        virtq_reset(&q);
        delete drv;
        drv = new VirtqDriver(mem, RING, 16);
        drv->program(&q);
        ASSERT_EQ(virtq_enable(&q, mem, false, true), 0);
        drv->add_chain({ { REQ, (uint32_t) ring.size(), false }, { RESP, 64, true } });
        virtio_gpu_process(g, &q, chain);
        drain();
        EXPECT_EQ(drv->used_idx(), 1);
}

} // namespace
