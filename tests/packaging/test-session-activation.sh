#!/bin/sh
# TAP: after `meson install`, a plain user's vmc reaches a per-user
# majordomed that D-Bus activation starts from the installed session service
# file. A private session bus (its own dbus-daemon, run as that user) reads
# the installed services directory; no user manager runs here, so the bus
# uses the file's Exec= line (SystemdService= is for buses that hand
# activation to systemd). The installed tree is in a DESTDIR, so the Exec=
# path gets the DESTDIR in front, and --vmm names the VMM there (the daemon
# checks at start that its VMM exists, at the prefix it was built for). The user is
# nobody; /dev/kvm is not theirs here, so the check stops at the daemon's
# answers (vmc list, vmc info of a VM that is not there).
# Usage: test-session-activation.sh BUILDDIR
set -u
builddir=$1
meson=${MESON:-meson}
user=nobody

echo "1..4"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! command -v dbus-daemon >/dev/null; then
        for i in 1 2 3 4; do echo "ok $i # SKIP needs root, setpriv and dbus-daemon"; done
        exit 0
fi
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
        pkill -u "$user" -f "$tmp/" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

if ! "$meson" install -C "$builddir" --no-rebuild --quiet --destdir "$tmp/dest" >"$tmp/install.log" 2>&1; then
        sed 's/^/# /' "$tmp/install.log"
        echo "not ok 1 - meson install"
        exit 1
fi
prefix=$("$meson" introspect --buildoptions "$builddir" |
         python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
service=$(find "$tmp/dest" -path '*/dbus-1/services/org.majordome.VmManager1.service' | head -n 1)
vmc=$tmp/dest$prefix/bin/vmc
if [ -n "$service" ] && [ -x "$vmc" ] && grep -q "^Exec=$prefix/sbin/majordomed --user$" "$service"; then
        echo "ok 1 - meson install put the session service file (Exec=$prefix/sbin/majordomed --user) and vmc"
else
        echo "not ok 1 - the installed session service file or vmc: ${service:-none}"
        [ -n "$service" ] && sed 's/^/# /' "$service"
        exit 1
fi

mkdir -p "$tmp/services" "$tmp/run"
sed "s|^Exec=\(.*\)\$|Exec=$tmp/dest\1 --vmm $tmp/dest$prefix/bin/majordome-vmm|" "$service" \
        >"$tmp/services/org.majordome.VmManager1.service"
cat >"$tmp/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/run/bus</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$tmp/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
chown -R "$user" "$tmp/run"
as_user() {
        env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR="$tmp/run" DBUS_SESSION_BUS_ADDRESS="unix:path=$tmp/run/bus" \
                setpriv --reuid="$user" --regid=nogroup --clear-groups "$@"
}
as_user dbus-daemon --nofork --config-file="$tmp/bus.conf" >/dev/null 2>"$tmp/bus.log" &
i=0
while [ ! -S "$tmp/run/bus" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

out=$(as_user "$vmc" --user list 2>&1)
rc=$?
if [ $rc = 0 ]; then
        echo "ok 2 - vmc --user list as $user activates the daemon and gets its answer"
else
        printf '%s\n' "$out" "$(cat "$tmp/bus.log")" | sed 's/^/# /'
        echo "not ok 2 - vmc --user list as $user (exit $rc)"
fi

daemon=$(pgrep -u "$user" -f "^$tmp/dest$prefix/sbin/majordomed --user" | head -n 1)
if [ -n "$daemon" ] && [ "$(stat -c %U "/proc/$daemon")" = "$user" ]; then
        echo "ok 3 - the activated majordomed --user runs as $user (pid $daemon), from the installed tree"
else
        ps -eo user,pid,args | grep majordome | sed 's/^/# /'
        echo "not ok 3 - no majordomed --user of $user from the installed tree"
fi

out=$(as_user "$vmc" --user info nosuchvm 2>&1)
rc=$?
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "nosuchvm"; then
        echo "ok 4 - the same daemon answers again (vmc info of an unknown VM: exit $rc)"
else
        printf '%s\n' "$out" | sed 's/^/# /'
        echo "not ok 4 - vmc --user info nosuchvm (exit $rc)"
fi
