/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Exit codes of `majordome-vmm run`: part of the interface, documented in
 * docs/majordome-vmm.md. 1-63 are left to the debug-exit port, whose value
 * becomes the exit code as written. A crash ends the process by its
 * signal (a shell shows 128 + the signal number). */
enum {
        VMM_EXIT_OK = 0,               /* guest powered off or reset; stop requested */
        VMM_EXIT_USAGE = 64,           /* bad command line or configuration */
        VMM_EXIT_BAD_IMAGE = 65,       /* kernel or initrd unusable */
        VMM_EXIT_NO_INPUT = 66,        /* kernel or initrd missing or unreadable */
        VMM_EXIT_NO_KVM = 69,          /* no /dev/kvm, or an unsupported KVM */
        VMM_EXIT_KVM_FAILURE = 70,     /* a hypervisor call failed */
        VMM_EXIT_OS_ERROR = 71,        /* a host resource could not be had */
        VMM_EXIT_TRIPLE_FAULT = 72,    /* the guest triple-faulted */
        VMM_EXIT_GUEST_FAILURE = 73,   /* the hypervisor could not run guest code */
        VMM_EXIT_GUEST_PANIC = 74,     /* the guest kernel panicked (pvpanic), on_panic=stop */
        VMM_EXIT_KVM_DENIED = 77,      /* /dev/kvm exists but may not be opened */
};
