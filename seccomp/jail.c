/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seccomp/jail.h"
#include "seccomp/sandbox.h"

static int cmp_int(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;
        return (x > y) - (x < y);
}

int jail_close_inherited_fds(const int *keep, size_t n_keep) {
        int sorted[16], n = 0;
        unsigned from = 3;

        if (n_keep > ARRAY_SIZE(sorted))
                return -E2BIG;
        for (size_t i = 0; i < n_keep; i++)
                if (keep[i] >= 3)
                        sorted[n++] = keep[i];
        qsort(sorted, (size_t) n, sizeof(int), cmp_int);
        for (int i = 0; i < n; i++) {
                if ((unsigned) sorted[i] > from && close_range(from, (unsigned) sorted[i] - 1, 0) < 0)
                        return -errno;
                from = (unsigned) sorted[i] + 1;
        }
        if (close_range(from, ~0U, 0) < 0)
                return -errno;
        return 0;
}

static int write_proc(const char *path, const char *fmt, ...) _printf_(2, 3);
static int write_proc(const char *path, const char *fmt, ...) {
        char buf[64];
        va_list ap;
        int fd, n, r = 0;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, buf, (size_t) n) != n)
                r = -errno;
        close(fd);
        return r;
}

/* The parent takes only the pid namespace, which applies to its children
 * alone; the others would take the parent along (the child's pivot_root
 * would change the parent's root too), so the child enters them. */
#define JAIL_CHILD_NS_FLAGS (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* Unprivileged: a user namespace, where this uid is root, makes the others
 * possible. 0 with j->user_ns false on hosts that forbid it. */
static int enter_user_namespace(Jail *j, const char **ret_step) {
        uid_t uid = geteuid();
        gid_t gid = getegid();
        int r;

        if (unshare(CLONE_NEWUSER) < 0) {
                if (errno == EPERM || errno == ENOSPC || errno == EINVAL || errno == EUSERS)
                        return 0;
                *ret_step = "unshare(user)";
                return -errno;
        }
        j->user_ns = true;
        r = write_proc("/proc/self/setgroups", "deny");
        if (r >= 0)
                r = write_proc("/proc/self/uid_map", "0 %u 1", (unsigned) uid);
        if (r >= 0)
                r = write_proc("/proc/self/gid_map", "0 %u 1", (unsigned) gid);
        if (r < 0) {
                *ret_step = "user namespace id maps";
                return r;
        }
        return 0;
}

static int unshare_pid_namespace(Jail *j, const char **ret_step) {
        int r;

        if (unshare(CLONE_NEWPID) == 0) {
                j->namespaces = true;
                return 0;
        }
        if (errno != EPERM) {
                *ret_step = "unshare(pid)";
                return -errno;
        }
        r = enter_user_namespace(j, ret_step);
        if (r < 0 || !j->user_ns)
                return r;
        if (unshare(CLONE_NEWPID) < 0) {
                *ret_step = "unshare(pid) in a user namespace";
                return -errno;
        }
        j->namespaces = true;
        return 0;
}

/* Whether this process runs in a user namespace other than the host's
 * (whose uid map is the identity over every id): there, "root" is some
 * user's uid and nobody may not be mapped at all. */
static bool in_user_namespace(void) {
        char buf[128] = "";
        unsigned long inside, outside, count;
        int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        return sscanf(buf, "%lu %lu %lu", &inside, &outside, &count) != 3 || inside != 0 || outside != 0 ||
               count != 4294967295UL;
}

int jail_resolve_user(Jail *j, const char **ret_name) {
        const char *name = getenv(JAIL_USER_ENV);
        struct passwd pw, *found = NULL;
        char buf[4096];
        int r;

        if (!name || !name[0])
                name = JAIL_USER;
        *ret_name = name;
        /* Only root switches; the look-up would be wasted time. */
        if (geteuid() != 0)
                return 0;
        r = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
        if (r != 0)
                return -r;
        if (!found)
                return 1;
        /* Root in the jail would undo it. */
        if (pw.pw_uid == 0 || pw.pw_gid == 0)
                return -EINVAL;
        j->uid = pw.pw_uid;
        j->gid = pw.pw_gid;
        return 0;
}

static uid_t jail_uid(const Jail *j) {
        return j->uid ?: JAIL_NOBODY;
}

static gid_t jail_gid(const Jail *j) {
        return j->gid ?: JAIL_NOBODY;
}

int jail_unshare(Jail *j, const char **ret_step) {
        int r;

        *j = (Jail) { .uid = j->uid, .gid = j->gid };
        /* Started by a VMM that jailed itself unprivileged: its user
         * namespace maps one uid, ours, and no nobody to switch to. */
        j->user_ns = in_user_namespace();
        if (unshare(JAIL_CHILD_NS_FLAGS) == 0) {
                j->namespaces = true;
                return 0;
        }
        if (errno != EPERM) {
                *ret_step = "unshare(mount, net, ipc, uts)";
                return -errno;
        }
        r = enter_user_namespace(j, ret_step);
        if (r < 0 || !j->user_ns)
                return r;
        if (unshare(JAIL_CHILD_NS_FLAGS) < 0) {
                *ret_step = "unshare(mount, net, ipc, uts) in a user namespace";
                return -errno;
        }
        j->namespaces = true;
        return 0;
}

/* Set once, before the fork, in the process that forks. */
static pid_t supervisor_pid;

pid_t jail_visible_pid(void) {
        return supervisor_pid > 0 ? supervisor_pid : getpid();
}

int jail_fork(Jail *j, const char **ret_step) {
        sigset_t mask, old;
        pid_t pid;
        int r;

        *j = (Jail) { .uid = j->uid, .gid = j->gid };
        r = unshare_pid_namespace(j, ret_step);
        if (r < 0)
                return r;
        if (!j->namespaces)
                return 0;

        /* Blocked before the fork, so that neither the parent misses one
         * before it waits nor the child (pid 1) drops one. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0) {
                *ret_step = "sigprocmask";
                return -errno;
        }

        supervisor_pid = getpid();
        pid = fork();
        if (pid < 0) {
                supervisor_pid = 0;
                *ret_step = "fork into the pid namespace";
                r = -errno;
                sigprocmask(SIG_SETMASK, &old, NULL);
                return r;
        }
        if (pid > 0) {
                j->forked = true;
                j->child = pid;
                return pid;
        }

        /* The child dies with its supervisor. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!sigismember(&old, SIGCHLD)) {
                sigemptyset(&mask);
                sigaddset(&mask, SIGCHLD);
                sigprocmask(SIG_UNBLOCK, &mask, NULL);
        }
        j->forked = true;
        if (unshare(JAIL_CHILD_NS_FLAGS) < 0) {
                *ret_step = "unshare(mount, net, ipc, uts)";
                return -errno;
        }
        return 0;
}

typedef struct CleanMappings {
        uintptr_t start[256], end[256];
        size_t n;
        uintptr_t cur_start, cur_end;
} CleanMappings;

/* One line of /proc/self/smaps: a mapping's header, or one of its fields.
 * A mapping with no anonymous page holds only page-cache pages equal to
 * its file (or a shared mapping's own pages): MADV_DONTNEED loses nothing
 * there, what is touched again faults back in. */
static void clean_mappings_parse(CleanMappings *m, const char *line) {
        unsigned long kib;

        /* Headers start with the address (lower-case hex), fields with a
         * capital. [vdso], [vvar] and [stack] are left alone. */
        if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
                if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &m->cur_start, &m->cur_end) != 2 || strchr(line, '['))
                        m->cur_start = m->cur_end = 0;
                return;
        }
        if (m->cur_end > m->cur_start && m->n < ARRAY_SIZE(m->start) &&
            sscanf(line, "Anonymous: %lu kB", &kib) == 1 && kib == 0) {
                m->start[m->n] = m->cur_start;
                m->end[m->n++] = m->cur_end;
        }
}

/* The supervisor only waits, yet it keeps every page that set-up touched
 * before the fork: libc, the binary, libseccomp, ~2 MiB of Rss counted a
 * second time next to the child's (bench/README.md). Drop the clean ones,
 * all at the end: parsing in between would fault libc's text back. */
static void drop_clean_pages(void) {
        CleanMappings m = {};
        char buf[4096];
        size_t len = 0;
        bool skip_line = false;
        int fd;

        fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                char *line, *nl;

                if (n <= 0)
                        break;
                len += (size_t) n;
                buf[len] = '\0';
                for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
                        *nl = '\0';
                        if (!skip_line)
                                clean_mappings_parse(&m, line);
                        skip_line = false;
                }
                len = strlen(line);
                memmove(buf, line, len);
                /* A line longer than the buffer (a header with a very long
                 * path): skipped to its end, and its mapping kept. */
                if (len == sizeof(buf) - 1) {
                        len = 0;
                        skip_line = true;
                        m.cur_start = m.cur_end = 0;
                }
        }
        close(fd);

        for (size_t i = 0; i < m.n; i++)
                (void) madvise((void *) m.start[i], m.end[i] - m.start[i], MADV_DONTNEED);
}

/* Mounts the host directory `b->fd` at `where`/NAME, alone (MS_BIND
 * without MS_REC: nothing mounted below it comes along). */
static int bind_into(const char *where, const JailBind *b) {
        char src[64], dst[PATH_MAX];
        unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC;

        if (!b->name[0] || strchr(b->name, '/') || strcmp(b->name, ".") == 0 || strcmp(b->name, "..") == 0)
                return -EINVAL;
        snprintf(src, sizeof(src), "/proc/self/fd/%d", b->fd);
        if (snprintf(dst, sizeof(dst), "%s/%s", where, b->name) >= (int) sizeof(dst))
                return -ENAMETOOLONG;
        if (mkdir(dst, 0555) < 0)
                return -errno;
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return -errno;
        if (!b->writable)
                flags |= MS_RDONLY;
        if (mount(NULL, dst, NULL, flags, NULL) < 0)
                return -errno;
        return 0;
}

static int pivot_to_empty_root(const JailBind *binds, size_t n_binds) {
        static const char *const mountpoints[] = { "/tmp", "/run", "/mnt", "/var/tmp" };
        const char *where = NULL;
        char options[64];
        int r;

        if (n_binds > JAIL_BINDS_MAX)
                return -E2BIG;
        /* Nothing of what follows may reach the host's mount table. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        /* Inodes: the root and one directory per bind. */
        snprintf(options, sizeof(options), "size=16k,nr_inodes=%zu,mode=0555", 8 + n_binds);
        for (size_t i = 0; i < ARRAY_SIZE(mountpoints) && !where; i++)
                if (mount("majordome-jail", mountpoints[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          options) == 0)
                        where = mountpoints[i];
        if (!where)
                return -errno;
        /* Before the pivot: the descriptors are resolved through the host's
         * /proc, which the new root has not. */
        for (size_t i = 0; i < n_binds; i++) {
                r = bind_into(where, &binds[i]);
                if (r < 0)
                        return r;
        }
        if (chdir(where) < 0)
                return -errno;
        /* pivot_root(".", "."): the old root ends up on top, then goes. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return -errno;
        if (umount2(".", MNT_DETACH) < 0)
                return -errno;
        if (chdir("/") < 0)
                return -errno;
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return -errno;
        return 0;
}

static int drop_capabilities(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        return 0;
}

/* Puts `fd` at `target` (close-on-exec), closing the original. */
static int move_fd(int fd, int target) {
        if (fd == target)
                return 0;
        if (dup3(fd, target, O_CLOEXEC) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        close(fd);
        return 0;
}

static int drop_bounding_set(void) {
        for (int cap = 0; cap < 64; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
                        return -errno;
        return 0;
}

/* The supervisor needs only: signals to the child (its pidfd), the
 * wait, and the unlink of the control socket. Its root becomes an empty
 * tmpfs holding that socket's directory alone, so even the unlink (whose
 * path no filter can check) reaches nothing else of the host. */
static int supervisor_lockdown(const Jail *j, pid_t child, const char *unlink_path, char **ret_unlink,
                               const char **ret_step) {
        _cleanup_free_ char *dir = NULL, *base = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        const char *socket_dir = NULL;
        int fd, r;

        fd = (int) syscall(SYS_pidfd_open, child, 0);
        if (fd < 0) {
                *ret_step = "supervisor: pidfd_open";
                return -errno;
        }
        r = move_fd(fd, JAIL_SUPERVISOR_PIDFD);
        if (r < 0) {
                *ret_step = "supervisor: pidfd";
                return r;
        }

        if (unlink_path) {
                char *b;

                dir = strdup(unlink_path);
                base = strdup(unlink_path);
                if (!dir || !base) {
                        *ret_step = "supervisor: socket path";
                        return -ENOMEM;
                }
                b = basename(base);
                if (!b[0] || strcmp(b, "/") == 0 || strcmp(b, ".") == 0 || strcmp(b, "..") == 0) {
                        *ret_step = "supervisor: socket path";
                        return -EINVAL;
                }
                socket_dir = dirname(dir);
                if (asprintf(ret_unlink, "/" JAIL_SUPERVISOR_SOCKET_DIR "/%s", b) < 0) {
                        *ret_unlink = NULL;
                        *ret_step = "supervisor: socket path";
                        return -ENOMEM;
                }
        }

        if (unshare(CLONE_NEWNS) < 0) {
                *ret_step = "supervisor: unshare(mount)";
                return -errno;
        }
        /* Opened in the new mount namespace: a bind mount takes its
         * source from there only. */
        if (socket_dir) {
                dir_fd = open(socket_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dir_fd < 0) {
                        *ret_step = "supervisor: socket directory";
                        return -errno;
                }
        }
        JailBind bind = { .fd = dir_fd, .name = JAIL_SUPERVISOR_SOCKET_DIR, .writable = true };
        r = pivot_to_empty_root(&bind, dir_fd >= 0 ? 1 : 0);
        if (r < 0) {
                *ret_step = "supervisor: pivot_root into an empty tmpfs";
                return r;
        }
        dir_fd = safe_close(dir_fd);

        /* Never a core file, also not when it dies by the child's signal. */
        if (setrlimit(RLIMIT_CORE, &(struct rlimit) {}) < 0) {
                *ret_step = "supervisor: RLIMIT_CORE";
                return -errno;
        }
        r = drop_bounding_set();
        if (r < 0) {
                *ret_step = "supervisor: capability bounding set";
                return r;
        }
        if (geteuid() == 0 && !j->user_ns) {
                /* The child runs as the jail user: signalling it takes a
                 * matching uid, the euid (kill(2)). The real and saved uids
                 * stay 0, so that host processes of that user cannot signal
                 * the supervisor; the filesystem uid stays 0 for the
                 * unlink. No capability is left, so uid 0 is only an owner
                 * here. */
                if (setgroups(0, NULL) < 0 || setresgid(jail_gid(j), jail_gid(j), jail_gid(j)) < 0 ||
                    setresuid(0, jail_uid(j), 0) < 0) {
                        *ret_step = "supervisor: switching to the jail user's euid/gid";
                        return -errno;
                }
                (void) setfsuid(0);
                if ((uid_t) setfsuid((uid_t) -1) != 0) {
                        *ret_step = "supervisor: filesystem uid";
                        return -EPERM;
                }
        }
        r = drop_capabilities();
        if (r < 0) {
                *ret_step = "supervisor: dropping capabilities";
                return r;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                *ret_step = "supervisor: PR_SET_NO_NEW_PRIVS";
                return -errno;
        }
        r = sandbox_enter_role(SANDBOX_ROLE_SUPERVISOR);
        if (r < 0) {
                *ret_step = "supervisor: seccomp filter";
                return r;
        }
        return 0;
}

int jail_supervise(const Jail *j, const char *unlink_path, const char **ret_step) {
        _cleanup_free_ char *unlink_in_jail = NULL;
        pid_t child = j->child;
        sigset_t set;
        int status = 0, sig, r;

        /* Only the child may hold the VM's descriptors: a daemon watching
         * the control socket must see it close when the child dies. */
        (void) close_range(3, ~0U, 0);
        /* What set-up freed before the fork goes back first (the VMM does
         * the same before its guest runs). */
        (void) malloc_trim(0);
        drop_clean_pages();

        r = supervisor_lockdown(j, child, unlink_path, &unlink_in_jail, ret_step);
        if (r < 0) {
                /* Fail closed: no VM runs under a supervisor left privileged. */
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                return r;
        }

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGCHLD);
        for (;;) {
                siginfo_t si;

                sig = sigwaitinfo(&set, &si);
                if (sig < 0)
                        continue;
                if (sig != SIGCHLD) {
                        (void) syscall(SYS_pidfd_send_signal, JAIL_SUPERVISOR_PIDFD, sig, NULL, 0);
                        continue;
                }
                if (waitpid(child, &status, WNOHANG) == child)
                        break;
        }

        if (unlink_in_jail)
                (void) unlink(unlink_in_jail);
        /* _exit: atexit work such as LeakSanitizer's check would fork, and
         * this process's children belong to a pid namespace whose init is
         * gone. */
        fflush(NULL);
        if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));

        /* Die the same way (RLIMIT_CORE is 0: no second core dump). */
        sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
        signal(sig, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        _exit(128 + sig);
}

static int count_dir(const char *path, int *ret_max) {
        DIR *d = opendir(path);
        struct dirent *de;
        int n = 0, max = -1;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        n++;
                        max = MAX(max, atoi(de->d_name));
                }
        closedir(d);
        if (ret_max)
                *ret_max = max;
        return n;
}

int jail_lockdown(const Jail *j, const JailBind *binds, size_t n_binds, const char **ret_step) {
        int n, max_fd = 0, r;

        /* Credentials, capabilities and the root are per thread (or shared
         * in ways that would leave a thread outside): one thread only. */
        n = count_dir("/proc/self/task", NULL);
        if (n > 1) {
                *ret_step = "jail: more than one thread";
                return -EBUSY;
        }
        r = count_dir("/proc/self/fd", &max_fd);
        if (r < 0)
                max_fd = 1024;

        if (j->namespaces) {
                r = pivot_to_empty_root(binds, n_binds);
                if (r < 0) {
                        *ret_step = "pivot_root into an empty tmpfs";
                        return r;
                }
        }

        /* Root keeps no identity it could use after an escape. Bounding set
         * first: dropping it needs CAP_SETPCAP. */
        r = drop_bounding_set();
        if (r < 0) {
                *ret_step = "capability bounding set";
                return r;
        }
        if (geteuid() == 0 && !j->user_ns) {
                if (setgroups(0, NULL) < 0 || setresgid(jail_gid(j), jail_gid(j), jail_gid(j)) < 0 ||
                    setresuid(jail_uid(j), jail_uid(j), jail_uid(j)) < 0) {
                        *ret_step = "switching to the jail user's uid/gid";
                        return -errno;
                }
                /* A credential change clears the parent-death signal. */
                if (j->forked)
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        }
        r = drop_capabilities();
        if (r < 0) {
                *ret_step = "dropping capabilities";
                return r;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                *ret_step = "PR_SET_NO_NEW_PRIVS";
                return -errno;
        }

        /* Room for what the VMM opens later (connections, ioeventfds,
         * irqfds), nothing for locking memory or dumping guest secrets. */
        rlim_t nofile = MAX((rlim_t) JAIL_NOFILE_MIN, (rlim_t) max_fd + 1 + JAIL_FD_HEADROOM);
        const struct {
                int resource;
                rlim_t value;
                const char *step;
        } limits[] = {
                { RLIMIT_NOFILE, nofile, "RLIMIT_NOFILE" },
                { RLIMIT_MEMLOCK, 0, "RLIMIT_MEMLOCK" },
                { RLIMIT_CORE, 0, "RLIMIT_CORE" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
                struct rlimit rl = { limits[i].value, limits[i].value };
                struct rlimit cur;

                /* Never raise a limit the parent set lower. */
                if (getrlimit(limits[i].resource, &cur) == 0 && cur.rlim_max < rl.rlim_max)
                        rl.rlim_cur = rl.rlim_max = cur.rlim_max;
                if (setrlimit(limits[i].resource, &rl) < 0) {
                        *ret_step = limits[i].step;
                        return -errno;
                }
        }
        return 0;
}

static void probe_report(FILE *f, const char *name, int r) {
        if (r >= 0)
                fprintf(f, "probe %s: ok\n", name);
        else
                fprintf(f, "probe %s: blocked (%s)\n", name, strerrorname_np(-r) ?: "?");
}

static int probe_open(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

static int probe_connect(int family, const void *addr, socklen_t len) {
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;

        if (fd < 0)
                return -errno;
        if (connect(fd, addr, len) < 0)
                r = -errno;
        close(fd);
        return r;
}

void jail_probe(FILE *f, unsigned port) {
        struct sockaddr_in in = {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t) port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
        int n;

        probe_report(f, "open-host-file /etc/passwd", probe_open("/etc/passwd"));
        probe_report(f, "open-host-device /dev/kvm", probe_open("/dev/kvm"));
        probe_report(f, "open-proc /proc/self/status", probe_open("/proc/self/status"));
        n = count_dir("/", NULL);
        probe_report(f, "root-has-entries", n > 0 ? 0 : n == 0 ? -ENOENT : n);
        probe_report(f, "create-file /probe", probe_open("/probe") < 0 &&
                     open("/probe", O_CREAT | O_WRONLY | O_CLOEXEC, 0600) < 0 ? -errno : 0);
        /* kill(-1, 0) reaches every process this one may signal. */
        probe_report(f, "signal-other-processes", kill(-1, 0) < 0 ? -errno : 0);
        fprintf(f, "probe pid: %d\n", (int) getpid());
        probe_report(f, "tcp-connect 127.0.0.1", probe_connect(AF_INET, &in, sizeof(in)));
        n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "majordome-probe-%u", port);
        probe_report(f, "unix-connect abstract", probe_connect(AF_UNIX, &un,
                     (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) n)));
        probe_report(f, "inherited-fd 100", fcntl(100, F_GETFD) < 0 ? -errno : 0);
        probe_report(f, "have-capabilities", syscall(SYS_capget, &h, d) < 0 ? -errno :
                     (d[0].effective | d[1].effective | d[0].permitted | d[1].permitted) ? 0 : -EPERM);
        fprintf(f, "probe no-new-privs: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        fprintf(f, "probe uid: %u\n", (unsigned) getuid());
        fprintf(f, "probe gid: %u\n", (unsigned) getgid());
        fflush(f);
}
