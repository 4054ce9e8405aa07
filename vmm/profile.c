/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/profile.h"
#include "common/util.h"

#define PAGE_SIZE_4K 4096u

static void profile_write(GuestProfile *p, const char *line, size_t len) {
        static atomic_bool warned;
        ssize_t n = write(p->fd, line, len);

        /* Best effort: a full disk must not stop the guest. */
        if ((n < 0 || (size_t) n != len) && !atomic_exchange(&warned, true))
                log_warning("--profile-guest: writing a sample failed: %s", n < 0 ? strerror(errno) : "short write");
}

int profile_begin(GuestProfile *p, uint64_t start_ns) {
        char line[160];
        int n;

        p->start_ns = start_ns;
        n = snprintf(line, sizeof(line),
                     "# majordome-vmm guest profile 1 hz=%u text=%" PRIx64 "-%" PRIx64 ": vcpu usec rip [stack words]\n",
                     PROFILE_HZ, p->text_start, p->text_end);
        if (write(p->fd, line, (size_t) n) != n)
                return -errno ?: -EIO;
        return 0;
}

int profile_thread_start(timer_t *ret) {
        struct sigevent ev = {
                .sigev_notify = SIGEV_THREAD_ID,
                .sigev_signo = HV_KICK_SIGNAL,
        };
        struct itimerspec period = {
                .it_interval = { .tv_nsec = 1000000000L / PROFILE_HZ },
                .it_value = { .tv_nsec = 1000000000L / PROFILE_HZ },
        };
        timer_t t;

        ev._sigev_un._tid = (pid_t) syscall(SYS_gettid);  /* glibc 2.36 has no sigev_notify_thread_id */
        if (timer_create(CLOCK_MONOTONIC, &ev, &t) < 0)
                return -errno;
        if (timer_settime(t, 0, &period, NULL) < 0) {
                int r = -errno;

                timer_delete(t);
                return r;
        }
        *ret = t;
        return 0;
}

void profile_thread_stop(timer_t t) {
        timer_delete(t);
}

void profile_sample(GuestProfile *p, const HypervisorOps *ops, HvVcpu *vcpu, const GuestMemory *m,
                    unsigned index) {
        char line[64 + PROFILE_MAX_STACK_WORDS * 17];
        uint64_t rip, rsp, gpa, words[PAGE_SIZE_4K / 8];
        size_t len, n_words;
        unsigned found = 0;

        if (ops->vcpu_get_pc(vcpu, &rip, &rsp) < 0)
                return;
        len = (size_t) snprintf(line, sizeof(line), "%u %" PRIu64 " %" PRIx64, index,
                                (now_ns() - p->start_ns) / 1000, rip);

        /* The top page of the stack, read through the bounds-checked
         * accessor: the guest's page tables may point anywhere. */
        if (p->text_end > p->text_start && ops->vcpu_translate(vcpu, rsp & ~UINT64_C(7), &gpa) >= 0) {
                n_words = (PAGE_SIZE_4K - (gpa & (PAGE_SIZE_4K - 1))) / 8;
                if (guest_read(m, gpa, words, n_words * 8) >= 0)
                        for (size_t i = 0; i < n_words && found < PROFILE_MAX_STACK_WORDS; i++) {
                                if (words[i] < p->text_start || words[i] >= p->text_end)
                                        continue;
                                len += (size_t) snprintf(line + len, sizeof(line) - len, " %" PRIx64, words[i]);
                                found++;
                        }
        }
        line[len++] = '\n';
        profile_write(p, line, len);
}
