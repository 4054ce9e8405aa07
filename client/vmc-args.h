/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* vmc's command line: parsed into a VmcArgs without touching the bus, so
 * every option can be unit-tested. Strings point into argv. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes scripts can rely on (docs/vmc.md, "Exit status"). */
enum {
        VMC_EXIT_OK = 0,
        VMC_EXIT_FAILED = 1,      /* the daemon refused, or a local file could not be used */
        VMC_EXIT_USAGE = 2,       /* bad command line */
        VMC_EXIT_UNREACHABLE = 3, /* no bus, or no majordomed on it */
        VMC_EXIT_NO_SUCH_VM = 4,
};

typedef enum VmcCommand {
        VMC_COMMAND_NONE,
        VMC_COMMAND_START,
        VMC_COMMAND_STOP,
        VMC_COMMAND_KILL,
        VMC_COMMAND_LIST,
        VMC_COMMAND_INFO,
        VMC_COMMAND_PAUSE,
        VMC_COMMAND_RESUME,
        VMC_COMMAND_BALLOON,
        VMC_COMMAND_BALLOON_STATS,
        VMC_COMMAND_RESIZE,
        VMC_COMMAND_LOGS,
        VMC_COMMAND_SHARE,
        VMC_COMMAND_UNSHARE,
        _VMC_COMMAND_MAX,
} VmcCommand;

typedef enum VmcBus {
        VMC_BUS_DEFAULT, /* system bus for root, session bus otherwise */
        VMC_BUS_SYSTEM,
        VMC_BUS_USER,
        VMC_BUS_ADDRESS,
} VmcBus;

typedef struct VmcDisk {
        char *path; /* owned: the PATH part of "PATH,ro" */
        bool read_only;
} VmcDisk;

/* A shared directory: --share PATH[:TAG][:ro|:rw][:cache=MODE], or
 * `vmc share NAME PATH` with its options. */
typedef struct VmcShare {
        char *path;             /* owned; made absolute (realpath) if it was relative */
        char *tag;              /* owned; NULL: the daemon picks one */
        char *cache;            /* owned; NULL: the daemon's default (auto) */
        bool read_only;
} VmcShare;

#define VMC_SHARES_MAX 16

/* A VM may have at most this many --disk options; the daemon has its own
 * limit, this one only bounds what the client opens. */
#define VMC_DISKS_MAX 16

/* Default D-Bus timeout for most calls, and for StartVm which waits for
 * the VMM to boot far enough to report "ready". */
#define VMC_CALL_TIMEOUT_MS (30 * 1000)
#define VMC_START_TIMEOUT_MS (5 * 60 * 1000)

typedef struct VmcArgs {
        VmcBus bus;
        const char *address;
        bool help;    /* --help: show help for `command` (or the overview) */
        bool version;
        VmcCommand command;
        const char *name;

        /* start */
        const char *kernel;
        const char *initrd;
        const char *cmdline;
        const char *serial_log;
        VmcDisk disks[VMC_DISKS_MAX];
        size_t n_disks;
        uint64_t memory;    /* 0: the daemon's default */
        uint32_t cpus;      /* 0: the daemon's default */
        uint64_t memory_max; /* --memory-max: the VMM's scope's MemoryMax=; 0: none */
        uint64_t cpu_weight; /* --cpu-weight: its CPUWeight=; 0: none */
        bool vsock;
        bool balloon;
        bool video;             /* --video: a virtio-video decoder and encoder */
        bool live_shares;       /* --live-shares: vmc share works while it runs */
        bool debug_exit;
        const char *on_panic; /* NULL: the daemon's default */
        VmcShare shares[VMC_SHARES_MAX]; /* start: --share; share: shares[0] */
        size_t n_shares;
        bool gpu;               /* --gpu */
        bool gpu_3d;            /* --gpu-3d: virglrenderer */
        uint32_t gpu_width;     /* --display WxH; 0: the daemon's default */
        uint32_t gpu_height;
        bool gpu_displays_set;  /* --displays N (0 is a value: render only) */
        uint32_t gpu_displays;
        bool headless;          /* --headless: no compositor connection */
        bool wayland;           /* --wayland: cross-domain, guest Wayland clients on our compositor */
        char *wayland_socket;   /* owned: --wayland-socket PATH, made absolute; NULL: from the environment */

        /* stop */
        bool force;
        uint32_t timeout_ms; /* 0: the daemon's default */

        /* list, info, balloon-stats */
        bool json;

        /* balloon, resize */
        uint64_t size;
        uint32_t disk_index;

        /* logs */
        bool follow;
        bool raw;               /* no escaping even on a terminal */

        /* unshare */
        const char *tag;
} VmcArgs;

const char *vmc_command_to_string(VmcCommand c);
VmcCommand vmc_command_from_string(const char *s);

/* Parses argv into *ret (release it with vmc_args_done()). On a usage
 * error returns -EINVAL and a message for the user in *ret_error (free()
 * it), and *ret holds nothing to release. Reorders argv like getopt_long. */
int vmc_args_parse(int argc, char **argv, VmcArgs *ret, char **ret_error);
void vmc_args_done(VmcArgs *a);

/* "30", "30s", "500ms", "2m": a duration in milliseconds, at most
 * UINT32_MAX ms. -EINVAL or -ERANGE. */
int vmc_parse_duration_ms(const char *s, uint32_t *ret);

/* "PATH", "PATH,ro" or "PATH,rw": *ret_path is a malloc'd copy of PATH.
 * -EINVAL on an empty path or an unknown flag, -ENOMEM. */
int vmc_parse_disk(const char *s, char **ret_path, bool *ret_read_only);

/* "PATH[:TAG][:ro|:rw][:cache=auto|always|never]", the flags in any order
 * after PATH and TAG: the part after the last ':' is a flag if it reads as
 * one, else a TAG if it has no '/' (so a PATH with ':' needs a TAG after
 * it). A relative PATH is made absolute with realpath(). -EINVAL on a bad
 * flag or an empty path, -ENOENT (or realpath's error) when a relative
 * PATH cannot be resolved, -ENOMEM. On success ret owns its strings
 * (vmc_share_done()). */
int vmc_parse_share(const char *s, VmcShare *ret);
void vmc_share_done(VmcShare *s);

/* "WxH" (or "WXH"): two numbers from 1 to UINT32_MAX (the daemon checks
 * the range). -EINVAL. */
int vmc_parse_display(const char *s, uint32_t *ret_width, uint32_t *ret_height);

/* The compositor socket a Wayland client of this environment would use:
 * WAYLAND_DISPLAY itself when it is an absolute path, else
 * XDG_RUNTIME_DIR/WAYLAND_DISPLAY when both are set and not empty; NULL
 * otherwise (or on OOM). free() it. vmc start --wayland passes "wayland-0"
 * for an unset or empty WAYLAND_DISPLAY, as libwayland-client does. */
char *vmc_wayland_socket_from_env(const char *xdg_runtime_dir, const char *wayland_display);

/* Help text of one command, or of vmc as a whole for VMC_COMMAND_NONE. */
const char *vmc_help_text(VmcCommand c);

#ifdef __cplusplus
}
#endif
