/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A real weston 10 for gpu/display's tests and benchmark: headless
 * back-end, pixman renderer, in a fresh 0700 runtime directory, read back
 * through weston-screenshooter (its --debug protocol) and libpng. With a
 * seat (a keyboard and a pointer, which headless has not): the X11
 * back-end on an Xvfb of its own. */

#include <png.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/util.h"

namespace weston_test {

namespace fs = std::filesystem;

constexpr int OUTPUT_WIDTH = 1024;
constexpr int OUTPUT_HEIGHT = 768;
constexpr const char *SOCKET_NAME = "wl-majordome-test";
/* weston.ini: no animation (a fading desktop changes every pixel), a
 * solid background of a known colour. */
constexpr uint8_t BACKGROUND[3] = { 0x20, 0x40, 0x60 };
constexpr const char *WESTON_INI = "[core]\nidle-time=0\n"
                                   "[shell]\nstartup-animation=none\nanimation=none\nclose-animation=none\n"
                                   "focus-animation=none\nbackground-color=0xff204060\nbackground-image=\n"
                                   "locking=false\n";

struct Rgb {
        uint8_t r, g, b;
        bool operator==(const Rgb &o) const { return r == o.r && g == o.g && b == o.b; }
};

/* The 8 x 8 top-left corner of every test image: found in a screenshot
 * to learn where weston put the window. */
constexpr int MARKER = 8;
constexpr Rgb MARKER_COLOUR = { 0xfe, 0x01, 0xfd };

struct Screenshot {
        int width = 0, height = 0;
        std::vector<uint8_t> rgb;
        Rgb at(int x, int y) const {
                const uint8_t *p = &rgb[(size_t(y) * width + x) * 3];
                return { p[0], p[1], p[2] };
        }
        /* The top-left of the first 8 x 8 block of MARKER_COLOUR. */
        bool find_marker(int *ret_x, int *ret_y) const {
                for (int y = 0; y + MARKER <= height; y++)
                        for (int x = 0; x + MARKER <= width; x++) {
                                bool all = true;
                                for (int j = 0; j < MARKER && all; j++)
                                        for (int i = 0; i < MARKER && all; i++)
                                                all = at(x + i, y + j) == MARKER_COLOUR;
                                if (all) {
                                        *ret_x = x;
                                        *ret_y = y;
                                        return true;
                                }
                        }
                return false;
        }
        /* Pixels of the w x h window at (ox, oy) that differ from f. */
        size_t mismatches(int ox, int oy, uint32_t w, uint32_t h,
                          const std::function<Rgb(uint32_t, uint32_t)> &f) const {
                size_t n = 0;
                if (ox + int(w) > width || oy + int(h) > height)
                        return size_t(w) * h;
                for (uint32_t y = 0; y < h; y++)
                        for (uint32_t x = 0; x < w; x++)
                                n += !(at(ox + int(x), oy + int(y)) == f(x, y));
                return n;
        }
        size_t count(Rgb c) const {
                size_t n = 0;
                for (int y = 0; y < height; y++)
                        for (int x = 0; x < width; x++)
                                n += at(x, y) == c;
                return n;
        }
};

inline std::string find_program(const char *name) {
        const char *path = getenv("PATH");
        std::string dirs = path ? path : "/usr/bin:/bin";
        size_t start = 0;

        while (start <= dirs.size()) {
                size_t end = dirs.find(':', start);
                if (end == std::string::npos)
                        end = dirs.size();
                std::string candidate = dirs.substr(start, end - start) + "/" + name;
                if (access(candidate.c_str(), X_OK) == 0)
                        return candidate;
                start = end + 1;
        }
        return "";
}

/* Runs argv in cwd with XDG_RUNTIME_DIR and WAYLAND_DISPLAY set (and
 * DISPLAY when given), output to log; the child dies with the test
 * (PR_SET_PDEATHSIG). */
inline pid_t spawn(const std::vector<std::string> &argv, const std::string &cwd, const std::string &runtime_dir,
            const std::string &log, const std::string &x_display = "") {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || chdir(cwd.c_str()) < 0)
                _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("XDG_RUNTIME_DIR", runtime_dir.c_str(), 1);
        setenv("WAYLAND_DISPLAY", SOCKET_NAME, 1);
        unsetenv("WAYLAND_SOCKET");
        if (!x_display.empty())
                setenv("DISPLAY", x_display.c_str(), 1);
        std::vector<char *> args;
        for (const auto &a : argv)
                args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
}

/* Waits for pid at most timeout_ms; kills it past that. */
inline int wait_bounded(pid_t pid, int timeout_ms) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int status;

        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (r < 0)
                        return -errno;
                if (std::chrono::steady_clock::now() > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        return -ETIMEDOUT;
                }
                usleep(5000);
        }
}

/* weston, headless, in a fresh 0700 runtime directory; killed and the
 * directory removed in the destructor, whatever happened. */
class Weston {
public:
        Weston(int width = OUTPUT_WIDTH, int height = OUTPUT_HEIGHT) : out_width(width), out_height(height) {}
        ~Weston() { stop(); }

        /* "" when it runs; else why it does not. seat: on Xvfb, with a
         * keyboard and a pointer. shell: weston's --shell (kiosk-shell.so
         * makes every window fullscreen), else its desktop-shell. */
        std::string start(bool seat = false, const std::string &shell = "") {
                std::string weston = find_program("weston");
                screenshooter = find_program("weston-screenshooter");
                if (weston.empty() || screenshooter.empty())
                        return "weston or weston-screenshooter is not installed (Debian: weston)";
                std::string x_display;
                if (seat) {
                        std::string why = start_xvfb(&x_display);
                        if (!why.empty())
                                return why;
                }

                char tmpl[] = "/tmp/majordome-weston-XXXXXX";
                if (!mkdtemp(tmpl))         /* mode 0700 */
                        return std::string("mkdtemp: ") + strerror(errno);
                dir = tmpl;
                std::ofstream(dir + "/weston.ini") << WESTON_INI;
                socket_path = dir + "/" + SOCKET_NAME;
                std::vector<std::string> argv = { weston, "-B", seat ? "x11-backend.so" : "headless-backend.so",
                                                  "--use-pixman", std::string("--socket=") + SOCKET_NAME,
                                                  "--width=" + std::to_string(out_width),
                                                  "--height=" + std::to_string(out_height), "--debug",
                                                  "--idle-time=0", "--config=" + dir + "/weston.ini" };
                if (!shell.empty())
                        argv.push_back("--shell=" + shell);
                pid = spawn(argv, dir, dir, dir + "/weston.log", x_display);
                if (pid < 0)
                        return std::string("fork: ") + strerror(errno);

                for (int i = 0; i < 1000; i++) {
                        int fd = -1;
                        if (connect_unix(socket_path.c_str(), SOCK_STREAM, &fd) == 0) {
                                close(fd);
                                return "";
                        }
                        if (waitpid(pid, nullptr, WNOHANG) == pid) {
                                pid = -1;
                                return "weston exited at start-up: " + log();
                        }
                        usleep(10000);
                }
                return "weston's socket did not appear in 10 s: " + log();
        }

        void kill_now() {
                if (pid > 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, nullptr, 0);
                }
                pid = -1;
        }

        void stop() {
                if (pid > 0) {
                        kill(pid, SIGTERM);
                        if (wait_bounded(pid, 3000) == -ETIMEDOUT)
                                pid = -1;       /* wait_bounded killed it */
                }
                pid = -1;
                if (xvfb > 0) {
                        kill(xvfb, SIGTERM);
                        (void) wait_bounded(xvfb, 3000);
                        xvfb = -1;
                }
                if (!dir.empty()) {
                        std::error_code ec;
                        fs::remove_all(dir, ec);
                        dir.clear();
                }
        }

        std::string log() const {
                std::ifstream f(dir + "/weston.log");
                return std::string(std::istreambuf_iterator<char>(f), {});
        }

        /* What weston shows now, read back through its screenshooter. */
        bool screenshot(Screenshot *ret) {
                std::string cwd = dir + "/shot-" + std::to_string(shots++);
                fs::create_directory(cwd);
                pid_t p = spawn({ screenshooter }, cwd, dir, dir + "/screenshooter.log");
                if (p < 0 || wait_bounded(p, 5000) != 0)
                        return false;

                bool ok = false;
                for (const auto &e : fs::directory_iterator(cwd)) {
                        png_image image;
                        memset(&image, 0, sizeof(image));
                        image.version = PNG_IMAGE_VERSION;
                        if (!png_image_begin_read_from_file(&image, e.path().c_str()))
                                continue;
                        image.format = PNG_FORMAT_RGB;
                        ret->width = int(image.width);
                        ret->height = int(image.height);
                        ret->rgb.assign(PNG_IMAGE_SIZE(image), 0);
                        ok = png_image_finish_read(&image, nullptr, ret->rgb.data(), 0, nullptr) != 0;
                        png_image_free(&image);
                        break;
                }
                std::error_code ec;
                fs::remove_all(cwd, ec);
                return ok;
        }

        /* weston's scene graph as its debug protocol dumps it
         * (weston-debug scene-graph): every view with its role, title
         * and position. "" on failure. */
        std::string scene_graph() {
                std::string debug = find_program("weston-debug");
                std::string out = dir + "/scene-graph-" + std::to_string(shots++);
                if (debug.empty())
                        return "";
                pid_t p = spawn({ debug, "scene-graph" }, dir, dir, out);
                if (p < 0 || wait_bounded(p, 5000) != 0)
                        return "";
                std::ifstream f(out);
                std::string text((std::istreambuf_iterator<char>(f)), {});
                unlink(out.c_str());
                return text;
        }

        std::string dir, socket_path, screenshooter;
        pid_t pid = -1, xvfb = -1;
        unsigned shots = 0;
        int out_width, out_height;

private:
        /* An X server for weston's X11 back-end, on a free display number
         * it picks itself (-displayfd); "" and ":N", or why not. */
        std::string start_xvfb(std::string *ret_display) {
                std::string path = find_program("Xvfb");
                int p[2];
                if (path.empty())
                        return "Xvfb is not installed (Debian: xvfb): weston's X11 back-end gives the seat";
                if (pipe2(p, O_CLOEXEC) < 0)
                        return std::string("pipe: ") + strerror(errno);
                std::string size = std::to_string(out_width) + "x" + std::to_string(out_height) + "x24";
                xvfb = fork();
                if (xvfb == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                        if (dup2(p[1], 3) < 0 || null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                                _exit(127);
                        execl(path.c_str(), "Xvfb", "-displayfd", "3", "-nolisten", "tcp", "-screen", "0",
                              size.c_str(), (char *) nullptr);
                        _exit(127);
                }
                close(p[1]);
                std::string number;
                char c;
                pollfd pf = { p[0], POLLIN, 0 };
                while (poll(&pf, 1, 10000) == 1 && read(p[0], &c, 1) == 1 && c != '\n')
                        number += c;
                close(p[0]);
                if (xvfb < 0 || number.empty())
                        return "Xvfb did not start";
                *ret_display = ":" + number;
                return "";
        }
};

/* The size of the toplevel titled title in a scene graph dump (its
 * "position: (x0, y0) -> (x1, y1)" line); false when there is none. */
inline bool window_size(const std::string &graph, const std::string &title, int *ret_w, int *ret_h) {
        size_t at = graph.find("top-level window '" + title + "' of majordome");
        int x0, y0, x1, y1;
        if (at == std::string::npos)
                return false;
        at = graph.find("position:", at);
        if (at == std::string::npos ||
            sscanf(graph.c_str() + at, "position: (%d, %d) -> (%d, %d)", &x0, &y0, &x1, &y1) != 4)
                return false;
        *ret_w = x1 - x0;
        *ret_h = y1 - y0;
        return true;
}

} /* namespace weston_test */
