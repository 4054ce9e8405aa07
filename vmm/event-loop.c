/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmm/event-loop.h"

/* A source freed while its loop dispatches is only marked dead and
 * unlinked after the batch, so that a callback may free any source,
 * its own or one whose event is further down the same batch. */
struct EventSource {
        EventLoop *loop;
        int fd;
        uint32_t events;
        bool enabled;
        bool dead;
        EventIoHandler handler;
        void *userdata;
        EventSource *next;
};

struct EventLoop {
        int epoll_fd;
        bool exiting;
        int exit_code;
        unsigned dispatching;
        EventSource *sources;
};

#define EVENT_BATCH 16

int event_loop_new(EventLoop **ret) {
        EventLoop *e;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (e->epoll_fd < 0) {
                int r = -errno;

                free(e);
                return r;
        }
        *ret = e;
        return 0;
}

static void reap_dead(EventLoop *e) {
        for (EventSource **p = &e->sources; *p;) {
                EventSource *s = *p;

                if (!s->dead) {
                        p = &s->next;
                        continue;
                }
                *p = s->next;
                free(s);
        }
}

EventLoop *event_loop_free(EventLoop *e) {
        if (!e)
                return NULL;
        for (EventSource *s = e->sources; s; s = s->next)
                s->dead = true;
        reap_dead(e);
        safe_close(e->epoll_fd);
        free(e);
        return NULL;
}

int event_add_io(EventLoop *e, EventSource **ret, int fd, uint32_t events, EventIoHandler handler,
                 void *userdata) {
        EventSource *s;

        if (!e || fd < 0 || !handler)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (EventSource) {
                .loop = e, .fd = fd, .events = events, .enabled = true,
                .handler = handler, .userdata = userdata,
        };
        if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &(struct epoll_event) { .events = events, .data.ptr = s }) < 0) {
                int r = -errno;

                free(s);
                return r;
        }
        s->next = e->sources;
        e->sources = s;
        if (ret)
                *ret = s;
        return 0;
}

int event_source_set_enabled(EventSource *s, bool enabled) {
        if (!s || s->dead)
                return -EINVAL;
        if (s->enabled == enabled)
                return 0;
        /* Removed, not just given no events: epoll reports EPOLLHUP even
         * then, and a hung-up stdin would spin the loop. */
        if (enabled ? epoll_ctl(s->loop->epoll_fd, EPOLL_CTL_ADD, s->fd,
                                &(struct epoll_event) { .events = s->events, .data.ptr = s }) < 0
                    : epoll_ctl(s->loop->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL) < 0)
                return -errno;
        s->enabled = enabled;
        return 0;
}

EventSource *event_source_free(EventSource *s) {
        if (!s)
                return NULL;
        (void) event_source_set_enabled(s, false);
        s->dead = true;
        if (s->loop->dispatching == 0)
                reap_dead(s->loop);
        return NULL;
}

int event_loop_run(EventLoop *e, int timeout_ms) {
        struct epoll_event ev[EVENT_BATCH];
        int n;

        n = epoll_wait(e->epoll_fd, ev, EVENT_BATCH, timeout_ms);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;

        e->dispatching++;
        for (int i = 0; i < n; i++) {
                EventSource *s = ev[i].data.ptr;
                int r;

                /* Freed or switched off by an earlier callback of this batch. */
                if (s->dead || !s->enabled)
                        continue;
                r = s->handler(s, s->fd, ev[i].events, s->userdata);
                if (r < 0)
                        (void) event_source_set_enabled(s, false);
        }
        e->dispatching--;
        reap_dead(e);
        return 0;
}

int event_loop_loop(EventLoop *e) {
        int r;

        while (!e->exiting) {
                r = event_loop_run(e, -1);
                if (r < 0)
                        return r;
        }
        return e->exit_code;
}

void event_loop_exit(EventLoop *e, int code) {
        e->exiting = true;
        e->exit_code = code;
}
