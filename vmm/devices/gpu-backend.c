/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting majordome-gpu for a --gpu, before the VMM locks itself in: one
 * end of a socket pair is its vhost-user connection (--fd 3), the host
 * compositor's connection, when there is one, its --wayland-fd 4; nothing
 * else is inherited, not even the environment. Like virtiofsd it starts
 * inside the VMM's jail namespaces, dies with the VMM (PR_SET_PDEATHSIG
 * covers a VMM without the sandbox) and locks itself in (docs/gpu.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "devices/gpu-backend.h"

#define CHILD_SOCKET_FD 3
#define CHILD_WAYLAND_FD 4

const char *gpu_backend_path(void) {
        const char *p = getenv("MAJORDOME_GPU");

        return p && p[0] ? p : MAJORDOME_LIBEXECDIR "/majordome-gpu";
}

_noreturn_ static void child(const VmmDevice *d, int sock) {
        char width[16], height[16], displays[16], memory[32];
        const char *argv[20];
        char *envp[] = { NULL };
        int wayland = d->gpu.wayland_fd, n = 0;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The descriptors at fixed numbers (dup2 clears close-on-exec). */
        sock = fcntl(sock, F_DUPFD, 10);
        if (wayland >= 0)
                wayland = fcntl(wayland, F_DUPFD, 10);
        if (sock < 0 || dup2(sock, CHILD_SOCKET_FD) < 0 ||
            (d->gpu.wayland_fd >= 0 && (wayland < 0 || dup2(wayland, CHILD_WAYLAND_FD) < 0)))
                _exit(127);
        if (close_range(d->gpu.wayland_fd >= 0 ? CHILD_WAYLAND_FD + 1 : CHILD_SOCKET_FD + 1, ~0U, 0) < 0)
                _exit(127);
        snprintf(width, sizeof(width), "%" PRIu32, d->gpu.width);
        snprintf(height, sizeof(height), "%" PRIu32, d->gpu.height);
        snprintf(displays, sizeof(displays), "%" PRIu32, d->gpu.displays);
        snprintf(memory, sizeof(memory), "%" PRIu64, d->gpu.max_memory);
        argv[n++] = "majordome-gpu";
        argv[n++] = "--fd=3";
        argv[n++] = "--backend";
        argv[n++] = d->gpu.backend == VMM_GPU_BACKEND_VIRGL ? "virgl" : "2d";
        argv[n++] = "--width";
        argv[n++] = width;
        argv[n++] = "--height";
        argv[n++] = height;
        argv[n++] = "--displays";
        argv[n++] = displays;
        argv[n++] = "--max-memory";
        argv[n++] = memory;
        if (d->gpu.wayland_fd >= 0)
                argv[n++] = "--wayland-fd=4";
        argv[n] = NULL;
        execve(gpu_backend_path(), (char *const *) argv, envp);
        fprintf(stderr, "majordome-gpu: %s: %s\n", gpu_backend_path(), strerror(errno));
        _exit(127);
}

int gpu_backend_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid) {
        int pair[2];
        pid_t pid;

        if (d->kind != VMM_DEVICE_GPU)
                return -EINVAL;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                safe_close(pair[0]);
                safe_close(pair[1]);
                return r;
        }
        if (pid == 0)
                child(d, pair[1]);
        safe_close(pair[1]);
        *ret_sock = pair[0];
        *ret_pid = pid;
        return 0;
}
