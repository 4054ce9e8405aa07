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

    def refused(self, words, *shares, **config):
        try:
            self.start("bad", *shares, **config)
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


@test
def live_share_is_opened_with_the_callers_rights():
    """nobody starts a VM with live_shares on the system bus: a directory
    only root may enter is refused (the daemon opened it as nobody), one
    nobody owns is shared."""
    need_virtiofsd()
    s = S.Setup()
    try:
        cfg = {"kernel": ["s", s.kernel], "memory": ["t", T.MEM], "live_shares": ["b", True]}
        T.check(s.start_as_nobody(cfg) == ["ok"], "StartVm as nobody")
        vm = S.PATH + "/vm/sec"
        link = os.path.join(s.mine, "link")
        os.symlink(s.root_only, link)
        results = s.as_nobody([[vm, "org.majordome.Vm1", "ShareDirectory", [s.root_only, {}]],
                               [vm, "org.majordome.Vm1", "ShareDirectory", [link, {}]]])
        for r, path in zip(results, (s.root_only, link)):
            S.expect_refused(r, "org.freedesktop.DBus.Error.InvalidArgs",
                             "host_path: cannot open '%s': Permission denied" % path)
        T.check(s.as_nobody([[vm, "org.majordome.Vm1", "ShareDirectory", [s.mine, {}]]]) == [["ok"]],
                "nobody could not share its own directory")
        root = os.path.join(s.daemon.runtime_dir, "live-shares", "sec", "ro")
        T.check(os.listdir(root) == ["nobody"], "live root: %s" % os.listdir(root))
    finally:
        s.close()


# ---- ShareDirectory and UnshareDirectory on a VM that exists ----

NO_OPTIONS = dbus.Dictionary({}, signature="sv")


def opts(**kw):
    return dbus.Dictionary({k: dbus.Boolean(v) if isinstance(v, bool) else dbus.String(v) for k, v in kw.items()},
                           signature="sv")


def live_of(c, path):
    return sorted((str(t), str(p), bool(ro)) for t, p, ro in c.prop(path, "LiveShares"))


def live_root(e, name):
    """What the VM's virtiofsd serves: the read-only peer of the daemon's tmpfs."""
    return os.path.join(e.daemon.runtime_dir, "live-shares", name, "ro")


@test
def share_on_a_vm_started_without_live_shares_is_not_supported_and_says_how():
    need_virtiofsd()
    e = Env()
    try:
        path = e.start("fixed", share(e.dir("a"), tag="a"))
        vm = e.c.vm(path)
        T.check(str(e.c.prop(path, "LiveSharesTag")) == "", "LiveSharesTag %r" % e.c.prop(path, "LiveSharesTag"))
        try:
            vm.ShareDirectory(e.dir("b"), opts(read_only=True))
            raise AssertionError("ShareDirectory was not refused")
        except dbus.DBusException as ex:
            T.check(ex.get_dbus_name() == "org.majordome.Error.NotSupported", ex.get_dbus_name())
            T.check("started without live_shares" in ex.get_dbus_message(), ex.get_dbus_message())
        # Arguments are checked first, whatever the VM.
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, "rel", NO_OPTIONS)
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"), opts(tag="a"))
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"), opts(cache="x"))
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.UnshareDirectory, "nope")
        T.expect_error("org.majordome.Error.NotSupported", vm.UnshareDirectory, "a")
        T.check(shares_of(e.c, path) == [("a", os.path.join(e.tmp, "a"), False, "auto")], shares_of(e.c, path))
        T.check(not os.path.exists(os.path.join(e.daemon.runtime_dir, "live-shares", "fixed")), "a live root")
    finally:
        e.close()


@test
def live_share_is_mounted_under_the_live_root_listed_and_taken_away():
    need_virtiofsd()
    e = Env()
    try:
        data, ro = e.dir("data"), e.dir("ro-data")
        with open(os.path.join(data, "hello"), "w") as f:
            f.write("from the host\n")
        path = e.start("lv", live_shares=dbus.Boolean(True))
        vm = e.c.vm(path)
        T.check(str(e.c.prop(path, "LiveSharesTag")) == "majordome", str(e.c.prop(path, "LiveSharesTag")))
        pid = int(e.c.prop(path, "Pid"))
        T.check(T.wait_until(lambda: len(virtiofsd_under(pid)) == 1, 10), "no virtiofsd for the live root")
        root = live_root(e, "lv")
        T.check(os.listdir(root) == [], "the live root is not empty: %s" % os.listdir(root))
        try:
            open(os.path.join(root, "x"), "w")
            raise AssertionError("the live root is writable")
        except OSError as ex:
            T.check(ex.errno == 30, "writing in the live root: %s" % ex)  # EROFS

        T.check(str(vm.ShareDirectory(data, NO_OPTIONS)) == "data", "tag")
        T.check(str(vm.ShareDirectory(ro, opts(read_only=True, tag="docs"))) == "docs", "tag")
        T.check(live_of(e.c, path) == [("data", data, False), ("docs", ro, True)], str(live_of(e.c, path)))
        T.check(T.wait_until(lambda: any("LiveShares" in ch for p, ch in e.c.changes if p == path), 5),
                "no PropertiesChanged for LiveShares")
        with open(os.path.join(root, "data", "hello")) as f:
            T.check(f.read() == "from the host\n", "the share's file")
        # Through the read-only root, the share itself is writable...
        with open(os.path.join(root, "data", "from-guest-side"), "w") as f:
            f.write("x")
        T.check(os.path.exists(os.path.join(data, "from-guest-side")), "a write did not reach the directory")
        # ...unless read-only.
        try:
            open(os.path.join(root, "docs", "x"), "w")
            raise AssertionError("a read-only live share is writable")
        except OSError as ex:
            T.check(ex.errno == 30, "writing in a read-only share: %s" % ex)
        info = e.c.mgr.GetVmInfo("lv")
        T.check(sorted(tuple(x) for x in info["LiveShares"]) == [("data", data, False), ("docs", ro, True)],
                str(info["LiveShares"]))

        vm.UnshareDirectory("data")
        T.check(sorted(os.listdir(root)) == ["docs"], "after unshare: %s" % os.listdir(root))
        T.check(live_of(e.c, path) == [("docs", ro, True)], str(live_of(e.c, path)))
        T.check(os.path.exists(os.path.join(data, "hello")), "unsharing touched the directory")
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.UnshareDirectory, "data")

        vm.Stop("graceful", dbus.UInt32(10000), timeout=30)
        T.check(T.wait_until(lambda: not os.path.exists(os.path.join(e.daemon.runtime_dir, "live-shares", "lv")), 10),
                "the live root outlived its VM")
        T.check(sorted(os.listdir(ro)) == [] and os.path.exists(os.path.join(data, "hello")), "the shares changed")
    finally:
        e.close()


@test
def live_share_tags_are_unique_and_bad_live_shares_are_refused():
    need_virtiofsd()
    e = Env()
    try:
        a = e.dir("a")
        path = e.start("tags", share(a), live_shares=dbus.Boolean(True))
        vm = e.c.vm(path)
        # Unique among the VM's shares, the ones it started with included.
        T.check(str(vm.ShareDirectory(e.dir("x", "a"), NO_OPTIONS)) == "a-2", "default tag")
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"), opts(tag="a-2"))
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"), opts(tag="a"))
        # One cache mode for the whole root.
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("b"), opts(cache="never"))
        # Missing, a file, a dangling symlink.
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.tmp + "/nope", NO_OPTIONS)
        f = os.path.join(e.tmp, "file")
        open(f, "w").close()
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, f, NO_OPTIONS)
        os.symlink(e.tmp + "/nowhere", e.tmp + "/dangling")
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.tmp + "/dangling", NO_OPTIONS)
        # 16 at most.
        for i in range(15):
            vm.ShareDirectory(e.dir("many", str(i)), NO_OPTIONS)
        T.expect_error("org.freedesktop.DBus.Error.InvalidArgs", vm.ShareDirectory, e.dir("many", "16"), NO_OPTIONS)
        T.check(len(live_of(e.c, path)) == 16, "%d live shares" % len(live_of(e.c, path)))
        T.check(len(os.listdir(live_root(e, "tags"))) == 16, "mounts: %s" % os.listdir(live_root(e, "tags")))
    finally:
        e.close()


@test
def a_share_tagged_like_the_live_root_is_refused():
    e = Env()
    try:
        e.refused("shares[0].tag: 'majordome' is live_shares' own tag", share(e.dir("m"), tag="majordome"),
                  live_shares=dbus.Boolean(True))
        # The same tag without live_shares is a share like any other.
        e.start("fine", share(e.dir("m"), tag="majordome"))
    finally:
        e.close()


@test
def live_shares_are_listed_and_managed_again_after_a_daemon_restart():
    need_virtiofsd()
    e = Env()
    try:
        one, two = e.dir("one"), e.dir("two")
        path = e.start("again", live_shares=dbus.Boolean(True))
        vm = e.c.vm(path)
        vm.ShareDirectory(one, opts(read_only=True))
        e.daemon.kill()
        e.daemon.start()
        T.check(live_of(e.c, path) == [("one", one, True)], str(live_of(e.c, path)))
        T.check(str(e.c.prop(path, "LiveSharesTag")) == "majordome", "LiveSharesTag")
        vm = e.c.vm(path)
        vm.ShareDirectory(two, NO_OPTIONS)
        vm.UnshareDirectory("one")
        T.check(sorted(os.listdir(live_root(e, "again"))) == ["two"], str(os.listdir(live_root(e, "again"))))
        T.check(live_of(e.c, path) == [("two", two, False)], str(live_of(e.c, path)))
    finally:
        e.close()


def console(e, name):
    try:
        with open(os.path.join(e.daemon.runtime_dir, name + ".console.log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


@test
def rig_guest_sees_a_live_share_come_and_go_while_it_runs():
    """The linux-rig guest (virtio-fs driver, Debian's virtiofsd) mounts the
    live root; a directory shared while it runs appears in it, the guest
    reads the host's file and writes one the host reads, cannot write to the
    root itself, and sees the share go when it is unshared."""
    need_virtiofsd()
    rig = os.environ.get("MAJORDOME_RIG_DIR", "")
    scripts = os.environ.get("MAJORDOME_RIG_SCRIPTS", "")
    if not os.path.exists(os.path.join(rig, "vmlinux")) or not os.path.exists(os.path.join(scripts, "mkinitramfs.sh")):
        raise T.Skip("linux-rig not found (MAJORDOME_RIG_DIR, MAJORDOME_RIG_SCRIPTS)")
    e = Env()
    try:
        initrd = os.path.join(e.tmp, "initrd.cpio")
        subprocess.check_call([os.path.join(scripts, "mkinitramfs.sh"), rig,
                               os.path.join(T.SOURCE_DIR, "tests", "linux", "init-live-shares.sh"), initrd])
        with open(os.path.join(scripts, "cmdline")) as f:
            cmdline = "console=ttyS0 " + f.read().strip()
        data = e.dir("data")
        with open(os.path.join(data, "hello"), "w") as f:
            f.write("MAJORDOME-LIVE-HOST\n")
        path = e.start("rig", kernel=dbus.String(os.path.join(rig, "vmlinux")), initrd=dbus.String(initrd),
                       cmdline=dbus.String(cmdline), memory=dbus.UInt64(256 << 20), live_shares=dbus.Boolean(True))
        vm = e.c.vm(path)
        T.check(T.wait_until(lambda: "LIVE-READY" in console(e, "rig"), 300),
                "the guest never mounted the live root:\n" + console(e, "rig")[-3000:])
        T.check(str(vm.ShareDirectory(data, NO_OPTIONS)) == "data", "tag")
        T.check(T.wait_until(lambda: "LIVE-WROTE" in console(e, "rig"), 300),
                "the guest never wrote:\n" + console(e, "rig")[-3000:])
        try:
            with open(os.path.join(data, "from-guest")) as f:
                T.check(f.read() == "MAJORDOME-LIVE-GUEST\n", "from-guest")
        except FileNotFoundError:
            raise AssertionError("the guest's file is not in the shared directory")
        vm.UnshareDirectory("data")
        T.check(T.wait_until(lambda: e.c.stopped_of("rig"), 300),
                "the guest did not finish:\n" + console(e, "rig")[-3000:])
        out = console(e, "rig")
        results = [line.split(" ", 3)[1:] for line in out.splitlines() if line.startswith("LIVE ")]
        for check, verdict, *detail in results:
            print("# guest %s: %s %s" % (check, verdict, detail[0] if detail else ""))
        T.check([r[0] for r in results] == ["mount", "read", "write", "root-read-only", "gone"],
                "guest checks %s" % results)
        T.check(all(r[1] == "PASS" for r in results), "guest checks %s" % results)
        T.check(sorted(os.listdir(data)) == ["from-guest", "hello"], str(os.listdir(data)))
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
        r = e.vmc("share", "v", e.dir("gamma"), "--read-only", "--tag", "g")
        T.check(r.returncode != 0 and "started without live_shares" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("unshare", "v", "bt")
        T.check(r.returncode != 0 and "stays until the VM stops" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("share", "v", e.dir("gamma") + "/../gamma")
        T.check(r.returncode != 0 and "has a '..' component" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("unshare", "v", "nope")
        T.check(r.returncode != 0 and "has no share 'nope'" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("start", "w", "--kernel", T.SPIN, "--share", e.tmp + "/nope")
        T.check(r.returncode != 0 and "shares[0].path: cannot open" in r.stderr, "%s %s" % (r.stdout, r.stderr))
        r = e.vmc("start", "lv", "--kernel", T.SPIN, "--mem", "64M", "--live-shares")
        T.check(r.returncode == 0, "vmc start --live-shares: %s %s" % (r.stdout, r.stderr))
        r = e.vmc("share", "lv", e.dir("gamma"), "--read-only", "--tag", "g")
        T.check(r.returncode == 0 and "as g" in r.stdout, "vmc share: %s %s" % (r.stdout, r.stderr))
        r = e.vmc("info", "lv")
        T.check("Live root       majordome" in r.stdout and "g  " + e.dir("gamma") + " (ro)" in r.stdout, r.stdout)
        r = e.vmc("unshare", "lv", "g")
        T.check(r.returncode == 0 and "no longer shares g" in r.stdout, "vmc unshare: %s %s" % (r.stdout, r.stderr))
        r = e.vmc("info", "lv")
        T.check("Live shares" not in r.stdout, r.stdout)
    finally:
        e.close()


if __name__ == "__main__":
    sys.exit(T.run_tap(TESTS, sys.argv[1:]))
