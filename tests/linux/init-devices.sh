#!/bin/busybox sh
# /init for the combined real-Linux device test
# (tests/integration/test-linux-devices.cpp): one boot with every device,
# each check in its own fragment under /checks (see the top of each for the
# VMM options and the host-side steps). Every result is a line
#   LINUXTEST <name> PASS|FAIL|WAIT|READY detail
# on the console and in the kernel log; "LINUXTEST done" ends the run, then
# reboot -f pulses the i8042 reset line (the VMM exits 0).
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The initramfs has no /dev/console node, so /init started without a
# console: take it now that devtmpfs is there.
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
export PATH=/bin:/sbin

out "LINUXTEST init READY uptime=$($bb cat /proc/uptime)"
for check in rng block console vsock balloon fs gpu; do
        if [ -f /checks/check-$check.sh ]; then
                . /checks/check-$check.sh
        else
                out "LINUXTEST $check-fragment FAIL /checks/check-$check.sh missing"
        fi
done
out "LINUXTEST done uptime=$($bb cat /proc/uptime)"
$bb reboot -f
