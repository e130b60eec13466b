/* monitor_glue.c — between tenantd's loop and the quota monitor (see monitor_glue.h).
 *
 * For every running tenant: its cgroups (opened, not created: the keeper made them),
 * a monitor (monitor.c) fed on the daemon's sampling timer, and for a private network
 * its host-side link, its transfer counter (transfer.c) and what an exceeded volume
 * did (throttle or cut, undone in a new period). Alerts go to syslog (alert.c) and to
 * the event stream. `set` applies quota changes to the running tenant: the new values
 * are written into a copy of the manifest's text (manifest_edit.c) and parsed, so a
 * live change is validated exactly as a manifest is; with --save that text replaces
 * the manifest file. */
#include "daemon/monitor_glue.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <syslog.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "monitor/abuse.h"
#include "monitor/alert.h"
#include "host/cgroup.h"
#include "daemon/daemon.h"
#include "daemon/keeper.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "lib/log.h"
#include "spec/manifest_edit.h"
#include "monitor/monitor.h"
#include "host/net.h"
#include "monitor/transfer.h"
#include "storage/volume.h"
#include "lib/trust.h"
#include "host/uidrange.h"
#include "proto/agent_proto.h"
#include "proto/runner_proto.h"

struct glue {
        struct tenant_cgroup *cg;
        struct monitor_tenant *mt;
        struct abuse_monitor *am; /* network.limits' counters, for a private network */
        struct abuse_status ast;
        bool have_conns, conns_warned;
        uint64_t conns; /* the host's conntrack entries of the tenant, at the last sample */
        bool has_net;
        struct net_tenant net;
        struct transfer_counter *tc;
        enum transfer_do applied; /* THROTTLE or CUT while in force, else NOTHING */
        struct monitor_status st;
        struct cgroup_sample last_cg; /* the last cgroup sample read */
        /* A microVM's guest: what its kernel did to the tenant's processes there
         * (monitor_glue_guest_limits), added to the host cgroup's counters. An adopted
         * microVM starts from the totals the last tenantd accepted (keeper.h,
         * KEEPER_GUEST_LIMITS), and its first sample, the monitor's baseline, adds those
         * (guest_base): a line that came before it is then counted, not absorbed. */
        uint64_t guest_oom, guest_pids;
        uint64_t base_oom, base_pids;
        bool guest_base;
        char *live_text;       /* the manifest text with live changes, or NULL */
        struct manifest *live; /* its parse; NULL without live changes */
};

static struct alert_sink *sink;

static struct alert_sink *get_sink(struct daemon *d)
{
        if (!sink) {
                struct alert_sink_config c = {.socket_path = d->cfg.syslog_socket,
                                              .facility = d->cfg.syslog_facility,
                                              .ident = d->cfg.syslog_ident};
                _cleanup_err_ struct tn_err *err = NULL;
                if (alert_sink_open(&c, &sink, &err) < 0)
                        log_error("alerts: %s", tn_err_msg(err));
        }
        return sink;
}

void monitor_glue_syslog(struct daemon *d, int priority, const char *line)
{
        struct alert_sink *s = get_sink(d);
        if (s)
                (void)alert_sink_send(s, priority, line);
}

static const struct manifest *effective(const struct tenant *t, const struct glue *g)
{
        return g && g->live ? g->live : t->m;
}

static void emit(struct daemon *d, const struct tenant *t, const struct monitor_event *ev)
{
        (void)t; /* the line names the tenant */
        char line[ALERT_LINE_MAX];
        alert_format(ev, line, sizeof(line));
        struct alert_sink *s = get_sink(d);
        if (s)
                (void)alert_sink_send(s, alert_priority(ev), line);
        daemon_event(d, "alert", NULL, "%s", line);
}

void monitor_glue_seccomp_denied(struct daemon *d, struct tenant *t, const char *syscall,
                                 uint64_t count)
{
        char line[ALERT_LINE_MAX];
        snprintf(line, sizeof(line), "event=seccomp-denied tenant=%s syscall=%s count=%" PRIu64,
                 t->name, syscall, count);
        struct alert_sink *s = get_sink(d);
        if (s)
                (void)alert_sink_send(s, LOG_WARNING, line);
        daemon_event(d, "seccomp-denied", t, "syscall=%s count=%" PRIu64, syscall, count);
}

static void transfer_act(struct daemon *d, struct tenant *t, struct glue *g, enum transfer_do what)
{
        _cleanup_err_ struct tn_err *err = NULL;
        const struct manifest *m = effective(t, g);
        int r = 0;
        switch (what) {
        case TRANSFER_DO_THROTTLE:
                r = net_set_rates(&g->net, t->init_pid, m->network.transfer.throttle_rate,
                                  m->network.transfer.throttle_rate, &err);
                g->applied = what;
                break;
        case TRANSFER_DO_CUT:
                r = net_cut(&g->net, true, &err);
                g->applied = what;
                break;
        case TRANSFER_DO_RESTORE:
                if (g->applied == TRANSFER_DO_THROTTLE)
                        r = net_set_rates(&g->net, t->init_pid, m->network.egress_rate,
                                          m->network.ingress_rate, &err);
                else if (g->applied == TRANSFER_DO_CUT)
                        r = net_cut(&g->net, false, &err);
                g->applied = TRANSFER_DO_NOTHING;
                break;
        default:
                return;
        }
        if (r < 0)
                event_with(d, "transfer-action-failed", t, "error", tn_err_msg(err));
}

/* on_abuse: the action abuse.c asked for, applied or lifted. A transfer volume's own
 * action in force wins: lifting a throttle goes back to it, and a transfer cut stays. */
static void abuse_act(struct daemon *d, struct tenant *t, struct glue *g,
                      const struct abuse_event *ev)
{
        _cleanup_err_ struct tn_err *err = NULL;
        const struct manifest *m = effective(t, g);
        bool apply = ev->kind == ABUSE_APPLIED;
        int r = 0;
        if (ev->action == ABUSE_CUT && (apply || g->applied != TRANSFER_DO_CUT))
                r = net_cut(&g->net, apply, &err);
        else if (ev->action == ABUSE_THROTTLE) {
                uint64_t eg = m->network.egress_rate, in = m->network.ingress_rate;
                if (apply)
                        eg = in = ev->rate;
                else if (g->applied == TRANSFER_DO_THROTTLE)
                        eg = in = m->network.transfer.throttle_rate;
                r = net_set_rates(&g->net, t->init_pid, eg, in, &err);
        }
        if (r < 0)
                event_with(d, "abuse-action-failed", t, "error", tn_err_msg(err));
}

static void abuse_sample(struct daemon *d, struct tenant *t, struct glue *g, uint64_t now)
{
        struct net_abuse_counters c;
        _cleanup_err_ struct tn_err *err = NULL;
        bool have = net_abuse_counters(t->name, &c, &err) == 0;
        struct abuse_event evs[ABUSE_MAX_EVENTS];
        size_t n = abuse_feed(g->am, now, have ? &c : NULL, evs);
        struct alert_sink *s = n ? get_sink(d) : NULL;
        for (size_t i = 0; i < n; i++) {
                char line[ALERT_LINE_MAX];
                abuse_format(&evs[i], line, sizeof(line));
                if (s)
                        (void)alert_sink_send(s, abuse_priority(&evs[i]), line);
                /* The event's own "event=abuse" heads the line there. */
                const char *rest = line;
                if (strncmp(rest, "event=abuse ", 12) == 0)
                        rest += 12;
                daemon_event(d, "abuse", NULL, "%s", rest);
                if (evs[i].kind == ABUSE_APPLIED || evs[i].kind == ABUSE_LIFTED)
                        abuse_act(d, t, g, &evs[i]);
        }
        abuse_status(g->am, &g->ast);
}

void monitor_glue_attach(struct daemon *d, struct tenant *t)
{
        monitor_glue_detach(d, t);
        struct glue *g = calloc(1, sizeof(*g));
        if (!g)
                return;
        _cleanup_err_ struct tn_err *err = NULL;
        /* A microVM's runner moved QEMU and its virtiofsd into the tenant's cgroups. */
        if (tenant_cgroup_open(t->name, &g->cg, &err) < 0)
                log_warning("tenant=%s not monitored: %s", t->name, tn_err_msg(err));
        struct monitor_limits l;
        monitor_limits_from_manifest(t->m, &l);
        g->mt = monitor_tenant_new(t->name, &l, MONITOR_DEFAULT_REMINDER_MS);
        if (g->mt && !t->adopted)
                monitor_tenant_fresh(g->mt);
        if (t->adopted && t->m->isolation == ISOLATION_MICROVM &&
            keeper_guest_limits_load(d->cfg.state_dir, t->name, &g->base_oom, &g->base_pids) == 0) {
                g->guest_oom = g->base_oom;
                g->guest_pids = g->base_pids;
        }
        g->guest_base = t->adopted;
        if (t->m->network.mode == NET_PRIVATE && t->id_base >= d->cfg.uid_base) {
                uint32_t index = (t->id_base - d->cfg.uid_base) / UIDRANGE_SIZE;
                tn_err_free(TAKE_PTR(err));
                if (net_private_prepare(t->m, d->cfg.state_dir, index, &g->net, &err) == 0) {
                        g->has_net = true;
                        g->net.firewall = true;
                        g->net.tap = t->m->isolation == ISOLATION_MICROVM;
                        struct abuse_config ac;
                        abuse_config_from_manifest(t->m, &ac);
                        g->am = abuse_monitor_new(t->name, &ac, !t->adopted);
                } else {
                        log_warning("tenant=%s network not monitored: %s", t->name,
                                    tn_err_msg(err));
                }
        }
        if (g->has_net && t->m->network.transfer.period != TRANSFER_NONE) {
                struct transfer_config tc;
                transfer_config_from_manifest(t->m, &tc);
                char *warning = NULL;
                tn_err_free(TAKE_PTR(err));
                if (transfer_open(d->cfg.state_dir, t->name, &tc, time(NULL), &g->tc, &warning,
                                  &err) < 0)
                        log_error("tenant=%s transfer volume not counted: %s", t->name,
                                  tn_err_msg(err));
                if (warning) {
                        event_with(d, "transfer-reset", t, "reason", warning);
                        free(warning);
                }
                /* A tenant (re)started with its volume used up gets the action again. */
                if (g->tc && transfer_exceeded(g->tc)) {
                        enum transfer_do what = tc.action == TRANSFER_CUT ? TRANSFER_DO_CUT
                                                : tc.action == TRANSFER_THROTTLE
                                                    ? TRANSFER_DO_THROTTLE
                                                    : TRANSFER_DO_NOTHING;
                        transfer_act(d, t, g, what);
                }
        }
        t->monitor = g;
}

/* The OOM kills and pids-limit hits the rate limit held back (monitor.h): sent now, as
 * the tenant or our view of it ends, so none is lost. */
static void flush(struct daemon *d, struct tenant *t, struct glue *g, uint64_t now)
{
        if (!g->mt)
                return;
        struct monitor_event evs[MONITOR_MAX_EVENTS];
        size_t n = monitor_flush(g->mt, now, evs);
        for (size_t i = 0; i < n; i++)
                emit(d, t, &evs[i]);
}

void monitor_glue_detach(struct daemon *d, struct tenant *t)
{
        struct glue *g = t->monitor;
        if (!g)
                return;
        flush(d, t, g, mono_ms());
        if (g->tc)
                (void)transfer_save(g->tc, NULL);
        transfer_counter_free(g->tc);
        monitor_tenant_free(g->mt);
        abuse_monitor_free(g->am);
        tenant_cgroup_free(g->cg);
        free(g->live_text);
        manifest_free(g->live);
        free(g);
        t->monitor = NULL;
}

void monitor_glue_forget(struct daemon *d, struct tenant *t)
{
        monitor_glue_detach(d, t);
}

/* The fullest of the tenant's mounted volumes, by used / size. */
static void sample_disk(const struct tenant *t, const struct glue *g, struct monitor_sample *s)
{
        const struct manifest *m = effective(t, g);
        double fullest = -1;
        for (size_t i = 0; i < m->volumes_n; i++) {
                struct volume_usage u;
                if (volume_usage(t->name, m->volumes[i].name, &u) < 0 || u.size == 0)
                        continue;
                double f = (double)u.used / (double)u.size;
                if (f <= fullest)
                        continue;
                fullest = f;
                s->has_disk = true;
                s->disk_used = u.used;
                s->disk_size = u.size;
                snprintf(s->disk_volume, sizeof(s->disk_volume), "%s", m->volumes[i].name);
        }
}

void monitor_glue_guest_limits(struct daemon *d, struct tenant *t, uint64_t oom_kills,
                               uint64_t pids_max_hits)
{
        struct glue *g = t->monitor;
        if (!g || oom_kills < g->guest_oom || pids_max_hits < g->guest_pids)
                return;
        if (oom_kills == g->guest_oom && pids_max_hits == g->guest_pids)
                return;
        g->guest_oom = oom_kills;
        g->guest_pids = pids_max_hits;
        _cleanup_err_ struct tn_err *err = NULL;
        if (keeper_guest_limits_save(d->cfg.state_dir, t->name, oom_kills, pids_max_hits, &err) < 0)
                log_warning("tenant=%s the guest's totals not saved (a restarted tenantd would "
                            "count them again): %s",
                            t->name, tn_err_msg(err));
}

/* The host cgroup's counters of a microVM are QEMU's; its guest's are the tenant's. */
static void add_guest(struct cgroup_sample *c, uint64_t oom, uint64_t pids)
{
        if (!oom && !pids)
                return;
        c->valid |= CGS_OOM | CGS_PIDS_EVENTS;
        c->oom_kills += oom;
        c->pids_max_events += pids;
}

static void sample_one(struct daemon *d, struct tenant *t, struct glue *g, uint64_t now)
{
        struct monitor_sample s = {.now_ms = now};
        if (g->cg && tenant_cgroup_sample(g->cg, &s.cg, NULL) == 0) {
                s.has_cgroup = true;
                g->last_cg = s.cg;
                if (g->guest_base)
                        add_guest(&s.cg, g->base_oom, g->base_pids);
                else
                        add_guest(&s.cg, g->guest_oom, g->guest_pids);
                g->guest_base = false;
        }
        if (g->has_net) {
                struct net_link_stats ls;
                if (net_link_counters(g->net.host_if, 0, &ls, NULL) == 0) {
                        s.has_net = true;
                        s.net_rx_bytes = ls.rx_bytes;
                        s.net_tx_bytes = ls.tx_bytes;
                        s.net_rx_packets = ls.rx_packets;
                        s.net_tx_packets = ls.tx_packets;
                        if (g->tc) {
                                struct monitor_event ev;
                                enum transfer_do what =
                                    transfer_update(g->tc, ls.ifindex, ls.rx_bytes, ls.tx_bytes,
                                                    time(NULL), t->name, &ev);
                                if (what != TRANSFER_DO_NOTHING) {
                                        emit(d, t, &ev);
                                        transfer_act(d, t, g, what);
                                }
                        }
                }
        }
        if (g->tc) {
                s.has_transfer = true;
                s.transfer_used = transfer_used(g->tc);
                _cleanup_err_ struct tn_err *err = NULL;
                if (transfer_save_if_due(g->tc, now, TRANSFER_DEFAULT_SAVE_MS, &err) < 0)
                        log_warning("tenant=%s %s", t->name, tn_err_msg(err));
        }
        if (g->am)
                abuse_sample(d, t, g, now);
        sample_disk(t, g, &s);
        struct monitor_event evs[MONITOR_MAX_EVENTS];
        size_t n = g->mt ? monitor_feed(g->mt, &s, evs) : 0;
        for (size_t i = 0; i < n; i++)
                emit(d, t, &evs[i]);
        if (g->mt)
                monitor_status(g->mt, &g->st);
}

static bool sampled(const struct tenant *t)
{
        return t->monitor && (t->state == TENANT_RUNNING || t->state == TENANT_STOPPING);
}

/* The connections the conns cap counts, for status and top: every tenant with a network
 * of its own in one call, which reads the IPv6 table once for all of them (host/net.h).
 * A failed dump (an old kernel) is said once per tenant. */
static void sample_conns(struct daemon *d)
{
        size_t n = 0, i = 0;
        for (struct tenant *t = d->tenants; t; t = t->next)
                n += sampled(t) && ((struct glue *)t->monitor)->am;
        if (!n)
                return;
        _cleanup_free_ const struct net_tenant **ts =
            calloc(n, sizeof(*ts)); /* NOLINT(bugprone-sizeof-expression) */
        _cleanup_free_ struct glue **gs =
            calloc(n, sizeof(*gs)); /* NOLINT(bugprone-sizeof-expression) */
        _cleanup_free_ uint64_t *counts = calloc(n, sizeof(*counts));
        if (!ts || !gs || !counts)
                return;
        for (struct tenant *t = d->tenants; t && i < n; t = t->next) {
                struct glue *g = t->monitor;
                if (sampled(t) && g->am) {
                        gs[i] = g;
                        ts[i++] = &g->net;
                }
        }
        n = i; /* the same tenants as counted above */
        _cleanup_err_ struct tn_err *err = NULL;
        bool ok = net_conntrack_count_many(ts, n, counts, &err) == 0;
        for (i = 0; i < n; i++) {
                gs[i]->have_conns = ok;
                if (ok)
                        gs[i]->conns = counts[i];
                else if (!gs[i]->conns_warned) {
                        log_warning("tenant=%s connections not counted: %s", gs[i]->net.name,
                                    tn_err_msg(err));
                        gs[i]->conns_warned = true;
                }
        }
}

void monitor_glue_sample(struct daemon *d, uint64_t now_ms)
{
        for (struct tenant *t = d->tenants; t; t = t->next)
                if (sampled(t))
                        sample_one(d, t, t->monitor, now_ms);
        sample_conns(d);
}

void monitor_glue_final(struct daemon *d, struct tenant *t, uint64_t oom_kills,
                        uint64_t pids_limit_hits)
{
        struct glue *g = t->monitor;
        if (!g || !g->mt)
                return;
        /* A last sample with the final counters: the monitor reports what is new. */
        struct monitor_sample s = {.now_ms = mono_ms(), .has_cgroup = true};
        s.cg = g->last_cg;
        s.cg.valid |= CGS_OOM | CGS_PIDS_EVENTS;
        s.cg.oom_kills = oom_kills;
        s.cg.pids_max_events = pids_limit_hits;
        add_guest(&s.cg, g->guest_oom, g->guest_pids);
        struct monitor_event evs[MONITOR_MAX_EVENTS];
        size_t n = monitor_feed(g->mt, &s, evs);
        for (size_t i = 0; i < n; i++)
                if (evs[i].kind == MONITOR_OOM_KILL || evs[i].kind == MONITOR_PIDS_LIMIT)
                        emit(d, t, &evs[i]);
        flush(d, t, g, s.now_ms);
}

void monitor_glue_alert_crashloop(struct daemon *d, struct tenant *t)
{
        char line[ALERT_LINE_MAX] = "";
        char n[32], b[32];
        snprintf(n, sizeof(n), "%u", t->consecutive);
        snprintf(b, sizeof(b), "%u", t->m->restart.burst);
        alert_kv_append(line, sizeof(line), "alert", "raised");
        alert_kv_append(line, sizeof(line), "tenant", t->name);
        alert_kv_append(line, sizeof(line), "quota", "restarts");
        alert_kv_append(line, sizeof(line), "failures", n);
        alert_kv_append(line, sizeof(line), "burst", b);
        alert_kv_append(line, sizeof(line), "state", "crashloop");
        struct alert_sink *s = get_sink(d);
        if (s)
                (void)alert_sink_send(s, LOG_WARNING, line);
        daemon_event(d, "alert", NULL, "%s", line);
}

static void gen_double(struct json_gen *g, const char *key, double v)
{
        if (!isfinite(v))
                return;
        char buf[64];
        snprintf(buf, sizeof(buf), "%.4f", v);
        json_gen_key(g, key);
        json_gen_number(g, buf);
}

void monitor_glue_gen_addresses(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        (void)d;
        const struct glue *gl = t->monitor;
        if (!gl || !gl->has_net)
                return;
        char a[INET6_ADDRSTRLEN];
        struct in_addr in = {.s_addr = htonl(gl->net.addr)};
        json_gen_key(g, "address");
        json_gen_string(g, inet_ntop(AF_INET, &in, a, sizeof(a)));
        if (!gl->net.v6)
                return;
        json_gen_key(g, "address6");
        json_gen_string(g, inet_ntop(AF_INET6, &gl->net.addr6, a, sizeof(a)));
        json_gen_key(g, "address6_routed");
        json_gen_bool(g, gl->net.routed6);
        if (!gl->net.prefix6)
                return;
        char p[INET6_ADDRSTRLEN + 4];
        snprintf(p, sizeof(p), "%s/64", inet_ntop(AF_INET6, &gl->net.net6, a, sizeof(a)));
        json_gen_key(g, "prefix6");
        json_gen_string(g, p);
}

void monitor_glue_gen_usage(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        (void)d;
        const struct glue *gl = t->monitor;
        const struct monitor_status *st = gl ? &gl->st : NULL;
        json_gen_key(g, "usage");
        if (!st || !st->sample_ms) {
                json_gen_null(g);
                return;
        }
        const struct manifest *m = effective(t, gl);
        json_gen_object_open(g);
        if (st->have_cpu) {
                gen_double(g, "cpu", st->cpu_used);
                gen_double(g, "cpu_throttled", st->cpu_throttled_fraction);
                json_gen_key(g, "throttled_ms");
                json_gen_int(g, (int64_t)(st->cpu_throttled_ns / 1000000));
        }
        if (m->cpu.max_millicpus)
                gen_double(g, "cpu_limit", m->cpu.max_millicpus / 1000.0);
        if (st->have_memory) {
                json_gen_key(g, "memory");
                json_gen_int(g, (int64_t)st->memory_current);
                if (st->memory_max != CGROUP_UNLIMITED) {
                        json_gen_key(g, "memory_max");
                        json_gen_int(g, (int64_t)st->memory_max);
                }
        }
        if (st->have_pids) {
                json_gen_key(g, "pids");
                json_gen_int(g, (int64_t)st->pids_current);
                if (st->pids_max != CGROUP_UNLIMITED) {
                        json_gen_key(g, "pids_max");
                        json_gen_int(g, (int64_t)st->pids_max);
                }
        }
        if (st->have_net) {
                gen_double(g, "rx_bps", st->rx_bps);
                gen_double(g, "rx_pps", st->rx_pps);
                gen_double(g, "tx_pps", st->tx_pps);
                gen_double(g, "tx_bps", st->tx_bps);
        }
        if (gl->has_net) {
                json_gen_key(g, "egress_rate");
                json_gen_int(g, (int64_t)gl->net.egress_rate);
                json_gen_key(g, "ingress_rate");
                json_gen_int(g, (int64_t)gl->net.ingress_rate);
        }
        if (st->have_disk) {
                json_gen_key(g, "disk_used");
                json_gen_int(g, (int64_t)st->disk_used);
                json_gen_key(g, "disk_size");
                json_gen_int(g, (int64_t)st->disk_size);
        }
        if (st->have_transfer) {
                json_gen_key(g, "transfer_used");
                json_gen_int(g, (int64_t)st->transfer_used);
                json_gen_key(g, "transfer_limit");
                json_gen_int(g, (int64_t)st->transfer_limit);
                if (gl->applied != TRANSFER_DO_NOTHING) {
                        json_gen_key(g, "transfer_action");
                        json_gen_string(g, gl->applied == TRANSFER_DO_CUT ? "cut" : "throttled");
                }
        }
        if (gl->have_conns) {
                json_gen_key(g, "conns");
                json_gen_int(g, (int64_t)gl->conns);
                if (m->network.limits.conns) {
                        json_gen_key(g, "conns_max");
                        json_gen_int(g, (int64_t)m->network.limits.conns);
                }
        }
        if (gl->am && gl->ast.have_sample) {
                json_gen_key(g, "abuse");
                json_gen_object_open(g);
                for (int k = 0; k < ABUSE_KIND__N; k++) {
                        json_gen_key(g, abuse_kind_name((enum abuse_kind)k));
                        json_gen_int(g, (int64_t)gl->ast.total[k]);
                }
                json_gen_object_close(g);
                json_gen_key(g, "abuse_alerts");
                json_gen_array_open(g);
                for (int k = 0; k < ABUSE_KIND__N; k++)
                        if (gl->ast.raised[k])
                                json_gen_string(g, abuse_kind_name((enum abuse_kind)k));
                json_gen_array_close(g);
                if (gl->ast.in_force) {
                        json_gen_key(g, "abuse_action");
                        json_gen_string(g, m->network.limits.on_abuse == ABUSE_CUT ? "cut"
                                                                                   : "throttled");
                }
        }
        json_gen_key(g, "oom_kills");
        json_gen_int(g, (int64_t)st->oom_kills);
        json_gen_key(g, "alerts");
        json_gen_array_open(g);
        for (int q = 0; q < QUOTA__N; q++)
                if (st->raised[q])
                        json_gen_string(g, quota_name((enum quota_kind)q));
        json_gen_array_close(g);
        json_gen_object_close(g);
}

void monitor_glue_gen_volumes(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        (void)d;
        const struct manifest *m = effective(t, t->monitor);
        bool up = t->state == TENANT_RUNNING || t->state == TENANT_STOPPING;
        json_gen_key(g, "volumes");
        json_gen_array_open(g);
        for (size_t i = 0; i < m->volumes_n; i++) {
                const struct volume_spec *vs = &m->volumes[i];
                json_gen_object_open(g);
                json_gen_key(g, "name");
                json_gen_string(g, vs->name);
                json_gen_key(g, "target");
                json_gen_string(g, vs->target);
                json_gen_key(g, "declared");
                json_gen_int(g, (int64_t)vs->size);
                json_gen_key(g, "encrypt");
                json_gen_bool(g, vs->encrypt);
                /* io limits, bytes and operations per second; 0 = none */
                json_gen_key(g, "io_read");
                json_gen_int(g, (int64_t)vs->io.read);
                json_gen_key(g, "io_write");
                json_gen_int(g, (int64_t)vs->io.write);
                json_gen_key(g, "io_iops");
                json_gen_int(g, (int64_t)vs->io.iops);
                struct volume_usage u;
                if (up && volume_usage(t->name, vs->name, &u) == 0) {
                        json_gen_key(g, "used");
                        json_gen_int(g, (int64_t)u.used);
                        json_gen_key(g, "size");
                        json_gen_int(g, (int64_t)u.size);
                        json_gen_key(g, "avail");
                        json_gen_int(g, (int64_t)u.avail);
                }
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

/* The mount points of the tenant as its own init sees them (field 5 of mountinfo),
 * read from the host. The tenant cannot change its mounts (its mount namespace
 * belongs to the host's user namespace), but the text is still bounded. */
void monitor_glue_gen_mounts_seen(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        (void)d;
        json_gen_key(g, "mounts_seen");
        /* A microVM's mounts are inside its guest, out of the host's sight. */
        if (t->state != TENANT_RUNNING || t->init_pid <= 0 ||
            t->m->isolation != ISOLATION_SANDBOX) {
                json_gen_null(g);
                return;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)t->init_pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        json_gen_array_open(g);
        char line[4096];
        for (int n = 0; f && n < 256 && fgets(line, sizeof(line), f); n++) {
                char target[4096], opts[4096], fstype[256];
                /* id parent major:minor root target options ... - fstype source superopts */
                if (sscanf(line, "%*s %*s %*s %*s %4095s %4095s", target, opts) != 2)
                        continue;
                char *dash = strstr(line, " - ");
                if (!dash || sscanf(dash + 3, "%255s", fstype) != 1)
                        continue;
                json_gen_object_open(g);
                json_gen_key(g, "target");
                json_gen_string(g, target);
                json_gen_key(g, "fstype");
                json_gen_string(g, fstype);
                json_gen_key(g, "mode");
                json_gen_string(
                    g, strncmp(opts, "ro", 2) == 0 && (opts[2] == ',' || !opts[2]) ? "ro" : "rw");
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

/* ---- set ---- */

/* volume.NAME.size and volume.NAME.io.{read,write,iops}: the path in the manifest,
 * volumes[NAME].…, or false. NAME is checked here only for what would break the path;
 * the edit then finds the volume of that name or says there is none. */
static bool volume_key_path(const char *key, char *path, size_t len)
{
        static const char *const leaves[] = {"size", "io.read", "io.write", "io.iops"};
        if (strncmp(key, "volume.", 7) != 0)
                return false;
        const char *name = key + 7;
        size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-");
        if (n == 0 || n > 64 || name[n] != '.')
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(leaves); i++)
                if (strcmp(name + n + 1, leaves[i]) == 0)
                        return (size_t)snprintf(path, len, "volumes[%.*s].%s", (int)n, name,
                                                leaves[i]) < len;
        return false;
}

/* A value as the manifest writes it: a plain number stays a number, anything else
 * becomes a JSON string. */
static char *value_literal(const char *v)
{
        bool number = *v != '\0';
        for (const char *p = v; *p; p++)
                number &= (*p >= '0' && *p <= '9') || *p == '.';
        if (number && v[0] != '.' && strstr(v, "..") == NULL) {
                return strdup(v);
        }
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        const char *buf;
        size_t len;
        if (!g)
                return NULL;
        json_gen_string(g, v);
        if (json_gen_finish(g, &buf, &len) < 0)
                return NULL;
        return strndup(buf, len);
}

/* Applies every key=value of `values` to `text`; the result is parsed as a manifest. */
static int apply_values(const char *text, size_t len, const struct json_value *values,
                        char **ret_text, struct manifest **ret_m, struct tn_err **err)
{
        _cleanup_free_ char *cur = strndup(text, len);
        size_t cur_len = len;
        if (!cur)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < values->u.object.n; i++) {
                const struct json_member *mb = &values->u.object.items[i];
                char vpath[96];
                const char *path = manifest_settable_path(mb->key);
                if (!path && volume_key_path(mb->key, vpath, sizeof(vpath)))
                        path = vpath;
                if (!path)
                        return tn_err_setx(err, EINVAL,
                                           "\"%.64s\" cannot be set; the keys "
                                           "are " MANIFEST_SETTABLE_KEYS ", volume.NAME.size, "
                                           "volume.NAME.io.read, volume.NAME.io.write, "
                                           "volume.NAME.io.iops",
                                           mb->key);
                if (mb->value->type != JSON_STRING || mb->value->u.str.len > 64)
                        return tn_err_setx(err, EINVAL, "%s: the value must be a short string",
                                           mb->key);
                _cleanup_free_ char *lit = value_literal(mb->value->u.str.text);
                _cleanup_err_ struct tn_err *serr = NULL;
                char *next = NULL;
                if (!lit || manifest_text_set(cur, cur_len, path, lit, &next, &cur_len, &serr) < 0)
                        return tn_err_setx(err, EINVAL, "%s: %s", mb->key,
                                           serr ? tn_err_msg(serr) : "out of memory");
                free(cur);
                cur = next;
        }
        struct diag_list diags = {0};
        int r = manifest_parse(cur, cur_len, ret_m, &diags);
        if (r < 0) {
                /* The first problem, which names the key and what is accepted. */
                if (diags.n && diags.items[0].path && *diags.items[0].path)
                        (void)tn_err_setx(err, EINVAL, "%s: %s", diags.items[0].path,
                                          diags.items[0].msg);
                else
                        (void)tn_err_setx(err, EINVAL, "%s",
                                          diags.n ? diags.items[0].msg : "invalid value");
                diag_list_clear(&diags);
                return -EINVAL;
        }
        diag_list_clear(&diags);
        *ret_text = TAKE_PTR(cur);
        return 0;
}

/* The volumes of `was` that `m` changes live: sizes grown (all checked before any is
 * grown: a shrink refuses the whole set), then IO limits renewed. A volume is matched
 * by name; one that `m` adds or drops is for the next start, not for a live set. */
static int apply_volumes(struct daemon *d, struct tenant *t, struct glue *g,
                         const struct manifest *was, const struct manifest *m, struct tn_err **err)
{
        bool io = false;
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < m->volumes_n; i++) {
                        const struct volume_spec *vs = &m->volumes[i], *old = NULL;
                        for (size_t k = 0; was && k < was->volumes_n; k++)
                                if (strcmp(was->volumes[k].name, vs->name) == 0)
                                        old = &was->volumes[k];
                        if (!old)
                                continue;
                        io |= memcmp(&old->io, &vs->io, sizeof(vs->io)) != 0;
                        if (old->size == vs->size)
                                continue;
                        int r = volume_grow(d->cfg.storage_dir, t->name, vs, pass == 0, err);
                        if (r < 0)
                                return tn_err_wrap(err, "volume.%s.size", vs->name);
                }
        if (io && volumes_set_io(m, g->cg, err) < 0)
                return -EIO;
        return 0;
}

/* A microVM's processes live in the guest, in a cgroup its agent made at setup with the
 * manifest's pids.max; the host's cgroup holds QEMU. So a live pids.max goes to the
 * guest too, through the runner (STATE/vm/NAME/exec.sock, runner_proto.h), which asks
 * the agent and logs a refusal in the tenant's log. tenantd only hands the request
 * over and does not wait for the answer: the agent is the tenant's, and a guest that
 * took its time would hold up tenantd's loop, every tenant's control and sampling, at
 * each `set` (a tenant may `set` its own limits). A runner that cannot be reached
 * fails the `set` (EIO, "failed"); the host's cgroup is changed by then. */
static int vm_set_pids_max(struct daemon *d, struct tenant *t, uint64_t pids_max,
                           struct tn_err **err)
{
        struct runner_request rr = {.kind = RUNNER_LIMITS};
        rr.pids_max = pids_max == MANIFEST_UNLIMITED ? 0
                      : pids_max > AGENT_PIDS_MAX    ? AGENT_PIDS_MAX
                                                     : (uint32_t)pids_max;
        _cleanup_free_ char *req = NULL;
        size_t len;
        if (runner_request_encode(&rr, &req, &len) < 0)
                return tn_err_setx(err, EIO, "pids.max cannot be sent to the guest");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vm/%s/exec.sock", d->cfg.state_dir, t->name);
        /* Non-blocking: a connect to a full backlog and a send to a full buffer fail
         * (EAGAIN) instead of waiting; a few bytes into a fresh connection do not. */
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(fd, req, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
                return tn_err_setx(err, EIO, "the microVM's runner cannot be reached: %s",
                                   strerror(errno));
        return 0;
}

static int apply_live(struct daemon *d, struct tenant *t, struct glue *g, const struct manifest *m,
                      struct tn_err **err)
{
        if (!g->cg)
                return tn_err_setx(err, ENODEV, "%s: its cgroups are not open", t->name);
        int vr = apply_volumes(d, t, g, g->live ? g->live : t->m, m, err);
        if (vr < 0)
                return vr;
        struct tenant_limits l = {.cpu_millicpus = m->cpu.max_millicpus,
                                  .cpu_weight = m->cpu.weight,
                                  .memory_max = m->memory.max,
                                  .memory_high = m->memory.high,
                                  .swap_max = m->memory.swap,
                                  .pids_max = m->pids.max};
        int r = tenant_cgroup_set_limits(g->cg, &l, err);
        if (r >= 0 && g->has_net &&
            (m->network.egress_rate != g->net.egress_rate ||
             m->network.ingress_rate != g->net.ingress_rate) &&
            g->applied != TRANSFER_DO_THROTTLE)
                r = net_set_rates(&g->net, t->init_pid, m->network.egress_rate,
                                  m->network.ingress_rate, err);
        if (r >= 0 && t->m->isolation == ISOLATION_MICROVM &&
            m->pids.max != (g->live ? g->live : t->m)->pids.max)
                r = vm_set_pids_max(d, t, m->pids.max, err);
        if (r < 0)
                return tn_err_wrap(err, "%s", t->name);
        struct monitor_limits ml;
        monitor_limits_from_manifest(m, &ml);
        if (g->mt)
                monitor_tenant_set_limits(g->mt, &ml);
        return 0;
}

static int save_text(const char *path, const char *text, size_t len, struct tn_err **err)
{
        /* The new file keeps the old one's mode and owner. */
        struct stat st;
        bool had = stat(path, &st) == 0;
        if (write_file_atomic(path, text, len, had ? (st.st_mode & 07777) : 0644, err) < 0)
                return -EIO;
        if (had && chown(path, st.st_uid, st.st_gid) < 0)
                log_warning("%s: cannot keep its owner: %m", path);
        return 0;
}

/* gcc 12's -fanalyzer reports saved_text below as freed uninitialized when the first
 * apply_values fails, though it is initialized to NULL at its declaration (a false
 * positive of its model of cleanup attributes; clang's analyzer and ASan agree). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-use-of-uninitialized-value"
#endif
/* a <= b, where `none` (0 or MANIFEST_UNLIMITED, as the key writes "no limit") is the
 * largest value of all. */
static bool at_most(uint64_t a, uint64_t b, uint64_t none)
{
        if (b == none)
                return true;
        return a != none && a <= b;
}

/* Every value `values` sets, in m, at most what the ceiling has (a user only lowers). */
static int within_ceiling(const struct manifest *m, const struct manifest *cap,
                          const struct json_value *values, struct tn_err **err)
{
        for (size_t i = 0; i < values->u.object.n; i++) {
                const char *key = values->u.object.items[i].key;
                const char *path = manifest_settable_path(key);
                bool ok = true;
                if (!path) /* a volume's size or io: the operator's alone */
                        return tn_err_setx(err, EPERM, "%.64s: a tenant's user cannot change it",
                                           key);
                if (strcmp(path, "cpu.max") == 0)
                        ok = at_most(m->cpu.max_millicpus, cap->cpu.max_millicpus, 0);
                else if (strcmp(path, "cpu.weight") == 0)
                        ok = m->cpu.weight <= cap->cpu.weight;
                else if (strcmp(path, "memory.max") == 0)
                        ok = at_most(m->memory.max, cap->memory.max, MANIFEST_UNLIMITED);
                else if (strcmp(path, "memory.high") == 0)
                        ok = at_most(m->memory.high, cap->memory.high, MANIFEST_UNLIMITED);
                else if (strcmp(path, "memory.swap") == 0)
                        ok = at_most(m->memory.swap, cap->memory.swap, MANIFEST_UNLIMITED);
                else if (strcmp(path, "pids.max") == 0)
                        ok = at_most(m->pids.max, cap->pids.max, MANIFEST_UNLIMITED);
                else if (strcmp(path, "network.egress.rate") == 0)
                        ok = at_most(m->network.egress_rate, cap->network.egress_rate, 0);
                else if (strcmp(path, "network.ingress.rate") == 0)
                        ok = at_most(m->network.ingress_rate, cap->network.ingress_rate, 0);
                else
                        ok = false; /* a key added to the table and not here: refused */
                if (!ok)
                        return tn_err_setx(err, EPERM,
                                           "%s: %.64s is above the manifest's value; a tenant's "
                                           "user may only lower it",
                                           key, values->u.object.items[i].value->u.str.text);
        }
        return 0;
}

int monitor_glue_set(struct daemon *d, struct tenant *t, const struct json_value *req,
                     const struct manifest *ceiling, const char **ret_summary, struct tn_err **err)
{
        const struct json_value *values = json_get(req, "values");
        const struct json_value *sv = json_get(req, "save");
        bool save = sv && sv->type == JSON_BOOL && sv->u.boolean;
        if (!values || values->type != JSON_OBJECT || values->u.object.n == 0 ||
            values->u.object.n > 16)
                return tn_err_setx(err, EINVAL,
                                   "\"values\" must be an object of 1 to 16 KEY: VALUE strings");
        if (t->busy)
                return tn_err_setx(err, EBUSY, "%s is busy: %s", t->name, t->busy);
        struct glue *g = t->monitor;
        bool running = g && t->state == TENANT_RUNNING;
        if (!running && !save)
                return tn_err_setx(err, ESRCH,
                                   "%s is not running: nothing to change live (use --save to "
                                   "change the manifest)",
                                   t->name);
        _cleanup_free_ char *file = NULL;
        size_t file_len = 0;
        /* The file is read as the base of the change and, with --save, rewritten by root
         * beside itself: only while root alone can change it and its directory. */
        if (trust_check(t->path, TRUST_FILE, NULL, err) < 0)
                return -EPERM;
        if (read_file_bounded(t->path, json_limits_config.max_bytes, &file, &file_len, err) < 0)
                return -EIO;
        /* Live: on top of earlier live changes. Saved: on top of the file as it is. */
        _cleanup_free_ char *live_text = NULL, *saved_text = NULL;
        _cleanup_manifest_ struct manifest *live = NULL, *saved = NULL;
        const char *base = running && g->live_text ? g->live_text : file;
        int r = apply_values(base, strlen(base), values, &live_text, &live, err);
        if (r < 0)
                return r;
        if (ceiling && within_ceiling(live, ceiling, values, err) < 0)
                return -EPERM;
        if (save) {
                r = apply_values(file, file_len, values, &saved_text, &saved, err);
                if (r < 0)
                        return r;
        }
        if (running) {
                r = apply_live(d, t, g, live, err);
                if (r < 0)
                        return r;
        }
        if (save) {
                r = save_text(t->path, saved_text, strlen(saved_text), err);
                if (r < 0)
                        return r;
                /* The file now says what runs: a reload must not see a change. */
                char *explained = manifest_explain(saved);
                if (explained) {
                        free(t->explained);
                        t->explained = explained;
                        manifest_free(t->m);
                        t->m = TAKE_PTR(saved);
                }
        }
        if (running) {
                free(g->live_text);
                manifest_free(g->live);
                g->live_text = TAKE_PTR(live_text);
                g->live = TAKE_PTR(live);
        }
        char what[512] = "";
        for (size_t i = 0; i < values->u.object.n; i++)
                snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s=%s", i ? " " : "",
                         values->u.object.items[i].key,
                         values->u.object.items[i].value->u.str.text);
        daemon_event(d, "set", t, "%s saved=%s", what, save ? "yes" : "no");
        *ret_summary = !running ? "saved"
                       : save   ? "applied and saved"
                                : "applied; not saved (use --save)";
        return 0;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
