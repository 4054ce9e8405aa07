/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user wire format. Section names are those of QEMU's
 * docs/interop/vhost-user.rst. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "common/vhost-user.h"

static const char *const request_table[] = {
        [VHOST_USER_GET_FEATURES] = "GET_FEATURES",
        [VHOST_USER_SET_FEATURES] = "SET_FEATURES",
        [VHOST_USER_SET_OWNER] = "SET_OWNER",
        [VHOST_USER_RESET_OWNER] = "RESET_OWNER",
        [VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
        [VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
        [VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
        [VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
        [VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
        [VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
        [VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
        [VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
        [VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
        [VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
        [VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
        [VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
        [VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
        [VHOST_USER_GET_CONFIG] = "GET_CONFIG",
        [VHOST_USER_SET_CONFIG] = "SET_CONFIG",
        [VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
        [VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
        [VHOST_USER_SET_STATUS] = "SET_STATUS",
        [VHOST_USER_GET_STATUS] = "GET_STATUS",
};

const char *vhost_user_request_to_string(uint32_t request) {
        if (request < ARRAY_SIZE(request_table) && request_table[request])
                return request_table[request];
        return "unknown";
}

int vhost_user_send(int fd, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
                    const int *fds, size_t n_fds) {
        uint8_t header[VHOST_USER_HEADER_SIZE];
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_FDS_MAX)];
        } control;
        struct iovec iov[2] = {
                { .iov_base = header, .iov_len = sizeof(header) },
                { .iov_base = (void *) payload, .iov_len = size },
        };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
        size_t total = sizeof(header) + size, sent = 0;

        if (size > VHOST_USER_PAYLOAD_MAX || n_fds > VHOST_USER_FDS_MAX)
                return -EMSGSIZE;
        put_le32(header, request);
        put_le32(header + 4, (flags & ~VHOST_USER_FLAG_VERSION_MASK) | VHOST_USER_VERSION);
        put_le32(header + 8, size);
        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        while (sent < total) {
                ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                sent += (size_t) n;
                /* The fds went with the first bytes; the rest is plain data. */
                mh.msg_control = NULL;
                mh.msg_controllen = 0;
                while (n > 0 && mh.msg_iovlen > 0) {
                        size_t step = MIN((size_t) n, mh.msg_iov[0].iov_len);

                        mh.msg_iov[0].iov_base = (uint8_t *) mh.msg_iov[0].iov_base + step;
                        mh.msg_iov[0].iov_len -= step;
                        n -= (ssize_t) step;
                        if (mh.msg_iov[0].iov_len == 0) {
                                mh.msg_iov++;
                                mh.msg_iovlen--;
                        }
                }
        }
        return 0;
}

static void close_all(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

/* Reads exactly len bytes; descriptors are accepted only with the first
 * byte of the header (want_fds). */
static int read_exact(int fd, void *buf, size_t len, uint64_t deadline_ns, bool want_fds, int *fds,
                      size_t max_fds, size_t *n_fds) {
        size_t done = 0;

        while (done < len) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * (VHOST_USER_FDS_MAX + 1))];
                } control;
                struct iovec iov = { .iov_base = (uint8_t *) buf + done, .iov_len = len - done };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf),
                };
                bool bad = false;
                ssize_t n;

                if (deadline_ns != UINT64_MAX) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        int r;

                        /* A spent deadline still takes what is already
                         * queued (a timeout of 0 polls): only an empty
                         * socket times out. */
                        r = poll(&p, 1, deadline_remaining_ms(deadline_ns));
                        if (r < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (r == 0)
                                return -ETIMEDOUT;
                }
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT * (deadline_ns != UINT64_MAX));
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return errno == EPIPE ? -ECONNRESET : -errno;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        size_t k;

                        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                                bad = true;
                                continue;
                        }
                        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int got;

                                memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                /* Past the limit, or with any byte but the
                                 * header's first: closed, and the message is bad. */
                                if (!want_fds || done > 0 || *n_fds >= max_fds) {
                                        safe_close(got);
                                        bad = true;
                                } else {
                                        fds[(*n_fds)++] = got;
                                }
                        }
                }
                if (mh.msg_flags & MSG_CTRUNC)
                        bad = true;
                if (bad)
                        return -EBADMSG;
                if (n == 0)
                        return -ECONNRESET;
                done += (size_t) n;
        }
        return 0;
}

_Static_assert(VHOST_USER_PAYLOAD_MAX >= VHOST_USER_CONFIG_HEADER_SIZE + VHOST_USER_CONFIG_MAX,
               "a whole config space fits a message");
_Static_assert(VHOST_USER_PAYLOAD_MAX >= 8 + VHOST_USER_MEM_REGIONS_MAX * VHOST_USER_MEM_REGION_SIZE,
               "a full memory table fits a message");

int vhost_user_recv(int fd, int timeout_ms, VhostUserMsg *msg, int *fds, size_t max_fds, size_t *ret_n_fds) {
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ns() + (uint64_t) timeout_ms * 1000000;
        uint8_t header[VHOST_USER_HEADER_SIZE];
        size_t n_fds = 0;
        int r;

        max_fds = MIN(max_fds, (size_t) VHOST_USER_FDS_MAX);
        r = read_exact(fd, header, sizeof(header), deadline, true, fds, max_fds, &n_fds);
        if (r < 0)
                goto fail;
        msg->request = get_le32(header);
        msg->flags = get_le32(header + 4);
        msg->size = get_le32(header + 8);
        /* The header is all that is trusted before this. */
        if ((msg->flags & VHOST_USER_FLAG_VERSION_MASK) != VHOST_USER_VERSION || msg->size > VHOST_USER_PAYLOAD_MAX) {
                r = -EBADMSG;
                goto fail;
        }
        r = read_exact(fd, msg->payload, msg->size, deadline, false, NULL, 0, &n_fds);
        if (r < 0)
                goto fail;
        *ret_n_fds = n_fds;
        return 0;
fail:
        close_all(fds, n_fds);
        *ret_n_fds = 0;
        return r;
}

int vhost_user_check_reply(uint32_t request, const VhostUserMsg *reply, uint32_t config_size) {
        uint32_t want;

        if (!(reply->flags & VHOST_USER_FLAG_REPLY) || reply->request != request)
                return -EBADMSG;
        switch (request) {
        case VHOST_USER_GET_VRING_BASE:
                want = VHOST_USER_VRING_STATE_SIZE;
                break;
        case VHOST_USER_GET_CONFIG:
                if (config_size > VHOST_USER_CONFIG_MAX)
                        return -EBADMSG;
                want = VHOST_USER_CONFIG_HEADER_SIZE + config_size;
                break;
        default:
                /* GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
                 * GET_MAX_MEM_SLOTS, GET_STATUS and every REPLY_ACK. */
                want = 8;
                break;
        }
        return reply->size == want ? 0 : -EBADMSG;
}

static bool vring_fd_ok(const VhostUserMsg *msg, size_t n_fds) {
        uint64_t v;

        if (msg->size != 8)
                return false;
        v = get_le64(msg->payload);
        if (v & ~(uint64_t) (VHOST_USER_VRING_INDEX_MASK | VHOST_USER_VRING_NOFD))
                return false;
        return n_fds == ((v & VHOST_USER_VRING_NOFD) ? 0 : 1);
}

int vhost_user_check_request(const VhostUserMsg *msg, size_t n_fds) {
        if (msg->flags & VHOST_USER_FLAG_REPLY)
                return -EBADMSG;
        switch (msg->request) {
        case VHOST_USER_GET_FEATURES:
        case VHOST_USER_GET_PROTOCOL_FEATURES:
        case VHOST_USER_GET_QUEUE_NUM:
        case VHOST_USER_GET_MAX_MEM_SLOTS:
        case VHOST_USER_GET_STATUS:
        case VHOST_USER_SET_OWNER:
        case VHOST_USER_RESET_OWNER:
        case VHOST_USER_RESET_DEVICE:
                /* QEMU sends a u64 of zero with some of these; both are fine. */
                return (msg->size == 0 || msg->size == 8) && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_SET_FEATURES:
        case VHOST_USER_SET_PROTOCOL_FEATURES:
        case VHOST_USER_SET_STATUS:
                return msg->size == 8 && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_SET_VRING_NUM:
        case VHOST_USER_SET_VRING_BASE:
        case VHOST_USER_GET_VRING_BASE:
        case VHOST_USER_SET_VRING_ENABLE:
                return msg->size == VHOST_USER_VRING_STATE_SIZE && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_SET_VRING_ADDR:
                return msg->size == VHOST_USER_VRING_ADDR_SIZE && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_SET_VRING_KICK:
        case VHOST_USER_SET_VRING_CALL:
        case VHOST_USER_SET_VRING_ERR:
                return vring_fd_ok(msg, n_fds) ? 0 : -EBADMSG;
        case VHOST_USER_SET_BACKEND_REQ_FD:
                return msg->size == 8 && n_fds == 1 ? 0 : -EBADMSG;
        case VHOST_USER_SET_MEM_TABLE: {
                uint32_t n;

                if (msg->size < 8)
                        return -EBADMSG;
                n = get_le32(msg->payload);
                if (n == 0 || n > VHOST_USER_MEM_REGIONS_MAX ||
                    msg->size != 8 + n * VHOST_USER_MEM_REGION_SIZE || n_fds != n)
                        return -EBADMSG;
                return 0;
        }
        case VHOST_USER_GET_CONFIG:
        case VHOST_USER_SET_CONFIG: {
                uint32_t offset, size;

                if (msg->size < VHOST_USER_CONFIG_HEADER_SIZE || n_fds != 0)
                        return -EBADMSG;
                offset = get_le32(msg->payload);
                size = get_le32(msg->payload + 4);
                if (size > VHOST_USER_CONFIG_MAX || offset > VHOST_USER_CONFIG_MAX - size ||
                    msg->size != VHOST_USER_CONFIG_HEADER_SIZE + size)
                        return -EBADMSG;
                return 0;
        }
        default:
                return -EOPNOTSUPP;
        }
}

int vhost_user_check_backend_request(const VhostUserMsg *msg, size_t n_fds) {
        if (msg->flags & VHOST_USER_FLAG_REPLY)
                return -EBADMSG;
        switch (msg->request) {
        case VHOST_USER_BACKEND_CONFIG_CHANGE_MSG:
                return (msg->size == 0 || msg->size == 8) && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_BACKEND_VRING_CALL:
        case VHOST_USER_BACKEND_VRING_ERR:
                return msg->size == VHOST_USER_VRING_STATE_SIZE && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_BACKEND_SHMEM_MAP:
                return msg->size == VHOST_USER_SHMEM_MAP_SIZE && n_fds == 1 ? 0 : -EBADMSG;
        case VHOST_USER_BACKEND_SHMEM_UNMAP:
                return msg->size == VHOST_USER_SHMEM_MAP_SIZE && n_fds == 0 ? 0 : -EBADMSG;
        case VHOST_USER_BACKEND_STOP_VM:
                return msg->size == 0 && n_fds == 0 ? 0 : -EBADMSG;
        default:
                return -EOPNOTSUPP;
        }
}
