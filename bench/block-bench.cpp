/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block's device model against raw pread/pwrite on the same image,
 * in the same run (issue 3: goal >= 0.9x raw for 64 KiB sequential).
 *
 * Two ways through the device, both with the tests/virtio harness playing
 * the guest:
 *   direct  the bench thread calls the device's queue_notify itself after
 *           publishing a batch: the device model and the walker, nothing else;
 *   worker  the real path minus KVM: a kick through the PCI notify register,
 *           the device's worker thread wakes on the eventfd, serves the
 *           batch, the bench polls the used ring.
 * Requests look like Linux's (the fake driver: block-driver.h): an
 * indirect table with a 16-byte header, the data as 4 KiB segments
 * scattered in guest RAM (every other page; LAYOUT "contiguous" puts them
 * back to back), a status byte; 64 requests in flight per notification.
 * The raw peer moves the same bytes with one pread/pwrite per request,
 * cycling through as many buffers as the device has requests in flight, in
 * the same kind of memory as guest RAM (a shared memfd mapping). Each figure is the median of ROUNDS interleaved runs; the
 * image sits in the page cache (warmed first), so what is compared is the
 * per-request cost, which is what the device adds. The device merges
 * requests for consecutive sectors into one call (vmm/devices/virtio-block.c),
 * so the sequential workloads may beat one pread/pwrite per request; the
 * 64 KiB random ones, which almost never merge, show the cost of a request alone.
 * The goal is judged on 64 KiB sequential, as issue 3 states it.
 *
 * Usage: block-bench [DIR [MIB [ROUNDS [LAYOUT]]]]   (default /var/tmp 64 5 scattered)
 * Prints one line per workload and a summary line ending in PASS or FAIL
 * for the 64 KiB goal. */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "bench/block-driver.h"

using namespace blockbench;

namespace {

double run_raw(int fd, const Workload &w, const std::vector<uint64_t> &offs, uint8_t *buf) {
        uint64_t t0 = now();
        unsigned i = 0;
        for (uint64_t s : offs) {
                /* The same footprint as the device's batch of guest buffers:
                 * not one cache-hot buffer. */
                uint8_t *p = buf + (uint64_t) (i++ % BATCH) * w.req_bytes;
                ssize_t k = w.write ? pwrite(fd, p, w.req_bytes, (off_t) (s * 512))
                                    : pread(fd, p, w.req_bytes, (off_t) (s * 512));
                if (k != (ssize_t) w.req_bytes)
                        abort();
        }
        return (double) (now() - t0);
}

} // namespace

int main(int argc, char **argv) {
        std::string dir = argc > 1 ? argv[1] : "/var/tmp";
        uint64_t image = (argc > 2 ? strtoull(argv[2], nullptr, 10) : 64) * MiB;
        int rounds = argc > 3 ? atoi(argv[3]) : 5;
        std::string layout = argc > 4 ? argv[4] : "scattered";
        bool contiguous = layout == "contiguous";
        std::string path = dir + "/block-bench-XXXXXX";
        std::vector<char> tmpl(path.begin(), path.end());
        tmpl.push_back('\0');

        int fd = mkstemp(tmpl.data());
        if (fd < 0) {
                fprintf(stderr, "block-bench: cannot create an image in %s: %m\n", dir.c_str());
                return 1;
        }
        path = tmpl.data();
        /* The raw peer's buffers are the same kind of memory as guest RAM
         * (vmm/memory.c: a shared memfd mapping, 4 KiB pages here): a
         * transparent-huge-page heap buffer would win on TLB misses alone. */
        size_t buf_size = BATCH * 64 * KiB;
        int memfd = memfd_create("block-bench-raw", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, (off_t) buf_size) < 0)
                return 1;
        auto *raw_buf = (uint8_t *) mmap(nullptr, buf_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (raw_buf == MAP_FAILED)
                return 1;
        memset(raw_buf, 0xa5, buf_size);
        for (uint64_t off = 0; off < image; off += buf_size)
                if (pwrite(fd, raw_buf, buf_size, (off_t) off) != (ssize_t) buf_size)
                        return 1;
        fsync(fd);

        const Workload workloads[] = {
                { "64K seq read", 64 * 1024, false, false },
                { "64K seq write", 64 * 1024, true, false },
                { "64K rand read", 64 * 1024, false, true },
                { "64K rand write", 64 * 1024, true, true },
                { "4K rand read", 4096, false, true },
                { "4K rand write", 4096, true, true },
        };
        /* The device locks the image: the raw peer reads it through its own
         * fd (flock does not stop pread), each device gets a dup. */
        if (!contiguous && layout != "scattered") {
                fprintf(stderr, "block-bench: LAYOUT is scattered or contiguous\n");
                return 1;
        }
        Device direct("fd:" + std::to_string(fd), { .path = Path::DIRECT, .contiguous = contiguous });
        double worst_64k = 1e9;

        printf("%-14s %12s %12s %12s %8s %8s\n", "workload", "raw MB/s", "direct MB/s", "worker MB/s", "direct",
               "worker");
        for (const Workload &w : workloads) {
                uint64_t total = w.req_bytes >= 64 * 1024 ? 8 * image : 64 * MiB;
                auto offs = offsets(w, image, total);
                std::vector<double> raw, dev;
                for (int r = 0; r < rounds; r++) {
                        raw.push_back(run_raw(fd, w, offs, raw_buf));
                        dev.push_back(direct.run(w, offs));
                }
                double mraw = median(raw), mdev = median(dev);
                double mb = (double) offs.size() * w.req_bytes / 1e6;
                printf("%-14s %12.0f %12.0f %12s %7.2fx %8s\n", w.name, mb / (mraw / 1e9), mb / (mdev / 1e9), "",
                       mraw / mdev, "");
                if (w.req_bytes >= 64 * 1024 && !w.random)
                        worst_64k = std::min(worst_64k, mraw / mdev);
        }

        /* The worker path: a separate device on the same open file (the
         * image lock is per open file, so a dup shares it). */
        {
                Device worker("fd:" + std::to_string(fd), { .path = Path::WORKER, .contiguous = contiguous });
                for (const Workload &w : workloads) {
                        uint64_t total = w.req_bytes >= 64 * 1024 ? 8 * image : 64 * MiB;
                        auto offs = offsets(w, image, total);
                        std::vector<double> raw, wrk;
                        for (int r = 0; r < rounds; r++) {
                                raw.push_back(run_raw(fd, w, offs, raw_buf));
                                wrk.push_back(worker.run(w, offs));
                        }
                        double mraw = median(raw), mw = median(wrk);
                        double mb = (double) offs.size() * w.req_bytes / 1e6;
                        printf("%-14s %12.0f %12s %12.0f %8s %7.2fx\n", w.name, mb / (mraw / 1e9), "",
                               mb / (mw / 1e9), "", mraw / mw);
                        if (w.req_bytes >= 64 * 1024 && !w.random)
                                worst_64k = std::min(worst_64k, mraw / mw);
                }
        }
        unlink(path.c_str());
        close(fd);

        bool pass = worst_64k >= 0.9;
        printf("block 64K sequential, %s segments: worst device/raw %.2fx (goal >= 0.90x) %s\n", layout.c_str(), worst_64k, pass ? "PASS" : "FAIL");
        return pass ? 0 : 1;
}
