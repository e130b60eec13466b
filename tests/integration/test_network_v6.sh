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
#   for an address that is not the tenant's, and a solicitation or advertisement that
#   names another MAC than the tenant's in its link-layer address option;
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
# shellcheck source=tests/lib/v6.sh
. "$(dirname "$0")/../lib/v6.sh"
v6_begin net6
W=t6w$$ L=t6l$$
peer6 "$W" 2001:db8:77::2 2001:db8:77::1 || skip_all "cannot create test namespaces with IPv6 veth pairs"
peer6 "$L" fd99:77::2 fd99:77::1 || skip_all "cannot create test namespaces with IPv6 veth pairs"
listen6 "$W" :: 9000
listen6 "$W" :: 25
listen6 "$L" :: 9000
listen6 "" 2001:db8:77::2 9001 # the host's own address
# icmp6.py IFNAME TYPE...: sends one ICMPv6 message of each TYPE to ff02::1 through
# IFNAME from its link-local address (134 router advertisement, 137 redirect, 128 echo
# request, 136 a neighbour advertisement for fd99:77::1, which is not the tenant's;
# 135=MAC a neighbour solicitation for the bridge's link-local address naming MAC as its
# source link-layer address, 136=MAC an advertisement of IFNAME's own link-local address
# naming MAC as its target link-layer address)
cat >"$tmp/icmp6.py" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
idx = socket.if_nametoindex(sys.argv[1])
own_ll = [l.split()[0] for l in open("/proc/net/if_inet6") if l.split()[5] == sys.argv[1] and l.startswith("fe80")][0]
own_ll = bytes.fromhex(own_ll)
for arg in sys.argv[2:]:
    t, _, mac = arg.partition("=")
    t = int(t)
    if mac:
        opt = bytes([1 if t == 135 else 2, 1]) + bytes.fromhex(mac.replace(":", ""))
        target = socket.inet_pton(socket.AF_INET6, "fe80::1") if t == 135 else own_ll
        flags = 0 if t == 135 else 0x20000000
        s.sendto(struct.pack("!BBHI", t, 0, 0, flags) + target + opt, ("ff02::1", 0, 0, idx))
        continue
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
            # a neighbour solicitation or advertisement with a link-layer option: TYPE=MAC
            ll = "=" + f[80:86].hex(":") if f[54] in (135, 136) and len(f) >= 86 and f[78] in (1, 2) else ""
            seen.append(str(f[54]) + ll)
print(" ".join(seen) or "none", flush=True)
EOF

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
		guest6 "$index" "$addr6/64" "$ula"
	fi
	wait_ll

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
	fake=02:00:5e:10:66:66
	"${run_in[@]}" "$py" "$tmp/icmp6.py" "$guestif" 134 137 136 128 128 "135=$mac" "136=$mac" "135=$fake" "136=$fake"
	wait "$sniffer"
	seen=$(tail -1 "$tmp/sniff")
	check "$kind: the tenant's echo request to ff02::1 reaches the bridge (seen: $seen)" '[[ " $seen " == *" 128 "* ]]'
	check "$kind: its router advertisement, redirect and a foreign neighbour advertisement do not" \
		'[[ " $seen " != *" 134 "* && " $seen " != *" 137 "* && " $seen " != *" 136 "* ]]'
	check "$kind: its solicitation and advertisement naming its own MAC as link-layer address pass" \
		'[[ " $seen " == *" 135=$mac "* && " $seen " == *" 136=$mac "* ]]'
	check "$kind: naming another MAC ($fake), both are dropped" '[[ " $seen " != *"=$fake"* ]]'
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
v6_vm_probe
if [[ -n $vm_why ]]; then
	skip "microVM: the guest has its IPv6 address and reaches the sink: $vm_why"
else
	index=$((base + 3))
	v6_vm "t6vm-$$" "$index" '{ "mode": "private" }' 2001:db8:77::1
	addr6=$(ula_addr "$(printf '%x' $((index + 2)))")
	check "microVM: tenant-agent gave eth0 $addr6/64 and the default route (rc $rc)" \
		'[[ $rc -eq 0 && $out == *"inet6 $addr6/64"* && $out == *"default via $(ula_addr 1)"* ]]'
	check "microVM: the guest reaches the IPv6 sink, NATed ($(tail -1 <<<"$out"))" \
		'[[ $(tail -1 <<<"$out") == "seen 2001:db8:77::2" ]]'
fi
done_testing
