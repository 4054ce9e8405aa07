/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* One VM as majordomed sees it: a Machine, named as systemd's machined
 * names its records, because the VMM's own VM is Vm (vmm/vm.h) and the two
 * are different things. A majordome-vmm process, its pidfd, its control
 * connection and a small state machine, from start or adoption to its end.
 * machine.c is that life cycle; its parts are apart: the typed StartVm
 * config (machine-config.h), the process (machine-process.h), the control
 * connection (machine-control.h), the state file (machine-state-file.h),
 * the VMM's log (machine-log.h), re-adoption after a daemon restart
 * (machine-adopt.h), the stop escalation (machine-stop.h). On D-Bus a Machine is an
 * org.majordome.Vm1 object (machine-dbus.c); nothing here knows about
 * method calls beyond opaque pending replies handed back through the
 * callbacks, and changes reach the wire layer through ManagerHooks
 * (manager.h). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "common/control.h"
#include "daemon/machine-config.h"
#include "daemon/machine-live-shares.h"
#include "common/macro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Manager Manager;
typedef struct Machine Machine;

typedef enum MachineState {
        MACHINE_STATE_STARTING,
        MACHINE_STATE_RUNNING,
        MACHINE_STATE_PAUSED,
        MACHINE_STATE_STOPPING,
        MACHINE_STATE_STOPPED,
        /* The VMM speaks another control protocol version: it is never
         * driven; only a stop (by signals) or Kill is accepted. */
        MACHINE_STATE_FAILED,
        _MACHINE_STATE_MAX,
} MachineState;

const char *machine_state_to_string(MachineState s);
int machine_state_from_string(const char *s);

/* Why a VM ended; the VmStopped signal's reason string. */
typedef enum MachineStopReason {
        MACHINE_STOP_POWEROFF,       /* VMM exited 0 without being asked */
        MACHINE_STOP_STOPPED,        /* a stop request ended it */
        MACHINE_STOP_CRASHED,        /* died by a signal nobody sent */
        MACHINE_STOP_KILLED,         /* Kill, or StopVm mode "kill" */
        MACHINE_STOP_FAILED,         /* non-zero exit code */
        MACHINE_STOP_START_FAILED,   /* never reached running */
        MACHINE_STOP_LOST,           /* adopted VMM ended; its exit status is not ours to read */
        MACHINE_STOP_SANDBOX,        /* the VMM broke its seccomp policy (died by SIGSYS) */
        MACHINE_STOP_GUEST_PANIC,    /* the guest kernel panicked (pvpanic), on_panic "stop" */
        _MACHINE_STOP_REASON_MAX,
} MachineStopReason;

const char *machine_stop_reason_to_string(MachineStopReason r);
int machine_stop_reason_from_string(const char *s);

/* Which step of the stop escalation ended the VM. */
typedef enum MachineStopStep {
        MACHINE_STOP_STEP_NONE,
        MACHINE_STOP_STEP_GRACEFUL,
        MACHINE_STOP_STEP_SIGTERM,
        MACHINE_STOP_STEP_SIGKILL,
        _MACHINE_STOP_STEP_MAX,
} MachineStopStep;

const char *machine_stop_step_to_string(MachineStopStep s);
int machine_stop_step_from_string(const char *s);

#define MACHINE_NAME_MAX 64
#define MACHINE_CMDLINE_MAX 4096
#define MACHINE_CPUS_MAX 40
#define MACHINE_MEMORY_MIN (1 * MiB)
#define MACHINE_MEMORY_MAX (1024 * GiB)
#define MACHINE_STOP_TIMEOUT_MS_DEFAULT 5000
#define MACHINE_STOP_TIMEOUT_MS_MAX (10 * 60 * 1000)
#define MACHINE_START_TIMEOUT_MS 30000
#define MACHINE_CONTROL_TIMEOUT_MS 2000
/* Requests in flight to one VMM (stop excepted: it always gets through). */
#define MACHINE_CONTROL_QUEUE_MAX 32
/* GetBalloonStats callers sharing one request; past it: Busy. */
#define MACHINE_BALLOON_STATS_WAITERS_MAX 256
/* How long the VMM may wait for the guest's fresh balloon statistics; it
 * answers within that, well inside MACHINE_CONTROL_TIMEOUT_MS. */
#define MACHINE_BALLOON_STATS_WAIT_MS 1000
/* The guest's console log is capped (the VMM cuts it to its newest half). */
#define MACHINE_CONSOLE_LOG_MAX_DEFAULT (4 * MiB)
#define MACHINE_CONSOLE_LOG_MAX_MIN (16 * 1024)
/* majordome-vmm's exit status after a guest panic with --on-panic stop
 * (docs/majordome-vmm.md). */
#define MACHINE_VMM_EXIT_GUEST_PANIC 74

/* Names are file and path components: [A-Za-z0-9_.-], 1..MACHINE_NAME_MAX bytes,
 * not starting with '.' or '-'. */
bool machine_name_is_valid(const char *name);

/* Completion of a request: r < 0 on failure (with a message in error_msg,
 * may be NULL). For stops, step tells which step ended the VM. */
typedef void (*MachineDoneFn)(Machine *vm, int r, const char *error_msg, MachineStopStep step, void *userdata);

typedef struct MachineWaiter MachineWaiter;
struct MachineWaiter {
        MachineDoneFn done;
        void *userdata;
        MachineWaiter *next;
};

/* Completion of GetBalloonStats: stats only when r >= 0. */
typedef void (*MachineBalloonStatsFn)(Machine *vm, int r, const char *error_msg, const ControlBalloonStats *stats,
                                      void *userdata);

typedef struct MachineControlRequest MachineControlRequest;
typedef struct MachineStatsWaiter MachineStatsWaiter;

struct Machine {
        Manager *manager;
        char *name;
        char *path;             /* D-Bus object path */
        MachineState state;
        /* Who started it: another non-root caller needs manage-any-vm to
         * change it (auth.h). Kept in the state file. */
        uid_t owner_uid;

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
        MachineControlRequest *requests;     /* all sent, replies matched by id */
        unsigned n_requests;
        uint32_t next_request_id;
        MachineStatsWaiter *stats_waiters;   /* GetBalloonStats callers sharing the request in flight */
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
        char *failed_reason;    /* why the state is failed (FailedReason), or NULL */

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
        char *vsock_dir;        /* <runtime>/<name>.vsock.d, 0711: the jailed VMM (majordome-vmm or nobody) searches it */
        char *vsock_path;       /* <vsock_dir>/vsock, with vsock only */

        /* devices, as started (kept in the state file for re-adoption) */
        bool balloon;
        uint32_t n_disks;
        uint32_t disks_read_only; /* bit i: disk i is read-only */
        /* the shared directories, as started (fd unused: the VMM has them) */
        MachineShare shares[MACHINE_SHARES_MAX];
        unsigned n_shares;
        /* live shares (machine-live-shares.h): whether the VM has their
         * root, their directory (<runtime>/live-shares/<name>), those
         * mounted now (fd unused) */
        bool live_shares;
        char *live_dir;
        MachineShare live[MACHINE_LIVE_SHARES_MAX];
        unsigned n_live;
        /* its scope (machined.c): resource limits as started (0: none),
         * the unit once the service manager made it, the call under way */
        uint64_t memory_max;
        uint64_t cpu_weight;
        char *scope;
        sd_bus_slot *scope_slot;
        /* the GPU, as started (the compositor connection went to the VMM) */
        MachineGpu gpu;
        /* the PCI devices the VMM built, as its `ready` event said (Devices) */
        ControlDevice devices[CONTROL_READY_DEVICES_MAX];
        uint32_t n_devices;

        /* starting */
        MachineWaiter *start_waiters;
        sd_event_source *start_timer;

        /* stopping */
        bool stop_requested;
        bool kill_requested;
        MachineStopStep stop_step;
        uint32_t stop_timeout_ms;
        sd_event_source *stop_timer;
        MachineWaiter *stop_waiters;

        MachineStopReason stop_reason;
        int stop_status;
        char *stop_message;     /* the VMM's last error line (escaped), or NULL */

        Machine *next;
};

int machine_new(Manager *m, const char *name, Machine **ret);
Machine *machine_free(Machine *vm);

/* Spawns the VMM; the VM is STARTING until the VMM reports running, then
 * RUNNING and the waiter is called with 0 (or with an error on failure). */
int machine_start(Machine *vm, MachineConfig *config, MachineDoneFn done, void *userdata);

/* Whether requests other than a stop may go to the VMM now: 0 when
 * running or paused, -EPROTO when failed (another protocol version),
 * -EBUSY otherwise. One place, so every request refuses alike. */
int machine_check_up(const Machine *vm);

int machine_pause(Machine *vm, MachineDoneFn done, void *userdata);
int machine_resume(Machine *vm, MachineDoneFn done, void *userdata);

/* The balloon and disk requests, through the same control queue (never
 * blocking). Refused before anything is sent: -EBUSY while starting or
 * stopping, -EOPNOTSUPP without a balloon, -ENODEV for a disk index the VM
 * does not have, -EROFS for a read-only disk, -EINVAL for a size out of
 * range. The VMM's own refusals come back the same way through done. A
 * successful SetBalloon updates balloon_target_bytes; balloon statistics
 * update both balloon sizes (each emits PropertiesChanged). */
int machine_set_balloon(Machine *vm, uint64_t bytes, MachineDoneFn done, void *userdata);
int machine_get_balloon_stats(Machine *vm, MachineBalloonStatsFn done, void *userdata);
int machine_resize_disk(Machine *vm, uint32_t index, uint64_t bytes, MachineDoneFn done, void *userdata);

/* A live share (StartVm's live_shares): mounts a clone of dir_fd's
 * directory as the live root's <tag> subdirectory. -EOPNOTSUPP without
 * live_shares, -ESTALE when the daemon restarted in another mount
 * namespace (the mounts are out of its reach), -EEXIST for a tag the VM
 * has, -E2BIG past MACHINE_LIVE_SHARES_MAX, -EBUSY unless running or
 * paused. Emits PropertiesChanged and saves the state file. */
int machine_share_live(Machine *vm, int dir_fd, const char *path, const char *tag, bool read_only);
/* Removes one: -ENOENT for a tag that is not a live share. */
int machine_unshare_live(Machine *vm, const char *tag);

/* Writes the state file atomically (temp + rename). */
int machine_save(Machine *vm);

#ifdef __cplusplus
}
#endif
