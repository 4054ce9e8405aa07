/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control-server.h"
#include "macro.h"

typedef struct ControlConnection ControlConnection;

struct ControlConnection {
        ControlServer *server;
        int fd;
        EventSource *io;
        ControlConnection *prev, *next;
};

struct ControlServer {
        EventLoop *event;
        int listen_fd;
        EventSource *listen_source;
        /* Set when accept() ran out of fds: the listening socket is then
         * switched off until a connection closes, instead of spinning. */
        bool accept_paused;
        const ControlOps *ops;
        void *userdata;
        ControlConnection *connections;
        unsigned n_connections;
};

/* What each request looks like in this version. Requests have an exact
 * payload size and fd count; anything else is -EBADMSG. */
typedef struct ControlCommand {
        uint32_t request_size;
        size_t n_fds;
        int (*handle)(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len);
} ControlCommand;

static int handle_info(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        ControlInfo info = { .pid = (uint32_t) getpid() };
        int r;

        if (!s->ops->info)
                return -EOPNOTSUPP;
        r = s->ops->info(s->userdata, &info);
        if (r < 0)
                return r;

        *reply_len = (uint32_t) control_info_encode(&info, reply);
        return 0;
}

static int handle_pause(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        int r;

        if (!s->ops->pause)
                return -EOPNOTSUPP;
        r = s->ops->pause(s->userdata);
        return r < 0 ? r : 0;
}

static int handle_resume(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        int r;

        if (!s->ops->resume)
                return -EOPNOTSUPP;
        r = s->ops->resume(s->userdata);
        return r < 0 ? r : 0;
}

static int handle_stop(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        int r;

        if (!s->ops->stop)
                return -EOPNOTSUPP;
        r = s->ops->stop(s->userdata);
        return r < 0 ? r : 0;
}

static int handle_disk_resize(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        uint32_t index;
        uint64_t size;
        int r;

        if (!s->ops->disk_resize)
                return -EOPNOTSUPP;
        r = control_disk_resize_request_decode(request, CONTROL_DISK_RESIZE_REQUEST_SIZE, &index, &size);
        if (r < 0)
                return r;
        r = s->ops->disk_resize(s->userdata, index, size);
        return r < 0 ? r : 0;
}

static int handle_balloon(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        uint64_t size;
        int r;

        if (!s->ops->balloon)
                return -EOPNOTSUPP;
        r = control_balloon_request_decode(request, CONTROL_BALLOON_REQUEST_SIZE, &size);
        if (r < 0)
                return r;
        r = s->ops->balloon(s->userdata, size);
        return r < 0 ? r : 0;
}

static int handle_balloon_stats(ControlServer *s, const uint8_t *request, uint8_t *reply, uint32_t *reply_len) {
        ControlBalloonStats stats = {};
        uint32_t timeout_ms;
        int r;

        if (!s->ops->balloon_stats)
                return -EOPNOTSUPP;
        r = control_balloon_stats_request_decode(request, CONTROL_BALLOON_STATS_REQUEST_SIZE, &timeout_ms);
        if (r < 0)
                return r;
        r = s->ops->balloon_stats(s->userdata, MIN(timeout_ms, (uint32_t) CONTROL_BALLOON_STATS_TIMEOUT_MAX_MS),
                                  &stats);
        if (r < 0)
                return r;
        *reply_len = (uint32_t) control_balloon_stats_encode(&stats, reply);
        return 0;
}

static const ControlCommand control_commands[_CONTROL_TYPE_MAX] = {
        [CONTROL_TYPE_INFO] = { .request_size = 0, .handle = handle_info },
        [CONTROL_TYPE_PAUSE] = { .request_size = 0, .handle = handle_pause },
        [CONTROL_TYPE_RESUME] = { .request_size = 0, .handle = handle_resume },
        [CONTROL_TYPE_STOP] = { .request_size = 0, .handle = handle_stop },
        [CONTROL_TYPE_DISK_RESIZE] = { .request_size = CONTROL_DISK_RESIZE_REQUEST_SIZE,
                                       .handle = handle_disk_resize },
        [CONTROL_TYPE_BALLOON] = { .request_size = CONTROL_BALLOON_REQUEST_SIZE, .handle = handle_balloon },
        [CONTROL_TYPE_BALLOON_STATS] = { .request_size = CONTROL_BALLOON_STATS_REQUEST_SIZE,
                                         .handle = handle_balloon_stats },
};

static void connection_free(ControlConnection *c) {
        ControlServer *s;

        if (!c)
                return;

        s = c->server;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;

        /* The loop allows freeing a source from inside its own callback. */
        event_source_free(c->io);
        safe_close(c->fd);
        free(c);

        if (s->accept_paused && s->listen_source) {
                s->accept_paused = false;
                (void) event_source_set_enabled(s->listen_source, true);
        }
}

/* Validates one datagram, runs the command and sends the reply. Returns a
 * negative errno only when the connection must be dropped (the reply could
 * not be sent). Closes every fd the datagram brought. */
static int connection_process(ControlConnection *c, ControlDatagram *d) {
        ControlServer *s = c->server;
        ControlHeader h = {};
        ControlHeader reply = {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = CONTROL_REPLY | CONTROL_TYPE_NONE,
        };
        uint8_t payload[CONTROL_PAYLOAD_MAX];
        uint32_t payload_len = 0;
        const ControlCommand *cmd = NULL;
        int status = 0, r;

        if (d->truncated || d->fds_truncated)
                status = -EMSGSIZE;

        r = control_header_decode(d->data, d->len, &h);
        if (r < 0)
                status = status ?: r;
        else if (h.magic == CONTROL_MAGIC) {
                /* Attribute the error to the request when we can read it. */
                reply.type = h.type | CONTROL_REPLY;
                reply.id = h.id;
        }

        if (status == 0)
                status = control_header_check(&h, d->len);
        /* A request carries no status, and a reply is no request. */
        if (status == 0 && (h.status != 0 || (h.type & CONTROL_REPLY)))
                status = -EBADMSG;
        if (status == 0) {
                if (h.type < _CONTROL_TYPE_MAX && control_commands[h.type].handle)
                        cmd = &control_commands[h.type];
                else
                        status = -EOPNOTSUPP;
        }
        if (status == 0 && (h.length != cmd->request_size || d->n_fds != cmd->n_fds))
                status = -EBADMSG;

        /* No command of this version takes fds: whatever came is closed here,
         * valid request or not, so a client cannot make us hoard them. */
        control_datagram_close_fds(d);

        if (status == 0)
                status = cmd->handle(s, d->data + CONTROL_HEADER_SIZE, payload, &payload_len);

        reply.status = status;
        reply.length = status == 0 ? payload_len : 0;

        /* The socket is non-blocking: a client that does not read its replies
         * until its queue is full (-EAGAIN) is dropped, not waited for. */
        return control_send(c->fd, &reply, payload, NULL, 0);
}

static int on_connection_io(EventSource *source, int fd, uint32_t revents, void *userdata) {
        ControlConnection *c = userdata;
        ControlDatagram d;
        int r;

        r = control_receive(c->fd, &d);
        if (r == -EAGAIN || r == -EINTR) {
                if (!(revents & EPOLLIN) && (revents & (EPOLLHUP | EPOLLERR)))
                        connection_free(c);
                return 0;
        }
        if (r < 0) {
                connection_free(c);
                return 0;
        }

        r = connection_process(c, &d);
        if (r < 0)
                connection_free(c);

        /* Never return an error: the loop would disable the source for good. */
        return 0;
}

int control_server_add_connection(ControlServer *s, int fd) {
        ControlConnection *c;
        int r;

        if (!s || fd < 0)
                return -EINVAL;
        if (s->n_connections >= CONTROL_CONNECTIONS_MAX)
                return -EUSERS;

        r = fcntl(fd, F_GETFL);
        if (r < 0)
                return -errno;
        if (!(r & O_NONBLOCK) && fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
                return -errno;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        r = event_add_io(s->event, &c->io, fd, EPOLLIN, on_connection_io, c);
        if (r < 0) {
                free(c);
                return r;
        }

        c->server = s;
        c->fd = fd;
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        return 0;
}

unsigned control_server_n_connections(const ControlServer *s) {
        return s ? s->n_connections : 0;
}

static void refuse_connection(int fd, int error) {
        ControlHeader h = {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = CONTROL_REPLY | CONTROL_TYPE_NONE,
                .status = error,
        };

        /* Best effort: the client reads why before it sees the hang-up. */
        (void) control_send(fd, &h, NULL, NULL, 0);
}

static int on_listen(EventSource *source, int fd, uint32_t revents, void *userdata) {
        ControlServer *s = userdata;
        _cleanup_close_ int cfd = -EBADF;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        s->accept_paused = true;
                        (void) event_source_set_enabled(source, false);
                }
                /* EAGAIN, EINTR, ECONNABORTED...: nothing to do. */
                return 0;
        }

        r = control_server_add_connection(s, cfd);
        if (r < 0) {
                refuse_connection(cfd, r);
                return 0;
        }
        TAKE_FD(cfd);
        return 0;
}

int control_server_new(EventLoop *e, int listen_fd, const ControlOps *ops, void *userdata, ControlServer **ret) {
        ControlServer *s;
        int r;

        if (!e || !ops || !ret)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = e;
        s->listen_fd = -EBADF;
        s->ops = ops;
        s->userdata = userdata;

        if (listen_fd >= 0) {
                int flags;

                /* accept() must never block the loop on a spurious wake-up. */
                flags = fcntl(listen_fd, F_GETFL);
                if (flags < 0) {
                        r = -errno;
                        goto fail;
                }
                if (!(flags & O_NONBLOCK) && fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                        r = -errno;
                        goto fail;
                }

                r = event_add_io(e, &s->listen_source, listen_fd, EPOLLIN, on_listen, s);
                if (r < 0)
                        goto fail;
                s->listen_fd = listen_fd;
        }

        *ret = s;
        return 0;

fail:
        /* listen_fd still belongs to the caller here. */
        control_server_free(s);
        return r;
}

ControlServer *control_server_free(ControlServer *s) {
        if (!s)
                return NULL;

        while (s->connections)
                connection_free(s->connections);

        event_source_free(s->listen_source);
        safe_close(s->listen_fd);
        free(s);
        return NULL;
}

/* Something answers on path: a live VMM we must not steal the socket from. */
static bool socket_is_alive(const char *path) {
        _cleanup_close_ int fd = -EBADF;

        return control_connect(path, &fd) >= 0;
}

int control_listen(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t l;

        if (!path || !*path || !ret_fd)
                return -EINVAL;
        l = strlen(path);
        if (l >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, l + 1);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                struct stat st;

                if (errno != EADDRINUSE)
                        return -errno;

                /* Only a socket nobody answers on is stale. connect() to a
                 * regular file also fails (ECONNREFUSED), hence the lstat. */
                if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || socket_is_alive(path))
                        return -EADDRINUSE;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
                if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return -errno;
        }

        if (listen(fd, CONTROL_CONNECTIONS_MAX) < 0) {
                int r = -errno;

                (void) unlink(path);
                return r;
        }

        *ret_fd = TAKE_FD(fd);
        return 0;
}
