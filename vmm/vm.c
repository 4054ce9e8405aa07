/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "vmm/boot/boot.h"
#include "common/control.h"
#include "vmm/exit-codes.h"
#include "vmm/layout.h"
#include "common/log.h"
#include "seccomp/sandbox.h"
#include "common/string-table.h"
#include "common/util.h"
#include "vmm/vm.h"
#include "vmm/x86.h"

#define KERNEL_MAX (256 * MiB)

static const char *const vm_state_names[_VM_STATE_MAX] = {
        [VM_STATE_CREATED] = "created",
        [VM_STATE_RUNNING] = "running",
        [VM_STATE_PAUSED] = "paused",
        [VM_STATE_STOPPING] = "stopping",
};

DEFINE_STRING_TABLE_TO_STRING(vm_state, VmState, vm_state_names)
DEFINE_STRING_TABLE_FROM_STRING(vm_state, VmState, vm_state_names, _VM_STATE_MAX)

/* The two flags vCPU threads poll without taking the lock. */
static bool vm_exiting(Vm *vm) {
        return __atomic_load_n(&vm->exit_requested, __ATOMIC_SEQ_CST);
}

static bool vm_pausing(Vm *vm) {
        return __atomic_load_n(&vm->pause_requested, __ATOMIC_SEQ_CST);
}

static void flag_set(bool *flag, bool value) {
        __atomic_store_n(flag, value, __ATOMIC_SEQ_CST);
}

_printf_(3, 4) static int vm_error(VmError *e, int exit_code, const char *fmt, ...) {
        va_list ap;

        e->exit_code = exit_code;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static void vm_irq_set(void *ctx, unsigned gsi, bool level) {
        Vm *vm = ctx;

        (void) vm->hv_ops->irq_line(vm->hv, gsi, level);
}

static void vm_on_reset(void *userdata, int value) {
        vm_request_exit(userdata, VMM_EXIT_OK, "guest requested a reset");
}

static void vm_on_debug_exit(void *userdata, int value) {
        vm_request_exit(userdata, value, "guest wrote %d to the debug-exit port", value);
}

static void vm_on_panic(void *userdata, uint32_t events) {
        vm_guest_panicked(userdata, events);
}

static int vm_setup_devices(Vm *vm, VmError *e) {
        int r;

        vm->rx_space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vm->rx_space_fd < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "eventfd: %s", strerror(errno));

        r = serial_new(vm->config.serial_out_fd, vm->rx_space_fd,
                       (IrqLine) { .set = vm_irq_set, .ctx = vm, .gsi = COM1_IRQ }, &vm->serial);
        if (r < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "serial: %s", strerror(-r));
        rtc_init(&vm->rtc);
        i8042_init(&vm->i8042, vm_on_reset, vm);
        vm->debug_exit = (DebugExit) { .exit = vm_on_debug_exit, .userdata = vm };

        /* The platform's port map, in one place. */
        const struct {
                uint16_t port, len;
                const BusDeviceOps *ops;
                void *dev;
                bool present;
        } devices[] = {
                { PORT_COM1, 8, &serial_bus_ops, vm->serial, true },
                { PORT_RTC_INDEX, 2, &rtc_bus_ops, &vm->rtc, true },
                /* 0x60 data .. 0x64 status/command; 0x61 is the in-kernel PIT's. */
                { PORT_I8042_DATA, PORT_I8042_CMD - PORT_I8042_DATA + 1, &i8042_bus_ops, &vm->i8042, true },
                { PORT_DEBUG_EXIT, 1, &debug_exit_bus_ops, &vm->debug_exit, vm->config.debug_exit },
        };
        for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
                if (!devices[i].present)
                        continue;
                r = bus_register(&vm->pio, devices[i].port, devices[i].len, devices[i].ops, devices[i].dev);
                if (r < 0)
                        return vm_error(e, VMM_EXIT_OS_ERROR, "port 0x%x: %s", devices[i].port, strerror(-r));
        }
        return 0;
}

/* BARs go in the MMIO hole below the IOAPIC and LAPIC pages at
 * 0xfec00000 and 0xfee00000: 0xc0000000-0xfc000000. A GPU's 256 MiB
 * host-visible region is naturally aligned, so it alone may take
 * 0xd0000000-0xe0000000; devices after it need the room above (with 512
 * MiB none fitted, and every daemon-started VM with a GPU failed). */
#define PCI_MMIO_BASE GUEST_MMIO_HOLE_START
#define PCI_MMIO_SIZE (960 * MiB)
/* INTx fallback lines: IOAPIC pins 16-23, as PCI interrupts usually are. */
#define PCI_INTX_GSI_BASE 16

/* Any thread: a device went NEEDS_RESET or its state changed; the event
 * loop tells subscribers. */
static void vm_device_status(void *ctx) {
        Vm *vm = ctx;

        (void) !write(vm->status_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

/* A device asked for the VM to end (a GPU window's close button): as a
 * stop request on the control socket, exit code 0 with the reason. */
static void vm_device_stop(void *ctx, const char *why) {
        vm_request_exit(ctx, VMM_EXIT_OK, "%s", why);
}

static int vm_setup_pci(Vm *vm, VmError *e) {
        int r;

        r = pci_bus_init(&vm->pci, &vm->pio, &vm->mmio, PCI_MMIO_BASE, PCI_MMIO_SIZE);
        if (r < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "PCI bus: %s", strerror(-r));
        vm->pci_ready = true;

        for (unsigned i = 0; i < vm->config.n_devices; i++) {
                const VmDeviceConfig *d = &vm->config.devices[i];
                VirtioDevice *vdev;

                r = virtio_device_new_config(d->ops, &d->config, vm->mem, &vdev);
                if (r < 0)
                        return vm_error(e, r == -EINVAL ? VMM_EXIT_USAGE : VMM_EXIT_OS_ERROR, "--%s (device %u): %s",
                                        d->ops->name, i, strerror(-r));
                r = virtio_pci_new(vdev, &vm->pci, vm->hv_ops, vm->hv,
                                   (IrqLine) { .set = vm_irq_set, .ctx = vm, .gsi = PCI_INTX_GSI_BASE + i % 8 },
                                   &vm->virtio[vm->n_virtio]);
                if (r < 0)
                        return vm_error(e, VMM_EXIT_OS_ERROR, "--%s: PCI device: %s", d->ops->name, strerror(-r));
                virtio_device_set_status_notify(vdev, vm_device_status, vm);
                virtio_device_set_stop_notify(vdev, vm_device_stop, vm);
                vm->n_virtio++;
        }
        if (vm->config.pvpanic) {
                r = pvpanic_init(&vm->pvpanic, vm_on_panic, vm);
                if (r >= 0)
                        r = pci_bus_add_device(&vm->pci, &vm->pvpanic.pci, NULL, NULL);
                if (r < 0)
                        return vm_error(e, VMM_EXIT_OS_ERROR, "--pvpanic: PCI device: %s", strerror(-r));
        }
        return 0;
}

static int read_image(int fd, size_t max, const char *what, void **ret, size_t *ret_size, VmError *e) {
        int r;

        r = read_full_fd(fd, max, ret, ret_size);
        if (r == -EFBIG)
                return vm_error(e, VMM_EXIT_BAD_IMAGE, "%s: larger than %zu MiB", what, max / MiB);
        if (r == -EISDIR)
                return vm_error(e, VMM_EXIT_NO_INPUT, "%s: is a directory", what);
        if (r < 0)
                return vm_error(e, VMM_EXIT_NO_INPUT, "%s: %s", what, strerror(-r));
        return 0;
}

int vm_load(Vm *vm, VmError *e) {
        _cleanup_free_ void *kernel = NULL, *initrd = NULL;
        size_t kernel_size = 0, initrd_size = 0;
        BootInfo info;
        BootError berr = {};
        HvBootRegs regs;
        int r;

        *e = (VmError) {};
        r = read_image(vm->config.kernel_fd, KERNEL_MAX, "kernel", &kernel, &kernel_size, e);
        if (r < 0)
                return r;
        if (vm->config.initrd_fd >= 0) {
                r = read_image(vm->config.initrd_fd, vm->config.mem_size, "initrd", &initrd, &initrd_size, e);
                if (r < 0) {
                        if (e->exit_code == VMM_EXIT_BAD_IMAGE)
                                return vm_error(e, VMM_EXIT_BAD_IMAGE,
                                                "initrd: larger than guest RAM (%" PRIu64 " MiB)",
                                                vm->config.mem_size / MiB);
                        return r;
                }
        }

        BootConfig bc = {
                .kernel = kernel,
                .kernel_size = kernel_size,
                .initrd = initrd,
                .initrd_size = initrd_size,
                .cmdline = vm->config.cmdline,
                .n_cpus = vm->n_vcpus,
                .decompress = vm->config.decompress,
        };
        r = boot_load(vm->mem, &bc, &info, &berr);
        if (r < 0)
                return vm_error(e, r == -E2BIG ? VMM_EXIT_USAGE : VMM_EXIT_BAD_IMAGE, "%s",
                                berr.reason[0] ? berr.reason : strerror(-r));

        vm->profile.text_start = info.text_start;
        vm->profile.text_end = info.text_end;

        r = x86_setup_long_mode(vm->mem, info.entry, info.zero_page, &regs);
        if (r < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "boot page tables: %s", strerror(-r));
        /* Only the bootstrap processor starts; the others wait for INIT/SIPI
         * in the in-kernel LAPIC, as on a PC. */
        r = vm->hv_ops->vcpu_set_boot_regs(vm->vcpus[0].hv, &regs);
        if (r < 0)
                return vm_error(e, VMM_EXIT_KVM_FAILURE, "setting boot registers: %s", strerror(-r));
        return 0;
}

int vm_new(const VmConfig *config, Vm **ret, VmError *e) {
        _cleanup_(vm_freep) Vm *vm = NULL;
        int r;

        *e = (VmError) {};
        vm = calloc(1, sizeof(*vm));
        if (!vm)
                return vm_error(e, VMM_EXIT_OS_ERROR, "out of memory");
        vm->config = *config;
        vm->hv_ops = config->hv;
        vm->profile = (GuestProfile) { .fd = config->profile_fd };
        vm->rx_space_fd = -EBADF;
        vm->exit_fd = -EBADF;
        vm->status_fd = -EBADF;
        pthread_mutex_init(&vm->lock, NULL);
        pthread_cond_init(&vm->cond, NULL);
        vm->state = VM_STATE_CREATED;

        vm->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vm->exit_fd < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "eventfd: %s", strerror(errno));
        vm->status_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vm->status_fd < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "eventfd: %s", strerror(errno));

        const char *dev = config->hv_device ?: "/dev/kvm";
        r = vm->hv_ops->vm_create(config->hv_device, &vm->hv);
        if (r == -ENOENT || r == -ENODEV || r == -ENXIO)
                return vm_error(e, VMM_EXIT_NO_KVM, "%s: %s (is KVM enabled on this host?)", dev, strerror(-r));
        if (r == -EACCES || r == -EPERM)
                return vm_error(e, VMM_EXIT_KVM_DENIED, "%s: permission denied (add the user to group kvm)", dev);
        if (r == -ENOSYS)
                return vm_error(e, VMM_EXIT_NO_KVM, "%s: not a KVM device, or its KVM lacks what the VMM needs", dev);
        if (r < 0)
                return vm_error(e, VMM_EXIT_KVM_FAILURE, "creating the VM: %s", strerror(-r));

        /* The hypervisor's limit, and what the MP table has room for. */
        unsigned max_vcpus = MIN(MIN(vm->hv_ops->max_vcpus(vm->hv), boot_max_cpus()), (unsigned) VM_MAX_VCPUS);
        if (config->n_vcpus == 0 || config->n_vcpus > max_vcpus)
                return vm_error(e, VMM_EXIT_USAGE, "--cpus %u: must be between 1 and %u on this host",
                                config->n_vcpus, max_vcpus);
        vm->n_vcpus = config->n_vcpus;

        r = guest_memory_new(config->mem_size, &vm->mem);
        if (r < 0)
                return vm_error(e, VMM_EXIT_OS_ERROR, "guest memory: %s", strerror(-r));
        for (unsigned i = 0; i < vm->mem->n_regions; i++) {
                const GuestRegion *g = &vm->mem->regions[i];
                r = vm->hv_ops->map_memory(vm->hv, i, g->gpa, g->size, g->host);
                if (r < 0)
                        return vm_error(e, VMM_EXIT_KVM_FAILURE, "mapping guest memory: %s", strerror(-r));
        }

        r = vm->hv_ops->create_irqchip(vm->hv);
        if (r < 0)
                return vm_error(e, VMM_EXIT_KVM_FAILURE, "creating the interrupt controllers: %s", strerror(-r));

        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                vm->vcpus[i] = (Vcpu) { .vm = vm, .index = i };
                r = vm->hv_ops->vcpu_create(vm->hv, i, vm->n_vcpus, &vm->vcpus[i].hv);
                if (r < 0)
                        return vm_error(e, VMM_EXIT_KVM_FAILURE, "creating vCPU %u: %s", i, strerror(-r));
        }

        r = vm_setup_devices(vm, e);
        if (r < 0)
                return r;
        r = vm_setup_pci(vm, e);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(vm);
        return 0;
}

Vm *vm_free(Vm *vm) {
        if (!vm)
                return NULL;
        if (vm->state != VM_STATE_CREATED) {
                vm_request_exit(vm, VMM_EXIT_OK, "VM destroyed");
                vm_join(vm);
        }
        /* Device workers stop before the memory they use goes away. */
        for (unsigned i = 0; i < vm->n_virtio; i++)
                virtio_pci_free(vm->virtio[i]);
        if (vm->pci_ready)
                pci_bus_done(&vm->pci);
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                if (vm->vcpus[i].hv)
                        vm->hv_ops->vcpu_destroy(vm->vcpus[i].hv);
        if (vm->hv)
                vm->hv_ops->vm_destroy(vm->hv);
        serial_free(vm->serial);
        guest_memory_free(vm->mem);
        safe_close(vm->rx_space_fd);
        safe_close(vm->exit_fd);
        safe_close(vm->status_fd);
        pthread_cond_destroy(&vm->cond);
        pthread_mutex_destroy(&vm->lock);
        free(vm);
        return NULL;
}

static void vcpu_handle_io(Vm *vm, const HvExit *x) {
        for (uint32_t i = 0; i < x->io.count; i++) {
                uint8_t *data = x->io.data + (size_t) i * x->io.size;
                if (x->io.write)
                        (void) bus_write(&vm->pio, x->io.port, data, x->io.size);
                else
                        (void) bus_read(&vm->pio, x->io.port, data, x->io.size);
        }
}

static void vcpu_handle_mmio(Vm *vm, const HvExit *x) {
        if (x->mmio.write)
                (void) bus_write(&vm->mmio, x->mmio.addr, x->mmio.data, x->mmio.len);
        else
                (void) bus_read(&vm->mmio, x->mmio.addr, x->mmio.data, x->mmio.len);
}

static void vcpu_park(Vm *vm) {
        pthread_mutex_lock(&vm->lock);
        vm->n_parked++;
        pthread_cond_broadcast(&vm->cond);
        while (vm_pausing(vm) && !vm_exiting(vm))
                pthread_cond_wait(&vm->cond, &vm->lock);
        vm->n_parked--;
        pthread_mutex_unlock(&vm->lock);
}

static void *vcpu_thread(void *arg) {
        Vcpu *c = arg;
        Vm *vm = c->vm;
        timer_t profile_timer = NULL;
        bool profiling = false;
        sigset_t mask;
        char name[16];

        snprintf(name, sizeof(name), "vcpu%u", c->index);
        pthread_setname_np(pthread_self(), name);
        /* Only the kick signal reaches a vCPU thread. */
        sigfillset(&mask);
        sigdelset(&mask, HV_KICK_SIGNAL);
        sigdelset(&mask, SIGSEGV);
        sigdelset(&mask, SIGBUS);
        sigdelset(&mask, SIGILL);
        sigdelset(&mask, SIGFPE);
        sigdelset(&mask, SIGABRT);
        sigdelset(&mask, SIGSYS);
        pthread_sigmask(SIG_SETMASK, &mask, NULL);

        if (vm->profile.fd >= 0) {
                int r = profile_thread_start(&profile_timer);

                if (r < 0)
                        log_warning("vCPU %u: --profile-guest timer: %s", c->index, strerror(-r));
                profiling = r >= 0;
        }

        while (!vm_exiting(vm)) {
                HvExit x;
                int r;

                if (vm_pausing(vm)) {
                        vcpu_park(vm);
                        continue;
                }

                r = vm->hv_ops->vcpu_run(c->hv, &x);
                if (r < 0) {
                        vm_request_exit(vm, VMM_EXIT_KVM_FAILURE, "vCPU %u: running the guest failed: %s",
                                        c->index, strerror(-r));
                        break;
                }

                switch (x.kind) {
                case HV_EXIT_IO:
                        vcpu_handle_io(vm, &x);
                        break;
                case HV_EXIT_MMIO:
                        vcpu_handle_mmio(vm, &x);
                        break;
                case HV_EXIT_INTERRUPTED:
                        if (profiling)
                                profile_sample(&vm->profile, vm->hv_ops, c->hv, vm->mem, c->index);
                        break;
                case HV_EXIT_SHUTDOWN:
                        vm_request_exit(vm, VMM_EXIT_TRIPLE_FAULT, "vCPU %u: guest triple fault", c->index);
                        break;
                case HV_EXIT_RESET:
                case HV_EXIT_POWEROFF:
                        vm_request_exit(vm, VMM_EXIT_OK, "guest requested %s", hv_exit_kind_to_string(x.kind));
                        break;
                case HV_EXIT_INTERNAL_ERROR:
                        vm_request_exit(vm, VMM_EXIT_GUEST_FAILURE,
                                        "vCPU %u: the hypervisor could not run guest code (suberror %" PRIu64 ")",
                                        c->index, x.code);
                        break;
                case HV_EXIT_FAIL_ENTRY:
                        vm_request_exit(vm, VMM_EXIT_KVM_FAILURE, "vCPU %u: VM entry failed (reason 0x%" PRIx64 ")",
                                        c->index, x.code);
                        break;
                default:
                        vm_request_exit(vm, VMM_EXIT_KVM_FAILURE, "vCPU %u: unexpected exit %" PRIu64,
                                        c->index, x.code);
                        break;
                }
        }
        if (profiling)
                profile_thread_stop(profile_timer);
        return NULL;
}

int vm_start(Vm *vm) {
        int r;

        vm->started_ns = now_ns();
        if (vm->profile.fd >= 0) {
                r = profile_begin(&vm->profile, vm->started_ns);
                if (r < 0) {
                        vm_request_exit(vm, VMM_EXIT_OS_ERROR, "--profile-guest: %s", strerror(-r));
                        return r;
                }
        }
        pthread_mutex_lock(&vm->lock);
        vm->state = VM_STATE_RUNNING;
        pthread_mutex_unlock(&vm->lock);
        vm_notify_status(vm);

        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                /* The thread installs its seccomp filter before anything else. */
                r = sandbox_thread_create(&vm->vcpus[i].thread, SANDBOX_ROLE_VCPU, vcpu_thread, &vm->vcpus[i]);
                if (r < 0) {
                        vm_request_exit(vm, VMM_EXIT_OS_ERROR, "starting vCPU %u: %s", i, strerror(-r));
                        return r;
                }
                vm->vcpus[i].thread_started = true;
        }
        return 0;
}

static void vm_kick_all(Vm *vm) {
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                vm->hv_ops->vcpu_kick(vm->vcpus[i].hv);
}

int vm_pause(Vm *vm) {
        struct timespec deadline;
        int r = 0;

        pthread_mutex_lock(&vm->lock);
        if (vm->state != VM_STATE_RUNNING) {
                r = vm->state == VM_STATE_PAUSED ? -EALREADY : -EBUSY;
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        flag_set(&vm->pause_requested, true);
        vm_kick_all(vm);

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        while (vm->n_parked < vm->n_vcpus && !vm_exiting(vm) && r == 0) {
                int k = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
                if (k == ETIMEDOUT)
                        r = -ETIMEDOUT;
                else if (vm->n_parked < vm->n_vcpus)
                        vm_kick_all(vm); /* a vCPU may have re-entered the guest before seeing the flag */
        }
        if (r < 0 || vm_exiting(vm)) {
                flag_set(&vm->pause_requested, false);
                pthread_cond_broadcast(&vm->cond);
                pthread_mutex_unlock(&vm->lock);
                return r < 0 ? r : -ESHUTDOWN;
        }
        vm->state = VM_STATE_PAUSED;
        pthread_mutex_unlock(&vm->lock);
        vm_notify_status(vm);
        return 0;
}

int vm_resume(Vm *vm) {
        pthread_mutex_lock(&vm->lock);
        if (vm->state != VM_STATE_PAUSED) {
                int r = vm->state == VM_STATE_RUNNING ? -EALREADY : -EBUSY;
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        flag_set(&vm->pause_requested, false);
        vm->state = VM_STATE_RUNNING;
        pthread_cond_broadcast(&vm->cond);
        pthread_mutex_unlock(&vm->lock);
        vm_notify_status(vm);
        return 0;
}

void vm_request_exit(Vm *vm, int exit_code, const char *fmt, ...) {
        va_list ap;

        pthread_mutex_lock(&vm->lock);
        if (vm_exiting(vm)) {
                pthread_mutex_unlock(&vm->lock);
                return;
        }
        vm->exit_code = exit_code;
        va_start(ap, fmt);
        vsnprintf(vm->exit_reason, sizeof(vm->exit_reason), fmt, ap);
        va_end(ap);
        vm->state = VM_STATE_STOPPING;
        flag_set(&vm->exit_requested, true);
        pthread_cond_broadcast(&vm->cond);
        pthread_mutex_unlock(&vm->lock);

        vm_kick_all(vm);
        (void) !write(vm->exit_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

void vm_join(Vm *vm) {
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                if (!vm->vcpus[i].thread_started)
                        continue;
                /* Kick again until each thread is gone: one may have been
                 * about to enter the guest when the first kick came. */
                for (;;) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_nsec += 10 * 1000 * 1000;
                        if (ts.tv_nsec >= 1000000000) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000;
                        }
                        if (pthread_timedjoin_np(vm->vcpus[i].thread, NULL, &ts) == 0)
                                break;
                        vm->hv_ops->vcpu_kick(vm->vcpus[i].hv);
                }
                vm->vcpus[i].thread_started = false;
        }
}

void vm_notify_status(Vm *vm) {
        (void) !write(vm->status_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

void vm_guest_panicked(Vm *vm, uint32_t events) {
        /* CRASH_LOADED alone: a crash kernel took over and runs on, as in
         * QEMU; it is told, nothing is done. */
        bool act = events & PVPANIC_PANICKED;

        pthread_mutex_lock(&vm->lock);
        vm->panics++;
        vm->panic_events = events;
        if (act && vm->config.on_panic == CONTROL_PANIC_PAUSE)
                /* vm_pause() waits for every vCPU, this one too: the main
                 * loop does it. */
                vm->panic_pause_pending = true;
        pthread_mutex_unlock(&vm->lock);
        /* The event first, so a subscriber hears why before it hears the end. */
        vm_notify_status(vm);
        if (act && vm->config.on_panic != CONTROL_PANIC_PAUSE)
                vm_request_exit(vm, VMM_EXIT_GUEST_PANIC, "the guest kernel panicked (pvpanic events 0x%" PRIx32 ")",
                                events);
}

void vm_get_panic(Vm *vm, uint32_t *ret_panics, uint32_t *ret_events, uint32_t *ret_action) {
        pthread_mutex_lock(&vm->lock);
        *ret_panics = vm->panics;
        *ret_events = vm->panic_events;
        pthread_mutex_unlock(&vm->lock);
        *ret_action = vm->config.on_panic;
}

void vm_handle_pending(Vm *vm) {
        uint64_t n;
        bool pause;

        (void) !read(vm->status_fd, &n, sizeof(n));
        pthread_mutex_lock(&vm->lock);
        pause = vm->panic_pause_pending;
        vm->panic_pause_pending = false;
        pthread_mutex_unlock(&vm->lock);
        if (pause) {
                int r = vm_pause(vm);

                if (r < 0 && r != -EALREADY)
                        log_warning_errno(r, "pausing the VM after its panic: %m");
                else
                        log_info("the guest kernel panicked: VM paused for inspection");
        }
}

VmState vm_get_state(Vm *vm) {
        VmState s;

        pthread_mutex_lock(&vm->lock);
        s = vm->state;
        pthread_mutex_unlock(&vm->lock);
        return s;
}
