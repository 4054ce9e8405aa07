/* SPDX-License-Identifier: BSD-3-Clause */
/* A Wayland client's cost through virtio-gpu's cross-domain context type
 * (wayland/cross-domain.c in the GPU core, in-process, as
 * tests/gpu/test-cross-domain.cpp drives it) against the same client
 * connected straight to the same weston 10 (headless, pixman, 1920x1080
 * output), in the same run: `meson test -C build --benchmark wayland-roundtrip
 * wayland-frames`, or build/bench/wayland-bench roundtrip|frames [N].
 *
 * The client is the same bytes both ways (a raw wire encoder, no
 * libwayland). Through cross-domain, as sommelier does: each request is a
 * SEND on the context, each wait a fenced POLL on the channel ring,
 * virtio_gpu_dispatch() on the device's epoll descriptor until the fence
 * completes, then the RECEIVE read from the guest's ring page.
 *
 *   roundtrip: wl_display.sync -> wl_callback.done, median microseconds of
 *     each over interleaved rounds; goal (issue "cross-domain") <= 1.3x the
 *     direct median + 100 us: exits 1 when missed.
 *   frames: 1920x1080 XRGB8888 shm frames: write every pixel, attach,
 *     damage, commit, then a sync round trip; through cross-domain the
 *     buffer is a host blob from GET_IMAGE_REQUIREMENTS mapped through the
 *     shm callback (mmap of its descriptor), directly a memfd; frames/s
 *     each and the ratio (printed, no goal).
 *
 * No absolute time is judged. Exits 77 without weston. */
#include <fcntl.h>
#include <linux/virtio_gpu.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "gpu/virtio-gpu.h"
#include "common/unaligned.h"
#include "tests/gpu/wayland-wire.h"
#include "wayland/cross-domain.h"
#include "tests/gpu-display/weston.h"

extern "C" {
#include "vmm/memory.h"
}

using Bytes = std::vector<uint8_t>;
using wayland_wire::WlEvent;
using wayland_wire::WlMsg;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t WIDTH = 1920, HEIGHT = 1080;
constexpr uint32_t FOURCC_XR24 = 0x34325258;
constexpr double GOAL_RATIO = 1.3, GOAL_US = 100.0;

[[noreturn]] void die(const std::string &why) {
        fprintf(stderr, "wayland-bench: %s\n", why.c_str());
        exit(1);
}

/* A client's connection: requests out (with at most one shm buffer as the
 * descriptor), events in. */
class Conn {
public:
        virtual ~Conn() = default;
        virtual void send(const Bytes &msgs, bool with_buffer = false) = 0;
        /* More event bytes (blocks until some came). */
        virtual void read_more(Bytes *into) = 0;
        /* The shm buffer of w x h XRGB8888: its pixels and stride. */
        virtual uint8_t *buffer(uint32_t w, uint32_t h, uint32_t *ret_stride, uint64_t *ret_size) = 0;

        /* Events until wl_callback.done on id; xdg_wm_base pings answered. */
        std::vector<WlEvent> until_done(uint32_t id) {
                std::vector<WlEvent> out;
                for (;;) {
                        while (in.size() >= 8) {
                                uint32_t len = get_le32(&in[4]) >> 16;
                                if (len < 8 || in.size() < len)
                                        break;
                                WlEvent e = { get_le32(&in[0]), (uint16_t) get_le32(&in[4]),
                                              Bytes(in.begin() + 8, in.begin() + len) };
                                in.erase(in.begin(), in.begin() + len);
                                if (e.obj == 1 && e.opcode == 0)
                                        die("wl_display.error");
                                if (e.obj == 6 && e.opcode == 0 && e.args.size() >= 4)
                                        send(WlMsg(6, 3).u(get_le32(&e.args[0])).done());
                                bool last = e.obj == id && e.opcode == 0;
                                out.push_back(std::move(e));
                                if (last)
                                        return out;
                        }
                        read_more(&in);
                }
        }

private:
        Bytes in;
};

/* Straight to weston's socket. */
class Direct : public Conn {
public:
        explicit Direct(const std::string &path) {
                if (connect_unix(path.c_str(), SOCK_STREAM, &fd) < 0)
                        die("connect to weston");
        }
        ~Direct() override {
                if (pixels)
                        munmap(pixels, size);
                if (memfd >= 0)
                        close(memfd);
                close(fd);
        }
        void send(const Bytes &msgs, bool with_buffer) override {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int))];
                } c = {};
                struct iovec iov = { (void *) msgs.data(), msgs.size() };
                struct msghdr m = {};
                m.msg_iov = &iov;
                m.msg_iovlen = 1;
                if (with_buffer) {
                        m.msg_control = c.buf;
                        m.msg_controllen = sizeof(c.buf);
                        c.h.cmsg_level = SOL_SOCKET;
                        c.h.cmsg_type = SCM_RIGHTS;
                        c.h.cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(&c.h), &memfd, sizeof(int));
                }
                if (sendmsg(fd, &m, MSG_NOSIGNAL) != (ssize_t) msgs.size())
                        die("sendmsg to weston");
        }
        void read_more(Bytes *into) override {
                uint8_t buf[65536];
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 28)];
                } c;
                struct iovec iov = { buf, sizeof(buf) };
                struct msghdr m = {};
                m.msg_iov = &iov;
                m.msg_iovlen = 1;
                m.msg_control = c.buf;
                m.msg_controllen = sizeof(c.buf);
                ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
                if (n <= 0)
                        die("weston closed the connection");
                for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
                        for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                                int k;
                                memcpy(&k, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                                close(k);
                        }
                into->insert(into->end(), buf, buf + n);
        }
        uint8_t *buffer(uint32_t w, uint32_t h, uint32_t *ret_stride, uint64_t *ret_size) override {
                /* The same layout as the cross-domain requirements give. */
                CrossDomainImage img;
                if (cross_domain_image_requirements(FOURCC_XR24, w, h, &img) < 0)
                        die("image requirements");
                size = img.size;
                memfd = memfd_create("wayland-bench", MFD_CLOEXEC);
                if (memfd < 0 || ftruncate(memfd, (off_t) size) < 0)
                        die("memfd");
                pixels = (uint8_t *) mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
                if (pixels == MAP_FAILED)
                        die("mmap");
                *ret_stride = img.strides[0];
                *ret_size = size;
                return pixels;
        }

private:
        int fd = -1, memfd = -1;
        uint8_t *pixels = nullptr;
        uint64_t size = 0;
};

/* Through the GPU core's cross-domain context, as sommelier drives it. */
class ThroughCrossDomain : public Conn {
public:
        static constexpr uint64_t MEM_SIZE = 16 * 1024 * 1024, QUERY_GPA = 0x10000, CHANNEL_GPA = 0x20000;
        static constexpr uint32_t CTX = 7, QUERY = 100, CHANNEL = 101, BLOB = 300, RING_SIZE = 4096;

        explicit ThroughCrossDomain(const std::string &path) : socket_path(path) {
                if (guest_memory_new(MEM_SIZE, &mem) < 0)
                        die("guest memory");
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
                o.connect = connect_weston;
                o.connect_ctx = this;
                if (virtio_gpu_new(&o, nullptr, &g) < 0)
                        die("virtio_gpu_new");
                Bytes create(96, 0);
                hdr(create, VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, CTX, 0);
                put_le32(&create[28], CROSS_DOMAIN_CAPSET);
                if (ctrl(create) != VIRTIO_GPU_RESP_OK_NODATA || guest_blob(QUERY, QUERY_GPA) != VIRTIO_GPU_RESP_OK_NODATA ||
                    guest_blob(CHANNEL, CHANNEL_GPA) != VIRTIO_GPU_RESP_OK_NODATA)
                        die("context and rings");
                if (submit(command(1, { QUERY, CHANNEL, 1 })) != VIRTIO_GPU_RESP_OK_NODATA)
                        die("INIT (weston's socket)");
        }
        ~ThroughCrossDomain() override {
                if (pixels)
                        munmap(pixels, map_len);
                virtio_gpu_free(g);
                guest_memory_free(mem);
        }

        void send(const Bytes &msgs, bool with_buffer) override {
                /* struct CrossDomainSendReceive, 28 identifiers. */
                Bytes body(8 + 12 * 28, 0);
                put_le32(&body[0], with_buffer ? 1 : 0);
                put_le32(&body[4], (uint32_t) msgs.size());
                if (with_buffer) {
                        put_le32(&body[8], BLOB);
                        put_le32(&body[8 + 4 * 28], 1); /* a blob */
                }
                body.insert(body.end(), msgs.begin(), msgs.end());
                if (submit(command_bytes(4, body)) != VIRTIO_GPU_RESP_OK_NODATA)
                        die("SEND");
        }
        void read_more(Bytes *into) override {
                for (;;) {
                        /* A fenced POLL on the channel ring, dispatched
                         * until an event completes it. */
                        uint64_t token = ++tokens;
                        if (submit(command(3, { 0, 0 }), CROSS_DOMAIN_CHANNEL_RING, token) != VIRTIO_GPU_RESP_OK_NODATA)
                                die("POLL");
                        /* An event that waited already completes it at
                         * the next dispatch, with no descriptor ready. */
                        for (virtio_gpu_dispatch(g); done_token < token; virtio_gpu_dispatch(g)) {
                                struct pollfd p = { virtio_gpu_fd(g), POLLIN, 0 };
                                if (::poll(&p, 1, 5000) <= 0)
                                        die("no event from weston in 5 s");
                        }
                        uint8_t ev[RING_SIZE];
                        if (guest_read(mem, CHANNEL_GPA, ev, sizeof(ev)) < 0)
                                die("ring read");
                        if (ev[0] == 6 && get_le32(&ev[8]) == 0 && get_le32(&ev[12]) == 1)
                                die("weston closed the connection");
                        if (ev[0] != 5)
                                continue;
                        uint32_t n = get_le32(&ev[12]);
                        if (n > RING_SIZE - 352)
                                die("RECEIVE larger than the ring");
                        into->insert(into->end(), ev + 352, ev + 352 + n);
                        return;
                }
        }
        uint8_t *buffer(uint32_t w, uint32_t h, uint32_t *ret_stride, uint64_t *ret_size) override {
                if (submit(command(2, { w, h, FOURCC_XR24, 0 }), 0) != VIRTIO_GPU_RESP_OK_NODATA)
                        die("GET_IMAGE_REQUIREMENTS");
                uint8_t reqs[64];
                if (guest_read(mem, QUERY_GPA, reqs, sizeof(reqs)) < 0)
                        die("query ring");
                uint64_t size = get_le64(&reqs[40]);
                Bytes b(24 + 32, 0);
                hdr(b, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CTX, 0);
                put_le32(&b[24], BLOB);
                put_le32(&b[28], VIRTIO_GPU_BLOB_MEM_HOST3D);
                put_le32(&b[32], VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE);
                put_le64(&b[40], get_le32(&reqs[48]));
                put_le64(&b[48], size);
                if (ctrl(b) != VIRTIO_GPU_RESP_OK_NODATA)
                        die("CREATE_BLOB");
                Bytes m(24 + 16, 0);
                hdr(m, VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB, 0, 0, 0, 0);
                put_le32(&m[24], BLOB);
                if (ctrl(m) != VIRTIO_GPU_RESP_OK_MAP_INFO || !pixels)
                        die("MAP_BLOB");
                *ret_stride = get_le32(&reqs[0]);
                *ret_size = size;
                return pixels;
        }

private:
        static void hdr(Bytes &b, uint32_t type, uint32_t flags, uint64_t fence, uint32_t ctx, uint8_t ring) {
                put_le32(&b[0], type);
                put_le32(&b[4], flags);
                put_le64(&b[8], fence);
                put_le32(&b[16], ctx);
                b[20] = ring;
        }
        static Bytes command_bytes(uint8_t cmd, const Bytes &body) {
                Bytes c(8, 0);
                c[0] = cmd;
                c.insert(c.end(), body.begin(), body.end());
                put_le16(&c[2], (uint16_t) c.size());
                return c;
        }
        static Bytes command(uint8_t cmd, std::initializer_list<uint32_t> words) {
                Bytes body;
                for (uint32_t w : words) {
                        body.resize(body.size() + 4);
                        put_le32(&body[body.size() - 4], w);
                }
                return command_bytes(cmd, body);
        }
        uint32_t ctrl(const Bytes &req, uint64_t token = 0) {
                bool held = false;
                size_t n = virtio_gpu_handle_token(g, mem, VIRTIO_GPU_QUEUE_CONTROL, req.data(), req.size(), resp,
                                                   sizeof(resp), token, &held);
                if (token != 0 && !held)
                        done_token = token;     /* an event waited already: done at once */
                return n >= 4 ? get_le32(resp) : 0;
        }
        uint32_t guest_blob(uint32_t id, uint64_t gpa) {
                Bytes b(24 + 32 + 16, 0);
                hdr(b, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CTX, 0);
                put_le32(&b[24], id);
                put_le32(&b[28], VIRTIO_GPU_BLOB_MEM_GUEST);
                put_le32(&b[32], VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE);
                put_le32(&b[36], 1);
                put_le64(&b[48], RING_SIZE);
                put_le64(&b[56], gpa);
                put_le32(&b[64], RING_SIZE);
                return ctrl(b);
        }
        /* SUBMIT_3D, fenced as the driver always does: on ring `ring`
         * (-1: none). */
        uint32_t submit(const Bytes &cmds, int ring = -1, uint64_t token = 0) {
                uint32_t flags = VIRTIO_GPU_FLAG_FENCE | (ring >= 0 ? VIRTIO_GPU_FLAG_INFO_RING_IDX : 0);
                Bytes b(32, 0);
                hdr(b, VIRTIO_GPU_CMD_SUBMIT_3D, flags, ++fence, CTX, (uint8_t) (ring >= 0 ? ring : 0));
                put_le32(&b[24], (uint32_t) cmds.size());
                b.insert(b.end(), cmds.begin(), cmds.end());
                return ctrl(b, token);
        }
        static void on_done(void *ctx, uint64_t token) {
                auto *t = (ThroughCrossDomain *) ctx;
                t->done_token = std::max(t->done_token, token);
        }
        static int shm_map(void *ctx, int fd, uint64_t offset, uint64_t len) {
                auto *t = (ThroughCrossDomain *) ctx;
                (void) offset;
                void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p == MAP_FAILED)
                        return -errno;
                t->pixels = (uint8_t *) p;
                t->map_len = len;
                return 0;
        }
        static int shm_unmap(void *, uint64_t, uint64_t) { return 0; }
        static int connect_weston(void *ctx) {
                auto *t = (ThroughCrossDomain *) ctx;
                int fd = -1;
                int r = connect_unix(t->socket_path.c_str(), SOCK_STREAM, &fd);
                return r < 0 ? r : fd;
        }

        std::string socket_path;
        GuestMemory *mem = nullptr;
        VirtioGpu *g = nullptr;
        uint8_t resp[VIRTIO_GPU_MAX_RESPONSE];
        uint64_t fence = 0, tokens = 0, done_token = 0;
        uint8_t *pixels = nullptr;
        uint64_t map_len = 0;
};

double since_us(Clock::time_point t0) {
        return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

/* One sync round trip on c, the next callback id from *id. */
double round_trip(Conn &c, uint32_t *id) {
        auto t0 = Clock::now();
        c.send(WlMsg(1, 0).u(*id).done());
        c.until_done(*id);
        /* The id is free again once done is sent (wl_display.delete_id
         * follows): reused, as libwayland does. */
        return since_us(t0);
}

int bench_roundtrip(const std::string &sock, unsigned n) {
        Direct direct(sock);
        ThroughCrossDomain cd(sock);
        std::vector<double> d_us, c_us;
        uint32_t id = 2;
        const unsigned rounds = 10, per = std::max(1u, n / rounds);

        for (unsigned i = 0; i < 50; i++) {     /* warm-up */
                round_trip(direct, &id);
                round_trip(cd, &id);
        }
        for (unsigned r = 0; r < rounds; r++) {
                for (unsigned i = 0; i < per; i++)
                        d_us.push_back(round_trip(direct, &id));
                for (unsigned i = 0; i < per; i++)
                        c_us.push_back(round_trip(cd, &id));
        }
        double d = median(d_us), c = median(c_us), bound = GOAL_RATIO * d + GOAL_US;
        bool met = c <= bound;
        printf("wayland-roundtrip: wl_display.sync -> wl_callback.done, median of %zu each (%u interleaved rounds): "
               "direct %.1f us, through cross-domain %.1f us, ratio %.2fx; goal <= %.1fx + %.0f us = %.1f us: %s\n",
               d_us.size(), rounds, d, c, c / d, GOAL_RATIO, GOAL_US, bound, met ? "PASS" : "FAIL");
        return met ? 0 : 1;
}

/* A toplevel with a 1920x1080 XRGB8888 shm buffer (object 12) on c. */
void window(Conn &c, uint8_t **ret_px, uint32_t *ret_stride, uint64_t *ret_size) {
        c.send(WlMsg(1, 1).u(2).done());        /* get_registry */
        c.send(WlMsg(1, 0).u(3).done());        /* sync */
        std::map<std::string, uint32_t> globals;
        for (auto &e : c.until_done(3))
                if (e.obj == 2 && e.opcode == 0 && e.args.size() >= 8) {
                        uint32_t len = get_le32(&e.args[4]);
                        if (len > 0 && 8 + len <= e.args.size())
                                globals[std::string((const char *) &e.args[8], len - 1)] = get_le32(&e.args[0]);
                }
        for (const char *need : { "wl_compositor", "wl_shm", "xdg_wm_base" })
                if (!globals.count(need))
                        die(std::string("weston lists no ") + need);
        Bytes msgs;
        auto add = [&](Bytes m) { msgs.insert(msgs.end(), m.begin(), m.end()); };
        add(WlMsg(2, 0).u(globals["wl_compositor"]).s("wl_compositor").u(4).u(4).done());
        add(WlMsg(2, 0).u(globals["wl_shm"]).s("wl_shm").u(1).u(5).done());
        add(WlMsg(2, 0).u(globals["xdg_wm_base"]).s("xdg_wm_base").u(1).u(6).done());
        add(WlMsg(4, 0).u(7).done());                   /* create_surface */
        add(WlMsg(6, 2).u(8).u(7).done());              /* get_xdg_surface */
        add(WlMsg(8, 1).u(9).done());                   /* get_toplevel */
        add(WlMsg(9, 2).s("wayland-bench").done());
        add(WlMsg(7, 6).done());                        /* commit */
        add(WlMsg(1, 0).u(10).done());                  /* sync */
        c.send(msgs);
        uint32_t serial = 0;
        bool configured = false;
        /* weston configures the toplevel from an idle handler, after
         * the commit: more round trips until it did. */
        for (unsigned i = 0; i < 200 && !configured; i++) {
                if (i > 0) {
                        usleep(5000);
                        c.send(WlMsg(1, 0).u(10).done());
                }
                for (auto &e : c.until_done(10))
                        if (e.obj == 8 && e.opcode == 0 && e.args.size() >= 4) {
                                serial = get_le32(&e.args[0]);
                                configured = true;
                        }
        }
        if (!configured)
                die("no xdg_surface.configure in 1 s");
        uint32_t stride;
        uint64_t size;
        *ret_px = c.buffer(WIDTH, HEIGHT, &stride, &size);
        msgs.clear();
        add(WlMsg(8, 4).u(serial).done());              /* ack_configure */
        add(WlMsg(5, 0).u(11).u((uint32_t) size).done());  /* create_pool, the buffer's fd */
        c.send(msgs, true);
        c.send(WlMsg(11, 0).u(12).u(0).u(WIDTH).u(HEIGHT).u(stride).u(1).done());  /* create_buffer XRGB8888 */
        *ret_stride = stride;
        *ret_size = size;
}

/* One frame: every pixel written, attached, damaged, committed, a round
 * trip. */
void frame(Conn &c, uint8_t *px, uint32_t stride, unsigned k, uint32_t *id) {
        uint32_t v = 0xff000000u | (k * 0x010203u & 0xffffff);
        for (uint32_t y = 0; y < HEIGHT; y++) {
                uint32_t *row = (uint32_t *) (px + (size_t) y * stride);
                for (uint32_t x = 0; x < WIDTH; x++)
                        row[x] = v + x;
        }
        Bytes msgs;
        auto add = [&](Bytes m) { msgs.insert(msgs.end(), m.begin(), m.end()); };
        add(WlMsg(7, 1).u(12).u(0).u(0).done());        /* attach */
        add(WlMsg(7, 9).u(0).u(0).u(WIDTH).u(HEIGHT).done());  /* damage_buffer */
        add(WlMsg(7, 6).done());                        /* commit */
        add(WlMsg(1, 0).u(*id).done());                 /* sync */
        c.send(msgs);
        c.until_done(*id);
}

int bench_frames(const std::string &sock, unsigned n) {
        Direct direct(sock);
        ThroughCrossDomain cd(sock);
        uint8_t *dpx, *cpx;
        uint32_t dstride, cstride, id = 13;
        uint64_t dsize, csize;
        const unsigned rounds = 3;
        double best_d = 0, best_c = 0;

        window(direct, &dpx, &dstride, &dsize);
        window(cd, &cpx, &cstride, &csize);
        if (dstride != cstride || dsize != csize)
                die("the two buffers differ");
        for (unsigned i = 0; i < 5; i++) {      /* warm-up */
                frame(direct, dpx, dstride, i, &id);
                frame(cd, cpx, cstride, i, &id);
        }
        for (unsigned r = 0; r < rounds; r++) {
                auto t0 = Clock::now();
                for (unsigned i = 0; i < n; i++)
                        frame(direct, dpx, dstride, i, &id);
                best_d = std::max(best_d, n / (since_us(t0) * 1e-6));
                t0 = Clock::now();
                for (unsigned i = 0; i < n; i++)
                        frame(cd, cpx, cstride, i, &id);
                best_c = std::max(best_c, n / (since_us(t0) * 1e-6));
        }
        printf("wayland-frames: %ux%u XRGB8888 shm frames (write, attach, damage, commit, sync), best of %u interleaved "
               "rounds of %u: direct %.1f frames/s, through cross-domain %.1f frames/s, ratio %.2fx (no goal)\n",
               WIDTH, HEIGHT, rounds, n, best_d, best_c, best_c / best_d);
        return 0;
}

} // namespace

int main(int argc, char **argv) {
        std::string what = argc > 1 ? argv[1] : "roundtrip";
        unsigned n = argc > 2 ? (unsigned) atoi(argv[2]) : what == "frames" ? 100 : 2000;

        if ((what != "roundtrip" && what != "frames") || n == 0) {
                fprintf(stderr, "usage: wayland-bench roundtrip|frames [N]\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);               /* as majordome-gpu does */
        weston_test::Weston weston(WIDTH, HEIGHT);
        std::string why = weston.start();
        if (!why.empty()) {
                printf("wayland-%s: skipped: %s\n", what.c_str(), why.c_str());
                return 77;
        }
        return what == "frames" ? bench_frames(weston.socket_path, n) : bench_roundtrip(weston.socket_path, n);
}
