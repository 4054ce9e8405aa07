/* SPDX-License-Identifier: BSD-3-Clause */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/macro.h"
#include "daemon/machine-process.h"

int machine_pidfd_open(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

int machine_pidfd_send_signal(int pidfd, int sig) {
        return (int) syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The start time of a process (clock ticks since boot): with the pid, the
 * identity of a process that survives pid reuse. */
int machine_pid_get_starttime(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024], *p, *end;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        safe_close(fd);
        if (n <= 0)
                return n < 0 ? -errno : -EIO;
        buf[n] = 0;

        /* comm may hold spaces and parentheses: fields start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        p++;
        for (int field = 3; field <= 22; field++) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        return -EIO;
                if (field == 22) {
                        errno = 0;
                        *ret = strtoull(p, &end, 10);
                        if (errno || end == p)
                                return -EIO;
                        return 0;
                }
                p = strchr(p, ' ');
                if (!p)
                        return -EIO;
        }
        return -EIO;
}

static int fd_move_high(int fd) {
        return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 16);
}

/* The VMM's descriptors: 0-2 /dev/null and the log, then its end of the
 * control connection, then the gate until it opens. Every other file (the
 * kernel, initrd, console, disks) reaches it in the CONFIGURE message. */
#define MACHINE_FD_CONTROL 3
#define MACHINE_FD_GATE 4

static _noreturn_ void machine_exec_child(char **argv, int control_fd, int log_fd, int gate_fd, int gate_write_fd) {
        int null_fd, hi_control, hi_log, hi_gate, gate;
        ssize_t k;
        char go;
        sigset_t all;

        /* Only the daemon may hold the gate's write end, or its death
         * would not close the gate. */
        (void) close(gate_write_fd);

        /* Its own session and process group: signals aimed at the daemon's
         * group (a terminal's ^C, a unit's stop) do not reach the guest. */
        (void) setsid();
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);

        /* Lift every source above the targets first so dup2 never clobbers
         * a source that sits on another's target number. */
        hi_control = fd_move_high(control_fd);
        hi_log = fd_move_high(log_fd);
        hi_gate = fd_move_high(gate_fd);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (hi_control < 0 || hi_log < 0 || hi_gate < 0 || null_fd < 0)
                _exit(71);
        if (dup2(null_fd, 0) < 0 || dup2(hi_log, 1) < 0 || dup2(hi_log, 2) < 0 ||
            dup2(hi_control, MACHINE_FD_CONTROL) < 0)
                _exit(71);
        gate = MACHINE_FD_GATE;
        if (dup3(hi_gate, gate, O_CLOEXEC) < 0)
                _exit(71);
        /* Nothing of the daemon's stays open while the child waits. */
        (void) syscall(SYS_close_range, gate + 1, ~0U, 0);

        /* The VMM runs only once a restarted daemon can find it: the daemon
         * opens the gate after the state file is saved. EOF means it could
         * not save it, or died first: no VMM, nothing orphaned. */
        do
                k = read(gate, &go, 1);
        while (k < 0 && errno == EINTR);
        if (k != 1)
                _exit(MACHINE_GATE_CLOSED_EXIT);
        (void) close(gate);

        execv(argv[0], argv);
        dprintf(2, "majordome-vmm: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
}

void machine_process_done(MachineProcess *p) {
        p->pidfd = safe_close(p->pidfd);
        p->control_fd = safe_close(p->control_fd);
        p->gate_fd = safe_close(p->gate_fd);
}

int machine_process_spawn(const char *vmm_path, const char *socket_path, int log_fd, const VmmConfig *config,
                          uint32_t first_id, MachineProcess *ret, uint32_t *ret_ids_used) {
        _cleanup_close_ int ours = -EBADF, theirs = -EBADF, pidfd = -EBADF, gate_read = -EBADF,
                gate_write = -EBADF;
        char control_fd[16], *argv[8];
        int pair[2], gate[2], n = 0, r;
        uint32_t ids_used;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        ours = pair[0];
        theirs = pair[1];
        if (pipe2(gate, O_CLOEXEC) < 0)
                return -errno;
        gate_read = gate[0];
        gate_write = gate[1];

        /* The whole configuration, with its descriptors, waits in the
         * connection for the VMM to read it first (docs/control-protocol.md
         * "configure"); its replies are not waited for: a VMM that refuses
         * it exits (start-failed) with the reason in its log. */
        r = vmm_config_send(ours, first_id, config);
        if (r < 0)
                return r;
        ids_used = (uint32_t) r;

        /* A minimal command line: everything else came in the message. */
        snprintf(control_fd, sizeof(control_fd), "%d", MACHINE_FD_CONTROL);
        argv[n++] = (char *) vmm_path;
        argv[n++] = (char *) "serve";
        argv[n++] = (char *) "--socket";
        argv[n++] = (char *) socket_path;
        argv[n++] = (char *) "--control-fd";
        argv[n++] = control_fd;
        argv[n] = NULL;
        assert(n < (int) ARRAY_SIZE(argv));

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                machine_exec_child(argv, theirs, log_fd, gate_read, gate_write);
        gate_read = safe_close(gate_read);

        /* Our unreaped child cannot be replaced by another process, so the
         * pidfd surely names it. */
        pidfd = machine_pidfd_open(pid);
        if (pidfd < 0) {
                r = -errno;
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }

        *ret = (MachineProcess) {
                .pid = pid,
                .pidfd = TAKE_FD(pidfd),
                .control_fd = TAKE_FD(ours),
                .gate_fd = TAKE_FD(gate_write),
        };
        *ret_ids_used = ids_used;
        return 0;
}

int machine_process_open_gate(MachineProcess *p) {
        if (write(p->gate_fd, "", 1) != 1)
                return -errno; /* EPIPE: the child died before its exec */
        p->gate_fd = safe_close(p->gate_fd);
        return 0;
}
