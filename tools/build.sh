#!/bin/bash
# Configures and builds into build/ (and build-asan/ with --asan). Quiet when
# all goes well; shows meson's or ninja's output when it does not. Warnings
# are errors here (-Dwerror=true); meson.build leaves werror to packagers.
# Every optional part is built here (a missing library fails the setup,
# where meson's auto would leave the part out quietly).
set -euo pipefail
cd "$(dirname "$0")/.."

run_quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "build failed: $*" >&2
    exit 1
  fi
  rm -f "$log"
}

setup() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    run_quiet meson setup "$dir" -Dwerror=true -Dgpu=enabled -Dwayland=enabled -Dvideo=enabled "$@"
  fi
  run_quiet ninja -C "$dir"
}

setup build
for arg in "$@"; do
  case $arg in
    --asan)
      setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all ;;
    --fuzz)
      # libFuzzer needs clang; only the fuzz targets are built here.
      [ -f build-fuzz/build.ninja ] || CC=clang CXX=clang++ run_quiet meson setup build-fuzz -Dwerror=true -Dfuzz=true \
        -Dgpu=enabled -Dwayland=enabled -Dvideo=enabled
      run_quiet ninja -C build-fuzz $(cd build-fuzz && meson introspect --targets |
        python3 -c 'import json,sys; print(" ".join(t["filename"][0].split("/build-fuzz/")[-1] for t in json.load(sys.stdin) if t["name"].startswith("fuzz-")))') ;;
  esac
done
