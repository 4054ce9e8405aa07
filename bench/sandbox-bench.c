/* SPDX-License-Identifier: BSD-3-Clause */
/* The cost of the virtio-block worker's seccomp filters on its I/O path:
 * preadv/pwritev of REQ bytes on an image, in a thread without a filter and
 * in a thread started the way a device worker is (sandbox_thread_create in
 * SANDBOX_ROLE_VIRTIO_BLOCK, asked from a thread in the vcpu role, so the
 * spawner makes it and it carries whatever filters a real worker carries),
 * interleaved rounds in one run. Prints MB/s for each and the ratio. Usage:
 *   sandbox-bench DIR [IMAGE_MIB] [ROUNDS] [REQ_KIB] */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

typedef struct Job {
        int fd;
        size_t image, req;
        bool filtered;
        double seconds;
        int error;
} Job;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *io_thread(void *arg) {
        Job *j = arg;
        char *buf = aligned_alloc(4096, j->req);
        double t0;

        memset(buf, 0x5a, j->req);
        t0 = now();
        /* One write pass and one read pass, as a guest's fio would. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t off = 0; off + j->req <= j->image; off += j->req) {
                        struct iovec iov = { buf, j->req };
                        ssize_t k = pass == 0 ? pwritev(j->fd, &iov, 1, (off_t) off) : preadv(j->fd, &iov, 1, (off_t) off);
                        if (k != (ssize_t) j->req) {
                                j->error = -EIO;
                                return NULL;
                        }
                }
        j->seconds = now() - t0;
        free(buf);
        return NULL;
}

/* Plays the vCPU thread that activates the device (DRIVER_OK). */
static void *vcpu_thread(void *arg) {
        Job *j = arg;
        pthread_t t;
        int r;

        r = sandbox_enter_role(SANDBOX_ROLE_VCPU);
        if (r >= 0)
                r = sandbox_thread_create(&t, SANDBOX_ROLE_VIRTIO_BLOCK, io_thread, j);
        if (r < 0) {
                j->error = r;
                return NULL;
        }
        pthread_join(t, NULL);
        return NULL;
}

static int run(Job *j) {
        pthread_t t;

        if (pthread_create(&t, NULL, j->filtered ? vcpu_thread : io_thread, j) != 0)
                return -EAGAIN;
        pthread_join(t, NULL);
        return j->error;
}

int main(int argc, char **argv) {
        const char *dir = argc > 1 ? argv[1] : "/var/tmp";
        size_t image = (size_t) (argc > 2 ? atoi(argv[2]) : 64) << 20;
        int rounds = argc > 3 ? atoi(argv[3]) : 5;
        size_t req = (size_t) (argc > 4 ? atoi(argv[4]) : 4) << 10;
        char path[4096];
        double best[2] = { 1e9, 1e9 };
        PolicyError e;
        int fd, r;

        snprintf(path, sizeof(path), "%s/sandbox-bench.XXXXXX", dir);
        fd = mkstemp(path);
        if (fd < 0 || ftruncate(fd, (off_t) image) < 0) {
                perror(path);
                return 1;
        }
        unlink(path);
        r = sandbox_setup(SANDBOX_MODE_ENFORCE, NULL, 0, &e);
        if (r < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                fprintf(stderr, "sandbox setup: %s %s\n", strerror(-r), e.message);
                return 1;
        }
        r = sandbox_spawner_start();
        if (r < 0) {
                fprintf(stderr, "spawner: %s\n", strerror(-r));
                return 1;
        }
        for (int i = 0; i < rounds; i++)
                for (int f = 0; f < 2; f++) {
                        Job j = { .fd = fd, .image = image, .req = req, .filtered = f };
                        r = run(&j);
                        if (r < 0) {
                                fprintf(stderr, "round %d: %s\n", i, strerror(-r));
                                return 1;
                        }
                        if (j.seconds < best[f])
                                best[f] = j.seconds;
                }
        double mbs[2] = { 2.0 * (double) image / best[0] / 1e6, 2.0 * (double) image / best[1] / 1e6 };
        printf("block I/O %zu KiB requests, %zu MiB image, best of %d: no filter %.0f MB/s, "
               "virtio-block worker %.0f MB/s, filtered/unfiltered %.3f\n",
               req >> 10, image >> 20, rounds, mbs[0], mbs[1], mbs[1] / mbs[0]);
        return 0;
}
