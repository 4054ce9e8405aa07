#!/usr/bin/env python3
"""Counts test cases across meson build directories.

meson's JUnit log carries every gtest case; a test binary that crashed or
timed out before writing its report counts as one failure. Prints failed
and skipped cases by name, then one line: "N passed, N failed, N skipped".
Exits 1 when anything failed or nothing ran.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def count(builddir, totals, failures, skips):
    logs = os.path.join(builddir, "meson-logs")
    junit = os.path.join(logs, "testlog.junit.xml")
    results = os.path.join(logs, "testlog.json")
    label = os.path.basename(os.path.normpath(builddir))
    failed_tests = set()

    if os.path.exists(junit):
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            parts = suite.get("name", "").split(".")
            test = parts[1] if len(parts) > 2 else suite.get("name", "")
            for case in suite.iter("testcase"):
                name = f"{label}: {test}: {case.get('classname')}.{case.get('name')}"
                tags = {child.tag for child in case}
                if "failure" in tags or "error" in tags:
                    totals["failed"] += 1
                    failures.append(name)
                    failed_tests.add(test)
                elif "skipped" in tags or case.get("status") == "notrun" or case.get("result") == "skipped":
                    totals["skipped"] += 1
                    msg = ""
                    for child in case:
                        if child.tag == "skipped":
                            msg = (child.get("message") or child.text or "").strip().splitlines()[-1:] or [""]
                            msg = msg[0]
                    skips.append(f"{name}: {msg}")
                else:
                    totals["passed"] += 1

    if os.path.exists(results):
        with open(results) as f:
            for line in f:
                t = json.loads(line)
                name, result = t["name"], t["result"]
                if result in ("OK", "EXPECTEDFAIL"):
                    continue
                if result == "SKIP":
                    if t.get("protocol", "") != "gtest":
                        totals["skipped"] += 1
                        skips.append(f"{label}: {name}: skipped by the test itself")
                    continue
                if name not in failed_tests:
                    # Crashed, timed out or failed outside any test case.
                    totals["failed"] += 1
                    failures.append(f"{label}: {name}: {result} (see meson-logs/testlog.txt)")


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
