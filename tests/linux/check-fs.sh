# virtio-fs check for the combined real-Linux /init (sourced, busybox sh).
# Expects the VMM started with two shares, each served by Debian's virtiofsd:
#   --shared-dir HOSTDIR:linuxtest-share and --shared-dir RODIR:linuxtest-ro:ro
# The host wrote, before the boot: HOSTDIR/from-host.txt ("MAJORDOME-FS-HOST"),
# 200 files HOSTDIR/many/f000..f199, and RODIR/readme.txt ("MAJORDOME-FS-RO").
# After the run the host checks HOSTDIR/from-guest.bin byte for byte
# ("MAJORDOME-FS-GUEST\n" repeated, cut at 65536 bytes) and that RODIR holds no
# file the guest tried to create. Prints
#   LINUXTEST fs-<name> PASS|FAIL detail

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
fs_report() { out "LINUXTEST fs-$1 $2 $3"; }

fs_n=0
for d in /sys/bus/virtio/devices/*; do
        [ "$($bb cat "$d/device" 2>/dev/null)" = 0x001a ] && fs_n=$((fs_n + 1))
done
if [ "$fs_n" = 2 ]; then
        fs_report probe PASS "2 virtio devices 0x001a"
else
        fs_report probe FAIL "$fs_n virtio-fs devices, want 2"
fi

$bb mkdir -p /mnt/share /mnt/ro
if $bb mount -t virtiofs linuxtest-share /mnt/share 2>/tmp/fs-err; then
        fs_report mount PASS "linuxtest-share on /mnt/share"
else
        fs_report mount FAIL "$($bb cat /tmp/fs-err)"
fi

fs_got=$($bb cat /mnt/share/from-host.txt 2>&1)
if [ "$fs_got" = MAJORDOME-FS-HOST ]; then
        fs_report read PASS "from-host.txt"
else
        fs_report read FAIL "from-host.txt: '$fs_got'"
fi

# 64 KiB of a known line, written and synced; the host compares it.
# (Doubled 12 times: 19 * 4096 bytes; a loop of 3,500 appends is slow here.)
echo MAJORDOME-FS-GUEST > /tmp/fs-pattern
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
        $bb cat /tmp/fs-pattern /tmp/fs-pattern > /tmp/fs-pattern2
        $bb mv /tmp/fs-pattern2 /tmp/fs-pattern
done
$bb head -c 65536 /tmp/fs-pattern > /tmp/fs-64k
if $bb cp /tmp/fs-64k /mnt/share/from-guest.bin && $bb sync && \
   $bb cmp -s /tmp/fs-64k /mnt/share/from-guest.bin; then
        fs_report write PASS "64 KiB from-guest.bin md5 $($bb md5sum < /tmp/fs-64k | $bb cut -c1-8)"
else
        fs_report write FAIL "writing from-guest.bin failed"
fi

# Counted, first and last taken by the shell: no pipeline (busybox's
# wc and head through a pipe came back empty now and then on this host).
fs_count=0
fs_first=
fs_last=
for f in /mnt/share/many/*; do
        [ -e "$f" ] || continue
        fs_count=$((fs_count + 1))
        [ -n "$fs_first" ] || fs_first=${f##*/}
        fs_last=${f##*/}
done
if [ "$fs_count" = 200 ] && [ "$fs_first" = f000 ] && [ "$fs_last" = f199 ]; then
        fs_report list PASS "200 entries f000..f199"
else
        fs_report list FAIL "$fs_count entries, first '$fs_first' last '$fs_last'"
fi

if $bb mount -t virtiofs linuxtest-ro /mnt/ro 2>/tmp/fs-err; then
        fs_got=$($bb cat /mnt/ro/readme.txt 2>&1)
        if [ "$fs_got" = MAJORDOME-FS-RO ]; then
                fs_report ro-read PASS "readme.txt"
        else
                fs_report ro-read FAIL "readme.txt: '$fs_got'"
        fi
        if (echo x > /mnt/ro/guest-was-here) 2>/tmp/fs-err; then
                fs_report ro-write FAIL "a write to the read-only share succeeded"
        else
                fs_report ro-write PASS "refused: $($bb cat /tmp/fs-err)"
        fi
else
        fs_report ro-read FAIL "mount: $($bb cat /tmp/fs-err)"
        fs_report ro-write FAIL "not mounted"
fi
$bb umount /mnt/share 2>/dev/null
$bb umount /mnt/ro 2>/dev/null
