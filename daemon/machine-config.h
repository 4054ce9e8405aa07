/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* What StartVm asks for, typed (MachineConfig: the D-Bus layer parses the a{sv}
 * into it and opens its files), and its translation into the VMM's one
 * configuration (VmmConfig, common/vmm-config.h). Nothing here touches a
 * process, the event loop or the bus. */

#include <stdbool.h>
#include <stdint.h>

#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MACHINE_DISKS_MAX 8
#define MACHINE_DISK_SERIAL_MAX 20   /* virtio-blk GET_ID: 20 bytes of ASCII */
/* Shared directories (virtio-fs, one virtiofsd each). 4, so that 8 disks,
 * a balloon, an rng, a vsock and 4 shares fit the VMM's 16 devices. */
#define MACHINE_SHARES_MAX 4
#define MACHINE_SHARE_TAG_MAX 36
#define MACHINE_SCOPE_MEMORY_MIN (UINT64_C(64) << 20) /* memory_max */     /* virtio 1.2 §5.11.4: tag[36] */

typedef struct MachineDisk {
        int fd;                 /* opened (or reopened) by the daemon */
        bool read_only;
        bool sparse;
        char serial[MACHINE_DISK_SERIAL_MAX + 1]; /* "": none */
} MachineDisk;

/* A host directory shared with the guest over virtio-fs; the guest mounts
 * it by tag (mount -t virtiofs TAG /mnt). */
typedef struct MachineShare {
        int fd;                 /* O_DIRECTORY, opened with the caller's rights; -EBADF in Machine */
        char *path;             /* as the caller named it (the Shares property) */
        uint32_t cache;         /* VmmFsCache */
        bool read_only;
        char tag[MACHINE_SHARE_TAG_MAX + 1];
} MachineShare;

/* A tag made from path's last component: invalid bytes become '_', cut to
 * MACHINE_SHARE_TAG_MAX, then "-2", "-3", ... until no tag in taken[0..n) has
 * it. ret has MACHINE_SHARE_TAG_MAX + 1 bytes. */
void machine_share_tag_from_path(const char *path, const MachineShare *taken, unsigned n, char *ret);

void machine_share_done(MachineShare *s);

/* A virtio-gpu as StartVm's gpu asked for it, the VMM's defaults
 * (VMM_CONFIG_GPU_*) in what it left out. */
typedef struct MachineGpu {
        bool enabled;
        uint32_t backend;       /* VmmGpuBackend */
        uint32_t width;         /* of every display */
        uint32_t height;
        uint32_t displays;
        uint64_t max_memory;    /* bytes */
        bool headless;          /* no compositor socket (no wayland_socket) */
        uint32_t context_types; /* VMM_GPU_CONTEXT_* bits; 0: the backend's own */
} MachineGpu;

/* What StartVm asked for, with every file already opened by the daemon. */
typedef struct MachineConfig {
        int kernel_fd;
        int initrd_fd;          /* -EBADF: none */
        int serial_fd;          /* -EBADF: the daemon's per-VM console log */
        char *cmdline;          /* NULL: none */
        uint64_t memory_bytes;  /* 0: the VMM's default */
        uint32_t cpus;          /* 0: the VMM's default */
        bool debug_exit;
        bool vsock;             /* the daemon allocates the CID and the socket */
        bool balloon;
        bool rng;
        bool video_decoder;     /* virtio-video, majordome-video with ffmpeg */
        bool video_encoder;
        /* One more virtio-fs device, under which ShareDirectory mounts
         * directories while the VM runs (machine-live-shares.h). */
        bool live_shares;
        int live_root_fd;       /* its root, once the daemon made it; -EBADF before */
        uint32_t on_panic;      /* ControlPanicAction */
        /* The VMM's scope's MemoryMax= and CPUWeight= (machined.h); 0: none. */
        uint64_t memory_max;
        uint64_t cpu_weight;
        MachineDisk disks[MACHINE_DISKS_MAX];
        unsigned n_disks;
        MachineShare shares[MACHINE_SHARES_MAX];
        unsigned n_shares;
        MachineGpu gpu;
        /* An O_PATH handle to wayland_socket, opened (and connected to
         * once) as the caller; -EBADF: headless. */
        int wayland_fd;
} MachineConfig;

void machine_config_init(MachineConfig *c);
void machine_config_done(MachineConfig *c);

/* What the VMM gets beyond StartVm's config: what the daemon chose for
 * this VM. */
typedef struct MachineVmmParams {
        uint32_t cid;                   /* with vsock */
        const char *vsock_path;         /* with vsock: the host's listening socket */
        int console_fd;                 /* the daemon's console log, used when serial_fd < 0 */
        uint64_t console_log_max;       /* its cap, bytes */
} MachineVmmParams;

/* config as the VMM's one typed configuration: the defaults are
 * vmm_config_init()'s, the descriptors stay config's (not duplicated).
 * The result passed vmm_config_validate(): a refusal is its errno, with
 * its reason in ret_error->message; -E2BIG or -ENAMETOOLONG (message
 * empty) when the devices or the vsock path do not fit. */
int machine_config_to_vmm_config(const MachineConfig *config, const MachineVmmParams *params, VmmConfig *ret,
                                 VmmConfigError *ret_error);

#ifdef __cplusplus
}
#endif
