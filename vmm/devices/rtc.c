/* SPDX-License-Identifier: BSD-3-Clause */
/* MC146818 CMOS RTC: the time and date in BCD, 24-hour mode, always valid;
 * the rest of the 128 bytes of CMOS is plain storage. */
#include <string.h>

#include "vmm/devices/legacy.h"

enum {
        RTC_SECONDS = 0x00,
        RTC_MINUTES = 0x02,
        RTC_HOURS = 0x04,
        RTC_DAY_OF_WEEK = 0x06,
        RTC_DAY_OF_MONTH = 0x07,
        RTC_MONTH = 0x08,
        RTC_YEAR = 0x09,
        RTC_REG_A = 0x0a,
        RTC_REG_B = 0x0b,
        RTC_REG_C = 0x0c,
        RTC_REG_D = 0x0d,
        RTC_CENTURY = 0x32,
};

#define REG_B_24H 0x02
#define REG_D_VRT 0x80 /* valid RAM and time */

static uint8_t bcd(int v) {
        return (uint8_t) (((v / 10) << 4) | (v % 10));
}

void rtc_init(Rtc *rtc) {
        memset(rtc, 0, sizeof(*rtc));
        pthread_mutex_init(&rtc->lock, NULL);
        rtc->clock = NULL;
        rtc->nvram[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
        rtc->nvram[RTC_REG_B] = REG_B_24H;
        rtc->nvram[RTC_REG_D] = REG_D_VRT;
}

static uint8_t rtc_reg(Rtc *rtc, uint8_t reg) {
        time_t now = rtc->clock ? rtc->clock() : time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        switch (reg) {
        case RTC_SECONDS:
                return bcd(tm.tm_sec);
        case RTC_MINUTES:
                return bcd(tm.tm_min);
        case RTC_HOURS:
                return bcd(tm.tm_hour);
        case RTC_DAY_OF_WEEK:
                return bcd(tm.tm_wday + 1);
        case RTC_DAY_OF_MONTH:
                return bcd(tm.tm_mday);
        case RTC_MONTH:
                return bcd(tm.tm_mon + 1);
        case RTC_YEAR:
                return bcd(tm.tm_year % 100);
        case RTC_CENTURY:
                return bcd((tm.tm_year + 1900) / 100);
        case RTC_REG_A:
                /* Update-in-progress never set: the value is read atomically. */
                return rtc->nvram[RTC_REG_A] & 0x7f;
        case RTC_REG_C:
                return 0;
        default:
                return rtc->nvram[reg];
        }
}

static void rtc_read(void *dev, uint64_t offset, uint8_t *data, unsigned size) {
        Rtc *rtc = dev;

        memset(data, 0, size);
        pthread_mutex_lock(&rtc->lock);
        if (offset == 1)
                data[0] = rtc_reg(rtc, rtc->index);
        else
                data[0] = 0xff; /* the index port is write-only */
        pthread_mutex_unlock(&rtc->lock);
}

static void rtc_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size) {
        Rtc *rtc = dev;

        pthread_mutex_lock(&rtc->lock);
        if (offset == 0)
                rtc->index = data[0] & 0x7f; /* bit 7 masks NMI */
        else if (rtc->index != RTC_REG_C && rtc->index != RTC_REG_D &&
                 rtc->index > RTC_YEAR)
                /* The clock itself follows the host and is not settable. */
                rtc->nvram[rtc->index] = data[0];
        pthread_mutex_unlock(&rtc->lock);
}

const BusDeviceOps rtc_bus_ops = {
        .name = "rtc",
        .read = rtc_read,
        .write = rtc_write,
};
