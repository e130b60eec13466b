/* test_policy_learn.c — the learned profile's writer (spec/policy_learn.h) and the
 * learning mode's answers (policy_learning_answers), on the shipped profiles: what the
 * writer produces loads and compiles, allows exactly the calls seen that the reference
 * lets run, keeps the reference's refusals (clone3's ENOSYS) and conditions (socket
 * families), and flags every call of a family that `default` blocks. No filter is
 * loaded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "spec/policy.h"
#include "spec/policy_learn.h"
#include "tap.h"

static char dir[64];

static void put(const char *name, const char *text)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/seccomp/%s.json", dir, name);
        ok(write_file_atomic(path, text, strlen(text), 0644, NULL) == 0, "wrote %s", name);
}

static void copy_shipped(const char *name)
{
        const char *src = getenv("SRCDIR");
        char path[1024];
        snprintf(path, sizeof(path), "%s/policies/seccomp/%s.json", src && *src ? src : ".", name);
        _cleanup_free_ char *text = NULL;
        size_t len;
        ok(read_file_bounded(path, 256 * 1024, &text, &len, NULL) == 0, "read %s", path);
        put(name, text ? text : "");
}

static struct policy *load(const char *name)
{
        struct policy *p = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        if (policy_load(name, &p, &err) < 0)
                diag("%s: %s", name, tn_err_msg(err));
        return p;
}

static const struct learned_call seen[] = {
    {"read", 10},  {"write", 5}, {"clone", 3},       {"clone3", 1},
    {"socket", 2}, {"ioctl", 4}, {"ptrace", 2},      {"migrate_pages", 1},
    {"nr-999", 1}, {"wait4", 0}, {"personality", 1},
};

/* Writes the profile learned under `ref` as NAME, loads and compiles it; returns the
 * text (and the compiled counts in *ret_b). */
static char *learn(const char *ref_name, const char *name, struct learned_summary *sum,
                   struct policy_bpf **ret_b)
{
        _cleanup_policy_ struct policy *ref = load(ref_name), *dflt = load("default");
        char *text = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = ref && dflt
                    ? policy_learned_profile(ref, dflt, seen, ARRAY_SIZE(seen), "a test",
                                             "learned \"here\"\nsecond line", &text, sum, &err)
                    : -EINVAL;
        ok(r == 0, "%s: the profile is written (%s)", name, r < 0 && err ? tn_err_msg(err) : "");
        if (r < 0)
                return NULL;
        put(name, text);
        _cleanup_policy_ struct policy *p = load(name);
        ok(p != NULL, "%s: it loads", name);
        _cleanup_err_ struct tn_err *cerr = NULL;
        ok(p && policy_compile(p, ret_b, &cerr) == 0, "%s: it compiles (%s)", name,
           cerr ? tn_err_msg(cerr) : "");
        if (!p)
                diag("%s", text);
        return text;
}

static void test_under_default(void)
{
        struct learned_summary sum;
        _cleanup_policy_bpf_ struct policy_bpf *b = NULL;
        _cleanup_free_ char *t = learn("default", "learned-default", &sum, &b);
        if (!t || !b)
                return;
        /* read write clone socket ioctl wait4 personality */
        is_int((int)b->n_allowed, 7, "allowed: the 7 calls seen that default lets run");
        is_int((int)sum.allowed, 7, "the summary says so");
        is_int((int)sum.refused, 3, "refused: clone3, ptrace, migrate_pages");
        is_int((int)sum.dangerous, 2, "dangerous: clone3 and ptrace");
        is_int((int)sum.unknown, 1, "unknown: nr-999");
        ok(strstr(t, "// learned \"here\"\n// second line\n"), "the header, as comments");
        ok(strstr(t, "\"default_action\": \"errno:EPERM\""), "default action errno:EPERM");
        ok(strstr(t, "DANGEROUS: calls seen of the families that default blocks: clone3 "
                     "(refused) ptrace (refused)"),
           "the header lists the dangerous calls seen");
        ok(strstr(t, "// DANGEROUS: default blocks ptrace (errno:EPERM): tracing"),
           "ptrace's rule says why default blocks it");
        ok(strstr(t, "\"action\": \"errno:ENOSYS\",\n      \"why\": \"clone3 passes"),
           "clone3 keeps default's ENOSYS (glibc falls back to clone)");
        ok(strstr(t, "refused by default's default action (errno:EPERM) and by this profile's: "
                     "migrate_pages 1"),
           "a call default does not name is said to be refused");
        ok(strstr(t, "unknown to libseccomp and so not allowed: nr-999 1"), "nr-999: a comment");
        ok(strstr(t, "wait4 (init)"), "init's calls are marked");
        ok(strstr(t, "\"syscalls\": [\"socket\"],\n      \"args\": [{ \"index\": 0, \"op\": "
                     "\"masked_eq\", \"mask\": \"0xffffffff\", \"value\": \"0x2\" }]"),
           "socket keeps default's families");
        ok(!strstr(t, "\"socketpair\"") && !strstr(t, "\"keyctl\""), "nothing that was not seen");
}

static void test_wider_reference(void)
{
        put("with-ptrace",
            "{ \"description\": \"default and ptrace\", \"base\": \"default\",\n"
            "  \"rules\": [ { \"action\": \"allow\", \"syscalls\": [\"ptrace\"] } ] }");
        struct learned_summary sum;
        _cleanup_policy_bpf_ struct policy_bpf *b = NULL;
        _cleanup_free_ char *t = learn("with-ptrace", "learned-ptrace", &sum, &b);
        if (!t || !b)
                return;
        is_int((int)b->n_allowed, 8, "a profile that allows ptrace: ptrace is allowed too");
        ok(strstr(t, "ptrace (allowed)") &&
               strstr(t, "// DANGEROUS: default blocks ptrace (errno:EPERM)"),
           "and flagged DANGEROUS, with default's reason");

        _cleanup_policy_bpf_ struct policy_bpf *b2 = NULL;
        _cleanup_free_ char *t2 = learn("permissive-log", "learned-log", &sum, &b2);
        if (!t2 || !b2)
                return;
        is_int((int)b2->n_allowed, 8, "permissive-log: migrate_pages, which it logs, is allowed");
        ok(strstr(t2, "not named by permissive-log, whose default action (log) let them run: "
                      "migrate_pages 1"),
           "with a comment saying why");
}

static void test_answers(void)
{
        _cleanup_policy_ struct policy *p = load("default");
        int a[1024];
        if (!p)
                return;
        policy_learning_answers(p, a, 1024);
        is_int(a[SYS_read], 0, "answers: read runs");
        is_int(a[SYS_socket], 0, "answers: socket runs (its families are the profile's job)");
        is_int(a[SYS_clone], 0, "answers: clone runs");
        is_int(a[SYS_clone3], ENOSYS, "answers: clone3 gets default's ENOSYS");
        is_int(a[SYS_ptrace], EPERM, "answers: ptrace gets EPERM");
        is_int(a[SYS_kexec_load], EPERM, "answers: kexec_load (kill in default) gets EPERM");
        is_int(a[SYS_migrate_pages], EPERM, "answers: a call default does not name gets EPERM");
        _cleanup_policy_ struct policy *log = load("permissive-log");
        if (!log)
                return;
        policy_learning_answers(log, a, 1024);
        is_int(a[SYS_migrate_pages], 0, "answers under permissive-log: an unnamed call runs");
        is_int(a[SYS_ptrace], EPERM, "answers under permissive-log: ptrace still refused");
}

int main(void)
{
        snprintf(dir, sizeof(dir), "/tmp/test-policy-learn.XXXXXX");
        if (!mkdtemp(dir))
                return 1;
        char sub[128];
        snprintf(sub, sizeof(sub), "%s/seccomp", dir);
        mkdir(sub, 0755);
        setenv("TENANTD_POLICY_DIR", dir, 1);
        copy_shipped("default");
        copy_shipped("permissive-log");
        test_under_default();
        test_wider_reference();
        test_answers();
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void)!system(cmd);
        return tap_done();
}
