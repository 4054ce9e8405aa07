// SPDX-License-Identifier: BSD-3-Clause
// majordomed's core without a bus: enums, names, the registry, CIDs, state
// files, and StartVm's typed config turned into the VMM's configuration.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <fcntl.h>
#include <string>
#include <vector>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/manager.h"
#include "daemon/machine.h"
#include "daemon/machine-config.h"
#include "daemon/machine-control.h"
#include "daemon/machine-log.h"
#include "daemon/machine-process.h"
#include "daemon/machine-adopt.h"
#include "daemon/machine-state-file.h"
#include "daemon/machine-stop.h"
#include "majordome-features.h"
#include "common/vmm-config.h"

namespace {

struct ManagerFixture : ::testing::Test {
        Manager *m = nullptr;
        char dir[64] = "/tmp/majordomed-unit-XXXXXX";

        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                ASSERT_EQ(manager_new(&m), 0);
                m->runtime_dir = strdup(dir);
        }
        void TearDown() override {
                manager_free(m);
                std::string cmd = std::string("rm -rf ") + dir;
                ASSERT_EQ(system(cmd.c_str()), 0);
        }
        Machine *add(const char *name) {
                Machine *vm = nullptr;
                EXPECT_EQ(machine_new(m, name, &vm), 0);
                EXPECT_EQ(manager_add_vm(m, vm), 0);
                return vm;
        }
};

} // namespace

TEST(DaemonEnums, StateRoundTrips) {
        for (int i = 0; i < _MACHINE_STATE_MAX; i++)
                EXPECT_EQ(machine_state_from_string(machine_state_to_string((MachineState) i)), i);
        EXPECT_EQ(machine_state_from_string("flying"), -EINVAL);
        EXPECT_EQ(machine_state_to_string(_MACHINE_STATE_MAX), nullptr);
        EXPECT_STREQ(machine_state_to_string(MACHINE_STATE_FAILED), "failed");
}

TEST(DaemonEnums, StopReasonRoundTripsAndUsesTheDocumentedWords) {
        for (int i = 0; i < _MACHINE_STOP_REASON_MAX; i++)
                EXPECT_EQ(machine_stop_reason_from_string(machine_stop_reason_to_string((MachineStopReason) i)), i);
        EXPECT_STREQ(machine_stop_reason_to_string(MACHINE_STOP_CRASHED), "crashed");
        EXPECT_STREQ(machine_stop_reason_to_string(MACHINE_STOP_START_FAILED), "start-failed");
        EXPECT_STREQ(machine_stop_reason_to_string(MACHINE_STOP_GUEST_PANIC), "guest-panic");
}

TEST(DaemonEnums, StopStepRoundTrips) {
        for (int i = 0; i < _MACHINE_STOP_STEP_MAX; i++)
                EXPECT_EQ(machine_stop_step_from_string(machine_stop_step_to_string((MachineStopStep) i)), i);
        EXPECT_EQ(machine_stop_step_from_string(nullptr), -EINVAL);
}

TEST(DaemonNames, AcceptsPlainNames) {
        EXPECT_TRUE(machine_name_is_valid("demo"));
        EXPECT_TRUE(machine_name_is_valid("a.b-c_D9"));
        EXPECT_TRUE(machine_name_is_valid(std::string(MACHINE_NAME_MAX, 'x').c_str()));
}

TEST(DaemonNames, RejectsEmptyLongHiddenOptionLikeAndPathNames) {
        EXPECT_FALSE(machine_name_is_valid(nullptr));
        EXPECT_FALSE(machine_name_is_valid(""));
        EXPECT_FALSE(machine_name_is_valid(std::string(MACHINE_NAME_MAX + 1, 'x').c_str()));
        EXPECT_FALSE(machine_name_is_valid(".x"));
        EXPECT_FALSE(machine_name_is_valid("-x"));
        EXPECT_FALSE(machine_name_is_valid("a/b"));
        EXPECT_FALSE(machine_name_is_valid(".."));
        EXPECT_FALSE(machine_name_is_valid("a b"));
        EXPECT_FALSE(machine_name_is_valid("caf\xc3\xa9"));
}

TEST(DaemonShares, TagRulesAreTheVmms) {
        EXPECT_TRUE(vmm_fs_tag_is_valid("data"));
        EXPECT_TRUE(vmm_fs_tag_is_valid(std::string(MACHINE_SHARE_TAG_MAX, 'x').c_str()));
        EXPECT_FALSE(vmm_fs_tag_is_valid(""));
        EXPECT_FALSE(vmm_fs_tag_is_valid(std::string(MACHINE_SHARE_TAG_MAX + 1, 'x').c_str()));
        for (const char *bad : { "a b", "a:b", "a,b", "a/b", "a\\b", "caf\xc3\xa9", "a\tb" })
                EXPECT_FALSE(vmm_fs_tag_is_valid(bad)) << bad;
}

TEST(DaemonShares, DefaultTagIsTheSanitizedNameMadeUnique) {
        MachineShare taken[3] = {};
        char tag[MACHINE_SHARE_TAG_MAX + 1];

        machine_share_tag_from_path("/srv/my dir:1/", taken, 0, tag);
        EXPECT_STREQ(tag, "my_dir_1");
        machine_share_tag_from_path("/", taken, 0, tag);
        EXPECT_STREQ(tag, "share");
        strcpy(taken[0].tag, "data");
        strcpy(taken[1].tag, "data-2");
        machine_share_tag_from_path("/a/data", taken, 2, tag);
        EXPECT_STREQ(tag, "data-3");
        std::string longname(50, 'y');
        strcpy(taken[2].tag, std::string(MACHINE_SHARE_TAG_MAX, 'y').c_str());
        machine_share_tag_from_path(("/" + longname).c_str(), taken, 3, tag);
        EXPECT_EQ(strlen(tag), (size_t) MACHINE_SHARE_TAG_MAX);
        EXPECT_STREQ(tag + MACHINE_SHARE_TAG_MAX - 2, "-2");
        EXPECT_TRUE(vmm_fs_tag_is_valid(tag));
}

TEST_F(ManagerFixture, VmPathIsEscaped) {
        Machine *vm = add("my-vm.1");
        EXPECT_STREQ(vm->path, "/org/majordome/VmManager1/vm/my_2dvm_2e1");
        EXPECT_EQ(manager_get_vm_by_path(m, vm->path), vm);
        EXPECT_EQ(manager_get_vm(m, "my-vm.1"), vm);
}

TEST_F(ManagerFixture, DuplicateNameIsEexist) {
        Machine *dup = nullptr;
        add("twice");
        ASSERT_EQ(machine_new(m, "twice", &dup), 0);
        EXPECT_EQ(manager_add_vm(m, dup), -EEXIST);
        machine_free(dup);
        EXPECT_EQ(m->n_vms, 1u);
}

TEST_F(ManagerFixture, MaxVmsIsEnforced) {
        Machine *extra = nullptr;
        m->max_vms = 2;
        add("a");
        add("b");
        ASSERT_EQ(machine_new(m, "c", &extra), 0);
        EXPECT_EQ(manager_add_vm(m, extra), -EUSERS);
        machine_free(extra);
}

TEST_F(ManagerFixture, CidsAreUniqueAndAtLeastThree) {
        uint32_t a, b;
        Machine *va = add("a");
        ASSERT_EQ(manager_allocate_cid(m, &a), 0);
        va->cid = a;
        ASSERT_EQ(manager_allocate_cid(m, &b), 0);
        EXPECT_GE(a, 3u);
        EXPECT_NE(a, b);
}

TEST_F(ManagerFixture, CidAllocationSkipsUsedAndWraps) {
        uint32_t cid;
        Machine *v = add("a");
        v->cid = MANAGER_CID_MIN;
        m->next_cid = MANAGER_CID_MAX + 1; /* wraps to the minimum, which is taken */
        ASSERT_EQ(manager_allocate_cid(m, &cid), 0);
        EXPECT_EQ(cid, MANAGER_CID_MIN + 1);
}

TEST_F(ManagerFixture, StateFileOfADeadProcessIsNotAdopted) {
        Machine *vm = nullptr, *adopted = nullptr;
        ASSERT_EQ(machine_new(m, "gone", &vm), 0);
        vm->pid = 999999; /* beyond the default pid_max */
        vm->pid_starttime = 1;
        ASSERT_EQ(machine_save(vm), 0);
        EXPECT_EQ(access(vm->state_path, R_OK), 0);
        EXPECT_LT(machine_adopt(m, vm->state_path, &adopted), 0);
        EXPECT_EQ(adopted, nullptr);
        machine_free(vm);
}

TEST_F(ManagerFixture, AdoptingAnEmptyRuntimeDirectoryFindsNothing) {
        EXPECT_EQ(manager_adopt_vms(m), 0);
        EXPECT_EQ(m->n_vms, 0u);
}

namespace {

// Real descriptors of the kinds the VMM checks for: a kernel to read, a
// console log and disks to write, a directory to share.
struct ConfigFixture : ::testing::Test {
        char dir[64] = "/tmp/majordomed-config-XXXXXX";
        MachineConfig config;
        VmmConfig vmm;
        VmmConfigError error;
        int console_fd = -1;
        std::string vsock_path;

        int open_file(const char *name, int flags) {
                std::string path = std::string(dir) + "/" + name;
                int fd = open(path.c_str(), flags | O_CREAT | O_CLOEXEC, 0600);
                EXPECT_GE(fd, 0) << path;
                return fd;
        }
        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                machine_config_init(&config);
                config.kernel_fd = open_file("kernel", O_RDONLY);
                console_fd = open_file("console.log", O_WRONLY);
                vsock_path = std::string(dir) + "/vsock";
        }
        void TearDown() override {
                machine_config_done(&config);
                close(console_fd);
                std::string cmd = std::string("rm -rf ") + dir;
                ASSERT_EQ(system(cmd.c_str()), 0);
        }
        MachineVmmParams params() {
                return MachineVmmParams { 7, vsock_path.c_str(), console_fd, 1024 * 1024 };
        }
        int build() {
                MachineVmmParams p = params();
                return machine_config_to_vmm_config(&config, &p, &vmm, &error);
        }
};

} // namespace

TEST_F(ConfigFixture, AnEmptyConfigGetsTheVmmsDefaultsAndTheDaemonsCappedConsole) {
        ASSERT_EQ(build(), 0) << error.message;
        EXPECT_EQ(vmm.mem_size, VMM_CONFIG_MEM_DEFAULT);
        VmmConfig defaults;
        vmm_config_init(&defaults);
        EXPECT_EQ(vmm.n_vcpus, defaults.n_vcpus);
        EXPECT_EQ(vmm.kernel_fd, config.kernel_fd);
        EXPECT_EQ(vmm.initrd_fd, -1);
        EXPECT_STREQ(vmm.cmdline, "");
        EXPECT_EQ(vmm.serial, (uint32_t) VMM_SERIAL_FD);
        EXPECT_EQ(vmm.serial_fd, console_fd);
        EXPECT_EQ(vmm.serial_max, 1024u * 1024u);
        EXPECT_TRUE(vmm.pvpanic);
        EXPECT_EQ(vmm.on_panic, (uint32_t) CONTROL_PANIC_STOP);
        EXPECT_EQ(vmm.n_devices, 0u);
}

TEST_F(ConfigFixture, ACallersSerialLogIsUsedUncapped) {
        config.serial_fd = open_file("serial.log", O_WRONLY);
        ASSERT_EQ(build(), 0) << error.message;
        EXPECT_EQ(vmm.serial_fd, config.serial_fd);
        EXPECT_EQ(vmm.serial_max, 0u);
}

TEST_F(ConfigFixture, EverySettingReachesItsDeviceInOrder) {
        config.memory_bytes = 512 * MiB;
        config.cpus = 3;
        config.cmdline = strdup("console=ttyS0 quiet");
        config.initrd_fd = open_file("initrd", O_RDONLY);
        config.debug_exit = true;
        config.on_panic = CONTROL_PANIC_PAUSE;
        config.disks[0] = MachineDisk { open_file("a.img", O_RDWR), false, true, "serial-a" };
        config.disks[1] = MachineDisk { open_file("b.img", O_RDONLY), true, false, "" };
        config.n_disks = 2;
        config.balloon = true;
        config.rng = true;
        config.shares[0].fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        config.shares[0].path = strdup(dir);
        config.shares[0].cache = VMM_FS_CACHE_NEVER;
        config.shares[0].read_only = true;
        strcpy(config.shares[0].tag, "data");
        config.n_shares = 1;
        config.vsock = true;
        /* A build without them refuses the GPU (VmmConfigFeatures). */
        const bool gpu = MAJORDOME_HAVE_GPU && MAJORDOME_HAVE_WAYLAND;
        if (gpu)
                config.gpu = MachineGpu { true, VMM_GPU_BACKEND_2D, 800, 600, 2, 64 * MiB, true,
                                          VMM_GPU_CONTEXT_CROSS_DOMAIN };

        ASSERT_EQ(build(), 0) << error.message;

        EXPECT_EQ(vmm.mem_size, 512 * MiB);
        EXPECT_EQ(vmm.n_vcpus, 3u);
        EXPECT_STREQ(vmm.cmdline, "console=ttyS0 quiet");
        EXPECT_EQ(vmm.initrd_fd, config.initrd_fd);
        EXPECT_TRUE(vmm.debug_exit);
        EXPECT_EQ(vmm.on_panic, (uint32_t) CONTROL_PANIC_PAUSE);
        ASSERT_EQ(vmm.n_devices, gpu ? 7u : 6u);
        const VmmDevice *d = vmm.devices;
        EXPECT_EQ(d[0].kind, (uint32_t) VMM_DEVICE_BLOCK);
        EXPECT_EQ(d[0].block.fd, config.disks[0].fd);
        EXPECT_FALSE(d[0].block.read_only);
        EXPECT_TRUE(d[0].block.sparse);
        EXPECT_STREQ(d[0].block.id, "serial-a");
        EXPECT_EQ(d[1].kind, (uint32_t) VMM_DEVICE_BLOCK);
        EXPECT_TRUE(d[1].block.read_only);
        EXPECT_STREQ(d[1].block.id, "");
        EXPECT_EQ(d[2].kind, (uint32_t) VMM_DEVICE_BALLOON);
        EXPECT_EQ(d[3].kind, (uint32_t) VMM_DEVICE_RNG);
        EXPECT_EQ(d[4].kind, (uint32_t) VMM_DEVICE_SHARED_DIR);
        EXPECT_EQ(d[4].shared_dir.fd, config.shares[0].fd);
        EXPECT_EQ(d[4].shared_dir.cache, (uint32_t) VMM_FS_CACHE_NEVER);
        EXPECT_TRUE(d[4].shared_dir.read_only);
        EXPECT_STREQ(d[4].shared_dir.tag, "data");
        EXPECT_EQ(d[5].kind, (uint32_t) VMM_DEVICE_VSOCK);
        EXPECT_EQ(d[5].vsock.cid, 7u);
        EXPECT_EQ(d[5].vsock.max_connections, (uint32_t) VMM_CONFIG_VSOCK_MAX_CONNECTIONS_DEFAULT);
        EXPECT_EQ(std::string(d[5].vsock.path), vsock_path);
        if (!gpu)
                return;
        EXPECT_EQ(d[6].kind, (uint32_t) VMM_DEVICE_GPU);
        EXPECT_EQ(d[6].gpu.width, 800u);
        EXPECT_EQ(d[6].gpu.height, 600u);
        EXPECT_EQ(d[6].gpu.displays, 2u);
        EXPECT_EQ(d[6].gpu.max_memory, 64 * MiB);
        EXPECT_EQ(d[6].gpu.context_types, VMM_GPU_CONTEXT_CROSS_DOMAIN);
        EXPECT_EQ(d[6].gpu.wayland_fd, -1); // headless
}

TEST_F(ConfigFixture, ACmdlineLongerThanTheVmmTakesIsE2big) {
        config.cmdline = strdup(std::string(VMM_CONFIG_CMDLINE_MAX + 1, 'x').c_str());
        EXPECT_EQ(build(), -E2BIG);
}

TEST_F(ConfigFixture, AVsockPathTooLongForSunPathIsEnametoolong) {
        config.vsock = true;
        vsock_path = "/" + std::string(VMM_CONFIG_SOCKET_PATH_MAX, 'v');
        EXPECT_EQ(build(), -ENAMETOOLONG);
}

TEST_F(ConfigFixture, TheVmmsOwnCheckRefusesWithItsReason) {
        config.disks[0] = MachineDisk { open_file("ro.img", O_RDONLY), false, false, "" };
        config.n_disks = 1;
        EXPECT_EQ(build(), -EACCES);
        EXPECT_NE(strstr(error.message, "read-only"), nullptr) << error.message;
}

TEST_F(ConfigFixture, NoKernelIsRefused) {
        config.kernel_fd = safe_close(config.kernel_fd);
        EXPECT_LT(build(), 0);
        EXPECT_NE(error.message[0], 0);
}

namespace {

struct StateFileFixture : ::testing::Test {
        char dir[64] = "/tmp/majordomed-state-XXXXXX";
        std::string path;
        MachineStateFile back = {};

        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                path = std::string(dir) + "/demo.state";
        }
        void TearDown() override {
                machine_state_file_done(&back);
                std::string cmd = std::string("rm -rf ") + dir;
                ASSERT_EQ(system(cmd.c_str()), 0);
        }
        void write_text(const std::string &text) {
                std::ofstream(path) << text;
        }
        unsigned files_in_dir() {
                unsigned n = 0;
                DIR *d = opendir(dir);
                while (struct dirent *de = readdir(d))
                        if (de->d_name[0] != '.')
                                n++;
                closedir(d);
                return n;
        }
};

} // namespace

TEST_F(StateFileFixture, EveryFieldRoundTrips) {
        char name[] = "demo", sock[] = "/run/majordome/demo.sock", log[] = "/run/majordome/demo.console.log";
        char path0[] = "/srv/plain", path1[] = "/srv/a b\\c\ncaf\xc3\xa9\x7f";
        MachineStateFile s = {};
        s.name = name;
        s.socket = sock;
        s.log = log;
        s.state = MACHINE_STATE_PAUSED;
        s.pid = 4242;
        s.owner_uid = 65534;
        s.starttime = 123456789012ULL;
        s.memory = 512 * MiB;
        s.start_usec = 1700000000000000ULL;
        s.cid = 42;
        s.vcpus = 3;
        s.stop_requested = true;
        s.kill_requested = false;
        s.balloon = true;
        s.guest_panicked = true;
        s.on_panic = CONTROL_PANIC_PAUSE;
        s.balloon_target = 128 * MiB;
        s.disks = 3;
        s.disks_ro = 0x5;
        s.stop_step = MACHINE_STOP_STEP_SIGTERM;
        s.stop_timeout_ms = 7000;
        s.shares[0] = MachineShare { -EBADF, path0, VMM_FS_CACHE_ALWAYS, true, "plain" };
        s.shares[1] = MachineShare { -EBADF, path1, VMM_FS_CACHE_NEVER, false, "odd-2" };
        s.n_shares = 2;
        s.gpu = MachineGpu { true, VMM_GPU_BACKEND_VIRGL, 1280, 720, 2, 64 * MiB, true,
                             VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_CROSS_DOMAIN };

        ASSERT_EQ(machine_state_file_write(path.c_str(), &s), 0);
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);

        EXPECT_STREQ(back.name, name);
        EXPECT_STREQ(back.socket, sock);
        EXPECT_STREQ(back.log, log);
        EXPECT_EQ(back.state, MACHINE_STATE_PAUSED);
        EXPECT_EQ(back.pid, 4242);
        EXPECT_EQ(back.owner_uid, (uid_t) 65534);
        EXPECT_EQ(back.starttime, s.starttime);
        EXPECT_EQ(back.memory, s.memory);
        EXPECT_EQ(back.start_usec, s.start_usec);
        EXPECT_EQ(back.cid, 42u);
        EXPECT_EQ(back.vcpus, 3u);
        EXPECT_TRUE(back.stop_requested);
        EXPECT_FALSE(back.kill_requested);
        EXPECT_TRUE(back.balloon);
        EXPECT_TRUE(back.guest_panicked);
        EXPECT_EQ(back.on_panic, (uint32_t) CONTROL_PANIC_PAUSE);
        EXPECT_EQ(back.balloon_target, s.balloon_target);
        EXPECT_EQ(back.disks, 3u);
        EXPECT_EQ(back.disks_ro, 0x5u);
        EXPECT_EQ(back.stop_step, MACHINE_STOP_STEP_SIGTERM);
        EXPECT_EQ(back.stop_timeout_ms, 7000u);
        ASSERT_EQ(back.n_shares, 2u);
        for (unsigned i = 0; i < 2; i++) {
                EXPECT_STREQ(back.shares[i].path, s.shares[i].path) << i;
                EXPECT_STREQ(back.shares[i].tag, s.shares[i].tag) << i;
                EXPECT_EQ(back.shares[i].cache, s.shares[i].cache) << i;
                EXPECT_EQ(back.shares[i].read_only, s.shares[i].read_only) << i;
                EXPECT_LT(back.shares[i].fd, 0) << i;
        }
        EXPECT_TRUE(back.gpu.enabled);
        EXPECT_EQ(back.gpu.backend, (uint32_t) VMM_GPU_BACKEND_VIRGL);
        EXPECT_EQ(back.gpu.context_types, VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_CROSS_DOMAIN);
        EXPECT_EQ(back.gpu.width, 1280u);
        EXPECT_EQ(back.gpu.height, 720u);
        EXPECT_EQ(back.gpu.displays, 2u);
        EXPECT_EQ(back.gpu.max_memory, 64 * MiB);
        EXPECT_TRUE(back.gpu.headless);
}

TEST_F(StateFileFixture, WritingLeavesOnlyTheFileItself) {
        char name[] = "demo", sock[] = "/s";
        MachineStateFile s = {};
        s.name = name;
        s.socket = sock;
        s.pid = 1;
        ASSERT_EQ(machine_state_file_write(path.c_str(), &s), 0);
        ASSERT_EQ(machine_state_file_write(path.c_str(), &s), 0);
        EXPECT_EQ(files_in_dir(), 1u);
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_FALSE(back.gpu.enabled);
        EXPECT_EQ(back.n_shares, 0u);
}

/* A file from before OWNER= was kept: the VM counts as root's, so only
 * root or manage-any-vm may change it (never anyone by accident). */
TEST_F(StateFileFixture, MissingOwnerReadsAsRoot) {
        FILE *f = fopen(path.c_str(), "we");
        ASSERT_NE(f, nullptr);
        fputs("NAME=old\nPID=7\nSOCKET=/s\n", f);
        fclose(f);
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_EQ(back.owner_uid, (uid_t) 0);
}

TEST_F(StateFileFixture, ASharePathCannotAddAKeyOfItsOwn) {
        char name[] = "demo", sock[] = "/s", evil[] = "/srv/x\nPID=1\nGPU=2d 640 480 1 1048576 0";
        MachineStateFile s = {};
        s.name = name;
        s.socket = sock;
        s.pid = 777;
        s.shares[0] = MachineShare { -EBADF, evil, VMM_FS_CACHE_AUTO, false, "x" };
        s.n_shares = 1;
        ASSERT_EQ(machine_state_file_write(path.c_str(), &s), 0);
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_EQ(back.pid, 777);
        EXPECT_FALSE(back.gpu.enabled);
        ASSERT_EQ(back.n_shares, 1u);
        EXPECT_STREQ(back.shares[0].path, evil);
}

TEST_F(StateFileFixture, LiveSharesRoundTripAndBadLinesAreLeftOut) {
        char name[] = "demo", sock[] = "/s", odd[] = "/home/me/new\nline \\x41", plain[] = "/srv/p";
        MachineStateFile s = {};
        s.name = name;
        s.socket = sock;
        s.pid = 12;
        s.live_shares = true;
        s.live[0] = MachineShare { -EBADF, odd, VMM_FS_CACHE_AUTO, true, "odd" };
        s.live[1] = MachineShare { -EBADF, plain, VMM_FS_CACHE_AUTO, false, "p" };
        s.n_live = 2;
        ASSERT_EQ(machine_state_file_write(path.c_str(), &s), 0);
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_TRUE(back.live_shares);
        EXPECT_EQ(back.n_shares, 0u);
        ASSERT_EQ(back.n_live, 2u);
        EXPECT_STREQ(back.live[0].path, odd);
        EXPECT_STREQ(back.live[0].tag, "odd");
        EXPECT_TRUE(back.live[0].read_only);
        EXPECT_STREQ(back.live[1].path, plain);
        EXPECT_FALSE(back.live[1].read_only);

        /* A bad tag, a missing path, more than MACHINE_LIVE_SHARES_MAX: left out. */
        std::string text = "NAME=demo\nSOCKET=/s\nPID=12\nLIVE_SHARES=1\nLIVE_SHARE=0 a:b /x\nLIVE_SHARE=0 t\n";
        for (int i = 0; i < MACHINE_LIVE_SHARES_MAX + 2; i++)
                text += "LIVE_SHARE=1 t" + std::to_string(i) + " /srv/" + std::to_string(i) + "\n";
        write_text(text);
        machine_state_file_done(&back);
        back = {};
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_TRUE(back.live_shares);
        ASSERT_EQ(back.n_live, (unsigned) MACHINE_LIVE_SHARES_MAX);
        EXPECT_STREQ(back.live[0].tag, "t0");
}

TEST_F(StateFileFixture, AGpuLineWithoutContextTypesIsTheBackendsOwn) {
        /* What a daemon before context types wrote: six fields. */
        write_text("NAME=demo\nSOCKET=/s\nPID=12\nGPU=virglrenderer 640 480 1 1048576 0\n");
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_TRUE(back.gpu.enabled);
        EXPECT_EQ(back.gpu.context_types, 0u);
        EXPECT_FALSE(back.gpu.headless);
}

TEST_F(StateFileFixture, AGpuLineWithContextTypesTheVmmWouldRefuseIsLeftOut) {
        const char *bad[] = { "2d 640 480 1 1048576 1 virgl", "2d 640 480 1 1048576 1 wayland",
                              "2d 640 480 1 1048576 1 cross-domain:cross-domain", "2d 640 480 1 1048576 1 " };
        for (const char *v : bad) {
                machine_state_file_done(&back);
                back = {};
                write_text(std::string("NAME=demo\nSOCKET=/s\nPID=12\nGPU=") + v + "\n");
                ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0) << v;
                EXPECT_FALSE(back.gpu.enabled) << v;
        }
}

TEST_F(StateFileFixture, WithoutNameSocketOrPidItIsEbadmsg) {
        write_text("NAME=demo\nSOCKET=/s\n");
        EXPECT_EQ(machine_state_file_read(path.c_str(), &back), -EBADMSG);
        write_text("NAME=demo\nPID=12\n");
        EXPECT_EQ(machine_state_file_read(path.c_str(), &back), -EBADMSG);
        write_text("SOCKET=/s\nPID=12\n");
        EXPECT_EQ(machine_state_file_read(path.c_str(), &back), -EBADMSG);
        EXPECT_EQ(machine_state_file_read((std::string(dir) + "/none.state").c_str(), &back), -ENOENT);
}

TEST_F(StateFileFixture, BadLinesAreLeftOutAndTheRestKept) {
        write_text("# comment\nNAME=demo\nSOCKET=/s\nPID=12\nSTATE=flying\nWHAT=ever\n"
                   "GPU=3d 640 480 1 1048576 0\nSHARE=0 sometimes tag /p\nSHARE=1 never bad:tag /p\n"
                   "SHARE=1 never ok /p\nON_PANIC=explode\nSTOP_STEP=later\nSTOP_TIMEOUT_MS=99999999\n");
        ASSERT_EQ(machine_state_file_read(path.c_str(), &back), 0);
        EXPECT_LT(back.state, 0);
        EXPECT_FALSE(back.gpu.enabled);
        ASSERT_EQ(back.n_shares, 1u);
        EXPECT_STREQ(back.shares[0].tag, "ok");
        EXPECT_TRUE(back.shares[0].read_only);
        EXPECT_EQ(back.on_panic, (uint32_t) CONTROL_PANIC_STOP);
        EXPECT_EQ(back.stop_step, MACHINE_STOP_STEP_NONE);
        EXPECT_EQ(back.stop_timeout_ms, (uint32_t) MACHINE_STOP_TIMEOUT_MS_MAX);
}

TEST_F(ManagerFixture, VmSaveRecordsTheVm) {
        MachineStateFile back = {};
        Machine *vm = add("saved");
        vm->pid = 31337;
        vm->pid_starttime = 99;
        vm->state = MACHINE_STATE_RUNNING;
        vm->cid = 9;
        vm->vcpus = 2;
        vm->memory_bytes = 256 * MiB;
        vm->balloon = true;
        vm->n_disks = 2;
        vm->disks_read_only = 0x2;
        ASSERT_EQ(machine_save(vm), 0);
        ASSERT_EQ(machine_state_file_read(vm->state_path, &back), 0);
        EXPECT_STREQ(back.name, "saved");
        EXPECT_STREQ(back.socket, vm->socket_path);
        EXPECT_STREQ(back.log, vm->log_path);
        EXPECT_EQ(back.state, MACHINE_STATE_RUNNING);
        EXPECT_EQ(back.pid, 31337);
        EXPECT_EQ(back.starttime, 99u);
        EXPECT_EQ(back.cid, 9u);
        EXPECT_EQ(back.vcpus, 2u);
        EXPECT_EQ(back.memory, 256 * MiB);
        EXPECT_TRUE(back.balloon);
        EXPECT_EQ(back.disks, 2u);
        EXPECT_EQ(back.disks_ro, 0x2u);
        machine_state_file_done(&back);
}

namespace {

// A stand-in for majordome-vmm: a shell script that records its arguments
// and whether the control connection sits on descriptor 3.
struct ProcessFixture : ::testing::Test {
        char dir[64] = "/tmp/majordomed-process-XXXXXX";
        std::string vmm, kernel;
        VmmConfig *config = nullptr;
        int kernel_fd = -1, log_fd = -1;
        MachineProcess p = MACHINE_PROCESS_NULL;

        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                vmm = std::string(dir) + "/fake-vmm";
                std::ofstream(vmm) << "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\n"
                                      "[ -S /dev/fd/3 ] && echo control > \"$(dirname \"$0\")/fd3\"\nexit 0\n";
                ASSERT_EQ(chmod(vmm.c_str(), 0700), 0);
                kernel = std::string(dir) + "/kernel";
                kernel_fd = open(kernel.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                log_fd = open((std::string(dir) + "/vmm.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                config = new VmmConfig;
                vmm_config_init(config);
                config->kernel_fd = kernel_fd;
        }
        void TearDown() override {
                machine_process_done(&p);
                delete config;
                close(kernel_fd);
                close(log_fd);
                std::string cmd = std::string("rm -rf ") + dir;
                ASSERT_EQ(system(cmd.c_str()), 0);
        }
        int wait_exit() {
                int status = 0;
                EXPECT_EQ(waitpid(p.pid, &status, 0), p.pid);
                EXPECT_TRUE(WIFEXITED(status));
                return WEXITSTATUS(status);
        }
        std::string read_file(const char *name) {
                std::ifstream f(std::string(dir) + "/" + name);
                std::string line;
                std::getline(f, line);
                return line;
        }
};

} // namespace

TEST_F(ProcessFixture, AGateClosedUnopenedEndsTheChildBeforeTheVmmRuns) {
        uint32_t ids = 0;
        ASSERT_EQ(machine_process_spawn(vmm.c_str(), "/nonexistent/demo.sock", log_fd, config, 5, &p, &ids), 0);
        EXPECT_GT(p.pid, 0);
        EXPECT_GE(p.pidfd, 0);
        EXPECT_GE(p.control_fd, 0);
        EXPECT_GE(ids, 1u);
        p.gate_fd = safe_close(p.gate_fd);
        EXPECT_EQ(wait_exit(), MACHINE_GATE_CLOSED_EXIT);
        EXPECT_EQ(read_file("args"), "");
}

TEST_F(ProcessFixture, AnOpenedGateExecsTheVmmWithItsMinimalCommandLine) {
        uint32_t ids = 0;
        ASSERT_EQ(machine_process_spawn(vmm.c_str(), "/run/x/demo.sock", log_fd, config, 1, &p, &ids), 0);
        ASSERT_EQ(machine_process_open_gate(&p), 0);
        EXPECT_LT(p.gate_fd, 0);
        EXPECT_EQ(wait_exit(), 0);
        EXPECT_EQ(read_file("args"), "serve --socket /run/x/demo.sock --control-fd 3");
        EXPECT_EQ(read_file("fd3"), "control");
}

TEST(DaemonProcess, StartTimeNamesALiveProcessAndNotADeadOne) {
        uint64_t a = 0, b = 0;
        ASSERT_EQ(machine_pid_get_starttime(getpid(), &a), 0);
        ASSERT_EQ(machine_pid_get_starttime(getpid(), &b), 0);
        EXPECT_GT(a, 0u);
        EXPECT_EQ(a, b);
        EXPECT_EQ(machine_pid_get_starttime(999999, &a), -ENOENT);
}

namespace {

std::string escape(const std::string &text, size_t max = 1024) {
        char *e = machine_escape_text(text.data(), text.size(), max);
        std::string r = e ? e : "(null)";
        free(e);
        return r;
}

struct VmmLogFixture : ::testing::Test {
        char dir[64] = "/tmp/majordomed-log-XXXXXX";
        std::string path;

        void SetUp() override {
                ASSERT_NE(mkdtemp(dir), nullptr);
                path = std::string(dir) + "/demo.log";
        }
        void TearDown() override {
                std::string cmd = std::string("rm -rf ") + dir;
                ASSERT_EQ(system(cmd.c_str()), 0);
        }
        std::string last_error(const std::string &text) {
                std::ofstream(path, std::ios::binary) << text;
                char *e = machine_log_last_vmm_error(path.c_str());
                std::string r = e ? e : "(null)";
                free(e);
                return r;
        }
};

} // namespace

TEST(DaemonEscape, PlainTextAndUtf8PassUnchanged) {
        EXPECT_EQ(escape("cannot open disk 0"), "cannot open disk 0");
        EXPECT_EQ(escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(DaemonEscape, ControlsBackslashAndBadUtf8BecomeEscapes) {
        EXPECT_EQ(escape("a\nb\x1b[31m\x7f"), "a\\x0ab\\x1b[31m\\x7f");
        EXPECT_EQ(escape("a\\b"), "a\\\\b");
        EXPECT_EQ(escape("\xff"), "\\xff");
        EXPECT_EQ(escape("\xc0\xaf"), "\\xc0\\xaf");             // overlong '/'
        EXPECT_EQ(escape("\xed\xa0\x80"), "\\xed\\xa0\\x80");    // a surrogate
        EXPECT_EQ(escape("\xc2\x85"), "\\xc2\\x85");             // C1 NEL
        EXPECT_EQ(escape(std::string("a\0b", 3)), "a\\x00b");
}

TEST(DaemonEscape, LongTextIsCutWithAnEllipsisNeverInsideAnEscape) {
        EXPECT_EQ(escape("abcdefgh", 5), "abcde...");
        EXPECT_EQ(escape("abcd\n", 5), "abcd...");
}

TEST_F(VmmLogFixture, TheLastVmmLineIsTakenEscaped) {
        EXPECT_EQ(last_error("starting\nmajordome-vmm: first\nguest noise\nmajordome-vmm: second \x1b[2J\nbye\n"),
                  "second \\x1b[2J");
        EXPECT_EQ(last_error("majordome-vmm: no newline at the end"), "no newline at the end");
}

TEST_F(VmmLogFixture, NoVmmLineOrNoFileIsNull) {
        EXPECT_EQ(last_error("just\nnoise\n"), "(null)");
        EXPECT_EQ(last_error(""), "(null)");
        EXPECT_EQ(machine_log_last_vmm_error((std::string(dir) + "/none.log").c_str()), nullptr);
}

TEST_F(VmmLogFixture, OnlyTheTailIsReadAndALineItCutsIsSkipped) {
        std::string filler;
        while (filler.size() <= MACHINE_VMM_LOG_TAIL)
                filler += "filler line\n";
        EXPECT_EQ(last_error("majordome-vmm: too old\n" + filler), "(null)");
        EXPECT_EQ(last_error("majordome-vmm: " + std::string(MACHINE_VMM_LOG_TAIL, 'x') + "\n"), "(null)");
}

TEST_F(VmmLogFixture, ALongErrorIsCutToTheMax) {
        std::string e = last_error("majordome-vmm: " + std::string(2 * MACHINE_VMM_ERROR_MAX, 'y') + "\n");
        EXPECT_EQ(e, std::string(MACHINE_VMM_ERROR_MAX, 'y') + "...");
}

namespace {

// What the core told the wire layer, through ManagerHooks.
struct HookLog {
        int started = 0, state_changed = 0, devices_changed = 0, balloon_changed = 0, guest_panicked = 0;
};
HookLog hook_log;

const ManagerHooks recording_hooks = {
        .machine_state_changed = [](Manager *, Machine *) { hook_log.state_changed++; },
        .machine_devices_changed = [](Manager *, Machine *) { hook_log.devices_changed++; },
        .machine_balloon_changed = [](Manager *, Machine *) { hook_log.balloon_changed++; },
        .machine_started = [](Manager *, Machine *) { hook_log.started++; },
        .machine_guest_panicked = [](Manager *, Machine *) { hook_log.guest_panicked++; },
};

// One VM with its control connection on a socketpair: the test plays the
// VMM on the other end, the core runs on a real sd-event loop, no bus.
struct ControlFixture : ManagerFixture {
        Machine *vm = nullptr;
        int vmm_fd = -1;
        std::vector<std::pair<int, int>> done; // (request tag, r)
        // Tags live as long as the fixture: requests still out when the
        // Machine is freed are answered then (-ECANCELED).
        std::pair<ControlFixture *, int> a { this, 1 }, b { this, 2 };

        void SetUp() override {
                int pair[2];

                ManagerFixture::SetUp();
                ASSERT_EQ(sd_event_new(&m->event), 0);
                hook_log = HookLog();
                m->hooks = &recording_hooks;
                vm = add("wired");
                ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
                ASSERT_EQ(machine_control_attach(vm, pair[0]), 0);
                vmm_fd = pair[1];
        }
        void TearDown() override {
                if (vmm_fd >= 0)
                        close(vmm_fd);
                ManagerFixture::TearDown();
        }
        static void on_reply(Machine *, int r, const ControlReply *reply, void *userdata) {
                auto *self = static_cast<std::pair<ControlFixture *, int> *>(userdata);
                self->first->done.emplace_back(self->second, r >= 0 ? reply->status : r);
        }
        void pump() {
                while (sd_event_run(m->event, 0) > 0)
                        ;
        }
        ControlHeader receive() {
                ControlDatagram d;
                ControlHeader h = {};
                EXPECT_EQ(control_receive(vmm_fd, &d), 0);
                EXPECT_EQ(control_header_decode(d.data, d.len, &h), 0);
                return h;
        }
        void send(uint16_t type, uint32_t id, int32_t status, const void *payload = nullptr, size_t len = 0) {
                ControlHeader h = {};
                h.magic = CONTROL_MAGIC;
                h.version = CONTROL_VERSION;
                h.type = type;
                h.id = id;
                h.status = status;
                h.length = (uint32_t) len;
                ASSERT_EQ(control_send(vmm_fd, &h, payload, nullptr, 0), 0);
                pump();
        }
        // What a VMM of another protocol version says to anything: its
        // header with its own version (docs/control-protocol.md).
        void send_as_version(uint16_t version) {
                ControlHeader h = {};
                h.magic = CONTROL_MAGIC;
                h.version = version;
                h.type = CONTROL_TYPE_INFO | CONTROL_REPLY;
                h.id = 1;
                h.status = -EPROTO;
                ASSERT_EQ(control_send(vmm_fd, &h, nullptr, nullptr, 0), 0);
                pump();
        }
        void send_state(uint32_t seq, uint32_t state) {
                uint8_t buf[16];
                send(CONTROL_EVENT_STATE_CHANGED, seq, 0, buf, control_state_changed_encode(state, buf));
        }
        void send_ready(uint32_t seq) {
                ControlReady ready = {};
                uint8_t buf[CONTROL_READY_MAX_SIZE];
                ready.state = CONTROL_STATE_RUNNING;
                ready.vcpus = 2;
                ready.memory_bytes = 256 * MiB;
                ready.n_devices = 1;
                ready.devices[0] = ControlDevice { 0x1af4, 0x1042, 0, 3, 0 };
                send(CONTROL_EVENT_READY, seq, 0, buf, control_ready_encode(&ready, buf));
        }
};

} // namespace

TEST_F(ControlFixture, RepliesAreMatchedByIdWhateverTheirOrder) {
        ASSERT_EQ(machine_control_request(vm, CONTROL_TYPE_INFO, on_reply, &a), 0);
        ASSERT_EQ(machine_control_request(vm, CONTROL_TYPE_PAUSE, on_reply, &b), 0);
        ControlHeader ha = receive(), hb = receive();
        EXPECT_EQ(ha.type, CONTROL_TYPE_INFO);
        EXPECT_EQ(hb.type, CONTROL_TYPE_PAUSE);
        EXPECT_NE(ha.id, hb.id);

        send(CONTROL_TYPE_INFO | CONTROL_REPLY, hb.id, 0);       // right id, wrong type: skipped
        send(CONTROL_TYPE_PAUSE | CONTROL_REPLY, hb.id + 100, 0); // nobody's id: skipped
        EXPECT_TRUE(done.empty());
        send(CONTROL_TYPE_PAUSE | CONTROL_REPLY, hb.id, -EALREADY);
        send(CONTROL_TYPE_INFO | CONTROL_REPLY, ha.id, 0);

        ASSERT_EQ(done.size(), 2u);
        EXPECT_EQ(done[0], std::make_pair(2, -EALREADY));
        EXPECT_EQ(done[1], std::make_pair(1, 0));
        EXPECT_EQ(vm->n_requests, 0u);
}

TEST_F(ControlFixture, TheQueueIsBoundedButAStopGetsThrough) {
        for (int i = 0; i < MACHINE_CONTROL_QUEUE_MAX; i++)
                ASSERT_EQ(machine_control_request(vm, CONTROL_TYPE_INFO, on_reply, &a), 0) << i;
        EXPECT_EQ(machine_control_request(vm, CONTROL_TYPE_INFO, on_reply, &a), -EBUSY);
        EXPECT_EQ(machine_control_request_full(vm, CONTROL_TYPE_STOP, nullptr, 0, true, on_reply, &a), 0);
        EXPECT_EQ(vm->n_requests, (unsigned) MACHINE_CONTROL_QUEUE_MAX + 1);
}

TEST_F(ControlFixture, AHangUpFailsEveryRequestWithEnotconn) {
        ASSERT_EQ(machine_control_request(vm, CONTROL_TYPE_INFO, on_reply, &a), 0);
        ASSERT_EQ(machine_control_request(vm, CONTROL_TYPE_INFO, on_reply, &b), 0);
        close(vmm_fd);
        vmm_fd = -1;
        pump();
        ASSERT_EQ(done.size(), 2u);
        EXPECT_EQ(done[0].second, -ENOTCONN);
        EXPECT_EQ(done[1].second, -ENOTCONN);
        EXPECT_LT(vm->control_fd, 0);
        EXPECT_EQ(machine_control_request(vm, CONTROL_TYPE_INFO, on_reply, &a), -ENOTCONN);
}

TEST_F(ControlFixture, ReadyStartsTheVmAndStaleEventsAreIgnored) {
        ASSERT_EQ(vm->state, MACHINE_STATE_STARTING);
        send_state(1, CONTROL_STATE_PAUSED);    // before ready: not a start
        EXPECT_EQ(vm->state, MACHINE_STATE_STARTING);

        send_ready(2);
        EXPECT_EQ(vm->state, MACHINE_STATE_RUNNING);
        EXPECT_EQ(vm->vcpus, 2u);
        EXPECT_EQ(vm->memory_bytes, 256 * MiB);
        ASSERT_EQ(vm->n_devices, 1u);
        EXPECT_EQ(vm->devices[0].slot, 3);
        EXPECT_EQ(hook_log.started, 1);
        EXPECT_EQ(hook_log.devices_changed, 1);

        send_state(2, CONTROL_STATE_PAUSED);    // a duplicate sequence number
        EXPECT_EQ(vm->state, MACHINE_STATE_RUNNING);
        send_state(3, CONTROL_STATE_PAUSED);
        EXPECT_EQ(vm->state, MACHINE_STATE_PAUSED);
        send_state(3, CONTROL_STATE_RUNNING);   // replayed
        EXPECT_EQ(vm->state, MACHINE_STATE_PAUSED);
}

TEST_F(ControlFixture, NothingCountsAfterExiting) {
        uint8_t buf[CONTROL_PAYLOAD_MAX];
        send_ready(1);
        send(CONTROL_EVENT_EXITING, 2, 0, buf, control_exiting_encode(0, "poweroff", buf));
        EXPECT_TRUE(vm->got_exiting);
        send_state(3, CONTROL_STATE_PAUSED);
        EXPECT_EQ(vm->state, MACHINE_STATE_RUNNING);
}

TEST_F(ControlFixture, AGuestPanicIsReportedOnceAndSaved) {
        uint8_t buf[16];
        MachineStateFile back = {};
        vm->pid = 4321; // a state file names its VMM
        send_ready(1);
        send(CONTROL_EVENT_GUEST_PANIC, 2, 0, buf, control_guest_panic_encode(1, CONTROL_PANIC_PAUSE, buf));
        send(CONTROL_EVENT_GUEST_PANIC, 3, 0, buf, control_guest_panic_encode(1, CONTROL_PANIC_PAUSE, buf));
        EXPECT_EQ(hook_log.guest_panicked, 1);
        EXPECT_TRUE(vm->guest_panicked);
        EXPECT_EQ(vm->panic_action, (uint32_t) CONTROL_PANIC_PAUSE);
        ASSERT_EQ(machine_state_file_read(vm->state_path, &back), 0);
        EXPECT_TRUE(back.guest_panicked);
        machine_state_file_done(&back);
}

TEST_F(ControlFixture, AMalformedEventIsIgnored) {
        uint8_t short_ready[4] = {};
        send(CONTROL_EVENT_READY, 1, 0, short_ready, sizeof(short_ready));
        EXPECT_EQ(vm->state, MACHINE_STATE_STARTING);
        EXPECT_EQ(hook_log.started, 0);
}

namespace {

struct Call {
        int calls = 0, r = 1;
        std::string msg;
};

void on_done(Machine *, int r, const char *msg, MachineStopStep, void *userdata) {
        Call *c = static_cast<Call *>(userdata);
        c->calls++;
        c->r = r;
        c->msg = msg ? msg : "";
}

} // namespace

TEST_F(ControlFixture, DeviceRequestsAreRefusedBeforeAnythingIsSent) {
        Call c;
        EXPECT_EQ(machine_set_balloon(vm, 1 * MiB, on_done, &c), -EBUSY);      // still starting
        EXPECT_EQ(machine_resize_disk(vm, 0, 1 * MiB, on_done, &c), -EBUSY);
        EXPECT_EQ(machine_pause(vm, on_done, &c), -EBUSY);
        send_ready(1);
        vm->n_disks = 2;
        vm->disks_read_only = 0x2;
        EXPECT_EQ(machine_set_balloon(vm, 1 * MiB, on_done, &c), -EOPNOTSUPP); // no balloon
        vm->balloon = true;
        EXPECT_EQ(machine_set_balloon(vm, vm->memory_bytes + 1, on_done, &c), -EINVAL);
        EXPECT_EQ(machine_resize_disk(vm, 2, 1 * MiB, on_done, &c), -ENODEV);
        EXPECT_EQ(machine_resize_disk(vm, 1, 1 * MiB, on_done, &c), -EROFS);
        EXPECT_EQ(machine_resize_disk(vm, 0, 1000, on_done, &c), -EINVAL);
        EXPECT_EQ(machine_resize_disk(vm, 0, 0, on_done, &c), -EINVAL);
        EXPECT_EQ(vm->n_requests, 0u);
        EXPECT_EQ(c.calls, 0);
}

TEST_F(ControlFixture, AnAcceptedBalloonTargetIsKeptSavedAndAnnounced) {
        Call c;
        MachineStateFile back = {};
        vm->pid = 4321;
        send_ready(1);
        vm->balloon = true;
        ASSERT_EQ(machine_set_balloon(vm, 64 * MiB, on_done, &c), 0);
        ControlHeader h = receive();
        EXPECT_EQ(h.type, CONTROL_TYPE_BALLOON);
        EXPECT_EQ(vm->balloon_target_bytes, 0u);        // not before the VMM says so
        send(CONTROL_TYPE_BALLOON | CONTROL_REPLY, h.id, 0);
        EXPECT_EQ(c.calls, 1);
        EXPECT_EQ(c.r, 0);
        EXPECT_EQ(vm->balloon_target_bytes, 64 * MiB);
        EXPECT_EQ(hook_log.balloon_changed, 1);
        ASSERT_EQ(machine_state_file_read(vm->state_path, &back), 0);
        EXPECT_EQ(back.balloon_target, 64 * MiB);
        machine_state_file_done(&back);
}

TEST_F(ControlFixture, TheVmmsRefusalIsTranslatedForTheCaller) {
        Call c;
        send_ready(1);
        vm->n_disks = 1;
        ASSERT_EQ(machine_resize_disk(vm, 0, 2 * MiB, on_done, &c), 0);
        ControlHeader h = receive();
        EXPECT_EQ(h.type, CONTROL_TYPE_DISK_RESIZE);
        send(CONTROL_TYPE_DISK_RESIZE | CONTROL_REPLY, h.id, -ENODEV);
        EXPECT_EQ(c.r, -ENODEV);
        EXPECT_EQ(c.msg, "the VM has no disk 0");
}

TEST_F(ControlFixture, PauseMovesTheStateOnlyOnTheVmmsYes) {
        Call c;
        send_ready(1);
        ASSERT_EQ(machine_pause(vm, on_done, &c), 0);
        ControlHeader h = receive();
        EXPECT_EQ(h.type, CONTROL_TYPE_PAUSE);
        EXPECT_EQ(vm->state, MACHINE_STATE_RUNNING);
        send(CONTROL_TYPE_PAUSE | CONTROL_REPLY, h.id, 0);
        EXPECT_EQ(c.r, 0);
        EXPECT_EQ(vm->state, MACHINE_STATE_PAUSED);
}

TEST_F(ControlFixture, AVmmOfAnotherVersionMakesTheVmFailedWithBothVersionsNamed) {
        send_ready(1);
        int changes = hook_log.state_changed;
        send_as_version(CONTROL_VERSION + 1);
        EXPECT_EQ(vm->state, MACHINE_STATE_FAILED);
        EXPECT_EQ(hook_log.state_changed, changes + 1);
        ASSERT_NE(vm->failed_reason, nullptr);
        EXPECT_NE(strstr(vm->failed_reason, ("v" + std::to_string(CONTROL_VERSION + 1)).c_str()), nullptr);
        EXPECT_NE(strstr(vm->failed_reason, ("v" + std::to_string(CONTROL_VERSION)).c_str()), nullptr);
        EXPECT_LT(vm->control_fd, 0);
}

TEST_F(ControlFixture, EveryRequestButAStopIsRefusedOnAFailedVmWithEproto) {
        Call c;
        send_ready(1);
        vm->balloon = true;
        vm->n_disks = 1;
        vm->live_shares = true;
        send_as_version(CONTROL_VERSION + 1);
        EXPECT_EQ(machine_check_up(vm), -EPROTO);
        EXPECT_EQ(machine_pause(vm, on_done, &c), -EPROTO);
        EXPECT_EQ(machine_resume(vm, on_done, &c), -EPROTO);
        EXPECT_EQ(machine_set_balloon(vm, 1 * MiB, on_done, &c), -EPROTO);
        EXPECT_EQ(machine_resize_disk(vm, 0, 1 * MiB, on_done, &c), -EPROTO);
        EXPECT_EQ(machine_get_balloon_stats(vm, nullptr, nullptr), -EPROTO);
        EXPECT_EQ(machine_share_live(vm, -1, "/x", "x", false), -EPROTO);
        EXPECT_EQ(vm->n_requests, 0u);
        EXPECT_EQ(c.calls, 0);
}

TEST_F(ControlFixture, AnAdoptedStartOfAnotherVersionIsFailedNotLeftStarting) {
        ASSERT_EQ(vm->state, MACHINE_STATE_STARTING);
        ASSERT_FALSE(vm->is_child);
        send_as_version(CONTROL_VERSION + 1);
        EXPECT_EQ(vm->state, MACHINE_STATE_FAILED);
        EXPECT_EQ(vm->start_timer, nullptr);
}

TEST_F(ControlFixture, StoppingAFailedVmSkipsTheVmmAndSignalsItsProcess) {
        /* Static: the stop's waiter is answered only when TearDown frees
         * the VM, after this body (LeakSanitizer saw the string it wrote). */
        static Call c;
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        vm->pid = child;
        vm->pidfd = machine_pidfd_open(child);
        ASSERT_GE(vm->pidfd, 0);
        send_ready(1);
        send_as_version(CONTROL_VERSION + 1);
        ASSERT_EQ(vm->state, MACHINE_STATE_FAILED);

        ASSERT_EQ(machine_stop(vm, false, 1000, on_done, &c), 0);

        EXPECT_EQ(vm->state, MACHINE_STATE_STOPPING);
        EXPECT_EQ(vm->stop_step, MACHINE_STOP_STEP_SIGTERM);
        int status = 0;
        ASSERT_EQ(waitpid(child, &status, 0), child);
        EXPECT_TRUE(WIFSIGNALED(status));
        EXPECT_EQ(WTERMSIG(status), SIGTERM);
}
