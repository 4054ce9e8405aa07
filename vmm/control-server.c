/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/control-server.h"
#include "common/macro.h"
#include "common/util.h"

/* balloon-stats requests waiting for the guest's fresh numbers, all
 * connections together; past it a request is answered at once with the
 * statistics the VMM has, so a client cannot make the VMM hoard them. */
#define CONTROL_STATS_WAITING_MAX 64

typedef struct ControlConnection ControlConnection;
typedef struct ControlWaiting ControlWaiting;

struct ControlConnection {
        ControlServer *server;
        int fd;
        EventSource *io;
        /* Handed over by control_server_add_connection() (the daemon's
         * --control-fd): not counted against CONTROL_CONNECTIONS_MAX and
         * never closed for idling. */
        bool trusted;
        uint64_t idle_deadline_ns;
        /* An event connection (subscribe): what it was told last. */
        bool subscribed;
        bool sent_ready;
        bool sent_exiting;
        uint32_t last_state;
        uint32_t panics_seen;
        uint32_t device_errors_seen[CONTROL_READY_DEVICES_MAX];
        uint64_t balloon_told;          /* the size last told reached (0 at first: nothing to tell) */
        uint32_t event_seq;     /* id of the last event sent */
        ControlConnection *prev, *next;
};

/* A balloon-stats request whose reply waits for fresh statistics or its
 * deadline, while the loop serves everything else. */
struct ControlWaiting {
        ControlConnection *connection;
        uint32_t id;
        uint64_t cookie;
        uint64_t deadline_ns;
        ControlWaiting *next;
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
        unsigned n_clients;     /* untrusted ones: accepted on listen_fd */
        /* Only this uid (the one that created the server, as this process
         * sees it: the daemon's, before the jail drops privileges) and root
         * may talk to us. */
        uid_t owner_uid;
        uint64_t idle_timeout_ns;

        /* One CLOCK_MONOTONIC timerfd for the earliest of the idle and
         * balloon-stats deadlines. */
        int timer_fd;
        EventSource *timer_source;
        uint64_t timer_armed_ns;

        EventSource *stats_source;
        int stats_fd;           /* not ours: ops->balloon_stats_fd() */
        ControlWaiting *waiting;
        unsigned n_waiting;
};

/* What each request looks like in this version. Requests have an exact
 * payload size and fd count; anything else is -EBADMSG. */
typedef struct ControlCommand {
        uint32_t request_size;
        size_t n_fds;
        /* Returns 0 or -errno for the reply, or 1 when the reply is sent
         * later (a waiting balloon-stats). */
        int (*handle)(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request, uint8_t *reply,
                      uint32_t *reply_len);
} ControlCommand;

static int handle_info(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
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

static int handle_pause(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
        int r;

        if (!s->ops->pause)
                return -EOPNOTSUPP;
        r = s->ops->pause(s->userdata);
        return r < 0 ? r : 0;
}

static int handle_resume(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
        int r;

        if (!s->ops->resume)
                return -EOPNOTSUPP;
        r = s->ops->resume(s->userdata);
        return r < 0 ? r : 0;
}

static int handle_stop(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
        int r;

        if (!s->ops->stop)
                return -EOPNOTSUPP;
        r = s->ops->stop(s->userdata);
        return r < 0 ? r : 0;
}

static int handle_subscribe(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                            uint8_t *reply, uint32_t *reply_len) {
        if (!s->ops->status)
                return -EOPNOTSUPP;
        /* Subscribing twice is harmless: the events are a state, not a log.
         * The current state follows the reply (on_connection_io). */
        c->subscribed = true;
        return 0;
}

static int handle_disk_resize(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
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

static int handle_balloon(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
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

static void server_arm_timer(ControlServer *s);

static int handle_balloon_stats(ControlServer *s, ControlConnection *c, uint32_t id, const uint8_t *request,
                       uint8_t *reply, uint32_t *reply_len) {
        ControlBalloonStats stats = {};
        ControlWaiting *w;
        uint32_t timeout_ms;
        uint64_t cookie = 0;
        int r;

        if (!s->ops->balloon_stats || !s->ops->balloon_stats_request)
                return -EOPNOTSUPP;
        r = control_balloon_stats_request_decode(request, CONTROL_BALLOON_STATS_REQUEST_SIZE, &timeout_ms);
        if (r < 0)
                return r;
        timeout_ms = MIN(timeout_ms, (uint32_t) CONTROL_BALLOON_STATS_TIMEOUT_MAX_MS);
        /* Nothing to be notified by, or too many waiting already: the
         * statistics at hand, never a blocked loop. */
        if (!s->stats_source || s->n_waiting >= CONTROL_STATS_WAITING_MAX)
                timeout_ms = 0;
        r = s->ops->balloon_stats_request(s->userdata, timeout_ms, &cookie);
        if (r < 0)
                return r;
        if (r > 0 && timeout_ms > 0) {
                w = calloc(1, sizeof(*w));
                if (!w)
                        return -ENOMEM;
                *w = (ControlWaiting) {
                        .connection = c,
                        .id = id,
                        .cookie = cookie,
                        .deadline_ns = now_ns() + (uint64_t) timeout_ms * 1000000,
                        .next = s->waiting,
                };
                s->waiting = w;
                s->n_waiting++;
                server_arm_timer(s);
                return 1;
        }
        r = s->ops->balloon_stats(s->userdata, cookie, &stats);
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
        [CONTROL_TYPE_SUBSCRIBE] = { .request_size = 0, .handle = handle_subscribe },
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
        if (!c->trusted)
                s->n_clients--;

        /* Its waiting requests have nobody to answer to any more. */
        for (ControlWaiting **p = &s->waiting; *p;) {
                ControlWaiting *w = *p;

                if (w->connection != c) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                s->n_waiting--;
                free(w);
        }

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
                status = cmd->handle(s, c, h.id, d->data + CONTROL_HEADER_SIZE, payload, &payload_len);
        if (status > 0)
                return 0; /* answered later, out of order (see the protocol doc) */

        reply.status = status;
        reply.length = status == 0 ? payload_len : 0;

        /* The socket is non-blocking: a client that does not read its replies
         * until its queue is full (-EAGAIN) is dropped, not waited for. */
        return control_send(c->fd, &reply, payload, NULL, 0);
}

static int connection_send_event(ControlConnection *c, uint16_t type, const void *payload, size_t length) {
        ControlHeader h = {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = type,
                .id = ++c->event_seq,
                .length = (uint32_t) length,
        };

        /* Non-blocking like replies: a subscriber that does not read is
         * dropped rather than waited for. */
        return control_send(c->fd, &h, payload, NULL, 0);
}

/* Brings one subscribed connection up to date. Order: ready first (the
 * VM's description), then a panic, then the state it led to. Returns a
 * negative errno when the connection must be dropped. */
static int connection_push(ControlConnection *c) {
        ControlServer *s = c->server;
        ControlStatus st = {};
        uint8_t payload[CONTROL_READY_MAX_SIZE];
        size_t n;
        int r;

        if (!c->subscribed || c->sent_exiting || !s->ops->status)
                return 0;
        r = s->ops->status(s->userdata, &st);
        if (r < 0 || st.ready.state == CONTROL_STATE_STARTING)
                return 0;
        if (!c->sent_ready) {
                n = control_ready_encode(&st.ready, payload);
                r = connection_send_event(c, CONTROL_EVENT_READY, payload, n);
                if (r < 0)
                        return r;
                c->sent_ready = true;
                c->last_state = st.ready.state;
        }
        if (st.panics > c->panics_seen) {
                n = control_guest_panic_encode(st.panic_events, st.panic_action, payload);
                r = connection_send_event(c, CONTROL_EVENT_GUEST_PANIC, payload, n);
                if (r < 0)
                        return r;
                c->panics_seen = st.panics;
        }
        for (unsigned i = 0; i < st.ready.n_devices; i++) {
                if (st.device_errors[i] <= c->device_errors_seen[i])
                        continue;
                n = control_device_error_encode(&st.ready.devices[i], st.device_reasons[i], payload);
                r = connection_send_event(c, CONTROL_EVENT_DEVICE_ERROR, payload, n);
                if (r < 0)
                        return r;
                c->device_errors_seen[i] = st.device_errors[i];
        }
        /* Reached, and not the size told last (a deflate to 0 is told
         * once something was). */
        if (st.balloon && st.balloon_actual == st.balloon_target && st.balloon_actual != c->balloon_told) {
                n = control_balloon_reached_encode(st.balloon_actual, payload);
                r = connection_send_event(c, CONTROL_EVENT_BALLOON_REACHED, payload, n);
                if (r < 0)
                        return r;
                c->balloon_told = st.balloon_actual;
        }
        if (st.ready.state != c->last_state) {
                n = control_state_changed_encode(st.ready.state, payload);
                r = connection_send_event(c, CONTROL_EVENT_STATE_CHANGED, payload, n);
                if (r < 0)
                        return r;
                c->last_state = st.ready.state;
        }
        return 0;
}

void control_server_push_events(ControlServer *s) {
        bool dropped;

        if (!s)
                return;
        /* One at a time: freeing a connection changes the list. */
        do {
                dropped = false;
                for (ControlConnection *c = s->connections; c; c = c->next)
                        if (connection_push(c) < 0) {
                                connection_free(c);
                                dropped = true;
                                break;
                        }
        } while (dropped);
}

static bool waiting_answer_one(ControlServer *s, uint64_t now);

void control_server_send_exiting(ControlServer *s, int exit_code, const char *reason) {
        uint8_t payload[CONTROL_EXITING_HEADER_SIZE + CONTROL_REASON_MAX];
        size_t n;

        if (!s)
                return;
        /* balloon-stats requests still waiting get the statistics at hand
         * (fresh if the guest answered before it went), not a hang-up. */
        while (waiting_answer_one(s, UINT64_MAX))
                ;
        control_server_push_events(s);
        n = control_exiting_encode(exit_code, reason, payload);
        for (ControlConnection *c = s->connections; c; c = c->next) {
                if (!c->subscribed || c->sent_exiting)
                        continue;
                /* Best effort: the hang-up that follows says the same. */
                (void) connection_send_event(c, CONTROL_EVENT_EXITING, payload, n);
                c->sent_exiting = true;
        }
}

static int on_connection_io(EventSource *source, int fd, uint32_t revents, void *userdata) {
        ControlConnection *c = userdata;
        ControlServer *s = c->server;
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

        /* A complete request, valid or not, shows the client is alive. */
        c->idle_deadline_ns = now_ns() + c->server->idle_timeout_ns;
        r = connection_process(c, &d);
        if (r < 0) {
                connection_free(c);
                return 0;
        }
        server_arm_timer(s);
        /* A new subscriber hears the current state after its reply; a
         * pause or resume is told to every subscriber. */
        control_server_push_events(s);

        /* Never return an error: the loop would disable the source for good. */
        return 0;
}

static int connection_add(ControlServer *s, int fd, bool trusted) {
        ControlConnection *c;
        int r;

        if (!s || fd < 0)
                return -EINVAL;
        if (!trusted && s->n_clients >= CONTROL_CONNECTIONS_MAX)
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
        c->trusted = trusted;
        c->idle_deadline_ns = trusted ? UINT64_MAX : now_ns() + s->idle_timeout_ns;
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        if (!trusted)
                s->n_clients++;
        server_arm_timer(s);
        return 0;
}

int control_server_add_connection(ControlServer *s, int fd) {
        return connection_add(s, fd, true);
}

void control_server_set_idle_timeout(ControlServer *s, uint64_t timeout_ms) {
        s->idle_timeout_ns = timeout_ms * 1000000;
        for (ControlConnection *c = s->connections; c; c = c->next)
                if (!c->trusted)
                        c->idle_deadline_ns = now_ns() + s->idle_timeout_ns;
        server_arm_timer(s);
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

        /* Best effort: the client reads why before it sees the hang-up.
         * What it already sent is read and dropped first: closing a socket
         * with unread data makes the peer's next recv() fail with
         * ECONNRESET before it can read the message. */
        for (unsigned i = 0; i < 4; i++) {
                ControlDatagram d;

                if (control_receive(fd, &d) < 0)
                        break;
                control_datagram_close_fds(&d);
        }
        (void) control_send(fd, &h, NULL, NULL, 0);
}

static void server_arm_timer(ControlServer *s) {
        struct itimerspec its = {};
        uint64_t next = UINT64_MAX;

        for (ControlConnection *c = s->connections; c; c = c->next)
                if (!c->trusted)
                        next = MIN(next, c->idle_deadline_ns);
        for (ControlWaiting *w = s->waiting; w; w = w->next)
                next = MIN(next, w->deadline_ns);
        if (s->timer_fd < 0 || next == s->timer_armed_ns)
                return;
        if (next != UINT64_MAX) {
                /* An all-zero it_value would disarm the timer. */
                next = MAX(next, (uint64_t) 1);
                its.it_value.tv_sec = (time_t) (next / 1000000000);
                its.it_value.tv_nsec = (long) (next % 1000000000);
        }
        if (timerfd_settime(s->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) >= 0)
                s->timer_armed_ns = next;
}

/* Answers the first waiting balloon-stats request that is due: fresh
 * statistics came (or none can come any more), or its time is up. Returns
 * false when none is. */
static bool waiting_answer_one(ControlServer *s, uint64_t now) {
        for (ControlWaiting **p = &s->waiting; *p; p = &(*p)->next) {
                ControlWaiting *w = *p;
                ControlConnection *c = w->connection;
                ControlBalloonStats stats = {};
                uint8_t payload[CONTROL_PAYLOAD_MAX];
                ControlHeader reply = {
                        .magic = CONTROL_MAGIC,
                        .version = CONTROL_VERSION,
                        .type = CONTROL_REPLY | CONTROL_TYPE_BALLOON_STATS,
                        .id = w->id,
                };
                int r;

                r = s->ops->balloon_stats(s->userdata, w->cookie, &stats);
                if (r == 0 && w->deadline_ns > now)
                        continue;

                *p = w->next;
                s->n_waiting--;
                free(w);
                if (r < 0)
                        reply.status = r;
                else
                        reply.length = (uint32_t) control_balloon_stats_encode(&stats, payload);
                if (control_send(c->fd, &reply, payload, NULL, 0) < 0)
                        connection_free(c);
                return true;
        }
        return false;
}

static void waiting_answer(ControlServer *s) {
        uint64_t now = now_ns();

        /* One at a time: a failed send frees the connection and, with it,
         * its other waiting requests. */
        while (waiting_answer_one(s, now))
                ;
}

static int on_stats_event(EventSource *source, int fd, uint32_t revents, void *userdata) {
        ControlServer *s = userdata;
        uint64_t n;

        (void) !read(fd, &n, sizeof(n));
        waiting_answer(s);
        server_arm_timer(s);
        return 0;
}

static int on_timer(EventSource *source, int fd, uint32_t revents, void *userdata) {
        ControlServer *s = userdata;
        uint64_t n, now;
        bool closed;

        (void) !read(fd, &n, sizeof(n));
        s->timer_armed_ns = UINT64_MAX; /* fired: a one-shot */
        waiting_answer(s);

        /* Idle clients go, so that a few cannot hold every slot. */
        now = now_ns();
        do {
                closed = false;
                for (ControlConnection *c = s->connections; c; c = c->next)
                        if (!c->trusted && c->idle_deadline_ns <= now) {
                                connection_free(c);
                                closed = true;
                                break;
                        }
        } while (closed);

        server_arm_timer(s);
        return 0;
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

        if (!peer_uid_is_allowed(cfd, s->owner_uid)) {
                refuse_connection(cfd, -EACCES);
                return 0;
        }

        r = connection_add(s, cfd, false);
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
        /* Read now, before the jail switches to nobody; as this process's
         * user namespace sees it, like SO_PEERCRED's answers later. */
        s->owner_uid = getuid();
        s->idle_timeout_ns = (uint64_t) CONTROL_IDLE_TIMEOUT_MS * 1000000;
        s->timer_armed_ns = UINT64_MAX;
        s->stats_fd = -EBADF;

        /* Made here, before the seccomp policy forbids timerfd_create. */
        s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (s->timer_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = event_add_io(e, &s->timer_source, s->timer_fd, EPOLLIN, on_timer, s);
        if (r < 0)
                goto fail;

        if (ops->balloon_stats_fd) {
                int fd = ops->balloon_stats_fd(userdata);

                if (fd >= 0) {
                        r = event_add_io(e, &s->stats_source, fd, EPOLLIN, on_stats_event, s);
                        if (r < 0)
                                goto fail;
                        s->stats_fd = fd;
                }
        }

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

        event_source_free(s->stats_source);
        event_source_free(s->timer_source);
        safe_close(s->timer_fd);
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
        int r;

        if (!ret_fd)
                return -EINVAL;

        /* The socket file is 0600 whatever the caller's umask. Called
         * before any thread exists, so the process-wide umask cannot race. */
        r = bind_private(path, SOCK_SEQPACKET, &fd);
        if (r == -EADDRINUSE) {
                struct stat st;

                /* Only a socket nobody answers on is stale. connect() to a
                 * regular file also fails (ECONNREFUSED), hence the lstat. */
                if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || socket_is_alive(path))
                        return -EADDRINUSE;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
                r = bind_private(path, SOCK_SEQPACKET, &fd);
        }
        if (r < 0)
                return r;

        if (listen(fd, CONTROL_CONNECTIONS_MAX) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }

        *ret_fd = TAKE_FD(fd);
        return 0;
}
