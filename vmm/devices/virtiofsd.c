/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting Debian's virtiofsd (QEMU 7.2's, /usr/lib/qemu/virtiofsd), or the
 * stand-alone (Rust) one where a distribution ships it
 * (/usr/libexec/virtiofsd), for a --shared-dir, before the VMM locks itself
 * in. Facts it rests on for QEMU's
 * (docs/vhost-user.md): --fd=N must be a listening socket, which it
 * accepts once and closes, so the VMM connects first and no path exists on
 * disk; `source` must name a directory, which /proc/self/fd/N/ does with
 * its trailing slash; its namespace sandbox cannot bind-mount such a
 * source, its chroot one can. It has no read-only option: every share is
 * a clone of the directory's mount (open_tree + mount_setattr: nodev,
 * nosuid, and read-only for a read-only share), made before the jail's
 * mount namespace (a clone must come from the caller's namespace), which
 * virtiofsd chroots into. It is told to drop CAP_MKNOD.
 *
 * It is started inside the VMM's jail namespaces (pid, network, IPC, UTS,
 * mount), as pid 2 of the VMM's pid namespace: it dies with the VMM, and
 * PR_SET_PDEATHSIG covers a VMM that runs without the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/devices/virtiofsd.h"

#define VIRTIOFSD_QEMU_PATH "/usr/lib/qemu/virtiofsd"
#define VIRTIOFSD_RUST_PATH "/usr/libexec/virtiofsd"
#define CHILD_LISTEN_FD 3
#define CHILD_DIR_FD 4
/* Where the stand-alone virtiofsd finds the share, in a mount namespace of
 * its own (below). */
#define RUST_SHARE_PARENT "/tmp"
#define RUST_SHARE_DIR RUST_SHARE_PARENT "/majordome-share"

VirtiofsdCli virtiofsd_find(const char **ret_path) {
        const char *p = getenv("MAJORDOME_VIRTIOFSD"), *cli = getenv("MAJORDOME_VIRTIOFSD_CLI");

        if (p && p[0]) {
                *ret_path = p;
                return cli && strcmp(cli, "rust") == 0 ? VIRTIOFSD_CLI_RUST : VIRTIOFSD_CLI_QEMU;
        }
        if (access(VIRTIOFSD_RUST_PATH, X_OK) == 0) {
                *ret_path = VIRTIOFSD_RUST_PATH;
                return VIRTIOFSD_CLI_RUST;
        }
        *ret_path = VIRTIOFSD_QEMU_PATH;
        return VIRTIOFSD_CLI_QEMU;
}

/* A clone of dir's mount, detached, for virtiofsd to chroot into: no
 * device nodes and no set-uid through it, read-only for a read-only share. */
static int share_tree(int dir, bool read_only) {
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | (read_only ? MOUNT_ATTR_RDONLY : 0),
        };
        int tree = open_tree(dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);

        if (tree < 0)
                return -errno;
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return -errno;
        return tree;
}

/* The stand-alone virtiofsd resolves --shared-dir to a path and chroots
 * there by name: /proc/self/fd/N of a detached clone would resolve to "/",
 * the whole host. So the clone gets a path, in a mount namespace of this
 * child's own where nothing else sees it. */
static int attach_share(int tree) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("majordome-share", RUST_SHARE_PARENT, "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, "mode=0755,size=16k") < 0 ||
            mkdir(RUST_SHARE_DIR, 0755) < 0 ||
            move_mount(tree, "", AT_FDCWD, RUST_SHARE_DIR, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

_noreturn_ static void child(const VmmDevice *d, int listen_fd) {
        static const char *const qemu_cache[] = { "cache=auto", "cache=always", "cache=none" };
        static const char *const rust_cache[] = { "--cache=auto", "--cache=always", "--cache=never" };
        uint32_t c = d->shared_dir.cache < ARRAY_SIZE(qemu_cache) ? d->shared_dir.cache : 0;
        const char *argv[14], *path;
        char source[64];
        char *envp[] = { NULL };
        int dir = d->shared_dir.fd, n = 0, exe = -EBADF, r;
        VirtiofsdCli cli = virtiofsd_find(&path);

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The two descriptors at fixed numbers, nothing else inherited
         * (dup2 clears close-on-exec). */
        listen_fd = fcntl(listen_fd, F_DUPFD, 10);
        dir = fcntl(dir, F_DUPFD, 10);
        if (listen_fd < 0 || dir < 0 || dup2(listen_fd, CHILD_LISTEN_FD) < 0 || dup2(dir, CHILD_DIR_FD) < 0)
                _exit(127);
        argv[n++] = "virtiofsd";
        argv[n++] = "--fd=3";
        if (cli == VIRTIOFSD_CLI_RUST) {
                /* Found before the tmpfs hides /tmp (the binary may be
                 * there); not close-on-exec, so that a script runs too. */
                exe = open(path, O_PATH);
                if (exe < 0) {
                        fprintf(stderr, "virtiofsd: %s: %s\n", path, strerror(errno));
                        _exit(127);
                }
                r = attach_share(CHILD_DIR_FD);
                if (r < 0) {
                        fprintf(stderr, "virtiofsd: the share's mount: %s\n", strerror(-r));
                        _exit(127);
                }
                (void) close(CHILD_DIR_FD);
                argv[n++] = "--shared-dir=" RUST_SHARE_DIR;
                argv[n++] = "--sandbox=chroot";
                argv[n++] = rust_cache[c];
                argv[n++] = "--log-level=error";
        } else {
                snprintf(source, sizeof(source), "source=/proc/self/fd/%d/", CHILD_DIR_FD);
                argv[n++] = "-o";
                argv[n++] = source;
                argv[n++] = "-o";
                argv[n++] = "sandbox=chroot";
                argv[n++] = "-o";
                argv[n++] = qemu_cache[c];
                argv[n++] = "-o";
                argv[n++] = "log_level=err";
                /* A guest has no business making device nodes on the host
                 * (the share is nodev too). */
                argv[n++] = "-o";
                argv[n++] = "modcaps=-mknod";
        }
        argv[n] = NULL;
        if (exe >= 0)
                fexecve(exe, (char *const *) argv, envp);
        else
                execve(path, (char *const *) argv, envp);
        fprintf(stderr, "virtiofsd: %s: %s\n", path, strerror(errno));
        _exit(127);
}

int virtiofsd_prepare(VmmDevice *d) {
        struct statvfs st;
        int tree;

        if (d->kind != VMM_DEVICE_SHARED_DIR)
                return 0;
        /* A live root is served as it is: a clone would not see the shares
         * mounted in it later. So it must already be what a clone would
         * make it, and read-only: the guest writes only in those shares. */
        if (d->shared_dir.live) {
                const char *path;

                /* Its chroot would follow a path into this namespace's copy
                 * of the root, which later shares do not reach. */
                if (virtiofsd_find(&path) == VIRTIOFSD_CLI_RUST) {
                        log_error("--shared-dir %s: a live share needs QEMU's virtiofsd, not %s", d->shared_dir.tag,
                                  path);
                        return -EOPNOTSUPP;
                }
                if (fstatvfs(d->shared_dir.fd, &st) < 0)
                        return -errno;
                if ((st.f_flag & (ST_RDONLY | ST_NODEV | ST_NOSUID)) != (ST_RDONLY | ST_NODEV | ST_NOSUID)) {
                        log_error("--shared-dir %s: a live share's directory must be on a read-only, nodev, "
                                  "nosuid mount", d->shared_dir.tag);
                        return -EPERM;
                }
                return 0;
        }
        tree = share_tree(d->shared_dir.fd, d->shared_dir.read_only);
        if (tree < 0)
                return tree;
        safe_close(d->shared_dir.fd);
        d->shared_dir.fd = tree;
        return 0;
}

int virtiofsd_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len = sizeof(sa_family_t);
        _cleanup_close_ int listen_fd = -EBADF, sock = -EBADF;
        pid_t pid;

        /* An abstract address the kernel picks (autobind), connected
         * before virtiofsd runs: its one accept is this connection. */
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listen_fd < 0)
                return -errno;
        if (bind(listen_fd, (struct sockaddr *) &sa, len) < 0 || listen(listen_fd, 1) < 0)
                return -errno;
        len = sizeof(sa);
        if (getsockname(listen_fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        if (connect(sock, (struct sockaddr *) &sa, len) < 0)
                return -errno;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child(d, listen_fd);
        *ret_sock = TAKE_FD(sock);
        *ret_pid = pid;
        return 0;
}
