#!/usr/bin/env bash
# test_bridge_fdb.sh — issue 10, item 2: a tenant's port on the bridge behaves like a
# hostile guest (root in a microVM) and must neither poison nor fill the bridge's
# forwarding table, nor see traffic meant for another tenant.
#
# Ports: three sandbox tenants (attacker A, victim V, bystander O), each the host end of
# a veth that `tenantctl run` put on the bridge, and the tap of a microVM tenant (M),
# made by net.c's microVM path and played by this script as QEMU would (see
# tests/lib/bridge.sh). From A and M: frames to the link-local group addresses
# (01:80:c2:00:00:0X: LLDP, 802.1X, slow protocols, which skip the bridge's prerouting
# hook) claiming V's MAC; floods of random source MACs; while the host sends to V.
# Then frames to a MAC no port has (unknown unicast), from the host and from A. Only
# frames between this script's ports and the host: nothing leaves the machine.
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox
# shellcheck source=tests/lib/bridge.sh
. "$(dirname "$0")/../lib/bridge.sh"
require_bridge_tools

tmp=$(mktemp -d /tmp/tenantd-fdb.XXXXXX)
state=$tmp/state
tenants=()
bg=()
unknown_ip=10.88.255.250 # above the pool's last tenant (65000): never a tenant's
unknown_mac=02:74:de:ad:be:ef
seen_table=fdbseen$$ # this script's own counters on the bridge (not a tenant's table)
fdb_cleanup() {
	ip neigh del "$unknown_ip" dev tenantd0 2>/dev/null
	nft delete table bridge "$seen_table" 2>/dev/null
	bridge_cleanup
}
trap fdb_cleanup EXIT
trap 'exit 130' INT TERM

T=fdb$$
base=$((3000 + $$ % 500 * 4))
A=$base V=$((base + 1)) O=$((base + 2)) M=$((base + 3))
net='{ "mode": "private", "egress": { "allow_host": true } }'
# The attacker with an egress rate too: a sandbox's sits on its eth0, no detour.
start_sandbox "$T-a" "$A" '{ "mode": "private", "egress": { "allow_host": true, "rate": "50mbit" } }'
pid_a=$init_pid
gw_mac0=$(bridge_mac)
start_sandbox "$T-v" "$V" "$net"
pid_v=$init_pid ctl_v=$ctl_pid
start_sandbox "$T-o" "$O" "$net"
pid_o=$init_pid
# With an egress rate: what the guest sends takes the ifb detour (tc redirect) first.
start_tap "$T-m" "$M" '{ "mode": "private", "egress": { "allow_host": true, "rate": "50mbit" } }' 50000000
mac_a=$(tenant_mac "$A") mac_v=$(tenant_mac "$V") mac_m=$(tenant_mac "$M")
ip_v=$(tenant_addr "$V")
pass "three sandbox tenants (tnd-$A, tnd-$V, tnd-$O) and a microVM's tap (tnd-$M) are on the bridge"

# ---- how the ports are set up ----
gw_mac1=$(bridge_mac)
check "the gateway's MAC stays $gw_mac0 while tenants come (now $gw_mac1)" '[[ $gw_mac1 == "$gw_mac0" ]]'
flags=""
for i in "$A" "$V" "$O" "$M"; do
	d=$(bridge -d link show dev "tnd-$i")
	[[ $d == *"learning off flood off mcast_flood off bcast_flood off"* ]] || flags+=" tnd-$i"
done
check "no tenant port learns or is flooded (learning, flood, mcast_flood, bcast_flood off)${flags:+; not on:$flags}" \
	'[[ -z $flags ]]'
# static_entry PORT MAC: MAC is a static, sticky entry of the bridge on PORT
static_entry() {
	bridge fdb show dev "$1" | grep "^$2 " | grep -w static | grep -w sticky | grep -q "master tenantd0"
}
static=""
for i in "$A" "$V" "$O" "$M"; do
	static_entry "tnd-$i" "$(tenant_mac "$i")" || static+=" tnd-$i"
done
check "each tenant's MAC is a static, sticky entry on its own port${static:+; missing on:$static}" \
	'[[ -z $static ]]'
check "the bridge does not learn from link-local frames (no_linklocal_learn 1)" \
	'ip -d link show tenantd0 | grep -q "no_linklocal_learn 1"'
neigh=""
for i in "$A" "$V" "$O" "$M"; do
	ip neigh show "$(tenant_addr "$i")" dev tenantd0 | grep -q "lladdr $(tenant_mac "$i") PERMANENT" ||
		neigh+=" $(tenant_addr "$i")"
done
check "the host knows each tenant's MAC without asking (permanent neighbour)${neigh:+; missing:$neigh}" \
	'[[ -z $neigh ]]'
check "a netdev ingress chain on each port drops link-local frames before the bridge sees them" \
	'nft list table netdev "tenantd-$T-a" 2>/dev/null | grep -q "device \"tnd-$A\"" &&
	 nft list table netdev "tenantd-$T-m" 2>/dev/null | grep -q "device \"tnd-$M\""'

# ---- forged link-local frames: another tenant's MAC ----
learned() { bridge fdb show br tenantd0 | grep -c "^$1 dev tnd-$2 "; }
# as_guest ACTION...: the actions from the tap, which then stays open (what the bridge
# learned on a port goes when its carrier does) until guest_done
as_guest() {
	"$py" "$hostile" "tap:tnd-$M" "$@" hold=30 >"$tmp/guest.out" &
	guest=$!
	bg+=("$guest")
	local i
	for i in $(seq 300); do
		grep -q holding "$tmp/guest.out" && return
		sleep 0.05
	done
}
guest_done() { kill "$guest" 2>/dev/null; wait "$guest" 2>/dev/null; }
# lldrop NAME: the link-local drop counter of tenant NAME's netdev chain
lldrop() { nft list table netdev "tenantd-$1" 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\) .*drop.*/\1/p' | head -1; }
nsenter -t "$pid_a" -n "$py" "$hostile" dev:eth0 "ll=$mac_v,20" >/dev/null
check "link-local frames from a sandbox's port claiming V's MAC are not learned there ($(learned "$mac_v" "$A") entries)" \
	'[[ $(learned "$mac_v" "$A") -eq 0 ]]'
check "... A's ingress chain saw and dropped them, A's egress rate and all ($(lldrop "$T-a") packets)" \
	'[[ $(lldrop "$T-a") -ge 100 ]]'
as_guest "ll=$mac_v,20"
check "... nor from a microVM's tap ($(learned "$mac_v" "$M") entries)" '[[ $(learned "$mac_v" "$M") -eq 0 ]]'
check "V's MAC still leads to V's port only: $(bridge fdb show br tenantd0 | grep "^$mac_v dev" | cut -d' ' -f3 | tr '\n' ' ')" \
	'[[ $(bridge fdb show br tenantd0 | grep -c "^$mac_v dev") -eq 1 && $(learned "$mac_v" "$V") -eq 1 ]]'
lldrop=$(lldrop "$T-m")
check "the tap's ingress chain saw and dropped them, ifb detour and all (${lldrop:-no} packets)" \
	'[[ ${lldrop:-0} -ge 100 ]]'
guest_done

# ---- the shaped tap: the ifb detour takes the guest's frames, and nothing forged ----
# What the guest sends is shaped on the tap's ifb, which hands each frame back to the
# tap's receive path past the port's own checks: only what passed them may go there.
# Counted where it would show: this script's chain on the bridge's prerouting hook
# (ahead of the tenant's bridge table, which drops forged sources again) for every
# frame from the tap, by source MAC; an LLDP socket on the tap (the kernel delivers a
# link-local frame to it only once the bridge has passed it up) for the link-local
# ones. The guest's own frames must reach the bridge (and, shaped, the ifb's queue), or
# the checks prove nothing.
ifb_pkts() { tc -s qdisc show dev "tndi-$M" 2>/dev/null | awk '$1 == "qdisc" { q = $2 } q == "tbf" && $1 == "Sent" { print $4; exit }'; }
# seen own|forged: frames from the tap whose source is, or is not, its MAC
seen() {
	local op=""
	[[ $1 == forged ]] && op="!= "
	nft list chain bridge "$seen_table" pre | sed -n "s/.*ether saddr $op$mac_m counter packets \([0-9]*\).*/\1/p"
}
# guest_round: the guest sends 50 frames of its own to the gateway, 200 link-local ones
# (half from its own MAC) and 350 with forged sources; sets ifb_d (packets the ifb's
# tbf took meanwhile, empty without one), own, forged (frames that reached the bridge)
# and ll (what the LLDP socket got)
guest_round() {
	nft -f - <<EOF || bail "cannot make this script's counting table"
table bridge $seen_table {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname "tnd-$M" ether saddr $mac_m counter
    iifname "tnd-$M" ether saddr != $mac_m counter
  }
}
EOF
	"$py" -c '
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88CC))
s.bind((sys.argv[1], 0x88CC)); s.settimeout(0.2)
print("ready", flush=True)
n, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try: s.recv(2000); n += 1
    except socket.timeout: pass
print("got %d" % n)' "tnd-$M" 8 >"$tmp/lldp" &
	local lldp=$! i ifb0 ifb1
	bg+=("$lldp")
	for i in $(seq 200); do grep -q ready "$tmp/lldp" && break; sleep 0.05; done
	grep -q ready "$tmp/lldp" || bail "the LLDP socket on tnd-$M did not open"
	ifb0=$(ifb_pkts)
	as_guest "udp=$mac_m,$gw_mac0,$(tenant_addr "$M"),10.88.0.1,9,own,50" "ll=$mac_v,20" "ll=$mac_m,20" \
		flood=200 "udp=$mac_v,$gw_mac0,$ip_v,10.88.0.1,9,forged,50"
	sleep 0.5
	guest_done
	wait "$lldp"
	ifb1=$(ifb_pkts)
	ifb_d=""
	[[ -n $ifb0 && -n $ifb1 ]] && ifb_d=$((ifb1 - ifb0))
	own=$(seen own) forged=$(seen forged) ll=$(tail -1 "$tmp/lldp")
	nft delete table bridge "$seen_table"
}
# rates_live SIGNAL: net_set_rates through the tap's net_probe; its answer
rates_live() {
	local n i
	n=$(grep -c '^rates' "$tmp/$T-m.out")
	kill "-$1" "${taps[0]}"
	for i in $(seq 100); do
		(($(grep -c '^rates' "$tmp/$T-m.out") > n)) && break
		sleep 0.05
	done
	grep '^rates' "$tmp/$T-m.out" | tail -1
}
# forwards: the tap's netdev chain ends with the forward to its ifb
forwards() { nft list chain netdev "tenantd-$T-m" ingress | grep -q "fwd to \"tndi-$M\""; }
shaped_checks() { # WHEN
	check "$1: the tap is shaped: its ifb's tbf took the guest's own frames (${ifb_d:-no ifb} packets, 50 sent)" \
		'[[ -n $ifb_d ]] && ((ifb_d >= 50))'
	check "$1: ... and they reach the bridge after the detour (${own:-none} of 50)" '[[ ${own:-0} -ge 50 ]]'
	check "$1: no frame with a forged source from the shaped tap reaches the bridge (${forged:-none} of 350 sent)" \
		'[[ ${forged:-x} == 0 ]]'
	check "$1: no link-local frame from the shaped tap reaches the host ($ll of 200 sent, half from its own MAC)" \
		'[[ $ll == "got 0" ]]'
}
guest_round
shaped_checks "egress 50mbit from the start"

# The same tap's egress rate lifted live, then set again (what a throttle does to a
# microVM without a rate of its own): the ifb and the chain's forward come and go
# together, and the port's checks stay where they are.
r=$(rates_live USR2)
check "egress lifted live ($r): the ifb is gone and the tap's chain forwards nowhere" \
	'[[ $r == "rates 0" ]] && ! ip link show "tndi-$M" >/dev/null 2>&1 && ! forwards'
guest_round
check "unshaped: the guest's own frames reach the bridge (${own:-none} of 50)" '[[ ${own:-0} -ge 50 ]]'
check "unshaped: no forged frame reaches the bridge (${forged:-none} of 350) and no link-local one the host ($ll of 200)" \
	'[[ ${forged:-x} == 0 && $ll == "got 0" ]]'
r=$(rates_live USR1)
check "egress set live again ($r): an ifb shaped at 50Mbit, and the chain's last rule forwards to it" \
	'[[ $r == "rates 50000000" ]] && tc qdisc show dev "tndi-$M" | grep -q "tbf.*rate 50Mbit" && forwards'
guest_round
shaped_checks "egress 50mbit set live"

# ---- floods of random source MACs ----
dynamic() { # entries the bridge learned on a port: neither its own (permanent) nor static
	bridge fdb show dev "tnd-$1" | grep -v -e permanent -e static -e '^33:33' -e '^01:00:5e' | grep -c .
}
size0=$(bridge fdb show br tenantd0 | grep -c .)
nsenter -t "$pid_a" -n "$py" "$hostile" dev:eth0 llflood=2000 flood=500 >/dev/null
as_guest llflood=2000 flood=500
size1=$(bridge fdb show br tenantd0 | grep -c .)
check "5000 frames from random source MACs: nothing learned on either port ($(dynamic "$A") and $(dynamic "$M") entries; the table had $size0 entries, now $size1)" \
	'[[ $(dynamic "$A") -eq 0 && $(dynamic "$M") -eq 0 && $size1 -le $size0 ]]'
guest_done

# ---- the host sends to V while A and then M claim V's MAC ----
# waitfor WORD FILE: until a line of FILE says WORD (at most 10 s)
waitfor() {
	local i
	for i in $(seq 200); do
		grep -q "$1" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# count_udp PID PORT EXPECT FILE: in the background, counts the datagrams that reach
# port PORT in PID's namespace until EXPECT came or none came for 3 s; "got N" in FILE
count_udp() {
	nsenter -t "$1" -n "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(3)
print("ready", flush=True)
n = 0
while n < int(sys.argv[2]):
    try: s.recv(100); n += 1
    except socket.timeout: break
print("got %d" % n)' "$2" "$3" >"$4" &
	bg+=($!)
	waitfor ready "$4"
}
send_udp() { # ADDR PORT COUNT: from the host, 20 ms apart
	"$py" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    s.sendto(b"for the victim", (sys.argv[1], int(sys.argv[2]))); time.sleep(0.02)' "$@"
}
count_udp "$pid_v" 7001 100 "$tmp/v1"
nsenter -t "$pid_a" -n "$py" "$hostile" dev:eth0 "sniff=5,$mac_v" >"$tmp/a1" &
sniff=$!
nsenter -t "$pid_a" -n "$py" "$hostile" dev:eth0 "keep=$mac_v,5" >"$tmp/k1" &
keep=$!
waitfor sniffing "$tmp/a1" && waitfor keeping "$tmp/k1" && sleep 0.3
send_udp "$ip_v" 7001 100
wait "$sniff" "$keep"
waitfor got "$tmp/v1"
got=$(tail -1 "$tmp/v1") seen=$(tail -1 "$tmp/a1")
check "while A keeps claiming V's MAC, A sees none of V's traffic ($seen)" '[[ $seen == "seen 0" ]]'
check "... and V receives all of it ($got of 100)" '[[ $got == "got 100" ]]'

count_udp "$pid_v" 7002 50 "$tmp/v2"
"$py" "$hostile" "tap:tnd-$M" "ll=$mac_v,5" "sniff=3,$mac_v" >"$tmp/m2" &
sniff=$!
waitfor sniffing "$tmp/m2"
send_udp "$ip_v" 7002 50
wait "$sniff"
waitfor got "$tmp/v2"
got=$(tail -1 "$tmp/v2") seen=$(tail -1 "$tmp/m2")
check "after the tap claimed V's MAC, the tap sees none of V's traffic ($seen)" '[[ $seen == "seen 0" ]]'
check "... and V receives all of it ($got of 50)" '[[ $got == "got 50" ]]'

# ---- unknown unicast ----
ip neigh replace "$unknown_ip" lladdr "$unknown_mac" dev tenantd0 nud permanent
nsenter -t "$pid_o" -n "$py" "$hostile" dev:eth0 "sniff=3,$unknown_mac" >"$tmp/o3" &
s_o=$!
"$py" "$hostile" "tap:tnd-$M" "sniff=3,$unknown_mac" >"$tmp/m3" &
s_m=$!
waitfor sniffing "$tmp/o3" && waitfor sniffing "$tmp/m3"
send_udp "$unknown_ip" 9 30
nsenter -t "$pid_a" -n "$py" "$hostile" dev:eth0 "udp=$mac_a,$unknown_mac,$(tenant_addr "$A"),$unknown_ip,9,unknown,30" >/dev/null
wait "$s_o" "$s_m"
check "frames to a MAC no port has reach no tenant port: O $(tail -1 "$tmp/o3"), the tap $(tail -1 "$tmp/m3")" \
	'[[ $(tail -1 "$tmp/o3") == "seen 0" && $(tail -1 "$tmp/m3") == "seen 0" ]]'
ip neigh del "$unknown_ip" dev tenantd0 2>/dev/null

# ---- what tenants do normally still works ----
"$py" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.88.0.1", int(sys.argv[1]))); s.listen()
while True:
    c, a = s.accept(); c.send(b"gateway reached\n"); c.close()' 7003 &
bg+=($!)
sleep 0.3
out=$(nsenter -t "$pid_o" -n "$py" -c '
import socket; print(socket.create_connection(("10.88.0.1", 7003), timeout=5).recv(100).decode().strip())' 2>&1)
check "a tenant still reaches its gateway (allow_host): $out" '[[ $out == "gateway reached" ]]'

# ---- nothing left ----
# gone NAME INDEX: what is left of a tenant's port, neighbour entry and tables
gone() {
	left=""
	ip link show "tnd-$2" >/dev/null 2>&1 && left+=" tnd-$2"
	ip neigh show "$(tenant_addr "$2")" dev tenantd0 | grep -q . && left+=" neighbour"
	nft list tables | grep -q "tenantd-$1\$" && left+=" tables"
	[[ -z $left ]]
}
kill -TERM "$ctl_v" 2>/dev/null
wait "$ctl_v"
check "a sandbox tenant's port, neighbour entry and tables go when it ends" 'gone "$T-v" "$V"'
kill -TERM "${taps[0]}" 2>/dev/null
wait "${taps[0]}"
check "... and a microVM's" 'gone "$T-m" "$M"'
taps=()

done_testing
