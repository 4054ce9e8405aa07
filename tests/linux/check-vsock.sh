# virtio-vsock check for the combined real-Linux /init (sourced, busybox sh).
# Needs /vsock-echo (tests/linux/vsock-echo.c built with gcc -static) in the
# initramfs and the VMM started with
#   --vsock cid=3,path=PATH
# Host side, before the boot: listen on PATH_1234 (a Unix socket the jailed
# VMM, uid nobody, may connect to: directory searchable, socket mode 0777),
# accept one connection, read a line, write it back. When the /init prints
#   LINUXTEST vsock-listen READY
# (it shows twice, on the console and from /dev/kmsg: connect once)
# connect to PATH, write "CONNECT 6000\n", read "OK <port>\n", write a line,
# read the same line back, then close. Build the helper with
#   gcc -static -O2 -o vsock-echo tests/linux/vsock-echo.c
# Checked by hand on the rig kernel (6.12, virtio_console and
# vmw_vsock_virtio_transport =y): all five lines PASS. Prints
#   LINUXTEST vsock-<name> PASS|FAIL detail

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
vsock_report() { out "LINUXTEST vsock-$1 $2 $3"; }

vsock_dev=
for d in /sys/bus/virtio/devices/*; do
        [ "$($bb cat $d/device 2>/dev/null)" = 0x0013 ] && vsock_dev=$d
done
vsock_drv=$($bb basename "$($bb readlink $vsock_dev/driver 2>/dev/null)" 2>/dev/null)
if [ "$vsock_drv" = vmw_vsock_virtio_transport ]; then
        vsock_report probe PASS "$($bb basename $vsock_dev) on $vsock_drv"
else
        vsock_report probe FAIL "no virtio device 0x0013 bound to vmw_vsock_virtio_transport (driver '$vsock_drv')"
fi

# Guest -> host: the host program on PATH_1234 echoes.
if vsock_err=$(/vsock-echo connect 1234 "linux guest ping" 2>&1); then
        vsock_report guest-connect PASS "$vsock_err"
else
        vsock_report guest-connect FAIL "$vsock_err"
fi

# Host -> guest: we listen on 6000 and echo what the host sends.
/vsock-echo listen 6000 2>/tmp/vsock-listen.err &
vsock_pid=$!
$bb sleep 1
vsock_report listen READY "port 6000"
if wait $vsock_pid; then
        vsock_report host-connect PASS "$($bb cat /tmp/vsock-listen.err)"
else
        vsock_report host-connect FAIL "$($bb cat /tmp/vsock-listen.err)"
fi
