/* SPDX-License-Identifier: BSD-3-Clause */
/* The balloon's control messages (types 32-47, docs/control-protocol.md):
 * exact bytes of the payloads, decoding a hostile reply, and the server's
 * handling of the two requests. */
#include <gtest/gtest.h>

#include <cstring>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "vmm/control-server.h"
#include "common/control.h"

namespace {

struct FakeBalloon {
        uint64_t size = 0;
        uint32_t timeout_ms = 0;
        int error = 0;
        bool wait = false;      /* Request says fresh stats are worth waiting for */
        bool fresh = true;      /* Stats says they came */
        int event_fd = -1;
        unsigned requests = 0;

        static int Balloon(void *u, uint64_t size_bytes) {
                auto *b = static_cast<FakeBalloon *>(u);
                b->size = size_bytes;
                return b->error;
        }

        static int Request(void *u, uint32_t timeout_ms, uint64_t *ret_cookie) {
                auto *b = static_cast<FakeBalloon *>(u);
                b->timeout_ms = timeout_ms;
                b->requests++;
                *ret_cookie = 0;
                return b->error ?: (b->wait && timeout_ms > 0);
        }

        static int Fd(void *u) { return static_cast<FakeBalloon *>(u)->event_fd; }

        static int Stats(void *u, uint64_t cookie, ControlBalloonStats *ret) {
                auto *b = static_cast<FakeBalloon *>(u);
                if (b->error)
                        return b->error;
                ret->target_bytes = 64 << 20;
                ret->actual_bytes = 32 << 20;
                ret->inflated_bytes = 30 << 20;
                ret->flags = CONTROL_BALLOON_STATS_VALID;
                ret->n_stats = 2;
                ret->stats[0] = { 4, 100 };
                ret->stats[1] = { 5, 200 };
                if (b->fresh)
                        ret->flags |= CONTROL_BALLOON_STATS_FRESH;
                return b->fresh;
        }
};

class ControlBalloonServer : public ::testing::Test {
protected:
        void SetUp() override {
                int sv[2];

                ops.balloon = FakeBalloon::Balloon;
                ops.balloon_stats_request = FakeBalloon::Request;
                ops.balloon_stats = FakeBalloon::Stats;
                ops.balloon_stats_fd = FakeBalloon::Fd;
                ops.info = [](void *, ControlInfo *ret) { ret->state = CONTROL_STATE_RUNNING; return 0; };
                fake.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                ASSERT_GE(fake.event_fd, 0);
                ASSERT_GE(event_loop_new(&event), 0);
                ASSERT_EQ(control_server_new(event, -1, &ops, &fake, &server), 0);
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
                client = sv[0];
                ASSERT_EQ(control_server_add_connection(server, sv[1]), 0);
        }

        void TearDown() override {
                control_server_free(server);
                event_loop_free(event);
                close(client);
                close(fake.event_fd);
        }

        void Send(uint16_t type, uint32_t id, const std::vector<uint8_t> &payload) {
                ControlHeader h = { CONTROL_MAGIC, CONTROL_VERSION, type, id, 0, (uint32_t) payload.size(), 0 };
                std::vector<uint8_t> buf(CONTROL_HEADER_SIZE + payload.size());

                control_header_encode(&h, buf.data());
                if (!payload.empty())
                        memcpy(buf.data() + CONTROL_HEADER_SIZE, payload.data(), payload.size());
                EXPECT_EQ(send(client, buf.data(), buf.size(), MSG_NOSIGNAL), (ssize_t) buf.size());
        }

        /* Steps the loop for up to ms and returns the next reply, if any
         * (type 0 otherwise). */
        ControlHeader Next(int ms) {
                uint8_t in[CONTROL_MSG_MAX];
                ControlHeader reply = {};

                for (int i = 0; i < ms / 10; i++) {
                        struct pollfd p = { client, POLLIN, 0 };
                        if (poll(&p, 1, 0) > 0)
                                break;
                        event_loop_run(event, 10);
                }
                ssize_t n = recv(client, in, sizeof(in), MSG_DONTWAIT);
                if (n >= (ssize_t) CONTROL_HEADER_SIZE) {
                        EXPECT_EQ(control_header_decode(in, (size_t) n, &reply), 0);
                }
                return reply;
        }

        /* Sends one request and steps the loop until the reply is there. */
        ControlHeader Call(uint16_t type, const std::vector<uint8_t> &payload, std::vector<uint8_t> *ret_payload) {
                ControlHeader h = { CONTROL_MAGIC, CONTROL_VERSION, type, 7, 0, (uint32_t) payload.size(), 0 };
                std::vector<uint8_t> buf(CONTROL_HEADER_SIZE + payload.size());
                uint8_t in[CONTROL_MSG_MAX];
                ControlHeader reply = {};

                control_header_encode(&h, buf.data());
                if (!payload.empty())
                        memcpy(buf.data() + CONTROL_HEADER_SIZE, payload.data(), payload.size());
                EXPECT_EQ(send(client, buf.data(), buf.size(), MSG_NOSIGNAL), (ssize_t) buf.size());
                for (int i = 0; i < 200; i++) {
                        struct pollfd p = { client, POLLIN, 0 };
                        if (poll(&p, 1, 0) > 0)
                                break;
                        event_loop_run(event, 10);
                }
                ssize_t n = recv(client, in, sizeof(in), MSG_DONTWAIT);
                EXPECT_GE(n, (ssize_t) CONTROL_HEADER_SIZE);
                if (n < (ssize_t) CONTROL_HEADER_SIZE)
                        return reply;
                EXPECT_EQ(control_header_decode(in, (size_t) n, &reply), 0);
                if (ret_payload)
                        ret_payload->assign(in + CONTROL_HEADER_SIZE, in + n);
                return reply;
        }

        EventLoop *event = nullptr;
        ControlServer *server = nullptr;
        ControlOps ops = {};
        FakeBalloon fake;
        int client = -1;
};

std::vector<uint8_t> balloon_request(uint64_t size) {
        std::vector<uint8_t> b(CONTROL_BALLOON_REQUEST_SIZE);
        control_balloon_request_encode(size, b.data());
        return b;
}

std::vector<uint8_t> stats_request(uint32_t timeout_ms) {
        std::vector<uint8_t> b(CONTROL_BALLOON_STATS_REQUEST_SIZE);
        control_balloon_stats_request_encode(timeout_ms, b.data());
        return b;
}

} // namespace

TEST(ControlBalloon, types_have_their_documented_numbers_and_names) {
        EXPECT_EQ(CONTROL_TYPE_BALLOON, 32);
        EXPECT_EQ(CONTROL_TYPE_BALLOON_STATS, 33);
        EXPECT_EQ(control_type_from_string("balloon"), CONTROL_TYPE_BALLOON);
        EXPECT_STREQ(control_type_to_string(CONTROL_TYPE_BALLOON_STATS), "balloon-stats");
}

TEST(ControlBalloon, stat_names_round_trip) {
        for (uint16_t t = 0; t < CONTROL_BALLOON_STAT_TAGS; t++) {
                const char *s = control_balloon_stat_to_string(t);
                ASSERT_NE(s, nullptr) << t;
                EXPECT_EQ(control_balloon_stat_from_string(s), t) << s;
        }
        EXPECT_STREQ(control_balloon_stat_to_string(4), "free_memory");
        EXPECT_EQ(control_balloon_stat_to_string(CONTROL_BALLOON_STAT_TAGS), nullptr);
        EXPECT_EQ(control_balloon_stat_from_string("bogus"), -EINVAL);
}

TEST(ControlBalloon, balloon_request_is_a_le64_size) {
        uint8_t b[CONTROL_BALLOON_REQUEST_SIZE];
        uint64_t v = 0;

        ASSERT_EQ(control_balloon_request_encode(UINT64_C(0x0102030405060708), b), 8u);
        EXPECT_EQ(b[0], 0x08);
        EXPECT_EQ(b[7], 0x01);
        ASSERT_EQ(control_balloon_request_decode(b, sizeof(b), &v), 0);
        EXPECT_EQ(v, UINT64_C(0x0102030405060708));
        EXPECT_EQ(control_balloon_request_decode(b, 7, &v), -EBADMSG);
}

TEST(ControlBalloon, stats_request_refuses_a_nonzero_reserved_field) {
        uint8_t b[CONTROL_BALLOON_STATS_REQUEST_SIZE];
        uint32_t t = 0;

        control_balloon_stats_request_encode(1500, b);
        ASSERT_EQ(control_balloon_stats_request_decode(b, sizeof(b), &t), 0);
        EXPECT_EQ(t, 1500u);
        b[6] = 1;
        EXPECT_EQ(control_balloon_stats_request_decode(b, sizeof(b), &t), -EINVAL);
}

TEST(ControlBalloon, stats_reply_encodes_at_documented_offsets_and_decodes_back) {
        ControlBalloonStats s = {}, out = {};
        uint8_t buf[CONTROL_BALLOON_STATS_MAX_SIZE];

        s.target_bytes = 1;
        s.actual_bytes = 2;
        s.inflated_bytes = 3;
        s.stats_age_ns = 4;
        s.flags = CONTROL_BALLOON_STATS_VALID | CONTROL_BALLOON_STATS_FRESH;
        s.n_stats = 1;
        s.stats[0] = { 7, 0x1122334455667788 };

        size_t n = control_balloon_stats_encode(&s, buf);
        ASSERT_EQ(n, 56u);
        EXPECT_EQ(buf[8], 2);
        EXPECT_EQ(buf[32], 3);
        EXPECT_EQ(buf[36], 1);
        EXPECT_EQ(buf[40], 7);
        EXPECT_EQ(buf[48], 0x88);
        ASSERT_EQ(control_balloon_stats_decode(buf, n, &out), 0);
        EXPECT_EQ(out.inflated_bytes, 3u);
        EXPECT_EQ(out.n_stats, 1u);
        EXPECT_EQ(out.stats[0].value, UINT64_C(0x1122334455667788));
}

TEST(ControlBalloon, stats_reply_with_more_entries_than_bytes_is_rejected) {
        ControlBalloonStats s = {}, out = {};
        uint8_t buf[CONTROL_BALLOON_STATS_MAX_SIZE];

        s.n_stats = 2;
        size_t n = control_balloon_stats_encode(&s, buf);
        buf[36] = 0xff;
        buf[39] = 0xff; /* n_stats 0xff0000ff */
        EXPECT_EQ(control_balloon_stats_decode(buf, n, &out), -EBADMSG);
        EXPECT_EQ(control_balloon_stats_decode(buf, 39, &out), -EBADMSG);
}

TEST(ControlBalloon, stats_reply_from_a_newer_vmm_keeps_the_first_entries) {
        std::vector<uint8_t> buf(CONTROL_BALLOON_STATS_HEADER_SIZE + 20 * CONTROL_BALLOON_STAT_ENTRY_SIZE);
        ControlBalloonStats out = {};

        buf[36] = 20;
        ASSERT_EQ(control_balloon_stats_decode(buf.data(), buf.size(), &out), 0);
        EXPECT_EQ(out.n_stats, (uint32_t) CONTROL_BALLOON_STAT_TAGS);
}

TEST_F(ControlBalloonServer, balloon_passes_the_size_to_the_vmm) {
        ControlHeader h = Call(CONTROL_TYPE_BALLOON, balloon_request(96 << 20), nullptr);
        EXPECT_EQ(h.status, 0);
        EXPECT_EQ(h.type, CONTROL_TYPE_BALLOON | CONTROL_REPLY);
        EXPECT_EQ(fake.size, 96u << 20);
}

TEST_F(ControlBalloonServer, balloon_without_a_device_relays_enodev) {
        fake.error = -ENODEV;
        EXPECT_EQ(Call(CONTROL_TYPE_BALLOON, balloon_request(1), nullptr).status, -ENODEV);
}

TEST_F(ControlBalloonServer, balloon_with_a_short_payload_is_ebadmsg) {
        EXPECT_EQ(Call(CONTROL_TYPE_BALLOON, { 1, 2, 3, 4 }, nullptr).status, -EBADMSG);
        EXPECT_EQ(fake.size, 0u);
}

TEST_F(ControlBalloonServer, balloon_stats_reply_carries_sizes_and_stats) {
        std::vector<uint8_t> p;
        ControlBalloonStats s;

        ASSERT_EQ(Call(CONTROL_TYPE_BALLOON_STATS, stats_request(500), &p).status, 0);
        ASSERT_EQ(control_balloon_stats_decode(p.data(), p.size(), &s), 0);
        EXPECT_EQ(fake.timeout_ms, 500u);
        EXPECT_EQ(s.actual_bytes, 32u << 20);
        ASSERT_EQ(s.n_stats, 2u);
        EXPECT_EQ(s.stats[1].tag, 5);
}

TEST_F(ControlBalloonServer, balloon_stats_timeout_is_capped) {
        ASSERT_EQ(Call(CONTROL_TYPE_BALLOON_STATS, stats_request(UINT32_MAX), nullptr).status, 0);
        EXPECT_EQ(fake.timeout_ms, (uint32_t) CONTROL_BALLOON_STATS_TIMEOUT_MAX_MS);
}

TEST_F(ControlBalloonServer, balloon_stats_with_a_reserved_bit_is_einval) {
        std::vector<uint8_t> r = stats_request(10);
        r[4] = 1;
        EXPECT_EQ(Call(CONTROL_TYPE_BALLOON_STATS, r, nullptr).status, -EINVAL);
}

TEST_F(ControlBalloonServer, balloon_stats_waiting_for_the_guest_does_not_hold_other_requests) {
        fake.wait = true;
        fake.fresh = false;

        /* A stats request that waits for the guest, then info: info is
         * answered first, the stats when the guest's numbers come. */
        Send(CONTROL_TYPE_BALLOON_STATS, 1, stats_request(3000));
        Send(CONTROL_TYPE_INFO, 2, {});
        ControlHeader h = Next(2000);
        EXPECT_EQ(h.type, CONTROL_TYPE_INFO | CONTROL_REPLY);
        EXPECT_EQ(h.id, 2u);
        EXPECT_EQ(Next(100).type, 0) << "the stats were answered before the guest sent them";

        fake.fresh = true;
        uint64_t one = 1;
        ASSERT_EQ(write(fake.event_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        h = Next(2000);
        EXPECT_EQ(h.type, CONTROL_TYPE_BALLOON_STATS | CONTROL_REPLY);
        EXPECT_EQ(h.id, 1u);
        EXPECT_EQ(h.status, 0);
}

TEST_F(ControlBalloonServer, balloon_stats_waiting_for_the_guest_does_not_hold_events) {
        static uint32_t state = CONTROL_STATE_RUNNING;
        ops.status = [](void *, ControlStatus *ret) { ret->ready.state = state; return 0; };
        fake.wait = true;
        fake.fresh = false;

        /* Subscribed, a stats request waiting for the guest, then the VM
         * pauses: the event goes out at once, the stats reply later. */
        Send(CONTROL_TYPE_SUBSCRIBE, 1, {});
        EXPECT_EQ(Next(2000).type, CONTROL_TYPE_SUBSCRIBE | CONTROL_REPLY);
        EXPECT_EQ(Next(2000).type, CONTROL_EVENT_READY);
        Send(CONTROL_TYPE_BALLOON_STATS, 2, stats_request(3000));
        EXPECT_EQ(Next(100).type, 0) << "the stats were answered before the guest sent them";
        state = CONTROL_STATE_PAUSED;
        control_server_push_events(server);
        ControlHeader h = Next(100);
        EXPECT_EQ(h.type, CONTROL_EVENT_STATE_CHANGED);
        EXPECT_EQ(h.id, 2u) << "the second event";

        fake.fresh = true;
        uint64_t one = 1;
        ASSERT_EQ(write(fake.event_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        h = Next(2000);
        EXPECT_EQ(h.type, CONTROL_TYPE_BALLOON_STATS | CONTROL_REPLY);
        EXPECT_EQ(h.id, 2u);
        state = CONTROL_STATE_RUNNING;
}

TEST_F(ControlBalloonServer, balloon_stats_waiting_ends_at_its_timeout) {
        fake.wait = true;
        fake.fresh = false;

        Send(CONTROL_TYPE_BALLOON_STATS, 5, stats_request(200));
        ControlHeader h = Next(5000);
        ASSERT_EQ(h.type, CONTROL_TYPE_BALLOON_STATS | CONTROL_REPLY);
        EXPECT_EQ(h.id, 5u);
        EXPECT_EQ(h.status, 0);
}

TEST_F(ControlBalloonServer, balloon_stats_waiting_is_bounded) {
        fake.wait = true;
        fake.fresh = false;

        /* Past the server's limit, requests are answered at once (stale). */
        for (uint32_t i = 0; i < 100; i++)
                Send(CONTROL_TYPE_BALLOON_STATS, 100 + i, stats_request(3000));
        unsigned answered = 0;
        for (ControlHeader h = Next(1000); h.type != 0; h = Next(100))
                answered++;
        EXPECT_GE(answered, 30u);
        EXPECT_LT(answered, 100u);
        EXPECT_EQ(fake.requests, 100u);
}
