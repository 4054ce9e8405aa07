/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The virtio device framework: what a device (block, console, rng, balloon,
 * vsock, ...) implements, and what the framework does for it.
 *
 * A device is one file in vmm/devices/virtio-NAME.c exporting one const
 * VirtioDeviceOps, listed in the static table of vmm/virtio/device-table.c
 * (STYLE.md habit 2). Its option --NAME[=ARG] on `majordome-vmm run` is
 * built from that table; ops->create() parses ARG.
 *
 * The framework (device.c) owns the device status state machine, feature
 * negotiation, the queues and a worker thread per device: an epoll loop
 * that waits on the queues' notification eventfds (ioeventfds under KVM)
 * and on the fds the device adds with virtio_device_watch_fd(). vCPU
 * threads never run device work: they only reach config_read/config_write.
 * The transport (virtio-pci.c) maps all of this onto PCI.
 *
 * Life cycle, all on the framework's terms:
 *   create (at VM build) -> [driver sets DRIVER_OK] activate (worker thread
 *   not yet running) -> queue_notify ... on the worker -> [driver writes
 *   status 0, or the VM ends] stop on the worker, which ends, then reset
 *   on the writer's thread -> activate again
 *   ... -> destroy. */

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/virtio/queue.h"
#include "seccomp/sandbox.h"
#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Device types (virtio 1.2 §5). PCI device id is 0x1040 + type (§4.1.2). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_GPU 16
#define VIRTIO_ID_FS 26
#define VIRTIO_ID_VIDEO_ENCODER 30     /* reserved; crosvm's virtio-video, docs/video.md */
#define VIRTIO_ID_VIDEO_DECODER 31

/* Device status bits (virtio 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Reserved feature bits (virtio 1.2 §6). The framework offers these
 * itself; devices list only their own bits in ops->features. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MAX_QUEUES 16
#define VIRTIO_MAX_WATCHED_FDS 32
/* virtio-gpu needs one region; PCI config space has room for three. */
#define VIRTIO_MAX_SHM_REGIONS 2
#define VIRTIO_SHM_MAX_SIZE (UINT64_C(1) << 40)

/* A shared memory region (virtio 1.2 §2.10): memory the device owns and
 * the driver maps; what shmid means is the device's (virtio-gpu: 1, host
 * visible). */
typedef struct VirtioShmRegion {
        uint8_t shmid;
        uint64_t size;
} VirtioShmRegion;

typedef struct VirtioDevice VirtioDevice;

/* Called on the worker thread when a watched fd is ready. */
typedef void (*VirtioFdHandler)(void *dev, int fd, uint32_t epoll_events);

typedef struct VirtioDeviceOps {
        const char *name;               /* "rng": the option is --rng */
        const char *option_usage;       /* e.g. "PATH[,ro]" ; NULL: the option takes no argument */
        const char *help;               /* one line for --help */
        uint16_t type;                  /* VIRTIO_ID_* */
        uint16_t n_queues;              /* 1..VIRTIO_MAX_QUEUES */
        uint16_t queue_max_size;        /* power of two, <= VIRTQ_MAX_SIZE */
        uint64_t features;              /* device-specific bits offered */
        uint32_t config_size;           /* bytes of device configuration (§4.1.4.6) */
        /* The seccomp role of the device's worker and its policy file in
         * seccomp/policies/ ("virtio-rng", "virtio-rng.policy"; the file
         * includes device.policy). NULL: the generic VIRTIO_DEVICE_ROLE. */
        const char *seccomp_role;
        const char *seccomp_policy;

        /* `majordome-vmm run`'s --NAME[=ARG]: parses arg (NULL when none
         * was given) into ret, whose kind is already set. A descriptor it
         * opens (a PATH) or takes (fd:N, duplicated) is ret's. -EINVAL for
         * a bad argument. NULL for a device no configuration names (tests). */
        int (*parse)(const char *arg, VmmDevice *ret);
        /* Builds the device from its typed configuration (vmm_config_validate()
         * has seen it; NULL for a device without parse). Descriptors in it
         * stay the caller's: the device duplicates what it keeps. vdev
         * stays valid until destroy. */
        int (*create)(VirtioDevice *vdev, const VmmDevice *config, void **ret);
        void (*destroy)(void *dev);

        /* Device configuration, on vCPU threads (lock what the worker
         * shares). offset + size <= config_size is checked by the caller;
         * size 1, 2, 4 or 8. config_write NULL: writes are ignored. */
        void (*config_read)(void *dev, uint32_t offset, void *data, uint32_t size);
        void (*config_write)(void *dev, uint32_t offset, const void *data, uint32_t size);

        /* The driver set DRIVER_OK: queues[0..n_queues) are what it
         * programmed (q->enabled false for a queue it did not set up),
         * features what was negotiated. The worker starts right after. A
         * negative return marks the device NEEDS_RESET. */
        int (*activate)(void *dev, VirtQueue *queues, uint64_t features);
        /* On the worker: the driver notified queue q (or the device asked
         * with virtio_device_kick()). Pop, process, push; the framework
         * sends the interrupt afterwards if one is due. */
        void (*queue_notify)(void *dev, VirtQueue *q);
        /* On the worker, its last act when it is told to stop (status 0
         * was written, or the VM ends): close what only the worker may
         * touch. A reset runs on a vCPU thread, whose seccomp role has no
         * epoll_ctl or socket calls, so descriptors in the device's own
         * epoll set go here, not in reset. Optional. */
        void (*stop)(void *dev);
        /* The worker has stopped; forget the queues and in-flight work
         * (status 0 was written, §2.4). On a vCPU thread: memory and
         * state only, no descriptors (see stop). Optional. */
        void (*reset)(void *dev);
        /* The fds the device keeps open for its life (for the sandbox's
         * allow-lists); returns how many it wrote, at most max. Optional. */
        unsigned (*fds)(void *dev, int *fds, unsigned max);
        /* Device-specific bits this instance offers on top of `features`
         * (e.g. block's RO for a read-only disk), asked once after create.
         * Optional. */
        uint64_t (*instance_features)(void *dev);
        /* A host directory the device reaches by path while it runs
         * (vsock's PATH_P sockets). Called before the jail, which
         * bind-mounts that directory alone at `jail_path` in its empty
         * root: returns an O_PATH descriptor of it (the caller's to close),
         * and the device uses `jail_path` from then on. Optional. */
        int (*jail_dir)(void *dev, const char *jail_path);

        /* ---- devices whose queues another process runs (vhost-user) ---- */

        /* A device whose PCI identity (type, queues, configuration size)
         * depends on its configuration names the ops of that identity;
         * NULL for a configuration it cannot serve. Optional. */
        const struct VirtioDeviceOps *(*variant)(const VmmDevice *config);
        /* The queues are run elsewhere: the worker leaves the kick
         * eventfds to the back-end and watches one call eventfd per queue
         * instead (virtio_device_call_fd), each signal the queue's
         * interrupt. queue_notify is never called. */
        bool external_queues;
        /* The whole feature set offered, replacing ops->features and the
         * framework's own bits (a back-end's, masked to what the transport
         * supports), asked once after create. Optional. */
        uint64_t (*offered)(void *dev);
        /* On the worker, first thing once it runs after activate (its
         * seccomp role, not a vCPU's: sockets, epoll). Negative: NEEDS_RESET.
         * Optional. */
        int (*worker_start)(void *dev);
} VirtioDeviceOps;

/* ---- for devices ---- */

const GuestMemory *virtio_device_memory(const VirtioDevice *vdev);
uint64_t virtio_device_features(const VirtioDevice *vdev);
/* Adds fd to the worker's epoll set (EPOLLIN etc.) until the next reset.
 * Call from the worker only: activate runs on a vCPU thread, whose seccomp
 * role has no epoll_ctl (kick a queue from activate and watch on that
 * first run, as console and vsock do). -ENOSPC past VIRTIO_MAX_WATCHED_FDS. */
int virtio_device_watch_fd(VirtioDevice *vdev, int fd, uint32_t epoll_events, VirtioFdHandler handler);
int virtio_device_unwatch_fd(VirtioDevice *vdev, int fd);
/* The eventfd a back-end signals for queue `index`'s interrupt
 * (external_queues only; -EBADF otherwise or past n_queues): the
 * transport's irqfd for the queue where it has one (the worker is not
 * woken: QEMU's and crosvm's fast path), else one the worker turns into
 * the interrupt. Ask after DRIVER_OK, when the driver has picked vectors. */
int virtio_device_call_fd(const VirtioDevice *vdev, unsigned index);
/* The eventfd the guest's notifications for queue `index` land on. */
int virtio_device_kick_fd(const VirtioDevice *vdev, unsigned index);
/* Makes the worker call queue_notify for queue `index` soon; any thread. */
void virtio_device_kick(VirtioDevice *vdev, unsigned index);
/* The configuration changed (e.g. a disk was resized): a config-change
 * interrupt (§2.5.1 / §4.1.4.5); any thread. */
void virtio_device_config_changed(VirtioDevice *vdev);
/* The user asked the device to end the VM (a window's close button): the
 * VM stops as if asked to on its control socket. Any thread. */
void virtio_device_request_vm_stop(VirtioDevice *vdev, const char *why);
/* The driver broke a rule the walker cannot see: set NEEDS_RESET and
 * interrupt (§2.1.2); any thread. */
void virtio_device_set_needs_reset(VirtioDevice *vdev, const char *why);

/* Declares a shared memory region for the transport to place and
 * advertise (PCI: in a 64-bit prefetchable BAR, §4.1.4.7); call from
 * create. size: a multiple of 4 KiB up to VIRTIO_SHM_MAX_SIZE, so every
 * region starts page aligned (declare the largest first to keep it huge
 * page aligned). -EINVAL for a bad size, -EEXIST for a shmid declared
 * twice, -ENOSPC past VIRTIO_MAX_SHM_REGIONS. */
int virtio_device_add_shm_region(VirtioDevice *vdev, uint8_t shmid, uint64_t size);

#define VIRTIO_SHM_MAPPINGS_MAX 256

/* Maps [fd_offset, +len) of fd (a memfd, a dma-buf, ...) at [offset, +len)
 * of shared memory region shmid: the guest sees it there from now on, read
 * and write, or read only (its writes are dropped). From the device's
 * worker. Offsets and length page aligned, len > 0, inside the region, not
 * overlapping an earlier mapping: else -EINVAL; -ENOENT for a region not
 * declared, -ENOSPC past VIRTIO_SHM_MAPPINGS_MAX, or what mmap or the
 * hypervisor said. */
int virtio_device_shm_map(VirtioDevice *vdev, uint8_t shmid, uint64_t offset, int fd, uint64_t fd_offset,
                          uint64_t len, bool writable);
/* Undoes the mapping that starts at offset with that length exactly
 * (-ENOENT when there is none): the guest sees the hole again. */
int virtio_device_shm_unmap(VirtioDevice *vdev, uint8_t shmid, uint64_t offset, uint64_t len);
/* Every mapping goes (a device reset, the device's end). */
void virtio_device_shm_unmap_all(VirtioDevice *vdev);
unsigned virtio_device_shm_n_mappings(VirtioDevice *vdev);

/* ---- for the transport and the VM ---- */

/* The declared shared memory regions, in declaration order. The transport
 * packs them in that order from offset 0 of one window (PCI: BAR 2). */
unsigned virtio_device_shm_regions(const VirtioDevice *vdev, const VirtioShmRegion **ret);
/* Where that window decodes in guest-physical memory now (enabled false:
 * nowhere): every mapping is moved there (or taken out). Any thread. */
void virtio_device_shm_set_window(VirtioDevice *vdev, bool enabled, uint64_t gpa);

/* How the framework reaches the transport: interrupts and state. */
typedef struct VirtioTransportOps {
        void (*queue_interrupt)(void *ctx, VirtQueue *q);
        void (*config_interrupt)(void *ctx);
        /* On the worker: the fd of virtio_device_watch_transport_fd() is
         * readable (PCI: the guest EOI'd the INTx line). */
        void (*fd_ready)(void *ctx);
        /* An eventfd whose write is q's interrupt without a VMM thread in
         * the way (PCI: its MSI-X vector's irqfd, when MSI-X is on and q
         * has a vector), or -1. Optional. */
        int (*queue_irqfd)(void *ctx, const VirtQueue *q);
        /* Shared memory: make host memory [host, +len) guest memory at gpa
         * (read only: the guest's writes exit and are dropped), returning
         * a slot for shm_remove; and undo it. Called with the framework's
         * mapping lock held, from a device's worker or the thread that
         * moved the window. Optional: without them nothing is mapped. */
        int (*shm_place)(void *ctx, uint64_t gpa, uint64_t len, void *host, bool writable, unsigned *ret_slot);
        void (*shm_remove)(void *ctx, unsigned slot);
} VirtioTransportOps;

int virtio_device_new_config(const VirtioDeviceOps *ops, const VmmDevice *config, const GuestMemory *mem,
                             VirtioDevice **ret);
/* ops->parse(arg), then virtio_device_new_config() (tests, fuzzers). */
int virtio_device_new(const VirtioDeviceOps *ops, const char *arg, const GuestMemory *mem, VirtioDevice **ret);
VirtioDevice *virtio_device_free(VirtioDevice *vdev);
DEFINE_TRIVIAL_CLEANUP_FUNC(VirtioDevice *, virtio_device_free);
void virtio_device_set_transport(VirtioDevice *vdev, const VirtioTransportOps *ops, void *ctx);
/* Has the worker watch fd for the transport for the device's life, across
 * resets: the transport's fd_ready runs on the worker when it is readable
 * (level-triggered: it must drain fd). One fd; call after
 * virtio_device_set_transport, before the VM starts. -EBUSY for a second. */
int virtio_device_watch_transport_fd(VirtioDevice *vdev, int fd);

const VirtioDeviceOps *virtio_device_ops(const VirtioDevice *vdev);
void *virtio_device_state(const VirtioDevice *vdev);
uint64_t virtio_device_offered(const VirtioDevice *vdev);
VirtQueue *virtio_device_queue(VirtioDevice *vdev, unsigned index); /* NULL past n_queues */
uint8_t virtio_device_status(const VirtioDevice *vdev);
/* Driver writes (virtio 1.2 §2.1, §2.2, §3.1.1): status 0 resets; setting
 * FEATURES_OK fails (the bit stays clear) when the driver took a feature
 * not offered or left out VERSION_1; DRIVER_OK activates. */
void virtio_device_write_status(VirtioDevice *vdev, uint8_t status);
/* The driver wrote queue_enable = 1: checks and maps the queue's rings
 * with the negotiated ring features. A bad queue makes the device
 * NEEDS_RESET (-EINVAL / -EFAULT). Ignored (-EBUSY) after DRIVER_OK. */
int virtio_device_enable_queue(VirtioDevice *vdev, unsigned index);
/* Driver feature words; ignored once FEATURES_OK is set. */
void virtio_device_write_driver_features(VirtioDevice *vdev, unsigned word, uint32_t value);
uint32_t virtio_device_read_driver_features(const VirtioDevice *vdev, unsigned word);
/* A notification for a queue: writes its kick eventfd. Unknown queues and
 * notifications before DRIVER_OK are ignored (§4.1.4.4). */
void virtio_device_notify(VirtioDevice *vdev, unsigned index);
/* The last reason the device went NEEDS_RESET, or NULL. */
const char *virtio_device_error(const VirtioDevice *vdev);
/* How many times the device went NEEDS_RESET in its life. */
unsigned virtio_device_error_count(const VirtioDevice *vdev);
/* fn(ctx) runs, on the thread where it happened, each time something
 * control subscribers are told of changes: the device went NEEDS_RESET,
 * or a device's own state (virtio_device_status_changed()). The VM wakes
 * its event loop with it. Set before the VM starts. */
void virtio_device_set_status_notify(VirtioDevice *vdev, void (*fn)(void *ctx), void *ctx);
/* A device's state that subscribers are told of changed (the balloon
 * reached its target): calls the status notifier, from any thread. */
void virtio_device_status_changed(VirtioDevice *vdev);
/* fn(ctx, why) runs when the device asks for the VM to end (the user
 * closed its window), from the thread that asked. Set before the VM starts. */
void virtio_device_set_stop_notify(VirtioDevice *vdev, void (*fn)(void *ctx, const char *why), void *ctx);
/* Fills up to max fds the device and its framework keep; returns the count. */
unsigned virtio_device_fds(const VirtioDevice *vdev, int *fds, unsigned max);
/* ops->jail_dir, or -ENOENT for a device that reaches no host path. */
int virtio_device_jail_dir(VirtioDevice *vdev, const char *jail_path);

/* The static device table (device-table.c). */
extern const VirtioDeviceOps *const virtio_device_table[];
/* The role of a device worker whose ops name none: device.policy alone. */
#define VIRTIO_DEVICE_ROLE "virtio-device"
#define VIRTIO_DEVICE_POLICY "device.policy"
/* Registers the seccomp role of every device in the table, and the
 * generic one (sandbox_role_register); before sandbox_setup. */
int virtio_device_table_register_roles(void);
/* The seccomp role of ops' workers, registered now if it was not (which
 * fails with -EBUSY once the sandbox has compiled its filters). */
int virtio_device_sandbox_role(const VirtioDeviceOps *ops, SandboxRole *ret);
extern const unsigned virtio_device_table_size;
const VirtioDeviceOps *virtio_device_find(const char *name);
/* The table's entry for a configuration's device kind, or NULL. */
const VirtioDeviceOps *virtio_device_find_kind(uint32_t kind);

#ifdef __cplusplus
}
#endif
