/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The VMM end of the control socket (docs/control-protocol.md): accepts
 * clients on a listening AF_UNIX SOCK_SEQPACKET socket, validates every
 * datagram, calls the VMM through ControlOps and replies. Runs on the VMM's
 * event loop (event-loop.h); malformed input yields an error reply, never
 * a crash, and the connection stays usable. */

#include "common/control.h"
#include "vmm/event-loop.h"
#include "common/macro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ControlServer ControlServer;

/* Called on the event loop thread. Return 0 or a negative errno, which is
 * relayed to the client as the reply's status. Codes the CLI explains:
 * -EALREADY (already in the requested state), -EPERM (the current state does
 * not allow it, e.g. pause while starting), -ESHUTDOWN (the VM is stopping).
 * A NULL op answers -EOPNOTSUPP. Ops must not free the server:
 * stop should only begin the power-off (e.g. event_loop_exit()); its reply is
 * sent as soon as it returns, before the loop can end. */
/* What subscribers are told: a snapshot the server compares with what each
 * subscribed connection last heard, so events are never lost, duplicated
 * or out of order whatever the number of changes between two pushes. */
typedef struct ControlStatus {
        ControlReady ready;     /* state, vcpus, memory, cid, devices */
        uint32_t panics;        /* guest panics so far */
        uint32_t panic_events;  /* the pvpanic bits of the last one */
        uint32_t panic_action;  /* ControlPanicAction */
        /* Per READY device: how many times it went NEEDS_RESET, and why
         * the last time (the device's string, valid while it lives). */
        uint32_t device_errors[CONTROL_READY_DEVICES_MAX];
        const char *device_reasons[CONTROL_READY_DEVICES_MAX];
        /* The balloon, when there is one: the size last asked for and
         * the one the driver reports. */
        bool balloon;
        uint64_t balloon_target, balloon_actual;
} ControlStatus;

typedef struct ControlOps {
        /* ret->pid is preset to getpid(); the rest is zero. */
        int (*info)(void *userdata, ControlInfo *ret);
        int (*pause)(void *userdata);
        int (*resume)(void *userdata);
        int (*stop)(void *userdata);
        /* The snapshot events are made of; without it, subscribe answers
         * -EOPNOTSUPP. */
        int (*status)(void *userdata, ControlStatus *ret);

        /* 16-31: block devices. disk_resize: -ENODEV for an index past the
         * VM's disks, -EROFS for a read-only one, -EINVAL for a size that is
         * not a positive multiple of 512, or the error of ftruncate(). */
        int (*disk_resize)(void *userdata, uint32_t index, uint64_t size_bytes);

        /* 32-47: the balloon; -ENODEV when the VM has none. None of them
         * blocks: balloon-stats is answered asynchronously.
         * balloon_stats_request: with timeout_ms > 0 (<= 3 s) asks the guest
         * for fresh statistics and returns 1 when they are worth waiting
         * for, 0 otherwise; *ret_cookie names "now" for the fresh flag.
         * balloon_stats: the statistics at hand, FRESH when newer than the
         * cookie; returns 1 when a request of that cookie need wait no
         * longer (fresh ones came, or none can come), 0 when it may wait.
         * balloon_stats_fd: an fd (not the server's) that turns readable
         * (an eventfd, read to reset) when balloon_stats' answer may have
         * changed; without it, requests never wait. */
        int (*balloon)(void *userdata, uint64_t size_bytes);
        int (*balloon_stats_request)(void *userdata, uint32_t timeout_ms, uint64_t *ret_cookie);
        int (*balloon_stats)(void *userdata, uint64_t cookie, ControlBalloonStats *ret);
        int (*balloon_stats_fd)(void *userdata);
} ControlOps;

/* listen_fd: a listening SOCK_SEQPACKET socket (see control_listen()), or -1
 * for a server that only serves connections given by
 * control_server_add_connection(). On success the server owns listen_fd
 * (made non-blocking) and closes it when freed; on failure the caller keeps
 * it. ops and e must outlive the server. */
int control_server_new(EventLoop *e, int listen_fd, const ControlOps *ops, void *userdata, ControlServer **ret);

/* Closes every connection and the listening socket. Does not unlink the
 * socket path: the caller bound it and removes it. Accepts NULL. */
ControlServer *control_server_free(ControlServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ControlServer *, control_server_free);

/* Serves an already-connected SOCK_SEQPACKET socket (e.g. one end of a
 * socketpair the daemon handed over). Takes ownership of fd on success.
 * Such a connection is trusted: it does not count against
 * CONTROL_CONNECTIONS_MAX (that limit applies to clients accepted on the
 * listening socket, which must also come from the server's owner uid or
 * root) and is never closed for idling. */
int control_server_add_connection(ControlServer *s, int fd);

/* Accepted clients that send no complete request for this long are
 * disconnected (CONTROL_IDLE_TIMEOUT_MS by default). */
/* Sends each subscribed connection the events that bring it up to date
 * with ops->status(): ready (once the VM left "starting"), guest-panic,
 * state-changed. Call it whenever the status may have changed; extra calls
 * send nothing. */
void control_server_push_events(ControlServer *s);

/* The last word: balloon-stats requests still waiting are answered with
 * the statistics at hand, then, after a final push, `exiting` goes to
 * every subscribed connection. Nothing is pushed after it. */
void control_server_send_exiting(ControlServer *s, int exit_code, const char *reason);

void control_server_set_idle_timeout(ControlServer *s, uint64_t timeout_ms);

unsigned control_server_n_connections(const ControlServer *s);

/* socket + bind + listen, SOCK_SEQPACKET|SOCK_CLOEXEC|SOCK_NONBLOCK; the
 * socket file is mode 0600 whatever the umask. A socket
 * file left at path by a dead VMM is replaced; -EADDRINUSE if something
 * answers on it or path exists and is not a socket. */
int control_listen(const char *path, int *ret_fd);

#ifdef __cplusplus
}
#endif
