/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* One VM as majordomed sees it (the daemon's, not the VMM's vmm/vm.h): a
 * majordome-vmm process, its pidfd, its control connection and a small
 * state machine, from start or adoption to its end. vm.c is that life
 * cycle; its parts are apart: the typed StartVm config (vm-config.h), the
 * process (vm-process.h), the control connection (vm-control.h), the state
 * file (vm-state-file.h), the VMM's log (vm-log.h). The D-Bus wire layer is
 * vm-dbus.c; nothing here knows about method calls beyond opaque pending
 * replies handed back through the callbacks, and changes reach the wire
 * layer through ManagerHooks (manager.h). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "control.h"
#include "vm-config.h"
#include "macro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Manager Manager;
typedef struct Vm Vm;

typedef enum VmState {
        VM_STATE_STARTING,
        VM_STATE_RUNNING,
        VM_STATE_PAUSED,
        VM_STATE_STOPPING,
        VM_STATE_STOPPED,
        _VM_STATE_MAX,
} VmState;

const char *vm_state_to_string(VmState s);
int vm_state_from_string(const char *s);

/* Why a VM ended; the VmStopped signal's reason string. */
typedef enum VmStopReason {
        VM_STOP_POWEROFF,       /* VMM exited 0 without being asked */
        VM_STOP_STOPPED,        /* a stop request ended it */
        VM_STOP_CRASHED,        /* died by a signal nobody sent */
        VM_STOP_KILLED,         /* Kill, or StopVm mode "kill" */
        VM_STOP_FAILED,         /* non-zero exit code */
        VM_STOP_START_FAILED,   /* never reached running */
        VM_STOP_LOST,           /* adopted VMM ended; its exit status is not ours to read */
        VM_STOP_SANDBOX,        /* the VMM broke its seccomp policy (died by SIGSYS) */
        VM_STOP_GUEST_PANIC,    /* the guest kernel panicked (pvpanic), on_panic "stop" */
        _VM_STOP_REASON_MAX,
} VmStopReason;

const char *vm_stop_reason_to_string(VmStopReason r);
int vm_stop_reason_from_string(const char *s);

/* Which step of the stop escalation ended the VM. */
typedef enum VmStopStep {
        VM_STOP_STEP_NONE,
        VM_STOP_STEP_GRACEFUL,
        VM_STOP_STEP_SIGTERM,
        VM_STOP_STEP_SIGKILL,
        _VM_STOP_STEP_MAX,
} VmStopStep;

const char *vm_stop_step_to_string(VmStopStep s);
int vm_stop_step_from_string(const char *s);

#define VM_NAME_MAX 64
#define VM_CMDLINE_MAX 4096
#define VM_CPUS_MAX 40
#define VM_MEMORY_MIN (1 * MiB)
#define VM_MEMORY_MAX (1024 * GiB)
#define VM_STOP_TIMEOUT_MS_DEFAULT 5000
#define VM_STOP_TIMEOUT_MS_MAX (10 * 60 * 1000)
#define VM_START_TIMEOUT_MS 30000
#define VM_CONTROL_TIMEOUT_MS 2000
/* Requests in flight to one VMM (stop excepted: it always gets through). */
#define VM_CONTROL_QUEUE_MAX 32
/* GetBalloonStats callers sharing one request; past it: Busy. */
#define VM_BALLOON_STATS_WAITERS_MAX 256
/* How long the VMM may wait for the guest's fresh balloon statistics; it
 * answers within that, well inside VM_CONTROL_TIMEOUT_MS. */
#define VM_BALLOON_STATS_WAIT_MS 1000
/* The guest's console log is capped (the VMM cuts it to its newest half). */
#define VM_CONSOLE_LOG_MAX_DEFAULT (4 * MiB)
#define VM_CONSOLE_LOG_MAX_MIN (16 * 1024)
/* majordome-vmm's exit status after a guest panic with --on-panic stop
 * (docs/majordome-vmm.md). */
#define VM_VMM_EXIT_GUEST_PANIC 74

/* Names are file and path components: [A-Za-z0-9_.-], 1..VM_NAME_MAX bytes,
 * not starting with '.' or '-'. */
bool vm_name_is_valid(const char *name);

/* Completion of a request: r < 0 on failure (with a message in error_msg,
 * may be NULL). For stops, step tells which step ended the VM. */
typedef void (*VmDoneFn)(Vm *vm, int r, const char *error_msg, VmStopStep step, void *userdata);

typedef struct VmWaiter VmWaiter;
struct VmWaiter {
        VmDoneFn done;
        void *userdata;
        VmWaiter *next;
};

/* Completion of GetBalloonStats: stats only when r >= 0. */
typedef void (*VmBalloonStatsFn)(Vm *vm, int r, const char *error_msg, const ControlBalloonStats *stats,
                                 void *userdata);

typedef struct VmControlRequest VmControlRequest;
typedef struct VmStatsWaiter VmStatsWaiter;

struct Vm {
        Manager *manager;
        char *name;
        char *path;             /* D-Bus object path */
        VmState state;

        pid_t pid;
        uint64_t pid_starttime; /* /proc/PID/stat field 22: the pid's identity */
        int pidfd;
        bool is_child;          /* spawned by this daemon (else adopted) */
        /* Adopted without an answer from the VMM: state from the state file,
         * `info` retried by adopt_timer until it answers. */
        bool adopt_unconfirmed;
        sd_event_source *adopt_timer;
        sd_event_source *pidfd_source;

        int control_fd;
        sd_event_source *control_source;
        sd_event_source *control_timer;
        VmControlRequest *requests;     /* all sent, replies matched by id */
        unsigned n_requests;
        uint32_t next_request_id;
        VmStatsWaiter *stats_waiters;   /* GetBalloonStats callers sharing the request in flight */
        unsigned n_stats_waiters;
        /* Events (docs/control-protocol.md): the connection is subscribed;
         * an event whose sequence number is not past the last one is a
         * duplicate or out of order and ignored, as is all after `exiting`. */
        uint32_t last_event_seq;
        bool got_ready;
        bool got_exiting;
        int32_t vmm_exit_code;  /* from `exiting`, valid with got_exiting */
        /* The VMM speaks another control protocol version (0: ours): it
         * is not driven (requests refused, a stop goes by signals). */
        uint16_t vmm_version;

        bool guest_panicked;
        uint32_t panic_events;
        uint32_t panic_action;  /* what the VMM did about it (ControlPanicAction) */
        uint32_t on_panic;      /* ControlPanicAction, as started */

        uint32_t cid;
        uint32_t vcpus;
        uint64_t memory_bytes;
        uint64_t balloon_target_bytes;
        uint64_t balloon_actual_bytes;
        uint64_t start_time_usec;
        char *log_path;         /* <name>.console.log: the guest's console (LogPath) */
        char *vmm_log_path;     /* <name>.log: the VMM's own messages (its stderr) */
        char *socket_path;
        char *state_path;
        char *vsock_dir;        /* <runtime>/<name>.vsock.d, 0711: the jailed VMM (nobody) searches it */
        char *vsock_path;       /* <vsock_dir>/vsock, with vsock only */

        /* devices, as started (kept in the state file for re-adoption) */
        bool balloon;
        uint32_t n_disks;
        uint32_t disks_read_only; /* bit i: disk i is read-only */
        /* the shared directories, as started (fd unused: the VMM has them) */
        VmShare shares[VM_SHARES_MAX];
        unsigned n_shares;
        /* the GPU, as started (the compositor connection went to the VMM) */
        VmGpu gpu;
        /* the PCI devices the VMM built, as its `ready` event said (Devices) */
        ControlDevice devices[CONTROL_READY_DEVICES_MAX];
        uint32_t n_devices;

        /* starting */
        VmWaiter *start_waiters;
        sd_event_source *start_timer;

        /* stopping */
        bool stop_requested;
        bool kill_requested;
        VmStopStep stop_step;
        uint32_t stop_timeout_ms;
        sd_event_source *stop_timer;
        VmWaiter *stop_waiters;

        VmStopReason stop_reason;
        int stop_status;
        char *stop_message;     /* the VMM's last error line (escaped), or NULL */

        Vm *next;
};

int vm_new(Manager *m, const char *name, Vm **ret);
Vm *vm_free(Vm *vm);

/* Spawns the VMM; the VM is STARTING until the VMM reports running, then
 * RUNNING and the waiter is called with 0 (or with an error on failure). */
int vm_start(Vm *vm, VmConfig *config, VmDoneFn done, void *userdata);

/* Re-adopts a VMM listed in a state file; 0 on success. -ESRCH: the VMM is
 * gone (no such pid, or the pid was reused) and -EBADMSG: the file is
 * unusable; the caller removes the entry then, and only then. A VMM that
 * is alive but does not answer is adopted from the state file. A stop or
 * kill under way when the last daemon ended is continued. */
int vm_adopt(Manager *m, const char *state_path, Vm **ret);

/* graceful: VMM stop, then SIGTERM, then SIGKILL, each bounded by
 * timeout_ms; kill: SIGKILL at once. The waiter is called once the VMM is
 * gone. Joining a stop already under way is allowed. */
int vm_stop(Vm *vm, bool kill, uint32_t timeout_ms, VmDoneFn done, void *userdata);

int vm_pause(Vm *vm, VmDoneFn done, void *userdata);
int vm_resume(Vm *vm, VmDoneFn done, void *userdata);

/* The balloon and disk requests, through the same control queue (never
 * blocking). Refused before anything is sent: -EBUSY while starting or
 * stopping, -EOPNOTSUPP without a balloon, -ENODEV for a disk index the VM
 * does not have, -EROFS for a read-only disk, -EINVAL for a size out of
 * range. The VMM's own refusals come back the same way through done. A
 * successful SetBalloon updates balloon_target_bytes; balloon statistics
 * update both balloon sizes (each emits PropertiesChanged). */
int vm_set_balloon(Vm *vm, uint64_t bytes, VmDoneFn done, void *userdata);
int vm_get_balloon_stats(Vm *vm, VmBalloonStatsFn done, void *userdata);
int vm_resize_disk(Vm *vm, uint32_t index, uint64_t bytes, VmDoneFn done, void *userdata);

/* Writes the state file atomically (temp + rename). */
int vm_save(Vm *vm);

#ifdef __cplusplus
}
#endif
