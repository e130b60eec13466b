/* net_probe.c — net.c's monitor and live-change calls, for test_quota_net.sh and
 * bench/quota-accuracy, on a tenant that `tenantctl run` started:
 *
 *   net_probe counters IFNAME [PID]          prints "ifindex=N rx=BYTES tx=BYTES"
 *   net_probe rates NAME HOSTIF PID EGRESS INGRESS
 *                                            net_set_rates (bits/s, 0 = unshaped)
 *   net_probe cut NAME ADDR on|off           net_cut
 *   net_probe transfer STATEDIR NAME IFNAME LIMIT ACTION SECONDS
 *                                            counts the link's bytes with transfer.c
 *                                            every 200 ms for SECONDS and prints each
 *                                            action ("do=throttle used=N")
 *   net_probe tap MANIFEST INDEX STATE [EGRESS]
 *                                            what a microVM tenant of index INDEX gets
 *                                            before its domain starts (net_private_prepare,
 *                                            net_private_attach_tap, net_private_shape_tap):
 *                                            prints "ready tnd-INDEX", then holds it until
 *                                            SIGTERM or SIGINT and removes it. The test then
 *                                            opens the tap and plays the guest, as QEMU would.
 *                                            Meanwhile SIGUSR1 sets its egress rate to EGRESS
 *                                            (bits/s) live and SIGUSR2 lifts it (net_set_rates),
 *                                            each printing "rates N" or "rates failed: ERROR".
 *   net_probe rules MANIFEST INDEX NAME      prints the firewall ruleset (net_rules_firewall)
 *                                            of tenant NAME of index INDEX, with MANIFEST's
 *                                            network section and no resolver (for
 *                                            bench/abuse-limits; applies nothing)
 *   net_probe conntrack ADDR [ADDR6]         prints "conns=N": net_conntrack_count of a
 *                                            tenant with these addresses
 *
 * Exit 0 on success, 1 with the error on stderr. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spec/launch.h"
#include "host/net.h"
#include "host/net_rules.h"
#include "monitor/transfer.h"

static int fail(struct tn_err *err)
{
        fprintf(stderr, "%s\n", tn_err_msg(err));
        tn_err_free(err);
        return 1;
}

static int cmd_transfer(char **argv)
{
        struct transfer_config cfg = {.period = TRANSFER_MONTHLY,
                                      .limit = strtoull(argv[3], NULL, 10)};
        if (!strcmp(argv[4], "cut"))
                cfg.action = TRANSFER_CUT;
        else if (!strcmp(argv[4], "alert"))
                cfg.action = TRANSFER_ALERT;
        else {
                cfg.action = TRANSFER_THROTTLE;
                cfg.throttle_rate = strtoull(argv[4], NULL, 10);
        }
        struct tn_err *err = NULL;
        struct transfer_counter *tc = NULL;
        char *warning = NULL;
        if (transfer_open(argv[0], argv[1], &cfg, time(NULL), &tc, &warning, &err) < 0)
                return fail(err);
        if (warning)
                fprintf(stderr, "%s\n", warning);
        free(warning);
        int rounds = atoi(argv[5]) * 5;
        for (int i = 0; i < rounds; i++) {
                struct net_link_stats st;
                if (net_link_counters(argv[2], 0, &st, &err) < 0)
                        break;
                enum transfer_do d = transfer_update(tc, st.ifindex, st.rx_bytes, st.tx_bytes,
                                                     time(NULL), argv[1], NULL);
                static const char *const names[] = {"nothing", "alert", "throttle", "cut",
                                                    "restore"};
                if (d != TRANSFER_DO_NOTHING) {
                        printf("do=%s used=%llu\n", names[d],
                               (unsigned long long)transfer_used(tc));
                        fflush(stdout);
                }
                struct timespec ts = {0, 200000000};
                nanosleep(&ts, NULL);
        }
        printf("used=%llu\n", (unsigned long long)transfer_used(tc));
        int r = transfer_save(tc, &err);
        transfer_counter_free(tc);
        tn_err_free(err);
        return r < 0;
}

static int cmd_rules(const char *path, const char *index, const char *name)
{
        struct tn_err *err = NULL;
        struct manifest *m = NULL;
        char *diags = NULL;
        if (manifest_load(path, false, &m, &diags, &err) < 0) {
                fprintf(stderr, "%s\n", diags ? diags : tn_err_msg(err));
                free(diags);
                tn_err_free(err);
                return 1;
        }
        uint32_t i = (uint32_t)strtoul(index, NULL, 10);
        struct net_tenant t = {.addr = 0x0a580002U + i}; /* as net_private_prepare */
        snprintf(t.name, sizeof(t.name), "%s", name);
        snprintf(t.host_if, sizeof(t.host_if), "tnd-%u", i);
        const uint8_t mac[6] = {0x02, 0x74, 0x0a, 0x58, (uint8_t)(t.addr >> 8), (uint8_t)t.addr};
        memcpy(t.mac, mac, sizeof(mac));
        char *text = net_rules_firewall(&t, m, NULL, 0);
        manifest_free(m);
        if (!text)
                return 1;
        fputs(text, stdout);
        free(text);
        return 0;
}

/* Until SIGTERM or SIGINT: SIGUSR1 and SIGUSR2 change t's egress rate live. */
static void tap_hold(struct net_tenant *t, const sigset_t *set, uint64_t live_egress)
{
        for (;;) {
                int sig = 0;
                sigwait(set, &sig);
                if (sig != SIGUSR1 && sig != SIGUSR2)
                        return;
                uint64_t egress = sig == SIGUSR1 ? live_egress : 0;
                struct tn_err *err = NULL;
                if (net_set_rates(t, 0, egress, t->ingress_rate, &err) < 0)
                        printf("rates failed: %s\n", tn_err_msg(err));
                else
                        printf("rates %llu\n", (unsigned long long)t->egress_rate);
                tn_err_free(err);
                fflush(stdout);
        }
}

static int cmd_tap(const char *path, const char *index, const char *state, uint64_t live_egress)
{
        struct tn_err *err = NULL;
        struct manifest *m = NULL;
        char *diags = NULL;
        if (manifest_load(path, false, &m, &diags, &err) < 0) {
                fprintf(stderr, "%s\n", diags ? diags : tn_err_msg(err));
                free(diags);
                tn_err_free(err);
                return 1;
        }
        /* Blocked before anything exists, so a signal that comes early still finds the
         * tap to remove. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        sigprocmask(SIG_BLOCK, &set, NULL);
        struct net_tenant t = {0};
        int r = net_private_prepare(m, state, (uint32_t)strtoul(index, NULL, 10), &t, &err);
        if (r >= 0) {
                r = net_private_attach_tap(&t, m, &err);
                if (r >= 0)
                        r = net_private_shape_tap(&t, &err);
                if (r >= 0) {
                        printf("ready %s\n", t.host_if);
                        fflush(stdout);
                        tap_hold(&t, &set, live_egress);
                }
                net_private_detach_tap(&t);
        }
        manifest_free(m);
        return r < 0 ? fail(err) : 0;
}

int main(int argc, char **argv)
{
        struct tn_err *err = NULL;
        if (argc >= 3 && !strcmp(argv[1], "counters")) {
                struct net_link_stats st;
                pid_t pid = argc > 3 ? (pid_t)atoi(argv[3]) : 0;
                if (net_link_counters(argv[2], pid, &st, &err) < 0)
                        return fail(err);
                printf("ifindex=%u rx=%llu tx=%llu\n", st.ifindex, (unsigned long long)st.rx_bytes,
                       (unsigned long long)st.tx_bytes);
                return 0;
        }
        if (argc == 7 && !strcmp(argv[1], "rates")) {
                struct net_tenant t = {0};
                snprintf(t.name, sizeof(t.name), "%s", argv[2]);
                snprintf(t.host_if, sizeof(t.host_if), "%s", argv[3]);
                if (net_set_rates(&t, (pid_t)atoi(argv[4]), strtoull(argv[5], NULL, 10),
                                  strtoull(argv[6], NULL, 10), &err) < 0)
                        return fail(err);
                return 0;
        }
        if (argc == 5 && !strcmp(argv[1], "cut")) {
                struct net_tenant t = {.firewall = true};
                struct in_addr a;
                snprintf(t.name, sizeof(t.name), "%s", argv[2]);
                if (inet_pton(AF_INET, argv[3], &a) != 1)
                        return 2;
                t.addr = ntohl(a.s_addr);
                if (net_cut(&t, !strcmp(argv[4], "on"), &err) < 0)
                        return fail(err);
                return 0;
        }
        if ((argc == 3 || argc == 4) && !strcmp(argv[1], "conntrack")) {
                struct in_addr a;
                struct net_tenant t = {0};
                uint64_t n;
                if (inet_pton(AF_INET, argv[2], &a) != 1 ||
                    (argc == 4 && inet_pton(AF_INET6, argv[3], &t.addr6) != 1))
                        return 2;
                t.addr = ntohl(a.s_addr);
                t.v6 = argc == 4;
                if (net_conntrack_count(&t, &n, &err) < 0)
                        return fail(err);
                printf("conns=%llu\n", (unsigned long long)n);
                return 0;
        }
        if (argc == 8 && !strcmp(argv[1], "transfer"))
                return cmd_transfer(argv + 2);
        if ((argc == 5 || argc == 6) && !strcmp(argv[1], "tap"))
                return cmd_tap(argv[2], argv[3], argv[4],
                               argc == 6 ? strtoull(argv[5], NULL, 10) : 0);
        if (argc == 5 && !strcmp(argv[1], "rules"))
                return cmd_rules(argv[2], argv[3], argv[4]);
        fprintf(stderr, "usage: see the top of tests/integration/net_probe.c\n");
        return 2;
}
