/* net_rules.c — see net_rules.h. Rulesets are written with open_memstream(); a failed
 * write shows as fclose() failing, and the function then returns NULL. */
#include "host/net_rules.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/cleanup.h"

/* What the tenant gets for a connection it may not make: an immediate "administratively
 * prohibited", so programs fail at once instead of waiting for a timeout. */
#define REFUSE "reject with icmpx type admin-prohibited"

#define POOL_BASE 0x0a580000U /* 10.88.0.0, as in net.c */

static const char *ip4(uint32_t a, char *buf)
{
        struct in_addr in = {.s_addr = htonl(a)};
        inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
        return buf;
}

/* Ends a memstream: its text (which open_memstream() sets only at fclose(), hence the
 * pointer), or NULL, nothing leaked, when a write failed. */
static char *finish(FILE *f, char **text)
{
        if (fclose(f) != 0) {
                free(*text);
                return NULL;
        }
        return *text;
}

/* The host's own table, ip tenantd, shared by every tenant: applied once per host, and
 * replaced whole, so applying it again is harmless.
 *
 * guard: whatever arrives from the bridge (from any tenant port) and is addressed to
 * the host's loopback range, or comes from outside the pool, is dropped, whatever a
 * tenant's allow_host says. The kernel would drop both as martians by itself, but the
 * bridge has route_localnet on (see net_private_prepare), without which a published
 * port bound to 127.0.0.1 could not work; so the check the kernel no longer makes is
 * made here (the class of Kubernetes' CVE-2020-8558: a neighbour sends to 127.0.0.1
 * through the host's MAC and reaches a service bound to loopback only). It runs at the
 * raw priority, ahead of conntrack and NAT, so it sees the addresses the tenant wrote:
 * a tenant's replies to a host-local client of a published port are then still
 * addressed to the bridge's address (the masquerade is undone, and their destination
 * becomes 127.0.0.1, only later, at the dstnat priority).
 *
 * postrouting: masquerade for the whole pool. Host-local clients of a published port
 * bound to 127.0.0.1 leave with a loopback source, which is masqueraded too.
 *
 * IPv6 has a table of its own, ip6 tenantd. guard: from the bridge, only ULA and
 * link-local sources, and the operator's ipv6-prefix when there is one (its first /64 is
 * the bridge's, the tenants' own /64s follow it; each tenant's bridge table narrows that
 * to its own address, or its own /64, and its link-local one); the kernel
 * itself never accepts ::1 from another device than loopback, and there is no
 * route_localnet for IPv6. postrouting: NAT66 (masquerade) for ULA sources leaving
 * through another interface than the bridge, whatever the ULA prefix (each state
 * directory draws its own); addresses of the operator's prefix are routed as they are. */
char *net_rules_host(const struct in6_addr *routed, unsigned routed_len)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        char a[INET_ADDRSTRLEN], r6[INET6_ADDRSTRLEN + 8] = "";
        ip4(POOL_BASE, a);
        if (routed) {
                char p[INET6_ADDRSTRLEN];
                snprintf(r6, sizeof(r6), ", %s/%u", inet_ntop(AF_INET6, routed, p, sizeof(p)),
                         routed_len);
        }
        fprintf(f,
                "table ip tenantd {}\n"
                "delete table ip tenantd\n"
                "table ip tenantd {\n"
                "  chain guard {\n"
                "    type filter hook prerouting priority raw; policy accept;\n"
                "    iifname \"%s\" ip daddr 127.0.0.0/8 drop\n"
                "    iifname \"%s\" ip saddr != %s/%d drop\n"
                "  }\n"
                "  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                "    ip saddr %s/%d oifname != \"%s\" masquerade\n"
                "    ip saddr 127.0.0.0/8 oifname \"%s\" masquerade\n"
                "  }\n"
                "}\n",
                NET_BRIDGE, NET_BRIDGE, a, NET_POOL_PREFIX, a, NET_POOL_PREFIX, NET_BRIDGE,
                NET_BRIDGE);
        fprintf(f,
                "table ip6 tenantd {}\n"
                "delete table ip6 tenantd\n"
                "table ip6 tenantd {\n"
                "  chain guard {\n"
                "    type filter hook prerouting priority raw; policy accept;\n"
                "    iifname \"%s\" ip6 saddr != { fc00::/7, fe80::/10%s } drop\n"
                "  }\n"
                "  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                "    ip6 saddr fc00::/7 oifname != \"%s\" masquerade\n"
                "  }\n"
                "}\n",
                NET_BRIDGE, r6, NET_BRIDGE);
        return finish(f, &text);
}

static void cidr_list(FILE *f, const struct cidr *c, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char a[INET6_ADDRSTRLEN];
                inet_ntop(c[i].family, c[i].addr, a, sizeof(a));
                fprintf(f, "%s%s/%u", i ? ", " : "", a, c[i].prefix);
        }
}

/* The entries of family `family` among c[0..n), into out; how many. */
static size_t of_family(const struct cidr *c, size_t n, int family, struct cidr *out)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (c[i].family == family)
                        out[k++] = c[i];
        return k;
}

/* One address family of a tenant, as the rules name it: every rule about the tenant's
 * address is written once per family it has, from the same line of code, so IPv6 gets
 * exactly what IPv4 gets. A tenant with a /64 of its own (t->prefix6) is its /64
 * wherever a rule matches its addresses: any source in it is the tenant's, anything to
 * it goes to the tenant, and published ports open on all of it; only a DNAT names its
 * one stable address. */
struct fam {
        int family;
        const char *ip;   /* "ip" or "ip6" */
        const char *addr; /* its address, or its /64 */
        const char *dnat; /* the one address a DNAT leads to */
        const char *src;  /* what it may send from: addr, for IPv6 with its link-local */
        const char *sfx;  /* set names: "" or "6" */
        const char *type; /* set key type */
        bool routed;      /* its address is routed (ipv6-prefix): reachable from outside */
        const char *lan;  /* what deny_lan refuses (lan_ranges, and the operator's prefix) */
};

struct fam_text {
        char ip[INET_ADDRSTRLEN];
        char ip6[INET6_ADDRSTRLEN];
        char net6[INET6_ADDRSTRLEN + 4];
        char src6[2 * INET6_ADDRSTRLEN + 12];
        char lan6[64 + INET6_ADDRSTRLEN];
};

/* What deny_lan refuses: the private, shared and link-local ranges of each family, and
 * for a tenant with routed IPv6 the operator's whole ipv6-prefix, where the other
 * tenants' routed addresses and /64s are: a tenant reaches no other tenant, as with
 * IPv4, whose pool is in 10.0.0.0/8 (a connection to another tenant's published port
 * through the host's address is DNATed there, and refused so). The host's own
 * addresses, whatever their range, are refused by the input chain unless allow_host. */
static const char *const lan_ranges[] = {
    "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16",
    "fc00::/7, fe80::/10",
};

/* The families of t: fams[0] IPv4, fams[1] IPv6 when it has it; how many. */
static size_t families(const struct net_tenant *t, struct fam_text *x, struct fam fams[2])
{
        ip4(t->addr, x->ip);
        fams[0] =
            (struct fam){AF_INET, "ip", x->ip, x->ip, x->ip, "", "ipv4_addr", false, lan_ranges[0]};
        if (!t->v6)
                return 1;
        char ll[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &t->addr6, x->ip6, sizeof(x->ip6));
        inet_ntop(AF_INET6, &t->ll6, ll, sizeof(ll));
        const char *own = x->ip6;
        if (t->prefix6) {
                char n[INET6_ADDRSTRLEN];
                snprintf(x->net6, sizeof(x->net6), "%s/64",
                         inet_ntop(AF_INET6, &t->net6, n, sizeof(n)));
                own = x->net6;
        }
        snprintf(x->src6, sizeof(x->src6), "{ %s, %s }", own, ll);
        snprintf(x->lan6, sizeof(x->lan6), "%s", lan_ranges[1]);
        if (t->routed6) {
                char p[INET6_ADDRSTRLEN];
                snprintf(x->lan6 + strlen(x->lan6), sizeof(x->lan6) - strlen(x->lan6), ", %s/%u",
                         inet_ntop(AF_INET6, &t->prefix_all, p, sizeof(p)), t->prefix_all_len);
        }
        fams[1] = (struct fam){AF_INET6, "ip6",       own,        x->ip6, x->src6,
                               "6",      "ipv6_addr", t->routed6, x->lan6};
        return 2;
}

/* An IPv6 address as the 128-bit number a raw payload match compares with. */
static void hex128(const struct in6_addr *a, char out[35])
{
        out[0] = '0';
        out[1] = 'x';
        for (int i = 0; i < 16; i++)
                snprintf(out + 2 + 2 * i, 3, "%02x", a->s6_addr[i]);
}

/* network.limits: what the tenant may cost the host in state and packets, whatever its
 * rates. A base chain of its own on the forward hook, so that no accept of the firewall
 * (a chain at another priority) lets a packet past it; it sees what the tenant sends and
 * receives through the host's routing, its published ports included, keyed on the
 * tenant's addresses alone, which a veth and a tap have alike and which the bridge table
 * keeps the tenant from forging. Traffic between the tenant and the host itself
 * (allow_host, and host-local clients of a published port) is not forwarded and not
 * counted here. Each refusal goes through a named counter ("abuse_*"), which the
 * monitor reads. IPv4 and IPv6 share every budget: the rate limits are named limit
 * objects that the rules of both families use, and the connections are counted in one
 * element (keyed on the conntrack zone, the same for all of the tenant's connections),
 * so a tenant with both has what a tenant with one has, not twice that.
 *
 * - pps: each way, a token bucket of P packets a second with 200 ms of burst; what goes
 *   past it is dropped (a flood of small packets passes any rate in bits).
 * - smtp: new connections to ports 25, 465 and 587 are refused unless allowed.
 * - new_conns: the new connections the tenant opens, a token bucket; the ones beyond it
 *   are refused (TCP reset, ICMP admin-prohibited otherwise).
 * - conns: the tracked connections of the tenant at once (it opened them, or they were
 *   opened to it through a published port), with nf_conncount, which counts each
 *   connection once, drops the ones that ended (TIME_WAIT and CLOSE do not count), and
 *   keeps one list per tenant; new ones beyond it are refused. The set has room for
 *   more than its one live element: when the tenant's count falls to zero the set's
 *   garbage collector marks the element dead, and it stays in the set, counted against
 *   its size, until a later run frees it (later still when a ruleset change comes in
 *   between). In a set of size 1 the next connection then found the set full, the add
 *   failed, the rule did not match and every connection passed uncounted until the dead
 *   element was gone: a whole burst of 200 got through so, in a test (and 0 of 36
 *   rounds with 16 slots or more). Dead elements never match a lookup, so the spare
 *   room only ever holds them.
 * - flood: per destination address (a dynamic set of meters, 10 s idle timeout),
 *   packets beyond NET_FLOOD_PPS a second (or half its pps, when set) are counted,
 *   not dropped, in abuse_flood. That is "most of its packets to one place" at a
 *   rate no ordinary client reaches, DDoS participation. Past 4096 addresses in 10 s
 *   the set is full and packets to new ones are not counted (the scan detector has
 *   long fired by then).
 * - scan: the new connections (TCP, UDP) of the tenant to a destination address and
 *   port it has not tried in the last minute enter a dynamic set of at most 8192;
 *   the ones beyond NET_SCAN_PER_MIN a minute (with as many at once) go through
 *   abuse_scan. A vertical scan (ports of one address) and a horizontal one (one port
 *   of many addresses) are both many new pairs; a client retrying one service is one.
 *   Refused connections count too: the detector runs ahead of the refusals. */
#define NEW "ct state new ct status ! confirmed"

static void limits(FILE *f, const struct fam *fams, size_t nf,
                   const typeof(((struct manifest *)0)->network.limits) *l)
{
        fprintf(f, "  counter abuse_conns {}\n"
                   "  counter abuse_new_conns {}\n"
                   "  counter abuse_pps_out {}\n"
                   "  counter abuse_pps_in {}\n"
                   "  counter abuse_smtp {}\n"
                   "  counter abuse_scan {}\n"
                   "  counter abuse_flood {}\n");
        uint32_t burst = l->pps / 5 ? l->pps / 5 : 1;
        if (l->pps)
                fprintf(f,
                        "  limit pps_out { rate over %u/second burst %u packets }\n"
                        "  limit pps_in { rate over %u/second burst %u packets }\n",
                        l->pps, burst, l->pps, burst);
        if (l->new_conns)
                fprintf(f, "  limit new_conns { rate over %u/second burst %u packets }\n",
                        l->new_conns, l->new_burst);
        fprintf(f, "  limit scan { rate over %u/minute burst %u packets }\n", NET_SCAN_PER_MIN,
                NET_SCAN_PER_MIN);
        fprintf(f, "  set conns { typeof ct zone; size 64; flags dynamic; }\n");
        for (size_t k = 0; k < nf; k++)
                fprintf(f,
                        "  set scan_seen%s { type %s . inet_service; size 8192; "
                        "flags dynamic,timeout; timeout 60s; }\n"
                        "  set flood_dst%s { type %s; size 4096; flags dynamic,timeout; "
                        "timeout 10s; }\n",
                        fams[k].sfx, fams[k].type, fams[k].sfx, fams[k].type);
        fprintf(f,
                "  chain refuse {\n"
                "    meta l4proto tcp reject with tcp reset\n"
                "    %s\n"
                "  }\n"
                "  chain abuse {\n"
                "    type filter hook forward priority -3; policy accept;\n",
                REFUSE);
        uint32_t flood = l->pps ? (l->pps / 2 ? l->pps / 2 : 1) : NET_FLOOD_PPS;
        for (size_t k = 0; k < nf; k++) {
                const char *ip = fams[k].ip, *a = fams[k].addr, *x = fams[k].sfx;
                if (l->pps)
                        fprintf(f,
                                "    %s saddr %s limit name \"pps_out\" counter name "
                                "abuse_pps_out drop\n"
                                "    %s daddr %s limit name \"pps_in\" counter name "
                                "abuse_pps_in drop\n",
                                ip, a, ip, a);
                fprintf(f,
                        "    %s saddr %s update @flood_dst%s { %s daddr limit rate over "
                        "%u/second burst %u packets } counter name abuse_flood\n"
                        "    %s saddr %s meta l4proto { tcp, udp } " NEW " %s daddr . th dport "
                        "!= @scan_seen%s add @scan_seen%s { %s daddr . th dport } limit name "
                        "\"scan\" counter name abuse_scan\n",
                        ip, a, x, ip, flood, flood, ip, a, ip, x, x, ip);
                if (!l->smtp)
                        fprintf(f,
                                "    %s saddr %s tcp dport { 25, 465, 587 } " NEW " "
                                "counter name abuse_smtp jump refuse\n",
                                ip, a);
                if (l->new_conns)
                        fprintf(f,
                                "    %s saddr %s " NEW " limit name \"new_conns\" "
                                "counter name abuse_new_conns jump refuse\n",
                                ip, a);
                if (l->conns)
                        fprintf(f,
                                "    %s saddr %s " NEW " add @conns { ct zone ct count over %u } "
                                "counter name abuse_conns jump refuse\n"
                                "    %s daddr %s " NEW " add @conns { ct zone ct count over %u } "
                                "counter name abuse_conns jump refuse\n",
                                ip, a, l->conns, ip, a, l->conns);
        }
        fprintf(f, "  }\n");
}

/* network.public_ipv4: an address of the host's becomes the tenant's, both ways (1:1
 * NAT). Everything addressed to it, from outside or from the host itself, goes to the
 * tenant whatever the port, and what the tenant sends out leaves with it as source
 * instead of the host's masquerade. Its chains run 5 ahead of the published ports' and
 * the host's masquerade: the first NAT chain of a hook that binds a connection is the
 * last one the kernel runs for it, so no other tenant's port published on "all the
 * host's addresses" can take a connection to this one, and the masquerade never sees
 * the tenant's. The filter side needs nothing new: the forward chain above accepts
 * what was DNATed to the tenant, and network.limits count it like a published port's.
 * Replies go back through conntrack. Another tenant's connection to the address is
 * DNATed too, and then refused by its own forward chain (deny_lan: the pool is in
 * 10/8) or dropped by the bridge between tenant ports, as one to the private address. */
static void public_nat(FILE *f, const char *ip, uint32_t public_ipv4)
{
        char pub[INET_ADDRSTRLEN];
        ip4(public_ipv4, pub);
        fprintf(f,
                "  chain public_in {\n"
                "    type nat hook prerouting priority -105; policy accept;\n"
                "    ip daddr %s dnat ip to %s\n"
                "  }\n"
                "  chain public_local {\n"
                "    type nat hook output priority -105; policy accept;\n"
                "    ip daddr %s dnat ip to %s\n"
                "  }\n"
                "  chain public_out {\n"
                "    type nat hook postrouting priority 95; policy accept;\n"
                "    ip saddr %s oifname != \"%s\" snat ip to %s\n"
                "  }\n",
                pub, ip, pub, ip, ip, NET_BRIDGE, pub);
}

/* The port itself, before the bridge sees a frame: the ingress hook of the netdev
 * family runs ahead of the bridge's receive handler. Frames to a link-local group
 * address (01:80:c2:00:00:0X) go, counted: the bridge learns their source before any
 * hook of the bridge family runs, and a tenant has nothing to say to the bridge (STP,
 * LLDP, pause, 802.1X). So does any frame with another source MAC than the tenant's,
 * whatever its destination.
 *
 * A microVM with an egress rate: what its guest sends is shaped by the tbf of the tap's
 * ifb (net.c), and this chain is what sends it there, as its last rule (`fwd to`, which
 * marks the frame as redirected from ingress, as tc's mirred would). The ifb hands each
 * frame back to the tap's receive path marked to skip classification, and the kernel
 * then skips both tc's ingress hook and this one (they sit together in
 * __netif_receive_skb_core): a frame passes here once, before the detour, and meets the
 * bridge after it. So the filter must sit in front of the redirect, in the same pass,
 * and it does only here: tc's ingress hook runs before this one, so a redirect made in
 * tc (a u32 filter with mirred, as tenantd once had) took every frame away before this
 * chain saw it, and the forged ones came back past it; and neither the ifb's egress
 * hook nor its ingress hook ever sees a redirected frame (both measured on kernel
 * 6.18). Only frames that passed the two drops above reach the ifb and its queue. */
static void netdev_table(FILE *f, const struct net_tenant *t, const char *mac)
{
        fprintf(f, "table netdev tenantd-%s {}\ndelete table netdev tenantd-%s\n", t->name,
                t->name);
        fprintf(f,
                "table netdev tenantd-%s {\n"
                "  chain ingress {\n"
                "    type filter hook ingress device \"%s\" priority 0; policy accept;\n"
                "    ether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00 counter drop\n"
                "    ether saddr != %s drop\n",
                t->name, t->host_if, mac);
        if (t->tap && t->egress_rate) {
                char ifb[16];
                net_rules_tap_ifb(t, ifb);
                fprintf(f, "    fwd to \"%s\"\n", ifb);
        }
        fprintf(f, "  }\n"
                   "}\n");
}

void net_rules_tap_ifb(const struct net_tenant *t, char ret[16])
{
        snprintf(ret, 16, "tndi-%s", t->host_if + 4); /* "tnd-N" -> "tndi-N" */
}

static void mac_text(const struct net_tenant *t, char ret[18])
{
        snprintf(ret, 18, "%02x:%02x:%02x:%02x:%02x:%02x", t->mac[0], t->mac[1], t->mac[2],
                 t->mac[3], t->mac[4], t->mac[5]);
}

char *net_rules_netdev(const struct net_tenant *t)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        char mac[18];
        mac_text(t, mac);
        netdev_table(f, t, mac);
        return finish(f, &text);
}

/* Layer 2: the tenant's port may only send its own MAC and IPv4 address, nothing to the
 * host's loopback range (see net_rules_host, which makes sure of it for the whole bridge
 * at layer 3), and no frame crosses the bridge between two tenant ports. With IPv6: only
 * from its address or its link-local one (a DAD probe from "::" goes too, and DAD then
 * simply succeeds); no router advertisement and no redirect, which would make the host
 * or anything listening on the link route through the tenant (the host ignores both on
 * the bridge anyway, see net.c); no neighbour advertisement for any other target than
 * its own two addresses (nft 1.0 has no name for the target field: it is the 128 bits
 * after the first 64 of the ICMPv6 header). Its neighbour solicitations and
 * advertisements name only its own MAC in their link-layer address option (RFC 4861
 * 4.3, 4.4: the option that tells a neighbour which MAC an address is at): nft 1.0 has
 * no name for options, so the message must be exactly 24 bytes (no option) or 32 (one
 * option of 8 bytes: source or target link-layer address, or the nonce of RFC 7527
 * that a DAD probe carries), and a link-layer option must hold the tenant's MAC at
 * bits 208..256 of the ICMPv6 message. Anything longer (extension headers, several
 * options) is dropped: the kernel never sends that for these two messages. These
 * rules sit in the bridge table's prerouting chain, which every frame of a tenant port
 * crosses, a veth's and a tap's alike, also after a tc redirect through an ifb (which
 * makes the kernel skip the netdev ingress hook: a rule in the netdev table would miss
 * a shaped tap's frames). Without IPv6, no IPv6 frame passes at all. */
static void bridge_table(FILE *f, const struct net_tenant *t, const char *mac, const char *ip,
                         const struct fam *v6)
{
        const char *dev = t->host_if;
        fprintf(f, "table bridge tenantd-%s {}\ndelete table bridge tenantd-%s\n", t->name,
                t->name);
        fprintf(f,
                "table bridge tenantd-%s {\n"
                "  chain prerouting {\n"
                "    type filter hook prerouting priority -200; policy accept;\n"
                "    iifname \"%s\" ether saddr != %s drop\n"
                "    iifname \"%s\" ether type arp arp saddr ip != %s drop\n"
                "    iifname \"%s\" ether type arp arp saddr ether != %s drop\n"
                "    iifname \"%s\" ether type ip ip saddr != %s drop\n"
                "    iifname \"%s\" ether type ip ip daddr 127.0.0.0/8 drop\n",
                t->name, dev, mac, dev, ip, dev, mac, dev, ip, dev);
        if (v6) {
                char a[35], ll[35], mac_hex[13];
                hex128(&t->addr6, a);
                hex128(&t->ll6, ll);
                for (int i = 0; i < 6; i++)
                        snprintf(mac_hex + 2 * i, 3, "%02x", t->mac[i]);
                fprintf(f,
                        "    iifname \"%s\" ether type ip6 ip6 saddr != %s counter drop\n"
                        "    iifname \"%s\" ether type ip6 icmpv6 type { nd-router-advert, "
                        "nd-redirect } counter drop\n"
                        "    iifname \"%s\" ether type ip6 icmpv6 type nd-neighbor-advert "
                        "@th,64,128 != { %s, %s } counter drop\n",
                        dev, v6->src, dev, dev, a, ll);
                fprintf(
                    f,
                    "    iifname \"%s\" ether type ip6 icmpv6 type { nd-neighbor-solicit, "
                    "nd-neighbor-advert } ip6 length != { 24, 32 } counter drop\n"
                    "    iifname \"%s\" ether type ip6 icmpv6 type { nd-neighbor-solicit, "
                    "nd-neighbor-advert } ip6 length 32 @th,192,16 != { 0x0101, 0x0201, 0x0e01 } "
                    "counter drop\n"
                    "    iifname \"%s\" ether type ip6 icmpv6 type { nd-neighbor-solicit, "
                    "nd-neighbor-advert } ip6 length 32 @th,192,16 { 0x0101, 0x0201 } "
                    "@th,208,48 != 0x%s counter drop\n",
                    dev, dev, dev, mac_hex);
        }
        fprintf(f,
                "    iifname \"%s\" ether type != { ip, arp%s } drop\n"
                "  }\n"
                "  chain forward {\n"
                "    type filter hook forward priority 0; policy accept;\n"
                "    iifname \"%s\" drop\n"
                "    oifname \"%s\" drop\n"
                "  }\n"
                "}\n",
                dev, v6 ? ", ip6" : "", dev, dev);
}

/* A routed address (ipv6-prefix) is reachable from anywhere the prefix is routed from,
 * so publish means something more there: a published port is open on the tenant's own
 * address, at its own port (network.publish[].port; no DNAT, the client sees the
 * tenant's address and the tenant the client's), besides the DNAT from the host's
 * addresses that every tenant gets. A port bound to an IPv4 address of the host opens
 * nothing here. Every other new connection to the address is refused at once (TCP
 * reset, ICMP admin-prohibited), as a host's own firewall would; what the tenant
 * opened itself comes back through "established,related" above, ICMPv6 errors such as
 * packet-too-big included. */
static void routed_inbound(FILE *f, const typeof(((struct manifest *)0)->network) *n,
                           const struct fam *F)
{
        for (size_t i = 0; i < n->publish_n; i++) {
                const struct publish_spec *p = &n->publish[i];
                if (p->bind_family && p->bind_family != F->family)
                        continue;
                fprintf(f, "    ip6 daddr %s %s dport %u accept\n", F->addr,
                        p->proto == PROTO_TCP ? "tcp" : "udp", p->port);
        }
        fprintf(f,
                "    ip6 daddr %s meta l4proto tcp reject with tcp reset\n"
                "    ip6 daddr %s %s\n",
                F->addr, F->addr, REFUSE);
}

/* Layer 3, the tenant's filter chains: what it may reach, and what may reach it. */
static void filter_chains(FILE *f, const typeof(((struct manifest *)0)->network) *n,
                          const struct fam *fams, size_t nf, const char *dns_set, size_t ndns)
{
        fprintf(f, "  chain input {\n"
                   "    type filter hook input priority -1; policy accept;\n");
        for (size_t k = 0; k < nf; k++) {
                const struct fam *F = &fams[k];
                fprintf(f, "    iifname \"%s\" %s saddr %s ct state established,related accept\n",
                        NET_BRIDGE, F->ip, F->src);
                /* Its resolvers stay reachable on port 53 even on the host or the LAN, or
                 * its resolv.conf would name servers it may not ask (IPv4 ones). */
                if (ndns && F->family == AF_INET)
                        fprintf(f,
                                "    iifname \"%s\" ip saddr %s ip daddr { %s } meta l4proto { "
                                "tcp, udp } th dport 53 accept\n",
                                NET_BRIDGE, F->addr, dns_set);
                /* Neighbour discovery with its gateway, whatever allow_host says: without
                 * it, no IPv6 packet would leave. */
                if (F->family == AF_INET6)
                        fprintf(f,
                                "    iifname \"%s\" ip6 saddr %s icmpv6 type { "
                                "nd-neighbor-solicit, nd-neighbor-advert } accept\n",
                                NET_BRIDGE, F->src);
                if (!n->allow_host)
                        fprintf(f, "    iifname \"%s\" %s saddr %s %s\n", NET_BRIDGE, F->ip, F->src,
                                REFUSE);
        }
        fprintf(f, "  }\n"
                   "  chain forward {\n"
                   "    type filter hook forward priority -1; policy accept;\n");
        for (size_t k = 0; k < nf; k++) {
                const struct fam *F = &fams[k];
                const char *ip = F->ip, *a = F->addr;
                struct cidr c[MANIFEST_MAX_CIDRS];
                fprintf(f,
                        "    %s saddr %s ct state established,related accept\n"
                        "    %s daddr %s ct state established,related accept\n"
                        "    %s daddr %s ct status dnat accept\n",
                        ip, a, ip, a, ip, a);
                if (F->routed)
                        routed_inbound(f, n, F);
                else
                        fprintf(f, "    %s daddr %s drop\n", ip, a);
                if (ndns && F->family == AF_INET)
                        fprintf(f,
                                "    ip saddr %s ip daddr { %s } meta l4proto { tcp, udp } th "
                                "dport 53 accept\n",
                                a, dns_set);
                size_t nc = of_family(n->deny, n->deny_n, F->family, c);
                if (nc) {
                        fprintf(f, "    %s saddr %s %s daddr { ", ip, a, ip);
                        cidr_list(f, c, nc);
                        fprintf(f, " } %s\n", REFUSE);
                }
                if (n->deny_lan)
                        fprintf(f, "    %s saddr %s %s daddr { %s } %s\n", ip, a, ip, F->lan,
                                REFUSE);
                if (!n->allow_n)
                        continue;
                nc = of_family(n->allow, n->allow_n, F->family, c);
                if (nc) {
                        fprintf(f, "    %s saddr %s %s daddr != { ", ip, a, ip);
                        cidr_list(f, c, nc);
                        fprintf(f, " } %s\n", REFUSE);
                } else {
                        /* The allow list names the other family only: none of this one. */
                        fprintf(f, "    %s saddr %s %s\n", ip, a, REFUSE);
                }
        }
        fprintf(f, "  }\n");
}

/* Published ports: to the host's own addresses (or the one given), and from host-local
 * clients. A port bound to no address answers on both families (when the tenant has
 * IPv6); one bound to an address, on that address's family. Host-local clients of IPv6
 * come from an address of the host, never ::1 (the kernel sends no ::1 source out of
 * loopback), so the output chain leaves ::1 alone. */
static void publish_chains(FILE *f, const typeof(((struct manifest *)0)->network) *n,
                           const struct fam *fams, size_t nf)
{
        for (int output = 0; output < 2; output++) {
                if (output)
                        fprintf(f, "  chain output {\n"
                                   "    type nat hook output priority -100; policy accept;\n");
                else
                        fprintf(f, "  chain prerouting {\n"
                                   "    type nat hook prerouting priority dstnat; policy "
                                   "accept;\n");
                for (size_t i = 0; i < n->publish_n; i++) {
                        const struct publish_spec *p = &n->publish[i];
                        const char *proto = p->proto == PROTO_TCP ? "tcp" : "udp";
                        for (size_t k = 0; k < nf; k++) {
                                const struct fam *F = &fams[k];
                                char bind[INET6_ADDRSTRLEN + 32] = "fib daddr type local";
                                if (p->bind_family && p->bind_family != F->family)
                                        continue;
                                if (p->bind_family) {
                                        char b[INET6_ADDRSTRLEN];
                                        inet_ntop(F->family, p->bind_addr, b, sizeof(b));
                                        snprintf(bind, sizeof(bind), "%s daddr %s", F->ip, b);
                                } else if (output && F->family == AF_INET6) {
                                        snprintf(bind, sizeof(bind),
                                                 "ip6 daddr != ::1 fib daddr type local");
                                }
                                if (F->family == AF_INET6)
                                        fprintf(f, "    %s %s dport %u dnat ip6 to [%s]:%u\n", bind,
                                                proto, p->host_port, F->dnat, p->port);
                                else
                                        fprintf(f, "    %s %s dport %u dnat ip to %s:%u\n", bind,
                                                proto, p->host_port, F->dnat, p->port);
                        }
                }
                fprintf(f, "  }\n");
        }
}

/* The tenant's three tables. Read top to bottom, first match wins. */
char *net_rules_firewall(const struct net_tenant *t, const struct manifest *m, const char dns[][16],
                         size_t ndns)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        char mac[18];
        struct fam_text x;
        struct fam fams[2];
        size_t nf = families(t, &x, fams);
        mac_text(t, mac);
        netdev_table(f, t, mac);
        bridge_table(f, t, mac, x.ip, nf > 1 ? &fams[1] : NULL);

        char dns_set[NET_MAX_RESOLVERS * 18 + 8] = "";
        for (size_t i = 0; i < ndns; i++)
                snprintf(dns_set + strlen(dns_set), sizeof(dns_set) - strlen(dns_set), "%s%s",
                         i ? ", " : "", dns[i]);
        fprintf(f, "table inet tenantd-%s {}\ndelete table inet tenantd-%s\n", t->name, t->name);
        fprintf(f, "table inet tenantd-%s {\n", t->name);
        filter_chains(f, &m->network, fams, nf, dns_set, ndns);
        limits(f, fams, nf, &m->network.limits);
        publish_chains(f, &m->network, fams, nf);
        if (m->network.public_ipv4)
                public_nat(f, x.ip, m->network.public_ipv4);
        fprintf(f, "}\n");
        return finish(f, &text);
}

char *net_rules_remove(const char *name)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        fprintf(f,
                "table bridge tenantd-%s {}\ndelete table bridge tenantd-%s\n"
                "table inet tenantd-%s {}\ndelete table inet tenantd-%s\n"
                "table netdev tenantd-%s {}\ndelete table netdev tenantd-%s\n",
                name, name, name, name, name, name);
        return finish(f, &text);
}

char *net_rules_cut(const struct net_tenant *t, bool cut)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        struct fam_text txt;
        struct fam fams[2];
        size_t nf = families(t, &txt, fams);
        const char *name = t->name;
        /* Declaring the chains first makes both directions idempotent: a chain that
         * exists is left as it is, one that does not is created empty, and then the
         * chains are flushed and, to restore, deleted. Priority -4 runs ahead of the
         * limits (-3) and the firewall's own chains (-1), so nothing there can accept
         * first, and what a cut tenant still tries is not counted as abuse again. */
        fprintf(f,
                "table inet tenantd-%s {\n"
                "  chain cut_forward { type filter hook forward priority -4; policy "
                "accept; }\n"
                "  chain cut_input { type filter hook input priority -4; policy accept; }\n"
                "  chain cut_output { type filter hook output priority -4; policy "
                "accept; }\n"
                "}\n"
                "flush chain inet tenantd-%s cut_forward\n"
                "flush chain inet tenantd-%s cut_input\n"
                "flush chain inet tenantd-%s cut_output\n",
                name, name, name, name);
        for (size_t k = 0; cut && k < nf; k++) {
                const char *x = fams[k].ip, *a = fams[k].addr;
                fprintf(f,
                        "add rule inet tenantd-%s cut_forward %s saddr %s drop\n"
                        "add rule inet tenantd-%s cut_forward %s daddr %s drop\n"
                        "add rule inet tenantd-%s cut_input %s saddr %s drop\n"
                        "add rule inet tenantd-%s cut_output %s daddr %s drop\n",
                        name, x, a, name, x, a, name, x, fams[k].src, name, x, a);
        }
        if (!cut)
                fprintf(f,
                        "delete chain inet tenantd-%s cut_forward\n"
                        "delete chain inet tenantd-%s cut_input\n"
                        "delete chain inet tenantd-%s cut_output\n",
                        name, name, name);
        return finish(f, &text);
}
