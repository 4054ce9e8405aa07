/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>

#include "common/macro.h"
#include "seccomp/policy.h"

#define C(name) { #name, (uint64_t) (name) }
static const struct {
        const char *name;
        uint64_t value;
} constants[] = {
        /* mmap, mprotect */
        C(PROT_NONE), C(PROT_READ), C(PROT_WRITE), C(PROT_EXEC),
        C(MAP_SHARED), C(MAP_PRIVATE), C(MAP_FIXED), C(MAP_ANONYMOUS), C(MAP_NORESERVE), C(MAP_STACK),
        /* clone */
        C(CLONE_VM), C(CLONE_FS), C(CLONE_FILES), C(CLONE_SIGHAND), C(CLONE_PTRACE), C(CLONE_VFORK),
        C(CLONE_PARENT), C(CLONE_THREAD), C(CLONE_NEWNS), C(CLONE_SYSVSEM), C(CLONE_SETTLS),
        C(CLONE_PARENT_SETTID), C(CLONE_CHILD_CLEARTID), C(CLONE_UNTRACED), C(CLONE_CHILD_SETTID),
        C(CLONE_NEWCGROUP), C(CLONE_NEWUTS), C(CLONE_NEWIPC), C(CLONE_NEWUSER), C(CLONE_NEWPID),
        C(CLONE_NEWNET), C(CLONE_IO),
        /* sockets */
        C(AF_UNIX), C(AF_INET), C(AF_INET6), C(AF_NETLINK), C(AF_VSOCK),
        C(SOCK_STREAM), C(SOCK_DGRAM), C(SOCK_SEQPACKET), C(SOCK_CLOEXEC), C(SOCK_NONBLOCK),
        C(SOL_SOCKET), C(SO_PEERCRED),
        /* fcntl */
        C(F_GETFD), C(F_SETFD), C(F_GETFL), C(F_SETFL), C(F_DUPFD_CLOEXEC), C(F_ADD_SEALS), C(F_GET_SEALS),
        /* futex */
        C(FUTEX_WAIT), C(FUTEX_WAKE), C(FUTEX_PRIVATE_FLAG),
        /* signals */
        C(SIGSYS), C(SIGUSR1), C(SIGSEGV), C(SIGABRT), C(SIGBUS), C(SIGILL), C(SIGFPE), C(SIGPIPE),
        /* timer_create */
        C(CLOCK_MONOTONIC),
        /* prctl */
        C(PR_SET_NAME), C(PR_GET_NAME), C(PR_SET_VMA),
        /* seccomp */
        C(SECCOMP_SET_MODE_FILTER),
        /* madvise */
        C(MADV_DONTNEED), C(MADV_REMOVE), C(MADV_DONTDUMP), C(MADV_FREE), C(MADV_NOHUGEPAGE),
        C(MADV_HUGEPAGE),
        /* terminal ioctls */
        C(TCGETS), C(TCSETS), C(TIOCGWINSZ), C(FIONBIO), C(FIONREAD), C(FIOCLEX),
        /* block devices */
        C(BLKGETSIZE64), C(BLKDISCARD), C(BLKZEROOUT), C(BLKSSZGET),
        /* KVM ioctls: /dev/kvm, the VM and the vCPUs */
        C(KVM_RUN), C(KVM_IRQ_LINE), C(KVM_SIGNAL_MSI), C(KVM_SET_GSI_ROUTING), C(KVM_IRQFD),
        C(KVM_IOEVENTFD), C(KVM_SET_USER_MEMORY_REGION), C(KVM_GET_REGS), C(KVM_SET_REGS), C(KVM_TRANSLATE),
        C(KVM_GET_SREGS), C(KVM_SET_SREGS), C(KVM_GET_LAPIC), C(KVM_SET_LAPIC), C(KVM_GET_MP_STATE),
        C(KVM_SET_MP_STATE), C(KVM_GET_CLOCK), C(KVM_SET_CLOCK), C(KVM_GET_DIRTY_LOG),
        C(KVM_CHECK_EXTENSION), C(KVM_CREATE_VCPU), C(KVM_GET_VCPU_EVENTS), C(KVM_SET_VCPU_EVENTS),
        C(KVM_GET_MSRS), C(KVM_SET_MSRS), C(KVM_GET_FPU), C(KVM_SET_FPU), C(KVM_GET_XSAVE),
        C(KVM_SET_XSAVE), C(KVM_GET_IRQCHIP), C(KVM_SET_IRQCHIP), C(KVM_GET_PIT2), C(KVM_SET_PIT2),
        C(KVM_REGISTER_COALESCED_MMIO), C(KVM_UNREGISTER_COALESCED_MMIO),
};
#undef C

int policy_constant(const char *name, uint64_t *ret) {
        for (size_t i = 0; i < ARRAY_SIZE(constants); i++)
                if (strcmp(constants[i].name, name) == 0) {
                        *ret = constants[i].value;
                        return 0;
                }
        return -ENOENT;
}

#define POLICY_SYSCALLS_MAX 1024

/* The action a syscall was first given, to refuse a second, different one
 * (libseccomp would keep one of them silently). */
typedef struct SeenRule {
        uint32_t action;
        const char *file;
        unsigned line;
} SeenRule;

typedef struct Parser {
        SeenRule *seen;         /* POLICY_SYSCALLS_MAX entries, by number */
        const PolicySource *sources;
        size_t n_sources;
        scmp_filter_ctx ctx;
        PolicyError *e;
        const char *file;
        unsigned line;
} Parser;

_printf_(2, 3) static int parse_error(Parser *p, const char *fmt, ...) {
        char what[POLICY_ERROR_MAX - 64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(p->e->message, sizeof(p->e->message), "%.40s:%u: %s", p->file, p->line, what);
        return -EINVAL;
}

static const PolicySource *find_source(const Parser *p, const char *name) {
        for (size_t i = 0; i < p->n_sources; i++)
                if (strcmp(p->sources[i].name, name) == 0)
                        return &p->sources[i];
        return NULL;
}

/* A cursor over one rule's right-hand side. */
typedef struct Lexer {
        const char *s;
} Lexer;

static void skip_space(Lexer *l) {
        while (*l->s == ' ' || *l->s == '\t')
                l->s++;
}

static bool lex_accept(Lexer *l, const char *tok) {
        size_t n = strlen(tok);

        skip_space(l);
        if (strncmp(l->s, tok, n) != 0)
                return false;
        /* "|" must not match the first half of "||", "&" of "&&", "<" of "<=". */
        if ((strcmp(tok, "|") == 0 && l->s[1] == '|') || (strcmp(tok, "&") == 0 && l->s[1] == '&') ||
            ((strcmp(tok, "<") == 0 || strcmp(tok, ">") == 0) && l->s[1] == '='))
                return false;
        l->s += n;
        return true;
}

static size_t word(Lexer *l, char *buf, size_t size) {
        size_t n = 0;

        skip_space(l);
        while (isalnum((unsigned char) l->s[n]) || l->s[n] == '_')
                n++;
        if (n == 0 || n >= size)
                return 0;
        memcpy(buf, l->s, n);
        buf[n] = '\0';
        l->s += n;
        return n;
}

static int parse_atom(Parser *p, Lexer *l, uint64_t *ret) {
        char w[64], *end;

        if (word(l, w, sizeof(w)) == 0)
                return parse_error(p, "expected a number or a constant at '%.20s'", l->s);
        if (isdigit((unsigned char) w[0])) {
                errno = 0;
                unsigned long long v = strtoull(w, &end, 0);
                if (errno != 0 || *end != '\0')
                        return parse_error(p, "bad number '%s'", w);
                *ret = v;
                return 0;
        }
        if (policy_constant(w, ret) < 0)
                return parse_error(p, "unknown constant '%s'", w);
        return 0;
}

/* VALUE := ATOM ('|' ATOM)* */
static int parse_value(Parser *p, Lexer *l, uint64_t *ret) {
        uint64_t v = 0, a;
        int r;

        do {
                r = parse_atom(p, l, &a);
                if (r < 0)
                        return r;
                v |= a;
        } while (lex_accept(l, "|"));
        *ret = v;
        return 0;
}

/* CMP := argN OP VALUE | argN '&' VALUE '==' VALUE */
static int parse_comparison(Parser *p, Lexer *l, struct scmp_arg_cmp *ret) {
        static const struct {
                const char *tok;
                enum scmp_compare op;
        } ops[] = {
                { "==", SCMP_CMP_EQ }, { "!=", SCMP_CMP_NE }, { "<=", SCMP_CMP_LE },
                { ">=", SCMP_CMP_GE }, { "<", SCMP_CMP_LT }, { ">", SCMP_CMP_GT },
        };
        char w[16];
        uint64_t mask, v;
        int r;

        if (word(l, w, sizeof(w)) == 0 || strncmp(w, "arg", 3) != 0 || w[3] < '0' || w[3] > '5' || w[4] != '\0')
                return parse_error(p, "expected arg0 .. arg5 at '%.20s'", l->s);
        unsigned arg = (unsigned) (w[3] - '0');

        if (lex_accept(l, "&")) {
                r = parse_value(p, l, &mask);
                if (r < 0)
                        return r;
                if (!lex_accept(l, "=="))
                        return parse_error(p, "expected '==' after 'arg%u & MASK'", arg);
                r = parse_value(p, l, &v);
                if (r < 0)
                        return r;
                if ((v & ~mask) != 0)
                        return parse_error(p, "'arg%u & 0x%llx == 0x%llx' can never be true", arg,
                                           (unsigned long long) mask, (unsigned long long) v);
                *ret = (struct scmp_arg_cmp) { .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v };
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
                if (lex_accept(l, ops[i].tok)) {
                        r = parse_value(p, l, &v);
                        if (r < 0)
                                return r;
                        *ret = (struct scmp_arg_cmp) { .arg = arg, .op = ops[i].op, .datum_a = v };
                        return 0;
                }
        return parse_error(p, "expected a comparison (== != < <= > >= or & MASK ==) after arg%u", arg);
}

static int add_rule(Parser *p, const char *name, int nr, uint32_t action,
                    const struct scmp_arg_cmp *cmps, unsigned n) {
        int r;

        if (nr >= 0 && nr < POLICY_SYSCALLS_MAX) {
                SeenRule *seen = &p->seen[nr];
                if (seen->file && seen->action != action)
                        return parse_error(p, "'%s' conflicts with its rule at %s:%u", name, seen->file,
                                           seen->line);
                if (!seen->file)
                        *seen = (SeenRule) { .action = action, .file = p->file, .line = p->line };
        }
        r = seccomp_rule_add_exact_array(p->ctx, action, nr, n, cmps);
        if (r == -EEXIST)
                return parse_error(p, "'%s' conflicts with an earlier rule for it", name);
        if (r < 0)
                return parse_error(p, "libseccomp refused the rule for '%s': %s", name, strerror(-r));
        return 0;
}

static int errno_from_name(const char *name) {
        for (int i = 1; i < 4096; i++) {
                const char *s = strerrorname_np(i);
                if (s && strcmp(s, name) == 0)
                        return i;
        }
        return -ENOENT;
}

/* NAME ':' ( '1' | 'return' ERRNO | EXPR ) where EXPR := CONJ ('||' CONJ)*, CONJ := CMP ('&&' CMP)* */
static int parse_rule(Parser *p, char *line) {
        char name[64], *colon;
        Lexer l;
        int nr, r;

        colon = strchr(line, ':');
        if (!colon)
                return parse_error(p, "expected 'syscall: rule'");
        *colon = '\0';
        l = (Lexer) { .s = line };
        if (word(&l, name, sizeof(name)) == 0 || (skip_space(&l), *l.s != '\0'))
                return parse_error(p, "bad syscall name '%s'", line);
        nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR || nr < 0)
                return parse_error(p, "unknown syscall '%s'", name);

        l = (Lexer) { .s = colon + 1 };
        skip_space(&l);
        if (strcmp(l.s, "1") == 0)
                return add_rule(p, name, nr, SCMP_ACT_ALLOW, NULL, 0);

        char w[16];
        Lexer save = l;
        if (word(&l, w, sizeof(w)) > 0 && strcmp(w, "return") == 0) {
                char ename[32];
                if (word(&l, ename, sizeof(ename)) == 0 || (skip_space(&l), *l.s != '\0'))
                        return parse_error(p, "expected 'return ERRNO' (like 'return ENOSYS')");
                int e = errno_from_name(ename);
                if (e < 0)
                        return parse_error(p, "unknown errno '%s'", ename);
                return add_rule(p, name, nr, SCMP_ACT_ERRNO((uint32_t) e), NULL, 0);
        }
        l = save;

        for (unsigned alt = 0;; alt++) {
                struct scmp_arg_cmp cmps[6];
                unsigned n = 0;

                if (alt >= POLICY_ALTERNATIVES_MAX)
                        return parse_error(p, "more than %d alternatives", POLICY_ALTERNATIVES_MAX);
                do {
                        if (n >= ARRAY_SIZE(cmps))
                                return parse_error(p, "more than 6 comparisons joined by &&");
                        r = parse_comparison(p, &l, &cmps[n]);
                        if (r < 0)
                                return r;
                        for (unsigned i = 0; i < n; i++)
                                if (cmps[i].arg == cmps[n].arg)
                                        return parse_error(p, "arg%u compared twice in one alternative "
                                                           "(libseccomp cannot; use ||)", cmps[n].arg);
                        n++;
                } while (lex_accept(&l, "&&"));
                r = add_rule(p, name, nr, SCMP_ACT_ALLOW, cmps, n);
                if (r < 0)
                        return r;
                if (lex_accept(&l, "||"))
                        continue;
                skip_space(&l);
                if (*l.s != '\0')
                        return parse_error(p, "unexpected '%.20s'", l.s);
                return 0;
        }
}

static int parse_file(Parser *p, const char *name, unsigned depth);

static int parse_line(Parser *p, char *line, unsigned depth) {
        char *s = line, *end;

        end = strchr(s, '#');
        if (end)
                *end = '\0';
        while (isspace((unsigned char) *s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char) end[-1]))
                *--end = '\0';
        if (*s == '\0')
                return 0;

        if (strncmp(s, "@include", 8) == 0 && (s[8] == ' ' || s[8] == '\t')) {
                const char *inc = s + 9;
                const char *file = p->file;
                unsigned line_no = p->line;
                int r;

                while (*inc == ' ' || *inc == '\t')
                        inc++;
                if (!find_source(p, inc))
                        return parse_error(p, "@include %s: no such policy", inc);
                if (depth + 1 >= POLICY_INCLUDE_DEPTH_MAX)
                        return parse_error(p, "@include %s: nested too deep (a loop?)", inc);
                r = parse_file(p, inc, depth + 1);
                p->file = file;
                p->line = line_no;
                return r;
        }
        if (*s == '@')
                return parse_error(p, "unknown directive '%s'", s);
        return parse_rule(p, s);
}

static int parse_file(Parser *p, const char *name, unsigned depth) {
        const PolicySource *src = find_source(p, name);
        const char *s;
        int r;

        if (!src)
                return -ENOENT;
        p->file = src->name;
        p->line = 0;
        s = src->text;
        while (*s) {
                char buf[POLICY_LINE_MAX];
                size_t n = strcspn(s, "\n");

                p->line++;
                if (n >= sizeof(buf))
                        return parse_error(p, "line longer than %d bytes", POLICY_LINE_MAX - 1);
                memcpy(buf, s, n);
                buf[n] = '\0';
                r = parse_line(p, buf, depth);
                if (r < 0)
                        return r;
                /* An include changed p->file; parse_line restored it. */
                s += n;
                if (*s == '\n')
                        s++;
        }
        return 0;
}

static int export_bpf(scmp_filter_ctx ctx, PolicyProgram *ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ void *data = NULL;
        off_t size;
        int r;

        /* libseccomp 2.5 exports to a descriptor only. */
        fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % sizeof(struct sock_filter) != 0 ||
            size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -E2BIG;
        data = malloc((size_t) size);
        if (!data)
                return -ENOMEM;
        if (pread(fd, data, (size_t) size, 0) != size)
                return -EIO;
        ret->filter = TAKE_PTR(data);
        ret->len = (unsigned short) (size / sizeof(struct sock_filter));
        return 0;
}

static void seccomp_releasep(scmp_filter_ctx *ctx) {
        if (*ctx)
                seccomp_release(*ctx);
}

int policy_compile(const PolicySource *sources, size_t n_sources,
                   const char *const *roots, size_t n_roots,
                   PolicyDefault def, PolicyProgram *ret, PolicyError *e) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        static const uint32_t actions[_POLICY_DEFAULT_MAX] = {
                [POLICY_DEFAULT_TRAP] = SCMP_ACT_TRAP,
                [POLICY_DEFAULT_KILL] = SCMP_ACT_KILL_PROCESS,
                [POLICY_DEFAULT_LOG] = SCMP_ACT_LOG,
        };
        _cleanup_free_ SeenRule *seen = NULL;
        Parser p;
        int r;

        *e = (PolicyError) {};
        seen = calloc(POLICY_SYSCALLS_MAX, sizeof(SeenRule));
        if (!seen)
                return -ENOMEM;
        if ((unsigned) def >= _POLICY_DEFAULT_MAX)
                return -EINVAL;
        ctx = seccomp_init(actions[def]);
        if (!ctx)
                return -ENOMEM;
        /* Another architecture's syscall numbers (int 0x80, x32) never pass. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return r;
        /* A binary tree of syscall numbers instead of a list: the hot
         * syscalls of a role (KVM_RUN's ioctl, a block worker's preadv)
         * cost a few comparisons, not one per rule before them. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return r;

        p = (Parser) { .seen = seen, .sources = sources, .n_sources = n_sources, .ctx = ctx, .e = e };
        for (size_t i = 0; i < n_roots; i++) {
                if (!find_source(&p, roots[i])) {
                        snprintf(e->message, sizeof(e->message), "%s: no such policy", roots[i]);
                        return -ENOENT;
                }
                r = parse_file(&p, roots[i], 0);
                if (r < 0)
                        return r;
        }
        return export_bpf(ctx, ret);
}

void policy_program_done(PolicyProgram *p) {
        free(p->filter);
        *p = (PolicyProgram) {};
}
