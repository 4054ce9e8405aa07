/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* For the tests of this project's device processes (majordome-gpu,
 * majordome-video) as processes: running one with options, speaking
 * vhost-user to it through common/vhost-user.h's codec, and its jail seen
 * from outside through /proc (seccomp/device-sandbox.c). */

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "tests/test-user.h"
#include "common/vhost-user.h"

namespace device_process {

struct Result {
        int status;             /* exit status, or -1 when it did not exit */
        std::string output;     /* stdout and stderr together */
};

/* Runs the binary at path with args, keeping keep_fd open in it. */
inline pid_t spawn(const char *path, const std::vector<std::string> &args, int out_fd, int keep_fd = -1) {
        pid_t pid = fork();
        if (pid == 0) {
                std::vector<char *> argv;
                argv.push_back((char *) path);
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

/* Runs it to its end: its exit status and what it printed. */
inline Result run(const char *path, const std::vector<std::string> &args) {
        int p[2];
        EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = spawn(path, args, p[1]);
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

/* Sends request, checks and returns the reply. */
inline VhostUserMsg ask(int fd, uint32_t request, const void *payload, uint32_t size, uint32_t config_size = 0) {
        VhostUserMsg m{};
        size_t n_fds = 0;
        int fds[VHOST_USER_FDS_MAX];
        EXPECT_EQ(vhost_user_send(fd, request, 0, payload, size, nullptr, 0), 0);
        EXPECT_EQ(vhost_user_recv(fd, 5000, &m, fds, VHOST_USER_FDS_MAX, &n_fds), 0);
        EXPECT_EQ(n_fds, 0u);
        EXPECT_EQ(vhost_user_check_reply(request, &m, config_size), 0);
        return m;
}

inline std::string read_file(const std::string &path) {
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
inline std::string status_field(pid_t pid, const std::string &key) {
        std::string text = read_file("/proc/" + std::to_string(pid) + "/status");
        size_t at = text.find("\n" + key + ":");
        if (at == std::string::npos)
                return "";
        size_t start = text.find_first_not_of(" \t", at + key.size() + 2);
        return text.substr(start, text.find('\n', start) - start);
}

/* What a running device process holds once it answered: the jail
 * (docs/gpu.md and docs/video.md, "Its jail") seen from outside. */
inline void expect_jailed(pid_t pid, bool as_root) {
        EXPECT_EQ(status_field(pid, "Seccomp"), "2") << "a seccomp filter";
        EXPECT_EQ(status_field(pid, "NoNewPrivs"), "1");
        EXPECT_EQ(status_field(pid, "CapEff"), "0000000000000000");
        EXPECT_EQ(status_field(pid, "CapBnd"), "0000000000000000");
        if (as_root) {
                std::string uid = std::to_string(test_user::default_jail_uid());
                EXPECT_EQ(status_field(pid, "Uid").substr(0, uid.size() + 1), uid + "\t")
                        << "root becomes majordome-vmm, else nobody";
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

} // namespace device_process
