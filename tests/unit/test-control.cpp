/* SPDX-License-Identifier: BSD-3-Clause */
#include <gtest/gtest.h>

#include <atomic>
#include <fcntl.h>
#include <future>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "vmm/control-client.h"
#include "vmm/control-server.h"
#include "common/control.h"

namespace {

/* ---- encode/decode ---------------------------------------------------- */

ControlHeader Header(uint16_t type, uint32_t id = 7, uint32_t length = 0) {
        ControlHeader h = {};
        h.magic = CONTROL_MAGIC;
        h.version = CONTROL_VERSION;
        h.type = type;
        h.id = id;
        h.length = length;
        return h;
}

TEST(ControlHeader, EncodesLittleEndianAtDocumentedOffsets) {
        ControlHeader h = Header(CONTROL_TYPE_PAUSE, 0x11223344, 0x55667788);
        h.status = -EPERM;
        h.flags = 0;
        uint8_t buf[CONTROL_HEADER_SIZE];

        control_header_encode(&h, buf);

        const uint8_t expected[CONTROL_HEADER_SIZE] = {
                'M', 'J', 'D', 'M',             /* magic */
                0x01, 0x00,                     /* version 1 */
                0x02, 0x00,                     /* type pause */
                0x44, 0x33, 0x22, 0x11,         /* id */
                0xff, 0xff, 0xff, 0xff,         /* status -1 (-EPERM) */
                0x88, 0x77, 0x66, 0x55,         /* length */
                0x00, 0x00, 0x00, 0x00,         /* flags */
        };
        EXPECT_EQ(memcmp(buf, expected, sizeof(buf)), 0);
}

TEST(ControlHeader, DecodeInvertsEncode) {
        ControlHeader h = Header(CONTROL_TYPE_INFO | CONTROL_REPLY, 99, 32);
        h.status = -EOPNOTSUPP;
        h.flags = 0xabcdef01;
        uint8_t buf[CONTROL_HEADER_SIZE];
        ControlHeader out;

        control_header_encode(&h, buf);
        ASSERT_EQ(control_header_decode(buf, sizeof(buf), &out), 0);

        EXPECT_EQ(out.magic, h.magic);
        EXPECT_EQ(out.version, h.version);
        EXPECT_EQ(out.type, h.type);
        EXPECT_EQ(out.id, h.id);
        EXPECT_EQ(out.status, h.status);
        EXPECT_EQ(out.length, h.length);
        EXPECT_EQ(out.flags, h.flags);
}

TEST(ControlHeader, DecodeRejectsShortBufferAndLeavesOutput) {
        uint8_t buf[CONTROL_HEADER_SIZE] = {};
        ControlHeader out = Header(5);

        EXPECT_EQ(control_header_decode(buf, CONTROL_HEADER_SIZE - 1, &out), -EBADMSG);
        EXPECT_EQ(out.type, 5) << "output untouched on failure";
}

TEST(ControlHeader, CheckAcceptsMatchingLength) {
        ControlHeader h = Header(CONTROL_TYPE_INFO, 1, 10);

        EXPECT_EQ(control_header_check(&h, CONTROL_HEADER_SIZE + 10), 0);
}

TEST(ControlHeader, CheckRejectsBadMagicLengthFlagsAndVersion) {
        ControlHeader h = Header(CONTROL_TYPE_INFO, 1, 10);

        EXPECT_EQ(control_header_check(&h, CONTROL_HEADER_SIZE + 9), -EBADMSG);
        EXPECT_EQ(control_header_check(&h, CONTROL_HEADER_SIZE + 11), -EBADMSG);
        EXPECT_EQ(control_header_check(&h, 4), -EBADMSG);

        ControlHeader m = h;
        m.magic ^= 1;
        EXPECT_EQ(control_header_check(&m, CONTROL_HEADER_SIZE + 10), -EBADMSG);

        ControlHeader f = h;
        f.flags = 1;
        EXPECT_EQ(control_header_check(&f, CONTROL_HEADER_SIZE + 10), -EBADMSG);

        ControlHeader v = h;
        v.version = CONTROL_VERSION + 1;
        EXPECT_EQ(control_header_check(&v, CONTROL_HEADER_SIZE + 10), -EPROTO);
}

TEST(ControlInfo, EncodesLittleEndianAtDocumentedOffsets) {
        ControlInfo info = {};
        info.state = CONTROL_STATE_PAUSED;
        info.vcpus = 3;
        info.memory_bytes = 0x0102030405060708ULL;
        info.uptime_ns = 0x1112131415161718ULL;
        info.pid = 0x21222324;
        uint8_t buf[CONTROL_INFO_SIZE];

        ASSERT_EQ(control_info_encode(&info, buf), (size_t) CONTROL_INFO_SIZE);

        const uint8_t expected[CONTROL_INFO_SIZE] = {
                0x02, 0x00, 0x00, 0x00,
                0x03, 0x00, 0x00, 0x00,
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
                0x24, 0x23, 0x22, 0x21,
                0x00, 0x00, 0x00, 0x00,
        };
        EXPECT_EQ(memcmp(buf, expected, sizeof(buf)), 0);
}

TEST(ControlInfo, DecodeInvertsEncode) {
        ControlInfo info = {};
        info.state = CONTROL_STATE_RUNNING;
        info.vcpus = 8;
        info.memory_bytes = 4ULL << 30;
        info.uptime_ns = 123456789012ULL;
        info.pid = 4242;
        uint8_t buf[CONTROL_INFO_SIZE];
        ControlInfo out;

        control_info_encode(&info, buf);
        ASSERT_EQ(control_info_decode(buf, sizeof(buf), &out), 0);

        EXPECT_EQ(out.state, info.state);
        EXPECT_EQ(out.vcpus, info.vcpus);
        EXPECT_EQ(out.memory_bytes, info.memory_bytes);
        EXPECT_EQ(out.uptime_ns, info.uptime_ns);
        EXPECT_EQ(out.pid, info.pid);
}

TEST(ControlInfo, DecodeAcceptsLongerPayloadFromNewerVmm) {
        ControlInfo info = {};
        info.vcpus = 2;
        uint8_t buf[CONTROL_INFO_SIZE + 16];
        ControlInfo out;

        memset(buf, 0xee, sizeof(buf));
        control_info_encode(&info, buf);

        ASSERT_EQ(control_info_decode(buf, sizeof(buf), &out), 0);
        EXPECT_EQ(out.vcpus, 2u);
}

TEST(ControlInfo, DecodeRejectsShortPayloadAndLeavesOutput) {
        uint8_t buf[CONTROL_INFO_SIZE] = {};
        ControlInfo out = {};
        out.vcpus = 77;

        EXPECT_EQ(control_info_decode(buf, CONTROL_INFO_SIZE - 1, &out), -EBADMSG);
        EXPECT_EQ(out.vcpus, 77u);
}

TEST(ControlType, StringsRoundTrip) {
        for (int t = CONTROL_TYPE_NONE + 1; t < _CONTROL_TYPE_MAX; t++) {
                const char *s = control_type_to_string((uint16_t) t);

                /* Types come in blocks (balloon 32-47, ...): gaps are unnamed. */
                if (!s)
                        continue;
                EXPECT_EQ(control_type_from_string(s), t) << s;
        }
        EXPECT_STREQ(control_type_to_string(CONTROL_TYPE_STOP), "stop");
        EXPECT_EQ(control_type_to_string(CONTROL_TYPE_NONE), nullptr);
        EXPECT_EQ(control_type_to_string(_CONTROL_TYPE_MAX), nullptr);
        EXPECT_EQ(control_type_to_string(CONTROL_TYPE_INFO | CONTROL_REPLY), nullptr);
        EXPECT_EQ(control_type_from_string("reboot"), -EINVAL);
        EXPECT_EQ(control_type_from_string(""), -EINVAL);
        EXPECT_EQ(control_type_from_string(nullptr), -EINVAL);
}

TEST(ControlState, StringsRoundTrip) {
        for (int st = 0; st < _CONTROL_STATE_MAX; st++) {
                const char *s = control_state_to_string((uint32_t) st);

                ASSERT_NE(s, nullptr) << st;
                EXPECT_EQ(control_state_from_string(s), st) << s;
        }
        EXPECT_EQ(control_state_to_string(_CONTROL_STATE_MAX), nullptr);
        EXPECT_EQ(control_state_from_string("sleeping"), -EINVAL);
        EXPECT_STREQ(control_state_to_string(CONTROL_STATE_RUNNING), "running");
}

/* ---- events: their bytes ---------------------------------------------- */

TEST(ControlEvent, TypesAreFlaggedNamedAndNoRequests) {
        EXPECT_EQ(CONTROL_EVENT_READY, 0x4001);
        EXPECT_EQ(CONTROL_EVENT_STATE_CHANGED, 0x4002);
        EXPECT_EQ(CONTROL_EVENT_GUEST_PANIC, 0x4003);
        EXPECT_EQ(CONTROL_EVENT_EXITING, 0x4004);
        EXPECT_EQ(CONTROL_TYPE_SUBSCRIBE, 5);
        EXPECT_STREQ(control_type_to_string(CONTROL_EVENT_READY), "ready");
        EXPECT_STREQ(control_type_to_string(CONTROL_EVENT_STATE_CHANGED), "state-changed");
        EXPECT_STREQ(control_type_to_string(CONTROL_EVENT_GUEST_PANIC), "guest-panic");
        EXPECT_STREQ(control_type_to_string(CONTROL_EVENT_EXITING), "exiting");
        EXPECT_STREQ(control_type_to_string(CONTROL_TYPE_SUBSCRIBE), "subscribe");
        EXPECT_EQ(control_type_to_string(CONTROL_EVENT), nullptr);
        EXPECT_EQ(control_type_to_string(_CONTROL_EVENT_MAX), nullptr);
        /* An event is not something a client may ask for. */
        EXPECT_EQ(control_type_from_string("ready"), -EINVAL);
}

TEST(ControlEvent, ReadyEncodesLittleEndianAtDocumentedOffsets) {
        ControlReady r = {};
        r.state = CONTROL_STATE_RUNNING;
        r.vcpus = 2;
        r.memory_bytes = 0x0102030405060708ULL;
        r.cid = 0x11223344;
        r.n_devices = 1;
        r.devices[0] = ControlDevice{ 0x1b36, 0x0011, 0, 5, 0 };
        uint8_t buf[CONTROL_READY_MAX_SIZE];
        const uint8_t expected[] = {
                0x01, 0x00, 0x00, 0x00,                         /* state running */
                0x02, 0x00, 0x00, 0x00,                         /* vcpus */
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* memory_bytes */
                0x44, 0x33, 0x22, 0x11,                         /* cid */
                0x01, 0x00, 0x00, 0x00,                         /* n_devices */
                0x36, 0x1b, 0x11, 0x00, 0x00, 0x05, 0x00, 0x00, /* vendor, device, bus, slot, fn, 0 */
        };

        ASSERT_EQ(control_ready_encode(&r, buf), sizeof(expected));
        EXPECT_EQ(memcmp(buf, expected, sizeof(expected)), 0);

        ControlReady out;
        ASSERT_EQ(control_ready_decode(expected, sizeof(expected), &out), 0);
        EXPECT_EQ(out.memory_bytes, r.memory_bytes);
        EXPECT_EQ(out.cid, r.cid);
        ASSERT_EQ(out.n_devices, 1u);
        EXPECT_EQ(out.devices[0].vendor_id, 0x1b36);
        EXPECT_EQ(out.devices[0].device_id, 0x0011);
        EXPECT_EQ(out.devices[0].slot, 5);
}

TEST(ControlEvent, ReadyDecodeRejectsShortOrOvercountedPayloads) {
        uint8_t buf[CONTROL_READY_MAX_SIZE + 64] = {};
        ControlReady out = {};

        EXPECT_EQ(control_ready_decode(buf, CONTROL_READY_HEADER_SIZE - 1, &out), -EBADMSG);
        buf[20] = 2; /* two devices announced, one sent */
        EXPECT_EQ(control_ready_decode(buf, CONTROL_READY_HEADER_SIZE + CONTROL_READY_DEVICE_SIZE, &out), -EBADMSG);
        buf[20] = CONTROL_READY_DEVICES_MAX + 1;
        EXPECT_EQ(control_ready_decode(buf, sizeof(buf), &out), -EBADMSG);
        buf[20] = 0;
        EXPECT_EQ(control_ready_decode(buf, sizeof(buf), &out), 0) << "a longer payload is a newer VMM's";
}

TEST(ControlEvent, StatePanicAndExitingEncodeAtDocumentedOffsets) {
        uint8_t buf[CONTROL_EXITING_HEADER_SIZE + CONTROL_REASON_MAX];
        const uint8_t state[] = { 0x02, 0, 0, 0, 0, 0, 0, 0 };
        const uint8_t panic[] = { 0x01, 0, 0, 0, 0x01, 0, 0, 0 };
        const uint8_t exiting[] = { 0x4a, 0, 0, 0, 0x02, 0, 0, 0, 'o', 'k' };
        uint32_t v, a;
        int32_t code;
        char reason[CONTROL_REASON_MAX + 1];

        ASSERT_EQ(control_state_changed_encode(CONTROL_STATE_PAUSED, buf), sizeof(state));
        EXPECT_EQ(memcmp(buf, state, sizeof(state)), 0);
        ASSERT_EQ(control_guest_panic_encode(1, CONTROL_PANIC_PAUSE, buf), sizeof(panic));
        EXPECT_EQ(memcmp(buf, panic, sizeof(panic)), 0);
        ASSERT_EQ(control_exiting_encode(74, "ok", buf), sizeof(exiting));
        EXPECT_EQ(memcmp(buf, exiting, sizeof(exiting)), 0);

        ASSERT_EQ(control_state_changed_decode(state, sizeof(state), &v), 0);
        EXPECT_EQ(v, (uint32_t) CONTROL_STATE_PAUSED);
        EXPECT_EQ(control_state_changed_decode(state, 4, &v), -EBADMSG);
        ASSERT_EQ(control_guest_panic_decode(panic, sizeof(panic), &v, &a), 0);
        EXPECT_EQ(v, 1u);
        EXPECT_EQ(a, (uint32_t) CONTROL_PANIC_PAUSE);
        EXPECT_EQ(control_guest_panic_decode(panic, 7, &v, &a), -EBADMSG);
        ASSERT_EQ(control_exiting_decode(exiting, sizeof(exiting), &code, reason), 0);
        EXPECT_EQ(code, 74);
        EXPECT_STREQ(reason, "ok");
        EXPECT_EQ(control_exiting_decode(exiting, sizeof(exiting) - 1, &code, reason), -EBADMSG)
                << "reason_length past the payload";
}

TEST(ControlEvent, DeviceErrorBytesAndBadLengths) {
        const ControlDevice dev = { .vendor_id = 0x1af4, .device_id = 0x105a, .bus = 0, .slot = 3, .function = 0 };
        const uint8_t want[] = { 0xf4, 0x1a, 0x5a, 0x10, 0, 3, 0, 0, 4, 0, 0, 0, 'g', 'o', 'n', 'e' };
        uint8_t buf[CONTROL_DEVICE_ERROR_HEADER_SIZE + CONTROL_REASON_MAX];
        char reason[CONTROL_REASON_MAX + 1];
        ControlDevice got;

        ASSERT_EQ(control_device_error_encode(&dev, "gone", buf), sizeof(want));
        EXPECT_EQ(memcmp(buf, want, sizeof(want)), 0);
        ASSERT_EQ(control_device_error_decode(want, sizeof(want), &got, reason), 0);
        EXPECT_EQ(got.vendor_id, 0x1af4);
        EXPECT_EQ(got.device_id, 0x105a);
        EXPECT_EQ(got.slot, 3);
        EXPECT_STREQ(reason, "gone");
        EXPECT_EQ(control_device_error_decode(want, 11, &got, reason), -EBADMSG) << "shorter than its header";
        EXPECT_EQ(control_device_error_decode(want, sizeof(want) - 1, &got, reason), -EBADMSG)
                << "reason_length past the payload";
        EXPECT_STREQ(control_type_to_string(CONTROL_EVENT_DEVICE_ERROR), "device-error");
}

TEST(ControlEvent, BalloonReachedBytesAndBadLengths) {
        const uint8_t want[] = { 0, 0, 0, 1, 0, 0, 0, 0 }; /* 16 MiB */
        uint8_t buf[CONTROL_BALLOON_REACHED_SIZE];
        uint64_t bytes = 0;

        ASSERT_EQ(control_balloon_reached_encode(16u << 20, buf), sizeof(want));
        EXPECT_EQ(memcmp(buf, want, sizeof(want)), 0);
        ASSERT_EQ(control_balloon_reached_decode(want, sizeof(want), &bytes), 0);
        EXPECT_EQ(bytes, 16u << 20);
        EXPECT_EQ(control_balloon_reached_decode(want, 7, &bytes), -EBADMSG);
        const uint8_t longer[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff };
        ASSERT_EQ(control_balloon_reached_decode(longer, sizeof(longer), &bytes), 0) << "fields appended later";
        EXPECT_EQ(bytes, 16u << 20);
        EXPECT_STREQ(control_type_to_string(CONTROL_EVENT_BALLOON_REACHED), "balloon-reached");
}

TEST(ControlEvent, ExitingCutsAnOverlongReasonAndRefusesOneOverTheCap) {
        std::string longer(CONTROL_REASON_MAX + 50, 'x');
        std::vector<uint8_t> buf(CONTROL_EXITING_HEADER_SIZE + CONTROL_REASON_MAX + 64);
        char reason[CONTROL_REASON_MAX + 1];
        int32_t code;

        EXPECT_EQ(control_exiting_encode(1, longer.c_str(), buf.data()),
                  (size_t) CONTROL_EXITING_HEADER_SIZE + CONTROL_REASON_MAX);
        buf[4] = (CONTROL_REASON_MAX + 1) & 0xff;
        buf[5] = (CONTROL_REASON_MAX + 1) >> 8;
        EXPECT_EQ(control_exiting_decode(buf.data(), buf.size(), &code, reason), -EBADMSG);
}

TEST(ControlEvent, PanicActionStringsRoundTrip) {
        for (uint32_t a = 0; a < _CONTROL_PANIC_ACTION_MAX; a++)
                EXPECT_EQ(control_panic_action_from_string(control_panic_action_to_string(a)), (int) a);
        EXPECT_STREQ(control_panic_action_to_string(CONTROL_PANIC_STOP), "stop");
        EXPECT_EQ(control_panic_action_from_string("reboot"), -EINVAL);
        EXPECT_EQ(control_panic_action_from_string(nullptr), -EINVAL);
        EXPECT_EQ(control_panic_action_to_string(_CONTROL_PANIC_ACTION_MAX), nullptr);
}

TEST(ControlSend, RejectsOversizedPayloadAndTooManyFds) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        std::vector<uint8_t> big(CONTROL_PAYLOAD_MAX + 1);
        int fds[CONTROL_FDS_MAX + 1];
        for (auto &f : fds)
                f = sv[0];

        ControlHeader h = Header(CONTROL_TYPE_INFO, 1, (uint32_t) big.size());
        EXPECT_EQ(control_send(sv[0], &h, big.data(), nullptr, 0), -EMSGSIZE);
        ControlHeader h0 = Header(CONTROL_TYPE_INFO);
        EXPECT_EQ(control_send(sv[0], &h0, nullptr, fds, CONTROL_FDS_MAX + 1), -EMSGSIZE);

        close(sv[0]);
        close(sv[1]);
}

TEST(ControlReceive, ReturnsDatagramAndFds) {
        int sv[2], p[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        const uint8_t payload[3] = { 1, 2, 3 };
        ControlHeader h = Header(CONTROL_TYPE_INFO, 5, sizeof(payload));
        ControlDatagram d;

        ASSERT_EQ(control_send(sv[0], &h, payload, &p[0], 1), 0);
        ASSERT_EQ(control_receive(sv[1], &d), 0);

        EXPECT_EQ(d.len, (size_t) CONTROL_HEADER_SIZE + 3);
        EXPECT_FALSE(d.truncated);
        EXPECT_FALSE(d.fds_truncated);
        ASSERT_EQ(d.n_fds, 1u);
        EXPECT_GE(fcntl(d.fds[0], F_GETFD), FD_CLOEXEC) << "received fds are O_CLOEXEC";
        control_datagram_close_fds(&d);
        EXPECT_EQ(d.n_fds, 0u);
        EXPECT_EQ(control_receive(sv[1], &d), -EAGAIN);

        close(sv[0]);
        EXPECT_EQ(control_receive(sv[1], &d), -ECONNRESET);
        close(sv[1]);
        close(p[0]);
        close(p[1]);
}

/* ---- a fake VM behind the ops ----------------------------------------- */

struct FakeVm {
        std::atomic<int> info_calls{0}, pause_calls{0}, resume_calls{0}, stop_calls{0};
        int info_result = 0, pause_result = 0, resume_result = 0, stop_result = 0;
        bool fill_pid = true;
        EventLoop *event = nullptr; /* stop ends this loop, like the VMM */
        ControlStatus status = MakeStatus();

        static ControlStatus MakeStatus() {
                ControlStatus st = {};
                st.ready.state = CONTROL_STATE_RUNNING;
                st.ready.vcpus = 2;
                st.ready.memory_bytes = 512ULL << 20;
                st.ready.cid = 42;
                st.ready.n_devices = 2;
                st.ready.devices[0] = ControlDevice{ 0x8086, 0x29c0, 0, 0, 0 };
                st.ready.devices[1] = ControlDevice{ 0x1b36, 0x0011, 0, 1, 0 };
                return st;
        }
        static int Status(void *userdata, ControlStatus *ret) {
                *ret = static_cast<FakeVm *>(userdata)->status;
                return 0;
        }

        static int Info(void *userdata, ControlInfo *ret) {
                auto *vm = static_cast<FakeVm *>(userdata);
                vm->info_calls++;
                if (vm->info_result < 0)
                        return vm->info_result;
                ret->state = CONTROL_STATE_RUNNING;
                ret->vcpus = 2;
                ret->memory_bytes = 512ULL << 20;
                ret->uptime_ns = 3723ULL * 1000000000ULL;
                if (vm->fill_pid)
                        ret->pid = 4321;
                return 0;
        }
        static int Pause(void *userdata) {
                auto *vm = static_cast<FakeVm *>(userdata);
                vm->pause_calls++;
                return vm->pause_result;
        }
        static int Resume(void *userdata) {
                auto *vm = static_cast<FakeVm *>(userdata);
                vm->resume_calls++;
                return vm->resume_result;
        }
        static int Stop(void *userdata) {
                auto *vm = static_cast<FakeVm *>(userdata);
                vm->stop_calls++;
                if (vm->stop_result < 0)
                        return vm->stop_result;
                if (vm->event)
                        event_loop_exit(vm->event, 0);
                return 0;
        }

        static ControlOps Ops() {
                ControlOps ops = {};
                ops.info = Info;
                ops.pause = Pause;
                ops.resume = Resume;
                ops.stop = Stop;
                ops.status = Status;
                return ops;
        }
};

const ControlOps fake_ops = FakeVm::Ops();

struct Reply {
        ControlHeader header = {};
        std::vector<uint8_t> payload;
};

/* ---- the server, stepped by hand on this thread ----------------------- */

class ControlServerTest : public ::testing::Test {
protected:
        EventLoop *event = nullptr;
        ControlServer *server = nullptr;
        FakeVm vm;
        int client = -1;

        void SetUp() override {
                int sv[2];

                ASSERT_GE(event_loop_new(&event), 0);
                ASSERT_EQ(control_server_new(event, -1, &fake_ops, &vm, &server), 0);
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
                client = sv[0];
                ASSERT_EQ(control_server_add_connection(server, sv[1]), 0);
        }

        void TearDown() override {
                control_server_free(server);
                event_loop_free(event);
                if (client >= 0)
                        close(client);
        }

        void SendRaw(const void *data, size_t len, const int *fds = nullptr, size_t n_fds = 0) {
                union {
                        struct cmsghdr align;
                        uint8_t buf[CMSG_SPACE(sizeof(int) * 16)];
                } control;
                struct iovec iov = { const_cast<void *>(data), len };
                struct msghdr mh = {};
                mh.msg_iov = &iov;
                mh.msg_iovlen = 1;
                if (n_fds > 0) {
                        ASSERT_LE(n_fds, 16u);
                        memset(&control, 0, sizeof(control));
                        mh.msg_control = &control;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
                }
                ASSERT_EQ(sendmsg(client, &mh, MSG_NOSIGNAL), (ssize_t) len) << strerror(errno);
        }

        void SendHeader(const ControlHeader &h, const void *payload = nullptr, size_t len = 0,
                        const int *fds = nullptr, size_t n_fds = 0) {
                std::vector<uint8_t> buf(CONTROL_HEADER_SIZE + len);
                control_header_encode(&h, buf.data());
                if (len > 0)
                        memcpy(buf.data() + CONTROL_HEADER_SIZE, payload, len);
                SendRaw(buf.data(), buf.size(), fds, n_fds);
        }

        /* Runs the loop until fd has something to read (or hung up). */
        bool RunUntilReadable(int fd) {
                for (int i = 0; i < 200; i++) {
                        struct pollfd p = { fd, POLLIN, 0 };
                        if (poll(&p, 1, 0) > 0)
                                return true;
                        if (event_loop_run(event, 10) < 0)
                                return false;
                }
                return false;
        }

        Reply ReadReplyFrom(int fd) {
                Reply r;
                uint8_t buf[CONTROL_MSG_MAX];

                EXPECT_TRUE(RunUntilReadable(fd));
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                EXPECT_GE(n, (ssize_t) CONTROL_HEADER_SIZE) << (n < 0 ? strerror(errno) : "short");
                if (n < (ssize_t) CONTROL_HEADER_SIZE)
                        return r;
                EXPECT_EQ(control_header_decode(buf, (size_t) n, &r.header), 0);
                EXPECT_EQ(r.header.magic, CONTROL_MAGIC);
                EXPECT_EQ(r.header.version, CONTROL_VERSION);
                EXPECT_EQ(r.header.length, (size_t) n - CONTROL_HEADER_SIZE);
                r.payload.assign(buf + CONTROL_HEADER_SIZE, buf + n);
                return r;
        }

        Reply ReadReply() {
                return ReadReplyFrom(client);
        }

        /* The proof, after each bad message, that the connection still works. */
        void ExpectInfoWorksOn(int fd) {
                ControlHeader h = Header(CONTROL_TYPE_INFO, 1000);
                uint8_t buf[CONTROL_HEADER_SIZE];
                control_header_encode(&h, buf);
                ASSERT_EQ(send(fd, buf, sizeof(buf), MSG_NOSIGNAL), (ssize_t) sizeof(buf));

                Reply r = ReadReplyFrom(fd);
                EXPECT_EQ(r.header.type, CONTROL_TYPE_INFO | CONTROL_REPLY);
                EXPECT_EQ(r.header.id, 1000u);
                EXPECT_EQ(r.header.status, 0);
                ControlInfo info;
                ASSERT_EQ(control_info_decode(r.payload.data(), r.payload.size(), &info), 0);
                EXPECT_EQ(info.vcpus, 2u);
        }

        void ExpectInfoWorks() {
                ExpectInfoWorksOn(client);
        }
};

TEST_F(ControlServerTest, InfoReturnsWhatTheOpsReport) {
        SendHeader(Header(CONTROL_TYPE_INFO, 41));

        Reply r = ReadReply();

        EXPECT_EQ(r.header.type, CONTROL_TYPE_INFO | CONTROL_REPLY);
        EXPECT_EQ(r.header.id, 41u);
        EXPECT_EQ(r.header.status, 0);
        ASSERT_EQ(r.payload.size(), (size_t) CONTROL_INFO_SIZE);
        ControlInfo info;
        ASSERT_EQ(control_info_decode(r.payload.data(), r.payload.size(), &info), 0);
        EXPECT_EQ(info.state, (uint32_t) CONTROL_STATE_RUNNING);
        EXPECT_EQ(info.vcpus, 2u);
        EXPECT_EQ(info.memory_bytes, 512ULL << 20);
        EXPECT_EQ(info.uptime_ns, 3723ULL * 1000000000ULL);
        EXPECT_EQ(info.pid, 4321u);
        EXPECT_EQ(vm.info_calls, 1);
}

TEST_F(ControlServerTest, InfoPresetsPidToTheServersPid) {
        vm.fill_pid = false;
        SendHeader(Header(CONTROL_TYPE_INFO));

        Reply r = ReadReply();

        ControlInfo info;
        ASSERT_EQ(control_info_decode(r.payload.data(), r.payload.size(), &info), 0);
        EXPECT_EQ(info.pid, (uint32_t) getpid());
}

TEST_F(ControlServerTest, PauseResumeStopEachCallTheirOp) {
        const uint16_t types[] = { CONTROL_TYPE_PAUSE, CONTROL_TYPE_RESUME, CONTROL_TYPE_STOP };

        for (uint16_t t : types) {
                SendHeader(Header(t, t));
                Reply r = ReadReply();
                EXPECT_EQ(r.header.type, t | CONTROL_REPLY);
                EXPECT_EQ(r.header.id, t);
                EXPECT_EQ(r.header.status, 0);
                EXPECT_TRUE(r.payload.empty());
        }

        EXPECT_EQ(vm.pause_calls, 1);
        EXPECT_EQ(vm.resume_calls, 1);
        EXPECT_EQ(vm.stop_calls, 1);
        EXPECT_EQ(vm.info_calls, 0);
}

TEST_F(ControlServerTest, OpErrorIsRelayedAsStatus) {
        vm.pause_result = -EALREADY;
        vm.info_result = -EIO;

        SendHeader(Header(CONTROL_TYPE_PAUSE, 3));
        Reply p = ReadReply();
        SendHeader(Header(CONTROL_TYPE_INFO, 4));
        Reply i = ReadReply();

        EXPECT_EQ(p.header.status, -EALREADY);
        EXPECT_EQ(p.header.id, 3u);
        EXPECT_EQ(i.header.status, -EIO);
        EXPECT_TRUE(i.payload.empty()) << "no payload with an error";
}

TEST_F(ControlServerTest, MissingOpAnswersEopnotsupp) {
        ControlOps ops = {};
        ops.info = FakeVm::Info;
        ControlServer *s = nullptr;
        int sv[2];
        ASSERT_EQ(control_server_new(event, -1, &ops, &vm, &s), 0);
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(control_server_add_connection(s, sv[1]), 0);
        ControlHeader h = Header(CONTROL_TYPE_PAUSE);
        ASSERT_EQ(control_send(sv[0], &h, nullptr, nullptr, 0), 0);

        Reply r = ReadReplyFrom(sv[0]);

        EXPECT_EQ(r.header.status, -EOPNOTSUPP);
        control_server_free(s);
        close(sv[0]);
}

TEST_F(ControlServerTest, TruncatedHeaderGetsEbadmsgAndConnectionSurvives) {
        uint8_t buf[CONTROL_HEADER_SIZE];
        ControlHeader h = Header(CONTROL_TYPE_INFO, 9);
        control_header_encode(&h, buf);
        SendRaw(buf, 10);

        Reply r = ReadReply();

        EXPECT_EQ(r.header.type, CONTROL_REPLY | CONTROL_TYPE_NONE);
        EXPECT_EQ(r.header.id, 0u) << "the id could not be read";
        EXPECT_EQ(r.header.status, -EBADMSG);
        EXPECT_EQ(vm.info_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, LengthFieldLargerThanDatagramGetsEbadmsg) {
        SendHeader(Header(CONTROL_TYPE_INFO, 12, 100));

        Reply r = ReadReply();

        EXPECT_EQ(r.header.type, CONTROL_TYPE_INFO | CONTROL_REPLY);
        EXPECT_EQ(r.header.id, 12u);
        EXPECT_EQ(r.header.status, -EBADMSG);
        EXPECT_EQ(vm.info_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, LengthFieldSmallerThanDatagramGetsEbadmsg) {
        const uint8_t extra[8] = {};
        SendHeader(Header(CONTROL_TYPE_PAUSE, 13, 0), extra, sizeof(extra));

        Reply r = ReadReply();

        EXPECT_EQ(r.header.status, -EBADMSG);
        EXPECT_EQ(vm.pause_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, PayloadOnPayloadlessRequestGetsEbadmsg) {
        const uint8_t extra[4] = { 1, 2, 3, 4 };
        SendHeader(Header(CONTROL_TYPE_STOP, 14, sizeof(extra)), extra, sizeof(extra));

        Reply r = ReadReply();

        EXPECT_EQ(r.header.status, -EBADMSG);
        EXPECT_EQ(vm.stop_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, OversizedDatagramGetsEmsgsize) {
        std::vector<uint8_t> big(2 * CONTROL_MSG_MAX, 0);
        SendHeader(Header(CONTROL_TYPE_INFO, 15, (uint32_t) big.size()), big.data(), big.size());

        Reply r = ReadReply();

        EXPECT_EQ(r.header.type, CONTROL_TYPE_INFO | CONTROL_REPLY);
        EXPECT_EQ(r.header.id, 15u);
        EXPECT_EQ(r.header.status, -EMSGSIZE);
        EXPECT_EQ(vm.info_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, DatagramOfExactlyMaxSizeIsNotOversized) {
        std::vector<uint8_t> payload(CONTROL_PAYLOAD_MAX, 0);
        SendHeader(Header(CONTROL_TYPE_INFO, 16, (uint32_t) payload.size()), payload.data(), payload.size());

        Reply r = ReadReply();

        EXPECT_EQ(r.header.status, -EBADMSG) << "rejected for its payload, not its size";
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, UnknownTypeGetsEopnotsupp) {
        SendHeader(Header(0x7777, 17));
        Reply r = ReadReply();
        SendHeader(Header(CONTROL_TYPE_NONE, 18));
        Reply none = ReadReply();

        EXPECT_EQ(r.header.type, 0x7777 | CONTROL_REPLY);
        EXPECT_EQ(r.header.id, 17u);
        EXPECT_EQ(r.header.status, -EOPNOTSUPP);
        EXPECT_EQ(none.header.status, -EOPNOTSUPP);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, WrongVersionGetsEprotoWithServerVersion) {
        ControlHeader h = Header(CONTROL_TYPE_PAUSE, 19);
        h.version = CONTROL_VERSION + 1;
        SendHeader(h);

        Reply r = ReadReply(); /* checks the reply's version is ours */

        EXPECT_EQ(r.header.id, 19u);
        EXPECT_EQ(r.header.status, -EPROTO);
        EXPECT_EQ(vm.pause_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, BadMagicGetsEbadmsgWithoutEchoingId) {
        ControlHeader h = Header(CONTROL_TYPE_PAUSE, 20);
        h.magic = 0x12345678;
        SendHeader(h);

        Reply r = ReadReply();

        EXPECT_EQ(r.header.type, CONTROL_REPLY | CONTROL_TYPE_NONE);
        EXPECT_EQ(r.header.id, 0u);
        EXPECT_EQ(r.header.status, -EBADMSG);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, NonzeroFlagsStatusOrReplyBitGetEbadmsg) {
        ControlHeader f = Header(CONTROL_TYPE_PAUSE, 21);
        f.flags = 1;
        ControlHeader s = Header(CONTROL_TYPE_PAUSE, 22);
        s.status = -1;
        ControlHeader rb = Header(CONTROL_TYPE_PAUSE | CONTROL_REPLY, 23);

        SendHeader(f);
        Reply rf = ReadReply();
        SendHeader(s);
        Reply rs = ReadReply();
        SendHeader(rb);
        Reply rr = ReadReply();

        EXPECT_EQ(rf.header.status, -EBADMSG);
        EXPECT_EQ(rs.header.status, -EBADMSG);
        EXPECT_EQ(rr.header.status, -EBADMSG);
        EXPECT_EQ(vm.pause_calls, 0);
        ExpectInfoWorks();
}

/* After our copy of the write end is closed, EOF on the read end proves
 * nobody else (the server) holds a copy. */
bool PipeWriteEndsAllClosed(int read_fd) {
        char c;
        return read(read_fd, &c, 1) == 0;
}

TEST_F(ControlServerTest, UnexpectedFdsAreClosedAndRequestRejected) {
        int p[2];
        ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        SendHeader(Header(CONTROL_TYPE_PAUSE, 24), nullptr, 0, &p[1], 1);
        close(p[1]);

        Reply r = ReadReply();

        EXPECT_EQ(r.header.status, -EBADMSG);
        EXPECT_EQ(vm.pause_calls, 0);
        EXPECT_TRUE(PipeWriteEndsAllClosed(p[0]));
        close(p[0]);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, TooManyFdsAreAllClosedAndGetEmsgsize) {
        int p[2];
        ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        int fds[CONTROL_FDS_MAX + 4];
        for (auto &f : fds)
                f = p[1];
        SendHeader(Header(CONTROL_TYPE_PAUSE, 25), nullptr, 0, fds, ARRAY_SIZE(fds));
        close(p[1]);

        Reply r = ReadReply();

        EXPECT_EQ(r.header.id, 25u);
        EXPECT_EQ(r.header.status, -EMSGSIZE);
        EXPECT_TRUE(PipeWriteEndsAllClosed(p[0]));
        close(p[0]);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, GarbageDatagramsAllGetErrorRepliesAndServerSurvives) {
        unsigned seed = 1;

        for (int i = 0; i < 200; i++) {
                uint8_t buf[64];
                size_t len = 1 + rand_r(&seed) % sizeof(buf);
                for (auto &b : buf)
                        b = (uint8_t) rand_r(&seed);
                /* Half of them with a valid prefix, to get past the magic. */
                if (i % 2 == 0 && len >= 8) {
                        ControlHeader h = Header(0);
                        uint8_t hb[CONTROL_HEADER_SIZE];
                        control_header_encode(&h, hb);
                        memcpy(buf, hb, 6);
                }
                SendRaw(buf, len);
                Reply r = ReadReply();
                ASSERT_LT(r.header.status, 0) << "datagram " << i;
        }

        EXPECT_EQ(vm.pause_calls + vm.resume_calls + vm.stop_calls, 0);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, EmptyDatagramIsTreatedAsHangup) {
        ASSERT_EQ(control_server_n_connections(server), 1u);
        SendRaw("", 0);

        for (int i = 0; i < 100 && control_server_n_connections(server) > 0; i++)
                event_loop_run(event, 10);

        EXPECT_EQ(control_server_n_connections(server), 0u);
}

TEST_F(ControlServerTest, ClientHangupFreesTheConnection) {
        close(client);
        client = -1;

        for (int i = 0; i < 100 && control_server_n_connections(server) > 0; i++)
                event_loop_run(event, 10);

        EXPECT_EQ(control_server_n_connections(server), 0u);
}

TEST_F(ControlServerTest, RequestsQueuedBeforeHangupAreStillServed) {
        SendHeader(Header(CONTROL_TYPE_PAUSE, 1));
        SendHeader(Header(CONTROL_TYPE_RESUME, 2));
        shutdown(client, SHUT_WR);

        for (int i = 0; i < 100 && control_server_n_connections(server) > 0; i++)
                event_loop_run(event, 10);

        EXPECT_EQ(vm.pause_calls, 1);
        EXPECT_EQ(vm.resume_calls, 1);
}

/* ---- events pushed on a subscribed connection -------------------------- */

TEST_F(ControlServerTest, SubscribeIsAnsweredThenTheCurrentStateIsPushed) {
        SendHeader(Header(CONTROL_TYPE_SUBSCRIBE, 9));
        Reply reply = ReadReply();
        Reply ready = ReadReply();

        EXPECT_EQ(reply.header.type, CONTROL_TYPE_SUBSCRIBE | CONTROL_REPLY);
        EXPECT_EQ(reply.header.id, 9u);
        EXPECT_EQ(reply.header.status, 0);
        EXPECT_EQ(ready.header.type, CONTROL_EVENT_READY);
        EXPECT_EQ(ready.header.id, 1u) << "events count from 1";
        EXPECT_EQ(ready.header.status, 0);
        ControlReady r;
        ASSERT_EQ(control_ready_decode(ready.payload.data(), ready.payload.size(), &r), 0);
        EXPECT_EQ(r.state, (uint32_t) CONTROL_STATE_RUNNING);
        EXPECT_EQ(r.cid, 42u);
        ASSERT_EQ(r.n_devices, 2u);
        EXPECT_EQ(r.devices[1].vendor_id, 0x1b36);
        ExpectInfoWorks();
}

TEST_F(ControlServerTest, NothingIsPushedWithoutSubscribing) {
        vm.status.ready.state = CONTROL_STATE_PAUSED;
        control_server_push_events(server);
        ExpectInfoWorks(); /* the next datagram is info's reply, no event */
}

TEST_F(ControlServerTest, ReadyWaitsForTheVmToLeaveStarting) {
        vm.status.ready.state = CONTROL_STATE_STARTING;
        SendHeader(Header(CONTROL_TYPE_SUBSCRIBE, 1));
        ReadReply();
        control_server_push_events(server);
        ExpectInfoWorks(); /* no event while starting */

        vm.status.ready.state = CONTROL_STATE_RUNNING;
        control_server_push_events(server);
        Reply ready = ReadReply();
        EXPECT_EQ(ready.header.type, CONTROL_EVENT_READY);
}

TEST_F(ControlServerTest, EachChangeIsPushedOnceInOrderWithGrowingIds) {
        SendHeader(Header(CONTROL_TYPE_SUBSCRIBE, 1));
        ReadReply();
        ReadReply(); /* ready */

        control_server_push_events(server); /* nothing changed: nothing sent */
        vm.status.panics = 1;
        vm.status.panic_events = 1;
        vm.status.panic_action = CONTROL_PANIC_PAUSE;
        vm.status.ready.state = CONTROL_STATE_PAUSED;
        control_server_push_events(server);
        control_server_push_events(server);
        Reply panic = ReadReply();
        Reply state = ReadReply();

        EXPECT_EQ(panic.header.type, CONTROL_EVENT_GUEST_PANIC) << "the panic before the pause it led to";
        EXPECT_EQ(panic.header.id, 2u);
        uint32_t events, action, st;
        ASSERT_EQ(control_guest_panic_decode(panic.payload.data(), panic.payload.size(), &events, &action), 0);
        EXPECT_EQ(events, 1u);
        EXPECT_EQ(action, (uint32_t) CONTROL_PANIC_PAUSE);
        EXPECT_EQ(state.header.type, CONTROL_EVENT_STATE_CHANGED);
        EXPECT_EQ(state.header.id, 3u);
        ASSERT_EQ(control_state_changed_decode(state.payload.data(), state.payload.size(), &st), 0);
        EXPECT_EQ(st, (uint32_t) CONTROL_STATE_PAUSED);
        ExpectInfoWorks(); /* and nothing twice */
}

TEST_F(ControlServerTest, BalloonReachedIsPushedOncePerSizeReached) {
        SendHeader(Header(CONTROL_TYPE_SUBSCRIBE, 1));
        ReadReply();
        ReadReply(); /* ready */

        vm.status.balloon = true;
        control_server_push_events(server); /* 0 of 0: nothing to tell */
        vm.status.balloon_target = 16u << 20;
        vm.status.balloon_actual = 8u << 20;
        control_server_push_events(server); /* on its way: nothing */
        vm.status.balloon_actual = 16u << 20;
        control_server_push_events(server);
        control_server_push_events(server); /* the same: not again */
        vm.status.balloon_target = 0;
        control_server_push_events(server);
        vm.status.balloon_actual = 0;
        control_server_push_events(server);
        Reply first = ReadReply();
        Reply second = ReadReply();

        uint64_t bytes = 1;
        EXPECT_EQ(first.header.type, CONTROL_EVENT_BALLOON_REACHED);
        EXPECT_EQ(first.header.id, 2u);
        ASSERT_EQ(control_balloon_reached_decode(first.payload.data(), first.payload.size(), &bytes), 0);
        EXPECT_EQ(bytes, 16u << 20);
        EXPECT_EQ(second.header.type, CONTROL_EVENT_BALLOON_REACHED);
        ASSERT_EQ(control_balloon_reached_decode(second.payload.data(), second.payload.size(), &bytes), 0);
        EXPECT_EQ(bytes, 0u) << "deflated completely";
        ExpectInfoWorks(); /* nothing else */
}

TEST_F(ControlServerTest, ExitingIsTheLastEvent) {
        SendHeader(Header(CONTROL_TYPE_SUBSCRIBE, 1));
        ReadReply();
        ReadReply(); /* ready */

        control_server_send_exiting(server, 74, "the guest kernel panicked");
        Reply exiting = ReadReply();
        vm.status.ready.state = CONTROL_STATE_PAUSED;
        control_server_push_events(server);
        control_server_send_exiting(server, 0, "again");

        EXPECT_EQ(exiting.header.type, CONTROL_EVENT_EXITING);
        int32_t code;
        char reason[CONTROL_REASON_MAX + 1];
        ASSERT_EQ(control_exiting_decode(exiting.payload.data(), exiting.payload.size(), &code, reason), 0);
        EXPECT_EQ(code, 74);
        EXPECT_STREQ(reason, "the guest kernel panicked");
        ExpectInfoWorks(); /* nothing after exiting */
}

TEST_F(ControlServerTest, SubscribeWithoutAStatusOpIsEopnotsupp) {
        ControlOps ops = FakeVm::Ops();
        ops.status = nullptr;
        ControlServer *other = nullptr;
        int sv[2];
        ASSERT_EQ(control_server_new(event, -1, &ops, &vm, &other), 0);
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(control_server_add_connection(other, sv[1]), 0);

        ControlHeader h = Header(CONTROL_TYPE_SUBSCRIBE, 3);
        uint8_t buf[CONTROL_HEADER_SIZE];
        control_header_encode(&h, buf);
        ASSERT_EQ(send(sv[0], buf, sizeof(buf), MSG_NOSIGNAL), (ssize_t) sizeof(buf));
        Reply r = ReadReplyFrom(sv[0]);

        EXPECT_EQ(r.header.status, -EOPNOTSUPP);
        control_server_free(other);
        close(sv[0]);
}

/* ---- the listening socket --------------------------------------------- */

class ControlSocketDirTest : public ControlServerTest {
protected:
        char dir[64] = "/tmp/test-control-XXXXXX";
        std::string path;

        void SetUp() override {
                ControlServerTest::SetUp();
                ASSERT_NE(mkdtemp(dir), nullptr);
                path = std::string(dir) + "/control";
        }

        void TearDown() override {
                ControlServerTest::TearDown();
                unlink(path.c_str());
                rmdir(dir);
        }
};

TEST_F(ControlSocketDirTest, ListenRefusesPathWithLiveServer) {
        int a = -1, b = -1;
        ASSERT_EQ(control_listen(path.c_str(), &a), 0);

        EXPECT_EQ(control_listen(path.c_str(), &b), -EADDRINUSE);
        EXPECT_EQ(b, -1) << "output untouched on failure";
        close(a);
}

TEST_F(ControlSocketDirTest, ListenReplacesStaleSocket) {
        int a = -1, b = -1;
        ASSERT_EQ(control_listen(path.c_str(), &a), 0);
        close(a); /* a dead VMM: the socket file stays, nobody answers */

        ASSERT_EQ(control_listen(path.c_str(), &b), 0);

        int c = -1;
        EXPECT_EQ(control_connect(path.c_str(), &c), 0);
        close(c);
        close(b);
}

TEST_F(ControlSocketDirTest, ListenLeavesNonSocketFileAlone) {
        int f = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_GE(f, 0);
        close(f);
        int a = -1;

        EXPECT_EQ(control_listen(path.c_str(), &a), -EADDRINUSE);

        struct stat st;
        ASSERT_EQ(stat(path.c_str(), &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(ControlSocketDirTest, ListenRejectsOverlongPath) {
        std::string longpath = std::string(dir) + "/" + std::string(200, 'x');
        int a = -1;

        EXPECT_EQ(control_listen(longpath.c_str(), &a), -ENAMETOOLONG);
}

TEST_F(ControlSocketDirTest, TooManyConnectionsAreRefusedWithEusers) {
        int lfd;
        ASSERT_EQ(control_listen(path.c_str(), &lfd), 0);
        ControlServer *s = nullptr;
        ASSERT_EQ(control_server_new(event, lfd, &fake_ops, &vm, &s), 0);
        std::vector<int> clients;
        for (unsigned i = 0; i < CONTROL_CONNECTIONS_MAX; i++) {
                int c;
                ASSERT_EQ(control_connect(path.c_str(), &c), 0);
                clients.push_back(c);
                for (int k = 0; k < 100 && control_server_n_connections(s) < i + 1; k++)
                        event_loop_run(event, 10);
        }
        ASSERT_EQ(control_server_n_connections(s), (unsigned) CONTROL_CONNECTIONS_MAX);

        int extra;
        ASSERT_EQ(control_connect(path.c_str(), &extra), 0);
        Reply r = ReadReplyFrom(extra);

        EXPECT_EQ(r.header.type, CONTROL_REPLY | CONTROL_TYPE_NONE);
        EXPECT_EQ(r.header.status, -EUSERS);
        char c;
        EXPECT_EQ(recv(extra, &c, 1, 0), 0) << "then hung up";
        EXPECT_EQ(control_server_n_connections(s), (unsigned) CONTROL_CONNECTIONS_MAX);
        close(extra);

        /* The admitted clients are still served, and a slot frees on close. */
        ExpectInfoWorksOn(clients[0]);
        close(clients.back());
        clients.pop_back();
        for (int k = 0; k < 100 && control_server_n_connections(s) == CONTROL_CONNECTIONS_MAX; k++)
                event_loop_run(event, 10);
        int again;
        ASSERT_EQ(control_connect(path.c_str(), &again), 0);
        ExpectInfoWorksOn(again);

        close(again);
        for (int c2 : clients)
                close(c2);
        control_server_free(s);
}

TEST_F(ControlSocketDirTest, ServerOwnsListenFdOnlyOnSuccess) {
        int lfd;
        ASSERT_EQ(control_listen(path.c_str(), &lfd), 0);
        ControlServer *s = nullptr;

        EXPECT_EQ(control_server_new(event, lfd, nullptr, &vm, &s), -EINVAL);
        EXPECT_GE(fcntl(lfd, F_GETFD), 0) << "still open, still ours";

        ASSERT_EQ(control_server_new(event, lfd, &fake_ops, &vm, &s), 0);
        control_server_free(s);
        EXPECT_EQ(fcntl(lfd, F_GETFD), -1) << "closed by the server";
}

/* ---- a server on its own thread, for the blocking client side --------- */

class ControlThreadTest : public ::testing::Test {
protected:
        char dir[64] = "/tmp/test-control-XXXXXX";
        std::string path;
        FakeVm vm;
        int quit_fd = -1;
        std::thread loop;

        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                path = std::string(dir) + "/control";
                quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                ASSERT_GE(quit_fd, 0);

                std::promise<int> ready;
                auto started = ready.get_future();
                loop = std::thread([this, &ready] { Run(ready); });
                ASSERT_EQ(started.get(), 0);
        }

        /* Builds the loop on its own thread: its sources belong there. */
        void Run(std::promise<int> &ready) {
                EventLoop *e = nullptr;
                ControlServer *s = nullptr;
                int lfd = -1, r;

                r = event_loop_new(&e);
                if (r >= 0)
                        r = control_listen(path.c_str(), &lfd);
                if (r >= 0)
                        r = control_server_new(e, lfd, &fake_ops, &vm, &s);
                if (r >= 0)
                        r = event_add_io(e, nullptr, quit_fd, EPOLLIN,
                                         [](EventSource *, int, uint32_t, void *loop) {
                                                 event_loop_exit(static_cast<EventLoop *>(loop), 0);
                                                 return 0;
                                         }, e);
                vm.event = e;
                ready.set_value(r < 0 ? r : 0);
                if (r >= 0)
                        event_loop_loop(e);
                /* Like the VMM's exit: connections close here. */
                control_server_free(s);
                event_loop_free(e);
        }

        void TearDown() override {
                uint64_t one = 1;
                if (quit_fd >= 0)
                        (void) !write(quit_fd, &one, sizeof(one));
                if (loop.joinable())
                        loop.join();
                if (quit_fd >= 0)
                        close(quit_fd);
                unlink(path.c_str());
                rmdir(dir);
        }

        int Cli(std::vector<std::string> args) {
                std::vector<char *> argv;
                for (auto &a : args)
                        argv.push_back(a.data());
                argv.push_back(nullptr);
                return control_client_main((int) args.size(), argv.data());
        }
};

TEST_F(ControlThreadTest, ControlCallGetsInfo) {
        int fd;
        ASSERT_EQ(control_connect(path.c_str(), &fd), 0);
        ControlReply reply;

        ASSERT_EQ(control_call(fd, CONTROL_TYPE_INFO, 5, nullptr, 0, nullptr, 0, 5000, &reply), 0);

        EXPECT_EQ(reply.status, 0);
        EXPECT_EQ(reply.type, CONTROL_TYPE_INFO | CONTROL_REPLY);
        ControlInfo info;
        ASSERT_EQ(control_info_decode(reply.payload, reply.length, &info), 0);
        EXPECT_EQ(info.memory_bytes, 512ULL << 20);
        close(fd);
}

TEST_F(ControlThreadTest, ControlCallRelaysErrorStatusAsSuccessfulCall) {
        vm.resume_result = -EPERM;
        int fd;
        ASSERT_EQ(control_connect(path.c_str(), &fd), 0);
        ControlReply reply;

        ASSERT_EQ(control_call(fd, CONTROL_TYPE_RESUME, 6, nullptr, 0, nullptr, 0, 5000, &reply), 0);

        EXPECT_EQ(reply.status, -EPERM);
        EXPECT_EQ(vm.resume_calls, 1);
        close(fd);
}

TEST_F(ControlThreadTest, StopIsAnsweredBeforeTheLoopEnds) {
        int fd;
        ASSERT_EQ(control_connect(path.c_str(), &fd), 0);
        ControlReply reply;

        ASSERT_EQ(control_call(fd, CONTROL_TYPE_STOP, 7, nullptr, 0, nullptr, 0, 5000, &reply), 0);
        loop.join();

        EXPECT_EQ(reply.status, 0);
        EXPECT_EQ(vm.stop_calls, 1);
        close(fd);
}

TEST(ControlCall, TimesOutWhenNobodyAnswers) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ControlReply reply;
        reply.status = 1234;

        EXPECT_EQ(control_call(sv[0], CONTROL_TYPE_INFO, 1, nullptr, 0, nullptr, 0, 100, &reply), -ETIMEDOUT);
        EXPECT_EQ(reply.status, 1234) << "output untouched on failure";
        close(sv[0]);
        close(sv[1]);
}

TEST(ControlCall, ReportsHangupWithoutReply) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        close(sv[1]);
        ControlReply reply;

        int r = control_call(sv[0], CONTROL_TYPE_INFO, 1, nullptr, 0, nullptr, 0, 1000, &reply);

        EXPECT_TRUE(r == -EPIPE || r == -ECONNRESET) << r;
        close(sv[0]);
}

TEST(ControlCall, SkipsStaleRepliesAndReportsPeerVersionOnEproto) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        /* A late reply to an older request, then a v2 server's EPROTO. */
        ControlHeader stale = Header(CONTROL_TYPE_INFO | CONTROL_REPLY, 1);
        ASSERT_EQ(control_send(sv[1], &stale, nullptr, nullptr, 0), 0);
        ControlHeader v2 = Header(CONTROL_TYPE_INFO | CONTROL_REPLY, 2);
        v2.version = 2;
        v2.status = -EPROTO;
        ASSERT_EQ(control_send(sv[1], &v2, nullptr, nullptr, 0), 0);
        ControlReply reply;

        ASSERT_EQ(control_call(sv[0], CONTROL_TYPE_INFO, 2, nullptr, 0, nullptr, 0, 1000, &reply), 0);

        EXPECT_EQ(reply.status, -EPROTO);
        EXPECT_EQ(reply.version, 2);
        close(sv[0]);
        close(sv[1]);
}

TEST_F(ControlThreadTest, CliInfoPrintsHumanReadableInfo) {
        testing::internal::CaptureStdout();
        int r = Cli({ "info", path });
        std::string out = testing::internal::GetCapturedStdout();

        EXPECT_EQ(r, CONTROL_CLIENT_EXIT_SUCCESS);
        EXPECT_NE(out.find("State:  running\n"), std::string::npos) << out;
        EXPECT_NE(out.find("vCPUs:  2\n"), std::string::npos) << out;
        EXPECT_NE(out.find("Memory: 512 MiB\n"), std::string::npos) << out;
        EXPECT_NE(out.find("Uptime: 1h 2min 3s\n"), std::string::npos) << out;
        EXPECT_NE(out.find("PID:    4321\n"), std::string::npos) << out;
}

TEST_F(ControlThreadTest, CliInfoJsonPrintsOneObject) {
        testing::internal::CaptureStdout();
        int r = Cli({ "info", "--json", path });
        std::string out = testing::internal::GetCapturedStdout();

        EXPECT_EQ(r, CONTROL_CLIENT_EXIT_SUCCESS);
        EXPECT_EQ(out, "{\"state\":\"running\",\"vcpus\":2,\"memory_bytes\":536870912,"
                       "\"uptime_ns\":3723000000000,\"pid\":4321}\n");
}

TEST_F(ControlThreadTest, CliPauseResumeSucceedSilently) {
        testing::internal::CaptureStdout();
        int p = Cli({ "pause", path });
        int r = Cli({ "resume", "--timeout=2", path });
        std::string out = testing::internal::GetCapturedStdout();

        EXPECT_EQ(p, CONTROL_CLIENT_EXIT_SUCCESS);
        EXPECT_EQ(r, CONTROL_CLIENT_EXIT_SUCCESS);
        EXPECT_EQ(out, "");
        EXPECT_EQ(vm.pause_calls, 1);
        EXPECT_EQ(vm.resume_calls, 1);
}

TEST_F(ControlThreadTest, CliRefusedRequestExitsOneWithOneClearLine) {
        vm.pause_result = -EPERM;

        testing::internal::CaptureStderr();
        int r = Cli({ "pause", path });
        std::string err = testing::internal::GetCapturedStderr();

        EXPECT_EQ(r, CONTROL_CLIENT_EXIT_FAILED);
        EXPECT_EQ(err, "majordome-vmm: pause: VM is not running (Operation not permitted)\n");
}

TEST_F(ControlThreadTest, CliStopWaitReturnsOnceTheVmmHasExited) {
        int r = Cli({ "stop", "--wait", path });

        EXPECT_EQ(r, CONTROL_CLIENT_EXIT_SUCCESS);
        EXPECT_EQ(vm.stop_calls, 1);
        loop.join();
}

TEST_F(ControlThreadTest, CliUsageErrorsExitTwo) {
        testing::internal::CaptureStderr();
        EXPECT_EQ(Cli({ "info" }), CONTROL_CLIENT_EXIT_USAGE);
        EXPECT_EQ(Cli({ "info", path, "extra" }), CONTROL_CLIENT_EXIT_USAGE);
        EXPECT_EQ(Cli({ "pause", "--json", path }), CONTROL_CLIENT_EXIT_USAGE);
        EXPECT_EQ(Cli({ "info", "--wait", path }), CONTROL_CLIENT_EXIT_USAGE);
        EXPECT_EQ(Cli({ "info", "--timeout=0", path }), CONTROL_CLIENT_EXIT_USAGE);
        EXPECT_EQ(Cli({ "info", "--bogus", path }), CONTROL_CLIENT_EXIT_USAGE);
        EXPECT_EQ(Cli({ "reboot", path }), CONTROL_CLIENT_EXIT_USAGE);
        testing::internal::GetCapturedStderr();

        EXPECT_EQ(vm.info_calls + vm.pause_calls, 0);
}

TEST(ControlClient, CannotConnectExitsThree) {
        std::string args[] = { "info", "/nonexistent/majordome/control" };
        char *argv[] = { args[0].data(), args[1].data(), nullptr };

        testing::internal::CaptureStderr();
        int r = control_client_main(2, argv);
        std::string err = testing::internal::GetCapturedStderr();

        EXPECT_EQ(r, CONTROL_CLIENT_EXIT_CONNECT);
        EXPECT_EQ(err, "majordome-vmm: info: cannot connect to /nonexistent/majordome/control "
                       "(No such file or directory)\n");
}

TEST(ControlClient, KnowsItsVerbs) {
        EXPECT_TRUE(control_client_is_verb("info"));
        EXPECT_TRUE(control_client_is_verb("stop"));
        EXPECT_FALSE(control_client_is_verb("run"));
        EXPECT_FALSE(control_client_is_verb(nullptr));
}

} // namespace

/* ---- access: file mode, peer uid, idle clients (defect 10) ------------- */

TEST_F(ControlSocketDirTest, ListenMakesTheSocket0600WhateverTheUmask) {
        int fd = -1;
        struct stat st;
        mode_t old = umask(0);

        ASSERT_EQ(control_listen(path.c_str(), &fd), 0);
        umask(old);
        ASSERT_EQ(lstat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        close(fd);
}

TEST_F(ControlSocketDirTest, ClientOfAnotherUidIsRefusedWithEacces) {
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to connect as uid 65534";
        int lfd;
        ASSERT_EQ(control_listen(path.c_str(), &lfd), 0);
        ControlServer *s = nullptr;
        ASSERT_EQ(control_server_new(event, lfd, &fake_ops, &vm, &s), 0);
        /* The file would let it in: the peer check alone must refuse it. */
        ASSERT_EQ(chmod(dir, 0755), 0);
        ASSERT_EQ(chmod(path.c_str(), 0666), 0);

        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
                int fd;
                ControlReply reply;
                if (setgroups(0, nullptr) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(2);
                if (control_connect(path.c_str(), &fd) < 0)
                        _exit(3);
                int r = control_call(fd, CONTROL_TYPE_INFO, 1, nullptr, 0, nullptr, 0, 5000, &reply);
                /* The refusal is a type-0 message, not the reply to id 1. */
                _exit(r == -EACCES || (r >= 0 && reply.status == -EACCES) || r == -EBADMSG || r == -ECONNRESET ||
                      r == -EPIPE ? 0 : 1);
        }
        int status = 0;
        for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
                event_loop_run(event, 10);
        ASSERT_TRUE(WIFEXITED(status)) << status;
        EXPECT_EQ(WEXITSTATUS(status), 0) << "uid 65534 was served";
        EXPECT_EQ(control_server_n_connections(s), 0u);

        int again;
        ASSERT_EQ(control_connect(path.c_str(), &again), 0);
        ExpectInfoWorksOn(again);
        close(again);
        control_server_free(s);
}

TEST_F(ControlSocketDirTest, IdleClientsAreDroppedButAHandedOverConnectionIsNot) {
        int lfd, sv[2];
        ASSERT_EQ(control_listen(path.c_str(), &lfd), 0);
        ControlServer *s = nullptr;
        ASSERT_EQ(control_server_new(event, lfd, &fake_ops, &vm, &s), 0);
        control_server_set_idle_timeout(s, 100);
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(control_server_add_connection(s, sv[1]), 0);

        /* As many idle clients as the limit: the handed-over one is extra. */
        std::vector<int> clients;
        for (unsigned i = 0; i < CONTROL_CONNECTIONS_MAX; i++) {
                int c;
                ASSERT_EQ(control_connect(path.c_str(), &c), 0);
                clients.push_back(c);
                for (int k = 0; k < 100 && control_server_n_connections(s) < i + 2; k++)
                        event_loop_run(event, 10);
        }
        ASSERT_EQ(control_server_n_connections(s), (unsigned) CONTROL_CONNECTIONS_MAX + 1);
        ExpectInfoWorksOn(sv[0]);

        for (int k = 0; k < 500 && control_server_n_connections(s) > 1; k++)
                event_loop_run(event, 10);
        EXPECT_EQ(control_server_n_connections(s), 1u) << "idle clients kept";
        for (int c : clients) {
                char b;
                EXPECT_EQ(recv(c, &b, 1, MSG_DONTWAIT), 0) << "not hung up on";
                close(c);
        }
        ExpectInfoWorksOn(sv[0]);
        close(sv[0]);
        control_server_free(s);
}
