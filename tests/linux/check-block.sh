# virtio-block check for the combined real-Linux /init (sourced, busybox sh).
# Expects the VMM started with
#   --block DISK,sparse=true,id=linuxtest-disk --block RO,ro
# (DISK at least 4 MiB of zeroes, RO any size) and prints
#   LINUXTEST block-<name> PASS|FAIL detail
# Host side, after the VM ended: DISK holds 64 KiB of "MAJORDOME-BLOCK\n"
# repeated at byte 65536; bytes 1-2 MiB read as zeroes (discarded: a hole in
# the sparse image); when the /init printed "LINUXTEST block-resize WAIT", the
# host ran `majordome-vmm disk-resize SOCKET 0 <2 x DISK size>` and DISK has
# that size. Without a resize within BLOCK_RESIZE_WAIT seconds (default 60)
# block-resize reports FAIL.

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
block_report() { out "LINUXTEST block-$1 $2 $3"; }

if [ -e /sys/block/vda ] && [ "$($bb basename "$($bb readlink /sys/block/vda/device/driver)")" = virtio_blk ]; then
        block_report probe PASS "vda on virtio_blk, $($bb cat /sys/block/vda/size) sectors"
else
        block_report probe FAIL "no /dev/vda bound to virtio_blk"
fi

serial=$($bb cat /sys/block/vda/serial 2>/dev/null)
[ "$serial" = linuxtest-disk ] && block_report serial PASS "$serial" || block_report serial FAIL "serial '$serial'"

ro=$($bb cat /sys/block/vdb/ro 2>/dev/null)
[ "$ro" = 1 ] && block_report read-only PASS "vdb ro=1" || block_report read-only FAIL "vdb ro='$ro'"
if $bb dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>/dev/null; then
        block_report read-only-write FAIL "a write to vdb succeeded"
else
        block_report read-only-write PASS "write to vdb refused"
fi

# Write 64 KiB at 64 KiB, flush to the device, drop the page cache, read back
# with O_DIRECT so the bytes come from the VMM.
# (busybox yes segfaults under this host's emulator: double a line instead)
echo MAJORDOME-BLOCK > /tmp/block-pattern
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
        $bb cat /tmp/block-pattern /tmp/block-pattern > /tmp/block-pattern2
        $bb mv /tmp/block-pattern2 /tmp/block-pattern
done
if $bb dd if=/tmp/block-pattern of=/dev/vda bs=4096 seek=16 conv=fsync 2>/dev/null; then
        block_report write-flush PASS "64 KiB written, fsync done"
else
        block_report write-flush FAIL "dd to vda failed"
fi
echo 3 > /proc/sys/vm/drop_caches
$bb dd if=/dev/vda of=/tmp/block-readback bs=4096 skip=16 count=16 iflag=direct 2>/dev/null
$bb cmp -s /tmp/block-pattern /tmp/block-readback && block_report read-back PASS "64 KiB match" ||
        block_report read-back FAIL "read back differs"

# Discard 1 MiB at 1 MiB (after writing something there).
$bb dd if=/tmp/block-pattern of=/dev/vda bs=65536 seek=16 conv=fsync 2>/dev/null
dmax=$($bb cat /sys/block/vda/queue/discard_max_bytes 2>/dev/null)
if [ "${dmax:-0}" -gt 0 ] && $bb blkdiscard -o 1048576 -l 1048576 /dev/vda 2>/dev/null; then
        $bb dd if=/dev/vda of=/tmp/block-discarded bs=65536 skip=16 count=1 iflag=direct 2>/dev/null
        $bb head -c 65536 /dev/zero > /tmp/block-zero
        $bb cmp -s /tmp/block-zero /tmp/block-discarded && block_report discard PASS "discard_max_bytes $dmax, zeroes after" ||
                block_report discard FAIL "data left after discard"
else
        block_report discard FAIL "discard_max_bytes '$dmax' or blkdiscard failed"
fi

# Online resize: the host grows disk 0 to twice its size over the control
# socket; virtio_blk's config-change handler updates the capacity.
size0=$($bb cat /sys/block/vda/size)
out "LINUXTEST block-resize WAIT size=$size0"
i=0
while [ "$i" -lt "${BLOCK_RESIZE_WAIT:-60}" ] && [ "$($bb cat /sys/block/vda/size)" = "$size0" ]; do
        $bb sleep 1
        i=$((i + 1))
done
size1=$($bb cat /sys/block/vda/size)
[ "$size1" = $((size0 * 2)) ] && block_report resize PASS "$size0 -> $size1 sectors" ||
        block_report resize FAIL "$size0 -> $size1 sectors after ${i}s"
