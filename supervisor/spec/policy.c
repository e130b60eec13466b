/* policy.c — seccomp profiles and capability sets (see policy.h, docs/policies.md).
 *
 * Three stages, in this order in the file:
 *   1. the search path: names -> files (never a path from anything but [a-z0-9-]);
 *   2. parsing: JSON tree -> struct policy, stopping at the first problem with
 *      FILE:LINE:COL, the key path and what would be accepted; "base" chains are
 *      resolved with a depth limit and loop detection;
 *   3. compiling: struct policy -> libseccomp -> BPF in memory.
 *
 * The one subtle part is stage 3. libseccomp 2.5 silently drops a conditional rule
 * for a system call that also has an unconditional rule, whatever the actions (and
 * refuses rules whose action equals the default action). A profile that says "allow
 * ioctl" and "errno:EPERM for ioctl when (arg1 & 0xffffffff) == TIOCSTI" therefore
 * cannot be handed over as written. Our rule is: for one call, rules with conditions
 * take precedence over the rule without. We compile that as the exceptions plus the
 * unconditional action restricted to the complement of the exceptions, built from
 * masked_eq tests over a binary trie of the tested bits (see emit_complement). */
#include "spec/policy.h"

#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "spec/caps.h"
#include "lib/fileio.h"
#include "lib/buildtree.h"
#include "lib/json.h"
#include "lib/strutil.h"
#include "lib/trust.h"

#define MAX_NAME 64         /* profile, set and syscall names */
#define MAX_TEXT 1000       /* description and why */
#define MAX_LISTED 1024     /* files per directory considered by policy_list */
#define MAX_SCMP_RULES 2048 /* rules handed to libseccomp for one profile */
#define MAX_EXCEPTIONS 32   /* exception values for one call (complement trie) */
#define MAX_NATIVE_NR 1024  /* syscall numbers scanned for "did you mean" */

/* ---- 1. search path ---- */

static const char *kind_dir(enum policy_kind kind)
{
        return kind == POLICY_SECCOMP ? "seccomp" : "capabilities";
}

static const char *kind_what(enum policy_kind kind)
{
        return kind == POLICY_SECCOMP ? "seccomp profile" : "capability set";
}

size_t policy_search_path(const char *dirs[POLICY_MAX_SEARCH])
{
        size_t n = 0;
        const char *env = secure_getenv("TENANTD_POLICY_DIR");
        /* Else, run from a source tree's build directory: that tree's own policies/
         * (buildtree.h). The variable, where set, is the development override. */
        static char tree[PATH_MAX];
        const char *root = buildtree_root();
        if (env && env[0])
                dirs[n++] = env;
        else if (root && snprintf(tree, sizeof(tree), "%s/policies", root) < (int)sizeof(tree))
                dirs[n++] = tree;
        dirs[n++] = TENANTD_SYSCONFDIR "/tenantd/policies";
        dirs[n++] = TENANTD_POLICYDIR;
        return n;
}

static int not_a_name(struct tn_err **err, enum policy_kind kind, const char *name)
{
        return tn_err_setx(
            err, EINVAL, "\"%.64s\" is not a %s name; expected a-z, 0-9 and \"-\" such as %s", name,
            kind_what(kind), kind == POLICY_SECCOMP ? "\"default\"" : "\"net-bind\"");
}

static bool good_name(const char *name)
{
        return strlen(name) <= MAX_NAME && is_simple_name(name);
}

int policy_find(enum policy_kind kind, const char *name, char **ret_path, struct tn_err **err)
{
        if (!good_name(name))
                return not_a_name(err, kind, name);
        const char *dirs[POLICY_MAX_SEARCH];
        size_t n = policy_search_path(dirs);
        for (size_t i = 0; i < n; i++) {
                char *path = NULL;
                if (asprintf(&path, "%s/%s/%s.json", dirs[i], kind_dir(kind), name) < 0)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                struct stat st;
                if (stat(path, &st) == 0) {
                        *ret_path = path;
                        return 0;
                }
                int e = errno;
                free(path);
                if (e != ENOENT && e != ENOTDIR)
                        return tn_err_set(err, e, "%s/%s/%s.json", dirs[i], kind_dir(kind), name);
        }
        char where[1024] = "";
        size_t off = 0;
        for (size_t i = 0; i < n && off < sizeof(where); i++)
                off += (size_t)snprintf(where + off, sizeof(where) - off, "%s%s/%s",
                                        i == 0       ? ""
                                        : i + 1 == n ? " or "
                                                     : ", ",
                                        dirs[i], kind_dir(kind));
        _cleanup_strv_free_ char **names = NULL;
        const char *near = NULL;
        if (policy_list(kind, &names, NULL) == 0 && names) {
                size_t count = 0;
                while (names[count])
                        count++;
                near = suggest_nearest(name, (const char *const *)names, count);
        }
        if (near)
                return tn_err_setx(err, ENOENT, "no %s \"%s\" in %s; did you mean \"%s\"?",
                                   kind_what(kind), name, where, near);
        return tn_err_setx(err, ENOENT, "no %s \"%s\" in %s", kind_what(kind), name, where);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The policy name of a directory entry "NAME.json" into stem, or false. */
static bool entry_name(const char *file, char stem[MAX_NAME + 1])
{
        size_t len = strlen(file);
        if (len <= 5 || len - 5 > MAX_NAME || strcmp(file + len - 5, ".json") != 0)
                return false;
        memcpy(stem, file, len - 5);
        stem[len - 5] = '\0';
        return is_simple_name(stem);
}

static bool listed(char *const *names, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return true;
        return false;
}

/* Adds the NAME of each DIR/NAME.json to names[0..*n) unless already there. */
static int list_dir(const char *dir, char **names, size_t *n, struct tn_err **err)
{
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT || errno == ENOTDIR ? 0 : tn_err_set(err, errno, "%s", dir);
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d))) {
                char stem[MAX_NAME + 1];
                if (!entry_name(de->d_name, stem) || listed(names, *n, stem))
                        continue;
                if (*n >= MAX_LISTED)
                        r = tn_err_setx(err, E2BIG, "%s: more than %d policies", dir, MAX_LISTED);
                else if ((names[*n] = strdup(stem)))
                        (*n)++;
                else
                        r = tn_err_setx(err, ENOMEM, "out of memory");
        }
        closedir(d);
        return r;
}

int policy_list(enum policy_kind kind, char ***ret_names, struct tn_err **err)
{
        _cleanup_strv_free_ char **names = calloc(MAX_LISTED + 1, sizeof(char *));
        if (!names)
                return tn_err_setx(err, ENOMEM, "out of memory");
        const char *dirs[POLICY_MAX_SEARCH];
        size_t ndirs = policy_search_path(dirs), n = 0;
        for (size_t i = 0; i < ndirs; i++) {
                _cleanup_free_ char *dir = NULL;
                if (asprintf(&dir, "%s/%s", dirs[i], kind_dir(kind)) < 0)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                int r = list_dir(dir, names, &n, err);
                if (r < 0)
                        return r;
        }
        qsort(names, n, sizeof(char *), cmp_str);
        *ret_names = TAKE_PTR(names);
        return 0;
}

/* ---- 2. parsing: names and constants ---- */

static const struct {
        const char *name;
        int value;
} errno_names[] = {
    {"EPERM", EPERM},
    {"ENOENT", ENOENT},
    {"ESRCH", ESRCH},
    {"EINTR", EINTR},
    {"EIO", EIO},
    {"ENXIO", ENXIO},
    {"E2BIG", E2BIG},
    {"EBADF", EBADF},
    {"EAGAIN", EAGAIN},
    {"ENOMEM", ENOMEM},
    {"EACCES", EACCES},
    {"EFAULT", EFAULT},
    {"EBUSY", EBUSY},
    {"EEXIST", EEXIST},
    {"ENODEV", ENODEV},
    {"EINVAL", EINVAL},
    {"ENOSPC", ENOSPC},
    {"EROFS", EROFS},
    {"ENOSYS", ENOSYS},
    {"EOPNOTSUPP", EOPNOTSUPP},
    {"EAFNOSUPPORT", EAFNOSUPPORT},
    {"ENOTTY", ENOTTY},
    {"EPROTONOSUPPORT", EPROTONOSUPPORT},
};

static const char *errno_name(int e)
{
        for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++)
                if (errno_names[i].value == e)
                        return errno_names[i].name;
        return NULL;
}

/* Symbolic argument values a profile may use; see docs/policies.md. */
static const struct {
        const char *name;
        uint64_t value;
} constants[] = {
    {"CLONE_NEWNS", CLONE_NEWNS},
    {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
    {"CLONE_NEWUTS", CLONE_NEWUTS},
    {"CLONE_NEWIPC", CLONE_NEWIPC},
    {"CLONE_NEWUSER", CLONE_NEWUSER},
    {"CLONE_NEWPID", CLONE_NEWPID},
    {"CLONE_NEWNET", CLONE_NEWNET},
    {"CLONE_NEWTIME", 0x80},
    {"CLONE_VM", CLONE_VM},
    {"CLONE_FS", CLONE_FS},
    {"CLONE_FILES", CLONE_FILES},
    {"CLONE_SIGHAND", CLONE_SIGHAND},
    {"CLONE_THREAD", CLONE_THREAD},
    {"CLONE_VFORK", CLONE_VFORK},
    {"AF_UNIX", AF_UNIX},
    {"AF_LOCAL", AF_LOCAL},
    {"AF_INET", AF_INET},
    {"AF_INET6", AF_INET6},
    {"AF_NETLINK", AF_NETLINK},
    {"AF_PACKET", AF_PACKET},
    {"AF_VSOCK", AF_VSOCK},
    {"NETLINK_ROUTE", 0},
    {"TIOCSTI", TIOCSTI},
    {"TIOCLINUX", TIOCLINUX},
    {"TIOCSETD", TIOCSETD},
    {"TIOCCONS", TIOCCONS},
    {"PER_LINUX", 0x0000},
    {"PER_LINUX32", 0x0008},
    {"UNAME26", 0x0020000},
    {"ADDR_NO_RANDOMIZE", 0x0040000},
    {"PERSONALITY_QUERY", 0xffffffff},
};

static const char *const action_words[] = {"allow",       "log",  "errno:EPERM", "trap",
                                           "kill-thread", "kill", "notify"};

static const char *const op_names[] = {
    [POLICY_OP_EQ] = "eq",
    [POLICY_OP_NE] = "ne",
    [POLICY_OP_LT] = "lt",
    [POLICY_OP_LE] = "le",
    [POLICY_OP_GT] = "gt",
    [POLICY_OP_GE] = "ge",
    [POLICY_OP_MASKED_EQ] = "masked_eq",
};

const char *policy_op_to_string(enum policy_op op)
{
        return (size_t)op < ARRAY_SIZE(op_names) ? op_names[op] : "?";
}

const char *policy_action_to_string(const struct policy_action *a, char *buf, size_t len)
{
        static const char *const words[] = {
            [POLICY_ALLOW] = "allow",
            [POLICY_LOG] = "log",
            [POLICY_ERRNO] = "errno",
            [POLICY_TRAP] = "trap",
            [POLICY_KILL_THREAD] = "kill-thread",
            [POLICY_KILL_PROCESS] = "kill",
            [POLICY_NOTIFY] = "notify",
        };
        if (a->type != POLICY_ERRNO) {
                snprintf(buf, len, "%s", words[a->type]);
                return buf;
        }
        const char *n = errno_name(a->errno_value);
        if (n)
                snprintf(buf, len, "errno:%s", n);
        else
                snprintf(buf, len, "errno:%d", a->errno_value);
        return buf;
}

bool policy_action_blocks(const struct policy_action *a)
{
        return a->type != POLICY_ALLOW && a->type != POLICY_LOG;
}

static bool action_equal(const struct policy_action *a, const struct policy_action *b)
{
        return a->type == b->type && (a->type != POLICY_ERRNO || a->errno_value == b->errno_value);
}

/* Every system call name of the native architecture, for "did you mean". */
static char **native_syscall_names(size_t *ret_n)
{
        char **names = calloc(MAX_NATIVE_NR + 1, sizeof(char *));
        size_t n = 0;
        for (int nr = 0; names && nr < MAX_NATIVE_NR; nr++) {
                char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
                if (s)
                        names[n++] = s;
        }
        *ret_n = n;
        return names;
}

/* What a profile does with one call, as far as a comparison needs: runs in full, runs
 * under conditions, or refused (with the reason of the rule that refuses it, if a rule
 * names it). Rules that name the call decide; the default action covers the rest. */
enum call_verdict {
        CALL_RUNS,
        CALL_RUNS_IF,
        CALL_REFUSED,
};

static enum call_verdict call_verdict(const struct policy *p, const char *sys, const char **ret_why)
{
        bool allow_full = false, allow_cond = false, block_full = false, block_cond = false;
        const char *why = NULL;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *r = &p->rules[i];
                bool named = false;
                for (size_t j = 0; j < r->n_syscalls && !named; j++)
                        named = strcmp(r->syscalls[j], sys) == 0;
                if (!named)
                        continue;
                bool blocks = policy_action_blocks(&r->action);
                if (blocks && !why)
                        why = r->why;
                if (blocks)
                        *(r->n_args ? &block_cond : &block_full) = true;
                else
                        *(r->n_args ? &allow_cond : &allow_full) = true;
        }
        *ret_why = why;
        if (allow_full && !block_cond && !block_full)
                return CALL_RUNS;
        if (!allow_full && !allow_cond) {
                if (block_full || policy_action_blocks(&p->default_action))
                        return CALL_REFUSED;
                return block_cond ? CALL_RUNS_IF : CALL_RUNS;
        }
        return CALL_RUNS_IF; /* some of its uses run, some do not */
}

void policy_widenings_free(struct policy_widening *w, size_t n)
{
        for (size_t i = 0; i < n && w; i++)
                free(w[i].syscall);
        free(w);
}

int policy_widenings(const struct policy *p, const struct policy *ref, struct policy_widening **ret,
                     size_t *ret_n, struct tn_err **err)
{
        struct policy_widening *w = NULL;
        size_t n = 0, cap = 0;
        for (int nr = 0; nr < MAX_NATIVE_NR; nr++) {
                _cleanup_free_ char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
                if (!name)
                        continue;
                const char *why_p, *why_ref;
                enum call_verdict vp = call_verdict(p, name, &why_p);
                enum call_verdict vr = call_verdict(ref, name, &why_ref);
                /* wider: refused by ref and runs (somehow) under p; or runs under
                 * conditions in ref and in full under p */
                if (!(vr == CALL_REFUSED && vp != CALL_REFUSED) &&
                    !(vr == CALL_RUNS_IF && vp == CALL_RUNS))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        struct policy_widening *nw = reallocarray(w, ncap, sizeof(*w));
                        if (!nw) {
                                policy_widenings_free(w, n);
                                return tn_err_setx(err, ENOMEM, "out of memory");
                        }
                        w = nw;
                        cap = ncap;
                }
                w[n++] = (struct policy_widening){
                    .syscall = TAKE_PTR(name), .why = why_ref, .conditional = vp == CALL_RUNS_IF};
        }
        *ret = w;
        *ret_n = n;
        return 0;
}

/* ---- 2. parsing: context, key paths, errors ---- */

struct pctx {
        const char *file;
        char path[256];
        size_t path_len;
        struct tn_err **err;
};

static size_t path_push(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct pctx *c, const char *fmt, ...)
{
        size_t saved = c->path_len;
        char part[96];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(part, sizeof(part), fmt, ap);
        va_end(ap);
        bool dot = c->path_len > 0 && part[0] != '[';
        snprintf(c->path + c->path_len, sizeof(c->path) - c->path_len, "%s%s", dot ? "." : "",
                 part);
        c->path_len = strlen(c->path);
        return saved;
}

static void path_pop(struct pctx *c, size_t saved)
{
        c->path_len = saved;
        c->path[saved] = '\0';
}

static int fail_pos(struct pctx *c, struct json_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_pos(struct pctx *c, struct json_pos pos, const char *fmt, ...)
{
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return tn_err_setx(c->err, EINVAL, "%s:%u:%u: %s%s%s", c->file, pos.line, pos.col, c->path,
                           c->path_len ? ": " : "", msg);
}

/* fail_pos() always returns a negative value; the wrapper lets analyzers see it. */
#define fail_at(c, v, ...) tn_err_negative(fail_pos((c), (v)->pos, __VA_ARGS__))

/* A user string made safe to quote in a message: control characters escaped,
 * truncated. */
static const char *shown(const char *s, char *buf, size_t len)
{
        size_t o = 0;
        for (; *s && o + 8 < len; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
                        o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
                else
                        buf[o++] = (char)ch;
        }
        if (*s)
                o += (size_t)snprintf(buf + o, len - o, "...");
        buf[o < len ? o : len - 1] = '\0';
        return buf;
}

#define SHOWN(s) shown((s), (char[80]){0}, 80)

/* Matches obj's members against keys[0..n) into vals[]; unknown keys are errors. */
static int take_fields(struct pctx *c, const struct json_value *obj, const char *const *keys,
                       size_t n, const struct json_value **vals)
{
        for (size_t i = 0; i < n; i++)
                vals[i] = NULL;
        if (obj->type != JSON_OBJECT)
                return fail_at(c, obj, "expected an object, got %s", json_type_name(obj->type));
        for (size_t m = 0; m < obj->u.object.n; m++) {
                const struct json_member *mem = &obj->u.object.items[m];
                size_t i;
                for (i = 0; i < n && strcmp(mem->key, keys[i]) != 0; i++)
                        ;
                if (i < n) {
                        vals[i] = mem->value;
                        continue;
                }
                const char *near = suggest_nearest(mem->key, keys, n);
                path_push(c, "%s", SHOWN(mem->key));
                if (near)
                        return fail_pos(c, mem->pos, "unknown key; did you mean \"%s\"?", near);
                char list[256] = "";
                size_t off = 0;
                for (i = 0; i < n && off < sizeof(list); i++)
                        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
                                                i ? ", " : "", keys[i]);
                return fail_pos(c, mem->pos, "unknown key; expected one of: %s", list);
        }
        return 0;
}

static int fail_missing(struct pctx *c, const struct json_value *obj, const char *key,
                        const char *expected)
{
        path_push(c, "%s", key);
        return fail_at(c, obj, "required key is missing; expected %s", expected);
}

/* A string of 1..max bytes without control characters. */
static int get_text(struct pctx *c, const struct json_value *v, size_t max, const char *what,
                    const char **ret)
{
        if (v->type != JSON_STRING)
                return fail_at(c, v, "expected %s, got %s", what, json_type_name(v->type));
        const char *s = v->u.str.text;
        if (v->u.str.len == 0 || v->u.str.len > max)
                return fail_at(c, v, "expected %s of 1 to %zu characters", what, max);
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return fail_at(c, v, "control characters are not allowed here");
        *ret = v->u.str.text;
        return 0;
}

static int dup_text(struct pctx *c, const struct json_value *v, size_t max, const char *what,
                    char **ret)
{
        const char *s = NULL;
        int r = get_text(c, v, max, what, &s);
        if (r < 0 || !s)
                return tn_err_negative(r);
        if (!(*ret = strdup(s)))
                return tn_err_setx(c->err, ENOMEM, "out of memory");
        return 0;
}

static int parse_action(struct pctx *c, const struct json_value *v, struct policy_action *ret)
{
        const char *s;
        int r = get_text(c, v, MAX_NAME, "an action such as \"allow\" or \"errno:EPERM\"", &s);
        if (r < 0)
                return r;
        static const struct {
                const char *word;
                enum policy_action_type type;
        } plain[] = {
            {"allow", POLICY_ALLOW},       {"log", POLICY_LOG},
            {"trap", POLICY_TRAP},         {"kill-thread", POLICY_KILL_THREAD},
            {"kill", POLICY_KILL_PROCESS}, {"notify", POLICY_NOTIFY},
        };
        for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
                if (strcmp(s, plain[i].word) == 0) {
                        *ret = (struct policy_action){.type = plain[i].type};
                        return 0;
                }
        if (strncmp(s, "errno:", 6) == 0) {
                const char *names[ARRAY_SIZE(errno_names)];
                for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++) {
                        names[i] = errno_names[i].name;
                        if (strcmp(s + 6, errno_names[i].name) == 0) {
                                *ret = (struct policy_action){POLICY_ERRNO, errno_names[i].value};
                                return 0;
                        }
                }
                const char *near = suggest_nearest(s + 6, names, ARRAY_SIZE(names));
                if (near)
                        return fail_at(c, v, "unknown errno name \"%s\"; did you mean \"%s\"?",
                                       SHOWN(s + 6), near);
                return fail_at(c, v,
                               "unknown errno name \"%s\"; expected one such as EPERM, ENOSYS, "
                               "EACCES or EAFNOSUPPORT",
                               SHOWN(s + 6));
        }
        const char *near = suggest_nearest(s, action_words, ARRAY_SIZE(action_words));
        if (near)
                return fail_at(c, v, "unknown action \"%s\"; did you mean \"%s\"?", SHOWN(s), near);
        return fail_at(
            c, v,
            "unknown action \"%s\"; expected \"allow\", \"log\", \"errno:NAME\" (such as "
            "\"errno:EPERM\"), \"trap\", \"kill-thread\", \"kill\" or \"notify\"",
            SHOWN(s));
}

/* ---- 2. parsing: argument conditions ---- */

static bool parse_uint_term(const char *s, size_t len, uint64_t *ret)
{
        char buf[32];
        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        int base = 10;
        const char *digits = buf;
        if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
                base = 16;
                digits = buf + 2;
        }
        for (const char *p = digits; *p; p++)
                if (base == 16 ? !strchr("0123456789abcdefABCDEF", *p) : (*p < '0' || *p > '9'))
                        return false;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(digits, &end, base);
        if (errno || *end || !*digits)
                return false;
        *ret = v;
        return true;
}

static int parse_const_term(struct pctx *c, const struct json_value *v, const char *s, size_t len,
                            uint64_t *ret)
{
        if (parse_uint_term(s, len, ret))
                return 0;
        char word[MAX_NAME + 1];
        snprintf(word, sizeof(word), "%.*s", (int)(len < MAX_NAME ? len : MAX_NAME), s);
        const char *names[ARRAY_SIZE(constants)];
        for (size_t i = 0; i < ARRAY_SIZE(constants); i++) {
                names[i] = constants[i].name;
                if (strlen(constants[i].name) == len && strncmp(s, constants[i].name, len) == 0) {
                        *ret = constants[i].value;
                        return 0;
                }
        }
        const char *near = suggest_nearest(word, names, ARRAY_SIZE(names));
        if (near)
                return fail_at(c, v, "unknown constant \"%s\"; did you mean \"%s\"?", SHOWN(word),
                               near);
        return fail_at(c, v,
                       "\"%s\" is not a number or a known constant; expected e.g. 42, \"0x5412\", "
                       "\"TIOCSTI\" or \"CLONE_NEWUSER|CLONE_NEWNS\"",
                       SHOWN(word));
}

/* A whole number, "0x..", a constant, or several of these joined with '|'. */
static int parse_value(struct pctx *c, const struct json_value *v, uint64_t *ret)
{
        if (v->type == JSON_NUMBER) {
                int64_t n;
                if (!json_number_int64(v, &n) || n < 0)
                        return fail_at(c, v,
                                       "expected a whole number from 0 to 9223372036854775807 "
                                       "(larger ones as a \"0x...\" string), got %s",
                                       v->u.str.text);
                *ret = (uint64_t)n;
                return 0;
        }
        const char *s;
        int r = get_text(c, v, 256, "a number, a \"0x...\" string or a constant name", &s);
        if (r < 0)
                return r;
        uint64_t acc = 0;
        for (;;) {
                while (*s == ' ')
                        s++;
                size_t len = strcspn(s, "| ");
                uint64_t term;
                if ((r = parse_const_term(c, v, s, len, &term)) < 0)
                        return r;
                acc |= term;
                s += len;
                while (*s == ' ')
                        s++;
                if (!*s)
                        break;
                if (*s != '|')
                        return fail_at(c, v, "expected \"|\" between constants");
                s++;
        }
        *ret = acc;
        return 0;
}

static int parse_op(struct pctx *c, const struct json_value *v, enum policy_op *ret)
{
        const char *s;
        int r = get_text(c, v, MAX_NAME, "a comparison such as \"eq\" or \"masked_eq\"", &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ARRAY_SIZE(op_names); i++)
                if (strcmp(s, op_names[i]) == 0) {
                        *ret = (enum policy_op)i;
                        return 0;
                }
        const char *near = suggest_nearest(s, op_names, ARRAY_SIZE(op_names));
        if (near)
                return fail_at(c, v, "unknown comparison \"%s\"; did you mean \"%s\"?", SHOWN(s),
                               near);
        return fail_at(c, v,
                       "unknown comparison \"%s\"; expected eq, ne, lt, le, gt, ge or masked_eq",
                       SHOWN(s));
}

static int parse_arg(struct pctx *c, const struct json_value *v, struct policy_arg *ret)
{
        enum { INDEX, OP, VALUE, MASK, N };
        static const char *const keys[N] = {"index", "op", "value", "mask"};
        const struct json_value *f[N];
        int r = take_fields(c, v, keys, N, f);
        if (r < 0)
                return r;
        if (!f[INDEX])
                return fail_missing(c, v, "index", "the argument's position, 0 to 5");
        if (!f[OP])
                return fail_missing(c, v, "op", "eq, ne, lt, le, gt, ge or masked_eq");
        if (!f[VALUE])
                return fail_missing(c, v, "value", "the number to compare with");
        struct policy_arg a = {0};
        int64_t idx;
        size_t saved = path_push(c, "index");
        if (f[INDEX]->type != JSON_NUMBER || !json_number_int64(f[INDEX], &idx) || idx < 0 ||
            idx >= POLICY_MAX_ARGS)
                return fail_at(c, f[INDEX], "expected an argument index from 0 to 5, got %s",
                               f[INDEX]->type == JSON_NUMBER ? f[INDEX]->u.str.text
                                                             : json_type_name(f[INDEX]->type));
        a.index = (unsigned)idx;
        path_pop(c, saved);
        path_push(c, "op");
        if ((r = parse_op(c, f[OP], &a.op)) < 0)
                return r;
        path_pop(c, saved);
        path_push(c, "value");
        if ((r = parse_value(c, f[VALUE], &a.value)) < 0)
                return r;
        path_pop(c, saved);
        if (a.op == POLICY_OP_MASKED_EQ && !f[MASK])
                return fail_missing(c, v, "mask", "the bits to compare, for op \"masked_eq\"");
        if (f[MASK]) {
                path_push(c, "mask");
                if (a.op != POLICY_OP_MASKED_EQ)
                        return fail_at(c, f[MASK], "\"mask\" is only for op \"masked_eq\"");
                if ((r = parse_value(c, f[MASK], &a.mask)) < 0)
                        return r;
                if ((a.value & ~a.mask) != 0)
                        return fail_at(c, f[MASK],
                                       "value 0x%llx has bits outside mask 0x%llx: the rule "
                                       "could never match",
                                       (unsigned long long)a.value, (unsigned long long)a.mask);
                path_pop(c, saved);
        }
        *ret = a;
        return 0;
}

static int parse_args(struct pctx *c, const struct json_value *v, struct policy_rule *rule)
{
        if (v->type != JSON_ARRAY)
                return fail_at(c, v, "expected an array of conditions, got %s",
                               json_type_name(v->type));
        if (v->u.array.n == 0 || v->u.array.n > POLICY_MAX_ARGS)
                return fail_at(c, v, "expected 1 to %d conditions (omit \"args\" for none)",
                               POLICY_MAX_ARGS);
        for (size_t i = 0; i < v->u.array.n; i++) {
                size_t saved = path_push(c, "[%zu]", i);
                int r = parse_arg(c, v->u.array.items[i], &rule->args[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (rule->args[j].index == rule->args[i].index)
                                return fail_at(c, v->u.array.items[i],
                                               "argument %u is already tested by args[%zu]; a "
                                               "rule tests each argument once (write another "
                                               "rule for an \"or\")",
                                               rule->args[i].index, j);
                path_pop(c, saved);
                rule->n_args = i + 1;
        }
        return 0;
}

/* ---- 2. parsing: rules ---- */

static bool valid_syscall_chars(const char *s)
{
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

static int fail_unknown_syscall(struct pctx *c, const struct json_value *v, const char *name)
{
        size_t n = 0;
        char **names = native_syscall_names(&n);
        const char *near = names && valid_syscall_chars(name)
                               ? suggest_nearest(name, (const char *const *)names, n)
                               : NULL;
        int r;
        if (near)
                r = fail_at(c, v, "unknown system call \"%s\"; did you mean \"%s\"?", SHOWN(name),
                            near);
        else
                r = fail_at(c, v,
                            "unknown system call \"%s\"; expected a name from the kernel's "
                            "syscall table such as \"openat\"",
                            SHOWN(name));
        strv_free(names);
        return r;
}

/* The rule among rules[0..n) that names `sys` without conditions, or -1. */
static ssize_t find_unconditional(const struct policy_rule *rules, size_t n, const char *sys)
{
        for (size_t i = 0; i < n; i++) {
                if (rules[i].n_args)
                        continue;
                for (size_t j = 0; j < rules[i].n_syscalls; j++)
                        if (strcmp(rules[i].syscalls[j], sys) == 0)
                                return (ssize_t)i;
        }
        return -1;
}

static int parse_syscall_name(struct pctx *c, const struct json_value *item,
                              const struct policy_rule *done, size_t n_done,
                              struct policy_rule *rule, size_t k)
{
        const char *s;
        int r = get_text(c, item, MAX_NAME, "a system call name", &s);
        if (r < 0)
                return r;
        if (!valid_syscall_chars(s) || seccomp_syscall_resolve_name(s) == __NR_SCMP_ERROR)
                return fail_unknown_syscall(c, item, s);
        for (size_t j = 0; j < k; j++)
                if (strcmp(rule->syscalls[j], s) == 0)
                        return fail_at(c, item, "\"%s\" is already listed at syscalls[%zu]", s, j);
        ssize_t other = rule->n_args ? -1 : find_unconditional(done, n_done, s);
        if (other >= 0)
                return fail_at(c, item,
                               "\"%s\" already has a rule without conditions (rules[%zd]); one "
                               "unconditional rule per system call, rules with \"args\" may add "
                               "exceptions to it",
                               s, other);
        if (!(rule->syscalls[k] = strdup(s)))
                return tn_err_setx(c->err, ENOMEM, "out of memory");
        rule->n_syscalls = k + 1;
        return 0;
}

static int parse_syscalls(struct pctx *c, const struct json_value *v,
                          const struct policy_rule *done, size_t n_done, struct policy_rule *rule)
{
        if (v->type != JSON_ARRAY)
                return fail_at(c, v, "expected an array of system call names, got %s",
                               json_type_name(v->type));
        if (v->u.array.n == 0 || v->u.array.n > POLICY_MAX_NAMES)
                return fail_at(c, v, "expected 1 to %d system call names", POLICY_MAX_NAMES);
        if (!(rule->syscalls = calloc(v->u.array.n + 1, sizeof(char *))))
                return tn_err_setx(c->err, ENOMEM, "out of memory");
        for (size_t k = 0; k < v->u.array.n; k++) {
                size_t saved = path_push(c, "[%zu]", k);
                int r = parse_syscall_name(c, v->u.array.items[k], done, n_done, rule, k);
                if (r < 0)
                        return r;
                path_pop(c, saved);
        }
        return 0;
}

static void rule_clear(struct policy_rule *r)
{
        strv_free(r->syscalls);
        free(r->why);
        free(r->where);
        free(r->from);
        *r = (struct policy_rule){0};
}

static int parse_rule(struct pctx *c, const struct json_value *v, const char *profile, size_t idx,
                      const struct policy_rule *done, struct policy_rule *rule)
{
        enum { ACTION, SYSCALLS, ARGS, WHY, N };
        static const char *const keys[N] = {"action", "syscalls", "args", "why"};
        const struct json_value *f[N];
        int r = take_fields(c, v, keys, N, f);
        if (r < 0)
                return r;
        if (!f[ACTION])
                return fail_missing(c, v, "action", "\"allow\", \"errno:NAME\", \"kill\", ...");
        if (!f[SYSCALLS])
                return fail_missing(c, v, "syscalls", "an array of system call names");
        size_t saved = path_push(c, "action");
        if ((r = parse_action(c, f[ACTION], &rule->action)) < 0)
                return r;
        path_pop(c, saved);
        if (f[WHY]) {
                path_push(c, "why");
                if ((r = dup_text(c, f[WHY], MAX_TEXT, "a sentence", &rule->why)) < 0)
                        return r;
                path_pop(c, saved);
        } else if (policy_action_blocks(&rule->action)) {
                return fail_missing(c, v, "why",
                                    "a sentence saying why these calls are blocked (every "
                                    "rule that is not \"allow\" or \"log\" needs one)");
        }
        if (f[ARGS]) {
                path_push(c, "args");
                if ((r = parse_args(c, f[ARGS], rule)) < 0)
                        return r;
                path_pop(c, saved);
        }
        path_push(c, "syscalls");
        if ((r = parse_syscalls(c, f[SYSCALLS], done, idx, rule)) < 0)
                return r;
        path_pop(c, saved);
        if (asprintf(&rule->where, "%s:%u:%u: %s", c->file, v->pos.line, v->pos.col, c->path) < 0)
                rule->where = NULL;
        rule->from = strdup(profile);
        if (!rule->where || !rule->from)
                return tn_err_setx(c->err, ENOMEM, "out of memory");
        return 0;
}

static int parse_rules(struct pctx *c, const struct json_value *v, struct policy *p)
{
        if (v->type != JSON_ARRAY)
                return fail_at(c, v, "expected an array of rules, got %s", json_type_name(v->type));
        if (v->u.array.n > POLICY_MAX_RULES)
                return fail_at(c, v, "expected at most %d rules", POLICY_MAX_RULES);
        if (!(p->rules = calloc(v->u.array.n ? v->u.array.n : 1, sizeof(*p->rules))))
                return tn_err_setx(c->err, ENOMEM, "out of memory");
        for (size_t i = 0; i < v->u.array.n; i++) {
                size_t saved = path_push(c, "rules[%zu]", i);
                int r = parse_rule(c, v->u.array.items[i], p->name, i, p->rules, &p->rules[i]);
                p->n_rules = i + 1; /* so that policy_free frees a half-parsed rule */
                if (r < 0)
                        return r;
                path_pop(c, saved);
        }
        return 0;
}

/* ---- 2. parsing: profiles and base chains ---- */

/* Parses one file (its own rules only). *ret_base_pos is where "base" was written. */
static int parse_profile(struct pctx *c, const struct json_value *root, struct policy *p,
                         bool *ret_has_default, struct json_pos *ret_base_pos)
{
        enum { DESCRIPTION, BASE, DEFAULT_ACTION, RULES, N };
        static const char *const keys[N] = {"description", "base", "default_action", "rules"};
        const struct json_value *f[N];
        int r = take_fields(c, root, keys, N, f);
        if (r < 0)
                return r;
        if (!f[DESCRIPTION])
                return fail_missing(c, root, "description", "a sentence saying what it is for");
        if (!f[DEFAULT_ACTION] && !f[BASE])
                return fail_missing(c, root, "default_action",
                                    "the action for calls no rule names, such as \"errno:EPERM\" "
                                    "or \"kill\"");
        path_push(c, "description");
        if ((r = dup_text(c, f[DESCRIPTION], MAX_TEXT, "a sentence", &p->description)) < 0)
                return r;
        path_pop(c, 0);
        if (f[BASE]) {
                path_push(c, "base");
                if ((r = dup_text(c, f[BASE], MAX_NAME, "a profile name", &p->base)) < 0)
                        return r;
                if (!good_name(p->base))
                        return fail_at(c, f[BASE],
                                       "\"%s\" is not a profile name; expected a-z, 0-9 and \"-\" "
                                       "such as \"default\"",
                                       SHOWN(p->base));
                if (strcmp(p->base, p->name) == 0)
                        return fail_at(c, f[BASE], "a profile cannot be its own base");
                *ret_base_pos = f[BASE]->pos;
                path_pop(c, 0);
        }
        *ret_has_default = f[DEFAULT_ACTION] != NULL;
        if (f[DEFAULT_ACTION]) {
                path_push(c, "default_action");
                if ((r = parse_action(c, f[DEFAULT_ACTION], &p->default_action)) < 0)
                        return r;
                path_pop(c, 0);
        }
        if (f[RULES])
                return parse_rules(c, f[RULES], p);
        return 0;
}

static bool trust_required;
static void (*trust_warn)(const char *msg);

void policy_trust_files(bool require, void (*warn)(const char *msg))
{
        trust_required = require;
        trust_warn = warn;
}

/* Reads and parses policy file `name` of `kind` into *ret_root. */
static int read_policy_json(enum policy_kind kind, const char *name, char **ret_path,
                            struct json_value **ret_root, struct tn_err **err)
{
        _cleanup_free_ char *path = NULL;
        int r = policy_find(kind, name, &path, err);
        if (r < 0)
                return r;
        /* Checked where it was found, then read from the path that was checked (its
         * real path: no link on the way can be swapped meanwhile). */
        _cleanup_free_ char *real = NULL;
        if (trust_required) {
                r = trust_check(path, TRUST_FILE, &real, err);
                if (r < 0) {
                        (void)tn_err_wrap(err, "untrusted %s refused", kind_what(kind));
                        return r;
                }
        } else if (trust_warn) {
                _cleanup_err_ struct tn_err *why = NULL;
                if (trust_check(path, TRUST_FILE, NULL, &why) < 0)
                        trust_warn(tn_err_msg(why));
        }
        _cleanup_free_ char *buf = NULL;
        size_t len;
        r = read_file_bounded(real ? real : path, json_limits_config.max_bytes, &buf, &len, err);
        if (r < 0)
                return r;
        struct json_error jerr;
        r = json_parse(buf, len, &json_limits_config, ret_root, &jerr);
        if (r < 0) {
                if (jerr.pos.line)
                        return tn_err_setx(err, -r, "%s:%u:%u: %s", path, jerr.pos.line,
                                           jerr.pos.col, jerr.msg);
                return tn_err_setx(err, -r, "%s: %s", path, jerr.msg);
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* The names of the profiles being loaded, outermost first, for loop detection. */
struct chain {
        const char *names[POLICY_MAX_DEPTH + 1];
        size_t n;
};

static int load_profile(const char *name, struct chain *chain, struct policy **ret,
                        struct tn_err **err);

static bool rule_names(const struct policy *p, const char *sys)
{
        for (size_t i = 0; i < p->n_rules; i++)
                for (size_t j = 0; j < p->rules[i].n_syscalls; j++)
                        if (strcmp(p->rules[i].syscalls[j], sys) == 0)
                                return true;
        return false;
}

/* Drops from rule r every call that `over` has rules for; true when some remain. */
static bool rule_filter(struct policy_rule *r, const struct policy *over)
{
        size_t k = 0;
        for (size_t j = 0; j < r->n_syscalls; j++) {
                if (rule_names(over, r->syscalls[j]))
                        free(r->syscalls[j]);
                else
                        r->syscalls[k++] = r->syscalls[j];
        }
        r->syscalls[k] = NULL;
        r->n_syscalls = k;
        return k > 0;
}

/* p's rules become base's rules (minus the calls p has rules for), then p's own. */
static int merge_base(struct policy *p, struct policy *base, bool has_default, struct tn_err **err)
{
        size_t n = 0;
        for (size_t i = 0; i < base->n_rules; i++) {
                if (rule_filter(&base->rules[i], p))
                        base->rules[n++] = base->rules[i];
                else
                        rule_clear(&base->rules[i]);
        }
        base->n_rules = n;
        if (n + p->n_rules > POLICY_MAX_RULES)
                return tn_err_setx(err, E2BIG, "%s: more than %d rules with those of its base",
                                   p->path, POLICY_MAX_RULES);
        struct policy_rule *all = calloc(n + p->n_rules + 1, sizeof(*all));
        if (!all)
                return tn_err_setx(err, ENOMEM, "out of memory");
        if (n)
                memcpy(all, base->rules, n * sizeof(*all));
        if (p->n_rules)
                memcpy(all + n, p->rules, p->n_rules * sizeof(*all));
        free(p->rules);
        p->rules = all;
        p->n_rules += n;
        base->n_rules = 0; /* moved */
        if (!has_default)
                p->default_action = base->default_action;
        return 0;
}

static int resolve_base(struct pctx *c, struct policy *p, struct chain *chain,
                        struct json_pos base_pos, bool has_default)
{
        for (size_t i = 0; i < chain->n; i++) {
                if (strcmp(chain->names[i], p->base) != 0)
                        continue;
                char loop[512] = "";
                size_t off = 0;
                for (size_t j = i; j < chain->n && off < sizeof(loop); j++)
                        off += (size_t)snprintf(loop + off, sizeof(loop) - off, "%s -> ",
                                                chain->names[j]);
                path_push(c, "base");
                return fail_pos(c, base_pos, "the base chain is a loop: %s%s", loop, p->base);
        }
        if (chain->n >= POLICY_MAX_DEPTH) {
                path_push(c, "base");
                return fail_pos(c, base_pos, "the base chain is deeper than %d profiles",
                                POLICY_MAX_DEPTH);
        }
        _cleanup_policy_ struct policy *base = NULL;
        int r = load_profile(p->base, chain, &base, c->err);
        if (r < 0)
                return r == -ENOENT ? tn_err_wrap(c->err, "%s:%u:%u: base", c->file, base_pos.line,
                                                  base_pos.col)
                                    : r;
        return merge_base(p, base, has_default, c->err);
}

static int load_profile(const char *name, struct chain *chain, struct policy **ret,
                        struct tn_err **err)
{
        _cleanup_json_ struct json_value *root = NULL;
        _cleanup_policy_ struct policy *p = calloc(1, sizeof(*p));
        if (!p || !(p->name = strdup(name)))
                return tn_err_setx(err, ENOMEM, "out of memory");
        int r = read_policy_json(POLICY_SECCOMP, name, &p->path, &root, err);
        if (r < 0)
                return r;
        struct pctx c = {.file = p->path, .err = err};
        bool has_default = false;
        struct json_pos base_pos = {0};
        if ((r = parse_profile(&c, root, p, &has_default, &base_pos)) < 0)
                return r;
        if (p->base) {
                chain->names[chain->n++] = name;
                r = resolve_base(&c, p, chain, base_pos, has_default);
                chain->n--;
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

int policy_load(const char *name, struct policy **ret, struct tn_err **err)
{
        if (!good_name(name))
                return not_a_name(err, POLICY_SECCOMP, name);
        struct chain chain = {.n = 0};
        return load_profile(name, &chain, ret, err);
}

void policy_free(struct policy *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_rules; i++)
                rule_clear(&p->rules[i]);
        free(p->rules);
        free(p->name);
        free(p->path);
        free(p->description);
        free(p->base);
        free(p);
}

/* ---- 3. compiling ---- */

struct compile {
        scmp_filter_ctx ctx;
        const struct policy *p;
        size_t n_added;
        struct tn_err **err;
};

static uint32_t scmp_action(const struct policy_action *a)
{
        switch (a->type) {
        case POLICY_ALLOW:
                return SCMP_ACT_ALLOW;
        case POLICY_LOG:
                return SCMP_ACT_LOG;
        case POLICY_ERRNO:
                return SCMP_ACT_ERRNO((uint32_t)a->errno_value);
        case POLICY_TRAP:
                return SCMP_ACT_TRAP;
        case POLICY_KILL_THREAD:
                return SCMP_ACT_KILL_THREAD;
        case POLICY_NOTIFY:
                return SCMP_ACT_NOTIFY;
        case POLICY_KILL_PROCESS:
                break;
        }
        return SCMP_ACT_KILL_PROCESS;
}

static struct scmp_arg_cmp scmp_cmp(const struct policy_arg *a)
{
        static const enum scmp_compare ops[] = {
            [POLICY_OP_EQ] = SCMP_CMP_EQ,
            [POLICY_OP_NE] = SCMP_CMP_NE,
            [POLICY_OP_LT] = SCMP_CMP_LT,
            [POLICY_OP_LE] = SCMP_CMP_LE,
            [POLICY_OP_GT] = SCMP_CMP_GT,
            [POLICY_OP_GE] = SCMP_CMP_GE,
            [POLICY_OP_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
        };
        if (a->op == POLICY_OP_MASKED_EQ)
                return (struct scmp_arg_cmp){a->index, SCMP_CMP_MASKED_EQ, a->mask, a->value};
        return (struct scmp_arg_cmp){a->index, ops[a->op], a->value, 0};
}

/* One rule into libseccomp, unless its action is the default (libseccomp refuses
 * those, and the outcome is the same). */
static int add_rule(struct compile *cc, const struct policy_action *a, int nr,
                    const struct policy_arg *args, size_t n_args, const char *where)
{
        if (action_equal(a, &cc->p->default_action))
                return 0;
        if (cc->n_added >= MAX_SCMP_RULES)
                return tn_err_setx(cc->err, E2BIG, "%s: more than %d filter rules", where,
                                   MAX_SCMP_RULES);
        struct scmp_arg_cmp cmp[POLICY_MAX_ARGS];
        for (size_t i = 0; i < n_args; i++)
                cmp[i] = scmp_cmp(&args[i]);
        int r = seccomp_rule_add_exact_array(cc->ctx, scmp_action(a), nr, (unsigned)n_args, cmp);
        if (r < 0)
                return tn_err_setx(cc->err, -r, "%s: libseccomp refused a rule for call %d: %s",
                                   where, nr, strerror(-r));
        cc->n_added++;
        return 0;
}

struct trie {
        struct compile *cc;
        const struct policy_action *action;
        int nr;
        const struct policy_arg *fixed; /* a condition every emitted rule also has, or NULL */
        unsigned index;
        uint64_t mask;
        const char *where;
};

/* Emits masked_eq rules that together match exactly the values of (arg & mask) that
 * agree with `prefix` on the bits in `decided` and are not in vals[0..n). */
static int cover(const struct trie *t, uint64_t decided, uint64_t prefix, const uint64_t *vals,
                 size_t n)
{
        if (n == 0) {
                struct policy_arg a[2] = {{t->index, POLICY_OP_MASKED_EQ, decided, prefix}};
                if (t->fixed)
                        a[1] = *t->fixed;
                return add_rule(t->cc, t->action, t->nr, a, t->fixed ? 2 : 1, t->where);
        }
        uint64_t rest = t->mask & ~decided;
        if (!rest)
                return 0; /* exactly one of the excluded values */
        uint64_t bit = 1ULL << (63 - __builtin_clzll(rest));
        uint64_t zero[MAX_EXCEPTIONS], one[MAX_EXCEPTIONS];
        size_t nz = 0, no = 0;
        for (size_t i = 0; i < n; i++) {
                if (vals[i] & bit)
                        one[no++] = vals[i];
                else
                        zero[nz++] = vals[i];
        }
        int r = cover(t, decided | bit, prefix, zero, nz);
        if (r < 0)
                return r;
        return cover(t, decided | bit, prefix | bit, one, no);
}

static enum policy_op op_negated(enum policy_op op)
{
        switch (op) {
        case POLICY_OP_NE:
                return POLICY_OP_EQ;
        case POLICY_OP_LT:
                return POLICY_OP_GE;
        case POLICY_OP_LE:
                return POLICY_OP_GT;
        case POLICY_OP_GT:
                return POLICY_OP_LE;
        case POLICY_OP_GE:
                return POLICY_OP_LT;
        default:
                return POLICY_OP_NE;
        }
}

static int fail_complement(struct compile *cc, const struct policy_rule *u, const char *name)
{
        return tn_err_setx(cc->err, EINVAL,
                           "%s: cannot add exceptions to this rule for \"%s\": its rules with "
                           "\"args\" must each test one argument, the same one, all with eq or "
                           "all with masked_eq and one mask (or be a single ne/lt/le/gt/ge test); "
                           "a second condition, on another argument, is possible only after an "
                           "eq or masked_eq first one",
                           u->where, name);
}

static bool is_eq(enum policy_op op)
{
        return op == POLICY_OP_EQ || op == POLICY_OP_MASKED_EQ;
}

/* Action of u, under `fixed` (when set), for every value of one argument that none of
 * conds[0..n) match: they all test that argument, either as one ne/lt/le/gt/ge test
 * (the opposite comparison) or all with eq, or all with masked_eq and one mask (the
 * trie of what the values leave). */
static int complement_of(struct compile *cc, const struct policy_rule *u, int nr, const char *name,
                         const struct policy_arg *fixed, const struct policy_arg *const *conds,
                         size_t n)
{
        /* n >= 1: both callers pass at least one condition, which cppcheck cannot see. */
        /* cppcheck-suppress uninitvar */
        const struct policy_arg *first = conds[0];
        if (n == 1 && !is_eq(first->op)) {
                struct policy_arg a[2] = {*first};
                a[0].op = op_negated(first->op);
                if (fixed)
                        a[1] = *fixed;
                return add_rule(cc, &u->action, nr, a, fixed ? 2 : 1, u->where);
        }
        uint64_t mask = first->op == POLICY_OP_EQ ? ~0ULL : first->mask;
        uint64_t vals[MAX_EXCEPTIONS];
        size_t nv = 0;
        for (size_t i = 0; i < n; i++) {
                const struct policy_arg *a = conds[i];
                if (a->index != first->index || a->op != first->op || !is_eq(a->op) ||
                    (a->op == POLICY_OP_MASKED_EQ && a->mask != mask))
                        return fail_complement(cc, u, name);
                bool dup = false;
                for (size_t j = 0; j < nv && !dup; j++)
                        dup = vals[j] == (a->value & mask);
                if (!dup && nv == MAX_EXCEPTIONS)
                        return fail_complement(cc, u, name);
                if (!dup)
                        vals[nv++] = a->value & mask;
        }
        struct trie t = {cc, &u->action, nr, fixed, first->index, mask, u->where};
        return cover(&t, 0, 0, vals, nv);
}

/* Action of u for every call of `nr` that none of the exceptions ex[0..n) match.
 *
 * Each exception tests one argument (the key: the same one for all), or the key with
 * eq/masked_eq and then one more argument: "socket with family AF_NETLINK and protocol
 * NETLINK_ROUTE". The complement is then: every key value that no exception names
 * (one trie), plus, for each key value whose exceptions all carry a second condition,
 * that key value together with the complement of those second conditions (a trie
 * under the fixed key test). A key value with an exception of its own alone is wholly
 * excepted, whatever second conditions others add to it. */
static int emit_complement(struct compile *cc, const struct policy_rule *u, int nr,
                           const char *name, const struct policy_rule *const *ex, size_t n)
{
        const struct policy_arg *keys[MAX_EXCEPTIONS];
        bool two = false;
        for (size_t i = 0; i < n; i++) {
                if (ex[i]->n_args > 2 || ex[i]->args[0].index != ex[0]->args[0].index ||
                    (ex[i]->n_args == 2 && !is_eq(ex[i]->args[0].op)))
                        return fail_complement(cc, u, name);
                keys[i] = &ex[i]->args[0];
                two |= ex[i]->n_args == 2;
        }
        int r = complement_of(cc, u, nr, name, NULL, keys, n);
        if (r < 0 || !two)
                return r;
        uint64_t mask = keys[0]->op == POLICY_OP_EQ ? ~0ULL : keys[0]->mask;
        for (size_t i = 0; i < n; i++) {
                uint64_t v = keys[i]->value & mask;
                bool seen = false, whole = false;
                const struct policy_arg *second[MAX_EXCEPTIONS];
                size_t ns = 0;
                for (size_t j = 0; j < n; j++) {
                        if ((keys[j]->value & mask) != v)
                                continue;
                        seen |= j < i;
                        whole |= ex[j]->n_args == 1;
                        if (ex[j]->n_args == 2)
                                second[ns++] = &ex[j]->args[1];
                }
                if (seen || whole)
                        continue; /* handled at its first exception, or wholly excepted */
                struct policy_arg fixed = *keys[i];
                if ((r = complement_of(cc, u, nr, name, &fixed, second, ns)) < 0)
                        return r;
        }
        return 0;
}

struct use {
        int nr;
        const char *name;
        const struct policy_rule *rule;
};

static int cmp_use(const void *a, const void *b)
{
        const struct use *x = a, *y = b;
        if (x->nr != y->nr)
                return x->nr < y->nr ? -1 : 1;
        return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Every rule for one call: the exceptions first, then the unconditional rule on
 * what the exceptions leave. */
static int compile_call(struct compile *cc, const struct use *u, size_t n)
{
        const struct policy_rule *uncond = NULL;
        const struct policy_rule *ex[MAX_EXCEPTIONS];
        size_t nex = 0;
        for (size_t i = 0; i < n; i++)
                if (!u[i].rule->n_args) {
                        if (uncond)
                                return tn_err_setx(cc->err, EINVAL,
                                                   "%s: \"%s\" also has a rule without "
                                                   "conditions at %s",
                                                   u[i].rule->where, u[i].name, uncond->where);
                        uncond = u[i].rule;
                }
        for (size_t i = 0; i < n; i++) {
                const struct policy_rule *r = u[i].rule;
                if (!r->n_args || (uncond && action_equal(&r->action, &uncond->action)))
                        continue; /* the unconditional rule covers it */
                if (nex == MAX_EXCEPTIONS)
                        return tn_err_setx(cc->err, E2BIG, "%s: more than %d rules for \"%s\"",
                                           r->where, MAX_EXCEPTIONS, u[i].name);
                ex[nex++] = r;
                int e = add_rule(cc, &r->action, u[i].nr, r->args, r->n_args, r->where);
                if (e < 0)
                        return e;
        }
        if (!uncond)
                return 0;
        if (nex == 0 || action_equal(&uncond->action, &cc->p->default_action))
                return add_rule(cc, &uncond->action, u[0].nr, NULL, 0, uncond->where);
        return emit_complement(cc, uncond, u[0].nr, u[0].name, ex, nex);
}

static void count_call(struct policy_bpf *b, const struct use *u, size_t n)
{
        bool allowed = false, conditional = true, blocked = false;
        for (size_t i = 0; i < n; i++) {
                if (policy_action_blocks(&u[i].rule->action)) {
                        blocked = true;
                        continue;
                }
                allowed = true;
                if (!u[i].rule->n_args)
                        conditional = false;
        }
        b->n_allowed += allowed;
        b->n_conditional += allowed && conditional;
        b->n_blocked += blocked;
}

/* The (call number, rule) pairs of every native call named by a rule, sorted. */
static int collect_uses(const struct policy *p, struct use **ret, size_t *ret_n,
                        size_t *ret_foreign, struct tn_err **err)
{
        size_t total = 0, n = 0, foreign = 0;
        for (size_t i = 0; i < p->n_rules; i++)
                total += p->rules[i].n_syscalls;
        struct use *uses = calloc(total + 1, sizeof(*uses));
        if (!uses)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_rules; i++)
                for (size_t j = 0; j < p->rules[i].n_syscalls; j++) {
                        const char *name = p->rules[i].syscalls[j];
                        int nr = seccomp_syscall_resolve_name(name);
                        if (nr < 0) {
                                foreign++;
                                continue;
                        }
                        uses[n++] = (struct use){nr, name, &p->rules[i]};
                }
        qsort(uses, n, sizeof(*uses), cmp_use);
        *ret = uses;
        *ret_n = n;
        *ret_foreign = foreign;
        return 0;
}

static int add_all_rules(struct compile *cc, struct policy_bpf *b)
{
        _cleanup_free_ struct use *uses = NULL;
        size_t n = 0;
        int r = collect_uses(cc->p, &uses, &n, &b->n_foreign, cc->err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n;) {
                size_t j = i;
                while (j < n && uses[j].nr == uses[i].nr)
                        j++;
                count_call(b, uses + i, j - i);
                if ((r = compile_call(cc, uses + i, j - i)) < 0)
                        return r;
                i = j;
        }
        b->n_libseccomp_rules = cc->n_added;
        return 0;
}

/* libseccomp 2.5 exports only to a file descriptor: go through a memfd. */
static int export_bpf(scmp_filter_ctx ctx, struct policy_bpf *b, struct tn_err **err)
{
        _cleanup_close_ int fd = memfd_create("tenantd-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "memfd_create");
        int r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return tn_err_setx(err, -r, "seccomp_export_bpf: %s", strerror(-r));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "fstat on the exported filter");
        size_t size = (size_t)st.st_size;
        if (size == 0 || size % sizeof(struct sock_filter) ||
            size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return tn_err_setx(err, E2BIG, "the filter has %zu bytes, not 1 to %d instructions",
                                   size, BPF_MAXINSNS);
        _cleanup_free_ struct sock_filter *insns = malloc(size);
        if (!insns)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t off = 0; off < size;) {
                ssize_t k = pread(fd, (char *)insns + off, size - off, (off_t)off);
                if (k <= 0)
                        return tn_err_set(err, k < 0 ? errno : EIO, "reading the exported filter");
                off += (size_t)k;
        }
        b->insns = TAKE_PTR(insns);
        b->len = size / sizeof(struct sock_filter);
        return 0;
}

static int set_attrs(scmp_filter_ctx ctx, struct policy_bpf *b, struct tn_err **err)
{
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r == 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* the sandbox sets it */
        if (r < 0)
                return tn_err_setx(err, -r, "seccomp_attr_set: %s", strerror(-r));
        /* Binary search over call numbers: fewer instructions run per call. */
        b->optimized = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) == 0;
        return 0;
}

int policy_compile(const struct policy *p, struct policy_bpf **ret, struct tn_err **err)
{
        /* Native architecture only: seccomp_init adds it and nothing else, so any other
         * AUDIT_ARCH, and x32 numbers on x86_64, take the bad-architecture action. */
        scmp_filter_ctx ctx = seccomp_init(scmp_action(&p->default_action));
        if (!ctx)
                return tn_err_setx(err, EINVAL, "%s: libseccomp refused default action", p->path);
        struct policy_bpf *b = calloc(1, sizeof(*b));
        struct compile cc = {.ctx = ctx, .p = p, .err = err};
        int r = b ? set_attrs(ctx, b, err) : tn_err_setx(err, ENOMEM, "out of memory");
        if (r == 0) {
                r = add_all_rules(&cc, b); /* its messages name the rule */
                if (r == 0 && (r = export_bpf(ctx, b, err)) < 0)
                        tn_err_wrap(err, "%s", p->path);
        } else if (b) {
                tn_err_wrap(err, "%s", p->path);
        }
        seccomp_release(ctx);
        if (r < 0) {
                policy_bpf_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

int policy_learning_filter(struct policy_bpf **ret, struct tn_err **err)
{
        const struct policy learn = {.name = (char *)"learning",
                                     .path = (char *)"(the learning filter)",
                                     .default_action = {.type = POLICY_NOTIFY}};
        return policy_compile(&learn, ret, err);
}

static int refusal_errno(const struct policy_action *a)
{
        if (!policy_action_blocks(a))
                return 0;
        return a->type == POLICY_ERRNO ? a->errno_value : EPERM;
}

void policy_learning_answers(const struct policy *p, int *ret_errno, size_t n)
{
        int dflt = refusal_errno(&p->default_action);
        for (size_t nr = 0; nr < n; nr++)
                ret_errno[nr] = dflt;
        /* Refusals by name first; then any rule that lets a call run wins. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < p->n_rules; i++) {
                        const struct policy_rule *r = &p->rules[i];
                        bool blocks = policy_action_blocks(&r->action);
                        if (pass == 0 ? !blocks || r->n_args : blocks)
                                continue;
                        for (size_t k = 0; k < r->n_syscalls; k++) {
                                int nr = seccomp_syscall_resolve_name(r->syscalls[k]);
                                if (nr >= 0 && (size_t)nr < n)
                                        ret_errno[nr] = pass == 0 ? refusal_errno(&r->action) : 0;
                        }
                }
}

size_t policy_notified_calls(const struct policy *p, bool *ret_notified, size_t n)
{
        bool dflt = p->default_action.type == POLICY_NOTIFY;
        size_t conditional = 0;
        for (size_t nr = 0; nr < n; nr++)
                ret_notified[nr] = dflt;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *r = &p->rules[i];
                bool notify = r->action.type == POLICY_NOTIFY;
                /* A conditional rule leaves a default of notify alone for the calls it
                 * names (they are notified at least when no condition holds). */
                if (r->n_args && !notify) {
                        continue;
                } else if (r->n_args) {
                        conditional++;
                        continue;
                }
                for (size_t k = 0; k < r->n_syscalls; k++) {
                        int nr = seccomp_syscall_resolve_name(r->syscalls[k]);
                        if (nr >= 0 && (size_t)nr < n)
                                ret_notified[nr] = notify;
                }
        }
        return conditional;
}

void policy_bpf_free(struct policy_bpf *b)
{
        if (!b)
                return;
        free(b->insns);
        free(b);
}

int policy_bpf_load(const struct policy_bpf *b)
{
        if (!b || !b->insns || b->len == 0 || b->len > BPF_MAXINSNS)
                return -EINVAL;
        struct sock_fprog prog = {.len = (unsigned short)b->len, .filter = b->insns};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
                return 0;
        return -errno;
}

int policy_bpf_load_listener(const struct policy_bpf *b)
{
        if (!b || !b->insns || b->len == 0 || b->len > BPF_MAXINSNS)
                return -EINVAL;
        struct sock_fprog prog = {.len = (unsigned short)b->len, .filter = b->insns};
        int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                              SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        return fd >= 0 ? fd : -errno;
}

bool policy_bpf_notifies(const struct policy_bpf *b)
{
        for (size_t i = 0; b && i < b->len; i++)
                if (b->insns[i].code == (BPF_RET | BPF_K) &&
                    (b->insns[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
                        return true;
        return false;
}

void policy_bpf_notify_as_errno(struct policy_bpf *b, int errno_value)
{
        for (size_t i = 0; b && i < b->len; i++)
                if (b->insns[i].code == (BPF_RET | BPF_K) &&
                    (b->insns[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
                        b->insns[i].k =
                            SECCOMP_RET_ERRNO | ((uint32_t)errno_value & SECCOMP_RET_DATA);
}

const char *policy_syscall_name(int nr, char *buf, size_t len)
{
        _cleanup_free_ char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (s)
                snprintf(buf, len, "%s", s);
        else
                snprintf(buf, len, "nr-%d", nr);
        return buf;
}

/* ---- capability sets ---- */

static void capset_entries_free(struct capset_entry *e, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(e[i].why);
                free(e[i].from);
        }
        free(e);
}

void capset_free(struct capset *s)
{
        if (!s)
                return;
        capset_entries_free(s->caps, s->n_caps);
        free(s->name);
        free(s->path);
        free(s->description);
        free(s);
}

/* Adds or replaces capability `cap` (a later declaration replaces the why). */
static int capset_put(struct capset *s, int cap, const char *why, const char *from)
{
        size_t i;
        for (i = 0; i < s->n_caps && s->caps[i].cap < cap; i++)
                ;
        char *w = strdup(why), *f = strdup(from);
        if (!w || !f) {
                free(w);
                free(f);
                return -ENOMEM;
        }
        if (i < s->n_caps && s->caps[i].cap == cap) {
                free(s->caps[i].why);
                free(s->caps[i].from);
                s->caps[i] = (struct capset_entry){cap, w, f};
                return 0;
        }
        memmove(&s->caps[i + 1], &s->caps[i], (s->n_caps - i) * sizeof(*s->caps));
        s->caps[i] = (struct capset_entry){cap, w, f};
        s->n_caps++;
        return 0;
}

static int capset_load_chain(const char *name, struct chain *chain, struct capset **ret,
                             struct tn_err **err);

static int capset_include(struct pctx *c, struct capset *s, const struct json_value *item,
                          struct chain *chain)
{
        const char *inc = NULL;
        int r = get_text(c, item, MAX_NAME, "a capability set name", &inc);
        if (r < 0 || !inc)
                return tn_err_negative(r);
        if (!good_name(inc))
                return fail_at(c, item,
                               "\"%s\" is not a capability set name; expected a-z, 0-9 and \"-\"",
                               SHOWN(inc));
        for (size_t i = 0; i < chain->n; i++) {
                if (strcmp(chain->names[i], inc) != 0)
                        continue;
                char loop[512] = "";
                size_t off = 0;
                for (size_t j = i; j < chain->n && off < sizeof(loop); j++)
                        off += (size_t)snprintf(loop + off, sizeof(loop) - off, "%s -> ",
                                                chain->names[j]);
                return fail_at(c, item, "the include chain is a loop: %s%s", loop, inc);
        }
        if (chain->n >= POLICY_MAX_DEPTH)
                return fail_at(c, item, "includes are nested deeper than %d sets",
                               POLICY_MAX_DEPTH);
        _cleanup_capset_ struct capset *sub = NULL;
        if ((r = capset_load_chain(inc, chain, &sub, c->err)) < 0)
                return r == -ENOENT ? tn_err_wrap(c->err, "%s:%u:%u: %s", c->file, item->pos.line,
                                                  item->pos.col, c->path)
                                    : r;
        if (!sub) /* cannot happen; said for analyzers, which do not follow the recursion */
                return -EIO;
        for (size_t i = 0; i < sub->n_caps; i++)
                if (capset_put(s, sub->caps[i].cap, sub->caps[i].why, sub->caps[i].from) < 0)
                        return tn_err_setx(c->err, ENOMEM, "out of memory");
        return 0;
}

static int capset_one_cap(struct pctx *c, struct capset *s, const struct json_member *m,
                          const bool *own)
{
        char buf[64];
        const char *why;
        size_t saved = path_push(c, "%s", SHOWN(m->key));
        int cap = caps_from_name(m->key);
        if (cap < 0) {
                const char *near = caps_suggest(m->key, buf, sizeof(buf));
                if (near)
                        return fail_pos(c, m->pos, "unknown capability; did you mean \"%s\"?",
                                        near);
                return fail_pos(c, m->pos,
                                "unknown capability; expected a name such as "
                                "\"CAP_NET_BIND_SERVICE\"");
        }
        if (caps_forbidden_in_sandbox(cap, &why))
                return fail_pos(c, m->pos, "%s is never granted to a sandbox: %s",
                                caps_to_name(cap, buf, sizeof(buf)), why);
        if (own[cap])
                return fail_pos(c, m->pos, "%s is listed twice",
                                caps_to_name(cap, buf, sizeof(buf)));
        const char *text;
        int r = get_text(c, m->value, MAX_TEXT, "a sentence saying why it is granted", &text);
        if (r < 0)
                return r;
        if (capset_put(s, cap, text, s->name) < 0)
                return tn_err_setx(c->err, ENOMEM, "out of memory");
        path_pop(c, saved);
        return cap;
}

static int parse_capset(struct pctx *c, const struct json_value *root, struct capset *s,
                        struct chain *chain)
{
        enum { DESCRIPTION, INCLUDE, CAPABILITIES, N };
        static const char *const keys[N] = {"description", "include", "capabilities"};
        const struct json_value *f[N];
        int r = take_fields(c, root, keys, N, f);
        if (r < 0)
                return r;
        if (!f[DESCRIPTION])
                return fail_missing(c, root, "description", "a sentence saying what it is for");
        if (!f[CAPABILITIES])
                return fail_missing(c, root, "capabilities",
                                    "an object mapping capability names to why they are granted");
        path_push(c, "description");
        if ((r = dup_text(c, f[DESCRIPTION], MAX_TEXT, "a sentence", &s->description)) < 0)
                return r;
        path_pop(c, 0);
        if (f[INCLUDE]) {
                path_push(c, "include");
                if (f[INCLUDE]->type != JSON_ARRAY)
                        return fail_at(c, f[INCLUDE], "expected an array of set names, got %s",
                                       json_type_name(f[INCLUDE]->type));
                chain->names[chain->n++] = s->name;
                for (size_t i = 0; r == 0 && i < f[INCLUDE]->u.array.n; i++) {
                        size_t saved = path_push(c, "[%zu]", i);
                        r = capset_include(c, s, f[INCLUDE]->u.array.items[i], chain);
                        path_pop(c, saved);
                }
                chain->n--;
                if (r < 0)
                        return r;
                path_pop(c, 0);
        }
        path_push(c, "capabilities");
        const struct json_value *caps = f[CAPABILITIES];
        if (caps->type != JSON_OBJECT)
                return fail_at(c, caps,
                               "expected an object such as {\"CAP_KILL\": \"why\"}, got %s",
                               json_type_name(caps->type));
        bool own[64] = {false};
        for (size_t i = 0; i < caps->u.object.n; i++) {
                r = capset_one_cap(c, s, &caps->u.object.items[i], own);
                if (r < 0)
                        return r;
                own[r] = true;
        }
        return 0;
}

static int capset_load_chain(const char *name, struct chain *chain, struct capset **ret,
                             struct tn_err **err)
{
        _cleanup_json_ struct json_value *root = NULL;
        _cleanup_capset_ struct capset *s = calloc(1, sizeof(*s));
        if (!s || !(s->name = strdup(name)) || !(s->caps = calloc(64, sizeof(*s->caps))))
                return tn_err_setx(err, ENOMEM, "out of memory");
        int r = read_policy_json(POLICY_CAPABILITIES, name, &s->path, &root, err);
        if (r < 0)
                return r;
        struct pctx c = {.file = s->path, .err = err};
        if ((r = parse_capset(&c, root, s, chain)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int capset_load(const char *name, struct capset **ret, struct tn_err **err)
{
        if (!good_name(name))
                return not_a_name(err, POLICY_CAPABILITIES, name);
        struct chain chain = {.n = 0};
        return capset_load_chain(name, &chain, ret, err);
}

/* ---- a cache of compiled programs ----
 *
 * Compiling a profile costs libseccomp a few milliseconds; a one-shot `tenantctl run`
 * would pay it on every start. The compiled program is therefore kept in a directory
 * of the supervisor's (under its state directory, root-only), keyed by a hash of
 * everything the compiler consumes: the resolved rules and default action, the
 * libseccomp version and this format's version. A file is used only if it is a plain
 * file of ours, not writable by anyone else, of the exact size its header announces,
 * for this key; anything else is recompiled and rewritten. */

#define CACHE_MAGIC "TNBPF001"

struct cache_header {
        char magic[8];
        uint64_t key;
        uint32_t len;
        uint32_t optimized;
        uint64_t counts[5]; /* n_allowed n_conditional n_blocked n_foreign n_libseccomp_rules */
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s)
{
        return fnv1a(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static uint64_t policy_key(const struct policy *p)
{
        const struct scmp_version *v = seccomp_version();
        uint64_t h = 0xcbf29ce484222325ULL;
        h = fnv1a_str(h, CACHE_MAGIC);
        if (v)
                h = fnv1a(h, v, sizeof(*v));
        uint32_t arch = seccomp_arch_native();
        h = fnv1a(h, &arch, sizeof(arch));
        h = fnv1a(h, &p->default_action, sizeof(p->default_action));
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *r = &p->rules[i];
                h = fnv1a(h, &r->action, sizeof(r->action));
                for (size_t k = 0; k < r->n_syscalls; k++)
                        h = fnv1a_str(h, r->syscalls[k]);
                h = fnv1a(h, &r->n_args, sizeof(r->n_args));
                for (size_t k = 0; k < r->n_args; k++) {
                        const struct policy_arg *a = &r->args[k];
                        uint64_t fields[4] = {a->index, (uint64_t)a->op, a->mask, a->value};
                        h = fnv1a(h, fields, sizeof(fields));
                }
        }
        return h;
}

static struct policy_bpf *cache_read(int dirfd, const char *file, uint64_t key)
{
        _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        struct cache_header hdr;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
            (st.st_mode & 0077) || read(fd, &hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
            memcmp(hdr.magic, CACHE_MAGIC, 8) != 0 || hdr.key != key || hdr.len == 0 ||
            hdr.len > BPF_MAXINSNS ||
            (uint64_t)st.st_size != sizeof(hdr) + (uint64_t)hdr.len * sizeof(struct sock_filter))
                return NULL;
        struct policy_bpf *b = calloc(1, sizeof(*b));
        if (!b || !(b->insns = calloc(hdr.len, sizeof(*b->insns)))) {
                free(b);
                return NULL;
        }
        size_t bytes = hdr.len * sizeof(*b->insns);
        if (read(fd, b->insns, bytes) != (ssize_t)bytes) {
                policy_bpf_free(b);
                return NULL;
        }
        b->len = hdr.len;
        b->optimized = hdr.optimized;
        b->n_allowed = hdr.counts[0];
        b->n_conditional = hdr.counts[1];
        b->n_blocked = hdr.counts[2];
        b->n_foreign = hdr.counts[3];
        b->n_libseccomp_rules = hdr.counts[4];
        return b;
}

static void cache_write(int dirfd, const char *file, uint64_t key, const struct policy_bpf *b)
{
        struct cache_header hdr = {.key = key, .len = (uint32_t)b->len, .optimized = b->optimized};
        memcpy(hdr.magic, CACHE_MAGIC, 8);
        uint64_t counts[5] = {b->n_allowed, b->n_conditional, b->n_blocked, b->n_foreign,
                              b->n_libseccomp_rules};
        memcpy(hdr.counts, counts, sizeof(counts));
        size_t bytes = b->len * sizeof(*b->insns);
        _cleanup_free_ char *buf = malloc(sizeof(hdr) + bytes);
        if (!buf)
                return;
        memcpy(buf, &hdr, sizeof(hdr));
        memcpy(buf + sizeof(hdr), b->insns, bytes);
        /* A cache: failing to keep it is no error. */
        (void)write_file_atomic_at(dirfd, file, buf, sizeof(hdr) + bytes, 0600, NULL);
}

int policy_compile_cached(const struct policy *p, const char *cache_dir, struct policy_bpf **ret,
                          struct tn_err **err)
{
        uint64_t key = policy_key(p);
        char file[128];
        snprintf(file, sizeof(file), "%s-%016llx.bpf", p->name, (unsigned long long)key);
        (void)mkdir(cache_dir, 0700);
        _cleanup_close_ int dirfd =
            open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        bool usable =
            dirfd >= 0 && fstat(dirfd, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & 0022);
        if (usable) {
                struct policy_bpf *b = cache_read(dirfd, file, key);
                if (b) {
                        *ret = b;
                        return 0;
                }
        }
        int r = policy_compile(p, ret, err);
        if (r >= 0 && usable)
                cache_write(dirfd, file, key, *ret);
        return r;
}
