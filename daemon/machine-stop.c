/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "daemon/manager.h"
#include "daemon/machine.h"
#include "daemon/machine-control.h"
#include "daemon/machine-internal.h"
#include "daemon/machine-process.h"
#include "daemon/machine-stop.h"

static void machine_stop_escalate(Machine *vm);

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Machine *vm = userdata;

        if (vm->stop_step == MACHINE_STOP_STEP_SIGKILL) {
                /* Not even SIGKILL ended it yet (uninterruptible sleep): answer
                 * the callers now rather than leave them waiting; the pidfd
                 * still reports the end when it comes. */
                machine_waiters_complete(vm, &vm->stop_waiters, -ETIMEDOUT,
                                 "the VMM did not exit after SIGKILL", vm->stop_step);
                return 0;
        }
        machine_stop_escalate(vm);
        return 0;
}

static void machine_arm_stop_timer(Machine *vm) {
        if (!vm->stop_timer &&
            sd_event_add_time(vm->manager->event, &vm->stop_timer, CLOCK_MONOTONIC,
                              UINT64_MAX, 0, on_stop_timer, vm) < 0) {
                return;
        }
        (void) sd_event_source_set_time_relative(vm->stop_timer, (uint64_t) vm->stop_timeout_ms * 1000);
        (void) sd_event_source_set_enabled(vm->stop_timer, SD_EVENT_ONESHOT);
}

static void machine_stop_escalate(Machine *vm) {
        int sig;

        if (vm->stop_step < MACHINE_STOP_STEP_SIGTERM) {
                vm->stop_step = MACHINE_STOP_STEP_SIGTERM;
                sig = SIGTERM;
        } else {
                vm->stop_step = MACHINE_STOP_STEP_SIGKILL;
                sig = SIGKILL;
        }
        /* Saved, so that a restarted daemon continues from this step. */
        (void) machine_save(vm);
        log_info("VM %s: stopping with %s", vm->name, sig == SIGTERM ? "SIGTERM" : "SIGKILL");
        if (machine_pidfd_send_signal(vm->pidfd, sig) < 0 && errno != ESRCH)
                log_warning_errno(errno, "VM %s: sending signal %d: %m", vm->name, sig);
        machine_arm_stop_timer(vm);
}

static void on_stop_reply(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        if (r == -ECANCELED)
                return;
        if (vm->stop_step != MACHINE_STOP_STEP_GRACEFUL)
                return;
        /* A refused or unanswered stop goes straight to the next step. */
        if (r < 0 || reply->status < 0)
                machine_stop_escalate(vm);
}

/* The graceful step: the VMM's stop, sent past anything else in flight. */
static void machine_stop_send(Machine *vm) {
        if (machine_control_request_full(vm, CONTROL_TYPE_STOP, NULL, 0, true, on_stop_reply, NULL) < 0)
                machine_stop_escalate(vm);
        else
                machine_arm_stop_timer(vm);
}

/* After a daemon restart: the step the last daemon had reached is done
 * again (the stop resent, the signal sent again) and its timer armed, so
 * the escalation goes on instead of waiting forever. */
void machine_stop_resume(Machine *vm) {
        log_info("VM %s: continuing its %s stop (step %s)", vm->name, vm->kill_requested ? "kill" : "graceful",
                 machine_stop_step_to_string(vm->stop_step));
        if (vm->kill_requested || vm->stop_step == MACHINE_STOP_STEP_SIGKILL) {
                vm->stop_step = MACHINE_STOP_STEP_SIGKILL;
                if (machine_pidfd_send_signal(vm->pidfd, SIGKILL) < 0 && errno != ESRCH)
                        log_warning_errno(errno, "VM %s: SIGKILL: %m", vm->name);
                machine_arm_stop_timer(vm);
        } else if (vm->stop_step == MACHINE_STOP_STEP_SIGTERM) {
                if (machine_pidfd_send_signal(vm->pidfd, SIGTERM) < 0 && errno != ESRCH)
                        log_warning_errno(errno, "VM %s: SIGTERM: %m", vm->name);
                machine_arm_stop_timer(vm);
        } else {
                vm->stop_step = MACHINE_STOP_STEP_GRACEFUL;
                machine_stop_send(vm);
        }
}

int machine_stop(Machine *vm, bool kill_now, uint32_t timeout_ms, MachineDoneFn done, void *userdata) {
        int r;

        if (vm->state == MACHINE_STATE_STOPPED)
                return -ESRCH;
        r = machine_waiter_add(&vm->stop_waiters, done, userdata);
        if (r < 0)
                return r;

        if (kill_now) {
                if (!vm->kill_requested) {
                        vm->kill_requested = true;
                        vm->stop_step = MACHINE_STOP_STEP_SIGKILL;
                        if (!vm->stop_timeout_ms || timeout_ms)
                                vm->stop_timeout_ms = timeout_ms ?: MACHINE_STOP_TIMEOUT_MS_DEFAULT;
                        if (machine_pidfd_send_signal(vm->pidfd, SIGKILL) < 0 && errno != ESRCH)
                                log_warning_errno(errno, "VM %s: SIGKILL: %m", vm->name);
                        machine_arm_stop_timer(vm);
                        machine_set_state(vm, MACHINE_STATE_STOPPING);
                }
                return 0;
        }
        if (vm->stop_requested || vm->kill_requested)
                return 0; /* joins the stop under way */

        vm->stop_requested = true;
        vm->stop_step = MACHINE_STOP_STEP_GRACEFUL;
        vm->stop_timeout_ms = timeout_ms ?: MACHINE_STOP_TIMEOUT_MS_DEFAULT;
        machine_set_state(vm, MACHINE_STATE_STOPPING);
        machine_stop_send(vm);
        return 0;
}
