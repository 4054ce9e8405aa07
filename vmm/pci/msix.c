/* SPDX-License-Identifier: BSD-3-Clause */
/* MSI-X emulation. Each vector is an eventfd. While the vector is
 * deliverable (MSI-X enabled, function and vector unmasked) the eventfd is
 * attached with irqfd to a GSI whose route is the vector's MSI message, so
 * a device worker's write reaches the guest without a VMM exit. While it
 * is masked, the irqfd is detached and the route removed, and a device's
 * interrupt sets the pending bit instead (PCI 3.0 §6.8.3.4).
 *
 * Order matters: on mask the irqfd is detached FIRST and only then is the
 * routing table rewritten; on unmask the route is installed first, then the
 * irqfd attached. Rewriting the route of a GSI an irqfd is still attached
 * to races with KVM's irqfd injection (cloud-hypervisor's MSI-X masking
 * fix). */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/macro.h"
#include "vmm/pci/msix.h"

static bool have_irqfd(const Msix *m) {
        return m->hv && m->hv->irqfd && m->hv->msi_route_set && m->hv->msi_route_alloc;
}

int msix_init(Msix *m, PciDevice *pci, unsigned n, unsigned bar, uint32_t table_off, uint32_t pba_off,
              const HypervisorOps *hv, HvVm *hv_vm) {
        uint8_t cap[12] = { PCI_CAP_ID_MSIX, 0 };
        int r;

        if (n == 0 || n > MSIX_MAX_VECTORS || table_off % 8 || pba_off % 8)
                return -EINVAL;
        *m = (Msix) { .pci = pci, .n = n, .hv = hv, .hv_vm = hv_vm };
        pthread_mutex_init(&m->lock, NULL);
        for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++)
                m->v[i].fd = -EBADF;
        for (unsigned i = 0; i < n; i++) {
                /* §6.8.2.9: vectors start masked. */
                m->v[i].ctrl = MSIX_VECTOR_MASKED;
                m->v[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (m->v[i].fd < 0)
                        return -errno;
                if (have_irqfd(m)) {
                        r = hv->msi_route_alloc(hv_vm, &m->v[i].gsi);
                        if (r < 0)
                                return r;
                        m->v[i].have_gsi = true;
                }
        }
        /* §6.8.2.3-5: table size - 1, then offset | BIR for table and PBA. */
        cap[2] = (uint8_t) (n - 1);
        cap[3] = (uint8_t) ((n - 1) >> 8);
        memcpy(cap + 4, &(uint32_t) { table_off | bar }, 4);
        memcpy(cap + 8, &(uint32_t) { pba_off | bar }, 4);
        r = pci_device_add_cap(pci, cap, sizeof(cap));
        if (r < 0)
                return r;
        m->cap = (uint8_t) r;
        /* Only Enable and Function Mask are writable. */
        pci->wmask[m->cap + 3] = 0xc0;
        return 0;
}

void msix_done(Msix *m) {
        for (unsigned i = 0; i < m->n; i++) {
                if (m->v[i].attached && have_irqfd(m))
                        (void) m->hv->irqfd(m->hv_vm, m->v[i].fd, m->v[i].gsi, false);
                safe_close(m->v[i].fd);
        }
        pthread_mutex_destroy(&m->lock);
}

static bool deliverable(const Msix *m, const MsixVector *v) {
        return m->enabled && !m->function_masked && !(v->ctrl & MSIX_VECTOR_MASKED);
}

static void fire(MsixVector *v) {
        (void) !write(v->fd, &(uint64_t) { 1 }, sizeof(uint64_t));
}

/* Brings vector i's irqfd and route in line with its state; lock held. */
static void vector_update(Msix *m, unsigned i) {
        MsixVector *v = &m->v[i];
        uint64_t addr = (uint64_t) v->addr_hi << 32 | v->addr_lo;
        bool want = deliverable(m, v);

        if (!have_irqfd(m)) {
                /* No hypervisor (tests): deliveries are eventfd writes. */
                v->attached = want;
        } else if (!want) {
                /* Detach first, then rewrite the table. */
                if (v->attached) {
                        if (m->hv->irqfd(m->hv_vm, v->fd, v->gsi, false) < 0)
                                m->errors++;
                        v->attached = false;
                }
                if (v->routed) {
                        if (m->hv->msi_route_set(m->hv_vm, v->gsi, false, 0, 0) < 0)
                                m->errors++;
                        v->routed = false;
                }
        } else {
                if (!v->routed || v->routed_addr != addr || v->routed_data != v->data) {
                        if (m->hv->msi_route_set(m->hv_vm, v->gsi, true, addr, v->data) < 0)
                                m->errors++;
                        v->routed = true;
                        v->routed_addr = addr;
                        v->routed_data = v->data;
                }
                if (!v->attached) {
                        uint64_t stale = 0;
                        /* Our own writes made while detached were counted
                         * as pending bits, never on the eventfd; a count
                         * there is a vhost-user back-end's, which writes
                         * the eventfd itself: its interrupt is pending, sent
                         * below, once (not injected again by attaching). */
                        if (read(v->fd, &stale, sizeof(stale)) == sizeof(stale) && stale > 0)
                                m->pba[i / 64] |= UINT64_C(1) << (i % 64);
                        if (m->hv->irqfd(m->hv_vm, v->fd, v->gsi, true) < 0)
                                m->errors++;
                        v->attached = true;
                }
        }

        /* §6.8.3.4 (PCI 3.0): a pending message is sent once unmasked. */
        if (want && (m->pba[i / 64] & (UINT64_C(1) << (i % 64)))) {
                m->pba[i / 64] &= ~(UINT64_C(1) << (i % 64));
                fire(v);
        }
}

void msix_config_written(Msix *m, uint32_t offset, uint32_t size) {
        uint16_t ctrl;

        if (offset + size <= m->cap + 2u || offset >= m->cap + 4u)
                return;
        memcpy(&ctrl, m->pci->config + m->cap + 2, 2);
        pthread_mutex_lock(&m->lock);
        m->enabled = ctrl & MSIX_CTRL_ENABLE;
        m->function_masked = ctrl & MSIX_CTRL_FUNCTION_MASK;
        for (unsigned i = 0; i < m->n; i++)
                vector_update(m, i);
        pthread_mutex_unlock(&m->lock);
}

bool msix_enabled(Msix *m) {
        bool e;

        pthread_mutex_lock(&m->lock);
        e = m->enabled;
        pthread_mutex_unlock(&m->lock);
        return e;
}

static bool dword_access(uint64_t offset, unsigned size) {
        /* §6.8.2: the table is accessed as aligned dwords (or qwords). */
        return (size == 4 || size == 8) && offset % size == 0;
}

static uint32_t *entry_word(Msix *m, uint64_t offset) {
        MsixVector *v = &m->v[offset / MSIX_ENTRY_SIZE];

        switch (offset % MSIX_ENTRY_SIZE) {
        case 0: return &v->addr_lo;
        case 4: return &v->addr_hi;
        case 8: return &v->data;
        default: return &v->ctrl;
        }
}

void msix_table_read(Msix *m, uint64_t offset, uint8_t *data, unsigned size) {
        memset(data, 0xff, size);
        if (!dword_access(offset, size) || offset + size > (uint64_t) m->n * MSIX_ENTRY_SIZE)
                return;
        pthread_mutex_lock(&m->lock);
        for (unsigned k = 0; k < size; k += 4)
                memcpy(data + k, entry_word(m, offset + k), 4);
        pthread_mutex_unlock(&m->lock);
}

void msix_table_write(Msix *m, uint64_t offset, const uint8_t *data, unsigned size) {
        if (!dword_access(offset, size) || offset + size > (uint64_t) m->n * MSIX_ENTRY_SIZE)
                return;
        pthread_mutex_lock(&m->lock);
        for (unsigned k = 0; k < size; k += 4) {
                uint32_t w;
                memcpy(&w, data + k, 4);
                if ((offset + k) % MSIX_ENTRY_SIZE == 12)
                        w &= MSIX_VECTOR_MASKED; /* other control bits are reserved */
                *entry_word(m, offset + k) = w;
        }
        vector_update(m, (unsigned) (offset / MSIX_ENTRY_SIZE));
        pthread_mutex_unlock(&m->lock);
}

void msix_pba_read(Msix *m, uint64_t offset, uint8_t *data, unsigned size) {
        memset(data, 0, size);
        if (!dword_access(offset, size) || offset + size > sizeof(m->pba))
                return;
        pthread_mutex_lock(&m->lock);
        memcpy(data, (uint8_t *) m->pba + offset, size);
        pthread_mutex_unlock(&m->lock);
}

bool msix_notify(Msix *m, unsigned vector) {
        bool ok = true;

        if (vector >= m->n)
                return false;
        pthread_mutex_lock(&m->lock);
        if (!m->enabled)
                ok = false;
        else if (deliverable(m, &m->v[vector]))
                fire(&m->v[vector]);
        else
                m->pba[vector / 64] |= UINT64_C(1) << (vector % 64);
        pthread_mutex_unlock(&m->lock);
        return ok;
}

int msix_vector_fd(Msix *m, unsigned vector) {
        return vector < m->n ? m->v[vector].fd : -EBADF;
}
