/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/errors.h"
#include "common/log.h"
#include "daemon/manager-dbus.h"
#include "daemon/machine-config-dbus.h"
#include "daemon/machine-dbus.h"
#include "daemon/machine-stop.h"
#include "common/vmm-config.h"

int machine_bus_error(sd_bus_error *error, int r, const char *what, const char *msg) {
        const char *name;

        switch (r) {
        case -EBUSY:
                name = MAJORDOME_ERROR_BUSY;
                break;
        case -ETIMEDOUT:
                name = MAJORDOME_ERROR_TIMEOUT;
                break;
        case -EOPNOTSUPP:
                name = MAJORDOME_ERROR_NOT_SUPPORTED;
                break;
        case -ESRCH:
                name = MAJORDOME_ERROR_NOT_RUNNING;
                break;
        case -EROFS:
                name = MAJORDOME_ERROR_READ_ONLY;
                break;
        case -EPROTO:
                /* Said whatever the caller's words: the one way out is Kill. */
                return sd_bus_error_setf(error, MAJORDOME_ERROR_VMM_FAILED, "%s: %s%sthe VMM speaks another control "
                                         "protocol version than this daemon (state \"failed\"); StopVm or Kill "
                                         "ends it", what, msg ?: "", msg ? ": " : "");
        case -EINVAL:
        case -ENODEV:
                name = SD_BUS_ERROR_INVALID_ARGS;
                break;
        default:
                name = MAJORDOME_ERROR_VMM_FAILED;
        }
        if (msg)
                return sd_bus_error_setf(error, name, "%s: %s", what, msg);
        errno = -r;
        return sd_bus_error_setf(error, name, "%s: %m", what);
}

/* ---- object lookup ---- */

static int machine_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                               void **found, sd_bus_error *error) {
        Manager *m = userdata;
        Machine *vm;

        vm = manager_get_vm_by_path(m, path);
        if (!vm)
                return 0;
        *found = vm;
        return 1;
}

static int machine_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                   sd_bus_error *error) {
        Manager *m = userdata;
        char **l;
        size_t i = 0;

        l = calloc(m->n_vms + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (Machine *vm = m->vms; vm; vm = vm->next) {
                l[i] = strdup(vm->path);
                if (!l[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return -ENOMEM;
                }
                i++;
        }
        *nodes = l;
        return 0;
}

/* ---- properties ---- */

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;

        return sd_bus_message_append(reply, "s", machine_state_to_string(vm->state));
}

static int property_get_failed_reason(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;

        return sd_bus_message_append(reply, "s", vm->failed_reason ?: "");
}

static int property_get_pid(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) vm->pid);
}

static int property_get_vsock_path(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;

        return sd_bus_message_append(reply, "s", vm->cid > 0 ? vm->vsock_path : "");
}

/* a(qqyyy): vendor id, device id, bus, slot, function of each PCI device. */
static int append_devices(sd_bus_message *m, Machine *vm) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(qqyyy)");
        for (uint32_t i = 0; r >= 0 && i < vm->n_devices; i++) {
                const ControlDevice *d = &vm->devices[i];

                r = sd_bus_message_append(m, "(qqyyy)", d->vendor_id, d->device_id, d->bus, d->slot, d->function);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int property_get_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_devices(reply, userdata);
}

/* a(ssbs): tag, host path, read-only, cache mode of each shared directory. */
static int append_shares(sd_bus_message *m, Machine *vm) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(ssbs)");
        for (unsigned i = 0; r >= 0 && i < vm->n_shares; i++) {
                const MachineShare *sh = &vm->shares[i];

                r = sd_bus_message_append(m, "(ssbs)", sh->tag, sh->path, (int) sh->read_only,
                                          vmm_fs_cache_to_string(sh->cache) ?: "auto");
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int property_get_shares(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_shares(reply, userdata);
}

/* a(ssb): tag, host path, read-only of each live share (the guest finds it
 * as the tag's subdirectory of the live root, MACHINE_LIVE_SHARES_TAG). */
static int append_live_shares(sd_bus_message *m, Machine *vm) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(ssb)");
        for (unsigned i = 0; r >= 0 && i < vm->n_live; i++)
                r = sd_bus_message_append(m, "(ssb)", vm->live[i].tag, vm->live[i].path, (int) vm->live[i].read_only);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int property_get_live_shares(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_live_shares(reply, userdata);
}

static int property_get_live_shares_tag(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error) {
        Machine *vm = userdata;

        return sd_bus_message_append(reply, "s", vm->live_shares ? MACHINE_LIVE_SHARES_TAG : "");
}

/* a{sv}: the GPU as started (backend, width, height, displays, max_memory,
 * context_types, headless); empty without one. context_types "" is the
 * backend's own. */
static int append_gpu(sd_bus_message *m, Machine *vm) {
        char context_types[VMM_GPU_CONTEXT_TYPES_STRING_MAX] = "";
        const MachineGpu *g = &vm->gpu;
        int r;

        (void) vmm_gpu_context_types_to_string(g->context_types, context_types, sizeof(context_types));
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && g->enabled)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                          "backend", "s", vmm_gpu_backend_to_string(g->backend) ?: "2d",
                                          "width", "u", g->width,
                                          "height", "u", g->height,
                                          "displays", "u", g->displays,
                                          "max_memory", "t", g->max_memory,
                                          "context_types", "s", context_types,
                                          "headless", "b", (int) g->headless);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int property_get_scope(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;

        return sd_bus_message_append(reply, "s", vm->scope_slot ? "" : vm->scope ?: "");
}

static int property_get_gpu(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_gpu(reply, userdata);
}

/* One {sv} of GetVmInfo whose value append writes. */
static int append_info_entry(sd_bus_message *reply, const char *key, const char *signature,
                             int (*append)(sd_bus_message *m, Machine *vm), Machine *vm) {
        int r;

        r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', signature);
        if (r >= 0)
                r = append(reply, vm);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int machine_bus_append_info(sd_bus_message *reply, Machine *vm) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                  "Name", "s", vm->name,
                                  "State", "s", machine_state_to_string(vm->state),
                                  "FailedReason", "s", vm->failed_reason ?: "",
                                  "Pid", "u", (uint32_t) vm->pid,
                                  "Cid", "u", vm->cid,
                                  "Vcpus", "u", vm->vcpus,
                                  "MemoryBytes", "t", vm->memory_bytes,
                                  "BalloonTargetBytes", "t", vm->balloon_target_bytes,
                                  "BalloonActualBytes", "t", vm->balloon_actual_bytes,
                                  "StartTimeUsec", "t", vm->start_time_usec,
                                  "LogPath", "s", vm->log_path,
                                  "VsockPath", "s", vm->cid > 0 ? vm->vsock_path : "",
                                  "Disks", "u", (uint32_t) vm->n_disks);
        if (r >= 0)
                r = append_info_entry(reply, "Devices", "a(qqyyy)", append_devices, vm);
        if (r >= 0)
                r = append_info_entry(reply, "Shares", "a(ssbs)", append_shares, vm);
        if (r >= 0)
                r = append_info_entry(reply, "LiveShares", "a(ssb)", append_live_shares, vm);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "LiveSharesTag", "s",
                                          vm->live_shares ? MACHINE_LIVE_SHARES_TAG : "");
        if (r >= 0)
                r = append_info_entry(reply, "Gpu", "a{sv}", append_gpu, vm);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "Scope", "s", vm->scope_slot ? "" : vm->scope ?: "");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "Owner", "u", (uint32_t) vm->owner_uid);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* ---- methods ---- */

static void reply_done(Machine *vm, int r, const char *msg, MachineStopStep step, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        /* The caller may have gone away meanwhile; a failed reply is fine. */
        if (r < 0) {
                machine_bus_error(&error, r, vm->name, msg);
                (void) sd_bus_reply_method_error(call, &error);
        } else
                (void) sd_bus_reply_method_return(call, NULL);
}

static void stop_done(Machine *vm, int r, const char *msg, MachineStopStep step, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r < 0) {
                machine_bus_error(&error, r, vm->name, msg);
                (void) sd_bus_reply_method_error(call, &error);
        } else
                (void) sd_bus_reply_method_return(call, "s", machine_stop_step_to_string(step));
}

/* The VM's asynchronous calls keep a reference to the message for their
 * reply; one that could not start drops it and fails the call now. */
static int call_started(int r, sd_bus_message *msg, Machine *vm, const char *what, sd_bus_error *error) {
        if (r >= 0)
                return 1;
        sd_bus_message_unref(msg);
        return machine_bus_error(error, r, vm->name, what);
}

int machine_bus_stop(Machine *vm, sd_bus_message *msg, const char *mode, uint32_t timeout_ms, sd_bus_error *error) {
        bool kill_now;
        int r;

        if (!mode || mode[0] == 0 || strcmp(mode, "graceful") == 0)
                kill_now = false;
        else if (strcmp(mode, "kill") == 0)
                kill_now = true;
        else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown stop mode '%s' (want \"graceful\" or \"kill\")", mode);
        if (timeout_ms > MACHINE_STOP_TIMEOUT_MS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "timeout_ms %u is over the limit of %u", timeout_ms,
                                         MACHINE_STOP_TIMEOUT_MS_MAX);

        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        return call_started(machine_stop(vm, kill_now, timeout_ms, stop_done, sd_bus_message_ref(msg)),
                            msg, vm, "cannot stop", error);
}

static int method_stop(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;
        const char *mode;
        uint32_t timeout_ms;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "su", &mode, &timeout_ms);
        if (r < 0)
                return r;
        return machine_bus_stop(vm, msg, mode, timeout_ms, error);
}

static int method_kill(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;
        int r;

        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return call_started(machine_stop(vm, true, 0, reply_done, sd_bus_message_ref(msg)),
                            msg, vm, "cannot kill", error);
}

/* Requests other than a stop: allowed while running or paused; a failed
 * VM's refusal names the version mismatch. */
static int check_up(Machine *vm, sd_bus_error *error) {
        int r = machine_check_up(vm);

        if (r == -EPROTO)
                return machine_bus_error(error, r, vm->name, vm->failed_reason);
        if (r < 0)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_RUNNING, "VM '%s' is %s",
                                         vm->name, machine_state_to_string(vm->state));
        return 0;
}

static int method_pause_resume(sd_bus_message *msg, Machine *vm, bool pause, sd_bus_error *error) {
        int r;

        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Idempotent: asking for the state the VM is in succeeds. */
        if ((pause && vm->state == MACHINE_STATE_PAUSED) || (!pause && vm->state == MACHINE_STATE_RUNNING))
                return sd_bus_reply_method_return(msg, NULL);
        r = check_up(vm, error);
        if (r < 0)
                return r;

        return call_started((pause ? machine_pause : machine_resume)(vm, reply_done, sd_bus_message_ref(msg)),
                            msg, vm, pause ? "cannot pause" : "cannot resume", error);
}

static int method_pause(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_pause_resume(msg, userdata, true, error);
}

static int method_resume(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_pause_resume(msg, userdata, false, error);
}


static int method_set_balloon(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;
        uint64_t bytes;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "t", &bytes);
        if (r < 0)
                return r;
        if (bytes > vm->memory_bytes)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Balloon size %" PRIu64 " is larger than the VM's memory (%" PRIu64 ")",
                                         bytes, vm->memory_bytes);
        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_up(vm, error);
        if (r < 0)
                return r;
        if (!vm->balloon)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "VM '%s' has no balloon device (start it with balloon=true)", vm->name);
        return call_started(machine_set_balloon(vm, bytes, reply_done, sd_bus_message_ref(msg)),
                            msg, vm, "cannot set the balloon", error);
}

static void balloon_stats_done(Machine *vm, int r, const char *msg, const ControlBalloonStats *stats, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r < 0) {
                machine_bus_error(&error, r, vm->name, msg);
                (void) sd_bus_reply_method_error(call, &error);
                return;
        }
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{st}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "{st}{st}{st}", "target_bytes", stats->target_bytes,
                                          "actual_bytes", stats->actual_bytes,
                                          "inflated_bytes", stats->inflated_bytes);
        /* The guest's own numbers only once it has sent some. */
        if (r >= 0 && (stats->flags & CONTROL_BALLOON_STATS_VALID))
                r = sd_bus_message_append(reply, "{st}", "stats_age_ns", stats->stats_age_ns);
        for (uint32_t i = 0; r >= 0 && i < stats->n_stats; i++) {
                const char *tag = control_balloon_stat_to_string(stats->stats[i].tag);
                char unknown[32];

                if (!tag) {
                        /* A newer VMM's tag: shown by number, as the protocol asks. */
                        snprintf(unknown, sizeof(unknown), "tag_%u", stats->stats[i].tag);
                        tag = unknown;
                }
                r = sd_bus_message_append(reply, "{st}", tag, stats->stats[i].value);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                machine_bus_error(&error, r, vm->name, "cannot build the reply");
                (void) sd_bus_reply_method_error(call, &error);
        }
}

static int method_get_balloon_stats(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;
        int r;

        /* Read-only: open to every caller. */
        r = check_up(vm, error);
        if (r < 0)
                return r;
        if (!vm->balloon)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "VM '%s' has no balloon device (start it with balloon=true)", vm->name);
        return call_started(machine_get_balloon_stats(vm, balloon_stats_done, sd_bus_message_ref(msg)),
                            msg, vm, "cannot ask for balloon statistics", error);
}

static int method_resize_disk(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;
        uint32_t index;
        uint64_t bytes;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "ut", &index, &bytes);
        if (r < 0)
                return r;
        if (bytes == 0 || bytes % 512 != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Disk size %" PRIu64 " is not a non-zero multiple of 512 bytes", bytes);
        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_up(vm, error);
        if (r < 0)
                return r;
        if (index >= vm->n_disks)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "VM '%s' has no disk %" PRIu32 " (it has %u, counted from 0)",
                                         vm->name, index, vm->n_disks);
        if (vm->disks_read_only & (UINT32_C(1) << index))
                return sd_bus_error_setf(error, MAJORDOME_ERROR_READ_ONLY,
                                         "Disk %" PRIu32 " of VM '%s' is read-only", index, vm->name);
        return call_started(machine_resize_disk(vm, index, bytes, reply_done, sd_bus_message_ref(msg)),
                            msg, vm, "cannot resize the disk", error);
}

/* Shares given at start are devices of their own, fixed for the VM's
 * life (the VMM has no hot-plug). A VM started with live_shares has one
 * more virtio-fs device whose root the daemon owns: ShareDirectory mounts
 * the directory there (machine-live-shares.h), and UnshareDirectory takes
 * it away. Both check what they are given before anything else, so a
 * caller learns of a bad tag or path first. */
static bool tag_taken(Machine *vm, const char *tag) {
        for (unsigned i = 0; i < vm->n_shares; i++)
                if (strcmp(vm->shares[i].tag, tag) == 0)
                        return true;
        for (unsigned i = 0; i < vm->n_live; i++)
                if (strcmp(vm->live[i].tag, tag) == 0)
                        return true;
        return false;
}

static int method_share_directory(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        MachineShare taken[MACHINE_SHARES_MAX + MACHINE_LIVE_SHARES_MAX];
        char tag[MACHINE_SHARE_TAG_MAX + 1];
        _cleanup_close_ int fd = -EBADF;
        Machine *vm = userdata;
        AuthCaller caller;
        ShareOptions o;
        const char *path;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "s", &path);
        if (r < 0)
                return r;
        r = share_path_check("host_path", path, SD_BUS_ERROR_INVALID_ARGS, error);
        if (r < 0)
                return r;
        r = share_options_parse(msg, "options", SD_BUS_ERROR_INVALID_ARGS, false, &o, error);
        if (r < 0)
                return r;
        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (o.tag[0] && tag_taken(vm, o.tag))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "VM '%s' already shares a directory as '%s'", vm->name, o.tag);
        if (!vm->live_shares)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "VM '%s' was started without live_shares: its shares are the ones it "
                                         "started with (start it with live_shares, vmc start --live-shares, to "
                                         "share directories while it runs)", vm->name);
        if (o.cache != VMM_FS_CACHE_AUTO)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "options.cache: a live share has its root's cache mode, auto");
        r = check_up(vm, error);
        if (r < 0)
                return r;
        if (o.tag[0])
                strcpy(tag, o.tag);
        else {
                memcpy(taken, vm->shares, vm->n_shares * sizeof(MachineShare));
                memcpy(taken + vm->n_shares, vm->live, vm->n_live * sizeof(MachineShare));
                machine_share_tag_from_path(path, taken, vm->n_shares + vm->n_live, tag);
        }
        r = auth_caller_from_message(msg, &caller, error);
        if (r < 0)
                return r;
        r = share_open(&caller, "host_path", path, SD_BUS_ERROR_INVALID_ARGS, &fd, error);
        if (r < 0)
                return r;
        r = machine_share_live(vm, fd, path, tag, o.read_only);
        if (r == -E2BIG)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "VM '%s' has %d live shares already",
                                         vm->name, MACHINE_LIVE_SHARES_MAX);
        if (r == -ESTALE)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "VM '%s': its live shares were mounted by an earlier daemon in a mount "
                                         "namespace this one cannot reach; they stay as they are until the VM "
                                         "stops", vm->name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "VM '%s': cannot mount '%s' as '%s': %m",
                                               vm->name, path, tag);
        log_info("VM %s: live share '%s' is %s%s", vm->name, tag, path, o.read_only ? " (read-only)" : "");
        return sd_bus_reply_method_return(msg, "s", tag);
}

static int method_unshare_directory(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Machine *vm = userdata;
        const char *tag;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "s", &tag);
        if (r < 0)
                return r;
        r = auth_check_owner(vm->manager, msg, vm->owner_uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (!tag_taken(vm, tag))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "VM '%s' has no share '%.80s'",
                                         vm->name, tag);
        r = machine_unshare_live(vm, tag);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "VM '%s': '%s' is a share it started with, a device of its own, which "
                                         "stays until the VM stops", vm->name, tag);
        if (r == -ESTALE)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_NOT_SUPPORTED,
                                         "VM '%s': its live shares were mounted by an earlier daemon in a mount "
                                         "namespace this one cannot reach; they stay as they are until the VM "
                                         "stops", vm->name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "VM '%s': cannot unmount '%s': %m", vm->name, tag);
        log_info("VM %s: live share '%s' removed", vm->name, tag);
        return sd_bus_reply_method_return(msg, NULL);
}

static const sd_bus_vtable machine_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", NULL, offsetof(Machine, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FailedReason", "s", property_get_failed_reason, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Owner", "u", NULL, offsetof(Machine, owner_uid), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pid", "u", property_get_pid, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Cid", "u", NULL, offsetof(Machine, cid), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Vcpus", "u", NULL, offsetof(Machine, vcpus), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryBytes", "t", NULL, offsetof(Machine, memory_bytes), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BalloonTargetBytes", "t", NULL, offsetof(Machine, balloon_target_bytes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BalloonActualBytes", "t", NULL, offsetof(Machine, balloon_actual_bytes),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StartTimeUsec", "t", NULL, offsetof(Machine, start_time_usec),
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LogPath", "s", NULL, offsetof(Machine, log_path), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("VsockPath", "s", property_get_vsock_path, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Disks", "u", NULL, offsetof(Machine, n_disks), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Devices", "a(qqyyy)", property_get_devices, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Shares", "a(ssbs)", property_get_shares, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LiveShares", "a(ssb)", property_get_live_shares, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LiveSharesTag", "s", property_get_live_shares_tag, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Gpu", "a{sv}", property_get_gpu, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Scope", "s", property_get_scope, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("Stop", "su", SD_BUS_PARAM(mode) SD_BUS_PARAM(timeout_ms),
                                 "s", SD_BUS_PARAM(step), method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Kill", NULL, NULL, method_kill, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Pause", NULL, NULL, method_pause, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Resume", NULL, NULL, method_resume, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetBalloon", "t", SD_BUS_PARAM(bytes), NULL,,
                                 method_set_balloon, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetBalloonStats", NULL,, "a{st}", SD_BUS_PARAM(stats),
                                 method_get_balloon_stats, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ResizeDisk", "ut", SD_BUS_PARAM(index) SD_BUS_PARAM(bytes), NULL,,
                                 method_resize_disk, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ShareDirectory", "sa{sv}", SD_BUS_PARAM(host_path) SD_BUS_PARAM(options),
                                 "s", SD_BUS_PARAM(tag), method_share_directory, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnshareDirectory", "s", SD_BUS_PARAM(tag), NULL,,
                                 method_unshare_directory, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int machine_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, MACHINE_BUS_PATH_PREFIX, MACHINE_BUS_INTERFACE, machine_vtable,
                                       machine_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(m->bus, NULL, MACHINE_BUS_PATH_PREFIX, machine_node_enumerator, m);
}

void machine_bus_added(Manager *m, Machine *vm) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_object_added(m->bus, vm->path);
        if (r < 0)
                log_debug_errno(r, "InterfacesAdded for %s: %m", vm->name);
}

void machine_bus_removed(Manager *m, Machine *vm) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_object_removed(m->bus, vm->path);
        if (r < 0)
                log_debug_errno(r, "InterfacesRemoved for %s: %m", vm->name);
}

static void emit_vm_properties_changed(Manager *m, Machine *vm, char **names) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed_strv(m->bus, vm->path, MACHINE_BUS_INTERFACE, names);
        if (r < 0)
                log_debug_errno(r, "PropertiesChanged for %s: %m", vm->name);
}

void machine_bus_state_changed(Manager *m, Machine *vm) {
        emit_vm_properties_changed(m, vm, (char *[]) { "State", "FailedReason", "Pid", "Vcpus", "MemoryBytes", NULL });
}

void machine_bus_devices_changed(Manager *m, Machine *vm) {
        emit_vm_properties_changed(m, vm, (char *[]) { "Devices", NULL });
}

void machine_bus_shares_changed(Manager *m, Machine *vm) {
        emit_vm_properties_changed(m, vm, (char *[]) { "Shares", "LiveShares", "LiveSharesTag", NULL });
}

void machine_bus_scope_changed(Manager *m, Machine *vm) {
        emit_vm_properties_changed(m, vm, (char *[]) { "Scope", NULL });
}

void machine_bus_gpu_changed(Manager *m, Machine *vm) {
        emit_vm_properties_changed(m, vm, (char *[]) { "Gpu", NULL });
}

void machine_bus_balloon_changed(Manager *m, Machine *vm) {
        emit_vm_properties_changed(m, vm, (char *[]) { "BalloonTargetBytes", "BalloonActualBytes", NULL });
}
