#!/bin/bash
# The main job on a fresh Debian 12 machine: install what is missing, build,
# and boot the shipped demo guest, showing its serial console.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
echo "== majordome-vmm run --debug-exit build/tests/guest/hello.elf" >&2
exec build/vmm/majordome-vmm run --debug-exit build/tests/guest/hello.elf
