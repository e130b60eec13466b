#!/usr/bin/env bash
# tests/integration/test_backup_ops.sh — backups (issue 14) under a real tenantd and a real
# local restic repository, the parts test_backup.sh does not cover:
# - retention over simulated days: tenantd restarted once a simulated day with
#   TENANTD_TEST_CLOCK_OFFSET (the environment only whoever starts tenantd sets), one
#   backup a day for 40 days with keep daily 7, weekly 4, monthly 6; the snapshots that
#   remain are exactly those restic's rules keep, computed here on their own;
# - a restore in place cut short by kill -9 of tenantd: the next tenantd puts the old
#   image back (the tenant never started on the new one), the next restore is not
#   blocked; an old image left aside while the tenant runs is removed at adoption;
# - the backup right of the user socket: backup and backups on one's own tenant, not on
#   another's (answered as a tenant that does not exist), not without the right, and
#   backup check never.
# For a sandbox and, where libvirt and the VM image are there, for a microVM from the
# same manifest (only "isolation" changes; the microVM's retention run is shorter).
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/lib/sandbox.sh
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/libvirt.sh
require_sandbox
require_built "$TENANTD"
[[ -c /dev/loop-control ]] || skip_all "NO /dev/loop-control: volumes need loop devices; nothing was tested"
command -v restic >/dev/null || skip_all "NO RESTIC (make test-deps installs it); nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-bkops.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
made_users=()
have_libvirt=0
cleanup() {
	local t m u
	daemon_cleanup
	for u in "${made_users[@]}"; do userdel "$u" 2>/dev/null; done
	for t in "${tenants[@]}"; do
		((have_libvirt)) && vm_domain_purge "$t"
		rm -rf "/run/tenantd-vm/$t"
		for m in /run/tenantd-volumes/"$t"/* /run/tenantd-backup/"$t"/*; do
			[[ -d $m ]] && { umount -l "$m" 2>/dev/null; rmdir "$m" 2>/dev/null; }
		done
		rmdir /run/tenantd-volumes/"$t" /run/tenantd-backup/"$t" 2>/dev/null
	done
	((have_libvirt)) && libvirt_release
	if [[ $(findmnt -Rn -o TARGET /run/tenantd-volumes 2>/dev/null | wc -l) == 1 ]]; then
		umount /run/tenantd-volumes 2>/dev/null
	fi
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

storage=$tmp/storage
repo=$tmp/repo
mkdir -m 700 "$storage"
printf 'correct horse battery staple\n' >"$tmp/backup.pass"
chmod 600 "$tmp/backup.pass"
RESTIC_PASSWORD_FILE=$tmp/backup.pass restic -r "$repo" init -q >/dev/null 2>&1
check "a local restic repository is made" '[[ -f $repo/config ]]'

busybox=$(command -v busybox || true)
if [[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	mkdir -p "$tmp/root/bin" "$tmp/root/data" "$tmp/root/proc" "$tmp/root/dev" "$tmp/root/sys" \
		"$tmp/root/tmp" "$tmp/root/run" "$tmp/root/etc"
	cp "$busybox" "$tmp/root/bin/busybox"
	for a in sh cat echo sleep ls sync; do ln -s busybox "$tmp/root/bin/$a"; done
else
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the tenants have no shell; nothing was tested"
fi

manifest() { # ISOLATION NAME [ACCESS JSON]
	local access=""
	[[ -n ${3-} ]] && access=$',\n  "access": '"$3"
	cat <<JSON
{ "name": "$2", "isolation": "$1", "exec": ["/bin/sleep", "3600"], "user": "1000:1000",
  "root": { "path": "$tmp/root", "readonly": true },
  "volumes": [ { "name": "data", "target": "/data", "size": "32M" } ],
  "backup": { "repository": "$repo", "password_file": "$tmp/backup.pass",
              "keep": { "daily": 7, "weekly": 4, "monthly": 6 } }$access }
JSON
}


# tenantd stops (SIGTERM), its tenants run on; the next start adopts them.
restart_daemon() { # [TEST CLOCK OFFSET]
	kill -TERM "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	[[ -n ${1-} ]] && export TENANTD_TEST_CLOCK_OFFSET=$1
	start_daemon --storage "$storage"
	unset TENANTD_TEST_CLOCK_OFFSET
}

# ---- retention over simulated days ----
# DAYS backups, one a simulated day at 12:00 local time from 2027-01-20, tenantd
# restarted with the clock moved for each; then the snapshots left must be exactly the
# ones restic's keep rules keep, computed here from the days alone: for daily, weekly
# (ISO week) and monthly, the newest snapshot of each of the newest N periods that have
# one, together.
retention() { # ISOLATION NAME DAYS
	local iso=$1 name=$2 days=$3 day target off out bad=0 got want base
	base=$(date -d "2027-01-20 12:00:00" +%s)
	# restic refuses to record an empty snapshot: the volume holds a file
	"$ctl" exec "$name" -- /bin/sh -c 'echo kept >/data/k && sync' >/dev/null 2>&1
	for ((day = 0; day < days; day++)); do
		target=$((base + day * 86400)) # 12:00, or 11:00/13:00 across a change of summer time
		off=$((target - $(date +%s)))
		restart_daemon "$off"
		wait_state "$name" running 60 >/dev/null || { bad=1 && break; }
		out=$("$ctl" backup "$name" 2>&1)
		[[ $out == *"test_time=$(date -d "@$target" +%Y-%m-%dT%H)"* ]] || { bad=1 && echo "# day $day: $out" && break; }
	done
	check "$iso: $days backups, one a simulated day, each at its day's time" '[[ $bad == 0 ]]'
	restart_daemon
	got=$(RESTIC_PASSWORD_FILE=$tmp/backup.pass restic -r "$repo" snapshots --json --tag "tenant=$name" 2>/dev/null |
		python3 -c 'import json, sys; print(" ".join(sorted(s["time"][:10] for s in json.load(sys.stdin))))')
	want=$(python3 - "$days" <<'PY'
import datetime, sys
days = [datetime.date(2027, 1, 20) + datetime.timedelta(d) for d in range(int(sys.argv[1]))]
newest_first = sorted(days, reverse=True)
keep = set()
for n, period in ((7, lambda d: d), (4, lambda d: d.isocalendar()[:2]), (6, lambda d: (d.year, d.month))):
    seen = []
    for d in newest_first:
        p = period(d)
        if p not in seen:
            seen.append(p)
            if len(seen) > n:
                break
            keep.add(d)
print(" ".join(sorted(d.isoformat() for d in keep)))
PY
)
	check "$iso: after $days simulated days only what keep daily 7, weekly 4, monthly 6 keeps remains (want: $want; got: $got)" \
		'[[ -n $want && $got == "$want" ]]'
}

# libvirtd, when the test starts it, gets a mount namespace that is a slave of the host's
# (tests/lib/libvirt.sh): it must start after tenantd has made /run/tenantd-volumes the
# shared mount the volumes go under, or virtiofsd never sees them.
vm_setup() {
	vm_probe
	if [[ -z $vm_why ]]; then
		have_libvirt=1
	fi
}

mkdir -p "$tmp/manifests"
manifest sandbox bo-sandbox >"$tmp/manifests/bo-sandbox.json"
tenants+=(bo-sandbox)
start_daemon --storage "$storage"
check "tenantd starts" '[[ $? == 0 ]]'
wait_state bo-sandbox running 20
retention sandbox bo-sandbox 40
restart_daemon 1d
out=$("$ctl" backup bo-sandbox 2>&1)
rc=$?
check "a test clock that is no number of seconds fails the backup, saying so ($out)" \
	'[[ $rc != 0 && $out == *"TENANTD_TEST_CLOCK_OFFSET=1d is not a number of seconds"* ]]'
restart_daemon

# ---- a restore in place cut short by kill -9 of tenantd ----
restore_crash() { # ISOLATION NAME TIMEOUT
	local iso=$1 name=$2 wait=$3 out i caught=0 k id
	wait_state "$name" running "$wait"
	"$ctl" exec "$name" -- /bin/sh -c 'echo before-backup >/data/f && sync' >/dev/null 2>&1
	# by id: the retention run above left snapshots dated in 2027, which "latest" would take
	id=$("$ctl" backup "$name" 2>&1 | sed -n 's/.*snapshot data=\([0-9a-f]*\).*/\1/p')
	"$ctl" exec "$name" -- /bin/sh -c 'echo after-backup >/data/f && sync' >/dev/null 2>&1
	"$ctl" stop "$name" >/dev/null 2>&1
	"$ctl" restore --yes --snapshot "$id" "$name" >/dev/null 2>&1 &
	k=$!
	for i in $(seq 1000); do
		[[ -e $storage/$name/data.img.pre-restore ]] && caught=1 && break
		sleep 0.01
	done
	kill -KILL "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	wait "$k" 2>/dev/null
	check "$iso: tenantd was killed (-9) while the restore had the old image aside" '[[ $caught == 1 ]]'
	sleep 0.5
	check "$iso: the restore's worker and its restic died with tenantd" \
		'! pgrep -f "restic -r $repo .*restore" >/dev/null'
	start_daemon --storage "$storage"
	check "$iso: the next tenantd starts" '[[ $? == 0 ]]'
	check "$iso: it put the old image back (the tenant never started on the new one)" \
		'[[ ! -e $storage/$name/data.img.pre-restore && -e $storage/$name/data.img ]] && "$ctl" events -n 50 2>&1 | grep -q "event=restore-undone tenant=$name volume=data"'
	grep -q "a restore of volume data did not finish" "$tmp/tenantd.log"
	check "$iso: and said so in its log" '[[ $? == 0 ]]'
	"$ctl" start "$name" >/dev/null 2>&1
	wait_state "$name" running "$wait"
	out=$("$ctl" exec "$name" -- /bin/cat /data/f 2>&1)
	check "$iso: the tenant runs on its old data ($out)" '[[ $out == after-backup ]]'
	"$ctl" stop "$name" >/dev/null 2>&1
	out=$("$ctl" restore --yes --snapshot "$id" "$name" 2>&1)
	check "$iso: the next restore in place is not blocked, and finishes ($out)" \
		'[[ $out == *"$name started; the old images kept aside were removed"* ]]'
	out=$("$ctl" exec "$name" -- /bin/cat /data/f 2>&1)
	check "$iso: the backed-up data is back ($out)" '[[ $out == before-backup ]]'
	# An old image left aside while the tenant runs (tenantd killed between the start
	# and the removal, made by hand): the adopting tenantd removes it.
	kill -KILL "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	head -c 1M /dev/zero >"$storage/$name/data.img.pre-restore"
	start_daemon --storage "$storage"
	wait_state "$name" running "$wait" >/dev/null
	check "$iso: with the tenant running (adopted), the old image left aside is removed" \
		'[[ ! -e $storage/$name/data.img.pre-restore ]] && "$ctl" events -n 50 2>&1 | grep -q "event=restore-finished tenant=$name volume=data"'
}
restore_crash sandbox bo-sandbox 20

# ---- the backup right on the user socket ----
if command -v useradd >/dev/null && command -v setpriv >/dev/null; then
	for u in tb-backer tb-looker; do
		userdel "$u" 2>/dev/null # left by a test that was killed
		useradd --no-create-home --shell /usr/sbin/nologin --user-group "$u" && made_users+=("$u")
	done
	manifest sandbox bo-sandbox '[{"user": "tb-backer", "allow": ["status", "backup"]}, {"user": "tb-looker", "allow": ["status"]}]' \
		>"$tmp/manifests/bo-sandbox.json"
	manifest sandbox bo-other >"$tmp/manifests/bo-other.json"
	tenants+=(bo-other)
	"$ctl" reload >/dev/null 2>&1
	wait_state bo-sandbox running 20 >/dev/null
	wait_state bo-other running 20 >/dev/null
	as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$ctl" --socket "$tmp/user.sock" "$@" 2>&1; }
	out=$(as_user tb-backer backup bo-sandbox)
	rc=$?
	check "user socket: the backup right backs up one's own tenant ($out)" '[[ $rc == 0 && $out == *"snapshot data="* ]]'
	out=$(as_user tb-backer backups bo-sandbox)
	rc=$?
	check "user socket: and lists its snapshots ($(wc -l <<<"$out") lines)" '[[ $rc == 0 && $(grep -c " data " <<<"$out") -ge 2 ]]'
	out=$(as_user tb-backer --json backups bo-sandbox)
	check "user socket: backups --json: only this tenant's snapshots" \
		'python3 -c "import json, sys; s = json.loads(sys.argv[1]); assert s and all(x[\"volumes\"] == [\"data\"] for x in s)" "$out"'
	nx=$(as_user tb-backer backup no-such-tenant; echo "rc=$?")
	o1=$(as_user tb-backer backup bo-other; echo "rc=$?")
	o2=$(as_user tb-backer backups bo-other; echo "rc=$?")
	nx2=$(as_user tb-backer backups no-such-tenant; echo "rc=$?")
	check "user socket: another tenant answers exactly as one that does not exist ($o1 | $nx)" \
		'[[ ${o1//bo-other/X} == "${nx//no-such-tenant/X}" && ${o2//bo-other/X} == "${nx2//no-such-tenant/X}" && $o1 == *rc=1 ]]'
	out=$(as_user tb-looker backup bo-sandbox; echo "rc=$?")
	check "user socket: without the backup right, backup is refused ($out)" \
		'[[ $out == *"permission denied"*"does not grant"*rc=1 ]]'
	out=$(as_user tb-looker backups bo-sandbox; echo "rc=$?")
	check "user socket: and so is backups ($out)" '[[ $out == *"permission denied"*rc=1 ]]'
	out=$(as_user tb-backer backup check bo-sandbox; echo "rc=$?")
	check "user socket: backup check is the operator's, even with the right ($out)" \
		'[[ $out == *"permission denied"*"whole repository"*rc=1 ]]'
	"$ctl" stop bo-other >/dev/null 2>&1
else
	for _ in 1 2 3 4 5 6 7; do skip "NO useradd or setpriv: the user socket's backup right is not tested"; done
fi
"$ctl" stop bo-sandbox >/dev/null 2>&1

# ---- the microVM, from the same manifest ----
vm_setup
if [[ -z $vm_why ]]; then
	manifest microvm bo-vm >"$tmp/manifests/bo-vm.json"
	tenants+=(bo-vm)
	"$ctl" reload >/dev/null 2>&1
	if wait_state bo-vm running 180; then
		retention microvm bo-vm 12
		restore_crash microvm bo-vm 180
	else
		fail "microvm: bo-vm does not start: $("$ctl" logs -n 5 bo-vm 2>&1 | tr '\n' ' ')"
	fi
else
	skip "microvm: $vm_why: no microVM was tested"
fi

done_testing
