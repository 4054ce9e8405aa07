#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""majordomed against VMMs that push odd event streams or speak another
control protocol version: tests/daemon/fake-vmm.py stands in for
majordome-vmm (no KVM needed). Uses the helpers of test-majordomed.py;
prints TAP."""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import dbus

_spec = importlib.util.spec_from_file_location(
    "majordomed_tests", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-majordomed.py"))
t = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(t)

FAKE_VMM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake-vmm.py")
PANIC_INIT = os.path.join(t.SOURCE_DIR, "tests", "linux", "init-panic.sh")

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class FakeVmmDaemon(t.Daemon):
    """majordomed with fake-vmm.py as its VMM, in a given scenario."""

    def __init__(self, bus, scenario, **kw):
        self.scenario = scenario
        super().__init__(bus, **kw)

    def start(self):
        saved = t.VMM, os.environ.get("FAKE_VMM_SCENARIO"), os.environ.get("FAKE_VMM_V2_FLAG")
        t.VMM = FAKE_VMM
        os.environ["FAKE_VMM_SCENARIO"] = self.scenario
        os.environ["FAKE_VMM_V2_FLAG"] = self.runtime_dir + ".v2"
        try:
            super().start()
        finally:
            t.VMM = saved[0]
            for k, v in (("FAKE_VMM_SCENARIO", saved[1]), ("FAKE_VMM_V2_FLAG", saved[2])):
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def panics_recorder(c):
    panics = []
    c.conn.add_signal_receiver(lambda n, p, a: panics.append((str(n), str(a))),
                               "GuestPanicked", t.IFACE, t.NAME, t.PATH)
    return panics


def dump_log_on_failure(d):
    if sys.exc_info()[0] is not None:
        for line in d.log_tail(30):
            print("# majordomed: " + line)


def pid_alive(pid):
    """Alive and not a zombie (the VMM's first parent, the killed daemon, is
    gone: whoever inherited it may not have reaped it yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@test
def odd_event_streams_are_ignored_and_never_move_the_state():
    """Events before ready, duplicated or stale ids, an oversized datagram,
    an unknown type, a short payload, a panic said twice and events after
    `exiting`: only ready(paused) and one panic count."""
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "hostile")
    c = t.Client(bus)
    panics = panics_recorder(c)
    try:
        path = c.start("odd")
        t.pump(0.5)
        t.check(c.prop(path, "State") == "paused", "State %s, not paused" % c.prop(path, "State"))
        t.check(panics == [("odd", "pause")], "GuestPanicked signals: %s" % panics)
        t.check(d.proc.poll() is None, "majordomed died")
        c.vm(path).Kill(timeout=30)
        t.check(t.wait_until(lambda: c.stopped_of("odd"), 10), "no VmStopped")
        t.check(c.stopped_of("odd")[0][2] == "killed", "reason %s" % (c.stopped_of("odd"),))
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def balloon_reached_events_update_both_balloon_properties_at_once():
    """A VMM's balloon-reached events set BalloonTargetBytes and
    BalloonActualBytes with PropertiesChanged, no GetBalloonStats asked; a
    malformed one is dropped and logged."""
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "balloon")
    c = t.Client(bus)
    changes = []
    c.conn.add_signal_receiver(
        lambda iface, changed, invalidated, path=None: changes.append(
            {str(k): int(v) for k, v in changed.items() if str(k).startswith("Balloon")}),
        "PropertiesChanged", "org.freedesktop.DBus.Properties", t.NAME, path_keyword="path")
    mib = 1024 * 1024
    try:
        path = c.start("ballooned")
        t.check(t.wait_until(lambda: c.prop(path, "BalloonActualBytes") == 8 * mib, 10),
                "BalloonActualBytes %s" % c.prop(path, "BalloonActualBytes"))
        t.check(c.prop(path, "BalloonTargetBytes") == 8 * mib, "BalloonTargetBytes %s" % c.prop(path, "BalloonTargetBytes"))
        t.pump(0.5)
        told = [ch for ch in changes if ch]
        t.check(told == [{"BalloonTargetBytes": 16 * mib, "BalloonActualBytes": 16 * mib},
                         {"BalloonTargetBytes": 8 * mib, "BalloonActualBytes": 8 * mib}],
                "PropertiesChanged: %s" % told)
        t.check(any("malformed balloon-reached event" in line for line in d.log_tail(50)),
                "the daemon's log does not mention the malformed event")
        c.vm(path).Kill(timeout=30)
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def device_errors_become_device_error_signals_escaped_and_the_vm_runs_on():
    """A VMM's device-error events (a vhost-user back-end that died) are
    DeviceError signals, one each, the reason escaped; a malformed one is
    dropped; the VM stays running."""
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "device-error")
    c = t.Client(bus)
    errors = []
    c.conn.add_signal_receiver(lambda n, p, slot, dev, why: errors.append((str(n), int(slot), str(dev), str(why))),
                               "DeviceError", t.IFACE, t.NAME, t.PATH)
    try:
        path = c.start("broken")
        t.check(t.wait_until(lambda: len(errors) >= 2, 10), "DeviceError signals: %s" % errors)
        t.pump(0.5)
        t.check(errors == [("broken", 3, "1af4:105a", "the back-end hung up"),
                           ("broken", 4, "1af4:105a", "bad \\x1b[31m\\xff")], "DeviceError signals: %s" % errors)
        t.check(c.prop(path, "State") == "running", "State %s" % c.prop(path, "State"))
        t.check(any("device 1af4:105a in slot 3 broke" in line for line in d.log_tail(50)),
                "the daemon's log does not name the device")
        c.vm(path).Kill(timeout=30)
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def vmm_of_another_protocol_version_fails_the_start_with_both_versions():
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "v2")
    c = t.Client(bus)
    try:
        try:
            c.start("v2")
            t.check(False, "StartVm of a v2 VMM succeeded")
        except dbus.DBusException as e:
            t.check(e.get_dbus_name() == "org.majordome.Error.VmmFailed", e.get_dbus_name())
            t.check("control protocol v2" in str(e) and "v1" in str(e), str(e))
        t.check(t.wait_until(lambda: c.stopped_of("v2"), 10), "no VmStopped")
        t.check(c.stopped_of("v2")[0][2] == "start-failed", "reason %s" % (c.stopped_of("v2"),))
        t.check(any("speaks control protocol v2, this daemon v1" in line for line in d.log_tail(50)),
                "the daemon's log does not name both versions")
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def vmm_without_events_fails_the_start_at_once():
    """A VMM that refuses subscribe would never be seen running: the start
    fails now, not after the 30 s start timeout."""
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "old")
    c = t.Client(bus)
    try:
        begin = time.monotonic()
        try:
            c.start("old")
            t.check(False, "StartVm of a VMM without events succeeded")
        except dbus.DBusException as e:
            t.check(e.get_dbus_name() == "org.majordome.Error.VmmFailed", e.get_dbus_name())
        t.check(time.monotonic() - begin < 5, "the start failed only after %.1f s" % (time.monotonic() - begin))
        t.check(t.wait_until(lambda: c.stopped_of("old"), 10), "no VmStopped")
        t.check(c.stopped_of("old")[0][2] == "start-failed", "reason %s" % (c.stopped_of("old"),))
        t.check(any("refused to push its events" in line for line in d.log_tail(50)), "nothing in the log")
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def vmm_upgraded_under_a_restarted_daemon_is_failed_refused_by_name_and_stopped_by_stopvm():
    """After a restart the daemon finds a VMM that answers as version 2: the
    VM is listed as "failed" with the reason, every request is refused with
    an error naming the mismatch, the VMM is left running until asked, and
    StopVm (graceful) ends it by signals and removes its state file."""
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "normal")
    c = t.Client(bus)
    try:
        path = c.start("upgraded", balloon=dbus.Boolean(True))
        pid = int(c.prop(path, "Pid"))
        state_file = os.path.join(d.runtime_dir, "upgraded.state")
        d.kill()
        open(d.runtime_dir + ".v2", "w").close()
        d.start()
        c.close()
        c = t.Client(bus)
        t.check(t.wait_until(lambda: "upgraded" in [str(v[0]) for v in c.mgr.ListVms()], 10), "VM not listed")
        t.check(c.prop(path, "State") == "failed", "State %s" % c.prop(path, "State"))
        t.check([str(v[1]) for v in c.mgr.ListVms() if str(v[0]) == "upgraded"] == ["failed"], "ListVms state")
        reason = str(c.prop(path, "FailedReason"))
        t.check("control protocol v2" in reason and "v1" in reason, "FailedReason %r" % reason)
        for what, call in (("Pause", lambda: c.vm(path).Pause(timeout=10)),
                           ("Resume", lambda: c.vm(path).Resume(timeout=10)),
                           ("SetBalloon", lambda: c.vm(path).SetBalloon(dbus.UInt64(0), timeout=10)),
                           ("GetBalloonStats", lambda: c.vm(path).GetBalloonStats(timeout=10))):
            try:
                call()
                t.check(False, "%s of a v2 VMM succeeded" % what)
            except dbus.DBusException as e:
                t.check(e.get_dbus_name() == "org.majordome.Error.VmmFailed", "%s: %s" % (what, e.get_dbus_name()))
                t.check("control protocol v2" in str(e) and "another control protocol version" in str(e),
                        "%s: %s" % (what, e))
        t.check(pid_alive(pid), "the daemon killed the VMM")
        t.check(any("speaks control protocol v2, this daemon v1" in line for line in d.log_tail(50)),
                "the daemon's log does not name both versions")
        step = c.mgr.StopVm("upgraded", "graceful", dbus.UInt32(1000), timeout=30)
        t.check(str(step) in ("sigterm", "sigkill"), "step %s" % step)
        t.check(t.wait_until(lambda: c.stopped_of("upgraded"), 10), "no VmStopped")
        t.check(not pid_alive(pid), "StopVm left the VMM alive")
        t.check(not os.path.exists(state_file), "the state file is left")
    finally:
        dump_log_on_failure(d)
        try:
            os.unlink(d.runtime_dir + ".v2")
        except FileNotFoundError:
            pass
        c.close()
        d.close()
        bus.close()


@test
def vmm_upgraded_under_a_restarted_daemon_is_ended_by_kill():
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "normal")
    c = t.Client(bus)
    try:
        path = c.start("upgraded")
        pid = int(c.prop(path, "Pid"))
        d.kill()
        open(d.runtime_dir + ".v2", "w").close()
        d.start()
        c.close()
        c = t.Client(bus)
        t.check(t.wait_until(lambda: "upgraded" in [str(v[0]) for v in c.mgr.ListVms()], 10), "VM not listed")
        t.check(c.prop(path, "State") == "failed", "State %s" % c.prop(path, "State"))
        c.vm(path).Kill(timeout=30)
        t.check(t.wait_until(lambda: c.stopped_of("upgraded"), 10), "no VmStopped")
        t.check(not pid_alive(pid), "Kill left the VMM alive")
    finally:
        dump_log_on_failure(d)
        try:
            os.unlink(d.runtime_dir + ".v2")
        except FileNotFoundError:
            pass
        c.close()
        d.close()
        bus.close()


@test
def on_panic_other_than_stop_or_pause_is_refused_by_name():
    bus = t.Bus()
    d = FakeVmmDaemon(bus, "normal")
    c = t.Client(bus)
    try:
        try:
            c.start("badpanic", kernel=dbus.String(FAKE_VMM), on_panic=dbus.String("reboot"))
            t.check(False, "on_panic=reboot accepted")
        except dbus.DBusException as e:
            t.check(e.get_dbus_name() == "org.majordome.Error.InvalidConfig", e.get_dbus_name())
            t.check("on_panic" in str(e) and "reboot" in str(e), str(e))
        try:
            c.start("badpanic", kernel=dbus.String(FAKE_VMM), on_panic=dbus.Boolean(True))
            t.check(False, "on_panic=true accepted")
        except dbus.DBusException as e:
            t.check(e.get_dbus_name() == "org.majordome.Error.InvalidConfig", e.get_dbus_name())
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def state_changes_made_past_the_daemon_are_pushed_also_after_a_restart():
    """The real VMM: a pause or resume another client makes on the VMM's
    socket reaches the daemon's State by an event, on the connection it
    spawned the VMM with and on the one it re-adopts it by after a restart."""
    t.need_kvm()
    bus = t.Bus()
    d = t.Daemon(bus)
    c = t.Client(bus)
    try:
        path = c.start("pushed")
        sock = os.path.join(d.runtime_dir, "pushed.sock")
        figures = []
        for verb, state in (("pause", "paused"), ("resume", "running")):
            begin = time.monotonic()
            subprocess.check_call([t.VMM, verb, sock])
            t.check(t.wait_until(lambda: c.prop(path, "State") == state, 5), "State did not become " + state)
            figures.append("%s %.0f ms" % (verb, (time.monotonic() - begin) * 1000))
        d.kill()
        d.start()
        c.close()
        c = t.Client(bus)
        t.check(t.wait_until(lambda: "pushed" in [str(v[0]) for v in c.mgr.ListVms()], 10), "VM not re-adopted")
        begin = time.monotonic()
        subprocess.check_call([t.VMM, "pause", sock])
        t.check(t.wait_until(lambda: c.prop(path, "State") == "paused", 5), "State did not become paused after the restart")
        figures.append("pause after a restart %.0f ms" % ((time.monotonic() - begin) * 1000))
        print("# CLI verb -> State seen on D-Bus: " + ", ".join(figures))
        c.vm(path).Stop("graceful", dbus.UInt32(5000), timeout=30)
        t.check(t.wait_until(lambda: c.stopped_of("pushed"), 10), "no VmStopped")
        t.check(c.stopped_of("pushed")[0][2] == "stopped", "reason %s" % (c.stopped_of("pushed"),))
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


@test
def rig_guest_panic_is_reported_within_a_second_or_kept_paused():
    """The linux-rig guest's /init exits: the kernel panics and its pvpanic
    driver reports it. With on_panic "stop" (the default) VmStopped says
    guest-panic (status 74) within a second of the guest's panic message;
    with "pause", GuestPanicked comes and the VM stays, paused. Both VMs boot
    at once: one boot's time for the two checks."""
    rig = os.environ.get("MAJORDOME_RIG_DIR", "")
    scripts = os.environ.get("MAJORDOME_RIG_SCRIPTS", "")
    if not os.path.exists(os.path.join(rig, "vmlinux")) or not os.path.exists(os.path.join(scripts, "mkinitramfs.sh")):
        raise t.Skip("linux-rig not found (MAJORDOME_RIG_DIR, MAJORDOME_RIG_SCRIPTS)")
    t.need_kvm()
    work = tempfile.mkdtemp(prefix="majordome-panic-")
    initrd = os.path.join(work, "initrd.cpio")
    subprocess.check_call([os.path.join(scripts, "mkinitramfs.sh"), rig, PANIC_INIT, initrd])
    with open(os.path.join(scripts, "cmdline")) as f:
        cmdline = "console=ttyS0 " + f.read().strip()
    bus = t.Bus()
    d = t.Daemon(bus)
    c = t.Client(bus)
    panics = panics_recorder(c)
    try:
        common = dict(kernel=dbus.String(os.path.join(rig, "vmlinux")), initrd=dbus.String(initrd),
                      cmdline=dbus.String(cmdline), memory=dbus.UInt64(256 << 20))
        stop_path = c.start("panic-stop", **common)
        pause_path = c.start("panic-pause", on_panic=dbus.String("pause"), **common)
        stop_log = os.path.join(d.runtime_dir, "panic-stop.console.log")
        pause_log = os.path.join(d.runtime_dir, "panic-pause.console.log")
        seen_at = None
        end = time.monotonic() + 300
        while time.monotonic() < end and not c.stopped_of("panic-stop"):
            t.pump()
            if seen_at is None and "Kernel panic" in read_text(stop_log):
                seen_at = time.monotonic()
            time.sleep(0.002)
        t.check(c.stopped_of("panic-stop"), "no VmStopped for panic-stop; console:\n" + read_text(stop_log)[-2000:])
        stopped = c.stopped_of("panic-stop")[0]
        t.check(stopped[2] == "guest-panic" and stopped[3] == 74, "VmStopped %s" % (stopped,))
        t.check("MAJORDOME-INIT-EXITING" in read_text(stop_log), "the guest never ran its /init")
        t.check(seen_at is not None or "Kernel panic" in read_text(stop_log), "no panic message in the console")
        if seen_at is None:
            seen_at = time.monotonic()  # flushed only as the VMM exited: the same instant
        delay_ms = (stopped[4] - seen_at) * 1000
        print("# guest panic message -> VmStopped(guest-panic): %.0f ms" % delay_ms)
        t.check(delay_ms < 1000, "VmStopped came %.0f ms after the guest's panic message" % delay_ms)

        t.check(t.wait_until(lambda: ("panic-pause", "pause") in panics, 300),
                "no GuestPanicked for panic-pause; console:\n" + read_text(pause_log)[-2000:])
        t.check(t.wait_until(lambda: c.prop(pause_path, "State") == "paused", 10),
                "panic-pause is %s, not paused" % c.prop(pause_path, "State"))
        t.pump(0.5)
        t.check(not c.stopped_of("panic-pause"), "the paused VM stopped")
        t.check(panics.count(("panic-pause", "pause")) == 1, "GuestPanicked %s" % panics)
        c.vm(pause_path).Kill(timeout=30)
        t.check(t.wait_until(lambda: c.stopped_of("panic-pause"), 10), "no VmStopped after Kill")
        t.check(c.stopped_of("panic-pause")[0][2] == "killed", "reason %s" % (c.stopped_of("panic-pause"),))
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()
        subprocess.call(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(t.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon"]))
