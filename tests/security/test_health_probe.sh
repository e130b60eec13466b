#!/usr/bin/env bash
# test_health_probe.sh — issue 10, item 12: tenantd's tcp and http health probes
# enter the tenant's network namespace, where the tenant's service answers (or does
# not). The probe must hold nothing there: no capability in any set, an unprivileged
# uid and gid that no tenant and no host account has, no_new_privs, and no descriptor
# but /dev/null on 0-2 and its one socket.
#
# A tenant's health server accepts the probe's connection and never answers, so the
# probe waits in read(); meanwhile the test finds it (a child of tenantd in the tenant's
# network namespace) and reads its /proc/PID/status and /proc/PID/fd from the host.
# Then tcp and http checks against real servers must still pass.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-probe.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin" "$tmp/manifests"
cp "$payload_bin" "$tmp/bin/payload"
chmod 0755 "$tmp/bin" "$tmp/bin/payload"

manifest() { # NAME EXEC-JSON HEALTH-JSON
	cat >"$tmp/manifests/$1.json" <<-EOF
	{
	  "name": "$1",
	  "exec": $2,
	  "user": "1000:1000",
	  "network": { "mode": "none" },
	  "mounts": [ { "source": "$tmp/bin", "target": "/payload" } ],
	  "health": $3
	}
	EOF
	tenants+=("$1")
}
manifest hp-stall '["/payload/payload", "stall", "8080", "600"]' \
	'{ "http": { "port": 8080, "path": "/" }, "interval": "8s", "timeout": "8s", "start_period": "0s" }'
manifest hp-http '["/usr/bin/python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"]' \
	'{ "http": { "port": 8080, "path": "/" }, "interval": "1s", "timeout": "1s", "start_period": "5s" }'
manifest hp-tcp '["/usr/bin/python3", "-m", "http.server", "8081", "--bind", "127.0.0.1"]' \
	'{ "tcp": 8081, "interval": "1s", "timeout": "1s", "start_period": "5s" }'

start_daemon || bail "tenantd starts"
wait_state hp-stall running 10

# The probe: a child of tenantd whose network namespace is the tenant's.
init=$(json_field hp-stall pid)
netns=$(readlink "/proc/$init/ns/net" 2>/dev/null)
probe=""
for i in $(seq 200); do
	for p in $(pgrep -P "$daemon_pid"); do
		[[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$netns" ]] && probe=$p && break
	done
	[[ -n $probe ]] && grep -q '^State:.*S (sleeping)' "/proc/$probe/status" 2>/dev/null && break
	probe=""
	sleep 0.05
done
status=$(cat "/proc/$probe/status" 2>/dev/null)
fds=$(ls -l "/proc/$probe/fd" 2>/dev/null | awk 'NR > 1 { print $9, $11 }')
out=$(grep -E "^(Uid|Gid|Groups|Cap|NoNewPrivs)" <<<"$status") err="$fds"
check "a probe stalled by the tenant's server is found (child of tenantd in the tenant's netns)" \
	'[[ -n $probe && -n $status ]]'

field() { awk -v k="$1:" '$1 == k { $1 = ""; print substr($0, 2) }' <<<"$status"; }
read -r ruid euid suid fsuid <<<"$(field Uid)"
read -r rgid egid sgid fsgid <<<"$(field Gid)"
check "the probe runs as no host root: every uid is non-zero ($(field Uid))" \
	'[[ -n $ruid && $ruid != 0 && $euid != 0 && $suid != 0 && $fsuid != 0 ]]'
check "... and every gid, with no supplementary group ($(field Gid) / $(field Groups))" \
	'[[ -n $rgid && $rgid != 0 && $egid != 0 && $sgid != 0 && $fsgid != 0 && -z $(field Groups) ]]'
check "... all four ids the same" '[[ $ruid == "$euid" && $ruid == "$suid" && $ruid == "$rgid" ]]'
for set in CapInh CapPrm CapEff CapBnd CapAmb; do
	check "$set of the probe is empty" '[[ $(field $set) == 0000000000000000 ]]'
done
check "the probe has no_new_privs" '[[ $(field NoNewPrivs) == 1 ]]'

# The id belongs to no one: no tenant range (STATE/uidranges), no account, no subuid.
owner=""
while read -r name base; do
	((ruid >= base && ruid < base + 65536)) && owner="tenant $name"
done <"$tmp/state/uidranges"
getent passwd "$ruid" >/dev/null && owner="host user $(getent passwd "$ruid" | cut -d: -f1)"
getent group "$rgid" >/dev/null && owner="host group $(getent group "$rgid" | cut -d: -f1)"
for f in /etc/subuid /etc/subgid; do
	[[ -f $f ]] && while IFS=: read -r u s c; do
		((ruid >= s && ruid < s + c)) && owner="$f entry of $u"
	done <"$f"
done
out="" err="$owner"
check "the probe's uid $ruid belongs to no tenant, account or subordinate range" '[[ -z $owner ]]'

# Nothing inherited: 0-2 on /dev/null and one socket.
others=$(awk '!($1 ~ /^[012]$/ && $2 == "/dev/null") && $2 !~ /^socket:/' <<<"$fds")
sockets=$(grep -c 'socket:' <<<"$fds")
out="$fds" err=""
check "the probe holds /dev/null on 0-2 and its socket, nothing else" \
	'[[ -z $others && $sockets == 1 ]]'

# Probes still work.
for i in $(seq 100); do
	[[ $(json_field hp-http health) == healthy && $(json_field hp-tcp health) == healthy ]] && break
	sleep 0.1
done
check "an http check against a real server passes" '[[ $(json_field hp-http health) == healthy ]]'
check "a tcp check against a real server passes" '[[ $(json_field hp-tcp health) == healthy ]]'
for i in $(seq 120); do [[ $(json_field hp-stall health) == unhealthy ]] && break; sleep 0.1; done
check "the stalled check fails at its timeout" '[[ $(json_field hp-stall health) == unhealthy ]]'

done_testing
