/* test_policy.c — the policy parser and compiler (policy.h) without loading filters.
 *
 * Golden errors: every tests/data/policies/bad/KIND/NAME.json that has a NAME.err
 * beside it must fail with exactly that message (the search directory prefix
 * removed). Good profiles under tests/data/policies/good/ check base resolution,
 * overriding, the search order and the exception compiler; the shipped profiles
 * under policies/ must load and compile. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "spec/policy.h"
#include "tap.h"

static const char *srcdir(void)
{
        const char *s = getenv("SRCDIR");
        return s && *s ? s : ".";
}

static void use_dir(const char *sub, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s", srcdir(), sub);
        setenv("TENANTD_POLICY_DIR", buf, 1);
}

/* The message with what depends on the build and the checkout replaced: "DIR/" by
 * nothing, the compiled-in directories by @SYSCONFDIR@ and @POLICYDIR@. */
static void normalize(const char *msg, const char *dir, char *out, size_t len)
{
        char dir_slash[1100];
        snprintf(dir_slash, sizeof(dir_slash), "%s/", dir);
        const struct {
                const char *from, *to;
        } subst[] = {
            {dir_slash, ""},
            {TENANTD_SYSCONFDIR "/tenantd/policies", "@SYSCONFDIR@/tenantd/policies"},
            {TENANTD_POLICYDIR, "@POLICYDIR@"},
        };
        size_t o = 0;
        while (*msg && o + 1 < len) {
                size_t i;
                for (i = 0; i < ARRAY_SIZE(subst); i++)
                        if (strncmp(msg, subst[i].from, strlen(subst[i].from)) == 0)
                                break;
                if (i == ARRAY_SIZE(subst)) {
                        out[o++] = *msg++;
                        continue;
                }
                o += (size_t)snprintf(out + o, len - o, "%s", subst[i].to);
                msg += strlen(subst[i].from);
        }
        out[o < len ? o : len - 1] = '\0';
}

/* Loads (and for seccomp, compiles) one case; returns the error text or NULL. */
static char *try_load(const char *kind, const char *name, int *ret_r)
{
        _cleanup_err_ struct tn_err *err = NULL;
        int r;
        if (strcmp(kind, "seccomp") == 0) {
                _cleanup_policy_ struct policy *p = NULL;
                _cleanup_policy_bpf_ struct policy_bpf *b = NULL;
                r = policy_load(name, &p, &err);
                if (r == 0)
                        r = policy_compile(p, &b, &err);
        } else {
                _cleanup_capset_ struct capset *s = NULL;
                r = capset_load(name, &s, &err);
        }
        *ret_r = r;
        return r < 0 ? strdup(tn_err_msg(err)) : NULL;
}

static void golden_case(const char *dir, const char *kind, const char *name)
{
        char path[1500];
        snprintf(path, sizeof(path), "%s/%s/%.256s.err", dir, kind, name);
        _cleanup_free_ char *want = NULL;
        size_t len;
        if (read_file_bounded(path, 4096, &want, &len, NULL) < 0) {
                ok(false, "bad/%s/%s: read %s", kind, name, path);
                return;
        }
        while (len && want[len - 1] == '\n')
                want[--len] = '\0';
        int r;
        _cleanup_free_ char *got = try_load(kind, name, &r);
        char shown[2048] = "";
        if (got)
                normalize(got, dir, shown, sizeof(shown));
        ok(r == -EINVAL || r == -ENOENT, "bad/%s/%s: refused (r=%d)", kind, name, r);
        is_str(got ? shown : NULL, want, "bad/%s/%s: message", kind, name);
}

static int golden(const char *kind)
{
        char dir[1024], sub[1100];
        use_dir("tests/data/policies/bad", dir, sizeof(dir));
        snprintf(sub, sizeof(sub), "%s/%s", dir, kind);
        struct dirent **list = NULL;
        int n = scandir(sub, &list, NULL, alphasort);
        int cases = 0;
        for (int i = 0; i < n; i++) {
                char *d = list[i]->d_name;
                size_t l = strlen(d);
                if (l > 4 && strcmp(d + l - 4, ".err") == 0) {
                        d[l - 4] = '\0';
                        golden_case(dir, kind, d);
                        cases++;
                }
                free(list[i]);
        }
        free(list);
        return cases;
}

static void test_golden(void)
{
        int n = golden("seccomp");
        ok(n >= 15, "at least 15 bad seccomp profiles (%d)", n);
        n = golden("capabilities");
        ok(n >= 4, "at least 4 bad capability sets (%d)", n);
}

static void test_names(void)
{
        char dir[1024];
        use_dir("tests/data/policies/good", dir, sizeof(dir));
        static const char *const bad[] = {"../default", "a/b", "",        "Default",
                                          "-x",         "x-",  "de fault"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_err_ struct tn_err *err = NULL;
                _cleanup_policy_ struct policy *p = NULL;
                int r = policy_load(bad[i], &p, &err);
                ok(r == -EINVAL && !p && strstr(tn_err_msg(err), "is not a seccomp profile name"),
                   "name \"%s\" is refused before any file is opened", bad[i]);
        }
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_capset_ struct capset *s = NULL;
        ok(capset_load("../ports", &s, &err) == -EINVAL, "capability set names are checked too");
}

static void test_base_and_override(void)
{
        char dir[1024];
        use_dir("tests/data/policies/good", dir, sizeof(dir));
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_policy_ struct policy *p = NULL;
        if (!ok(policy_load("child", &p, &err) == 0, "child profile loads")) {
                diag("%s", tn_err_msg(err));
                return;
        }
        is_str(p->base, "base", "child: base recorded");
        is_int(p->default_action.type, POLICY_ERRNO, "child: default action inherited");
        is_int(p->default_action.errno_value, EPERM, "child: ... errno:EPERM");
        is_int(p->n_rules, 4, "child: base rules (minus ioctl) and its own");
        is_int(p->rules[0].n_syscalls, 3, "child: base's ioctl dropped from its first rule");
        is_str(p->rules[0].from, "base", "child: rule origin kept");
        is_str(p->rules[2].syscalls[0], "ioctl", "child: own rules come after the base's");
        is_int(p->rules[3].args[0].value, 0x5412, "child: \"TIOCSTI|0\" evaluates to 0x5412");
        is_int(p->rules[3].args[0].mask, 0xffffffff, "child: mask parsed from a hex string");

        _cleanup_policy_bpf_ struct policy_bpf *b = NULL;
        if (!ok(policy_compile(p, &b, &err) == 0, "child compiles")) {
                diag("%s", tn_err_msg(err));
                return;
        }
        ok(b->len > 0 && b->insns, "child: BPF exported (%zu instructions)", b->len);
        is_int(b->n_foreign, 1, "child: socketcall is not an x86_64 call, counted apart");
        is_int(b->n_allowed, 4, "child: read, write, ioctl, exit_group allowed");
        is_int(b->n_blocked, 2, "child: kexec_load and ioctl (TIOCSTI) blocked");
        /* read, write, exit_group, kexec_load, plus ioctl outside TIOCSTI: a 32-bit trie
         * with one value removed is 32 masked_eq rules. */
        is_int(b->n_libseccomp_rules, 4 + 32, "child: exception compiled as a 32-rule trie");
        ok(b->optimized, "child: binary tree layout used");
}

/* "notify" (issue 17): a blocking action like errno, compiled to SECCOMP_RET_USER_NOTIF. */
static void test_notify(void)
{
        char dir[1024];
        use_dir("tests/data/policies/good", dir, sizeof(dir));
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_policy_ struct policy *p = NULL, *base = NULL;
        if (!ok(policy_load("notifying", &p, &err) == 0, "notifying profile loads")) {
                diag("%s", tn_err_msg(err));
                return;
        }
        const struct policy_rule *r = &p->rules[p->n_rules - 1];
        char buf[32];
        is_int(r->action.type, POLICY_NOTIFY, "notify: parsed as POLICY_NOTIFY");
        is_str(policy_action_to_string(&r->action, buf, sizeof(buf)), "notify",
               "notify: written back as \"notify\"");
        ok(policy_action_blocks(&r->action), "notify: counts as a blocking action");
        is_str(r->syscalls[0], "personality", "notify: on personality");
        _cleanup_policy_bpf_ struct policy_bpf *b = NULL, *bb = NULL;
        if (!ok(policy_compile(p, &b, &err) == 0, "notifying compiles")) {
                diag("%s", tn_err_msg(err));
                return;
        }
        ok(policy_bpf_notifies(b), "notify: the program returns SECCOMP_RET_USER_NOTIF");
        is_int(b->n_blocked, 2, "notify: kexec_load and personality blocked");
        ok(policy_load("base", &base, &err) == 0 && policy_compile(base, &bb, &err) == 0,
           "base compiles");
        ok(!policy_bpf_notifies(bb), "base: no notify rule, no listener needed");
        char name[64];
        is_str(policy_syscall_name(SYS_personality, name, sizeof(name)), "personality",
               "policy_syscall_name(SYS_personality)");
        is_str(policy_syscall_name(100000, name, sizeof(name)), "nr-100000",
               "policy_syscall_name of an unknown number");
        /* What a microVM's agent gets (policy_notified_calls), and what exec gets. */
        bool notified[1024];
        is_int((int)policy_notified_calls(p, notified, 1024), 0,
               "notifying: no conditional notify");
        size_t count = 0;
        for (size_t i = 0; i < 1024; i++)
                count += notified[i];
        ok(count == 1 && notified[SYS_personality], "the guest notifies personality alone");
        (void)policy_notified_calls(base, notified, 1024);
        count = 0;
        for (size_t i = 0; i < 1024; i++)
                count += notified[i];
        is_int((int)count, 0, "base: the guest notifies nothing");
        policy_bpf_notify_as_errno(b, EPERM);
        ok(!policy_bpf_notifies(b),
           "exec's program: notify rewritten to errno, no listener needed");
}

static void test_search_order(void)
{
        char dir[1024];
        use_dir("tests/data/policies/good", dir, sizeof(dir));
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_policy_ struct policy *p = NULL;
        ok(policy_load("default", &p, &err) == 0 && strstr(p->description, "shadows"),
           "$TENANTD_POLICY_DIR comes first on the search path");
        _cleanup_strv_free_ char **names = NULL;
        ok(policy_list(POLICY_SECCOMP, &names, &err) == 0 && names[0] &&
               strcmp(names[0], "base") == 0,
           "policy_list is sorted");
        const char *dirs[POLICY_MAX_SEARCH];
        size_t n = policy_search_path(dirs);
        ok(n == 3 && strcmp(dirs[0], dir) == 0 && strcmp(dirs[2], TENANTD_POLICYDIR) == 0,
           "search path: env, sysconfdir, installed");
}

static void test_capsets(void)
{
        char dir[1024];
        use_dir("tests/data/policies/good", dir, sizeof(dir));
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_capset_ struct capset *s = NULL;
        if (!ok(capset_load("more", &s, &err) == 0, "capability set with include loads")) {
                diag("%s", tn_err_msg(err));
                return;
        }
        is_int(s->n_caps, 2, "include merged without duplicates");
        ok(s->n_caps == 2 && s->caps[0].cap < s->caps[1].cap, "sorted by number");
        is_str(s->caps[1].why, "ports, said again", "own why replaces the included one");
}

static void test_shipped(void)
{
        char dir[1024];
        use_dir("policies", dir, sizeof(dir));
        static const char *const profiles[] = {"default", "strict", "permissive-log"};
        for (size_t i = 0; i < ARRAY_SIZE(profiles); i++) {
                _cleanup_err_ struct tn_err *err = NULL;
                _cleanup_policy_ struct policy *p = NULL;
                _cleanup_policy_bpf_ struct policy_bpf *b = NULL;
                int r = policy_load(profiles[i], &p, &err);
                if (r == 0)
                        r = policy_compile(p, &b, &err);
                if (!ok(r == 0, "shipped %s loads and compiles", profiles[i]))
                        diag("%s", tn_err_msg(err));
                else
                        ok(b->n_foreign == 0, "shipped %s names only x86_64 calls", profiles[i]);
        }
        static const char *const sets[] = {"none", "net-bind", "drop-privileges", "web"};
        for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
                _cleanup_err_ struct tn_err *err = NULL;
                _cleanup_capset_ struct capset *s = NULL;
                if (!ok(capset_load(sets[i], &s, &err) == 0, "shipped @%s loads", sets[i]))
                        diag("%s", tn_err_msg(err));
        }
}

static bool same_program(const struct policy_bpf *a, const struct policy_bpf *b)
{
        return a && b && a->len == b->len &&
               memcmp(a->insns, b->insns, a->len * sizeof(*a->insns)) == 0 &&
               a->n_allowed == b->n_allowed && a->optimized == b->optimized;
}

/* The cache returns exactly what a fresh compile does, and never trusts a file it
 * did not write for this key. */
static void test_compile_cache(void)
{
        char dir[] = "/tmp/tenantd-cache-test.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(false, "mkdtemp");
                return;
        }
        char cache[64];
        snprintf(cache, sizeof(cache), "%s/c", dir);
        _cleanup_policy_ struct policy *p = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        char policies[4096];
        snprintf(policies, sizeof(policies), "%s/policies",
                 getenv("SRCDIR") ? getenv("SRCDIR") : ".");
        setenv("TENANTD_POLICY_DIR", policies, 1);
        if (!ok(policy_load("default", &p, &err) == 0, "cache: load default"))
                return;
        _cleanup_policy_bpf_ struct policy_bpf *fresh = NULL, *first = NULL, *second = NULL,
                                               *after = NULL;
        ok(policy_compile(p, &fresh, &err) == 0, "cache: fresh compile");
        ok(policy_compile_cached(p, cache, &first, &err) == 0 && same_program(fresh, first),
           "cache: a miss compiles the same program");
        ok(policy_compile_cached(p, cache, &second, &err) == 0 && same_program(fresh, second),
           "cache: a hit returns the same program");

        DIR *d = opendir(cache);
        struct dirent *e;
        char file[4096] = "";
        while (d && (e = readdir(d)))
                if (e->d_name[0] != '.')
                        snprintf(file, sizeof(file), "%s/%s", cache, e->d_name);
        if (d)
                closedir(d);
        ok(file[0] != '\0', "cache: one file written (%s)", file);
        /* A truncated file (same header, fewer instructions) is not used. */
        if (file[0] && truncate(file, 200) == 0)
                ok(policy_compile_cached(p, cache, &after, &err) == 0 && same_program(fresh, after),
                   "cache: a truncated file is recompiled, not loaded");
        /* A cache directory others may write is not trusted. */
        chmod(cache, 0777);
        _cleanup_policy_bpf_ struct policy_bpf *open_dir = NULL;
        struct stat before, now;
        stat(file, &before);
        ok(policy_compile_cached(p, cache, &open_dir, &err) == 0 && same_program(fresh, open_dir),
           "cache: a world-writable directory is not used");
        ok(stat(file, &now) == 0 && now.st_mtim.tv_nsec == before.st_mtim.tv_nsec &&
               now.st_mtim.tv_sec == before.st_mtim.tv_sec,
           "cache: ... nor written");
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ok(system(cmd) == 0, "cache: cleanup");
}

int main(void)
{
        test_golden();
        test_names();
        test_base_and_override();
        test_notify();
        test_search_order();
        test_capsets();
        test_shipped();
        test_compile_cache();
        return tap_done();
}
