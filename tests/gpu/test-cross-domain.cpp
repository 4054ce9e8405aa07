/* SPDX-License-Identifier: BSD-3-Clause */
/* The cross-domain context type (wayland/cross-domain.c) through the
 * virtio-gpu core's API, as the guest driver drives it for sommelier: the
 * capset, context init with capset 5, ring blobs, INIT in both layouts,
 * image requirements for every format, host blobs mapped and sent, POLL
 * fences held until an event, RECEIVE of descriptors, pipes both ways, and
 * each hostile input's answer. The compositor is the other end of a socket
 * pair the test holds (the real weston is in test-cross-domain-weston). */
#include <gtest/gtest.h>

#include <cstring>
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "tests/gpu/fake-display.h"
#include "gpu/virtio-gpu.h"
#include "tests/gpu/gpu-request.h"
#include "common/unaligned.h"
#include "wayland/cross-domain.h"

extern "C" {
#include "vmm/memory.h"
}

using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint64_t MEM_SIZE = 16 * 1024 * 1024;
constexpr uint64_t QUERY_GPA = 0x10000, CHANNEL_GPA = 0x20000;
constexpr uint32_t CTX = 7, QUERY = 100, CHANNEL = 101;
constexpr uint32_t FOURCC_XR24 = 0x34325258, FOURCC_R8 = 0x20203852, FOURCC_NV12 = 0x3231564e,
                   FOURCC_YU12 = 0x32315559;

enum { INIT = 1, GET_REQS = 2, POLL = 3, SEND = 4, RECEIVE = 5, READ = 6, WRITE = 7 };

using gpu_test::Req;

Bytes hdr(uint32_t type, uint32_t flags = 0, uint64_t fence = 0, uint32_t ctx = 0, uint8_t ring = 0) {
        return Req(type, flags, fence, ctx, ring).b;
}

/* A cross-domain command: header (cmd, ring, cmd_size) then the body. */
Bytes command(uint8_t cmd, const Bytes &body, int size = -1) {
        Bytes c(8, 0);
        c[0] = cmd;
        c.insert(c.end(), body.begin(), body.end());
        put_le16(&c[2], (uint16_t) (size >= 0 ? size : (int) c.size()));
        return c;
}

Bytes words(std::initializer_list<uint32_t> v) {
        Bytes b;
        for (uint32_t w : v) {
                b.resize(b.size() + 4);
                put_le32(&b[b.size() - 4], w);
        }
        return b;
}

/* SEND's body for n identifiers per layout (4 or 28). */
Bytes send_body(unsigned layout, const std::vector<std::pair<uint32_t, uint32_t>> &ids, const Bytes &data) {
        Bytes b(8 + 12 * layout, 0);
        put_le32(&b[0], (uint32_t) ids.size());
        put_le32(&b[4], (uint32_t) data.size());
        for (size_t i = 0; i < ids.size(); i++) {
                put_le32(&b[8 + 4 * i], ids[i].first);
                put_le32(&b[8 + 4 * (layout + i)], ids[i].second);
        }
        b.insert(b.end(), data.begin(), data.end());
        return b;
}

class CrossDomain : public ::testing::Test {
protected:
        void SetUp() override {
                signal(SIGPIPE, SIG_IGN); /* as majordome-gpu does */
                ASSERT_EQ(guest_memory_new(MEM_SIZE, &mem), 0);
                VirtioGpuOptions o = {};
                o.n_scanouts = 0;
                o.width = 64;
                o.height = 48;
                o.backend = VIRTIO_GPU_BACKEND_2D;
                o.response_done = on_done;
                o.response_done_ctx = this;
                o.blob = true;
                o.shm = { shm_map, shm_unmap, this };
                o.context_types = VIRTIO_GPU_CONTEXT_CROSS_DOMAIN;
                o.connect = connect;
                o.connect_ctx = this;
                ASSERT_EQ(virtio_gpu_new(&o, nullptr, &g), 0);
        }
        void TearDown() override {
                virtio_gpu_free(g);
                guest_memory_free(mem);
                for (int fd : compositors)
                        close(fd);
                for (auto &m : maps)
                        close(m.fd);
        }

        static void on_done(void *ctx, uint64_t token) { ((CrossDomain *) ctx)->done.push_back(token); }
        struct Map {
                int fd;
                uint64_t offset, len;
        };
        static int shm_map(void *ctx, int fd, uint64_t offset, uint64_t len) {
                ((CrossDomain *) ctx)->maps.push_back({ fcntl(fd, F_DUPFD_CLOEXEC, 3), offset, len });
                return 0;
        }
        static int shm_unmap(void *, uint64_t, uint64_t) { return 0; }
        /* Each connection: a socket pair, the compositor's end kept. */
        static int connect(void *ctx) {
                auto *t = (CrossDomain *) ctx;
                int sv[2];

                if (t->refuse_connect || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        return -ECONNREFUSED;
                t->compositors.push_back(sv[1]);
                return sv[0];
        }

        uint32_t ctrl(const Req &r, uint64_t token = 0, bool *held = nullptr) {
                Bytes resp(VIRTIO_GPU_MAX_RESPONSE, 0xee);
                bool h = false;
                size_t n = virtio_gpu_handle_token(g, mem, VIRTIO_GPU_QUEUE_CONTROL, r.b.data(), r.b.size(),
                                                   resp.data(), resp.size(), token, &h);
                if (held)
                        *held = h;
                last = Bytes(resp.begin(), resp.begin() + n);
                return n >= 4 ? get_le32(resp.data()) : 0;
        }
        uint32_t ctx_create(uint32_t ctx, uint32_t capset = CROSS_DOMAIN_CAPSET) {
                Req r(VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, ctx);
                r.u32(0).u32(capset);
                r.b.resize(r.b.size() + 64, 0);
                return ctrl(r);
        }
        uint32_t guest_blob(uint32_t id, uint64_t gpa, uint32_t size = 4096, uint32_t ctx = CTX) {
                return ctrl(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, ctx)
                                    .u32(id).u32(VIRTIO_GPU_BLOB_MEM_GUEST).u32(VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE)
                                    .u32(1).u64(0).u64(size).u64(gpa).u32(size).u32(0));
        }
        uint32_t host_blob(uint32_t id, uint64_t blob_id, uint64_t size, uint32_t ctx = CTX) {
                return ctrl(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, ctx)
                                    .u32(id).u32(VIRTIO_GPU_BLOB_MEM_HOST3D)
                                    .u32(VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE)
                                    .u32(0).u64(blob_id).u64(size));
        }
        uint32_t map_blob(uint32_t id, uint64_t offset) {
                return ctrl(Req(VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB).u32(id).u32(0).u64(offset));
        }
        /* SUBMIT_3D on ctx: fenced as the driver always does, on ring
         * `ring` (-1: no ring). */
        uint32_t submit(const Bytes &cmds, int ring = -1, uint64_t token = 0, bool *held = nullptr,
                        uint32_t ctx = CTX) {
                uint32_t flags = VIRTIO_GPU_FLAG_FENCE | (ring >= 0 ? VIRTIO_GPU_FLAG_INFO_RING_IDX : 0);
                Req r(VIRTIO_GPU_CMD_SUBMIT_3D, flags, ++fence, ctx, (uint8_t) (ring >= 0 ? ring : 0));
                r.u32((uint32_t) cmds.size()).u32(0).bytes(cmds);
                return ctrl(r, token, held);
        }
        /* The usual start: the context, two rings, INIT (20 bytes). */
        void start(bool two_rings = true) {
                ASSERT_EQ(ctx_create(CTX), VIRTIO_GPU_RESP_OK_NODATA);
                ASSERT_EQ(guest_blob(QUERY, QUERY_GPA), VIRTIO_GPU_RESP_OK_NODATA);
                ASSERT_EQ(guest_blob(CHANNEL, CHANNEL_GPA), VIRTIO_GPU_RESP_OK_NODATA);
                Bytes init = two_rings ? command(INIT, words({ QUERY, CHANNEL, 1 })) : command(INIT, words({ QUERY, 1 }));
                ASSERT_EQ(submit(init), VIRTIO_GPU_RESP_OK_NODATA);
                ASSERT_EQ(compositors.size(), 1u);
        }
        Bytes ring(uint64_t gpa, size_t n = 4096) {
                Bytes b(n);
                EXPECT_EQ(guest_read(mem, gpa, b.data(), n), 0);
                return b;
        }
        /* GET_IMAGE_REQUIREMENTS; the 64-byte answer. */
        Bytes image_reqs(uint32_t fourcc, uint32_t w, uint32_t h, uint32_t *resp = nullptr) {
                uint32_t r = submit(command(GET_REQS, words({ w, h, fourcc, 0 })), 0);
                if (resp)
                        *resp = r;
                return ring(QUERY_GPA, 64);
        }
        /* A POLL on the channel ring; whether it was held. */
        bool poll_channel(uint64_t token) {
                bool held = false;
                EXPECT_EQ(submit(command(POLL, Bytes(8, 0)), CROSS_DOMAIN_CHANNEL_RING, token, &held),
                          VIRTIO_GPU_RESP_OK_NODATA);
                return held;
        }
        /* Dispatches until token completes (the epoll set is real). */
        bool wait_done(uint64_t token, int ms = 2000) {
                for (int i = 0; i < ms / 10; i++) {
                        for (uint64_t t : done)
                                if (t == token)
                                        return true;
                        struct pollfd p = { virtio_gpu_fd(g), POLLIN, 0 };
                        (void) ::poll(&p, 1, 10);
                        virtio_gpu_dispatch(g);
                }
                for (uint64_t t : done)
                        if (t == token)
                                return true;
                return false;
        }
        /* What the compositor received: bytes and descriptors. */
        Bytes compositor_read(std::vector<int> *fds = nullptr, int which = 0) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 28)];
                } c;
                Bytes b(65536);
                struct iovec iov = { b.data(), b.size() };
                struct msghdr m = {};
                m.msg_iov = &iov;
                m.msg_iovlen = 1;
                m.msg_control = c.buf;
                m.msg_controllen = sizeof(c.buf);
                ssize_t n = recvmsg(compositors[which], &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0)
                        return Bytes();
                b.resize((size_t) n);
                for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
                        for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                                if (fds)
                                        fds->push_back(fd);
                                else
                                        close(fd);
                        }
                return b;
        }
        void compositor_send(const Bytes &data, const std::vector<int> &fds = {}, int which = 0) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 253)];
                } c = {};
                struct iovec iov = { (void *) data.data(), data.size() };
                struct msghdr m = {};
                m.msg_iov = &iov;
                m.msg_iovlen = 1;
                if (!fds.empty()) {
                        m.msg_control = c.buf;
                        m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
                        c.h.cmsg_level = SOL_SOCKET;
                        c.h.cmsg_type = SCM_RIGHTS;
                        c.h.cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
                        memcpy(CMSG_DATA(&c.h), fds.data(), sizeof(int) * fds.size());
                }
                ASSERT_EQ(sendmsg(compositors[which], &m, 0), (ssize_t) data.size());
        }
        /* The guest's first SEND tells the layout; a Wayland client
         * speaks first. */
        void hello(unsigned layout = 28) {
                ASSERT_EQ(submit(command(SEND, send_body(layout, {}, words({ 1, 0x000c0001, 2 })))),
                          VIRTIO_GPU_RESP_OK_NODATA);
                EXPECT_EQ(compositor_read(), words({ 1, 0x000c0001, 2 }));
        }
        static int memfd_with(const std::string &s) {
                int fd = memfd_create("test", MFD_CLOEXEC);
                EXPECT_EQ(write(fd, s.data(), s.size()), (ssize_t) s.size());
                return fd;
        }

        GuestMemory *mem = nullptr;
        VirtioGpu *g = nullptr;
        std::vector<uint64_t> done;
        std::vector<Map> maps;
        std::vector<int> compositors;
        bool refuse_connect = false;
        Bytes last;
        uint64_t fence = 0;
};

TEST_F(CrossDomain, offers_capset_5_version_0_with_wayland_and_no_dmabuf_and_the_features_sommelier_checks) {
        uint64_t f = virtio_gpu_features(g);
        EXPECT_TRUE(f & (1u << VIRTIO_GPU_F_VIRGL));
        EXPECT_TRUE(f & (1u << VIRTIO_GPU_F_CONTEXT_INIT));
        EXPECT_TRUE(f & (1u << VIRTIO_GPU_F_RESOURCE_BLOB));
        ASSERT_EQ(ctrl(Req(VIRTIO_GPU_CMD_GET_CAPSET_INFO).u32(0).u32(0)), VIRTIO_GPU_RESP_OK_CAPSET_INFO);
        EXPECT_EQ(get_le32(&last[24]), 5u);
        EXPECT_EQ(get_le32(&last[28]), 0u);
        EXPECT_EQ(get_le32(&last[32]), 16u);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_GET_CAPSET_INFO).u32(1).u32(0)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        ASSERT_EQ(ctrl(Req(VIRTIO_GPU_CMD_GET_CAPSET).u32(5).u32(0)), VIRTIO_GPU_RESP_OK_CAPSET);
        EXPECT_EQ(Bytes(last.begin() + 24, last.end()), words({ 1, 2, 0, 0 }));
        /* virgl is not offered: no virglrenderer context. */
        EXPECT_EQ(ctx_create(3, VIRTIO_GPU_CAPSET_VIRGL), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(ctx_create(3, VIRTIO_GPU_CAPSET_VIRGL2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

/* The Linux driver's default context (no context_init: capset 0), made
 * for every client that opens the card, a dumb-buffer one too: it takes
 * attach and detach of resources that exist, renders nothing, and goes
 * with destroy or a reset. Refused, it cost four errors in the guest's
 * log at each open, and every dumb buffer's attach. */
TEST_F(CrossDomain, default_context_without_virgl_takes_attach_and_detach_and_renders_nothing) {
        ASSERT_EQ(ctx_create(3, 0), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(ctx_create(3, 0), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID) << "its id is taken";
        ASSERT_EQ(ctrl(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(7).u32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM).u32(4).u32(4)),
                  VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, 3).u32(7).u32(0)), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 0, 0, 3).u32(7).u32(0)), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, 3).u32(8).u32(0)),
                  VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
        /* A stream, fenced on ring 0 or not: refused at once, never held. */
        bool held = true;
        EXPECT_EQ(submit(Bytes(8, 0), 0, 1, &held, 3), VIRTIO_GPU_RESP_ERR_UNSPEC);
        EXPECT_FALSE(held);
        EXPECT_EQ(submit(Bytes(8, 0), -1, 2, &held, 3), VIRTIO_GPU_RESP_ERR_UNSPEC);
        EXPECT_FALSE(held);
        /* No host blob of its own. */
        EXPECT_EQ(host_blob(9, 1, 4096, 3), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, 3)), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, 3)), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
        /* A reset and the device's end with one alive. */
        ASSERT_EQ(ctx_create(4, 0), VIRTIO_GPU_RESP_OK_NODATA);
        virtio_gpu_reset(g);
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, 4)), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
        ASSERT_EQ(ctx_create(4, 0), VIRTIO_GPU_RESP_OK_NODATA);
}

TEST_F(CrossDomain, virgl_context_types_need_the_virgl_back_end_and_cross_domain_needs_blob) {
        /* (The names are parsed by vmm_gpu_context_types_from_string():
         * tests/unit/test-vmm-config.cpp.) */
        VirtioGpu *other = nullptr;
        VirtioGpuOptions o = {};
        o.width = o.height = 64;
        o.context_types = VIRTIO_GPU_CONTEXT_VIRGL;
        o.blob = true;
        EXPECT_EQ(virtio_gpu_new(&o, nullptr, &other), -EINVAL);
        o.context_types = VIRTIO_GPU_CONTEXT_CROSS_DOMAIN;
        o.blob = false;
        EXPECT_EQ(virtio_gpu_new(&o, nullptr, &other), -EINVAL);
}

TEST_F(CrossDomain, init_of_both_layouts_connects_once_per_context) {
        start(true);
        /* A second context, the 16-byte INIT: one ring for both. */
        ASSERT_EQ(ctx_create(8), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(guest_blob(200, 0x30000, 4096, 8), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(INIT, words({ 200, 1 })), -1, 0, nullptr, 8), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(compositors.size(), 2u);
        /* Its image requirements land in that one ring. */
        Req r(VIRTIO_GPU_CMD_SUBMIT_3D, VIRTIO_GPU_FLAG_FENCE, 99, 8);
        Bytes c = command(GET_REQS, words({ 16, 16, FOURCC_XR24, 0 }));
        r.u32((uint32_t) c.size()).u32(0).bytes(c);
        EXPECT_EQ(ctrl(r), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(get_le32(&ring(0x30000, 64)[0]), 64u);
        /* INIT twice: refused. */
        EXPECT_EQ(submit(command(INIT, words({ QUERY, CHANNEL, 1 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

TEST_F(CrossDomain, image_requirements_for_every_format_are_linear_64_byte_rows_in_whole_pages) {
        start();
        Bytes a = image_reqs(FOURCC_XR24, 100, 50);
        EXPECT_EQ(get_le32(&a[0]), 448u);               /* 400 rounded to 64 */
        EXPECT_EQ(get_le32(&a[16]), 0u);
        EXPECT_EQ(get_le64(&a[32]), 0u);                /* linear */
        EXPECT_EQ(get_le64(&a[40]), 24576u);            /* 448 * 50 = 22400, in pages */
        uint32_t id = get_le32(&a[48]);
        EXPECT_EQ(id % 2, 0u);                          /* requirement ids even */
        EXPECT_EQ(get_le32(&a[52]), (uint32_t) VIRTIO_GPU_MAP_CACHE_CACHED);
        EXPECT_EQ((int32_t) get_le32(&a[56]), -1);
        /* sommelier's shm pool: R8, width = the pool's bytes, height 1;
         * size at u32 index 10, blob id at 12. */
        Bytes p = image_reqs(FOURCC_R8, 65536, 1);
        EXPECT_EQ(get_le32(&p[40]), 65536u);
        EXPECT_NE(get_le32(&p[48]), id);
        /* Multi-planar: NV12's chroma plane after the luma, half height. */
        Bytes n = image_reqs(FOURCC_NV12, 64, 64);
        EXPECT_EQ(get_le32(&n[0]), 64u);
        EXPECT_EQ(get_le32(&n[4]), 64u);
        EXPECT_EQ(get_le32(&n[20]), 64u * 64);
        Bytes y = image_reqs(FOURCC_YU12, 64, 64);
        EXPECT_EQ(get_le32(&y[24]), 64u * 64 + 64 * 32);
        /* Every format the table knows, at an odd size. */
        const uint32_t all[] = { 0x20203852, 0x20363152, 0x38384752, 0x38385247, 0x36314752, 0x36314742,
                                 0x35315258, 0x35315241, 0x32315258, 0x32315241, 0x34324752, 0x34324742,
                                 0x34325258, 0x34325241, 0x34324258, 0x34324241, 0x34325852, 0x34324152,
                                 0x34325842, 0x34324142, 0x30335258, 0x30335241, 0x30334258, 0x30334241,
                                 0x48345258, 0x48345241, 0x48344258, 0x48344241, 0x56595559, 0x55595659,
                                 0x59565955, 0x59555956, 0x3231564e, 0x3132564e, 0x3631564e, 0x3136564e,
                                 0x30313050, 0x32315559, 0x32315659, 0x36315559, 0x36315659, 0x34325559,
                                 0x34325659 };
        for (uint32_t f : all) {
                CrossDomainImage img;
                ASSERT_EQ(cross_domain_image_requirements(f, 33, 17, &img), 0) << std::hex << f;
                EXPECT_EQ(img.size % 4096, 0u);
                for (unsigned pl = 0; pl < img.planes; pl++)
                        EXPECT_EQ(img.strides[pl] % 64, 0u);
                uint32_t r = 0;
                Bytes ans = image_reqs(f, 33, 17, &r);
                EXPECT_EQ(r, VIRTIO_GPU_RESP_OK_NODATA);
                EXPECT_EQ(get_le64(&ans[40]), img.size);
        }
        /* Unknown formats, zero or huge sizes: refused, nothing written. */
        uint32_t r = 0;
        image_reqs(0x12345678, 16, 16, &r);
        EXPECT_EQ(r, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        image_reqs(FOURCC_XR24, 0, 16, &r);
        EXPECT_EQ(r, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        image_reqs(FOURCC_XR24, 65536, 65536, &r);
        EXPECT_EQ(r, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

TEST_F(CrossDomain, a_host_blob_is_mapped_and_sent_to_the_compositor_as_its_shm_pool) {
        start();
        Bytes a = image_reqs(FOURCC_XR24, 64, 64);
        ASSERT_EQ(host_blob(300, get_le32(&a[48]), get_le64(&a[40])), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(map_blob(300, 0), VIRTIO_GPU_RESP_OK_MAP_INFO);
        EXPECT_EQ(get_le32(&last[24]), (uint32_t) VIRTIO_GPU_MAP_CACHE_CACHED);
        ASSERT_EQ(maps.size(), 1u);
        EXPECT_EQ(maps[0].len, 16384u);
        /* The guest writes through its mapping (the same memory). */
        uint32_t *px = (uint32_t *) mmap(nullptr, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, maps[0].fd, 0);
        ASSERT_NE(px, MAP_FAILED);
        for (int i = 0; i < 4096; i++)
                px[i] = 0x00ff0000 | (uint32_t) i;
        /* wl_shm.create_pool with the blob as its fd. */
        Bytes msg = words({ 3, 0x000c0000, 4, 16384 });
        ASSERT_EQ(submit(command(SEND, send_body(28, { { 300, 1 } }, msg))), VIRTIO_GPU_RESP_OK_NODATA);
        std::vector<int> fds;
        EXPECT_EQ(compositor_read(&fds), msg);
        ASSERT_EQ(fds.size(), 1u);
        struct stat st;
        ASSERT_EQ(fstat(fds[0], &st), 0);
        EXPECT_EQ(st.st_size, 16384);
        /* Sealed: the compositor cannot shrink what the guest maps. */
        EXPECT_TRUE(fcntl(fds[0], F_GET_SEALS) & F_SEAL_SHRINK);
        EXPECT_LT(ftruncate(fds[0], 4096), 0);
        uint32_t *seen = (uint32_t *) mmap(nullptr, 16384, PROT_READ, MAP_SHARED, fds[0], 0);
        ASSERT_NE(seen, MAP_FAILED);
        EXPECT_EQ(seen[1234], 0x00ff0000u | 1234);
        munmap(seen, 16384);
        munmap(px, 16384);
        close(fds[0]);
        /* The same requirements serve a second, separate buffer. */
        ASSERT_EQ(host_blob(301, get_le32(&a[48]), get_le64(&a[40])), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(virtio_gpu_memory_used(g), 2 * 16384u);
}

TEST_F(CrossDomain, send_takes_both_layouts_told_apart_by_the_commands_size) {
        start();
        Bytes msg = words({ 1, 0x000c0001, 2 });
        EXPECT_EQ(submit(command(SEND, send_body(4, {}, msg))), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(compositor_read(), msg);
        EXPECT_EQ(submit(command(SEND, send_body(28, {}, msg))), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(compositor_read(), msg);
        /* Two commands in one buffer. */
        Bytes two = command(SEND, send_body(28, {}, msg));
        Bytes second = command(SEND, send_body(4, {}, words({ 9 })));
        two.insert(two.end(), second.begin(), second.end());
        EXPECT_EQ(submit(two), VIRTIO_GPU_RESP_OK_NODATA);
        Bytes got = compositor_read();
        EXPECT_EQ(got.size(), 16u);
}

TEST_F(CrossDomain, poll_is_held_until_the_compositor_speaks_then_receive_carries_bytes_and_a_keymap) {
        start();
        hello(28);
        ASSERT_TRUE(poll_channel(1));
        /* Nothing from the compositor: still held; other commands answer. */
        EXPECT_FALSE(wait_done(1, 50));
        uint32_t r;
        image_reqs(FOURCC_XR24, 8, 8, &r);
        EXPECT_EQ(r, VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_FALSE(wait_done(1, 20));
        /* wl_keyboard.keymap: bytes and a file. */
        std::string keymap = "xkb_keymap { xkb_keycodes { }; };";
        int kfd = memfd_with(keymap);
        Bytes ev = words({ 5, 0x00100000, 1, 0, (uint32_t) keymap.size() });
        compositor_send(ev, { kfd });
        close(kfd);
        ASSERT_TRUE(wait_done(1));
        Bytes c = ring(CHANNEL_GPA);
        EXPECT_EQ(c[0], RECEIVE);
        EXPECT_EQ(get_le16(&c[2]), 352u + ev.size());
        ASSERT_EQ(get_le32(&c[8]), 1u);                 /* identifiers */
        EXPECT_EQ(get_le32(&c[12]), ev.size());
        uint32_t id = get_le32(&c[16]);
        EXPECT_EQ(id % 2, 1u);                          /* host ids odd */
        EXPECT_EQ(get_le32(&c[16 + 4 * 28]), 1u);       /* a blob */
        EXPECT_EQ(get_le32(&c[16 + 4 * 56]), keymap.size());
        EXPECT_EQ(Bytes(c.begin() + 352, c.begin() + 352 + ev.size()), ev);
        /* The guest makes a blob of it (its size as given) and maps it. */
        ASSERT_EQ(host_blob(400, id, keymap.size()), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(map_blob(400, 1 << 20), VIRTIO_GPU_RESP_OK_MAP_INFO);
        char buf[64] = {};
        ASSERT_EQ(pread(maps.back().fd, buf, keymap.size(), 0), (ssize_t) keymap.size());
        EXPECT_EQ(std::string(buf), keymap);
        /* Taken once. */
        EXPECT_EQ(host_blob(401, id, keymap.size()), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

TEST_F(CrossDomain, an_event_waiting_already_completes_the_next_poll_at_once_and_one_event_per_poll) {
        start();
        hello();
        compositor_send(words({ 1, 2, 3 }));
        compositor_send(words({ 4, 5 }));
        usleep(10000);
        /* Each poll gets one event; the bytes of both may come as one
         * read, never more than the ring holds. */
        ASSERT_TRUE(poll_channel(11));
        ASSERT_TRUE(wait_done(11));
        Bytes c = ring(CHANNEL_GPA);
        EXPECT_EQ(c[0], RECEIVE);
        size_t got = get_le32(&c[12]);
        if (got < 20) {
                ASSERT_TRUE(poll_channel(12));
                ASSERT_TRUE(wait_done(12));
                got += get_le32(&ring(CHANNEL_GPA)[12]);
        }
        EXPECT_EQ(got, 20u);
        /* Nothing more: the next poll waits. */
        ASSERT_TRUE(poll_channel(13));
        EXPECT_FALSE(wait_done(13, 50));
}

/* ---- fences per ring ---- */

TEST_F(CrossDomain, a_held_channel_fence_holds_back_no_other_ring_and_channel_fences_complete_in_order) {
        start();
        hello();
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(poll_channel(2));
        /* Ring 0 (query) and no ring: answered at once, past ring 1's. */
        bool held = true;
        EXPECT_EQ(submit(command(GET_REQS, words({ 8, 8, FOURCC_XR24, 0 })), 0, 3, &held), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_FALSE(held);
        EXPECT_EQ(last, hdr(VIRTIO_GPU_RESP_OK_NODATA, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, fence, CTX, 0));
        held = true;
        EXPECT_EQ(submit(command(GET_REQS, words({ 8, 8, FOURCC_XR24, 0 })), -1, 4, &held), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_FALSE(held);
        EXPECT_TRUE(done.empty());
        /* One event: the oldest channel fence only. */
        compositor_send(words({ 1, 2, 3 }));
        ASSERT_TRUE(wait_done(1));
        EXPECT_EQ(done, std::vector<uint64_t>({ 1 }));
        compositor_send(words({ 4, 5 }));
        ASSERT_TRUE(wait_done(2));
        EXPECT_EQ(done, std::vector<uint64_t>({ 1, 2 }));
}

TEST_F(CrossDomain, fence_on_a_ring_past_the_channel_is_invalid_parameter_and_not_run) {
        start();
        bool held = true;
        EXPECT_EQ(submit(command(GET_REQS, words({ 8, 8, FOURCC_XR24, 0 })), 2, 5, &held),
                  VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_FALSE(held);
        EXPECT_EQ(last, hdr(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX,
                            fence, CTX, 2));
        EXPECT_EQ(submit(command(GET_REQS, words({ 8, 8, FOURCC_XR24, 0 })), 64, 6, &held),
                  VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_FALSE(held);
}

TEST_F(CrossDomain, ring_idx_on_a_context_less_command_is_invalid_context_id) {
        bool held = true;
        Req r(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 7, 0, 1);
        r.u32(90).u32(VIRTIO_GPU_BLOB_MEM_GUEST).u32(VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE).u32(1).u64(0).u64(4096);
        r.u64(QUERY_GPA).u32(4096).u32(0);
        EXPECT_EQ(ctrl(r, 7, &held), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
        EXPECT_FALSE(held);
        EXPECT_EQ(last, hdr(VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX,
                            7, 0, 1));
        /* Not created. */
        EXPECT_EQ(guest_blob(90, QUERY_GPA, 4096, 0), VIRTIO_GPU_RESP_OK_NODATA);
}

TEST_F(CrossDomain, context_destroyed_with_channel_fences_held_completes_them) {
        start();
        hello();
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(poll_channel(2));
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, CTX)), VIRTIO_GPU_RESP_OK_NODATA);
        virtio_gpu_dispatch(g);
        EXPECT_EQ(done, std::vector<uint64_t>({ 1, 2 }));
}

TEST_F(CrossDomain, reset_with_channel_fences_held_drops_them) {
        start();
        hello();
        ASSERT_TRUE(poll_channel(1));
        virtio_gpu_drop_held(g);
        /* An event afterwards completes nothing of before the reset. */
        Bytes before = ring(CHANNEL_GPA, 64);
        compositor_send(words({ 1 }));
        EXPECT_FALSE(wait_done(1, 50));
        EXPECT_TRUE(done.empty());
        EXPECT_EQ(ring(CHANNEL_GPA, 64), before);
        /* A poll after the reset gets the event. */
        ASSERT_TRUE(poll_channel(2));
        ASSERT_TRUE(wait_done(2));
        EXPECT_EQ(ring(CHANNEL_GPA, 64)[0], RECEIVE);
}

TEST_F(CrossDomain, the_old_layout_receives_at_most_four_descriptors_per_event_bytes_with_the_last) {
        start();
        hello(4);
        std::vector<int> fds;
        for (int i = 0; i < 6; i++)
                fds.push_back(memfd_with("k" + std::to_string(i)));
        compositor_send(words({ 42 }), fds);
        for (int fd : fds)
                close(fd);
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        Bytes c = ring(CHANNEL_GPA);
        EXPECT_EQ(get_le32(&c[8]), 4u);
        EXPECT_EQ(get_le32(&c[12]), 0u);                /* bytes after their descriptors */
        EXPECT_EQ(get_le16(&c[2]), 64u);
        ASSERT_TRUE(poll_channel(2));
        ASSERT_TRUE(wait_done(2));
        c = ring(CHANNEL_GPA);
        EXPECT_EQ(get_le32(&c[8]), 2u);
        EXPECT_EQ(get_le32(&c[12]), 4u);
        EXPECT_EQ(get_le32(&c[64]), 42u);
}

TEST_F(CrossDomain, a_read_pipe_carries_the_compositors_bytes_to_the_guest_then_its_hang_up) {
        start();
        const uint32_t pipe_id = 0x80000001;
        Bytes msg = words({ 9, 0x000c0001, 0x1234 });   /* wl_data_offer.receive, say */
        ASSERT_EQ(submit(command(SEND, send_body(28, { { pipe_id, 3 } }, msg))), VIRTIO_GPU_RESP_OK_NODATA);
        std::vector<int> fds;
        EXPECT_EQ(compositor_read(&fds), msg);
        ASSERT_EQ(fds.size(), 1u);
        ASSERT_EQ(write(fds[0], "clipboard!", 10), 10);
        close(fds[0]);
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        Bytes c = ring(CHANNEL_GPA);
        EXPECT_EQ(c[0], READ);
        EXPECT_EQ(get_le32(&c[8]), pipe_id);
        EXPECT_EQ(get_le32(&c[12]), 0u);
        ASSERT_EQ(get_le32(&c[16]), 10u);
        EXPECT_EQ(std::string(c.begin() + 24, c.begin() + 34), "clipboard!");
        ASSERT_TRUE(poll_channel(2));
        ASSERT_TRUE(wait_done(2));
        c = ring(CHANNEL_GPA);
        EXPECT_EQ(c[0], READ);
        EXPECT_EQ(get_le32(&c[8]), pipe_id);
        EXPECT_EQ(get_le32(&c[12]), 1u);                /* hang-up */
        EXPECT_EQ(get_le32(&c[16]), 0u);
        /* Its id is free again. */
        EXPECT_EQ(submit(command(SEND, send_body(28, { { pipe_id, 3 } }, msg))), VIRTIO_GPU_RESP_OK_NODATA);
        compositor_read();
}

TEST_F(CrossDomain, a_write_pipe_from_the_compositor_takes_the_guests_writes_and_its_hang_up) {
        start();
        hello();
        int p[2];
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        compositor_send(words({ 7, 0x000c0000, 0 }), { p[1] });   /* wl_data_source.send */
        close(p[1]);
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        Bytes c = ring(CHANNEL_GPA);
        ASSERT_EQ(get_le32(&c[8]), 1u);
        EXPECT_EQ(get_le32(&c[16 + 4 * 28]), 4u);       /* a write pipe, not crosvm's 1 */
        uint32_t id = get_le32(&c[16]);
        Bytes data = { 'h', 'e', 'l', 'l', 'o' };
        Bytes body = words({ id, 0, 5, 0 });
        body.insert(body.end(), data.begin(), data.end());
        EXPECT_EQ(submit(command(WRITE, body)), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(WRITE, words({ id, 1, 0, 0 }))), VIRTIO_GPU_RESP_OK_NODATA);
        char buf[16];
        EXPECT_EQ(read(p[0], buf, sizeof(buf)), 5);
        EXPECT_EQ(read(p[0], buf, sizeof(buf)), 0);     /* closed after the hang-up */
        close(p[0]);
        /* Closed: a WRITE to it now is refused. */
        EXPECT_EQ(submit(command(WRITE, words({ id, 0, 0, 0 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

TEST_F(CrossDomain, a_write_to_a_pipe_whose_reader_closed_is_refused_after_it_is_seen_gone) {
        start();
        hello();
        int p[2];
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        compositor_send(words({ 7, 0x000c0000, 0 }), { p[1] });
        close(p[1]);
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        uint32_t id = get_le32(&ring(CHANNEL_GPA)[16]);
        close(p[0]);
        Bytes body = words({ id, 0, 4, 0, 0x61626364 });
        EXPECT_EQ(submit(command(WRITE, body)), VIRTIO_GPU_RESP_OK_NODATA);   /* EPIPE: dropped, pipe gone */
        EXPECT_EQ(submit(command(WRITE, body)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

TEST_F(CrossDomain, the_compositor_closing_mid_message_is_reported_as_a_read_hang_up_with_identifier_0_and_sends_then_fail) {
        start();
        hello();
        /* Half a Wayland message (its header cut), then gone: the bytes
         * are passed on as they are (the protocol is the guest's to parse). */
        compositor_send(Bytes{ 1, 0, 0, 0, 0x10, 0 });
        close(compositors[0]);
        compositors[0] = -1;
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        Bytes first = ring(CHANNEL_GPA);
        EXPECT_EQ(first[0], RECEIVE);                   /* what it said before going */
        EXPECT_EQ(get_le32(&first[12]), 6u);
        ASSERT_TRUE(poll_channel(2));
        ASSERT_TRUE(wait_done(2));
        Bytes c = ring(CHANNEL_GPA);
        EXPECT_EQ(c[0], READ);
        EXPECT_EQ(get_le32(&c[8]), 0u);
        EXPECT_EQ(get_le32(&c[12]), 1u);
        EXPECT_EQ(submit(command(SEND, send_body(28, {}, words({ 1 })))), VIRTIO_GPU_RESP_ERR_UNSPEC);
        /* Reported once: the next poll waits (until the context goes). */
        ASSERT_TRUE(poll_channel(3));
        EXPECT_FALSE(wait_done(3, 50));
        EXPECT_EQ(ctrl(Req(VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, CTX)), VIRTIO_GPU_RESP_OK_NODATA);
        virtio_gpu_dispatch(g);
        EXPECT_TRUE(wait_done(3, 50));
}

TEST_F(CrossDomain, a_guest_that_never_polls_leaves_the_compositors_flood_in_the_kernel_not_in_our_memory) {
        start();
        hello();
        /* Fill the compositor's side until the socket takes no more. */
        int fl = fcntl(compositors[0], F_GETFL);
        ASSERT_EQ(fcntl(compositors[0], F_SETFL, fl | O_NONBLOCK), 0);
        Bytes chunk(4096, 0x5a);
        size_t sent = 0;
        for (int i = 0; i < 100000; i++) {
                ssize_t n = send(compositors[0], chunk.data(), chunk.size(), MSG_DONTWAIT);
                if (n <= 0)
                        break;
                sent += (size_t) n;
                virtio_gpu_dispatch(g);
        }
        EXPECT_GT(sent, 0u);
        EXPECT_LT(sent, 64u * 1024 * 1024);             /* the socket filled: nobody read it */
        /* A poll then takes one ring's worth. */
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        EXPECT_EQ(get_le32(&ring(CHANNEL_GPA)[12]), 4096u - 352);
}

TEST_F(CrossDomain, bad_commands_get_errors_and_the_context_goes_on) {
        start();
        /* Every size but the right ones. */
        for (int sz = 8; sz <= 40; sz += 4) {
                if (sz != 16 && sz != 20) {
                        EXPECT_EQ(submit(command(INIT, Bytes(sz - 8, 0), sz)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)
                                << "INIT " << sz;
                }
                if (sz != 24) {
                        EXPECT_EQ(submit(command(GET_REQS, Bytes(sz - 8, 0), sz)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)
                                << "GET_IMAGE_REQUIREMENTS " << sz;
                }
                if (sz != 16) {
                        EXPECT_EQ(submit(command(POLL, Bytes(sz - 8, 0), sz)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)
                                << "POLL " << sz;
                }
                if (sz < 24) {
                        EXPECT_EQ(submit(command(WRITE, Bytes(sz - 8, 0), sz)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)
                                << "WRITE " << sz;
                }
        }
        /* SEND's header neither 64 nor 352 bytes. */
        for (unsigned layout : { 3u, 5u, 27u, 29u })
                EXPECT_EQ(submit(command(SEND, send_body(layout, {}, words({ 1 })))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        /* cmd_size past the buffer, below the header, zero. */
        EXPECT_EQ(submit(command(POLL, Bytes(8, 0), 17)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(POLL, Bytes(8, 0), 4)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(Bytes(3, 0)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(Bytes()), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        /* The guest may not send what only the host does. */
        EXPECT_EQ(submit(command(RECEIVE, send_body(28, {}, {}))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(READ, words({ 1, 0, 0, 0 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(0, Bytes(8, 0))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(99, Bytes(8, 0))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        /* Identifiers never created, of the wrong kind, reused; more than
         * the layout allows; opaque sizes over the command. */
        EXPECT_EQ(submit(command(SEND, send_body(28, { { 999, 1 } }, {}))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(SEND, send_body(28, { { QUERY, 1 } }, {}))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(SEND, send_body(28, { { 5, 2 } }, {}))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(SEND, send_body(28, { { 5, 4 } }, {}))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(SEND, send_body(28, { { 0x80000001, 3 }, { 0x80000002, 3 } }, {}))),
                  VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        ASSERT_EQ(submit(command(SEND, send_body(28, { { 0x80000001, 3 } }, {}))), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(SEND, send_body(28, { { 0x80000001, 3 } }, {}))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        Bytes five = send_body(4, {}, {});
        put_le32(&five[0], 5);
        EXPECT_EQ(submit(command(SEND, five)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        Bytes over = send_body(28, {}, words({ 1 }));
        put_le32(&over[4], 1000);
        EXPECT_EQ(submit(command(SEND, over)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        Bytes wover = words({ 1, 0, 1000, 0 });
        EXPECT_EQ(submit(command(WRITE, wover)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(WRITE, words({ 12345, 0, 0, 0 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        /* Host blobs of ids never given, or larger than their image. */
        EXPECT_EQ(host_blob(500, 12345, 4096), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        Bytes a = image_reqs(FOURCC_XR24, 16, 16);
        EXPECT_EQ(host_blob(501, get_le32(&a[48]), get_le64(&a[40]) + 4096), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        /* Still fine afterwards. */
        compositor_read();
        EXPECT_EQ(submit(command(SEND, send_body(28, {}, words({ 1 })))), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(compositor_read(), words({ 1 }));
}

TEST_F(CrossDomain, rings_not_created_not_guest_blobs_or_too_small_refuse_init) {
        ASSERT_EQ(ctx_create(CTX), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(guest_blob(QUERY, QUERY_GPA), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(guest_blob(CHANNEL, CHANNEL_GPA), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(INIT, words({ 77, CHANNEL, 1 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(INIT, words({ QUERY, 77, 1 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        ASSERT_EQ(ctrl(Req(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D).u32(60).u32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM).u32(8).u32(8)),
                  VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(INIT, words({ QUERY, 60, 1 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        ASSERT_EQ(guest_blob(61, 0x40000, 4096), VIRTIO_GPU_RESP_OK_NODATA);
        Bytes tiny = command(INIT, words({ QUERY, 61, 1 }));
        ASSERT_EQ(ctrl(Req(VIRTIO_GPU_CMD_RESOURCE_UNREF).u32(61).u32(0)), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(tiny), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(INIT, words({ QUERY, CHANNEL, 2 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        /* Before INIT nothing else works. */
        EXPECT_EQ(submit(command(POLL, Bytes(8, 0))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(submit(command(GET_REQS, words({ 8, 8, FOURCC_XR24, 0 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_TRUE(compositors.empty());
        /* A compositor that cannot be reached: INIT fails, said once, and
         * the channel's first poll gets its hang-up (the guest's driver
         * does not pass INIT's error on): never an empty ring. */
        refuse_connect = true;
        EXPECT_EQ(submit(command(INIT, words({ QUERY, CHANNEL, 1 }))), VIRTIO_GPU_RESP_ERR_UNSPEC);
        ASSERT_TRUE(poll_channel(1));
        ASSERT_TRUE(wait_done(1));
        Bytes c = ring(CHANNEL_GPA);
        EXPECT_EQ(c[0], READ);
        EXPECT_EQ(get_le32(&c[8]), 0u);
        EXPECT_EQ(get_le32(&c[12]), 1u);
        EXPECT_EQ(submit(command(SEND, send_body(28, {}, words({ 1 })))), VIRTIO_GPU_RESP_ERR_UNSPEC);
        ASSERT_TRUE(poll_channel(2));
        EXPECT_FALSE(wait_done(2, 50));                 /* once */
        /* It may try again, and then it is a context like any. */
        refuse_connect = false;
        EXPECT_EQ(submit(command(INIT, words({ QUERY, CHANNEL, 1 }))), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(INIT, words({ QUERY, CHANNEL, 1 }))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
        EXPECT_EQ(compositors.size(), 1u);
}

TEST_F(CrossDomain, a_context_without_the_wayland_channel_answers_image_requirements_and_refuses_poll) {
        ASSERT_EQ(ctx_create(CTX), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(guest_blob(QUERY, QUERY_GPA), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(INIT, words({ QUERY, 0 }))), VIRTIO_GPU_RESP_OK_NODATA);  /* one ring, type 0 */
        EXPECT_TRUE(compositors.empty());
        uint32_t r = 0;
        Bytes reqs = image_reqs(FOURCC_XR24, 8, 8, &r);
        EXPECT_EQ(r, (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(get_le32(&reqs[0]), 64u);             /* the stride: 32 bytes, in 64-byte rows */
        /* No channel: a poll would wait for ever. */
        EXPECT_EQ(submit(command(POLL, Bytes(8, 0))), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

TEST_F(CrossDomain, pipes_and_items_are_capped_per_context) {
        start();
        unsigned ok = 0;
        for (uint32_t i = 0; i < CROSS_DOMAIN_MAX_PIPES + 4; i++) {
                uint32_t r = submit(command(SEND, send_body(28, { { 0x80000001 + i, 3 } }, words({ i }))));
                if (r == VIRTIO_GPU_RESP_OK_NODATA)
                        ok++;
                else
                        EXPECT_EQ(r, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
                std::vector<int> fds;
                compositor_read(&fds);
                for (int fd : fds)
                        close(fd);
        }
        EXPECT_EQ(ok, (unsigned) CROSS_DOMAIN_MAX_PIPES);
        /* Another context is not affected. */
        ASSERT_EQ(ctx_create(8), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(guest_blob(200, 0x30000, 4096, 8), VIRTIO_GPU_RESP_OK_NODATA);
        ASSERT_EQ(guest_blob(201, 0x50000, 4096, 8), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(INIT, words({ 200, 201, 1 })), -1, 0, nullptr, 8), VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(submit(command(SEND, send_body(28, { { 0x80000001, 3 } }, {})), -1, 0, nullptr, 8),
                  VIRTIO_GPU_RESP_OK_NODATA);
}

TEST_F(CrossDomain, host_blobs_count_against_max_memory) {
        start();
        Bytes a = image_reqs(FOURCC_XR24, 4096, 4096);  /* 64 MiB */
        uint32_t id = get_le32(&a[48]);
        uint64_t size = get_le64(&a[40]);
        unsigned made = 0;
        for (uint32_t i = 0; i < 6; i++) {
                uint32_t r = host_blob(700 + i, id, size);
                if (r == VIRTIO_GPU_RESP_OK_NODATA)
                        made++;
                else
                        EXPECT_EQ(r, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
        }
        EXPECT_EQ(made, 4u);                            /* 256 MiB, the default */
}

} // namespace
