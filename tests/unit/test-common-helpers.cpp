/* SPDX-License-Identifier: BSD-3-Clause */
/* The shared helpers of common/: enum <-> string tables. */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "string-table.h"

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
