/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "vmm/hypervisor/hypervisor.h"
#include "common/macro.h"
#include "common/string-table.h"

static const char *const exit_kind_names[_HV_EXIT_KIND_MAX] = {
        [HV_EXIT_IO] = "io",
        [HV_EXIT_MMIO] = "mmio",
        [HV_EXIT_INTERRUPTED] = "interrupted",
        [HV_EXIT_SHUTDOWN] = "shutdown",
        [HV_EXIT_RESET] = "reset",
        [HV_EXIT_POWEROFF] = "poweroff",
        [HV_EXIT_INTERNAL_ERROR] = "internal-error",
        [HV_EXIT_FAIL_ENTRY] = "fail-entry",
        [HV_EXIT_UNKNOWN] = "unknown",
};

DEFINE_STRING_TABLE_TO_STRING(hv_exit_kind, HvExitKind, exit_kind_names)
DEFINE_STRING_TABLE_FROM_STRING(hv_exit_kind, HvExitKind, exit_kind_names, _HV_EXIT_KIND_MAX)
