#!/usr/bin/env bash
# test_socket_families.sh — issue 10, item 8: the `default` seccomp profile allows only
# the socket families services use. A payload in a real sandbox (tenantctl run, the
# default profile) opens sockets of every other family, every netlink protocol but
# NETLINK_ROUTE, and socketpairs: each must fail with EAFNOSUPPORT (what a kernel
# without that family says, so software falls back). The family is tested on its low
# 32 bits, as the kernel reads it: AF_PACKET with bits set above them is refused too.
# The allowed families must work: a byte over TCP on 127.0.0.1, a unix socketpair, an
# IPv6 socket, and the interface list that glibc reads over NETLINK_ROUTE.
#
# The kernel answers EAFNOSUPPORT by itself for families it was built without, so the
# checks that prove the profile are the families this kernel has: AF_PACKET (EPERM
# without the profile), AF_ALG, AF_KEY, AF_VSOCK where built in, and netlink
# protocols such as NETLINK_SOCK_DIAG, NETLINK_AUDIT, NETLINK_GENERIC and
# NETLINK_KOBJECT_UEVENT (which open without the profile).
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox

tmp=$(mktemp -d /tmp/tenantd-sockfam.XXXXXX)
state=$tmp/state
tenants=()
bg=()
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin" "$state"
cp "$payload_bin" "$tmp/bin/payload"
chmod 0755 "$tmp/bin" "$tmp/bin/payload"

T=sockfam-$$
tenants=("$T")
cat >"$tmp/$T.json" <<EOF
{ "name": "$T", "exec": ["/payload/payload", "true"], "user": "1000:1000",
  "network": { "mode": "none" },
  "mounts": [ { "source": "$tmp/bin", "target": "/payload" } ] }
EOF

trc() { # ARGS... (to the payload)
	timeout -k 5 30 "$ctl" run --state "$state" "$tmp/$T.json" -- /payload/payload "$@" \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# Allowed families work (else every refusal below could be a broken sandbox).
trc loopback
check "allowed: TCP over 127.0.0.1 (AF_INET), a unix socketpair, an AF_INET6 socket" \
	'[[ $rc -eq 0 && $out == "ok loopback:"* ]]'
trc netlink-route
check "allowed: if_nameindex and getifaddrs over NETLINK_ROUTE list lo" \
	'[[ $rc -eq 0 && $out == "ok netlink-route: lo "* ]]'
trc socket 16 3 0
check "allowed: socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)" '[[ $rc -eq 0 ]]'
trc socket 1 5 0
check "allowed: socket(AF_UNIX, SOCK_SEQPACKET)" '[[ $rc -eq 0 ]]'
trc socketpair 1 1
check "allowed: socketpair(AF_UNIX, SOCK_STREAM)" '[[ $rc -eq 0 ]]'

# Refused, one by one: family type protocol and what it is.
while read -r fam type proto what; do
	trc socket "$fam" "$type" "$proto"
	check "refused with EAFNOSUPPORT: $what" \
		'[[ $rc -eq 1 && $out == "fail EAFNOSUPPORT socket $fam $type $proto" ]]'
done <<'EOF'
17 3 0x300 AF_PACKET (SOCK_RAW, ETH_P_ALL)
17 2 0x300 AF_PACKET (SOCK_DGRAM)
0x100000011 3 0x300 AF_PACKET with bit 32 set (the kernel reads the family as 32 bits)
0xffffffff00000011 2 0 AF_PACKET with the upper half all ones
40 1 0 AF_VSOCK
38 5 0 AF_ALG (kernel crypto API)
15 3 2 AF_KEY (PF_KEY v2)
31 3 0 AF_BLUETOOTH
5 2 0 AF_APPLETALK
9 5 0 AF_X25
3 5 0 AF_AX25
21 5 0 AF_RDS
30 5 0 AF_TIPC
29 3 1 AF_CAN
42 2 0 AF_QIPCRTR
44 3 0 AF_XDP
64 1 0 a family number past the last one
16 3 4 AF_NETLINK NETLINK_SOCK_DIAG
16 3 9 AF_NETLINK NETLINK_AUDIT
16 3 16 AF_NETLINK NETLINK_GENERIC
16 2 15 AF_NETLINK NETLINK_KOBJECT_UEVENT
16 3 12 AF_NETLINK NETLINK_NETFILTER
16 3 6 AF_NETLINK NETLINK_XFRM
EOF

trc socketpair 17 2
check "refused with EAFNOSUPPORT: socketpair(AF_PACKET)" \
	'[[ $rc -eq 1 && $out == "fail EAFNOSUPPORT socketpair 17 2" ]]'
trc socketpair 30 5
check "refused with EAFNOSUPPORT: socketpair(AF_TIPC)" \
	'[[ $rc -eq 1 && $out == "fail EAFNOSUPPORT socketpair 30 5" ]]'

# And the sweep: every family 0..63 but the four, four types each; every netlink
# protocol but NETLINK_ROUTE; socketpair of every other family.
trc families
check "sweep: every other family, netlink protocol and socketpair fails with EAFNOSUPPORT" \
	'[[ $rc -eq 0 && $out == "ok families: "* ]]'

done_testing
