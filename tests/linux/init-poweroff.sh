#!/bin/busybox sh
# /init for the rig boot test: report, then end the VM the way a PC without
# ACPI does (reboot -f pulses the i8042 reset line).
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
out() { echo "$*"; echo "<2>$*" > /dev/kmsg 2>/dev/null; }
out "MAJORDOME-INIT-REACHED cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo) uptime=$(/bin/busybox cat /proc/uptime)"
out "MAJORDOME-CMDLINE $(/bin/busybox cat /proc/cmdline)"
/bin/busybox reboot -f
