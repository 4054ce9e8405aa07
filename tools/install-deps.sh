#!/bin/bash
# Installs the Debian 12 packages Majordome builds and tests with; quiet and
# quick when everything is already there.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config python3
  libgtest-dev libsystemd-dev libseccomp-dev
  zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev
  qemu-system-x86 cpio util-linux
  dbus dbus-bin systemd python3-dbus python3-gi libglib2.0-bin
  libglib2.0-dev dbus-daemon python3-dbus python3-gi
  clang libclang-rt-14-dev
  libwayland-dev libwayland-bin wayland-protocols weston xvfb libpng-dev
  zsh bash-completion
  polkitd
  libvirglrenderer-dev libepoxy-dev libegl-mesa0 libgl1-mesa-dri libdrm-dev
  ffmpeg libavcodec-dev libavformat-dev libswscale-dev libavutil-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
