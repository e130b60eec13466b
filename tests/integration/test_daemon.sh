#!/usr/bin/env bash
# tests/integration/test_daemon.sh — tenantd with real sandboxed tenants: 20 tenants
# from a manifest directory, kill -9 of tenantd and adoption of the running tenants,
# backoff into crashloop, a failing health check restarting its tenant, reload, 50
# concurrent commands on one tenant, the socket refusing a non-member (who sees no
# tenant through the user socket), a 100 MB log burst capped, and a full state
# filesystem. Every tenant is network "none".
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-daemon.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT

# manifest NAME EXEC-JSON [EXTRA-JSON-MEMBERS]
manifest() {
	cat >"$tmp/manifests/$1.json" <<-EOF
	{
	  "name": "$1",
	  "exec": $2,
	  "user": "1000:1000",
	  "root": "host-system",
	  "network": { "mode": "none" }${3:+,
	  $3}
	}
	EOF
	tenants+=("$1")
}

ticker='["/bin/sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"]'
mkdir -p "$tmp/manifests"
for i in $(seq -w 1 20); do
	manifest "dt-t$i" "$ticker" '"pids": { "max": 32 }, "memory": { "max": "64M" }'
done
start_daemon --pidfile "$tmp/tenantd.pid" || bail "tenantd starts"
check "--pidfile PATH: tenantd writes its pid there once it serves" \
	'[[ -f $tmp/tenantd.pid && $(cat "$tmp/tenantd.pid") == "$daemon_pid" ]]'

# ---- 20 tenants ----
running() { "$ctl" --json list | python3 -c 'import json,sys; print(sum(t["state"] == "running" for t in json.load(sys.stdin)))'; }
for i in $(seq 100); do [[ $(running) == 20 ]] && break; sleep 0.1; done
check "20 tenants from the manifest directory are running" '[[ $(running) == 20 ]]'
pids_before=$("$ctl" --json list | python3 -c 'import json,sys; print(" ".join("%s=%s" % (t["name"], t["pid"]) for t in json.load(sys.stdin)))')
out=$("$ctl" list)
check "list shows a table with every tenant" '[[ $(grep -c "^dt-t.. *sandbox *running" <<<"$out") == 20 ]]'
out=$("$ctl" --json list)
check "list --json has name, isolation, state and pid" \
	'python3 -c "import json,sys; t=json.loads(sys.argv[1])[0]; assert {\"name\",\"isolation\",\"state\",\"pid\"} <= set(t)" "$out"'
out2=$("$ctl" list --json)
names() { python3 -c "import json,sys; print(sorted(t[\"name\"] for t in json.loads(sys.argv[1])))" "$1"; }
check "list --json (the option after the verb) prints the same tenants" \
	'[[ -n $out2 && $(names "$out2") == "$(names "$out")" ]]'

# ---- kill -9 tenantd: tenants survive, the next tenantd adopts them ----
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
alive=0
for kv in $pids_before; do kill -0 "${kv#*=}" 2>/dev/null && alive=$((alive + 1)); done
check "after kill -9 of tenantd all 20 tenants still run" '[[ $alive == 20 ]]'
sleep 0.5
start_daemon --pidfile "$tmp/tenantd.pid"
check "the next tenantd writes its own pid into the pid file" '[[ $(cat "$tmp/tenantd.pid") == "$daemon_pid" ]]'
pids_after=$("$ctl" --json list | python3 -c 'import json,sys; print(" ".join("%s=%s" % (t["name"], t["pid"]) for t in json.load(sys.stdin)))')
check "the restarted tenantd lists all 20 running with the same pids" '[[ "$pids_after" == "$pids_before" && $(running) == 20 ]]'
out=$("$ctl" events -n 100)
check "each was adopted, none restarted" '[[ $(grep -c "event=adopted" <<<"$out") == 20 && $(grep -c "event=started" <<<"$out") == 0 ]]'
before=$(grep -c tick "$tmp/state/logs/dt-t01.log")
sleep 1
after=$(grep -c tick "$tmp/state/logs/dt-t01.log")
check "logging went on through the daemon's restart" '[[ $after -gt $before ]]'
out=$(timeout 5 "$ctl" logs -f -n 1 dt-t02 | head -4)
check "logs --follow streams new output after adoption" '[[ $(grep -c "^tick" <<<"$out") -ge 3 ]]'
out=$("$ctl" exec dt-t03 -- /bin/sh -c 'id -u; hostname')
expected=$'1000\ndt-t03'
check "exec runs inside an adopted tenant as the service's user" '[[ $out == "$expected" ]]'
out=$("$ctl" exec dt-t03 /bin/echo --json -n)
check "exec NAME CMD ARGS without --: options after CMD are the command's" '[[ $out == "--json -n" ]]'
# The command's process limit is the service's: where the pids cgroup holds the tenant
# (pids.max 32) no RLIMIT_NPROC is set at the manifest's value, so that the cgroup
# refuses, and counts, the 33rd fork.
svc_nproc=$(awk '/^Max processes/ { print $3 }' "/proc/$(pgrep -P "$(json_field dt-t03 pid)" | head -1)/limits")
out=$("$ctl" exec dt-t03 -- /bin/sh -c 'awk "/^Max processes/ { print \$3 }" /proc/self/limits')
# (On a host without the pids controller both are 32, the only bound there.)
have_pids=no
for d in $(cg_paths dt-t03); do [[ -f $d/pids.max ]] && have_pids=yes; done
check "exec: the command's RLIMIT_NPROC is the service's ($out and ${svc_nproc:-none}; pids cgroup: $have_pids)" \
	'[[ -n $out && $out == "$svc_nproc" && ($have_pids == yes && $out != 32 || $have_pids == no && $out == 32) ]]'
out=$("$ctl" exec dt-t03 -- /bin/sh -c $'echo one\n\techo two')
expected=$'one\ntwo'
check "exec arguments may hold newline and tab (an sh -c script)" '[[ $out == "$expected" ]]'

# ---- stop and start all twenty ----
names=$(printf 'dt-t%s ' $(seq -w 1 20))
# shellcheck disable=SC2086 # one argument per tenant name ([a-z0-9-], no blanks)
"$ctl" stop $names >/dev/null
gone=0
for kv in $pids_after; do kill -0 "${kv#*=}" 2>/dev/null || gone=$((gone + 1)); done
check "stop of 20 tenants returns once all are gone" '[[ $gone == 20 ]]'
check "and their cgroups are removed" 'cgroups_gone dt-t01 && cgroups_gone dt-t20'
rm -f "$tmp"/manifests/dt-t*.json

# ---- crash, backoff, crashloop ----
manifest dt-crash '["/bin/sh", "-c", "echo crashing; exit 3"]' '"restart": { "on": "on-failure", "backoff": "100ms..400ms", "burst": 3 }'
"$ctl" reload >/dev/null
wait_state dt-crash crashloop 15
check "a crashing service backs off and ends in crashloop" '[[ $(json_field dt-crash state) == crashloop ]]'
out=$("$ctl" events -n 200)
check "with backoff delays doubling: 100, 200, 400 ms" \
	'grep -q "tenant=dt-crash delay=100ms" <<<"$out" && grep -q "tenant=dt-crash delay=200ms" <<<"$out" && grep -q "tenant=dt-crash delay=400ms" <<<"$out"'
check "and a crashloop event" 'grep -q "event=crashloop tenant=dt-crash" <<<"$out"'
sleep 1
check "crashloop stays until an operator acts" '[[ $(json_field dt-crash state) == crashloop ]]'
out=$("$ctl" status dt-crash)
check "status shows the last exit status" 'grep -q "last exit: *status 3" <<<"$out"'
out=$("$ctl" stop dt-crash)
check "stop takes a crashlooping tenant out of crashloop" '[[ $(json_field dt-crash state) == stopped ]]'

# ---- health checks ----
manifest dt-sick "$ticker" '"health": { "tcp": 8080, "interval": "1s", "timeout": "1s", "retries": 2, "start_period": "0s" }'
manifest dt-well '["/usr/bin/python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"]' '"health": { "http": { "port": 8080, "path": "/" }, "interval": "1s", "timeout": "1s", "retries": 2, "start_period": "3s" }'
"$ctl" reload >/dev/null
wait_state dt-sick running 5
sick_pid=$(json_field dt-sick pid)
for i in $(seq 60); do
	[[ $(json_field dt-sick restarts) -ge 1 && -n $(json_field dt-sick pid) && $(json_field dt-sick pid) != "$sick_pid" ]] && break
	sleep 0.1
done
check "a failing health check restarts its tenant (new pid)" '[[ $(json_field dt-sick restarts) -ge 1 && $(json_field dt-sick pid) != "$sick_pid" ]]'
check "with an unhealthy event" '"$ctl" events -n 300 | grep -q "event=unhealthy tenant=dt-sick action=restart"'
for i in $(seq 80); do [[ $(json_field dt-well health) == healthy ]] && break; sleep 0.1; done
check "an http health check passes against a real server" '[[ $(json_field dt-well health) == healthy && $(json_field dt-well restarts) == 0 ]]'
"$ctl" stop dt-sick dt-well >/dev/null

# ---- reload: add, change, remove; an invalid file leaves its tenant alone ----
manifest dt-keep "$ticker"
manifest dt-change "$ticker"
manifest dt-drop "$ticker"
rm -f "$tmp/manifests/dt-crash.json" "$tmp/manifests/dt-sick.json" "$tmp/manifests/dt-well.json"
"$ctl" reload >/dev/null
wait_state dt-drop running 5
keep_pid=$(json_field dt-keep pid) change_pid=$(json_field dt-change pid) drop_pid=$(json_field dt-drop pid)
manifest dt-change '["/bin/sh", "-c", "echo changed; while :; do sleep 1; done"]'
rm -f "$tmp/manifests/dt-drop.json"
manifest dt-new "$ticker"
echo '{ "name": "dt-keep", "exec": ["/bin/true"], "cpu": { "max": "lots" } }' >"$tmp/manifests/dt-keep.json"
out=$("$ctl" reload)
check "reload reports what it did" 'grep -q "1 added, 1 changed, 1 removed, 0 unchanged, 1 invalid" <<<"$out"'
wait_state dt-new running 5
wait_state dt-change running 5
for i in $(seq 50); do [[ -z $(json_field dt-drop state) ]] && break; sleep 0.1; done
check "reload started the new tenant" '[[ $(json_field dt-new state) == running ]]'
check "reload restarted the changed one (new pid, new command)" \
	'[[ $(json_field dt-change pid) != "$change_pid" ]] && grep -q "^changed" "$tmp/state/logs/dt-change.log"'
check "reload stopped and forgot the removed one" '[[ -z $(json_field dt-drop state) ]] && ! kill -0 $drop_pid 2>/dev/null'
check "the tenant whose file became invalid runs on, untouched" '[[ $(json_field dt-keep pid) == "$keep_pid" ]]'
check "and its status says the manifest is invalid, with the position" \
	'"$ctl" status dt-keep | grep -q "dt-keep.json:1:.*cpu.max"'
check "the invalid manifest is an event" '"$ctl" events -n 50 | grep -q "event=manifest-invalid file=$tmp/manifests/dt-keep.json"'
manifest dt-keep "$ticker"
"$ctl" stop dt-keep dt-change dt-new >/dev/null
rm -f "$tmp/manifests/dt-change.json" "$tmp/manifests/dt-new.json"
"$ctl" reload >/dev/null

# ---- SIGHUP reloads too ----
manifest dt-hup "$ticker"
kill -HUP "$daemon_pid"
wait_state dt-hup running 5
check "SIGHUP re-reads the manifest directory" '[[ $(json_field dt-hup state) == running ]]'
"$ctl" stop dt-hup >/dev/null
rm -f "$tmp/manifests/dt-hup.json"
kill -HUP "$daemon_pid"

# ---- 50 concurrent commands on one tenant ----
"$ctl" start dt-keep >/dev/null
verbs=(start stop restart status start stop)
pids=()
for i in $(seq 50); do
	v=${verbs[$((i % ${#verbs[@]}))]}
	"$ctl" "$v" dt-keep >"$tmp/conc.$i.out" 2>&1 &
	pids+=($!)
done
busy=0 bad=0
for p in "${pids[@]}"; do wait "$p"; done
for i in $(seq 50); do
	grep -q "busy" "$tmp/conc.$i.out" && busy=$((busy + 1))
	grep -qiE "internal|closed the connection|cannot read" "$tmp/conc.$i.out" && bad=$((bad + 1))
done
for i in $(seq 100); do
	s=$(json_field dt-keep state)
	[[ $s == running || $s == stopped ]] && break
	sleep 0.1
done
s=$(json_field dt-keep state) p=$(json_field dt-keep pid)
consistent=no
if [[ $s == running ]] && kill -0 "$p" 2>/dev/null; then consistent=yes; fi
if [[ $s == stopped && -z $p ]] && cgroups_gone dt-keep; then consistent=yes; fi
check "50 concurrent commands end in a consistent state ($s, $busy refused as busy)" \
	'[[ $consistent == yes && $bad == 0 ]]'
keepers=$(pgrep -c -P "$daemon_pid" || true)
check "no keeper or zombie is left over (children of tenantd: $keepers)" \
	'[[ ($s == running && $keepers == 1) || ($s == stopped && $keepers == 0) ]]'
"$ctl" stop dt-keep >/dev/null

# ---- the socket: a user outside the group is refused ----
if command -v setpriv >/dev/null; then
	# TENANTD_USER_SOCKET=none: no fallback to the user socket (issue 16), so what the
	# control socket itself does to a non-member shows.
	out=$(TENANTD_USER_SOCKET=none setpriv --reuid=65533 --regid=65533 --clear-groups "$ctl" list 2>&1)
	rc=$?
	check "a non-member cannot open the socket (mode 0660) and is told why" \
		'[[ $rc == 1 ]] && grep -q "permission denied" <<<"$out"'
	out=$(setpriv --reuid=65533 --regid=65533 --clear-groups "$ctl" --json list 2>&1)
	rc=$?
	check "through the user socket a non-member no access section names sees no tenant" \
		'[[ $rc == 0 && $(tr -d " \n" <<<"$out") == "[]" ]]'
	chmod 0666 "$TENANTD_SOCKET"
	out=$(setpriv --reuid=65533 --regid=65533 --clear-groups "$ctl" list 2>&1)
	rc=$?
	check "with the socket's mode opened by mistake, tenantd itself refuses the peer" \
		'[[ $rc == 1 ]] && grep -q "uid 65533 is neither root nor in group root" <<<"$out"'
	chmod 0660 "$TENANTD_SOCKET"
else
	skip "setpriv (util-linux) missing: the refusal of a non-member NOT TESTED"
	skip "setpriv (util-linux) missing: tenantd's own peer check NOT TESTED"
fi
out=$(printf '%070000d\n{"v":1,"op":"list"}\n' 0 | timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.makefile().readline().strip())' "$TENANTD_SOCKET")
check "an overlong request line is refused, not buffered" 'grep -q "request too long" <<<"$out"'
out=$(printf '{"v":1,"op":"list","x":[[[[[[[[[[1]]]]]]]]]]}\n{"v":2,"op":"list"}\n' | timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
f = s.makefile(); print(f.readline().strip()); print(f.readline().strip())' "$TENANTD_SOCKET")
check "too deep and wrong-version requests get errors, and the connection goes on" \
	'grep -q "deep" <<<"$out" && grep -q "protocol version 2 is not supported" <<<"$out"'

# raw REQUESTS...: sends them in one write, prints the reply lines (SHUT_WR after
# sending when RAW_HALF_CLOSE is set)
raw() {
	timeout 10 python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["TENANTD_SOCKET"])
s.sendall("".join(a + "\n" for a in sys.argv[2:]).encode())
if os.environ.get("RAW_HALF_CLOSE"): s.shutdown(socket.SHUT_WR)
f = s.makefile()
for _ in range(int(sys.argv[1])): print(f.readline().strip())' "$@"
}
"$ctl" start dt-keep >/dev/null
out=$(raw 2 '{"v":1,"op":"restart","name":"dt-keep"}' '{"v":1,"op":"version"}')
check "two requests in one write get both replies, in order" \
	'[[ $(sed -n 1p <<<"$out") == *'"'"'"ok":true'"'"'* && $(sed -n 2p <<<"$out") == *tenantd* ]]'
out=$(RAW_HALF_CLOSE=1 raw 1 '{"v":1,"op":"stop","name":"dt-keep"}')
check "a client that half-closes after its request still gets the reply" '[[ $out == *'"'"'"ok":true'"'"'* ]]'
out=$(raw 1 '{"v":1,"op":"stop","name":"dt-keep","timeout_ms":"5"}')
check "a wrongly typed member is refused, not ignored" 'grep -q "timeout_ms.*must be an integer" <<<"$out"'
"$ctl" start dt-keep >/dev/null
"$ctl" exec dt-keep -- $'/x\ntime=2026-01-01T00:00:00Z event=crashloop tenant=dt-keep forged=yes' >/dev/null 2>&1
out=$("$ctl" events -n 5)
check "an exec command cannot forge an event line" '! grep -q "^time=2026-01-01" <<<"$out" && grep -q "command=\"/x" <<<"$out"'
"$ctl" stop dt-keep >/dev/null

manifest dt-nocmd '["/nonexistent/service"]' '"restart": { "on": "on-failure", "backoff": "100ms..200ms", "burst": 1 }'
"$ctl" reload >/dev/null
wait_state dt-nocmd crashloop 10
out=$("$ctl" status dt-nocmd)
check "a service that cannot be executed: status says why (and last status 127)" \
	'grep -q "start failed: .*cannot execute /nonexistent/service" <<<"$out" && grep -q "status 127" <<<"$out"'
check "and no event claims the keeper died" '! "$ctl" events -n 50 | grep -q "event=lost tenant=dt-nocmd"'
"$ctl" stop dt-nocmd >/dev/null
rm -f "$tmp/manifests/dt-nocmd.json"

manifest dt-once '["/bin/sh", "-c", "sleep 1.5; exit 0"]' '"restart": { "on": "no" }'
"$ctl" reload >/dev/null
wait_state dt-once running 5
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
sleep 2.5
start_daemon
check "a tenant that exited while tenantd was down is not restarted against restart.on \"no\"" \
	'[[ $(json_field dt-once state) == exited && $(json_field dt-once last_status) == 0 ]]'
rm -f "$tmp/manifests/dt-once.json"
"$ctl" reload >/dev/null

# ---- a 100 MB log burst ----
manifest dt-loud '["/bin/sh", "-c", "head -c 100000000 /dev/zero | tr \"\\\\000\" x; sleep 3; echo; echo done-burst; sleep 1000"]' '"logs": { "max_size": "1M", "keep": 2, "rate": "256K/s" }'
"$ctl" reload >/dev/null
t0=$(date +%s%N)
for i in $(seq 300); do grep -qs done-burst "$tmp"/state/logs/dt-loud.log* && break; sleep 0.1; done
t1=$(date +%s%N)
check "output after the burst reaches the log again" 'grep -qs done-burst "$tmp"/state/logs/dt-loud.log*'
lat=$( { time -p "$ctl" list >/dev/null; } 2>&1 | awk '/real/ { print $2 }')
total=$(cat "$tmp"/state/logs/dt-loud.log* | wc -c)
check "a 100 MB burst leaves at most max_size x (keep+1) on disk ($total bytes)" '[[ $total -le $((3 * 1048576 + 4096)) ]]'
check "the log says how much was dropped" 'grep -qs "bytes of output dropped" "$tmp"/state/logs/dt-loud.log*'
check "the tenant was not blocked by its own output ($(((t1 - t0) / 1000000)) ms incl. 3 s of sleep)" '[[ $(((t1 - t0) / 1000000)) -lt 15000 ]]'
check "tenantd answered at once during the burst (${lat}s)" 'awk -v l="$lat" "BEGIN { exit !(l < 1.0) }"'
"$ctl" stop dt-loud >/dev/null

# ---- the configuration file ----
printf 'state = %s\n# a comment\nsample-intervall = 2s\n' "$tmp/state" >"$tmp/bad.conf"
out=$("$TENANTD" --config "$tmp/bad.conf" --foreground 2>&1)
rc=$?
check "a configuration file with an unknown key is refused with file and line (exit 2)" \
	'[[ $rc == 2 ]] && grep -q "bad.conf:3: unknown key \"sample-intervall\"" <<<"$out"'

# ---- a full state filesystem ----
daemon_cleanup
mkdir -p "$tmp/small"
cat >"$tmp/full.sh" <<-'EOF'
	set -u
	mount -t tmpfs -o size=512k tmpfs "$1/small"
	mkdir -p "$1/small/state"
	exec "$2" --foreground --manifests "$1/manifests" --state "$1/small/state" --socket "$1/control.sock" --group root >>"$1/tenantd.log" 2>&1
EOF
unshare -m --propagation private bash "$tmp/full.sh" "$tmp" "$TENANTD" &
daemon_pid=$!
for i in $(seq 100); do "$ctl" list >/dev/null 2>&1 && break; sleep 0.05; done
tmpfs_state() { nsenter -t "$daemon_pid" -m cat "$tmp/small/state/tenants/dt-keep/state.json" 2>/dev/null; }
wait_state dt-keep running 5
"$ctl" stop dt-keep >/dev/null
saved=$(tmpfs_state)
# Filled to the last page: one big file, then small ones until none fits.
nsenter -t "$daemon_pid" -m sh -c "cat /dev/zero > $tmp/small/filler 2>/dev/null; i=0; while echo x > $tmp/small/f\$i 2>/dev/null; do i=\$((i+1)); done"
out=$("$ctl" start dt-keep 2>&1)
rc=$?
now=$(tmpfs_state)
check "on a full state filesystem a start fails with the reason" '[[ $rc == 1 ]] && grep -q "No space left" <<<"$out"'
check "the previous state file is intact" '[[ -n $saved && "$now" == "$saved" ]]'
check "and tenantd runs on and answers" 'kill -0 $daemon_pid && "$ctl" list >/dev/null'
check "the failure to save is logged with the reason" 'grep -q "cannot save its state.*No space left" "$tmp/tenantd.log"'
nsenter -t "$daemon_pid" -m sh -c "rm -f $tmp/small/filler $tmp/small/f*"

done_testing
