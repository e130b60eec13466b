# shellcheck shell=bash disable=SC2154 # $tmp, $ctl, tenants=(), bg=() ... are the sourcing script's
# tests/lib/sandbox.sh — what the shell tests that start real sandboxes share: the
# tenantctl and payload to use, TAP output (tests/lib/tap.sh), the loud skip when the
# machine cannot run sandboxes, and finding, purging and checking a tenant's cgroups. Sourced, not run;
# the caller sets $tmp (its temporary directory) and fills tenants=() and bg=() as it
# goes.

ctl=${TENANTCTL:?TENANTCTL is not set (run through tests/run-tests)}
BUILD=${BUILD:-build}
payload_bin=$BUILD/tests/payload
export TENANTD_POLICY_DIR=${TENANTD_POLICY_DIR:-$PWD/policies}

# shellcheck source=tests/lib/tap.sh
source "${BASH_SOURCE[0]%/*}/tap.sh"

# Skips the whole script, loudly, when this machine cannot run sandboxes; fails when
# the payload (built by make check) is missing.
require_sandbox() {
	set -- "$payload_bin"
	[[ $(id -u) -eq 0 ]] ||
		skip_all "NOT ROOT: tenantctl run needs root (namespaces, cgroups); nothing was tested"
	unshare --user --map-root-user true 2>/dev/null ||
		skip_all "USER NAMESPACES UNAVAILABLE (unshare --user failed): the sandbox cannot run here; nothing was tested"
	grep -qE ' - cgroup2? ' /proc/self/mountinfo ||
		skip_all "NO CGROUP HIERARCHY MOUNTED: tenant quotas cannot be created; nothing was tested"
	require_built "$1"
}

# The cgroup directories a tenant NAME gets (see supervisor/host/cgroup.c): OWN/tenantd/NAME
# in each hierarchy holding cpu, cpuacct, memory, pids or blkio, and in the v2 hierarchy.
cg_paths() {
	local c mnt own
	for c in cpu cpuacct memory pids blkio; do
		mnt=$(awk -v c="$c" '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
			if ($(i + 1) != "cgroup") next; k = split($(i + 3), o, ",");
			for (j = 1; j <= k; j++) if (o[j] == c) { print $5; exit } }' /proc/self/mountinfo)
		own=$(awk -F: -v c="$c" '{ k = split($2, o, ","); for (j = 1; j <= k; j++)
			if (o[j] == c) { print $3; exit } }' /proc/self/cgroup)
		[[ -n $mnt && -n $own ]] && echo "$mnt${own%/}/tenantd/$1"
	done
	mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
		if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
	own=$(sed -n 's/^0:://p' /proc/self/cgroup)
	[[ -n $mnt ]] && echo "$mnt${own%/}/tenantd/$1"
}

# Kills whatever is left in a tenant's cgroups and removes them.
cg_purge() {
	local d p i
	for d in $(cg_paths "$1"); do
		for i in $(seq 50); do
			[[ -d $d ]] || break
			# shellcheck disable=SC2013 # cgroup.procs holds one pid per line: words
			for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
			rmdir "$d" 2>/dev/null && break
			sleep 0.1
		done
	done
}

# cgroups_gone NAME: true when no cgroup of the tenant is left
cgroups_gone() {
	local d
	for d in $(cg_paths "$1"); do
		[[ -d $d ]] && { echo "# left: $d"; return 1; }
	done
	return 0
}

# IPv6 forwarding as the host had it before this script: a private tenant with IPv6
# turns it on, and first sets accept_ra 2 on every interface that had 1 (net.c,
# ipv6_forwarding, keeps SLAAC working). tenantd leaves both on when it exits, since its
# tenants outlive it; a test leaves the host as it found it (sandbox_cleanup).
v6_forward_before=$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null)
v6_accept_ra1=()
if [[ $v6_forward_before == 0 ]]; then
	for f in /proc/sys/net/ipv6/conf/*/accept_ra; do
		[[ $f == */all/* || $(cat "$f" 2>/dev/null) != 1 ]] || v6_accept_ra1+=("$f")
	done
fi
v6_sysctl_restore() {
	local f
	[[ $v6_forward_before == 0 ]] || return 0
	echo 0 >/proc/sys/net/ipv6/conf/all/forwarding
	for f in "${v6_accept_ra1[@]}"; do
		[[ $(cat "$f" 2>/dev/null) == 2 ]] && echo 1 >"$f"
	done
	return 0
}

# The bridge's address in the ULA /64 of each state directory under $tmp (tenantd draws
# a new ULA /48 for a new state directory, STATE/ula-prefix, and puts PREFIX::1/64 on
# the shared bridge tenantd0; nothing else removes it): removed from the bridge, so that
# suites do not leave one address each behind.
ula_cleanup() {
	local f a
	[[ -n ${tmp:-} && -d $tmp ]] || return 0
	while IFS= read -r f; do
		a=$(python3 -c '
import ipaddress, sys
n = ipaddress.ip_network(open(sys.argv[1]).read(64).strip())
if n.prefixlen == 48 and n.subnet_of(ipaddress.ip_network("fd00::/8")):
    print(n.network_address + 1)' "$f" 2>/dev/null) || continue
		[[ -n $a ]] && ip -6 addr del "$a/64" dev tenantd0 2>/dev/null
	done < <(find "$tmp" -maxdepth 5 -name ula-prefix -type f 2>/dev/null)
	return 0
}

# The EXIT trap: background processes, tenants' cgroups, mounts under $tmp, $tmp, the
# host's IPv6 forwarding and accept_ra.
sandbox_cleanup() {
	local p t m
	for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${bg[@]}"; do wait "$p" 2>/dev/null; done
	for t in "${tenants[@]}"; do cg_purge "$t"; done
	ula_cleanup
	# Deepest first; then refuse to rm -rf across a mount that would not go.
	# shellcheck disable=SC2013 # mount points under $tmp, which the test named without blanks
	for m in $(awk -v t="$tmp" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	if awk -v t="$tmp" 'index($5, t) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		echo "# NOT removing $tmp: something is still mounted under it" >&2
	else
		rm -rf "$tmp"
	fi
	v6_sysctl_restore
}

# find_service CTLPID: sets init_pid and svc_pid (host pids) once the tenant started by
# the tenantctl with pid CTLPID runs /payload/payload as its service
find_service() {
	local i
	init_pid="" svc_pid=""
	for i in $(seq 200); do
		init_pid=$(pgrep -P "$1" | head -1)
		[[ -n $init_pid ]] && svc_pid=$(pgrep -P "$init_pid" | head -1)
		if [[ -n $svc_pid ]] && tr '\0' ' ' <"/proc/$svc_pid/cmdline" 2>/dev/null | grep -q '^/payload/payload '; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}
