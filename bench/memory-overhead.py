#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Memory the VMM itself costs: RSS minus the guest pages touched.

Boots the `spin` test guest (it prints "spin: ready", then a tick every
100 ms, forever) with 256 MiB and 1 vCPU under majordome-vmm and, on the
same ELF, QEMU -M microvm and -M q35; once a few ticks have gone by it reads
/proc/PID/smaps:

  overhead = Rss of every mapping - Rss of the guest-RAM mapping

The guest-RAM mapping of majordome-vmm is the memfd "/memfd:guest-ram"; for
QEMU it is the anonymous mapping of exactly the guest's size (else the
smallest one at least that large). The jailed majordome-vmm is two
processes, a supervisor and the VMM in a pid namespace below it: every
column is summed over both, and the per-process Rss is printed. Rss counts
shared library pages in full in each process, as `ps` does, so the pair's
Rss counts libc twice; Pss (each shared page split between the processes
that map it) does not, and the private (anonymous + private file) column is
what is the VMM's alone. Memory the host kernel spends for KVM (page
tables, vCPU state) is not in any of these.

Goal (issue "VMM core"): overhead <= 3 MiB for 1 vCPU, 256 MiB, judged on
the summed Rss (the stricter measure, the one the issue names), jailed and
with --disable-sandbox.
"""

import argparse
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

MEM_MIB = 256
GOAL_MIB = 3.0
HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) (\S+) (\S+) (\S+)\s*(.*)$")


def read_smaps(pid: int) -> list:
        """[{start, end, perms, name, Rss, Pss, Private_Clean, ...}] in KiB."""
        maps = []
        with open(f"/proc/{pid}/smaps") as f:
                for line in f:
                        m = HEADER.match(line)
                        if m:
                                maps.append({"start": int(m.group(1), 16), "end": int(m.group(2), 16),
                                             "perms": m.group(3), "name": m.group(7).strip()})
                                continue
                        key, _, rest = line.partition(":")
                        fields = rest.split()
                        if maps and len(fields) == 2 and fields[1] == "kB":
                                maps[-1][key] = int(fields[0])
        return maps


def descendants(pid: int) -> list:
        """pid and every process below it (the jailed VMM is a supervisor
        with the VM in a child, in its own PID namespace)."""
        pids, todo = [], [pid]
        while todo:
                p = todo.pop()
                pids.append(p)
                try:
                        for task in os.listdir(f"/proc/{p}/task"):
                                with open(f"/proc/{p}/task/{task}/children") as f:
                                        todo += [int(c) for c in f.read().split()]
                except FileNotFoundError:
                        pass
        return pids


def guest_mapping(maps: list, kind: str, mem_bytes: int):
        if kind.startswith("majordome"):
                cands = [m for m in maps if m["name"].startswith("/memfd:guest-ram")]
        else:
                cands = [m for m in maps if m["name"] == "" and "rw" in m["perms"]
                         and m["end"] - m["start"] >= mem_bytes]
                cands.sort(key=lambda m: m["end"] - m["start"])
        return cands[0] if cands else None


def measure(name: str, argv: list, settle: float, timeout: float) -> dict:
        run = bl.Run(argv)
        try:
                t = run.read_until(b"spin: ready", timeout)
                if t is None:
                        raise RuntimeError(f"{name}: no 'spin: ready':\n  {run.describe_failure()}")
                # A few timer ticks: devices, timers and the vCPU loop all ran.
                deadline = time.perf_counter() + timeout
                while run.read_until(b"spin: tick 3", 0.1 + time.perf_counter() - run.t0) is None:
                        if time.perf_counter() > deadline or run.fd is None:
                                raise RuntimeError(f"{name}: no 'spin: tick 3':\n  {run.describe_failure()}")
                time.sleep(settle)
                procs = [(p, read_smaps(p)) for p in descendants(run.pid)]
        finally:
                run.kill()
        maps = [m for _, pm in procs for m in pm]
        g = guest_mapping(maps, name, MEM_MIB << 20)
        if g is None:
                raise RuntimeError(f"{name}: guest RAM mapping not found in /proc/PID/smaps")

        def total(key):
                return sum(m.get(key, 0) for m in maps)

        def private(m):
                return m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
        return {
                "rss": total("Rss"),
                "guest": g.get("Rss", 0),
                "overhead": total("Rss") - g.get("Rss", 0),
                "pss_overhead": total("Pss") - g.get("Pss", 0),
                "private_overhead": sum(private(m) for m in maps) - private(g),
                "anon_overhead": total("Anonymous") - g.get("Anonymous", 0),
                "maps": maps,
                "guest_map": g,
                # Rss of each process without the guest RAM, in tree order.
                "per_process": [sum(m.get("Rss", 0) for m in pm if m is not g) for _, pm in procs],
        }


def mib(kib: float) -> str:
        return f"{kib / 1024:.2f} MiB"


def main() -> int:
        p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        bl.add_common_args(p)
        p.add_argument("-n", "--runs", type=int, default=3, help="boots per VMM (median; default 3)")
        p.add_argument("--settle", type=float, default=0.3, help="seconds to wait after tick 3")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds per boot")
        p.add_argument("--top", type=int, default=0, metavar="N",
                       help="print the N largest non-guest mappings of each VMM (by Rss)")
        args = p.parse_args()
        bl.resolve_paths(args)
        spin = bl.guest(args, "spin")

        vmms = {"majordome": [args.vmm, "run", "--mem", f"{MEM_MIB}M", "--cpus", "1", spin],
                # The same without the jail's supervisor process, whose shared
                # pages (libc, ...) Rss counts a second time.
                "majordome-nojail": [args.vmm, "run", "--disable-sandbox", "--mem", f"{MEM_MIB}M", "--cpus", "1",
                                     spin]}
        if args.qemu:
                vmms["qemu-microvm"] = bl.qemu_argv(args.qemu, "microvm", spin, MEM_MIB)
                vmms["qemu-q35"] = bl.qemu_argv(args.qemu, "q35", spin, MEM_MIB)

        print(f"memory-overhead: {args.vmm} vs {args.qemu or 'no QEMU'}, guest {spin}, "
              f"{MEM_MIB} MiB, 1 vCPU", flush=True)
        res = {k: [] for k in vmms}
        for _ in range(args.runs):
                for name, argv in vmms.items():
                        try:
                                res[name].append(measure(name, argv, args.settle, args.timeout))
                        except RuntimeError as e:
                                print(e, file=sys.stderr)
                                return 1

        med = {}
        print(f"{'':13} {'Rss':>10} {'guest Rss':>10} {'overhead':>10} {'Pss ovh':>10} "
              f"{'private ovh':>12} {'anon ovh':>10}")
        for name, runs in res.items():
                runs.sort(key=lambda r: r["overhead"])
                m = runs[len(runs) // 2]
                med[name] = m
                print(f"{name:13} {mib(m['rss']):>10} {mib(m['guest']):>10} {mib(m['overhead']):>10} "
                      f"{mib(m['pss_overhead']):>10} {mib(m['private_overhead']):>12} "
                      f"{mib(m['anon_overhead']):>10}")
                if len(m["per_process"]) > 1:
                        print(f"    Rss per process (supervisor first): "
                              f"{' + '.join(mib(k) for k in m['per_process'])}")
                if args.top:
                        big = sorted((x for x in m["maps"] if x is not m["guest_map"]),
                                     key=lambda x: -x.get("Rss", 0))[:args.top]
                        for x in big:
                                print(f"    {x.get('Rss', 0):6} KiB Rss {x.get('Pss', 0):6} KiB Pss "
                                      f"{x['perms']} {x['name'] or '[anon]'}")

        ours = med["majordome"]["overhead"]
        nojail = med["majordome-nojail"]["overhead"]
        parts = [f"majordome {mib(ours)} (Pss {mib(med['majordome']['pss_overhead'])})",
                 f"majordome-nojail {mib(nojail)}"]
        ratio = ""
        if args.qemu:
                micro = med["qemu-microvm"]["overhead"]
                q35 = med["qemu-q35"]["overhead"]
                parts += [f"qemu-microvm {mib(micro)}", f"qemu-q35 {mib(q35)}"]
                ratio = f"; ratio vs microvm {bl.fmt_ratio(ours, micro)}, vs q35 {bl.fmt_ratio(ours, q35)}"
        ok = max(ours, nojail) / 1024 <= GOAL_MIB
        print(f"memory-overhead (Rss - guest Rss, median of {args.runs}): {', '.join(parts)}{ratio} "
              f"(goal <= {GOAL_MIB:g} MiB): {bl.verdict(ok)}")
        return 0 if ok else 1


if __name__ == "__main__":
        sys.exit(main())
