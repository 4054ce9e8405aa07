/* SPDX-License-Identifier: BSD-3-Clause */
/* Live shares (machine-live-shares.h). Why mounts: virtio-fs has no
 * hot-plug here (the VMM has no PCI hot-plug), and virtiofsd serves one
 * directory for its whole life; a mount put under that directory later is
 * what it sees. The rw/ro pair keeps the guest from writing into the root
 * itself (it sees ro/) while the daemon can still make mount points in rw/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/machine-live-shares.h"
#include "common/util.h"

static bool is_mount_root(const char *path) {
        struct statx stx;

        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
                return false;
        return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static char *sub(char buf[static PATH_MAX], const char *dir, const char *name) {
        if ((size_t) snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
                return NULL;
        return buf;
}

int live_shares_prepare_parent(const char *parent) {
        if (mkdir(parent, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* A mount of its own, private: what is mounted under it then
         * propagates to no other mount namespace. */
        if (!is_mount_root(parent) && mount(parent, parent, NULL, MS_BIND, NULL) < 0)
                return -errno;
        if (mount(NULL, parent, NULL, MS_PRIVATE, NULL) < 0)
                return -errno;
        return 0;
}

bool live_shares_present(const char *dir) {
        char rw[PATH_MAX], ro[PATH_MAX];

        return sub(rw, dir, "rw") && sub(ro, dir, "ro") && is_mount_root(rw) && is_mount_root(ro);
}

int live_shares_setup(const char *dir, int *ret_root) {
        char rw[PATH_MAX], ro[PATH_MAX];
        int root, r;

        if (!sub(rw, dir, "rw") || !sub(ro, dir, "ro"))
                return -ENAMETOOLONG;
        /* Left by a daemon that died with a VM: nothing uses it now. */
        live_shares_teardown(dir);
        if (mkdir(dir, 0700) < 0 || mkdir(rw, 0755) < 0 || mkdir(ro, 0755) < 0) {
                r = -errno;
                goto fail;
        }
        /* Room for the mount points and nothing else. */
        if (mount("majordome-live-shares", rw, "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC,
                  "mode=0755,size=64k,nr_inodes=64") < 0 ||
            mount(NULL, rw, NULL, MS_SHARED, NULL) < 0 ||
            mount(rw, ro, NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL) < 0) {
                r = -errno;
                goto fail;
        }
        root = open(ro, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root < 0) {
                r = -errno;
                goto fail;
        }
        *ret_root = root;
        return 0;

fail:
        live_shares_teardown(dir);
        return r;
}

int live_shares_add(const char *dir, int dir_fd, const char *tag, bool read_only) {
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | (read_only ? MOUNT_ATTR_RDONLY : 0),
                .propagation = MS_PRIVATE,
        };
        _cleanup_close_ int tree = -EBADF, rw = -EBADF;
        char path[PATH_MAX];
        int r;

        if (!sub(path, dir, "rw"))
                return -ENAMETOOLONG;
        rw = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rw < 0)
                return -errno;
        /* The clone is what the guest gets, as the VMM's own shares are:
         * no device nodes, no set-uid, read-only when asked. */
        tree = open_tree(dir_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
        if (tree < 0)
                return -errno;
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return -errno;
        if (mkdirat(rw, tag, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (move_mount(tree, "", rw, tag, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                r = -errno;
                (void) unlinkat(rw, tag, AT_REMOVEDIR);
                return r;
        }
        return 0;
}

int live_shares_remove(const char *dir, const char *tag) {
        char rw[PATH_MAX], path[PATH_MAX];

        if (!sub(rw, dir, "rw") || !sub(path, rw, tag))
                return -ENAMETOOLONG;
        /* Lazily: the guest may hold files open; they stay usable until
         * closed, new lookups find nothing. The unmount propagates to ro/. */
        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL)
                return -errno;
        if (rmdir(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

void live_shares_teardown(const char *dir) {
        char rw[PATH_MAX], ro[PATH_MAX];

        if (!sub(rw, dir, "rw") || !sub(ro, dir, "ro"))
                return;
        /* MNT_DETACH takes the shares mounted under each along. */
        (void) umount2(ro, MNT_DETACH | UMOUNT_NOFOLLOW);
        (void) umount2(rw, MNT_DETACH | UMOUNT_NOFOLLOW);
        (void) rmdir(ro);
        (void) rmdir(rw);
        if (rmdir(dir) < 0 && errno != ENOENT)
                log_warning("live shares: cannot remove %s: %m", dir);
}
