#!/usr/bin/env bash
# tests/integration/test_daemon_quota.sh — the monitor inside tenantd, with real
# sandboxed tenants and a private rsyslogd receiving the alerts: usage in top and
# status, a CPU rule raised and cleared (the syslog lines parsed), an OOM kill and a
# crashloop alerted at once, live changes with `tenantctl set` (and --save writing
# the manifest back with its comments, without a restart on reload).
#
# Both backends (issue 12): dq-burn's manifest, with only "isolation" and the name
# changed, runs as the microVM dq-burn-vm, and its usage in status and top, the CPU
# alert raised and cleared in syslog and the live cpu.max are checked the same way
# (QEMU runs in the tenant's cgroups). The OOM kill and the pids.max hit run in a
# microVM too, counted by the guest's kernel and reported by the agent, and a tenantd
# restarted in between does not count the guest's earlier kills again. A fork bomb held
# at pids.max, from one manifest for both backends, is alerted while the tenant still
# runs. The microVM half skips loudly without libvirt, QEMU or make vm-image.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/rsyslog.sh
source tests/lib/libvirt.sh
require_sandbox
require_built "$TENANTD"
command -v rsyslogd >/dev/null ||
	skip_all "RSYSLOGD MISSING (apt-get install rsyslog, or make test-deps): alerts to syslog not tested"

tmp=$(mktemp -d /tmp/tenantd-dquota.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	local t
	daemon_cleanup
	for t in "${tenants[@]}"; do vm_domain_purge "$t"; done
	libvirt_release
	rsyslog_stop
	sandbox_cleanup
}
trap cleanup EXIT
rsyslog_start "$tmp/syslog" || bail "a private rsyslogd starts"

vm_why=""
vmdir=$PWD/$BUILD/vm
vm_probe

mkdir -p "$tmp/manifests"
cp "$payload_bin" "$tmp/payload"
cat >"$tmp/manifests/dq-burn.json" <<EOF
// A busy loop held to half a CPU.
{
  "name": "dq-burn",
  "exec": ["/bin/sh", "-c", "while :; do :; done"],
  "user": "1000:1000",
  "root": "host-system",
  "cpu": { "max": 0.5 },     /* half a CPU */
  "network": { "mode": "none" },
  "alerts": { "cpu": "80% for 2s clear 50%" }
}
EOF
cat >"$tmp/manifests/dq-hog.json" <<EOF
{
  "name": "dq-hog",
  "exec": ["/payload/payload", "memhog", "200"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/payload", "target": "/payload/payload", "mode": "ro" } ],
  "memory": { "max": "32M", "swap": "0" },
  "network": { "mode": "none" },
  "restart": { "on": "no" }
}
EOF
tenants+=(dq-burn dq-hog)
if [[ -z $vm_why ]]; then
	sed -e 's/"name": "dq-burn"/"name": "dq-burn-vm", "isolation": "microvm"/' \
		"$tmp/manifests/dq-burn.json" >"$tmp/manifests/dq-burn-vm.json"
	tenants+=(dq-burn-vm)
fi
start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test
wait_state dq-burn running 5

# usage: the CPU the tenant gets, as tenantd measures it
usage() { "$ctl" --json status "$1" | python3 -c 'import json,sys; u=json.load(sys.stdin).get("usage") or {}; print(u.get(sys.argv[1], ""))' "$2"; }
# The kernel's own setting (usage itself depends on how busy the machine is).
cpu_quota() {
	local d
	for d in $(cg_paths "$1"); do
		[[ -f $d/cpu.cfs_quota_us ]] && { cat "$d/cpu.cfs_quota_us"; return; }
		[[ -f $d/cpu.max ]] && { cut -d' ' -f1 "$d/cpu.max"; return; }
	done
}

# cpu_cases NAME LABEL: usage, top, the CPU rule raised and cleared by a live set, for
# one tenant of dq-burn's manifest
cpu_cases() {
	local t=$1 l=$2 cpu out line i
	sleep 4
	cpu=$(usage "$t" cpu)
	check "$l: status reports the tenant's CPU use: ~0.5 under cpu.max 0.5 ($cpu)" \
		'awk -v c="$cpu" "BEGIN { exit !(c > 0.42 && c < 0.55) }"'
	out=$("$ctl" top --once)
	check "$l: top shows cpu, limit, memory and pids" \
		'grep -qE "^$t +running +[0-9]+% +0.50 +[0-9.]+[KMG]?/[0-9.]+[KMG] +[0-9]+/[0-9]+" <<<"$out"'

	# ---- the CPU rule: raised after 2 s at >= 80% of 0.5 CPU, in syslog ----
	for i in $(seq 60); do grep -q "alert=raised tenant=$t quota=cpu" "$rsyslog_out" && break; sleep 0.1; done
	line=$(grep -m1 "alert=raised tenant=$t quota=cpu" "$rsyslog_out")
	kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	check "$l: rsyslogd received the raised alert at priority warning from tenantd-test" \
		'[[ $line == "daemon.warning tenantd-test["*"]: alert=raised tenant=$t quota=cpu "* ]]'
	check "$l: the line carries usage, limit and for (usage=$(kv usage) limit=$(kv limit) for=$(kv for))" \
		'awk -v u="$(kv usage)" -v l="$(kv limit)" "BEGIN { exit !(u >= 0.8 && u <= 1.1 && l == 0.5) }" && [[ $(kv for) =~ ^[0-9]+(\.[0-9]+)?s$ ]]'
	check "$l: the alert is in the event stream too" '"$ctl" events -n 100 | grep -q "event=alert alert=raised tenant=$t quota=cpu"'

	# ---- live change: cpu.max 3 makes usage (one busy CPU) fall below 50% of the
	# limit: cleared ----
	out=$("$ctl" set "$t" cpu.max=3)
	check "$l: set applies a live change and says it is not saved" 'grep -q "applied; not saved" <<<"$out"'
	for i in $(seq 80); do grep -q "alert=cleared tenant=$t quota=cpu" "$rsyslog_out" && break; sleep 0.1; done
	line=$(grep -m1 "alert=cleared tenant=$t quota=cpu" "$rsyslog_out")
	check "$l: the cleared alert arrives at priority notice" \
		'[[ $line == "daemon.notice tenantd-test["*"]: alert=cleared tenant=$t quota=cpu "* ]]'
	check "$l: the tenant's cgroup now allows 3 CPUs ($(cpu_quota "$t") us per 100 ms)" '[[ $(cpu_quota "$t") == 300000 ]]'
}
cpu_cases dq-burn sandbox
check "the manifest file is untouched without --save" 'grep -q "\"max\": 0.5 " "$tmp/manifests/dq-burn.json"'
out=$("$ctl" set dq-burn cpu.max=lots 2>&1)
rc=$?
check "a bad value is refused with the key and what is accepted (exit 2)" \
	'[[ $rc == 2 ]] && grep -q "cpu.max" <<<"$out"'
out=$("$ctl" set dq-burn disk.max=1G 2>&1)
check "an unknown key is refused, listing the keys" 'grep -q "cannot be set; the keys are" <<<"$out"'
pid=$(json_field dq-burn pid)
out=$("$ctl" set --save dq-burn cpu.max=0.25 pids.max=50)
check "set --save applies and saves" 'grep -q "applied and saved" <<<"$out"'
check "the file keeps its comments, with the new values" \
	'grep -q "\"max\": 0.25 " "$tmp/manifests/dq-burn.json" && grep -q "/\* half a CPU \*/" "$tmp/manifests/dq-burn.json" && grep -q "\"pids\": { \"max\": 50 }" "$tmp/manifests/dq-burn.json"'
check "and it still validates" '"$ctl" validate "$tmp/manifests/dq-burn.json" >/dev/null'
out=$("$ctl" reload)
check "a reload after --save sees no change and does not restart the tenant" \
	'grep -q "0 changed" <<<"$out" && [[ $(json_field dq-burn pid) == "$pid" ]]'
sleep 3
cpu=$(usage dq-burn cpu)
check "the tenant is held to 0.25 CPU now ($cpu)" '[[ $(cpu_quota dq-burn) == 25000 ]] && awk -v c="$cpu" "BEGIN { exit !(c > 0.2 && c < 0.3) }"'
check "pids.max is live in the status too" '[[ $(usage dq-burn pids_max) == 50 ]]'

# ---- an OOM kill is an alert at once ----
"$ctl" start dq-hog >/dev/null 2>&1
for i in $(seq 100); do grep -q "alert=oom_kill tenant=dq-hog" "$rsyslog_out" && break; sleep 0.1; done
check "an OOM kill inside the tenant is alerted to syslog at once" 'grep -q "daemon.warning tenantd-test\[[0-9]*\]: alert=oom_kill tenant=dq-hog" "$rsyslog_out"'
wait_state dq-hog failed 10
check "only the tenant's process died (status 137), the daemon and the other tenant run on" \
	'[[ $(json_field dq-hog last_status) == 137 && $(json_field dq-burn state) == running ]]'

# ---- a crashloop is an alert ----
cat >"$tmp/manifests/dq-crash.json" <<'EOF'
{ "name": "dq-crash", "exec": ["/bin/false"], "root": "host-system", "network": { "mode": "none" },
  "restart": { "on": "always", "backoff": "100ms..200ms", "burst": 2 } }
EOF
tenants+=(dq-crash)
"$ctl" reload >/dev/null
wait_state dq-crash crashloop 10
for i in $(seq 30); do grep -q "tenant=dq-crash quota=restarts" "$rsyslog_out" && break; sleep 0.1; done
check "a crashloop is alerted to syslog" 'grep -q "daemon.warning tenantd-test\[[0-9]*\]: alert=raised tenant=dq-crash quota=restarts failures=3 burst=2 state=crashloop" "$rsyslog_out"'

# ---- a fork bomb held at pids.max is alerted while the tenant runs ----
# A real fork bomb (forkhold ... spin: every process forks on and on) held at pids.max
# for 40 s: the pids_limit alert must come while `status` still says running, not when
# the tenant ends (the forkbomb payload below ends at its first refused fork, so it
# cannot tell). One manifest, with only "isolation" and the name changed for the microVM
# (below): in a sandbox the fork is refused by the host cgroup (not by RLIMIT_NPROC,
# which no one counts), in a microVM by the guest's, whose agent must still get to run
# and report it with one vCPU under TCG. The payload is in a directory of its own (a
# microVM's shares are directories).
mkdir -p "$tmp/pl"
cp "$payload_bin" "$tmp/pl/payload"
chmod 755 "$tmp/pl" "$tmp/pl/payload"
cat >"$tmp/forks.json" <<EOF
{
  "name": "dq-forks",
  "exec": ["/payload/payload", "forkhold", "40", "spin"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/pl", "target": "/payload", "mode": "ro" } ],
  "cpu": { "max": 1 },
  "pids": { "max": 20 },
  "network": { "mode": "none" },
  "restart": { "on": "no" }
}
EOF
# forkhold_case NAME LABEL BOOT_SECONDS: the tenant NAME (its manifest in place) added
# by a reload; the pids_limit alert in syslog while it runs. held: when `logs` first
# showed the payload at its limit.
forkhold_case() {
	local t=$1 l=$2 i held="" alert="" state="" logs start line
	"$ctl" reload >/dev/null 2>&1
	wait_state "$t" running "$3"
	start=$EPOCHREALTIME
	for i in $(seq 150); do
		if [[ -z $held ]]; then
			logs=$("$ctl" logs "$t" 2>&1)
			[[ $logs == *"held after"* ]] && held=$EPOCHREALTIME
		fi
		if grep -q "alert=pids_limit tenant=$t " "$rsyslog_out"; then
			alert=$EPOCHREALTIME
			state=$(json_field "$t" state)
			break
		fi
		sleep 0.2
	done
	logs=$("$ctl" logs "$t" 2>&1)
	line=$(grep -m1 "alert=pids_limit tenant=$t " "$rsyslog_out")
	check "$l: forkhold is held at pids.max 20: $(grep -o "held after [0-9]* forks: [A-Z]*" <<<"$logs")" \
		'[[ $logs =~ held\ after\ ([0-9]+)\ forks:\ EAGAIN && ${BASH_REMATCH[1]} -lt 20 ]]'
	check "$l: the pids_limit alert reaches syslog while the tenant runs (state ${state:-none}): ${line:-none}" \
		'[[ -n $alert && $state == running && $logs != *"ok held"* && $line == "daemon.warning tenantd-test["*"]: alert=pids_limit tenant=$t "* && $line =~ count=[1-9] && $line =~ limit=20 ]]'
	if [[ -n $alert && -n $held ]]; then
		echo "# measured: $l: pids_limit alert $(awk -v a="$alert" -v h="$held" -v s="$start" 'BEGIN { printf "%.1f s after the payload was seen at its limit (%.1f s after running)", a - h, a - s }')"
	fi
	# A live raise lets the held bomb grow to the new limit: nothing but the cgroup
	# holds a sandbox's processes (no RLIMIT_NPROC at the manifest's value), nothing
	# but the guest's a microVM's (its agent takes the new value from the runner;
	# the host's cgroup holds QEMU's threads). The guest's count is the tenant's
	# processes its /proc lists (`payload nproc`, exec'd into the guest; the exec
	# joins the group, beyond its limit, and does not count itself).
	"$ctl" set "$t" pids.max=30 >/dev/null 2>&1
	local n=0 what="pids.current"
	[[ $l == sandbox ]] || what="the guest's count"
	for i in $(seq 50); do
		if [[ $l == sandbox ]]; then
			n=$(cat "$(cg_paths "$t" | while read -r d; do [[ -f $d/pids.current ]] && echo "$d/pids.current"; done | head -1)" 2>/dev/null)
		else
			n=$("$ctl" exec "$t" /payload/payload nproc 2>/dev/null | sed -n 's/^nproc //p')
		fi
		[[ ${n:-0} -ge 29 ]] && break
		sleep 0.1
	done
	check "$l: after a live set pids.max=30 the held bomb grows to it ($what ${n:-none})" \
		'[[ ${n:-0} -ge 29 && ${n:-0} -le 30 ]]'
	# Held at its limit the whole time, the bomb hits pids.max at every sample: one
	# line at once, then at most one per 10 s (the last at the tenant's end), the counts
	# summing to the counter (a fresh tenant's counts from zero), not a line a second.
	# 15 s of it: a flush of what was held at 10 s, and one at the end.
	while awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { exit !(e - s < 15) }'; do sleep 0.2; done
	"$ctl" stop "$t" >/dev/null 2>&1
	wait_state "$t" stopped 30
	local dur lines sum total
	dur=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%d", e - s }')
	for i in $(seq 20); do
		lines=$(grep -c "alert=pids_limit tenant=$t " "$rsyslog_out")
		sum=$(grep "alert=pids_limit tenant=$t " "$rsyslog_out" | sed -n 's/.* count=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
		total=$(grep "alert=pids_limit tenant=$t " "$rsyslog_out" | tail -1 | sed -n 's/.* total=\([0-9]*\).*/\1/p')
		[[ $sum == "$total" ]] && break
		sleep 0.1
	done
	check "$l: held at pids.max for ${dur} s: $lines pids_limit lines (at most 2 + 1 per 10 s), counts summing to the total ($sum of ${total:-none})" \
		'[[ $lines -ge 1 && $lines -le $((2 + dur / 10)) && $sum == "$total" ]]'
}
tenants+=(dq-forks)
cp "$tmp/forks.json" "$tmp/manifests/dq-forks.json"
forkhold_case dq-forks sandbox 10

# ---- the microVM half: dq-burn's manifest as a microVM ----
# (the sandbox tenants are stopped first: on two cores their busy loops would take the
# CPU the microVM's 0.5 is measured against)
"$ctl" stop dq-burn dq-crash >/dev/null 2>&1
if [[ -n $vm_why ]]; then
	skip "microvm: dq-burn as a microVM (usage, top, CPU alert, live set): $vm_why"
else
	wait_state dq-burn-vm running 120
	cpu_cases dq-burn-vm microvm
	"$ctl" stop dq-burn-vm >/dev/null 2>&1
fi
if [[ -n $vm_why ]]; then
	skip "microvm: a fork bomb held at pids.max, alerted while it runs: $vm_why"
else
	sed -e 's/"name": "dq-forks"/"name": "dq-forks-vm", "isolation": "microvm"/' \
		"$tmp/forks.json" >"$tmp/manifests/dq-forks-vm.json"
	tenants+=(dq-forks-vm)
	forkhold_case dq-forks-vm microvm 120
fi
# ---- the microVM half of the OOM and pids cases ----
# The guest's kernel is the tenant's: the agent keeps the service in a cgroup of its own
# in the guest, holds the manifest's pids.max there and reports the OOM kills and the
# refused forks it counts; tenantd adds them to the tenant's, so the same alerts follow.
# One tenant does both: a memhog past the guest's RAM; then tenantd is killed and
# started again, and a second memhog's alert counts only the new kill (the guest's
# totals from before the restart are not counted again); then a fork bomb.
if [[ -n $vm_why ]]; then
	skip "microvm: an OOM kill and a pids.max hit in the guest, alerted: $vm_why"
else
	cat >"$tmp/manifests/dq-limits-vm.json" <<EOF
{
  "name": "dq-limits-vm",
  "isolation": "microvm",
  "exec": ["/bin/sh", "-c", "/payload/payload memhog 600; while [ ! -e /payload/again ]; do sleep 0.2; done; /payload/payload memhog 600; exec /payload/payload forkbomb"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/pl", "target": "/payload", "mode": "ro" } ],
  "vm": { "memory": "256M" },
  "pids": { "max": 100 },
  "network": { "mode": "none" },
  "restart": { "on": "no" }
}
EOF
	tenants+=(dq-limits-vm)
	out=$("$ctl" reload 2>&1)
	check "microvm: reload adds the tenant ($out)" '[[ $out == *"1 added"* ]]'
	# Up to 3 minutes for the boot (TCG) and the first memhog.
	for i in $(seq 1800); do
		grep -q "alert=oom_kill tenant=dq-limits-vm" "$rsyslog_out" && break
		sleep 0.1
	done
	oom=$(grep -m1 "alert=oom_kill tenant=dq-limits-vm" "$rsyslog_out")
	check "microvm: an OOM kill in the guest (memhog 600 MB in 256M) is alerted: ${oom:-none}" \
		'[[ $oom == "daemon.warning tenantd-test["*"]: alert=oom_kill tenant=dq-limits-vm "* && $oom =~ count=[1-9] ]]'

	# A tenantd killed and started again adopts the microVM; the guest's totals it had
	# counted are not counted again: one more memhog, and the next alert's count is
	# only the kills since the last one (the totals grow by exactly that much).
	check "microvm: the guest's totals are saved in the tenant's state directory ($(cat "$tmp/state/tenants/dq-limits-vm/guest-limits" 2>&1))" \
		'[[ $(cat "$tmp/state/tenants/dq-limits-vm/guest-limits") =~ ^guest-limits\ [1-9][0-9]*\ 0$ ]]'
	kill -KILL "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test
	check "microvm: the restarted tenantd adopts the tenant" 'wait_state dq-limits-vm running 10'
	sleep 2 # a sample or two after the adoption, the monitor's baseline
	# Then the second memhog, and a fork bomb; 5 s more once the tenant has ended,
	# for the last sample.
	touch "$tmp/pl/again"
	ended=0
	for i in $(seq 1200); do
		grep -q "alert=pids_limit tenant=dq-limits-vm" "$rsyslog_out" &&
			[[ $(grep -c "alert=oom_kill tenant=dq-limits-vm" "$rsyslog_out") -ge 2 ]] && break
		if ((i % 10 == 0)) && [[ $(json_field dq-limits-vm state) =~ ^(stopped|failed|exited|crashloop)$ ]]; then
			((ended++ >= 5)) && break
		fi
		sleep 0.1
	done
	oom2=$(grep "alert=oom_kill tenant=dq-limits-vm" "$rsyslog_out" | sed -n 2p)
	total1=$(sed -n 's/.* total=\([0-9]*\).*/\1/p' <<<"$oom")
	total2=$(sed -n 's/.* total=\([0-9]*\).*/\1/p' <<<"$oom2")
	count2=$(sed -n 's/.* count=\([0-9]*\).*/\1/p' <<<"$oom2")
	check "microvm: after the restart, an OOM kill counts only the new kills (count=${count2:-none}, totals ${total1:-none} then ${total2:-none})" \
		'[[ -n $count2 && -n $total1 && $count2 -ge 1 && $count2 == $((total2 - total1)) ]]'
	pl=$(grep -m1 "alert=pids_limit tenant=dq-limits-vm" "$rsyslog_out")
	logs=$("$ctl" logs dq-limits-vm 2>&1)
	check "microvm: a fork bomb held at pids.max 100 in the guest: $(grep -o "fail [A-Z]* after [0-9]* forks" <<<"$logs")" \
		'[[ $logs =~ fail\ EAGAIN\ after\ ([0-9]+)\ forks && ${BASH_REMATCH[1]} -le 100 ]]'
	check "microvm: ... and alerted: ${pl:-none}" \
		'[[ $pl == "daemon.warning tenantd-test["*"]: alert=pids_limit tenant=dq-limits-vm "* && $pl =~ count=[1-9] ]]'
fi
skip "microvm: a crashloop alert NOT REPEATED for a microVM: the restart policy is the same code for both backends (test_daemon_vm.sh restarts a killed QEMU); three more boots under TCG would cost a minute"

done_testing
