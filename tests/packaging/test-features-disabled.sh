#!/bin/sh
# The optional parts left out: `meson setup` of this tree with the gpu,
# wayland and video features disabled (configured, not built: a reference
# to a part that is not there fails here), then what it would install
# against install-manifest.txt, whose [gpu] and [video] lines must drop
# out (test-install-manifest.sh). docs/packaging.md, "The optional parts".
# Usage: test-features-disabled.sh SOURCE_ROOT MANIFEST
set -u
src=$1
manifest=$2
meson=${MESON:-meson}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$meson" setup "$tmp/build" "$src" -Dgpu=disabled -Dwayland=disabled -Dvideo=disabled \
        >"$tmp/setup.log" 2>&1; then
        echo "meson setup with every feature disabled failed:"
        tail -n 30 "$tmp/setup.log"
        exit 1
fi
rc=0
if ! grep -q '#define MAJORDOME_HAVE_GPU 0' "$tmp/build/common/majordome-features.h" ||
   ! grep -q '#define MAJORDOME_HAVE_WAYLAND 0' "$tmp/build/common/majordome-features.h" ||
   ! grep -q '#define MAJORDOME_HAVE_VIDEO 0' "$tmp/build/common/majordome-features.h"; then
        echo "majordome-features.h does not say the parts are left out:"
        cat "$tmp/build/common/majordome-features.h"
        rc=1
fi
# No target of a part left out, tests and benchmarks included.
"$meson" introspect --targets "$tmp/build" >"$tmp/targets.json" || exit 1
left=$(python3 - "$tmp/targets.json" <<'PY'
import json, re, sys
names = [t["name"] for t in json.load(open(sys.argv[1]))]
print(" ".join(n for n in names if re.search(r"gpu|video|virgl|cross-domain|wayland", n)))
PY
)
if [ -n "$left" ]; then
        echo "targets of a part left out: $left"
        rc=1
fi
sh "$(dirname "$0")/test-install-manifest.sh" "$tmp/build" "$manifest" || rc=1
exit $rc
