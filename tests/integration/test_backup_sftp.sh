#!/usr/bin/env bash
# tests/integration/test_backup_sftp.sh — backups to an sftp repository through a real
# sshd (issue 14), under a real tenantd, for a sandbox and a microVM from one manifest
# (only "isolation" changes). sshd listens on 127.0.0.1 (a free port; traffic only over
# loopback) with a host key of the test's own; a test user made and removed by the test
# owns the repository, and logs in only with a test key (backup.ssh_key), the host key
# known only from a known_hosts file of the test's own (backup.known_hosts). Checked: a
# backup, the list, a restore in place bring the data back through sshd; a wrong host key
# and a key the server does not know fail with words that name the manifest key to fix;
# key files anyone may read are refused.
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
sshd=/usr/sbin/sshd
[[ -x $sshd ]] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ||
	skip_all "NO SSHD OR SSH (apt-get install openssh-server openssh-client; make test-deps): the sftp repository was not tested"
command -v useradd >/dev/null || skip_all "NO useradd (passwd): no test user for sshd; nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-bksftp.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
sftp_user=tb-sftp
made_user="" made_run_sshd="" sshd_pid="" have_libvirt=0
cleanup() {
	local t m
	daemon_cleanup
	[[ -n $sshd_pid ]] && kill -TERM "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
	[[ -n $made_user ]] && userdel "$sftp_user" 2>/dev/null
	[[ -n $made_run_sshd ]] && rmdir /run/sshd 2>/dev/null
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

# ---- the server: a test user, its repository directory, sshd on 127.0.0.1 ----
userdel "$sftp_user" 2>/dev/null # left by a test that was killed
# "*": no password works, and the account is not locked (sshd refuses locked ones)
useradd --no-create-home --home-dir "$tmp/home" --shell /usr/sbin/nologin --user-group \
	-p '*' "$sftp_user" || bail "useradd $sftp_user"
made_user=1
d=$tmp/ssh
mkdir -p "$d/keys" "$tmp/home/repo" && chmod 755 "$d" "$d/keys"
chown -R "$sftp_user:$sftp_user" "$tmp/home"
ssh-keygen -q -t ed25519 -N '' -f "$d/host" && ssh-keygen -q -t ed25519 -N '' -f "$d/client" &&
	ssh-keygen -q -t ed25519 -N '' -f "$d/stranger" && ssh-keygen -q -t ed25519 -N '' -f "$d/other-host" ||
	bail "ssh-keygen"
cp "$d/client.pub" "$d/keys/$sftp_user" && chmod 644 "$d/keys/$sftp_user"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[[ -d /run/sshd ]] || { mkdir -m 755 /run/sshd && made_run_sshd=1; }
cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $d/host
PidFile $d/sshd.pid
AuthorizedKeysFile $d/keys/%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $sftp_user
Subsystem sftp internal-sftp
ForceCommand internal-sftp
AllowTcpForwarding no
EOF
"$sshd" -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
sshd_pid=$!
for _ in $(seq 50); do
	bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
	sleep 0.1
done
check "a real sshd listens on 127.0.0.1:$port for the test user" 'kill -0 "$sshd_pid" 2>/dev/null'

# The operator's files: the password, the key (root's, 0600), the server's host key.
printf 'correct horse battery staple\n' >"$tmp/backup.pass"
cp "$d/client" "$tmp/backup_ed25519"
printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$d/host.pub")" >"$tmp/known_hosts"
chmod 600 "$tmp/backup.pass" "$tmp/backup_ed25519"
chmod 644 "$tmp/known_hosts"
repo="sftp://$sftp_user@127.0.0.1:$port/$tmp/home/repo"
sshcmd="ssh -F /dev/null -i $tmp/backup_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$tmp/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -p $port -l $sftp_user -s 127.0.0.1 sftp"
out=$(restic -r "$repo" -o sftp.command="$sshcmd" --password-file "$tmp/backup.pass" init 2>&1)
check "the operator makes the repository over sftp ($out)" '[[ -f $tmp/home/repo/config ]]'

busybox=$(command -v busybox || true)
if [[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	mkdir -p "$tmp/root/bin" "$tmp/root/data" "$tmp/root/proc" "$tmp/root/dev" "$tmp/root/sys" \
		"$tmp/root/tmp" "$tmp/root/run" "$tmp/root/etc"
	cp "$busybox" "$tmp/root/bin/busybox"
	for a in sh cat echo sleep ls sync; do ln -s busybox "$tmp/root/bin/$a"; done
else
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the tenants have no shell; nothing was tested"
fi

manifest() { # ISOLATION NAME [KEY FILE] [KNOWN HOSTS FILE]
	cat <<JSON
{ "name": "$2", "isolation": "$1", "exec": ["/bin/sleep", "600"], "user": "1000:1000",
  "root": { "path": "$tmp/root", "readonly": true },
  "volumes": [ { "name": "data", "target": "/data", "size": "32M" } ],
  "backup": { "repository": "$repo", "password_file": "$tmp/backup.pass",
              "ssh_key": "${3:-$tmp/backup_ed25519}", "known_hosts": "${4:-$tmp/known_hosts}",
              "keep": { "last": 5 } } }
JSON
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
manifest sandbox bs-sandbox >"$tmp/manifests/bs-sandbox.json"
tenants+=(bs-sandbox)
start_daemon --storage "$tmp/storage"
check "tenantd starts" '[[ $? == 0 ]]'

# round ISOLATION NAME TIMEOUT: write, back up, list, change, stop, restore, read.
round() {
	local iso=$1 name=$2 wait=$3 out id
	wait_state "$name" running "$wait"
	"$ctl" exec "$name" -- /bin/sh -c 'echo sftp-marker-51c2 >/data/f && sync' >/dev/null 2>&1
	out=$("$ctl" backup "$name" 2>&1)
	id=$(sed -n 's/.*snapshot data=\([0-9a-f]*\).*/\1/p' <<<"$out")
	check "$iso: tenantctl backup to the sftp repository through sshd ($out)" \
		'[[ -n $id && $out == *freeze_ms=* ]]'
	[[ -n $id ]] || sed 's/^/# sshd: /' "$d/sshd.log" | tail -5
	check "$iso: the snapshot is in the repository the test user owns, as that user's files" \
		'[[ -n $(find "$tmp/home/repo/snapshots" -type f -user "$sftp_user") ]]'
	check "$iso: the repository holds no plaintext of the marker" '! grep -rq sftp-marker-51c2 "$tmp/home/repo"'
	out=$("$ctl" backups "$name" 2>&1)
	check "$iso: backups lists it through sshd ($out)" \
		'[[ -n $id ]] && grep -qE "^${id:0:8} +[0-9-]{10} [0-9:]{8} +data +[0-9.]+[BKMGT] +[0-9]+$" <<<"$out"'
	"$ctl" exec "$name" -- /bin/sh -c 'echo changed >/data/f && sync' >/dev/null 2>&1
	"$ctl" stop "$name" >/dev/null 2>&1
	out=$("$ctl" restore --yes --snapshot "$id" "$name" 2>&1)
	check "$iso: restore --yes through sshd restores and starts the tenant ($out)" \
		'[[ $out == *"restored volume data from $id"* && $out == *"$name started"* ]]'
	out=$("$ctl" exec "$name" -- /bin/cat /data/f 2>&1)
	check "$iso: the data backed up is back ($out)" '[[ $out == sftp-marker-51c2 ]]'
}

round sandbox bs-sandbox 20

# What goes wrong, said so that the operator knows which file to fix. Each case is the
# same tenant's manifest with one file changed (reload), then put back.
try_with() { # DESCRIPTION EXPECTED-GLOB KEY-FILE KNOWN-HOSTS-FILE
	local want=$2
	manifest sandbox bs-sandbox "$3" "$4" >"$tmp/manifests/bs-sandbox.json"
	"$ctl" reload >/dev/null 2>&1
	wait_state bs-sandbox running 20 >/dev/null # a changed manifest restarts the tenant
	out=$("$ctl" backup bs-sandbox 2>&1)
	rc=$?
	# shellcheck disable=SC2053 # $want is a glob on purpose
	check "$1 (rc $rc: $(head -c 400 <<<"$out"))" '[[ $rc == 1 && $out == $want ]]'
}
printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$d/other-host.pub")" >"$tmp/known_hosts.wrong"
: >"$tmp/known_hosts.empty"
cp "$d/stranger" "$tmp/stranger_ed25519"
cp "$tmp/backup_ed25519" "$tmp/readable_ed25519"
chmod 644 "$tmp/known_hosts.wrong" "$tmp/known_hosts.empty" "$tmp/readable_ed25519"
chmod 600 "$tmp/stranger_ed25519"
try_with "a host key other than the server's is refused, naming backup.known_hosts" \
	"*backup.known_hosts ($tmp/known_hosts.wrong)*" \
	"$tmp/backup_ed25519" "$tmp/known_hosts.wrong"
try_with "an unknown host (empty known_hosts) is refused, not asked about nor learnt" \
	"*backup.known_hosts ($tmp/known_hosts.empty)*" "$tmp/backup_ed25519" "$tmp/known_hosts.empty"
check "and nothing was written to that known_hosts" '[[ ! -s $tmp/known_hosts.empty ]]'
try_with "a key the server does not know is refused, naming backup.ssh_key" \
	"*server refused the key backup.ssh_key ($tmp/stranger_ed25519)*" "$tmp/stranger_ed25519" "$tmp/known_hosts"
try_with "an ssh key others can read is refused before ssh runs" \
	"*ssh key (backup.ssh_key) $tmp/readable_ed25519 must be a file of root's*chmod 600*" \
	"$tmp/readable_ed25519" "$tmp/known_hosts"
chmod 666 "$tmp/known_hosts.wrong"
try_with "a known_hosts file others can write is refused" \
	"*known hosts file (backup.known_hosts) $tmp/known_hosts.wrong must be*can not write*" \
	"$tmp/backup_ed25519" "$tmp/known_hosts.wrong"
check "the tenant is not left frozen by any of them" 'timeout 10 "$ctl" exec bs-sandbox -- /bin/cat /data/f >/dev/null 2>&1'
manifest sandbox bs-sandbox >"$tmp/manifests/bs-sandbox.json"
"$ctl" reload >/dev/null 2>&1
wait_state bs-sandbox running 20 >/dev/null
out=$("$ctl" backup check bs-sandbox 2>&1)
check "backup check runs restic check through sshd ($(tail -1 <<<"$out"))" '[[ $out == *"no errors were found"* ]]'

# The microVM: the same manifest with isolation "microvm".
vm_setup
if [[ -z $vm_why ]]; then
	"$ctl" stop bs-sandbox >/dev/null 2>&1
	manifest microvm bs-vm >"$tmp/manifests/bs-vm.json"
	tenants+=(bs-vm)
	"$ctl" reload >/dev/null 2>&1
	if wait_state bs-vm running 180; then
		round microvm bs-vm 10
	else
		fail "microvm: bs-vm does not start: $("$ctl" logs -n 3 bs-vm 2>&1 | tr '\n' ' ')"
	fi
else
	for _ in 1 2 3 4 5 6; do skip "microvm: $vm_why: no microVM was backed up over sftp"; done
fi

done_testing
