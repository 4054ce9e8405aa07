#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The rig kernel's boot to /init: majordome-vmm vs qemu -M microvm.

Both boot the same ../shared/linux-rig vmlinux (QEMU through its PVH note)
and the same busybox initramfs, with 256 MiB, 1 vCPU and the same command
line (console=ttyS0, the rig's cmdline, panic=-1). The init prints a marker
to the console and /dev/kmsg and reboots; the clock runs from posix_spawn to
the read of the serial pipe that brings the marker's first byte. Guest code
is emulated on these hosts (~3M instructions/s), so a boot takes tens of
seconds under either VMM: only the ratio means something.

The rig comes from --rig-dir (env MAJORDOME_RIG_DIR), else from the rig's
cache, else `linux-rig/build.sh` is run (about 10 minutes the first time);
when another build of the same rig is under way, this waits for it
(--build-wait seconds) instead of starting a second one.

Goal (issue "VMM core"): majordome <= 0.8x QEMU microvm's time.
"""

import argparse
import atexit
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

MARKER = b"MAJORDOME-BENCH-INIT"
GOAL_RATIO = 0.8
MEM_MIB = 256

INIT = """#!/bin/busybox sh
# linux-boot.py: report that /init runs, then end the VM.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
out "MAJORDOME-BENCH-INIT uptime=$(cat /proc/uptime)"
reboot -f
"""


def rig_ready(d: str) -> bool:
        return (os.path.isfile(os.path.join(d, "vmlinux")) and os.path.isfile(os.path.join(d, "bzImage"))
                and os.access(os.path.join(d, "busybox"), os.X_OK))


def find_rig(args) -> str:
        if args.rig_dir:
                if not rig_ready(args.rig_dir):
                        sys.exit(f"{args.rig_dir}: no vmlinux, bzImage and busybox there")
                return args.rig_dir
        script = os.path.join(args.linux_rig, "build.sh")
        if not os.path.exists(script):
                print(f"SKIP: no linux rig at {args.linux_rig} (set MAJORDOME_LINUX_RIG or --rig-dir)")
                sys.exit(bl.EXIT_SKIP)
        # The cache key of build.sh: the config, the patch and the script.
        h = hashlib.sha256()
        for name in ("config", "emulator-workarounds.patch", "build.sh"):
                with open(os.path.join(args.linux_rig, name), "rb") as f:
                        h.update(f.read())
        cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                             "majordome-linux-rig")
        dest = os.path.join(cache, h.hexdigest()[:12])
        if rig_ready(dest):
                return dest
        # build.sh has no lock: do not start a second 10-minute build next
        # to one that is running (a build.XXXXXX work dir touched recently).
        deadline = time.time() + args.build_wait
        while True:
                busy = [d for d in glob.glob(os.path.join(cache, "build.*"))
                        if time.time() - os.stat(d).st_mtime < 1800]
                if not busy:
                        break
                if time.time() > deadline:
                        print(f"SKIP: a linux-rig build is under way in {busy[0]}; run again when "
                              f"{dest} exists (or pass --build-wait SECONDS)")
                        sys.exit(bl.EXIT_SKIP)
                print(f"waiting for the linux-rig build in {busy[0]} ...", flush=True)
                time.sleep(min(30, max(1, deadline - time.time())))
                if rig_ready(dest):
                        return dest
        if args.no_build:
                print(f"SKIP: the linux rig is not built ({dest}); run {script}")
                sys.exit(bl.EXIT_SKIP)
        print(f"building the linux rig with {script} (about 10 minutes the first time) ...", flush=True)
        out = subprocess.run([script], stdout=subprocess.PIPE, check=True, text=True).stdout.strip()
        d = out.splitlines()[-1] if out else dest
        if not rig_ready(d):
                sys.exit(f"{script} printed {d!r}, which holds no rig")
        return d


def main() -> int:
        p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        bl.add_common_args(p)
        p.add_argument("--linux-rig", default=os.environ.get(
                       "MAJORDOME_LINUX_RIG", os.path.join(os.path.dirname(bl.REPO), "shared", "linux-rig")),
                       help="the linux-rig scripts (env MAJORDOME_LINUX_RIG; default <repo>/../shared/linux-rig)")
        p.add_argument("--rig-dir", default=os.environ.get("MAJORDOME_RIG_DIR"),
                       help="a built rig: vmlinux, bzImage, busybox (env MAJORDOME_RIG_DIR)")
        p.add_argument("--no-build", action="store_true", help="skip instead of building the rig")
        p.add_argument("--build-wait", type=float, default=0,
                       help="seconds to wait for a rig build that is under way (default 0: skip)")
        p.add_argument("--kernel", choices=("vmlinux", "bzImage"), default="vmlinux",
                       help="which rig image both VMMs boot (default vmlinux)")
        p.add_argument("-n", "--runs", type=int, default=1, help="boots per VMM (default 1)")
        p.add_argument("--timeout", type=float, default=240.0, help="seconds per boot")
        p.add_argument("--log-dir", help="keep each boot's serial output there")
        args = p.parse_args()
        bl.resolve_paths(args)
        rig = find_rig(args)
        kernel = os.path.join(rig, args.kernel)
        with open(os.path.join(args.linux_rig, "cmdline")) as f:
                cmdline = f"console=ttyS0 {f.read().strip()} panic=-1"

        tmp = tempfile.mkdtemp(prefix="majordome-bench-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        init = os.path.join(tmp, "init")
        with open(init, "w") as f:
                f.write(INIT)
        initrd = os.path.join(tmp, "initramfs.cpio")
        subprocess.run([os.path.join(args.linux_rig, "mkinitramfs.sh"), rig, init, initrd], check=True)

        vmms = {"majordome": [args.vmm, "run", "--mem", f"{MEM_MIB}M", "--cpus", "1",
                              "--initrd", initrd, "--cmdline", cmdline, kernel]}
        if args.qemu:
                vmms["qemu-microvm"] = bl.qemu_argv(args.qemu, "microvm", kernel, MEM_MIB,
                                                    extra=["-initrd", initrd, "-append", cmdline])
        print(f"linux-boot: {kernel}, initramfs {initrd}, {MEM_MIB} MiB, 1 vCPU", flush=True)
        print(f"  cmdline: {cmdline}", flush=True)
        times = {k: [] for k in vmms}
        firsts = {k: [] for k in vmms}
        for i in range(args.runs):
                for name, argv in vmms.items():
                        run = bl.Run(argv)
                        t = run.read_until(MARKER, args.timeout)
                        rc = run.wait(10.0)
                        if args.log_dir:
                                os.makedirs(args.log_dir, exist_ok=True)
                                with open(os.path.join(args.log_dir, f"{name}-{i}.log"), "wb") as f:
                                        f.write(run.output)
                        if t is None:
                                print(f"{name}: no {MARKER.decode()} within {args.timeout:.0f} s:\n  "
                                      f"{run.describe_failure()}", file=sys.stderr)
                                return 1
                        times[name].append(t[0])
                        firsts[name].append(run.t_first_byte)
                        print(f"  {name:13} run {i}: /init at {t[0]:.2f} s (first serial byte "
                              f"{run.t_first_byte:.2f} s, exit {rc} at {run.t_exit or float('nan'):.2f} s)",
                              flush=True)

        ours = bl.median(times["majordome"])
        parts = [f"majordome {ours:.2f} s"]
        if args.qemu:
                q = bl.median(times["qemu-microvm"])
                ratio = ours / q
                ok = ratio <= GOAL_RATIO
                parts.append(f"qemu-microvm {q:.2f} s")
                tail = f"; ratio {ratio:.2f}x (goal <= {GOAL_RATIO}x): {bl.verdict(ok)}"
        else:
                ok = True
                tail = "; no QEMU to compare with: SKIP"
        print(f"linux-boot to /init (median of {args.runs}): {', '.join(parts)}{tail}")
        if not args.qemu:
                return bl.EXIT_SKIP
        return 0 if ok else 1


if __name__ == "__main__":
        sys.exit(main())
