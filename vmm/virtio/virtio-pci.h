/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The virtio 1.x modern PCI transport (virtio 1.2 §4.1): one PCI function
 * per device, BAR 0 holding the common, ISR, device and notify structures
 * and the MSI-X table and PBA; BAR 2 is kept for a shared-memory region
 * (§4.1.4.7, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, virtio-gpu later). */

#include <stdint.h>

#include "bus.h"
#include "hypervisor.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/device.h"

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
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* virtio_pci_cap cfg_type values (§4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5
#define VIRTIO_PCI_CAP_SHARED_MEMORY_CFG 8

/* Common configuration offsets (§4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO 0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI 0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO 0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI 0x34

typedef struct VirtioPci {
        PciDevice pci;
        Msix msix;
        VirtioDevice *vdev;
        const HypervisorOps *hv;        /* NULL in tests: no ioeventfds */
        HvVm *hv_vm;
        IrqLine intx;                   /* used while MSI-X is off */

        pthread_mutex_t lock;           /* common configuration selectors */
        uint32_t device_feature_select, driver_feature_select;
        uint16_t queue_select;
        uint16_t msix_config;           /* __atomic: read by the worker */
        uint8_t config_generation;      /* __atomic */
        uint8_t isr;                    /* __atomic: bit 0 queue, bit 1 config */

        bool notify_registered;         /* ioeventfds are on notify_addr */
        uint64_t notify_addr;
        unsigned ioeventfd_errors;
} VirtioPci;

/* Takes vdev. hv/hv_vm may be NULL (no ioeventfd, no irqfd: tests). */
int virtio_pci_new(VirtioDevice *vdev, PciBus *bus, const HypervisorOps *hv, HvVm *hv_vm, IrqLine intx,
                   VirtioPci **ret);
VirtioPci *virtio_pci_free(VirtioPci *vp);
DEFINE_TRIVIAL_CLEANUP_FUNC(VirtioPci *, virtio_pci_free);

/* BAR 0 accesses (what the PCI window forwards). */
extern const BusDeviceOps virtio_pci_bar_ops;

#ifdef __cplusplus
}
#endif
