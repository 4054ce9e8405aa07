/* SPDX-License-Identifier: BSD-3-Clause */
/* gpu/display against a real weston 10 (headless back-end, pixman), no
 * mocks: what the windows show is read back with weston-screenshooter
 * and compared pixel by pixel. Without weston these tests are skipped,
 * with the reason; the argument checks and the headless cases need no
 * compositor. */
#include <gtest/gtest.h>

#include <png.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "gpu/display/display-internal.h"
#include "gpu/display.h"
#include "common/util.h"
#include "tests/gpu-display/weston.h"

using namespace weston_test;

namespace {

const uint32_t FORMATS[] = {
        VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM,
        VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM,
        VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM,
};

Rgb pattern(uint32_t x, uint32_t y, unsigned seed) {
        if (x < MARKER && y < MARKER)
                return MARKER_COLOUR;
        return { uint8_t(x * 5 + seed), uint8_t(y * 3 + seed * 7), uint8_t((x ^ y) + seed * 13) };
}

/* One pixel of colour c in format's byte order (the name's order); the
 * alpha or X byte is junk, which the display must ignore. */
void encode(uint32_t format, Rgb c, uint8_t *p) {
        const uint8_t a = 0x5a;

        switch (format) {
        case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
        case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
                p[0] = c.b, p[1] = c.g, p[2] = c.r, p[3] = a;
                break;
        case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
        case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
                p[0] = a, p[1] = c.r, p[2] = c.g, p[3] = c.b;
                break;
        case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
        case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
                p[0] = c.r, p[1] = c.g, p[2] = c.b, p[3] = a;
                break;
        case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
        case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
                p[0] = a, p[1] = c.b, p[2] = c.g, p[3] = c.r;
                break;
        default:
                abort();
        }
}

/* A guest image: rows of stride bytes (wider than the pixels, to catch
 * a display that assumes stride == width * 4). */
struct Image {
        Image(uint32_t w, uint32_t h, uint32_t fmt, const std::function<Rgb(uint32_t, uint32_t)> &f)
            : width(w), height(h), stride(w * 4 + 64), format(fmt), bytes(size_t(stride) * h, 0xcc) {
                for (uint32_t y = 0; y < h; y++)
                        for (uint32_t x = 0; x < w; x++)
                                encode(fmt, f(x, y), &bytes[size_t(y) * stride + x * 4]);
        }
        uint32_t width, height, stride, format;
        std::vector<uint8_t> bytes;
};

/* The cursor image of the tests: an opaque L (its colours found
 * nowhere in pattern()'s marker) whose bottom-right 24 x 24 is
 * transparent. */
constexpr uint32_t CURSOR = GPU_DISPLAY_CURSOR_SIZE;

bool cursor_opaque(uint32_t x, uint32_t y) {
        return x < 40 || y < 40;
}

Rgb cursor_colour(uint32_t x, uint32_t y, unsigned seed) {
        return { uint8_t(0xf0 - x - seed), uint8_t(0x10 + y * 2 + seed), uint8_t(0x80 + (x ^ y) + seed * 3) };
}

/* In format's byte order, 64 x 64, stride 256: opaque pixels with alpha
 * 0xff, transparent ones all 0 (premultiplied); an X format's X byte is
 * the same junk, which must come out opaque. */
std::vector<uint8_t> cursor_image(uint32_t format, unsigned seed) {
        std::vector<uint8_t> p(CURSOR * CURSOR * 4);
        for (uint32_t y = 0; y < CURSOR; y++)
                for (uint32_t x = 0; x < CURSOR; x++) {
                        uint8_t *px = &p[(y * CURSOR + x) * 4];
                        if (!cursor_opaque(x, y)) {
                                memset(px, 0, 4);
                                continue;
                        }
                        encode(format, cursor_colour(x, y, seed), px);
                        /* encode() put 0x5a in the alpha byte. */
                        for (int i = 0; i < 4; i++)
                                if (px[i] == 0x5a && (i == 3 ? format == VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM ||
                                                                       format == VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM
                                                                 : i == 0 && (format == VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM ||
                                                                              format == VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM)))
                                        px[i] = 0xff;
                }
        return p;
}

/* What a w x h window showing under(x, y) with the cursor's hotspot
 * (hot_x, hot_y) at (cx, cy) looks like. */
std::function<Rgb(uint32_t, uint32_t)> with_cursor(std::function<Rgb(uint32_t, uint32_t)> under, int cx, int cy,
                                                   uint32_t hot_x, uint32_t hot_y, unsigned seed,
                                                   bool opaque_everywhere = false) {
        return [=](uint32_t x, uint32_t y) {
                int u = int(x) - (cx - int(hot_x)), v = int(y) - (cy - int(hot_y));
                if (u >= 0 && v >= 0 && u < int(CURSOR) && v < int(CURSOR) &&
                    (opaque_everywhere || cursor_opaque(uint32_t(u), uint32_t(v))))
                        return cursor_colour(uint32_t(u), uint32_t(v), seed);
                return under(x, y);
        };
}

/* The last screenshot of a failed wait, into
 * $MAJORDOME_TEST_SCREENSHOT_DIR when set. */
void save_for_debugging(const Screenshot &s) {
        const char *dir = getenv("MAJORDOME_TEST_SCREENSHOT_DIR");
        if (!dir || s.rgb.empty())
                return;
        const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string path = std::string(dir) + "/" + info->name() + ".png";
        png_image image;
        memset(&image, 0, sizeof(image));
        image.version = PNG_IMAGE_VERSION;
        image.width = png_uint_32(s.width);
        image.height = png_uint_32(s.height);
        image.format = PNG_FORMAT_RGB;
        png_image_write_to_file(&image, path.c_str(), 0, s.rgb.data(), 0, nullptr);
        fprintf(stderr, "last screenshot: %s\n", path.c_str());
}

/* Lets the display talk to weston for about ms milliseconds. */
void pump(GpuDisplay *d, int ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < deadline) {
                struct pollfd p = { gpu_display_fd(d), POLLIN, 0 };
                if (p.fd < 0)
                        return;
                if (poll(&p, 1, 10) > 0)
                        (void) gpu_display_dispatch(d);
        }
}

int update_image(GpuDisplay *d, unsigned scanout, const Image &img, uint32_t x, uint32_t y, uint32_t w,
                 uint32_t h) {
        return gpu_display_update(d, scanout, img.bytes.data(), img.stride, img.format, x, y, w, h);
}

int update_all(GpuDisplay *d, unsigned scanout, const Image &img) {
        return update_image(d, scanout, img, 0, 0, img.width, img.height);
}

size_t count_lines_with(const std::string &text, const std::string &what) {
        size_t n = 0;
        for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
                n++;
        return n;
}

struct Resize {
        unsigned scanout;
        uint32_t width, height;
        bool operator==(const Resize &o) const {
                return scanout == o.scanout && width == o.width && height == o.height;
        }
};

std::ostream &operator<<(std::ostream &o, const Resize &r) {
        return o << "scanout " << r.scanout << ": " << r.width << "x" << r.height;
}

/* What the display's callbacks were called with. */
struct CallbackRecorder {
        std::vector<unsigned> closed;
        std::vector<Resize> resized;
        static void close_requested(void *ctx, unsigned scanout) {
                static_cast<CallbackRecorder *>(ctx)->closed.push_back(scanout);
        }
        static void resize_requested(void *ctx, unsigned scanout, uint32_t width, uint32_t height) {
                static_cast<CallbackRecorder *>(ctx)->resized.push_back({ scanout, width, height });
        }
};

/* Pixels of scanout's newest image (what a full repaint of its window
 * would show) that differ from f: weston repaints only the damage, so a
 * screenshot alone would not see a buffer wrong outside it. */
size_t newest_image_mismatches(GpuDisplay *d, uint32_t w, uint32_t h,
                               const std::function<Rgb(uint32_t, uint32_t)> &f) {
        const uint8_t *img = gpu_display_test_newest_image(d, 0);
        size_t n = 0;
        if (!img)
                return size_t(w) * h;
        for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++) {
                        const uint8_t *p = img + (size_t(y) * w + x) * 4;
                        Rgb c = f(x, y);
                        n += p[0] != c.b || p[1] != c.g || p[2] != c.r || p[3] != 0xff;
                }
        return n;
}

class DisplayWeston : public ::testing::Test {
protected:
        void SetUp() override {
                std::string why = weston.start();
                if (!why.empty())
                        GTEST_SKIP() << why;
        }
        void TearDown() override {
                d = gpu_display_free(d);
                weston.stop();
        }

        void connect(unsigned n_scanouts) {
                GpuDisplayCallbacks callbacks = { CallbackRecorder::close_requested,
                                                  CallbackRecorder::resize_requested };
                ASSERT_EQ(gpu_display_new(-1, weston.socket_path.c_str(), n_scanouts, &callbacks, &calls, &d), 0);
                ASSERT_FALSE(gpu_display_is_headless(d));
                ASSERT_GE(gpu_display_fd(d), 0);
        }

        /* Screenshots until pred holds (true) or 5 s passed (false): a
         * screenshot takes tens of milliseconds here, and no test waits
         * more than three times, so a failing test ends well under 30 s. */
        bool wait_for(const std::function<bool(const Screenshot &)> &pred, Screenshot *ret = nullptr) {
                auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
                Screenshot s;
                while (std::chrono::steady_clock::now() < deadline) {
                        pump(d, 30);
                        if (weston.screenshot(&s) && pred(s)) {
                                if (ret)
                                        *ret = s;
                                return true;
                        }
                }
                save_for_debugging(s);
                return false;
        }

        /* Waits until the window shows f over w x h (found by its marker). */
        bool wait_for_window(uint32_t w, uint32_t h, const std::function<Rgb(uint32_t, uint32_t)> &f,
                             Screenshot *ret = nullptr, int *ret_x = nullptr, int *ret_y = nullptr) {
                int ox = 0, oy = 0;
                bool ok = wait_for(
                        [&](const Screenshot &s) {
                                return s.find_marker(&ox, &oy) && s.mismatches(ox, oy, w, h, f) == 0;
                        },
                        ret);
                if (ret_x)
                        *ret_x = ox;
                if (ret_y)
                        *ret_y = oy;
                return ok;
        }

        /* Dispatches until scanout's window asked n sizes, 5 s at most. */
        bool wait_for_resizes(size_t n) {
                for (int i = 0; i < 200 && calls.resized.size() < n; i++)
                        pump(d, 25);
                return calls.resized.size() >= n;
        }

        Weston weston;
        GpuDisplay *d = nullptr;
        CallbackRecorder calls;
};

} /* namespace */

/* With weston. */

TEST_F(DisplayWeston, update_shows_the_exact_pixels_of_every_format) {
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        for (unsigned i = 0; i < std::size(FORMATS); i++) {
                unsigned seed = i + 1;
                auto f = [seed](uint32_t x, uint32_t y) { return pattern(x, y, seed); };
                Image img(320, 240, FORMATS[i], f);

                ASSERT_EQ(update_all(d, 0, img), 0);
                ASSERT_TRUE(wait_for_window(320, 240, f)) << "format " << FORMATS[i];
        }
}

TEST_F(DisplayWeston, window_is_black_until_the_first_update) {
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        /* No marker to find: a black 320 x 240 area is the window. */
        const Rgb bg = { BACKGROUND[0], BACKGROUND[1], BACKGROUND[2] };
        EXPECT_TRUE(wait_for([&](const Screenshot &s) {
                return s.count({ 0, 0, 0 }) >= 320u * 240u && s.count(bg) > 0;
        }));
}

TEST_F(DisplayWeston, partial_update_changes_only_its_rectangle) {
        auto before = [](uint32_t x, uint32_t y) { return pattern(x, y, 1); };
        auto other = [](uint32_t x, uint32_t y) { return pattern(x, y, 9); };
        auto after = [&](uint32_t x, uint32_t y) {
                return (x >= 100 && x < 140 && y >= 50 && y < 80) ? other(x, y) : before(x, y);
        };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, before)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, before));

        /* The source differs from the window everywhere: only the rect
         * (100, 50) 40 x 30 of it may reach the window. */
        Image img(320, 240, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, other);
        ASSERT_EQ(update_image(d, 0, img, 100, 50, 40, 30), 0);
        EXPECT_EQ(newest_image_mismatches(d, 320, 240, after), 0u);
        EXPECT_TRUE(wait_for_window(320, 240, after));
}

TEST_F(DisplayWeston, updates_while_the_compositor_holds_both_buffers_are_not_lost) {
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        pump(d, 100);
        /* No dispatch between them: both buffers end up held, the last
         * frames wait in the shadow copy for a release. */
        for (unsigned seed = 1; seed <= 6; seed++)
                ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM,
                                                 [seed](uint32_t x, uint32_t y) { return pattern(x, y, seed); })),
                          0);
        /* The last one was partial: it must land on top of frame 6. */
        auto last = [](uint32_t x, uint32_t y) {
                return (x >= 10 && x < 30 && y >= 10 && y < 20) ? pattern(x, y, 7) : pattern(x, y, 6);
        };
        ASSERT_EQ(update_image(d, 0,
                               Image(320, 240, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM,
                                     [](uint32_t x, uint32_t y) { return pattern(x, y, 7); }),
                               10, 10, 20, 10),
                  0);
        EXPECT_TRUE(wait_for_window(320, 240, last));
}

/* A full frame goes straight into the free buffer; the partial update
 * right after it (no dispatch: both buffers held) waits in the shadow,
 * which must first catch up with that full frame. */
TEST_F(DisplayWeston, partial_update_while_both_buffers_are_held_keeps_the_rest_of_the_frame) {
        auto first = [](uint32_t x, uint32_t y) { return pattern(x, y, 5); };
        auto second = [](uint32_t x, uint32_t y) { return pattern(x, y, 11); };
        auto expected = [&](uint32_t x, uint32_t y) {
                return (x >= 200 && x < 260 && y >= 100 && y < 140) ? second(x, y) : first(x, y);
        };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        pump(d, 100);
        ASSERT_FALSE(gpu_display_test_frame_pending(d, 0));
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, first)), 0);
        ASSERT_EQ(update_image(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, second), 200, 100, 60, 40), 0);
        EXPECT_TRUE(gpu_display_test_frame_pending(d, 0));
        EXPECT_EQ(newest_image_mismatches(d, 320, 240, expected), 0u);
        EXPECT_TRUE(wait_for_window(320, 240, expected));
        EXPECT_EQ(newest_image_mismatches(d, 320, 240, expected), 0u);
}

/* Partial updates straight into a released buffer: that buffer missed
 * the frames shown since it was last used and must catch up with the
 * front before the new rectangle goes in. */
TEST_F(DisplayWeston, consecutive_partial_updates_each_keep_the_rest_of_the_frame) {
        auto base = [](uint32_t x, uint32_t y) { return pattern(x, y, 3); };
        auto one = [](uint32_t x, uint32_t y) { return pattern(x, y, 8); };
        auto two = [](uint32_t x, uint32_t y) { return pattern(x, y, 12); };
        auto expected = [&](uint32_t x, uint32_t y) {
                if (x >= 20 && x < 80 && y >= 30 && y < 60)
                        return one(x, y);
                if (x >= 150 && x < 300 && y >= 150 && y < 230)
                        return two(x, y);
                return base(x, y);
        };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, base)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, base));
        ASSERT_EQ(update_image(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, one), 20, 30, 60, 30), 0);
        EXPECT_EQ(newest_image_mismatches(d, 320, 240, [&](uint32_t x, uint32_t y) {
                          return (x >= 20 && x < 80 && y >= 30 && y < 60) ? one(x, y) : base(x, y);
                  }),
                  0u);
        ASSERT_EQ(update_image(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, two), 150, 150, 150, 80), 0);
        EXPECT_EQ(newest_image_mismatches(d, 320, 240, expected), 0u);
        EXPECT_TRUE(wait_for_window(320, 240, expected));
}

/* weston stopped (SIGSTOP): updates neither block nor fail (once both
 * buffers are held, they only touch the shadow and send nothing), and
 * the last one shows once weston runs again. */
TEST_F(DisplayWeston, stalled_compositor_blocks_no_update) {
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        pump(d, 100);
        ASSERT_EQ(kill(weston.pid, SIGSTOP), 0);
        auto start = std::chrono::steady_clock::now();
        for (unsigned i = 0; i < 500; i++) {
                Image img(64, 48, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
                          [i](uint32_t x, uint32_t y) { return pattern(x, y, i); });
                ASSERT_EQ(gpu_display_update(d, 0, img.bytes.data(), img.stride, img.format, 0, 0, 64, 48), 0);
                ASSERT_EQ(gpu_display_dispatch(d), 0);
        }
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
        ASSERT_EQ(kill(weston.pid, SIGCONT), 0);
        auto last = [](uint32_t x, uint32_t y) {
                return x < 64 && y < 48 ? pattern(x, y, 499) : Rgb{ 0, 0, 0 };
        };
        EXPECT_TRUE(wait_for_window(320, 240, last));
}

TEST_F(DisplayWeston, set_mode_resizes_the_window) {
        auto f1 = [](uint32_t x, uint32_t y) { return pattern(x, y, 1); };
        auto f3 = [](uint32_t x, uint32_t y) { return pattern(x, y, 3); };
        uint32_t w = 0, h = 0;
        int ox = 0, oy = 0;
        Screenshot s;

        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, f1)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, f1));

        int vw = 0, vh = 0;
        ASSERT_TRUE(window_size(weston.scene_graph(), "Majordome", &vw, &vh));
        EXPECT_EQ(vw, 320);
        EXPECT_EQ(vh, 240);

        ASSERT_EQ(gpu_display_set_mode(d, 0, 200, 100), 0);
        ASSERT_TRUE(gpu_display_test_window_size(d, 0, &w, &h));
        EXPECT_EQ(w, 200u);
        EXPECT_EQ(h, 100u);
        ASSERT_EQ(update_all(d, 0, Image(200, 100, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, f3)), 0);
        /* The window is 200 x 100 now: weston's background just right of
         * it and just below it (desktop-shell never places a window
         * against the output's right or bottom edge). */
        const Rgb bg = { BACKGROUND[0], BACKGROUND[1], BACKGROUND[2] };
        EXPECT_TRUE(wait_for(
                [&](const Screenshot &shot) {
                        return shot.find_marker(&ox, &oy) && shot.mismatches(ox, oy, 200, 100, f3) == 0 &&
                               ox + 200 < shot.width && oy + 100 < shot.height &&
                               shot.at(ox + 200, oy) == bg && shot.at(ox + 200, oy + 99) == bg &&
                               shot.at(ox, oy + 100) == bg && shot.at(ox + 199, oy + 100) == bg;
                },
                &s));
        /* weston's own record of the window. */
        ASSERT_TRUE(window_size(weston.scene_graph(), "Majordome", &vw, &vh));
        EXPECT_EQ(vw, 200);
        EXPECT_EQ(vh, 100);
}

TEST_F(DisplayWeston, two_scanouts_show_two_windows) {
        const Rgb a = { 0x11, 0xee, 0x22 }, b = { 0xee, 0x11, 0x99 };
        connect(2);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 64, 48), 0);
        ASSERT_EQ(gpu_display_set_mode(d, 1, 64, 48), 0);
        ASSERT_EQ(update_all(d, 0, Image(64, 48, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, [&](uint32_t, uint32_t) { return a; })),
                  0);
        ASSERT_EQ(update_all(d, 1, Image(64, 48, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, [&](uint32_t, uint32_t) { return b; })),
                  0);
        /* weston places each window itself: they may overlap, so the
         * top one shows whole and the other at least in part. */
        EXPECT_TRUE(wait_for([&](const Screenshot &s) {
                size_t na = s.count(a), nb = s.count(b);
                return na > 0 && nb > 0 && na <= 64u * 48u && nb <= 64u * 48u && std::max(na, nb) == 64u * 48u;
        }));

        /* weston's scene graph: two toplevels titled by scanout. */
        int w = 0, h = 0;
        std::string graph = weston.scene_graph();
        EXPECT_TRUE(window_size(graph, "Majordome 0", &w, &h)) << graph;
        EXPECT_EQ(w, 64);
        EXPECT_EQ(h, 48);
        EXPECT_TRUE(window_size(graph, "Majordome 1", &w, &h)) << graph;
        EXPECT_EQ(w, 64);
        EXPECT_EQ(h, 48);

        /* Disabling one takes its window away. */
        ASSERT_EQ(gpu_display_set_mode(d, 1, 0, 0), 0);
        EXPECT_TRUE(wait_for([&](const Screenshot &s) { return s.count(a) == 64u * 48u && s.count(b) == 0; }));
        graph = weston.scene_graph();
        EXPECT_TRUE(window_size(graph, "Majordome 0", &w, &h)) << graph;
        EXPECT_FALSE(window_size(graph, "Majordome 1", &w, &h)) << graph;
}

TEST_F(DisplayWeston, one_scanout_is_one_window_titled_majordome) {
        int w = 0, h = 0;
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 64, 48), 0);
        ASSERT_EQ(update_all(d, 0, Image(64, 48, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
                                         [](uint32_t x, uint32_t y) { return pattern(x, y, 1); })),
                  0);
        std::string graph;
        for (int i = 0; i < 100 && !window_size(graph, "Majordome", &w, &h); i++) {
                pump(d, 50);
                graph = weston.scene_graph();
        }
        ASSERT_TRUE(window_size(graph, "Majordome", &w, &h)) << graph;
        EXPECT_EQ(w, 64);
        EXPECT_EQ(h, 48);
        EXPECT_EQ(count_lines_with(graph, "role xdg_toplevel"), 1u) << graph;
}

/* The cursor: a subsurface over the window, at the guest's place. */

TEST_F(DisplayWeston, cursor_shows_its_exact_pixels_with_its_hotspot_at_the_place_given) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 1); };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, under));

        /* What the Linux driver sends: DRM's ARGB8888, B8G8R8A8 here. */
        auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 5, 7), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 100, 80), 0);
        /* The transparent part shows the scanout: compared with it. */
        EXPECT_TRUE(wait_for_window(320, 240, with_cursor(under, 100, 80, 5, 7, 0)));
}

TEST_F(DisplayWeston, cursor_move_alone_reaches_the_screen_and_uncovers_the_old_place) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 2); };
        auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 1);
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0, 0), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 40, 30), 0);
        ASSERT_TRUE(wait_for_window(320, 240, with_cursor(under, 40, 30, 0, 0, 1)));
        /* No scanout update: the move alone must reach weston. */
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 200, 150), 0);
        EXPECT_TRUE(wait_for_window(320, 240, with_cursor(under, 200, 150, 0, 0, 1)));
}

TEST_F(DisplayWeston, cursor_hidden_leaves_the_scanout_alone_and_shows_again) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 3); };
        auto img = cursor_image(VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 2);
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 150, 100), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 10, 10), 0);
        ASSERT_TRUE(wait_for_window(320, 240, with_cursor(under, 150, 100, 10, 10, 2)));
        ASSERT_EQ(gpu_display_set_cursor(d, 0, nullptr, 0, 0, 0), 0);
        EXPECT_TRUE(wait_for_window(320, 240, under));
        /* Moved while hidden: shown again at the new place. */
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 60, 50), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 10, 10), 0);
        EXPECT_TRUE(wait_for_window(320, 240, with_cursor(under, 60, 50, 10, 10, 2)));
}

TEST_F(DisplayWeston, cursor_of_an_x_format_is_opaque_everywhere) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 4); };
        /* Its "transparent" part is black with X = 0: opaque black. */
        auto img = cursor_image(VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 3);
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 0, 0), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 100, 100), 0);
        auto cursor_or_black = [](uint32_t x, uint32_t y) {
                return cursor_opaque(x, y) ? cursor_colour(x, y, 3) : Rgb{ 0, 0, 0 };
        };
        EXPECT_TRUE(wait_for_window(320, 240, [&](uint32_t x, uint32_t y) {
                if (x >= 100 && y >= 100 && x < 100 + CURSOR && y < 100 + CURSOR)
                        return cursor_or_black(x - 100, y - 100);
                return under(x, y);
        }));
}

/* A subsurface is not clipped to its window: the part past the window's
 * edge must not be drawn on the desktop. */
TEST_F(DisplayWeston, cursor_past_the_windows_edge_is_cut_at_it) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 5); };
        auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 4);
        const Rgb bg = { BACKGROUND[0], BACKGROUND[1], BACKGROUND[2] };
        /* The window shows f and the desktop's background (which weston's
         * shell client draws some time after start-up) is at each of
         * outside, relative to the window. */
        auto shows = [&](const std::function<Rgb(uint32_t, uint32_t)> &f,
                         const std::vector<std::pair<int, int>> &outside) {
                return wait_for([&](const Screenshot &shot) {
                        int ox = 0, oy = 0;
                        if (!shot.find_marker(&ox, &oy) || shot.mismatches(ox, oy, 320, 240, f) != 0)
                                return false;
                        for (auto [x, y] : outside)
                                if (ox + x < 0 || oy + y < 0 || ox + x >= shot.width || oy + y >= shot.height ||
                                    !(shot.at(ox + x, oy + y) == bg))
                                        return false;
                        return true;
                });
        };
        std::vector<std::pair<int, int>> right_and_below, left, above;
        for (int i = 0; i < 44; i++) {
                right_and_below.push_back({ 320 + i, 225 });
                right_and_below.push_back({ 305, 240 + i });
        }
        for (int i = 1; i <= 20; i++)
                left.push_back({ -i, 105 });
        for (int i = 1; i <= 30; i++)
                above.push_back({ 105, -i });

        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0, 0), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 300, 220), 0);
        EXPECT_TRUE(shows(with_cursor(under, 300, 220, 0, 0, 4), right_and_below));
        /* Partly left of it, then above it (apart: the marker in the
         * top-left corner must stay visible). */
        ASSERT_EQ(gpu_display_move_cursor(d, 0, -20, 100), 0);
        EXPECT_TRUE(shows(with_cursor(under, -20, 100, 0, 0, 4), left));
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 100, -30), 0);
        EXPECT_TRUE(shows(with_cursor(under, 100, -30, 0, 0, 4), above));
        /* Wholly outside: nothing of it anywhere. */
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 400, 100), 0);
        EXPECT_TRUE(wait_for([&](const Screenshot &shot) {
                int ox = 0, oy = 0;
                return shot.find_marker(&ox, &oy) && shot.mismatches(ox, oy, 320, 240, under) == 0 &&
                       shot.count(cursor_colour(0, 0, 4)) == 0;
        }));
}

TEST_F(DisplayWeston, cursor_survives_a_mode_change) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 6); };
        auto img = cursor_image(VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 5);
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 2, 3), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 60, 40), 0);
        ASSERT_TRUE(wait_for_window(320, 240, with_cursor(under, 60, 40, 2, 3, 5)));
        ASSERT_EQ(gpu_display_set_mode(d, 0, 200, 100), 0);
        ASSERT_EQ(update_all(d, 0, Image(200, 100, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        EXPECT_TRUE(wait_for_window(200, 100, with_cursor(under, 60, 40, 2, 3, 5)));
}

/* The cursor goes with the window, is kept, and comes back with it; one
 * set before there is any window shows when it appears. */
TEST_F(DisplayWeston, cursor_is_kept_while_the_scanout_has_no_window) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 7); };
        auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 6);
        connect(1);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 1, 1), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 30, 20), 0);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 160, 120), 0);
        ASSERT_EQ(update_all(d, 0, Image(160, 120, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_TRUE(wait_for_window(160, 120, with_cursor(under, 30, 20, 1, 1, 6)));

        ASSERT_EQ(gpu_display_set_mode(d, 0, 0, 0), 0);
        EXPECT_TRUE(wait_for([&](const Screenshot &s) { return s.count(cursor_colour(0, 0, 6)) == 0; }));
        ASSERT_EQ(gpu_display_set_mode(d, 0, 160, 120), 0);
        ASSERT_EQ(update_all(d, 0, Image(160, 120, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        EXPECT_TRUE(wait_for_window(160, 120, with_cursor(under, 30, 20, 1, 1, 6)));
}

/* Image changes with no dispatch between them: both cursor buffers end
 * up held; the last image must still come out, none written while held. */
TEST_F(DisplayWeston, cursor_images_while_the_compositor_holds_both_buffers_are_not_lost) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 8); };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, under));
        for (unsigned seed = 10; seed < 16; seed++) {
                auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, seed);
                ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0, 0), 0);
                ASSERT_EQ(gpu_display_move_cursor(d, 0, int(seed) * 10, 50), 0);
        }
        EXPECT_TRUE(wait_for_window(320, 240, with_cursor(under, 150, 50, 0, 0, 15)));
}

/* Two scanouts: two cursors, each over its own window. */
TEST_F(DisplayWeston, each_scanout_has_its_own_cursor) {
        auto under = [](uint32_t x, uint32_t y) { return pattern(x, y, 9); };
        auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 7);
        connect(2);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 160, 120), 0);
        ASSERT_EQ(gpu_display_set_mode(d, 1, 160, 120), 0);
        ASSERT_EQ(update_all(d, 0, Image(160, 120, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, under)), 0);
        ASSERT_EQ(gpu_display_set_cursor(d, 1, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0, 0), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 1, 10, 10), 0);
        /* One cursor, over scanout 1's window: black where the image is
         * transparent (scanout 0's shows a pattern). */
        EXPECT_TRUE(wait_for([&](const Screenshot &s) {
                for (int y = 0; y + 64 <= s.height; y++)
                        for (int x = 0; x + 64 <= s.width; x++)
                                if (s.at(x, y) == cursor_colour(0, 0, 7))
                                        return s.count(cursor_colour(0, 0, 7)) == 1 &&
                                               s.at(x + 39, y + 63) == cursor_colour(39, 63, 7) &&
                                               s.at(x + 50, y + 50) == Rgb{ 0, 0, 0 };
                return false;
        }));
}

TEST_F(DisplayWeston, gpu_display_cursor_is_a_subsurface_of_the_window) {
        auto img = cursor_image(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0);
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
                                         [](uint32_t x, uint32_t y) { return pattern(x, y, 1); })),
                  0);
        ASSERT_EQ(gpu_display_set_cursor(d, 0, img.data(), VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0, 0), 0);
        ASSERT_EQ(gpu_display_move_cursor(d, 0, 300, 220), 0);
        pump(d, 300);
        /* Its transparent part past the edge does not grow the window. */
        int w = 0, h = 0;
        std::string graph = weston.scene_graph();
        EXPECT_TRUE(window_size(graph, "Majordome", &w, &h)) << graph;
        EXPECT_EQ(w, 320);
        EXPECT_EQ(h, 240);
        EXPECT_EQ(count_lines_with(graph, "subsurface"), 1u) << graph;
}

TEST_F(DisplayWeston, connects_through_a_given_socket_fd) {
        int fd = -1;
        ASSERT_EQ(connect_unix(weston.socket_path.c_str(), SOCK_STREAM, &fd), 0);
        ASSERT_EQ(gpu_display_new(fd, nullptr, 1, nullptr, nullptr, &d), 0);
        EXPECT_FALSE(gpu_display_is_headless(d));
        auto f = [](uint32_t x, uint32_t y) { return pattern(x, y, 4); };
        ASSERT_EQ(gpu_display_set_mode(d, 0, 100, 80), 0);
        ASSERT_EQ(update_all(d, 0, Image(100, 80, VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, f)), 0);
        EXPECT_TRUE(wait_for_window(100, 80, f));
}

/* weston's headless back-end has no pointer to press a close button, and
 * nothing else makes weston send xdg_toplevel.close: the handler is
 * called as the compositor would call it. */
TEST_F(DisplayWeston, close_button_reports_the_scanout) {
        connect(2);
        ASSERT_EQ(gpu_display_set_mode(d, 1, 64, 48), 0);
        pump(d, 100);
        gpu_display_test_toplevel_close(d, 1);
        ASSERT_EQ(calls.closed.size(), 1u);
        EXPECT_EQ(calls.closed[0], 1u);
}

TEST_F(DisplayWeston, close_without_a_callback_does_nothing) {
        ASSERT_EQ(gpu_display_new(-1, weston.socket_path.c_str(), 1, nullptr, nullptr, &d), 0);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 64, 48), 0);
        gpu_display_test_toplevel_close(d, 0);
        EXPECT_FALSE(gpu_display_is_headless(d));
}

/* Resizing: the compositor's configures ask the guest for sizes. */

TEST_F(DisplayWeston, configure_reports_each_new_size_once_and_never_the_mode) {
        connect(2);
        ASSERT_EQ(gpu_display_set_mode(d, 1, 320, 240), 0);
        pump(d, 200);
        /* weston's own first configure (0 x 0) asked nothing. */
        ASSERT_TRUE(calls.resized.empty());

        gpu_display_test_toplevel_configure(d, 1, 320, 240, false, false);
        gpu_display_test_toplevel_configure(d, 1, 0, 0, false, false);
        EXPECT_TRUE(calls.resized.empty());
        gpu_display_test_toplevel_configure(d, 1, 800, 600, false, false);
        gpu_display_test_toplevel_configure(d, 1, 800, 600, false, false);
        gpu_display_test_toplevel_configure(d, 1, 800, 600, true, false);
        EXPECT_EQ(calls.resized, (std::vector<Resize> { { 1, 800, 600 } }));
        gpu_display_test_toplevel_configure(d, 1, 640, 480, false, true);
        /* The mode again, once another size was asked: asked again. */
        gpu_display_test_toplevel_configure(d, 1, 320, 240, false, false);
        /* Clamped to the window's min size and to the largest mode. */
        gpu_display_test_toplevel_configure(d, 1, 10, 20, false, false);
        gpu_display_test_toplevel_configure(d, 1, 20000, 100000, false, false);

        EXPECT_EQ(calls.resized, (std::vector<Resize> { { 1, 800, 600 },
                                                        { 1, 640, 480 },
                                                        { 1, 320, 240 },
                                                        { 1, 64, 64 },
                                                        { 1, 16384, 16384 } }));
        /* The window shows the guest's mode until the guest sets another. */
        uint32_t w = 0, h = 0;
        ASSERT_TRUE(gpu_display_test_window_size(d, 1, &w, &h));
        EXPECT_EQ(w, 320u);
        EXPECT_EQ(h, 240u);
        pump(d, 100);
        EXPECT_FALSE(gpu_display_is_headless(d));
}

TEST_F(DisplayWeston, configure_without_a_callback_does_nothing) {
        ASSERT_EQ(gpu_display_new(-1, weston.socket_path.c_str(), 1, nullptr, nullptr, &d), 0);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 64, 48), 0);
        gpu_display_test_toplevel_configure(d, 0, 800, 600, false, false);
        EXPECT_FALSE(gpu_display_is_headless(d));
}

/* The window asks weston to maximize it (as its maximize button would):
 * weston's configure carries the maximized size, which is asked of the
 * guest; the window shows the old mode, unmaximized (weston kills a
 * client whose maximized buffer is another size), until the guest sets
 * that mode. */
TEST_F(DisplayWeston, maximized_by_weston_asks_its_size_and_the_window_follows_the_new_mode) {
        auto f1 = [](uint32_t x, uint32_t y) { return pattern(x, y, 1); };
        auto f2 = [](uint32_t x, uint32_t y) { return pattern(x, y, 2); };
        auto f3 = [](uint32_t x, uint32_t y) { return pattern(x, y, 3); };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f1)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, f1));
        ASSERT_TRUE(calls.resized.empty());

        gpu_display_test_set_maximized(d, 0, true);
        ASSERT_TRUE(wait_for_resizes(1));
        Resize r = calls.resized[0];
        /* The output, less desktop-shell's panel. */
        EXPECT_EQ(r.scanout, 0u);
        EXPECT_EQ(r.width, uint32_t(OUTPUT_WIDTH));
        EXPECT_LE(r.height, uint32_t(OUTPUT_HEIGHT));
        EXPECT_GT(r.height, uint32_t(OUTPUT_HEIGHT) - 100);

        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f2)), 0);
        EXPECT_TRUE(wait_for_window(320, 240, f2));
        EXPECT_FALSE(gpu_display_is_headless(d));

        ASSERT_EQ(gpu_display_set_mode(d, 0, r.width, r.height), 0);
        ASSERT_EQ(update_all(d, 0, Image(r.width, r.height, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f3)), 0);
        EXPECT_TRUE(wait_for_window(r.width, r.height, f3));
        EXPECT_FALSE(gpu_display_is_headless(d));
        uint32_t w = 0, h = 0;
        ASSERT_TRUE(gpu_display_test_window_size(d, 0, &w, &h));
        EXPECT_EQ(w, r.width);
        EXPECT_EQ(h, r.height);
        int vw = 0, vh = 0;
        ASSERT_TRUE(window_size(weston.scene_graph(), "Majordome", &vw, &vh));
        EXPECT_EQ(vw, int(r.width));
        EXPECT_EQ(vh, int(r.height));
        EXPECT_EQ(calls.resized.size(), 1u);
}

/* Maximized at the guest's mode, the guest picks another mode: the
 * window asks weston to unmaximize it and shows the new mode once weston
 * said so, never committing a buffer the maximized state forbids. */
TEST_F(DisplayWeston, a_new_mode_unmaximizes_a_maximized_window) {
        auto f1 = [](uint32_t x, uint32_t y) { return pattern(x, y, 1); };
        auto f4 = [](uint32_t x, uint32_t y) { return pattern(x, y, 4); };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        /* Mapped first (weston maximizes a window not shown yet to the
         * whole output, under its panel). */
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f1)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, f1));
        gpu_display_test_set_maximized(d, 0, true);
        ASSERT_TRUE(wait_for_resizes(1));
        Resize r = calls.resized[0];
        ASSERT_EQ(gpu_display_set_mode(d, 0, r.width, r.height), 0);
        ASSERT_EQ(update_all(d, 0, Image(r.width, r.height, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f1)), 0);
        ASSERT_TRUE(wait_for_window(r.width, r.height, f1));

        ASSERT_EQ(gpu_display_set_mode(d, 0, 400, 300), 0);
        ASSERT_EQ(update_all(d, 0, Image(400, 300, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f4)), 0);

        EXPECT_TRUE(wait_for_window(400, 300, f4));
        EXPECT_FALSE(gpu_display_is_headless(d));
        int vw = 0, vh = 0;
        ASSERT_TRUE(window_size(weston.scene_graph(), "Majordome", &vw, &vh));
        EXPECT_EQ(vw, 400);
        EXPECT_EQ(vh, 300);
}

/* Fullscreen (as the user's key binding would have the window ask):
 * the output's size is asked. A smaller mode shows meanwhile; a larger
 * one is never committed (weston kills a client whose fullscreen buffer
 * is larger): its frames wait until a mode that fits. */
TEST_F(DisplayWeston, fullscreen_asks_the_outputs_size_and_a_mode_too_large_waits) {
        auto f1 = [](uint32_t x, uint32_t y) { return pattern(x, y, 1); };
        auto f2 = [](uint32_t x, uint32_t y) { return pattern(x, y, 2); };
        auto f3 = [](uint32_t x, uint32_t y) { return pattern(x, y, 3); };
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        ASSERT_EQ(update_all(d, 0, Image(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f1)), 0);
        ASSERT_TRUE(wait_for_window(320, 240, f1));
        gpu_display_test_set_fullscreen(d, 0);
        ASSERT_TRUE(wait_for_resizes(1));
        EXPECT_EQ(calls.resized, (std::vector<Resize> { { 0, uint32_t(OUTPUT_WIDTH), uint32_t(OUTPUT_HEIGHT) } }));
        EXPECT_TRUE(wait_for_window(320, 240, f1));

        ASSERT_EQ(gpu_display_set_mode(d, 0, OUTPUT_WIDTH + 64, OUTPUT_HEIGHT + 32), 0);
        ASSERT_EQ(update_all(d, 0, Image(OUTPUT_WIDTH + 64, OUTPUT_HEIGHT + 32, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f2)),
                  0);
        pump(d, 300);
        EXPECT_FALSE(gpu_display_is_headless(d));
        EXPECT_TRUE(gpu_display_test_frame_pending(d, 0));

        ASSERT_EQ(gpu_display_set_mode(d, 0, OUTPUT_WIDTH, OUTPUT_HEIGHT), 0);
        ASSERT_EQ(update_all(d, 0, Image(OUTPUT_WIDTH, OUTPUT_HEIGHT, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f3)), 0);
        EXPECT_TRUE(wait_for_window(OUTPUT_WIDTH, OUTPUT_HEIGHT, f3));
        EXPECT_FALSE(gpu_display_is_headless(d));
        EXPECT_EQ(calls.resized.size(), 1u);
}

TEST_F(DisplayWeston, compositor_killed_mid_run_turns_the_display_headless_once) {
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        auto f = [](uint32_t x, uint32_t y) { return pattern(x, y, 2); };
        Image img(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f);
        ASSERT_EQ(update_all(d, 0, img), 0);
        ASSERT_TRUE(wait_for_window(320, 240, f));

        testing::internal::CaptureStderr();
        weston.kill_now();
        int r = 0;
        for (int i = 0; i < 500 && r == 0; i++) {
                struct pollfd p = { gpu_display_fd(d), POLLIN, 0 };
                if (poll(&p, 1, 10) > 0)
                        r = gpu_display_dispatch(d);
        }
        EXPECT_LT(r, 0);
        EXPECT_TRUE(gpu_display_is_headless(d));
        EXPECT_EQ(gpu_display_fd(d), -1);
        EXPECT_EQ(update_all(d, 0, img), 0);
        EXPECT_EQ(gpu_display_set_mode(d, 0, 640, 480), 0);
        EXPECT_EQ(gpu_display_dispatch(d), 0);
        EXPECT_EQ(update_all(d, 0, Image(640, 480, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, f)), 0);
        std::string log = testing::internal::GetCapturedStderr();
        EXPECT_EQ(count_lines_with(log, "headless"), 1u) << log;
}

TEST_F(DisplayWeston, update_while_the_compositor_is_dead_but_not_yet_dispatched_is_harmless) {
        connect(1);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 64, 48), 0);
        pump(d, 100);
        weston.kill_now();
        Image img(64, 48, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, [](uint32_t x, uint32_t y) { return pattern(x, y, 1); });
        for (int i = 0; i < 20; i++)
                EXPECT_EQ(update_all(d, 0, img), 0);
        testing::internal::CaptureStderr();
        int r = 0;
        for (int i = 0; i < 500 && r == 0; i++) {
                struct pollfd p = { gpu_display_fd(d), POLLIN, 0 };
                if (poll(&p, 1, 10) > 0)
                        r = gpu_display_dispatch(d);
        }
        std::string log = testing::internal::GetCapturedStderr();
        EXPECT_LT(r, 0);
        EXPECT_EQ(gpu_display_fd(d), -1);
        EXPECT_EQ(count_lines_with(log, "headless"), 1u) << log;
}

/* Without a compositor. */

TEST(DisplayHeadless, unreachable_compositor_is_headless_and_said_once) {
        GpuDisplay *d = nullptr;
        testing::internal::CaptureStderr();
        ASSERT_EQ(gpu_display_new(-1, "/nonexistent/wayland-majordome", 1, nullptr, nullptr, &d), 0);
        EXPECT_TRUE(gpu_display_is_headless(d));
        EXPECT_EQ(gpu_display_fd(d), -1);
        EXPECT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        Image img(320, 240, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, [](uint32_t x, uint32_t y) { return pattern(x, y, 1); });
        EXPECT_EQ(update_all(d, 0, img), 0);
        EXPECT_EQ(update_all(d, 0, img), 0);
        EXPECT_EQ(gpu_display_dispatch(d), 0);
        std::string log = testing::internal::GetCapturedStderr();
        EXPECT_EQ(count_lines_with(log, "headless"), 1u) << log;
        gpu_display_free(d);
}

TEST(DisplayHeadless, no_compositor_given_is_headless_and_said_once) {
        GpuDisplay *d = nullptr;
        testing::internal::CaptureStderr();
        ASSERT_EQ(gpu_display_new(-1, nullptr, 3, nullptr, nullptr, &d), 0);
        EXPECT_TRUE(gpu_display_is_headless(d));
        EXPECT_EQ(gpu_display_fd(d), -1);
        EXPECT_EQ(gpu_display_set_mode(d, 2, 64, 64), 0);
        std::string log = testing::internal::GetCapturedStderr();
        EXPECT_EQ(count_lines_with(log, "headless"), 1u) << log;
        gpu_display_free(d);
}

TEST(DisplayHeadless, bare_socket_name_without_runtime_dir_is_headless) {
        GpuDisplay *d = nullptr;
        std::string saved = getenv("XDG_RUNTIME_DIR") ?: "";
        unsetenv("XDG_RUNTIME_DIR");
        testing::internal::CaptureStderr();
        ASSERT_EQ(gpu_display_new(-1, "wayland-0", 1, nullptr, nullptr, &d), 0);
        testing::internal::GetCapturedStderr();
        if (!saved.empty())
                setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
        EXPECT_TRUE(gpu_display_is_headless(d));
        gpu_display_free(d);
}

/* A peer that accepts the connection and never answers: the start-up
 * round trip gives up after its bound (2 s) instead of hanging. */
TEST(DisplayHeadless, silent_compositor_is_given_up_on_in_bounded_time) {
        int sv[2];
        GpuDisplay *d = nullptr;
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        auto start = std::chrono::steady_clock::now();
        testing::internal::CaptureStderr();
        ASSERT_EQ(gpu_display_new(sv[0], nullptr, 1, nullptr, nullptr, &d), 0);
        std::string log = testing::internal::GetCapturedStderr();
        auto elapsed = std::chrono::steady_clock::now() - start;
        EXPECT_TRUE(gpu_display_is_headless(d));
        EXPECT_LT(elapsed, std::chrono::seconds(5));
        EXPECT_EQ(count_lines_with(log, "did not answer"), 1u) << log;
        gpu_display_free(d);
        close(sv[1]);
}

TEST(DisplayHeadless, free_accepts_null) {
        EXPECT_EQ(gpu_display_free(nullptr), nullptr);
}

/* Pixel conversion, every virtio-gpu 32-bit format, exact. */
TEST(DisplayConvert, every_32_bit_format_becomes_xrgb8888_with_alpha_ignored) {
        const Rgb c = { 0x12, 0x34, 0x56 };
        for (uint32_t format : FORMATS) {
                uint8_t src[8], dst[8];
                encode(format, c, src);
                encode(format, { 0xab, 0xcd, 0xef }, src + 4);
                ASSERT_EQ(gpu_display_convert_row(format, dst, src, 2), 0) << format;
                EXPECT_EQ(dst[0], 0x56) << format;
                EXPECT_EQ(dst[1], 0x34) << format;
                EXPECT_EQ(dst[2], 0x12) << format;
                EXPECT_EQ(dst[4], 0xef) << format;
                EXPECT_EQ(dst[5], 0xcd) << format;
                EXPECT_EQ(dst[6], 0xab) << format;
                /* X is 0xff whatever the alpha (weston shows X = 0 black). */
                EXPECT_EQ(dst[3], 0xff) << format;
                EXPECT_EQ(dst[7], 0xff) << format;
        }
}

/* The cursor: ARGB8888, an A format's alpha kept, an X format's
 * junk made opaque. */
TEST(DisplayConvert, cursor_keeps_the_alpha_of_a_formats_and_makes_x_formats_opaque) {
        const Rgb c = { 0x12, 0x34, 0x56 };
        for (uint32_t format : FORMATS) {
                bool alpha = format == VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM || format == VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM ||
                             format == VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM || format == VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM;
                uint8_t src[4], dst[4];
                encode(format, c, src);         /* alpha or X: 0x5a */
                ASSERT_EQ(gpu_display_convert_cursor_row(format, dst, src, 1), 0) << format;
                EXPECT_EQ(dst[0], 0x56) << format;
                EXPECT_EQ(dst[1], 0x34) << format;
                EXPECT_EQ(dst[2], 0x12) << format;
                EXPECT_EQ(dst[3], alpha ? 0x5a : 0xff) << format;
        }
        uint8_t px[4] = {};
        EXPECT_EQ(gpu_display_convert_cursor_row(5, px, px, 1), -EOPNOTSUPP);
}

TEST(DisplayConvert, other_formats_are_not_supported) {
        uint8_t px[4] = {};
        EXPECT_EQ(gpu_display_convert_row(0, px, px, 1), -EOPNOTSUPP);
        EXPECT_EQ(gpu_display_convert_row(5, px, px, 1), -EOPNOTSUPP);
        EXPECT_EQ(gpu_display_convert_row(VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM + 1, px, px, 1), -EOPNOTSUPP);
}

/* Bad arguments: each rejected as display.h says (headless or not, the
 * checks are the same code). */
class DisplayArgs : public ::testing::Test {
protected:
        void SetUp() override {
                testing::internal::CaptureStderr();
                ASSERT_EQ(gpu_display_new(-1, nullptr, 2, nullptr, nullptr, &d), 0);
                testing::internal::GetCapturedStderr();
                ASSERT_EQ(gpu_display_set_mode(d, 0, 320, 240), 0);
        }
        void TearDown() override { gpu_display_free(d); }
        int update(unsigned scanout, uint32_t format, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                   uint32_t stride = 320 * 4) {
                return gpu_display_update(d, scanout, pixels.data(), stride, format, x, y, w, h);
        }
        GpuDisplay *d = nullptr;
        std::vector<uint8_t> pixels = std::vector<uint8_t>(320 * 240 * 4);
        static constexpr uint32_t FMT = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;
};

TEST(DisplayNewArgs, new_rejects_zero_scanouts) {
        GpuDisplay *d = nullptr;
        EXPECT_EQ(gpu_display_new(-1, nullptr, 0, nullptr, nullptr, &d), -EINVAL);
        EXPECT_EQ(d, nullptr);
}

TEST(DisplayNewArgs, new_rejects_more_than_16_scanouts) {
        GpuDisplay *d = nullptr;
        EXPECT_EQ(gpu_display_new(-1, nullptr, GPU_DISPLAY_MAX_SCANOUTS + 1, nullptr, nullptr, &d), -EINVAL);
        EXPECT_EQ(d, nullptr);
}

TEST(DisplayNewArgs, new_takes_the_fd_even_on_failure) {
        int sv[2];
        GpuDisplay *d = nullptr;
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        EXPECT_EQ(gpu_display_new(sv[0], nullptr, 0, nullptr, nullptr, &d), -EINVAL);
        EXPECT_EQ(fcntl(sv[0], F_GETFD), -1);
        close(sv[1]);
}

TEST_F(DisplayArgs, set_mode_rejects_a_scanout_out_of_range) {
        EXPECT_EQ(gpu_display_set_mode(d, 2, 64, 64), -EINVAL);
        EXPECT_EQ(gpu_display_set_mode(d, GPU_DISPLAY_MAX_SCANOUTS, 64, 64), -EINVAL);
}

TEST_F(DisplayArgs, set_mode_rejects_a_size_past_16384) {
        EXPECT_EQ(gpu_display_set_mode(d, 1, 16385, 64), -EINVAL);
        EXPECT_EQ(gpu_display_set_mode(d, 1, 64, 16385), -EINVAL);
        EXPECT_EQ(gpu_display_set_mode(d, 1, UINT32_MAX, UINT32_MAX), -EINVAL);
        EXPECT_EQ(gpu_display_set_mode(d, 1, 16384, 1), 0);
}

TEST_F(DisplayArgs, set_mode_rejects_one_side_zero) {
        EXPECT_EQ(gpu_display_set_mode(d, 1, 0, 64), -EINVAL);
        EXPECT_EQ(gpu_display_set_mode(d, 1, 64, 0), -EINVAL);
}

TEST_F(DisplayArgs, update_rejects_a_scanout_out_of_range) {
        EXPECT_EQ(update(2, FMT, 0, 0, 1, 1), -EINVAL);
        EXPECT_EQ(update(UINT32_MAX, FMT, 0, 0, 1, 1), -EINVAL);
}

TEST_F(DisplayArgs, update_rejects_a_scanout_not_enabled) {
        EXPECT_EQ(update(1, FMT, 0, 0, 1, 1), -EINVAL);
        ASSERT_EQ(gpu_display_set_mode(d, 0, 0, 0), 0);
        EXPECT_EQ(update(0, FMT, 0, 0, 1, 1), -EINVAL);
}

TEST_F(DisplayArgs, update_rejects_a_rectangle_outside_the_mode) {
        EXPECT_EQ(update(0, FMT, 0, 0, 321, 240), -EINVAL);
        EXPECT_EQ(update(0, FMT, 0, 0, 320, 241), -EINVAL);
        EXPECT_EQ(update(0, FMT, 300, 0, 21, 1), -EINVAL);
        EXPECT_EQ(update(0, FMT, 0, 240, 1, 1), -EINVAL);
        EXPECT_EQ(update(0, FMT, 320, 0, 1, 1), -EINVAL);
        EXPECT_EQ(update(0, FMT, 0, 0, 320, 240), 0);
}

TEST_F(DisplayArgs, update_rejects_a_rectangle_that_wraps) {
        EXPECT_EQ(update(0, FMT, UINT32_MAX, 0, 2, 1), -EINVAL);
        EXPECT_EQ(update(0, FMT, 0, UINT32_MAX, 1, 2), -EINVAL);
        EXPECT_EQ(update(0, FMT, 1, 1, UINT32_MAX, UINT32_MAX), -EINVAL);
}

TEST_F(DisplayArgs, update_rejects_an_empty_rectangle) {
        EXPECT_EQ(update(0, FMT, 0, 0, 0, 1), -EINVAL);
        EXPECT_EQ(update(0, FMT, 0, 0, 1, 0), -EINVAL);
}

TEST_F(DisplayArgs, update_rejects_an_unknown_format) {
        EXPECT_EQ(update(0, 0, 0, 0, 1, 1), -EOPNOTSUPP);
        EXPECT_EQ(update(0, 5, 0, 0, 1, 1), -EOPNOTSUPP);
        EXPECT_EQ(update(0, 200, 0, 0, 1, 1), -EOPNOTSUPP);
}

TEST_F(DisplayArgs, update_rejects_a_stride_shorter_than_the_rectangle) {
        EXPECT_EQ(update(0, FMT, 0, 0, 320, 1, 320 * 4 - 1), -EINVAL);
        EXPECT_EQ(update(0, FMT, 10, 0, 300, 1, 300 * 4), -EINVAL);
}

TEST_F(DisplayArgs, update_rejects_null_pixels) {
        EXPECT_EQ(gpu_display_update(d, 0, nullptr, 320 * 4, FMT, 0, 0, 1, 1), -EINVAL);
}

TEST_F(DisplayArgs, set_cursor_rejects_a_scanout_out_of_range) {
        EXPECT_EQ(gpu_display_set_cursor(d, 2, pixels.data(), FMT, 0, 0), -EINVAL);
        EXPECT_EQ(gpu_display_set_cursor(d, UINT32_MAX, nullptr, 0, 0, 0), -EINVAL);
        EXPECT_EQ(gpu_display_move_cursor(d, 2, 0, 0), -EINVAL);
        EXPECT_EQ(gpu_display_move_cursor(d, GPU_DISPLAY_MAX_SCANOUTS, 0, 0), -EINVAL);
}

TEST_F(DisplayArgs, set_cursor_rejects_a_hotspot_outside_the_image) {
        EXPECT_EQ(gpu_display_set_cursor(d, 0, pixels.data(), FMT, GPU_DISPLAY_CURSOR_SIZE, 0), -EINVAL);
        EXPECT_EQ(gpu_display_set_cursor(d, 0, pixels.data(), FMT, 0, GPU_DISPLAY_CURSOR_SIZE), -EINVAL);
        EXPECT_EQ(gpu_display_set_cursor(d, 0, pixels.data(), FMT, 63, 63), 0);
}

TEST_F(DisplayArgs, set_cursor_rejects_an_unknown_format) {
        EXPECT_EQ(gpu_display_set_cursor(d, 0, pixels.data(), 0, 0, 0), -EOPNOTSUPP);
        EXPECT_EQ(gpu_display_set_cursor(d, 0, pixels.data(), 200, 0, 0), -EOPNOTSUPP);
}

/* Hiding takes no image, format nor hotspot; a cursor may go on a
 * scanout without a mode, anywhere. */
TEST_F(DisplayArgs, cursor_hidden_or_on_a_disabled_scanout_is_accepted) {
        EXPECT_EQ(gpu_display_set_cursor(d, 0, nullptr, 200, 99, 99), 0);
        EXPECT_EQ(gpu_display_set_cursor(d, 1, pixels.data(), FMT, 0, 0), 0);
        EXPECT_EQ(gpu_display_move_cursor(d, 1, INT32_MIN, INT32_MAX), 0);
}

TEST_F(DisplayArgs, calls_reject_a_null_display) {
        EXPECT_EQ(gpu_display_set_mode(nullptr, 0, 64, 64), -EINVAL);
        EXPECT_EQ(gpu_display_update(nullptr, 0, pixels.data(), 320 * 4, FMT, 0, 0, 1, 1), -EINVAL);
        EXPECT_EQ(gpu_display_set_cursor(nullptr, 0, nullptr, 0, 0, 0), -EINVAL);
        EXPECT_EQ(gpu_display_move_cursor(nullptr, 0, 0, 0), -EINVAL);
        EXPECT_EQ(gpu_display_dispatch(nullptr), -EINVAL);
        EXPECT_EQ(gpu_display_fd(nullptr), -1);
        EXPECT_TRUE(gpu_display_is_headless(nullptr));
}
