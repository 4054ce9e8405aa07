/* SPDX-License-Identifier: BSD-3-Clause */
#include <gtest/gtest.h>

#include "util.h"

TEST(ParseSize, AcceptsBinaryUnits) {
        uint64_t v;

        ASSERT_EQ(parse_size("512M", &v), 0);
        EXPECT_EQ(v, 512ULL << 20);
        ASSERT_EQ(parse_size("2G", &v), 0);
        EXPECT_EQ(v, 2ULL << 30);
        ASSERT_EQ(parse_size("64KiB", &v), 0);
        EXPECT_EQ(v, 64ULL << 10);
        ASSERT_EQ(parse_size("4096", &v), 0);
        EXPECT_EQ(v, 4096ULL);
        ASSERT_EQ(parse_size("1g", &v), 0);
        EXPECT_EQ(v, 1ULL << 30);
}

TEST(ParseSize, RejectsGarbageAndOverflow) {
        uint64_t v = 7;

        EXPECT_EQ(parse_size("", &v), -EINVAL);
        EXPECT_EQ(parse_size("-1M", &v), -EINVAL);
        EXPECT_EQ(parse_size("12X", &v), -EINVAL);
        EXPECT_EQ(parse_size("12Mx", &v), -EINVAL);
        EXPECT_EQ(parse_size("99999999999T", &v), -ERANGE);
        EXPECT_EQ(parse_size("99999999999999999999999", &v), -ERANGE);
        EXPECT_EQ(v, 7u) << "output untouched on failure";
}

TEST(ParseUint, EnforcesBounds) {
        uint64_t v;

        ASSERT_EQ(parse_uint("3", 1, 4, &v), 0);
        EXPECT_EQ(v, 3u);
        EXPECT_EQ(parse_uint("0", 1, 4, &v), -ERANGE);
        EXPECT_EQ(parse_uint("5", 1, 4, &v), -ERANGE);
        EXPECT_EQ(parse_uint("2a", 1, 4, &v), -EINVAL);
        EXPECT_EQ(parse_uint("", 1, 4, &v), -EINVAL);
}

TEST(FormatSize, PicksLargestExactUnit) {
        char buf[32];

        EXPECT_STREQ(format_size(buf, sizeof(buf), 256ULL << 20), "256 MiB");
        EXPECT_STREQ(format_size(buf, sizeof(buf), 1536), "1536 B");
        EXPECT_STREQ(format_size(buf, sizeof(buf), 3ULL << 30), "3 GiB");
}
