/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-block through the harness (virtio 1.2 §5.2): requests built by a
 * host-side driver against a real image file in /tmp, and the bad requests
 * a hostile guest could make. */
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "common/control.h"
#include "vmm/devices/virtio-block.h"
#include "tests/virtio/harness.h"

using harness::Buf;
using harness::PciDriver;
using harness::VirtqDriver;

namespace {

constexpr uint32_t T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_GET_LIFETIME = 10, T_DISCARD = 11,
                   T_WRITE_ZEROES = 13;
constexpr uint8_t S_OK = 0, S_IOERR = 1, S_UNSUPP = 2;
constexpr unsigned F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_DISCARD = 13, F_WRITE_ZEROES = 14;

constexpr uint64_t HDR = 0x100000, STATUS = 0x101000, DATA = 0x200000, DATA2 = 0x400000;
constexpr uint64_t IMAGE_SIZE = 1 * MiB;

constexpr uint64_t bit(unsigned b) { return UINT64_C(1) << b; }

constexpr uint64_t BASE_FEATURES = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(VIRTIO_F_INDIRECT_DESC);
constexpr uint64_t RW_FEATURES = BASE_FEATURES | bit(F_SEG_MAX) | bit(F_BLK_SIZE) | bit(F_FLUSH) | bit(F_DISCARD) |
                                 bit(F_WRITE_ZEROES);

/* A temporary raw image, removed at the end. */
struct Image {
        explicit Image(uint64_t size = IMAGE_SIZE, bool pattern = true) {
                char tmpl[] = "/tmp/test-virtio-block-XXXXXX";
                int fd = mkstemp(tmpl);
                path = tmpl;
                EXPECT_GE(fd, 0);
                std::vector<uint8_t> buf(size);
                for (uint64_t i = 0; i < size; i++)
                        buf[i] = pattern ? (uint8_t) (i * 7 + i / 512) : 0;
                EXPECT_EQ(pwrite(fd, buf.data(), size, 0), (ssize_t) size);
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
        uint64_t size() const {
                struct stat st;
                EXPECT_EQ(stat(path.c_str(), &st), 0);
                return (uint64_t) st.st_size;
        }
        uint64_t allocated() const {
                struct stat st;
                EXPECT_EQ(stat(path.c_str(), &st), 0);
                return (uint64_t) st.st_blocks * 512;
        }
        std::string arg(const std::string &opts = "") const { return path + opts; }
        std::string path;
};

uint8_t expected_byte(uint64_t i) {
        return (uint8_t) (i * 7 + i / 512);
}

struct Hdr {
        uint32_t type, ioprio;
        uint64_t sector;
};

struct Seg {
        uint64_t sector;
        uint32_t num_sectors, flags;
};

/* One block device with its queue set up and DRIVER_OK. */
class Block : public ::testing::Test {
protected:
        explicit Block(const std::string &opts = "", uint64_t features = RW_FEATURES)
            : img_(), d_(&virtio_block_ops, img_.arg(opts).c_str(), 16 * MiB, true), features_(features) {}

        void SetUp() override {
                ASSERT_EQ(d_.error(), 0);
                ASSERT_TRUE(d_.negotiate(features_ & virtio_device_offered(d_.device())));
                d_.setup_queue(0, q_, 0);
                d_.enable_msix();
                d_.program_vector(0, 0xfee00000, 0x40);
                d_.program_vector(1, 0xfee00000, 0x41);
                d_.common_write(VIRTIO_PCI_COMMON_MSIX, 2, 1);
                d_.set_vector_masked(1, false);
                d_.driver_ok();
        }

        void put(uint64_t gpa, const void *p, size_t n) { ASSERT_EQ(guest_write(d_.mem(), gpa, p, n), 0); }
        std::vector<uint8_t> get(uint64_t gpa, size_t n) {
                std::vector<uint8_t> v(n);
                EXPECT_EQ(guest_read(d_.mem(), gpa, v.data(), n), 0);
                return v;
        }
        void header(uint32_t type, uint64_t sector) {
                Hdr h = { type, 0, sector };
                put(HDR, &h, sizeof(h));
        }

        /* Submits a chain, waits for it to come back; the status byte is
         * read from status_gpa. */
        uint8_t submit(const std::vector<Buf> &bufs, uint64_t status_gpa = STATUS) {
                uint8_t poison = 0xee;
                put(status_gpa, &poison, 1);
                q_.add_chain(bufs);
                d_.kick(0);
                expected_used_++;
                EXPECT_TRUE(d_.wait_used(q_, expected_used_));
                return get(status_gpa, 1)[0];
        }
        uint8_t request(uint32_t type, uint64_t sector, std::vector<Buf> data) {
                header(type, sector);
                std::vector<Buf> bufs = { { HDR, 16, false } };
                bufs.insert(bufs.end(), data.begin(), data.end());
                bufs.push_back({ STATUS, 1, true });
                return submit(bufs);
        }
        uint8_t discard(uint32_t type, const std::vector<Seg> &segs) {
                put(DATA, segs.data(), segs.size() * sizeof(Seg));
                return request(type, 0, { { DATA, (uint32_t) (segs.size() * sizeof(Seg)), false } });
        }
        VirtqUsedElem last_used() { return q_.used((uint16_t) (expected_used_ - 1)); }
        uint64_t config64(unsigned off) {
                return d_.bar_read(VIRTIO_PCI_DEVICE_OFF + off, 4) |
                       (d_.bar_read(VIRTIO_PCI_DEVICE_OFF + off + 4, 4) << 32);
        }
        bool healthy() { return !(d_.status() & VIRTIO_STATUS_NEEDS_RESET); }

        Image img_;
        PciDriver d_;
        uint64_t features_;
        VirtqDriver q_{ d_.mem(), 0x10000, 64 };
        uint16_t expected_used_ = 0;
};

class ReadOnlyBlock : public Block {
protected:
        ReadOnlyBlock() : Block(",ro", BASE_FEATURES | bit(F_RO) | bit(F_FLUSH) | bit(F_DISCARD) | bit(F_WRITE_ZEROES)) {}
};

class SparseBlock : public Block {
protected:
        SparseBlock() : Block(",sparse=true,id=disk-serial-0001") {}
};

class NoFlushBlock : public Block {
protected:
        NoFlushBlock() : Block("", BASE_FEATURES) {}
};

/* ---- options and creation ---- */

TEST(BlockOptions, parses_path_and_every_option) {
        VirtioBlockOptions o;
        ASSERT_EQ(virtio_block_parse_options("/x/disk.img,ro,sparse=true,id=abc", &o), 0);
        EXPECT_STREQ(o.path, "/x/disk.img");
        EXPECT_EQ(o.fd, -1);
        EXPECT_TRUE(o.read_only);
        EXPECT_TRUE(o.sparse);
        EXPECT_STREQ(o.id, "abc");
}

TEST(BlockOptions, parses_an_inherited_fd) {
        VirtioBlockOptions o;
        ASSERT_EQ(virtio_block_parse_options("fd:7,ro=false,sparse", &o), 0);
        EXPECT_EQ(o.fd, 7);
        EXPECT_FALSE(o.read_only);
        EXPECT_TRUE(o.sparse);
}

TEST(BlockOptions, refuses_unknown_or_malformed_options) {
        VirtioBlockOptions o;
        EXPECT_EQ(virtio_block_parse_options("", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options(",ro", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options("disk,bogus", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options("disk,sparse=maybe", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options("fd:x", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options("fd:-1", &o), -EINVAL);
}

TEST(BlockOptions, refuses_an_id_over_20_bytes_or_not_printable) {
        VirtioBlockOptions o;
        EXPECT_EQ(virtio_block_parse_options("disk,id=123456789012345678901", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options("disk,id=a\tb", &o), -EINVAL);
        EXPECT_EQ(virtio_block_parse_options("disk,id=12345678901234567890", &o), 0);
}

TEST(BlockCreate, missing_image_fails_with_enoent) {
        PciDriver d(&virtio_block_ops, "/nonexistent/disk.img");
        EXPECT_EQ(d.error(), -ENOENT);
}

TEST(BlockCreate, fd_opened_read_only_needs_ro) {
        Image img;
        int fd = open(img.path.c_str(), O_RDONLY | O_CLOEXEC);
        std::string arg = "fd:" + std::to_string(fd);
        {
                PciDriver d(&virtio_block_ops, arg.c_str());
                EXPECT_EQ(d.error(), -EACCES);
        }
        {
                PciDriver d(&virtio_block_ops, (arg + ",ro").c_str());
                EXPECT_EQ(d.error(), 0);
        }
        close(fd);
}

TEST(BlockCreate, image_in_use_by_another_writer_is_refused) {
        Image img;
        PciDriver first(&virtio_block_ops, img.path.c_str());
        ASSERT_EQ(first.error(), 0);
        PciDriver second(&virtio_block_ops, img.path.c_str());
        EXPECT_EQ(second.error(), -EBUSY);
}

TEST(BlockCreate, read_only_device_offers_ro_and_no_discard) {
        Image img;
        PciDriver d(&virtio_block_ops, img.arg(",ro").c_str());
        ASSERT_EQ(d.error(), 0);
        uint64_t f = virtio_device_offered(d.device());
        EXPECT_TRUE(f & bit(F_RO));
        EXPECT_FALSE(f & bit(F_DISCARD));
        EXPECT_FALSE(f & bit(F_WRITE_ZEROES));
        EXPECT_TRUE(f & bit(F_FLUSH));
}

/* ---- configuration ---- */

TEST_F(Block, config_reports_capacity_seg_max_and_block_size) {
        EXPECT_EQ(config64(0), IMAGE_SIZE / 512);
        EXPECT_EQ(d_.bar_read(VIRTIO_PCI_DEVICE_OFF + 12, 4), 254u);
        EXPECT_EQ(d_.bar_read(VIRTIO_PCI_DEVICE_OFF + 20, 4), 512u);
        EXPECT_EQ(d_.bar_read(VIRTIO_PCI_DEVICE_OFF + 36, 4), 1u << 22);     /* max_discard_sectors */
        EXPECT_EQ(d_.bar_read(VIRTIO_PCI_DEVICE_OFF + 40, 4), 32u);          /* max_discard_seg */
        EXPECT_EQ(d_.bar_read(VIRTIO_PCI_DEVICE_OFF + 56, 1), 0u);           /* may_unmap: not sparse */
}

TEST_F(SparseBlock, config_says_write_zeroes_may_unmap) {
        EXPECT_EQ(d_.bar_read(VIRTIO_PCI_DEVICE_OFF + 56, 1), 1u);
}

/* ---- reads and writes ---- */

TEST_F(Block, read_returns_the_image_contents_and_counts_data_plus_status) {
        ASSERT_EQ(request(T_IN, 3, { { DATA, 4096, true } }), S_OK);
        auto got = get(DATA, 4096);
        for (uint64_t i = 0; i < 4096; i++)
                ASSERT_EQ(got[i], expected_byte(3 * 512 + i)) << i;
        EXPECT_EQ(last_used().len, 4097u);
}

TEST_F(Block, write_reaches_the_image_file) {
        std::vector<uint8_t> data(8192, 0x5a);
        put(DATA, data.data(), data.size());
        ASSERT_EQ(request(T_OUT, 10, { { DATA, 8192, false } }), S_OK);
        EXPECT_EQ(img_.read(10 * 512, 8192), data);
        EXPECT_EQ(img_.read(10 * 512 + 8192, 1)[0], expected_byte(10 * 512 + 8192));
        EXPECT_EQ(last_used().len, 1u);
}

TEST_F(Block, multi_segment_write_then_read_round_trips) {
        std::vector<uint8_t> a(512, 0x11), b(1536, 0x22), c(2048, 0x33);
        put(DATA, a.data(), a.size());
        put(DATA2, b.data(), b.size());
        put(DATA2 + 0x10000, c.data(), c.size());
        ASSERT_EQ(request(T_OUT, 100, { { DATA, 512, false }, { DATA2, 1536, false }, { DATA2 + 0x10000, 2048, false } }),
                  S_OK);
        ASSERT_EQ(request(T_IN, 100, { { 0x600000, 1024, true }, { 0x700000, 3072, true } }), S_OK);
        std::vector<uint8_t> want;
        want.insert(want.end(), a.begin(), a.end());
        want.insert(want.end(), b.begin(), b.end());
        want.insert(want.end(), c.begin(), c.end());
        std::vector<uint8_t> got = get(0x600000, 1024);
        auto rest = get(0x700000, 3072);
        got.insert(got.end(), rest.begin(), rest.end());
        EXPECT_EQ(got, want);
}

TEST_F(Block, header_data_and_status_in_one_descriptor_each_side_work) {
        /* Linux may put the header and data in one readable buffer. */
        Hdr h = { T_OUT, 0, 2 };
        std::vector<uint8_t> buf(16 + 512, 0x77);
        memcpy(buf.data(), &h, sizeof(h));
        put(HDR, buf.data(), buf.size());
        ASSERT_EQ(submit({ { HDR, 16 + 512, false }, { STATUS, 1, true } }), S_OK);
        EXPECT_EQ(img_.read(2 * 512, 512), std::vector<uint8_t>(512, 0x77));
}

TEST_F(Block, read_of_the_last_sector_succeeds) {
        EXPECT_EQ(request(T_IN, IMAGE_SIZE / 512 - 1, { { DATA, 512, true } }), S_OK);
}

TEST_F(Block, indirect_request_is_served) {
        header(T_IN, 0);
        q_.add_indirect(0x80000, { { HDR, 16, false }, { DATA, 512, true }, { STATUS, 1, true } });
        d_.kick(0);
        ASSERT_TRUE(d_.wait_used(q_, 1));
        EXPECT_EQ(get(STATUS, 1)[0], S_OK);
        EXPECT_EQ(get(DATA, 1)[0], expected_byte(0));
}

TEST_F(Block, many_requests_complete_in_order) {
        for (uint64_t i = 0; i < 20; i++) {
                Hdr h = { T_IN, 0, i };
                put(HDR + 32 * i, &h, sizeof(h));
                q_.add_chain({ { HDR + 32 * i, 16, false }, { DATA + 512 * i, 512, true }, { STATUS + i, 1, true } });
        }
        d_.kick(0);
        ASSERT_TRUE(d_.wait_used(q_, 20));
        for (uint16_t i = 0; i < 20; i++) {
                EXPECT_EQ(get(STATUS + i, 1)[0], S_OK);
                EXPECT_EQ(get(DATA + 512 * i, 1)[0], expected_byte(512 * (uint64_t) i));
        }
}

/* ---- requests made available together (merged into one call) ---- */

/* Queues requests without a kick, each with its own header and status
 * byte (request i: HDR + 32 * i, STATUS + i); then kicks once and waits. */
struct Req {
        uint32_t type;
        uint64_t sector;
        std::vector<Buf> data;
};

class Batch : public Block {
protected:
        std::vector<uint8_t> run(const std::vector<Req> &reqs) {
                for (size_t i = 0; i < reqs.size(); i++) {
                        Hdr h = { reqs[i].type, 0, reqs[i].sector };
                        uint8_t poison = 0xee;
                        put(HDR + 32 * i, &h, sizeof(h));
                        put(STATUS + i, &poison, 1);
                        std::vector<Buf> bufs = { { HDR + 32 * i, 16, false } };
                        bufs.insert(bufs.end(), reqs[i].data.begin(), reqs[i].data.end());
                        bufs.push_back({ STATUS + i, 1, true });
                        q_.add_chain(bufs);
                }
                d_.kick(0);
                expected_used_ = (uint16_t) (expected_used_ + reqs.size());
                EXPECT_TRUE(d_.wait_used(q_, expected_used_));
                return get(STATUS, reqs.size());
        }
};

TEST_F(Batch, consecutive_writes_are_all_written_and_acknowledged) {
        std::vector<uint8_t> a(1024, 0xa1), b(512, 0xb2), c(2048, 0xc3);
        put(DATA, a.data(), a.size());
        put(DATA2, b.data(), b.size());
        put(DATA2 + 0x10000, c.data(), c.size());
        auto st = run({ { T_OUT, 10, { { DATA, 1024, false } } },
                        { T_OUT, 12, { { DATA2, 512, false } } },
                        { T_OUT, 13, { { DATA2 + 0x10000, 2048, false } } } });
        EXPECT_EQ(st, std::vector<uint8_t>({ S_OK, S_OK, S_OK }));
        EXPECT_EQ(img_.read(10 * 512, 1024), a);
        EXPECT_EQ(img_.read(12 * 512, 512), b);
        EXPECT_EQ(img_.read(13 * 512, 2048), c);
        EXPECT_EQ(img_.read(17 * 512, 1)[0], expected_byte(17 * 512));
        for (uint16_t i = 0; i < 3; i++)
                EXPECT_EQ(q_.used(i).len, 1u);
}

TEST_F(Batch, consecutive_reads_each_get_their_data_and_length) {
        auto st = run({ { T_IN, 4, { { DATA, 512, true } } },
                        { T_IN, 5, { { DATA2, 1024, true } } },
                        { T_IN, 7, { { DATA2 + 0x10000, 512, true }, { DATA2 + 0x20000, 512, true } } } });
        EXPECT_EQ(st, std::vector<uint8_t>({ S_OK, S_OK, S_OK }));
        EXPECT_EQ(get(DATA, 1)[0], expected_byte(4 * 512));
        EXPECT_EQ(get(DATA2 + 1023, 1)[0], expected_byte(6 * 512 + 511));
        EXPECT_EQ(get(DATA2 + 0x10000, 1)[0], expected_byte(7 * 512));
        EXPECT_EQ(get(DATA2 + 0x20000, 1)[0], expected_byte(8 * 512));
        EXPECT_EQ(q_.used(0).len, 513u);
        EXPECT_EQ(q_.used(1).len, 1025u);
        EXPECT_EQ(q_.used(2).len, 1025u);
}

TEST_F(Batch, a_read_after_writes_to_the_same_sectors_sees_them) {
        std::vector<uint8_t> a(1024, 0x5c);
        put(DATA, a.data(), a.size());
        auto st = run({ { T_OUT, 20, { { DATA, 512, false } } },
                        { T_OUT, 21, { { DATA + 512, 512, false } } },
                        { T_IN, 20, { { DATA2, 1024, true } } },
                        { T_OUT, 22, { { DATA, 512, false } } } });
        EXPECT_EQ(st, std::vector<uint8_t>({ S_OK, S_OK, S_OK, S_OK }));
        EXPECT_EQ(get(DATA2, 1024), a);
        EXPECT_EQ(img_.read(22 * 512, 512), std::vector<uint8_t>(512, 0x5c));
}

TEST_F(Batch, a_request_past_capacity_fails_alone_between_good_ones) {
        uint64_t last = IMAGE_SIZE / 512 - 2;
        auto st = run({ { T_OUT, last - 2, { { DATA, 1024, false } } },
                        { T_OUT, last, { { DATA, 1024, false } } },
                        { T_OUT, last + 2, { { DATA, 512, false } } },
                        { T_IN, last - 2, { { DATA2, 512, true } } } });
        EXPECT_EQ(st, std::vector<uint8_t>({ S_OK, S_OK, S_IOERR, S_OK }));
        EXPECT_EQ(img_.size(), IMAGE_SIZE);
}

TEST_F(Batch, requests_not_one_after_the_other_are_each_served) {
        auto st = run({ { T_IN, 0, { { DATA, 512, true } } },
                        { T_IN, 2, { { DATA + 512, 512, true } } },
                        { T_FLUSH, 0, {} },
                        { T_IN, 3, { { DATA + 1024, 512, true } } },
                        { T_GET_ID, 0, { { DATA2, 20, true } } } });
        EXPECT_EQ(st, std::vector<uint8_t>({ S_OK, S_OK, S_OK, S_OK, S_OK }));
        EXPECT_EQ(get(DATA, 1)[0], expected_byte(0));
        EXPECT_EQ(get(DATA + 512, 1)[0], expected_byte(2 * 512));
        EXPECT_EQ(get(DATA + 1024, 1)[0], expected_byte(3 * 512));
}

TEST_F(Batch, more_requests_than_one_call_serves_all_complete) {
        /* 21 chains of 3 descriptors: as many as the 64-entry queue holds. */
        std::vector<Req> reqs;
        for (uint64_t i = 0; i < 21; i++)
                reqs.push_back({ T_IN, i, { { DATA + 4096 * i, 512, true } } });
        auto st = run(reqs);
        EXPECT_EQ(st, std::vector<uint8_t>(21, S_OK));
        for (uint64_t i = 0; i < 21; i++)
                EXPECT_EQ(get(DATA + 4096 * i + 511, 1)[0], expected_byte(512 * i + 511)) << i;
}

/* ---- flush and get id ---- */

TEST_F(Block, flush_succeeds) {
        EXPECT_EQ(request(T_FLUSH, 0, {}), S_OK);
}

TEST_F(NoFlushBlock, write_without_flush_negotiated_succeeds_write_through) {
        std::vector<uint8_t> data(512, 0x42);
        put(DATA, data.data(), data.size());
        ASSERT_EQ(request(T_OUT, 0, { { DATA, 512, false } }), S_OK);
        EXPECT_EQ(img_.read(0, 512), data);
}

TEST_F(SparseBlock, get_id_returns_the_serial_nul_padded) {
        std::vector<uint8_t> ff(20, 0xff);
        put(DATA, ff.data(), ff.size());
        ASSERT_EQ(request(T_GET_ID, 0, { { DATA, 20, true } }), S_OK);
        auto got = get(DATA, 20);
        std::string want = "disk-serial-0001";
        EXPECT_EQ(std::string(got.begin(), got.begin() + (long) want.size()), want);
        for (size_t i = want.size(); i < 20; i++)
                EXPECT_EQ(got[i], 0) << i;
}

TEST_F(Block, get_id_with_a_short_buffer_is_ioerr) {
        EXPECT_EQ(request(T_GET_ID, 0, { { DATA, 19, true } }), S_IOERR);
        EXPECT_TRUE(healthy());
}

/* ---- bad requests ---- */

TEST_F(Block, request_shorter_than_the_header_is_ioerr) {
        header(T_IN, 0);
        EXPECT_EQ(submit({ { HDR, 15, false }, { DATA, 512, true }, { STATUS, 1, true } }), S_IOERR);
        EXPECT_TRUE(healthy());
}

TEST_F(Block, request_without_a_status_byte_comes_back_unused) {
        header(T_IN, 0);
        q_.add_chain({ { HDR, 16, false } });
        d_.kick(0);
        ASSERT_TRUE(d_.wait_used(q_, 1));
        expected_used_ = 1;
        EXPECT_EQ(last_used().len, 0u);
        EXPECT_TRUE(healthy());
        EXPECT_EQ(request(T_IN, 0, { { DATA, 512, true } }), S_OK);
}

TEST_F(Block, read_past_capacity_is_ioerr) {
        EXPECT_EQ(request(T_IN, IMAGE_SIZE / 512, { { DATA, 512, true } }), S_IOERR);
        EXPECT_EQ(request(T_IN, IMAGE_SIZE / 512 - 1, { { DATA, 1024, true } }), S_IOERR);
}

TEST_F(Block, write_past_capacity_is_ioerr_and_does_not_grow_the_file) {
        EXPECT_EQ(request(T_OUT, IMAGE_SIZE / 512 - 1, { { DATA, 1024, false } }), S_IOERR);
        EXPECT_EQ(img_.size(), IMAGE_SIZE);
}

TEST_F(Block, sector_whose_byte_offset_overflows_is_ioerr) {
        EXPECT_EQ(request(T_IN, UINT64_MAX / 512 + 1, { { DATA, 512, true } }), S_IOERR);
        EXPECT_EQ(request(T_OUT, UINT64_MAX, { { DATA, 512, false } }), S_IOERR);
        EXPECT_EQ(img_.size(), IMAGE_SIZE);
}

TEST_F(Block, data_length_not_a_multiple_of_512_is_ioerr) {
        EXPECT_EQ(request(T_IN, 0, { { DATA, 100, true } }), S_IOERR);
        EXPECT_EQ(request(T_OUT, 0, { { DATA, 513, false } }), S_IOERR);
}

TEST_F(Block, unknown_request_types_are_unsupp) {
        EXPECT_EQ(request(T_GET_LIFETIME, 0, { { DATA, 16, true } }), S_UNSUPP);
        EXPECT_EQ(request(0x12345, 0, {}), S_UNSUPP);
        EXPECT_TRUE(healthy());
}

TEST_F(Block, buffer_outside_ram_marks_needs_reset) {
        header(T_IN, 0);
        q_.add_chain({ { HDR, 16, false }, { 1 * GiB, 512, true }, { STATUS, 1, true } });
        d_.kick(0);
        EXPECT_TRUE(d_.wait_status(VIRTIO_STATUS_NEEDS_RESET));
}

TEST_F(ReadOnlyBlock, write_to_a_read_only_disk_is_ioerr_and_writes_nothing) {
        std::vector<uint8_t> data(512, 0x99);
        put(DATA, data.data(), data.size());
        EXPECT_EQ(request(T_OUT, 0, { { DATA, 512, false } }), S_IOERR);
        EXPECT_EQ(img_.read(0, 1)[0], expected_byte(0));
}

TEST_F(ReadOnlyBlock, discard_and_write_zeroes_on_a_read_only_disk_are_ioerr) {
        EXPECT_EQ(discard(T_DISCARD, { { 0, 8, 0 } }), S_IOERR);
        EXPECT_EQ(discard(T_WRITE_ZEROES, { { 0, 8, 0 } }), S_IOERR);
        EXPECT_EQ(img_.read(0, 1)[0], expected_byte(0));
}

TEST_F(ReadOnlyBlock, reads_and_flush_work_on_a_read_only_disk) {
        EXPECT_EQ(request(T_IN, 1, { { DATA, 512, true } }), S_OK);
        EXPECT_EQ(get(DATA, 1)[0], expected_byte(512));
        EXPECT_EQ(request(T_FLUSH, 0, {}), S_OK);
}

/* ---- discard and write zeroes ---- */

TEST_F(SparseBlock, discard_punches_a_hole_in_a_sparse_image) {
        uint64_t before = img_.allocated();
        ASSERT_EQ(discard(T_DISCARD, { { 0, 256, 0 }, { 512, 256, 0 } }), S_OK);
        EXPECT_LE(img_.allocated() + 2 * 128 * KiB, before);
        EXPECT_EQ(img_.read(0, 4096), std::vector<uint8_t>(4096, 0));
        EXPECT_EQ(img_.size(), IMAGE_SIZE);
}

TEST_F(Block, discard_on_a_non_sparse_image_keeps_the_data) {
        ASSERT_EQ(discard(T_DISCARD, { { 0, 8, 0 } }), S_OK);
        EXPECT_EQ(img_.read(0, 1)[0], expected_byte(0));
}

TEST_F(Block, write_zeroes_zeroes_the_range) {
        ASSERT_EQ(discard(T_WRITE_ZEROES, { { 8, 8, 0 } }), S_OK);
        EXPECT_EQ(img_.read(8 * 512, 4096), std::vector<uint8_t>(4096, 0));
        EXPECT_EQ(img_.read(7 * 512, 1)[0], expected_byte(7 * 512));
        EXPECT_EQ(img_.read(16 * 512, 1)[0], expected_byte(16 * 512));
}

TEST_F(SparseBlock, write_zeroes_with_unmap_frees_blocks_of_a_sparse_image) {
        uint64_t before = img_.allocated();
        ASSERT_EQ(discard(T_WRITE_ZEROES, { { 0, 512, 1 } }), S_OK);
        EXPECT_LE(img_.allocated() + 256 * KiB, before);
        EXPECT_EQ(img_.read(0, 512 * 512), std::vector<uint8_t>(512 * 512, 0));
}

TEST_F(Block, discard_with_the_unmap_flag_is_unsupp) {
        EXPECT_EQ(discard(T_DISCARD, { { 0, 8, 1 } }), S_UNSUPP);
}

TEST_F(Block, discard_and_write_zeroes_with_unknown_flags_are_unsupp) {
        EXPECT_EQ(discard(T_DISCARD, { { 0, 8, 2 } }), S_UNSUPP);
        EXPECT_EQ(discard(T_WRITE_ZEROES, { { 0, 8, 0x80000000u } }), S_UNSUPP);
        EXPECT_EQ(img_.read(0, 1)[0], expected_byte(0));
}

TEST_F(Block, discard_segment_past_capacity_is_ioerr_and_nothing_is_done) {
        EXPECT_EQ(discard(T_WRITE_ZEROES, { { 0, 8, 0 }, { IMAGE_SIZE / 512 - 4, 8, 0 } }), S_IOERR);
        EXPECT_EQ(img_.read(0, 1)[0], expected_byte(0));
        EXPECT_EQ(discard(T_DISCARD, { { UINT64_MAX - 2, 8, 0 } }), S_IOERR);
}

TEST_F(Block, discard_segment_over_max_sectors_is_ioerr) {
        EXPECT_EQ(discard(T_DISCARD, { { 0, (1u << 22) + 1, 0 } }), S_IOERR);
}

TEST_F(Block, discard_payload_not_whole_segments_is_ioerr) {
        Seg s = { 0, 8, 0 };
        put(DATA, &s, sizeof(s));
        EXPECT_EQ(request(T_DISCARD, 0, { { DATA, 15, false } }), S_IOERR);
        EXPECT_EQ(request(T_DISCARD, 0, {}), S_IOERR);
}

TEST_F(Block, discard_with_too_many_segments_is_ioerr) {
        std::vector<Seg> segs(33, Seg{ 0, 8, 0 });
        EXPECT_EQ(discard(T_DISCARD, segs), S_IOERR);
}

TEST_F(NoFlushBlock, discard_not_negotiated_is_unsupp) {
        EXPECT_EQ(discard(T_DISCARD, { { 0, 8, 0 } }), S_UNSUPP);
        EXPECT_EQ(discard(T_WRITE_ZEROES, { { 0, 8, 0 } }), S_UNSUPP);
        EXPECT_EQ(img_.read(0, 1)[0], expected_byte(0));
}

/* ---- resize ---- */

TEST_F(Block, resize_grows_the_file_and_capacity_with_a_config_interrupt) {
        uint8_t gen = (uint8_t) d_.common_read(VIRTIO_PCI_COMMON_CFGGENERATION, 1);
        ASSERT_EQ(virtio_block_resize(d_.device(), 2 * MiB), 0);
        EXPECT_TRUE(d_.wait_vector(1));
        EXPECT_EQ(img_.size(), 2 * MiB);
        EXPECT_EQ(config64(0), 2 * MiB / 512);
        EXPECT_NE((uint8_t) d_.common_read(VIRTIO_PCI_COMMON_CFGGENERATION, 1), gen);
        EXPECT_EQ(request(T_IN, 2 * MiB / 512 - 1, { { DATA, 512, true } }), S_OK);
        EXPECT_EQ(get(DATA, 512), std::vector<uint8_t>(512, 0));
}

TEST_F(Block, resize_shrinks_and_old_sectors_become_out_of_range) {
        ASSERT_EQ(virtio_block_resize(d_.device(), 512 * KiB), 0);
        EXPECT_EQ(img_.size(), 512 * KiB);
        EXPECT_EQ(virtio_block_capacity(d_.device()), 512 * KiB);
        EXPECT_EQ(request(T_OUT, 512 * KiB / 512, { { DATA, 512, false } }), S_IOERR);
        EXPECT_EQ(img_.size(), 512 * KiB);
}

TEST_F(Block, resize_to_a_partial_sector_or_zero_is_einval) {
        EXPECT_EQ(virtio_block_resize(d_.device(), 1000), -EINVAL);
        EXPECT_EQ(virtio_block_resize(d_.device(), 0), -EINVAL);
        EXPECT_EQ(img_.size(), IMAGE_SIZE);
}

TEST_F(ReadOnlyBlock, resize_of_a_read_only_disk_is_erofs) {
        EXPECT_EQ(virtio_block_resize(d_.device(), 2 * MiB), -EROFS);
        EXPECT_EQ(img_.size(), IMAGE_SIZE);
}

TEST(BlockFind, finds_block_devices_by_their_order) {
        Image a, b;
        PciDriver rng(virtio_device_find("rng"), nullptr);
        PciDriver da(&virtio_block_ops, a.path.c_str());
        PciDriver db(&virtio_block_ops, b.path.c_str());
        VirtioPci *devs[] = { rng.transport(), da.transport(), db.transport() };
        VirtioDevice *got = nullptr;
        ASSERT_EQ(virtio_block_find(devs, 3, 1, &got), 0);
        EXPECT_EQ(got, db.device());
        EXPECT_EQ(virtio_block_find(devs, 3, 2, &got), -ENODEV);
}

TEST_F(Block, keeps_the_image_fd_listed) {
        int fds[16];
        EXPECT_GE(virtio_device_fds(d_.device(), fds, 16), 4u);
}

/* ---- the DISK_RESIZE control message (docs/control-protocol.md) ---- */

TEST(BlockControl, disk_resize_type_round_trips_its_name) {
        EXPECT_EQ(CONTROL_TYPE_DISK_RESIZE, 16);
        EXPECT_STREQ(control_type_to_string(CONTROL_TYPE_DISK_RESIZE), "disk-resize");
        EXPECT_EQ(control_type_from_string("disk-resize"), CONTROL_TYPE_DISK_RESIZE);
}

TEST(BlockControl, disk_resize_request_round_trips_in_little_endian) {
        uint8_t buf[CONTROL_DISK_RESIZE_REQUEST_SIZE];
        ASSERT_EQ(control_disk_resize_request_encode(3, 2 * GiB, buf), (size_t) CONTROL_DISK_RESIZE_REQUEST_SIZE);
        const uint8_t want[16] = { 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0 };
        EXPECT_EQ(memcmp(buf, want, sizeof(want)), 0);
        uint32_t index = 0;
        uint64_t size = 0;
        ASSERT_EQ(control_disk_resize_request_decode(buf, sizeof(buf), &index, &size), 0);
        EXPECT_EQ(index, 3u);
        EXPECT_EQ(size, 2 * GiB);
}

TEST(BlockControl, disk_resize_request_of_wrong_length_or_reserved_bits_is_refused) {
        uint8_t buf[CONTROL_DISK_RESIZE_REQUEST_SIZE + 1] = {};
        uint32_t index = 7;
        uint64_t size = 7;
        EXPECT_EQ(control_disk_resize_request_decode(buf, 15, &index, &size), -EBADMSG);
        EXPECT_EQ(control_disk_resize_request_decode(buf, 17, &index, &size), -EBADMSG);
        buf[5] = 1;
        EXPECT_EQ(control_disk_resize_request_decode(buf, 16, &index, &size), -EINVAL);
        EXPECT_EQ(index, 7u);
        EXPECT_EQ(size, 7u);
}

} // namespace
