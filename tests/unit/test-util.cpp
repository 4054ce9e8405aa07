/* SPDX-License-Identifier: BSD-3-Clause */
#include <gtest/gtest.h>

#include <string>

#include <cerrno>
#include <cstdlib>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

TEST(ParseSize, AcceptsBinaryUnits) {
        uint64_t v;

        ASSERT_EQ(parse_size("512M", &v), 0);
        EXPECT_EQ(v, 512ULL << 20);
        ASSERT_EQ(parse_size("2G", &v), 0);
        EXPECT_EQ(v, 2ULL << 30);
        ASSERT_EQ(parse_size("64KiB", &v), 0);
        EXPECT_EQ(v, 64ULL << 10);
        ASSERT_EQ(parse_size("4096", &v), 0);
        EXPECT_EQ(v, 4096ULL);
        ASSERT_EQ(parse_size("1g", &v), 0);
        EXPECT_EQ(v, 1ULL << 30);
}

TEST(ParseSize, RejectsGarbageAndOverflow) {
        uint64_t v = 7;

        EXPECT_EQ(parse_size("", &v), -EINVAL);
        EXPECT_EQ(parse_size("-1M", &v), -EINVAL);
        EXPECT_EQ(parse_size("12X", &v), -EINVAL);
        EXPECT_EQ(parse_size("12Mx", &v), -EINVAL);
        EXPECT_EQ(parse_size("99999999999T", &v), -ERANGE);
        EXPECT_EQ(parse_size("99999999999999999999999", &v), -ERANGE);
        EXPECT_EQ(v, 7u) << "output untouched on failure";
}

TEST(ParseUint, EnforcesBounds) {
        uint64_t v;

        ASSERT_EQ(parse_uint("3", 1, 4, &v), 0);
        EXPECT_EQ(v, 3u);
        EXPECT_EQ(parse_uint("0", 1, 4, &v), -ERANGE);
        EXPECT_EQ(parse_uint("5", 1, 4, &v), -ERANGE);
        EXPECT_EQ(parse_uint("2a", 1, 4, &v), -EINVAL);
        EXPECT_EQ(parse_uint("", 1, 4, &v), -EINVAL);
}

TEST(ParseFdNumber, TakesZeroToInt32Max) {
        int fd = -1;

        EXPECT_EQ(parse_fd_number("3", &fd), 0);
        EXPECT_EQ(fd, 3);
        EXPECT_EQ(parse_fd_number("2147483647", &fd), 0);
        EXPECT_EQ(fd, 2147483647);
        fd = 7;
        for (const char *bad : { "", "-1", "x", "3x", "2147483648" })
                EXPECT_LT(parse_fd_number(bad, &fd), 0) << bad;
        EXPECT_EQ(fd, 7) << "untouched on failure";
}

TEST(FormatSize, PicksLargestExactUnit) {
        char buf[32];

        EXPECT_STREQ(format_size(buf, sizeof(buf), 256ULL << 20), "256 MiB");
        EXPECT_STREQ(format_size(buf, sizeof(buf), 1536), "1536 B");
        EXPECT_STREQ(format_size(buf, sizeof(buf), 3ULL << 30), "3 GiB");
}

namespace {

struct SocketDir {
        std::string path;
        SocketDir() {
                char t[] = "/tmp/majordome-util-XXXXXX";
                path = mkdtemp(t) ?: "";
        }
        ~SocketDir() {
                (void) !system(("rm -rf '" + path + "'").c_str());
        }
};

} // namespace

TEST(ListenPrivate, SocketFileIs0600UnderUmask000AndReplacesAStaleSocket) {
        SocketDir d;
        std::string path = d.path + "/s";
        int fd = -1, again = -1;
        struct stat st;

        mode_t old = umask(0);
        ASSERT_EQ(listen_private(path.c_str(), 4, &fd), 0);
        umask(old);
        ASSERT_EQ(lstat(path.c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 07777, 0600u);

        close(fd);
        EXPECT_EQ(listen_private(path.c_str(), 4, &again), 0) << "the earlier run's socket is replaced";
        close(again);
}

TEST(AcceptFirst, ReturnsTheFirstConnectionAndRemovesTheSocketFile) {
        SocketDir d;
        std::string path = d.path + "/s";
        int fd = -1, peer = -1;

        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
                int c = -1;
                /* Until it listens. */
                for (int i = 0; i < 500 && connect_unix(path.c_str(), SOCK_STREAM, &c) < 0; i++)
                        usleep(10000);
                _exit(c >= 0 && write(c, "x", 1) == 1 ? 0 : 1);
        }
        ASSERT_EQ(accept_first(path.c_str(), &fd), 0);
        char b = 0;
        EXPECT_EQ(read(fd, &b, 1), 1);
        EXPECT_EQ(b, 'x');
        EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed once taken";
        EXPECT_LT(connect_unix(path.c_str(), SOCK_STREAM, &peer), 0) << "nobody else gets in";
        close(fd);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        EXPECT_LT(accept_first((d.path + "/missing/s").c_str(), &fd), 0) << "a directory that is not there";
}

TEST(ListenPrivate, AnythingButASocketAtThePathIsKept) {
        SocketDir d;
        std::string path = d.path + "/f";
        int fd = -1;

        close(open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        EXPECT_EQ(listen_private(path.c_str(), 4, &fd), -EADDRINUSE);
        EXPECT_EQ(access(path.c_str(), F_OK), 0);
}

TEST(PeerUidIsAllowed, OwnerAndRootAreAllowedAnotherUidIsNot) {
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to connect as uid 65534";
        SocketDir d;
        std::string path = d.path + "/s";
        int l = -1;

        ASSERT_EQ(listen_private(path.c_str(), 4, &l), 0);
        ASSERT_EQ(chmod(d.path.c_str(), 0755), 0);
        ASSERT_EQ(chmod(path.c_str(), 0666), 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());

        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
                alarm(10); /* whatever happens to the test */
                int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (setgroups(0, nullptr) < 0 || setgid(65534) < 0 || setuid(65534) < 0 ||
                    connect(c, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        _exit(1);
                char ch;
                (void) !read(c, &ch, 1); /* until the test closes it */
                _exit(0);
        }
        struct pollfd p = { l, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, 10000), 1);
        int other = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
        ASSERT_GE(other, 0);
        EXPECT_FALSE(peer_uid_is_allowed(other, 0));
        EXPECT_TRUE(peer_uid_is_allowed(other, 65534)) << "the owner's own uid";
        close(other);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        int pair[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        EXPECT_TRUE(peer_uid_is_allowed(pair[0], 12345)) << "root always";
        EXPECT_FALSE(peer_uid_is_allowed(-1, 0)) << "no peer, no entry";
        close(pair[0]);
        close(pair[1]);
        close(l);
}

TEST(DeadlineRemainingMs, NoneIsMinusOnePastIsZeroAndTheRestRoundsUp) {
        EXPECT_EQ(deadline_remaining_ms(UINT64_MAX), -1);
        EXPECT_EQ(deadline_remaining_ms(0), 0);
        EXPECT_EQ(deadline_remaining_ms(now_ns() - 1), 0);
        int left = deadline_remaining_ms(now_ns() + 1500000);
        EXPECT_GE(left, 1);
        EXPECT_LE(left, 2);
}

TEST(ConnectUnix, ConnectsAndRefusesWhatCannotBeAPeer) {
        SocketDir d;
        std::string path = d.path + "/s";
        int listener = -1, fd = -1;

        EXPECT_EQ(connect_unix(path.c_str(), SOCK_STREAM, &fd), -ENOENT);
        ASSERT_EQ(listen_private(path.c_str(), 1, &listener), 0);
        ASSERT_EQ(connect_unix(path.c_str(), SOCK_STREAM, &fd), 0);
        EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        EXPECT_EQ(connect_unix(path.c_str(), SOCK_SEQPACKET, &fd), -EPROTOTYPE) << "another socket type";
        EXPECT_EQ(connect_unix(std::string(200, 'x').c_str(), SOCK_STREAM, &fd), -ENAMETOOLONG);
        EXPECT_EQ(connect_unix("", SOCK_STREAM, &fd), -EINVAL);
        close(fd);
        close(listener);
}
