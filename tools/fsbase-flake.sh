#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Diagnostic for issue #16: runs the fsbase test guest (tests/guest/fsbase)
# on 2 vCPUs for SECONDS and reports whether any user-mode %fs load saw a
# wrong TLS block. MODE decides where the host puts the vCPU threads:
#   free     the scheduler's choice (what the rig test does)
#   same     the whole VMM on host CPU 0 (taskset)
#   split    vcpu0 on CPU 0, vcpu1 on CPU 1, fixed
#   migrate  each vCPU thread moved to the other host CPU about every 0.1 s
#   restart  SECONDS separate 1-second runs (many first entries to user mode)
# Usage: tools/fsbase-flake.sh BUILD_DIR MODE [SECONDS] [TICK_HZ]
# Exit status: the VMM's (0 = no bad load seen).
set -eu
build=$1 mode=$2 seconds=${3:-60} hz=${4:-250}
vmm=$build/vmm/majordome-vmm
guest=$build/tests/guest/fsbase.elf
args="run --cpus 2 --debug-exit --cmdline seconds=$seconds\ tick_hz=$hz $guest"

# The vCPU threads live in the VMM's jailed child (its own pid namespace).
vcpu_tids() {
        ps -eLo pid=,ppid=,tid=,comm= | awk -v p="$1" '($1 == p || $2 == p) && $4 ~ /^vcpu/ { print $4, $3 }'
}

case $mode in
restart)
        i=0 bad=0
        while [ $i -lt "$seconds" ]; do
                out=$($vmm run --cpus 2 --debug-exit --cmdline "seconds=1 tick_hz=$hz" "$guest" </dev/null 2>&1) ||
                        { bad=$((bad + 1)); echo "run $i failed:"; echo "$out" | tail -4; }
                i=$((i + 1))
        done
        echo "fsbase restart: $i runs, $bad failed"
        [ $bad -eq 0 ]; exit $? ;;
same) exec taskset -c 0 sh -c "exec $vmm $args" </dev/null ;;
free) exec sh -c "exec $vmm $args" </dev/null ;;
split | migrate) ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac

sh -c "exec $vmm $args" </dev/null &
pid=$!
sleep 0.3
flip=0
while kill -0 $pid 2>/dev/null; do
        vcpu_tids $pid | while read -r name tid; do
                i=${name#vcpu}
                cpu=$(( (i + flip) % 2 ))
                taskset -p -c $cpu "$tid" >/dev/null 2>&1 || true
        done
        [ "$mode" = split ] && { wait $pid; exit $?; }
        flip=$((1 - flip))
        sleep 0.02
done
wait $pid
