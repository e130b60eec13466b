/* monitor.c — utilisation and alert rules per tenant (see monitor.h). Pure. */
#include "monitor/monitor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values this large are "no limit" however the kernel spells it (v1 memory reports
 * PAGE_COUNTER_MAX pages, about 2^63). */
#define HUGE_LIMIT (1ULL << 62)

struct quota_state {
        bool active;            /* has a limit and a rule */
        struct alert_rule rule; /* effective */
        bool above;             /* at or above the threshold since above_since_ms */
        uint64_t above_since_ms;
        bool raised;
        uint64_t raised_at_ms;
        uint64_t last_notice_ms; /* raised or last reminder */
        double usage;            /* NAN when unknown */
        double used, limit;
        char volume[MANIFEST_NAME_MAX + 1]; /* disk: the fullest volume */
};

/* One kind of one-shot event (OOM kills, pids-limit hits): the first after a quiet
 * spell goes out at once, later ones at most every MONITOR_ONE_SHOT_MS, summed. */
struct burst {
        bool sent; /* a line went out at sent_ms */
        uint64_t sent_ms;
        uint64_t held;      /* events not sent yet */
        uint64_t total;     /* the counter's last value */
        double used, limit; /* at the last sample that had them */
};

struct monitor_tenant {
        char name[MANIFEST_NAME_MAX + 1];
        struct monitor_limits limits;
        uint64_t reminder_ms;
        struct quota_state q[QUOTA__N];

        /* The baselines the next sample's rates and one-shot counts start from. */
        bool have_cg, have_net;
        struct cgroup_sample prev_cg;
        uint64_t prev_cg_ms;
        uint64_t prev_rx, prev_tx, prev_net_ms;
        uint64_t prev_rxp, prev_txp;
        uint64_t last_ms;
        struct monitor_status st;
        struct burst oom, pids; /* the rate limit of the OOM kill and pids-limit lines */
};

static const char *const quota_names[QUOTA__N] = {"cpu",     "memory",   "pids", "egress",
                                                  "ingress", "transfer", "disk"};

const char *quota_name(enum quota_kind q)
{
        return (unsigned)q < QUOTA__N ? quota_names[q] : "?";
}

static struct alert_rule default_rule(uint32_t threshold_bp)
{
        return (struct alert_rule){
            .set = true, .threshold_bp = threshold_bp, .clear_bp = threshold_bp - 1000};
}

void monitor_limits_from_manifest(const struct manifest *m, struct monitor_limits *ret)
{
        struct monitor_limits l = {
            .cpu_millicpus = m->cpu.max_millicpus,
            .memory_max = m->memory.max,
            .pids_max = m->pids.max,
        };
        if (m->network.mode == NET_PRIVATE) {
                l.egress_rate = m->network.egress_rate;
                l.ingress_rate = m->network.ingress_rate;
                if (m->network.transfer.period != TRANSFER_NONE)
                        l.transfer_limit = m->network.transfer.limit;
        }
        l.rules[QUOTA_CPU] = m->alerts.cpu;
        l.rules[QUOTA_MEMORY] = m->alerts.memory;
        l.rules[QUOTA_PIDS] = m->alerts.pids.set ? m->alerts.pids : default_rule(9000);
        l.rules[QUOTA_EGRESS] = m->alerts.network;
        l.rules[QUOTA_INGRESS] = m->alerts.network;
        l.rules[QUOTA_TRANSFER] = m->alerts.transfer.set ? m->alerts.transfer : default_rule(9000);
        l.disk = m->volumes_n > 0;
        l.rules[QUOTA_DISK] = m->alerts.disk.set ? m->alerts.disk : default_rule(9000);
        *ret = l;
}

static bool limit_set(const struct monitor_limits *l, enum quota_kind q)
{
        switch (q) {
        case QUOTA_CPU:
                return l->cpu_millicpus > 0;
        case QUOTA_MEMORY:
                return true; /* the sample carries the cgroup's own limit */
        case QUOTA_PIDS:
                return true;
        case QUOTA_EGRESS:
                return l->egress_rate > 0;
        case QUOTA_INGRESS:
                return l->ingress_rate > 0;
        case QUOTA_TRANSFER:
                return l->transfer_limit > 0;
        case QUOTA_DISK:
                return l->disk;
        default:
                return false;
        }
}

static void apply_limits(struct monitor_tenant *mt, const struct monitor_limits *l)
{
        mt->limits = *l;
        for (int i = 0; i < QUOTA__N; i++) {
                struct quota_state *q = &mt->q[i];
                q->rule = l->rules[i];
                q->active = q->rule.set && q->rule.threshold_bp > 0 && limit_set(l, i);
                if (!q->active)
                        q->above = false;
        }
}

struct monitor_tenant *monitor_tenant_new(const char *name, const struct monitor_limits *l,
                                          uint64_t reminder_ms)
{
        struct monitor_tenant *mt = calloc(1, sizeof(*mt));
        if (!mt)
                return NULL;
        snprintf(mt->name, sizeof(mt->name), "%s", name);
        mt->reminder_ms = reminder_ms;
        for (int i = 0; i < QUOTA__N; i++) {
                mt->q[i].usage = NAN;
                mt->st.usage[i] = NAN;
        }
        mt->st.cpu_fraction = NAN;
        mt->oom.used = mt->oom.limit = mt->pids.used = mt->pids.limit = NAN;
        apply_limits(mt, l);
        return mt;
}

void monitor_tenant_free(struct monitor_tenant *mt)
{
        free(mt);
}

void monitor_tenant_fresh(struct monitor_tenant *mt)
{
        if (mt->have_cg)
                return;
        mt->have_cg = true;
        memset(&mt->prev_cg, 0, sizeof(mt->prev_cg));
        mt->prev_cg.valid = CGS_OOM | CGS_PIDS_EVENTS;
}

void monitor_tenant_set_limits(struct monitor_tenant *mt, const struct monitor_limits *l)
{
        apply_limits(mt, l);
}

static struct monitor_event *new_event(struct monitor_tenant *mt, struct monitor_event *out,
                                       size_t *n, enum monitor_event_kind kind,
                                       enum quota_kind quota)
{
        struct monitor_event *e = &out[(*n)++];
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->quota = quota;
        e->usage = NAN;
        e->used = NAN;
        e->limit = NAN;
        e->threshold = NAN;
        memcpy(e->tenant, mt->name, sizeof(e->tenant));
        return e;
}

static void fill_values(struct monitor_event *e, const struct quota_state *q)
{
        e->usage = q->usage;
        e->used = q->used;
        e->limit = q->limit;
        e->threshold = q->rule.threshold_bp / 10000.0;
        memcpy(e->volume, q->volume, sizeof(e->volume));
}

/* One quota's rule at time `now`; `since` is when the value started to hold (the start
 * of the interval for rates, `now` for levels). */
static void evaluate(struct monitor_tenant *mt, enum quota_kind k, uint64_t now, uint64_t since,
                     struct monitor_event *out, size_t *n)
{
        struct quota_state *q = &mt->q[k];
        if (!q->active) {
                if (q->raised) {
                        struct monitor_event *e = new_event(mt, out, n, MONITOR_CLEARED, k);
                        fill_values(e, q);
                        e->for_ms = now - q->raised_at_ms;
                        q->raised = false;
                }
                return;
        }
        if (isnan(q->usage))
                return;
        double bp = q->usage * 10000.0;
        if (q->raised) {
                if (bp < q->rule.clear_bp) {
                        struct monitor_event *e = new_event(mt, out, n, MONITOR_CLEARED, k);
                        fill_values(e, q);
                        e->for_ms = now - q->raised_at_ms;
                        q->raised = false;
                        q->above = false;
                } else if (mt->reminder_ms && now - q->last_notice_ms >= mt->reminder_ms) {
                        struct monitor_event *e = new_event(mt, out, n, MONITOR_REMINDER, k);
                        fill_values(e, q);
                        e->for_ms = now - q->above_since_ms;
                        q->last_notice_ms = now;
                }
                return;
        }
        if (bp < q->rule.threshold_bp) {
                q->above = false;
                return;
        }
        if (!q->above) {
                q->above = true;
                q->above_since_ms = since;
        }
        if (now - q->above_since_ms >= q->rule.for_ms) {
                struct monitor_event *e = new_event(mt, out, n, MONITOR_RAISED, k);
                fill_values(e, q);
                e->for_ms = now - q->above_since_ms;
                q->raised = true;
                q->raised_at_ms = now;
                q->last_notice_ms = now;
        }
}

static void set_level(struct quota_state *q, uint64_t current, uint64_t max)
{
        if (max == 0 || max >= HUGE_LIMIT || max == MONITOR_UNLIMITED) {
                q->usage = NAN;
                q->used = (double)current;
                q->limit = NAN;
                return;
        }
        q->used = (double)current;
        q->limit = (double)max;
        q->usage = (double)current / (double)max;
}

/* A counter's increase; a decrease means the cgroup or link was recreated. */
static bool delta(uint64_t prev, uint64_t cur, uint64_t *ret)
{
        if (cur < prev)
                return false;
        *ret = cur - prev;
        return true;
}

/* The event for what `b` holds back, when it may go out at `now` (or `force`). */
static void burst_emit(struct monitor_tenant *mt, struct burst *b, uint64_t now, bool force,
                       enum monitor_event_kind kind, enum quota_kind quota,
                       struct monitor_event *out, size_t *n)
{
        if (!b->held || (!force && b->sent && now - b->sent_ms < MONITOR_ONE_SHOT_MS))
                return;
        struct monitor_event *e = new_event(mt, out, n, kind, quota);
        e->count = b->held;
        e->total = b->total;
        e->used = b->used;
        e->limit = b->limit;
        b->held = 0;
        b->sent = true;
        b->sent_ms = now;
}

/* Adds a counter's rise to `b`; `cur_valid`: this sample has the counter (and the
 * previous one too, for a rise). */
static uint64_t burst_count(struct burst *b, bool cur_valid, bool prev_valid, uint64_t prev,
                            uint64_t cur, bool level_valid, uint64_t used, uint64_t max)
{
        uint64_t d = 0;
        if (!cur_valid)
                return 0;
        if (!prev_valid || !delta(prev, cur, &d))
                d = 0;
        /* A microVM's counts come from its guest: saturate rather than wrap. */
        b->held = d > UINT64_MAX - b->held ? UINT64_MAX : b->held + d;
        b->total = cur;
        if (level_valid) {
                b->used = (double)used;
                b->limit = max < HUGE_LIMIT ? (double)max : NAN;
        }
        return d;
}

static void one_shot(struct monitor_tenant *mt, const struct monitor_sample *s,
                     struct monitor_event *out, size_t *n)
{
        if (s->has_cgroup && mt->have_cg) {
                const struct cgroup_sample *c = &s->cg, *p = &mt->prev_cg;
                mt->st.oom_kills += burst_count(&mt->oom, c->valid & CGS_OOM, p->valid & CGS_OOM,
                                                p->oom_kills, c->oom_kills, c->valid & CGS_MEMORY,
                                                c->memory_current, c->memory_max);
                mt->st.pids_limit_hits +=
                    burst_count(&mt->pids, c->valid & CGS_PIDS_EVENTS, p->valid & CGS_PIDS_EVENTS,
                                p->pids_max_events, c->pids_max_events, c->valid & CGS_PIDS,
                                c->pids_current, c->pids_max);
        }
        burst_emit(mt, &mt->oom, s->now_ms, false, MONITOR_OOM_KILL, QUOTA_MEMORY, out, n);
        burst_emit(mt, &mt->pids, s->now_ms, false, MONITOR_PIDS_LIMIT, QUOTA_PIDS, out, n);
}

/* Computes every quota's utilisation from this sample (and the previous one for
 * rates). Returns, per quota, whether it has a fresh value. */
static void measure(struct monitor_tenant *mt, const struct monitor_sample *s, bool fresh[QUOTA__N])
{
        const struct monitor_limits *l = &mt->limits;
        struct monitor_status *st = &mt->st;
        const struct cgroup_sample *c = &s->cg, *p = mt->have_cg ? &mt->prev_cg : NULL;
        uint64_t dt = s->now_ms - mt->prev_cg_ms;
        uint64_t d;

        if (s->has_cgroup && (c->valid & CGS_CPU) && p && (p->valid & CGS_CPU) && dt > 0 &&
            delta(p->cpu_usage_ns, c->cpu_usage_ns, &d)) {
                struct quota_state *q = &mt->q[QUOTA_CPU];
                double cpus = (double)d / ((double)dt * 1e6);
                q->used = cpus;
                q->limit = l->cpu_millicpus ? l->cpu_millicpus / 1000.0 : NAN;
                q->usage = l->cpu_millicpus ? cpus / q->limit : NAN;
                st->have_cpu = true;
                st->cpu_used = cpus;
                st->cpu_fraction = q->usage;
                st->cpu_throttled_fraction = 0;
                if ((c->valid & CGS_THROTTLE) && (p->valid & CGS_THROTTLE) &&
                    delta(p->cpu_throttled_ns, c->cpu_throttled_ns, &d))
                        st->cpu_throttled_fraction = (double)d / ((double)dt * 1e6);
                fresh[QUOTA_CPU] = true;
        }
        if (s->has_cgroup && (c->valid & CGS_THROTTLE)) {
                st->cpu_throttled_ns = c->cpu_throttled_ns;
                st->cpu_nr_throttled = c->cpu_nr_throttled;
        }
        if (s->has_cgroup && (c->valid & CGS_MEMORY)) {
                uint64_t max = c->memory_max < HUGE_LIMIT ? c->memory_max : l->memory_max;
                set_level(&mt->q[QUOTA_MEMORY], c->memory_current, max);
                st->have_memory = true;
                st->memory_current = c->memory_current;
                st->memory_max = max >= HUGE_LIMIT ? MONITOR_UNLIMITED : max;
                fresh[QUOTA_MEMORY] = true;
        }
        if (s->has_cgroup && (c->valid & CGS_PIDS)) {
                uint64_t max = c->pids_max < HUGE_LIMIT ? c->pids_max : l->pids_max;
                set_level(&mt->q[QUOTA_PIDS], c->pids_current, max);
                st->have_pids = true;
                st->pids_current = c->pids_current;
                st->pids_max = max >= HUGE_LIMIT ? MONITOR_UNLIMITED : max;
                fresh[QUOTA_PIDS] = true;
        }
        dt = s->now_ms - mt->prev_net_ms;
        if (s->has_net && mt->have_net && dt > 0) {
                uint64_t drx, dtx;
                if (delta(mt->prev_rx, s->net_rx_bytes, &drx) &&
                    delta(mt->prev_tx, s->net_tx_bytes, &dtx)) {
                        double rx = (double)drx * 8000.0 / (double)dt;
                        double tx = (double)dtx * 8000.0 / (double)dt;
                        struct quota_state *eg = &mt->q[QUOTA_EGRESS], *in = &mt->q[QUOTA_INGRESS];
                        eg->used = rx;
                        eg->limit = l->egress_rate ? (double)l->egress_rate : NAN;
                        eg->usage = l->egress_rate ? rx / (double)l->egress_rate : NAN;
                        in->used = tx;
                        in->limit = l->ingress_rate ? (double)l->ingress_rate : NAN;
                        in->usage = l->ingress_rate ? tx / (double)l->ingress_rate : NAN;
                        st->have_net = true;
                        st->rx_bps = rx;
                        st->tx_bps = tx;
                        uint64_t drxp, dtxp;
                        if (delta(mt->prev_rxp, s->net_rx_packets, &drxp) &&
                            delta(mt->prev_txp, s->net_tx_packets, &dtxp)) {
                                st->rx_pps = (double)drxp * 1000.0 / (double)dt;
                                st->tx_pps = (double)dtxp * 1000.0 / (double)dt;
                        }
                        fresh[QUOTA_EGRESS] = fresh[QUOTA_INGRESS] = true;
                }
        }
        if (s->has_transfer) {
                set_level(&mt->q[QUOTA_TRANSFER], s->transfer_used,
                          l->transfer_limit ? l->transfer_limit : MONITOR_UNLIMITED);
                st->have_transfer = true;
                st->transfer_used = s->transfer_used;
                st->transfer_limit = l->transfer_limit;
                fresh[QUOTA_TRANSFER] = true;
        }
        if (s->has_disk) {
                struct quota_state *q = &mt->q[QUOTA_DISK];
                set_level(q, s->disk_used, s->disk_size ? s->disk_size : MONITOR_UNLIMITED);
                memcpy(q->volume, s->disk_volume, sizeof(q->volume));
                q->volume[sizeof(q->volume) - 1] = '\0';
                st->have_disk = true;
                st->disk_used = s->disk_used;
                st->disk_size = s->disk_size;
                fresh[QUOTA_DISK] = true;
        }
}

size_t monitor_feed(struct monitor_tenant *mt, const struct monitor_sample *s,
                    struct monitor_event out[MONITOR_MAX_EVENTS])
{
        size_t n = 0;
        if (s->now_ms < mt->last_ms)
                return 0;
        bool fresh[QUOTA__N] = {false};
        measure(mt, s, fresh);
        one_shot(mt, s, out, &n);
        for (int k = 0; k < QUOTA__N; k++) {
                /* A rate's value is the average since the previous sample. */
                uint64_t since = s->now_ms;
                if (k == QUOTA_CPU)
                        since = mt->prev_cg_ms;
                else if (k == QUOTA_EGRESS || k == QUOTA_INGRESS)
                        since = mt->prev_net_ms;
                if (fresh[k] || !mt->q[k].active)
                        evaluate(mt, k, s->now_ms, since, out, &n);
                mt->st.usage[k] = mt->q[k].usage;
                mt->st.raised[k] = mt->q[k].raised;
        }
        /* A sample missing a part keeps the older baseline for that part. */
        if (s->has_cgroup) {
                mt->have_cg = true;
                mt->prev_cg = s->cg;
                mt->prev_cg_ms = s->now_ms;
        }
        if (s->has_net) {
                mt->have_net = true;
                mt->prev_rx = s->net_rx_bytes;
                mt->prev_tx = s->net_tx_bytes;
                mt->prev_rxp = s->net_rx_packets;
                mt->prev_txp = s->net_tx_packets;
                mt->prev_net_ms = s->now_ms;
        }
        mt->last_ms = s->now_ms;
        mt->st.sample_ms = s->now_ms;
        return n;
}

size_t monitor_flush(struct monitor_tenant *mt, uint64_t now_ms,
                     struct monitor_event out[MONITOR_MAX_EVENTS])
{
        size_t n = 0;
        burst_emit(mt, &mt->oom, now_ms, true, MONITOR_OOM_KILL, QUOTA_MEMORY, out, &n);
        burst_emit(mt, &mt->pids, now_ms, true, MONITOR_PIDS_LIMIT, QUOTA_PIDS, out, &n);
        return n;
}

void monitor_status(const struct monitor_tenant *mt, struct monitor_status *ret)
{
        *ret = mt->st;
}
