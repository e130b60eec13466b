/* health.c — health checks, and processes started inside a running tenant (exec).
 *
 * A check is a short-lived child of tenantd, watched by its pidfd like everything
 * else, so a hanging check never holds the loop: it is killed at its timeout.
 *   tcp   the child enters the tenant's network namespace only and connects to
 *         127.0.0.1:PORT there (so it works with or without a private network);
 *   http  the same, then "GET PATH" and a 2xx or 3xx status line;
 *   exec  the command runs inside the tenant with the service's confinement
 *         (sandbox_enter_exec) and must exit 0.
 * `retries` failures in a row (not counting the start period) restart the tenant. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spec/caps.h"
#include "daemon/daemon.h"
#include "lib/json.h"
#include "proto/runner_proto.h"
#include "spec/launch.h"
#include "lib/log.h"
#include "spec/policy.h"
#include "sandbox/sandbox.h"

/* Puts the given descriptors at 0, 1, 2 (or /dev/null), `keep` at 3 and `keep2` at 4,
 * and closes everything else (3 and 4 too when there is nothing to keep there: a
 * descriptor of tenantd's left at 4 would reach the tenant). In a child only. */
static void child_fds(const int stdio[3], int keep, int keep2)
{
        int tmp[5];
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int i = 0; i < 3; i++)
                tmp[i] = fcntl(stdio[i] >= 0 ? stdio[i] : devnull, F_DUPFD_CLOEXEC, 100);
        tmp[3] = keep >= 0 ? fcntl(keep, F_DUPFD_CLOEXEC, 100) : -1;
        tmp[4] = keep2 >= 0 ? fcntl(keep2, F_DUPFD_CLOEXEC, 100) : -1;
        for (int i = 0; i < 5; i++)
                if (tmp[i] >= 0)
                        dup2(tmp[i], i);
        close_range(keep2 >= 0 ? 5U : keep >= 0 ? 4U : 3U, ~0U, 0);
}

int tenant_exec_spawn(struct daemon *d, struct tenant *t, char **argv, const int stdio[3], bool tty,
                      pid_t *ret_pid, struct tn_err **err)
{
        if (t->init_pidfd < 0)
                return tn_err_setx(err, ESRCH, "%s is not running", t->name);
        _cleanup_(policy_bpf_freep) struct policy_bpf *bpf = NULL;
        _cleanup_free_ int *caps = NULL;
        size_t caps_n = 0;
        if (launch_resolve_policy(t->m, d->cfg.state_dir, &bpf, &caps, &caps_n, err) < 0)
                return -EINVAL;
        /* The keeper holds the one listener of the service's filter, and a process
         * started here is no descendant of the service: it gets the keeper's answer to
         * a notified call (EPERM, lib/seccomp_notify.h) from its own filter, unreported,
         * rather than a filter without a listener, where the call fails with ENOSYS. */
        policy_bpf_notify_as_errno(bpf, EPERM);
        int pidfd = -1;
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
        if (pid < 0)
                return tn_err_set(err, errno, "fork");
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                child_fds(stdio, t->init_pidfd, -1);
                struct sandbox_config cfg = {.m = t->m,
                                             .argv = argv,
                                             .state_dir = d->cfg.state_dir,
                                             .uid_base = d->cfg.uid_base,
                                             .bpf = bpf,
                                             .caps = caps,
                                             .caps_n = caps_n,
                                             .tty = tty};
                /* Errors before the command runs go to its stderr (with a terminal, to
                 * what the terminal shows): pipes of tenantd's, relayed to the client. */
                sandbox_enter_exec(&cfg, t->init_pid, 3, tty ? 1 : 2);
        }
        *ret_pid = pid;
        return pidfd;
}

/* ---- network checks, in a child inside the tenant's network namespace ----
 *
 * The probe is a copy of tenantd (root, every capability, every tenant's manifest in
 * its memory) that talks to whatever the tenant listens with. In this order:
 *  1. child_fds() left /dev/null on 0-2 and the tenant's pidfd on 3, nothing else;
 *  2. not dumpable: no process of any uid can read its memory (ptrace, /proc/PID/mem);
 *  3. setns() into the tenant's network namespace: the one thing root is needed for
 *     (that namespace belongs to the host's user namespace), then the pidfd goes;
 *  4. every capability dropped (bounding set included), no supplementary groups, and
 *     uid and gid switched to d->probe_id: just below the first tenant range, held by
 *     no tenant, account, group or subordinate range (uidrange_probe_id), so a probe
 *     owns no file and can signal or trace nothing but another probe;
 *  5. no_new_privs, the parent-death signal re-armed (the uid change cleared it).
 * Then it connects; what it reads is bounded, and tenantd kills it at the timeout. */

static _Noreturn void probe_main(const struct manifest *m, int netns_pidfd, uid_t id, pid_t tenantd)
{
        prctl(PR_SET_DUMPABLE, 0);
        if (setns(netns_pidfd, CLONE_NEWNET) < 0)
                _exit(3);
        close(netns_pidfd);
        if (caps_apply(NULL, 0, id, (gid_t)id, NULL, 0, NULL) < 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(3);
        if (getppid() != tenantd)
                _exit(3); /* tenantd went away meanwhile */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(m->health.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                _exit(1);
        if (m->health.kind != HEALTH_HTTP)
                _exit(0);
        char req[4300];
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: tenantd-health\r\n\r\n",
                         m->health.path ? m->health.path : "/");
        if (n < 0 || write(fd, req, (size_t)n) != n)
                _exit(1);
        char buf[64] = {0};
        size_t got = 0;
        while (got < sizeof(buf) - 1) {
                ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
                if (r <= 0)
                        break;
                got += (size_t)r;
                if (memchr(buf, '\n', got))
                        break;
        }
        /* Read the rest (bounded) so the server sees an orderly close, not a reset. */
        char sink[4096];
        for (size_t total = 0; total < (256U << 10);) {
                ssize_t r = read(fd, sink, sizeof(sink));
                if (r <= 0)
                        break;
                total += (size_t)r;
        }
        int code = 0;
        if (sscanf(buf, "HTTP/%*d.%*d %d", &code) != 1)
                _exit(2);
        _exit(code >= 200 && code < 400 ? 0 : 2);
}

static void health_done(struct daemon *d, struct watch *w, uint32_t events);
static void health_result(struct daemon *d, struct tenant *t, bool ok, const char *detail);

/* A microVM: the runner asks the guest's agent (a tcp connect, a GET or a command
 * inside, as above) and answers {"status":0|1,"detail":"..."}. */
static void health_vm_done(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct health_state *h =
            (struct health_state *)((char *)w - offsetof(struct health_state, w));
        struct tenant *t = (struct tenant *)((char *)h - offsetof(struct tenant, health));
        static char buf[RUNNER_ANSWER_MAX];
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
                return;
        daemon_watch_del(d, w);
        h->vm_busy = false;
        h->deadline_ms = 0;
        h->next_ms = mono_ms() + t->m->health.interval_ms;
        bool healthy = false;
        /* detail is freed by hand: gcc 12's -fanalyzer takes a _cleanup_free_ pointer
         * that runner_health_decode may set for uninitialised (make analyze). */
        char *detail = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        if (n <= 0)
                health_result(d, t, false, "the microVM's runner gave no answer");
        else if (runner_health_decode(buf, (size_t)n, &healthy, &detail, &err) < 0)
                health_result(d, t, false, tn_err_msg(err));
        else
                health_result(d, t, healthy, healthy ? "ok" : detail);
        free(detail);
        daemon_rearm(d);
}

static void health_start_vm(struct daemon *d, struct tenant *t, uint64_t now)
{
        const struct manifest *m = t->m;
        struct health_state *h = &t->health;
        struct runner_request req = {.kind = m->health.kind == HEALTH_EXEC   ? RUNNER_HEALTH_EXEC
                                             : m->health.kind == HEALTH_HTTP ? RUNNER_HEALTH_HTTP
                                                                             : RUNNER_HEALTH_TCP,
                                     .argv = (const char *const *)m->health.exec,
                                     .argc = m->health.exec_n,
                                     .port = m->health.port,
                                     .path = m->health.path ? m->health.path : "/",
                                     .timeout_ms = (uint32_t)m->health.timeout_ms};
        _cleanup_free_ char *line = NULL;
        size_t len;
        if (runner_request_encode(&req, &line, &len) < 0) {
                snprintf(h->detail, sizeof(h->detail), "the health check cannot be asked for");
                return;
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vm/%s/exec.sock", d->cfg.state_dir, t->name);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
                if (fd >= 0)
                        close(fd);
                snprintf(h->detail, sizeof(h->detail), "the microVM's runner cannot be reached");
                return;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        h->vm_busy = true;
        h->w = (struct watch){.fd = fd, .fn = health_vm_done};
        h->deadline_ms = now + m->health.timeout_ms + 3000;
        daemon_watch_add(d, &h->w, EPOLLIN | EPOLLRDHUP);
}

static void health_start(struct daemon *d, struct tenant *t, uint64_t now)
{
        const struct manifest *m = t->m;
        struct health_state *h = &t->health;
        pid_t pid = -1;
        int pidfd = -1;
        if (m->isolation == ISOLATION_MICROVM)
                return health_start_vm(d, t, now);
        if (m->health.kind == HEALTH_EXEC) {
                static const int none[3] = {-1, -1, -1};
                _cleanup_err_ struct tn_err *err = NULL;
                pidfd = tenant_exec_spawn(d, t, m->health.exec, none, false, &pid, &err);
                if (pidfd < 0) {
                        snprintf(h->detail, sizeof(h->detail), "%s", tn_err_msg(err));
                        return;
                }
        } else {
                if (!d->probe_id) {
                        snprintf(h->detail, sizeof(h->detail), "the probe cannot run: %s",
                                 d->probe_error);
                        return;
                }
                pid_t self = getpid();
                pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
                if (pid < 0)
                        return;
                if (pid == 0) {
                        static const int none[3] = {-1, -1, -1};
                        child_fds(none, t->init_pidfd, -1);
                        probe_main(m, 3, (uid_t)d->probe_id, self);
                }
        }
        h->pid = pid;
        h->w = (struct watch){.fd = pidfd, .fn = health_done};
        h->deadline_ms = now + m->health.timeout_ms;
        daemon_watch_add(d, &h->w, EPOLLIN);
}

static void health_result(struct daemon *d, struct tenant *t, bool ok, const char *detail)
{
        struct health_state *h = &t->health;
        const struct manifest *m = t->m;
        bool was_ok = h->last_ok || !h->checked;
        h->checked = true;
        h->last_ok = ok;
        snprintf(h->detail, sizeof(h->detail), "%s", detail);
        if (ok) {
                if (!was_ok)
                        daemon_event(d, "healthy", t, NULL);
                h->failures = 0;
                return;
        }
        bool grace = mono_ms() < t->started_mono + m->health.start_period_ms;
        if (grace)
                return;
        h->failures++;
        char kv[400] = "";
        event_kv(kv, sizeof(kv), "detail", detail);
        daemon_event(d, "health-failed", t, "failures=%u %s", h->failures, kv);
        if (h->failures >= m->health.retries && t->state == TENANT_RUNNING && !t->busy) {
                /* A health failure restarts only where a failure would (docs/manifest.md). */
                if (m->restart.on == RESTART_NO) {
                        daemon_event(d, "unhealthy", t, "action=none failures=%u restart=no",
                                     h->failures);
                        h->failures = 0;
                        return;
                }
                daemon_event(d, "unhealthy", t, "action=restart failures=%u", h->failures);
                h->failures = 0;
                t->restarts++;
                (void)tenant_op_stop(d, t, NULL, 0, true, NULL);
        }
}

static void health_done(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct health_state *h =
            (struct health_state *)((char *)w - offsetof(struct health_state, w));
        struct tenant *t = (struct tenant *)((char *)h - offsetof(struct tenant, health));
        siginfo_t si = {0};
        (void)waitid(P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG);
        daemon_watch_del(d, w);
        h->pid = 0;
        bool timed_out = si.si_code == CLD_KILLED && si.si_status == SIGKILL && h->deadline_ms &&
                         mono_ms() >= h->deadline_ms;
        h->deadline_ms = 0;
        h->next_ms = mono_ms() + t->m->health.interval_ms;
        char detail[128];
        bool ok = si.si_code == CLD_EXITED && si.si_status == 0;
        if (ok)
                snprintf(detail, sizeof(detail), "ok");
        else if (timed_out)
                snprintf(detail, sizeof(detail), "no answer within %llu ms",
                         (unsigned long long)t->m->health.timeout_ms);
        else if (t->m->health.kind == HEALTH_EXEC)
                snprintf(detail, sizeof(detail), "exited with status %d",
                         si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status);
        else if (si.si_code == CLD_EXITED && si.si_status == 1)
                snprintf(detail, sizeof(detail), "port %u refused the connection",
                         t->m->health.port);
        else if (si.si_code == CLD_EXITED && si.si_status == 2)
                snprintf(detail, sizeof(detail), "no 2xx/3xx answer to GET %s",
                         t->m->health.path ? t->m->health.path : "/");
        else
                snprintf(detail, sizeof(detail), "the check could not run");
        health_result(d, t, ok, detail);
        daemon_rearm(d);
}

void health_schedule(struct daemon *d, struct tenant *t)
{
        (void)d;
        t->health.failures = 0;
        t->health.checked = false;
        t->health.detail[0] = '\0';
        t->health.next_ms =
            t->m->health.kind == HEALTH_NONE ? 0 : mono_ms() + t->m->health.interval_ms;
}

void health_tick(struct daemon *d, struct tenant *t, uint64_t now)
{
        struct health_state *h = &t->health;
        if (h->vm_busy) {
                if (h->deadline_ms && now >= h->deadline_ms) {
                        daemon_watch_del(d, &h->w);
                        h->vm_busy = false;
                        h->deadline_ms = 0;
                        h->next_ms = now + t->m->health.interval_ms;
                        health_result(d, t, false, "no answer from the microVM's agent in time");
                }
                return;
        }
        if (h->pid > 0) {
                if (h->deadline_ms && now >= h->deadline_ms)
                        (void)syscall(SYS_pidfd_send_signal, h->w.fd, SIGKILL, NULL, 0);
                return;
        }
        if (t->state != TENANT_RUNNING || !h->next_ms || now < h->next_ms)
                return;
        h->next_ms = now + t->m->health.interval_ms; /* until this check reports */
        health_start(d, t, now);
}

void health_cancel(struct daemon *d, struct tenant *t)
{
        struct health_state *h = &t->health;
        if (h->w.fd >= 0 && h->vm_busy) {
                daemon_watch_del(d, &h->w);
                h->vm_busy = false;
        }
        if (h->w.fd >= 0) {
                (void)syscall(SYS_pidfd_send_signal, h->w.fd, SIGKILL, NULL, 0);
                siginfo_t si;
                (void)waitid(P_PIDFD, (id_t)h->w.fd, &si, WEXITED);
                daemon_watch_del(d, &h->w);
        }
        h->pid = 0;
        h->deadline_ms = 0;
        h->next_ms = 0;
}
