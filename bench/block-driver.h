/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The fake guest of the virtio-block benchmarks (block-bench.cpp,
 * sandbox-block-bench.cpp): the tests/virtio harness drives a virtio-block
 * device through the real PCI transport on a memfd, and submits requests
 * the way Linux does: an indirect table (INDIRECT_DESC) with a 16-byte
 * header, the data as 4 KiB segments scattered in guest RAM (every other
 * page; `contiguous` puts them back to back), a status byte; BATCH
 * requests in flight per notification. One descriptor list is reused, as
 * Linux does: no allocation per request on either side. */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sched.h>
#include <string>
#include <time.h>
#include <vector>

#include "vmm/devices/virtio-block.h"
#include "tests/virtio/harness.h"

namespace blockbench {

using harness::Buf;
using harness::PciDriver;
using harness::VirtqDriver;

constexpr uint64_t RING = 0x10000, TABLES = 0x200000, HDRS = 0x100000, STATUS = 0x180000, DATA = 0x1000000;
constexpr unsigned BATCH = 64;
constexpr uint64_t GUEST_MEM = 256 * MiB;
constexpr uint16_t QSIZE = 256;

inline uint64_t now() {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

inline double median(std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
}

struct Workload {
        const char *name;
        uint32_t req_bytes;
        bool write;
        bool random;
};

/* The offsets a run visits, in 512-byte sectors. */
inline std::vector<uint64_t> offsets(const Workload &w, uint64_t image, uint64_t total) {
        std::vector<uint64_t> v;
        std::mt19937_64 rng(42);
        uint64_t n = total / w.req_bytes, slots = image / w.req_bytes;
        for (uint64_t i = 0; i < n; i++)
                v.push_back(((w.random ? rng() % slots : i % slots) * w.req_bytes) / 512);
        return v;
}

enum class Path {
        DIRECT, /* the caller runs queue_notify itself: no worker */
        WORKER, /* kick through the notify register, the worker serves */
};

struct DeviceOptions {
        Path path = Path::WORKER;
        bool contiguous = false;
        /* MSI-X vector 0 for the queue, and used_event set after each
         * batch as Linux's driver does: the worker signals one irqfd (an
         * eventfd write) per batch, as under KVM. */
        bool interrupts = false;
        /* Leave DRIVER_OK to the caller (activate(), on the thread whose
         * sandbox role the worker's creator should have). */
        bool defer_activate = false;
};

class Device {
public:
        Device(const std::string &arg, DeviceOptions o)
            : d_(&virtio_block_ops, arg.c_str(), GUEST_MEM, true), o_(o) {
                features_ = virtio_device_offered(d_.device());
                if (d_.error() || !d_.negotiate(features_)) {
                        fprintf(stderr, "block-bench: cannot set up the device: %s\n", strerror(-d_.error()));
                        exit(1);
                }
                if (o_.interrupts) {
                        d_.enable_msix();
                        d_.program_vector(0, 0xfee00000, 0x40);
                        d_.set_vector_masked(0, false);
                }
                d_.setup_queue(0, q_, o_.interrupts ? 0 : VIRTIO_MSI_NO_VECTOR);
                if (!o_.defer_activate)
                        activate();
        }

        void activate() {
                if (o_.path == Path::WORKER) {
                        d_.driver_ok();
                        return;
                }
                /* Activated by hand, no worker: queue_notify runs here. */
                vq_ = virtio_device_queue(d_.device(), 0);
                if (virtio_block_ops.activate(virtio_device_state(d_.device()), vq_, features_) < 0)
                        exit(1);
        }

        bool failed() { return (d_.status() & VIRTIO_STATUS_NEEDS_RESET) != 0; }

        /* Nanoseconds to serve every request of offs. */
        double run(const Workload &w, const std::vector<uint64_t> &offs) {
                unsigned segs = w.req_bytes / 4096;
                /* Page stride of the data segments: 2 leaves a gap after each. */
                uint64_t stride = o_.contiguous ? 4096 : 8192;
                std::vector<Buf> bufs;
                bufs.reserve(segs + 2);
                uint64_t t0 = now();

                for (size_t i = 0; i < offs.size(); i += BATCH) {
                        unsigned n = (unsigned) std::min<size_t>(BATCH, offs.size() - i);
                        for (unsigned k = 0; k < n; k++) {
                                uint32_t hdr[4] = { w.write ? 1u : 0u, 0, (uint32_t) offs[i + k],
                                                    (uint32_t) (offs[i + k] >> 32) };
                                uint64_t h = HDRS + 16 * (uint64_t) k;
                                if (guest_write(d_.mem(), h, hdr, sizeof(hdr)) < 0)
                                        abort();
                                bufs.clear();
                                bufs.push_back({ h, 16, false });
                                for (unsigned sgi = 0; sgi < segs; sgi++)
                                        bufs.push_back({ DATA + ((uint64_t) k * segs + sgi) * stride, 4096, !w.write });
                                bufs.push_back({ STATUS + k, 1, true });
                                q_.add_indirect(TABLES + (uint64_t) k * 4096, bufs);
                        }
                        used_ = (uint16_t) (used_ + n);
                        if (o_.path == Path::WORKER) {
                                d_.kick(0);
                                /* Spin, but leave the core to the worker on a busy host. */
                                for (unsigned spins = 0; q_.used_idx() != used_; spins++)
                                        if (spins > 1000)
                                                sched_yield();
                                        else
                                                __builtin_ia32_pause();
                                /* Linux's virtqueue_enable_cb after it took
                                 * the used entries: interrupt on the next one. */
                                if (o_.interrupts)
                                        q_.set_used_event(used_);
                        } else {
                                virtio_block_ops.queue_notify(virtio_device_state(d_.device()), vq_);
                                if (q_.used_idx() != used_)
                                        abort();
                        }
                }
                double t = (double) (now() - t0);
                uint8_t st;
                if (guest_read(d_.mem(), STATUS, &st, 1) < 0 || st != 0) {
                        fprintf(stderr, "block-bench: request failed, status %u\n", st);
                        exit(1);
                }
                return t;
        }

private:
        PciDriver d_;
        DeviceOptions o_;
        uint64_t features_ = 0;
        VirtqDriver q_{ d_.mem(), RING, QSIZE };
        VirtQueue *vq_ = nullptr;
        uint16_t used_ = 0;
};

} // namespace blockbench
