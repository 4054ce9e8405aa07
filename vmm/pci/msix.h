/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* MSI-X (PCI 3.0 §6.8.2): a table of vectors and a pending-bit array in a
 * BAR, each vector delivered through an eventfd attached (irqfd) to its
 * own MSI route in the hypervisor. */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/hypervisor/hypervisor.h"
#include "vmm/pci/pci.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE 16
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FUNCTION_MASK 0x4000
#define MSIX_VECTOR_MASKED 1

typedef struct MsixVector {
        uint32_t addr_lo, addr_hi, data, ctrl;  /* the table entry */
        int fd;                 /* eventfd; irqfd on gsi while delivering */
        unsigned gsi;
        bool have_gsi;
        bool routed;            /* the route in the hypervisor is present */
        bool attached;          /* the irqfd is attached */
        uint64_t routed_addr;
        uint32_t routed_data;
} MsixVector;

typedef struct Msix {
        pthread_mutex_t lock;
        PciDevice *pci;
        uint8_t cap;            /* offset of the capability */
        unsigned n;
        MsixVector v[MSIX_MAX_VECTORS];
        uint64_t pba[MSIX_MAX_VECTORS / 64];
        bool enabled, function_masked;
        const HypervisorOps *hv; /* NULL or without irqfd: eventfds only (tests) */
        HvVm *hv_vm;
        unsigned errors;        /* hypervisor calls that failed */
} Msix;

/* Adds the capability to pci: table at table_off and PBA at pba_off in BAR bar. */
int msix_init(Msix *m, PciDevice *pci, unsigned n, unsigned bar, uint32_t table_off, uint32_t pba_off,
              const HypervisorOps *hv, HvVm *hv_vm);
void msix_done(Msix *m);

/* The PCI configuration word changed (call from config_written). */
void msix_config_written(Msix *m, uint32_t offset, uint32_t size);
bool msix_enabled(Msix *m);

/* BAR accesses, offset relative to the table / PBA. */
void msix_table_read(Msix *m, uint64_t offset, uint8_t *data, unsigned size);
void msix_table_write(Msix *m, uint64_t offset, const uint8_t *data, unsigned size);
void msix_pba_read(Msix *m, uint64_t offset, uint8_t *data, unsigned size);

/* Raises vector: delivered now, or its pending bit set while masked (and
 * delivered on unmask). false when MSI-X is disabled or vector is out of
 * range (the caller falls back to INTx). Any thread. */
bool msix_notify(Msix *m, unsigned vector);
/* The eventfd of a vector (tests read it to see deliveries). */
int msix_vector_fd(Msix *m, unsigned vector);

#ifdef __cplusplus
}
#endif
