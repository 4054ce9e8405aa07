/* SPDX-License-Identifier: BSD-3-Clause */
/* The VMM's scope and its machined record (machined.h). systemd's D-Bus
 * API: StartTransientUnit on org.freedesktop.systemd1 (a scope adopts the
 * PIDs it is given), then RegisterMachine on org.freedesktop.machine1, which
 * finds the scope from the leader's cgroup. The calls are the client side
 * of other services' APIs, so they live in the wire layer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/machined.h"

static bool absent(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      SD_BUS_ERROR_NO_SERVER);
}

static int on_registered(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Machine *vm = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        static bool said;

        vm->scope_slot = sd_bus_slot_unref(vm->scope_slot);
        if (!e) {
                log_info("VM %s: registered with systemd-machined", vm->name);
                return 0;
        }
        if (absent(e)) {
                if (!said)
                        log_info("systemd-machined is not running: VMs are not registered with it");
                said = true;
        } else
                log_warning("VM %s: systemd-machined refused it: %s", vm->name, e->message ?: e->name);
        return 0;
}

static void register_machine(Manager *m, Machine *vm) {
        int r;

        r = sd_bus_call_method_async(m->bus, &vm->scope_slot, "org.freedesktop.machine1", "/org/freedesktop/machine1",
                                     "org.freedesktop.machine1.Manager", "RegisterMachine", on_registered, vm,
                                     "sayssus", vm->name, 0, "majordome", "vm", (uint32_t) vm->pid, "");
        if (r < 0)
                log_warning_errno(r, "VM %s: asking systemd-machined: %m", vm->name);
}

static int on_scope(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Machine *vm = userdata;
        Manager *m = vm->manager;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        static bool said;

        vm->scope_slot = sd_bus_slot_unref(vm->scope_slot);
        /* An adopted VMM (the daemon restarted) is in its scope already. */
        if (e && sd_bus_error_has_name(e, "org.freedesktop.systemd1.UnitExists"))
                e = NULL;
        if (e) {
                if (absent(e)) {
                        if (!said)
                                log_info("the service manager is not on the bus: VMMs stay in the daemon's cgroup");
                        said = true;
                } else
                        log_warning("VM %s: its scope %s: %s", vm->name, vm->scope, e->message ?: e->name);
                if (vm->memory_max || vm->cpu_weight)
                        log_warning("VM %s: memory_max and cpu_weight not applied (no scope)", vm->name);
                free(vm->scope);
                vm->scope = NULL;
                manager_vm_scope_changed(m, vm);
                return 0;
        }
        log_info("VM %s: in %s", vm->name, vm->scope);
        manager_vm_scope_changed(m, vm);
        /* machined is a system service: a user's daemon has none. */
        if (!m->user)
                register_machine(m, vm);
        return 0;
}

void machined_register(Manager *m, Machine *vm) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        if (!m->bus || vm->pid <= 0 || vm->scope || vm->scope_slot)
                return;
        if (asprintf(&vm->scope, "majordome-%s.scope", vm->name) < 0) {
                vm->scope = NULL;
                return;
        }
        r = sd_bus_message_new_method_call(m->bus, &call, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(call, "ss", vm->scope, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sv)(sv)(sv)", "Description", "s", "Majordome VM",
                                          "Slice", "s", "machine.slice", "PIDs", "au", 1, (uint32_t) vm->pid);
        if (r >= 0 && vm->memory_max)
                r = sd_bus_message_append(call, "(sv)", "MemoryMax", "t", vm->memory_max);
        if (r >= 0 && vm->cpu_weight)
                r = sd_bus_message_append(call, "(sv)", "CPUWeight", "t", vm->cpu_weight);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r >= 0)
                r = sd_bus_message_append(call, "a(sa(sv))", 0);
        if (r >= 0)
                r = sd_bus_call_async(m->bus, &vm->scope_slot, call, on_scope, vm, 0);
        if (r < 0) {
                log_warning_errno(r, "VM %s: asking for its scope: %m", vm->name);
                free(vm->scope);
                vm->scope = NULL;
        }
}
