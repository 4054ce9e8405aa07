#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Start of the VMM to the first serial byte of the `hello` test guest.

majordome-vmm, `qemu -M microvm` and `qemu -M q35` boot the same hello.elf
(QEMU through its PVH note) with 256 MiB and 1 vCPU; the runs are
interleaved so that host noise hits all three alike. The clock starts just
before posix_spawn and stops at the read of the serial pipe that brings the
first byte of "Hello" (q35 prints SeaBIOS output before it; that is reported
separately as "any byte"). Also reported: time until the VMM has exited.

Goal (issue "VMM core"): first byte <= 20 ms and <= 1/50 of QEMU q35.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

MARKER = b"Hello from a Majordome guest"
GOAL_MS = 20.0
GOAL_Q35_FRACTION = 50.0


def main() -> int:
        p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        bl.add_common_args(p)
        p.add_argument("-n", "--runs", type=int, default=20,
                       help="runs of majordome-vmm and qemu microvm (default 20)")
        p.add_argument("--q35-runs", type=int, default=5,
                       help="runs of qemu q35, ~4 s each here (default 5)")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
        p.add_argument("-v", "--verbose", action="store_true", help="print every run")
        args = p.parse_args()
        bl.resolve_paths(args)
        hello = bl.guest(args, "hello")

        vmms = {"majordome": ([args.vmm, "run", "--mem", "256M", "--cpus", "1", "--debug-exit", hello],
                              args.runs, 0)}
        if args.qemu:
                # isa-debug-exit: exit code (0 << 1) | 1.
                vmms["qemu-microvm"] = (bl.qemu_argv(args.qemu, "microvm", hello), args.runs, 1)
                vmms["qemu-q35"] = (bl.qemu_argv(args.qemu, "q35", hello), args.q35_runs, 1)

        first = {k: [] for k in vmms}   # first byte of "Hello"
        anyb = {k: [] for k in vmms}    # first byte of any serial output
        exits = {k: [] for k in vmms}   # process exit
        print(f"boot-latency: {args.vmm} vs {args.qemu or 'no QEMU'}, guest {hello}, 256 MiB, 1 vCPU",
              flush=True)
        for i in range(max(v[1] for v in vmms.values())):
                for name, (argv, runs, want_rc) in vmms.items():
                        if i >= runs:
                                continue
                        run = bl.Run(argv)
                        t = run.read_until(MARKER, args.timeout)
                        rc = run.wait(args.timeout)
                        if t is None or rc != want_rc:
                                print(f"{name}: run {i} failed:\n  {run.describe_failure()}", file=sys.stderr)
                                return 1
                        first[name].append(t[0])
                        anyb[name].append(run.t_first_byte)
                        exits[name].append(run.t_exit)
                        if args.verbose:
                                print(f"  {name:13} run {i:2}: hello {bl.fmt_ms(t[0])}, any byte "
                                      f"{bl.fmt_ms(run.t_first_byte)}, exit {bl.fmt_ms(run.t_exit)}", flush=True)

        print(f"{'':13} {'runs':>4} {'hello med':>10} {'hello p90':>10} {'any byte med':>12} {'exit med':>10}")
        for name in vmms:
                print(f"{name:13} {len(first[name]):4} {bl.fmt_ms(bl.median(first[name])):>10} "
                      f"{bl.fmt_ms(bl.percentile(first[name], 90)):>10} "
                      f"{bl.fmt_ms(bl.median(anyb[name])):>12} {bl.fmt_ms(bl.median(exits[name])):>10}")

        # The floor under our first byte that no VMM work can remove: exec,
        # the dynamic loader and exit of the same binary, timed the same way.
        floor = []
        for _ in range(args.runs):
                run = bl.Run([args.vmm, "--version"])
                run.wait(args.timeout)
                floor.append(run.t_exit)
        print(f"majordome-vmm --version (exec + dynamic loading + exit): median {bl.fmt_ms(bl.median(floor))}")

        ours = bl.median(first["majordome"])
        parts = [f"majordome {bl.fmt_ms(ours)}"]
        ok = ours * 1e3 <= GOAL_MS
        ratio = ""
        if args.qemu:
                micro = bl.median(first["qemu-microvm"])
                q35 = bl.median(first["qemu-q35"])
                parts += [f"qemu-microvm {bl.fmt_ms(micro)}", f"qemu-q35 {bl.fmt_ms(q35)}"]
                ratio = (f"; ratio vs microvm {bl.fmt_ratio(ours, micro)}, "
                         f"vs q35 {bl.fmt_ratio(ours, q35)}")
                ok = ok and ours * GOAL_Q35_FRACTION <= q35
                goal = f"goal <= 1/{GOAL_Q35_FRACTION:.0f} of q35, <= {GOAL_MS:.0f} ms"
        else:
                goal = f"goal <= {GOAL_MS:.0f} ms; the q35 ratio needs QEMU"
        print(f"first-byte (median): {', '.join(parts)}{ratio} ({goal}): {bl.verdict(ok)}")
        return 0 if ok else 1


if __name__ == "__main__":
        sys.exit(main())
