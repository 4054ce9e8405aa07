/* SPDX-License-Identifier: BSD-3-Clause */
/* Host faults under a guest's disk I/O (tests/faults/README.md), with the
 * block-faults test guest and the VMM in its real sandbox:
 *
 * - the file system under the image fills up: the guest's writes fail with
 *   IOERR (no hang, no dead VMM), every write acknowledged OK is in the
 *   image, and once space is back the failed writes succeed;
 * - the VMM is SIGKILLed while the guest writes and flushes: every batch
 *   whose FLUSH the guest saw acknowledged is in the image, the image lock
 *   goes with the VMM, and a new VMM reads the batches back. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <csignal>
#include <fcntl.h>
#include <sstream>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "tests/integration/vmm-process.h"

namespace {

constexpr int kGuestTimeoutMs = 120000;
constexpr unsigned kChunkSectors = 8; /* tests/guest/block-faults */
constexpr unsigned kChunkBytes = kChunkSectors * 512;

/* The guest's pattern: sector s is 64 little-endian words, word w =
 * seed << 40 | s << 8 | w. */
bool sector_ok(const std::string &img, uint64_t sector, uint64_t seed) {
        if ((sector + 1) * 512 > img.size())
                return false;
        for (unsigned w = 0; w < 64; w++) {
                uint64_t v;
                memcpy(&v, img.data() + sector * 512 + w * 8, 8);
                if (v != (seed << 40 | sector << 8 | w))
                        return false;
        }
        return true;
}

/* Chunks in [first, first + n) that do not hold the pattern. */
unsigned bad_chunks(const std::string &img, uint64_t first, uint64_t n, uint64_t seed) {
        unsigned bad = 0;
        for (uint64_t c = first; c < first + n; c++)
                for (uint64_t s = c * kChunkSectors; s < (c + 1) * kChunkSectors; s++)
                        if (!sector_ok(img, s, seed)) {
                                bad++;
                                break;
                        }
        return bad;
}

std::string make_sparse_image(const std::string &path, off_t size) {
        int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        EXPECT_GE(fd, 0) << path << ": " << strerror(errno);
        EXPECT_EQ(ftruncate(fd, size), 0) << strerror(errno);
        close(fd);
        return path;
}

/* A small tmpfs in a mount namespace of this test process's own (and of the
 * VMMs it starts), so nothing is left mounted on the host whatever happens.
 * Needs CAP_SYS_ADMIN; `why` says why not. */
struct SmallTmpfs {
        std::string dir, why;
        bool mounted = false;

        SmallTmpfs(const std::string &d, const std::string &size) : dir(d) {
                if (unshare(CLONE_NEWNS) < 0) {
                        why = std::string("unshare(CLONE_NEWNS): ") + strerror(errno);
                        return;
                }
                if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ||
                    mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) < 0) {
                        why = std::string("mount tmpfs: ") + strerror(errno);
                        return;
                }
                mounted = true;
        }
        ~SmallTmpfs() {
                if (mounted)
                        umount2(dir.c_str(), MNT_DETACH);
        }
        int resize(const std::string &size) {
                return mount("tmpfs", dir.c_str(), nullptr, MS_REMOUNT, ("size=" + size).c_str()) < 0 ? -errno : 0;
        }
};

struct FillRun {
        std::string verdict;
        uint64_t first, count;
};

/* The guest's "fill-run VERDICT FIRST COUNT" lines. */
std::vector<FillRun> fill_runs(const std::string &out) {
        std::vector<FillRun> runs;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);) {
                std::istringstream words(l);
                std::string tag;
                FillRun r;
                if ((words >> tag >> r.verdict >> r.first >> r.count) && tag == "fill-run")
                        runs.push_back(r);
        }
        return runs;
}

/* The last "flushed B" line's B, -1 if none. */
long last_flushed(const std::string &out) {
        long last = -1;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);) {
                long b;
                if (sscanf(l.c_str(), "flushed %ld", &b) == 1) {
                        EXPECT_EQ(b, last + 1) << "batches are flushed in order";
                        last = b;
                }
        }
        return last;
}

bool lock_free_within(const std::string &path, int timeout_ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
        bool free = false;

        while (fd >= 0 && !free && std::chrono::steady_clock::now() < deadline) {
                free = flock(fd, LOCK_EX | LOCK_NB) == 0;
                if (!free)
                        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (fd >= 0)
                close(fd);
        return free;
}

} // namespace

/* A 1 MiB sparse image on a 260 KiB tmpfs (65 pages, so that one merged
 * pair of writes straddles the limit): about a quarter of the guest's
 * writes fit, the rest hit ENOSPC on the host. */
TEST(FaultsBlock, HostDiskFullGivesIoErrorsAndLosesNoAcknowledgedWrite) {
        SKIP_WITHOUT_KVM();
        TempDir dir;
        SmallTmpfs fs(dir.file(""), "260k");
        if (!fs.mounted)
                GTEST_SKIP() << "needs a private tmpfs: " << fs.why;
        constexpr off_t kImage = 1 << 20;
        constexpr uint64_t kSeed = 0x5a17;
        std::string img = make_sparse_image(fs.dir + "disk.img", kImage);
        std::string sock = dir.file("vmm.sock");

        Process vmm({ vmm_path(), "run", "--block", img + ",id=faults", "--socket", sock, "--debug-exit",
                      "--cmdline", "mode=fill seed=" + std::to_string(kSeed), guest_path("block-faults") });
        ASSERT_TRUE(vmm.wait_for_output("block-faults: disk full, resize me", kGuestTimeoutMs))
                << vmm.out() << vmm.err();

        /* While the disk is full: the guest saw both verdicts, and every
         * chunk acknowledged OK is in the image. */
        std::vector<FillRun> runs = fill_runs(vmm.out());
        std::string image = read_file(img);
        uint64_t ok = 0, ioerr = 0, lost = 0;
        for (const FillRun &r : runs) {
                if (r.verdict == "OK") {
                        ok += r.count;
                        lost += bad_chunks(image, r.first, r.count, kSeed);
                } else if (r.verdict == "IOERR")
                        ioerr += r.count;
                else
                        ADD_FAILURE() << "status " << r.verdict << " for chunks " << r.first << "+" << r.count;
        }
        EXPECT_EQ(ok + ioerr, (uint64_t) kImage / kChunkBytes) << vmm.out();
        EXPECT_GT(ok, 0u) << vmm.out();
        EXPECT_GT(ioerr, 0u) << "no write failed on a full file system\n" << vmm.out();
        EXPECT_EQ(lost, 0u) << "acknowledged chunks missing from the image";
        /* The FLUSH after the failures: OK is only honest because every
         * acknowledged write is there (checked just above). */
        EXPECT_TRUE(vmm.out().find("fill-flush 0\n") != std::string::npos ||
                    vmm.out().find("fill-flush 1\n") != std::string::npos)
                << vmm.out();

        /* Space comes back; disk-resize to the same size is the guest's cue. */
        ASSERT_EQ(fs.resize("4m"), 0);
        RunResult resize = run_vmm({ "disk-resize", sock, "0", std::to_string(kImage) }, 20000);
        EXPECT_EQ(resize.exit_code, 0) << resize.err;

        RunResult r = vmm.wait(kGuestTimeoutMs);
        ASSERT_FALSE(r.timed_out) << r.out;
        EXPECT_EQ(count_guest_passes(r.out), 7u) << r.out << r.err;
        EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err << "\nstdout:\n" << r.out;

        image = read_file(img);
        EXPECT_EQ(image.size(), (size_t) kImage);
        EXPECT_EQ(bad_chunks(image, 0, kImage / kChunkBytes, kSeed), 0u) << "chunks missing after the retry";
}

/* 16 MiB of batches of 16 chunks (64 KiB), a FLUSH after each: the VMM is
 * killed after the guest saw batch 3 flushed, long before the end. The
 * supervisor (the process started) or the jailed VM process under it. */
void kill_mid_stream(bool kill_vm_process) {
        TempDir dir;
        constexpr off_t kImage = 16 << 20;
        constexpr uint64_t kSeed = 0xc0ffe, kBatch = 16;
        std::string img = make_sparse_image(dir.file("disk.img"), kImage);
        std::string cmdline = "mode=stream batch=" + std::to_string(kBatch) + " seed=" + std::to_string(kSeed);

        Process vmm({ vmm_path(), "run", "--block", img, "--debug-exit", "--cmdline", cmdline,
                      guest_path("block-faults") });
        ASSERT_TRUE(vmm.wait_for_output("flushed 3\n", kGuestTimeoutMs)) << vmm.out() << vmm.err();
        if (kill_vm_process) {
                pid_t child = 0;
                std::ifstream children("/proc/" + std::to_string(vmm.pid()) + "/task/" +
                                       std::to_string(vmm.pid()) + "/children");
                ASSERT_TRUE(children >> child) << "no jailed VM process under the VMM";
                ASSERT_EQ(kill(child, SIGKILL), 0) << strerror(errno);
        } else
                vmm.kill(SIGKILL);
        /* Either way the VMM as a whole dies of it (the supervisor dies the
         * way its child did) rather than hang. */
        RunResult r = vmm.wait(10000);
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.signal, SIGKILL) << r.err;
        ASSERT_EQ(r.out.find("stream: end"), std::string::npos) << "the guest finished before the kill";
        long flushed = last_flushed(r.out);
        ASSERT_GE(flushed, 3) << r.out;

        /* The jailed VM process is gone, and its lock on the image with it. */
        ASSERT_TRUE(lock_free_within(img, 10000)) << "the image is still locked after the kill";

        std::string image = read_file(img);
        EXPECT_EQ(image.size(), (size_t) kImage);
        EXPECT_EQ(bad_chunks(image, 0, (uint64_t) (flushed + 1) * kBatch, kSeed), 0u)
                << "flushed chunks missing from the image after the kill (batches 0-" << flushed << ")";

        /* A new VMM on the same image reads them back. */
        RunResult v = run_vmm({ "run", "--block", img, "--debug-exit", "--cmdline",
                                "mode=verify batch=" + std::to_string(kBatch) + " upto=" + std::to_string(flushed) +
                                        " seed=" + std::to_string(kSeed),
                                guest_path("block-faults") },
                              kGuestTimeoutMs);
        ASSERT_FALSE(v.timed_out) << v.out;
        EXPECT_EQ(count_guest_passes(v.out), 1u) << v.out << v.err;
        EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
}

TEST(FaultsBlock, VmmKilledMidStreamKeepsEveryFlushedBatch) {
        SKIP_WITHOUT_KVM();
        kill_mid_stream(false);
}

TEST(FaultsBlock, JailedVmProcessKilledMidStreamKeepsEveryFlushedBatch) {
        SKIP_WITHOUT_KVM();
        kill_mid_stream(true);
}
