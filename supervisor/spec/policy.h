/* policy.h — security policies by name: seccomp profiles (JSON -> validated rules ->
 * BPF program) and capability sets, found on the policy search path.
 *
 * The file format and the shipped profiles are described in docs/policies.md. A
 * profile is loaded by name only (a-z, 0-9, '-'), never by a path, from the first
 * directory of the search path that has it:
 *   $TENANTD_POLICY_DIR             (tests, development)
 *   or else SRC/policies            (run from a source tree's build dir: buildtree.h)
 *   TENANTD_SYSCONFDIR/tenantd/policies   (operator overrides)
 *   TENANTD_POLICYDIR               (installed with tenantd)
 * each holding seccomp/NAME.json and capabilities/NAME.json.
 *
 * Compiling produces the exact BPF program that a sandbox installs, so it is built
 * once (by the supervisor) and loaded many times (in each child), with no libseccomp
 * call between fork and exec. This module is the only one that includes <seccomp.h>. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/filter.h>

#include "lib/cleanup.h"
#include "lib/err.h"

#define POLICY_MAX_DEPTH 8   /* "base" and "include" chains */
#define POLICY_MAX_RULES 256 /* per profile, after resolving its base */
#define POLICY_MAX_NAMES 512 /* syscall names per rule */
#define POLICY_MAX_ARGS 6    /* argument conditions per rule (one per argument) */
#define POLICY_MAX_SEARCH 4  /* directories on the search path */

enum policy_kind {
        POLICY_SECCOMP,      /* seccomp/NAME.json */
        POLICY_CAPABILITIES, /* capabilities/NAME.json */
};

enum policy_action_type {
        POLICY_ALLOW,
        POLICY_LOG,          /* allowed, and logged by the kernel (SCMP_ACT_LOG) */
        POLICY_ERRNO,        /* fails with errno_value */
        POLICY_TRAP,         /* SIGSYS delivered to the thread */
        POLICY_KILL_THREAD,  /* the calling thread dies */
        POLICY_KILL_PROCESS, /* "kill": the whole process dies with SIGSYS */
        POLICY_NOTIFY,       /* denied (EPERM) by the tenant's keeper, which reports it
                                (SECCOMP_RET_USER_NOTIF; see lib/seccomp_notify.h) */
};

struct policy_action {
        enum policy_action_type type;
        int errno_value; /* POLICY_ERRNO only */
};

enum policy_op {
        POLICY_OP_EQ,
        POLICY_OP_NE,
        POLICY_OP_LT,
        POLICY_OP_LE,
        POLICY_OP_GT,
        POLICY_OP_GE,
        POLICY_OP_MASKED_EQ, /* (arg & mask) == value */
};

struct policy_arg {
        unsigned index; /* 0..5 */
        enum policy_op op;
        uint64_t mask; /* POLICY_OP_MASKED_EQ only */
        uint64_t value;
};

struct policy_rule {
        struct policy_action action;
        char **syscalls; /* NULL-terminated, as written (names libseccomp knows) */
        size_t n_syscalls;
        struct policy_arg args[POLICY_MAX_ARGS];
        size_t n_args;
        char *why;   /* mandatory on blocking rules, optional on allow/log */
        char *where; /* "FILE:LINE:COL: rules[N]" for messages */
        char *from;  /* the profile that declared the rule (this one or a base) */
};

struct policy {
        char *name;
        char *path; /* the file it was read from */
        char *description;
        char *base; /* NULL when it has none */
        struct policy_action default_action;
        struct policy_rule *rules; /* base rules first (minus overridden calls) */
        size_t n_rules;
};

/* Fills dirs[] with the directories of the search path, in order, and returns how
 * many there are (at most POLICY_MAX_SEARCH). The strings are static or environment. */
size_t policy_search_path(const char *dirs[POLICY_MAX_SEARCH]);

/* The file for `name` of `kind`: the first one on the search path that exists.
 * -EINVAL for a name that is not [a-z0-9-]+, -ENOENT when none has it. */
int policy_find(enum policy_kind kind, const char *name, char **ret_path, struct tn_err **err);

/* Names of every policy of `kind` on the search path, sorted, without duplicates
 * (the first directory wins, as for policy_find). NULL-terminated. */
int policy_list(enum policy_kind kind, char ***ret_names, struct tn_err **err);

/* Which policy files to believe (see trust.h). With `require`, a file that someone
 * other than root could change (or that sits where someone could) is an error naming
 * it and the fix: tenantd, and tenantctl run as root. Without, every file is read and
 * `warn`, if set, is called with what is wrong: tenantctl validate. For the whole
 * process; the default reads every file without a word. */
void policy_trust_files(bool require, void (*warn)(const char *msg));

/* Loads profile `name`, resolving its base chain. Invalid files fail with -EINVAL and
 * a message "FILE:LINE:COL: key.path: what is wrong; what is accepted". A rule of a
 * profile replaces every rule its base has for the same system call. */
int policy_load(const char *name, struct policy **ret, struct tn_err **err);
void policy_free(struct policy *p);
DEFINE_POINTER_CLEANUP(struct policy, policy_free)
#define _cleanup_policy_ _cleanup_(policy_freep)

/* "allow", "kill", "errno:EPERM", ... as written in profiles (buf >= 32 bytes). */
const char *policy_action_to_string(const struct policy_action *a, char *buf, size_t len);
const char *policy_op_to_string(enum policy_op op);
bool policy_action_blocks(const struct policy_action *a);

/* A system call that profile `p` lets run (in full, or under argument conditions) and
 * the reference profile refuses outright, or refuses under conditions where p does not. */
struct policy_widening {
        char *syscall;
        const char *why;  /* the reference's reason for refusing it (points into the
                            reference), NULL when the reference refuses it only because
                            its allow list does not name it */
        bool conditional; /* p lets it run only under argument conditions */
};

/* Every such call of the native architecture, in system call number order: what
 * `tenantctl audit` and `validate` say about a profile against "default". */
int policy_widenings(const struct policy *p, const struct policy *ref, struct policy_widening **ret,
                     size_t *ret_n, struct tn_err **err);
void policy_widenings_free(struct policy_widening *w, size_t n);

/* A compiled filter: what seccomp(SECCOMP_SET_MODE_FILTER) takes. */
struct policy_bpf {
        struct sock_filter *insns;
        size_t len;     /* instructions */
        bool optimized; /* libseccomp's binary-tree layout was used */
        /* what went in, for reports */
        size_t n_allowed;          /* native calls allowed (in full or under conditions) */
        size_t n_conditional;      /* ... of which under argument conditions */
        size_t n_blocked;          /* native calls named by a blocking rule */
        size_t n_foreign;          /* names that are not system calls of this architecture */
        size_t n_libseccomp_rules; /* rules handed to libseccomp */
};

/* Compiles a profile for the native architecture only: another architecture's calls
 * (including x32 numbers on x86_64) kill the process. */
int policy_compile(const struct policy *p, struct policy_bpf **ret, struct tn_err **err);
void policy_bpf_free(struct policy_bpf *b);

/* Like policy_compile, through a cache of compiled programs in `cache_dir` (created
 * 0700 if missing; used only if owned by the caller and not writable by others). */
int policy_compile_cached(const struct policy *p, const char *cache_dir, struct policy_bpf **ret,
                          struct tn_err **err);
DEFINE_POINTER_CLEANUP(struct policy_bpf, policy_bpf_free)
#define _cleanup_policy_bpf_ _cleanup_(policy_bpf_freep)

/* Installs the program in the calling thread (and its future children). The caller
 * has set no_new_privs already or holds CAP_SYS_ADMIN. Async-signal-safe: usable
 * between fork and exec; on failure returns -errno and fills nothing. */
int policy_bpf_load(const struct policy_bpf *b);

/* Whether the program hands some calls to a listener (a "notify" rule): it returns
 * SECCOMP_RET_USER_NOTIF somewhere. Read from the program itself, so a cached one
 * answers as well as a fresh one. */
bool policy_bpf_notifies(const struct policy_bpf *b);

/* Like policy_bpf_load, with SECCOMP_FILTER_FLAG_NEW_LISTENER: returns the listener's
 * descriptor (close-on-exec), or -errno. Async-signal-safe. */
int policy_bpf_load_listener(const struct policy_bpf *b);

/* Rewrites every SECCOMP_RET_USER_NOTIF of the program into SECCOMP_RET_ERRNO with
 * `errno_value`: the answer the keeper gives, for processes that have no listener
 * (commands started by `tenantctl exec` and exec health checks: seccomp_notify.h). */
void policy_bpf_notify_as_errno(struct policy_bpf *b, int errno_value);

/* The filter of `tenantctl policy learn`: every call of the native architecture is
 * handed to a listener (SECCOMP_RET_USER_NOTIF), which lets it run and counts it;
 * another architecture's calls kill, as in every compiled profile. */
int policy_learning_filter(struct policy_bpf **ret, struct tn_err **err);

/* How the learning mode answers each call (seccomp_notify.h): as profile `p` would, as far as
 * the call's number decides it. ret_errno[nr] (n entries) is 0 for a call to let run
 * (a rule allows it, in full or under conditions: those are not evaluated) and an
 * errno for a call `p` refuses outright, by a rule naming it or by its default action
 * (its errno, or EPERM for kill, trap and notify: the learning run is not killed). */
void policy_learning_answers(const struct policy *p, int *ret_errno, size_t n);

/* The calls profile `p` hands to a listener by number alone, for a guest agent that
 * builds its filter from numbers (guest_seccomp.h): ret_notified[nr] (n entries) is true
 * for a call named by an unconditional "notify" rule, or not named by any
 * unconditional rule when the default action is notify. Returns how many "notify"
 * rules have argument conditions: those a guest does not apply. */
size_t policy_notified_calls(const struct policy *p, bool *ret_notified, size_t n);

/* The name of system call `nr` of the native architecture into buf ("nr-N" when
 * libseccomp does not know it); returns buf. */
const char *policy_syscall_name(int nr, char *buf, size_t len);

/* A named capability set ("@web" in a manifest). */
struct capset_entry {
        int cap;
        char *why;
        char *from; /* the set that listed it (this one or an included one) */
};

struct capset {
        char *name;
        char *path;
        char *description;
        struct capset_entry *caps; /* sorted by number, no duplicates */
        size_t n_caps;
};

/* Loads capability set `name` (without the "@"), resolving "include". Every
 * capability must be known and allowed in a sandbox (caps_forbidden_in_sandbox). */
int capset_load(const char *name, struct capset **ret, struct tn_err **err);
void capset_free(struct capset *s);
DEFINE_POINTER_CLEANUP(struct capset, capset_free)
#define _cleanup_capset_ _cleanup_(capset_freep)
