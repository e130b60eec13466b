/* net.c — see net.h. Links, addresses and routes through libnl-route-3; the firewall
 * and published ports as nftables rulesets through libnftables. No `ip`, `tc` or `nft`
 * is run. */
#include "host/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/route.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>
#include <nftables/libnftables.h>

#include "host/net_rules.h"
#include "lib/fileio.h"
#include "lib/json.h"

#define POOL_BASE 0x0a580000U /* 10.88.0.0 */
#define POOL_GATEWAY (POOL_BASE + 1)
#define POOL_TENANTS 65000U

static int write_sysctl(const char *path, const char *value, struct tn_err **err)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || write(fd, value, strlen(value)) < 0)
                return tn_err_set(err, errno, "cannot set %s", path);
        return 0;
}

/* The locally administered MAC that goes with pool address `a`: a tenant's, and the
 * bridge's own for the gateway. */
static void mac_of(uint32_t a, uint8_t ret[6])
{
        ret[0] = 0x02;
        ret[1] = 0x74;
        ret[2] = (uint8_t)(a >> 24);
        ret[3] = (uint8_t)(a >> 16);
        ret[4] = (uint8_t)(a >> 8);
        ret[5] = (uint8_t)a;
}

static const char *ip4(uint32_t a, char *buf)
{
        struct in_addr in = {.s_addr = htonl(a)};
        inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
        return buf;
}

/* ---- netlink ---- */

static void sockp(struct nl_sock **s)
{
        if (*s)
                nl_socket_free(*s);
}

static int nl_open(struct nl_sock **ret, struct tn_err **err)
{
        struct nl_sock *s = nl_socket_alloc();
        if (!s)
                return tn_err_setx(err, ENOMEM, "out of memory");
        int r = nl_connect(s, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(s);
                return tn_err_setx(err, EIO, "netlink: %s", nl_geterror(r));
        }
        *ret = s;
        return 0;
}

static int link_up(struct nl_sock *s, const char *name, const uint8_t *mac, struct tn_err **err)
{
        struct rtnl_link *orig = NULL;
        int r = rtnl_link_get_kernel(s, 0, name, &orig);
        if (r < 0)
                return tn_err_setx(err, ENODEV, "link %s: %s", name, nl_geterror(r));
        struct rtnl_link *change = rtnl_link_alloc();
        if (!change) {
                rtnl_link_put(orig);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        rtnl_link_set_flags(change, IFF_UP);
        struct nl_addr *lladdr = NULL;
        if (mac && (lladdr = nl_addr_build(AF_LLC, mac, 6)))
                rtnl_link_set_addr(change, lladdr);
        r = rtnl_link_change(s, orig, change, 0);
        nl_addr_put(lladdr);
        rtnl_link_put(change);
        rtnl_link_put(orig);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot bring %s up: %s", name, nl_geterror(r));
        return 0;
}

/* Whether link `name` has the MAC `mac`. */
static bool link_has_mac(struct nl_sock *s, const char *name, const uint8_t mac[6])
{
        struct rtnl_link *l = NULL;
        if (rtnl_link_get_kernel(s, 0, name, &l) < 0)
                return false;
        struct nl_addr *a = rtnl_link_get_addr(l);
        bool same = a && nl_addr_get_len(a) == 6 && memcmp(nl_addr_get_binary_addr(a), mac, 6) == 0;
        rtnl_link_put(l);
        return same;
}

static int link_index(struct nl_sock *s, const char *name)
{
        struct rtnl_link *l = NULL;
        if (rtnl_link_get_kernel(s, 0, name, &l) < 0)
                return -1;
        int idx = rtnl_link_get_ifindex(l);
        rtnl_link_put(l);
        return idx;
}

/* `text` ("ADDR/PREFIX" of `family`) on link `ifindex`; `flags` are IFA_F_* (nodad). */
static int add_address_text(struct nl_sock *s, int ifindex, int family, const char *text,
                            unsigned flags, struct tn_err **err)
{
        struct nl_addr *local = NULL;
        if (nl_addr_parse(text, family, &local) < 0)
                return tn_err_setx(err, EINVAL, "bad address %s", text);
        struct rtnl_addr *ra = rtnl_addr_alloc();
        if (!ra) {
                nl_addr_put(local);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        rtnl_addr_set_ifindex(ra, ifindex);
        rtnl_addr_set_local(ra, local);
        if (flags)
                rtnl_addr_set_flags(ra, flags);
        int r = rtnl_addr_add(s, ra, 0);
        rtnl_addr_put(ra);
        nl_addr_put(local);
        if (r < 0 && r != -NLE_EXIST)
                return tn_err_setx(err, EIO, "cannot add address %s: %s", text, nl_geterror(r));
        return 0;
}

static int add_address(struct nl_sock *s, int ifindex, uint32_t addr, int prefix,
                       struct tn_err **err)
{
        char text[INET_ADDRSTRLEN + 4], a[INET_ADDRSTRLEN];
        snprintf(text, sizeof(text), "%s/%d", ip4(addr, a), prefix);
        return add_address_text(s, ifindex, AF_INET, text, 0, err);
}

static int add_address6(struct nl_sock *s, int ifindex, const struct in6_addr *addr, unsigned flags,
                        struct tn_err **err)
{
        char text[INET6_ADDRSTRLEN + 4], a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, addr, a, sizeof(a));
        snprintf(text, sizeof(text), "%s/%d", a, NET_V6_PREFIX);
        return add_address_text(s, ifindex, AF_INET6, text, flags, err);
}

/* A route of `family` to `dst` (text, "ADDR/LEN") via `gateway` (text) on link `idx`:
 * added (with NLM_F_REPLACE in `flags` replacing one to the same place), or, when
 * !add, removed if it is there. */
static int route_change(struct nl_sock *s, int family, const char *dst_text, const char *gateway,
                        int idx, bool add, int flags, struct tn_err **err)
{
        struct rtnl_route *route = rtnl_route_alloc();
        struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
        struct nl_addr *dst = NULL, *gw = NULL;
        int r;
        if (!route || !nh || nl_addr_parse(dst_text, family, &dst) < 0 ||
            nl_addr_parse(gateway, family, &gw) < 0) {
                r = tn_err_setx(err, ENOMEM, "out of memory");
        } else {
                rtnl_route_set_family(route, (uint8_t)family);
                rtnl_route_set_dst(route, dst);
                rtnl_route_nh_set_gateway(nh, gw);
                rtnl_route_nh_set_ifindex(nh, idx);
                rtnl_route_add_nexthop(route, nh);
                nh = NULL; /* owned by the route now */
                r = add ? rtnl_route_add(s, route, flags) : rtnl_route_delete(s, route, 0);
                if (!add && (r == -NLE_OBJ_NOTFOUND || r == -NLE_NOADDR))
                        r = 0;
                if (r < 0)
                        r = tn_err_setx(err, EIO, "cannot %s the route to %s via %s: %s",
                                        add ? "add" : "remove", dst_text, gateway, nl_geterror(r));
        }
        if (nh)
                rtnl_route_nh_free(nh);
        nl_addr_put(dst);
        nl_addr_put(gw);
        if (route)
                rtnl_route_put(route);
        return r;
}

/* ---- the bridge and its tenant ports ----
 *
 * Every port of the bridge is a tenant's (a veth's host end or a microVM's tap), and the
 * bridge firewall lets no frame pass from one tenant port to another: the bridge only
 * ever carries frames between a tenant and the host. So nothing the bridge would learn
 * from a port, and nothing it would flood to one, serves a tenant; both serve a hostile
 * guest. Learning lets a port claim another tenant's MAC, and receive what the host
 * sends that tenant, or fill the forwarding table with made-up MACs (frames to the
 * link-local group addresses 01:80:c2:00:00:0X are learned from before any netfilter
 * hook of the bridge family sees them). Flooding hands one tenant's traffic to every
 * port when its entry is missing. Hence, on every tenant port: no learning, no
 * flooding of unknown unicast, multicast or broadcast from other ports (what the host
 * itself sends to the broadcast or a multicast address still reaches every port: the
 * kernel floods what the bridge device originates regardless); the tenant's MAC as a
 * static entry on its own port, sticky so that no other port can take it over; and
 * on the bridge device a permanent neighbour entry for the tenant's address, so the
 * host never asks (an ARP request for one tenant would reach all of them). The
 * bridge learns nothing from link-local frames, keeps no multicast group table, and
 * has a MAC of its own that does not change as ports come and go.
 *
 * libnl-route 3.7 has no setter for most of these, so the requests are built here,
 * attribute by attribute, as `bridge link set`, `bridge fdb add` and `ip neigh add`
 * build theirs, and sent with nl_send_sync() (which frees the message and waits for
 * the kernel's acknowledgement). */

/* No learning from link-local frames, no multicast snooping. */
static int bridge_configure(struct nl_sock *s, int br, struct tn_err **err)
{
        struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = br};
        struct br_boolopt_multi bo = {.optval = 1U << BR_BOOLOPT_NO_LL_LEARN,
                                      .optmask = 1U << BR_BOOLOPT_NO_LL_LEARN};
        struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        struct nlattr *info, *data;
        if (!msg || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
            !(info = nla_nest_start(msg, IFLA_LINKINFO)) ||
            nla_put_string(msg, IFLA_INFO_KIND, "bridge") < 0 ||
            !(data = nla_nest_start(msg, IFLA_INFO_DATA)) ||
            nla_put(msg, IFLA_BR_MULTI_BOOLOPT, sizeof(bo), &bo) < 0 ||
            nla_put_u8(msg, IFLA_BR_MCAST_SNOOPING, 0) < 0) {
                nlmsg_free(msg);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        nla_nest_end(msg, data);
        nla_nest_end(msg, info);
        int r = nl_send_sync(s, msg);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot configure bridge %s: %s", NET_BRIDGE,
                                   nl_geterror(r));
        return 0;
}

/* Port `port` learns nothing and receives no flood from other ports. */
static int port_isolate(struct nl_sock *s, int port, const char *ifname, struct tn_err **err)
{
        static const int off[] = {IFLA_BRPORT_LEARNING, IFLA_BRPORT_UNICAST_FLOOD,
                                  IFLA_BRPORT_MCAST_FLOOD, IFLA_BRPORT_BCAST_FLOOD};
        struct ifinfomsg ifi = {.ifi_family = AF_BRIDGE, .ifi_index = port};
        struct nl_msg *msg = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
        /* NLA_F_NESTED is what tells the bridge that these are port options (without
         * it, IFLA_PROTINFO is read as a bare STP port state). */
        struct nlattr *pi = NULL;
        bool ok = msg && nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
                  (pi = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED));
        for (size_t i = 0; ok && i < sizeof(off) / sizeof(off[0]); i++)
                ok = nla_put_u8(msg, off[i], 0) >= 0;
        if (!ok) {
                nlmsg_free(msg);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        nla_nest_end(msg, pi);
        int r = nl_send_sync(s, msg);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot turn learning and flooding off on %s: %s",
                                   ifname, nl_geterror(r));
        return 0;
}

/* `mac` as a static, sticky forwarding entry of the bridge on port `port`. */
static int port_fdb_add(struct nl_sock *s, int port, const char *ifname, const uint8_t mac[6],
                        struct tn_err **err)
{
        struct ndmsg ndm = {.ndm_family = AF_BRIDGE,
                            .ndm_ifindex = port,
                            .ndm_state = NUD_NOARP, /* "static": never ages */
                            .ndm_flags = NTF_MASTER | NTF_STICKY};
        struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK |
                                                                  NLM_F_CREATE | NLM_F_REPLACE);
        if (!msg || nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0 ||
            nla_put(msg, NDA_LLADDR, 6, mac) < 0) {
                nlmsg_free(msg);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        int r = nl_send_sync(s, msg);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot add the static entry of %s: %s", ifname,
                                   nl_geterror(r));
        return 0;
}

/* The bridge's permanent neighbour entry `dst` (an address of `family`, network order)
 * -> `mac`, or with mac NULL its removal (an entry that is not there is fine). */
static int bridge_neigh_family(struct nl_sock *s, int family, const void *dst, const uint8_t *mac,
                               struct tn_err **err)
{
        int br = link_index(s, NET_BRIDGE);
        if (br < 0)
                return mac ? tn_err_setx(err, ENODEV, "bridge %s vanished", NET_BRIDGE) : 0;
        struct ndmsg ndm = {
            .ndm_family = (uint8_t)family, .ndm_ifindex = br, .ndm_state = NUD_PERMANENT};
        size_t dst_len = family == AF_INET6 ? sizeof(struct in6_addr) : sizeof(uint32_t);
        struct nl_msg *msg =
            mac ? nlmsg_alloc_simple(RTM_NEWNEIGH,
                                     NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
                : nlmsg_alloc_simple(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK);
        if (!msg || nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0 ||
            nla_put(msg, NDA_DST, (int)dst_len, dst) < 0 ||
            (mac && nla_put(msg, NDA_LLADDR, 6, mac) < 0)) {
                nlmsg_free(msg);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        int r = nl_send_sync(s, msg);
        if (r < 0 && (mac || r != -NLE_OBJ_NOTFOUND)) {
                char a[INET6_ADDRSTRLEN];
                return tn_err_setx(err, EIO, "cannot %s the neighbour entry of %s: %s",
                                   mac ? "add" : "remove", inet_ntop(family, dst, a, sizeof(a)),
                                   nl_geterror(r));
        }
        return 0;
}

/* The tenant's entries: its IPv4 address, and its IPv6 one when it has IPv6, or, when
 * it has a /64 of its own, its link-local address, which the /64 is routed through. */
static int bridge_neigh(struct nl_sock *s, const struct net_tenant *t, const uint8_t *mac,
                        struct tn_err **err)
{
        uint32_t dst = htonl(t->addr);
        int r = bridge_neigh_family(s, AF_INET, &dst, mac, err);
        if (r >= 0 && t->v6)
                r = bridge_neigh_family(s, AF_INET6, t->prefix6 ? &t->ll6 : &t->addr6, mac, err);
        return r;
}

/* A tenant's /64 (t->prefix6), routed to its link-local address on the bridge (see
 * NET_BRIDGE_LL6 in net.h); add or remove. */
static int route_own64(struct nl_sock *s, const struct net_tenant *t, bool add, struct tn_err **err)
{
        if (!t->v6 || !t->prefix6)
                return 0;
        int br = link_index(s, NET_BRIDGE);
        if (br < 0)
                return add ? tn_err_setx(err, ENODEV, "bridge %s vanished", NET_BRIDGE) : 0;
        char n[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN + 4], gw[INET6_ADDRSTRLEN];
        snprintf(dst, sizeof(dst), "%s/64", inet_ntop(AF_INET6, &t->net6, n, sizeof(n)));
        inet_ntop(AF_INET6, &t->ll6, gw, sizeof(gw));
        return route_change(s, AF_INET6, dst, gw, br, add, NLM_F_CREATE | NLM_F_REPLACE, err);
}

/* IPv6 on the bridge, as a router's inside interface: no address or route learnt from
 * what a tenant sends (router advertisements, redirects), no DAD for its own addresses
 * (nothing else may claim them: the tenants' firewall drops their advertisements of other
 * addresses). Its addresses: gateway6 in the bridge's /64, and NET_BRIDGE_LL6, the
 * gateway of the tenants with a /64 of their own. */
static int bridge_ipv6(struct nl_sock *s, int idx, const struct in6_addr *gateway6,
                       struct tn_err **err)
{
        static const char *const settings[][2] = {
            {"disable_ipv6", "0"}, {"accept_ra", "0"},  {"accept_redirects", "0"},
            {"autoconf", "0"},     {"accept_dad", "0"},
        };
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
                char path[96];
                snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", NET_BRIDGE,
                         settings[i][0]);
                int r = write_sysctl(path, settings[i][1], err);
                if (r < 0)
                        return r;
        }
        struct in6_addr ll;
        inet_pton(AF_INET6, NET_BRIDGE_LL6, &ll);
        int r = add_address6(s, idx, gateway6, IFA_F_NODAD, err);
        return r < 0 ? r : add_address6(s, idx, &ll, IFA_F_NODAD, err);
}

static int ensure_bridge(struct nl_sock *s, const struct in6_addr *gateway6, struct tn_err **err)
{
        int r = rtnl_link_bridge_add(s, NET_BRIDGE);
        if (r < 0 && r != -NLE_EXIST)
                return tn_err_setx(err, EIO, "cannot create bridge %s: %s", NET_BRIDGE,
                                   nl_geterror(r));
        int idx = link_index(s, NET_BRIDGE);
        if (idx < 0)
                return tn_err_setx(err, ENODEV, "bridge %s vanished", NET_BRIDGE);
        /* Every time, not only when created: a bridge left by an older tenantd is
         * brought to the same settings. Its MAC is fixed too: a bridge otherwise takes
         * the lowest MAC of its ports, which changes as tenants come and go, and every
         * change leaves tenants with a stale gateway MAC and makes the kernel flush the
         * bridge's neighbour table, permanent entries included (see bridge_port). The
         * kernel flushes it whenever a MAC is set, even the same one: so only when it
         * differs. */
        uint8_t mac[6];
        mac_of(POOL_GATEWAY, mac);
        r = bridge_configure(s, idx, err);
        if (r >= 0)
                r = add_address(s, idx, POOL_GATEWAY, NET_POOL_PREFIX, err);
        if (r >= 0 && gateway6)
                r = bridge_ipv6(s, idx, gateway6, err);
        if (r >= 0)
                r = link_up(s, NET_BRIDGE, link_has_mac(s, NET_BRIDGE, mac) ? NULL : mac, err);
        return r;
}

/* A token bucket as the root queue of `ifindex`: `bits` per second, a bucket of 10 ms
 * worth (at least 32 KiB, so TCP reaches the rate), at most 100 ms of queue. */
static int add_tbf(struct nl_sock *s, int ifindex, const char *ifname, uint64_t bits,
                   struct tn_err **err)
{
        uint64_t bytes = bits / 8;
        if (bytes > INT32_MAX)
                bytes = INT32_MAX; /* libnl's limit, ~17 Gbit/s: unshaped in practice */
        uint64_t bucket = bytes / 100 < 32768 ? 32768 : bytes / 100;
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        if (!q)
                return tn_err_setx(err, ENOMEM, "out of memory");
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(1, 0));
        int r = rtnl_tc_set_kind(TC_CAST(q), "tbf");
        if (r >= 0) {
                rtnl_qdisc_tbf_set_rate(q, (int)bytes, (int)bucket, 0);
                r = rtnl_qdisc_tbf_set_limit_by_latency(q, 100000);
        }
        if (r >= 0)
                r = rtnl_qdisc_add(s, q, NLM_F_CREATE | NLM_F_REPLACE);
        rtnl_qdisc_put(q);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot shape %s to %llu bit/s: %s", ifname,
                                   (unsigned long long)bits, nl_geterror(r));
        return 0;
}

/* ---- nftables ---- */

/* libnftables is loaded when a ruleset is first applied, not when the program starts:
 * it and what it pulls in (libnftnl, libmnl, libxtables, libjansson, libgmp) cost every
 * tenantctl command ~2.5 ms to load, and only tenants with a private network use it.
 * The eight functions used are resolved once; the header gives their types. */
static struct {
        struct nft_ctx *(*ctx_new)(uint32_t flags);
        int (*buffer_output)(struct nft_ctx *ctx);
        int (*buffer_error)(struct nft_ctx *ctx);
        int (*run_cmd_from_buffer)(struct nft_ctx *nft, const char *buf);
        const char *(*get_error_buffer)(struct nft_ctx *ctx);
        void (*ctx_free)(struct nft_ctx *ctx);
        void (*output_set_flags)(struct nft_ctx *ctx, unsigned int flags);
        const char *(*get_output_buffer)(struct nft_ctx *ctx);
        char error[200];
} nftlib;
static pthread_once_t nftlib_once = PTHREAD_ONCE_INIT;

static void nftlib_load(void)
{
        void *h = dlopen(NFTABLES_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (h) {
                *(void **)&nftlib.ctx_new = dlsym(h, "nft_ctx_new");
                *(void **)&nftlib.buffer_output = dlsym(h, "nft_ctx_buffer_output");
                *(void **)&nftlib.buffer_error = dlsym(h, "nft_ctx_buffer_error");
                *(void **)&nftlib.run_cmd_from_buffer = dlsym(h, "nft_run_cmd_from_buffer");
                *(void **)&nftlib.get_error_buffer = dlsym(h, "nft_ctx_get_error_buffer");
                *(void **)&nftlib.ctx_free = dlsym(h, "nft_ctx_free");
                *(void **)&nftlib.output_set_flags = dlsym(h, "nft_ctx_output_set_flags");
                *(void **)&nftlib.get_output_buffer = dlsym(h, "nft_ctx_get_output_buffer");
        }
        if (!nftlib.ctx_new || !nftlib.buffer_output || !nftlib.buffer_error ||
            !nftlib.run_cmd_from_buffer || !nftlib.get_error_buffer || !nftlib.ctx_free ||
            !nftlib.output_set_flags || !nftlib.get_output_buffer) {
                const char *e = dlerror();
                snprintf(nftlib.error, sizeof(nftlib.error), "%s", e ? e : "a symbol is missing");
                nftlib.ctx_new = NULL;
        }
}

/* Runs `commands`; with ret_json, asks for JSON output and hands a copy of it back. */
static int nft_run(const char *commands, char **ret_json, struct tn_err **err)
{
        pthread_once(&nftlib_once, nftlib_load);
        if (!nftlib.ctx_new)
                return tn_err_setx(err, ELIBACC,
                                   "cannot load %s, which applies the firewall rules (apt-get "
                                   "install libnftables1): %s",
                                   NFTABLES_SONAME, nftlib.error);
        struct nft_ctx *nft = nftlib.ctx_new(NFT_CTX_DEFAULT);
        if (!nft)
                return tn_err_setx(err, ENOMEM, "cannot create an nftables context");
        nftlib.buffer_output(nft);
        nftlib.buffer_error(nft);
        if (ret_json)
                nftlib.output_set_flags(nft, NFT_CTX_OUTPUT_JSON);
        int r = nftlib.run_cmd_from_buffer(nft, commands);
        if (r != 0) {
                const char *e = nftlib.get_error_buffer(nft);
                r = tn_err_setx(err, strstr(e ? e : "", "No such file") ? ENOENT : EIO,
                                "nftables: %.300s", e && *e ? e : "failed");
        } else if (ret_json) {
                const char *out = nftlib.get_output_buffer(nft);
                if (!(*ret_json = strdup(out ? out : "")))
                        r = tn_err_setx(err, ENOMEM, "out of memory");
        }
        nftlib.ctx_free(nft);
        return r;
}

static int nft_apply(const char *ruleset, struct tn_err **err)
{
        return nft_run(ruleset, NULL, err);
}

/* ---- the abuse counters ---- */

static const char *const abuse_counter_names[NET_ABUSE__N] = {
    [NET_ABUSE_CONNS] = "abuse_conns",     [NET_ABUSE_NEW_CONNS] = "abuse_new_conns",
    [NET_ABUSE_PPS_OUT] = "abuse_pps_out", [NET_ABUSE_PPS_IN] = "abuse_pps_in",
    [NET_ABUSE_SMTP] = "abuse_smtp",       [NET_ABUSE_SCAN] = "abuse_scan",
    [NET_ABUSE_FLOOD] = "abuse_flood",
};

const char *net_abuse_counter_name(enum net_abuse_counter c)
{
        return (unsigned)c < NET_ABUSE__N ? abuse_counter_names[c] : "?";
}

/* nft's JSON: {"nftables": [{"metainfo": {...}}, {"counter": {"family": "inet", "name":
 * "abuse_conns", "table": "tenantd-NAME", "handle": 1, "packets": 0, "bytes": 0}}, ...]}.
 * The text comes from the kernel through libnftables, not from the tenant, but it is
 * bounded and checked all the same. */
static const struct json_limits nft_json_limits = {.max_bytes = 1 << 20, .max_depth = 8};

int net_abuse_counters(const char *name, struct net_abuse_counters *ret, struct tn_err **err)
{
        char cmd[64 + MANIFEST_NAME_MAX];
        snprintf(cmd, sizeof(cmd), "list counters table inet tenantd-%s", name);
        _cleanup_free_ char *text = NULL;
        int r = nft_run(cmd, &text, err);
        if (r < 0)
                return r;
        _cleanup_json_ struct json_value *v = NULL;
        r = json_parse_err(text, strlen(text), &nft_json_limits, "nft's counters", &v, err);
        if (r < 0)
                return r;
        const struct json_value *list = json_get(v, "nftables");
        if (!list || list->type != JSON_ARRAY)
                return tn_err_setx(err, EIO, "nft's counters: no \"nftables\" array");
        struct net_abuse_counters c = {0};
        for (size_t i = 0; i < list->u.array.n; i++) {
                const struct json_value *o = json_get(list->u.array.items[i], "counter");
                const struct json_value *n = json_get(o, "name"), *p = json_get(o, "packets");
                int64_t packets;
                if (!n || n->type != JSON_STRING || !json_number_int64(p, &packets) || packets < 0)
                        continue;
                for (int k = 0; k < NET_ABUSE__N; k++)
                        if (strcmp(n->u.str.text, abuse_counter_names[k]) == 0) {
                                c.packets[k] = (uint64_t)packets;
                                c.present |= 1U << k;
                        }
        }
        *ret = c;
        return 0;
}

/* ---- tracked connections ---- */

/* One ctnetlink dump of the entries of `family` whose original (or reply) source is
 * addr (network order): CTA_TUPLE_ORIG (or _REPLY) { CTA_TUPLE_IP { CTA_IP_V4_SRC or
 * CTA_IP_V6_SRC } } says the value,
 * CTA_FILTER { CTA_FILTER_ORIG_FLAGS (or _REPLY_FLAGS) } which fields to compare (bit 0:
 * the source address, the kernel's CTA_FILTER_F_CTA_IP_SRC; a host-order u32). Each
 * entry is one message. */
#define CT_FILTER_IP_SRC (1U << 0)

/* A TCP entry in TIME_WAIT or CLOSE is a connection that has ended: conntrack keeps it a
 * while (two minutes for TIME_WAIT), but the conns cap (nf_conncount) does not count it,
 * and neither is it counted here. */
static bool ct_entry_ended(struct nlattr *protoinfo)
{
        struct nlattr *pi[CTA_PROTOINFO_MAX + 1], *tcp[CTA_PROTOINFO_TCP_MAX + 1];
        if (!protoinfo || nla_parse_nested(pi, CTA_PROTOINFO_MAX, protoinfo, NULL) < 0 ||
            !pi[CTA_PROTOINFO_TCP] ||
            nla_parse_nested(tcp, CTA_PROTOINFO_TCP_MAX, pi[CTA_PROTOINFO_TCP], NULL) < 0 ||
            !tcp[CTA_PROTOINFO_TCP_STATE] || nla_len(tcp[CTA_PROTOINFO_TCP_STATE]) < 1)
                return false;
        uint8_t state = nla_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
        return state == TCP_CONNTRACK_TIME_WAIT || state == TCP_CONNTRACK_CLOSE;
}

static int ct_count_one(struct nl_msg *msg, void *arg)
{
        struct nlattr *tb[CTA_MAX + 1];
        if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct nfgenmsg), tb, CTA_MAX, NULL) < 0)
                return NL_OK;
        if (!ct_entry_ended(tb[CTA_PROTOINFO]))
                ++*(uint64_t *)arg;
        return NL_OK;
}

/* One dump of `family`'s table, each entry to cb(arg): with `addr`, only the entries
 * whose original (or reply) source it is; without, all of them. */
static int ct_dump(struct nl_sock *s, int family, const void *addr, bool reply,
                   nl_recvmsg_msg_cb_t cb, void *arg)
{
        struct nl_msg *msg = nlmsg_alloc_simple((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
                                                NLM_F_REQUEST | NLM_F_DUMP);
        if (!msg)
                return -NLE_NOMEM;
        struct nfgenmsg h = {.nfgen_family = (uint8_t)family, .version = NFNETLINK_V0};
        bool v6 = family == AF_INET6;
        struct nlattr *tuple, *ip, *filter;
        int r = nlmsg_append(msg, &h, sizeof(h), NLMSG_ALIGNTO);
        if (r == 0 && addr &&
            (!(tuple = nla_nest_start(msg,
                                      (reply ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG) | NLA_F_NESTED)) ||
             !(ip = nla_nest_start(msg, CTA_TUPLE_IP | NLA_F_NESTED)) ||
             nla_put(msg, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, v6 ? 16 : 4, addr) < 0 ||
             nla_nest_end(msg, ip) < 0 || nla_nest_end(msg, tuple) < 0 ||
             !(filter = nla_nest_start(msg, CTA_FILTER | NLA_F_NESTED)) ||
             nla_put_u32(msg, reply ? CTA_FILTER_REPLY_FLAGS : CTA_FILTER_ORIG_FLAGS,
                         CT_FILTER_IP_SRC) < 0 ||
             nla_nest_end(msg, filter) < 0))
                r = -NLE_NOMEM;
        if (r == 0)
                r = nl_send_auto(s, msg);
        nlmsg_free(msg);
        if (r < 0)
                return r;
        nl_socket_modify_cb(s, NL_CB_VALID, NL_CB_CUSTOM, cb, arg);
        return nl_recvmsgs_default(s);
}

/* IPv6 is matched here, not by the kernel: its dump filter did not select IPv6 entries by
 * address on this project's kernels (a filtered dump for one address returned the
 * others'), and a /64 is no single address anyway. So the family's whole table comes,
 * once for every tenant counted together, and each live entry counts once for each
 * tenant whose key (its address: 16 bytes, or its /64: the first 8) its original or
 * reply source falls under. The keys are sorted: a lookup is a binary search, and the
 * cost per sample is one pass over the table whatever the number of tenants. */
struct ct6_key {
        uint8_t addr[16];
        unsigned bytes; /* 16: one address; 8: a /64 */
        size_t who;     /* the index of its tenant */
};

struct ct6_match {
        const struct ct6_key *keys;
        size_t n;
        uint64_t *counts;
};

static int ct6_key_cmp(const void *a, const void *b)
{
        const struct ct6_key *x = a, *y = b;
        if (x->bytes != y->bytes)
                return x->bytes < y->bytes ? -1 : 1;
        return memcmp(x->addr, y->addr, x->bytes);
}

static const struct ct6_key *ct6_find(const struct ct6_match *m, const uint8_t *a, unsigned bytes)
{
        struct ct6_key k = {.bytes = bytes};
        memcpy(k.addr, a, bytes);
        return bsearch(&k, m->keys, m->n, sizeof(*m->keys), ct6_key_cmp);
}

/* The 16 bytes of a tuple's source address, or NULL. */
static const uint8_t *ct_src6(struct nlattr *tuple)
{
        struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1];
        if (!tuple || nla_parse_nested(tb, CTA_TUPLE_MAX, tuple, NULL) < 0 || !tb[CTA_TUPLE_IP] ||
            nla_parse_nested(ip, CTA_IP_MAX, tb[CTA_TUPLE_IP], NULL) < 0 || !ip[CTA_IP_V6_SRC] ||
            nla_len(ip[CTA_IP_V6_SRC]) != 16)
                return NULL;
        return nla_data(ip[CTA_IP_V6_SRC]);
}

static int ct_count_v6(struct nl_msg *msg, void *arg)
{
        struct ct6_match *m = arg;
        struct nlattr *tb[CTA_MAX + 1];
        if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct nfgenmsg), tb, CTA_MAX, NULL) < 0 ||
            ct_entry_ended(tb[CTA_PROTOINFO]))
                return NL_OK;
        const uint8_t *src[2] = {ct_src6(tb[CTA_TUPLE_ORIG]), ct_src6(tb[CTA_TUPLE_REPLY])};
        const struct ct6_key *hit[4] = {0};
        for (size_t i = 0; i < 4; i++) {
                if (!src[i / 2] || !(hit[i] = ct6_find(m, src[i / 2], i % 2 ? 8 : 16)))
                        continue;
                bool again = false; /* an entry counts once per tenant */
                for (size_t j = 0; j < i; j++)
                        again |= hit[j] && hit[j]->who == hit[i]->who;
                if (!again)
                        m->counts[hit[i]->who]++;
        }
        return NL_OK;
}

int net_conntrack_count_many(const struct net_tenant *const *ts, size_t n, uint64_t *ret,
                             struct tn_err **err)
{
        memset(ret, 0, n * sizeof(*ret));
        _cleanup_free_ struct ct6_key *keys = calloc(n ? n : 1, sizeof(*keys));
        struct nl_sock *s = keys ? nl_socket_alloc() : NULL;
        if (!s)
                return tn_err_setx(err, ENOMEM, "out of memory");
        size_t n6 = 0;
        int r = nl_connect(s, NETLINK_NETFILTER);
        for (size_t i = 0; i < n && r == 0; i++) {
                const struct net_tenant *t = ts[i];
                uint32_t addr = htonl(t->addr);
                for (int reply = 0; reply < 2 && r == 0; reply++)
                        r = ct_dump(s, AF_INET, &addr, reply, ct_count_one, &ret[i]);
                if (!t->v6)
                        continue;
                keys[n6] = (struct ct6_key){.bytes = t->prefix6 ? 8 : 16, .who = i};
                memcpy(keys[n6++].addr, t->prefix6 ? t->net6.s6_addr : t->addr6.s6_addr, 16);
        }
        if (r == 0 && n6) {
                qsort(keys, n6, sizeof(*keys), ct6_key_cmp);
                struct ct6_match m = {.keys = keys, .n = n6, .counts = ret};
                r = ct_dump(s, AF_INET6, NULL, false, ct_count_v6, &m);
        }
        nl_socket_free(s);
        if (r == -NLE_OPNOTSUPP || r == -NLE_INVAL)
                return tn_err_setx(err, EOPNOTSUPP,
                                   "this kernel cannot filter conntrack dumps (Linux 5.8 or "
                                   "later can): %s",
                                   nl_geterror(r));
        if (r < 0)
                return tn_err_setx(err, EIO, "conntrack dump: %s", nl_geterror(r));
        return 0;
}

int net_conntrack_count(const struct net_tenant *t, uint64_t *ret, struct tn_err **err)
{
        return net_conntrack_count_many(&t, 1, ret, err);
}

/* The host's own table, ip tenantd (see net_rules_host()): applied once per host, and
 * replaced whole, so applying it again is harmless. */
static int ensure_host_table(const struct in6_addr *routed, unsigned routed_len,
                             struct tn_err **err)
{
        _cleanup_free_ char *ruleset = net_rules_host(routed, routed_len);
        if (!ruleset)
                return tn_err_setx(err, ENOMEM, "out of memory");
        return nft_apply(ruleset, err);
}

/* The tenant's three tables (see net_rules_firewall()). */
static char *firewall_ruleset(const struct net_tenant *t, const struct manifest *m)
{
        char dns[NET_MAX_RESOLVERS][16];
        size_t ndns = net_resolvers(m, dns);
        return net_rules_firewall(t, m, dns, ndns);
}

size_t net_resolvers(const struct manifest *m, char out[NET_MAX_RESOLVERS][16])
{
        size_t n = 0;
        struct in_addr a;
        if (m->network.mode != NET_PRIVATE)
                return 0;
        if (m->network.dns_n) {
                for (size_t i = 0; i < m->network.dns_n && n < NET_MAX_RESOLVERS; i++)
                        if (inet_pton(AF_INET, m->network.dns[i], &a) == 1)
                                inet_ntop(AF_INET, &a, out[n++], 16);
                return n;
        }
        _cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
        char line[256], addr[64];
        while (f && n < NET_MAX_RESOLVERS && fgets(line, sizeof(line), f))
                if (sscanf(line, " nameserver %63s", addr) == 1 &&
                    inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) != 127)
                        inet_ntop(AF_INET, &a, out[n++], 16);
        return n;
}

/* ---- the supervisor's side ---- */

/* ---- IPv6 addresses ---- */

/* "fdGG:GGGG:GGGG::/48": a ULA /48, nothing but the global ID set. */
static int ula_parse(const char *text, struct in6_addr *ret)
{
        char buf[64];
        size_t len = strcspn(text, "\n");
        if (len >= sizeof(buf) || len < 5 || strcmp(text + len, text[len] ? "\n" : "") != 0)
                return -EINVAL;
        memcpy(buf, text, len);
        buf[len] = '\0';
        char *slash = strchr(buf, '/');
        struct in6_addr a;
        if (!slash || strcmp(slash, "/48") != 0)
                return -EINVAL;
        *slash = '\0';
        if (inet_pton(AF_INET6, buf, &a) != 1 || a.s6_addr[0] != 0xfd)
                return -EINVAL;
        for (int i = 6; i < 16; i++)
                if (a.s6_addr[i])
                        return -EINVAL;
        *ret = a;
        return 0;
}

int net_ula_prefix(const char *state_dir, struct in6_addr *ret, struct tn_err **err)
{
        char path[4096], tmp[4096];
        snprintf(path, sizeof(path), "%s/%s", state_dir, NET_ULA_FILE);
        char text[64];
        for (int attempt = 0; attempt < 2; attempt++) {
                ssize_t n = read_small_file(path, text, sizeof(text));
                if (n > 0)
                        return ula_parse(text, ret) < 0
                                   ? tn_err_setx(err, EINVAL,
                                                 "%s: not a ULA prefix \"fdXX:XXXX:XXXX::/48\"",
                                                 path)
                                   : 0;
                if (n < 0 && n != -ENOENT)
                        return tn_err_set(err, (int)-n, "cannot read %s", path);
                /* RFC 4193 3.2: 40 random bits after fd. */
                struct in6_addr a = {.s6_addr = {0xfd}};
                if (getrandom(a.s6_addr + 1, 5, 0) != 5)
                        return tn_err_set(err, errno, "getrandom");
                char addr[INET6_ADDRSTRLEN];
                inet_ntop(AF_INET6, &a, addr, sizeof(addr));
                int len = snprintf(text, sizeof(text), "%s/48\n", addr);
                snprintf(tmp, sizeof(tmp), "%s/.%s.%d.new", state_dir, NET_ULA_FILE, (int)getpid());
                int r = write_file_atomic(tmp, text, (size_t)len, 0644, err);
                if (r < 0)
                        return r;
                /* link(2) never replaces: whoever links first has drawn the prefix. */
                r = link(tmp, path) < 0 && errno != EEXIST ? -errno : 0;
                (void)unlink(tmp);
                if (r < 0)
                        return tn_err_set(err, -r, "cannot write %s", path);
        }
        return tn_err_setx(err, EIO, "%s: written but unreadable", path);
}

/* fe80::/64 with the modified EUI-64 of `mac` (RFC 4291 appendix A), the link-local
 * address the kernel gives an interface with that MAC. */
static void link_local_of(const uint8_t mac[6], struct in6_addr *ret)
{
        struct in6_addr a = {.s6_addr = {0xfe, 0x80}};
        a.s6_addr[8] = mac[0] ^ 0x02;
        a.s6_addr[9] = mac[1];
        a.s6_addr[10] = mac[2];
        a.s6_addr[11] = 0xff;
        a.s6_addr[12] = 0xfe;
        a.s6_addr[13] = mac[3];
        a.s6_addr[14] = mac[4];
        a.s6_addr[15] = mac[5];
        *ret = a;
}

/* The ULA /64's interface identifier `id` (small: 1 is the bridge). */
static void ula_host(const struct in6_addr *prefix, uint32_t id, struct in6_addr *ret)
{
        struct in6_addr a = *prefix;
        memset(a.s6_addr + 8, 0, 8);
        a.s6_addr[12] = (uint8_t)(id >> 24);
        a.s6_addr[13] = (uint8_t)(id >> 16);
        a.s6_addr[14] = (uint8_t)(id >> 8);
        a.s6_addr[15] = (uint8_t)id;
        *ret = a;
}

/* Forwarding for IPv6 makes the kernel ignore router advertisements on every interface
 * whose accept_ra is 1 ("only when not forwarding"): a host that configures its own
 * uplink by SLAAC would lose its address and default route when tenantd starts. So,
 * before turning it on, each interface with accept_ra 1 gets 2 ("even when forwarding"),
 * which is what it had in effect. Only when forwarding is off: an operator who turned it
 * on has chosen already. */
static int ipv6_forwarding(struct tn_err **err)
{
        char buf[8] = "";
        if (read_small_file("/proc/sys/net/ipv6/conf/all/forwarding", buf, sizeof(buf)) > 0 &&
            buf[0] == '1')
                return 0;
        struct dirent **names = NULL;
        int n = scandir("/proc/sys/net/ipv6/conf", &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                const char *d = names[i]->d_name;
                char path[300];
                snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/accept_ra", d);
                if (d[0] != '.' && strcmp(d, "all") != 0 &&
                    read_small_file(path, buf, sizeof(buf)) > 0 && buf[0] == '1')
                        (void)write_sysctl(path, "2", NULL);
                free(names[i]);
        }
        free(names);
        return write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1", err);
}

int net_prefix_parse(const char *text, struct in6_addr *ret, unsigned *ret_len, char *why,
                     size_t why_len)
{
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash = strchr(text, '/');
        char *end = NULL;
        struct in6_addr a;
        if (!slash || (size_t)(slash - text) >= sizeof(buf) - 1) {
                snprintf(why, why_len, "\"%s\": expected an IPv6 prefix ADDR/LEN", text);
                return -EINVAL;
        }
        memcpy(buf, text, (size_t)(slash - text));
        buf[slash - text] = '\0';
        errno = 0;
        unsigned long len = strtoul(slash + 1, &end, 10);
        if (inet_pton(AF_INET6, buf, &a) != 1 || !slash[1] || *end || errno ||
            !(slash[1] >= '0' && slash[1] <= '9')) {
                snprintf(why, why_len, "\"%s\": expected an IPv6 prefix ADDR/LEN", text);
                return -EINVAL;
        }
        if (len < NET_PREFIX_MIN || len > NET_V6_PREFIX) {
                snprintf(why, why_len,
                         "\"%s\": the prefix length must be from /%d to /%d (the bridge needs "
                         "a /64 of it)",
                         text, NET_PREFIX_MIN, NET_V6_PREFIX);
                return -EINVAL;
        }
        for (unsigned bit = (unsigned)len; bit < 128; bit++)
                if (a.s6_addr[bit / 8] & (0x80 >> (bit % 8))) {
                        snprintf(why, why_len, "\"%s\": host bits are set after /%lu", text, len);
                        return -EINVAL;
                }
        const char *kind = a.s6_addr[0] == 0x00            ? "reserved (::/8)"
                           : (a.s6_addr[0] & 0xfe) == 0xfc ? "a ULA (fc00::/7)"
                           : a.s6_addr[0] == 0xfe && (a.s6_addr[1] & 0xc0) == 0x80 ? "link-local"
                           : a.s6_addr[0] == 0xff                                  ? "multicast"
                                                                                   : NULL;
        if (kind) {
                snprintf(why, why_len,
                         "\"%s\" is %s: the prefix must be global unicast, routed to this host",
                         text, kind);
                return -EINVAL;
        }
        *ret = a;
        *ret_len = (unsigned)len;
        return 0;
}

int net_prefix_store(const char *state_dir, const char *text, struct tn_err **err)
{
        char path[4096], line[INET6_ADDRSTRLEN + 8];
        snprintf(path, sizeof(path), "%s/%s", state_dir, NET_PREFIX_FILE);
        if (!text) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return tn_err_set(err, errno, "cannot remove %s", path);
                return 0;
        }
        struct in6_addr a;
        unsigned len;
        char why[200];
        if (net_prefix_parse(text, &a, &len, why, sizeof(why)) < 0)
                return tn_err_setx(err, EINVAL, "ipv6-prefix: %s", why);
        char addr[INET6_ADDRSTRLEN];
        int n = snprintf(line, sizeof(line), "%s/%u\n", inet_ntop(AF_INET6, &a, addr, sizeof(addr)),
                         len);
        return write_file_atomic(path, line, (size_t)n, 0644, err);
}

/* The prefix in STATE_DIR/ipv6-prefix: 1 and the prefix in *ret (its first /64 is the
 * bridge's), its length in *ret_len, 0 when there is none. A file that is not a prefix
 * is an error, not a silent fall back to the ULA. */
static int routed_prefix(const char *state_dir, struct in6_addr *ret, unsigned *ret_len,
                         struct tn_err **err)
{
        char path[4096], text[INET6_ADDRSTRLEN + 8];
        snprintf(path, sizeof(path), "%s/%s", state_dir, NET_PREFIX_FILE);
        ssize_t n = read_small_file(path, text, sizeof(text));
        if (n == -ENOENT)
                return 0;
        if (n < 0)
                return tn_err_set(err, (int)-n, "cannot read %s", path);
        text[strcspn(text, "\n")] = '\0';
        char why[200];
        if (net_prefix_parse(text, ret, ret_len, why, sizeof(why)) < 0)
                return tn_err_setx(err, EINVAL, "%s: %s", path, why);
        return 1;
}

int net_prefix_subnet(const struct in6_addr *prefix, unsigned len, uint32_t index,
                      struct in6_addr *ret, char *why, size_t why_len)
{
        if (!prefix) {
                snprintf(why, why_len,
                         "tenantd.conf has no ipv6-prefix: a /64 per tenant comes from a "
                         "routed prefix of /%d to /%d named there (or use \"ipv6\": true, one "
                         "address)",
                         NET_PREFIX_MIN, NET_V6_PREFIX - 1);
                return -EINVAL;
        }
        char p[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, prefix, p, sizeof(p));
        if (len >= NET_V6_PREFIX) {
                snprintf(why, why_len,
                         "the ipv6-prefix of tenantd.conf, %s/%u, is a single /64, which the "
                         "bridge takes: a /64 per tenant needs a shorter prefix (/%d to /%d; "
                         "or use \"ipv6\": true, one address of that /64)",
                         p, len, NET_PREFIX_MIN, NET_V6_PREFIX - 1);
                return -EINVAL;
        }
        uint64_t subnets = len <= 32 ? UINT64_C(1) << 32 : UINT64_C(1) << (NET_V6_PREFIX - len);
        if ((uint64_t)index + 1 >= subnets) {
                snprintf(why, why_len,
                         "the ipv6-prefix of tenantd.conf, %s/%u, has room for %" PRIu64
                         " tenant /64s after the bridge's, and this tenant's index is %" PRIu32
                         ": a shorter prefix has more",
                         p, len, subnets - 1, index);
                return -ENOSPC;
        }
        /* subnet 1 + index in bits len..63: the low 32 bits of the /64's number */
        struct in6_addr a = *prefix;
        uint32_t sub = index + 1;
        for (int i = 7; i >= 4; i--, sub >>= 8)
                a.s6_addr[i] |= (uint8_t)(sub & 0xff);
        *ret = a;
        return 0;
}

/* The tenant's IPv6 addresses, when the manifest wants IPv6 and the kernel has it: in
 * the operator's prefix (routed) when there is one, else in the ULA; with "prefix", its
 * /64 of the operator's prefix. The bridge's address in *bridge6. */
static int prepare_v6(const struct manifest *m, const char *state_dir,
                      const struct in6_addr *routed, unsigned routed_len, uint32_t index,
                      struct net_tenant *t, struct in6_addr *bridge6, struct tn_err **err)
{
        if (!m->network.ipv6 || access("/proc/sys/net/ipv6", F_OK) < 0)
                return 0;
        struct in6_addr prefix;
        int r = routed ? 0 : net_ula_prefix(state_dir, &prefix, err);
        if (r < 0)
                return r;
        if (routed)
                prefix = *routed;
        t->routed6 = routed != NULL;
        if (routed) {
                t->prefix_all = *routed;
                t->prefix_all_len = routed_len;
        }
        ula_host(&prefix, 1, bridge6);
        t->gateway6 = *bridge6;
        ula_host(&prefix, 2 + index, &t->addr6);
        if (m->network.ipv6_prefix) {
                char why[300];
                r = net_prefix_subnet(routed, routed_len, index, &t->net6, why, sizeof(why));
                if (r < 0)
                        return tn_err_setx(err, -r, "network.ipv6 \"prefix\": %s", why);
                t->prefix6 = true;
                ula_host(&t->net6, 1, &t->addr6);
                inet_pton(AF_INET6, NET_BRIDGE_LL6, &t->gateway6);
        }
        link_local_of(t->mac, &t->ll6);
        t->v6 = true;
        return 0;
}

void net_tenant_index(struct net_tenant *t, uint32_t index)
{
        t->addr = POOL_BASE + 2 + index;
        snprintf(t->host_if, sizeof(t->host_if), "tnd-%u", index);
        mac_of(t->addr, t->mac);
}

int net_private_prepare(const struct manifest *m, const char *state_dir, uint32_t index,
                        struct net_tenant *ret, struct tn_err **err)
{
        if (index >= POOL_TENANTS)
                return tn_err_setx(err, ENOSPC, "no address left in the tenant pool");
        struct net_tenant t = {.gateway = POOL_GATEWAY,
                               .egress_rate = m->network.egress_rate,
                               .ingress_rate = m->network.ingress_rate};
        snprintf(t.name, sizeof(t.name), "%s", m->name);
        net_tenant_index(&t, index);
        struct in6_addr routed, bridge6;
        unsigned routed_len = 0;
        int has_routed = routed_prefix(state_dir, &routed, &routed_len, err);
        int r = has_routed;
        if (r >= 0)
                r = prepare_v6(m, state_dir, has_routed > 0 ? &routed : NULL, routed_len, index, &t,
                               &bridge6, err);
        if (r < 0)
                return tn_err_wrap(err, "IPv6");

        _cleanup_(sockp) struct nl_sock *s = NULL;
        r = nl_open(&s, err);
        if (r < 0)
                return r;
        r = ensure_bridge(s, t.v6 ? &bridge6 : NULL, err);
        if (r < 0)
                return r;
        /* Routing between the bridge and the uplink; route_localnet lets a published
         * port bound to 127.0.0.1 be forwarded to a tenant, and the replies come back
         * (see ensure_host_table). The guard that keeps tenants off the host's
         * loopback goes in first, so route_localnet is never on without it. */
        r = ensure_host_table(has_routed > 0 ? &routed : NULL, routed_len, err);
        if (r >= 0)
                r = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err);
        if (r >= 0)
                r = write_sysctl("/proc/sys/net/ipv4/conf/" NET_BRIDGE "/route_localnet", "1", err);
        if (r >= 0 && t.v6)
                r = ipv6_forwarding(err);
        if (r < 0)
                return r;
        *ret = t;
        return 0;
}

/* Makes the tenant's link t->host_if (a veth's host end or a tap) a port of the bridge
 * and brings it up; its index in *ret_index. The port is configured (see "the bridge
 * and its tenant ports" above) while it is still down, so that no frame ever crosses
 * it under the bridge's defaults. */
static int bridge_port(struct nl_sock *s, const struct net_tenant *t, int *ret_index,
                       struct tn_err **err)
{
        const char *ifname = t->host_if;
        int br = link_index(s, NET_BRIDGE), port = link_index(s, ifname);
        if (br < 0 || port < 0)
                return tn_err_setx(err, ENODEV, "link %s or bridge %s vanished", ifname,
                                   NET_BRIDGE);
        int r = rtnl_link_enslave_ifindex(s, br, port);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot put %s on %s: %s", ifname, NET_BRIDGE,
                                   nl_geterror(r));
        /* The port is a wire, not an interface of the host: no IPv6 address of its own
         * (it would send its own solicitations and reports into the tenant). */
        char path[96];
        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
        if (access(path, F_OK) == 0)
                (void)write_sysctl(path, "1", NULL);
        r = port_isolate(s, port, ifname, err);
        if (r >= 0)
                r = port_fdb_add(s, port, ifname, t->mac, err);
        if (r >= 0)
                r = bridge_neigh(s, t, t->mac, err);
        if (r >= 0)
                r = route_own64(s, t, true, err);
        if (r < 0)
                return r;
        *ret_index = port;
        return link_up(s, ifname, NULL, err);
}

int net_private_attach(struct net_tenant *t, const struct manifest *m, pid_t pid,
                       struct tn_err **err)
{
        _cleanup_(sockp) struct nl_sock *s = NULL;
        int r = nl_open(&s, err);
        if (r < 0)
                return r;
        /* The host end lives exactly as long as the namespace of its peer, so one that
         * exists belongs to a running tenant with the same index (two state directories
         * handing out the same ranges): refuse rather than cut that tenant off. */
        if (link_index(s, t->host_if) >= 0)
                return tn_err_setx(err, EBUSY,
                                   "%s already exists: another running tenant has this tenant's "
                                   "address (are two state directories in use?)",
                                   t->host_if);
        r = rtnl_link_veth_add(s, t->host_if, "eth0", pid);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot create veth %s: %s", t->host_if,
                                   nl_geterror(r));
        t->veth = true;
        int port = -1;
        r = bridge_port(s, t, &port, err);
        if (r >= 0 && t->ingress_rate)
                r = add_tbf(s, port, t->host_if, t->ingress_rate, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *rules = firewall_ruleset(t, m);
        if (!rules)
                return tn_err_setx(err, ENOMEM, "out of memory");
        t->firewall = true;
        return nft_apply(rules, err);
}

static int link_delete(struct nl_sock *s, const char *name);

void net_private_remove(struct net_tenant *t)
{
        /* The veth first. Its host end would go with the tenant's namespace, but the
         * kernel keeps a namespace as long as anything holds it (an orphaned TCP socket
         * still sending its FIN, for seconds to minutes), and the next tenant with this
         * index would find the link there and be refused. Deleting one end deletes
         * both. Only a veth this tenant made (t->veth): one that existed before it
         * belongs to someone else (net_private_attach refused it). */
        struct nl_sock *s = NULL;
        if ((t->veth || t->firewall) && nl_open(&s, NULL) < 0)
                s = NULL;
        if (t->veth && s && t->host_if[0])
                (void)link_delete(s, t->host_if);
        t->veth = false;
        if (t->firewall) {
                _cleanup_free_ char *ruleset = net_rules_remove(t->name);
                if (ruleset)
                        (void)nft_apply(ruleset, NULL);
                /* The port's forwarding entry goes with the port; the bridge's neighbour
                 * entry stays unless removed. (Left behind, it would still be right: a
                 * MAC is derived from its address.) Without an address there is none to
                 * name. */
                if (t->addr && s) {
                        (void)route_own64(s, t, false, NULL);
                        (void)bridge_neigh(s, t, NULL, NULL);
                }
                t->firewall = false;
        }
        if (s)
                nl_socket_free(s);
}

void net_addr_word(const struct net_tenant *t, char buf[NET_ADDR_WORD_MAX])
{
        uint32_t a4 = htonl(t->addr);
        char a6[INET6_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, &a4, buf, INET_ADDRSTRLEN);
        if (t->v6)
                inet_ntop(AF_INET6, &t->addr6, a6, sizeof(a6));
        size_t l = strlen(buf);
        snprintf(buf + l, NET_ADDR_WORD_MAX - l, "%s%s%s", t->v6 ? "," : "", a6,
                 t->v6 && t->prefix6 ? "/64" : "");
}

int net_addr_word_parse(const char *s, struct net_tenant *t)
{
        char w[NET_ADDR_WORD_MAX];
        if (strlen(s) >= sizeof(w))
                return -EINVAL;
        snprintf(w, sizeof(w), "%s", s);
        char *a6 = strchr(w, ','), *len = NULL;
        if (a6) {
                *a6++ = '\0';
                if ((len = strchr(a6, '/'))) {
                        if (strcmp(len, "/64") != 0)
                                return -EINVAL;
                        *len = '\0';
                }
        }
        uint32_t be;
        struct in6_addr addr6;
        if (inet_pton(AF_INET, w, &be) != 1 || (a6 && inet_pton(AF_INET6, a6, &addr6) != 1))
                return -EINVAL;
        uint32_t addr = ntohl(be);
        if (addr >= POOL_BASE + 2 && addr - POOL_BASE - 2 < POOL_TENANTS)
                net_tenant_index(t, addr - POOL_BASE - 2);
        else
                return -EINVAL;
        t->v6 = a6 != NULL;
        if (!t->v6)
                return 0;
        t->addr6 = addr6;
        link_local_of(t->mac, &t->ll6);
        t->prefix6 = len != NULL;
        if (t->prefix6) {
                t->net6 = addr6;
                memset(t->net6.s6_addr + 8, 0, 8);
        }
        return 0;
}

/* ---- the tenant's side ---- */

/* A default route of `family` via `gateway` (text) on link `idx`. */
static int add_default_route(struct nl_sock *s, int family, const char *gateway, int idx,
                             struct tn_err **err)
{
        return route_change(s, family, family == AF_INET6 ? "::/0" : "0.0.0.0/0", gateway, idx,
                            true, 0, err);
}

static int setup_eth0(const struct net_tenant *t, struct tn_err **err)
{
        _cleanup_(sockp) struct nl_sock *s = NULL;
        int r = nl_open(&s, err);
        if (r < 0)
                return r;
        r = link_up(s, "eth0", t->mac, err);
        int idx = link_index(s, "eth0");
        if (r >= 0 && idx < 0)
                r = tn_err_setx(err, ENODEV, "eth0 is missing");
        if (r >= 0)
                r = add_address(s, idx, t->addr, NET_POOL_PREFIX, err);
        if (r >= 0 && t->egress_rate)
                r = add_tbf(s, idx, "eth0", t->egress_rate, err);
        char g[INET6_ADDRSTRLEN];
        if (r >= 0)
                r = add_default_route(s, AF_INET, ip4(t->gateway, g), idx, err);
        /* No DAD: the bridge drops solicitations from "::", and nothing else on the
         * link may hold this address; without it, the address works at once. */
        if (r >= 0 && t->v6)
                r = add_address6(s, idx, &t->addr6, IFA_F_NODAD, err);
        if (r >= 0 && t->v6)
                r = add_default_route(s, AF_INET6, inet_ntop(AF_INET6, &t->gateway6, g, sizeof(g)),
                                      idx, err);
        return r;
}

int net_setup_namespace(uint32_t id_base, const struct net_tenant *t, struct tn_err **err)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return tn_err_set(err, errno, "socket");
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return tn_err_set(err, errno, "cannot read the flags of lo");
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return tn_err_set(err, errno, "cannot bring lo up");

        /* These files are per network namespace: what is written here applies to the
         * tenant's namespace only. */
        int r = write_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0", err);
        if (r < 0)
                return r;
        char range[32];
        snprintf(range, sizeof(range), "%u %u", id_base, id_base + 65535);
        r = write_sysctl("/proc/sys/net/ipv4/ping_group_range", range, err);
        if (r < 0 || !t)
                return r;
        /* IPv6: off, or on with no address, route or neighbour learnt from the link (the
         * host sends no advertisements; whatever else might is dropped on the bridge). */
        static const char *const v6_on[] = {"accept_ra",        "0", "autoconf",   "0",
                                            "accept_redirects", "0", "accept_dad", "0"};
        static const char *const confs[] = {"all", "default", "eth0"};
        for (int i = 0; i < 3 && r >= 0; i++) {
                const char *conf = confs[i];
                char path[96];
                snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s", conf);
                if (access(path, F_OK) < 0)
                        continue; /* eth0 made later: "default" is what it gets */
                if (!t->v6) {
                        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
                                 conf);
                        r = write_sysctl(path, "1", err);
                        continue;
                }
                for (size_t k = 0; k < sizeof(v6_on) / sizeof(*v6_on) && r >= 0; k += 2) {
                        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", conf,
                                 v6_on[k]);
                        r = write_sysctl(path, v6_on[k + 1], err);
                }
        }
        if (r >= 0)
                r = setup_eth0(t, err);
        return r;
}

/* ---- counters, live rates, cut ---- */

/* A netlink socket that lives in the network namespace of process `pid`.
 *
 * A socket belongs to the namespace it was created in, whatever thread uses it later.
 * So a short-lived thread enters the tenant's namespace with setns(), which for a
 * network namespace changes that thread alone, creates the socket and ends; the daemon's
 * own threads never leave the host's namespace, even if setns() or anything after it
 * fails. The thread runs no code that reads what the tenant controls. The namespace is
 * named by a pidfd, so it is the namespace of that very process (the caller vouches for
 * the pid; see net.h). The tenant cannot interfere through the namespace: it was created
 * by the supervisor and belongs to the host's user namespace, over which the tenant has
 * no capability, so it can neither rename eth0 nor touch its qdisc. */
struct ns_socket_job {
        int nsfd;
        struct nl_sock *sock;
        int error; /* errno, or 0 */
        int nl_error;
};

static void *ns_socket_thread(void *arg)
{
        struct ns_socket_job *job = arg;
        if (setns(job->nsfd, CLONE_NEWNET) < 0) {
                job->error = errno;
                return NULL;
        }
        struct nl_sock *s = nl_socket_alloc();
        if (!s) {
                job->error = ENOMEM;
                return NULL;
        }
        int r = nl_connect(s, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(s);
                job->nl_error = r;
                return NULL;
        }
        job->sock = s;
        return NULL;
}

static int nl_open_in_netns(pid_t pid, struct nl_sock **ret, struct tn_err **err)
{
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return tn_err_set(err, errno, "cannot open process %d", (int)pid);
        struct ns_socket_job job = {.nsfd = pidfd};
        pthread_t th;
        int r = pthread_create(&th, NULL, ns_socket_thread, &job);
        if (r != 0)
                return tn_err_set(err, r, "cannot start a thread");
        pthread_join(th, NULL);
        if (job.error)
                return tn_err_set(err, job.error,
                                  "cannot open a netlink socket in the network namespace of %d",
                                  (int)pid);
        if (job.nl_error)
                return tn_err_setx(err, EIO, "netlink in the network namespace of %d: %s", (int)pid,
                                   nl_geterror(job.nl_error));
        *ret = job.sock;
        return 0;
}

int net_link_counters(const char *ifname, pid_t pid, struct net_link_stats *ret,
                      struct tn_err **err)
{
        _cleanup_(sockp) struct nl_sock *s = NULL;
        int r = pid ? nl_open_in_netns(pid, &s, err) : nl_open(&s, err);
        if (r < 0)
                return r;
        struct rtnl_link *l = NULL;
        r = rtnl_link_get_kernel(s, 0, ifname, &l);
        if (r < 0)
                return tn_err_setx(err, ENODEV, "link %s: %s", ifname, nl_geterror(r));
        struct net_link_stats st = {
            .ifindex = (uint32_t)rtnl_link_get_ifindex(l),
            .rx_bytes = rtnl_link_get_stat(l, RTNL_LINK_RX_BYTES),
            .tx_bytes = rtnl_link_get_stat(l, RTNL_LINK_TX_BYTES),
            .rx_packets = rtnl_link_get_stat(l, RTNL_LINK_RX_PACKETS),
            .tx_packets = rtnl_link_get_stat(l, RTNL_LINK_TX_PACKETS),
            .rx_dropped = rtnl_link_get_stat(l, RTNL_LINK_RX_DROPPED),
            .tx_dropped = rtnl_link_get_stat(l, RTNL_LINK_TX_DROPPED),
        };
        rtnl_link_put(l);
        *ret = st;
        return 0;
}

/* Removes the root qdisc of `ifindex` (back to the kernel's default); none is fine. */
static int del_root_qdisc(struct nl_sock *s, int ifindex, const char *ifname, struct tn_err **err)
{
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        if (!q)
                return tn_err_setx(err, ENOMEM, "out of memory");
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        int r = rtnl_qdisc_delete(s, q);
        rtnl_qdisc_put(q);
        if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_NOADDR)
                return tn_err_setx(err, EIO, "cannot remove the shaping of %s: %s", ifname,
                                   nl_geterror(r));
        return 0;
}

static int shape(struct nl_sock *s, const char *ifname, uint64_t bits, struct tn_err **err)
{
        int idx = link_index(s, ifname);
        if (idx < 0)
                return tn_err_setx(err, ENODEV, "link %s is missing", ifname);
        return bits ? add_tbf(s, idx, ifname, bits, err) : del_root_qdisc(s, idx, ifname, err);
}

static int shape_tap_egress(struct nl_sock *s, struct net_tenant *t, struct tn_err **err);
static void ifb_name(const struct net_tenant *t, char out[16]);

/* The tap's netdev table again, for t->egress_rate: with or without the forward to
 * the ifb. Replaced in one nft transaction, so no frame ever meets the port without
 * its checks. */
static int tap_netdev_apply(const struct net_tenant *t, struct tn_err **err)
{
        _cleanup_free_ char *ruleset = net_rules_netdev(t);
        if (!ruleset)
                return tn_err_setx(err, ENOMEM, "out of memory");
        return nft_apply(ruleset, err);
}

/* A tap's egress rate set live, from none or to none. An ifb exists exactly while the
 * tap's netdev table forwards to it: it is made (and shaped) before the table that
 * leads there, and goes after the table that no longer does; a failure leaves both as
 * they were. In between, set_tap_rates only reshapes the ifb. */
static int tap_egress_begin(struct nl_sock *s, struct net_tenant *t, uint64_t egress,
                            struct tn_err **err)
{
        uint64_t old = t->egress_rate;
        t->egress_rate = egress;
        int r = shape_tap_egress(s, t, err);
        if (r >= 0)
                r = tap_netdev_apply(t, err);
        if (r < 0) {
                char ifb[16];
                ifb_name(t, ifb);
                (void)link_delete(s, ifb);
                t->egress_rate = old;
        }
        return r;
}

static int tap_egress_end(struct nl_sock *s, struct net_tenant *t, struct tn_err **err)
{
        uint64_t old = t->egress_rate;
        t->egress_rate = 0;
        int r = tap_netdev_apply(t, err);
        if (r < 0) {
                t->egress_rate = old;
                return r;
        }
        char ifb[16];
        ifb_name(t, ifb);
        (void)link_delete(s, ifb);
        return 0;
}

/* A microVM's rates are all on the host: what it receives on its tap, what it sends on
 * the tap's ifb (made when an egress rate comes, removed when it goes). */
static int set_tap_rates(struct net_tenant *t, uint64_t egress, uint64_t ingress,
                         struct tn_err **err)
{
        _cleanup_(sockp) struct nl_sock *s = NULL;
        int r = nl_open(&s, err);
        if (r < 0)
                return r;
        r = shape(s, t->host_if, ingress, err);
        if (r < 0)
                return tn_err_wrap(err, "ingress");
        t->ingress_rate = ingress;
        char ifb[16];
        ifb_name(t, ifb);
        bool has_ifb = link_index(s, ifb) >= 0;
        if (has_ifb && egress)
                r = shape(s, ifb, egress, err);
        else if (has_ifb)
                r = tap_egress_end(s, t, err);
        else if (egress && link_index(s, t->host_if) >= 0)
                r = tap_egress_begin(s, t, egress, err);
        if (r < 0)
                return tn_err_wrap(err, "egress");
        t->egress_rate = egress;
        return 0;
}

int net_set_rates(struct net_tenant *t, pid_t init_pid, uint64_t egress, uint64_t ingress,
                  struct tn_err **err)
{
        if (t->tap)
                return set_tap_rates(t, egress, ingress, err);
        _cleanup_(sockp) struct nl_sock *host = NULL, *inside = NULL;
        int r = nl_open(&host, err);
        if (r >= 0)
                r = nl_open_in_netns(init_pid, &inside, err);
        if (r < 0)
                return r;
        r = shape(host, t->host_if, ingress, err);
        if (r < 0)
                return tn_err_wrap(err, "ingress");
        t->ingress_rate = ingress;
        r = shape(inside, "eth0", egress, err);
        if (r < 0)
                return tn_err_wrap(err, "egress");
        t->egress_rate = egress;
        return 0;
}

int net_cut(struct net_tenant *t, bool cut, struct tn_err **err)
{
        if (!t->firewall)
                return tn_err_setx(err, ENOENT, "tenant \"%s\" has no firewall table", t->name);
        _cleanup_free_ char *ruleset = net_rules_cut(t, cut);
        if (!ruleset)
                return tn_err_setx(err, ENOMEM, "out of memory");
        int r = nft_apply(ruleset, err);
        return r < 0 ? tn_err_wrap(err, cut ? "cannot cut %s off" : "cannot reconnect %s", t->name)
                     : 0;
}

/* ---- microVM tenants: a tap instead of a veth ----
 *
 * A VM has no network namespace on the host: its network card is a tap device that
 * QEMU reads and writes. The tap is made here, persistent and owned by no user, so
 * libvirt only opens it (<interface type='ethernet'> with managed='no'); it gets the
 * name a veth would have had (tnd-INDEX), so the same firewall tables apply unchanged.
 * Shaping: what the host sends towards the guest leaves through the tap (tbf as its
 * root queue: the ingress rate; set once the VM has opened the tap, as libvirt then
 * replaces the tap's root queue with noqueue). What the guest sends arrives on the
 * tap's ingress, where no queue can hold it; it must go through an ifb device
 * (tndi-INDEX), whose root tbf shapes it (the egress rate), and come back. In order,
 * for each frame the guest sends:
 *
 *   1. tc's ingress hook of the tap: nothing there (no qdisc).
 *   2. the netdev ingress chain of the tap (net_rules.c): link-local group frames and
 *      forged source MACs are dropped; what is left is forwarded (`fwd to`) to the ifb.
 *   3. the ifb's tbf queues it at the egress rate; the ifb then hands it back to the
 *      tap's receive path, marked to skip classification: steps 1 and 2 are skipped.
 *   4. the bridge (its prerouting chain, the tenant's bridge table) and the host.
 *
 * The redirect sits in the netdev chain rather than in tc (a u32 filter with mirred,
 * as before) because of step 3: tc's hook runs ahead of the netdev one, so a redirect
 * made there takes every frame away before the chain sees it, and after the detour the
 * chain is skipped, which let forged and link-local frames through to the bridge once
 * the redirect worked at all (libnl's u32 lacked TC_U32_TERMINAL, so it matched and
 * redirected nothing: the egress was not shaped). Neither hook of the ifb itself sees
 * a redirected frame, so the filter cannot move there either. */

static void ifb_name(const struct net_tenant *t, char out[16])
{
        net_rules_tap_ifb(t, out);
}

static int tap_create(const char *name, struct tn_err **err)
{
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open /dev/net/tun");
        struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return tn_err_set(err, errno, "cannot create tap %s", name);
        if (ioctl(fd, TUNSETPERSIST, 1) < 0)
                return tn_err_set(err, errno, "cannot make tap %s persistent", name);
        return 0;
}

/* A tap (it has tun_flags) that no process has open (no carrier). */
static bool tap_is_stale(const char *name)
{
        char path[96], buf[8] = "";
        snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
        if (access(path, F_OK) < 0)
                return false;
        snprintf(path, sizeof(path), "/sys/class/net/%s/carrier", name);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && buf[0] == '0';
}

static int link_delete(struct nl_sock *s, const char *name)
{
        struct rtnl_link *l = rtnl_link_alloc();
        if (!l)
                return -ENOMEM;
        rtnl_link_set_name(l, name);
        int r = rtnl_link_delete(s, l);
        rtnl_link_put(l);
        return r;
}

/* The tap's ifb, up, with a tbf of t->egress_rate as its root queue. Nothing reaches it
 * until the tap's netdev table forwards to it (net_rules.c: only a table made with
 * t->tap and t->egress_rate set does). */
static int shape_tap_egress(struct nl_sock *s, struct net_tenant *t, struct tn_err **err)
{
        char ifb[16];
        ifb_name(t, ifb);
        struct rtnl_link *l = rtnl_link_alloc();
        if (!l)
                return tn_err_setx(err, ENOMEM, "out of memory");
        rtnl_link_set_name(l, ifb);
        int r = rtnl_link_set_type(l, "ifb");
        if (r >= 0)
                r = rtnl_link_add(s, l, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(l);
        if (r < 0)
                return tn_err_setx(err, EIO, "cannot create %s: %s", ifb, nl_geterror(r));
        r = link_up(s, ifb, NULL, err);
        int idx = link_index(s, ifb);
        if (r >= 0 && idx < 0)
                r = tn_err_setx(err, ENODEV, "%s vanished", ifb);
        if (r >= 0)
                r = add_tbf(s, idx, ifb, t->egress_rate, err);
        return r;
}

int net_private_attach_tap(struct net_tenant *t, const struct manifest *m, struct tn_err **err)
{
        _cleanup_(sockp) struct nl_sock *s = NULL;
        int r = nl_open(&s, err);
        if (r < 0)
                return r;
        /* As for a veth, one that exists may belong to a running tenant of this index.
         * But a tap outlives its VM: one left behind by a run that was killed holds no
         * carrier (nothing has it open) and goes, with its ifb. */
        if (link_index(s, t->host_if) >= 0 && tap_is_stale(t->host_if)) {
                char ifb[16];
                ifb_name(t, ifb);
                (void)link_delete(s, t->host_if);
                (void)link_delete(s, ifb);
        }
        if (link_index(s, t->host_if) >= 0)
                return tn_err_setx(err, EBUSY,
                                   "%s already exists: another running tenant has this tenant's "
                                   "address (are two state directories in use?)",
                                   t->host_if);
        r = tap_create(t->host_if, err);
        if (r < 0)
                return r;
        t->tap = true;
        /* Port first (it has no carrier until QEMU opens the tap, so nothing crosses it
         * yet), then the ifb, then the tables: the netdev table's forward to the ifb
         * names it, so the ifb must exist when the table is made. */
        int tap = -1;
        r = bridge_port(s, t, &tap, err);
        if (r >= 0 && t->egress_rate)
                r = shape_tap_egress(s, t, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *rules = firewall_ruleset(t, m);
        if (!rules)
                return tn_err_setx(err, ENOMEM, "out of memory");
        t->firewall = true;
        return nft_apply(rules, err);
}

int net_private_shape_tap(struct net_tenant *t, struct tn_err **err)
{
        if (!t->ingress_rate)
                return 0;
        _cleanup_(sockp) struct nl_sock *s = NULL;
        int r = nl_open(&s, err);
        if (r < 0)
                return r;
        int tap = link_index(s, t->host_if);
        if (tap < 0)
                return tn_err_setx(err, ENODEV, "tap %s vanished", t->host_if);
        return add_tbf(s, tap, t->host_if, t->ingress_rate, err);
}

void net_private_detach_tap(struct net_tenant *t)
{
        net_private_remove(t);
        if (!t->tap)
                return;
        struct nl_sock *s = NULL;
        if (nl_open(&s, NULL) < 0)
                return;
        char ifb[16];
        ifb_name(t, ifb);
        (void)link_delete(s, t->host_if); /* its queues and filters go with it */
        (void)link_delete(s, ifb);
        nl_socket_free(s);
        t->tap = false;
}
