#!/usr/bin/env bash
# test_network_v6.sh — issue 15, IPv6 for private networks, the same for a sandbox's veth
# and a microVM's tap, from the same network JSON:
# - the tenant has its stable address in the bridge's ULA /64 (STATE/ula-prefix) and a
#   default route, and reaches an IPv6 sink, NATed (NAT66) to the host's address;
# - a port published on no address answers an IPv6 client in another namespace, and a
#   client on the host;
# - deny_lan refuses fc00::/7 (a ULA "LAN"), and the host's own IPv6 address is refused;
# - a forged IPv6 source, a router advertisement and a redirect from the tenant are
#   dropped on the bridge (a packet socket on the bridge sees the tenant's echo request
#   to ff02::1, sent the same way, and not them), and so is a neighbour advertisement
#   for an address that is not the tenant's;
# - network.limits count IPv6: SMTP is refused and counted; the host's count of the
#   tenant's connections (net_conntrack_count, what `tenantctl top` shows) includes IPv6;
# - "ipv6": false leaves the tenant without IPv6, and its port passes no IPv6 frame;
# - a real microVM gets its IPv6 address from tenant-agent and reaches the sink.
#
# The hostile cases enter the tenant's network stack as root (nsenter for a sandbox; for
# a microVM its real tap, made by net.c, with a guest played by a network namespace
# through abuse_peer.py's relay, see tests/lib/bridge.sh): what a guest with root can
# do. The sink and the "LAN" are network namespaces this script creates, with
# documentation addresses (2001:db8::/32) and a ULA of its own (fd99:77::/64); nothing
# leaves the machine, and everything is removed at the end.
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox
# shellcheck source=tests/lib/bridge.sh
. "$(dirname "$0")/../lib/bridge.sh"
require_bridge_tools
peer_py=${SRCDIR:-$PWD}/tests/integration/abuse_peer.py
[[ -e /proc/sys/net/ipv6 ]] || skip_all "THE KERNEL HAS NO IPv6: nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-net6.XXXXXX)
chmod 755 "$tmp" # QEMU's user reads the microVM's root share
state=$tmp/state
tenants=()
bg=()
guests=()
W=t6w$$ L=t6l$$
v6_cleanup() {
	local g
	bridge_cleanup
	for g in "${guests[@]}"; do ip netns del "$g" 2>/dev/null; done
	ip netns del "$W" 2>/dev/null
	ip netns del "$L" 2>/dev/null
	ip link del "$W-h" 2>/dev/null
	ip link del "$L-h" 2>/dev/null
	[[ -n ${vm_started:-} ]] && { vm_domain_purge "$VMT"; libvirt_release; }
}
trap v6_cleanup EXIT
trap 'exit 130' INT TERM

# peer6 NAME HOSTADDR PEERADDR: a namespace joined to the host by a veth pair (/64)
peer6() {
	ip netns add "$1" &&
		ip link add "$1-h" type veth peer name "$1-p" netns "$1" &&
		sysctl -qw "net.ipv6.conf.$1-h.accept_dad=0" &&
		ip netns exec "$1" sysctl -qw "net.ipv6.conf.$1-p.accept_dad=0" &&
		ip addr add "$2/64" dev "$1-h" nodad && ip link set "$1-h" up &&
		ip -n "$1" addr add "$3/64" dev "$1-p" nodad && ip -n "$1" link set "$1-p" up &&
		ip -n "$1" link set lo up && ip -n "$1" -6 route add default via "$2"
}
peer6 "$W" 2001:db8:77::2 2001:db8:77::1 || skip_all "cannot create test namespaces with IPv6 veth pairs"
peer6 "$L" fd99:77::2 fd99:77::1 || skip_all "cannot create test namespaces with IPv6 veth pairs"

# listen NS ADDR PORT: a server that answers with the client's address
listen() {
	${1:+ip netns exec "$1"} "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
while True:
    c, a = s.accept(); c.send(("seen %s\n" % a[0]).encode()); c.close()' "$2" "$3" &
	bg+=($!)
}
listen "$W" :: 9000
listen "$W" :: 25
listen "$L" :: 9000
listen "" 2001:db8:77::2 9001 # the host's own address
# connect.py ADDR PORT [SOURCE]: "seen ..." or "fail ERRNO", at most 3 s
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
# icmp6.py IFNAME TYPE...: sends one ICMPv6 message of each TYPE to ff02::1 through
# IFNAME from its link-local address (134 router advertisement, 137 redirect, 128 echo
# request, 136 a neighbour advertisement for fd99:77::1, which is not the tenant's)
cat >"$tmp/icmp6.py" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
idx = socket.if_nametoindex(sys.argv[1])
for t in map(int, sys.argv[2:]):
    if t == 134:  # hop limit, flags, lifetime 1800 s, reachable, retrans
        body = struct.pack("!BBHII", 64, 0, 1800, 0, 0)
    elif t == 137:  # reserved, target, destination
        body = b"\0" * 4 + socket.inet_pton(socket.AF_INET6, "fe80::1") + \
            socket.inet_pton(socket.AF_INET6, "2001:db8:77::1")
    elif t == 136:  # override flag, target
        body = struct.pack("!I", 0x20000000) + socket.inet_pton(socket.AF_INET6, "fd99:77::1")
    else:
        body = struct.pack("!HH", 0x6e64, 1)
    s.sendto(struct.pack("!BBH", t, 0, 0) + body, ("ff02::1", 0, 0, idx))
EOF
# sniff.py IFNAME MAC SECONDS: the ICMPv6 types of the frames from MAC seen on IFNAME
cat >"$tmp/sniff.py" <<'EOF'
import select, socket, sys, time
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
p.bind((sys.argv[1], 0))
mac = bytes.fromhex(sys.argv[2].replace(":", ""))
print("listening", flush=True)
end, seen = time.time() + float(sys.argv[3]), []
while time.time() < end:
    if select.select([p], [], [], 0.1)[0]:
        f = p.recv(2048)
        if f[6:12] == mac and f[20] == 58:  # next header ICMPv6, no extension headers
            seen.append(str(f[54]))
print(" ".join(seen) or "none", flush=True)
EOF
for a in "$W:9000" "$L:9000" "$W:25"; do
	for _ in $(seq 200); do ip netns exec "${a%:*}" ss -Hltn "sport = :${a#*:}" | grep -q . && break; sleep 0.05; done
done
for _ in $(seq 200); do ss -Hltn "sport = :9001" | grep -q . && break; sleep 0.05; done

mkdir -p "$tmp/bin" "$state" && cp "$payload_bin" "$tmp/bin/payload"
base=$((7000 + $$ % 500 * 4))
port=$((20000 + $$ % 5000))

# ula_addr ID: the ULA /64's address ::ID (hex) of this state directory
ula_addr() { sed -n 's|::/48$|::'"$1"'|p' "$state/ula-prefix"; }

for kind in sandbox microvm; do
	case $kind in
	sandbox) index=$base guestif=eth0 ;;
	microvm) index=$((base + 1)) guestif=tabe$((base + 1)) ;;
	esac
	T=t6-$kind-$$
	start_guest "$kind" "$T" "$index" "{ \"mode\": \"private\", \"publish\": [ { \"host\": $port, \"port\": 8080 } ] }"
	ula=$(ula_addr 1)
	check "$kind: the state directory has a ULA /48 ($(cat "$state/ula-prefix" 2>/dev/null))" \
		'[[ $(cat "$state/ula-prefix") =~ ^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::/48$ ]]'
	addr6=$(ula_addr "$(printf '%x' $((index + 2)))")
	if [[ $kind == sandbox ]]; then
		got=$("${run_in[@]}" ip -6 -o addr show dev eth0 scope global)
		check "$kind: eth0 has the tenant's stable address $addr6/64" '[[ $got == *" $addr6/64 "* ]]'
		got=$("${run_in[@]}" ip -6 route show default)
		check "$kind: its default route is via the bridge ($ula)" '[[ $got == "default via $ula dev eth0"* ]]'
		got=$(ip -6 -o addr show dev tenantd0)
		check "$kind: the bridge has $ula/64" '[[ $got == *" $ula/64 "* ]]'
	else
		# The guest that the network namespace plays configures itself as tenant-agent
		# would: the address tenantd gives it, the default route via the bridge.
		g=${guests[-1]}
		ip netns exec "$g" sysctl -qw "net.ipv6.conf.tabe$index.accept_dad=0" &&
			ip -n "$g" addr add "$addr6/64" dev "tabe$index" nodad &&
			ip -n "$g" -6 route add default via "$ula" || bail "cannot give the guest its IPv6 address"
	fi
	# the link-local address must be usable (DAD, where it runs, takes a second)
	for _ in $(seq 40); do
		"${run_in[@]}" ip -6 -o addr show scope link tentative | grep -q . || break
		sleep 0.1
	done

	out=$("${run_in[@]}" "$py" "$tmp/connect.py" 2001:db8:77::1 9000)
	check "$kind: reaches an IPv6 sink, NATed to the host's address ($out)" '[[ $out == "seen 2001:db8:77::2" ]]'
	out=$("${run_in[@]}" "$py" "$tmp/connect.py" 2001:db8:77::1 25)
	check "$kind: network.limits apply to IPv6: SMTP is refused by default ($out)" '[[ $out == "fail ECONNREFUSED" ]]'
	got=$(nft list counter inet "tenantd-$T" abuse_smtp)
	check "$kind: ... counted in abuse_smtp" 'grep -q "packets [1-9]" <<<"$got"'
	# a UDP flow to the sink (nothing listens: its entry stays, unanswered, for 30 s)
	"${run_in[@]}" "$py" -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"x", ("2001:db8:77::1", 9999))'
	c4=$("$net_probe" conntrack "$(tenant_addr "$index")" | sed -n 's/^conns=//p')
	c6=$("$net_probe" conntrack "$(tenant_addr "$index")" "$addr6" | sed -n 's/^conns=//p')
	check "$kind: net_conntrack_count counts its IPv6 connections too (IPv4 only: $c4, both: $c6)" \
		'[[ -n $c4 && -n $c6 && $c6 -gt $c4 ]]'
	out=$("${run_in[@]}" "$py" "$tmp/connect.py" fd99:77::1 9000)
	check "$kind: deny_lan refuses a ULA address (fc00::/7) at once: EACCES ($out)" '[[ $out == "fail EACCES" ]]'
	out=$("${run_in[@]}" "$py" "$tmp/connect.py" 2001:db8:77::2 9001)
	check "$kind: the host's own IPv6 address is refused: EACCES ($out)" '[[ $out == "fail EACCES" ]]'
	out=$("${run_in[@]}" "$py" "$tmp/connect.py" "$ula" 9001)
	check "$kind: so is the bridge's ($out)" '[[ $out == "fail EACCES" ]]'

	# a published port, answered by a server in the tenant's network stack
	"${run_in[@]}" "$py" -c '
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 8080)); s.listen()
while True:
    c, a = s.accept(); c.send(("tenant saw %s\n" % a[0]).encode()); c.close()' &
	bg+=($!)
	for _ in $(seq 200); do "${run_in[@]}" ss -Hltn "sport = :8080" | grep -q . && break; sleep 0.05; done
	out=$(ip netns exec "$W" "$py" "$tmp/connect.py" 2001:db8:77::2 "$port")
	check "$kind: a published port answers on IPv6 a client in another namespace ($out)" \
		'[[ $out == "tenant saw 2001:db8:77::1" ]]'
	out=$("$py" "$tmp/connect.py" 2001:db8:77::2 "$port")
	check "$kind: ... and a client on the host ($out)" '[[ $out == "tenant saw "* ]]'

	# forged sources: another address of the ULA /64, and one outside it
	forged=$(ula_addr ffff)
	"${run_in[@]}" ip addr add "$forged/128" dev "$guestif" nodad 2>/dev/null
	"${run_in[@]}" ip addr add 2001:db8:99::5/128 dev "$guestif" nodad 2>/dev/null
	out=$("${run_in[@]}" "$py" "$tmp/connect.py" 2001:db8:77::1 9000 "$forged")
	out2=$("${run_in[@]}" "$py" "$tmp/connect.py" 2001:db8:77::1 9000 2001:db8:99::5)
	check "$kind: a forged IPv6 source is dropped ($out; $out2)" '[[ $out == "fail timeout" && $out2 == "fail timeout" ]]'
	# (bound to it: source address selection would prefer 2001:db8:99::5 for this sink)
	out=$("${run_in[@]}" "$py" "$tmp/connect.py" 2001:db8:77::1 9000 "$addr6")
	check "$kind: ... while its own address still works ($out)" '[[ $out == "seen 2001:db8:77::2" ]]'
	"${run_in[@]}" ip addr del "$forged/128" dev "$guestif"
	"${run_in[@]}" ip addr del 2001:db8:99::5/128 dev "$guestif"

	# router advertisement, redirect, a neighbour advertisement for another address;
	# the echo request is sent the same way and must be seen
	mac=$(tenant_mac "$index")
	"$py" "$tmp/sniff.py" tenantd0 "$mac" 3 >"$tmp/sniff" &
	sniffer=$!
	for _ in $(seq 100); do grep -q listening "$tmp/sniff" && break; sleep 0.05; done
	"${run_in[@]}" "$py" "$tmp/icmp6.py" "$guestif" 134 137 136 128 128
	wait "$sniffer"
	seen=$(tail -1 "$tmp/sniff")
	check "$kind: the tenant's echo request to ff02::1 reaches the bridge (seen: $seen)" '[[ " $seen " == *" 128 "* ]]'
	check "$kind: its router advertisement, redirect and a foreign neighbour advertisement do not" \
		'[[ " $seen " != *" 134 "* && " $seen " != *" 137 "* && " $seen " != *" 136 "* ]]'
	got=$(nft list chain bridge "tenantd-$T" prerouting)
	check "$kind: ... dropped by the tenant's bridge table (counted)" \
		'grep -q "icmpv6 type { nd-router-advert, nd-redirect } counter packets [1-9]" <<<"$got"'
done

# ---- "ipv6": false ----
T=t6-off-$$
start_guest sandbox "$T" $((base + 2)) '{ "mode": "private", "ipv6": false }'
check "ipv6 false: IPv6 is off in the tenant" '[[ $("${run_in[@]}" cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6) == 1 ]]'
"${run_in[@]}" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0
for _ in $(seq 30); do "${run_in[@]}" ip -6 -o addr show scope link tentative | grep -q . || break; sleep 0.1; done
mac=$(tenant_mac $((base + 2)))
"$py" "$tmp/sniff.py" tenantd0 "$mac" 2 >"$tmp/sniff" &
sniffer=$!
for _ in $(seq 100); do grep -q listening "$tmp/sniff" && break; sleep 0.05; done
"${run_in[@]}" "$py" "$tmp/icmp6.py" eth0 128 128
wait "$sniffer"
seen=$(tail -1 "$tmp/sniff")
check "ipv6 false: turned back on by root inside, its IPv6 frames still do not pass (seen: $seen)" '[[ $seen == none ]]'

# ---- a real microVM: tenant-agent configures its address ----
source tests/lib/libvirt.sh
vm_why=""
vmdir=$PWD/$BUILD/vm
busybox=$(command -v busybox || true)
if ! command -v qemu-system-x86_64 >/dev/null; then
	vm_why="NO QEMU (make test-deps installs it)"
elif [[ ! -r $vmdir/vmlinuz || ! -r $vmdir/initramfs.img ]]; then
	vm_why="NO VM IMAGE (make vm-image)"
elif [[ -z $busybox ]] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	vm_why="NO STATIC BUSYBOX (apt-get install busybox-static)"
elif ! libvirt_ensure; then
	vm_why="NO LIBVIRT: $libvirt_why"
fi
if [[ -n $vm_why ]]; then
	skip "microVM: the guest has its IPv6 address and reaches the sink: $vm_why"
else
	vm_started=1
	export TENANTD_VM_IMAGE_DIR=$vmdir
	VMT=t6vm-$$
	tenants+=("$VMT")
	index=$((base + 3))
	echo "$VMT $((1073741824 + index * 65536))" >>"$state/uidranges"
	mkdir -p "$tmp/root/bin" "$tmp/root/etc"
	touch "$tmp/root/etc/resolv.conf"
	cp "$busybox" "$tmp/root/bin/busybox"
	for a in sh ip nc echo; do ln -sf busybox "$tmp/root/bin/$a"; done
	cat >"$tmp/$VMT.json" <<EOF
{ "name": "$VMT", "isolation": "microvm", "exec": ["/bin/sh", "-c",
  "ip -6 addr show dev eth0 scope global; ip -6 route show default; echo | nc 2001:db8:77::1 9000"],
  "root": { "path": "$tmp/root", "readonly": true }, "network": { "mode": "private" } }
EOF
	out=$(timeout -k 5 300 "$ctl" run --state "$state" "$tmp/$VMT.json" 2>"$tmp/vm.err")
	rc=$?
	addr6=$(ula_addr "$(printf '%x' $((index + 2)))")
	check "microVM: tenant-agent gave eth0 $addr6/64 and the default route (rc $rc)" \
		'[[ $rc -eq 0 && $out == *"inet6 $addr6/64"* && $out == *"default via $(ula_addr 1)"* ]]'
	[[ $rc -eq 0 ]] || echo "# $(head -c 600 "$tmp/vm.err" | tr '\n' ' ')"
	check "microVM: the guest reaches the IPv6 sink, NATed ($(tail -1 <<<"$out"))" \
		'[[ $(tail -1 <<<"$out") == "seen 2001:db8:77::2" ]]'
fi
done_testing
