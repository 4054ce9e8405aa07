/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* StartVm's config a{sv} read into the typed MachineConfig (machine-config.h): each
 * key checked, each file opened with the caller's rights (auth.h), refusals
 * as named errors. The D-Bus side of machine-config.c; ShareDirectory
 * (machine-dbus.c) reads a share's options the same way. */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "daemon/auth.h"
#include "daemon/manager.h"
#include "daemon/machine-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on what one StartVm call may carry. */
#define MANAGER_CONFIG_KEYS_MAX 32
#define MANAGER_CONFIG_FDS_MAX 16 /* kernel, initrd, serial log and 8 disks fit */
/* StartVm's whole config, checked before authorization. */
#define MANAGER_CONFIG_BYTES_MAX (96 * 1024) /* 15 paths of PATH_MAX and a cmdline fit */
#define MANAGER_CONFIG_ITEMS_MAX 1024

/* StartVm's whole message bounded (MANAGER_CONFIG_BYTES_MAX, _ITEMS_MAX,
 * _FDS_MAX) before polkit is asked; InvalidConfig past them. */
int machine_config_bus_check_size(sd_bus_message *msg, sd_bus_error *error);

/* Reads the a{sv} at msg's position into c and opens its files as caller.
 * *ret_block: a disk is a block device (the caller needs
 * AUTH_ACTION_MANAGE_DEVICES). c is machine_config_init()'d by the caller and
 * machine_config_done()'d by it on failure too. */
int machine_config_bus_parse(Manager *m, sd_bus_message *msg, const AuthCaller *caller, MachineConfig *c,
                             bool *ret_block, sd_bus_error *error);

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

/* Opens a shared directory with the caller's rights; errors are
 * error_name, starting with key. */
int share_open(const AuthCaller *caller, const char *key, const char *path, const char *error_name, int *ret,
               sd_bus_error *error);

#ifdef __cplusplus
}
#endif
