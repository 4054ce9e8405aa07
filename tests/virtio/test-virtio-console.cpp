/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-console through the harness (virtio 1.2 §5.3). */
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "tests/virtio/harness.h"

extern "C" const VirtioDeviceOps virtio_console_ops;

using harness::BASE_FEATURES;
using harness::PciDriver;
using harness::read_n;
using harness::TempDir;
using harness::unix_connect;
using harness::VirtqDriver;

namespace {

class Console : public ::testing::Test {
protected:
        void start(const std::string &arg) {
                d.reset(new PciDriver(&virtio_console_ops, arg.c_str()));
                ASSERT_EQ(d->error(), 0);
                rxq.reset(new VirtqDriver(d->mem(), 0x10000, 16));
                txq.reset(new VirtqDriver(d->mem(), 0x20000, 16));
                ASSERT_TRUE(d->negotiate(BASE_FEATURES));
                d->setup_queue(0, *rxq);
                d->setup_queue(1, *txq);
                d->driver_ok();
        }
        void guest_write(const std::string &s) {
                uint64_t addr = 0x100000 + 0x1000 * (uint64_t) (tx_sent % 16);
                ASSERT_EQ(::guest_write(d->mem(), addr, s.data(), s.size()), 0);
                txq->add_chain({ { addr, (uint32_t) s.size(), false } });
                tx_sent++;
                d->kick(1);
        }
        void post_rx(unsigned n) {
                for (unsigned i = 0; i < n; i++) {
                        uint64_t addr = 0x200000 + 0x1000 * (uint64_t) (rx_posted % 16);
                        rxq->add_chain({ { addr, 64, true } });
                        rx_posted++;
                }
                d->kick(0);
        }
        /* The guest's next received chunk (buffers are posted in order). */
        std::string guest_read() {
                if (!d->wait_used(*rxq, (uint16_t) (rx_seen + 1)))
                        return "";
                VirtqUsedElem u = rxq->used(rx_seen % rxq->size());
                std::string s(u.len, '\0');
                EXPECT_EQ(::guest_read(d->mem(), 0x200000 + 0x1000 * (uint64_t) (rx_seen % 16), &s[0], u.len), 0);
                rx_seen++;
                return s;
        }
        void TearDown() override {
                if (client >= 0)
                        close(client);
        }

        TempDir dir{"console-test"};
        std::unique_ptr<PciDriver> d;
        std::unique_ptr<VirtqDriver> rxq, txq;
        unsigned tx_sent = 0, rx_posted = 0;
        uint16_t rx_seen = 0;
        int client = -1;
};

TEST(ConsoleCreate, console_refuses_a_bad_argument) {
        for (const char *arg : { (const char *) nullptr, "bogus", "file:", "socket:", "fd:x", "stdout,extra" }) {
                PciDriver d(&virtio_console_ops, arg);
                EXPECT_EQ(d.error(), -EINVAL) << (arg ? arg : "(none)");
        }
        std::string long_path = "socket:/tmp/" + std::string(120, 'a');
        PciDriver d(&virtio_console_ops, long_path.c_str());
        EXPECT_EQ(d.error(), -EINVAL);
}

TEST(ConsoleCreate, console_file_in_a_missing_directory_fails) {
        PciDriver d(&virtio_console_ops, "file:/nonexistent-dir/x");
        EXPECT_EQ(d.error(), -ENOENT);
}

TEST_F(Console, config_reads_zero_without_features) {
        start("file:" + dir.path + "/out");
        EXPECT_EQ(d->bar_read(VIRTIO_PCI_DEVICE_OFF, 4), 0u);
        EXPECT_EQ(d->bar_read(VIRTIO_PCI_DEVICE_OFF + 4, 4), 0u);
}

TEST_F(Console, guest_output_lands_in_the_file) {
        start("file:" + dir.path + "/out");
        guest_write("hello ");
        guest_write("file\n");
        ASSERT_TRUE(d->wait_used(*txq, 2));
        std::ifstream f(dir.path + "/out");
        std::stringstream ss;
        ss << f.rdbuf();
        EXPECT_EQ(ss.str(), "hello file\n");
}

TEST_F(Console, socket_client_gets_the_guest_line_and_its_reply_reaches_the_guest) {
        std::string path = dir.path + "/con.sock";
        start("socket:" + path);
        client = unix_connect(path);
        post_rx(2);
        guest_write("ping from guest\n");
        EXPECT_EQ(read_n(client, 16), "ping from guest\n");
        ASSERT_EQ(write(client, "pong\n", 5), 5);
        EXPECT_EQ(guest_read(), "pong\n");
}

TEST_F(Console, output_before_a_client_connects_is_kept_for_it) {
        std::string path = dir.path + "/con.sock";
        start("socket:" + path);
        guest_write("early line\n");
        ASSERT_TRUE(d->wait_used(*txq, 1));
        client = unix_connect(path);
        EXPECT_EQ(read_n(client, 11), "early line\n");
}

TEST_F(Console, a_second_client_is_refused_while_the_first_is_connected) {
        std::string path = dir.path + "/con.sock";
        start("socket:" + path);
        client = unix_connect(path);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        int second = unix_connect(path);
        char c;
        struct pollfd p = { second, POLLIN, 0 };
        ASSERT_EQ(poll(&p, 1, 2000), 1);
        EXPECT_EQ(read(second, &c, 1), 0);
        close(second);
        guest_write("to the first\n");
        EXPECT_EQ(read_n(client, 13), "to the first\n");
}

TEST_F(Console, a_new_client_takes_over_after_the_first_hangs_up) {
        std::string path = dir.path + "/con.sock";
        start("socket:" + path);
        client = unix_connect(path);
        post_rx(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        close(client);
        client = -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        client = unix_connect(path);
        guest_write("again\n");
        EXPECT_EQ(read_n(client, 6), "again\n");
}

TEST_F(Console, input_waits_for_receive_buffers) {
        std::string path = dir.path + "/con.sock";
        start("socket:" + path);
        client = unix_connect(path);
        ASSERT_EQ(write(client, "typed early", 11), 11);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_EQ(rxq->used_idx(), 0);
        post_rx(1);
        EXPECT_EQ(guest_read(), "typed early");
}

TEST_F(Console, output_in_many_buffers_arrives_whole_and_in_order) {
        std::string path = dir.path + "/con.sock";
        start("socket:" + path);
        client = unix_connect(path);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::string want;
        for (int i = 0; i < 15; i++) {
                std::string chunk(4096, (char) ('a' + i));
                want += chunk;
                guest_write(chunk);
        }
        EXPECT_EQ(read_n(client, want.size()), want);
        EXPECT_TRUE(d->wait_used(*txq, 15));
}

TEST_F(Console, console_keeps_its_fds_listed) {
        start("socket:" + dir.path + "/con.sock");
        int fds[16];
        EXPECT_GE(virtio_device_fds(d->device(), fds, 16), 5u);
}

} // namespace
