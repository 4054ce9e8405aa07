/* SPDX-License-Identifier: BSD-3-Clause */
/* majordome-gpu as a process: its options, and the start of a vhost-user
 * conversation over common/vhost-user.h's codec (no KVM: the front-end is
 * this test). The binary's path: built in, or MAJORDOME_GPU. */
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <linux/virtio_gpu.h>
#include <map>

#include "tests/gpu-display/weston.h"
#include "tests/gpu/wayland-wire.h"

#include "seccomp/connector.h"
#include "majordome-features.h"
#include "tests/device-process.h"
#include "tests/virtio/harness.h"
#include "common/unaligned.h"
#include "common/util.h"
#include "common/vhost-user.h"

namespace {

const char *gpu_path() {
        const char *p = getenv("MAJORDOME_GPU");
        return p ? p : MAJORDOME_GPU_PATH;
}

using device_process::ask;
using device_process::expect_jailed;
using device_process::read_file;
using device_process::Result;
using device_process::status_field;

pid_t spawn(const std::vector<std::string> &args, int out_fd, int keep_fd = -1) {
        return device_process::spawn(gpu_path(), args, out_fd, keep_fd);
}

Result run(const std::vector<std::string> &args) {
        return device_process::run(gpu_path(), args);
}

TEST(MajordomeGpu, help_prints_usage_and_exits_zero) {
        Result r = run({ "--help" });
        EXPECT_EQ(r.status, 0);
        EXPECT_NE(r.output.find("Usage: majordome-gpu --fd N | --socket PATH"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("--wayland-sock"), std::string::npos);
}

TEST(MajordomeGpu, bad_options_exit_one_with_a_message) {
        struct {
                std::vector<std::string> args;
                const char *message;
        } cases[] = {
                { {}, "give one of --fd N or --socket PATH" },
                { { "--fd", "3", "--socket", "/tmp/x" }, "give one of --fd N or --socket PATH" },
                { { "--fd", "3", "--displays", "17" }, "--displays: expected 0..16" },
                { { "--fd", "3", "--seccomp", "off" }, "--seccomp: expected enforce or log" },
                { { "--fd", "3", "--width", "0" }, "--width: expected 1..16384" },
                { { "--fd", "3", "--height", "16385" }, "--height: expected 1..16384" },
                { { "--fd", "x" }, "--fd: not a descriptor number" },
                { { "--fd", "3", "--max-memory", "lots" }, "--max-memory: expected a size" },
                { { "--fd", "3", "--wayland-fd", "4", "--wayland-sock", "/tmp/w" }, "at most one of --wayland-sock" },
                { { "--fd", "3", "extra" }, "unexpected argument: extra" },
                { { "--fd", "3", "--backend", "virglrenderer" }, "--backend: expected 2d or virgl" },
                { { "--fd", "3", "--host-visible-size", "1000" }, "--host-visible-size: expected a size in whole pages" },
                { { "--fd", "3", "--host-visible-size", "0" }, "--host-visible-size: expected a size in whole pages" },
                { { "--fd", "3", "--context-types", "gfxstream" }, "--context-types: 'gfxstream' is not a context type" },
                { { "--fd", "3", "--context-types", "virgl:virgl" }, "--context-types: 'virgl' given twice" },
                { { "--fd", "3", "--context-types", "cross-domain" }, "cross-domain needs --blob" },
                { { "--fd", "3", "--context-types", "virgl2" }, "virgl and virgl2 need --backend virgl" },
        };
        for (auto &c : cases) {
                Result r = run(c.args);
                EXPECT_EQ(r.status, 1) << c.message;
                EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
        }
        EXPECT_EQ(run({ "--bogus" }).status, 1);
}

/* Built with -Dwayland=disabled: headless only, and it says so rather
 * than leave a guest's Wayland clients without a compositor. */
TEST(MajordomeGpu, without_wayland_its_compositor_options_are_refused) {
        if (MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built with wayland support";
        for (const std::vector<std::string> &args : std::vector<std::vector<std::string>> {
                     { "--fd", "3", "--wayland-sock", "/tmp/w" },
                     { "--fd", "3", "--wayland-fd", "4" },
                     { "--fd", "3", "--blob", "--context-types", "cross-domain" } }) {
                Result r = run(args);
                EXPECT_EQ(r.status, 1) << args[2];
                EXPECT_NE(r.output.find("built without wayland support"), std::string::npos) << r.output;
        }
}

void talk(int fd) {
        VhostUserMsg m = ask(fd, VHOST_USER_GET_FEATURES, nullptr, 0);
        uint64_t features = get_le64(m.payload);
        EXPECT_TRUE(features & (UINT64_C(1) << 32)) << "VIRTIO_F_VERSION_1";
        EXPECT_TRUE(features & (UINT64_C(1) << 1)) << "VIRTIO_GPU_F_EDID";
        EXPECT_FALSE(features & (UINT64_C(1) << 0)) << "no VIRGL yet";
        EXPECT_TRUE(features & (UINT64_C(1) << VHOST_USER_F_PROTOCOL_FEATURES));

        m = ask(fd, VHOST_USER_GET_PROTOCOL_FEATURES, nullptr, 0);
        uint64_t protocol = get_le64(m.payload);
        EXPECT_TRUE(protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_CONFIG));
        EXPECT_TRUE(protocol & (UINT64_C(1) << VHOST_USER_PROTOCOL_F_BACKEND_REQ));
        uint8_t p[8];
        put_le64(p, protocol);
        ASSERT_EQ(vhost_user_send(fd, VHOST_USER_SET_PROTOCOL_FEATURES, 0, p, 8, nullptr, 0), 0);

        m = ask(fd, VHOST_USER_GET_QUEUE_NUM, nullptr, 0);
        EXPECT_EQ(get_le64(m.payload), 2u);

        uint8_t cfg[VHOST_USER_CONFIG_HEADER_SIZE + 16] = {};
        put_le32(cfg + 4, 16);
        m = ask(fd, VHOST_USER_GET_CONFIG, cfg, sizeof(cfg), 16);
        EXPECT_EQ(get_le32(m.payload + VHOST_USER_CONFIG_HEADER_SIZE + 8), 3u) << "num_scanouts";
        EXPECT_EQ(get_le32(m.payload + VHOST_USER_CONFIG_HEADER_SIZE + 12), 0u) << "num_capsets";
}

TEST(MajordomeGpu, offers_edid_and_version_1_and_its_config_over_fd) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--displays", "3" }, -1, sv[1]);
        close(sv[1]);
        talk(sv[0]);
        /* The front-end hangs up: the back-end exits 0. */
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST(MajordomeGpu, serves_the_first_connection_on_its_socket) {
        harness::TempDir dir("gpu-test");
        std::string path = dir.path + "/gpu.sock";
        pid_t pid = spawn({ "--socket", path, "--displays", "3" }, -1);
        int fd = -1;
        /* Until it listens (bind and listen are two steps). */
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

TEST(MajordomeGpuJail, locks_itself_in_before_it_serves) {
        if (geteuid() != 0)
                GTEST_SKIP() << "checks the switch from root to nobody: run as root";
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--displays", "3" }, -1, sv[1]);
        close(sv[1]);
        talk(sv[0]);
        expect_jailed(pid, true);
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

/* As root, it becomes the VMM's jail user, here one of the test's own
 * named as the VMM names it to its device processes. */
TEST(MajordomeGpuJail, becomes_the_user_majordome_jail_user_names) {
        if (geteuid() != 0)
                GTEST_SKIP() << "checks the switch from root: run as root";
        test_user::TestUser user;
        if (!user.ok())
                GTEST_SKIP() << "could not make a user with useradd";
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ASSERT_EQ(setenv("MAJORDOME_JAIL_USER", user.name().c_str(), 1), 0);
        pid_t pid = spawn({ "--fd", std::to_string(sv[1]), "--displays", "3" }, -1, sv[1]);
        unsetenv("MAJORDOME_JAIL_USER");
        close(sv[1]);
        talk(sv[0]);
        std::string u = std::to_string(user.uid()), g = std::to_string(user.gid());
        EXPECT_EQ(status_field(pid, "Uid"), u + "\t" + u + "\t" + u + "\t" + u);
        EXPECT_EQ(status_field(pid, "Gid"), g + "\t" + g + "\t" + g + "\t" + g);
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

/* As a VMM that jailed itself unprivileged starts it: inside a user
 * namespace that maps one uid (util-linux's unshare plays that VMM). */
TEST(MajordomeGpuJail, locks_itself_in_unprivileged_inside_a_user_namespace) {
        if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0 || access("/usr/bin/unshare", X_OK) != 0)
                GTEST_SKIP() << "needs root to become nobody, and util-linux's setpriv and unshare";
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
                std::string fd = std::to_string(sv[1]);
                fcntl(sv[1], F_SETFD, 0);
                execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      "/usr/bin/unshare", "--user", "--map-root-user", gpu_path(), "--fd", fd.c_str(), "--displays",
                      "3", (char *) nullptr);
                _exit(127);
        }
        close(sv[1]);
        talk(sv[0]);
        /* setpriv and unshare exec in place: pid is majordome-gpu. */
        expect_jailed(pid, false);
        EXPECT_EQ(status_field(pid, "Uid").substr(0, 5), "65534") << "the host sees nobody";
        close(sv[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

/* ---- the virgl back-end as a process, jailed ---- */

} // namespace

extern "C" const VirtioDeviceOps virtio_vhost_user_ops;

namespace {

using harness::BASE_FEATURES;
using harness::PciDriver;
using harness::VirtqDriver;

/* majordome-gpu --backend virgl on one end of a socketpair, with extra
 * arguments; killed and reaped at the end (its status kept). */
class VirglProcess {
public:
        /* virgl: --backend virgl first (extra may override it). */
        explicit VirglProcess(const std::vector<std::string> &extra, bool virgl = true) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        abort();
                pid_ = spawn(args(sv[1], extra, virgl), -1, sv[1]);
                close(sv[1]);
                sock_ = sv[0];
        }
        /* As majordome-vmm starts it: its compositor the connector socket
         * wayland_fd as --wayland-fd. */
        VirglProcess(const std::vector<std::string> &extra, int wayland_fd) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        abort();
                std::vector<std::string> a = args(sv[1], extra, false);
                a.push_back("--wayland-fd");
                a.push_back(std::to_string(wayland_fd));
                pid_ = fork();
                if (pid_ == 0) {
                        std::vector<char *> argv = { (char *) gpu_path() };
                        for (auto &s : a)
                                argv.push_back((char *) s.c_str());
                        argv.push_back(nullptr);
                        for (int fd : { sv[1], wayland_fd })
                                fcntl(fd, F_SETFD, 0);
                        execv(argv[0], argv.data());
                        _exit(127);
                }
                close(sv[1]);
                sock_ = sv[0];
        }
        ~VirglProcess() { finish(); }
        /* Hangs up and waits: its wait status. */
        int finish() {
                if (sock_ >= 0) {
                        close(sock_);
                        sock_ = -1;
                }
                if (pid_ > 0) {
                        for (int i = 0; i < 300 && waitpid(pid_, &status_, WNOHANG) != pid_; i++)
                                usleep(10000);
                        if (kill(pid_, 0) == 0 && waitpid(pid_, &status_, WNOHANG) == 0) {
                                kill(pid_, SIGKILL);
                                waitpid(pid_, &status_, 0);
                        }
                        pid_ = -1;
                }
                return status_;
        }
        pid_t pid() const { return pid_; }
        VmmDevice config() const {
                VmmDevice c{};
                c.kind = VMM_DEVICE_VHOST_USER;
                c.vhost_user.type = VMM_VHOST_USER_GPU;
                c.vhost_user.fd = sock_;
                return c;
        }

private:
        static std::vector<std::string> args(int fd, const std::vector<std::string> &extra, bool virgl) {
                std::vector<std::string> a = { "--fd", std::to_string(fd), "--displays", "0" };
                if (virgl) {
                        a.push_back("--backend");
                        a.push_back("virgl");
                }
                a.insert(a.end(), extra.begin(), extra.end());
                return a;
        }

        pid_t pid_ = -1;
        int sock_ = -1;
        int status_ = -1;
};

/* One request on the control queue through the real front-end and
 * majordome-gpu; the response (resp_len bytes) once the chain is used. */
std::vector<uint8_t> control(PciDriver &d, VirtqDriver &q, const std::vector<uint8_t> &req, uint32_t resp_len) {
        static uint16_t used = 0;
        const uint64_t REQ = 0x200000, RESP = 0x300000;
        std::vector<uint8_t> resp(resp_len);

        if (q.used_idx() == 0)
                used = 0;
        EXPECT_EQ(guest_write(d.mem(), REQ, req.data(), req.size()), 0);
        EXPECT_EQ(guest_zero(d.mem(), RESP, resp_len), 0);
        q.add_chain({ { REQ, (uint32_t) req.size(), false }, { RESP, resp_len, true } });
        d.kick(0);
        used++;
        if (!d.wait_used(q, used, 5000))
                return {};
        EXPECT_EQ(guest_read(d.mem(), RESP, resp.data(), resp_len), 0);
        return resp;
}

std::vector<uint8_t> request(uint32_t type, uint32_t flags, uint64_t fence, uint32_t ctx,
                             const std::vector<uint32_t> &fields) {
        std::vector<uint8_t> b(24 + fields.size() * 4, 0);
        put_le32(&b[0], type);
        put_le32(&b[4], flags);
        put_le64(&b[8], fence);
        put_le32(&b[16], ctx);
        for (size_t i = 0; i < fields.size(); i++)
                put_le32(&b[24 + i * 4], fields[i]);
        return b;
}

uint32_t f32(float v) {
        uint32_t u;
        memcpy(&u, &v, 4);
        return u;
}

/* The guest's side of a first frame: capsets, a context, a render target,
 * a fenced virgl CLEAR, the pixels read back; each answered by the jailed
 * process (a forbidden syscall would kill it with SIGSYS). */
void render_red(PciDriver &d, VirtqDriver &q) {
        const uint64_t BACKING = 0x400000, BACKING2 = 0x500000;
        auto type = [](const std::vector<uint8_t> &r) { return r.size() >= 4 ? get_le32(r.data()) : 0u; };

        auto r = control(d, q, request(VIRTIO_GPU_CMD_GET_CAPSET_INFO, 0, 0, 0, { 1, 0 }), 40);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_CAPSET_INFO);
        EXPECT_EQ(get_le32(&r[24]), (uint32_t) VIRTIO_GPU_CAPSET_VIRGL2);
        uint32_t size = get_le32(&r[32]);
        r = control(d, q, request(VIRTIO_GPU_CMD_GET_CAPSET, 0, 0, 0, { VIRTIO_GPU_CAPSET_VIRGL2, 2 }), 24 + size);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_CAPSET);
        std::vector<uint32_t> create(18, 0);
        create[0] = 4;
        r = control(d, q, request(VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, 1, create), 24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        /* 16x8 B8G8R8X8 2D texture, render target | sampler view. */
        r = control(d, q, request(VIRTIO_GPU_CMD_RESOURCE_CREATE_3D, 0, 0, 1, { 5, 2, 2, 10, 16, 8, 1, 1, 0, 0, 0, 0 }),
                    24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        r = control(d, q, request(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0, 0, 0, { 5, 1, (uint32_t) BACKING, 0, 512, 0 }),
                    24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        r = control(d, q, request(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, 1, { 5, 0 }), 24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        /* Surface 1 on resource 5, framebuffer of it, clear to red. */
        std::vector<uint32_t> stream = { 1 | 8 << 8 | 5 << 16, 1, 5, 2, 0, 0,
                                         5 | 3 << 16, 1, 0, 1,
                                         7 | 8 << 16, 1 << 2, f32(1), f32(0), f32(0), f32(1), 0, 0, 0 };
        std::vector<uint32_t> submit = { (uint32_t) stream.size() * 4, 0 };
        submit.insert(submit.end(), stream.begin(), stream.end());
        r = control(d, q, request(VIRTIO_GPU_CMD_SUBMIT_3D, VIRTIO_GPU_FLAG_FENCE, 7, 1, submit), 24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(get_le64(&r[8]), 7u) << "the fence comes back";
        r = control(d, q,
                    request(VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D, VIRTIO_GPU_FLAG_FENCE, 8, 1,
                            { 0, 0, 0, 16, 8, 1, 0, 0, 5, 0, 0, 0 }),
                    24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        for (uint32_t i = 0; i < 16 * 8; i++) {
                uint8_t p[4];
                ASSERT_EQ(guest_read(d.mem(), BACKING + i * 4, p, 4), 0);
                ASSERT_EQ(get_le32(p) & 0xffffff, 0xff0000u) << i;
        }
        /* A scaled, filtered blit into a 32x16 texture: Mesa draws it with
         * a shader, which llvmpipe compiles to machine code (the JIT). */
        r = control(d, q, request(VIRTIO_GPU_CMD_RESOURCE_CREATE_3D, 0, 0, 1, { 6, 2, 2, 10, 32, 16, 1, 1, 0, 0, 0, 0 }),
                    24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        r = control(d, q, request(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0, 0, 0, { 6, 1, (uint32_t) BACKING2, 0, 2048, 0 }),
                    24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        r = control(d, q, request(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, 1, { 6, 0 }), 24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        submit = { 22 * 4, 0, 16 | 21 << 16, 0xf | 1 << 8, 0, 0, 6, 0, 2, 0, 0, 0, 32, 16, 1, 5, 0, 2, 0, 0, 0, 16, 8, 1 };
        /* On the context's ring 0: a per-context fence, in the jail. */
        std::vector<uint8_t> sq = request(VIRTIO_GPU_CMD_SUBMIT_3D,
                                          VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX, 9, 1, submit);
        r = control(d, q, sq, 24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        EXPECT_EQ(get_le32(&r[4]), (uint32_t) (VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX));
        EXPECT_EQ(r[20], 0);
        r = control(d, q,
                    request(VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D, VIRTIO_GPU_FLAG_FENCE, 10, 1,
                            { 0, 0, 0, 32, 16, 1, 0, 0, 6, 0, 0, 0 }),
                    24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        for (uint32_t i = 0; i < 32 * 16; i++) {
                uint8_t p[4];
                ASSERT_EQ(guest_read(d.mem(), BACKING2 + i * 4, p, 4), 0);
                ASSERT_EQ(get_le32(p) & 0xffffff, 0xff0000u) << "blitted " << i;
        }
}

void virgl_offered_and_renders(const std::vector<std::string> &extra) {
        VirglProcess p(extra);
        {
                PciDriver d(&virtio_vhost_user_ops, p.config());
                ASSERT_EQ(d.error(), 0);
                VirtqDriver q{ d.mem(), 0x10000, 64 };
                ASSERT_TRUE(d.negotiate(BASE_FEATURES | (UINT64_C(1) << VIRTIO_GPU_F_VIRGL)));
                d.setup_queue(0, q);
                d.driver_ok();
                ASSERT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET) << virtio_device_error(d.device());
                render_red(d, q);
                EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        }
        /* The front-end (its copy of the socket) is gone: the back-end
         * exits 0, not by a signal. */
        int st = p.finish();
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
                << "status " << st << (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? ": SIGSYS, the seccomp filter" : "");
}

TEST(MajordomeGpuVirgl, offers_virgl_context_init_and_with_blob_resource_blob) {
        for (bool blob : { false, true }) {
                int sv[2];
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
                std::vector<std::string> args = { "--fd", std::to_string(sv[1]), "--backend", "virgl", "--displays", "0" };
                if (blob)
                        args.push_back("--blob");
                pid_t pid = spawn(args, -1, sv[1]);
                close(sv[1]);
                VhostUserMsg m = ask(sv[0], VHOST_USER_GET_FEATURES, nullptr, 0);
                uint64_t features = get_le64(m.payload);
                EXPECT_TRUE(features & (UINT64_C(1) << VIRTIO_GPU_F_VIRGL));
                EXPECT_TRUE(features & (UINT64_C(1) << VIRTIO_GPU_F_CONTEXT_INIT));
                EXPECT_EQ(!!(features & (UINT64_C(1) << VIRTIO_GPU_F_RESOURCE_BLOB)), blob);
                close(sv[0]);
                int st;
                ASSERT_EQ(waitpid(pid, &st, 0), pid);
                EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
        }
}

TEST(MajordomeGpuVirgl, renders_through_virglrenderer_in_its_jail) {
        virgl_offered_and_renders({});
}

} // namespace

/* ---- cross-domain as a process, jailed, on a real weston ---- */

namespace {

using wayland_wire::WlEvent;
using wayland_wire::WlMsg;
using wayland_wire::wl_string;

/* The guest side of sommelier over the jailed process: the same commands
 * on the control queue, the rings in guest memory. */
class CrossDomainGuest {
public:
        static constexpr uint64_t QUERY_GPA = 0x600000, CHANNEL_GPA = 0x610000;
        static constexpr uint32_t CTX = 3, QUERY = 90, CHANNEL = 91;

        CrossDomainGuest(PciDriver &d, VirtqDriver &q) : d_(d), q_(q) {}

        uint32_t type(const std::vector<uint8_t> &r) { return r.size() >= 4 ? get_le32(r.data()) : 0u; }
        std::vector<uint8_t> submit(const std::vector<uint8_t> &cmd, int ring = -1) {
                uint32_t flags = VIRTIO_GPU_FLAG_FENCE | (ring >= 0 ? VIRTIO_GPU_FLAG_INFO_RING_IDX : 0);
                std::vector<uint8_t> req = request(VIRTIO_GPU_CMD_SUBMIT_3D, flags, ++fence_, CTX,
                                                   { (uint32_t) cmd.size(), 0 });
                if (ring >= 0)
                        req[20] = (uint8_t) ring;
                req.insert(req.end(), cmd.begin(), cmd.end());
                return control(d_, q_, req, 24);
        }
        static std::vector<uint8_t> cd_cmd(uint8_t c, const std::vector<uint32_t> &w, const std::vector<uint8_t> &data = {}) {
                std::vector<uint8_t> b(8 + 4 * w.size(), 0);
                b[0] = c;
                for (size_t i = 0; i < w.size(); i++)
                        put_le32(&b[8 + 4 * i], w[i]);
                b.insert(b.end(), data.begin(), data.end());
                put_le16(&b[2], (uint16_t) b.size());
                return b;
        }
        /* The device up (3D, context init, blobs), a context of capset
         * 5 and its two rings, INIT. */
        void start() {
                ASSERT_TRUE(d_.negotiate(BASE_FEATURES | (UINT64_C(1) << VIRTIO_GPU_F_VIRGL) |
                                         (UINT64_C(1) << VIRTIO_GPU_F_CONTEXT_INIT) |
                                         (UINT64_C(1) << VIRTIO_GPU_F_RESOURCE_BLOB)));
                d_.setup_queue(0, q_);
                d_.driver_ok();
                std::vector<uint32_t> create(18, 0);
                create[1] = 5;          /* context_init: capset 5 */
                ASSERT_EQ(type(control(d_, q_, request(VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, CTX, create), 24)),
                          (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                for (auto [id, gpa] : { std::pair<uint32_t, uint64_t>{ QUERY, QUERY_GPA }, { CHANNEL, CHANNEL_GPA } })
                        ASSERT_EQ(type(control(d_, q_,
                                               request(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CTX,
                                                       { id, VIRTIO_GPU_BLOB_MEM_GUEST, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 1,
                                                         0, 0, 4096, 0, (uint32_t) gpa, 0, 4096, 0 }),
                                               24)),
                                  (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                ASSERT_EQ(type(submit(cd_cmd(1, { QUERY, CHANNEL, 1 }))), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
        }
        /* SEND of Wayland bytes with identifiers (28 of them: the new layout). */
        uint32_t send(const std::vector<uint8_t> &bytes, const std::vector<uint32_t> &blobs = {}) {
                std::vector<uint32_t> w(2 + 3 * 28, 0);
                w[0] = (uint32_t) blobs.size();
                w[1] = (uint32_t) bytes.size();
                for (size_t i = 0; i < blobs.size(); i++) {
                        w[2 + i] = blobs[i];
                        w[2 + 28 + i] = 1;
                }
                return type(submit(cd_cmd(4, w, bytes)));
        }
        /* POLL, then the RECEIVE's events (parsed), once the fence says
         * the ring holds one. */
        std::vector<WlEvent> receive() {
                std::vector<WlEvent> out;
                auto r = submit(cd_cmd(3, { 0, 0 }), 1);
                if (type(r) != VIRTIO_GPU_RESP_OK_NODATA)
                        return out;
                std::vector<uint8_t> ring(4096);
                EXPECT_EQ(guest_read(d_.mem(), CHANNEL_GPA, ring.data(), ring.size()), 0);
                EXPECT_EQ(ring[0], 5) << "a RECEIVE";
                uint32_t n = get_le32(&ring[12]), n_ids = std::min(get_le32(&ring[8]), 28u);
                for (uint32_t i = 0; i < n_ids; i++)
                        ids.push_back({ get_le32(&ring[16 + 4 * i]), get_le32(&ring[16 + 4 * (28 + i)]),
                                        get_le32(&ring[16 + 4 * (56 + i)]) });
                for (uint32_t off = 352; off + 8 <= 352 + n;) {
                        uint32_t obj = get_le32(&ring[off]), so = get_le32(&ring[off + 4]);
                        uint32_t size = so >> 16;
                        if (size < 8 || off + size > 352 + n)
                                break;
                        out.push_back({ obj, (uint16_t) so, std::vector<uint8_t>(ring.begin() + off + 8, ring.begin() + off + size) });
                        off += size;
                }
                return out;
        }
        /* The registry (object 2) listed through a sync (callback 3):
         * each global's name by its interface. */
        void registry(std::map<std::string, uint32_t> *ret) {
                ASSERT_EQ(send(WlMsg(1, 1).u(2).done()), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);  /* get_registry */
                ASSERT_EQ(send(WlMsg(1, 0).u(3).done()), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);  /* sync */
                for (auto &e : until_done(3))
                        if (e.obj == 2 && e.opcode == 0)
                                (*ret)[wl_string(e.args, 4)] = get_le32(&e.args[0]);
        }
        /* Events until wl_callback `cb` is done (a sync's answer). */
        std::vector<WlEvent> until_done(uint32_t cb) {
                std::vector<WlEvent> all;
                for (int i = 0; i < 50; i++) {
                        auto ev = receive();
                        if (ev.empty() && i > 0)
                                break;
                        bool done = false;
                        for (auto &e : ev) {
                                all.push_back(e);
                                done |= e.obj == cb && e.opcode == 0;
                        }
                        if (done)
                                break;
                }
                return all;
        }
        std::vector<uint8_t> query() {
                std::vector<uint8_t> b(64);
                EXPECT_EQ(guest_read(d_.mem(), QUERY_GPA, b.data(), b.size()), 0);
                return b;
        }

        /* Every identifier RECEIVEs carried: id, type, size. */
        struct Id {
                uint32_t id, type, size;
        };
        std::vector<Id> ids;

private:
        PciDriver &d_;
        VirtqDriver &q_;
        uint64_t fence_ = 0;
};

/* The window's pixels: the marker in the top-left corner, then
 * (x * 4, y * 4, 0x80). */
weston_test::Rgb window_pattern(uint32_t x, uint32_t y) {
        if (x < (uint32_t) weston_test::MARKER && y < (uint32_t) weston_test::MARKER)
                return weston_test::MARKER_COLOUR;
        return { (uint8_t) (x * 4), (uint8_t) (y * 4), 0x80 };
}

/* A guest's window through cross-domain: the registry, every wl_shm
 * format's image requirements, a host blob drawn and shown on weston,
 * compared pixel by pixel. */
void cross_domain_window(VirglProcess &p, weston_test::Weston &weston) {
        {
                PciDriver d(&virtio_vhost_user_ops, p.config());
                ASSERT_EQ(d.error(), 0);
                VirtqDriver q{ d.mem(), 0x10000, 64 };
                CrossDomainGuest g(d, q);
                ASSERT_NO_FATAL_FAILURE(g.start());

                /* The registry, listed (a wayland-info of sorts). */
                std::map<std::string, uint32_t> globals;
                ASSERT_NO_FATAL_FAILURE(g.registry(&globals));
                ASSERT_TRUE(globals.count("wl_compositor")) << globals.size() << " globals";
                ASSERT_TRUE(globals.count("wl_shm"));
                ASSERT_TRUE(globals.count("xdg_wm_base"));

                /* Bind, a surface, an xdg toplevel, committed. */
                std::vector<uint8_t> msgs;
                auto add = [&](std::vector<uint8_t> m) { msgs.insert(msgs.end(), m.begin(), m.end()); };
                add(WlMsg(2, 0).u(globals["wl_compositor"]).s("wl_compositor").u(4).u(4).done());
                add(WlMsg(2, 0).u(globals["wl_shm"]).s("wl_shm").u(1).u(5).done());
                add(WlMsg(2, 0).u(globals["xdg_wm_base"]).s("xdg_wm_base").u(1).u(6).done());
                add(WlMsg(4, 0).u(7).done());                   /* create_surface */
                add(WlMsg(6, 2).u(8).u(7).done());              /* get_xdg_surface */
                add(WlMsg(8, 1).u(9).done());                   /* get_toplevel */
                add(WlMsg(9, 2).s("majordome cross-domain").done());
                add(WlMsg(7, 6).done());                        /* commit */
                add(WlMsg(1, 0).u(10).done());                  /* sync */
                ASSERT_EQ(g.send(msgs), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                uint32_t serial = 0;
                bool configured = false;
                std::vector<uint32_t> shm_formats;
                for (auto &e : g.until_done(10)) {
                        if (e.obj == 8 && e.opcode == 0) {
                                serial = get_le32(&e.args[0]);
                                configured = true;
                        }
                        if (e.obj == 5 && e.opcode == 0)        /* wl_shm.format */
                                shm_formats.push_back(get_le32(&e.args[0]));
                }
                ASSERT_TRUE(configured) << "xdg_surface.configure";

                /* Image requirements for every format weston lists (wl_shm's
                 * 0 and 1 are ARGB8888 and XRGB8888; the rest DRM fourccs,
                 * as sommelier asks for them). */
                EXPECT_GE(shm_formats.size(), 2u);
                for (uint32_t f : shm_formats) {
                        uint32_t fourcc = f == 0 ? 0x34325241 : f == 1 ? 0x34325258 : f;
                        auto rr = g.submit(CrossDomainGuest::cd_cmd(2, { 33, 17, fourcc, 0 }), 0);
                        EXPECT_EQ(g.type(rr), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA) << "format " << std::hex << f;
                        EXPECT_GT(get_le64(&g.query()[40]), 0u);
                }

                /* A 64x48 XRGB8888 buffer in a host blob, mapped and drawn. */
                const uint32_t W = 64, H = 48;
                auto r = g.submit(CrossDomainGuest::cd_cmd(2, { W, H, 0x34325258, 0 }), 0);
                ASSERT_EQ(g.type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                auto reqs = g.query();
                uint32_t stride = get_le32(&reqs[0]), blob_id = get_le32(&reqs[48]);
                uint64_t size = get_le64(&reqs[40]);
                r = control(d, q,
                            request(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CrossDomainGuest::CTX,
                                    { 95, VIRTIO_GPU_BLOB_MEM_HOST3D,
                                      VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, blob_id,
                                      0, (uint32_t) size, 0 }),
                            24);
                ASSERT_EQ(g.type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                r = control(d, q, request(VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB, 0, 0, 0, { 95, 0, 0, 0 }), 32);
                ASSERT_EQ(g.type(r), (uint32_t) VIRTIO_GPU_RESP_OK_MAP_INFO);
                ASSERT_EQ(d.hv_log().slots.size(), 1u);
                auto *px = (uint8_t *) d.hv_log().slots.begin()->second.host;
                for (uint32_t y = 0; y < H; y++)
                        for (uint32_t x = 0; x < W; x++) {
                                weston_test::Rgb c = window_pattern(x, y);
                                /* The unused byte 0xff, as clients write it: weston's
                                 * pixman renderer shows XRGB8888 pixels whose X byte is
                                 * 0 wrongly (checked by hand with a direct client). */
                                put_le32(px + y * stride + x * 4,
                                         0xff000000u | (uint32_t) c.r << 16 | (uint32_t) c.g << 8 | c.b);
                        }
                msgs.clear();
                add(WlMsg(6, 3).u(0).done());                   /* pong, in case */
                add(WlMsg(8, 4).u(serial).done());              /* ack_configure */
                add(WlMsg(5, 0).u(11).u((uint32_t) size).done());  /* create_pool, the blob as its fd */
                ASSERT_EQ(g.send(msgs, { 95 }), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                msgs.clear();
                add(WlMsg(11, 0).u(12).u(0).u(W).u(H).u(stride).u(1).done());  /* create_buffer XRGB8888 */
                add(WlMsg(7, 1).u(12).u(0).u(0).done());        /* attach */
                add(WlMsg(7, 2).u(0).u(0).u(W).u(H).done());    /* damage */
                add(WlMsg(7, 6).done());                        /* commit */
                add(WlMsg(1, 0).u(13).done());
                ASSERT_EQ(g.send(msgs), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                for (auto &e : g.until_done(13))
                        EXPECT_FALSE(e.obj == 1 && e.opcode == 0) << "wl_display.error: " << wl_string(e.args, 8);

                /* weston shows it: the pattern at the marker, every pixel. */
                size_t bad = (size_t) W * H;
                int wx = -1, wy = -1;
                for (int i = 0; i < 50 && bad > 0; i++) {
                        weston_test::Screenshot s;
                        if (weston.screenshot(&s) && s.find_marker(&wx, &wy))
                                bad = s.mismatches(wx, wy, W, H, window_pattern);
                        if (bad > 0)
                                usleep(100000);
                }
                EXPECT_EQ(bad, 0u) << (wx < 0 ? "no window on weston's screen" : "pixels differ") << weston.scene_graph();
                EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        }
}

TEST(MajordomeGpuCrossDomain, a_guest_window_reaches_weston_through_the_jailed_process) {
        if (!MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built without wayland support";
        weston_test::Weston weston;
        std::string why = weston.start();
        if (!why.empty())
                GTEST_SKIP() << why;
        VirglProcess p({ "--backend", "2d", "--context-types", "cross-domain", "--blob", "--wayland-sock",
                         weston.socket_path }, false);
        ASSERT_NO_FATAL_FAILURE(cross_domain_window(p, weston));
        int st = p.finish();
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
                << "status " << st << (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? ": SIGSYS, the seccomp filter" : "");
}

/* The host's window resized: weston's kiosk-shell makes every window
 * fullscreen, its first configure carrying the output's size, as a user
 * resizing or maximizing the window would. majordome-gpu offers the
 * guest that size and says so on the back-end channel
 * (CONFIG_CHANGE_MSG); the real front-end reads the configuration again
 * (GET_CONFIG) and interrupts the driver on the configuration vector;
 * the driver finds EVENT_DISPLAY in events_read and the window's size in
 * GET_DISPLAY_INFO and GET_EDID. */
TEST(MajordomeGpuDisplay, a_resized_window_reaches_the_driver_as_a_display_event) {
        if (!MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built without wayland support";
        weston_test::Weston weston;
        std::string why = weston.start(false, "kiosk-shell.so");
        if (!why.empty())
                GTEST_SKIP() << why;
        const uint32_t W = weston_test::OUTPUT_WIDTH, H = weston_test::OUTPUT_HEIGHT;
        const uint64_t BACKING = 0x400000;
        auto type = [](const std::vector<uint8_t> &r) { return r.size() >= 4 ? get_le32(r.data()) : 0u; };
        VirglProcess p({ "--backend", "2d", "--displays", "1", "--width", "320", "--height", "240", "--wayland-sock",
                         weston.socket_path },
                       false);
        {
                PciDriver d(&virtio_vhost_user_ops, p.config());
                ASSERT_EQ(d.error(), 0);
                VirtqDriver q{ d.mem(), 0x10000, 64 };
                ASSERT_TRUE(d.negotiate(BASE_FEATURES));
                d.setup_queue(0, q);
                d.common_write(VIRTIO_PCI_COMMON_MSIX, 2, 1);
                d.enable_msix();
                d.program_vector(1, 0xfee00000, 0x41);
                d.set_vector_masked(1, false);
                d.driver_ok();
                int64_t cfg = d.cap_offset(VIRTIO_PCI_CAP_DEVICE_CFG);
                ASSERT_GE(cfg, 0);
                ASSERT_EQ(d.bar_read(cfg, 4), 0u) << "events_read";
                auto info = control(d, q, request(VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0, 0, {}),
                                    sizeof(struct virtio_gpu_resp_display_info));
                ASSERT_EQ(type(info), (uint32_t) VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
                EXPECT_EQ(get_le32(&info[24 + 8]), 320u);
                EXPECT_EQ(get_le32(&info[24 + 12]), 240u);
                ASSERT_FALSE(d.wait_vector(1, 100)) << "a configuration change before any window";

                /* The guest shows a scanout: its window appears on weston,
                 * which makes it fullscreen. */
                auto r = control(d, q,
                                 request(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, 0, 0, 0,
                                         { 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 320, 240 }),
                                 24);
                ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                r = control(d, q,
                            request(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0, 0, 0,
                                    { 1, 1, (uint32_t) BACKING, 0, 320 * 240 * 4, 0 }),
                            24);
                ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                r = control(d, q, request(VIRTIO_GPU_CMD_SET_SCANOUT, 0, 0, 0, { 0, 0, 320, 240, 0, 1 }), 24);
                ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);

                ASSERT_TRUE(d.wait_vector(1, 5000)) << "no configuration change interrupt";
                EXPECT_EQ(d.bar_read(cfg, 4), (uint64_t) VIRTIO_GPU_EVENT_DISPLAY) << "events_read";
                info = control(d, q, request(VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0, 0, 0, {}),
                               sizeof(struct virtio_gpu_resp_display_info));
                ASSERT_EQ(type(info), (uint32_t) VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
                EXPECT_EQ(get_le32(&info[24 + 8]), W);
                EXPECT_EQ(get_le32(&info[24 + 12]), H);
                EXPECT_EQ(get_le32(&info[24 + 16]), 1u) << "enabled";
                auto edid = control(d, q, request(VIRTIO_GPU_CMD_GET_EDID, 0, 0, 0, { 0, 0 }),
                                    sizeof(struct virtio_gpu_resp_edid));
                ASSERT_EQ(type(edid), (uint32_t) VIRTIO_GPU_RESP_OK_EDID);
                const uint8_t *t = &edid[32 + 54];
                EXPECT_EQ(t[2] | (t[4] >> 4) << 8, (int) W);
                EXPECT_EQ(t[5] | (t[7] >> 4) << 8, (int) H);
                /* Told once: weston's later configures say the same size. */
                EXPECT_FALSE(d.wait_vector(1, 300));
                EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        }
        int st = p.finish();
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
                << "status " << st << (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? ": SIGSYS, the seccomp filter" : "");
}

/* The compositor's keymap (wl_keyboard.keymap's descriptor, a file of
 * weston's) reaches the guest as a host blob it creates and maps, as
 * sommelier does for its clients: weston with a seat (X11 back-end). */
TEST(MajordomeGpuCrossDomain, the_compositors_keymap_reaches_the_guest_as_a_host_blob_it_maps) {
        if (!MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built without wayland support";
        weston_test::Weston weston;
        std::string why = weston.start(true);
        if (!why.empty())
                GTEST_SKIP() << why;
        VirglProcess p({ "--backend", "2d", "--context-types", "cross-domain", "--blob", "--wayland-sock",
                         weston.socket_path }, false);
        {
                PciDriver d(&virtio_vhost_user_ops, p.config());
                ASSERT_EQ(d.error(), 0);
                VirtqDriver q{ d.mem(), 0x10000, 64 };
                CrossDomainGuest g(d, q);
                ASSERT_NO_FATAL_FAILURE(g.start());

                std::map<std::string, uint32_t> globals;
                ASSERT_NO_FATAL_FAILURE(g.registry(&globals));
                ASSERT_TRUE(globals.count("wl_seat")) << "weston on X11 has a seat";

                std::vector<uint8_t> msgs = WlMsg(2, 0).u(globals["wl_seat"]).s("wl_seat").u(5).u(4).done();
                std::vector<uint8_t> more = WlMsg(4, 1).u(5).done();    /* get_keyboard */
                msgs.insert(msgs.end(), more.begin(), more.end());
                more = WlMsg(1, 0).u(6).done();
                msgs.insert(msgs.end(), more.begin(), more.end());
                g.ids.clear();
                ASSERT_EQ(g.send(msgs), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                uint32_t format = 0, size = 0;
                for (auto &e : g.until_done(6))
                        if (e.obj == 5 && e.opcode == 0 && e.args.size() >= 8) {      /* keymap: format, (fd), size */
                                format = get_le32(&e.args[0]);
                                size = get_le32(&e.args[4]);
                        }
                ASSERT_EQ(format, 1u) << "WL_KEYBOARD_KEYMAP_FORMAT_XKB_V1";
                ASSERT_GT(size, 0u);
                ASSERT_EQ(g.ids.size(), 1u) << "the keymap's descriptor";
                EXPECT_EQ(g.ids[0].type, 1u) << "a blob";
                EXPECT_EQ(g.ids[0].size, size);

                /* Made a blob and mapped, its text weston's keymap. */
                auto r = control(d, q,
                                 request(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CrossDomainGuest::CTX,
                                         { 96, VIRTIO_GPU_BLOB_MEM_HOST3D, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 0,
                                           g.ids[0].id, 0, size, 0 }),
                                 24);
                ASSERT_EQ(g.type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
                r = control(d, q, request(VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB, 0, 0, 0, { 96, 0, 0, 0 }), 32);
                ASSERT_EQ(g.type(r), (uint32_t) VIRTIO_GPU_RESP_OK_MAP_INFO);
                ASSERT_EQ(d.hv_log().slots.size(), 1u);
                std::string text((const char *) d.hv_log().slots.begin()->second.host, size);
                EXPECT_EQ(text.rfind("xkb_keymap", 0), 0u) << text.substr(0, 64);
                EXPECT_NE(text.find("xkb_keycodes"), std::string::npos);
                /* Taken once: a second blob of it is refused. */
                r = control(d, q,
                            request(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0, 0, CrossDomainGuest::CTX,
                                    { 97, VIRTIO_GPU_BLOB_MEM_HOST3D, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 0,
                                      g.ids[0].id, 0, size, 0 }),
                            24);
                EXPECT_EQ(g.type(r), (uint32_t) VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
                EXPECT_FALSE(d.status() & VIRTIO_STATUS_NEEDS_RESET);
        }
        int st = p.finish();
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
                << "status " << st << (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? ": SIGSYS, the seccomp filter" : "");
}

/* The way majordome-vmm starts it (vmm/main.c start_connectors): a
 * connector forked before the VMM's jail, whose mount namespace has no
 * /proc for one forked later to connect through. */
TEST(MajordomeGpuCrossDomain, given_the_vmms_connector_socket_it_connects_through_it) {
        if (!MAJORDOME_HAVE_WAYLAND)
                GTEST_SKIP() << "built without wayland support";
        weston_test::Weston weston;
        std::string why = weston.start();
        if (!why.empty())
                GTEST_SKIP() << why;
        int handle = open(weston.socket_path.c_str(), O_PATH | O_CLOEXEC);
        ASSERT_GE(handle, 0);
        WaylandConnector c;
        ASSERT_EQ(wayland_connector_start(handle, true, &c), 0);
        close(handle);
        EXPECT_TRUE(wayland_connector_is_socket(c.sock));
        {
                VirglProcess p({ "--backend", "2d", "--context-types", "cross-domain", "--blob" }, c.sock);
                wayland_connector_stop(&c);
                ASSERT_NO_FATAL_FAILURE(cross_domain_window(p, weston));
                int st = p.finish();
                EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
        }
        /* Its only user gone, the connector ends. */
        int st = -1;
        for (int i = 0; i < 300 && waitpid(c.pid, &st, WNOHANG) == 0; i++)
                usleep(10000);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "connector status " << st;
}

} // namespace
