/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* This project's own vhost-user back-end processes, which the VMM starts
 * for a device (vmm/devices/device-process.c): majordome-gpu for --gpu,
 * majordome-video for --video-decoder/--video-encoder. */

#include <sys/types.h>

#include "vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The binary of a device process: $ENV_NAME, else the installed one
 * (libexecdir/majordome/NAME). */
const char *device_process_path(const char *name, const char *env_name);

/* Starts the device process serving d (a VMM_DEVICE_GPU,
 * VMM_DEVICE_VIDEO_DECODER or VMM_DEVICE_VIDEO_ENCODER) and returns the
 * vhost-user socket connected to it and its pid. -EINVAL for another kind. */
int device_process_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid);

#ifdef __cplusplus
}
#endif
