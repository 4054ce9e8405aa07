/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "daemon/machine-state-file.h"
#include "common/vmm-config.h"

/* A caller's path in the state file: every byte outside '!'..'~', and '\\',
 * as \xNN, so no path can end the line and add a key of its own. */
static void state_write_path(FILE *f, const char *path) {
        for (const char *p = path; *p; p++)
                if (*p <= 0x20 || *p > 0x7e || *p == '\\')
                        fprintf(f, "\\x%02x", (unsigned) (uint8_t) *p);
                else
                        fputc(*p, f);
}

int machine_state_file_write(const char *path, const MachineStateFile *s) {
        _cleanup_free_ char *tmp = NULL;
        FILE *f;
        int fd, r = 0;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                safe_close(fd);
                unlink(tmp);
                return r;
        }
        fprintf(f,
                "# majordomed state, re-read at start-up to re-adopt the VMM\n"
                "NAME=%s\nPID=%d\nSTARTTIME=%" PRIu64 "\nSOCKET=%s\nLOG=%s\n"
                "STATE=%s\nCID=%" PRIu32 "\nVCPUS=%" PRIu32 "\nMEMORY=%" PRIu64 "\n"
                "START_USEC=%" PRIu64 "\nSTOP_REQUESTED=%d\nKILL_REQUESTED=%d\n"
                "BALLOON=%d\nBALLOON_TARGET=%" PRIu64 "\nDISKS=%u\nDISKS_RO=%" PRIu32 "\n"
                "STOP_STEP=%s\nSTOP_TIMEOUT_MS=%" PRIu32 "\nON_PANIC=%s\nGUEST_PANICKED=%d\nOWNER=%u\n",
                s->name, (int) s->pid, s->starttime, s->socket, s->log ?: "",
                machine_state_to_string(s->state) ?: "running", s->cid, s->vcpus, s->memory,
                s->start_usec, s->stop_requested, s->kill_requested,
                s->balloon, s->balloon_target, s->disks, s->disks_ro,
                machine_stop_step_to_string(s->stop_step) ?: "none", s->stop_timeout_ms,
                control_panic_action_to_string(s->on_panic) ?: "stop", s->guest_panicked,
                (unsigned) s->owner_uid);
        /* SHARE=<read_only> <cache> <tag> <path>: a tag has no space. */
        for (unsigned i = 0; i < s->n_shares; i++) {
                fprintf(f, "SHARE=%d %s %s ", s->shares[i].read_only,
                        vmm_fs_cache_to_string(s->shares[i].cache) ?: "auto", s->shares[i].tag);
                state_write_path(f, s->shares[i].path);
                fputc('\n', f);
        }
        /* LIVE_SHARE=<read_only> <tag> <path> */
        if (s->live_shares)
                fputs("LIVE_SHARES=1\n", f);
        for (unsigned i = 0; i < s->n_live; i++) {
                fprintf(f, "LIVE_SHARE=%d %s ", s->live[i].read_only, s->live[i].tag);
                state_write_path(f, s->live[i].path);
                fputc('\n', f);
        }
        /* GPU=<backend> <width> <height> <displays> <max_memory> <headless>[ <context_types>]
         * (the list only when one was asked for: what an older daemon wrote reads the same) */
        if (s->gpu.enabled) {
                char context_types[VMM_GPU_CONTEXT_TYPES_STRING_MAX] = "";

                (void) vmm_gpu_context_types_to_string(s->gpu.context_types, context_types, sizeof(context_types));
                fprintf(f, "GPU=%s %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu64 " %d%s%s\n",
                        vmm_gpu_backend_to_string(s->gpu.backend) ?: "2d", s->gpu.width, s->gpu.height,
                        s->gpu.displays, s->gpu.max_memory, s->gpu.headless, context_types[0] ? " " : "",
                        context_types);
        }
        if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

/* One SHARE= value (with a cache mode) or LIVE_SHARE= value (without);
 * a line that does not parse is left out (the share is then not listed,
 * nothing else changes). */
static void state_read_share(MachineShare *shares, unsigned *n_shares, unsigned max, bool live, const char *v) {
        char tag[MACHINE_SHARE_TAG_MAX + 1], cache[16] = "auto", *path, *o;
        int ro, n = 0, c;
        MachineShare *sh;

        if (*n_shares >= max ||
            (live ? sscanf(v, "%d %36s %n", &ro, tag, &n) != 2 :
                    sscanf(v, "%d %15s %36s %n", &ro, cache, tag, &n) != 3) || n == 0 || v[n] == '\0' ||
            !vmm_fs_tag_is_valid(tag) || (c = vmm_fs_cache_from_string(cache)) < 0)
                return;
        path = o = strdup(v + n);
        if (!path)
                return;
        for (const char *p = v + n; *p; p++) {
                unsigned x;

                if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%2x", &x) == 1 && x != 0) {
                        *o++ = (char) x;
                        p += 3;
                } else
                        *o++ = *p;
        }
        *o = 0;
        sh = &shares[(*n_shares)++];
        *sh = (MachineShare) { .fd = -EBADF, .path = path, .cache = (uint32_t) c, .read_only = ro == 1 };
        strcpy(sh->tag, tag);
}

/* The GPU= value; one that does not parse, or names values the VMM would
 * not take, is left out (the GPU is then not listed, nothing else changes). */
static void state_read_gpu(MachineStateFile *s, const char *v) {
        char backend[16];
        MachineGpu g = { .enabled = true };
        int headless, b, n = 0;

        if (sscanf(v, "%15s %" SCNu32 " %" SCNu32 " %" SCNu32 " %" SCNu64 " %d%n", backend, &g.width, &g.height,
                   &g.displays, &g.max_memory, &headless, &n) != 6 || (v[n] != '\0' && v[n] != ' ') ||
            (v[n] == ' ' && vmm_gpu_context_types_from_string(v + n + 1, &g.context_types, NULL) < 0) ||
            (b = vmm_gpu_backend_from_string(backend)) < 0 ||
            g.width < 1 || g.width > VMM_CONFIG_GPU_SIZE_MAX || g.height < 1 || g.height > VMM_CONFIG_GPU_SIZE_MAX ||
            g.displays > VMM_CONFIG_GPU_DISPLAYS_MAX ||
            g.max_memory < VMM_CONFIG_GPU_MEMORY_MIN || g.max_memory > VMM_CONFIG_GPU_MEMORY_MAX)
                return;
        if ((g.context_types & (VMM_GPU_CONTEXT_VIRGL | VMM_GPU_CONTEXT_VIRGL2)) && b != VMM_GPU_BACKEND_VIRGL)
                return;
        g.backend = (uint32_t) b;
        g.headless = headless == 1;
        s->gpu = g;
}

void machine_state_file_done(MachineStateFile *s) {
        for (unsigned i = 0; i < s->n_shares; i++)
                machine_share_done(&s->shares[i]);
        s->n_shares = 0;
        for (unsigned i = 0; i < s->n_live; i++)
                machine_share_done(&s->live[i]);
        s->n_live = 0;
        free(s->name);
        free(s->socket);
        free(s->log);
}

int machine_state_file_read(const char *path, MachineStateFile *ret) {
        _cleanup_free_ char *line = NULL;
        MachineStateFile s = { .state = -EINVAL };
        size_t size = 0;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        /* getline: a SHARE= line may be longer than PATH_MAX once escaped. */
        while (getline(&line, &size, f) > 0) {
                char *eq, *v;

                line[strcspn(line, "\n")] = 0;
                if (line[0] == '#' || !(eq = strchr(line, '=')))
                        continue;
                *eq = 0;
                v = eq + 1;
                if (strcmp(line, "NAME") == 0)
                        free(s.name), s.name = strdup(v);
                else if (strcmp(line, "SOCKET") == 0)
                        free(s.socket), s.socket = strdup(v);
                else if (strcmp(line, "LOG") == 0)
                        free(s.log), s.log = strdup(v);
                else if (strcmp(line, "STATE") == 0)
                        s.state = machine_state_from_string(v);
                else if (strcmp(line, "PID") == 0)
                        s.pid = (pid_t) strtol(v, NULL, 10);
                else if (strcmp(line, "OWNER") == 0)
                        s.owner_uid = (uid_t) strtoul(v, NULL, 10);
                else if (strcmp(line, "STARTTIME") == 0)
                        s.starttime = strtoull(v, NULL, 10);
                else if (strcmp(line, "MEMORY") == 0)
                        s.memory = strtoull(v, NULL, 10);
                else if (strcmp(line, "START_USEC") == 0)
                        s.start_usec = strtoull(v, NULL, 10);
                else if (strcmp(line, "CID") == 0)
                        s.cid = (uint32_t) strtoul(v, NULL, 10);
                else if (strcmp(line, "VCPUS") == 0)
                        s.vcpus = (uint32_t) strtoul(v, NULL, 10);
                else if (strcmp(line, "STOP_REQUESTED") == 0)
                        s.stop_requested = strcmp(v, "1") == 0;
                else if (strcmp(line, "KILL_REQUESTED") == 0)
                        s.kill_requested = strcmp(v, "1") == 0;
                else if (strcmp(line, "BALLOON") == 0)
                        s.balloon = strcmp(v, "1") == 0;
                else if (strcmp(line, "ON_PANIC") == 0)
                        s.on_panic = control_panic_action_from_string(v) == CONTROL_PANIC_PAUSE ?
                                     CONTROL_PANIC_PAUSE : CONTROL_PANIC_STOP;
                else if (strcmp(line, "GUEST_PANICKED") == 0)
                        s.guest_panicked = strcmp(v, "1") == 0;
                else if (strcmp(line, "BALLOON_TARGET") == 0)
                        s.balloon_target = strtoull(v, NULL, 10);
                else if (strcmp(line, "DISKS") == 0)
                        s.disks = (uint32_t) strtoul(v, NULL, 10);
                else if (strcmp(line, "DISKS_RO") == 0)
                        s.disks_ro = (uint32_t) strtoul(v, NULL, 10);
                else if (strcmp(line, "STOP_STEP") == 0) {
                        int step = machine_stop_step_from_string(v);

                        s.stop_step = step >= 0 ? (MachineStopStep) step : MACHINE_STOP_STEP_NONE;
                } else if (strcmp(line, "STOP_TIMEOUT_MS") == 0)
                        s.stop_timeout_ms = (uint32_t) MIN(strtoul(v, NULL, 10), (unsigned long) MACHINE_STOP_TIMEOUT_MS_MAX);
                else if (strcmp(line, "SHARE") == 0)
                        state_read_share(s.shares, &s.n_shares, MACHINE_SHARES_MAX, false, v);
                else if (strcmp(line, "LIVE_SHARE") == 0)
                        state_read_share(s.live, &s.n_live, MACHINE_LIVE_SHARES_MAX, true, v);
                else if (strcmp(line, "LIVE_SHARES") == 0)
                        s.live_shares = strcmp(v, "1") == 0;
                else if (strcmp(line, "GPU") == 0)
                        state_read_gpu(&s, v);
        }
        fclose(f);
        if (!s.name || !s.socket || s.pid <= 0) {
                machine_state_file_done(&s);
                return -EBADMSG;
        }
        *ret = s;
        return 0;
}

