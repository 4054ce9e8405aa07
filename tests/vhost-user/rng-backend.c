/* SPDX-License-Identifier: BSD-3-Clause */
/* majordome-test-rng-backend: a vhost-user virtio-rng back-end (virtio 1.2
 * §5.4) on backend/vhost-user-backend.c, for the front-end's tests; --misbehave breaks the
 * protocol in one chosen way.
 *
 *     majordome-test-rng-backend --fd N [--misbehave MODE] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "backend/vhost-user-backend.h"
#include "common/unaligned.h"
#include "common/util.h"

typedef enum Misbehave {
        MISBEHAVE_NONE,
        MISBEHAVE_OVERSIZED,            /* a reply header with size 4096 */
        MISBEHAVE_TRUNCATED,            /* the header says 8, 4 bytes come, then the end */
        MISBEHAVE_WRONG_REPLY,          /* GET_FEATURES answered as request 99 */
        MISBEHAVE_TOO_MANY_FDS,         /* a reply carrying 3 eventfds */
        MISBEHAVE_DIE_IN_NEGOTIATION,   /* exit on reading GET_FEATURES */
        MISBEHAVE_DIE_AFTER_START,      /* exit on the first kick */
        MISBEHAVE_HANG,                 /* never answer GET_FEATURES */
        MISBEHAVE_COUNT_RESETS,         /* offers RESET_DEVICE; fills buffers with 1 + resets seen */
        _MISBEHAVE_MAX,
} Misbehave;

static const char *const misbehave_names[_MISBEHAVE_MAX] = {
        [MISBEHAVE_NONE] = "none",
        [MISBEHAVE_OVERSIZED] = "oversized",
        [MISBEHAVE_TRUNCATED] = "truncated",
        [MISBEHAVE_WRONG_REPLY] = "wrong-reply",
        [MISBEHAVE_TOO_MANY_FDS] = "too-many-fds",
        [MISBEHAVE_DIE_IN_NEGOTIATION] = "die-in-negotiation",
        [MISBEHAVE_DIE_AFTER_START] = "die-after-start",
        [MISBEHAVE_HANG] = "hang",
        [MISBEHAVE_COUNT_RESETS] = "count-resets",
};

typedef struct Rng {
        Misbehave mode;
        unsigned resets, stopped;  /* RESET_DEVICEs; rings stopped before them */
        VirtioChain chain;
} Rng;

static void raw_header(int fd, uint32_t request, uint32_t size) {
        uint8_t h[VHOST_USER_HEADER_SIZE];

        put_le32(h, request);
        put_le32(h + 4, VHOST_USER_FLAG_REPLY | VHOST_USER_VERSION);
        put_le32(h + 8, size);
        (void) !write(fd, h, sizeof(h));
}

/* Misbehaviours all happen at the first request, GET_FEATURES. */
static int intercept(void *ctx, VhostUserBackend *b, const VhostUserMsg *m) {
        Misbehave mode = ((const Rng *) ctx)->mode;
        int fd = vhost_user_backend_socket(b);
        uint8_t features[8];

        if (m->request != VHOST_USER_GET_FEATURES)
                return 0;
        put_le64(features, (UINT64_C(1) << 32) | (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES));
        switch (mode) {
        case MISBEHAVE_OVERSIZED:
                raw_header(fd, m->request, 4096);
                return 1;
        case MISBEHAVE_TRUNCATED:
                raw_header(fd, m->request, 8);
                (void) !write(fd, features, 4);
                exit(EXIT_SUCCESS);
        case MISBEHAVE_WRONG_REPLY:
                (void) vhost_user_send(fd, 99, VHOST_USER_FLAG_REPLY, features, sizeof(features), NULL, 0);
                return 1;
        case MISBEHAVE_TOO_MANY_FDS: {
                int fds[3];

                for (unsigned i = 0; i < ARRAY_SIZE(fds); i++)
                        fds[i] = eventfd(0, EFD_CLOEXEC);
                (void) vhost_user_send(fd, m->request, VHOST_USER_FLAG_REPLY, features, sizeof(features), fds,
                                       ARRAY_SIZE(fds));
                for (unsigned i = 0; i < ARRAY_SIZE(fds); i++)
                        safe_close(fds[i]);
                return 1;
        }
        case MISBEHAVE_DIE_IN_NEGOTIATION:
                exit(EXIT_SUCCESS);
        case MISBEHAVE_HANG:
                for (;;)
                        pause();
        default:
                return 0;
        }
}

/* The driver's first notification: gone mid-use. */
static void rng_kicked(void *ctx, unsigned index) {
        const Rng *rng = ctx;

        if (rng->mode == MISBEHAVE_DIE_AFTER_START)
                _exit(EXIT_SUCCESS);
}

static void rng_stopped(void *ctx, unsigned index) {
        ((Rng *) ctx)->stopped++;
}

/* count-resets: each reset must come after its ring stopped. */
static void rng_reset(void *ctx) {
        Rng *rng = ctx;

        if (rng->stopped != rng->resets + 1)
                _exit(EXIT_FAILURE);
        rng->resets++;
}

static void rng_notify(void *ctx, VirtQueue *q) {
        Rng *rng = ctx;
        VirtioChain *c = &rng->chain;
        uint8_t buf[4096];
        int r;

        while ((r = virtq_pop(q, c)) > 0) {
                size_t left;

                if (rng->mode == MISBEHAVE_COUNT_RESETS) {
                        memset(buf, (int) (1 + rng->resets), sizeof(buf));
                        while ((left = virtio_writer_remaining(&c->writer)) > 0)
                                (void) virtio_writer_write(&c->writer, buf, left < sizeof(buf) ? left : sizeof(buf));
                        virtq_push(q, c, virtio_writer_written(&c->writer));
                        continue;
                }

                /* §5.4.6.1: fill every driver-writable byte. */
                while ((left = virtio_writer_remaining(&c->writer)) > 0) {
                        size_t n = left < sizeof(buf) ? left : sizeof(buf);
                        ssize_t got = getrandom(buf, n, 0);

                        if (got <= 0)
                                break;
                        (void) virtio_writer_write(&c->writer, buf, (size_t) got);
                }
                virtq_push(q, c, virtio_writer_written(&c->writer));
        }
}

int main(int argc, char **argv) {
        static Rng rng;
        VhostUserBackendOps ops = {
                .n_queues = 1,
                .queue_notify = rng_notify,
                .kicked = rng_kicked,
                .intercept = intercept,
        };
        VhostUserBackend *b;
        int fd = -1, r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
                        fd = atoi(argv[++i]);
                } else if (strcmp(argv[i], "--misbehave") == 0 && i + 1 < argc) {
                        const char *name = argv[++i];
                        int found = -1;

                        for (int k = 0; k < _MISBEHAVE_MAX; k++)
                                if (strcmp(name, misbehave_names[k]) == 0)
                                        found = k;
                        if (found < 0) {
                                fprintf(stderr, "unknown --misbehave mode %s\n", name);
                                return EXIT_FAILURE;
                        }
                        rng.mode = (Misbehave) found;
                } else {
                        fprintf(stderr, "usage: %s --fd N [--misbehave MODE]\n", argv[0]);
                        return EXIT_FAILURE;
                }
        }
        if (fd < 0) {
                fprintf(stderr, "%s: --fd N is needed\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (rng.mode == MISBEHAVE_COUNT_RESETS) {
                ops.stopped = rng_stopped;
                ops.reset = rng_reset;
        }
        r = vhost_user_backend_new(fd, &ops, &rng, &b);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[0], strerror(-r));
                return EXIT_FAILURE;
        }
        r = vhost_user_backend_run(b);
        vhost_user_backend_free(b);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[0], strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
