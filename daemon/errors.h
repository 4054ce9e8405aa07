/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* The daemon's named D-Bus errors; docs/dbus-api.md lists when each is sent. */
#define MAJORDOME_ERROR_NO_SUCH_VM      "org.majordome.Error.NoSuchVm"
#define MAJORDOME_ERROR_VM_EXISTS       "org.majordome.Error.VmExists"
#define MAJORDOME_ERROR_INVALID_NAME    "org.majordome.Error.InvalidName"
#define MAJORDOME_ERROR_INVALID_CONFIG  "org.majordome.Error.InvalidConfig"
#define MAJORDOME_ERROR_LIMIT_REACHED   "org.majordome.Error.LimitReached"
#define MAJORDOME_ERROR_BUSY            "org.majordome.Error.Busy"
#define MAJORDOME_ERROR_NOT_RUNNING     "org.majordome.Error.NotRunning"
#define MAJORDOME_ERROR_ACCESS_DENIED   "org.majordome.Error.AccessDenied"
#define MAJORDOME_ERROR_VMM_FAILED      "org.majordome.Error.VmmFailed"
#define MAJORDOME_ERROR_TIMEOUT         "org.majordome.Error.Timeout"
#define MAJORDOME_ERROR_NOT_SUPPORTED   "org.majordome.Error.NotSupported"
#define MAJORDOME_ERROR_READ_ONLY       "org.majordome.Error.ReadOnly"
