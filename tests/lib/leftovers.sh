#!/usr/bin/env bash
# tests/lib/leftovers.sh — runs one integration or security suite (the command in its
# arguments, under the test lock: tests/run-tests) and then says what of tenantd's the
# suite left on the host: a tenant's link (tnd-N, a veth's host end or a tap; tndi-N,
# a tap's ifb) or a tenant's nftables table (tenantd-NAME) that was not there before
# and is still there a few seconds after. Such a leftover breaks the next suite, not
# this one: a link named for an index refuses the next tenant with that index (CI saw
# "tnd-1 already exists" in a suite that had done nothing wrong). The line it prints,
# "# LEFT BEHIND: ...", is counted by tests/run-tests as a failure of this suite.
# The shared bridge tenantd0 and the tables ip/ip6 tenantd are left alone: tenantd
# makes them once per host and keeps them.
set -u

objects() {
	ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); if ($2 ~ /^tndi?-[0-9]+$/) print "link:" $2 }'
	nft list tables 2>/dev/null | awk '$3 ~ /^tenantd-/ { print "table:" $2 ":" $3 }'
}

before=$(objects | sort)
"$@"
rc=$?
new() { comm -13 <(printf '%s\n' "$before") <(objects | sort) | grep .; }
left=$(new)
# What is being torn down as the suite exits (a killed tenantctl's cleanup) gets a moment.
for _ in $(seq 50); do
	[[ -z $left ]] && break
	sleep 0.1
	left=$(new)
done
[[ -z $left ]] || echo "# LEFT BEHIND: $(tr '\n' ' ' <<<"$left")"
exit "$rc"
