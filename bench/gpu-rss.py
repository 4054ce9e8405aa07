#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""What the GPU device costs in host memory while idle (issue "virtio-gpu").

majordome-gpu: started on one end of a socket pair as the VMM starts it
(2D, one 1024x768 display, headless), asked GET_FEATURES so it is past its
set-up and jailed, then its Rss and Pss are read (/proc/PID/status and
smaps_rollup). The peer: QEMU 7.2's 2D `virtio-gpu-pci`, which lives inside
QEMU's process, so its cost is the Rss QEMU `-M q35 -S` gains with the
device against without it (median of 3 starts each). virgl cannot be
measured against QEMU here: `virtio-gpu-gl-pci` needs a DRM render node
(docs/GRAPHICS.md). Printed, no goal: the issue asks for the figures.

    bench/gpu-rss.py [--gpu PATH] [--qemu PATH]
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import time


def status_kib(pid: int, key: str) -> int:
        with open(f"/proc/{pid}/status") as f:
                for line in f:
                        if line.startswith(key + ":"):
                                return int(line.split()[1])
        return 0


def pss_kib(pid: int) -> int:
        try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                        for line in f:
                                if line.startswith("Pss:"):
                                        return int(line.split()[1])
        except OSError:
                pass
        return 0


def majordome_gpu(path: str) -> tuple:
        a, b = socket.socketpair()
        p = subprocess.Popen([path, "--fd", str(b.fileno())], pass_fds=[b.fileno()],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        b.close()
        # GET_FEATURES (1), version 1, no payload: answered once it serves.
        a.sendall(struct.pack("<III", 1, 1, 0))
        a.settimeout(10)
        a.recv(20)
        time.sleep(0.5)
        rss, pss = status_kib(p.pid, "VmRSS"), pss_kib(p.pid)
        a.close()
        p.wait(10)
        return rss, pss


def qemu_rss(qemu: str, with_gpu: bool) -> int:
        argv = [qemu, "-M", "q35", "-m", "256", "-nodefaults", "-nographic", "-S", "-display", "none"]
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
                argv += ["-accel", "kvm"]
        if with_gpu:
                argv += ["-device", "virtio-gpu-pci"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(2.0)
        rss = status_kib(p.pid, "VmRSS") if p.poll() is None else -1
        p.kill()
        p.wait()
        return rss


def main() -> int:
        here = os.path.dirname(os.path.abspath(__file__))
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--gpu", default=os.environ.get("MAJORDOME_GPU",
                            os.path.join(here, "..", "build", "gpu", "majordome-gpu")))
        parser.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
        args = parser.parse_args()
        if not os.access(args.gpu, os.X_OK):
                print(f"gpu-rss: SKIP: no majordome-gpu at {args.gpu}")
                return 77

        runs = [majordome_gpu(args.gpu) for _ in range(3)]
        rss = sorted(r[0] for r in runs)[1]
        pss = sorted(r[1] for r in runs)[1]
        line = f"gpu-rss: majordome-gpu idle (2D, jailed): Rss {rss / 1024:.2f} MiB, Pss {pss / 1024:.2f} MiB"
        if args.qemu:
                without = sorted(qemu_rss(args.qemu, False) for _ in range(3))[1]
                with_gpu = sorted(qemu_rss(args.qemu, True) for _ in range(3))[1]
                if without > 0 and with_gpu > 0:
                        delta = with_gpu - without
                        line += (f"; QEMU 7.2 virtio-gpu-pci adds {delta / 1024:.2f} MiB to its process "
                                 f"({without / 1024:.1f} -> {with_gpu / 1024:.1f} MiB)")
                else:
                        line += "; QEMU did not start"
        print(line)
        return 0


if __name__ == "__main__":
        sys.exit(main())
