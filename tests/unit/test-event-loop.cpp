/* SPDX-License-Identifier: BSD-3-Clause */
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/event-loop.h"

namespace {

struct Counter {
        int calls = 0;
        uint32_t revents = 0;
        int result = 0;
        EventSource *to_free = nullptr;
};

int count(EventSource *s, int fd, uint32_t revents, void *userdata) {
        auto *c = static_cast<Counter *>(userdata);
        c->calls++;
        c->revents = revents;
        if (c->to_free)
                c->to_free = event_source_free(c->to_free);
        return c->result;
}

class EventLoopTest : public ::testing::Test {
protected:
        EventLoop *loop = nullptr;
        int a = -1, b = -1;

        void SetUp() override {
                ASSERT_EQ(event_loop_new(&loop), 0);
                a = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
                b = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
                ASSERT_GE(a, 0);
                ASSERT_GE(b, 0);
        }

        void TearDown() override {
                event_loop_free(loop);
                close(a);
                close(b);
        }
};

TEST_F(EventLoopTest, ReadableDescriptorIsDispatched) {
        Counter c;
        ASSERT_EQ(event_add_io(loop, nullptr, a, EPOLLIN, count, &c), 0);

        ASSERT_EQ(event_loop_run(loop, 1000), 0);

        EXPECT_EQ(c.calls, 1);
        EXPECT_TRUE(c.revents & EPOLLIN);
}

TEST_F(EventLoopTest, DisabledSourceIsNotDispatchedUntilEnabled) {
        Counter c;
        EventSource *s = nullptr;
        ASSERT_EQ(event_add_io(loop, &s, a, EPOLLIN, count, &c), 0);

        ASSERT_EQ(event_source_set_enabled(s, false), 0);
        ASSERT_EQ(event_loop_run(loop, 0), 0);
        EXPECT_EQ(c.calls, 0);

        ASSERT_EQ(event_source_set_enabled(s, true), 0);
        ASSERT_EQ(event_loop_run(loop, 1000), 0);
        EXPECT_EQ(c.calls, 1);
}

TEST_F(EventLoopTest, DisabledHungUpPipeIsNotReported) {
        int p[2];
        Counter c;
        EventSource *s = nullptr;
        ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
        close(p[1]);
        ASSERT_EQ(event_add_io(loop, &s, p[0], EPOLLIN, count, &c), 0);

        ASSERT_EQ(event_source_set_enabled(s, false), 0);
        ASSERT_EQ(event_loop_run(loop, 0), 0);

        EXPECT_EQ(c.calls, 0) << "EPOLLHUP must not reach a disabled source";
        close(p[0]);
}

TEST_F(EventLoopTest, ErrorReturnDisablesTheSource) {
        Counter c;
        c.result = -EIO;
        ASSERT_EQ(event_add_io(loop, nullptr, a, EPOLLIN, count, &c), 0);

        ASSERT_EQ(event_loop_run(loop, 1000), 0);
        ASSERT_EQ(event_loop_run(loop, 0), 0);

        EXPECT_EQ(c.calls, 1);
}

TEST_F(EventLoopTest, CallbackMayFreeAnotherReadySource) {
        Counter first, second;
        EventSource *sa = nullptr, *sb = nullptr;
        ASSERT_EQ(event_add_io(loop, &sa, a, EPOLLIN, count, &first), 0);
        ASSERT_EQ(event_add_io(loop, &sb, b, EPOLLIN, count, &second), 0);
        /* Both are ready: whichever runs first frees the other. */
        first.to_free = sb;
        second.to_free = sa;

        ASSERT_EQ(event_loop_run(loop, 1000), 0);

        EXPECT_EQ(first.calls + second.calls, 1);
}

TEST_F(EventLoopTest, CallbackMayFreeItsOwnSource) {
        Counter c;
        EventSource *s = nullptr;
        ASSERT_EQ(event_add_io(loop, &s, a, EPOLLIN, count, &c), 0);
        c.to_free = s;

        ASSERT_EQ(event_loop_run(loop, 1000), 0);
        ASSERT_EQ(event_loop_run(loop, 0), 0);

        EXPECT_EQ(c.calls, 1);
}

TEST_F(EventLoopTest, LoopReturnsTheExitCode) {
        ASSERT_EQ(event_add_io(loop, nullptr, a, EPOLLIN,
                               [](EventSource *, int, uint32_t, void *l) {
                                       event_loop_exit(static_cast<EventLoop *>(l), 42);
                                       return 0;
                               }, loop), 0);

        EXPECT_EQ(event_loop_loop(loop), 42);
}

TEST_F(EventLoopTest, DescriptorEpollRefusesIsEperm) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        Counter c;

        EXPECT_EQ(event_add_io(loop, nullptr, fd, EPOLLIN, count, &c), -EPERM);
        close(fd);
}

} // namespace
