/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/util.h"
#include "daemon/machine-config.h"
#include "daemon/machine-live-shares.h"

_Static_assert(MACHINE_SHARE_TAG_MAX == VMM_CONFIG_FS_TAG_MAX, "a share's tag is the VMM's");

static bool share_tag_taken(const char *tag, const MachineShare *taken, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (strcmp(taken[i].tag, tag) == 0)
                        return true;
        return false;
}

void machine_share_tag_from_path(const char *path, const MachineShare *taken, unsigned n, char *ret) {
        char base[MACHINE_SHARE_TAG_MAX + 1];
        const char *b, *end;
        size_t len = 0;

        /* The last component, trailing slashes left out ("/" gives "share"). */
        end = path + strlen(path);
        while (end > path && end[-1] == '/')
                end--;
        b = end;
        while (b > path && b[-1] != '/')
                b--;
        for (; b < end && len < MACHINE_SHARE_TAG_MAX; b++)
                base[len++] = vmm_fs_tag_char_ok(*b) ? *b : '_';
        base[len] = 0;
        if (len == 0)
                strcpy(base, "share");
        strcpy(ret, base);
        /* At most MACHINE_SHARES_MAX tags are taken, so a suffix below 10 always
         * frees one; the base is cut to leave room for it. */
        for (unsigned k = 2; share_tag_taken(ret, taken, n); k++) {
                char suffix[16];
                size_t keep;

                snprintf(suffix, sizeof(suffix), "-%u", k);
                keep = MIN(strlen(base), MACHINE_SHARE_TAG_MAX - strlen(suffix));
                snprintf(ret, MACHINE_SHARE_TAG_MAX + 1, "%.*s%s", (int) keep, base, suffix);
        }
}

void machine_share_done(MachineShare *s) {
        s->fd = safe_close(s->fd);
        free(s->path);
        s->path = NULL;
}

void machine_config_init(MachineConfig *c) {
        *c = (MachineConfig) {
                .kernel_fd = -EBADF,
                .initrd_fd = -EBADF,
                .serial_fd = -EBADF,
                .wayland_fd = -EBADF,
                .live_root_fd = -EBADF,
        };
        for (size_t i = 0; i < ARRAY_SIZE(c->disks); i++)
                c->disks[i].fd = -EBADF;
        for (size_t i = 0; i < ARRAY_SIZE(c->shares); i++)
                c->shares[i].fd = -EBADF;
}

void machine_config_done(MachineConfig *c) {
        c->kernel_fd = safe_close(c->kernel_fd);
        c->initrd_fd = safe_close(c->initrd_fd);
        c->serial_fd = safe_close(c->serial_fd);
        c->wayland_fd = safe_close(c->wayland_fd);
        c->live_root_fd = safe_close(c->live_root_fd);
        for (size_t i = 0; i < ARRAY_SIZE(c->disks); i++)
                c->disks[i].fd = safe_close(c->disks[i].fd);
        c->n_disks = 0;
        for (size_t i = 0; i < ARRAY_SIZE(c->shares); i++)
                machine_share_done(&c->shares[i]);
        c->n_shares = 0;
        free(c->cmdline);
        c->cmdline = NULL;
}

int machine_config_to_vmm_config(const MachineConfig *config, const MachineVmmParams *params, VmmConfig *c,
                                 VmmConfigError *ret_error) {
        *ret_error = (VmmConfigError) {};
        vmm_config_init(c);
        if (config->memory_bytes > 0)
                c->mem_size = config->memory_bytes;
        if (config->cpus > 0)
                c->n_vcpus = config->cpus;
        c->kernel_fd = config->kernel_fd;
        c->initrd_fd = config->initrd_fd >= 0 ? config->initrd_fd : -1;
        if (config->cmdline) {
                if (strlen(config->cmdline) > VMM_CONFIG_CMDLINE_MAX)
                        return -E2BIG;
                strcpy(c->cmdline, config->cmdline);
        }
        c->serial = VMM_SERIAL_FD;
        c->serial_fd = config->serial_fd >= 0 ? config->serial_fd : params->console_fd;
        /* The daemon's own console log is capped; a caller's file is not. */
        if (config->serial_fd < 0)
                c->serial_max = params->console_log_max;
        c->debug_exit = config->debug_exit;
        /* Always: a guest panic is worth knowing about. */
        c->pvpanic = true;
        c->on_panic = config->on_panic;
        for (unsigned i = 0; i < config->n_disks; i++) {
                VmmDevice *d = &c->devices[c->n_devices++];

                *d = (VmmDevice) { .kind = VMM_DEVICE_BLOCK };
                d->block.fd = config->disks[i].fd;
                d->block.read_only = config->disks[i].read_only;
                d->block.sparse = config->disks[i].sparse;
                memcpy(d->block.id, config->disks[i].serial, sizeof(d->block.id));
        }
        if (config->balloon)
                c->devices[c->n_devices++] = (VmmDevice) { .kind = VMM_DEVICE_BALLOON };
        if (config->rng)
                c->devices[c->n_devices++] = (VmmDevice) { .kind = VMM_DEVICE_RNG };
        for (unsigned i = 0; i < config->n_shares; i++) {
                VmmDevice *d;

                if (c->n_devices >= VMM_CONFIG_DEVICES_MAX)
                        return -E2BIG;
                d = &c->devices[c->n_devices++];
                *d = (VmmDevice) { .kind = VMM_DEVICE_SHARED_DIR };
                d->shared_dir.fd = config->shares[i].fd;
                d->shared_dir.cache = config->shares[i].cache;
                d->shared_dir.read_only = config->shares[i].read_only;
                memcpy(d->shared_dir.tag, config->shares[i].tag, sizeof(d->shared_dir.tag));
        }
        if (config->live_shares) {
                VmmDevice *d;

                if (c->n_devices >= VMM_CONFIG_DEVICES_MAX || config->live_root_fd < 0)
                        return config->live_root_fd < 0 ? -EBADF : -E2BIG;
                d = &c->devices[c->n_devices++];
                *d = (VmmDevice) { .kind = VMM_DEVICE_SHARED_DIR };
                d->shared_dir.fd = config->live_root_fd;
                d->shared_dir.cache = VMM_FS_CACHE_AUTO;
                d->shared_dir.live = true;
                strcpy(d->shared_dir.tag, MACHINE_LIVE_SHARES_TAG);
        }
        if (config->vsock) {
                VmmDevice *d = &c->devices[c->n_devices++];

                *d = (VmmDevice) { .kind = VMM_DEVICE_VSOCK };
                d->vsock.cid = params->cid;
                d->vsock.max_connections = VMM_CONFIG_VSOCK_MAX_CONNECTIONS_DEFAULT;
                if (!params->vsock_path || strlen(params->vsock_path) > VMM_CONFIG_SOCKET_PATH_MAX)
                        return -ENAMETOOLONG;
                strcpy(d->vsock.path, params->vsock_path);
        }
        if (config->gpu.enabled) {
                VmmDevice *d;

                if (c->n_devices >= VMM_CONFIG_DEVICES_MAX)
                        return -E2BIG;
                d = &c->devices[c->n_devices++];
                *d = (VmmDevice) { .kind = VMM_DEVICE_GPU };
                d->gpu.backend = config->gpu.backend;
                d->gpu.width = config->gpu.width;
                d->gpu.height = config->gpu.height;
                d->gpu.displays = config->gpu.displays;
                d->gpu.max_memory = config->gpu.max_memory;
                d->gpu.context_types = config->gpu.context_types;
                d->gpu.wayland_fd = config->wayland_fd >= 0 ? config->wayland_fd : -1;
        }
        for (int k = 0; k < 2; k++) {
                if (!(k == 0 ? config->video_decoder : config->video_encoder))
                        continue;
                if (c->n_devices >= VMM_CONFIG_DEVICES_MAX)
                        return -E2BIG;
                c->devices[c->n_devices++] = (VmmDevice) {
                        .kind = k == 0 ? VMM_DEVICE_VIDEO_DECODER : VMM_DEVICE_VIDEO_ENCODER,
                        .video.backend = VMM_VIDEO_BACKEND_FFMPEG,
                };
        }
        /* The VMM checks the same again; failing here keeps a VMM from
         * being started for nothing. */
        return vmm_config_validate(c, ret_error);
}

