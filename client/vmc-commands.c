/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Before glib's headers, which #undef and redefine MIN and MAX. */
#include "common/macro.h"

#include <gio/gunixfdlist.h>

#include "client/vmc-commands.h"
#include "client/vmc-format.h"

/* "start demo", "list": what an error line is about. */
static char *error_context(const VmcArgs *a) {
        const char *cmd = vmc_command_to_string(a->command);

        return a->name ? g_strdup_printf("%s %s", cmd, a->name) : g_strdup(cmd);
}

static int fail(const VmcArgs *a, int exit_code, const char *text) {
        g_autofree char *context = error_context(a);
        /* The text may quote the daemon, which may quote the VMM or a
         * guest: never a raw escape on the user's terminal. */
        g_autofree char *safe = vmc_escape_text(text);

        fprintf(stderr, "vmc: %s: %s\n", context, safe);
        return exit_code;
}

/* Prints a failed call's error as one line; returns the exit code. */
static int fail_gerror(const VmcArgs *a, GError *error) {
        g_autofree char *remote = g_dbus_error_get_remote_error(error);
        g_autofree char *text = NULL;
        int exit_code;

        if (remote) {
                g_dbus_error_strip_remote_error(error);
                exit_code = vmc_error_describe(remote, error->message, a->name, &text);
        } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
                text = g_strdup("no reply from majordomed in time");
                exit_code = VMC_EXIT_UNREACHABLE;
        } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED)) {
                text = g_strdup("disconnected from the bus");
                exit_code = VMC_EXIT_UNREACHABLE;
        } else
                exit_code = vmc_error_describe(NULL, error->message, a->name, &text);
        return fail(a, exit_code, text);
}

int vmc_connect(const VmcArgs *args, GDBusConnection **ret) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *bus;
        const char *what;
        GBusType type;

        if (args->bus == VMC_BUS_ADDRESS) {
                what = args->address;
                bus = g_dbus_connection_new_for_address_sync(
                                args->address,
                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                NULL, NULL, &error);
        } else {
                if (args->bus == VMC_BUS_SYSTEM || (args->bus == VMC_BUS_DEFAULT && geteuid() == 0))
                        type = G_BUS_TYPE_SYSTEM, what = "the system bus";
                else
                        type = G_BUS_TYPE_SESSION, what = "the session bus";
                bus = g_bus_get_sync(type, NULL, &error);
        }
        if (!bus) {
                fprintf(stderr, "vmc: cannot connect to %s: %s\n", what, error->message);
                return VMC_EXIT_UNREACHABLE;
        }
        /* GDBus would otherwise raise SIGTERM on ourselves when the bus
         * goes away; we want to say so and exit 3. */
        g_dbus_connection_set_exit_on_close(bus, FALSE);
        *ret = bus;
        return VMC_EXIT_OK;
}

/* Mutating calls may need polkit on the system bus: let it ask. */
#define MUTATING G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION

static GVariant *call_manager(GDBusConnection *bus, const char *method, GVariant *params,
                              const char *reply_type, GDBusCallFlags flags, int timeout_ms, GError **error) {
        return g_dbus_connection_call_sync(bus, VMC_BUS_NAME, VMC_MANAGER_PATH, VMC_MANAGER_INTERFACE,
                                           method, params, G_VARIANT_TYPE(reply_type), flags,
                                           timeout_ms, NULL, error);
}

static GVariant *call_vm(GDBusConnection *bus, const char *name, const char *method, GVariant *params,
                         const char *reply_type, GError **error) {
        g_autofree char *path = vmc_vm_object_path(name);

        return g_dbus_connection_call_sync(bus, VMC_BUS_NAME, path, VMC_VM_INTERFACE,
                                           method, params, G_VARIANT_TYPE(reply_type), MUTATING,
                                           VMC_CALL_TIMEOUT_MS, NULL, error);
}

/* One share as an a{sv}: StartVm's shares[i] (with its path) or
 * ShareDirectory's options (without). */
static GVariant *share_options(const VmcShare *s, bool with_path) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        if (with_path)
                g_variant_builder_add(&b, "{sv}", "path", g_variant_new_string(s->path));
        if (s->tag)
                g_variant_builder_add(&b, "{sv}", "tag", g_variant_new_string(s->tag));
        if (s->read_only)
                g_variant_builder_add(&b, "{sv}", "read_only", g_variant_new_boolean(true));
        if (s->cache)
                g_variant_builder_add(&b, "{sv}", "cache", g_variant_new_string(s->cache));
        return g_variant_builder_end(&b);
}

typedef enum FileKind {
        FILE_REGULAR,          /* kernel, initrd */
        FILE_REGULAR_OR_BLOCK, /* disks */
        FILE_ANY,              /* serial log: a file, pipe, socket or tty */
} FileKind;

/* Opens a file for the daemon and checks its kind, so a wrong file is
 * named here rather than refused by the daemon without the path. */
static int open_for_daemon(const char *what, const char *path, int flags, FileKind kind,
                           GUnixFDList *fds, char **ret_error) {
        bool allow_block = kind == FILE_REGULAR_OR_BLOCK;
        g_autoptr(GError) error = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int idx;

        fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
                *ret_error = g_strdup_printf("cannot open %s '%s': %s", what, path, g_strerror(errno));
                return -errno;
        }
        if (fstat(fd, &st) < 0) {
                *ret_error = g_strdup_printf("cannot stat %s '%s': %s", what, path, g_strerror(errno));
                return -errno;
        }
        if (S_ISDIR(st.st_mode) ||
            (kind != FILE_ANY && !S_ISREG(st.st_mode) && !(allow_block && S_ISBLK(st.st_mode)))) {
                *ret_error = g_strdup_printf("%s '%s' is not a %s", what, path,
                                             kind == FILE_ANY ? "file, pipe, socket or device" :
                                             allow_block ? "regular file or block device" : "regular file");
                return -EINVAL;
        }
        idx = g_unix_fd_list_append(fds, fd, &error); /* dups fd */
        if (idx < 0) {
                *ret_error = g_strdup_printf("cannot pass %s '%s': %s", what, path, error->message);
                return -EIO;
        }
        return idx;
}

GVariant *vmc_start_parameters(const VmcArgs *a, GUnixFDList **ret_fds, char **ret_error) {
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
        g_auto(GVariantBuilder) config = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        int idx;

        idx = open_for_daemon("kernel", a->kernel, O_RDONLY, FILE_REGULAR, fds, ret_error);
        if (idx < 0)
                return NULL;
        g_variant_builder_add(&config, "{sv}", VMC_KEY_KERNEL, g_variant_new_handle(idx));

        if (a->initrd) {
                idx = open_for_daemon("initrd", a->initrd, O_RDONLY, FILE_REGULAR, fds, ret_error);
                if (idx < 0)
                        return NULL;
                g_variant_builder_add(&config, "{sv}", VMC_KEY_INITRD, g_variant_new_handle(idx));
        }
        if (a->cmdline)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_CMDLINE, g_variant_new_string(a->cmdline));
        if (a->memory > 0)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_MEMORY, g_variant_new_uint64(a->memory));
        if (a->cpus > 0)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_CPUS, g_variant_new_uint32(a->cpus));
        if (a->memory_max > 0)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_MEMORY_MAX, g_variant_new_uint64(a->memory_max));
        if (a->cpu_weight > 0)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_CPU_WEIGHT, g_variant_new_uint64(a->cpu_weight));
        if (a->serial_log) {
                /* Appended, like the daemon's own log, and created with the
                 * caller's umask: it is the caller's file. */
                idx = open_for_daemon("serial log", a->serial_log, O_WRONLY | O_CREAT | O_APPEND, FILE_ANY,
                                      fds, ret_error);
                if (idx < 0)
                        return NULL;
                g_variant_builder_add(&config, "{sv}", VMC_KEY_SERIAL_LOG, g_variant_new_handle(idx));
        }
        if (a->debug_exit)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_DEBUG_EXIT, g_variant_new_boolean(true));
        if (a->n_disks > 0) {
                GVariantBuilder disks;

                g_variant_builder_init(&disks, G_VARIANT_TYPE("aa{sv}"));
                for (size_t i = 0; i < a->n_disks; i++) {
                        GVariantBuilder disk;

                        idx = open_for_daemon("disk", a->disks[i].path,
                                              a->disks[i].read_only ? O_RDONLY : O_RDWR, FILE_REGULAR_OR_BLOCK,
                                              fds, ret_error);
                        if (idx < 0) {
                                g_variant_builder_clear(&disks);
                                return NULL;
                        }
                        g_variant_builder_init(&disk, G_VARIANT_TYPE_VARDICT);
                        g_variant_builder_add(&disk, "{sv}", "fd", g_variant_new_handle(idx));
                        g_variant_builder_add(&disk, "{sv}", "read_only", g_variant_new_boolean(a->disks[i].read_only));
                        g_variant_builder_add_value(&disks, g_variant_builder_end(&disk));
                }
                g_variant_builder_add(&config, "{sv}", VMC_KEY_DISKS, g_variant_builder_end(&disks));
        }
        if (a->vsock)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_VSOCK, g_variant_new_boolean(true));
        if (a->balloon)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_BALLOON, g_variant_new_boolean(true));
        if (a->video) {
                g_variant_builder_add(&config, "{sv}", VMC_KEY_VIDEO_DECODER, g_variant_new_boolean(true));
                g_variant_builder_add(&config, "{sv}", VMC_KEY_VIDEO_ENCODER, g_variant_new_boolean(true));
        }
        if (a->live_shares)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_LIVE_SHARES, g_variant_new_boolean(true));
        if (a->on_panic)
                g_variant_builder_add(&config, "{sv}", VMC_KEY_ON_PANIC, g_variant_new_string(a->on_panic));
        if (a->n_shares > 0) {
                GVariantBuilder shares;

                /* By path: the daemon opens a directory with the caller's
                 * rights (a descriptor of one is not taken). */
                g_variant_builder_init(&shares, G_VARIANT_TYPE("aa{sv}"));
                for (size_t i = 0; i < a->n_shares; i++)
                        g_variant_builder_add_value(&shares, share_options(&a->shares[i], true));
                g_variant_builder_add(&config, "{sv}", VMC_KEY_SHARES, g_variant_builder_end(&shares));
        }
        if (a->gpu) {
                GVariantBuilder gpu;
                _cleanup_free_ char *from_env = NULL;
                const char *wayland = NULL;

                /* What is left out is the daemon's (the VMM's) default. */
                g_variant_builder_init(&gpu, G_VARIANT_TYPE_VARDICT);
                if (a->gpu_3d)
                        g_variant_builder_add(&gpu, "{sv}", "backend", g_variant_new_string("virglrenderer"));
                if (a->gpu_width > 0) {
                        g_variant_builder_add(&gpu, "{sv}", "width", g_variant_new_uint32(a->gpu_width));
                        g_variant_builder_add(&gpu, "{sv}", "height", g_variant_new_uint32(a->gpu_height));
                }
                if (a->gpu_displays_set)
                        g_variant_builder_add(&gpu, "{sv}", "displays", g_variant_new_uint32(a->gpu_displays));
                /* Cross-domain beside the backend's own: virgl stays for --gpu-3d. */
                if (a->wayland)
                        g_variant_builder_add(&gpu, "{sv}", "context_types",
                                              g_variant_new_string(a->gpu_3d ? "virgl:cross-domain" : "cross-domain"));
                g_variant_builder_add(&config, "{sv}", VMC_KEY_GPU, g_variant_builder_end(&gpu));
                /* Our own compositor, as a Wayland client of ours would
                 * find it (--wayland: wayland-0 when WAYLAND_DISPLAY is
                 * unset, as libwayland-client); the daemon opens it with
                 * our rights. */
                if (!a->headless && a->wayland_socket)
                        wayland = a->wayland_socket;
                else if (!a->headless) {
                        const char *display = getenv("WAYLAND_DISPLAY");

                        if (a->wayland && (!display || !display[0]))
                                display = "wayland-0";
                        wayland = from_env = vmc_wayland_socket_from_env(getenv("XDG_RUNTIME_DIR"), display);
                }
                if (a->wayland && !wayland) {
                        *ret_error = g_strdup("--wayland: no compositor socket: XDG_RUNTIME_DIR is not set "
                                              "(or give --wayland-socket PATH)");
                        return NULL;
                }
                if (wayland)
                        g_variant_builder_add(&config, "{sv}", VMC_KEY_WAYLAND_SOCKET, g_variant_new_string(wayland));
        }

        *ret_fds = g_steal_pointer(&fds);
        return g_variant_new("(s@a{sv})", a->name, g_variant_builder_end(&config));
}

static int cmd_start(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) info = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *text = NULL;
        GVariant *params;
        guint32 pid;

        if (!(g_dbus_connection_get_capabilities(bus) & G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING))
                return fail(a, VMC_EXIT_FAILED, "this bus connection cannot pass file descriptors");

        params = vmc_start_parameters(a, &fds, &text);
        if (!params)
                return fail(a, VMC_EXIT_FAILED, text);

        reply = g_dbus_connection_call_with_unix_fd_list_sync(
                        bus, VMC_BUS_NAME, VMC_MANAGER_PATH, VMC_MANAGER_INTERFACE, "StartVm",
                        params, G_VARIANT_TYPE("(o)"), MUTATING, VMC_START_TIMEOUT_MS,
                        fds, NULL, NULL, &error);
        if (!reply)
                return fail_gerror(a, error);

        /* The pid is a courtesy: the VM is up even if this call fails. */
        info = call_manager(bus, "GetVmInfo", g_variant_new("(s)", a->name), "(a{sv})",
                            G_DBUS_CALL_FLAGS_NONE, VMC_CALL_TIMEOUT_MS, NULL);
        if (info) {
                g_autoptr(GVariant) dict = g_variant_get_child_value(info, 0);
                if (g_variant_lookup(dict, "Pid", "u", &pid) && pid > 0) {
                        printf("started %s (pid %" PRIu32 ")\n", a->name, pid);
                        return VMC_EXIT_OK;
                }
        }
        printf("started %s\n", a->name);
        return VMC_EXIT_OK;
}

static int cmd_stop(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *safe = NULL;
        const char *step;
        int timeout;

        /* The daemon bounds each of its three steps by timeout_ms; wait a
         * little longer than all three before calling it unreachable. */
        if (a->timeout_ms == 0)
                timeout = 2 * 60 * 1000;
        else
                timeout = (int) MIN((uint64_t) a->timeout_ms * 3 + 30 * 1000, (uint64_t) G_MAXINT);

        reply = call_manager(bus, "StopVm",
                             g_variant_new("(ssu)", a->name, a->force ? "kill" : "graceful", a->timeout_ms),
                             "(s)", MUTATING, timeout, &error);
        if (!reply)
                return fail_gerror(a, error);
        g_variant_get(reply, "(&s)", &step);
        safe = vmc_escape_text(vmc_stop_step_describe(step));
        printf("stopped %s (%s)\n", a->name, safe);
        return VMC_EXIT_OK;
}

/* A per-VM call failed. Daemons (and bindings) differ in how they answer
 * a call to an object that does not exist: UnknownObject, UnknownMethod
 * or UnknownInterface. Ask the manager whether the VM exists, so a
 * missing VM is always exit 4 and "no VM named". */
static int fail_vm_call(GDBusConnection *bus, const VmcArgs *a, GError *error) {
        g_autofree char *remote = g_dbus_error_get_remote_error(error);
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) info_error = NULL;

        if (remote && (strcmp(remote, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
                       strcmp(remote, "org.freedesktop.DBus.Error.UnknownInterface") == 0)) {
                reply = call_manager(bus, "GetVmInfo", g_variant_new("(s)", a->name), "(a{sv})",
                                     G_DBUS_CALL_FLAGS_NONE, VMC_CALL_TIMEOUT_MS, &info_error);
                if (!reply) {
                        g_autofree char *info_remote = g_dbus_error_get_remote_error(info_error);
                        if (info_remote && strcmp(info_remote, "org.majordome.Error.NoSuchVm") == 0)
                                return fail_gerror(a, info_error);
                }
        }
        return fail_gerror(a, error);
}

static int cmd_simple(GDBusConnection *bus, const VmcArgs *a, const char *method, GVariant *params,
                      const char *done) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;

        reply = call_vm(bus, a->name, method, params, "()", &error);
        if (!reply)
                return fail_vm_call(bus, a, error);
        printf("%s\n", done);
        return VMC_EXIT_OK;
}

static int get_info(GDBusConnection *bus, const char *name, GVariant **ret, GError **error) {
        g_autoptr(GVariant) reply = NULL;

        reply = call_manager(bus, "GetVmInfo", g_variant_new("(s)", name), "(a{sv})",
                             G_DBUS_CALL_FLAGS_NONE, VMC_CALL_TIMEOUT_MS, error);
        if (!reply)
                return -EIO;
        *ret = g_variant_get_child_value(reply, 0);
        return 0;
}

/* One GetManagedObjects call: every VM with its properties as of one
 * moment, so no VM can vanish between a listing and its details. */
static int cmd_list(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) objects = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        VmcListEntry *entries;
        size_t n;

        reply = g_dbus_connection_call_sync(bus, VMC_BUS_NAME, VMC_MANAGER_PATH, VMC_OBJECT_MANAGER_INTERFACE,
                                            "GetManagedObjects", NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
                                            G_DBUS_CALL_FLAGS_NONE, VMC_CALL_TIMEOUT_MS, NULL, &error);
        if (!reply)
                return fail_gerror(a, error);
        objects = g_variant_get_child_value(reply, 0);
        entries = vmc_list_entries_from_managed_objects(objects, &n);
        out = a->json ? vmc_format_list_json(entries, n) : vmc_format_list(entries, n);
        vmc_list_entries_free(entries, n);
        fputs(out, stdout);
        if (a->json)
                fputc('\n', stdout);
        return VMC_EXIT_OK;
}

static int cmd_info(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GVariant) info = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;

        if (get_info(bus, a->name, &info, &error) < 0)
                return fail_gerror(a, error);
        if (a->json) {
                out = vmc_json_from_variant(info);
                printf("%s\n", out);
        } else {
                out = vmc_format_info(info);
                fputs(out, stdout);
        }
        return VMC_EXIT_OK;
}

static int cmd_balloon(GDBusConnection *bus, const VmcArgs *a) {
        g_autofree char *size = vmc_format_bytes(a->size);
        g_autofree char *done = g_strdup_printf("balloon target of %s set to %s", a->name, size);

        return cmd_simple(bus, a, "SetBalloon", g_variant_new("(t)", (guint64) a->size), done);
}

static int cmd_balloon_stats(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) stats = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;

        reply = call_vm(bus, a->name, "GetBalloonStats", NULL, "(a{st})", &error);
        if (!reply)
                return fail_vm_call(bus, a, error);
        stats = g_variant_get_child_value(reply, 0);
        if (a->json) {
                out = vmc_json_from_variant(stats);
                printf("%s\n", out);
        } else {
                out = vmc_format_balloon_stats(stats);
                fputs(out, stdout);
        }
        return VMC_EXIT_OK;
}

static int cmd_resize(GDBusConnection *bus, const VmcArgs *a) {
        g_autofree char *size = vmc_format_bytes(a->size);
        g_autofree char *done = g_strdup_printf("disk %" PRIu32 " of %s resized to %s", a->disk_index, a->name, size);

        return cmd_simple(bus, a, "ResizeDisk", g_variant_new("(ut)", a->disk_index, (guint64) a->size), done);
}

static int cmd_share(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        const char *tag;

        reply = call_vm(bus, a->name, "ShareDirectory",
                        g_variant_new("(s@a{sv})", a->shares[0].path, share_options(&a->shares[0], false)),
                        "(s)", &error);
        if (!reply)
                return fail_vm_call(bus, a, error);
        g_variant_get(reply, "(&s)", &tag);
        printf("shared %s with %s as %s (in the guest: TAG under the live root, mount -t virtiofs majordome DIR)\n",
               a->shares[0].path, a->name, tag);
        return VMC_EXIT_OK;
}

static int cmd_unshare(GDBusConnection *bus, const VmcArgs *a) {
        g_autofree char *done = g_strdup_printf("%s no longer shares %s", a->name, a->tag);

        return cmd_simple(bus, a, "UnshareDirectory", g_variant_new("(s)", a->tag), done);
}

/* State of `vmc logs -f`. */
typedef struct LogFollow {
        GMainLoop *loop;
        const char *name;
        int fd;
        bool escape;            /* stdout is a terminal and --raw was not given */
        char held[4];           /* escape: a UTF-8 sequence or CR cut by the read */
        size_t n_held;
        char last[64];          /* the last bytes read, to find our place after a cut */
        size_t n_last;
        bool vm_stopped;
        bool stopped_by_panic;  /* VmStopped said guest-panic */
        bool panicked;          /* GuestPanicked came */
        bool daemon_gone;
        bool write_failed;
} LogFollow;

/* Writes what was read, escaped for a terminal when asked. */
static int log_write(LogFollow *f, const char *buf, size_t n, bool final) {
        g_autoptr(GString) out = NULL;
        g_autofree char *joined = NULL;
        size_t used;

        if (n >= sizeof(f->last)) {
                memcpy(f->last, buf + n - sizeof(f->last), sizeof(f->last));
                f->n_last = sizeof(f->last);
        } else if (n > 0) {
                size_t keep = MIN(f->n_last, sizeof(f->last) - n);

                memmove(f->last, f->last + f->n_last - keep, keep);
                memcpy(f->last + keep, buf, n);
                f->n_last = keep + n;
        }
        if (n == 0 && f->n_held == 0)
                return 0;
        if (!f->escape) {
                if (n > 0 && fwrite(buf, 1, n, stdout) != n)
                        return -EIO;
                return 0;
        }
        joined = g_malloc(f->n_held + n);
        memcpy(joined, f->held, f->n_held);
        memcpy(joined + f->n_held, buf, n);
        n += f->n_held;
        out = g_string_new(NULL);
        used = vmc_escape_terminal(out, joined, n, final);
        /* What is left is shorter than a UTF-8 sequence. */
        f->n_held = MIN(n - used, sizeof(f->held));
        memcpy(f->held, joined + used, f->n_held);
        if (out->len > 0 && fwrite(out->str, 1, out->len, stdout) != out->len)
                return -EIO;
        return 0;
}

/* The VMM cuts a full console log to its newest half, in place: the file
 * shrank under our offset. Go on after the last bytes we printed, found in
 * what was kept; from the start if they are not there. */
static void log_resync(LogFollow *f) {
        g_autofree char *data = NULL;
        const char *at = NULL;
        struct stat st;
        size_t n = 0;

        if (fstat(f->fd, &st) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
                return;
        data = g_malloc((size_t) st.st_size + 1);
        while (n < (size_t) st.st_size) {
                ssize_t k = read(f->fd, data + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        for (const char *p = data; f->n_last > 0 && p + f->n_last <= data + n;) {
                const char *m = memmem(p, (size_t) (data + n - p), f->last, f->n_last);
                if (!m)
                        break;
                at = m + f->n_last;
                p = m + 1;
        }
        (void) lseek(f->fd, at ? at - data : 0, SEEK_SET);
}

/* Copies what the log has beyond the current offset to stdout. final: the
 * last copy, nothing more will come. */
static int log_copy(LogFollow *f, bool final) {
        char buf[64 * 1024];
        struct stat st;
        off_t pos;

        pos = lseek(f->fd, 0, SEEK_CUR);
        if (pos > 0 && fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < pos)
                log_resync(f);
        for (;;) {
                ssize_t n = read(f->fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                if (log_write(f, buf, (size_t) n, false) < 0) {
                        f->write_failed = true;
                        return -EIO;
                }
        }
        if (final && log_write(f, NULL, 0, true) < 0) {
                f->write_failed = true;
                return -EIO;
        }
        fflush(stdout);
        return 0;
}

static void on_vm_stopped(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                          const char *signal, GVariant *params, gpointer userdata) {
        LogFollow *f = userdata;
        const char *name, *reason;

        if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sosis)")))
                return;
        g_variant_get_child(params, 0, "&s", &name);
        g_variant_get_child(params, 2, "&s", &reason);
        if (strcmp(name, f->name) == 0) {
                f->vm_stopped = true;
                f->stopped_by_panic = strcmp(reason, "guest-panic") == 0;
                g_main_loop_quit(f->loop);
        }
}

/* GuestPanicked with action "pause": the VM goes on existing, the follow
 * goes on; it is said once the console's lines so far are out. */
static void on_guest_panicked(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                              const char *signal, GVariant *params, gpointer userdata) {
        LogFollow *f = userdata;
        const char *name, *action;

        if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sos)")))
                return;
        g_variant_get_child(params, 0, "&s", &name);
        g_variant_get_child(params, 2, "&s", &action);
        if (strcmp(name, f->name) != 0 || f->panicked)
                return;
        f->panicked = true;
        (void) log_copy(f, false);
        if (strcmp(action, "pause") == 0)
                fprintf(stderr, "vmc: %s: the guest kernel panicked; the VM is paused for inspection\n", f->name);
}

static void on_daemon_vanished(GDBusConnection *bus, const char *name, gpointer userdata) {
        LogFollow *f = userdata;

        f->daemon_gone = true;
        g_main_loop_quit(f->loop);
}

static gboolean on_log_poll(gpointer userdata) {
        LogFollow *f = userdata;

        if (log_copy(f, false) < 0)
                g_main_loop_quit(f->loop);
        return G_SOURCE_CONTINUE;
}

static int cmd_logs(GDBusConnection *bus, const VmcArgs *a) {
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        g_autoptr(GVariant) info = NULL;
        g_autoptr(GError) error = NULL;
        _cleanup_close_ int fd = -EBADF;
        LogFollow f = { .loop = loop, .name = a->name, .fd = -EBADF, .escape = !a->raw && isatty(STDOUT_FILENO) };
        const char *log_path = NULL, *state = NULL;
        guint subscription = 0, panic_subscription = 0, watch = 0, timer = 0;
        int r;

        /* Subscribe before asking for the state, so a VM that stops in
         * between is still seen stopping. */
        if (a->follow) {
                subscription = g_dbus_connection_signal_subscribe(
                                bus, VMC_BUS_NAME, VMC_MANAGER_INTERFACE, "VmStopped", VMC_MANAGER_PATH,
                                a->name, G_DBUS_SIGNAL_FLAGS_NONE, on_vm_stopped, &f, NULL);
                panic_subscription = g_dbus_connection_signal_subscribe(
                                bus, VMC_BUS_NAME, VMC_MANAGER_INTERFACE, "GuestPanicked", VMC_MANAGER_PATH,
                                a->name, G_DBUS_SIGNAL_FLAGS_NONE, on_guest_panicked, &f, NULL);
                watch = g_bus_watch_name_on_connection(bus, VMC_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                       NULL, on_daemon_vanished, &f, NULL);
        }

        if (get_info(bus, a->name, &info, &error) < 0) {
                r = fail_gerror(a, error);
                goto finish;
        }
        if (!g_variant_lookup(info, "LogPath", "&s", &log_path) || log_path[0] == '\0') {
                r = fail(a, VMC_EXIT_FAILED, "the VM has no log (its console goes elsewhere)");
                goto finish;
        }
        (void) g_variant_lookup(info, "State", "&s", &state);

        fd = open(log_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                g_autofree char *text = g_strdup_printf("cannot open log '%s': %s", log_path, g_strerror(errno));
                r = fail(a, VMC_EXIT_FAILED, text);
                goto finish;
        }
        f.fd = fd;
        r = log_copy(&f, !a->follow || (state && strcmp(state, "stopped") == 0));
        if (r < 0 || !a->follow || (state && strcmp(state, "stopped") == 0))
                goto done;

        timer = g_timeout_add(100, on_log_poll, &f);
        /* The daemon may have vanished before the watch's first answer;
         * both callbacks end the loop. */
        if (!f.vm_stopped && !f.daemon_gone)
                g_main_loop_run(loop);
        /* What the VM wrote just before it stopped. */
        r = log_copy(&f, true);
        if (f.vm_stopped && f.stopped_by_panic)
                fprintf(stderr, "vmc: %s: the guest kernel panicked; the VM stopped\n", a->name);

done:
        if (f.write_failed)
                r = VMC_EXIT_FAILED;
        else if (r < 0) {
                g_autofree char *text = g_strdup_printf("cannot read log '%s': %s", log_path, g_strerror(-r));
                r = fail(a, VMC_EXIT_FAILED, text);
        } else if (f.daemon_gone)
                r = fail(a, VMC_EXIT_UNREACHABLE, "majordomed went away");
        else
                r = VMC_EXIT_OK;
finish:
        if (timer)
                g_source_remove(timer);
        if (watch)
                g_bus_unwatch_name(watch);
        if (subscription)
                g_dbus_connection_signal_unsubscribe(bus, subscription);
        if (panic_subscription)
                g_dbus_connection_signal_unsubscribe(bus, panic_subscription);
        return r;
}

int vmc_run(GDBusConnection *bus, const VmcArgs *a) {
        g_autofree char *done = NULL;

        switch (a->command) {
        case VMC_COMMAND_START:
                return cmd_start(bus, a);
        case VMC_COMMAND_STOP:
                return cmd_stop(bus, a);
        case VMC_COMMAND_KILL:
                done = g_strdup_printf("killed %s", a->name);
                return cmd_simple(bus, a, "Kill", NULL, done);
        case VMC_COMMAND_LIST:
                return cmd_list(bus, a);
        case VMC_COMMAND_INFO:
                return cmd_info(bus, a);
        case VMC_COMMAND_PAUSE:
                done = g_strdup_printf("paused %s", a->name);
                return cmd_simple(bus, a, "Pause", NULL, done);
        case VMC_COMMAND_RESUME:
                done = g_strdup_printf("resumed %s", a->name);
                return cmd_simple(bus, a, "Resume", NULL, done);
        case VMC_COMMAND_BALLOON:
                return cmd_balloon(bus, a);
        case VMC_COMMAND_BALLOON_STATS:
                return cmd_balloon_stats(bus, a);
        case VMC_COMMAND_RESIZE:
                return cmd_resize(bus, a);
        case VMC_COMMAND_LOGS:
                return cmd_logs(bus, a);
        case VMC_COMMAND_SHARE:
                return cmd_share(bus, a);
        case VMC_COMMAND_UNSHARE:
                return cmd_unshare(bus, a);
        default:
                fprintf(stderr, "vmc: no command\n");
                return VMC_EXIT_USAGE;
        }
}
