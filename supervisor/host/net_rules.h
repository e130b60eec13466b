/* net_rules.h — the text of every nftables ruleset tenantd applies, as pure functions of
 * their inputs: no system call, no file read, no clock. host/net.c applies what these
 * return; tests/unit/test_net_rules.c compares it with golden files
 * (tests/data/nft/NAME.nft). What the rules do and why is told here, next to them; how
 * the links they name come to exist is told in net.c.
 *
 * Every function returns a malloc'd, NUL-terminated ruleset in nft's language, or NULL
 * when out of memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/net.h"
#include "spec/manifest.h"

/* The abuse detectors (see limits() in net_rules.c): new destinations (address and
 * port) a minute beyond which the tenant is scanning, and packets a second to one
 * address beyond which it floods when it has no pps (else half its pps). */
#define NET_SCAN_PER_MIN 256U
#define NET_FLOOD_PPS 25000U

/* The host's own tables "ip tenantd" and "ip6 tenantd", shared by every tenant and
 * replaced whole; routed/routed_len: the operator's ipv6-prefix, or NULL. */
char *net_rules_host(const struct in6_addr *routed, unsigned routed_len);

/* The tenant's three tables (netdev, bridge and inet, each "tenantd-NAME"), replaced
 * whole: t's name, host_if, addr and mac, the manifest's network section, and the
 * resolvers the tenant uses (net_resolvers()), which stay reachable on port 53. For a
 * microVM's tap with an egress rate (t->tap and t->egress_rate), the netdev table ends
 * by forwarding what the guest sends to the tap's ifb, which must exist by then. */
char *net_rules_firewall(const struct net_tenant *t, const struct manifest *m, const char dns[][16],
                         size_t ndns);

/* The tenant's netdev table alone, as in net_rules_firewall(): for a microVM whose tap
 * gets its ifb while it runs (an egress rate set live), which must then lead there. */
char *net_rules_netdev(const struct net_tenant *t);

/* The ifb of a microVM's tap t->host_if ("tnd-N" -> "tndi-N"), which the netdev table
 * of a tap with an egress rate forwards what the guest sends to. */
void net_rules_tap_ifb(const struct net_tenant *t, char ret[16]);

/* Removes the tenant's three tables; harmless when they do not exist. */
char *net_rules_remove(const char *name);

/* cut: the chains that drop every packet the tenant sends or is sent (see net_cut());
 * !cut: removes them. Both idempotent. */
char *net_rules_cut(const struct net_tenant *t, bool cut);
