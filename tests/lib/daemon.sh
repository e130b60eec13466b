# shellcheck shell=bash disable=SC2154 # $tmp, $ctl, tenants=(), bg=() ... are the sourcing script's
# tests/lib/daemon.sh — starting a private tenantd for a test: its own manifest
# directory, state directory and socket under $tmp, stopped (with every tenant it
# started) by daemon_cleanup. Sourced after tests/lib/sandbox.sh.

TENANTD=${TENANTD:-$BUILD/tenantd}
daemon_pid=""

# start_daemon [EXTRA OPTIONS...]: tenantd in the foreground, in the background, its
# output in $tmp/tenantd.log; waits until the socket answers.
start_daemon() {
	export TENANTD_SOCKET=$tmp/control.sock
	mkdir -p "$tmp/manifests" "$tmp/state"
	"$TENANTD" --foreground --manifests "$tmp/manifests" --state "$tmp/state" \
		--socket "$TENANTD_SOCKET" --group "${daemon_group:-root}" "$@" >>"$tmp/tenantd.log" 2>&1 &
	daemon_pid=$!
	local i
	# Up to 30 s: an ASan build on a loaded 2-core machine once took over 10.
	for i in $(seq 600); do
		"$ctl" list >/dev/null 2>&1 && return 0
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "# tenantd did not come up:" && sed 's/^/#   /' "$tmp/tenantd.log" | tail -20
	return 1
}

# The keepers of every tenant the state directory records as running, if they are
# still those processes (start time checked: a pid may have been reused).
recorded_pids() {
	local f
	for f in "$tmp"/state/tenants/*/run.json; do
		[[ -f $f ]] && python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
try:
    st = open("/proc/%d/stat" % r["keeper_pid"]).read()
    if int(st.rsplit(")", 1)[1].split()[19]) == r["keeper_start"]:
        print(r["keeper_pid"])
except OSError:
    pass' "$f"
	done
}

# json_field NAME FIELD: a field of one tenant in `list --json` ("" when absent)
json_field() {
	"$ctl" --json list 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["name"] == sys.argv[1]:
        v = t.get(sys.argv[2])
        print("" if v is None else v)' "$1" "$2"
}

# wait_state NAME STATE [SECONDS]
wait_state() {
	local i
	for i in $(seq $((${3:-10} * 20))); do
		[[ $(json_field "$1" state) == "$2" ]] && return 0
		sleep 0.05
	done
	echo "# $1 is $(json_field "$1" state), not $2"
	return 1
}

# Stops every tenant, then tenantd; kills (by recorded pid) keepers a failed test left.
daemon_cleanup() {
	local names k i
	if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		names=$("$ctl" --json list 2>/dev/null | python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))' 2>/dev/null)
		# shellcheck disable=SC2086 # one argument per tenant name (no blanks in names)
		[[ -n $names ]] && timeout 30 "$ctl" stop --timeout 2s $names >/dev/null 2>&1
		kill -TERM "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	for k in $(recorded_pids); do
		kill -KILL "$k" 2>/dev/null
	done
	for i in $(seq 20); do
		[[ -z $(recorded_pids) ]] && break
		sleep 0.1
	done
}
