/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-vsock (virtio 1.2 §5.10) in userspace: stream sockets between the
 * guest and host programs over Unix sockets, the Firecracker way (see
 * vsock.h). Everything here runs on the device's worker thread, except
 * create/destroy (VM build and end) and activate/reset (worker stopped, on
 * a vCPU thread: no descriptor work there, see vsock_stop).
 *
 * Data paths, without copies in the common case:
 *   guest -> host: a tx packet's payload is written to the host socket
 *     straight from guest memory (writev); what the socket does not take
 *     goes to the connection's ring buffer, at most VSOCK_BUF_ALLOC bytes
 *     because that is the credit the guest got (§5.10.6.3).
 *   host -> guest: read from the host socket straight into a receive
 *     buffer (readv), only while the guest has credit and buffers; else the
 *     socket is simply not read, so the host program blocks, never us.
 *
 * Connections are keyed by (host port, guest port) in a hash table, at most
 * max_connections of them. Connection sockets, the listener and the host
 * programs still sending their CONNECT line sit in the device's own epoll
 * set (edge-triggered), which is the one fd the framework's worker
 * watches: there may be many more connections than the framework's
 * VIRTIO_MAX_WATCHED_FDS.
 *
 * The event queue (§5.10.6.7): its buffers stay in the ring until there is
 * an event. The one event, TRANSPORT_RESET, tells the driver that streams
 * it may believe in are gone: we owe it after a device reset that closed
 * connections, and send it once the reactivated driver posts a buffer. The
 * CID is fixed for the device's life, so it never changes under a driver. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/virtio/device.h"
#include "vmm/devices/vsock.h"

_Static_assert(sizeof(VsockHdr) == VSOCK_HDR_SIZE, "virtio_vsock_hdr is 44 bytes (§5.10.6)");

#define VSOCK_HASH_BUCKETS 1024
#define VSOCK_MAX_IOV 64
#define VSOCK_EPOLL_BATCH 64

typedef enum WatchKind {
        WATCH_LISTENER,
        WATCH_ACCEPT,
        WATCH_CONN,
} WatchKind;

typedef enum ConnState {
        CONN_HOST_CONNECTING,   /* host-initiated: REQUEST sent, waiting for the guest's RESPONSE */
        CONN_ESTABLISHED,
} ConnState;

/* What a connection still has to tell the guest, in this order. */
enum {
        PENDING_REQUEST = 1 << 0,
        PENDING_RESPONSE = 1 << 1,
        PENDING_CREDIT_REQUEST = 1 << 2,
        PENDING_CREDIT_UPDATE = 1 << 3,
};

typedef struct Conn Conn;

struct Conn {
        WatchKind kind;         /* first: epoll data points here */
        uint32_t local_port;    /* the host side's port */
        uint32_t peer_port;     /* the guest's port */
        int fd;
        ConnState state;
        unsigned pending;
        bool host_readable, host_writable, host_eof;
        bool host_hup;          /* epoll saw the peer hang up: read until EOF */
        bool guest_shut_send, guest_shut_rcv;   /* the guest's SHUTDOWN flags */
        bool host_shut_wr;      /* we shut down the host socket's write side */
        bool credit_requested;  /* a CREDIT_REQUEST went out and credit is still 0 */

        /* guest -> host */
        uint8_t *buf;           /* ring of VSOCK_BUF_ALLOC, allocated when first needed */
        uint32_t buf_head, buf_len;
        uint32_t rx_cnt;        /* payload bytes received from the guest */
        uint32_t fwd_cnt;       /* of which written to the host socket */
        uint32_t fwd_cnt_sent;  /* the fwd_cnt the guest last saw */

        /* host -> guest */
        uint32_t tx_cnt;        /* payload bytes sent to the guest */
        uint32_t peer_buf_alloc, peer_fwd_cnt;

        Conn *hash_next;
        Conn *pend_prev, *pend_next;
        bool in_pending;
};

typedef struct PendingAccept {
        WatchKind kind;
        int fd;
        unsigned len;
        char line[VSOCK_CONNECT_LINE_MAX];
} PendingAccept;

typedef struct Vsock {
        VirtioDevice *vdev;
        uint64_t cid;
        char *path;             /* PATH: we listen there */
        unsigned max_connections;

        char *dir;              /* where PATH_P are: PATH's directory (NULL: the cwd), or its
                                 * bind mount in the jail (vsock_jail_dir) */
        char *base;             /* PATH's last component */
        WatchKind listener_kind;
        int listen_fd;
        uid_t owner_uid;        /* who may connect to PATH besides root: our uid before the jail */
        int epoll_fd;           /* connections, listener, pending accepts */

        /* Set by activate. */
        VirtQueue *rxq, *txq, *evq;
        bool active;
        /* A reset closed connections: TRANSPORT_RESET is owed to the
         * driver (kept across reset, cleared once delivered). */
        bool transport_reset_pending;

        Conn *buckets[VSOCK_HASH_BUCKETS];
        unsigned n_conns;
        Conn *pend_head, *pend_tail;
        uint32_t next_local_port;
        PendingAccept accepts[VSOCK_MAX_PENDING_ACCEPTS];

        /* Packets for no connection (RSTs), a ring; sized so that every
         * connection can be reset at once plus the guest's noise. */
        VsockHdr *ctl;
        unsigned ctl_cap, ctl_head, ctl_len;

        VsockStats stats;       /* __atomic */
        VirtioChain chain;      /* big: kept off the worker's stack */
        /* A receive chain popped but not filled (the socket had nothing
         * after all): the next packet takes it. */
        VirtioChain rx_chain;
        bool rx_held;
} Vsock;

static void stat_inc(uint64_t *counter) {
        __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

uint32_t vsock_peer_credit(uint32_t buf_alloc, uint32_t tx_cnt, uint32_t fwd_cnt) {
        uint32_t in_flight = tx_cnt - fwd_cnt; /* u32 wrap is the protocol's */

        if (in_flight > buf_alloc)
                return 0;
        return buf_alloc - in_flight;
}

int vsock_parse_connect_line(const char *line, uint32_t *ret_port) {
        uint64_t v;
        int r;

        if (strncmp(line, "CONNECT ", 8) != 0)
                return -EINVAL;
        r = parse_uint(line + 8, 0, UINT32_MAX, &v);
        if (r < 0)
                return -EINVAL;
        *ret_port = (uint32_t) v;
        return 0;
}

int vsock_parse_option(const char *arg, uint64_t *ret_cid, char **ret_path, unsigned *ret_max_connections) {
        _cleanup_free_ char *copy = NULL, *path = NULL;
        uint64_t cid = 0, max = VSOCK_MAX_CONNECTIONS_DEFAULT;
        bool have_cid = false;
        char *save = NULL;
        const char *slash;
        int r;

        if (!arg)
                return -EINVAL;
        copy = strdup(arg);
        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (strncmp(tok, "cid=", 4) == 0 && !have_cid) {
                        r = parse_uint(tok + 4, VSOCK_CID_MIN, VSOCK_CID_MAX, &cid);
                        if (r < 0)
                                return -EINVAL;
                        have_cid = true;
                } else if (strncmp(tok, "path=", 5) == 0 && !path && tok[5]) {
                        path = strdup(tok + 5);
                        if (!path)
                                return -ENOMEM;
                } else if (strncmp(tok, "max-connections=", 16) == 0) {
                        r = parse_uint(tok + 16, 1, VSOCK_MAX_CONNECTIONS_LIMIT, &max);
                        if (r < 0)
                                return -EINVAL;
                } else
                        return -EINVAL;
        }
        if (!have_cid || !path)
                return -EINVAL;
        /* PATH is bound whole, and PATH_4294967295 connected to whole:
         * both must fit sun_path. */
        slash = strrchr(path, '/');
        if (strlen(path) + 11 >= sizeof(((struct sockaddr_un *) NULL)->sun_path) || (slash && slash[1] == '\0'))
                return -EINVAL;
        *ret_cid = cid;
        *ret_path = TAKE_PTR(path);
        *ret_max_connections = (unsigned) max;
        return 0;
}

/* ---- connections ---- */

static unsigned conn_hash(uint32_t local_port, uint32_t peer_port) {
        uint32_t h = local_port * UINT32_C(0x9e3779b1) ^ peer_port * UINT32_C(0x85ebca6b);

        return (h ^ (h >> 16)) & (VSOCK_HASH_BUCKETS - 1);
}

static Conn *conn_find(Vsock *v, uint32_t local_port, uint32_t peer_port) {
        for (Conn *c = v->buckets[conn_hash(local_port, peer_port)]; c; c = c->hash_next)
                if (c->local_port == local_port && c->peer_port == peer_port)
                        return c;
        return NULL;
}

static void pending_remove(Vsock *v, Conn *c) {
        if (!c->in_pending)
                return;
        if (c->pend_prev)
                c->pend_prev->pend_next = c->pend_next;
        else
                v->pend_head = c->pend_next;
        if (c->pend_next)
                c->pend_next->pend_prev = c->pend_prev;
        else
                v->pend_tail = c->pend_prev;
        c->pend_prev = c->pend_next = NULL;
        c->in_pending = false;
}

static void pending_append(Vsock *v, Conn *c) {
        if (c->in_pending)
                return;
        c->pend_prev = v->pend_tail;
        c->pend_next = NULL;
        if (v->pend_tail)
                v->pend_tail->pend_next = c;
        else
                v->pend_head = c;
        v->pend_tail = c;
        c->in_pending = true;
}

static uint32_t conn_peer_credit(const Conn *c) {
        return vsock_peer_credit(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
}

/* Whether reading the host socket now could give the guest data. */
static bool conn_can_send_data(const Conn *c) {
        return c->state == CONN_ESTABLISHED && c->host_readable && !c->host_eof && !c->guest_shut_rcv &&
               conn_peer_credit(c) > 0;
}

/* Keeps the connection in the list of those with something for the guest
 * exactly when it has: a receive buffer is never taken for nothing. */
static void conn_update_pending(Vsock *v, Conn *c) {
        /* Data waits for credit: ask for it once (§5.10.6.3); asking again
         * before the guest freed space would only ping-pong. */
        if (c->state == CONN_ESTABLISHED && c->host_readable && !c->host_eof && !c->guest_shut_rcv &&
            conn_peer_credit(c) == 0 && !c->credit_requested)
                c->pending |= PENDING_CREDIT_REQUEST;
        if (c->pending || conn_can_send_data(c))
                pending_append(v, c);
        else
                pending_remove(v, c);
}

static void conn_free(Vsock *v, Conn *c) {
        Conn **p = &v->buckets[conn_hash(c->local_port, c->peer_port)];

        while (*p && *p != c)
                p = &(*p)->hash_next;
        if (*p)
                *p = c->hash_next;
        pending_remove(v, c);
        if (c->fd >= 0) {
                (void) epoll_ctl(v->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
                safe_close(c->fd);
        }
        free(c->buf);
        free(c);
        v->n_conns--;
        __atomic_store_n(&v->stats.connections, v->n_conns, __ATOMIC_RELAXED);
}

static int conn_new(Vsock *v, uint32_t local_port, uint32_t peer_port, int fd, ConnState state, Conn **ret) {
        Conn *c;
        unsigned h;

        if (v->n_conns >= v->max_connections) {
                stat_inc(&v->stats.refused_limit);
                return -EMFILE;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Conn) {
                .kind = WATCH_CONN,
                .local_port = local_port,
                .peer_port = peer_port,
                .fd = fd,
                .state = state,
                .host_writable = true,
        };
        /* A Unix socket takes what its send buffer holds (208 KiB by
         * default), less than the credit the guest streams into; past it
         * every payload took a second copy through c->buf (88% of
         * bench/vsock-bench's guest->host bytes). A send buffer the size of
         * the credit lets the kernel hold the window. Best effort: capped by
         * net.core.wmem_max, and the kernel's share stays bounded by it. */
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int) { VSOCK_BUF_ALLOC }, sizeof(int));
        if (epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, fd,
                      &(struct epoll_event) { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c }) < 0) {
                int r = -errno;
                free(c);
                return r;
        }
        h = conn_hash(local_port, peer_port);
        c->hash_next = v->buckets[h];
        v->buckets[h] = c;
        v->n_conns++;
        __atomic_store_n(&v->stats.connections, v->n_conns, __ATOMIC_RELAXED);
        *ret = c;
        return 0;
}

/* A reset for (guest port, host port) that needs no connection: queued
 * for the next receive buffer; dropped when the queue is full (the guest
 * then times out, only under a flood of bad packets). */
static void ctl_queue_rst(Vsock *v, uint64_t src_cid, uint32_t src_port, uint32_t dst_port) {
        if (v->ctl_len >= v->ctl_cap)
                return;
        v->ctl[(v->ctl_head + v->ctl_len) % v->ctl_cap] = (VsockHdr) {
                .src_cid = src_cid,
                .dst_cid = v->cid,
                .src_port = src_port,
                .dst_port = dst_port,
                .type = VSOCK_TYPE_STREAM,
                .op = VSOCK_OP_RST,
        };
        v->ctl_len++;
}

/* Ends a connection with an RST to the guest (§5.10.6.4). */
static void conn_reset(Vsock *v, Conn *c) {
        ctl_queue_rst(v, VSOCK_HOST_CID, c->local_port, c->peer_port);
        conn_free(v, c);
}

static void conn_fill_hdr(const Vsock *v, Conn *c, VsockHdr *h, uint16_t op) {
        *h = (VsockHdr) {
                .src_cid = VSOCK_HOST_CID,
                .dst_cid = v->cid,
                .src_port = c->local_port,
                .dst_port = c->peer_port,
                .type = VSOCK_TYPE_STREAM,
                .op = op,
                .buf_alloc = VSOCK_BUF_ALLOC,
                .fwd_cnt = c->fwd_cnt,
        };
        c->fwd_cnt_sent = c->fwd_cnt;
}

/* Both directions are done: the host socket closes, the guest gets its
 * RST (Linux waits for it after a full SHUTDOWN, §5.10.6.4). */
static bool conn_maybe_finish(Vsock *v, Conn *c) {
        bool host_done = c->host_eof || c->guest_shut_rcv;

        if (c->guest_shut_send && c->buf_len == 0 && !c->host_shut_wr) {
                (void) shutdown(c->fd, SHUT_WR);
                c->host_shut_wr = true;
        }
        if (c->guest_shut_send && c->buf_len == 0 && host_done) {
                conn_reset(v, c);
                return true;
        }
        return false;
}

/* After bytes reached the host: tell the guest once it believes a quarter
 * of our buffer is in use, so a streaming sender never stalls on credit
 * (one update per 128 KiB at most) and a waiting one resumes. */
static void conn_check_credit_update(Conn *c) {
        if (c->fwd_cnt != c->fwd_cnt_sent && c->rx_cnt - c->fwd_cnt_sent >= VSOCK_BUF_ALLOC / 4)
                c->pending |= PENDING_CREDIT_UPDATE;
}

/* Writes buffered guest data to the host socket. false: the connection
 * was reset (and freed). */
static bool conn_flush(Vsock *v, Conn *c) {
        while (c->buf_len > 0 && c->host_writable) {
                struct iovec iov[2];
                unsigned n = 0;
                uint32_t first = MIN(c->buf_len, VSOCK_BUF_ALLOC - c->buf_head);
                ssize_t k;

                iov[n++] = (struct iovec) { c->buf + c->buf_head, first };
                if (first < c->buf_len)
                        iov[n++] = (struct iovec) { c->buf, c->buf_len - first };
                k = sendmsg(c->fd, &(struct msghdr) { .msg_iov = iov, .msg_iovlen = n }, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                c->host_writable = false;
                                break;
                        }
                        conn_reset(v, c);
                        return false;
                }
                c->buf_head = (uint32_t) ((c->buf_head + (uint32_t) k) % VSOCK_BUF_ALLOC);
                c->buf_len -= (uint32_t) k;
                c->fwd_cnt += (uint32_t) k;
        }
        conn_check_credit_update(c);
        return true;
}

/* ---- host side: connecting, accepting ---- */

/* "DIR/BASE_port" (or "BASE_port" without DIR) in sun_path. */
static int vsock_host_address(const char *dir, const char *base, uint32_t port, struct sockaddr_un *ret) {
        int n;

        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        n = snprintf(ret->sun_path, sizeof(ret->sun_path), "%s%s%s_%" PRIu32, dir ?: "", dir ? "/" : "", base, port);
        if (n < 0 || (size_t) n >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;
        return 0;
}

/* Reaches PATH_port by an absolute path: once jailed, the jail's own bind
 * mount of PATH's directory (vsock_jail_dir), so the process never holds
 * a host directory or changes its cwd. */
static int vsock_connect_host(Vsock *v, uint32_t port, int *ret) {
        struct sockaddr_un sa;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = vsock_host_address(v->dir, v->base, port, &sa);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A Unix stream connect either completes or fails; EAGAIN (the
         * listener's backlog is full) is a refusal too. */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

static void accept_close(Vsock *v, PendingAccept *a) {
        (void) epoll_ctl(v->epoll_fd, EPOLL_CTL_DEL, a->fd, NULL);
        a->fd = safe_close(a->fd);
        a->len = 0;
}

static void vsock_accept(Vsock *v) {
        for (;;) {
                int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                PendingAccept *a = NULL;

                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        return; /* EAGAIN, or the peer went already */
                }
                if (!peer_uid_is_allowed(fd, v->owner_uid)) {
                        /* Closed before its CONNECT line is read. */
                        safe_close(fd);
                        continue;
                }
                for (unsigned i = 0; i < VSOCK_MAX_PENDING_ACCEPTS; i++)
                        if (v->accepts[i].fd < 0) {
                                a = &v->accepts[i];
                                break;
                        }
                if (!a) {
                        safe_close(fd);
                        continue;
                }
                a->kind = WATCH_ACCEPT;
                a->fd = fd;
                a->len = 0;
                if (epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, fd,
                              &(struct epoll_event) { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = a }) < 0)
                        accept_close(v, a);
        }
}

static uint32_t vsock_alloc_local_port(Vsock *v, uint32_t peer_port) {
        for (;;) {
                uint32_t p = v->next_local_port++;

                if (v->next_local_port < VSOCK_LOCAL_PORT_BASE || v->next_local_port == UINT32_MAX)
                        v->next_local_port = VSOCK_LOCAL_PORT_BASE;
                if (!conn_find(v, p, peer_port))
                        return p;
        }
}

/* A host program's CONNECT line, read byte by byte so that nothing after
 * the newline (the start of its stream) is taken from the socket. */
static void accept_read(Vsock *v, PendingAccept *a) {
        for (;;) {
                char ch;
                ssize_t k = read(a->fd, &ch, 1);
                uint32_t port;
                Conn *c;
                int fd;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return;
                if (k <= 0) {
                        accept_close(v, a);
                        return;
                }
                if (ch != '\n') {
                        if (a->len + 1 >= sizeof(a->line)) {
                                accept_close(v, a);
                                return;
                        }
                        a->line[a->len++] = ch;
                        continue;
                }
                a->line[a->len] = '\0';
                if (vsock_parse_connect_line(a->line, &port) < 0) {
                        accept_close(v, a);
                        return;
                }
                (void) epoll_ctl(v->epoll_fd, EPOLL_CTL_DEL, a->fd, NULL);
                fd = a->fd;
                a->fd = -EBADF;
                a->len = 0;
                if (conn_new(v, vsock_alloc_local_port(v, port), port, fd, CONN_HOST_CONNECTING, &c) < 0) {
                        safe_close(fd);
                        return;
                }
                /* Data the program sent after its line waits in the socket
                 * until the guest accepts. */
                c->pending |= PENDING_REQUEST;
                conn_update_pending(v, c);
                return;
        }
}

/* ---- guest -> host: the transmit queue ---- */

/* A payload for an established connection: straight to the host socket
 * when nothing is buffered, the rest into the buffer. false: reset. */
static bool conn_take_payload(Vsock *v, Conn *c, VirtioReader *r, uint32_t len) {
        struct iovec iov[VSOCK_MAX_IOV];
        uint32_t done = 0;
        int n;

        if (c->guest_shut_send) {
                /* §5.10.6.5: no data after SHUTDOWN(SEND). */
                conn_reset(v, c);
                return false;
        }
        c->rx_cnt += len;
        if (c->buf_len == 0 && c->host_writable && !c->host_shut_wr) {
                VirtioReader peek = *r;

                n = virtio_reader_iov(&peek, len, iov, ARRAY_SIZE(iov));
                if (n > 0) {
                        ssize_t k;

                        do
                                k = sendmsg(c->fd, &(struct msghdr) { .msg_iov = iov, .msg_iovlen = (size_t) n },
                                            MSG_NOSIGNAL);
                        while (k < 0 && errno == EINTR);
                        if (k < 0 && errno != EAGAIN) {
                                conn_reset(v, c);
                                return false;
                        }
                        if (k < 0)
                                c->host_writable = false;
                        else
                                done = (uint32_t) k;
                }
                /* n == -E2BIG (a chain of many tiny buffers): buffer it all. */
        }
        (void) virtio_reader_skip(r, done);
        c->fwd_cnt += done;
        len -= done;
        if (len > 0) {
                uint32_t tail, first;

                /* §5.10.6.3: the guest may send only what we gave credit
                 * for; more than fits our buffer is a protocol violation. */
                if (len > VSOCK_BUF_ALLOC - c->buf_len) {
                        stat_inc(&v->stats.bad_packets);
                        conn_reset(v, c);
                        return false;
                }
                if (!c->buf) {
                        c->buf = malloc(VSOCK_BUF_ALLOC);
                        if (!c->buf) {
                                conn_reset(v, c);
                                return false;
                        }
                }
                tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
                first = MIN(len, VSOCK_BUF_ALLOC - tail);
                (void) virtio_reader_read(r, c->buf + tail, first);
                (void) virtio_reader_read(r, c->buf, len - first);
                c->buf_len += len;
        }
        conn_check_credit_update(c);
        return true;
}

static void vsock_handle_request(Vsock *v, const VsockHdr *h) {
        Conn *c;
        int fd = -EBADF, r;

        if (conn_find(v, h->dst_port, h->src_port)) {
                /* A second REQUEST for a live stream: the guest is confused;
                 * answer RST and keep the live one. */
                ctl_queue_rst(v, VSOCK_HOST_CID, h->dst_port, h->src_port);
                return;
        }
        if (v->n_conns >= v->max_connections) {
                stat_inc(&v->stats.refused_limit);
                ctl_queue_rst(v, VSOCK_HOST_CID, h->dst_port, h->src_port);
                return;
        }
        r = vsock_connect_host(v, h->dst_port, &fd);
        if (r < 0) {
                ctl_queue_rst(v, VSOCK_HOST_CID, h->dst_port, h->src_port);
                return;
        }
        r = conn_new(v, h->dst_port, h->src_port, fd, CONN_ESTABLISHED, &c);
        if (r < 0) {
                safe_close(fd);
                ctl_queue_rst(v, VSOCK_HOST_CID, h->dst_port, h->src_port);
                return;
        }
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
        c->pending |= PENDING_RESPONSE;
        conn_update_pending(v, c);
}

/* The host program learns its port once the guest accepted. The socket is
 * fresh and the line short: it fits the socket buffer. */
static bool conn_host_accepted(Vsock *v, Conn *c) {
        char line[32];
        int n = snprintf(line, sizeof(line), "OK %" PRIu32 "\n", c->local_port);
        ssize_t k;

        do
                k = send(c->fd, line, (size_t) n, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k != n) {
                conn_reset(v, c);
                return false;
        }
        c->state = CONN_ESTABLISHED;
        return true;
}

static void vsock_handle_packet(Vsock *v, const VsockHdr *h, VirtioReader *r) {
        Conn *c;

        /* §5.10.6.1: the driver's source is its own CID. A forged one is
         * dropped: answering would address someone else. */
        if (h->src_cid != v->cid) {
                stat_inc(&v->stats.bad_packets);
                return;
        }
        /* An RST is never answered with an RST (§5.10.6.4). */
        if (h->op == VSOCK_OP_RST && (h->dst_cid != VSOCK_HOST_CID || h->type != VSOCK_TYPE_STREAM)) {
                stat_inc(&v->stats.bad_packets);
                return;
        }
        /* Only the host is reachable; only streams are offered (no
         * VIRTIO_VSOCK_F_SEQPACKET); the payload must be in the chain and
         * within our limit; only known operations. Each gets an RST. */
        if (h->dst_cid != VSOCK_HOST_CID || h->type != VSOCK_TYPE_STREAM || h->len > VSOCK_MAX_PAYLOAD ||
            h->len > virtio_reader_remaining(r) || h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST ||
            (h->op != VSOCK_OP_RW && h->len != 0)) {
                stat_inc(&v->stats.bad_packets);
                c = conn_find(v, h->dst_port, h->src_port);
                if (c && h->dst_cid == VSOCK_HOST_CID)
                        conn_reset(v, c);
                else
                        ctl_queue_rst(v, h->dst_cid, h->dst_port, h->src_port);
                return;
        }

        if (h->op == VSOCK_OP_REQUEST) {
                vsock_handle_request(v, h);
                return;
        }
        c = conn_find(v, h->dst_port, h->src_port);
        if (!c) {
                /* §5.10.6.4: anything for a connection we do not have. */
                if (h->op != VSOCK_OP_RST)
                        ctl_queue_rst(v, VSOCK_HOST_CID, h->dst_port, h->src_port);
                return;
        }
        if (h->op == VSOCK_OP_RST) {
                conn_free(v, c);
                return;
        }
        /* §5.10.6.3: every packet carries the sender's credit. */
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
        if (conn_peer_credit(c) > 0) {
                c->credit_requested = false;
                c->pending &= ~PENDING_CREDIT_REQUEST;
        }

        if (c->state == CONN_HOST_CONNECTING) {
                if (h->op != VSOCK_OP_RESPONSE) {
                        conn_reset(v, c);
                        return;
                }
                if (!conn_host_accepted(v, c))
                        return;
                conn_update_pending(v, c);
                return;
        }

        switch (h->op) {
        case VSOCK_OP_RESPONSE:
                /* Only for a connection we asked for, and only once. */
                conn_reset(v, c);
                return;
        case VSOCK_OP_RW:
                if (!conn_take_payload(v, c, r, h->len))
                        return;
                break;
        case VSOCK_OP_SHUTDOWN:
                if (h->flags & VSOCK_SHUTDOWN_SEND)
                        c->guest_shut_send = true;
                if (h->flags & VSOCK_SHUTDOWN_RCV)
                        c->guest_shut_rcv = true;
                break;
        case VSOCK_OP_CREDIT_REQUEST:
                c->pending |= PENDING_CREDIT_UPDATE;
                break;
        case VSOCK_OP_CREDIT_UPDATE:
                break; /* taken above */
        }
        if (conn_maybe_finish(v, c))
                return;
        conn_update_pending(v, c);
}

static void vsock_rx_run(Vsock *v);
static void vsock_rx_interrupt(Vsock *v);

static void vsock_tx_run(Vsock *v) {
        VirtioChain *ch = &v->chain;
        int r;

        while ((r = virtq_pop(v->txq, ch)) > 0) {
                VsockHdr h;

                /* §5.10.6: every packet starts with the whole header. */
                if (virtio_reader_read(&ch->reader, &h, sizeof(h)) < 0)
                        stat_inc(&v->stats.bad_packets);
                else
                        vsock_handle_packet(v, &h, &ch->reader);
                virtq_push(v->txq, ch, 0);
        }
}

/* ---- host -> guest: the receive queue ---- */

/* Fills one receive chain for c with its next packet; *ret_written is
 * what goes in the used ring (0: the chain was too small for a header).
 * false: c had nothing to send after all and the chain is untouched. */
static bool conn_fill_rx(Vsock *v, Conn *c, VirtioChain *ch, uint32_t *ret_written) {
        struct iovec hdr_iov[VSOCK_HDR_SIZE], data_iov[VSOCK_MAX_IOV];
        VirtioWriter *w = &ch->writer, unused = *w;
        const uint8_t *src;
        VsockHdr h;
        int n_hdr;

        *ret_written = 0;
        n_hdr = virtio_writer_iov(w, sizeof(h), hdr_iov, ARRAY_SIZE(hdr_iov));
        if (n_hdr < 0) {
                /* §5.10.6.2: receive buffers hold at least a header; this
                 * one does not. The packet waits for the next buffer. */
                stat_inc(&v->stats.bad_packets);
                return true;
        }

        if (c->pending & PENDING_REQUEST) {
                c->pending &= ~PENDING_REQUEST;
                conn_fill_hdr(v, c, &h, VSOCK_OP_REQUEST);
        } else if (c->pending & PENDING_RESPONSE) {
                c->pending &= ~PENDING_RESPONSE;
                conn_fill_hdr(v, c, &h, VSOCK_OP_RESPONSE);
        } else if (conn_can_send_data(c)) {
                uint32_t want = MIN(conn_peer_credit(c), MIN((uint32_t) virtio_writer_remaining(w), VSOCK_MAX_PAYLOAD));
                ssize_t k = -1;
                int n = -EMSGSIZE;

                /* A buffer in more pieces than our iovecs: take less. */
                while (want > 0 && (n = virtio_writer_iov(w, want, data_iov, ARRAY_SIZE(data_iov))) == -E2BIG)
                        want /= 2;
                if (n > 0) {
                        do
                                k = readv(c->fd, data_iov, n);
                        while (k < 0 && errno == EINTR);
                }
                if (k > 0) {
                        conn_fill_hdr(v, c, &h, VSOCK_OP_RW);
                        h.len = (uint32_t) k;
                        c->tx_cnt += (uint32_t) k;
                        /* A short read drained the socket: new data raises
                         * a new edge. A hang-up raised its edge already, so
                         * after one we read on until EOF. */
                        if ((size_t) k < want && !c->host_hup)
                                c->host_readable = false;
                } else if (k == 0) {
                        /* The host program shut its sending side: the guest
                         * reads EOF after the data it has (§5.10.6.5). */
                        c->host_eof = true;
                        conn_fill_hdr(v, c, &h, VSOCK_OP_SHUTDOWN);
                        h.flags = VSOCK_SHUTDOWN_SEND;
                } else if (n > 0 && errno != EAGAIN) {
                        /* The host socket failed: this chain carries the RST. */
                        conn_fill_hdr(v, c, &h, VSOCK_OP_RST);
                        stat_inc(&v->stats.rst_sent);
                        conn_free(v, c);
                        c = NULL;
                } else if (n > 0) {
                        /* Readable was stale (the last read took exactly
                         * what was there): no packet. The chain waits for
                         * the next one instead of carrying a credit update
                         * nobody asked for (1 in 75 packets of
                         * vsock-bench's host->guest run did). */
                        c->host_readable = false;
                        *w = unused;
                        conn_update_pending(v, c);
                        return false;
                } else {
                        /* No room past the header: our credit, never
                         * wrong; the data waits for a bigger buffer. */
                        conn_fill_hdr(v, c, &h, VSOCK_OP_CREDIT_UPDATE);
                }
        } else if (c->pending & PENDING_CREDIT_REQUEST) {
                c->pending &= ~PENDING_CREDIT_REQUEST;
                c->credit_requested = true;
                conn_fill_hdr(v, c, &h, VSOCK_OP_CREDIT_REQUEST);
        } else
                conn_fill_hdr(v, c, &h, VSOCK_OP_CREDIT_UPDATE);
        /* Every packet carries our credit: a separate update is moot. */
        if (c)
                c->pending &= ~PENDING_CREDIT_UPDATE;

        src = (const uint8_t *) &h;
        for (int i = 0; i < n_hdr; i++) {
                memcpy(hdr_iov[i].iov_base, src, hdr_iov[i].iov_len);
                src += hdr_iov[i].iov_len;
        }
        *ret_written = (uint32_t) sizeof(h) + h.len;
        if (!c || conn_maybe_finish(v, c))
                return true;
        /* Round robin: a connection with more to say goes to the back. */
        pending_remove(v, c);
        conn_update_pending(v, c);
        return true;
}

static bool ctl_fill_rx(Vsock *v, VirtioChain *ch, uint32_t *ret_written) {
        VsockHdr *h = &v->ctl[v->ctl_head];

        if (virtio_writer_write(&ch->writer, h, sizeof(*h)) < 0) {
                stat_inc(&v->stats.bad_packets);
                *ret_written = 0;
                return false;
        }
        v->ctl_head = (v->ctl_head + 1) % v->ctl_cap;
        v->ctl_len--;
        stat_inc(&v->stats.rst_sent);
        *ret_written = sizeof(*h);
        return true;
}

static void vsock_rx_run(Vsock *v) {
        VirtioChain *ch = &v->rx_chain;
        bool pushed = false;

        while (v->ctl_len > 0 || v->pend_head) {
                uint32_t written;

                if (!v->rx_held) {
                        if (virtq_pop(v->rxq, ch) <= 0)
                                break; /* no buffers: the guest's next kick resumes */
                        v->rx_held = true;
                }
                if (v->ctl_len > 0)
                        (void) ctl_fill_rx(v, ch, &written);
                else if (!conn_fill_rx(v, v->pend_head, ch, &written))
                        continue;
                virtq_push(v->rxq, ch, written);
                v->rx_held = false;
                pushed = true;
        }
        if (pushed || v->rxq->broken)
                vsock_rx_interrupt(v);
}

/* Pushes to the receive queue from the transmit path or a socket need
 * their interrupt too; a broken queue marks the device NEEDS_RESET. */
static void vsock_rx_interrupt(Vsock *v) {
        if (v->rxq->broken)
                virtio_device_set_needs_reset(v->vdev, v->rxq->error);
        else
                virtq_interrupt(v->rxq);
}

/* ---- the event queue ---- */

/* Delivers an owed TRANSPORT_RESET in the driver's next event buffer. A
 * buffer the event does not fit (read-only, or under 4 writable bytes) is
 * handed back empty and the event waits for the next one, as a receive
 * buffer too small for a header does. */
static void vsock_event_run(Vsock *v) {
        VirtioChain *ch = &v->chain;
        bool pushed = false;

        while (v->transport_reset_pending && v->evq && v->evq->enabled && !v->evq->broken) {
                uint32_t id = VSOCK_EVENT_TRANSPORT_RESET; /* le32, x86 only */

                if (virtq_pop(v->evq, ch) <= 0)
                        break;
                pushed = true;
                /* §5.10.6.7: the device writes the event; a buffer with a
                 * driver-readable part is a driver error. */
                if (ch->n_readable > 0 || virtio_writer_write(&ch->writer, &id, sizeof(id)) < 0) {
                        stat_inc(&v->stats.bad_packets);
                        virtq_push(v->evq, ch, 0);
                        continue;
                }
                virtq_push(v->evq, ch, sizeof(id));
                v->transport_reset_pending = false;
                stat_inc(&v->stats.events_sent);
        }
        if (!v->evq || !v->evq->enabled)
                return;
        /* The framework interrupts only for the queue it notified. */
        if (v->evq->broken)
                virtio_device_set_needs_reset(v->vdev, v->evq->error);
        else if (pushed)
                virtq_interrupt(v->evq);
}

/* ---- events ---- */

static void vsock_on_events(void *dev, int fd, uint32_t epoll_events) {
        Vsock *v = dev;
        struct epoll_event ev[VSOCK_EPOLL_BATCH];
        int n;

        n = epoll_wait(v->epoll_fd, ev, ARRAY_SIZE(ev), 0);
        for (int i = 0; i < n; i++) {
                WatchKind *kind = ev[i].data.ptr;

                if (*kind == WATCH_LISTENER) {
                        vsock_accept(v);
                } else if (*kind == WATCH_ACCEPT) {
                        accept_read(v, (PendingAccept *) kind);
                } else {
                        Conn *c = (Conn *) kind;

                        /* Hang-ups and errors show when reading or writing. */
                        if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                                c->host_readable = true;
                        if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                                c->host_hup = true;
                        if (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
                                c->host_writable = true;
                                if (!conn_flush(v, c))
                                        goto next;
                                if (conn_maybe_finish(v, c))
                                        goto next;
                        }
                        conn_update_pending(v, c);
                }
        next:;
        }
        /* Each fd shows once per batch and handling one never frees
         * another, so no event of this batch points at a freed Conn. */
        vsock_rx_run(v);
}

/* ---- device ops ---- */

static void vsock_close_all(Vsock *v) {
        for (unsigned i = 0; i < VSOCK_HASH_BUCKETS; i++)
                while (v->buckets[i])
                        conn_free(v, v->buckets[i]);
        for (unsigned i = 0; i < VSOCK_MAX_PENDING_ACCEPTS; i++)
                if (v->accepts[i].fd >= 0)
                        accept_close(v, &v->accepts[i]);
        v->ctl_head = v->ctl_len = 0;
}

static void vsock_destroy(void *dev) {
        Vsock *v = dev;

        if (!v)
                return;
        vsock_close_all(v);
        safe_close(v->listen_fd);
        safe_close(v->epoll_fd);
        free(v->ctl);
        free(v->dir);
        free(v->path);
        free(v->base);
        free(v);
}

/* --vsock: vsock_parse_option()'s syntax into the typed configuration. */
static int vsock_parse(const char *arg, VmmDevice *ret) {
        _cleanup_free_ char *path = NULL;
        unsigned max;
        uint64_t cid;
        int r;

        r = vsock_parse_option(arg, &cid, &path, &max);
        if (r < 0)
                return r;
        if (strlen(path) > VMM_CONFIG_SOCKET_PATH_MAX)
                return -EINVAL;
        ret->vsock.cid = (uint32_t) cid;
        ret->vsock.max_connections = max;
        strcpy(ret->vsock.path, path);
        return 0;
}

static int vsock_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        Vsock *v;
        const char *slash;
        int r;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->vdev = vdev;
        v->listen_fd = v->epoll_fd = -EBADF;
        for (unsigned i = 0; i < VSOCK_MAX_PENDING_ACCEPTS; i++)
                v->accepts[i].fd = -EBADF;
        v->next_local_port = VSOCK_LOCAL_PORT_BASE;

        v->cid = config->vsock.cid;
        v->max_connections = config->vsock.max_connections;
        v->path = strdup(config->vsock.path);
        if (!v->path) {
                r = -ENOMEM;
                goto fail;
        }
        slash = strrchr(v->path, '/');
        v->base = strdup(slash ? slash + 1 : v->path);
        v->ctl_cap = v->max_connections + 64;
        v->ctl = calloc(v->ctl_cap, sizeof(VsockHdr));
        if (!v->base || !v->ctl) {
                r = -ENOMEM;
                goto fail;
        }

        /* PATH_P live next to PATH ("/" for "/x"). */
        if (slash) {
                v->dir = slash == v->path ? strdup("") : strndup(v->path, (size_t) (slash - v->path));
                if (!v->dir) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        /* Host programs connect through PATH: its owner and root only.
         * Read now, before the jail switches to nobody. */
        v->owner_uid = getuid();
        r = listen_private(v->path, 64, &v->listen_fd);
        if (r < 0)
                goto fail;
        v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (v->epoll_fd < 0) {
                r = -errno;
                goto fail;
        }
        v->listener_kind = WATCH_LISTENER;
        if (epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, v->listen_fd,
                      &(struct epoll_event) { .events = EPOLLIN | EPOLLET, .data.ptr = &v->listener_kind }) < 0) {
                r = -errno;
                goto fail;
        }
        *ret = v;
        return 0;
fail:
        vsock_destroy(v);
        return r;
}

static void vsock_config_read(void *dev, uint32_t offset, void *data, uint32_t size) {
        Vsock *v = dev;
        uint64_t cid = v->cid; /* §5.10.4: le64 guest_cid */

        memcpy(data, (const uint8_t *) &cid + offset, size);
}

static int vsock_activate(void *dev, VirtQueue *queues, uint64_t features) {
        Vsock *v = dev;

        v->rxq = &queues[VSOCK_QUEUE_RX];
        v->txq = &queues[VSOCK_QUEUE_TX];
        v->evq = &queues[VSOCK_QUEUE_EVENT];
        v->active = false;
        /* activate runs on a vCPU thread, whose seccomp role has no
         * epoll_ctl: the worker watches our epoll set on its first run,
         * which this kick makes happen (and which serves host programs
         * that connected before the driver was ready). */
        virtio_device_kick(v->vdev, VSOCK_QUEUE_RX);
        return 0;
}

static void vsock_queue_notify(void *dev, VirtQueue *q) {
        Vsock *v = dev;

        if (!v->active) {
                if (virtio_device_watch_fd(v->vdev, v->epoll_fd, EPOLLIN, vsock_on_events) < 0) {
                        virtio_device_set_needs_reset(v->vdev, "vsock: cannot watch the host sockets");
                        return;
                }
                v->active = true;
        }

        if (q == v->txq) {
                vsock_tx_run(v);
                vsock_rx_run(v);
        } else if (q == v->rxq) {
                /* New receive buffers, or the kick from activate: also
                 * look at the listener and sockets. */
                vsock_on_events(v, v->epoll_fd, 0);
        }
        /* New event buffers, or the first run after a reactivation. */
        vsock_event_run(v);
}

/* On the worker, as it stops for a reset (or the VM's end): a reset
 * device has no connections; host programs see their sockets close. The
 * listener stays. A driver that comes back learns that its streams are
 * gone from TRANSPORT_RESET (§5.10.6.7: it shuts down established
 * connections, keeps listening). This is the worker's job, not reset's:
 * the sockets leave our epoll set with epoll_ctl, which the vCPU thread
 * that resets may not call. */
static void vsock_stop(void *dev) {
        Vsock *v = dev;

        if (v->n_conns > 0)
                v->transport_reset_pending = true;
        vsock_close_all(v);
}

static void vsock_reset(void *dev) {
        Vsock *v = dev;

        /* vsock_stop closed the connections: only the worker makes them,
         * so none came after it. */
        v->rxq = v->txq = v->evq = NULL;
        v->rx_held = false; /* the queue's reset forgets it */
        v->active = false;
}

/* The jail shows the device PATH's directory alone, at jail_path; from now
 * on PATH_P are reached there. Host programs create their PATH_P
 * listeners in that directory while the VM runs: a bind mount shows them. */
static int vsock_jail_dir(void *dev, const char *jail_path) {
        Vsock *v = dev;
        struct sockaddr_un sa;
        char *dir;
        int fd, r;

        /* The longest PATH_P must fit there too. */
        r = vsock_host_address(jail_path, v->base, UINT32_MAX, &sa);
        if (r < 0)
                return r;
        dir = strdup(jail_path);
        if (!dir)
                return -ENOMEM;
        fd = open(v->dir ? (v->dir[0] ? v->dir : "/") : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                free(dir);
                return -errno;
        }
        free(v->dir);
        v->dir = dir;
        return fd;
}

static unsigned vsock_fds(void *dev, int *fds, unsigned max) {
        Vsock *v = dev;
        int mine[] = { v->listen_fd, v->epoll_fd };
        unsigned n = 0;

        for (unsigned i = 0; i < ARRAY_SIZE(mine) && n < max; i++)
                if (mine[i] >= 0)
                        fds[n++] = mine[i];
        return n;
}

VsockStats vsock_device_stats(VirtioDevice *vdev) {
        Vsock *v = virtio_device_state(vdev);
        VsockStats s;

        s.bad_packets = __atomic_load_n(&v->stats.bad_packets, __ATOMIC_RELAXED);
        s.rst_sent = __atomic_load_n(&v->stats.rst_sent, __ATOMIC_RELAXED);
        s.connections = __atomic_load_n(&v->stats.connections, __ATOMIC_RELAXED);
        s.refused_limit = __atomic_load_n(&v->stats.refused_limit, __ATOMIC_RELAXED);
        s.events_sent = __atomic_load_n(&v->stats.events_sent, __ATOMIC_RELAXED);
        return s;
}

const VirtioDeviceOps virtio_vsock_ops = {
        .name = "vsock",
        .option_usage = "cid=N,path=PATH[,max-connections=N]",
        .help = "a virtio-vsock device; guest port P reaches PATH_P, host programs connect through PATH",
        .type = VIRTIO_ID_VSOCK,
        .n_queues = 3,
        .queue_max_size = 256,
        .features = 0, /* §5.10.3: streams only, no SEQPACKET */
        .config_size = 8,
        .seccomp_role = "virtio-vsock",
        .seccomp_policy = "virtio-vsock.policy",
        .parse = vsock_parse,
        .create = vsock_create,
        .destroy = vsock_destroy,
        .config_read = vsock_config_read,
        .activate = vsock_activate,
        .queue_notify = vsock_queue_notify,
        .stop = vsock_stop,
        .reset = vsock_reset,
        .fds = vsock_fds,
        .jail_dir = vsock_jail_dir,
};
