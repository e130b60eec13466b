/* test_monitor.c — the monitor's rules on a fake clock: raised after the rule's duration
 * and not before, cleared below the clear level and not between, reminders rate-limited,
 * OOM kills and pids-limit hits reported at once and then at most every 10 s, summed,
 * the end flushing what is held, counter resets, default rules, live
 * changes, status. */
#include <math.h>
#include <string.h>

#include "monitor/monitor.h"
#include "tap.h"

static struct alert_rule rule(uint32_t thr_bp, uint32_t clear_bp, uint64_t for_ms)
{
        return (struct alert_rule){
            .set = true, .threshold_bp = thr_bp, .clear_bp = clear_bp, .for_ms = for_ms};
}

/* A fake tenant: cpu usage grows by `cpus` per elapsed ms of the fake clock. */
struct fake {
        struct monitor_tenant *mt;
        uint64_t now;
        uint64_t cpu_ns;
        struct cgroup_sample cg;
        uint64_t rx, tx;
        struct monitor_event ev[MONITOR_MAX_EVENTS];
        size_t n;
};

static void fake_init(struct fake *f, const struct monitor_limits *l, uint64_t reminder_ms)
{
        memset(f, 0, sizeof(*f));
        f->mt = monitor_tenant_new("mo-photos", l, reminder_ms);
        f->cg.valid = CGS_CPU | CGS_THROTTLE | CGS_MEMORY | CGS_OOM | CGS_PIDS | CGS_PIDS_EVENTS;
        f->cg.memory_max = 1000;
        f->cg.pids_max = 100;
}

/* Advances the clock by dt ms at `cpus` CPUs and feeds one sample. */
static size_t step(struct fake *f, uint64_t dt, double cpus)
{
        f->now += dt;
        f->cpu_ns += (uint64_t)(cpus * (double)dt * 1e6);
        f->cg.cpu_usage_ns = f->cpu_ns;
        struct monitor_sample s = {.now_ms = f->now, .has_cgroup = true, .cg = f->cg};
        f->n = monitor_feed(f->mt, &s, f->ev);
        return f->n;
}

/* Runs `cpus` in 200 ms steps until `until` ms; returns the time of the first event of
 * `kind` (0 if none). */
static uint64_t run_until(struct fake *f, uint64_t until, double cpus, enum monitor_event_kind kind)
{
        uint64_t seen = 0;
        while (f->now < until) {
                step(f, 200, cpus);
                for (size_t i = 0; i < f->n; i++)
                        if (f->ev[i].kind == kind && !seen)
                                seen = f->now;
        }
        return seen;
}

static void test_raise_and_clear(void)
{
        struct monitor_limits l = {
            .cpu_millicpus = 1000, .memory_max = MONITOR_UNLIMITED, .pids_max = MONITOR_UNLIMITED};
        l.rules[QUOTA_CPU] = rule(8000, 7000, 2000);
        struct fake f;
        fake_init(&f, &l, 0);
        is_int(step(&f, 0, 0), 0, "the first sample only sets baselines");
        /* 0.9 CPU from t=0: the interval (0,200] is already above, so the rule holds
         * 2 s at t=2000. */
        uint64_t t = run_until(&f, 1800, 0.9, MONITOR_RAISED);
        is_int(t, 0, "not raised before the rule's 2 s (up to t=1800)");
        step(&f, 200, 0.9);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && f.ev[0].quota == QUOTA_CPU,
           "raised at t=2000, 2 s after usage went above 80%%");
        ok(fabs(f.ev[0].usage - 0.9) < 0.001 && fabs(f.ev[0].limit - 1.0) < 1e-9 &&
               f.ev[0].for_ms == 2000 && fabs(f.ev[0].threshold - 0.8) < 1e-9,
           "... usage 0.90, limit 1 CPU, for 2000 ms, threshold 0.80 (got %.3f %.2f %llu)",
           f.ev[0].usage, f.ev[0].limit, (unsigned long long)f.ev[0].for_ms);
        is_str(f.ev[0].tenant, "mo-photos", "... naming the tenant");
        t = run_until(&f, 6000, 0.75, MONITOR_CLEARED);
        is_int(t, 0, "between the clear level (70%%) and the threshold: stays raised");
        t = run_until(&f, 6000, 0.95, MONITOR_RAISED);
        is_int(t, 0, "not raised twice while raised");
        step(&f, 200, 0.65);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_CLEARED && f.ev[0].for_ms == 4200,
           "cleared at the first sample below 70%%, after 4.2 s raised (got %zu events, %llu ms)",
           f.n, f.n ? (unsigned long long)f.ev[0].for_ms : 0ULL);
        struct monitor_status st;
        monitor_status(f.mt, &st);
        ok(!st.raised[QUOTA_CPU] && fabs(st.cpu_used - 0.65) < 0.001 &&
               fabs(st.usage[QUOTA_CPU] - 0.65) < 0.001,
           "status: not raised, 0.65 CPU used (got %.3f)", st.cpu_used);
        /* Hovering around the threshold does not flap. */
        size_t events = 0;
        for (int i = 0; i < 20; i++) {
                step(&f, 200, i % 2 ? 0.85 : 0.75);
                events += f.n;
        }
        is_int(events, 0, "alternating 85%%/75%% never holds 2 s: no alert");
        monitor_tenant_free(f.mt);
}

static void test_dip_restarts_duration(void)
{
        struct monitor_limits l = {.cpu_millicpus = 500};
        l.rules[QUOTA_CPU] = rule(9000, 8000, 3000);
        struct fake f;
        fake_init(&f, &l, 0);
        step(&f, 0, 0);
        run_until(&f, 2000, 0.5, MONITOR_RAISED); /* 100% of 0.5 */
        step(&f, 200, 0.1);                       /* a dip at t=2200 */
        uint64_t t = run_until(&f, 8000, 0.49, MONITOR_RAISED);
        is_int(t, 5200, "a dip restarts the duration: raised 3 s after the dip's interval");
        monitor_tenant_free(f.mt);
}

static void test_reminders(void)
{
        struct monitor_limits l = {.cpu_millicpus = 1000};
        l.rules[QUOTA_CPU] = rule(5000, 4000, 0);
        struct fake f;
        fake_init(&f, &l, 10000);
        step(&f, 0, 0);
        step(&f, 200, 1.0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && f.ev[0].for_ms == 200,
           "for 0s: raised at the first sample above");
        uint64_t first = run_until(&f, 10000, 1.0, MONITOR_REMINDER);
        is_int(first, 0, "no reminder within 10 s of raising");
        first = run_until(&f, 10400, 1.0, MONITOR_REMINDER);
        is_int(first, 10200, "a reminder 10 s after raising");
        uint64_t count = 0;
        while (f.now < 40200) {
                step(&f, 200, 1.0);
                for (size_t i = 0; i < f.n; i++)
                        count += f.ev[i].kind == MONITOR_REMINDER;
        }
        is_int(count, 3, "then at most one every 10 s (3 in the next 30 s)");
        monitor_tenant_free(f.mt);

        fake_init(&f, &l, 0);
        step(&f, 0, 0);
        step(&f, 200, 1.0);
        is_int(run_until(&f, 60000, 1.0, MONITOR_REMINDER), 0, "reminders off with 0");
        monitor_tenant_free(f.mt);
}

static void test_one_shot(void)
{
        struct monitor_limits l = {0}; /* no rules at all */
        struct fake f;
        fake_init(&f, &l, 0);
        f.cg.oom_kills = 7;
        f.cg.pids_max_events = 40;
        is_int(step(&f, 0, 0), 0, "kills before the monitor started are not reported");
        f.cg.oom_kills = 9;
        f.cg.memory_current = 990;
        step(&f, 200, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_OOM_KILL && f.ev[0].count == 2 &&
               f.ev[0].total == 9 && f.ev[0].used == 990 && f.ev[0].limit == 1000,
           "an OOM kill is reported at the next sample, without a rule: 2 new, 9 in all");
        f.cg.pids_max_events = 43;
        f.cg.pids_current = 100;
        step(&f, 200, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_PIDS_LIMIT && f.ev[0].count == 3 &&
               f.ev[0].total == 43 && f.ev[0].quota == QUOTA_PIDS,
           "a pids-limit hit likewise: 3 refused forks");
        is_int(step(&f, 200, 0), 0, "nothing new: nothing reported");
        f.cg.oom_kills = 0; /* cgroup recreated (tenant restarted) */
        f.cg.pids_max_events = 0;
        is_int(step(&f, 200, 0), 0, "counters that go back (cgroup recreated): no alert");
        f.cg.oom_kills = 1;
        step(&f, MONITOR_ONE_SHOT_MS, 0); /* the last oom_kill line is 10 s old */
        ok(f.n == 1 && f.ev[0].kind == MONITOR_OOM_KILL && f.ev[0].count == 1,
           "... and counting resumes from the new baseline");
        struct monitor_status st;
        monitor_status(f.mt, &st);
        ok(st.oom_kills == 3 && st.pids_limit_hits == 3, "status counts 3 kills and 3 hits");
        f.cg.valid &= ~CGS_OOM;
        f.cg.oom_kills = 5;
        is_int(step(&f, 200, 0), 0, "a sample without the oom counter reports nothing");
        monitor_tenant_free(f.mt);
}

/* Collects the OOM_KILL and PIDS_LIMIT lines of the last step. */
struct lines {
        uint64_t at[2][64];
        uint64_t count[2][64];
        size_t n[2];
        uint64_t sum[2];
};

static void collect(struct lines *ls, uint64_t now, const struct monitor_event *ev, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int k = ev[i].kind == MONITOR_OOM_KILL     ? 0
                        : ev[i].kind == MONITOR_PIDS_LIMIT ? 1
                                                           : -1;
                if (k < 0 || ls->n[k] >= 64)
                        continue;
                ls->at[k][ls->n[k]] = now;
                ls->count[k][ls->n[k]++] = ev[i].count;
                ls->sum[k] += ev[i].count;
        }
}

/* The shortest gap between two lines of one kind (UINT64_MAX with fewer than two). */
static uint64_t min_gap(const struct lines *ls, int k)
{
        uint64_t g = UINT64_MAX;
        for (size_t i = 1; i < ls->n[k]; i++)
                if (ls->at[k][i] - ls->at[k][i - 1] < g)
                        g = ls->at[k][i] - ls->at[k][i - 1];
        return g;
}

/* A fork bomb held at pids.max (and an OOM loop): hits at every sample for 30 s. The
 * first goes out at once, later ones at most every 10 s with the counts summed, and
 * what is held is sent once the interval has passed, even without new hits. */
static void test_one_shot_rate(void)
{
        struct monitor_limits l = {0};
        struct fake f;
        fake_init(&f, &l, 0);
        step(&f, 0, 0);
        struct lines ls = {0};
        uint64_t hits[2] = {0, 0};
        for (int i = 1; i <= 30; i++) {
                uint64_t dp = (uint64_t)(i % 3) + 1, doom = (uint64_t)(i % 2);
                f.cg.pids_max_events += dp;
                f.cg.oom_kills += doom;
                hits[0] += doom;
                hits[1] += dp;
                step(&f, 1000, 0);
                collect(&ls, f.now, f.ev, f.n);
        }
        ok(ls.n[1] >= 1 && ls.at[1][0] == 1000 && ls.count[1][0] == 2,
           "a burst: the first pids_limit goes out at once (at %llu ms, count %llu)",
           (unsigned long long)ls.at[1][0], (unsigned long long)ls.count[1][0]);
        ok(ls.n[0] >= 1 && ls.at[0][0] == 1000 && ls.count[0][0] == 1,
           "... and the first oom_kill (at %llu ms)", (unsigned long long)ls.at[0][0]);
        ok(min_gap(&ls, 0) >= 10000 && min_gap(&ls, 1) >= 10000,
           "... later ones at most every 10 s per kind (shortest gaps %llu and %llu ms)",
           (unsigned long long)min_gap(&ls, 0), (unsigned long long)min_gap(&ls, 1));
        ok(ls.n[0] <= 3 && ls.n[1] <= 3, "... 30 s of hits: %zu and %zu lines, not one per sample",
           ls.n[0], ls.n[1]);
        for (int i = 0; i < 12; i++) { /* quiet: what is held goes out */
                step(&f, 1000, 0);
                collect(&ls, f.now, f.ev, f.n);
        }
        ok(ls.sum[0] == hits[0] && ls.sum[1] == hits[1],
           "... the counts sum to the hits once the interval passed without new ones (%llu of "
           "%llu kills, %llu of %llu hits)",
           (unsigned long long)ls.sum[0], (unsigned long long)hits[0],
           (unsigned long long)ls.sum[1], (unsigned long long)hits[1]);
        ok(min_gap(&ls, 0) >= 10000 && min_gap(&ls, 1) >= 10000, "... still 10 s apart");
        /* Quiet for more than 10 s: a single hit is alerted at once. */
        step(&f, 11000, 0);
        f.cg.pids_max_events += 1;
        step(&f, 1000, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_PIDS_LIMIT && f.ev[0].count == 1,
           "a single hit after a quiet spell is alerted at once");
        monitor_tenant_free(f.mt);
}

/* The tenant's end: a last sample, then monitor_flush sends what is held. */
static void test_one_shot_end(void)
{
        struct monitor_limits l = {0};
        struct fake f;
        fake_init(&f, &l, 0);
        monitor_tenant_fresh(f.mt);
        f.cg.oom_kills = 1;
        step(&f, 1000, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_OOM_KILL && f.ev[0].count == 1,
           "a fresh tenant's first OOM kill at its first sample");
        f.cg.oom_kills = 3;
        is_int(step(&f, 1000, 0), 0, "two more 1 s later: held");
        f.cg.oom_kills = 6;
        f.cg.pids_max_events = 4;
        step(&f, 1000, 0); /* the final sample */
        ok(f.n == 1 && f.ev[0].kind == MONITOR_PIDS_LIMIT && f.ev[0].count == 4,
           "the final sample: the first pids hits go out at once, the kills are held");
        struct monitor_event ev[MONITOR_MAX_EVENTS];
        size_t n = monitor_flush(f.mt, f.now, ev);
        ok(n == 1 && ev[0].kind == MONITOR_OOM_KILL && ev[0].count == 5 && ev[0].total == 6 &&
               ev[0].quota == QUOTA_MEMORY,
           "the end flushes the held kills: count 5, total 6 (got %zu, count %llu)", n,
           n ? (unsigned long long)ev[0].count : 0ULL);
        is_int(monitor_flush(f.mt, f.now, ev), 0, "... once");
        monitor_tenant_free(f.mt);
}

static void test_cpu_reset(void)
{
        struct monitor_limits l = {.cpu_millicpus = 1000};
        l.rules[QUOTA_CPU] = rule(5000, 4000, 0);
        struct fake f;
        fake_init(&f, &l, 0);
        step(&f, 0, 0);
        step(&f, 200, 0.1);
        f.cpu_ns = 0; /* recreated cgroup: usage starts again */
        is_int(step(&f, 200, 0.0), 0, "cpu usage going back: no value, no alert");
        struct monitor_status st;
        monitor_status(f.mt, &st);
        ok(fabs(st.cpu_used - 0.1) < 0.001, "... the last good value stays (%.3f)", st.cpu_used);
        step(&f, 200, 0.8);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && fabs(f.ev[0].usage - 0.8) < 0.001,
           "the next interval measures from the new baseline (0.80)");
        struct monitor_sample back = {.now_ms = 10, .has_cgroup = true, .cg = f.cg};
        is_int(monitor_feed(f.mt, &back, f.ev), 0, "a sample from the past is ignored");
        monitor_tenant_free(f.mt);
}

static void test_levels_and_network(void)
{
        struct monitor_limits l = {.egress_rate = 10000000, .ingress_rate = 20000000};
        l.rules[QUOTA_MEMORY] = rule(9000, 8000, 0);
        l.rules[QUOTA_EGRESS] = l.rules[QUOTA_INGRESS] = rule(9500, 8500, 1000);
        struct fake f;
        fake_init(&f, &l, 0);
        f.cg.memory_current = 500;
        step(&f, 0, 0);
        f.cg.memory_current = 900;
        step(&f, 200, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && f.ev[0].quota == QUOTA_MEMORY &&
               fabs(f.ev[0].usage - 0.9) < 1e-9,
           "memory at 90%% of the cgroup's own limit: raised");
        f.cg.memory_max = 2000; /* a live memory.max change */
        step(&f, 200, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_CLEARED,
           "memory.max raised live: utilisation 45%%, cleared");

        /* Egress at 9.8 Mbit/s (98%) for more than 1 s, ingress at 10 of 20. */
        struct monitor_event ev[MONITOR_MAX_EVENTS];
        uint64_t now = 1000, rx = 0, tx = 0, rxp = 0, txp = 0, raised_at = 0;
        int raised_quota = -1;
        for (int i = 0; i < 10; i++) {
                struct monitor_sample s = {.now_ms = now,
                                           .has_net = true,
                                           .net_rx_bytes = rx,
                                           .net_tx_bytes = tx,
                                           .net_rx_packets = rxp,
                                           .net_tx_packets = txp};
                size_t n = monitor_feed(f.mt, &s, ev);
                for (size_t k = 0; k < n; k++)
                        if (ev[k].kind == MONITOR_RAISED && !raised_at) {
                                raised_at = now;
                                raised_quota = (int)ev[k].quota;
                        }
                now += 200;
                rx += 9800000 / 8 / 5;
                tx += 10000000 / 8 / 5;
                rxp += 1500 / 5; /* 1,500 and 50,000 packets a second */
                txp += 50000 / 5;
        }
        ok(raised_at == 2000 && raised_quota == QUOTA_EGRESS,
           "egress at 98%% of its rate for 1 s: raised (at %llu), ingress at 50%% not",
           (unsigned long long)raised_at);
        struct monitor_status st;
        monitor_status(f.mt, &st);
        ok(st.have_net && fabs(st.rx_bps - 9.8e6) < 1 && fabs(st.tx_bps - 1e7) < 1,
           "status: rx %.0f bit/s, tx %.0f bit/s", st.rx_bps, st.tx_bps);
        ok(fabs(st.rx_pps - 1500) < 1e-6 && fabs(st.tx_pps - 50000) < 1e-6,
           "status: rx %.0f packets/s, tx %.0f packets/s", st.rx_pps, st.tx_pps);
        monitor_tenant_free(f.mt);
}

static void test_transfer_and_live(void)
{
        struct monitor_limits l = {.cpu_millicpus = 1000, .transfer_limit = 1000};
        l.rules[QUOTA_CPU] = rule(5000, 4000, 0);
        l.rules[QUOTA_TRANSFER] = rule(8000, 7000, 0);
        struct fake f;
        fake_init(&f, &l, 0);
        struct monitor_event ev[MONITOR_MAX_EVENTS];
        struct monitor_sample s = {.now_ms = 1, .has_transfer = true, .transfer_used = 850};
        size_t n = monitor_feed(f.mt, &s, ev);
        ok(n == 1 && ev[0].kind == MONITOR_RAISED && ev[0].quota == QUOTA_TRANSFER &&
               ev[0].used == 850 && ev[0].limit == 1000,
           "transfer at 85%% of the period's volume: raised");
        step(&f, 200, 0);
        step(&f, 200, 0.9);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && f.ev[0].quota == QUOTA_CPU, "cpu raised");
        l.cpu_millicpus = 0; /* tenantctl set NAME cpu.max=max */
        monitor_tenant_set_limits(f.mt, &l);
        step(&f, 200, 0.9);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_CLEARED && f.ev[0].quota == QUOTA_CPU,
           "the limit removed live: the raised cpu alert clears");
        l.cpu_millicpus = 2000;
        monitor_tenant_set_limits(f.mt, &l);
        step(&f, 200, 0.9);
        ok(f.n == 0, "a limit of 2 CPUs: 0.9 CPU is 45%%, nothing raised");
        step(&f, 200, 1.2);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && fabs(f.ev[0].limit - 2.0) < 1e-9,
           "1.2 of 2 CPUs: raised against the new limit");
        monitor_tenant_free(f.mt);
}

/* disk: the fullest volume, a level with hysteresis; the event names the volume. */
static void test_disk(void)
{
        struct manifest m = {0};
        struct volume_spec vs = {.name = (char *)"data", .size = 1000};
        m.volumes = &vs;
        m.volumes_n = 1;
        struct monitor_limits l;
        monitor_limits_from_manifest(&m, &l);
        ok(l.disk && l.rules[QUOTA_DISK].set && l.rules[QUOTA_DISK].threshold_bp == 9000 &&
               l.rules[QUOTA_DISK].clear_bp == 8000,
           "disk: 90%% clear 80%% by default for a tenant with volumes");
        struct monitor_tenant *mt = monitor_tenant_new("mo-disk", &l, 0);
        struct monitor_event ev[MONITOR_MAX_EVENTS];
        struct monitor_sample s = {
            .now_ms = 1, .has_disk = true, .disk_used = 500, .disk_size = 1000};
        snprintf(s.disk_volume, sizeof(s.disk_volume), "data");
        ok(monitor_feed(mt, &s, ev) == 0, "50%% full: nothing");
        s.now_ms = 2;
        s.disk_used = 950;
        size_t n = monitor_feed(mt, &s, ev);
        ok(n == 1 && ev[0].kind == MONITOR_RAISED && ev[0].quota == QUOTA_DISK &&
               ev[0].used == 950 && ev[0].limit == 1000 && strcmp(ev[0].volume, "data") == 0,
           "95%% full: raised, naming the volume");
        s.now_ms = 3;
        s.disk_used = 850;
        ok(monitor_feed(mt, &s, ev) == 0, "85%%: between the levels, still raised");
        struct monitor_status st;
        monitor_status(mt, &st);
        ok(st.have_disk && st.disk_used == 850 && st.disk_size == 1000 && st.raised[QUOTA_DISK],
           "status: the fullest volume's use, raised");
        s.now_ms = 4;
        s.disk_used = 700;
        n = monitor_feed(mt, &s, ev);
        ok(n == 1 && ev[0].kind == MONITOR_CLEARED && ev[0].quota == QUOTA_DISK, "70%%: cleared");
        monitor_tenant_free(mt);
        m.volumes_n = 0;
        monitor_limits_from_manifest(&m, &l);
        ok(!l.disk, "no volumes: no disk quota");
        is_str(quota_name(QUOTA_DISK), "disk", "the quota's name");
}

static void test_defaults(void)
{
        struct manifest m = {0};
        m.cpu.max_millicpus = 1500;
        m.memory.max = 1 << 30;
        m.pids.max = 512;
        m.network.mode = NET_PRIVATE;
        m.network.egress_rate = 1000000;
        m.network.transfer.period = TRANSFER_MONTHLY;
        m.network.transfer.limit = 1ULL << 30;
        struct monitor_limits l;
        monitor_limits_from_manifest(&m, &l);
        ok(!l.rules[QUOTA_CPU].set && !l.rules[QUOTA_MEMORY].set && !l.rules[QUOTA_EGRESS].set,
           "no default rule for cpu, memory or network");
        ok(l.rules[QUOTA_PIDS].set && l.rules[QUOTA_PIDS].threshold_bp == 9000 &&
               l.rules[QUOTA_PIDS].clear_bp == 8000 && l.rules[QUOTA_PIDS].for_ms == 0,
           "pids: 90%% clear 80%% by default");
        ok(l.rules[QUOTA_TRANSFER].set && l.rules[QUOTA_TRANSFER].threshold_bp == 9000,
           "transfer: 90%% by default");
        m.alerts.cpu = rule(9000, 8000, 60000);
        m.alerts.pids = rule(5000, 4000, 0);
        monitor_limits_from_manifest(&m, &l);
        ok(l.rules[QUOTA_CPU].for_ms == 60000 && l.rules[QUOTA_PIDS].threshold_bp == 5000,
           "the manifest's rules win");
        ok(l.cpu_millicpus == 1500 && l.egress_rate == 1000000 && l.transfer_limit == 1ULL << 30,
           "limits from the manifest");

        struct fake f;
        fake_init(&f, &l, 0);
        f.cg.pids_current = 10;
        f.cg.pids_max = MONITOR_UNLIMITED; /* "max" in the cgroup: the manifest's 512 */
        step(&f, 0, 0);
        f.cg.pids_current = 300;
        step(&f, 200, 0);
        ok(f.n == 1 && f.ev[0].kind == MONITOR_RAISED && f.ev[0].quota == QUOTA_PIDS &&
               f.ev[0].limit == 512,
           "a cgroup without a limit falls back to the manifest's (300 of 512)");
        monitor_tenant_free(f.mt);
        is_str(quota_name(QUOTA_INGRESS), "ingress", "quota names");
}

int main(void)
{
        test_raise_and_clear();
        test_dip_restarts_duration();
        test_reminders();
        test_one_shot();
        test_one_shot_rate();
        test_one_shot_end();
        test_disk();
        test_cpu_reset();
        test_levels_and_network();
        test_transfer_and_live();
        test_defaults();
        return tap_done();
}
