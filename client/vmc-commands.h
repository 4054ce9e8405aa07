/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* vmc's commands over D-Bus. Each prints its result on stdout and its
 * error as one "vmc: CONTEXT: TEXT" line on stderr, and returns the exit
 * code (vmc-args.h). */

#include <gio/gio.h>

#include "client/vmc-args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens the bus that args->bus names. VMC_EXIT_UNREACHABLE on failure. */
int vmc_connect(const VmcArgs *args, GDBusConnection **ret);

int vmc_run(GDBusConnection *bus, const VmcArgs *args);

/* Keys of the StartVm config dictionary (dbus/org.majordome.VmManager1.xml
 * and docs/dbus-api.md). */
#define VMC_KEY_KERNEL "kernel"
#define VMC_KEY_INITRD "initrd"
#define VMC_KEY_CMDLINE "cmdline"
#define VMC_KEY_MEMORY "memory"
#define VMC_KEY_CPUS "cpus"
#define VMC_KEY_MEMORY_MAX "memory_max" /* t */
#define VMC_KEY_CPU_WEIGHT "cpu_weight" /* t */
#define VMC_KEY_SERIAL_LOG "serial_log"
#define VMC_KEY_DEBUG_EXIT "debug_exit"
#define VMC_KEY_DISKS "disks"     /* aa{sv}: {"fd": h, "read_only": b} each */
#define VMC_KEY_VSOCK "vsock"     /* b */
#define VMC_KEY_BALLOON "balloon" /* b */
#define VMC_KEY_VIDEO_DECODER "video_decoder" /* b */
#define VMC_KEY_VIDEO_ENCODER "video_encoder" /* b */
#define VMC_KEY_ON_PANIC "on_panic" /* s */
#define VMC_KEY_LIVE_SHARES "live_shares" /* b */
#define VMC_KEY_SHARES "shares"   /* aa{sv}: {"path": s, "tag": s, "read_only": b, "cache": s} each */
#define VMC_KEY_GPU "gpu"         /* a{sv}: {"backend": s, "width": u, "height": u, "displays": u, "context_types": s} */
#define VMC_KEY_WAYLAND_SOCKET "wayland_socket" /* s: the compositor socket, opened by the daemon as us */

/* Builds StartVm's (s a{sv}) arguments for args, opening every file into
 * *ret_fds. On failure returns NULL and a message in *ret_error. Exposed
 * for tests. */
GVariant *vmc_start_parameters(const VmcArgs *args, GUnixFDList **ret_fds, char **ret_error);

#ifdef __cplusplus
}
#endif
