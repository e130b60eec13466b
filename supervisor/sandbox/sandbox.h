/* sandbox.h — running a manifest with isolation "sandbox": the namespace executor.
 *
 * sandbox_start() returns once the service has been exec'd (or with the reason it
 * could not be). The tenant's first process, its init, is what the host sees as the
 * tenant's pid; it reaps, forwards signals to the service, and exits with the
 * service's status when the service ends, taking every other tenant process with it.
 * `tenantctl run` and the daemon share this code. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "spec/manifest.h"
#include "host/net.h"

struct policy_bpf;
struct notifier;

struct sandbox_config {
        const struct manifest *m;
        char **argv;                  /* what to execute: m->exec or an override */
        const char *state_dir;        /* where uid ranges are recorded */
        uint32_t uid_base;            /* first host id handed out to tenants */
        const struct policy_bpf *bpf; /* the compiled seccomp filter */
        const int *caps;              /* capabilities granted, resolved */
        size_t caps_n;
        bool die_with_parent; /* SIGKILL the tenant if the caller dies */
        /* exec only: a terminal allocated inside the tenant. Then 0 is the pipe of what
         * the operator types, 1 the pipe of what the terminal shows, 2 the pipe of
         * window sizes (4 bytes each: rows, cols, big endian; the first one is read
         * before the command starts). */
        bool tty;
        /* `tenantctl policy learn`: bpf notifies every call (policy_learning_filter) and
         * the supervisor continues and counts each (seccomp_notify.h); the listener reaches it
         * by pidfd_getfd, since the service cannot send it without a notified call.
         * Init then loads no filter, only no_new_privs: its own calls are listed in
         * SANDBOX_INIT_SYSCALLS instead. learn_answers: NOTIFY_MAX_NR entries, how
         * the listener answers each call (seccomp_notify.h). */
        bool learn;
        const int *learn_answers;
};

/* What the tenant's init calls once it has loaded the service's filter (sandbox.c,
 * run_init and init_loop): a profile must allow them, or init dies (127) on its first
 * wait. The learning mode adds them to what it saw of the service. Built with
 * AddressSanitizer (make asan), init also calls sigaltstack: the sanitizer's runtime
 * does, before every call that does not return (_exit). */
#ifdef __SANITIZE_ADDRESS__
#define SANDBOX_INIT_SANITIZER_SYSCALLS , "sigaltstack"
#else
#define SANDBOX_INIT_SANITIZER_SYSCALLS
#endif
/* What the sandbox calls in the service's own process after it loads the filter and
 * before execve (sandbox.c, run_service): a profile learned where the filter came later
 * (in a microVM's guest, from the agent) must allow them too; the learning mode adds
 * them like init's. */
#define SANDBOX_SETUP_SYSCALLS "close_range", "execve"
#define SANDBOX_INIT_SYSCALLS                                                                      \
        "prctl", "poll", "close", "rt_sigprocmask", "wait4", "kill", "rt_sigreturn",               \
            "exit_group" SANDBOX_INIT_SANITIZER_SYSCALLS

struct sandbox {
        pid_t pid;    /* the tenant's init, as the host sees it */
        int pidfd;    /* for poll(): readable when the init has exited */
        int lifeline; /* write end the tenant's init watches (die_with_parent) */
        uint32_t id_base;
        struct tenant_cgroup *cgroup;
        bool has_net; /* network.mode private: net is set up */
        struct net_tenant net;
        /* the service's seccomp listener when its profile has "notify" rules, else
         * NULL: the caller polls notifier->fd and answers (seccomp_notify.h) */
        struct notifier *notifier;
};

/* Starts the tenant. Warnings for the operator (such as ownership a rw mount needs)
 * are returned in *warnings (may be NULL or empty; free it). */
int sandbox_start(const struct sandbox_config *cfg, struct sandbox **ret, char **warnings,
                  struct tn_err **err);

/* Reaps the init once it has exited (poll pidfd first, or this blocks) and returns the
 * service's status as a shell would: its exit code, or 128+N if signal N killed it. */
int sandbox_wait(struct sandbox *sb, int *ret_status, struct tn_err **err);

/* Sends `sig` to the tenant's init, which forwards it to the service. */
int sandbox_signal(struct sandbox *sb, int sig);

/* Kills whatever is left, reaps it, removes the cgroups, frees sb. */
int sandbox_destroy(struct sandbox *sb, struct tn_err **err);

/* In a process the supervisor has just forked (single-threaded, host root, stdio on
 * 0-2): joins the running tenant whose init is `init_pid` (held by `init_pidfd`) —
 * its cgroups, then its mount, ipc, uts, net, pid and cgroup namespaces, then its user
 * namespace — and runs cfg->argv there as the service would run: same uid, gids,
 * working directory, rlimits, capabilities, no_new_privs and seccomp filter, a new
 * session, a clean environment. Exits with the command's status (127 with a message
 * on err_fd when it could not be run). Never returns. */
_Noreturn void sandbox_enter_exec(const struct sandbox_config *cfg, pid_t init_pid, int init_pidfd,
                                  int err_fd);
