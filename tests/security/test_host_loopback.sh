#!/usr/bin/env bash
# test_host_loopback.sh — issue 10, item 5: a tenant never reaches the host's loopback
# (127.0.0.0/8, ::1), whatever allow_host says, while allow_host still opens the host's
# other addresses and a port published on 127.0.0.1 still answers on the host.
#
# The bridge has route_localnet on (a published port bound to 127.0.0.1 needs it), so
# the kernel no longer drops what arrives from the bridge addressed to 127.0.0.0/8. The
# host runs services bound to loopback only; a sandbox tenant with allow_host (its port
# the host end of its veth, its network namespace entered with nsenter as root, which is
# what a microVM guest has over its own stack) and a microVM's tap (net.c's microVM
# path, played by this script as QEMU would) try to reach them: raw frames to 127.0.0.1
# and ::1 through the gateway's MAC, a real TCP connection once the tenant's own routes
# send 127.0.0.1 to the gateway, and a forged loopback source. See tests/lib/bridge.sh.
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox
# shellcheck source=tests/lib/bridge.sh
. "$(dirname "$0")/../lib/bridge.sh"
require_bridge_tools

tmp=$(mktemp -d /tmp/tenantd-lo.XXXXXX)
state=$tmp/state
tenants=()
bg=()
trap bridge_cleanup EXIT
trap 'exit 130' INT TERM

T=lo$$
base=$((3000 + $$ % 500 * 4 + 2))
H=$base G=$((base + 1))
p=$((20000 + $$ % 5000 * 8))
web=$p udp=$((p + 1)) gw=$((p + 2)) pub=$((p + 3)) udp_gw=$((p + 4))

# ---- the host's services ----
mkdir -p "$tmp/www" "$tmp/tenant-www"
echo "host secret" >"$tmp/www/secret"
echo "tenant page" >"$tmp/tenant-www/page"
"$py" -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$web" >/dev/null 2>&1 &
bg+=($!)
# udp_log ADDRESS PORT FILE: every datagram to ADDRESS:PORT, one line each in FILE
udp_log() {
	"$py" -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(200)
    with open(sys.argv[3], "a") as f: f.write("%s from %s\n" % (d.decode(errors="replace"), a[0]))' "$@" &
	bg+=($!)
}
for f in udp4 udp6 udp-gw; do : >"$tmp/$f"; done
udp_log 127.0.0.1 "$udp" "$tmp/udp4"
have_v6=""
if [[ -e /proc/sys/net/ipv6/conf/lo/disable_ipv6 && $(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6) == 0 ]]; then
	udp_log ::1 "$udp" "$tmp/udp6"
	have_v6=yes
fi

net='{ "mode": "private", "egress": { "allow_host": true },
  "publish": [ { "host": '"$pub"', "port": 8080, "address": "127.0.0.1" } ] }'
start_sandbox "$T-h" "$H" "$net"
pid_h=$init_pid
start_tap "$T-g" "$G" '{ "mode": "private", "egress": { "allow_host": true } }'
ip_h=$(tenant_addr "$H") mac_h=$(tenant_mac "$H") ip_g=$(tenant_addr "$G") mac_g=$(tenant_mac "$G")
br=$(bridge_mac)
# Listeners on the bridge's address: allow_host must still open it.
"$py" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.88.0.1", int(sys.argv[1]))); s.listen()
while True:
    c, a = s.accept(); c.send(b"host reached\n"); c.close()' "$gw" &
bg+=($!)
udp_log 10.88.0.1 "$udp_gw" "$tmp/udp-gw"
# The tenant's own server behind the published port.
nsenter -t "$pid_h" -n "$py" -m http.server --bind 0.0.0.0 --directory "$tmp/tenant-www" 8080 >/dev/null 2>&1 &
bg+=($!)
sleep 0.5
pass "a sandbox tenant with allow_host (tnd-$H) and a microVM's tap (tnd-$G); host services on 127.0.0.1 only"

# fetch URL: the body, or the error, in at most 4 s
fetch() {
	"$py" -c '
import sys, urllib.request
try: print(urllib.request.urlopen(sys.argv[1], timeout=4).read().decode().strip())
except Exception as e: print("failed: %s" % e)' "$1"
}
published() { # sets out
	local i
	for i in $(seq 20); do
		out=$(fetch "http://127.0.0.1:$pub/page")
		[[ $out == "tenant page" ]] && return 0
		sleep 0.2
	done
	return 1
}
published
check "a port published on 127.0.0.1 answers on the host ($out)" '[[ $out == "tenant page" ]]'
out=$(nsenter -t "$pid_h" -n "$py" -c '
import socket, sys; print(socket.create_connection(("10.88.0.1", int(sys.argv[1])), timeout=5).recv(100).decode().strip())' "$gw" 2>&1)
check "allow_host opens the host's bridge address to the tenant ($out)" '[[ $out == "host reached" ]]'

# ---- raw datagrams to the host's loopback through the gateway's MAC ----
nsenter -t "$pid_h" -n "$py" "$hostile" dev:eth0 "udp=$mac_h,$br,$ip_h,127.0.0.1,$udp,from-sandbox,3" >/dev/null
"$py" "$hostile" "tap:tnd-$G" "udp=$mac_g,$br,$ip_g,127.0.0.1,$udp,from-tap,3" >/dev/null
sleep 0.5
got=$(tr '\n' ' ' <"$tmp/udp4")
check "a datagram from a sandbox's port to 127.0.0.1 does not reach the host's loopback service${got:+ (it got: $got)}" \
	'! grep -q from-sandbox "$tmp/udp4"'
check "... nor one from a microVM's tap" '! grep -q from-tap "$tmp/udp4"'
if [[ -n $have_v6 ]]; then
	nsenter -t "$pid_h" -n "$py" "$hostile" dev:eth0 "udp6=$mac_h,$br,fe80::74:1,::1,$udp,v6-sandbox,3" >/dev/null
	"$py" "$hostile" "tap:tnd-$G" "udp6=$mac_g,$br,fe80::74:2,::1,$udp,v6-tap,3" >/dev/null
	sleep 0.5
	got=$(tr '\n' ' ' <"$tmp/udp6")
	check "... nor datagrams to ::1, from either${got:+ (it got: $got)}" '[[ ! -s $tmp/udp6 ]]'
else
	skip "THE HOST HAS NO IPv6 ON lo: ::1 was not tried"
fi
nsenter -t "$pid_h" -n "$py" "$hostile" dev:eth0 "udp=$mac_h,$br,127.0.0.1,10.88.0.1,$udp_gw,martian,3" >/dev/null
"$py" "$hostile" "tap:tnd-$G" "udp=$mac_g,$br,127.0.0.1,10.88.0.1,$udp_gw,martian-tap,3" >/dev/null
sleep 0.5
got=$(tr '\n' ' ' <"$tmp/udp-gw")
check "a loopback source from a tenant port reaches nothing on the host either${got:+ (it got: $got)}" '[[ ! -s $tmp/udp-gw ]]'

# ---- a real connection: the tenant routes 127.0.0.1 to its gateway ----
nsenter -t "$pid_h" -n sh -c '
	for f in all/route_localnet eth0/route_localnet eth0/accept_local; do echo 1 >/proc/sys/net/ipv4/conf/$f; done
	ip route del local 127.0.0.1 table local &&
	ip route add 127.0.0.1/32 via 10.88.0.1 dev eth0 src "$1" table local' sh "$ip_h"
route=$(nsenter -t "$pid_h" -n ip route get 127.0.0.1 | head -1)
out=$(nsenter -t "$pid_h" -n "$py" -c '
import sys, urllib.request
try: print(urllib.request.urlopen(sys.argv[1], timeout=4).read().decode().strip())
except Exception as e: print("failed: %s" % e)' "http://127.0.0.1:$web/secret")
check "with 127.0.0.1 routed to the gateway ($route), the host's loopback-only web server is not reached ($out)" \
	'[[ $route == *"via 10.88.0.1"* && $out == failed* ]]'

# ---- what allow_host and published ports are for still works ----
published
check "afterwards the port published on 127.0.0.1 still answers ($out)" '[[ $out == "tenant page" ]]'
out=$(nsenter -t "$pid_h" -n "$py" -c '
import socket, sys; print(socket.create_connection(("10.88.0.1", int(sys.argv[1])), timeout=5).recv(100).decode().strip())' "$gw" 2>&1)
check "... and the tenant still reaches the host's bridge address ($out)" '[[ $out == "host reached" ]]'

done_testing
