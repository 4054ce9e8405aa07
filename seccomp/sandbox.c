/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "common/macro.h"
#include "seccomp/sandbox.h"
#include "common/string-table.h"

#define POLICY_FILE_MAX (256 * 1024)
#define SYSCALL_NAMES_MAX 512
/* siginfo si_code of a seccomp trap (linux/signal.h, not in every libc header). */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

/* The fixed roles, then the device roles registered (sandbox_role_register)
 * in order, up to n_roles. Process-wide like the filters they name (below).
 * Appended under the lock, never changed or removed: a name or policy read
 * for a role below n_roles stays valid, so readers take no lock. */
static struct {
        pthread_mutex_t lock;
        const char *names[_SANDBOX_ROLE_MAX];
        const char *policies[_SANDBOX_ROLE_MAX];
        unsigned n_roles;
} roles = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .names = {
                [SANDBOX_ROLE_MAIN] = "main",
                [SANDBOX_ROLE_VCPU] = "vcpu",
                [SANDBOX_ROLE_SUPERVISOR] = "supervisor",
        },
        .policies = {
                [SANDBOX_ROLE_MAIN] = "main.policy",
                [SANDBOX_ROLE_VCPU] = "vcpu.policy",
                [SANDBOX_ROLE_SUPERVISOR] = "supervisor.policy",
        },
        .n_roles = _SANDBOX_ROLE_FIXED_MAX,
};

static const char *const mode_names[_SANDBOX_MODE_MAX] = {
        [SANDBOX_MODE_OFF] = "off",
        [SANDBOX_MODE_ENFORCE] = "enforce",
        [SANDBOX_MODE_LOG] = "log",
};

unsigned sandbox_n_roles(void) {
        return __atomic_load_n(&roles.n_roles, __ATOMIC_ACQUIRE);
}

const char *sandbox_role_to_string(SandboxRole role) {
        return (unsigned) role < sandbox_n_roles() ? roles.names[role] : NULL;
}

SandboxRole sandbox_role_from_string(const char *s) {
        /* The table is the registered roles', filled at start-up. */
        int i = string_table_lookup(roles.names, sandbox_n_roles(), s);

        return i < 0 ? _SANDBOX_ROLE_INVALID : (SandboxRole) i;
}

const char *sandbox_role_policy(SandboxRole role) {
        return (unsigned) role < sandbox_n_roles() ? roles.policies[role] : NULL;
}

DEFINE_STRING_TABLE_TO_STRING(sandbox_mode, SandboxMode, mode_names)
DEFINE_STRING_TABLE_FROM_STRING(sandbox_mode, SandboxMode, mode_names, _SANDBOX_MODE_INVALID)

/* Process-wide on purpose: seccomp, the SIGSYS handler and the jail are
 * properties of the process, not of one Vm. Written once by
 * sandbox_setup before any other thread exists, read-only afterwards. */
static struct {
        SandboxMode mode;
        PolicyProgram programs[_SANDBOX_ROLE_MAX];
        /* Names for the SIGSYS handler, which may not allocate. */
        char *syscall_names[SYSCALL_NAMES_MAX];
        SandboxRole test_violation;
} sandbox = { .test_violation = _SANDBOX_ROLE_INVALID };

static __thread const char *current_role;

int sandbox_role_register(const char *name, const char *policy, SandboxRole *ret) {
        SandboxRole role;
        int r = 0;

        if (!name || !policy)
                return -EINVAL;
        pthread_mutex_lock(&roles.lock);
        role = sandbox_role_from_string(name);
        if (role >= 0) {
                if (role < _SANDBOX_ROLE_FIXED_MAX || strcmp(roles.policies[role], policy) != 0)
                        r = -EEXIST;
        } else if (roles.n_roles >= _SANDBOX_ROLE_MAX)
                r = -ENOSPC;
        else if (sandbox.mode != SANDBOX_MODE_OFF)
                r = -EBUSY;
        else {
                role = (SandboxRole) roles.n_roles;
                roles.names[role] = name;
                roles.policies[role] = policy;
                __atomic_store_n(&roles.n_roles, roles.n_roles + 1, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&roles.lock);
        if (r < 0)
                return r;
        *ret = role;
        return 0;
}

SandboxMode sandbox_get_mode(void) {
        return sandbox.mode;
}

const char *sandbox_current_role(void) {
        return current_role;
}

void sandbox_set_test_violation(SandboxRole role) {
        sandbox.test_violation = role;
}

static size_t append(char *buf, size_t at, size_t size, const char *s) {
        while (*s && at + 1 < size)
                buf[at++] = *s++;
        buf[at] = '\0';
        return at;
}

static size_t append_uint(char *buf, size_t at, size_t size, unsigned long v) {
        char digits[24];
        size_t n = 0;

        do
                digits[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0 && at + 1 < size)
                buf[at++] = digits[--n];
        buf[at] = '\0';
        return at;
}

static size_t append_hex(char *buf, size_t at, size_t size, unsigned long v) {
        char digits[24];
        size_t n = 0;

        do
                digits[n++] = "0123456789abcdef"[v % 16];
        while ((v /= 16) > 0);
        at = append(buf, at, size, "0x");
        while (n > 0 && at + 1 < size)
                buf[at++] = digits[--n];
        buf[at] = '\0';
        return at;
}

/* Runs on the thread whose syscall the filter trapped: async-signal-safe
 * code only. */
static void sigsys_handler(int sig, siginfo_t *si, void *context) {
        char msg[256];
        size_t n = 0;
        unsigned nr = (unsigned) si->si_syscall;
        const char *name = nr < SYSCALL_NAMES_MAX ? sandbox.syscall_names[nr] : NULL;

        if (si->si_code == SYS_SECCOMP) {
                n = append(msg, n, sizeof(msg), "majordome-vmm: sandbox violation: syscall ");
                n = append(msg, n, sizeof(msg), name ?: "unknown");
                n = append(msg, n, sizeof(msg), " (");
                n = append_uint(msg, n, sizeof(msg), nr);
                n = append(msg, n, sizeof(msg), ")");
                if (nr == SYS_ioctl) {
                        /* Which request: what a policy author needs next. */
                        const ucontext_t *uc = context;
                        n = append(msg, n, sizeof(msg), " request ");
                        n = append_hex(msg, n, sizeof(msg), (unsigned long) uc->uc_mcontext.gregs[REG_RSI]);
                }
                n = append(msg, n, sizeof(msg), " in role ");
                n = append(msg, n, sizeof(msg), current_role ?: "none");
                n = append(msg, n, sizeof(msg), "\n");
        } else
                n = append(msg, n, sizeof(msg), "majordome-vmm: fatal signal 31 (SYS)\n");
        (void) !write(STDERR_FILENO, msg, n);

        /* No policy lets SIGSYS's action change, so in a filtered thread
         * this sigaction traps again while SIGSYS is blocked here, and the
         * kernel then kills the whole process by SIGSYS. Should it succeed
         * (a thread without a filter), the raise ends the process the same way. */
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigaction(SIGSYS, &sa, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGSYS);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        raise(SIGSYS);
        _exit(128 + SIGSYS);
}

static int install_sigsys_handler(void) {
        struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSYS, &sa, NULL) < 0)
                return -errno;
        return 0;
}

void sandbox_done(void) {
        for (size_t i = 0; i < _SANDBOX_ROLE_MAX; i++)
                policy_program_done(&sandbox.programs[i]);
        for (size_t i = 0; i < SYSCALL_NAMES_MAX; i++) {
                free(sandbox.syscall_names[i]);
                sandbox.syscall_names[i] = NULL;
        }
        sandbox.mode = SANDBOX_MODE_OFF;
}

int sandbox_setup(SandboxMode mode, const PolicySource *sources, size_t n_sources, PolicyError *e) {
        const char *roots[2];
        size_t n_roots = 0;
        int r;

        *e = (PolicyError) {};
        if ((unsigned) mode >= _SANDBOX_MODE_MAX)
                return -EINVAL;
        sandbox_done();
        if (mode == SANDBOX_MODE_OFF)
                return 0;
        if (!sources) {
                sources = sandbox_builtin_policies;
                n_sources = sandbox_n_builtin_policies;
        }

        for (unsigned i = 0; i < sandbox_n_roles(); i++) {
                n_roots = 0;
                roots[n_roots++] = roles.policies[i];
#if SANDBOX_SANITIZER_POLICY
                /* What AddressSanitizer's runtime does in a running process. */
                roots[n_roots++] = "asan.policy";
#endif
                r = policy_compile(sources, n_sources, roots, n_roots,
                                   mode == SANDBOX_MODE_LOG ? POLICY_DEFAULT_LOG : POLICY_DEFAULT_TRAP,
                                   &sandbox.programs[i], e);
                if (r < 0) {
                        sandbox_done();
                        return r;
                }
        }

        for (unsigned nr = 0; nr < SYSCALL_NAMES_MAX; nr++)
                sandbox.syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int) nr);

        if (mode == SANDBOX_MODE_ENFORCE) {
                r = install_sigsys_handler();
                if (r < 0) {
                        sandbox_done();
                        return r;
                }
        }
        /* glibc's malloc opens files in whatever thread triggers it, a
         * kill under every filtered role: /sys/devices/system/cpu/online
         * when a ninth arena is wanted and no arena limit is set, and
         * /proc/sys/vm/overcommit_memory the first time a thread's heap
         * shrinks. Set the limit; heaps shrink only by malloc_trim(). */
        (void) mallopt(M_ARENA_MAX, 8);
        (void) mallopt(M_TRIM_THRESHOLD, INT_MAX);
        sandbox.mode = mode;
        return 0;
}

/* Installs `role`'s filter on the calling thread only. */
static int install_filter(SandboxRole role) {
        struct sock_fprog prog = {
                .len = sandbox.programs[role].len,
                .filter = sandbox.programs[role].filter,
        };
        /* No SECCOMP_FILTER_FLAG_TSYNC: the filter is this thread's alone. */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return -errno;
        return 0;
}

/* The calling thread runs under `role`'s filter from now on. */
static void role_entered(SandboxRole role) {
        current_role = roles.names[role];
        if (sandbox.test_violation == role)
                (void) syscall(SYS_ptrace, PTRACE_GETREGS, 0, NULL, NULL);
}

int sandbox_enter_role(SandboxRole role) {
        int r;

        if ((unsigned) role >= sandbox_n_roles())
                return -EINVAL;
        if (sandbox.mode == SANDBOX_MODE_OFF)
                return 0;
        /* A role registered too late to have a filter: -EBUSY kept it out. */
        r = install_filter(role);
        if (r < 0)
                return r;
        role_entered(role);
        return 0;
}

void sandbox_policy_sources_free(PolicySource *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free((char *) s[i].name);
                free((char *) s[i].text);
        }
        free(s);
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* A whole file as a NUL-terminated string; -EFBIG past `max`. */
static int read_text(int fd, size_t max, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, max + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return -EFBIG;
        }
        buf[n] = '\0';
        if (strlen(buf) != n)
                return -EBADMSG; /* a NUL inside: not a text file */
        *ret = TAKE_PTR(buf);
        return 0;
}

int sandbox_policy_sources_load_dir(const char *dir, PolicySource **ret, size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = NULL;
        PolicySource *s = NULL;
        size_t n = 0;
        struct dirent *de;
        int r;

        d = opendir(dir);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_close_ int fd = -EBADF;
                size_t len = strlen(de->d_name);
                char *text = NULL;

                if (len <= 7 || strcmp(de->d_name + len - 7, ".policy") != 0)
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        r = -errno;
                        goto fail;
                }
                r = read_text(fd, POLICY_FILE_MAX, &text);
                if (r < 0)
                        goto fail;
                PolicySource *t = realloc(s, (n + 1) * sizeof(*s));
                if (!t) {
                        free(text);
                        r = -ENOMEM;
                        goto fail;
                }
                s = t;
                s[n].text = text;
                s[n].name = strdup(de->d_name);
                n++;
                if (!s[n - 1].name) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        *ret = s;
        *ret_n = n;
        return 0;
fail:
        sandbox_policy_sources_free(s, n);
        return r;
}

/* The spawners: one thread per device role, created by the unfiltered
 * main thread and running under that role's filter, no other. A thread
 * inherits its creator's filter, so the workers a spawner creates start
 * under exactly their role's filter and install none: one BPF program per
 * syscall, not two stacked. What a spawner itself does (futex, malloc,
 * clone of a thread, mmap/mprotect of its stack) is in common.policy,
 * which every device policy includes. One request at a time, under the
 * lock. */
typedef struct SpawnRequest {
        SandboxRole role;
        void *(*fn)(void *);
        void *arg;
        bool inherited;         /* created by the role's spawner: the filter is in */
        pthread_t result;       /* the spawner's answer, under its lock */
        int error;
        bool done;
} SpawnRequest;

typedef struct Spawner {
        SandboxRole role;
        pthread_t thread;
        bool running;
        SpawnRequest *request;  /* pending, under lock */
} Spawner;

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stop;
        Spawner spawners[_SANDBOX_ROLE_MAX];
} spawner = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static bool role_has_spawner(SandboxRole role) {
        /* Main and vCPU threads are created by the unfiltered main thread;
         * the supervisor is another process. The device roles have one. */
        return role >= _SANDBOX_ROLE_FIXED_MAX;
}

static void *role_thread_main(void *arg) {
        SpawnRequest req = *(SpawnRequest *) arg;
        int r = 0;

        free(arg);
        if (req.inherited)
                role_entered(req.role);
        else
                r = sandbox_enter_role(req.role);
        if (r < 0) {
                /* Running without the role's filter is not an option. */
                char msg[128];
                int n = snprintf(msg, sizeof(msg), "majordome-vmm: sandbox: entering role %s failed: %s\n",
                                 sandbox_role_to_string(req.role), strerror(-r));
                (void) !write(STDERR_FILENO, msg, (size_t) MAX(n, 0));
                abort();
        }
        return req.fn(req.arg);
}

static int spawn_now(const SpawnRequest *req, pthread_t *ret) {
        SpawnRequest *copy = malloc(sizeof(*copy));
        int r;

        if (!copy)
                return -ENOMEM;
        *copy = *req;
        r = pthread_create(ret, NULL, role_thread_main, copy);
        if (r > 0) {
                free(copy);
                return -r;
        }
        return 0;
}

static void *spawner_main(void *arg) {
        Spawner *s = arg;

        pthread_setname_np(pthread_self(), "spawner");
        /* Not sandbox_enter_role: --test-sandbox-violation=ROLE is for the
         * role's workers, which this thread only creates. */
        if (install_filter(s->role) < 0)
                abort();
        current_role = roles.names[s->role];
        pthread_mutex_lock(&spawner.lock);
        for (;;) {
                while (!s->request && !spawner.stop)
                        pthread_cond_wait(&spawner.cond, &spawner.lock);
                if (spawner.stop)
                        break;
                s->request->inherited = true;
                s->request->error = spawn_now(s->request, &s->request->result);
                s->request->done = true;
                s->request = NULL;
                pthread_cond_broadcast(&spawner.cond);
        }
        pthread_mutex_unlock(&spawner.lock);
        return NULL;
}

int sandbox_spawner_start(void) {
        int r;

        if (sandbox.mode == SANDBOX_MODE_OFF)
                return 0;
        spawner.stop = false;
        for (size_t i = 0; i < sandbox_n_roles(); i++) {
                Spawner *s = &spawner.spawners[i];

                if (!role_has_spawner((SandboxRole) i) || s->running)
                        continue;
                s->role = (SandboxRole) i;
                r = pthread_create(&s->thread, NULL, spawner_main, s);
                if (r > 0) {
                        sandbox_spawner_stop();
                        return -r;
                }
                s->running = true;
        }
        return 0;
}

void sandbox_spawner_stop(void) {
        pthread_mutex_lock(&spawner.lock);
        spawner.stop = true;
        pthread_cond_broadcast(&spawner.cond);
        pthread_mutex_unlock(&spawner.lock);
        for (size_t i = 0; i < _SANDBOX_ROLE_MAX; i++) {
                Spawner *s = &spawner.spawners[i];

                if (!s->running)
                        continue;
                pthread_join(s->thread, NULL);
                s->running = false;
        }
}

int sandbox_thread_create(pthread_t *ret, SandboxRole role, void *(*fn)(void *), void *arg) {
        SpawnRequest req = { .role = role, .fn = fn, .arg = arg };
        Spawner *s;
        int r;

        if ((unsigned) role >= sandbox_n_roles())
                return -EINVAL;
        /* Unfiltered callers (the sandbox off, or the main thread before
         * it enters its role) start the thread themselves. */
        if (!current_role)
                return spawn_now(&req, ret);
        /* A filtered caller's thread would inherit the caller's filter. */
        s = &spawner.spawners[role];
        if (!s->running)
                return -EPERM;

        pthread_mutex_lock(&spawner.lock);
        while (s->request)
                pthread_cond_wait(&spawner.cond, &spawner.lock);
        s->request = &req;
        pthread_cond_broadcast(&spawner.cond);
        while (!req.done)
                pthread_cond_wait(&spawner.cond, &spawner.lock);
        r = req.error;
        if (r >= 0)
                *ret = req.result;
        pthread_mutex_unlock(&spawner.lock);
        return r;
}
