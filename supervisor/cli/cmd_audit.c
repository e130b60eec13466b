/* cmd_audit.c — `tenantctl audit [--all] [NAME|FILE...]`: how exposed each tenant leaves
 * the host (spec/audit.h, docs/audit.md). A NAME is asked of tenantd, which adds what it
 * knows of the running tenant; a FILE (an argument with a "/" or ending in ".json") is
 * read here, from the manifest alone. No argument, or --all: every tenant tenantd has,
 * the most exposed first. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tenantctl.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/logtext.h"
#include "proto/control_proto.h"
#include "spec/audit.h"
#include "spec/launch.h"
#include "spec/manifest.h"

#define AUDIT_TENANTS_MAX 4096

/* One audited tenant, as tenantd sent it or as built here for a file: an object with
 * name, isolation, state (or file), score, findings. */
struct entry {
        struct json_value *owner; /* the reply holding v, or the parsed local result */
        const struct json_value *v;
        int64_t score;
};

static bool is_file(const char *arg)
{
        size_t n = strlen(arg);
        return strchr(arg, '/') || (n > 5 && strcmp(arg + n - 5, ".json") == 0);
}

/* A manifest file, audited here: the JSON object tenantd would send, parsed back so
 * that both kinds print the same way. */
static int audit_file(const char *path, struct json_value **ret)
{
        _cleanup_manifest_ struct manifest *m = NULL;
        _cleanup_free_ char *diags = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = manifest_load(path, false, &m, &diags, &err);
        if (r < 0) {
                if (diags)
                        fputs(diags, stderr);
                else
                        log_error("%s", tn_err_msg(err));
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        }
        struct audit_facts_owned facts;
        struct audit_report rep;
        if (audit_facts_load(m, &facts) < 0)
                return EXIT_FAILED;
        r = audit_manifest(m, &facts.f, &rep);
        audit_facts_clear(&facts);
        if (r < 0)
                return EXIT_FAILED;
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g) {
                audit_report_clear(&rep);
                return EXIT_FAILED;
        }
        json_gen_object_open(g);
        json_gen_key(g, "name");
        json_gen_string(g, m->name);
        json_gen_key(g, "isolation");
        json_gen_string(g, isolation_name(m->isolation));
        json_gen_key(g, "file");
        json_gen_string(g, path);
        audit_report_json(&rep, g);
        json_gen_object_close(g);
        audit_report_clear(&rep);
        const char *buf;
        size_t len;
        if (json_gen_finish(g, &buf, &len) < 0 ||
            json_parse(buf, len, &json_limits_config, ret, NULL) < 0) {
                log_error("%s: the audit cannot be encoded (a string that is not UTF-8?)", path);
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

static int audit_name(const struct cli *cli, const char *name, struct json_value **ret_owner,
                      const struct json_value **ret)
{
        struct control_request req;
        control_request_init(&req, CONTROL_OP_AUDIT);
        req.name = name;
        int rc = ctl_call(cli, &req, ret_owner);
        if (rc != EXIT_OK)
                return rc;
        *ret = json_get(*ret_owner, CTL_TENANT);
        if (!*ret || (*ret)->type != JSON_OBJECT) {
                log_error("tenantd's answer to audit has no tenant");
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

/* A string member made safe to print on one line (logtext.h): what tenantd sent may
 * hold a tenant's choices (a mount source, a name). From a ring, so one printf can show
 * several. */
static const char *text_of(const struct json_value *v, const char *key)
{
        static char *ring[8];
        static size_t next;
        const struct json_value *x = json_get(v, key);
        if (!x || x->type != JSON_STRING)
                return "?";
        size_t len = x->u.str.len < 4096 ? x->u.str.len : 4096;
        char *out = malloc(LOGTEXT_MAX(len));
        if (!out)
                return "(out of memory)";
        out[logtext_show_line(x->u.str.text, len, out)] = '\0';
        free(ring[next]);
        ring[next] = out;
        next = (next + 1) % (sizeof(ring) / sizeof(ring[0]));
        return out;
}

static void print_entry(const struct json_value *v)
{
        int64_t score = 0;
        const struct json_value *s = json_get(v, "score");
        if (s)
                (void)json_number_int64(s, &score);
        const char *state = text_of(v, json_get(v, "state") ? "state" : "file");
        printf("%s (%s, %s): exposure %lld/%d\n", text_of(v, "name"), text_of(v, "isolation"),
               state, (long long)score, AUDIT_SCORE_MAX);
        const struct json_value *f = json_get(v, "findings");
        size_t n = f && f->type == JSON_ARRAY ? f->u.array.n : 0;
        if (!n)
                printf("  no finding\n");
        for (size_t i = 0; i < n; i++) {
                const struct json_value *x = f->u.array.items[i];
                int64_t w = 0;
                const struct json_value *wv = json_get(x, "weight");
                if (wv)
                        (void)json_number_int64(wv, &w);
                printf("  %3lld  %-19s %s\n  %3s  %-19s fix: %s\n", (long long)w, text_of(x, "id"),
                       text_of(x, "what"), "", "", text_of(x, "fix"));
        }
}

static int by_score(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;
        return (x->score < y->score) - (x->score > y->score);
}

/* The names of every tenant tenantd has, from `list`. */
static int every_name(const struct cli *cli, struct json_value **owner, const char ***ret,
                      size_t *ret_n)
{
        struct control_request req;
        control_request_init(&req, CONTROL_OP_LIST);
        int rc = ctl_call(cli, &req, owner);
        if (rc != EXIT_OK)
                return rc;
        const struct json_value *ts = json_get(*owner, CTL_TENANTS);
        size_t n = ts && ts->type == JSON_ARRAY ? ts->u.array.n : 0;
        const char **names = calloc(n + 1, sizeof(*names));
        if (!names)
                return EXIT_FAILED;
        size_t k = 0;
        for (size_t i = 0; i < n && k < AUDIT_TENANTS_MAX; i++) {
                const struct json_value *nm = json_get(ts->u.array.items[i], "name");
                if (nm && nm->type == JSON_STRING)
                        names[k++] = nm->u.str.text;
        }
        *ret = names;
        *ret_n = k;
        return EXIT_OK;
}

int cmd_audit(const struct cli *cli, int argc, char **argv)
{
        bool all = argc == 1;
        for (size_t i = 0; i < cli->opts_n; i++)
                all |= cli->opts[i].id == OPT_ALL;
        if (all && argc > 1)
                return cli_usage_error(cli, "--all audits every tenant: name none");

        _cleanup_json_ struct json_value *list = NULL;
        _cleanup_free_ const char **names = NULL;
        size_t n = (size_t)argc - 1;
        const char *const *args = (const char *const *)argv + 1;
        if (all) {
                int rc = every_name(cli, &list, &names, &n);
                if (rc != EXIT_OK || !names)
                        return rc != EXIT_OK ? rc : EXIT_FAILED;
                args = names;
        }
        struct entry *e = calloc(n ? n : 1, sizeof(*e));
        if (!e)
                return EXIT_FAILED;
        size_t got = 0;
        int worst = EXIT_OK;
        for (size_t i = 0; i < n; i++) {
                const char *arg = args[i];
                struct entry x = {0};
                int rc = !all && is_file(arg) ? audit_file(arg, &x.owner)
                                              : audit_name(cli, arg, &x.owner, &x.v);
                if (rc == EXIT_OK && !x.v)
                        x.v = x.owner;
                if (rc != EXIT_OK) {
                        json_free(x.owner);
                        worst = worst == EXIT_OK || rc == EXIT_FAILED ? rc : worst;
                        continue;
                }
                const struct json_value *s = json_get(x.v, "score");
                if (s)
                        (void)json_number_int64(s, &x.score);
                e[got++] = x;
        }
        if (all)
                qsort(e, got, sizeof(*e), by_score);
        _cleanup_json_gen_ struct json_gen *g = cli->json ? json_gen_new(true) : NULL;
        if (g)
                json_gen_array_open(g);
        for (size_t i = 0; i < got; i++) {
                if (g)
                        json_gen_value(g, e[i].v);
                else
                        print_entry(e[i].v);
                json_free(e[i].owner);
        }
        free(e);
        if (g) {
                json_gen_array_close(g);
                if (cli_print_json(g) != EXIT_OK)
                        return EXIT_FAILED;
        }
        return worst;
}
