/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/auth.h"
#include "daemon/errors.h"
#include "common/log.h"
#include "daemon/machine-config-dbus.h"
#include "daemon/machine-live-shares.h"
#include "common/vmm-config.h"

/* ---- StartVm's config dictionary ---- */

static void flags_clear_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags >= 0)
                (void) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

/* A caller's descriptor, checked before we use it: an O_PATH descriptor
 * grants no access at all (F_GETFL reads its mode as O_RDONLY), so it is
 * refused rather than reopened with our rights. Returns the access mode. */
static int caller_fd_access(const char *key, int caller_fd, struct stat *ret_st, sd_bus_error *error) {
        int flags;

        if (fstat(caller_fd, ret_st) < 0)
                return sd_bus_error_set_errnof(error, errno, "%s: %m", key);
        flags = fcntl(caller_fd, F_GETFL);
        if (flags < 0)
                return sd_bus_error_set_errnof(error, errno, "%s: %m", key);
        if (flags & O_PATH)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "%s: the descriptor is an O_PATH descriptor, which gives no access; "
                                         "open the file for reading or writing", key);
        return flags & O_ACCMODE;
}

/* Reopens a caller's descriptor through /proc with exactly the access it
 * was checked to have (never wider), so the VMM gets its own open file:
 * offset 0, no file position or lock shared with the caller. */
static int caller_fd_reopen(const char *key, int caller_fd, int mode, int *ret, sd_bus_error *error) {
        char proc[64];
        int fd;

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", caller_fd);
        fd = open(proc, mode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "%s: cannot reopen the descriptor: %s", key, strerror(errno));
        *ret = fd;
        return 0;
}

/* Opens a path a caller named, with the caller's rights (auth_caller_open),
 * never ours: root must not read /etc/shadow or create files for anyone.
 * The path must be absolute, the file a regular one (or, with allow_block,
 * a block device). O_NONBLOCK: a FIFO must not hang the daemon on open. */
static int caller_path_open(const AuthCaller *caller, const char *key, const char *path, int flags, mode_t mode,
                            bool allow_block, int *ret, struct stat *ret_st, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;

        if (path[0] != '/')
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "%s: path '%s' is not absolute", key, path);
        if (strlen(path) >= PATH_MAX)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "%s: path too long", key);
        fd = auth_caller_open(caller, path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
        if (fd < 0)
                /* Only a disk is opened read-write; its error says so. */
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "%s: cannot open '%s'%s: %s",
                                         key, path, (flags & O_ACCMODE) == O_RDWR ? " for writing" : "",
                                         strerror(-fd));
        if (fstat(fd, ret_st) < 0)
                return sd_bus_error_set_errnof(error, errno, "%s: %m", key);
        if (!S_ISREG(ret_st->st_mode) && !(allow_block && S_ISBLK(ret_st->st_mode)))
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "%s: '%s' is not a regular file%s",
                                         key, path, allow_block ? " or block device" : "");
        *ret = TAKE_FD(fd);
        return 0;
}

/* Opens a file named by a path or given as an fd, for reading (kernel,
 * initrd) or writing (serial_log). Paths are opened with the caller's
 * rights (auth_caller_open), never ours: root must not read /etc/shadow or
 * create files for anyone. An fd from the caller is reopened through /proc
 * with the access it has, so the VMM reads from offset 0 and shares no file
 * position with the caller. */
static int config_open_file(sd_bus_message *msg, const AuthCaller *caller, const char *key, const char *contents,
                            bool for_write, int *ret, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (strcmp(contents, "s") == 0) {
                const char *path;

                r = sd_bus_message_read(msg, "v", "s", &path);
                if (r < 0)
                        return r;
                r = caller_path_open(caller, key, path,
                                     for_write ? O_WRONLY | O_CREAT | O_TRUNC | O_APPEND : O_RDONLY,
                                     for_write ? 0640 : 0, false, &fd, &st, error);
                if (r < 0)
                        return r;
        } else if (strcmp(contents, "h") == 0) {
                int caller_fd, acc;

                r = sd_bus_message_read(msg, "v", "h", &caller_fd);
                if (r < 0)
                        return r;
                acc = caller_fd_access(key, caller_fd, &st, error);
                if (acc < 0)
                        return acc;
                if (!for_write) {
                        if (!S_ISREG(st.st_mode))
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "%s: the descriptor is not a regular file", key);
                        if (acc != O_RDONLY && acc != O_RDWR)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "%s: the descriptor is not open for reading", key);
                        r = caller_fd_reopen(key, caller_fd, O_RDONLY, &fd, error);
                        if (r < 0)
                                return r;
                } else {
                        /* A console may go to a file, a pipe or a socket the
                         * caller reads: the caller's own open file, as given. */
                        if (acc != O_WRONLY && acc != O_RDWR)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "%s: the descriptor is not open for writing", key);
                        if (S_ISDIR(st.st_mode))
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "%s: the descriptor is a directory", key);
                        fd = fcntl(caller_fd, F_DUPFD_CLOEXEC, 3);
                        if (fd < 0)
                                return sd_bus_error_set_errnof(error, errno, "%s: %m", key);
                }
        } else
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "%s: wrong type '%s', want 's' (a path) or 'h' (a file descriptor)",
                                         key, contents);

        if (!for_write) {
                /* The VMM reads from the descriptor's start; blocking reads are fine for files. */
                int flags = fcntl(fd, F_GETFL);

                if (flags >= 0)
                        (void) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        }
        *ret = TAKE_FD(fd);
        return 0;
}

static int config_wrong_type(sd_bus_error *error, const char *key, const char *want, const char *got) {
        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                 "%s: wrong type '%s', want '%s'", key, got, want);
}

static uint64_t host_memory_bytes(void) {
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

        if (pages <= 0 || size <= 0)
                return MACHINE_MEMORY_MAX;
        return (uint64_t) pages * (uint64_t) size;
}

static const char *const config_keys[] = {
        "kernel", "initrd", "cmdline", "memory", "cpus", "serial_log", "debug_exit", "vsock", "disks",
        "balloon", "rng", "on_panic", "shares", "gpu", "wayland_socket", "video_decoder", "video_encoder",
        "live_shares", "memory_max", "cpu_weight",
};

int share_path_check(const char *key, const char *path, const char *error_name, sd_bus_error *error) {
        if (path[0] != '/')
                return sd_bus_error_setf(error, error_name, "%s: path '%s' is not absolute", key, path);
        if (strlen(path) >= PATH_MAX)
                return sd_bus_error_setf(error, error_name, "%s: path too long", key);
        for (const char *p = path; *p; ) {
                size_t n;

                p += strspn(p, "/");
                n = strcspn(p, "/");
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return sd_bus_error_setf(error, error_name,
                                                 "%s: path '%s' has a '%.*s' component; give the directory's "
                                                 "own path", key, path, (int) n, p);
                p += n;
        }
        return 0;
}

/* The next entry of an a{sv} being read: its key, and its value's type
 * (the value is left to read). 1, or 0 after the last entry. */
static int dict_next(sd_bus_message *msg, const char **ret_key, const char **ret_contents) {
        char type;
        int r;

        r = sd_bus_message_enter_container(msg, 'e', "sv");
        if (r <= 0)
                return r;
        r = sd_bus_message_read(msg, "s", ret_key);
        if (r < 0)
                return r;
        r = sd_bus_message_peek_type(msg, &type, ret_contents);
        return r < 0 ? r : 1;
}

int share_options_parse(sd_bus_message *msg, const char *key, const char *error_name, bool want_path,
                        ShareOptions *ret, sd_bus_error *error) {
        ShareOptions o = { .tag = "" };
        bool seen_tag = false, seen_ro = false, seen_cache = false;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *k, *contents;
                int b;

                r = dict_next(msg, &k, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if ((want_path && strcmp(k, "path") == 0) || strcmp(k, "tag") == 0 || strcmp(k, "cache") == 0) {
                        const char *v;
                        bool *seen = k[0] == 't' ? &seen_tag : k[0] == 'c' ? &seen_cache : NULL;

                        if (strcmp(contents, "s") != 0)
                                return sd_bus_error_setf(error, error_name, "%s.%s: wrong type '%s', want 's'",
                                                         key, k, contents);
                        if ((seen && *seen) || (!seen && o.path))
                                return sd_bus_error_setf(error, error_name, "%s.%s: given twice", key, k);
                        r = sd_bus_message_read(msg, "v", "s", &v);
                        if (r < 0)
                                return r;
                        if (seen)
                                *seen = true;
                        if (k[0] == 'p') {
                                o.path = v;
                                r = share_path_check(key, v, error_name, error);
                                if (r < 0)
                                        return r;
                        } else if (k[0] == 't') {
                                if (!vmm_fs_tag_is_valid(v))
                                        return sd_bus_error_setf(error, error_name,
                                                                 "%s.tag: '%.80s' is not 1 to %d printable ASCII "
                                                                 "characters without space, ':', ',', '/', '\\'",
                                                                 key, v, MACHINE_SHARE_TAG_MAX);
                                o.tag = v;
                        } else {
                                int c = vmm_fs_cache_from_string(v);

                                if (c < 0)
                                        return sd_bus_error_setf(error, error_name,
                                                                 "%s.cache: '%.80s' is not auto, always or never",
                                                                 key, v);
                                o.cache = (uint32_t) c;
                        }
                } else if (strcmp(k, "read_only") == 0) {
                        if (strcmp(contents, "b") != 0)
                                return sd_bus_error_setf(error, error_name, "%s.read_only: wrong type '%s', want 'b'",
                                                         key, contents);
                        if (seen_ro)
                                return sd_bus_error_setf(error, error_name, "%s.read_only: given twice", key);
                        seen_ro = true;
                        r = sd_bus_message_read(msg, "v", "b", &b);
                        if (r < 0)
                                return r;
                        o.read_only = b;
                } else
                        return sd_bus_error_setf(error, error_name, "%s.%s: unknown share key (want %sread_only, "
                                                 "cache, tag)", key, k, want_path ? "path, " : "");
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if (want_path && !o.path)
                return sd_bus_error_setf(error, error_name, "%s: needs a path", key);
        *ret = o;
        return 0;
}

/* Opens a shared directory with the caller's rights: a directory the caller
 * may not read (or reach through a symlink) is refused as for any file. */
int share_open(const AuthCaller *caller, const char *key, const char *path, const char *error_name, int *ret,
               sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = auth_caller_open(caller, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY, 0);
        if (fd == -ENOTDIR)
                return sd_bus_error_setf(error, error_name, "%s: '%s' is not a directory", key, path);
        if (fd < 0)
                return sd_bus_error_setf(error, error_name, "%s: cannot open '%s': %s", key, path, strerror(-fd));
        if (fstat(fd, &st) < 0)
                return sd_bus_error_set_errnof(error, errno, "%s: %m", key);
        if (!S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, error_name, "%s: '%s' is not a directory", key, path);
        *ret = TAKE_FD(fd);
        return 0;
}

/* shares: aa{sv}, each {"path": s, "tag": s, "read_only": b, "cache": s}.
 * Tags given are checked first; the others are made from the directory's
 * name, unique among all. Errors name the share: "shares[1].tag: ...". */
static int config_parse_shares(sd_bus_message *msg, const AuthCaller *caller, MachineConfig *c, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(msg, 'v', "aa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(msg, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (;;) {
                unsigned i = c->n_shares;
                ShareOptions o;
                MachineShare *sh;
                char key[32], path_key[40];
                char type;
                const char *contents;

                r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (i >= MACHINE_SHARES_MAX)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "shares: more than %d shares", MACHINE_SHARES_MAX);
                snprintf(key, sizeof(key), "shares[%u]", i);
                r = share_options_parse(msg, key, MAJORDOME_ERROR_INVALID_CONFIG, true, &o, error);
                if (r < 0)
                        return r;
                for (unsigned k = 0; o.tag[0] && k < i; k++)
                        if (strcmp(c->shares[k].tag, o.tag) == 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "%s.tag: '%s' is already shares[%u]'s", key, o.tag, k);
                sh = &c->shares[i];
                snprintf(path_key, sizeof(path_key), "%s.path", key);
                r = share_open(caller, path_key, o.path, MAJORDOME_ERROR_INVALID_CONFIG, &sh->fd, error);
                if (r < 0)
                        return r;
                sh->path = strdup(o.path);
                if (!sh->path)
                        return -ENOMEM;
                c->n_shares++;
                sh->read_only = o.read_only;
                sh->cache = o.cache;
                strcpy(sh->tag, o.tag);
        }
        for (unsigned i = 0; i < c->n_shares; i++) {
                char tag[MACHINE_SHARE_TAG_MAX + 1];

                if (c->shares[i].tag[0])
                        continue;
                /* Its own entry is still "" and so matches no tag. */
                machine_share_tag_from_path(c->shares[i].path, c->shares, c->n_shares, tag);
                strcpy(c->shares[i].tag, tag);
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* gpu: a{sv}, {"backend": s, "width": u, "height": u, "displays": u,
 * "max_memory": t, "context_types": s}; what is left out is the VMM's
 * default, the ranges and names are the VMM's (vmm_config_validate() checks
 * them again). Errors name the key: "gpu.width: ...". */
static int config_parse_gpu(sd_bus_message *msg, MachineGpu *ret, sd_bus_error *error) {
        static const char *const keys[] = { "backend", "width", "height", "displays", "max_memory", "context_types" };
        MachineGpu g = {
                .enabled = true,
                .backend = VMM_GPU_BACKEND_2D,
                .width = VMM_CONFIG_GPU_WIDTH_DEFAULT,
                .height = VMM_CONFIG_GPU_HEIGHT_DEFAULT,
                .displays = VMM_CONFIG_GPU_DISPLAYS_DEFAULT,
                .max_memory = VMM_CONFIG_GPU_MEMORY_DEFAULT,
        };
        bool seen[ARRAY_SIZE(keys)] = {};
        int r;

        r = sd_bus_message_enter_container(msg, 'v', "a{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *k, *contents;
                size_t i;

                r = dict_next(msg, &k, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                for (i = 0; i < ARRAY_SIZE(keys); i++)
                        if (strcmp(k, keys[i]) == 0)
                                break;
                if (i == ARRAY_SIZE(keys))
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "gpu.%.80s: unknown gpu key (want backend, width, height, displays, "
                                                 "max_memory, context_types)", k);
                if (seen[i])
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "gpu.%s: given twice", k);
                seen[i] = true;

                if (strcmp(k, "backend") == 0) {
                        const char *v;
                        int b;

                        if (strcmp(contents, "s") != 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.backend: wrong type '%s', want 's'", contents);
                        r = sd_bus_message_read(msg, "v", "s", &v);
                        if (r < 0)
                                return r;
                        b = vmm_gpu_backend_from_string(v);
                        if (b < 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.backend: '%.80s' is not a backend this VMM has "
                                                         "(want '2d' or 'virglrenderer')", v);
                        g.backend = (uint32_t) b;
                } else if (strcmp(k, "context_types") == 0) {
                        VmmConfigError e;
                        const char *v;

                        if (strcmp(contents, "s") != 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.context_types: wrong type '%s', want 's'", contents);
                        r = sd_bus_message_read(msg, "v", "s", &v);
                        if (r < 0)
                                return r;
                        if (vmm_gpu_context_types_from_string(v, &g.context_types, &e) < 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.context_types: %s", e.message);
                } else if (strcmp(k, "max_memory") == 0) {
                        uint64_t v;

                        if (strcmp(contents, "t") != 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.max_memory: wrong type '%s', want 't'", contents);
                        r = sd_bus_message_read(msg, "v", "t", &v);
                        if (r < 0)
                                return r;
                        if (v < VMM_CONFIG_GPU_MEMORY_MIN || v > VMM_CONFIG_GPU_MEMORY_MAX)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.max_memory: %" PRIu64 " bytes is not between %" PRIu64
                                                         " MiB and %" PRIu64 " MiB", v,
                                                         VMM_CONFIG_GPU_MEMORY_MIN / MiB, VMM_CONFIG_GPU_MEMORY_MAX / MiB);
                        g.max_memory = v;
                } else {
                        bool displays = strcmp(k, "displays") == 0;
                        uint32_t v, min = displays ? 0 : 1;
                        uint32_t max = displays ? VMM_CONFIG_GPU_DISPLAYS_MAX : VMM_CONFIG_GPU_SIZE_MAX;

                        if (strcmp(contents, "u") != 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.%s: wrong type '%s', want 'u'", k, contents);
                        r = sd_bus_message_read(msg, "v", "u", &v);
                        if (r < 0)
                                return r;
                        if (v < min || v > max)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "gpu.%s: %" PRIu32 " is not between %" PRIu32 " and %" PRIu32,
                                                         k, v, min, max);
                        if (displays)
                                g.displays = v;
                        else if (k[0] == 'w')
                                g.width = v;
                        else
                                g.height = v;
                }
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if ((g.context_types & (VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_VIRGL2)) && g.backend != VMM_GPU_BACKEND_VIRGL)
                return sd_bus_error_set(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                        "gpu.context_types: virgl and virgl2 need backend 'virglrenderer'");
        *ret = g;
        return 0;
}

/* wayland_socket: the host compositor's socket, as an O_PATH handle to its
 * inode: cross-domain connects through it again for each guest context,
 * at any time, from a jailed process that reaches no path. Opened with
 * the caller's rights (search permission on the way there), and one test
 * connection through the handle as the caller (write permission on the
 * socket itself), never ours: root must not reach a compositor of another
 * user for them. The handle, not the path, goes to the VMM. */
static int wayland_open(const AuthCaller *caller, const char *path, int *ret, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (path[0] != '/')
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "wayland_socket: path '%.200s' is not absolute", path);
        if (strlen(path) >= PATH_MAX)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "wayland_socket: path too long");
        fd = auth_caller_open(caller, path, O_PATH | O_CLOEXEC | O_NOCTTY, 0);
        if (fd < 0)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "wayland_socket: cannot open '%s': %s", path, strerror(-fd));
        if (fstat(fd, &st) < 0)
                return sd_bus_error_set_errnof(error, errno, "wayland_socket: %m");
        if (!S_ISSOCK(st.st_mode))
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "wayland_socket: '%s' is not a socket", path);
        r = auth_caller_connect_handle(caller, fd);
        if (r == -EAGAIN)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "wayland_socket: cannot connect to '%s': the compositor is not accepting "
                                         "connections (its backlog is full)", path);
        if (r < 0)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "wayland_socket: cannot connect to '%s': %s", path, strerror(-r));
        *ret = TAKE_FD(fd);
        return 0;
}

/* Opens one disk's image: a path, opened with the caller's rights, or a
 * caller's descriptor reopened through /proc (our own open file: the VMM's
 * flock and offset are not shared with the caller). The access asked for
 * must be the caller's own: reopening as root must never turn a read-only
 * descriptor into a writable one. *ret_block tells a block device, which
 * needs AUTH_ACTION_MANAGE_DEVICES. */
static int disk_open(const AuthCaller *caller, const char *key, const char *path, int caller_fd, bool read_only,
                     int *ret, bool *ret_block, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        int mode = read_only ? O_RDONLY : O_RDWR;
        struct stat st;
        int r;

        if (path) {
                r = caller_path_open(caller, key, path, mode, 0, true, &fd, &st, error);
                if (r < 0)
                        return r;
        } else {
                int acc;

                acc = caller_fd_access(key, caller_fd, &st, error);
                if (acc < 0)
                        return acc;
                if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "%s: the descriptor is not a regular file or block device", key);
                if (acc == O_WRONLY || (!read_only && acc != O_RDWR))
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "%s: the descriptor is not open for %s", key,
                                                 read_only ? "reading" : "reading and writing (or set read_only)");
                r = caller_fd_reopen(key, caller_fd, mode, &fd, error);
                if (r < 0)
                        return r;
        }
        /* The VMM's I/O on images is plain blocking pread/pwrite. */
        flags_clear_nonblock(fd);
        *ret_block = S_ISBLK(st.st_mode);
        *ret = TAKE_FD(fd);
        return 0;
}

/* disks: aa{sv}, each {"path": s | "fd": h, "read_only": b, "sparse": b,
 * "serial": s}. Errors name the disk: "disks[1].serial: ...". */
static int config_parse_disks(sd_bus_message *msg, const AuthCaller *caller, MachineConfig *c, unsigned *n_fds,
                              bool *ret_block, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(msg, 'v', "aa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(msg, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *path = NULL, *serial = NULL;
                int caller_fd = -EBADF, read_only = false, sparse = false;
                bool seen_ro = false, seen_sparse = false, block = false;
                char key[32];
                unsigned i = c->n_disks;

                r = sd_bus_message_enter_container(msg, 'a', "{sv}");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (i >= MACHINE_DISKS_MAX)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "disks: more than %d disks", MACHINE_DISKS_MAX);
                snprintf(key, sizeof(key), "disks[%u]", i);
                for (;;) {
                        const char *k, *contents;

                        r = dict_next(msg, &k, &contents);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                        if (strcmp(k, "path") == 0 || strcmp(k, "fd") == 0) {
                                if (path || caller_fd >= 0)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                 "%s: give one of path and fd", key);
                                if (k[0] == 'p') {
                                        if (strcmp(contents, "s") != 0)
                                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                         "%s.path: wrong type '%s', want 's'", key, contents);
                                        r = sd_bus_message_read(msg, "v", "s", &path);
                                } else {
                                        if (strcmp(contents, "h") != 0)
                                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                         "%s.fd: wrong type '%s', want 'h'", key, contents);
                                        if (++*n_fds > MANAGER_CONFIG_FDS_MAX)
                                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                         "more than %d file descriptors",
                                                                         MANAGER_CONFIG_FDS_MAX);
                                        r = sd_bus_message_read(msg, "v", "h", &caller_fd);
                                }
                        } else if (strcmp(k, "read_only") == 0 || strcmp(k, "sparse") == 0) {
                                bool *seen = k[0] == 'r' ? &seen_ro : &seen_sparse;

                                if (strcmp(contents, "b") != 0)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                 "%s.%s: wrong type '%s', want 'b'", key, k, contents);
                                if (*seen)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                 "%s.%s: given twice", key, k);
                                *seen = true;
                                r = sd_bus_message_read(msg, "v", "b", k[0] == 'r' ? &read_only : &sparse);
                        } else if (strcmp(k, "serial") == 0) {
                                if (strcmp(contents, "s") != 0)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                 "%s.serial: wrong type '%s', want 's'", key, contents);
                                if (serial)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                 "%s.serial: given twice", key);
                                r = sd_bus_message_read(msg, "v", "s", &serial);
                                if (r < 0)
                                        return r;
                                /* The guest reads it as ASCII (GET_ID); a comma
                                 * would end the VMM's --block option. */
                                bool ok = strlen(serial) <= MACHINE_DISK_SERIAL_MAX;
                                for (const char *p = serial; ok && *p; p++)
                                        ok = *p >= 0x20 && *p <= 0x7e && *p != ',';
                                if (!ok)
                                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                                 "%s.serial: want at most %d printable ASCII "
                                                                 "characters, no ','", key, MACHINE_DISK_SERIAL_MAX);
                        } else
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "%s.%s: unknown disk key (want path or fd, read_only, "
                                                         "sparse, serial)", key, k);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(msg);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
                if (!path && caller_fd < 0)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "%s: needs a path or an fd", key);
                /* "disks[0].path: cannot open ...": the message names the key. */
                strcat(key, path ? ".path" : ".fd");
                r = disk_open(caller, key, path, caller_fd, read_only, &c->disks[i].fd, &block, error);
                if (r < 0)
                        return r;
                *ret_block = *ret_block || block;
                c->disks[i].read_only = read_only;
                c->disks[i].sparse = sparse;
                if (serial)
                        strcpy(c->disks[i].serial, serial);
                c->n_disks++;
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* The devices of a part this build left out (meson's gpu, wayland and
 * video features): NotSupported, naming the key, before anything is opened
 * for them. The VMM would refuse them too (vmm_config_validate()). */
static int config_check_features(const MachineConfig *c, bool wayland_socket, sd_bus_error *error) {
        const char *missing;

        if (c->gpu.enabled) {
                bool cross_domain = c->gpu.context_types & VMM_GPU_CONTEXT_CROSS_DOMAIN;

                missing = vmm_config_missing_feature(VMM_DEVICE_GPU, wayland_socket || cross_domain);
                if (missing && strcmp(missing, "wayland") == 0)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                                 "%s: this majordomed was built without wayland support (its GPU "
                                                 "is headless only)",
                                                 wayland_socket ? "wayland_socket" : "gpu.context_types");
                if (missing)
                        return sd_bus_error_set(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                                "gpu: this majordomed was built without gpu support");
        }
        if ((c->video_decoder && vmm_config_missing_feature(VMM_DEVICE_VIDEO_DECODER, false)) ||
            (c->video_encoder && vmm_config_missing_feature(VMM_DEVICE_VIDEO_ENCODER, false)))
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "%s: this majordomed was built without video support",
                                         c->video_decoder ? "video_decoder" : "video_encoder");
        return 0;
}

int machine_config_bus_parse(Manager *m, sd_bus_message *msg, const AuthCaller *caller, MachineConfig *c,
                             bool *ret_block, sd_bus_error *error) {
        bool seen[ARRAY_SIZE(config_keys)] = {};
        unsigned n_keys = 0, n_fds = 0;
        const char *wayland_socket = NULL;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key, *contents;
                size_t k;

                r = dict_next(msg, &key, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (++n_keys > MANAGER_CONFIG_KEYS_MAX)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "config has more than %d keys", MANAGER_CONFIG_KEYS_MAX);

                for (k = 0; k < ARRAY_SIZE(config_keys); k++)
                        if (strcmp(key, config_keys[k]) == 0)
                                break;
                if (k == ARRAY_SIZE(config_keys))
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "%s: unknown config key", key);
                if (seen[k])
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "%s: given twice", key);
                seen[k] = true;
                if (strcmp(contents, "h") == 0 && ++n_fds > MANAGER_CONFIG_FDS_MAX)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "more than %d file descriptors", MANAGER_CONFIG_FDS_MAX);

                if (strcmp(key, "kernel") == 0)
                        r = config_open_file(msg, caller, key, contents, false, &c->kernel_fd, error);
                else if (strcmp(key, "initrd") == 0)
                        r = config_open_file(msg, caller, key, contents, false, &c->initrd_fd, error);
                else if (strcmp(key, "serial_log") == 0)
                        r = config_open_file(msg, caller, key, contents, true, &c->serial_fd, error);
                else if (strcmp(key, "cmdline") == 0) {
                        const char *s;

                        if (strcmp(contents, "s") != 0)
                                return config_wrong_type(error, key, "s", contents);
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r < 0)
                                return r;
                        if (strlen(s) > MACHINE_CMDLINE_MAX)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "cmdline: longer than %d bytes", MACHINE_CMDLINE_MAX);
                        c->cmdline = strdup(s);
                        if (!c->cmdline)
                                return -ENOMEM;
                } else if (strcmp(key, "memory") == 0) {
                        uint64_t mem, max = MIN(MACHINE_MEMORY_MAX, host_memory_bytes());

                        if (strcmp(contents, "t") != 0)
                                return config_wrong_type(error, key, "t", contents);
                        r = sd_bus_message_read(msg, "v", "t", &mem);
                        if (r < 0)
                                return r;
                        if (mem < MACHINE_MEMORY_MIN || mem % MiB != 0 || mem > max)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "memory: %" PRIu64 " bytes is not a multiple of 1 MiB "
                                                         "between 1 MiB and %" PRIu64 " MiB", mem, max / MiB);
                        c->memory_bytes = mem;
                } else if (strcmp(key, "memory_max") == 0 || strcmp(key, "cpu_weight") == 0) {
                        bool mem = key[0] == 'm';
                        uint64_t v;

                        if (strcmp(contents, "t") != 0)
                                return config_wrong_type(error, key, "t", contents);
                        r = sd_bus_message_read(msg, "v", "t", &v);
                        if (r < 0)
                                return r;
                        /* systemd's own ranges: CPUWeight= 1..10000; a
                         * MemoryMax= under a VMM's own needs is no limit
                         * worth having. */
                        if (mem ? v < MACHINE_SCOPE_MEMORY_MIN : (v < 1 || v > 10000))
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         mem ? "memory_max: %" PRIu64 " is under %d MiB" :
                                                               "cpu_weight: %" PRIu64 " is not between 1 and 10000",
                                                         v, (int) (MACHINE_SCOPE_MEMORY_MIN >> 20));
                        if (mem)
                                c->memory_max = v;
                        else
                                c->cpu_weight = v;
                } else if (strcmp(key, "cpus") == 0) {
                        uint32_t cpus;

                        if (strcmp(contents, "u") != 0)
                                return config_wrong_type(error, key, "u", contents);
                        r = sd_bus_message_read(msg, "v", "u", &cpus);
                        if (r < 0)
                                return r;
                        if (cpus < 1 || cpus > MACHINE_CPUS_MAX)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "cpus: %" PRIu32 " is not between 1 and %d", cpus, MACHINE_CPUS_MAX);
                        c->cpus = cpus;
                } else if (strcmp(key, "debug_exit") == 0 || strcmp(key, "vsock") == 0 ||
                           strcmp(key, "balloon") == 0 || strcmp(key, "rng") == 0 ||
                           strcmp(key, "video_decoder") == 0 || strcmp(key, "video_encoder") == 0 ||
                           strcmp(key, "live_shares") == 0) {
                        int b;

                        if (strcmp(contents, "b") != 0)
                                return config_wrong_type(error, key, "b", contents);
                        r = sd_bus_message_read(msg, "v", "b", &b);
                        if (r < 0)
                                return r;
                        if (strcmp(key, "debug_exit") == 0)
                                c->debug_exit = b;
                        else if (strcmp(key, "vsock") == 0)
                                c->vsock = b;
                        else if (strcmp(key, "balloon") == 0)
                                c->balloon = b;
                        else if (strcmp(key, "video_decoder") == 0)
                                c->video_decoder = b;
                        else if (strcmp(key, "video_encoder") == 0)
                                c->video_encoder = b;
                        else if (strcmp(key, "live_shares") == 0)
                                c->live_shares = b;
                        else
                                c->rng = b;
                } else if (strcmp(key, "on_panic") == 0) {
                        const char *s;
                        int action;

                        if (strcmp(contents, "s") != 0)
                                return config_wrong_type(error, key, "s", contents);
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r < 0)
                                return r;
                        action = control_panic_action_from_string(s);
                        if (action < 0)
                                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                         "on_panic: '%s' is neither 'stop' nor 'pause'", s);
                        c->on_panic = (uint32_t) action;
                } else if (strcmp(key, "disks") == 0) {
                        if (strcmp(contents, "aa{sv}") != 0)
                                return config_wrong_type(error, key, "aa{sv}", contents);
                        r = config_parse_disks(msg, caller, c, &n_fds, ret_block, error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(msg);
                        if (r < 0)
                                return r;
                        continue;
                } else if (strcmp(key, "gpu") == 0) {
                        if (strcmp(contents, "a{sv}") != 0)
                                return config_wrong_type(error, key, "a{sv}", contents);
                        r = config_parse_gpu(msg, &c->gpu, error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(msg);
                        if (r < 0)
                                return r;
                        continue;
                } else if (strcmp(key, "wayland_socket") == 0) {
                        if (strcmp(contents, "s") != 0)
                                return config_wrong_type(error, key, "s", contents);
                        r = sd_bus_message_read(msg, "v", "s", &wayland_socket);
                        if (r < 0)
                                return r;
                } else if (strcmp(key, "shares") == 0) {
                        if (strcmp(contents, "aa{sv}") != 0)
                                return config_wrong_type(error, key, "aa{sv}", contents);
                        r = config_parse_shares(msg, caller, c, error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(msg);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if (c->kernel_fd < 0)
                return sd_bus_error_set(error, MAJORDOME_ERROR_INVALID_CONFIG, "kernel: required key missing");
        for (unsigned i = 0; c->live_shares && i < c->n_shares; i++)
                if (strcmp(c->shares[i].tag, MACHINE_LIVE_SHARES_TAG) == 0)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "shares[%u].tag: '%s' is live_shares' own tag", i,
                                                 MACHINE_LIVE_SHARES_TAG);
        /* Each device is a PCI slot of the VMM's 16. */
        {
                unsigned n = c->n_disks + c->balloon + c->rng + c->n_shares + c->live_shares + c->vsock +
                             c->gpu.enabled + c->video_decoder + c->video_encoder;

                if (n > VMM_CONFIG_DEVICES_MAX)
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "config: %u devices (disks, shares, balloon, rng, vsock, gpu, "
                                                 "video), at most %d", n, VMM_CONFIG_DEVICES_MAX);
        }
        if (wayland_socket && !c->gpu.enabled)
                return sd_bus_error_set(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                        "wayland_socket: given without gpu (a compositor connection is "
                                        "for a GPU's displays)");
        r = config_check_features(c, wayland_socket != NULL, error);
        if (r < 0)
                return r;
        /* Opened (and tried) last, once the rest is known to be good: the
         * compositor sees a client only for a config that may start. */
        if (wayland_socket) {
                r = wayland_open(caller, wayland_socket, &c->wayland_fd, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* StartVm's message is bounded before polkit is asked: an authorization
 * check holds the message, and the descriptors it carries, while polkit
 * (or a person) thinks. The bounds are wide enough for the largest valid
 * config (11 paths of PATH_MAX, a cmdline of MACHINE_CMDLINE_MAX). */
typedef struct MessageSize {
        size_t bytes;
        unsigned items;
        unsigned fds;
} MessageSize;

static int message_measure(sd_bus_message *msg, MessageSize *size, unsigned depth) {
        int r;

        for (;;) {
                const char *contents;
                char type;

                r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r <= 0)
                        return r;
                if (++size->items > MANAGER_CONFIG_ITEMS_MAX || depth > 8)
                        return -E2BIG;
                if (type == SD_BUS_TYPE_ARRAY || type == SD_BUS_TYPE_VARIANT || type == SD_BUS_TYPE_STRUCT ||
                    type == SD_BUS_TYPE_DICT_ENTRY) {
                        r = sd_bus_message_enter_container(msg, type, contents);
                        if (r < 0)
                                return r;
                        r = message_measure(msg, size, depth + 1);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(msg);
                } else {
                        union {
                                const char *s;
                                uint64_t u;
                                double d;
                                int i;
                        } v;

                        r = sd_bus_message_read_basic(msg, type, &v);
                        if (r < 0)
                                return r;
                        if (type == SD_BUS_TYPE_STRING || type == SD_BUS_TYPE_OBJECT_PATH ||
                            type == SD_BUS_TYPE_SIGNATURE)
                                size->bytes += strlen(v.s) + 1;
                        else
                                size->bytes += sizeof(uint64_t);
                        if (type == SD_BUS_TYPE_UNIX_FD)
                                size->fds++;
                }
                if (r < 0)
                        return r;
                if (size->bytes > MANAGER_CONFIG_BYTES_MAX || size->fds > MANAGER_CONFIG_FDS_MAX)
                        return -E2BIG;
        }
}

int machine_config_bus_check_size(sd_bus_message *msg, sd_bus_error *error) {
        MessageSize size = {};
        int r;

        r = message_measure(msg, &size, 0);
        if (r == -E2BIG)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                         "config: too large (at most %d bytes of values, %d values, "
                                         "%d file descriptors)", MANAGER_CONFIG_BYTES_MAX, MANAGER_CONFIG_ITEMS_MAX,
                                         MANAGER_CONFIG_FDS_MAX);
        if (r < 0)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG, "config: unreadable (%s)",
                                         strerror(-r));
        return 0;
}
