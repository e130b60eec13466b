/* cmd_validate.c — `tenantctl validate FILE...` and `tenantctl explain FILE`: parse
 * manifests without a daemon, print every problem, or the effective configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "lib/log.h"
#include "spec/manifest.h"
#include "spec/policy.h"
#include "vm/share_check.h"
#include "cli/tenantctl.h"
#include "lib/trust.h"

/* What validate checks beyond the text: the seccomp profile and the capability sets
 * the manifest names exist on the policy search path and are themselves valid. */
static void check_policies(const struct manifest *m, struct diag_list *diags)
{
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_policy_ struct policy *p = NULL;
        if (policy_load(m->policy.seccomp, &p, &err) < 0)
                diag_add(diags, 0, 0, "policy.seccomp", "%s", tn_err_msg(err));
        for (size_t i = 0; i < m->policy.capabilities_n; i++) {
                const char *name = m->policy.capabilities[i];
                if (name[0] != '@')
                        continue;
                _cleanup_err_ struct tn_err *e = NULL;
                _cleanup_capset_ struct capset *set = NULL;
                char path[64];
                snprintf(path, sizeof(path), "policy.capabilities[%zu]", i);
                if (capset_load(name + 1, &set, &e) < 0)
                        diag_add(diags, 0, 0, path, "%s", tn_err_msg(e));
        }
}

/* Host paths the tenant would be given: none of tenantd's own (its state directory as
 * TENANTD_STATE_DIR or the default, the default manifest directory, the policy search
 * path) and, read-write, none the host's root trusts (share_check.h). */
static void report_share(void *ctx, const char *what, const char *msg)
{
        size_t n = strlen(what);
        if (strncmp(msg, what, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
                msg += n + 2;
        diag_add(ctx, 0, 0, what, "%s", msg);
}

static void check_shares(const struct manifest *m, struct diag_list *diags)
{
        const char *state = getenv("TENANTD_STATE_DIR");
        const char *storage = getenv("TENANTD_STORAGE_DIR");
        const struct tenantd_dirs dirs = {.state_dir = state && *state ? state : "/var/lib/tenantd",
                                          .storage_dir = storage && *storage ? storage : NULL};
        (void)share_check_manifest(m, &dirs, report_share, diags, NULL);
}

/* validate reads any file, as any user: what tenantd (or tenantctl run as root) would
 * refuse is a warning here, not an error (trust.h). For people on standard error at
 * once; with --json kept for the file's "warnings" (at most 8). */
#define WARNINGS_MAX 8
static struct {
        bool keep;
        char *items[WARNINGS_MAX];
        size_t n;
} warnings;

static void warn_keep(const char *msg)
{
        for (size_t i = 0; i < warnings.n; i++)
                if (strcmp(warnings.items[i], msg) == 0)
                        return;
        if (warnings.n < WARNINGS_MAX) {
                char *copy = strdup(msg);
                if (copy)
                        warnings.items[warnings.n++] = copy;
        }
}

static void warn_untrusted(const char *msg)
{
        if (!warnings.keep)
                log_warning("warning: %s; tenantd and tenantctl run (as root) will refuse it", msg);
        else
                warn_keep(msg);
}

static void warn(const char *msg)
{
        if (!warnings.keep)
                log_warning("warning: %s", msg);
        else
                warn_keep(msg);
}

/* A volume with "encrypt": false is valid, but its data lies in clear on the host's
 * disk (docs/storage.md): said here, never refused. */
static void warn_unencrypted(const struct manifest *m)
{
        for (size_t i = 0; i < m->volumes_n; i++) {
                if (m->volumes[i].encrypt)
                        continue;
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "volumes[%zu] \"%s\": \"encrypt\": false stores its data in clear on "
                         "the host's disk",
                         i, m->volumes[i].name);
                warn(msg);
        }
}

/* A vm section with a sandbox is valid, so that one manifest serves both backends with
 * only "isolation" changed, but nothing in it applies: said, never refused. */
static void warn_vm_ignored(const struct manifest *m)
{
        if (m->vm.set && m->isolation != ISOLATION_MICROVM)
                warn("\"vm\" is ignored: it applies only to isolation \"microvm\" (this "
                     "manifest runs in a sandbox)");
}

/* A read-write bind mount of a host directory is valid, but the tenant can fill the
 * file system under it, which no limit holds: said, with the way to a size limit. */
static void warn_rw_binds(const struct manifest *m)
{
        for (size_t i = 0; i < m->mounts_n; i++) {
                const struct mount_spec *ms = &m->mounts[i];
                if (ms->type != MOUNT_BIND || ms->readonly)
                        continue;
                char msg[512];
                snprintf(msg, sizeof(msg),
                         "mounts[%zu] \"%.256s\" is writable by the tenant with no size limit: "
                         "it can fill that file system; a volume has a size (docs/storage.md)",
                         i, ms->source);
                warn(msg);
        }
}

/* A profile that lets a call run which "default" refuses by name, as a dangerous family
 * (its rule has a "why"), is valid: the operator may need it. Said here, with the calls,
 * so that it is a decision and not an accident; `tenantctl audit` weighs it. A call that
 * "default" refuses only because its allow list does not name it is not warned about. */
static void warn_dangerous_calls(const struct manifest *m)
{
        _cleanup_policy_ struct policy *p = NULL, *ref = NULL;
        if (strcmp(m->policy.seccomp, "default") == 0 ||
            policy_load(m->policy.seccomp, &p, NULL) < 0 || policy_load("default", &ref, NULL) < 0)
                return;
        struct policy_widening *w = NULL;
        size_t n = 0;
        if (policy_widenings(p, ref, &w, &n, NULL) < 0)
                return;
        char msg[512];
        size_t len = (size_t)snprintf(msg, sizeof(msg),
                                      "policy.seccomp \"%s\" allows calls that \"default\" "
                                      "refuses as dangerous:",
                                      m->policy.seccomp);
        size_t shown = 0, total = 0;
        for (size_t i = 0; i < n; i++) {
                if (!w[i].why)
                        continue;
                total++;
                int k =
                    snprintf(msg + len, sizeof(msg) - len, "%s %s", shown ? "," : "", w[i].syscall);
                if (k < 0 || (size_t)k >= sizeof(msg) - len - 48)
                        continue;
                len += (size_t)k;
                shown++;
        }
        if (total > shown)
                snprintf(msg + len, sizeof(msg) - len, " and %zu more", total - shown);
        if (total) {
                len = strlen(msg);
                snprintf(msg + len, sizeof(msg) - len, " (`tenantctl audit` says why)");
                warn(msg);
        }
        policy_widenings_free(w, n);
}

static void warnings_json(struct json_gen *g)
{
        json_gen_key(g, "warnings");
        json_gen_array_open(g);
        for (size_t i = 0; i < warnings.n; i++) {
                json_gen_string(g, warnings.items[i]);
                free(warnings.items[i]);
        }
        json_gen_array_close(g);
        warnings.n = 0;
}

/* Reads and parses one manifest file. Returns 0 (valid, *ret set), -EINVAL (invalid:
 * diags filled), -EIO (unreadable: *ret_err says why) or -ENOMEM. */
static int load_manifest(const char *path, struct manifest **ret, struct diag_list *diags,
                         struct tn_err **ret_err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, json_limits_config.max_bytes, &buf, &len, ret_err);
        if (r < 0)
                return r == -ENOMEM ? r : -EIO;
        _cleanup_manifest_ struct manifest *m = NULL;
        r = manifest_parse(buf, len, &m, diags);
        if (r < 0)
                return r;
        _cleanup_err_ struct tn_err *why = NULL;
        if (strcmp(path, "-") != 0 && trust_check(path, TRUST_FILE, NULL, &why) < 0)
                warn_untrusted(tn_err_msg(why));
        policy_trust_files(false, warn_untrusted);
        check_policies(m, diags);
        check_shares(m, diags);
        if (diags->n > 0)
                return -EINVAL;
        warn_vm_ignored(m);
        warn_unencrypted(m);
        warn_rw_binds(m);
        warn_dangerous_calls(m);
        *ret = TAKE_PTR(m);
        return 0;
}

static void diags_json(struct json_gen *g, const struct diag_list *d)
{
        json_gen_key(g, "errors");
        json_gen_array_open(g);
        for (size_t i = 0; i < d->n; i++) {
                json_gen_object_open(g);
                json_gen_key(g, "line");
                json_gen_int(g, d->items[i].line);
                json_gen_key(g, "column");
                json_gen_int(g, d->items[i].col);
                json_gen_key(g, "path");
                json_gen_string(g, d->items[i].path);
                json_gen_key(g, "message");
                json_gen_string(g, d->items[i].msg);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

int cmd_validate(const struct cli *cli, int argc, char **argv)
{
        _cleanup_json_gen_ struct json_gen *g = cli->json ? json_gen_new(true) : NULL;
        if (cli->json && !g)
                return EXIT_FAILED;
        if (g)
                json_gen_array_open(g);
        warnings.keep = g != NULL;

        int invalid = 0, oom = 0;
        for (int i = 1; i < argc; i++) {
                const char *path = argv[i];
                struct diag_list diags = {0};
                _cleanup_manifest_ struct manifest *m = NULL;
                _cleanup_err_ struct tn_err *err = NULL;
                int r = load_manifest(path, &m, &diags, &err);
                if (err)
                        diag_add(&diags, 0, 0, "", "%s", tn_err_msg(err));
                if (r == -ENOMEM)
                        oom++;
                if (r < 0)
                        invalid++;
                if (g) {
                        json_gen_object_open(g);
                        json_gen_key(g, "file");
                        json_gen_string(g, path);
                        json_gen_key(g, "valid");
                        json_gen_bool(g, r == 0);
                        if (m) {
                                json_gen_key(g, "name");
                                json_gen_string(g, m->name);
                                json_gen_key(g, "isolation");
                                json_gen_string(g, isolation_name(m->isolation));
                        }
                        diags_json(g, &diags);
                        warnings_json(g);
                        json_gen_object_close(g);
                } else if (r == 0) {
                        printf("%s: valid (%s \"%s\")\n", path, isolation_name(m->isolation),
                               m->name);
                } else if (err) {
                        log_error("%s", tn_err_msg(err));
                } else {
                        diag_print(&diags, path, stderr);
                }
                diag_list_clear(&diags);
        }
        if (g) {
                json_gen_array_close(g);
                if (cli_print_json(g) != EXIT_OK)
                        return EXIT_FAILED;
        }
        if (oom)
                return EXIT_FAILED;
        return invalid ? EXIT_USAGE : EXIT_OK;
}

int cmd_explain(const struct cli *cli, int argc, char **argv)
{
        (void)cli;
        (void)argc;
        struct diag_list diags = {0};
        _cleanup_manifest_ struct manifest *m = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = load_manifest(argv[1], &m, &diags, &err);
        if (r < 0) {
                if (err)
                        log_error("%s", tn_err_msg(err));
                diag_print(&diags, argv[1], stderr);
                diag_list_clear(&diags);
                return r == -ENOMEM ? EXIT_FAILED : EXIT_USAGE;
        }
        _cleanup_free_ char *text = manifest_explain(m);
        if (!text) {
                log_error("out of memory");
                return EXIT_FAILED;
        }
        printf("%s\n", text);
        return EXIT_OK;
}
