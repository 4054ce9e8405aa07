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

#include "tests/device-process.h"
#include "tests/virtio/harness.h"
#include "unaligned.h"
#include "util.h"
#include "vhost-user.h"

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
        explicit VirglProcess(const std::vector<std::string> &extra) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        abort();
                std::vector<std::string> args = { "--fd", std::to_string(sv[1]), "--backend", "virgl", "--displays",
                                                  "0" };
                args.insert(args.end(), extra.begin(), extra.end());
                pid_ = spawn(args, -1, sv[1]);
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
        VmmDevice config() const {
                VmmDevice c{};
                c.kind = VMM_DEVICE_VHOST_USER;
                c.vhost_user.type = VMM_VHOST_USER_GPU;
                c.vhost_user.fd = sock_;
                return c;
        }

private:
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
        r = control(d, q, request(VIRTIO_GPU_CMD_SUBMIT_3D, VIRTIO_GPU_FLAG_FENCE, 9, 1, submit), 24);
        ASSERT_EQ(type(r), (uint32_t) VIRTIO_GPU_RESP_OK_NODATA);
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
