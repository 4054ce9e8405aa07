/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block when the host's file calls fail (tests/faults/README.md),
 * through the virtio harness, without KVM. This program defines pwritev
 * and fdatasync itself; they stand in for libc's (the executable's
 * definitions win) and fail on demand, as a full disk or a failed writeback
 * would make them fail, and otherwise call libc's. */
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <string>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

#include "vmm/devices/virtio-block.h"
#include "tests/virtio/harness.h"

using harness::Buf;
using harness::PciDriver;
using harness::VirtqDriver;

namespace {

/* Faults armed by a test, consumed by the device's worker thread. */
std::atomic<int> fdatasync_failures{ 0 };      /* calls left to fail with EIO */
std::atomic<int> pwritev_enospc_after{ -1 };   /* bytes still accepted, -1: no fault */
std::atomic<int> pwritev_short{ 0 };           /* calls left to write only 1000 bytes */

template <typename F> F real(const char *name) {
        return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

/* Writes at most pwritev_enospc_after more bytes (a short write when the
 * request is longer), then fails with ENOSPC, as a full file system does. */
ssize_t faulty_pwritev(int fd, const struct iovec *iov, int n, off_t off) {
        static auto next = real<ssize_t (*)(int, const struct iovec *, int, off_t)>("pwritev64");
        int left = pwritev_enospc_after.load();

        if (left < 0 && pwritev_short.load() > 0) {
                pwritev_short--;
                left = 1000;
        } else if (left < 0)
                return next(fd, iov, n, off);
        if (left == 0) {
                errno = ENOSPC;
                return -1;
        }
        std::vector<struct iovec> cut;
        size_t total = 0;
        for (int i = 0; i < n && total < (size_t) left; i++) {
                size_t len = std::min(iov[i].iov_len, (size_t) left - total);
                cut.push_back({ iov[i].iov_base, len });
                total += len;
        }
        ssize_t k = next(fd, cut.data(), (int) cut.size(), off);
        if (k > 0 && pwritev_enospc_after.load() >= 0)
                pwritev_enospc_after -= (int) k;
        return k;
}

} // namespace

/* Linux reports a writeback error to each open file once (errseq_t): the
 * next fdatasync() succeeds although the data it was about is gone. The
 * stand-in does the same: fdatasync_failures calls fail, later ones pass. */
extern "C" int fdatasync(int fd) {
        static auto next = real<int (*)(int)>("fdatasync");

        if (fdatasync_failures.load() > 0) {
                fdatasync_failures--;
                errno = EIO;
                return -1;
        }
        return next(fd);
}

/* With _FILE_OFFSET_BITS=64 glibc's header names this pwritev64, the
 * symbol the device's calls go to. */
extern "C" ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off) {
        return faulty_pwritev(fd, iov, n, off);
}

namespace {

constexpr uint32_t T_IN = 0, T_OUT = 1, T_FLUSH = 4;
constexpr uint8_t S_OK = 0, S_IOERR = 1;
constexpr unsigned F_FLUSH = 9;
constexpr uint64_t HDR = 0x100000, STATUS = 0x101000, DATA = 0x200000;
constexpr uint64_t kImageSize = 1 * MiB;

constexpr uint64_t bit(unsigned b) { return UINT64_C(1) << b; }
constexpr uint64_t kBase = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC);

struct Image {
        Image() {
                char tmpl[] = "/tmp/test-faults-block-io-XXXXXX";
                int fd = mkstemp(tmpl);
                path = tmpl;
                EXPECT_GE(fd, 0);
                EXPECT_EQ(ftruncate(fd, kImageSize), 0);
                close(fd);
        }
        ~Image() { unlink(path.c_str()); }
        std::vector<uint8_t> read(uint64_t off, size_t len) const {
                std::vector<uint8_t> v(len);
                int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
                EXPECT_EQ(pread(fd, v.data(), len, (off_t) off), (ssize_t) len);
                close(fd);
                return v;
        }
        std::string path;
};

struct Req {
        uint32_t type;
        uint64_t sector;
        uint32_t len;   /* data bytes at DATA + 0x10000 * i */
};

/* A block device whose requests are queued together and served with one
 * kick (so consecutive writes are merged into one pwritev). */
class BlockFaults : public ::testing::Test {
protected:
        explicit BlockFaults(uint64_t features = kBase | bit(F_FLUSH))
            : d_(&virtio_block_ops, img_.path.c_str(), 16 * MiB, true), features_(features) {}

        void SetUp() override {
                fdatasync_failures = 0;
                pwritev_enospc_after = -1;
                pwritev_short = 0;
                ASSERT_EQ(d_.error(), 0);
                ASSERT_TRUE(d_.negotiate(features_ & virtio_device_offered(d_.device())));
                d_.setup_queue(0, q_, 0);
                d_.enable_msix();
                d_.program_vector(0, 0xfee00000, 0x40);
                d_.driver_ok();
        }
        void TearDown() override {
                fdatasync_failures = 0;
                pwritev_enospc_after = -1;
        }

        std::vector<uint8_t> run(const std::vector<Req> &reqs) {
                for (size_t i = 0; i < reqs.size(); i++) {
                        struct {
                                uint32_t type, ioprio;
                                uint64_t sector;
                        } h = { reqs[i].type, 0, reqs[i].sector };
                        uint8_t poison = 0xee;
                        EXPECT_EQ(guest_write(d_.mem(), HDR + 32 * i, &h, sizeof(h)), 0);
                        EXPECT_EQ(guest_write(d_.mem(), STATUS + i, &poison, 1), 0);
                        std::vector<Buf> bufs = { { HDR + 32 * i, 16, false } };
                        if (reqs[i].len)
                                bufs.push_back({ DATA + 0x10000 * i, reqs[i].len, reqs[i].type == T_IN });
                        bufs.push_back({ STATUS + i, 1, true });
                        q_.add_chain(bufs);
                }
                d_.kick(0);
                used_ = (uint16_t) (used_ + reqs.size());
                EXPECT_TRUE(d_.wait_used(q_, used_));
                std::vector<uint8_t> st(reqs.size());
                EXPECT_EQ(guest_read(d_.mem(), STATUS, st.data(), st.size()), 0);
                return st;
        }
        /* Request i's data buffer filled with byte v. */
        void fill(size_t i, uint8_t v, size_t len) {
                std::vector<uint8_t> b(len, v);
                ASSERT_EQ(guest_write(d_.mem(), DATA + 0x10000 * i, b.data(), len), 0);
        }

        Image img_;
        PciDriver d_;
        uint64_t features_;
        VirtqDriver q_{ d_.mem(), 0x10000, 64 };
        uint16_t used_ = 0;
};

class WriteThroughFaults : public BlockFaults {
protected:
        WriteThroughFaults() : BlockFaults(kBase) {}
};

} // namespace

/* The disk fills up in the middle of a merged write: both requests fail
 * (neither is acknowledged), and a FLUSH afterwards is honest about what
 * was acknowledged (nothing lost: OK). */
TEST_F(BlockFaults, enospc_in_a_merged_write_fails_every_request_of_it) {
        fill(0, 0xa1, 4096);
        fill(1, 0xb2, 4096);
        pwritev_enospc_after = 4096 + 512;
        EXPECT_EQ(run({ { T_OUT, 0, 4096 }, { T_OUT, 8, 4096 } }), std::vector<uint8_t>({ S_IOERR, S_IOERR }));
        EXPECT_EQ(run({ { T_FLUSH, 0, 0 } }), std::vector<uint8_t>({ S_OK }));
}

/* A write the kernel takes only in part (1000 bytes, mid-sector, mid-buffer)
 * is resumed where it stopped and acknowledged whole. */
TEST_F(BlockFaults, short_writes_are_resumed_and_acknowledged_whole) {
        fill(0, 0x3c, 8192);
        pwritev_short = 3;
        EXPECT_EQ(run({ { T_OUT, 16, 8192 } }), std::vector<uint8_t>({ S_OK }));
        EXPECT_EQ(pwritev_short.load(), 0);
        EXPECT_EQ(img_.read(16 * 512, 8192), std::vector<uint8_t>(8192, 0x3c));
}

TEST_F(BlockFaults, enospc_then_space_back_the_rewrite_succeeds) {
        fill(0, 0x77, 4096);
        pwritev_enospc_after = 0;
        EXPECT_EQ(run({ { T_OUT, 32, 4096 } }), std::vector<uint8_t>({ S_IOERR }));
        pwritev_enospc_after = -1;
        EXPECT_EQ(run({ { T_OUT, 32, 4096 } }), std::vector<uint8_t>({ S_OK }));
        EXPECT_EQ(run({ { T_FLUSH, 0, 0 } }), std::vector<uint8_t>({ S_OK }));
        EXPECT_EQ(img_.read(32 * 512, 4096), std::vector<uint8_t>(4096, 0x77));
}

/* After a failed fdatasync() the page cache may hold acknowledged writes
 * the disk never got, and the kernel will not say so again: every later
 * FLUSH must fail too (QEMU's file-posix does the same), or the guest
 * would believe lost data stable. */
TEST_F(BlockFaults, flush_failure_is_reported_and_every_later_flush_fails_too) {
        fill(0, 0x5a, 4096);
        ASSERT_EQ(run({ { T_OUT, 0, 4096 } }), std::vector<uint8_t>({ S_OK }));
        fdatasync_failures = 1;
        EXPECT_EQ(run({ { T_FLUSH, 0, 0 } }), std::vector<uint8_t>({ S_IOERR }));
        EXPECT_EQ(fdatasync_failures.load(), 0) << "the device did not call fdatasync()";
        EXPECT_EQ(run({ { T_FLUSH, 0, 0 } }), std::vector<uint8_t>({ S_IOERR }))
                << "a FLUSH after a failed one reported OK: the data of the first may be lost";
        fill(1, 0x6b, 4096);
        EXPECT_EQ(run({ { T_OUT, 8, 4096 }, { T_FLUSH, 0, 0 } })[1], S_IOERR);
        /* Reads still work: the guest can save what it can. */
        EXPECT_EQ(run({ { T_IN, 0, 4096 } }), std::vector<uint8_t>({ S_OK }));
}

/* Without FLUSH negotiated each write waits for fdatasync(): its failure
 * is the write's, and the writes after it are not called stable either. */
TEST_F(WriteThroughFaults, fdatasync_failure_fails_the_write_and_later_ones) {
        fill(0, 0x11, 4096);
        fdatasync_failures = 1;
        EXPECT_EQ(run({ { T_OUT, 0, 4096 } }), std::vector<uint8_t>({ S_IOERR }));
        EXPECT_EQ(run({ { T_OUT, 8, 4096 } }), std::vector<uint8_t>({ S_IOERR }));
}
