/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* virtiofsd, the back-end of a --shared-dir (vmm/devices/virtiofsd.c). */

#include <sys/types.h>

#include "vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The binary: $MAJORDOME_VIRTIOFSD, else Debian's /usr/lib/qemu/virtiofsd. */
const char *virtiofsd_path(void);

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
