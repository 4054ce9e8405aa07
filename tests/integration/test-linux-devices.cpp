/* SPDX-License-Identifier: BSD-3-Clause */
/* Every device under real Linux drivers, in one boot of the linux-rig kernel
 * (booting takes about a minute of emulated guest code here, so the checks
 * are batched): virtio-rng, two virtio-block disks, virtio-console,
 * virtio-vsock, virtio-balloon, two virtio-fs shares (vhost-user, served
 * by Debian's virtiofsd) and virtio-gpu (majordome-gpu, its scanout a
 * window on a real weston whose screenshot is compared with what the
 * guest drew; then a guest Wayland client through its cross-domain
 * context, whose window is compared the same way), each bound by its own
 * Linux driver over PCI/MSI-X. The guest side is tests/linux/init-devices.sh
 * sourcing the check-*.sh fragments; each fragment documents the host-side
 * steps, which this test performs as the console output asks for them, then
 * it checks the guest's verdicts (every expected one, by name) and the disk
 * image. */
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/integration/vmm-process.h"
#include "tests/gpu-display/weston.h"

namespace {

using Clock = std::chrono::steady_clock;

/* The whole boot, checks included: about 3 minutes on a quiet host, 7-9
 * when the host is busy (bounded: the guest's own waits are). */
constexpr int kBootTimeoutMs = 750000;
constexpr int kStepTimeoutMs = 90000;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kDiskSize = 4 * kMiB;
constexpr uint64_t kBalloonSize = 64 * kMiB;
/* Guest activity between two Rss samples (a shell loop, awk) may back a
 * few new pages; inflating must not add more than that. */
constexpr uint64_t kRssSlack = 4 * kMiB;

/* The guest's verdicts, each of which must be there and PASS. */
const char *const kGuestChecks[] = {
        "rng-probe",           "rng-current",
        "rng-read",            "block-probe",
        "block-serial",        "block-read-only",
        "block-read-only-write", "block-write-flush",
        "block-read-back",     "block-discard",
        "block-resize",        "console-probe",
        "console-echo",        "vsock-probe",
        "vsock-guest-connect", "vsock-host-connect",
        "balloon-probe",       "balloon-inflate",
        "balloon-deflate",     "fs-probe",
        "fs-mount",            "fs-read",
        "fs-write",            "fs-list",
        "fs-ro-read",          "fs-ro-write",
        "gpu-probe",           "gpu-features",
        "gpu-open",            "gpu-resources",
        "gpu-connector",       "gpu-edid",
        "gpu-dumb",            "gpu-modeset",
        "gpu-dirty",           "gpu-flip",
        "gpu-shown",           "xd-open",
        "xd-params",           "xd-caps",
        "xd-context",          "xd-rings",
        "xd-init",             "xd-registry",
        "xd-roundtrip",
        "xd-configure",        "xd-requirements",
        "xd-blob",             "xd-commit",
        "xd-shown",            "gpu-rebind",
};

/* The GPU's display: check-gpu.sh asks for 640x480; kms-pattern's second
 * buffer is on screen when it says gpu-shown. Its resources may take 4 MiB
 * (max-memory): kms-pattern's two buffers (2.4 MB) fit, but not twice, so
 * gpu-rebind fails when the reset leaves the unplugged driver's buffers
 * on the host. */
constexpr uint32_t kGpuWidth = 640, kGpuHeight = 480;

weston_test::Rgb kms_pattern(uint32_t x, uint32_t y) {
        return { (uint8_t) (x & 0xff), (uint8_t) (y & 0xff), 0xc0 };
}

/* Where the guest's window is in a screenshot: the pattern's top-left
 * corner, told apart by a few of its pixels. */
bool find_kms_pattern(const weston_test::Screenshot &s, int *ret_x, int *ret_y) {
        for (int y = 0; y + (int) kGpuHeight <= s.height; y++)
                for (int x = 0; x + (int) kGpuWidth <= s.width; x++)
                        if (s.at(x, y) == kms_pattern(0, 0) && s.at(x + 1, y + 1) == kms_pattern(1, 1) &&
                            s.at(x + 37, y + 5) == kms_pattern(37, 5) && s.at(x + 300, y + 200) == kms_pattern(300, 200)) {
                                *ret_x = x;
                                *ret_y = y;
                                return true;
                        }
        return false;
}

/* wl-cross-domain's window (tests/linux/wl-cross-domain.c): the marker in
 * its top-left corner, then (2x, 2y, 0x80). */
constexpr uint32_t kXdWidth = 128, kXdHeight = 96;

weston_test::Rgb xd_pattern(uint32_t x, uint32_t y) {
        if (x < (uint32_t) weston_test::MARKER && y < (uint32_t) weston_test::MARKER)
                return weston_test::MARKER_COLOUR;
        return { (uint8_t) (x * 2), (uint8_t) (y * 2), 0x80 };
}

/* Screenshots weston until the w x h window that find() places shows
 * pattern at every pixel, or `seconds` pass (weston shows a commit at its
 * next repaint). The pixels that differ at the last look, all of them
 * while the window is nowhere (*ret_found false). */
size_t window_mismatches(weston_test::Weston &weston, int seconds,
                         const std::function<bool(const weston_test::Screenshot &, int *, int *)> &find, uint32_t w,
                         uint32_t h, const std::function<weston_test::Rgb(uint32_t, uint32_t)> &pattern,
                         bool *ret_found) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        size_t bad = (size_t) w * h;
        weston_test::Screenshot shot;
        int x, y;

        *ret_found = false;
        while (std::chrono::steady_clock::now() < until && bad > 0) {
                if (weston.screenshot(&shot) && find(shot, &x, &y)) {
                        *ret_found = true;
                        bad = shot.mismatches(x, y, w, h, pattern);
                }
                if (bad > 0)
                        usleep(500 * 1000);
        }
        return bad;
}

std::string env_or_empty(const char *name) {
        const char *v = getenv(name);
        return v ? v : "";
}

bool exists(const std::string &p) {
        struct stat st;
        return !p.empty() && stat(p.c_str(), &st) == 0;
}

std::string tail(const std::string &s, size_t n = 4000) {
        return s.substr(s.size() > n ? s.size() - n : 0);
}

/* The rest of the first line that starts with `key`, without the line end;
 * false when there is none. */
bool line_after(const std::string &out, const std::string &key, std::string *ret_rest) {
        size_t at = out.find(key);
        if (at == std::string::npos)
                return false;
        size_t eol = out.find('\n', at);
        std::string rest = out.substr(at + key.size(), eol == std::string::npos ? std::string::npos : eol - at - key.size());
        while (!rest.empty() && (rest.back() == '\r' || rest.back() == '\n'))
                rest.pop_back();
        *ret_rest = rest;
        return true;
}

/* A check's verdict: FAIL when any "LINUXTEST <name> FAIL" line is there,
 * else PASS when a PASS line is, else the word of its first line (WAIT,
 * READY), "" when it never printed one. The guest prints each line twice
 * (console and kernel log) and a step prints WAIT before its verdict. */
std::string verdict(const std::string &out, const std::string &name, std::string *detail) {
        std::string rest;
        for (const char *word : { "FAIL", "PASS" })
                if (line_after(out, "LINUXTEST " + name + " " + word, &rest)) {
                        *detail = rest.empty() ? rest : rest.substr(1);
                        return word;
                }
        if (!line_after(out, "LINUXTEST " + name + " ", &rest))
                return "";
        size_t sp = rest.find(' ');
        *detail = sp == std::string::npos ? "" : rest.substr(sp + 1);
        return rest.substr(0, sp);
}

bool seen(const std::string &out, const std::string &name, const std::string &word) {
        return out.find("LINUXTEST " + name + " " + word) != std::string::npos;
}

/* Failed checks by name, reported together with the console's tail. */
struct Failures {
        std::vector<std::string> list;
        void check(bool ok, const std::string &name, const std::string &detail) {
                if (!ok)
                        list.push_back(name + ": " + detail);
        }
};

/* Host side of check-console.sh: read the guest's ping line on the console
 * socket, answer with the pong line; keep taking output until told to stop. */
struct ConsoleClient {
        std::atomic<bool> stop{ false };
        std::atomic<bool> connected{ false }, answered{ false };
        std::string got; /* the thread's until finish() */
        std::thread thread;

        void start(const std::string &path) {
                thread = std::thread([this, path] {
                        Fd c(unix_connect(path, kBootTimeoutMs, &stop));
                        if (c.fd < 0)
                                return;
                        connected = true;
                        while (!stop) {
                                pollfd p = { c.fd, POLLIN, 0 };
                                if (poll(&p, 1, 200) != 1)
                                        continue;
                                char buf[4096];
                                ssize_t n = read(c.fd, buf, sizeof(buf));
                                if (n <= 0)
                                        return;
                                got.append(buf, (size_t) n);
                                /* "\r\n" when the guest's tty translates. */
                                if (!answered && (got.find("LINUX-CONSOLE-PING\n") != std::string::npos ||
                                                  got.find("LINUX-CONSOLE-PING\r\n") != std::string::npos))
                                        answered = write_all(c.fd, "LINUX-CONSOLE-PONG\n");
                        }
                });
        }
        /* Everything the guest wrote on the console. */
        const std::string &finish() {
                stop = true;
                if (thread.joinable())
                        thread.join();
                return got;
        }
        ~ConsoleClient() { finish(); }
};

/* Host side of check-vsock.sh's guest -> host stream: the program behind
 * host port 1234 accepts one connection and echoes one line. */
struct VsockEchoServer {
        std::atomic<bool> stop{ false };
        std::atomic<bool> echoed{ false };
        std::string line; /* read by the test only after join() */
        std::thread thread;

        void start(int listen_fd) {
                thread = std::thread([this, listen_fd] {
                        while (!stop) {
                                pollfd p = { listen_fd, POLLIN, 0 };
                                if (poll(&p, 1, 200) == 1)
                                        break;
                        }
                        if (stop)
                                return;
                        Fd c(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
                        if (c.fd < 0)
                                return;
                        line = read_line(c.fd, kStepTimeoutMs);
                        echoed = !line.empty() && write_all(c.fd, line);
                        /* Until the guest closes, or we are told to stop. */
                        while (!stop) {
                                pollfd p = { c.fd, POLLIN, 0 };
                                char buf[256];
                                if (poll(&p, 1, 200) == 1 && read(c.fd, buf, sizeof(buf)) <= 0)
                                        break;
                        }
                });
        }
        void join() {
                stop = true;
                if (thread.joinable())
                        thread.join();
        }
        ~VsockEchoServer() { join(); }
};

/* Host side of check-vsock.sh's host -> guest stream. Returns "" on
 * success, else what went wrong. */
std::string vsock_host_connect(const std::string &path) {
        Fd h(unix_connect(path, 5000));
        if (h.fd < 0)
                return "cannot connect to " + path;
        if (!write_all(h.fd, "CONNECT 6000\n"))
                return "write CONNECT failed";
        std::string ok = read_line(h.fd, kStepTimeoutMs);
        if (ok.rfind("OK ", 0) != 0)
                return "CONNECT 6000 answered '" + ok + "'";
        const std::string hello = "hello from the host\n";
        if (!write_all(h.fd, hello))
                return "write after OK failed";
        std::string back = read_line(h.fd, kStepTimeoutMs);
        if (back != hello)
                return "echo came back as '" + back + "'";
        shutdown(h.fd, SHUT_WR);
        /* The guest's helper closes once it saw our EOF. */
        read_line(h.fd, 10000);
        return "";
}

RunResult control(const std::vector<std::string> &args) {
        return run_vmm(args, 30000);
}

bool exited(int pidfd) {
        pollfd p = { pidfd, POLLIN, 0 };
        return poll(&p, 1, 0) == 1;
}

} // namespace

TEST(LinuxDevices, RigKernelDriversUseEveryDeviceInOneBoot) {
        SKIP_WITHOUT_KVM();
        std::string rig = env_or_empty("MAJORDOME_RIG_DIR");
        std::string scripts = env_or_empty("MAJORDOME_RIG_SCRIPTS");
        if (!exists(rig + "/vmlinux") || !exists(scripts + "/mkinitramfs.sh"))
                GTEST_SKIP() << "linux-rig not found (MAJORDOME_RIG_DIR/MAJORDOME_RIG_SCRIPTS; ../shared/linux-rig)";
        std::string src = env_or_empty("MAJORDOME_SOURCE_DIR") + "/tests/linux";
        std::string vsock_echo = env_or_empty("MAJORDOME_LINUX_HELPERS") + "/vsock-echo";
        std::string kms_pattern_bin = env_or_empty("MAJORDOME_LINUX_HELPERS") + "/kms-pattern";
        std::string wl_cross_domain_bin = env_or_empty("MAJORDOME_LINUX_HELPERS") + "/wl-cross-domain";
        ASSERT_TRUE(exists(src + "/init-devices.sh")) << "MAJORDOME_SOURCE_DIR: no " << src << "/init-devices.sh";
        ASSERT_TRUE(exists(vsock_echo)) << "MAJORDOME_LINUX_HELPERS: no " << vsock_echo
                                        << " (tests/linux/meson.build builds it)";
        ASSERT_TRUE(exists(kms_pattern_bin)) << "MAJORDOME_LINUX_HELPERS: no " << kms_pattern_bin;
        ASSERT_TRUE(exists(wl_cross_domain_bin)) << "MAJORDOME_LINUX_HELPERS: no " << wl_cross_domain_bin;
        /* The host's compositor, where the guest's scanout becomes a window. */
        weston_test::Weston weston;
        std::string weston_error = weston.start();
        ASSERT_EQ(weston_error, "") << "weston is part of this test (tools/install-deps.sh installs it)";

        TempDir tmp;
        /* The jailed VMM runs as nobody: it must reach the directory (the
         * vsock host socket; the disks and sockets it opens before the jail). */
        ASSERT_EQ(chmod(tmp.path.c_str(), 0755), 0);
        std::string disk = tmp.file("disk.img"), ro = tmp.file("ro.img");
        std::string cpath = tmp.file("console.sock"), vpath = tmp.file("vsock.sock"), ctrl = tmp.file("control");
        {
                Fd d(open(disk.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
                Fd r(open(ro.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
                ASSERT_GE(d.fd, 0);
                ASSERT_GE(r.fd, 0);
                ASSERT_EQ(ftruncate(d.fd, (off_t) kDiskSize), 0);
                ASSERT_EQ(ftruncate(r.fd, (off_t) kMiB), 0);
        }

        /* The shares (check-fs.sh): what the guest reads, and a directory of 200. */
        std::string share = tmp.file("share"), ro_share = tmp.file("ro-share");
        ASSERT_EQ(mkdir(share.c_str(), 0755), 0);
        ASSERT_EQ(mkdir(ro_share.c_str(), 0755), 0);
        ASSERT_EQ(mkdir((share + "/many").c_str(), 0755), 0);
        write_file(share + "/from-host.txt", "MAJORDOME-FS-HOST\n");
        write_file(ro_share + "/readme.txt", "MAJORDOME-FS-RO\n");
        for (int i = 0; i < 200; i++) {
                char name[16];
                snprintf(name, sizeof(name), "/f%03d", i);
                write_file(share + "/many" + name, "");
        }

        std::string initrd = tmp.file("initramfs.cpio");
        std::string cmd = "'" + scripts + "/mkinitramfs.sh' '" + rig + "' '" + src + "/init-devices.sh' '" + initrd + "'";
        for (const char *c : { "rng", "block", "console", "vsock", "balloon", "fs", "gpu" })
                cmd += " '" + src + "/check-" + c + ".sh:/checks/check-" + c + ".sh'";
        cmd += " '" + vsock_echo + ":/vsock-echo' '" + kms_pattern_bin + ":/kms-pattern' '" + wl_cross_domain_bin +
               ":/wl-cross-domain' >/dev/null";
        ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
        std::string rig_cmdline = read_file(scripts + "/cmdline");
        while (!rig_cmdline.empty() && (rig_cmdline.back() == '\n' || rig_cmdline.back() == ' '))
                rig_cmdline.pop_back();

        Fd vsock_listen(unix_listen(vpath + "_1234"));
        ASSERT_GE(vsock_listen.fd, 0) << strerror(errno);
        ASSERT_EQ(chmod((vpath + "_1234").c_str(), 0777), 0);
        VsockEchoServer echo_server;
        echo_server.start(vsock_listen.fd);

        auto started = Clock::now();
        Process vmm({ vmm_path(), "run", "--mem", "256M", "--rng",
                      "--block", disk + ",sparse=true,id=linuxtest-disk", "--block", ro + ",ro",
                      "--console", "socket:" + cpath, "--vsock", "cid=3,path=" + vpath,
                      "--balloon", "--shared-dir", share + ":linuxtest-share",
                      "--shared-dir", ro_share + ":linuxtest-ro:ro",
                      "--gpu", "backend=2d,width=" + std::to_string(kGpuWidth) + ",height=" + std::to_string(kGpuHeight) +
                                       ",context-types=cross-domain,max-memory=4M",
                      "--wayland-sock", weston.socket_path, "--socket", ctrl, "--initrd", initrd,
                      "--cmdline", "console=ttyS0 " + rig_cmdline, rig + "/vmlinux" });
        Fd pidfd((int) syscall(SYS_pidfd_open, vmm.pid(), 0));
        ASSERT_GE(pidfd.fd, 0);
        ConsoleClient console;
        console.start(cpath);

        /* The host-side steps, each once, as the guest's lines ask for them. */
        Failures fails;
        bool vsock_done = false, resized = false, inflate_sent = false, inflate_checked = false,
             deflate_sent = false, gpu_looked = false, xd_looked = false;
        uint64_t rss_before = 0, rss_inflated = 0;
        std::string out;
        auto deadline = started + std::chrono::milliseconds(kBootTimeoutMs);
        while (Clock::now() < deadline && !exited(pidfd.fd)) {
                out = vmm.out();
                if (!vsock_done && seen(out, "vsock-listen", "READY")) {
                        vsock_done = true;
                        std::string why = vsock_host_connect(vpath);
                        fails.check(why.empty(), "host-vsock-connect", why);
                }
                if (!resized && seen(out, "block-resize", "WAIT")) {
                        resized = true;
                        RunResult r = control({ "disk-resize", ctrl, "0", std::to_string(2 * kDiskSize) });
                        fails.check(r.exit_code == 0, "host-disk-resize",
                                    "disk-resize exit " + std::to_string(r.exit_code) + ": " + r.err);
                }
                if (!inflate_sent && seen(out, "balloon-inflate", "WAIT")) {
                        inflate_sent = true;
                        rss_before = guest_ram_rss(vmm.pid());
                        RunResult r = control({ "balloon", ctrl, "64M" });
                        fails.check(r.exit_code == 0, "host-balloon-inflate",
                                    "balloon 64M exit " + std::to_string(r.exit_code) + ": " + r.err);
                }
                if (inflate_sent && !inflate_checked && seen(out, "balloon-inflate", "PASS")) {
                        inflate_checked = true;
                        rss_inflated = guest_ram_rss(vmm.pid());
                        std::string detail;
                        line_after(out, "LINUXTEST balloon-inflate PASS ", &detail);
                        unsigned long memtotal_kib = 0;
                        sscanf(detail.c_str(), "MemTotal=%lu", &memtotal_kib);
                        RunResult s = control({ "balloon-stats", "--json", ctrl });
                        const std::string b = std::to_string(kBalloonSize);
                        fails.check(s.exit_code == 0, "host-balloon-stats",
                                    "balloon-stats exit " + std::to_string(s.exit_code) + ": " + s.err);
                        for (const std::string &want :
                             { "\"actual_bytes\":" + b, "\"inflated_bytes\":" + b, std::string("\"stats_fresh\":true"),
                               "\"total_memory\":" + std::to_string((uint64_t) memtotal_kib * 1024) })
                                fails.check(s.out.find(want) != std::string::npos, "host-balloon-stats",
                                            "no " + want + " in " + s.out + " (guest: " + detail + ")");
                        fails.check(rss_inflated <= rss_before + kRssSlack, "host-balloon-rss",
                                    "guest RAM Rss grew from " + std::to_string(rss_before / 1024) + " KiB to " +
                                            std::to_string(rss_inflated / 1024) + " KiB while inflating");
                }
                if (!gpu_looked && seen(out, "gpu-shown", "PASS")) {
                        /* The guest holds the frame 25 s: the window gets it
                         * within a few, as weston repaints. */
                        bool found;
                        size_t bad = window_mismatches(weston, 15, find_kms_pattern, kGpuWidth, kGpuHeight,
                                                       kms_pattern, &found);

                        gpu_looked = true;
                        fails.check(bad == 0, "host-gpu-window",
                                    !found ? "the guest's pattern is nowhere on weston's screen"
                                           : std::to_string(bad) + " of the window's pixels differ");
                }
                if (!xd_looked && seen(out, "xd-shown", "PASS")) {
                        /* wl-cross-domain holds its window 10 s; weston
                         * shows its commit at the next repaint. */
                        bool found;
                        size_t bad = window_mismatches(
                                weston, 8,
                                [](const weston_test::Screenshot &s, int *x, int *y) { return s.find_marker(x, y); },
                                kXdWidth, kXdHeight, xd_pattern, &found);

                        xd_looked = true;
                        fails.check(bad == 0, "host-xd-window",
                                    !found ? "the guest client's window is nowhere on weston's screen" +
                                                     weston.scene_graph()
                                           : std::to_string(bad) + " of the window's pixels differ");
                }
                if (!deflate_sent && seen(out, "balloon-deflate", "WAIT")) {
                        deflate_sent = true;
                        RunResult r = control({ "balloon", ctrl, "0" });
                        fails.check(r.exit_code == 0, "host-balloon-deflate",
                                    "balloon 0 exit " + std::to_string(r.exit_code) + ": " + r.err);
                }
                usleep(200 * 1000);
        }
        bool vm_ended = exited(pidfd.fd);
        RunResult r = vmm.wait(vm_ended ? 10000 : 1000);
        double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        const std::string &console_out = console.finish();
        echo_server.join();
        out = r.out;

        fails.check(vm_ended && !r.timed_out, "host-vm-ends",
                    "no reboot within " + std::to_string(kBootTimeoutMs / 1000) + " s");
        fails.check(r.exit_code == 0, "host-vmm-exit",
                    "exit " + std::to_string(r.exit_code) + " signal " + std::to_string(r.signal) + "; stderr: " +
                            r.err);
        fails.check(seen(out, "done", ""), "guest-done", "no 'LINUXTEST done' line");
        for (const char *name : kGuestChecks) {
                std::string detail, v = verdict(out, name, &detail);
                fails.check(v == "PASS", name, v.empty() ? "missing" : v + " " + detail);
        }
        /* The host steps the guest's lines asked for. */
        fails.check(console.connected, "host-console-connect", "never connected to " + cpath);
        fails.check(console.answered, "host-console-ping", "no LINUX-CONSOLE-PING line on the console socket");
        /* check-console.sh puts the tty in raw mode: no CR added, no echo. */
        fails.check(console_out.find("LINUX-CONSOLE-PING\r") == std::string::npos &&
                            console_out.find("LINUX-CONSOLE-PONG") == std::string::npos,
                    "host-console-raw", "the guest's tty translated or echoed: '" + console_out + "'");
        fails.check(echo_server.echoed && echo_server.line == "linux guest ping\n", "host-vsock-guest-echo",
                    "the program on port 1234 got '" + echo_server.line + "'");
        fails.check(vsock_done, "host-vsock-connect", "no 'vsock-listen READY' line");
        fails.check(resized, "host-disk-resize", "no 'block-resize WAIT' line");
        fails.check(gpu_looked, "host-gpu-looked", "no 'gpu-shown PASS' line");
        fails.check(xd_looked, "host-xd-looked", "no 'xd-shown PASS' line");
        fails.check(inflate_sent && inflate_checked && deflate_sent, "host-balloon-steps",
                    "balloon lines seen: inflate WAIT " + std::to_string(inflate_sent) + ", inflate PASS " +
                            std::to_string(inflate_checked) + ", deflate WAIT " + std::to_string(deflate_sent));

        /* The image as the guest left it. */
        std::string img = read_file(disk);
        std::string pattern;
        while (pattern.size() < 65536)
                pattern += "MAJORDOME-BLOCK\n";
        fails.check(img.size() == 2 * kDiskSize, "host-disk-size",
                    "image is " + std::to_string(img.size()) + " bytes, want " + std::to_string(2 * kDiskSize));
        fails.check(img.size() >= 131072 && img.compare(65536, 65536, pattern) == 0, "host-disk-pattern",
                    "64 KiB at 65536 are not the guest's pattern");
        fails.check(img.size() >= 2 * kMiB && img.find_first_not_of('\0', kMiB) >= 2 * kMiB, "host-disk-discard",
                    "bytes 1-2 MiB are not all zero");
        {
                /* Discarded with sparse=true: a hole, not written zeroes. */
                Fd d(open(disk.c_str(), O_RDONLY | O_CLOEXEC));
                off_t data = lseek(d.fd, (off_t) kMiB, SEEK_DATA);
                fails.check((data < 0 && errno == ENXIO) || data >= (off_t) (2 * kMiB), "host-disk-hole",
                            "data at " + std::to_string((long long) data) + " inside the discarded 1-2 MiB");
        }

        /* The shares as the guest left them. */
        {
                std::string line = "MAJORDOME-FS-GUEST\n", want;
                while (want.size() < 65536)
                        want += line;
                want.resize(65536);
                fails.check(read_file(share + "/from-guest.bin") == want, "host-fs-guest-file",
                            "from-guest.bin is not the guest's 64 KiB pattern");
                fails.check(!exists(ro_share + "/guest-was-here"), "host-fs-read-only",
                            "the guest created a file in the read-only share");
        }

        RecordProperty("boot_seconds", std::to_string((int) seconds));
        RecordProperty("rss_before_inflate_kib", std::to_string(rss_before / 1024));
        RecordProperty("rss_inflated_kib", std::to_string(rss_inflated / 1024));
        printf("boot with every device: %.0f s; guest RAM Rss %lu KiB before inflating, %lu KiB inflated\n", seconds,
               (unsigned long) (rss_before / 1024), (unsigned long) (rss_inflated / 1024));
        std::istringstream lines(out);
        for (std::string l; std::getline(lines, l);)
                if (l.rfind("LINUXTEST ", 0) == 0)
                        printf("  %s\n", l.c_str());

        if (!fails.list.empty()) {
                std::string all;
                for (auto &f : fails.list)
                        all += "  " + f + "\n";
                ADD_FAILURE() << fails.list.size() << " check(s) failed:\n"
                              << all << "stderr:\n"
                              << tail(r.err, 2000) << "\nconsole tail:\n"
                              << tail(out, 6000);
        }
}

/* Display hot-plug of the mode with the real driver: weston's kiosk-shell
 * makes the guest's 640x480 window fullscreen (1024x768), majordome-gpu
 * offers the guest that size (EVENT_DISPLAY, a configuration interrupt),
 * and the guest's connector then has it as its preferred mode. One boot
 * of its own (tests/linux/init-gpu-resize.sh): about 45 s. */
TEST(LinuxDevices, GuestIsOfferedTheSizeTheCompositorGivesItsWindow) {
        SKIP_WITHOUT_KVM();
        std::string rig = env_or_empty("MAJORDOME_RIG_DIR");
        std::string scripts = env_or_empty("MAJORDOME_RIG_SCRIPTS");
        if (!exists(rig + "/vmlinux") || !exists(scripts + "/mkinitramfs.sh"))
                GTEST_SKIP() << "linux-rig not found (MAJORDOME_RIG_DIR/MAJORDOME_RIG_SCRIPTS; ../shared/linux-rig)";
        std::string init = env_or_empty("MAJORDOME_SOURCE_DIR") + "/tests/linux/init-gpu-resize.sh";
        std::string kms_pattern_bin = env_or_empty("MAJORDOME_LINUX_HELPERS") + "/kms-pattern";
        ASSERT_TRUE(exists(init)) << "MAJORDOME_SOURCE_DIR: no " << init;
        ASSERT_TRUE(exists(kms_pattern_bin)) << "MAJORDOME_LINUX_HELPERS: no " << kms_pattern_bin;
        weston_test::Weston weston;
        std::string weston_error = weston.start(false, "kiosk-shell.so");
        ASSERT_EQ(weston_error, "") << "weston is part of this test (tools/install-deps.sh installs it)";

        TempDir tmp;
        ASSERT_EQ(chmod(tmp.path.c_str(), 0755), 0);
        std::string initrd = tmp.file("initramfs.cpio");
        std::string cmd = "'" + scripts + "/mkinitramfs.sh' '" + rig + "' '" + init + "' '" + initrd + "' '" +
                          kms_pattern_bin + ":/kms-pattern' >/dev/null";
        ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
        std::string rig_cmdline = read_file(scripts + "/cmdline");
        while (!rig_cmdline.empty() && (rig_cmdline.back() == '\n' || rig_cmdline.back() == ' '))
                rig_cmdline.pop_back();

        Process vmm({ vmm_path(), "run", "--mem", "256M", "--gpu", "backend=2d,width=640,height=480",
                      "--wayland-sock", weston.socket_path, "--initrd", initrd, "--cmdline",
                      "console=ttyS0 " + rig_cmdline, rig + "/vmlinux" });
        RunResult r = vmm.wait(kBootTimeoutMs);
        ASSERT_FALSE(r.timed_out) << "no reboot within " << kBootTimeoutMs / 1000 << " s; console tail:\n"
                                  << tail(r.out, 3000);
        EXPECT_EQ(r.exit_code, 0) << tail(r.err, 2000);
        EXPECT_NE(r.out.find("LINUXTEST done"), std::string::npos) << tail(r.out, 3000);
        std::string want = std::to_string(weston.out_width) + "x" + std::to_string(weston.out_height);
        for (const char *name : { "resize-open", "resize-modeset", "resize-offered" }) {
                std::string detail, v = verdict(r.out, name, &detail);
                EXPECT_EQ(v, "PASS") << name << ": " << (v.empty() ? "missing" : detail);
                if (std::string(name) == "resize-offered") {
                        EXPECT_EQ(detail, want) << "the guest's preferred mode after weston made its window fullscreen";
                }
        }
        /* majordome-gpu said so once. */
        EXPECT_NE(r.err.find("scanout 0's window is now " + want), std::string::npos) << tail(r.err, 2000);
}
