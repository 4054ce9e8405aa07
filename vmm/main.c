/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>

#include "seccomp/connector.h"
#include "vmm/control-client.h"
#include "vmm/control-server.h"
#include "vmm/devices/virtiofsd.h"
#include "vmm/event-loop.h"
#include "vmm/exit-codes.h"
#include "seccomp/jail.h"
#include "common/log.h"
#include "seccomp/sandbox.h"
#include "common/util.h"
#include "vmm/virtio/device.h"
#include "vmm/vm-control.h"
#include "vmm/vm.h"

/* How long `serve` waits for its configuration on --control-fd. */
#define SERVE_CONFIGURE_TIMEOUT_MS 10000

typedef struct RunArgs {
        /* The VM: every setting typed (common/vmm-config.h). `run` fills it
         * from its options (files are opened in run_open_inputs()); `serve`
         * receives it whole on --control-fd. */
        VmmConfig config;
        bool serve;
        const char *vm_option;  /* the first VM option given (serve refuses it) */
        const char *kernel;     /* run: PATH or fd:N */
        const char *initrd;
        const char *serial;     /* run: stdout, none, file:PATH or fd:N */
        const char *wayland_sock; /* run: the host compositor, for --gpu */
        const char *device_args[VMM_CONFIG_DEVICES_MAX];
        const VirtioDeviceOps *device_ops[VMM_CONFIG_DEVICES_MAX];
        /* The process, not the VM. */
        const char *socket;
        const char *control_fd;
        const char *kvm_device;
        const char *profile;
        SandboxMode sandbox_mode;
        const char *policy_dir;
        SandboxRole test_violation;
        int test_probe_port;    /* -1: no --test-jail-probe */
} RunArgs;

static void help(void) {
        char devices[4096] = "";

        /* One option per entry of the virtio device table. */
        for (unsigned i = 0; i < virtio_device_table_size; i++) {
                const VirtioDeviceOps *o = virtio_device_table[i];
                char opt[128];
                size_t n = strlen(devices);

                /* A usage starting with '[' is an optional argument: "[=ARG]". */
                snprintf(opt, sizeof(opt), "--%s%s%s", o->name,
                         o->option_usage && o->option_usage[0] != '[' ? "=" : "", o->option_usage ?: "");
                snprintf(devices + n, sizeof(devices) - n, "      %-18s  %s\n", opt, o->help);
        }
        printf("Usage: majordome-vmm run [OPTIONS] KERNEL\n"
               "       majordome-vmm serve --control-fd N [--socket PATH] [PROCESS OPTIONS]\n"
               "       majordome-vmm info [--json] SOCKET\n"
               "       majordome-vmm pause|resume|stop SOCKET\n"
               "       majordome-vmm disk-resize SOCKET INDEX SIZE\n"
               "       majordome-vmm balloon SOCKET SIZE\n"
               "       majordome-vmm balloon-stats [--json] SOCKET\n"
               "\n"
               "Run one x86-64 virtual machine on /dev/kvm, or control a running one.\n"
               "serve takes the VM's whole configuration (every VM option of run, with the\n"
               "files as descriptors) as one CONFIGURE message on --control-fd, as\n"
               "majordomed sends it (docs/control-protocol.md); it accepts only the options\n"
               "marked *.\n"
               "\n"
               "Options of run:\n"
               "  -m, --mem SIZE          guest RAM, a multiple of 1M (default 256M; 512M, 2G ...)\n"
               "  -c, --cpus N            number of vCPUs (default 1)\n"
               "  -i, --initrd PATH       initial ramdisk\n"
               "  -p, --cmdline STRING    kernel command line\n"
               "      --serial WHERE      COM1 output: stdout (default; input from stdin),\n"
               "                          file:PATH, fd:N or none\n"
               "      --serial-max-size SIZE  cap COM1 output to a regular file at SIZE\n"
               "                          (at least 16K): past it, only the newest half is kept\n"
               "* -s, --socket PATH       serve the control socket at PATH\n"
               "*     --control-fd N      also serve an already connected control socket\n"
               "      --debug-exit        let the guest end the VM with a code (port 0xf4)\n"
               "      --pvpanic           a pvpanic-pci device (1b36:0011): the guest reports\n"
               "                          its kernel panics\n"
               "      --on-panic ACTION   on a guest panic: stop (default; exit code 74) or\n"
               "                          pause (vCPUs paused, the VM kept for inspection)\n"
               "      --wayland-sock PATH the host's Wayland compositor's socket, where --gpu\n"
               "                          shows the guest's displays and cross-domain connects\n"
               "                          (default: none, headless)\n"
               "      --no-decompress     boot a bzImage as is instead of decompressing\n"
               "                          its payload on the host\n"
               "*     --kvm-device PATH   the KVM device node (default /dev/kvm)\n"
               "*     --profile-guest FILE  sample the guest's RIP and stack 500 times a\n"
               "                          second into FILE (tools/guest-profile.py reads it)\n"
               "*     --seccomp MODE      enforce (default), or log: allow and have the kernel\n"
               "                          log what a policy forbids, to develop a policy\n"
               "*     --seccomp-policy-dir DIR  the *.policy files to use instead of the\n"
               "                          built-in ones (docs/sandbox.md)\n"
               "*     --disable-sandbox   no jail and no seccomp filters: debugging only\n"
               "%s"
               "* -v, --verbose           log more\n"
               "  -h, --help              show this help\n"
               "      --version           show the version\n"
               "\n"
               "KERNEL is a bzImage (64-bit boot protocol, version 2.12 or later) or an\n"
               "ELF vmlinux. Exit codes are listed in docs/majordome-vmm.md: 0 guest\n"
               "powered off or reset, 64 usage, 65 bad image, 66 missing input, 69 no KVM,\n"
               "70 KVM failure, 71 host error, 72 guest triple fault, 73 guest code\n"
               "could not run, 74 guest kernel panic, 77 /dev/kvm permission denied; killed by SIGSYS: a sandbox\n"
               "violation (the syscall is named on stderr).\n", devices);
}

static bool is_fd_spec(const char *s) {
        return strncmp(s, "fd:", 3) == 0;
}

static int parse_run_args(int argc, char **argv, bool serve, RunArgs *a) {
        enum { ARG_SERIAL = 0x100, ARG_DEBUG_EXIT, ARG_NO_DECOMPRESS, ARG_VERSION, ARG_KVM_DEVICE, ARG_CONTROL_FD,
               ARG_SECCOMP, ARG_POLICY_DIR, ARG_DISABLE_SANDBOX, ARG_TEST_VIOLATION, ARG_TEST_PROBE,
               ARG_PROFILE, ARG_SERIAL_MAX, ARG_PVPANIC, ARG_ON_PANIC, ARG_WAYLAND_SOCK, ARG_DEVICE = 0x1000 };
        static const struct option options[] = {
                { "mem", required_argument, NULL, 'm' },
                { "cpus", required_argument, NULL, 'c' },
                { "initrd", required_argument, NULL, 'i' },
                { "cmdline", required_argument, NULL, 'p' },
                { "serial", required_argument, NULL, ARG_SERIAL },
                { "serial-max-size", required_argument, NULL, ARG_SERIAL_MAX },
                { "socket", required_argument, NULL, 's' },
                { "debug-exit", no_argument, NULL, ARG_DEBUG_EXIT },
                { "pvpanic", no_argument, NULL, ARG_PVPANIC },
                { "on-panic", required_argument, NULL, ARG_ON_PANIC },
                { "no-decompress", no_argument, NULL, ARG_NO_DECOMPRESS },
                { "wayland-sock", required_argument, NULL, ARG_WAYLAND_SOCK },
                { "kvm-device", required_argument, NULL, ARG_KVM_DEVICE },
                { "profile-guest", required_argument, NULL, ARG_PROFILE },
                { "control-fd", required_argument, NULL, ARG_CONTROL_FD },
                { "seccomp", required_argument, NULL, ARG_SECCOMP },
                { "seccomp-policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "disable-sandbox", no_argument, NULL, ARG_DISABLE_SANDBOX },
                /* Hidden, for tests/sandbox/: harmless unless asked for. */
                { "test-sandbox-violation", required_argument, NULL, ARG_TEST_VIOLATION },
                { "test-jail-probe", required_argument, NULL, ARG_TEST_PROBE },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        struct option all[64] = {};
        unsigned n_all = 0;
        uint64_t v;
        int c, r;

        /* The fixed options, then --NAME for each virtio device type. */
        for (; options[n_all].name; n_all++)
                all[n_all] = options[n_all];
        for (unsigned i = 0; i < virtio_device_table_size && n_all < ARRAY_SIZE(all) - 1; i++)
                all[n_all++] = (struct option) {
                        virtio_device_table[i]->name,
                        !virtio_device_table[i]->option_usage ? no_argument :
                        virtio_device_table[i]->option_usage[0] == '[' ? optional_argument : required_argument,
                        NULL, ARG_DEVICE + (int) i,
                };

        *a = (RunArgs) {
                .serve = serve,
                .serial = "stdout",
                .sandbox_mode = SANDBOX_MODE_ENFORCE,
                .test_violation = _SANDBOX_ROLE_INVALID,
                .test_probe_port = -1,
        };
        /* The defaults live there, and only there. */
        vmm_config_init(&a->config);

        /* Each VM option is parsed into its typed field here; ranges are
         * checked once, with the message's, by vmm_config_validate(). */
        while ((c = getopt_long(argc, argv, "m:c:i:p:s:vh", all, NULL)) >= 0) {
                const struct option *o = NULL;

                for (unsigned i = 0; i < n_all; i++)
                        if (all[i].val == c)
                                o = &all[i];
                switch (c) {
                case 'm': case 'c': case 'i': case 'p': case ARG_SERIAL: case ARG_SERIAL_MAX: case ARG_DEBUG_EXIT:
                case ARG_PVPANIC: case ARG_ON_PANIC: case ARG_NO_DECOMPRESS: case ARG_WAYLAND_SOCK:
                        if (!a->vm_option)
                                a->vm_option = o ? o->name : "?";
                        break;
                default:
                        if (c >= ARG_DEVICE && !a->vm_option)
                                a->vm_option = o ? o->name : "?";
                        break;
                }
                switch (c) {
                case 'm':
                        r = parse_size(optarg, &v);
                        if (r < 0)
                                return log_error_errno(r, "--mem %s: not a size (like 512M or 2G)", optarg);
                        a->config.mem_size = v;
                        break;
                case 'c':
                        r = parse_uint(optarg, 0, UINT32_MAX, &v);
                        if (r < 0)
                                return log_error_errno(r, "--cpus %s: not a number", optarg);
                        a->config.n_vcpus = (uint32_t) v;
                        break;
                case 'i':
                        a->initrd = optarg;
                        break;
                case 'p':
                        if (strlen(optarg) > VMM_CONFIG_CMDLINE_MAX)
                                return log_error_errno(E2BIG, "--cmdline: longer than %d bytes", VMM_CONFIG_CMDLINE_MAX);
                        strcpy(a->config.cmdline, optarg);
                        break;
                case ARG_SERIAL:
                        if (strcmp(optarg, "stdout") != 0 && strcmp(optarg, "none") != 0 &&
                            (strncmp(optarg, "file:", 5) != 0 || optarg[5] == '\0') && !is_fd_spec(optarg))
                                return log_error_errno(EINVAL, "--serial %s: expected stdout, none, file:PATH or fd:N", optarg);
                        a->serial = optarg;
                        break;
                case ARG_SERIAL_MAX:
                        r = parse_size(optarg, &v);
                        if (r < 0)
                                return log_error_errno(r, "--serial-max-size %s: want 0 or a size of at least 16K", optarg);
                        a->config.serial_max = v;
                        break;
                case 's':
                        a->socket = optarg;
                        break;
                case ARG_DEBUG_EXIT:
                        a->config.debug_exit = true;
                        break;
                case ARG_PVPANIC:
                        a->config.pvpanic = true;
                        break;
                case ARG_ON_PANIC: {
                        int action = control_panic_action_from_string(optarg);

                        if (action < 0)
                                return log_error("--on-panic %s: must be stop or pause", optarg), -EINVAL;
                        a->config.on_panic = (uint32_t) action;
                        break;
                }
                case ARG_NO_DECOMPRESS:
                        a->config.decompress = false;
                        break;
                case ARG_WAYLAND_SOCK:
                        a->wayland_sock = optarg;
                        break;
                case ARG_PROFILE:
                        a->profile = optarg;
                        break;
                case ARG_KVM_DEVICE:
                        a->kvm_device = optarg;
                        break;
                case ARG_CONTROL_FD:
                        a->control_fd = optarg;
                        break;
                case ARG_SECCOMP: {
                        SandboxMode m = sandbox_mode_from_string(optarg);
                        if (m != SANDBOX_MODE_ENFORCE && m != SANDBOX_MODE_LOG)
                                return log_error_errno(EINVAL, "--seccomp %s: expected enforce or log", optarg);
                        if (a->sandbox_mode != SANDBOX_MODE_OFF)
                                a->sandbox_mode = m;
                        break;
                }
                case ARG_POLICY_DIR:
                        a->policy_dir = optarg;
                        break;
                case ARG_DISABLE_SANDBOX:
                        a->sandbox_mode = SANDBOX_MODE_OFF;
                        break;
                case ARG_TEST_VIOLATION:
                        a->test_violation = sandbox_role_from_string(optarg);
                        if (a->test_violation == _SANDBOX_ROLE_INVALID)
                                return log_error_errno(EINVAL, "--test-sandbox-violation %s: no such role", optarg);
                        break;
                case ARG_TEST_PROBE:
                        r = parse_uint(optarg, 0, 65535, &v);
                        if (r < 0)
                                return log_error_errno(r, "--test-jail-probe %s: not a port", optarg);
                        a->test_probe_port = (int) v;
                        break;
                case 'v':
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case 'h':
                        help();
                        exit(0);
                case ARG_VERSION:
                        printf("majordome-vmm %s\n", MAJORDOME_VERSION);
                        exit(0);
                default:
                        if (c >= ARG_DEVICE && c < ARG_DEVICE + (int) virtio_device_table_size) {
                                unsigned n = a->config.n_devices;

                                if (n >= VMM_CONFIG_DEVICES_MAX)
                                        return log_error_errno(E2BIG, "at most %d devices", VMM_CONFIG_DEVICES_MAX);
                                /* Parsed (and its file opened) by run_open_inputs(). */
                                a->device_ops[n] = virtio_device_table[c - ARG_DEVICE];
                                a->device_args[n] = optarg;
                                a->config.n_devices++;
                                break;
                        }
                        return -EINVAL;
                }
        }

        if (serve) {
                if (a->vm_option)
                        return log_error_errno(EINVAL, "serve: --%s is a VM setting; it comes in the configure message",
                                               a->vm_option);
                if (optind != argc)
                        return log_error_errno(EINVAL, "serve: no KERNEL argument; it comes in the configure message");
                if (!a->control_fd)
                        return log_error_errno(EINVAL, "serve: --control-fd N is required");
                return 0;
        }
        if (optind != argc - 1)
                return log_error_errno(EINVAL, "run: expected exactly one KERNEL argument (see --help)");
        a->kernel = argv[optind];
        return 0;
}

/* "fd:N": a descriptor the parent passed (the daemon opens files itself
 * and hands them over); taken over with close-on-exec set. */
static int parse_fd(const char *what, const char *spec, const char *number, int *ret) {
        int fd, r;

        r = parse_fd_number(number, &fd);
        if (r < 0)
                return log_error_errno(r, "%s %s: not a descriptor number", what, spec);
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return log_error_errno(errno, "%s %s: %m", what, spec);
        *ret = fd;
        return 0;
}

static int open_input(const char *what, const char *path, int *ret) {
        int fd;

        if (is_fd_spec(path))
                return parse_fd(what, path, path + 3, ret);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "%s %s: %m", what, path);
        *ret = fd;
        return 0;
}

typedef struct Runner {
        Vm *vm;
        EventLoop *event;
        ControlServer *server;
        EventSource *stdin_source;
        bool exiting;
} Runner;

static int on_vm_exit(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runner *run = userdata;

        run->exiting = true;
        event_loop_exit(run->event, 0);
        return 0;
}

/* The VM's state changed (or a guest panicked): act, then tell subscribers. */
static int on_vm_status(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runner *run = userdata;

        vm_handle_pending(run->vm);
        control_server_push_events(run->server);
        return 0;
}

/* Serial output waits for its delayed flush: the loop's timeout does it. */
static int on_serial_flush(EventSource *s, int fd, uint32_t revents, void *userdata) {
        return 0;
}

/* The event loop, with the serial output's delayed flush as its timeout. */
static int run_loop(Runner *run) {
        int timeout_ms = -1, r;

        while (!run->exiting) {
                r = event_loop_run(run->event, timeout_ms);
                if (r < 0)
                        return r;
                timeout_ms = serial_flush_due(run->vm->serial);
        }
        return 0;
}

static int on_signal(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runner *run = userdata;
        struct signalfd_siginfo si;

        if (read(fd, &si, sizeof(si)) != sizeof(si))
                return 0;
        vm_request_exit(run->vm, VMM_EXIT_OK, "stopped by signal %s", strsignal((int) si.ssi_signo));
        return 0;
}

static int on_stdin(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runner *run = userdata;
        uint8_t buf[SERIAL_RX_FIFO];
        size_t space = serial_rx_space(run->vm->serial);
        ssize_t n;

        if (space == 0) {
                /* The guest is not reading: wait until it drains the FIFO. */
                return event_source_set_enabled(s, false);
        }
        n = read(fd, buf, MIN(space, sizeof(buf)));
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : event_source_set_enabled(s, false);
        if (n == 0)
                return event_source_set_enabled(s, false);
        serial_input(run->vm->serial, buf, (size_t) n);
        return 0;
}

static int on_rx_space(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runner *run = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        if (run->stdin_source)
                (void) event_source_set_enabled(run->stdin_source, true);
        return 0;
}

static int open_serial_output(const char *spec, VmmConfig *c) {
        int fd;

        c->serial = VMM_SERIAL_FD;
        if (strcmp(spec, "stdout") == 0)
                c->serial = VMM_SERIAL_STDOUT;
        else if (strcmp(spec, "none") == 0)
                c->serial = VMM_SERIAL_NONE;
        else if (is_fd_spec(spec))
                return parse_fd("--serial", spec, spec + 3, &c->serial_fd);
        else {
                fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
                if (fd < 0)
                        return log_error_errno(errno, "--serial %s: %m", spec);
                c->serial_fd = fd;
        }
        return 0;
}

/* What no configuration can know: the host's RAM. */
static int check_host_memory(const VmmConfig *c) {
        struct sysinfo si;

        if (sysinfo(&si) == 0) {
                uint64_t host = (uint64_t) si.totalram * si.mem_unit;

                if (c->mem_size > host)
                        return log_error_errno(E2BIG, "--mem %" PRIu64 "M: more than this host's %" PRIu64 "M of RAM",
                                               c->mem_size / MiB, host / MiB);
        }
        return 0;
}

/* run: the options' files into the configuration's descriptors, each
 * device's option through its own parser; then the one validation. Returns
 * 0 or an exit code. */
static int run_open_inputs(RunArgs *a) {
        VmmConfig *c = &a->config;
        VmmConfigError error = {};
        int r;

        if (check_host_memory(c) < 0)
                return VMM_EXIT_USAGE;
        if (open_input("kernel", a->kernel, &c->kernel_fd) < 0)
                return VMM_EXIT_NO_INPUT;
        if (a->initrd && open_input("initrd", a->initrd, &c->initrd_fd) < 0)
                return VMM_EXIT_NO_INPUT;
        if (open_serial_output(a->serial, c) < 0)
                return VMM_EXIT_USAGE;
        for (unsigned i = 0; i < c->n_devices; i++) {
                const VirtioDeviceOps *ops = a->device_ops[i];
                const char *arg = a->device_args[i];

                c->devices[i] = (VmmDevice) { .kind = (uint32_t) vmm_device_kind_from_string(ops->name) };
                r = ops->parse(arg, &c->devices[i]);
                if (r < 0) {
                        /* Nothing of a device that failed to parse is kept. */
                        c->devices[i].kind = VMM_DEVICE_RNG;
                        return log_error_errno(r, "--%s%s%s: %m", ops->name, arg ? " " : "", arg ?: ""),
                               r == -EINVAL ? VMM_EXIT_USAGE : VMM_EXIT_OS_ERROR;
                }
        }
        if (a->wayland_sock) {
                VmmDevice *gpu = NULL;
                struct stat st;

                for (unsigned i = 0; i < c->n_devices; i++)
                        if (c->devices[i].kind == VMM_DEVICE_GPU)
                                gpu = &c->devices[i];
                if (!gpu)
                        return log_error("--wayland-sock: there is no --gpu to show"), VMM_EXIT_USAGE;
                /* A handle to the socket's inode, opened now as the one who
                 * ran us (the jail reaches no path): majordome-gpu connects
                 * through it once for each guest cross-domain context, and
                 * once for the displays. */
                r = open(a->wayland_sock, O_PATH | O_CLOEXEC);
                if (r < 0)
                        return log_error_errno(errno, "--wayland-sock %s: %m", a->wayland_sock), VMM_EXIT_NO_INPUT;
                gpu->gpu.wayland_fd = r;
                if (fstat(gpu->gpu.wayland_fd, &st) < 0)
                        return log_error_errno(errno, "--wayland-sock %s: %m", a->wayland_sock), VMM_EXIT_NO_INPUT;
                if (!S_ISSOCK(st.st_mode))
                        return log_error("--wayland-sock %s: not a socket", a->wayland_sock), VMM_EXIT_NO_INPUT;
        }
        r = vmm_config_validate(c, &error);
        if (r < 0) {
                log_error("%s", error.message);
                return error.bad_input ? VMM_EXIT_NO_INPUT : VMM_EXIT_USAGE;
        }
        return 0;
}

/* serve: the configuration from the daemon, before anything else. */
static int serve_receive(RunArgs *a) {
        VmmConfigError error = {};
        int fd, r;

        if (parse_fd("--control-fd", a->control_fd, a->control_fd, &fd) < 0)
                return VMM_EXIT_USAGE;
        r = vmm_config_receive(fd, SERVE_CONFIGURE_TIMEOUT_MS, &a->config, &error);
        if (r < 0) {
                log_error("%s", error.message[0] ? error.message : strerror(-r));
                return error.bad_input ? VMM_EXIT_NO_INPUT : VMM_EXIT_USAGE;
        }
        return check_host_memory(&a->config) < 0 ? VMM_EXIT_USAGE : 0;
}


/* Before anything is opened: inherited descriptors go, and every role's
 * policy is compiled (the jail will not let us read a file later). */
static int sandbox_prepare(RunArgs *a) {
        PolicySource *sources = NULL;
        size_t n_sources = 0;
        PolicyError e;
        uint64_t v;
        int keep[4 + VMM_CONFIG_DEVICES_MAX], n = 0, r;

        if (a->sandbox_mode == SANDBOX_MODE_OFF)
                return 0;
        /* What the configuration names, and the control connection. */
        keep[n++] = a->config.kernel_fd;
        keep[n++] = a->config.initrd_fd;
        keep[n++] = a->config.serial == VMM_SERIAL_FD ? a->config.serial_fd : -1;
        keep[n++] = a->control_fd && parse_uint(a->control_fd, 0, INT32_MAX, &v) >= 0 ? (int) v : -1;
        for (unsigned i = 0; i < a->config.n_devices; i++) {
                int *fd = vmm_device_fd(&a->config.devices[i]);

                keep[n++] = fd ? *fd : -1;
        }
        r = jail_close_inherited_fds(keep, (size_t) n);
        if (r < 0)
                return log_error_errno(r, "jail: closing inherited descriptors: %m"), VMM_EXIT_OS_ERROR;

        if (a->policy_dir) {
                r = sandbox_policy_sources_load_dir(a->policy_dir, &sources, &n_sources);
                if (r < 0)
                        return log_error_errno(r, "--seccomp-policy-dir %s: %m", a->policy_dir), VMM_EXIT_USAGE;
        }
        r = sandbox_setup(a->sandbox_mode, sources, n_sources, &e);
        sandbox_policy_sources_free(sources, n_sources);
        if (r < 0) {
                if (e.message[0])
                        log_error("seccomp policy: %s", e.message);
                else
                        log_error_errno(r, "seccomp policy: %m");
                return VMM_EXIT_USAGE;
        }
        if (a->test_violation != _SANDBOX_ROLE_INVALID)
                sandbox_set_test_violation(a->test_violation);
        /* glibc reads /etc/localtime on its first time conversion (the RTC's
         * gmtime_r included): have it done while the file is in reach. */
        tzset();
        return 0;
}

/* Each GPU's compositor handle becomes a connector's socket, before the
 * jail: majordome-gpu starts in the jail's mount namespace, which has no
 * /proc to connect through (seccomp/connector.h). */
static int start_connectors(RunArgs *a) {
        for (unsigned i = 0; i < a->config.n_devices; i++) {
                VmmDevice *d = &a->config.devices[i];
                WaylandConnector c;
                int r;

                if (d->kind != VMM_DEVICE_GPU || d->gpu.wayland_fd < 0 ||
                    !(fcntl(d->gpu.wayland_fd, F_GETFL) & O_PATH))
                        continue;
                r = wayland_connector_start(d->gpu.wayland_fd, a->sandbox_mode != SANDBOX_MODE_OFF, &c);
                if (r < 0)
                        return log_error_errno(r, "the compositor's connector: %m"), VMM_EXIT_OS_ERROR;
                safe_close(d->gpu.wayland_fd);
                d->gpu.wayland_fd = c.sock;
        }
        return 0;
}

/* The host directories devices reach by path while they run (vsock's
 * PATH_P), each bind-mounted alone into the jail as "/NAMEi", where
 * NAME is the device's option and i its index ("/vsock0"). */
typedef struct JailDirs {
        JailBind binds[VM_MAX_DEVICES];
        char names[VM_MAX_DEVICES][32];
        size_t n;
} JailDirs;

static void jail_dirs_done(JailDirs *d) {
        for (size_t i = 0; i < d->n; i++)
                d->binds[i].fd = safe_close(d->binds[i].fd);
        d->n = 0;
}

static int jail_dirs_collect(Vm *vm, JailDirs *d) {
        for (unsigned i = 0; i < vm->n_virtio; i++) {
                const char *name = vm->config.devices[i].ops->name;
                char path[40];
                int fd;

                snprintf(d->names[d->n], sizeof(d->names[d->n]), "%s%u", name, i);
                snprintf(path, sizeof(path), "/%s", d->names[d->n]);
                fd = virtio_device_jail_dir(vm->virtio[i]->vdev, path);
                if (fd == -ENOENT)
                        continue;
                if (fd < 0)
                        return log_error_errno(fd, "jail: --%s: its directory in the jail: %m", name);
                d->binds[d->n] = (JailBind) { .fd = fd, .name = d->names[d->n] };
                d->n++;
        }
        return 0;
}

static int run_vm(RunArgs *a) {
        _cleanup_close_ int listen_fd = -EBADF, signal_fd = -EBADF, profile_fd = -EBADF;
        const VmmConfig *c = &a->config;
        _cleanup_(vm_freep) Vm *vm = NULL;
        _cleanup_(event_loop_freep) EventLoop *event = NULL;
        _cleanup_(control_server_freep) ControlServer *server = NULL;
        Runner run = {};
        Jail jail = {};
        JailDirs jail_dirs = {};
        VmError error;
        sigset_t mask;
        int serial_out = -1, r, code;

        /* The configuration first, its files open: the VM is built from
         * descriptors. */
        code = a->serve ? serve_receive(a) : run_open_inputs(a);
        if (code != 0)
                return code;
        /* Before the jail's mount namespace: a clone of a mount must be
         * made in the namespace it belongs to. */
        for (unsigned i = 0; i < a->config.n_devices; i++) {
                r = virtiofsd_prepare(&a->config.devices[i]);
                if (r < 0)
                        return log_error_errno(r, "--shared-dir %s: a private view of the directory: %m",
                                               a->config.devices[i].shared_dir.tag), VMM_EXIT_OS_ERROR;
        }
        code = sandbox_prepare(a);
        if (code == 0)
                code = start_connectors(a);
        if (code != 0)
                return code;
        serial_out = c->serial == VMM_SERIAL_STDOUT ? STDOUT_FILENO : c->serial == VMM_SERIAL_FD ? c->serial_fd : -1;
        if (a->profile) {
                profile_fd = open(a->profile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);
                if (profile_fd < 0)
                        return log_error_errno(errno, "--profile-guest %s: %m", a->profile), VMM_EXIT_USAGE;
        }
        /* The socket's path must be bound before the jail hides paths. */
        if (a->socket) {
                r = control_listen(a->socket, &listen_fd);
                if (r < 0)
                        return log_error_errno(r, "--socket %s: %m", a->socket), VMM_EXIT_OS_ERROR;
        }

        /* The pid namespace needs a fork, which must come before the KVM VM
         * exists: a VM belongs to the process that created it. */
        if (a->sandbox_mode != SANDBOX_MODE_OFF) {
                const char *step = NULL, *user;
                int u;

                /* Before the jail: the user database is out of its reach. */
                u = jail_resolve_user(&jail, &user);
                if (u < 0)
                        return log_error_errno(u, "jail: the user %s: %m", user), VMM_EXIT_OS_ERROR;
                r = jail_fork(&jail, &step);
                if (r < 0)
                        return log_error_errno(r, "jail: %s: %m", step), VMM_EXIT_OS_ERROR;
                if (r > 0) {
                        /* Returns only when it failed (the child is gone). */
                        r = jail_supervise(&jail, a->socket, &step);
                        return log_error_errno(r, "jail: %s: %m", step), VMM_EXIT_OS_ERROR;
                }
                if (!jail.namespaces)
                        log_warning("jail: this host allows no namespaces; running without them");
                /* By the child alone, where it matters, and as debug: an
                 * error stays one line (majordomed says it once, at start). */
                if (u > 0 && geteuid() == 0 && !jail.user_ns)
                        log_debug("jail: no user %s, dropping to nobody", user);
        }

        VmConfig config = {
                        .hv = &kvm_hypervisor_ops,
                        .hv_device = a->kvm_device,
                        .mem_size = c->mem_size,
                        .n_vcpus = c->n_vcpus,
                        .kernel_fd = c->kernel_fd,
                        .initrd_fd = c->initrd_fd,
                        .cmdline = c->cmdline[0] ? c->cmdline : NULL,
                        .serial_out_fd = serial_out,
                        .debug_exit = c->debug_exit,
                        .pvpanic = c->pvpanic,
                        .on_panic = c->on_panic,
                        .decompress = c->decompress,
                        .profile_fd = profile_fd,
                        .n_devices = c->n_devices,
        };
        for (unsigned i = 0; i < c->n_devices; i++)
                config.devices[i] = (VmDeviceConfig) {
                        .ops = virtio_device_find_kind(c->devices[i].kind),
                        .config = c->devices[i],
                };
        r = vm_new(&config, &vm, &error);
        if (r < 0) {
                log_error("%s", error.message);
                return error.exit_code;
        }
        /* The devices hold their own duplicates now. */
        for (unsigned i = 0; i < a->config.n_devices; i++) {
                int *fd = vmm_device_fd(&a->config.devices[i]);

                if (fd)
                        *fd = safe_close(*fd);
        }
        r = serial_set_output_max(vm->serial, c->serial_max);
        if (r < 0)
                return log_error_errno(r, "--serial-max-size: %m"), VMM_EXIT_OS_ERROR;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);

        r = event_loop_new(&event);
        if (r < 0)
                return log_error_errno(r, "event loop: %m"), VMM_EXIT_OS_ERROR;
        run = (Runner) { .vm = vm, .event = event };

        /* SIGPIPE stays blocked and unread: a closed pipe is an EPIPE. */
        sigdelset(&mask, SIGPIPE);
        signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (signal_fd < 0)
                return log_error_errno(errno, "signalfd: %m"), VMM_EXIT_OS_ERROR;

        r = event_add_io(event, NULL, vm->exit_fd, EPOLLIN, on_vm_exit, &run);
        if (r >= 0)
                r = event_add_io(event, NULL, vm->status_fd, EPOLLIN, on_vm_status, &run);
        if (r >= 0)
                r = event_add_io(event, NULL, signal_fd, EPOLLIN, on_signal, &run);
        if (r >= 0)
                r = event_add_io(event, NULL, vm->rx_space_fd, EPOLLIN, on_rx_space, &run);
        if (r >= 0)
                r = event_add_io(event, NULL, serial_flush_fd(vm->serial), EPOLLIN, on_serial_flush, &run);
        if (r < 0)
                return log_error_errno(r, "event loop: %m"), VMM_EXIT_OS_ERROR;

        if (c->serial == VMM_SERIAL_STDOUT) {
                /* stdin may be a file or /dev/null, which epoll refuses: no input then. */
                r = event_add_io(event, &run.stdin_source, STDIN_FILENO, EPOLLIN, on_stdin, &run);
                if (r < 0 && r != -EPERM)
                        log_debug_errno(r, "serial input from stdin unavailable: %m");
        }

        if (listen_fd >= 0) {
                const char *idle = getenv("MAJORDOME_VMM_IDLE_TIMEOUT_MS");

                r = control_server_new(event, listen_fd, &vm_control_ops, vm, &server);
                if (r < 0)
                        return log_error_errno(r, "control socket: %m"), VMM_EXIT_OS_ERROR;
                TAKE_FD(listen_fd);
                /* Undocumented, for the tests: seconds, not 30 s. */
                if (idle && atoi(idle) > 0)
                        control_server_set_idle_timeout(server, (uint64_t) atoi(idle));
        }

        if (a->control_fd) {
                int fd;

                if (parse_fd("--control-fd", a->control_fd, a->control_fd, &fd) < 0)
                        return VMM_EXIT_USAGE;
                if (!server) {
                        r = control_server_new(event, -1, &vm_control_ops, vm, &server);
                        if (r < 0)
                                return log_error_errno(r, "control socket: %m"), VMM_EXIT_OS_ERROR;
                }
                r = control_server_add_connection(server, fd);
                if (r < 0)
                        return log_error_errno(r, "--control-fd %d: %m", fd), VMM_EXIT_OS_ERROR;
        }

        if (a->sandbox_mode != SANDBOX_MODE_OFF) {
                const char *step = NULL;

                /* Without namespaces there is no new root to bind into:
                 * devices keep their host paths (a warning said so). */
                if (jail.namespaces) {
                        r = jail_dirs_collect(vm, &jail_dirs);
                        if (r < 0) {
                                jail_dirs_done(&jail_dirs);
                                return VMM_EXIT_OS_ERROR;
                        }
                }
                r = jail_lockdown(&jail, jail_dirs.binds, jail_dirs.n, &step);
                jail_dirs_done(&jail_dirs);
                if (r < 0)
                        return log_error_errno(r, "jail: %s: %m", step), VMM_EXIT_OS_ERROR;
        }

        /* The images are read, parsed and decompressed only now, jailed and
         * without privilege: they are the VMM's first untrusted input. */
        r = vm_load(vm, &error);
        if (r < 0) {
                log_error("%s", error.message);
                return error.exit_code;
        }
        a->config.kernel_fd = safe_close(a->config.kernel_fd);
        a->config.initrd_fd = safe_close(a->config.initrd_fd);
        /* Also without the sandbox: the tests' control that the probes work. */
        if (a->test_probe_port >= 0) {
                jail_probe(stdout, (unsigned) a->test_probe_port);
                return 0;
        }
        if (a->sandbox_mode != SANDBOX_MODE_OFF) {
                r = sandbox_spawner_start();
                if (r < 0)
                        return log_error_errno(r, "sandbox: starting the spawner thread: %m"), VMM_EXIT_OS_ERROR;
        }

        /* Set-up is over (images read, policies compiled): give the heap
         * it left behind back to the host before the guest runs. */
        (void) malloc_trim(0);

        run.server = server;
        r = vm_start(vm);
        /* Last: the threads vm_start created have their own roles. */
        if (r >= 0)
                r = sandbox_enter_role(SANDBOX_ROLE_MAIN);
        if (r >= 0) {
                r = run_loop(&run);
                if (r < 0)
                        vm_request_exit(vm, VMM_EXIT_OS_ERROR, "event loop failed: %s", strerror(-r));
        }
        vm_request_exit(vm, VMM_EXIT_OK, "VMM shutting down");
        vm_join(vm);
        sandbox_spawner_stop();
        /* What the guest wrote last (the vCPUs are gone). */
        serial_flush(vm->serial);

        code = vm->exit_code;
        if (code >= 64)
                log_error("%s", vm->exit_reason);
        else
                log_debug("%s", vm->exit_reason);

        /* Subscribers hear why before they see the hang-up. */
        control_server_send_exiting(server, code, vm->exit_reason);
        server = control_server_free(server);
        if (a->socket && !jail.forked) /* else the supervising parent unlinks it */
                (void) unlink(a->socket);
        return code;
}

static void crash_handler(int sig) {
        char msg[96];
        int n;

        n = snprintf(msg, sizeof(msg), "majordome-vmm: fatal signal %d (%s)\n", sig, sigabbrev_np(sig));
        if (n > 0)
                (void) !write(STDERR_FILENO, msg, (size_t) n);
        signal(sig, SIG_DFL);
        raise(sig);
}

static void install_crash_handlers(void) {
        static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS };

#if defined(__SANITIZE_ADDRESS__)
        /* The sanitizer's own handlers report more; keep them. */
        if (sigs[0] != 0)
                return;
#endif
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                signal(sigs[i], crash_handler);
}

int main(int argc, char **argv) {
        RunArgs args;
        int r;

        log_set_program_name("majordome-vmm");
        install_crash_handlers();
        /* Before --test-sandbox-violation names one and sandbox_setup
         * compiles them: the devices' seccomp roles. */
        r = virtio_device_table_register_roles();
        if (r < 0)
                return log_error_errno(r, "seccomp device roles: %m"), VMM_EXIT_OS_ERROR;

        if (argc < 2) {
                help();
                return VMM_EXIT_USAGE;
        }
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                help();
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("majordome-vmm %s\n", MAJORDOME_VERSION);
                return 0;
        }
        if (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "serve") == 0) {
                if (parse_run_args(argc - 1, argv + 1, strcmp(argv[1], "serve") == 0, &args) < 0)
                        return VMM_EXIT_USAGE;
                r = run_vm(&args);
                /* The serial output's descriptor lives as long as the VM. */
                vmm_config_close_fds(&args.config);
#if defined(__SANITIZE_ADDRESS__)
                /* LeakSanitizer cannot run in the jail (docs/sandbox.md). */
                if (sandbox_get_mode() != SANDBOX_MODE_OFF) {
                        fflush(NULL);
                        _exit(r);
                }
#endif
                return r;
        }
        if (control_client_is_verb(argv[1]))
                return control_client_main(argc - 1, argv + 1);
        log_error("unknown command '%s' (see --help)", argv[1]);
        return VMM_EXIT_USAGE;
}
