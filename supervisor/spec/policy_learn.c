/* policy_learn.c — writing a learned profile (see policy_learn.h). */
#include "spec/policy_learn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "spec/policy.h"

enum learned_kind {
        KIND_KEPT,     /* ref lets it run: its rules copied */
        KIND_BLOCKED,  /* ref refuses it by name: its rule copied */
        KIND_UNLISTED, /* ref does not name it: its default action decides */
        KIND_UNKNOWN,  /* no name: a comment */
};

static bool names(const struct policy_rule *r, const char *sys)
{
        for (size_t i = 0; i < r->n_syscalls; i++)
                if (strcmp(r->syscalls[i], sys) == 0)
                        return true;
        return false;
}

/* The rule of p that refuses `sys` whatever its arguments, when no rule of p lets it
 * run (socket, refused but for some families, is not refused by name); else NULL. */
static const struct policy_rule *blocking_rule(const struct policy *p, const char *sys,
                                               size_t *ret_index)
{
        for (size_t i = 0; i < p->n_rules; i++)
                if (!policy_action_blocks(&p->rules[i].action) && names(&p->rules[i], sys))
                        return NULL;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *r = &p->rules[i];
                if (!r->n_args && policy_action_blocks(&r->action) && names(r, sys)) {
                        if (ret_index)
                                *ret_index = i;
                        return r;
                }
        }
        return NULL;
}

/* What ref does with `sys`; for KIND_BLOCKED, *ret_rule is the rule. */
static enum learned_kind classify(const struct policy *ref, const char *sys, size_t *ret_rule)
{
        if (strncmp(sys, "nr-", 3) == 0)
                return KIND_UNKNOWN;
        for (size_t i = 0; i < ref->n_rules; i++)
                if (!policy_action_blocks(&ref->rules[i].action) && names(&ref->rules[i], sys))
                        return KIND_KEPT;
        return blocking_rule(ref, sys, ret_rule) ? KIND_BLOCKED : KIND_UNLISTED;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
/* A JSON string, escaped by lib/json's generator (the profile around it is written by
 * hand for its comments, which JSON has no place for). Text it refuses (not UTF-8)
 * becomes "?", so the profile stays valid JSON. */
static void put_string(FILE *f, const char *s)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        const char *buf;
        size_t len;
        if (g)
                json_gen_string(g, s);
        if (g && json_gen_finish(g, &buf, &len) == 0)
                fwrite(buf, 1, len, f);
        else
                fputs("\"?\"", f);
}

/* A comment line: control characters replaced, so no text ends the comment early. */
static void put_comment(FILE *f, const char *indent, const char *s, size_t len)
{
        fprintf(f, "%s//%s", indent, len ? " " : "");
        for (size_t i = 0; i < len; i++)
                fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i], f);
        fputc('\n', f);
}

static void put_comment_lines(FILE *f, const char *indent, const char *text)
{
        while (text && *text) {
                const char *nl = strchr(text, '\n');
                size_t len = nl ? (size_t)(nl - text) : strlen(text);
                put_comment(f, indent, text, len);
                text += len + (nl ? 1 : 0);
        }
}

static void put_seen(FILE *f, const struct learned_call *c)
{
        if (c->count)
                fprintf(f, " %s %" PRIu64, c->name, c->count);
        else
                fprintf(f, " %s (init)", c->name);
}

/* One rule: action, why, syscalls (those of `calls` whose index is in pick[]). */
static void put_rule(FILE *f, const char *action, const char *why, const struct policy_rule *args,
                     const struct learned_call *calls, const size_t *pick, size_t n_pick,
                     bool *first)
{
        fprintf(f, "%s    {\n      \"action\": ", *first ? "" : ",\n");
        *first = false;
        put_string(f, action);
        if (why) {
                fprintf(f, ",\n      \"why\": ");
                put_string(f, why);
        }
        fprintf(f, ",\n      \"syscalls\": [");
        for (size_t i = 0; i < n_pick; i++) {
                fprintf(f, "%s", i ? ", " : "");
                put_string(f, calls[pick[i]].name);
        }
        fputc(']', f);
        if (args && args->n_args) {
                fprintf(f, ",\n      \"args\": [");
                for (size_t i = 0; i < args->n_args; i++) {
                        const struct policy_arg *a = &args->args[i];
                        fprintf(f, "%s{ \"index\": %u, \"op\": \"%s\"", i ? ", " : "", a->index,
                                policy_op_to_string(a->op));
                        if (a->op == POLICY_OP_MASKED_EQ)
                                fprintf(f, ", \"mask\": \"0x%" PRIx64 "\"", a->mask);
                        fprintf(f, ", \"value\": \"0x%" PRIx64 "\" }", a->value);
                }
                fputc(']', f);
        }
        fprintf(f, "\n    }");
}

/* The comment above a rule: what was seen of its calls, how often. */
static void put_seen_comment(FILE *f, const char *what, const struct learned_call *calls,
                             const size_t *pick, size_t n_pick, bool first)
{
        fprintf(f, "%s    // %s:", first ? "" : ",\n", what);
        for (size_t i = 0; i < n_pick; i++)
                put_seen(f, &calls[pick[i]]);
        fputc('\n', f);
}

struct writer {
        FILE *f;
        const struct policy *ref, *dflt;
        const struct learned_call *calls;
        size_t n;
        enum learned_kind *kind;
        size_t *block_rule;
        size_t *pick;
        bool first;
};

/* A comment line above a rule: what was seen of its calls and how often, then for
 * each call that dflt blocks by name, its reason. */
static void put_rule_comment(struct writer *w, const char *what, size_t n_pick)
{
        put_seen_comment(w->f, what, w->calls, w->pick, n_pick, w->first);
        w->first = true; /* the comma came before the comment */
        for (size_t i = 0; i < n_pick; i++) {
                const char *sys = w->calls[w->pick[i]].name;
                const struct policy_rule *d = blocking_rule(w->dflt, sys, NULL);
                if (!d)
                        continue;
                char act[32], line[600];
                snprintf(line, sizeof(line), "DANGEROUS: %s blocks %s (%s): %s", w->dflt->name, sys,
                         policy_action_to_string(&d->action, act, sizeof(act)),
                         d->why ? d->why : "no reason given");
                put_comment(w->f, "    ", line, strlen(line));
        }
}

/* The rules of ref's rule i: its calls seen, those it lets run and those it refuses by
 * this rule, each group with ref's own action, conditions and why. */
static void write_ref_rule(struct writer *w, size_t i)
{
        const struct policy_rule *r = &w->ref->rules[i];
        char act[32], what[160];
        policy_action_to_string(&r->action, act, sizeof(act));
        size_t k = 0;
        for (size_t c = 0; c < w->n; c++)
                if (w->kind[c] == KIND_KEPT && names(r, w->calls[c].name))
                        w->pick[k++] = c;
        if (k && !policy_action_blocks(&r->action) && !r->n_args)
                put_rule_comment(w, "seen", k);
        if (k)
                put_rule(w->f, act, r->why, r, w->calls, w->pick, k, &w->first);
        k = 0;
        for (size_t c = 0; c < w->n; c++)
                if (w->kind[c] == KIND_BLOCKED && w->block_rule[c] == i)
                        w->pick[k++] = c;
        if (!k)
                return;
        snprintf(what, sizeof(what), "attempted while learning, refused as %s refuses it (%s)",
                 w->ref->name, act);
        put_rule_comment(w, what, k);
        put_rule(w->f, act, r->why, r, w->calls, w->pick, k, &w->first);
}

/* The calls ref does not name: refused by its default action (a comment: the learned
 * profile's default action refuses them too), or let run by it (an allow rule). */
static void write_unlisted(struct writer *w)
{
        size_t k = 0;
        for (size_t c = 0; c < w->n; c++)
                if (w->kind[c] == KIND_UNLISTED)
                        w->pick[k++] = c;
        if (!k)
                return;
        char act[32], what[160], why[160];
        policy_action_to_string(&w->ref->default_action, act, sizeof(act));
        if (policy_action_blocks(&w->ref->default_action))
                return; /* said in the header (write_header) */
        snprintf(what, sizeof(what), "not named by %s, whose default action (%s) let them run",
                 w->ref->name, act);
        snprintf(why, sizeof(why), "seen while learning; %s lets them run by its default action",
                 w->ref->name);
        put_rule_comment(w, what, k);
        put_rule(w->f, "allow", why, NULL, w->calls, w->pick, k, &w->first);
}

int policy_learned_profile(const struct policy *ref, const struct policy *dflt,
                           const struct learned_call *calls, size_t n, const char *description,
                           const char *header, char **ret_text, struct learned_summary *ret_summary,
                           struct tn_err **err)
{
        _cleanup_free_ enum learned_kind *kind = calloc(n + 1, sizeof(*kind));
        _cleanup_free_ size_t *block_rule = calloc(n + 1, sizeof(*block_rule));
        _cleanup_free_ size_t *pick = calloc(n + 1, sizeof(*pick));
        if (!kind || !block_rule || !pick)
                return tn_err_setx(err, ENOMEM, "out of memory");
        bool unlisted_run = !policy_action_blocks(&ref->default_action);
        struct learned_summary sum = {0};
        for (size_t c = 0; c < n; c++) {
                kind[c] = classify(ref, calls[c].name, &block_rule[c]);
                bool runs = kind[c] == KIND_KEPT || (kind[c] == KIND_UNLISTED && unlisted_run);
                sum.allowed += runs;
                sum.refused += !runs && kind[c] != KIND_UNKNOWN;
                sum.dangerous +=
                    kind[c] != KIND_UNKNOWN && blocking_rule(dflt, calls[c].name, NULL);
                sum.unknown += kind[c] == KIND_UNKNOWN;
        }
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return tn_err_set(err, errno, "open_memstream");
        put_comment_lines(f, "", header);
        fprintf(f, "// %zu calls allowed, every other one fails with EPERM.\n", sum.allowed);
        if (sum.dangerous) {
                fprintf(f, "// DANGEROUS: calls seen of the families that %s blocks:", dflt->name);
                for (size_t c = 0; c < n; c++)
                        if (kind[c] != KIND_UNKNOWN && blocking_rule(dflt, calls[c].name, NULL))
                                fprintf(f, " %s (%s)", calls[c].name,
                                        kind[c] == KIND_KEPT ? "allowed" : "refused");
                fprintf(f, "; the comments at their rules say why %s blocks them.\n", dflt->name);
        } else {
                fprintf(f, "// No call of a family that %s blocks was seen.\n", dflt->name);
        }
        size_t k = 0;
        for (size_t c = 0; c < n && !unlisted_run; c++)
                if (kind[c] == KIND_UNLISTED)
                        pick[k++] = c;
        if (k) {
                char act[32];
                fprintf(f,
                        "// Attempted while learning, refused by %s's default action (%s) and "
                        "by this profile's:",
                        ref->name, policy_action_to_string(&ref->default_action, act, sizeof(act)));
                for (size_t i = 0; i < k; i++)
                        put_seen(f, &calls[pick[i]]);
                fputc('\n', f);
        }
        if (sum.unknown) {
                fprintf(f, "// Seen, but unknown to libseccomp and so not allowed:");
                for (size_t c = 0; c < n; c++)
                        if (kind[c] == KIND_UNKNOWN)
                                put_seen(f, &calls[c]);
                fputc('\n', f);
        }
        fprintf(f, "{\n  \"description\": ");
        put_string(f, description);
        fprintf(f, ",\n  \"default_action\": \"errno:EPERM\",\n  \"rules\": [\n");
        struct writer w = {.f = f,
                           .ref = ref,
                           .dflt = dflt,
                           .calls = calls,
                           .n = n,
                           .kind = kind,
                           .block_rule = block_rule,
                           .pick = pick,
                           .first = true};
        for (size_t i = 0; i < ref->n_rules; i++)
                write_ref_rule(&w, i);
        write_unlisted(&w);
        fprintf(f, "\n  ]\n}\n");
        if (fclose(f) != 0) {
                free(text);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        *ret_text = text;
        if (ret_summary)
                *ret_summary = sum;
        return 0;
}
