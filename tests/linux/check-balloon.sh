# virtio-balloon check for the combined real-Linux /init (sourced, busybox sh).
# Expects the VMM started with --mem 256M --balloon --socket SOCKET and prints
#   LINUXTEST balloon-<name> PASS|FAIL|WAIT detail
# Host side:
#  - on "LINUXTEST balloon-inflate WAIT": note the guest-RAM Rss of the VMM
#    (the "/memfd:guest-ram" mappings' Rss in /proc/PID/smaps of the VMM and
#    its children), then run `majordome-vmm balloon SOCKET 64M`;
#  - on "LINUXTEST balloon-inflate PASS": `majordome-vmm balloon-stats --json
#    SOCKET` shows actual_bytes and inflated_bytes 67108864 and
#    stats_fresh true with total_memory equal to the MemTotal the line
#    reports (in KiB); the Rss did not grow (Linux inflates free pages
#    without touching them, and most free pages of a fresh guest were never
#    backed on the host, so the Rss need not drop much here: dirtying them
#    first costs minutes under this host's emulation. The test guest
#    tests/guest/virtio-balloon shows the drop: 1.000 MiB per MiB);
#  - on "LINUXTEST balloon-deflate WAIT": `majordome-vmm balloon SOCKET 0`.
# Without the host's step within BALLOON_WAIT seconds (default 120) the
# step reports FAIL.

command -v out >/dev/null 2>&1 || out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
bb=/bin/busybox
balloon_report() { out "LINUXTEST balloon-$1 $2 $3"; }
balloon_memtotal() { $bb awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
BALLOON_WAIT=${BALLOON_WAIT:-120}
BALLOON_KIB=65536

# Waits until MemTotal is at most $1 KiB (mode le) or at least $1 (mode ge).
balloon_wait_memtotal() {
        n=0
        while [ "$n" -lt "$BALLOON_WAIT" ]; do
                m=$(balloon_memtotal)
                if [ "$2" = le ] && [ "$m" -le "$1" ]; then return 0; fi
                if [ "$2" = ge ] && [ "$m" -ge "$1" ]; then return 0; fi
                $bb sleep 1
                n=$((n + 1))
        done
        return 1
}

balloon_dev=""
for d in /sys/bus/virtio/devices/*; do
        [ "$($bb cat "$d/device" 2>/dev/null)" = 0x0005 ] && balloon_dev=$d
done
balloon_drv=$($bb basename "$($bb readlink "$balloon_dev/driver" 2>/dev/null)" 2>/dev/null)
if [ -n "$balloon_dev" ] && [ "$balloon_drv" = virtio_balloon ]; then
        # features: one character per bit; bit 1 is STATS_VQ.
        balloon_features=$($bb cat "$balloon_dev/features")
        balloon_stats=$($bb expr substr "$balloon_features" 2 1)
        balloon_report probe PASS "$($bb basename "$balloon_dev") on virtio_balloon, stats_vq=$balloon_stats"

        balloon_before=$(balloon_memtotal)
        balloon_report inflate WAIT "MemTotal=$balloon_before"
        # Without DEFLATE_ON_OOM, Linux takes inflated pages off MemTotal.
        if balloon_wait_memtotal $((balloon_before - BALLOON_KIB)) le; then
                balloon_report inflate PASS "MemTotal=$(balloon_memtotal) was $balloon_before"
        else
                balloon_report inflate FAIL "MemTotal=$(balloon_memtotal) was $balloon_before, wanted -$BALLOON_KIB KiB"
        fi

        balloon_report deflate WAIT "MemTotal=$(balloon_memtotal)"
        if balloon_wait_memtotal "$balloon_before" ge; then
                balloon_report deflate PASS "MemTotal=$(balloon_memtotal)"
        else
                balloon_report deflate FAIL "MemTotal=$(balloon_memtotal), wanted $balloon_before"
        fi
else
        balloon_report probe FAIL "no virtio device 0x0005 bound to virtio_balloon (driver '$balloon_drv')"
fi
