/* SPDX-License-Identifier: BSD-3-Clause */
/* Bad configuration and bad images: each a clear one-line error and the
 * documented exit code (vmm/exit-codes.h, docs/majordome-vmm.md). */
#include <gtest/gtest.h>

#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/vmm-config.h"
#include "tests/integration/vmm-process.h"

namespace {

constexpr int kTimeoutMs = 30000;

/* One line on stderr, from majordome-vmm, mentioning `what`. */
void expect_one_line_error(const RunResult &r, int code, const std::string &what) {
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, code) << r.err;
        ASSERT_FALSE(r.err.empty());
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
        EXPECT_EQ(r.err.rfind("majordome-vmm: ", 0), 0u) << r.err;
        EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

RunResult run_kernel(const std::string &kernel, std::vector<std::string> extra = {}) {
        std::vector<std::string> args = { "run", "--serial", "none" };
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(kernel);
        return run_vmm(args, kTimeoutMs);
}

/* A bzImage-shaped file: boot sector, setup header, no real kernel. */
std::string fake_bzimage(uint16_t version, uint16_t xloadflags, size_t size = 64 * 1024) {
        std::string s(size, '\0');
        s[0x1f1] = 4;                                   /* setup_sects */
        s[0x200] = (char) 0xeb;                         /* jmp over the header */
        s[0x201] = 0x6a;
        s[0x1fe] = 0x55;
        s[0x1ff] = (char) 0xaa;
        memcpy(&s[0x202], "HdrS", 4);
        memcpy(&s[0x206], &version, 2);
        s[0x211] = 0x01;                                /* LOADED_HIGH */
        uint32_t align = 0x200000;
        memcpy(&s[0x230], &align, 4);
        s[0x234] = 1;                                   /* relocatable */
        memcpy(&s[0x236], &xloadflags, 2);
        uint32_t cmdline_size = 2047;
        memcpy(&s[0x238], &cmdline_size, 4);
        uint32_t init_size = 0x100000;
        memcpy(&s[0x260], &init_size, 4);
        return s;
}

std::string fake_elf(uint16_t machine, uint64_t paddr, uint64_t memsz) {
        Elf64_Ehdr eh = {};
        Elf64_Phdr ph = {};
        memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_type = ET_EXEC;
        eh.e_machine = machine;
        eh.e_version = EV_CURRENT;
        eh.e_entry = paddr;
        eh.e_phoff = sizeof(eh);
        eh.e_ehsize = sizeof(eh);
        eh.e_phentsize = sizeof(ph);
        eh.e_phnum = 1;
        ph.p_type = PT_LOAD;
        ph.p_offset = 0x1000;
        ph.p_vaddr = ph.p_paddr = paddr;
        ph.p_filesz = 16;
        ph.p_memsz = memsz;
        std::string s(0x1000 + 16, '\xf4'); /* hlt */
        memcpy(&s[0], &eh, sizeof(eh));
        memcpy(&s[sizeof(eh)], &ph, sizeof(ph));
        return s;
}

class VmmBadInput : public ::testing::Test {
protected:
        void SetUp() override {
                std::string why;
                if (!kvm_usable(&why))
                        GTEST_SKIP() << "needs /dev/kvm: " << why;
        }
        TempDir dir_;
};

} // namespace

TEST_F(VmmBadInput, MissingKernelExits66) {
        expect_one_line_error(run_kernel(dir_.file("no-such-kernel")), 66, "No such file");
}

TEST_F(VmmBadInput, KernelThatIsADirectoryExits66) {
        expect_one_line_error(run_kernel(dir_.path), 66, "directory");
}

TEST_F(VmmBadInput, EmptyKernelExits65) {
        write_file(dir_.file("k"), "");
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "empty");
}

TEST_F(VmmBadInput, GarbageKernelExits65) {
        write_file(dir_.file("k"), std::string(4096, 'z'));
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "kernel");
}

TEST_F(VmmBadInput, TruncatedBzImageExits65) {
        write_file(dir_.file("k"), fake_bzimage(0x20f, 0x1).substr(0, 0x300));
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "truncated");
}

TEST_F(VmmBadInput, TruncatedElfExits65) {
        write_file(dir_.file("k"), fake_elf(EM_X86_64, 0x100000, 16).substr(0, 40));
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "kernel");
}

TEST_F(VmmBadInput, BzImageWithBadHeaderMagicExits65) {
        std::string k = fake_bzimage(0x20f, 0x1);
        memcpy(&k[0x202], "HdrX", 4);
        write_file(dir_.file("k"), k);
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "kernel");
}

TEST_F(VmmBadInput, BzImageWithTooOldProtocolExits65) {
        write_file(dir_.file("k"), fake_bzimage(0x201, 0x1));
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "too old");
}

TEST_F(VmmBadInput, BzImageWithout64BitEntryExits65) {
        write_file(dir_.file("k"), fake_bzimage(0x20f, 0x0));
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "64-bit");
}

TEST_F(VmmBadInput, ElfForTheWrongMachineExits65) {
        write_file(dir_.file("k"), fake_elf(EM_AARCH64, 0x100000, 16));
        expect_one_line_error(run_kernel(dir_.file("k")), 65, "machine");
}

TEST_F(VmmBadInput, ElfWithSegmentOutsideRamExits65) {
        write_file(dir_.file("k"), fake_elf(EM_X86_64, 0x40000000, 16));
        expect_one_line_error(run_kernel(dir_.file("k"), { "--mem", "64M" }), 65, "outside");
}

TEST_F(VmmBadInput, InitrdLargerThanRamExits65) {
        write_file(dir_.file("initrd"), std::string(17 * 1024 * 1024, 'i'));
        expect_one_line_error(run_kernel(guest_path("hello"), { "--mem", "16M", "--initrd", dir_.file("initrd") }),
                              65, "initrd");
}

TEST_F(VmmBadInput, MissingInitrdExits66) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--initrd", dir_.file("none") }), 66, "initrd");
}

TEST_F(VmmBadInput, CmdlineLongerThanTheKernelAllowsExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--cmdline", std::string(70000, 'c') }), 64,
                              "cmdline");
}

/* The parser's reason, then run's line: exit 64, the bad name said. */
TEST_F(VmmBadInput, GpuUnknownContextTypeExits64) {
        RunResult r = run_kernel(guest_path("hello"), { "--gpu", "backend=2d,context-types=cross-domain:wayland" });
        EXPECT_EQ(r.exit_code, 64) << r.err;
        EXPECT_NE(r.err.find("'wayland' is not a context type"), std::string::npos) << r.err;
}

TEST_F(VmmBadInput, GpuContextTypeTwiceExits64) {
        RunResult r = run_kernel(guest_path("hello"), { "--gpu", "backend=virglrenderer,context-types=virgl:virgl" });
        EXPECT_EQ(r.exit_code, 64) << r.err;
        EXPECT_NE(r.err.find("'virgl' given twice"), std::string::npos) << r.err;
}

TEST_F(VmmBadInput, GpuVirglContextWithoutVirglrendererExits64) {
        if (!getenv("MAJORDOME_GPU"))
                GTEST_SKIP() << "built without gpu support: --gpu is refused before its values are looked at";
        expect_one_line_error(run_kernel(guest_path("hello"), { "--gpu", "backend=2d,context-types=virgl2" }), 64,
                              "need backend=virglrenderer");
}

TEST_F(VmmBadInput, WaylandSockThatIsNotASocketExits66) {
        std::string plain = dir_.file("wayland-0");
        write_file(plain, "x");
        expect_one_line_error(run_kernel(guest_path("hello"), { "--gpu", "backend=2d", "--wayland-sock", plain }), 66,
                              "not a socket");
        expect_one_line_error(run_kernel(guest_path("hello"), { "--gpu", "backend=2d", "--wayland-sock",
                                                                dir_.file("none") }), 66, "No such file");
}

/* A part this build left out (meson -Dgpu=disabled, -Dvideo=disabled):
 * its option is refused with the reason. meson names the device
 * processes it built in the environment. */
TEST_F(VmmBadInput, GpuInABuildWithoutItExits64WithTheReason) {
        if (getenv("MAJORDOME_GPU"))
                GTEST_SKIP() << "built with gpu support";
        expect_one_line_error(run_kernel(guest_path("hello"), { "--gpu", "backend=2d" }), 64,
                              "--gpu 0: built without gpu support");
}

TEST_F(VmmBadInput, VideoInABuildWithoutItExits64WithTheReason) {
        if (getenv("MAJORDOME_VIDEO"))
                GTEST_SKIP() << "built with video support";
        expect_one_line_error(run_kernel(guest_path("hello"), { "--rng", "--video-decoder" }), 64,
                              "--video-decoder 1: built without video support");
}

TEST_F(VmmBadInput, MemZeroExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--mem", "0" }), 64, "--mem");
}

TEST_F(VmmBadInput, MemUnalignedExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--mem", "1000K" }), 64, "multiple of 1M");
}

TEST_F(VmmBadInput, MemNotASizeExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--mem", "lots" }), 64, "--mem");
}

TEST_F(VmmBadInput, MemLargerThanTheHostExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--mem", "64T" }), 64, "host");
}

TEST_F(VmmBadInput, CpusZeroExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--cpus", "0" }), 64, "--cpus");
}

TEST_F(VmmBadInput, CpusAboveKvmLimitExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--cpus", "100000" }), 64, "--cpus");
}

TEST_F(VmmBadInput, UnknownOptionExits64) {
        RunResult r = run_vmm({ "run", "--frobnicate", guest_path("hello") }, kTimeoutMs);
        EXPECT_EQ(r.exit_code, 64) << r.err;
}

TEST_F(VmmBadInput, ProfileFileThatCannotBeCreatedExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--profile-guest", dir_.file("no/such/dir") }), 64,
                              "--profile-guest");
}

TEST_F(VmmBadInput, BadSerialSpecExits64) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--serial", "tcp:1234" }), 64, "--serial");
}

TEST_F(VmmBadInput, MissingKvmDeviceExits69) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--kvm-device", dir_.file("kvm") }), 69,
                              "No such file");
}

TEST_F(VmmBadInput, NotAKvmDeviceExits69) {
        expect_one_line_error(run_kernel(guest_path("hello"), { "--kvm-device", "/dev/null" }), 69, "KVM");
}

TEST_F(VmmBadInput, KvmWithoutPermissionExits77) {
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to drop to an unprivileged user";
        if (access("/usr/bin/setpriv", X_OK) != 0)
                GTEST_SKIP() << "needs setpriv (util-linux)";
        struct stat st;
        ASSERT_EQ(stat("/dev/kvm", &st), 0);
        if (st.st_mode & S_IROTH && st.st_mode & S_IWOTH)
                GTEST_SKIP() << "/dev/kvm is world-accessible here";
        chmod(dir_.path.c_str(), 0755);
        Process p({ "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", vmm_path(), "run",
                    "--serial", "none", guest_path("hello") });
        RunResult r = p.wait(kTimeoutMs);
        expect_one_line_error(r, 77, "permission denied");
}

/* ---- serve: the configuration from the daemon's CONFIGURE message ---- */

TEST_F(VmmBadInput, ServeRefusesAVmOption) {
        expect_one_line_error(run_vmm({ "serve", "--control-fd", "0", "--mem", "1G" }, kTimeoutMs), 64,
                              "--mem is a VM setting");
}

TEST_F(VmmBadInput, ServeRefusesAKernelArgument) {
        expect_one_line_error(run_vmm({ "serve", "--control-fd", "0", guest_path("hello") }, kTimeoutMs), 64,
                              "KERNEL");
}

TEST_F(VmmBadInput, ServeWithoutControlFdExits64) {
        expect_one_line_error(run_vmm({ "serve" }, kTimeoutMs), 64, "--control-fd");
}

/* The daemon's road, without the daemon: a socketpair, the configuration
 * sent before the VMM runs, the guest booted from the descriptors alone. */
class VmmServe : public VmmBadInput {
protected:
        void SetUp() override {
                VmmBadInput::SetUp();
                if (IsSkipped())
                        return;
                int sv[2];
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
                ours_ = sv[0];
                theirs_ = sv[1]; /* inherited by the VMM */
                ASSERT_EQ(fcntl(ours_, F_SETFD, FD_CLOEXEC), 0);
                vmm_config_init(&c_);
                c_.kernel_fd = open(guest_path("hello").c_str(), O_RDONLY | O_CLOEXEC);
                ASSERT_GE(c_.kernel_fd, 0);
                c_.serial = VMM_SERIAL_FD;
                c_.serial_fd = open(dir_.file("console").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                ASSERT_GE(c_.serial_fd, 0);
                c_.debug_exit = true;
        }
        void TearDown() override {
                vmm_config_close_fds(&c_);
                if (ours_ >= 0)
                        close(ours_);
                if (theirs_ >= 0)
                        close(theirs_);
        }
        RunResult Serve() {
                Process p({ vmm_path(), "serve", "--control-fd", std::to_string(theirs_) });
                close(theirs_);
                theirs_ = -1;
                return p.wait(kTimeoutMs);
        }
        VmmConfig c_;
        int ours_ = -1, theirs_ = -1;
};

TEST_F(VmmServe, BootsTheGuestFromTheConfigureMessage) {
        ASSERT_EQ(vmm_config_send(ours_, 1, &c_), 1);

        RunResult r = Serve();

        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(read_file(dir_.file("console")).find("TEST hello PASS"), std::string::npos) << r.err;
}

TEST_F(VmmServe, AnInvalidConfigurationExits64WithItsReason) {
        /* What the encoder refuses (no vCPU), a hand-made message carries. */
        uint8_t blob[VMM_CONFIG_BLOB_MAX];
        int fds[VMM_CONFIG_FDS_MAX];
        size_t size, n_fds;
        ASSERT_EQ(vmm_config_encode(&c_, blob, &size, fds, &n_fds), 0);
        blob[16] = 0; /* vcpus */
        uint8_t payload[VMM_CONFIG_PART_HEADER_SIZE + sizeof(blob)] = { 0, 0, 1, 0 };
        memcpy(payload + VMM_CONFIG_PART_HEADER_SIZE, blob, size);
        ControlHeader h = { CONTROL_MAGIC, CONTROL_VERSION, CONTROL_TYPE_CONFIGURE, 1, 0,
                            (uint32_t) (VMM_CONFIG_PART_HEADER_SIZE + size), 0 };
        ASSERT_EQ(control_send(ours_, &h, payload, fds, n_fds), 0);

        expect_one_line_error(Serve(), 64, "--cpus 0");
        ControlDatagram d;
        ASSERT_EQ(control_receive(ours_, &d), 0);
        ControlHeader reply;
        ASSERT_EQ(control_header_decode(d.data, d.len, &reply), 0);
        EXPECT_EQ(reply.type, CONTROL_TYPE_CONFIGURE | CONTROL_REPLY);
        EXPECT_EQ(reply.status, -EINVAL);
}

TEST_F(VmmServe, AnUnreadableKernelExits66) {
        close(c_.kernel_fd);
        c_.kernel_fd = open(dir_.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ(vmm_config_send(ours_, 1, &c_), 1);

        expect_one_line_error(Serve(), 66, "directory");
}

TEST_F(VmmServe, AHangUpBeforeTheConfigurationExits64) {
        close(ours_);
        ours_ = -1;

        expect_one_line_error(Serve(), 64, "configure");
}
