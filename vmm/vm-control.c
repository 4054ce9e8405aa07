/* SPDX-License-Identifier: BSD-3-Clause */
/* What the control socket's requests do to a VM: vmm/control-server.c
 * speaks the protocol, this file answers it. */
#include <errno.h>
#include <stdlib.h>

#include "vmm/devices/virtio-balloon.h"
#include "vmm/devices/virtio-block.h"
#include "vmm/devices/vsock.h"
#include "vmm/exit-codes.h"
#include "seccomp/jail.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "vmm/vm-control.h"
#include "vmm/vm.h"

static uint32_t control_state_of(Vm *vm) {
        static const uint32_t states[_VM_STATE_MAX] = {
                [VM_STATE_CREATED] = CONTROL_STATE_STARTING,
                [VM_STATE_RUNNING] = CONTROL_STATE_RUNNING,
                [VM_STATE_PAUSED] = CONTROL_STATE_PAUSED,
                [VM_STATE_STOPPING] = CONTROL_STATE_STOPPING,
        };

        return states[vm_get_state(vm)];
}

static int control_info(void *userdata, ControlInfo *ret) {
        Vm *vm = userdata;

        /* The pid the daemon started, not pid 1 of the jail's namespace. */
        ret->pid = (uint32_t) jail_visible_pid();
        ret->state = control_state_of(vm);
        ret->vcpus = vm->n_vcpus;
        ret->memory_bytes = vm->mem->size;
        ret->uptime_ns = now_ns() - vm->started_ns;
        return 0;
}

/* The guest's vsock CID, from the configuration it was built with; 0 without. */
static uint32_t vm_vsock_cid(Vm *vm) {
        for (unsigned i = 0; i < vm->config.n_devices; i++)
                if (vm->config.devices[i].config.kind == VMM_DEVICE_VSOCK)
                        return vm->config.devices[i].config.vsock.cid;
        return 0;
}

/* The VM's balloon: the first virtio-balloon device, or NULL. */
static VirtioDevice *vm_balloon(Vm *vm) {
        for (unsigned i = 0; i < vm->n_virtio; i++)
                if (virtio_device_ops(vm->virtio[i]->vdev) == &virtio_balloon_ops)
                        return vm->virtio[i]->vdev;
        return NULL;
}

static int control_status(void *userdata, ControlStatus *ret) {
        Vm *vm = userdata;
        ControlReady *r = &ret->ready;
        VirtioDevice *balloon;

        r->state = control_state_of(vm);
        r->vcpus = vm->n_vcpus;
        r->memory_bytes = vm->mem->size;
        r->cid = vm_vsock_cid(vm);
        /* What sits on the PCI bus, the host bridge (slot 0) included. */
        for (unsigned slot = 0; slot < PCI_MAX_SLOTS && r->n_devices < CONTROL_READY_DEVICES_MAX; slot++) {
                const PciDevice *d = vm->pci.slots[slot];

                if (!d)
                        continue;
                for (unsigned i = 0; i < vm->n_virtio; i++)
                        if (&vm->virtio[i]->pci == d) {
                                ret->device_errors[r->n_devices] = virtio_device_error_count(vm->virtio[i]->vdev);
                                ret->device_reasons[r->n_devices] = virtio_device_error(vm->virtio[i]->vdev);
                        }
                r->devices[r->n_devices++] = (ControlDevice) {
                        .vendor_id = get_le16(d->config),
                        .device_id = get_le16(d->config + 2),
                        .slot = (uint8_t) slot,
                };
        }
        vm_get_panic(vm, &ret->panics, &ret->panic_events, &ret->panic_action);
        balloon = vm_balloon(vm);
        if (balloon) {
                VirtioBalloonInfo info;

                if (virtio_balloon_read_info(balloon, 0, &info) >= 0) {
                        ret->balloon = true;
                        ret->balloon_target = info.target_bytes;
                        ret->balloon_actual = info.actual_bytes;
                }
        }
        return 0;
}

static int control_pause(void *userdata) {
        int r = vm_pause(userdata);
        return r == -EBUSY ? -EPERM : r;
}

static int control_resume(void *userdata) {
        int r = vm_resume(userdata);
        return r == -EBUSY ? -EPERM : r;
}

static int control_stop(void *userdata) {
        vm_request_exit(userdata, VMM_EXIT_OK, "stop requested over the control socket");
        return 0;
}

static int control_disk_resize(void *userdata, uint32_t index, uint64_t size_bytes) {
        Vm *vm = userdata;
        VirtioDevice *disk;
        int r;

        r = virtio_block_find(vm->virtio, vm->n_virtio, index, &disk);
        if (r < 0)
                return r;
        return virtio_block_resize(disk, size_bytes);
}

static int control_balloon(void *userdata, uint64_t size_bytes) {
        VirtioDevice *b = vm_balloon(userdata);

        return b ? virtio_balloon_set_target(b, size_bytes) : -ENODEV;
}

static int control_balloon_stats_request(void *userdata, uint32_t timeout_ms, uint64_t *ret_cookie) {
        VirtioDevice *b = vm_balloon(userdata);

        if (!b)
                return -ENODEV;
        return virtio_balloon_request_stats(b, timeout_ms > 0, ret_cookie);
}

static int control_balloon_stats(void *userdata, uint64_t cookie, ControlBalloonStats *ret) {
        VirtioDevice *b = vm_balloon(userdata);
        VirtioBalloonInfo info;
        bool done;
        int r;

        if (!b)
                return -ENODEV;
        done = virtio_balloon_stats_changed(b, cookie);
        r = virtio_balloon_read_info(b, cookie, &info);
        if (r < 0)
                return r;
        *ret = (ControlBalloonStats) {
                .target_bytes = info.target_bytes,
                .actual_bytes = info.actual_bytes,
                .inflated_bytes = info.inflated_bytes,
                .stats_age_ns = info.stats_age_ns,
                .flags = (info.stats_valid ? CONTROL_BALLOON_STATS_VALID : 0) |
                         (info.stats_fresh ? CONTROL_BALLOON_STATS_FRESH : 0),
                .n_stats = MIN(info.n_stats, (unsigned) CONTROL_BALLOON_STAT_TAGS),
        };
        for (unsigned i = 0; i < ret->n_stats; i++)
                ret->stats[i] = (ControlBalloonStat) { .tag = info.stats[i].tag, .value = info.stats[i].value };
        return done;
}

static int control_balloon_stats_fd(void *userdata) {
        VirtioDevice *b = vm_balloon(userdata);

        return b ? virtio_balloon_stats_event_fd(b) : -ENODEV;
}

const ControlOps vm_control_ops = {
        .info = control_info,
        .pause = control_pause,
        .resume = control_resume,
        .stop = control_stop,
        .status = control_status,
        .disk_resize = control_disk_resize,
        .balloon = control_balloon,
        .balloon_stats_request = control_balloon_stats_request,
        .balloon_stats = control_balloon_stats,
        .balloon_stats_fd = control_balloon_stats_fd,
};
