#!/usr/bin/env python3
"""Counts test cases across meson build directories.

meson's JUnit log carries every gtest case; a test binary that crashed or
timed out before writing its report counts as one failure. Prints failed
and skipped cases by name, then one line: "N passed, N failed, N skipped".
Exits 1 when anything failed or nothing ran.
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def count(builddir, totals, failures, skips):
    logs = os.path.join(builddir, "meson-logs")
    junit = os.path.join(logs, "testlog.junit.xml")
    results = os.path.join(logs, "testlog.json")
    label = os.path.basename(os.path.normpath(builddir))
    failed_tests = set()

    if os.path.exists(junit):
        with open(junit, "rb") as f:
            # meson copies raw test output, control characters included,
            # which XML 1.0 forbids.
            data = re.sub(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", b"", f.read())
        for suite in ET.fromstring(data).iter("testsuite"):
            # "project.test.Suite" for gtest, "project.test" for TAP, and
            # "project" for plain tests, whose case is named after the test.
            parts = suite.get("name", "").split(".", 2)
            for case in suite.iter("testcase"):
                test = (parts[1] if len(parts) > 1 else case.get("name")).split(" / ")[-1]
                name = f"{label}: {test}: {case.get('name')}"
                if len(parts) > 2:
                    name = f"{label}: {test}: {case.get('classname')}.{case.get('name')}"
                tags = {child.tag: child for child in case}
                if "failure" in tags or "error" in tags:
                    totals["failed"] += 1
                    failures.append(name)
                    failed_tests.add(test)
                elif "skipped" in tags:
                    totals["skipped"] += 1
                    why = tags["skipped"].get("message") or tags["skipped"].text or ""
                    if not why and "system-out" in tags:
                        why = tags["system-out"].text or ""
                    why = (why.strip().splitlines() or [""])[-1]
                    skips.append(f"{name}: {why}")
                else:
                    totals["passed"] += 1

    if os.path.exists(results):
        with open(results) as f:
            for line in f:
                t = json.loads(line)
                name, result = t["name"].split(" / ")[-1], t["result"]
                if result in ("OK", "EXPECTEDFAIL", "SKIP") or name in failed_tests:
                    continue
                # Crashed, timed out or failed outside any test case.
                totals["failed"] += 1
                failures.append(f"{label}: {name}: {result} (see {label}/meson-logs/testlog.txt)")


def main():
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    failures, skips = [], []
    for d in sys.argv[1:]:
        count(d, totals, failures, skips)
    for s in skips:
        print(f"SKIP {s}")
    for f in failures:
        print(f"FAIL {f}")
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    return 1 if totals["failed"] or totals["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
