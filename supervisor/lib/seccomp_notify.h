/* seccomp_notify.h — the tenant's keeper side of "notify" rules (SECCOMP_RET_USER_NOTIF): every
 * notified call is denied with EPERM, counted per system call, and reported in
 * aggregate, at most once per call per NOTIFY_REPORT_MS.
 *
 * The sandbox installs the service's filter with a listener when the program notifies
 * (policy_bpf_notifies) and hands the listener to whoever started it (sandbox.h:
 * sb->notifier): the keeper for tenantd's tenants, `tenantctl run` otherwise. The
 * answer is always a denial, never SECCOMP_USER_NOTIF_FLAG_CONTINUE: the keeper never
 * lets a notified call run, so nothing it reads of the tenant's memory matters (it
 * reads none). A tenant that calls in a loop waits on its own calls: the keeper
 * answers at most NOTIFY_BUDGET of them per NOTIFY_WINDOW_MS and leaves the rest
 * waiting, so a hostile tenant costs it a bounded share of one CPU and nothing more.
 *
 * Learning mode (`tenantctl policy learn`, n->learn) is the one exception: the filter
 * notifies every call, each is counted in n->seen and answered as the manifest's own
 * profile would answer it by its number (n->answer: policy_learning_answers): refused
 * with that errno, or let run with SECCOMP_USER_NOTIF_FLAG_CONTINUE (the kernel then
 * runs it as if there were no filter). The service thus takes the paths it takes under
 * its profile (clone where clone3 gets ENOSYS). CONTINUE is unsafe for decisions on
 * arguments, which the tenant can change meanwhile; the learning mode decides by number
 * only, and the learned profile, not the learning run, enforces the conditions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOTIFY_REPORT_MS 10000 /* one report per call per this long, counts summed */
#define NOTIFY_WINDOW_MS 100
#define NOTIFY_BUDGET 5000 /* answers per window: at most 50,000 per second */
#define NOTIFY_MAX_NR 1024 /* call numbers counted one by one; others as one "other" */
/* Learning mode has no budget (the service is the operator's own, watched in the
 * foreground, and a budget would slow every call it makes): notifier_answer returns to
 * its caller after this many answers instead. */
#define NOTIFY_LEARN_BATCH 256

struct notifier {
        int fd;           /* the listener */
        bool hup;         /* no process is left that uses the filter */
        void *req, *resp; /* buffers of the kernel's sizes (SECCOMP_GET_NOTIF_SIZES) */
        uint64_t window_start_ms;
        unsigned window_used;
        uint64_t pending[NOTIFY_MAX_NR + 1];     /* denied, not reported yet; [MAX] other */
        uint64_t reported_ms[NOTIFY_MAX_NR + 1]; /* last report, 0 never */
        uint64_t total;                          /* every denial, for tests and reports */
        uint64_t next_report_ms;                 /* 0: none due */
        bool dirty; /* a call got its first denial since the last report */
        bool learn; /* learning mode: every call continued and counted in seen[] */
        uint64_t seen[NOTIFY_MAX_NR + 1]; /* learning mode: calls per number; [MAX] other */
        int answer[NOTIFY_MAX_NR];        /* learning mode: 0 continue, else that errno */
};

struct pollfd;

/* A notifier for listener `fd` (taken over: closed by notifier_free). */
int notifier_new(int fd, struct notifier **ret);
void notifier_free(struct notifier *n);

/* Whether the caller should poll n->fd now (the window's budget is not spent); else
 * *ret_wait_ms says when to look again. */
bool notifier_wants_poll(struct notifier *n, uint64_t now_ms, int *ret_wait_ms);

/* Answers what is waiting, each with EPERM (learning: continued), without blocking (and within the budget);
 * returns how many were answered. A notification whose caller died meanwhile (ENOENT)
 * is skipped. Sets n->hup when the listener has no more users. */
size_t notifier_answer(struct notifier *n, uint64_t now_ms);

/* For a caller's poll loop: fills *p (fd -1 while the budget is spent, or once the
 * listener is done) and returns the timeout the notifier needs (-1: none), merged
 * with the caller's `timeout` (-1: none). n may be NULL (p->fd is then -1). */
int notifier_pollfd(struct notifier *n, uint64_t now_ms, struct pollfd *p, int timeout);

/* The report line, "event=seccomp-denied tenant=NAME syscall=NAME count=N" (the
 * tenant's name is a manifest name: [a-z0-9-]; the call's name as policy_syscall_name
 * gives it, or "other"). */
void notifier_format(char *buf, size_t len, const char *tenant, const char *syscall,
                     uint64_t count);

/* Adds `count` denials of call `nr` (out of range: "other") to what the next report
 * says, as answering them does: for a notifier without a listener (fd -1) that only
 * aggregates, such as the microVM runner's for what a guest agent reports. */
void notifier_add(struct notifier *n, int nr, uint64_t count);

/* Call `nr` (out of range: "other") counts as reported at now_ms: its next report
 * falls due NOTIFY_REPORT_MS later. For a listener handed to another process right
 * after its first owner reported (keeper_exec.h), so that the handover adds no line. */
void notifier_mark_reported(struct notifier *n, int nr, uint64_t now_ms);

/* Calls fn for each call with denials not yet reported whose last report is
 * NOTIFY_REPORT_MS old (every one with `flush`), with the count since, and returns the
 * ms until the next report falls due (-1 if none). nr is -1 for "other". */
int notifier_report(struct notifier *n, uint64_t now_ms, bool flush,
                    void (*fn)(void *ctx, int nr, uint64_t count), void *ctx);
