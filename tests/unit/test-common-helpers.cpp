/* SPDX-License-Identifier: BSD-3-Clause */
/* The shared helpers of common/: enum <-> string tables, little-endian
 * access at any offset, and log lines for the journal. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/string-table.h"
#include "common/unaligned.h"

namespace {

enum Color { COLOR_RED, COLOR_GREEN, COLOR_HOLE, COLOR_BLUE, _COLOR_MAX };

/* In enum order (C++ has no array designators); COLOR_HOLE has no name. */
const char *const color_table[_COLOR_MAX] = { "red", "green", nullptr, "blue" };

}

/* The three shapes the tree uses: int with -EINVAL, and an enum with its
 * own failure value. */
extern "C" const char *color_to_string(Color c);
extern "C" int color_from_string(const char *s);
DEFINE_STRING_TABLE(color, Color, color_table)

enum Shade { SHADE_LIGHT, SHADE_DARK, _SHADE_MAX, _SHADE_INVALID = -1 };
static const char *const shade_table[_SHADE_MAX] = { "light", "dark" };
extern "C" const char *shade_to_string(Shade s);
extern "C" Shade shade_from_string(const char *s);
DEFINE_STRING_TABLE_TO_STRING(shade, Shade, shade_table)
DEFINE_STRING_TABLE_FROM_STRING(shade, Shade, shade_table, _SHADE_INVALID)

TEST(StringTable, lookup_returns_the_index_or_einval) {
        EXPECT_EQ(string_table_lookup(color_table, _COLOR_MAX, "red"), COLOR_RED);
        EXPECT_EQ(string_table_lookup(color_table, _COLOR_MAX, "blue"), COLOR_BLUE);
        EXPECT_EQ(string_table_lookup(color_table, _COLOR_MAX, "purple"), -EINVAL);
        EXPECT_EQ(string_table_lookup(color_table, _COLOR_MAX, ""), -EINVAL);
        EXPECT_EQ(string_table_lookup(color_table, _COLOR_MAX, nullptr), -EINVAL);
        /* Only the first n entries count. */
        EXPECT_EQ(string_table_lookup(color_table, 2, "blue"), -EINVAL);
}

TEST(StringTable, get_is_null_out_of_range_and_for_holes) {
        EXPECT_STREQ(string_table_get(color_table, _COLOR_MAX, COLOR_GREEN), "green");
        EXPECT_EQ(string_table_get(color_table, _COLOR_MAX, COLOR_HOLE), nullptr);
        EXPECT_EQ(string_table_get(color_table, _COLOR_MAX, _COLOR_MAX), nullptr);
        EXPECT_EQ(string_table_get(color_table, _COLOR_MAX, -1), nullptr);
        EXPECT_EQ(string_table_get(color_table, _COLOR_MAX, (long long) UINT32_MAX + 1), nullptr);
}

TEST(StringTable, defined_pairs_round_trip_and_keep_their_failure_values) {
        for (int i = 0; i < _COLOR_MAX; i++) {
                if (i == COLOR_HOLE)
                        continue;
                EXPECT_EQ(color_from_string(color_to_string((Color) i)), i);
        }
        EXPECT_EQ(color_to_string(COLOR_HOLE), nullptr);
        EXPECT_EQ(color_to_string(_COLOR_MAX), nullptr);
        EXPECT_EQ(color_from_string("nope"), -EINVAL);

        for (int i = 0; i < _SHADE_MAX; i++)
                EXPECT_EQ(shade_from_string(shade_to_string((Shade) i)), i);
        EXPECT_EQ(shade_to_string(_SHADE_INVALID), nullptr);
        EXPECT_EQ(shade_from_string("grey"), _SHADE_INVALID);
        EXPECT_EQ(shade_from_string(nullptr), _SHADE_INVALID);
}

TEST(Unaligned, fixed_sizes_are_little_endian_at_odd_offsets) {
        uint8_t buf[16] = {};

        put_le16(buf + 1, 0x1234);
        put_le32(buf + 3, 0x89abcdefu);
        put_le64(buf + 7, UINT64_C(0x0102030405060708));
        const uint8_t want[16] = { 0, 0x34, 0x12, 0xef, 0xcd, 0xab, 0x89,
                                   0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0 };
        EXPECT_EQ(memcmp(buf, want, sizeof(buf)), 0);
        EXPECT_EQ(get_le16(buf + 1), 0x1234);
        EXPECT_EQ(get_le32(buf + 3), 0x89abcdefu);
        EXPECT_EQ(get_le64(buf + 7), UINT64_C(0x0102030405060708));
}

TEST(Unaligned, sized_access_reads_and_writes_only_its_bytes) {
        uint8_t buf[10];

        memset(buf, 0xaa, sizeof(buf));
        put_le(buf + 1, 3, 0x0c0300); /* a PCI class code: 3 bytes */
        const uint8_t want[10] = { 0xaa, 0x00, 0x03, 0x0c, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa };
        EXPECT_EQ(memcmp(buf, want, sizeof(buf)), 0);
        EXPECT_EQ(get_le(buf + 1, 3), 0x0c0300u);
        EXPECT_EQ(get_le(buf + 1, 1), 0x00u);
        EXPECT_EQ(get_le(buf + 2, 2), 0x0c03u);

        put_le(buf + 1, 8, UINT64_C(0x1122334455667788));
        EXPECT_EQ(get_le(buf + 1, 8), UINT64_C(0x1122334455667788));
        EXPECT_EQ(get_le64(buf + 1), UINT64_C(0x1122334455667788));
        EXPECT_EQ(get_le(buf + 1, 4), 0x55667788u);
        EXPECT_EQ(buf[9], 0xaa);
        EXPECT_EQ(get_le(buf, 0), 0u);
}

/* What a child process logs with stderr on a file, JOURNAL_STREAM set to
 * journal_stream ("" names the file itself; nullptr: unset). */
static std::string logged_with(const char *journal_stream) {
        char path[] = "/tmp/majordome-log-XXXXXX";
        int fd = mkstemp(path);
        EXPECT_GE(fd, 0);
        pid_t pid = fork();
        if (pid == 0) {
                struct stat st;
                if (dup2(fd, 2) < 0 || fstat(2, &st) < 0)
                        _exit(1);
                std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
                if (journal_stream)
                        setenv("JOURNAL_STREAM", journal_stream[0] ? journal_stream : mine.c_str(), 1);
                else
                        unsetenv("JOURNAL_STREAM");
                log_set_program_name("test");
                log_warning("careful %d", 1);
                log_error("broken");
                _exit(0);
        }
        int st = -1;
        waitpid(pid, &st, 0);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        std::string out(4096, '\0');
        ssize_t n = pread(fd, out.data(), out.size(), 0);
        out.resize(n > 0 ? (size_t) n : 0);
        close(fd);
        unlink(path);
        return out;
}

TEST(Log, lines_to_the_journal_stream_start_with_their_syslog_priority) {
        EXPECT_EQ(logged_with(""), "<4>test: careful 1\n<3>test: broken\n");
}

TEST(Log, lines_elsewhere_have_no_priority_even_with_journal_stream_inherited) {
        EXPECT_EQ(logged_with(nullptr), "test: careful 1\ntest: broken\n");
        EXPECT_EQ(logged_with("1:2"), "test: careful 1\ntest: broken\n") << "another stream's device and inode";
        EXPECT_EQ(logged_with("garbage"), "test: careful 1\ntest: broken\n");
        EXPECT_EQ(logged_with("1:2x"), "test: careful 1\ntest: broken\n");
}
