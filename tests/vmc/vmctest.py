# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of vmc's bus tests: a private dbus-daemon, running vmc,
and TAP output for meson (protocol 'tap')."""

import os
import subprocess
import sys
import tempfile
import time
import traceback


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=""):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, name), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, name), flush=True)
            for line in str(detail).splitlines():
                print("#   " + line, flush=True)

    def skip(self, name, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, reason), flush=True)

    def run(self, name, fn):
        """Runs fn(); an exception is a failure with its traceback."""
        try:
            fn()
        except AssertionError as e:
            self.ok(False, name, str(e))
            return
        except Exception:
            self.ok(False, name, traceback.format_exc())
            return
        self.ok(True, name)

    def finish(self):
        print("1..%d" % self.n, flush=True)
        return 0


def check(cond, message):
    if not cond:
        raise AssertionError(message)


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def __str__(self):
        return "rc=%s\nstdout=%r\nstderr=%r" % (self.rc, self.out, self.err)


class PrivateBus:
    """A dbus-daemon of our own, with the session configuration."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="vmc-test-")
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1",
             "--address=unix:dir=" + self.dir.name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon printed no address")
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.dir.cleanup()


def vmc(bus_address, *args, timeout=60, stdin=None, env=None):
    """env: the environment vmc runs in (default: ours)."""
    exe = os.environ["VMC"]
    p = subprocess.run([exe, "--address", bus_address] + list(args), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    return Result(p)


def wait_for(fn, timeout=10.0, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()


def have_python_dbus():
    try:
        import dbus  # noqa: F401
        import gi  # noqa: F401
        return True
    except ImportError:
        return False


def bail_out_all(tap, names, reason):
    for n in names:
        tap.skip(n, reason)
    tap.finish()
    sys.exit(0)
