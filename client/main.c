/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>
#include <stdlib.h>

#include "common/macro.h"
#include "client/vmc-args.h"
#include "client/vmc-commands.h"

int main(int argc, char **argv) {
        _cleanup_free_ char *error = NULL;
        GDBusConnection *bus = NULL;
        VmcArgs args;
        int r;

        r = vmc_args_parse(argc, argv, &args, &error);
        if (r < 0) {
                fprintf(stderr, "vmc: %s\n", error ? error : "invalid arguments");
                return VMC_EXIT_USAGE;
        }
        if (args.version) {
                printf("vmc %s\n", MAJORDOME_VERSION);
                return VMC_EXIT_OK;
        }
        if (args.help) {
                fputs(vmc_help_text(args.command), stdout);
                vmc_args_done(&args);
                return VMC_EXIT_OK;
        }

        r = vmc_connect(&args, &bus);
        if (r == VMC_EXIT_OK) {
                r = vmc_run(bus, &args);
                /* Pending outgoing messages (none expected) and the socket. */
                g_dbus_connection_flush_sync(bus, NULL, NULL);
                g_object_unref(bus);
        }
        vmc_args_done(&args);
        return r;
}
