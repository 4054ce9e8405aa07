#!/bin/sh
# TAP: the daemon's systemd unit passes `systemd-analyze verify` with no
# unknown or ignored settings (it only warns about those, so look).
# Usage: verify-unit.sh UNIT MAJORDOMED
unit=$1
bin=$2
echo "1..1"
if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "ok 1 - majordomed.service verifies # SKIP systemd-analyze not installed"
        exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Point ExecStart at the built daemon: verify checks that it is executable.
sed "s|^ExecStart=.*|ExecStart=$bin|" "$unit" >"$tmp/majordomed.service"
out=$(systemd-analyze verify "$tmp/majordomed.service" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && ! printf '%s\n' "$out" | grep -qiE 'unknown|ignoring|invalid|failed|not executable'; then
        echo "ok 1 - majordomed.service verifies"
else
        printf '%s\n' "$out" | sed 's/^/# /'
        echo "not ok 1 - majordomed.service does not verify (rc $rc)"
fi
