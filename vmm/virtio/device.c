/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtio device framework: status, features, queues and the worker
 * thread of each device. Section numbers are those of virtio 1.2.
 *
 * Locking: `lock` serialises the driver's writes (vCPU threads) and the
 * worker's start and stop. The worker never takes it: it only touches the
 * queues it was handed, the atomic status bits and the transport's
 * interrupt path, so a reset may hold the lock while joining the worker. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "seccomp/sandbox.h"
#include "vmm/virtio/device.h"

#define TAG_STOP UINT64_C(0x10000)
#define TAG_WATCH UINT64_C(0x20000)
#define TAG_TRANSPORT UINT64_C(0x30000)

typedef struct Watched {
        int fd;
        VirtioFdHandler handler;
} Watched;

/* One descriptor's range mapped into a shared memory region: our own
 * mapping of it, and the slot the transport placed it in (if placed). */
typedef struct ShmMapping {
        unsigned region;
        uint64_t offset;        /* in the region */
        uint64_t len;
        void *host;
        bool writable;
        bool placed;
        unsigned slot;
} ShmMapping;

struct VirtioDevice {
        const VirtioDeviceOps *ops;
        void *dev;
        const GuestMemory *mem;
        uint64_t offered;

        pthread_mutex_t lock;
        uint8_t status;                 /* __atomic: the worker sets NEEDS_RESET */
        uint64_t driver_features;
        bool worker_running;
        pthread_t worker;

        int epoll_fd;
        int stop_fd;
        int transport_fd;               /* the transport's, watched for good; not ours to close */
        VirtQueue queues[VIRTIO_MAX_QUEUES];
        int call_fds[VIRTIO_MAX_QUEUES];        /* external_queues */
        Watched watched[VIRTIO_MAX_WATCHED_FDS];
        unsigned n_watched;             /* the worker's */
        VirtioShmRegion shm[VIRTIO_MAX_SHM_REGIONS];
        unsigned n_shm;                 /* set during create only */
        /* Shared memory mappings, and where the transport's window is. */
        pthread_mutex_t shm_lock;
        ShmMapping maps[VIRTIO_SHM_MAPPINGS_MAX];
        unsigned n_maps;
        bool window_enabled;
        uint64_t window_gpa;

        const VirtioTransportOps *transport;
        void *transport_ctx;
        const char *error;              /* __atomic */
        unsigned n_errors;              /* __atomic */
        void (*status_notify)(void *ctx);
        void *status_notify_ctx;
        void (*stop_notify)(void *ctx, const char *why);
        void *stop_notify_ctx;
};

const GuestMemory *virtio_device_memory(const VirtioDevice *vdev) {
        return vdev->mem;
}

uint64_t virtio_device_features(const VirtioDevice *vdev) {
        return vdev->driver_features;
}

const VirtioDeviceOps *virtio_device_ops(const VirtioDevice *vdev) {
        return vdev->ops;
}

void *virtio_device_state(const VirtioDevice *vdev) {
        return vdev->dev;
}

uint64_t virtio_device_offered(const VirtioDevice *vdev) {
        return vdev->offered;
}

VirtQueue *virtio_device_queue(VirtioDevice *vdev, unsigned index) {
        return index < vdev->ops->n_queues ? &vdev->queues[index] : NULL;
}

uint8_t virtio_device_status(const VirtioDevice *vdev) {
        return __atomic_load_n(&vdev->status, __ATOMIC_ACQUIRE);
}

const char *virtio_device_error(const VirtioDevice *vdev) {
        return __atomic_load_n(&vdev->error, __ATOMIC_ACQUIRE);
}

unsigned virtio_device_error_count(const VirtioDevice *vdev) {
        return __atomic_load_n(&vdev->n_errors, __ATOMIC_ACQUIRE);
}

void virtio_device_set_status_notify(VirtioDevice *vdev, void (*fn)(void *ctx), void *ctx) {
        vdev->status_notify = fn;
        vdev->status_notify_ctx = ctx;
}

void virtio_device_status_changed(VirtioDevice *vdev) {
        if (vdev->status_notify)
                vdev->status_notify(vdev->status_notify_ctx);
}

void virtio_device_set_stop_notify(VirtioDevice *vdev, void (*fn)(void *ctx, const char *why), void *ctx) {
        vdev->stop_notify = fn;
        vdev->stop_notify_ctx = ctx;
}

void virtio_device_request_vm_stop(VirtioDevice *vdev, const char *why) {
        if (vdev->stop_notify)
                vdev->stop_notify(vdev->stop_notify_ctx, why);
}

int virtio_device_add_shm_region(VirtioDevice *vdev, uint8_t shmid, uint64_t size) {
        if (size == 0 || size % (4 * KiB) || size > VIRTIO_SHM_MAX_SIZE)
                return -EINVAL;
        /* §4.1.4.7: cap.id is unique per device. */
        for (unsigned i = 0; i < vdev->n_shm; i++)
                if (vdev->shm[i].shmid == shmid)
                        return -EEXIST;
        if (vdev->n_shm >= VIRTIO_MAX_SHM_REGIONS)
                return -ENOSPC;
        vdev->shm[vdev->n_shm++] = (VirtioShmRegion) { .shmid = shmid, .size = size };
        return 0;
}

unsigned virtio_device_shm_regions(const VirtioDevice *vdev, const VirtioShmRegion **ret) {
        *ret = vdev->shm;
        return vdev->n_shm;
}

/* Where region i starts in the window: the regions are packed in order. */
static uint64_t shm_region_start(const VirtioDevice *vdev, unsigned region) {
        uint64_t off = 0;

        for (unsigned i = 0; i < region; i++)
                off += vdev->shm[i].size;
        return off;
}

/* shm_lock held. A mapping the guest can see only while the window decodes. */
static int shm_place(VirtioDevice *vdev, ShmMapping *m) {
        uint64_t gpa = vdev->window_gpa + shm_region_start(vdev, m->region) + m->offset;
        int r;

        if (m->placed || !vdev->window_enabled || !vdev->transport || !vdev->transport->shm_place)
                return 0;
        r = vdev->transport->shm_place(vdev->transport_ctx, gpa, m->len, m->host, m->writable, &m->slot);
        if (r < 0)
                return r;
        m->placed = true;
        return 0;
}

static void shm_remove(VirtioDevice *vdev, ShmMapping *m) {
        if (!m->placed)
                return;
        vdev->transport->shm_remove(vdev->transport_ctx, m->slot);
        m->placed = false;
}

int virtio_device_shm_map(VirtioDevice *vdev, uint8_t shmid, uint64_t offset, int fd, uint64_t fd_offset,
                          uint64_t len, bool writable) {
        const uint64_t page = 4 * KiB;
        unsigned region = vdev->n_shm;
        ShmMapping *m;
        int r;

        for (unsigned i = 0; i < vdev->n_shm; i++)
                if (vdev->shm[i].shmid == shmid)
                        region = i;
        if (region == vdev->n_shm)
                return -ENOENT;
        /* §2.10: a mapping lies inside its region; pages, never parts. */
        if (len == 0 || offset % page || fd_offset % page || len % page || offset > vdev->shm[region].size ||
            len > vdev->shm[region].size - offset || fd_offset > (uint64_t) INT64_MAX - len)
                return -EINVAL;

        pthread_mutex_lock(&vdev->shm_lock);
        for (unsigned i = 0; i < vdev->n_maps; i++) {
                const ShmMapping *o = &vdev->maps[i];

                if (o->region == region && offset < o->offset + o->len && o->offset < offset + len) {
                        r = -EINVAL;
                        goto out;
                }
        }
        if (vdev->n_maps >= VIRTIO_SHM_MAPPINGS_MAX) {
                r = -ENOSPC;
                goto out;
        }
        m = &vdev->maps[vdev->n_maps];
        *m = (ShmMapping) { .region = region, .offset = offset, .len = len, .writable = writable };
        m->host = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, (off_t) fd_offset);
        if (m->host == MAP_FAILED) {
                r = -errno;
                goto out;
        }
        r = shm_place(vdev, m);
        if (r < 0) {
                munmap(m->host, len);
                goto out;
        }
        vdev->n_maps++;
out:
        pthread_mutex_unlock(&vdev->shm_lock);
        return r;
}

/* shm_lock held. */
static void shm_drop(VirtioDevice *vdev, unsigned i) {
        ShmMapping *m = &vdev->maps[i];

        shm_remove(vdev, m);
        munmap(m->host, m->len);
        vdev->maps[i] = vdev->maps[--vdev->n_maps];
}

int virtio_device_shm_unmap(VirtioDevice *vdev, uint8_t shmid, uint64_t offset, uint64_t len) {
        int r = -ENOENT;

        pthread_mutex_lock(&vdev->shm_lock);
        for (unsigned i = 0; i < vdev->n_maps; i++) {
                ShmMapping *m = &vdev->maps[i];

                if (vdev->shm[m->region].shmid == shmid && m->offset == offset && m->len == len) {
                        shm_drop(vdev, i);
                        r = 0;
                        break;
                }
        }
        pthread_mutex_unlock(&vdev->shm_lock);
        return r;
}

void virtio_device_shm_unmap_all(VirtioDevice *vdev) {
        pthread_mutex_lock(&vdev->shm_lock);
        while (vdev->n_maps > 0)
                shm_drop(vdev, vdev->n_maps - 1);
        pthread_mutex_unlock(&vdev->shm_lock);
}

unsigned virtio_device_shm_n_mappings(VirtioDevice *vdev) {
        unsigned n;

        pthread_mutex_lock(&vdev->shm_lock);
        n = vdev->n_maps;
        pthread_mutex_unlock(&vdev->shm_lock);
        return n;
}

void virtio_device_shm_set_window(VirtioDevice *vdev, bool enabled, uint64_t gpa) {
        pthread_mutex_lock(&vdev->shm_lock);
        for (unsigned i = 0; i < vdev->n_maps; i++)
                shm_remove(vdev, &vdev->maps[i]);
        vdev->window_enabled = enabled;
        vdev->window_gpa = gpa;
        /* A mapping the hypervisor will not take stays unseen (its range
         * reads as the window's hole); the device is not told. */
        for (unsigned i = 0; i < vdev->n_maps; i++)
                (void) shm_place(vdev, &vdev->maps[i]);
        pthread_mutex_unlock(&vdev->shm_lock);
}

static void queue_interrupt(void *ctx, VirtQueue *q) {
        VirtioDevice *vdev = ctx;

        if (vdev->transport && vdev->transport->queue_interrupt)
                vdev->transport->queue_interrupt(vdev->transport_ctx, q);
}

int virtio_device_new(const VirtioDeviceOps *ops, const char *arg, const GuestMemory *mem, VirtioDevice **ret) {
        VmmDevice config = { .kind = (uint32_t) vmm_device_kind_from_string(ops->name) };
        int *fd, r;

        if (!ops->parse)
                return arg ? -EINVAL : virtio_device_new_config(ops, NULL, mem, ret);
        r = ops->parse(arg, &config);
        if (r < 0)
                return r;
        r = virtio_device_new_config(ops, &config, mem, ret);
        fd = vmm_device_fd(&config);
        if (fd)
                safe_close(*fd);
        return r;
}

int virtio_device_new_config(const VirtioDeviceOps *ops, const VmmDevice *config, const GuestMemory *mem,
                             VirtioDevice **ret) {
        _cleanup_(virtio_device_freep) VirtioDevice *vdev = NULL;
        int r;

        if (ops->variant) {
                ops = ops->variant(config);
                if (!ops)
                        return -EINVAL;
        }
        if (ops->n_queues == 0 || ops->n_queues > VIRTIO_MAX_QUEUES || ops->queue_max_size == 0 ||
            ops->queue_max_size > VIRTQ_MAX_SIZE || (ops->queue_max_size & (ops->queue_max_size - 1)))
                return -EINVAL;

        vdev = calloc(1, sizeof(*vdev));
        if (!vdev)
                return -ENOMEM;
        vdev->ops = ops;
        vdev->mem = mem;
        vdev->epoll_fd = vdev->stop_fd = vdev->transport_fd = -EBADF;
        for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
                vdev->queues[i].kick_fd = vdev->call_fds[i] = -EBADF;
        pthread_mutex_init(&vdev->lock, NULL);
        pthread_mutex_init(&vdev->shm_lock, NULL);
        /* §6: what every device here offers besides its own bits. */
        vdev->offered = ops->features | (UINT64_C(1) << VIRTIO_F_VERSION_1) |
                        (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC) | (UINT64_C(1) << VIRTIO_F_EVENT_IDX);

        vdev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (vdev->epoll_fd < 0)
                return -errno;
        vdev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vdev->stop_fd < 0)
                return -errno;
        if (epoll_ctl(vdev->epoll_fd, EPOLL_CTL_ADD, vdev->stop_fd,
                      &(struct epoll_event) { .events = EPOLLIN, .data.u64 = TAG_STOP }) < 0)
                return -errno;
        for (unsigned i = 0; i < ops->n_queues; i++) {
                VirtQueue *q = &vdev->queues[i];

                q->index = (uint16_t) i;
                q->max_size = ops->queue_max_size;
                q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (q->kick_fd < 0)
                        return -errno;
                q->interrupt = queue_interrupt;
                q->interrupt_ctx = vdev;
                virtq_reset(q);
                /* Queues run elsewhere: the kicks are the back-end's to
                 * read, the calls ours to turn into interrupts. */
                if (ops->external_queues) {
                        vdev->call_fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                        if (vdev->call_fds[i] < 0)
                                return -errno;
                }
                if (epoll_ctl(vdev->epoll_fd, EPOLL_CTL_ADD, ops->external_queues ? vdev->call_fds[i] : q->kick_fd,
                              &(struct epoll_event) { .events = EPOLLIN, .data.u64 = i }) < 0)
                        return -errno;
        }

        r = ops->create(vdev, config, &vdev->dev);
        if (r < 0)
                return r;
        if (ops->instance_features)
                vdev->offered |= ops->instance_features(vdev->dev);
        if (ops->offered)
                vdev->offered = ops->offered(vdev->dev);
        *ret = TAKE_PTR(vdev);
        return 0;
}

static void drain(int fd) {
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
}

static void worker_stop(VirtioDevice *vdev) {
        if (!vdev->worker_running)
                return;
        (void) !write(vdev->stop_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        pthread_join(vdev->worker, NULL);
        drain(vdev->stop_fd);
        vdev->worker_running = false;
}

static void unwatch_all(VirtioDevice *vdev) {
        for (unsigned i = 0; i < vdev->n_watched; i++)
                (void) epoll_ctl(vdev->epoll_fd, EPOLL_CTL_DEL, vdev->watched[i].fd, NULL);
        vdev->n_watched = 0;
}

VirtioDevice *virtio_device_free(VirtioDevice *vdev) {
        if (!vdev)
                return NULL;
        worker_stop(vdev);
        unwatch_all(vdev);
        if (vdev->dev && vdev->ops->destroy)
                vdev->ops->destroy(vdev->dev);
        virtio_device_shm_unmap_all(vdev);
        pthread_mutex_destroy(&vdev->shm_lock);
        for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
                safe_close(vdev->queues[i].kick_fd);
                safe_close(vdev->call_fds[i]);
        }
        safe_close(vdev->stop_fd);
        safe_close(vdev->epoll_fd);
        pthread_mutex_destroy(&vdev->lock);
        free(vdev);
        return NULL;
}

void virtio_device_set_transport(VirtioDevice *vdev, const VirtioTransportOps *ops, void *ctx) {
        vdev->transport = ops;
        vdev->transport_ctx = ctx;
}

int virtio_device_watch_transport_fd(VirtioDevice *vdev, int fd) {
        if (vdev->transport_fd >= 0)
                return -EBUSY;
        if (epoll_ctl(vdev->epoll_fd, EPOLL_CTL_ADD, fd,
                      &(struct epoll_event) { .events = EPOLLIN, .data.u64 = TAG_TRANSPORT }) < 0)
                return -errno;
        vdev->transport_fd = fd;
        return 0;
}

void virtio_device_set_needs_reset(VirtioDevice *vdev, const char *why) {
        uint8_t old = __atomic_fetch_or(&vdev->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_ACQ_REL);

        if (old & VIRTIO_STATUS_NEEDS_RESET)
                return;
        __atomic_store_n(&vdev->error, why, __ATOMIC_RELEASE);
        __atomic_fetch_add(&vdev->n_errors, 1, __ATOMIC_ACQ_REL);
        virtio_device_status_changed(vdev);
        /* §2.1.2: "If the device has set NEEDS_RESET ... it MUST send a
         * device configuration change notification to the driver" once
         * DRIVER_OK is set. */
        if (old & VIRTIO_STATUS_DRIVER_OK)
                virtio_device_config_changed(vdev);
}

void virtio_device_config_changed(VirtioDevice *vdev) {
        if (vdev->transport && vdev->transport->config_interrupt)
                vdev->transport->config_interrupt(vdev->transport_ctx);
}

/* After the device ran: a broken queue makes the device NEEDS_RESET,
 * pushed buffers get their interrupt. */
static void queue_after(VirtioDevice *vdev, VirtQueue *q) {
        if (!q->enabled)
                return;
        if (q->broken) {
                virtio_device_set_needs_reset(vdev, q->error);
                return;
        }
        virtq_interrupt(q);
}

/* The worker's end: what only it may do (a reset runs on a vCPU thread,
 * whose seccomp role has no epoll_ctl; Linux resets every virtio device
 * on reboot). */
static void worker_finish(VirtioDevice *vdev) {
        if (vdev->ops->stop)
                vdev->ops->stop(vdev->dev);
        unwatch_all(vdev);
        /* §2.10: what the device mapped goes with the device's state. */
        virtio_device_shm_unmap_all(vdev);
}

static void *worker_main(void *arg) {
        VirtioDevice *vdev = arg;
        char name[16];

        snprintf(name, sizeof(name), "virtio-%s", vdev->ops->name);
        pthread_setname_np(pthread_self(), name);
        if (vdev->ops->worker_start && vdev->ops->worker_start(vdev->dev) < 0)
                virtio_device_set_needs_reset(vdev, "the device could not start");

        for (;;) {
                struct epoll_event ev[16];
                int n = epoll_wait(vdev->epoll_fd, ev, ARRAY_SIZE(ev), -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        virtio_device_set_needs_reset(vdev, "worker: epoll_wait failed");
                        worker_finish(vdev);
                        return NULL;
                }
                for (int i = 0; i < n; i++) {
                        uint64_t tag = ev[i].data.u64;

                        if (tag == TAG_STOP) {
                                worker_finish(vdev);
                                return NULL;
                        }
                        if (tag == TAG_TRANSPORT) {
                                if (vdev->transport && vdev->transport->fd_ready)
                                        vdev->transport->fd_ready(vdev->transport_ctx);
                                continue;
                        }
                        if (tag < vdev->ops->n_queues && vdev->ops->external_queues) {
                                VirtQueue *q = &vdev->queues[tag];

                                /* The back-end pushed and chose to notify
                                 * (it reads the event index): interrupt. */
                                drain(vdev->call_fds[tag]);
                                if (q->enabled)
                                        queue_interrupt(vdev, q);
                                continue;
                        }
                        if (tag < vdev->ops->n_queues) {
                                VirtQueue *q = &vdev->queues[tag];

                                drain(q->kick_fd);
                                if (q->enabled && !q->broken) {
                                        vdev->ops->queue_notify(vdev->dev, q);
                                        queue_after(vdev, q);
                                }
                                continue;
                        }
                        if (tag >= TAG_WATCH && tag - TAG_WATCH < vdev->n_watched) {
                                Watched *w = &vdev->watched[tag - TAG_WATCH];
                                if (w->fd >= 0 && w->handler)
                                        w->handler(vdev->dev, w->fd, ev[i].events);
                                for (unsigned k = 0; k < vdev->ops->n_queues; k++)
                                        queue_after(vdev, &vdev->queues[k]);
                        }
                }
        }
}

int virtio_device_watch_fd(VirtioDevice *vdev, int fd, uint32_t epoll_events, VirtioFdHandler handler) {
        unsigned slot = vdev->n_watched;

        /* Reuse a slot freed by unwatch. */
        for (unsigned i = 0; i < vdev->n_watched; i++)
                if (vdev->watched[i].fd < 0) {
                        slot = i;
                        break;
                }
        if (slot >= VIRTIO_MAX_WATCHED_FDS)
                return -ENOSPC;
        if (epoll_ctl(vdev->epoll_fd, EPOLL_CTL_ADD, fd,
                      &(struct epoll_event) { .events = epoll_events, .data.u64 = TAG_WATCH + slot }) < 0)
                return -errno;
        vdev->watched[slot] = (Watched) { .fd = fd, .handler = handler };
        if (slot == vdev->n_watched)
                vdev->n_watched++;
        return 0;
}

int virtio_device_unwatch_fd(VirtioDevice *vdev, int fd) {
        for (unsigned i = 0; i < vdev->n_watched; i++)
                if (vdev->watched[i].fd == fd) {
                        (void) epoll_ctl(vdev->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
                        vdev->watched[i] = (Watched) { .fd = -EBADF };
                        return 0;
                }
        return -ENOENT;
}

int virtio_device_call_fd(const VirtioDevice *vdev, unsigned index) {
        int fd;

        if (index >= vdev->ops->n_queues || vdev->call_fds[index] < 0)
                return -EBADF;
        if (vdev->transport && vdev->transport->queue_irqfd) {
                fd = vdev->transport->queue_irqfd(vdev->transport_ctx, &vdev->queues[index]);
                if (fd >= 0)
                        return fd;
        }
        return vdev->call_fds[index];
}

int virtio_device_kick_fd(const VirtioDevice *vdev, unsigned index) {
        return index < vdev->ops->n_queues ? vdev->queues[index].kick_fd : -EBADF;
}

void virtio_device_kick(VirtioDevice *vdev, unsigned index) {
        if (index < vdev->ops->n_queues)
                (void) !write(vdev->queues[index].kick_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

void virtio_device_notify(VirtioDevice *vdev, unsigned index) {
        /* §4.1.4.4 / §3.1.1: notifications before DRIVER_OK, or for a
         * queue that does not exist, have nothing to act on. */
        if (!(virtio_device_status(vdev) & VIRTIO_STATUS_DRIVER_OK))
                return;
        virtio_device_kick(vdev, index);
}

static void device_reset_locked(VirtioDevice *vdev) {
        worker_stop(vdev);
        unwatch_all(vdev);
        if (vdev->ops->reset)
                vdev->ops->reset(vdev->dev);
        for (unsigned i = 0; i < vdev->ops->n_queues; i++) {
                virtq_reset(&vdev->queues[i]);
                drain(vdev->queues[i].kick_fd);
                if (vdev->call_fds[i] >= 0)
                        drain(vdev->call_fds[i]);
        }
        vdev->driver_features = 0;
        __atomic_store_n(&vdev->error, NULL, __ATOMIC_RELEASE);
        __atomic_store_n(&vdev->status, 0, __ATOMIC_RELEASE);
}

/* A device's role and policy are named by its ops (the table registers
 * them all before the sandbox starts; registering again finds them). */
int virtio_device_sandbox_role(const VirtioDeviceOps *ops, SandboxRole *ret) {
        if (!ops->seccomp_role)
                return sandbox_role_register(VIRTIO_DEVICE_ROLE, VIRTIO_DEVICE_POLICY, ret);
        return sandbox_role_register(ops->seccomp_role, ops->seccomp_policy, ret);
}

static void device_activate_locked(VirtioDevice *vdev) {
        SandboxRole role;
        int r;

        r = vdev->ops->activate(vdev->dev, vdev->queues, vdev->driver_features);
        if (r < 0) {
                virtio_device_set_needs_reset(vdev, "the device could not start");
                return;
        }
        /* The worker enters its device's seccomp role (seccomp/sandbox.h). */
        r = virtio_device_sandbox_role(vdev->ops, &role);
        if (r >= 0)
                r = sandbox_thread_create(&vdev->worker, role, worker_main, vdev);
        if (r != 0) {
                virtio_device_set_needs_reset(vdev, "the device's worker thread could not start");
                return;
        }
        vdev->worker_running = true;
        /* Buffers made available before DRIVER_OK (kicks already counted
         * on the eventfds) are picked up by the worker's first wait. */
}

void virtio_device_write_status(VirtioDevice *vdev, uint8_t value) {
        uint8_t old, status;

        pthread_mutex_lock(&vdev->lock);
        /* §2.4: writing 0 resets the device. */
        if (value == 0) {
                device_reset_locked(vdev);
                pthread_mutex_unlock(&vdev->lock);
                return;
        }
        old = virtio_device_status(vdev);
        /* §2.1.1: the driver MUST NOT clear a status bit; NEEDS_RESET is
         * the device's to set. Bits the driver drops are kept. */
        status = old | (value & ~VIRTIO_STATUS_NEEDS_RESET);

        if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
                /* §2.2.1 / §3.1.1: the driver MUST NOT accept a feature the
                 * device did not offer; §6.1: a modern device needs
                 * VERSION_1. Otherwise FEATURES_OK does not stick. */
                if ((vdev->driver_features & ~vdev->offered) ||
                    !(vdev->driver_features & (UINT64_C(1) << VIRTIO_F_VERSION_1)))
                        status &= ~VIRTIO_STATUS_FEATURES_OK;
        }
        /* DRIVER_OK without FEATURES_OK is a driver error (§3.1.1): the
         * device does not start. */
        if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))
                status &= ~VIRTIO_STATUS_DRIVER_OK;

        __atomic_store_n(&vdev->status, status | (virtio_device_status(vdev) & VIRTIO_STATUS_NEEDS_RESET),
                         __ATOMIC_RELEASE);
        if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
            !(status & VIRTIO_STATUS_FAILED) && !(status & VIRTIO_STATUS_NEEDS_RESET))
                device_activate_locked(vdev);
        pthread_mutex_unlock(&vdev->lock);
}

int virtio_device_enable_queue(VirtioDevice *vdev, unsigned index) {
        VirtQueue *q = virtio_device_queue(vdev, index);
        uint64_t f = vdev->driver_features;
        int r;

        if (!q)
                return -ENOENT;
        pthread_mutex_lock(&vdev->lock);
        /* §3.1.1: queues are set up after FEATURES_OK, before DRIVER_OK;
         * the worker owns them after that. */
        if (virtio_device_status(vdev) & VIRTIO_STATUS_DRIVER_OK) {
                pthread_mutex_unlock(&vdev->lock);
                return -EBUSY;
        }
        r = virtq_enable(q, vdev->mem, f & (UINT64_C(1) << VIRTIO_F_EVENT_IDX),
                         f & (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC));
        pthread_mutex_unlock(&vdev->lock);
        if (r < 0)
                virtio_device_set_needs_reset(vdev, q->error);
        return r;
}

void virtio_device_write_driver_features(VirtioDevice *vdev, unsigned word, uint32_t value) {
        pthread_mutex_lock(&vdev->lock);
        /* §2.2: features are fixed once FEATURES_OK is set; only two words. */
        if (!(virtio_device_status(vdev) & VIRTIO_STATUS_FEATURES_OK) && word < 2) {
                uint64_t shift = 32 * (uint64_t) word;
                vdev->driver_features = (vdev->driver_features & ~(UINT64_C(0xffffffff) << shift)) |
                                        ((uint64_t) value << shift);
        }
        pthread_mutex_unlock(&vdev->lock);
}

uint32_t virtio_device_read_driver_features(const VirtioDevice *vdev, unsigned word) {
        return word < 2 ? (uint32_t) (vdev->driver_features >> (32 * word)) : 0;
}

int virtio_device_jail_dir(VirtioDevice *vdev, const char *jail_path) {
        if (!vdev->ops->jail_dir)
                return -ENOENT;
        return vdev->ops->jail_dir(vdev->dev, jail_path);
}

unsigned virtio_device_fds(const VirtioDevice *vdev, int *fds, unsigned max) {
        unsigned n = 0;

        if (n < max)
                fds[n++] = vdev->epoll_fd;
        if (n < max)
                fds[n++] = vdev->stop_fd;
        for (unsigned i = 0; i < vdev->ops->n_queues && n < max; i++)
                fds[n++] = vdev->queues[i].kick_fd;
        for (unsigned i = 0; i < vdev->ops->n_queues && n < max; i++)
                if (vdev->call_fds[i] >= 0)
                        fds[n++] = vdev->call_fds[i];
        if (vdev->ops->fds && n < max)
                n += vdev->ops->fds(vdev->dev, fds + n, max - n);
        return n;
}
