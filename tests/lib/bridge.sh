# shellcheck shell=bash disable=SC2154 # $tmp, $ctl, tenants=(), bg=() ... are the sourcing script's
# tests/lib/bridge.sh — hostile ports on tenantd's bridge, for the security tests of the
# network (test_bridge_fdb.sh, test_host_loopback.sh). Sourced after tests/lib/sandbox.sh;
# the caller sets $tmp and $state and fills tenants=() and bg=() as sandbox.sh says.
#
# Two kinds of tenant port, both put on the bridge by tenantd's own code:
# - start_sandbox: a sandbox tenant started by `tenantctl run`; its port is the host end
#   of its veth. The test enters the tenant's network namespace (nsenter -t PID -n, run
#   directly: a background pid must be the process itself) as host root, which is what
#   a guest with root has over its own network stack, and sends forged frames from its
#   eth0 (tests/security/hostile_port.py).
# - start_tap: the tap a microVM tenant gets (net_probe tap: net_private_prepare,
#   net_private_attach_tap, net_private_shape_tap, as cmd_run_vm does before the domain
#   starts); the test then opens the tap as QEMU would and is its guest.
# A tenant of index I has the address 10.88.0.0 + 2 + I and the MAC 02:74 + that address;
# its port is tnd-I. Indices are set through the state's uidranges, far from the small
# ones fresh state directories hand out.

hostile=${SRCDIR:-$PWD}/tests/security/hostile_port.py
net_probe=$BUILD/tests/integration/net_probe
had_bridge=$(ip link show tenantd0 >/dev/null 2>&1 && echo yes)
had_nat=$(nft list table ip tenantd >/dev/null 2>&1 && echo yes)
old_forward=$(cat /proc/sys/net/ipv4/ip_forward)
old_forward6=$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null)
taps=()    # net_probe tap processes
tap_ifs=() # and their links (tnd-I, tndi-I)

# require_bridge_tools: skips the whole script, loudly, without what it drives; sets py.
require_bridge_tools() {
	local tool
	for tool in ip bridge nft nsenter python3; do
		command -v $tool >/dev/null ||
			skip_all "$tool IS MISSING (make test-deps): nothing was tested"
	done
	# The interpreter itself, not a wrapper that may fork it (pyenv's shims do): a
	# background pid killed at the end must be the process doing the work.
	py=$(python3 -c 'import sys; print(sys.executable)')
	require_built "$net_probe"
}

tenant_addr() { echo "10.88.$(((2 + $1) / 256)).$(((2 + $1) % 256))"; }
tenant_mac() { printf '02:74:0a:58:%02x:%02x\n' $(((2 + $1) / 256)) $(((2 + $1) % 256)); }

# bridge_cleanup: the EXIT trap. Tenants and taps first, then every table of this
# script's tenants, then the bridge and NAT table if this script brought them.
bridge_cleanup() {
	local p t i
	# Asked to end first, so that tenantd's code removes what it made; sandbox_cleanup
	# then kills whatever is left.
	for p in "${taps[@]}" "${bg[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 50); do
		for p in "${taps[@]}" "${bg[@]}"; do kill -0 "$p" 2>/dev/null && break; done
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	for p in "${taps[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for t in "${tap_ifs[@]}"; do ip link del "$t" 2>/dev/null; done
	sandbox_cleanup
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

# write_manifest NAME ISOLATION NETWORK-JSON: $tmp/NAME.json, running `payload sleep`
write_manifest() {
	if [[ $2 == microvm ]]; then
		cat >"$tmp/$1.json" <<EOF
{ "name": "$1", "isolation": "microvm", "exec": ["/bin/true"], "network": $3 }
EOF
	else
		cat >"$tmp/$1.json" <<EOF
{ "name": "$1", "user": "1000:1000", "exec": ["/payload/payload", "sleep", "300"],
  "mounts": [ { "source": "$tmp/bin", "target": "/payload" } ], "network": $3 }
EOF
	fi
}

# start_sandbox NAME INDEX NETWORK-JSON: a private sandbox tenant of index INDEX; sets
# init_pid (its network namespace) and ctl_pid (its tenantctl run). Skips the script when tnd-INDEX is taken.
start_sandbox() {
	mkdir -p "$tmp/bin" "$state"
	[[ -x $tmp/bin/payload ]] || cp "$payload_bin" "$tmp/bin/payload"
	tenants+=("$1")
	echo "$1 $((1073741824 + $2 * 65536))" >>"$state/uidranges"
	write_manifest "$1" sandbox "$3"
	"$ctl" run --state "$state" "$tmp/$1.json" >"$tmp/$1.out" 2>"$tmp/$1.err" &
	ctl_pid=$!
	bg+=("$ctl_pid")
	if ! find_service "$ctl_pid"; then
		grep -q 'already exists' "$tmp/$1.err" &&
			skip_all "tnd-$2 IS IN USE by another run's tenant (EBUSY): try again later"
		bail "tenant $1 did not start: $(head -c 300 "$tmp/$1.err")"
	fi
}

# start_tap NAME INDEX NETWORK-JSON [EGRESS]: the tap of a microVM tenant of index
# INDEX; with EGRESS (bits/s), SIGUSR1 to its net_probe sets that egress rate live and
# SIGUSR2 lifts it (see net_probe.c), each answered by a line "rates ..." in $tmp/NAME.out.
start_tap() {
	tenants+=("$1")
	write_manifest "$1" microvm "$3"
	mkdir -p "$state"
	"$net_probe" tap "$tmp/$1.json" "$2" "$state" ${4:+"$4"} >"$tmp/$1.out" 2>"$tmp/$1.err" &
	taps+=($!)
	local i
	for i in $(seq 100); do
		if grep -q '^ready' "$tmp/$1.out"; then
			tap_ifs+=("tnd-$2" "tndi-$2") # ours now, to remove if net_probe cannot
			return 0
		fi
		sleep 0.05
	done
	grep -q 'already exists' "$tmp/$1.err" &&
		skip_all "tnd-$2 IS IN USE by another run's tenant (EBUSY): try again later"
	bail "the tap of $1 was not made: $(head -c 300 "$tmp/$1.err")"
}

# start_guest KIND NAME INDEX NET: a tenant of either backend; sets run_in (the command
# prefix that runs a program as the tenant's network stack). A microVM is its tap with a
# guest played by a network namespace of this script (guests=()), whose frames
# abuse_peer.py relays (peer_py, set by the caller).
start_guest() {
	local kind=$1 name=$2 index=$3 net=$4
	if [[ $kind == sandbox ]]; then
		start_sandbox "$name" "$index" "$net"
		run_in=(nsenter -t "$init_pid" -n)
		return
	fi
	start_tap "$name" "$index" "$net"
	local g=tabg$$-$index
	guests+=("$g")
	ip netns add "$g" &&
		ip link add "tabe$index" type veth peer name "tabr$index" &&
		ip link set "tabe$index" netns "$g" && ip link set "tabr$index" netns "$g" &&
		ip -n "$g" link set "tabe$index" address "$(tenant_mac "$index")" &&
		ip -n "$g" addr add "$(tenant_addr "$index")/16" dev "tabe$index" &&
		ip -n "$g" link set "tabe$index" up && ip -n "$g" link set "tabr$index" up &&
		ip -n "$g" link set lo up && ip -n "$g" route add default via 10.88.0.1 ||
		bail "cannot make the guest namespace of $name"
	"$py" "$peer_py" relay "tnd-$index" "$g" "tabr$index" "tabe$index" >"$tmp/$name.relay" 2>&1 &
	bg+=($!)
	local i
	for i in $(seq 100); do grep -q relaying "$tmp/$name.relay" && break; sleep 0.05; done
	grep -q relaying "$tmp/$name.relay" || bail "the relay of $name did not start: $(cat "$tmp/$name.relay")"
	run_in=(ip netns exec "$g")
}

# bridge_mac: the bridge's MAC, which tenants reach the host (their gateway) through
bridge_mac() { cat /sys/class/net/tenantd0/address; }
