/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block on real KVM: the virtio-block test guest writes, flushes,
 * reads back and discards through an MSI-X interrupt, then this test grows
 * the disk through the control socket (`majordome-vmm disk-resize`) and the
 * guest sees the config-change interrupt and the new capacity. Afterwards
 * the image file on the host holds the guest's pattern and the new size. */
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/vmm-process.h"

namespace {

constexpr int kGuestTimeoutMs = 90000;
constexpr off_t kImageSize = 1 << 20;

std::string make_image(const TempDir &dir, const std::string &name) {
        std::string path = dir.file(name);
        int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(ftruncate(fd, kImageSize), 0);
        close(fd);
        return path;
}

} // namespace

TEST(VmmBlock, GuestWritesFlushesDiscardsAndSeesAResize) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string img = make_image(dir, "disk.img"), sock = dir.file("vmm.sock");

        Process vmm({ vmm_path(), "run", "--block", img + ",sparse=true,id=it-disk", "--socket", sock, "--debug-exit",
                      guest_path("virtio-block") });
        ASSERT_TRUE(vmm.wait_for_output("virtio-block: resize me", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        RunResult resize = run_vmm({ "disk-resize", sock, "0", "2M" }, 10000);
        EXPECT_EQ(resize.exit_code, 0) << resize.err;
        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 9u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;

        /* The host's view: the guest's pattern at sector 2, the new size. */
        struct stat st;
        ASSERT_EQ(stat(img.c_str(), &st), 0);
        EXPECT_EQ(st.st_size, 2 * kImageSize);
        std::string data = read_file(img);
        ASSERT_GE(data.size(), 2048u);
        bool pattern = true;
        for (unsigned i = 0; i < 1024 && pattern; i++)
                pattern = (uint8_t) data[1024 + i] == (uint8_t) (i * 13 + 5);
        EXPECT_TRUE(pattern);
}

TEST(VmmBlock, DiskResizeOfAReadOnlyOrMissingDiskFails) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string img = make_image(dir, "ro.img"), sock = dir.file("vmm.sock");

        Process vmm({ vmm_path(), "run", "--block", img + ",ro", "--socket", sock, guest_path("spin") });
        ASSERT_TRUE(vmm.wait_for_output("spin: ready", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        RunResult ro = run_vmm({ "disk-resize", sock, "0", "2M" }, 10000);
        EXPECT_EQ(ro.exit_code, 1) << ro.err;
        EXPECT_NE(ro.err.find("read-only"), std::string::npos) << ro.err;
        RunResult missing = run_vmm({ "disk-resize", sock, "1", "2M" }, 10000);
        EXPECT_EQ(missing.exit_code, 1) << missing.err;
        RunResult stop = run_vmm({ "stop", sock }, 10000);
        EXPECT_EQ(stop.exit_code, 0) << stop.err;
        vmm.wait(kGuestTimeoutMs);

        struct stat st;
        ASSERT_EQ(stat(img.c_str(), &st), 0);
        EXPECT_EQ(st.st_size, kImageSize);
}

TEST(VmmBlock, MissingImageIsRefusedAtStart) {
        RunResult r = run_vmm({ "run", "--block", "/nonexistent/disk.img", guest_path("hello") }, 10000);
        EXPECT_NE(r.exit_code, 0);
        EXPECT_NE(r.err.find("--block"), std::string::npos) << r.err;
}

TEST(VmmBlock, BadBlockOptionIsAUsageError) {
        RunResult r = run_vmm({ "run", "--block", "/tmp/x.img,bogus", guest_path("hello") }, 10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}

/* How the daemon passes disks: an inherited descriptor, which the jail must
 * keep (it closes every other inherited fd). */
TEST(VmmBlock, DiskGivenAsInheritedDescriptorWorksInTheJail) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string img = make_image(dir, "disk.img"), sock = dir.file("vmm.sock");
        std::string script = "exec 5<>'" + img + "'; exec '" + vmm_path() + "' run --block fd:5,id=it-disk --socket '" +
                             sock + "' --debug-exit '" + guest_path("virtio-block") + "'";

        Process vmm({ "/bin/sh", "-c", script });
        ASSERT_TRUE(vmm.wait_for_output("virtio-block: resize me", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        EXPECT_EQ(run_vmm({ "disk-resize", sock, "0", "2M" }, 10000).exit_code, 0);
        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
        struct stat st;
        ASSERT_EQ(stat(img.c_str(), &st), 0);
        EXPECT_EQ(st.st_size, 2 * kImageSize) << "the resize reached the file through the descriptor";
}
