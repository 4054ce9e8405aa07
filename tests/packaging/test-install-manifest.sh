#!/bin/sh
# What `meson install` puts where, against install-manifest.txt, from the
# build directory's install plan (`meson introspect --installed`): nothing
# is built or installed. Paths under the build's prefix are listed relative
# to it, so the manifest holds for any prefix; a path outside the prefix
# stays absolute (and is most likely a mistake). Every installed man page
# must render without a groff warning. A manifest line ending in
# "[FEATURE]" is a part of the meson feature of that name (gpu, wayland,
# video): expected only where the build has it (BUILDDIR/common/majordome-features.h).
# Usage: test-install-manifest.sh BUILDDIR MANIFEST
# Run it as `meson test -C build --suite packaging`; after a change to what
# is installed, regenerate the manifest with
#   MAJORDOME_UPDATE_MANIFEST=1 meson test -C build --suite packaging
set -u
builddir=$1
manifest=$2
meson=${MESON:-meson}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$meson" introspect --installed --buildoptions "$builddir" >"$tmp/intro.json"; then
        echo "meson introspect failed on $builddir" >&2
        exit 1
fi

# Two lists from the plan: installed paths (prefix stripped), and the
# sources of the man pages.
python3 - "$tmp/intro.json" "$tmp/installed" "$tmp/man" <<'PY' || exit 1
import json, os, sys

intro = json.load(open(sys.argv[1]))
prefix = next(o["value"] for o in intro["buildoptions"] if o["name"] == "prefix")
installed, man = [], []
for source, dest in intro["installed"].items():
    if dest.startswith(prefix.rstrip("/") + "/"):
        installed.append(os.path.relpath(dest, prefix))
    else:
        installed.append(dest)
    if "/man/man" in dest:
        man.append(source)
open(sys.argv[2], "w").write("".join(p + "\n" for p in sorted(installed)))
open(sys.argv[3], "w").write("".join(p + "\n" for p in sorted(man)))
PY

# The expected list for this build's features; with
# MAJORDOME_UPDATE_MANIFEST, the manifest rewritten from the plan, each
# path keeping its [FEATURE] tag (regenerate from a build with them all).
python3 - "$manifest" "$builddir/common/majordome-features.h" "$tmp/installed" "$tmp/expected" \
    "${MAJORDOME_UPDATE_MANIFEST:-}" <<'PY' || exit 1
import re, sys

manifest, features_h, installed, expected, update = sys.argv[1:6]
built = {m.group(1).lower() for m in
         re.finditer(r"#define MAJORDOME_HAVE_(\w+) 1\b", open(features_h).read())}
comments, tags, paths = [], {}, []
for line in open(manifest).read().splitlines():
    if line.startswith("#") or not line.strip():
        comments.append(line)
        continue
    m = re.fullmatch(r"(\S+)(?:\s+\[(\w+)\])?", line.strip())
    if not m:
        sys.exit(f"{manifest}: cannot read the line {line!r}")
    paths.append(m.group(1))
    if m.group(2):
        tags[m.group(1)] = m.group(2)
if update:
    plan = open(installed).read().split()
    with open(manifest, "w") as f:
        f.write("".join(c + "\n" for c in comments))
        f.write("".join(p + (f"  [{tags[p]}]" if p in tags else "") + "\n" for p in plan))
    print(f"updated {manifest}")
    paths = plan
keep = sorted(p for p in paths if p not in tags or tags[p] in built)
open(expected, "w").write("".join(p + "\n" for p in keep))
PY

rc=0
if ! diff -u "$tmp/expected" "$tmp/installed" >"$tmp/diff"; then
        echo "the install plan differs from $manifest (- expected, + planned):"
        cat "$tmp/diff"
        rc=1
else
        echo "install plan matches $manifest: $(wc -l <"$tmp/installed") files"
fi

if [ ! -s "$tmp/man" ]; then
        echo "no man page is installed"
        rc=1
fi
if command -v groff >/dev/null 2>&1; then
        while read -r page; do
                warnings=$(groff -man -ww -z "$page" 2>&1)
                if [ -n "$warnings" ]; then
                        echo "$page: groff warns:"
                        printf '%s\n' "$warnings" | sed 's/^/  /'
                        rc=1
                fi
        done <"$tmp/man"
else
        echo "groff not installed: the man pages were not checked"
fi
exit $rc
