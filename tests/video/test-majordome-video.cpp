/* SPDX-License-Identifier: BSD-3-Clause */
/* majordome-video as a process: its options, what it offers a vhost-user
 * front-end (features, queues, its configuration), and its jail seen from
 * outside. The binary's path: built in, or MAJORDOME_VIDEO. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <map>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "tests/device-process.h"
#include "tests/virtio/harness.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "common/vhost-user.h"

namespace {

const char *video_path() {
        const char *p = getenv("MAJORDOME_VIDEO");
        return p ? p : MAJORDOME_VIDEO_PATH;
}

using device_process::ask;
using device_process::expect_jailed;
using device_process::read_file;
using device_process::Result;
using device_process::status_field;

pid_t spawn(const std::vector<std::string> &args, int out_fd, int keep_fd = -1) {
        return device_process::spawn(video_path(), args, out_fd, keep_fd);
}

Result run(const std::vector<std::string> &args) {
        return device_process::run(video_path(), args);
}

TEST(MajordomeVideo, help_prints_usage_and_exits_zero) {
        Result r = run({ "--help" });
        EXPECT_EQ(r.status, 0);
        EXPECT_NE(r.output.find("Usage: majordome-video --fd N | --socket PATH"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("--decoder"), std::string::npos);
}

TEST(MajordomeVideo, bad_options_exit_one_with_a_message) {
        struct {
                std::vector<std::string> args;
                const char *message;
        } cases[] = {
                { {}, "give one of --fd N or --socket PATH" },
                { { "--fd", "3", "--socket", "/tmp/x" }, "give one of --fd N or --socket PATH" },
                { { "--fd", "3", "--decoder", "vaapi" }, "--decoder: expected ffmpeg" },
                { { "--fd", "3", "--seccomp", "off" }, "--seccomp: expected enforce or log" },
                { { "--fd", "3", "--threads", "0" }, "--threads: expected 1..16" },
                { { "--fd", "3", "--encoder", "vaapi" }, "--encoder: expected ffmpeg" },
                { { "--fd", "3", "--encoder", "ffmpeg", "--decoder", "ffmpeg" }, "at most one of --decoder and --encoder" },
                { { "--fd", "3", "--threads", "17" }, "--threads: expected 1..16" },
                { { "--fd", "x" }, "--fd: not a descriptor number" },
                { { "--fd", "3", "extra" }, "unexpected argument: extra" },
        };
        for (auto &c : cases) {
                Result r = run(c.args);
                EXPECT_EQ(r.status, 1) << c.message;
                EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
        }
        EXPECT_EQ(run({ "--bogus" }).status, 1);
}

void talk(int fd) {
        VhostUserMsg m = ask(fd, VHOST_USER_GET_FEATURES, nullptr, 0);
        uint64_t features = get_le64(m.payload);
        EXPECT_TRUE(features & (UINT64_C(1) << 32)) << "VIRTIO_F_VERSION_1";
        EXPECT_TRUE(features & (UINT64_C(1) << 0)) << "VIRTIO_VIDEO_F_RESOURCE_GUEST_PAGES";
        EXPECT_TRUE(features & (UINT64_C(1) << 1)) << "VIRTIO_VIDEO_F_RESOURCE_NON_CONTIG";
        EXPECT_FALSE(features & (UINT64_C(1) << 2)) << "no VIRTIO_VIDEO_F_RESOURCE_VIRTIO_OBJECT";
        EXPECT_TRUE(features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES));

        m = ask(fd, VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0);
        uint64_t protocol = get_le64(m.payload);
        EXPECT_TRUE(protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_CONFIG));
        uint8_t p[8];
        put_le64(p, protocol);
        ASSERT_EQ(vhost_user_send(fd, VHOST_USER_SET_PROTOCOL_FEATURES, 0, p, 8, nullptr, 0), 0);

        m = ask(fd, VHOST_USER_GET_QUEUE_NUM, nullptr, 0);
        EXPECT_EQ(get_le64(m.payload), 2u);

        uint8_t cfg[VHOST_USER_CONFIG_HEADER_SIZE + 44] = {};
        put_le32(cfg + 4, 44);
        m = ask(fd, VHOST_USER_GET_CONFIG, cfg, sizeof(cfg), 44);
        const uint8_t *c = m.payload + VHOST_USER_CONFIG_HEADER_SIZE;
        EXPECT_EQ(get_le32(c), 0u) << "version";
        EXPECT_EQ(get_le32(c + 4), 1024u) << "max_caps_length";
        EXPECT_EQ(get_le32(c + 8), 1024u) << "max_resp_length";
        EXPECT_EQ(std::string((const char *) c + 12, 6), "ffmpeg") << "device_name";
}

TEST(MajordomeVideo, offers_its_features_queues_and_config_over_fd) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--decoder", "ffmpeg" }, -1, sv[1]);
        close(sv[1]);
        talk(sv[0]);
        /* The front-end hangs up: the back-end exits 0. */
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST(MajordomeVideo, serves_the_first_connection_on_its_socket) {
        harness::TempDir dir("video-test");
        std::string path = dir.path + "/video.sock";
        pid_t pid = spawn({ "--socket", path }, -1);
        int fd = -1;
        for (int i = 0; i < 500 && connect_unix(path.c_str(), SOCK_STREAM, &fd) < 0; i++) {
                fd = -1;
                usleep(10000);
        }
        ASSERT_GE(fd, 0);
        talk(fd);
        close(fd);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
        EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed once taken";
}

TEST(MajordomeVideoJail, locks_itself_in_before_it_serves) {
        if (geteuid() != 0)
                GTEST_SKIP() << "checks the switch from root to nobody: run as root";
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]) }, -1, sv[1]);
        close(sv[1]);
        talk(sv[0]);
        expect_jailed(pid, true);
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

/* ---- a guest decoding through the real vhost-user seam ---- */

constexpr uint32_t IN = 0x100, OUT = 0x101;

std::vector<uint8_t> file_bytes(const std::string &path) {
        std::string s = read_file(path);
        return std::vector<uint8_t>(s.begin(), s.end());
}

int sh(const std::string &cmd) {
        int r = system(cmd.c_str());
        return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* A front-end of a few lines (this test is the VMM): guest RAM in a
 * GuestMemory shared by memfd, two rings, kick and call eventfds. The
 * driver side posts chains and reads the used rings. */
class Guest {
public:
        explicit Guest(int sock)
                : sock_(sock), mem_(new_memory()), cmdq_(mem_, 0x10000, 64), evq_(mem_, 0x20000, 16) {
                uint8_t f[8];
                put_le64(f, (UINT64_C(1) << 32) | 3);
                EXPECT_EQ(vhost_user_send(sock, VHOST_USER_SET_FEATURES, 0, f, 8, nullptr, 0), 0);
                EXPECT_EQ(vhost_user_send(sock, VHOST_USER_SET_OWNER, 0, nullptr, 0, nullptr, 0), 0);
                uint8_t t[8 + VHOST_USER_MEM_REGION_SIZE] = {};
                put_le32(t, 1);
                put_le64(t + 8, 0);
                put_le64(t + 16, MEM);
                put_le64(t + 24, UA);
                put_le64(t + 32, 0);
                EXPECT_EQ(vhost_user_send(sock, VHOST_USER_SET_MEM_TABLE, 0, t, sizeof(t), &mem_->memfd, 1), 0);
                setup_ring(0, cmdq_);
                setup_ring(1, evq_);
        }
        ~Guest() {
                for (int fd : { kick_[0], kick_[1], call_[0], call_[1] })
                        if (fd >= 0)
                                close(fd);
                guest_memory_free(mem_);
        }

        GuestMemory *mem() { return mem_; }
        int sock() const { return sock_; }

        /* Posts a command (req at a fresh place, a 256-byte answer buffer);
         * its head. */
        uint16_t send(const std::vector<uint8_t> &req) {
                uint64_t at = scratch_;
                scratch_ += 0x2000;
                EXPECT_EQ(guest_write(mem_, at, req.data(), req.size()), 0);
                uint16_t head = cmdq_.add_chain({ { at, (uint32_t) req.size(), false }, { at + 0x1000, 256, true } });
                answers_[head] = at + 0x1000;
                kick(0);
                return head;
        }
        /* Waits for head's answer (others that came meanwhile are kept). */
        std::vector<uint8_t> wait(uint16_t head, int timeout_ms = 5000) {
                for (int t = 0; t < timeout_ms / 10; t++) {
                        collect();
                        auto it = done_.find(head);
                        if (it != done_.end()) {
                                auto b = it->second;
                                done_.erase(it);
                                return b;
                        }
                        usleep(10000);
                }
                ADD_FAILURE() << "no answer for chain " << head;
                return {};
        }
        std::vector<uint8_t> call(const std::vector<uint8_t> &req) { return wait(send(req)); }
        bool answered(uint16_t head) {
                collect();
                return done_.count(head) != 0;
        }
        void post_events(unsigned n) {
                for (unsigned i = 0; i < n; i++)
                        evq_.add_chain({ { 0x30000 + i * 8, 8, true } });
                kick(1);
        }
        /* Events written so far. */
        std::vector<std::vector<uint8_t>> events() {
                std::vector<std::vector<uint8_t>> out;
                for (uint16_t i = 0; i < evq_.used_idx(); i++) {
                        VirtqUsedElem u = evq_.used(i);
                        std::vector<uint8_t> e(8);
                        EXPECT_EQ(u.len, 8u);
                        EXPECT_EQ(guest_read(mem_, 0x30000 + u.id * 8, e.data(), 8), 0);
                        out.push_back(e);
                }
                return out;
        }

private:
        static constexpr uint64_t MEM = 16 * MiB, UA = 0x7f0000000000;

        static GuestMemory *new_memory() {
                GuestMemory *m;
                if (guest_memory_new(MEM, &m) < 0)
                        abort();
                return m;
        }

        void setup_ring(unsigned i, const harness::VirtqDriver &q) {
                uint8_t st[8], a[VHOST_USER_VRING_ADDR_SIZE] = {}, idx[8];
                put_le32(st, i);
                put_le32(st + 4, q.size());
                EXPECT_EQ(vhost_user_send(sock_, VHOST_USER_SET_VRING_NUM, 0, st, 8, nullptr, 0), 0);
                put_le32(a, i);
                put_le64(a + 8, UA + q.desc_gpa());
                put_le64(a + 16, UA + q.used_gpa());
                put_le64(a + 24, UA + q.avail_gpa());
                EXPECT_EQ(vhost_user_send(sock_, VHOST_USER_SET_VRING_ADDR, 0, a, sizeof(a), nullptr, 0), 0);
                put_le32(st + 4, 0);
                EXPECT_EQ(vhost_user_send(sock_, VHOST_USER_SET_VRING_BASE, 0, st, 8, nullptr, 0), 0);
                call_[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                kick_[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                put_le64(idx, i);
                EXPECT_EQ(vhost_user_send(sock_, VHOST_USER_SET_VRING_CALL, 0, idx, 8, &call_[i], 1), 0);
                EXPECT_EQ(vhost_user_send(sock_, VHOST_USER_SET_VRING_KICK, 0, idx, 8, &kick_[i], 1), 0);
                put_le32(st + 4, 1);
                EXPECT_EQ(vhost_user_send(sock_, VHOST_USER_SET_VRING_ENABLE, 0, st, 8, nullptr, 0), 0);
        }
        void kick(unsigned i) {
                uint64_t one = 1;
                EXPECT_EQ(write(kick_[i], &one, 8), 8);
        }
        void collect() {
                while (seen_ != cmdq_.used_idx()) {
                        VirtqUsedElem u = cmdq_.used(seen_++);
                        std::vector<uint8_t> b(u.len);
                        EXPECT_EQ(guest_read(mem_, answers_[(uint16_t) u.id], b.data(), u.len), 0);
                        done_[(uint16_t) u.id] = b;
                }
        }

        int sock_;
        GuestMemory *mem_;
        harness::VirtqDriver cmdq_, evq_;
        int kick_[2] = { -1, -1 }, call_[2] = { -1, -1 };
        uint64_t scratch_ = 0x100000;
        std::map<uint16_t, uint64_t> answers_;
        std::map<uint16_t, std::vector<uint8_t>> done_;
        uint16_t seen_ = 0;
};

struct Cmd {
        std::vector<uint8_t> b;
        Cmd(uint32_t type, uint32_t stream) : b(8) {
                put_le32(&b[0], type);
                put_le32(&b[4], stream);
        }
        Cmd &u32(uint32_t v) {
                b.resize(b.size() + 4);
                put_le32(&b[b.size() - 4], v);
                return *this;
        }
        Cmd &u64(uint64_t v) {
                b.resize(b.size() + 8);
                put_le64(&b[b.size() - 8], v);
                return *this;
        }
        Cmd &zero(size_t n) {
                b.resize(b.size() + n);
                return *this;
        }
};

Cmd resource(uint32_t queue, uint32_t id, uint64_t gpa, uint32_t len) {
        return Cmd(0x104, 1).u32(queue).u32(id).u32(1).u32(1).zero(32).u32(1).zero(28).u64(gpa).u32(len).u32(0);
}

Cmd queue(uint32_t q, uint32_t id, uint64_t ts, uint32_t size) {
        return Cmd(0x105, 1).u32(q).u32(id).u64(ts).u32(1).u32(size).zero(32);
}

/* VP8 in IVF: each frame one input buffer. */
std::vector<std::vector<uint8_t>> ivf_frames(const std::vector<uint8_t> &f) {
        std::vector<std::vector<uint8_t>> out;
        for (size_t off = 32; off + 12 <= f.size();) {
                uint32_t n = get_le32(&f[off]);
                off += 12;
                if (off + n > f.size())
                        break;
                out.emplace_back(f.begin() + (long) off, f.begin() + (long) (off + n));
                off += n;
        }
        return out;
}

/* A stream made by the ffmpeg CLI (IVF: one frame per input buffer; raw
 * H.264/HEVC: 1000-byte chunks), decoded by a guest through the jailed
 * process over vhost-user, every frame compared with ffmpeg's. */
void decode_through_vhost_user(const char *encoder, uint32_t format, const char *ext, unsigned threads = 1) {
        if (sh(std::string("ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw ") + encoder) != 0)
                GTEST_SKIP() << "the ffmpeg CLI with " << encoder << " is missing (tools/install-deps.sh)";
        harness::TempDir dir("video-test");
        std::string stream = dir.path + "/a." + ext, raw = dir.path + "/a.nv12";
        bool ivf = std::string(ext) == "ivf";
        ASSERT_EQ(sh("ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=160x120:rate=30 -frames:v 8 "
                     "-pix_fmt yuv420p -c:v " + std::string(encoder) + (ivf ? " -f ivf " : " ") +
                     (std::string(encoder) == "libx265" ? "-x265-params log-level=none " : "") + stream), 0);
        ASSERT_EQ(sh("ffmpeg -hide_banner -loglevel error -i " + stream + " -f rawvideo -pix_fmt nv12 " + raw), 0);
        auto bytes = file_bytes(stream);
        std::vector<std::vector<uint8_t>> inputs;
        if (ivf)
                inputs = ivf_frames(bytes);
        else
                for (size_t off = 0; off < bytes.size(); off += 1000)
                        inputs.emplace_back(bytes.begin() + (long) off,
                                            bytes.begin() + (long) std::min(bytes.size(), off + 1000));
        auto want = file_bytes(raw);
        const size_t frame_size = 160 * 120 * 3 / 2;
        ASSERT_EQ(want.size(), 8 * frame_size);

        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--threads", std::to_string(threads) }, -1, sv[1]);
        close(sv[1]);
        {
                Guest g(sv[0]);
                const uint64_t in_gpa = 0x400000, out_gpa = 0x800000;
                g.post_events(4);
                ASSERT_EQ(g.call(Cmd(0x101, 1).u32(0).u32(0).u32(format).zero(68).b), (Cmd(0x200, 1).b));
                ASSERT_EQ(g.call(resource(IN, 1, in_gpa, 0x100000).b), (Cmd(0x200, 1).b));
                ASSERT_EQ(g.call(resource(OUT, 1, out_gpa, 0x100000).b), (Cmd(0x200, 1).b));
                std::vector<std::vector<uint8_t>> got;
                bool eos = false;
                uint16_t out = g.send(queue(OUT, 1, 0, 0).b);
                /* An answered output: its frame read, the buffer queued again. */
                auto service = [&]() {
                        if (eos || !g.answered(out))
                                return;
                        auto o = g.wait(out);
                        ASSERT_EQ(o.size(), 24u);
                        if (get_le32(&o[16]) == 2) {
                                eos = true;
                                return;
                        }
                        ASSERT_EQ(get_le32(&o[16]), 0u) << "output flags";
                        ASSERT_EQ(get_le32(&o[20]), frame_size);
                        std::vector<uint8_t> f(frame_size);
                        ASSERT_EQ(guest_read(g.mem(), out_gpa, f.data(), f.size()), 0);
                        got.push_back(f);
                        out = g.send(queue(OUT, 1, 0, 0).b);
                };
                for (size_t i = 0; i < inputs.size(); i++) {
                        ASSERT_EQ(guest_write(g.mem(), in_gpa, inputs[i].data(), inputs[i].size()), 0);
                        uint16_t in = g.send(queue(IN, 1, i, (uint32_t) inputs[i].size()).b);
                        for (int t = 0; t < 500 && !g.answered(in); t++) {
                                service();
                                usleep(10000);
                        }
                        auto r = g.wait(in);
                        ASSERT_EQ(r.size(), 24u);
                        EXPECT_EQ(get_le32(&r[16]), 0u) << "input " << i << " flags";
                        service();
                }
                /* The drain: the frames left, an output buffer back empty
                 * with EOS, then its answer. */
                uint16_t drain = g.send(Cmd(0x103, 1).b);
                for (int t = 0; t < 500 && !(eos && g.answered(drain)); t++) {
                        service();
                        usleep(10000);
                }
                EXPECT_TRUE(eos);
                EXPECT_EQ(g.wait(drain), (Cmd(0x200, 1).b));
                ASSERT_EQ(got.size(), 8u);
                for (size_t i = 0; i < got.size(); i++)
                        EXPECT_TRUE(std::equal(got[i].begin(), got[i].end(), want.begin() + (long) (i * frame_size)))
                                << "frame " << i;
                auto ev = g.events();
                ASSERT_EQ(ev.size(), 1u);
                EXPECT_EQ(ev[0], (Cmd(0x200, 1).b)) << "DECODER_RESOLUTION_CHANGED for stream 1";
                /* Jailed all along, and still alive: nothing it did was refused. */
                EXPECT_EQ(status_field(pid, "Seccomp"), "2");
        }
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST(MajordomeVideoDecode, decodes_vp8_through_vhost_user_jailed_like_ffmpeg) {
        decode_through_vhost_user("libvpx", 0x1004, "ivf");
}

TEST(MajordomeVideoDecode, decodes_vp9_through_vhost_user_jailed_like_ffmpeg) {
        decode_through_vhost_user("libvpx-vp9", 0x1005, "ivf");
}

TEST(MajordomeVideoDecode, decodes_h264_through_vhost_user_jailed_like_ffmpeg) {
        decode_through_vhost_user("libx264", 0x1002, "h264");
}

/* libavcodec's frame threads in the jail: clone for threads
 * (common.policy) and nothing more. */
TEST(MajordomeVideoDecode, decodes_h264_with_4_threads_through_vhost_user_jailed_like_ffmpeg) {
        decode_through_vhost_user("libx264", 0x1002, "h264", 4);
}

TEST(MajordomeVideoDecode, decodes_hevc_through_vhost_user_jailed_like_ffmpeg) {
        decode_through_vhost_user("libx265", 0x1003, "hevc");
}

/* The front-end stops the command ring while a RESOURCE_QUEUE waits for
 * its answer (a VM stopping, a guest resetting the device): the device
 * resets and forgets the chain instead of writing into a ring that is
 * gone; it goes on serving. */
TEST(MajordomeVideoDecode, ring_stopped_with_a_command_waiting_resets_the_device) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]) }, -1, sv[1]);
        close(sv[1]);
        {
                Guest g(sv[0]);
                ASSERT_EQ(g.call(Cmd(0x101, 1).u32(0).u32(0).u32(0x1004).zero(68).b), (Cmd(0x200, 1).b));
                ASSERT_EQ(g.call(resource(OUT, 1, 0x800000, 0x100000).b), (Cmd(0x200, 1).b));
                uint16_t out = g.send(queue(OUT, 1, 0, 0).b);
                EXPECT_EQ(g.call(Cmd(0x108, 1).u32(OUT).u32(0).b).size(), 120u) << "it answers meanwhile";
                EXPECT_FALSE(g.answered(out));
                uint8_t st[8] = {};
                VhostUserMsg m = ask(g.sock(), VHOST_USER_GET_VRING_BASE, st, 8);
                EXPECT_EQ(get_le32(m.payload + 4), 4u) << "four chains taken";
                EXPECT_FALSE(g.answered(out)) << "the waiting chain is not pushed into a stopped ring";
                m = ask(g.sock(), VHOST_USER_GET_QUEUE_NUM, nullptr, 0);
                EXPECT_EQ(get_le64(m.payload), 2u);
        }
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

/* The encoder (--encoder ffmpeg) in its jail: 8 NV12 frames of testsrc2
 * encoded through vhost-user; ffmpeg decodes the packets and measures the
 * PSNR against the frames. */
void encode_through_vhost_user(const char *encoder, uint32_t format, bool ivf) {
        if (sh(std::string("ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw ") + encoder) != 0)
                GTEST_SKIP() << "the ffmpeg CLI with " << encoder << " is missing (tools/install-deps.sh)";
        harness::TempDir dir("video-test");
        std::string raw = dir.path + "/in.nv12", coded = dir.path + (ivf ? "/out.ivf" : "/out.bit");
        const uint32_t w = 160, h = 128;
        const size_t frame_size = w * h * 3 / 2;
        ASSERT_EQ(sh("ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=160x128:rate=30 -frames:v 8 "
                     "-f rawvideo -pix_fmt nv12 " + raw), 0);
        auto frames = file_bytes(raw);
        ASSERT_EQ(frames.size(), 8 * frame_size);

        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--encoder", "ffmpeg" }, -1, sv[1]);
        close(sv[1]);
        std::vector<std::vector<uint8_t>> pkts;
        {
                Guest g(sv[0]);
                const uint64_t in_gpa = 0x400000, out_gpa = 0x800000;
                ASSERT_EQ(g.call(Cmd(0x101, 1).u32(0).u32(0).u32(format).zero(68).b), (Cmd(0x200, 1).b));
                Cmd params = Cmd(0x109, 1).u32(IN).u32(3 /* NV12 */).u32(w).u32(h).zero(24).u32(30).zero(68);
                ASSERT_EQ(g.call(params.b), (Cmd(0x200, 1).b));
                ASSERT_EQ(g.call(resource(IN, 1, in_gpa, 0x100000).b), (Cmd(0x200, 1).b));
                ASSERT_EQ(g.call(resource(OUT, 1, out_gpa, 0x100000).b), (Cmd(0x200, 1).b));
                bool eos = false;
                uint16_t out = g.send(queue(OUT, 1, 0, 0).b);
                auto service = [&]() {
                        if (eos || !g.answered(out))
                                return;
                        auto o = g.wait(out);
                        ASSERT_EQ(o.size(), 24u);
                        if (get_le32(&o[16]) == 2) {
                                eos = true;
                                return;
                        }
                        ASSERT_NE(get_le32(&o[16]) & 0xc, 0u) << "IFRAME or PFRAME";
                        std::vector<uint8_t> p(get_le32(&o[20]));
                        ASSERT_EQ(guest_read(g.mem(), out_gpa, p.data(), p.size()), 0);
                        pkts.push_back(p);
                        out = g.send(queue(OUT, 1, 0, 0).b);
                };
                for (size_t i = 0; i < 8; i++) {
                        ASSERT_EQ(guest_write(g.mem(), in_gpa, frames.data() + i * frame_size, frame_size), 0);
                        auto r = g.call(queue(IN, 1, i, (uint32_t) frame_size).b);
                        ASSERT_EQ(r.size(), 24u);
                        EXPECT_EQ(get_le32(&r[16]), 0u) << "input " << i << " flags";
                        for (int t = 0; t < 100 && !g.answered(out); t++)
                                usleep(5000);
                        service();
                }
                uint16_t drain = g.send(Cmd(0x103, 1).b);
                for (int t = 0; t < 500 && !(eos && g.answered(drain)); t++) {
                        service();
                        usleep(10000);
                }
                EXPECT_TRUE(eos);
                EXPECT_EQ(g.wait(drain), (Cmd(0x200, 1).b));
                EXPECT_EQ(status_field(pid, "Seccomp"), "2");
        }
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;

        ASSERT_EQ(pkts.size(), 8u);
        {
                FILE *f = fopen(coded.c_str(), "wb");
                ASSERT_NE(f, nullptr);
                if (ivf) {
                        uint8_t hd[32] = { 'D', 'K', 'I', 'F' };
                        put_le16(hd + 6, 32);
                        memcpy(hd + 8, format == 0x1004 ? "VP80" : "VP90", 4);
                        put_le16(hd + 12, (uint16_t) w);
                        put_le16(hd + 14, (uint16_t) h);
                        put_le32(hd + 16, 30);
                        put_le32(hd + 20, 1);
                        put_le32(hd + 24, (uint32_t) pkts.size());
                        fwrite(hd, 1, sizeof(hd), f);
                }
                for (size_t i = 0; i < pkts.size(); i++) {
                        if (ivf) {
                                uint8_t fh[12];
                                put_le32(fh, (uint32_t) pkts[i].size());
                                put_le64(fh + 4, i);
                                fwrite(fh, 1, sizeof(fh), f);
                        }
                        fwrite(pkts[i].data(), 1, pkts[i].size(), f);
                }
                fclose(f);
        }
        std::string log = dir.path + "/psnr.log";
        ASSERT_EQ(sh("ffmpeg -hide_banner -nostats -f rawvideo -pix_fmt nv12 -s 160x128 -framerate 30 -i " + raw +
                     (ivf ? " -r 30 -i " : format == 0x1003 ? " -f hevc -r 30 -i " : " -f h264 -r 30 -i ") + coded + " -lavfi '[1:v][0:v]psnr' -f null - 2>" + log),
                  0);
        std::string text = read_file(log);
        size_t at = text.find("average:");
        ASSERT_NE(at, std::string::npos) << text;
        EXPECT_GT(atof(text.c_str() + at + 8), 38.0) << text.substr(at, 40);
}

TEST(MajordomeVideoEncode, encodes_h264_through_vhost_user_jailed_psnr_above_38db) {
        encode_through_vhost_user("libx264", 0x1002, false);
}

TEST(MajordomeVideoEncode, encodes_hevc_through_vhost_user_jailed_psnr_above_38db) {
        encode_through_vhost_user("libx265", 0x1003, false);
}

TEST(MajordomeVideoEncode, encodes_vp8_through_vhost_user_jailed_psnr_above_38db) {
        encode_through_vhost_user("libvpx", 0x1004, true);
}

TEST(MajordomeVideoEncode, encodes_vp9_through_vhost_user_jailed_psnr_above_38db) {
        encode_through_vhost_user("libvpx-vp9", 0x1005, true);
}

} // namespace
