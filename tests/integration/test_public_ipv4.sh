#!/usr/bin/env bash
# test_public_ipv4.sh — network.public_ipv4 (issue 15): an extra address of the host's
# becomes one tenant's, both ways, for a sandbox and, from the same manifest with only
# "isolation" changed, for a microVM.
#
# "The internet" is a network namespace this script creates (W, 198.51.100.1), joined to
# the host by a veth pair (host end 198.51.100.2). The tenant's public address
# 198.51.100.77 is added to the host end as the operator would add it to the uplink.
# Each tenant (tenantctl run) serves two connections on port 8080, answering with the
# peer address it sees, then connects to a sink in W, which answers with the source
# address it sees, and prints that. The checks:
#  - a client in W reaches the tenant at the public address, and the tenant sees the
#    client's real address (no NAT inbound but the destination);
#  - a client on the host itself reaches it at the public address too;
#  - a port the tenant does not serve is refused by the tenant, and never reaches a
#    service of the host's bound to that address: the whole address is the tenant's;
#  - what the tenant opens leaves with the public address as source, not the host's
#    masquerade.
# Then tenantd with two manifests naming one address: one tenant gets it, the other is
# refused with the reason, and a running tenant keeps its address when a new manifest
# claims it.
#
# The microVM half needs libvirt, QEMU and make vm-image and skips loudly without them.
# Everything is removed at the end: the namespace, the links, the tenants' tables,
# their domains, and the bridge, NAT table and ip_forward setting if this script was the
# one that brought them.
set -u
cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/libvirt.sh
require_sandbox
for tool in ip nft python3 ss; do
	command -v $tool >/dev/null ||
		skip_all "$tool IS MISSING (make test-deps): nothing was tested"
done

tmp=$(mktemp -d /tmp/tenantd-pubip.XXXXXX)
chmod 755 "$tmp" # QEMU's user serves the microVM's shares
state=$tmp/runstate
tenants=()
bg=()
id=$$
W=tnpw$id
PUB=198.51.100.77
had_bridge=$(ip link show tenantd0 >/dev/null 2>&1 && echo yes)
had_nat=$(nft list table ip tenantd >/dev/null 2>&1 && echo yes)
old_forward=$(cat /proc/sys/net/ipv4/ip_forward)

cleanup() {
	daemon_cleanup
	local t
	for t in "${tenants[@]}"; do
		vm_domain_purge "$t"
		rm -rf "/run/tenantd-vm/$t"
	done
	libvirt_release
	sandbox_cleanup
	ip netns del "$W" 2>/dev/null
	ip link del "$W-h" 2>/dev/null
	for t in "${tenants[@]}"; do
		nft delete table inet "tenantd-$t" 2>/dev/null
		nft delete table bridge "tenantd-$t" 2>/dev/null
		nft delete table netdev "tenantd-$t" 2>/dev/null
	done
	if [[ -z $had_bridge ]] && ! ip -o link show master tenantd0 2>/dev/null | grep -q .; then
		ip link del tenantd0 2>/dev/null
		[[ -z $had_nat ]] && nft delete table ip tenantd 2>/dev/null
	fi
	echo "$old_forward" >/proc/sys/net/ipv4/ip_forward
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$W" &&
	ip link add "$W-h" type veth peer name "$W-p" netns "$W" &&
	ip addr add 198.51.100.2/24 dev "$W-h" && ip addr add "$PUB/32" dev "$W-h" &&
	ip link set "$W-h" up && ip -n "$W" addr add 198.51.100.1/24 dev "$W-p" &&
	ip -n "$W" link set "$W-p" up && ip -n "$W" link set lo up ||
	skip_all "cannot create a test namespace with a veth pair: nothing was tested"

py=$(python3 -c 'import sys; print(sys.executable)')
# The sink in W: answers each connection with the source address it sees.
ip netns exec "$W" "$py" -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen()
while True:
    c, a = s.accept(); c.send(("seen %s\n" % a[0]).encode()); c.close()' &
bg+=($!)
# A service of the host's bound to the public address, which the tenant's address must
# shadow.
"$py" -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'"$PUB"'", 8081)); s.listen()
while True:
    c, a = s.accept(); c.send(b"the host answered\n"); c.close()' &
bg+=($!)
for _ in $(seq 200); do
	ip netns exec "$W" ss -Hltn 'sport = :9000' | grep -q . && ss -Hltn 'sport = :8081' | grep -q . && break
	sleep 0.05
done

# The tenant: two connections on 8080 answered with the peer's address, then one to the
# sink, whose answer it prints.
mkdir -p "$tmp/t" && chmod 755 "$tmp/t"
cat >"$tmp/t/tenant.py" <<'EOF'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(); s.settimeout(240)
for _ in range(2):
    c, a = s.accept(); c.send(("peer %s\n" % a[0]).encode()); c.close()
o = socket.create_connection(("198.51.100.1", 9000), timeout=30)
print(o.recv(100).decode().strip(), flush=True)
EOF
chmod 644 "$tmp/t/tenant.py"

# ask NS-or-empty ADDR PORT [TRIES [PID]]: connects (retrying while nothing answers, and
# while PID, the tenant's tenantctl, lives) and prints the first line of the answer, or
# "refused" / "timeout" for the last try.
ask() {
	local ns=$1
	local -a pre=()
	[[ -n $ns ]] && pre=(ip netns exec "$ns")
	"${pre[@]}" "$py" -c '
import os, socket, sys, time
addr, port, tries, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
last = "timeout"
for i in range(tries):
    if pid:
        try:
            os.kill(pid, 0)
        except OSError:
            break
    try:
        c = socket.create_connection((addr, port), timeout=5)
        print(c.recv(100).decode().strip()); sys.exit(0)
    except ConnectionRefusedError:
        last = "refused"
    except OSError:
        last = "timeout"
    time.sleep(0.5)
print(last)' "$2" "$3" "${4:-1}" "${5:-0}"
}

vm_why=""
vmdir=$PWD/$BUILD/vm
vm_probe

# one_backend ISOLATION: runs the tenant with tenantctl run and checks it from W and
# from the host.
one_backend() {
	local iso=$1 name=tpub${1:0:1}$id
	tenants+=("$name")
	cat >"$tmp/$name.json" <<EOF
{ "name": "$name", "isolation": "$iso", "root": "host-system",
  "exec": ["/usr/bin/python3", "/t/tenant.py"],
  "mounts": [ { "source": "$tmp/t", "target": "/t" } ],
  "network": { "mode": "private", "public_ipv4": "$PUB" } }
EOF
	timeout -k 5 300 "$ctl" run --state "$state" "$tmp/$name.json" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	local runner=$!
	bg+=("$runner")
	local first second refused
	first=$(ask "$W" "$PUB" 8080 480 "$runner")
	check "$iso: a client outside reaches the tenant at its public address, which sees the client's own address ($first)" \
		'[[ $first == "peer 198.51.100.1" ]]'
	refused=$(ask "$W" "$PUB" 8081)
	check "$iso: a port the tenant does not serve is the tenant's too: refused, not the host's service on that address ($refused)" \
		'[[ $refused == refused ]]'
	second=$(ask "" "$PUB" 8080 20 "$runner")
	check "$iso: the host itself reaches the tenant at the public address ($second)" \
		'[[ $second == "peer "* ]]'
	wait "$runner"
	rc=$? out=$(cat "$tmp/$name.out") err=$(cat "$tmp/$name.err")
	check "$iso: what the tenant opens leaves with the public address as source" \
		'[[ $rc == 0 && $out == "seen $PUB" ]]'
	check "$iso: its NAT is gone with it" '! nft list table inet "tenantd-$name" >/dev/null 2>&1'
}

one_backend sandbox
if [[ -n $vm_why ]]; then
	for what in "reaches the tenant at its public address" "a port the tenant does not serve is refused" \
		"the host reaches the tenant" "the tenant's traffic leaves with the public address" "its NAT is gone"; do
		skip "microvm: $what: $vm_why"
	done
else
	one_backend microvm
fi

# ---- one address, one tenant (tenantd) ----
mkdir -p "$tmp/manifests"
A=tpa$id B=tpb$id C=tpc$id
tenants+=("$A" "$B" "$C")
# (A backup section, so that restore --as reaches its check of the address.)
umask 077 && echo "test password" >"$tmp/backup.pass" && umask 022
pub_manifest() { # NAME ADDRESS
	cat >"$tmp/manifests/$1.json" <<EOF
{ "name": "$1", "root": "host-system", "exec": ["/bin/sleep", "600"],
  "network": { "mode": "private", "public_ipv4": "$2" },
  "volumes": [ { "name": "data", "target": "/data", "size": "32M" } ],
  "backup": { "repository": "$tmp/repo", "password_file": "$tmp/backup.pass" } }
EOF
}
pub_manifest "$B" 198.51.100.78
mkdir -m 700 "$tmp/storage"
start_daemon --storage "$tmp/storage" || bail "tenantd did not start"
wait_state "$B" running 30
check "a tenant with a public address runs under tenantd" '[[ $(json_field "$B" state) == running ]]'
check "its NAT chain names its address" 'nft list chain inet "tenantd-$B" public_in 2>/dev/null | grep -q "ip daddr 198.51.100.78 dnat"'
# A new manifest, first in name order, claims B's address: B keeps it.
pub_manifest "$A" 198.51.100.78
out=$("$ctl" reload 2>&1)
check "reload: a second manifest naming the address is invalid ($out)" '[[ $out == *"1 invalid"* ]]'
check "the reason names the address and the tenant that has it" \
	'"$ctl" events -n 50 | grep -q "event=manifest-invalid file=$tmp/manifests/$A.json .*198.51.100.78 is already the address of tenant $B"'
check "the tenant that had it keeps running with it" \
	'[[ $(json_field "$B" state) == running ]] && nft list chain inet "tenantd-$B" public_in 2>/dev/null | grep -q "198.51.100.78"'
check "the claimant was not added" '! "$ctl" status "$A" >/dev/null 2>&1'
out=$("$ctl" restore "$B" --as "$C" 2>&1)
check "restore --as of a tenant with a public address is refused with the reason ($out)" \
	'[[ $out == *"public_ipv4"* ]] && [[ ! -e $tmp/manifests/$C.json ]]'

done_testing
