/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "vmm/control-client.h"
#include "common/control.h"
#include "common/macro.h"
#include "common/util.h"

#define PROGRAM "majordome-vmm"

bool control_client_is_verb(const char *verb) {
        return control_type_from_string(verb) > 0;
}

static void usage(FILE *f) {
        fprintf(f,
                "Usage: " PROGRAM " info [--json] [--timeout=SEC] SOCKET\n"
                "       " PROGRAM " pause|resume [--timeout=SEC] SOCKET\n"
                "       " PROGRAM " stop [--wait] [--timeout=SEC] SOCKET\n"
                "       " PROGRAM " disk-resize [--timeout=SEC] SOCKET INDEX SIZE\n"
                "       " PROGRAM " balloon [--timeout=SEC] SOCKET SIZE\n"
                "       " PROGRAM " balloon-stats [--json] [--timeout=SEC] SOCKET\n"
                "\n"
                "Talks to a running " PROGRAM " over its control socket.\n"
                "disk-resize INDEX SIZE grows or shrinks the INDEX-th --block disk (from 0)\n"
                "and its image file to SIZE (bytes or 512M, 2G ...; whole 512-byte sectors).\n"
                "balloon SIZE sets how much RAM the guest gives back (512M, 1G ...).\n"
                "\n"
                "  -j --json         print info or balloon-stats as one JSON object\n"
                "  -w --wait         after stop, wait until the VMM has exited\n"
                "  -t --timeout=SEC  give up after SEC seconds (default %d)\n"
                "  -h --help         show this help\n"
                "\n"
                "Exit status: 0 success, 1 the VMM refused the request,\n"
                "2 usage error, 3 cannot connect or no reply in time.\n",
                CONTROL_TIMEOUT_MS_DEFAULT / 1000);
}

/* Why a request failed, in words, for the errno conventions of
 * docs/control-protocol.md; NULL when strerror() alone says it best. */
static const char *status_phrase(int type, int status) {
        switch (-status) {
        case EALREADY:
                switch (type) {
                case CONTROL_TYPE_PAUSE:
                        return "VM is already paused";
                case CONTROL_TYPE_RESUME:
                        return "VM is already running";
                case CONTROL_TYPE_STOP:
                        return "VM is already stopping";
                }
                return "already done";
        case EPERM:
                switch (type) {
                case CONTROL_TYPE_PAUSE:
                        return "VM is not running";
                case CONTROL_TYPE_RESUME:
                        return "VM is not paused";
                }
                return "not allowed in the VM's current state";
        case ESHUTDOWN:
                return "VM is stopping";
        case EOPNOTSUPP:
                return "this VMM does not support the command";
        case ENODEV:
                switch (type) {
                case CONTROL_TYPE_DISK_RESIZE:
                        return "the VM has no block device of that index (--block)";
                case CONTROL_TYPE_BALLOON:
                case CONTROL_TYPE_BALLOON_STATS:
                        return "the VM has no balloon device (--balloon)";
                }
                return NULL;
        case EROFS:
                return "the disk is read-only";
        case EBADMSG:
                return "the VMM rejected the request as malformed";
        case EMSGSIZE:
                return "request too large";
        case EUSERS:
                return "too many clients on the control socket";
        case EACCES:
                return "the VMM serves only the user that started it and root";
        }
        return NULL;
}

static void print_balloon_stats(const ControlBalloonStats *s, bool json) {
        char size[32];

        if (json) {
                printf("{\"target_bytes\":%" PRIu64 ",\"actual_bytes\":%" PRIu64 ",\"inflated_bytes\":%" PRIu64
                       ",\"stats_valid\":%s,\"stats_fresh\":%s",
                       s->target_bytes, s->actual_bytes, s->inflated_bytes,
                       s->flags & CONTROL_BALLOON_STATS_VALID ? "true" : "false",
                       s->flags & CONTROL_BALLOON_STATS_FRESH ? "true" : "false");
                if (s->flags & CONTROL_BALLOON_STATS_VALID)
                        printf(",\"stats_age_ns\":%" PRIu64, s->stats_age_ns);
                printf(",\"stats\":{");
                for (uint32_t i = 0; i < s->n_stats; i++) {
                        const char *name = control_balloon_stat_to_string(s->stats[i].tag);

                        /* Names are fixed ASCII words; unknown tags by number. */
                        if (name)
                                printf("%s\"%s\":%" PRIu64, i ? "," : "", name, s->stats[i].value);
                        else
                                printf("%s\"%u\":%" PRIu64, i ? "," : "", s->stats[i].tag, s->stats[i].value);
                }
                printf("}}\n");
                return;
        }

        format_size(size, sizeof(size), s->target_bytes);
        printf("Target:   %s\n", size);
        format_size(size, sizeof(size), s->actual_bytes);
        printf("Actual:   %s\n", size);
        format_size(size, sizeof(size), s->inflated_bytes);
        printf("Inflated: %s\n", size);
        if (!(s->flags & CONTROL_BALLOON_STATS_VALID)) {
                printf("Stats:    none from the guest yet\n");
                return;
        }
        printf("Stats:    %s, %" PRIu64 " ms old\n",
               s->flags & CONTROL_BALLOON_STATS_FRESH ? "fresh" : "the guest did not answer in time; last known",
               s->stats_age_ns / 1000000);
        for (uint32_t i = 0; i < s->n_stats; i++) {
                const char *name = control_balloon_stat_to_string(s->stats[i].tag);

                if (name)
                        printf("  %-20s %" PRIu64 "\n", name, s->stats[i].value);
                else
                        printf("  %-20u %" PRIu64 "\n", s->stats[i].tag, s->stats[i].value);
        }
}

static void format_uptime(char *buf, size_t n, uint64_t ns) {
        uint64_t s = ns / UINT64_C(1000000000);
        uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;

        if (d > 0)
                snprintf(buf, n, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "min %" PRIu64 "s", d, h, m, sec);
        else if (h > 0)
                snprintf(buf, n, "%" PRIu64 "h %" PRIu64 "min %" PRIu64 "s", h, m, sec);
        else if (m > 0)
                snprintf(buf, n, "%" PRIu64 "min %" PRIu64 "s", m, sec);
        else
                snprintf(buf, n, "%" PRIu64 ".%03" PRIu64 "s", sec, ns / 1000000 % 1000);
}

static void print_info(const ControlInfo *info, bool json) {
        const char *state = control_state_to_string(info->state);
        char size[32], uptime[64];

        if (json) {
                /* state names are fixed ASCII words: no escaping needed. */
                if (state)
                        printf("{\"state\":\"%s\"", state);
                else
                        printf("{\"state\":%" PRIu32, info->state);
                printf(",\"vcpus\":%" PRIu32 ",\"memory_bytes\":%" PRIu64
                       ",\"uptime_ns\":%" PRIu64 ",\"pid\":%" PRIu32 "}\n",
                       info->vcpus, info->memory_bytes, info->uptime_ns, info->pid);
                return;
        }

        format_size(size, sizeof(size), info->memory_bytes);
        format_uptime(uptime, sizeof(uptime), info->uptime_ns);
        if (state)
                printf("State:  %s\n", state);
        else
                printf("State:  unknown (%" PRIu32 ")\n", info->state);
        printf("vCPUs:  %" PRIu32 "\n"
               "Memory: %s\n"
               "Uptime: %s\n"
               "PID:    %" PRIu32 "\n",
               info->vcpus, size, uptime, info->pid);
}

/* After a successful stop: the VMM closes the socket when it exits. */
static int wait_for_hangup(int fd, uint64_t deadline_ns) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = now_ns();
                ControlDatagram d;
                int r;

                if (now >= deadline_ns)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) MIN((deadline_ns - now + 999999) / 1000000, (uint64_t) INT32_MAX));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;

                r = control_receive(fd, &d);
                if (r == -ECONNRESET)
                        return 0;
                if (r == -EAGAIN || r == -EINTR)
                        continue;
                if (r < 0)
                        return r;
                /* Nothing is expected now; drop it and keep waiting. */
                control_datagram_close_fds(&d);
        }
}

int control_client_main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "wait", no_argument, NULL, 'w' },
                { "timeout", required_argument, NULL, 't' },
                {}
        };
        _cleanup_close_ int fd = -EBADF;
        uint64_t timeout_s = CONTROL_TIMEOUT_MS_DEFAULT / 1000, deadline_ns;
        bool json = false, wait = false;
        uint8_t request[16];
        size_t request_len = 0;
        uint64_t size = 0;
        const char *verb, *path;
        ControlReply reply;
        int type, c, r;

        if (argc < 1 || !argv[0])
                return CONTROL_CLIENT_EXIT_USAGE;
        verb = argv[0];
        type = control_type_from_string(verb);
        if (type < 0) {
                fprintf(stderr, PROGRAM ": unknown verb '%s'\n", verb);
                return CONTROL_CLIENT_EXIT_USAGE;
        }

        /* optind = 0 makes glibc re-initialize getopt, so this can run twice
         * in one process (the tests do). */
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "hjwt:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return CONTROL_CLIENT_EXIT_SUCCESS;
                case 'j':
                        if (type != CONTROL_TYPE_INFO && type != CONTROL_TYPE_BALLOON_STATS) {
                                fprintf(stderr, PROGRAM ": %s: --json is only for info and balloon-stats\n", verb);
                                return CONTROL_CLIENT_EXIT_USAGE;
                        }
                        json = true;
                        break;
                case 'w':
                        if (type != CONTROL_TYPE_STOP) {
                                fprintf(stderr, PROGRAM ": %s: --wait is only for stop\n", verb);
                                return CONTROL_CLIENT_EXIT_USAGE;
                        }
                        wait = true;
                        break;
                case 't':
                        r = parse_uint(optarg, 1, 3600, &timeout_s);
                        if (r < 0) {
                                fprintf(stderr, PROGRAM ": %s: invalid --timeout '%s': expected 1..3600 seconds\n",
                                        verb, optarg);
                                return CONTROL_CLIENT_EXIT_USAGE;
                        }
                        break;
                default:
                        fprintf(stderr, PROGRAM ": %s: unknown option '%s'\n", verb, argv[optind - 1]);
                        return CONTROL_CLIENT_EXIT_USAGE;
                }
        }

        if (type == CONTROL_TYPE_DISK_RESIZE) {
                uint64_t index;

                if (argc - optind != 3) {
                        fprintf(stderr, PROGRAM ": %s: expected SOCKET, INDEX and SIZE arguments\n", verb);
                        usage(stderr);
                        return CONTROL_CLIENT_EXIT_USAGE;
                }
                r = parse_uint(argv[optind + 1], 0, UINT32_MAX, &index);
                if (r < 0) {
                        fprintf(stderr, PROGRAM ": %s: invalid INDEX '%s': expected 0, 1, ...\n", verb,
                                argv[optind + 1]);
                        return CONTROL_CLIENT_EXIT_USAGE;
                }
                r = parse_size(argv[optind + 2], &size);
                if (r < 0 || size == 0 || size % 512) {
                        fprintf(stderr, PROGRAM ": %s: invalid SIZE '%s': expected a multiple of 512 bytes, e.g. 2G\n",
                                verb, argv[optind + 2]);
                        return CONTROL_CLIENT_EXIT_USAGE;
                }
                request_len = control_disk_resize_request_encode((uint32_t) index, size, request);
        } else if (type == CONTROL_TYPE_BALLOON) {
                if (argc - optind != 2) {
                        fprintf(stderr, PROGRAM ": %s: expected SOCKET and SIZE arguments\n", verb);
                        usage(stderr);
                        return CONTROL_CLIENT_EXIT_USAGE;
                }
                r = parse_size(argv[optind + 1], &size);
                if (r < 0) {
                        fprintf(stderr, PROGRAM ": %s: invalid SIZE '%s': expected bytes or 512K, 256M, 1G ...\n",
                                verb, argv[optind + 1]);
                        return CONTROL_CLIENT_EXIT_USAGE;
                }
                request_len = control_balloon_request_encode(size, request);
        } else if (argc - optind != 1) {
                fprintf(stderr, PROGRAM ": %s: expected exactly one SOCKET argument\n", verb);
                usage(stderr);
                return CONTROL_CLIENT_EXIT_USAGE;
        }
        if (type == CONTROL_TYPE_BALLOON_STATS)
                /* Leave the VMM time to answer within our own timeout. */
                request_len = control_balloon_stats_request_encode(
                        (uint32_t) MIN(timeout_s * 1000 / 2, (uint64_t) CONTROL_BALLOON_STATS_TIMEOUT_MAX_MS), request);
        path = argv[optind];

        r = control_connect(path, &fd);
        if (r < 0) {
                fprintf(stderr, PROGRAM ": %s: cannot connect to %s (%s)\n", verb, path, strerror(-r));
                return CONTROL_CLIENT_EXIT_CONNECT;
        }

        deadline_ns = now_ns() + timeout_s * UINT64_C(1000000000);
        /* One request per connection: any id will do. */
        r = control_call(fd, (uint16_t) type, 1, request, request_len, NULL, 0, (int) (timeout_s * 1000), &reply);
        if (r == -ETIMEDOUT) {
                fprintf(stderr, PROGRAM ": %s: no reply from the VMM within %" PRIu64 " s\n", verb, timeout_s);
                return CONTROL_CLIENT_EXIT_CONNECT;
        }
        if (r < 0) {
                fprintf(stderr, PROGRAM ": %s: no valid reply from the VMM (%s)\n", verb, strerror(-r));
                return CONTROL_CLIENT_EXIT_CONNECT;
        }

        if (reply.status < 0) {
                const char *phrase = status_phrase(type, reply.status);

                if (reply.status == -EPROTO && reply.version != CONTROL_VERSION)
                        fprintf(stderr, PROGRAM ": %s: the VMM speaks control protocol version %u, this client %u (%s)\n",
                                verb, reply.version, CONTROL_VERSION, strerror(EPROTO));
                else if (phrase)
                        fprintf(stderr, PROGRAM ": %s: %s (%s)\n", verb, phrase, strerror(-reply.status));
                else
                        fprintf(stderr, PROGRAM ": %s: request failed (%s)\n", verb, strerror(-reply.status));
                return CONTROL_CLIENT_EXIT_FAILED;
        }

        if (type == CONTROL_TYPE_INFO) {
                ControlInfo info;

                r = control_info_decode(reply.payload, reply.length, &info);
                if (r < 0) {
                        fprintf(stderr, PROGRAM ": %s: malformed reply from the VMM (%s)\n", verb, strerror(-r));
                        return CONTROL_CLIENT_EXIT_CONNECT;
                }
                print_info(&info, json);
        }

        if (type == CONTROL_TYPE_BALLOON_STATS) {
                ControlBalloonStats stats;

                r = control_balloon_stats_decode(reply.payload, reply.length, &stats);
                if (r < 0) {
                        fprintf(stderr, PROGRAM ": %s: malformed reply from the VMM (%s)\n", verb, strerror(-r));
                        return CONTROL_CLIENT_EXIT_CONNECT;
                }
                print_balloon_stats(&stats, json);
        }

        if (wait) {
                r = wait_for_hangup(fd, deadline_ns);
                if (r == -ETIMEDOUT) {
                        fprintf(stderr, PROGRAM ": %s: the VMM did not exit within %" PRIu64 " s\n", verb, timeout_s);
                        return CONTROL_CLIENT_EXIT_CONNECT;
                }
                if (r < 0) {
                        fprintf(stderr, PROGRAM ": %s: waiting for the VMM to exit failed (%s)\n", verb, strerror(-r));
                        return CONTROL_CLIENT_EXIT_CONNECT;
                }
        }

        if (fflush(stdout) != 0) {
                fprintf(stderr, PROGRAM ": %s: cannot write output (%s)\n", verb, strerror(errno));
                return CONTROL_CLIENT_EXIT_FAILED;
        }
        return CONTROL_CLIENT_EXIT_SUCCESS;
}
