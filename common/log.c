/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_LEVEL_INFO;
static const char *program_name = "majordome";

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_program_name(const char *name) {
        program_name = name;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        error = abs(error);
        if (level > max_level)
                return -error;

        /* Make "%m" print the passed error, not whatever errno holds. */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (max_level >= LOG_LEVEL_DEBUG)
                fprintf(stderr, "%s: %s (%s:%d)\n", program_name, buf, file, line);
        else
                fprintf(stderr, "%s: %s\n", program_name, buf);
        errno = error;
        return -error;
}
