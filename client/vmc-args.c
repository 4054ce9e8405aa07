/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/string-table.h"
#include "common/util.h"
#include "client/vmc-args.h"

static const char *const command_names[_VMC_COMMAND_MAX] = {
        [VMC_COMMAND_NONE] = NULL,
        [VMC_COMMAND_START] = "start",
        [VMC_COMMAND_STOP] = "stop",
        [VMC_COMMAND_KILL] = "kill",
        [VMC_COMMAND_LIST] = "list",
        [VMC_COMMAND_INFO] = "info",
        [VMC_COMMAND_PAUSE] = "pause",
        [VMC_COMMAND_RESUME] = "resume",
        [VMC_COMMAND_BALLOON] = "balloon",
        [VMC_COMMAND_BALLOON_STATS] = "balloon-stats",
        [VMC_COMMAND_RESIZE] = "resize",
        [VMC_COMMAND_LOGS] = "logs",
        [VMC_COMMAND_SHARE] = "share",
        [VMC_COMMAND_UNSHARE] = "unshare",
};

DEFINE_STRING_TABLE_TO_STRING(vmc_command, VmcCommand, command_names)
DEFINE_STRING_TABLE_FROM_STRING(vmc_command, VmcCommand, command_names, VMC_COMMAND_NONE)

/* The help texts are the short form of docs/vmc.md; keep them in step. */
static const char help_overview[] =
        "Usage: vmc [--system|--user|--address ADDR] COMMAND [OPTIONS] [ARGS]\n"
        "\n"
        "Control the virtual machines of majordomed over D-Bus.\n"
        "\n"
        "Commands:\n"
        "  start NAME --kernel PATH [OPTIONS]  Start a VM\n"
        "  stop NAME [--force] [--timeout T]   Stop a VM, escalating to signals\n"
        "  kill NAME                           Kill a VM's VMM at once (SIGKILL)\n"
        "  list [--json]                       List the VMs\n"
        "  info NAME [--json]                  Show a VM's properties\n"
        "  pause NAME                          Pause a VM's vCPUs\n"
        "  resume NAME                         Resume a paused VM\n"
        "  balloon NAME SIZE                   Set the balloon target\n"
        "  balloon-stats NAME [--json]         Show the guest's balloon statistics\n"
        "  resize NAME DISK SIZE               Resize disk number DISK to SIZE\n"
        "  logs NAME [-f] [--raw]              Print a VM's console log\n"
        "  share NAME PATH [--read-only]       Share a directory with a running VM\n"
        "                                      (started with --live-shares)\n"
        "  unshare NAME TAG                    Stop sharing it\n"
        "\n"
        "Options:\n"
        "  --system          Use the system bus (the default for root)\n"
        "  --user            Use the session bus (the default for other users)\n"
        "  --address ADDR    Use the bus at the D-Bus address ADDR\n"
        "  -h, --help        Show this help; `vmc COMMAND --help` for a command\n"
        "  --version         Show the version\n"
        "\n"
        "Sizes are bytes or take binary suffixes: 64K, 512M, 2G, 1T.\n"
        "Exit status: 0 success, 1 the daemon refused or a file could not be used,\n"
        "2 usage error, 3 the daemon cannot be reached, 4 no such VM.\n"
        "See vmc(1).\n";

static const char *const help_texts[_VMC_COMMAND_MAX] = {
        [VMC_COMMAND_NONE] = help_overview,
        [VMC_COMMAND_START] =
        "Usage: vmc start NAME --kernel PATH [OPTIONS]\n"
        "\n"
        "Start a VM called NAME and wait until it runs. vmc opens the files and\n"
        "passes their descriptors, so the daemon never needs your permissions.\n"
        "\n"
        "  --kernel PATH       Kernel: bzImage or ELF vmlinux (required)\n"
        "  --initrd PATH       Initial ramdisk\n"
        "  --cmdline STRING    Kernel command line\n"
        "  --mem SIZE          Guest memory, e.g. 512M or 2G\n"
        "  --memory-max SIZE   Cap the VMM's host memory (its systemd scope's MemoryMax=)\n"
        "  --cpu-weight N      Its share of the CPUs, 1 to 10000 (the scope's CPUWeight=)\n"
        "  --cpus N            Number of vCPUs\n"
        "  --disk PATH[,ro]    Add a disk, read-only with \",ro\" (repeatable)\n"
        "  --vsock             Give the VM a vsock device (the daemon picks the CID)\n"
        "  --balloon           Give the VM a memory balloon\n"
        "  --video             Give the VM a video decoder and encoder (virtio-video,\n"
        "                      FFmpeg on the host)\n"
        "  --on-panic ACTION   On a guest kernel panic: stop (default) or pause\n"
        "                      (the VM is kept, paused, for inspection)\n"
        "  --serial-log PATH   Append the console to PATH instead of the daemon's log\n"
        "  --debug-exit        Let the guest end its VMM through the debug-exit port\n"
        "  --share PATH[:TAG][:ro][:cache=MODE]\n"
        "                      Share the directory PATH with the guest over virtio-fs\n"
        "                      (repeatable); the guest mounts it with\n"
        "                      `mount -t virtiofs TAG DIR`. TAG defaults to PATH's\n"
        "                      name; MODE is auto (default), always or never. The\n"
        "                      daemon opens PATH with your rights.\n"
        "  --live-shares       Let `vmc share` add directories while the VM runs: the\n"
        "                      guest mounts them all with\n"
        "                      `mount -t virtiofs majordome DIR`, each as DIR/TAG\n"
        "  --gpu               Give the VM a virtio-gpu (2D). Its displays show as\n"
        "                      windows on your Wayland compositor: the socket is\n"
        "                      $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY (or WAYLAND_DISPLAY\n"
        "                      if it is a path), which the daemon connects to with\n"
        "                      your rights; without them the GPU is headless\n"
        "  --gpu-3d            --gpu with 3D (virglrenderer on the host's GL)\n"
        "  --display WxH       With --gpu: each display's size, e.g. 1280x720\n"
        "                      (default: the daemon's, 1024x768)\n"
        "  --displays N        With --gpu: the number of displays, 0 to 16 (default 1)\n"
        "  --wayland-socket PATH\n"
        "                      With --gpu: the compositor socket to use instead\n"
        "  --headless          With --gpu: no compositor connection at all\n"
        "  --wayland           Let the guest's Wayland clients show on your compositor\n"
        "                      (virtio-gpu cross-domain; implies --gpu): the socket is\n"
        "                      --wayland-socket, else $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY\n"
        "                      (WAYLAND_DISPLAY defaults to wayland-0, a path is taken\n"
        "                      as is). With --gpu-3d the guest has virgl as well\n"
        "  -h, --help          Show this help\n"
        "\n"
        "Prints \"started NAME (pid PID)\".\n",
        [VMC_COMMAND_STOP] =
        "Usage: vmc stop NAME [--force] [--timeout DURATION]\n"
        "\n"
        "Stop a VM: ask its VMM to stop, then SIGTERM, then SIGKILL, each step\n"
        "bounded by the timeout. Waits for the end and prints which step ended it.\n"
        "\n"
        "  -f, --force             SIGKILL at once (same as `vmc kill`)\n"
        "  -t, --timeout DURATION  Time per step: 10, 10s, 500ms, 1m (default: the\n"
        "                          daemon's)\n"
        "  -h, --help              Show this help\n",
        [VMC_COMMAND_KILL] =
        "Usage: vmc kill NAME\n"
        "\n"
        "Kill a VM's VMM with SIGKILL at once.\n"
        "\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_LIST] =
        "Usage: vmc list [--json]\n"
        "\n"
        "List the VMs: NAME STATE VCPUS MEMORY PID.\n"
        "\n"
        "  --json       A JSON array of objects keyed by Vm1 property names\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_INFO] =
        "Usage: vmc info NAME [--json]\n"
        "\n"
        "Show the properties of a VM.\n"
        "\n"
        "  --json       A JSON object keyed by Vm1 property names\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_PAUSE] =
        "Usage: vmc pause NAME\n"
        "\n"
        "Pause a running VM's vCPUs.\n"
        "\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_RESUME] =
        "Usage: vmc resume NAME\n"
        "\n"
        "Resume a paused VM.\n"
        "\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_BALLOON] =
        "Usage: vmc balloon NAME SIZE\n"
        "\n"
        "Set the balloon target: the guest gives back memory until the balloon\n"
        "holds SIZE (0 deflates it).\n"
        "\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_BALLOON_STATS] =
        "Usage: vmc balloon-stats NAME [--json]\n"
        "\n"
        "Show the memory statistics the guest reports through its balloon.\n"
        "\n"
        "  --json       A JSON object\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_RESIZE] =
        "Usage: vmc resize NAME DISK SIZE\n"
        "\n"
        "Resize disk number DISK (0 is the first --disk) of a running VM to SIZE.\n"
        "\n"
        "  -h, --help   Show this help\n",
        [VMC_COMMAND_LOGS] =
        "Usage: vmc logs NAME [-f] [--raw]\n"
        "\n"
        "Print a VM's console log. On a terminal, control characters the guest\n"
        "wrote (other than newline and tab) are shown escaped, as \\xNN.\n"
        "\n"
        "  -f, --follow   Keep printing what the VM writes until it stops\n"
        "      --raw      Print the guest's bytes as they are, even on a terminal\n"
        "  -h, --help     Show this help\n",
        [VMC_COMMAND_SHARE] =
        "Usage: vmc share NAME PATH [--read-only] [--tag TAG] [--cache MODE]\n"
        "\n"
        "Share the directory PATH with a running VM started with --live-shares:\n"
        "the guest finds it as TAG under the live root it mounts with\n"
        "`mount -t virtiofs majordome DIR` (DIR/TAG), within a second. Other\n"
        "VMs' shares are the ones they started with (vmc start --share).\n"
        "`vmc info NAME` lists a VM's shares. Prints the tag.\n"
        "\n"
        "  --read-only     The guest cannot write to it\n"
        "  --tag TAG       Its directory's name in the live root (default: PATH's name)\n"
        "  --cache MODE    auto (the live root's; others are refused)\n"
        "  -h, --help      Show this help\n",
        [VMC_COMMAND_UNSHARE] =
        "Usage: vmc unshare NAME TAG\n"
        "\n"
        "Stop sharing the directory shared with a running VM as TAG (vmc share):\n"
        "it goes from the guest's live root at once (files the guest holds open\n"
        "stay usable until closed). A share the VM started with stays until the\n"
        "VM stops: majordomed refuses this for one, saying so.\n"
        "\n"
        "  -h, --help   Show this help\n",
};

const char *vmc_help_text(VmcCommand c) {
        if (c < 0 || c >= _VMC_COMMAND_MAX)
                return NULL;
        return help_texts[c];
}

int vmc_parse_duration_ms(const char *s, uint32_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = {
                { "", 1000 }, { "s", 1000 }, { "ms", 1 }, { "m", 60 * 1000 },
        };
        unsigned long long v;
        char *end;

        if (!s || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (strcmp(end, units[i].suffix) != 0)
                        continue;
                if (v > UINT32_MAX / units[i].ms)
                        return -ERANGE;
                *ret = (uint32_t) (v * units[i].ms);
                return 0;
        }
        return -EINVAL;
}

int vmc_parse_disk(const char *s, char **ret_path, bool *ret_read_only) {
        const char *comma;
        bool read_only = false;
        size_t len;
        char *path;

        if (!s)
                return -EINVAL;
        /* The flag is whatever follows the last comma, so paths with
         * commas still work when a flag is given. */
        comma = strrchr(s, ',');
        len = strlen(s);
        if (comma) {
                if (strcmp(comma + 1, "ro") == 0)
                        read_only = true;
                else if (strcmp(comma + 1, "rw") != 0)
                        return -EINVAL;
                len = (size_t) (comma - s);
        }
        if (len == 0)
                return -EINVAL;
        path = strndup(s, len);
        if (!path)
                return -ENOMEM;
        *ret_path = path;
        *ret_read_only = read_only;
        return 0;
}

static bool share_flag(const char *f, VmcShare *s) {
        if (strcmp(f, "ro") == 0 || strcmp(f, "rw") == 0) {
                s->read_only = f[1] == 'o';
                return true;
        }
        if (strncmp(f, "cache=", 6) == 0 && !s->cache) {
                s->cache = strdup(f + 6);
                return true;
        }
        return false;
}

void vmc_share_done(VmcShare *s) {
        free(s->path);
        free(s->tag);
        free(s->cache);
        *s = (VmcShare) {};
}

int vmc_parse_share(const char *s, VmcShare *ret) {
        _cleanup_free_ char *copy = NULL;
        VmcShare sh = {};
        char *colon;

        if (!s)
                return -EINVAL;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        /* Flags from the right, then at most one TAG. */
        while ((colon = strrchr(copy, ':')) && colon != copy && share_flag(colon + 1, &sh))
                *colon = 0;
        if (sh.cache && strcmp(sh.cache, "auto") != 0 && strcmp(sh.cache, "always") != 0 &&
            strcmp(sh.cache, "never") != 0) {
                vmc_share_done(&sh);
                return -EINVAL;
        }
        colon = strrchr(copy, ':');
        if (colon && colon != copy && colon[1] && !strchr(colon + 1, '/')) {
                sh.tag = strdup(colon + 1);
                if (!sh.tag) {
                        vmc_share_done(&sh);
                        return -ENOMEM;
                }
                *colon = 0;
        }
        if (!copy[0]) {
                vmc_share_done(&sh);
                return -EINVAL;
        }
        if (copy[0] == '/')
                sh.path = TAKE_PTR(copy);
        else {
                sh.path = realpath(copy, NULL);
                if (!sh.path) {
                        int r = -errno;

                        vmc_share_done(&sh);
                        return r;
                }
        }
        *ret = sh;
        return 0;
}

void vmc_args_done(VmcArgs *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n_shares; i++)
                vmc_share_done(&a->shares[i]);
        a->n_shares = 0;
        for (size_t i = 0; i < a->n_disks; i++)
                free(a->disks[i].path);
        a->n_disks = 0;
        free(a->wayland_socket);
        a->wayland_socket = NULL;
}

static int usage_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int usage_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        *ret_error = s;
        return -EINVAL;
}

enum {
        OPT_SYSTEM = 0x100,
        OPT_USER,
        OPT_ADDRESS,
        OPT_VERSION,
        OPT_KERNEL,
        OPT_INITRD,
        OPT_CMDLINE,
        OPT_MEM,
        OPT_CPUS,
        OPT_MEMORY_MAX,
        OPT_CPU_WEIGHT,
        OPT_DISK,
        OPT_VSOCK,
        OPT_BALLOON,
        OPT_ON_PANIC,
        OPT_SERIAL_LOG,
        OPT_RAW,
        OPT_DEBUG_EXIT,
        OPT_JSON,
        OPT_SHARE,
        OPT_READ_ONLY,
        OPT_TAG,
        OPT_CACHE,
        OPT_GPU,
        OPT_GPU_3D,
        OPT_DISPLAY,
        OPT_DISPLAYS,
        OPT_WAYLAND_SOCKET,
        OPT_HEADLESS,
        OPT_WAYLAND,
        OPT_VIDEO,
        OPT_LIVE_SHARES,
};

/* Turns getopt's '?' and ':' into a message naming the option. */
static int option_error(int c, int argc, char **argv, const char *where, char **ret_error) {
        const char *opt = optind > 0 && optind <= argc ? argv[optind - 1] : "?";

        if (c == ':')
                return usage_error(ret_error, "%s: option '%s' needs a value", where, opt);
        if (optopt > 0 && optopt < 0x100)
                return usage_error(ret_error, "%s: unknown option '-%c'", where, optopt);
        return usage_error(ret_error, "%s: unknown option '%s'", where, opt);
}

static int parse_command(int argc, char **argv, VmcArgs *a, char **ret_error) {
        static const struct option start_options[] = {
                { "help", no_argument, NULL, 'h' },
                { "kernel", required_argument, NULL, OPT_KERNEL },
                { "initrd", required_argument, NULL, OPT_INITRD },
                { "cmdline", required_argument, NULL, OPT_CMDLINE },
                { "mem", required_argument, NULL, OPT_MEM },
                { "memory", required_argument, NULL, OPT_MEM },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "memory-max", required_argument, NULL, OPT_MEMORY_MAX },
                { "cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT },
                { "disk", required_argument, NULL, OPT_DISK },
                { "vsock", no_argument, NULL, OPT_VSOCK },
                { "balloon", no_argument, NULL, OPT_BALLOON },
                { "on-panic", required_argument, NULL, OPT_ON_PANIC },
                { "serial-log", required_argument, NULL, OPT_SERIAL_LOG },
                { "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
                { "share", required_argument, NULL, OPT_SHARE },
                { "gpu", no_argument, NULL, OPT_GPU },
                { "gpu-3d", no_argument, NULL, OPT_GPU_3D },
                { "display", required_argument, NULL, OPT_DISPLAY },
                { "displays", required_argument, NULL, OPT_DISPLAYS },
                { "wayland-socket", required_argument, NULL, OPT_WAYLAND_SOCKET },
                { "headless", no_argument, NULL, OPT_HEADLESS },
                { "wayland", no_argument, NULL, OPT_WAYLAND },
                { "video", no_argument, NULL, OPT_VIDEO },
                { "live-shares", no_argument, NULL, OPT_LIVE_SHARES },
                {}
        };
        static const struct option share_options[] = {
                { "help", no_argument, NULL, 'h' },
                { "read-only", no_argument, NULL, OPT_READ_ONLY },
                { "tag", required_argument, NULL, OPT_TAG },
                { "cache", required_argument, NULL, OPT_CACHE },
                {}
        };
        static const struct option stop_options[] = {
                { "help", no_argument, NULL, 'h' },
                { "force", no_argument, NULL, 'f' },
                { "timeout", required_argument, NULL, 't' },
                {}
        };
        static const struct option json_options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, OPT_JSON },
                {}
        };
        static const struct option logs_options[] = {
                { "help", no_argument, NULL, 'h' },
                { "follow", no_argument, NULL, 'f' },
                { "raw", no_argument, NULL, OPT_RAW },
                {}
        };
        static const struct option help_options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        static const unsigned n_positional[_VMC_COMMAND_MAX] = {
                [VMC_COMMAND_START] = 1, [VMC_COMMAND_STOP] = 1, [VMC_COMMAND_KILL] = 1,
                [VMC_COMMAND_LIST] = 0, [VMC_COMMAND_INFO] = 1, [VMC_COMMAND_PAUSE] = 1,
                [VMC_COMMAND_RESUME] = 1, [VMC_COMMAND_BALLOON] = 2,
                [VMC_COMMAND_BALLOON_STATS] = 1, [VMC_COMMAND_RESIZE] = 3,
                [VMC_COMMAND_LOGS] = 1, [VMC_COMMAND_SHARE] = 2, [VMC_COMMAND_UNSHARE] = 2,
        };
        const char *share_tag = NULL, *share_cache = NULL, *wayland_socket = NULL;
        bool share_read_only = false;
        const char *cmd = vmc_command_to_string(a->command);
        const struct option *options;
        const char *shortopts;
        char **positional;
        unsigned n;
        uint64_t u;
        int c, r;

        switch (a->command) {
        case VMC_COMMAND_START:
                options = start_options, shortopts = ":h";
                break;
        case VMC_COMMAND_STOP:
                options = stop_options, shortopts = ":hft:";
                break;
        case VMC_COMMAND_LIST:
        case VMC_COMMAND_INFO:
        case VMC_COMMAND_BALLOON_STATS:
                options = json_options, shortopts = ":h";
                break;
        case VMC_COMMAND_LOGS:
                options = logs_options, shortopts = ":hf";
                break;
        case VMC_COMMAND_SHARE:
                options = share_options, shortopts = ":h";
                break;
        default:
                options = help_options, shortopts = ":h";
                break;
        }

        /* argv[0] is the command name; optind = 0 makes glibc start over. */
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        a->help = true;
                        return 0;
                case OPT_KERNEL:
                        a->kernel = optarg;
                        break;
                case OPT_INITRD:
                        a->initrd = optarg;
                        break;
                case OPT_CMDLINE:
                        a->cmdline = optarg;
                        break;
                case OPT_MEM:
                        r = parse_size(optarg, &a->memory);
                        if (r < 0 || a->memory == 0)
                                return usage_error(ret_error, "%s: invalid size for --mem: '%s'", cmd, optarg);
                        break;
                case OPT_MEMORY_MAX:
                        r = parse_size(optarg, &a->memory_max);
                        if (r < 0 || a->memory_max == 0)
                                return usage_error(ret_error, "%s: invalid size for --memory-max: '%s'", cmd, optarg);
                        break;
                case OPT_CPU_WEIGHT:
                        r = parse_uint(optarg, 1, 10000, &u);
                        if (r < 0)
                                return usage_error(ret_error, "%s: --cpu-weight takes 1 to 10000, not '%s'", cmd,
                                                   optarg);
                        a->cpu_weight = u;
                        break;
                case OPT_CPUS:
                        r = parse_uint(optarg, 1, UINT32_MAX, &u);
                        if (r < 0)
                                return usage_error(ret_error, "%s: invalid number for --cpus: '%s'", cmd, optarg);
                        a->cpus = (uint32_t) u;
                        break;
                case OPT_DISK:
                        if (a->n_disks >= VMC_DISKS_MAX)
                                return usage_error(ret_error, "%s: at most %d disks", cmd, VMC_DISKS_MAX);
                        r = vmc_parse_disk(optarg, &a->disks[a->n_disks].path, &a->disks[a->n_disks].read_only);
                        if (r == -ENOMEM)
                                return usage_error(ret_error, "%s: out of memory", cmd);
                        if (r < 0)
                                return usage_error(ret_error, "%s: invalid --disk '%s' (PATH, PATH,ro or PATH,rw)", cmd, optarg);
                        a->n_disks++;
                        break;
                case OPT_VSOCK:
                        a->vsock = true;
                        break;
                case OPT_BALLOON:
                        a->balloon = true;
                        break;
                case OPT_VIDEO:
                        a->video = true;
                        break;
                case OPT_LIVE_SHARES:
                        a->live_shares = true;
                        break;
                case OPT_ON_PANIC:
                        /* The daemon validates it too; a typo is caught here first. */
                        if (strcmp(optarg, "stop") != 0 && strcmp(optarg, "pause") != 0)
                                return usage_error(ret_error, "%s: invalid --on-panic '%s' (stop or pause)", cmd, optarg);
                        a->on_panic = optarg;
                        break;
                case OPT_SERIAL_LOG:
                        a->serial_log = optarg;
                        break;
                case OPT_DEBUG_EXIT:
                        a->debug_exit = true;
                        break;
                case OPT_RAW:
                        a->raw = true;
                        break;
                case OPT_SHARE:
                        if (a->n_shares >= VMC_SHARES_MAX)
                                return usage_error(ret_error, "%s: at most %d shares", cmd, VMC_SHARES_MAX);
                        r = vmc_parse_share(optarg, &a->shares[a->n_shares]);
                        if (r == -ENOMEM)
                                return usage_error(ret_error, "%s: out of memory", cmd);
                        if (r == -EINVAL)
                                return usage_error(ret_error, "%s: invalid --share '%s' "
                                                   "(PATH[:TAG][:ro][:cache=auto|always|never])", cmd, optarg);
                        if (r < 0)
                                return usage_error(ret_error, "%s: --share '%s': %s", cmd, optarg, strerror(-r));
                        a->n_shares++;
                        break;
                case OPT_GPU:
                        a->gpu = true;
                        break;
                case OPT_GPU_3D:
                        a->gpu = a->gpu_3d = true;
                        break;
                case OPT_DISPLAY:
                        if (vmc_parse_display(optarg, &a->gpu_width, &a->gpu_height) < 0)
                                return usage_error(ret_error, "%s: invalid --display '%s' (WIDTHxHEIGHT, e.g. 1280x720)",
                                                   cmd, optarg);
                        break;
                case OPT_DISPLAYS:
                        r = parse_uint(optarg, 0, UINT32_MAX, &u);
                        if (r < 0)
                                return usage_error(ret_error, "%s: invalid number for --displays: '%s'", cmd, optarg);
                        a->gpu_displays = (uint32_t) u;
                        a->gpu_displays_set = true;
                        break;
                case OPT_WAYLAND_SOCKET:
                        if (!optarg[0])
                                return usage_error(ret_error, "%s: --wayland-socket: the path is empty", cmd);
                        wayland_socket = optarg;
                        break;
                case OPT_HEADLESS:
                        a->headless = true;
                        break;
                case OPT_WAYLAND:
                        a->gpu = a->wayland = true;
                        break;
                case OPT_READ_ONLY:
                        share_read_only = true;
                        break;
                case OPT_TAG:
                        share_tag = optarg;
                        break;
                case OPT_CACHE:
                        if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "always") != 0 &&
                            strcmp(optarg, "never") != 0)
                                return usage_error(ret_error, "%s: invalid --cache '%s' (auto, always or never)",
                                                   cmd, optarg);
                        share_cache = optarg;
                        break;
                case 'f':
                        if (a->command == VMC_COMMAND_LOGS)
                                a->follow = true;
                        else
                                a->force = true;
                        break;
                case 't':
                        r = vmc_parse_duration_ms(optarg, &a->timeout_ms);
                        if (r < 0)
                                return usage_error(ret_error, "%s: invalid duration for --timeout: '%s'", cmd, optarg);
                        break;
                case OPT_JSON:
                        a->json = true;
                        break;
                default:
                        return option_error(c, argc, argv, cmd, ret_error);
                }
        }

        positional = argv + optind;
        n = (unsigned) (argc - optind);
        if (n < n_positional[a->command]) {
                if (n_positional[a->command] > 0 && n == 0)
                        return usage_error(ret_error, "%s: missing VM name (see vmc %s --help)", cmd, cmd);
                return usage_error(ret_error, "%s: missing arguments (see vmc %s --help)", cmd, cmd);
        }
        if (n > n_positional[a->command])
                return usage_error(ret_error, "%s: unexpected argument '%s'", cmd, positional[n_positional[a->command]]);
        if (n > 0)
                a->name = positional[0];
        if (a->name && a->name[0] == '\0')
                return usage_error(ret_error, "%s: the VM name is empty", cmd);

        switch (a->command) {
        case VMC_COMMAND_START:
                if (!a->kernel)
                        return usage_error(ret_error, "start: --kernel PATH is required");
                if (!a->gpu && (a->gpu_width || a->gpu_displays_set || wayland_socket || a->headless))
                        return usage_error(ret_error, "start: --%s needs --gpu",
                                           a->gpu_width ? "display" : a->gpu_displays_set ? "displays" :
                                           wayland_socket ? "wayland-socket" : "headless");
                if (a->headless && wayland_socket)
                        return usage_error(ret_error, "start: give --headless or --wayland-socket, not both");
                /* Cross-domain is the compositor's clients: nothing to show them on. */
                if (a->headless && a->wayland)
                        return usage_error(ret_error, "start: give --headless or --wayland, not both");
                if (wayland_socket) {
                        /* The daemon wants an absolute path; the socket's
                         * directory must exist to resolve a relative one. */
                        a->wayland_socket = wayland_socket[0] == '/' ? strdup(wayland_socket) :
                                            realpath(wayland_socket, NULL);
                        if (!a->wayland_socket)
                                return usage_error(ret_error, "start: --wayland-socket '%s': %s", wayland_socket,
                                                   strerror(errno));
                }
                break;
        case VMC_COMMAND_BALLOON:
                r = parse_size(positional[1], &a->size);
                if (r < 0)
                        return usage_error(ret_error, "balloon: invalid size '%s'", positional[1]);
                break;
        case VMC_COMMAND_RESIZE:
                r = parse_uint(positional[1], 0, UINT32_MAX, &u);
                if (r < 0)
                        return usage_error(ret_error, "resize: invalid disk number '%s' (0 is the first disk)", positional[1]);
                a->disk_index = (uint32_t) u;
                r = parse_size(positional[2], &a->size);
                if (r < 0 || a->size == 0)
                        return usage_error(ret_error, "resize: invalid size '%s'", positional[2]);
                break;
        case VMC_COMMAND_SHARE: {
                VmcShare *sh = &a->shares[0];

                if (!positional[1][0])
                        return usage_error(ret_error, "share: the path is empty");
                /* The daemon wants an absolute path; a relative one is the
                 * user's shorthand for one under the current directory. */
                sh->path = positional[1][0] == '/' ? strdup(positional[1]) : realpath(positional[1], NULL);
                if (!sh->path)
                        return usage_error(ret_error, "share: '%s': %s", positional[1], strerror(errno));
                a->n_shares = 1;
                sh->read_only = share_read_only;
                if ((share_tag && !(sh->tag = strdup(share_tag))) ||
                    (share_cache && !(sh->cache = strdup(share_cache))))
                        return usage_error(ret_error, "share: out of memory");
                break;
        }
        case VMC_COMMAND_UNSHARE:
                a->tag = positional[1];
                break;
        default:
                break;
        }
        return 0;
}

int vmc_parse_display(const char *s, uint32_t *ret_width, uint32_t *ret_height) {
        _cleanup_free_ char *copy = strdup(s);
        uint64_t w, h;
        char *x;

        if (!copy)
                return -ENOMEM;
        x = strpbrk(copy, "xX");
        if (!x)
                return -EINVAL;
        *x = '\0';
        if (parse_uint(copy, 1, UINT32_MAX, &w) < 0 || parse_uint(x + 1, 1, UINT32_MAX, &h) < 0)
                return -EINVAL;
        *ret_width = (uint32_t) w;
        *ret_height = (uint32_t) h;
        return 0;
}

char *vmc_wayland_socket_from_env(const char *xdg_runtime_dir, const char *wayland_display) {
        char *path;

        if (!wayland_display || !wayland_display[0])
                return NULL;
        /* libwayland-client's rule (wl_display_connect): an absolute
         * WAYLAND_DISPLAY is the socket itself. */
        if (wayland_display[0] == '/')
                return strdup(wayland_display);
        if (!xdg_runtime_dir || !xdg_runtime_dir[0])
                return NULL;
        if (asprintf(&path, "%s/%s", xdg_runtime_dir, wayland_display) < 0)
                return NULL;
        return path;
}

int vmc_args_parse(int argc, char **argv, VmcArgs *ret, char **ret_error) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                { "system", no_argument, NULL, OPT_SYSTEM },
                { "user", no_argument, NULL, OPT_USER },
                { "address", required_argument, NULL, OPT_ADDRESS },
                {}
        };
        VmcArgs a = {};
        int c, r;

        *ret_error = NULL;
        optind = 0;
        opterr = 0;
        /* "+": global options end at the command name. */
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        a.help = true;
                        break;
                case OPT_VERSION:
                        a.version = true;
                        break;
                case OPT_SYSTEM:
                        a.bus = VMC_BUS_SYSTEM;
                        break;
                case OPT_USER:
                        a.bus = VMC_BUS_USER;
                        break;
                case OPT_ADDRESS:
                        a.bus = VMC_BUS_ADDRESS;
                        a.address = optarg;
                        break;
                default:
                        return option_error(c, argc, argv, "vmc", ret_error);
                }
        }

        if (a.help || a.version) {
                *ret = a;
                return 0;
        }
        if (optind >= argc)
                return usage_error(ret_error, "missing command (see vmc --help)");

        /* `vmc help [COMMAND]` is the same as `vmc [COMMAND] --help`. */
        if (strcmp(argv[optind], "help") == 0) {
                a.help = true;
                if (optind + 1 < argc) {
                        a.command = vmc_command_from_string(argv[optind + 1]);
                        if (a.command == VMC_COMMAND_NONE)
                                return usage_error(ret_error, "unknown command '%s' (see vmc --help)", argv[optind + 1]);
                }
                *ret = a;
                return 0;
        }

        a.command = vmc_command_from_string(argv[optind]);
        if (a.command == VMC_COMMAND_NONE)
                return usage_error(ret_error, "unknown command '%s' (see vmc --help)", argv[optind]);

        r = parse_command(argc - optind, argv + optind, &a, ret_error);
        if (r < 0) {
                vmc_args_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}
