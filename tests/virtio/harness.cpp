/* SPDX-License-Identifier: BSD-3-Clause */
#include "tests/virtio/harness.h"

#include <cerrno>
#include <cstddef>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace harness {

TempDir::TempDir(const char *prefix) {
        std::string t = std::string("/tmp/") + prefix + "-XXXXXX";

        if (!mkdtemp(t.data()))
                abort();
        path = t;
}

TempDir::~TempDir() {
        std::error_code ec;

        std::filesystem::remove_all(path, ec);
}

static int unix_socket_at(const std::string &path, bool listening) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {};

        sa.sun_family = AF_UNIX;
        if (fd < 0 || path.size() >= sizeof(sa.sun_path))
                abort();
        memcpy(sa.sun_path, path.c_str(), path.size());
        if (listening ? bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 64) < 0
                      : connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                abort();
        return fd;
}

int unix_listen(const std::string &path) {
        return unix_socket_at(path, true);
}

int unix_connect(const std::string &path) {
        return unix_socket_at(path, false);
}

bool readable(int fd, int timeout_ms) {
        struct pollfd p = { fd, POLLIN, 0 };

        return poll(&p, 1, timeout_ms) == 1;
}

std::string read_n(int fd, size_t n, int timeout_ms) {
        std::string s;

        while (s.size() < n) {
                char buf[4096];
                if (!readable(fd, timeout_ms))
                        break;
                ssize_t k = read(fd, buf, std::min(sizeof(buf), n - s.size()));
                if (k <= 0)
                        break;
                s.append(buf, (size_t) k);
        }
        return s;
}

static void put(GuestMemory *m, uint64_t gpa, const void *p, size_t n) {
        if (guest_write(m, gpa, p, n) < 0)
                abort();
}

VirtqDriver::VirtqDriver(GuestMemory *mem, uint64_t base, uint16_t size) : mem_(mem), size_(size) {
        desc_ = base;
        avail_ = desc_ + VIRTQ_DESC_BYTES(size);
        used_ = ALIGN_UP(avail_ + VIRTQ_AVAIL_BYTES(size), 4096);
        std::vector<uint8_t> zero(end() - base);
        put(mem, base, zero.data(), zero.size());
}

void VirtqDriver::write_desc_at(uint64_t gpa, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        VirtqDesc d = { addr, len, flags, next };
        put(mem_, gpa + (uint64_t) i * 16, &d, sizeof(d));
}

void VirtqDriver::set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        write_desc_at(desc_, i, addr, len, flags, next);
}

void VirtqDriver::publish(uint16_t head) {
        put(mem_, avail_ + 4 + 2 * (uint64_t) (avail_idx_ % size_), &head, 2);
        avail_idx_++;
        __atomic_thread_fence(__ATOMIC_RELEASE);
        put(mem_, avail_ + 2, &avail_idx_, 2);
}

void VirtqDriver::set_avail_idx(uint16_t idx) {
        avail_idx_ = idx;
        put(mem_, avail_ + 2, &idx, 2);
}

void VirtqDriver::set_avail_flags(uint16_t flags) {
        put(mem_, avail_, &flags, 2);
}

void VirtqDriver::set_used_event(uint16_t v) {
        put(mem_, avail_ + 4 + 2 * (uint64_t) size_, &v, 2);
}

uint16_t VirtqDriver::avail_event() const {
        uint16_t v = 0;
        (void) guest_read(mem_, used_ + 4 + 8 * (uint64_t) size_, &v, 2);
        return v;
}

uint16_t VirtqDriver::add_chain(const std::vector<Buf> &bufs) {
        uint16_t head = next_free_;

        for (size_t k = 0; k < bufs.size(); k++) {
                uint16_t i = next_free_;
                uint16_t next = (uint16_t) ((i + 1) % size_);
                uint16_t flags = (bufs[k].write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < bufs.size() ? VIRTQ_DESC_F_NEXT : 0);
                set_desc(i, bufs[k].addr, bufs[k].len, flags, next);
                next_free_ = next;
        }
        publish(head);
        return head;
}

uint16_t VirtqDriver::add_indirect(uint64_t table_gpa, const std::vector<Buf> &bufs) {
        uint16_t head = next_free_;

        for (size_t k = 0; k < bufs.size(); k++)
                write_desc_at(table_gpa, (uint16_t) k, bufs[k].addr, bufs[k].len,
                              (bufs[k].write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < bufs.size() ? VIRTQ_DESC_F_NEXT : 0),
                              (uint16_t) (k + 1));
        set_desc(head, table_gpa, (uint32_t) (bufs.size() * 16), VIRTQ_DESC_F_INDIRECT, 0);
        next_free_ = (uint16_t) ((next_free_ + 1) % size_);
        publish(head);
        return head;
}

uint16_t VirtqDriver::used_idx() const {
        uint16_t v = 0;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        (void) guest_read(mem_, used_ + 2, &v, 2);
        return v;
}

VirtqUsedElem VirtqDriver::used(uint16_t i) const {
        VirtqUsedElem e = {};
        (void) guest_read(mem_, used_ + 4 + 8 * (uint64_t) (i % size_), &e, sizeof(e));
        return e;
}

void VirtqDriver::program(VirtQueue *q) const {
        q->size = size_;
        q->desc_gpa = desc_;
        q->avail_gpa = avail_;
        q->used_gpa = used_;
}

/* ---- a fake hypervisor that logs ---- */

static int fake_route_alloc(HvVm *vm, unsigned *ret) {
        HvLog *log = (HvLog *) vm;
        *ret = log->next_gsi++;
        log->calls.push_back("alloc " + std::to_string(*ret));
        return 0;
}

static int fake_route_set(HvVm *vm, unsigned gsi, bool present, uint64_t addr, uint32_t data) {
        HvLog *log = (HvLog *) vm;
        log->calls.push_back(std::string(present ? "route " : "unroute ") + std::to_string(gsi));
        return 0;
}

static int fake_irqfd(HvVm *vm, int fd, unsigned gsi, bool assign) {
        HvLog *log = (HvLog *) vm;
        log->calls.push_back(std::string(assign ? "attach " : "detach ") + std::to_string(gsi));
        return 0;
}

static int fake_irqfd_resample(HvVm *vm, int fd, int resample_fd, unsigned gsi, bool assign) {
        HvLog *log = (HvLog *) vm;
        log->calls.push_back(std::string(assign ? "intx " : "unintx ") + std::to_string(gsi));
        log->intx_fd = assign ? fd : -1;
        log->intx_resample_fd = assign ? resample_fd : -1;
        return 0;
}

static int fake_ioeventfd(HvVm *vm, int fd, uint64_t addr, unsigned len, bool match, uint64_t data, bool assign) {
        HvLog *log = (HvLog *) vm;
        log->calls.push_back(std::string(assign ? "ioeventfd " : "unioeventfd ") + std::to_string(addr));
        return 0;
}

static int fake_map_extra(HvVm *vm, uint64_t gpa, uint64_t size, void *host, bool read_only, unsigned *ret) {
        HvLog *log = (HvLog *) vm;
        if (log->map_extra_error)
                return log->map_extra_error;
        *ret = log->next_slot++;
        log->slots[*ret] = HvLog::Slot{ gpa, size, host, read_only };
        log->calls.push_back("map " + std::to_string(gpa) + " " + std::to_string(size) + (read_only ? " ro" : " rw"));
        return 0;
}

static void fake_unmap_extra(HvVm *vm, unsigned slot) {
        HvLog *log = (HvLog *) vm;
        auto it = log->slots.find(slot);
        log->calls.push_back("unmap " + std::to_string(it == log->slots.end() ? 0 : it->second.gpa));
        if (it != log->slots.end())
                log->slots.erase(it);
}

int HvLog::guest_byte(uint64_t gpa) const {
        for (const auto &[slot, s] : slots)
                if (gpa >= s.gpa && gpa - s.gpa < s.size)
                        return ((const uint8_t *) s.host)[gpa - s.gpa];
        return -1;
}

static HypervisorOps make_fake_ops() {
        HypervisorOps o = {};
        o.name = "fake";
        o.msi_route_alloc = fake_route_alloc;
        o.msi_route_set = fake_route_set;
        o.irqfd = fake_irqfd;
        o.irqfd_resample = fake_irqfd_resample;
        o.ioeventfd = fake_ioeventfd;
        o.map_extra = fake_map_extra;
        o.unmap_extra = fake_unmap_extra;
        return o;
}

const HypervisorOps *fake_hypervisor_ops() {
        static const HypervisorOps ops = make_fake_ops();
        return &ops;
}

/* ---- PCI driver ---- */

PciDriver::PciDriver(const VirtioDeviceOps *ops, const char *arg, uint64_t mem_size, bool fake_hv) {
        VirtioDevice *vdev = nullptr;
        int r;

        if ((r = guest_memory_new(mem_size, &mem_)) < 0 ||
            (r = pci_bus_init(&bus_, &pio_, &mmio_, GUEST_MMIO_HOLE_START, 512 * MiB)) < 0 ||
            (r = virtio_device_new(ops, arg, mem_, &vdev)) < 0) {
                error_ = r;
                return;
        }
        attach(vdev, fake_hv);
}

PciDriver::PciDriver(const VirtioDeviceOps *ops, const VmmDevice &config, GuestMemory *shared_mem) {
        VirtioDevice *vdev = nullptr;
        int r;

        if (shared_mem) {
                mem_ = shared_mem;
                owns_mem_ = false;
        }
        if ((!shared_mem && (r = guest_memory_new(16 * MiB, &mem_)) < 0) ||
            (r = pci_bus_init(&bus_, &pio_, &mmio_, GUEST_MMIO_HOLE_START, 512 * MiB)) < 0 ||
            (r = virtio_device_new_config(ops, &config, mem_, &vdev)) < 0) {
                error_ = r;
                return;
        }
        attach(vdev, true);
}

void PciDriver::attach(VirtioDevice *vdev, bool fake_hv) {
        int r;

        r = virtio_pci_new(vdev, &bus_, fake_hv ? fake_hypervisor_ops() : nullptr, fake_hv ? (HvVm *) &log_ : nullptr,
                           IrqLine{}, &vp_);
        if (r < 0) {
                /* virtio_pci_new took vdev, freed on failure. */
                error_ = r;
                return;
        }
        slot_ = vp_->pci.slot;
        /* What firmware left: BAR 0 assigned; the driver enables memory. */
        config_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

PciDriver::~PciDriver() {
        virtio_pci_free(vp_);
        if (owns_mem_)
                guest_memory_free(mem_);
}

uint32_t PciDriver::config_read(unsigned off, unsigned size) {
        uint8_t data[4] = {};
        /* Through the real conf1 ports, as a guest would. */
        uint32_t addr = 0x80000000u | slot_ << 11 | (off & 0xfc);
        bus_write(&pio_, PCI_PORT_CONF_ADDR, (const uint8_t *) &addr, 4);
        bus_read(&pio_, PCI_PORT_CONF_DATA + (off & 3), data, size);
        uint32_t v = 0;
        memcpy(&v, data, size);
        return v;
}

void PciDriver::config_write(unsigned off, unsigned size, uint32_t v) {
        uint32_t addr = 0x80000000u | slot_ << 11 | (off & 0xfc);
        bus_write(&pio_, PCI_PORT_CONF_ADDR, (const uint8_t *) &addr, 4);
        bus_write(&pio_, PCI_PORT_CONF_DATA + (off & 3), (const uint8_t *) &v, size);
}

int64_t PciDriver::cap_offset(uint8_t cfg_type) {
        unsigned off = config_read(PCI_CAPABILITY_LIST, 1) & 0xfc;

        for (unsigned n = 0; off && n < 48; n++) {
                if (config_read(off, 1) == PCI_CAP_ID_VNDR && config_read(off + 3, 1) == cfg_type)
                        return config_read(off + 8, 4);
                off = config_read(off + 1, 1) & 0xfc;
        }
        return -1;
}

unsigned PciDriver::cap_position(uint8_t cfg_type, int id) {
        unsigned off = config_read(PCI_CAPABILITY_LIST, 1) & 0xfc;

        for (unsigned n = 0; off && n < 48; n++) {
                if (config_read(off, 1) == PCI_CAP_ID_VNDR && config_read(off + 3, 1) == cfg_type &&
                    (id < 0 || config_read(off + 5, 1) == (unsigned) id))
                        return off;
                off = config_read(off + 1, 1) & 0xfc;
        }
        return 0;
}

void PciDriver::set_cfg_window(uint8_t bar, uint32_t off, uint32_t length) {
        unsigned cap = cap_position(VIRTIO_PCI_CAP_PCI_CFG);

        config_write(cap + offsetof(struct virtio_pci_cap, bar), 1, bar);
        config_write(cap + offsetof(struct virtio_pci_cap, offset), 4, off);
        config_write(cap + offsetof(struct virtio_pci_cap, length), 4, length);
}

unsigned PciDriver::cfg_data_offset() {
        return cap_position(VIRTIO_PCI_CAP_PCI_CFG) + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
}

uint32_t PciDriver::cfg_window_read(uint8_t bar, uint32_t off, unsigned size) {
        set_cfg_window(bar, off, size);
        return config_read(cfg_data_offset(), size);
}

void PciDriver::cfg_window_write(uint8_t bar, uint32_t off, unsigned size, uint32_t v) {
        set_cfg_window(bar, off, size);
        config_write(cfg_data_offset(), size, v);
}

uint64_t PciDriver::bar_read(uint64_t off, unsigned size) {
        uint64_t bar = ((uint64_t) config_read(PCI_BAR0 + 4, 4) << 32) | (config_read(PCI_BAR0, 4) & ~0xfu);
        uint64_t v = 0;
        bus_read(&mmio_, bar + off, (uint8_t *) &v, size);
        return v;
}

void PciDriver::bar_write(uint64_t off, unsigned size, uint64_t v) {
        uint64_t bar = ((uint64_t) config_read(PCI_BAR0 + 4, 4) << 32) | (config_read(PCI_BAR0, 4) & ~0xfu);
        bus_write(&mmio_, bar + off, (const uint8_t *) &v, size);
}

bool PciDriver::negotiate(uint64_t features) {
        common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        common_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
        common_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        for (unsigned w = 0; w < 2; w++) {
                common_write(VIRTIO_PCI_COMMON_GFSELECT, 4, w);
                common_write(VIRTIO_PCI_COMMON_GF, 4, (uint32_t) (features >> (32 * w)));
        }
        common_write(VIRTIO_PCI_COMMON_STATUS, 1,
                     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
        return status() & VIRTIO_STATUS_FEATURES_OK;
}

void PciDriver::setup_queue(unsigned index, const VirtqDriver &q, uint16_t vector) {
        common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
        common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, q.size());
        common_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, vector);
        common_write(VIRTIO_PCI_COMMON_Q_DESCLO, 8, q.desc_gpa());
        common_write(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, q.avail_gpa());
        common_write(VIRTIO_PCI_COMMON_Q_USEDLO, 8, q.used_gpa());
        common_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
}

void PciDriver::driver_ok() {
        common_write(VIRTIO_PCI_COMMON_STATUS, 1, status() | VIRTIO_STATUS_DRIVER_OK);
}

static unsigned msix_cap(PciDriver *d) {
        unsigned off = d->config_read(PCI_CAPABILITY_LIST, 1) & 0xfc;
        for (unsigned n = 0; off && n < 48; n++) {
                if (d->config_read(off, 1) == PCI_CAP_ID_MSIX)
                        return off;
                off = d->config_read(off + 1, 1) & 0xfc;
        }
        return 0;
}

void PciDriver::enable_msix(bool function_mask) {
        unsigned cap = msix_cap(this);
        config_write(cap + 2, 2, MSIX_CTRL_ENABLE | (function_mask ? MSIX_CTRL_FUNCTION_MASK : 0));
}

void PciDriver::program_vector(unsigned vector, uint64_t addr, uint32_t data) {
        uint64_t e = VIRTIO_PCI_MSIX_TABLE_OFF + 16 * (uint64_t) vector;
        bar_write(e, 4, (uint32_t) addr);
        bar_write(e + 4, 4, addr >> 32);
        bar_write(e + 8, 4, data);
}

void PciDriver::set_vector_masked(unsigned vector, bool masked) {
        bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 16 * (uint64_t) vector + 12, 4, masked ? 1 : 0);
}

void PciDriver::kick(unsigned queue) {
        int64_t notify = cap_offset(VIRTIO_PCI_CAP_NOTIFY_CFG);
        bar_write((uint64_t) notify + 4 * (uint64_t) queue, 2, queue);
}

template <typename F> static bool poll_until(F cond, int timeout_ms) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (!cond()) {
                if (std::chrono::steady_clock::now() > end)
                        return false;
                std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return true;
}

bool PciDriver::wait_used(const VirtqDriver &q, uint16_t idx, int timeout_ms) {
        return poll_until([&] { return q.used_idx() == idx; }, timeout_ms);
}

bool PciDriver::wait_status(uint8_t bits, int timeout_ms) {
        return poll_until([&] { return (status() & bits) == bits; }, timeout_ms);
}

bool PciDriver::wait_vector(unsigned vector, int timeout_ms) {
        struct pollfd p = { msix_vector_fd(&vp_->msix, vector), POLLIN, 0 };
        uint64_t v;

        if (poll(&p, 1, timeout_ms) != 1)
                return false;
        return read(p.fd, &v, sizeof(v)) == sizeof(v);
}

} // namespace harness
