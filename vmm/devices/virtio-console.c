/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-console (virtio 1.2 §5.3): one port (no MULTIPORT), receiveq 0
 * and transmitq 1, wired to one host backend:
 *   stdout       output to stdout, input from stdin when it can be polled
 *   file:PATH    output to PATH (truncated), no input
 *   socket:PATH  we listen on PATH (mode 0600, our uid or root only: a
 *                guest's console is not for other users); one client at
 *                a time gets the output and its input goes to the guest.
 *                Output while nobody is connected is kept (the last
 *                CONSOLE_BACKLOG bytes) and sent to the next client first.
 *   fd:N         output to and input from an inherited descriptor
 * The guest's output is flow-controlled by the host: a transmit buffer
 * the host cannot take yet stays with us until it can; input is read only
 * while the guest has receive buffers. Runs on the device's worker; the
 * fds are opened at create (before the jail). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/virtio/device.h"

#define CONSOLE_QUEUE_RX 0
#define CONSOLE_QUEUE_TX 1
#define CONSOLE_BACKLOG (64 * 1024)
#define CONSOLE_MAX_IOV 64

typedef enum ConsoleBackend {
        CONSOLE_STDOUT,
        CONSOLE_FILE,
        CONSOLE_SOCKET,
        CONSOLE_FD,
} ConsoleBackend;

typedef struct VirtioConsole {
        VirtioDevice *vdev;
        ConsoleBackend backend;
        int out_fd;             /* where output goes now; -1: nobody (socket without client) */
        int in_fd;              /* where input comes from; -1: none */
        int owned_fd;           /* the file or inherited fd we close */
        int listen_fd;          /* socket: */
        int client_fd;
        uid_t owner_uid;        /* who may connect besides root: our uid before the jail */

        VirtQueue *rxq, *txq;
        /* in_fd and out_fd may be one fd, which epoll takes once: what we
         * want from each, and what is registered (console_rewatch). */
        bool want_in, want_out;
        bool started;           /* the worker set up its watches */
        int reg_fd[2];
        uint32_t reg_events[2];

        /* socket: output nobody has read yet, a ring that keeps the newest. */
        uint8_t *backlog;
        size_t backlog_head, backlog_len;

        bool tx_held;           /* tx_chain was popped and is partly written */
        VirtioChain tx_chain, rx_chain; /* big: off the worker's stack */
} VirtioConsole;

static void console_tx_run(VirtioConsole *con);
static void console_rx_run(VirtioConsole *con);
static void console_rewatch(VirtioConsole *con);

/* --console: file:PATH is opened here (before the jail), fd:N duplicated. */
static int console_parse(const char *arg, VmmDevice *ret) {
        uint64_t n;
        int fd;

        if (!arg)
                return -EINVAL;
        if (strcmp(arg, "stdout") == 0) {
                ret->console.backend = VMM_CONSOLE_STDOUT;
                ret->console.fd = -1;
                return 0;
        }
        if (strncmp(arg, "socket:", 7) == 0 && arg[7] && strlen(arg + 7) <= VMM_CONFIG_SOCKET_PATH_MAX) {
                ret->console.backend = VMM_CONSOLE_SOCKET;
                ret->console.fd = -1;
                strcpy(ret->console.path, arg + 7);
                return 0;
        }
        if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
                fd = open(arg + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
                ret->console.backend = VMM_CONSOLE_FILE;
        } else if (strncmp(arg, "fd:", 3) == 0) {
                if (parse_uint(arg + 3, 0, INT32_MAX, &n) < 0)
                        return -EINVAL;
                fd = fcntl((int) n, F_DUPFD_CLOEXEC, 3);
                ret->console.backend = VMM_CONSOLE_FD;
        } else
                return -EINVAL;
        if (fd < 0)
                return -errno;
        ret->console.fd = fd;
        return 0;
}

static void console_destroy(void *dev) {
        VirtioConsole *con = dev;

        if (!con)
                return;
        safe_close(con->client_fd);
        safe_close(con->listen_fd);
        safe_close(con->owned_fd);
        free(con->backlog);
        free(con);
}

static int console_create(VirtioDevice *vdev, const VmmDevice *config, void **ret) {
        static const ConsoleBackend backends[_VMM_CONSOLE_BACKEND_MAX] = {
                [VMM_CONSOLE_STDOUT] = CONSOLE_STDOUT,
                [VMM_CONSOLE_FD] = CONSOLE_FD,
                [VMM_CONSOLE_SOCKET] = CONSOLE_SOCKET,
                [VMM_CONSOLE_FILE] = CONSOLE_FILE,
        };
        ConsoleBackend backend;
        VirtioConsole *con;
        int r;

        if (config->console.backend >= _VMM_CONSOLE_BACKEND_MAX)
                return -EINVAL;
        backend = backends[config->console.backend];
        con = calloc(1, sizeof(*con));
        if (!con)
                return -ENOMEM;
        con->vdev = vdev;
        con->backend = backend;
        con->out_fd = con->in_fd = con->owned_fd = con->listen_fd = con->client_fd = -EBADF;
        con->reg_fd[0] = con->reg_fd[1] = -EBADF;

        switch (backend) {
        case CONSOLE_STDOUT:
                con->out_fd = STDOUT_FILENO;
                con->in_fd = STDIN_FILENO;
                break;
        case CONSOLE_FILE:
        case CONSOLE_FD:
                /* Our own duplicate: the configuration keeps its descriptor. */
                con->owned_fd = fcntl(config->console.fd, F_DUPFD_CLOEXEC, 3);
                if (con->owned_fd < 0) {
                        r = -errno;
                        goto fail;
                }
                con->out_fd = con->owned_fd;
                if (backend == CONSOLE_FD)
                        con->in_fd = con->owned_fd;
                break;
        case CONSOLE_SOCKET:
                con->backlog = malloc(CONSOLE_BACKLOG);
                if (!con->backlog) {
                        r = -ENOMEM;
                        goto fail;
                }
                /* Read now, before the jail switches to nobody. */
                con->owner_uid = getuid();
                r = listen_private(config->console.path, 4, &con->listen_fd);
                if (r < 0)
                        goto fail;
                break;
        }
        *ret = con;
        return 0;
fail:
        console_destroy(con);
        return r;
}

static void console_config_read(void *dev, uint32_t offset, void *data, uint32_t size) {
        /* §5.3.4: cols, rows, max_nr_ports, emerg_wr: none of the features
         * that give them meaning is offered, so all read 0. */
        memset(data, 0, size);
}

/* The socket client went away: output goes to the backlog again. */
static void console_drop_client(VirtioConsole *con) {
        if (con->client_fd < 0)
                return;
        con->out_fd = con->in_fd = -EBADF;
        con->want_out = false;
        console_rewatch(con);
        con->client_fd = safe_close(con->client_fd);
}

static void backlog_add(VirtioConsole *con, const uint8_t *p, size_t n) {
        /* Keep the newest CONSOLE_BACKLOG bytes. */
        if (n >= CONSOLE_BACKLOG) {
                p += n - CONSOLE_BACKLOG;
                n = CONSOLE_BACKLOG;
        }
        while (n > 0) {
                size_t tail = (con->backlog_head + con->backlog_len) % CONSOLE_BACKLOG;
                size_t k = MIN(n, CONSOLE_BACKLOG - tail);

                memcpy(con->backlog + tail, p, k);
                con->backlog_len += k;
                if (con->backlog_len > CONSOLE_BACKLOG) {
                        con->backlog_head = (con->backlog_head + con->backlog_len - CONSOLE_BACKLOG) % CONSOLE_BACKLOG;
                        con->backlog_len = CONSOLE_BACKLOG;
                }
                p += k;
                n -= k;
        }
}

/* Waits for the output fd to take more. */
static void console_wait_writable(VirtioConsole *con) {
        con->want_out = true;
        console_rewatch(con);
}

static ssize_t out_write(VirtioConsole *con, const struct iovec *iov, int n) {
        ssize_t k;

        do {
                /* A socket must not raise SIGPIPE; other fds are written
                 * with writev (sendmsg fails on them with ENOTSOCK). */
                if (con->backend == CONSOLE_SOCKET)
                        k = sendmsg(con->out_fd, &(struct msghdr) { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) n },
                                    MSG_NOSIGNAL);
                else
                        k = writev(con->out_fd, iov, n);
        } while (k < 0 && errno == EINTR);
        return k;
}

/* Sends the backlog to a new client; false while it is not all out. */
static bool backlog_flush(VirtioConsole *con) {
        while (con->backlog_len > 0 && con->out_fd >= 0) {
                size_t first = MIN(con->backlog_len, CONSOLE_BACKLOG - con->backlog_head);
                struct iovec iov[2] = {
                        { con->backlog + con->backlog_head, first },
                        { con->backlog, con->backlog_len - first },
                };
                ssize_t k = out_write(con, iov, first < con->backlog_len ? 2 : 1);

                if (k < 0 && errno == EAGAIN) {
                        console_wait_writable(con);
                        return false;
                }
                if (k < 0) {
                        console_drop_client(con);
                        return true;
                }
                con->backlog_head = (con->backlog_head + (size_t) k) % CONSOLE_BACKLOG;
                con->backlog_len -= (size_t) k;
        }
        return true;
}

static void console_on_io(void *dev, int fd, uint32_t events) {
        VirtioConsole *con = dev;

        if (fd == con->out_fd && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && con->want_out) {
                con->want_out = false;
                console_rewatch(con);
                console_tx_run(con);
        }
        if (fd == con->in_fd && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                console_rx_run(con);
}

/* Makes the worker's epoll set match want_in/want_out. */
static void console_rewatch(VirtioConsole *con) {
        int fds[2] = { -EBADF, -EBADF };
        uint32_t events[2] = { 0, 0 };

        if (!con->started)
                return; /* not running: the framework watches nothing */
        if (con->in_fd >= 0 && con->want_in) {
                fds[0] = con->in_fd;
                events[0] = EPOLLIN;
        }
        if (con->out_fd >= 0 && con->want_out) {
                if (con->out_fd == fds[0])
                        events[0] |= EPOLLOUT;
                else {
                        fds[1] = con->out_fd;
                        events[1] = EPOLLOUT;
                }
        }
        for (unsigned i = 0; i < 2; i++) {
                if (con->reg_fd[i] == fds[i] && con->reg_events[i] == events[i])
                        continue;
                if (con->reg_fd[i] >= 0)
                        (void) virtio_device_unwatch_fd(con->vdev, con->reg_fd[i]);
                con->reg_fd[i] = -EBADF;
                con->reg_events[i] = 0;
                if (fds[i] < 0)
                        continue;
                if (virtio_device_watch_fd(con->vdev, fds[i], events[i], console_on_io) < 0) {
                        /* epoll refuses regular files and /dev/null: stdin
                         * that is one gives no input. */
                        if (fds[i] == con->in_fd && con->in_fd != con->out_fd) {
                                con->in_fd = -EBADF;
                                con->want_in = false;
                        }
                        continue;
                }
                con->reg_fd[i] = fds[i];
                con->reg_events[i] = events[i];
        }
}

static void console_on_accept(void *dev, int fd, uint32_t events) {
        VirtioConsole *con = dev;
        int c = accept4(con->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (c < 0)
                return;
        if (!peer_uid_is_allowed(c, con->owner_uid)) {
                /* Closed unread: nothing it sent reaches the guest. */
                safe_close(c);
                return;
        }
        if (con->client_fd >= 0) {
                /* One client at a time: the console is not a broadcast. */
                safe_close(c);
                return;
        }
        con->client_fd = con->out_fd = con->in_fd = c;
        con->want_in = true;
        console_rewatch(con);
        console_tx_run(con);
}

static void console_tx_run(VirtioConsole *con) {
        VirtioChain *ch = &con->tx_chain;
        VirtioReader *r = &ch->reader;
        int q;

        if (con->want_out)
                return; /* waiting for the output to drain */
        if (con->backend == CONSOLE_SOCKET && !backlog_flush(con))
                return;
        for (;;) {
                if (!con->tx_held) {
                        q = virtq_pop(con->txq, ch);
                        if (q <= 0)
                                break;
                        con->tx_held = true;
                }
                while (virtio_reader_remaining(r) > 0) {
                        struct iovec iov[CONSOLE_MAX_IOV];
                        size_t want = virtio_reader_remaining(r);
                        VirtioReader peek = *r;
                        ssize_t k;
                        int n;

                        while ((n = virtio_reader_iov(&peek, want, iov, ARRAY_SIZE(iov))) == -E2BIG)
                                want /= 2;
                        if (n <= 0)
                                break;
                        if (con->out_fd < 0) {
                                /* socket without a client */
                                for (int i = 0; i < n; i++)
                                        backlog_add(con, iov[i].iov_base, iov[i].iov_len);
                                (void) virtio_reader_skip(r, want);
                                continue;
                        }
                        k = out_write(con, iov, n);
                        if (k < 0 && errno == EAGAIN) {
                                /* The chain stays ours until the host takes it. */
                                console_wait_writable(con);
                                return;
                        }
                        if (k < 0) {
                                if (con->backend == CONSOLE_SOCKET) {
                                        console_drop_client(con);
                                        continue;
                                }
                                /* A file or stdout that fails: the output
                                 * is lost, the guest must not hang on it. */
                                (void) virtio_reader_skip(r, virtio_reader_remaining(r));
                                break;
                        }
                        (void) virtio_reader_skip(r, (size_t) k);
                }
                virtq_push(con->txq, ch, 0);
                con->tx_held = false;
        }
        if (con->txq->broken)
                virtio_device_set_needs_reset(con->vdev, con->txq->error);
        else
                virtq_interrupt(con->txq);
}

static void console_rx_run(VirtioConsole *con) {
        VirtioChain *ch = &con->rx_chain;
        bool pushed = false;

        while (con->in_fd >= 0) {
                struct iovec iov[CONSOLE_MAX_IOV];
                size_t want;
                ssize_t k;
                int n, q;

                q = virtq_pop(con->rxq, ch);
                if (q <= 0) {
                        /* No buffers: stop reading until the guest gives
                         * some (its kick calls us again). */
                        con->want_in = false;
                        console_rewatch(con);
                        break;
                }
                want = virtio_writer_remaining(&ch->writer);
                n = -EMSGSIZE;
                while (want > 0 && (n = virtio_writer_iov(&ch->writer, want, iov, ARRAY_SIZE(iov))) == -E2BIG)
                        want /= 2;
                k = -1;
                if (n > 0) {
                        do
                                k = readv(con->in_fd, iov, n);
                        while (k < 0 && errno == EINTR);
                }
                virtq_push(con->rxq, ch, k > 0 ? (uint32_t) k : 0);
                pushed = true;
                if (k == 0 || (k < 0 && errno != EAGAIN)) {
                        /* End of input. */
                        if (con->backend == CONSOLE_SOCKET)
                                console_drop_client(con);
                        else {
                                con->in_fd = -EBADF;
                                console_rewatch(con);
                        }
                        break;
                }
                if (k < 0 || (size_t) k < want)
                        break; /* drained; level-triggered watch says when there is more */
        }
        if (con->rxq->broken)
                virtio_device_set_needs_reset(con->vdev, con->rxq->error);
        else if (pushed)
                virtq_interrupt(con->rxq);
}

static int console_activate(void *dev, VirtQueue *queues, uint64_t features) {
        VirtioConsole *con = dev;

        con->rxq = &queues[CONSOLE_QUEUE_RX];
        con->txq = &queues[CONSOLE_QUEUE_TX];
        con->started = false;
        /* activate runs on a vCPU thread, whose seccomp role has no
         * epoll_ctl: the worker sets up its watches on its first run. */
        virtio_device_kick(con->vdev, CONSOLE_QUEUE_RX);
        return 0;
}

static void console_queue_notify(void *dev, VirtQueue *q) {
        VirtioConsole *con = dev;

        if (!con->started) {
                if (con->listen_fd >= 0 &&
                    virtio_device_watch_fd(con->vdev, con->listen_fd, EPOLLIN, console_on_accept) < 0) {
                        virtio_device_set_needs_reset(con->vdev, "console: cannot watch the socket");
                        return;
                }
                con->started = true;
                con->want_in = true;
                console_rewatch(con);
                /* Output the guest queued before we started. */
                console_tx_run(con);
        }

        if (q == con->txq)
                console_tx_run(con);
        else {
                /* New receive buffers: read when the input has something
                 * (running now could hand back empty buffers in a loop). */
                con->want_in = true;
                console_rewatch(con);
        }
}

static void console_reset(void *dev) {
        VirtioConsole *con = dev;

        /* The framework dropped every watch; a socket client stays
         * connected across a driver reset (the guest rebooting its driver
         * should not hang up on the user). */
        con->want_in = con->want_out = con->started = false;
        con->reg_fd[0] = con->reg_fd[1] = -EBADF;
        con->reg_events[0] = con->reg_events[1] = 0;
        con->tx_held = false;
        con->rxq = con->txq = NULL;
        if (con->backend == CONSOLE_STDOUT && con->in_fd < 0)
                con->in_fd = STDIN_FILENO;
}

static unsigned console_fds(void *dev, int *fds, unsigned max) {
        VirtioConsole *con = dev;
        int mine[] = { con->owned_fd, con->listen_fd, con->client_fd };
        unsigned n = 0;

        for (unsigned i = 0; i < ARRAY_SIZE(mine) && n < max; i++)
                if (mine[i] >= 0)
                        fds[n++] = mine[i];
        return n;
}

const VirtioDeviceOps virtio_console_ops = {
        .name = "console",
        .option_usage = "stdout|file:PATH|socket:PATH|fd:N",
        .help = "a virtio-console port on stdout/stdin, a file, a listening Unix socket or a descriptor",
        .type = VIRTIO_ID_CONSOLE,
        .n_queues = 2,
        .queue_max_size = 256,
        .features = 0, /* §5.3.3: no SIZE, MULTIPORT or EMERG_WRITE */
        .config_size = 12,
        .seccomp_role = "virtio-console",
        .seccomp_policy = "virtio-console.policy",
        .parse = console_parse,
        .create = console_create,
        .destroy = console_destroy,
        .config_read = console_config_read,
        .activate = console_activate,
        .queue_notify = console_queue_notify,
        .reset = console_reset,
        .fds = console_fds,
};
