/* test_keeper_status.c — the keeper's one status line to tenantd ("started PID" or
 * "error MESSAGE"): what the keeper writes reads back the same, and anything else, a
 * pid with a sign, trailing bytes or out of range included, is no pid. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

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

int main(void)
{
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

        event_is("seccomp-denied syslog 5\n", 0, "syslog", 5);
        event_is("seccomp-denied other 99999", 0, "other", 99999);
        event_is("seccomp-denied syslog 0", -EBADMSG, NULL, 0);
        event_is("seccomp-denied syslog 05", -EBADMSG, NULL, 0);
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
        return tap_done();
}
