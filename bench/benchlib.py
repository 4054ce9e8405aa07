# SPDX-License-Identifier: BSD-3-Clause
"""Shared helpers of the Majordome benchmarks (Python 3 standard library only).

Every benchmark compares majordome-vmm with a peer measured in the same run
(QEMU here): these machines are noisy, so only ratios mean something.
"""

import argparse
import bisect
import os
import select
import shutil
import signal
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Exit code meaning "skipped" for meson and the test harnesses.
EXIT_SKIP = 77

# This host's KVM (PVM) rejects MSR_IA32_ARCH_CAPABILITIES and spins on the
# KVM paravirtual features' vmcall: the flags tests/guest/qemu-run.sh uses.
QEMU_CPU = "host,-kvm-pv-ipi,-kvm-pv-sched-yield,-kvm-pv-unhalt,-arch-capabilities"


def add_common_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--build-dir", default=os.environ.get("MAJORDOME_BUILD_DIR"),
                            help="meson build directory (env MAJORDOME_BUILD_DIR; default: "
                                 "<repo>/build, else the newest /tmp/build-*)")
        parser.add_argument("--vmm", default=os.environ.get("MAJORDOME_VMM"),
                            help="majordome-vmm binary (env MAJORDOME_VMM; default: "
                                 "BUILD_DIR/vmm/majordome-vmm)")
        parser.add_argument("--guest-dir", default=os.environ.get("MAJORDOME_GUEST_DIR"),
                            help="directory of the test guests *.elf (env MAJORDOME_GUEST_DIR; "
                                 "default: BUILD_DIR/tests/guest)")
        parser.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-x86_64"),
                            help="QEMU binary (env QEMU; default qemu-system-x86_64); "
                                 "the QEMU columns are skipped when it is missing")
        parser.add_argument("--no-qemu", action="store_true",
                            help="measure majordome-vmm only")


def _default_build_dir() -> str:
        own = os.path.join(REPO, "build")
        if os.path.exists(os.path.join(own, "vmm", "majordome-vmm")):
                return own
        # Engineers here build in /tmp/build-<name>: take the newest VMM.
        best, best_mtime = own, -1.0
        try:
                names = os.listdir("/tmp")
        except OSError:
                names = []
        for name in names:
                if not name.startswith("build-"):
                        continue
                vmm = os.path.join("/tmp", name, "vmm", "majordome-vmm")
                try:
                        mtime = os.stat(vmm).st_mtime
                except OSError:
                        continue
                if mtime > best_mtime:
                        best, best_mtime = os.path.join("/tmp", name), mtime
        return best


def resolve_paths(args: argparse.Namespace) -> None:
        """Fills args.vmm, args.guest_dir and args.qemu (None when QEMU is
        missing or not wanted); exits 66 when the VMM is missing."""
        build = args.build_dir or _default_build_dir()
        args.build_dir = build
        if not args.vmm:
                args.vmm = os.path.join(build, "vmm", "majordome-vmm")
        if not args.guest_dir:
                args.guest_dir = os.path.join(build, "tests", "guest")
        if not os.access(args.vmm, os.X_OK):
                sys.exit(f"majordome-vmm not found at {args.vmm}: build it (ninja -C BUILD_DIR) "
                         f"and pass --build-dir/--vmm or set MAJORDOME_BUILD_DIR/MAJORDOME_VMM")
        args.vmm = os.path.abspath(args.vmm)
        if args.no_qemu:
                args.qemu = None
        else:
                q = shutil.which(args.qemu)
                if not q:
                        print(f"note: {args.qemu} not found: skipping the QEMU measurements",
                              flush=True)
                args.qemu = q
        if not (os.access("/dev/kvm", os.R_OK | os.W_OK)):
                print("SKIP: /dev/kvm is missing or not usable", flush=True)
                sys.exit(EXIT_SKIP)


def guest(args: argparse.Namespace, name: str) -> str:
        path = os.path.join(args.guest_dir, f"{name}.elf")
        if not os.path.exists(path):
                sys.exit(f"test guest {path} not found: build the tests (ninja -C BUILD_DIR) "
                         f"or pass --guest-dir/MAJORDOME_GUEST_DIR")
        return path


def qemu_argv(qemu: str, machine: str, kernel: str, mem_mib: int = 256, cpus: int = 1,
              extra=(), cpu: str = QEMU_CPU) -> list:
        return [qemu, "-M", machine, "-accel", "kvm", "-cpu", cpu,
                "-m", str(mem_mib), "-smp", str(cpus),
                "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
                "-device", "isa-debug-exit,iobase=0xf4",
                "-kernel", kernel, *extra]


class Run:
        """One spawned VMM with its serial output on a pipe.

        t0 is taken just before posix_spawn, so times count the exec, the
        dynamic loader and everything the VMM does before the guest's byte
        reaches the pipe."""

        def __init__(self, argv: list, env=None):
                self.argv = argv
                self.output = bytearray()
                self.t_first_byte = None
                self.t_exit = None
                # (offset in output, seconds after t0) of every read.
                self.chunks = []
                self.returncode = None
                self.stderr_file = tempfile.TemporaryFile()
                rfd, wfd = os.pipe()
                null = os.open("/dev/null", os.O_RDONLY)
                actions = [
                        (os.POSIX_SPAWN_DUP2, null, 0),
                        (os.POSIX_SPAWN_DUP2, wfd, 1),
                        (os.POSIX_SPAWN_DUP2, self.stderr_file.fileno(), 2),
                ]
                self.t0 = time.perf_counter()
                try:
                        self.pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ,
                                                  file_actions=actions, setsid=True)
                finally:
                        os.close(wfd)
                        os.close(null)
                self.fd = rfd

        def elapsed(self, t):
                return None if t is None else t - self.t0

        def time_at(self, offset: int) -> float:
                """Seconds after t0 of the read that brought output[offset]."""
                i = bisect.bisect_right(self.chunks, (offset, float("inf"))) - 1
                return self.chunks[i][1]

        def _read_some(self, timeout: float) -> bool:
                """One read with a timeout; False at EOF."""
                r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
                if not r:
                        return True
                data = os.read(self.fd, 65536)
                now = time.perf_counter() - self.t0
                if not data:
                        os.close(self.fd)
                        self.fd = None
                        return False
                if self.t_first_byte is None:
                        self.t_first_byte = now
                self.chunks.append((len(self.output), now))
                self.output += data
                return True

        def read_until(self, marker: bytes, timeout: float):
                """Reads the serial pipe until marker shows up or EOF/timeout.
                Returns (t_start, t_end), the times (seconds after t0) of the
                reads that brought the marker's first and last byte, or None."""
                deadline = self.t0 + timeout
                start = 0
                while True:
                        idx = self.output.find(marker, start)
                        if idx >= 0:
                                return self.time_at(idx), self.time_at(idx + len(marker) - 1)
                        start = max(0, len(self.output) - len(marker) + 1)
                        left = deadline - time.perf_counter()
                        if left <= 0 or self.fd is None:
                                return None
                        if not self._read_some(left):
                                return None

        def wait(self, timeout: float):
                """Waits for the process to exit, draining the pipe; kills it at
                the deadline. Returns the exit status (negative: signal)."""
                deadline = time.perf_counter() + timeout
                pidfd = os.pidfd_open(self.pid)
                try:
                        while self.returncode is None:
                                left = deadline - time.perf_counter()
                                if left <= 0:
                                        self.kill()
                                        break
                                fds = [pidfd] + ([self.fd] if self.fd is not None else [])
                                r, _, _ = select.select(fds, [], [], left)
                                if self.fd is not None and self.fd in r:
                                        self._read_some(0)
                                if pidfd in r:
                                        _, status = os.waitpid(self.pid, 0)
                                        self.t_exit = time.perf_counter() - self.t0
                                        self.returncode = os.waitstatus_to_exitcode(status)
                finally:
                        os.close(pidfd)
                self._drain()
                return self.returncode

        def kill(self):
                if self.returncode is None:
                        try:
                                os.kill(self.pid, signal.SIGKILL)
                        except ProcessLookupError:
                                pass
                        _, status = os.waitpid(self.pid, 0)
                        self.returncode = os.waitstatus_to_exitcode(status)
                self._drain()

        def _drain(self):
                if self.fd is None:
                        return
                while True:
                        r, _, _ = select.select([self.fd], [], [], 0)
                        if not r:
                                break
                        if not self._read_some(0):
                                return
                os.close(self.fd)
                self.fd = None

        def stderr(self) -> str:
                self.stderr_file.seek(0)
                return self.stderr_file.read().decode(errors="replace")

        def describe_failure(self) -> str:
                out = self.output[-400:].decode(errors="replace")
                err = self.stderr()[-400:]
                return (f"{' '.join(self.argv)}\n  exit {self.returncode}\n"
                        f"  serial tail: {out!r}\n  stderr tail: {err!r}")


def percentile(values, p: float) -> float:
        """Nearest-rank percentile (p in 0..100) of a non-empty list."""
        s = sorted(values)
        k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
        return s[k]


def median(values) -> float:
        return statistics.median(values)


def fmt_ms(seconds: float) -> str:
        ms = seconds * 1e3
        if ms < 10:
                return f"{ms:.2f} ms"
        if ms < 100:
                return f"{ms:.1f} ms"
        return f"{ms:.0f} ms"


def fmt_ratio(ours: float, theirs: float) -> str:
        """'1/134' when ours is smaller, '2.3x' otherwise."""
        if ours <= 0 or theirs <= 0:
                return "n/a"
        r = ours / theirs
        if r < 1:
                return f"1/{theirs / ours:.0f}" if theirs / ours >= 10 else f"1/{theirs / ours:.1f}"
        return f"{r:.2f}x"


def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"
