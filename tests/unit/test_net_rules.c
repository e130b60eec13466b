/* test_net_rules.c — the nftables rulesets tenantd applies, as text: each manifest
 * tests/data/nft/NAME.json must give exactly tests/data/nft/NAME.nft for a tenant of
 * index 3 (10.88.0.5 and fd00:db8:1::5 on tnd-3, IPv6 unless the manifest turns it off),
 * and the host table, cut, reconnect and removal their own
 * .nft files. GOLDEN_UPDATE=1 rewrites the .nft files instead (read the diff before
 * committing it). That nft accepts the text and the kernel does what it says is
 * tests/integration/test_network.sh's job. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/net_rules.h"
#include "lib/cleanup.h"
#include "lib/fileio.h"
#include "spec/manifest.h"
#include "tap.h"

static char dir[1024];
static bool update;

static struct net_tenant tenant(const char *name, bool v6)
{
        struct net_tenant t = {.addr = 0x0a580005U, .gateway = 0x0a580001U, .host_if = "tnd-3"};
        snprintf(t.name, sizeof(t.name), "%s", name);
        const uint8_t mac[6] = {0x02, 0x74, 0x0a, 0x58, 0x00, 0x05};
        memcpy(t.mac, mac, sizeof(mac));
        /* as net_private_prepare() makes them, with the ULA prefix fd00:db8:1::/48 */
        t.v6 = v6 && inet_pton(AF_INET6, "fd00:db8:1::5", &t.addr6) == 1 &&
               inet_pton(AF_INET6, "fd00:db8:1::1", &t.gateway6) == 1 &&
               inet_pton(AF_INET6, "fe80::74:aff:fe58:5", &t.ll6) == 1;
        /* a manifest named "routed...": as with ipv6-prefix 2001:db8:1234::/48 */
        if (t.v6 && strncmp(name, "routed", 6) == 0)
                t.routed6 = inet_pton(AF_INET6, "2001:db8:1234::5", &t.addr6) == 1 &&
                            inet_pton(AF_INET6, "2001:db8:1234::1", &t.gateway6) == 1 &&
                            inet_pton(AF_INET6, "2001:db8:1234::", &t.prefix_all) == 1;
        t.prefix_all_len = t.routed6 ? 48 : 0;
        return t;
}

/* tenantd.conf's ipv6-prefix: what is accepted, and that each refusal says why. */
static void test_prefix_parse(void)
{
        static const struct {
                const char *text;
                unsigned len; /* 0: refused */
                const char *why;
        } cases[] = {
            {"2001:db8:1234::/48", 48, NULL},
            {"2001:db8:1234:5600::/56", 56, NULL},
            {"2001:db8:1234:5678::/64", 64, NULL},
            {"2a01:4f8::/32", 32, NULL},
            {"2001:db8::/32", 32, NULL},
            {"2001:db8:1234::/65", 0, "from /16 to /64"},
            {"2001:db8:1234::/128", 0, "from /16 to /64"},
            {"2000::/8", 0, "from /16 to /64"},
            {"2001:db8:1234::1/48", 0, "host bits"},
            {"fd12:3456:789a::/48", 0, "ULA"},
            {"fc00::/16", 0, "ULA"},
            {"fe80::/64", 0, "link-local"},
            {"ff02::/16", 0, "multicast"},
            {"::/64", 0, "reserved"},
            {"::ffff:0:0/96", 0, "from /16 to /64"},
            {"2001:db8::", 0, "ADDR/LEN"},
            {"2001:db8::/", 0, "ADDR/LEN"},
            {"2001:db8::/4x", 0, "ADDR/LEN"},
            {"2001:db8::/-48", 0, "ADDR/LEN"},
            {"10.0.0.0/8", 0, "ADDR/LEN"},
            {"", 0, "ADDR/LEN"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                struct in6_addr a;
                unsigned len = 0;
                char why[200] = "";
                int r = net_prefix_parse(cases[i].text, &a, &len, why, sizeof(why));
                if (cases[i].len)
                        ok(r == 0 && len == cases[i].len, "ipv6-prefix \"%s\": accepted, /%u (%s)",
                           cases[i].text, len, why);
                else
                        ok(r == -EINVAL && strstr(why, cases[i].why),
                           "ipv6-prefix \"%s\": refused, saying \"%s\" (%s)", cases[i].text,
                           cases[i].why, why);
        }
}

/* network.ipv6 "prefix": the tenant's /64 in tenantd.conf's ipv6-prefix, and each
 * refusal saying why. */
static void test_prefix_subnet(void)
{
        static const struct {
                const char *prefix; /* NULL: tenantd.conf names none */
                unsigned len;
                uint32_t index;
                const char *want; /* the /64, or NULL: refused */
                const char *why;
        } cases[] = {
            {"2001:db8:1234::", 48, 3, "2001:db8:1234:4::", NULL},
            {"2001:db8:1234::", 48, 65534, "2001:db8:1234:ffff::", NULL},
            {"2001:db8:1234::", 48, 65535, NULL, "room for 65535 tenant /64s"},
            {"2001:db8:1234:5600::", 56, 0, "2001:db8:1234:5601::", NULL},
            {"2001:db8:1234:5600::", 56, 254, "2001:db8:1234:56ff::", NULL},
            {"2001:db8:1234:5600::", 56, 255, NULL, "room for 255 tenant /64s"},
            {"2001:db8:1234:5670::", 60, 14, "2001:db8:1234:567f::", NULL},
            {"2001:db8:1234:5670::", 60, 15, NULL, "this tenant's index is 15"},
            {"2001:db8::", 32, 70000, "2001:db8:1:1171::", NULL},
            {"2001::", 16, 0xfffffffeU, "2001:0:ffff:ffff::", NULL},
            {"2001::", 16, 0xffffffffU, NULL, "room for 4294967295"},
            {"2001:db8:1234:5678::", 64, 0, NULL, "is a single /64, which the bridge takes"},
            {NULL, 0, 0, NULL, "tenantd.conf has no ipv6-prefix"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                struct in6_addr p, got;
                char why[300] = "", text[INET6_ADDRSTRLEN] = "";
                if (cases[i].prefix)
                        inet_pton(AF_INET6, cases[i].prefix, &p);
                int r = net_prefix_subnet(cases[i].prefix ? &p : NULL, cases[i].len, cases[i].index,
                                          &got, why, sizeof(why));
                if (r == 0)
                        inet_ntop(AF_INET6, &got, text, sizeof(text));
                if (cases[i].want)
                        ok(r == 0 && strcmp(text, cases[i].want) == 0,
                           "/64 of index %u in %s/%u: %s (%s%s)", cases[i].index, cases[i].prefix,
                           cases[i].len, cases[i].want, text, why);
                else
                        ok(r < 0 && strstr(why, cases[i].why),
                           "/64 of index %u in %s/%u: refused, saying \"%s\" (%s)", cases[i].index,
                           cases[i].prefix ? cases[i].prefix : "(none)", cases[i].len, cases[i].why,
                           why);
        }
}

/* Every brace closed, nothing printed from a NULL, no format directive left over. */
static bool well_formed(const char *text)
{
        int depth = 0;
        for (const char *p = text; *p; p++) {
                depth += *p == '{';
                depth -= *p == '}';
                if (depth < 0)
                        return false;
        }
        return depth == 0 && !strstr(text, "(null)") && !strchr(text, '%') &&
               text[strlen(text) - 1] == '\n';
}

static void compare(const char *name, const char *got)
{
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s.nft", dir, name);
        if (!ok(got != NULL, "%s: a ruleset", name))
                return;
        ok(well_formed(got), "%s: well formed", name);
        if (update) {
                _cleanup_fclose_ FILE *f = fopen(path, "we");
                ok(f && fputs(got, f) >= 0, "%s: written to %s", name, path);
                return;
        }
        _cleanup_free_ char *want = NULL;
        size_t len;
        if (read_file_bounded(path, 65536, &want, &len, NULL) < 0) {
                ok(false, "%s: read %s (GOLDEN_UPDATE=1 writes it)", name, path);
                return;
        }
        is_str(got, want, "%s: as in %s.nft", name, name);
}

static int manifest_cases(void)
{
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort), cases = 0;
        for (int i = 0; i < n; i++) {
                char *d = list[i]->d_name;
                size_t l = strlen(d);
                if (l > 5 && strcmp(d + l - 5, ".json") == 0) {
                        d[l - 5] = '\0';
                        char path[1200];
                        if ((size_t)snprintf(path, sizeof(path), "%s/%s.json", dir, d) >=
                            sizeof(path)) {
                                ok(false, "%s: path too long", d);
                                free(list[i]);
                                continue;
                        }
                        _cleanup_free_ char *buf = NULL;
                        size_t len;
                        _cleanup_manifest_ struct manifest *m = NULL;
                        struct diag_list diags = {0};
                        if (!ok(read_file_bounded(path, 65536, &buf, &len, NULL) == 0 &&
                                    manifest_parse(buf, len, &m, &diags) == 0,
                                "%s: parses", d)) {
                                diag_print(&diags, path, stdout);
                                diag_list_clear(&diags);
                                free(list[i]);
                                continue;
                        }
                        diag_list_clear(&diags);
                        /* The manifest's resolvers when it names some (net_resolvers()
                         * then reads nothing else), else a fixed one standing for the
                         * host's resolv.conf. */
                        char dns[NET_MAX_RESOLVERS][16] = {"192.0.2.53"};
                        size_t ndns = m->network.dns_n ? net_resolvers(m, dns) : 1;
                        struct net_tenant t = tenant(m->name, m->network.ipv6);
                        /* "ipv6": "prefix": as net_private_prepare() makes it with
                         * ipv6-prefix 2001:db8:1234::/48: the /64 2001:db8:1234:4:: */
                        if (t.v6 && m->network.ipv6_prefix) {
                                struct in6_addr p;
                                char why[300];
                                inet_pton(AF_INET6, "2001:db8:1234::", &p);
                                t.routed6 = t.prefix6 =
                                    net_prefix_subnet(&p, 48, 3, &t.net6, why, sizeof(why)) == 0;
                                t.addr6 = t.net6;
                                t.addr6.s6_addr[15] = 1;
                                inet_pton(AF_INET6, NET_BRIDGE_LL6, &t.gateway6);
                        }
                        _cleanup_free_ char *got = net_rules_firewall(&t, m, dns, ndns);
                        compare(d, got);
                        cases++;
                }
                free(list[i]);
        }
        free(list);
        return cases;
}

/* What the firewall must say whatever the manifest: the tenant's own tables, the
 * anti-spoofing and the isolation between tenant ports. */
static void test_invariants(void)
{
        static const char json[] = "{\"name\":\"inv\",\"exec\":[\"/bin/true\"],"
                                   "\"network\":{\"mode\":\"private\"}}";
        _cleanup_manifest_ struct manifest *m = NULL;
        struct diag_list diags = {0};
        if (!ok(manifest_parse(json, sizeof(json) - 1, &m, &diags) == 0, "invariants: parses")) {
                diag_list_clear(&diags);
                return;
        }
        struct net_tenant t = tenant("inv", true);
        _cleanup_free_ char *r = net_rules_firewall(&t, m, NULL, 0);
        if (!ok(r != NULL, "invariants: a ruleset"))
                return;
        static const char *const must[] = {
            "table netdev tenantd-inv {",
            "type filter hook ingress device \"tnd-3\"",
            "ether saddr != 02:74:0a:58:00:05 drop",
            "iifname \"tnd-3\" ether type ip ip saddr != 10.88.0.5 drop",
            "iifname \"tnd-3\" ether type arp arp saddr ip != 10.88.0.5 drop",
            "    iifname \"tnd-3\" drop\n    oifname \"tnd-3\" drop\n",
            "iifname \"tenantd0\" ip saddr 10.88.0.5 reject with icmpx type admin-prohibited",
            /* network.limits' defaults */
            "type filter hook forward priority -3;",
            "ip saddr 10.88.0.5 tcp dport { 25, 465, 587 } ct state new ct status ! confirmed "
            "counter name abuse_smtp jump refuse",
            "ip saddr 10.88.0.5 ct state new ct status ! confirmed add @conns { ct zone ct count "
            "over 4096 }",
            "ip daddr 10.88.0.5 ct state new ct status ! confirmed add @conns { ct zone ct count "
            "over 4096 }",
            "limit new_conns { rate over 200/second burst 400 packets }",
            "ip saddr 10.88.0.5 ct state new ct status ! confirmed limit name \"new_conns\"",
            "limit pps_out { rate over 50000/second burst 10000 packets }",
            "ip saddr 10.88.0.5 limit name \"pps_out\"",
            "ip daddr 10.88.0.5 limit name \"pps_in\"",
            /* IPv6: the same, sharing the same budgets */
            "iifname \"tnd-3\" ether type ip6 ip6 saddr != { fd00:db8:1::5, fe80::74:aff:fe58:5 } "
            "counter drop",
            "iifname \"tnd-3\" ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } "
            "counter drop",
            "icmpv6 type nd-neighbor-advert @th,64,128 != { 0xfd000db8000100000000000000000005, "
            "0xfe8000000000000000740afffe580005 } counter drop",
            "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 length != { 24, 32 } "
            "counter drop",
            "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 length 32 @th,192,16 { "
            "0x0101, 0x0201 } @th,208,48 != 0x02740a580005 counter drop",
            "iifname \"tnd-3\" ether type != { ip, arp, ip6 } drop",
            "iifname \"tenantd0\" ip6 saddr { fd00:db8:1::5, fe80::74:aff:fe58:5 } reject with "
            "icmpx type admin-prohibited",
            "ip6 saddr fd00:db8:1::5 ip6 daddr { fc00::/7, fe80::/10 } reject",
            "ip6 daddr fd00:db8:1::5 drop",
            "ip6 saddr fd00:db8:1::5 tcp dport { 25, 465, 587 } ct state new ct status ! "
            "confirmed counter name abuse_smtp jump refuse",
            "ip6 saddr fd00:db8:1::5 ct state new ct status ! confirmed limit name \"new_conns\"",
            "ip6 saddr fd00:db8:1::5 ct state new ct status ! confirmed add @conns { ct zone ct "
            "count over 4096 }",
            "ip6 saddr fd00:db8:1::5 limit name \"pps_out\"",
            "ip6 daddr fd00:db8:1::5 limit name \"pps_in\"",
        };
        for (size_t i = 0; i < sizeof(must) / sizeof(*must); i++)
                ok(strstr(r, must[i]) != NULL, "invariants: has \"%s\"", must[i]);
        ok(!strstr(r, "th dport 53"), "invariants: no resolvers, no port 53 exception");
}

/* A microVM's tap with an egress rate: its netdev chain ends by forwarding what the
 * guest sends to the tap's ifb, after both drops (the ifb's detour skips the chain on
 * the way back); the whole firewall carries the same table. Without a rate, and for a
 * veth whatever its rate, no forward. */
static void test_tap_netdev(void)
{
        static const char json[] = "{\"name\":\"vm\",\"isolation\":\"microvm\","
                                   "\"exec\":[\"/bin/true\"],\"network\":{\"mode\":"
                                   "\"private\",\"egress\":{\"rate\":\"10mbit\"}}}";
        _cleanup_manifest_ struct manifest *m = NULL;
        struct diag_list diags = {0};
        if (!ok(manifest_parse(json, sizeof(json) - 1, &m, &diags) == 0, "tap: parses")) {
                diag_list_clear(&diags);
                return;
        }
        struct net_tenant t = tenant("vm", true);
        t.tap = true;
        t.egress_rate = m->network.egress_rate;
        _cleanup_free_ char *nd = net_rules_netdev(&t);
        compare("netdev-tap", nd);
        _cleanup_free_ char *fw = net_rules_firewall(&t, m, NULL, 0);
        ok(nd && fw && strstr(fw, nd), "tap: the firewall has the same netdev table");
        const char *ll = nd ? strstr(nd, "01:80:c2:00:00:00 counter drop") : NULL;
        const char *src = nd ? strstr(nd, "ether saddr != 02:74:0a:58:00:05 drop") : NULL;
        const char *fwd = nd ? strstr(nd, "fwd to \"tndi-3\"\n  }") : NULL;
        ok(ll && src && fwd && ll < fwd && src < fwd,
           "tap: the forward to tndi-3 is the chain's last rule, after both drops");
        t.egress_rate = 0;
        _cleanup_free_ char *unshaped = net_rules_netdev(&t);
        ok(unshaped && !strstr(unshaped, "fwd"), "tap without an egress rate: no forward");
        t.tap = false;
        t.egress_rate = m->network.egress_rate;
        _cleanup_free_ char *veth = net_rules_netdev(&t);
        ok(veth && !strstr(veth, "fwd"),
           "veth with an egress rate: no forward (its tbf is on eth0)");
}

int main(void)
{
        const char *s = getenv("SRCDIR");
        snprintf(dir, sizeof(dir), "%s/tests/data/nft", s && *s ? s : ".");
        const char *u = getenv("GOLDEN_UPDATE");
        update = u && strcmp(u, "1") == 0;

        int n = manifest_cases();
        ok(n >= 4, "at least 4 manifest cases (%d)", n);

        struct net_tenant t = tenant("pub", true);
        _cleanup_free_ char *host = net_rules_host(NULL, 0);
        compare("host", host);
        struct in6_addr routed;
        inet_pton(AF_INET6, "2001:db8:1234::", &routed);
        _cleanup_free_ char *host_routed = net_rules_host(&routed, 48);
        compare("host-routed", host_routed);
        test_prefix_parse();
        test_prefix_subnet();
        _cleanup_free_ char *cut = net_rules_cut(&t, true);
        compare("cut", cut);
        _cleanup_free_ char *uncut = net_rules_cut(&t, false);
        compare("uncut", uncut);
        _cleanup_free_ char *rm = net_rules_remove("pub");
        compare("remove", rm);

        test_invariants();
        test_tap_netdev();
        return tap_done();
}
