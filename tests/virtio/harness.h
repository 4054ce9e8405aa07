/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A host-side virtio driver: plays the guest on a GuestMemory, without KVM.
 * VirtqDriver lays out one split virtqueue and builds descriptor chains,
 * good or bad; PciDriver drives a device through the real PCI transport
 * (configuration space, capabilities, common configuration, MSI-X, notify)
 * the way Linux's virtio_pci_modern does. */

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vmm/bus.h"
#include "vmm/memory.h"
#include "vmm/pci/pci.h"
#include "vmm/virtio/device.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio-pci.h"

namespace harness {

/* The ring features a modern driver takes (§6): what the tests and
 * benchmarks negotiate unless they test features. */
constexpr uint64_t BASE_FEATURES = (UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << VIRTIO_F_EVENT_IDX) |
                                   (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC);

/* A fresh directory /tmp/PREFIX-XXXXXX for sockets and files, removed
 * with its contents at the end. */
struct TempDir {
        explicit TempDir(const char *prefix = "virtio-test");
        ~TempDir();
        TempDir(const TempDir &) = delete;
        TempDir &operator=(const TempDir &) = delete;
        std::string path;
};

/* AF_UNIX stream sockets at path, blocking, O_CLOEXEC; abort() on failure
 * (a test cannot go on without them). */
int unix_listen(const std::string &path);
int unix_connect(const std::string &path);
/* Whether fd becomes readable within timeout_ms. */
bool readable(int fd, int timeout_ms);
/* Reads n bytes; what arrived when it timed out or hit EOF first. */
std::string read_n(int fd, size_t n, int timeout_ms = 2000);

struct Buf {
        uint64_t addr;
        uint32_t len;
        bool write;
};

/* One split virtqueue in guest memory at `base`: descriptor table, then the
 * available ring, then (4 KiB aligned) the used ring. */
class VirtqDriver {
public:
        VirtqDriver(GuestMemory *mem, uint64_t base, uint16_t size);

        uint16_t size() const { return size_; }
        uint64_t desc_gpa() const { return desc_; }
        uint64_t avail_gpa() const { return avail_; }
        uint64_t used_gpa() const { return used_; }
        uint64_t end() const { return used_ + VIRTQ_USED_BYTES(size_); }

        /* Raw building blocks, for bad chains. */
        void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
        void write_desc_at(uint64_t gpa, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
        void publish(uint16_t head);            /* ring[idx] = head; idx++ */
        void set_avail_idx(uint16_t idx);
        void set_avail_flags(uint16_t flags);
        void set_used_event(uint16_t v);
        uint16_t avail_event() const;

        /* A chain of direct descriptors from the next free slots; published. */
        uint16_t add_chain(const std::vector<Buf> &bufs);
        /* One descriptor pointing at an indirect table written at table_gpa. */
        uint16_t add_indirect(uint64_t table_gpa, const std::vector<Buf> &bufs);

        uint16_t used_idx() const;
        VirtqUsedElem used(uint16_t i) const;

        /* Programs a VirtQueue directly (walker tests, no transport). */
        void program(VirtQueue *q) const;

private:
        GuestMemory *mem_;
        uint16_t size_;
        uint64_t desc_, avail_, used_;
        uint16_t avail_idx_ = 0;
        uint16_t next_free_ = 0;
};

/* Records what the transport asked of the hypervisor, in order. */
struct HvLog {
        std::vector<std::string> calls;
        unsigned next_gsi = 100;
        /* The INTx resampling irqfd the transport attached, -1 if none:
         * readable once the line was raised; writing intx_resample_fd
         * plays the guest's EOI. */
        int intx_fd = -1, intx_resample_fd = -1;
        /* Extra memory slots (a device's shared memory mappings) now in
         * place: slot -> where the guest sees what host memory. */
        struct Slot {
                uint64_t gpa, size;
                void *host;
                bool read_only;
        };
        std::map<unsigned, Slot> slots;
        unsigned next_slot = 32;
        int map_extra_error = 0;        /* what map_extra returns when not 0 */
        /* The host byte the guest would read at gpa through a slot; -1: none. */
        int guest_byte(uint64_t gpa) const;
};

/* A HypervisorOps with only the routing/irqfd/ioeventfd ops, logging to
 * the HvLog passed as the HvVm pointer. */
const HypervisorOps *fake_hypervisor_ops();

class PciDriver {
public:
        /* Builds the device from ops (arg as on the command line). */
        PciDriver(const VirtioDeviceOps *ops, const char *arg, uint64_t mem_size = 16 * MiB, bool fake_hv = false);
        /* Builds the device from a typed configuration (descriptors in it
         * stay the caller's), on shared_mem when given (the caller's, kept
         * past this driver: two devices on one guest's RAM), else on 16 MiB
         * of its own. The fake hypervisor, so MSI-X vectors deliver. */
        PciDriver(const VirtioDeviceOps *ops, const VmmDevice &config, GuestMemory *shared_mem = nullptr);
        ~PciDriver();
        int error() const { return error_; }

        GuestMemory *mem() { return mem_; }
        VirtioPci *transport() { return vp_; }
        VirtioDevice *device() { return vp_->vdev; }
        HvLog &hv_log() { return log_; }
        unsigned slot() const { return slot_; }

        uint32_t config_read(unsigned off, unsigned size);
        void config_write(unsigned off, unsigned size, uint32_t v);
        /* Finds the virtio capability of cfg_type; offset into BAR 0 or -1. */
        int64_t cap_offset(uint8_t cfg_type);
        /* Where in config space the virtio capability of cfg_type starts
         * (with cap.id == id when id >= 0); 0 when there is none. */
        unsigned cap_position(uint8_t cfg_type, int id = -1);

        /* The VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.8): set_cfg_window
         * writes cap.bar, cap.offset and cap.length as given (good or bad);
         * cfg_data_offset is where pci_cfg_data is in config space.
         * cfg_window_read/write set the window to [off, +size) and access
         * pci_cfg_data with size bytes, as SeaBIOS does. */
        void set_cfg_window(uint8_t bar, uint32_t off, uint32_t length);
        unsigned cfg_data_offset();
        uint32_t cfg_window_read(uint8_t bar, uint32_t off, unsigned size);
        void cfg_window_write(uint8_t bar, uint32_t off, unsigned size, uint32_t v);

        uint64_t bar_read(uint64_t off, unsigned size);
        void bar_write(uint64_t off, unsigned size, uint64_t v);
        uint64_t common_read(uint64_t off, unsigned size) { return bar_read(VIRTIO_PCI_COMMON_OFF + off, size); }
        void common_write(uint64_t off, unsigned size, uint64_t v) { bar_write(VIRTIO_PCI_COMMON_OFF + off, size, v); }
        uint8_t status() { return (uint8_t) common_read(VIRTIO_PCI_COMMON_STATUS, 1); }

        /* §3.1.1 steps 1-6: reset, ACK, DRIVER, features, FEATURES_OK.
         * Returns whether FEATURES_OK stuck. */
        bool negotiate(uint64_t features);
        void setup_queue(unsigned index, const VirtqDriver &q, uint16_t vector = VIRTIO_MSI_NO_VECTOR);
        void driver_ok();
        void enable_msix(bool function_mask = false);
        void set_vector_masked(unsigned vector, bool masked);
        void program_vector(unsigned vector, uint64_t addr, uint32_t data);
        void kick(unsigned queue);

        bool wait_used(const VirtqDriver &q, uint16_t idx, int timeout_ms = 2000);
        bool wait_status(uint8_t bits, int timeout_ms = 2000);
        /* Consumes one delivery of an MSI-X vector (its eventfd). */
        bool wait_vector(unsigned vector, int timeout_ms = 2000);

private:
        void attach(VirtioDevice *vdev, bool fake_hv);

        int error_ = 0;
        GuestMemory *mem_ = nullptr;
        bool owns_mem_ = true;
        Bus pio_{}, mmio_{};
        PciBus bus_{};
        VirtioPci *vp_ = nullptr;
        unsigned slot_ = 0;
        HvLog log_;
};

} // namespace harness
