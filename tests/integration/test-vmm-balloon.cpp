/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-balloon on real KVM, driven through the control socket: the test
 * guest (tests/guest/virtio-balloon) touches 16 MiB, the host sets a 16 MiB
 * balloon with `majordome-vmm balloon`, the guest inflates those pages, and
 * the guest RAM's resident size as the host sees it (the memfd mapping's
 * Rss in /proc/PID/smaps) must drop by about that much; deflating and
 * touching the pages again brings it back, and balloon-stats gets fresh
 * statistics from the guest. A subscriber hears each size reached. */
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/control.h"
#include "tests/integration/vmm-process.h"

namespace {

constexpr int kStepTimeoutMs = 90000;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kBalloon = 16 * kMiB;

RunResult control(const std::vector<std::string> &args) {
        return run_vmm(args, 20000);
}

unsigned count_verdicts(const std::string &out, const std::string &verdict) {
        unsigned n = 0;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);)
                if (l.rfind("TEST ", 0) == 0 && l.find(" " + verdict) != std::string::npos)
                        n++;
        return n;
}

} // namespace

TEST(VmmBalloon, InflateFreesGuestRamOnTheHostAndDeflateGivesItBack) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string sock = dir.file("control");
        Process vmm({ vmm_path(), "run", "--mem", "64M", "--balloon", "--debug-exit", "--socket", sock,
                      guest_path("virtio-balloon") });

        ASSERT_TRUE(vmm.wait_for_output("balloon: ready", kStepTimeoutMs)) << vmm.out() << vmm.err();
        uint64_t before = guest_ram_rss(vmm.pid());
        Fd events(subscribe(sock));
        ASSERT_GE(events.fd, 0);
        std::vector<uint8_t> p;
        uint64_t reached = 1;

        RunResult r = control({ "balloon", sock, "16M" });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        ASSERT_TRUE(vmm.wait_for_output("balloon: inflated", kStepTimeoutMs)) << vmm.out() << vmm.err();
        uint64_t inflated = guest_ram_rss(vmm.pid());
        ASSERT_TRUE(next_event(events.fd, CONTROL_EVENT_BALLOON_REACHED, &p, kStepTimeoutMs)) << "balloon-reached";
        ASSERT_EQ(control_balloon_reached_decode(p.data(), p.size(), &reached), 0);
        EXPECT_EQ(reached, kBalloon);

        RunResult stats = control({ "balloon-stats", "--json", sock });
        ASSERT_EQ(stats.exit_code, 0) << stats.err;
        EXPECT_NE(stats.out.find("\"target_bytes\":16777216"), std::string::npos) << stats.out;
        EXPECT_NE(stats.out.find("\"actual_bytes\":16777216"), std::string::npos) << stats.out;
        EXPECT_NE(stats.out.find("\"inflated_bytes\":16777216"), std::string::npos) << stats.out;
        EXPECT_NE(stats.out.find("\"total_memory\":67108864"), std::string::npos) << stats.out;

        r = control({ "balloon", sock, "0" });
        ASSERT_EQ(r.exit_code, 0) << r.err;
        ASSERT_TRUE(vmm.wait_for_output("balloon: retouched", kStepTimeoutMs)) << vmm.out() << vmm.err();
        ASSERT_TRUE(next_event(events.fd, CONTROL_EVENT_BALLOON_REACHED, &p, kStepTimeoutMs)) << "balloon-reached 0";
        ASSERT_EQ(control_balloon_reached_decode(p.data(), p.size(), &reached), 0);
        EXPECT_EQ(reached, 0u) << "deflated";
        uint64_t retouched = guest_ram_rss(vmm.pid());

        stats = control({ "balloon-stats", "--json", sock });
        EXPECT_EQ(stats.exit_code, 0) << stats.err;
        EXPECT_NE(stats.out.find("\"stats_fresh\":true"), std::string::npos) << stats.out;
        EXPECT_NE(stats.out.find("\"inflated_bytes\":0"), std::string::npos) << stats.out;

        RunResult done = vmm.wait(kStepTimeoutMs);
        EXPECT_EQ(done.exit_code, 0) << done.out << done.err;
        EXPECT_EQ(count_verdicts(done.out, "FAIL"), 0u) << done.out;
        EXPECT_EQ(count_verdicts(done.out, "PASS"), 7u) << done.out;

        /* The figure the balloon is for: memory the host gets back per MiB
         * the guest gives. Pages are punched out of the memfd, so all of it. */
        double freed_per_mib = before > inflated ? (double) (before - inflated) / (double) kBalloon : 0.0;
        RecordProperty("rss_before_kib", std::to_string(before / 1024));
        RecordProperty("rss_inflated_kib", std::to_string(inflated / 1024));
        RecordProperty("rss_retouched_kib", std::to_string(retouched / 1024));
        printf("guest RAM Rss: %lu KiB before, %lu KiB inflated, %lu KiB deflated+touched; "
               "%.3f MiB freed per MiB inflated\n",
               (unsigned long) (before / 1024), (unsigned long) (inflated / 1024), (unsigned long) (retouched / 1024),
               freed_per_mib);
        EXPECT_GE(freed_per_mib, 0.95);
        EXPECT_GE(retouched, inflated + kBalloon * 95 / 100);
}

TEST(VmmBalloon, BalloonVerbsWithoutTheDeviceSayThereIsNone) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        std::string sock = dir.file("control");
        Process vmm({ vmm_path(), "run", "--mem", "64M", "--socket", sock, guest_path("spin") });

        ASSERT_TRUE(vmm.wait_for_output("spin: ready", kStepTimeoutMs)) << vmm.out() << vmm.err();
        RunResult r = control({ "balloon", sock, "1M" });
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_NE(r.err.find("no balloon device"), std::string::npos) << r.err;
        r = control({ "balloon-stats", sock });
        EXPECT_EQ(r.exit_code, 1);
        vmm.kill(SIGTERM);
        vmm.wait(kStepTimeoutMs);
}

TEST(VmmBalloon, BalloonOptionRefusesAnUnknownArgument) {
        RunResult r = run_vmm({ "run", "--balloon=bogus", guest_path("hello") }, 10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}
