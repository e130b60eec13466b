/* seccomp-export.c — bench helper: the seccomp program of a tenantd profile, for peers.
 *
 *   seccomp-export PROFILE BPF-FILE OCI-JSON-FILE
 *
 * Loads PROFILE from the policy search path ($TENANTD_POLICY_DIR first) and compiles it
 * with tenantd's own code (policy_load + policy_compile from build/libtenantd.a), so
 * BPF-FILE holds exactly the program a tenantd sandbox installs; bwrap takes it with
 * `--seccomp FD`. OCI-JSON-FILE is the same profile as an OCI "linux.seccomp" object
 * for runc and crun, which compile it with libseccomp on every start. The OCI form
 * is close, not identical: OCI has no way to say "allowed except when", so a call that
 * tenantd allows with argument exceptions is written the way Docker's profile writes
 * clone: allowed when the blocked bits are clear (masked_eq MASK 0) if each exception
 * is a masked_eq of a value equal to its mask (clone/unshare with CLONE_NEWUSER), and
 * allowed unconditionally otherwise (ioctl: the TIOCSTI/TIOCLINUX exceptions are not
 * in the peers' profile). Calls allowed only under conditions keep their conditions.
 * Built by bench/sandbox-start; not part of tenantd. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec/policy.h"

static const char *oci_action(const struct policy_action *a, char *errno_buf, size_t len)
{
        errno_buf[0] = '\0';
        switch (a->type) {
        case POLICY_ALLOW:
                return "SCMP_ACT_ALLOW";
        case POLICY_LOG:
                return "SCMP_ACT_LOG";
        case POLICY_ERRNO:
                snprintf(errno_buf, len, ", \"errnoRet\": %d", a->errno_value);
                return "SCMP_ACT_ERRNO";
        case POLICY_TRAP:
                return "SCMP_ACT_TRAP";
        case POLICY_KILL_THREAD:
                return "SCMP_ACT_KILL";
        case POLICY_KILL_PROCESS:
                return "SCMP_ACT_KILL_PROCESS";
        }
        return "SCMP_ACT_KILL_PROCESS";
}

static const char *oci_op(enum policy_op op)
{
        static const char *const ops[] = {
            [POLICY_OP_EQ] = "SCMP_CMP_EQ",
            [POLICY_OP_NE] = "SCMP_CMP_NE",
            [POLICY_OP_LT] = "SCMP_CMP_LT",
            [POLICY_OP_LE] = "SCMP_CMP_LE",
            [POLICY_OP_GT] = "SCMP_CMP_GT",
            [POLICY_OP_GE] = "SCMP_CMP_GE",
            [POLICY_OP_MASKED_EQ] = "SCMP_CMP_MASKED_EQ",
        };
        return ops[op];
}

/* Does any rule with arguments and a different action name this call? */
static const struct policy_rule *exception_for(const struct policy *p, const char *name,
                                               const struct policy_rule *uncond)
{
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *r = &p->rules[i];
                if (r == uncond || !r->n_args || r->action.type == uncond->action.type)
                        continue;
                for (size_t j = 0; j < r->n_syscalls; j++)
                        if (strcmp(r->syscalls[j], name) == 0)
                                return r;
        }
        return NULL;
}

static void write_args(FILE *f, const struct policy_arg *args, size_t n)
{
        fprintf(f, ", \"args\": [");
        for (size_t k = 0; k < n; k++) {
                const struct policy_arg *a = &args[k];
                uint64_t v1 = a->op == POLICY_OP_MASKED_EQ ? a->mask : a->value;
                uint64_t v2 = a->op == POLICY_OP_MASKED_EQ ? a->value : 0;
                fprintf(f,
                        "%s{\"index\": %u, \"value\": %" PRIu64 ", \"valueTwo\": %" PRIu64
                        ", \"op\": \"%s\"}",
                        k ? ", " : "", a->index, v1, v2, oci_op(a->op));
        }
        fprintf(f, "]");
}

static int write_oci(const struct policy *p, FILE *f)
{
        char eb[64];
        const char *def = oci_action(&p->default_action, eb, sizeof(eb));
        fprintf(f,
                "{\"defaultAction\": \"%s\"%s, \"architectures\": [\"SCMP_ARCH_X86_64\"], "
                "\"syscalls\": [\n",
                def, eb);
        int first = 1;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *r = &p->rules[i];
                const char *act = oci_action(&r->action, eb, sizeof(eb));
                if (r->n_args) {
                        if (r->action.type != POLICY_ALLOW && r->action.type != POLICY_LOG)
                                continue; /* an exception: folded into the allow rule */
                        fprintf(f, "%s{\"names\": [", first ? "" : ",\n");
                        for (size_t j = 0; j < r->n_syscalls; j++)
                                fprintf(f, "%s\"%s\"", j ? ", " : "", r->syscalls[j]);
                        fprintf(f, "], \"action\": \"%s\"%s", act, eb);
                        write_args(f, r->args, r->n_args);
                        fprintf(f, "}");
                        first = 0;
                        continue;
                }
                /* Unconditional: the plain names in one entry, calls with exceptions
                 * in entries of their own. */
                fprintf(f, "%s{\"names\": [", first ? "" : ",\n");
                first = 0;
                size_t plain = 0;
                for (size_t j = 0; j < r->n_syscalls; j++)
                        if (!exception_for(p, r->syscalls[j], r))
                                fprintf(f, "%s\"%s\"", plain++ ? ", " : "", r->syscalls[j]);
                fprintf(f, "], \"action\": \"%s\"%s}", act, eb);
                for (size_t j = 0; j < r->n_syscalls; j++) {
                        const struct policy_rule *ex = exception_for(p, r->syscalls[j], r);
                        if (!ex)
                                continue;
                        fprintf(f, ",\n{\"names\": [\"%s\"], \"action\": \"%s\"%s", r->syscalls[j],
                                act, eb);
                        const struct policy_arg *a = &ex->args[0];
                        if (ex->n_args == 1 && a->op == POLICY_OP_MASKED_EQ &&
                            a->mask == a->value) {
                                struct policy_arg clear = {a->index, POLICY_OP_MASKED_EQ, a->mask,
                                                           0};
                                write_args(f, &clear, 1);
                        }
                        fprintf(f, "}");
                }
        }
        fprintf(f, "\n]}\n");
        return ferror(f) ? -EIO : 0;
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: %s PROFILE BPF-FILE OCI-JSON-FILE\n", argv[0]);
                return 2;
        }
        struct tn_err *err = NULL;
        struct policy *p = NULL;
        struct policy_bpf *b = NULL;
        if (policy_load(argv[1], &p, &err) < 0 || policy_compile(p, &b, &err) < 0) {
                fprintf(stderr, "seccomp-export: %s\n", tn_err_msg(err));
                return 1;
        }
        FILE *f = fopen(argv[2], "we");
        if (!f || fwrite(b->insns, sizeof(*b->insns), b->len, f) != b->len || fclose(f) != 0) {
                fprintf(stderr, "seccomp-export: %s: %s\n", argv[2], strerror(errno));
                return 1;
        }
        f = fopen(argv[3], "we");
        if (!f || write_oci(p, f) < 0 || fclose(f) != 0) {
                fprintf(stderr, "seccomp-export: %s: %s\n", argv[3], strerror(errno));
                return 1;
        }
        printf("%s: %zu BPF instructions (binary tree: %s)\n", p->name, b->len,
               b->optimized ? "yes" : "no");
        policy_bpf_free(b);
        policy_free(p);
        return 0;
}
