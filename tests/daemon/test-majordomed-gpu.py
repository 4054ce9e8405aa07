#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""The GPU: StartVm's "gpu" and "wayland_socket", what the daemon puts in
the VMM's configure message for them (the kind 8 record, read back by
tests/daemon/fake-vmm.py, which stands in for majordome-vmm: no KVM, no
majordome-gpu needed), the Vm1 Gpu property, kept across a daemon restart,
and the compositor socket connected with the caller's rights (as nobody,
with the fake polkit of test-majordomed-security.py); and one VM through
the real majordome-vmm and majordome-gpu on a real weston. Uses
test-majordomed.py's helpers; prints TAP."""

import functools
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T = _load("majordomed_tests", "test-majordomed.py")
S = _load("majordomed_security_tests", "test-majordomed-security.py")

FAKE_VMM = os.path.join(HERE, "fake-vmm.py")
VMC = os.environ.get("VMC")
INVALID = "org.majordome.Error.InvalidConfig"
KIND_GPU = 8
MiB = 1 << 20

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# A build without the wayland (video) feature refuses wayland_socket and
# the cross-domain context (video_decoder/encoder); test-majordomed checks
# the refusal, these skip.
FEATURES = os.environ.get("MAJORDOME_FEATURES", "").split(",")


def needs(feature):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kw):
            if feature not in FEATURES:
                raise T.Skip("built without %s support" % feature)
            return fn(*args, **kw)
        return wrapper
    return decorate


needs_wayland = needs("wayland")


def vmm_config_constants():
    """VMM_CONFIG_GPU_* from common/vmm-config.h: the defaults and ranges
    are the VMM's, read where they are defined rather than copied."""
    with open(os.path.join(T.SOURCE_DIR, "common", "vmm-config.h")) as f:
        text = f.read()
    found = {}
    for name, value in re.findall(r"^#define (VMM_CONFIG_GPU_\w+) ([^/\n]+)", text, re.M):
        found[name] = int(eval(re.sub(r"UINT64_C\((\w+)\)", r"\1", value.strip()), {}))
    return found


C = vmm_config_constants()


class FakeVmm:
    """While alive, daemons started get fake-vmm.py as their VMM, which
    records each configuration it gets in record."""

    def __init__(self, *modules):
        self.tmp = tempfile.mkdtemp(prefix="majordome-gpu-rec-")
        os.chmod(self.tmp, 0o755)
        self.record = os.path.join(self.tmp, "config.json")
        self.modules = modules
        self.saved = [m.VMM for m in modules], os.environ.get("FAKE_VMM_CONFIG_RECORD")
        for m in modules:
            m.VMM = FAKE_VMM
        os.environ["FAKE_VMM_CONFIG_RECORD"] = self.record

    def last(self):
        """The configuration the last VMM got (waits for it)."""
        T.check(T.wait_until(lambda: os.path.exists(self.record), 10), "fake-vmm recorded no configuration")
        with open(self.record) as f:
            rec = json.load(f)
        os.unlink(self.record)
        T.check("error" not in rec and rec["trailing"] == 0, "the configure blob did not decode: %s" % rec)
        return rec

    def close(self):
        for m, v in zip(self.modules, self.saved[0]):
            m.VMM = v
        if self.saved[1] is None:
            os.environ.pop("FAKE_VMM_CONFIG_RECORD", None)
        else:
            os.environ["FAKE_VMM_CONFIG_RECORD"] = self.saved[1]
        shutil.rmtree(self.tmp, ignore_errors=True)


class Env:
    """majordomed --user on a private bus with fake-vmm.py as its VMM, a
    client and a scratch directory; closed whatever happens."""

    def __init__(self):
        self.fake = FakeVmm(T)
        self.bus = T.Bus()
        self.daemon = T.Daemon(self.bus)
        self.c = T.Client(self.bus)
        self.tmp = tempfile.mkdtemp(prefix="majordome-gpu-")

    def start(self, name, gpu=None, **config):
        """gpu: a dict sent as a{sv}, or any other D-Bus value as it is."""
        if isinstance(gpu, dict) and not isinstance(gpu, dbus.Dictionary):
            config["gpu"] = dbus.Dictionary(gpu, signature="sv")
        elif gpu is not None:
            config["gpu"] = gpu
        return self.c.start(name, kernel=dbus.String(FAKE_VMM), **config)

    def refused(self, words, gpu=None, **config):
        try:
            self.start("bad", gpu, **config)
        except dbus.DBusException as e:
            T.check(e.get_dbus_name() == INVALID, "want %s, got %s: %s" % (INVALID, e.get_dbus_name(), e))
            T.check(words in e.get_dbus_message(), "%r not in %r" % (words, e.get_dbus_message()))
            T.check(len(self.c.mgr.ListVms()) == 0, "a VM was created")
            return
        raise AssertionError("StartVm with gpu %s, %s was not refused" % (gpu, config))

    def listener(self, name="wayland-0", backlog=4):
        path = os.path.join(self.tmp, name)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(backlog)
        return s, path

    def close(self):
        if sys.exc_info()[0] is not None:
            for line in self.daemon.log_tail(20):
                print("# majordomed: " + line)
        self.c.close()
        self.daemon.close()
        self.bus.close()
        self.fake.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def gpu_devices(rec):
    return [d for d in rec["devices"] if d["kind"] == KIND_GPU]


def make_disk(d, name):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    return path


def gpu_prop(c, path):
    return {str(k): (bool(v) if isinstance(v, dbus.Boolean) else str(v) if isinstance(v, dbus.String) else int(v))
            for k, v in c.prop(path, "Gpu").items()}


def accept_and_read(listener):
    """The connection the VMM holds, as the listener sees it, and what the
    fake VMM wrote on it."""
    listener.settimeout(10)
    conn, _ = listener.accept()
    conn.settimeout(10)
    try:
        return conn.recv(64)
    finally:
        conn.close()


# ---- the configure record ----

@test
def gpu_dict_reaches_the_vmm_as_its_kind_8_record_headless():
    e = Env()
    try:
        path = e.start("g", {"backend": dbus.String("2d"), "width": dbus.UInt32(800), "height": dbus.UInt32(600),
                             "displays": dbus.UInt32(2), "max_memory": dbus.UInt64(64 * MiB)})
        gpus = gpu_devices(e.fake.last())
        T.check(len(gpus) == 1, "want one gpu record: %s" % gpus)
        g = gpus[0]
        T.check((g["length"], g["backend"], g["width"], g["height"], g["displays"], g["max_memory"],
                 g["context_types"]) == (32, 0, 800, 600, 2, 64 * MiB, 0), str(g))
        T.check(g["wayland_fd"] is None, "headless, yet a compositor descriptor: %s" % g)
        want = {"backend": "2d", "width": 800, "height": 600, "displays": 2, "max_memory": 64 * MiB,
                "context_types": "", "headless": True}
        T.check(gpu_prop(e.c, path) == want, "Gpu %s != %s" % (gpu_prop(e.c, path), want))
        info = e.c.mgr.GetVmInfo("g")
        T.check({str(k): v for k, v in info["Gpu"].items()} == want, "GetVmInfo's Gpu: %s" % info["Gpu"])
    finally:
        e.close()


@test
def virglrenderer_backend_is_kind_8_backend_1():
    e = Env()
    try:
        path = e.start("v", {"backend": dbus.String("virglrenderer")})
        g = gpu_devices(e.fake.last())[0]
        T.check(g["backend"] == 1, "backend %s, want 1 (virglrenderer)" % g["backend"])
        T.check(gpu_prop(e.c, path)["backend"] == "virglrenderer", str(gpu_prop(e.c, path)))
    finally:
        e.close()


@test
@needs_wayland
def context_types_reach_the_vmm_as_capset_bits_and_are_listed_and_kept():
    e = Env()
    try:
        path = e.start("ct", {"backend": dbus.String("virglrenderer"),
                              "context_types": dbus.String("cross-domain:virgl")})
        g = gpu_devices(e.fake.last())[0]
        T.check(g["context_types"] == (1 << 1) | (1 << 5), "context_types 0x%x, want 0x22" % g["context_types"])
        T.check(gpu_prop(e.c, path)["context_types"] == "virgl:cross-domain", str(gpu_prop(e.c, path)))
        e.daemon.kill()
        e.daemon.start()
        T.check(gpu_prop(e.c, path)["context_types"] == "virgl:cross-domain",
                "after a restart: %s" % gpu_prop(e.c, path))
        e.start("cd", {"context_types": dbus.String("cross-domain")})
        T.check(gpu_devices(e.fake.last())[0]["context_types"] == 1 << 5, "cross-domain on the 2d backend")
    finally:
        e.close()


@test
def bad_context_types_are_refused_naming_the_key():
    e = Env()
    try:
        for gpu, words in [
            ({"context_types": dbus.String("wayland")}, "gpu.context_types: 'wayland' is not a context type"),
            ({"context_types": dbus.String("cross-domain:cross-domain")},
             "gpu.context_types: 'cross-domain' given twice"),
            ({"context_types": dbus.String("")}, "gpu.context_types: an empty list"),
            ({"context_types": dbus.String("virgl")}, "gpu.context_types: virgl and virgl2 need backend "
             "'virglrenderer'"),
            ({"context_types": dbus.String("virgl2"), "backend": dbus.String("2d")}, "need backend"),
            ({"context_types": dbus.UInt32(32)}, "gpu.context_types: wrong type 'u', want 's'"),
        ]:
            e.refused(words, gpu)
    finally:
        e.close()


@test
@needs("video")
def video_decoder_and_encoder_become_kinds_9_and_10():
    e = Env()
    try:
        e.c.start("vid", kernel=dbus.String(FAKE_VMM), video_decoder=dbus.Boolean(True),
                  video_encoder=dbus.Boolean(True))
        devs = [(d["kind"], d.get("backend")) for d in e.fake.last()["devices"] if d["kind"] in (9, 10)]
        T.check(devs == [(9, 0), (10, 0)], "video records: %s" % devs)
        try:
            e.c.start("vbad", kernel=dbus.String(FAKE_VMM), video_decoder=dbus.String("yes"))
            T.check(False, "video_decoder as a string was taken")
        except dbus.DBusException as ex:
            T.check("video_decoder" in ex.get_dbus_message(), ex.get_dbus_message())
    finally:
        e.close()


@test
def more_devices_than_pci_slots_are_refused_before_anything_starts():
    e = Env()
    try:
        d = tempfile.mkdtemp()
        disks = dbus.Array([dbus.Dictionary({"path": dbus.String(make_disk(d, "d%d.img" % i))}, signature="sv")
                            for i in range(8)], signature="a{sv}")
        e.refused("at most 16", {}, disks=disks, balloon=dbus.Boolean(True), rng=dbus.Boolean(True),
                  vsock=dbus.Boolean(True), video_decoder=dbus.Boolean(True), video_encoder=dbus.Boolean(True),
                  shares=dbus.Array([dbus.Dictionary({"path": dbus.String(d), "tag": dbus.String("t%d" % i)},
                                                     signature="sv") for i in range(4)], signature="a{sv}"))
    finally:
        e.close()


@test
def absent_gpu_keys_take_the_vmm_defaults():
    e = Env()
    try:
        path = e.start("d", {})
        g = gpu_devices(e.fake.last())[0]
        T.check((g["backend"], g["width"], g["height"], g["displays"], g["max_memory"]) ==
                (0, C["VMM_CONFIG_GPU_WIDTH_DEFAULT"], C["VMM_CONFIG_GPU_HEIGHT_DEFAULT"],
                 C["VMM_CONFIG_GPU_DISPLAYS_DEFAULT"], C["VMM_CONFIG_GPU_MEMORY_DEFAULT"]), str(g))
        T.check(gpu_prop(e.c, path)["width"] == C["VMM_CONFIG_GPU_WIDTH_DEFAULT"], str(gpu_prop(e.c, path)))
        e.start("h", {"height": dbus.UInt32(C["VMM_CONFIG_GPU_SIZE_MAX"]), "displays": dbus.UInt32(0)})
        g = gpu_devices(e.fake.last())[0]
        T.check((g["width"], g["height"], g["displays"]) ==
                (C["VMM_CONFIG_GPU_WIDTH_DEFAULT"], C["VMM_CONFIG_GPU_SIZE_MAX"], 0), str(g))
    finally:
        e.close()


@test
def without_gpu_there_is_no_gpu_record_and_gpu_is_empty():
    e = Env()
    try:
        path = e.start("plain")
        T.check(gpu_devices(e.fake.last()) == [], "a gpu record without gpu")
        T.check(gpu_prop(e.c, path) == {}, "Gpu of a VM without one: %s" % gpu_prop(e.c, path))
        T.check(len(e.c.mgr.GetVmInfo("plain")["Gpu"]) == 0, "GetVmInfo's Gpu is not empty")
    finally:
        e.close()


@test
def gpu_is_listed_again_after_a_daemon_restart():
    e = Env()
    try:
        path = e.start("adopt", {"width": dbus.UInt32(640), "height": dbus.UInt32(480),
                                 "max_memory": dbus.UInt64(32 * MiB)})
        before = gpu_prop(e.c, path)
        e.daemon.kill()
        e.daemon.start()
        T.check(gpu_prop(e.c, path) == before, "%s != %s" % (gpu_prop(e.c, path), before))
        T.check(before["headless"] and before["width"] == 640, str(before))
    finally:
        e.close()


# ---- bad input: InvalidConfig naming the key, and no VM ----

@test
def bad_gpu_keys_types_and_ranges_are_refused():
    e = Env()
    try:
        size_max, displays_max = C["VMM_CONFIG_GPU_SIZE_MAX"], C["VMM_CONFIG_GPU_DISPLAYS_MAX"]
        mem_min, mem_max = C["VMM_CONFIG_GPU_MEMORY_MIN"], C["VMM_CONFIG_GPU_MEMORY_MAX"]
        for gpu, words in [
            ({"backend": dbus.String("3d")}, "gpu.backend: '3d' is not a backend"),
            ({"backend": dbus.String("virgl")}, "gpu.backend: 'virgl'"),
            ({"backend": dbus.UInt32(0)}, "gpu.backend: wrong type 'u', want 's'"),
            ({"width": dbus.UInt32(0)}, "gpu.width: 0 is not between 1 and %d" % size_max),
            ({"width": dbus.UInt32(size_max + 1)}, "gpu.width: %d is not between" % (size_max + 1)),
            ({"height": dbus.UInt32(0)}, "gpu.height: 0 is not between"),
            ({"height": dbus.UInt32(size_max + 1)}, "gpu.height: "),
            ({"width": dbus.Int32(800)}, "gpu.width: wrong type 'i', want 'u'"),
            ({"width": dbus.UInt64(800)}, "gpu.width: wrong type 't', want 'u'"),
            ({"displays": dbus.UInt32(displays_max + 1)}, "gpu.displays: %d is not between 0 and %d"
             % (displays_max + 1, displays_max)),
            ({"displays": dbus.String("2")}, "gpu.displays: wrong type 's', want 'u'"),
            ({"max_memory": dbus.UInt64(mem_min - 1)}, "gpu.max_memory: %d bytes is not between" % (mem_min - 1)),
            ({"max_memory": dbus.UInt64(mem_max + 1)}, "gpu.max_memory: "),
            ({"max_memory": dbus.UInt32(64)}, "gpu.max_memory: wrong type 'u', want 't'"),
            ({"depth": dbus.UInt32(32)}, "gpu.depth: unknown gpu key"),
            ({"3d": dbus.Boolean(True)}, "gpu.3d: unknown gpu key"),
        ]:
            e.refused(words, gpu)
        e.refused("gpu: wrong type 'b', want 'a{sv}'", dbus.Boolean(True))
        e.refused("gpu: wrong type 'a{su}', want 'a{sv}'", dbus.Dictionary({"width": dbus.UInt32(1)}, signature="su"))
    finally:
        e.close()


@test
def wayland_socket_without_gpu_is_refused():
    e = Env()
    try:
        lst, path = e.listener()
        e.refused("wayland_socket: given without gpu", None, wayland_socket=dbus.String(path))
        lst.setblocking(False)
        try:
            lst.accept()
            raise AssertionError("the daemon connected to the compositor for a refused config")
        except BlockingIOError:
            pass
        lst.close()
    finally:
        e.close()


@test
@needs_wayland
def wayland_sockets_that_cannot_be_connected_are_refused_with_the_reason():
    e = Env()
    try:
        gpu = {}
        e.refused("wayland_socket: path 'wayland-0' is not absolute", gpu, wayland_socket=dbus.String("wayland-0"))
        missing = os.path.join(e.tmp, "wayland-9")
        e.refused("wayland_socket: cannot open '%s': No such file or directory" % missing, gpu,
                  wayland_socket=dbus.String(missing))
        plain = os.path.join(e.tmp, "file")
        open(plain, "w").close()
        e.refused("wayland_socket: '%s' is not a socket" % plain, gpu, wayland_socket=dbus.String(plain))
        e.refused("wayland_socket: '%s' is not a socket" % e.tmp, gpu, wayland_socket=dbus.String(e.tmp))
        # A socket nobody listens on any more: the test connection says so.
        lst, dead = e.listener("wayland-dead")
        lst.close()
        e.refused("wayland_socket: cannot connect to '%s': Connection refused" % dead, gpu,
                  wayland_socket=dbus.String(dead))
        e.refused("wayland_socket: wrong type 'b', want 's'", gpu, wayland_socket=dbus.Boolean(True))
    finally:
        e.close()


@test
@needs_wayland
def compositor_that_does_not_accept_is_refused_at_once_not_waited_for():
    e = Env()
    try:
        lst, path = e.listener("busy", backlog=0)
        fillers = []
        # Fill the backlog: a blocking connect would now hang the daemon.
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:
                s.close()
                break
            fillers.append(s)
            T.check(len(fillers) < 64, "the backlog never filled")
        e.refused("the compositor is not accepting connections", {}, wayland_socket=dbus.String(path))
        for s in fillers:
            s.close()
        lst.close()
    finally:
        e.close()


# ---- a good socket: the VMM holds a connection to the test's listener ----

@test
@needs_wayland
def good_wayland_socket_gives_the_vmm_a_connection_to_that_listener():
    e = Env()
    try:
        lst, sock_path = e.listener()
        path = e.start("w", {"width": dbus.UInt32(1280), "height": dbus.UInt32(720)},
                       wayland_socket=dbus.String(sock_path))
        # The daemon's own test connection, already closed.
        T.check(accept_and_read(lst) == b"", "the daemon's test connection carried data")
        g = gpu_devices(e.fake.last())[0]
        fd = g["wayland_fd"]
        st = os.stat(sock_path)
        T.check(fd is not None and fd["socket"] and fd["o_path"], "not an O_PATH handle to a socket: %s" % fd)
        T.check((fd["dev"], fd["ino"]) == (st.st_dev, st.st_ino), "a handle to another inode: %s" % fd)
        T.check(fd["connected"] and fd["type"] == "stream" and fd["family"] == "unix",
                "the VMM could not connect through the handle: %s" % fd)
        T.check(fd["peer"] == sock_path, "connected to %r, not the listener %r" % (fd["peer"], sock_path))
        T.check(fd["wrote"], "the VMM could not write on it: %s" % fd)
        T.check(accept_and_read(lst) == b"fake-vmm\n", "the listener did not see the VMM's connection")
        T.check(gpu_prop(e.c, path)["headless"] is False, str(gpu_prop(e.c, path)))
        lst.close()
    finally:
        e.close()


@test
@needs_wayland
def wayland_socket_past_a_socket_address_length_is_taken():
    # The handle is opened by path and connected to through /proc: no
    # sun_path limit on where the compositor's socket lies.
    e = Env()
    cwd = os.getcwd()
    try:
        deep = os.path.join(e.tmp, "d" * 60, "e" * 60)
        os.makedirs(deep)
        os.chdir(deep)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind("wayland-0")
        lst.listen(4)
        os.chdir(cwd)
        sock_path = os.path.join(deep, "wayland-0")
        T.check(len(sock_path) > 107, "the path is short: %d bytes" % len(sock_path))
        e.start("long", {}, wayland_socket=dbus.String(sock_path))
        fd = gpu_devices(e.fake.last())[0]["wayland_fd"]
        T.check(fd is not None and fd["o_path"] and fd["connected"], str(fd))
        lst.close()
    finally:
        os.chdir(cwd)
        e.close()


# ---- vmc, end to end ----

@test
@needs_wayland
def vmc_start_gpu_connects_the_daemon_to_the_compositor_of_vmcs_environment():
    if not VMC:
        raise T.Skip("VMC (the vmc binary) is not set")
    e = Env()
    try:
        lst, sock_path = e.listener("wayland-7")
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
        env.update(DBUS_SESSION_BUS_ADDRESS=e.bus.address, XDG_RUNTIME_DIR=e.tmp, WAYLAND_DISPLAY="wayland-7")
        r = subprocess.run([VMC, "--user", "start", "v", "--kernel", FAKE_VMM, "--mem", "64M", "--gpu",
                            "--display", "800x600"], env=env, capture_output=True, text=True, timeout=60)
        T.check(r.returncode == 0, "vmc start: %s %s" % (r.stdout, r.stderr))
        g = gpu_devices(e.fake.last())[0]
        T.check((g["width"], g["height"], g["displays"]) == (800, 600, C["VMM_CONFIG_GPU_DISPLAYS_DEFAULT"]), str(g))
        T.check(g["wayland_fd"] is not None and g["wayland_fd"]["peer"] == sock_path, str(g))
        T.check(accept_and_read(lst) == b"", "the daemon's test connection carried data")
        T.check(accept_and_read(lst) == b"fake-vmm\n", "the listener did not see the VMM's connection")
        r = subprocess.run([VMC, "--user", "info", "v"], env=env, capture_output=True, text=True, timeout=60)
        T.check(r.returncode == 0 and "GPU             2d, 1 display of 800x600, 256 MiB, on the host's compositor"
                in r.stdout, "vmc info: %s %s" % (r.stdout, r.stderr))
        r = subprocess.run([VMC, "--user", "start", "h", "--kernel", FAKE_VMM, "--gpu", "--headless"], env=env,
                           capture_output=True, text=True, timeout=60)
        T.check(r.returncode == 0 and gpu_devices(e.fake.last())[0]["wayland_fd"] is None,
                "vmc start --headless: %s %s" % (r.stdout, r.stderr))
        lst.close()
    finally:
        e.close()


@test
@needs_wayland
def vmc_start_wayland_gives_the_vmm_cross_domain_and_a_handle_to_the_compositor():
    if not VMC:
        raise T.Skip("VMC (the vmc binary) is not set")
    e = Env()
    try:
        lst, sock_path = e.listener("wayland-0")
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
        env.update(DBUS_SESSION_BUS_ADDRESS=e.bus.address, XDG_RUNTIME_DIR=e.tmp)
        r = subprocess.run([VMC, "--user", "start", "wl", "--kernel", FAKE_VMM, "--mem", "64M", "--gpu-3d",
                            "--wayland"], env=env, capture_output=True, text=True, timeout=60)
        T.check(r.returncode == 0, "vmc start --wayland: %s %s" % (r.stdout, r.stderr))
        g = gpu_devices(e.fake.last())[0]
        T.check((g["backend"], g["context_types"]) == (1, (1 << 1) | (1 << 5)), str(g))
        T.check(g["wayland_fd"] is not None and g["wayland_fd"]["o_path"] and g["wayland_fd"]["peer"] == sock_path,
                str(g))
        r = subprocess.run([VMC, "--user", "info", "wl"], env=env, capture_output=True, text=True, timeout=60)
        T.check(r.returncode == 0 and "on the host's compositor, contexts virgl:cross-domain" in r.stdout,
                "vmc info: %s %s" % (r.stdout, r.stderr))
        lst.close()
    finally:
        e.close()


# ---- the caller's rights (system mode, a caller running as nobody) ----

class NobodySetup:
    """test-majordomed-security.py's Setup (system bus, fake polkit,
    nobody as the caller) with fake-vmm.py as the VMM."""

    def __init__(self):
        self.fake = FakeVmm(S.T)
        try:
            self.s = S.Setup()
        except BaseException:
            self.fake.close()
            raise

    def listener(self, directory, name="wayland-0", mode=None, owner=None):
        path = os.path.join(directory, name)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        lst.listen(4)
        if mode is not None:
            os.chmod(path, mode)
        if owner is not None:
            os.chown(path, owner, owner)
        return lst, path

    def config(self, sock_path):
        return {"kernel": ["s", self.s.kernel], "memory": ["t", T.MEM], "gpu": {"width": ["u", 800]},
                "wayland_socket": ["s", sock_path]}

    def close(self):
        self.s.close()
        self.fake.close()


@test
@needs_wayland
def wayland_socket_in_a_directory_nobody_cannot_search_is_refused_for_nobody():
    n = NobodySetup()
    try:
        # The socket itself is 0777: only the 0700 directory of root on
        # the way keeps nobody out, which the open as nobody sees.
        lst, path = n.listener(n.s.root_only, mode=0o777)
        S.expect_refused(n.s.start_as_nobody(n.config(path)), INVALID,
                         "wayland_socket: cannot open '%s': Permission denied" % path)
        T.check(len(T.Client(n.s.bus).mgr.ListVms()) == 0, "a VM was created")
        lst.close()
    finally:
        n.close()


@test
@needs_wayland
def wayland_socket_nobody_may_not_write_is_refused_for_nobody():
    n = NobodySetup()
    try:
        # Reachable (the directory is 0755) but the socket is root's, 0755:
        # connecting needs write permission on it.
        lst, path = n.listener(n.s.tmp, mode=0o755)
        S.expect_refused(n.s.start_as_nobody(n.config(path)), INVALID,
                         "wayland_socket: cannot connect to '%s': Permission denied" % path)
        T.check(len(T.Client(n.s.bus).mgr.ListVms()) == 0, "a VM was created")
        lst.close()
    finally:
        n.close()


@test
@needs_wayland
def wayland_socket_of_nobody_is_connected_for_nobody():
    n = NobodySetup()
    try:
        lst, path = n.listener(n.s.mine, mode=0o700, owner=S.NOBODY)
        result = n.s.start_as_nobody(n.config(path))
        T.check(result == ["ok"], "StartVm as nobody with nobody's socket: %s" % result)
        T.check(accept_and_read(lst) == b"", "the daemon's test connection carried data")
        fd = gpu_devices(n.fake.last())[0]["wayland_fd"]
        T.check(fd is not None and fd["socket"] and fd["o_path"] and fd["peer"] == path, str(fd))
        T.check(accept_and_read(lst) == b"fake-vmm\n", "the listener did not see the VMM's connection")
        lst.close()
    finally:
        n.close()


# ---- the real VMM and majordome-gpu ----

@test
@needs_wayland
def a_real_vm_with_a_cross_domain_gpu_on_weston_runs_and_its_gpu_reaches_the_compositor():
    """The whole path: StartVm with gpu (cross-domain) and a real weston's
    socket, the real majordome-vmm and majordome-gpu, the spin guest. The
    VM runs (its pvpanic fits after the GPU's 256 MiB region), and weston
    sees majordome-gpu's display connection, made through the connector
    the VMM forked before its jail."""
    T.need_kvm()
    gpu_bin = os.environ.get("MAJORDOME_GPU")
    weston = shutil.which("weston")
    if not gpu_bin or not weston:
        raise T.Skip("MAJORDOME_GPU (meson sets it) or weston (tools/install-deps.sh) missing")
    rt = tempfile.mkdtemp(prefix="majordome-weston-")
    wlog = open(os.path.join(rt, "weston.log"), "w")
    wenv = dict(os.environ, XDG_RUNTIME_DIR=rt)
    w = subprocess.Popen([weston, "-B", "headless-backend.so", "--use-pixman", "--socket=wl-gpu", "--idle-time=0"],
                         env=wenv, stdout=wlog, stderr=wlog)
    sock = os.path.join(rt, "wl-gpu")
    bus = T.Bus()
    d = None
    try:
        T.check(T.wait_until(lambda: os.path.exists(sock) or w.poll() is not None, 10), "weston did not start")
        d = T.Daemon(bus, env={"MAJORDOME_GPU": gpu_bin})
        c = T.Client(bus)
        path = c.start("gpu-real", gpu=dbus.Dictionary({"displays": dbus.UInt32(1),
                                                        "context_types": dbus.String("cross-domain")},
                                                       signature="sv"),
                       wayland_socket=dbus.String(sock))
        T.check(T.wait_until(lambda: c.prop(path, "State") == "running", 30), "State %s" % c.prop(path, "State"))
        # majordome-gpu's word that it shows its scanout there, in the
        # VM's log (the VMM's and its device processes' messages).
        vm_log = os.path.join(d.runtime_dir, "gpu-real.log")

        def said(words):
            try:
                with open(vm_log, errors="replace") as f:
                    return words in f.read()
            except OSError:
                return False
        T.check(T.wait_until(lambda: said("showing 1 scanout on the Wayland compositor"), 20),
                "majordome-gpu did not reach the compositor (%s)" % vm_log)
        T.check(not said("No space left"), "a device did not fit")
        c.vm(path).Kill(timeout=30)
        c.close()
    finally:
        if d:
            d.close()
        bus.close()
        w.terminate()
        w.wait()
        wlog.close()
        shutil.rmtree(rt, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(T.run_tap(TESTS, sys.argv[1:], tools=["dbus-daemon", "setpriv"]))
