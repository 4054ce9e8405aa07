#!/bin/bash
# Fetches Debian's own kernel (what linux-image-amd64 depends on) with
# apt-get download and prints the path of its bzImage. Cached.
set -euo pipefail
cache=${XDG_CACHE_HOME:-$HOME/.cache}/majordome/debian-kernel
mkdir -p "$cache"

found=$(ls "$cache"/root/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -n "$found" ]; then echo "$found"; exit 0; fi

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
  apt-get update -qq >&2
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
[ -n "$pkg" ] || { echo "cannot resolve linux-image-amd64" >&2; exit 1; }

work=$(mktemp -d "$cache/dl.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$pkg" >&2)
chmod 755 "$work"
dpkg-deb -x "$work"/*.deb "$work/root"
rm -rf "$cache/root"
mv "$work/root" "$cache/root"
ls "$cache"/root/boot/vmlinuz-* | head -n1
