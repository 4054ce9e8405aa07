/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block throughput with the sandbox on and off, in one run (issue 5:
 * goal at most 3% slower with it). Two virtio-block devices on the same
 * image, driven alike by the fake guest of block-driver.h through the PCI
 * transport, each served by its own worker thread:
 *   off  activated while the sandbox is off (--disable-sandbox): the
 *        worker runs without a filter;
 *   on   activated, after sandbox_setup(ENFORCE) and the role spawners
 *        start as in majordome-vmm, from a thread in the vcpu role, as
 *        DRIVER_OK arrives under KVM: the worker is made by the
 *        virtio-block spawner and runs under exactly the virtio-block
 *        filter, like a jailed VMM's.
 * The per-request syscalls are the worker's (epoll_wait, the kick eventfd
 * read, preadv/pwritev, one irqfd write per batch), so what differs is the
 * filter on them. The fake guest runs unfiltered in both cases: under KVM
 * its notify is an ioeventfd the kernel handles, no VMM syscall.
 *   floor activated while the sandbox is off, from a thread that installed
 *        a filter allowing every syscall: what any seccomp filter costs
 *        on this kernel, whatever its rules (the syscall slow path).
 * 64 KiB sequential and 4 KiB random requests, reads then writes, on an
 * image in the page cache. A round runs each device once per workload
 * (the order rotates); the verdict per size is the median over rounds of
 * on/off throughput for reads and writes together. A size that misses the
 * goal while the allow-all filter alone misses it too is the kernel's
 * floor, not the policy's cost: the verdict says FLOOR and the policy's
 * own cost (on/floor) is judged against the goal instead.
 *
 * Usage: sandbox-block-bench [DIR [MIB [ROUNDS [calibrate]]]]   (default /var/tmp 64 15)
 * "calibrate" leaves the sandbox off for both devices: the ratios it
 * prints are what the bench reads when the filter costs nothing, i.e. the
 * bias and noise of comparing two devices on this host.
 * Prints one line per workload and a summary line per size ending in PASS
 * or FAIL; exit 0 when both sizes meet the goal. */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <map>
#include <pthread.h>
#include <string>
#include <sys/prctl.h>
#include <unistd.h>
#include <vector>

#include <seccomp.h>

#include "bench/block-driver.h"
#include "seccomp/sandbox.h"
#include "vmm/virtio/device.h"

using namespace blockbench;

namespace {

constexpr double GOAL = 0.97;

struct Activation {
        Device *dev;
        int error;
};

/* Plays the vCPU thread on which the driver's DRIVER_OK write lands. */
void *vcpu_thread(void *arg) {
        auto *a = (Activation *) arg;

        a->error = sandbox_enter_role(SANDBOX_ROLE_VCPU);
        if (a->error >= 0)
                a->dev->activate();
        return nullptr;
}

/* Installs a filter that allows everything (kexec_load, which no worker
 * makes, is the one rule that gives libseccomp a program), then activates
 * the device: its worker, started from here, inherits the filter. */
void *floor_thread(void *arg) {
        auto *a = (Activation *) arg;
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

        a->error = -ENOMEM;
        if (ctx && (a->error = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(kexec_load), 0)) >= 0 &&
            (a->error = seccomp_load(ctx)) >= 0)
                a->dev->activate();
        seccomp_release(ctx);
        return nullptr;
}

void scan_threads(const char *name, std::map<int, int> &m) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *de;

        while (d && (de = readdir(d))) {
                std::string task = std::string("/proc/self/task/") + de->d_name;
                char line[256];
                FILE *f = fopen((task + "/comm").c_str(), "re");
                bool match = f && fgets(line, sizeof(line), f) && strcspn(line, "\n") == strlen(name) &&
                             strncmp(line, name, strlen(name)) == 0;
                if (f)
                        fclose(f);
                f = match ? fopen((task + "/status").c_str(), "re") : nullptr;
                while (f && fgets(line, sizeof(line), f))
                        if (strncmp(line, "Seccomp_filters:", 16) == 0)
                                m[atoi(de->d_name)] = atoi(line + 16);
                if (f)
                        fclose(f);
        }
        if (d)
                closedir(d);
}

/* Seccomp_filters of each thread named name, by thread id, once there are
 * `count` (a worker names itself when it starts): the proof that a worker
 * runs under the filters the bench says it does. */
std::map<int, int> thread_filters(const char *name, size_t count) {
        std::map<int, int> m;
        for (int tries = 0; tries < 1000 && m.size() < count; tries++) {
                m.clear();
                scan_threads(name, m);
                if (m.size() < count)
                        usleep(1000);
        }
        return m;
}

} // namespace

int main(int argc, char **argv) {
        std::string dir = argc > 1 ? argv[1] : "/var/tmp";
        uint64_t image = (argc > 2 ? strtoull(argv[2], nullptr, 10) : 64) * MiB;
        int rounds = argc > 3 ? atoi(argv[3]) : 15;
        bool calibrate = argc > 4 && strcmp(argv[4], "calibrate") == 0;
        std::string path = dir + "/sandbox-block-bench-XXXXXX";
        std::vector<char> tmpl(path.begin(), path.end());
        PolicyError e;
        int r;

        tmpl.push_back('\0');
        int fd = mkstemp(tmpl.data());
        if (fd < 0 || unlink(tmpl.data()) < 0 || rounds < 1) {
                fprintf(stderr, "sandbox-block-bench: cannot create an image in %s: %m\n", dir.c_str());
                return 1;
        }
        std::vector<uint8_t> chunk(MiB, 0xa5);
        for (uint64_t off = 0; off < image; off += chunk.size())
                if (pwrite(fd, chunk.data(), chunk.size(), (off_t) off) != (ssize_t) chunk.size())
                        return 1;

        /* The sandbox is off until set up: this worker gets no filter. */
        Device off("fd:" + std::to_string(fd), { .interrupts = true });
        auto workers_off = thread_filters("virtio-block", 1);
        /* NO_NEW_PRIVS first: an unprivileged caller needs it to filter. */
        Device floor_dev("fd:" + std::to_string(fd), { .interrupts = true, .defer_activate = true });
        Activation fa = { &floor_dev, 0 };
        pthread_t ft;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || pthread_create(&ft, nullptr, floor_thread, &fa) != 0 ||
            pthread_join(ft, nullptr) != 0 || fa.error < 0 || floor_dev.failed()) {
                fprintf(stderr, "sandbox-block-bench: activating the allow-all device failed: %s\n", strerror(-fa.error));
                return 1;
        }
        auto workers_before = thread_filters("virtio-block", 2);

        r = virtio_device_table_register_roles();
        if (r >= 0)
                r = sandbox_setup(calibrate ? SANDBOX_MODE_OFF : SANDBOX_MODE_ENFORCE, nullptr, 0, &e);
        if (r < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                fprintf(stderr, "sandbox-block-bench: sandbox setup: %s %s\n", strerror(-r), e.message);
                return 1;
        }
        r = sandbox_spawner_start();
        if (r < 0) {
                fprintf(stderr, "sandbox-block-bench: spawners: %s\n", strerror(-r));
                return 1;
        }
        Device on("fd:" + std::to_string(fd), { .interrupts = true, .defer_activate = true });
        Activation a = { &on, 0 };
        pthread_t t;
        if (pthread_create(&t, nullptr, vcpu_thread, &a) != 0 || pthread_join(t, nullptr) != 0 || a.error < 0 ||
            on.failed()) {
                fprintf(stderr, "sandbox-block-bench: activating the sandboxed device failed\n");
                return 1;
        }
        int filters_off = -1, filters_floor = -1, filters_on = -1;
        for (auto [tid, n] : thread_filters("virtio-block", 3))
                (workers_off.count(tid) ? filters_off : workers_before.count(tid) ? filters_floor : filters_on) = n;
        printf("seccomp filters on the worker: off %d, allow-all %d, on %d\n", filters_off, filters_floor, filters_on);
        if (filters_off != 0 || filters_floor != 1 || filters_on != (calibrate ? 0 : 1)) {
                fprintf(stderr, "sandbox-block-bench: the workers do not carry 0, 1 and 1 filters\n");
                return 1;
        }

        const Workload workloads[] = {
                { "64K seq read", 64 * 1024, false, false },
                { "64K seq write", 64 * 1024, true, false },
                { "4K rand read", 4096, false, true },
                { "4K rand write", 4096, true, true },
        };
        std::vector<std::vector<uint64_t>> offs;
        for (const Workload &w : workloads)
                offs.push_back(offsets(w, image, w.req_bytes >= 64 * 1024 ? 16 * image : 2 * image));
        /* Per device (off, floor, on), per workload, per round: nanoseconds. */
        Device *devs[3] = { &off, &floor_dev, &on };
        std::vector<std::vector<double>> times[3] = { std::vector<std::vector<double>>(4), std::vector<std::vector<double>>(4),
                                                  std::vector<std::vector<double>>(4) };
        auto &t_off = times[0], &t_floor = times[1], &t_on = times[2];

        for (const Workload &w : workloads) /* warm-up: page cache, guest pages */
                for (Device *d : devs)
                        d->run(w, offs[&w - workloads]);
        for (int round = 0; round < rounds; round++)
                for (size_t i = 0; i < 4; i++)
                        for (int k = 0; k < 3; k++) {
                                int d = (int) ((round + i + (size_t) k) % 3);
                                times[d][i].push_back(devs[d]->run(workloads[i], offs[i]));
                        }
        if (off.failed() || on.failed() || floor_dev.failed()) {
                fprintf(stderr, "sandbox-block-bench: a device failed\n");
                return 1;
        }

        /* Median over rounds of a's time over b's, for workloads [lo, hi]. */
        auto ratio = [&](const std::vector<std::vector<double>> &a, const std::vector<std::vector<double>> &b, size_t lo,
                         size_t hi, std::vector<double> *all) {
                std::vector<double> v;
                for (int round = 0; round < rounds; round++) {
                        double ta = 0, tb = 0;
                        for (size_t i = lo; i <= hi; i++)
                                ta += a[i][round], tb += b[i][round];
                        v.push_back(ta / tb);
                }
                std::sort(v.begin(), v.end());
                if (all)
                        *all = v;
                return median(v);
        };
        printf("%-14s %12s %12s %12s %8s %8s\n", "workload", "off MB/s", "allow MB/s", "on MB/s", "on/off", "allow/off");
        for (size_t i = 0; i < 4; i++) {
                double mb = (double) offs[i].size() * workloads[i].req_bytes * 1e3; /* bytes/ns to MB/s */
                printf("%-14s %12.0f %12.0f %12.0f %7.3fx %8.3fx\n", workloads[i].name, mb / median(t_off[i]),
                       mb / median(t_floor[i]), mb / median(t_on[i]), ratio(t_off, t_on, i, i, nullptr),
                       ratio(t_off, t_floor, i, i, nullptr));
        }
        bool pass = true;
        for (size_t size = 0; size < 2; size++) {
                std::vector<double> all;
                double m = ratio(t_off, t_on, 2 * size, 2 * size + 1, &all);
                double fl = ratio(t_off, t_floor, 2 * size, 2 * size + 1, nullptr);
                double own = ratio(t_floor, t_on, 2 * size, 2 * size + 1, nullptr);
                const char *verdict = m >= GOAL ? "PASS" : fl < GOAL && own >= GOAL ? "FLOOR" : "FAIL";
                pass = pass && strcmp(verdict, "FAIL") != 0;
                printf("virtio-block %s read+write, sandbox on/off: %.3fx (rounds %.3f-%.3f; goal >= %.2fx); "
                       "an allow-all filter alone: %.3fx, the policy over it: %.3fx %s\n",
                       size == 0 ? "64K sequential" : "4K random", m, all.front(), all.back(), GOAL, fl, own, verdict);
        }
        sandbox_spawner_stop();
        return pass ? 0 : 1;
}
