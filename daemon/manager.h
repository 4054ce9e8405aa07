/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* majordomed's core: the VM registry, limits, vsock CID allocation and the
 * daemon's configuration. The wire layer is manager-dbus.c; it hears of
 * changes through ManagerHooks. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MANAGER_MAX_VMS_DEFAULT 64
#define MANAGER_MAX_VMS_LIMIT 4096
#define MANAGER_CID_MIN 3                /* 0-2 are reserved by vsock */
#define MANAGER_CID_MAX UINT32_C(0xfffffffe) /* VMADDR_CID_ANY is 0xffffffff */

typedef struct AuthQuery AuthQuery;
typedef struct ManagerHooks ManagerHooks;

struct Manager {
        sd_event *event;
        sd_bus *bus;
        bool user;              /* session bus: only our uid may act */
        char *runtime_dir;
        char *vmm_path;
        unsigned max_vms;
        uint64_t console_log_max; /* each VM's console log, bytes (VMM --serial-max-size) */

        Machine *vms;
        unsigned n_vms;
        uint32_t next_cid;

        AuthQuery *auth_queries;
        sd_event_source *auth_sweep;    /* frees answered queries (auth.c) */
        sd_bus_slot *auth_name_watch;   /* drops those of callers that left */

        const ManagerHooks *hooks;      /* the wire layer's; NULL: none */
};

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);

Machine *manager_get_vm(Manager *m, const char *name);
Machine *manager_get_vm_by_path(Manager *m, const char *path);
/* Registers a VM made by machine_new(); the manager owns it from then on.
 * -EEXIST for a taken name, -EUSERS over max_vms. */
int manager_add_vm(Manager *m, Machine *vm);
/* Unlinks and frees. */
void manager_remove_vm(Manager *m, Machine *vm);

/* A CID >= MANAGER_CID_MIN not used by any VM; -EADDRINUSE when none. */
int manager_allocate_cid(Manager *m, uint32_t *ret);

/* Reads the runtime directory and adopts every live VMM; stale entries are
 * removed. Returns the number adopted. */
int manager_adopt_vms(Manager *m);

/* What the core tells the wire layer: the D-Bus layer (manager-dbus.c,
 * machine-dbus.c) sets Manager.hooks in manager_bus_register(). The core calls
 * the manager_vm_*() functions below, which log what is worth logging and
 * call the hook if there is one, so the core runs (and is unit-tested)
 * without the D-Bus layer linked. */
typedef struct ManagerHooks {
        /* The VM's object exists now (InterfacesAdded), and is about to go
         * (InterfacesRemoved), while it is still registered. */
        void (*machine_added)(Manager *m, Machine *vm);
        void (*machine_removed)(Manager *m, Machine *vm);
        void (*machine_state_changed)(Manager *m, Machine *vm);
        /* The VMM said which PCI devices it built (Devices). */
        void (*machine_devices_changed)(Manager *m, Machine *vm);
        /* The shared directories are known (Shares). */
        void (*machine_shares_changed)(Manager *m, Machine *vm);
        /* The GPU is known (Gpu). */
        void (*machine_gpu_changed)(Manager *m, Machine *vm);
        /* The VMM's scope is known, or is none after all (Scope). */
        void (*machine_scope_changed)(Manager *m, Machine *vm);
        /* BalloonTargetBytes or BalloonActualBytes changed. */
        void (*machine_balloon_changed)(Manager *m, Machine *vm);
        void (*machine_started)(Manager *m, Machine *vm);
        /* Called once the VM is gone; the VM is removed right after. */
        void (*machine_stopped)(Manager *m, Machine *vm);
        /* The guest kernel panicked: GuestPanicked, once per VM. */
        void (*machine_guest_panicked)(Manager *m, Machine *vm);
        /* reason: already escaped, valid UTF-8. */
        void (*machine_device_error)(Manager *m, Machine *vm, uint8_t slot, const char *device, const char *reason);
        void (*machine_count_changed)(Manager *m);
} ManagerHooks;

void manager_vm_added(Manager *m, Machine *vm);
void manager_vm_removed(Manager *m, Machine *vm);
void manager_vm_state_changed(Manager *m, Machine *vm);
void manager_vm_devices_changed(Manager *m, Machine *vm);
void manager_vm_shares_changed(Manager *m, Machine *vm);
void manager_vm_gpu_changed(Manager *m, Machine *vm);
void manager_vm_scope_changed(Manager *m, Machine *vm);
void manager_vm_balloon_changed(Manager *m, Machine *vm);
void manager_vm_started(Manager *m, Machine *vm);
void manager_vm_stopped(Manager *m, Machine *vm);
void manager_vm_guest_panicked(Manager *m, Machine *vm);
void manager_vm_device_error(Manager *m, Machine *vm, uint8_t slot, const char *device, const char *reason);
void manager_vm_count_changed(Manager *m);

#ifdef __cplusplus
}
#endif
