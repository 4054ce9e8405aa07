/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting one of this project's device processes (majordome-gpu,
 * majordome-video) before the VMM locks itself in: one end of a socket
 * pair is its vhost-user connection (--fd 3); a second descriptor, when the
 * device has one (the GPU's compositor socket, a handle or a connection), is 4; nothing else is
 * inherited, not even the environment. Like virtiofsd it starts inside the
 * VMM's jail namespaces, dies with the VMM (PR_SET_PDEATHSIG covers a VMM
 * without the sandbox) and locks itself in (docs/gpu.md, docs/video.md). */
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

#include "seccomp/jail.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/devices/device-process.h"

#define CHILD_SOCKET_FD 3
#define CHILD_EXTRA_FD 4
const char *device_process_path(const char *name, const char *env_name) {
        static char installed[256];
        const char *p = getenv(env_name);

        if (p && p[0])
                return p;
        snprintf(installed, sizeof(installed), "%s/%s", MAJORDOME_LIBEXECDIR, name);
        return installed;
}

int device_process_command(const VmmDevice *d, DeviceProcessCommand *c) {
        *c = (DeviceProcessCommand) { .extra_fd = -1 };
        switch (d->kind) {
        case VMM_DEVICE_GPU:
                c->name = "majordome-gpu";
                c->env_name = "MAJORDOME_GPU";
                snprintf(c->buf[0], sizeof(c->buf[0]), "%" PRIu32, d->gpu.width);
                snprintf(c->buf[1], sizeof(c->buf[1]), "%" PRIu32, d->gpu.height);
                snprintf(c->buf[2], sizeof(c->buf[2]), "%" PRIu32, d->gpu.displays);
                snprintf(c->buf[3], sizeof(c->buf[3]), "%" PRIu64, d->gpu.max_memory);
                c->args[c->n++] = "--backend";
                c->args[c->n++] = d->gpu.backend == VMM_GPU_BACKEND_VIRGL ? "virgl" : "2d";
                c->args[c->n++] = "--width";
                c->args[c->n++] = c->buf[0];
                c->args[c->n++] = "--height";
                c->args[c->n++] = c->buf[1];
                c->args[c->n++] = "--displays";
                c->args[c->n++] = c->buf[2];
                c->args[c->n++] = "--max-memory";
                c->args[c->n++] = c->buf[3];
                if (d->gpu.context_types) {
                        if (vmm_gpu_context_types_to_string(d->gpu.context_types, c->context_types,
                                                            sizeof(c->context_types)) < 0)
                                return -EINVAL;
                        c->args[c->n++] = "--context-types";
                        c->args[c->n++] = c->context_types;
                }
                /* Cross-domain shares the compositor's buffers with the
                 * guest as blob resources, mapped in the host-visible
                 * region vhost-user.c declares. */
                if (d->gpu.context_types & VMM_GPU_CONTEXT_CROSS_DOMAIN)
                        c->args[c->n++] = "--blob";
                if (d->gpu.wayland_fd >= 0) {
                        /* The compositor's socket: an O_PATH handle or a connection. */
                        c->args[c->n++] = "--wayland-fd=4";
                        c->extra_fd = d->gpu.wayland_fd;
                }
                return 0;
        case VMM_DEVICE_VIDEO_DECODER:
        case VMM_DEVICE_VIDEO_ENCODER:
                c->name = "majordome-video";
                c->env_name = "MAJORDOME_VIDEO";
                c->args[c->n++] = d->kind == VMM_DEVICE_VIDEO_DECODER ? "--decoder" : "--encoder";
                c->args[c->n++] = vmm_video_backend_to_string(d->video.backend) ?: "ffmpeg";
                return 0;
        default:
                return -EINVAL;
        }
}

_noreturn_ static void child(const DeviceProcessCommand *c, int sock, char *user_env) {
        const char *argv[DEVICE_PROCESS_ARGS_MAX + 3];
        /* Nothing of our environment but the jail user, which the
         * device process must share with us (device-sandbox.c). */
        char *envp[] = { user_env, NULL };
        int extra = c->extra_fd, n = 0;
        const char *path = device_process_path(c->name, c->env_name);

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The descriptors at fixed numbers (dup2 clears close-on-exec). */
        sock = fcntl(sock, F_DUPFD, 10);
        if (extra >= 0)
                extra = fcntl(extra, F_DUPFD, 10);
        if (sock < 0 || dup2(sock, CHILD_SOCKET_FD) < 0 ||
            (c->extra_fd >= 0 && (extra < 0 || dup2(extra, CHILD_EXTRA_FD) < 0)))
                _exit(127);
        if (close_range(c->extra_fd >= 0 ? CHILD_EXTRA_FD + 1 : CHILD_SOCKET_FD + 1, ~0U, 0) < 0)
                _exit(127);
        argv[n++] = c->name;
        argv[n++] = "--fd=3";
        for (unsigned i = 0; i < c->n; i++)
                argv[n++] = c->args[i];
        argv[n] = NULL;
        execve(path, (char *const *) argv, envp);
        fprintf(stderr, "%s: %s: %s\n", c->name, path, strerror(errno));
        _exit(127);
}

int device_process_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid) {
        DeviceProcessCommand c;
        const char *user = getenv(JAIL_USER_ENV);
        char user_env[256];
        int pair[2], r;
        pid_t pid;

        r = device_process_command(d, &c);
        if (r < 0)
                return r;
        if (user && snprintf(user_env, sizeof(user_env), "%s=%s", JAIL_USER_ENV, user) >= (int) sizeof(user_env))
                return -ENAMETOOLONG;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(pair[0]);
                safe_close(pair[1]);
                return r;
        }
        if (pid == 0)
                child(&c, pair[1], user ? user_env : NULL);
        safe_close(pair[1]);
        *ret_sock = pair[0];
        *ret_pid = pid;
        return 0;
}
