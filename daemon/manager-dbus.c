/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/auth.h"
#include "daemon/errors.h"
#include "common/log.h"
#include "daemon/machined.h"
#include "daemon/manager-dbus.h"
#include "daemon/machine-config-dbus.h"
#include "daemon/machine-dbus.h"
#include "daemon/machine-stop.h"
#include "common/vmm-config.h"

/* ---- methods ---- */

static void start_done(Machine *vm, int r, const char *msg, MachineStopStep step, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r < 0) {
                if (msg)
                        sd_bus_error_set(&error, MAJORDOME_ERROR_VMM_FAILED, msg);
                else
                        machine_bus_error(&error, r, vm->name, "start failed");
                (void) sd_bus_reply_method_error(call, &error);
        } else
                (void) sd_bus_reply_method_return(call, "o", vm->path);
}

static int method_start_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        MachineConfig config;
        AuthCaller caller;
        Machine *vm = NULL;
        const char *name;
        bool block = false;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!machine_name_is_valid(name))
                return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_NAME,
                                         "Invalid VM name '%.80s': 1 to %d of [A-Za-z0-9_.-], "
                                         "not starting with '.' or '-'", name, MACHINE_NAME_MAX);
        r = machine_config_bus_check_size(msg, error);
        if (r < 0)
                return r;
        (void) sd_bus_message_rewind(msg, true);
        r = sd_bus_message_skip(msg, "s");
        if (r < 0)
                return r;
        /* Authorize before opening any file on the caller's behalf. */
        r = auth_check_manage(m, msg, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (manager_get_vm(m, name))
                return sd_bus_error_setf(error, MAJORDOME_ERROR_VM_EXISTS, "VM '%s' already exists", name);
        if (m->n_vms >= m->max_vms)
                return sd_bus_error_setf(error, MAJORDOME_ERROR_LIMIT_REACHED,
                                         "Already %u VMs, the limit", m->n_vms);
        r = auth_caller_from_message(msg, &caller, error);
        if (r < 0)
                return r;

        machine_config_init(&config);
        r = machine_config_bus_parse(m, msg, &caller, &config, &block, error);
        if (r < 0) {
                machine_config_done(&config);
                if (!sd_bus_error_is_set(error))
                        return sd_bus_error_setf(error, MAJORDOME_ERROR_INVALID_CONFIG,
                                                 "config: unreadable (%s)", strerror(-r));
                return r;
        }
        /* A raw block device is the host's storage: opened with the
         * caller's rights, and given to a VM only with the admin action.
         * Asked after parsing, as only then is it known; the files are
         * opened again on the next dispatch. */
        if (block) {
                r = auth_check(m, msg, AUTH_ACTION_MANAGE_DEVICES, error);
                if (r <= 0) {
                        machine_config_done(&config);
                        return r < 0 ? r : 1;
                }
        }

        r = machine_new(m, name, &vm);
        if (r >= 0) {
                vm->owner_uid = caller.uid;
                r = manager_add_vm(m, vm);
        }
        if (r < 0) {
                machine_free(vm);
                machine_config_done(&config);
                return sd_bus_error_set_errnof(error, r, "Cannot create VM '%s': %m", name);
        }
        r = machine_start(vm, &config, start_done, sd_bus_message_ref(msg));
        machine_config_done(&config);
        if (r < 0) {
                sd_bus_message_unref(msg);
                manager_remove_vm(m, vm);
                errno = -r;
                return sd_bus_error_setf(error, MAJORDOME_ERROR_VMM_FAILED, "Cannot start the VMM for '%s': %m", name);
        }
        log_info("VM %s: starting (pid %d)", vm->name, (int) vm->pid);
        return 1;
}

static Machine *lookup_vm(Manager *m, const char *name, sd_bus_error *error) {
        Machine *vm = manager_get_vm(m, name);

        if (!vm)
                sd_bus_error_setf(error, MAJORDOME_ERROR_NO_SUCH_VM, "No VM named '%.80s'", name);
        return vm;
}

static int method_stop_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *mode;
        uint32_t timeout_ms;
        Machine *vm;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = sd_bus_message_read(msg, "ssu", &name, &mode, &timeout_ms);
        if (r < 0)
                return r;
        vm = lookup_vm(m, name, error);
        if (!vm)
                return -ENOENT;
        return machine_bus_stop(vm, msg, mode, timeout_ms, error);
}

typedef struct StopAll {
        sd_bus_message *call;
        unsigned pending;
} StopAll;

static void stop_all_done(Machine *vm, int r, const char *msg, MachineStopStep step, void *userdata) {
        StopAll *s = userdata;

        if (--s->pending > 0)
                return;
        (void) sd_bus_reply_method_return(s->call, NULL);
        sd_bus_message_unref(s->call);
        free(s);
}

static int method_stop_all_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        StopAll *s;
        int r;

        (void) sd_bus_message_rewind(msg, true); /* may be a second dispatch after polkit */
        r = auth_check_manage(m, msg, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Another uid's VM among them: manage-any-vm, asked once. */
        for (Machine *vm = m->vms; vm; vm = vm->next) {
                r = auth_check_owner(m, msg, vm->owner_uid, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }
        if (!m->vms)
                return sd_bus_reply_method_return(msg, NULL);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->call = sd_bus_message_ref(msg);
        /* One extra count held while we loop, so a VM finishing at once
         * cannot reply early. */
        s->pending = 1;
        for (Machine *vm = m->vms, *next; vm; vm = next) {
                next = vm->next;
                s->pending++;
                if (machine_stop(vm, false, 0, stop_all_done, s) < 0)
                        s->pending--;
        }
        stop_all_done(NULL, 0, NULL, MACHINE_STOP_STEP_NONE, s);
        return 1;
}

static int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sso)");
        if (r < 0)
                return r;
        for (Machine *vm = m->vms; vm; vm = vm->next) {
                r = sd_bus_message_append(reply, "(sso)", vm->name, machine_state_to_string(vm->state), vm->path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_vm_info(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        const char *name;
        Machine *vm;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        vm = lookup_vm(m, name, error);
        if (!vm)
                return -ENOENT;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = machine_bus_append_info(reply, vm);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", MAJORDOME_VERSION);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("StartVm", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(config),
                                 "o", SD_BUS_PARAM(vm), method_start_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("StopVm", "ssu", SD_BUS_PARAM(name) SD_BUS_PARAM(mode) SD_BUS_PARAM(timeout_ms),
                                 "s", SD_BUS_PARAM(step), method_stop_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("StopAllVms", NULL, NULL, method_stop_all_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListVms", NULL,, "a(sso)", SD_BUS_PARAM(vms),
                                 method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetVmInfo", "s", SD_BUS_PARAM(name), "a{sv}", SD_BUS_PARAM(info),
                                 method_get_vm_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("VmStarted", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(vm), 0),
        SD_BUS_SIGNAL_WITH_NAMES("VmStopped", "sosis",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(vm) SD_BUS_PARAM(reason) SD_BUS_PARAM(status)
                                 SD_BUS_PARAM(message), 0),
        SD_BUS_SIGNAL_WITH_NAMES("GuestPanicked", "sos",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(vm) SD_BUS_PARAM(action), 0),
        SD_BUS_SIGNAL_WITH_NAMES("DeviceError", "soyss",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(vm) SD_BUS_PARAM(slot) SD_BUS_PARAM(device)
                                 SD_BUS_PARAM(reason), 0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxVms", "u", NULL, offsetof(Manager, max_vms), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("VmCount", "u", NULL, offsetof(Manager, n_vms), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END
};

static void bus_vm_started(Manager *m, Machine *vm) {
        if (!m->bus)
                return;
        (void) sd_bus_emit_signal(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, "VmStarted",
                                  "so", vm->name, vm->path);
        machined_register(m, vm);
}

/* An adopted VM comes with its VMM: its scope is looked up (made) then. */
static void bus_vm_added(Manager *m, Machine *vm) {
        machine_bus_added(m, vm);
        if (vm->pid > 0)
                machined_register(m, vm);
}

static void bus_vm_guest_panicked(Manager *m, Machine *vm) {
        if (m->bus)
                (void) sd_bus_emit_signal(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, "GuestPanicked", "sos",
                                          vm->name, vm->path, control_panic_action_to_string(vm->panic_action) ?: "stop");
}

static void bus_vm_device_error(Manager *m, Machine *vm, uint8_t slot, const char *device, const char *reason) {
        if (m->bus)
                (void) sd_bus_emit_signal(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, "DeviceError", "soyss",
                                          vm->name, vm->path, slot, device, reason);
}

static void bus_vm_stopped(Manager *m, Machine *vm) {
        if (!m->bus)
                return;
        (void) sd_bus_emit_signal(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, "VmStopped", "sosis",
                                  vm->name, vm->path, machine_stop_reason_to_string(vm->stop_reason), vm->stop_status,
                                  vm->stop_message ?: "");
}

static void bus_vm_count_changed(Manager *m) {
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE,
                                                      "VmCount", NULL);
}

static const ManagerHooks bus_hooks = {
        .machine_added = bus_vm_added,
        .machine_removed = machine_bus_removed,
        .machine_state_changed = machine_bus_state_changed,
        .machine_devices_changed = machine_bus_devices_changed,
        .machine_shares_changed = machine_bus_shares_changed,
        .machine_gpu_changed = machine_bus_gpu_changed,
        .machine_scope_changed = machine_bus_scope_changed,
        .machine_balloon_changed = machine_bus_balloon_changed,
        .machine_started = bus_vm_started,
        .machine_stopped = bus_vm_stopped,
        .machine_guest_panicked = bus_vm_guest_panicked,
        .machine_device_error = bus_vm_device_error,
        .machine_count_changed = bus_vm_count_changed,
};

int manager_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, manager_vtable, m);
        if (r < 0)
                return r;
        /* org.freedesktop.DBus.ObjectManager: GetManagedObjects lists every
         * VM with its properties in one answer (vmc list), and
         * InterfacesAdded/InterfacesRemoved follow the registry. */
        r = sd_bus_add_object_manager(m->bus, NULL, MANAGER_BUS_PATH);
        if (r < 0)
                return r;
        r = machine_bus_register(m);
        if (r < 0)
                return r;
        m->hooks = &bus_hooks;
        return 0;
}
