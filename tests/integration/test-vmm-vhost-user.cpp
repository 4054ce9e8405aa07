/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user front-end in a real, jailed VMM under KVM: the virtio-rng
 * test guest drives a device whose queue the project's test back-end
 * (tests/vhost-user, majordome-test-rng-backend) runs in another process;
 * a back-end that dies while the guest uses it is a device-error event on
 * the control socket and the VM goes on. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/control.h"
#include "tests/integration/vmm-process.h"

namespace {

constexpr int kGuestTimeoutMs = 60000;

std::string backend_path() {
        const char *p = getenv("MAJORDOME_TEST_RNG_BACKEND");
        return p ? p : "";
}

/* Accepts the VMM's connection on listen_fd and starts the back-end on it. */
std::unique_ptr<Process> start_backend(int listen_fd, const std::string &misbehave) {
        pollfd p = { listen_fd, POLLIN, 0 };
        if (poll(&p, 1, 20000) != 1)
                return nullptr;
        int conn = accept4(listen_fd, nullptr, nullptr, 0); /* inherited by the back-end */
        if (conn < 0)
                return nullptr;
        auto b = std::make_unique<Process>(std::vector<std::string>{ backend_path(), "--fd", std::to_string(conn),
                                                                     "--misbehave", misbehave });
        close(conn);
        return b;
}

} // namespace

TEST(VmmVhostUser, RngGuestGetsRandomBytesFromABackendProcess) {
        SKIP_WITHOUT_KVM();
        ASSERT_FALSE(backend_path().empty()) << "MAJORDOME_TEST_RNG_BACKEND";
        TempDir tmp;
        ASSERT_EQ(chmod(tmp.path.c_str(), 0755), 0);
        std::string sock = tmp.file("rng.sock");
        Fd listener(unix_listen(sock));
        ASSERT_GE(listener.fd, 0);

        Process vmm({ vmm_path(), "run", "--vhost-user", "rng,socket=" + sock, "--debug-exit", guest_path("virtio-rng") });
        auto backend = start_backend(listener.fd, "none");
        ASSERT_TRUE(backend) << "the VMM never connected";
        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 6u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;
        /* The VMM's exit closed the socket: the back-end ends. */
        EXPECT_TRUE(backend->exited(10000));
}

TEST(VmmVhostUser, BackendDyingUnderTheGuestIsADeviceErrorEventAndTheVmRunsOn) {
        SKIP_WITHOUT_KVM();
        ASSERT_FALSE(backend_path().empty()) << "MAJORDOME_TEST_RNG_BACKEND";
        TempDir tmp;
        ASSERT_EQ(chmod(tmp.path.c_str(), 0755), 0);
        std::string sock = tmp.file("rng.sock"), ctrl = tmp.file("control");
        Fd listener(unix_listen(sock));
        ASSERT_GE(listener.fd, 0);

        /* Without --debug-exit the guest halts when its checks are done:
         * the VM stays up for the checks below. */
        Process vmm({ vmm_path(), "run", "--vhost-user", "rng,socket=" + sock, "--rng", "--socket", ctrl,
                      guest_path("virtio-rng") });
        auto backend = start_backend(listener.fd, "die-after-start");
        ASSERT_TRUE(backend) << "the VMM never connected";
        Fd events(subscribe(ctrl));
        ASSERT_GE(events.fd, 0) << "no control socket at " << ctrl;

        std::vector<uint8_t> p;
        ASSERT_TRUE(next_event(events.fd, CONTROL_EVENT_DEVICE_ERROR, &p, kGuestTimeoutMs))
                << "no device-error event; stdout:\n" << vmm.out() << "\nstderr:\n" << vmm.err();
        ControlDevice dev;
        char reason[CONTROL_REASON_MAX + 1];
        ASSERT_EQ(control_device_error_decode(p.data(), p.size(), &dev, reason), 0);
        EXPECT_EQ(dev.vendor_id, 0x1af4);
        EXPECT_EQ(dev.device_id, 0x1044);
        EXPECT_NE(std::string(reason), "") << "no reason";
        EXPECT_TRUE(backend->exited(5000));

        /* The VM goes on: its control socket answers, and it stops cleanly. */
        RunResult info = run_vmm({ "info", ctrl }, 10000);
        EXPECT_EQ(info.exit_code, 0) << info.err;
        RunResult stop = run_vmm({ "stop", ctrl }, 10000);
        EXPECT_EQ(stop.exit_code, 0) << stop.err;
        RunResult r = vmm.wait(20000);
        EXPECT_FALSE(r.timed_out);
        EXPECT_NE(r.err.find("vhost-user"), std::string::npos) << "the VMM's log names no vhost-user failure:\n" << r.err;
}

TEST(VmmVhostUser, SocketNobodyListensOnIsAUsageError) {
        TempDir tmp;
        RunResult r = run_vmm({ "run", "--vhost-user", "rng,socket=" + tmp.file("nothing.sock"), guest_path("hello") },
                              10000);
        EXPECT_EQ(r.exit_code, 64) << r.err;
        EXPECT_NE(r.err.find("nothing.sock"), std::string::npos) << r.err;
}

TEST(VmmVhostUser, UnknownTypeOrMissingSocketIsAUsageError) {
        for (const char *arg : { "gpu,socket=/x", "rng", "rng,socket=", "rng,sock=/x", "fs,socket=/x,tag=a:b" }) {
                RunResult r = run_vmm({ "run", "--vhost-user", arg, guest_path("hello") }, 10000);
                EXPECT_EQ(r.exit_code, 64) << arg << ": " << r.err;
        }
}

TEST(VmmSharedDir, BadPathsAndTagsAreUsageErrors) {
        TempDir tmp;
        std::string file = tmp.file("plain");
        write_file(file, "x");
        ASSERT_EQ(mkdir(tmp.file("d").c_str(), 0755), 0);
        ASSERT_EQ(symlink("/nonexistent-dir", tmp.file("dangling").c_str()), 0);
        const std::vector<std::string> bad = {
                tmp.file("missing") + ":t",     /* no such directory */
                file + ":t",                    /* a file */
                tmp.file("dangling") + ":t",    /* a symlink to nothing */
                tmp.file("d"),                  /* no tag */
                tmp.file("d") + ":" + std::string(37, 'a'), /* tag too long */
                tmp.file("d") + ":t:cache=sometimes",
                tmp.file("d") + ":t:rw",
        };
        for (const std::string &arg : bad) {
                RunResult r = run_vmm({ "run", "--shared-dir", arg, guest_path("hello") }, 10000);
                EXPECT_EQ(r.exit_code, 64) << arg << ": " << r.err;
        }
        RunResult two = run_vmm({ "run", "--shared-dir", tmp.file("d") + ":same", "--shared-dir", tmp.path + ":same",
                                  guest_path("hello") }, 10000);
        EXPECT_EQ(two.exit_code, 64) << "two shares with one tag: " << two.err;
        EXPECT_NE(two.err.find("same"), std::string::npos) << two.err;
}

TEST(VmmSharedDir, ShareStartsVirtiofsdAndTheGuestRuns) {
        SKIP_WITHOUT_KVM();
        if (access("/usr/lib/qemu/virtiofsd", X_OK) != 0 || geteuid() != 0)
                GTEST_SKIP() << "virtiofsd (qemu-system-common) and root are needed";
        TempDir tmp;
        ASSERT_EQ(mkdir(tmp.file("d").c_str(), 0755), 0);
        RunResult r = run_vmm({ "run", "--shared-dir", tmp.file("d") + ":t1", "--shared-dir",
                                tmp.file("d") + ":t2:ro:cache=never", "--debug-exit", guest_path("hello") }, 30000);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("TEST hello PASS"), std::string::npos) << r.out;
}

/* A live share is served without a mount clone (the daemon mounts shares
 * under it later), so its directory must already be on a read-only, nodev,
 * nosuid mount: a plain directory is refused before anything starts, and
 * one on such a mount (a tmpfs made here) runs. */
TEST(VmmSharedDir, LiveShareMustBeOnAReadOnlyNodevNosuidMount) {
        SKIP_WITHOUT_KVM();
        if (access("/usr/lib/qemu/virtiofsd", X_OK) != 0 || geteuid() != 0)
                GTEST_SKIP() << "virtiofsd (qemu-system-common) and root are needed";
        TempDir tmp;
        ASSERT_EQ(mkdir(tmp.file("plain").c_str(), 0755), 0);
        RunResult plain = run_vmm({ "run", "--shared-dir", tmp.file("plain") + ":root:live", "--debug-exit",
                                    guest_path("hello") }, 30000);
        EXPECT_EQ(plain.exit_code, 71) << plain.err;
        EXPECT_NE(plain.err.find("read-only, nodev, nosuid mount"), std::string::npos) << plain.err;

        ASSERT_EQ(mkdir(tmp.file("root").c_str(), 0755), 0);
        ASSERT_EQ(mount("t", tmp.file("root").c_str(), "tmpfs", MS_RDONLY | MS_NODEV | MS_NOSUID, "size=16k"), 0)
                << strerror(errno);
        RunResult live = run_vmm({ "run", "--shared-dir", tmp.file("root") + ":root:live", "--debug-exit",
                                   guest_path("hello") }, 30000);
        (void) umount2(tmp.file("root").c_str(), MNT_DETACH);
        EXPECT_EQ(live.exit_code, 0) << live.err;
        EXPECT_NE(live.out.find("TEST hello PASS"), std::string::npos) << live.out;
}

/* The stand-alone (Rust) virtiofsd's command line, through a stand-in that
 * takes exactly that command line and serves the share with QEMU's
 * virtiofsd (tests/vhost-user/virtiofsd-rust-cli.sh; Debian 12 has no
 * stand-alone one). It finds the share by path, in a mount namespace of its
 * own: the host's /tmp never shows it. A stand-in that does not find the
 * test's share fails the start; a live share is refused with it. */
TEST(VmmSharedDir, StandAloneVirtiofsdGetsItsCommandLineAndTheShareByPath) {
        SKIP_WITHOUT_KVM();
        if (access("/usr/lib/qemu/virtiofsd", X_OK) != 0 || geteuid() != 0)
                GTEST_SKIP() << "virtiofsd (qemu-system-common) and root are needed";
        const char *src = getenv("MAJORDOME_SOURCE_DIR");
        ASSERT_NE(src, nullptr);
        std::vector<std::string> env = {
                std::string("MAJORDOME_VIRTIOFSD=") + src + "/tests/vhost-user/virtiofsd-rust-cli.sh",
                "MAJORDOME_VIRTIOFSD_CLI=rust",
        };
        TempDir tmp;
        ASSERT_EQ(mkdir(tmp.file("d").c_str(), 0755), 0);
        write_file(tmp.file("d/MAJORDOME-SHARE"), "x");

        Process ok({ vmm_path(), "run", "--shared-dir", tmp.file("d") + ":t1:ro:cache=never", "--debug-exit",
                     guest_path("hello") }, env);
        RunResult r = ok.wait(30000);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("TEST hello PASS"), std::string::npos) << r.out;
        EXPECT_NE(access("/tmp/majordome-share", F_OK), 0) << "the share's mount point is in the host's /tmp";

        ASSERT_EQ(unlink(tmp.file("d/MAJORDOME-SHARE").c_str()), 0);
        Process wrong({ vmm_path(), "run", "--shared-dir", tmp.file("d") + ":t1", "--debug-exit",
                        guest_path("hello") }, env);
        r = wrong.wait(30000);
        EXPECT_NE(r.exit_code, 0) << "the stand-in served a directory that is not the share";
        EXPECT_NE(r.err.find("is not the test's share"), std::string::npos) << r.err;

        ASSERT_EQ(mkdir(tmp.file("root").c_str(), 0755), 0);
        ASSERT_EQ(mount("t", tmp.file("root").c_str(), "tmpfs", MS_RDONLY | MS_NODEV | MS_NOSUID, "size=16k"), 0);
        Process live({ vmm_path(), "run", "--shared-dir", tmp.file("root") + ":root:live", "--debug-exit",
                       guest_path("hello") }, env);
        r = live.wait(30000);
        (void) umount2(tmp.file("root").c_str(), MNT_DETACH);
        EXPECT_EQ(r.exit_code, 71) << r.err;
        EXPECT_NE(r.err.find("a live share needs QEMU's virtiofsd"), std::string::npos) << r.err;
}
