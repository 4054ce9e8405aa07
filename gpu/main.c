/* SPDX-License-Identifier: BSD-3-Clause */
/* majordome-gpu: the 2D virtio-gpu device (gpu/virtio-gpu.c) as a
 * vhost-user back-end process, showing the guest's scanouts on the host's
 * Wayland compositor (gpu/display.h) or nowhere. docs/gpu.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "backend/vhost-user-backend.h"
#include "seccomp/connector.h"
#include "gpu/display.h"
#include "seccomp/device-sandbox.h"
#include "majordome-features.h"
#include "gpu/virtio-gpu.h"
#include "common/log.h"
#include "common/util.h"
#include "common/vmm-config.h"

_Static_assert(VIRTIO_GPU_CONTEXT_ALL == VMM_GPU_CONTEXT_ALL &&
                       VIRTIO_GPU_CONTEXT_CROSS_DOMAIN == VMM_GPU_CONTEXT_CROSS_DOMAIN &&
                       VIRTIO_GPU_CONTEXT_VIRGL2 == VMM_GPU_CONTEXT_VIRGL2,
               "the device's context-type bits are the VMM config's");

typedef struct Gpu {
        VirtioGpu *core;
        GpuDisplay *display;
        VhostUserBackend *backend;
        int fence_timer;        /* virgl: armed while responses wait on fences */
        WaylandConnector connector; /* cross-domain's compositor connections */
        VirtioChain chain;
} Gpu;

/* How often held responses' fences are polled while some are held:
 * virglrenderer runs without its fence thread (docs/gpu.md, "Its jail"). */
#define FENCE_POLL_NS 1000000

static void fence_timer_arm(Gpu *gpu, unsigned held) {
        struct itimerspec t = { .it_value = { .tv_nsec = held > 0 ? FENCE_POLL_NS : 0 } };

        if (gpu->fence_timer >= 0)
                (void) timerfd_settime(gpu->fence_timer, 0, &t, NULL);
}

/* The host-visible region is the front-end's shared memory region 1
 * (docs/vhost-user.md), reached over the back-end request channel. */
#define HOST_VISIBLE_SHMID 1

static int shm_map(void *ctx, int fd, uint64_t offset, uint64_t len) {
        Gpu *gpu = ctx;

        return vhost_user_backend_shmem_map(gpu->backend, HOST_VISIBLE_SHMID, fd, 0, offset, len,
                                            VHOST_USER_SHMEM_MAP_RW);
}

static int shm_unmap(void *ctx, uint64_t offset, uint64_t len) {
        Gpu *gpu = ctx;

        return vhost_user_backend_shmem_unmap(gpu->backend, HOST_VISIBLE_SHMID, offset, len);
}

static int on_fence_timer(void *ctx, int fd) {
        Gpu *gpu = ctx;
        uint64_t n;

        (void) read(fd, &n, sizeof(n));
        fence_timer_arm(gpu, virtio_gpu_poll(gpu->core));
        return 0;
}

static int wayland_connect(void *ctx) {
        Gpu *gpu = ctx;

        return wayland_connector_connect(&gpu->connector);
}

/* A cross-domain context's compositor connection or pipe is ready. */
static int on_cross_domain(void *ctx, int fd) {
        Gpu *gpu = ctx;

        virtio_gpu_dispatch(gpu->core);
        return 0;
}

static void help(void) {
        printf("Usage: majordome-gpu --fd N | --socket PATH [OPTIONS]\n"
               "\n"
               "A virtio-gpu device (2D, or 3D through virglrenderer) served over vhost-user\n"
               "to majordome-vmm; each scanout is a window on the host's Wayland compositor,\n"
               "or nothing when none is given (headless). Runs until the front-end hangs up.\n"
               "\n"
               "  --fd N                 serve the connected vhost-user socket N\n"
               "  --socket PATH          listen at PATH and serve the first connection\n"
               "  --backend 2d|virgl     what renders (2d): virgl offers VIRTIO_GPU_F_VIRGL,\n"
               "                         capsets VIRGL and VIRGL2, on Mesa (llvmpipe or a GPU)\n"
               "  --width W, --height H  each display's size in pixels (1..16384; 1024x768)\n"
               "  --displays N           scanouts (0..16; 1); 0: no display, render only\n"
               "  --max-memory BYTES     all the guest's resources together (256M)\n"
               "  --blob                 offer VIRTIO_GPU_F_RESOURCE_BLOB (blobs; MAP_BLOB into\n"
               "                         the front-end's host-visible region 1)\n"
               "  --host-visible-size BYTES  that region's size, as the VMM declares it (256M)\n"
               "  --context-types LIST   the context types offered, colon-separated: virgl,\n"
               "                         virgl2 (--backend virgl), cross-domain (guest Wayland\n"
               "                         clients through sommelier on the compositor; needs\n"
               "                         --blob). Default: the back-end's own\n"
               "  --wayland-sock PATH    the compositor's socket\n"
               "  --wayland-fd N         the compositor's socket as an O_PATH descriptor, or\n"
               "                         majordome-vmm's connector socket (SOCK_SEQPACKET), or a\n"
               "                         connected socket (windows only, no cross-domain)\n"
               "  --seccomp MODE         enforce (default), or log: allow, and have the\n"
               "                         kernel log what gpu.policy forbids\n"
               "  --disable-sandbox      no jail and no seccomp filter: debugging only\n"
               "  -h, --help             this text\n");
}

static void gpu_notify(void *ctx, VirtQueue *q) {
        Gpu *gpu = ctx;

        virtio_gpu_process(gpu->core, q, &gpu->chain);
        /* Responses still waiting on fences: look again shortly. */
        fence_timer_arm(gpu, virtio_gpu_poll(gpu->core));
}

/* A reset (GET_VRING_BASE) stops the control queue: the chains held
 * for fences are the old ring's, never to be pushed. */
static void gpu_stopped(void *ctx, unsigned index) {
        Gpu *gpu = ctx;

        if (index != VIRTIO_GPU_QUEUE_CONTROL)
                return;
        virtio_gpu_drop_held(gpu->core);
        fence_timer_arm(gpu, 0);
}

/* RESET_DEVICE: the guest's driver starts again (a rebind, kexec) and
 * finds none of its old resources or contexts. */
static void gpu_reset(void *ctx) {
        Gpu *gpu = ctx;

        virtio_gpu_reset(gpu->core);
        fence_timer_arm(gpu, 0);
}

static void gpu_config_read(void *ctx, uint32_t offset, void *data, uint32_t size) {
        virtio_gpu_config_read(((Gpu *) ctx)->core, offset, data, size);
}

static int gpu_config_write(void *ctx, uint32_t offset, const void *data, uint32_t size) {
        virtio_gpu_config_write(((Gpu *) ctx)->core, offset, data, size);
        return 0;
}

static int on_display(void *ctx, int fd) {
        Gpu *gpu = ctx;

        /* The compositor went away: the display is headless from now on
         * (it logged why); the guest goes on. */
        if (gpu_display_dispatch(gpu->display) < 0)
                vhost_user_backend_unwatch_fd(gpu->backend, fd);
        return 0;
}

/* The user closed a scanout's window: the VM should stop. The VMM is
 * asked over the back-end channel (it ends the VM as a stop request on its
 * control socket would, and the daemon sees it stop); a front-end that
 * gave no channel sees its back-end go away instead. */
static void on_close_requested(void *ctx, unsigned scanout) {
        Gpu *gpu = ctx;

        log_info("scanout %u's window was closed: asking for the VM to stop", scanout);
        if (!gpu->backend || vhost_user_backend_request_stop(gpu->backend) < 0)
                exit(EXIT_SUCCESS);
}

/* The user resized a scanout's window (or the compositor maximized it):
 * the guest is offered that size, and told through a configuration
 * change (VIRTIO_GPU_EVENT_DISPLAY; the front-end interrupts the
 * driver, which reads the display info again). */
static void on_resize_requested(void *ctx, unsigned scanout, uint32_t width, uint32_t height) {
        Gpu *gpu = ctx;
        int r;

        if (!gpu->core)
                return;
        r = virtio_gpu_set_preferred_size(gpu->core, scanout, width, height);
        if (r <= 0)
                return;
        log_info("scanout %u's window is now %ux%u: offering the guest that mode", scanout, (unsigned) width,
                 (unsigned) height);
        if (gpu->backend) {
                r = vhost_user_backend_config_changed(gpu->backend);
                if (r < 0)
                        log_warning_errno(r, "Cannot tell the front-end the display changed, the guest learns it at its next look: %m");
        }
}

int main(int argc, char **argv) {
        enum { ARG_FD = 0x100, ARG_SOCKET, ARG_WIDTH, ARG_HEIGHT, ARG_DISPLAYS, ARG_MAX_MEMORY, ARG_WL_SOCK, ARG_WL_FD,
               ARG_SECCOMP, ARG_DISABLE_SANDBOX, ARG_BACKEND, ARG_BLOB, ARG_HOST_VISIBLE_SIZE, ARG_CONTEXT_TYPES };
        static const struct option options[] = {
                { "fd", required_argument, NULL, ARG_FD },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "width", required_argument, NULL, ARG_WIDTH },
                { "height", required_argument, NULL, ARG_HEIGHT },
                { "displays", required_argument, NULL, ARG_DISPLAYS },
                { "max-memory", required_argument, NULL, ARG_MAX_MEMORY },
                { "wayland-sock", required_argument, NULL, ARG_WL_SOCK },
                { "wayland-fd", required_argument, NULL, ARG_WL_FD },
                { "seccomp", required_argument, NULL, ARG_SECCOMP },
                { "disable-sandbox", no_argument, NULL, ARG_DISABLE_SANDBOX },
                { "backend", required_argument, NULL, ARG_BACKEND },
                { "blob", no_argument, NULL, ARG_BLOB },
                { "host-visible-size", required_argument, NULL, ARG_HOST_VISIBLE_SIZE },
                { "context-types", required_argument, NULL, ARG_CONTEXT_TYPES },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        VirtioGpuOptions o = { .n_scanouts = 1, .width = 1024, .height = 768,
                               .max_memory = VIRTIO_GPU_DEFAULT_MAX_MEMORY };
        const GpuDisplayCallbacks callbacks = { .close_requested = on_close_requested,
                                                .resize_requested = on_resize_requested };
        VhostUserBackendOps ops = {
                .features = (UINT64_C(1) << 32) | VIRTIO_GPU_DEVICE_FEATURES, /* VERSION_1, EDID */
                .n_queues = VIRTIO_GPU_N_QUEUES,
                .queue_notify = gpu_notify,
                .stopped = gpu_stopped,
                .reset = gpu_reset,
                .config_size = VIRTIO_GPU_CONFIG_SIZE,
                .config_read = gpu_config_read,
                .config_write = gpu_config_write,
        };
        const char *socket_path = NULL, *wl_path = NULL, *step = NULL;
        SandboxMode mode = SANDBOX_MODE_ENFORCE;
        bool no_sandbox = false;
        int fd = -1, wl_fd = -1, c, r;
        Gpu *gpu;
        uint64_t v;

        log_set_program_name("majordome-gpu");
        /* cross-domain writes into pipes whose readers may be gone: EPIPE,
         * not a signal. */
        signal(SIGPIPE, SIG_IGN);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_FD:
                        if (parse_fd_number(optarg, &fd) < 0) {
                                log_error("--fd: not a descriptor number: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case ARG_SOCKET:
                        socket_path = optarg;
                        break;
                case ARG_WIDTH:
                case ARG_HEIGHT:
                        if (parse_uint(optarg, 1, VIRTIO_GPU_MAX_DIMENSION, &v) < 0) {
                                log_error("--%s: expected 1..%u: %s", c == ARG_WIDTH ? "width" : "height",
                                          VIRTIO_GPU_MAX_DIMENSION, optarg);
                                return EXIT_FAILURE;
                        }
                        *(c == ARG_WIDTH ? &o.width : &o.height) = (uint32_t) v;
                        break;
                case ARG_DISPLAYS:
                        if (parse_uint(optarg, 0, GPU_DISPLAY_MAX_SCANOUTS, &v) < 0) {
                                log_error("--displays: expected 0..%u: %s", GPU_DISPLAY_MAX_SCANOUTS, optarg);
                                return EXIT_FAILURE;
                        }
                        o.n_scanouts = (unsigned) v;
                        break;
                case ARG_MAX_MEMORY:
                        if (parse_size(optarg, &v) < 0 || v == 0) {
                                log_error("--max-memory: expected a size such as 256M: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        o.max_memory = v;
                        break;
                case ARG_WL_SOCK:
                        wl_path = optarg;
                        break;
                case ARG_WL_FD:
                        if (parse_fd_number(optarg, &wl_fd) < 0) {
                                log_error("--wayland-fd: not a descriptor number: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case ARG_SECCOMP:
                        mode = sandbox_mode_from_string(optarg);
                        if (mode != SANDBOX_MODE_ENFORCE && mode != SANDBOX_MODE_LOG) {
                                log_error("--seccomp: expected enforce or log: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case ARG_DISABLE_SANDBOX:
                        no_sandbox = true;
                        break;
                case ARG_BACKEND:
                        if (virtio_gpu_backend_from_string(optarg) < 0) {
                                log_error("--backend: expected 2d or virgl: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        o.backend = virtio_gpu_backend_from_string(optarg);
                        break;
                case ARG_BLOB:
                        o.blob = true;
                        break;
                case ARG_HOST_VISIBLE_SIZE:
                        if (parse_size(optarg, &v) < 0 || v == 0 || v % VIRTIO_GPU_BLOB_PAGE != 0) {
                                log_error("--host-visible-size: expected a size in whole pages such as 256M: %s",
                                          optarg);
                                return EXIT_FAILURE;
                        }
                        o.host_visible_size = v;
                        break;
                case ARG_CONTEXT_TYPES: {
                        VmmConfigError e = {};

                        /* The names as the VMM's --gpu reads them; the
                         * bits are the same (1 << capset id). */
                        if (vmm_gpu_context_types_from_string(optarg, &o.context_types, &e) < 0) {
                                log_error("--context-types: %s", e.message);
                                return EXIT_FAILURE;
                        }
                        break;
                }
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument: %s", argv[optind]);
                return EXIT_FAILURE;
        }
        if ((fd >= 0) == (socket_path != NULL)) {
                log_error("give one of --fd N or --socket PATH (--help)");
                return EXIT_FAILURE;
        }
        if (wl_fd >= 0 && wl_path) {
                log_error("give at most one of --wayland-sock and --wayland-fd");
                return EXIT_FAILURE;
        }

        if ((o.context_types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN) && !o.blob) {
                log_error("--context-types cross-domain needs --blob (its buffers are blobs)");
                return EXIT_FAILURE;
        }
        if ((o.context_types & (VIRTIO_GPU_CONTEXT_VIRGL | VIRTIO_GPU_CONTEXT_VIRGL2)) &&
            o.backend != VIRTIO_GPU_BACKEND_VIRGL) {
                log_error("--context-types virgl and virgl2 need --backend virgl");
                return EXIT_FAILURE;
        }
        /* display-headless.c would run headless all the same; saying so
         * here beats a guest whose Wayland clients find nothing. */
        if (!MAJORDOME_HAVE_WAYLAND && (wl_fd >= 0 || wl_path || (o.context_types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN))) {
                log_error("%s: built without wayland support (headless only)",
                          wl_fd >= 0 || wl_path ? "--wayland-sock/--wayland-fd" : "--context-types cross-domain");
                return EXIT_FAILURE;
        }

        gpu = calloc(1, sizeof(*gpu));
        if (!gpu)
                return log_error_errno(-ENOMEM, "out of memory"), EXIT_FAILURE;
        gpu->fence_timer = -EBADF;
        gpu->connector.sock = -EBADF;
        /* The compositor as a handle on its socket (O_PATH): the display
         * and the connector connect through /proc/self/fd/N, so the path
         * is resolved once, here. A connector's socket (majordome-vmm's)
         * serves both; a connected socket serves the display alone. */
        if (wl_path) {
                wl_fd = open(wl_path, O_PATH | O_CLOEXEC);
                /* No compositor there: headless, said once (the display's
                 * own message when it has none). */
                if (wl_fd < 0) {
                        log_warning_errno(-errno, "--wayland-sock %s: %m", wl_path);
                        wl_path = NULL;
                }
        }
        if (wl_fd >= 0 && wayland_connector_is_socket(wl_fd)) {
                gpu->connector.sock = TAKE_FD(wl_fd);
                if (o.context_types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN) {
                        o.connect = wayland_connect;
                        o.connect_ctx = gpu;
                }
                /* The display's connection, from it too. */
                if (o.n_scanouts > 0) {
                        wl_fd = wayland_connector_connect(&gpu->connector);
                        if (wl_fd < 0)
                                log_warning_errno(wl_fd, "the compositor: %m");
                }
        } else if (wl_fd >= 0 && (fcntl(wl_fd, F_GETFL) & O_PATH)) {
                static char proc_path[64];

                snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", wl_fd);
                wl_path = proc_path;
                if (o.context_types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN) {
                        r = wayland_connector_start(wl_fd, !no_sandbox, &gpu->connector);
                        if (r < 0) {
                                log_error_errno(r, "compositor connector: %m");
                                return EXIT_FAILURE;
                        }
                        o.connect = wayland_connect;
                        o.connect_ctx = gpu;
                }
        } else if (o.context_types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN) {
                log_warning("cross-domain without the compositor's socket (--wayland-sock, or --wayland-fd with an "
                            "O_PATH descriptor or a connector's socket): guest Wayland clients will find no "
                            "compositor");
        }
        o.shm = (VirtioGpuShm) { .map = shm_map, .unmap = shm_unmap, .ctx = gpu };
        if (o.backend == VIRTIO_GPU_BACKEND_VIRGL) {
                /* The jail wants one thread (unshare of a user namespace
                 * refuses a threaded process, and the filter is installed
                 * on this thread alone): llvmpipe rasterises on the
                 * calling thread and Mesa keeps no shader-cache thread
                 * (nor writes a cache to a home it could not reach). */
                if (setenv("LP_NUM_THREADS", "0", 1) < 0 || setenv("MESA_SHADER_CACHE_DISABLE", "true", 1) < 0) {
                        log_error_errno(-errno, "setenv: %m");
                        return EXIT_FAILURE;
                }
                gpu->fence_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                if (gpu->fence_timer < 0) {
                        log_error_errno(-errno, "timerfd: %m");
                        return EXIT_FAILURE;
                }
        }
        if (o.n_scanouts > 0) {
                r = gpu_display_new(wl_path ? -1 : wl_fd, wl_path, o.n_scanouts, &callbacks, gpu, &gpu->display);
                if (r < 0) {
                        log_error_errno(r, "display: %m");
                        return EXIT_FAILURE;
                }
        }
        /* The handle stays with the connector; the display has its own
         * connection. */
        if (wl_path || o.n_scanouts == 0)
                wl_fd = safe_close(wl_fd);
        /* virgl: virglrenderer and Mesa start here, before the jail (they
         * open and load their files). */
        r = virtio_gpu_new(&o, gpu->display, &gpu->core);
        if (r < 0) {
                log_error_errno(r, "device (%s): %m", virtio_gpu_backend_to_string(o.backend));
                return EXIT_FAILURE;
        }
        ops.features = (UINT64_C(1) << 32) | virtio_gpu_features(gpu->core); /* VERSION_1 */
        if (socket_path) {
                r = accept_first(socket_path, &fd);
                if (r < 0) {
                        log_error_errno(r, "%s: %m", socket_path);
                        return EXIT_FAILURE;
                }
        }
        r = vhost_user_backend_new(fd, &ops, gpu, &gpu->backend);
        if (r < 0) {
                log_error_errno(r, "vhost-user: %m");
                return EXIT_FAILURE;
        }
        /* Everything is open: lock ourselves in before a guest byte is read. */
        {
                /* virgl's llvmpipe needs more (JIT: PROT_EXEC), cross-domain
                 * a little: never the plain 2D device's. */
                const char *policies[3] = { "gpu.policy" };
                size_t n = 1;

                if (o.backend == VIRTIO_GPU_BACKEND_VIRGL)
                        policies[n++] = "gpu-virgl.policy";
                if (o.context_types & VIRTIO_GPU_CONTEXT_CROSS_DOMAIN)
                        policies[n++] = "gpu-cross-domain.policy";
                r = device_sandbox_enter(policies, n, no_sandbox ? SANDBOX_MODE_OFF : mode, &step);
        }
        if (r < 0) {
                log_error_errno(r, "sandbox: %s: %m", step);
                return EXIT_FAILURE;
        }
        if (gpu->fence_timer >= 0) {
                r = vhost_user_backend_watch_fd(gpu->backend, gpu->fence_timer, on_fence_timer, gpu);
                if (r < 0) {
                        log_error_errno(r, "fence timer: %m");
                        return EXIT_FAILURE;
                }
        }
        if (virtio_gpu_fd(gpu->core) >= 0) {
                r = vhost_user_backend_watch_fd(gpu->backend, virtio_gpu_fd(gpu->core), on_cross_domain, gpu);
                if (r < 0) {
                        log_error_errno(r, "cross-domain: %m");
                        return EXIT_FAILURE;
                }
        }
        if (gpu->display && gpu_display_fd(gpu->display) >= 0) {
                r = vhost_user_backend_watch_fd(gpu->backend, gpu_display_fd(gpu->display), on_display, gpu);
                if (r < 0) {
                        log_error_errno(r, "display: %m");
                        return EXIT_FAILURE;
                }
        }
        r = vhost_user_backend_run(gpu->backend);
        vhost_user_backend_free(gpu->backend);
        virtio_gpu_free(gpu->core);
        gpu_display_free(gpu->display);
        wayland_connector_stop(&gpu->connector);
        safe_close(gpu->fence_timer);
        free(gpu);
        if (r < 0)
                log_error_errno(r, "vhost-user: %m");
#if SANDBOX_SANITIZER_POLICY
        /* LeakSanitizer cannot run in the jail (it ptraces the process's
         * threads): a jailed sanitizer build ends here, as the VMM does
         * (docs/sandbox.md). Everything was freed above all the same. */
        if (!no_sandbox) {
                fflush(NULL);
                _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
        }
#endif
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
