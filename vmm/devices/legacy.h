/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The small PC devices: CMOS RTC, i8042 (for its reset line) and the
 * debug-exit port test guests use to return a verdict. */

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "vmm/bus.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Rtc {
        pthread_mutex_t lock;
        uint8_t index;
        uint8_t nvram[128];
        time_t (*clock)(void); /* time source, replaceable by tests */
} Rtc;

void rtc_init(Rtc *rtc);
extern const BusDeviceOps rtc_bus_ops;

/* Called from a vCPU thread when the guest asks for a reset / an exit. */
typedef void (*PlatformEventFn)(void *userdata, int value);

#define I8042_BUF 8

typedef struct I8042 {
        pthread_mutex_t lock;
        uint8_t ctr;            /* controller configuration byte */
        uint8_t pending_cmd;    /* command awaiting a data byte */
        uint8_t out[I8042_BUF];
        unsigned out_head, out_len;
        PlatformEventFn reset;
        void *userdata;
} I8042;

void i8042_init(I8042 *k, PlatformEventFn reset, void *userdata);
extern const BusDeviceOps i8042_bus_ops;

typedef struct DebugExit {
        PlatformEventFn exit;
        void *userdata;
} DebugExit;

extern const BusDeviceOps debug_exit_bus_ops;

#ifdef __cplusplus
}
#endif
