#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""majordomed's control of its VMMs under pressure: a GetBalloonStats flood
against a guest that never answers statistics, and adoption of VMMs that
do not answer (SIGSTOPped) or were being stopped when the daemon was
killed. Uses the helpers of test-majordomed.py; prints TAP."""

import importlib.util
import os
import signal
import sys
import time

import dbus

_spec = importlib.util.spec_from_file_location(
    "majordomed_tests", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-majordomed.py"))
t = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(t)

BALLOON_GUEST = os.path.join(t.GUEST_DIR, "virtio-balloon.elf")


def signal_tree(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def state_file(d, name):
    with open(os.path.join(d.runtime_dir, name + ".state")) as f:
        return dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line and not line.startswith("#"))


def dump_log_on_failure(d):
    if sys.exc_info()[0] is not None:
        for line in d.log_tail(30):
            print("# majordomed: " + line)


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def balloon_stats_flood_does_not_block_pause_and_graceful_stop():
    """Defect 6: 80 concurrent GetBalloonStats on a guest that never answers
    statistics (each waits MACHINE_BALLOON_STATS_WAIT_MS in the VMM): they share
    one request, and the owner's Pause and Stop go through at once."""
    t.need_kvm()
    bus = t.Bus()
    d = t.Daemon(bus)
    c = t.Client(bus)
    try:
        name = "flood"
        path = c.start(name, kernel=dbus.String(BALLOON_GUEST), balloon=dbus.Boolean(True),
                       cmdline=dbus.String("stats=mute"))
        t.check(t.wait_until(lambda: "balloon: ready" in open(os.path.join(d.runtime_dir, name + ".console.log")).read(), 90),
                "guest not ready")
        results = []
        vm = c.vm(path)
        for _ in range(80):
            vm.GetBalloonStats(reply_handler=lambda s: results.append(("ok", s)),
                               error_handler=lambda e: results.append(("error", e.get_dbus_name())),
                               timeout=60)
        t.pump(0.2)
        vm.Pause(timeout=30)
        t.check(c.prop(path, "State") == "paused", "Pause did not take")
        step = vm.Stop("graceful", dbus.UInt32(5000), timeout=60)
        t.check(step == "graceful", "Stop ended with step %s" % step)
        t.check(t.wait_until(lambda: len(results) == 80, 30), "%d of 80 GetBalloonStats answered" % len(results))
        # They may fail once the VM is gone (VmmFailed), never for a full queue.
        busy = [r for r in results if r == ("error", "org.majordome.Error.Busy")]
        t.check(not busy, "%d GetBalloonStats refused as Busy" % len(busy))
        t.check(t.wait_until(lambda: c.stopped_of(name), 10), "no VmStopped")
        t.check(c.stopped_of(name)[0][2] == "stopped", "reason %s" % (c.stopped_of(name),))
    finally:
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def unresponsive_vmm_is_still_managed_after_a_daemon_restart():
    """Defect 9: a VMM that does not answer (SIGSTOP) while the daemon
    restarts stays listed, with its state file, and can be killed."""
    t.need_kvm()
    bus = t.Bus()
    d = t.Daemon(bus)
    c = t.Client(bus)
    tree = []
    try:
        path = c.start("frozen")
        pid = int(c.prop(path, "Pid"))
        tree = t.vmm_tree(pid)
        signal_tree(tree, signal.SIGSTOP)
        d.kill(signal.SIGKILL)
        d.start()
        vms = {str(n): str(s) for n, s, _ in c.mgr.ListVms()}
        t.check(vms == {"frozen": "running"}, "ListVms after restart: %s" % vms)
        t.check(os.path.exists(os.path.join(d.runtime_dir, "frozen.state")), "state file removed")
        t.check(int(c.prop(path, "Pid")) == pid, "pid lost")
        c.vm(path).Kill(timeout=30)
        t.check(t.wait_until(lambda: not t.pid_alive(pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
                             20), "the VMM survived Kill")
        t.check(t.wait_until(lambda: len(c.mgr.ListVms()) == 0, 20), "still listed: %s" % c.mgr.ListVms())
        t.check(t.wait_until(lambda: c.stopped_of("frozen"), 10) and c.stopped_of("frozen")[0][2] == "killed",
                "VmStopped: %s" % c.stopped)
    finally:
        signal_tree(tree, signal.SIGCONT)
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


@test
def graceful_stop_under_way_is_continued_after_a_daemon_restart():
    """Defect 9: the daemon is SIGKILLed while a graceful stop waits for a
    VMM that does not answer; the restarted daemon continues the escalation
    (its timers armed) and the VM ends instead of staying "stopping"."""
    t.need_kvm()
    bus = t.Bus()
    d = t.Daemon(bus)
    c = t.Client(bus)
    tree = []
    try:
        path = c.start("halfway")
        pid = int(c.prop(path, "Pid"))
        tree = t.vmm_tree(pid)
        signal_tree(tree, signal.SIGSTOP)
        c.vm(path).Stop("graceful", dbus.UInt32(1500), reply_handler=lambda s: None,
                        error_handler=lambda e: None, timeout=60)
        t.check(t.wait_until(lambda: c.prop(path, "State") == "stopping", 5), "not stopping")
        saved = state_file(d, "halfway")
        t.check(saved.get("STOP_REQUESTED") == "1" and saved.get("STOP_STEP") == "graceful",
                "state file: %s" % saved)
        d.kill(signal.SIGKILL)
        d.start()
        vms = {str(n): str(s) for n, s, _ in c.mgr.ListVms()}
        t.check(vms == {"halfway": "stopping"}, "ListVms after restart: %s" % vms)
        t.check(t.wait_until(lambda: len(c.mgr.ListVms()) == 0, 30), "still listed: %s" % c.mgr.ListVms())
        t.check(t.wait_until(lambda: not t.pid_alive(pid), 10), "the VMM is still alive")
        t.check(t.wait_until(lambda: c.stopped_of("halfway"), 10) and c.stopped_of("halfway")[0][2] == "stopped",
                "VmStopped: %s" % c.stopped)
    finally:
        signal_tree(tree, signal.SIGCONT)
        dump_log_on_failure(d)
        c.close()
        d.close()
        bus.close()


if __name__ == "__main__":
    sys.exit(t.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon", "busctl", "gdbus"]))
