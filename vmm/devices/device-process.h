/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* This project's own vhost-user back-end processes, which the VMM starts
 * for a device (vmm/devices/device-process.c): majordome-gpu for --gpu,
 * majordome-video for --video-decoder/--video-encoder. */

#include <sys/types.h>

#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The binary of a device process: $ENV_NAME, else the installed one
 * (libexecdir/majordome/NAME). */
const char *device_process_path(const char *name, const char *env_name);

#define DEVICE_PROCESS_ARGS_MAX 24

/* What to run for d: its binary and options after "--fd=3"; the extra
 * descriptor (-1: none), which the process gets as 4. The strings live in
 * the struct itself. */
typedef struct DeviceProcessCommand {
        const char *name, *env_name;
        const char *args[DEVICE_PROCESS_ARGS_MAX];
        unsigned n;
        int extra_fd;
        char buf[4][32];
        char context_types[VMM_GPU_CONTEXT_TYPES_STRING_MAX];
} DeviceProcessCommand;

/* d's command; -EINVAL for a kind without a device process. */
int device_process_command(const VmmDevice *d, DeviceProcessCommand *ret);

/* Starts the device process serving d (a VMM_DEVICE_GPU,
 * VMM_DEVICE_VIDEO_DECODER or VMM_DEVICE_VIDEO_ENCODER) and returns the
 * vhost-user socket connected to it and its pid. -EINVAL for another kind. */
int device_process_spawn(const VmmDevice *d, int *ret_sock, pid_t *ret_pid);

#ifdef __cplusplus
}
#endif
