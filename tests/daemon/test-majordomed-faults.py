#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""majordomed SIGKILLed in the middle of StartVm, a graceful Stop and Kill,
then restarted (once, or twice in a row). Whatever the moment, afterwards:
every VMM alive is listed by ListVms, with its state file, and answers
Pause and Resume; no VMM runs that is not listed, and no child the daemon
forked waits on; a VM whose start never completed is either running and
listed or gone. The moments are found by watching /proc and the runtime
directory, with no hook in the daemon. Uses the helpers of
test-majordomed.py; prints TAP."""

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

SETTLE_S = 20


def proc_stat(pid):
    """(state, ppid) of a process, None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def live_pids():
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[0] != "Z":
                yield int(d), st[1]


def vmms_of(d):
    """{pid: name} of the live VMMs this daemon's runtime directory names
    (`--socket DIR/NAME.sock`): the supervisors, not their jailed child."""
    found = {}
    for pid, ppid in live_pids():
        argv = proc_cmdline(pid)
        if not argv or argv[0] != t.VMM or "--socket" not in argv:
            continue
        sock = argv[argv.index("--socket") + 1]
        if os.path.dirname(sock) == d.runtime_dir:
            found[pid] = (ppid, os.path.basename(sock)[:-len(".sock")])
    return {pid: name for pid, (ppid, name) in found.items() if ppid not in found}


def forks_of(d):
    """Processes running majordomed's own image for this runtime directory
    other than the daemon itself: children forked for a VMM that never
    executed it."""
    return [pid for pid, _ in live_pids()
            if pid != d.proc.pid and proc_cmdline(pid)[:1] == [t.MAJORDOMED] and d.runtime_dir in proc_cmdline(pid)]


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def n_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def listed(c):
    """{name: (state, pid, path)} as ListVms and the Pid properties say."""
    return {str(n): (str(s), int(c.prop(p, "Pid")), str(p)) for n, s, p in c.mgr.ListVms()}


def consistent(d, c):
    vms = listed(c)
    vmms = vmms_of(d)
    return (all(v[0] in ("running", "paused") for v in vms.values()) and
            {v[1]: name for name, v in vms.items()} == vmms and not forks_of(d))


def check_no_orphan_and_nothing_lost(d, c):
    """After a restart: the listed VMs and the live VMMs are the same set,
    each VM settled (running or paused), with its state file, and
    controllable; no fork of the daemon waits on. Returns the names."""
    t.wait_until(lambda: consistent(d, c), SETTLE_S)
    vms = listed(c)
    vmms = vmms_of(d)
    t.check(all(v[0] in ("running", "paused") for v in vms.values()), "not settled: %s" % vms)
    t.check(not forks_of(d), "daemon forks left: %s" % forks_of(d))
    for pid, name in vmms.items():
        t.check(name in vms, "orphan VMM %d for '%s', listed: %s" % (pid, name, vms))
        t.check(vms[name][1] == pid, "'%s' listed with pid %d, its VMM is %d" % (name, vms[name][1], pid))
    for name, (state, pid, _) in vms.items():
        t.check(pid in vmms, "'%s' listed (%s) but its VMM %d is gone" % (name, state, pid))
        t.check(os.path.exists(os.path.join(d.runtime_dir, name + ".state")), "'%s' has no state file" % name)
    states = sorted(f[:-len(".state")] for f in os.listdir(d.runtime_dir) if f.endswith(".state"))
    t.check(states == sorted(vms), "state files %s, listed %s" % (states, sorted(vms)))
    for name, (_, _, path) in vms.items():
        vm = c.vm(path)
        vm.Pause(timeout=20)
        t.check(c.prop(path, "State") == "paused", "'%s' did not pause" % name)
        vm.Resume(timeout=20)
        t.check(c.prop(path, "State") == "running", "'%s' did not resume" % name)
    return sorted(vms)


def start_async(c, name, results):
    """StartVm sent now: by the connection itself, as a proxy would wait
    for the main loop to introspect the object first."""
    cfg = dbus.Dictionary({"kernel": dbus.String(t.SPIN), "memory": dbus.UInt64(t.MEM)}, signature="sv")
    c.conn.call_async(t.NAME, t.PATH, t.IFACE, "StartVm", "sa{sv}", (name, cfg),
                      lambda p: results.append(("ok", str(p))),
                      lambda e: results.append(("error", e.get_dbus_name())), timeout=60)
    c.conn.flush()


def spin_until(pred, timeout):
    """Polls as fast as Python can, without the main loop: the moments
    looked for last milliseconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
    return pred()


def restart(d):
    """SIGKILL, then a new daemon once the bus has seen the old one go. A
    fork made an instant before the kill holds the old connection until
    it closes the daemon's descriptors (before its gate): the name is not
    free until then, and a daemon started earlier could not take it."""
    d.kill(signal.SIGKILL)
    conn = d.bus.connect()
    try:
        t.check(t.wait_until(lambda: not conn.name_has_owner(t.NAME), 5),
                "the dead daemon's bus name stays taken: %s" % forks_of(d))
    finally:
        conn.close()
    d.start()


def kill_all_vmms(d):
    """So that no guest outlives a failed test, listed or not."""
    for pid in list(vmms_of(d)) + forks_of(d):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Env:
    def __init__(self):
        t.need_kvm()
        self.bus = t.Bus()
        self.d = t.Daemon(self.bus)
        self.c = t.Client(self.bus)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None and kind is not t.Skip:
            for line in self.d.log_tail(30):
                print("# majordomed: " + line)
        if self.d.proc.poll() is None:
            os.kill(self.d.proc.pid, signal.SIGCONT)
        kill_all_vmms(self.d)
        self.c.close()
        self.d.close()
        self.bus.close()


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def note(msg):
    print("# " + msg)


@test
def start_killed_right_after_the_call_is_sent():
    """The daemon dies with StartVm just sent: it never saw it, or forked
    for it, or saved it; after the restart the VM is running or gone."""
    with Env() as e:
        start_async(e.c, "early", [])
        restart(e.d)
        names = check_no_orphan_and_nothing_lost(e.d, e.c)
        note("after the restart: %s" % (names or "gone"))


@test
def start_killed_as_soon_as_the_daemon_forked():
    """The moment the old defect lived in: the child forked for the VMM is
    there, the state file maybe not yet. The daemon is stopped at once (to
    know which), then killed. A child without its state file must not
    become a VMM; one with it is adopted. Three rounds, as the moment is
    caught by polling."""
    with Env() as e:
        for i in range(3):
            name = "fork%d" % i
            before = set(children(e.d.proc.pid))
            start_async(e.c, name, [])
            child = spin_until(lambda: set(children(e.d.proc.pid)) - before, 10)
            t.check(child, "no fork for '%s'" % name)
            os.kill(e.d.proc.pid, signal.SIGSTOP)
            t.check(spin_until(lambda: proc_stat(e.d.proc.pid)[0] == "T", 5), "the daemon did not stop")
            saved = os.path.exists(os.path.join(e.d.runtime_dir, name + ".state"))
            running = [p for p in child if proc_cmdline(p)[:1] == [t.VMM]]
            note("round %d: child %s, state file %s, VMM executed %s" % (i, child, saved, bool(running)))
            t.check(saved or not running, "the VMM was executed before its state file was saved")
            restart(e.d)
            names = check_no_orphan_and_nothing_lost(e.d, e.c)
            t.check(name in names or not running, "'%s' ran but is not listed" % name)


@test
def start_killed_once_the_vmm_runs():
    """The VMM process has replaced the fork: its state file exists; the
    VM is adopted while it starts and ends up running."""
    with Env() as e:
        start_async(e.c, "vmm", [])
        t.check(spin_until(lambda: vmms_of(e.d), 20), "no VMM appeared")
        restart(e.d)
        t.check(check_no_orphan_and_nothing_lost(e.d, e.c) == ["vmm"], "not adopted")


@test
def start_killed_once_the_state_file_appears():
    with Env() as e:
        state = os.path.join(e.d.runtime_dir, "saved.state")
        start_async(e.c, "saved", [])
        t.check(spin_until(lambda: os.path.exists(state), 20), "no state file")
        restart(e.d)
        t.check(check_no_orphan_and_nothing_lost(e.d, e.c) == ["saved"], "not adopted")


@test
def start_adopted_before_its_vmm_listens_ends_up_running():
    """The restarted daemon adopts a VM still starting whose VMM has no
    control socket yet (its fork is held stopped at the gate): adopted
    from the state file as starting, it must go on to running once the
    VMM answers, not stay "starting"."""
    with Env() as e:
        for attempt in range(5):
            name = "late%d" % attempt
            results = []
            before = set(children(e.d.proc.pid))
            start_async(e.c, name, results)
            child = spin_until(lambda: set(children(e.d.proc.pid)) - before, 10)
            t.check(len(child) == 1, "forks: %s" % child)
            pid = child.pop()
            # Stopped once it closed the daemon's descriptors (the bus
            # connection among them would keep the old daemon's name) and
            # before it executed the VMM: waiting at the gate.
            t.check(spin_until(lambda: n_fds(pid) <= 8, 10), "the fork keeps its descriptors")
            os.kill(pid, signal.SIGSTOP)
            t.check(spin_until(lambda: proc_stat(pid)[0] == "T", 5), "the fork did not stop")
            if proc_cmdline(pid)[:1] == [t.MAJORDOMED]:
                break
            note("attempt %d: the VMM was executed already" % attempt)
            os.kill(pid, signal.SIGCONT)
            t.check(t.wait_until(lambda: results, 20), "no StartVm reply")
        else:
            raise AssertionError("never caught a fork at its gate")
        try:
            t.check(spin_until(lambda: os.path.exists(os.path.join(e.d.runtime_dir, name + ".state")), 10),
                    "no state file")
            time.sleep(0.1)  # the gate opens right after the save
            restart(e.d)
            vms = {str(n): str(s) for n, s, _ in e.c.mgr.ListVms()}
            t.check(vms.get(name) == "starting", "after the restart: %s" % vms)
        finally:
            os.kill(pid, signal.SIGCONT)
        t.check(name in check_no_orphan_and_nothing_lost(e.d, e.c), "not adopted")


@test
def start_killed_just_before_the_reply():
    """The state file says running (saved just before StartVm's reply):
    the caller may never hear, the VM is running and listed."""
    with Env() as e:
        results = []
        state = os.path.join(e.d.runtime_dir, "replied.state")

        def running():
            try:
                with open(state) as f:
                    return "\nSTATE=running\n" in f.read()
            except OSError:
                return False
        start_async(e.c, "replied", results)
        t.check(spin_until(running, 30), "never running")
        restart(e.d)
        t.pump(0.1)
        note("StartVm's caller got %s" % (results or "nothing"))
        t.check(check_no_orphan_and_nothing_lost(e.d, e.c) == ["replied"], "not adopted")


@test
def start_killed_across_two_restarts_in_a_row():
    """Killed once the state file appears, restarted, and killed again at
    once (while it adopts a VM still starting), restarted again."""
    with Env() as e:
        state = os.path.join(e.d.runtime_dir, "twice.state")
        start_async(e.c, "twice", [])
        t.check(spin_until(lambda: os.path.exists(state), 20), "no state file")
        restart(e.d)
        restart(e.d)
        t.check(check_no_orphan_and_nothing_lost(e.d, e.c) == ["twice"], "not adopted")
        # Still managed: a graceful stop ends it, its VMM included.
        pid = listed(e.c)["twice"][1]
        step = e.c.mgr.StopVm("twice", "graceful", dbus.UInt32(5000), timeout=30)
        t.check(step == "graceful", "stop ended with %s" % step)
        t.check(t.wait_until(lambda: not e.c.mgr.ListVms() and not t.pid_alive(pid), 10), "not stopped")


@test
def start_vm_whose_state_cannot_be_saved_leaves_no_vmm():
    """The state file cannot be written (a directory is in its place):
    StartVm fails, and no VMM (nor a fork waiting for the gate) is left."""
    with Env() as e:
        state = os.path.join(e.d.runtime_dir, "unsaved.state")
        os.mkdir(state)
        msg = t.expect_error("org.majordome.Error.VmmFailed", e.c.start, "unsaved")
        note("StartVm: %s" % msg)
        t.check(t.wait_until(lambda: not vmms_of(e.d) and not forks_of(e.d), 5),
                "left: VMMs %s, forks %s" % (vmms_of(e.d), forks_of(e.d)))
        t.check(not e.c.mgr.ListVms(), "listed: %s" % e.c.mgr.ListVms())
        # Nothing half-made stays in the way of the name.
        os.rmdir(state)
        e.c.start("unsaved")
        t.check(check_no_orphan_and_nothing_lost(e.d, e.c) == ["unsaved"], "second start")


@test
def stop_killed_during_its_sigterm_step():
    """A VMM that does not answer (SIGSTOPped) is being stopped; the daemon
    is killed once the stop reached its SIGTERM step (saved). The restarted
    daemon continues the stop: the VM ends, nothing is left."""
    with Env() as e:
        path = e.c.start("term")
        pid = int(e.c.prop(path, "Pid"))
        tree = [pid] + children(pid)
        for p in tree:
            os.kill(p, signal.SIGSTOP)
        try:
            state = os.path.join(e.d.runtime_dir, "term.state")
            e.c.vm(path).Stop("graceful", dbus.UInt32(500), reply_handler=lambda s: None,
                              error_handler=lambda err: None, timeout=60)
            e.c.conn.flush()
            t.check(t.wait_until(lambda: "\nSTOP_STEP=sigterm\n" in open(state).read(), 10), "no SIGTERM step")
            restart(e.d)
            t.check({str(n): str(s) for n, s, _ in e.c.mgr.ListVms()} == {"term": "stopping"},
                    "after the restart: %s" % e.c.mgr.ListVms())
        finally:
            for p in tree:
                try:
                    os.kill(p, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        t.check(t.wait_until(lambda: not e.c.mgr.ListVms(), 15), "still listed: %s" % e.c.mgr.ListVms())
        t.check(t.wait_until(lambda: not vmms_of(e.d), 5), "VMM left: %s" % vmms_of(e.d))
        t.check(t.wait_until(lambda: e.c.stopped_of("term"), 5), "no VmStopped")
        t.check(not os.path.exists(os.path.join(e.d.runtime_dir, "term.state")), "state file left")


@test
def kill_interrupted_by_the_daemons_death():
    """The daemon dies with Kill just sent (round 0: whenever that is), or
    once Kill is saved in the state file (round 1: its SIGKILL sent).
    After the restart the VM is gone, or (round 0) still running and
    managed, and a second Kill ends it; no VMM, no state file left."""
    with Env() as e:
        for i in range(2):
            name = "doomed%d" % i
            path = e.c.start(name)
            e.c.vm(path).Kill(reply_handler=lambda: None, error_handler=lambda err: None, timeout=30)
            e.c.conn.flush()
            if i == 1:
                state = os.path.join(e.d.runtime_dir, name + ".state")

                def saved():
                    try:
                        with open(state) as f:
                            return "\nKILL_REQUESTED=1\n" in f.read()
                    except OSError:
                        return True  # already ended
                t.check(spin_until(saved, 10), "Kill never saved")
            restart(e.d)
            t.wait_until(lambda: not e.c.mgr.ListVms() or consistent(e.d, e.c), SETTLE_S)
            vms = listed(e.c)
            note("round %d, after the restart: %s" % (i, vms or "gone"))
            if vms:
                t.check(i == 0, "a saved Kill left %s" % vms)
                check_no_orphan_and_nothing_lost(e.d, e.c)
                e.c.vm(path).Kill(timeout=30)
            t.check(t.wait_until(lambda: not e.c.mgr.ListVms() and not vmms_of(e.d), 10),
                    "left: listed %s, VMMs %s" % (e.c.mgr.ListVms(), vmms_of(e.d)))
            t.check(not [f for f in os.listdir(e.d.runtime_dir) if f.endswith(".state")], "state file left")


if __name__ == "__main__":
    sys.exit(t.run_tap(TESTS, sys.argv[1:]))
