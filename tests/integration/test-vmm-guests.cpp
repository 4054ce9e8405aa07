/* SPDX-License-Identifier: BSD-3-Clause */
/* The test guests of tests/guest/ booted by the real VMM on /dev/kvm. Each
 * guest prints "TEST name PASS|FAIL detail" and ends through debug-exit. */
#include <gtest/gtest.h>

#include <sstream>

#include "vmm-process.h"

namespace {

constexpr int kGuestTimeoutMs = 60000;

/* Every TEST line passed, at least `min_tests` of them, exit code 0. */
void expect_guest_passed(const RunResult &r, unsigned min_tests) {
        ASSERT_FALSE(r.timed_out) << "guest did not finish; output:\n" << r.out;
        EXPECT_GE(count_guest_passes(r.out), min_tests) << r.out;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
}

std::string pattern(size_t size, unsigned seed) {
        std::string s(size, '\0');
        for (size_t i = 0; i < size; i++)
                s[i] = (char) (uint8_t) (i * 7 + seed);
        return s;
}

} // namespace

TEST(VmmGuests, HelloPrintsItsLineAndExitsZero) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", guest_path("hello") }, kGuestTimeoutMs);
        EXPECT_NE(r.out.find("Hello from a Majordome guest"), std::string::npos) << r.out;
        expect_guest_passed(r, 1);
}

TEST(VmmGuests, HelloWithoutDebugExitStillRunsAndIsStoppedBySignal) {
        SKIP_WITHOUT_KVM();
        /* Without --debug-exit the port does not exist: the guest's write is
         * ignored and it must be stopped from outside. */
        Process p({ vmm_path(), "run", guest_path("hello") });
        ASSERT_TRUE(p.wait_for_output("TEST hello PASS", kGuestTimeoutMs)) << p.out();
        p.kill(SIGTERM);
        RunResult r = p.wait(10000);
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(VmmGuests, BootinfoSeesMemoryCmdlineAndOneCpu) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", "--mem", "256M", "--cmdline",
                                "expect_mem=256M expect_cpus=1 bootinfo_end", guest_path("bootinfo") },
                              kGuestTimeoutMs);
        expect_guest_passed(r, 4);
}

TEST(VmmGuests, BootinfoSeesInitrdAndThreeCpusAndOddMemory) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        const size_t size = 3 * 4096 + 123;
        write_file(dir.file("initrd"), pattern(size, 42));

        RunResult r = run_vmm({ "run", "--debug-exit", "--mem", "97M", "--cpus", "3", "--initrd", dir.file("initrd"),
                                "--cmdline",
                                "expect_mem=97M expect_cpus=3 expect_initrd=" + std::to_string(size) +
                                        ":42 bootinfo_end",
                                guest_path("bootinfo") },
                              kGuestTimeoutMs);
        expect_guest_passed(r, 4);
}

TEST(VmmGuests, BootinfoSeesRamAboveTheHoleWith4G) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", "--mem", "4G", "--cmdline",
                                "expect_mem=4G expect_cpus=1 bootinfo_end", guest_path("bootinfo") },
                              kGuestTimeoutMs);
        expect_guest_passed(r, 4);
}

TEST(VmmGuests, IrqPitLapicTimerAndIoapicRoutedSerial) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", guest_path("irq") }, kGuestTimeoutMs);
        expect_guest_passed(r, 4);
}

TEST(VmmGuests, SmpTwoVcpusReportIn) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", "--cpus", "2", "--cmdline", "expect_cpus=2",
                                guest_path("smp") },
                              kGuestTimeoutMs);
        expect_guest_passed(r, 1);
        EXPECT_NE(r.out.find("2 CPU(s) up"), std::string::npos) << r.out;
}

TEST(VmmGuests, SmpFourVcpusReportIn) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", "--cpus", "4", "--cmdline", "expect_cpus=4",
                                guest_path("smp") },
                              kGuestTimeoutMs);
        expect_guest_passed(r, 1);
        EXPECT_NE(r.out.find("4 CPU(s) up"), std::string::npos) << r.out;
}

TEST(VmmGuests, I8042ResetEndsTheVmWithZero) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", guest_path("reset") }, kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        EXPECT_EQ(r.out.find("TEST reset FAIL"), std::string::npos) << r.out;
}

TEST(VmmGuests, DebugExitValueBecomesTheExitCode) {
        SKIP_WITHOUT_KVM();
        /* bootinfo with a wrong expectation fails and exits through debug-exit 1. */
        RunResult r = run_vmm({ "run", "--debug-exit", "--cmdline", "expect_cpus=7 bootinfo_end",
                                guest_path("bootinfo") },
                              kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 1) << r.out;
        EXPECT_NE(r.out.find("TEST bootinfo-mptable FAIL"), std::string::npos) << r.out;
}

TEST(VmmGuests, SerialToFileCapturesTheConsole) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        RunResult r = run_vmm({ "run", "--debug-exit", "--serial", "file:" + dir.file("console"),
                                guest_path("hello") },
                              kGuestTimeoutMs);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, "");
        EXPECT_NE(read_file(dir.file("console")).find("TEST hello PASS"), std::string::npos);
}

TEST(VmmGuests, RtcShowsTheHostsDateAndTime) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", "--cmdline", "expect_epoch=" + std::to_string(time(nullptr)),
                                guest_path("rtc") },
                              kGuestTimeoutMs);
        expect_guest_passed(r, 2);
}

TEST(VmmGuests, TripleFaultEndsTheVmWithItsOwnCode) {
        SKIP_WITHOUT_KVM();
        RunResult r = run_vmm({ "run", "--debug-exit", guest_path("triplefault") }, kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 72) << r.out << r.err;
        EXPECT_NE(r.err.find("triple fault"), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("TEST triplefault FAIL"), std::string::npos) << r.out;
}
