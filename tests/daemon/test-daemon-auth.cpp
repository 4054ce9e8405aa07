/* SPDX-License-Identifier: BSD-3-Clause */
/* daemon/auth.c's file-system side: opening and connecting with a caller's
 * ids. The ids are switched only as root (the daemon's case); as anyone
 * else those tests skip. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/auth.h"

namespace {

constexpr uid_t kNobody = 65534;

struct AuthFixture : ::testing::Test {
        char dir[64] = "/tmp/majordomed-auth-XXXXXX";
        std::string sock;
        int listener = -1;

        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                ASSERT_EQ(chmod(dir, 0755), 0);
                sock = std::string(dir) + "/wayland-0";
                listener = listen_at(sock);
                ASSERT_GE(listener, 0);
        }
        void TearDown() override {
                if (listener >= 0)
                        close(listener);
                unlink(sock.c_str());
                std::string sub = std::string(dir) + "/private";
                unlink((sub + "/wayland-1").c_str());
                rmdir(sub.c_str());
                rmdir(dir);
        }
        static int listen_at(const std::string &path) {
                struct sockaddr_un sa = {};
                sa.sun_family = AF_UNIX;
                strcpy(sa.sun_path, path.c_str());
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                        return -1;
                return fd;
        }
        static AuthCaller self() {
                AuthCaller c = {};
                return c;
        }
        static AuthCaller nobody() {
                AuthCaller c = {};
                c.switch_ids = true;
                c.uid = kNobody;
                c.gid = kNobody;
                return c;
        }
        /* Whether a connection waits on the listener (taken and closed). */
        bool accepted_one() {
                int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0)
                        return false;
                close(c);
                return true;
        }
};

TEST_F(AuthFixture, ConnectHandleReachesTheSocketThroughProcAndClosesTheTestConnection) {
        AuthCaller c = self();
        int h = auth_caller_open(&c, sock.c_str(), O_PATH | O_CLOEXEC | O_NOCTTY, 0);
        ASSERT_GE(h, 0) << strerror(-h);
        ASSERT_EQ(fcntl(listener, F_SETFL, O_NONBLOCK), 0);

        EXPECT_EQ(auth_caller_connect_handle(&c, h), 0);

        EXPECT_TRUE(accepted_one()) << "the listener saw no connection";
        EXPECT_FALSE(accepted_one()) << "more than one connection";
        close(h);
}

TEST_F(AuthFixture, ConnectHandleFollowsTheInodeNotThePath) {
        AuthCaller c = self();
        int h = auth_caller_open(&c, sock.c_str(), O_PATH | O_CLOEXEC | O_NOCTTY, 0);
        ASSERT_GE(h, 0);
        /* Renamed away: the handle still names the listener's socket. */
        std::string moved = std::string(dir) + "/moved";
        ASSERT_EQ(rename(sock.c_str(), moved.c_str()), 0);
        EXPECT_EQ(auth_caller_connect_handle(&c, h), 0);
        rename(moved.c_str(), sock.c_str());
        close(h);
}

TEST_F(AuthFixture, ConnectHandleToASocketNobodyListensOnIsConnectionRefused) {
        AuthCaller c = self();
        int h = auth_caller_open(&c, sock.c_str(), O_PATH | O_CLOEXEC | O_NOCTTY, 0);
        ASSERT_GE(h, 0);
        close(listener);
        listener = -1;
        EXPECT_EQ(auth_caller_connect_handle(&c, h), -ECONNREFUSED);
        close(h);
        EXPECT_EQ(auth_caller_connect_handle(&c, -1), -EBADF);
}

TEST_F(AuthFixture, ConnectHandleChecksWritePermissionOnTheSocketAsTheCaller) {
        if (geteuid() != 0)
                GTEST_SKIP() << "switching to a caller's ids needs root";
        AuthCaller c = nobody();
        ASSERT_EQ(chmod(sock.c_str(), 0755), 0);
        int h = auth_caller_open(&c, sock.c_str(), O_PATH | O_CLOEXEC | O_NOCTTY, 0);
        ASSERT_GE(h, 0) << "the directory is searchable: " << strerror(-h);

        EXPECT_EQ(auth_caller_connect_handle(&c, h), -EACCES) << "root's 0755 socket, nobody connecting";

        ASSERT_EQ(chmod(sock.c_str(), 0777), 0);
        EXPECT_EQ(auth_caller_connect_handle(&c, h), 0);
        close(h);
}

TEST_F(AuthFixture, OpenPathAsTheCallerNeedsSearchPermissionOnTheWay) {
        if (geteuid() != 0)
                GTEST_SKIP() << "switching to a caller's ids needs root";
        std::string sub = std::string(dir) + "/private";
        ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
        int l = listen_at(sub + "/wayland-1");
        ASSERT_GE(l, 0);
        ASSERT_EQ(chmod((sub + "/wayland-1").c_str(), 0777), 0);
        AuthCaller c = nobody();

        EXPECT_EQ(auth_caller_open(&c, (sub + "/wayland-1").c_str(), O_PATH | O_CLOEXEC | O_NOCTTY, 0), -EACCES);

        AuthCaller r = self();
        int h = auth_caller_open(&r, (sub + "/wayland-1").c_str(), O_PATH | O_CLOEXEC | O_NOCTTY, 0);
        ASSERT_GE(h, 0) << "root may";
        close(h);
        close(l);
}

} // namespace
