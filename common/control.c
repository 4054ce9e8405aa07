/* SPDX-License-Identifier: BSD-3-Clause */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "common/control.h"
#include "common/macro.h"
#include "common/string-table.h"
#include "common/unaligned.h"
#include "common/util.h"

static const char *const control_type_table[_CONTROL_TYPE_MAX] = {
        [CONTROL_TYPE_INFO] = "info",
        [CONTROL_TYPE_PAUSE] = "pause",
        [CONTROL_TYPE_RESUME] = "resume",
        [CONTROL_TYPE_STOP] = "stop",
        [CONTROL_TYPE_SUBSCRIBE] = "subscribe",
        [CONTROL_TYPE_CONFIGURE] = "configure",
        [CONTROL_TYPE_DISK_RESIZE] = "disk-resize",
        [CONTROL_TYPE_BALLOON] = "balloon",
        [CONTROL_TYPE_BALLOON_STATS] = "balloon-stats",
};

static const char *const control_event_table[_CONTROL_EVENT_MAX - CONTROL_EVENT] = {
        [CONTROL_EVENT_READY - CONTROL_EVENT] = "ready",
        [CONTROL_EVENT_STATE_CHANGED - CONTROL_EVENT] = "state-changed",
        [CONTROL_EVENT_GUEST_PANIC - CONTROL_EVENT] = "guest-panic",
        [CONTROL_EVENT_EXITING - CONTROL_EVENT] = "exiting",
        [CONTROL_EVENT_DEVICE_ERROR - CONTROL_EVENT] = "device-error",
        [CONTROL_EVENT_BALLOON_REACHED - CONTROL_EVENT] = "balloon-reached",
};

const char *control_type_to_string(uint16_t type) {
        if (type >= CONTROL_EVENT && type < _CONTROL_EVENT_MAX)
                return control_event_table[type - CONTROL_EVENT];
        if (type >= _CONTROL_TYPE_MAX)
                return NULL;
        return control_type_table[type];
}

/* Requests only: events are not sent by name. */
DEFINE_STRING_TABLE_FROM_STRING(control_type, int, control_type_table, -EINVAL)

static const char *const control_state_table[_CONTROL_STATE_MAX] = {
        [CONTROL_STATE_STARTING] = "starting",
        [CONTROL_STATE_RUNNING] = "running",
        [CONTROL_STATE_PAUSED] = "paused",
        [CONTROL_STATE_STOPPING] = "stopping",
};

DEFINE_STRING_TABLE(control_state, uint32_t, control_state_table)

void control_header_encode(const ControlHeader *h, void *buf) {
        uint8_t *p = buf;

        put_le32(p + 0, h->magic);
        put_le16(p + 4, h->version);
        put_le16(p + 6, h->type);
        put_le32(p + 8, h->id);
        put_le32(p + 12, (uint32_t) h->status);
        put_le32(p + 16, h->length);
        put_le32(p + 20, h->flags);
}

int control_header_decode(const void *buf, size_t len, ControlHeader *ret) {
        const uint8_t *p = buf;

        if (len < CONTROL_HEADER_SIZE)
                return -EBADMSG;

        *ret = (ControlHeader) {
                .magic = get_le32(p + 0),
                .version = get_le16(p + 4),
                .type = get_le16(p + 6),
                .id = get_le32(p + 8),
                .status = (int32_t) get_le32(p + 12),
                .length = get_le32(p + 16),
                .flags = get_le32(p + 20),
        };
        return 0;
}

int control_header_check(const ControlHeader *h, size_t datagram_len) {
        /* Order matters: magic and version are the only fields whose place is
         * frozen across versions, so judge them before reading the rest. */
        if (h->magic != CONTROL_MAGIC)
                return -EBADMSG;
        if (h->version != CONTROL_VERSION)
                return -EPROTO;
        if (datagram_len < CONTROL_HEADER_SIZE ||
            h->length != datagram_len - CONTROL_HEADER_SIZE)
                return -EBADMSG;
        if (h->flags != 0)
                return -EBADMSG;
        return 0;
}

size_t control_info_encode(const ControlInfo *info, void *buf) {
        uint8_t *p = buf;

        put_le32(p + 0, info->state);
        put_le32(p + 4, info->vcpus);
        put_le64(p + 8, info->memory_bytes);
        put_le64(p + 16, info->uptime_ns);
        put_le32(p + 24, info->pid);
        put_le32(p + 28, 0);
        return CONTROL_INFO_SIZE;
}

int control_info_decode(const void *buf, size_t len, ControlInfo *ret) {
        const uint8_t *p = buf;

        if (len < CONTROL_INFO_SIZE)
                return -EBADMSG;

        *ret = (ControlInfo) {
                .state = get_le32(p + 0),
                .vcpus = get_le32(p + 4),
                .memory_bytes = get_le64(p + 8),
                .uptime_ns = get_le64(p + 16),
                .pid = get_le32(p + 24),
        };
        return 0;
}

/* ---- events ---- */

size_t control_ready_encode(const ControlReady *r, void *buf) {
        uint8_t *p = buf;
        uint32_t n = MIN(r->n_devices, (uint32_t) CONTROL_READY_DEVICES_MAX);

        put_le32(p + 0, r->state);
        put_le32(p + 4, r->vcpus);
        put_le64(p + 8, r->memory_bytes);
        put_le32(p + 16, r->cid);
        put_le32(p + 20, n);
        for (uint32_t i = 0; i < n; i++) {
                uint8_t *e = p + CONTROL_READY_HEADER_SIZE + i * CONTROL_READY_DEVICE_SIZE;

                put_le16(e + 0, r->devices[i].vendor_id);
                put_le16(e + 2, r->devices[i].device_id);
                e[4] = r->devices[i].bus;
                e[5] = r->devices[i].slot;
                e[6] = r->devices[i].function;
                e[7] = 0;
        }
        return CONTROL_READY_HEADER_SIZE + (size_t) n * CONTROL_READY_DEVICE_SIZE;
}

int control_ready_decode(const void *buf, size_t len, ControlReady *ret) {
        const uint8_t *p = buf;
        ControlReady r = {};

        if (len < CONTROL_READY_HEADER_SIZE)
                return -EBADMSG;
        r.state = get_le32(p + 0);
        r.vcpus = get_le32(p + 4);
        r.memory_bytes = get_le64(p + 8);
        r.cid = get_le32(p + 16);
        r.n_devices = get_le32(p + 20);
        if (r.n_devices > CONTROL_READY_DEVICES_MAX ||
            len < CONTROL_READY_HEADER_SIZE + (size_t) r.n_devices * CONTROL_READY_DEVICE_SIZE)
                return -EBADMSG;
        for (uint32_t i = 0; i < r.n_devices; i++) {
                const uint8_t *e = p + CONTROL_READY_HEADER_SIZE + i * CONTROL_READY_DEVICE_SIZE;

                r.devices[i] = (ControlDevice) {
                        .vendor_id = get_le16(e + 0),
                        .device_id = get_le16(e + 2),
                        .bus = e[4],
                        .slot = e[5],
                        .function = e[6],
                };
        }
        *ret = r;
        return 0;
}

size_t control_state_changed_encode(uint32_t state, void *buf) {
        uint8_t *p = buf;

        put_le32(p + 0, state);
        put_le32(p + 4, 0);
        return CONTROL_STATE_CHANGED_SIZE;
}

int control_state_changed_decode(const void *buf, size_t len, uint32_t *ret_state) {
        if (len < CONTROL_STATE_CHANGED_SIZE)
                return -EBADMSG;
        *ret_state = get_le32(buf);
        return 0;
}

static const char *const control_panic_action_table[_CONTROL_PANIC_ACTION_MAX] = {
        [CONTROL_PANIC_STOP] = "stop",
        [CONTROL_PANIC_PAUSE] = "pause",
};

DEFINE_STRING_TABLE(control_panic_action, uint32_t, control_panic_action_table)

size_t control_guest_panic_encode(uint32_t events, uint32_t action, void *buf) {
        uint8_t *p = buf;

        put_le32(p + 0, events);
        put_le32(p + 4, action);
        return CONTROL_GUEST_PANIC_SIZE;
}

int control_guest_panic_decode(const void *buf, size_t len, uint32_t *ret_events, uint32_t *ret_action) {
        const uint8_t *p = buf;

        if (len < CONTROL_GUEST_PANIC_SIZE)
                return -EBADMSG;
        *ret_events = get_le32(p + 0);
        *ret_action = get_le32(p + 4);
        return 0;
}

size_t control_balloon_reached_encode(uint64_t bytes, void *buf) {
        put_le64(buf, bytes);
        return CONTROL_BALLOON_REACHED_SIZE;
}

int control_balloon_reached_decode(const void *buf, size_t len, uint64_t *ret_bytes) {
        if (len < CONTROL_BALLOON_REACHED_SIZE)
                return -EBADMSG;
        *ret_bytes = get_le64(buf);
        return 0;
}

size_t control_device_error_encode(const ControlDevice *d, const char *reason, void *buf) {
        uint8_t *p = buf;
        size_t n = reason ? strnlen(reason, CONTROL_REASON_MAX) : 0;

        put_le16(p + 0, d->vendor_id);
        put_le16(p + 2, d->device_id);
        p[4] = d->bus;
        p[5] = d->slot;
        p[6] = d->function;
        p[7] = 0;
        put_le32(p + 8, (uint32_t) n);
        if (n > 0)
                memcpy(p + CONTROL_DEVICE_ERROR_HEADER_SIZE, reason, n);
        return CONTROL_DEVICE_ERROR_HEADER_SIZE + n;
}

int control_device_error_decode(const void *buf, size_t len, ControlDevice *ret, char *ret_reason) {
        const uint8_t *p = buf;
        uint32_t n;

        if (len < CONTROL_DEVICE_ERROR_HEADER_SIZE)
                return -EBADMSG;
        n = get_le32(p + 8);
        if (n > CONTROL_REASON_MAX || n > len - CONTROL_DEVICE_ERROR_HEADER_SIZE)
                return -EBADMSG;
        *ret = (ControlDevice) {
                .vendor_id = get_le16(p),
                .device_id = get_le16(p + 2),
                .bus = p[4],
                .slot = p[5],
                .function = p[6],
        };
        memcpy(ret_reason, p + CONTROL_DEVICE_ERROR_HEADER_SIZE, n);
        ret_reason[n] = '\0';
        return 0;
}

size_t control_exiting_encode(int32_t exit_code, const char *reason, void *buf) {
        uint8_t *p = buf;
        size_t n = reason ? strnlen(reason, CONTROL_REASON_MAX) : 0;

        put_le32(p + 0, (uint32_t) exit_code);
        put_le32(p + 4, (uint32_t) n);
        if (n > 0)
                memcpy(p + CONTROL_EXITING_HEADER_SIZE, reason, n);
        return CONTROL_EXITING_HEADER_SIZE + n;
}

int control_exiting_decode(const void *buf, size_t len, int32_t *ret_exit_code, char *ret_reason) {
        const uint8_t *p = buf;
        uint32_t n;

        if (len < CONTROL_EXITING_HEADER_SIZE)
                return -EBADMSG;
        n = get_le32(p + 4);
        if (n > CONTROL_REASON_MAX || n > len - CONTROL_EXITING_HEADER_SIZE)
                return -EBADMSG;
        *ret_exit_code = (int32_t) get_le32(p + 0);
        memcpy(ret_reason, p + CONTROL_EXITING_HEADER_SIZE, n);
        ret_reason[n] = 0;
        return 0;
}

void control_datagram_close_fds(ControlDatagram *d) {
        for (size_t i = 0; i < d->n_fds; i++)
                safe_close(d->fds[i]);
        d->n_fds = 0;
}

int control_receive(int fd, ControlDatagram *ret) {
        /* Room for exactly CONTROL_FDS_MAX fds: the kernel closes the excess
         * itself and reports it with MSG_CTRUNC. */
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(int) * CONTROL_FDS_MAX)];
        } control;
        struct iovec iov = {
                .iov_base = ret->data,
                .iov_len = sizeof(ret->data),
        };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        ssize_t n;

        /* MSG_TRUNC makes SOCK_SEQPACKET report the datagram's real size
         * (Linux >= 3.4), so an oversized message is told apart from one that
         * is exactly CONTROL_MSG_MAX. */
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (n < 0)
                return -errno;

        ret->n_fds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t k;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;

                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int rfd;

                        memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (ret->n_fds < CONTROL_FDS_MAX)
                                ret->fds[ret->n_fds++] = rfd;
                        else
                                safe_close(rfd);
                }
        }

        if (n == 0 && ret->n_fds == 0 && !(mh.msg_flags & MSG_CTRUNC))
                return -ECONNRESET;

        ret->real_len = (size_t) n;
        ret->len = MIN((size_t) n, sizeof(ret->data));
        ret->truncated = (mh.msg_flags & MSG_TRUNC) || (size_t) n > sizeof(ret->data);
        ret->fds_truncated = mh.msg_flags & MSG_CTRUNC;
        return 0;
}

int control_send(int fd, const ControlHeader *h, const void *payload, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(int) * CONTROL_FDS_MAX)];
        } control;
        uint8_t header[CONTROL_HEADER_SIZE];
        struct iovec iov[2] = {
                { .iov_base = header, .iov_len = sizeof(header) },
                { .iov_base = (void *) payload, .iov_len = h->length },
        };
        struct msghdr mh = {
                .msg_iov = iov,
                .msg_iovlen = h->length > 0 ? 2 : 1,
        };
        ssize_t n;

        if (h->length > CONTROL_PAYLOAD_MAX || n_fds > CONTROL_FDS_MAX)
                return -EMSGSIZE;
        if (h->length > 0 && !payload)
                return -EINVAL;

        control_header_encode(h, header);

        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }

        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0)
                return -errno;
        /* SOCK_SEQPACKET sends all or nothing; anything else is a bug below us. */
        if ((size_t) n != CONTROL_HEADER_SIZE + h->length)
                return -EIO;
        return 0;
}

int control_connect(const char *path, int *ret_fd) {
        return connect_unix(path, SOCK_SEQPACKET, ret_fd);
}

static int wait_reply(int fd, uint16_t type, uint32_t id, uint64_t deadline_ns, ControlReply *ret) {
        for (;;) {
                ControlDatagram d;
                ControlHeader h;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r;

                r = poll(&p, 1, deadline_remaining_ms(deadline_ns));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;

                r = control_receive(fd, &d);
                if (r == -EAGAIN || r == -EINTR)
                        continue;
                if (r < 0)
                        return r;
                /* No reply carries fds in this version. */
                control_datagram_close_fds(&d);

                if (d.truncated)
                        return -EBADMSG;
                r = control_header_decode(d.data, d.len, &h);
                if (r < 0)
                        return r;
                if (h.magic != CONTROL_MAGIC)
                        return -EBADMSG;

                /* A version mismatch is answered in the server's version; only
                 * the frozen fields can be trusted, and the status says EPROTO. */
                if (h.version != CONTROL_VERSION) {
                        if (!(h.type & CONTROL_REPLY))
                                return -EBADMSG;
                        *ret = (ControlReply) {
                                .version = h.version,
                                .type = h.type,
                                .status = -EPROTO,
                        };
                        return 0;
                }

                r = control_header_check(&h, d.len);
                if (r < 0)
                        return r;
                if (!(h.type & CONTROL_REPLY))
                        return -EBADMSG;

                /* Errors about datagrams the server could not attribute (and
                 * a refused connection) come with id 0 and type NONE. */
                if (h.type == (CONTROL_REPLY | CONTROL_TYPE_NONE) && h.id == 0) {
                        if (h.status >= 0)
                                return -EBADMSG;
                } else if (h.id != id || h.type != (type | CONTROL_REPLY))
                        /* A late answer to an earlier request that timed out. */
                        continue;

                if (h.status > 0)
                        return -EBADMSG;

                ret->version = h.version;
                ret->type = h.type;
                ret->status = h.status;
                ret->length = h.length;
                memcpy(ret->payload, d.data + CONTROL_HEADER_SIZE, h.length);
                return 0;
        }
}

int control_call(int fd, uint16_t type, uint32_t id,
                 const void *payload, size_t length,
                 const int *fds, size_t n_fds,
                 int timeout_ms, ControlReply *ret) {
        ControlHeader h = {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = type,
                .id = id,
                .length = (uint32_t) length,
        };
        uint64_t deadline_ns = UINT64_MAX;
        int r;

        if (length > CONTROL_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (type & CONTROL_REPLY)
                return -EINVAL;
        if (timeout_ms >= 0)
                deadline_ns = now_ns() + (uint64_t) timeout_ms * 1000000;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };

                r = control_send(fd, &h, payload, fds, n_fds);
                if (r != -EAGAIN && r != -EINTR)
                        break;

                /* The VMM's receive queue is full: wait for room, not forever. */
                r = poll(&p, 1, deadline_remaining_ms(deadline_ns));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
        }
        if (r == -EPIPE || r == -ECONNRESET) {
                /* The server may have refused us (too many connections) and
                 * hung up before we wrote: its error is still queued for us. */
                int q;

                q = wait_reply(fd, type, id, now_ns(), ret);
                return q >= 0 ? q : r;
        }
        if (r < 0)
                return r;

        return wait_reply(fd, type, id, deadline_ns, ret);
}

/* ---- block devices ---- */

size_t control_disk_resize_request_encode(uint32_t index, uint64_t size, void *buf) {
        uint8_t *p = buf;

        put_le32(p, index);
        put_le32(p + 4, 0);
        put_le64(p + 8, size);
        return CONTROL_DISK_RESIZE_REQUEST_SIZE;
}

int control_disk_resize_request_decode(const void *buf, size_t len, uint32_t *ret_index, uint64_t *ret_size) {
        const uint8_t *p = buf;

        if (len != CONTROL_DISK_RESIZE_REQUEST_SIZE)
                return -EBADMSG;
        if (get_le32(p + 4) != 0)
                return -EINVAL;
        *ret_index = get_le32(p);
        *ret_size = get_le64(p + 8);
        return 0;
}

/* ---- balloon ---- */

size_t control_balloon_request_encode(uint64_t size_bytes, void *buf) {
        put_le64(buf, size_bytes);
        return CONTROL_BALLOON_REQUEST_SIZE;
}

int control_balloon_request_decode(const void *buf, size_t len, uint64_t *ret) {
        if (len != CONTROL_BALLOON_REQUEST_SIZE)
                return -EBADMSG;
        *ret = get_le64(buf);
        return 0;
}

size_t control_balloon_stats_request_encode(uint32_t timeout_ms, void *buf) {
        uint8_t *p = buf;

        put_le32(p, timeout_ms);
        put_le32(p + 4, 0);
        return CONTROL_BALLOON_STATS_REQUEST_SIZE;
}

int control_balloon_stats_request_decode(const void *buf, size_t len, uint32_t *ret_timeout_ms) {
        const uint8_t *p = buf;

        if (len != CONTROL_BALLOON_STATS_REQUEST_SIZE)
                return -EBADMSG;
        if (get_le32(p + 4) != 0)
                return -EINVAL;
        *ret_timeout_ms = get_le32(p);
        return 0;
}

static const char *const control_balloon_stat_table[CONTROL_BALLOON_STAT_TAGS] = {
        "swap_in", "swap_out", "major_faults", "minor_faults",
        "free_memory", "total_memory", "available_memory", "disk_caches",
        "hugetlb_allocations", "hugetlb_failures", "oom_kills", "alloc_stalls",
        "async_scans", "direct_scans", "async_reclaims", "direct_reclaims",
};

DEFINE_STRING_TABLE(control_balloon_stat, uint16_t, control_balloon_stat_table)

size_t control_balloon_stats_encode(const ControlBalloonStats *s, void *buf) {
        uint8_t *p = buf;
        uint32_t n = MIN(s->n_stats, (uint32_t) CONTROL_BALLOON_STAT_TAGS);

        put_le64(p + 0, s->target_bytes);
        put_le64(p + 8, s->actual_bytes);
        put_le64(p + 16, s->inflated_bytes);
        put_le64(p + 24, s->stats_age_ns);
        put_le32(p + 32, s->flags);
        put_le32(p + 36, n);
        for (uint32_t i = 0; i < n; i++) {
                uint8_t *e = p + CONTROL_BALLOON_STATS_HEADER_SIZE + (size_t) i * CONTROL_BALLOON_STAT_ENTRY_SIZE;

                put_le16(e, s->stats[i].tag);
                put_le16(e + 2, 0);
                put_le32(e + 4, 0);
                put_le64(e + 8, s->stats[i].value);
        }
        return CONTROL_BALLOON_STATS_HEADER_SIZE + (size_t) n * CONTROL_BALLOON_STAT_ENTRY_SIZE;
}

int control_balloon_stats_decode(const void *buf, size_t len, ControlBalloonStats *ret) {
        const uint8_t *p = buf;
        ControlBalloonStats s = {};
        uint32_t n;

        if (len < CONTROL_BALLOON_STATS_HEADER_SIZE)
                return -EBADMSG;
        n = get_le32(p + 36);
        /* Checked without multiplying a peer's count into an overflow. */
        if (n > (len - CONTROL_BALLOON_STATS_HEADER_SIZE) / CONTROL_BALLOON_STAT_ENTRY_SIZE)
                return -EBADMSG;

        s.target_bytes = get_le64(p + 0);
        s.actual_bytes = get_le64(p + 8);
        s.inflated_bytes = get_le64(p + 16);
        s.stats_age_ns = get_le64(p + 24);
        s.flags = get_le32(p + 32);
        s.n_stats = MIN(n, (uint32_t) CONTROL_BALLOON_STAT_TAGS);
        for (uint32_t i = 0; i < s.n_stats; i++) {
                const uint8_t *e = p + CONTROL_BALLOON_STATS_HEADER_SIZE + (size_t) i * CONTROL_BALLOON_STAT_ENTRY_SIZE;

                s.stats[i].tag = get_le16(e);
                s.stats[i].value = get_le64(e + 8);
        }
        *ret = s;
        return 0;
}
