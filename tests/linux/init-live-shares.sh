#!/bin/busybox sh
# /init for the live-share test (tests/daemon/test-majordomed-shares.py): a
# VM started with live_shares mounts the live root (tag "majordome"), says
# LIVE-READY, and waits for the host to share a directory as "data" while it
# runs; reads the host's file, writes one back, checks the root itself is
# read-only, says LIVE-WROTE, then waits for the host to take the share away.
# Results are lines "LIVE <check> PASS|FAIL detail"; reboot -f ends the VM.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
report() { out "LIVE $1 $2 $3"; }
# The guest is emulated here: seconds, not tenths.
wait_for() { i=0; while ! eval "$1" && [ $i -lt 180 ]; do $bb sleep 1; i=$((i + 1)); done; eval "$1"; }

$bb mkdir -p /mnt/live
if $bb mount -t virtiofs majordome /mnt/live 2>/tmp/err; then
        report mount PASS "majordome on /mnt/live"
else
        report mount FAIL "$($bb cat /tmp/err)"
fi
out "LIVE-READY"

if wait_for '[ -f /mnt/live/data/hello ]'; then
        got=$($bb cat /mnt/live/data/hello)
        [ "$got" = MAJORDOME-LIVE-HOST ] && report read PASS "data/hello" || report read FAIL "data/hello: '$got'"
else
        report read FAIL "no /mnt/live/data/hello after 180 s: $($bb ls -A /mnt/live)"
fi
if echo MAJORDOME-LIVE-GUEST > /mnt/live/data/from-guest && $bb sync; then
        report write PASS "data/from-guest"
else
        report write FAIL "data/from-guest"
fi
if $bb touch /mnt/live/stray 2>/tmp/err; then
        report root-read-only FAIL "created /mnt/live/stray"
else
        report root-read-only PASS "$($bb cat /tmp/err)"
fi
out "LIVE-WROTE"

if wait_for '[ ! -e /mnt/live/data ]'; then
        report gone PASS "data left the live root"
else
        report gone FAIL "/mnt/live/data still there"
fi
out "LIVE-DONE"
$bb reboot -f
