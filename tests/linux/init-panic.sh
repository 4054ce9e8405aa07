#!/bin/busybox sh
# /init for the guest-panic test: say so, then exit. The kernel panics
# ("Attempted to kill init!") and its pvpanic driver tells the host.
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
out "MAJORDOME-INIT-EXITING"
exit 1
