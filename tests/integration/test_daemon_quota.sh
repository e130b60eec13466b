#!/usr/bin/env bash
# tests/integration/test_daemon_quota.sh — the monitor inside tenantd, with real
# sandboxed tenants and a private rsyslogd receiving the alerts: usage in top and
# status, a CPU rule raised and cleared (the syslog lines parsed), an OOM kill and a
# crashloop alerted at once, live changes with `tenantctl set` (and --save writing
# the manifest back with its comments, without a restart on reload).
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/rsyslog.sh
require_sandbox
require_built "$TENANTD"
command -v rsyslogd >/dev/null ||
	skip_all "RSYSLOGD MISSING (apt-get install rsyslog, or make test-deps): alerts to syslog not tested"

tmp=$(mktemp -d /tmp/tenantd-dquota.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	rsyslog_stop
	sandbox_cleanup
}
trap cleanup EXIT
rsyslog_start "$tmp/syslog" || bail "a private rsyslogd starts"

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
start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test
wait_state dq-burn running 5

# usage: the CPU the tenant gets, as tenantd measures it
usage() { "$ctl" --json status "$1" | python3 -c 'import json,sys; u=json.load(sys.stdin).get("usage") or {}; print(u.get(sys.argv[1], ""))' "$2"; }
sleep 4
cpu=$(usage dq-burn cpu)
check "status reports the tenant's CPU use: ~0.5 under cpu.max 0.5 ($cpu)" \
	'awk -v c="$cpu" "BEGIN { exit !(c > 0.42 && c < 0.55) }"'
out=$("$ctl" top --once)
check "top shows cpu, limit, memory and pids" \
	'grep -qE "^dq-burn +running +[0-9]+% +0.50 +[0-9.]+[KMG]?/[0-9.]+[KMG] +[0-9]+/[0-9]+" <<<"$out"'

# ---- the CPU rule: raised after 2 s at >= 80% of 0.5 CPU, in syslog ----
for i in $(seq 60); do grep -q "alert=raised tenant=dq-burn quota=cpu" "$rsyslog_out" && break; sleep 0.1; done
line=$(grep -m1 "alert=raised tenant=dq-burn quota=cpu" "$rsyslog_out")
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
check "rsyslogd received the raised alert at priority warning from tenantd-test" \
	'[[ $line == "daemon.warning tenantd-test["*"]: alert=raised tenant=dq-burn quota=cpu "* ]]'
check "the line carries usage, limit and for (usage=$(kv usage) limit=$(kv limit) for=$(kv for))" \
	'awk -v u="$(kv usage)" -v l="$(kv limit)" "BEGIN { exit !(u >= 0.8 && u <= 1.1 && l == 0.5) }" && [[ $(kv for) =~ ^[0-9]+(\.[0-9]+)?s$ ]]'
check "the alert is in the event stream too" '"$ctl" events -n 100 | grep -q "event=alert alert=raised tenant=dq-burn quota=cpu"'

# ---- live change: cpu.max 2 makes usage fall below 50% of the limit: cleared ----
out=$("$ctl" set dq-burn cpu.max=2)
check "set applies a live change and says it is not saved" 'grep -q "applied; not saved" <<<"$out"'
for i in $(seq 80); do grep -q "alert=cleared tenant=dq-burn quota=cpu" "$rsyslog_out" && break; sleep 0.1; done
line=$(grep -m1 "alert=cleared tenant=dq-burn quota=cpu" "$rsyslog_out")
check "the cleared alert arrives at priority notice" \
	'[[ $line == "daemon.notice tenantd-test["*"]: alert=cleared tenant=dq-burn quota=cpu "* ]]'
# The kernel's own setting (usage itself depends on how busy the machine is).
cpu_quota() {
	local d
	for d in $(cg_paths "$1"); do
		[[ -f $d/cpu.cfs_quota_us ]] && { cat "$d/cpu.cfs_quota_us"; return; }
		[[ -f $d/cpu.max ]] && { cut -d' ' -f1 "$d/cpu.max"; return; }
	done
}
check "the tenant's cgroup now allows 2 CPUs ($(cpu_quota dq-burn) us per 100 ms)" '[[ $(cpu_quota dq-burn) == 200000 ]]'
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

done_testing
