#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""majordomed against a real private dbus-daemon, driven by python3-dbus,
busctl and gdbus. Prints TAP. Tests that need /dev/kvm (they boot the `spin`
guest) are skipped with the reason where it cannot be used."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

NAME = "org.majordome.VmManager1"
PATH = "/org/majordome/VmManager1"
IFACE = "org.majordome.VmManager1"
VM_IFACE = "org.majordome.Vm1"
PROPS = "org.freedesktop.DBus.Properties"

MAJORDOMED = os.environ["MAJORDOMED"]
VMM = os.environ["MAJORDOME_VMM"]
GUEST_DIR = os.environ["MAJORDOME_GUEST_DIR"]
SOURCE_DIR = os.environ["MAJORDOME_SOURCE_DIR"]
SPIN = os.path.join(GUEST_DIR, "spin.elf")
RESET = os.path.join(GUEST_DIR, "reset.elf")
MEM = 64 << 20

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)


class Skip(Exception):
    pass


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
        return None
    except OSError as e:
        return "/dev/kvm: " + e.strerror


def need_kvm():
    why = kvm_usable()
    if why:
        raise Skip("needs " + why)


def pump(seconds=0.0):
    ctx = GLib.MainContext.default()
    end = time.monotonic() + seconds
    while True:
        while ctx.pending():
            ctx.iteration(False)
        if time.monotonic() >= end:
            return
        time.sleep(0.001)


def vmm_tree(pid):
    """The VMM's pid and its descendants (the jail forks one child; a share
    adds a virtiofsd under it)."""
    pids, found = [pid], True
    while found:
        found = False
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in pids:
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid in pids:
                pids.append(int(d))
                found = True
    return pids


def wait_until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pump()
        if pred():
            return True
        time.sleep(0.002)
    pump()
    return pred()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def expect_error(name, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except dbus.exceptions.DBusException as e:
        check(e.get_dbus_name() == name, "want %s, got %s: %s" % (name, e.get_dbus_name(), e.get_dbus_message()))
        return e.get_dbus_message()
    raise AssertionError("want %s, the call succeeded" % name)


class Bus:
    """A private dbus-daemon: session-like, or system-like with our policy."""

    def __init__(self, system=False, services=(), owner="root"):
        """services: names owner (a user name) may own on a system-like
        bus, which anyone may call (system services or their stand-ins)."""
        self.dir = tempfile.mkdtemp(prefix="majordome-bus-")
        os.chmod(self.dir, 0o755)
        args = ["dbus-daemon", "--nofork", "--print-address=1"]
        if system:
            conf = os.path.join(self.dir, "bus.conf")
            with open(conf, "w") as f:
                f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <policy user="%s">%s
  </policy>
  <policy context="default">%s
  </policy>
  <include>%s</include>
</busconfig>
""" % (self.dir, owner, "".join('\n    <allow own="%s"/>' % n for n in services),
       "".join('\n    <allow send_destination="%s"/>' % n for n in services),
       os.path.join(SOURCE_DIR, "dbus", "org.majordome.VmManager1.conf")))
            args += ["--config-file=" + conf]
        else:
            args += ["--session"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.address = self.proc.stdout.readline().decode().strip()
        check(self.address.startswith("unix:"), "dbus-daemon printed no address")
        self.system = system

    def connect(self):
        return dbus.bus.BusConnection(self.address)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    def __init__(self, bus, runtime_dir=None, extra=(), env=None):
        self.bus = bus
        self.runtime_dir = runtime_dir or tempfile.mkdtemp(prefix="majordome-rt-")
        self.log_path = self.runtime_dir + ".daemon.log"
        self.log = open(self.log_path, "a")
        self.extra = list(extra)
        self.env = dict(env or {})
        self.start()

    def start(self):
        env = dict(os.environ)
        env.update(self.env)
        args = [MAJORDOMED, "--runtime-dir", self.runtime_dir, "--vmm", VMM] + self.extra
        if self.bus.system:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus.address
        else:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus.address
            args.append("--user")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log)
        conn = self.bus.connect()
        ok = wait_until(lambda: conn.name_has_owner(NAME) or self.proc.poll() is not None, 10)
        conn.close()
        check(ok and self.proc.poll() is None, "majordomed did not take its name")

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)

    def close(self):
        """Stops the daemon and, so no guest outlives the test, its VMMs."""
        self.stop()
        for f in os.listdir(self.runtime_dir):
            if f.endswith(".state"):
                with open(os.path.join(self.runtime_dir, f)) as sf:
                    m = re.search(r"^PID=(\d+)$", sf.read(), re.M)
                if m:
                    try:
                        os.kill(int(m.group(1)), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        self.log.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        os.unlink(self.log_path)

    def log_tail(self, n=20):
        with open(self.log_path) as f:
            return f.read().splitlines()[-n:]


class Client:
    """A python3-dbus client with signal recording."""

    def __init__(self, bus):
        self.conn = bus.connect()
        self.mgr = dbus.Interface(self.conn.get_object(NAME, PATH, follow_name_owner_changes=True), IFACE)
        self.started, self.stopped, self.changes = [], [], []
        self.conn.add_signal_receiver(lambda n, p: self.started.append((str(n), str(p))),
                                      "VmStarted", IFACE, NAME, PATH)
        self.conn.add_signal_receiver(
            lambda n, p, r, s, m: self.stopped.append((str(n), str(p), str(r), int(s), time.monotonic(), str(m))),
            "VmStopped", IFACE, NAME, PATH)
        self.conn.add_signal_receiver(self._changed, "PropertiesChanged", PROPS, NAME, path_keyword="path")

    def _changed(self, iface, changed, invalidated, path=None):
        if iface == VM_IFACE:
            self.changes.append((str(path), {str(k): v for k, v in changed.items()}))

    def vm(self, path):
        return dbus.Interface(self.conn.get_object(NAME, path, introspect=False, follow_name_owner_changes=True),
                              VM_IFACE)

    def prop(self, path, name):
        return self.conn.get_object(NAME, path, introspect=False).Get(VM_IFACE, name, dbus_interface=PROPS)

    def start(self, name, **config):
        cfg = {"kernel": dbus.String(SPIN), "memory": dbus.UInt64(MEM)}
        cfg.update(config)
        return str(self.mgr.StartVm(name, dbus.Dictionary(cfg, signature="sv"), timeout=60))

    def stopped_of(self, name):
        return [s for s in self.stopped if s[0] == name]

    def close(self):
        self.conn.close()


def log_ticks(daemon, name):
    try:
        with open(os.path.join(daemon.runtime_dir, name + ".console.log")) as f:
            ticks = re.findall(r"spin: tick (\d+)", f.read())
        return int(ticks[-1]) if ticks else -1
    except FileNotFoundError:
        return -1


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


# ---- the tests ----

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    bus = None
    daemon = None


def env_client():
    return Client(Env.bus)


def introspection_members(xml_text, iface_name):
    root = ET.fromstring(xml_text)
    for iface in root.findall("interface"):
        if iface.get("name") != iface_name:
            continue
        members = set()
        for m in iface.findall("method"):
            args = tuple((a.get("name"), a.get("type"), a.get("direction", "in")) for a in m.findall("arg"))
            members.add(("method", m.get("name"), args))
        for s in iface.findall("signal"):
            args = tuple((a.get("name"), a.get("type")) for a in s.findall("arg"))
            members.add(("signal", s.get("name"), args))
        for p in iface.findall("property"):
            members.add(("property", p.get("name"), (p.get("type"), p.get("access"))))
        return members
    return None


def compare_introspection(conn, path, iface, xml_file):
    live = conn.get_object(NAME, path).Introspect(dbus_interface="org.freedesktop.DBus.Introspectable")
    with open(os.path.join(SOURCE_DIR, "dbus", xml_file)) as f:
        want = introspection_members(f.read(), iface)
    got = introspection_members(live, iface)
    check(want, "%s has no interface %s" % (xml_file, iface))
    check(got is not None, "the daemon does not serve %s at %s" % (iface, path))
    check(got == want, "introspection differs from %s: missing %s, extra %s" %
          (xml_file, sorted(want - got), sorted(got - want)))


@test
def it_tells_systemd_it_is_ready_then_pings_the_watchdog_from_its_loop():
    """As under Type=notify with WatchdogSec=: READY=1 once its name is
    taken, then WATCHDOG=1 over and over while the loop runs."""
    sock_dir = tempfile.mkdtemp(prefix="majordome-notify-")
    path = os.path.join(sock_dir, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    bus = Bus()
    d = Daemon(bus, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    got = []
    try:
        end = time.monotonic() + 2
        while time.monotonic() < end:
            try:
                got.append(s.recv(4096).decode())
            except socket.timeout:
                pass
        check(any("READY=1" in m for m in got), "no READY=1: %s" % got[:5])
        pings = sum(1 for m in got if "WATCHDOG=1" in m)
        check(pings >= 4, "%d WATCHDOG=1 in 2 s with a 200 ms watchdog" % pings)
    finally:
        d.close()
        bus.close()
        s.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


@test
def manager_introspection_matches_xml():
    c = env_client()
    compare_introspection(c.conn, PATH, IFACE, "org.majordome.VmManager1.xml")
    c.close()


@test
def vm_introspection_matches_xml():
    need_kvm()
    c = env_client()
    path = c.start("introspect")
    compare_introspection(c.conn, path, VM_IFACE, "org.majordome.Vm1.xml")
    c.vm(path).Kill()
    c.close()


@test
def full_path_python_start_pause_resume_stop():
    need_kvm()
    c = env_client()
    path = c.start("py-full", cpus=dbus.UInt32(1), cmdline=dbus.String("console=ttyS0"))
    check(path == PATH + "/vm/py_2dfull", "path %s" % path)
    check(c.prop(path, "State") == "running", "State is not running")
    check(wait_until(lambda: ("py-full", path) in c.started), "no VmStarted")
    check(wait_until(lambda: any(p == path and ch.get("State") == "running" for p, ch in c.changes)),
          "no PropertiesChanged State=running")
    vms = [(str(n), str(s), str(p)) for n, s, p in c.mgr.ListVms()]
    check(("py-full", "running", path) in vms, "ListVms: %s" % vms)
    info = c.mgr.GetVmInfo("py-full")
    check(info["Name"] == "py-full" and info["State"] == "running", "GetVmInfo: %s" % info)
    check(info["MemoryBytes"] == MEM and info["Vcpus"] == 1 and info["Pid"] > 0, "GetVmInfo: %s" % info)
    check(pid_alive(int(info["Pid"])), "the VMM is not alive")
    check(wait_until(lambda: log_ticks(Env.daemon, "py-full") >= 1, 20), "no ticks in the console log")

    c.vm(path).Pause()
    check(c.prop(path, "State") == "paused", "not paused")
    check(wait_until(lambda: any(p == path and ch.get("State") == "paused" for p, ch in c.changes)),
          "no PropertiesChanged State=paused")
    t = log_ticks(Env.daemon, "py-full")
    pump(0.4)
    check(log_ticks(Env.daemon, "py-full") <= t + 1, "the guest ticked while paused")
    c.vm(path).Resume()
    check(c.prop(path, "State") == "running", "not running after Resume")
    check(wait_until(lambda: log_ticks(Env.daemon, "py-full") > t + 1, 20), "no ticks after Resume")

    step = c.vm(path).Stop("graceful", dbus.UInt32(5000), timeout=60)
    check(step == "graceful", "step %s" % step)
    check(wait_until(lambda: c.stopped_of("py-full")), "no VmStopped")
    check(c.stopped_of("py-full")[0][2:4] == ("stopped", 0), "VmStopped %s" % (c.stopped_of("py-full"),))
    check(not pid_alive(int(info["Pid"])) or wait_until(lambda: not pid_alive(int(info["Pid"])), 2), "VMM still alive")
    check(all(str(n) != "py-full" for n, _, _ in c.mgr.ListVms()), "still listed")
    check(not os.path.exists(os.path.join(Env.daemon.runtime_dir, "py-full.state")), "state file left")
    c.close()


def busctl(*args, check_rc=True):
    p = subprocess.run(["busctl", "--address=" + Env.bus.address] + list(args),
                       capture_output=True, text=True, timeout=60)
    if check_rc and p.returncode != 0:
        raise AssertionError("busctl %s: %s" % (" ".join(args), p.stderr))
    return p


def gdbus(*args):
    p = subprocess.run(["gdbus", "call", "--address", Env.bus.address, "--dest", NAME] + list(args),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("gdbus %s: %s" % (" ".join(args), p.stderr))
    return p.stdout


@test
def full_path_busctl_and_gdbus():
    need_kvm()
    c = env_client()
    out = busctl("call", NAME, PATH, IFACE, "StartVm", "sa{sv}", "cli-full", "2",
                 "kernel", "s", SPIN, "memory", "t", str(MEM)).stdout
    check(out.strip() == 'o "%s/vm/cli_2dfull"' % PATH, "StartVm: %s" % out)
    path = PATH + "/vm/cli_2dfull"
    out = busctl("get-property", NAME, path, VM_IFACE, "State").stdout
    check(out.strip() == 's "running"', "State: %s" % out)
    out = gdbus("--object-path", PATH, "--method", IFACE + ".ListVms")
    check("'cli-full', 'running', objectpath '%s'" % path in out, "gdbus ListVms: %s" % out)
    out = gdbus("--object-path", PATH, "--method", IFACE + ".GetVmInfo", "cli-full")
    check("'State': <'running'>" in out and "'MemoryBytes': <uint64 %d>" % MEM in out, "gdbus GetVmInfo: %s" % out)
    busctl("call", NAME, path, VM_IFACE, "Pause")
    check(busctl("get-property", NAME, path, VM_IFACE, "State").stdout.strip() == 's "paused"', "not paused")
    out = gdbus("--object-path", path, "--method", VM_IFACE + ".Resume")
    check(busctl("get-property", NAME, path, VM_IFACE, "State").stdout.strip() == 's "running"', "not running")
    out = gdbus("--object-path", PATH, "--method", IFACE + ".StopVm", "cli-full", "graceful", "0")
    check("'graceful'" in out, "gdbus StopVm: %s" % out)
    check(wait_until(lambda: c.stopped_of("cli-full")), "no VmStopped")
    check(c.stopped_of("cli-full")[0][2] == "stopped", "reason %s" % (c.stopped_of("cli-full"),))
    c.close()


@test
def kernel_given_as_fd_boots():
    need_kvm()
    c = env_client()
    with open(SPIN, "rb") as f:
        f.seek(100)  # the daemon must not read from the caller's offset
        path = c.start("fd-kernel", kernel=dbus.types.UnixFd(f))
    check(c.prop(path, "State") == "running", "not running")
    check(wait_until(lambda: log_ticks(Env.daemon, "fd-kernel") >= 1, 20), "no ticks")
    c.vm(path).Kill()
    check(wait_until(lambda: c.stopped_of("fd-kernel")), "no VmStopped")
    check(c.stopped_of("fd-kernel")[0][2:4] == ("killed", -9), "VmStopped %s" % (c.stopped_of("fd-kernel"),))
    c.close()


@test
def invalid_names_are_refused():
    c = env_client()
    for name in ["", "a/b", ".hidden", "-opt", "x" * 65, "with space", "caf\u00e9", "a\nb", "../x"]:
        expect_error("org.majordome.Error.InvalidName", c.start, name)
    check(len(c.mgr.ListVms()) == 0, "a VM was created")
    c.close()


@test
def duplicate_name_is_refused():
    need_kvm()
    c = env_client()
    path = c.start("dup")
    expect_error("org.majordome.Error.VmExists", c.start, "dup")
    check(c.prop(path, "State") == "running", "the first VM was disturbed")
    c.vm(path).Kill()
    c.close()


@test
def unknown_config_key_is_named():
    c = env_client()
    msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "unk", frobnicate=dbus.UInt32(1))
    check("frobnicate" in msg, msg)
    c.close()


@test
def a_part_this_build_left_out_is_not_supported():
    """StartVm's keys of a part meson left out (docs/packaging.md): NotSupported
    naming the key, nothing opened or started. A build with every part has
    nothing to refuse here."""
    built = set(filter(None, os.environ.get("MAJORDOME_FEATURES", "").split(",")))
    cases = [("gpu", "gpu", {"gpu": dbus.Dictionary({}, signature="sv")}),
             ("video", "video_decoder", {"video_decoder": dbus.Boolean(True)}),
             ("video", "video_encoder", {"video_encoder": dbus.Boolean(True)})]
    # Without wayland a GPU is headless: its cross-domain context is what is refused.
    if "gpu" in built:
        cases.append(("wayland", "gpu.context_types",
                      {"gpu": dbus.Dictionary({"context_types": dbus.String("cross-domain")}, signature="sv")}))
    c = env_client()
    for feature, key, config in cases:
        if feature in built:
            continue
        msg = expect_error("org.majordome.Error.NotSupported", c.start, "leftout", **config)
        check(msg.startswith(key + ":") and ("built without %s support" % feature) in msg, msg)
    check(all(str(n) != "leftout" for n, _, _ in c.mgr.ListVms()), "a refused VM was kept")
    c.close()


@test
def wrong_variant_types_are_named():
    c = env_client()
    for key, value in [("memory", dbus.String("64M")), ("cpus", dbus.UInt64(1)), ("kernel", dbus.UInt32(3)),
                       ("cmdline", dbus.Int32(1)), ("debug_exit", dbus.String("yes"))]:
        msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "types", **{key: value})
        check(msg.startswith(key + ":"), "message does not name %s: %s" % (key, msg))
    c.close()


@test
def huge_and_odd_numbers_are_refused():
    c = env_client()
    for key, value in [("memory", dbus.UInt64(2**64 - 1)), ("memory", dbus.UInt64(0)),
                       ("memory", dbus.UInt64(MEM + 1)), ("cpus", dbus.UInt32(2**32 - 1)),
                       ("cpus", dbus.UInt32(0)), ("cmdline", dbus.String("x" * 5000))]:
        msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "huge", **{key: value})
        check(key in msg, msg)
    check(len(c.mgr.ListVms()) == 0, "a VM was created")
    c.close()


@test
def missing_kernel_is_refused():
    c = env_client()
    msg = expect_error("org.majordome.Error.InvalidConfig", c.mgr.StartVm, "nokernel",
                       dbus.Dictionary({"memory": dbus.UInt64(MEM)}, signature="sv"))
    check("kernel" in msg, msg)
    c.close()


@test
def unreadable_or_missing_files_are_refused():
    c = env_client()
    d = tempfile.mkdtemp()
    try:
        for path in ["/nonexistent/kernel", d, "relative/kernel"]:
            msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "files", kernel=dbus.String(path))
            check("kernel" in msg, msg)
        msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "files", initrd=dbus.String("/nonexistent"))
        check("initrd" in msg, msg)
        wo = os.open(os.path.join(d, "wo"), os.O_WRONLY | os.O_CREAT)
        msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "files", kernel=dbus.types.UnixFd(wo))
        check("not open for reading" in msg, msg)
        os.close(wo)
        ro = os.open(SPIN, os.O_RDONLY)
        msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "files", serial_log=dbus.types.UnixFd(ro))
        check("serial_log" in msg, msg)
        os.close(ro)
    finally:
        shutil.rmtree(d)
    c.close()


@test
def caller_paths_are_refused_with_the_same_words_for_every_key():
    """kernel, initrd, serial_log and disk paths go through one opening
    routine: the texts below are the API's (InvalidConfig names the key)."""
    c = env_client()
    d = tempfile.mkdtemp()
    missing = os.path.join(d, "missing")
    try:
        cases = [
            (dict(kernel=dbus.String("relative/kernel")), "kernel: path 'relative/kernel' is not absolute"),
            (dict(initrd=dbus.String("/" + "x" * 5000)), "initrd: path too long"),
            (dict(kernel=dbus.String(missing)), "kernel: cannot open '%s': No such file or directory" % missing),
            (dict(kernel=dbus.String(d)), "kernel: '%s' is not a regular file" % d),
            (dict(serial_log=dbus.String(d)), "serial_log: cannot open '%s': Is a directory" % d),
            (dict(disks=disks(disk(path=dbus.String("img")))), "disks[0].path: path 'img' is not absolute"),
            (dict(disks=disks(disk(path=dbus.String(missing)))),
             "disks[0].path: cannot open '%s' for writing: No such file or directory" % missing),
            (dict(disks=disks(disk(path=dbus.String(missing), read_only=dbus.Boolean(True)))),
             "disks[0].path: cannot open '%s': No such file or directory" % missing),
            (dict(disks=disks(disk(path=dbus.String("/dev/null")))),
             "disks[0].path: '/dev/null' is not a regular file or block device"),
        ]
        for config, want in cases:
            msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "paths", **config)
            check(msg == want, "want %r, got %r" % (want, msg))
        check(not os.path.exists(missing), "a file was created")
    finally:
        shutil.rmtree(d)
    c.close()


@test
def fds_that_are_not_regular_files_are_refused():
    c = env_client()
    r, w = os.pipe()
    s1, s2 = socket.socketpair()
    null = os.open("/dev/null", os.O_RDONLY)
    try:
        for fd in [r, s1.fileno(), null]:
            msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "fds", kernel=dbus.types.UnixFd(fd))
            check("not a regular file" in msg, msg)
    finally:
        for fd in [r, w, null]:
            os.close(fd)
        s1.close()
        s2.close()
    check(len(c.mgr.ListVms()) == 0, "a VM was created")
    c.close()


@test
def start_of_a_name_already_starting_is_refused():
    need_kvm()
    c = env_client()
    results = []
    cfg = dbus.Dictionary({"kernel": dbus.String(SPIN), "memory": dbus.UInt64(MEM)}, signature="sv")
    for _ in range(2):
        c.mgr.StartVm("twice", cfg, reply_handler=lambda p: results.append(("ok", str(p))),
                      error_handler=lambda e: results.append(("err", e.get_dbus_name())), timeout=60)
    check(wait_until(lambda: len(results) == 2, 30), "replies: %s" % results)
    check(sorted(r[0] for r in results) == ["err", "ok"], "results %s" % results)
    check(("err", "org.majordome.Error.VmExists") in results, "results %s" % results)
    c.mgr.StopVm("twice", "kill", dbus.UInt32(0))
    c.close()


@test
def stop_during_start_ends_the_vm():
    need_kvm()
    c = env_client()
    start, stop = [], []
    cfg = dbus.Dictionary({"kernel": dbus.String(SPIN), "memory": dbus.UInt64(MEM)}, signature="sv")
    c.mgr.StartVm("early-stop", cfg, reply_handler=lambda p: start.append(("ok", str(p))),
                  error_handler=lambda e: start.append(("err", e.get_dbus_name())), timeout=60)
    c.mgr.StopVm("early-stop", "graceful", dbus.UInt32(2000), reply_handler=lambda s: stop.append(str(s)),
                 error_handler=lambda e: stop.append(e.get_dbus_name()), timeout=60)
    check(wait_until(lambda: start and stop, 30), "start %s stop %s" % (start, stop))
    check(start[0] == ("err", "org.majordome.Error.VmmFailed"), "StartVm: %s" % start)
    check(stop[0] in ("graceful", "sigterm", "sigkill"), "StopVm: %s" % stop)
    check(wait_until(lambda: c.stopped_of("early-stop")), "no VmStopped")
    check(c.stopped_of("early-stop")[0][2] == "stopped", "VmStopped %s" % (c.stopped_of("early-stop"),))
    check(len(c.mgr.ListVms()) == 0, "still listed")
    c.close()


@test
def caller_disconnecting_before_the_reply_is_harmless():
    need_kvm()
    c = env_client()
    gone = Env.bus.connect()
    mgr = dbus.Interface(gone.get_object(NAME, PATH), IFACE)
    cfg = dbus.Dictionary({"kernel": dbus.String(SPIN), "memory": dbus.UInt64(MEM)}, signature="sv")
    mgr.StartVm("orphan", cfg, reply_handler=lambda p: None, error_handler=lambda e: None)
    pump(0.01)
    gone.close()
    check(wait_until(lambda: ("orphan", PATH + "/vm/orphan") in c.started, 30), "the VM did not start")
    check(c.mgr.GetVmInfo("orphan")["State"] == "running", "not running")
    c.mgr.StopVm("orphan", "graceful", dbus.UInt32(0), timeout=60)
    check(wait_until(lambda: c.stopped_of("orphan")), "no VmStopped")
    c.close()


@test
def hundred_concurrent_callers_all_answered():
    need_kvm()
    c = env_client()
    path = c.start("busy")
    conns = [Env.bus.connect() for _ in range(100)]
    replies = []
    for i, conn in enumerate(conns):
        mgr = dbus.Interface(conn.get_object(NAME, PATH, introspect=False), IFACE)
        if i % 2:
            mgr.GetVmInfo("busy", reply_handler=lambda info: replies.append(str(info["State"])),
                          error_handler=lambda e: replies.append("error " + e.get_dbus_name()))
        else:
            mgr.ListVms(reply_handler=lambda l: replies.append(str(l[0][1]) if l else "empty"),
                        error_handler=lambda e: replies.append("error " + e.get_dbus_name()))
    check(wait_until(lambda: len(replies) == 100, 30), "%d of 100 replies" % len(replies))
    check(all(r == "running" for r in replies), "replies: %s" % set(replies))
    for conn in conns:
        conn.close()
    c.vm(path).Kill()
    c.close()


@test
def vmm_killed_by_sigkill_is_reported_crashed_quickly():
    need_kvm()
    c = env_client()
    path = c.start("victim")
    pid = int(c.prop(path, "Pid"))
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    check(wait_until(lambda: c.stopped_of("victim"), 5), "no VmStopped")
    name, p, reason, status, t1, message = c.stopped_of("victim")[0]
    check((reason, status) == ("crashed", -9), "VmStopped %s %d" % (reason, status))
    print("# VmStopped %.1f ms after SIGKILL" % ((t1 - t0) * 1000))
    check(t1 - t0 < 0.1, "VmStopped took %.0f ms" % ((t1 - t0) * 1000))
    check(c.conn.get_object(NAME, PATH).Ping(dbus_interface="org.freedesktop.DBus.Peer") is None, "no ping")
    check(len(c.mgr.ListVms()) == 0, "still listed")
    path = c.start("victim")
    c.vm(path).Kill()
    c.close()


@test
def guest_reset_is_reported_poweroff():
    need_kvm()
    c = env_client()
    cfg = dbus.Dictionary({"kernel": dbus.String(RESET), "memory": dbus.UInt64(MEM)}, signature="sv")
    try:
        c.mgr.StartVm("resetter", cfg, timeout=60)
    except dbus.exceptions.DBusException:
        pass  # it may power off before the daemon saw it running
    check(wait_until(lambda: c.stopped_of("resetter"), 30), "no VmStopped")
    check(c.stopped_of("resetter")[0][2:4] in [("poweroff", 0), ("start-failed", 0)],
          "VmStopped %s" % (c.stopped_of("resetter"),))
    c.close()


@test
def garbage_kernel_is_start_failed_with_the_vmm_message():
    need_kvm()
    c = env_client()
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"not a kernel" * 100)
        f.flush()
        msg = expect_error("org.majordome.Error.VmmFailed", c.start, "garbage", kernel=dbus.String(f.name))
    check("majordome-vmm:" in msg, msg)
    check(wait_until(lambda: c.stopped_of("garbage")), "no VmStopped")
    check(c.stopped_of("garbage")[0][2:4] == ("start-failed", 65), "VmStopped %s" % (c.stopped_of("garbage"),))
    c.close()


@test
def sandbox_violation_is_reported_with_the_syscall():
    """A VMM that breaks its seccomp policy: VmStopped says so, and which call."""
    need_kvm()
    d = tempfile.mkdtemp(prefix="majordome-sbx-")
    os.chmod(d, 0o755)
    wrapper = os.path.join(d, "vmm")
    with open(wrapper, "w") as f:
        # The VMM's test hook: its vCPU thread makes a call its policy forbids.
        f.write('#!/bin/sh\nexec "%s" "$@" --test-sandbox-violation=vcpu\n' % VMM)
    os.chmod(wrapper, 0o755)
    bus = Bus()
    daemon = Daemon(bus, extra=["--vmm", wrapper])
    c = Client(bus)
    try:
        try:
            c.start("breaker")
        except dbus.exceptions.DBusException as e:
            # It may die before the daemon saw it running.
            check("sandbox violation" in str(e), str(e))
        check(wait_until(lambda: c.stopped_of("breaker"), 30), "no VmStopped")
        name, p, reason, status, t, message = c.stopped_of("breaker")[0]
        check((reason, status) == ("sandbox-violation", -signal.SIGSYS), "VmStopped %s %d" % (reason, status))
        check(message.startswith("sandbox violation: syscall ") and "in role vcpu" in message, message)
    finally:
        c.close()
        daemon.close()
        bus.close()
        shutil.rmtree(d, ignore_errors=True)


@test
def stop_escalates_to_sigkill_when_the_vmm_does_not_answer():
    need_kvm()
    c = env_client()
    path = c.start("frozen")
    pid = int(c.prop(path, "Pid"))
    os.kill(pid, signal.SIGSTOP)  # neither the stop request nor SIGTERM can act now
    t0 = time.monotonic()
    step = c.vm(path).Stop("graceful", dbus.UInt32(200), timeout=30)
    elapsed = time.monotonic() - t0
    check(step == "sigkill", "step %s" % step)
    check(elapsed < 2, "took %.2f s" % elapsed)
    check(wait_until(lambda: c.stopped_of("frozen")), "no VmStopped")
    check(c.stopped_of("frozen")[0][2:4] == ("stopped", -9), "VmStopped %s" % (c.stopped_of("frozen"),))
    c.close()


@test
def unknown_vm_and_bad_arguments_are_refused():
    c = env_client()
    expect_error("org.majordome.Error.NoSuchVm", c.mgr.GetVmInfo, "ghost")
    expect_error("org.majordome.Error.NoSuchVm", c.mgr.StopVm, "ghost", "graceful", dbus.UInt32(0))
    expect_error("org.freedesktop.DBus.Error.UnknownObject", c.prop, PATH + "/vm/ghost", "State")
    c.close()


@test
def bad_stop_mode_answers_invalid_args():
    need_kvm()
    c = env_client()
    path = c.start("extras")
    vm = c.vm(path)
    expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.Stop, "gently", dbus.UInt32(0))
    expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.Stop, "graceful", dbus.UInt32(2**32 - 1))
    check(c.prop(path, "State") == "running", "the VM was disturbed")
    vm.Kill()
    c.close()


def log_text(daemon, name):
    try:
        with open(os.path.join(daemon.runtime_dir, name + ".console.log")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def make_image(d, name, size=1 << 20):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def disk(**kw):
    return dbus.Dictionary(kw, signature="sv")


def disks(*items):
    return dbus.Array(items, signature="a{sv}")


def changed_to(c, path, prop, value):
    return any(p == path and ch.get(prop) == value for p, ch in c.changes)


@test
def full_path_with_balloon_disks_and_vsock():
    """The issue's full path on the spin guest (no balloon or block driver):
    the calls reach the VMM, which answers with the target it was given and
    resizes the image file on the host."""
    need_kvm()
    c = env_client()
    d = tempfile.mkdtemp()
    try:
        rw = make_image(d, "rw.img")
        ro = make_image(d, "ro.img")
        ro_fd = os.open(ro, os.O_RDONLY)
        path = c.start("dev-full", balloon=dbus.Boolean(True), vsock=dbus.Boolean(True),
                       rng=dbus.Boolean(True),
                       disks=disks(disk(path=dbus.String(rw), serial=dbus.String("data-0"),
                                        sparse=dbus.Boolean(True)),
                                   disk(fd=dbus.types.UnixFd(ro_fd), read_only=dbus.Boolean(True))))
        os.close(ro_fd)
        check(c.prop(path, "State") == "running", "not running")
        check(wait_until(lambda: ("dev-full", path) in c.started), "no VmStarted")
        check(wait_until(lambda: changed_to(c, path, "State", "running")), "no PropertiesChanged State=running")
        info = c.mgr.GetVmInfo("dev-full")
        check(info["Cid"] >= 3, "Cid %d" % info["Cid"])
        check(info["Disks"] == 2, "Disks %d" % info["Disks"])
        vsock = str(info["VsockPath"])
        check(vsock.startswith(Env.daemon.runtime_dir + "/") and os.path.exists(vsock),
              "VsockPath %r" % vsock)
        check(wait_until(lambda: log_ticks(Env.daemon, "dev-full") >= 1, 20), "no ticks")
        vm = c.vm(path)

        vm.Pause()
        check(c.prop(path, "State") == "paused", "not paused")
        vm.Resume()
        check(c.prop(path, "State") == "running", "not running after Resume")

        vm.SetBalloon(dbus.UInt64(16 << 20))
        check(c.prop(path, "BalloonTargetBytes") == 16 << 20, "BalloonTargetBytes")
        check(wait_until(lambda: changed_to(c, path, "BalloonTargetBytes", 16 << 20)),
              "no PropertiesChanged BalloonTargetBytes")
        stats = vm.GetBalloonStats(timeout=10)
        check(stats["target_bytes"] == 16 << 20, "stats %s" % stats)
        check(stats["actual_bytes"] == 0 and stats["inflated_bytes"] == 0, "spin has no driver: %s" % stats)
        check(c.prop(path, "BalloonActualBytes") == 0, "BalloonActualBytes")
        expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.SetBalloon, dbus.UInt64(MEM + (1 << 20)))

        vm.ResizeDisk(dbus.UInt32(0), dbus.UInt64(2 << 20))
        check(os.stat(rw).st_size == 2 << 20, "rw.img is %d bytes" % os.stat(rw).st_size)
        msg = expect_error("org.majordome.Error.ReadOnly", vm.ResizeDisk, dbus.UInt32(1), dbus.UInt64(2 << 20))
        check("read-only" in msg, msg)
        msg = expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ResizeDisk, dbus.UInt32(2), dbus.UInt64(2 << 20))
        check("no disk 2" in msg, msg)
        expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ResizeDisk, dbus.UInt32(0), dbus.UInt64(1000))
        expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ResizeDisk, dbus.UInt32(0), dbus.UInt64(0))
        check(os.stat(ro).st_size == 1 << 20 and os.stat(rw).st_size == 2 << 20, "sizes changed")
        check(c.prop(path, "State") == "running", "the VM was disturbed")

        step = vm.Stop("graceful", dbus.UInt32(5000), timeout=60)
        check(step == "graceful", "step %s" % step)
        check(wait_until(lambda: c.stopped_of("dev-full")), "no VmStopped")
        check(c.stopped_of("dev-full")[0][2:4] == ("stopped", 0), "VmStopped %s" % (c.stopped_of("dev-full"),))
        check(not os.path.exists(os.path.dirname(vsock)), "vsock directory left")
    finally:
        shutil.rmtree(d)
        c.close()


@test
def balloon_guest_inflates_and_deflates_through_dbus():
    """tests/guest/virtio-balloon with a real driver: SetBalloon makes it
    inflate 16 MiB, GetBalloonStats and BalloonActualBytes see it, a zero
    target deflates it, and the guest powers off with every check passed."""
    need_kvm()
    c = env_client()
    name = "balloon-guest"
    path = c.start(name, kernel=dbus.String(os.path.join(GUEST_DIR, "virtio-balloon.elf")),
                   balloon=dbus.Boolean(True), debug_exit=dbus.Boolean(True))
    check(wait_until(lambda: "balloon: ready" in log_text(Env.daemon, name), 90), "guest not ready")
    vm = c.vm(path)
    vm.SetBalloon(dbus.UInt64(16 << 20))
    check(wait_until(lambda: "balloon: inflated" in log_text(Env.daemon, name), 90), "guest did not inflate")
    stats = vm.GetBalloonStats(timeout=10)
    check(stats["target_bytes"] == 16 << 20 and stats["actual_bytes"] == 16 << 20, "stats %s" % stats)
    check(stats["inflated_bytes"] == 16 << 20, "stats %s" % stats)
    check(stats.get("total_memory") == MEM, "guest statistics missing: %s" % stats)
    check(c.prop(path, "BalloonActualBytes") == 16 << 20, "BalloonActualBytes")
    check(wait_until(lambda: changed_to(c, path, "BalloonActualBytes", 16 << 20)),
          "no PropertiesChanged BalloonActualBytes")
    vm.SetBalloon(dbus.UInt64(0))
    check(wait_until(lambda: "balloon: retouched" in log_text(Env.daemon, name), 90), "guest did not deflate")
    # the guest's last step: it answers a fresh statistics request
    stats = vm.GetBalloonStats(timeout=10)
    check(stats["target_bytes"] == 0 and stats["inflated_bytes"] == 0, "stats %s" % stats)
    check(wait_until(lambda: c.stopped_of(name), 90), "the guest did not finish")
    check(c.stopped_of(name)[0][2:4] == ("poweroff", 0), "VmStopped %s" % (c.stopped_of(name),))
    log = log_text(Env.daemon, name)
    check(" FAIL" not in log and log.count(" PASS") >= 7, "guest verdicts:\n" + log)
    c.close()


@test
def block_guest_sees_a_resize_made_through_dbus():
    """tests/guest/virtio-block: writes, flushes, reads back and discards, then
    asks for a resize; ResizeDisk grows it and the guest sees the new size."""
    need_kvm()
    c = env_client()
    d = tempfile.mkdtemp()
    name = "block-guest"
    try:
        img = make_image(d, "disk.img")
        fd = os.open(img, os.O_RDWR)
        path = c.start(name, kernel=dbus.String(os.path.join(GUEST_DIR, "virtio-block.elf")),
                       debug_exit=dbus.Boolean(True),
                       disks=disks(disk(fd=dbus.types.UnixFd(fd), sparse=dbus.Boolean(True),
                                        serial=dbus.String("it-disk"))))
        os.close(fd)
        check(wait_until(lambda: "virtio-block: resize me" in log_text(Env.daemon, name), 90), "no resize request")
        c.vm(path).ResizeDisk(dbus.UInt32(0), dbus.UInt64(2 << 20))
        check(wait_until(lambda: c.stopped_of(name), 90), "the guest did not finish")
        log = log_text(Env.daemon, name)
        check(c.stopped_of(name)[0][2:4] == ("poweroff", 0), "VmStopped %s\n%s" % (c.stopped_of(name), log))
        check(" FAIL" not in log and log.count(" PASS") == 9, "guest verdicts:\n" + log)
        check(os.stat(img).st_size == 2 << 20, "image is %d bytes" % os.stat(img).st_size)
        with open(img, "rb") as f:
            data = f.read(2048)
        check(all(data[1024 + i] == (i * 13 + 5) & 0xff for i in range(1024)), "the guest's pattern is not on disk")
    finally:
        shutil.rmtree(d)
        c.close()


@test
def balloon_and_resize_without_the_devices_answer_clearly():
    need_kvm()
    c = env_client()
    path = c.start("plain")
    vm = c.vm(path)
    msg = expect_error("org.majordome.Error.NotSupported", vm.SetBalloon, dbus.UInt64(MEM // 2))
    check("balloon" in msg, msg)
    expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.SetBalloon, dbus.UInt64(2**64 - 1))
    expect_error("org.majordome.Error.NotSupported", vm.GetBalloonStats)
    msg = expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ResizeDisk, dbus.UInt32(0), dbus.UInt64(1 << 30))
    check("no disk 0" in msg, msg)
    info = c.mgr.GetVmInfo("plain")
    check(info["Cid"] == 0 and info["VsockPath"] == "" and info["Disks"] == 0, "GetVmInfo %s" % info)
    check(c.prop(path, "State") == "running", "the VM was disturbed")
    vm.Kill()
    c.close()


@test
def bad_disk_and_device_configs_are_named():
    c = env_client()
    d = tempfile.mkdtemp()
    r, w = os.pipe()
    s1, s2 = socket.socketpair()
    try:
        img = make_image(d, "x.img")
        ro_fd = os.open(img, os.O_RDONLY)
        cases = [
            ("disks", dbus.Array([dbus.String("x")], signature="s")),
            ("disks[0]", disks(disk())),
            ("disks[0]", disks(disk(path=dbus.String(img), fd=dbus.types.UnixFd(ro_fd), read_only=dbus.Boolean(True)))),
            ("disks[0].path", disks(disk(path=dbus.String("relative.img")))),
            ("disks[0].path", disks(disk(path=dbus.UInt32(1)))),
            ("disks[0]", disks(disk(path=dbus.String("/nonexistent/x.img")))),
            ("disks[0]", disks(disk(path=dbus.String(d)))),
            ("disks[0]", disks(disk(fd=dbus.types.UnixFd(r)))),
            ("disks[0]", disks(disk(fd=dbus.types.UnixFd(s1.fileno())))),
            ("disks[0]", disks(disk(fd=dbus.types.UnixFd(ro_fd)))),  # writable disk from a read-only fd
            ("disks[0].read_only", disks(disk(path=dbus.String(img), read_only=dbus.String("yes")))),
            ("disks[0].serial", disks(disk(path=dbus.String(img), serial=dbus.String("a,b")))),
            ("disks[0].serial", disks(disk(path=dbus.String(img), serial=dbus.String("x" * 21)))),
            ("disks[0].cache", disks(disk(path=dbus.String(img), cache=dbus.String("none")))),
            ("disks[1]", disks(disk(path=dbus.String(img), read_only=dbus.Boolean(True)), disk())),
            ("disks", disks(*[disk(path=dbus.String(img), read_only=dbus.Boolean(True)) for _ in range(9)])),
            ("balloon", dbus.UInt32(1)),
            ("vsock", dbus.String("yes")),
            ("rng", dbus.UInt64(1)),
        ]
        for key, value in cases:
            msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "baddisk",
                               **{key.split("[")[0]: value})
            check(msg.startswith(key), "message does not start with %s: %s" % (key, msg))
        # disks given as fds: the disk limit comes first (the 16 fds per call
        # hold a kernel, an initrd, a serial log and 8 disks)
        many = disks(*[disk(fd=dbus.types.UnixFd(ro_fd), read_only=dbus.Boolean(True)) for _ in range(9)])
        with open(SPIN, "rb") as kernel:
            msg = expect_error("org.majordome.Error.InvalidConfig", c.start, "baddisk",
                               kernel=dbus.types.UnixFd(kernel), disks=many)
        check(msg.startswith("disks: more than 8 disks"), msg)
        os.close(ro_fd)
    finally:
        os.close(r)
        os.close(w)
        s1.close()
        s2.close()
        shutil.rmtree(d)
    check(len(c.mgr.ListVms()) == 0, "a VM was created")
    check(os.listdir(Env.daemon.runtime_dir) == [] or
          not any(f.startswith("baddisk") for f in os.listdir(Env.daemon.runtime_dir)), "files left")
    c.close()


@test
def vsock_cids_are_unique():
    need_kvm()
    c = env_client()
    paths = [c.start("vs-%d" % i, vsock=dbus.Boolean(True)) for i in range(2)]
    cids = [int(c.prop(p, "Cid")) for p in paths]
    socks = [str(c.prop(p, "VsockPath")) for p in paths]
    check(len(set(cids)) == 2 and min(cids) >= 3, "CIDs %s" % cids)
    check(len(set(socks)) == 2 and all(os.path.exists(s) for s in socks), "VsockPaths %s" % socks)
    for p in paths:
        c.vm(p).Kill()
    c.close()


@test
def max_vms_limit_is_enforced_and_stop_all_stops_everything():
    need_kvm()
    bus = Bus()
    d = Daemon(bus, extra=["--max-vms", "2"])
    c = Client(bus)
    try:
        check(c.conn.get_object(NAME, PATH).Get(IFACE, "MaxVms", dbus_interface=PROPS) == 2, "MaxVms")
        c.start("one")
        c.start("two")
        expect_error("org.majordome.Error.LimitReached", c.start, "three")
        check(c.conn.get_object(NAME, PATH).Get(IFACE, "VmCount", dbus_interface=PROPS) == 2, "VmCount")
        c.mgr.StopAllVms(timeout=60)
        check(len(c.mgr.ListVms()) == 0, "VMs left")
        check(wait_until(lambda: len(c.stopped) == 2), "VmStopped: %s" % c.stopped)
        check(all(s[2] == "stopped" for s in c.stopped), "reasons %s" % c.stopped)
    finally:
        c.close()
        d.close()
        bus.close()


@test
def daemon_killed_and_restarted_re_adopts_running_vms():
    need_kvm()
    bus = Bus()
    d = Daemon(bus)
    c = Client(bus)
    try:
        img_dir = tempfile.mkdtemp()
        img = make_image(img_dir, "keep.img")
        img_ro = make_image(img_dir, "keep-ro.img")
        pa = c.start("keep-a", balloon=dbus.Boolean(True), vsock=dbus.Boolean(True),
                     disks=disks(disk(path=dbus.String(img)), disk(path=dbus.String(img_ro), read_only=dbus.Boolean(True))))
        cid = int(c.prop(pa, "Cid"))
        pb = c.start("keep-b", cpus=dbus.UInt32(2))
        c.vm(pb).Pause()
        pids = {n: int(c.prop(p, "Pid")) for n, p in [("keep-a", pa), ("keep-b", pb)]}
        # a stale entry (a dead pid) must be dropped, not adopted
        with open(os.path.join(d.runtime_dir, "stale.state"), "w") as f:
            f.write("NAME=stale\nPID=999999\nSTARTTIME=1\nSOCKET=%s/stale.sock\nSTATE=running\n" % d.runtime_dir)
        d.kill(signal.SIGKILL)
        check(all(pid_alive(p) for p in pids.values()), "a VMM died with the daemon")
        d.start()
        vms = {str(n): str(s) for n, s, _ in c.mgr.ListVms()}
        check(vms == {"keep-a": "running", "keep-b": "paused"}, "ListVms after restart: %s" % vms)
        check(not os.path.exists(os.path.join(d.runtime_dir, "stale.state")), "stale entry kept")
        check(int(c.prop(pa, "Pid")) == pids["keep-a"] and int(c.prop(pb, "Vcpus")) == 2, "info lost")
        # the devices are remembered: balloon, disks (which is read-only), vsock
        check(int(c.prop(pa, "Cid")) == cid and int(c.prop(pa, "Disks")) == 2, "devices lost")
        c.vm(pa).SetBalloon(dbus.UInt64(8 << 20))
        check(c.vm(pa).GetBalloonStats()["target_bytes"] == 8 << 20, "balloon after restart")
        c.vm(pa).ResizeDisk(dbus.UInt32(0), dbus.UInt64(2 << 20))
        check(os.stat(img).st_size == 2 << 20, "resize after restart")
        expect_error("org.majordome.Error.ReadOnly", c.vm(pa).ResizeDisk, dbus.UInt32(1), dbus.UInt64(2 << 20))
        expect_error("org.majordome.Error.NotSupported", c.vm(pb).SetBalloon, dbus.UInt64(1 << 20))
        c.vm(pb).Resume()
        check(c.prop(pb, "State") == "running", "Resume after restart")
        t = log_ticks(d, "keep-a")
        check(wait_until(lambda: log_ticks(d, "keep-a") > t, 20), "keep-a does not tick")
        # SIGTERM too leaves the guests alone
        d.kill(signal.SIGTERM)
        check(all(pid_alive(p) for p in pids.values()), "a VMM died with SIGTERM to the daemon")
        d.start()
        check(len(c.mgr.ListVms()) == 2, "not re-adopted after SIGTERM")
        step = c.vm(pa).Stop("graceful", dbus.UInt32(0), timeout=60)
        check(step == "graceful", "step %s" % step)
        c.vm(pb).Kill()
        check(wait_until(lambda: len(c.stopped) == 2), "VmStopped: %s" % c.stopped)
        reasons = sorted((s[0], s[2]) for s in c.stopped)
        check(reasons == [("keep-a", "stopped"), ("keep-b", "killed")], "reasons %s" % reasons)
        check(wait_until(lambda: not any(pid_alive(p) for p in pids.values()), 5), "VMMs left")
        shutil.rmtree(img_dir)
    finally:
        c.close()
        d.close()
        bus.close()


@test
def system_bus_unprivileged_caller_is_denied_and_nothing_changes():
    if os.geteuid() != 0:
        raise Skip("needs root to run a second uid")
    bus = Bus(system=True)
    d = Daemon(bus)
    try:
        def as_nobody(*args):
            return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "busctl", "--address=" + bus.address] + list(args),
                                  capture_output=True, text=True, timeout=30)
        p = as_nobody("call", NAME, PATH, IFACE, "ListVms")
        check(p.returncode == 0 and p.stdout.strip() == "a(sso) 0", "ListVms as nobody: %s %s" % (p.stdout, p.stderr))
        p = as_nobody("call", NAME, PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        check(p.returncode == 0 and p.stdout.strip() == "a{oa{sa{sv}}} 0",
              "GetManagedObjects as nobody (the bus policy): %s %s" % (p.stdout, p.stderr))
        before = sorted(os.listdir(d.runtime_dir))
        p = as_nobody("call", NAME, PATH, IFACE, "StartVm", "sa{sv}", "intruder", "1", "kernel", "s", SPIN)
        check(p.returncode != 0 and "Not authorized" in p.stderr, "StartVm as nobody: %s %s" % (p.stdout, p.stderr))
        p = as_nobody("call", NAME, PATH, IFACE, "StopAllVms")
        check(p.returncode != 0 and "Not authorized" in p.stderr, "StopAllVms as nobody: %s" % p.stderr)
        check(sorted(os.listdir(d.runtime_dir)) == before, "the runtime directory changed")
        c = Client(bus)
        check(len(c.mgr.ListVms()) == 0, "a VM appeared")
        if not kvm_usable():
            # root may, and nobody still may not stop root's VM
            path = c.start("root-vm")
            p = as_nobody("call", NAME, path, VM_IFACE, "Kill")
            check(p.returncode != 0 and "Not authorized" in p.stderr, "Kill as nobody: %s" % p.stderr)
            check(c.prop(path, "State") == "running", "the VM was disturbed")
            c.vm(path).Kill()
        c.close()
    finally:
        d.close()
        bus.close()



# ---- org.freedesktop.DBus.ObjectManager on the manager object ----

OM = "org.freedesktop.DBus.ObjectManager"
PVPANIC = (0x1b36, 0x0011)
VIRTIO_VSOCK = (0x1af4, 0x1040 + 19)  # virtio 1.2 §4.1.2.1: 0x1040 + device id


def managed_vms(conn):
    """GetManagedObjects as {path: Vm1 properties}; every object must have Vm1."""
    objs = conn.get_object(NAME, PATH, introspect=False).GetManagedObjects(dbus_interface=OM)
    out = {}
    for path, ifaces in objs.items():
        check(VM_IFACE in ifaces, "managed object %s has no %s: %s" % (path, VM_IFACE, list(ifaces)))
        out[str(path)] = {str(k): v for k, v in ifaces[VM_IFACE].items()}
    return out


class ObjectSignals:
    def __init__(self, conn):
        self.added, self.removed = [], []
        conn.add_signal_receiver(lambda p, i: self.added.append((str(p), i)), "InterfacesAdded", OM, NAME, PATH)
        conn.add_signal_receiver(lambda p, i: self.removed.append((str(p), [str(x) for x in i])),
                                 "InterfacesRemoved", OM, NAME, PATH)


@test
def object_manager_lists_nothing_without_vms():
    bus = Bus()
    d = Daemon(bus)
    c = Client(bus)
    try:
        check(managed_vms(c.conn) == {}, "GetManagedObjects: %s" % managed_vms(c.conn))
        compare_introspection(c.conn, PATH, OM, "org.majordome.VmManager1.xml")
    finally:
        c.close()
        d.close()
        bus.close()


@test
def object_manager_lists_exactly_the_running_vms_with_their_properties():
    need_kvm()
    bus = Bus()
    d = Daemon(bus)
    c = Client(bus)
    try:
        pa = c.start("om-a", cpus=dbus.UInt32(2))
        pb = c.start("om-b", vsock=dbus.Boolean(True))
        c.vm(pb).Pause()
        vms = managed_vms(c.conn)
        check(sorted(vms) == sorted([pa, pb]), "GetManagedObjects paths: %s" % sorted(vms))
        for name, path in [("om-a", pa), ("om-b", pb)]:
            info = {str(k): v for k, v in c.mgr.GetVmInfo(name).items()}
            check(vms[path] == info, "%s: GetManagedObjects %s, GetVmInfo %s" % (name, vms[path], info))
        check(vms[pa]["Vcpus"] == 2 and vms[pb]["State"] == "paused" and vms[pb]["Cid"] >= 3, "%s" % vms)
        # Devices: what the VMM's ready event listed; every VM has pvpanic
        devs = {p: [tuple(int(x) for x in d) for d in vms[p]["Devices"]] for p in (pa, pb)}
        check(all(any(d[:2] == PVPANIC for d in devs[p]) for p in devs), "no pvpanic in %s" % devs)
        check(any(d[:2] == VIRTIO_VSOCK for d in devs[pb]) and not any(d[:2] == VIRTIO_VSOCK for d in devs[pa]),
              "vsock: %s" % devs)
        check(len(set(d[2:] for d in devs[pb])) == len(devs[pb]), "two devices at one address: %s" % devs[pb])
        c.vm(pa).Kill()
        check(wait_until(lambda: c.stopped_of("om-a")), "no VmStopped")
        check(sorted(managed_vms(c.conn)) == [pb], "after Kill: %s" % sorted(managed_vms(c.conn)))
        c.vm(pb).Kill()
    finally:
        c.close()
        d.close()
        bus.close()


@test
def object_manager_signals_vms_coming_and_going():
    need_kvm()
    bus = Bus()
    d = Daemon(bus)
    c = Client(bus)
    sig = ObjectSignals(c.conn)
    try:
        path = c.start("om-sig")
        check(wait_until(lambda: [a for a in sig.added if a[0] == path]), "no InterfacesAdded")
        added = [i for p, i in sig.added if p == path]
        check(len(added) == 1, "InterfacesAdded %d times" % len(added))
        check(VM_IFACE in added[0] and added[0][VM_IFACE]["Name"] == "om-sig", "InterfacesAdded: %s" % added[0])
        check(added[0][VM_IFACE]["State"] == "starting", "added while %s" % added[0][VM_IFACE]["State"])
        check(sig.removed == [], "InterfacesRemoved early: %s" % sig.removed)
        c.vm(path).Stop("graceful", dbus.UInt32(5000), timeout=60)
        check(wait_until(lambda: sig.removed), "no InterfacesRemoved")
        check(len(sig.removed) == 1 and sig.removed[0][0] == path and VM_IFACE in sig.removed[0][1],
              "InterfacesRemoved: %s" % sig.removed)
        check(managed_vms(c.conn) == {}, "still managed: %s" % managed_vms(c.conn))
        # a start that fails adds and removes the object too
        with open(os.path.join(d.runtime_dir, "not-a-kernel"), "w") as f:
            f.write("nothing bootable\n")
        expect_error("org.majordome.Error.VmmFailed", c.start, "om-bad",
                     kernel=dbus.String(os.path.join(d.runtime_dir, "not-a-kernel")))
        bad = PATH + "/vm/om_2dbad"
        check(wait_until(lambda: [r for r in sig.removed if r[0] == bad]), "no InterfacesRemoved for a failed start")
        check([a for a in sig.added if a[0] == bad], "no InterfacesAdded for a failed start")
        check(managed_vms(c.conn) == {}, "still managed: %s" % managed_vms(c.conn))
    finally:
        c.close()
        d.close()
        bus.close()


@test
def object_manager_lists_adopted_vms_after_a_restart():
    need_kvm()
    bus = Bus()
    d = Daemon(bus)
    c = Client(bus)
    try:
        pa = c.start("om-keep")
        pid = int(c.prop(pa, "Pid"))
        d.kill(signal.SIGKILL)
        sig = ObjectSignals(c.conn)
        d.start()
        vms = managed_vms(c.conn)
        check(sorted(vms) == [pa], "GetManagedObjects after restart: %s" % sorted(vms))
        check(vms[pa]["Pid"] == pid and vms[pa]["State"] == "running", "adopted: %s" % vms[pa])
        # the re-attached VMM's ready event lists its devices again
        check(wait_until(lambda: any(tuple(int(x) for x in d[:2]) == PVPANIC for d in c.prop(pa, "Devices")), 5),
              "Devices after restart: %s" % c.prop(pa, "Devices"))
        c.vm(pa).Kill()
        check(wait_until(lambda: [r for r in sig.removed if r[0] == pa]), "no InterfacesRemoved after adoption")
        check(managed_vms(c.conn) == {}, "still managed: %s" % managed_vms(c.conn))
    finally:
        c.close()
        d.close()
        bus.close()


def run_tap(tests, argv, tools=("dbus-daemon", "busctl", "gdbus")):
    """Runs tests (or those argv names) as TAP, each on its own, and says
    how long each took; for the test files that reuse these helpers. All
    are skipped when one of tools is not installed."""
    for tool in tools:
        if not shutil.which(tool):
            print("1..0 # SKIP %s is not installed" % tool)
            return 0
    tests = [fn for fn in tests if not argv or fn.__name__ in argv]
    print("1..%d" % len(tests))
    sys.stdout.flush()
    failed = 0
    for i, fn in enumerate(tests, 1):
        began = time.monotonic()
        try:
            fn()
            print("# %s: %.1f s" % (fn.__name__, time.monotonic() - began))
            print("ok %d - %s" % (i, fn.__name__))
        except Skip as e:
            print("ok %d - %s # SKIP %s" % (i, fn.__name__, e))
        except Exception:
            failed += 1
            print("not ok %d - %s" % (i, fn.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        sys.stdout.flush()
    return 1 if failed else 0


def main():
    for tool in ["dbus-daemon", "busctl", "gdbus"]:
        if not shutil.which(tool):
            print("1..0 # SKIP %s is not installed" % tool)
            return 0
    only = sys.argv[1:]
    tests = [t for t in TESTS if not only or t.__name__ in only]
    print("1..%d" % len(tests))
    sys.stdout.flush()
    Env.bus = Bus()
    Env.daemon = Daemon(Env.bus)
    failed = 0
    try:
        for i, t in enumerate(tests, 1):
            try:
                t()
                print("ok %d - %s" % (i, t.__name__))
            except Skip as e:
                print("ok %d - %s # SKIP %s" % (i, t.__name__, e))
            except Exception:
                failed += 1
                print("not ok %d - %s" % (i, t.__name__))
                for line in traceback.format_exc().splitlines():
                    print("# " + line)
                for line in Env.daemon.log_tail():
                    print("# majordomed: " + line)
            sys.stdout.flush()
            if Env.daemon.proc.poll() is not None:
                print("# majordomed died; restarting it")
                Env.daemon.start()
    finally:
        Env.daemon.close()
        Env.bus.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
