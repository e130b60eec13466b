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
 * becomes 127.0.0.1, only later, at the dstnat priority). IPv6 needs no such rule: no
 * IPv6 frame passes a tenant port (see the bridge table), and the kernel never accepts
 * ::1 from another device than loopback.
 *
 * postrouting: masquerade for the whole pool. Host-local clients of a published port
 * bound to 127.0.0.1 leave with a loopback source, which is masqueraded too. */
char *net_rules_host(void)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        char a[INET_ADDRSTRLEN];
        ip4(POOL_BASE, a);
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

static size_t count_v4(const struct cidr *c, size_t n)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += c[i].family == AF_INET;
        return k;
}

/* network.limits: what the tenant may cost the host in state and packets, whatever its
 * rates. A base chain of its own on the forward hook, so that no accept of the firewall
 * (a chain at another priority) lets a packet past it; it sees what the tenant sends and
 * receives through the host's routing, its published ports included, keyed on the
 * tenant's address alone, which a veth and a tap have alike and which the bridge table
 * keeps the tenant from forging. Traffic between the tenant and the host itself
 * (allow_host, and host-local clients of a published port) is not forwarded and not
 * counted here. Each refusal goes through a named counter ("abuse_*"), which the
 * monitor reads.
 *
 * - pps: each way, a token bucket of P packets a second with 200 ms of burst; what goes
 *   past it is dropped (a flood of small packets passes any rate in bits).
 * - smtp: new connections to ports 25, 465 and 587 are refused unless allowed.
 * - new_conns: the new connections the tenant opens, a token bucket; the ones beyond it
 *   are refused. Connections to its published ports are not rate-limited here (a busy
 *   site is not abuse); they count towards conns.
 * - conns: a dynamic set with one element, the tenant's address, holds a ct count over
 *   the connections the tenant opens and those opened to it, so both directions share
 *   one cap (two plain "ct count" rules would keep two lists, each up to the cap). A new
 *   connection beyond the cap is refused: a connection the kernel refuses here is never
 *   confirmed, so it takes no place in the conntrack table. The set has room for more
 *   than its one live element: when the tenant's count falls to zero the set's garbage
 *   collector marks the element dead, and it stays in the set, counted against its size,
 *   until a later run frees it (later still when a ruleset change comes in between). In
 *   a set of size 1 the next connection then finds the set full, the add fails, the rule
 *   does not match and every connection passes uncounted until the dead element is gone:
 *   a whole burst of 200 got through so, in a test. Dead elements never match a lookup,
 *   so the spare room only ever holds them.
 * A new connection is the packet that creates its conntrack entry: "ct state new" alone
 * would also hold every packet of a UDP flow that has had no reply yet (a one-way stream
 * of datagrams would then be held to new_conns packets a second), and entries are
 * confirmed only once their first packet leaves, after this hook.
 * Refused means a TCP reset for TCP, an ICMP "administratively prohibited" otherwise, so
 * the tenant's software fails at once rather than retrying into a black hole. Order:
 * the cheapest and the floods first.
 *
 * Two detectors count, and drop nothing (the monitor alerts on them; on_abuse acts):
 * - flood: per destination address, a token bucket of the flood rate (half of pps, or
 *   NET_FLOOD_PPS without pps) in a dynamic set of at most 4096 addresses, each
 *   forgotten 10 s after its last packet; the tenant's packets beyond it toward one
 *   address go through abuse_flood. That is "most of its packets to one place" at a
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

static void limits(FILE *f, const char *ip, const typeof(((struct manifest *)0)->network.limits) *l)
{
        fprintf(f,
                "  counter abuse_conns {}\n"
                "  counter abuse_new_conns {}\n"
                "  counter abuse_pps_out {}\n"
                "  counter abuse_pps_in {}\n"
                "  counter abuse_smtp {}\n"
                "  counter abuse_scan {}\n"
                "  counter abuse_flood {}\n"
                "  set conns { type ipv4_addr; size 64; flags dynamic; }\n"
                "  set scan_seen { type ipv4_addr . inet_service; size 8192; "
                "flags dynamic,timeout; timeout 60s; }\n"
                "  set flood_dst { type ipv4_addr; size 4096; flags dynamic,timeout; "
                "timeout 10s; }\n"
                "  chain refuse {\n"
                "    meta l4proto tcp reject with tcp reset\n"
                "    %s\n"
                "  }\n"
                "  chain abuse {\n"
                "    type filter hook forward priority -3; policy accept;\n",
                REFUSE);
        if (l->pps) {
                uint32_t burst = l->pps / 5 ? l->pps / 5 : 1;
                fprintf(f,
                        "    ip saddr %s limit rate over %u/second burst %u packets counter name "
                        "abuse_pps_out drop\n"
                        "    ip daddr %s limit rate over %u/second burst %u packets counter name "
                        "abuse_pps_in drop\n",
                        ip, l->pps, burst, ip, l->pps, burst);
        }
        uint32_t flood = l->pps ? (l->pps / 2 ? l->pps / 2 : 1) : NET_FLOOD_PPS;
        fprintf(f,
                "    ip saddr %s update @flood_dst { ip daddr limit rate over %u/second burst %u "
                "packets } counter name abuse_flood\n"
                "    ip saddr %s meta l4proto { tcp, udp } " NEW " ip daddr . th dport != "
                "@scan_seen add @scan_seen { ip daddr . th dport } limit rate over %u/minute "
                "burst %u packets counter name abuse_scan\n",
                ip, flood, flood, ip, NET_SCAN_PER_MIN, NET_SCAN_PER_MIN);
        if (!l->smtp)
                fprintf(f,
                        "    ip saddr %s tcp dport { 25, 465, 587 } " NEW " "
                        "counter name abuse_smtp jump refuse\n",
                        ip);
        if (l->new_conns)
                fprintf(f,
                        "    ip saddr %s " NEW " limit rate over %u/second burst %u packets "
                        "counter name abuse_new_conns jump refuse\n",
                        ip, l->new_conns, l->new_burst);
        if (l->conns)
                fprintf(f,
                        "    ip saddr %s " NEW " add @conns { ip saddr ct count over %u } "
                        "counter name abuse_conns jump refuse\n"
                        "    ip daddr %s " NEW " add @conns { ip daddr ct count over %u } "
                        "counter name abuse_conns jump refuse\n",
                        ip, l->conns, ip, l->conns);
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

/* The tenant's three tables. Read top to bottom, first match wins. */
char *net_rules_firewall(const struct net_tenant *t, const struct manifest *m, const char dns[][16],
                         size_t ndns)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        char ip[INET_ADDRSTRLEN], mac[18];
        ip4(t->addr, ip);
        snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", t->mac[0], t->mac[1], t->mac[2],
                 t->mac[3], t->mac[4], t->mac[5]);
        const char *dev = t->host_if;

        /* The port itself, before the bridge sees a frame: the ingress hook of the
         * netdev family runs ahead of the bridge's receive handler (for a tap, after the
         * detour through its ifb, which hands frames back to the tap's receive path).
         * Frames to a link-local group address (01:80:c2:00:00:0X) go, counted: the
         * bridge learns their source before any hook of the bridge family runs, and a
         * tenant has nothing to say to the bridge (STP, LLDP, pause, 802.1X). So does
         * any frame with another source MAC than the tenant's, whatever its destination. */
        fprintf(f, "table netdev tenantd-%s {}\ndelete table netdev tenantd-%s\n", t->name,
                t->name);
        fprintf(f,
                "table netdev tenantd-%s {\n"
                "  chain ingress {\n"
                "    type filter hook ingress device \"%s\" priority 0; policy accept;\n"
                "    ether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00 counter drop\n"
                "    ether saddr != %s drop\n"
                "  }\n"
                "}\n",
                t->name, dev, mac);

        /* Layer 2: the tenant's port may only send its own MAC and IPv4 address, nothing
         * to the host's loopback range (see ensure_host_table, which makes sure of it
         * for the whole bridge at layer 3), and no frame crosses the bridge between two
         * tenant ports. */
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
                "    iifname \"%s\" ether type ip ip daddr 127.0.0.0/8 drop\n"
                "    iifname \"%s\" ether type != { ip, arp } drop\n"
                "  }\n"
                "  chain forward {\n"
                "    type filter hook forward priority 0; policy accept;\n"
                "    iifname \"%s\" drop\n"
                "    oifname \"%s\" drop\n"
                "  }\n"
                "}\n",
                t->name, dev, mac, dev, ip, dev, mac, dev, ip, dev, dev, dev, dev);

        /* Layer 3: what the tenant may reach, and what may reach it. */
        const typeof(m->network) *n = &m->network;
        fprintf(f, "table inet tenantd-%s {}\ndelete table inet tenantd-%s\n", t->name, t->name);
        fprintf(f,
                "table inet tenantd-%s {\n"
                "  chain input {\n"
                "    type filter hook input priority -1; policy accept;\n"
                "    iifname \"%s\" ip saddr %s ct state established,related accept\n",
                t->name, NET_BRIDGE, ip);
        /* Its resolvers stay reachable on port 53 even on the host or the LAN, or its
         * resolv.conf would name servers it may not ask. */
        char dns_set[NET_MAX_RESOLVERS * 18 + 8] = "";
        for (size_t i = 0; i < ndns; i++)
                snprintf(dns_set + strlen(dns_set), sizeof(dns_set) - strlen(dns_set), "%s%s",
                         i ? ", " : "", dns[i]);
        if (ndns)
                fprintf(f,
                        "    iifname \"%s\" ip saddr %s ip daddr { %s } meta l4proto { tcp, udp } "
                        "th dport 53 accept\n",
                        NET_BRIDGE, ip, dns_set);
        if (!n->allow_host)
                fprintf(f, "    iifname \"%s\" ip saddr %s %s\n", NET_BRIDGE, ip, REFUSE);
        fprintf(f,
                "  }\n"
                "  chain forward {\n"
                "    type filter hook forward priority -1; policy accept;\n"
                "    ip saddr %s ct state established,related accept\n"
                "    ip daddr %s ct state established,related accept\n"
                "    ip daddr %s ct status dnat accept\n"
                "    ip daddr %s drop\n",
                ip, ip, ip, ip);
        if (ndns)
                fprintf(f,
                        "    ip saddr %s ip daddr { %s } meta l4proto { tcp, udp } th dport 53 "
                        "accept\n",
                        ip, dns_set);
        if (count_v4(n->deny, n->deny_n)) {
                fprintf(f, "    ip saddr %s ip daddr { ", ip);
                struct cidr v4[MANIFEST_MAX_CIDRS];
                size_t k = 0;
                for (size_t i = 0; i < n->deny_n; i++)
                        if (n->deny[i].family == AF_INET)
                                v4[k++] = n->deny[i];
                cidr_list(f, v4, k);
                fprintf(f, " } %s\n", REFUSE);
        }
        if (n->deny_lan)
                fprintf(f,
                        "    ip saddr %s ip daddr { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                        "100.64.0.0/10, 169.254.0.0/16 } %s\n",
                        ip, REFUSE);
        if (n->allow_n) {
                struct cidr v4[MANIFEST_MAX_CIDRS];
                size_t k = 0;
                for (size_t i = 0; i < n->allow_n; i++)
                        if (n->allow[i].family == AF_INET)
                                v4[k++] = n->allow[i];
                if (k) {
                        fprintf(f, "    ip saddr %s ip daddr != { ", ip);
                        cidr_list(f, v4, k);
                        fprintf(f, " } %s\n", REFUSE);
                } else {
                        fprintf(f, "    ip saddr %s %s\n", ip, REFUSE); /* IPv6 only: none */
                }
        }
        fprintf(f, "  }\n");
        limits(f, ip, &n->limits);

        /* Published ports: to the host's own addresses (or the one given), and from
         * host-local clients. */
        fprintf(f, "  chain prerouting {\n"
                   "    type nat hook prerouting priority dstnat; policy accept;\n");
        for (size_t i = 0; i < n->publish_n; i++) {
                const struct publish_spec *p = &n->publish[i];
                const char *proto = p->proto == PROTO_TCP ? "tcp" : "udp";
                char bind[INET6_ADDRSTRLEN + 16] = "fib daddr type local";
                if (p->bind_family == AF_INET) {
                        char b[INET_ADDRSTRLEN];
                        inet_ntop(AF_INET, p->bind_addr, b, sizeof(b));
                        snprintf(bind, sizeof(bind), "ip daddr %s", b);
                } else if (p->bind_family == AF_INET6) {
                        continue; /* IPv6 is not forwarded yet */
                }
                fprintf(f, "    %s %s dport %u dnat ip to %s:%u\n", bind, proto, p->host_port, ip,
                        p->port);
        }
        fprintf(f, "  }\n"
                   "  chain output {\n"
                   "    type nat hook output priority -100; policy accept;\n");
        for (size_t i = 0; i < n->publish_n; i++) {
                const struct publish_spec *p = &n->publish[i];
                if (p->bind_family == AF_INET6)
                        continue;
                char bind[INET_ADDRSTRLEN + 16] = "fib daddr type local";
                if (p->bind_family == AF_INET) {
                        char b[INET_ADDRSTRLEN];
                        inet_ntop(AF_INET, p->bind_addr, b, sizeof(b));
                        snprintf(bind, sizeof(bind), "ip daddr %s", b);
                }
                fprintf(f, "    %s %s dport %u dnat ip to %s:%u\n", bind,
                        p->proto == PROTO_TCP ? "tcp" : "udp", p->host_port, ip, p->port);
        }
        fprintf(f, "  }\n");
        if (n->public_ipv4)
                public_nat(f, ip, n->public_ipv4);
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
        char ip[INET_ADDRSTRLEN];
        ip4(t->addr, ip);
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
        if (cut)
                fprintf(f,
                        "add rule inet tenantd-%s cut_forward ip saddr %s drop\n"
                        "add rule inet tenantd-%s cut_forward ip daddr %s drop\n"
                        "add rule inet tenantd-%s cut_input ip saddr %s drop\n"
                        "add rule inet tenantd-%s cut_output ip daddr %s drop\n",
                        name, ip, name, ip, name, ip, name, ip);
        else
                fprintf(f,
                        "delete chain inet tenantd-%s cut_forward\n"
                        "delete chain inet tenantd-%s cut_input\n"
                        "delete chain inet tenantd-%s cut_output\n",
                        name, name, name);
        return finish(f, &text);
}
