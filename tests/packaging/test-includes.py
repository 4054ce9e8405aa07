#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""TAP: the project's own headers are included by their folder from the
source root ("common/log.h", "vmm/virtio/device.h"), so an include says
which part of the tree, and so which binary, a name belongs to. Headers
generated into the build directory (the Wayland protocol headers, the
parts this build has) are the exception; the freestanding test guests and the static Linux test programs
are programs of their own, with their own sibling headers."""
import re
import subprocess
import sys

root = sys.argv[1]
files = subprocess.check_output(["git", "-C", root, "ls-files", "*.c", "*.h", "*.cpp"], text=True).split()
files = [f for f in files if not f.startswith(("tests/guest/", "tests/linux/"))]
tracked = set(files) | set(subprocess.check_output(["git", "-C", root, "ls-files", "*.h"], text=True).split())
generated = re.compile(r"(-(client|server)-protocol\.h|^majordome-features\.h)$")
bad = []
for f in files:
    with open(f"{root}/{f}", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if m and not generated.search(m.group(1)) and m.group(1) not in tracked:
                bad.append(f"{f}:{n}: #include \"{m.group(1)}\"")
print("1..1")
if bad:
    for b in bad[:50]:
        print("# " + b)
    print(f"not ok 1 - {len(bad)} includes do not name a header by its path from the source root")
    sys.exit(1)
print(f"ok 1 - every include of the project's headers names its folder ({len(files)} files)")
