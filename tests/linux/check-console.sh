# virtio-console check for the combined real-Linux /init (sourced, busybox sh).
# Expects the VMM started with
#   --console socket:PATH
# Host side: connect to PATH (any time; output before that is kept for
# the first client), read the line "LINUX-CONSOLE-PING" (the tty may end it
# with CR LF), then write "LINUX-CONSOLE-PONG\n". Prints
#   LINUXTEST console-<name> PASS|FAIL detail
# CONSOLE_WAIT (default 60) is how long the guest waits for the reply.

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
console_report() { out "LINUXTEST console-$1 $2 $3"; }

console_dev=
for d in /sys/bus/virtio/devices/*; do
        [ "$($bb cat $d/device 2>/dev/null)" = 0x0003 ] && console_dev=$d
done
console_drv=$($bb basename "$($bb readlink $console_dev/driver 2>/dev/null)" 2>/dev/null)
if [ "$console_drv" = virtio_console ] && [ -c /dev/hvc0 ]; then
        console_report probe PASS "$($bb basename $console_dev) on virtio_console, /dev/hvc0"
else
        console_report probe FAIL "driver '$console_drv', /dev/hvc0 $( [ -c /dev/hvc0 ] && echo present || echo missing)"
fi

exec 3<>/dev/hvc0
# No echo of the host's reply back to the host, no CR/LF translation. Set
# on the open descriptor: a tty released by its last close forgets them.
$bb stty raw -echo <&3 2>/dev/null
echo "LINUX-CONSOLE-PING" >&3
console_line=
read -t "${CONSOLE_WAIT:-60}" console_line <&3
exec 3<&-
console_line=$(echo "$console_line" | $bb tr -d '\r')
if [ "$console_line" = LINUX-CONSOLE-PONG ]; then
        console_report echo PASS "host replied '$console_line'"
else
        console_report echo FAIL "host replied '$console_line'"
fi
