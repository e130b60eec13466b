/* cmd_policy.c — `tenantctl policy list|check|show`: the seccomp profiles and
 * capability sets on the policy search path, without a daemon. "@NAME" names a
 * capability set wherever a profile name is accepted. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spec/caps.h"
#include "lib/json.h"
#include "lib/log.h"
#include "spec/policy.h"
#include "cli/tenantctl.h"

/* Invalid or missing input is a usage error (2); anything else a failure (1). */
static int exit_for(int r)
{
        return r == -EINVAL || r == -ENOENT || r == -EFBIG || r == -E2BIG ? EXIT_USAGE
                                                                          : EXIT_FAILED;
}

static void gen_kv(struct json_gen *g, const char *key, const char *value)
{
        json_gen_key(g, key);
        if (value)
                json_gen_string(g, value);
        else
                json_gen_null(g);
}

static void gen_ki(struct json_gen *g, const char *key, int64_t value)
{
        json_gen_key(g, key);
        json_gen_int(g, value);
}

/* ---- policy check ---- */

static void check_json(struct json_gen *g, const char *name, const struct policy *p,
                       const struct policy_bpf *b, const struct tn_err *err)
{
        char act[32];
        json_gen_object_open(g);
        gen_kv(g, "name", name);
        json_gen_key(g, "valid");
        json_gen_bool(g, b != NULL);
        if (p) {
                gen_kv(g, "file", p->path);
                gen_kv(g, "base", p->base);
                gen_kv(g, "default_action",
                       policy_action_to_string(&p->default_action, act, sizeof(act)));
                gen_ki(g, "rules", (int64_t)p->n_rules);
        }
        if (b) {
                gen_ki(g, "syscalls_allowed", (int64_t)b->n_allowed);
                gen_ki(g, "syscalls_allowed_with_conditions", (int64_t)b->n_conditional);
                gen_ki(g, "syscalls_blocked", (int64_t)b->n_blocked);
                gen_ki(g, "syscalls_other_arch", (int64_t)b->n_foreign);
                gen_ki(g, "filter_rules", (int64_t)b->n_libseccomp_rules);
                gen_ki(g, "bpf_instructions", (int64_t)b->len);
                gen_ki(g, "bpf_bytes", (int64_t)(b->len * sizeof(struct sock_filter)));
                json_gen_key(g, "binary_tree");
                json_gen_bool(g, b->optimized);
        }
        if (err)
                gen_kv(g, "error", tn_err_msg(err));
        json_gen_object_close(g);
}

static void check_text(const struct policy *p, const struct policy_bpf *b)
{
        char act[32];
        printf("%s: ok\n", p->name);
        printf("  file            %s\n", p->path);
        printf("  base            %s\n", p->base ? p->base : "-");
        printf("  default action  %s\n",
               policy_action_to_string(&p->default_action, act, sizeof(act)));
        printf("  rules           %zu (%zu in the filter)\n", p->n_rules, b->n_libseccomp_rules);
        printf("  syscalls        %zu allowed (%zu only under argument conditions), %zu blocked "
               "by name",
               b->n_allowed, b->n_conditional, b->n_blocked);
        if (b->n_foreign)
                printf(", %zu names of other architectures ignored", b->n_foreign);
        printf("\n  bpf             %zu instructions, %zu bytes, binary tree: %s\n", b->len,
               b->len * sizeof(struct sock_filter), b->optimized ? "yes" : "no");
}

static void capset_json(struct json_gen *g, const struct capset *s, bool whys)
{
        char buf[64];
        gen_kv(g, "file", s->path);
        gen_kv(g, "description", s->description);
        json_gen_key(g, "capabilities");
        json_gen_array_open(g);
        for (size_t i = 0; i < s->n_caps; i++) {
                const char *n = caps_to_name(s->caps[i].cap, buf, sizeof(buf));
                if (!whys) {
                        json_gen_string(g, n);
                        continue;
                }
                json_gen_object_open(g);
                gen_kv(g, "name", n);
                gen_kv(g, "why", s->caps[i].why);
                gen_kv(g, "from", s->caps[i].from);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

static int check_capset(struct json_gen *g, const char *name)
{
        _cleanup_capset_ struct capset *s = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = capset_load(name + 1, &s, &err);
        if (g) {
                json_gen_object_open(g);
                gen_kv(g, "name", name);
                json_gen_key(g, "valid");
                json_gen_bool(g, r == 0);
                if (s)
                        capset_json(g, s, false);
                if (err)
                        gen_kv(g, "error", tn_err_msg(err));
                json_gen_object_close(g);
        }
        if (r < 0) {
                log_error("%s", tn_err_msg(err));
                return exit_for(r);
        }
        if (!g) {
                char buf[64];
                printf("%s: ok\n  file            %s\n  capabilities    ", name, s->path);
                for (size_t i = 0; i < s->n_caps; i++)
                        printf("%s%s", i ? " " : "", caps_to_name(s->caps[i].cap, buf, 64));
                printf("%s\n", s->n_caps ? "" : "(none)");
        }
        return EXIT_OK;
}

static int check_one(struct json_gen *g, const char *name)
{
        if (name[0] == '@')
                return check_capset(g, name);
        _cleanup_policy_ struct policy *p = NULL;
        _cleanup_policy_bpf_ struct policy_bpf *b = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = policy_load(name, &p, &err);
        if (r == 0)
                r = policy_compile(p, &b, &err);
        if (g)
                check_json(g, name, p, b, err);
        if (r < 0) {
                log_error("%s", tn_err_msg(err));
                return exit_for(r);
        }
        if (!g && p && b)
                check_text(p, b);
        return EXIT_OK;
}

int cmd_policy_check(const struct cli *cli, int argc, char **argv)
{
        _cleanup_json_gen_ struct json_gen *g = cli->json ? json_gen_new(true) : NULL;
        if (cli->json && !g)
                return EXIT_FAILED;
        if (g)
                json_gen_array_open(g);
        int worst = EXIT_OK;
        for (int i = 1; i < argc; i++) {
                int rc = check_one(g, argv[i]);
                if (rc == EXIT_FAILED || (rc == EXIT_USAGE && worst == EXIT_OK))
                        worst = rc;
        }
        if (g) {
                json_gen_array_close(g);
                if (cli_print_json(g) != EXIT_OK)
                        return EXIT_FAILED;
        }
        return worst;
}

/* ---- policy list ---- */

static int list_kind(struct json_gen *g, enum policy_kind kind)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = policy_list(kind, &names, &err);
        if (r < 0) {
                log_error("%s", tn_err_msg(err));
                return EXIT_FAILED;
        }
        int rc = EXIT_OK;
        if (g) {
                json_gen_key(g, kind == POLICY_SECCOMP ? "seccomp" : "capabilities");
                json_gen_array_open(g);
        } else {
                printf("%s\n", kind == POLICY_SECCOMP ? "SECCOMP PROFILES" : "CAPABILITY SETS");
        }
        for (size_t i = 0; names[i]; i++) {
                _cleanup_policy_ struct policy *p = NULL;
                _cleanup_capset_ struct capset *s = NULL;
                _cleanup_err_ struct tn_err *e = NULL;
                r = kind == POLICY_SECCOMP ? policy_load(names[i], &p, &e)
                                           : capset_load(names[i], &s, &e);
                const char *path = p ? p->path : s ? s->path : NULL;
                const char *desc = p ? p->description : s ? s->description : NULL;
                char shown[80];
                snprintf(shown, sizeof(shown), "%s%s", kind == POLICY_SECCOMP ? "" : "@", names[i]);
                if (r < 0) {
                        log_error("%s", tn_err_msg(e));
                        rc = EXIT_USAGE;
                }
                if (g) {
                        json_gen_object_open(g);
                        gen_kv(g, "name", shown);
                        json_gen_key(g, "valid");
                        json_gen_bool(g, r == 0);
                        gen_kv(g, "file", path);
                        gen_kv(g, "description", desc);
                        json_gen_object_close(g);
                } else {
                        printf("  %-18s %s\n", shown, desc ? desc : "(invalid, see above)");
                }
        }
        if (g)
                json_gen_array_close(g);
        return rc;
}

int cmd_policy_list(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        (void)argv;
        _cleanup_json_gen_ struct json_gen *g = cli->json ? json_gen_new(true) : NULL;
        if (cli->json && !g)
                return EXIT_FAILED;
        if (g)
                json_gen_object_open(g);
        int a = list_kind(g, POLICY_SECCOMP);
        if (!g)
                putchar('\n');
        int b = list_kind(g, POLICY_CAPABILITIES);
        if (g) {
                json_gen_object_close(g);
                if (cli_print_json(g) != EXIT_OK)
                        return EXIT_FAILED;
        }
        return a == EXIT_FAILED || b == EXIT_FAILED ? EXIT_FAILED : a ? a : b;
}

/* ---- policy show ---- */

static void arg_text(const struct policy_arg *a, char *buf, size_t len)
{
        if (a->op == POLICY_OP_MASKED_EQ)
                snprintf(buf, len, "(arg%u & 0x%llx) == 0x%llx", a->index,
                         (unsigned long long)a->mask, (unsigned long long)a->value);
        else
                snprintf(buf, len, "arg%u %s 0x%llx", a->index, policy_op_to_string(a->op),
                         (unsigned long long)a->value);
}

static void show_rule_text(size_t i, const struct policy_rule *r)
{
        char act[32], cond[96];
        printf("%3zu  %-19s %-15s ", i, policy_action_to_string(&r->action, act, sizeof(act)),
               r->from);
        for (size_t k = 0; k < r->n_args; k++) {
                arg_text(&r->args[k], cond, sizeof(cond));
                printf("%s%s", k ? " && " : "", cond);
        }
        printf("%s\n", r->n_args ? "" : "always");
        size_t col = 0;
        for (size_t k = 0; k < r->n_syscalls; k++) {
                size_t w = strlen(r->syscalls[k]) + 1;
                if (col == 0 || col + w > 94) {
                        printf("%s     ", col ? "\n" : "");
                        col = 5;
                }
                printf(" %s", r->syscalls[k]);
                col += w;
        }
        printf("\n");
        if (r->why)
                printf("      why: %s\n", r->why);
}

static void show_rule_json(struct json_gen *g, const struct policy_rule *r)
{
        char act[32];
        json_gen_object_open(g);
        gen_kv(g, "action", policy_action_to_string(&r->action, act, sizeof(act)));
        json_gen_key(g, "syscalls");
        json_gen_array_open(g);
        for (size_t k = 0; k < r->n_syscalls; k++)
                json_gen_string(g, r->syscalls[k]);
        json_gen_array_close(g);
        json_gen_key(g, "args");
        json_gen_array_open(g);
        for (size_t k = 0; k < r->n_args; k++) {
                json_gen_object_open(g);
                gen_ki(g, "index", r->args[k].index);
                gen_kv(g, "op", policy_op_to_string(r->args[k].op));
                char hex[24];
                if (r->args[k].op == POLICY_OP_MASKED_EQ) {
                        snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)r->args[k].mask);
                        gen_kv(g, "mask", hex);
                }
                snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)r->args[k].value);
                gen_kv(g, "value", hex);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
        gen_kv(g, "why", r->why);
        gen_kv(g, "from", r->from);
        json_gen_object_close(g);
}

static int show_profile(const struct cli *cli, const char *name)
{
        _cleanup_policy_ struct policy *p = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = policy_load(name, &p, &err);
        if (r < 0) {
                log_error("%s", tn_err_msg(err));
                return exit_for(r);
        }
        char act[32];
        policy_action_to_string(&p->default_action, act, sizeof(act));
        if (!cli->json) {
                printf("profile %s (%s)%s%s\n%s\ndefault action: %s\n\n", p->name, p->path,
                       p->base ? ", based on " : "", p->base ? p->base : "", p->description, act);
                printf("  #  %-19s %-15s %s\n", "ACTION", "FROM", "CONDITION / SYSCALLS");
                for (size_t i = 0; i < p->n_rules; i++)
                        show_rule_text(i, &p->rules[i]);
                return EXIT_OK;
        }
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(true);
        if (!g)
                return EXIT_FAILED;
        json_gen_object_open(g);
        gen_kv(g, "name", p->name);
        gen_kv(g, "file", p->path);
        gen_kv(g, "base", p->base);
        gen_kv(g, "description", p->description);
        gen_kv(g, "default_action", act);
        json_gen_key(g, "rules");
        json_gen_array_open(g);
        for (size_t i = 0; i < p->n_rules; i++)
                show_rule_json(g, &p->rules[i]);
        json_gen_array_close(g);
        json_gen_object_close(g);
        return cli_print_json(g);
}

static int show_capset(const struct cli *cli, const char *name)
{
        _cleanup_capset_ struct capset *s = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = capset_load(name + 1, &s, &err);
        if (r < 0) {
                log_error("%s", tn_err_msg(err));
                return exit_for(r);
        }
        if (cli->json) {
                _cleanup_json_gen_ struct json_gen *g = json_gen_new(true);
                if (!g)
                        return EXIT_FAILED;
                json_gen_object_open(g);
                gen_kv(g, "name", name);
                capset_json(g, s, true);
                json_gen_object_close(g);
                return cli_print_json(g);
        }
        printf("capability set %s (%s)\n%s\n\n", name, s->path, s->description);
        char buf[64];
        for (size_t i = 0; i < s->n_caps; i++)
                printf("  %-22s %-16s %s\n", caps_to_name(s->caps[i].cap, buf, sizeof(buf)),
                       s->caps[i].from, s->caps[i].why);
        if (!s->n_caps)
                printf("  (no capabilities)\n");
        return EXIT_OK;
}

int cmd_policy_show(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        return argv[1][0] == '@' ? show_capset(cli, argv[1]) : show_profile(cli, argv[1]);
}
