/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The client verbs of majordome-vmm: `majordome-vmm info|pause|resume|stop
 * [OPTIONS] SOCKET`, one request over the control socket each. */

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes of control_client_main(). */
enum {
        CONTROL_CLIENT_EXIT_SUCCESS = 0,
        CONTROL_CLIENT_EXIT_FAILED = 1,  /* the VMM answered with an error */
        CONTROL_CLIENT_EXIT_USAGE = 2,   /* bad command line */
        CONTROL_CLIENT_EXIT_CONNECT = 3, /* cannot connect, timeout, no valid reply */
};

/* True when verb is one control_client_main() handles. */
bool control_client_is_verb(const char *verb);

/* argv[0] is the verb ("info", "pause", "resume", "stop"), the rest its
 * options and SOCKET; main() calls it as control_client_main(argc - 1,
 * argv + 1). Prints results on stdout and one error line on stderr; returns
 * one of the exit codes above. */
int control_client_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
