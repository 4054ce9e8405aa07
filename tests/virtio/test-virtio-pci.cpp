/* SPDX-License-Identifier: BSD-3-Clause */
/* The PCI host bridge and the virtio PCI transport, driven through the
 * harness the way a guest driver would. The rng device stands in for any
 * device. */
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/virtio/harness.h"

extern "C" const VirtioDeviceOps virtio_rng_ops;

using harness::BASE_FEATURES;
using harness::HvLog;
using harness::PciDriver;
using harness::VirtqDriver;

namespace {

constexpr uint64_t F_VERSION_1 = UINT64_C(1) << VIRTIO_F_VERSION_1;
constexpr uint64_t F_EVENT_IDX = UINT64_C(1) << VIRTIO_F_EVENT_IDX;
constexpr uint64_t F_INDIRECT = UINT64_C(1) << VIRTIO_F_INDIRECT_DESC;

TEST(PciBus, host_bridge_answers_at_00_00_0) {
        Bus pio{}, mmio{};
        PciBus b;
        ASSERT_EQ(pci_bus_init(&b, &pio, &mmio, GUEST_MMIO_HOLE_START, 256 * MiB), 0);
        EXPECT_EQ(pci_config_read(&b, 0, 0, PCI_VENDOR_ID, 2), 0x8086u);
        EXPECT_EQ(pci_config_read(&b, 0, 0, PCI_REVISION_ID, 4) >> 8, 0x060000u);
        pci_bus_done(&b);
}

TEST(PciBus, conf1_address_register_reads_back_like_linux_probes_it) {
        Bus pio{}, mmio{};
        PciBus b;
        ASSERT_EQ(pci_bus_init(&b, &pio, &mmio, GUEST_MMIO_HOLE_START, 256 * MiB), 0);
        uint32_t v = 0x80000000u, got = 0;
        bus_write(&pio, 0xcf8, (uint8_t *) &v, 4);
        bus_read(&pio, 0xcf8, (uint8_t *) &got, 4);
        EXPECT_EQ(got, 0x80000000u);
        pci_bus_done(&b);
}

TEST(PciBus, empty_slot_reads_all_ones) {
        Bus pio{}, mmio{};
        PciBus b;
        ASSERT_EQ(pci_bus_init(&b, &pio, &mmio, GUEST_MMIO_HOLE_START, 256 * MiB), 0);
        EXPECT_EQ(pci_config_read(&b, 7, 0, 0, 4), 0xffffffffu);
        EXPECT_EQ(pci_config_read(&b, 0, 3, 0, 4), 0xffffffffu);
        pci_bus_done(&b);
}

TEST(PciBus, config_access_past_the_end_or_misaligned_is_harmless) {
        Bus pio{}, mmio{};
        PciBus b;
        ASSERT_EQ(pci_bus_init(&b, &pio, &mmio, GUEST_MMIO_HOLE_START, 256 * MiB), 0);
        EXPECT_EQ(pci_config_read(&b, 0, 0, 254, 4), 0xffffffffu);
        EXPECT_EQ(pci_config_read(&b, 0, 0, 1, 2), 0xffffu);
        pci_config_write(&b, 0, 0, 255, 4, 0);
        pci_config_write(&b, 0, 0, 3, 2, 0);
        EXPECT_EQ(pci_config_read(&b, 0, 0, PCI_VENDOR_ID, 2), 0x8086u);
        pci_bus_done(&b);
}

class Transport : public ::testing::Test {
protected:
        PciDriver d{ &virtio_rng_ops, nullptr };

        /* Features negotiated, queue 0 on q, DRIVER_OK. */
        bool start(VirtqDriver &q) {
                if (!d.negotiate(F_VERSION_1))
                        return false;
                d.setup_queue(0, q);
                d.driver_ok();
                return true;
        }
};

TEST_F(Transport, device_has_virtio_ids_and_revision_1) {
        ASSERT_EQ(d.error(), 0);
        EXPECT_EQ(d.config_read(PCI_VENDOR_ID, 2), 0x1af4u);
        EXPECT_EQ(d.config_read(PCI_DEVICE_ID, 2), 0x1044u);
        EXPECT_EQ(d.config_read(PCI_REVISION_ID, 1), 1u);
}

TEST_F(Transport, bar0_is_64_bit_in_the_mmio_hole) {
        uint32_t lo = d.config_read(PCI_BAR0, 4);
        EXPECT_EQ(lo & 0x6, (uint32_t) PCI_BAR_MEM_64);
        uint64_t addr = ((uint64_t) d.config_read(PCI_BAR0 + 4, 4) << 32) | (lo & ~0xfu);
        EXPECT_GE(addr, GUEST_MMIO_HOLE_START);
        EXPECT_LT(addr + VIRTIO_PCI_BAR0_SIZE, UINT64_C(0xfec00000));
}

TEST_F(Transport, bar_sizing_reads_the_size_mask) {
        uint32_t saved = d.config_read(PCI_BAR0, 4);
        d.config_write(PCI_COMMAND, 2, 0);
        d.config_write(PCI_BAR0, 4, 0xffffffff);
        EXPECT_EQ(d.config_read(PCI_BAR0, 4) & ~0xfu, (uint32_t) ~(VIRTIO_PCI_BAR0_SIZE - 1));
        d.config_write(PCI_BAR0, 4, saved);
}

TEST_F(Transport, bar_decodes_only_with_memory_enabled) {
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 1u);
        d.config_write(PCI_COMMAND, 2, 0);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 0xffffu);
}

TEST_F(Transport, moved_bar_follows_the_new_address) {
        uint64_t new_addr = GUEST_MMIO_HOLE_START + 64 * MiB;
        d.config_write(PCI_COMMAND, 2, 0);
        d.config_write(PCI_BAR0, 4, (uint32_t) new_addr);
        d.config_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 1u);
}

TEST_F(Transport, capabilities_describe_common_isr_and_notify) {
        EXPECT_EQ(d.cap_offset(VIRTIO_PCI_CAP_COMMON_CFG), VIRTIO_PCI_COMMON_OFF);
        EXPECT_EQ(d.cap_offset(VIRTIO_PCI_CAP_ISR_CFG), VIRTIO_PCI_ISR_OFF);
        EXPECT_EQ(d.cap_offset(VIRTIO_PCI_CAP_NOTIFY_CFG), VIRTIO_PCI_NOTIFY_OFF);
        /* rng has no device configuration (§5.4.4). */
        EXPECT_EQ(d.cap_offset(VIRTIO_PCI_CAP_DEVICE_CFG), -1);
}

TEST_F(Transport, device_offers_version_1_indirect_and_event_idx) {
        d.common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_DF, 4) & 1, 1u);
        d.common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
        uint32_t lo = (uint32_t) d.common_read(VIRTIO_PCI_COMMON_DF, 4);
        EXPECT_TRUE(lo & (1u << VIRTIO_F_INDIRECT_DESC));
        EXPECT_TRUE(lo & (1u << VIRTIO_F_EVENT_IDX));
}

TEST_F(Transport, features_ok_sticks_for_offered_features) {
        EXPECT_TRUE(d.negotiate(F_VERSION_1 | F_EVENT_IDX | F_INDIRECT));
}

TEST_F(Transport, features_ok_refused_for_features_never_offered) {
        EXPECT_FALSE(d.negotiate(F_VERSION_1 | (UINT64_C(1) << 5)));
}

TEST_F(Transport, features_ok_refused_without_version_1) {
        EXPECT_FALSE(d.negotiate(F_EVENT_IDX));
}

TEST_F(Transport, driver_ok_without_features_ok_does_not_start_the_device) {
        EXPECT_FALSE(d.negotiate(F_EVENT_IDX));
        d.driver_ok();
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_DRIVER_OK);
}

TEST_F(Transport, queue_size_reads_zero_for_a_queue_that_does_not_exist) {
        d.common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 5);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0u);
}

TEST_F(Transport, queue_with_size_not_power_of_two_sets_needs_reset) {
        ASSERT_TRUE(d.negotiate(F_VERSION_1));
        VirtqDriver q(d.mem(), 0x10000, 16);
        d.common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        d.common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 24);
        d.common_write(VIRTIO_PCI_COMMON_Q_DESCLO, 8, q.desc_gpa());
        d.common_write(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, q.avail_gpa());
        d.common_write(VIRTIO_PCI_COMMON_Q_USEDLO, 8, q.used_gpa());
        d.common_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        EXPECT_TRUE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
}

TEST_F(Transport, queue_with_rings_outside_ram_sets_needs_reset) {
        ASSERT_TRUE(d.negotiate(F_VERSION_1));
        d.common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        d.common_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
        d.common_write(VIRTIO_PCI_COMMON_Q_DESCLO, 8, 64 * GiB);
        d.common_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        EXPECT_TRUE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
}

TEST_F(Transport, reset_clears_status_and_queues) {
        VirtqDriver q(d.mem(), 0x10000, 16);
        ASSERT_TRUE(start(q));
        d.common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        EXPECT_EQ(d.status(), 0);
        d.common_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256u);
}

TEST_F(Transport, common_config_access_of_the_wrong_width_is_ignored) {
        d.common_write(VIRTIO_PCI_COMMON_Q_SELECT, 4, 0x12345678);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0u);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_NUMQ, 4), 0u);
}

TEST_F(Transport, device_config_access_past_the_end_reads_zero) {
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_DEVICE_OFF + 0x800, 4), 0u);
        d.bar_write(VIRTIO_PCI_DEVICE_OFF + 0xffc, 8, ~0ull);
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_DEVICE_OFF, 8), 0u);
}

TEST_F(Transport, notify_for_a_queue_that_does_not_exist_is_ignored) {
        VirtqDriver q(d.mem(), 0x10000, 16);
        ASSERT_TRUE(start(q));
        d.bar_write(VIRTIO_PCI_NOTIFY_OFF + 4 * 7, 2, 7);
        d.bar_write(VIRTIO_PCI_NOTIFY_OFF + 0xff0, 2, 0);
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        EXPECT_TRUE(d.status() & VIRTIO_STATUS_DRIVER_OK);
}

TEST_F(Transport, notify_before_driver_ok_consumes_nothing) {
        ASSERT_TRUE(d.negotiate(F_VERSION_1));
        VirtqDriver q(d.mem(), 0x10000, 16);
        d.setup_queue(0, q);
        q.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        EXPECT_FALSE(d.wait_used(q, 1, 100));
}

TEST_F(Transport, isr_reads_the_queue_bit_once_without_msix) {
        VirtqDriver q(d.mem(), 0x10000, 16);
        ASSERT_TRUE(start(q));
        q.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        /* The interrupt follows the used idx on the worker; poll for it. */
        uint64_t isr = 0;
        for (int i = 0; i < 1000 && !isr; i++)
                isr = d.bar_read(VIRTIO_PCI_ISR_OFF, 1);
        EXPECT_EQ(isr, 1u);
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 0u);
}

TEST_F(Transport, invalid_msix_vector_reads_back_no_vector) {
        d.common_write(VIRTIO_PCI_COMMON_MSIX, 2, 40);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_MSIX, 2), (uint64_t) VIRTIO_MSI_NO_VECTOR);
}

/* ---- the PCI configuration access capability (§4.1.4.8) ---- */

TEST_F(Transport, pci_cfg_capability_is_present_with_its_data_field) {
        unsigned cap = d.cap_position(VIRTIO_PCI_CAP_PCI_CFG);
        ASSERT_NE(cap, 0u);
        EXPECT_EQ(d.config_read(cap + 2, 1), sizeof(struct virtio_pci_cfg_cap));
}

TEST_F(Transport, pci_cfg_window_fields_read_back_what_the_driver_wrote) {
        unsigned cap = d.cap_position(VIRTIO_PCI_CAP_PCI_CFG);
        d.set_cfg_window(0, VIRTIO_PCI_COMMON_NUMQ, 2);
        EXPECT_EQ(d.config_read(cap + offsetof(struct virtio_pci_cap, bar), 1), 0u);
        EXPECT_EQ(d.config_read(cap + offsetof(struct virtio_pci_cap, offset), 4), (uint32_t) VIRTIO_PCI_COMMON_NUMQ);
        EXPECT_EQ(d.config_read(cap + offsetof(struct virtio_pci_cap, length), 4), 2u);
}

TEST_F(Transport, pci_cfg_window_reads_num_queues) {
        EXPECT_EQ(d.cfg_window_read(0, VIRTIO_PCI_COMMON_NUMQ, 2), 1u);
}

TEST_F(Transport, pci_cfg_window_reads_device_features) {
        d.cfg_window_write(0, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
        EXPECT_EQ(d.cfg_window_read(0, VIRTIO_PCI_COMMON_DF, 4) & 1, 1u);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_DFSELECT, 4), 1u);
}

TEST_F(Transport, pci_cfg_window_works_with_memory_decoding_off) {
        d.config_write(PCI_COMMAND, 2, 0);
        EXPECT_EQ(d.cfg_window_read(0, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256u);
}

TEST_F(Transport, pci_cfg_window_write_reaches_common_config) {
        d.cfg_window_write(0, VIRTIO_PCI_COMMON_Q_SELECT, 2, 3);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 3u);
}

TEST_F(Transport, pci_cfg_window_keeps_common_config_field_widths) {
        d.cfg_window_write(0, VIRTIO_PCI_COMMON_Q_SELECT, 4, 3);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0u);
        EXPECT_EQ(d.cfg_window_read(0, VIRTIO_PCI_COMMON_NUMQ, 1), 0u);
}

TEST_F(Transport, pci_cfg_window_notify_makes_the_device_process_the_queue) {
        VirtqDriver q(d.mem(), 0x10000, 16);
        ASSERT_TRUE(start(q));
        q.add_chain({ { 0x100000, 16, true } });
        d.cfg_window_write(0, (uint32_t) d.cap_offset(VIRTIO_PCI_CAP_NOTIFY_CFG), 2, 0);
        EXPECT_TRUE(d.wait_used(q, 1));
}

TEST_F(Transport, pci_cfg_window_read_of_isr_clears_it) {
        VirtqDriver q(d.mem(), 0x10000, 16);
        ASSERT_TRUE(start(q));
        q.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        uint32_t isr = 0;
        for (int i = 0; i < 1000 && !isr; i++)
                isr = d.cfg_window_read(0, VIRTIO_PCI_ISR_OFF, 1);
        EXPECT_EQ(isr, 1u);
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 0u);
}

TEST_F(Transport, pci_cfg_data_reads_zero_before_the_driver_sets_the_window) {
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 4), 0u);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 1), 0u);
}

TEST_F(Transport, pci_cfg_window_on_a_bar_the_device_lacks_reads_zero_and_drops_writes) {
        /* 1 is BAR 0's upper half; 2-5 are empty; 6 and up are not BARs. */
        for (uint8_t bar : { 1, 2, 3, 5, 6, 0xff }) {
                EXPECT_EQ(d.cfg_window_read(bar, VIRTIO_PCI_COMMON_NUMQ, 2), 0u) << "bar " << (int) bar;
                d.cfg_window_write(bar, VIRTIO_PCI_COMMON_Q_SELECT, 2, 3);
        }
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0u);
}

TEST_F(Transport, pci_cfg_window_offset_not_a_multiple_of_length_reads_zero_and_drops_writes) {
        /* The MSI-X table answers a misaligned access with all ones, so
         * a 0 here means the window refused it. */
        d.set_cfg_window(0, VIRTIO_PCI_MSIX_TABLE_OFF + 2, 4);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 4), 0u);
        d.set_cfg_window(0, VIRTIO_PCI_COMMON_Q_SELECT + 1, 2);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 2), 0u);
        d.set_cfg_window(0, VIRTIO_PCI_COMMON_Q_SIZE - 2, 4);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 4), 0u);
        d.set_cfg_window(0, VIRTIO_PCI_COMMON_DFSELECT + 2, 4);
        d.config_write(d.cfg_data_offset(), 4, 1);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_DFSELECT, 4), 0u);
}

TEST_F(Transport, pci_cfg_window_length_other_than_1_2_or_4_reads_zero_and_drops_writes) {
        for (uint32_t len : { 0u, 3u, 8u, 16u, 0xffffffffu }) {
                d.set_cfg_window(0, VIRTIO_PCI_COMMON_NUMQ, len);
                for (unsigned size : { 1u, 2u, 4u })
                        EXPECT_EQ(d.config_read(d.cfg_data_offset(), size), 0u) << "length " << len;
                d.set_cfg_window(0, VIRTIO_PCI_COMMON_DFSELECT, len);
                d.config_write(d.cfg_data_offset(), 4, 1);
        }
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_DFSELECT, 4), 0u);
}

TEST_F(Transport, pci_cfg_window_past_the_end_of_the_bar_reads_zero_and_drops_writes) {
        for (uint32_t off : { (uint32_t) VIRTIO_PCI_BAR0_SIZE, (uint32_t) VIRTIO_PCI_BAR0_SIZE * 2, 0xfffffffcu }) {
                EXPECT_EQ(d.cfg_window_read(0, off, 4), 0u) << "offset " << off;
                d.cfg_window_write(0, off, 4, 0xffffffffu);
        }
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_NUMQ, 2), 1u);
}

TEST_F(Transport, pci_cfg_data_access_of_another_width_than_length_is_ignored) {
        /* The MSI-X table answers a byte read with 0xff. */
        d.set_cfg_window(0, VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 1), 0u);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 4), 1u); /* masked at reset */

        d.set_cfg_window(0, VIRTIO_PCI_COMMON_Q_SIZE, 2);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 4), 0u);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 1), 0u);
        EXPECT_EQ(d.config_read(d.cfg_data_offset() + 2, 2), 0u);
        EXPECT_EQ(d.config_read(d.cfg_data_offset(), 2), 256u);

        d.set_cfg_window(0, VIRTIO_PCI_COMMON_Q_SELECT, 2);
        d.config_write(d.cfg_data_offset(), 4, 3);
        d.config_write(d.cfg_data_offset() + 2, 2, 3);
        d.config_write(d.cfg_data_offset() + 1, 1, 3);
        EXPECT_EQ(d.common_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0u);
}

/* ---- shared memory regions (§4.1.4.7) ---- */

/* virtio-gpu's shape without the GPU: shm_spec lists the regions create()
 * declares, "ID:SIZE[,ID:SIZE...]" (a device no configuration names has no
 * argument: Shm() sets it before the device is built). */
const char *shm_spec;

const char *Shm(const char *spec) {
        shm_spec = spec;
        return nullptr;
}

int shm_test_create(VirtioDevice *vdev, const VmmDevice *, void **ret) {
        const char *arg = shm_spec;
        unsigned id;
        unsigned long long size;
        int n = 0;

        for (const char *p = arg; p && sscanf(p, "%u:%llu%n", &id, &size, &n) == 2; p += n + (p[n] == ',')) {
                int r = virtio_device_add_shm_region(vdev, (uint8_t) id, size);
                if (r < 0)
                        return r;
        }
        *ret = nullptr;
        return 0;
}

int shm_test_activate(void *, VirtQueue *, uint64_t) {
        return 0;
}

void shm_test_notify(void *, VirtQueue *) {}

VirtioDeviceOps make_shm_test_ops() {
        VirtioDeviceOps o = {};
        o.name = "shm-test";
        o.type = VIRTIO_ID_GPU;
        o.n_queues = 1;
        o.queue_max_size = 16;
        o.create = shm_test_create;
        o.activate = shm_test_activate;
        o.queue_notify = shm_test_notify;
        return o;
}

const VirtioDeviceOps shm_test_ops = make_shm_test_ops();

struct ShmCap {
        unsigned bar, id;
        uint64_t offset, length;
};

ShmCap read_shm_cap(PciDriver &d, unsigned pos) {
        auto rd = [&](size_t off, unsigned size) { return (uint64_t) d.config_read(pos + (unsigned) off, size); };
        return ShmCap{
                (unsigned) rd(offsetof(struct virtio_pci_cap, bar), 1),
                (unsigned) rd(offsetof(struct virtio_pci_cap, id), 1),
                rd(offsetof(struct virtio_pci_cap, offset), 4) | rd(offsetof(struct virtio_pci_cap64, offset_hi), 4) << 32,
                rd(offsetof(struct virtio_pci_cap, length), 4) | rd(offsetof(struct virtio_pci_cap64, length_hi), 4) << 32,
        };
}

uint64_t bar_address(PciDriver &d, unsigned bar) {
        return (uint64_t) d.config_read(PCI_BAR0 + 4 * (bar + 1), 4) << 32 | (d.config_read(PCI_BAR0 + 4 * bar, 4) & ~0xfu);
}

TEST_F(Transport, device_without_shared_memory_has_no_shm_capability_or_bar_2) {
        EXPECT_EQ(d.cap_position(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG), 0u);
        EXPECT_EQ(d.config_read(PCI_BAR0 + 4 * VIRTIO_PCI_SHM_BAR, 4), 0u);
}

TEST(Shm, each_region_has_a_cap64_with_its_id_bar_offset_and_length) {
        PciDriver d(&shm_test_ops, Shm("1:2097152,0:12288"));
        ASSERT_EQ(d.error(), 0);
        unsigned pos1 = d.cap_position(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, 1);
        unsigned pos0 = d.cap_position(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, 0);
        ASSERT_NE(pos1, 0u);
        ASSERT_NE(pos0, 0u);
        EXPECT_EQ(d.config_read(pos1 + 2, 1), sizeof(struct virtio_pci_cap64));

        ShmCap c1 = read_shm_cap(d, pos1), c0 = read_shm_cap(d, pos0);
        EXPECT_EQ(c1.bar, (unsigned) VIRTIO_PCI_SHM_BAR);
        EXPECT_EQ(c1.offset, 0u);
        EXPECT_EQ(c1.length, 2 * MiB);
        EXPECT_EQ(c0.bar, (unsigned) VIRTIO_PCI_SHM_BAR);
        EXPECT_EQ(c0.offset, 2 * MiB);
        EXPECT_EQ(c0.length, 12 * KiB);
}

TEST(Shm, bar_2_is_64_bit_prefetchable_sized_to_a_power_of_two_and_aligned) {
        PciDriver d(&shm_test_ops, Shm("1:2097152,0:12288"));
        ASSERT_EQ(d.error(), 0);
        uint32_t lo = d.config_read(PCI_BAR0 + 4 * VIRTIO_PCI_SHM_BAR, 4);
        EXPECT_EQ(lo & 0xf, (uint32_t) (PCI_BAR_MEM_64 | PCI_BAR_PREFETCH));
        uint64_t addr = bar_address(d, VIRTIO_PCI_SHM_BAR);
        EXPECT_NE(addr, 0u);
        EXPECT_EQ(addr % (4 * MiB), 0u);
        EXPECT_GE(addr, bar_address(d, 0) + VIRTIO_PCI_BAR0_SIZE);

        d.config_write(PCI_COMMAND, 2, 0);
        d.config_write(PCI_BAR0 + 4 * VIRTIO_PCI_SHM_BAR, 4, 0xffffffff);
        d.config_write(PCI_BAR0 + 4 * (VIRTIO_PCI_SHM_BAR + 1), 4, 0xffffffff);
        EXPECT_EQ(bar_address(d, VIRTIO_PCI_SHM_BAR), ~(4 * MiB - 1));
}

TEST(Shm, region_past_4_gib_carries_its_length_in_length_hi) {
        /* A window above 4 GiB big enough for an 8 GiB BAR. */
        Bus pio{}, mmio{};
        PciBus b;
        GuestMemory *mem = nullptr;
        VirtioDevice *vdev = nullptr;
        VirtioPci *vp = nullptr;
        ASSERT_EQ(pci_bus_init(&b, &pio, &mmio, 64 * GiB, 16 * GiB), 0);
        ASSERT_EQ(guest_memory_new(16 * MiB, &mem), 0);
        ASSERT_EQ(virtio_device_new(&shm_test_ops, Shm("1:8589934592"), mem, &vdev), 0);
        ASSERT_EQ(virtio_pci_new(vdev, &b, nullptr, nullptr, IrqLine{}, &vp), 0);
        unsigned slot = vp->pci.slot;
        auto cfg = [&](unsigned off, unsigned size) { return (uint64_t) pci_config_read(&b, slot, 0, off, size); };

        unsigned pos = (unsigned) cfg(PCI_CAPABILITY_LIST, 1);
        while (pos && !(cfg(pos, 1) == PCI_CAP_ID_VNDR && cfg(pos + 3, 1) == VIRTIO_PCI_CAP_SHARED_MEMORY_CFG))
                pos = (unsigned) cfg(pos + 1, 1);
        ASSERT_NE(pos, 0u);
        EXPECT_EQ(cfg(pos + offsetof(struct virtio_pci_cap, length), 4), 0u);
        EXPECT_EQ(cfg(pos + offsetof(struct virtio_pci_cap64, length_hi), 4), 2u);
        EXPECT_EQ(cfg(pos + offsetof(struct virtio_pci_cap, id), 1), 1u);
        uint64_t addr = cfg(PCI_BAR0 + 4 * (VIRTIO_PCI_SHM_BAR + 1), 4) << 32 |
                        (cfg(PCI_BAR0 + 4 * VIRTIO_PCI_SHM_BAR, 4) & ~0xfu);
        EXPECT_EQ(addr % (8 * GiB), 0u);
        EXPECT_GE(addr, 64 * GiB);

        virtio_pci_free(vp);
        guest_memory_free(mem);
        pci_bus_done(&b);
}

/* ---- shared memory mappings (virtio_device_shm_map) ---- */

/* A memfd of n pages, page i filled with byte 'A' + i. */
int PatternFd(unsigned pages) {
        int fd = memfd_create("shm-test", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t) pages * 4096) < 0)
                abort();
        for (unsigned i = 0; i < pages; i++) {
                std::string page(4096, (char) ('A' + i));
                if (pwrite(fd, page.data(), page.size(), (off_t) i * 4096) != 4096)
                        abort();
        }
        return fd;
}

/* The guest enables memory decoding (the harness's driver already did):
 * BAR 2 decodes at its address. */
void enable_memory(PciDriver &d) {
        d.config_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
}

TEST(ShmMap, mapping_appears_at_its_place_in_bar_2_once_the_bar_decodes_and_follows_it) {
        PciDriver d(&shm_test_ops, Shm("1:2097152,0:12288"), 16 * MiB, true);
        ASSERT_EQ(d.error(), 0);
        int fd = PatternFd(4);
        d.config_write(PCI_COMMAND, 2, 0);
        /* Region 0 lies after region 1's 2 MiB; fd pages 1-2 at its 4 KiB. */
        ASSERT_EQ(virtio_device_shm_map(d.device(), 0, 4096, fd, 4096, 8192, true), 0);
        EXPECT_TRUE(d.hv_log().slots.empty()) << "placed before the BAR decodes";

        enable_memory(d);
        uint64_t bar = bar_address(d, VIRTIO_PCI_SHM_BAR);
        ASSERT_EQ(d.hv_log().slots.size(), 1u);
        const HvLog::Slot &s = d.hv_log().slots.begin()->second;
        EXPECT_EQ(s.gpa, bar + 2 * MiB + 4096);
        EXPECT_EQ(s.size, 8192u);
        EXPECT_FALSE(s.read_only);
        EXPECT_EQ(d.hv_log().guest_byte(bar + 2 * MiB + 4096), 'B');
        EXPECT_EQ(d.hv_log().guest_byte(bar + 2 * MiB + 4096 + 8191), 'C');
        EXPECT_EQ(d.hv_log().guest_byte(bar + 2 * MiB), -1) << "the hole before it stays a hole";

        /* The guest writes through it: the descriptor's pages change. */
        ((uint8_t *) s.host)[0] = 'z';
        char c = 0;
        ASSERT_EQ(pread(fd, &c, 1, 4096), 1);
        EXPECT_EQ(c, 'z');

        /* Decoding off: out of the guest's memory; moved and on: back, at the new place. */
        d.config_write(PCI_COMMAND, 2, 0);
        EXPECT_TRUE(d.hv_log().slots.empty());
        d.config_write(PCI_BAR0 + 4 * VIRTIO_PCI_SHM_BAR, 4, (uint32_t) (bar + 4 * MiB) | 0xc);
        enable_memory(d);
        ASSERT_EQ(d.hv_log().slots.size(), 1u);
        EXPECT_EQ(d.hv_log().slots.begin()->second.gpa, bar + 4 * MiB + 2 * MiB + 4096);

        EXPECT_EQ(virtio_device_shm_unmap(d.device(), 0, 4096, 8192), 0);
        EXPECT_TRUE(d.hv_log().slots.empty());
        EXPECT_EQ(virtio_device_shm_n_mappings(d.device()), 0u);
        close(fd);
}

TEST(ShmMap, read_only_mapping_is_a_read_only_slot) {
        PciDriver d(&shm_test_ops, Shm("1:2097152"), 16 * MiB, true);
        ASSERT_EQ(d.error(), 0);
        enable_memory(d);
        int fd = PatternFd(1);
        ASSERT_EQ(virtio_device_shm_map(d.device(), 1, 0, fd, 0, 4096, false), 0);
        ASSERT_EQ(d.hv_log().slots.size(), 1u);
        EXPECT_TRUE(d.hv_log().slots.begin()->second.read_only);
        close(fd);
}

TEST(ShmMap, bad_ranges_and_overlaps_are_refused_and_nothing_is_mapped) {
        PciDriver d(&shm_test_ops, Shm("1:2097152"), 16 * MiB, true);
        ASSERT_EQ(d.error(), 0);
        enable_memory(d);
        int fd = PatternFd(4);
        VirtioDevice *v = d.device();
        EXPECT_EQ(virtio_device_shm_map(v, 7, 0, fd, 0, 4096, true), -ENOENT) << "no such region";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 100, fd, 0, 4096, true), -EINVAL) << "offset not a page";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 0, fd, 100, 4096, true), -EINVAL) << "fd offset not a page";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 0, fd, 0, 100, true), -EINVAL) << "length not pages";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 0, fd, 0, 0, true), -EINVAL) << "empty";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 2 * MiB - 4096, fd, 0, 8192, true), -EINVAL) << "past the end";
        EXPECT_EQ(virtio_device_shm_map(v, 1, UINT64_MAX - 4095, fd, 0, 8192, true), -EINVAL) << "wraps";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 0, fd, UINT64_MAX - 4095, 4096, true), -EINVAL) << "fd offset wraps";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 0, -1, 0, 4096, true), -EBADF) << "no descriptor";
        EXPECT_TRUE(d.hv_log().slots.empty());

        ASSERT_EQ(virtio_device_shm_map(v, 1, 8192, fd, 0, 8192, true), 0);
        EXPECT_EQ(virtio_device_shm_map(v, 1, 4096, fd, 0, 8192, true), -EINVAL) << "overlaps the start";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 12288, fd, 0, 4096, true), -EINVAL) << "inside";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 0, fd, 0, 4 * 4096, true), -EINVAL) << "covers it";
        EXPECT_EQ(virtio_device_shm_map(v, 1, 16384, fd, 0, 4096, true), 0) << "right after it";
        EXPECT_EQ(virtio_device_shm_unmap(v, 1, 8192, 4096), -ENOENT) << "part of a mapping";
        EXPECT_EQ(virtio_device_shm_unmap(v, 1, 0, 4096), -ENOENT) << "nothing there";
        EXPECT_EQ(virtio_device_shm_n_mappings(v), 2u);
        EXPECT_EQ(d.hv_log().slots.size(), 2u);
        close(fd);
}

TEST(ShmMap, mappings_are_capped_and_the_hypervisor_saying_no_maps_nothing) {
        PciDriver d(&shm_test_ops, Shm("1:2097152"), 16 * MiB, true);
        ASSERT_EQ(d.error(), 0);
        enable_memory(d);
        int fd = PatternFd(1);
        for (unsigned i = 0; i < VIRTIO_SHM_MAPPINGS_MAX; i++)
                ASSERT_EQ(virtio_device_shm_map(d.device(), 1, (uint64_t) i * 4096, fd, 0, 4096, true), 0) << i;
        EXPECT_EQ(virtio_device_shm_map(d.device(), 1, (uint64_t) VIRTIO_SHM_MAPPINGS_MAX * 4096, fd, 0, 4096, true),
                  -ENOSPC);
        virtio_device_shm_unmap_all(d.device());
        EXPECT_TRUE(d.hv_log().slots.empty());

        d.hv_log().map_extra_error = -ENOSPC;
        EXPECT_EQ(virtio_device_shm_map(d.device(), 1, 0, fd, 0, 4096, true), -ENOSPC);
        EXPECT_EQ(virtio_device_shm_n_mappings(d.device()), 0u);
        close(fd);
}

TEST(ShmMap, a_device_reset_takes_every_mapping_away) {
        PciDriver d(&shm_test_ops, Shm("1:2097152"), 16 * MiB, true);
        ASSERT_EQ(d.error(), 0);
        enable_memory(d);
        ASSERT_TRUE(d.negotiate(BASE_FEATURES));
        VirtqDriver q(d.mem(), 0x10000, 16);
        d.setup_queue(0, q);
        d.driver_ok();
        int fd = PatternFd(1);
        ASSERT_EQ(virtio_device_shm_map(d.device(), 1, 0, fd, 0, 4096, true), 0);
        EXPECT_EQ(d.hv_log().slots.size(), 1u);
        d.common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        EXPECT_EQ(virtio_device_shm_n_mappings(d.device()), 0u);
        EXPECT_TRUE(d.hv_log().slots.empty());
        close(fd);
}

TEST(Shm, region_size_not_a_page_multiple_is_refused) {
        EXPECT_EQ(PciDriver(&shm_test_ops, Shm("1:100")).error(), -EINVAL);
        EXPECT_EQ(PciDriver(&shm_test_ops, Shm("1:0")).error(), -EINVAL);
}

TEST(Shm, region_larger_than_the_limit_is_refused) {
        EXPECT_EQ(PciDriver(&shm_test_ops, Shm("1:1099511631872")).error(), -EINVAL); /* 1 TiB + 4 KiB */
}

TEST(Shm, shmid_declared_twice_is_refused) {
        EXPECT_EQ(PciDriver(&shm_test_ops, Shm("1:4096,1:4096")).error(), -EEXIST);
}

TEST(Shm, more_regions_than_the_limit_are_refused) {
        EXPECT_EQ(PciDriver(&shm_test_ops, Shm("0:4096,1:4096,2:4096")).error(), -ENOSPC);
}

TEST(Shm, region_that_does_not_fit_the_pci_window_fails_the_device) {
        /* The harness's window is 512 MiB. */
        EXPECT_EQ(PciDriver(&shm_test_ops, Shm("1:1073741824")).error(), -ENOSPC);
}

/* ---- INTx through a resampling irqfd (§4.1.4.5) ---- */

/* Without MSI-X the device's worker raises INTx. Its seccomp role has no
 * KVM_IRQ_LINE, so the line is an irqfd with a resample fd: the worker
 * writes the irqfd, the hypervisor lowers the line at the guest's EOI and
 * writes the resample fd, and the line goes up again while the ISR still
 * has a bit set (level-triggered). */
class Intx : public ::testing::Test {
protected:
        void SetUp() override {
                ASSERT_EQ(d.error(), 0);
                ASSERT_GE(log().intx_fd, 0);
                ASSERT_TRUE(d.negotiate(F_VERSION_1));
                d.setup_queue(0, q);
                d.driver_ok();
        }
        harness::HvLog &log() { return d.hv_log(); }
        /* Whether the line was raised (within timeout_ms); consumes it. */
        bool raised(int timeout_ms = 2000) {
                uint64_t n;
                if (!harness::readable(log().intx_fd, timeout_ms))
                        return false;
                return read(log().intx_fd, &n, sizeof(n)) == (ssize_t) sizeof(n) && n > 0;
        }
        /* The guest EOIs: the hypervisor lowered the line and says so. */
        void eoi() {
                uint64_t one = 1;
                ASSERT_EQ(write(log().intx_resample_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        }
        void complete_one_request(uint16_t n) {
                q.add_chain({ { 0x100000 + 0x1000 * (uint64_t) n, 16, true } });
                d.kick(0);
                ASSERT_TRUE(d.wait_used(q, n));
        }
        PciDriver d{ &virtio_rng_ops, nullptr, 16 * MiB, true };
        VirtqDriver q{ d.mem(), 0x10000, 16 };
};

TEST_F(Intx, transport_attaches_a_resampling_irqfd_on_its_interrupt_line_pin) {
        auto &c = log().calls;
        unsigned line = d.config_read(PCI_INTERRUPT_LINE, 1);
        EXPECT_NE(std::find(c.begin(), c.end(), "intx " + std::to_string(line)), c.end());
        EXPECT_EQ(d.config_read(PCI_INTERRUPT_PIN, 1), 1u);
}

TEST_F(Intx, queue_interrupt_raises_the_line_through_the_irqfd) {
        complete_one_request(1);
        EXPECT_TRUE(raised());
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 1u);
}

TEST_F(Intx, line_is_raised_again_after_eoi_while_the_isr_is_unread) {
        complete_one_request(1);
        ASSERT_TRUE(raised());
        eoi();
        EXPECT_TRUE(raised());
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 1u);
}

TEST_F(Intx, line_stays_down_after_eoi_once_the_isr_was_read) {
        complete_one_request(1);
        ASSERT_TRUE(raised());
        ASSERT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 1u);
        eoi();
        EXPECT_FALSE(raised(200));
}

TEST_F(Intx, interrupt_between_isr_read_and_eoi_is_delivered_after_the_eoi) {
        complete_one_request(1);
        ASSERT_TRUE(raised());
        ASSERT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 1u);
        /* A second completion while the line is still up: the write lands
         * on a raised line, so only the resample brings it to the guest. */
        complete_one_request(2);
        ASSERT_TRUE(raised());
        eoi();
        EXPECT_TRUE(raised());
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 1u);
}

TEST_F(Intx, config_change_raises_the_line_with_isr_bit_1) {
        virtio_device_config_changed(d.device());
        EXPECT_TRUE(raised());
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_ISR_OFF, 1), 2u);
}

TEST_F(Intx, line_is_not_raised_while_msix_is_enabled) {
        d.enable_msix();
        complete_one_request(1);
        EXPECT_FALSE(raised(200));
}

/* ---- MSI-X ---- */

class Msix : public ::testing::Test {
protected:
        void SetUp() override {
                ASSERT_EQ(d.error(), 0);
                ASSERT_TRUE(d.negotiate(F_VERSION_1 | F_EVENT_IDX));
                d.setup_queue(0, q, 0);
                d.enable_msix();
                d.program_vector(0, 0xfee00000, 0x40);
                d.driver_ok();
        }
        PciDriver d{ &virtio_rng_ops, nullptr, 16 * MiB, true };
        VirtqDriver q{ d.mem(), 0x10000, 16 };
};

TEST_F(Msix, unmasked_vector_delivers_through_its_eventfd) {
        d.set_vector_masked(0, false);
        q.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        EXPECT_TRUE(d.wait_vector(0));
}

TEST_F(Msix, masked_vector_sets_pending_bit_and_fires_on_unmask) {
        q.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        uint64_t pba = 0;
        for (int i = 0; i < 1000 && !pba; i++)
                pba = d.bar_read(VIRTIO_PCI_MSIX_PBA_OFF, 8);
        EXPECT_EQ(pba, 1u);
        EXPECT_FALSE(d.wait_vector(0, 50));
        d.set_vector_masked(0, false);
        EXPECT_TRUE(d.wait_vector(0));
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_MSIX_PBA_OFF, 8), 0u);
}

TEST_F(Msix, masking_detaches_irqfd_before_removing_the_route) {
        d.set_vector_masked(0, false);
        d.hv_log().calls.clear();
        d.set_vector_masked(0, true);
        auto &c = d.hv_log().calls;
        auto detach = std::find_if(c.begin(), c.end(), [](const std::string &s) { return s.rfind("detach", 0) == 0; });
        auto unroute = std::find_if(c.begin(), c.end(), [](const std::string &s) { return s.rfind("unroute", 0) == 0; });
        ASSERT_NE(detach, c.end());
        ASSERT_NE(unroute, c.end());
        EXPECT_LT(detach - c.begin(), unroute - c.begin());
}

TEST_F(Msix, unmasking_installs_the_route_before_attaching_irqfd) {
        d.hv_log().calls.clear();
        d.set_vector_masked(0, false);
        auto &c = d.hv_log().calls;
        ASSERT_EQ(c.size(), 2u);
        EXPECT_EQ(c[0].rfind("route", 0), 0u);
        EXPECT_EQ(c[1].rfind("attach", 0), 0u);
}

/* A vhost-user back-end writes the vector's eventfd itself (the queue's
 * call fd): a write made while the vector is masked waits there, becomes
 * the pending bit at unmask and is sent once (PCI 3.0 §6.8.3.4). */
TEST_F(Msix, a_write_to_a_masked_vectors_eventfd_is_sent_once_at_unmask) {
        int fd = msix_vector_fd(&d.transport()->msix, 0);
        uint64_t one = 1;
        ASSERT_EQ(write(fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        d.set_vector_masked(0, false);
        EXPECT_TRUE(d.wait_vector(0));
        EXPECT_FALSE(d.wait_vector(0, 50)) << "sent twice";
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_MSIX_PBA_OFF, 8), 0u);
}

TEST_F(Msix, function_mask_holds_interrupts_pending) {
        d.set_vector_masked(0, false);
        d.enable_msix(true);
        q.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, 1));
        EXPECT_FALSE(d.wait_vector(0, 50));
        d.enable_msix(false);
        EXPECT_TRUE(d.wait_vector(0));
}

TEST_F(Msix, ioeventfd_is_registered_on_the_notify_address) {
        auto &c = d.hv_log().calls;
        EXPECT_TRUE(std::any_of(c.begin(), c.end(), [](const std::string &s) { return s.rfind("ioeventfd", 0) == 0; }));
}

TEST_F(Msix, bad_chain_sets_needs_reset_and_config_interrupt) {
        d.common_write(VIRTIO_PCI_COMMON_MSIX, 2, 1);
        d.program_vector(1, 0xfee00000, 0x41);
        d.set_vector_masked(1, false);
        q.set_desc(0, 0x100000, 8, VIRTQ_DESC_F_NEXT, 0); /* a loop */
        q.publish(0);
        d.kick(0);
        EXPECT_TRUE(d.wait_status(VIRTIO_STATUS_NEEDS_RESET));
        EXPECT_TRUE(d.wait_vector(1));
        EXPECT_NE(virtio_device_error(d.device()), nullptr);
}

TEST_F(Msix, device_works_again_after_needs_reset_and_reset) {
        q.publish(99);
        d.kick(0);
        ASSERT_TRUE(d.wait_status(VIRTIO_STATUS_NEEDS_RESET));
        ASSERT_TRUE(d.negotiate(F_VERSION_1));
        VirtqDriver q2(d.mem(), 0x20000, 16);
        d.setup_queue(0, q2, 0);
        d.driver_ok();
        q2.add_chain({ { 0x100000, 16, true } });
        d.kick(0);
        EXPECT_TRUE(d.wait_used(q2, 1));
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
}

} // namespace
