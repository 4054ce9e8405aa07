#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A STAND-IN for majordomed, used only to unit-test vmc's wire behaviour.

It implements the manager and VM interfaces of dbus/*.xml closely enough
for vmc to talk to it: argument types, fd passing, error names, signals.
It runs no VMM and proves nothing about the real daemon; the end-to-end
test against the real majordomed is tests/vmc/test-vmc-daemon.py.

A test-only interface, org.majordome.Test1, shows what vmc sent
(LastConfig, LastCall) and drives the fake (AppendLog, PowerOff, Quit).
Prints "READY" on stdout once it owns the bus name.
"""

import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

BUS_NAME = "org.majordome.VmManager1"
MANAGER_PATH = "/org/majordome/VmManager1"
MANAGER_IFACE = "org.majordome.VmManager1"
VM_IFACE = "org.majordome.Vm1"
TEST_IFACE = "org.majordome.Test1"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"
ERR = "org.majordome.Error."


class Error(dbus.DBusException):
    def __init__(self, name, message):
        super().__init__(message)
        self._dbus_error_name = ERR + name if "." not in name else name


def path_encode(name):
    # sd_bus_path_encode(): everything but [A-Za-z0-9] (and a leading digit) as _xx.
    if not name:
        return MANAGER_PATH + "/vm/_"
    out = []
    for i, ch in enumerate(name.encode()):
        c = chr(ch)
        if ("a" <= c <= "z") or ("A" <= c <= "Z") or (i > 0 and "0" <= c <= "9"):
            out.append(c)
        else:
            out.append("_%02x" % ch)
    return MANAGER_PATH + "/vm/" + "".join(out)


def signature_of(value):
    """The D-Bus type code of a value as dbus-python delivered it."""
    for cls, sig in ((dbus.types.UnixFd, "h"), (dbus.Boolean, "b"), (dbus.UInt64, "t"),
                     (dbus.UInt32, "u"), (dbus.Int32, "i"), (dbus.Int64, "x"),
                     (dbus.ObjectPath, "o"), (dbus.String, "s"), (dbus.Double, "d")):
        if isinstance(value, cls):
            return sig
    if isinstance(value, dbus.Dictionary):
        return "a{%s}" % value.signature if value.signature else "a{sv}"
    if isinstance(value, dbus.Array):
        return "a" + (value.signature or "?")
    return "?"


def describe_fd(unix_fd):
    """What arrived as an fd: access mode, size and a hash of the contents."""
    fd = unix_fd.take()
    try:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        access = {os.O_RDONLY: "ro", os.O_WRONLY: "wo", os.O_RDWR: "rw"}[mode]
        st = os.fstat(fd)
        info = {"sig": "h", "access": access, "size": st.st_size,
                "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)}
        if access != "wo":
            data = os.pread(fd, 1 << 20, 0)
            info["sha256"] = hashlib.sha256(data).hexdigest()
        else:
            os.write(fd, b"fake-majordomed wrote this\n")
        return info
    finally:
        os.close(fd)


class Vm(dbus.service.Object):
    def __init__(self, manager, name, cpus, memory, log_path, disks):
        self.manager = manager
        self.name = name
        self.path = path_encode(name)
        self.props = {
            "Name": dbus.String(name),
            "State": dbus.String("running"),
            "Pid": dbus.UInt32(4242),
            "Cid": dbus.UInt32(0),
            "Vcpus": dbus.UInt32(cpus),
            "MemoryBytes": dbus.UInt64(memory),
            "BalloonTargetBytes": dbus.UInt64(0),
            "BalloonActualBytes": dbus.UInt64(0),
            "StartTimeUsec": dbus.UInt64(int(time.time() * 1e6)),
            "LogPath": dbus.String(log_path),
            # pvpanic, as every real VM has
            "Devices": dbus.Array([dbus.Struct((dbus.UInt16(0x1b36), dbus.UInt16(0x0011), dbus.Byte(0),
                                                dbus.Byte(1), dbus.Byte(0)), signature="qqyyy")],
                                  signature="(qqyyy)"),
        }
        self.disks = disks
        super().__init__(manager.connection, self.path)

    def set_prop(self, key, value):
        self.props[key] = value
        self.PropertiesChanged(VM_IFACE, {key: value}, [])

    def record(self, method, *args):
        self.manager.last_call = {"path": self.path, "method": method,
                                  "args": [[signature_of(a), a] for a in args]}

    @dbus.service.method(PROPS_IFACE, in_signature="ss", out_signature="v")
    def Get(self, iface, key):
        if iface != VM_IFACE or key not in self.props:
            raise Error("org.freedesktop.DBus.Error.UnknownProperty", "no property " + key)
        return self.props[key]

    @dbus.service.method(PROPS_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return self.props if iface == VM_IFACE else {}

    @dbus.service.signal(PROPS_IFACE, signature="sa{sv}as")
    def PropertiesChanged(self, iface, changed, invalidated):
        pass

    @dbus.service.method(VM_IFACE, in_signature="su", out_signature="s")
    def Stop(self, mode, timeout_ms):
        self.record("Stop", mode, timeout_ms)
        return self.manager.stop(self.name, mode)

    @dbus.service.method(VM_IFACE, in_signature="", out_signature="")
    def Kill(self):
        self.record("Kill")
        self.manager.stop(self.name, "kill")

    @dbus.service.method(VM_IFACE, in_signature="", out_signature="")
    def Pause(self):
        # Idempotent, like the daemon (dbus/org.majordome.Vm1.xml);
        # NotRunning only while starting or stopping.
        self.record("Pause")
        if self.props["State"] not in ("running", "paused"):
            raise Error("NotRunning", "VM '%s' is %s" % (self.name, self.props["State"]))
        self.set_prop("State", dbus.String("paused"))

    @dbus.service.method(VM_IFACE, in_signature="", out_signature="")
    def Resume(self):
        self.record("Resume")
        if self.props["State"] not in ("running", "paused"):
            raise Error("NotRunning", "VM '%s' is %s" % (self.name, self.props["State"]))
        self.set_prop("State", dbus.String("running"))

    def start_stopping(self):
        self.set_prop("State", dbus.String("stopping"))

    @dbus.service.method(VM_IFACE, in_signature="t", out_signature="")
    def SetBalloon(self, size):
        self.record("SetBalloon", size)
        if size > self.props["MemoryBytes"]:
            raise Error("InvalidConfig", "balloon size %d is larger than the guest's memory" % size)
        self.set_prop("BalloonTargetBytes", dbus.UInt64(size))

    @dbus.service.method(VM_IFACE, in_signature="", out_signature="a{st}")
    def GetBalloonStats(self):
        self.record("GetBalloonStats")
        return dbus.Dictionary({"free_memory": dbus.UInt64(200 << 20),
                                "total_memory": dbus.UInt64(256 << 20),
                                "swap_in": dbus.UInt64(7)}, signature="st")

    @dbus.service.method(VM_IFACE, in_signature="ut", out_signature="")
    def ResizeDisk(self, index, size):
        self.record("ResizeDisk", index, size)
        if index >= len(self.disks):
            raise Error("InvalidConfig", "the VM has no disk %d" % index)


class Manager(dbus.service.Object):
    STRING_OR_FD = ("s", "h")
    KEYS = {"kernel": STRING_OR_FD, "initrd": STRING_OR_FD, "cmdline": ("s",),
            "memory": ("t",), "cpus": ("u",), "serial_log": STRING_OR_FD,
            "debug_exit": ("b",), "disks": ("aa{sv}",), "on_panic": ("s",), "gpu": ("a{sv}",),
            "wayland_socket": ("s",)}
    # Device keys the fake refuses like a daemon whose VMM lacks the device.
    UNSUPPORTED = ("vsock", "balloon")

    def __init__(self, conn, log_dir):
        super().__init__(conn, MANAGER_PATH)
        self.conn = conn
        self.vms = {}
        self.log_dir = log_dir
        self.last_config = None
        self.last_call = None
        self.fail_next_start = False
        self.ghosts = []

    def stop(self, name, mode):
        vm = self.vms.get(name)
        if vm is None:
            raise Error("NoSuchVm", "no VM '%s'" % name)
        if mode not in ("graceful", "kill"):
            raise Error("org.freedesktop.DBus.Error.InvalidArgs", "unknown mode '%s'" % mode)
        step, reason, status = ("graceful", "stopped", 0) if mode == "graceful" else ("sigkill", "killed", -9)
        self.end(vm, reason, status)
        return step

    def end(self, vm, reason, status):
        vm.set_prop("State", dbus.String("stopped"))
        del self.vms[vm.name]
        vm.remove_from_connection()
        self.VmStopped(vm.name, dbus.ObjectPath(vm.path), reason, dbus.Int32(status), "")

    @dbus.service.method(MANAGER_IFACE, in_signature="sa{sv}", out_signature="o")
    def StartVm(self, name, config):
        recorded = {}
        for key, value in config.items():
            sig = signature_of(value)
            if key in self.UNSUPPORTED:
                raise Error("NotSupported", "config key '%s': this VMM has no such device yet" % key)
            if key not in self.KEYS:
                raise Error("InvalidConfig", "unknown config key '%s'" % key)
            if sig not in self.KEYS[key]:
                raise Error("InvalidConfig", "config key '%s' has type '%s', expected %s"
                            % (key, sig, " or ".join(self.KEYS[key])))
            if sig == "h":
                recorded[key] = describe_fd(value)
            elif key == "disks":
                disks = []
                for d in value:
                    entry = {k: (describe_fd(v) if signature_of(v) == "h" else [signature_of(v), v])
                             for k, v in d.items()}
                    disks.append(entry)
                recorded[key] = disks
            elif key == "gpu":
                recorded[key] = {k: [signature_of(v), v] for k, v in value.items()}
            else:
                recorded[key] = [sig, value]
        self.last_config = {"name": name, "config": recorded}

        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", name):
            raise Error("InvalidName", "names are 1 to 64 bytes of [A-Za-z0-9_.-], not starting with '.' or '-'")
        if name in self.vms:
            raise Error("VmExists", "VM '%s' already exists" % name)
        if "kernel" not in config:
            raise Error("InvalidConfig", "missing config key 'kernel'")
        if self.fail_next_start:
            self.fail_next_start = False
            # What a guest might smuggle into an error text: terminal escapes.
            raise Error("VmmFailed", "VM '%s' ended: \x1b]0;owned\x07\x1b[2Jgone \u009b31m" % name)

        log_path = os.path.join(self.log_dir, name + ".log")
        with open(log_path, "w") as f:
            f.write("fake console of %s\n" % name)
        vm = Vm(self, name, int(config.get("cpus", 1)), int(config.get("memory", 256 << 20)),
                log_path, list(config.get("disks", [])))
        self.vms[name] = vm
        self.VmStarted(name, dbus.ObjectPath(vm.path))
        return dbus.ObjectPath(vm.path)

    @dbus.service.method(MANAGER_IFACE, in_signature="ssu", out_signature="s")
    def StopVm(self, name, mode, timeout_ms):
        self.last_call = {"path": MANAGER_PATH, "method": "StopVm",
                          "args": [["s", name], ["s", mode], [signature_of(timeout_ms), timeout_ms]]}
        return self.stop(name, mode)

    @dbus.service.method(MANAGER_IFACE, in_signature="", out_signature="")
    def StopAllVms(self):
        for name in list(self.vms):
            self.stop(name, "graceful")

    @dbus.service.method(MANAGER_IFACE, in_signature="", out_signature="a(sso)")
    def ListVms(self):
        return dbus.Array([(n, vm.props["State"], dbus.ObjectPath(vm.path))
                           for n, vm in sorted(self.vms.items())], signature="(sso)")

    @dbus.service.method(OBJECT_MANAGER_IFACE, in_signature="", out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        # Unordered, as sd-bus answers it: vmc sorts.
        self.last_call = {"path": MANAGER_PATH, "method": "GetManagedObjects", "args": []}
        objs = {dbus.ObjectPath(vm.path): {VM_IFACE: dbus.Dictionary(vm.props, signature="sv")}
                for vm in list(self.vms.values()) + self.ghosts}
        return dbus.Dictionary(objs, signature="oa{sa{sv}}")

    @dbus.service.method(MANAGER_IFACE, in_signature="s", out_signature="a{sv}")
    def GetVmInfo(self, name):
        vm = self.vms.get(name)
        if vm is None:
            raise Error("NoSuchVm", "no VM '%s'" % name)
        return vm.props

    @dbus.service.signal(MANAGER_IFACE, signature="so")
    def VmStarted(self, name, path):
        pass

    @dbus.service.signal(MANAGER_IFACE, signature="sosis")
    def VmStopped(self, name, path, reason, status, message):
        pass

    @dbus.service.signal(MANAGER_IFACE, signature="sos")
    def GuestPanicked(self, name, path, action):
        pass

    @dbus.service.method(PROPS_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return {"Version": "fake", "MaxVms": dbus.UInt32(64), "VmCount": dbus.UInt32(len(self.vms))}

    # --- org.majordome.Test1: test-only, not part of the API ---

    @dbus.service.method(TEST_IFACE, in_signature="", out_signature="s")
    def LastConfig(self):
        return json.dumps(self.last_config)

    @dbus.service.method(TEST_IFACE, in_signature="", out_signature="s")
    def LastCall(self):
        return json.dumps(self.last_call)

    @dbus.service.method(TEST_IFACE, in_signature="ss", out_signature="")
    def AppendLog(self, name, text):
        with open(self.vms[name].props["LogPath"], "a") as f:
            f.write(text)

    @dbus.service.method(TEST_IFACE, in_signature="", out_signature="")
    def FailNextStart(self):
        self.fail_next_start = True

    @dbus.service.method(TEST_IFACE, in_signature="s", out_signature="")
    def AppendLogEscapes(self, name):
        with open(self.vms[name].props["LogPath"], "ab") as f:
            f.write(b"red \x1b[31mX\x1b[0m\ttab\r\nbad \xff\xc3\xa9\r lone\x9b\n")

    @dbus.service.method(TEST_IFACE, in_signature="su", out_signature="")
    def CutLog(self, name, keep):
        """Keeps the newest keep bytes in place, as the VMM does at its cap."""
        path = self.vms[name].props["LogPath"]
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(data[-keep:])

    @dbus.service.method(TEST_IFACE, in_signature="s", out_signature="")
    def MarkStopping(self, name):
        self.vms[name].start_stopping()

    @dbus.service.method(TEST_IFACE, in_signature="s", out_signature="")
    def Vanish(self, name):
        """The VM's object and GetVmInfo entry go at once, but GetManagedObjects
        still lists it: what a client that asks per VM would see when a VM
        ends between its calls."""
        vm = self.vms.pop(name)
        vm.remove_from_connection()
        self.ghosts.append(vm)

    @dbus.service.method(TEST_IFACE, in_signature="s", out_signature="")
    def PowerOff(self, name):
        self.end(self.vms[name], "poweroff", 0)

    @dbus.service.method(TEST_IFACE, in_signature="ss", out_signature="")
    def Panic(self, name, action):
        """The guest panics: GuestPanicked, then the VM ends (stop) or is paused."""
        vm = self.vms[name]
        self.GuestPanicked(vm.name, dbus.ObjectPath(vm.path), action)
        if action == "stop":
            self.end(vm, "guest-panic", 74)
        else:
            vm.set_prop("State", dbus.String("paused"))

    @dbus.service.method(TEST_IFACE, in_signature="", out_signature="")
    def Quit(self):
        GLib.idle_add(loop.quit)


if __name__ == "__main__":
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    with tempfile.TemporaryDirectory(prefix="fake-majordomed-") as log_dir:
        manager = Manager(bus, log_dir)
        name = dbus.service.BusName(BUS_NAME, bus, do_not_queue=True)
        print("READY", flush=True)
        loop = GLib.MainLoop()
        loop.run()
