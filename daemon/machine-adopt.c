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
#include "daemon/machine-state-file.h"
#include "daemon/machine-stop.h"

/* The adopted VMM did not answer `info` at start-up (stopped, busy,
 * socket gone): it is managed from its state file, and asked again here
 * until it answers; its pidfd reports its end meanwhile. */
#define MACHINE_ADOPT_RETRY_USEC (1000 * 1000)

static void on_adopt_info(Machine *vm, int r, const ControlReply *reply, void *userdata);

static int on_adopt_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Machine *vm = userdata;
        int fd = -EBADF, r;

        if (!vm->adopt_unconfirmed || vm->state == MACHINE_STATE_STOPPED)
                return 0;
        if (vm->control_fd < 0 && control_connect(vm->socket_path, &fd) >= 0 && machine_control_attach(vm, fd) < 0)
                safe_close(fd);
        r = machine_control_request(vm, CONTROL_TYPE_INFO, on_adopt_info, NULL);
        if (r < 0) {
                (void) sd_event_source_set_time_relative(vm->adopt_timer, MACHINE_ADOPT_RETRY_USEC);
                (void) sd_event_source_set_enabled(vm->adopt_timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

static void on_adopt_info(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        ControlInfo info;

        if (r == -ECANCELED || !vm->adopt_unconfirmed)
                return;
        if (r < 0 || reply->status < 0 || control_info_decode(reply->payload, reply->length, &info) < 0 ||
            info.pid != (uint32_t) vm->pid) {
                if (r != -ETIMEDOUT)
                        /* Not our VMM's socket, or gone: reconnect next time. */
                        machine_control_disconnect(vm);
                (void) sd_event_source_set_time_relative(vm->adopt_timer, MACHINE_ADOPT_RETRY_USEC);
                (void) sd_event_source_set_enabled(vm->adopt_timer, SD_EVENT_ONESHOT);
                return;
        }
        vm->adopt_unconfirmed = false;
        (void) machine_subscribe(vm);
        vm->vcpus = info.vcpus;
        vm->memory_bytes = info.memory_bytes;
        log_info("VM %s: the VMM answers again (%s)", vm->name, control_state_to_string(info.state) ?: "?");
        /* One adopted while starting (before its VMM had its socket up) is
         * finished by the `ready` event its subscription brings. */
        if (vm->state == MACHINE_STATE_RUNNING || vm->state == MACHINE_STATE_PAUSED) {
                if (info.state == CONTROL_STATE_PAUSED)
                        machine_set_state(vm, MACHINE_STATE_PAUSED);
                else if (info.state == CONTROL_STATE_RUNNING)
                        machine_set_state(vm, MACHINE_STATE_RUNNING);
        }
}

int machine_adopt(Manager *m, const char *state_path, Machine **ret) {
        _cleanup_close_ int pidfd = -EBADF, fd = -EBADF;
        MachineStateFile s = {};
        ControlReply reply;
        ControlInfo info;
        uint64_t starttime;
        uint16_t other_version = 0;
        bool answered = false;
        Machine *vm = NULL;
        int r;

        r = machine_state_file_read(state_path, &s);
        if (r < 0)
                return r;
        r = machine_new(m, s.name, &vm);
        if (r < 0)
                goto out;
        if (strcmp(vm->state_path, state_path) != 0 || strcmp(vm->socket_path, s.socket) != 0) {
                r = -EBADMSG;
                goto out;
        }

        /* Identity: the pid must still name the process that was started
         * then. Only a VMM known to be gone (-ESRCH) makes the entry stale;
         * anything else keeps the VM managed. */
        pidfd = machine_pidfd_open(s.pid);
        if (pidfd < 0) {
                r = -errno;
                goto out;
        }
        r = machine_pid_get_starttime(s.pid, &starttime);
        if (r == -ENOENT) /* exited between the two */
                r = -ESRCH;
        if (r < 0)
                goto out;
        if (starttime != s.starttime) {
                r = -ESRCH; /* the pid was reused */
                goto out;
        }

        /* The VMM's own view, if it answers now; a VMM that does not (it is
         * stopped, overloaded, its socket gone) is adopted all the same,
         * from the state file, and asked again later. */
        r = control_connect(s.socket, &fd);
        if (r >= 0)
                r = control_call(fd, CONTROL_TYPE_INFO, 1, NULL, 0, NULL, 0, 1000, &reply);
        if (r >= 0 && reply.status == -EPROTO && reply.version != CONTROL_VERSION) {
                /* An upgrade under a running VMM: it is listed (and can be
                 * killed), never driven with messages it reads otherwise. */
                other_version = reply.version;
                fd = safe_close(fd);
        } else if (r >= 0 && reply.status < 0)
                r = reply.status;
        if (r >= 0 && !other_version)
                r = control_info_decode(reply.payload, reply.length, &info);
        if (!other_version && r >= 0 && info.pid == (uint32_t) s.pid)
                answered = true;
        else if (!other_version) {
                log_warning_errno(r < 0 ? r : -ESRCH, "VM %s: the VMM (pid %d) does not answer on its socket "
                                  "(%m); adopting it from its state file", s.name, (int) s.pid);
                /* Something else answering on the path is not ours to talk to. */
                if (r >= 0)
                        fd = safe_close(fd);
        }

        vm->pid = s.pid;
        vm->pid_starttime = starttime;
        vm->cid = s.cid;
        vm->vcpus = answered ? info.vcpus : s.vcpus;
        vm->memory_bytes = answered ? info.memory_bytes : s.memory;
        vm->start_time_usec = s.start_usec;
        vm->stop_requested = s.stop_requested;
        vm->kill_requested = s.kill_requested;
        vm->stop_step = s.stop_step;
        vm->stop_timeout_ms = s.stop_timeout_ms ?: MACHINE_STOP_TIMEOUT_MS_DEFAULT;
        vm->balloon = s.balloon;
        vm->balloon_target_bytes = s.balloon_target;
        vm->on_panic = s.on_panic;
        vm->guest_panicked = s.guest_panicked;
        vm->n_disks = MIN(s.disks, (uint32_t) MACHINE_DISKS_MAX);
        vm->disks_read_only = s.disks_ro;
        for (unsigned i = 0; i < s.n_shares; i++) {
                vm->shares[i] = s.shares[i];
                s.shares[i].path = NULL;
        }
        vm->n_shares = s.n_shares;
        vm->live_shares = s.live_shares;
        for (unsigned i = 0; i < s.n_live; i++) {
                vm->live[i] = s.live[i];
                s.live[i].path = NULL;
        }
        vm->n_live = s.n_live;
        vm->gpu = s.gpu;
        vm->owner_uid = s.owner_uid;
        vm->next_request_id = 1;
        if (answered)
                vm->state = info.state == CONTROL_STATE_PAUSED ? MACHINE_STATE_PAUSED :
                            info.state == CONTROL_STATE_STARTING ? MACHINE_STATE_STARTING :
                            info.state == CONTROL_STATE_STOPPING ? MACHINE_STATE_STOPPING : MACHINE_STATE_RUNNING;
        else {
                vm->state = s.state < 0 || s.state == MACHINE_STATE_STOPPED ? MACHINE_STATE_RUNNING :
                            (MachineState) s.state;
        }
        if (vm->stop_requested || vm->kill_requested)
                vm->state = MACHINE_STATE_STOPPING;
        else if (other_version)
                /* Set here, not through machine_set_state: the VM is not
                 * listed yet, so there is nobody to tell. */
                vm->state = MACHINE_STATE_FAILED;
        else if (vm->state == MACHINE_STATE_FAILED)
                /* The file's "failed" is rechecked: a VMM not answering now
                 * is asked again and judged by its answer. */
                vm->state = MACHINE_STATE_RUNNING;

        r = sd_event_add_io(m->event, &vm->pidfd_source, pidfd, EPOLLIN, machine_on_pidfd, vm);
        if (r < 0)
                goto out;
        vm->pidfd = TAKE_FD(pidfd);
        if (fd >= 0) {
                r = machine_control_attach(vm, fd);
                if (r < 0)
                        goto out;
                TAKE_FD(fd);
        }
        if (other_version)
                machine_version_mismatch(vm, other_version);
        else if (!answered) {
                vm->adopt_unconfirmed = true;
                r = sd_event_add_time_relative(m->event, &vm->adopt_timer, CLOCK_MONOTONIC,
                                               MACHINE_ADOPT_RETRY_USEC, 0, on_adopt_retry, vm);
                if (r < 0)
                        goto out;
        }
        /* Its start goes on under the same limit: running in time (its
         * `ready` event), or killed, never left "starting". */
        if (vm->state == MACHINE_STATE_STARTING) {
                r = sd_event_add_time_relative(m->event, &vm->start_timer, CLOCK_MONOTONIC,
                                               (uint64_t) MACHINE_START_TIMEOUT_MS * 1000, 0, machine_on_start_timeout, vm);
                if (r < 0)
                        goto out;
        }
        /* Its state is pushed from now on (ready at once, then changes); a
         * VMM not confirmed yet subscribes once it answers. */
        if (!other_version && !vm->adopt_unconfirmed && vm->control_fd >= 0)
                (void) machine_subscribe(vm);
        /* A stop or kill that was under way goes on, its timer armed. */
        if (vm->stop_requested || vm->kill_requested)
                machine_stop_resume(vm);
        (void) machine_save(vm);
        *ret = TAKE_PTR(vm);
        r = 0;
out:
        machine_state_file_done(&s);
        machine_free(vm);
        return r;
}
