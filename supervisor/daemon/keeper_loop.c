/* keeper_loop.c — tenantd-keeper: a keeper for the rest of its tenant's life, a sandbox's
 * or a microVM's (keeper_exec.h). Linked with libc and lib/logsink.c, lib/logtext.c and
 * lib/seccomp_notify.c only: it writes the tenant's output to its log, answers the
 * notified calls and reports them, waits for the init (a microVM's runner) to end,
 * drains the output, and execs tenantd --keeper-finish for the rest. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/keeper_exec.h"
#include "lib/clock.h"
#include "lib/logsink.h"
#include "lib/seccomp_notify.h"
#include "syscall_names.h" /* generated: tools/syscall-names.c */

#define DRAIN_MS 1000 /* after the tenant's end, how long its output may still arrive */
#define EVENT_MAX 128 /* KEEPER_EVENT_MAX (keeper.h) */

extern char **environ;

struct denied_ctx {
        const char *tenant;
};

/* The name policy_syscall_name gives `nr` (tools/syscall-names.c), "other" for -1. */
static const char *syscall_name(int nr, char *buf, size_t len)
{
        if (nr < 0)
                return "other";
        if (nr < NOTIFY_MAX_NR && keeper_syscall_offsets[nr] != 0xffff)
                return keeper_syscall_names + keeper_syscall_offsets[nr];
        snprintf(buf, len, "nr-%d", nr);
        return buf;
}

/* A report of lib/seccomp_notify.h: to tenantd if it listens, else to syslog. */
static void keeper_denied(void *ctx, int nr, uint64_t count)
{
        const struct denied_ctx *c = ctx;
        char num[24], buf[EVENT_MAX];
        const char *name = syscall_name(nr, num, sizeof(num));
        int n = snprintf(buf, sizeof(buf), "seccomp-denied %s %" PRIu64 "\n", name, count);
        if (n > 0 && (size_t)n < sizeof(buf) && write(KEEPER_FD_EVENT, buf, (size_t)n) == n)
                return;
        notifier_format(buf, sizeof(buf), c->tenant, name, count);
        syslog(LOG_WARNING, "%s", buf);
}

/* The NOTIFY word (keeper_exec.h): "0", or "1" and ",NR" for each call the keeper
 * reported just before the exec. 0: no listener, 1: a listener, -1: not that word. */
static int notify_arg(const char *s, struct notifier *n, uint64_t now_ms)
{
        if (strcmp(s, "0") == 0)
                return 0;
        if (s[0] != '1')
                return -1;
        for (const char *p = s + 1; *p;) {
                char *end;
                errno = 0;
                long nr = *p == ',' ? strtol(p + 1, &end, 10) : 0;
                if (*p != ',' || errno || end == p + 1 || (*end && *end != ',') || nr < -1 ||
                    nr >= NOTIFY_MAX_NR)
                        return -1;
                if (n)
                        notifier_mark_reported(n, (int)nr, now_ms);
                p = end;
        }
        return 1;
}

static int usage(void)
{
        fprintf(stderr, KEEPER_PROGRAM ": started by tenantd's keepers only (keeper_exec.h)\n");
        return 2;
}

int main(int argc, char **argv)
{
        if (argc != KEEPER_ARGC || strlen(argv[KEEPER_ARG_NAME]) > LOG_SINK_NAME_MAX ||
            fcntl(KEEPER_FD_PIDFD, F_GETFD) < 0 || fcntl(KEEPER_FD_TENANTD, F_GETFD) < 0)
                return usage();
        bool vm = strcmp(argv[KEEPER_ARG_KIND], KEEPER_KIND_MICROVM) == 0;
        if (!vm && strcmp(argv[KEEPER_ARG_KIND], KEEPER_KIND_SANDBOX) != 0)
                return usage();
        if (vm && fcntl(KEEPER_FD_MANIFEST, F_GETFD) < 0)
                return usage();
        close_range(KEEPER_FD_MAX + 1, ~0U, 0);
        const char *name = argv[KEEPER_ARG_NAME];
        openlog(KEEPER_PROGRAM, LOG_PID | LOG_NDELAY, LOG_DAEMON);

        struct log_sink sink = {.dirfd = KEEPER_FD_LOGDIR, .fd = KEEPER_FD_LOGFILE, .tenant = name};
        snprintf(sink.file, sizeof(sink.file), "%s.log", name);
        if (log_sink_state_parse(argv[KEEPER_ARG_SINK], &sink) < 0)
                return usage();
        if (fcntl(KEEPER_FD_LOGFILE, F_GETFD) < 0) /* the keeper's last rotation failed */
                sink.fd = -1;
        struct notifier *notifier = NULL;
        int notify = notify_arg(argv[KEEPER_ARG_NOTIFY], NULL, 0);
        if (notify < 0)
                return usage();
        if (notify) {
                int r = notifier_new(KEEPER_FD_NOTIFY, &notifier);
                if (r < 0) /* the calls then wait until the tenant ends */
                        syslog(LOG_ERR, "tenant=%s seccomp listener: %s", name, strerror(-r));
                else
                        (void)notify_arg(argv[KEEPER_ARG_NOTIFY], notifier,
                                         clock_ms(CLOCK_MONOTONIC));
        }

        bool out_open = true, err_open = true;
        uint64_t ended_at = 0;
        struct denied_ctx dc = {.tenant = name};
        while (out_open || err_open) {
                struct pollfd fds[4] = {{.fd = out_open ? KEEPER_FD_OUT : -1, .events = POLLIN},
                                        {.fd = err_open ? KEEPER_FD_ERR : -1, .events = POLLIN},
                                        {.fd = ended_at ? -1 : KEEPER_FD_PIDFD, .events = POLLIN}};
                int timeout = sink.dropped ? 1000 : -1;
                uint64_t now = clock_ms(CLOCK_MONOTONIC);
                if (ended_at) {
                        if (now >= ended_at + DRAIN_MS)
                                break;
                        timeout = (int)(ended_at + DRAIN_MS - now);
                }
                /* Notified calls: answered a bounded number at a time, between the
                 * rest of the loop's work (lib/seccomp_notify.h). */
                timeout = notifier_pollfd(notifier, now, &fds[3], timeout);
                /* Output over the rate cap is read and dropped, with a note in the
                 * log once output is accepted again: the tenant is never blocked on
                 * its own stdout, and its logs take at most max_size * (keep + 1). */
                if (poll(fds, 4, timeout) < 0 && errno != EINTR)
                        break;
                if (fds[3].revents)
                        (void)notifier_answer(notifier, clock_ms(CLOCK_MONOTONIC));
                if (notifier)
                        (void)notifier_report(notifier, clock_ms(CLOCK_MONOTONIC), false,
                                              keeper_denied, &dc);
                if (fds[0].revents)
                        out_open = log_sink_pump(KEEPER_FD_OUT, &sink);
                if (fds[1].revents)
                        err_open = log_sink_pump(KEEPER_FD_ERR, &sink);
                if (fds[2].revents)
                        ended_at = clock_ms(CLOCK_MONOTONIC);
                if (sink.dropped && !(fds[0].revents | fds[1].revents)) {
                        log_sink_refill(&sink);
                        log_sink_drop_note(&sink);
                }
        }
        if (notifier)
                (void)notifier_report(notifier, 0, true, keeper_denied, &dc);
        notifier_free(notifier);

        int status = 128 + SIGKILL;
        bool exited = false;
        siginfo_t si = {0};
        int r;
        while ((r = waitid(P_PIDFD, KEEPER_FD_PIDFD, &si, WEXITED)) < 0 && errno == EINTR)
                ;
        if (r < 0) {
                syslog(LOG_ERR, "tenant=%s waitid: %m", name);
        } else {
                exited = si.si_code == CLD_EXITED;
                status = exited ? si.si_status : 128 + si.si_status;
        }
        if (sink.dropped) {
                sink.tokens = 1;
                log_sink_drop_note(&sink);
        }
        log_sink_note(&sink, "[tenantd: %s exited with status %d]\n", name, status);

        /* The rest needs libcgroup, libnl and nftables: tenantd's binary does it. */
        char st[24];
        snprintf(st, sizeof(st), "%s:%d", exited ? "exit" : "signal",
                 exited ? status : status - 128);
        char *args[KEEPER_FINISH_ARGC + 1] = {(char *)"tenantd", (char *)KEEPER_FINISH_ARG};
        args[KEEPER_FINISH_KIND] = argv[KEEPER_ARG_KIND];
        args[KEEPER_FINISH_STATE] = argv[KEEPER_ARG_STATE];
        args[KEEPER_FINISH_NAME] = (char *)name;
        args[KEEPER_FINISH_GENERATION] = argv[KEEPER_ARG_GENERATION];
        args[KEEPER_FINISH_STATUS] = st;
        args[KEEPER_FINISH_NET] = argv[KEEPER_ARG_NET];
        args[KEEPER_FINISH_UIDBASE] = argv[KEEPER_ARG_UIDBASE];
        for (int fd = KEEPER_FD_EVENT; fd <= KEEPER_FD_MAX; fd++)
                if (fd != KEEPER_FD_TENANTD && fd != KEEPER_FD_MANIFEST)
                        close(fd);
        execveat(KEEPER_FD_TENANTD, "", args, environ, AT_EMPTY_PATH);
        syslog(LOG_ERR, "tenant=%s cannot exec tenantd to clean up after it: %m", name);
        return 1;
}
