/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon/auth.h"
#include "common/log.h"
#include "daemon/manager-dbus.h"
#include "daemon/manager.h"
#include "common/util.h"
#include "common/vmm-config.h"

#ifndef MAJORDOME_VMM_PATH
#define MAJORDOME_VMM_PATH "/usr/bin/majordome-vmm"
#endif

typedef struct Args {
        bool user;
        const char *runtime_dir;
        const char *vmm;
        unsigned max_vms;
        uint64_t console_log_max;
        bool verbose;
} Args;

static void help(void) {
        printf("Usage: majordomed [OPTIONS]\n\n"
               "The Majordome VM manager: org.majordome.VmManager1 on D-Bus.\n\n"
               "      --user              serve the session bus (default: the system bus)\n"
               "      --runtime-dir DIR   state files, control sockets and console logs\n"
               "                          (default: /run/majordome, or $XDG_RUNTIME_DIR/majordome with --user)\n"
               "      --vmm PATH          the majordome-vmm binary (default: %s)\n"
               "      --max-vms N         most VMs at once (default %d)\n"
               "      --console-log-max SIZE  cap each guest's console log (default 4M, at\n"
               "                          least 16K): past it only the newest half is kept\n"
               "  -v, --verbose           debug logging\n"
               "  -h, --help              this help\n"
               "      --version           the version\n",
               MAJORDOME_VMM_PATH, MANAGER_MAX_VMS_DEFAULT);
}

static int parse_args(int argc, char **argv, Args *a) {
        enum { ARG_USER = 0x100, ARG_RUNTIME_DIR, ARG_VMM, ARG_MAX_VMS, ARG_CONSOLE_LOG_MAX, ARG_VERSION };
        static const struct option options[] = {
                { "user", no_argument, NULL, ARG_USER },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "vmm", required_argument, NULL, ARG_VMM },
                { "max-vms", required_argument, NULL, ARG_MAX_VMS },
                { "console-log-max", required_argument, NULL, ARG_CONSOLE_LOG_MAX },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        uint64_t n;
        int c;

        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
                switch (c) {
                case ARG_USER:
                        a->user = true;
                        break;
                case ARG_RUNTIME_DIR:
                        a->runtime_dir = optarg;
                        break;
                case ARG_VMM:
                        a->vmm = optarg;
                        break;
                case ARG_MAX_VMS:
                        if (parse_uint(optarg, 1, MANAGER_MAX_VMS_LIMIT, &n) < 0) {
                                log_error("--max-vms: want 1 to %d, got '%s'", MANAGER_MAX_VMS_LIMIT, optarg);
                                return -EINVAL;
                        }
                        a->max_vms = (unsigned) n;
                        break;
                case ARG_CONSOLE_LOG_MAX:
                        if (parse_size(optarg, &n) < 0 || n < MACHINE_CONSOLE_LOG_MAX_MIN) {
                                log_error("--console-log-max: want a size of at least 16K, got '%s'", optarg);
                                return -EINVAL;
                        }
                        a->console_log_max = n;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("majordomed %s\n", MAJORDOME_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        /* Leave the VMMs running: a restarted daemon adopts them. */
        log_info("exiting on signal %d; VMs keep running", (int) si->ssi_signo);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int main(int argc, char **argv) {
        _cleanup_free_ char *runtime_dir = NULL;
        Manager *m = NULL;
        Args a = { .max_vms = MANAGER_MAX_VMS_DEFAULT, .console_log_max = MACHINE_CONSOLE_LOG_MAX_DEFAULT };
        sigset_t mask;
        int r, n;

        log_set_program_name("majordomed");
        r = parse_args(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (a.verbose)
                log_set_max_level(LOG_LEVEL_DEBUG);

        if (a.runtime_dir)
                runtime_dir = strdup(a.runtime_dir);
        else if (a.user) {
                const char *x = getenv("XDG_RUNTIME_DIR");

                if (!x) {
                        log_error("--user needs XDG_RUNTIME_DIR or --runtime-dir");
                        return 1;
                }
                if (asprintf(&runtime_dir, "%s/majordome", x) < 0)
                        runtime_dir = NULL;
        } else
                runtime_dir = strdup("/run/majordome");
        if (!runtime_dir)
                return log_error_errno(ENOMEM, "out of memory"), 1;
        r = mkdir_p(runtime_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "runtime directory %s: %m", runtime_dir), 1;

        /* SIGCHLD for the pidfd child sources; SIGTERM/SIGINT for a clean exit. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = manager_new(&m);
        if (r < 0)
                return log_error_errno(r, "%m"), 1;
        m->user = a.user;
        m->max_vms = a.max_vms;
        m->console_log_max = a.console_log_max;
        m->runtime_dir = TAKE_PTR(runtime_dir);
        m->vmm_path = strdup(a.vmm ?: MAJORDOME_VMM_PATH);
        if (!m->vmm_path) {
                r = -ENOMEM;
                goto finish;
        }
        if (access(m->vmm_path, X_OK) < 0) {
                r = log_error_errno(errno, "VMM %s: %m", m->vmm_path);
                goto finish;
        }

        r = sd_event_default(&m->event);
        /* WatchdogSec= in the unit: the loop itself sends WATCHDOG=1, so a
         * daemon stuck anywhere is restarted (and re-adopts its VMMs). */
        if (r >= 0)
                r = sd_event_set_watchdog(m->event, true);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGTERM, on_term, NULL);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_term, NULL);
        if (r < 0) {
                log_error_errno(r, "event loop: %m");
                goto finish;
        }

        r = a.user ? sd_bus_open_user(&m->bus) : sd_bus_open_system(&m->bus);
        if (r < 0) {
                log_error_errno(r, "connecting to the %s bus: %m", a.user ? "session" : "system");
                goto finish;
        }
        r = manager_bus_register(m);
        if (r < 0) {
                log_error_errno(r, "registering objects: %m");
                goto finish;
        }

        /* Adopt before taking the name: callers then see every live VM. */
        n = manager_adopt_vms(m);
        if (n < 0)
                log_warning_errno(n, "reading %s: %m", m->runtime_dir);
        else if (n > 0)
                log_info("re-adopted %d VM(s)", n);

        r = sd_bus_request_name(m->bus, MANAGER_BUS_NAME, 0);
        if (r < 0) {
                log_error_errno(r, "taking the name %s: %m", MANAGER_BUS_NAME);
                goto finish;
        }
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                log_error_errno(r, "attaching the bus: %m");
                goto finish;
        }

        log_info("ready on the %s bus, runtime directory %s", a.user ? "session" : "system", m->runtime_dir);
        /* Its VMMs (which inherit our environment) look the user up
         * themselves (seccomp/jail.c) and would say this once each: said
         * here once instead. */
        if (geteuid() == 0) {
                const char *jail_user = getenv(VMM_JAIL_USER_ENV);

                if (!jail_user || !jail_user[0])
                        jail_user = VMM_JAIL_USER;
                if (!getpwnam(jail_user))
                        log_warning("no user %s (systemd-sysusers creates %s from majordome.conf): the VMMs drop "
                                    "to nobody", jail_user, VMM_JAIL_USER);
        }
        (void) sd_notify(false, "READY=1\nSTATUS=Managing VMs");
        r = sd_event_loop(m->event);
        if (r < 0)
                log_error_errno(r, "event loop: %m");
        (void) sd_notify(false, "STOPPING=1");

finish:
        if (m) {
                auth_queries_free(m);
                /* Drop the VMs' bookkeeping before the bus (their hooks use it). */
                sd_bus_flush_close_unref(TAKE_PTR(m->bus));
                m = manager_free(m);
        }
        /* manager_free leaves the event loop to us. */
        return r < 0 ? 1 : 0;
}
