/* test_notify.c — the aggregation of notified calls (lib/seccomp_notify.h) on a fake clock:
 * the first denial of a call is reported at once, later ones at most once per
 * NOTIFY_REPORT_MS with their counts summed, every call on its own schedule, and a
 * flush reports whatever is left. No listener is involved. */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "tap.h"
#include "lib/seccomp_notify.h"

struct seen {
        int nr[8];
        uint64_t count[8];
        size_t n;
};

static void record(void *ctx, int nr, uint64_t count)
{
        struct seen *s = ctx;
        if (s->n < 8) {
                s->nr[s->n] = nr;
                s->count[s->n++] = count;
        }
}

int main(void)
{
        struct notifier *n = calloc(1, sizeof(*n));
        struct seen s = {0};
        n->fd = -1;
        ok(notifier_report(n, 1000, false, record, &s) == -1 && s.n == 0,
           "nothing denied: nothing reported, nothing due");
        /* What notifier_answer does: a count going up from 0 marks the notifier. */
        n->pending[SYS_syslog] = 1;
        n->dirty = true;
        int due = notifier_report(n, 1000, false, record, &s);
        ok(s.n == 1 && s.nr[0] == SYS_syslog && s.count[0] == 1 && due == -1,
           "the first denial is reported at once");
        n->pending[SYS_syslog] = 40000;
        n->dirty = true;
        s.n = 0;
        due = notifier_report(n, 4000, false, record, &s);
        ok(s.n == 0 && due == NOTIFY_REPORT_MS - 3000,
           "40,000 more 3 s later wait for the 10 s mark (due in %d ms)", due);
        n->pending[SYS_syslog] += 60000;
        n->pending[SYS_acct] = 2;
        n->dirty = true;
        s.n = 0;
        due = notifier_report(n, 6000, false, record, &s);
        ok(s.n == 1 && s.nr[0] == SYS_acct && s.count[0] == 2,
           "another call has its own schedule: reported at once");
        s.n = 0;
        due = notifier_report(n, 10999, false, record, &s);
        ok(s.n == 0 && due == 1, "nothing new, nothing due yet: no report (due in %d ms)", due);
        due = notifier_report(n, 11000, false, record, &s);
        ok(s.n == 1 && s.nr[0] == SYS_syslog && s.count[0] == 100000,
           "at 10 s the summed count is reported in one line (%llu)",
           (unsigned long long)(s.n ? s.count[0] : 0));
        n->pending[SYS_acct] = 3;
        n->pending[NOTIFY_MAX_NR] = 4;
        n->dirty = true;
        s.n = 0;
        (void)notifier_report(n, 11001, true, record, &s);
        ok(s.n == 2 && s.count[0] == 3 && s.nr[1] == -1 && s.count[1] == 4,
           "a flush reports what is left, numbers out of range as \"other\" (nr -1)");
        char line[128];
        notifier_format(line, sizeof(line), "web", "syslog", 7);
        is_str(line, "event=seccomp-denied tenant=web syscall=syslog count=7", "the report line");
        notifier_format(line, sizeof(line), "web", "other", 1);
        is_str(line, "event=seccomp-denied tenant=web syscall=other count=1", "\"other\"");
        int wait = 0;
        n->window_start_ms = 20000;
        n->window_used = NOTIFY_BUDGET;
        ok(!notifier_wants_poll(n, 20040, &wait) && wait == NOTIFY_WINDOW_MS - 40,
           "a spent budget stops polling until the window ends (%d ms)", wait);
        ok(notifier_wants_poll(n, 20000 + NOTIFY_WINDOW_MS, &wait), "the next window polls again");
        /* What a guest agent reports, added up on the host (notifier_add). */
        memset(n, 0, sizeof(*n));
        s.n = 0;
        notifier_add(n, SYS_syslog, 40);
        notifier_add(n, SYS_syslog, 2);
        notifier_add(n, 100000, 5);
        notifier_add(n, -7, 1);
        notifier_add(n, SYS_acct, 0);
        (void)notifier_report(n, 30000, false, record, &s);
        ok(s.n == 2 && s.nr[0] == SYS_syslog && s.count[0] == 42 && s.nr[1] == -1 &&
               s.count[1] == 6,
           "added counts are summed per call, numbers out of range as \"other\", 0 ignored");
        notifier_add(n, SYS_syslog, UINT64_MAX);
        notifier_add(n, SYS_syslog, UINT64_MAX);
        ok(n->pending[SYS_syslog] == UINT64_MAX && n->total == UINT64_MAX,
           "a lying guest's counts saturate instead of wrapping");
        /* A listener handed over right after its first owner reported (keeper_exec.h):
         * the new owner's next report of that call waits its 10 s, others' do not. */
        memset(n, 0, sizeof(*n));
        s.n = 0;
        notifier_mark_reported(n, SYS_syslog, 50000);
        notifier_mark_reported(n, -1, 50000);
        notifier_add(n, SYS_syslog, 7);
        notifier_add(n, SYS_acct, 1);
        notifier_add(n, 5000, 2);
        due = notifier_report(n, 50001, false, record, &s);
        ok(s.n == 1 && s.nr[0] == SYS_acct && due == NOTIFY_REPORT_MS - 1,
           "after the handover, marked calls wait for their 10 s mark (due in %d ms)", due);
        s.n = 0;
        (void)notifier_report(n, 50000 + NOTIFY_REPORT_MS, false, record, &s);
        ok(s.n == 2 && s.nr[0] == SYS_syslog && s.count[0] == 7 && s.nr[1] == -1 && s.count[1] == 2,
           "and are reported at it, with their counts");
        free(n);
        return tap_done();
}
