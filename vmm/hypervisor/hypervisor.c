/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "hypervisor.h"
#include "macro.h"

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

const char *hv_exit_kind_to_string(HvExitKind k) {
        if ((unsigned) k >= ARRAY_SIZE(exit_kind_names))
                return NULL;
        return exit_kind_names[k];
}

HvExitKind hv_exit_kind_from_string(const char *s) {
        for (size_t i = 0; i < ARRAY_SIZE(exit_kind_names); i++)
                if (s && strcmp(exit_kind_names[i], s) == 0)
                        return (HvExitKind) i;
        return _HV_EXIT_KIND_MAX;
}
