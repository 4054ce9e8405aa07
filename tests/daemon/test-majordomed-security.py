#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""majordomed on a private system-like bus, with a fake polkit, called by an
unprivileged uid: the files StartVm opens are opened with the caller's
rights, block devices need org.majordome.manage-devices, another uid's VM
needs org.majordome.manage-any-vm, and polkit checks are bounded per caller
and never leak. Prints TAP. Needs root (to run a
second uid)."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("majordomed_tests", os.path.join(HERE, "test-majordomed.py"))
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)

NAME, PATH, IFACE, VM_IFACE = T.NAME, T.PATH, T.IFACE, T.VM_IFACE
NOBODY = 65534
MANAGE = "org.majordome.manage-vms"
DEVICES = "org.majordome.manage-devices"
ANY = "org.majordome.manage-any-vm"

# Answers CheckAuthorization from a JSON file read at each step:
# {"grant": [actions], "hold": bool}; while "hold" is set, answers wait.
# Each question is logged, one action a line, so a test knows how many wait.
FAKE_POLKIT = r'''
import json, sys
import dbus, dbus.mainloop.glib, dbus.service
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
address, conf, log = sys.argv[1:4]
bus = dbus.bus.BusConnection(address)
held = []

def flush():
    with open(conf) as f:
        c = json.load(f)
    while held and not c.get("hold"):
        action, ok = held.pop(0)
        ok((action in c.get("grant", []), False, {}))
    return True

class Authority(dbus.service.Object):
    @dbus.service.method("org.freedesktop.PolicyKit1.Authority", in_signature="(sa{sv})sa{ss}us",
                         out_signature="(bba{ss})", async_callbacks=("ok", "err"))
    def CheckAuthorization(self, subject, action, details, flags, cancel, ok, err):
        with open(log, "a") as f:
            f.write(str(action) + "\n")
        held.append((str(action), ok))
        flush()

Authority(bus, "/org/freedesktop/PolicyKit1/Authority")
name = dbus.service.BusName("org.freedesktop.PolicyKit1", bus)
GLib.timeout_add(10, flush)
print("ready", flush=True)
GLib.MainLoop().run()
'''

# Run as nobody: sends calls (a JSON list of [path, iface, method, args])
# on one connection, all at once, and prints one JSON result per call:
# "ok" or the D-Bus error name and message. Arguments ["h", n] are fds.
CALLER = r'''
import json, sys
import dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
address, calls = sys.argv[1], json.loads(sys.argv[2])
conn = dbus.bus.BusConnection(address)

def conv(v):
    if isinstance(v, list) and len(v) == 2 and v[0] in ("h", "s", "t", "u", "b"):
        return {"h": lambda x: dbus.types.UnixFd(x), "s": dbus.String, "t": dbus.UInt64,
                "u": dbus.UInt32, "b": dbus.Boolean}[v[0]](v[1])
    if isinstance(v, list):
        return dbus.Array([conv(x) for x in v], signature="a{sv}")
    if isinstance(v, dict):
        return dbus.Dictionary({k: conv(x) for k, x in v.items()}, signature="sv")
    return v

results = [None] * len(calls)
loop = GLib.MainLoop()

def done(i, r):
    results[i] = r
    if all(x is not None for x in results):
        loop.quit()

for i, (path, iface, method, args) in enumerate(calls):
    obj = conn.get_object("org.majordome.VmManager1", path, introspect=False)
    obj.get_dbus_method(method, iface)(*[conv(a) for a in args], timeout=120,
        reply_handler=lambda *a, i=i: done(i, ["ok"]),
        error_handler=lambda e, i=i: done(i, [e.get_dbus_name(), e.get_dbus_message()]))
GLib.timeout_add(110000, loop.quit)
loop.run()
print(json.dumps(results), flush=True)
'''


class Setup:
    """A bus, the fake polkit, majordomed (system mode, --verbose), and a
    directory nobody can enter (the root-only files) beside one nobody owns."""

    def __init__(self, grant=(MANAGE,), hold=False):
        self.bus = T.Bus(system=True, services=("org.freedesktop.PolicyKit1",))
        self.tmp = tempfile.mkdtemp(prefix="majordome-sec-")
        os.chmod(self.tmp, 0o755)
        self.conf = os.path.join(self.tmp, "polkit.json")
        self.asked_log = os.path.join(self.tmp, "polkit.log")
        open(self.asked_log, "w").close()
        self.set_polkit(grant, hold)
        self.polkit = subprocess.Popen(["/usr/bin/python3", "-c", FAKE_POLKIT, self.bus.address, self.conf,
                                        self.asked_log], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        T.check(self.polkit.stdout.readline().strip() == b"ready", "the fake polkit did not start")
        self.daemon = T.Daemon(self.bus, extra=["--verbose"])
        self.root_only = os.path.join(self.tmp, "root-only")
        os.mkdir(self.root_only, 0o700)
        self.secret = os.path.join(self.root_only, "secret")
        with open(self.secret, "w") as f:
            f.write("root:secret\n")
        self.mine = os.path.join(self.tmp, "nobody")
        os.mkdir(self.mine, 0o755)
        os.chown(self.mine, NOBODY, NOBODY)
        # a kernel nobody may read wherever the build tree is
        self.kernel = os.path.join(self.tmp, "spin.elf")
        shutil.copy(T.SPIN, self.kernel)
        os.chmod(self.kernel, 0o644)

    def set_polkit(self, grant, hold):
        with open(self.conf + ".new", "w") as f:
            json.dump({"grant": list(grant), "hold": hold}, f)
        os.rename(self.conf + ".new", self.conf)

    def asked(self):
        with open(self.asked_log) as f:
            return f.read().split()

    def as_nobody(self, calls, fds=(), wait=True):
        p = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                              "/usr/bin/python3", "-c", CALLER, self.bus.address, json.dumps(calls)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=fds)
        return self.wait_caller(p) if wait else p

    @staticmethod
    def wait_caller(p):
        out, err = p.communicate(timeout=150)
        T.check(p.returncode == 0, "caller failed: %s" % err)
        return json.loads(out)

    def start_as_nobody(self, config, fds=()):
        return self.as_nobody([[PATH, IFACE, "StartVm", ["sec", config]]], fds)[0]

    def debug_counts(self):
        with open(self.daemon.log_path) as f:
            return [int(n) for n in re.findall(r"polkit: .*?(\d+) checks under way", f.read())]

    def close(self):
        self.daemon.close()
        self.polkit.terminate()
        self.polkit.wait()
        self.bus.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def expect_refused(result, name, words):
    T.check(result[0] == name, "want %s, got %s" % (name, result))
    T.check(words in result[1], "%r not in %r" % (words, result[1]))


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ---- defect: StartVm's files opened with the daemon's rights ----

@test
def nobody_naming_root_only_files_is_refused():
    s = Setup()
    try:
        for key in ("kernel", "initrd"):
            cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM]}
            cfg[key] = ["s", s.secret]
            expect_refused(s.start_as_nobody(cfg), "org.majordome.Error.InvalidConfig",
                           "%s: cannot open '%s': Permission denied" % (key, s.secret))
        cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM],
               "disks": [{"path": ["s", s.secret], "read_only": ["b", True]}]}
        expect_refused(s.start_as_nobody(cfg), "org.majordome.Error.InvalidConfig",
                       "disks[0].path: cannot open '%s': Permission denied" % s.secret)
        # a file readable only through the directory root may enter
        open_dir = os.path.join(s.root_only, "readable")
        with open(open_dir, "w") as f:
            f.write("x")
        os.chmod(open_dir, 0o644)
        cfg = {"kernel": ["s", s.kernel], "initrd": ["s", open_dir]}
        expect_refused(s.start_as_nobody(cfg), "org.majordome.Error.InvalidConfig", "Permission denied")
        T.check(len(T.Client(s.bus).mgr.ListVms()) == 0, "a VM was created")
    finally:
        s.close()


@test
def nobody_serial_log_in_root_only_directory_is_not_created():
    s = Setup()
    try:
        log = os.path.join(s.root_only, "console.log")
        cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM], "serial_log": ["s", log]}
        expect_refused(s.start_as_nobody(cfg), "org.majordome.Error.InvalidConfig",
                       "serial_log: cannot open '%s': Permission denied" % log)
        T.check(not os.path.exists(log), "root created %s for nobody" % log)
        # nor is a root-owned file truncated
        T.check(open(s.secret).read() == "root:secret\n", "the secret changed")
        cfg["serial_log"] = ["s", s.secret]
        expect_refused(s.start_as_nobody(cfg), "org.majordome.Error.InvalidConfig", "Permission denied")
        T.check(open(s.secret).read() == "root:secret\n", "root truncated a file for nobody")
    finally:
        s.close()


@test
def nobody_serial_log_is_created_as_nobody():
    s = Setup()
    try:
        log = os.path.join(s.mine, "console.log")
        cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM], "serial_log": ["s", log]}
        result = s.start_as_nobody(cfg)
        st = os.stat(log)
        T.check((st.st_uid, st.st_gid) == (NOBODY, NOBODY), "the log is owned by %d:%d" % (st.st_uid, st.st_gid))
        if result[0] == "ok":
            T.Client(s.bus).mgr.StopVm("sec", "kill", dbus.UInt32(0), timeout=60)
    finally:
        s.close()


@test
def o_path_descriptors_are_refused():
    s = Setup()
    fd = os.open(s.secret, os.O_PATH | os.O_CLOEXEC)
    try:
        for cfg, key in [({"kernel": ["h", fd]}, "kernel"),
                         ({"kernel": ["s", s.kernel], "initrd": ["h", fd]}, "initrd"),
                         ({"kernel": ["s", s.kernel], "serial_log": ["h", fd]}, "serial_log"),
                         ({"kernel": ["s", s.kernel], "disks": [{"fd": ["h", fd], "read_only": ["b", True]}]},
                          "disks[0].fd")]:
            expect_refused(s.start_as_nobody(cfg, fds=[fd]), "org.majordome.Error.InvalidConfig",
                           "%s: the descriptor is an O_PATH descriptor" % key)
    finally:
        os.close(fd)
        s.close()


@test
def read_only_descriptor_for_read_write_disk_is_refused():
    s = Setup()
    img = os.path.join(s.mine, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(img, 0o666)
    fd = os.open(img, os.O_RDONLY | os.O_CLOEXEC)
    try:
        cfg = {"kernel": ["s", s.kernel], "disks": [{"fd": ["h", fd]}]}
        expect_refused(s.start_as_nobody(cfg, fds=[fd]), "org.majordome.Error.InvalidConfig",
                       "disks[0].fd: the descriptor is not open for reading and writing")
    finally:
        os.close(fd)
        s.close()


@test
def block_device_without_manage_devices_is_refused():
    dev = next((d for d in ["/dev/loop0", "/dev/loop1", "/dev/ram0"] if os.path.exists(d)), None)
    if not dev:
        raise T.Skip("no block device to open")
    s = Setup()
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        s.close()
        raise T.Skip("%s: %s" % (dev, e.strerror))
    try:
        cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM],
               "disks": [{"fd": ["h", fd], "read_only": ["b", True]}]}
        expect_refused(s.start_as_nobody(cfg, fds=[fd]), "org.majordome.Error.AccessDenied", DEVICES)
        T.check(s.asked() == [MANAGE, DEVICES], "polkit was asked %s" % s.asked())
        T.check(len(T.Client(s.bus).mgr.ListVms()) == 0, "a VM was created")
    finally:
        os.close(fd)
        s.close()


# ---- defect: polkit slots exhaustible by one caller ----

@test
def flooding_sender_gets_busy_while_another_sender_is_answered():
    s = Setup(grant=(MANAGE,), hold=True)
    try:
        flood = s.as_nobody([[PATH, IFACE, "StopAllVms", []]] * 20, wait=False)
        T.check(T.wait_until(lambda: len(s.asked()) >= 16, 30), "polkit asked %d times" % len(s.asked()))
        # a second caller is still heard while the first one waits
        other = s.as_nobody([[PATH, IFACE, "StopAllVms", []]], wait=False)
        T.check(T.wait_until(lambda: len(s.asked()) >= 17, 30), "the second caller was not asked about")
        s.set_polkit([MANAGE], hold=False)
        T.check(s.wait_caller(other) == [["ok"]], "the second caller was not answered")
        results = s.wait_caller(flood)
        busy = [r for r in results if r[0] == "org.majordome.Error.Busy"]
        T.check(len(busy) == 4 and results.count(["ok"]) == 16, "flood results: %s" % results)
        T.check("this caller" in busy[0][1], busy[0][1])
    finally:
        s.close()


@test
def start_vm_config_too_large_is_refused_before_polkit():
    s = Setup()
    try:
        cfg = {"kernel": ["s", s.kernel], "cmdline": ["s", "x" * (100 * 1024)]}
        expect_refused(s.start_as_nobody(cfg), "org.majordome.Error.InvalidConfig", "config: too large")
        T.check(s.asked() == [], "polkit was asked %s" % s.asked())
    finally:
        s.close()


@test
def failing_redispatches_leave_no_polkit_check_behind():
    T.need_kvm()
    s = Setup(grant=(MANAGE,), hold=True)
    c = T.Client(s.bus)
    try:
        path = c.start("victim", kernel=dbus.String(s.kernel))
        calls = s.as_nobody([[path, VM_IFACE, "Pause", []]] * 16, wait=False)
        T.check(T.wait_until(lambda: len(s.asked()) >= 16, 30), "polkit asked %d times" % len(s.asked()))
        c.vm(path).Kill()
        T.check(T.wait_until(lambda: len(c.mgr.ListVms()) == 0, 30), "the VM did not go")
        # the answers come once the VM is gone: each call fails before it
        # gets back to its authorization check
        s.set_polkit([MANAGE], hold=False)
        results = s.wait_caller(calls)
        T.check(all(r[0] != "ok" for r in results), "results: %s" % results)
        T.check(T.wait_until(lambda: s.debug_counts() and s.debug_counts()[-1] == 0, 30),
                "polkit checks left: %s" % s.debug_counts()[-3:])
        # and the caller's slots are free again
        again = s.as_nobody([[PATH, IFACE, "StopAllVms", []]] * 16)
        T.check(again == [["ok"]] * 16, "after: %s" % again)
    finally:
        c.close()
        s.close()


@test
def checks_of_a_caller_that_left_are_dropped():
    s = Setup(grant=(MANAGE,), hold=True)
    try:
        p = s.as_nobody([[PATH, IFACE, "StopAllVms", []]] * 16, wait=False)
        T.check(T.wait_until(lambda: len(s.asked()) >= 16, 30), "polkit asked %d times" % len(s.asked()))
        p.kill()
        p.wait()
        # polkit still holds its answers: the caller's leaving freed them
        T.check(T.wait_until(lambda: s.debug_counts() and s.debug_counts()[-1] == 0, 30),
                "polkit checks left: %s" % s.debug_counts()[-3:])
    finally:
        s.close()


# ---- a VM is changed by the uid that started it ----

@test
def another_users_vm_needs_manage_any_vm_and_ones_own_does_not():
    T.need_kvm()
    s = Setup(grant=(MANAGE,))
    c = T.Client(s.bus)
    try:
        roots = c.start("roots", kernel=dbus.String(s.kernel))
        T.check(c.prop(roots, "Owner") == 0, "Owner %s" % c.prop(roots, "Owner"))
        expect_refused(s.as_nobody([[roots, VM_IFACE, "Pause", []]])[0], "org.majordome.Error.AccessDenied",
                       "Not authorized (%s)" % ANY)
        T.check(s.asked() == [MANAGE, ANY], "polkit asked: %s" % s.asked())
        T.check(c.prop(roots, "State") == "running", "root's VM was paused")
        # one's own VM: manage-vms alone
        T.check(s.start_as_nobody({"kernel": ["s", s.kernel], "memory": ["t", T.MEM]}) == ["ok"], "start")
        mine = next(str(p) for n, _, p in c.mgr.ListVms() if str(n) == "sec")
        T.check(c.prop(mine, "Owner") == NOBODY, "Owner %s" % c.prop(mine, "Owner"))
        open(s.asked_log, "w").close()
        T.check(s.as_nobody([[mine, VM_IFACE, "Pause", []]]) == [["ok"]], "own VM not paused")
        T.check(s.asked() == [MANAGE], "polkit asked: %s" % s.asked())
        # StopAllVms reaches root's VM too
        expect_refused(s.as_nobody([[PATH, IFACE, "StopAllVms", []]])[0], "org.majordome.Error.AccessDenied", ANY)
        s.set_polkit([MANAGE, ANY], hold=False)
        T.check(s.as_nobody([[roots, VM_IFACE, "Pause", []]]) == [["ok"]], "manage-any-vm did not do")
        T.check(c.prop(roots, "State") == "paused", "root's VM not paused")
    finally:
        c.close()
        s.close()


if __name__ == "__main__":
    sys.exit(T.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon", "setpriv"]))
