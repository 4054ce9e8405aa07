/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* A VM's state file, <runtime>/<name>.state: what a restarted daemon needs
 * to find its VMM again and carry on (docs/architecture.md). One KEY=value
 * a line; written atomically (temp file, fsync, rename). Reading it back is
 * all this file does: machine_adopt() decides what the record is worth. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/machine-config.h"
#include "daemon/machine-live-shares.h"
#include "daemon/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct MachineStateFile {
        char *name;
        char *socket;           /* the VMM's control socket */
        char *log;              /* the guest's console log (written, not needed back) */
        int state;              /* MachineState; < 0: missing or unknown */
        pid_t pid;
        uid_t owner_uid;        /* missing: 0, so only root or manage-any-vm */
        uint64_t starttime;     /* the pid's identity (/proc/PID/stat field 22) */
        uint64_t memory;
        uint64_t start_usec;
        uint32_t cid;
        uint32_t vcpus;
        bool stop_requested;
        bool kill_requested;
        bool balloon;
        bool guest_panicked;
        uint32_t on_panic;      /* ControlPanicAction: stop or pause */
        uint64_t balloon_target;
        uint32_t disks;
        uint32_t disks_ro;      /* bit i: disk i is read-only */
        MachineStopStep stop_step;
        uint32_t stop_timeout_ms;
        MachineShare shares[MACHINE_SHARES_MAX]; /* fd unused (-EBADF) */
        unsigned n_shares;
        bool live_shares;
        MachineShare live[MACHINE_LIVE_SHARES_MAX]; /* fd unused; cache unused */
        unsigned n_live;
        MachineGpu gpu;              /* enabled false: none */
} MachineStateFile;

/* Writes s to path atomically; s is only read (its strings may be borrowed). */
int machine_state_file_write(const char *path, const MachineStateFile *s);

/* Reads path back. A share or GPU line that does not parse is left out,
 * unknown keys are skipped; -EBADMSG without NAME, SOCKET or a PID > 0.
 * ret is freed with machine_state_file_done(). */
int machine_state_file_read(const char *path, MachineStateFile *ret);
void machine_state_file_done(MachineStateFile *s);

#ifdef __cplusplus
}
#endif
