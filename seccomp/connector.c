/* SPDX-License-Identifier: BSD-3-Clause */
#include "seccomp/connector.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/macro.h"

/* How long majordome-gpu waits for an answer: a compositor whose backlog
 * is full answers EAGAIN at once, so only a stopped connector is slow. */
#define ANSWER_TIMEOUT_MS 2000

static int connector_filter(void) {
        static const int allowed[] = {
                SCMP_SYS(read), SCMP_SYS(recvfrom), SCMP_SYS(connect), SCMP_SYS(sendmsg), SCMP_SYS(close),
                SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn),
#if SANDBOX_SANITIZER_POLICY
                /* ASan's _exit takes its alternate signal stack down. */
                SCMP_SYS(sigaltstack),
#endif
        };
        scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
        int r = f ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < ARRAY_SIZE(allowed); i++)
                r = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed[i], 0);
        /* Unix stream sockets only. */
        if (r == 0)
                r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
                                     SCMP_A1(SCMP_CMP_EQ, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (r == 0)
                r = seccomp_load(f);
        seccomp_release(f);
        return r;
}

static void answer(int sock, int err, int fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } c;
        struct iovec iov = { &err, sizeof(err) };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                memset(&c, 0, sizeof(c));
                m.msg_control = c.buf;
                m.msg_controllen = sizeof(c.buf);
                c.h.cmsg_level = SOL_SOCKET;
                c.h.cmsg_type = SCM_RIGHTS;
                c.h.cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(&c.h), &fd, sizeof(int));
        }
        (void) sendmsg(sock, &m, MSG_NOSIGNAL);
}

_noreturn_ static void connector_main(int sock, int handle, bool filter) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int keep[] = { sock, handle };

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Nothing else of its parent's: the guest's memory, the
         * vhost-user socket, the VM's images. */
        for (int fd = 3; fd < 1024; fd++)
                if (fd != keep[0] && fd != keep[1])
                        (void) close(fd);
        snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d", handle);
        if (filter && connector_filter() < 0)
                _exit(EXIT_FAILURE);
        for (;;) {
                char req;
                int fd, err = 0;

                /* One byte a connection; end of file: majordome-gpu ended. */
                if (read(sock, &req, 1) != 1)
                        _exit(EXIT_SUCCESS);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        err = errno;
                else if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
                        err = errno;
                        fd = safe_close(fd);
                }
                answer(sock, err, fd);
                safe_close(fd);
        }
}

int wayland_connector_start(int handle, bool filter, WaylandConnector *ret) {
        int sv[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                safe_close(sv[0]);
                safe_close(sv[1]);
                return r;
        }
        if (pid == 0)
                connector_main(sv[1], handle, filter);
        safe_close(sv[1]);
        *ret = (WaylandConnector) { .sock = sv[0], .pid = pid };
        return 0;
}

int wayland_connector_connect(WaylandConnector *c) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } cm;
        struct pollfd p = { .fd = c->sock, .events = POLLIN };
        int err = 0, fd = -1;
        struct iovec iov = { &err, sizeof(err) };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
        struct cmsghdr *h;
        ssize_t n;

        if (c->sock < 0)
                return -EPIPE;
        if (write(c->sock, "c", 1) != 1)
                return -EPIPE;
        if (poll(&p, 1, ANSWER_TIMEOUT_MS) != 1)
                return -ETIMEDOUT;
        n = recvmsg(c->sock, &m, MSG_CMSG_CLOEXEC);
        if (n != sizeof(err))
                return -EPIPE;
        h = CMSG_FIRSTHDR(&m);
        if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(&fd, CMSG_DATA(h), sizeof(int));
        if (err != 0 || fd < 0) {
                safe_close(fd);
                return err > 0 ? -err : -EIO;
        }
        return fd;
}

bool wayland_connector_is_socket(int fd) {
        int type;
        socklen_t len = sizeof(type);

        return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

/* The connector ends when it reads end of file (reaped by whoever
 * outlives us: majordome-gpu may be in its jail now, without wait4). */
void wayland_connector_stop(WaylandConnector *c) {
        c->sock = safe_close(c->sock);
}
