/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* virtiofsd, the back-end of a --shared-dir (vmm/devices/virtiofsd.c). */

#include <sys/types.h>

#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which virtiofsd, and so which command line it takes. */
typedef enum VirtiofsdCli {
        VIRTIOFSD_CLI_QEMU,     /* QEMU 7.2's (-o source=...) */
        VIRTIOFSD_CLI_RUST,     /* the stand-alone one (--shared-dir=...) */
} VirtiofsdCli;

/* The binary: $MAJORDOME_VIRTIOFSD (its command line "rust" when
 * $MAJORDOME_VIRTIOFSD_CLI says so, else QEMU's), else the stand-alone
 * /usr/libexec/virtiofsd where it is installed, else Debian 12's
 * /usr/lib/qemu/virtiofsd. */
VirtiofsdCli virtiofsd_find(const char **ret_path);

/* A share's directory becomes a clone of its mount, nodev and nosuid, and
 * read-only for a read-only share (the descriptor is replaced); before the
 * jail's namespaces. No-op for other devices. */
int virtiofsd_prepare(VmmDevice *d);

/* Starts virtiofsd serving d (a VMM_DEVICE_SHARED_DIR) and returns the
 * vhost-user socket connected to it and its pid. */
int virtiofsd_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid);

#ifdef __cplusplus
}
#endif
