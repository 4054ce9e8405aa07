#!/bin/bash
# The main job on a fresh Debian 12 machine: install what is missing, build,
# start majordomed on a private session bus, and `vmc start` the shipped demo
# guest through it; show its console, its info, then stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh

if [ "${1:-}" != "--inside-bus" ]; then
  # A bus of our own, so the demo needs no system configuration.
  exec dbus-run-session -- "$0" --inside-bus
fi

runtime=$(mktemp -d /tmp/majordome-demo.XXXXXX)
build/daemon/majordomed --user --runtime-dir "$runtime" --vmm build/vmm/majordome-vmm &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$runtime"' EXIT
gdbus wait --session --timeout 10 org.majordome.VmManager1

vmc() { echo "\$ vmc $*" >&2; build/client/vmc --user "$@"; }
vmc start demo --kernel build/tests/guest/hello.elf --mem 64M
sleep 1
vmc logs demo
vmc info demo
vmc list
vmc stop demo
