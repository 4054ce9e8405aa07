/* SPDX-License-Identifier: BSD-3-Clause */
/* The test guests of tests/guest/ booted by the real VMM on /dev/kvm. Each
 * guest prints "TEST name PASS|FAIL detail" and ends through debug-exit. */
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "tests/integration/vmm-process.h"

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

TEST(VmmGuests, SerialFileIsCappedAgainstAFloodingGuest) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        /* 600 lines of 64 bytes: more than twice the 16 KiB cap. */
        RunResult r = run_vmm({ "run", "--debug-exit", "--serial", "file:" + dir.file("console"),
                                "--serial-max-size", "16K", "--cmdline", "flood_lines=600", guest_path("flood") },
                              kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        std::string console = read_file(dir.file("console"));
        EXPECT_LE(console.size(), 16u * 1024);
        ASSERT_GE(console.size(), 4u * 1024) << "the newest half is kept, not nothing";
        EXPECT_EQ(console.substr(console.size() - 11), "flood: end\n");
        EXPECT_NE(console.find("flood 00000599 "), std::string::npos);
        EXPECT_EQ(console.find("flood 00000000 "), std::string::npos);
}

TEST(VmmGuests, SerialMaxSizeBelowTheMinimumIsAUsageError) {
        TempDir dir;
        RunResult r = run_vmm({ "run", "--serial", "file:" + dir.file("console"), "--serial-max-size", "1K",
                                guest_path("hello") },
                              kGuestTimeoutMs);
        EXPECT_EQ(r.exit_code, 64) << r.err;
        EXPECT_NE(r.err.find("--serial-max-size"), std::string::npos) << r.err;
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

/* spin halts between 100 ms timer ticks: nearly every sample's RIP is just
 * after its HLT in main(), and its stack holds the return into the runtime
 * that called main(). Every address must lie in the text the header names. */
TEST(VmmGuests, ProfileGuestSamplesRipAndStackInTheGuestText) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        const std::string profile = dir.file("profile");
        Process p({ vmm_path(), "run", "--profile-guest", profile, guest_path("spin") });
        ASSERT_TRUE(p.wait_for_output("spin: tick 5\n", kGuestTimeoutMs)) << p.out() << p.err();
        p.kill(SIGTERM);
        RunResult r = p.wait(10000);
        ASSERT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 0) << r.err;

        std::istringstream in(read_file(profile));
        std::string line;
        uint64_t text_start = 0, text_end = 0;
        ASSERT_TRUE(std::getline(in, line));
        ASSERT_EQ(line.rfind("# majordome-vmm guest profile 1 hz=500 text=", 0), 0u) << line;
        ASSERT_EQ(sscanf(line.c_str() + line.find("text="), "text=%" SCNx64 "-%" SCNx64, &text_start, &text_end), 2)
                << line;
        ASSERT_LT(text_start, text_end);

        unsigned samples = 0, with_stack = 0;
        uint64_t last_usec = 0;
        while (std::getline(in, line)) {
                std::istringstream fields(line);
                unsigned vcpu;
                uint64_t usec, addr;

                ASSERT_TRUE(fields >> vcpu >> usec >> std::hex >> addr) << line;
                EXPECT_EQ(vcpu, 0u);
                EXPECT_GE(usec, last_usec) << line;
                last_usec = usec;
                EXPECT_GE(addr, text_start) << line;
                EXPECT_LT(addr, text_end) << line;
                bool any = false;
                while (fields >> addr) {
                        EXPECT_GE(addr, text_start) << line;
                        EXPECT_LT(addr, text_end) << line;
                        any = true;
                }
                samples++;
                with_stack += any;
        }
        /* Five ticks are half a second at least: 250 samples at 500 Hz; a
         * loaded host may delay the timer, so ask for a fifth of that. */
        EXPECT_GE(samples, 50u);
        EXPECT_GE(with_stack * 10, samples * 9) << with_stack << " of " << samples;

        /* The reader names main() as where the time went. */
        const char *src = getenv("MAJORDOME_SOURCE_DIR");
        ASSERT_NE(src, nullptr) << "MAJORDOME_SOURCE_DIR is not set";
        Process tool({ "python3", std::string(src) + "/tools/guest-profile.py", "--top", "1", profile,
                       guest_path("spin") });
        RunResult t = tool.wait(30000);
        EXPECT_EQ(t.exit_code, 0) << t.err;
        EXPECT_NE(t.out.find("--- self\n"), std::string::npos) << t.out;
        EXPECT_NE(t.out.find("  main\n--- on stack"), std::string::npos) << t.out;
}
