#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Boots a test guest under QEMU through its PVH note, as a reference for
# our VMM: qemu-run.sh MACHINE ELF EXPECTED_CODE [QEMU ARGS...]
# EXPECTED_CODE is the guest's debug-exit value, or "reset" for a VM that
# must end by resetting. Exits 77 (skip) without QEMU or /dev/kvm.
set -u
machine=$1 elf=$2 expect=$3
shift 3
qemu=$(command -v qemu-system-x86_64) || { echo "no qemu-system-x86_64"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "no usable /dev/kvm"; exit 77; }
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
# This host's KVM rejects MSR_IA32_ARCH_CAPABILITIES and spins on the KVM
# PV features' vmcall (DESIGN.md).
timeout 60 "$qemu" -M "$machine" -accel kvm \
        -cpu host,-kvm-pv-ipi,-kvm-pv-sched-yield,-kvm-pv-unhalt,-arch-capabilities \
        -m 256 -nographic -no-reboot -nodefaults -serial stdio \
        -device isa-debug-exit,iobase=0xf4 -kernel "$elf" "$@" >"$out" 2>&1
rc=$?
tr -d '\r' <"$out"
if [ "$expect" = reset ]; then
        want=0
else
        want=$(( (expect << 1) | 1 ))
fi
if [ "$rc" -ne "$want" ]; then
        echo "qemu exited $rc, expected $want"
        exit 1
fi
if [ "$expect" = 0 ] && grep -q '^TEST .* FAIL' "$out"; then
        exit 1
fi
exit 0
