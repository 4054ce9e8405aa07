#!/bin/bash
# Installs, builds and runs every test: once in build/, once under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/, and the
# libFuzzer targets for a bounded time in build-fuzz/. Ends with
# "N passed, N failed, N skipped" and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh || exit 1
tools/build.sh --asan --fuzz || exit 1

# Real kernels for the Linux boot tests; each test skips with the reason
# when its kernel could not be had.
if [ -x ../shared/linux-rig/build.sh ]; then
  if rig=$(../shared/linux-rig/build.sh 2>build/linux-rig.log); then
    export MAJORDOME_RIG_DIR=$rig
    export MAJORDOME_RIG_SCRIPTS=$(cd ../shared/linux-rig && pwd)
  else
    echo "linux-rig build failed, see build/linux-rig.log" >&2
  fi
fi
if kernel=$(tools/fetch-debian-kernel.sh 2>build/debian-kernel.log); then
  export MAJORDOME_DEBIAN_KERNEL=$kernel
else
  echo "Debian kernel not available, see build/debian-kernel.log" >&2
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for dir in build build-asan; do
  echo "== meson test -C $dir" >&2
  # Progress lines as they come; the whole log (with failures' output) in
  # $dir/test-output.txt, and printed when something failed.
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 |
    tee "$dir/test-output.txt" | grep --line-buffered -E '^ *[0-9]+/[0-9]+ ' >&2
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "== $dir: failures, full log follows" >&2
    tail -n 400 "$dir/test-output.txt" >&2
  fi
done

# The libFuzzer targets (tests/fuzz), each for a bounded time.
echo "== meson test -C build-fuzz --suite fuzz" >&2
meson test -C build-fuzz --no-rebuild --suite fuzz --print-errorlogs 2>&1 |
  tee build-fuzz/test-output.txt | grep --line-buffered -E '^ *[0-9]+/[0-9]+ ' >&2

python3 tools/test-summary.py build build-asan build-fuzz
