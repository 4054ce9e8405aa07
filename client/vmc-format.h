/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* What vmc prints: tables, JSON, and one-line error texts. Pure functions
 * of D-Bus values (GVariant) so they are unit-tested without a bus. Every
 * returned string is g_free()d by the caller. */

#include <glib.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMC_BUS_NAME "org.majordome.VmManager1"
#define VMC_MANAGER_PATH "/org/majordome/VmManager1"
#define VMC_MANAGER_INTERFACE "org.majordome.VmManager1"
#define VMC_VM_INTERFACE "org.majordome.Vm1"
#define VMC_VM_PATH_PREFIX "/org/majordome/VmManager1/vm"

/* The object path of a VM as the daemon exports it: the name escaped like
 * sd_bus_path_encode() (everything but [A-Za-z0-9], and a leading digit,
 * becomes _xx in lower-case hex; "" becomes "_"). */
char *vmc_vm_object_path(const char *name);

/* Maps a D-Bus error to the exit code and the one-line text vmc shows.
 * error_name may be NULL (a local GIO error); message is the error's text
 * without GDBus's "GDBus.Error:NAME: " prefix; vm_name may be NULL. */
int vmc_error_describe(const char *error_name, const char *message, const char *vm_name, char **ret_text);

/* Appends text[0..n) to out, safe to show on a terminal: control
 * characters (C0 but newline, tab and the CR of a CRLF; DEL; C1) and bytes
 * that are not UTF-8 become \xNN, one per byte. Unless final, an
 * incomplete UTF-8 sequence or a CR at the end is left for the next call
 * (text split across reads): returns how many bytes were used. */
size_t vmc_escape_terminal(GString *out, const char *text, size_t n, gboolean final);

/* A NUL-terminated text escaped so; g_free() it. */
char *vmc_escape_text(const char *text);

/* "512 MiB" when exact, "1.5 GiB" (one decimal) otherwise. */
char *vmc_format_bytes(uint64_t bytes);

/* Any D-Bus value as JSON: dictionaries become objects (keys as strings),
 * other arrays and structs become arrays, variants are unwrapped, numbers
 * stay numbers (64-bit ones exact), strings and object paths are strings. */
char *vmc_json_from_variant(GVariant *v);

#define VMC_OBJECT_MANAGER_INTERFACE "org.freedesktop.DBus.ObjectManager"

/* One VM to list: its name, state, object path and, when known, its
 * properties. */
typedef struct VmcListEntry {
        const char *name;
        const char *state;
        const char *path;
        GVariant *info; /* a{sv} or NULL */
} VmcListEntry;

/* The VMs of a GetManagedObjects answer (a{oa{sa{sv}}}), oldest first
 * (StartTimeUsec, then name), as ListVms orders them. Objects without the
 * Vm1 interface are left out; a missing Name or State reads "-". The
 * strings point into objects, which must outlive the entries; each info
 * is a reference of its own: free all with vmc_list_entries_free(). */
VmcListEntry *vmc_list_entries_from_managed_objects(GVariant *objects, size_t *ret_n);
void vmc_list_entries_free(VmcListEntry *entries, size_t n);

/* NAME STATE VCPUS MEMORY PID, one line each, "-" for what is unknown. */
char *vmc_format_list(const VmcListEntry *entries, size_t n);

/* A JSON array of objects: each VM's properties (Vm1 names), with Name,
 * State and Path as the entries have them. */
char *vmc_format_list_json(const VmcListEntry *entries, size_t n);

/* "Name: demo" lines for the properties of GetVmInfo (a{sv}). */
char *vmc_format_info(GVariant *info);

/* "free_memory  512 MiB" lines for GetBalloonStats (a{st}), sorted. */
char *vmc_format_balloon_stats(GVariant *stats);

/* Text for a Stop reply's step: "graceful", "sigterm", "sigkill". */
const char *vmc_stop_step_describe(const char *step);

#ifdef __cplusplus
}
#endif
