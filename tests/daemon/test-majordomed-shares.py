#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Shared directories (virtio-fs): StartVm's "shares", the Vm1 Shares
property, ShareDirectory/UnshareDirectory (refused: shares are given at
start), and vmc start --share / share / unshare / info, against the real
majordomed, dbus-daemon and majordome-vmm (which starts Debian's
virtiofsd). The directory a caller names is opened with the caller's
rights: checked as nobody with the fake polkit of
test-majordomed-security.py. Uses test-majordomed.py's helpers; prints TAP."""

import importlib.util
import os
import shutil
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

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
VMC = os.environ.get("VMC")
INVALID = "org.majordome.Error.InvalidConfig"

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    """A session-like bus, majordomed --user on it, a client and a scratch
    directory; closed whatever happens."""

    def __init__(self):
        self.bus = T.Bus()
        self.daemon = T.Daemon(self.bus)
        self.c = T.Client(self.bus)
        self.tmp = tempfile.mkdtemp(prefix="majordome-shares-")

    def dir(self, *parts):
        path = os.path.join(self.tmp, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def start(self, name, *shares, **config):
        arr = dbus.Array([dbus.Dictionary(s, signature="sv") for s in shares], signature="a{sv}")
        return self.c.start(name, shares=arr, **config)

    def refused(self, words, *shares):
        try:
            self.start("bad", *shares)
        except dbus.DBusException as e:
            T.check(e.get_dbus_name() == INVALID, "want %s, got %s: %s" % (INVALID, e.get_dbus_name(), e))
            T.check(words in e.get_dbus_message(), "%r not in %r" % (words, e.get_dbus_message()))
            T.check(len(self.c.mgr.ListVms()) == 0, "a VM was created")
            return
        raise AssertionError("StartVm with %s was not refused" % (shares,))

    def vmc(self, *args):
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus.address)
        return subprocess.run([VMC, "--user"] + list(args), env=env, capture_output=True, text=True, timeout=120)

    def close(self):
        if sys.exc_info()[0] is not None:
            for line in self.daemon.log_tail(20):
                print("# majordomed: " + line)
        self.c.close()
        self.daemon.close()
        self.bus.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def share(path, **kw):
    d = {"path": dbus.String(path)}
    for k, v in kw.items():
        d[k] = dbus.Boolean(v) if isinstance(v, bool) else dbus.String(v)
    return d


def shares_of(c, path):
    return [(str(t), str(p), bool(ro), str(cache)) for t, p, ro, cache in c.prop(path, "Shares")]


def virtiofsd_under(pid):
    """The virtiofsd processes among pid's descendants."""
    found = []
    for p in T.vmm_tree(pid)[1:]:
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                if b"virtiofsd" in f.read():
                    found.append(p)
        except OSError:
            pass
    return found


def need_virtiofsd():
    T.need_kvm()
    if not os.access(VIRTIOFSD, os.X_OK):
        raise T.Skip("needs " + VIRTIOFSD + " (Debian's virtiofsd)")


# ---- a VM with shares ----

@test
def start_with_a_share_runs_lists_it_and_has_a_virtiofsd():
    need_virtiofsd()
    e = Env()
    try:
        data = e.dir("data")
        path = e.start("sh", share(data, tag="hostdata", read_only=True, cache="never"))
        T.check(e.c.prop(path, "State") == "running", "not running")
        T.check(shares_of(e.c, path) == [("hostdata", data, True, "never")], shares_of(e.c, path))
        T.check(any("Shares" in ch for p, ch in e.c.changes if p == path) or T.wait_until(
            lambda: any("Shares" in ch for p, ch in e.c.changes if p == path), 5), "no PropertiesChanged for Shares")
        info = e.c.mgr.GetVmInfo("sh")
        T.check([tuple(x) for x in info["Shares"]] == [("hostdata", data, True, "never")], str(info["Shares"]))
        pid = int(e.c.prop(path, "Pid"))
        T.check(T.wait_until(lambda: len(virtiofsd_under(pid)) == 1, 10),
                "no virtiofsd under the VMM (pid %d): %s" % (pid, T.vmm_tree(pid)[1:]))
        fsd = virtiofsd_under(pid)[0]
        T.check(T.wait_until(lambda: e.c.prop(path, "State") == "running", 1), "not running")
        T.check(T.pid_alive(fsd), "virtiofsd gone while the VM runs")
        e.c.vm(path).Stop("graceful", dbus.UInt32(5000), timeout=30)
        T.check(T.wait_until(lambda: not T.pid_alive(fsd), 10), "virtiofsd outlived its VM")
    finally:
        e.close()


@test
def default_tags_come_from_the_directory_names_and_are_unique():
    need_virtiofsd()
    e = Env()
    try:
        a, b, c = e.dir("a", "data"), e.dir("b", "data"), e.dir("my dir:1")
        path = e.start("tags", share(a), share(b), share(c, cache="always"), share(e.dir("x"), tag="data"))
        got = shares_of(e.c, path)
        T.check([s[0] for s in got] == ["data-2", "data-3", "my_dir_1", "data"], str(got))
        T.check(got[2][3] == "always" and got[0][3] == "auto" and not got[0][2], str(got))
    finally:
        e.close()


@test
def shares_are_listed_again_after_a_daemon_restart():
    need_virtiofsd()
    e = Env()
    try:
        odd = e.dir("new\nline \\x41")
        path = e.start("adopt", share(odd, tag="odd", read_only=True))
        before = shares_of(e.c, path)
        e.daemon.kill()
        e.daemon.start()
        T.check(shares_of(e.c, path) == before, "%s != %s" % (shares_of(e.c, path), before))
    finally:
        e.close()


# ---- bad input, each refused with InvalidConfig naming the share ----

@test
def share_path_that_does_not_exist_is_refused():
    e = Env()
    try:
        e.refused("shares[0].path: cannot open '%s/nope': No such file or directory" % e.tmp,
                  share(os.path.join(e.tmp, "nope")))
    finally:
        e.close()


@test
def share_path_that_is_a_file_is_refused():
    e = Env()
    try:
        f = os.path.join(e.tmp, "file")
        open(f, "w").close()
        e.refused("shares[0].path: '%s' is not a directory" % f, share(f))
    finally:
        e.close()


@test
def relative_and_dotdot_share_paths_are_refused():
    e = Env()
    try:
        e.refused("shares[0]: path 'data' is not absolute", share("data"))
        e.refused("shares[0]: path '%s/data/../data' has a '..' component" % e.tmp,
                  share(e.dir("data") + "/../data"))
        e.refused("has a '.' component", share(e.tmp + "/./data"))
    finally:
        e.close()


@test
def two_shares_with_the_same_tag_are_refused():
    e = Env()
    try:
        e.refused("shares[1].tag: 'same' is already shares[0]'s",
                  share(e.dir("a"), tag="same"), share(e.dir("b"), tag="same"))
    finally:
        e.close()


@test
def too_many_shares_are_refused():
    e = Env()
    try:
        e.refused("shares: more than 4 shares", *[share(e.dir("d%d" % i)) for i in range(5)])
    finally:
        e.close()


@test
def bad_cache_value_is_refused():
    e = Env()
    try:
        e.refused("shares[0].cache: 'sometimes' is not auto, always or never", share(e.dir("a"), cache="sometimes"))
    finally:
        e.close()


@test
def bad_tags_are_refused():
    e = Env()
    try:
        for tag in ("", "a b", "a:b", "a,b", "a/b", "a\\b", "x" * 37, "caf\u00e9"):
            e.refused("shares[0].tag: ", share(e.dir("a"), tag=tag))
        e.refused("shares[0].mode: unknown share key", dict(share(e.dir("a")), mode=dbus.String("x")))
        e.refused("shares[0].read_only: wrong type 's', want 'b'", dict(share(e.dir("a")), read_only=dbus.String("x")))
        e.refused("shares[0]: needs a path", {"tag": dbus.String("t")})
    finally:
        e.close()


@test
def symlink_to_a_directory_nobody_cannot_read_is_refused_for_nobody():
    s = S.Setup()
    try:
        link = os.path.join(s.mine, "link")
        os.symlink(s.root_only, link)
        cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM], "shares": [{"path": ["s", link]}]}
        S.expect_refused(s.start_as_nobody(cfg), INVALID,
                         "shares[0].path: cannot open '%s': Permission denied" % link)
        T.check(len(T.Client(s.bus).mgr.ListVms()) == 0, "a VM was created")
    finally:
        s.close()


# ---- ShareDirectory and UnshareDirectory on a VM that exists ----

@test
def share_and_unshare_on_a_running_vm_say_shares_are_given_at_start():
    need_virtiofsd()
    e = Env()
    try:
        path = e.start("live", share(e.dir("a"), tag="a"))
        vm = e.c.vm(path)
        T.expect_error("org.majordome.Error.NotSupported", vm.ShareDirectory, e.dir("b"),
                       dbus.Dictionary({"read_only": dbus.Boolean(True)}, signature="sv"))
        try:
            vm.ShareDirectory(e.dir("b"), dbus.Dictionary({}, signature="sv"))
        except dbus.DBusException as ex:
            T.check("shares are given when a VM starts" in ex.get_dbus_message(), ex.get_dbus_message())
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, "rel",
                       dbus.Dictionary({}, signature="sv"))
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"),
                       dbus.Dictionary({"tag": dbus.String("a")}, signature="sv"))
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"),
                       dbus.Dictionary({"cache": dbus.String("x")}, signature="sv"))
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.UnshareDirectory, "nope")
        T.expect_error("org.majordome.Error.NotSupported", vm.UnshareDirectory, "a")
        T.check(shares_of(e.c, path) == [("a", os.path.join(e.tmp, "a"), False, "auto")], shares_of(e.c, path))
    finally:
        e.close()


# ---- vmc ----

def need_vmc():
    if not VMC:
        raise T.Skip("VMC (the vmc binary) is not set")


@test
def vmc_start_share_and_info_list_shares_and_share_unshare_explain():
    need_vmc()
    need_virtiofsd()
    e = Env()
    try:
        a, b = e.dir("alpha"), e.dir("beta")
        r = e.vmc("start", "v", "--kernel", T.SPIN, "--mem", "64M", "--share", a, "--share", b + ":bt:ro")
        T.check(r.returncode == 0, "vmc start: %s %s" % (r.stdout, r.stderr))
        r = e.vmc("info", "v")
        T.check(r.returncode == 0, r.stderr)
        T.check("alpha" in r.stdout and a in r.stdout and "bt" in r.stdout and b in r.stdout, r.stdout)
        path = T.PATH + "/vm/v"
        T.check(shares_of(e.c, path) == [("alpha", a, False, "auto"), ("bt", b, True, "auto")],
                str(shares_of(e.c, path)))
        r = e.vmc("share", "v", e.dir("gamma"), "--read-only", "--tag", "g", "--cache", "never")
        T.check(r.returncode != 0 and "shares are given when a VM starts" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("unshare", "v", "bt")
        T.check(r.returncode != 0 and "stays until the VM stops" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("share", "v", e.dir("gamma") + "/../gamma")
        T.check(r.returncode != 0 and "has a '..' component" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("unshare", "v", "nope")
        T.check(r.returncode != 0 and "has no share 'nope'" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("start", "w", "--kernel", T.SPIN, "--share", e.tmp + "/nope")
        T.check(r.returncode != 0 and "shares[0].path: cannot open" in r.stderr, "%s %s" % (r.stdout, r.stderr))
    finally:
        e.close()


if __name__ == "__main__":
    sys.exit(T.run_tap(TESTS, sys.argv[1:]))
