/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtio-video decoder core (video/virtio-video.c) through its API, on
 * a GuestMemory, played as a guest driver would: streams made now by
 * Debian's ffmpeg CLI, decoded through the device into output resources on
 * scattered guest pages, each NV12 frame compared byte for byte with
 * ffmpeg's own decode of the same stream; and each hostile input's answer.
 * Without the ffmpeg CLI the stream tests are skipped, saying so. */
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/virtio/harness.h"
#include "common/unaligned.h"
#include "video/virtio-video.h"

using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint64_t MEM_SIZE = 64 * MiB;
constexpr uint64_t INPUT_BASE = 0x100000;     /* input resource i: 1 MiB at INPUT_BASE + i MiB */
constexpr uint64_t OUTPUT_BASE = 0x1000000;   /* output resource i: 2 MiB, scattered 64 KiB pieces */
constexpr unsigned N_INPUT = 4, N_OUTPUT = 6;
constexpr uint32_t IN = VIRTIO_VIDEO_QUEUE_TYPE_INPUT, OUT = VIRTIO_VIDEO_QUEUE_TYPE_OUTPUT;

struct Req {
        Bytes b;
        Req(uint32_t type, uint32_t stream) : b(8, 0) {
                put_le32(&b[0], type);
                put_le32(&b[4], stream);
        }
        Req &u32(uint32_t v) {
                size_t n = b.size();
                b.resize(n + 4);
                put_le32(&b[n], v);
                return *this;
        }
        Req &u64(uint64_t v) {
                size_t n = b.size();
                b.resize(n + 8);
                put_le64(&b[n], v);
                return *this;
        }
        Req &zero(size_t n) {
                b.resize(b.size() + n, 0);
                return *this;
        }
};

Bytes hdr(uint32_t type, uint32_t stream) {
        return Req(type, stream).b;
}

/* Runs a shell command; its exit status. */
int sh(const std::string &cmd) {
        int r = system(cmd.c_str());
        return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

bool have_ffmpeg() {
        static int have = -1;
        if (have < 0)
                have = sh("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
        return have;
}

bool have_encoder(const char *name) {
        return have_ffmpeg() &&
               sh(std::string("ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw ") + name) == 0;
}

Bytes read_file(const std::string &path) {
        std::ifstream f(path, std::ios::binary);
        return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/* The frames of an IVF file (VP8, VP9): 32-byte header, then each frame a
 * 12-byte header (le32 size, le64 pts) and its bytes. */
std::vector<Bytes> ivf_frames(const Bytes &f) {
        std::vector<Bytes> out;
        size_t off = 32;
        while (off + 12 <= f.size()) {
                uint32_t n = get_le32(&f[off]);
                off += 12;
                if (off + n > f.size())
                        break;
                out.emplace_back(f.begin() + (long) off, f.begin() + (long) (off + n));
                off += n;
        }
        return out;
}

std::vector<Bytes> chunks(const Bytes &f, size_t size) {
        std::vector<Bytes> out;
        for (size_t off = 0; off < f.size(); off += size)
                out.emplace_back(f.begin() + (long) off, f.begin() + (long) std::min(f.size(), off + size));
        return out;
}

struct Response {
        uint64_t tag;
        Bytes b;
};

struct DecodedFrame {
        Bytes data;
        uint64_t timestamp;
};

class VideoTest : public ::testing::Test {
protected:
        void SetUp() override {
                ASSERT_EQ(guest_memory_new(MEM_SIZE, &mem), 0);
                VirtioVideoOptions o = {};
                ASSERT_EQ(virtio_video_new(&o, respond_cb, this, &v), 0);
                dir = std::make_unique<harness::TempDir>("video-test");
        }
        void TearDown() override {
                virtio_video_free(v);
                guest_memory_free(mem);
        }

        static void respond_cb(void *ctx, uint64_t tag, const void *resp, size_t len) {
                auto *t = static_cast<VideoTest *>(ctx);
                const uint8_t *p = static_cast<const uint8_t *>(resp);
                t->responses.push_back({ tag, Bytes(p, p + len) });
        }

        /* Sends a command; its answer when it came at once, else empty
         * (answered later: find it by tag in responses). */
        Bytes cmd(const Req &r, size_t cap = VIRTIO_VIDEO_MAX_RESPONSE, uint64_t *ret_tag = nullptr) {
                uint64_t tag = next_tag++;
                if (ret_tag)
                        *ret_tag = tag;
                virtio_video_command(v, mem, tag, r.b.data(), r.b.size(), cap);
                for (auto it = responses.begin(); it != responses.end(); ++it)
                        if (it->tag == tag) {
                                Bytes b = it->b;
                                responses.erase(it);
                                return b;
                        }
                return {};
        }

        /* Sends a command answered later (or at once: its answer then
         * stays in responses, in order); its tag. */
        uint64_t send(const Req &r, size_t cap = VIRTIO_VIDEO_MAX_RESPONSE) {
                uint64_t tag = next_tag++;
                virtio_video_command(v, mem, tag, r.b.data(), r.b.size(), cap);
                return tag;
        }

        std::vector<Bytes> events() {
                std::vector<Bytes> out;
                uint8_t e[VIRTIO_VIDEO_EVENT_SIZE];
                while (virtio_video_next_event(v, e))
                        out.emplace_back(e, e + sizeof(e));
                return out;
        }

        Bytes stream_create(uint32_t id, uint32_t format, uint32_t in_mem = 0, uint32_t out_mem = 0) {
                return cmd(Req(VIRTIO_VIDEO_CMD_STREAM_CREATE, id).u32(in_mem).u32(out_mem).u32(format).zero(68));
        }
        static Req resource_create_req(uint32_t stream, uint32_t queue, uint32_t id,
                                       const std::vector<std::pair<uint64_t, uint32_t>> &entries) {
                Req r(VIRTIO_VIDEO_CMD_RESOURCE_CREATE, stream);
                r.u32(queue).u32(id).u32(VIRTIO_VIDEO_PLANES_LAYOUT_SINGLE_BUFFER).u32(1).zero(32);
                r.u32((uint32_t) entries.size()).zero(28);
                for (auto &e : entries)
                        r.u64(e.first).u32(e.second).u32(0);
                return r;
        }
        static uint64_t input_gpa(unsigned i) { return INPUT_BASE + i * MiB; }
        /* Output resource i: 32 pieces of 64 KiB, in reverse order, each
         * one a hole apart: a scatter list the device must follow. */
        static std::vector<std::pair<uint64_t, uint32_t>> output_entries(unsigned i) {
                std::vector<std::pair<uint64_t, uint32_t>> e;
                uint64_t base = OUTPUT_BASE + (uint64_t) i * 4 * MiB;
                for (int k = 31; k >= 0; k--)
                        e.push_back({ base + (uint64_t) k * 128 * KiB, 64 * KiB });
                return e;
        }
        Bytes read_output(unsigned i, size_t size) {
                Bytes out(size);
                size_t off = 0;
                for (auto &e : output_entries(i)) {
                        size_t n = std::min((size_t) e.second, size - off);
                        EXPECT_EQ(guest_read(mem, e.first, out.data() + off, n), 0);
                        off += n;
                        if (off == size)
                                break;
                }
                return out;
        }
        void setup_resources(uint32_t stream) {
                for (unsigned i = 0; i < N_INPUT; i++)
                        ASSERT_EQ(cmd(resource_create_req(stream, IN, 100 + i, { { input_gpa(i), (uint32_t) MiB } })),
                                  hdr(VIRTIO_VIDEO_RESP_OK_NODATA, stream));
                for (unsigned i = 0; i < N_OUTPUT; i++)
                        ASSERT_EQ(cmd(resource_create_req(stream, OUT, 200 + i, output_entries(i))),
                                  hdr(VIRTIO_VIDEO_RESP_OK_NODATA, stream));
        }
        Req queue_req(uint32_t stream, uint32_t queue, uint32_t id, uint64_t ts, uint32_t size) {
                return Req(VIRTIO_VIDEO_CMD_RESOURCE_QUEUE, stream).u32(queue).u32(id).u64(ts).u32(1).u32(size).zero(32);
        }

        /* Plays the guest: queues the chunks through the input resources
         * and every output resource, re-queues each output once its frame
         * is read, drains. Returns the frames; *ret_eos whether the drain
         * ended with an EOS buffer and an OK answer. */
        std::vector<DecodedFrame> decode(uint32_t stream, const std::vector<Bytes> &in, bool *ret_eos = nullptr,
                                         bool *ret_error = nullptr) {
                std::vector<DecodedFrame> frames;
                std::map<uint64_t, std::pair<uint32_t, unsigned>> pending; /* tag -> (queue, index) */
                std::vector<bool> in_busy(N_INPUT, false);
                uint64_t drain_tag = 0;
                bool eos = false, drained = false, failed = false;

                auto collect = [&]() {
                        for (;;) {
                                std::vector<Response> rs;
                                rs.swap(responses);
                                if (rs.empty())
                                        return;
                                for (auto &r : rs) {
                                        if (r.b.size() == 8 && get_le32(&r.b[0]) >= VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION &&
                                            r.tag != drain_tag) {
                                                /* A queue refused. */
                                                pending.erase(r.tag);
                                                failed = true;
                                                continue;
                                        }
                                        if (drain_tag && r.tag == drain_tag) {
                                                drained = get_le32(&r.b[0]) == VIRTIO_VIDEO_RESP_OK_NODATA;
                                                failed |= !drained;
                                                drain_tag = 0;
                                                continue;
                                        }
                                        auto it = pending.find(r.tag);
                                        ASSERT_NE(it, pending.end());
                                        auto [q, i] = it->second;
                                        pending.erase(it);
                                        ASSERT_EQ(r.b.size(), 24u);
                                        ASSERT_EQ(get_le32(&r.b[0]), (uint32_t) VIRTIO_VIDEO_RESP_OK_RESOURCE_QUEUE);
                                        uint32_t flags = get_le32(&r.b[16]), size = get_le32(&r.b[20]);
                                        if (q == IN) {
                                                in_busy[i] = false;
                                                failed |= (flags & VIRTIO_VIDEO_BUFFER_FLAG_ERR) != 0;
                                                continue;
                                        }
                                        if (flags & VIRTIO_VIDEO_BUFFER_FLAG_EOS) {
                                                eos = true;
                                                continue;
                                        }
                                        if (flags & VIRTIO_VIDEO_BUFFER_FLAG_ERR)
                                                failed = true;
                                        else
                                                frames.push_back({ read_output(i, size), get_le64(&r.b[8]) });
                                        pending[send(queue_req(stream, OUT, 200 + i, 0, 0), 24)] = { OUT, i };
                                }
                        }
                };
                for (unsigned i = 0; i < N_OUTPUT; i++) {
                        pending[next_tag] = { OUT, i };
                        send(queue_req(stream, OUT, 200 + i, 0, 0), 24);
                        collect();
                }
                for (size_t k = 0; k < in.size() && !failed; k++) {
                        unsigned i = (unsigned) (k % N_INPUT);
                        if (in_busy[i]) {
                                ADD_FAILURE() << "input buffer " << i << " not returned";
                                break;
                        }
                        EXPECT_EQ(guest_write(mem, input_gpa(i), in[k].data(), in[k].size()), 0);
                        in_busy[i] = true;
                        pending[next_tag] = { IN, i };
                        send(queue_req(stream, IN, 100 + i, k, (uint32_t) in[k].size()), 24);
                        collect();
                }
                if (!failed) {
                        drain_tag = next_tag;
                        send(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, stream), 8);
                        collect();
                }
                if (ret_eos)
                        *ret_eos = eos && drained;
                if (ret_error)
                        *ret_error = failed;
                return frames;
        }

        /* A stream made by ffmpeg now: `args` are its encoder options. */
        std::string make_stream(const std::string &name, const std::string &size, int frames, const std::string &args) {
                std::string path = dir->path + "/" + name;
                std::ostringstream c;
                c << "ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=" << size
                  << ":rate=30 -frames:v " << frames << " " << args << " " << path;
                EXPECT_EQ(sh(c.str()), 0) << c.str();
                return path;
        }
        /* ffmpeg's own decode of path as NV12 frames of width x height. */
        std::vector<Bytes> reference(const std::string &path, uint32_t width, uint32_t height) {
                std::string out = path + ".nv12";
                EXPECT_EQ(sh("ffmpeg -hide_banner -loglevel error -y -i " + path + " -f rawvideo -pix_fmt nv12 " + out), 0);
                return chunks(read_file(out), (size_t) width * height * 3 / 2);
        }

        void expect_same(const std::vector<DecodedFrame> &got, const std::vector<Bytes> &want) {
                ASSERT_EQ(got.size(), want.size());
                for (size_t i = 0; i < got.size(); i++)
                        EXPECT_TRUE(got[i].data == want[i]) << "frame " << i << " differs";
        }

        uint32_t out_param(uint32_t stream, unsigned offset) {
                Bytes r = cmd(Req(VIRTIO_VIDEO_CMD_GET_PARAMS, stream).u32(OUT).u32(0));
                EXPECT_EQ(r.size(), 8u + VIRTIO_VIDEO_PARAMS_SIZE);
                return r.size() >= 8 + offset + 4 ? get_le32(&r[8 + offset]) : 0;
        }

        GuestMemory *mem = nullptr;
        VirtioVideo *v = nullptr;
        std::unique_ptr<harness::TempDir> dir;
        std::vector<Response> responses;
        uint64_t next_tag = 1;
};

#define NEED_ENCODER(name)                                                                   \
        do {                                                                                 \
                if (!have_ffmpeg())                                                          \
                        GTEST_SKIP() << "the ffmpeg CLI is missing (tools/install-deps.sh)"; \
                if (!have_encoder(name))                                                     \
                        GTEST_SKIP() << "ffmpeg has no " name " encoder";                    \
        } while (0)

/* ---- configuration and capabilities ---- */

TEST_F(VideoTest, config_is_crosvm_layout) {
        uint8_t c[VIRTIO_VIDEO_CONFIG_SIZE];
        virtio_video_config_read(v, 0, c, sizeof(c));
        EXPECT_EQ(get_le32(c), 0u);
        EXPECT_EQ(get_le32(c + 4), 1024u);
        EXPECT_EQ(get_le32(c + 8), 1024u);
        EXPECT_EQ(std::string((char *) c + 12), "ffmpeg");
        for (unsigned i = 18; i < 44; i++)
                EXPECT_EQ(c[i], 0) << i;
}

TEST_F(VideoTest, query_capability_input_lists_decodable_formats) {
        Bytes r = cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CAPABILITY, 0).u32(IN).u32(0));
        ASSERT_GE(r.size(), 16u);
        EXPECT_EQ(get_le32(&r[0]), (uint32_t) VIRTIO_VIDEO_RESP_OK_QUERY_CAPABILITY);
        uint32_t n = get_le32(&r[8]);
        ASSERT_EQ(r.size(), 16u + n * 64);
        std::vector<uint32_t> formats;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *d = &r[16 + i * 64];
                formats.push_back(get_le32(d + 8));
                EXPECT_EQ(get_le64(d), 1u);                       /* pairs with NV12 */
                EXPECT_EQ(get_le32(d + 12), 1u);                  /* single buffer */
                EXPECT_EQ(get_le32(d + 20), 1u);                  /* one frame range */
                EXPECT_EQ(get_le32(d + 24 + 4), 4096u);           /* width max */
                EXPECT_EQ(get_le32(d + 24 + 20), 4096u);          /* height max */
        }
        std::vector<uint32_t> want = { VIRTIO_VIDEO_FORMAT_H264, VIRTIO_VIDEO_FORMAT_HEVC, VIRTIO_VIDEO_FORMAT_VP8,
                                       VIRTIO_VIDEO_FORMAT_VP9 };
        EXPECT_EQ(formats, want);
}

TEST_F(VideoTest, query_capability_output_is_nv12) {
        Bytes r = cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CAPABILITY, 0).u32(OUT).u32(0));
        ASSERT_EQ(r.size(), 16u + 64);
        EXPECT_EQ(get_le32(&r[8]), 1u);
        EXPECT_EQ(get_le64(&r[16]), 0xfu);
        EXPECT_EQ(get_le32(&r[24]), (uint32_t) VIRTIO_VIDEO_FORMAT_NV12);
}

TEST_F(VideoTest, query_capability_unknown_queue_type_refused) {
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CAPABILITY, 0).u32(7).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 0));
}

TEST_F(VideoTest, query_control_profiles_of_h264) {
        Bytes r = cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CONTROL, 0).u32(VIRTIO_VIDEO_CONTROL_PROFILE).u32(0)
                              .u32(VIRTIO_VIDEO_FORMAT_H264).u32(0));
        ASSERT_EQ(r.size(), 16u + 4 * 4);
        EXPECT_EQ(get_le32(&r[0]), (uint32_t) VIRTIO_VIDEO_RESP_OK_QUERY_CONTROL);
        EXPECT_EQ(get_le32(&r[8]), 4u);
        EXPECT_EQ(get_le32(&r[16]), 256u);
        EXPECT_EQ(get_le32(&r[28]), 259u);
}

TEST_F(VideoTest, unknown_control_refused) {
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CONTROL, 0).u32(99).u32(0).u32(VIRTIO_VIDEO_FORMAT_H264).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 0));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CONTROL, 0).u32(VIRTIO_VIDEO_CONTROL_LEVEL).u32(0)
                              .u32(VIRTIO_VIDEO_FORMAT_VP8).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 0));
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_GET_CONTROL, 1).u32(1).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_SET_CONTROL, 1).u32(1).u32(0).u32(1000).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 1));
}

/* ---- hostile commands ---- */

TEST_F(VideoTest, command_shorter_than_header_refused) {
        uint8_t b[7] = { 0x01, 0x01, 0, 0, 1, 0, 0 };
        virtio_video_command(v, mem, 9, b, sizeof(b), 64);
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(responses[0].b, hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 0));
}

TEST_F(VideoTest, command_shorter_than_its_body_refused) {
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_CREATE, 1).u32(0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_RESOURCE_CREATE, 1).u32(IN).u32(1)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_RESOURCE_QUEUE, 1).u32(IN).u32(1)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(IN)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_GET_PARAMS, 1)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, response_buffer_too_small_gets_nothing) {
        Bytes r = cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CAPABILITY, 0).u32(IN).u32(0), 20);
        EXPECT_TRUE(r.empty());
        /* Not executed: the stream does not exist afterwards. */
        EXPECT_TRUE(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_CREATE, 1).u32(0).u32(0).u32(VIRTIO_VIDEO_FORMAT_H264).zero(68), 4)
                            .empty());
        EXPECT_EQ(virtio_video_n_streams(v), 0u);
}

TEST_F(VideoTest, unknown_command_refused) {
        EXPECT_EQ(cmd(Req(0x1ff, 0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 0));
        /* GET_PARAMS_EXT and SET_PARAMS_EXT are not crosvm's decoder's either. */
        EXPECT_EQ(cmd(Req(0x10d, 0).u32(IN).u32(0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 0));
}

TEST_F(VideoTest, unknown_format_refused) {
        EXPECT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_NV12), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(stream_create(1, 0x1000 /* MPEG2: not offered */), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(stream_create(1, 0xdead), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(virtio_video_n_streams(v), 0u);
}

TEST_F(VideoTest, object_resources_refused) {
        EXPECT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264, VIRTIO_VIDEO_MEM_TYPE_VIRTIO_OBJECT, 0),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264, 0, VIRTIO_VIDEO_MEM_TYPE_VIRTIO_OBJECT),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, stream_id_reused_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID, 1));
}

TEST_F(VideoTest, too_many_streams_refused) {
        for (uint32_t i = 0; i < VIRTIO_VIDEO_MAX_STREAMS; i++)
                ASSERT_EQ(stream_create(i, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, i));
        EXPECT_EQ(stream_create(99, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY, 99));
}

TEST_F(VideoTest, resource_id_reused_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 5, { { INPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(resource_create_req(1, IN, 5, { { INPUT_BASE, 4096 } })),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID, 1));
        /* The same id on the other queue is another resource. */
        EXPECT_EQ(cmd(resource_create_req(1, OUT, 5, { { OUTPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
}

TEST_F(VideoTest, resource_unknown_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(queue_req(1, IN, 77, 0, 10)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID, 1));
        EXPECT_EQ(cmd(queue_req(1, OUT, 77, 0, 0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID, 1));
}

TEST_F(VideoTest, resource_on_unknown_stream_refused) {
        EXPECT_EQ(cmd(resource_create_req(3, IN, 5, { { INPUT_BASE, 4096 } })),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID, 3));
}

TEST_F(VideoTest, resource_pages_outside_ram_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(resource_create_req(1, IN, 1, { { MEM_SIZE - 4096, 8192 } })),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(resource_create_req(1, IN, 2, { { UINT64_MAX - 100, 4096 } })),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(resource_create_req(1, IN, 3, { { INPUT_BASE, 0 } })),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, resource_entries_missing_or_too_many_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Req r = resource_create_req(1, IN, 1, { { INPUT_BASE, 4096 } });
        put_le32(&r.b[8 + 48], 2); /* claims two, brings one */
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        put_le32(&r.b[8 + 48], VIRTIO_VIDEO_MAX_ENTRIES + 1);
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        put_le32(&r.b[8 + 48], 0);
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, resource_per_plane_layout_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Req r = resource_create_req(1, OUT, 1, { { OUTPUT_BASE, 4096 } });
        put_le32(&r.b[8 + 8], 2);
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, too_many_resources_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        for (uint32_t i = 0; i < VIRTIO_VIDEO_MAX_BUFFERS; i++)
                ASSERT_EQ(cmd(resource_create_req(1, IN, i, { { INPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(resource_create_req(1, IN, 999, { { INPUT_BASE, 4096 } })),
                  hdr(VIRTIO_VIDEO_RESP_ERR_OUT_OF_MEMORY, 1));
}

TEST_F(VideoTest, input_larger_than_its_resource_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 1, { { INPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(queue_req(1, IN, 1, 0, 4097)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, queue_twice_before_its_answer_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, OUT, 1, { { OUTPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_TRUE(cmd(queue_req(1, OUT, 1, 0, 0)).empty());
        EXPECT_EQ(cmd(queue_req(1, OUT, 1, 0, 0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID, 1));
}

TEST_F(VideoTest, queue_on_destroyed_stream_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, OUT, 1, { { OUTPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        uint64_t tag;
        EXPECT_TRUE(cmd(queue_req(1, OUT, 1, 0, 0), 24, &tag).empty());
        ASSERT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_DESTROY, 1)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        /* The buffer queued went back, flagged ERR. */
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(responses[0].tag, tag);
        EXPECT_EQ(get_le32(&responses[0].b[16]), (uint32_t) VIRTIO_VIDEO_BUFFER_FLAG_ERR);
        EXPECT_EQ(cmd(queue_req(1, OUT, 1, 0, 0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_DESTROY, 1)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID, 1));
}

TEST_F(VideoTest, drain_twice_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        /* No output buffer to carry the EOS: the first drain waits. */
        uint64_t tag;
        EXPECT_TRUE(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, 1), 8, &tag).empty());
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, 1)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 1));
        /* An output buffer ends it: EOS, then the drain's answer. */
        ASSERT_EQ(cmd(resource_create_req(1, OUT, 1, { { OUTPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        uint64_t out_tag = send(queue_req(1, OUT, 1, 0, 0), 24);
        ASSERT_EQ(responses.size(), 2u);
        EXPECT_EQ(responses[0].tag, out_tag);
        EXPECT_EQ(get_le32(&responses[0].b[16]), (uint32_t) VIRTIO_VIDEO_BUFFER_FLAG_EOS);
        EXPECT_EQ(responses[1].tag, tag);
        EXPECT_EQ(responses[1].b, hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
}

TEST_F(VideoTest, queue_clear_cancels_drain_and_returns_buffers) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        uint64_t tag;
        EXPECT_TRUE(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, 1), 8, &tag).empty());
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUEUE_CLEAR, 1).u32(IN).u32(0)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(responses[0].tag, tag);
        EXPECT_EQ(responses[0].b, hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 1));
}

TEST_F(VideoTest, set_params_65536_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Req r = Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(IN).u32(VIRTIO_VIDEO_FORMAT_H264).u32(65536).u32(65536).zero(96);
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        Req ok = Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(IN).u32(VIRTIO_VIDEO_FORMAT_H264).u32(640).u32(480).zero(96);
        EXPECT_EQ(cmd(ok), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Bytes p = cmd(Req(VIRTIO_VIDEO_CMD_GET_PARAMS, 1).u32(IN).u32(0));
        ASSERT_EQ(p.size(), 120u);
        EXPECT_EQ(get_le32(&p[0]), (uint32_t) VIRTIO_VIDEO_RESP_OK_GET_PARAMS);
        EXPECT_EQ(get_le32(&p[8 + 4]), (uint32_t) VIRTIO_VIDEO_FORMAT_H264);
        EXPECT_EQ(get_le32(&p[8 + 8]), 640u);
}

TEST_F(VideoTest, set_params_output_other_than_nv12_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(OUT).u32(1 /* ARGB */).zero(104)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

/* ---- decoding real streams ---- */

TEST_F(VideoTest, decodes_h264_in_arbitrary_chunks_like_ffmpeg) {
        NEED_ENCODER("libx264");
        std::string path = make_stream("a.h264", "320x240", 20, "-c:v libx264 -pix_fmt yuv420p -bf 2");
        auto want = reference(path, 320, 240);
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        bool eos = false, error = true;
        auto got = decode(1, chunks(read_file(path), 1000), &eos, &error);
        EXPECT_TRUE(eos);
        EXPECT_FALSE(error);
        expect_same(got, want);
        auto ev = events();
        ASSERT_EQ(ev.size(), 1u);
        EXPECT_EQ(ev[0], hdr(VIRTIO_VIDEO_EVENT_DECODER_RESOLUTION_CHANGED, 1));
        EXPECT_EQ(out_param(1, 8), 320u);
        EXPECT_EQ(out_param(1, 12), 240u);
        EXPECT_EQ(out_param(1, 48), 320u * 240);  /* Y plane size */
        EXPECT_EQ(out_param(1, 52), 320u);        /* stride */
}

TEST_F(VideoTest, decodes_hevc_like_ffmpeg) {
        NEED_ENCODER("libx265");
        std::string path = make_stream("a.hevc", "352x288", 10, "-c:v libx265 -pix_fmt yuv420p -x265-params log-level=none");
        auto want = reference(path, 352, 288);
        ASSERT_EQ(stream_create(2, VIRTIO_VIDEO_FORMAT_HEVC), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 2));
        setup_resources(2);
        bool eos = false;
        auto got = decode(2, chunks(read_file(path), 4096), &eos);
        EXPECT_TRUE(eos);
        expect_same(got, want);
}

TEST_F(VideoTest, decodes_vp8_like_ffmpeg) {
        NEED_ENCODER("libvpx");
        std::string path = make_stream("a.ivf", "320x180", 10, "-c:v libvpx -pix_fmt yuv420p -f ivf");
        auto want = reference(path, 320, 180);
        ASSERT_EQ(stream_create(3, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 3));
        setup_resources(3);
        bool eos = false;
        auto got = decode(3, ivf_frames(read_file(path)), &eos);
        EXPECT_TRUE(eos);
        expect_same(got, want);
        /* Timestamps come back with their frames. */
        for (size_t i = 0; i < got.size(); i++)
                EXPECT_EQ(got[i].timestamp, i);
}

TEST_F(VideoTest, decodes_vp9_like_ffmpeg) {
        NEED_ENCODER("libvpx-vp9");
        std::string path = make_stream("b.ivf", "256x144", 10, "-c:v libvpx-vp9 -pix_fmt yuv420p -f ivf");
        auto want = reference(path, 256, 144);
        ASSERT_EQ(stream_create(4, VIRTIO_VIDEO_FORMAT_VP9), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 4));
        setup_resources(4);
        bool eos = false;
        auto got = decode(4, ivf_frames(read_file(path)), &eos);
        EXPECT_TRUE(eos);
        expect_same(got, want);
}

TEST_F(VideoTest, resolution_change_mid_stream_raises_event_and_updates_params) {
        NEED_ENCODER("libx264");
        std::string a = make_stream("a.h264", "320x240", 5, "-c:v libx264 -pix_fmt yuv420p");
        std::string b = make_stream("b.h264", "160x96", 5, "-c:v libx264 -pix_fmt yuv420p");
        auto want = reference(a, 320, 240);
        auto want_b = reference(b, 160, 96);
        want.insert(want.end(), want_b.begin(), want_b.end());
        Bytes both = read_file(a), tail = read_file(b);
        both.insert(both.end(), tail.begin(), tail.end());
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        bool eos = false;
        auto got = decode(1, chunks(both, 2048), &eos);
        EXPECT_TRUE(eos);
        expect_same(got, want);
        auto ev = events();
        ASSERT_EQ(ev.size(), 2u);
        EXPECT_EQ(ev[1], hdr(VIRTIO_VIDEO_EVENT_DECODER_RESOLUTION_CHANGED, 1));
        EXPECT_EQ(out_param(1, 8), 160u);
        EXPECT_EQ(out_param(1, 12), 96u);
}

/* Two streams of different codecs and sizes, their commands interleaved
 * frame by frame, each on its own pages: each decodes as if alone. */
TEST_F(VideoTest, two_streams_at_once_decode_independently) {
        NEED_ENCODER("libvpx-vp9");
        std::string a = make_stream("a.ivf", "320x180", 6, "-c:v libvpx -pix_fmt yuv420p -f ivf");
        std::string b = make_stream("b.ivf", "160x120", 6, "-c:v libvpx-vp9 -pix_fmt yuv420p -f ivf");
        std::vector<Bytes> in[2] = { ivf_frames(read_file(a)), ivf_frames(read_file(b)) };
        std::vector<Bytes> want[2] = { reference(a, 320, 180), reference(b, 160, 120) };
        const uint32_t format[2] = { VIRTIO_VIDEO_FORMAT_VP8, VIRTIO_VIDEO_FORMAT_VP9 };
        uint64_t out_tag[2];
        std::vector<Bytes> got[2];
        for (uint32_t s = 0; s < 2; s++) {
                ASSERT_EQ(stream_create(s + 1, format[s]), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, s + 1));
                ASSERT_EQ(cmd(resource_create_req(s + 1, IN, 1, { { input_gpa(s), (uint32_t) MiB } })),
                          hdr(VIRTIO_VIDEO_RESP_OK_NODATA, s + 1));
                ASSERT_EQ(cmd(resource_create_req(s + 1, OUT, 1, output_entries(s))), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, s + 1));
                out_tag[s] = send(queue_req(s + 1, OUT, 1, 0, 0), 24);
        }
        for (size_t i = 0; i < 6; i++)
                for (uint32_t s = 0; s < 2; s++) {
                        ASSERT_EQ(guest_write(mem, input_gpa(s), in[s][i].data(), in[s][i].size()), 0);
                        uint64_t in_tag = send(queue_req(s + 1, IN, 1, i, (uint32_t) in[s][i].size()), 24);
                        /* The input back, then this stream's frame in its output buffer. */
                        ASSERT_EQ(responses.size(), 2u) << "stream " << s + 1 << " frame " << i;
                        EXPECT_EQ(responses[0].tag, in_tag);
                        EXPECT_EQ(responses[1].tag, out_tag[s]);
                        EXPECT_EQ(get_le32(&responses[1].b[4]), s + 1);
                        got[s].push_back(read_output(s, get_le32(&responses[1].b[20])));
                        responses.clear();
                        out_tag[s] = send(queue_req(s + 1, OUT, 1, 0, 0), 24);
                }
        for (uint32_t s = 0; s < 2; s++) {
                ASSERT_EQ(got[s].size(), want[s].size());
                for (size_t i = 0; i < got[s].size(); i++)
                        EXPECT_TRUE(got[s][i] == want[s][i]) << "stream " << s + 1 << " frame " << i;
        }
        EXPECT_EQ(virtio_video_n_streams(v), 2u);
}

TEST_F(VideoTest, output_buffer_too_small_returned_with_err_frame_kept) {
        NEED_ENCODER("libvpx");
        std::string path = make_stream("a.ivf", "320x180", 2, "-c:v libvpx -pix_fmt yuv420p -f ivf");
        auto want = reference(path, 320, 180);
        auto in = ivf_frames(read_file(path));
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 1, { { INPUT_BASE, (uint32_t) MiB } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, OUT, 1, { { OUTPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, OUT, 2, output_entries(1))), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(guest_write(mem, INPUT_BASE, in[0].data(), in[0].size()), 0);
        uint64_t small = send(queue_req(1, OUT, 1, 0, 0), 24);
        uint64_t in_tag = send(queue_req(1, IN, 1, 42, (uint32_t) in[0].size()), 24);
        /* The input went back; the small buffer too, flagged ERR. */
        ASSERT_EQ(responses.size(), 2u);
        EXPECT_EQ(responses[0].tag, in_tag);
        EXPECT_EQ(responses[1].tag, small);
        EXPECT_EQ(get_le32(&responses[1].b[16]), (uint32_t) VIRTIO_VIDEO_BUFFER_FLAG_ERR);
        EXPECT_EQ(get_le32(&responses[1].b[20]), 0u);
        responses.clear();
        /* A buffer big enough gets the frame kept for it. */
        uint64_t big = send(queue_req(1, OUT, 2, 0, 0), 24);
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(responses[0].tag, big);
        EXPECT_EQ(get_le32(&responses[0].b[16]), 0u);
        EXPECT_EQ(get_le64(&responses[0].b[8]), 42u);
        ASSERT_EQ(get_le32(&responses[0].b[20]), 320u * 180 * 3 / 2);
        EXPECT_TRUE(read_output(1, 320 * 180 * 3 / 2) == want[0]);
}

TEST_F(VideoTest, corrupted_bitstream_error_event_device_goes_on) {
        NEED_ENCODER("libvpx-vp9");
        std::string path = make_stream("a.ivf", "256x144", 4, "-c:v libvpx-vp9 -pix_fmt yuv420p -f ivf");
        auto frames = ivf_frames(read_file(path));
        /* Garbage after the first frame. */
        for (size_t i = 1; i < frames.size(); i++)
                for (size_t k = 0; k < frames[i].size(); k++)
                        frames[i][k] = (uint8_t) (k * 37 + 11);
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP9), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        bool error = false;
        decode(1, frames, nullptr, &error);
        EXPECT_TRUE(error);
        auto ev = events();
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(ev.back(), hdr(VIRTIO_VIDEO_EVENT_ERROR, 1));
        /* The failed stream takes no more input until cleared... */
        EXPECT_EQ(cmd(queue_req(1, IN, 100, 0, 10)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, 1)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 1));
        /* ...another stream decodes meanwhile... */
        ASSERT_EQ(stream_create(2, VIRTIO_VIDEO_FORMAT_VP9), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 2));
        setup_resources(2);
        bool eos = false;
        auto got = decode(2, ivf_frames(read_file(path)), &eos);
        EXPECT_TRUE(eos);
        expect_same(got, reference(path, 256, 144));
        /* ...and after a clear the first one does again. */
        ASSERT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUEUE_CLEAR, 1).u32(OUT).u32(0)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUEUE_CLEAR, 1).u32(IN).u32(0)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        responses.clear();
        got = decode(1, ivf_frames(read_file(path)), &eos);
        EXPECT_TRUE(eos);
        expect_same(got, reference(path, 256, 144));
}

TEST_F(VideoTest, truncated_bitstream_error_event) {
        NEED_ENCODER("libvpx-vp9");
        std::string path = make_stream("a.ivf", "256x144", 3, "-c:v libvpx-vp9 -pix_fmt yuv420p -f ivf");
        auto frames = ivf_frames(read_file(path));
        frames[0].resize(8); /* the key frame cut inside its header */
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP9), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        bool error = false;
        auto got = decode(1, frames, nullptr, &error);
        EXPECT_TRUE(error);
        EXPECT_TRUE(got.empty());
        auto ev = events();
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(ev.back(), hdr(VIRTIO_VIDEO_EVENT_ERROR, 1));
}

/* A VP9 key frame whose header claims 65536x65536: frame_width_minus_1 and
 * frame_height_minus_1 (16 bits each) start at bit 36 of a profile 0 key
 * frame (frame marker, profile, show_existing, type, show, error
 * resilience, the 24-bit sync code, colour space and range). */
TEST_F(VideoTest, stream_claiming_65536x65536_refused) {
        NEED_ENCODER("libvpx-vp9");
        std::string path = make_stream("a.ivf", "256x144", 1, "-c:v libvpx-vp9 -pix_fmt yuv420p -f ivf");
        auto frames = ivf_frames(read_file(path));
        ASSERT_EQ(frames.size(), 1u);
        Bytes &f = frames[0];
        ASSERT_GE(f.size(), 9u);
        ASSERT_EQ(f[1], 0x49);
        ASSERT_EQ(f[2], 0x83);
        ASSERT_EQ(f[3], 0x42);
        for (unsigned bit = 36; bit < 68; bit++)
                f[bit / 8] |= (uint8_t) (0x80 >> (bit % 8));
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP9), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        bool error = false;
        auto got = decode(1, frames, nullptr, &error);
        EXPECT_TRUE(error);
        EXPECT_TRUE(got.empty());
        auto ev = events();
        ASSERT_EQ(ev.size(), 1u);
        EXPECT_EQ(ev[0], hdr(VIRTIO_VIDEO_EVENT_ERROR, 1));
        /* Its size was never taken. */
        EXPECT_EQ(out_param(1, 8), 0u);
}

TEST_F(VideoTest, destroy_all_returns_queued_buffers) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        uint64_t tag;
        EXPECT_TRUE(cmd(queue_req(1, OUT, 200, 0, 0), 24, &tag).empty());
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_RESOURCE_DESTROY_ALL, 1).u32(OUT).u32(0)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(responses[0].tag, tag);
        EXPECT_EQ(get_le32(&responses[0].b[16]), (uint32_t) VIRTIO_VIDEO_BUFFER_FLAG_ERR);
        EXPECT_EQ(cmd(queue_req(1, OUT, 200, 0, 0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_RESOURCE_ID, 1));
        /* Ids are free again. */
        EXPECT_EQ(cmd(resource_create_req(1, OUT, 200, output_entries(0))), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
}

TEST_F(VideoTest, input_with_other_than_one_data_size_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 1, { { INPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, OUT, 1, { { OUTPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Req r = queue_req(1, IN, 1, 0, 10);
        put_le32(&r.b[8 + 16], 2);
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        put_le32(&r.b[8 + 16], 0);
        EXPECT_EQ(cmd(r), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        Req o = queue_req(1, OUT, 1, 0, 0);
        put_le32(&o.b[8 + 16], 9);
        EXPECT_EQ(cmd(o), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
}

TEST_F(VideoTest, coded_format_change_during_a_drain_refused) {
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Req vp8 = Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(IN).u32(VIRTIO_VIDEO_FORMAT_VP8).u32(320).u32(240).zero(96);
        /* Before any input: the stream becomes VP8. */
        EXPECT_EQ(cmd(vp8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 1, { { INPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        /* A drain waiting (no output buffer for its EOS). */
        send(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, 1), 8);
        EXPECT_TRUE(responses.empty());
        Req h264 = Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(IN).u32(VIRTIO_VIDEO_FORMAT_H264).u32(320).u32(240).zero(96);
        EXPECT_EQ(cmd(h264), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 1));
}

TEST_F(VideoTest, unknown_format_in_query_control_refused) {
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CONTROL, 0).u32(VIRTIO_VIDEO_CONTROL_PROFILE).u32(0).u32(0xdead).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 0));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CONTROL, 0).u32(VIRTIO_VIDEO_CONTROL_PROFILE).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 0));
}

/* A stream whose frames do not fit its host memory: an ERROR event, the
 * device goes on. */
TEST_F(VideoTest, stream_over_its_memory_cap_gets_an_error_event) {
        NEED_ENCODER("libvpx");
        virtio_video_free(v);
        VirtioVideoOptions o = { .threads = 0, .max_memory = 64 * 1024 };
        ASSERT_EQ(virtio_video_new(&o, respond_cb, this, &v), 0);
        std::string path = make_stream("a.ivf", "320x240", 2, "-c:v libvpx -pix_fmt yuv420p -f ivf");
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        bool error = false;
        auto got = decode(1, ivf_frames(read_file(path)), nullptr, &error);
        EXPECT_TRUE(error);
        EXPECT_TRUE(got.empty());
        auto ev = events();
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(ev.back(), hdr(VIRTIO_VIDEO_EVENT_ERROR, 1));
        EXPECT_EQ(stream_create(2, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 2));
}

/* With no event buffer posted, 64 events wait; later ones are dropped. */
TEST_F(VideoTest, events_beyond_64_waiting_dropped) {
        /* 32 streams fed junk three times over (a clear revives each):
         * 96 ERROR events, none taken. */
        for (uint32_t s = 0; s < VIRTIO_VIDEO_MAX_STREAMS; s++) {
                ASSERT_EQ(stream_create(s, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, s));
                ASSERT_EQ(cmd(resource_create_req(s, IN, 1, { { input_gpa(0), 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, s));
        }
        Bytes junk(64, 0xff);
        ASSERT_EQ(guest_write(mem, input_gpa(0), junk.data(), junk.size()), 0);
        for (int round = 0; round < 3; round++)
                for (uint32_t s = 0; s < VIRTIO_VIDEO_MAX_STREAMS; s++) {
                        send(queue_req(s, IN, 1, 0, (uint32_t) junk.size()), 24);
                        send(Req(VIRTIO_VIDEO_CMD_QUEUE_CLEAR, s).u32(IN).u32(0));
                }
        EXPECT_EQ(events().size(), (size_t) VIRTIO_VIDEO_MAX_EVENTS);
}

/* ---- the encoder (device id 30) ---- */

class EncoderTest : public VideoTest {
protected:
        void SetUp() override {
                VideoTest::SetUp();
                virtio_video_free(v);
                VirtioVideoOptions o = { .encoder = true };
                ASSERT_EQ(virtio_video_new(&o, respond_cb, this, &v), 0);
        }

        Req set_input(uint32_t stream, uint32_t w, uint32_t h, uint32_t rate = 30) {
                Req r(VIRTIO_VIDEO_CMD_SET_PARAMS, stream);
                r.u32(IN).u32(VIRTIO_VIDEO_FORMAT_NV12).u32(w).u32(h).zero(24).u32(rate).zero(68);
                return r;
        }
        Req set_control(uint32_t stream, uint32_t control, uint32_t value) {
                return Req(VIRTIO_VIDEO_CMD_SET_CONTROL, stream).u32(control).u32(0).u32(value).u32(0);
        }

        struct Packet {
                Bytes data;
                uint64_t timestamp;
                uint32_t flags;
        };

        /* Plays the guest: each NV12 frame into the input resource, its
         * packets collected from the output resources (queued again),
         * then a drain. */
        std::vector<Packet> encode(uint32_t stream, const std::vector<Bytes> &frames,
                                   const std::map<size_t, bool> &force_key = {}) {
                std::vector<Packet> out;
                std::map<uint64_t, unsigned> pending;
                uint64_t drain_tag = 0;
                bool eos = false, drained = false;
                auto collect = [&]() {
                        std::vector<Response> rs;
                        rs.swap(responses);
                        for (auto &r : rs) {
                                if (r.tag == drain_tag) {
                                        drained = r.b == hdr(VIRTIO_VIDEO_RESP_OK_NODATA, stream);
                                        continue;
                                }
                                auto it = pending.find(r.tag);
                                if (it == pending.end())
                                        continue; /* an input's answer */
                                unsigned i = it->second;
                                pending.erase(it);
                                ASSERT_EQ(r.b.size(), 24u);
                                uint32_t flags = get_le32(&r.b[16]);
                                if (flags & VIRTIO_VIDEO_BUFFER_FLAG_EOS) {
                                        eos = true;
                                        continue;
                                }
                                ASSERT_EQ(flags & VIRTIO_VIDEO_BUFFER_FLAG_ERR, 0u);
                                out.push_back({ read_output(i, get_le32(&r.b[20])), get_le64(&r.b[8]), flags });
                                pending[next_tag] = i;
                                send(queue_req(stream, OUT, 200 + i, 0, 0), 24);
                        }
                };
                for (unsigned i = 0; i < N_OUTPUT; i++) {
                        pending[next_tag] = i;
                        send(queue_req(stream, OUT, 200 + i, 0, 0), 24);
                }
                for (size_t k = 0; k < frames.size(); k++) {
                        if (force_key.count(k)) {
                                EXPECT_EQ(cmd(set_control(stream, VIRTIO_VIDEO_CONTROL_FORCE_KEYFRAME, 1)),
                                          hdr(VIRTIO_VIDEO_RESP_OK_NODATA, stream));
                        }
                        EXPECT_EQ(guest_write(mem, input_gpa(0), frames[k].data(), frames[k].size()), 0);
                        uint64_t in_tag = send(queue_req(stream, IN, 100, 1000 + k, (uint32_t) frames[k].size()), 24);
                        bool in_done = false;
                        for (auto &r : responses)
                                if (r.tag == in_tag) {
                                        in_done = get_le32(&r.b[16]) == 0;
                                        r.tag = UINT64_MAX;
                                }
                        EXPECT_TRUE(in_done) << "input " << k;
                        collect();
                }
                drain_tag = next_tag;
                send(Req(VIRTIO_VIDEO_CMD_STREAM_DRAIN, stream), 8);
                collect();
                EXPECT_TRUE(eos && drained);
                return out;
        }

        /* PSNR (dB, the average of ffmpeg's psnr filter) of coded against
         * the raw NV12 frames. */
        double psnr(const std::string &raw, const std::string &coded, uint32_t w, uint32_t h) {
                std::string log = coded + ".psnr";
                std::ostringstream c;
                /* Both at 30 frames/s: the psnr filter pairs frames by time. */
                c << "ffmpeg -hide_banner -nostats -f rawvideo -pix_fmt nv12 -s " << w << "x" << h << " -framerate 30 -i "
                  << raw << " -r 30 -i " << coded << " -lavfi '[1:v][0:v]psnr' -f null - 2>" << log;
                EXPECT_EQ(sh(c.str()), 0) << c.str();
                std::ifstream in(log);
                std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
                size_t at = text.find("average:");
                return at == std::string::npos ? 0 : atof(text.c_str() + at + 8);
        }

        void encode_and_check(uint32_t format, const char *ext, double bound) {
                std::string raw = dir->path + "/in.nv12";
                ASSERT_EQ(sh("ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=30 "
                             "-frames:v 10 -f rawvideo -pix_fmt nv12 " + raw), 0);
                auto frames = chunks(read_file(raw), 320 * 240 * 3 / 2);
                ASSERT_EQ(frames.size(), 10u);
                ASSERT_EQ(stream_create(1, format), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
                ASSERT_EQ(cmd(set_input(1, 320, 240)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
                setup_resources(1);
                auto pkts = encode(1, frames);
                ASSERT_EQ(pkts.size(), 10u);
                EXPECT_EQ(pkts[0].flags, (uint32_t) VIRTIO_VIDEO_BUFFER_FLAG_IFRAME);
                for (size_t i = 0; i < pkts.size(); i++)
                        EXPECT_EQ(pkts[i].timestamp, 1000 + i) << "packet " << i;
                std::string coded = dir->path + "/out." + ext;
                std::ofstream f(coded, std::ios::binary);
                bool ivf = std::string(ext) == "ivf";
                if (ivf) {
                        Bytes h(32, 0);
                        memcpy(&h[0], "DKIF", 4);
                        put_le16(&h[6], 32);
                        memcpy(&h[8], format == VIRTIO_VIDEO_FORMAT_VP8 ? "VP80" : "VP90", 4);
                        put_le16(&h[12], 320);
                        put_le16(&h[14], 240);
                        put_le32(&h[16], 30);
                        put_le32(&h[20], 1);
                        put_le32(&h[24], (uint32_t) pkts.size());
                        f.write((const char *) h.data(), (long) h.size());
                }
                for (size_t i = 0; i < pkts.size(); i++) {
                        if (ivf) {
                                uint8_t fh[12];
                                put_le32(fh, (uint32_t) pkts[i].data.size());
                                put_le64(fh + 4, i);
                                f.write((const char *) fh, 12);
                        }
                        f.write((const char *) pkts[i].data.data(), (long) pkts[i].data.size());
                }
                f.close();
                double db = psnr(raw, coded, 320, 240);
                EXPECT_GT(db, bound) << "PSNR of " << coded;
                RecordProperty("psnr_db", std::to_string(db));
        }
};

TEST_F(EncoderTest, query_capability_nv12_in_coded_out) {
        Bytes in = cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CAPABILITY, 0).u32(IN).u32(0));
        ASSERT_EQ(in.size(), 16u + 64);
        EXPECT_EQ(get_le32(&in[24]), (uint32_t) VIRTIO_VIDEO_FORMAT_NV12);
        Bytes out = cmd(Req(VIRTIO_VIDEO_CMD_QUERY_CAPABILITY, 0).u32(OUT).u32(0));
        ASSERT_GE(out.size(), 16u + 64);
        uint32_t n = get_le32(&out[8]);
        EXPECT_EQ(get_le64(&in[16]), (UINT64_C(1) << n) - 1);
        std::vector<uint32_t> formats;
        for (uint32_t i = 0; i < n; i++)
                formats.push_back(get_le32(&out[16 + i * 64 + 8]));
        if (have_encoder("libx264")) {
                EXPECT_NE(std::find(formats.begin(), formats.end(), (uint32_t) VIRTIO_VIDEO_FORMAT_H264), formats.end());
        }
        if (have_encoder("libvpx")) {
                EXPECT_NE(std::find(formats.begin(), formats.end(), (uint32_t) VIRTIO_VIDEO_FORMAT_VP8), formats.end());
        }
}

TEST_F(EncoderTest, encodes_h264_psnr_above_40db) {
        NEED_ENCODER("libx264");
        encode_and_check(VIRTIO_VIDEO_FORMAT_H264, "h264", 40);
}

TEST_F(EncoderTest, encodes_vp8_psnr_above_38db) {
        NEED_ENCODER("libvpx");
        encode_and_check(VIRTIO_VIDEO_FORMAT_VP8, "ivf", 38);
}

TEST_F(EncoderTest, encodes_vp9_psnr_above_38db) {
        NEED_ENCODER("libvpx-vp9");
        encode_and_check(VIRTIO_VIDEO_FORMAT_VP9, "ivf", 38);
}

TEST_F(EncoderTest, encodes_hevc_psnr_above_38db) {
        NEED_ENCODER("libx265");
        encode_and_check(VIRTIO_VIDEO_FORMAT_HEVC, "hevc", 38);
}

TEST_F(EncoderTest, force_keyframe_makes_that_frame_a_key_frame) {
        NEED_ENCODER("libx264");
        std::string raw = dir->path + "/in.nv12";
        ASSERT_EQ(sh("ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=160x128:rate=30 "
                     "-frames:v 8 -f rawvideo -pix_fmt nv12 " + raw), 0);
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(set_input(1, 160, 128)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        setup_resources(1);
        auto pkts = encode(1, chunks(read_file(raw), 160 * 128 * 3 / 2), { { 5, true } });
        ASSERT_EQ(pkts.size(), 8u);
        for (size_t i = 0; i < pkts.size(); i++)
                EXPECT_EQ(pkts[i].flags, (uint32_t) (i == 0 || i == 5 ? VIRTIO_VIDEO_BUFFER_FLAG_IFRAME
                                                                         : VIRTIO_VIDEO_BUFFER_FLAG_PFRAME))
                        << "packet " << i;
}

TEST_F(EncoderTest, controls_read_back_and_bad_values_refused) {
        NEED_ENCODER("libx264");
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        auto get = [&](uint32_t control) {
                Bytes r = cmd(Req(VIRTIO_VIDEO_CMD_GET_CONTROL, 1).u32(control).u32(0));
                EXPECT_EQ(r.size(), 16u);
                return r.size() == 16 ? get_le32(&r[8]) : 0;
        };
        EXPECT_EQ(get(VIRTIO_VIDEO_CONTROL_BITRATE), 1000000u);
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_BITRATE, 2500000)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(get(VIRTIO_VIDEO_CONTROL_BITRATE), 2500000u);
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_PROFILE, 259)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(get(VIRTIO_VIDEO_CONTROL_PROFILE), 259u);
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_LEVEL, 264)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(get(VIRTIO_VIDEO_CONTROL_LEVEL), 264u);
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_BITRATE_MODE, 1)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(get(VIRTIO_VIDEO_CONTROL_BITRATE_MODE), 1u);
        /* Bad values, each refused. */
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_BITRATE, 0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_PROFILE, 258 /* extended */)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_LEVEL, 300)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_BITRATE_MODE, 2)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(set_control(1, 99, 1)), hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_GET_CONTROL, 1).u32(99).u32(0)), hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_SET_CONTROL, 1).u32(VIRTIO_VIDEO_CONTROL_BITRATE).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_GET_CONTROL, 7).u32(1).u32(0)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_STREAM_ID, 7));
}

TEST_F(EncoderTest, level_of_vp8_unsupported) {
        NEED_ENCODER("libvpx");
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_VP8), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(set_control(1, VIRTIO_VIDEO_CONTROL_LEVEL, 256)), hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_GET_CONTROL, 1).u32(VIRTIO_VIDEO_CONTROL_LEVEL).u32(0)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_UNSUPPORTED_CONTROL, 1));
}

TEST_F(EncoderTest, bad_input_params_refused) {
        NEED_ENCODER("libx264");
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(set_input(1, 65536, 65536)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(set_input(1, 8, 8)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(set_input(1, 320, 240, 1000)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        Req argb = set_input(1, 320, 240);
        put_le32(&argb.b[8 + 4], 1);
        EXPECT_EQ(cmd(argb), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_SET_PARAMS, 1).u32(OUT).u32(VIRTIO_VIDEO_FORMAT_NV12).zero(104)),
                  hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_PARAMETER, 1));
        /* What it took: GET_PARAMS says the NV12 layout. */
        ASSERT_EQ(cmd(set_input(1, 640, 360)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        Bytes p = cmd(Req(VIRTIO_VIDEO_CMD_GET_PARAMS, 1).u32(IN).u32(0));
        ASSERT_EQ(p.size(), 120u);
        EXPECT_EQ(get_le32(&p[8 + 4]), (uint32_t) VIRTIO_VIDEO_FORMAT_NV12);
        EXPECT_EQ(get_le32(&p[8 + 48]), 640u * 360);
        EXPECT_EQ(get_le32(&p[8 + 56]), 640u * 180);
}

TEST_F(EncoderTest, input_buffer_too_small_returned_with_err_and_params_locked_while_encoding) {
        NEED_ENCODER("libx264");
        ASSERT_EQ(stream_create(1, VIRTIO_VIDEO_FORMAT_H264), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(set_input(1, 320, 240)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 1, { { INPUT_BASE, 4096 } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        ASSERT_EQ(cmd(resource_create_req(1, IN, 2, { { input_gpa(1), (uint32_t) MiB } })), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        uint64_t small = send(queue_req(1, IN, 1, 0, 4096), 24);
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(responses[0].tag, small);
        EXPECT_EQ(get_le32(&responses[0].b[16]), (uint32_t) VIRTIO_VIDEO_BUFFER_FLAG_ERR);
        responses.clear();
        send(queue_req(1, IN, 2, 0, 320 * 240 * 3 / 2), 24);
        ASSERT_EQ(responses.size(), 1u);
        EXPECT_EQ(get_le32(&responses[0].b[16]), 0u);
        /* The encoder is open now: its size stays until a drain or clear. */
        EXPECT_EQ(cmd(set_input(1, 640, 480)), hdr(VIRTIO_VIDEO_RESP_ERR_INVALID_OPERATION, 1));
        EXPECT_EQ(cmd(Req(VIRTIO_VIDEO_CMD_QUEUE_CLEAR, 1).u32(IN).u32(0)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
        EXPECT_EQ(cmd(set_input(1, 640, 480)), hdr(VIRTIO_VIDEO_RESP_OK_NODATA, 1));
}

} // namespace
