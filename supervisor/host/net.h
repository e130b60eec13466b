/* net.h — tenant networking. The only file that talks to netlink (libnl-route-3) and
 * nftables (libnftables); the rulesets it applies are written by host/net_rules.c.
 *
 * network.mode "none": a fresh network namespace with loopback only.
 * network.mode "private": the tenant's namespace also gets "eth0", one end of a veth
 * pair whose host end is a port of the host bridge (tenantd0, 10.88.0.1/16). Its
 * address is 10.88.0.0 + 2 + the tenant's index (its uid range's position), so it is
 * stable and unique. Egress is NATed through the host. The port learns nothing and is
 * flooded nothing; the tenant's MAC is a static entry on it. Tables of its own in
 * nftables (families netdev, bridge and inet, all named "tenantd-NAME") refuse
 * link-local frames and spoofed sources, every frame between tenants, the host itself
 * (unless allow_host), and what the manifest's allow / deny / deny_lan say; published
 * ports are DNAT rules in the inet table. The host's loopback is never reachable from
 * the bridge (the shared table "ip tenantd").
 * IPv6 (unless the manifest says network.ipv6 false): the bridge also has a ULA /64
 * (RFC 4193: fdGG:GGGG:GGGG::/64, the 40-bit global ID G drawn once at random and kept
 * in STATE_DIR/ula-prefix), the bridge ::1 in it, the tenant ::(2 + index), so its
 * address is as stable as its IPv4 one; a default route via the bridge; egress NATed
 * (NAT66, the shared table "ip6 tenantd"). With an operator's prefix (ipv6-prefix), its
 * address is there instead, routed, or it has a /64 of its own there (see
 * NET_BRIDGE_LL6). The tenant may send from that address (or its /64) and its
 * link-local one (EUI-64 of its MAC) only; its router advertisements and redirects
 * are dropped, and its neighbour advertisements name only its own addresses.
 * Rates: a tbf queue on the egress side of each end of the pair (the tenant's eth0
 * for what it sends, the host end for what it receives); both belong to namespaces the
 * tenant holds no capability over. Rates change live with net_set_rates(); the transfer
 * volume's actions are net_set_rates() (throttle) and net_cut(). */
#pragma once

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "spec/manifest.h"

#define NET_BRIDGE "tenantd0"
#define NET_POOL_PREFIX 16

struct net_tenant {
        char name[MANIFEST_NAME_MAX + 1];
        char host_if[16]; /* the veth end on the bridge: "tnd-INDEX" */
        uint32_t addr;    /* tenant address, host byte order */
        uint32_t gateway; /* the bridge's address */
        uint8_t mac[6];
        uint64_t egress_rate;     /* bits/s, 0 = unshaped: tbf on the tenant's eth0 */
        uint64_t ingress_rate;    /* bits/s, 0 = unshaped: tbf on the host end */
        bool firewall;            /* its nftables tables exist */
        bool tap;                 /* microVM: the tap (and ifb) exist */
        bool veth;                /* sandbox: it made the veth pair host_if/eth0 */
        bool v6;                  /* it has IPv6: the three addresses below */
        struct in6_addr addr6;    /* its address in the bridge's ULA /64 */
        struct in6_addr gateway6; /* the bridge's address there */
        struct in6_addr ll6;      /* its link-local address, EUI-64 of mac */
        bool routed6;             /* addr6 is in the operator's ipv6-prefix: routed, never NATed */
        struct in6_addr prefix_all; /* with routed6: the operator's whole ipv6-prefix, ... */
        unsigned prefix_all_len;    /* ... its length: other tenants' addresses (deny_lan) */
        bool prefix6;               /* network.ipv6 "prefix": net6/64 is the tenant's own */
        struct in6_addr net6;       /* with prefix6: its /64 (addr6 is ::1 in it) */
};

#define NET_ULA_FILE "ula-prefix"
#define NET_V6_PREFIX 64

/* The bridge's ULA /64, read from STATE_DIR/ula-prefix ("fdGG:GGGG:GGGG::/48", one line),
 * or, the first time, drawn (40 random bits from getrandom) and written there: once
 * written it never changes, and two processes that draw at once agree on the first
 * one written (link(2) refuses to replace it). Subnet 0 of that /48 is the bridge's. */
int net_ula_prefix(const char *state_dir, struct in6_addr *ret, struct tn_err **err);

/* The operator's delegated global prefix (tenantd.conf "ipv6-prefix"), as tenantd found
 * it when it started: STATE_DIR/ipv6-prefix ("2001:db8:1234::/48", one line), written or
 * removed by tenantd at start, read by every later net_private_prepare() (tenantctl run
 * included). With it, the bridge's /64 is the prefix's first /64 (subnet 0) instead of
 * the ULA one, and the tenant's stable address ::(2 + index) in it is routed, not NATed.
 * Why a /128 per tenant out of one /64 on the bridge by default: one /64 is what the
 * shortest delegation (a /64) allows, the addresses stay as stable as the IPv4 ones,
 * and neighbour discovery, the anti-spoofing and the guest agent's configuration stay
 * exactly what they are for the ULA. A tenant that asks for it gets a /64 of its own
 * from the rest of a shorter prefix (net_prefix_subnet()). */
#define NET_PREFIX_FILE "ipv6-prefix"
#define NET_PREFIX_MIN 16 /* shortest prefix accepted */

/* A /64 per tenant (manifest network.ipv6 "prefix"), from the same prefix when it is
 * shorter than /64: the tenant of index I gets subnet 1 + I (the bridge keeps subnet 0),
 * PREFIX:(1 + I)::/64 for a /48, its stable address ::1 in it (the address the host's
 * DNAT of its published ports leads to, and what list and status show), and a default
 * route via the bridge's link-local address NET_BRIDGE_LL6, which every tenant can
 * reach whatever its global address. The host routes the /64 via the tenant's
 * link-local address (the EUI-64 of its fixed MAC) on the bridge, with a permanent
 * neighbour entry for it: the host never asks the link for an address of the /64, so
 * no tenant can make it, and a tenant using millions of its addresses fills no
 * neighbour table of the host. Any source in its /64 is the tenant's, nothing else. */
#define NET_BRIDGE_LL6 "fe80::1"

/* The /64 of the tenant of index `index` in the operator's prefix/len (NULL: tenantd.conf
 * names none): subnet 1 + index, in *ret. Refused, saying why in `why`, without a
 * prefix, with a /64 (the bridge's alone) and when the prefix has no subnet 1 + index
 * (a /56 has room for 255 tenants). Pure. */
int net_prefix_subnet(const struct in6_addr *prefix, unsigned len, uint32_t index,
                      struct in6_addr *ret, char *why, size_t why_len);

/* Parses and checks an operator's prefix "ADDR/LEN": LEN from NET_PREFIX_MIN to 64, no
 * host bits set, a global unicast range (not ::/8 with loopback, unspecified and
 * IPv4-mapped, not ULA fc00::/7, which would overlap the bridge's own ULA, not
 * link-local fe80::/10, not multicast ff00::/8). The documentation prefix 2001:db8::/32
 * is accepted (the tests use it). On error, `why` says what is wrong; pure. */
int net_prefix_parse(const char *text, struct in6_addr *ret, unsigned *ret_len, char *why,
                     size_t why_len);

/* Writes STATE_DIR/ipv6-prefix with `text` (checked by net_prefix_parse) or, when text is
 * NULL, removes it. */
int net_prefix_store(const char *state_dir, const char *text, struct tn_err **err);

#define NET_MAX_RESOLVERS 3

/* The resolvers a private tenant uses (written into its resolv.conf) and may reach on
 * port 53 whatever its egress rules say, LAN or host included: the manifest's
 * network.dns, else the host's own IPv4 nameservers except loopback ones (a stub on
 * 127.0.0.53 is not reachable from a tenant). Returns how many; IPv4 only, which every
 * private tenant has. */
size_t net_resolvers(const struct manifest *m, char out[NET_MAX_RESOLVERS][16]);

/* In the supervisor, before the tenant exists: computes the tenant's addresses from its
 * index (and the ULA prefix of state_dir), makes sure the bridge, the shared NAT tables
 * and forwarding are there. */
/* The pool's address, MAC and host_if of tenant index `index` (its uid range's), into *t:
 * what net_private_prepare() sets first, for a cleanup that has nothing else. */
void net_tenant_index(struct net_tenant *t, uint32_t index);

int net_private_prepare(const struct manifest *m, const char *state_dir, uint32_t index,
                        struct net_tenant *ret, struct tn_err **err);

/* In the supervisor, once the tenant's first process (host pid `pid`) exists in its
 * network namespace: creates the veth pair with "eth0" inside, puts the host end on the
 * bridge, and installs the tenant's firewall and published ports. */
int net_private_attach(struct net_tenant *t, const struct manifest *m, pid_t pid,
                       struct tn_err **err);

/* Removes the tenant's veth pair (with t->veth: one it made, named t->host_if; its
 * namespace may outlive it) and its nftables tables (with t->firewall). */
void net_private_remove(struct net_tenant *t);

/* A tenant's addresses as one word for another process (keeper_exec.h's NET), enough
 * for net_private_remove: "IPV4", "IPV4,IPV6", or "IPV4,IPV6/64" when the /64 around
 * IPV6 is the tenant's own (prefix6). */
#define NET_ADDR_WORD_MAX (INET_ADDRSTRLEN + INET6_ADDRSTRLEN + 4)
void net_addr_word(const struct net_tenant *t, char buf[NET_ADDR_WORD_MAX]);

/* Its reverse: addr, v6, addr6, prefix6 and net6, and the MAC, link-local address and
 * host_if that go with addr, into *t (the rest untouched). -EINVAL if `s` is not such
 * a word or its IPv4 address is not one of the pool's. */
int net_addr_word_parse(const char *s, struct net_tenant *t);

/* In the tenant's first process, as root of the namespace's owner: loopback up, and for
 * a private tenant "eth0" with its address and default route, and its IPv6 address and
 * route when it has IPv6 (else IPv6 off); no router advertisements accepted; ports below 1024 bindable without a capability (there is nothing else
 * in the namespace to protect); ICMP echo sockets for the tenant's gids. */
int net_setup_namespace(uint32_t id_base, const struct net_tenant *t, struct tn_err **err);

/* ---- what the monitor and live changes use ---- */

struct net_link_stats {
        uint32_t ifindex;
        uint64_t rx_bytes, tx_bytes;
        uint64_t rx_packets, tx_packets;
        uint64_t rx_dropped, tx_dropped;
};

/* The counters of link `ifname`, in the host's network namespace when pid is 0, else in
 * the network namespace of process `pid`. For a tenant's host end (tnd-N) rx is what the
 * tenant sent and tx what it received. -ENODEV when there is no such link. */
int net_link_counters(const char *ifname, pid_t pid, struct net_link_stats *ret,
                      struct tn_err **err);

/* Changes the tenant's rates live (bits/s; 0 removes the shaping): ingress on the host
 * end, egress on eth0 inside the tenant's network namespace, reached through a netlink
 * socket opened in that namespace by a short-lived thread (see net.c for why this is
 * safe). init_pid is the tenant's init on the host; the caller must be sure the pid is
 * still that process (its parent, or holding a pidfd that says so). Updates
 * t->egress_rate and t->ingress_rate. For a microVM (t->tap) both are on the host: the
 * tap and its ifb (made if missing); init_pid is then not used. */
int net_set_rates(struct net_tenant *t, pid_t init_pid, uint64_t egress, uint64_t ingress,
                  struct tn_err **err);

/* network.limits' named counters in the tenant's table inet tenantd-NAME (net_rules.c):
 * packets refused or dropped at each cap, and the scan and flood detectors' hits. */
enum net_abuse_counter {
        NET_ABUSE_CONNS,     /* abuse_conns: refused at the conns cap */
        NET_ABUSE_NEW_CONNS, /* abuse_new_conns: refused by the new_conns rate */
        NET_ABUSE_PPS_OUT,   /* abuse_pps_out: dropped by pps, from the tenant */
        NET_ABUSE_PPS_IN,    /* abuse_pps_in: dropped by pps, to the tenant */
        NET_ABUSE_SMTP,      /* abuse_smtp: refused connections to 25, 465, 587 */
        NET_ABUSE_SCAN,      /* abuse_scan: new destinations beyond the scan rate */
        NET_ABUSE_FLOOD,     /* abuse_flood: packets beyond the flood rate to one address */
        NET_ABUSE__N,
};

struct net_abuse_counters {
        uint64_t packets[NET_ABUSE__N];
        unsigned present; /* bit 1 << counter: the table has it */
};

/* "abuse_conns", ... */
const char *net_abuse_counter_name(enum net_abuse_counter c);

/* Reads the tenant's abuse counters through libnftables (JSON output, lib/json.h): one
 * netlink dump of the table's counters, no program run. -ENOENT when the tenant has no
 * table. */
int net_abuse_counters(const char *name, struct net_abuse_counters *ret, struct tn_err **err);

/* The host's tracked connections (conntrack entries) of tenant t, at t->addr and, when
 * t->v6, at t->addr6, or with t->prefix6 anywhere in its /64 (as the conns cap counts):
 * those it opened (original source its address) and those opened
 * to it through its published ports (reply source its address, after the DNAT), but
 * for TCP connections in TIME_WAIT or CLOSE, which the conns cap does not count either.
 * Two filtered dumps of the IPv4 table (ctnetlink, CTA_FILTER: the kernel sends only the
 * matching entries) and one whole dump of the IPv6 table, matched here (net.c says why);
 * the count is what the conns cap holds down.
 * -EOPNOTSUPP on a kernel without dump filters (before 5.8). */
int net_conntrack_count(const struct net_tenant *t, uint64_t *ret, struct tn_err **err);

/* The same for n tenants at once, ret[i] for ts[i]: the IPv6 table is read once for all
 * of them (what tenantd's sampling uses: its cost does not grow with tenants times
 * entries). */
int net_conntrack_count_many(const struct net_tenant *const *ts, size_t n, uint64_t *ret,
                             struct tn_err **err);

/* cut: drops every packet the tenant sends or that is sent to it, forwarded or to and
 * from the host (a chain "cut" in its table inet tenantd-NAME, ahead of its firewall);
 * !cut removes that chain. Both are idempotent. For transfer on_exceed "cut". */
int net_cut(struct net_tenant *t, bool cut, struct tn_err **err);

/* microVM tenants (see net.c): after net_private_prepare(), creates the persistent tap
 * t->host_if on the bridge with the same firewall tables as a veth; with an egress
 * rate, what the guest sends is forwarded by the tap's netdev chain, after its checks,
 * to an ifb shaped by a tbf. On failure, call net_private_detach_tap() all the same. */
int net_private_attach_tap(struct net_tenant *t, const struct manifest *m, struct tn_err **err);

/* Once the VM has opened the tap: the tbf for what the guest receives (libvirt sets a
 * noqueue root qdisc on every tap it opens, so this cannot come earlier). */
int net_private_shape_tap(struct net_tenant *t, struct tn_err **err);

/* Removes the tenant's firewall tables, its tap and its ifb. */
void net_private_detach_tap(struct net_tenant *t);
