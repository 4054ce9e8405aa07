/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

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

/* stderr is the journal's stream (systemd's JOURNAL_STREAM names its
 * device and inode; a child whose stderr went elsewhere inherits the
 * variable, hence the check): each line then starts with its syslog
 * priority, "<3>", which the journal takes off and keeps. */
bool log_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        int n = 0;

        if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != '\0')
                return false;
        return fstat(fileno(stderr), &st) == 0 && (unsigned long long) st.st_dev == dev &&
               (unsigned long long) st.st_ino == ino;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        static int journal = -1;
        char buf[1024], prefix[8] = "";
        va_list ap;

        error = abs(error);
        if (level > max_level)
                return -error;

        /* Make "%m" print the passed error, not whatever errno holds. */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (journal < 0)
                journal = log_stderr_is_journal();
        if (journal)
                snprintf(prefix, sizeof(prefix), "<%d>", level);
        /* One write a line: threads' lines do not mix. */
        if (max_level >= LOG_LEVEL_DEBUG)
                fprintf(stderr, "%s%s: %s (%s:%d)\n", prefix, program_name, buf, file, line);
        else
                fprintf(stderr, "%s%s: %s\n", prefix, program_name, buf);
        errno = error;
        return -error;
}
