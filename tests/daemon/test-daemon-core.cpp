// SPDX-License-Identifier: BSD-3-Clause
// majordomed's core without a bus: enums, names, the registry, CIDs, state files.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "manager.h"
#include "vm.h"
#include "vmm-config.h"

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
        Vm *add(const char *name) {
                Vm *vm = nullptr;
                EXPECT_EQ(vm_new(m, name, &vm), 0);
                EXPECT_EQ(manager_add_vm(m, vm), 0);
                return vm;
        }
};

} // namespace

TEST(DaemonEnums, StateRoundTrips) {
        for (int i = 0; i < _VM_STATE_MAX; i++)
                EXPECT_EQ(vm_state_from_string(vm_state_to_string((VmState) i)), i);
        EXPECT_EQ(vm_state_from_string("flying"), -EINVAL);
        EXPECT_EQ(vm_state_to_string(_VM_STATE_MAX), nullptr);
}

TEST(DaemonEnums, StopReasonRoundTripsAndUsesTheDocumentedWords) {
        for (int i = 0; i < _VM_STOP_REASON_MAX; i++)
                EXPECT_EQ(vm_stop_reason_from_string(vm_stop_reason_to_string((VmStopReason) i)), i);
        EXPECT_STREQ(vm_stop_reason_to_string(VM_STOP_CRASHED), "crashed");
        EXPECT_STREQ(vm_stop_reason_to_string(VM_STOP_START_FAILED), "start-failed");
        EXPECT_STREQ(vm_stop_reason_to_string(VM_STOP_GUEST_PANIC), "guest-panic");
}

TEST(DaemonEnums, StopStepRoundTrips) {
        for (int i = 0; i < _VM_STOP_STEP_MAX; i++)
                EXPECT_EQ(vm_stop_step_from_string(vm_stop_step_to_string((VmStopStep) i)), i);
        EXPECT_EQ(vm_stop_step_from_string(nullptr), -EINVAL);
}

TEST(DaemonNames, AcceptsPlainNames) {
        EXPECT_TRUE(vm_name_is_valid("demo"));
        EXPECT_TRUE(vm_name_is_valid("a.b-c_D9"));
        EXPECT_TRUE(vm_name_is_valid(std::string(VM_NAME_MAX, 'x').c_str()));
}

TEST(DaemonNames, RejectsEmptyLongHiddenOptionLikeAndPathNames) {
        EXPECT_FALSE(vm_name_is_valid(nullptr));
        EXPECT_FALSE(vm_name_is_valid(""));
        EXPECT_FALSE(vm_name_is_valid(std::string(VM_NAME_MAX + 1, 'x').c_str()));
        EXPECT_FALSE(vm_name_is_valid(".x"));
        EXPECT_FALSE(vm_name_is_valid("-x"));
        EXPECT_FALSE(vm_name_is_valid("a/b"));
        EXPECT_FALSE(vm_name_is_valid(".."));
        EXPECT_FALSE(vm_name_is_valid("a b"));
        EXPECT_FALSE(vm_name_is_valid("caf\xc3\xa9"));
}

TEST(DaemonShares, TagRulesAreTheVmms) {
        EXPECT_TRUE(vmm_fs_tag_is_valid("data"));
        EXPECT_TRUE(vmm_fs_tag_is_valid(std::string(VM_SHARE_TAG_MAX, 'x').c_str()));
        EXPECT_FALSE(vmm_fs_tag_is_valid(""));
        EXPECT_FALSE(vmm_fs_tag_is_valid(std::string(VM_SHARE_TAG_MAX + 1, 'x').c_str()));
        for (const char *bad : { "a b", "a:b", "a,b", "a/b", "a\\b", "caf\xc3\xa9", "a\tb" })
                EXPECT_FALSE(vmm_fs_tag_is_valid(bad)) << bad;
}

TEST(DaemonShares, DefaultTagIsTheSanitizedNameMadeUnique) {
        VmShare taken[3] = {};
        char tag[VM_SHARE_TAG_MAX + 1];

        vm_share_tag_from_path("/srv/my dir:1/", taken, 0, tag);
        EXPECT_STREQ(tag, "my_dir_1");
        vm_share_tag_from_path("/", taken, 0, tag);
        EXPECT_STREQ(tag, "share");
        strcpy(taken[0].tag, "data");
        strcpy(taken[1].tag, "data-2");
        vm_share_tag_from_path("/a/data", taken, 2, tag);
        EXPECT_STREQ(tag, "data-3");
        std::string longname(50, 'y');
        strcpy(taken[2].tag, std::string(VM_SHARE_TAG_MAX, 'y').c_str());
        vm_share_tag_from_path(("/" + longname).c_str(), taken, 3, tag);
        EXPECT_EQ(strlen(tag), (size_t) VM_SHARE_TAG_MAX);
        EXPECT_STREQ(tag + VM_SHARE_TAG_MAX - 2, "-2");
        EXPECT_TRUE(vmm_fs_tag_is_valid(tag));
}

TEST_F(ManagerFixture, VmPathIsEscaped) {
        Vm *vm = add("my-vm.1");
        EXPECT_STREQ(vm->path, "/org/majordome/VmManager1/vm/my_2dvm_2e1");
        EXPECT_EQ(manager_get_vm_by_path(m, vm->path), vm);
        EXPECT_EQ(manager_get_vm(m, "my-vm.1"), vm);
}

TEST_F(ManagerFixture, DuplicateNameIsEexist) {
        Vm *dup = nullptr;
        add("twice");
        ASSERT_EQ(vm_new(m, "twice", &dup), 0);
        EXPECT_EQ(manager_add_vm(m, dup), -EEXIST);
        vm_free(dup);
        EXPECT_EQ(m->n_vms, 1u);
}

TEST_F(ManagerFixture, MaxVmsIsEnforced) {
        Vm *extra = nullptr;
        m->max_vms = 2;
        add("a");
        add("b");
        ASSERT_EQ(vm_new(m, "c", &extra), 0);
        EXPECT_EQ(manager_add_vm(m, extra), -EUSERS);
        vm_free(extra);
}

TEST_F(ManagerFixture, CidsAreUniqueAndAtLeastThree) {
        uint32_t a, b;
        Vm *va = add("a");
        ASSERT_EQ(manager_allocate_cid(m, &a), 0);
        va->cid = a;
        ASSERT_EQ(manager_allocate_cid(m, &b), 0);
        EXPECT_GE(a, 3u);
        EXPECT_NE(a, b);
}

TEST_F(ManagerFixture, CidAllocationSkipsUsedAndWraps) {
        uint32_t cid;
        Vm *v = add("a");
        v->cid = MANAGER_CID_MIN;
        m->next_cid = MANAGER_CID_MAX + 1; /* wraps to the minimum, which is taken */
        ASSERT_EQ(manager_allocate_cid(m, &cid), 0);
        EXPECT_EQ(cid, MANAGER_CID_MIN + 1);
}

TEST_F(ManagerFixture, StateFileOfADeadProcessIsNotAdopted) {
        Vm *vm = nullptr, *adopted = nullptr;
        ASSERT_EQ(vm_new(m, "gone", &vm), 0);
        vm->pid = 999999; /* beyond the default pid_max */
        vm->pid_starttime = 1;
        ASSERT_EQ(vm_save(vm), 0);
        EXPECT_EQ(access(vm->state_path, R_OK), 0);
        EXPECT_LT(vm_adopt(m, vm->state_path, &adopted), 0);
        EXPECT_EQ(adopted, nullptr);
        vm_free(vm);
}

TEST_F(ManagerFixture, AdoptingAnEmptyRuntimeDirectoryFindsNothing) {
        EXPECT_EQ(manager_adopt_vms(m), 0);
        EXPECT_EQ(m->n_vms, 0u);
}
