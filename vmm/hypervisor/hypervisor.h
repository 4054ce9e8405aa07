/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* What the VMM needs from a hypervisor, so that a backend other than KVM
 * could be added the way crosvm has several. x86-64 only for now. */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct HvVm HvVm;
typedef struct HvVcpu HvVcpu;

/* The signal vcpu_kick() sends. Any delivery of it to a vCPU thread (a
 * timer's too) makes a running vcpu_run() return HV_EXIT_INTERRUPTED. */
#define HV_KICK_SIGNAL SIGUSR1

typedef enum HvExitKind {
        HV_EXIT_IO,
        HV_EXIT_MMIO,
        HV_EXIT_INTERRUPTED,  /* kicked or a signal arrived: look at the VM's state */
        HV_EXIT_SHUTDOWN,     /* triple fault */
        HV_EXIT_RESET,        /* guest asked the platform for a reset */
        HV_EXIT_POWEROFF,
        HV_EXIT_INTERNAL_ERROR,
        HV_EXIT_FAIL_ENTRY,
        HV_EXIT_UNKNOWN,
        _HV_EXIT_KIND_MAX,
} HvExitKind;

typedef struct HvExit {
        HvExitKind kind;
        union {
                struct {
                        uint16_t port;
                        uint8_t size;     /* 1, 2 or 4 */
                        bool write;
                        uint32_t count;   /* string I/O repeats */
                        uint8_t *data;    /* count * size bytes, in the run structure */
                } io;
                struct {
                        uint64_t addr;
                        uint8_t *data;
                        uint32_t len;     /* 1..8 */
                        bool write;
                } mmio;
                uint64_t code;            /* backend-specific detail for failures */
        };
} HvExit;

/* Register state for entering a 64-bit kernel, per the Linux boot protocol. */
typedef struct HvBootRegs {
        uint64_t rip, rsi, rsp, rflags;
        uint64_t cr0, cr3, cr4, efer;
        uint64_t gdt_base;
        uint16_t gdt_limit;
        uint16_t code_selector, data_selector;
} HvBootRegs;

typedef struct HypervisorOps {
        const char *name;

        /* device: the hypervisor's device node, NULL for the default.
         * -ENOENT: no such device; -EACCES: no permission; -ENOSYS: not a
         * hypervisor device, or one without what we need. */
        int (*vm_create)(const char *device, HvVm **ret);
        void (*vm_destroy)(HvVm *vm);
        unsigned (*max_vcpus)(HvVm *vm);
        int (*map_memory)(HvVm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *host);
        /* Memory that comes and goes while the VM runs (a device's shared
         * memory mappings), each in a slot of its own above RAM's; read
         * only: the guest's writes exit as MMIO. Any thread. -ENOSPC when
         * every such slot is taken, -EOPNOTSUPP for read-only memory the
         * hypervisor cannot do. */
        int (*map_extra)(HvVm *vm, uint64_t gpa, uint64_t size, void *host, bool read_only, unsigned *ret_slot);
        void (*unmap_extra)(HvVm *vm, unsigned slot);
        /* PIC, IOAPIC, LAPICs and PIT emulated by the hypervisor. */
        int (*create_irqchip)(HvVm *vm);
        /* KVM_IRQ_LINE: only the main and vCPU threads' seccomp roles
         * allow it; device workers raise lines through irqfds. */
        int (*irq_line)(HvVm *vm, unsigned gsi, bool level);
        int (*signal_msi)(HvVm *vm, uint32_t dest_apic_id, uint8_t vector);

        /* Interrupt routing, a table the backend owns (KVM's GSI routing):
         * the PC's pins plus MSI routes. Allocates a GSI for an MSI route
         * (no route yet). -ENOSPC when none is left. */
        int (*msi_route_alloc)(HvVm *vm, unsigned *ret_gsi);
        /* Points gsi at an MSI (address, data), or removes its route when
         * present is false; the table is installed before returning. */
        int (*msi_route_set)(HvVm *vm, unsigned gsi, bool present, uint64_t address, uint32_t data);
        /* Attaches (assign) or detaches an eventfd that raises gsi when
         * written (KVM_IRQFD). Detach before removing or changing a route
         * that must not fire (see vmm/pci/msix.c). */
        int (*irqfd)(HvVm *vm, int fd, unsigned gsi, bool assign);
        /* A level-triggered line on one of the PC's pins (gsi < 24) that
         * device threads drive without an ioctl (KVM_IRQFD with
         * KVM_IRQFD_FLAG_RESAMPLE): writing fd asserts it; when the guest
         * EOIs the interrupt the hypervisor deasserts it and writes
         * resample_fd, so that the owner asserts it again while its
         * reason stands. Detach (assign false) ignores resample_fd.
         * -EOPNOTSUPP where the hypervisor has no such line. */
        int (*irqfd_resample)(HvVm *vm, int fd, int resample_fd, unsigned gsi, bool assign);
        /* Attaches or detaches an eventfd written, without an exit, when the
         * guest writes len bytes (0: any length) to MMIO address addr,
         * with data == datamatch when match is true (KVM_IOEVENTFD). */
        int (*ioeventfd)(HvVm *vm, int fd, uint64_t addr, unsigned len, bool match, uint64_t datamatch, bool assign);

        int (*vcpu_create)(HvVm *vm, unsigned index, unsigned n_vcpus, HvVcpu **ret);
        void (*vcpu_destroy)(HvVcpu *vcpu);
        int (*vcpu_set_boot_regs)(HvVcpu *vcpu, const HvBootRegs *regs);
        /* 0 and *ret filled, or -errno for a failure of the hypervisor itself. */
        int (*vcpu_run)(HvVcpu *vcpu, HvExit *ret);
        /* Make a running or about-to-run vcpu_run() return HV_EXIT_INTERRUPTED
         * soon; safe from any thread. */
        void (*vcpu_kick)(HvVcpu *vcpu);
        /* For the guest profiler, from the vCPU's own thread between two
         * vcpu_run() calls: its instruction and stack pointers, and a
         * guest-virtual address through the guest's page tables (-EFAULT
         * when nothing maps it). */
        int (*vcpu_get_pc)(HvVcpu *vcpu, uint64_t *ret_rip, uint64_t *ret_rsp);
        int (*vcpu_translate)(HvVcpu *vcpu, uint64_t gva, uint64_t *ret_gpa);
} HypervisorOps;

extern const HypervisorOps kvm_hypervisor_ops;

const char *hv_exit_kind_to_string(HvExitKind k);
HvExitKind hv_exit_kind_from_string(const char *s);

#ifdef __cplusplus
}
#endif
