// SPDX-License-Identifier: BSD-3-Clause
// vmc's command line, parsed without a bus.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/vmc-args.h"

namespace {

// Owns writable copies of the arguments, as getopt_long may reorder them.
struct Argv {
        std::vector<std::string> storage;
        std::vector<char *> ptrs;

        explicit Argv(std::vector<std::string> args) : storage(std::move(args)) {
                storage.insert(storage.begin(), "vmc");
                for (auto &s : storage)
                        ptrs.push_back(s.data());
                ptrs.push_back(nullptr);
        }
        int argc() const { return (int) storage.size(); }
        char **argv() { return ptrs.data(); }
};

struct Parsed {
        VmcArgs args{};
        std::string error;
        int r = 0;

        ~Parsed() {
                if (r == 0)
                        vmc_args_done(&args);
        }
};

}  // namespace

// Arguments live as long as the test's Argv, so tests keep it in scope.
#define PARSE(p, ...)                                                     \
        Argv argv_##p({__VA_ARGS__});                                     \
        Parsed p;                                                         \
        do {                                                              \
                char *err_ = nullptr;                                     \
                p.r = vmc_args_parse(argv_##p.argc(), argv_##p.argv(), &p.args, &err_); \
                p.error = err_ ? err_ : "";                               \
                free(err_);                                               \
        } while (0)

TEST(VmcArgs, start_takes_every_option) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--initrd", "/i", "--cmdline", "console=ttyS0",
              "--mem", "512M", "--cpus", "2", "--disk", "/a.img", "--disk", "/b.img,ro", "--vsock",
              "--balloon", "--serial-log", "/log", "--debug-exit", "--on-panic", "pause");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_EQ(p.args.command, VMC_COMMAND_START);
        EXPECT_STREQ(p.args.name, "demo");
        EXPECT_STREQ(p.args.kernel, "/k");
        EXPECT_STREQ(p.args.initrd, "/i");
        EXPECT_STREQ(p.args.cmdline, "console=ttyS0");
        EXPECT_EQ(p.args.memory, 512ull << 20);
        EXPECT_EQ(p.args.cpus, 2u);
        ASSERT_EQ(p.args.n_disks, 2u);
        EXPECT_STREQ(p.args.disks[0].path, "/a.img");
        EXPECT_FALSE(p.args.disks[0].read_only);
        EXPECT_STREQ(p.args.disks[1].path, "/b.img");
        EXPECT_TRUE(p.args.disks[1].read_only);
        EXPECT_TRUE(p.args.vsock);
        EXPECT_TRUE(p.args.balloon);
        EXPECT_STREQ(p.args.serial_log, "/log");
        EXPECT_TRUE(p.args.debug_exit);
        EXPECT_STREQ(p.args.on_panic, "pause");
}

TEST(VmcArgs, start_refuses_an_unknown_on_panic_action) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--on-panic", "reboot");

        EXPECT_EQ(p.r, -EINVAL);
        EXPECT_NE(p.error.find("--on-panic 'reboot'"), std::string::npos) << p.error;
}

TEST(VmcArgs, start_takes_scope_limits_and_live_shares) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--memory-max", "1G", "--cpu-weight", "50", "--live-shares");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_EQ(p.args.memory_max, 1ull << 30);
        EXPECT_EQ(p.args.cpu_weight, 50u);
        EXPECT_TRUE(p.args.live_shares);
}

TEST(VmcArgs, start_refuses_cpu_weights_systemd_would) {
        for (const char *w : { "0", "10001", "x" }) {
                PARSE(p, "start", "demo", "--kernel", "/k", "--cpu-weight", w);
                EXPECT_EQ(p.r, -EINVAL) << w;
                EXPECT_NE(p.error.find("--cpu-weight takes 1 to 10000"), std::string::npos) << p.error;
        }
        PARSE(q, "start", "demo", "--kernel", "/k", "--memory-max", "0");
        EXPECT_EQ(q.r, -EINVAL);
}

TEST(VmcArgs, start_without_kernel_is_a_usage_error) {
        PARSE(p, "start", "demo");

        EXPECT_EQ(p.r, -EINVAL);
        EXPECT_NE(p.error.find("--kernel"), std::string::npos) << p.error;
}

TEST(VmcArgs, start_without_name_says_the_name_is_missing) {
        PARSE(p, "start", "--kernel", "/k");

        EXPECT_EQ(p.r, -EINVAL);
        EXPECT_NE(p.error.find("missing VM name"), std::string::npos) << p.error;
}

TEST(VmcArgs, start_rejects_bad_sizes_and_counts) {
        PARSE(a, "start", "demo", "--kernel", "/k", "--mem", "lots");
        PARSE(b, "start", "demo", "--kernel", "/k", "--mem", "0");
        PARSE(c, "start", "demo", "--kernel", "/k", "--cpus", "0");
        PARSE(d, "start", "demo", "--kernel", "/k", "--cpus", "99999999999");

        EXPECT_EQ(a.r, -EINVAL);
        EXPECT_NE(a.error.find("'lots'"), std::string::npos) << a.error;
        EXPECT_EQ(b.r, -EINVAL);
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_EQ(d.r, -EINVAL);
}

TEST(VmcArgs, start_takes_the_gpu_and_its_display) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--gpu", "--display", "800x600", "--displays", "2",
              "--wayland-socket", "/run/user/1000/wayland-1");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.gpu);
        EXPECT_EQ(p.args.gpu_width, 800u);
        EXPECT_EQ(p.args.gpu_height, 600u);
        EXPECT_TRUE(p.args.gpu_displays_set);
        EXPECT_EQ(p.args.gpu_displays, 2u);
        EXPECT_STREQ(p.args.wayland_socket, "/run/user/1000/wayland-1");
        EXPECT_FALSE(p.args.headless);
}

TEST(VmcArgs, start_gpu_3d_is_a_gpu_with_virglrenderer) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--gpu-3d", "--display", "640x480");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.gpu);
        EXPECT_TRUE(p.args.gpu_3d);
        EXPECT_EQ(p.args.gpu_width, 640u);
}

TEST(VmcArgs, start_video_asks_for_both_video_devices) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--video");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.video);
}

TEST(VmcArgs, start_gpu_alone_leaves_everything_to_the_daemon) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--gpu", "--displays", "0");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.gpu);
        EXPECT_EQ(p.args.gpu_width, 0u);
        EXPECT_TRUE(p.args.gpu_displays_set);
        EXPECT_EQ(p.args.gpu_displays, 0u);
        EXPECT_EQ(p.args.wayland_socket, nullptr);
}

TEST(VmcArgs, start_gpu_options_need_gpu_and_agree) {
        PARSE(a, "start", "demo", "--kernel", "/k", "--display", "800x600");
        PARSE(b, "start", "demo", "--kernel", "/k", "--headless");
        PARSE(c, "start", "demo", "--kernel", "/k", "--gpu", "--headless", "--wayland-socket", "/s");
        PARSE(d, "start", "demo", "--kernel", "/k", "--gpu", "--display", "800");
        PARSE(e, "start", "demo", "--kernel", "/k", "--gpu", "--display", "0x600");

        EXPECT_EQ(a.r, -EINVAL);
        EXPECT_NE(a.error.find("--display needs --gpu"), std::string::npos) << a.error;
        EXPECT_EQ(b.r, -EINVAL);
        EXPECT_NE(b.error.find("--headless needs --gpu"), std::string::npos) << b.error;
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_NE(c.error.find("not both"), std::string::npos) << c.error;
        EXPECT_EQ(d.r, -EINVAL);
        EXPECT_NE(d.error.find("invalid --display '800'"), std::string::npos) << d.error;
        EXPECT_EQ(e.r, -EINVAL);
}

TEST(VmcArgs, start_wayland_is_a_gpu_with_cross_domain) {
        PARSE(p, "start", "demo", "--kernel", "/k", "--wayland");
        PARSE(q, "start", "demo", "--kernel", "/k", "--gpu-3d", "--wayland", "--wayland-socket", "/run/w");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.gpu);
        EXPECT_TRUE(p.args.wayland);
        EXPECT_FALSE(p.args.gpu_3d);
        EXPECT_EQ(p.args.wayland_socket, nullptr);
        ASSERT_EQ(q.r, 0) << q.error;
        EXPECT_TRUE(q.args.gpu_3d && q.args.wayland);
        EXPECT_STREQ(q.args.wayland_socket, "/run/w");
}

TEST(VmcArgs, start_wayland_and_headless_are_refused_together) {
        PARSE(a, "start", "demo", "--kernel", "/k", "--wayland", "--headless");
        PARSE(b, "start", "demo", "--kernel", "/k", "--gpu", "--headless", "--wayland");

        EXPECT_EQ(a.r, -EINVAL);
        EXPECT_NE(a.error.find("give --headless or --wayland, not both"), std::string::npos) << a.error;
        EXPECT_EQ(b.r, -EINVAL);
}

TEST(VmcArgs, display_sizes_are_width_x_height) {
        uint32_t w = 0, h = 0;

        EXPECT_EQ(vmc_parse_display("1280x720", &w, &h), 0);
        EXPECT_EQ(w, 1280u);
        EXPECT_EQ(h, 720u);
        EXPECT_EQ(vmc_parse_display("640X480", &w, &h), 0);
        EXPECT_EQ(h, 480u);
        EXPECT_EQ(vmc_parse_display("x480", &w, &h), -EINVAL);
        EXPECT_EQ(vmc_parse_display("640x", &w, &h), -EINVAL);
        EXPECT_EQ(vmc_parse_display("640x480x2", &w, &h), -EINVAL);
        EXPECT_EQ(vmc_parse_display("-1x480", &w, &h), -EINVAL);
}

TEST(VmcArgs, wayland_socket_comes_from_the_environment_as_libwayland_finds_it) {
        auto from_env = [](const char *xdg, const char *display) {
                char *p = vmc_wayland_socket_from_env(xdg, display);
                std::string s = p ? p : "(none)";
                free(p);
                return s;
        };

        EXPECT_EQ(from_env("/run/user/1000", "wayland-0"), "/run/user/1000/wayland-0");
        EXPECT_EQ(from_env("/run/user/1000", "/tmp/my-compositor"), "/tmp/my-compositor");
        EXPECT_EQ(from_env(nullptr, "/tmp/my-compositor"), "/tmp/my-compositor");
        EXPECT_EQ(from_env(nullptr, "wayland-0"), "(none)");
        EXPECT_EQ(from_env("", "wayland-0"), "(none)");
        EXPECT_EQ(from_env("/run/user/1000", nullptr), "(none)");
        EXPECT_EQ(from_env("/run/user/1000", ""), "(none)");
}

TEST(VmcArgs, start_limits_the_number_of_disks) {
        std::vector<std::string> words = {"start", "demo", "--kernel", "/k"};
        for (int i = 0; i <= VMC_DISKS_MAX; i++) {
                words.push_back("--disk");
                words.push_back("/d" + std::to_string(i));
        }
        Argv argv(words);
        VmcArgs args{};
        char *error = nullptr;

        EXPECT_EQ(vmc_args_parse(argv.argc(), argv.argv(), &args, &error), -EINVAL);
        ASSERT_NE(error, nullptr);
        EXPECT_NE(std::string(error).find("at most"), std::string::npos);
        free(error);
}

TEST(VmcArgs, disk_flags_follow_the_last_comma) {
        char *path = nullptr;
        bool ro = false;

        ASSERT_EQ(vmc_parse_disk("/a,b.img,ro", &path, &ro), 0);
        EXPECT_STREQ(path, "/a,b.img");
        EXPECT_TRUE(ro);
        free(path);
        ASSERT_EQ(vmc_parse_disk("/x.img,rw", &path, &ro), 0);
        EXPECT_STREQ(path, "/x.img");
        EXPECT_FALSE(ro);
        free(path);
        EXPECT_EQ(vmc_parse_disk("/x.img,readonly", &path, &ro), -EINVAL);
        EXPECT_EQ(vmc_parse_disk(",ro", &path, &ro), -EINVAL);
        EXPECT_EQ(vmc_parse_disk("", &path, &ro), -EINVAL);
}

TEST(VmcArgs, share_flags_and_tag_follow_the_path) {
        VmcShare sh = {};

        ASSERT_EQ(vmc_parse_share("/srv/data", &sh), 0);
        EXPECT_STREQ(sh.path, "/srv/data");
        EXPECT_EQ(sh.tag, nullptr);
        EXPECT_EQ(sh.cache, nullptr);
        EXPECT_FALSE(sh.read_only);
        vmc_share_done(&sh);
        ASSERT_EQ(vmc_parse_share("/srv/data:dt:ro:cache=never", &sh), 0);
        EXPECT_STREQ(sh.path, "/srv/data");
        EXPECT_STREQ(sh.tag, "dt");
        EXPECT_STREQ(sh.cache, "never");
        EXPECT_TRUE(sh.read_only);
        vmc_share_done(&sh);
        ASSERT_EQ(vmc_parse_share("/srv/data:ro", &sh), 0);
        EXPECT_STREQ(sh.path, "/srv/data");
        EXPECT_EQ(sh.tag, nullptr);
        EXPECT_TRUE(sh.read_only);
        vmc_share_done(&sh);
        /* A path with ':' needs its tag after it. */
        ASSERT_EQ(vmc_parse_share("/a:b:t", &sh), 0);
        EXPECT_STREQ(sh.path, "/a:b");
        EXPECT_STREQ(sh.tag, "t");
        vmc_share_done(&sh);
        EXPECT_EQ(vmc_parse_share("/a:cache=sometimes", &sh), -EINVAL);
        EXPECT_LT(vmc_parse_share(":ro", &sh), 0); /* no PATH: a relative ":ro", not found */
        EXPECT_EQ(vmc_parse_share("", &sh), -EINVAL);
        EXPECT_EQ(vmc_parse_share("surely-not-here-xyz", &sh), -ENOENT);
}

TEST(VmcArgs, share_and_unshare_take_their_arguments) {
        PARSE(p, "share", "demo", "/srv/x", "--read-only", "--tag", "x1", "--cache", "always");
        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_EQ(p.args.command, VMC_COMMAND_SHARE);
        ASSERT_EQ(p.args.n_shares, 1u);
        EXPECT_STREQ(p.args.shares[0].path, "/srv/x");
        EXPECT_STREQ(p.args.shares[0].tag, "x1");
        EXPECT_STREQ(p.args.shares[0].cache, "always");
        EXPECT_TRUE(p.args.shares[0].read_only);
        PARSE(q, "unshare", "demo", "x1");
        ASSERT_EQ(q.r, 0) << q.error;
        EXPECT_STREQ(q.args.tag, "x1");
        PARSE(b, "share", "demo", "/srv/x", "--cache", "maybe");
        EXPECT_EQ(b.r, -EINVAL);
}

TEST(VmcArgs, durations_take_units_and_default_to_seconds) {
        uint32_t ms = 0;

        ASSERT_EQ(vmc_parse_duration_ms("10", &ms), 0);
        EXPECT_EQ(ms, 10000u);
        ASSERT_EQ(vmc_parse_duration_ms("3s", &ms), 0);
        EXPECT_EQ(ms, 3000u);
        ASSERT_EQ(vmc_parse_duration_ms("500ms", &ms), 0);
        EXPECT_EQ(ms, 500u);
        ASSERT_EQ(vmc_parse_duration_ms("2m", &ms), 0);
        EXPECT_EQ(ms, 120000u);
        EXPECT_EQ(vmc_parse_duration_ms("soon", &ms), -EINVAL);
        EXPECT_EQ(vmc_parse_duration_ms("5h", &ms), -EINVAL);
        EXPECT_EQ(vmc_parse_duration_ms("-1", &ms), -EINVAL);
        EXPECT_EQ(vmc_parse_duration_ms("5000000s", &ms), -ERANGE);
}

TEST(VmcArgs, stop_options_may_follow_the_name) {
        PARSE(p, "stop", "demo", "--force", "--timeout", "500ms");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_EQ(p.args.command, VMC_COMMAND_STOP);
        EXPECT_STREQ(p.args.name, "demo");
        EXPECT_TRUE(p.args.force);
        EXPECT_EQ(p.args.timeout_ms, 500u);
}

TEST(VmcArgs, stop_short_options) {
        PARSE(p, "stop", "-f", "-t", "2", "demo");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.force);
        EXPECT_EQ(p.args.timeout_ms, 2000u);
}

TEST(VmcArgs, logs_f_means_follow) {
        PARSE(p, "logs", "demo", "-f");

        ASSERT_EQ(p.r, 0) << p.error;
        EXPECT_TRUE(p.args.follow);
        EXPECT_FALSE(p.args.force);
}

TEST(VmcArgs, list_and_info_take_json) {
        PARSE(a, "list", "--json");
        PARSE(b, "info", "demo", "--json");

        ASSERT_EQ(a.r, 0) << a.error;
        EXPECT_TRUE(a.args.json);
        EXPECT_EQ(a.args.name, nullptr);
        ASSERT_EQ(b.r, 0) << b.error;
        EXPECT_TRUE(b.args.json);
        EXPECT_STREQ(b.args.name, "demo");
}

TEST(VmcArgs, balloon_and_resize_parse_sizes) {
        PARSE(a, "balloon", "demo", "256M");
        PARSE(b, "resize", "demo", "1", "2G");
        PARSE(c, "balloon", "demo", "0");

        ASSERT_EQ(a.r, 0) << a.error;
        EXPECT_EQ(a.args.size, 256ull << 20);
        ASSERT_EQ(b.r, 0) << b.error;
        EXPECT_EQ(b.args.disk_index, 1u);
        EXPECT_EQ(b.args.size, 2ull << 30);
        ASSERT_EQ(c.r, 0) << c.error;
        EXPECT_EQ(c.args.size, 0u);
}

TEST(VmcArgs, balloon_and_resize_reject_bad_values) {
        PARSE(a, "balloon", "demo", "big");
        PARSE(b, "resize", "demo", "first", "2G");
        PARSE(c, "resize", "demo", "0", "0");
        PARSE(d, "resize", "demo", "0");

        EXPECT_EQ(a.r, -EINVAL);
        EXPECT_EQ(b.r, -EINVAL);
        EXPECT_NE(b.error.find("disk number"), std::string::npos) << b.error;
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_EQ(d.r, -EINVAL);
        EXPECT_NE(d.error.find("missing arguments"), std::string::npos) << d.error;
}

TEST(VmcArgs, extra_arguments_are_named) {
        PARSE(p, "pause", "demo", "other");

        EXPECT_EQ(p.r, -EINVAL);
        EXPECT_NE(p.error.find("'other'"), std::string::npos) << p.error;
}

TEST(VmcArgs, unknown_options_and_commands_are_named) {
        PARSE(a, "stop", "demo", "--gently");
        PARSE(b, "reboot", "demo");
        PARSE(c, "--bogus", "list");
        PARSE(d, "stop", "demo", "-x");

        EXPECT_EQ(a.r, -EINVAL);
        EXPECT_NE(a.error.find("--gently"), std::string::npos) << a.error;
        EXPECT_EQ(b.r, -EINVAL);
        EXPECT_NE(b.error.find("'reboot'"), std::string::npos) << b.error;
        EXPECT_EQ(c.r, -EINVAL);
        EXPECT_NE(c.error.find("--bogus"), std::string::npos) << c.error;
        EXPECT_EQ(d.r, -EINVAL);
        EXPECT_NE(d.error.find("-x"), std::string::npos) << d.error;
}

TEST(VmcArgs, option_without_value_says_so) {
        PARSE(p, "start", "demo", "--kernel");

        EXPECT_EQ(p.r, -EINVAL);
        EXPECT_NE(p.error.find("needs a value"), std::string::npos) << p.error;
}

TEST(VmcArgs, missing_command_is_a_usage_error) {
        PARSE(p);

        EXPECT_EQ(p.r, -EINVAL);
        EXPECT_NE(p.error.find("missing command"), std::string::npos) << p.error;
}

TEST(VmcArgs, bus_options_select_the_bus) {
        PARSE(a, "--user", "list");
        PARSE(b, "--system", "list");
        PARSE(c, "--address", "unix:path=/tmp/x", "list");
        PARSE(d, "list");

        EXPECT_EQ(a.args.bus, VMC_BUS_USER);
        EXPECT_EQ(b.args.bus, VMC_BUS_SYSTEM);
        EXPECT_EQ(c.args.bus, VMC_BUS_ADDRESS);
        EXPECT_STREQ(c.args.address, "unix:path=/tmp/x");
        EXPECT_EQ(d.args.bus, VMC_BUS_DEFAULT);
}

TEST(VmcArgs, bus_options_belong_before_the_command) {
        PARSE(p, "list", "--user");

        EXPECT_EQ(p.r, -EINVAL);
}

TEST(VmcArgs, help_is_accepted_anywhere_for_a_command) {
        PARSE(a, "start", "--help");
        PARSE(b, "help", "stop");
        PARSE(c, "--help");
        PARSE(d, "resize", "-h");

        ASSERT_EQ(a.r, 0);
        EXPECT_TRUE(a.args.help);
        EXPECT_EQ(a.args.command, VMC_COMMAND_START);
        ASSERT_EQ(b.r, 0);
        EXPECT_TRUE(b.args.help);
        EXPECT_EQ(b.args.command, VMC_COMMAND_STOP);
        ASSERT_EQ(c.r, 0);
        EXPECT_TRUE(c.args.help);
        EXPECT_EQ(c.args.command, VMC_COMMAND_NONE);
        ASSERT_EQ(d.r, 0);
        EXPECT_TRUE(d.args.help);
}

TEST(VmcArgs, command_names_round_trip) {
        for (int c = VMC_COMMAND_NONE + 1; c < _VMC_COMMAND_MAX; c++) {
                const char *s = vmc_command_to_string((VmcCommand) c);
                ASSERT_NE(s, nullptr) << c;
                EXPECT_EQ(vmc_command_from_string(s), (VmcCommand) c) << s;
        }
        EXPECT_EQ(vmc_command_from_string("nope"), VMC_COMMAND_NONE);
        EXPECT_EQ(vmc_command_to_string(_VMC_COMMAND_MAX), nullptr);
}

TEST(VmcArgs, every_command_has_help_listed_in_the_overview) {
        std::string overview = vmc_help_text(VMC_COMMAND_NONE);

        for (int c = VMC_COMMAND_NONE + 1; c < _VMC_COMMAND_MAX; c++) {
                const char *name = vmc_command_to_string((VmcCommand) c);
                const char *help = vmc_help_text((VmcCommand) c);
                ASSERT_NE(help, nullptr) << name;
                EXPECT_EQ(std::string(help).rfind(std::string("Usage: vmc ") + name + " ", 0), 0u) << name;
                EXPECT_NE(overview.find(std::string("  ") + name + " "), std::string::npos) << name;
        }
}

// docs/vmc.md and the man page document every command and every long
// option that --help shows.
TEST(VmcArgs, docs_cover_every_command_and_option) {
        const char *src = getenv("MAJORDOME_SOURCE_DIR");
        if (!src)
                GTEST_SKIP() << "MAJORDOME_SOURCE_DIR not set";
        for (const char *doc : {"/docs/vmc.md", "/docs/vmc.1"}) {
                std::ifstream f(std::string(src) + doc);
                ASSERT_TRUE(f.good()) << doc;
                std::stringstream ss;
                ss << f.rdbuf();
                // The man page escapes '-' as '\-'.
                std::string text = ss.str(), plain;
                for (size_t i = 0; i < text.size(); i++)
                        if (!(text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '-'))
                                plain += text[i];

                for (int c = VMC_COMMAND_NONE; c < _VMC_COMMAND_MAX; c++) {
                        if (c != VMC_COMMAND_NONE) {
                                EXPECT_NE(plain.find(vmc_command_to_string((VmcCommand) c)), std::string::npos)
                                        << doc << " lacks " << vmc_command_to_string((VmcCommand) c);
                        }
                        std::string help = vmc_help_text((VmcCommand) c);
                        for (size_t pos = 0; (pos = help.find("--", pos)) != std::string::npos;) {
                                size_t end = help.find_first_not_of("abcdefghijklmnopqrstuvwxyz-", pos + 2);
                                std::string opt = help.substr(pos, end - pos);
                                pos = end;
                                if (opt.size() > 2) {
                                        EXPECT_NE(plain.find(opt), std::string::npos) << doc << " lacks " << opt;
                                }
                        }
                }
        }
}
