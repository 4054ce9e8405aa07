/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

/* Seccomp policies as data: a small line-based language (docs/sandbox.md)
 * compiled with libseccomp into a classic BPF program. */

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POLICY_INCLUDE_DEPTH_MAX 8
#define POLICY_LINE_MAX 1024
#define POLICY_ALTERNATIVES_MAX 64
#define POLICY_ERROR_MAX 256

/* One policy file: its name (as @include spells it) and its text. */
typedef struct PolicySource {
        const char *name;
        const char *text;
} PolicySource;

/* What a syscall the policy does not allow does. */
typedef enum PolicyDefault {
        POLICY_DEFAULT_TRAP,    /* SIGSYS to the thread (the sandbox's handler reports and dies) */
        POLICY_DEFAULT_KILL,    /* the kernel kills the process with SIGSYS */
        POLICY_DEFAULT_LOG,     /* allowed, and logged by the kernel: for developing a policy */
        _POLICY_DEFAULT_MAX,
} PolicyDefault;

/* "FILE:LINE: what is wrong", one line. */
typedef struct PolicyError {
        char message[POLICY_ERROR_MAX];
} PolicyError;

/* A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER). */
typedef struct PolicyProgram {
        struct sock_filter *filter;
        unsigned short len;
} PolicyProgram;

/* Compiles the union of the rules of `roots` (file names looked up in
 * `sources`, with their @includes) for the native architecture. Returns
 * -EINVAL with *e filled for a malformed policy, other -errno otherwise. */
int policy_compile(const PolicySource *sources, size_t n_sources,
                   const char *const *roots, size_t n_roots,
                   PolicyDefault def, PolicyProgram *ret, PolicyError *e);

void policy_program_done(PolicyProgram *p);

/* The value of a constant policies may use (KVM_RUN, PROT_EXEC, AF_UNIX ...);
 * -ENOENT for an unknown name. */
int policy_constant(const char *name, uint64_t *ret);

#ifdef __cplusplus
}
#endif
