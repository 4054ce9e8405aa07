/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer target for the vhost-user codec (common/vhost-user.c), as a
 * back-end or front-end meets a hostile peer: the input is written into one
 * end of an AF_UNIX SOCK_STREAM socketpair, that end is closed, and
 * vhost_user_recv() reads the other end until it fails. Every message it
 * accepts goes through vhost_user_check_request(), _check_reply() and
 * _check_backend_request(), each given a copy of the message cut to its
 * header and `size` payload bytes, so a check that reads past the payload
 * it was sent is an ASan report.
 *
 * Input: the first byte chooses the mode.
 *   bit 7 clear: the rest is written as one plain stream (no descriptors).
 *   bit 7 set: the rest is segments [u8 ctl][u8 len][len bytes], each one
 *     sendmsg carrying (ctl & 15) copies of an eventfd, so descriptors
 *     arrive with any byte of any header or payload, and more of them than
 *     any limit.
 * bits 0-3 of the first byte: max_fds for vhost_user_recv() (0..8, more is
 * clamped by the codec); bit 4: timeout 0 (poll) rather than -1.
 *
 * ASan does not see descriptor leaks: after each input the descriptor
 * numbers from the lowest free one up are checked to be open exactly as
 * they were before it, and a leak aborts. Build and run: see tests/fuzz/README.md. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/vhost-user.h"

#define SEGMENTS_MAX 64
#define FDS_PER_SEGMENT_MAX 15
/* Descriptor numbers checked for leaks from the lowest free one up: more
 * than one input can open (2 socket ends, an eventfd, 8 received). */
#define LEAK_WINDOW 64

/* Which of the LEAK_WINDOW numbers from low up are open, as bits. */
static uint64_t open_fds(int low) {
        uint64_t set = 0;

        for (int i = 0; i < LEAK_WINDOW; i++)
                if (fcntl(low + i, F_GETFD) >= 0)
                        set |= UINT64_C(1) << i;
        return set;
}

static void send_segment(int fd, const uint8_t *data, size_t len, int efd, unsigned n_fds, bool *stop) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * FDS_PER_SEGMENT_MAX)];
        } control;
        struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        /* Descriptors need at least one byte to ride with. */
        if (len == 0)
                return;
        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                for (unsigned i = 0; i < n_fds; i++)
                        memcpy(CMSG_DATA(c) + i * sizeof(int), &efd, sizeof(int));
        }
        /* A full socket buffer (EAGAIN) or a short write ends the stream
         * there: the reader then sees a truncated message, also a case. */
        if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) len)
                *stop = true;
}

static void check_message(const VhostUserMsg *msg, size_t n_fds) {
        size_t len = offsetof(VhostUserMsg, payload) + msg->size;
        VhostUserMsg *cut = malloc(len);
        uint32_t config_size = 0;

        if (!cut)
                abort();
        memcpy(cut, msg, len);
        /* A config size from the payload, up to one past the limit. */
        if (msg->size >= 2)
                config_size = msg->payload[0] | (uint32_t) (msg->payload[1] & 1) << 8;
        (void) vhost_user_check_request(cut, n_fds);
        (void) vhost_user_check_reply(cut->request, cut, config_size);
        (void) vhost_user_check_backend_request(cut, n_fds);
        (void) vhost_user_request_to_string(cut->request);
        free(cut);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int sv[2], efd, low, timeout_ms;
        uint64_t before;
        size_t max_fds;
        bool stop = false;

        if (size < 1)
                return 0;
        /* Every descriptor this input makes is above `low`. */
        low = fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (low < 0)
                abort();
        close(low);
        before = open_fds(low);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        efd = eventfd(0, EFD_CLOEXEC);
        if (efd < 0)
                abort();
        max_fds = data[0] & 15;
        timeout_ms = (data[0] & 0x10) ? 0 : -1;

        if (!(data[0] & 0x80)) {
                send_segment(sv[0], data + 1, size - 1, efd, 0, &stop);
        } else {
                size_t at = 1;

                for (unsigned seg = 0; !stop && seg < SEGMENTS_MAX && size - at >= 2; seg++) {
                        unsigned n_fds = data[at] & FDS_PER_SEGMENT_MAX;
                        size_t len = data[at + 1];

                        at += 2;
                        if (len > size - at)
                                len = size - at;
                        send_segment(sv[0], data + at, len, efd, n_fds, &stop);
                        at += len;
                }
        }
        close(sv[0]);
        close(efd);

        for (;;) {
                VhostUserMsg msg;
                int fds[VHOST_USER_FDS_MAX + 1];
                size_t n_fds = SIZE_MAX;
                int r;

                r = vhost_user_recv(sv[1], timeout_ms, &msg, fds, max_fds, &n_fds);
                if (r < 0) {
                        /* The header promises: no descriptor on failure. */
                        if (n_fds != 0)
                                abort();
                        break;
                }
                if (n_fds > max_fds || n_fds > VHOST_USER_FDS_MAX || msg.size > VHOST_USER_PAYLOAD_MAX)
                        abort();
                check_message(&msg, n_fds);
                for (size_t i = 0; i < n_fds; i++)
                        if (close(fds[i]) < 0)
                                abort();
        }
        close(sv[1]);

        if (open_fds(low) != before)
                abort();
        return 0;
}
