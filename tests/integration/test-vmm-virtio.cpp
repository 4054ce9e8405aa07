/* SPDX-License-Identifier: BSD-3-Clause */
/* Virtio over PCI on real KVM: the virtio-rng test guest finds the device,
 * reads its common configuration through the PCI configuration access
 * capability, negotiates, gets random bytes through an MSI-X interrupt
 * (irqfd on an MSI route, notification through an ioeventfd), and checks
 * the VMM survives notifications for queues that do not exist. */
#include <gtest/gtest.h>

#include <sstream>

#include "majordome-features.h"
#include "tests/integration/vmm-process.h"

namespace {

constexpr int kGuestTimeoutMs = 60000;

} // namespace

TEST(VmmVirtio, RngGuestGetsRandomBytesThroughMsix) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--rng", "--debug-exit", guest_path("virtio-rng") }, kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 6u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

/* A driver without MSI-X (pci=nomsi, small OSes): the device's worker
 * raises INTx, and under the sandbox its role has no KVM_IRQ_LINE, so the
 * line is a resampling irqfd. The guest also EOIs one interrupt without
 * reading the ISR and expects it again (level-triggered). */
TEST(VmmVirtio, RngGuestWithoutMsixGetsItsInterruptsOnIntxUnderTheSandbox) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--rng", "--debug-exit", "--cmdline", "irq=intx", guest_path("virtio-rng") },
                              kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_NE(r.out.find("TEST virtio-rng-intx-level PASS"), std::string::npos) << r.out << r.err;
        EXPECT_EQ(count_guest_passes(r.out), 8u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

/* Devices after a GPU, whose 256 MiB host-visible BAR sits naturally
 * aligned in the PCI window: they still get room (majordomed puts its
 * pvpanic last, after the GPU), and the guest finds and uses the rng. */
TEST(VmmVirtio, DevicesAfterAGpusHostVisibleRegionFitAndWork) {
        SKIP_WITHOUT_KVM();
        if (!MAJORDOME_HAVE_GPU || !MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built without gpu or wayland support (the cross-domain context)";
        RunResult r = run_vmm({ "run", "--gpu", "backend=2d,displays=0,context-types=cross-domain", "--balloon",
                                "--pvpanic", "--rng", "--debug-exit", guest_path("virtio-rng") },
                              kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 6u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

TEST(VmmVirtio, RngGuestWithoutTheDeviceReportsItMissing) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", guest_path("virtio-rng") }, kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_NE(r.out.find("TEST virtio-rng-probe FAIL"), std::string::npos) << r.out;
        EXPECT_NE(r.exit_code, 0);
}

TEST(VmmVirtio, RngOptionRefusesAnArgument) {
        RunResult r = run_vmm({ "run", "--rng=x", guest_path("hello") }, 10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}
