#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A shared folder (virtio-fs over vhost-user, Debian's virtiofsd): majordome-vmm vs QEMU 7.2.

Both VMMs boot the rig kernel (../shared/linux-rig) with the same busybox
initramfs and 256 MiB, and share the same host directory through the same
/usr/lib/qemu/virtiofsd with the same options (`-o sandbox=chroot
-o cache=auto`): majordome-vmm starts it itself (`--shared-dir`), QEMU gets
one on a socket (`vhost-user-fs-pci` with a shared memfd memory backend,
as QEMU's documentation asks; `-M pc` with `acpi=off`). In the guest, /init
mounts the share and runs, each between two console markers:
  read   `dd` of a 16 MiB file the host wrote (the guest's page cache dropped first)
  write  `dd` of 16 MiB to a new file, then `sync`
  ls     `ls -l` of a directory of 200 files
The times are the host's, between the markers' arrival on the serial pipe.
Guest code is emulated on these hosts (~3M instructions/s): only ratios mean
something. The physical limit printed beside them is the host's own read of
the same file (page cache) in the same run.

Goal (issue "Device processes: vhost-user, shared folders"): every time
<= 1.0x QEMU's.
"""

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import importlib  # noqa: E402

linux_boot = importlib.import_module("linux-boot")

GOAL_RATIO = 1.0
MEM_MIB = 256
FILE_MIB = 16
N_FILES = 200
VIRTIOFSD = os.environ.get("MAJORDOME_VIRTIOFSD", "/usr/lib/qemu/virtiofsd")
STEPS = ("read", "write", "ls")

INIT = """#!/bin/busybox sh
# virtiofs-bench.py: time three operations on a virtio-fs share.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
$bb mkdir -p /mnt
if ! $bb mount -t virtiofs benchfs /mnt; then
        out "FSBENCH-FAIL mount"
        $bb reboot -f
fi
echo 3 > /proc/sys/vm/drop_caches
out "FSBENCH-read-start"
$bb dd if=/mnt/big of=/dev/null bs=1M 2>/dev/null
out "FSBENCH-read-end"
out "FSBENCH-write-start"
$bb dd if=/dev/zero of=/mnt/out bs=1M count=%(mib)d 2>/dev/null
$bb sync
out "FSBENCH-write-end"
out "FSBENCH-ls-start"
$bb ls -l /mnt/many > /dev/null
out "FSBENCH-ls-end"
out "FSBENCH-done"
$bb reboot -f
""" % {"mib": FILE_MIB}


def make_share(d: str) -> None:
        if os.path.exists(d):
                shutil.rmtree(d)
        os.makedirs(os.path.join(d, "many"))
        with open(os.path.join(d, "big"), "wb") as f:
                f.write(os.urandom(FILE_MIB << 20))
        for i in range(N_FILES):
                open(os.path.join(d, "many", f"f{i:03d}"), "w").close()


def host_read_seconds(path: str) -> float:
        """The physical limit: the host reads the file (warm page cache)."""
        with open(path, "rb") as f:
                f.read()
        t = time.perf_counter()
        with open(path, "rb") as f:
                while f.read(1 << 20):
                        pass
        return time.perf_counter() - t


def run_one(name: str, argv: list, timeout: float, log_dir):
        run = bl.Run(argv)
        times = {}
        try:
                for step in STEPS:
                        t0 = run.read_until(f"FSBENCH-{step}-start".encode(), timeout)
                        t1 = run.read_until(f"FSBENCH-{step}-end".encode(), timeout)
                        if t0 is None or t1 is None:
                                print(f"{name}: no FSBENCH-{step} markers within {timeout:.0f} s:\n  "
                                      f"{run.describe_failure()}", file=sys.stderr)
                                return None
                        times[step] = t1[0] - t0[0]
                run.wait(30.0)
        finally:
                if run.returncode is None:
                        run.kill()
                if log_dir:
                        os.makedirs(log_dir, exist_ok=True)
                        with open(os.path.join(log_dir, f"{name}.log"), "wb") as f:
                                f.write(run.output)
        return times


def main() -> int:
        p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        bl.add_common_args(p)
        p.add_argument("--linux-rig", default=os.environ.get(
                       "MAJORDOME_LINUX_RIG", os.path.join(os.path.dirname(bl.REPO), "shared", "linux-rig")))
        p.add_argument("--rig-dir", default=os.environ.get("MAJORDOME_RIG_DIR"))
        p.add_argument("--no-build", action="store_true", help="skip instead of building the rig")
        p.add_argument("--build-wait", type=float, default=0)
        p.add_argument("--timeout", type=float, default=600.0, help="seconds from the start to each marker (the boot included)")
        p.add_argument("--log-dir", help="keep each VM's serial output there")
        p.add_argument("-n", "--runs", type=int, default=1,
                       help="boots per VMM, alternating (default 1); each time is the median")
        args = p.parse_args()
        bl.resolve_paths(args)
        if os.geteuid() != 0 or not os.access(VIRTIOFSD, os.X_OK):
                print(f"SKIP: virtiofsd ({VIRTIOFSD}) needs root and must be installed (qemu-system-common)")
                return bl.EXIT_SKIP
        rig = linux_boot.find_rig(args)
        kernel = os.path.join(rig, "vmlinux")
        with open(os.path.join(args.linux_rig, "cmdline")) as f:
                cmdline = f"console=ttyS0 {f.read().strip()} panic=-1"

        tmp = tempfile.mkdtemp(prefix="majordome-fsbench-")
        os.chmod(tmp, 0o755)
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        init = os.path.join(tmp, "init")
        with open(init, "w") as f:
                f.write(INIT)
        initrd = os.path.join(tmp, "initramfs.cpio")
        subprocess.run([os.path.join(args.linux_rig, "mkinitramfs.sh"), rig, init, initrd], check=True,
                       stdout=subprocess.DEVNULL)
        share = os.path.join(tmp, "share")

        runs = {"majordome": [], "qemu": []}
        make_share(share)
        limit = host_read_seconds(os.path.join(share, "big"))
        for i in range(args.runs):
                make_share(share)
                got = run_one(f"majordome-{i}", [
                        args.vmm, "run", "--mem", f"{MEM_MIB}M", "--cpus", "1", "--initrd", initrd,
                        "--shared-dir", f"{share}:benchfs:cache=auto", "--cmdline", cmdline, kernel], args.timeout,
                        args.log_dir)
                if got is None:
                        return 1
                runs["majordome"].append(got)
                if not args.qemu:
                        continue
                got = run_qemu(args, i, kernel, initrd, cmdline, share, tmp)
                if got is None:
                        return 1
                runs["qemu"].append(got)
        results = {name: {s: bl.median([r[s] for r in rs]) for s in STEPS} for name, rs in runs.items() if rs}
        report_runs(runs)
        return report(args, results, limit)


def report_runs(runs) -> None:
        for name, rs in runs.items():
                for i, r in enumerate(rs):
                        print(f"  {name:9} run {i}: " + ", ".join(f"{s} {r[s]:.2f} s" for s in STEPS), flush=True)


def run_qemu(args, i, kernel, initrd, cmdline, share, tmp):
        """One QEMU boot on its own virtiofsd, started as QEMU's documentation says."""
        make_share(share)
        sock = os.path.join(tmp, "virtiofsd.sock")
        fsd = subprocess.Popen([VIRTIOFSD, f"--socket-path={sock}", "-o", f"source={share}",
                                "-o", "sandbox=chroot", "-o", "cache=auto", "-o", "log_level=err"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
                if os.path.exists(sock):
                        break
                time.sleep(0.05)
        try:
                return run_one(f"qemu-{i}", bl.qemu_argv(args.qemu, "pc", kernel, MEM_MIB, extra=[
                        "-initrd", initrd, "-append", cmdline + " acpi=off",
                        "-object", f"memory-backend-memfd,id=mem,size={MEM_MIB}M,share=on",
                        "-numa", "node,memdev=mem",
                        "-chardev", f"socket,id=fs0,path={sock}",
                        "-device", "vhost-user-fs-pci,chardev=fs0,tag=benchfs"]), args.timeout, args.log_dir)
        finally:
                fsd.kill()
                fsd.wait()
                if os.path.exists(sock):
                        os.unlink(sock)


def report(args, results, limit) -> int:
        ours = results["majordome"]
        ok = True
        print(f"virtiofs (median of {args.runs}): {FILE_MIB} MiB file, {N_FILES} files; host read of the file {limit * 1000:.1f} ms "
              f"({FILE_MIB / limit:.0f} MiB/s, the physical limit)")
        for step in STEPS:
                line = f"  {step:5} majordome {ours[step]:.2f} s"
                if step != "ls":
                        line += f" ({FILE_MIB / ours[step]:.1f} MiB/s, {limit / ours[step]:.4f}x the host's read)"
                if args.qemu:
                        q = results["qemu"][step]
                        ratio = ours[step] / q
                        ok = ok and ratio <= GOAL_RATIO
                        line += f", qemu {q:.2f} s, ratio {ratio:.2f}x"
                print(line, flush=True)
        if not args.qemu:
                print("virtiofs vs QEMU: no QEMU to compare with: SKIP")
                return bl.EXIT_SKIP
        worst = max(ours[s] / results["qemu"][s] for s in STEPS)
        print(f"virtiofs vs QEMU: worst ratio {worst:.2f}x (goal <= {GOAL_RATIO}x): {bl.verdict(ok)}")
        return 0 if ok else 1


if __name__ == "__main__":
        sys.exit(main())
