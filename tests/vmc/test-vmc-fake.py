#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vmc's wire behaviour against fake-majordomed.py on a private dbus-daemon.

The fake is a STAND-IN that checks what vmc sends (argument types, fds,
error mapping, signals); it is not the real daemon. test-vmc-daemon.py runs
vmc against the real majordomed.
"""

import json
import os
import pty
import subprocess
import sys
import tempfile
import threading
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmctest import PrivateBus, Tap, check, have_python_dbus, vmc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    def __init__(self):
        self.bus = PrivateBus()
        self.fake = subprocess.Popen([sys.executable, os.path.join(HERE, "fake-majordomed.py")],
                                     env=self.bus.env, stdout=subprocess.PIPE, text=True)
        line = self.fake.stdout.readline().strip()
        if line != "READY":
            raise RuntimeError("fake-majordomed did not start: %r" % line)
        self.tmp = tempfile.TemporaryDirectory(prefix="vmc-fake-")
        self.kernel = os.path.join(self.tmp.name, "vmlinux")
        with open(self.kernel, "wb") as f:
            f.write(b"not really a kernel\n")

    def vmc(self, *args, **kw):
        return vmc(self.bus.address, *args, **kw)

    def test_call(self, method, *args):
        out = subprocess.run(["gdbus", "call", "--address", self.bus.address,
                              "--dest", "org.majordome.VmManager1", "--object-path",
                              "/org/majordome/VmManager1", "--method", "org.majordome.Test1." + method]
                             + list(args), capture_output=True, text=True, timeout=30, check=True).stdout
        return out

    def test_json(self, method):
        # gdbus prints ('...',); the JSON inside has no single quotes.
        out = self.test_call(method).strip()
        return json.loads(out[2:-3])

    def start(self, name, *extra):
        r = self.vmc("start", name, "--kernel", self.kernel, *extra)
        check(r.rc == 0, r)
        return r

    def close(self):
        self.fake.terminate()
        self.fake.wait(timeout=10)
        self.bus.close()
        self.tmp.cleanup()


@test
def start_passes_the_kernel_as_a_read_only_fd_and_prints_the_pid(env):
    r = env.start("demo", "--mem", "512M", "--cpus", "2", "--cmdline", "console=ttyS0")
    check(r.out == "started demo (pid 4242)\n", r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["kernel"]["sig"] == "h" and cfg["kernel"]["access"] == "ro", cfg)
    check(cfg["kernel"]["size"] == len(b"not really a kernel\n"), cfg)
    check(cfg["memory"] == ["t", 512 << 20], cfg)
    check(cfg["cpus"] == ["u", 2], cfg)
    check(cfg["cmdline"] == ["s", "console=ttyS0"], cfg)


@test
def start_sends_disks_with_their_modes_and_serial_log_write_only(env):
    disk = os.path.join(env.tmp.name, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    log = os.path.join(env.tmp.name, "serial.log")
    env.start("disks", "--disk", disk, "--disk", disk + ",ro", "--serial-log", log, "--debug-exit")
    cfg = env.test_json("LastConfig")["config"]
    check([d["fd"]["access"] for d in cfg["disks"]] == ["rw", "ro"], cfg)
    check([d["read_only"] for d in cfg["disks"]] == [["b", 0], ["b", 1]], cfg)
    check(cfg["serial_log"]["access"] == "wo", cfg)
    check(cfg["debug_exit"][0] == "b", cfg)
    with open(log) as f:
        check("fake-majordomed wrote this" in f.read(), "the daemon's write did not reach the file")


@test
def duplicate_name_is_one_readable_line_exit_1(env):
    env.start("dup")
    r = env.vmc("start", "dup", "--kernel", env.kernel)
    check(r.rc == 1, r)
    check(r.err == "vmc: start dup: a VM named 'dup' already exists\n", r)


@test
def invalid_name_shows_the_daemons_rule(env):
    r = env.vmc("start", "bad name", "--kernel", env.kernel)
    check(r.rc == 1, r)
    check(r.err.startswith("vmc: start bad name: 'bad name' is not a valid VM name: names are 1 to 64"), r)


@test
def unsupported_device_key_is_shown_readably(env):
    r = env.vmc("start", "vs", "--kernel", env.kernel, "--vsock")
    check(r.rc == 1, r)
    check(r.err == "vmc: start vs: not supported: config key 'vsock': this VMM has no such device yet\n", r)


@test
def missing_kernel_file_fails_before_the_call(env):
    r = env.vmc("start", "nok", "--kernel", "/nonexistent/vmlinux")
    check(r.rc == 1, r)
    check("cannot open kernel '/nonexistent/vmlinux': No such file or directory" in r.err, r)
    check(env.vmc("info", "nok").rc == 4, "a VM was created anyway")


@test
def missing_kernel_option_is_a_usage_error_exit_2(env):
    r = env.vmc("start", "nok")
    check(r.rc == 2 and "--kernel" in r.err, r)


@test
def list_shows_a_table_and_json(env):
    env.start("listed", "--cpus", "3", "--mem", "1G")
    r = env.vmc("list")
    check(r.rc == 0, r)
    lines = r.out.splitlines()
    check(lines[0].split() == ["NAME", "STATE", "VCPUS", "MEMORY", "PID"], r)
    row = [l.split() for l in lines if l.startswith("listed ")]
    check(row == [["listed", "running", "3", "1", "GiB", "4242"]], r)
    j = env.vmc("list", "--json")
    vms = {vm["Name"]: vm for vm in json.loads(j.out)}
    check(vms["listed"]["Vcpus"] == 3 and vms["listed"]["MemoryBytes"] == 1 << 30, j)
    check(vms["listed"]["Path"] == "/org/majordome/VmManager1/vm/listed", j)


@test
def list_is_one_get_managed_objects_call_oldest_first(env):
    env.start("second")
    env.start("first-by-name")
    r = env.vmc("list", "--json")
    check(r.rc == 0, r)
    names = [vm["Name"] for vm in json.loads(r.out)]
    check(names.index("second") < names.index("first-by-name"), "not oldest first: %s" % names)
    check(env.test_json("LastCall")["method"] == "GetManagedObjects", env.test_json("LastCall"))


@test
def list_survives_a_vm_that_vanished_between_calls(env):
    env.start("ghost", "--cpus", "2")
    env.test_call("Vanish", "ghost")
    check(env.vmc("info", "ghost").rc == 4, "ghost still has info")
    r = env.vmc("list")
    check(r.rc == 0, r)
    row = [l.split() for l in r.out.splitlines() if l.startswith("ghost ")]
    check(row == [["ghost", "running", "2", "256", "MiB", "4242"]], r)


@test
def info_json_has_every_property(env):
    env.start("inf")
    r = env.vmc("info", "inf", "--json")
    check(r.rc == 0, r)
    info = json.loads(r.out)
    for key in ("Name", "State", "Pid", "Cid", "Vcpus", "MemoryBytes", "BalloonTargetBytes",
                "BalloonActualBytes", "StartTimeUsec", "LogPath", "Devices"):
        check(key in info, "%s missing from %s" % (key, r.out))
    check(info["Devices"] == [[0x1b36, 0x0011, 0, 1, 0]], r)
    h = env.vmc("info", "inf")
    check("State           running" in h.out, h)
    check("PCI devices     1b36:0011 at 00:01.0" in h.out.splitlines(), h)


@test
def unknown_vm_exits_4_for_every_command(env):
    for args in (["info", "ghost"], ["stop", "ghost"], ["pause", "ghost"], ["resume", "ghost"],
                 ["kill", "ghost"], ["balloon", "ghost", "1M"], ["balloon-stats", "ghost"],
                 ["resize", "ghost", "0", "1G"], ["logs", "ghost"]):
        r = env.vmc(*args)
        check(r.rc == 4, "%s: %s" % (args, r))
        check(r.err == "vmc: %s ghost: no VM named 'ghost'\n" % args[0], "%s: %s" % (args, r))


@test
def pause_and_resume_call_the_vm_object(env):
    env.start("pr")
    r = env.vmc("pause", "pr")
    check(r.rc == 0 and r.out == "paused pr\n", r)
    call = env.test_json("LastCall")
    check(call["method"] == "Pause" and call["path"] == "/org/majordome/VmManager1/vm/pr", call)
    r = env.vmc("resume", "pr")
    check(r.rc == 0 and r.out == "resumed pr\n", r)


@test
def pause_of_a_stopping_vm_says_not_running(env):
    env.start("stopping")
    env.test_call("MarkStopping", "stopping")
    r = env.vmc("pause", "stopping")
    check(r.rc == 1 and r.err == "vmc: pause stopping: VM 'stopping' is not running\n", r)


@test
def names_with_special_characters_reach_the_escaped_path(env):
    env.start("my-vm.2")
    r = env.vmc("pause", "my-vm.2")
    check(r.rc == 0, r)
    call = env.test_json("LastCall")
    check(call["path"] == "/org/majordome/VmManager1/vm/my_2dvm_2e2", call)


@test
def balloon_sends_bytes_as_uint64(env):
    env.start("bal")
    r = env.vmc("balloon", "bal", "128M")
    check(r.rc == 0 and r.out == "balloon target of bal set to 128 MiB\n", r)
    check(env.test_json("LastCall")["args"] == [["t", 128 << 20]], env.test_json("LastCall"))
    r = env.vmc("balloon", "bal", "64G")
    check(r.rc == 1 and "invalid configuration: balloon size" in r.err, r)


@test
def balloon_stats_human_and_json(env):
    env.start("bs")
    r = env.vmc("balloon-stats", "bs")
    check(r.out == "free_memory   200 MiB\nswap_in       7\ntotal_memory  256 MiB\n", r)
    j = json.loads(env.vmc("balloon-stats", "bs", "--json").out)
    check(j == {"free_memory": 200 << 20, "total_memory": 256 << 20, "swap_in": 7}, j)


@test
def resize_sends_index_and_bytes(env):
    disk = os.path.join(env.tmp.name, "r.img")
    open(disk, "wb").close()
    env.start("rs", "--disk", disk)
    r = env.vmc("resize", "rs", "0", "2G")
    check(r.rc == 0 and r.out == "disk 0 of rs resized to 2 GiB\n", r)
    check(env.test_json("LastCall")["args"] == [["u", 0], ["t", 2 << 30]], env.test_json("LastCall"))
    r = env.vmc("resize", "rs", "5", "2G")
    check(r.rc == 1 and r.err == "vmc: resize rs: invalid configuration: the VM has no disk 5\n", r)


@test
def stop_reports_the_step_and_force_means_kill(env):
    env.start("st1")
    env.start("st2")
    r = env.vmc("stop", "st1", "--timeout", "2s")
    check(r.rc == 0 and r.out == "stopped st1 (graceful shutdown)\n", r)
    check(env.test_json("LastCall")["args"] == [["s", "st1"], ["s", "graceful"], ["u", 2000]],
          env.test_json("LastCall"))
    r = env.vmc("stop", "st2", "--force")
    check(r.rc == 0 and r.out == "stopped st2 (SIGKILL)\n", r)
    check(env.test_json("LastCall")["args"][1] == ["s", "kill"], env.test_json("LastCall"))
    check(env.vmc("info", "st1").rc == 4, "st1 still there")


@test
def kill_calls_vm_kill(env):
    env.start("k")
    r = env.vmc("kill", "k")
    check(r.rc == 0 and r.out == "killed k\n", r)
    check(env.vmc("info", "k").rc == 4, "k still there")


@test
def logs_prints_the_log_file(env):
    env.start("lg")
    env.test_call("AppendLog", "lg", "second line\n")
    r = env.vmc("logs", "lg")
    check(r.rc == 0 and r.out == "fake console of lg\nsecond line\n", r)


@test
def logs_follow_streams_until_the_vm_stops(env):
    env.start("fl")
    p = subprocess.Popen([os.environ["VMC"], "--address", env.bus.address, "logs", "fl", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.test_call("AppendLog", "fl", "tick 1\n")
    time.sleep(0.3)
    env.test_call("AppendLog", "fl", "tick 2\n")
    env.test_call("PowerOff", "fl")
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("vmc logs -f did not end when the VM stopped")
    check(p.returncode == 0, "rc=%s err=%r" % (p.returncode, err))
    check(out == "fake console of fl\ntick 1\ntick 2\n", repr(out))


@test
def start_passes_on_panic_and_refuses_a_typo(env):
    env.start("pp", "--on-panic", "pause")
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["on_panic"] == ["s", "pause"], cfg)
    r = env.vmc("start", "pq", "--kernel", "/nonexistent", "--on-panic", "reboot")
    check(r.rc == 2 and "--on-panic 'reboot'" in r.err, r)


def follow_until_panic(env, name, action):
    env.start(name)
    p = subprocess.Popen([os.environ["VMC"], "--address", env.bus.address, "logs", name, "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.test_call("Panic", name, action)
    if action != "stop":
        time.sleep(0.5)
        env.test_call("PowerOff", name)
    try:
        return p.communicate(timeout=10) + (p.returncode,)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("vmc logs -f did not end")


@test
def logs_follow_says_the_guest_panicked_and_the_vm_stopped(env):
    out, err, rc = follow_until_panic(env, "panicky", "stop")
    check(rc == 0, "rc=%s err=%r" % (rc, err))
    check(err == "vmc: panicky: the guest kernel panicked; the VM stopped\n", repr(err))


@test
def logs_follow_says_the_guest_panicked_and_the_vm_is_kept_paused(env):
    out, err, rc = follow_until_panic(env, "kept", "pause")
    check(rc == 0, "rc=%s err=%r" % (rc, err))
    check(err == "vmc: kept: the guest kernel panicked; the VM is paused for inspection\n", repr(err))


def run_on_pty(args):
    """Runs vmc with stdout on a raw pseudo-terminal; returns (rc, stdout bytes)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    p = subprocess.Popen([os.environ["VMC"]] + args, stdout=slave, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    p.wait(timeout=30)
    return p.returncode, out


@test
def daemon_error_text_is_printed_with_escapes_shown(env):
    env.test_call("FailNextStart")
    r = env.vmc("start", "esc", "--kernel", env.kernel)
    check(r.rc == 1, r)
    check("\x1b" not in r.err and "\u009b" not in r.err and "\x07" not in r.err, r)
    check("\\x1b]0;owned\\x07\\x1b[2Jgone \\xc2\\x9b31m" in r.err, r)


@test
def logs_on_a_terminal_escape_control_characters(env):
    env.start("tt")
    env.test_call("AppendLogEscapes", "tt")
    rc, out = run_on_pty(["--address", env.bus.address, "logs", "tt"])
    check(rc == 0, "rc=%s out=%r" % (rc, out))
    check(out == b"fake console of tt\nred \\x1b[31mX\\x1b[0m\ttab\r\nbad \\xff\xc3\xa9\\x0d lone\\x9b\n",
          repr(out))
    rc, out = run_on_pty(["--address", env.bus.address, "logs", "tt", "--raw"])
    check(rc == 0 and b"red \x1b[31mX" in out, "--raw: rc=%s out=%r" % (rc, out))
    r = subprocess.run([os.environ["VMC"], "--address", env.bus.address, "logs", "tt"], capture_output=True)
    check(r.returncode == 0 and b"red \x1b[31mX" in r.stdout, "to a pipe: %r" % r.stdout)


@test
def logs_follow_goes_on_after_the_log_is_cut(env):
    env.start("cut")
    p = subprocess.Popen([os.environ["VMC"], "--address", env.bus.address, "logs", "cut", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = "".join("line %04d\n" % i for i in range(200))
    time.sleep(0.5)
    env.test_call("AppendLog", "cut", lines)
    time.sleep(0.5)
    env.test_call("CutLog", "cut", "500")
    env.test_call("AppendLog", "cut", "after the cut\n")
    time.sleep(0.5)
    env.test_call("PowerOff", "cut")
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("vmc logs -f did not end when the VM stopped")
    check(p.returncode == 0, "rc=%s err=%r" % (p.returncode, err))
    check(out == "fake console of cut\n" + lines + "after the cut\n", repr(out[-300:]))


def gpu_env(**values):
    """Our environment without the Wayland variables, then values."""
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
    env.update(values)
    return env


@test
def start_gpu_display_sends_gpu_and_the_environments_wayland_socket(env):
    r = env.vmc("start", "gpu1", "--kernel", env.kernel, "--gpu", "--display", "800x600",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="wayland-1"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {"width": ["u", 800], "height": ["u", 600]}, cfg)
    check(cfg["wayland_socket"] == ["s", "/run/user/4242/wayland-1"], cfg)


@test
def start_gpu_takes_an_absolute_wayland_display_as_is_and_displays(env):
    r = env.vmc("start", "gpu2", "--kernel", env.kernel, "--gpu", "--displays", "2",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="/tmp/compositor-0"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {"displays": ["u", 2]}, cfg)
    check(cfg["wayland_socket"] == ["s", "/tmp/compositor-0"], cfg)


@test
def start_gpu_without_wayland_variables_or_with_headless_sends_no_socket(env):
    r = env.vmc("start", "gpu3", "--kernel", env.kernel, "--gpu", env=gpu_env(WAYLAND_DISPLAY="wayland-0"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {} and "wayland_socket" not in cfg, cfg)
    r = env.vmc("start", "gpu4", "--kernel", env.kernel, "--gpu", "--headless",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="wayland-0"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {} and "wayland_socket" not in cfg, cfg)


@test
def start_wayland_socket_option_overrides_the_environment(env):
    r = env.vmc("start", "gpu5", "--kernel", env.kernel, "--gpu", "--wayland-socket", "/srv/other-wayland",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="wayland-0"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["wayland_socket"] == ["s", "/srv/other-wayland"], cfg)


@test
def start_wayland_sends_cross_domain_and_the_environments_socket(env):
    r = env.vmc("start", "wl1", "--kernel", env.kernel, "--wayland",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="wayland-3"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {"context_types": ["s", "cross-domain"]}, cfg)
    check(cfg["wayland_socket"] == ["s", "/run/user/4242/wayland-3"], cfg)


@test
def start_wayland_takes_wayland_0_without_wayland_display_and_an_absolute_one_as_is(env):
    r = env.vmc("start", "wl2", "--kernel", env.kernel, "--wayland", env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242"))
    check(r.rc == 0, r)
    check(env.test_json("LastConfig")["config"]["wayland_socket"] == ["s", "/run/user/4242/wayland-0"], r)
    r = env.vmc("start", "wl3", "--kernel", env.kernel, "--wayland",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY=""))
    check(r.rc == 0, r)
    check(env.test_json("LastConfig")["config"]["wayland_socket"] == ["s", "/run/user/4242/wayland-0"], r)
    r = env.vmc("start", "wl4", "--kernel", env.kernel, "--wayland", env=gpu_env(WAYLAND_DISPLAY="/tmp/comp-1"))
    check(r.rc == 0, r)
    check(env.test_json("LastConfig")["config"]["wayland_socket"] == ["s", "/tmp/comp-1"], r)


@test
def start_wayland_with_gpu_3d_keeps_virgl_and_with_gpu_takes_its_display(env):
    r = env.vmc("start", "wl5", "--kernel", env.kernel, "--gpu-3d", "--wayland",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="wayland-0"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {"backend": ["s", "virglrenderer"], "context_types": ["s", "virgl:cross-domain"]}, cfg)
    r = env.vmc("start", "wl6", "--kernel", env.kernel, "--gpu", "--display", "640x480", "--wayland",
                "--wayland-socket", "/srv/wl", env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check(cfg["gpu"] == {"width": ["u", 640], "height": ["u", 480], "context_types": ["s", "cross-domain"]}, cfg)
    check(cfg["wayland_socket"] == ["s", "/srv/wl"], cfg)


@test
def start_wayland_without_a_compositor_or_with_headless_is_refused(env):
    r = env.vmc("start", "wl7", "--kernel", env.kernel, "--wayland", env=gpu_env(WAYLAND_DISPLAY="wayland-0"))
    check(r.rc != 0 and "--wayland: no compositor socket: XDG_RUNTIME_DIR is not set" in r.err, r)
    r = env.vmc("start", "wl8", "--kernel", env.kernel, "--wayland", "--headless",
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242"))
    check(r.rc == 2 and "give --headless or --wayland, not both" in r.err, r)
    check(env.vmc("info", "wl7").rc != 0 and env.vmc("info", "wl8").rc != 0, "a VM was started")


@test
def start_without_gpu_sends_neither_gpu_nor_socket_and_gpu_options_need_it(env):
    r = env.vmc("start", "nogpu", "--kernel", env.kernel,
                env=gpu_env(XDG_RUNTIME_DIR="/run/user/4242", WAYLAND_DISPLAY="wayland-0"))
    check(r.rc == 0, r)
    cfg = env.test_json("LastConfig")["config"]
    check("gpu" not in cfg and "wayland_socket" not in cfg, cfg)
    r = env.vmc("start", "bad", "--kernel", env.kernel, "--display", "800x600")
    check(r.rc == 2 and "--display needs --gpu" in r.err, r)


@test
def logs_follow_exits_3_when_the_daemon_goes_away(env):
    # Runs last among the fake tests: it ends the fake.
    env.start("gone")
    p = subprocess.Popen([os.environ["VMC"], "--address", env.bus.address, "logs", "gone", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.test_call("Quit")
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("vmc logs -f did not end when the daemon left")
    check(p.returncode == 3 and err == "vmc: logs gone: majordomed went away\n", "rc=%s err=%r" % (p.returncode, err))


@test
def no_daemon_on_the_bus_exits_3(env):
    r = env.vmc("list")
    check(r.rc == 3 and r.err == "vmc: list: majordomed is not running on this bus\n", r)


def main():
    tap = Tap()
    if not os.environ.get("VMC"):
        tap.skip("vmc fake-bus tests", "VMC is not set (run through meson test)")
        return tap.finish()
    if not have_python_dbus():
        tap.skip("vmc fake-bus tests", "python3-dbus and python3-gi are not installed for %s" % sys.executable)
        return tap.finish()

    # Without any bus: a bad address is "cannot reach", exit 3.
    def unreachable():
        r = vmc("unix:path=/nonexistent/bus", "list")
        check(r.rc == 3 and r.err.startswith("vmc: cannot connect to unix:path=/nonexistent/bus: "), r)
    tap.run("unreachable_bus_exits_3", unreachable)

    env = Env()
    try:
        for fn in TESTS:
            tap.run(fn.__name__, lambda: fn(env))
    finally:
        env.close()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
