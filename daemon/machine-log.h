/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* What the daemon reads back from the VMM's own log (<name>.log, its
 * stderr), and the escaping that makes the VMM's words (and a device's
 * error reason) safe to put on D-Bus and in a terminal. */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The VMM's own log is read back at most MACHINE_VMM_LOG_TAIL bytes from its
 * end, and the error taken from it is at most MACHINE_VMM_ERROR_MAX bytes once
 * escaped. */
#define MACHINE_VMM_LOG_TAIL 4096
#define MACHINE_VMM_ERROR_MAX 512

/* text[0..n) made safe for D-Bus and terminals: valid UTF-8 with no
 * control characters (those and bytes that are not UTF-8 become \xNN, a
 * backslash \\), at most max bytes (then cut, ending in "..."). NULL on
 * OOM. */
char *machine_escape_text(const char *text, size_t n, size_t max);

/* The last "majordome-vmm: ..." line of the VMM's log, without that
 * prefix and escaped (machine_escape_text, at most MACHINE_VMM_ERROR_MAX): why the
 * VMM failed. Only the file's last MACHINE_VMM_LOG_TAIL bytes are read, and a
 * line cut by that is skipped. NULL when there is none (or no file). */
char *machine_log_last_vmm_error(const char *vmm_log_path);

#ifdef __cplusplus
}
#endif
