#!/usr/bin/env bash
# tests/integration/test_seccomp_notify.sh — denied-call events (issue 17): a profile
# based on `default` that marks syslog(2) "notify"; a real tenantd runs tenants that
# call it, their keepers deny each call with EPERM and report it, aggregated, to a
# private rsyslogd and to the event stream. A tenant that calls it 100,000 times gives
# a few lines whose counts add up, and tenantd answers meanwhile. `tenantctl run`
# denies and reports the same way, on its standard error.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/rsyslog.sh
require_sandbox
require_built "$TENANTD"
command -v rsyslogd >/dev/null ||
	skip_all "RSYSLOGD MISSING (apt-get install rsyslog, or make test-deps): denied-call events not tested"

tmp=$(mktemp -d /tmp/tenantd-notify.XXXXXX)
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

# The shipped profiles plus one of the test's, root's and not writable by others.
cp -r policies "$tmp/policies"
cat >"$tmp/policies/seccomp/notify-test.json" <<'EOF'
{
  "description": "default, with syslog(2) denied through the keeper and reported",
  "base": "default",
  "rules": [
    { "action": "notify", "syscalls": ["syslog"],
      "why": "the kernel log is the host's; report who asks for it" }
  ]
}
EOF
chmod -R go-w "$tmp/policies"
export TENANTD_POLICY_DIR=$tmp/policies

mkdir -p "$tmp/manifests"
cp "$payload_bin" "$tmp/payload"
# manifest NAME N: a tenant that calls syslog(2) N times, then sleeps
manifest() {
	cat >"$tmp/manifests/$1.json" <<EOF
{
  "name": "$1",
  "exec": ["/bin/sh", "-c", "/payload/payload repeat syslog $2; /payload/payload repeat acct $2; exec /payload/payload sleep 600"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/payload", "target": "/payload/payload", "mode": "ro" } ],
  "network": { "mode": "none" },
  "policy": { "seccomp": "notify-test" },
  "restart": { "on": "no" }
}
EOF
}
manifest sn-few 5
manifest sn-loop 100000
tenants+=(sn-few sn-loop)
# sn-adopt calls syslog 3 times a second, for ever: its denials go on after a restart
cat >"$tmp/manifests/sn-adopt.json" <<EOF
{
  "name": "sn-adopt",
  "exec": ["/bin/sh", "-c", "while :; do /payload/payload repeat syslog 3 >/dev/null; sleep 1; done"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/payload", "target": "/payload/payload", "mode": "ro" } ],
  "network": { "mode": "none" },
  "policy": { "seccomp": "notify-test" },
  "restart": { "on": "no" }
}
EOF
tenants+=(sn-adopt)
check "the profile validates" '"$ctl" validate "$tmp/manifests/sn-few.json" >/dev/null'
start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test ||
	bail "tenantd starts"
wait_state sn-few running 10
wait_state sn-loop running 10

# lines NAME: rsyslogd's seccomp-denied lines for tenant NAME
lines() { grep "event=seccomp-denied tenant=$1 " "$rsyslog_out"; }
# sum NAME: the counts of those lines, added
sum() { lines "$1" | sed -n 's/.* count=\([0-9]*\)$/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }

# ---- tenantd answers while a tenant calls the notified call in a loop ----
slow=0
for i in $(seq 10); do
	t0=$(date +%s%N)
	"$ctl" list >/dev/null || slow=99
	t1=$(date +%s%N)
	(((t1 - t0) / 1000000 > 1000)) && slow=$((slow + 1))
	sleep 0.2
done
check "tenantd answers list within 1 s while sn-loop calls syslog in a loop ($slow slow)" '[[ $slow == 0 ]]'

# ---- the calls fail with EPERM inside, as errno-denied ones do ----
for i in $(seq 600); do
	"$ctl" logs sn-loop 2>/dev/null | grep -q "repeat acct\|denied [0-9]*/100000 EPERM [0-9]* ns/call acct" && break
	sleep 0.1
done
logs_few=$("$ctl" logs sn-few 2>&1)
logs_loop=$("$ctl" logs sn-loop 2>&1)
check "sn-few: 5 of 5 calls of syslog failed with EPERM" 'grep -q "^denied 5/5 EPERM [0-9]* ns/call syslog" <<<"$logs_few"'
check "sn-loop: 100000 of 100000 calls failed with EPERM" 'grep -q "^denied 100000/100000 EPERM [0-9]* ns/call syslog" <<<"$logs_loop"'
notified=$(sed -n 's/^denied 100000\/100000 EPERM \([0-9]*\) ns\/call syslog.*/\1/p' <<<"$logs_loop")
errno_ns=$(sed -n 's/^denied 100000\/100000 EPERM \([0-9]*\) ns\/call acct.*/\1/p' <<<"$logs_loop")
echo "# cost of one denied call inside the tenant: notify ${notified:-?} ns, errno ${errno_ns:-?} ns"

# ---- syslog: the first denial at once, the rest summed at most every 10 s ----
for i in $(seq 100); do [[ $(sum sn-few) -ge 1 ]] && break; sleep 0.1; done
line=$(lines sn-few | head -1)
check "rsyslogd got the first denial at once, at priority warning: ${line:-none}" \
	'[[ $line == "daemon.warning tenantd-test["*"]: event=seccomp-denied tenant=sn-few syscall=syslog count="* ]]'
check "the event stream has it too" \
	'"$ctl" events -n 200 | grep -q "event=seccomp-denied tenant=sn-few syscall=syslog count="'
# The rest of the counts come within 10 s of the first line.
for i in $(seq 150); do [[ $(sum sn-few) -ge 5 && $(sum sn-loop) -ge 100000 ]] && break; sleep 0.1; done
check "sn-few: the counts add up to 5 ($(sum sn-few))" '[[ $(sum sn-few) == 5 ]]'
total=$(sum sn-loop)
check "sn-loop: the counts add up to 100000 ($total)" '[[ $total == 100000 ]]'
if [[ $total != 100000 ]]; then
	echo "# rsyslogd's lines:"
	lines sn-loop | sed 's/^/#   /'
	echo "# the event stream's:"
	"$ctl" events -n 400 | grep "seccomp-denied tenant=sn-loop" | sed 's/^/#   /'
fi
nl=$(lines sn-loop | wc -l)
check "sn-loop: 100000 denials in at most 3 lines ($nl)" '[[ $nl -ge 1 && $nl -le 3 ]]'
check "no line for acct, which is errno:EPERM in default" '! grep -q "syscall=acct" "$rsyslog_out"'

# ---- tenantctl exec: a command started inside gets the same answer, EPERM ----
before=$(sum sn-few)
out=$("$ctl" exec sn-few -- /payload/payload repeat syslog 50 2>&1)
rc=$?
check "tenantctl exec: 50 of 50 calls of syslog failed with EPERM, not ENOSYS (rc $rc: $out)" \
	'[[ $rc == 0 && $out == "denied 50/50 EPERM "* ]]'
out=$("$ctl" exec sn-few -- /payload/payload repeat acct 5 2>&1)
check "tenantctl exec: errno rules unchanged (acct: $out)" '[[ $out == "denied 5/5 EPERM "* ]]'
sleep 1
check "exec'd commands' denials are not reported (nothing after $before)" '[[ $(sum sn-few) == "$before" ]]'

# ---- a restarted tenantd adopts the keeper and gets its events, not only syslog ----
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
sleep 0.5
start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test2 || bail "tenantd restarts"
wait_state sn-adopt running 10
got=""
for i in $(seq 250); do
	got=$("$ctl" events -n 200 | grep "event=seccomp-denied tenant=sn-adopt " | head -1)
	[[ -n $got ]] && break
	sleep 0.1
done
check "after kill -9 and a restart, the new tenantd's event stream has the adopted tenant's denials (${got:-none})" \
	'[[ -n $got ]]'
check "and its syslog lines, under its own ident" \
	'grep -q "tenantd-test2\[[0-9]*\]: event=seccomp-denied tenant=sn-adopt syscall=syslog" "$rsyslog_out"'

# ---- tenantctl run: the same denials, reported on its standard error ----
cat >"$tmp/run.json" <<EOF
{ "name": "sn-run", "user": "1000:1000", "root": "host-system",
  "exec": ["/payload/payload", "repeat", "syslog", "1000"],
  "mounts": [ { "source": "$tmp/payload", "target": "/payload/payload", "mode": "ro" } ],
  "network": { "mode": "none" }, "policy": { "seccomp": "notify-test" } }
EOF
tenants+=(sn-run)
out=$(timeout -k 5 60 "$ctl" run --state "$tmp/run-state" "$tmp/run.json" 2>"$tmp/run.err")
rc=$?
check "tenantctl run: 1000 of 1000 calls failed with EPERM (rc $rc)" '[[ $rc == 0 && $out == "denied 1000/1000 EPERM "* ]]'
runsum=$(sed -n 's/.*event=seccomp-denied tenant=sn-run syscall=syslog count=\([0-9]*\)$/\1/p' "$tmp/run.err" | awk '{ s += $1 } END { print s + 0 }')
check "tenantctl run: reported on stderr, counts adding up to 1000 ($runsum)" '[[ $runsum == 1000 ]]'

done_testing
