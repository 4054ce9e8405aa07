#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Runs every benchmark of bench/ one after the other (never in parallel: they
# time each other's peers) and repeats their summary lines at the end.
# Usage: bench/run-all.sh [BUILD_DIR]
#   BUILD_DIR (or env MAJORDOME_BUILD_DIR) holds vmm/majordome-vmm and
#   tests/guest/*.elf; MAJORDOME_VMM, MAJORDOME_GUEST_DIR, MAJORDOME_RIG_DIR,
#   MAJORDOME_LINUX_RIG and QEMU are passed on to the scripts.
# Exit status: 0 when every goal is met or skipped, 1 when one is missed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
        MAJORDOME_BUILD_DIR=$1
        export MAJORDOME_BUILD_DIR
fi
log=$(mktemp) || exit 1
rcf=$(mktemp) || exit 1
trap 'rm -f "$log" "$rcf"' EXIT
failed=0
for b in boot-latency memory-overhead linux-boot virtiofs-bench dbus-bench; do
        echo "== $b"
        # A pipeline's status is tee's: the script's goes through a file.
        { python3 "$here/$b.py"; echo $? >"$rcf"; } 2>&1 | tee -a "$log"
        case $(cat "$rcf") in
        0|77) ;;
        *) failed=1 ;;
        esac
done
echo "== summary"
grep -E '^(first-byte|memory-overhead \(|linux-boot to|virtiofs vs QEMU|dbus:|SKIP)' "$log"
exit $failed
