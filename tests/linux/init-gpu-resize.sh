#!/bin/busybox sh
# /init of the real-Linux display hot-plug check (test-linux-devices'
# GuestIsOfferedTheSizeTheCompositorGivesItsWindow). The VMM's GPU is
# 640x480 on weston's kiosk-shell, which makes every window fullscreen:
# once kms-pattern sets a mode, the window appears, weston sizes it to its
# output and majordome-gpu offers the guest that size (EVENT_DISPLAY). The
# driver reads the EDID again; a probe of the connector (writing "detect"
# to its status) then lists the new size first. Prints
#   LINUXTEST resize-<check> PASS|FAIL detail
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
report() { out "LINUXTEST resize-$1 $2 $3"; }

n=0
while [ ! -c /dev/dri/card0 ] && [ $n -lt 150 ]; do
        $bb sleep 0.2
        n=$((n + 1))
done
conn=/sys/class/drm/card0-Virtual-1
if [ -c /dev/dri/card0 ] && [ -e $conn/status ]; then
        report open PASS "card0, $conn"
else
        report open FAIL "no /dev/dri/card0 or $conn"
fi

/kms-pattern 40 > /tmp/kms.out 2>&1 &
n=0
first=
while [ $n -lt 60 ]; do
        $bb sleep 1
        echo detect > $conn/status 2>/dev/null
        first=$($bb head -n 1 $conn/modes)
        [ -n "$first" ] && [ "$first" != 640x480 ] && break
        n=$((n + 1))
done
if $bb grep -q "gpu-shown PASS 640x480" /tmp/kms.out; then
        report modeset PASS "kms-pattern showed 640x480"
else
        report modeset FAIL "kms-pattern: $($bb grep -m1 FAIL /tmp/kms.out)"
fi
report offered PASS "$first"
out "LINUXTEST done"
$bb reboot -f
