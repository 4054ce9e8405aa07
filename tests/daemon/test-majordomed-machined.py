#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Each VMM in a scope of its own under machine.slice, registered with
systemd-machined (daemon/machined.c), and StartVm's memory_max and
cpu_weight. systemd cannot run here (PID 1 is not systemd, and machined
needs it), so its two D-Bus services are stand-ins on a private system-like
bus that record each call: what is checked is what majordomed asks, with
which values, and that it goes on without them. Uses test-majordomed.py's
helpers; prints TAP."""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("majordomed_tests", os.path.join(HERE, "test-majordomed.py"))
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)

SYSTEMD, MACHINED = "org.freedesktop.systemd1", "org.freedesktop.machine1"
INVALID = "org.majordome.Error.InvalidConfig"

# systemd1's StartTransientUnit and machine1's RegisterMachine, recorded one
# JSON line per call; a unit asked for twice gets UnitExists, as from systemd.
STAND_IN = r'''
import json, sys
import dbus, dbus.mainloop.glib, dbus.service
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
address, log, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
bus = dbus.bus.BusConnection(address)
units = set()

def record(call, **kw):
    with open(log, "a") as f:
        f.write(json.dumps(dict(call=call, **kw)) + "\n")

class UnitExists(dbus.DBusException):
    _dbus_error_name = "org.freedesktop.systemd1.UnitExists"

class Systemd(dbus.service.Object):
    @dbus.service.method("org.freedesktop.systemd1.Manager", in_signature="ssa(sv)a(sa(sv))", out_signature="o")
    def StartTransientUnit(self, name, mode, props, aux):
        p = {str(k): (list(int(x) for x in v) if isinstance(v, dbus.Array) else
                      int(v) if isinstance(v, (dbus.UInt64, dbus.UInt32)) else str(v)) for k, v in props}
        record("StartTransientUnit", name=str(name), mode=str(mode), props=p, aux=len(aux))
        if str(name) in units:
            raise UnitExists("Unit %s already exists." % name)
        units.add(str(name))
        return dbus.ObjectPath("/org/freedesktop/systemd1/job/1")

class Machined(dbus.service.Object):
    @dbus.service.method("org.freedesktop.machine1.Manager", in_signature="sayssus", out_signature="o")
    def RegisterMachine(self, name, ident, service, klass, leader, root):
        record("RegisterMachine", name=str(name), id=len(ident), service=str(service), klass=str(klass),
               leader=int(leader), root=str(root))
        return dbus.ObjectPath("/org/freedesktop/machine1/machine/" + str(name))

keep = []
if "systemd" in names:
    keep += [dbus.service.BusName("org.freedesktop.systemd1", bus), Systemd(bus, "/org/freedesktop/systemd1")]
if "machined" in names:
    keep += [dbus.service.BusName("org.freedesktop.machine1", bus), Machined(bus, "/org/freedesktop/machine1")]
print("ready", flush=True)
GLib.MainLoop().run()
'''

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    """A system-like bus, the stand-ins asked for, majordomed on it."""

    def __init__(self, stand_ins=("systemd", "machined")):
        self.bus = T.Bus(system=True, services=(SYSTEMD, MACHINED))
        self.tmp = tempfile.mkdtemp(prefix="majordome-machined-")
        self.log = os.path.join(self.tmp, "calls")
        open(self.log, "w").close()
        self.stand_in = None
        if stand_ins:
            self.stand_in = subprocess.Popen(["/usr/bin/python3", "-c", STAND_IN, self.bus.address, self.log,
                                              ",".join(stand_ins)], stdout=subprocess.PIPE)
            T.check(self.stand_in.stdout.readline().strip() == b"ready", "the stand-ins did not start")
        self.daemon = T.Daemon(self.bus)
        self.c = T.Client(self.bus)

    def calls(self, name=None):
        with open(self.log) as f:
            return [c for c in map(json.loads, f) if name is None or c["call"] == name]

    def daemon_log(self):
        with open(self.daemon.log_path) as f:
            return f.read()

    def close(self):
        if sys.exc_info()[0] is not None:
            for line in self.daemon.log_tail(20):
                print("# majordomed: " + line)
        self.c.close()
        self.daemon.close()
        if self.stand_in:
            self.stand_in.terminate()
            self.stand_in.wait()
        self.bus.close()
        subprocess.call(["rm", "-rf", self.tmp])


@test
def vmm_gets_a_scope_with_its_limits_and_a_machined_record():
    T.need_kvm()
    e = Env()
    try:
        path = e.c.start("web", memory_max=dbus.UInt64(256 << 20), cpu_weight=dbus.UInt64(50))
        pid = int(e.c.prop(path, "Pid"))
        T.check(T.wait_until(lambda: str(e.c.prop(path, "Scope")) == "majordome-web.scope", 10),
                "Scope is %r" % e.c.prop(path, "Scope"))
        T.check(T.wait_until(lambda: e.calls("RegisterMachine"), 10), "machined was not asked")
        unit = e.calls("StartTransientUnit")
        T.check(len(unit) == 1, str(unit))
        T.check(unit[0]["name"] == "majordome-web.scope" and unit[0]["mode"] == "fail", str(unit))
        T.check(unit[0]["props"] == {"Description": "Majordome VM", "Slice": "machine.slice", "PIDs": [pid],
                                     "MemoryMax": 256 << 20, "CPUWeight": 50}, str(unit[0]["props"]))
        reg = e.calls("RegisterMachine")
        T.check(reg == [dict(call="RegisterMachine", name="web", id=0, service="majordome", klass="vm",
                             leader=pid, root="")], str(reg))
        info = e.c.mgr.GetVmInfo("web")
        T.check(str(info["Scope"]) == "majordome-web.scope", str(info.get("Scope")))
        T.check("VM web: registered with systemd-machined" in e.daemon_log(), "no log line")
    finally:
        e.close()


@test
def without_limits_the_scope_has_none():
    T.need_kvm()
    e = Env()
    try:
        e.c.start("plain")
        T.check(T.wait_until(lambda: e.calls("RegisterMachine"), 10), "machined was not asked")
        props = e.calls("StartTransientUnit")[0]["props"]
        T.check("MemoryMax" not in props and "CPUWeight" not in props, str(props))
    finally:
        e.close()


@test
def without_systemd_the_vm_runs_in_the_daemons_cgroup_and_it_says_so_once():
    T.need_kvm()
    e = Env(stand_ins=())
    try:
        a = e.c.start("a", memory_max=dbus.UInt64(128 << 20))
        b = e.c.start("b")
        T.check(T.wait_until(lambda: e.daemon_log().count("the service manager is not on the bus") == 1, 10),
                "no or repeated notice:\n" + e.daemon_log())
        T.check(T.wait_until(lambda: "VM a: memory_max and cpu_weight not applied" in e.daemon_log(), 5),
                "the unapplied limit was not reported")
        time.sleep(0.5)
        T.check(e.daemon_log().count("the service manager is not on the bus") == 1, "said twice")
        for p in (a, b):
            T.check(e.c.prop(p, "State") == "running" and str(e.c.prop(p, "Scope")) == "", "%s" % p)
    finally:
        e.close()


@test
def without_machined_the_scope_is_made_and_it_says_so():
    T.need_kvm()
    e = Env(stand_ins=("systemd",))
    try:
        path = e.c.start("solo")
        T.check(T.wait_until(lambda: "systemd-machined is not running" in e.daemon_log(), 10),
                "no notice:\n" + e.daemon_log())
        T.check(str(e.c.prop(path, "Scope")) == "majordome-solo.scope", "Scope")
        T.check(e.c.prop(path, "State") == "running", "not running")
    finally:
        e.close()


@test
def an_adopted_vmm_keeps_its_scope_after_a_daemon_restart():
    T.need_kvm()
    e = Env()
    try:
        path = e.c.start("kept")
        T.check(T.wait_until(lambda: e.calls("RegisterMachine"), 10), "machined was not asked")
        e.daemon.kill()
        e.daemon.start()
        # The unit exists: systemd says UnitExists, which is the scope it has.
        T.check(T.wait_until(lambda: str(e.c.prop(path, "Scope")) == "majordome-kept.scope", 10),
                "Scope after the restart: %r" % e.c.prop(path, "Scope"))
        T.check("its scope" not in e.daemon_log(), "a warning about the existing scope")
    finally:
        e.close()


@test
def bad_limits_are_refused():
    e = Env(stand_ins=())
    try:
        for key, v, words in (("memory_max", dbus.UInt64(1 << 20), "memory_max: 1048576 is under 64 MiB"),
                              ("cpu_weight", dbus.UInt64(0), "cpu_weight: 0 is not between 1 and 10000"),
                              ("cpu_weight", dbus.UInt64(10001), "cpu_weight: 10001 is not between 1 and 10000"),
                              ("cpu_weight", dbus.UInt32(5), "cpu_weight")):
            msg = T.expect_error(INVALID, e.c.start, "bad", **{key: v})
            T.check(words in msg, "%r not in %r" % (words, msg))
        T.check(len(e.c.mgr.ListVms()) == 0, "a VM was created")
    finally:
        e.close()


if __name__ == "__main__":
    sys.exit(T.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon"]))
