/* abuse_probe.c — the daemon's abuse watch (monitor_glue.c's abuse_sample) for a tenant
 * tenantd does not run, for test_abuse_alerts.sh: a microVM's tap made by
 * `net_probe tap`, whose guest a test namespace plays. Reads the tenant's abuse counters
 * (net_abuse_counters) every interval, feeds abuse.c with the manifest's on_abuse, sends
 * every line through the syslog sink, and applies and lifts the action with net_cut or
 * net_set_rates as the daemon does.
 *
 *   abuse_probe MANIFEST INDEX --socket PATH --state DIR [--interval-ms 200]
 *               [--exit-after-ms N]
 *
 * Prints "ready" once it read the counters, then "event LINE" per line sent, and
 * "totals KIND=N ..." whenever the counts since the start changed (what tenantd's
 * status shows as "abuse"). Exits on SIGTERM or after --exit-after-ms, lifting an
 * action in force. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "host/net.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "monitor/abuse.h"
#include "monitor/alert.h"
#include "spec/manifest.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
        (void)sig;
        stop = 1;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void act(struct net_tenant *net, const struct manifest *m, const struct abuse_event *ev)
{
        _cleanup_err_ struct tn_err *err = NULL;
        bool apply = ev->kind == ABUSE_APPLIED;
        int r = 0;
        if (ev->action == ABUSE_CUT)
                r = net_cut(net, apply, &err);
        else if (ev->action == ABUSE_THROTTLE)
                r = net_set_rates(net, 0, apply ? ev->rate : m->network.egress_rate,
                                  apply ? ev->rate : m->network.ingress_rate, &err);
        if (r < 0)
                printf("action-failed %s\n", tn_err_msg(err));
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"socket", required_argument, NULL, 's'},
            {"state", required_argument, NULL, 'd'},
            {"interval-ms", required_argument, NULL, 'i'},
            {"exit-after-ms", required_argument, NULL, 'x'},
            {NULL, 0, NULL, 0},
        };
        const char *sock = NULL, *state = NULL;
        uint64_t interval = 200, exit_after = 0;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == 's')
                        sock = optarg;
                else if (c == 'd')
                        state = optarg;
                else if (c == 'i')
                        interval = strtoull(optarg, NULL, 10);
                else if (c == 'x')
                        exit_after = strtoull(optarg, NULL, 10);
                else
                        return 2;
        }
        if (optind + 2 != argc || !sock || !state || interval == 0) {
                fprintf(stderr, "usage: abuse_probe MANIFEST INDEX --socket PATH --state DIR "
                                "[--interval-ms N] [--exit-after-ms N]\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len;
        if (read_file_bounded(argv[optind], json_limits_config.max_bytes, &buf, &len, &err) < 0) {
                fprintf(stderr, "%s\n", tn_err_msg(err));
                return 1;
        }
        _cleanup_manifest_ struct manifest *m = NULL;
        struct diag_list diags = {0};
        int r = manifest_parse(buf, len, &m, &diags);
        diag_print(&diags, argv[optind], stderr);
        diag_list_clear(&diags);
        if (r < 0)
                return 2;
        struct net_tenant net;
        if (net_private_prepare(m, state, (uint32_t)strtoul(argv[optind + 1], NULL, 10), &net,
                                &err) < 0) {
                fprintf(stderr, "%s\n", tn_err_msg(err));
                return 1;
        }
        net.firewall = true;
        net.tap = m->isolation == ISOLATION_MICROVM;
        struct abuse_config cfg;
        abuse_config_from_manifest(m, &cfg);
        _cleanup_(abuse_monitor_freep) struct abuse_monitor *am =
            abuse_monitor_new(m->name, &cfg, false);
        struct alert_sink_config scfg = {.socket_path = sock, .facility = LOG_DAEMON};
        _cleanup_(alert_sink_freep) struct alert_sink *sink = NULL;
        if (!am || alert_sink_open(&scfg, &sink, &err) < 0) {
                fprintf(stderr, "%s\n", err ? tn_err_msg(err) : "out of memory");
                return 1;
        }
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        uint64_t start = now_ms();
        bool ready = false;
        struct abuse_status first;
        abuse_status(am, &first);
        uint64_t shown[ABUSE_KIND__N];
        memcpy(shown, first.total, sizeof(shown));
        while (!stop && (!exit_after || now_ms() - start < exit_after)) {
                struct net_abuse_counters ctr;
                tn_err_free(TAKE_PTR(err));
                bool have = net_abuse_counters(m->name, &ctr, &err) == 0;
                if (!have && !ready)
                        fprintf(stderr, "%s\n", tn_err_msg(err));
                struct abuse_event evs[ABUSE_MAX_EVENTS];
                size_t n = abuse_feed(am, now_ms(), have ? &ctr : NULL, evs);
                if (have && !ready) {
                        printf("ready\n");
                        ready = true;
                }
                for (size_t i = 0; i < n; i++) {
                        char line[ALERT_LINE_MAX];
                        abuse_format(&evs[i], line, sizeof(line));
                        (void)alert_sink_send(sink, abuse_priority(&evs[i]), line);
                        printf("event %s\n", line);
                        if (evs[i].kind == ABUSE_APPLIED || evs[i].kind == ABUSE_LIFTED)
                                act(&net, m, &evs[i]);
                }
                struct abuse_status now;
                abuse_status(am, &now);
                if (memcmp(now.total, shown, sizeof(shown)) != 0) {
                        memcpy(shown, now.total, sizeof(shown));
                        printf("totals");
                        for (int k = 0; k < ABUSE_KIND__N; k++)
                                printf(" %s=%llu", abuse_kind_name((enum abuse_kind)k),
                                       (unsigned long long)shown[k]);
                        printf("\n");
                }
                struct timespec ts = {.tv_sec = (time_t)(interval / 1000),
                                      .tv_nsec = (long)(interval % 1000) * 1000000};
                nanosleep(&ts, NULL);
        }
        struct abuse_status st;
        abuse_status(am, &st);
        if (st.in_force) {
                struct abuse_event ev = {.kind = ABUSE_LIFTED, .action = cfg.action};
                act(&net, m, &ev);
        }
        return 0;
}
