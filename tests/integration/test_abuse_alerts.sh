#!/usr/bin/env bash
# test_abuse_alerts.sh — issue 15: network.limits' counters become abuse alerts in a
# real rsyslogd, and on_abuse "cut" cuts the tenant off and lets it back after the
# period, for both backends from the same network JSON:
# - sandbox: a real tenantd runs the tenant; its monitor reads the counters every
#   sampling interval (monitor_glue.c), `tenantctl status` shows them;
# - microVM: the tenant's real tap (net_probe tap) with a guest played by a network
#   namespace (start_guest, tests/lib/bridge.sh), watched by abuse_probe, which runs the
#   daemon's steps (net_abuse_counters, abuse.c, the syslog sink, net_cut).
# Each tenant opens more connections than its conns cap, tries port 25, and is cut off
# for 10 s (on_abuse "cut:10s") at its first abuse; the alerts and the cut's applied
# and lifted lines must reach rsyslogd. A second tenant of each backend scans 1,000
# ports of the sink and floods it with UDP: scan and flood alerts, and no action with
# on_abuse "alert". The sink is a network namespace of this script
# (198.51.100.1, TEST-NET-2); nothing leaves the machine.
set -u
cd "${SRCDIR:-.}" || exit 1
# shellcheck source=tests/lib/sandbox.sh
. tests/lib/sandbox.sh
# shellcheck source=tests/lib/daemon.sh
. tests/lib/daemon.sh
# shellcheck source=tests/lib/rsyslog.sh
. tests/lib/rsyslog.sh
require_sandbox
# shellcheck source=tests/lib/bridge.sh
. tests/lib/bridge.sh
require_bridge_tools
require_built "$TENANTD"
abuse_probe=$BUILD/tests/integration/abuse_probe
require_built "$abuse_probe"
net_probe=$BUILD/tests/integration/net_probe
require_built "$net_probe"
command -v rsyslogd >/dev/null ||
	skip_all "RSYSLOGD IS MISSING (apt-get install rsyslog): abuse alerts were not tested"
peer_py=${SRCDIR:-$PWD}/tests/integration/abuse_peer.py

tmp=$(mktemp -d /tmp/tenantd-abal.XXXXXX)
chmod 755 "$tmp"
state=$tmp/tapstate
tenants=()
bg=()
W=taal$$  # the sink's namespace and link
guests=() # the guests' namespaces
cleanup() {
	local g
	daemon_cleanup
	bridge_cleanup
	rsyslog_stop
	for g in "${guests[@]}"; do ip netns del "$g" 2>/dev/null; done
	ip netns del "$W" 2>/dev/null
	ip link del "$W-h" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rsyslog_start "$tmp/syslog" || skip_all "THE PRIVATE RSYSLOGD DID NOT START: alerts were not tested"

ip netns add "$W" &&
	ip link add "$W-h" type veth peer name "$W-p" netns "$W" &&
	ip addr add 198.51.100.2/24 dev "$W-h" && ip link set "$W-h" up &&
	ip -n "$W" addr add 198.51.100.1/24 dev "$W-p" && ip -n "$W" link set "$W-p" up &&
	ip -n "$W" link set lo up && ip -n "$W" route add default via 198.51.100.2 ||
	skip_all "cannot create a test namespace with a veth pair"
SINK=198.51.100.1
ip netns exec "$W" "$py" "$peer_py" sink "$tmp/sink" 9000,25 9001 &
bg+=($!)
for _ in $(seq 200); do [[ -s $tmp/sink ]] && break; sleep 0.05; done
[[ -s $tmp/sink ]] || bail "the sink did not start"

# logline PATTERN [SECONDS]: the first line of rsyslogd's file matching PATTERN
logline() {
	local i l
	for i in $(seq $((${2:-5} * 20))); do
		l=$(grep -m1 -e "$1" "$rsyslog_out" 2>/dev/null) && { echo "$l"; return 0; }
		sleep 0.05
	done
	return 1
}
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<" $1" | head -1; }

net='{ "mode": "private", "limits": { "conns": 20, "new_conns": "max", "on_abuse": "cut:10s" } }'
net_detect='{ "mode": "private", "limits": { "new_conns": "max", "pps": "2k" } }'

# ---- sandbox, under tenantd ----
S=abs$$
mkdir -p "$tmp/manifests"
cp "$payload_bin" "$tmp/payload"
cat >"$tmp/manifests/$S.json" <<EOF
{ "name": "$S", "exec": ["/payload/payload", "sleep", "300"], "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/payload", "target": "/payload/payload", "mode": "ro" } ],
  "network": $net }
EOF
D=abd$$
cat >"$tmp/manifests/$D.json" <<EOF
{ "name": "$D", "exec": ["/payload/payload", "sleep", "300"], "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/payload", "target": "/payload/payload", "mode": "ro" } ],
  "network": $net_detect }
EOF
tenants+=("$S" "$D")
start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test || bail "tenantd starts"
wait_state "$S" running 20 || bail "$S did not start: $(tail -5 "$tmp/tenantd.log")"
wait_state "$D" running 20 || bail "$D did not start: $(tail -5 "$tmp/tenantd.log")"
spid=$(json_field "$S" pid)
dpid=$(json_field "$D" pid)

# run_scenario KIND NAME: conns, smtp and the cut, for the tenant whose network stack
# "${run_in[@]}" enters
run_scenario() {
	local kind=$1 name=$2 out l r refused count
	r=$("${run_in[@]}" "$py" "$peer_py" connect "$SINK" 25)
	l=$(logline "event=abuse alert=raised kind=smtp tenant=$name" 5)
	check "$kind: port 25 ($r) raises an smtp abuse alert in syslog (${l:-none})" \
		"[[ '$r' == refused && -n '$l' ]]"
	l=$(grep -m1 "kind=smtp tenant=$name" "$rsyslog_out")
	check "$kind: at warning priority" "[[ '$l' == daemon.warning\\ * ]]"
	l=$(logline "event=abuse alert=applied kind=smtp tenant=$name action=cut for=10s" 3)
	check "$kind: on_abuse cut:10s is applied and logged (${l:-none})" "[[ -n '$l' ]]"
	r=$("${run_in[@]}" "$py" "$peer_py" connect "$SINK" 9000)
	check "$kind: while cut, the tenant reaches nothing ($r)" "[[ '$r' == timeout ]]"
	l=$(logline "event=abuse alert=lifted tenant=$name action=cut" 15)
	check "$kind: the cut is lifted after its period and logged (${l:-none})" "[[ -n '$l' ]]"
	r=$("${run_in[@]}" "$py" "$peer_py" connect "$SINK" 9000)
	check "$kind: after the lift the tenant reaches the sink again ($r)" "[[ '$r' == connected ]]"
	out=$("${run_in[@]}" "$py" "$peer_py" conns "$SINK" 9000 200 1 2>&1)
	echo "# $kind: 200 connections with conns 20: $out"
	l=$(logline "event=abuse alert=raised kind=conns tenant=$name" 5)
	check "$kind: the conns cap's refusals raise an abuse alert (${l:-none})" "[[ -n '$l' ]]"
	# The raised line carries the refusals the first sample saw: the whole burst on a
	# quiet machine, part of it on a busy one (the sample may fall inside the burst).
	# All of them are in the tenant's total once the samples after the burst are in:
	# tenantd's status for the sandbox, the probe's totals line for the microVM's tap.
	refused=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' <<<"$out")
	timedout=$(sed -n 's/.*timeout=\([0-9]*\).*/\1/p' <<<"$out")
	count=$(field "$l" count)
	local total="" _ timedout
	for _ in $(seq 30); do
		total=$(conns_total "$kind" "$name")
		((${total:-0} >= ${refused:-1})) && break
		sleep 0.1
	done
	# (a connection that timed out may have been refused more than once: its SYN resent)
	check "$kind: it counts them (the first line $count, in all ${total:-none}, of ${refused:-none} refused, ${timedout:-0} timed out)" \
		"((${count:-0} >= 1 && ${count:-0} <= ${total:-0} && ${total:-0} >= 20 && ${total:-0} <= ${refused:-0} + 3 * ${timedout:-0}))"
	# The connections the host tracks for the tenant, as status and top show them: 15
	# held open are counted, the burst's, ended since, are not.
	"${run_in[@]}" "$py" "$peer_py" conns "$SINK" 9000 15 5 >/dev/null 2>&1 &
	local held=$! tracked
	sleep 2.5
	tracked=$(conns_now "$kind" "$name")
	wait "$held"
	# The burst's 20 connections, ended since, would make it 35 if ended ones were
	# counted. An ASan run once saw 21, one over the cap (cause not found: an entry the
	# cap does not hold, such as an attempt still unanswered, is a guess), so the bound
	# is what tells counted-ended from not, not the cap.
	check "$kind: the 15 connections it holds open are counted, ended ones not (conns ${tracked:-none})" \
		'[[ $tracked =~ ^[0-9]+$ ]] && ((tracked >= 15 && tracked < 35))'
}

# conns_total KIND NAME: the refusals of the conns cap counted since the watch started:
# tenantd's status ("abuse") for the sandbox, abuse_probe's last totals line for the
# microVM's tap
conns_total() {
	if [[ $1 == sandbox ]]; then
		"$ctl" --json status "$2" | python3 -c 'import json, sys; print(((json.load(sys.stdin).get("usage") or {}).get("abuse") or {}).get("conns", ""))'
	else
		grep '^totals ' "$tmp/probe.out" | tail -1 | sed -n 's/.* conns=\([0-9]*\).*/\1/p'
	fi
}

# conns_now KIND NAME: the tenant's tracked connections: for the sandbox, what tenantd's
# status says; for the microVM's tap, played here without tenantd, what the same count
# (net_conntrack_count) says for its address
conns_now() {
	if [[ $1 == sandbox ]]; then
		"$ctl" --json status "$2" | python3 -c 'import json, sys; print((json.load(sys.stdin).get("usage") or {}).get("conns", ""))'
	else
		"$net_probe" conntrack "$(tenant_addr "$idx")" | sed -n 's/^conns=//p'
	fi
}

# detect_scenario KIND NAME: a scan of 1,000 ports of the sink and a UDP flood toward it
# from a tenant whose on_abuse is "alert" and whose pps is 2k (flood rate 1k/s)
detect_scenario() {
	local kind=$1 name=$2 out l
	out=$("${run_in[@]}" "$py" "$peer_py" scan "$SINK" 20000 1000 2>&1)
	echo "# $kind: a scan of 1,000 ports: $out"
	l=$(logline "event=abuse alert=raised kind=scan tenant=$name" 5)
	check "$kind: a scan of 1,000 ports raises a scan alert (${l:-none})" "[[ -n '$l' ]]"
	out=$("${run_in[@]}" "$py" "$peer_py" udpflood "$SINK" 9001 2 2>&1)
	echo "# $kind: a UDP flood of 2 s: $out"
	l=$(logline "event=abuse alert=raised kind=flood tenant=$name" 5)
	check "$kind: a flood toward one address raises a flood alert (${l:-none})" "[[ -n '$l' ]]"
	check "$kind: and no action follows with on_abuse alert" \
		"! grep -q 'alert=applied kind=[a-z_]* tenant=$name' '$rsyslog_out'"
}

run_in=(nsenter -t "$spid" -n)
run_scenario sandbox "$S"
run_in=(nsenter -t "$dpid" -n)
detect_scenario sandbox "$D"
# Packets per second, as tenantd samples them: during a flood, status and top show them.
"${run_in[@]}" "$py" "$peer_py" udpflood "$SINK" 9002 3 >/dev/null 2>&1 &
flood=$!
sleep 2
pps=$("$ctl" --json status "$D" | python3 -c 'import json, sys; print(int((json.load(sys.stdin).get("usage") or {}).get("rx_pps", -1)))')
top=$("$ctl" top --once | awk -v n="$D" '$1 == n { print $9 }')
wait "$flood"
check "sandbox: status shows the tenant's packets per second during a flood (rx_pps $pps)" '((pps > 500))'
check "sandbox: and top, in its PKTS/s column ($top)" '[[ $top =~ ^[0-9.]+[kM]?/[0-9.]+[kM]?$ && $top != 0/0 ]]'
top=$("$ctl" top --once | awk -v n="$S" '$1 == n { print $10 }')
check "sandbox: top's CONNS column shows the count of the conns cap ($top)" '[[ $top =~ ^[0-9]+/20$ ]]'
st=$("$ctl" status "$S")
l=$(grep '^  abuse:' <<<"$st")
check "sandbox: status shows the counters (${l:-none})" "[[ '$l' == *conns=* && '$l' == *smtp=* ]]"
daemon_cleanup

# ---- microVM: its tap, a guest namespace, abuse_probe ----
idx=$((5200 + $$ % 500 * 2))
V=abv$$
start_guest microvm "$V" "$idx" "$net"
"$abuse_probe" "$tmp/$V.json" "$idx" --socket "$rsyslog_sock" --state "$state" --interval-ms 200 >"$tmp/probe.out" 2>&1 &
bg+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/probe.out" && break; sleep 0.05; done
grep -q ready "$tmp/probe.out" || bail "abuse_probe did not start: $(head -c 300 "$tmp/probe.out")"
run_scenario microvm "$V"
E=abe$$
start_guest microvm "$E" "$((idx + 1))" "$net_detect"
"$abuse_probe" "$tmp/$E.json" "$((idx + 1))" --socket "$rsyslog_sock" --state "$state" --interval-ms 200 >"$tmp/probe2.out" 2>&1 &
bg+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/probe2.out" && break; sleep 0.05; done
grep -q ready "$tmp/probe2.out" || bail "abuse_probe did not start: $(head -c 300 "$tmp/probe2.out")"
detect_scenario microvm "$E"

done_testing
