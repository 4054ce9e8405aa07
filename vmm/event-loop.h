/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The VMM main thread's event loop: descriptors watched with epoll, one
 * callback each. Signals come as a signalfd the caller watches like any
 * descriptor. It replaces sd-event in the VMM, whose library (libsystemd
 * and its compression and crypto dependencies) cost about 1 MiB of Rss
 * (bench/README.md). Single-threaded: a loop and its sources belong to
 * the thread that runs it. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "common/macro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct EventLoop EventLoop;
typedef struct EventSource EventSource;

/* revents: the EPOLL* bits that fired. A negative return disables the
 * source, as in sd-event. */
typedef int (*EventIoHandler)(EventSource *s, int fd, uint32_t revents, void *userdata);

int event_loop_new(EventLoop **ret);
/* Frees the sources still attached; does not close their descriptors.
 * Accepts NULL. */
EventLoop *event_loop_free(EventLoop *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventLoop *, event_loop_free);

/* Watches fd (EPOLLIN, EPOLLOUT ...), enabled. fd stays the caller's.
 * ret may be NULL: the source then lives as long as the loop. -EPERM
 * for a descriptor epoll refuses (a regular file, /dev/null). */
int event_add_io(EventLoop *e, EventSource **ret, int fd, uint32_t events, EventIoHandler handler,
                 void *userdata);

/* Safe from any callback, the source's own included. */
int event_source_set_enabled(EventSource *s, bool enabled);
/* Detaches and frees; safe from any callback, the source's own included.
 * Accepts NULL. */
EventSource *event_source_free(EventSource *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventSource *, event_source_free);

/* Waits up to timeout_ms (-1: forever) and dispatches what is ready.
 * 0, or a negative errno when epoll_wait fails. */
int event_loop_run(EventLoop *e, int timeout_ms);
/* Runs until event_loop_exit(); returns its code. */
int event_loop_loop(EventLoop *e);
void event_loop_exit(EventLoop *e, int code);

#ifdef __cplusplus
}
#endif
