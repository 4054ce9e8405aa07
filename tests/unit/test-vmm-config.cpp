/* SPDX-License-Identifier: BSD-3-Clause */
/* The CONFIGURE message (docs/control-protocol.md) and the one validation
 * of a VMM's configuration (common/vmm-config.h), byte by byte. */
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "majordome-features.h"
#include "common/vmm-config.h"

namespace {

int MemFile(const char *name, size_t size = 4096) {
        int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, (off_t) size) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

uint32_t Le32(const uint8_t *p) {
        return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t) p[3] << 24;
}

void PutLe32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

class VmmConfigTest : public ::testing::Test {
protected:
        void SetUp() override {
                vmm_config_init(&c_);
                c_.kernel_fd = Own(MemFile("kernel"));
        }
        void TearDown() override {
                for (int fd : owned_)
                        close(fd);
        }
        int Own(int fd) {
                EXPECT_GE(fd, 0);
                owned_.push_back(fd);
                return fd;
        }
        VmmDevice *Add(uint32_t kind) {
                VmmDevice *d = &c_.devices[c_.n_devices++];
                *d = VmmDevice {};
                d->kind = kind;
                return d;
        }
        void AddDisk(int fd, bool ro = false) {
                VmmDevice *d = Add(VMM_DEVICE_BLOCK);
                d->block.fd = fd;
                d->block.read_only = ro;
        }
        /* Encodes c_ into blob_/fds_. */
        void Encode() {
                size_t size = 0, n = 0;

                blob_.assign(VMM_CONFIG_BLOB_MAX, 0);
                fds_.assign(VMM_CONFIG_FDS_MAX, -1);
                ASSERT_EQ(vmm_config_encode(&c_, blob_.data(), &size, fds_.data(), &n), 0);
                blob_.resize(size);
                fds_.resize(n);
        }
        int Decode(VmmConfig *out, const std::vector<uint8_t> &blob, const std::vector<int> &fds) {
                return vmm_config_decode(blob.data(), blob.size(), fds.data(), fds.size(), out, &error_);
        }
        int Decode(VmmConfig *out) { return Decode(out, blob_, fds_); }

        VmmConfig c_;
        VmmConfigError error_ {};
        std::vector<uint8_t> blob_;
        std::vector<int> fds_;
        std::vector<int> owned_;
};

TEST(VmmConfigDefaults, LiveInInit) {
        VmmConfig c;

        vmm_config_init(&c);
        EXPECT_EQ(c.mem_size, UINT64_C(256) << 20);
        EXPECT_EQ(c.n_vcpus, 1u);
        EXPECT_EQ(c.kernel_fd, -1);
        EXPECT_EQ(c.initrd_fd, -1);
        EXPECT_EQ(c.serial, (uint32_t) VMM_SERIAL_STDOUT);
        EXPECT_EQ(c.on_panic, (uint32_t) CONTROL_PANIC_STOP);
        EXPECT_TRUE(c.decompress);
        EXPECT_FALSE(c.pvpanic);
        EXPECT_EQ(c.n_devices, 0u);
        EXPECT_STREQ(c.cmdline, "");
}

TEST(VmmConfigDefaults, DeviceKindStringsRoundTrip) {
        for (uint32_t k = 1; k < _VMM_DEVICE_KIND_MAX; k++)
                EXPECT_EQ(vmm_device_kind_from_string(vmm_device_kind_to_string(k)), (int) k);
        EXPECT_EQ(vmm_device_kind_to_string(0), nullptr);
        EXPECT_EQ(vmm_device_kind_to_string(_VMM_DEVICE_KIND_MAX), nullptr);
        EXPECT_EQ(vmm_device_kind_from_string("net"), -EINVAL);
        EXPECT_EQ(vmm_device_kind_from_string(nullptr), -EINVAL);
}

TEST_F(VmmConfigTest, EveryFieldRoundTrips) {
        c_.mem_size = UINT64_C(512) << 20;
        c_.n_vcpus = 3;
        c_.initrd_fd = Own(MemFile("initrd"));
        strcpy(c_.cmdline, "console=ttyS0 quiet");
        c_.serial = VMM_SERIAL_FD;
        c_.serial_fd = Own(MemFile("serial"));
        c_.serial_max = 65536;
        c_.debug_exit = true;
        c_.pvpanic = true;
        c_.on_panic = CONTROL_PANIC_PAUSE;
        c_.decompress = false;
        VmmDevice *b = Add(VMM_DEVICE_BALLOON);
        b->balloon.deflate_on_oom = true;
        b->balloon.page_reporting = true;
        AddDisk(Own(MemFile("disk0")), false);
        c_.devices[1].block.sparse = true;
        strcpy(c_.devices[1].block.id, "root-disk");
        AddDisk(Own(MemFile("disk1")), true);
        VmmDevice *con = Add(VMM_DEVICE_CONSOLE);
        con->console.backend = VMM_CONSOLE_FD;
        con->console.fd = Own(MemFile("console"));
        VmmDevice *con2 = Add(VMM_DEVICE_CONSOLE);
        con2->console.backend = VMM_CONSOLE_SOCKET;
        con2->console.fd = -1;
        strcpy(con2->console.path, "/run/x/console.sock");
        Add(VMM_DEVICE_RNG);
        VmmDevice *v = Add(VMM_DEVICE_VSOCK);
        v->vsock.cid = 42;
        v->vsock.max_connections = 7;
        strcpy(v->vsock.path, "/run/x/vsock");

        Encode();
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;

        EXPECT_EQ(out.mem_size, c_.mem_size);
        EXPECT_EQ(out.n_vcpus, 3u);
        EXPECT_EQ(out.kernel_fd, c_.kernel_fd);
        EXPECT_EQ(out.initrd_fd, c_.initrd_fd);
        EXPECT_STREQ(out.cmdline, "console=ttyS0 quiet");
        EXPECT_EQ(out.serial, (uint32_t) VMM_SERIAL_FD);
        EXPECT_EQ(out.serial_fd, c_.serial_fd);
        EXPECT_EQ(out.serial_max, 65536u);
        EXPECT_TRUE(out.debug_exit);
        EXPECT_TRUE(out.pvpanic);
        EXPECT_EQ(out.on_panic, (uint32_t) CONTROL_PANIC_PAUSE);
        EXPECT_FALSE(out.decompress);
        ASSERT_EQ(out.n_devices, 7u);
        EXPECT_EQ(out.devices[0].kind, (uint32_t) VMM_DEVICE_BALLOON);
        EXPECT_TRUE(out.devices[0].balloon.deflate_on_oom);
        EXPECT_TRUE(out.devices[0].balloon.page_reporting);
        EXPECT_EQ(out.devices[1].block.fd, c_.devices[1].block.fd);
        EXPECT_FALSE(out.devices[1].block.read_only);
        EXPECT_TRUE(out.devices[1].block.sparse);
        EXPECT_STREQ(out.devices[1].block.id, "root-disk");
        EXPECT_TRUE(out.devices[2].block.read_only);
        EXPECT_STREQ(out.devices[2].block.id, "");
        EXPECT_EQ(out.devices[3].console.backend, (uint32_t) VMM_CONSOLE_FD);
        EXPECT_EQ(out.devices[3].console.fd, con->console.fd);
        EXPECT_EQ(out.devices[4].console.backend, (uint32_t) VMM_CONSOLE_SOCKET);
        EXPECT_STREQ(out.devices[4].console.path, "/run/x/console.sock");
        EXPECT_EQ(out.devices[5].kind, (uint32_t) VMM_DEVICE_RNG);
        EXPECT_EQ(out.devices[6].vsock.cid, 42u);
        EXPECT_EQ(out.devices[6].vsock.max_connections, 7u);
        EXPECT_STREQ(out.devices[6].vsock.path, "/run/x/vsock");
}

TEST_F(VmmConfigTest, HeaderBytesAreTheDocumentedOnes) {
        c_.mem_size = UINT64_C(0x20000000);
        c_.n_vcpus = 2;
        c_.pvpanic = true;
        strcpy(c_.cmdline, "ab");
        Add(VMM_DEVICE_RNG);

        Encode();

        ASSERT_EQ(blob_.size(), (size_t) VMM_CONFIG_HEADER_SIZE + 2 + 4);
        const uint8_t *p = blob_.data();
        EXPECT_EQ(Le32(p + 0), 2u);             /* version */
        EXPECT_EQ(Le32(p + 4), 2u | 4u);        /* pvpanic, decompress */
        EXPECT_EQ(Le32(p + 8), 0x20000000u);    /* mem_size, low */
        EXPECT_EQ(Le32(p + 12), 0u);            /* mem_size, high */
        EXPECT_EQ(Le32(p + 16), 2u);            /* vcpus */
        EXPECT_EQ(Le32(p + 20), 0u);            /* on_panic */
        EXPECT_EQ(Le32(p + 24), 0u);            /* serial_max */
        EXPECT_EQ(Le32(p + 32), (uint32_t) VMM_SERIAL_STDOUT);
        EXPECT_EQ(Le32(p + 36), VMM_CONFIG_FD_NONE); /* serial fd */
        EXPECT_EQ(Le32(p + 40), 0u);            /* kernel: fd 0 of the message */
        EXPECT_EQ(Le32(p + 44), VMM_CONFIG_FD_NONE); /* no initrd */
        EXPECT_EQ(Le32(p + 48), 2u);            /* cmdline length */
        EXPECT_EQ(Le32(p + 52), 1u);            /* devices */
        EXPECT_EQ(memcmp(p + 56, "ab", 2), 0);
        const uint8_t rng[] = { 4, 0, 0, 0 };   /* kind 4, length 0 */
        EXPECT_EQ(memcmp(p + 58, rng, 4), 0);
        ASSERT_EQ(fds_.size(), 1u);
        EXPECT_EQ(fds_[0], c_.kernel_fd);
}

TEST_F(VmmConfigTest, DiskRecordBytes) {
        AddDisk(Own(MemFile("d")), true);
        strcpy(c_.devices[0].block.id, "xy");

        Encode();

        const uint8_t *d = blob_.data() + VMM_CONFIG_HEADER_SIZE;
        ASSERT_EQ(blob_.size(), (size_t) VMM_CONFIG_HEADER_SIZE + 4 + 32);
        EXPECT_EQ(d[0] | d[1] << 8, VMM_DEVICE_BLOCK);
        EXPECT_EQ(d[2] | d[3] << 8, 32);
        EXPECT_EQ(Le32(d + 4), 1u);             /* fd index: after the kernel */
        EXPECT_EQ(Le32(d + 8), 1u);             /* read-only */
        EXPECT_EQ(Le32(d + 12), 2u);            /* id length */
        EXPECT_EQ(memcmp(d + 16, "xy", 2), 0);
        EXPECT_EQ(d[18], 0);
}

TEST_F(VmmConfigTest, DecodeRefusesEveryTruncation) {
        AddDisk(Own(MemFile("d")));
        Add(VMM_DEVICE_BALLOON);
        strcpy(c_.cmdline, "quiet");
        Encode();

        for (size_t n = 0; n < blob_.size(); n++) {
                std::vector<uint8_t> cut(blob_.begin(), blob_.begin() + (long) n);
                VmmConfig out;
                EXPECT_LT(Decode(&out, cut, fds_), 0) << n;
        }
}

TEST_F(VmmConfigTest, DecodeRefusesTrailingBytes) {
        Encode();
        blob_.push_back(0);
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesWrongVersion) {
        Encode();
        PutLe32(blob_.data(), 1);
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EPROTO) << "version 1, whose gpu record was 28 bytes";
        EXPECT_NE(strstr(error_.message, "version 1"), nullptr) << error_.message;
        PutLe32(blob_.data(), 3);
        EXPECT_EQ(Decode(&out), -EPROTO);
}

TEST_F(VmmConfigTest, DecodeRefusesUnknownFlags) {
        Encode();
        PutLe32(blob_.data() + 4, 0x100);
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesTooFewFds) {
        AddDisk(Own(MemFile("d")));
        Encode();
        fds_.pop_back();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesAnFdNamedNowhere) {
        Encode();
        fds_.push_back(Own(MemFile("extra")));
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesAnFdNamedTwice) {
        AddDisk(Own(MemFile("d")));
        Encode();
        /* The disk names the kernel's index too. */
        PutLe32(blob_.data() + VMM_CONFIG_HEADER_SIZE + 4, 0);
        fds_.pop_back();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesMoreFdsThanTheLimit) {
        Encode();
        std::vector<int> many(VMM_CONFIG_FDS_MAX + 1, c_.kernel_fd);
        VmmConfig out;
        EXPECT_EQ(Decode(&out, blob_, many), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesTooManyDevices) {
        Encode();
        PutLe32(blob_.data() + 52, VMM_CONFIG_DEVICES_MAX + 1);
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesAnUnknownDeviceKind) {
        Add(VMM_DEVICE_RNG);
        Encode();
        blob_[VMM_CONFIG_HEADER_SIZE] = 99;
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, DecodeRefusesACmdlineWithANul) {
        strcpy(c_.cmdline, "abc");
        Encode();
        blob_[VMM_CONFIG_HEADER_SIZE + 1] = 0;
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigTest, KernelAsOPathIsRefused) {
        int path_fd = Own(open("/proc/self/exe", O_PATH | O_CLOEXEC));
        c_.kernel_fd = path_fd;
        Encode();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADF);
        EXPECT_NE(strstr(error_.message, "O_PATH"), nullptr) << error_.message;
}

TEST_F(VmmConfigTest, DirectoryAsDiskIsRefused) {
        AddDisk(Own(open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)), true);
        Encode();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADF);
}

TEST_F(VmmConfigTest, DirectoryAsKernelIsRefused) {
        c_.kernel_fd = Own(open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        Encode();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADF);
}

TEST_F(VmmConfigTest, ReadOnlyFdForAWritableDiskIsRefused) {
        int fd = MemFile("d");
        AddDisk(Own(open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC)));
        close(fd);
        Encode();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EACCES);
}

TEST_F(VmmConfigTest, ReadOnlySerialIsRefused) {
        int fd = MemFile("s");
        c_.serial = VMM_SERIAL_FD;
        c_.serial_fd = Own(open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
        close(fd);
        Encode();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADF);
}

TEST_F(VmmConfigTest, TheSameImageTwiceIsRefused) {
        int fd = Own(MemFile("d"));
        AddDisk(fd, true);
        AddDisk(Own(fcntl(fd, F_DUPFD_CLOEXEC, 3)), true);
        Encode();
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EEXIST);
}

TEST_F(VmmConfigTest, DecodeLeavesOutputAloneOnFailure) {
        Encode();
        PutLe32(blob_.data() + 16, 0); /* no vCPU */
        VmmConfig out;
        out.n_vcpus = 77;
        EXPECT_EQ(Decode(&out), -EINVAL);
        EXPECT_EQ(out.n_vcpus, 77u);
}

struct OutOfRange {
        const char *name;
        void (*set)(VmmConfig *c);
        int error;
};

class VmmConfigRange : public VmmConfigTest, public ::testing::WithParamInterface<OutOfRange> {};

TEST_P(VmmConfigRange, ValidateAndDecodeRefuse) {
        GetParam().set(&c_);
        EXPECT_EQ(vmm_config_validate(&c_, &error_), GetParam().error) << GetParam().name;
        EXPECT_NE(error_.message[0], '\0');
        /* The encoder will not write what the decoder would refuse... */
        size_t size, n;
        std::vector<uint8_t> blob(VMM_CONFIG_BLOB_MAX);
        int fds[VMM_CONFIG_FDS_MAX];
        EXPECT_EQ(vmm_config_encode(&c_, blob.data(), &size, fds, &n), -EINVAL);
}

/* ...so each of these is also checked on hand-made bytes below. */
INSTANTIATE_TEST_SUITE_P(Values, VmmConfigRange, ::testing::Values(
        OutOfRange { "mem0", [](VmmConfig *c) { c->mem_size = 0; }, -EINVAL },
        OutOfRange { "mem_unaligned", [](VmmConfig *c) { c->mem_size = (UINT64_C(1) << 20) + 4096; }, -EINVAL },
        OutOfRange { "mem_huge", [](VmmConfig *c) { c->mem_size = UINT64_C(1) << 41; }, -ERANGE },
        OutOfRange { "vcpus0", [](VmmConfig *c) { c->n_vcpus = 0; }, -EINVAL },
        OutOfRange { "vcpus255", [](VmmConfig *c) { c->n_vcpus = 255; }, -ERANGE },
        OutOfRange { "serial_max_small", [](VmmConfig *c) { c->serial = VMM_SERIAL_NONE; c->serial_max = 100; }, -ERANGE },
        OutOfRange { "serial_max_not_file", [](VmmConfig *c) { c->serial_max = 65536; }, -EINVAL },
        OutOfRange { "serial_kind", [](VmmConfig *c) { c->serial = 3; }, -EINVAL },
        OutOfRange { "on_panic", [](VmmConfig *c) { c->on_panic = 2; }, -EINVAL },
        OutOfRange { "two_balloons", [](VmmConfig *c) {
                c->devices[0].kind = c->devices[1].kind = VMM_DEVICE_BALLOON; c->n_devices = 2; }, -EEXIST },
        OutOfRange { "cid2", [](VmmConfig *c) {
                c->devices[0].kind = VMM_DEVICE_VSOCK; c->devices[0].vsock.cid = 2;
                c->devices[0].vsock.max_connections = 1; strcpy(c->devices[0].vsock.path, "/v"); c->n_devices = 1; }, -ERANGE },
        OutOfRange { "vsock_connections0", [](VmmConfig *c) {
                c->devices[0].kind = VMM_DEVICE_VSOCK; c->devices[0].vsock.cid = 3;
                c->devices[0].vsock.max_connections = 0; strcpy(c->devices[0].vsock.path, "/v"); c->n_devices = 1; }, -ERANGE },
        OutOfRange { "vsock_path_long", [](VmmConfig *c) {
                c->devices[0].kind = VMM_DEVICE_VSOCK; c->devices[0].vsock.cid = 3;
                c->devices[0].vsock.max_connections = 1; memset(c->devices[0].vsock.path, 'a', 100); c->n_devices = 1; }, -EINVAL },
        OutOfRange { "disk_id", [](VmmConfig *c) {
                c->devices[0].kind = VMM_DEVICE_BLOCK; c->devices[0].block.fd = c->kernel_fd;
                strcpy(c->devices[0].block.id, "a\tb"); c->n_devices = 1; }, -EINVAL },
        OutOfRange { "console_backend", [](VmmConfig *c) {
                c->devices[0].kind = VMM_DEVICE_CONSOLE; c->devices[0].console.backend = 7; c->n_devices = 1; }, -EINVAL }),
        [](const ::testing::TestParamInfo<OutOfRange> &i) { return std::string(i.param.name); });

TEST_F(VmmConfigTest, HandMadeOutOfRangeBytesAreRefused) {
        Encode();
        std::vector<uint8_t> b = blob_;
        VmmConfig out;

        PutLe32(b.data() + 16, VMM_CONFIG_VCPUS_MAX + 1);
        EXPECT_EQ(Decode(&out, b, fds_), -ERANGE);
        b = blob_;
        PutLe32(b.data() + 8, 12345);
        EXPECT_EQ(Decode(&out, b, fds_), -EINVAL);
        b = blob_;
        PutLe32(b.data() + 20, 9);
        EXPECT_EQ(Decode(&out, b, fds_), -EINVAL);
        b = blob_;
        PutLe32(b.data() + 48, VMM_CONFIG_CMDLINE_MAX + 1);
        EXPECT_EQ(Decode(&out, b, fds_), -EBADMSG);
}

/* ---- the datagrams ---- */

class VmmConfigWire : public VmmConfigTest {
protected:
        void SetUp() override {
                VmmConfigTest::SetUp();
                int sv[2];
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
                daemon_ = Own(sv[0]);
                vmm_ = Own(sv[1]);
        }
        /* The replies the "daemon" got: their statuses. */
        std::vector<int32_t> Replies() {
                std::vector<int32_t> statuses;
                ControlDatagram d;
                ControlHeader h;

                while (control_receive(daemon_, &d) == 0) {
                        control_datagram_close_fds(&d);
                        if (control_header_decode(d.data, d.len, &h) == 0)
                                statuses.push_back(h.status);
                }
                return statuses;
        }
        int daemon_ = -1, vmm_ = -1;
};

TEST_F(VmmConfigWire, OnePartForASmallConfiguration) {
        Add(VMM_DEVICE_RNG);
        ASSERT_EQ(vmm_config_send(daemon_, 10, &c_), 1);

        VmmConfig out;
        ASSERT_EQ(vmm_config_receive(vmm_, 1000, &out, &error_), 0) << error_.message;
        EXPECT_EQ(out.n_devices, 1u);
        EXPECT_NE(out.kernel_fd, c_.kernel_fd); /* a received copy */
        vmm_config_close_fds(&out);
        EXPECT_EQ(Replies(), std::vector<int32_t>({ 0 }));
}

TEST_F(VmmConfigWire, ALongCmdlineAndManyDisksTakeSeveralParts) {
        memset(c_.cmdline, 'x', VMM_CONFIG_CMDLINE_MAX);
        c_.cmdline[VMM_CONFIG_CMDLINE_MAX] = '\0';
        c_.initrd_fd = Own(MemFile("initrd"));
        c_.serial = VMM_SERIAL_FD;
        c_.serial_fd = Own(MemFile("serial"));
        for (int i = 0; i < 10; i++)
                AddDisk(Own(MemFile("d")), i % 2);
        ASSERT_EQ(vmm_config_send(daemon_, 1, &c_), 2);

        VmmConfig out;
        ASSERT_EQ(vmm_config_receive(vmm_, 1000, &out, &error_), 0) << error_.message;
        EXPECT_EQ(strlen(out.cmdline), (size_t) VMM_CONFIG_CMDLINE_MAX);
        EXPECT_EQ(out.n_devices, 10u);
        EXPECT_TRUE(out.devices[9].block.read_only);
        EXPECT_GE(out.devices[9].block.fd, 0);
        vmm_config_close_fds(&out);
        EXPECT_EQ(Replies(), std::vector<int32_t>({ 0, 0 }));
}

TEST_F(VmmConfigWire, AnotherRequestFirstIsRefused) {
        ControlHeader h = { CONTROL_MAGIC, CONTROL_VERSION, CONTROL_TYPE_INFO, 5, 0, 0, 0 };
        ASSERT_EQ(control_send(daemon_, &h, nullptr, nullptr, 0), 0);

        VmmConfig out;
        EXPECT_EQ(vmm_config_receive(vmm_, 1000, &out, &error_), -EBADMSG);
        EXPECT_EQ(Replies(), std::vector<int32_t>({ -EBADMSG }));
}

TEST_F(VmmConfigWire, AnInvalidConfigurationIsAnsweredWithItsError) {
        c_.kernel_fd = Own(open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        ASSERT_EQ(vmm_config_send(daemon_, 1, &c_), 1);

        VmmConfig out;
        EXPECT_EQ(vmm_config_receive(vmm_, 1000, &out, &error_), -EBADF);
        EXPECT_EQ(Replies(), std::vector<int32_t>({ -EBADF }));
}

TEST_F(VmmConfigWire, NothingSentTimesOut) {
        VmmConfig out;
        EXPECT_EQ(vmm_config_receive(vmm_, 50, &out, &error_), -ETIMEDOUT);
}

TEST_F(VmmConfigWire, AHangUpEndsTheWait) {
        close(daemon_);
        owned_.erase(owned_.begin() + 1);
        VmmConfig out;
        EXPECT_EQ(vmm_config_receive(vmm_, 1000, &out, &error_), -ECONNRESET);
}

TEST(VmmConfigReader, PartsOutOfOrderAreRefused) {
        VmmConfigReader r;
        VmmConfigError e;
        VmmConfig out;
        uint8_t part[8] = { 1, 0, 2, 0, 0, 0, 0, 0 }; /* part 1 of 2 first */

        vmm_config_reader_init(&r);
        EXPECT_EQ(vmm_config_reader_add(&r, part, sizeof(part), nullptr, 0, &out, &e), -EBADMSG);
        part[0] = 0;
        part[2] = VMM_CONFIG_PARTS_MAX + 1;
        EXPECT_EQ(vmm_config_reader_add(&r, part, sizeof(part), nullptr, 0, &out, &e), -EBADMSG);
        part[2] = 2;
        EXPECT_EQ(vmm_config_reader_add(&r, part, sizeof(part), nullptr, 0, &out, &e), 0);
        part[0] = 1;
        part[2] = 3; /* the count changed */
        EXPECT_EQ(vmm_config_reader_add(&r, part, sizeof(part), nullptr, 0, &out, &e), -EBADMSG);
        EXPECT_EQ(vmm_config_reader_add(&r, part, 4, nullptr, 0, &out, &e), -EBADMSG);
        vmm_config_reader_done(&r);
}

TEST(VmmConfigReader, ExcessFdsAreClosedAndRefused) {
        VmmConfigReader r;
        VmmConfigError e;
        VmmConfig out;
        uint8_t part[8] = { 0, 0, 4, 0, 0, 0, 0, 0 };
        int fds[CONTROL_FDS_MAX];

        vmm_config_reader_init(&r);
        for (int round = 0; round < 3; round++) {
                for (int &fd : fds)
                        fd = MemFile("f");
                part[0] = (uint8_t) round;
                int res = vmm_config_reader_add(&r, part, sizeof(part), fds, CONTROL_FDS_MAX, &out, &e);
                if (round < 2)
                        EXPECT_EQ(res, 0);
                else {
                        EXPECT_EQ(res, -EMSGSIZE); /* 24 > VMM_CONFIG_FDS_MAX */
                        EXPECT_EQ(fcntl(fds[0], F_GETFD), -1);
                }
        }
        vmm_config_reader_done(&r);
}

} /* namespace */

/* ---- vhost-user back-ends and shared directories ---- */

class VmmConfigShareTest : public VmmConfigTest {
protected:
        void SetUp() override {
                VmmConfigTest::SetUp();
                char tmpl[] = "/tmp/vmm-config-share-XXXXXX";
                ASSERT_NE(mkdtemp(tmpl), nullptr);
                dir_ = tmpl;
                int pair[2];
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
                sock_ = Own(pair[0]);
                Own(pair[1]);
        }
        void TearDown() override {
                VmmConfigTest::TearDown();
                rmdir(dir_.c_str());
        }
        int Dir() { return Own(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }
        VmmDevice *AddShare(const char *tag, int fd) {
                VmmDevice *d = Add(VMM_DEVICE_SHARED_DIR);
                d->shared_dir.fd = fd;
                strcpy(d->shared_dir.tag, tag);
                return d;
        }
        std::string dir_;
        int sock_ = -1;
};

TEST_F(VmmConfigShareTest, VhostUserAndSharedDirRoundTrip) {
        VmmDevice *u = Add(VMM_DEVICE_VHOST_USER);
        u->vhost_user.type = VMM_VHOST_USER_FS;
        u->vhost_user.fd = sock_;
        strcpy(u->vhost_user.tag, "from-backend");
        VmmDevice *s = AddShare("home", Dir());
        s->shared_dir.cache = VMM_FS_CACHE_NEVER;
        s->shared_dir.read_only = true;

        Encode();
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;
        ASSERT_EQ(out.n_devices, 2u);
        EXPECT_EQ(out.devices[0].vhost_user.type, (uint32_t) VMM_VHOST_USER_FS);
        EXPECT_EQ(out.devices[0].vhost_user.fd, sock_);
        EXPECT_STREQ(out.devices[0].vhost_user.tag, "from-backend");
        EXPECT_EQ(out.devices[1].shared_dir.fd, s->shared_dir.fd);
        EXPECT_EQ(out.devices[1].shared_dir.cache, (uint32_t) VMM_FS_CACHE_NEVER);
        EXPECT_TRUE(out.devices[1].shared_dir.read_only);
        EXPECT_STREQ(out.devices[1].shared_dir.tag, "home");
        EXPECT_STREQ(vmm_device_kind_to_string(VMM_DEVICE_SHARED_DIR), "shared-dir");
        EXPECT_STREQ(vmm_vhost_user_type_to_string(VMM_VHOST_USER_RNG), "rng");
        EXPECT_EQ(vmm_vhost_user_type_from_string("gpu"), VMM_VHOST_USER_GPU);
        EXPECT_EQ(vmm_vhost_user_type_from_string("net"), -EINVAL);
}

TEST_F(VmmConfigShareTest, TwoSharesWithOneTagAreRefused) {
        AddShare("same", Dir());
        VmmDevice *u = Add(VMM_DEVICE_VHOST_USER);
        u->vhost_user.type = VMM_VHOST_USER_FS;
        u->vhost_user.fd = sock_;
        strcpy(u->vhost_user.tag, "same");
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EEXIST);
        EXPECT_NE(std::string(error_.message).find("same"), std::string::npos) << error_.message;
}

TEST_F(VmmConfigShareTest, BadTagsAndCacheModesAreRefused) {
        for (const char *tag : { "", "a b", "a:b", "a,b", "a/b", "a\\b", "\x7f" }) {
                c_.n_devices = 0;
                AddShare(tag, Dir());
                EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL) << "tag '" << tag << "'";
        }
        c_.n_devices = 0;
        AddShare("ok", Dir())->shared_dir.cache = 3;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL);
        c_.n_devices = 0;
        VmmDevice *u = Add(VMM_DEVICE_VHOST_USER);
        u->vhost_user.type = VMM_VHOST_USER_RNG;
        u->vhost_user.fd = sock_;
        strcpy(u->vhost_user.tag, "t");
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL) << "a tag on an rng back-end";
        u->vhost_user.tag[0] = '\0';
        u->vhost_user.type = 99;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL) << "an unknown type";
}

TEST_F(VmmConfigShareTest, DescriptorsOfTheWrongKindAreRefused) {
        AddShare("file", Own(MemFile("not-a-dir")));
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EBADF) << "a share that is a file";
        c_.n_devices = 0;
        AddShare("opath", Own(open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)));
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EBADF) << "an O_PATH share";
        c_.n_devices = 0;
        VmmDevice *u = Add(VMM_DEVICE_VHOST_USER);
        u->vhost_user.type = VMM_VHOST_USER_RNG;
        u->vhost_user.fd = Dir();
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EBADF) << "a back-end that is not a socket";
}

TEST_F(VmmConfigShareTest, DecodeRefusesUnknownShareFlags) {
        AddShare("x", Dir());
        Encode();
        /* The share's record: device header (4), then u32 flags. */
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline) + 4;
        PutLe32(&blob_[at], Le32(&blob_[at]) | 0x400);
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EBADMSG);
}

TEST_F(VmmConfigShareTest, LiveFlagRoundTripsAsBit0x200) {
        VmmDevice *d = AddShare("majordome", Dir());
        d->shared_dir.live = true;
        Encode();
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline) + 4;
        EXPECT_EQ(Le32(&blob_[at]), 0x200u) << "cache auto, not read-only, live";
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0);
        EXPECT_TRUE(out.devices[0].shared_dir.live);
        EXPECT_FALSE(out.devices[0].shared_dir.read_only);
}

/* ---- the GPU ---- */

class VmmConfigGpuTest : public VmmConfigShareTest {
protected:
        /* These take GPUs with compositors: VmmConfigFeatures covers a
         * build without them. */
        void SetUp() override {
                VmmConfigShareTest::SetUp();
                if (!MAJORDOME_HAVE_GPU || !MAJORDOME_HAVE_WAYLAND)
                        GTEST_SKIP() << "built without gpu or wayland support";
        }
        VmmDevice *AddGpu(int wayland_fd = -1) {
                VmmDevice *d = Add(VMM_DEVICE_GPU);
                d->gpu.backend = VMM_GPU_BACKEND_2D;
                d->gpu.width = 1280;
                d->gpu.height = 800;
                d->gpu.displays = 2;
                d->gpu.max_memory = UINT64_C(64) << 20;
                d->gpu.wayland_fd = wayland_fd;
                return d;
        }
};

TEST_F(VmmConfigGpuTest, RecordBytesAndRoundTripWithACompositor) {
        AddGpu(sock_)->gpu.context_types = VMM_GPU_CONTEXT_CROSS_DOMAIN;
        Encode();
        /* Device header (kind 8, length 32), then the body: docs/control-protocol.md. */
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline);
        const uint8_t expect[] = {
                8, 0, 32, 0,
                0, 0, 0, 0,                     /* backend 2d */
                0x00, 0x05, 0, 0,               /* width 1280 */
                0x20, 0x03, 0, 0,               /* height 800 */
                2, 0, 0, 0,                     /* displays */
                0, 0, 0, 4, 0, 0, 0, 0,         /* max_memory 64 MiB */
                1, 0, 0, 0,                     /* fd index 1 (the kernel is 0) */
                0x20, 0, 0, 0,                  /* context_types: 1 << 5, cross-domain */
        };
        ASSERT_EQ(blob_.size(), at + sizeof(expect));
        EXPECT_EQ(memcmp(&blob_[at], expect, sizeof(expect)), 0);
        ASSERT_EQ(fds_.size(), 2u);
        EXPECT_EQ(fds_[1], sock_);

        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;
        ASSERT_EQ(out.n_devices, 1u);
        EXPECT_EQ(out.devices[0].kind, (uint32_t) VMM_DEVICE_GPU);
        EXPECT_EQ(out.devices[0].gpu.width, 1280u);
        EXPECT_EQ(out.devices[0].gpu.height, 800u);
        EXPECT_EQ(out.devices[0].gpu.displays, 2u);
        EXPECT_EQ(out.devices[0].gpu.max_memory, UINT64_C(64) << 20);
        EXPECT_EQ(out.devices[0].gpu.wayland_fd, sock_);
        EXPECT_EQ(out.devices[0].gpu.context_types, VMM_GPU_CONTEXT_CROSS_DOMAIN);
        EXPECT_EQ(vmm_device_fd(&out.devices[0]), &out.devices[0].gpu.wayland_fd);
}

TEST_F(VmmConfigGpuTest, ContextTypesAreCrosvmsNamesAndCapsetBits) {
        uint32_t mask = 0;
        char buf[VMM_GPU_CONTEXT_TYPES_STRING_MAX];
        VmmConfigError e;

        ASSERT_EQ(vmm_gpu_context_types_from_string("cross-domain:virgl2:virgl", &mask, &e), 0) << e.message;
        EXPECT_EQ(mask, (1u << 1) | (1u << 2) | (1u << 5));
        ASSERT_EQ(vmm_gpu_context_types_to_string(mask, buf, sizeof(buf)), 0);
        EXPECT_STREQ(buf, "virgl:virgl2:cross-domain");
        ASSERT_EQ(vmm_gpu_context_types_to_string(0, buf, sizeof(buf)), 0);
        EXPECT_STREQ(buf, "");
        EXPECT_EQ(vmm_gpu_context_types_to_string(1u << 3, buf, sizeof(buf)), -EINVAL);
        EXPECT_EQ(vmm_gpu_context_types_to_string(mask, buf, 8), -ENOBUFS);
}

TEST_F(VmmConfigGpuTest, ContextTypesUnknownEmptyOrTwiceAreRefusedWithTheName) {
        struct Case {
                const char *list;
                int error;
                const char *says;
        } cases[] = {
                { "wayland", -EINVAL, "'wayland' is not a context type" },
                { "virgl:venus", -EINVAL, "'venus'" },
                { "", -EINVAL, "empty" },
                { "virgl::cross-domain", -EINVAL, "'' is not" },
                { "cross-domain:", -EINVAL, "'' is not" },
                { "virgl:virgl", -EEXIST, "'virgl' given twice" },
                { ":", -EINVAL, "'' is not" },
                { "gfxstream", -EINVAL, "'gfxstream' is not" },
                { "cross_domain", -EINVAL, "'cross_domain' is not" },
        };
        for (const Case &k : cases) {
                uint32_t mask = 7;
                VmmConfigError e = {};
                EXPECT_EQ(vmm_gpu_context_types_from_string(k.list, &mask, &e), k.error) << k.list;
                EXPECT_NE(strstr(e.message, k.says), nullptr) << k.list << ": " << e.message;
                EXPECT_EQ(mask, 7u) << "untouched on failure";
        }
}

TEST_F(VmmConfigGpuTest, VirglContextsNeedTheVirglrendererBackend) {
        AddGpu()->gpu.context_types = VMM_GPU_CONTEXT_VIRGL2;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL);
        EXPECT_NE(strstr(error_.message, "backend=virglrenderer"), nullptr) << error_.message;
        c_.devices[0].gpu.backend = VMM_GPU_BACKEND_VIRGL;
        c_.devices[0].gpu.context_types = VMM_GPU_CONTEXT_ALL;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), 0) << error_.message;
        c_.devices[0].gpu.context_types = 1u << 4;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL) << "an unknown bit";
        c_.n_devices = 0;
        AddGpu()->gpu.context_types = VMM_GPU_CONTEXT_CROSS_DOMAIN;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), 0) << "cross-domain on 2d: " << error_.message;
}

TEST_F(VmmConfigGpuTest, DecodeRefusesVirglContextsOnThe2dBackend) {
        AddGpu();
        Encode();
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline) + 4;
        PutLe32(&blob_[at + 28], VMM_GPU_CONTEXT_VIRGL);
        VmmConfig out;
        EXPECT_EQ(Decode(&out), -EINVAL);
}

TEST_F(VmmConfigGpuTest, VirglrendererIsBackend1) {
        AddGpu()->gpu.backend = VMM_GPU_BACKEND_VIRGL;
        Encode();
        EXPECT_EQ(Le32(&blob_[VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline) + 4]), 1u);
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;
        EXPECT_EQ(out.devices[0].gpu.backend, (uint32_t) VMM_GPU_BACKEND_VIRGL);
        EXPECT_STREQ(vmm_gpu_backend_to_string(VMM_GPU_BACKEND_VIRGL), "virglrenderer");
        EXPECT_EQ(vmm_gpu_backend_from_string("virglrenderer"), VMM_GPU_BACKEND_VIRGL);
        EXPECT_EQ(vmm_gpu_backend_from_string("3d"), -EINVAL);
}

TEST_F(VmmConfigGpuTest, HeadlessNamesNoDescriptor) {
        AddGpu()->gpu.displays = 0;
        Encode();
        ASSERT_EQ(fds_.size(), 1u);
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline) + 4;
        EXPECT_EQ(Le32(&blob_[at + 24]), VMM_CONFIG_FD_NONE);
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;
        EXPECT_EQ(out.devices[0].gpu.wayland_fd, -1);
        EXPECT_EQ(out.devices[0].gpu.displays, 0u);
}

TEST_F(VmmConfigGpuTest, OutOfRangeValuesAreRefused) {
        struct Case {
                const char *what;
                void (*bad)(VmmDevice *d);
                int error;
        } cases[] = {
                { "width 0", [](VmmDevice *d) { d->gpu.width = 0; }, -ERANGE },
                { "height 16385", [](VmmDevice *d) { d->gpu.height = 16385; }, -ERANGE },
                { "17 displays", [](VmmDevice *d) { d->gpu.displays = 17; }, -ERANGE },
                { "max-memory under 1M", [](VmmDevice *d) { d->gpu.max_memory = 4096; }, -ERANGE },
                { "max-memory over 64G", [](VmmDevice *d) { d->gpu.max_memory = UINT64_C(1) << 37; }, -ERANGE },
                { "unknown backend", [](VmmDevice *d) { d->gpu.backend = 7; }, -EINVAL },
        };
        for (const Case &k : cases) {
                c_.n_devices = 0;
                k.bad(AddGpu());
                EXPECT_EQ(vmm_config_validate(&c_, &error_), k.error) << k.what;
                EXPECT_NE(std::string(error_.message).find("--gpu"), std::string::npos) << error_.message;
                size_t size, n;
                std::vector<uint8_t> buf(VMM_CONFIG_BLOB_MAX);
                std::vector<int> fds(VMM_CONFIG_FDS_MAX);
                EXPECT_EQ(vmm_config_encode(&c_, buf.data(), &size, fds.data(), &n), -EINVAL) << k.what;
        }
        c_.n_devices = 0;
        AddGpu();
        AddGpu();
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EEXIST) << "two GPUs";
}

TEST_F(VmmConfigGpuTest, TheCompositorMustBeASocket) {
        AddGpu(Own(MemFile("not-a-socket")));
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EBADF);
        c_.n_devices = 0;
        AddGpu(Own(open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)));
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EBADF) << "an O_PATH descriptor to a directory";
        c_.n_devices = 0;
        AddGpu(sock_);
        EXPECT_EQ(vmm_config_validate(&c_, &error_), 0) << error_.message;
}

TEST_F(VmmConfigGpuTest, AnOPathHandleToASocketIsTakenAndTravels) {
        std::string path = dir_ + "/wayland-0";
        struct sockaddr_un sa = {};
        sa.sun_family = AF_UNIX;
        ASSERT_LT(path.size(), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path.c_str());
        int listener = Own(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_EQ(bind(listener, (struct sockaddr *) &sa, sizeof(sa)), 0) << strerror(errno);
        int handle = Own(open(path.c_str(), O_PATH | O_CLOEXEC));
        unlink(path.c_str());
        ASSERT_GE(handle, 0);

        AddGpu(handle);
        EXPECT_EQ(vmm_config_validate(&c_, &error_), 0) << error_.message;
        Encode();
        ASSERT_EQ(fds_.size(), 2u);
        EXPECT_EQ(fds_[1], handle);
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;
        EXPECT_EQ(out.devices[0].gpu.wayland_fd, handle);
}

TEST_F(VmmConfigGpuTest, DecodeRefusesABodyOfAnotherLength) {
        AddGpu();
        Encode();
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline);
        VmmConfig out;
        std::vector<uint8_t> shorter(blob_.begin(), blob_.end() - 4);
        shorter[at + 2] = 24;
        EXPECT_EQ(Decode(&out, shorter, fds_), -EBADMSG);
        std::vector<uint8_t> bad_fd = blob_;
        PutLe32(&bad_fd[at + 4 + 24], 5);
        EXPECT_EQ(Decode(&out, bad_fd, fds_), -EBADMSG) << "a compositor descriptor index out of range";
}

/* ---- video ---- */

TEST_F(VmmConfigTest, VideoDecoderAndEncoderRoundTripAsFourByteRecords) {
        if (!MAJORDOME_HAVE_VIDEO)
                GTEST_SKIP() << "built without video support";
        Add(VMM_DEVICE_VIDEO_DECODER)->video.backend = VMM_VIDEO_BACKEND_FFMPEG;
        Add(VMM_DEVICE_VIDEO_ENCODER)->video.backend = VMM_VIDEO_BACKEND_FFMPEG;
        Encode();
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline);
        const uint8_t expect[] = { 9, 0, 4, 0, 0, 0, 0, 0, 10, 0, 4, 0, 0, 0, 0, 0 };
        ASSERT_EQ(blob_.size(), at + sizeof(expect));
        EXPECT_EQ(memcmp(&blob_[at], expect, sizeof(expect)), 0);
        VmmConfig out;
        ASSERT_EQ(Decode(&out), 0) << error_.message;
        ASSERT_EQ(out.n_devices, 2u);
        EXPECT_EQ(out.devices[0].kind, (uint32_t) VMM_DEVICE_VIDEO_DECODER);
        EXPECT_EQ(out.devices[1].kind, (uint32_t) VMM_DEVICE_VIDEO_ENCODER);
        EXPECT_EQ(vmm_device_fd(&out.devices[0]), nullptr);
        EXPECT_STREQ(vmm_device_kind_to_string(VMM_DEVICE_VIDEO_DECODER), "video-decoder");
        EXPECT_EQ(vmm_video_backend_from_string("ffmpeg"), VMM_VIDEO_BACKEND_FFMPEG);
        EXPECT_EQ(vmm_video_backend_from_string("vaapi"), -EINVAL);
        EXPECT_EQ(vmm_vhost_user_type_from_string("video-decoder"), VMM_VHOST_USER_VIDEO_DECODER);
}

TEST_F(VmmConfigTest, VideoBadBackendsTwoOfAKindAndBadLengthsAreRefused) {
        if (!MAJORDOME_HAVE_VIDEO)
                GTEST_SKIP() << "built without video support";
        Add(VMM_DEVICE_VIDEO_DECODER)->video.backend = 1;
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EINVAL);
        EXPECT_NE(std::string(error_.message).find("--video-decoder"), std::string::npos) << error_.message;
        c_.n_devices = 0;
        Add(VMM_DEVICE_VIDEO_ENCODER);
        Add(VMM_DEVICE_VIDEO_ENCODER);
        EXPECT_EQ(vmm_config_validate(&c_, &error_), -EEXIST);
        c_.n_devices = 0;
        Add(VMM_DEVICE_VIDEO_DECODER);
        Encode();
        size_t at = VMM_CONFIG_HEADER_SIZE + strlen(c_.cmdline);
        std::vector<uint8_t> longer = blob_;
        longer[at + 2] = 8;
        longer.insert(longer.end(), 4, 0);
        VmmConfig out;
        EXPECT_EQ(Decode(&out, longer, fds_), -EBADMSG);
}

/* ---- the optional parts (meson's gpu, wayland and video features) ---- */

class VmmConfigFeatures : public VmmConfigTest {
protected:
        VmmDevice *AddHeadlessGpu() {
                VmmDevice *d = Add(VMM_DEVICE_GPU);
                d->gpu.backend = VMM_GPU_BACKEND_2D;
                d->gpu.width = 640;
                d->gpu.height = 480;
                d->gpu.displays = 1;
                d->gpu.max_memory = VMM_CONFIG_GPU_MEMORY_DEFAULT;
                d->gpu.wayland_fd = -1;
                return d;
        }
        /* 0 where the build has the part; else -EOPNOTSUPP naming it. */
        void ExpectBuiltOrRefused(bool built, const char *says) {
                int r = vmm_config_validate(&c_, &error_);
                if (built) {
                        EXPECT_EQ(r, 0) << error_.message;
                        return;
                }
                EXPECT_EQ(r, -EOPNOTSUPP);
                EXPECT_NE(strstr(error_.message, says), nullptr) << error_.message;
        }
};

TEST_F(VmmConfigFeatures, AHeadlessGpuNeedsTheGpuFeatureAlone) {
        AddHeadlessGpu();
        ExpectBuiltOrRefused(MAJORDOME_HAVE_GPU, "--gpu 0: built without gpu support");
        EXPECT_EQ(vmm_config_missing_feature(VMM_DEVICE_GPU, false) == nullptr, (bool) MAJORDOME_HAVE_GPU);
}

TEST_F(VmmConfigFeatures, CrossDomainNeedsTheWaylandFeature) {
        AddHeadlessGpu()->gpu.context_types = VMM_GPU_CONTEXT_CROSS_DOMAIN;
        ExpectBuiltOrRefused(MAJORDOME_HAVE_GPU && MAJORDOME_HAVE_WAYLAND,
                             MAJORDOME_HAVE_GPU ? "built without wayland support" : "built without gpu support");
}

TEST_F(VmmConfigFeatures, VideoDevicesNeedTheVideoFeature) {
        Add(VMM_DEVICE_VIDEO_ENCODER)->video.backend = VMM_VIDEO_BACKEND_FFMPEG;
        ExpectBuiltOrRefused(MAJORDOME_HAVE_VIDEO, "--video-encoder 0: built without video support");
        EXPECT_EQ(vmm_config_missing_feature(VMM_DEVICE_VIDEO_DECODER, false) == nullptr,
                  (bool) MAJORDOME_HAVE_VIDEO);
}

TEST_F(VmmConfigFeatures, DevicesOfNoFeatureAreNeverMissing) {
        EXPECT_EQ(vmm_config_missing_feature(VMM_DEVICE_BLOCK, true), nullptr);
        EXPECT_EQ(vmm_config_missing_feature(VMM_DEVICE_VHOST_USER, false), nullptr)
                << "a back-end someone else started needs nothing of this build";
}
