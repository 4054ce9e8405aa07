/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost-user front-end (vmm/devices/vhost-user.c) against this
 * project's own back-end process, majordome-test-rng-backend
 * (tests/vhost-user/), driven through the real PCI transport; and against
 * that back-end misbehaving in each way the front-end must survive. */
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "vmm/devices/device-process.h"
#include "tests/virtio/harness.h"
#include "majordome-features.h"
#include "common/vhost-user.h"

extern "C" const VirtioDeviceOps virtio_vhost_user_ops;
extern "C" const VirtioDeviceOps virtio_rng_ops;

using harness::BASE_FEATURES;
using harness::PciDriver;
using harness::VirtqDriver;

namespace {

const char *backend_path() {
        const char *p = getenv("MAJORDOME_TEST_RNG_BACKEND");
        return p && p[0] ? p : RNG_BACKEND_PATH;
}

/* One back-end process on one end of a socketpair; the other end is
 * sock. Reaped (killed if it will not go) at the end. */
class Backend {
public:
        explicit Backend(const char *mode) {
                int sv[2];

                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        abort();
                std::string path = backend_path(), fd = std::to_string(sv[1]);
                std::vector<char *> argv = { path.data(), (char *) "--fd", fd.data(), (char *) "--misbehave",
                                             (char *) mode, nullptr };
                pid_ = fork();
                if (pid_ < 0)
                        abort();
                if (pid_ == 0) {
                        /* Only its end crosses exec. */
                        if (fcntl(sv[1], F_SETFD, 0) < 0)
                                _exit(127);
                        execv(argv[0], argv.data());
                        _exit(127);
                }
                close(sv[1]);
                sock_ = sv[0];
        }
        ~Backend() {
                if (sock_ >= 0)
                        close(sock_);
                /* It ends when its socket closes; one that hangs does not. */
                for (int i = 0; i < 200; i++) {
                        if (waitpid(pid_, nullptr, WNOHANG) == pid_)
                                return;
                        usleep(10000);
                }
                kill(pid_, SIGKILL);
                waitpid(pid_, nullptr, 0);
        }
        Backend(const Backend &) = delete;
        Backend &operator=(const Backend &) = delete;

        /* What `--vhost-user rng,socket=...` parses to: the descriptor
         * stays ours, the device duplicates it. */
        VmmDevice config() const {
                VmmDevice c{};
                c.kind = VMM_DEVICE_VHOST_USER;
                c.vhost_user.type = VMM_VHOST_USER_RNG;
                c.vhost_user.fd = sock_;
                return c;
        }

private:
        pid_t pid_ = -1;
        int sock_ = -1;
};

bool all_zero(GuestMemory *mem, uint64_t gpa, size_t len) {
        std::vector<uint8_t> v(len);
        if (guest_read(mem, gpa, v.data(), len) < 0)
                return false;
        for (uint8_t b : v)
                if (b)
                        return false;
        return true;
}

/* §3.1.1 with queue 0 on MSI-X vector 0, unmasked. */
void bring_up(PciDriver &d, const VirtqDriver &q) {
        ASSERT_TRUE(d.negotiate(BASE_FEATURES));
        d.setup_queue(0, q, 0);
        d.enable_msix();
        d.program_vector(0, 0xfee00000, 0x40);
        d.set_vector_masked(0, false);
        d.driver_ok();
        ASSERT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET) << virtio_device_error(d.device());
}

/* A 64-byte and a 4 KiB writable buffer, filled by the back-end. */
void fill_two_buffers(PciDriver &d, VirtqDriver &q, uint16_t used_before) {
        uint64_t small = 0x100000, big = 0x200000;

        ASSERT_EQ(guest_zero(d.mem(), small, 64), 0);
        ASSERT_EQ(guest_zero(d.mem(), big, 4096), 0);
        uint16_t h1 = q.add_chain({ { small, 64, true } });
        uint16_t h2 = q.add_chain({ { big, 4096, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_used(q, (uint16_t) (used_before + 2), 5000));
        EXPECT_TRUE(d.wait_vector(0, 2000));
        EXPECT_EQ(q.used(used_before).id, h1);
        EXPECT_EQ(q.used(used_before).len, 64u);
        EXPECT_EQ(q.used((uint16_t) (used_before + 1)).id, h2);
        EXPECT_EQ(q.used((uint16_t) (used_before + 1)).len, 4096u);
        EXPECT_FALSE(all_zero(d.mem(), small, 64));
        EXPECT_FALSE(all_zero(d.mem(), big, 4096));
}

unsigned count_fds() {
        unsigned n = 0;
        DIR *d = opendir("/proc/self/fd");

        if (!d)
                return 0;
        while (struct dirent *e = readdir(d))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

TEST(VhostUser, FillsBuffersThroughTheBackend) {
        Backend be("none");
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        /* §4.1.2: 0x1040 + the back-end's type, rng's 4. */
        EXPECT_EQ(d.config_read(PCI_DEVICE_ID, 2), 0x1044u);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up(d, q);
        fill_two_buffers(d, q, 0);
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
}

/* With MSI-X on and a vector for the queue, the back-end's call fd is the
 * vector's eventfd (the irqfd: no VMM thread in the way); without MSI-X,
 * the device's own call eventfd, which its worker turns into INTx. */
TEST(VhostUser, CallFdIsTheVectorIrqfdWithMsixAndTheWorkersWithout) {
        Backend be("none");
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up(d, q);
        EXPECT_EQ(virtio_device_call_fd(d.device(), 0), msix_vector_fd(&d.transport()->msix, 0));

        Backend be2("none");
        PciDriver intx(&virtio_vhost_user_ops, be2.config());
        ASSERT_EQ(intx.error(), 0);
        VirtqDriver q2{ intx.mem(), 0x10000, 64 };
        ASSERT_TRUE(intx.negotiate(BASE_FEATURES));
        intx.setup_queue(0, q2, 0);
        intx.driver_ok();
        int fd = virtio_device_call_fd(intx.device(), 0);
        EXPECT_GE(fd, 0);
        EXPECT_NE(fd, msix_vector_fd(&intx.transport()->msix, 0));
}

TEST(VhostUser, ResetStopsTheRingsAndTheDeviceWorksAfter) {
        Backend be("none");
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up(d, q);
        fill_two_buffers(d, q, 0);

        /* §2.4: status 0; the worker stops the back-end's rings
         * (GET_VRING_BASE) before the write returns. */
        d.common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        EXPECT_EQ(d.status(), 0);

        /* A fresh driver: new rings elsewhere, everything from the start. */
        VirtqDriver q2{ d.mem(), 0x40000, 32 };
        bring_up(d, q2);
        fill_two_buffers(d, q2, 0);
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
}

/* Every byte of a used buffer is v (count-resets fills with 1 + resets). */
bool all_bytes(GuestMemory *mem, uint64_t gpa, size_t len, uint8_t v) {
        std::vector<uint8_t> b(len);
        return guest_read(mem, gpa, b.data(), len) >= 0 && std::all_of(b.begin(), b.end(), [v](uint8_t x) { return x == v; });
}

/* A back-end that offers RESET_DEVICE gets it once per reset, after
 * GET_VRING_BASE stopped its ring (else it exits, and the device breaks),
 * and before the driver starts again. */
TEST(VhostUser, ResetSendsResetDeviceAfterTheRingsStop) {
        Backend be("count-resets");
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up(d, q);
        fill_two_buffers(d, q, 0);
        EXPECT_TRUE(all_bytes(d.mem(), 0x200000, 4096, 1));

        for (uint8_t n = 1; n <= 2; n++) {
                d.common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
                EXPECT_EQ(d.status(), 0);
                VirtqDriver q2{ d.mem(), n == 1 ? 0x40000u : 0x60000u, 32 };
                bring_up(d, q2);
                fill_two_buffers(d, q2, 0);
                EXPECT_TRUE(all_bytes(d.mem(), 0x100000, 64, (uint8_t) (1 + n)));
                EXPECT_TRUE(all_bytes(d.mem(), 0x200000, 4096, (uint8_t) (1 + n)));
        }
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET) << virtio_device_error(d.device());
}

void expect_create_fails(const char *mode) {
        Backend be(mode);
        PciDriver d(&virtio_vhost_user_ops, be.config());
        EXPECT_LT(d.error(), 0) << mode;
}

TEST(VhostUser, BackendOversizedReplyFailsCreate) {
        expect_create_fails("oversized");
}

TEST(VhostUser, BackendTruncatedReplyFailsCreate) {
        expect_create_fails("truncated");
}

TEST(VhostUser, BackendWrongReplyTypeFailsCreate) {
        expect_create_fails("wrong-reply");
}

TEST(VhostUser, BackendTooManyFdsFailsCreate) {
        expect_create_fails("too-many-fds");
}

TEST(VhostUser, BackendDiesInNegotiationFailsCreate) {
        expect_create_fails("die-in-negotiation");
}

TEST(VhostUser, BackendThatNeverAnswersTimesOut) {
        auto start = std::chrono::steady_clock::now();
        expect_create_fails("hang");
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        /* The front-end waits 5 s for an answer, then gives up. */
        EXPECT_GE(took.count(), 4500);
        EXPECT_LT(took.count(), 15000);
}

TEST(VhostUser, CreateFailuresLeakNoFds) {
        /* Warm up what a first build opens for good (logging, ...). */
        expect_create_fails("wrong-reply");
        unsigned before = count_fds();
        for (const char *mode : { "oversized", "truncated", "wrong-reply", "too-many-fds", "die-in-negotiation" })
                expect_create_fails(mode);
        EXPECT_EQ(count_fds(), before);
}

TEST(VhostUser, BackendDyingWhileInUseMarksNeedsResetAndOtherDevicesGoOn) {
        Backend be("die-after-start");
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VmmDevice rng_config{};
        rng_config.kind = VMM_DEVICE_RNG;
        /* An in-process rng on the same guest RAM (destroyed first). */
        PciDriver other(&virtio_rng_ops, rng_config, d.mem());
        ASSERT_EQ(other.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        VirtqDriver oq{ d.mem(), 0x300000, 16 };
        bring_up(d, q);
        bring_up(other, oq);

        q.add_chain({ { 0x100000, 64, true } });
        d.kick(0);
        ASSERT_TRUE(d.wait_status(VIRTIO_STATUS_NEEDS_RESET, 5000));
        const char *why = virtio_device_error(d.device());
        ASSERT_NE(why, nullptr);
        EXPECT_NE(strstr(why, "hung up"), nullptr) << why;

        ASSERT_EQ(guest_zero(d.mem(), 0x400000, 64), 0);
        oq.add_chain({ { 0x400000, 64, true } });
        other.kick(0);
        ASSERT_TRUE(other.wait_used(oq, 1));
        EXPECT_EQ(oq.used(0).len, 64u);
        EXPECT_FALSE(all_zero(d.mem(), 0x400000, 64));
        EXPECT_FALSE(other.status() & VIRTIO_STATUS_NEEDS_RESET);
}

} // namespace

/* ---- shared memory: SHMEM_MAP / SHMEM_UNMAP from a GPU-shaped back-end ---- */

namespace {

/* A virtio-gpu-shaped back-end in a thread of this test, speaking the
 * protocol by hand through the codec: it answers what the front-end asks
 * (two queues, a 16-byte configuration, the request channel), and the test
 * sends back-end requests on that channel. */
class ScriptedGpuBackend {
public:
        ScriptedGpuBackend() {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        abort();
                front_ = sv[0];
                back_ = sv[1];
                thread_ = std::thread([this] { serve(); });
        }
        ~ScriptedGpuBackend() {
                shutdown(back_, SHUT_RDWR);
                thread_.join();
                close(front_);
                close(back_);
                if (req_ >= 0)
                        close(req_);
        }
        VmmDevice config() const {
                VmmDevice c{};
                c.kind = VMM_DEVICE_VHOST_USER;
                c.vhost_user.type = VMM_VHOST_USER_GPU;
                c.vhost_user.fd = front_;
                return c;
        }
        /* A back-end request without payload or reply (STOP_VM). */
        bool notify(uint32_t type) {
                return req_ >= 0 && vhost_user_send(req_, type, 0, nullptr, 0, nullptr, 0) == 0;
        }
        /* A back-end request with need-reply; the front-end's u64 answer,
         * or -1 when none came (the channel went away). */
        int64_t request(uint32_t type, uint8_t shmid, uint64_t fd_offset, uint64_t offset, uint64_t len,
                        uint64_t flags, int fd, size_t payload_size = VHOST_USER_SHMEM_MAP_SIZE) {
                uint8_t p[VHOST_USER_SHMEM_MAP_SIZE] = {};
                p[0] = shmid;
                for (int i = 0; i < 8; i++) {
                        p[8 + i] = (uint8_t) (fd_offset >> (8 * i));
                        p[16 + i] = (uint8_t) (offset >> (8 * i));
                        p[24 + i] = (uint8_t) (len >> (8 * i));
                        p[32 + i] = (uint8_t) (flags >> (8 * i));
                }
                if (req_ < 0 || vhost_user_send(req_, type, VHOST_USER_FLAG_NEED_REPLY, p, (uint32_t) payload_size,
                                                fd >= 0 ? &fd : nullptr, fd >= 0 ? 1 : 0) < 0)
                        return -1;
                VhostUserMsg m;
                size_t n = 0;
                if (vhost_user_recv(req_, 2000, &m, nullptr, 0, &n) < 0 || m.size != 8)
                        return -1;
                uint64_t v = 0;
                for (int i = 0; i < 8; i++)
                        v |= (uint64_t) m.payload[i] << (8 * i);
                return (int64_t) v;
        }

private:
        void reply(const VhostUserMsg &m, const void *p, uint32_t size) {
                (void) vhost_user_send(back_, m.request, VHOST_USER_FLAG_REPLY, p, size, nullptr, 0);
        }
        void reply_u64(const VhostUserMsg &m, uint64_t v) {
                uint8_t p[8];
                for (int i = 0; i < 8; i++)
                        p[i] = (uint8_t) (v >> (8 * i));
                reply(m, p, 8);
        }
        void serve() {
                for (;;) {
                        VhostUserMsg m;
                        int fds[VHOST_USER_FDS_MAX];
                        size_t n = 0;
                        if (vhost_user_recv(back_, -1, &m, fds, VHOST_USER_FDS_MAX, &n) < 0)
                                return;
                        bool replied = true;
                        switch (m.request) {
                        case VHOST_USER_GET_FEATURES:
                                reply_u64(m, UINT64_C(1) << VIRTIO_F_VERSION_1 |
                                                     UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES);
                                break;
                        case VHOST_USER_GET_PROTOCOL_FEATURES:
                                reply_u64(m, 1u << VHOST_USER_PROTOCOL_F_MQ | 1u << VHOST_USER_PROTOCOL_F_REPLY_ACK |
                                                     1u << VHOST_USER_PROTOCOL_F_BACKEND_REQ |
                                                     1u << VHOST_USER_PROTOCOL_F_CONFIG);
                                break;
                        case VHOST_USER_GET_QUEUE_NUM:
                                reply_u64(m, 2);
                                break;
                        case VHOST_USER_GET_CONFIG: {
                                /* The header as asked, then virtio_gpu_config: one scanout. */
                                uint8_t p[VHOST_USER_CONFIG_HEADER_SIZE + 16] = {};
                                memcpy(p, m.payload, VHOST_USER_CONFIG_HEADER_SIZE);
                                p[VHOST_USER_CONFIG_HEADER_SIZE + 8] = 1;
                                reply(m, p, sizeof(p));
                                break;
                        }
                        case VHOST_USER_GET_VRING_BASE: {
                                uint8_t p[8] = {};
                                memcpy(p, m.payload, 4);
                                reply(m, p, sizeof(p));
                                break;
                        }
                        default:
                                replied = false;
                                break;
                        }
                        if (m.request == VHOST_USER_SET_BACKEND_REQ_FD && n == 1) {
                                req_ = fds[0];
                                n = 0;
                        }
                        for (size_t i = 0; i < n; i++)
                                close(fds[i]);
                        if (!replied && (m.flags & VHOST_USER_FLAG_NEED_REPLY))
                                reply_u64(m, 0);
                }
        }

        int front_ = -1, back_ = -1;
        std::atomic<int> req_{ -1 };
        std::thread thread_;
};

/* n pages of a memfd, page i filled with 'a' + i. */
int pattern_memfd(unsigned pages) {
        int fd = memfd_create("gpu-blob", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t) pages * 4096) < 0)
                abort();
        for (unsigned i = 0; i < pages; i++) {
                std::string page(4096, (char) ('a' + i));
                if (pwrite(fd, page.data(), page.size(), (off_t) i * 4096) != 4096)
                        abort();
        }
        return fd;
}

uint64_t shm_bar(PciDriver &d) {
        return (uint64_t) d.config_read(PCI_BAR0 + 4 * (VIRTIO_PCI_SHM_BAR + 1), 4) << 32 |
               (d.config_read(PCI_BAR0 + 4 * VIRTIO_PCI_SHM_BAR, 4) & ~0xfu);
}

/* Up to DRIVER_OK with the control queue: the worker watches the channel. */
void bring_up_gpu(PciDriver &d, const VirtqDriver &q) {
        ASSERT_TRUE(d.negotiate(BASE_FEATURES & ~(UINT64_C(1) << VIRTIO_F_EVENT_IDX) &
                                ~(UINT64_C(1) << VIRTIO_F_INDIRECT_DESC)));
        d.setup_queue(0, q);
        d.driver_ok();
        ASSERT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET) << virtio_device_error(d.device());
}

} // namespace

TEST(VhostUserShm, GpuBackendWithARequestChannelGetsTheHostVisibleRegion) {
        ScriptedGpuBackend be;
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        EXPECT_EQ(d.config_read(PCI_DEVICE_ID, 2), 0x1050u);
        const VirtioShmRegion *shm;
        ASSERT_EQ(virtio_device_shm_regions(d.device(), &shm), 1u);
        EXPECT_EQ(shm[0].shmid, 1u);
        EXPECT_EQ(shm[0].size, UINT64_C(256) << 20);
        EXPECT_NE(d.cap_position(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, 1), 0u);
}

TEST(VhostUserShm, MapPutsTheBackendsPagesIntoTheGuestAndUnmapTakesThemAway) {
        ScriptedGpuBackend be;
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up_gpu(d, q);
        uint64_t bar = shm_bar(d);
        int fd = pattern_memfd(3);

        EXPECT_EQ(be.request(VHOST_USER_BACKEND_SHMEM_MAP, 1, 4096, 1 << 20, 8192, VHOST_USER_SHMEM_MAP_RW, fd), 0);
        ASSERT_EQ(d.hv_log().slots.size(), 1u);
        EXPECT_EQ(d.hv_log().guest_byte(bar + (1 << 20)), 'b');
        EXPECT_EQ(d.hv_log().guest_byte(bar + (1 << 20) + 8191), 'c');
        EXPECT_FALSE(d.hv_log().slots.begin()->second.read_only);

        EXPECT_EQ(be.request(VHOST_USER_BACKEND_SHMEM_MAP, 1, 0, 0, 4096, VHOST_USER_SHMEM_MAP_R, fd), 0);
        EXPECT_EQ(d.hv_log().slots.size(), 2u);

        EXPECT_EQ(be.request(VHOST_USER_BACKEND_SHMEM_UNMAP, 1, 0, 1 << 20, 8192, 0, -1), 0);
        EXPECT_EQ(d.hv_log().guest_byte(bar + (1 << 20)), -1);
        EXPECT_EQ(virtio_device_shm_n_mappings(d.device()), 1u);
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        close(fd);
}

TEST(VhostUserShm, BadMapsAreRefusedNothingIsMappedAndTheDeviceGoesOn) {
        ScriptedGpuBackend be;
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up_gpu(d, q);
        int fd = pattern_memfd(1);
        const uint64_t region = UINT64_C(256) << 20;
        struct {
                const char *what;
                uint8_t shmid;
                uint64_t fd_offset, offset, len, flags;
        } bad[] = {
                { "a region never declared", 2, 0, 0, 4096, VHOST_USER_SHMEM_MAP_RW },
                { "past the region's end", 1, 0, region - 4096, 8192, VHOST_USER_SHMEM_MAP_RW },
                { "an offset that wraps", 1, 0, UINT64_MAX - 4095, 8192, VHOST_USER_SHMEM_MAP_RW },
                { "not page aligned", 1, 0, 100, 4096, VHOST_USER_SHMEM_MAP_RW },
                { "zero length", 1, 0, 0, 0, VHOST_USER_SHMEM_MAP_RW },
                { "write-only flags", 1, 0, 0, 4096, 2 },
                { "unknown flags", 1, 0, 0, 4096, 0x13 },
        };
        for (const auto &b : bad)
                EXPECT_NE(be.request(VHOST_USER_BACKEND_SHMEM_MAP, b.shmid, b.fd_offset, b.offset, b.len, b.flags, fd),
                          0) << b.what;
        EXPECT_NE(be.request(VHOST_USER_BACKEND_SHMEM_UNMAP, 1, 0, 0, 4096, 0, -1), 0) << "an unmap of nothing";
        EXPECT_TRUE(d.hv_log().slots.empty());
        EXPECT_EQ(virtio_device_shm_n_mappings(d.device()), 0u);
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        /* And a good one still works. */
        EXPECT_EQ(be.request(VHOST_USER_BACKEND_SHMEM_MAP, 1, 0, 0, 4096, VHOST_USER_SHMEM_MAP_RW, fd), 0);
        EXPECT_EQ(d.hv_log().slots.size(), 1u);
        close(fd);
}

TEST(VhostUserShm, AMapWithoutItsDescriptorBreaksTheDeviceNotTheVmm) {
        ScriptedGpuBackend be;
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up_gpu(d, q);
        EXPECT_EQ(be.request(VHOST_USER_BACKEND_SHMEM_MAP, 1, 0, 0, 4096, VHOST_USER_SHMEM_MAP_RW, -1), -1);
        EXPECT_TRUE(d.wait_status(VIRTIO_STATUS_NEEDS_RESET));
        EXPECT_TRUE(d.hv_log().slots.empty());
}

TEST(VhostUserShm, ResetTakesTheMappingsAway) {
        ScriptedGpuBackend be;
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up_gpu(d, q);
        int fd = pattern_memfd(1);
        EXPECT_EQ(be.request(VHOST_USER_BACKEND_SHMEM_MAP, 1, 0, 0, 4096, VHOST_USER_SHMEM_MAP_RW, fd), 0);
        EXPECT_EQ(d.hv_log().slots.size(), 1u);
        d.common_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        EXPECT_TRUE(d.hv_log().slots.empty());
        EXPECT_EQ(virtio_device_shm_n_mappings(d.device()), 0u);
        close(fd);
}

TEST(VhostUserStop, ABackendsStopRequestReachesTheVm) {
        ScriptedGpuBackend be;
        PciDriver d(&virtio_vhost_user_ops, be.config());
        ASSERT_EQ(d.error(), 0);
        struct Seen {
                std::atomic<int> n{ 0 };
                std::string why;
        } seen;
        virtio_device_set_stop_notify(d.device(), [](void *ctx, const char *why) {
                Seen *s = static_cast<Seen *>(ctx);
                s->why = why;
                s->n++;
        }, &seen);
        VirtqDriver q{ d.mem(), 0x10000, 64 };
        bring_up_gpu(d, q);
        ASSERT_TRUE(be.notify(VHOST_USER_BACKEND_STOP_VM));
        for (int i = 0; i < 200 && seen.n == 0; i++)
                usleep(10000);
        EXPECT_EQ(seen.n, 1);
        EXPECT_EQ(seen.why, "the GPU's window was closed");
        EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- the device processes the VMM starts (device-process.c) ---- */

namespace {

bool have_binary(const char *env) {
        const char *p = getenv(env);
        return p && access(p, X_OK) == 0;
}

} // namespace

TEST(DeviceProcess, GpuStartsMajordomeGpuWithItsConfigurationAndTheHostVisibleRegion) {
        if (!have_binary("MAJORDOME_GPU"))
                GTEST_SKIP() << "MAJORDOME_GPU names no majordome-gpu (meson sets it)";
        VmmDevice c{};
        c.kind = VMM_DEVICE_GPU;
        c.gpu = { VMM_GPU_BACKEND_2D, 800, 600, 2, UINT64_C(64) << 20, -1, 0 };
        PciDriver d(&virtio_vhost_user_ops, c);
        ASSERT_EQ(d.error(), 0);
        EXPECT_EQ(d.config_read(PCI_DEVICE_ID, 2), 0x1050u);
        /* virtio_gpu_config.num_scanouts (offset 8): what the VMM passed. */
        EXPECT_EQ(d.bar_read(VIRTIO_PCI_DEVICE_OFF + 8, 4), 2u);
        const VirtioShmRegion *shm;
        EXPECT_EQ(virtio_device_shm_regions(d.device(), &shm), 1u);
        /* VIRTIO_GPU_F_EDID offered, VIRGL not (2D). */
        d.common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
        uint32_t f = (uint32_t) d.common_read(VIRTIO_PCI_COMMON_DF, 4);
        EXPECT_TRUE(f & 2u);
        EXPECT_FALSE(f & 1u);
}

namespace {

std::vector<std::string> gpu_args(const VmmDevice &c, int *ret_extra_fd) {
        DeviceProcessCommand cmd;
        EXPECT_EQ(device_process_command(&c, &cmd), 0);
        *ret_extra_fd = cmd.extra_fd;
        return std::vector<std::string>(cmd.args, cmd.args + cmd.n);
}

bool has(const std::vector<std::string> &v, const std::string &s) {
        return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

TEST(DeviceProcess, GpuCommandWithoutContextTypesLeavesThemToTheBackend) {
        VmmDevice c{};
        c.kind = VMM_DEVICE_GPU;
        c.gpu = { VMM_GPU_BACKEND_VIRGL, 800, 600, 1, UINT64_C(64) << 20, -1, 0 };
        int extra;
        std::vector<std::string> a = gpu_args(c, &extra);
        EXPECT_FALSE(has(a, "--context-types"));
        EXPECT_FALSE(has(a, "--blob"));
        EXPECT_FALSE(has(a, "--wayland-fd=4"));
        EXPECT_EQ(extra, -1);
}

TEST(DeviceProcess, GpuCommandPassesContextTypesAndBlobForCrossDomain) {
        VmmDevice c{};
        c.kind = VMM_DEVICE_GPU;
        c.gpu = { VMM_GPU_BACKEND_VIRGL, 800, 600, 1, UINT64_C(64) << 20, 9,
                  VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_CROSS_DOMAIN };
        int extra;
        std::vector<std::string> a = gpu_args(c, &extra);
        auto it = std::find(a.begin(), a.end(), "--context-types");
        ASSERT_NE(it, a.end());
        ASSERT_NE(it + 1, a.end());
        EXPECT_EQ(*(it + 1), "virgl:cross-domain");
        EXPECT_TRUE(has(a, "--blob")) << "cross-domain needs blob resources";
        EXPECT_TRUE(has(a, "--wayland-fd=4"));
        EXPECT_EQ(extra, 9) << "the compositor handle becomes descriptor 4";

        c.gpu.context_types = VMM_GPU_CONTEXT_VIRGL2;
        a = gpu_args(c, &extra);
        it = std::find(a.begin(), a.end(), "--context-types");
        ASSERT_NE(it, a.end());
        EXPECT_EQ(*(it + 1), "virgl2");
        EXPECT_FALSE(has(a, "--blob")) << "only cross-domain asks for blob";
}

TEST(DeviceProcess, GpuWithCrossDomainOnACompositorHandleOffersBlobsAndContexts) {
        if (!have_binary("MAJORDOME_GPU"))
                GTEST_SKIP() << "MAJORDOME_GPU names no majordome-gpu (meson sets it)";
        if (!MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built without wayland support";
        char dir[] = "/tmp/majordome-xd-XXXXXX";
        ASSERT_NE(mkdtemp(dir), nullptr);
        std::string path = std::string(dir) + "/wayland-0";
        struct sockaddr_un sa = {};
        sa.sun_family = AF_UNIX;
        strcpy(sa.sun_path, path.c_str());
        int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_EQ(bind(listener, (struct sockaddr *) &sa, sizeof(sa)), 0) << strerror(errno);
        ASSERT_EQ(listen(listener, 4), 0);
        /* What --wayland-sock and the daemon hand over: a handle, not a connection. */
        int handle = open(path.c_str(), O_PATH | O_CLOEXEC);
        ASSERT_GE(handle, 0);

        VmmDevice c{};
        c.kind = VMM_DEVICE_GPU;
        c.gpu = { VMM_GPU_BACKEND_2D, 800, 600, 0, UINT64_C(64) << 20, handle, VMM_GPU_CONTEXT_CROSS_DOMAIN };
        {
                PciDriver d(&virtio_vhost_user_ops, c);
                ASSERT_EQ(d.error(), 0);
                /* virtio_gpu_config.num_capsets (offset 12): cross-domain's. */
                EXPECT_EQ(d.bar_read(VIRTIO_PCI_DEVICE_OFF + 12, 4), 1u);
                d.common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
                uint32_t f = (uint32_t) d.common_read(VIRTIO_PCI_COMMON_DF, 4);
                EXPECT_TRUE(f & (1u << 3)) << "VIRTIO_GPU_F_RESOURCE_BLOB: --blob was passed";
                EXPECT_TRUE(f & (1u << 4)) << "VIRTIO_GPU_F_CONTEXT_INIT";
        }
        close(handle);
        close(listener);
        unlink(path.c_str());
        rmdir(dir);
}

TEST(DeviceProcess, VideoDecoderAndEncoderStartMajordomeVideo) {
        if (!have_binary("MAJORDOME_VIDEO"))
                GTEST_SKIP() << "MAJORDOME_VIDEO names no majordome-video (meson sets it)";
        for (uint32_t kind : { (uint32_t) VMM_DEVICE_VIDEO_DECODER, (uint32_t) VMM_DEVICE_VIDEO_ENCODER }) {
                VmmDevice c{};
                c.kind = kind;
                c.video.backend = VMM_VIDEO_BACKEND_FFMPEG;
                PciDriver d(&virtio_vhost_user_ops, c);
                ASSERT_EQ(d.error(), 0) << kind;
                EXPECT_EQ(d.config_read(PCI_DEVICE_ID, 2), kind == VMM_DEVICE_VIDEO_DECODER ? 0x105fu : 0x105eu);
                /* virtio_video_config: version 0, then the device's name at 12. */
                std::string name;
                for (unsigned i = 0; i < 6; i++)
                        name += (char) d.bar_read(VIRTIO_PCI_DEVICE_OFF + 12 + i, 1);
                EXPECT_EQ(name, "ffmpeg") << kind;
                d.common_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
                uint32_t f = (uint32_t) d.common_read(VIRTIO_PCI_COMMON_DF, 4);
                EXPECT_EQ(f & 7u, 3u) << "guest pages and non-contiguous, no virtio objects";
        }
}
