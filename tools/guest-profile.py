#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Where a guest's time went, from `majordome-vmm run --profile-guest FILE`.

Each sample line of FILE is "VCPU USEC RIP [WORD...]": the vCPU, the time
since the VM started, the guest's instruction pointer, and the words on the
top page of its stack that point into the kernel's text. Symbols come from
`nm -n ELF` (a vmlinux, or a test guest). Prints two tables, best first:

  self      the function holding RIP: where instructions ran;
  on stack  functions whose address is on the stack, counted once per
            sample: what was running them, roughly. A stale word left in
            a live frame counts too, so read it as a hint.

Stack words outside the ELF's executable sections (the VMM keeps what lies
in the span of its executable segments, which may hold data too) are
dropped. Each sample stands for 1/hz seconds of the vCPU's time (hz is in the
header). --from/--to keep a window of the run, --vcpu one vCPU.
"""

import argparse
import bisect
import collections
import subprocess
import sys


def load_symbols(elf: str):
        out = subprocess.run(["nm", "-n", elf], check=True, capture_output=True, text=True).stdout
        addrs, names = [], []
        for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in "tTwW":
                        addrs.append(int(parts[0], 16))
                        names.append(parts[2])
        if not addrs:
                sys.exit(f"{elf}: no text symbols (stripped?)")
        return addrs, names


def load_text_sections(elf: str):
        """(start, end) of each SHF_EXECINSTR section, from readelf."""
        out = subprocess.run(["readelf", "-SW", elf], check=True, capture_output=True, text=True).stdout
        spans = []
        for line in out.splitlines():
                # "  [ 1] .text  PROGBITS  ffffffff81000000 200000 600000 00  AX  0   0 4096"
                fields = line.replace("[ ", "[").split()
                if len(fields) < 8 or not fields[0].startswith("["):
                        continue
                try:
                        addr, size = int(fields[3], 16), int(fields[5], 16)
                except ValueError:
                        continue
                if "X" in fields[7] and size:
                        spans.append((addr, addr + size))
        return spans


def main() -> int:
        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("profile", help="the file --profile-guest wrote")
        ap.add_argument("elf", help="the guest kernel with symbols (vmlinux, or a test guest's .elf)")
        ap.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
        ap.add_argument("--from", dest="start", type=float, default=0.0, help="seconds since start, first kept")
        ap.add_argument("--to", dest="end", type=float, default=float("inf"), help="seconds since start, last kept")
        ap.add_argument("--vcpu", type=int, help="only this vCPU")
        args = ap.parse_args()

        addrs, names = load_symbols(args.elf)
        spans = load_text_sections(args.elf)

        def in_text(a: int) -> bool:
                return any(lo <= a < hi for lo, hi in spans)

        def symbol(a: int) -> str:
                i = bisect.bisect_right(addrs, a) - 1
                return names[i] if i >= 0 else f"?{a:x}"

        hz = 0
        self_count, stack_count = collections.Counter(), collections.Counter()
        n = 0
        with open(args.profile) as f:
                for line in f:
                        if line.startswith("#"):
                                for field in line.split():
                                        if field.startswith("hz="):
                                                hz = int(field[3:])
                                continue
                        fields = line.split()
                        if len(fields) < 3:
                                continue        # a line cut short by a full disk
                        vcpu, usec = int(fields[0]), int(fields[1])
                        if args.vcpu is not None and vcpu != args.vcpu:
                                continue
                        if not args.start <= usec / 1e6 <= args.end:
                                continue
                        n += 1
                        self_count[symbol(int(fields[2], 16))] += 1
                        words = (int(w, 16) for w in fields[3:])
                        for f_name in {symbol(w) for w in words if in_text(w)}:
                                stack_count[f_name] += 1
        if n == 0:
                print("no samples in the window")
                return 1

        seconds = f", {n / hz:.2f} s of vCPU time" if hz else ""
        print(f"{n} samples{seconds}")
        for title, counter in (("self", self_count), ("on stack", stack_count)):
                print(f"--- {title}")
                for name, c in counter.most_common(args.top):
                        print(f"{100 * c / n:6.2f}% {c:8d}  {name}")
        return 0


if __name__ == "__main__":
        sys.exit(main())
