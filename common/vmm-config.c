/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "majordome-features.h"
#include "common/macro.h"
#include "common/string-table.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "common/vmm-config.h"

static const char *const vmm_device_kind_table[_VMM_DEVICE_KIND_MAX] = {
        [VMM_DEVICE_BALLOON] = "balloon",
        [VMM_DEVICE_BLOCK] = "block",
        [VMM_DEVICE_CONSOLE] = "console",
        [VMM_DEVICE_RNG] = "rng",
        [VMM_DEVICE_VSOCK] = "vsock",
        [VMM_DEVICE_VHOST_USER] = "vhost-user",
        [VMM_DEVICE_SHARED_DIR] = "shared-dir",
        [VMM_DEVICE_GPU] = "gpu",
        [VMM_DEVICE_VIDEO_DECODER] = "video-decoder",
        [VMM_DEVICE_VIDEO_ENCODER] = "video-encoder",
};

static const char *const vhost_user_type_table[] = {
        [VMM_VHOST_USER_RNG] = "rng",
        [VMM_VHOST_USER_FS] = "fs",
        [VMM_VHOST_USER_GPU] = "gpu",
        [VMM_VHOST_USER_VIDEO_ENCODER] = "video-encoder",
        [VMM_VHOST_USER_VIDEO_DECODER] = "video-decoder",
};

static const char *const fs_cache_table[_VMM_FS_CACHE_MAX] = {
        [VMM_FS_CACHE_AUTO] = "auto",
        [VMM_FS_CACHE_ALWAYS] = "always",
        [VMM_FS_CACHE_NEVER] = "never",
};

static const char *const gpu_backend_table[_VMM_GPU_BACKEND_MAX] = {
        [VMM_GPU_BACKEND_2D] = "2d",
        [VMM_GPU_BACKEND_VIRGL] = "virglrenderer",
};

static const char *const video_backend_table[_VMM_VIDEO_BACKEND_MAX] = {
        [VMM_VIDEO_BACKEND_FFMPEG] = "ffmpeg",
};

static const struct {
        uint32_t bit;
        const char *name;
} gpu_context_table[] = {
        { VMM_GPU_CONTEXT_VIRGL, "virgl" },
        { VMM_GPU_CONTEXT_VIRGL2, "virgl2" },
        { VMM_GPU_CONTEXT_CROSS_DOMAIN, "cross-domain" },
};

int vmm_gpu_context_types_to_string(uint32_t mask, char *buf, size_t size) {
        size_t n = 0;

        if (mask & ~VMM_GPU_CONTEXT_ALL)
                return -EINVAL;
        if (size == 0)
                return -ENOBUFS;
        buf[0] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(gpu_context_table); i++) {
                int k;

                if (!(mask & gpu_context_table[i].bit))
                        continue;
                k = snprintf(buf + n, size - n, "%s%s", n ? ":" : "", gpu_context_table[i].name);
                if (k < 0 || (size_t) k >= size - n)
                        return -ENOBUFS;
                n += (size_t) k;
        }
        return 0;
}

static int fail(VmmConfigError *error, int r, const char *fmt, ...) _printf_(3, 4);

int vmm_gpu_context_types_from_string(const char *s, uint32_t *ret, VmmConfigError *error) {
        uint32_t mask = 0;
        const char *p = s;

        if (!s || !s[0])
                return fail(error, -EINVAL, "an empty list (want names among virgl, virgl2, cross-domain)");
        for (;;) {
                size_t len = strcspn(p, ":"), i;

                for (i = 0; i < ARRAY_SIZE(gpu_context_table); i++)
                        if (strlen(gpu_context_table[i].name) == len &&
                            strncmp(gpu_context_table[i].name, p, len) == 0)
                                break;
                if (i == ARRAY_SIZE(gpu_context_table))
                        return fail(error, -EINVAL, "'%.*s' is not a context type (want virgl, virgl2 or "
                                    "cross-domain)", (int) (len > 64 ? 64 : len), p);
                if (mask & gpu_context_table[i].bit)
                        return fail(error, -EEXIST, "'%s' given twice", gpu_context_table[i].name);
                mask |= gpu_context_table[i].bit;
                if (!p[len])
                        break;
                p += len + 1;
        }
        *ret = mask;
        return 0;
}

DEFINE_STRING_TABLE(vmm_vhost_user_type, uint32_t, vhost_user_type_table)
DEFINE_STRING_TABLE(vmm_video_backend, uint32_t, video_backend_table)
DEFINE_STRING_TABLE(vmm_gpu_backend, uint32_t, gpu_backend_table)
DEFINE_STRING_TABLE(vmm_fs_cache, uint32_t, fs_cache_table)
DEFINE_STRING_TABLE(vmm_device_kind, uint32_t, vmm_device_kind_table)

void vmm_config_init(VmmConfig *c) {
        *c = (VmmConfig) {
                .mem_size = VMM_CONFIG_MEM_DEFAULT,
                .n_vcpus = 1,
                .kernel_fd = -1,
                .initrd_fd = -1,
                .serial = VMM_SERIAL_STDOUT,
                .serial_fd = -1,
                .on_panic = CONTROL_PANIC_STOP,
                .decompress = true,
        };
}

static bool console_has_fd(uint32_t backend) {
        return backend == VMM_CONSOLE_FD || backend == VMM_CONSOLE_FILE;
}

int *vmm_device_fd(VmmDevice *d) {
        if (d->kind == VMM_DEVICE_BLOCK)
                return &d->block.fd;
        if (d->kind == VMM_DEVICE_CONSOLE && console_has_fd(d->console.backend))
                return &d->console.fd;
        if (d->kind == VMM_DEVICE_VHOST_USER)
                return &d->vhost_user.fd;
        if (d->kind == VMM_DEVICE_SHARED_DIR)
                return &d->shared_dir.fd;
        if (d->kind == VMM_DEVICE_GPU)
                return &d->gpu.wayland_fd;
        return NULL;
}

void vmm_config_close_fds(VmmConfig *c) {
        c->kernel_fd = safe_close(c->kernel_fd);
        c->initrd_fd = safe_close(c->initrd_fd);
        if (c->serial == VMM_SERIAL_FD)
                c->serial_fd = safe_close(c->serial_fd);
        for (unsigned i = 0; i < c->n_devices && i < VMM_CONFIG_DEVICES_MAX; i++) {
                int *fd = vmm_device_fd(&c->devices[i]);

                if (fd)
                        *fd = safe_close(*fd);
        }
}

/* ---- validation ---- */

_printf_(3, 4)
static int fail(VmmConfigError *error, int r, const char *fmt, ...) {
        va_list ap;

        if (error) {
                va_start(ap, fmt);
                vsnprintf(error->message, sizeof(error->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

typedef enum FdUse {
        FD_READ_FILE,   /* a file or pipe to read to its end: kernel, initrd */
        FD_WRITE,       /* anything writable but a directory: serial, console */
        FD_DISK,        /* a regular file or block device */
} FdUse;

static int check_fd(int fd, FdUse use, bool writable, struct stat *ret_st, const char *what, VmmConfigError *error) {
        struct stat st;
        int flags;

        if (fd < 0)
                return fail(error, -EBADF, "%s: no descriptor", what);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fstat(fd, &st) < 0)
                return fail(error, -EBADF, "%s: descriptor %d is not open", what, fd);
        if (flags & O_PATH)
                return fail(error, -EBADF, "%s: an O_PATH descriptor cannot be read or written", what);
        if (S_ISDIR(st.st_mode))
                return fail(error, -EBADF, "%s: is a directory", what);
        switch (use) {
        case FD_READ_FILE:
                /* A pipe too: the image is read once, to its end (a caller
                 * may stream it, as tests/sandbox does). */
                if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
                        return fail(error, -EBADF, "%s: not a regular file or a pipe", what);
                if ((flags & O_ACCMODE) == O_WRONLY)
                        return fail(error, -EBADF, "%s: not open for reading", what);
                break;
        case FD_WRITE:
                if ((flags & O_ACCMODE) == O_RDONLY)
                        return fail(error, -EBADF, "%s: not open for writing", what);
                break;
        case FD_DISK:
                if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                        return fail(error, -EBADF, "%s: not a regular file or block device", what);
                if ((flags & O_ACCMODE) == O_WRONLY)
                        return fail(error, -EBADF, "%s: not open for reading", what);
                if (writable && (flags & O_ACCMODE) != O_RDWR)
                        return fail(error, -EACCES, "%s: opened read-only for a writable disk (add ro)", what);
                break;
        }
        if (ret_st)
                *ret_st = st;
        return 0;
}

static bool socket_path_ok(const char *path) {
        size_t n = strnlen(path, VMM_CONFIG_SOCKET_PATH_MAX + 1);

        return n > 0 && n <= VMM_CONFIG_SOCKET_PATH_MAX;
}

bool vmm_fs_tag_char_ok(char c) {
        return c > 0x20 && c <= 0x7e && !strchr(":,/\\", c);
}

bool vmm_fs_tag_is_valid(const char *tag) {
        size_t n = strnlen(tag, VMM_CONFIG_FS_TAG_MAX + 1);

        if (n == 0 || n > VMM_CONFIG_FS_TAG_MAX)
                return false;
        for (size_t k = 0; k < n; k++)
                if (!vmm_fs_tag_char_ok(tag[k]))
                        return false;
        return true;
}

static int tag_check(const char *tag, bool empty_ok, const char *what, unsigned i, VmmConfigError *error) {
        size_t n = strnlen(tag, VMM_CONFIG_FS_TAG_MAX + 1);

        if (n > VMM_CONFIG_FS_TAG_MAX)
                return fail(error, -EINVAL, "%s %u: tag longer than %d bytes", what, i, VMM_CONFIG_FS_TAG_MAX);
        if (n == 0 && !empty_ok)
                return fail(error, -EINVAL, "%s %u: empty tag", what, i);
        if (n > 0 && !vmm_fs_tag_is_valid(tag))
                return fail(error, -EINVAL, "%s %u: tag is not printable ASCII without space, ':', ',', '/' "
                            "or '\\'", what, i);
        return 0;
}

const char *vmm_config_missing_feature(uint32_t kind, bool wayland) {
        switch (kind) {
        case VMM_DEVICE_GPU:
                if (!MAJORDOME_HAVE_GPU)
                        return "gpu";
                if (wayland && !MAJORDOME_HAVE_WAYLAND)
                        return "wayland";
                return NULL;
        case VMM_DEVICE_VIDEO_DECODER:
        case VMM_DEVICE_VIDEO_ENCODER:
                return MAJORDOME_HAVE_VIDEO ? NULL : "video";
        default:
                return NULL;
        }
}

static int validate_device(const VmmDevice *d, unsigned i, VmmConfigError *error) {
        const char *name = vmm_device_kind_to_string(d->kind), *missing;

        if (!name)
                return fail(error, -EINVAL, "device %u: unknown kind %" PRIu32, i, d->kind);
        /* Before the values: a device process this build does not have
         * cannot take any. */
        missing = vmm_config_missing_feature(d->kind, d->kind == VMM_DEVICE_GPU &&
                                             (d->gpu.wayland_fd >= 0 ||
                                              (d->gpu.context_types & VMM_GPU_CONTEXT_CROSS_DOMAIN)));
        if (missing && strcmp(missing, "wayland") == 0)
                return fail(error, -EOPNOTSUPP, "--gpu %u: built without wayland support: no compositor "
                            "(--wayland-sock) and no cross-domain context, the GPU is headless only", i);
        if (missing)
                return fail(error, -EOPNOTSUPP, "--%s %u: built without %s support", name, i, missing);
        switch (d->kind) {
        case VMM_DEVICE_BLOCK: {
                size_t n = strnlen(d->block.id, sizeof(d->block.id));

                if (n > VMM_CONFIG_DISK_ID_MAX)
                        return fail(error, -EINVAL, "--block %u: id longer than %d bytes", i, VMM_CONFIG_DISK_ID_MAX);
                for (size_t k = 0; k < n; k++)
                        if (d->block.id[k] < 0x20 || d->block.id[k] > 0x7e)
                                return fail(error, -EINVAL, "--block %u: id is not printable ASCII", i);
                break;
        }
        case VMM_DEVICE_CONSOLE:
                if (d->console.backend >= _VMM_CONSOLE_BACKEND_MAX)
                        return fail(error, -EINVAL, "--console %u: unknown backend %" PRIu32, i, d->console.backend);
                if (d->console.backend == VMM_CONSOLE_SOCKET && !socket_path_ok(d->console.path))
                        return fail(error, -EINVAL, "--console %u: socket path empty or longer than %d bytes", i,
                                    VMM_CONFIG_SOCKET_PATH_MAX);
                break;
        case VMM_DEVICE_VSOCK: {
                const char *slash = strrchr(d->vsock.path, '/');

                if (d->vsock.cid < VMM_CONFIG_VSOCK_CID_MIN || d->vsock.cid > VMM_CONFIG_VSOCK_CID_MAX)
                        return fail(error, -ERANGE, "--vsock: cid %" PRIu32 " out of range %d..%" PRIu32,
                                    d->vsock.cid, VMM_CONFIG_VSOCK_CID_MIN, VMM_CONFIG_VSOCK_CID_MAX);
                if (d->vsock.max_connections < 1 ||
                    d->vsock.max_connections > VMM_CONFIG_VSOCK_MAX_CONNECTIONS_LIMIT)
                        return fail(error, -ERANGE, "--vsock: max-connections %" PRIu32 " out of range 1..%d",
                                    d->vsock.max_connections, VMM_CONFIG_VSOCK_MAX_CONNECTIONS_LIMIT);
                /* PATH is bound whole and PATH_4294967295 connected to whole:
                 * both must fit sun_path. */
                if (!socket_path_ok(d->vsock.path) || strlen(d->vsock.path) + 11 > VMM_CONFIG_SOCKET_PATH_MAX ||
                    (slash && slash[1] == '\0'))
                        return fail(error, -EINVAL, "--vsock: path empty, a directory, or too long for PATH_PORT "
                                    "to fit a socket address");
                break;
        }
        case VMM_DEVICE_VHOST_USER:
                if (!vmm_vhost_user_type_to_string(d->vhost_user.type))
                        return fail(error, -EINVAL, "--vhost-user %u: unknown device type %" PRIu32, i,
                                    d->vhost_user.type);
                if (d->vhost_user.type != VMM_VHOST_USER_FS && d->vhost_user.tag[0])
                        return fail(error, -EINVAL, "--vhost-user %u: tag is for fs only", i);
                return tag_check(d->vhost_user.tag, true, "--vhost-user", i, error);
        case VMM_DEVICE_SHARED_DIR:
                if (!vmm_fs_cache_to_string(d->shared_dir.cache))
                        return fail(error, -EINVAL, "--shared-dir %u: unknown cache mode %" PRIu32, i,
                                    d->shared_dir.cache);
                return tag_check(d->shared_dir.tag, false, "--shared-dir", i, error);
        case VMM_DEVICE_GPU:
                if (!vmm_gpu_backend_to_string(d->gpu.backend))
                        return fail(error, -EINVAL, "--gpu %u: unknown backend %" PRIu32, i, d->gpu.backend);
                if (d->gpu.width < 1 || d->gpu.width > VMM_CONFIG_GPU_SIZE_MAX || d->gpu.height < 1 ||
                    d->gpu.height > VMM_CONFIG_GPU_SIZE_MAX)
                        return fail(error, -ERANGE, "--gpu %u: display size %" PRIu32 "x%" PRIu32 " out of range "
                                    "1..%d", i, d->gpu.width, d->gpu.height, VMM_CONFIG_GPU_SIZE_MAX);
                if (d->gpu.displays > VMM_CONFIG_GPU_DISPLAYS_MAX)
                        return fail(error, -ERANGE, "--gpu %u: %" PRIu32 " displays, at most %d", i,
                                    d->gpu.displays, VMM_CONFIG_GPU_DISPLAYS_MAX);
                if (d->gpu.max_memory < VMM_CONFIG_GPU_MEMORY_MIN || d->gpu.max_memory > VMM_CONFIG_GPU_MEMORY_MAX)
                        return fail(error, -ERANGE, "--gpu %u: max-memory %" PRIu64 " out of range %" PRIu64
                                    "M..%" PRIu64 "M", i, d->gpu.max_memory, VMM_CONFIG_GPU_MEMORY_MIN >> 20,
                                    VMM_CONFIG_GPU_MEMORY_MAX >> 20);
                if (d->gpu.context_types & ~VMM_GPU_CONTEXT_ALL)
                        return fail(error, -EINVAL, "--gpu %u: unknown context types 0x%" PRIx32, i,
                                    d->gpu.context_types & ~VMM_GPU_CONTEXT_ALL);
                if ((d->gpu.context_types & (VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_VIRGL2)) &&
                    d->gpu.backend != VMM_GPU_BACKEND_VIRGL)
                        return fail(error, -EINVAL, "--gpu %u: context types virgl and virgl2 need "
                                    "backend=virglrenderer", i);
                return 0;
        case VMM_DEVICE_VIDEO_DECODER:
        case VMM_DEVICE_VIDEO_ENCODER:
                if (!vmm_video_backend_to_string(d->video.backend))
                        return fail(error, -EINVAL, "--%s %u: unknown backend %" PRIu32,
                                    vmm_device_kind_to_string(d->kind), i, d->video.backend);
                return 0;
        default:
                break;
        }
        return 0;
}

/* The tag a guest mounts (mount -t virtiofs TAG): a name, not a path. */
static const char *fs_tag(const VmmDevice *d) {
        if (d->kind == VMM_DEVICE_SHARED_DIR)
                return d->shared_dir.tag;
        if (d->kind == VMM_DEVICE_VHOST_USER && d->vhost_user.type == VMM_VHOST_USER_FS)
                return d->vhost_user.tag;
        return NULL;
}

/* Everything but the descriptors: what the encoder checks too. */
static int validate_values(const VmmConfig *c, VmmConfigError *error) {
        unsigned n_balloon = 0, n_vsock = 0, n_gpu = 0, n_decoders = 0, n_encoders = 0;
        int r;

        if (c->mem_size == 0 || c->mem_size % VMM_CONFIG_MEM_ALIGN != 0)
                return fail(error, -EINVAL, "--mem %" PRIu64 ": must be a non-zero multiple of 1M", c->mem_size);
        if (c->mem_size > VMM_CONFIG_MEM_MAX)
                return fail(error, -ERANGE, "--mem %" PRIu64 "M: more than %" PRIu64 "M", c->mem_size >> 20,
                            VMM_CONFIG_MEM_MAX >> 20);
        if (c->n_vcpus == 0)
                return fail(error, -EINVAL, "--cpus 0: a VM needs at least one vCPU");
        if (c->n_vcpus > VMM_CONFIG_VCPUS_MAX)
                return fail(error, -ERANGE, "--cpus %" PRIu32 ": at most %d", c->n_vcpus, VMM_CONFIG_VCPUS_MAX);
        if (strnlen(c->cmdline, sizeof(c->cmdline)) > VMM_CONFIG_CMDLINE_MAX)
                return fail(error, -EINVAL, "--cmdline: longer than %d bytes", VMM_CONFIG_CMDLINE_MAX);
        if (c->serial >= _VMM_SERIAL_MAX)
                return fail(error, -EINVAL, "--serial: unknown kind %" PRIu32, c->serial);
        if (c->serial_max > 0 && c->serial_max < VMM_CONFIG_SERIAL_MAX_MIN)
                return fail(error, -ERANGE, "--serial-max-size %" PRIu64 ": want 0 or at least 16K", c->serial_max);
        if (c->serial_max > 0 && c->serial != VMM_SERIAL_FD)
                return fail(error, -EINVAL, "--serial-max-size: the serial output is not a file");
        if (c->on_panic >= _CONTROL_PANIC_ACTION_MAX)
                return fail(error, -EINVAL, "--on-panic %" PRIu32 ": must be stop or pause", c->on_panic);
        if (c->n_devices > VMM_CONFIG_DEVICES_MAX)
                return fail(error, -E2BIG, "%u devices: at most %d", c->n_devices, VMM_CONFIG_DEVICES_MAX);
        for (unsigned i = 0; i < c->n_devices; i++) {
                r = validate_device(&c->devices[i], i, error);
                if (r < 0)
                        return r;
                n_balloon += c->devices[i].kind == VMM_DEVICE_BALLOON;
                n_vsock += c->devices[i].kind == VMM_DEVICE_VSOCK;
                n_gpu += c->devices[i].kind == VMM_DEVICE_GPU;
                n_decoders += c->devices[i].kind == VMM_DEVICE_VIDEO_DECODER;
                n_encoders += c->devices[i].kind == VMM_DEVICE_VIDEO_ENCODER;
                /* The guest mounts by tag: two alike would hide one share. */
                for (unsigned k = 0; k < i; k++) {
                        const char *a = fs_tag(&c->devices[i]), *b = fs_tag(&c->devices[k]);

                        if (a && b && a[0] && strcmp(a, b) == 0)
                                return fail(error, -EEXIST, "device %u: tag %s is already device %u's", i, a, k);
                }
        }
        /* The control messages address "the" balloon, and a guest has one CID. */
        if (n_balloon > 1)
                return fail(error, -EEXIST, "--balloon: at most one");
        if (n_vsock > 1)
                return fail(error, -EEXIST, "--vsock: at most one");
        /* One host compositor connection, one set of windows. */
        if (n_gpu > 1)
                return fail(error, -EEXIST, "--gpu: at most one");
        /* One device of each serves any number of streams. */
        if (n_decoders > 1 || n_encoders > 1)
                return fail(error, -EEXIST, "--video-%s: at most one", n_decoders > 1 ? "decoder" : "encoder");
        return 0;
}

int vmm_config_validate(const VmmConfig *c, VmmConfigError *error) {
        struct stat disks[VMM_CONFIG_DEVICES_MAX];
        unsigned n_disks = 0;
        char what[32];
        int r;

        r = validate_values(c, error);
        if (r < 0)
                return r;
        r = check_fd(c->kernel_fd, FD_READ_FILE, false, NULL, "kernel", error);
        if (r >= 0 && c->initrd_fd >= 0)
                r = check_fd(c->initrd_fd, FD_READ_FILE, false, NULL, "initrd", error);
        if (r < 0) {
                if (error)
                        error->bad_input = true;
                return r;
        }
        if (c->serial == VMM_SERIAL_FD) {
                r = check_fd(c->serial_fd, FD_WRITE, true, NULL, "--serial", error);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; i < c->n_devices; i++) {
                const VmmDevice *d = &c->devices[i];
                struct stat st;

                snprintf(what, sizeof(what), "--%s %u", vmm_device_kind_to_string(d->kind), i);
                if (d->kind == VMM_DEVICE_CONSOLE && console_has_fd(d->console.backend)) {
                        r = check_fd(d->console.fd, FD_WRITE, true, NULL, what, error);
                        if (r < 0)
                                return r;
                }
                if (d->kind == VMM_DEVICE_VHOST_USER || d->kind == VMM_DEVICE_SHARED_DIR) {
                        bool dir = d->kind == VMM_DEVICE_SHARED_DIR;
                        int fd = dir ? d->shared_dir.fd : d->vhost_user.fd, flags = fcntl(fd, F_GETFL);

                        if (fd < 0 || flags < 0 || fstat(fd, &st) < 0)
                                return fail(error, -EBADF, "%s: descriptor %d is not open", what, fd);
                        if (flags & O_PATH)
                                return fail(error, -EBADF, "%s: an O_PATH descriptor", what);
                        if (dir ? !S_ISDIR(st.st_mode) : !S_ISSOCK(st.st_mode))
                                return fail(error, -EBADF, "%s: not a %s", what, dir ? "directory" : "socket");
                        continue;
                }
                if (d->kind == VMM_DEVICE_GPU && d->gpu.wayland_fd >= 0) {
                        int flags = fcntl(d->gpu.wayland_fd, F_GETFL);

                        if (flags < 0 || fstat(d->gpu.wayland_fd, &st) < 0)
                                return fail(error, -EBADF, "%s: the compositor descriptor %d is not open", what,
                                            d->gpu.wayland_fd);
                        /* An O_PATH handle to the socket's inode (majordome-gpu
                         * connects through it for each cross-domain context)
                         * or one connection: a socket either way. */
                        if (!S_ISSOCK(st.st_mode))
                                return fail(error, -EBADF, "%s: the compositor descriptor is not a socket", what);
                        continue;
                }
                if (d->kind != VMM_DEVICE_BLOCK)
                        continue;
                r = check_fd(d->block.fd, FD_DISK, !d->block.read_only, &st, what, error);
                if (r < 0)
                        return r;
                /* One image twice is two writers on it (or a writer under a
                 * reader): the guest would corrupt it. */
                for (unsigned k = 0; k < n_disks; k++)
                        if (disks[k].st_dev == st.st_dev && disks[k].st_ino == st.st_ino)
                                return fail(error, -EEXIST, "%s: the same image as an earlier disk", what);
                disks[n_disks++] = st;
        }
        return 0;
}

/* ---- the blob ---- */

#define FLAG_DEBUG_EXIT 1u
#define FLAG_PVPANIC 2u
#define FLAG_DECOMPRESS 4u
#define BALLOON_DEFLATE_ON_OOM 1u
#define BALLOON_PAGE_REPORTING 2u
#define BLOCK_READ_ONLY 1u
#define BLOCK_SPARSE 2u
#define DEVICE_HEADER_SIZE 4
#define BALLOON_SIZE 4
#define BLOCK_SIZE 32
#define PATH_DEVICE_HEADER_SIZE 12
#define SHARED_DIR_CACHE_MASK 0xffu
#define SHARED_DIR_READ_ONLY 0x100u
#define SHARED_DIR_LIVE 0x200u
#define GPU_SIZE 32
#define VIDEO_SIZE 4

typedef struct Writer {
        uint8_t *buf;
        size_t size;
        int *fds;
        size_t n_fds;
} Writer;

static uint32_t writer_fd(Writer *w, int fd) {
        if (fd < 0)
                return VMM_CONFIG_FD_NONE;
        w->fds[w->n_fds] = fd;
        return (uint32_t) w->n_fds++;
}

static uint8_t *writer_take(Writer *w, size_t n) {
        uint8_t *p = w->buf + w->size;

        w->size += n;
        return p;
}

static void writer_path_device(Writer *w, uint32_t a, uint32_t b, const char *path) {
        size_t n = strlen(path);
        uint8_t *p = writer_take(w, PATH_DEVICE_HEADER_SIZE + n);

        put_le32(p + 0, a);
        put_le32(p + 4, b);
        put_le32(p + 8, (uint32_t) n);
        memcpy(p + 12, path, n);
}

int vmm_config_encode(const VmmConfig *c, uint8_t *buf, size_t *ret_size, int *fds, size_t *ret_n_fds) {
        Writer w = { .buf = buf, .fds = fds };
        size_t cmdline_len;
        uint8_t *h;

        /* The value checks bound every length below: the blob fits. */
        if (validate_values(c, NULL) < 0 || c->kernel_fd < 0)
                return -EINVAL;
        cmdline_len = strlen(c->cmdline);
        h = writer_take(&w, VMM_CONFIG_HEADER_SIZE);
        put_le32(h + 0, VMM_CONFIG_VERSION);
        put_le32(h + 4, (c->debug_exit ? FLAG_DEBUG_EXIT : 0) | (c->pvpanic ? FLAG_PVPANIC : 0) |
                 (c->decompress ? FLAG_DECOMPRESS : 0));
        put_le64(h + 8, c->mem_size);
        put_le32(h + 16, c->n_vcpus);
        put_le32(h + 20, c->on_panic);
        put_le64(h + 24, c->serial_max);
        put_le32(h + 32, c->serial);
        put_le32(h + 40, writer_fd(&w, c->kernel_fd));
        put_le32(h + 44, writer_fd(&w, c->initrd_fd));
        put_le32(h + 36, c->serial == VMM_SERIAL_FD ? writer_fd(&w, c->serial_fd) : VMM_CONFIG_FD_NONE);
        put_le32(h + 48, (uint32_t) cmdline_len);
        put_le32(h + 52, c->n_devices);
        memcpy(writer_take(&w, cmdline_len), c->cmdline, cmdline_len);

        for (unsigned i = 0; i < c->n_devices; i++) {
                const VmmDevice *d = &c->devices[i];
                uint8_t *dh = writer_take(&w, DEVICE_HEADER_SIZE);
                size_t start = w.size;
                uint8_t *p;

                put_le16(dh, (uint16_t) d->kind);
                switch (d->kind) {
                case VMM_DEVICE_BALLOON:
                        p = writer_take(&w, BALLOON_SIZE);
                        put_le32(p, (d->balloon.deflate_on_oom ? BALLOON_DEFLATE_ON_OOM : 0) |
                                 (d->balloon.page_reporting ? BALLOON_PAGE_REPORTING : 0));
                        break;
                case VMM_DEVICE_BLOCK:
                        if (d->block.fd < 0)
                                return -EINVAL;
                        p = writer_take(&w, BLOCK_SIZE);
                        memset(p, 0, BLOCK_SIZE);
                        put_le32(p + 0, writer_fd(&w, d->block.fd));
                        put_le32(p + 4, (d->block.read_only ? BLOCK_READ_ONLY : 0) |
                                 (d->block.sparse ? BLOCK_SPARSE : 0));
                        put_le32(p + 8, (uint32_t) strlen(d->block.id));
                        memcpy(p + 12, d->block.id, strlen(d->block.id));
                        break;
                case VMM_DEVICE_CONSOLE:
                        if (console_has_fd(d->console.backend) && d->console.fd < 0)
                                return -EINVAL;
                        writer_path_device(&w, d->console.backend,
                                           console_has_fd(d->console.backend) ? writer_fd(&w, d->console.fd)
                                                                                : VMM_CONFIG_FD_NONE,
                                           d->console.backend == VMM_CONSOLE_SOCKET ? d->console.path : "");
                        break;
                case VMM_DEVICE_VSOCK:
                        writer_path_device(&w, d->vsock.cid, d->vsock.max_connections, d->vsock.path);
                        break;
                case VMM_DEVICE_VHOST_USER:
                        if (d->vhost_user.fd < 0)
                                return -EINVAL;
                        writer_path_device(&w, d->vhost_user.type, writer_fd(&w, d->vhost_user.fd), d->vhost_user.tag);
                        break;
                case VMM_DEVICE_SHARED_DIR:
                        if (d->shared_dir.fd < 0)
                                return -EINVAL;
                        writer_path_device(&w, d->shared_dir.cache | (d->shared_dir.read_only ? SHARED_DIR_READ_ONLY : 0) |
                                                   (d->shared_dir.live ? SHARED_DIR_LIVE : 0),
                                           writer_fd(&w, d->shared_dir.fd), d->shared_dir.tag);
                        break;
                case VMM_DEVICE_GPU:
                        p = writer_take(&w, GPU_SIZE);
                        put_le32(p + 0, d->gpu.backend);
                        put_le32(p + 4, d->gpu.width);
                        put_le32(p + 8, d->gpu.height);
                        put_le32(p + 12, d->gpu.displays);
                        put_le64(p + 16, d->gpu.max_memory);
                        put_le32(p + 24, writer_fd(&w, d->gpu.wayland_fd));
                        put_le32(p + 28, d->gpu.context_types);
                        break;
                case VMM_DEVICE_VIDEO_DECODER:
                case VMM_DEVICE_VIDEO_ENCODER:
                        p = writer_take(&w, VIDEO_SIZE);
                        put_le32(p, d->video.backend);
                        break;
                default: /* rng: no settings */
                        break;
                }
                put_le16(dh + 2, (uint16_t) (w.size - start));
        }
        *ret_size = w.size;
        *ret_n_fds = w.n_fds;
        return 0;
}

typedef struct Reader {
        const uint8_t *buf;
        size_t size;
        size_t at;
        const int *fds;
        size_t n_fds;
        bool used[VMM_CONFIG_FDS_MAX];
} Reader;

static const uint8_t *reader_take(Reader *rd, size_t n) {
        const uint8_t *p;

        if (rd->size - rd->at < n)
                return NULL;
        p = rd->buf + rd->at;
        rd->at += n;
        return p;
}

/* An fd index: in range and named once. none_ok: VMM_CONFIG_FD_NONE is -1. */
static int reader_fd(Reader *rd, uint32_t index, bool none_ok, int *ret) {
        if (index == VMM_CONFIG_FD_NONE && none_ok) {
                *ret = -1;
                return 0;
        }
        if (index >= rd->n_fds || rd->used[index])
                return -EBADMSG;
        rd->used[index] = true;
        *ret = rd->fds[index];
        return 0;
}

/* A length-prefixed string of the blob into a NUL-terminated buffer. */
static int copy_string(const uint8_t *p, size_t n, char *out, size_t out_size) {
        if (n >= out_size || memchr(p, '\0', n))
                return -EBADMSG;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
}

static int decode_device(Reader *rd, VmmDevice *d) {
        const uint8_t *h = reader_take(rd, DEVICE_HEADER_SIZE), *p;
        uint32_t flags, n;
        size_t length;

        if (!h)
                return -EBADMSG;
        *d = (VmmDevice) { .kind = get_le16(h) };
        length = get_le16(h + 2);
        p = reader_take(rd, length);
        if (!p)
                return -EBADMSG;
        switch (d->kind) {
        case VMM_DEVICE_BALLOON:
                if (length != BALLOON_SIZE)
                        return -EBADMSG;
                flags = get_le32(p);
                if (flags & ~(BALLOON_DEFLATE_ON_OOM | BALLOON_PAGE_REPORTING))
                        return -EBADMSG;
                d->balloon.deflate_on_oom = flags & BALLOON_DEFLATE_ON_OOM;
                d->balloon.page_reporting = flags & BALLOON_PAGE_REPORTING;
                return 0;
        case VMM_DEVICE_RNG:
                return length == 0 ? 0 : -EBADMSG;
        case VMM_DEVICE_BLOCK:
                if (length != BLOCK_SIZE)
                        return -EBADMSG;
                flags = get_le32(p + 4);
                n = get_le32(p + 8);
                if (flags & ~(BLOCK_READ_ONLY | BLOCK_SPARSE) || n > VMM_CONFIG_DISK_ID_MAX)
                        return -EBADMSG;
                for (size_t k = 12 + n; k < BLOCK_SIZE; k++)
                        if (p[k] != 0)
                                return -EBADMSG;
                d->block.read_only = flags & BLOCK_READ_ONLY;
                d->block.sparse = flags & BLOCK_SPARSE;
                if (copy_string(p + 12, n, d->block.id, sizeof(d->block.id)) < 0)
                        return -EBADMSG;
                return reader_fd(rd, get_le32(p), false, &d->block.fd);
        case VMM_DEVICE_CONSOLE:
        case VMM_DEVICE_VSOCK: {
                char *path = d->kind == VMM_DEVICE_CONSOLE ? d->console.path : d->vsock.path;

                if (length < PATH_DEVICE_HEADER_SIZE)
                        return -EBADMSG;
                n = get_le32(p + 8);
                if (n != length - PATH_DEVICE_HEADER_SIZE ||
                    copy_string(p + 12, n, path, VMM_CONFIG_SOCKET_PATH_MAX + 1) < 0)
                        return -EBADMSG;
                if (d->kind == VMM_DEVICE_VSOCK) {
                        d->vsock.cid = get_le32(p);
                        d->vsock.max_connections = get_le32(p + 4);
                        return 0;
                }
                d->console.backend = get_le32(p);
                d->console.fd = -1;
                if (console_has_fd(d->console.backend)) {
                        if (n > 0)
                                return -EBADMSG;
                        return reader_fd(rd, get_le32(p + 4), false, &d->console.fd);
                }
                /* The other backends name no descriptor; only a socket a path. */
                if (get_le32(p + 4) != VMM_CONFIG_FD_NONE || (d->console.backend != VMM_CONSOLE_SOCKET && n > 0))
                        return -EBADMSG;
                return 0;
        }
        case VMM_DEVICE_VHOST_USER:
        case VMM_DEVICE_SHARED_DIR: {
                bool dir = d->kind == VMM_DEVICE_SHARED_DIR;

                if (length < PATH_DEVICE_HEADER_SIZE)
                        return -EBADMSG;
                n = get_le32(p + 8);
                if (n != length - PATH_DEVICE_HEADER_SIZE ||
                    copy_string(p + 12, n, dir ? d->shared_dir.tag : d->vhost_user.tag, VMM_CONFIG_FS_TAG_MAX + 1) < 0)
                        return -EBADMSG;
                flags = get_le32(p);
                if (dir) {
                        if (flags & ~(SHARED_DIR_CACHE_MASK | SHARED_DIR_READ_ONLY | SHARED_DIR_LIVE))
                                return -EBADMSG;
                        d->shared_dir.cache = flags & SHARED_DIR_CACHE_MASK;
                        d->shared_dir.read_only = flags & SHARED_DIR_READ_ONLY;
                        d->shared_dir.live = flags & SHARED_DIR_LIVE;
                        return reader_fd(rd, get_le32(p + 4), false, &d->shared_dir.fd);
                }
                d->vhost_user.type = flags;
                return reader_fd(rd, get_le32(p + 4), false, &d->vhost_user.fd);
        }
        case VMM_DEVICE_GPU:
                if (length != GPU_SIZE)
                        return -EBADMSG;
                d->gpu.backend = get_le32(p);
                d->gpu.width = get_le32(p + 4);
                d->gpu.height = get_le32(p + 8);
                d->gpu.displays = get_le32(p + 12);
                d->gpu.max_memory = get_le64(p + 16);
                d->gpu.context_types = get_le32(p + 28);
                return reader_fd(rd, get_le32(p + 24), true, &d->gpu.wayland_fd);
        case VMM_DEVICE_VIDEO_DECODER:
        case VMM_DEVICE_VIDEO_ENCODER:
                if (length != VIDEO_SIZE)
                        return -EBADMSG;
                d->video.backend = get_le32(p);
                return 0;
        default:
                return -EBADMSG;
        }
}

int vmm_config_decode(const uint8_t *buf, size_t size, const int *fds, size_t n_fds,
                      VmmConfig *ret, VmmConfigError *error) {
        Reader rd = { .buf = buf, .size = size, .fds = fds, .n_fds = n_fds };
        const uint8_t *h, *p;
        uint32_t flags, n, serial_fd;
        VmmConfig c;
        int r;

        if (n_fds > VMM_CONFIG_FDS_MAX)
                return fail(error, -EBADMSG, "configure: %zu descriptors, at most %d", n_fds, VMM_CONFIG_FDS_MAX);
        if (size < 4)
                return fail(error, -EBADMSG, "configure: %zu bytes, shorter than its header", size);
        if (get_le32(buf) != VMM_CONFIG_VERSION)
                return fail(error, -EPROTO, "configure: version %" PRIu32 ", this VMM speaks %d", get_le32(buf),
                            VMM_CONFIG_VERSION);
        h = reader_take(&rd, VMM_CONFIG_HEADER_SIZE);
        if (!h)
                return fail(error, -EBADMSG, "configure: %zu bytes, shorter than its header", size);

        vmm_config_init(&c);
        flags = get_le32(h + 4);
        if (flags & ~(FLAG_DEBUG_EXIT | FLAG_PVPANIC | FLAG_DECOMPRESS))
                return fail(error, -EBADMSG, "configure: unknown flags 0x%" PRIx32, flags);
        c.debug_exit = flags & FLAG_DEBUG_EXIT;
        c.pvpanic = flags & FLAG_PVPANIC;
        c.decompress = flags & FLAG_DECOMPRESS;
        c.mem_size = get_le64(h + 8);
        c.n_vcpus = get_le32(h + 16);
        c.on_panic = get_le32(h + 20);
        c.serial_max = get_le64(h + 24);
        c.serial = get_le32(h + 32);
        serial_fd = get_le32(h + 36);
        if (reader_fd(&rd, get_le32(h + 40), false, &c.kernel_fd) < 0 ||
            reader_fd(&rd, get_le32(h + 44), true, &c.initrd_fd) < 0)
                return fail(error, -EBADMSG, "configure: kernel or initrd names no descriptor it came with");
        if (c.serial == VMM_SERIAL_FD ? reader_fd(&rd, serial_fd, false, &c.serial_fd) < 0
                                      : serial_fd != VMM_CONFIG_FD_NONE)
                return fail(error, -EBADMSG, "configure: the serial descriptor does not match its kind");
        n = get_le32(h + 48);
        if (n > VMM_CONFIG_CMDLINE_MAX)
                return fail(error, -EBADMSG, "configure: a command line of %" PRIu32 " bytes, at most %d", n,
                            VMM_CONFIG_CMDLINE_MAX);
        p = reader_take(&rd, n);
        if (!p || copy_string(p, n, c.cmdline, sizeof(c.cmdline)) < 0)
                return fail(error, -EBADMSG, "configure: the command line is truncated or holds a NUL");
        n = get_le32(h + 52);
        if (n > VMM_CONFIG_DEVICES_MAX)
                return fail(error, -EBADMSG, "configure: %" PRIu32 " devices, at most %d", n, VMM_CONFIG_DEVICES_MAX);
        for (c.n_devices = 0; c.n_devices < n; c.n_devices++) {
                r = decode_device(&rd, &c.devices[c.n_devices]);
                if (r < 0)
                        return fail(error, r, "configure: device %u is malformed or names no descriptor it came with",
                                    c.n_devices);
        }
        if (rd.at != size)
                return fail(error, -EBADMSG, "configure: %zu bytes after the last device", size - rd.at);
        for (size_t i = 0; i < n_fds; i++)
                if (!rd.used[i])
                        return fail(error, -EBADMSG, "configure: descriptor %zu came with it and is named nowhere", i);

        r = vmm_config_validate(&c, error);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

/* ---- the datagrams ---- */

int vmm_config_send(int fd, uint32_t first_id, const VmmConfig *c) {
        _cleanup_free_ uint8_t *blob = malloc(VMM_CONFIG_BLOB_MAX);
        uint8_t payload[CONTROL_PAYLOAD_MAX];
        int fds[VMM_CONFIG_FDS_MAX];
        size_t size, n_fds, n_parts;
        int r;

        if (!blob)
                return -ENOMEM;
        r = vmm_config_encode(c, blob, &size, fds, &n_fds);
        if (r < 0)
                return r;
        n_parts = MAX((size + VMM_CONFIG_PART_DATA_MAX - 1) / VMM_CONFIG_PART_DATA_MAX, (n_fds + CONTROL_FDS_MAX - 1) / CONTROL_FDS_MAX);
        n_parts = MAX(n_parts, (size_t) 1);
        if (n_parts > VMM_CONFIG_PARTS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n_parts; i++) {
                size_t off = i * VMM_CONFIG_PART_DATA_MAX, len = off < size ? MIN(size - off, VMM_CONFIG_PART_DATA_MAX) : 0;
                size_t fd_off = i * CONTROL_FDS_MAX, fd_n = fd_off < n_fds ? MIN(n_fds - fd_off, CONTROL_FDS_MAX) : 0;
                ControlHeader h = {
                        .magic = CONTROL_MAGIC,
                        .version = CONTROL_VERSION,
                        .type = CONTROL_TYPE_CONFIGURE,
                        .id = first_id + (uint32_t) i,
                        .length = (uint32_t) (VMM_CONFIG_PART_HEADER_SIZE + len),
                };

                put_le16(payload + 0, (uint16_t) i);
                put_le16(payload + 2, (uint16_t) n_parts);
                put_le32(payload + 4, 0);
                memcpy(payload + VMM_CONFIG_PART_HEADER_SIZE, blob + off, len);
                r = control_send(fd, &h, payload, fds + fd_off, fd_n);
                if (r < 0)
                        return r;
        }
        return (int) n_parts;
}

void vmm_config_reader_init(VmmConfigReader *r) {
        r->size = 0;
        r->n_fds = 0;
        r->next_part = 0;
        r->n_parts = 0;
}

void vmm_config_reader_done(VmmConfigReader *r) {
        for (size_t i = 0; i < r->n_fds; i++)
                safe_close(r->fds[i]);
        vmm_config_reader_init(r);
}

static void close_all(const int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
}

int vmm_config_reader_add(VmmConfigReader *rd, const uint8_t *payload, size_t length,
                          const int *fds, size_t n_fds, VmmConfig *ret, VmmConfigError *error) {
        unsigned part, n_parts;
        size_t len;
        int r;

        if (length < VMM_CONFIG_PART_HEADER_SIZE) {
                close_all(fds, n_fds);
                return fail(error, -EBADMSG, "configure: a part shorter than its header");
        }
        part = get_le16(payload);
        n_parts = get_le16(payload + 2);
        len = length - VMM_CONFIG_PART_HEADER_SIZE;
        if (part != rd->next_part || n_parts == 0 || n_parts > VMM_CONFIG_PARTS_MAX ||
            (rd->n_parts && n_parts != rd->n_parts) || get_le32(payload + 4) != 0) {
                close_all(fds, n_fds);
                return fail(error, -EBADMSG, "configure: part %u of %u after %u parts", part, n_parts, rd->next_part);
        }
        if (rd->n_fds + n_fds > VMM_CONFIG_FDS_MAX || rd->size + len > sizeof(rd->blob)) {
                close_all(fds, n_fds);
                return fail(error, -EMSGSIZE, "configure: more than %d descriptors or %d bytes",
                            VMM_CONFIG_FDS_MAX, VMM_CONFIG_BLOB_MAX);
        }
        rd->n_parts = n_parts;
        rd->next_part++;
        memcpy(rd->blob + rd->size, payload + VMM_CONFIG_PART_HEADER_SIZE, len);
        rd->size += len;
        if (n_fds > 0)
                memcpy(rd->fds + rd->n_fds, fds, n_fds * sizeof(int));
        rd->n_fds += n_fds;
        if (rd->next_part < rd->n_parts)
                return 0;

        r = vmm_config_decode(rd->blob, rd->size, rd->fds, rd->n_fds, ret, error);
        if (r < 0)
                return r;
        /* The descriptors are ret's now. */
        rd->n_fds = 0;
        return 1;
}

static int reply(int fd, const ControlHeader *req, int status) {
        ControlHeader h = {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = (uint16_t) (req->type | CONTROL_REPLY),
                .id = req->id,
                .status = status,
        };

        return control_send(fd, &h, NULL, NULL, 0);
}

int vmm_config_receive(int fd, int timeout_ms, VmmConfig *ret, VmmConfigError *error) {
        _cleanup_free_ VmmConfigReader *rd = malloc(sizeof(VmmConfigReader));
        _cleanup_free_ ControlDatagram *d = malloc(sizeof(ControlDatagram));
        uint64_t deadline = now_ns() + (uint64_t) timeout_ms * 1000000;
        int r;

        if (!rd || !d)
                return -ENOMEM;
        vmm_config_reader_init(rd);
        for (;;) {
                ControlHeader h = { .type = CONTROL_TYPE_NONE };
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int left;

                r = control_receive(fd, d);
                if (r == -EAGAIN) {
                        left = deadline_remaining_ms(deadline);
                        if (left == 0) {
                                r = fail(error, -ETIMEDOUT, "configure: no configuration within %d ms", timeout_ms);
                                break;
                        }
                        if (poll(&p, 1, left) < 0 && errno != EINTR) {
                                r = -errno;
                                break;
                        }
                        continue;
                }
                if (r < 0) {
                        r = fail(error, r, "configure: the control connection ended before the configuration");
                        break;
                }
                r = control_header_decode(d->data, d->len, &h);
                if (r < 0)
                        h = (ControlHeader) { .type = CONTROL_TYPE_NONE };
                else
                        r = d->truncated || d->fds_truncated ? -EMSGSIZE : control_header_check(&h, d->real_len);
                if (r >= 0 && h.type != CONTROL_TYPE_CONFIGURE)
                        r = -EBADMSG;
                if (r < 0) {
                        control_datagram_close_fds(d);
                        fail(error, r, "configure: a message that is not a well-formed configure part");
                        (void) reply(fd, &h, r);
                        break;
                }
                r = vmm_config_reader_add(rd, d->data + CONTROL_HEADER_SIZE, h.length, d->fds, d->n_fds, ret, error);
                (void) reply(fd, &h, r < 0 ? r : 0);
                if (r != 0)
                        break;
        }
        vmm_config_reader_done(rd);
        return r < 0 ? r : 0;
}
