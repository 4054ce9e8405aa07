/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MANAGER_BUS_NAME "org.majordome.VmManager1"
#define MANAGER_BUS_PATH "/org/majordome/VmManager1"
#define MANAGER_BUS_INTERFACE "org.majordome.VmManager1"

/* Limits on what one StartVm call may carry. */
#define MANAGER_CONFIG_KEYS_MAX 32
#define MANAGER_CONFIG_FDS_MAX 16 /* kernel, initrd, serial log and 8 disks fit */
/* StartVm's whole config, checked before authorization. */
#define MANAGER_CONFIG_BYTES_MAX (96 * 1024) /* 15 paths of PATH_MAX and a cmdline fit */
#define MANAGER_CONFIG_ITEMS_MAX 1024

int manager_bus_register(Manager *m);

/* One share's options, as StartVm's shares[i] (with "path") or
 * ShareDirectory's options (without) give them: "tag" s, "read_only" b,
 * "cache" s. Reads the a{sv} at msg's position; refusals are error_name
 * with a message starting with key. ret->tag "" means none given; strings
 * point into msg. */
typedef struct ShareOptions {
        const char *path;
        const char *tag;
        bool read_only;
        uint32_t cache;         /* VmmFsCache */
} ShareOptions;

int share_options_parse(sd_bus_message *msg, const char *key, const char *error_name, bool want_path,
                        ShareOptions *ret, sd_bus_error *error);

/* A share's host path as a caller may give it: absolute, no "." or ".."
 * component (the path shown in Shares is the one opened). */
int share_path_check(const char *key, const char *path, const char *error_name, sd_bus_error *error);

#ifdef __cplusplus
}
#endif
