/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The VMM end of the control socket (docs/control-protocol.md): accepts
 * clients on a listening AF_UNIX SOCK_SEQPACKET socket, validates every
 * datagram, calls the VMM through ControlOps and replies. Runs on the VMM's
 * event loop (event-loop.h); malformed input yields an error reply, never
 * a crash, and the connection stays usable. */

#include "control.h"
#include "event-loop.h"
#include "macro.h"

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
typedef struct ControlOps {
        /* ret->pid is preset to getpid(); the rest is zero. */
        int (*info)(void *userdata, ControlInfo *ret);
        int (*pause)(void *userdata);
        int (*resume)(void *userdata);
        int (*stop)(void *userdata);

        /* 16-31: block devices. disk_resize: -ENODEV for an index past the
         * VM's disks, -EROFS for a read-only one, -EINVAL for a size that is
         * not a positive multiple of 512, or the error of ftruncate(). */
        int (*disk_resize)(void *userdata, uint32_t index, uint64_t size_bytes);

        /* 32-47: the balloon; -ENODEV when the VM has none. balloon_stats
         * may block the loop up to timeout_ms (<= 3 s) while the guest
         * refreshes its statistics. */
        int (*balloon)(void *userdata, uint64_t size_bytes);
        int (*balloon_stats)(void *userdata, uint32_t timeout_ms, ControlBalloonStats *ret);
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
 * -EUSERS when CONTROL_CONNECTIONS_MAX clients are connected. */
int control_server_add_connection(ControlServer *s, int fd);

unsigned control_server_n_connections(const ControlServer *s);

/* socket + bind + listen, SOCK_SEQPACKET|SOCK_CLOEXEC|SOCK_NONBLOCK. A socket
 * file left at path by a dead VMM is replaced; -EADDRINUSE if something
 * answers on it or path exists and is not a socket. */
int control_listen(const char *path, int *ret_fd);

#ifdef __cplusplus
}
#endif
