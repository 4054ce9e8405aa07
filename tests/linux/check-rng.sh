# virtio-rng check for the combined real-Linux /init (sourced, busybox sh).
# Expects the VMM started with --rng and prints
#   LINUXTEST rng-<name> PASS|FAIL detail
# No host-side step. (busybox od prints nothing under this host's emulator:
# the bytes are compared with cmp and shown with hexdump.)

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
rng_report() { out "LINUXTEST rng-$1 $2 $3"; }

rng_dev=
for d in /sys/bus/virtio/devices/*; do
        [ "$($bb cat "$d/device" 2>/dev/null)" = 0x0004 ] && rng_dev=$d
done
rng_drv=$($bb basename "$($bb readlink "$rng_dev/driver" 2>/dev/null)" 2>/dev/null)
if [ -n "$rng_dev" ] && [ "$rng_drv" = virtio_rng ]; then
        rng_report probe PASS "$($bb basename "$rng_dev") on virtio_rng"
else
        rng_report probe FAIL "no virtio device 0x0004 bound to virtio_rng (driver '$rng_drv')"
fi

# The hwrng core picks the best source; virtio_rng is the only one here.
rng_current=$($bb cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
case "$rng_current" in
virtio_rng*) rng_report current PASS "rng_current=$rng_current" ;;
*) rng_report current FAIL "rng_current='$rng_current' available='$($bb cat /sys/class/misc/hw_random/rng_available 2>/dev/null)'" ;;
esac

# 16 bytes from /dev/hwrng, twice: each read has 16 bytes, not all the same
# byte, and the two reads differ.
$bb dd if=/dev/hwrng of=/tmp/rng-a bs=16 count=1 2>/dev/null
$bb dd if=/dev/hwrng of=/tmp/rng-b bs=16 count=1 2>/dev/null
rng_n=$($bb wc -c < /tmp/rng-a 2>/dev/null)
rng_n=$((rng_n + 0))
# A file of 16 copies of the first byte: equal to rng-a only if all equal.
$bb head -c 1 /tmp/rng-a > /tmp/rng-same
for i in 1 2 3 4; do
        $bb cat /tmp/rng-same /tmp/rng-same > /tmp/rng-same2
        $bb mv /tmp/rng-same2 /tmp/rng-same
done
rng_hex=$($bb hexdump -v -e '16/1 "%02x"' /tmp/rng-a 2>/dev/null)
if [ "$rng_n" != 16 ]; then
        rng_report read FAIL "dd read $rng_n bytes from /dev/hwrng"
elif $bb cmp -s /tmp/rng-a /tmp/rng-same; then
        rng_report read FAIL "16 equal bytes $rng_hex"
elif $bb cmp -s /tmp/rng-a /tmp/rng-b; then
        rng_report read FAIL "two reads gave the same 16 bytes $rng_hex"
else
        rng_report read PASS "16 bytes $rng_hex md5 $($bb md5sum < /tmp/rng-a | $bb cut -c1-8)"
fi
