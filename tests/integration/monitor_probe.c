/* monitor_probe.c — the monitor's building blocks end to end, as the daemon will use
 * them, for test_alerts.sh and bench/quota-accuracy: attaches to a running tenant's
 * cgroups with tenant_cgroup_open (waiting for them to appear), samples them on a
 * timer, feeds the monitor with the manifest's limits and rules, and sends every alert
 * through the syslog sink to the socket given (a private rsyslogd in the tests).
 *
 *   monitor_probe MANIFEST --socket PATH [--interval-ms 200] [--reminder-ms 600000]
 *                 [--ident tenantd] [--exit-after-ms N] [--netif IFNAME]
 *                 [--cpu-window SKIP_MS LEN_MS] [--fresh]
 *
 * Prints on stdout, one per line: "ready" once attached, "event T LINE" for each alert
 * (T: CLOCK_REALTIME in ms when it was sent), with --cpu-window "cpu_avg=CPUS" over that
 * window of the tenant's own cgroup usage, and at the end "samples=N
 * sample_cost_us=AVG" (the cost of one tenant_cgroup_sample call). Exits when the
 * tenant's cgroups are gone or after --exit-after-ms. --fresh: the tenant was just
 * started (monitor_tenant_fresh): OOM kills and pids hits count from zero. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "monitor/alert.h"
#include "host/cgroup.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "spec/manifest.h"
#include "monitor/monitor.h"
#include "host/net.h"

static uint64_t clock_ms(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(uint64_t ms)
{
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                              .tv_nsec = (long)(ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0)
                ;
}

static int usage(void)
{
        fprintf(stderr, "usage: monitor_probe MANIFEST --socket PATH [--interval-ms N] "
                        "[--reminder-ms N] [--ident NAME] [--exit-after-ms N] [--netif IF] "
                        "[--cpu-window SKIP_MS LEN_MS]\n");
        return 2;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"socket", required_argument, NULL, 's'},
            {"interval-ms", required_argument, NULL, 'i'},
            {"reminder-ms", required_argument, NULL, 'r'},
            {"ident", required_argument, NULL, 'd'},
            {"exit-after-ms", required_argument, NULL, 'x'},
            {"netif", required_argument, NULL, 'n'},
            {"cpu-window", required_argument, NULL, 'w'},
            {"fresh", no_argument, NULL, 'f'},
            {NULL, 0, NULL, 0},
        };
        const char *sock = NULL, *ident = "tenantd", *netif = NULL;
        uint64_t interval = 200, reminder = MONITOR_DEFAULT_REMINDER_MS, exit_after = 0;
        uint64_t win_skip = 0, win_len = 0;
        bool fresh = false;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        sock = optarg;
                        break;
                case 'i':
                        interval = strtoull(optarg, NULL, 10);
                        break;
                case 'r':
                        reminder = strtoull(optarg, NULL, 10);
                        break;
                case 'd':
                        ident = optarg;
                        break;
                case 'x':
                        exit_after = strtoull(optarg, NULL, 10);
                        break;
                case 'n':
                        netif = optarg;
                        break;
                case 'f':
                        fresh = true;
                        break;
                case 'w':
                        if (optind >= argc)
                                return usage();
                        win_skip = strtoull(optarg, NULL, 10);
                        win_len = strtoull(argv[optind++], NULL, 10);
                        break;
                default:
                        return usage();
                }
        }
        if (optind + 1 != argc || !sock || interval == 0)
                return usage();

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

        struct monitor_limits limits;
        monitor_limits_from_manifest(m, &limits);
        _cleanup_(monitor_tenant_freep) struct monitor_tenant *mt =
            monitor_tenant_new(m->name, &limits, reminder);
        struct alert_sink_config scfg = {
            .socket_path = sock, .facility = LOG_DAEMON, .ident = ident};
        _cleanup_(alert_sink_freep) struct alert_sink *sink = NULL;
        if (!mt || alert_sink_open(&scfg, &sink, &err) < 0) {
                fprintf(stderr, "%s\n", tn_err_msg(err));
                return 1;
        }

        /* The tenant is started by the caller at about the same time: wait for it. */
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *cg = NULL;
        uint64_t start = clock_ms(CLOCK_MONOTONIC);
        while (tenant_cgroup_open(m->name, &cg, &err) < 0) {
                if (clock_ms(CLOCK_MONOTONIC) - start > 15000) {
                        fprintf(stderr, "%s\n", tn_err_msg(err));
                        return 1;
                }
                tn_err_free(err);
                err = NULL;
                sleep_ms(20);
        }
        if (fresh)
                monitor_tenant_fresh(mt);
        printf("ready %s\n", tenant_cgroup_describe(cg));
        fflush(stdout);

        uint64_t samples = 0, cost_ns = 0, next = clock_ms(CLOCK_MONOTONIC);
        bool win_started = false, win_done = false;
        uint64_t win_t0 = 0, win_u0 = 0;
        start = next;
        for (;;) {
                struct monitor_sample s = {.now_ms = clock_ms(CLOCK_MONOTONIC)};
                uint64_t t0 = mono_ns();
                r = tenant_cgroup_sample(cg, &s.cg, &err);
                cost_ns += mono_ns() - t0;
                if (r < 0)
                        break; /* the tenant is gone */
                samples++;
                s.has_cgroup = true;
                struct net_link_stats ls;
                if (netif && net_link_counters(netif, 0, &ls, NULL) == 0) {
                        s.has_net = true;
                        s.net_rx_bytes = ls.rx_bytes;
                        s.net_tx_bytes = ls.tx_bytes;
                }
                struct monitor_event ev[MONITOR_MAX_EVENTS];
                size_t n = monitor_feed(mt, &s, ev);
                for (size_t i = 0; i < n; i++) {
                        char line[ALERT_LINE_MAX];
                        alert_format(&ev[i], line, sizeof(line));
                        int sr = alert_sink_send(sink, alert_priority(&ev[i]), line);
                        printf("event %llu %s%s\n", (unsigned long long)clock_ms(CLOCK_REALTIME),
                               line, sr < 0 ? " (dropped)" : "");
                        fflush(stdout);
                }
                if (win_len && (s.cg.valid & CGS_CPU)) {
                        uint64_t el = s.now_ms - start;
                        if (!win_started && el >= win_skip) {
                                win_started = true;
                                win_t0 = s.now_ms;
                                win_u0 = s.cg.cpu_usage_ns;
                        } else if (win_started && !win_done && s.now_ms - win_t0 >= win_len) {
                                win_done = true;
                                printf("cpu_avg=%.4f over %llu ms\n",
                                       (double)(s.cg.cpu_usage_ns - win_u0) /
                                           ((double)(s.now_ms - win_t0) * 1e6),
                                       (unsigned long long)(s.now_ms - win_t0));
                                fflush(stdout);
                        }
                }
                if (exit_after && s.now_ms - start >= exit_after)
                        break;
                next += interval;
                uint64_t now = clock_ms(CLOCK_MONOTONIC);
                if (next > now)
                        sleep_ms(next - now);
                else
                        next = now;
        }
        /* The tenant's end, as the daemon does: what the rate limit held back. */
        struct monitor_event ev[MONITOR_MAX_EVENTS];
        size_t n = monitor_flush(mt, clock_ms(CLOCK_MONOTONIC), ev);
        for (size_t i = 0; i < n; i++) {
                char line[ALERT_LINE_MAX];
                alert_format(&ev[i], line, sizeof(line));
                int sr = alert_sink_send(sink, alert_priority(&ev[i]), line);
                printf("event %llu %s%s\n", (unsigned long long)clock_ms(CLOCK_REALTIME), line,
                       sr < 0 ? " (dropped)" : "");
        }
        printf("samples=%llu sample_cost_us=%.1f dropped=%llu\n", (unsigned long long)samples,
               samples ? (double)cost_ns / (double)samples / 1000.0 : 0.0,
               (unsigned long long)alert_sink_dropped(sink));
        return 0;
}
