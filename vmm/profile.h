/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* --profile-guest: a sampling profiler of guest code. A timer on each vCPU
 * thread sends the kick signal PROFILE_HZ times a second; the vCPU loop,
 * seeing the interrupted KVM_RUN, records the guest's RIP and the words on
 * the top page of its stack that point into the kernel's text (return
 * addresses, and now and then a stale one). tools/guest-profile.py turns
 * the file into per-function tables with the kernel's symbols. On a host
 * that emulates guest code, where perf cannot see inside the guest, this
 * is how one learns where a guest's time goes. */

#include <stdint.h>
#include <time.h>

#include "vmm/hypervisor/hypervisor.h"
#include "vmm/memory.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PROFILE_HZ 500
#define PROFILE_MAX_STACK_WORDS 24

typedef struct GuestProfile {
        int fd;                         /* borrowed; -1: not profiling */
        uint64_t text_start, text_end;  /* guest-virtual; 0, 0: RIP only */
        uint64_t start_ns;
} GuestProfile;

/* The header line; once, before the vCPUs start. Sample times count from
 * start_ns (the VM's start, so they match its uptime). */
int profile_begin(GuestProfile *p, uint64_t start_ns);
/* On the vCPU's own thread: a timer that interrupts it PROFILE_HZ times
 * a second. */
int profile_thread_start(timer_t *ret);
void profile_thread_stop(timer_t t);
/* One line "VCPU USEC RIP [WORD...]" (hex addresses), written whole. */
void profile_sample(GuestProfile *p, const HypervisorOps *ops, HvVcpu *vcpu, const GuestMemory *m,
                    unsigned index);

#ifdef __cplusplus
}
#endif
