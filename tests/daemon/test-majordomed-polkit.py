#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""majordomed on a private system-like bus with Debian's real polkitd, its
configuration the test's own: a private mount namespace binds a rules
directory (a JavaScript rule written here) and an actions directory (the
project's dbus/org.majordome.policy) over polkit's, so the host's are
neither used nor touched. Without logind no subject is local or active:
the rule decides by user name. Callers are unprivileged uids (setpriv).
Prints TAP. Needs root and /dev/kvm."""

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T = _load("majordomed_tests", "test-majordomed.py")
S = _load("majordomed_security_tests", "test-majordomed-security.py")

NAME, PATH, IFACE, VM_IFACE = T.NAME, T.PATH, T.IFACE, T.VM_IFACE
POLKITD = "/usr/lib/polkit-1/polkitd"
POLKIT_NAME = "org.freedesktop.PolicyKit1"
DENIED = "org.majordome.Error.AccessDenied"

# Existing unprivileged users, as polkit names subjects by user name:
# OWNER and OTHER may manage their own VMs, ADMIN any VM, STRANGER nothing
# (no rule: the action's defaults, auth_admin, which a caller without an
# agent cannot pass).
OWNER, OTHER, ADMIN, STRANGER = "daemon", "bin", "sys", "nobody"

RULES = """// written by test-majordomed-polkit.py
polkit.addRule(function(action, subject) {
    if (action.id == "org.majordome.manage-vms" &&
        ["%(owner)s", "%(other)s", "%(admin)s"].indexOf(subject.user) >= 0)
        return polkit.Result.YES;
    if (action.id == "org.majordome.manage-any-vm" && subject.user == "%(admin)s")
        return polkit.Result.YES;
});
""" % {"owner": OWNER, "other": OTHER, "admin": ADMIN}


def uid_of(user):
    return pwd.getpwnam(user).pw_uid


class Polkitd:
    """The real polkitd on bus, in a mount namespace of its own where only
    our rules and actions are where it looks. Started as root, it drops to
    its user polkitd itself (it refuses to start as any other uid)."""

    def __init__(self, bus, rules):
        self.dir = tempfile.mkdtemp(prefix="majordome-polkit-")
        os.chmod(self.dir, 0o755)
        self.rules = os.path.join(self.dir, "rules.d")
        self.actions = os.path.join(self.dir, "actions")
        empty = os.path.join(self.dir, "empty")
        for d in (self.rules, self.actions, empty):
            os.mkdir(d, 0o755)
        with open(os.path.join(self.rules, "50-majordome-test.rules"), "w") as f:
            f.write(rules)
        shutil.copy(os.path.join(T.SOURCE_DIR, "dbus", "org.majordome.policy"), self.actions)
        for d, _, files in os.walk(self.dir):
            for name in files:
                os.chmod(os.path.join(d, name), 0o644)
        binds = [(self.rules, "/etc/polkit-1/rules.d"), (empty, "/usr/share/polkit-1/rules.d"),
                 (self.actions, "/usr/share/polkit-1/actions")]
        script = "mount --make-rprivate / && " + "".join(
            "mount --bind %s %s && " % (src, dst) for src, dst in binds) + "exec %s --no-debug" % POLKITD
        self.log_path = self.dir + ".log"
        self.log = open(self.log_path, "w")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        conn = bus.connect()
        ok = T.wait_until(lambda: conn.name_has_owner(POLKIT_NAME) or self.proc.poll() is not None, 20)
        conn.close()
        T.check(ok and self.proc.poll() is None, "polkitd did not take its name: %s" % self.log_text())

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()
        os.unlink(self.log_path)
        shutil.rmtree(self.dir, ignore_errors=True)


class Setup:
    def __init__(self):
        self.bus = T.Bus(system=True, services=(POLKIT_NAME,), owner="polkitd")
        self.polkitd = None
        self.daemon = None
        try:
            self.polkitd = Polkitd(self.bus, RULES)
            self.daemon = T.Daemon(self.bus, extra=["--verbose"])
        except Exception:
            self.close()
            raise
        self.tmp = tempfile.mkdtemp(prefix="majordome-pk-")
        os.chmod(self.tmp, 0o755)
        # a kernel every caller may read wherever the build tree is
        self.kernel = os.path.join(self.tmp, "spin.elf")
        shutil.copy(T.SPIN, self.kernel)
        os.chmod(self.kernel, 0o644)
        self.root = T.Client(self.bus)

    def config(self, **extra):
        cfg = {"kernel": ["s", self.kernel], "memory": ["t", T.MEM], "balloon": ["b", True]}
        cfg.update(extra)
        return cfg

    def call_as(self, user, calls):
        """calls: [path, iface, method, args] sent by user on one
        connection; one result each, ["ok"] or [error name, message]."""
        pw = pwd.getpwnam(user)
        p = subprocess.Popen(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups",
                              "/usr/bin/python3", "-c", S.CALLER, self.bus.address, json.dumps(calls)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return S.Setup.wait_caller(p)

    def start_as(self, user, name):
        result = self.call_as(user, [[PATH, IFACE, "StartVm", [name, self.config()]]])[0]
        T.check(result == ["ok"], "%s could not start %s: %s" % (user, name, result))
        return self.vm_path(name)

    def vm_path(self, name):
        return next(str(p) for n, _, p in self.root.mgr.ListVms() if str(n) == name)

    def close(self):
        if getattr(self, "root", None):
            self.root.close()
        if self.daemon:
            self.daemon.close()
        if self.polkitd:
            self.polkitd.close()
        self.bus.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)


def methods(xml_file, iface):
    """(name, [(arg name, type)] of in-args) for each method of iface."""
    with open(os.path.join(T.SOURCE_DIR, "dbus", xml_file)) as f:
        root = ET.fromstring(f.read())
    for i in root.findall("interface"):
        if i.get("name") == iface:
            return [(m.get("name"), [(a.get("name"), a.get("type")) for a in m.findall("arg")
                                     if a.get("direction", "in") == "in"])
                    for m in i.findall("method")]
    raise AssertionError("%s has no %s" % (xml_file, iface))


def read_only(method):
    """The API's naming rule: Get* and List* only read."""
    return method.startswith(("Get", "List"))


def sample_args(s, method, args, vm_name):
    """Arguments that pass every check made before authorization, so an
    answer other than AccessDenied means the call was let through."""
    by_name = {"name": ["s", vm_name], "mode": ["s", "kill"], "timeout_ms": ["u", 0], "bytes": ["t", 1 << 20],
               "index": ["u", 0], "host_path": ["s", s.tmp], "tag": ["s", "t0"], "options": {}}
    out = []
    for arg, sig in args:
        if method == "StartVm" and arg == "config":
            out.append(s.config())
        elif method == "StartVm" and arg == "name":
            out.append(["s", "by-a-stranger"])
        else:
            T.check(arg in by_name, "no sample for %s's argument %s (%s)" % (method, arg, sig))
            out.append(by_name[arg])
    return out


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def allowed_user_starts_balloons_and_stops_a_vm():
    T.need_kvm()
    s = Setup()
    try:
        path = s.start_as(OWNER, "mine")
        T.check(s.root.prop(path, "Owner") == uid_of(OWNER), "Owner %s" % s.root.prop(path, "Owner"))
        r = s.call_as(OWNER, [[path, VM_IFACE, "SetBalloon", [["t", 16 << 20]]]])
        T.check(r == [["ok"]], "SetBalloon: %s" % r)
        T.check(s.root.prop(path, "BalloonTargetBytes") == 16 << 20, "BalloonTargetBytes")
        r = s.call_as(OWNER, [[PATH, IFACE, "StopVm", ["mine", "graceful", ["u", 2000]]]])
        T.check(r == [["ok"]], "StopVm: %s" % r)
        T.check(T.wait_until(lambda: len(s.root.mgr.ListVms()) == 0, 30), "the VM did not go")
    finally:
        s.close()


@test
def denied_user_gets_access_denied_for_every_mutating_method():
    T.need_kvm()
    s = Setup()
    try:
        path = s.start_as(OWNER, "guarded")
        calls, names = [], []
        for xml, iface, obj in (("org.majordome.VmManager1.xml", IFACE, PATH),
                                ("org.majordome.Vm1.xml", VM_IFACE, path)):
            for method, args in methods(xml, iface):
                if not read_only(method):
                    calls.append([obj, iface, method, sample_args(s, method, args, "guarded")])
                    names.append(method)
        T.check({"StartVm", "StopVm", "StopAllVms", "Stop", "Kill", "SetBalloon"} <= set(names),
                "mutating methods found: %s" % names)
        results = s.call_as(STRANGER, calls)
        wrong = [(n, r) for n, r in zip(names, results) if r[0] != DENIED]
        T.check(not wrong, "not denied: %s" % wrong)
        T.check(s.root.prop(path, "State") == "running", "the VM was disturbed")
        T.check(s.root.prop(path, "BalloonTargetBytes") == 0, "the balloon moved")
        T.check([str(n) for n, _, _ in s.root.mgr.ListVms()] == ["guarded"], "VMs: %s" % s.root.mgr.ListVms())
    finally:
        s.close()


@test
def read_only_methods_and_properties_need_no_authorization():
    T.need_kvm()
    s = Setup()
    try:
        path = s.start_as(OWNER, "open")
        calls = []
        for xml, iface, obj in (("org.majordome.VmManager1.xml", IFACE, PATH),
                                ("org.majordome.Vm1.xml", VM_IFACE, path)):
            for method, args in methods(xml, iface):
                if read_only(method):
                    calls.append([obj, iface, method, sample_args(s, method, args, "open")])
            calls.append([obj, T.PROPS, "GetAll", [iface]])
        T.check(len(calls) >= 5, "read-only calls: %s" % calls)
        results = s.call_as(STRANGER, calls)
        T.check(results == [["ok"]] * len(calls), "results: %s" % list(zip([c[2] for c in calls], results)))
    finally:
        s.close()


@test
def allowed_user_cannot_stop_another_users_vm_without_manage_any_vm():
    T.need_kvm()
    s = Setup()
    try:
        path = s.start_as(OTHER, "theirs")
        T.check(s.root.prop(path, "Owner") == uid_of(OTHER), "Owner %s" % s.root.prop(path, "Owner"))
        results = s.call_as(OWNER, [[PATH, IFACE, "StopVm", ["theirs", "kill", ["u", 0]]],
                                    [path, VM_IFACE, "Kill", []],
                                    [path, VM_IFACE, "SetBalloon", [["t", 1 << 20]]],
                                    [PATH, IFACE, "StopAllVms", []]])
        T.check(all(r[0] == DENIED and "manage-any-vm" in r[1] for r in results), "results: %s" % results)
        T.check(s.root.prop(path, "State") == "running", "the VM was disturbed")
        # its owner still may, and so does one granted manage-any-vm
        T.check(s.call_as(OTHER, [[path, VM_IFACE, "SetBalloon", [["t", 1 << 20]]]]) == [["ok"]],
                "the owner was refused")
        r = s.call_as(ADMIN, [[PATH, IFACE, "StopVm", ["theirs", "kill", ["u", 0]]]])
        T.check(r == [["ok"]], "manage-any-vm: %s" % r)
        T.check(T.wait_until(lambda: len(s.root.mgr.ListVms()) == 0, 30), "the VM did not go")
    finally:
        s.close()


@test
def owner_survives_a_daemon_restart():
    T.need_kvm()
    s = Setup()
    try:
        path = s.start_as(OTHER, "kept")
        s.daemon.kill()
        s.daemon.start()
        T.check(T.wait_until(lambda: [str(n) for n, _, _ in s.root.mgr.ListVms()] == ["kept"], 20),
                "not re-adopted")
        T.check(s.root.prop(path, "Owner") == uid_of(OTHER), "Owner %s" % s.root.prop(path, "Owner"))
        r = s.call_as(OWNER, [[path, VM_IFACE, "Kill", []]])
        T.check(r[0][0] == DENIED, "after a restart: %s" % r)
        T.check(s.call_as(OTHER, [[path, VM_IFACE, "Kill", []]]) == [["ok"]], "the owner was refused")
    finally:
        s.close()


if __name__ == "__main__":
    if not os.access(POLKITD, os.X_OK):
        print("1..0 # SKIP %s is not installed" % POLKITD)
        sys.exit(0)
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root (polkitd's namespace, other uids)")
        sys.exit(0)
    if subprocess.run(["unshare", "--mount", "true"], stderr=subprocess.DEVNULL).returncode != 0:
        print("1..0 # SKIP cannot make a mount namespace here")
        sys.exit(0)
    sys.exit(T.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon", "setpriv", "unshare"]))
