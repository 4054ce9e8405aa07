/* SPDX-License-Identifier: BSD-3-Clause */
/* majordome-video as a process: its options, what it offers a vhost-user
 * front-end (features, queues, its configuration), and its jail seen from
 * outside. The binary's path: built in, or MAJORDOME_VIDEO. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "tests/virtio/harness.h"
#include "unaligned.h"
#include "util.h"
#include "vhost-user.h"

namespace {

const char *video_path() {
        const char *p = getenv("MAJORDOME_VIDEO");
        return p ? p : MAJORDOME_VIDEO_PATH;
}

struct Result {
        int status;             /* exit status, or -1 when it did not exit */
        std::string output;     /* stdout and stderr together */
};

/* Runs majordome-video with args, keeping keep_fd open in it. */
pid_t spawn(const std::vector<std::string> &args, int out_fd, int keep_fd = -1) {
        pid_t pid = fork();
        if (pid == 0) {
                std::vector<char *> argv;
                argv.push_back((char *) video_path());
                for (auto &a : args)
                        argv.push_back((char *) a.c_str());
                argv.push_back(nullptr);
                if (out_fd >= 0) {
                        dup2(out_fd, 1);
                        dup2(out_fd, 2);
                }
                if (keep_fd >= 0) {
                        int fl = fcntl(keep_fd, F_GETFD);
                        fcntl(keep_fd, F_SETFD, fl & ~FD_CLOEXEC);
                }
                execv(argv[0], argv.data());
                _exit(127);
        }
        return pid;
}

Result run(const std::vector<std::string> &args) {
        int p[2];
        EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = spawn(args, p[1]);
        close(p[1]);
        Result r{ -1, "" };
        char buf[4096];
        ssize_t n;
        while ((n = read(p[0], buf, sizeof(buf))) > 0)
                r.output.append(buf, (size_t) n);
        close(p[0]);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st))
                r.status = WEXITSTATUS(st);
        return r;
}

TEST(MajordomeVideo, help_prints_usage_and_exits_zero) {
        Result r = run({ "--help" });
        EXPECT_EQ(r.status, 0);
        EXPECT_NE(r.output.find("Usage: majordome-video --fd N | --socket PATH"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("--decoder"), std::string::npos);
}

TEST(MajordomeVideo, bad_options_exit_one_with_a_message) {
        struct {
                std::vector<std::string> args;
                const char *message;
        } cases[] = {
                { {}, "give one of --fd N or --socket PATH" },
                { { "--fd", "3", "--socket", "/tmp/x" }, "give one of --fd N or --socket PATH" },
                { { "--fd", "3", "--decoder", "vaapi" }, "--decoder: expected ffmpeg" },
                { { "--fd", "3", "--seccomp", "off" }, "--seccomp: expected enforce or log" },
                { { "--fd", "x" }, "--fd: not a descriptor number" },
                { { "--fd", "3", "extra" }, "unexpected argument: extra" },
        };
        for (auto &c : cases) {
                Result r = run(c.args);
                EXPECT_EQ(r.status, 1) << c.message;
                EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
        }
        EXPECT_EQ(run({ "--bogus" }).status, 1);
}

/* Sends request, checks and returns the reply. */
VhostUserMsg ask(int fd, uint32_t request, const void *payload, uint32_t size, uint32_t config_size = 0) {
        VhostUserMsg m{};
        size_t n_fds = 0;
        int fds[VHOST_USER_FDS_MAX];
        EXPECT_EQ(vhost_user_send(fd, request, 0, payload, size, nullptr, 0), 0);
        EXPECT_EQ(vhost_user_recv(fd, 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
        EXPECT_EQ(n_fds, 0u);
        EXPECT_EQ(vhost_user_check_reply(request, &m, config_size), 0);
        return m;
}

/* The VMM side's facts (docs/video.md): VERSION_1, GUEST_PAGES and
 * NON_CONTIG, not VIRTIO_OBJECT; two queues; crosvm's 44-byte
 * virtio_video_config. */
void talk(int fd) {
        VhostUserMsg m = ask(fd, VHOST_USER_GET_FEATURES, nullptr, 0);
        uint64_t features = get_le64(m.payload);
        EXPECT_TRUE(features & (UINT64_C(1) << 32)) << "VIRTIO_F_VERSION_1";
        EXPECT_TRUE(features & (UINT64_C(1) << 0)) << "VIRTIO_VIDEO_F_RESOURCE_GUEST_PAGES";
        EXPECT_TRUE(features & (UINT64_C(1) << 1)) << "VIRTIO_VIDEO_F_RESOURCE_NON_CONTIG";
        EXPECT_FALSE(features & (UINT64_C(1) << 2)) << "no VIRTIO_VIDEO_F_RESOURCE_VIRTIO_OBJECT";
        EXPECT_TRUE(features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES));

        m = ask(fd, VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0);
        uint64_t protocol = get_le64(m.payload);
        EXPECT_TRUE(protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_CONFIG));
        uint8_t p[8];
        put_le64(p, protocol);
        ASSERT_EQ(vhost_user_send(fd, VHOST_USER_SET_PROTOCOL_FEATURES, 0, p, 8, nullptr, 0), 0);

        m = ask(fd, VHOST_USER_GET_QUEUE_NUM, nullptr, 0);
        EXPECT_EQ(get_le64(m.payload), 2u);

        uint8_t cfg[VHOST_USER_CONFIG_HEADER_SIZE + 44] = {};
        put_le32(cfg + 4, 44);
        m = ask(fd, VHOST_USER_GET_CONFIG, cfg, sizeof(cfg), 44);
        const uint8_t *c = m.payload + VHOST_USER_CONFIG_HEADER_SIZE;
        EXPECT_EQ(get_le32(c), 0u) << "version";
        EXPECT_EQ(get_le32(c + 4), 1024u) << "max_caps_length";
        EXPECT_EQ(get_le32(c + 8), 1024u) << "max_resp_length";
        EXPECT_EQ(std::string((const char *) c + 12, 6), "ffmpeg") << "device_name";
}

TEST(MajordomeVideo, offers_its_features_queues_and_config_over_fd) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--decoder", "ffmpeg" }, -1, sv[1]);
        close(sv[1]);
        talk(sv[0]);
        /* The front-end hangs up: the back-end exits 0. */
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST(MajordomeVideo, serves_the_first_connection_on_its_socket) {
        harness::TempDir dir("video-test");
        std::string path = dir.path + "/video.sock";
        pid_t pid = spawn({ "--socket", path }, -1);
        int fd = -1;
        for (int i = 0; i < 500 && connect_unix(path.c_str(), SOCK_STREAM, &fd) < 0; i++) {
                fd = -1;
                usleep(10000);
        }
        ASSERT_GE(fd, 0);
        talk(fd);
        close(fd);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
        EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed once taken";
}

std::string read_file(const std::string &path) {
        std::string out;
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        char buf[4096];
        ssize_t n;
        if (fd < 0)
                return out;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                out.append(buf, (size_t) n);
        close(fd);
        return out;
}

/* A line of /proc/PID/status ("Seccomp:\t2" -> "2"), "" when absent. */
std::string status_field(pid_t pid, const std::string &key) {
        std::string text = read_file("/proc/" + std::to_string(pid) + "/status");
        size_t at = text.find("\n" + key + ":");
        if (at == std::string::npos)
                return "";
        size_t start = text.find_first_not_of(" \t", at + key.size() + 2);
        return text.substr(start, text.find('\n', start) - start);
}

/* What a running majordome-video holds once it answered: the jail
 * (docs/video.md "Its jail") seen from outside. */
void expect_jailed(pid_t pid, bool as_root) {
        EXPECT_EQ(status_field(pid, "Seccomp"), "2") << "a seccomp filter";
        EXPECT_EQ(status_field(pid, "NoNewPrivs"), "1");
        EXPECT_EQ(status_field(pid, "CapEff"), "0000000000000000");
        EXPECT_EQ(status_field(pid, "CapBnd"), "0000000000000000");
        if (as_root) {
                EXPECT_EQ(status_field(pid, "Uid").substr(0, 5), "65534") << "root becomes nobody";
        }
        /* Its root is an empty tmpfs: nothing of the host's files. */
        std::string root = "/proc/" + std::to_string(pid) + "/root";
        unsigned n = 0;
        if (DIR *d = opendir(root.c_str())) {
                while (struct dirent *e = readdir(d))
                        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
                closedir(d);
        } else {
                ADD_FAILURE() << root << ": " << strerror(errno);
        }
        EXPECT_EQ(n, 0u) << "entries in its root";
        char self[64], theirs[64];
        std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
        ssize_t a = readlink("/proc/self/ns/net", self, sizeof(self)), b = readlink(ns.c_str(), theirs, sizeof(theirs));
        ASSERT_GT(a, 0);
        ASSERT_GT(b, 0);
        EXPECT_NE(std::string(self, (size_t) a), std::string(theirs, (size_t) b)) << "a network namespace of its own";
}

TEST(MajordomeVideoJail, locks_itself_in_before_it_serves) {
        if (geteuid() != 0)
                GTEST_SKIP() << "checks the switch from root to nobody: run as root";
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]) }, -1, sv[1]);
        close(sv[1]);
        talk(sv[0]);
        expect_jailed(pid, true);
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

} // namespace
