/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Live shares: directories shared with a VM that is already running. The
 * VM gets one virtio-fs device at start (tag MACHINE_LIVE_SHARES_TAG)
 * whose root is a small read-only tmpfs the daemon owns; each share is a
 * mount the daemon puts on a directory in it, so it appears to the guest
 * as TAG's subdirectory of the same name. Under <dir> (one per VM):
 *   rw/  the tmpfs, a shared mount only the daemon writes to;
 *   ro/  its peer, read-only: what the VMM's virtiofsd serves.
 * A share mounted on rw/TAG propagates to ro/TAG. */

#define MACHINE_LIVE_SHARES_TAG "majordome"
#define MACHINE_LIVE_SHARES_MAX 16
#define MACHINE_LIVE_SHARES_PARENT "live-shares" /* under the runtime directory */

/* Makes <dir> (the parent, <runtime>/live-shares, must exist) and its two
 * mounts; returns ro/ opened O_DIRECTORY in *ret_root. */
int live_shares_setup(const char *dir, int *ret_root);

/* Whether <dir>'s mounts are there in this daemon's mount namespace (a
 * daemon restarted in a new one does not see an earlier one's). */
bool live_shares_present(const char *dir);

/* Mounts a clone of dir_fd's directory (nodev, nosuid, read-only if asked)
 * on rw/<tag>. */
int live_shares_add(const char *dir, int dir_fd, const char *tag, bool read_only);

/* Unmounts rw/<tag> (lazily: a guest may have files open) and removes it. */
int live_shares_remove(const char *dir, const char *tag);

/* Unmounts everything under <dir> and removes it; nothing if absent. */
void live_shares_teardown(const char *dir);

/* <runtime>/live-shares, private, so that the mounts under it propagate
 * nowhere else. Once per daemon. */
int live_shares_prepare_parent(const char *parent);

#ifdef __cplusplus
}
#endif
