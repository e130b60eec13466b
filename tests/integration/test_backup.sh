#!/usr/bin/env bash
# tests/integration/test_backup.sh — backups and restores with restic (issue 14), under a
# real tenantd, for a sandbox and a microVM from one manifest (only "isolation" changes):
# a tenant writes a marker into its (encrypted) volume, `tenantctl backup` runs
# backup.pre inside it (which writes a dump) and takes a snapshot into a local restic
# repository in a temp dir, the tenant changes the file, is stopped, `tenantctl restore`
# brings the volume back, and the original marker is there. Also: `backups` (and its
# --json), `backup check`, the last good backup's size and duration in status, a password file readable by others is refused (and the failure goes to
# a private rsyslogd), nothing (snapshot image, frozen cgroup, backup cgroup, mount) is
# left behind, the recovery by the next tenantd of what a backup that died with tenantd
# left (made by hand), keep.last, a backup.schedule run by tenantd, and a real
# PostgreSQL under continuous inserts backed up and restored --as a new tenant (both
# backends). A restore
# in place wants --yes and keeps the old image aside until the tenant has started again;
# restore --as copies the manifest under a new name, fills new volumes and starts the
# copy while the source runs on.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/lib/sandbox.sh
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/libvirt.sh
# shellcheck source=tests/lib/rsyslog.sh
source tests/lib/rsyslog.sh
require_sandbox
require_built "$TENANTD"
[[ -c /dev/loop-control ]] || skip_all "NO /dev/loop-control: volumes need loop devices; nothing was tested"
command -v restic >/dev/null || skip_all "NO RESTIC (make test-deps installs it); nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-backup.XXXXXX)
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
		fsfreeze -u "/run/tenantd-volumes/$t/data" 2>/dev/null
		if [[ -n ${fz-} && -d $fz ]]; then # a failed crash test: thaw by hand
			echo THAWED >"$fz/freezer.state"
			while read -r m; do echo "$m" >"${fz%/tenantd/*}/cgroup.procs"; done <"$fz/cgroup.procs"
			rmdir "$fz"
		fi
		rmdir "/sys/fs/cgroup/freezer/tenantd/$t" 2>/dev/null
	done
	((have_libvirt)) && libvirt_release
	rsyslog_stop
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

manifest() { # ISOLATION NAME [MORE BACKUP KEYS]
	cat <<JSON
{ "name": "$2", "isolation": "$1", "exec": ["/bin/sleep", "600"], "user": "1000:1000",
  "root": { "path": "$tmp/root", "readonly": true },
  "volumes": [ { "name": "data", "target": "/data", "size": "32M" } ],
  "backup": { "repository": "$repo", "password_file": "$tmp/backup.pass", ${3:-}
              "pre": ["/bin/sh", "-c", "echo dumped-by-pre >/data/dump"],
              "keep": { "last": 3 } } }
JSON
}

vm_ready=0
vm_why=""
vm_setup() {
	vm_probe
	if [[ -z $vm_why ]]; then
		have_libvirt=1 vm_ready=1
	fi
}

mkdir -p "$tmp/manifests"
manifest sandbox bk-sandbox >"$tmp/manifests/bk-sandbox.json"
tenants+=(bk-sandbox)
daemon_opts=(--storage "$storage")
if rsyslog_start "$tmp/syslog"; then
	daemon_opts+=(--syslog-socket "$rsyslog_sock")
fi
start_daemon "${daemon_opts[@]}"
check "tenantd starts" '[[ $? == 0 ]]'

# round ISOLATION NAME TIMEOUT: write, back up, change, stop, restore, start, read.
round() {
	local iso=$1 name=$2 wait=$3 out id t0 took
	wait_state "$name" running "$wait"
	"$ctl" exec "$name" -- /bin/sh -c 'echo original-marker-7f3a >/data/f && sync' >/dev/null 2>&1
	t0=$(date +%s%N)
	out=$("$ctl" backup "$name" 2>&1)
	took=$((($(date +%s%N) - t0) / 1000000))
	id=$(sed -n 's/.*snapshot data=\([0-9a-f]*\).*/\1/p' <<<"$out")
	check "$iso: tenantctl backup prints the snapshot id and the freeze time ($out; $took ms in all)" \
		'[[ -n $id && $out == *freeze_ms=* ]]'
	check "$iso: the tenant runs again after the backup" \
		'[[ $(json_field "$name" state) == running ]] && "$ctl" exec "$name" -- /bin/cat /data/f >/dev/null 2>&1'
	check "$iso: no snapshot image, backup mount or backup cgroup is left" \
		'[[ ! -e $storage/$name/data.snap && ! -e /run/tenantd-backup/$name/data && ! -e /sys/fs/cgroup/cpu/tenantd/backup-of-$name ]]'
	out=$("$ctl" backups "$name" 2>&1)
	check "$iso: backups lists it: id, volume, size ($out)" \
		'[[ -n $id ]] && grep -qE "^${id:0:8} +[0-9-]{10} [0-9:]{8} +data +[0-9.]+[BKMGT] +[0-9]+$" <<<"$out"'
	check "$iso: backup list is the same verb" '[[ $("$ctl" backup list "$name" 2>&1) == "$out" ]]'
	out=$("$ctl" --json backups "$name" 2>&1)
	check "$iso: backups --json: newest first, each with id, time, volumes, size, files, manifest, tenantd ($out)" \
		'python3 -c "
import json, sys
s = json.loads(sys.argv[1])
f = s[0]
assert set(f) == {\"id\", \"time\", \"volumes\", \"size\", \"files\", \"manifest\", \"tenantd\"}, f
assert f[\"id\"].startswith(sys.argv[2]) and len(f[\"id\"]) == 64, f
assert f[\"volumes\"] == [\"data\"] and f[\"size\"] > 0 and f[\"files\"] >= 2, f
assert [x[\"time\"] for x in s] == sorted((x[\"time\"] for x in s), reverse=True)
" "$out" "$id"'
	check "$iso: the repository holds no plaintext of the marker" \
		'! grep -rq original-marker-7f3a "$repo"'
	"$ctl" exec "$name" -- /bin/sh -c 'echo changed >/data/f && echo new >/data/g && sync' >/dev/null 2>&1
	out=$("$ctl" restore "$name" 2>&1)
	check "$iso: restore refuses a running tenant ($out)" '[[ $out == *stopped* ]]'
	"$ctl" stop "$name" >/dev/null 2>&1
	out=$("$ctl" restore --snapshot "$id" "$name" 2>&1)
	rc=$?
	check "$iso: a restore in place over existing data wants --yes and says what it replaces ($out)" \
		'[[ $rc != 0 && $out == *--yes* && $out == *"$storage/$name/data.img"* && $(json_field "$name" state) == stopped ]]'
	out=$("$ctl" restore --yes --snapshot "$id" "$name" 2>&1)
	check "$iso: restore --yes restores the stopped tenant, keeping the old image aside, and starts it ($out)" \
		'[[ $out == *"restored volume data from $id; the old image is kept at $storage/$name/data.img.pre-restore"* && $out == *"$name started; the old images kept aside were removed"* ]]'
	check "$iso: it runs, and the old image is gone" \
		'[[ $(json_field "$name" state) == running && ! -e $storage/$name/data.img.pre-restore ]]'
	out=$("$ctl" exec "$name" -- /bin/sh -c 'cat /data/f; ls /data' 2>&1)
	check "$iso: the original data is back, the later file gone ($out)" \
		'[[ $out == *original-marker-7f3a* && $out != *changed* && $out != *new* ]]'
	check "$iso: backup.pre ran inside the tenant before the freeze: its dump was backed up" \
		'[[ $out == *dump* ]] && [[ $("$ctl" exec "$name" -- /bin/cat /data/dump 2>&1) == dumped-by-pre ]]'

	# restore --as: a new tenant from the latest snapshot, while the source runs on.
	local copy=$name-copy pid
	tenants+=("$copy")
	"$ctl" exec "$name" -- /bin/sh -c 'echo source-moved-on >/data/f && sync' >/dev/null 2>&1
	pid=$(json_field "$name" pid)
	out=$("$ctl" restore --snapshot latest --as "$copy" "$name" 2>&1)
	check "$iso: restore --as makes a new tenant from the snapshot and starts it ($out)" \
		'[[ $out == *"restored volume data from the latest snapshot"* && $out == *"$copy started"* && $(json_field "$copy" state) == running ]]'
	out=$("$ctl" exec "$copy" -- /bin/sh -c 'cat /data/f; echo x >/data/written-by-copy && echo wrote' 2>&1)
	check "$iso: the new tenant holds the snapshot's data, as its own user ($out)" \
		'[[ $out == *original-marker-7f3a* && $out == *wrote* ]]'
	check "$iso: the source ran on untouched: same pid, its own later data" \
		'[[ $(json_field "$name" pid) == "$pid" && $("$ctl" exec "$name" -- /bin/cat /data/f 2>&1) == source-moved-on ]]'
	check "$iso: the new manifest is the source's file with only the name changed" \
		'diff <(sed "s/\"$name\"/\"$copy\"/" "$tmp/manifests/$name.json") "$tmp/manifests/$copy.json"'
	out=$("$ctl" restore --as "$copy" "$name" 2>&1)
	rc=$?
	check "$iso: restore --as a name that exists is refused ($out)" \
		'[[ $rc != 0 && $out == *"a tenant named $copy exists already"* ]]'
	"$ctl" stop "$copy" >/dev/null 2>&1
	rm -f "$tmp/manifests/$copy.json"
	"$ctl" reload >/dev/null 2>&1
	"$ctl" volume rm --yes "$copy/data" >/dev/null 2>&1
	check "$iso: the copy's volume and manifest go as any tenant's" \
		'[[ ! -e $storage/$copy/data.img && -z $(json_field "$copy" state) ]]'
}

round sandbox bk-sandbox 20

# The control socket takes a new name and a snapshot id only as what they are: no path
# reaches the manifest or storage directory through them.
raw() { # REQUEST: tenantd's reply line
	timeout 10 python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["TENANTD_SOCKET"])
s.sendall((sys.argv[1] + "\n").encode()); print(s.makefile().readline().strip())' "$1"
}
req='{"v":1,"op":"backup","name":"bk-sandbox","action":"restore"'
bad=""
for as in '"../../etc/x"' '"a/b"' '"Bk"' '"-x"' '""' '7' '"0123456789012345678901234567890123"'; do
	out=$(raw "$req,\"as\":$as}")
	[[ $out == *'"code":"invalid"'* && $out == *'"as\" must be a tenant name'* ]] || bad+=" as=$as: $out;"
done
for sn in '"../x"' '"LATEST"' '"abc/def"' '""'; do
	out=$(raw "$req,\"snapshot\":$sn}")
	[[ $out == *'"code":"invalid"'* && $out == *'snapshot id'* ]] || bad+=" snapshot=$sn: $out;"
done
check "names and snapshot ids that are no such thing are refused by tenantd${bad:+:$bad}" '[[ -z $bad ]]'
out=$("$ctl" restore --as backup-of-x bk-sandbox 2>&1)
check "restore --as a name tenantd keeps for itself is refused, and nothing is written ($out)" \
	'[[ $out == *backup-of-* && ! -e $tmp/manifests/backup-of-x.json && ! -e $storage/backup-of-x ]]'
out=$("$ctl" restore --as bk-sandbox bk-sandbox 2>&1)
check "restore --as the source's own name is refused ($out)" '[[ $out == *"exists already"* ]]'

# The user socket: a user whose access entry allows "restore" may restore in place (here
# refused only because the tenant runs), never --as; one with "status" only may not.
if command -v useradd >/dev/null && command -v setpriv >/dev/null; then
	for u in tb-restorer tb-viewer; do
		userdel "$u" 2>/dev/null # left by a test that was killed
		useradd --no-create-home --shell /usr/sbin/nologin --user-group "$u" && made_users+=("$u")
	done
	python3 - "$tmp/manifests/bk-sandbox.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["access"] = [{"user": "tb-restorer", "allow": ["status", "restore"]},
               {"user": "tb-viewer", "allow": ["status"]}]
json.dump(m, open(sys.argv[1], "w"), indent=2)
PY
	"$ctl" reload >/dev/null 2>&1
	as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$ctl" --socket "$tmp/user.sock" "$@" 2>&1; }
	out1=$(as_user tb-restorer restore --yes bk-sandbox)
	out2=$(as_user tb-restorer restore --as tb-copy bk-sandbox)
	out3=$(as_user tb-viewer restore --yes bk-sandbox)
	out4=$(as_user tb-restorer backup bk-sandbox)
	check "user socket: the restore right lets a user restore in place ($out1)" \
		'[[ $out1 == *"must be stopped"* ]]'
	check "user socket: restore --as is the operator's ($out2)" \
		'[[ $out2 == *"permission denied"*"restore --as makes a new tenant"* && ! -e $tmp/manifests/tb-copy.json ]]'
	check "user socket: without the right, and for backup, the user is refused ($out3; $out4)" \
		'[[ $out3 == *"permission denied"*"does not grant"* && $out4 == *"permission denied"* ]]'
else
	skip "NO useradd or setpriv: the user socket's restore right is not tested"
	skip "NO useradd or setpriv: the user socket's restore right is not tested"
	skip "NO useradd or setpriv: the user socket's restore right is not tested"
fi

out=$("$ctl" backup check bk-sandbox 2>&1)
rc=$?
check "backup check runs restic check ($out)" '[[ $rc == 0 && $out == *"no errors were found"* ]]'
out=$("$ctl" --json status bk-sandbox 2>&1)
check "status shows the last backup" '[[ $out == *'"'"'"last_ok":true'"'"'* ]]'
check "status --json and list --json carry the last good backup's end, size, growth and duration ($out)" \
	'python3 -c "
import json, sys
for b in (json.loads(sys.argv[1])[\"backup\"], [t for t in json.loads(sys.argv[2]) if t[\"name\"] == \"bk-sandbox\"][0][\"backup\"]):
    assert b[\"ok_ms\"] > 1.7e12 and b[\"ok_size\"] > 0 and b[\"ok_added\"] >= 0 and 0 < b[\"ok_duration_ms\"] < 600000, b
" "$out" "$("$ctl" --json list 2>&1)"'
out=$("$ctl" status bk-sandbox 2>&1)
check "status says when, how big and how long ($(grep "last good" <<<"$out"))" \
	'grep -qE "^  last good: +[0-9].* ago, [0-9.]+[BKMGT] \([0-9.]+[BKMGT] new in the repository\) in [0-9]+\.[0-9] s$" <<<"$out"'

chmod 644 "$tmp/backup.pass"
out=$("$ctl" backup bk-sandbox 2>&1)
rc=$?
check "a password file readable by others is refused ($out)" \
	'[[ $rc != 0 && $out == *"chmod 600"* && $out != *staple* ]]'
check "and the tenant is not left frozen" \
	'"$ctl" exec bk-sandbox -- /bin/cat /data/f >/dev/null 2>&1'
check "the password never reaches tenantd's log" '! grep -q staple "$tmp/tenantd.log"'
if [[ -n $rsyslog_pid ]]; then
	for _ in $(seq 40); do grep -q "event=backup-failed tenant=bk-sandbox" "$rsyslog_out" && break; sleep 0.05; done
	check "the failure went to syslog at once, at err, without the password" \
		'grep -q "^daemon.err tenantd.*event=backup-failed tenant=bk-sandbox error=.*chmod 600" "$rsyslog_out" && ! grep -q staple "$rsyslog_out"'
else
	skip "NO PRIVATE RSYSLOGD (apt-get install rsyslog): the syslog line of backup-failed is not tested"
fi
chmod 600 "$tmp/backup.pass"

# Crash safety: what a backup worker that died with tenantd (kill -9 of both during the
# freeze) leaves is made by hand, as the worker does it (the tenant's processes in a
# frozen v1 freezer cgroup, its volume's file system FIFREEZEd, a half-made snapshot
# image); the next tenantd must thaw the tenant and remove the image before adopting it.
freezer_of() { # PID: the v1 freezer cgroup tenantd (PID) freezes tenants under
	local own
	own=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$1/cgroup")
	[[ $own == / ]] && own=
	echo "/sys/fs/cgroup/freezer$own/tenantd"
}
fz=""
vol=/run/tenantd-volumes/bk-sandbox/data
if [[ -d /sys/fs/cgroup/freezer ]] && command -v fsfreeze >/dev/null; then
	fz=$(freezer_of "$daemon_pid")/bk-sandbox
	init=$(json_field bk-sandbox pid)
	cpu=$(awk -F: '$2 == "cpu" || $2 ~ /(^|,)cpu(,|$)/ { print $3; exit }' "/proc/$init/cgroup")
	kill -KILL "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	mkdir -p "$fz"
	while read -r p; do echo "$p" >"$fz/cgroup.procs"; done <"/sys/fs/cgroup/cpu$cpu/cgroup.procs"
	echo FROZEN >"$fz/freezer.state"
	fsfreeze -f "$vol"
	head -c 1M /dev/zero >"$storage/bk-sandbox/data.snap"
	sleep 0.2
	state=$(cat "$fz/freezer.state")
	start_daemon "${daemon_opts[@]}"
	check "after kill -9 of tenantd with the tenant ($state) and its volume frozen, a new tenantd starts" '[[ $? == 0 ]]'
	check "it thawed the tenant and its volume: exec writes to the volume" \
		'timeout 10 "$ctl" exec bk-sandbox -- /bin/sh -c "echo after-crash >/data/h && cat /data/h" 2>&1 | grep -q after-crash'
	check "and removed the half-made snapshot image and the freezer cgroup" \
		'[[ ! -e $storage/bk-sandbox/data.snap && ! -d $fz ]]'
	check "the event says so" '"$ctl" events -n 50 2>&1 | grep -q "event=backup-recovered tenant=bk-sandbox"'
	check "the tenant was adopted, not restarted" '[[ $(json_field bk-sandbox pid) == "$init" ]]'
else
	skip "NO v1 FREEZER or fsfreeze: the crash recovery is not tested"
fi

# Retention: keep.last is 3, and forget --prune runs after each backup, for this
# tenant's snapshots only.
for _ in 1 2 3; do "$ctl" backup bk-sandbox >/dev/null 2>&1; done
kept=$(RESTIC_PASSWORD_FILE=$tmp/backup.pass restic -r "$repo" snapshots --json --tag tenant=bk-sandbox 2>/dev/null |
	python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
check "after 4 backups with keep.last 3, 3 snapshots of the tenant remain ($kept)" '[[ $kept == 3 ]]'

# kill -9 of the backup worker while restic uploads the copy: tenantd answers with the
# failure, removes the copy and restic's cgroup, and the tenant runs on.
"$ctl" backup bk-sandbox >"$tmp/killed.out" 2>&1 &
bpid=$!
worker=""
for _ in $(seq 200); do
	# the worker: the parent of restic, which reads the copy it has mounted
	worker=$(ps -eo pid=,ppid=,comm= | awk '$3 == "restic" { print $2; exit }')
	[[ -n $worker && -e $storage/bk-sandbox/data.snap ]] && break
	worker=""
	sleep 0.02
done
if [[ -n $worker ]] && [[ $(ps -o ppid= -p "$worker" | tr -d ' ') == "$daemon_pid" ]]; then
	kill -KILL "$worker"
	wait "$bpid"
	rc=$?
	out=$(cat "$tmp/killed.out")
	check "kill -9 of the worker during the upload: the backup fails ($out)" '[[ $rc != 0 ]]'
	# restic dies with its worker (PDEATHSIG), a moment after tenantd answered (its
	# namespace's mount of the copy is taken down as it exits, and its orphan is reaped
	# by whoever adopts it): tenantd removes the cgroup once its last process has gone.
	for _ in $(seq 200); do
		[[ ! -e $storage/bk-sandbox/data.snap && ! -e /sys/fs/cgroup/cpu/tenantd/backup-of-bk-sandbox ]] && break
		sleep 0.1
	done
	left=""
	[[ -e $storage/bk-sandbox/data.snap ]] && left+=" the copy"
	[[ -e /sys/fs/cgroup/cpu/tenantd/backup-of-bk-sandbox ]] &&
		left+=" the cgroup, holding: $(ps -o pid=,stat=,comm= -p "$(tr '\n' , </sys/fs/cgroup/cpu/tenantd/backup-of-bk-sandbox/cgroup.procs)0" | tr '\n' ' ')" &&
		left+="; in: $(for c in /sys/fs/cgroup/*/tenantd/backup-of-bk-sandbox; do echo "$c:$(tr '\n' , <"$c/cgroup.procs")"; done | tr '\n' ' ')" &&
		left+="; tenantd said: $(grep -i "backup-of\|cgroup" "$tmp/tenantd.log" | tail -3 | tr '\n' ' ')"
	"$ctl" exec bk-sandbox -- /bin/cat /data/f >/dev/null 2>&1 || left+=" (exec fails)"
	check "and the copy and restic's cgroup are gone, the tenant runs on${left:+ (left:$left)}" \
		'[[ ! -e $storage/bk-sandbox/data.snap && ! -e /sys/fs/cgroup/cpu/tenantd/backup-of-bk-sandbox ]] &&
		 "$ctl" exec bk-sandbox -- /bin/cat /data/f >/dev/null 2>&1'
else
	wait "$bpid"
	skip "the upload ended before the test found the worker: kill -9 of the worker not tested"
	skip "the upload ended before the test found the worker: kill -9 of the worker not tested"
fi

# backup.schedule: tenantd runs the backup itself. With "15m" the first one is due at
# tenantd's start (here: the tenant's arrival) plus the tenant's jitter, a hash of its
# name under a tenth of the interval: 2 s for this name (spec/backup_schedule.c).
manifest sandbox bk-sched82 '"schedule": "15m",' >"$tmp/manifests/bk-sched82.json"
tenants+=(bk-sched82)
"$ctl" reload >/dev/null 2>&1
wait_state bk-sched82 running 20
for _ in $(seq 120); do
	"$ctl" events -n 200 2>/dev/null | grep -q "event=backup tenant=bk-sched82" && break
	sleep 0.5
done
out=$("$ctl" events -n 200 2>&1 | grep "tenant=bk-sched82")
check "a scheduled backup starts by itself and succeeds" \
	'grep -q "event=backup-started tenant=bk-sched82 by=schedule" <<<"$out" && grep -q "event=backup tenant=bk-sched82 result=.*snapshot data=" <<<"$out"'
out=$("$ctl" backups bk-sched82 2>&1)
check "its one snapshot is in the repository, listed apart from bk-sandbox's ($out)" \
	'[[ $(grep -c " data " <<<"$out") == 1 ]]'

# A real PostgreSQL under continuous inserts (one row per statement, autocommit) is
# backed up and restored --as a new tenant, which must start and hold at least the rows
# committed before the backup began: for a sandbox, and from the same manifest with only
# "isolation" changed for a microVM, whose guest agent freezes the volume (FIFREEZE)
# inside the guest. The microVM's waits are longer: PostgreSQL under TCG takes tens of
# seconds to create its cluster. Its socket is in /tmp, which both backends give every
# tenant (a declared tmpfs would do as well now that a microVM's guest makes one).
pgbin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
pg_ready=0
if [[ -n $pgbin && -x $pgbin/postgres && -x $pgbin/initdb && -x $pgbin/psql ]]; then
	pg_ready=1
	mkdir -p "$tmp/pg"
	cat >"$tmp/pg/run.sh" <<'SH'
D=/var/lib/postgresql/db
[ -f $D/PG_VERSION ] || initdb -D $D -U pg --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null || exit 1
exec postgres -D $D -k /tmp -c listen_addresses= -c shared_buffers=16MB
SH
fi
pg() { # SQL TENANT
	"$ctl" exec "$2" -- /bin/sh -c "psql -X -v ON_ERROR_STOP=1 -h /tmp -U pg -d postgres -Atc \"$1\"" 2>&1
}
pg_up() { # TENANT SECONDS: wait for the server
	local i
	for i in $(seq $(($2 * 2))); do
		[[ $(pg "select 1" "$1") == 1 ]] && return 0
		sleep 0.5
	done
	return 1
}
# pg_case ISOLATION NAME WAIT: the database case for one backend (tenants NAME, NAME-2)
pg_case() {
	local iso=$1 name=$2 wait=$3 copy=$2-2 inserter before during out t0 took restored log
	if ((!pg_ready)); then
		for _ in 1 2 3 4 5; do
			skip "$iso: NO POSTGRESQL (apt-get install postgresql): the database backup was not tested"
		done
		return
	fi
	cat >"$tmp/manifests/$name.json" <<JSON
{ "name": "$name", "isolation": "$iso", "exec": ["/bin/sh", "/t/run.sh"], "user": "1000:1000",
  "root": "host-system", "env": { "LANG": "C.UTF-8", "PATH": "$pgbin:/usr/bin:/bin" },
  "mounts": [ { "source": "$tmp/pg", "target": "/t", "mode": "ro" } ],
  "volumes": [ { "name": "pgdata", "target": "/var/lib/postgresql", "size": "256M" } ],
  "backup": { "repository": "$repo", "password_file": "$tmp/backup.pass", "keep": { "last": 3 } } }
JSON
	tenants+=("$name" "$copy")
	"$ctl" reload >/dev/null 2>&1
	wait_state "$name" running "$wait" && pg_up "$name" "$wait"
	pg "create table t (a serial primary key, b text)" "$name" >/dev/null
	"$ctl" exec "$name" -- /bin/sh -c 'yes "insert into t (b) select md5(random()::text);" |
		psql -X -q -h /tmp -U pg -d postgres >/dev/null 2>&1' &
	inserter=$!
	bg+=("$inserter")
	sleep 3
	before=$(pg "select count(*) from t" "$name")
	out=$("$ctl" backup "$name" 2>&1)
	during=$(pg "select count(*) from t" "$name")
	check "$iso: postgres: backed up under continuous inserts ($before rows before, $during after; $out)" \
		'[[ $out == *"snapshot pgdata="*freeze_ms=* && $before =~ ^[0-9]+$ && $during -gt $before ]]'
	kill "$inserter" 2>/dev/null
	wait "$inserter" 2>/dev/null
	# Restored --as a new tenant while the source runs on: the copy's server must come
	# up on the files (crash recovery from the frozen copy is expected; no PANIC, no
	# invalid page) as its own user, in its own uid range.
	t0=$(date +%s%N)
	out=$("$ctl" restore --as "$copy" "$name" 2>&1)
	took=$((($(date +%s%N) - t0) / 1000000))
	restored=""
	pg_up "$copy" "$wait" && restored=$(pg "select count(*) from t" "$copy")
	check "$iso: postgres: restored --as $copy ($took ms), it starts and answers SELECT count(*) (restore: $out)" \
		'[[ $out == *"$copy started"* && $restored =~ ^[0-9]+$ ]]'
	check "$iso: postgres: it holds at least the rows committed before the backup ($restored >= $before)" \
		'[[ $restored =~ ^[0-9]+$ && $restored -ge $before ]]'
	log=$("$ctl" logs -n 400 "$copy" 2>&1)
	check "$iso: postgres: no PANIC or invalid page in its log, and its own check of the table passes" \
		'! grep -qE "PANIC|invalid page|could not read block" <<<"$log" && [[ $(pg "select count(*) = count(distinct a) from t" "$copy") == t ]]'
	check "$iso: postgres: the source ran on through the restore" '[[ $(pg "select count(*) >= $during from t" "$name") == t ]]'
	"$ctl" stop "$name" "$copy" >/dev/null 2>&1
}
pg_case sandbox bk-pg 60

# The microVM: the same manifest with isolation "microvm", one backup and one restore.
vm_setup
if ((vm_ready)); then
	manifest microvm bk-vm >"$tmp/manifests/bk-vm.json"
	tenants+=(bk-vm)
	"$ctl" reload >/dev/null 2>&1
	round microvm bk-vm 120
	"$ctl" stop bk-vm >/dev/null 2>&1
	pg_case microvm bk-vpg 240
else
	skip "microvm: $vm_why: no microVM was backed up"
	for _ in 1 2 3 4 5; do
		skip "microvm: $vm_why: the database backup was not tested in a microVM"
	done
fi

done_testing
