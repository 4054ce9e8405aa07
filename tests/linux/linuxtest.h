/* SPDX-License-Identifier: BSD-3-Clause */
/* What the static guest programs of the real-Linux test share: the line
 * each check prints, "LINUXTEST <LINUXTEST_PREFIX><check> PASS|FAIL
 * detail" (test-linux-devices.cpp reads them), with the failures counted,
 * and ioctl() retried on EINTR. Define LINUXTEST_PREFIX ("gpu-") first. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>

#ifndef LINUXTEST_PREFIX
#error "define LINUXTEST_PREFIX before including linuxtest.h"
#endif

static int failures;

static void report(const char *check, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(const char *check, int ok, const char *fmt, ...) {
        char detail[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        printf("LINUXTEST " LINUXTEST_PREFIX "%s %s %s\n", check, ok ? "PASS" : "FAIL", detail);
        fflush(stdout);
        failures += !ok;
}

/* 0, or -errno (errno keeps it too). */
static int xioctl(int fd, unsigned long req, void *arg) {
        int r;

        do
                r = ioctl(fd, req, arg);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : 0;
}
