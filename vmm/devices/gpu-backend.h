/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* majordome-gpu, the back-end of a --gpu (vmm/devices/gpu-backend.c). */

#include <sys/types.h>

#include "vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The binary: $MAJORDOME_GPU, else the installed one (libexecdir). */
const char *gpu_backend_path(void);

/* Starts majordome-gpu serving d (a VMM_DEVICE_GPU) and returns the
 * vhost-user socket connected to it and its pid. */
int gpu_backend_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid);

#ifdef __cplusplus
}
#endif
