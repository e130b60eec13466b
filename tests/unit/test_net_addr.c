/* test_net_addr.c — the word that carries a tenant's addresses from its keeper to
 * `tenantd --keeper-finish` (host/net.h net_addr_word, keeper_exec.h's NET): what the
 * finish step needs to remove the bridge's neighbour entries and a /64's route must
 * survive the trip, and anything else is refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "host/net.h"
#include "tap.h"

static struct net_tenant tenant(bool v6, bool prefix6)
{
        /* as net_private_prepare() makes them for pool index 3 */
        struct net_tenant t = {.addr = 0x0a580005U, .v6 = v6, .prefix6 = prefix6};
        const uint8_t mac[6] = {0x02, 0x74, 0x0a, 0x58, 0x00, 0x05};
        memcpy(t.mac, mac, sizeof(mac));
        inet_pton(AF_INET6, "fe80::74:aff:fe58:5", &t.ll6);
        inet_pton(AF_INET6, prefix6 ? "2001:db8:1234:4::1" : "fd00:db8:1::5", &t.addr6);
        if (prefix6)
                inet_pton(AF_INET6, "2001:db8:1234:4::", &t.net6);
        return t;
}

static void round_trip(bool v6, bool prefix6, const char *want)
{
        struct net_tenant t = tenant(v6, prefix6), back = {0};
        char w[NET_ADDR_WORD_MAX];
        net_addr_word(&t, w);
        is_str(w, want, "the word of a tenant with %s",
               prefix6 ? "a /64"
               : v6    ? "an IPv6 address"
                       : "IPv4 only");
        ok(net_addr_word_parse(w, &back) == 0, "%s parses", w);
        ok(back.addr == t.addr && memcmp(back.mac, t.mac, 6) == 0 && back.v6 == v6 &&
               back.prefix6 == prefix6,
           "%s: the address, its MAC, v6 and prefix6 come back", w);
        is_str(back.host_if, "tnd-3",
               "%s: the host end of index 3's veth, which the finish step deletes", w);
        if (v6)
                ok(memcmp(&back.addr6, &t.addr6, 16) == 0 && memcmp(&back.ll6, &t.ll6, 16) == 0,
                   "%s: the v6 address and the link-local one the bridge's entry names", w);
        if (prefix6)
                ok(memcmp(&back.net6, &t.net6, 16) == 0, "%s: the /64 its route names", w);
}

int main(void)
{
        round_trip(false, false, "10.88.0.5");
        round_trip(true, false, "10.88.0.5,fd00:db8:1::5");
        round_trip(true, true, "10.88.0.5,2001:db8:1234:4::1/64");
        static const char *const bad[] = {
            "",
            "-",
            "10.88.0.5,",
            "10.88.0.5,fd00::5/48",
            "10.88.0.5/16",
            "fd00::5",
            "10.88.0.5,10.88.0.6",
            "10.88.0.5,fd00::5/64/64",
            "10.88.0.5,fd00::5,fd00::6",
            "10.88.0.1",     /* the bridge's */
            "10.87.255.255", /* below the pool */
            "192.0.2.5",     /* no tenant's: no link of its to delete */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct net_tenant t = {0};
                ok(net_addr_word_parse(bad[i], &t) == -EINVAL, "refused: \"%s\"", bad[i]);
        }
        char longw[200];
        memset(longw, '1', sizeof(longw) - 1);
        longw[sizeof(longw) - 1] = '\0';
        struct net_tenant t = {0};
        ok(net_addr_word_parse(longw, &t) == -EINVAL, "refused: a word longer than any address");
        return tap_done();
}
