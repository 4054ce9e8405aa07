/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user codec (common/vhost-user.c) over a real AF_UNIX
 * SOCK_STREAM socketpair: what vhost_user_recv() accepts and refuses, that
 * it never leaves a descriptor open when it refuses, and the per-request
 * size and descriptor checks. */
#include <gtest/gtest.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/vhost-user.h"

namespace {

/* ---- helpers ------------------------------------------------------------ */

struct SocketPair {
        int front = -1; /* the side that sends in a test */
        int back = -1;  /* the side vhost_user_recv() reads */

        SocketPair() {
                int sv[2];

                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
                        front = sv[0];
                        back = sv[1];
                }
        }
        ~SocketPair() {
                CloseFront();
                if (back >= 0)
                        close(back);
        }
        void CloseFront() {
                if (front >= 0)
                        close(front);
                front = -1;
        }
};

size_t CountOpenFds() {
        DIR *d = opendir("/proc/self/fd");
        size_t n = 0;

        if (!d)
                return SIZE_MAX;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

bool FdIsOpen(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

void PutLe32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

void PutLe64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

std::vector<uint8_t> Header(uint32_t request, uint32_t flags, uint32_t size) {
        std::vector<uint8_t> h(VHOST_USER_HEADER_SIZE);

        PutLe32(h.data(), request);
        PutLe32(h.data() + 4, flags);
        PutLe32(h.data() + 8, size);
        return h;
}

/* One sendmsg of `len` bytes with `n_fds` descriptors, bypassing the codec. */
ssize_t RawSend(int fd, const void *data, size_t len, const int *fds = nullptr, size_t n_fds = 0) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 16)];
        } control;
        struct iovec iov = { const_cast<void *>(data), len };
        struct msghdr mh = {};

        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (n_fds > 0) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

VhostUserMsg Msg(uint32_t request, uint32_t size, uint32_t flags = VHOST_USER_VERSION) {
        VhostUserMsg m;

        memset(&m, 0, sizeof(m));
        m.request = request;
        m.flags = flags;
        m.size = size;
        return m;
}

VhostUserMsg VringFdMsg(uint32_t request, uint64_t value) {
        VhostUserMsg m = Msg(request, 8);

        PutLe64(m.payload, value);
        return m;
}

VhostUserMsg MemTable(uint32_t count, uint32_t size) {
        VhostUserMsg m = Msg(VHOST_USER_SET_MEM_TABLE, size);

        PutLe32(m.payload, count);
        return m;
}

VhostUserMsg Config(uint32_t request, uint32_t offset, uint32_t config_size, uint32_t size) {
        VhostUserMsg m = Msg(request, size);

        PutLe32(m.payload, offset);
        PutLe32(m.payload + 4, config_size);
        return m;
}

/* ---- vhost_user_send / vhost_user_recv ---------------------------------- */

TEST(VhostUserRecv, RoundTripCarriesPayloadAndTwoEventfds) {
        SocketPair sp;
        ASSERT_GE(sp.front, 0);
        int efd[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
        ASSERT_GE(efd[0], 0);
        ASSERT_GE(efd[1], 0);
        uint8_t payload[8];
        PutLe64(payload, 0x0102030405060708ull);

        ASSERT_EQ(vhost_user_send(sp.front, VHOST_USER_SET_VRING_CALL, VHOST_USER_FLAG_NEED_REPLY, payload,
                                  sizeof(payload), efd, 2),
                  0);
        VhostUserMsg m;
        int got[VHOST_USER_FDS_MAX];
        size_t n_got = 99;
        ASSERT_EQ(vhost_user_recv(sp.back, 1000, &m, got, VHOST_USER_FDS_MAX, &n_got), 0);

        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_SET_VRING_CALL);
        EXPECT_EQ(m.flags, VHOST_USER_VERSION | VHOST_USER_FLAG_NEED_REPLY);
        ASSERT_EQ(m.size, sizeof(payload));
        EXPECT_EQ(memcmp(m.payload, payload, sizeof(payload)), 0);
        ASSERT_EQ(n_got, 2u);
        for (int i = 0; i < 2; i++) {
                EXPECT_NE(got[i], efd[0]);
                EXPECT_NE(got[i], efd[1]);
                ASSERT_TRUE(FdIsOpen(got[i]));
                EXPECT_TRUE(fcntl(got[i], F_GETFD) & FD_CLOEXEC);
        }
        /* The received descriptors are the same eventfds, in order. */
        uint64_t v = 5, r = 0;
        ASSERT_EQ(write(efd[0], &v, sizeof(v)), (ssize_t) sizeof(v));
        ASSERT_EQ(read(got[0], &r, sizeof(r)), (ssize_t) sizeof(r));
        EXPECT_EQ(r, 5u);
        v = 7;
        ASSERT_EQ(write(got[1], &v, sizeof(v)), (ssize_t) sizeof(v));
        ASSERT_EQ(read(efd[1], &r, sizeof(r)), (ssize_t) sizeof(r));
        EXPECT_EQ(r, 7u);
        for (int i = 0; i < 2; i++) {
                close(got[i]);
                close(efd[i]);
        }
}

TEST(VhostUserRecv, EmptyPayloadWithoutFdsRoundTrips) {
        SocketPair sp;
        ASSERT_EQ(vhost_user_send(sp.front, VHOST_USER_GET_FEATURES, 0, nullptr, 0, nullptr, 0), 0);
        VhostUserMsg m;
        int got[2];
        size_t n_got = 99;

        ASSERT_EQ(vhost_user_recv(sp.back, 1000, &m, got, 2, &n_got), 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_GET_FEATURES);
        EXPECT_EQ(m.size, 0u);
        EXPECT_EQ(n_got, 0u);
}

TEST(VhostUserSend, PayloadOverMaxIsRefused) {
        SocketPair sp;
        std::vector<uint8_t> big(VHOST_USER_PAYLOAD_MAX + 1);

        EXPECT_EQ(vhost_user_send(sp.front, VHOST_USER_SET_CONFIG, 0, big.data(), big.size(), nullptr, 0), -EMSGSIZE);
}

TEST(VhostUserSend, PeerGoneIsEpipe) {
        SocketPair sp;
        close(sp.back);
        sp.back = -1;

        EXPECT_EQ(vhost_user_send(sp.front, VHOST_USER_GET_FEATURES, 0, nullptr, 0, nullptr, 0), -EPIPE);
}

/* GET_CONFIG's reply and SET_CONFIG for a whole 256-byte config space are
 * 12 + 256 bytes: the largest message the protocol here has. */
TEST(VhostUserRecv, WholeConfigSpaceFitsAMessage) {
        SocketPair sp;
        std::vector<uint8_t> p(VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX, 0xab);
        PutLe32(p.data(), 0);
        PutLe32(p.data() + 4, VHOST_USER_CONFIG_MAX);
        PutLe32(p.data() + 8, 0);

        ASSERT_EQ(vhost_user_send(sp.front, VHOST_USER_GET_CONFIG, VHOST_USER_FLAG_REPLY, p.data(), p.size(), nullptr,
                                  0),
                  0);
        VhostUserMsg m;
        size_t n_got;
        ASSERT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), 0);
        ASSERT_EQ(m.size, p.size());
        EXPECT_EQ(memcmp(m.payload, p.data(), p.size()), 0);
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &m, VHOST_USER_CONFIG_MAX), 0);
}

TEST(VhostUserRecv, SizeOverPayloadMaxIsBadMessage) {
        SocketPair sp;
        auto h = Header(VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, VHOST_USER_PAYLOAD_MAX + 1);
        ASSERT_EQ(RawSend(sp.front, h.data(), h.size()), (ssize_t) h.size());
        VhostUserMsg m;
        size_t n_got = 99;

        EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), -EBADMSG);
        EXPECT_EQ(n_got, 0u);
}

TEST(VhostUserRecv, VersionOtherThanOneIsBadMessage) {
        for (uint32_t version : { 0u, 2u, 3u }) {
                SocketPair sp;
                auto h = Header(VHOST_USER_GET_FEATURES, version, 0);
                ASSERT_EQ(RawSend(sp.front, h.data(), h.size()), (ssize_t) h.size());
                VhostUserMsg m;
                size_t n_got;

                EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), -EBADMSG) << "version " << version;
        }
}

TEST(VhostUserRecv, PeerClosingMidPayloadIsConnResetAndClosesFds) {
        SocketPair sp;
        int efd = eventfd(0, EFD_CLOEXEC);
        ASSERT_GE(efd, 0);
        auto h = Header(VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, VHOST_USER_VRING_ADDR_SIZE);
        h.insert(h.end(), 10, 0x55); /* 10 of the 40 payload bytes */
        ASSERT_EQ(RawSend(sp.front, h.data(), h.size(), &efd, 1), (ssize_t) h.size());
        sp.CloseFront();
        close(efd);
        size_t before = CountOpenFds();
        VhostUserMsg m;
        int got[2];
        size_t n_got = 99;

        EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, got, 2, &n_got), -ECONNRESET);
        EXPECT_EQ(n_got, 0u);
        EXPECT_EQ(CountOpenFds(), before);
}

TEST(VhostUserRecv, PeerClosingMidHeaderIsConnReset) {
        SocketPair sp;
        auto h = Header(VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0);
        ASSERT_EQ(RawSend(sp.front, h.data(), 5), 5);
        sp.CloseFront();
        VhostUserMsg m;
        size_t n_got;

        EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), -ECONNRESET);
}

TEST(VhostUserRecv, PeerClosingBeforeAnythingIsConnReset) {
        SocketPair sp;
        sp.CloseFront();
        VhostUserMsg m;
        size_t n_got;

        EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), -ECONNRESET);
        EXPECT_EQ(vhost_user_recv(sp.back, -1, &m, nullptr, 0, &n_got), -ECONNRESET);
}

TEST(VhostUserRecv, NoDataWithinTimeoutIsTimedOut) {
        SocketPair sp;
        VhostUserMsg m;
        size_t n_got = 99;

        EXPECT_EQ(vhost_user_recv(sp.back, 50, &m, nullptr, 0, &n_got), -ETIMEDOUT);
        EXPECT_EQ(n_got, 0u);
        EXPECT_EQ(vhost_user_recv(sp.back, 0, &m, nullptr, 0, &n_got), -ETIMEDOUT);
}

/* A timeout of 0 polls: a message already queued is taken, not refused. */
TEST(VhostUserRecv, ZeroTimeoutTakesAQueuedMessage) {
        SocketPair sp;
        uint8_t payload[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        ASSERT_EQ(vhost_user_send(sp.front, VHOST_USER_SET_FEATURES, 0, payload, sizeof(payload), nullptr, 0), 0);
        VhostUserMsg m;
        size_t n_got;

        ASSERT_EQ(vhost_user_recv(sp.back, 0, &m, nullptr, 0, &n_got), 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_SET_FEATURES);
        EXPECT_EQ(memcmp(m.payload, payload, sizeof(payload)), 0);
}

TEST(VhostUserRecv, MoreFdsThanMaxIsBadMessageAndClosesThemAll) {
        SocketPair sp;
        int efd[3];
        for (int &fd : efd) {
                fd = eventfd(0, EFD_CLOEXEC);
                ASSERT_GE(fd, 0);
        }
        uint8_t payload[8] = {};
        auto h = Header(VHOST_USER_SET_VRING_KICK, VHOST_USER_VERSION, sizeof(payload));
        h.insert(h.end(), payload, payload + sizeof(payload));
        ASSERT_EQ(RawSend(sp.front, h.data(), h.size(), efd, 3), (ssize_t) h.size());
        size_t before = CountOpenFds();
        VhostUserMsg m;
        int got[2] = { -1, -1 };
        size_t n_got = 99;

        EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, got, 2, &n_got), -EBADMSG);
        EXPECT_EQ(n_got, 0u);
        EXPECT_EQ(CountOpenFds(), before);
        for (int fd : efd)
                close(fd);
}

TEST(VhostUserRecv, FdsWithAPayloadByteAreBadMessageAndClosed) {
        SocketPair sp;
        int efd = eventfd(0, EFD_CLOEXEC);
        ASSERT_GE(efd, 0);
        uint8_t payload[8] = {};
        auto h = Header(VHOST_USER_SET_VRING_CALL, VHOST_USER_VERSION, sizeof(payload));
        ASSERT_EQ(RawSend(sp.front, h.data(), h.size()), (ssize_t) h.size());
        ASSERT_EQ(RawSend(sp.front, payload, sizeof(payload), &efd, 1), (ssize_t) sizeof(payload));
        close(efd);
        size_t before = CountOpenFds();
        VhostUserMsg m;
        int got[2] = { -1, -1 };
        size_t n_got = 99;

        EXPECT_EQ(vhost_user_recv(sp.back, 1000, &m, got, 2, &n_got), -EBADMSG);
        EXPECT_EQ(n_got, 0u);
        EXPECT_EQ(CountOpenFds(), before);
}

TEST(VhostUserRecv, PayloadSplitOverSeveralWritesArrivesWhole) {
        SocketPair sp;
        std::vector<uint8_t> payload(VHOST_USER_VRING_ADDR_SIZE);
        for (size_t i = 0; i < payload.size(); i++)
                payload[i] = (uint8_t) (i * 7 + 1);
        auto h = Header(VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, payload.size());
        std::vector<uint8_t> all = h;
        all.insert(all.end(), payload.begin(), payload.end());
        /* Pieces that cut the header and the payload, each its own write,
         * a little apart so the receiver sees them one at a time. */
        std::thread writer([&] {
                const size_t cuts[] = { 0, 5, 12, 13, 30, all.size() };
                for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++) {
                        (void) RawSend(sp.front, all.data() + cuts[i], cuts[i + 1] - cuts[i]);
                        usleep(5000);
                }
        });
        VhostUserMsg m;
        size_t n_got;
        int r = vhost_user_recv(sp.back, 5000, &m, nullptr, 0, &n_got);
        writer.join();

        ASSERT_EQ(r, 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_SET_VRING_ADDR);
        ASSERT_EQ(m.size, payload.size());
        EXPECT_EQ(memcmp(m.payload, payload.data(), payload.size()), 0);
        EXPECT_EQ(vhost_user_check_request(&m, n_got), 0);
}

TEST(VhostUserRecv, TwoMessagesBackToBackAreTakenOneAtATime) {
        SocketPair sp;
        uint8_t a[8] = { 1 }, b[8] = { 2 };
        ASSERT_EQ(vhost_user_send(sp.front, VHOST_USER_SET_FEATURES, 0, a, 8, nullptr, 0), 0);
        ASSERT_EQ(vhost_user_send(sp.front, VHOST_USER_SET_PROTOCOL_FEATURES, 0, b, 8, nullptr, 0), 0);
        VhostUserMsg m;
        size_t n_got;

        ASSERT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_SET_FEATURES);
        EXPECT_EQ(m.payload[0], 1);
        ASSERT_EQ(vhost_user_recv(sp.back, 1000, &m, nullptr, 0, &n_got), 0);
        EXPECT_EQ(m.request, (uint32_t) VHOST_USER_SET_PROTOCOL_FEATURES);
        EXPECT_EQ(m.payload[0], 2);
}

/* ---- vhost_user_check_reply --------------------------------------------- */

TEST(VhostUserCheckReply, MissingReplyFlagIsBad) {
        VhostUserMsg r = Msg(VHOST_USER_GET_FEATURES, 8);

        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_FEATURES, &r, 0), -EBADMSG);
}

TEST(VhostUserCheckReply, ReplyToAnotherRequestIsBad) {
        VhostUserMsg r = Msg(VHOST_USER_GET_PROTOCOL_FEATURES, 8, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);

        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_FEATURES, &r, 0), -EBADMSG);
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_PROTOCOL_FEATURES, &r, 0), 0);
}

TEST(VhostUserCheckReply, U64RepliesNeedExactlyEightBytes) {
        for (uint32_t req : { VHOST_USER_GET_FEATURES, VHOST_USER_GET_PROTOCOL_FEATURES, VHOST_USER_GET_QUEUE_NUM,
                              VHOST_USER_GET_MAX_MEM_SLOTS, VHOST_USER_GET_STATUS, VHOST_USER_SET_MEM_TABLE }) {
                for (uint32_t size : { 0u, 4u, 7u, 9u, 16u }) {
                        VhostUserMsg r = Msg(req, size, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);
                        EXPECT_EQ(vhost_user_check_reply(req, &r, 0), -EBADMSG) << req << " size " << size;
                }
                VhostUserMsg r = Msg(req, 8, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);
                EXPECT_EQ(vhost_user_check_reply(req, &r, 0), 0) << req;
        }
}

TEST(VhostUserCheckReply, GetVringBaseNeedsAVringState) {
        VhostUserMsg r = Msg(VHOST_USER_GET_VRING_BASE, 8, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_VRING_BASE, &r, 0), 0);

        r.size = 4;
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_VRING_BASE, &r, 0), -EBADMSG);
        r.size = 12;
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_VRING_BASE, &r, 0), -EBADMSG);
}

TEST(VhostUserCheckReply, GetConfigNeedsHeaderPlusAskedSize) {
        VhostUserMsg r = Msg(VHOST_USER_GET_CONFIG, VHOST_USER_CONFIG_HEADER_SIZE + 16,
                             VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);

        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, 16), 0);
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, 15), -EBADMSG);
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, 17), -EBADMSG);
        r.size = VHOST_USER_CONFIG_HEADER_SIZE;
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, 0), 0);
        r.size = 8;
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, 16), -EBADMSG);
}

TEST(VhostUserCheckReply, ConfigSizeOverMaxIsRefused) {
        VhostUserMsg r = Msg(VHOST_USER_GET_CONFIG, VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX + 1,
                             VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);

        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, VHOST_USER_CONFIG_MAX + 1), -EBADMSG);
        r.size = VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX;
        EXPECT_EQ(vhost_user_check_reply(VHOST_USER_GET_CONFIG, &r, VHOST_USER_CONFIG_MAX), 0);
}

/* ---- vhost_user_check_request ------------------------------------------- */

TEST(VhostUserCheckRequest, NoPayloadRequestsTakeNothingOrAU64AndNoFds) {
        for (uint32_t req : { VHOST_USER_GET_FEATURES, VHOST_USER_GET_PROTOCOL_FEATURES, VHOST_USER_GET_QUEUE_NUM,
                              VHOST_USER_GET_MAX_MEM_SLOTS, VHOST_USER_GET_STATUS, VHOST_USER_SET_OWNER,
                              VHOST_USER_RESET_OWNER, VHOST_USER_RESET_DEVICE }) {
                VhostUserMsg m = Msg(req, 0);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                m.size = 8;
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG) << req;
                m.size = 4;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m.size = 16;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
        }
}

TEST(VhostUserCheckRequest, U64SettersNeedEightBytesAndNoFds) {
        for (uint32_t req : { VHOST_USER_SET_FEATURES, VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_SET_STATUS }) {
                VhostUserMsg m = Msg(req, 8);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG) << req;
                m.size = 0;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m.size = 12;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
        }
}

TEST(VhostUserCheckRequest, VringStateRequestsNeedAVringStateAndNoFds) {
        for (uint32_t req : { VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE, VHOST_USER_GET_VRING_BASE,
                              VHOST_USER_SET_VRING_ENABLE }) {
                VhostUserMsg m = Msg(req, VHOST_USER_VRING_STATE_SIZE);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG) << req;
                m.size = 4;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m.size = 0;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
        }
}

TEST(VhostUserCheckRequest, SetVringAddrNeedsFortyBytesAndNoFds) {
        VhostUserMsg m = Msg(VHOST_USER_SET_VRING_ADDR, VHOST_USER_VRING_ADDR_SIZE);

        EXPECT_EQ(vhost_user_check_request(&m, 0), 0);
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
        m.size = 39;
        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
        m.size = 41;
        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
}

TEST(VhostUserCheckRequest, SetBackendReqFdNeedsOneFd) {
        VhostUserMsg m = Msg(VHOST_USER_SET_BACKEND_REQ_FD, 8);

        EXPECT_EQ(vhost_user_check_request(&m, 1), 0);
        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
        EXPECT_EQ(vhost_user_check_request(&m, 2), -EBADMSG);
        m.size = 0;
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
}

TEST(VhostUserCheckRequest, SetMemTableNeedsOneToEightRegionsEachWithAnFd) {
        VhostUserMsg m = MemTable(1, 8 + VHOST_USER_MEM_REGION_SIZE);
        EXPECT_EQ(vhost_user_check_request(&m, 1), 0);

        m = MemTable(VHOST_USER_MEM_REGIONS_MAX, 8 + VHOST_USER_MEM_REGIONS_MAX * VHOST_USER_MEM_REGION_SIZE);
        EXPECT_EQ(vhost_user_check_request(&m, VHOST_USER_MEM_REGIONS_MAX), 0);
}

TEST(VhostUserCheckRequest, SetMemTableWithNoRegionsIsBad) {
        VhostUserMsg m = MemTable(0, 8);

        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
}

TEST(VhostUserCheckRequest, SetMemTableWithNineRegionsIsBad) {
        VhostUserMsg m = MemTable(9, VHOST_USER_PAYLOAD_MAX);

        EXPECT_EQ(vhost_user_check_request(&m, 8), -EBADMSG);
        m.size = 8 + 8 * VHOST_USER_MEM_REGION_SIZE;
        EXPECT_EQ(vhost_user_check_request(&m, 8), -EBADMSG);
}

TEST(VhostUserCheckRequest, SetMemTableCountNotMatchingSizeIsBad) {
        VhostUserMsg m = MemTable(2, 8 + VHOST_USER_MEM_REGION_SIZE);
        EXPECT_EQ(vhost_user_check_request(&m, 2), -EBADMSG);

        m = MemTable(1, 8 + 2 * VHOST_USER_MEM_REGION_SIZE);
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
        m = MemTable(1, 4);
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
}

TEST(VhostUserCheckRequest, SetMemTableFdCountNotMatchingRegionsIsBad) {
        VhostUserMsg m = MemTable(2, 8 + 2 * VHOST_USER_MEM_REGION_SIZE);

        EXPECT_EQ(vhost_user_check_request(&m, 2), 0);
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
        EXPECT_EQ(vhost_user_check_request(&m, 3), -EBADMSG);
        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
}

TEST(VhostUserCheckRequest, VringFdRequestsTakeAnFdUnlessNofd) {
        for (uint32_t req : { VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_CALL, VHOST_USER_SET_VRING_ERR }) {
                VhostUserMsg m = VringFdMsg(req, 0);
                EXPECT_EQ(vhost_user_check_request(&m, 1), 0) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 2), -EBADMSG) << req;
                m = VringFdMsg(req, 0xff);
                EXPECT_EQ(vhost_user_check_request(&m, 1), 0) << req;
                m = VringFdMsg(req, 3 | VHOST_USER_VRING_NOFD);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG) << req;
        }
}

TEST(VhostUserCheckRequest, VringFdRequestsRefuseIndexBitsAbove0x1ff) {
        for (uint64_t v : { 0x200ull, 0x201ull, 0x400ull, 1ull << 32, 1ull << 63 }) {
                VhostUserMsg m = VringFdMsg(VHOST_USER_SET_VRING_KICK, v);
                EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG) << v;
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << v;
        }
        VhostUserMsg m = VringFdMsg(VHOST_USER_SET_VRING_KICK, 0x1ff);
        EXPECT_EQ(vhost_user_check_request(&m, 0), 0);
}

TEST(VhostUserCheckRequest, VringFdRequestsNeedEightBytes) {
        VhostUserMsg m = VringFdMsg(VHOST_USER_SET_VRING_KICK, 0);

        m.size = 4;
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
        m.size = 0;
        EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG);
}

TEST(VhostUserCheckRequest, ConfigRequestsStayInsideTheConfigSpace) {
        for (uint32_t req : { VHOST_USER_GET_CONFIG, VHOST_USER_SET_CONFIG }) {
                VhostUserMsg m = Config(req, 0, 16, VHOST_USER_CONFIG_HEADER_SIZE + 16);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                EXPECT_EQ(vhost_user_check_request(&m, 1), -EBADMSG) << req;

                m = Config(req, 0, VHOST_USER_CONFIG_MAX, VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;
                m = Config(req, 240, 16, VHOST_USER_CONFIG_HEADER_SIZE + 16);
                EXPECT_EQ(vhost_user_check_request(&m, 0), 0) << req;

                /* offset + size > 256 */
                m = Config(req, 241, 16, VHOST_USER_CONFIG_HEADER_SIZE + 16);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m = Config(req, 1, VHOST_USER_CONFIG_MAX, VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m = Config(req, 0xfffffff0u, 16, VHOST_USER_CONFIG_HEADER_SIZE + 16);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m = Config(req, 0, VHOST_USER_CONFIG_MAX + 1, VHOST_USER_PAYLOAD_MAX);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                /* the header's size not matching the message */
                m = Config(req, 0, 16, VHOST_USER_CONFIG_HEADER_SIZE + 15);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
                m = Config(req, 0, 0, 8);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG) << req;
        }
}

TEST(VhostUserCheckRequest, UnknownRequestIsNotSupported) {
        for (uint32_t req : { 0u, 6u, 7u, 19u, 22u, 23u, 26u, 35u, 41u, 1000u, 0xffffffffu }) {
                VhostUserMsg m = Msg(req, 0);
                EXPECT_EQ(vhost_user_check_request(&m, 0), -EOPNOTSUPP) << req;
        }
}

TEST(VhostUserCheckRequest, ReplyFlagIsBad) {
        VhostUserMsg m = Msg(VHOST_USER_GET_FEATURES, 0, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);

        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
        m.request = 99;
        EXPECT_EQ(vhost_user_check_request(&m, 0), -EBADMSG);
}

/* ---- vhost_user_check_backend_request ----------------------------------- */

TEST(VhostUserCheckBackendRequest, ConfigChangeMsgIsAccepted) {
        VhostUserMsg m = Msg(VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0);

        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), 0);
        m.size = 8;
        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), 0);
        EXPECT_EQ(vhost_user_check_backend_request(&m, 1), -EBADMSG);
        m.size = 4;
        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), -EBADMSG);
}

TEST(VhostUserCheckBackendRequest, VringCallAndErrNeedEightBytes) {
        for (uint32_t req : { VHOST_USER_BACKEND_VRING_CALL, VHOST_USER_BACKEND_VRING_ERR }) {
                VhostUserMsg m = Msg(req, 8);
                EXPECT_EQ(vhost_user_check_backend_request(&m, 0), 0) << req;
                EXPECT_EQ(vhost_user_check_backend_request(&m, 1), -EBADMSG) << req;
                m.size = 0;
                EXPECT_EQ(vhost_user_check_backend_request(&m, 0), -EBADMSG) << req;
        }
}

TEST(VhostUserCheckBackendRequest, ShmemMapNeedsFortyBytesAndOneFd) {
        VhostUserMsg m = Msg(VHOST_USER_BACKEND_SHMEM_MAP, VHOST_USER_SHMEM_MAP_SIZE);

        EXPECT_EQ(vhost_user_check_backend_request(&m, 1), 0);
        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), -EBADMSG);
        EXPECT_EQ(vhost_user_check_backend_request(&m, 2), -EBADMSG);
        m.size = 39;
        EXPECT_EQ(vhost_user_check_backend_request(&m, 1), -EBADMSG);
        m.size = 48;
        EXPECT_EQ(vhost_user_check_backend_request(&m, 1), -EBADMSG);
}

TEST(VhostUserCheckBackendRequest, ShmemUnmapNeedsFortyBytesAndNoFd) {
        VhostUserMsg m = Msg(VHOST_USER_BACKEND_SHMEM_UNMAP, VHOST_USER_SHMEM_MAP_SIZE);

        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), 0);
        EXPECT_EQ(vhost_user_check_backend_request(&m, 1), -EBADMSG);
}

TEST(VhostUserCheckBackendRequest, StopVmIsEmptyWithoutFds) {
        VhostUserMsg m = Msg(VHOST_USER_BACKEND_STOP_VM, 0);

        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), 0);
        EXPECT_EQ(vhost_user_check_backend_request(&m, 1), -EBADMSG);
        m.size = 8;
        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), -EBADMSG);
}

TEST(VhostUserCheckBackendRequest, UnknownRequestIsNotSupported) {
        for (uint32_t req : { 0u, 1u, 3u, 6u, 999u, 1002u }) {
                VhostUserMsg m = Msg(req, 0);
                EXPECT_EQ(vhost_user_check_backend_request(&m, 0), -EOPNOTSUPP) << req;
        }
}

TEST(VhostUserCheckBackendRequest, ReplyFlagIsBad) {
        VhostUserMsg m = Msg(VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY);

        EXPECT_EQ(vhost_user_check_backend_request(&m, 0), -EBADMSG);
}

/* ---- names -------------------------------------------------------------- */

TEST(VhostUserRequestToString, NamesKnownRequestsOnly) {
        EXPECT_STREQ(vhost_user_request_to_string(VHOST_USER_SET_MEM_TABLE), "SET_MEM_TABLE");
        EXPECT_STREQ(vhost_user_request_to_string(VHOST_USER_GET_STATUS), "GET_STATUS");
        EXPECT_STREQ(vhost_user_request_to_string(0), "unknown");
        EXPECT_STREQ(vhost_user_request_to_string(6), "unknown");
        EXPECT_STREQ(vhost_user_request_to_string(0xffffffffu), "unknown");
}

} /* namespace */
