/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/devices/legacy.h"
#include "vmm/devices/pvpanic.h"
#include "vmm/devices/serial.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/memory.h"
#include "vmm/pci/pci.h"
#include "vmm/profile.h"
#include "vmm/virtio/virtio-pci.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VM_MAX_VCPUS 254
#define VM_REASON_MAX 256

typedef enum VmState {
        VM_STATE_CREATED,
        VM_STATE_RUNNING,
        VM_STATE_PAUSED,
        VM_STATE_STOPPING,
        _VM_STATE_MAX,
} VmState;

const char *vm_state_to_string(VmState s);
VmState vm_state_from_string(const char *s);

/* Virtio devices: at most one PCI slot each, after the host bridge. */
#define VM_MAX_DEVICES 16

typedef struct VmDeviceConfig {
        const VirtioDeviceOps *ops;     /* from virtio_device_table */
        VmmDevice config;               /* its descriptors borrowed */
} VmDeviceConfig;

typedef struct VmConfig {
        const HypervisorOps *hv;
        const char *hv_device;  /* NULL: the backend's default (/dev/kvm) */
        uint64_t mem_size;
        unsigned n_vcpus;
        int kernel_fd;          /* borrowed */
        int initrd_fd;          /* borrowed, -1 for none */
        const char *cmdline;
        int serial_out_fd;      /* borrowed, -1 discards */
        bool debug_exit;
        bool decompress;        /* decompress a bzImage's payload on the host */
        int profile_fd;         /* borrowed, -1: no --profile-guest */
        bool pvpanic;           /* a pvpanic-pci device, after the virtio ones */
        uint32_t on_panic;      /* ControlPanicAction: what a guest panic does */
        VmDeviceConfig devices[VM_MAX_DEVICES];
        unsigned n_devices;
} VmConfig;

/* Why building a VM failed: an exit code of exit-codes.h and one line. */
typedef struct VmError {
        int exit_code;
        char message[VM_REASON_MAX];
} VmError;

typedef struct Vm Vm;

typedef struct Vcpu {
        Vm *vm;
        unsigned index;
        HvVcpu *hv;
        pthread_t thread;
        bool thread_started;
} Vcpu;

struct Vm {
        VmConfig config;
        const HypervisorOps *hv_ops;
        HvVm *hv;
        GuestMemory *mem;

        Bus pio;
        Bus mmio;
        Serial *serial;
        Rtc rtc;
        I8042 i8042;
        DebugExit debug_exit;
        int rx_space_fd;        /* eventfd: the serial receive FIFO drained */
        PciBus pci;
        bool pci_ready;
        VirtioPci *virtio[VM_MAX_DEVICES];
        unsigned n_virtio;
        PvPanic pvpanic;        /* on the bus with config.pvpanic */

        Vcpu vcpus[VM_MAX_VCPUS];
        unsigned n_vcpus;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        VmState state;          /* under lock */
        unsigned n_parked;      /* vCPUs waiting while paused, under lock */
        bool pause_requested;   /* read without the lock: __atomic builtins */
        bool exit_requested;
        int exit_code;          /* under lock, valid once exit_requested */
        char exit_reason[VM_REASON_MAX];
        int exit_fd;            /* eventfd: an exit was requested */
        /* eventfd: what the control socket's events tell changed (written
         * by any thread, read by the main loop, which pushes the events). */
        int status_fd;
        uint32_t panics;        /* under lock: guest panics reported */
        uint32_t panic_events;  /* under lock: the pvpanic bits of the last */
        bool panic_pause_pending; /* under lock: the main loop pauses the vCPUs */

        uint64_t started_ns;
        GuestProfile profile;   /* profile.fd -1 when off */
};

/* Creates the VM, its memory, vCPUs and devices; reads no image. */
int vm_new(const VmConfig *config, Vm **ret, VmError *error);
/* Reads the kernel (and initrd) from config's descriptors, parses and
 * decompresses them into guest memory and sets the boot registers. Called
 * once the process is jailed (docs/sandbox.md): image parsing and five
 * decompressors see hostile input, so they run without privilege. */
int vm_load(Vm *vm, VmError *error);
Vm *vm_free(Vm *vm);
DEFINE_TRIVIAL_CLEANUP_FUNC(Vm *, vm_free);

int vm_start(Vm *vm);
/* Returns once every vCPU has stopped running guest code. */
int vm_pause(Vm *vm);
int vm_resume(Vm *vm);
/* First request wins; stops all vCPUs and wakes exit_fd. */
void vm_request_exit(Vm *vm, int exit_code, const char *fmt, ...) _printf_(3, 4);
/* Waits for every vCPU thread after an exit request. */
void vm_join(Vm *vm);
VmState vm_get_state(Vm *vm);

/* Wakes the main loop to push events (any thread). */
void vm_notify_status(Vm *vm);
/* A guest panic (pvpanic), from a vCPU thread: counted, then, as
 * config.on_panic says, an exit (VMM_EXIT_GUEST_PANIC) or a pause that the
 * main loop carries out (vm_handle_pending()). */
void vm_guest_panicked(Vm *vm, uint32_t events);
void vm_get_panic(Vm *vm, uint32_t *ret_panics, uint32_t *ret_events, uint32_t *ret_action);
/* On the main thread, when status_fd is readable: reads it and does what
 * a vCPU thread may not (pausing every vCPU). */
void vm_handle_pending(Vm *vm);

#ifdef __cplusplus
}
#endif
