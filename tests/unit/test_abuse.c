/* test_abuse.c — abuse alerts and on_abuse actions from network.limits' counters on a
 * fake clock: raised at the first hit, reminders at most every reminder_ms with the hits
 * since the last line, cleared after clear_ms without a hit, baselines, a counter that
 * went back, cut applied and lifted on time and again after, pps_in never acting. */
#include <string.h>

#include "monitor/abuse.h"
#include "monitor/alert.h"
#include "tap.h"

static struct net_abuse_counters counters(uint64_t conns, uint64_t smtp, uint64_t pps_in)
{
        struct net_abuse_counters c = {.present = (1U << NET_ABUSE__N) - 1};
        c.packets[NET_ABUSE_CONNS] = conns;
        c.packets[NET_ABUSE_SMTP] = smtp;
        c.packets[NET_ABUSE_PPS_IN] = pps_in;
        return c;
}

static void test_alerts(void)
{
        struct abuse_config cfg = {.action = ABUSE_ALERT, .clear_ms = 5000, .reminder_ms = 10000};
        struct abuse_monitor *am = abuse_monitor_new("web", &cfg, false);
        struct abuse_event ev[ABUSE_MAX_EVENTS];
        struct net_abuse_counters c = counters(50, 0, 0);
        is_int(abuse_feed(am, 1000, &c, ev), 0, "first sample: baseline only");
        c = counters(1950, 0, 0);
        is_int(abuse_feed(am, 2000, &c, ev), 1, "a hit raises");
        char line[ALERT_LINE_MAX];
        abuse_format(&ev[0], line, sizeof(line));
        is_str(line,
               "event=abuse alert=raised kind=conns tenant=web count=1900 total=1900 action=alert",
               "raised line");
        c = counters(2000, 0, 0);
        is_int(abuse_feed(am, 3000, &c, ev), 0, "more hits before reminder_ms: quiet");
        c = counters(2100, 0, 0);
        is_int(abuse_feed(am, 12000, &c, ev), 1, "a reminder after reminder_ms");
        abuse_format(&ev[0], line, sizeof(line));
        is_str(line,
               "event=abuse alert=reminder kind=conns tenant=web count=150 total=2050 for=10s",
               "reminder line: hits since the last line");
        is_int(abuse_feed(am, 16000, &c, ev), 0, "quiet less than clear_ms: still raised");
        is_int(abuse_feed(am, 17000, &c, ev), 1, "clear_ms without a hit clears");
        abuse_format(&ev[0], line, sizeof(line));
        is_str(line,
               "event=abuse alert=cleared kind=conns tenant=web count=0 total=2050 duration=15s",
               "cleared line");
        c = counters(3, 0, 0);
        is_int(abuse_feed(am, 18000, &c, ev), 1, "a counter that went back counts from zero");
        is_int((int)ev[0].count, 3, "its 3 hits");
        abuse_monitor_free(am);
}

static void test_actions(void)
{
        struct abuse_config cfg = {
            .action = ABUSE_CUT, .action_ms = 10000, .clear_ms = 5000, .reminder_ms = 0};
        struct abuse_monitor *am = abuse_monitor_new("web", &cfg, true);
        struct abuse_event ev[ABUSE_MAX_EVENTS];
        struct net_abuse_counters c = counters(0, 0, 500);
        is_int(abuse_feed(am, 1000, &c, ev), 1, "fresh: pps_in hits at the first sample");
        is_int(ev[0].what, ABUSE_KIND_PPS_IN, "pps_in raised");
        c = counters(0, 2, 500);
        size_t n = abuse_feed(am, 2000, &c, ev);
        ok(n == 2 && ev[0].kind == ABUSE_RAISED && ev[1].kind == ABUSE_APPLIED,
           "an smtp hit raises and applies the cut");
        char line[ALERT_LINE_MAX];
        abuse_format(&ev[1], line, sizeof(line));
        is_str(line, "event=abuse alert=applied kind=smtp tenant=web action=cut for=10s",
               "applied line");
        c = counters(0, 5, 500);
        is_int(abuse_feed(am, 5000, &c, ev), 0, "hits while in force: nothing new");
        n = abuse_feed(am, 12000, &c, ev);
        ok(n == 3 && ev[2].kind == ABUSE_LIFTED, "lifted on time (and pps_in, smtp cleared)");
        abuse_format(&ev[2], line, sizeof(line));
        is_str(line, "event=abuse alert=lifted tenant=web action=cut duration=10s", "lifted line");
        c = counters(0, 6, 500);
        n = abuse_feed(am, 13000, &c, ev);
        ok(n == 2 && ev[1].kind == ABUSE_APPLIED, "a hit after the lift applies it again");
        n = abuse_feed(am, 24000, NULL, ev);
        ok(n >= 1 && ev[n - 1].kind == ABUSE_LIFTED, "lifted on time without counters");
        c = counters(0, 6, 900);
        n = abuse_feed(am, 25000, &c, ev);
        ok(n == 1 && ev[0].kind == ABUSE_RAISED && ev[0].what == ABUSE_KIND_PPS_IN,
           "a flood toward the tenant alerts but does not act");
        abuse_monitor_free(am);
}

int main(void)
{
        test_alerts();
        test_actions();
        return tap_done();
}
