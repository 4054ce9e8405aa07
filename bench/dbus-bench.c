/* SPDX-License-Identifier: BSD-3-Clause */
/* The D-Bus client of bench/dbus-bench.py: one sd-bus connection, the same
 * code for majordomed and for the peer (libvirt-dbus), so both are measured
 * alike. Three modes:
 *
 *   dbus-bench rate ADDRESS DEST PATH IFACE METHOD [s:STR|u:NUM]
 *              [-n CALLS] [-w WARMUP] [-p DEPTH]
 *     CALLS calls after WARMUP ones; DEPTH 1 is one synchronous call at a
 *     time (sd_bus_call), more keeps DEPTH asynchronous calls in flight.
 *     Prints "rate CALLS SECONDS CALLS_PER_S P50_US P99_US MAX_US ITEMS SIG"
 *     (ITEMS: elements of the first reply's top-level array, else -1).
 *
 *   dbus-bench start ADDRESS KERNEL MEMORY COUNT ROUNDS PREFIX
 *     Each round sends COUNT StartVm calls at once (names PREFIX<round>-<i>)
 *     and waits for every reply and VmStarted signal; prints one line per VM
 *     "vm ROUND NAME REPLY_MS SIGNAL_MS" (from the send of the round's first
 *     call) and "round ROUND ALL_UP_MS". With ROUNDS > 1 each round's VMs are
 *     killed (StopVm mode "kill") before the next; the last round's stay up.
 *
 *   dbus-bench vmm COUNT ROUNDS -- VMM ARGS...
 *     The VMM's own start, measured the way majordomed measures it minus
 *     its poll period: COUNT VMMs spawned at once, each with a connected
 *     control socket as fd 3 (pass "--control-fd 3" in ARGS); an `info`
 *     request is repeated back to back until the reply says running. Prints
 *     "vmm ROUND I RUNNING_MS" and "round ROUND ALL_UP_MS"; the VMMs are
 *     killed after each round.
 *
 * Exit status 0, or 1 with a message on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "common/control.h"
#include "common/macro.h"
#include "common/util.h"

#define MGR_NAME "org.majordome.VmManager1"
#define MGR_PATH "/org/majordome/VmManager1"
#define MGR_IFACE "org.majordome.VmManager1"
#define CALL_TIMEOUT_US (60ULL * 1000 * 1000)

static _noreturn_ void die(const char *what, int r) {
        fprintf(stderr, "dbus-bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static sd_bus *bus_connect(const char *address) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die("connecting to the bus", r);
        return bus;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct) {
        size_t k = (n * pct + 99) / 100;

        return v[k ? k - 1 : 0];
}

/* ---- rate ---- */

typedef struct RateCall {
        const char *dest, *path, *iface, *method;
        char arg_type;          /* 0, 's' or 'u' */
        const char *arg_s;
        uint32_t arg_u;
} RateCall;

static sd_bus_message *rate_message(sd_bus *bus, const RateCall *c) {
        sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, c->dest, c->path, c->iface, c->method);
        if (r >= 0 && c->arg_type == 's')
                r = sd_bus_message_append(m, "s", c->arg_s);
        else if (r >= 0 && c->arg_type == 'u')
                r = sd_bus_message_append(m, "u", c->arg_u);
        if (r < 0)
                die("building a call", r);
        return m;
}

static void check_reply(sd_bus_message *reply, const sd_bus_error *error) {
        if (sd_bus_error_is_set(error)) {
                fprintf(stderr, "dbus-bench: call failed: %s: %s\n", error->name, error->message);
                exit(1);
        }
        if (reply && sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                fprintf(stderr, "dbus-bench: call failed: %s: %s\n", e->name, e->message);
                exit(1);
        }
}

/* Elements of the reply's first argument when it is an array, else -1. */
static long reply_items(sd_bus_message *reply) {
        const char *contents;
        char type;
        long n = 0;
        int r;

        if (sd_bus_message_rewind(reply, true) < 0 ||
            sd_bus_message_peek_type(reply, &type, &contents) <= 0 || type != 'a')
                return -1;
        if (sd_bus_message_enter_container(reply, 'a', contents) < 0)
                return -1;
        while ((r = sd_bus_message_skip(reply, contents)) > 0)
                n++;
        return r < 0 ? -1 : n;
}

typedef struct Pipeline {
        uint64_t *lat;          /* per timed call, ns */
        uint64_t *sent;         /* send time per call index */
        size_t done, total, warmup;
} Pipeline;

typedef struct AsyncSlot {
        Pipeline *p;
        size_t index;
} AsyncSlot;

static int on_rate_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        AsyncSlot *s = userdata;
        uint64_t t = now_ns();

        check_reply(m, NULL);
        if (s->index >= s->p->warmup)
                s->p->lat[s->index - s->p->warmup] = t - s->p->sent[s->index];
        s->p->done++;
        free(s);
        return 0;
}

static int cmd_rate(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        RateCall c = {};
        size_t n = 2000, warmup = 200, depth = 1;
        uint64_t *lat, t0 = 0, t1;
        long items = -1;
        char sig[64] = "";
        int opt, r;

        while ((opt = getopt(argc, argv, "+n:w:p:")) >= 0) {
                switch (opt) {
                case 'n': n = strtoul(optarg, NULL, 10); break;
                case 'w': warmup = strtoul(optarg, NULL, 10); break;
                case 'p': depth = strtoul(optarg, NULL, 10); break;
                default: return 1;
                }
        }
        if (argc - optind < 5 || n == 0 || depth == 0) {
                fprintf(stderr, "usage: dbus-bench rate [-n N] [-w W] [-p DEPTH] ADDRESS DEST PATH IFACE METHOD [s:STR|u:NUM]\n");
                return 1;
        }
        c.dest = argv[optind + 1];
        c.path = argv[optind + 2];
        c.iface = argv[optind + 3];
        c.method = argv[optind + 4];
        if (argc - optind > 5) {
                const char *a = argv[optind + 5];
                if (strncmp(a, "s:", 2) == 0) {
                        c.arg_type = 's';
                        c.arg_s = a + 2;
                } else if (strncmp(a, "u:", 2) == 0) {
                        c.arg_type = 'u';
                        c.arg_u = (uint32_t) strtoul(a + 2, NULL, 0);
                } else {
                        fprintf(stderr, "dbus-bench: argument must be s:STR or u:NUM\n");
                        return 1;
                }
        }
        bus = bus_connect(argv[optind]);
        lat = calloc(n, sizeof(*lat));
        if (!lat)
                die("calloc", -ENOMEM);

        if (depth == 1) {
                for (size_t i = 0; i < warmup + n; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        uint64_t s;

                        if (i == warmup)
                                t0 = now_ns();
                        s = now_ns();
                        m = rate_message(bus, &c);
                        r = sd_bus_call(bus, m, CALL_TIMEOUT_US, &error, &reply);
                        check_reply(reply, &error);
                        if (r < 0)
                                die("call", r);
                        if (i >= warmup)
                                lat[i - warmup] = now_ns() - s;
                        if (i == 0) {
                                snprintf(sig, sizeof(sig), "%s", sd_bus_message_get_signature(reply, true) ?: "");
                                items = reply_items(reply);
                        }
                }
        } else {
                Pipeline p = { .lat = lat, .total = warmup + n, .warmup = warmup };
                size_t next = 0;

                p.sent = calloc(p.total, sizeof(*p.sent));
                if (!p.sent)
                        die("calloc", -ENOMEM);
                while (p.done < p.total) {
                        while (next < p.total && next - p.done < depth) {
                                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                                AsyncSlot *s = malloc(sizeof(*s));

                                if (!s)
                                        die("malloc", -ENOMEM);
                                *s = (AsyncSlot) { .p = &p, .index = next };
                                if (next == warmup)
                                        t0 = now_ns();
                                p.sent[next] = now_ns();
                                m = rate_message(bus, &c);
                                r = sd_bus_call_async(bus, NULL, m, on_rate_reply, s, CALL_TIMEOUT_US);
                                if (r < 0)
                                        die("async call", r);
                                next++;
                        }
                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                die("processing the bus", r);
                        if (r == 0) {
                                r = sd_bus_wait(bus, UINT64_MAX);
                                if (r < 0)
                                        die("waiting on the bus", r);
                        }
                }
                free(p.sent);
                snprintf(sig, sizeof(sig), "-");
        }
        t1 = now_ns();
        qsort(lat, n, sizeof(*lat), cmp_u64);
        printf("rate %zu %.6f %.1f %.1f %.1f %.1f %ld %s\n", n, (t1 - t0) / 1e9, n / ((t1 - t0) / 1e9),
               percentile(lat, n, 50) / 1e3, percentile(lat, n, 99) / 1e3, lat[n - 1] / 1e3, items,
               sig[0] ? sig : "-");
        free(lat);
        return 0;
}

/* ---- start ---- */

typedef struct StartVm {
        char name[64];
        uint64_t t_reply, t_signal;
        bool failed;
} StartVm;

typedef struct StartRound {
        StartVm *vms;
        size_t n;
        uint64_t t0;
} StartRound;

static StartVm *round_find(StartRound *rd, const char *name) {
        for (size_t i = 0; i < rd->n; i++)
                if (strcmp(rd->vms[i].name, name) == 0)
                        return &rd->vms[i];
        return NULL;
}

static int on_vm_started(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        StartRound *rd = userdata;
        const char *name;
        StartVm *vm;

        if (sd_bus_message_read(m, "s", &name) < 0)
                return 0;
        vm = round_find(rd, name);
        if (vm && vm->t_signal == 0)
                vm->t_signal = now_ns();
        return 0;
}

static int on_vm_stopped(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        StartRound *rd = userdata;
        const char *name, *reason;
        StartVm *vm;

        if (sd_bus_message_read(m, "sos", &name, NULL, &reason) < 0)
                return 0;
        vm = round_find(rd, name);
        if (vm && vm->t_signal == 0) {
                fprintf(stderr, "dbus-bench: VM %s stopped while starting (%s)\n", name, reason);
                exit(1);
        }
        return 0;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        StartVm *vm = userdata;

        check_reply(m, NULL);
        vm->t_reply = now_ns();
        return 0;
}

static void stop_vm(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, MGR_NAME, MGR_PATH, MGR_IFACE, "StopVm", &error, &reply,
                               "ssu", name, "kill", (uint32_t) 0);
        check_reply(reply, &error);
        if (r < 0)
                die("StopVm", r);
}

static int cmd_start(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *kernel, *prefix;
        uint64_t memory;
        size_t count, rounds;
        StartRound rd = {};
        int r;

        if (argc != 7) {
                fprintf(stderr, "usage: dbus-bench start ADDRESS KERNEL MEMORY COUNT ROUNDS PREFIX\n");
                return 1;
        }
        kernel = argv[2];
        memory = strtoull(argv[3], NULL, 10);
        count = strtoul(argv[4], NULL, 10);
        rounds = strtoul(argv[5], NULL, 10);
        prefix = argv[6];
        bus = bus_connect(argv[1]);
        rd.vms = calloc(count, sizeof(*rd.vms));
        if (!rd.vms || count == 0)
                die("calloc", -ENOMEM);
        rd.n = count;
        r = sd_bus_match_signal(bus, NULL, MGR_NAME, MGR_PATH, MGR_IFACE, "VmStarted", on_vm_started, &rd);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, MGR_NAME, MGR_PATH, MGR_IFACE, "VmStopped", on_vm_stopped, &rd);
        if (r < 0)
                die("adding signal matches", r);

        for (size_t round = 0; round < rounds; round++) {
                uint64_t all_up = 0;

                for (size_t i = 0; i < count; i++) {
                        rd.vms[i] = (StartVm) {};
                        snprintf(rd.vms[i].name, sizeof(rd.vms[i].name), "%s%zu-%zu", prefix, round, i);
                }
                rd.t0 = now_ns();
                for (size_t i = 0; i < count; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                        r = sd_bus_message_new_method_call(bus, &m, MGR_NAME, MGR_PATH, MGR_IFACE, "StartVm");
                        if (r >= 0)
                                r = sd_bus_message_append(m, "sa{sv}", rd.vms[i].name, 3,
                                                          "kernel", "s", kernel,
                                                          "memory", "t", memory,
                                                          "cpus", "u", (uint32_t) 1);
                        if (r >= 0)
                                r = sd_bus_call_async(bus, NULL, m, on_start_reply, &rd.vms[i], CALL_TIMEOUT_US);
                        if (r < 0)
                                die("StartVm", r);
                }
                for (;;) {
                        size_t missing = 0;

                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                die("processing the bus", r);
                        for (size_t i = 0; i < count; i++)
                                missing += (rd.vms[i].t_reply == 0) + (rd.vms[i].t_signal == 0);
                        if (missing == 0)
                                break;
                        if (r == 0) {
                                r = sd_bus_wait(bus, UINT64_MAX);
                                if (r < 0)
                                        die("waiting on the bus", r);
                        }
                }
                for (size_t i = 0; i < count; i++) {
                        StartVm *vm = &rd.vms[i];
                        uint64_t up = vm->t_reply > vm->t_signal ? vm->t_reply : vm->t_signal;

                        if (up > all_up)
                                all_up = up;
                        printf("vm %zu %s %.3f %.3f\n", round, vm->name, (vm->t_reply - rd.t0) / 1e6,
                               (vm->t_signal - rd.t0) / 1e6);
                }
                printf("round %zu %.3f\n", round, (all_up - rd.t0) / 1e6);
                fflush(stdout);
                if (round + 1 < rounds)
                        for (size_t i = 0; i < count; i++)
                                stop_vm(bus, rd.vms[i].name);
        }
        free(rd.vms);
        return 0;
}

/* ---- vmm ---- */

typedef struct DirectVmm {
        pid_t pid;
        int fd;
        uint64_t t_running;
        uint32_t id;
} DirectVmm;

static int send_info(DirectVmm *v) {
        ControlHeader h = {
                .magic = CONTROL_MAGIC,
                .version = CONTROL_VERSION,
                .type = CONTROL_TYPE_INFO,
                .id = ++v->id,
        };

        return control_send(v->fd, &h, NULL, NULL, 0);
}

static int cmd_vmm(int argc, char **argv) {
        size_t count, rounds;
        char **vmm_argv;
        DirectVmm *v;
        struct pollfd *pfd;
        int r;

        if (argc < 5 || strcmp(argv[3], "--") != 0) {
                fprintf(stderr, "usage: dbus-bench vmm COUNT ROUNDS -- VMM ARGS...\n");
                return 1;
        }
        count = strtoul(argv[1], NULL, 10);
        rounds = strtoul(argv[2], NULL, 10);
        vmm_argv = argv + 4;
        v = calloc(count, sizeof(*v));
        pfd = calloc(count, sizeof(*pfd));
        if (!v || !pfd || count == 0)
                die("calloc", -ENOMEM);

        for (size_t round = 0; round < rounds; round++) {
                uint64_t t0, all_up = 0;
                size_t up = 0;

                t0 = now_ns();
                for (size_t i = 0; i < count; i++) {
                        int pair[2];

                        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                                die("socketpair", -errno);
                        v[i] = (DirectVmm) { .fd = pair[0] };
                        v[i].pid = fork();
                        if (v[i].pid < 0)
                                die("fork", -errno);
                        if (v[i].pid == 0) {
                                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

                                /* The VMM's own session, like majordomed's children. */
                                (void) setsid();
                                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
                                    dup2(pair[1], 3) < 0)
                                        _exit(71);
                                execv(vmm_argv[0], vmm_argv);
                                _exit(127);
                        }
                        close(pair[1]);
                        /* As majordomed does: the first request right after the spawn. */
                        r = send_info(&v[i]);
                        if (r < 0)
                                die("info request", r);
                        pfd[i] = (struct pollfd) { .fd = v[i].fd, .events = POLLIN };
                }
                while (up < count) {
                        if (poll(pfd, count, 30000) <= 0)
                                die("waiting for the VMMs", errno ? -errno : -ETIMEDOUT);
                        for (size_t i = 0; i < count; i++) {
                                static ControlDatagram d;
                                ControlHeader h;
                                ControlInfo info;

                                if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                        continue;
                                r = control_receive(v[i].fd, &d);
                                if (r == -EAGAIN)
                                        continue;
                                if (r < 0) {
                                        fprintf(stderr, "dbus-bench: VMM %zu hung up before running\n", i);
                                        exit(1);
                                }
                                control_datagram_close_fds(&d);
                                if (control_header_decode(d.data, d.len, &h) < 0 || h.status != 0 ||
                                    control_info_decode(d.data + CONTROL_HEADER_SIZE, d.len - CONTROL_HEADER_SIZE,
                                                        &info) < 0) {
                                        fprintf(stderr, "dbus-bench: VMM %zu: bad info reply\n", i);
                                        exit(1);
                                }
                                if (info.state == CONTROL_STATE_STARTING) {
                                        r = send_info(&v[i]);
                                        if (r < 0)
                                                die("info request", r);
                                        continue;
                                }
                                v[i].t_running = now_ns();
                                pfd[i].fd = -1;
                                up++;
                        }
                }
                for (size_t i = 0; i < count; i++) {
                        if (v[i].t_running > all_up)
                                all_up = v[i].t_running;
                        printf("vmm %zu %zu %.3f\n", round, i, (v[i].t_running - t0) / 1e6);
                        (void) kill(v[i].pid, SIGKILL);
                }
                for (size_t i = 0; i < count; i++) {
                        (void) waitpid(v[i].pid, NULL, 0);
                        close(v[i].fd);
                }
                printf("round %zu %.3f\n", round, (all_up - t0) / 1e6);
                fflush(stdout);
        }
        free(v);
        free(pfd);
        return 0;
}

int main(int argc, char **argv) {
        /* A VMM that dies between our info requests must not kill us. */
        (void) signal(SIGPIPE, SIG_IGN);
        if (argc >= 2 && strcmp(argv[1], "rate") == 0)
                return cmd_rate(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "start") == 0)
                return cmd_start(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "vmm") == 0)
                return cmd_vmm(argc - 1, argv + 1);
        fprintf(stderr, "usage: dbus-bench rate|start|vmm ... (see the comment at the top of bench/dbus-bench.c)\n");
        return 1;
}
