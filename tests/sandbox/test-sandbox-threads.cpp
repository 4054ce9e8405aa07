/* SPDX-License-Identifier: BSD-3-Clause */
/* How many seccomp filters each kind of VMM thread carries: a device worker
 * started from a filtered vCPU thread (as on DRIVER_OK) runs its role's
 * filter alone, not stacked on the vCPU's or a spawner's. No KVM, no
 * privileges: filters need only PR_SET_NO_NEW_PRIVS, and the threads that
 * get them end with their test. */
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <set>
#include <string>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "seccomp/sandbox.h"
#include "vmm/virtio/device.h"

namespace {

/* Seccomp_filters of thread tid of this process (-1 if unknown). */
int filters_of(pid_t tid) {
        std::string path = "/proc/self/task/" + std::to_string(tid) + "/status";
        char line[256];
        int n = -1;
        FILE *f = fopen(path.c_str(), "re");

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "Seccomp_filters:", 16) == 0)
                        n = atoi(line + 16);
        if (f)
                fclose(f);
        return n;
}

/* A started thread reports its id and role, then waits to be counted:
 * only syscalls every role allows (gettid, nanosleep). */
struct Probe {
        std::atomic<pid_t> tid{ 0 };
        std::atomic<bool> release{ false };
        const char *role = nullptr;
};

void *probe_main(void *arg) {
        auto *p = (Probe *) arg;
        struct timespec ms = { 0, 1000000 };

        p->role = sandbox_current_role();
        p->tid = gettid();
        while (!p->release)
                nanosleep(&ms, nullptr);
        return nullptr;
}

struct VcpuCall {
        SandboxRole role;
        Probe *probe;
        Probe vcpu;     /* the vCPU thread itself, counted the same way */
        pthread_t thread;
        int r;
};

/* Plays a vCPU thread that activates a device: enters the vcpu role, asks
 * for a thread in another role, then waits to be counted. */
void *vcpu_main(void *arg) {
        auto *c = (VcpuCall *) arg;

        c->r = sandbox_enter_role(SANDBOX_ROLE_VCPU);
        if (c->r >= 0)
                c->r = sandbox_thread_create(&c->thread, c->role, probe_main, c->probe);
        probe_main(&c->vcpu);
        return nullptr;
}

class SandboxThreads : public ::testing::Test {
protected:
        void SetUp() override {
                PolicyError e;
                ASSERT_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
                ASSERT_EQ(virtio_device_table_register_roles(), 0);
                ASSERT_EQ(sandbox_setup(SANDBOX_MODE_ENFORCE, nullptr, 0, &e), 0) << e.message;
                ASSERT_EQ(sandbox_spawner_start(), 0);
        }
        void TearDown() override {
                sandbox_spawner_stop();
                sandbox_done();
        }

        /* Starts a role's thread from a vCPU thread; its filter count. */
        int filters_of_thread_from_vcpu(SandboxRole role, Probe *probe, int *ret_vcpu_filters = nullptr) {
                VcpuCall c = { role, probe, {}, {}, 0 };
                pthread_t vcpu;
                int n = -1;

                EXPECT_EQ(pthread_create(&vcpu, nullptr, vcpu_main, &c), 0);
                while (c.vcpu.tid == 0)
                        usleep(1000);
                if (ret_vcpu_filters)
                        *ret_vcpu_filters = filters_of(c.vcpu.tid);
                if (c.r >= 0) {
                        while (probe->tid == 0)
                                usleep(1000);
                        n = filters_of(probe->tid);
                        probe->release = true;
                        pthread_join(c.thread, nullptr);
                }
                c.vcpu.release = true;
                pthread_join(vcpu, nullptr);
                return c.r < 0 ? c.r : n;
        }
};

TEST_F(SandboxThreads, vcpu_thread_runs_one_filter) {
        Probe probe;
        int vcpu_filters = -1;
        filters_of_thread_from_vcpu(sandbox_role_from_string("virtio-block"), &probe, &vcpu_filters);
        EXPECT_EQ(vcpu_filters, 1);
}

TEST_F(SandboxThreads, device_worker_started_from_a_vcpu_thread_runs_only_its_role_filter) {
        /* Every device role: each distinct one the table's devices name
         * (--vhost-user and --shared-dir share theirs) and the generic one. */
        std::set<std::string> roles;
        for (unsigned i = 0; i < virtio_device_table_size; i++)
                roles.insert(virtio_device_table[i]->seccomp_role ?: VIRTIO_DEVICE_ROLE);
        roles.insert(VIRTIO_DEVICE_ROLE);
        ASSERT_EQ(sandbox_n_roles(), _SANDBOX_ROLE_FIXED_MAX + roles.size());
        for (unsigned i = _SANDBOX_ROLE_FIXED_MAX; i < sandbox_n_roles(); i++) {
                SandboxRole role = (SandboxRole) i;
                Probe probe;
                EXPECT_EQ(filters_of_thread_from_vcpu(role, &probe), 1) << sandbox_role_to_string(role);
                EXPECT_STREQ(probe.role, sandbox_role_to_string(role));
        }
}

TEST_F(SandboxThreads, filtered_caller_cannot_start_a_main_or_vcpu_thread) {
        Probe probe;
        EXPECT_EQ(filters_of_thread_from_vcpu(SANDBOX_ROLE_MAIN, &probe), -EPERM);
        EXPECT_EQ(filters_of_thread_from_vcpu(SANDBOX_ROLE_VCPU, &probe), -EPERM);
}

} // namespace
