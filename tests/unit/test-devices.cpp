/* SPDX-License-Identifier: BSD-3-Clause */
/* The legacy devices through their bus ops, without KVM. */
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "vmm/bus.h"
#include "vmm/devices/legacy.h"
#include "vmm/devices/pvpanic.h"
#include "vmm/devices/serial.h"
#include "vmm/hypervisor/hypervisor.h"
#include "vmm/vm.h"

namespace {

uint8_t rd(const BusDeviceOps &ops, void *dev, uint64_t off) {
        uint8_t v = 0;
        ops.read(dev, off, &v, 1);
        return v;
}

void wr(const BusDeviceOps &ops, void *dev, uint64_t off, uint8_t v) {
        ops.write(dev, off, &v, 1);
}

struct IrqLog {
        std::vector<bool> levels;
        static void set(void *ctx, unsigned gsi, bool level) {
                static_cast<IrqLog *>(ctx)->levels.push_back(level);
        }
        unsigned rising() const {
                unsigned n = 0;
                for (size_t i = 0; i < levels.size(); i++)
                        n += levels[i] && (i == 0 || !levels[i - 1]);
                return n;
        }
};

struct SerialFixture : ::testing::Test {
        void SetUp() override {
                ASSERT_EQ(pipe2(out, O_CLOEXEC | O_NONBLOCK), 0);
                rx_space = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                ASSERT_EQ(serial_new(out[1], rx_space, IrqLine{ IrqLog::set, &irq, 4 }, &s), 0);
        }
        void TearDown() override {
                serial_free(s);
                close(out[0]);
                close(out[1]);
                close(rx_space);
        }
        std::string output() {
                char buf[256];
                ssize_t n = read(out[0], buf, sizeof(buf));
                return n > 0 ? std::string(buf, (size_t) n) : "";
        }
        int out[2];
        int rx_space;
        IrqLog irq;
        Serial *s = nullptr;
};

time_t fixed_clock() {
        return 1795271509; /* 2026-11-21 14:31:49 UTC, a Saturday */
}

} // namespace

TEST_F(SerialFixture, TransmittedBytesReachTheOutputFd) {
        for (char c : std::string("hi\n"))
                wr(serial_bus_ops, s, 0, (uint8_t) c);
        EXPECT_EQ(output(), "hi\n");
        EXPECT_EQ(rd(serial_bus_ops, s, 5) & 0x60, 0x60) << "THRE and TEMT always set";
}

TEST_F(SerialFixture, OutputWithoutNewlineWaitsForTheDelayedFlush) {
        for (char c : std::string("abc"))
                wr(serial_bus_ops, s, 0, (uint8_t) c);
        EXPECT_EQ(output(), "") << "not a write() per byte";
        EXPECT_GE(serial_flush_due(s), 0) << "the main loop is told a flush is due later";
        usleep(30 * 1000);
        EXPECT_EQ(serial_flush_due(s), -1);
        EXPECT_EQ(output(), "abc");
}

TEST(SerialOutput, FileIsCutToItsNewestHalfAtTheCap) {
        int fd = memfd_create("console", MFD_CLOEXEC);
        ASSERT_GE(fd, 0);
        IrqLog irq;
        Serial *s = nullptr;
        ASSERT_EQ(serial_new(fd, -1, IrqLine{ IrqLog::set, &irq, 4 }, &s), 0);
        EXPECT_EQ(serial_set_output_max(s, 1024), -EINVAL);
        ASSERT_EQ(serial_set_output_max(s, SERIAL_OUTPUT_MAX_MIN), 0);
        for (int i = 0; i < 5000; i++) {
                char line[16];
                snprintf(line, sizeof(line), "line %04d\n", i);
                for (const char *p = line; *p; p++)
                        wr(serial_bus_ops, s, 0, (uint8_t) *p);
        }
        serial_free(s);

        struct stat st;
        ASSERT_EQ(fstat(fd, &st), 0);
        EXPECT_LE(st.st_size, SERIAL_OUTPUT_MAX_MIN);
        std::string text((size_t) st.st_size, '\0');
        ASSERT_EQ(pread(fd, text.data(), text.size(), 0), (ssize_t) text.size());
        EXPECT_EQ(text.substr(text.size() - 10), "line 4999\n") << "the newest output is kept";
        EXPECT_EQ(text.find("line 0000"), std::string::npos) << "the oldest is gone";
        EXPECT_EQ(text.find('\0'), std::string::npos) << "no hole after the cut";
        close(fd);
}

TEST_F(SerialFixture, LoopbackReflectsModemControlAndData) {
        wr(serial_bus_ops, s, 4, 0x10 | 0x0a); /* LOOP | RTS | OUT2, Linux's 8250 probe */
        EXPECT_EQ(rd(serial_bus_ops, s, 6) & 0xf0, 0x90);
        wr(serial_bus_ops, s, 0, 'x');
        EXPECT_EQ(output(), "") << "loopback output must not leave the UART";
        EXPECT_EQ(rd(serial_bus_ops, s, 5) & 0x01, 0x01);
        EXPECT_EQ(rd(serial_bus_ops, s, 0), 'x');
}

TEST_F(SerialFixture, ScratchAndDivisorLatchAreStorage) {
        wr(serial_bus_ops, s, 7, 0x5a);
        EXPECT_EQ(rd(serial_bus_ops, s, 7), 0x5a);
        wr(serial_bus_ops, s, 3, 0x80); /* DLAB */
        wr(serial_bus_ops, s, 0, 0x01);
        wr(serial_bus_ops, s, 1, 0x00);
        EXPECT_EQ(rd(serial_bus_ops, s, 0), 0x01);
        wr(serial_bus_ops, s, 3, 0x03);
        EXPECT_EQ(output(), "") << "divisor writes are not data";
}

TEST_F(SerialFixture, EnablingThreInterruptRaisesOneEdgeAndIirAcknowledgesIt) {
        wr(serial_bus_ops, s, 1, 0x02);
        EXPECT_EQ(irq.rising(), 1u);
        EXPECT_EQ(rd(serial_bus_ops, s, 2) & 0x0f, 0x02);
        EXPECT_EQ(rd(serial_bus_ops, s, 2) & 0x0f, 0x01) << "a THRE interrupt is cleared by reading IIR";
        wr(serial_bus_ops, s, 0, 'a');
        EXPECT_EQ(irq.rising(), 2u) << "the THR empties again after each byte";
}

TEST_F(SerialFixture, InputRaisesReceiveInterruptAndDrainingSignalsSpace) {
        wr(serial_bus_ops, s, 1, 0x01);
        const uint8_t in[] = { 'o', 'k' };
        EXPECT_EQ(serial_input(s, in, 2), 2u);
        EXPECT_EQ(irq.rising(), 1u);
        EXPECT_EQ(rd(serial_bus_ops, s, 2) & 0x0f, 0x04);
        EXPECT_EQ(rd(serial_bus_ops, s, 0), 'o');
        EXPECT_EQ(rd(serial_bus_ops, s, 0), 'k');
        uint64_t v = 0;
        EXPECT_EQ(read(rx_space, &v, sizeof(v)), (ssize_t) sizeof(v));
        EXPECT_EQ(rd(serial_bus_ops, s, 5) & 0x01, 0);
}

TEST_F(SerialFixture, FullReceiveFifoAcceptsNoMore) {
        std::vector<uint8_t> in(SERIAL_RX_FIFO + 10, 'z');
        EXPECT_EQ(serial_input(s, in.data(), in.size()), (size_t) SERIAL_RX_FIFO);
        EXPECT_EQ(serial_rx_space(s), 0u);
        EXPECT_EQ(serial_input(s, in.data(), 1), 0u);
}

TEST(Rtc, ReportsTheClockInBcdWithValidFlags) {
        Rtc rtc;
        rtc_init(&rtc);
        rtc.clock = fixed_clock;
        auto reg = [&](uint8_t r) {
                wr(rtc_bus_ops, &rtc, 0, r);
                return rd(rtc_bus_ops, &rtc, 1);
        };
        EXPECT_EQ(reg(0x00), 0x49);
        EXPECT_EQ(reg(0x02), 0x31);
        EXPECT_EQ(reg(0x04), 0x14);
        EXPECT_EQ(reg(0x06), 0x07);
        EXPECT_EQ(reg(0x07), 0x21);
        EXPECT_EQ(reg(0x08), 0x11);
        EXPECT_EQ(reg(0x09), 0x26);
        EXPECT_EQ(reg(0x32), 0x20);
        EXPECT_EQ(reg(0x0a) & 0x80, 0) << "never update-in-progress";
        EXPECT_EQ(reg(0x0b) & 0x06, 0x02) << "24-hour, BCD";
        EXPECT_EQ(reg(0x0d), 0x80);
}

TEST(Rtc, NvramIsStorageButTheClockIsNotSettable) {
        Rtc rtc;
        rtc_init(&rtc);
        rtc.clock = fixed_clock;
        wr(rtc_bus_ops, &rtc, 0, 0x40);
        wr(rtc_bus_ops, &rtc, 1, 0xab);
        wr(rtc_bus_ops, &rtc, 0, 0x00);
        wr(rtc_bus_ops, &rtc, 1, 0x00);
        wr(rtc_bus_ops, &rtc, 0, 0x40);
        EXPECT_EQ(rd(rtc_bus_ops, &rtc, 1), 0xab);
        wr(rtc_bus_ops, &rtc, 0, 0x80); /* NMI mask bit + seconds */
        EXPECT_EQ(rd(rtc_bus_ops, &rtc, 1), 0x49);
}

TEST(I8042, AnswersSelfTestAndConfigByte) {
        I8042 k;
        i8042_init(&k, nullptr, nullptr);
        wr(i8042_bus_ops, &k, 4, 0xaa);
        EXPECT_EQ(rd(i8042_bus_ops, &k, 4) & 0x01, 0x01);
        EXPECT_EQ(rd(i8042_bus_ops, &k, 0), 0x55);
        EXPECT_EQ(rd(i8042_bus_ops, &k, 4) & 0x01, 0x00);
        wr(i8042_bus_ops, &k, 4, 0x60);
        wr(i8042_bus_ops, &k, 0, 0x47);
        wr(i8042_bus_ops, &k, 4, 0x20);
        EXPECT_EQ(rd(i8042_bus_ops, &k, 0), 0x47);
}

TEST(I8042, ResetPulseAndOutputPortResetCallBack) {
        int resets = 0;
        I8042 k;
        i8042_init(&k, [](void *u, int) { ++*static_cast<int *>(u); }, &resets);
        wr(i8042_bus_ops, &k, 4, 0xfe);
        EXPECT_EQ(resets, 1);
        wr(i8042_bus_ops, &k, 4, 0xd1);
        wr(i8042_bus_ops, &k, 0, 0x00);
        EXPECT_EQ(resets, 2);
        wr(i8042_bus_ops, &k, 4, 0xd1);
        wr(i8042_bus_ops, &k, 0, 0x01);
        EXPECT_EQ(resets, 2) << "reset line held high is no reset";
        wr(i8042_bus_ops, &k, 2, 0xfe);
        EXPECT_EQ(resets, 2) << "the ports between data and command are not the i8042's";
}

TEST(Bus, RejectsOverlapsAndDispatchesByOffset) {
        Bus b = {};
        Rtc rtc;
        rtc_init(&rtc);
        EXPECT_EQ(bus_register(&b, 0x70, 2, &rtc_bus_ops, &rtc), 0);
        EXPECT_EQ(bus_register(&b, 0x71, 1, &rtc_bus_ops, &rtc), -EEXIST);
        EXPECT_EQ(bus_register(&b, 0x6f, 2, &rtc_bus_ops, &rtc), -EEXIST);
        EXPECT_EQ(bus_register(&b, 0, 0, &rtc_bus_ops, &rtc), -EINVAL);
        EXPECT_EQ(bus_register(&b, UINT64_MAX, 2, &rtc_bus_ops, &rtc), -EINVAL);
        uint8_t v = 0x0d;
        EXPECT_TRUE(bus_write(&b, 0x70, &v, 1));
        EXPECT_TRUE(bus_read(&b, 0x71, &v, 1));
        EXPECT_EQ(v, 0x80);
        uint8_t w[2] = { 0, 0 };
        EXPECT_FALSE(bus_read(&b, 0x71, w, 2)) << "an access running past the device is not its";
        EXPECT_EQ(w[0], 0xff);
        EXPECT_FALSE(bus_write(&b, 0x80, &v, 1));
}

TEST(Strings, HvExitKindAndVmStateRoundTrip) {
        for (int k = 0; k < _HV_EXIT_KIND_MAX; k++)
                EXPECT_EQ(hv_exit_kind_from_string(hv_exit_kind_to_string((HvExitKind) k)), k);
        EXPECT_EQ(hv_exit_kind_from_string("nonsense"), _HV_EXIT_KIND_MAX);
        for (int s = 0; s < _VM_STATE_MAX; s++)
                EXPECT_EQ(vm_state_from_string(vm_state_to_string((VmState) s)), s);
        EXPECT_EQ(vm_state_to_string(_VM_STATE_MAX), nullptr);
}

/* ---- pvpanic-pci ---- */

namespace {

struct PanicLog {
        std::vector<uint32_t> reports;
        static void report(void *userdata, uint32_t events) {
                static_cast<PanicLog *>(userdata)->reports.push_back(events);
        }
};

} // namespace

TEST(PvPanic, HasQemusPciIdentityAndOneMemoryBar) {
        PvPanic p;
        ASSERT_EQ(pvpanic_init(&p, nullptr, nullptr), 0);

        EXPECT_EQ(p.pci.config[0] | p.pci.config[1] << 8, 0x1b36);
        EXPECT_EQ(p.pci.config[2] | p.pci.config[3] << 8, 0x0011);
        EXPECT_EQ(p.pci.config[0x09] | p.pci.config[0x0a] << 8 | p.pci.config[0x0b] << 16, 0x088000);
        EXPECT_EQ(p.pci.bars[0].size, (uint64_t) PVPANIC_BAR_SIZE);
        EXPECT_EQ(p.pci.bars[0].ops, &pvpanic_bar_ops);
}

TEST(PvPanic, ReadsTheSupportedEventsAtOffsetZeroOnly) {
        PvPanic p;
        ASSERT_EQ(pvpanic_init(&p, nullptr, nullptr), 0);
        uint8_t wide[4] = { 0xff, 0xff, 0xff, 0xff };

        EXPECT_EQ(rd(pvpanic_bar_ops, &p, 0), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
        EXPECT_EQ(rd(pvpanic_bar_ops, &p, 1), 0);
        EXPECT_EQ(rd(pvpanic_bar_ops, &p, PVPANIC_BAR_SIZE - 1), 0);
        pvpanic_bar_ops.read(&p, 0, wide, 4);
        EXPECT_EQ(wide[0] | wide[1] | wide[2] | wide[3], 0) << "only a 1-byte read means anything";
}

TEST(PvPanic, IgnoresBadWidthsOffsetsAndUnknownBits) {
        PanicLog log;
        PvPanic p;
        ASSERT_EQ(pvpanic_init(&p, PanicLog::report, &log), 0);
        const uint8_t wide[4] = { PVPANIC_PANICKED, 0, 0, 0 };

        pvpanic_bar_ops.write(&p, 0, wide, 4);
        pvpanic_bar_ops.write(&p, 0, wide, 2);
        wr(pvpanic_bar_ops, &p, 1, PVPANIC_PANICKED);
        wr(pvpanic_bar_ops, &p, 0, 0);
        wr(pvpanic_bar_ops, &p, 0, 0xfc); /* no supported bit */
        EXPECT_TRUE(log.reports.empty());

        wr(pvpanic_bar_ops, &p, 0, 0xf0 | PVPANIC_PANICKED);
        ASSERT_EQ(log.reports.size(), 1u);
        EXPECT_EQ(log.reports[0], PVPANIC_PANICKED) << "unknown bits are dropped";
}

TEST(PvPanic, AGuestWritingPanicRepeatedlyIsReportedOnce) {
        PanicLog log;
        PvPanic p;
        ASSERT_EQ(pvpanic_init(&p, PanicLog::report, &log), 0);

        for (int i = 0; i < 10000; i++)
                wr(pvpanic_bar_ops, &p, 0, PVPANIC_PANICKED);
        wr(pvpanic_bar_ops, &p, 0, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
        wr(pvpanic_bar_ops, &p, 0, PVPANIC_CRASH_LOADED);

        ASSERT_EQ(log.reports.size(), 2u);
        EXPECT_EQ(log.reports[0], PVPANIC_PANICKED);
        EXPECT_EQ(log.reports[1], PVPANIC_CRASH_LOADED) << "the new bit alone";
}
