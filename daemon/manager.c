/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/manager.h"
#include "daemon/machine-adopt.h"

int manager_new(Manager **ret) {
        Manager *m;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->max_vms = MANAGER_MAX_VMS_DEFAULT;
        m->console_log_max = MACHINE_CONSOLE_LOG_MAX_DEFAULT;
        m->next_cid = MANAGER_CID_MIN;
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Frees our bookkeeping only: the VMMs keep running (a restarted
         * daemon adopts them), and their state files stay. */
        while (m->vms) {
                Machine *vm = m->vms;

                m->vms = vm->next;
                machine_free(vm);
        }
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        free(m->runtime_dir);
        free(m->vmm_path);
        free(m);
        return NULL;
}

Machine *manager_get_vm(Manager *m, const char *name) {
        for (Machine *vm = m->vms; vm; vm = vm->next)
                if (strcmp(vm->name, name) == 0)
                        return vm;
        return NULL;
}

Machine *manager_get_vm_by_path(Manager *m, const char *path) {
        for (Machine *vm = m->vms; vm; vm = vm->next)
                if (strcmp(vm->path, path) == 0)
                        return vm;
        return NULL;
}

int manager_add_vm(Manager *m, Machine *vm) {
        Machine **tail;

        if (manager_get_vm(m, vm->name))
                return -EEXIST;
        if (m->n_vms >= m->max_vms)
                return -EUSERS;
        /* Keep the registry in insertion order: ListVms lists oldest first. */
        for (tail = &m->vms; *tail; tail = &(*tail)->next)
                ;
        vm->next = NULL;
        *tail = vm;
        m->n_vms++;
        manager_vm_added(m, vm);
        manager_vm_count_changed(m);
        return 0;
}

void manager_remove_vm(Manager *m, Machine *vm) {
        for (Machine **p = &m->vms; *p; p = &(*p)->next)
                if (*p == vm) {
                        /* Said while the object can still be found: its
                         * interfaces are listed from it. */
                        manager_vm_removed(m, vm);
                        *p = vm->next;
                        m->n_vms--;
                        manager_vm_count_changed(m);
                        break;
                }
        machine_free(vm);
}

static bool cid_in_use(Manager *m, uint32_t cid) {
        for (Machine *vm = m->vms; vm; vm = vm->next)
                if (vm->cid == cid)
                        return true;
        return false;
}

int manager_allocate_cid(Manager *m, uint32_t *ret) {
        /* Round-robin from the last one handed out, so a CID just freed is
         * not reused at once by a new guest (a stale peer might still talk
         * to it). At most n_vms + 1 probes find a free one. */
        uint32_t cid = m->next_cid;

        for (unsigned i = 0; i <= m->n_vms; i++) {
                if (cid < MANAGER_CID_MIN || cid > MANAGER_CID_MAX)
                        cid = MANAGER_CID_MIN;
                if (!cid_in_use(m, cid)) {
                        m->next_cid = cid + 1;
                        *ret = cid;
                        return 0;
                }
                cid++;
        }
        return -EADDRINUSE;
}

int manager_adopt_vms(Manager *m) {
        DIR *d;
        struct dirent *de;
        int n = 0;

        d = opendir(m->runtime_dir);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                size_t len = strlen(de->d_name);
                Machine *vm = NULL;
                int r;

                if (len <= 6 || strcmp(de->d_name + len - 6, ".state") != 0)
                        continue;
                if (asprintf(&path, "%s/%s", m->runtime_dir, de->d_name) < 0)
                        break;
                r = machine_adopt(m, path, &vm);
                if (r >= 0)
                        r = manager_add_vm(m, vm);
                if (r < 0) {
                        if (vm)
                                vm = machine_free(vm);
                        /* Only an entry whose VMM is known to be gone (or
                         * that names none) is dropped: a live VMM must stay
                         * findable by the next start. */
                        if (r != -ESRCH && r != -EBADMSG) {
                                log_warning_errno(r, "cannot adopt VM entry %s now, keeping it: %m", de->d_name);
                                continue;
                        }
                        log_info_errno(r, "dropping stale VM entry %s: %m", de->d_name);
                        (void) unlink(path);
                        /* Only a socket of a VMM we know is gone is ours to remove. */
                        if (r == -ESRCH) {
                                path[strlen(path) - 6] = 0;
                                strcat(path, ".sock");
                                (void) unlink(path);
                        }
                        continue;
                }
                log_info("re-adopted VM %s (pid %d, %s)", vm->name, (int) vm->pid, machine_state_to_string(vm->state));
                n++;
        }
        closedir(d);
        return n;
}

/* ---- hooks into the wire layer ---- */

#define CALL_HOOK(m, hook, ...)                                 \
        do {                                                    \
                if ((m)->hooks && (m)->hooks->hook)             \
                        (m)->hooks->hook(__VA_ARGS__);          \
        } while (0)

void manager_vm_added(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_added, m, vm);
}

void manager_vm_removed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_removed, m, vm);
}

void manager_vm_state_changed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_state_changed, m, vm);
}

void manager_vm_devices_changed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_devices_changed, m, vm);
}

void manager_vm_shares_changed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_shares_changed, m, vm);
}

void manager_vm_scope_changed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_scope_changed, m, vm);
}

void manager_vm_gpu_changed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_gpu_changed, m, vm);
}

void manager_vm_balloon_changed(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_balloon_changed, m, vm);
}

void manager_vm_started(Manager *m, Machine *vm) {
        log_info("VM %s: running (pid %d)", vm->name, (int) vm->pid);
        CALL_HOOK(m, machine_started, m, vm);
}

void manager_vm_stopped(Manager *m, Machine *vm) {
        log_info("VM %s: stopped (%s, status %d)%s%s", vm->name,
                 machine_stop_reason_to_string(vm->stop_reason), vm->stop_status,
                 vm->stop_message ? ": " : "", vm->stop_message ?: "");
        CALL_HOOK(m, machine_stopped, m, vm);
}

void manager_vm_guest_panicked(Manager *m, Machine *vm) {
        CALL_HOOK(m, machine_guest_panicked, m, vm);
}

void manager_vm_device_error(Manager *m, Machine *vm, uint8_t slot, const char *device, const char *reason) {
        CALL_HOOK(m, machine_device_error, m, vm, slot, device, reason);
}

void manager_vm_count_changed(Manager *m) {
        CALL_HOOK(m, machine_count_changed, m);
}
