/* test_keeper_status.c — the keeper's one status line to tenantd ("started PID" or
 * "error MESSAGE"): what the keeper writes reads back the same, and anything else, a
 * pid with a sign, trailing bytes or out of range included, is no pid. The same for
 * its event lines and for the STATUS word tenantd-keeper hands --keeper-finish. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "tap.h"
#include "daemon/keeper.h"

static void parse_is(const char *text, int want_r, pid_t want_pid, const char *want_error)
{
        pid_t pid = -7;
        const char *error = NULL;
        char line[64];
        snprintf(line, sizeof(line), "%s", text);
        char shown[64]; /* the line as the description shows it: "\n" for a newline */
        size_t k = 0;
        for (const char *c = text; *c && k + 3 < sizeof(shown); c++)
                k += (size_t)snprintf(shown + k, sizeof(shown) - k, *c == '\n' ? "\\n" : "%c", *c);
        shown[k] = '\0';
        int r = keeper_status_parse(line, &pid, &error);
        if (want_r == 0 && want_error)
                ok(r == 0 && pid == 0 && error && strcmp(error, want_error) == 0,
                   "\"%s\": the error \"%s\" (r=%d, got \"%s\")", shown, want_error, r,
                   error ? error : "(none)");
        else if (want_r == 0)
                ok(r == 0 && pid == want_pid && !error, "\"%s\": pid %d (r=%d pid=%d)", shown,
                   (int)want_pid, r, (int)pid);
        else
                ok(r == want_r && pid == -7 && !error, "\"%s\" is refused (r=%d)", shown, r);
}

/* An event line (issue 17): what the keeper writes, and nothing else, is an event. */
static void event_is(const char *text, int want_r, const char *want_syscall, uint64_t want_count)
{
        char line[160];
        snprintf(line, sizeof(line), "%s", text);
        const char *sys = NULL;
        uint64_t count = 7;
        int r = keeper_event_parse(line, &sys, &count);
        if (want_r == 0)
                ok(r == 0 && sys && strcmp(sys, want_syscall) == 0 && count == want_count,
                   "event \"%.40s\": %s %llu (r=%d)", text, want_syscall,
                   (unsigned long long)want_count, r);
        else
                ok(r == want_r && !sys && count == 7, "event \"%.40s\" is refused (r=%d)", text, r);
}

/* A microVM's "guest-limits OOM PIDS" line, as the daemon gets it (newline cut off). */
static void limits_is(const char *text, int want_r, uint64_t want_oom, uint64_t want_pids)
{
        uint64_t oom = 7, pids = 7;
        int r = keeper_event_parse_limits(text, &oom, &pids);
        if (want_r == 0)
                ok(r == 0 && oom == want_oom && pids == want_pids,
                   "limits \"%.40s\": %llu %llu (r=%d)", text, (unsigned long long)want_oom,
                   (unsigned long long)want_pids, r);
        else
                ok(r == want_r && oom == 7 && pids == 7, "limits \"%.40s\" is refused (r=%d)", text,
                   r);
}

/* --keeper-finish's STATUS word (daemon/keeper_exec.h). */
static void finish_status_is(const char *text, int want_r, int want_status, bool want_exited)
{
        int status = -7;
        bool exited = !want_exited;
        int r = keeper_finish_status_parse(text, &status, &exited);
        if (want_r == 0)
                ok(r == 0 && status == want_status && exited == want_exited,
                   "finish status \"%s\": %d, %s (r=%d)", text, want_status,
                   want_exited ? "exited" : "killed", r);
        else
                ok(r == want_r && status == -7, "finish status \"%s\" is refused (r=%d)", text, r);
}

/* The guest's totals a tenantd accepted, kept in the tenant's state directory so that a
 * tenantd restarted while the microVM runs does not count them again (issue 12). */
static void guest_limits_saved(void)
{
        char state[] = "/tmp/test-keeper-status.XXXXXX", dir[4096], path[4200];
        if (!mkdtemp(state)) {
                ok(0, "mkdtemp");
                return;
        }
        tenant_dir(state, "t1", dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/tenants", state);
        mkdir(path, 0700);
        mkdir(dir, 0700);
        uint64_t oom = 7, pids = 7;
        int r = keeper_guest_limits_load(state, "t1", &oom, &pids);
        ok(r == -ENOENT && oom == 7 && pids == 7, "no totals saved: -ENOENT (r=%d)", r);
        r = keeper_guest_limits_save(state, "t1", 3, 12, NULL);
        ok(r == 0, "totals saved (r=%d)", r);
        snprintf(path, sizeof(path), "%s/guest-limits", dir);
        struct stat st;
        ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "... in %s, 0600", path);
        r = keeper_guest_limits_load(state, "t1", &oom, &pids);
        ok(r == 0 && oom == 3 && pids == 12, "... read back: %llu %llu (r=%d)",
           (unsigned long long)oom, (unsigned long long)pids, r);
        r = keeper_guest_limits_save(state, "t1", 9007199254740991ULL, 0, NULL);
        r = r ?: keeper_guest_limits_load(state, "t1", &oom, &pids);
        ok(r == 0 && oom == 9007199254740991ULL && pids == 0, "the largest total round trips");
        FILE *f = fopen(path, "w");
        if (f) {
                fputs("guest-limits 3 x\n", f);
                fclose(f);
        }
        oom = pids = 7;
        r = keeper_guest_limits_load(state, "t1", &oom, &pids);
        ok(r == -EBADMSG && oom == 7 && pids == 7, "a damaged file is refused (r=%d)", r);
        keeper_records_remove(state, "t1");
        ok(access(path, F_OK) < 0 && errno == ENOENT, "removed with the tenant's records");
        rmdir(dir);
        snprintf(path, sizeof(path), "%s/tenants", state);
        rmdir(path);
        rmdir(state);
}

int main(void)
{
        guest_limits_saved();
        char buf[KEEPER_STATUS_MAX];
        size_t n = keeper_status_format(buf, sizeof(buf), 1234, NULL);
        ok(n == 13 && strcmp(buf, "started 1234\n") == 0, "format started: \"%.*s\"", (int)n - 1,
           buf);
        n = keeper_status_format(buf, sizeof(buf), 0, "cannot mount /x:\nnot a dir");
        ok(strcmp(buf, "error cannot mount /x: not a dir\n") == 0 && n == strlen(buf),
           "format error: one line, the newline inside made a space: \"%.*s\"", (int)n - 1, buf);
        char longmsg[4000];
        memset(longmsg, 'x', sizeof(longmsg) - 1);
        longmsg[sizeof(longmsg) - 1] = '\0';
        n = keeper_status_format(buf, sizeof(buf), 0, longmsg);
        ok(n == KEEPER_STATUS_MAX - 1 && buf[n - 1] == '\n' && buf[n] == '\0',
           "a long error is cut to the line's size and still ends the line (%zu)", n);

        parse_is("started 1234", 0, 1234, NULL);
        parse_is("started 1234\n", 0, 1234, NULL);
        parse_is("error cannot mount /x", 0, 0, "cannot mount /x");
        parse_is("error cannot mount /x\n", 0, 0, "cannot mount /x");
        parse_is("started 0", -EBADMSG, 0, NULL);
        parse_is("started -5", -EBADMSG, 0, NULL);
        parse_is("started +5", -EBADMSG, 0, NULL);
        parse_is("started  5", -EBADMSG, 0, NULL);
        parse_is("started 5x", -EBADMSG, 0, NULL);
        parse_is("started 5 ", -EBADMSG, 0, NULL);
        parse_is("started 99999999999", -EBADMSG, 0, NULL);
        parse_is("started ", -EBADMSG, 0, NULL);
        parse_is("starting 5", -EBADMSG, 0, NULL);
        parse_is("", -EBADMSG, 0, NULL);
        parse_is("error ", 0, 0, "");

        limits_is("guest-limits 0 0", 0, 0, 0);
        limits_is("guest-limits 3 12", 0, 3, 12);
        limits_is("guest-limits 9007199254740991 1", 0, 9007199254740991ULL, 1);
        limits_is("guest-limits 9007199254740992 1", -EBADMSG, 0, 0);
        limits_is("guest-limits 99999999999999999999 1", -EBADMSG, 0, 0);
        limits_is("guest-limits 01 1", -EBADMSG, 0, 0);
        limits_is("guest-limits 1", -EBADMSG, 0, 0);
        limits_is("guest-limits 1 2 3", -EBADMSG, 0, 0);
        limits_is("guest-limits 1  2", -EBADMSG, 0, 0);
        limits_is("guest-limits -1 2", -EBADMSG, 0, 0);
        limits_is("guest-limits 1 2 ", -EBADMSG, 0, 0);
        limits_is("guest-limit 1 2", -EBADMSG, 0, 0);
        limits_is("seccomp-denied syslog 5", -EBADMSG, 0, 0);
        event_is("guest-limits 1 2", -EBADMSG, NULL, 0);

        event_is("seccomp-denied syslog 5\n", 0, "syslog", 5);
        event_is("seccomp-denied other 99999", 0, "other", 99999);
        event_is("seccomp-denied syslog 0", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 05", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 9223372036854775807", 0, "syslog", INT64_MAX);
        event_is("seccomp-denied syslog 9223372036854775808", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 18446744073709551616", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 5x", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 99999999999999999999", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 5 x", -EBADMSG, NULL, 0);
        event_is("seccomp-denied sys\033log 5", -EBADMSG, NULL, 0);
        event_is("seccomp-denied tenant=x 5", -EBADMSG, NULL, 0);
        event_is("seccomp-denied  5", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog", -EBADMSG, NULL, 0);
        event_is("seccomp-allowed syslog 5", -EBADMSG, NULL, 0);
        event_is("seccomp-denied "
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 5",
                 -EBADMSG, NULL, 0);

        finish_status_is("exit:0", 0, 0, true);
        finish_status_is("exit:3", 0, 3, true);
        finish_status_is("exit:255", 0, 255, true);
        finish_status_is("exit:137", 0, 137, true); /* a runner's own 137: no cleanup */
        finish_status_is("signal:9", 0, 137, false);
        finish_status_is("signal:15", 0, 143, false);
        finish_status_is("exit:256", -EINVAL, 0, false);
        finish_status_is("exit:007", -EINVAL, 0, false);
        finish_status_is("exit:", -EINVAL, 0, false);
        finish_status_is("signal:0", -EINVAL, 0, false);
        finish_status_is("signal:128", -EINVAL, 0, false);
        finish_status_is("exit:", -EINVAL, 0, false);
        finish_status_is("exit:+5", -EINVAL, 0, false);
        finish_status_is("exit: 5", -EINVAL, 0, false);
        finish_status_is("exit:-1", -EINVAL, 0, false);
        finish_status_is("exit:05", -EINVAL, 0, false);
        finish_status_is("exit:5x", -EINVAL, 0, false);
        finish_status_is("exit:1000", -EINVAL, 0, false);
        finish_status_is("5", -EINVAL, 0, false);
        finish_status_is("killed:9", -EINVAL, 0, false);
        return tap_done();
}
