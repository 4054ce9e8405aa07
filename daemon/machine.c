/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/manager.h"
#include "common/string-table.h"
#include "daemon/machine.h"
#include "daemon/machine-control.h"
#include "daemon/machine-log.h"
#include "daemon/machine-process.h"
#include "daemon/machine-state-file.h"
#include "daemon/machine-internal.h"
#include "common/vmm-config.h"

/* A GetBalloonStats caller: all callers while one request is out share it. */
struct MachineStatsWaiter {
        MachineBalloonStatsFn done;
        void *userdata;
        MachineStatsWaiter *next;
};

static const char *const machine_state_table[_MACHINE_STATE_MAX] = {
        [MACHINE_STATE_STARTING] = "starting",
        [MACHINE_STATE_RUNNING] = "running",
        [MACHINE_STATE_PAUSED] = "paused",
        [MACHINE_STATE_STOPPING] = "stopping",
        [MACHINE_STATE_STOPPED] = "stopped",
        [MACHINE_STATE_FAILED] = "failed",
};

static const char *const machine_stop_reason_table[_MACHINE_STOP_REASON_MAX] = {
        [MACHINE_STOP_POWEROFF] = "poweroff",
        [MACHINE_STOP_STOPPED] = "stopped",
        [MACHINE_STOP_CRASHED] = "crashed",
        [MACHINE_STOP_KILLED] = "killed",
        [MACHINE_STOP_FAILED] = "failed",
        [MACHINE_STOP_START_FAILED] = "start-failed",
        [MACHINE_STOP_LOST] = "unknown",
        [MACHINE_STOP_SANDBOX] = "sandbox-violation",
        [MACHINE_STOP_GUEST_PANIC] = "guest-panic",
};

static const char *const machine_stop_step_table[_MACHINE_STOP_STEP_MAX] = {
        [MACHINE_STOP_STEP_NONE] = "none",
        [MACHINE_STOP_STEP_GRACEFUL] = "graceful",
        [MACHINE_STOP_STEP_SIGTERM] = "sigterm",
        [MACHINE_STOP_STEP_SIGKILL] = "sigkill",
};

DEFINE_STRING_TABLE(machine_state, MachineState, machine_state_table)
DEFINE_STRING_TABLE(machine_stop_reason, MachineStopReason, machine_stop_reason_table)
DEFINE_STRING_TABLE(machine_stop_step, MachineStopStep, machine_stop_step_table)

bool machine_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > MACHINE_NAME_MAX)
                return false;
        /* A leading '.' or '-' would make hidden files or option-like words. */
        if (name[0] == '.' || name[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
                        return false;
        }
        return true;
}

static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- waiters ---- */

int machine_waiter_add(MachineWaiter **list, MachineDoneFn done, void *userdata) {
        MachineWaiter *w, **tail;

        if (!done)
                return 0;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->done = done;
        w->userdata = userdata;
        for (tail = list; *tail; tail = &(*tail)->next)
                ;
        *tail = w;
        return 0;
}

void machine_waiters_complete(Machine *vm, MachineWaiter **list, int r, const char *msg, MachineStopStep step) {
        /* Detach first: a callback may add new waiters. */
        MachineWaiter *w = *list;

        *list = NULL;
        while (w) {
                MachineWaiter *next = w->next;

                w->done(vm, r, msg, step, w->userdata);
                free(w);
                w = next;
        }
}

static void stats_waiters_complete(Machine *vm, int r, const char *msg, const ControlBalloonStats *stats);

/* ---- lifetime ---- */

int machine_new(Manager *m, const char *name, Machine **ret) {
        Machine *vm;
        int r;

        if (!machine_name_is_valid(name))
                return -EINVAL;
        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return -ENOMEM;
        vm->manager = m;
        vm->pidfd = -EBADF;
        vm->control_fd = -EBADF;
        vm->state = MACHINE_STATE_STARTING;
        vm->name = strdup(name);
        if (!vm->name)
                goto oom;
        r = sd_bus_path_encode("/org/majordome/VmManager1/vm", name, &vm->path);
        if (r < 0) {
                machine_free(vm);
                return r;
        }
        if (asprintf(&vm->log_path, "%s/%s.console.log", m->runtime_dir, name) < 0) {
                vm->log_path = NULL;
                goto oom;
        }
        if (asprintf(&vm->vmm_log_path, "%s/%s.log", m->runtime_dir, name) < 0) {
                vm->vmm_log_path = NULL;
                goto oom;
        }
        if (asprintf(&vm->socket_path, "%s/%s.sock", m->runtime_dir, name) < 0) {
                vm->socket_path = NULL;
                goto oom;
        }
        if (asprintf(&vm->state_path, "%s/%s.state", m->runtime_dir, name) < 0) {
                vm->state_path = NULL;
                goto oom;
        }
        if (asprintf(&vm->vsock_dir, "%s/%s.vsock.d", m->runtime_dir, name) < 0) {
                vm->vsock_dir = NULL;
                goto oom;
        }
        if (asprintf(&vm->vsock_path, "%s/vsock", vm->vsock_dir) < 0) {
                vm->vsock_path = NULL;
                goto oom;
        }
        if (asprintf(&vm->live_dir, "%s/" MACHINE_LIVE_SHARES_PARENT "/%s", m->runtime_dir, name) < 0) {
                vm->live_dir = NULL;
                goto oom;
        }
        *ret = vm;
        return 0;
oom:
        machine_free(vm);
        return -ENOMEM;
}

Machine *machine_free(Machine *vm) {
        if (!vm)
                return NULL;
        /* Nobody is left waiting forever: pending callers hear it ended. */
        machine_control_fail_all(vm, -ECANCELED);
        stats_waiters_complete(vm, -ECANCELED, "the daemon is shutting down", NULL);
        machine_waiters_complete(vm, &vm->start_waiters, -ECANCELED, "the daemon is shutting down", MACHINE_STOP_STEP_NONE);
        machine_waiters_complete(vm, &vm->stop_waiters, -ECANCELED, "the daemon is shutting down", vm->stop_step);

        sd_event_source_disable_unref(vm->pidfd_source);
        sd_event_source_disable_unref(vm->control_source);
        sd_event_source_disable_unref(vm->control_timer);
        sd_event_source_disable_unref(vm->start_timer);
        sd_event_source_disable_unref(vm->stop_timer);
        sd_event_source_disable_unref(vm->adopt_timer);
        safe_close(vm->pidfd);
        safe_close(vm->control_fd);
        free(vm->name);
        free(vm->path);
        free(vm->log_path);
        free(vm->vmm_log_path);
        free(vm->socket_path);
        free(vm->state_path);
        free(vm->vsock_dir);
        free(vm->vsock_path);
        free(vm->stop_message);
        free(vm->failed_reason);
        for (unsigned i = 0; i < vm->n_shares; i++)
                machine_share_done(&vm->shares[i]);
        for (unsigned i = 0; i < vm->n_live; i++)
                machine_share_done(&vm->live[i]);
        free(vm->live_dir);
        sd_bus_slot_unref(vm->scope_slot);
        free(vm->scope);
        free(vm);
        return NULL;
}

void machine_set_state(Machine *vm, MachineState state) {
        if (vm->state == state)
                return;
        vm->state = state;
        if (state != MACHINE_STATE_STOPPED)
                (void) machine_save(vm);
        manager_vm_state_changed(vm->manager, vm);
}

int machine_save(Machine *vm) {
        MachineStateFile s = {
                .name = vm->name,
                .socket = vm->socket_path,
                .log = vm->log_path,
                .state = vm->state,
                .pid = vm->pid,
                .owner_uid = vm->owner_uid,
                .starttime = vm->pid_starttime,
                .memory = vm->memory_bytes,
                .start_usec = vm->start_time_usec,
                .cid = vm->cid,
                .vcpus = vm->vcpus,
                .stop_requested = vm->stop_requested,
                .kill_requested = vm->kill_requested,
                .balloon = vm->balloon,
                .guest_panicked = vm->guest_panicked,
                .on_panic = vm->on_panic,
                .balloon_target = vm->balloon_target_bytes,
                .disks = vm->n_disks,
                .disks_ro = vm->disks_read_only,
                .stop_step = vm->stop_step,
                .stop_timeout_ms = vm->stop_timeout_ms,
                .n_shares = vm->n_shares,
                .live_shares = vm->live_shares,
                .n_live = vm->n_live,
                .gpu = vm->gpu,
        };

        /* Borrowed: s is not machine_state_file_done()'d. */
        memcpy(s.shares, vm->shares, vm->n_shares * sizeof(MachineShare));
        memcpy(s.live, vm->live, vm->n_live * sizeof(MachineShare));
        return machine_state_file_write(vm->state_path, &s);
}

/* The VMM is gone: settle everybody and hand the VM to the manager to drop. */
static void machine_finish(Machine *vm, bool known, bool signaled, int code) {
        bool was_starting = vm->state == MACHINE_STATE_STARTING;
        _cleanup_free_ char *vmm_error = NULL, *msg = NULL;

        if (!known && vm->got_exiting) {
                /* Adopted: the exit status is not ours to read, but the VMM
                 * said it on its way out. */
                known = true;
                signaled = false;
                code = vm->vmm_exit_code;
        }
        if (!known) {
                vm->stop_status = 0;
                vm->stop_reason = vm->kill_requested ? MACHINE_STOP_KILLED :
                                  vm->stop_requested ? MACHINE_STOP_STOPPED : MACHINE_STOP_LOST;
        } else {
                vm->stop_status = signaled ? -code : code;
                if (vm->kill_requested)
                        vm->stop_reason = MACHINE_STOP_KILLED;
                else if (vm->stop_requested)
                        vm->stop_reason = MACHINE_STOP_STOPPED;
                else if (vm->guest_panicked && !signaled && code == MACHINE_VMM_EXIT_GUEST_PANIC)
                        vm->stop_reason = MACHINE_STOP_GUEST_PANIC;
                else if (signaled && code == SIGSYS)
                        /* Before start-failed: the more telling reason. */
                        vm->stop_reason = MACHINE_STOP_SANDBOX;
                else if (was_starting)
                        vm->stop_reason = MACHINE_STOP_START_FAILED;
                else if (signaled)
                        vm->stop_reason = MACHINE_STOP_CRASHED;
                else if (code == 0)
                        vm->stop_reason = MACHINE_STOP_POWEROFF;
                else
                        vm->stop_reason = MACHINE_STOP_FAILED;
        }

        vm->pidfd_source = sd_event_source_disable_unref(vm->pidfd_source);
        vm->start_timer = sd_event_source_disable_unref(vm->start_timer);
        vm->stop_timer = sd_event_source_disable_unref(vm->stop_timer);
        machine_control_disconnect(vm);
        (void) unlink(vm->state_path);
        (void) unlink(vm->socket_path);
        if (vm->live_shares)
                live_shares_teardown(vm->live_dir);
        if (vm->cid > 0) {
                /* Our socket; the directory goes too unless host programs
                 * left their PATH_P listeners in it. */
                (void) unlink(vm->vsock_path);
                (void) rmdir(vm->vsock_dir);
        }

        if (vm->stop_reason != MACHINE_STOP_POWEROFF && vm->stop_reason != MACHINE_STOP_STOPPED &&
            vm->stop_reason != MACHINE_STOP_KILLED) {
                /* Say why, in the VMM's own words ("majordome-vmm: sandbox
                 * violation: syscall ptrace (101) in role vcpu"). */
                vmm_error = machine_log_last_vmm_error(vm->vmm_log_path);
                free(vm->stop_message);
                vm->stop_message = vmm_error ? strdup(vmm_error) : NULL;
        }
        if (was_starting) {
                if (asprintf(&msg, "VM '%s' ended before it was running (%s, status %d)%s%s",
                             vm->name, machine_stop_reason_to_string(vm->stop_reason), vm->stop_status,
                             vmm_error ? ": majordome-vmm: " : "", vmm_error ?: "") < 0)
                        msg = NULL;
        }
        vm->state = MACHINE_STATE_STOPPED;
        manager_vm_state_changed(vm->manager, vm);
        machine_waiters_complete(vm, &vm->start_waiters, -ECHILD, msg, MACHINE_STOP_STEP_NONE);
        machine_waiters_complete(vm, &vm->stop_waiters, 0, NULL, vm->stop_step);
        manager_vm_stopped(vm->manager, vm);
        manager_remove_vm(vm->manager, vm);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Machine *vm = userdata;

        machine_finish(vm, true, si->si_code != CLD_EXITED, si->si_status);
        return 0;
}

int machine_on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Machine *vm = userdata;

        /* Not our child (adopted after a restart): the exit status went to
         * its real parent, only the death is ours to see. */
        machine_finish(vm, false, false, 0);
        return 0;
}

/* ---- events pushed by the VMM ----
 *
 * The daemon subscribes on its control connection and the VMM pushes its
 * state (docs/control-protocol.md): nothing is polled. Events come from a
 * process that runs guest-facing code, so each is checked: sequence numbers
 * must grow (duplicates and stale ones are dropped), nothing after
 * `exiting` counts, payloads are decoded with their sizes checked, and an
 * event never moves a VM out of a state the daemon decides (stopping). */

void machine_version_mismatch(Machine *vm, uint16_t version) {
        _cleanup_free_ char *msg = NULL;

        if (asprintf(&msg, "the VMM speaks control protocol v%u, this daemon v%u", version, CONTROL_VERSION) < 0)
                msg = NULL;
        if (vm->vmm_version == 0)
                log_error("VM %s: the VMM (pid %d) speaks control protocol v%u, this daemon v%u: "
                          "it is not driven (StopVm ends it by signals, as does Kill)",
                          vm->name, (int) vm->pid, version, CONTROL_VERSION);
        vm->vmm_version = version ?: UINT16_MAX;
        vm->adopt_unconfirmed = false;
        if (msg && !vm->failed_reason)
                vm->failed_reason = TAKE_PTR(msg);
        machine_control_fail_all(vm, -EPROTO);
        machine_control_disconnect(vm);
        if (vm->state == MACHINE_STATE_STARTING && vm->is_child) {
                /* Ours, just spawned, and unusable: StartVm fails now with
                 * both versions named, and the VMM goes (start-failed). */
                machine_waiters_complete(vm, &vm->start_waiters, -EPROTO, vm->failed_reason, MACHINE_STOP_STEP_NONE);
                (void) machine_pidfd_send_signal(vm->pidfd, SIGKILL);
        } else if (vm->state != MACHINE_STATE_STOPPING && vm->state != MACHINE_STATE_STOPPED) {
                /* A start adopted half-way is not finished by a `ready`
                 * that will never come. */
                vm->start_timer = sd_event_source_disable_unref(vm->start_timer);
                machine_waiters_complete(vm, &vm->start_waiters, -EPROTO, vm->failed_reason, MACHINE_STOP_STEP_NONE);
                machine_set_state(vm, MACHINE_STATE_FAILED);
        }
}

static void on_subscribe_reply(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        if (r == -ECANCELED || r == -ENOTCONN || r == -EPROTO)
                return;
        if (r >= 0 && reply->status >= 0)
                return;
        r = r < 0 ? r : reply->status;
        log_error_errno(r, "VM %s: the VMM refused to push its events (%m)", vm->name);
        if (vm->state == MACHINE_STATE_STARTING && vm->is_child)
                /* It would never be seen running: start-failed, at once. */
                (void) machine_pidfd_send_signal(vm->pidfd, SIGKILL);
}

int machine_subscribe(Machine *vm) {
        return machine_control_request(vm, CONTROL_TYPE_SUBSCRIBE, on_subscribe_reply, NULL);
}

static void machine_apply_vmm_state(Machine *vm, uint32_t state) {
        /* Only between running and paused, and into stopping: starting is
         * left by `ready` alone, and stopping or stopped are never left. */
        if (vm->state != MACHINE_STATE_RUNNING && vm->state != MACHINE_STATE_PAUSED)
                return;
        if (state == CONTROL_STATE_RUNNING)
                machine_set_state(vm, MACHINE_STATE_RUNNING);
        else if (state == CONTROL_STATE_PAUSED)
                machine_set_state(vm, MACHINE_STATE_PAUSED);
        else if (state == CONTROL_STATE_STOPPING)
                machine_set_state(vm, MACHINE_STATE_STOPPING);
}

static void machine_on_ready(Machine *vm, const ControlReady *ready) {
        vm->got_ready = true;
        if (ready->vcpus > 0)
                vm->vcpus = ready->vcpus;
        if (ready->memory_bytes > 0)
                vm->memory_bytes = ready->memory_bytes;
        if (ready->cid != vm->cid)
                log_warning("VM %s: the VMM reports vsock CID %" PRIu32 ", the daemon gave it %" PRIu32,
                            vm->name, ready->cid, vm->cid);
        log_debug("VM %s: ready, %" PRIu32 " PCI devices", vm->name, ready->n_devices);
        vm->n_devices = MIN(ready->n_devices, (uint32_t) CONTROL_READY_DEVICES_MAX);
        memcpy(vm->devices, ready->devices, vm->n_devices * sizeof(ControlDevice));
        manager_vm_devices_changed(vm->manager, vm);
        if (vm->state != MACHINE_STATE_STARTING) {
                /* A reconnection (after a daemon restart): the current state. */
                machine_apply_vmm_state(vm, ready->state);
                return;
        }
        if (ready->state != CONTROL_STATE_RUNNING && ready->state != CONTROL_STATE_PAUSED)
                return; /* stopping already: the pidfd reports the end */
        vm->start_timer = sd_event_source_disable_unref(vm->start_timer);
        machine_set_state(vm, ready->state == CONTROL_STATE_PAUSED ? MACHINE_STATE_PAUSED : MACHINE_STATE_RUNNING);
        machine_waiters_complete(vm, &vm->start_waiters, 0, NULL, MACHINE_STOP_STEP_NONE);
        manager_vm_started(vm->manager, vm);
}

void machine_handle_event(Machine *vm, const ControlHeader *h, const uint8_t *payload) {
        char reason[CONTROL_REASON_MAX + 1], device[16];
        _cleanup_free_ char *escaped = NULL;
        ControlReady ready;
        ControlDevice dev;
        uint32_t state, events, action;
        uint64_t bytes;
        int32_t code;

        if (vm->got_exiting) {
                log_debug("VM %s: %s event after exiting, ignored", vm->name,
                          control_type_to_string(h->type) ?: "unknown");
                return;
        }
        if (h->id <= vm->last_event_seq) {
                log_debug("VM %s: event %" PRIu32 " after %" PRIu32 " (duplicate or out of order), ignored",
                          vm->name, h->id, vm->last_event_seq);
                return;
        }
        vm->last_event_seq = h->id;

        switch (h->type) {
        case CONTROL_EVENT_READY:
                if (control_ready_decode(payload, h->length, &ready) < 0)
                        break;
                machine_on_ready(vm, &ready);
                return;
        case CONTROL_EVENT_STATE_CHANGED:
                if (control_state_changed_decode(payload, h->length, &state) < 0)
                        break;
                if (vm->got_ready)
                        machine_apply_vmm_state(vm, state);
                return;
        case CONTROL_EVENT_GUEST_PANIC:
                if (control_guest_panic_decode(payload, h->length, &events, &action) < 0)
                        break;
                log_warning("VM %s: the guest kernel panicked (pvpanic 0x%" PRIx32 "), %s", vm->name, events,
                            action == CONTROL_PANIC_PAUSE ? "VM paused for inspection" : "VM stopping");
                if (vm->guest_panicked)
                        return; /* one signal per VM, however often the guest says it */
                vm->guest_panicked = true;
                vm->panic_events = events;
                vm->panic_action = action < _CONTROL_PANIC_ACTION_MAX ? action : CONTROL_PANIC_STOP;
                (void) machine_save(vm);
                manager_vm_guest_panicked(vm->manager, vm);
                return;
        case CONTROL_EVENT_DEVICE_ERROR:
                if (control_device_error_decode(payload, h->length, &dev, reason) < 0)
                        break;
                escaped = machine_escape_text(reason, strlen(reason), CONTROL_REASON_MAX);
                snprintf(device, sizeof(device), "%04x:%04x", dev.vendor_id, dev.device_id);
                log_warning("VM %s: device %s in slot %u broke: %s", vm->name, device, dev.slot,
                            escaped ?: "(no memory)");
                manager_vm_device_error(vm->manager, vm, dev.slot, device, escaped ?: "");
                return;
        case CONTROL_EVENT_BALLOON_REACHED:
                if (control_balloon_reached_decode(payload, h->length, &bytes) < 0)
                        break;
                /* The target and what the driver holds, as the VMM has
                 * them (a re-adopted VM's target may be news too). */
                log_debug("VM %s: the balloon reached %" PRIu64 " bytes", vm->name, bytes);
                if (vm->balloon_target_bytes != bytes || vm->balloon_actual_bytes != bytes) {
                        if (vm->balloon_target_bytes != bytes) {
                                vm->balloon_target_bytes = bytes;
                                (void) machine_save(vm);
                        }
                        vm->balloon_actual_bytes = bytes;
                        manager_vm_balloon_changed(vm->manager, vm);
                }
                return;
        case CONTROL_EVENT_EXITING:
                if (control_exiting_decode(payload, h->length, &code, reason) < 0)
                        break;
                vm->got_exiting = true;
                vm->vmm_exit_code = code;
                log_debug("VM %s: the VMM is exiting (status %" PRIi32 ")", vm->name, code);
                return;
        default:
                log_debug("VM %s: unknown event type 0x%04x, ignored", vm->name, h->type);
                return;
        }
        log_warning("VM %s: malformed %s event (%" PRIu32 " bytes), ignored", vm->name,
                    control_type_to_string(h->type), h->length);
}

/* ---- start ---- */

int machine_on_start_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Machine *vm = userdata;

        log_warning("VM %s: the VMM did not report running within %d ms, killing it",
                    vm->name, MACHINE_START_TIMEOUT_MS);
        /* The pidfd reports the end as start-failed: nobody asked for a stop. */
        (void) machine_pidfd_send_signal(vm->pidfd, SIGKILL);
        return 0;
}

static int machine_spawn(Machine *vm, MachineConfig *config, MachineDoneFn done, void *userdata) {
        _cleanup_close_ int log_fd = -EBADF, console_fd = -EBADF;
        _cleanup_(machine_process_done) MachineProcess p = MACHINE_PROCESS_NULL;
        _cleanup_free_ VmmConfig *vmm_config = NULL;
        VmmConfigError config_error;
        uint32_t ids_used;
        bool saved = false;
        int r;

        if (config->kernel_fd < 0 || config->n_disks > MACHINE_DISKS_MAX || config->n_shares > MACHINE_SHARES_MAX)
                return -EINVAL;
        vmm_config = malloc(sizeof(*vmm_config));
        if (!vmm_config)
                return -ENOMEM;

        if (config->vsock) {
                /* PATH_P too must fit sun_path (the VMM checks the same). */
                if (strlen(vm->vsock_path) + 11 >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                        return -ENAMETOOLONG;
                r = manager_allocate_cid(vm->manager, &vm->cid);
                if (r < 0)
                        return r;
                /* The jailed VMM runs as majordome-vmm (or nobody) and
                 * reaches PATH_P through a bind mount of this directory,
                 * and of it alone (so one directory per VM): it must be
                 * searchable, not readable. */
                if (mkdir(vm->vsock_dir, 0711) < 0 && errno != EEXIST)
                        return -errno;
                (void) chmod(vm->vsock_dir, 0711);
        }

        /* Two files: the VMM's own messages, and the guest's console, which
         * the guest fills at will (the VMM caps it, --serial-max-size).
         * Created even when the console goes to the caller's serial_log,
         * so LogPath never shows an earlier VM's console. */
        log_fd = open(vm->vmm_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
        if (log_fd < 0)
                return -errno;
        console_fd = open(vm->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
        if (console_fd < 0)
                return -errno;
        (void) unlink(vm->socket_path);

        if (config->live_shares) {
                char parent[PATH_MAX];

                snprintf(parent, sizeof(parent), "%s/" MACHINE_LIVE_SHARES_PARENT, vm->manager->runtime_dir);
                r = live_shares_prepare_parent(parent);
                if (r >= 0)
                        r = live_shares_setup(vm->live_dir, &config->live_root_fd);
                if (r < 0) {
                        log_warning_errno(r, "VM %s: the live shares' root in %s: %m", vm->name, vm->live_dir);
                        return r;
                }
                vm->live_shares = true;
        }
        r = machine_config_to_vmm_config(config,
                                         &(MachineVmmParams) {
                                            .cid = vm->cid,
                                            .vsock_path = vm->vsock_path,
                                            .console_fd = console_fd,
                                            .console_log_max = vm->manager->console_log_max,
                                    },
                                    vmm_config, &config_error);
        if (r < 0) {
                if (config_error.message[0])
                        log_warning("VM %s: the VMM's configuration: %s", vm->name, config_error.message);
                return r;
        }
        r = machine_process_spawn(vm->manager->vmm_path, vm->socket_path, log_fd, vmm_config, vm->next_request_id + 1,
                                  &p, &ids_used);
        if (r < 0)
                return r;
        vm->next_request_id += ids_used;

        vm->pid = p.pid;
        vm->is_child = true;
        (void) machine_pid_get_starttime(p.pid, &vm->pid_starttime);
        vm->start_time_usec = now_realtime_usec();
        vm->vcpus = vmm_config->n_vcpus;
        vm->memory_bytes = vmm_config->mem_size;
        vm->balloon = config->balloon;
        vm->on_panic = config->on_panic;
        vm->memory_max = config->memory_max;
        vm->cpu_weight = config->cpu_weight;
        vm->n_disks = config->n_disks;
        vm->disks_read_only = 0;
        for (unsigned i = 0; i < config->n_disks; i++)
                if (config->disks[i].read_only)
                        vm->disks_read_only |= UINT32_C(1) << i;
        /* What the Shares property lists; the directories themselves went
         * to the VMM in the configure message. */
        for (unsigned i = 0; i < config->n_shares; i++) {
                MachineShare *sh = &vm->shares[vm->n_shares];

                *sh = config->shares[i];
                sh->fd = -EBADF;
                sh->path = strdup(config->shares[i].path);
                if (!sh->path) {
                        r = -ENOMEM;
                        goto fail;
                }
                vm->n_shares++;
        }
        if (vm->n_shares > 0 || vm->live_shares)
                manager_vm_shares_changed(vm->manager, vm);
        if (config->gpu.enabled) {
                vm->gpu = config->gpu;
                vm->gpu.headless = config->wayland_fd < 0;
                manager_vm_gpu_changed(vm->manager, vm);
        }

        r = sd_event_add_child_pidfd(vm->manager->event, &vm->pidfd_source, p.pidfd, WEXITED, on_child, vm);
        if (r < 0)
                goto fail;
        vm->pidfd = TAKE_FD(p.pidfd);
        r = machine_control_attach(vm, p.control_fd);
        if (r < 0)
                goto fail;
        TAKE_FD(p.control_fd);
        r = sd_event_add_time_relative(vm->manager->event, &vm->start_timer, CLOCK_MONOTONIC,
                                       (uint64_t) MACHINE_START_TIMEOUT_MS * 1000, 0, machine_on_start_timeout, vm);
        if (r < 0)
                goto fail;
        /* The VMM tells when it runs: nothing is polled. */
        r = machine_subscribe(vm);
        if (r < 0)
                goto fail;
        vm->state = MACHINE_STATE_STARTING;
        /* A daemon killed from here on finds the VMM by this file; one
         * killed before left a child that exits at the closed gate. */
        r = machine_save(vm);
        if (r < 0)
                goto fail;
        saved = true;
        r = machine_process_open_gate(&p);
        if (r < 0)
                goto fail;
        /* Last: once a start waiter is registered, failing here would
         * answer the caller twice. */
        r = machine_waiter_add(&vm->start_waiters, done, userdata);
        if (r < 0)
                goto fail;
        return 0;

fail:
        /* The VM object is dropped by the caller; take the process with it. */
        (void) kill(p.pid, SIGKILL);
        if (vm->pidfd_source) {
                vm->pidfd_source = sd_event_source_disable_unref(vm->pidfd_source);
        }
        (void) waitpid(p.pid, NULL, 0);
        if (saved)
                (void) unlink(vm->state_path);
        return r;
}

int machine_start(Machine *vm, MachineConfig *config, MachineDoneFn done, void *userdata) {
        int r;

        r = machine_spawn(vm, config, done, userdata);
        if (r < 0 && vm->live_shares) {
                live_shares_teardown(vm->live_dir);
                vm->live_shares = false;
        }
        if (r < 0 && vm->cid > 0) {
                /* No VMM came to use it: the vsock directory goes, the CID is free. */
                (void) unlink(vm->vsock_path);
                (void) rmdir(vm->vsock_dir);
                vm->cid = 0;
        }
        return r;
}

/* ---- pause, resume ---- */

int machine_check_up(const Machine *vm) {
        if (vm->state == MACHINE_STATE_FAILED || vm->vmm_version != 0)
                return -EPROTO;
        if (vm->state == MACHINE_STATE_RUNNING || vm->state == MACHINE_STATE_PAUSED)
                return 0;
        return -EBUSY;
}

typedef struct SimpleCall {
        MachineDoneFn done;
        void *userdata;
        MachineState target;
} SimpleCall;

static void on_simple_reply(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        SimpleCall *c = userdata;
        const char *msg = NULL;

        if (r >= 0 && reply->status < 0 && reply->status != -EALREADY) {
                r = reply->status;
                msg = "the VMM refused the request";
        } else if (r < 0)
                msg = r == -ETIMEDOUT ? "the VMM did not answer in time" : "the VMM could not be reached";
        else {
                r = 0;
                if (vm->state == MACHINE_STATE_RUNNING || vm->state == MACHINE_STATE_PAUSED)
                        machine_set_state(vm, c->target);
        }
        c->done(vm, r, msg, MACHINE_STOP_STEP_NONE, c->userdata);
        free(c);
}

static int machine_simple_call(Machine *vm, uint16_t type, MachineState target, MachineDoneFn done, void *userdata) {
        SimpleCall *c;
        int r;

        r = machine_check_up(vm);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (SimpleCall) { .done = done, .userdata = userdata, .target = target };
        r = machine_control_request(vm, type, on_simple_reply, c);
        if (r < 0)
                free(c);
        return r;
}

int machine_pause(Machine *vm, MachineDoneFn done, void *userdata) {
        return machine_simple_call(vm, CONTROL_TYPE_PAUSE, MACHINE_STATE_PAUSED, done, userdata);
}

int machine_resume(Machine *vm, MachineDoneFn done, void *userdata) {
        return machine_simple_call(vm, CONTROL_TYPE_RESUME, MACHINE_STATE_RUNNING, done, userdata);
}

/* ---- balloon, disks ---- */

typedef struct DeviceCall {
        MachineDoneFn done;
        MachineBalloonStatsFn stats_done;
        void *userdata;
        uint64_t bytes;
        uint32_t index;
} DeviceCall;


/* No reply, or the VMM's own refusal: a message for the caller. r is
 * returned, possibly translated to the errno the callers document. */
static int device_call_error(int r, const ControlReply *reply, bool is_disk, const DeviceCall *c,
                             char *buf, size_t size) {
        if (r < 0) {
                snprintf(buf, size, "%s", r == -ETIMEDOUT ? "the VMM did not answer in time" :
                                          "the VMM could not be reached");
                return r;
        }
        r = reply->status;
        switch (r) {
        case -ENODEV:
                if (is_disk) {
                        snprintf(buf, size, "the VM has no disk %" PRIu32, c->index);
                        return -ENODEV;
                }
                snprintf(buf, size, "the VM has no balloon device (start it with balloon=true)");
                return -EOPNOTSUPP;
        case -EROFS:
                snprintf(buf, size, "disk %" PRIu32 " is read-only", c->index);
                return r;
        case -EOPNOTSUPP:
                snprintf(buf, size, "this majordome-vmm does not support the request");
                return r;
        default:
                snprintf(buf, size, "the VMM refused the request: %s", strerror(-r));
                return r;
        }
}

static void on_set_balloon_reply(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        _cleanup_free_ DeviceCall *c = userdata;
        char msg[128];

        if (r >= 0 && reply->status >= 0) {
                if (vm->balloon_target_bytes != c->bytes) {
                        vm->balloon_target_bytes = c->bytes;
                        (void) machine_save(vm);
                        manager_vm_balloon_changed(vm->manager, vm);
                }
                c->done(vm, 0, NULL, MACHINE_STOP_STEP_NONE, c->userdata);
                return;
        }
        r = device_call_error(r, reply, false, c, msg, sizeof(msg));
        c->done(vm, r, msg, MACHINE_STOP_STEP_NONE, c->userdata);
}

int machine_set_balloon(Machine *vm, uint64_t bytes, MachineDoneFn done, void *userdata) {
        uint8_t payload[CONTROL_BALLOON_REQUEST_SIZE];
        DeviceCall *c;
        int r;

        r = machine_check_up(vm);
        if (r < 0)
                return r;
        if (!vm->balloon)
                return -EOPNOTSUPP;
        if (bytes > vm->memory_bytes)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (DeviceCall) { .done = done, .userdata = userdata, .bytes = bytes };
        control_balloon_request_encode(bytes, payload);
        r = machine_control_request_payload(vm, CONTROL_TYPE_BALLOON, payload, sizeof(payload),
                                            on_set_balloon_reply, c);
        if (r < 0)
                free(c);
        return r;
}

static void stats_waiters_complete(Machine *vm, int r, const char *msg, const ControlBalloonStats *stats) {
        /* Detach first: a callback may ask again, starting a new request. */
        MachineStatsWaiter *w = vm->stats_waiters;

        vm->stats_waiters = NULL;
        vm->n_stats_waiters = 0;
        while (w) {
                MachineStatsWaiter *next = w->next;

                w->done(vm, r, msg, stats, w->userdata);
                free(w);
                w = next;
        }
}

static void on_balloon_stats_reply(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        ControlBalloonStats stats;
        DeviceCall c = {};
        char msg[128];

        if (r >= 0 && reply->status >= 0) {
                r = control_balloon_stats_decode(reply->payload, reply->length, &stats);
                if (r < 0) {
                        stats_waiters_complete(vm, r, "the VMM sent malformed balloon statistics", NULL);
                        return;
                }
                if (vm->balloon_target_bytes != stats.target_bytes ||
                    vm->balloon_actual_bytes != stats.actual_bytes) {
                        vm->balloon_target_bytes = stats.target_bytes;
                        vm->balloon_actual_bytes = stats.actual_bytes;
                        manager_vm_balloon_changed(vm->manager, vm);
                }
                stats_waiters_complete(vm, 0, NULL, &stats);
                return;
        }
        r = device_call_error(r, reply, false, &c, msg, sizeof(msg));
        stats_waiters_complete(vm, r, msg, NULL);
}

int machine_get_balloon_stats(Machine *vm, MachineBalloonStatsFn done, void *userdata) {
        uint8_t payload[CONTROL_BALLOON_STATS_REQUEST_SIZE];
        MachineStatsWaiter *w, **tail;
        bool first;
        int r;

        r = machine_check_up(vm);
        if (r < 0)
                return r;
        if (!vm->balloon)
                return -EOPNOTSUPP;
        if (vm->n_stats_waiters >= MACHINE_BALLOON_STATS_WAITERS_MAX)
                return -EBUSY;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (MachineStatsWaiter) { .done = done, .userdata = userdata };

        /* While a request is out, later callers join it and get its answer:
         * a flood of callers costs the VMM one request, and the control
         * queue one slot. */
        first = !vm->stats_waiters;
        if (first) {
                /* A paused guest cannot answer: do not make the VMM wait for it. */
                control_balloon_stats_request_encode(
                                vm->state == MACHINE_STATE_PAUSED ? 0 : MACHINE_BALLOON_STATS_WAIT_MS, payload);
                r = machine_control_request_payload(vm, CONTROL_TYPE_BALLOON_STATS, payload, sizeof(payload),
                                                    on_balloon_stats_reply, NULL);
                if (r < 0) {
                        free(w);
                        return r;
                }
        }
        for (tail = &vm->stats_waiters; *tail; tail = &(*tail)->next)
                ;
        *tail = w;
        vm->n_stats_waiters++;
        return 0;
}

static void on_resize_reply(Machine *vm, int r, const ControlReply *reply, void *userdata) {
        _cleanup_free_ DeviceCall *c = userdata;
        char msg[128];

        if (r >= 0 && reply->status >= 0) {
                c->done(vm, 0, NULL, MACHINE_STOP_STEP_NONE, c->userdata);
                return;
        }
        r = device_call_error(r, reply, true, c, msg, sizeof(msg));
        c->done(vm, r, msg, MACHINE_STOP_STEP_NONE, c->userdata);
}

int machine_resize_disk(Machine *vm, uint32_t index, uint64_t bytes, MachineDoneFn done, void *userdata) {
        uint8_t payload[CONTROL_DISK_RESIZE_REQUEST_SIZE];
        DeviceCall *c;
        int r;

        r = machine_check_up(vm);
        if (r < 0)
                return r;
        if (index >= vm->n_disks)
                return -ENODEV;
        if (vm->disks_read_only & (UINT32_C(1) << index))
                return -EROFS;
        if (bytes == 0 || bytes % 512 != 0)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (DeviceCall) { .done = done, .userdata = userdata, .bytes = bytes, .index = index };
        control_disk_resize_request_encode(index, bytes, payload);
        r = machine_control_request_payload(vm, CONTROL_TYPE_DISK_RESIZE, payload, sizeof(payload), on_resize_reply, c);
        if (r < 0)
                free(c);
        return r;
}

/* ---- live shares ---- */

static MachineShare *live_find(Machine *vm, const char *tag) {
        for (unsigned i = 0; i < vm->n_live; i++)
                if (strcmp(vm->live[i].tag, tag) == 0)
                        return &vm->live[i];
        return NULL;
}

int machine_share_live(Machine *vm, int dir_fd, const char *path, const char *tag, bool read_only) {
        MachineShare *sh;
        char *copy;
        int r;

        if (!vm->live_shares)
                return -EOPNOTSUPP;
        r = machine_check_up(vm);
        if (r < 0)
                return r;
        if (live_find(vm, tag) || strlen(tag) > MACHINE_SHARE_TAG_MAX)
                return -EEXIST;
        if (vm->n_live >= MACHINE_LIVE_SHARES_MAX)
                return -E2BIG;
        if (!live_shares_present(vm->live_dir))
                return -ESTALE;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        r = live_shares_add(vm->live_dir, dir_fd, tag, read_only);
        if (r < 0) {
                free(copy);
                return r;
        }
        sh = &vm->live[vm->n_live++];
        *sh = (MachineShare) { .fd = -EBADF, .path = copy, .read_only = read_only };
        strcpy(sh->tag, tag);
        (void) machine_save(vm);
        manager_vm_shares_changed(vm->manager, vm);
        return 0;
}

int machine_unshare_live(Machine *vm, const char *tag) {
        MachineShare *sh = live_find(vm, tag);
        int r;

        if (!sh)
                return -ENOENT;
        if (!live_shares_present(vm->live_dir))
                return -ESTALE;
        r = live_shares_remove(vm->live_dir, tag);
        if (r < 0)
                return r;
        machine_share_done(sh);
        *sh = vm->live[--vm->n_live];
        vm->live[vm->n_live] = (MachineShare) { .fd = -EBADF };
        (void) machine_save(vm);
        manager_vm_shares_changed(vm->manager, vm);
        return 0;
}
