/* SPDX-License-Identifier: BSD-3-Clause */
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "common/macro.h"
#include "common/util.h"
#include "client/vmc-args.h"
#include "client/vmc-format.h"

char *vmc_vm_object_path(const char *name) {
        static const char hex[] = "0123456789abcdef";
        GString *s = g_string_new(VMC_VM_PATH_PREFIX "/");

        if (name[0] == '\0')
                g_string_append_c(s, '_');
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                bool digit = c >= '0' && c <= '9';

                if (alpha || (digit && p != name))
                        g_string_append_c(s, (char) c);
                else {
                        g_string_append_c(s, '_');
                        g_string_append_c(s, hex[c >> 4]);
                        g_string_append_c(s, hex[c & 15]);
                }
        }
        return g_string_free(s, FALSE);
}

/* Daemons may send multi-line messages; vmc shows one line. */
static char *one_line(const char *s) {
        char *r = g_strdup(s ? s : "");

        for (char *p = r; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
        return g_strstrip(r);
}

int vmc_error_describe(const char *error_name, const char *message, const char *vm_name, char **ret_text) {
        /* text_vm is used when the VM's name is known; a message from the
         * daemon is appended after ": " where it carries the detail (which
         * key, which limit) that the short text cannot. */
        static const struct {
                const char *name;
                int exit_code;
                const char *text_vm;
                const char *text;
                bool detail;
        } table[] = {
                { "org.majordome.Error.NoSuchVm", VMC_EXIT_NO_SUCH_VM, "no VM named '%s'", "no such VM", false },
                { "org.majordome.Error.VmExists", VMC_EXIT_FAILED, "a VM named '%s' already exists", "the VM already exists", false },
                { "org.majordome.Error.InvalidName", VMC_EXIT_FAILED, "'%s' is not a valid VM name", "invalid VM name", true },
                { "org.majordome.Error.InvalidConfig", VMC_EXIT_FAILED, "invalid configuration", "invalid configuration", true },
                { "org.majordome.Error.LimitReached", VMC_EXIT_FAILED, "limit reached", "limit reached", true },
                { "org.majordome.Error.Busy", VMC_EXIT_FAILED, "VM '%s' is busy", "busy", true },
                { "org.majordome.Error.NotRunning", VMC_EXIT_FAILED, "VM '%s' is not running", "the VM is not running", false },
                { "org.majordome.Error.AccessDenied", VMC_EXIT_FAILED, "permission denied", "permission denied", true },
                { "org.majordome.Error.VmmFailed", VMC_EXIT_FAILED, "the VMM failed", "the VMM failed", true },
                { "org.majordome.Error.Timeout", VMC_EXIT_FAILED, "the VMM did not answer in time", "the VMM did not answer in time", true },
                { "org.majordome.Error.NotSupported", VMC_EXIT_FAILED, "not supported", "not supported", true },
                { "org.majordome.Error.ReadOnly", VMC_EXIT_FAILED, "refused", "refused", true },
                { "org.freedesktop.DBus.Error.ServiceUnknown", VMC_EXIT_UNREACHABLE, "majordomed is not running on this bus", "majordomed is not running on this bus", false },
                { "org.freedesktop.DBus.Error.NameHasNoOwner", VMC_EXIT_UNREACHABLE, "majordomed is not running on this bus", "majordomed is not running on this bus", false },
                { "org.freedesktop.DBus.Error.NoReply", VMC_EXIT_UNREACHABLE, "no reply from majordomed", "no reply from majordomed", true },
                { "org.freedesktop.DBus.Error.Timeout", VMC_EXIT_UNREACHABLE, "no reply from majordomed", "no reply from majordomed", true },
                { "org.freedesktop.DBus.Error.TimedOut", VMC_EXIT_UNREACHABLE, "no reply from majordomed", "no reply from majordomed", true },
                { "org.freedesktop.DBus.Error.Disconnected", VMC_EXIT_UNREACHABLE, "disconnected from the bus", "disconnected from the bus", true },
                { "org.freedesktop.DBus.Error.NoServer", VMC_EXIT_UNREACHABLE, "cannot connect to the bus", "cannot connect to the bus", true },
                { "org.freedesktop.DBus.Error.AccessDenied", VMC_EXIT_FAILED, "permission denied", "permission denied", true },
                { "org.freedesktop.DBus.Error.UnknownObject", VMC_EXIT_NO_SUCH_VM, "no VM named '%s'", "no such object", false },
                { "org.freedesktop.DBus.Error.UnknownMethod", VMC_EXIT_FAILED, "majordomed does not know this call (older than vmc?)", "majordomed does not know this call (older than vmc?)", true },
                { "org.freedesktop.DBus.Error.InvalidArgs", VMC_EXIT_FAILED, "invalid arguments", "invalid arguments", true },
        };
        g_autofree char *msg = one_line(message);
        g_autofree char *head = NULL;

        if (error_name && g_str_has_prefix(error_name, "org.freedesktop.DBus.Error.Spawn.")) {
                *ret_text = *msg ? g_strdup_printf("the bus could not start majordomed: %s", msg)
                                 : g_strdup("the bus could not start majordomed");
                return VMC_EXIT_UNREACHABLE;
        }

        for (size_t i = 0; error_name && i < ARRAY_SIZE(table); i++) {
                if (strcmp(table[i].name, error_name) != 0)
                        continue;
                if (vm_name) {
                        /* text_vm has at most one "%s", replaced by hand
                         * to keep the format strings literal. */
                        const char *hole = strstr(table[i].text_vm, "%s");
                        g_autofree char *name = one_line(vm_name);

                        if (hole)
                                head = g_strdup_printf("%.*s%s%s", (int) (hole - table[i].text_vm),
                                                       table[i].text_vm, name, hole + 2);
                        else
                                head = g_strdup(table[i].text_vm);
                } else
                        head = g_strdup(table[i].text);
                if (table[i].detail && *msg)
                        *ret_text = g_strdup_printf("%s: %s", head, msg);
                else
                        *ret_text = g_steal_pointer(&head);
                return table[i].exit_code;
        }

        /* Unknown errors: the daemon's own message, or at least the name. */
        if (*msg)
                *ret_text = g_steal_pointer(&msg);
        else
                *ret_text = g_strdup(error_name ? error_name : "unknown error");
        return VMC_EXIT_FAILED;
}

size_t vmc_escape_terminal(GString *out, const char *text, size_t n, gboolean final) {
        const guchar *p = (const guchar *) text;
        size_t i = 0;

        while (i < n) {
                gunichar c;
                size_t len;

                if (p[i] < 0x80) {
                        if (p[i] == '\r' && i + 1 == n && !final)
                                break; /* a CRLF split across reads? */
                        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t' &&
                             !(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')) || p[i] == 0x7f)
                                g_string_append_printf(out, "\\x%02x", p[i]);
                        else
                                g_string_append_c(out, (char) p[i]);
                        i++;
                        continue;
                }
                c = g_utf8_get_char_validated((const char *) p + i, (gssize) (n - i));
                if (c == (gunichar) -2 && !final)
                        break;
                if (c == (gunichar) -1 || c == (gunichar) -2 || (c >= 0x80 && c < 0xa0)) {
                        /* Not UTF-8, or a C1 control (CSI is 0x9b): the lead byte
                         * alone; continuation bytes come out the same way. */
                        g_string_append_printf(out, "\\x%02x", p[i]);
                        i++;
                        continue;
                }
                len = (size_t) g_utf8_skip[p[i]];
                g_string_append_len(out, (const char *) p + i, (gssize) len);
                i += len;
        }
        return i;
}

char *vmc_escape_text(const char *text) {
        GString *out = g_string_new(NULL);

        vmc_escape_terminal(out, text, strlen(text), TRUE);
        return g_string_free(out, FALSE);
}

char *vmc_format_bytes(uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        char buf[64];
        double v;
        size_t i;

        if (bytes < 1024 || bytes % 1024 == 0) {
                /* Exact: "512 MiB", "1536 MiB", "100 B". */
                format_size(buf, sizeof(buf), bytes);
                if (bytes < 1024 || strstr(buf, " B") == NULL)
                        return g_strdup(buf);
        }
        v = (double) bytes / 1024.0;
        for (i = 0; i + 1 < ARRAY_SIZE(units) && v >= 1024.0; i++)
                v /= 1024.0;
        return g_strdup_printf("%.1f %s", v, units[i]);
}

static void json_string(GString *out, const char *s) {
        g_string_append_c(out, '"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                switch (*p) {
                case '"':
                        g_string_append(out, "\\\"");
                        break;
                case '\\':
                        g_string_append(out, "\\\\");
                        break;
                case '\n':
                        g_string_append(out, "\\n");
                        break;
                case '\t':
                        g_string_append(out, "\\t");
                        break;
                case '\r':
                        g_string_append(out, "\\r");
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                g_string_append_printf(out, "\\u%04x", *p);
                        else
                                g_string_append_c(out, (char) *p);
                }
        }
        g_string_append_c(out, '"');
}

static void json_value(GString *out, GVariant *v) {
        const GVariantType *t = g_variant_get_type(v);
        GVariantIter iter;
        GVariant *child;
        bool first = true;

        switch (g_variant_classify(v)) {
        case G_VARIANT_CLASS_BOOLEAN:
                g_string_append(out, g_variant_get_boolean(v) ? "true" : "false");
                return;
        case G_VARIANT_CLASS_BYTE:
                g_string_append_printf(out, "%u", (unsigned) g_variant_get_byte(v));
                return;
        case G_VARIANT_CLASS_INT16:
                g_string_append_printf(out, "%d", (int) g_variant_get_int16(v));
                return;
        case G_VARIANT_CLASS_UINT16:
                g_string_append_printf(out, "%u", (unsigned) g_variant_get_uint16(v));
                return;
        case G_VARIANT_CLASS_INT32:
                g_string_append_printf(out, "%" PRId32, g_variant_get_int32(v));
                return;
        case G_VARIANT_CLASS_HANDLE:
                g_string_append_printf(out, "%" PRId32, g_variant_get_handle(v));
                return;
        case G_VARIANT_CLASS_UINT32:
                g_string_append_printf(out, "%" PRIu32, g_variant_get_uint32(v));
                return;
        case G_VARIANT_CLASS_INT64:
                g_string_append_printf(out, "%" PRId64, (int64_t) g_variant_get_int64(v));
                return;
        case G_VARIANT_CLASS_UINT64:
                g_string_append_printf(out, "%" PRIu64, (uint64_t) g_variant_get_uint64(v));
                return;
        case G_VARIANT_CLASS_DOUBLE: {
                double d = g_variant_get_double(v);
                if (isfinite(d))
                        g_string_append_printf(out, "%.17g", d);
                else
                        g_string_append(out, "null");
                return;
        }
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
                json_string(out, g_variant_get_string(v, NULL));
                return;
        case G_VARIANT_CLASS_VARIANT: {
                g_autoptr(GVariant) inner = g_variant_get_variant(v);
                json_value(out, inner);
                return;
        }
        case G_VARIANT_CLASS_MAYBE: {
                g_autoptr(GVariant) inner = g_variant_get_maybe(v);
                if (inner)
                        json_value(out, inner);
                else
                        g_string_append(out, "null");
                return;
        }
        case G_VARIANT_CLASS_ARRAY:
                if (g_variant_type_is_dict_entry(g_variant_type_element(t))) {
                        g_string_append_c(out, '{');
                        g_variant_iter_init(&iter, v);
                        while ((child = g_variant_iter_next_value(&iter))) {
                                g_autoptr(GVariant) key = g_variant_get_child_value(child, 0);
                                g_autoptr(GVariant) value = g_variant_get_child_value(child, 1);

                                if (!first)
                                        g_string_append_c(out, ',');
                                first = false;
                                if (g_variant_is_of_type(key, G_VARIANT_TYPE_STRING) ||
                                    g_variant_is_of_type(key, G_VARIANT_TYPE_OBJECT_PATH) ||
                                    g_variant_is_of_type(key, G_VARIANT_TYPE_SIGNATURE))
                                        json_string(out, g_variant_get_string(key, NULL));
                                else {
                                        /* JSON keys are strings: quote numbers and booleans. */
                                        GString *k = g_string_new(NULL);
                                        json_value(k, key);
                                        json_string(out, k->str);
                                        g_string_free(k, TRUE);
                                }
                                g_string_append_c(out, ':');
                                json_value(out, value);
                                g_variant_unref(child);
                        }
                        g_string_append_c(out, '}');
                        return;
                }
                /* Plain arrays are JSON arrays, like tuples. */
                __attribute__((fallthrough));
        case G_VARIANT_CLASS_TUPLE:
        case G_VARIANT_CLASS_DICT_ENTRY:
                g_string_append_c(out, '[');
                g_variant_iter_init(&iter, v);
                while ((child = g_variant_iter_next_value(&iter))) {
                        if (!first)
                                g_string_append_c(out, ',');
                        first = false;
                        json_value(out, child);
                        g_variant_unref(child);
                }
                g_string_append_c(out, ']');
                return;
        }
        g_string_append(out, "null");
}

char *vmc_json_from_variant(GVariant *v) {
        GString *out = g_string_new(NULL);

        json_value(out, v);
        return g_string_free(out, FALSE);
}

/* Property `key` of an a{sv}, if it has type `type`. */
static GVariant *info_lookup(GVariant *info, const char *key, const GVariantType *type) {
        if (!info)
                return NULL;
        return g_variant_lookup_value(info, key, type);
}

static char *info_uint_text(GVariant *info, const char *key) {
        g_autoptr(GVariant) v = info_lookup(info, key, G_VARIANT_TYPE_UINT32);

        return v ? g_strdup_printf("%" PRIu32, g_variant_get_uint32(v)) : g_strdup("-");
}

static char *info_bytes_text(GVariant *info, const char *key) {
        g_autoptr(GVariant) v = info_lookup(info, key, G_VARIANT_TYPE_UINT64);

        return v ? vmc_format_bytes(g_variant_get_uint64(v)) : g_strdup("-");
}

static uint64_t entry_start_time(const VmcListEntry *e) {
        uint64_t t = 0;

        if (e->info)
                (void) g_variant_lookup(e->info, "StartTimeUsec", "t", &t);
        return t;
}

/* For qsort: oldest first; equal start times by name, so the order is
 * stable from one call to the next. */
static int compare_entries(const void *a, const void *b) {
        const VmcListEntry *x = a, *y = b;
        uint64_t tx = entry_start_time(x), ty = entry_start_time(y);

        if (tx != ty)
                return tx < ty ? -1 : 1;
        return strcmp(x->name, y->name);
}

VmcListEntry *vmc_list_entries_from_managed_objects(GVariant *objects, size_t *ret_n) {
        size_t n_objects = g_variant_n_children(objects), n = 0;
        VmcListEntry *entries = g_new0(VmcListEntry, n_objects + 1);

        for (size_t i = 0; i < n_objects; i++) {
                g_autoptr(GVariant) object = g_variant_get_child_value(objects, i);
                g_autoptr(GVariant) interfaces = g_variant_get_child_value(object, 1);
                VmcListEntry *e = &entries[n];

                e->info = g_variant_lookup_value(interfaces, VMC_VM_INTERFACE, G_VARIANT_TYPE_VARDICT);
                if (!e->info)
                        continue;
                g_variant_get_child(object, 0, "&o", &e->path);
                if (!g_variant_lookup(e->info, "Name", "&s", &e->name))
                        e->name = "-";
                if (!g_variant_lookup(e->info, "State", "&s", &e->state))
                        e->state = "-";
                n++;
        }
        qsort(entries, n, sizeof(*entries), compare_entries);
        *ret_n = n;
        return entries;
}

void vmc_list_entries_free(VmcListEntry *entries, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (entries[i].info)
                        g_variant_unref(entries[i].info);
        g_free(entries);
}

char *vmc_format_list(const VmcListEntry *entries, size_t n) {
        GString *out = g_string_new(NULL);
        int name_w = 4, state_w = 5;

        for (size_t i = 0; i < n; i++) {
                name_w = MAX(name_w, (int) strlen(entries[i].name));
                state_w = MAX(state_w, (int) strlen(entries[i].state));
        }
        g_string_append_printf(out, "%-*s  %-*s  %5s  %10s  %s\n",
                               name_w, "NAME", state_w, "STATE", "VCPUS", "MEMORY", "PID");
        for (size_t i = 0; i < n; i++) {
                g_autofree char *vcpus = info_uint_text(entries[i].info, "Vcpus");
                g_autofree char *mem = info_bytes_text(entries[i].info, "MemoryBytes");
                g_autofree char *pid = info_uint_text(entries[i].info, "Pid");

                /* A stopped VM has no process: Pid 0 reads better as "-". */
                if (strcmp(pid, "0") == 0) {
                        g_free(pid);
                        pid = g_strdup("-");
                }
                g_string_append_printf(out, "%-*s  %-*s  %5s  %10s  %s\n",
                                       name_w, entries[i].name, state_w, entries[i].state,
                                       vcpus, mem, pid);
        }
        return g_string_free(out, FALSE);
}

char *vmc_format_list_json(const VmcListEntry *entries, size_t n) {
        g_auto(GVariantBuilder) list = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("aa{sv}"));
        g_autoptr(GVariant) v = NULL;

        for (size_t i = 0; i < n; i++) {
                GVariantBuilder vm;
                GVariantIter iter;
                const char *key;
                GVariant *value;

                g_variant_builder_init(&vm, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&vm, "{sv}", "Name", g_variant_new_string(entries[i].name));
                g_variant_builder_add(&vm, "{sv}", "State", g_variant_new_string(entries[i].state));
                g_variant_builder_add(&vm, "{sv}", "Path", g_variant_new_object_path(entries[i].path));
                if (entries[i].info) {
                        g_variant_iter_init(&iter, entries[i].info);
                        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                                /* Name, State and Path are added above,
                                 * once. */
                                if (strcmp(key, "Name") != 0 && strcmp(key, "State") != 0 && strcmp(key, "Path") != 0)
                                        g_variant_builder_add(&vm, "{sv}", key, value);
                                g_variant_unref(value);
                        }
                }
                g_variant_builder_add_value(&list, g_variant_builder_end(&vm));
        }
        v = g_variant_ref_sink(g_variant_builder_end(&list));
        return vmc_json_from_variant(v);
}

/* For g_ptr_array_sort(), which passes pointers to the elements. */
static int compare_strings(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* A value of any type as short text for `vmc info`. */
static char *value_text(GVariant *v) {
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) || g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH))
                return vmc_escape_text(g_variant_get_string(v, NULL));
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                return g_strdup_printf("%" PRIu32, g_variant_get_uint32(v));
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
                return g_strdup_printf("%" PRIu64, (uint64_t) g_variant_get_uint64(v));
        return g_variant_print(v, FALSE);
}

/* Devices (a(qqyyy)) as "1b36:0011 at 00:01.0, ...", lspci's notation. */
static char *devices_text(GVariant *v) {
        GString *out = g_string_new(NULL);
        GVariantIter iter;
        guint16 vendor, device;
        guchar bus, slot, function;

        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(qqyyy)", &vendor, &device, &bus, &slot, &function))
                g_string_append_printf(out, "%s%04x:%04x at %02x:%02x.%x", out->len ? ", " : "",
                                       vendor, device, bus, slot, function);
        if (out->len == 0)
                g_string_append(out, "-");
        return g_string_free(out, FALSE);
}

/* Shares (a(ssbs)): one line each, "TAG  PATH (ro, cache MODE)", the path
 * escaped (a directory's name may hold any byte but '/' and NUL). */
static char *shares_text(GVariant *v) {
        GString *out = g_string_new(NULL);
        GVariantIter iter;
        const char *tag, *path, *cache;
        gboolean read_only;

        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(&s&sb&s)", &tag, &path, &read_only, &cache)) {
                g_autofree char *safe_path = vmc_escape_text(path);
                g_autofree char *safe_tag = vmc_escape_text(tag);
                g_autofree char *safe_cache = vmc_escape_text(cache);

                g_string_append_printf(out, "%s%s  %s (%s, cache %s)", out->len ? "\n                " : "",
                                       safe_tag, safe_path, read_only ? "ro" : "rw", safe_cache);
        }
        if (out->len == 0)
                g_string_append(out, "-");
        return g_string_free(out, FALSE);
}

/* LiveShares (a(ssb)): one line each, "TAG  PATH (ro)", as shares_text. */
static char *live_shares_text(GVariant *v) {
        GString *out = g_string_new(NULL);
        GVariantIter iter;
        const char *tag, *path;
        gboolean read_only;

        g_variant_iter_init(&iter, v);
        while (g_variant_iter_next(&iter, "(&s&sb)", &tag, &path, &read_only)) {
                g_autofree char *safe_path = vmc_escape_text(path);
                g_autofree char *safe_tag = vmc_escape_text(tag);

                g_string_append_printf(out, "%s%s  %s (%s)", out->len ? "\n                " : "",
                                       safe_tag, safe_path, read_only ? "ro" : "rw");
        }
        return g_string_free(out, FALSE);
}

/* Gpu (a{sv}) as "2d, 2 displays of 1280x720, 256 MiB, on the host's
 * compositor" (or "headless"), then ", contexts LIST" when context types
 * were asked for; "none" for the empty dictionary. */
static char *gpu_text(GVariant *v) {
        const char *backend = NULL, *context_types = NULL;
        g_autofree char *safe_context_types = NULL;
        guint32 width = 0, height = 0, displays = 0;
        guint64 max_memory = 0;
        gboolean headless = TRUE;
        g_autofree char *safe_backend = NULL, *memory = NULL;

        if (g_variant_n_children(v) == 0)
                return g_strdup("none");
        (void) g_variant_lookup(v, "backend", "&s", &backend);
        (void) g_variant_lookup(v, "width", "u", &width);
        (void) g_variant_lookup(v, "height", "u", &height);
        (void) g_variant_lookup(v, "displays", "u", &displays);
        (void) g_variant_lookup(v, "max_memory", "t", &max_memory);
        (void) g_variant_lookup(v, "headless", "b", &headless);
        (void) g_variant_lookup(v, "context_types", "&s", &context_types);
        safe_backend = vmc_escape_text(backend ?: "?");
        safe_context_types = vmc_escape_text(context_types ?: "");
        memory = vmc_format_bytes(max_memory);
        return g_strdup_printf("%s, %" PRIu32 " display%s of %" PRIu32 "x%" PRIu32 ", %s, %s%s%s", safe_backend,
                               displays, displays == 1 ? "" : "s", width, height, memory,
                               headless ? "headless" : "on the host's compositor",
                               safe_context_types[0] ? ", contexts " : "", safe_context_types);
}

/* The user's name where this host knows the uid (the daemon's host: vmc
 * runs beside it). */
static char *owner_text(uint32_t uid) {
        struct passwd *pw = getpwuid((uid_t) uid);
        g_autofree char *name = pw ? vmc_escape_text(pw->pw_name) : NULL;

        return name ? g_strdup_printf("%s (uid %" PRIu32 ")", name, uid) : g_strdup_printf("uid %" PRIu32, uid);
}

char *vmc_format_info(GVariant *info) {
        /* Known properties in a fixed order and with units; whatever else
         * the daemon reports follows, sorted, so nothing is hidden. */
        static const struct {
                const char *key;
                const char *label;
                enum { TEXT, BYTES, TIME, CID, PATH, DEVICES, SHARES, LIVE_SHARES, GPU, OWNER } kind;
        } known[] = {
                { "Name", "Name", TEXT },
                { "State", "State", TEXT },
                /* PATH: "" (not failed) is left out, as for paths. */
                { "FailedReason", "Failed because", PATH },
                { "Owner", "Owner", OWNER },
                { "Pid", "PID", TEXT },
                { "Vcpus", "vCPUs", TEXT },
                { "MemoryBytes", "Memory", BYTES },
                { "BalloonTargetBytes", "Balloon target", BYTES },
                { "BalloonActualBytes", "Balloon actual", BYTES },
                { "Cid", "vsock CID", CID },
                { "VsockPath", "vsock socket", PATH },
                { "Disks", "Disks", TEXT },
                { "Devices", "PCI devices", DEVICES },
                { "Shares", "Shares", SHARES },
                { "LiveSharesTag", "Live root", PATH },
                { "LiveShares", "Live shares", LIVE_SHARES },
                { "Gpu", "GPU", GPU },
                { "StartTimeUsec", "Started", TIME },
                { "LogPath", "Log", TEXT },
        };
        GString *out = g_string_new(NULL);
        g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *key;
        GVariant *value;

        for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
                g_autoptr(GVariant) v = g_variant_lookup_value(info, known[i].key, NULL);
                g_autofree char *text = NULL;

                if (!v)
                        continue;
                /* "" is the daemon's "none": not worth a line. */
                if (known[i].kind == PATH && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) &&
                    g_variant_get_string(v, NULL)[0] == '\0')
                        continue;
                if (known[i].kind == BYTES && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
                        text = vmc_format_bytes(g_variant_get_uint64(v));
                else if (known[i].kind == DEVICES && g_variant_is_of_type(v, G_VARIANT_TYPE("a(qqyyy)")))
                        text = devices_text(v);
                else if (known[i].kind == SHARES && g_variant_is_of_type(v, G_VARIANT_TYPE("a(ssbs)")))
                        text = shares_text(v);
                else if (known[i].kind == LIVE_SHARES && g_variant_is_of_type(v, G_VARIANT_TYPE("a(ssb)"))) {
                        /* None: not worth a line (the live root, if any, has its own). */
                        if (g_variant_n_children(v) == 0)
                                continue;
                        text = live_shares_text(v);
                }
                else if (known[i].kind == GPU && g_variant_is_of_type(v, G_VARIANT_TYPE_VARDICT))
                        text = gpu_text(v);
                else if (known[i].kind == OWNER && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                        text = owner_text(g_variant_get_uint32(v));
                else if (known[i].kind == CID && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32) &&
                         g_variant_get_uint32(v) == 0)
                        text = g_strdup("none");
                else if (known[i].kind == TIME && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64)) {
                        uint64_t usec = g_variant_get_uint64(v);
                        g_autoptr(GDateTime) dt = usec ? g_date_time_new_from_unix_local((gint64) (usec / 1000000)) : NULL;

                        text = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S %Z") : g_strdup("-");
                } else
                        text = value_text(v);
                g_string_append_printf(out, "%-15s %s\n", known[i].label, text);
        }

        g_variant_iter_init(&iter, info);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                bool is_known = false;

                for (size_t i = 0; i < ARRAY_SIZE(known); i++)
                        if (strcmp(known[i].key, key) == 0)
                                is_known = true;
                if (!is_known) {
                        g_autofree char *text = value_text(value);
                        g_ptr_array_add(others, g_strdup_printf("%-15s %s\n", key, text));
                }
                g_variant_unref(value);
        }
        g_ptr_array_sort(others, compare_strings);
        for (guint i = 0; i < others->len; i++)
                g_string_append(out, (const char *) others->pdata[i]);
        return g_string_free(out, FALSE);
}

typedef struct Stat {
        const char *key;
        uint64_t value;
} Stat;

static int compare_stats(const void *a, const void *b) {
        return strcmp(((const Stat *) a)->key, ((const Stat *) b)->key);
}

char *vmc_format_balloon_stats(GVariant *stats) {
        GString *out = g_string_new(NULL);
        size_t n = g_variant_n_children(stats), i = 0;
        g_autofree Stat *sorted = g_new0(Stat, n + 1);
        GVariantIter iter;
        const char *key;
        guint64 value;
        int key_w = 0;

        g_variant_iter_init(&iter, stats);
        while (i < n && g_variant_iter_next(&iter, "{&st}", &key, &value)) {
                sorted[i++] = (Stat) { key, value };
                key_w = MAX(key_w, (int) strlen(key));
        }
        qsort(sorted, i, sizeof(Stat), compare_stats);
        for (size_t j = 0; j < i; j++) {
                g_autofree char *text = NULL;

                /* virtio-balloon statistics: the *_memory and disk_caches
                 * tags are bytes, the rest are counts (spec 5.5.6.3). */
                if (g_str_has_suffix(sorted[j].key, "memory") || g_str_has_suffix(sorted[j].key, "caches") ||
                    g_str_has_suffix(sorted[j].key, "bytes"))
                        text = vmc_format_bytes(sorted[j].value);
                else
                        text = g_strdup_printf("%" PRIu64, sorted[j].value);
                g_string_append_printf(out, "%-*s  %s\n", key_w, sorted[j].key, text);
        }
        return g_string_free(out, FALSE);
}

const char *vmc_stop_step_describe(const char *step) {
        if (!step)
                return "unknown step";
        if (strcmp(step, "graceful") == 0)
                return "graceful shutdown";
        if (strcmp(step, "sigterm") == 0)
                return "SIGTERM after the graceful stop timed out";
        if (strcmp(step, "sigkill") == 0)
                return "SIGKILL";
        return step;
}
