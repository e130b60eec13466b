# shellcheck shell=bash disable=SC2154 # $tmp, $ctl, $py, tenants=(), bg=() ... are the sourcing script's
# tests/lib/v6.sh — what the IPv6 network suites share (test_network_v6.sh,
# test_network_v6_routed.sh). Sourced after tests/lib/sandbox.sh and tests/lib/bridge.sh:
#
#   v6_begin NAME        skips the script without IPv6; makes $tmp (/tmp/tenantd-NAME.*),
#                        $state, tenants=() bg=() guests=() peers=(), $tmp/connect.py, and
#                        sets the EXIT trap to v6_cleanup (which calls v6_cleanup_extra
#                        first when the script defines it)
#   peer6 NAME HOST PEER [ROUTE]
#                        a namespace NAME joined to the host by a veth pair NAME-h/NAME-p,
#                        HOST/64 on the host's end and PEER/64 on its own, and a route to
#                        ROUTE (default: the default route) via HOST
#   listen6 NS ADDR PORT a server in namespace NS ("" for the host) that answers each
#                        client "seen CLIENT-ADDRESS"
#   guest6 INDEX ADDR/LEN GATEWAY
#                        configures the IPv6 of the guest that a network namespace plays
#                        for the tap tnd-INDEX (start_guest), as tenant-agent would
#   wait_ll              waits until the tenant's link-local address is no longer
#                        tentative (DAD, where it runs, takes a second)
#   v6_vm NAME INDEX NETWORK-JSON SINK
#                        a real microVM of index INDEX (after vm_probe said yes) that shows
#                        its global IPv6 addresses and default route and then asks SINK
#                        (an IPv6 address, port 9000) who it is; sets out and rc
#
# connect.py ADDR PORT [SOURCE]: prints what the server at [ADDR]:PORT says, or "fail
# ERRNO" ("fail timeout" after 3 s), bound to SOURCE when given.

v6_begin() {
	[[ -e /proc/sys/net/ipv6 ]] || skip_all "THE KERNEL HAS NO IPv6: nothing was tested"
	tmp=$(mktemp -d "/tmp/tenantd-$1.XXXXXX")
	chmod 755 "$tmp" # QEMU's user reads the microVM's root share
	state=$tmp/state
	tenants=()
	bg=()
	guests=()
	peers=()
	mkdir -p "$tmp/bin" "$state" && cp "$payload_bin" "$tmp/bin/payload"
	cat >"$tmp/connect.py" <<'EOF'
import errno, socket, sys
s = socket.socket(socket.AF_INET6); s.settimeout(3)
try:
    if len(sys.argv) > 3:
        s.bind((sys.argv[3], 0))
    s.connect((sys.argv[1], int(sys.argv[2]))); print(s.recv(100).decode().strip())
except socket.timeout:
    print("fail timeout")
except OSError as e:
    print("fail", errno.errorcode.get(e.errno, e.errno))
EOF
	trap v6_cleanup EXIT
	trap 'exit 130' INT TERM
}

v6_cleanup() {
	local n
	declare -F v6_cleanup_extra >/dev/null && v6_cleanup_extra
	bridge_cleanup
	for n in "${guests[@]}" "${peers[@]}"; do ip netns del "$n" 2>/dev/null; done
	for n in "${peers[@]}"; do ip link del "$n-h" 2>/dev/null; done
	[[ -n ${vm_started:-} ]] && { vm_domain_purge "$VMT"; libvirt_release; }
}

peer6() {
	peers+=("$1")
	ip netns add "$1" &&
		ip link add "$1-h" type veth peer name "$1-p" netns "$1" &&
		sysctl -qw "net.ipv6.conf.$1-h.accept_dad=0" &&
		ip netns exec "$1" sysctl -qw "net.ipv6.conf.$1-p.accept_dad=0" &&
		ip addr add "$2/64" dev "$1-h" nodad && ip link set "$1-h" up &&
		ip -n "$1" addr add "$3/64" dev "$1-p" nodad && ip -n "$1" link set "$1-p" up &&
		ip -n "$1" link set lo up && ip -n "$1" -6 route add "${4:-default}" via "$2"
}

listen6() {
	${1:+ip netns exec "$1"} "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
while True:
    c, a = s.accept(); c.send(("seen %s\n" % a[0]).encode()); c.close()' "$2" "$3" &
	bg+=($!)
	local i
	for i in $(seq 200); do
		${1:+ip netns exec "$1"} ss -Hltn "sport = :$3" | grep -q . && return 0
		sleep 0.05
	done
}

guest6() {
	local g=tabg$$-$1
	ip netns exec "$g" sysctl -qw "net.ipv6.conf.tabe$1.accept_dad=0" &&
		ip -n "$g" addr add "$2" dev "tabe$1" nodad &&
		ip -n "$g" -6 route add default via "$3" dev "tabe$1" ||
		bail "cannot give the guest its IPv6 address"
}

wait_ll() {
	local i
	for i in $(seq 40); do
		"${run_in[@]}" ip -6 -o addr show scope link tentative | grep -q . || break
		sleep 0.1
	done
}

v6_vm() {
	local name=$1 index=$2 net=$3 sink=$4 a busybox
	busybox=$(command -v busybox)
	vm_started=1
	VMT=$name
	tenants+=("$name")
	echo "$name $((1073741824 + index * 65536))" >>"$state/uidranges"
	mkdir -p "$tmp/root/bin" "$tmp/root/etc"
	touch "$tmp/root/etc/resolv.conf"
	cp "$busybox" "$tmp/root/bin/busybox"
	for a in sh ip nc echo; do ln -sf busybox "$tmp/root/bin/$a"; done
	cat >"$tmp/$name.json" <<EOF
{ "name": "$name", "isolation": "microvm", "exec": ["/bin/sh", "-c",
  "ip -6 addr show dev eth0 scope global; ip -6 route show default; echo | nc $sink 9000"],
  "root": { "path": "$tmp/root", "readonly": true }, "network": $net }
EOF
	out=$(timeout -k 5 300 "$ctl" run --state "$state" "$tmp/$name.json" 2>"$tmp/$name.vm.err")
	rc=$?
	[[ $rc -eq 0 ]] || echo "# $(head -c 600 "$tmp/$name.vm.err" | tr '\n' ' ')"
	vm_domain_purge "$name"
}

# v6_vm_probe: vm_probe (tests/lib/libvirt.sh), and a static busybox for the guest's tools
v6_vm_probe() {
	# shellcheck source=tests/lib/libvirt.sh
	. tests/lib/libvirt.sh
	local busybox
	busybox=$(command -v busybox || true)
	vm_probe
	if [[ -z $vm_why ]] && { [[ -z $busybox ]] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; }; then
		vm_why="NO STATIC BUSYBOX (apt-get install busybox-static)"
	fi
}
