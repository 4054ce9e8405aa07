#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The guest's console and the VMM's messages, kept apart (security review
items 7 and 8): a flooding guest leaves a capped console log holding its
newest output and a small VMM log; guest text cannot pose as the VMM's
error; the error that reaches D-Bus is valid, escaped UTF-8. Reuses the
helpers of test-majordomed.py. Prints TAP."""

import importlib.util
import os
import shutil
import sys
import tempfile

import dbus

_spec = importlib.util.spec_from_file_location(
    "tm", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-majordomed.py"))
tm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tm)
check, wait_until = tm.check, tm.wait_until

FLOOD = os.path.join(tm.GUEST_DIR, "flood.elf")
CAP = 16 * 1024

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Setup:
    """A private bus and daemon, with extra daemon options."""

    def __init__(self, extra=()):
        self.bus = tm.Bus()
        self.daemon = tm.Daemon(self.bus, extra=list(extra))
        self.client = tm.Client(self.bus)

    def path(self, name, suffix):
        return os.path.join(self.daemon.runtime_dir, name + suffix)

    def read(self, name, suffix):
        with open(self.path(name, suffix), "rb") as f:
            return f.read()

    def start_flood(self, name, cmdline):
        cfg = {"kernel": dbus.String(FLOOD), "memory": dbus.UInt64(tm.MEM), "debug_exit": dbus.Boolean(True),
               "cmdline": dbus.String(cmdline)}
        try:
            self.client.mgr.StartVm(name, dbus.Dictionary(cfg, signature="sv"), timeout=60)
        except dbus.exceptions.DBusException:
            pass  # it may end before the daemon saw it running
        check(wait_until(lambda: self.client.stopped_of(name), 60), "no VmStopped for " + name)
        return self.client.stopped_of(name)[0]

    def close(self):
        self.client.close()
        self.daemon.close()
        self.bus.close()


def fake_vmm(d, stderr_bytes, code=1):
    """A VMM that only writes stderr_bytes to its stderr and exits."""
    data = os.path.join(d, "stderr")
    with open(data, "wb") as f:
        f.write(stderr_bytes)
    os.chmod(data, 0o644)
    path = os.path.join(d, "vmm")
    with open(path, "w") as f:
        f.write('#!/bin/sh\ncat "%s" >&2\nexit %d\n' % (data, code))
    os.chmod(path, 0o755)
    return path


@test
def flooding_guest_leaves_a_capped_console_log_with_its_newest_output():
    tm.need_kvm()
    s = Setup(["--console-log-max", str(CAP)])
    try:
        name, p, reason, status, t, message = s.start_flood("flooder", "flood_lines=1024")
        check((reason, status) == ("poweroff", 0), "VmStopped %s %d %s" % (reason, status, message))
        console = s.read("flooder", ".console.log")
        # The guest wrote 64 KiB + its end line: the log holds at most CAP.
        check(0 < len(console) <= CAP, "console log is %d bytes, cap %d" % (len(console), CAP))
        check(console.endswith(b"flood 00001023 " + b"x" * 47 + b"\nflood: end\n"),
              "the newest output is not at the end: %r" % console[-200:])
        check(b"flood 00000000 " not in console, "the oldest output was kept")
        numbers = [int(l.split()[1]) for l in console.splitlines()[1:-1]]
        check(numbers == list(range(numbers[0], 1024)), "the kept lines are not one run up to the last")
        vmm_log = s.read("flooder", ".log")
        check(len(vmm_log) < 4096 and b"flood" not in vmm_log, "VMM log: %r" % vmm_log[:300])
        # LogPath names the console (vmc logs reads it), not the VMM's log.
        check(s.client.start("after") and True, "spin did not start")
        info = s.client.mgr.GetVmInfo("after")
        check(str(info["LogPath"]) == s.path("after", ".console.log"), "LogPath %s" % info["LogPath"])
        s.client.vm(s.client.mgr.ListVms()[0][2]).Kill()
    finally:
        s.close()


@test
def guest_text_without_a_newline_does_not_change_the_stop_message():
    tm.need_kvm()
    s = Setup()
    try:
        name, p, reason, status, t, message = s.start_flood("forger", "flood_lines=2 forge=1 flood_exit=70")
        check((reason, status) == ("failed", 70), "VmStopped %s %d" % (reason, status))
        check(message == "guest wrote 70 to the debug-exit port", "VmStopped message %r" % message)
        check(s.read("forger", ".console.log").endswith(b"flood: end\nmajordome-vmm: forged"),
              "console: %r" % s.read("forger", ".console.log")[-100:])
    finally:
        s.close()


@test
def vmm_error_with_bad_utf8_and_escapes_reaches_dbus_escaped():
    d = tempfile.mkdtemp(prefix="majordome-fakevmm-")
    os.chmod(d, 0o755)
    # Much noise first: only the log's tail is read, and the error is still found.
    noise = b"majordome-vmm: old error\n" + b"noise " * 20000 + b"\n"
    vmm = fake_vmm(d, noise + b"majordome-vmm: bad \xff\xfe \x1b[31mred\x1b[0m \\ \xc3\xa9 \xc0\xaf\xed\xa0\x80\n")
    s = Setup(["--vmm", vmm])
    want = "bad \\xff\\xfe \\x1b[31mred\\x1b[0m \\\\ \u00e9 \\xc0\\xaf\\xed\\xa0\\x80"
    try:
        msg = tm.expect_error("org.majordome.Error.VmmFailed", s.client.start, "escapee")
        check(msg.endswith("majordome-vmm: " + want), "StartVm error %r" % msg)
        check(wait_until(lambda: s.client.stopped_of("escapee"), 10), "no VmStopped (a string sd-bus refused?)")
        name, p, reason, status, t, message = s.client.stopped_of("escapee")[0]
        check((reason, message) == ("start-failed", want), "VmStopped %s %r" % (reason, message))
    finally:
        s.close()
        shutil.rmtree(d, ignore_errors=True)


@test
def long_vmm_error_is_bounded():
    d = tempfile.mkdtemp(prefix="majordome-fakevmm-")
    os.chmod(d, 0o755)
    vmm = fake_vmm(d, b"majordome-vmm: " + b"\x1b" * 3000 + b"\n")
    s = Setup(["--vmm", vmm])
    try:
        tm.expect_error("org.majordome.Error.VmmFailed", s.client.start, "longer")
        check(wait_until(lambda: s.client.stopped_of("longer"), 10), "no VmStopped")
        message = s.client.stopped_of("longer")[0][5]
        check(message.startswith("\\x1b\\x1b") and message.endswith("...") and len(message) <= 515,
              "message of %d bytes: %r" % (len(message), message[:40]))
    finally:
        s.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(tm.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon"]))
