/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtio 1.x PCI transport. Section numbers are those of virtio 1.2. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/virtio/virtio-pci.h"
#include "common/unaligned.h"

/* ---- interrupts ---- */

/* INTx# is level-triggered (PCI 3.0 §2.2.6): up while an ISR bit is set.
 * Through the resampling irqfd, a write raises the line and the
 * hypervisor lowers it when the guest EOIs, then tells us on the resample
 * fd (intx_resampled) so that we raise it again if the driver has not
 * read the ISR since. Reading the ISR cannot lower that line (no ioctl on
 * a vCPU for it): the EOI that follows does. */
static void intx_assert(VirtioPci *vp) {
        if (vp->intx_fd >= 0)
                (void) !write(vp->intx_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        else
                irq_line_set(&vp->intx, true);
}

static void intx_deassert(VirtioPci *vp) {
        if (vp->intx_fd < 0)
                irq_line_set(&vp->intx, false);
}

static void intx_raise(VirtioPci *vp, uint8_t bit) {
        __atomic_fetch_or(&vp->isr, bit, __ATOMIC_ACQ_REL);
        intx_assert(vp);
}

/* On the device's worker: the guest EOI'd our line. */
static void intx_resampled(void *ctx) {
        VirtioPci *vp = ctx;
        uint64_t n;

        (void) !read(vp->intx_resample_fd, &n, sizeof(n));
        if (__atomic_load_n(&vp->isr, __ATOMIC_ACQUIRE) != 0 && !msix_enabled(&vp->msix))
                intx_assert(vp);
}

static void transport_queue_interrupt(void *ctx, VirtQueue *q) {
        VirtioPci *vp = ctx;

        if (msix_enabled(&vp->msix)) {
                /* §4.1.5.1.2: NO_VECTOR means no interrupt for this queue. */
                if (q->msix_vector != VIRTIO_MSI_NO_VECTOR)
                        (void) msix_notify(&vp->msix, q->msix_vector);
                return;
        }
        /* §4.1.4.5: without MSI-X, ISR bit 0 and the INTx line. */
        intx_raise(vp, 1);
}

static void transport_config_interrupt(void *ctx) {
        VirtioPci *vp = ctx;
        uint16_t vector = __atomic_load_n(&vp->msix_config, __ATOMIC_ACQUIRE);

        __atomic_fetch_add(&vp->config_generation, 1, __ATOMIC_ACQ_REL);
        if (msix_enabled(&vp->msix)) {
                if (vector != VIRTIO_MSI_NO_VECTOR)
                        (void) msix_notify(&vp->msix, vector);
                return;
        }
        intx_raise(vp, 2);
}

/* A back-end may write the vector's eventfd itself: attached as an irqfd
 * it is the interrupt, and while the vector is masked the write waits on
 * the eventfd, which becomes the pending bit at unmask (msix.c). Without a
 * hypervisor (tests) or MSI-X, the worker's path. */
static int transport_queue_irqfd(void *ctx, const VirtQueue *q) {
        VirtioPci *vp = ctx;

        if (!vp->hv || !vp->hv->irqfd || !msix_enabled(&vp->msix) || q->msix_vector == VIRTIO_MSI_NO_VECTOR)
                return -1;
        return msix_vector_fd(&vp->msix, q->msix_vector);
}

/* A shared memory mapping in BAR 2: memory the hypervisor maps at its
 * place, so the guest's accesses never exit. The BAR's holes stay MMIO
 * (reads all ones, writes dropped). */
static int transport_shm_place(void *ctx, uint64_t gpa, uint64_t len, void *host, bool writable, unsigned *ret_slot) {
        VirtioPci *vp = ctx;

        if (!vp->hv || !vp->hv->map_extra)
                return -EOPNOTSUPP;
        return vp->hv->map_extra(vp->hv_vm, gpa, len, host, !writable, ret_slot);
}

static void transport_shm_remove(void *ctx, unsigned slot) {
        VirtioPci *vp = ctx;

        vp->hv->unmap_extra(vp->hv_vm, slot);
}

static const VirtioTransportOps transport_ops = {
        .queue_interrupt = transport_queue_interrupt,
        .config_interrupt = transport_config_interrupt,
        .fd_ready = intx_resampled,
        .queue_irqfd = transport_queue_irqfd,
        .shm_place = transport_shm_place,
        .shm_remove = transport_shm_remove,
};

/* ---- common configuration (§4.1.4.3) ---- */

static VirtQueue *selected_queue(VirtioPci *vp) {
        return virtio_device_queue(vp->vdev, vp->queue_select);
}

static uint16_t vector_accept(VirtioPci *vp, uint16_t v) {
        /* §4.1.5.1.2: a vector the device cannot use reads back NO_VECTOR. */
        return v < vp->msix.n ? v : VIRTIO_MSI_NO_VECTOR;
}

/* Field width at an offset, so accesses of another width are dropped
 * (§4.1.3.1: the driver uses each field's natural width; 64-bit fields
 * may be two 32-bit halves). 0: no field starts here. */
static unsigned common_width(uint64_t off) {
        switch (off) {
        case VIRTIO_PCI_COMMON_DFSELECT: case VIRTIO_PCI_COMMON_DF:
        case VIRTIO_PCI_COMMON_GFSELECT: case VIRTIO_PCI_COMMON_GF:
        case VIRTIO_PCI_COMMON_Q_DESCLO: case VIRTIO_PCI_COMMON_Q_DESCHI:
        case VIRTIO_PCI_COMMON_Q_AVAILLO: case VIRTIO_PCI_COMMON_Q_AVAILHI:
        case VIRTIO_PCI_COMMON_Q_USEDLO: case VIRTIO_PCI_COMMON_Q_USEDHI:
                return 4;
        case VIRTIO_PCI_COMMON_MSIX: case VIRTIO_PCI_COMMON_NUMQ:
        case VIRTIO_PCI_COMMON_Q_SELECT: case VIRTIO_PCI_COMMON_Q_SIZE:
        case VIRTIO_PCI_COMMON_Q_MSIX: case VIRTIO_PCI_COMMON_Q_ENABLE:
        case VIRTIO_PCI_COMMON_Q_NOFF:
                return 2;
        case VIRTIO_PCI_COMMON_STATUS: case VIRTIO_PCI_COMMON_CFGGENERATION:
                return 1;
        default:
                return 0;
        }
}

static uint64_t *queue_addr_field(VirtQueue *q, uint64_t off) {
        if (off < VIRTIO_PCI_COMMON_Q_AVAILLO)
                return &q->desc_gpa;
        if (off < VIRTIO_PCI_COMMON_Q_USEDLO)
                return &q->avail_gpa;
        return &q->used_gpa;
}

static uint32_t common_read32(VirtioPci *vp, uint64_t off) {
        VirtQueue *q = selected_queue(vp);

        switch (off) {
        case VIRTIO_PCI_COMMON_DFSELECT:
                return vp->device_feature_select;
        case VIRTIO_PCI_COMMON_DF:
                return vp->device_feature_select < 2 ?
                       (uint32_t) (virtio_device_offered(vp->vdev) >> (32 * vp->device_feature_select)) : 0;
        case VIRTIO_PCI_COMMON_GFSELECT:
                return vp->driver_feature_select;
        case VIRTIO_PCI_COMMON_GF:
                return virtio_device_read_driver_features(vp->vdev, vp->driver_feature_select);
        case VIRTIO_PCI_COMMON_MSIX:
                return __atomic_load_n(&vp->msix_config, __ATOMIC_ACQUIRE);
        case VIRTIO_PCI_COMMON_NUMQ:
                return virtio_device_ops(vp->vdev)->n_queues;
        case VIRTIO_PCI_COMMON_STATUS:
                return virtio_device_status(vp->vdev);
        case VIRTIO_PCI_COMMON_CFGGENERATION:
                return __atomic_load_n(&vp->config_generation, __ATOMIC_ACQUIRE);
        case VIRTIO_PCI_COMMON_Q_SELECT:
                return vp->queue_select;
        }
        /* §4.1.4.3.2: an unavailable queue reads size 0. */
        if (!q)
                return 0;
        switch (off) {
        case VIRTIO_PCI_COMMON_Q_SIZE:
                return q->size;
        case VIRTIO_PCI_COMMON_Q_MSIX:
                return q->msix_vector;
        case VIRTIO_PCI_COMMON_Q_ENABLE:
                return q->enabled;
        case VIRTIO_PCI_COMMON_Q_NOFF:
                return q->index;
        case VIRTIO_PCI_COMMON_Q_DESCLO: case VIRTIO_PCI_COMMON_Q_AVAILLO: case VIRTIO_PCI_COMMON_Q_USEDLO:
                return (uint32_t) *queue_addr_field(q, off);
        case VIRTIO_PCI_COMMON_Q_DESCHI: case VIRTIO_PCI_COMMON_Q_AVAILHI: case VIRTIO_PCI_COMMON_Q_USEDHI:
                return (uint32_t) (*queue_addr_field(q, off) >> 32);
        }
        return 0;
}

static void transport_reset(VirtioPci *vp) {
        vp->device_feature_select = vp->driver_feature_select = 0;
        vp->queue_select = 0;
        __atomic_store_n(&vp->msix_config, VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELEASE);
        __atomic_store_n(&vp->isr, 0, __ATOMIC_RELEASE);
        intx_deassert(vp);
}

static void common_write32(VirtioPci *vp, uint64_t off, uint32_t v) {
        VirtQueue *q = selected_queue(vp);
        bool driver_ok = virtio_device_status(vp->vdev) & VIRTIO_STATUS_DRIVER_OK;

        switch (off) {
        case VIRTIO_PCI_COMMON_DFSELECT:
                vp->device_feature_select = v;
                return;
        case VIRTIO_PCI_COMMON_GFSELECT:
                vp->driver_feature_select = v;
                return;
        case VIRTIO_PCI_COMMON_GF:
                virtio_device_write_driver_features(vp->vdev, vp->driver_feature_select, v);
                return;
        case VIRTIO_PCI_COMMON_MSIX:
                __atomic_store_n(&vp->msix_config, vector_accept(vp, (uint16_t) v), __ATOMIC_RELEASE);
                return;
        case VIRTIO_PCI_COMMON_STATUS:
                if ((uint8_t) v == 0) {
                        /* §4.1.4.3.2 / §2.4: reset; returns once the worker
                         * has stopped, so reading 0 back means done. */
                        virtio_device_write_status(vp->vdev, 0);
                        transport_reset(vp);
                } else {
                        virtio_device_write_status(vp->vdev, (uint8_t) v);
                }
                return;
        case VIRTIO_PCI_COMMON_Q_SELECT:
                vp->queue_select = (uint16_t) v;
                return;
        }
        /* §4.1.4.3.2: queue fields of a queue that does not exist, of an
         * enabled queue, or after DRIVER_OK are not the driver's to change. */
        if (!q || q->enabled || driver_ok)
                return;
        switch (off) {
        case VIRTIO_PCI_COMMON_Q_SIZE:
                /* Checked (power of two, <= max) at enable. */
                q->size = (uint16_t) v;
                return;
        case VIRTIO_PCI_COMMON_Q_MSIX:
                q->msix_vector = vector_accept(vp, (uint16_t) v);
                return;
        case VIRTIO_PCI_COMMON_Q_ENABLE:
                /* §4.1.4.3.2: the driver writes 1 only; 0 is ignored. */
                if (v == 1)
                        (void) virtio_device_enable_queue(vp->vdev, q->index);
                return;
        case VIRTIO_PCI_COMMON_Q_DESCLO: case VIRTIO_PCI_COMMON_Q_AVAILLO: case VIRTIO_PCI_COMMON_Q_USEDLO: {
                uint64_t *f = queue_addr_field(q, off);
                *f = (*f & ~UINT64_C(0xffffffff)) | v;
                return;
        }
        case VIRTIO_PCI_COMMON_Q_DESCHI: case VIRTIO_PCI_COMMON_Q_AVAILHI: case VIRTIO_PCI_COMMON_Q_USEDHI: {
                uint64_t *f = queue_addr_field(q, off);
                *f = (*f & UINT64_C(0xffffffff)) | (uint64_t) v << 32;
                return;
        }
        }
}

static bool common_access_ok(uint64_t off, unsigned size) {
        unsigned w = common_width(off);

        if (w == size)
                return true;
        /* A 64-bit access to a queue address pair. */
        return size == 8 && off >= VIRTIO_PCI_COMMON_Q_DESCLO && off < VIRTIO_PCI_COMMON_LEN && off % 8 == 0;
}

static void common_read(VirtioPci *vp, uint64_t off, uint8_t *data, unsigned size) {
        uint64_t v;

        memset(data, 0, size);
        if (!common_access_ok(off, size))
                return;
        pthread_mutex_lock(&vp->lock);
        v = common_read32(vp, off);
        if (size == 8)
                v |= (uint64_t) common_read32(vp, off + 4) << 32;
        pthread_mutex_unlock(&vp->lock);
        put_le(data, size, v);
}

static void common_write(VirtioPci *vp, uint64_t off, const uint8_t *data, unsigned size) {
        uint64_t v = get_le(data, size);

        if (!common_access_ok(off, size))
                return;
        pthread_mutex_lock(&vp->lock);
        common_write32(vp, off, (uint32_t) v);
        if (size == 8)
                common_write32(vp, off + 4, (uint32_t) (v >> 32));
        pthread_mutex_unlock(&vp->lock);
}

/* ---- BAR 0 ---- */

static void bar_read(void *opaque, uint64_t off, uint8_t *data, unsigned size) {
        VirtioPci *vp = opaque;
        const VirtioDeviceOps *ops = virtio_device_ops(vp->vdev);

        if (off < VIRTIO_PCI_COMMON_LEN) {
                common_read(vp, off, data, size);
        } else if (off >= VIRTIO_PCI_ISR_OFF && off < VIRTIO_PCI_ISR_OFF + 4) {
                /* §4.1.4.5: reading the ISR clears it and deasserts INTx
                 * (through the irqfd: at the guest's EOI, see intx_assert). */
                memset(data, 0, size);
                if (off == VIRTIO_PCI_ISR_OFF) {
                        data[0] = __atomic_exchange_n(&vp->isr, 0, __ATOMIC_ACQ_REL);
                        intx_deassert(vp);
                }
        } else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_DEVICE_OFF + VIRTIO_PCI_DEVICE_LEN) {
                uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;
                memset(data, 0, size);
                /* §4.1.4.6 with §2.5: past the end reads zero, never the
                 * device's memory. */
                if (o + size <= ops->config_size && ops->config_read)
                        ops->config_read(virtio_device_state(vp->vdev), (uint32_t) o, data, size);
        } else if (off >= VIRTIO_PCI_MSIX_TABLE_OFF && off < VIRTIO_PCI_MSIX_PBA_OFF) {
                msix_table_read(&vp->msix, off - VIRTIO_PCI_MSIX_TABLE_OFF, data, size);
        } else if (off >= VIRTIO_PCI_MSIX_PBA_OFF && off < VIRTIO_PCI_BAR0_SIZE) {
                msix_pba_read(&vp->msix, off - VIRTIO_PCI_MSIX_PBA_OFF, data, size);
        } else {
                memset(data, 0, size);
        }
}

static void bar_write(void *opaque, uint64_t off, const uint8_t *data, unsigned size) {
        VirtioPci *vp = opaque;
        const VirtioDeviceOps *ops = virtio_device_ops(vp->vdev);

        if (off < VIRTIO_PCI_COMMON_LEN) {
                common_write(vp, off, data, size);
        } else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_DEVICE_OFF + VIRTIO_PCI_DEVICE_LEN) {
                uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;
                if (o + size <= ops->config_size && ops->config_write)
                        ops->config_write(virtio_device_state(vp->vdev), (uint32_t) o, data, size);
        } else if (off >= VIRTIO_PCI_NOTIFY_OFF && off < VIRTIO_PCI_MSIX_TABLE_OFF) {
                /* §4.1.4.4: queue n notifies at n * multiplier. This path
                 * runs when no ioeventfd caught the write (tests, or an
                 * access of another width). */
                uint64_t o = off - VIRTIO_PCI_NOTIFY_OFF;
                if (o % VIRTIO_PCI_NOTIFY_MULTIPLIER == 0)
                        virtio_device_notify(vp->vdev, (unsigned) (o / VIRTIO_PCI_NOTIFY_MULTIPLIER));
        } else if (off >= VIRTIO_PCI_MSIX_TABLE_OFF && off < VIRTIO_PCI_MSIX_PBA_OFF) {
                msix_table_write(&vp->msix, off - VIRTIO_PCI_MSIX_TABLE_OFF, data, size);
        }
}

const BusDeviceOps virtio_pci_bar_ops = {
        .name = "virtio-pci",
        .read = bar_read,
        .write = bar_write,
};

/* ---- PCI hooks ---- */

static void ioeventfds_set(VirtioPci *vp, bool assign) {
        const VirtioDeviceOps *ops = virtio_device_ops(vp->vdev);

        if (!vp->hv || !vp->hv->ioeventfd)
                return;
        for (unsigned i = 0; i < ops->n_queues; i++) {
                VirtQueue *q = virtio_device_queue(vp->vdev, i);
                /* Linux writes the 16-bit queue index (§4.1.4.4); other
                 * widths still reach bar_write. */
                if (vp->hv->ioeventfd(vp->hv_vm, q->kick_fd,
                                      vp->notify_addr + VIRTIO_PCI_NOTIFY_OFF + (uint64_t) i * VIRTIO_PCI_NOTIFY_MULTIPLIER,
                                      2, false, 0, assign) < 0)
                        vp->ioeventfd_errors++;
        }
}

static void pci_bar_remapped(void *owner, unsigned bar, bool enabled, uint64_t addr) {
        VirtioPci *vp = owner;

        if (bar == VIRTIO_PCI_SHM_BAR) {
                virtio_device_shm_set_window(vp->vdev, enabled, addr);
                return;
        }
        if (bar != 0)
                return;
        if (vp->notify_registered) {
                ioeventfds_set(vp, false);
                vp->notify_registered = false;
        }
        if (enabled) {
                vp->notify_addr = addr;
                ioeventfds_set(vp, true);
                vp->notify_registered = true;
        }
}

static void pci_config_written(void *owner, uint32_t offset, uint32_t size) {
        VirtioPci *vp = owner;

        msix_config_written(&vp->msix, offset, size);
}

/* §4.1.4.8: an access to pci_cfg_data is one of cap.length bytes at
 * cap.offset in BAR cap.bar, through the same BAR ops as an MMIO access.
 * The driver must use cap.length 1, 2 or 4 and an offset aligned to it;
 * here it must also access the field at its start with that width, so
 * no access is split or widened. Anything else is dropped. The bus checks
 * the BAR and its bounds. Bus lock held (the cap is config space). */
static int pci_config_to_bar(void *owner, unsigned offset, unsigned size, unsigned *ret_bar, uint64_t *ret_off) {
        VirtioPci *vp = owner;
        const uint8_t *cap = vp->pci.config + vp->pci_cfg_cap;
        unsigned data = vp->pci_cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
        uint32_t off = (uint32_t) get_le(cap + offsetof(struct virtio_pci_cap, offset), 4);
        uint32_t len = (uint32_t) get_le(cap + offsetof(struct virtio_pci_cap, length), 4);

        if (offset + size <= data || offset >= data + 4)
                return 0;
        if (offset != data || size != len || (len != 1 && len != 2 && len != 4) || off % len != 0)
                return -EINVAL;
        *ret_bar = cap[offsetof(struct virtio_pci_cap, bar)];
        *ret_off = off;
        return 1;
}

static const PciDeviceOps virtio_pci_device_ops = {
        .config_written = pci_config_written,
        .bar_remapped = pci_bar_remapped,
        .config_to_bar = pci_config_to_bar,
};

static int add_cap(PciDevice *pci, uint8_t type, uint32_t offset, uint32_t length) {
        struct virtio_pci_cap cap = {
                .cap_vndr = PCI_CAP_ID_VNDR,
                .cap_len = sizeof(cap),
                .cfg_type = type,
                .bar = 0,
                .offset = htole32(offset),
                .length = htole32(length),
        };

        return pci_device_add_cap(pci, &cap, sizeof(cap));
}

static int add_pci_cfg_cap(VirtioPci *vp) {
        struct virtio_pci_cfg_cap c = {
                .cap = {
                        .cap_vndr = PCI_CAP_ID_VNDR,
                        .cap_len = sizeof(c),
                        .cfg_type = VIRTIO_PCI_CAP_PCI_CFG,
                },
        };
        int off = pci_device_add_cap(&vp->pci, &c, sizeof(c));

        if (off < 0)
                return off;
        /* §4.1.4.8: cap.bar, cap.offset and cap.length are the driver's to
         * write; pci_cfg_data is never stored (pci_config_to_bar). */
        vp->pci.wmask[off + offsetof(struct virtio_pci_cap, bar)] = 0xff;
        memset(vp->pci.wmask + off + offsetof(struct virtio_pci_cap, offset), 0xff, 8);
        vp->pci_cfg_cap = (uint8_t) off;
        return 0;
}

/* §4.1.4.7: one virtio_pci_cap64 per declared region, cap.id its shmid;
 * the regions are packed in declaration order in BAR 2, which is
 * prefetchable as it is plain memory: what the device maps there
 * (virtio_device_shm_map) is guest memory at its place; the rest reads all
 * ones and drops writes, as an unbacked window. */
static int add_shm_regions(VirtioPci *vp) {
        const VirtioShmRegion *shm;
        unsigned n = virtio_device_shm_regions(vp->vdev, &shm);
        uint64_t off = 0, bar_size = 4 * KiB;
        int r;

        for (unsigned i = 0; i < n; i++) {
                struct virtio_pci_cap64 c = {
                        .cap = {
                                .cap_vndr = PCI_CAP_ID_VNDR,
                                .cap_len = sizeof(c),
                                .cfg_type = VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
                                .bar = VIRTIO_PCI_SHM_BAR,
                                .id = shm[i].shmid,
                                .offset = htole32((uint32_t) off),
                                .length = htole32((uint32_t) shm[i].size),
                        },
                        .offset_hi = htole32((uint32_t) (off >> 32)),
                        .length_hi = htole32((uint32_t) (shm[i].size >> 32)),
                };
                r = pci_device_add_cap(&vp->pci, &c, sizeof(c));
                if (r < 0)
                        return r;
                off += shm[i].size;
        }
        if (n == 0)
                return 0;
        /* Sizes are capped (VIRTIO_SHM_MAX_SIZE), so this cannot overflow. */
        while (bar_size < off)
                bar_size <<= 1;
        return pci_device_add_bar(&vp->pci, VIRTIO_PCI_SHM_BAR, bar_size, true, NULL, NULL);
}

/* The INTx line as a resampling irqfd, its resample fd watched by the
 * device's worker: the worker raises interrupts and its seccomp role has
 * no KVM_IRQ_LINE. */
static int intx_setup(VirtioPci *vp) {
        int r;

        if (!vp->hv)
                return 0;
        if (!vp->hv->irqfd_resample)
                return -EOPNOTSUPP;
        vp->intx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vp->intx_fd < 0)
                return -errno;
        vp->intx_resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vp->intx_resample_fd < 0)
                return -errno;
        r = vp->hv->irqfd_resample(vp->hv_vm, vp->intx_fd, vp->intx_resample_fd, vp->intx.gsi, true);
        if (r < 0) {
                vp->intx_fd = safe_close(vp->intx_fd);
                return r;
        }
        return virtio_device_watch_transport_fd(vp->vdev, vp->intx_resample_fd);
}

int virtio_pci_new(VirtioDevice *vdev, PciBus *bus, const HypervisorOps *hv, HvVm *hv_vm, IrqLine intx,
                   VirtioPci **ret) {
        const VirtioDeviceOps *ops = virtio_device_ops(vdev);
        VirtioPci *vp;
        int r;

        vp = calloc(1, sizeof(*vp));
        if (!vp) {
                virtio_device_free(vdev);
                return -ENOMEM;
        }
        vp->vdev = vdev;
        vp->hv = hv;
        vp->hv_vm = hv_vm;
        vp->intx = intx;
        vp->intx_fd = vp->intx_resample_fd = -EBADF;
        vp->msix_config = VIRTIO_MSI_NO_VECTOR;
        pthread_mutex_init(&vp->lock, NULL);

        if (ops->config_size > VIRTIO_PCI_DEVICE_LEN ||
            ops->n_queues * VIRTIO_PCI_NOTIFY_MULTIPLIER > VIRTIO_PCI_MSIX_TABLE_OFF - VIRTIO_PCI_NOTIFY_OFF) {
                r = -EINVAL;
                goto fail;
        }

        /* §4.1.2: vendor 0x1af4, device 0x1040 + type, revision 1 for a
         * modern-only device; class from the device type is cosmetic. */
        pci_device_init(&vp->pci, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + ops->type, 0xff0000, 1,
                        VIRTIO_PCI_VENDOR, 0x40);
        vp->pci.config[PCI_INTERRUPT_PIN] = 1; /* INTA# */
        vp->pci.config[PCI_INTERRUPT_LINE] = (uint8_t) intx.gsi;
        r = pci_device_add_bar(&vp->pci, 0, VIRTIO_PCI_BAR0_SIZE, false, &virtio_pci_bar_ops, vp);
        if (r < 0)
                goto fail;

        /* §4.1.4: one capability per structure, all in BAR 0; the PCI
         * configuration access one (§4.1.4.8) follows MSI-X. */
        r = add_cap(&vp->pci, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN);
        if (r >= 0)
                r = add_cap(&vp->pci, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 4);
        if (r >= 0 && ops->config_size > 0)
                r = add_cap(&vp->pci, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, ops->config_size);
        if (r >= 0) {
                struct virtio_pci_notify_cap n = {
                        .cap = {
                                .cap_vndr = PCI_CAP_ID_VNDR,
                                .cap_len = sizeof(n),
                                .cfg_type = VIRTIO_PCI_CAP_NOTIFY_CFG,
                                .bar = 0,
                                .offset = htole32(VIRTIO_PCI_NOTIFY_OFF),
                                .length = htole32(ops->n_queues * VIRTIO_PCI_NOTIFY_MULTIPLIER),
                        },
                        .notify_off_multiplier = htole32(VIRTIO_PCI_NOTIFY_MULTIPLIER),
                };
                r = pci_device_add_cap(&vp->pci, &n, sizeof(n));
        }
        if (r < 0)
                goto fail;
        /* One vector per queue plus one for configuration changes. */
        r = msix_init(&vp->msix, &vp->pci, ops->n_queues + 1u, 0, VIRTIO_PCI_MSIX_TABLE_OFF,
                      VIRTIO_PCI_MSIX_PBA_OFF, hv, hv_vm);
        if (r >= 0)
                r = add_pci_cfg_cap(vp);
        if (r >= 0)
                r = add_shm_regions(vp);
        if (r < 0)
                goto fail;
        virtio_device_set_transport(vdev, &transport_ops, vp);
        r = intx_setup(vp);
        if (r < 0)
                goto fail;

        r = pci_bus_add_device(bus, &vp->pci, &virtio_pci_device_ops, vp);
        if (r < 0)
                goto fail;
        *ret = vp;
        return 0;
fail:
        virtio_pci_free(vp);
        return r;
}

VirtioPci *virtio_pci_free(VirtioPci *vp) {
        if (!vp)
                return NULL;
        if (vp->notify_registered)
                ioeventfds_set(vp, false);
        /* The worker before the vectors: it may be raising an interrupt. */
        virtio_device_free(vp->vdev);
        if (vp->msix.pci)
                msix_done(&vp->msix);
        if (vp->intx_fd >= 0)
                (void) vp->hv->irqfd_resample(vp->hv_vm, vp->intx_fd, -EBADF, vp->intx.gsi, false);
        safe_close(vp->intx_fd);
        safe_close(vp->intx_resample_fd);
        pthread_mutex_destroy(&vp->lock);
        free(vp);
        return NULL;
}
