/* SPDX-License-Identifier: BSD-3-Clause */
/* majordome-video: the virtio-video decoder (device id 31) or encoder (30)
 * of video/virtio-video.c on libavcodec, as a vhost-user back-end process.
 * docs/video.md. */
#include <errno.h>
#include <getopt.h>
#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/vhost-user-backend.h"
#include "seccomp/device-sandbox.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "video/virtio-video.h"

/* A command's chain is kept until its answer (RESOURCE_QUEUE, DRAIN may
 * be answered long after): at most one per descriptor of the queue. */
#define MAX_HELD VIRTQ_MAX_SIZE

typedef struct Video {
        bool encoder;           /* the encoder, else the decoder */
        unsigned threads;       /* libavcodec's per stream */
        VirtioVideo *core;
        VhostUserBackend *backend;
        VirtQueue *cmdq, *evq;
        VirtioChain chain;      /* scratch for popping */
        VirtioChain *held[MAX_HELD];
        uint8_t *req;           /* VIRTIO_VIDEO_MAX_REQUEST bytes */
} Video;

static void help(void) {
        printf("Usage: majordome-video --fd N | --socket PATH [OPTIONS]\n"
               "\n"
               "A virtio-video decoder (device id 31; H.264, HEVC, VP8, VP9 to NV12) or\n"
               "encoder (device id 30; NV12 to those) on libavcodec, served over\n"
               "vhost-user to majordome-vmm. Runs until the front-end hangs up.\n"
               "\n"
               "  --fd N                 serve the connected vhost-user socket N\n"
               "  --socket PATH          listen at PATH and serve the first connection\n"
               "  --decoder NAME         be the decoder, on NAME: ffmpeg (the default)\n"
               "  --encoder NAME         be the encoder, on NAME: ffmpeg\n"
               "  --threads N            libavcodec's threads per stream (1..16; 1)\n"
               "  --seccomp MODE         enforce (default), or log: allow, and have the\n"
               "                         kernel log what video.policy forbids\n"
               "  --disable-sandbox      no jail and no seccomp filter: debugging only\n"
               "  -h, --help             this text\n");
}

/* Writes resp into the chain's writable buffers by guest address, through
 * the queue's current guest memory (checked again there): a chain kept
 * across a new memory table must not be written through the host
 * addresses of the old one. */
static int chain_write(const GuestMemory *mem, const VirtioChain *c, const uint8_t *resp, size_t len) {
        for (unsigned i = 0; i < c->n_writable && len > 0; i++) {
                const VirtioSeg *seg = &c->segs[c->n_readable + i];
                size_t n = MIN(len, (size_t) seg->len);
                int r;

                r = guest_write(mem, seg->gpa, resp, n);
                if (r < 0)
                        return r;
                resp += n;
                len -= n;
        }
        return len == 0 ? 0 : -EMSGSIZE;
}

/* The core answers a command (now or later; always while the command
 * queue is being processed): into the chain kept for it. */
static void video_respond(void *ctx, uint64_t tag, const void *resp, size_t len) {
        Video *vd = ctx;
        VirtioChain *c;

        if (tag >= MAX_HELD || !vd->held[tag] || !vd->cmdq)
                return;
        c = vd->held[tag];
        vd->held[tag] = NULL;
        if (len > 0 && chain_write(vd->cmdq->mem, c, resp, len) < 0)
                len = 0;
        virtq_push(vd->cmdq, c, (uint32_t) len);
        free(c);
}

/* The chains kept are forgotten (never pushed: their ring is going away)
 * and the device starts over, as a reset asks: streams, resources and
 * events gone. */
static int video_reset(Video *vd) {
        VirtioVideoOptions o = { .encoder = vd->encoder, .threads = vd->threads };

        for (unsigned i = 0; i < MAX_HELD; i++) {
                free(vd->held[i]);
                vd->held[i] = NULL;
        }
        vd->cmdq = vd->evq = NULL;
        vd->core = virtio_video_free(vd->core);
        return virtio_video_new(&o, video_respond, vd, &vd->core);
}

/* A ring stopped (GET_VRING_BASE: the front-end stops or resets the
 * device) or the owner reset: the device resets before the library
 * answers. */
static int video_intercept(void *ctx, VhostUserBackend *b, const VhostUserMsg *m) {
        Video *vd = ctx;

        if (m->request == VHOST_USER_GET_VRING_BASE || m->request == VHOST_USER_RESET_OWNER)
                return video_reset(vd) < 0 ? -ENOMEM : 0;
        return 0;
}

/* Events into the buffers the driver posted on the event queue; those
 * with no buffer yet wait in the core for the next kick. */
static void flush_events(Video *vd) {
        bool pushed = false;

        if (!vd->evq)
                return;
        while (virtio_video_has_event(vd->core) && virtq_pop(vd->evq, &vd->chain) > 0) {
                uint8_t e[VIRTIO_VIDEO_EVENT_SIZE];
                uint32_t n = sizeof(e);

                virtio_video_next_event(vd->core, e);
                if (virtio_writer_write(&vd->chain.writer, e, sizeof(e)) < 0)
                        n = 0;
                virtq_push(vd->evq, &vd->chain, n);
                pushed = true;
        }
        if (pushed)
                virtq_interrupt(vd->evq);
}

static void video_notify(void *ctx, VirtQueue *q) {
        Video *vd = ctx;

        if (q->index == VIRTIO_VIDEO_QUEUE_EVENT) {
                vd->evq = q;
                flush_events(vd);
                return;
        }
        if (q->index != VIRTIO_VIDEO_QUEUE_COMMAND)
                return;
        vd->cmdq = q;
        while (virtq_pop(q, &vd->chain) > 0) {
                size_t len = MIN(virtio_reader_remaining(&vd->chain.reader), (size_t) VIRTIO_VIDEO_MAX_REQUEST);
                unsigned slot;
                VirtioChain *c;

                /* The walker checked the chain: reading len bytes cannot fail. */
                if (virtio_reader_read(&vd->chain.reader, vd->req, len) < 0)
                        len = 0;
                for (slot = 0; slot < MAX_HELD && vd->held[slot]; slot++)
                        ;
                c = slot < MAX_HELD ? malloc(sizeof(*c)) : NULL;
                if (!c) {
                        virtq_push(q, &vd->chain, 0);
                        continue;
                }
                *c = vd->chain;
                /* The cursors point into the chain's own segment array. */
                c->reader.c.segs = c->segs;
                c->writer.c.segs = c->segs + c->n_readable;
                vd->held[slot] = c;
                virtio_video_command(vd->core, q->mem, slot, vd->req, len, virtio_writer_remaining(&c->writer));
        }
        flush_events(vd);
}

static void video_config_read(void *ctx, uint32_t offset, void *data, uint32_t size) {
        virtio_video_config_read(((Video *) ctx)->core, offset, data, size);
}

/* virtio_video_config is read-only; a front-end writing it back is ignored. */
static int video_config_write(void *ctx, uint32_t offset, const void *data, uint32_t size) {
        return 0;
}

int main(int argc, char **argv) {
        enum { ARG_FD = 0x100, ARG_SOCKET, ARG_DECODER, ARG_ENCODER, ARG_THREADS, ARG_SECCOMP, ARG_DISABLE_SANDBOX };
        static const struct option options[] = {
                { "fd", required_argument, NULL, ARG_FD },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "decoder", required_argument, NULL, ARG_DECODER },
                { "encoder", required_argument, NULL, ARG_ENCODER },
                { "threads", required_argument, NULL, ARG_THREADS },
                { "seccomp", required_argument, NULL, ARG_SECCOMP },
                { "disable-sandbox", no_argument, NULL, ARG_DISABLE_SANDBOX },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char *const policies[] = { "video.policy" };
        VhostUserBackendOps ops = {
                .features = (UINT64_C(1) << 32) | VIRTIO_VIDEO_DEVICE_FEATURES, /* VERSION_1, GUEST_PAGES, NON_CONTIG */
                .n_queues = VIRTIO_VIDEO_N_QUEUES,
                .queue_notify = video_notify,
                .intercept = video_intercept,
                .config_size = VIRTIO_VIDEO_CONFIG_SIZE,
                .config_read = video_config_read,
                .config_write = video_config_write,
        };
        const char *socket_path = NULL, *step = NULL;
        SandboxMode mode = SANDBOX_MODE_ENFORCE;
        bool no_sandbox = false, decoder = false, encoder = false;
        unsigned threads = 1;
        int fd = -1, c, r;
        Video *vd;
        uint64_t v;

        log_set_program_name("majordome-video");
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
                case ARG_DECODER:
                case ARG_ENCODER:
                        if (strcmp(optarg, "ffmpeg") != 0) {
                                log_error("--%s: expected ffmpeg: %s", c == ARG_DECODER ? "decoder" : "encoder", optarg);
                                return EXIT_FAILURE;
                        }
                        *(c == ARG_DECODER ? &decoder : &encoder) = true;
                        break;
                case ARG_THREADS:
                        if (parse_uint(optarg, 1, 16, &v) < 0) {
                                log_error("--threads: expected 1..16: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        threads = (unsigned) v;
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
        if (decoder && encoder) {
                log_error("give at most one of --decoder and --encoder");
                return EXIT_FAILURE;
        }

        /* A guest's bitstream must not fill the host's log. */
        av_log_set_level(AV_LOG_FATAL);
        vd = calloc(1, sizeof(*vd));
        if (!vd || !(vd->req = malloc(VIRTIO_VIDEO_MAX_REQUEST)))
                return log_error_errno(-ENOMEM, "out of memory"), EXIT_FAILURE;
        vd->encoder = encoder;
        vd->threads = threads;
        r = video_reset(vd);
        if (r < 0) {
                log_error_errno(r, "device: %m");
                return EXIT_FAILURE;
        }
        if (socket_path) {
                r = accept_first(socket_path, &fd);
                if (r < 0) {
                        log_error_errno(r, "%s: %m", socket_path);
                        return EXIT_FAILURE;
                }
        }
        r = vhost_user_backend_new(fd, &ops, vd, &vd->backend);
        if (r < 0) {
                log_error_errno(r, "vhost-user: %m");
                return EXIT_FAILURE;
        }
        /* Everything is open: lock ourselves in before a guest byte is read. */
        r = device_sandbox_enter(policies, ARRAY_SIZE(policies), no_sandbox ? SANDBOX_MODE_OFF : mode, &step);
        if (r < 0) {
                log_error_errno(r, "sandbox: %s: %m", step);
                return EXIT_FAILURE;
        }
        r = vhost_user_backend_run(vd->backend);
        vhost_user_backend_free(vd->backend);
        /* The rings are gone: the core's last answers are dropped with
         * the chains still kept. */
        for (unsigned i = 0; i < MAX_HELD; i++)
                free(vd->held[i]);
        vd->cmdq = NULL;
        memset(vd->held, 0, sizeof(vd->held));
        virtio_video_free(vd->core);
        free(vd->req);
        free(vd);
        if (r < 0)
                log_error_errno(r, "vhost-user: %m");
#if SANDBOX_SANITIZER_POLICY
        /* LeakSanitizer cannot run in the jail (it ptraces the threads and
         * reads /proc): a jailed sanitizer build ends without it, as the
         * VMM does (docs/sandbox.md). */
        if (!no_sandbox)
                _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
#endif
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
