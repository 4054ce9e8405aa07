/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The virtio 1.x modern PCI transport (virtio 1.2 §4.1): one PCI function
 * per device, BAR 0 holding the common, ISR, device and notify structures
 * and the MSI-X table and PBA, all also reachable through the PCI
 * configuration access capability (§4.1.4.8). The shared memory regions a
 * device declares (virtio_device_add_shm_region) go one after the other in
 * BAR 2, 64-bit prefetchable, each advertised by a
 * VIRTIO_PCI_CAP_SHARED_MEMORY_CFG capability (§4.1.4.7). */

#include <stdint.h>
#include <linux/virtio_pci.h>

#include "vmm/bus.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/pci/msix.h"
#include "vmm/pci/pci.h"
#include "vmm/virtio/device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

/* BAR 0 layout. */
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x38
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_DEVICE_LEN 0x1000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x4000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x5000
#define VIRTIO_PCI_BAR0_SIZE 0x8000
#define VIRTIO_PCI_SHM_BAR 2

/* The capability structs, cfg_type values (VIRTIO_PCI_CAP_*), common
 * configuration offsets (VIRTIO_PCI_COMMON_*) and VIRTIO_MSI_NO_VECTOR
 * come from <linux/virtio_pci.h>; VIRTIO_PCI_COMMON_LEN ends at
 * queue_used_hi (no queue_notify_data or queue_reset: not offered). */

typedef struct VirtioPci {
        PciDevice pci;
        Msix msix;
        VirtioDevice *vdev;
        const HypervisorOps *hv;        /* NULL in tests: no ioeventfds */
        HvVm *hv_vm;
        /* INTx# (§4.1.4.5), used while MSI-X is off: a resampling irqfd
         * on the pin of intx.gsi, so that the device's worker, which may
         * not call KVM_IRQ_LINE, drives it with a write; intx.set is the
         * line where the hypervisor has none (tests). */
        IrqLine intx;
        int intx_fd;                    /* written: the line goes up */
        int intx_resample_fd;           /* readable: the guest EOI'd, the line went down */

        pthread_mutex_t lock;           /* common configuration selectors */
        uint32_t device_feature_select, driver_feature_select;
        uint16_t queue_select;
        uint16_t msix_config;           /* __atomic: read by the worker */
        uint8_t config_generation;      /* __atomic */
        uint8_t isr;                    /* __atomic: bit 0 queue, bit 1 config */

        uint8_t pci_cfg_cap;            /* config offset of the PCI_CFG capability */

        bool notify_registered;         /* ioeventfds are on notify_addr */
        uint64_t notify_addr;
        unsigned ioeventfd_errors;
} VirtioPci;

/* Takes vdev. hv/hv_vm may be NULL (no ioeventfd, no irqfd: tests).
 * With a hypervisor, INTx is a resampling irqfd on intx.gsi (-EOPNOTSUPP
 * where it has none); intx.set is then never called. */
int virtio_pci_new(VirtioDevice *vdev, PciBus *bus, const HypervisorOps *hv, HvVm *hv_vm, IrqLine intx,
                   VirtioPci **ret);
VirtioPci *virtio_pci_free(VirtioPci *vp);
DEFINE_TRIVIAL_CLEANUP_FUNC(VirtioPci *, virtio_pci_free);

/* BAR 0 accesses (what the PCI window forwards). */
extern const BusDeviceOps virtio_pci_bar_ops;

#ifdef __cplusplus
}
#endif
