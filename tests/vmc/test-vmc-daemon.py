#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vmc end to end: the real majordomed on a private dbus-daemon, running
the real majordome-vmm with the `spin` test guest on /dev/kvm.

Every case is reported as skipped, with the reason, when majordomed is not
built, /dev/kvm cannot be used or dbus-daemon is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmctest import PrivateBus, Tap, check, vmc, wait_for  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    def __init__(self):
        self.bus = PrivateBus()
        self.tmp = tempfile.TemporaryDirectory(prefix="vmc-daemon-")
        self.runtime = os.path.join(self.tmp.name, "run")
        os.mkdir(self.runtime)
        self.spin = os.path.join(os.environ["MAJORDOME_GUEST_DIR"], "spin.elf")
        self.daemon_log = open(os.path.join(self.tmp.name, "majordomed.log"), "w+")
        self.start_daemon()

    def start_daemon(self):
        self.daemon = subprocess.Popen(
            [os.environ["MAJORDOMED"], "--user", "--runtime-dir", self.runtime,
             "--vmm", os.environ["MAJORDOME_VMM"]],
            env=self.bus.env, stdout=self.daemon_log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: self.vmc("list").rc == 0, timeout=15):
            raise RuntimeError("majordomed did not come up: " + self.daemon_output())

    def daemon_output(self):
        self.daemon_log.flush()
        self.daemon_log.seek(0)
        return self.daemon_log.read()

    def vmc(self, *args, **kw):
        return vmc(self.bus.address, *args, **kw)

    def start(self, name, *extra):
        r = self.vmc("start", name, "--kernel", self.spin, "--mem", "64M", *extra, timeout=120)
        check(r.rc == 0, "%s\ndaemon:\n%s" % (r, self.daemon_output()))
        return r

    def info(self, name):
        r = self.vmc("info", name, "--json")
        check(r.rc == 0, r)
        return json.loads(r.out)

    def stop_daemon(self):
        if self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()

    def close(self):
        # Stop what the tests left running, then the daemon and the bus.
        if self.daemon.poll() is None:
            for vm in json.loads(self.vmc("list", "--json").out or "[]"):
                self.vmc("stop", vm["Name"], "--force")
        self.stop_daemon()
        self.bus.close()
        self.daemon_log.close()
        self.tmp.cleanup()


@test
def start_spin_prints_the_pid_of_a_live_vmm(env):
    r = env.start("spin")
    check(r.out.startswith("started spin (pid "), r)
    pid = int(r.out.split("pid ")[1].rstrip(")\n"))
    check(os.path.exists("/proc/%d" % pid), "pid %d is not alive" % pid)


@test
def list_shows_the_running_vm(env):
    r = env.vmc("list")
    check(r.rc == 0, r)
    rows = [l.split() for l in r.out.splitlines()[1:]]
    check(any(row[:5] == ["spin", "running", "1", "64", "MiB"] for row in rows), r)
    vms = json.loads(env.vmc("list", "--json").out)
    check([vm["Name"] for vm in vms] == ["spin"] and vms[0]["MemoryBytes"] == 64 << 20, vms)


@test
def info_json_reports_running_and_the_properties(env):
    info = env.info("spin")
    check(info["State"] == "running" and info["Pid"] > 0 and info["Vcpus"] == 1, info)
    check(info["MemoryBytes"] == 64 << 20 and info["LogPath"], info)
    check([0x1b36, 0x0011] in [d[:2] for d in info["Devices"]], info)
    r = env.vmc("info", "spin")
    check(any(l.startswith("PCI devices ") and "1b36:0011 at 00:" in l for l in r.out.splitlines()), r)


@test
def the_same_vm_is_visible_through_gdbus(env):
    out = subprocess.run(["gdbus", "call", "--address", env.bus.address, "--dest",
                          "org.majordome.VmManager1", "--object-path", "/org/majordome/VmManager1",
                          "--method", "org.majordome.VmManager1.ListVms"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and "'spin'" in out.stdout and "/org/majordome/VmManager1/vm/spin" in out.stdout,
          out.stdout + out.stderr)


@test
def pause_and_resume_change_the_state(env):
    r = env.vmc("pause", "spin")
    check(r.rc == 0 and r.out == "paused spin\n", r)
    check(env.info("spin")["State"] == "paused", env.info("spin"))
    r = env.vmc("resume", "spin")
    check(r.rc == 0 and r.out == "resumed spin\n", r)
    check(env.info("spin")["State"] == "running", env.info("spin"))


@test
def logs_show_the_guests_console(env):
    r = wait_for(lambda: (lambda r: r if "spin: tick" in r.out else None)(env.vmc("logs", "spin")), timeout=20)
    check(r and r.rc == 0 and r.out.startswith("spin: ready\n"), r)


@test
def duplicate_name_is_refused_readably(env):
    r = env.vmc("start", "spin", "--kernel", env.spin)
    check(r.rc == 1 and r.err == "vmc: start spin: a VM named 'spin' already exists\n", r)


@test
def missing_kernel_is_usage_or_file_error(env):
    r = env.vmc("start", "nok")
    check(r.rc == 2 and "--kernel" in r.err, r)
    r = env.vmc("start", "nok", "--kernel", "/nonexistent/vmlinux")
    check(r.rc == 1 and "cannot open kernel '/nonexistent/vmlinux'" in r.err, r)
    check(env.vmc("info", "nok").rc == 4, "a VM nok exists")


def image(env, name, size=1 << 20):
    path = os.path.join(env.tmp.name, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@test
def start_with_disks_balloon_and_vsock(env):
    rw, ro = image(env, "rw.img"), image(env, "ro.img")
    r = env.start("dev", "--disk", rw, "--disk", ro + ",ro", "--balloon", "--vsock")
    check(r.out.startswith("started dev (pid "), r)
    info = env.info("dev")
    check(info["State"] == "running" and info["Disks"] == 2 and info["Cid"] >= 3, info)
    check(info["VsockPath"].startswith(env.runtime + "/") and os.path.exists(info["VsockPath"]), info)
    r = env.vmc("info", "dev")
    lines = r.out.splitlines()
    check(r.rc == 0 and "Disks           2" in lines and "vsock socket    " + info["VsockPath"] in lines, r)
    r = env.vmc("info", "spin")
    check(r.rc == 0 and "vsock socket" not in r.out and "Disks           0" in r.out.splitlines(), r)


@test
def list_shows_every_vm_oldest_first_as_the_daemon_has_it(env):
    r = env.vmc("list", "--json")
    check(r.rc == 0, r)
    vms = json.loads(r.out)
    check([vm["Name"] for vm in vms] == ["spin", "dev"], vms)
    for vm in vms:
        path = vm.pop("Path")
        check(path == "/org/majordome/VmManager1/vm/" + vm["Name"], path)
        check(vm == env.info(vm["Name"]), "list %s, info %s" % (vm, env.info(vm["Name"])))
    r = env.vmc("list")
    check([l.split()[:2] for l in r.out.splitlines()[1:]] == [["spin", "running"], ["dev", "running"]], r)


@test
def balloon_sets_the_target(env):
    r = env.vmc("balloon", "dev", "16M")
    check(r.rc == 0 and r.out == "balloon target of dev set to 16 MiB\n", r)
    check(env.info("dev")["BalloonTargetBytes"] == 16 << 20, env.info("dev"))


@test
def balloon_stats_show_the_target_as_json_and_text(env):
    r = env.vmc("balloon-stats", "dev", "--json", timeout=30)
    check(r.rc == 0, r)
    stats = json.loads(r.out)
    check(stats["target_bytes"] == 16 << 20 and stats["actual_bytes"] == 0, stats)
    r = env.vmc("balloon-stats", "dev", timeout=30)
    check(r.rc == 0 and any(l.split()[:3] == ["target_bytes", "16", "MiB"] for l in r.out.splitlines()), r)


@test
def resize_grows_the_image_on_the_host(env):
    r = env.vmc("resize", "dev", "0", "2M")
    check(r.rc == 0 and r.out == "disk 0 of dev resized to 2 MiB\n", r)
    check(os.stat(os.path.join(env.tmp.name, "rw.img")).st_size == 2 << 20, "rw.img not resized")


@test
def balloon_and_resize_refusals_are_one_readable_line(env):
    cases = [
        (["resize", "dev", "1", "2M"], "read-only"),
        (["resize", "dev", "5", "2M"], "no disk 5"),
        (["balloon", "dev", "1G"], "larger than the VM's memory"),
        (["balloon", "spin", "1M"], "no balloon device"),
        (["balloon-stats", "spin"], "no balloon device"),
    ]
    for args, text in cases:
        r = env.vmc(*args)
        check(r.rc == 1 and r.err.startswith("vmc: %s %s: " % (args[0], args[1])) and r.err.count("\n") == 1
              and text in r.err, "%s: %s" % (args, r))
    check(os.stat(os.path.join(env.tmp.name, "ro.img")).st_size == 1 << 20, "ro.img changed")
    r = env.vmc("stop", "dev", timeout=60)
    check(r.rc == 0 and r.out.startswith("stopped dev ("), r)


@test
def bad_disks_are_one_readable_line(env):
    r = env.vmc("start", "bad", "--kernel", env.spin, "--disk", "/dev/null")
    check(r.rc == 1 and "not a regular file or block device" in r.err and r.err.count("\n") == 1, r)
    img = image(env, "many.img")
    r = env.vmc("start", "bad", "--kernel", env.spin, *(["--disk", img + ",ro"] * 9))
    check(r.rc == 1 and r.err.startswith("vmc: start bad: invalid configuration: disks: more than 8")
          and r.err.count("\n") == 1, r)
    check(env.vmc("info", "bad").rc == 4, "a VM bad exists")


@test
def unknown_vm_exits_4(env):
    for args in (["info", "ghost"], ["pause", "ghost"], ["stop", "ghost"], ["logs", "ghost"]):
        r = env.vmc(*args)
        check(r.rc == 4 and r.err == "vmc: %s ghost: no VM named 'ghost'\n" % args[0], "%s: %s" % (args, r))


@test
def logs_follow_ends_when_the_vm_stops(env):
    p = subprocess.Popen([os.environ["VMC"], "--address", env.bus.address, "logs", "spin", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    r = env.vmc("stop", "spin", "--timeout", "5s", timeout=60)
    check(r.rc == 0 and r.out.startswith("stopped spin ("), r)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("vmc logs -f still running after the VM stopped")
    check(p.returncode == 0 and out.startswith("spin: ready\n"), "rc=%s out=%r err=%r" % (p.returncode, out, err))


@test
def stopped_vm_is_gone(env):
    r = env.vmc("info", "spin")
    check(r.rc == 4, r)


@test
def stop_force_kills_with_sigkill(env):
    env.start("forced")
    r = env.vmc("stop", "forced", "--force")
    check(r.rc == 0 and r.out == "stopped forced (SIGKILL)\n", r)


@test
def kill_ends_the_vm(env):
    env.start("killed")
    r = env.vmc("kill", "killed")
    check(r.rc == 0 and r.out == "killed killed\n", r)
    check(wait_for(lambda: env.vmc("info", "killed").rc == 4, timeout=10), "VM still listed after kill")


@test
def list_shows_vms_adopted_after_a_daemon_restart(env):
    env.start("adopted")
    pid = env.info("adopted")["Pid"]
    env.daemon.kill()
    env.daemon.wait()
    env.start_daemon()
    r = env.vmc("list", "--json")
    check(r.rc == 0, r)
    vms = {vm["Name"]: vm for vm in json.loads(r.out)}
    check(list(vms) == ["adopted"] and vms["adopted"]["Pid"] == pid and vms["adopted"]["State"] == "running", vms)
    r = env.vmc("stop", "adopted", "--force")
    check(r.rc == 0, r)
    check(json.loads(env.vmc("list", "--json").out) == [], "still listed")


@test
def daemon_not_running_exits_3(env):
    env.stop_daemon()
    r = env.vmc("list")
    check(r.rc == 3 and r.err == "vmc: list: majordomed is not running on this bus\n", r)


def main():
    tap = Tap()
    names = [fn.__name__ for fn in TESTS]
    reason = None
    if not os.environ.get("VMC"):
        reason = "VMC is not set (run through meson test)"
    elif not os.environ.get("MAJORDOMED") or not os.access(os.environ["MAJORDOMED"], os.X_OK):
        reason = "majordomed is not built"
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        reason = "/dev/kvm cannot be opened read-write"
    elif not shutil.which("dbus-daemon"):
        reason = "dbus-daemon is not installed"
    elif not os.path.exists(os.path.join(os.environ.get("MAJORDOME_GUEST_DIR", ""), "spin.elf")):
        reason = "the spin test guest is not built"
    if reason:
        for n in names:
            tap.skip(n, reason)
        return tap.finish()

    env = Env()
    try:
        for fn in TESTS:
            tap.run(fn.__name__, lambda: fn(env))
    finally:
        env.close()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
