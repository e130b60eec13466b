#!/usr/bin/env bash
# test_quota_net.sh — net.c's calls for the monitor and live changes, on a real private
# tenant: link counters (host end and, through the tenant's namespace, its eth0), rates
# changed and removed live with net_set_rates (iperf3 measures them), a tenant cut off
# and reconnected with net_cut, and transfer.c counting the link's real bytes up to its
# volume. Traffic goes only to a network namespace this script creates, joined to the
# host by a veth pair with TEST-NET-3 addresses (203.0.113.0/24); all of it is removed
# at the end.
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox
np=$BUILD/tests/integration/net_probe
require_built "$np"
for tool in ip nft iperf3 nsenter python3 tc; do
	command -v $tool >/dev/null ||
		skip_all "$tool IS MISSING (make test-deps): nothing was tested"
done

tmp=$(mktemp -d /tmp/tenantd-qnet.XXXXXX)
state=$tmp/state
tenants=()
bg=()
W=mo-w$$
had_bridge=$(ip link show tenantd0 >/dev/null 2>&1 && echo yes)
had_nat=$(nft list table ip tenantd >/dev/null 2>&1 && echo yes)
old_forward=$(cat /proc/sys/net/ipv4/ip_forward)
old_forward6=$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null)
qnet_cleanup() {
	sandbox_cleanup
	ip netns del "$W" 2>/dev/null
	ip link del "$W-h" 2>/dev/null
	local t
	for t in "${tenants[@]}"; do
		nft delete table inet "tenantd-$t" 2>/dev/null
		nft delete table bridge "tenantd-$t" 2>/dev/null
		nft delete table netdev "tenantd-$t" 2>/dev/null
	done
	if [[ -z $had_bridge ]] && ! ip -o link show master tenantd0 2>/dev/null | grep -q .; then
		ip link del tenantd0 2>/dev/null
		[[ -z $had_nat ]] && nft delete table ip tenantd 2>/dev/null
		[[ -z $had_nat ]] && nft delete table ip6 tenantd 2>/dev/null
	fi
	echo "$old_forward" >/proc/sys/net/ipv4/ip_forward
	[[ -n $old_forward6 ]] && echo "$old_forward6" >/proc/sys/net/ipv6/conf/all/forwarding
}
trap qnet_cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$W" &&
	ip link add "$W-h" type veth peer name "$W-p" netns "$W" &&
	ip addr add 203.0.113.2/24 dev "$W-h" && ip link set "$W-h" up &&
	ip -n "$W" addr add 203.0.113.1/24 dev "$W-p" && ip -n "$W" link set "$W-p" up &&
	ip -n "$W" link set lo up && ip -n "$W" route add default via 203.0.113.2 ||
	skip_all "cannot create a test namespace with a veth pair"

mkdir -p "$tmp/bin" "$state" && cp "$payload_bin" "$tmp/bin/payload"
T=mo-qn$$
tenants+=("$T")
# An index of its own, far from the ones other test runs' fresh state directories get.
idx=$((2000 + $$ % 4000))
echo "$T $((1073741824 + idx * 65536))" >"$state/uidranges"
hostif=tnd-$idx
addr=10.88.$(((2 + idx) / 256)).$(((2 + idx) % 256))
cat >"$tmp/t.json" <<JSON
{ "name": "$T", "user": "1000:1000", "exec": ["/payload/payload", "sleep", "120"],
  "mounts": [ { "source": "$tmp/bin", "target": "/payload" } ],
  "network": { "mode": "private", "egress": { "rate": "10mbit" }, "ingress": { "rate": "20mbit" } } }
JSON
"$ctl" run --state "$state" "$tmp/t.json" >"$tmp/out" 2>"$tmp/err" &
ctlpid=$!
bg+=("$ctlpid")
if ! find_service "$ctlpid"; then
	err=$(cat "$tmp/err")
	grep -q 'already exists' <<<"$err" &&
		skip_all "$hostif IS IN USE by another run's tenant (EBUSY): try again later"
	bail "the tenant did not start: $(head -c 300 <<<"$err")"
fi
pass "a private tenant runs with egress 10mbit, ingress 20mbit on $hostif ($addr)"

# iperf DIRECTION-FLAG: Mbit/s of TCP payload the receiver counted, 4 s
iperf() {
	ip netns exec "$W" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
	local s=$!
	sleep 0.3
	nsenter -t "$init_pid" -n iperf3 -c 203.0.113.1 -p 5201 -t 6 -O 2 -J "$@" >"$tmp/iperf.json" 2>/dev/null
	wait "$s" 2>/dev/null
	python3 -c 'import json, sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$tmp/iperf.json" 2>/dev/null || echo 0
}
within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

c0=$("$np" counters "$hostif")
up=$(iperf)
c1=$("$np" counters "$hostif")
rx0=$(sed -n 's/.* rx=\([0-9]*\).*/\1/p' <<<"$c0") rx1=$(sed -n 's/.* rx=\([0-9]*\).*/\1/p' <<<"$c1")
check "net_link_counters on the host end: rx grew by $(((rx1 - rx0) / 1000000)) MB while the tenant sent ($c1)" \
	'[[ -n $rx0 && -n $rx1 ]] && (( rx1 - rx0 > 2000000 ))'
ce=$("$np" counters eth0 "$init_pid")
check "net_link_counters inside the tenant's namespace (eth0): $ce" '[[ $ce == ifindex=*" tx="* ]]'
check "egress 10mbit: $up Mbit/s (9.0..11.0)" 'within "$up" 9.0 11.0'

"$np" rates "$T" "$hostif" "$init_pid" 5000000 40000000 2>"$tmp/np.err"
rc=$? err=$(cat "$tmp/np.err")
check "net_set_rates to egress 5mbit, ingress 40mbit, live" '[[ $rc -eq 0 ]]'
up=$(iperf)
down=$(iperf -R)
check "egress now $up Mbit/s (4.5..5.5)" 'within "$up" 4.5 5.5'
check "ingress now $down Mbit/s (36..44)" 'within "$down" 36 44'
"$np" rates "$T" "$hostif" "$init_pid" 0 0 2>"$tmp/np.err"
rc=$? err=$(cat "$tmp/np.err")
check "net_set_rates 0 0 removes the shaping" '[[ $rc -eq 0 ]] && ! tc qdisc show dev "$hostif" | grep -q tbf'
up=$(iperf)
check "egress unshaped: $up Mbit/s (> 60)" 'within "$up" 60 1000000'
"$np" rates "$T" "$hostif" "$init_pid" 0 0 2>"$tmp/np.err"
rc=$? err=$(cat "$tmp/np.err")
check "removing shaping that is not there is fine" '[[ $rc -eq 0 ]]'

reach() { nsenter -t "$init_pid" -n timeout 3 python3 -c 'import socket; socket.create_connection(("203.0.113.1", 5202), timeout=2); print("connected")' 2>/dev/null; }
ip netns exec "$W" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5202)); s.listen()
while True:
    c, a = s.accept(); c.close()' &
bg+=($!)
sleep 0.3
check "before the cut the tenant reaches the outside" '[[ $(reach) == connected ]]'
"$np" cut "$T" "$addr" on 2>"$tmp/np.err"
rc=$? err=$(cat "$tmp/np.err")
check "net_cut on" '[[ $rc -eq 0 ]]'
check "... the tenant reaches nothing" '[[ $(reach) != connected ]]'
"$np" cut "$T" "$addr" on 2>"$tmp/np.err"
rc=$?
check "... cutting again is harmless" '[[ $rc -eq 0 && $(nft list table inet "tenantd-$T" | grep -c "ip saddr $addr drop") -eq 2 ]]'
"$np" cut "$T" "$addr" off 2>"$tmp/np.err"
rc=$? err=$(cat "$tmp/np.err")
check "net_cut off: reconnected" '[[ $rc -eq 0 && $(reach) == connected ]]'
check "... and its chains are gone" '! nft list table inet "tenantd-$T" | grep -q cut_'
"$np" cut "$T" "$addr" off 2>"$tmp/np.err"
rc=$? err=$(cat "$tmp/np.err")
check "... restoring twice is harmless" '[[ $rc -eq 0 ]]'

# transfer.c on the link's real counters: 3 MB volume, throttle when used up
ip netns exec "$W" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
s=$!
sleep 0.3
"$np" transfer "$state" "$T" "$hostif" 3000000 1000000 4 >"$tmp/tr.out" 2>"$tmp/np.err" &
tp=$!
nsenter -t "$init_pid" -n iperf3 -c 203.0.113.1 -p 5201 -t 2 >/dev/null 2>&1
wait "$s" 2>/dev/null
wait "$tp"
out=$(cat "$tmp/tr.out")
check "transfer counts the link's bytes and says throttle once past 3 MB ($(tr '\n' ' ' <<<"$out"))" \
	'[[ $(grep -c "^do=throttle" <<<"$out") -eq 1 ]]'
check "... and its state file is there" 'grep -Eq "\"exceeded\": ?true" "$state/transfer/$T.json"'

kill -TERM "$ctlpid" 2>/dev/null
wait "$ctlpid" 2>/dev/null
check "the tenant's tables are gone after it ends" '! nft list table inet "tenantd-$T" >/dev/null 2>&1'
done_testing
