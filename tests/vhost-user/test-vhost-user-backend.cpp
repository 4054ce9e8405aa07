/* SPDX-License-Identifier: BSD-3-Clause */
/* The back-end library's device configuration, back-end request channel
 * and watched fds (backend/vhost-user-backend.c), the test playing the
 * front-end over common/vhost-user.h's codec; the loop runs on a thread. */
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "backend/vhost-user-backend.h"
#include "common/unaligned.h"

namespace {

struct Device {
        uint8_t config[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        VhostUserBackend *b = nullptr;
        int event_fd = -1;
        std::atomic<int> changed_result{ 1 };
        int handler_result = 0;
        /* The shared-memory requests the map eventfd makes. */
        int map_fd = -1, map_event_fd = -1;
        std::atomic<int> map_result{ 1 }, unmap_result{ 1 };
        std::atomic<int> stopped{ -1 };
        std::atomic<int> resets{ 0 };
};

void dev_notify(void *, VirtQueue *) {}

void dev_stopped(void *ctx, unsigned index) {
        static_cast<Device *>(ctx)->stopped = (int) index;
}

void dev_reset(void *ctx) {
        static_cast<Device *>(ctx)->resets++;
}

void dev_config_read(void *ctx, uint32_t offset, void *data, uint32_t size) {
        memcpy(data, static_cast<Device *>(ctx)->config + offset, size);
}

int dev_config_write(void *ctx, uint32_t offset, const void *data, uint32_t size) {
        memcpy(static_cast<Device *>(ctx)->config + offset, data, size);
        return 0;
}

/* The watched eventfd: the device asks the library to announce a
 * configuration change. */
int on_event(void *ctx, int fd) {
        Device *d = static_cast<Device *>(ctx);
        uint64_t v;
        (void) !read(fd, &v, sizeof(v));
        d->changed_result = vhost_user_backend_config_changed(d->b);
        return d->handler_result;
}

/* The watched map eventfd: the device maps 8 KiB of map_fd at 1 MiB of
 * region 1, then unmaps it. */
int on_map(void *ctx, int fd) {
        Device *d = static_cast<Device *>(ctx);
        uint64_t v;
        (void) !read(fd, &v, sizeof(v));
        d->map_result = vhost_user_backend_shmem_map(d->b, 1, d->map_fd, 4096, 1 << 20, 8192, VHOST_USER_SHMEM_MAP_RW);
        d->unmap_result = vhost_user_backend_shmem_unmap(d->b, 1, 1 << 20, 8192);
        return 0;
}

class Backend : public ::testing::Test {
protected:
        void start(uint32_t config_size) {
                ops.n_queues = 1;
                ops.queue_notify = dev_notify;
                ops.config_size = config_size;
                ops.config_read = dev_config_read;
                ops.config_write = dev_config_write;
                int sv[2];
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
                fe = sv[0];
                ASSERT_EQ(vhost_user_backend_new(sv[1], &ops, &dev, &dev.b), 0);
                dev.event_fd = eventfd(0, EFD_CLOEXEC);
                ASSERT_EQ(vhost_user_backend_watch_fd(dev.b, dev.event_fd, on_event, &dev), 0);
                dev.map_event_fd = eventfd(0, EFD_CLOEXEC);
                ASSERT_EQ(vhost_user_backend_watch_fd(dev.b, dev.map_event_fd, on_map, &dev), 0);
                loop = std::thread([this] { run_result = vhost_user_backend_run(dev.b); });
        }
        void TearDown() override {
                if (fe >= 0)
                        close(fe);
                if (loop.joinable())
                        loop.join();
                vhost_user_backend_free(dev.b);
                if (dev.event_fd >= 0)
                        close(dev.event_fd);
                if (dev.map_event_fd >= 0)
                        close(dev.map_event_fd);
                if (dev.map_fd >= 0)
                        close(dev.map_fd);
        }
        VhostUserMsg ask(uint32_t request, const void *payload, uint32_t size, uint32_t flags = 0) {
                VhostUserMsg m{};
                int fds[VHOST_USER_FDS_MAX];
                size_t n_fds = 0;
                EXPECT_EQ(vhost_user_send(fe, request, flags, payload, size, nullptr, 0), 0);
                EXPECT_EQ(vhost_user_recv(fe, 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
                return m;
        }
        void set_protocol(uint64_t bits) {
                uint8_t p[8];
                put_le64(p, bits);
                ASSERT_EQ(vhost_user_send(fe, VHOST_USER_SET_PROTOCOL_FEATURES, 0, p, 8, nullptr, 0), 0);
        }
        /* A config request for [offset, offset + size), data zero. */
        std::vector<uint8_t> config_req(uint32_t offset, uint32_t size) {
                std::vector<uint8_t> p(VHOST_USER_CONFIG_HEADER_SIZE + size, 0);
                put_le32(&p[0], offset);
                put_le32(&p[4], size);
                return p;
        }

        Device dev;
        VhostUserBackendOps ops{};
        int fe = -1;
        int run_result = 1;
        std::thread loop;
};

constexpr uint64_t CONFIG_BIT = UINT64_C(1) << VHOST_USER_PROTOCOL_F_CONFIG;
constexpr uint64_t ACK_BIT = UINT64_C(1) << VHOST_USER_PROTOCOL_F_REPLY_ACK;
constexpr uint64_t REQ_BIT = UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ;

TEST_F(Backend, config_is_offered_only_with_a_config_size) {
        start(0);
        VhostUserMsg m = ask(VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0);
        EXPECT_FALSE(get_le64(m.payload) & CONFIG_BIT);
        EXPECT_TRUE(get_le64(m.payload) & REQ_BIT);
}

TEST_F(Backend, get_config_reads_through_the_device) {
        start(16);
        VhostUserMsg m = ask(VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0);
        EXPECT_TRUE(get_le64(m.payload) & CONFIG_BIT);
        auto p = config_req(4, 8);
        m = ask(VHOST_USER_GET_CONFIG, p.data(), (uint32_t) p.size());
        ASSERT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &m, 8), 0);
        EXPECT_EQ(get_le32(m.payload), 4u);
        const uint8_t want[8] = { 5, 6, 7, 8, 9, 10, 11, 12 };
        EXPECT_EQ(memcmp(m.payload + VHOST_USER_CONFIG_HEADER_SIZE, want, 8), 0);
}

TEST_F(Backend, get_config_outside_the_configuration_is_answered_empty) {
        start(16);
        auto p = config_req(12, 8);
        VhostUserMsg m = ask(VHOST_USER_GET_CONFIG, p.data(), (uint32_t) p.size());
        EXPECT_EQ(m.size, (uint32_t) VHOST_USER_CONFIG_HEADER_SIZE);
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &m, 8), -EBADMSG);
}

TEST_F(Backend, set_config_writes_through_the_device_and_acks) {
        start(16);
        set_protocol(CONFIG_BIT | ACK_BIT);
        auto p = config_req(2, 2);
        p[VHOST_USER_CONFIG_HEADER_SIZE] = 0xaa;
        p[VHOST_USER_CONFIG_HEADER_SIZE + 1] = 0xbb;
        VhostUserMsg m = ask(VHOST_USER_SET_CONFIG, p.data(), (uint32_t) p.size(), VHOST_USER_FLAG_NEED_REPLY);
        EXPECT_EQ(get_le64(m.payload), 0u);
        p = config_req(0, 4);
        m = ask(VHOST_USER_GET_CONFIG, p.data(), (uint32_t) p.size());
        const uint8_t want[4] = { 1, 2, 0xaa, 0xbb };
        EXPECT_EQ(memcmp(m.payload + VHOST_USER_CONFIG_HEADER_SIZE, want, 4), 0);
        /* Past the configuration: refused, nothing written. */
        p = config_req(14, 4);
        m = ask(VHOST_USER_SET_CONFIG, p.data(), (uint32_t) p.size(), VHOST_USER_FLAG_NEED_REPLY);
        EXPECT_EQ(get_le64(m.payload), 1u);
        EXPECT_EQ(dev.config[14], 15);
}

TEST_F(Backend, config_change_goes_out_on_the_backend_channel) {
        start(16);
        /* No channel yet: the device is told so. */
        ASSERT_EQ(eventfd_write(dev.event_fd, 1), 0);
        for (int i = 0; i < 500 && dev.changed_result == 1; i++)
                usleep(10000);
        EXPECT_EQ(dev.changed_result, -ENOTCONN);

        set_protocol(CONFIG_BIT | REQ_BIT);
        int ch[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
        const uint8_t zero[8] = {};
        ASSERT_EQ(vhost_user_send(fe, VHOST_USER_SET_BACKEND_REQ_FD, 0, zero, sizeof(zero), &ch[1], 1), 0);
        close(ch[1]);
        /* A round trip: the channel was taken before the next event. */
        ask(VHOST_USER_GET_FEATURES, nullptr, 0);
        dev.changed_result = 1;
        ASSERT_EQ(eventfd_write(dev.event_fd, 1), 0);

        VhostUserMsg m{};
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds = 0;
        ASSERT_EQ(vhost_user_recv(ch[0], 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
        EXPECT_EQ(m.size, 0u);
        EXPECT_EQ(vhost_user_check_backend_request(&m, n_fds), 0);
        close(ch[0]);
        for (int i = 0; i < 500 && dev.changed_result == 1; i++)
                usleep(10000);
        EXPECT_EQ(dev.changed_result, 0);
}

/* The front-end's side of one SHMEM request: checks it and answers. */
void answer_shmem(int ch, uint32_t request, uint64_t flags, bool with_fd, uint64_t answer) {
        VhostUserMsg m{};
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds = 0;
        ASSERT_EQ(vhost_user_recv(ch, 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
        EXPECT_EQ(m.request, request);
        EXPECT_TRUE(m.flags & VHOST_USER_FLAG_NEED_REPLY);
        EXPECT_EQ(vhost_user_check_backend_request(&m, n_fds), 0);
        EXPECT_EQ(n_fds, with_fd ? 1u : 0u);
        EXPECT_EQ(m.payload[0], 1u) << "region id";
        EXPECT_EQ(get_le64(m.payload + 8), with_fd ? 4096u : 0u) << "fd offset";
        EXPECT_EQ(get_le64(m.payload + 16), 1u << 20) << "offset in the region";
        EXPECT_EQ(get_le64(m.payload + 24), 8192u);
        EXPECT_EQ(get_le64(m.payload + 32), flags);
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        uint8_t p[8];
        put_le64(p, answer);
        ASSERT_EQ(vhost_user_send(ch, request, VHOST_USER_FLAG_REPLY, p, 8, nullptr, 0), 0);
}

TEST_F(Backend, shmem_map_and_unmap_go_out_with_need_reply_and_take_the_answer) {
        start(16);
        /* No channel yet. */
        dev.map_fd = memfd_create("blob", MFD_CLOEXEC);
        ASSERT_GE(dev.map_fd, 0);
        ASSERT_EQ(eventfd_write(dev.map_event_fd, 1), 0);
        for (int i = 0; i < 500 && dev.unmap_result == 1; i++)
                usleep(10000);
        EXPECT_EQ(dev.map_result, -ENOTCONN);
        EXPECT_EQ(dev.unmap_result, -ENOTCONN);

        set_protocol(REQ_BIT);
        int ch[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
        const uint8_t zero[8] = {};
        ASSERT_EQ(vhost_user_send(fe, VHOST_USER_SET_BACKEND_REQ_FD, 0, zero, sizeof(zero), &ch[1], 1), 0);
        close(ch[1]);
        ask(VHOST_USER_GET_FEATURES, nullptr, 0);

        /* Done, then refused. */
        dev.map_result = 1;
        dev.unmap_result = 1;
        ASSERT_EQ(eventfd_write(dev.map_event_fd, 1), 0);
        answer_shmem(ch[0], VHOST_USER_BACKEND_SHMEM_MAP, VHOST_USER_SHMEM_MAP_RW, true, 0);
        answer_shmem(ch[0], VHOST_USER_BACKEND_SHMEM_UNMAP, 0, false, 1);
        for (int i = 0; i < 500 && dev.unmap_result == 1; i++)
                usleep(10000);
        EXPECT_EQ(dev.map_result, 0);
        EXPECT_EQ(dev.unmap_result, -EREMOTEIO);

        /* A reply of the wrong size is a broken channel. */
        dev.map_result = 1;
        dev.unmap_result = 1;
        ASSERT_EQ(eventfd_write(dev.map_event_fd, 1), 0);
        VhostUserMsg m{};
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds = 0;
        ASSERT_EQ(vhost_user_recv(ch[0], 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        const uint8_t four[4] = {};
        ASSERT_EQ(vhost_user_send(ch[0], VHOST_USER_BACKEND_SHMEM_MAP, VHOST_USER_FLAG_REPLY, four, 4, nullptr, 0), 0);
        close(ch[0]);
        for (int i = 0; i < 500 && dev.unmap_result == 1; i++)
                usleep(10000);
        EXPECT_EQ(dev.map_result, -EBADMSG);
        EXPECT_LT(dev.unmap_result, 0) << "the front-end went away";
}

TEST(BackendShmem, map_refuses_other_flags_and_no_fd) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        VhostUserBackendOps ops{};
        ops.n_queues = 1;
        ops.queue_notify = dev_notify;
        VhostUserBackend *b = nullptr;
        ASSERT_EQ(vhost_user_backend_new(sv[1], &ops, nullptr, &b), 0);
        EXPECT_EQ(vhost_user_backend_shmem_map(b, 1, -1, 0, 0, 4096, VHOST_USER_SHMEM_MAP_R), -EBADF);
        EXPECT_EQ(vhost_user_backend_shmem_map(b, 1, sv[0], 0, 0, 4096, 2), -EINVAL);
        vhost_user_backend_free(b);
        close(sv[0]);
}

TEST_F(Backend, stop_request_goes_out_on_the_backend_channel_and_needs_one) {
        start(16);
        EXPECT_EQ(vhost_user_backend_request_stop(dev.b), -ENOTCONN);
        set_protocol(CONFIG_BIT | REQ_BIT);
        int ch[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
        const uint8_t zero[8] = {};
        ASSERT_EQ(vhost_user_send(fe, VHOST_USER_SET_BACKEND_REQ_FD, 0, zero, sizeof(zero), &ch[1], 1), 0);
        close(ch[1]);
        ask(VHOST_USER_GET_FEATURES, nullptr, 0);
        /* The loop thread owns the library; a request from here is the
         * same send the display's callback makes on it. */
        EXPECT_EQ(vhost_user_backend_request_stop(dev.b), 0);
        VhostUserMsg m{};
        int fds[VHOST_USER_FDS_MAX];
        size_t n_fds = 0;
        ASSERT_EQ(vhost_user_recv(ch[0], 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_BACKEND_STOP_VM);
        EXPECT_EQ(vhost_user_check_backend_request(&m, n_fds), 0);
        close(ch[0]);
}

TEST_F(Backend, a_watched_handler_failing_ends_the_loop_with_its_error) {
        dev.handler_result = -ECANCELED;
        start(16);
        ASSERT_EQ(eventfd_write(dev.event_fd, 1), 0);
        loop.join();
        EXPECT_EQ(run_result, -ECANCELED);
}

TEST_F(Backend, get_vring_base_tells_the_device_its_ring_stopped_before_answering) {
        ops.stopped = dev_stopped;
        start(16);
        uint8_t p[8] = { 0 };
        VhostUserMsg m = ask(VHOST_USER_GET_VRING_BASE, p, sizeof(p));
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_GET_VRING_BASE);
        EXPECT_EQ(dev.stopped, 0);
}

constexpr uint64_t RESET_BIT = UINT64_C(1) << VHOST_USER_PROTOCOL_F_RESET_DEVICE;

TEST_F(Backend, reset_device_is_offered_only_with_a_reset_hook) {
        start(16);
        EXPECT_EQ(get_le64(ask(VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0).payload) & RESET_BIT, 0u);
}

TEST_F(Backend, reset_device_resets_the_device_and_acks) {
        ops.reset = dev_reset;
        start(16);
        EXPECT_NE(get_le64(ask(VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0).payload) & RESET_BIT, 0u);
        set_protocol(ACK_BIT | RESET_BIT);
        VhostUserMsg m = ask(VHOST_USER_RESET_DEVICE, nullptr, 0, VHOST_USER_FLAG_NEED_REPLY);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_RESET_DEVICE);
        EXPECT_EQ(get_le64(m.payload), 0u);
        EXPECT_EQ(dev.resets, 1);
}

/* Not negotiated: refused (a failed ack), and the device is untouched. */
TEST_F(Backend, reset_device_not_negotiated_is_refused) {
        ops.reset = dev_reset;
        start(16);
        set_protocol(ACK_BIT);
        VhostUserMsg m = ask(VHOST_USER_RESET_DEVICE, nullptr, 0, VHOST_USER_FLAG_NEED_REPLY);
        EXPECT_EQ(get_le64(m.payload), 1u);
        EXPECT_EQ(dev.resets, 0);
}

TEST_F(Backend, the_loop_ends_at_the_front_ends_hang_up) {
        start(16);
        close(fe);
        fe = -1;
        loop.join();
        EXPECT_EQ(run_result, 0);
}

TEST(BackendWatch, watch_refuses_duplicates_and_too_many) {
        VhostUserBackendOps ops{};
        ops.n_queues = 1;
        ops.queue_notify = dev_notify;
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        VhostUserBackend *b;
        ASSERT_EQ(vhost_user_backend_new(sv[1], &ops, nullptr, &b), 0);
        EXPECT_EQ(vhost_user_backend_watch_fd(b, 10, on_event, nullptr), 0);
        EXPECT_EQ(vhost_user_backend_watch_fd(b, 10, on_event, nullptr), -EEXIST);
        EXPECT_EQ(vhost_user_backend_watch_fd(b, -1, on_event, nullptr), -EBADF);
        for (int fd = 11; fd < 10 + VHOST_USER_BACKEND_MAX_WATCHES; fd++)
                EXPECT_EQ(vhost_user_backend_watch_fd(b, fd, on_event, nullptr), 0);
        EXPECT_EQ(vhost_user_backend_watch_fd(b, 99, on_event, nullptr), -E2BIG);
        vhost_user_backend_unwatch_fd(b, 10);
        EXPECT_EQ(vhost_user_backend_watch_fd(b, 99, on_event, nullptr), 0);
        vhost_user_backend_free(b);
        close(sv[0]);
        /* A config_size without accessors, or past the maximum: refused. */
        ops.config_size = 16;
        EXPECT_EQ(vhost_user_backend_new(-1, &ops, nullptr, &b), -EINVAL);
}

} // namespace
