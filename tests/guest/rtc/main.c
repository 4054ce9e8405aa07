/* SPDX-License-Identifier: BSD-3-Clause */
/* Reads the CMOS clock and compares it with expect_epoch=SECONDS from the
 * cmdline (the host's time when the test started). */

#include "rt.h"

static uint8_t cmos(uint8_t reg)
{
        outb(PORT_RTC_INDEX, reg);
        return inb(PORT_RTC_DATA);
}

static bool bcd_ok(uint8_t v, unsigned max)
{
        return (v & 0x0f) <= 9 && (v >> 4) <= 9 && (unsigned) ((v >> 4) * 10 + (v & 0x0f)) <= max;
}

static unsigned from_bcd(uint8_t v)
{
        return (v >> 4) * 10 + (v & 0x0f);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

int main(void)
{
        uint8_t sec, min, hour, day, mon, year, cent, b, d;
        uint64_t expect;
        const char *v;

        /* Register A bit 7: wait while an update is in progress (bounded). */
        for (unsigned i = 0; i < 1000 && (cmos(0x0a) & 0x80); i++)
                pause();
        sec = cmos(0x00);
        min = cmos(0x02);
        hour = cmos(0x04);
        day = cmos(0x07);
        mon = cmos(0x08);
        year = cmos(0x09);
        cent = cmos(0x32);
        b = cmos(0x0b);
        d = cmos(0x0d);

        bool bcd = bcd_ok(sec, 59) && bcd_ok(min, 59) && bcd_ok(hour, 23) && bcd_ok(day, 31) &&
                   bcd_ok(mon, 12) && bcd_ok(year, 99) && bcd_ok(cent, 99) && day && mon;
        test_report("rtc-format", bcd && (b & 0x02) && !(b & 0x04) && (d & 0x80),
                    "%02x%02x-%02x-%02x %02x:%02x:%02x regB 0x%x regD 0x%x", cent, year, mon, day, hour, min,
                    sec, b, d);

        v = cmdline_get(boot_info.cmdline, "expect_epoch");
        if (!v || !parse_u64(v, &expect)) {
                test_report("rtc-time", false, "no expect_epoch=SECONDS on the cmdline");
                return 0;
        }
        int64_t t = days_from_civil(from_bcd(cent) * 100 + from_bcd(year), from_bcd(mon), from_bcd(day)) * 86400 +
                    from_bcd(hour) * 3600 + from_bcd(min) * 60 + from_bcd(sec);
        int64_t delta = t - (int64_t) expect;
        test_report("rtc-time", delta >= -5 && delta <= 120, "guest %ld, host %lu, delta %ld s", (long) t, expect,
                    (long) delta);
        return 0;
}
