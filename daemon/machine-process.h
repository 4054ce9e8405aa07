/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The VMM as a process: spawning `majordome-vmm serve` behind a gate, with
 * its configuration already waiting in its control connection, and the
 * pidfd and /proc helpers that tell it apart from a process that reused
 * its pid. Nothing here knows the Machine object or the event loop. */

#include <stdint.h>
#include <sys/types.h>

#include "common/vmm-config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The child's exit code when the gate closes without opening: the daemon
 * failed to save the VM's state file, or died first. */
#define MACHINE_GATE_CLOSED_EXIT 75

typedef struct MachineProcess {
        pid_t pid;
        int pidfd;
        int control_fd;         /* the daemon's end of the control connection */
        int gate_fd;            /* the gate's write end; closing it unopened ends the child */
} MachineProcess;

#define MACHINE_PROCESS_NULL ((MachineProcess) { .pid = 0, .pidfd = -EBADF, .control_fd = -EBADF, .gate_fd = -EBADF })

/* Closes what the caller did not take (TAKE_FD) of p. */
void machine_process_done(MachineProcess *p);

/* Forks the child that becomes `vmm_path serve --socket socket_path
 * --control-fd 3`, stdout and stderr on log_fd, in its own session. config
 * goes into the control connection first, as the CONFIGURE message(s) with
 * their descriptors, with request ids from first_id on; *ret_ids_used says
 * how many it took. The child waits at the gate and execs the VMM only once
 * machine_process_open_gate() is called. On failure no process is left. */
int machine_process_spawn(const char *vmm_path, const char *socket_path, int log_fd, const VmmConfig *config,
                          uint32_t first_id, MachineProcess *ret, uint32_t *ret_ids_used);

/* Lets the child exec the VMM; -EPIPE when it died before. */
int machine_process_open_gate(MachineProcess *p);

int machine_pidfd_open(pid_t pid);
int machine_pidfd_send_signal(int pidfd, int sig);

/* The start time of a process (clock ticks since boot, /proc/PID/stat
 * field 22): with the pid, the identity of a process that survives pid
 * reuse. */
int machine_pid_get_starttime(pid_t pid, uint64_t *ret);

#ifdef __cplusplus
}
#endif
