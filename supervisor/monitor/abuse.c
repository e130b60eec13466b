/* abuse.c — abuse alerts and on_abuse actions from network.limits' counters (see
 * abuse.h). Pure. */
#include "monitor/abuse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "monitor/alert.h"

static const char *const kind_names[ABUSE_KIND__N] = {
    [ABUSE_KIND_CONNS] = "conns", [ABUSE_KIND_NEW_CONNS] = "new_conns",
    [ABUSE_KIND_PPS] = "pps",     [ABUSE_KIND_PPS_IN] = "pps_in",
    [ABUSE_KIND_SMTP] = "smtp",   [ABUSE_KIND_SCAN] = "scan",
    [ABUSE_KIND_FLOOD] = "flood",
};

/* Which counter each kind reads. */
static const enum net_abuse_counter counter_of[ABUSE_KIND__N] = {
    [ABUSE_KIND_CONNS] = NET_ABUSE_CONNS, [ABUSE_KIND_NEW_CONNS] = NET_ABUSE_NEW_CONNS,
    [ABUSE_KIND_PPS] = NET_ABUSE_PPS_OUT, [ABUSE_KIND_PPS_IN] = NET_ABUSE_PPS_IN,
    [ABUSE_KIND_SMTP] = NET_ABUSE_SMTP,   [ABUSE_KIND_SCAN] = NET_ABUSE_SCAN,
    [ABUSE_KIND_FLOOD] = NET_ABUSE_FLOOD,
};

const char *abuse_kind_name(enum abuse_kind k)
{
        return (unsigned)k < ABUSE_KIND__N ? kind_names[k] : "?";
}

void abuse_config_from_manifest(const struct manifest *m, struct abuse_config *ret)
{
        const typeof(m->network.limits) *l = &m->network.limits;
        *ret = (struct abuse_config){
            .action = l->on_abuse,
            .throttle_rate = l->throttle_rate,
            .action_ms = l->on_abuse == ABUSE_CUT ? l->cut_ms : ABUSE_THROTTLE_MS,
            .clear_ms = ABUSE_DEFAULT_CLEAR_MS,
            .reminder_ms = ABUSE_DEFAULT_REMINDER_MS,
        };
}

struct kind_state {
        bool have;     /* a baseline */
        uint64_t prev; /* the counter's last value */
        bool raised;
        uint64_t raised_at_ms, last_hit_ms, last_notice_ms;
        uint64_t pending; /* hits since the last line */
};

struct abuse_monitor {
        char name[MANIFEST_NAME_MAX + 1];
        struct abuse_config cfg;
        struct kind_state k[ABUSE_KIND__N];
        uint64_t last_ms;
        uint64_t applied_at_ms;
        struct abuse_status st;
};

struct abuse_monitor *abuse_monitor_new(const char *name, const struct abuse_config *cfg,
                                        bool fresh)
{
        struct abuse_monitor *am = calloc(1, sizeof(*am));
        if (!am)
                return NULL;
        snprintf(am->name, sizeof(am->name), "%s", name);
        am->cfg = *cfg;
        for (int i = 0; i < ABUSE_KIND__N; i++)
                am->k[i].have = fresh; /* prev 0 */
        return am;
}

void abuse_monitor_free(struct abuse_monitor *am)
{
        free(am);
}

static struct abuse_event *new_event(const struct abuse_monitor *am, struct abuse_event *out,
                                     size_t *n, enum abuse_event_kind kind, enum abuse_kind what)
{
        struct abuse_event *e = &out[(*n)++];
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->what = what;
        e->action = am->cfg.action;
        e->rate = am->cfg.action == ABUSE_THROTTLE ? am->cfg.throttle_rate : 0;
        memcpy(e->tenant, am->name, sizeof(e->tenant));
        return e;
}

/* One kind's rule, given the hits d of this sample. */
static void evaluate(struct abuse_monitor *am, enum abuse_kind k, uint64_t now, uint64_t d,
                     struct abuse_event *out, size_t *n)
{
        struct kind_state *s = &am->k[k];
        am->st.total[k] += d;
        if (d > 0) {
                s->last_hit_ms = now;
                if (!s->raised) {
                        struct abuse_event *e = new_event(am, out, n, ABUSE_RAISED, k);
                        e->count = d;
                        e->total = am->st.total[k];
                        s->raised = true;
                        s->raised_at_ms = s->last_notice_ms = now;
                        s->pending = 0;
                        return;
                }
                s->pending += d;
                if (am->cfg.reminder_ms && now - s->last_notice_ms >= am->cfg.reminder_ms) {
                        struct abuse_event *e = new_event(am, out, n, ABUSE_REMINDER, k);
                        e->count = s->pending;
                        e->total = am->st.total[k];
                        e->for_ms = now - s->raised_at_ms;
                        s->last_notice_ms = now;
                        s->pending = 0;
                }
                return;
        }
        if (s->raised && now - s->last_hit_ms >= am->cfg.clear_ms) {
                struct abuse_event *e = new_event(am, out, n, ABUSE_CLEARED, k);
                e->count = s->pending;
                e->total = am->st.total[k];
                e->for_ms = now - s->raised_at_ms;
                s->raised = false;
                s->pending = 0;
        }
}

size_t abuse_feed(struct abuse_monitor *am, uint64_t now_ms, const struct net_abuse_counters *c,
                  struct abuse_event out[ABUSE_MAX_EVENTS])
{
        size_t n = 0;
        if (now_ms < am->last_ms)
                return 0;
        am->last_ms = now_ms;
        int trigger = -1;
        for (int k = 0; k < ABUSE_KIND__N; k++) {
                struct kind_state *s = &am->k[k];
                enum net_abuse_counter ci = counter_of[k];
                uint64_t d = 0;
                if (c && (c->present & (1U << ci))) {
                        uint64_t cur = c->packets[ci];
                        if (s->have)
                                d = cur >= s->prev ? cur - s->prev : cur;
                        s->have = true;
                        s->prev = cur;
                }
                evaluate(am, (enum abuse_kind)k, now_ms, d, out, &n);
                am->st.raised[k] = s->raised;
                if (d > 0 && k != ABUSE_KIND_PPS_IN && trigger < 0)
                        trigger = k;
        }
        if (c)
                am->st.have_sample = true;
        if (am->st.in_force && now_ms >= am->st.until_ms) {
                struct abuse_event *e = new_event(am, out, &n, ABUSE_LIFTED, ABUSE_KIND__N);
                e->for_ms = now_ms - am->applied_at_ms;
                am->st.in_force = false;
        } else if (!am->st.in_force && trigger >= 0 && am->cfg.action != ABUSE_ALERT) {
                struct abuse_event *e =
                    new_event(am, out, &n, ABUSE_APPLIED, (enum abuse_kind)trigger);
                e->action_ms = am->cfg.action_ms;
                am->st.in_force = true;
                am->applied_at_ms = now_ms;
                am->st.until_ms = now_ms + am->cfg.action_ms;
        }
        return n;
}

void abuse_status(const struct abuse_monitor *am, struct abuse_status *ret)
{
        *ret = am->st;
}

static const char *action_name(enum abuse_action a)
{
        return a == ABUSE_CUT ? "cut" : a == ABUSE_THROTTLE ? "throttle" : "alert";
}

static void kv_u64(char *line, size_t len, const char *key, uint64_t v)
{
        char b[32];
        snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
        alert_kv_append(line, len, key, b);
}

static void kv_secs(char *line, size_t len, const char *key, uint64_t ms)
{
        char b[32];
        snprintf(b, sizeof(b), "%llus", (unsigned long long)((ms + 500) / 1000));
        alert_kv_append(line, len, key, b);
}

size_t abuse_format(const struct abuse_event *ev, char *buf, size_t len)
{
        static const char *const names[] = {[ABUSE_RAISED] = "raised",
                                            [ABUSE_REMINDER] = "reminder",
                                            [ABUSE_CLEARED] = "cleared",
                                            [ABUSE_APPLIED] = "applied",
                                            [ABUSE_LIFTED] = "lifted"};
        char line[ALERT_LINE_MAX] = "";
        alert_kv_append(line, sizeof(line), "event", "abuse");
        alert_kv_append(line, sizeof(line), "alert",
                        (unsigned)ev->kind < ARRAY_SIZE(names) ? names[ev->kind] : "unknown");
        if ((unsigned)ev->what < ABUSE_KIND__N)
                alert_kv_append(line, sizeof(line), "kind", abuse_kind_name(ev->what));
        alert_kv_append(line, sizeof(line), "tenant", ev->tenant);
        switch (ev->kind) {
        case ABUSE_RAISED:
        case ABUSE_REMINDER:
        case ABUSE_CLEARED:
                kv_u64(line, sizeof(line), "count", ev->count);
                kv_u64(line, sizeof(line), "total", ev->total);
                if (ev->kind == ABUSE_REMINDER)
                        kv_secs(line, sizeof(line), "for", ev->for_ms);
                else if (ev->kind == ABUSE_CLEARED)
                        kv_secs(line, sizeof(line), "duration", ev->for_ms);
                else
                        alert_kv_append(line, sizeof(line), "action", action_name(ev->action));
                break;
        case ABUSE_APPLIED:
        case ABUSE_LIFTED:
                alert_kv_append(line, sizeof(line), "action", action_name(ev->action));
                if (ev->rate)
                        kv_u64(line, sizeof(line), "rate", ev->rate);
                if (ev->kind == ABUSE_APPLIED)
                        kv_secs(line, sizeof(line), "for", ev->action_ms);
                else
                        kv_secs(line, sizeof(line), "duration", ev->for_ms);
                break;
        }
        return (size_t)snprintf(buf, len, "%s", line);
}

int abuse_priority(const struct abuse_event *ev)
{
        return ev->kind == ABUSE_CLEARED || ev->kind == ABUSE_LIFTED ? LOG_NOTICE : LOG_WARNING;
}
