// SPDX-License-Identifier: BSD-3-Clause
// What vmc prints and sends, without a bus: object paths, error lines,
// JSON, tables, StartVm's parameters, and the calls against dbus/*.xml.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gio/gunixfdlist.h>
#include <systemd/sd-bus.h>

#include "client/vmc-args.h"
#include "client/vmc-commands.h"
#include "client/vmc-format.h"

namespace {

std::string take(char *s) {
        std::string r = s ? s : "";
        g_free(s);
        return r;
}

GVariant *parse_variant(const char *type, const char *text) {
        GError *error = nullptr;
        GVariant *v = g_variant_parse(G_VARIANT_TYPE(type), text, nullptr, nullptr, &error);
        EXPECT_NE(v, nullptr) << (error ? error->message : "");
        g_clear_error(&error);
        return g_variant_ref_sink(v);
}

std::string describe(const char *name, const char *message, const char *vm, int *exit_code) {
        char *text = nullptr;
        *exit_code = vmc_error_describe(name, message, vm, &text);
        return take(text);
}

}  // namespace

TEST(VmcFormat, object_paths_match_sd_bus_path_encode) {
        for (const char *name : {"demo", "my-vm", "vm.1", "0day", "a_b", "über", "x y", "", "VM42"}) {
                char *expected = nullptr;
                ASSERT_GE(sd_bus_path_encode(VMC_VM_PATH_PREFIX, name, &expected), 0);
                EXPECT_EQ(take(vmc_vm_object_path(name)), expected) << name;
                free(expected);
        }
}

TEST(VmcFormat, vm_exists_names_the_vm) {
        int code;
        std::string text = describe("org.majordome.Error.VmExists", "VM exists", "demo", &code);

        EXPECT_EQ(text, "a VM named 'demo' already exists");
        EXPECT_EQ(code, VMC_EXIT_FAILED);
}

TEST(VmcFormat, no_such_vm_exits_4) {
        int a, b;

        EXPECT_EQ(describe("org.majordome.Error.NoSuchVm", "", "ghost", &a), "no VM named 'ghost'");
        EXPECT_EQ(a, VMC_EXIT_NO_SUCH_VM);
        // A per-VM object that does not exist is the same thing.
        EXPECT_EQ(describe("org.freedesktop.DBus.Error.UnknownObject", "Unknown object", "ghost", &b),
                  "no VM named 'ghost'");
        EXPECT_EQ(b, VMC_EXIT_NO_SUCH_VM);
}

TEST(VmcFormat, not_running_is_short_and_exits_1) {
        int code;

        EXPECT_EQ(describe("org.majordome.Error.NotRunning", "VM 'demo' is starting", "demo", &code),
                  "VM 'demo' is not running");
        EXPECT_EQ(code, VMC_EXIT_FAILED);
}

TEST(VmcFormat, unreachable_daemon_exits_3) {
        int a, b, c;

        EXPECT_EQ(describe("org.freedesktop.DBus.Error.ServiceUnknown", "The name was not provided", "demo", &a),
                  "majordomed is not running on this bus");
        EXPECT_EQ(a, VMC_EXIT_UNREACHABLE);
        describe("org.freedesktop.DBus.Error.NoReply", "Message recipient disconnected", nullptr, &b);
        EXPECT_EQ(b, VMC_EXIT_UNREACHABLE);
        EXPECT_NE(describe("org.freedesktop.DBus.Error.Spawn.ChildExited", "exit 1", nullptr, &c).find("exit 1"),
                  std::string::npos);
        EXPECT_EQ(c, VMC_EXIT_UNREACHABLE);
}

TEST(VmcFormat, invalid_config_keeps_the_daemons_detail) {
        int code;
        std::string text = describe("org.majordome.Error.InvalidConfig", "unknown key 'disks'", "demo", &code);

        EXPECT_EQ(text, "invalid configuration: unknown key 'disks'");
        EXPECT_EQ(code, VMC_EXIT_FAILED);
}

TEST(VmcFormat, unknown_errors_fall_back_to_the_message_then_the_name) {
        int a, b;

        EXPECT_EQ(describe("com.example.Weird", "something odd", "demo", &a), "something odd");
        EXPECT_EQ(a, VMC_EXIT_FAILED);
        EXPECT_EQ(describe("com.example.Weird", "", "demo", &b), "com.example.Weird");
        EXPECT_EQ(b, VMC_EXIT_FAILED);
}

TEST(VmcFormat, errors_are_one_line) {
        int code;
        std::string text = describe("org.majordome.Error.VmmFailed", "line one\nline two\n", "demo", &code);

        EXPECT_EQ(text, "the VMM failed: line one line two");
        EXPECT_EQ(text.find('\n'), std::string::npos);
}

TEST(VmcFormat, errors_without_a_vm_name_use_the_generic_text) {
        int code;

        EXPECT_EQ(describe("org.majordome.Error.NoSuchVm", "", nullptr, &code), "no such VM");
        EXPECT_EQ(code, VMC_EXIT_NO_SUCH_VM);
}

TEST(VmcFormat, bytes_are_exact_when_whole_and_rounded_otherwise) {
        EXPECT_EQ(take(vmc_format_bytes(0)), "0 B");
        EXPECT_EQ(take(vmc_format_bytes(512ull << 20)), "512 MiB");
        EXPECT_EQ(take(vmc_format_bytes(1536ull << 20)), "1536 MiB");
        EXPECT_EQ(take(vmc_format_bytes(2ull << 30)), "2 GiB");
        EXPECT_EQ(take(vmc_format_bytes(1000)), "1000 B");
        EXPECT_EQ(take(vmc_format_bytes((3ull << 29) + 1)), "1.5 GiB");
}

TEST(VmcFormat, json_escapes_strings_and_keeps_64_bit_numbers) {
        GVariant *v = parse_variant("a{sv}",
                "{'s': <'a\"b\\\\c\\n\\u0001'>, 't': <uint64 18446744073709551615>, 'b': <true>,"
                " 'o': <objectpath '/x'>, 'i': <int32 -5>, 'a': <[uint32 1, 2]>, 'd': <{'k': uint64 7}>}");

        EXPECT_EQ(take(vmc_json_from_variant(v)),
                  "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"t\":18446744073709551615,\"b\":true,"
                  "\"o\":\"/x\",\"i\":-5,\"a\":[1,2],\"d\":{\"k\":7}}");
        g_variant_unref(v);
}

TEST(VmcFormat, json_of_empty_containers) {
        GVariant *a = parse_variant("a(sso)", "@a(sso) []");
        GVariant *d = parse_variant("a{sv}", "@a{sv} {}");

        EXPECT_EQ(take(vmc_json_from_variant(a)), "[]");
        EXPECT_EQ(take(vmc_json_from_variant(d)), "{}");
        g_variant_unref(a);
        g_variant_unref(d);
}

TEST(VmcFormat, list_table_has_columns_and_dashes_for_unknowns) {
        GVariant *info = parse_variant("a{sv}",
                "{'Vcpus': <uint32 2>, 'MemoryBytes': <uint64 536870912>, 'Pid': <uint32 1234>}");
        VmcListEntry entries[] = {
                { "demo", "running", "/org/majordome/VmManager1/vm/demo", info },
                { "a-long-name", "stopped", "/org/majordome/VmManager1/vm/a_2dlong_2dname", nullptr },
        };

        std::string out = take(vmc_format_list(entries, 2));

        EXPECT_EQ(out,
                  "NAME         STATE    VCPUS      MEMORY  PID\n"
                  "demo         running      2     512 MiB  1234\n"
                  "a-long-name  stopped      -           -  -\n");
        g_variant_unref(info);
}

TEST(VmcFormat, list_of_nothing_is_just_the_header) {
        EXPECT_EQ(take(vmc_format_list(nullptr, 0)), "NAME  STATE  VCPUS      MEMORY  PID\n");
        EXPECT_EQ(take(vmc_format_list_json(nullptr, 0)), "[]");
}

TEST(VmcFormat, list_json_merges_list_and_info) {
        GVariant *info = parse_variant("a{sv}", "{'Pid': <uint32 9>, 'State': <'paused'>}");
        VmcListEntry entry = { "demo", "running", "/org/majordome/VmManager1/vm/demo", info };

        EXPECT_EQ(take(vmc_format_list_json(&entry, 1)),
                  "[{\"Name\":\"demo\",\"State\":\"running\",\"Path\":\"/org/majordome/VmManager1/vm/demo\",\"Pid\":9}]");
        g_variant_unref(info);
}

TEST(VmcFormat, managed_objects_become_entries_oldest_first) {
        GVariant *objects = parse_variant("a{oa{sa{sv}}}",
                "{objectpath '/org/majordome/VmManager1/vm/young': {'org.majordome.Vm1': "
                "    {'Name': <'young'>, 'State': <'starting'>, 'StartTimeUsec': <uint64 20>}},"
                " objectpath '/org/majordome/VmManager1/vm/old': {'org.freedesktop.DBus.Peer': @a{sv} {},"
                "    'org.majordome.Vm1': {'Name': <'old'>, 'State': <'paused'>, 'StartTimeUsec': <uint64 10>,"
                "                          'Pid': <uint32 7>}},"
                " objectpath '/org/majordome/VmManager1/vm': {'org.freedesktop.DBus.Peer': @a{sv} {}}}");
        size_t n = 99;

        VmcListEntry *entries = vmc_list_entries_from_managed_objects(objects, &n);

        ASSERT_EQ(n, 2u);
        EXPECT_STREQ(entries[0].name, "old");
        EXPECT_STREQ(entries[0].state, "paused");
        EXPECT_STREQ(entries[0].path, "/org/majordome/VmManager1/vm/old");
        EXPECT_STREQ(entries[1].name, "young");
        EXPECT_EQ(take(vmc_format_list(entries, n)),
                  "NAME   STATE     VCPUS      MEMORY  PID\n"
                  "old    paused        -           -  7\n"
                  "young  starting      -           -  -\n");
        vmc_list_entries_free(entries, n);
        g_variant_unref(objects);
}

TEST(VmcFormat, managed_object_without_name_or_state_is_listed_with_dashes) {
        GVariant *objects = parse_variant("a{oa{sa{sv}}}",
                "{objectpath '/org/majordome/VmManager1/vm/half': {'org.majordome.Vm1': @a{sv} {}}}");
        size_t n = 0;

        VmcListEntry *entries = vmc_list_entries_from_managed_objects(objects, &n);

        ASSERT_EQ(n, 1u);
        EXPECT_STREQ(entries[0].name, "-");
        EXPECT_STREQ(entries[0].state, "-");
        EXPECT_EQ(take(vmc_format_list_json(entries, n)),
                  "[{\"Name\":\"-\",\"State\":\"-\",\"Path\":\"/org/majordome/VmManager1/vm/half\"}]");
        vmc_list_entries_free(entries, n);
        g_variant_unref(objects);
}

TEST(VmcFormat, no_managed_objects_is_an_empty_list) {
        GVariant *objects = parse_variant("a{oa{sa{sv}}}", "@a{oa{sa{sv}}} {}");
        size_t n = 99;

        VmcListEntry *entries = vmc_list_entries_from_managed_objects(objects, &n);

        EXPECT_EQ(n, 0u);
        EXPECT_EQ(take(vmc_format_list(entries, n)), "NAME  STATE  VCPUS      MEMORY  PID\n");
        vmc_list_entries_free(entries, n);
        g_variant_unref(objects);
}

TEST(VmcFormat, info_shows_known_properties_in_order_then_the_rest) {
        GVariant *info = parse_variant("a{sv}",
                "{'Zeta': <'z'>, 'State': <'running'>, 'Name': <'demo'>, 'Cid': <uint32 0>,"
                " 'MemoryBytes': <uint64 268435456>, 'LogPath': <'/run/x.log'>}");

        EXPECT_EQ(take(vmc_format_info(info)),
                  "Name            demo\n"
                  "State           running\n"
                  "Memory          256 MiB\n"
                  "vsock CID       none\n"
                  "Log             /run/x.log\n"
                  "Zeta            z\n");
        g_variant_unref(info);
}

TEST(VmcFormat, info_says_why_a_vm_failed_and_nothing_when_it_did_not) {
        GVariant *failed = parse_variant("a{sv}",
                "{'State': <'failed'>, 'FailedReason': <'the VMM speaks control protocol v2, this daemon v1'>}");
        GVariant *running = parse_variant("a{sv}", "{'State': <'running'>, 'FailedReason': <''>}");

        EXPECT_EQ(take(vmc_format_info(failed)),
                  "State           failed\n"
                  "Failed because  the VMM speaks control protocol v2, this daemon v1\n");
        EXPECT_EQ(take(vmc_format_info(running)), "State           running\n");
        for (GVariant *v : {failed, running})
                g_variant_unref(v);
}

TEST(VmcFormat, info_names_the_owner_where_the_uid_is_known) {
        GVariant *root = parse_variant("a{sv}", "{'Owner': <uint32 0>}");
        GVariant *unknown = parse_variant("a{sv}", "{'Owner': <uint32 4000000000>}");

        EXPECT_EQ(take(vmc_format_info(root)), "Owner           root (uid 0)\n");
        EXPECT_EQ(take(vmc_format_info(unknown)), "Owner           uid 4000000000\n");
        g_variant_unref(root);
        g_variant_unref(unknown);
}

TEST(VmcFormat, info_shows_the_gpu_in_one_line) {
        GVariant *info = parse_variant("a{sv}",
                "{'Name': <'demo'>, 'Gpu': <{'backend': <'2d'>, 'width': <uint32 800>, 'height': <uint32 600>,"
                " 'displays': <uint32 2>, 'max_memory': <uint64 268435456>, 'headless': <false>}>}");
        GVariant *headless = parse_variant("a{sv}",
                "{'Gpu': <{'backend': <'2d'>, 'width': <uint32 1024>, 'height': <uint32 768>,"
                " 'displays': <uint32 1>, 'max_memory': <uint64 67108864>, 'headless': <true>}>}");
        GVariant *none = parse_variant("a{sv}", "{'Gpu': <@a{sv} {}>}");

        EXPECT_EQ(take(vmc_format_info(info)),
                  "Name            demo\n"
                  "GPU             2d, 2 displays of 800x600, 256 MiB, on the host's compositor\n");
        EXPECT_EQ(take(vmc_format_info(headless)), "GPU             2d, 1 display of 1024x768, 64 MiB, headless\n");
        EXPECT_EQ(take(vmc_format_info(none)), "GPU             none\n");
        for (GVariant *v : {info, headless, none})
                g_variant_unref(v);
}

TEST(VmcFormat, info_shows_the_gpus_context_types_when_some_were_asked_for) {
        GVariant *cross = parse_variant("a{sv}",
                "{'Gpu': <{'backend': <'virglrenderer'>, 'width': <uint32 800>, 'height': <uint32 600>,"
                " 'displays': <uint32 1>, 'max_memory': <uint64 268435456>, 'context_types': <'virgl:cross-domain'>,"
                " 'headless': <false>}>}");
        GVariant *own = parse_variant("a{sv}",
                "{'Gpu': <{'backend': <'2d'>, 'width': <uint32 800>, 'height': <uint32 600>,"
                " 'displays': <uint32 1>, 'max_memory': <uint64 268435456>, 'context_types': <''>,"
                " 'headless': <true>}>}");

        EXPECT_EQ(take(vmc_format_info(cross)), "GPU             virglrenderer, 1 display of 800x600, 256 MiB, on the "
                                                "host's compositor, contexts virgl:cross-domain\n");
        EXPECT_EQ(take(vmc_format_info(own)), "GPU             2d, 1 display of 800x600, 256 MiB, headless\n");
        for (GVariant *v : {cross, own})
                g_variant_unref(v);
}

TEST(VmcFormat, info_shows_pci_devices_as_lspci_does) {
        GVariant *info = parse_variant("a{sv}",
                "{'Name': <'demo'>, 'Devices': <[(uint16 0x1b36, uint16 0x0011, byte 0, byte 1, byte 0),"
                "                                  (uint16 0x1af4, uint16 0x1053, byte 0, byte 0x1f, byte 7)]>}");
        GVariant *none = parse_variant("a{sv}", "{'Devices': <@a(qqyyy) []>}");

        EXPECT_EQ(take(vmc_format_info(info)),
                  "Name            demo\n"
                  "PCI devices     1b36:0011 at 00:01.0, 1af4:1053 at 00:1f.7\n");
        EXPECT_EQ(take(vmc_format_info(none)), "PCI devices     -\n");
        g_variant_unref(info);
        g_variant_unref(none);
}

TEST(VmcFormat, balloon_stats_are_sorted_with_sizes_for_memory) {
        GVariant *stats = parse_variant("a{st}", "{'swap_in': 7, 'free_memory': 209715200}");

        EXPECT_EQ(take(vmc_format_balloon_stats(stats)),
                  "free_memory  200 MiB\n"
                  "swap_in      7\n");
        g_variant_unref(stats);
}

TEST(VmcFormat, stop_steps_read_as_text) {
        EXPECT_STREQ(vmc_stop_step_describe("graceful"), "graceful shutdown");
        EXPECT_STREQ(vmc_stop_step_describe("sigkill"), "SIGKILL");
        EXPECT_STREQ(vmc_stop_step_describe("future-step"), "future-step");
}

namespace {

struct TempFile {
        char path[64] = "/tmp/vmc-test-XXXXXX";
        TempFile(const char *content) {
                int fd = mkstemp(path);
                EXPECT_GE(fd, 0);
                EXPECT_EQ(write(fd, content, strlen(content)), (ssize_t) strlen(content));
                close(fd);
        }
        ~TempFile() { unlink(path); }
};

}  // namespace

TEST(VmcStart, files_travel_as_fds_and_numbers_with_their_types) {
        TempFile kernel("kernel"), disk("disk");
        std::string ro_disk = std::string(disk.path);
        VmcArgs args{};
        args.command = VMC_COMMAND_START;
        args.name = "demo";
        args.kernel = kernel.path;
        args.cmdline = "console=ttyS0";
        args.memory = 512ull << 20;
        args.cpus = 2;
        args.debug_exit = true;
        args.disks[0].path = disk.path;
        args.disks[0].read_only = true;
        args.n_disks = 1;
        GUnixFDList *fds = nullptr;
        char *error = nullptr;

        GVariant *params = g_variant_ref_sink(vmc_start_parameters(&args, &fds, &error));

        ASSERT_NE(params, nullptr) << error;
        EXPECT_TRUE(g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv})")));
        GVariant *config = g_variant_get_child_value(params, 1);
        GVariant *kernel_v = g_variant_lookup_value(config, "kernel", nullptr);
        ASSERT_NE(kernel_v, nullptr);
        EXPECT_TRUE(g_variant_is_of_type(kernel_v, G_VARIANT_TYPE_HANDLE));
        EXPECT_EQ(g_variant_get_handle(kernel_v), 0);
        GVariant *mem = g_variant_lookup_value(config, "memory", G_VARIANT_TYPE_UINT64);
        ASSERT_NE(mem, nullptr);
        EXPECT_EQ(g_variant_get_uint64(mem), 512ull << 20);
        GVariant *cpus = g_variant_lookup_value(config, "cpus", G_VARIANT_TYPE_UINT32);
        ASSERT_NE(cpus, nullptr);
        EXPECT_EQ(g_variant_get_uint32(cpus), 2u);
        GVariant *dbg = g_variant_lookup_value(config, "debug_exit", G_VARIANT_TYPE_BOOLEAN);
        ASSERT_NE(dbg, nullptr);
        GVariant *disks = g_variant_lookup_value(config, "disks", G_VARIANT_TYPE("aa{sv}"));
        ASSERT_NE(disks, nullptr);
        EXPECT_EQ(g_variant_n_children(disks), 1u);

        // The fds are the files, and the read-only disk is open read-only.
        ASSERT_EQ(g_unix_fd_list_get_length(fds), 2);
        const gint *raw = g_unix_fd_list_peek_fds(fds, nullptr);
        char buf[16] = {};
        EXPECT_EQ(pread(raw[0], buf, sizeof(buf) - 1, 0), 6);
        EXPECT_STREQ(buf, "kernel");
        EXPECT_EQ(fcntl(raw[1], F_GETFL) & O_ACCMODE, O_RDONLY);
        EXPECT_TRUE(fcntl(raw[0], F_GETFD) & FD_CLOEXEC);

        for (GVariant *v : {config, kernel_v, mem, cpus, dbg, disks, params})
                g_variant_unref(v);
        g_object_unref(fds);
}

TEST(VmcStart, missing_kernel_file_is_named) {
        VmcArgs args{};
        args.name = "demo";
        args.kernel = "/nonexistent/vmlinux";
        GUnixFDList *fds = nullptr;
        char *error = nullptr;

        EXPECT_EQ(vmc_start_parameters(&args, &fds, &error), nullptr);
        std::string text = take(error);
        EXPECT_NE(text.find("cannot open kernel '/nonexistent/vmlinux'"), std::string::npos) << text;
        EXPECT_EQ(fds, nullptr);
}

TEST(VmcStart, directory_as_kernel_is_refused) {
        VmcArgs args{};
        args.name = "demo";
        args.kernel = "/tmp";
        GUnixFDList *fds = nullptr;
        char *error = nullptr;

        EXPECT_EQ(vmc_start_parameters(&args, &fds, &error), nullptr);
        EXPECT_NE(take(error).find("not a regular file"), std::string::npos);
}

// Every call vmc makes exists in dbus/*.xml with the argument types vmc
// sends and expects, so the client cannot drift from the API.
TEST(VmcApi, xml_declares_every_call_vmc_makes) {
        static const struct {
                const char *file, *iface, *method, *in, *out;
        } calls[] = {
                { "org.majordome.VmManager1.xml", VMC_MANAGER_INTERFACE, "StartVm", "sa{sv}", "o" },
                { "org.majordome.VmManager1.xml", VMC_MANAGER_INTERFACE, "StopVm", "ssu", "s" },
                { "org.majordome.VmManager1.xml", VMC_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "",
                  "a{oa{sa{sv}}}" },
                { "org.majordome.VmManager1.xml", VMC_MANAGER_INTERFACE, "GetVmInfo", "s", "a{sv}" },
                { "org.majordome.Vm1.xml", VMC_VM_INTERFACE, "Kill", "", "" },
                { "org.majordome.Vm1.xml", VMC_VM_INTERFACE, "Pause", "", "" },
                { "org.majordome.Vm1.xml", VMC_VM_INTERFACE, "Resume", "", "" },
                { "org.majordome.Vm1.xml", VMC_VM_INTERFACE, "SetBalloon", "t", "" },
                { "org.majordome.Vm1.xml", VMC_VM_INTERFACE, "GetBalloonStats", "", "a{st}" },
                { "org.majordome.Vm1.xml", VMC_VM_INTERFACE, "ResizeDisk", "ut", "" },
        };
        const char *src = getenv("MAJORDOME_SOURCE_DIR");
        if (!src)
                GTEST_SKIP() << "MAJORDOME_SOURCE_DIR not set";

        for (const auto &c : calls) {
                std::string path = std::string(src) + "/dbus/" + c.file;
                char *xml = nullptr;
                GError *error = nullptr;
                ASSERT_TRUE(g_file_get_contents(path.c_str(), &xml, nullptr, &error)) << path;
                GDBusNodeInfo *node = g_dbus_node_info_new_for_xml(xml, &error);
                g_free(xml);
                ASSERT_NE(node, nullptr) << error->message;
                GDBusInterfaceInfo *iface = g_dbus_node_info_lookup_interface(node, c.iface);
                ASSERT_NE(iface, nullptr) << c.iface;
                GDBusMethodInfo *m = g_dbus_interface_info_lookup_method(iface, c.method);
                ASSERT_NE(m, nullptr) << c.method;
                std::string in, out;
                for (GDBusArgInfo **a = m->in_args; a && *a; a++)
                        in += (*a)->signature;
                for (GDBusArgInfo **a = m->out_args; a && *a; a++)
                        out += (*a)->signature;
                EXPECT_EQ(in, c.in) << c.method;
                EXPECT_EQ(out, c.out) << c.method;
                g_dbus_node_info_unref(node);
        }
}

TEST(VmcApi, xml_declares_the_properties_and_signal_vmc_reads) {
        const char *src = getenv("MAJORDOME_SOURCE_DIR");
        if (!src)
                GTEST_SKIP() << "MAJORDOME_SOURCE_DIR not set";
        char *xml = nullptr;
        ASSERT_TRUE(g_file_get_contents((std::string(src) + "/dbus/org.majordome.Vm1.xml").c_str(), &xml, nullptr, nullptr));
        GDBusNodeInfo *node = g_dbus_node_info_new_for_xml(xml, nullptr);
        g_free(xml);
        ASSERT_NE(node, nullptr);
        GDBusInterfaceInfo *vm = g_dbus_node_info_lookup_interface(node, VMC_VM_INTERFACE);
        ASSERT_NE(vm, nullptr);
        static const struct { const char *name, *type; } props[] = {
                { "Name", "s" }, { "State", "s" }, { "Pid", "u" }, { "Cid", "u" }, { "Vcpus", "u" },
                { "MemoryBytes", "t" }, { "BalloonTargetBytes", "t" }, { "BalloonActualBytes", "t" },
                { "StartTimeUsec", "t" }, { "LogPath", "s" }, { "Gpu", "a{sv}" },
        };
        for (const auto &p : props) {
                GDBusPropertyInfo *info = g_dbus_interface_info_lookup_property(vm, p.name);
                ASSERT_NE(info, nullptr) << p.name;
                EXPECT_STREQ(info->signature, p.type) << p.name;
        }
        g_dbus_node_info_unref(node);

        ASSERT_TRUE(g_file_get_contents((std::string(src) + "/dbus/org.majordome.VmManager1.xml").c_str(), &xml, nullptr, nullptr));
        node = g_dbus_node_info_new_for_xml(xml, nullptr);
        g_free(xml);
        ASSERT_NE(node, nullptr);
        GDBusSignalInfo *sig = g_dbus_interface_info_lookup_signal(
                g_dbus_node_info_lookup_interface(node, VMC_MANAGER_INTERFACE), "VmStopped");
        ASSERT_NE(sig, nullptr);
        std::string s;
        for (GDBusArgInfo **a = sig->args; a && *a; a++)
                s += (*a)->signature;
        EXPECT_EQ(s, "sosis");
        g_dbus_node_info_unref(node);
}

TEST(VmcEscape, ControlCharactersAndBadUtf8AreShownNewlineAndTabKept) {
        g_autofree char *s = vmc_escape_text("a\x1b[2J\tb\nc\x7f\xff \xc3\xa9 \xc2\x9b x\r\ny\rz");
        EXPECT_STREQ(s, "a\\x1b[2J\tb\nc\\x7f\\xff \xc3\xa9 \\xc2\\x9b x\r\ny\\x0dz");
}

TEST(VmcEscape, SequenceSplitAcrossReadsIsLeftForTheNextCall) {
        g_autoptr(GString) out = g_string_new(NULL);
        const char first[] = "ok \xc3", second[] = "\xa9\r", third[] = "\n";

        EXPECT_EQ(vmc_escape_terminal(out, first, strlen(first), FALSE), strlen(first) - 1);
        std::string rest = std::string("\xc3") + second;
        EXPECT_EQ(vmc_escape_terminal(out, rest.data(), rest.size(), FALSE), rest.size() - 1);
        rest = std::string("\r") + third;
        EXPECT_EQ(vmc_escape_terminal(out, rest.data(), rest.size(), TRUE), rest.size());
        EXPECT_STREQ(out->str, "ok \xc3\xa9\r\n");
}

TEST(VmcEscape, InfoShowsEscapesInStringProperties) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "LogPath", g_variant_new_string("/run/x\x1b[2J.log"));
        g_autoptr(GVariant) info = g_variant_ref_sink(g_variant_builder_end(&b));
        g_autofree char *out = vmc_format_info(info);
        EXPECT_EQ(strchr(out, '\x1b'), nullptr) << out;
        EXPECT_NE(strstr(out, "/run/x\\x1b[2J.log"), nullptr) << out;
}
