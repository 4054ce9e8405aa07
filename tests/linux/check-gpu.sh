# virtio-gpu check for the combined real-Linux /init (sourced, busybox sh).
# Expects the VMM started with --gpu backend=2d,width=640,height=480 and
# --wayland-sock on weston (headless), and /kms-pattern in the initramfs
# (tests/linux/kms-pattern.c). The guest's virtio_gpu driver binds and says
# which features it took; kms-pattern sets the mode on a dumb buffer,
# dirties a rectangle, page-flips and holds the second buffer on screen for
# 25 s, after "LINUXTEST gpu-shown PASS": the host screenshots weston then
# and compares the window's pixels with the pattern. Prints
#   LINUXTEST gpu-<name> PASS|FAIL detail
# Then, with the GPU's context-types=cross-domain and /wl-cross-domain in
# the initramfs (tests/linux/wl-cross-domain.c), a guest Wayland client
# over virtio-gpu's cross-domain context: an xdg_toplevel whose buffer is
# a host blob, held 10 s after "LINUXTEST xd-shown PASS", when the host
# screenshots weston again and compares that window's pixels. It prints
#   LINUXTEST xd-<name> PASS|FAIL detail
# Last, the driver is unbound and bound again (a device reset) and
# kms-pattern run once more: LINUXTEST gpu-rebind PASS|FAIL.

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
gpu_report() { out "LINUXTEST gpu-$1 $2 $3"; }

gpu_n=0
gpu_dev=
for d in /sys/bus/virtio/devices/*; do
        if [ "$($bb cat "$d/device" 2>/dev/null)" = 0x0010 ]; then
                gpu_n=$((gpu_n + 1))
                gpu_dev=${d##*/}
        fi
done
if [ "$gpu_n" = 1 ]; then
        gpu_report probe PASS "one virtio device 0x0010"
else
        gpu_report probe FAIL "$gpu_n virtio-gpu devices, want 1"
fi

# The driver's "features:" lines (drm/virtio/virtgpu_kms.c), from the
# kernel log through a file (no pipeline: see check-fs.sh); a shell loop
# over the whole log takes most of a minute under emulation.
$bb dmesg > /tmp/gpu-dmesg
$bb grep -o "features: .*" /tmp/gpu-dmesg > /tmp/gpu-features
gpu_features=
while IFS= read -r line; do
        gpu_features="$gpu_features ${line#features: }"
done < /tmp/gpu-features
case "$gpu_features" in
*+edid*) gpu_report features PASS "$gpu_features" ;;
*) gpu_report features FAIL "no +edid in '$gpu_features'" ;;
esac

# The driver lets go while kms-pattern holds its buffers on screen: once
# unplugged it sends nothing more, not even their UNREF, and its remove
# resets the device. The host must drop every resource then, for the new
# driver instance numbers its resources from 1 again. kms-pattern then
# sets a mode as before; the lines of both runs go to files, so the host
# does not take them for the first run's.
gpu_rebind() {
        # The host's refusals are only in the kernel log (the driver does
        # not wait for a create's answer): "response 0x12.. (command ..)".
        $bb dmesg > /tmp/gpu-dmesg
        errors_before=$($bb grep -c "response 0x12" /tmp/gpu-dmesg)
        /kms-pattern 60 > /tmp/gpu-held 2>&1 &
        held=$!
        n=0
        while ! $bb grep -q "gpu-shown" /tmp/gpu-held && [ $n -lt 150 ]; do
                $bb sleep 0.2
                n=$((n + 1))
        done
        echo "$gpu_dev" > /sys/bus/virtio/drivers/virtio_gpu/unbind
        kill $held
        wait $held
        echo "$gpu_dev" > /sys/bus/virtio/drivers/virtio_gpu/bind
        n=0
        while [ ! -c /dev/dri/card0 ] && [ $n -lt 50 ]; do
                $bb sleep 0.2
                n=$((n + 1))
        done
        /kms-pattern 0 > /tmp/gpu-rebind 2>&1
        rc=$?
        $bb dmesg > /tmp/gpu-dmesg
        $bb grep "response 0x12" /tmp/gpu-dmesg > /tmp/gpu-refused
        errors_after=$($bb grep -c . /tmp/gpu-refused)
        if [ "$errors_after" != "$errors_before" ]; then
                gpu_report rebind FAIL "the host refused $((errors_after - errors_before)) commands after the rebind, the last: $($bb tail -n 1 /tmp/gpu-refused)"
        elif [ $rc = 0 ] && $bb grep -q "gpu-shown PASS" /tmp/gpu-rebind && ! $bb grep -q FAIL /tmp/gpu-rebind; then
                gpu_report rebind PASS "$gpu_dev unbound and bound; kms-pattern sets its mode again, no command refused"
        else
                gpu_report rebind FAIL "kms-pattern exited $rc after the rebind: $($bb grep -m1 FAIL /tmp/gpu-rebind)"
        fi
}

if [ -c /dev/dri/card0 ]; then
        /kms-pattern 25 || gpu_report kms FAIL "kms-pattern exited $?"
        /wl-cross-domain 10 || out "LINUXTEST xd-run FAIL wl-cross-domain exited $?"
        gpu_rebind
else
        gpu_report open FAIL "no /dev/dri/card0"
fi
