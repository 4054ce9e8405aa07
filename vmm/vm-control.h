/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include "vmm/control-server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The control socket's requests, answered by a Vm (the server's userdata). */
extern const ControlOps vm_control_ops;

#ifdef __cplusplus
}
#endif
