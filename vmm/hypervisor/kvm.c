/* SPDX-License-Identifier: BSD-3-Clause */
/* The KVM backend of hypervisor.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm/hypervisor/hypervisor.h"
#include "vmm/layout.h"
#include "common/macro.h"

#define KVM_MAX_CPUID_ENTRIES 256

/* CPUID 0x40000001 EAX: paravirtual features whose vmcall spins forever
 * under this host's instruction emulator (DESIGN.md), so never offered. */
#define KVM_FEATURE_PV_UNHALT_BIT 7
#define KVM_FEATURE_PV_SEND_IPI_BIT 11
#define KVM_FEATURE_PV_SCHED_YIELD_BIT 13

/* GSIs 0..23 are the PC's pins; MSI routes take GSIs from here up. */
#define MSI_GSI_BASE 24
#define MSI_ROUTES_MAX 1024

typedef struct MsiRoute {
        bool present;
        uint64_t address;
        uint32_t data;
} MsiRoute;

/* RAM takes a few slots from 0; device mappings take these. */
#define EXTRA_SLOT_BASE 32
#define EXTRA_SLOTS 512

struct HvVm {
        int vm_fd;
        int run_size;
        unsigned max_vcpus;
        struct kvm_cpuid2 *cpuid; /* what KVM supports, shaped per vCPU later */

        /* The GSI routing table: KVM_SET_GSI_ROUTING replaces it whole, so
         * we keep it and rewrite it under this lock. */
        pthread_mutex_t routes_lock;
        MsiRoute *msi_routes;     /* [MSI_ROUTES_MAX], GSI MSI_GSI_BASE + i */
        unsigned n_msi_routes;    /* allocated */
        struct kvm_irq_routing *table; /* scratch, room for everything */

        /* Slots for map_extra, EXTRA_SLOT_BASE + i, taken ones set. */
        pthread_mutex_t slots_lock;
        uint64_t extra_slots[EXTRA_SLOTS / 64];
        unsigned n_slots;         /* KVM_CAP_NR_MEMSLOTS */
        bool readonly_mem;        /* KVM_CAP_READONLY_MEM */
};

struct HvVcpu {
        HvVm *vm;
        unsigned index;
        int fd;
        struct kvm_run *run;
        _Atomic(pthread_t) thread;
        atomic_bool have_thread;
};

/* No action: the signal is only there to make KVM_RUN return -EINTR. */
static void kick_handler(int sig) {
}

static int kick_signal_result;

static void kick_signal_install_once(void) {
        struct sigaction sa = { .sa_handler = kick_handler };

        /* No SA_RESTART: KVM_RUN must come back with -EINTR. */
        sigemptyset(&sa.sa_mask);
        kick_signal_result = sigaction(HV_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

static int kick_signal_install(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, kick_signal_install_once);
        return kick_signal_result;
}

static void kvm_vm_destroy(HvVm *vm) {
        if (!vm)
                return;
        safe_close(vm->vm_fd);
        free(vm->cpuid);
        free(vm->msi_routes);
        free(vm->table);
        pthread_mutex_destroy(&vm->routes_lock);
        pthread_mutex_destroy(&vm->slots_lock);
        free(vm);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(HvVm *, kvm_vm_destroy);

static int kvm_vm_create(const char *device, HvVm **ret) {
        _cleanup_(kvm_vm_destroyp) HvVm *vm = NULL;
        _cleanup_close_ int kvm_fd = -EBADF;
        int r, n;

        r = kick_signal_install();
        if (r < 0)
                return r;

        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return -ENOMEM;
        vm->vm_fd = -EBADF;
        pthread_mutex_init(&vm->routes_lock, NULL);
        pthread_mutex_init(&vm->slots_lock, NULL);
        vm->msi_routes = calloc(MSI_ROUTES_MAX, sizeof(MsiRoute));
        vm->table = calloc(1, sizeof(struct kvm_irq_routing) +
                              (48 + MSI_ROUTES_MAX) * sizeof(struct kvm_irq_routing_entry));
        if (!vm->msi_routes || !vm->table)
                return -ENOMEM;

        /* The system descriptor is needed only here: what later code asks
         * of it (the vCPU mmap size, the supported CPUID, the vCPU limit)
         * is kept, and the VM's descriptor does the rest. It is closed on
         * return, so the jailed VMM holds no /dev/kvm descriptor with
         * which it could create more VMs (docs/sandbox.md). */
        kvm_fd = open(device ?: "/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm_fd < 0)
                return -errno;
        if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
                return -ENOSYS;
        /* The capabilities the rest of this file relies on. */
        static const int needed[] = {
                KVM_CAP_IRQCHIP, KVM_CAP_PIT2, KVM_CAP_USER_MEMORY,
                KVM_CAP_EXT_CPUID, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_SIGNAL_MSI,
                KVM_CAP_IRQ_ROUTING, KVM_CAP_IRQFD, KVM_CAP_IOEVENTFD,
        };
        for (size_t i = 0; i < ARRAY_SIZE(needed); i++)
                if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, needed[i]) <= 0)
                        return -ENOSYS;

        vm->run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (vm->run_size < (int) sizeof(struct kvm_run))
                return -ENOSYS;
        n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
        if (n <= 0)
                n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
        vm->max_vcpus = n > 0 ? (unsigned) n : 1;
        n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
        vm->n_slots = n > 0 ? (unsigned) n : 32;
        vm->readonly_mem = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;

        vm->cpuid = calloc(1, sizeof(struct kvm_cpuid2) + KVM_MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2));
        if (!vm->cpuid)
                return -ENOMEM;
        vm->cpuid->nent = KVM_MAX_CPUID_ENTRIES;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0)
                return -errno;

        do
                vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
        while (vm->vm_fd < 0 && errno == EINTR);
        if (vm->vm_fd < 0)
                return -errno;

        *ret = TAKE_PTR(vm);
        return 0;
}

static unsigned kvm_max_vcpus(HvVm *vm) {
        return vm->max_vcpus;
}

static int kvm_map_extra(HvVm *vm, uint64_t gpa, uint64_t size, void *host, bool read_only, unsigned *ret_slot) {
        struct kvm_userspace_memory_region region = {
                .guest_phys_addr = gpa,
                .memory_size = size,
                .userspace_addr = (uintptr_t) host,
                .flags = read_only ? KVM_MEM_READONLY : 0,
        };
        unsigned i;
        int r = 0;

        if (read_only && !vm->readonly_mem)
                return -EOPNOTSUPP;
        pthread_mutex_lock(&vm->slots_lock);
        for (i = 0; i < EXTRA_SLOTS && EXTRA_SLOT_BASE + i < vm->n_slots; i++)
                if (!(vm->extra_slots[i / 64] & (UINT64_C(1) << (i % 64))))
                        break;
        if (i == EXTRA_SLOTS || EXTRA_SLOT_BASE + i >= vm->n_slots) {
                r = -ENOSPC;
                goto out;
        }
        region.slot = EXTRA_SLOT_BASE + i;
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
                r = -errno;
                goto out;
        }
        vm->extra_slots[i / 64] |= UINT64_C(1) << (i % 64);
        *ret_slot = region.slot;
out:
        pthread_mutex_unlock(&vm->slots_lock);
        return r;
}

static void kvm_unmap_extra(HvVm *vm, unsigned slot) {
        /* Size 0 deletes the slot. */
        struct kvm_userspace_memory_region region = { .slot = slot };
        unsigned i = slot - EXTRA_SLOT_BASE;

        if (slot < EXTRA_SLOT_BASE || i >= EXTRA_SLOTS)
                return;
        pthread_mutex_lock(&vm->slots_lock);
        if (vm->extra_slots[i / 64] & (UINT64_C(1) << (i % 64))) {
                (void) ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
                vm->extra_slots[i / 64] &= ~(UINT64_C(1) << (i % 64));
        }
        pthread_mutex_unlock(&vm->slots_lock);
}

static int kvm_map_memory(HvVm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *host) {
        struct kvm_userspace_memory_region region = {
                .slot = slot,
                .guest_phys_addr = gpa,
                .memory_size = size,
                .userspace_addr = (uintptr_t) host,
        };

        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                return -errno;
        return 0;
}

/* The whole routing table, rebuilt and installed; routes_lock held.
 * The PC's interrupt wiring, as QEMU sets it up: ISA IRQs to the PICs, and
 * to the IOAPIC with IRQ0 (the PIT) on pin 2, which is what the MP table
 * tells the guest. KVM's own default would put IRQ0 on pin 0. Then one
 * MSI route per allocated GSI that has one. */
static int routing_commit(HvVm *vm) {
        struct kvm_irq_routing *table = vm->table;
        struct kvm_irq_routing_entry *e = table->entries;
        unsigned n = 0;

        for (unsigned gsi = 0; gsi < 16; gsi++) {
                if (gsi == 2)
                        continue; /* the cascade */
                e[n++] = (struct kvm_irq_routing_entry) {
                        .gsi = gsi,
                        .type = KVM_IRQ_ROUTING_IRQCHIP,
                        .u.irqchip = {
                                .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                                .pin = gsi % 8,
                        },
                };
        }
        for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
                if (gsi == 2)
                        continue;
                e[n++] = (struct kvm_irq_routing_entry) {
                        .gsi = gsi,
                        .type = KVM_IRQ_ROUTING_IRQCHIP,
                        .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi == 0 ? 2 : gsi },
                };
        }
        for (unsigned i = 0; i < vm->n_msi_routes; i++) {
                const MsiRoute *m = &vm->msi_routes[i];
                if (!m->present)
                        continue;
                e[n++] = (struct kvm_irq_routing_entry) {
                        .gsi = MSI_GSI_BASE + i,
                        .type = KVM_IRQ_ROUTING_MSI,
                        .u.msi = {
                                .address_lo = (uint32_t) m->address,
                                .address_hi = (uint32_t) (m->address >> 32),
                                .data = m->data,
                        },
                };
        }
        table->nr = n;
        table->flags = 0;
        if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0)
                return -errno;
        return 0;
}

static int set_pc_gsi_routing(HvVm *vm) {
        int r;

        pthread_mutex_lock(&vm->routes_lock);
        r = routing_commit(vm);
        pthread_mutex_unlock(&vm->routes_lock);
        return r;
}

static int kvm_msi_route_alloc(HvVm *vm, unsigned *ret_gsi) {
        pthread_mutex_lock(&vm->routes_lock);
        if (vm->n_msi_routes >= MSI_ROUTES_MAX) {
                pthread_mutex_unlock(&vm->routes_lock);
                return -ENOSPC;
        }
        *ret_gsi = MSI_GSI_BASE + vm->n_msi_routes++;
        pthread_mutex_unlock(&vm->routes_lock);
        return 0;
}

static int kvm_msi_route_set(HvVm *vm, unsigned gsi, bool present, uint64_t address, uint32_t data) {
        MsiRoute old;
        int r;

        pthread_mutex_lock(&vm->routes_lock);
        if (gsi < MSI_GSI_BASE || gsi - MSI_GSI_BASE >= vm->n_msi_routes) {
                pthread_mutex_unlock(&vm->routes_lock);
                return -EINVAL;
        }
        old = vm->msi_routes[gsi - MSI_GSI_BASE];
        vm->msi_routes[gsi - MSI_GSI_BASE] = (MsiRoute) { .present = present, .address = address, .data = data };
        r = routing_commit(vm);
        if (r < 0)
                vm->msi_routes[gsi - MSI_GSI_BASE] = old;
        pthread_mutex_unlock(&vm->routes_lock);
        return r;
}

static int kvm_irqfd(HvVm *vm, int fd, unsigned gsi, bool assign) {
        struct kvm_irqfd irqfd = {
                .fd = (uint32_t) fd,
                .gsi = gsi,
                .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
        };

        if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
                return -errno;
        return 0;
}

static int kvm_irqfd_resample(HvVm *vm, int fd, int resample_fd, unsigned gsi, bool assign) {
        struct kvm_irqfd irqfd = {
                .fd = (uint32_t) fd,
                .gsi = gsi,
                .flags = assign ? KVM_IRQFD_FLAG_RESAMPLE : KVM_IRQFD_FLAG_DEASSIGN,
                .resamplefd = assign ? (uint32_t) resample_fd : 0,
        };

        if (gsi >= MSI_GSI_BASE)
                return -EINVAL;
        if (assign && ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE) <= 0)
                return -EOPNOTSUPP;
        if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
                return -errno;
        return 0;
}

static int kvm_ioeventfd(HvVm *vm, int fd, uint64_t addr, unsigned len, bool match, uint64_t datamatch, bool assign) {
        struct kvm_ioeventfd io = {
                .datamatch = match ? datamatch : 0,
                .addr = addr,
                .len = len,
                .fd = fd,
                .flags = (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
        };

        if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
                return -errno;
        return 0;
}

static int kvm_create_irqchip(HvVm *vm) {
        struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

        /* Intel needs these two pages out of the guest's way; other
         * implementations (this host's PVM among them) may not care. */
        (void) ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t) { 0xfffbc000 });
        (void) ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000);

        if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
                return -errno;
        if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
                return -errno;
        return set_pc_gsi_routing(vm);
}

static int kvm_irq_line(HvVm *vm, unsigned gsi, bool level) {
        struct kvm_irq_level irq = { .irq = gsi, .level = level };

        if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
                return -errno;
        return 0;
}

static int kvm_signal_msi(HvVm *vm, uint32_t dest_apic_id, uint8_t vector) {
        /* Intel SDM 10.11: fixed delivery, physical destination, edge. */
        struct kvm_msi msi = {
                .address_lo = 0xfee00000u | ((dest_apic_id & 0xff) << 12),
                .address_hi = 0,
                .data = vector,
        };

        if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
                return -errno;
        return 0;
}

static unsigned bits_for(unsigned n) {
        unsigned b = 0;

        while ((1u << b) < n)
                b++;
        return b;
}

/* Shape KVM's supported CPUID into what vCPU `index` of `n` should see. */
static int cpuid_for_vcpu(const HvVm *vm, unsigned index, unsigned n, struct kvm_cpuid2 **ret) {
        size_t size = sizeof(struct kvm_cpuid2) + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
        struct kvm_cpuid2 *c;

        c = malloc(size);
        if (!c)
                return -ENOMEM;
        memcpy(c, vm->cpuid, size);

        for (unsigned i = 0; i < c->nent; i++) {
                struct kvm_cpuid_entry2 *e = &c->entries[i];

                switch (e->function) {
                case 1:
                        /* Initial APIC id, logical processor count, HTT when > 1. */
                        e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) | ((n & 0xff) << 16);
                        if (n > 1)
                                e->edx |= 1u << 28;
                        else
                                e->edx &= ~(1u << 28);
                        break;
                case 4:
                        /* Cores per package - 1 in EAX[31:26]; one thread per core. */
                        e->eax = (e->eax & 0x03ffc3ffu) | (((n - 1) & 0x3f) << 26);
                        break;
                case 0xb:
                case 0x1f:
                        /* Extended topology: SMT level of 1 thread, core level of n. */
                        if (e->index == 0) {
                                e->eax = 0;
                                e->ebx = 1;
                                e->ecx = (1u << 8) | 0;
                        } else if (e->index == 1) {
                                e->eax = bits_for(n);
                                e->ebx = n;
                                e->ecx = (2u << 8) | 1;
                        } else {
                                e->eax = e->ebx = 0;
                                e->ecx = e->index;
                        }
                        e->edx = index;
                        break;
                case 0x40000001:
                        e->eax &= ~((1u << KVM_FEATURE_PV_UNHALT_BIT) |
                                    (1u << KVM_FEATURE_PV_SEND_IPI_BIT) |
                                    (1u << KVM_FEATURE_PV_SCHED_YIELD_BIT));
                        break;
                case 0x80000008:
                        e->ecx = (e->ecx & ~0xffu) | ((n - 1) & 0xff);
                        break;
                }
        }

        *ret = c;
        return 0;
}

/* Intel SDM 10.5.1: wire LINT0 as ExtINT and LINT1 as NMI, as a BIOS does. */
static int setup_lapic_lints(int fd) {
        struct kvm_lapic_state lapic;
        uint32_t *lint0, *lint1;

        if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
                return -errno;
        lint0 = (uint32_t *) &lapic.regs[0x350];
        lint1 = (uint32_t *) &lapic.regs[0x360];
        *lint0 = (*lint0 & ~0x700u) | (7u << 8);
        *lint1 = (*lint1 & ~0x700u) | (4u << 8);
        if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
                return -errno;
        return 0;
}

static void kvm_vcpu_destroy(HvVcpu *v) {
        if (!v)
                return;
        if (v->run && v->run != MAP_FAILED)
                munmap(v->run, v->vm->run_size);
        safe_close(v->fd);
        free(v);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(HvVcpu *, kvm_vcpu_destroy);

static int kvm_vcpu_create(HvVm *vm, unsigned index, unsigned n_vcpus, HvVcpu **ret) {
        _cleanup_(kvm_vcpu_destroyp) HvVcpu *v = NULL;
        _cleanup_free_ struct kvm_cpuid2 *cpuid = NULL;
        struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
        int r;

        if (index >= vm->max_vcpus || n_vcpus == 0 || n_vcpus > vm->max_vcpus)
                return -EINVAL;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->vm = vm;
        v->index = index;
        v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
        if (v->fd < 0)
                return -errno;
        v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED)
                return -errno;

        /* Without KVM_SET_CPUID2 every leaf reads 0 on this host. */
        r = cpuid_for_vcpu(vm, index, n_vcpus, &cpuid);
        if (r < 0)
                return r;
        if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
                return -errno;
        r = setup_lapic_lints(v->fd);
        if (r < 0)
                return r;
        if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
                return -errno;

        *ret = TAKE_PTR(v);
        return 0;
}

static void segment_set(struct kvm_segment *s, uint16_t selector, bool code) {
        *s = (struct kvm_segment) {
                .base = 0,
                .limit = 0xffffffff,
                .selector = selector,
                .type = code ? 0xb : 0x3, /* execute/read accessed, read/write accessed */
                .present = 1,
                .dpl = 0,
                .db = code ? 0 : 1,
                .s = 1,
                .l = code ? 1 : 0,
                .g = 1,
        };
}

static int kvm_vcpu_set_boot_regs(HvVcpu *v, const HvBootRegs *b) {
        struct kvm_sregs sregs;
        struct kvm_regs regs = {
                .rip = b->rip,
                .rsi = b->rsi,
                .rsp = b->rsp,
                .rflags = b->rflags,
        };

        if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
                return -errno;
        segment_set(&sregs.cs, b->code_selector, true);
        segment_set(&sregs.ds, b->data_selector, false);
        sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
        sregs.gdt.base = b->gdt_base;
        sregs.gdt.limit = b->gdt_limit;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr0 = b->cr0;
        sregs.cr3 = b->cr3;
        sregs.cr4 = b->cr4;
        sregs.efer = b->efer;
        if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
                return -errno;
        if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
                return -errno;
        return 0;
}

static int kvm_vcpu_run(HvVcpu *v, HvExit *ret) {
        struct kvm_run *run = v->run;

        if (!atomic_load(&v->have_thread)) {
                atomic_store(&v->thread, pthread_self());
                atomic_store(&v->have_thread, true);
        }

        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
                /* -EAGAIN: seen on a secondary vCPU after INIT/SIPI on this host. */
                if (errno == EINTR || errno == EAGAIN) {
                        run->immediate_exit = 0;
                        *ret = (HvExit) { .kind = HV_EXIT_INTERRUPTED };
                        return 0;
                }
                return -errno;
        }

        switch (run->exit_reason) {
        case KVM_EXIT_IO:
                *ret = (HvExit) {
                        .kind = HV_EXIT_IO,
                        .io = {
                                .port = run->io.port,
                                .size = run->io.size,
                                .write = run->io.direction == KVM_EXIT_IO_OUT,
                                .count = run->io.count,
                                .data = (uint8_t *) run + run->io.data_offset,
                        },
                };
                /* The data area must lie inside the mapping KVM gave us. */
                if (run->io.data_offset >= (uint64_t) v->vm->run_size ||
                    (uint64_t) run->io.size * run->io.count > v->vm->run_size - run->io.data_offset)
                        return -EIO;
                return 0;
        case KVM_EXIT_MMIO:
                *ret = (HvExit) {
                        .kind = HV_EXIT_MMIO,
                        .mmio = {
                                .addr = run->mmio.phys_addr,
                                .data = run->mmio.data,
                                .len = MIN(run->mmio.len, (uint32_t) sizeof(run->mmio.data)),
                                .write = run->mmio.is_write,
                        },
                };
                return 0;
        case KVM_EXIT_INTR:
                *ret = (HvExit) { .kind = HV_EXIT_INTERRUPTED };
                return 0;
        case KVM_EXIT_SHUTDOWN:
                *ret = (HvExit) { .kind = HV_EXIT_SHUTDOWN };
                return 0;
        case KVM_EXIT_SYSTEM_EVENT:
                if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                        *ret = (HvExit) { .kind = HV_EXIT_RESET };
                else
                        *ret = (HvExit) { .kind = HV_EXIT_POWEROFF };
                return 0;
        case KVM_EXIT_INTERNAL_ERROR:
                *ret = (HvExit) { .kind = HV_EXIT_INTERNAL_ERROR, .code = run->internal.suberror };
                return 0;
        case KVM_EXIT_FAIL_ENTRY:
                *ret = (HvExit) {
                        .kind = HV_EXIT_FAIL_ENTRY,
                        .code = run->fail_entry.hardware_entry_failure_reason,
                };
                return 0;
        default:
                *ret = (HvExit) { .kind = HV_EXIT_UNKNOWN, .code = run->exit_reason };
                return 0;
        }
}

static void kvm_vcpu_kick(HvVcpu *v) {
        __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (atomic_load(&v->have_thread))
                pthread_kill(atomic_load(&v->thread), HV_KICK_SIGNAL);
}

static int kvm_vcpu_get_pc(HvVcpu *v, uint64_t *ret_rip, uint64_t *ret_rsp) {
        struct kvm_regs regs;

        if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
                return -errno;
        *ret_rip = regs.rip;
        *ret_rsp = regs.rsp;
        return 0;
}

static int kvm_vcpu_translate(HvVcpu *v, uint64_t gva, uint64_t *ret_gpa) {
        struct kvm_translation t = { .linear_address = gva };

        if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0)
                return -errno;
        if (!t.valid)
                return -EFAULT;
        *ret_gpa = t.physical_address;
        return 0;
}

const HypervisorOps kvm_hypervisor_ops = {
        .name = "kvm",
        .vm_create = kvm_vm_create,
        .vm_destroy = kvm_vm_destroy,
        .max_vcpus = kvm_max_vcpus,
        .map_memory = kvm_map_memory,
        .map_extra = kvm_map_extra,
        .unmap_extra = kvm_unmap_extra,
        .create_irqchip = kvm_create_irqchip,
        .irq_line = kvm_irq_line,
        .signal_msi = kvm_signal_msi,
        .msi_route_alloc = kvm_msi_route_alloc,
        .msi_route_set = kvm_msi_route_set,
        .irqfd = kvm_irqfd,
        .irqfd_resample = kvm_irqfd_resample,
        .ioeventfd = kvm_ioeventfd,
        .vcpu_create = kvm_vcpu_create,
        .vcpu_destroy = kvm_vcpu_destroy,
        .vcpu_set_boot_regs = kvm_vcpu_set_boot_regs,
        .vcpu_run = kvm_vcpu_run,
        .vcpu_kick = kvm_vcpu_kick,
        .vcpu_get_pc = kvm_vcpu_get_pc,
        .vcpu_translate = kvm_vcpu_translate,
};
