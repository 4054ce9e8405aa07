#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Cost of the sandbox, with and without it in the same run:
- start-up: spawn of `majordome-vmm run --debug-exit hello.elf` to its exit,
  sandboxed (default) and with --disable-sandbox, alternating; the
  difference of the medians is what the jail and the filters add (policy
  compilation, namespaces, fork, pivot_root, filters);
- block I/O (sandbox-block-bench): three virtio-block devices on one image
  driven through the PCI transport by the tests/virtio fake guest, one
  whose worker runs unfiltered (--disable-sandbox), one under a filter that
  allows everything (what any filter costs on this kernel), and one
  activated from a vcpu-role thread with the sandbox on, so its worker runs
  under the virtio-block filter as in a jailed VMM; 64 KiB sequential and
  4 KiB random, reads and writes, interleaved rounds;
  goal sandboxed >= 0.97 x unsandboxed for each size (FLOOR when only the
  kernel's own filter cost misses it; see bench/README.md).
Exit 0 when the block goal is met, 1 when missed, 77 without /dev/kvm."""
import argparse
import os
import statistics
import subprocess
import sys
import time


def run_once(vmm, guest, extra):
    t0 = time.perf_counter()
    r = subprocess.run([vmm, 'run', '--debug-exit'] + extra + [guest],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise SystemExit('majordome-vmm failed (%d): %s' % (r.returncode, r.stderr.decode()))
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--build-dir', default='build')
    ap.add_argument('--runs', type=int, default=30)
    ap.add_argument('--rounds', type=int, default=15)
    ap.add_argument('--dir', default='/var/tmp', help='where the block image goes')
    a = ap.parse_args()
    vmm = os.environ.get('MAJORDOME_VMM', os.path.join(a.build_dir, 'vmm', 'majordome-vmm'))
    guest = os.path.join(os.environ.get('MAJORDOME_GUEST_DIR', os.path.join(a.build_dir, 'tests', 'guest')),
                         'hello.elf')
    bench = os.path.join(a.build_dir, 'tests', 'virtio', 'sandbox-block-bench')
    try:
        os.close(os.open('/dev/kvm', os.O_RDWR))
    except OSError as e:
        print('SKIP: /dev/kvm: %s' % e.strerror)
        return 77

    on, off = [], []
    for _ in range(a.runs):
        on.append(run_once(vmm, guest, []))
        off.append(run_once(vmm, guest, ['--disable-sandbox']))
    m_on, m_off = statistics.median(on), statistics.median(off)
    print('start-up to exit of hello (%d runs each): sandbox %.1f ms, --disable-sandbox %.1f ms, '
          'jail + seccomp cost %.1f ms (median)' % (a.runs, m_on, m_off, m_on - m_off))

    r = subprocess.run([bench, a.dir, '64', str(a.rounds)], stdout=subprocess.PIPE)
    out = r.stdout.decode()
    print(out, end='')
    verdicts = [l for l in out.splitlines() if l.endswith(('PASS', 'FAIL', 'FLOOR'))]
    if r.returncode not in (0, 1) or len(verdicts) != 2:
        raise SystemExit('sandbox-block-bench failed (%d)' % r.returncode)
    ok = r.returncode == 0
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
