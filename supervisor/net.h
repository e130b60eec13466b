/* net.h — tenant networking. The only file that talks to netlink and nftables (the
 * private network of issue 4 lands here); today: the loopback of a fresh network
 * namespace and its per-namespace sysctls. */
#pragma once

#include <stdint.h>

#include "err.h"

/* In a new network namespace, as root of the namespace's owner: brings "lo" up, lets
 * the tenant bind ports below 1024 (there is nothing else in its namespace to
 * protect) and use ICMP echo sockets with its own gids (base..base+65535). */
int net_setup_namespace(uint32_t id_base, struct tn_err **err);
