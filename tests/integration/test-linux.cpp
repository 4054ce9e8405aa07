/* SPDX-License-Identifier: BSD-3-Clause */
/* Real Linux kernels through majordome-vmm: Debian's own kernel as far as
 * this host's emulator lets it go, and the linux-rig kernel to /init. */
#include <gtest/gtest.h>

#include <cstdlib>
#include <sys/stat.h>

#include "vmm-process.h"

namespace {

std::string env_or_empty(const char *name) {
        const char *v = getenv(name);
        return v ? v : "";
}

bool exists(const std::string &p) {
        struct stat st;
        return !p.empty() && stat(p.c_str(), &st) == 0;
}

} // namespace

/* Debian's stock kernel gets through early boot (banner, e820, hypervisor
 * detection) and later stops on an int3 this host's emulator cannot run:
 * the host's limit, so the test stops the VM once it has seen enough. */
TEST(DebianKernel, EarlyBootShowsBannerCmdlineE820AndKvm) {
        SKIP_WITHOUT_KVM();
        std::string kernel = env_or_empty("MAJORDOME_DEBIAN_KERNEL");
        if (!exists(kernel))
                GTEST_SKIP() << "MAJORDOME_DEBIAN_KERNEL unset or missing (tools/fetch-debian-kernel.sh fetches it)";

        const std::string cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 majordome.marker=debian-42";
        Process p({ vmm_path(), "run", "--mem", "256M", "--cmdline", cmdline, kernel });
        bool detected = p.wait_for_output("Hypervisor detected: KVM", 120000);
        p.kill(SIGTERM);
        RunResult r = p.wait(10000);

        ASSERT_TRUE(detected) << "no KVM detection within 120 s; console:\n" << r.out.substr(0, 4000) << r.err;
        EXPECT_NE(r.out.find("Linux version "), std::string::npos);
        /* Exactly our command line: the line ends right after it. */
        size_t at = r.out.find("Command line: " + cmdline);
        ASSERT_NE(at, std::string::npos) << r.out.substr(0, 2000);
        char after = r.out[at + 14 + cmdline.size()];
        EXPECT_TRUE(after == '\r' || after == '\n') << r.out.substr(at, 200);
        /* The e820 map exactly as the VMM built it for 256 MiB. */
        for (const char *line : {
                     "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
                     "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
                     "BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved",
                     "BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable",
             })
                EXPECT_NE(r.out.find(line), std::string::npos) << line;
        EXPECT_EQ(r.exit_code, 0) << "SIGTERM is a clean stop: " << r.err;
}

class RigKernel : public ::testing::TestWithParam<unsigned> {};

/* The linux-rig kernel (patched around this host's emulator) with busybox:
 * reaches /init, sees every vCPU, and ends the VM cleanly with reboot -f. */
TEST_P(RigKernel, BootsToInitAndPowersOff) {
        SKIP_WITHOUT_KVM();
        std::string dir = env_or_empty("MAJORDOME_RIG_DIR");
        std::string scripts = env_or_empty("MAJORDOME_RIG_SCRIPTS");
        if (!exists(dir + "/vmlinux") || !exists(scripts + "/mkinitramfs.sh"))
                GTEST_SKIP() << "linux-rig not found (MAJORDOME_RIG_DIR/MAJORDOME_RIG_SCRIPTS; ../shared/linux-rig)";

        unsigned cpus = GetParam();
        TempDir tmp;
        std::string initrd = tmp.file("initramfs.cpio");
        std::string init = env_or_empty("MAJORDOME_SOURCE_DIR") + "/tests/linux/init-poweroff.sh";
        std::string cmd = "'" + scripts + "/mkinitramfs.sh' '" + dir + "' '" + init + "' '" + initrd + "' >/dev/null";
        ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
        std::string rig_cmdline = read_file(scripts + "/cmdline");
        while (!rig_cmdline.empty() && (rig_cmdline.back() == '\n' || rig_cmdline.back() == ' '))
                rig_cmdline.pop_back();

        RunResult r = run_vmm({ "run", "--mem", "256M", "--cpus", std::to_string(cpus), "--initrd", initrd,
                                "--cmdline", "console=ttyS0 " + rig_cmdline, dir + "/vmlinux" },
                              420000);
        ASSERT_FALSE(r.timed_out) << "no power-off within 420 s; console tail:\n"
                                  << r.out.substr(r.out.size() > 3000 ? r.out.size() - 3000 : 0);
        EXPECT_NE(r.out.find("MAJORDOME-INIT-REACHED cpus=" + std::to_string(cpus)), std::string::npos)
                << r.out.substr(r.out.size() > 3000 ? r.out.size() - 3000 : 0);
        EXPECT_EQ(r.exit_code, 0) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Vcpus, RigKernel, ::testing::Values(1u, 2u),
                         [](const ::testing::TestParamInfo<unsigned> &i) {
                                 return std::to_string(i.param) + "vcpu";
                         });
