/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Compositor connections for a jailed majordome-gpu: cross-domain opens one
 * per guest context at any time, and the jail reaches no path. A connector
 * process forked before any jail keeps a handle on the compositor's socket
 * (an O_PATH descriptor, so a path swapped later changes nothing) and, on
 * each request, connects through /proc/self/fd/N with the credentials it
 * was started with (the user's; the daemon checked the caller may connect
 * to that very socket) and sends the connection back. Its seccomp filter
 * allows only that. majordome-vmm forks it before its own jail (whose
 * mount namespace majordome-gpu starts in, without /proc) and hands
 * majordome-gpu the socket; majordome-gpu started alone forks its own.
 * docs/wayland.md. */

#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct WaylandConnector {
        int sock;       /* ours; -1 when none */
        pid_t pid;
} WaylandConnector;

/* Forks the connector for handle (an O_PATH descriptor of the socket,
 * kept open here too). filter: install its seccomp filter (off only with
 * --disable-sandbox). */
int wayland_connector_start(int handle, bool filter, WaylandConnector *ret);
/* A new connected, non-blocking, close-on-exec socket, or a negative
 * errno (the connector's connect() error, -EPIPE when it is gone). */
int wayland_connector_connect(WaylandConnector *c);
/* Whether fd is a connector's socket (the SOCK_SEQPACKET end that
 * wayland_connector_start() keeps): how majordome-gpu tells it from a
 * handle or a compositor connection given as --wayland-fd. */
bool wayland_connector_is_socket(int fd);
void wayland_connector_stop(WaylandConnector *c);

#ifdef __cplusplus
}
#endif
