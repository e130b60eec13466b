/* test_audit.c — the exposure audit (spec/audit.h) on manifests written here, with the
 * shipped profiles (policies/) and a widened one (tests/data/policies/good/), and the
 * profile comparison it rests on (policy_widenings). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "spec/audit.h"
#include "spec/manifest.h"
#include "spec/policy.h"
#include "tap.h"

static const char *srcdir(void)
{
        const char *s = getenv("SRCDIR");
        return s && *s ? s : ".";
}

static struct manifest *parse(const char *text)
{
        struct manifest *m = NULL;
        struct diag_list d = {0};
        if (manifest_parse(text, strlen(text), &m, &d) < 0) {
                diag_print(&d, "test", stdout);
                diag_list_clear(&d);
                return NULL;
        }
        return m;
}

static struct policy *load(const char *dir, const char *name)
{
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s/%s", srcdir(), dir);
        setenv("TENANTD_POLICY_DIR", buf, 1);
        struct policy *p = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        if (policy_load(name, &p, &err) < 0)
                diag("%s: %s", name, tn_err_msg(err));
        return p;
}

static const struct audit_finding *find(const struct audit_report *r, const char *id)
{
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->items[i].id, id) == 0)
                        return &r->items[i];
        return NULL;
}

static bool widened(const struct policy_widening *w, size_t n, const char *sys, bool named)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(w[i].syscall, sys) == 0)
                        return named == (w[i].why != NULL);
        return false;
}

static void test_widenings(void)
{
        _cleanup_policy_ struct policy *def = load("policies", "default");
        _cleanup_policy_ struct policy *perm = load("policies", "permissive-log");
        _cleanup_policy_ struct policy *strict = load("policies", "strict");
        _cleanup_policy_ struct policy *wide = load("tests/data/policies/good", "wide");
        if (!def || !perm || !strict || !wide) {
                ok(false, "the profiles load");
                return;
        }
        struct policy_widening *w = NULL;
        size_t n = 99;
        _cleanup_err_ struct tn_err *err = NULL;
        ok(policy_widenings(def, def, &w, &n, &err) == 0 && n == 0,
           "default allows nothing default refuses");
        policy_widenings_free(w, n);
        ok(policy_widenings(strict, def, &w, &n, &err) == 0 && n == 0,
           "strict allows nothing default refuses");
        policy_widenings_free(w, n);

        ok(policy_widenings(perm, def, &w, &n, &err) == 0 && n > 0,
           "permissive-log lets run the calls default refuses by its default action (%zu)", n);
        bool none_named = true;
        for (size_t i = 0; i < n; i++)
                none_named &= w[i].why == NULL;
        ok(none_named, "none of them is one default refuses by name: its families stay refused");
        ok(!widened(w, n, "keyctl", true) && !widened(w, n, "keyctl", false),
           "keyctl (a family default names) stays refused under permissive-log");
        policy_widenings_free(w, n);

        ok(policy_widenings(wide, def, &w, &n, &err) == 0, "wide compares");
        ok(widened(w, n, "keyctl", true), "wide allows keyctl, named by default with a reason");
        ok(widened(w, n, "ptrace", true), "wide allows ptrace");
        ok(!widened(w, n, "mount", true), "wide leaves mount refused");
        policy_widenings_free(w, n);
}

/* Every way a manifest can expose the host, in one file. */
static const char risky[] =
    "{\"name\": \"risky\", \"exec\": [\"/bin/sh\"],"
    " \"root\": {\"path\": \"/srv/images/risky\", \"readonly\": false},"
    " \"mounts\": [{\"source\": \"/srv/shared\", \"target\": \"/shared\", \"mode\": \"rw\"}],"
    " \"volumes\": [{\"name\": \"data\", \"target\": \"/data\", \"size\": \"1G\","
    "   \"encrypt\": false}],"
    " \"memory\": {\"max\": \"max\"}, \"pids\": {\"max\": \"max\"}, \"cpu\": {\"max\": \"max\"},"
    " \"network\": {\"mode\": \"private\", \"egress\": {\"deny_lan\": false, \"allow_host\": true},"
    "   \"publish\": [{\"host\": 8080, \"port\": 80}], \"public_ipv4\": \"203.0.113.7\","
    "   \"limits\": {\"conns\": \"max\", \"pps\": \"max\", \"new_conns\": \"max\","
    "     \"smtp\": true}},"
    " \"policy\": {\"seccomp\": \"permissive-log\", \"capabilities\": [\"net_bind_service\","
    "   \"net_raw\"]},"
    " \"restart\": {\"on\": \"always\"}}";

/* The same service with each of them fixed. */
static const char fixed[] =
    "{\"name\": \"risky\", \"exec\": [\"/bin/sh\"], \"user\": \"1000:1000\","
    " \"root\": {\"path\": \"/srv/images/risky\", \"readonly\": true},"
    " \"mounts\": [{\"source\": \"/srv/shared\", \"target\": \"/shared\"}],"
    " \"volumes\": [{\"name\": \"data\", \"target\": \"/data\", \"size\": \"1G\"}],"
    " \"network\": {\"mode\": \"private\", \"egress\": {\"rate\": \"100mbit\"},"
    "   \"ingress\": {\"rate\": \"100mbit\"},"
    "   \"publish\": [{\"host\": 8080, \"port\": 80, \"address\": \"127.0.0.1\"}]},"
    " \"restart\": {\"on\": \"always\"},"
    " \"health\": {\"tcp\": 80},"
    " \"logs\": {\"syslog\": true}}";

static const char *const risky_ids[] = {
    "uid-0",         "capabilities",   "seccomp-permissive", "host-rw-mount",
    "root-writable", "volume-clear",   "no-memory-limit",    "no-pids-limit",
    "no-cpu-limit",  "publish-all",    "lan-open",           "host-open",
    "smtp-open",     "no-rate-limit",  "no-abuse-limits",    "restart-unchecked",
    "logs-local",    "public-address",
};

static void test_risky(void)
{
        _cleanup_policy_ struct policy *def = load("policies", "default");
        _cleanup_policy_ struct policy *perm = load("policies", "permissive-log");
        _cleanup_manifest_ struct manifest *m = parse(risky);
        if (!m || !def || !perm) {
                ok(false, "the risky manifest parses");
                return;
        }
        const int caps[] = {10, 13};
        const struct audit_facts f = {
            .profile = perm, .reference = def, .caps = caps, .caps_n = 2, .qemu_sandbox = -1};
        struct audit_report r = {0};
        ok(audit_manifest(m, &f, &r) == 0, "the risky manifest is audited");
        for (size_t i = 0; i < ARRAY_SIZE(risky_ids); i++) {
                const struct audit_finding *x = find(&r, risky_ids[i]);
                ok(x && x->weight > 0 && x->what && *x->what && x->fix && *x->fix,
                   "risky: %s found, with a weight, what and fix", risky_ids[i]);
        }
        const struct audit_finding *caps_f = find(&r, "capabilities");
        ok(caps_f && strstr(caps_f->what, "CAP_NET_RAW") && strstr(caps_f->what, "CAP_NET_BIND"),
           "the capabilities finding names them");
        ok(r.score > 50 && r.score <= 100, "the score is high and bounded (%u)", r.score);
        for (size_t i = 1; i < r.n; i++)
                if (r.items[i].weight > r.items[i - 1].weight) {
                        ok(false, "findings are sorted by weight");
                        break;
                }

        /* As a microVM: uid 0 is the guest's; QEMU without -sandbox is a finding. */
        m->isolation = ISOLATION_MICROVM;
        struct audit_facts fv = f;
        fv.qemu_sandbox = 0;
        struct audit_report rv = {0};
        ok(audit_manifest(m, &fv, &rv) == 0, "the microVM variant is audited");
        ok(!find(&rv, "uid-0"), "uid 0 in a microVM is not a finding");
        ok(find(&rv, "qemu-no-sandbox") != NULL, "QEMU without -sandbox is");
        fv.qemu_sandbox = 1;
        audit_report_clear(&rv);
        ok(audit_manifest(m, &fv, &rv) == 0 && !find(&rv, "qemu-no-sandbox"),
           "QEMU with -sandbox is not");
        audit_report_clear(&rv);

        /* The JSON form: score and findings with their members. */
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        json_gen_object_open(g);
        audit_report_json(&r, g);
        json_gen_object_close(g);
        const char *out = NULL;
        size_t len = 0;
        ok(json_gen_finish(g, &out, &len) == 0 && strstr(out, "\"score\":") &&
               strstr(out, "\"id\":\"uid-0\"") && strstr(out, "\"weight\":") &&
               strstr(out, "\"fix\":"),
           "JSON has score and findings");
        audit_report_clear(&r);
}

static void test_fixed(void)
{
        _cleanup_policy_ struct policy *def = load("policies", "default");
        _cleanup_manifest_ struct manifest *m = parse(fixed);
        if (!m || !def) {
                ok(false, "the fixed manifest parses");
                return;
        }
        const struct audit_facts f = {.profile = def, .reference = def, .qemu_sandbox = 1};
        struct audit_report r = {0};
        ok(audit_manifest(m, &f, &r) == 0, "the fixed manifest is audited");
        for (size_t i = 0; i < r.n; i++)
                diag("left: %s: %s", r.items[i].id, r.items[i].what);
        is_int(r.n, 0, "no finding is left once each is fixed");
        is_int(r.score, 0, "score 0");
        audit_report_clear(&r);

        _cleanup_policy_ struct policy *wide = load("tests/data/policies/good", "wide");
        const struct audit_facts fw = {.profile = wide, .reference = def, .qemu_sandbox = -1};
        ok(wide && audit_manifest(m, &fw, &r) == 0, "audited with the wide profile");
        const struct audit_finding *x = find(&r, "seccomp-dangerous");
        ok(x && strstr(x->what, "keyctl") && strstr(x->what, "ptrace"),
           "a profile allowing dangerous calls is a finding naming them");
        audit_report_clear(&r);

        const struct audit_facts fu = {.profile = NULL, .reference = NULL, .qemu_sandbox = -1};
        ok(audit_manifest(m, &fu, &r) == 0 && find(&r, "seccomp-unknown"),
           "a profile that could not be loaded is said, not skipped");
        audit_report_clear(&r);
}

int main(void)
{
        test_widenings();
        test_risky();
        test_fixed();
        return tap_done();
}
