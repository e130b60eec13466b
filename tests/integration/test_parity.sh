#!/usr/bin/env bash
# test_parity.sh — one manifest, both backends (issue 12): each case is written once,
# as a sandbox manifest, and run by `tenantctl run` twice, the second time with only
# "isolation" changed to "microvm". Both runs must print and refuse the same things.
#
# Cases:
#  - "root": "host-system" with read-only shares at /share and /srv/share, targets that
#    do not exist in the root: the service reads the share's file through both, and a
#    write to the share or to the root fails. The owner the host's /usr shows is the one
#    stated difference: nobody:nogroup in a sandbox, root:root in a microVM.
#  - a read-only image root (a static busybox, nothing else): it runs with /proc, the
#    share and the system's directories made in a writable skeleton over it, and the
#    root and the image stay read-only.
#  - declared tmpfs mounts, one read-write with a size and noexec (a share inside it),
#    one read-only: the same file system, size limit (ENOSPC past it), mode and options
#    in both, writable by the service's user, empty again at the next start.
#  - noexec on a read-write and a read-only bind mount: a program there does not run,
#    and /proc/mounts says noexec, in both.
#  - a read-only share below a directory QEMU's user cannot traverse: the sandbox reads
#    it, the microVM is refused in one line that says what to run.
#  - the host-system root's /etc: what a Debian userland reaches through it (awk through
#    /etc/alternatives, the CA certificates and their hash links, openssl.cnf, localtime,
#    services, protocols, the system accounts) works in both, nothing of the operator's
#    private /etc (shadow, ssh keys, sudoers, machine-id ...) is in either, and the two
#    /etc trees are the same, entry for entry, link targets and file contents included.
#    The host's other /usr links into /etc (found now with find -lname, e.g. OpenJDK's
#    conf/security/java.security) resolve in both exactly when the host lets others read
#    them, a refused name (ssl/private, ssh, shadow ...) never.
#
# The microVM half needs libvirt, QEMU and make vm-image, and skips loudly without
# them; the sandbox half still runs. Every domain is named tenantd-par-*, transient,
# and destroyed in the EXIT trap if a run left it behind.
set -u
cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sandbox.sh
source tests/lib/libvirt.sh
require_sandbox

tmp=$(mktemp -d /tmp/tenantd-parity.XXXXXX)
# QEMU runs as an unprivileged user and serves the read-only shares itself.
chmod 755 "$tmp"
state=$tmp/state
tenants=() bg=()
cleanup() {
	local t
	for t in "${tenants[@]}"; do
		vm_domain_purge "$t"
		rm -rf "/run/tenantd-vm/$t"
	done
	libvirt_release
	sandbox_cleanup
}
trap cleanup EXIT

vm_why=""
vmdir=$PWD/$BUILD/vm
vm_probe

# run_both NAME: runs $tmp/NAME.json as a sandbox (sets sb_rc, sb_out, sb_err) and, with
# "isolation" changed to "microvm", as a microVM (vm_rc, vm_out, vm_err; unset when the
# microVM half cannot run here).
run_both() {
	local name=$1
	tenants+=("$name")
	sb_out=$(timeout -k 5 60 "$ctl" run --state "$state" "$tmp/$name.json" 2>"$tmp/err")
	sb_rc=$? sb_err=$(cat "$tmp/err")
	unset vm_rc vm_out vm_err
	[[ -z $vm_why ]] || return 0
	sed 's/"isolation": "sandbox"/"isolation": "microvm"/' "$tmp/$name.json" >"$tmp/$name.vm.json"
	grep -q '"isolation": "microvm"' "$tmp/$name.vm.json" || bail "$name.json names no isolation"
	vm_out=$(timeout -k 5 200 "$ctl" run --state "$state" "$tmp/$name.vm.json" 2>"$tmp/err")
	vm_rc=$? vm_err=$(cat "$tmp/err")
}

# both DESC EXPR: checks EXPR for the sandbox run (with $rc, $out, $err) and for the
# microVM run, or skips the microVM half loudly.
both() {
	local desc=$1 expr=$2 rc out err
	rc=$sb_rc out=$sb_out err=$sb_err
	check "sandbox: $desc" "$expr"
	if [[ -n $vm_why ]]; then
		skip "microvm: $desc: $vm_why"
		return
	fi
	rc=$vm_rc out=$vm_out err=$vm_err
	check "microvm: $desc" "$expr"
}

# ---- host-system root, read-only shares at targets the root does not have ----
mkdir -p "$tmp/share"
chmod 755 "$tmp/share"
echo "shared content" >"$tmp/share/file"
chmod 644 "$tmp/share/file"
script='cat /share/file /srv/share/file
for f in /share/new /srv/share/new /new /srv/new; do
	if echo x >"$f" 2>/dev/null; then echo "WROTE $f"; else echo "refused $f"; fi
done
echo "usr owner=$(stat -c %u:%g /usr/bin/env) $(stat -c %U:%G /usr/bin/env)"'
cat >"$tmp/par-hostsys.json" <<EOF
{ "name": "par-hostsys", "isolation": "sandbox", "root": "host-system", "user": "1000:1000",
  "exec": ["/bin/sh", "-c", $(printf '%s' "$script" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')],
  "mounts": [ { "source": "$tmp/share", "target": "/share", "mode": "ro" },
              { "source": "$tmp/share", "target": "/srv/share", "mode": "ro" } ],
  "network": { "mode": "none" } }
EOF
run_both par-hostsys
both "host-system root: the service runs (status 0)" '[[ $rc -eq 0 ]]'
both "a read-only share at /share, which the root lacks, shows the share's file" \
	'[[ $out == "shared content"* ]]'
both "... and at /srv/share, two levels the root lacks" \
	'[[ $(grep -c "shared content" <<<"$out") -eq 2 ]]'
both "writes to either share are refused" \
	'[[ $out == *"refused /share/new"* && $out == *"refused /srv/share/new"* && ! -e $tmp/share/new ]]'
both "writes to the root, at its top and in a created directory, are refused" \
	'[[ $out == *"refused /new"* && $out == *"refused /srv/new"* && $out != *WROTE* ]]'

# The one difference an operator sees here, inherent and documented (manifest.md,
# "host-system"): the host's root-owned /usr shows as nobody:nogroup in a sandbox (host
# root is not mapped into the tenant's user namespace, and must not be) and as root:root
# in a microVM (QEMU's 9p share passes the host's ids to the guest's kernel). Both are
# read-only; neither lets the tenant act as the files' owner.
rc=$sb_rc out=$sb_out err=$sb_err
check "sandbox: the host's /usr shows as nobody:nogroup (unmapped host root): $(grep -o "usr owner=.*" <<<"$out")" \
	'[[ $out == *"usr owner=65534:65534 nobody:nogroup"* ]]'
if [[ -n $vm_why ]]; then
	skip "microvm: the host's /usr shows as root:root: $vm_why"
else
	out=$vm_out
	check "microvm: the host's /usr shows as root:root (the 9p share's ids): $(grep -o "usr owner=.*" <<<"$out")" \
		'[[ $out == *"usr owner=0:0 root:root"* ]]'
fi

# ---- a read-only image root without /proc, /dev, /tmp or the mount point ----
# As bubblewrap runs it: the missing directories are made in a writable skeleton over
# the image (never in the image), and the root is read-only all the same.
busybox=$(command -v busybox || true)
if [[ -z $busybox ]] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	skip "read-only image root: NO STATIC BUSYBOX (apt-get install busybox-static): no root to run"
else
	mkdir -p "$tmp/img/bin"
	cp "$busybox" "$tmp/img/bin/busybox"
	for a in sh cat echo ls; do ln -s busybox "$tmp/img/bin/$a"; done
	chmod -R go-w "$tmp/img"
	before=$(cd "$tmp/img" && find . | sort)
	script='cat /share/file
ls /proc/self/status >/dev/null 2>&1 && echo has-proc
for f in /share/new /new /bin/new; do
	if echo x >"$f" 2>/dev/null; then echo "WROTE $f"; else echo "refused $f"; fi
done'
	cat >"$tmp/par-image.json" <<EOF
{ "name": "par-image", "isolation": "sandbox", "user": "0:0",
  "root": { "path": "$tmp/img", "readonly": true },
  "exec": ["/bin/sh", "-c", $(printf '%s' "$script" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')],
  "mounts": [ { "source": "$tmp/share", "target": "/share", "mode": "ro" } ],
  "network": { "mode": "none" } }
EOF
	run_both par-image
	both "a read-only image root without /proc or /share runs (status 0) and reads the share" \
		'[[ $rc -eq 0 && $out == "shared content"* ]]'
	both "... with a /proc of its own" '[[ $out == *has-proc* ]]'
	both "... and writes to the share, the root and its files are refused" \
		'[[ $out == *"refused /share/new"* && $out == *"refused /new"* && $out == *"refused /bin/new"* && $out != *WROTE* ]]'
	check "the image directory on the host is unchanged" \
		'[[ $(cd "$tmp/img" && find . | sort) == "$before" ]]'
fi

# ---- declared tmpfs mounts (size, mode, noexec), one with a share inside it ----
# The guest makes them as a sandbox does: a tmpfs at the target with the declared size
# (writing past it fails with ENOSPC), mode 1777 (the tmpfs default, so /proc/mounts
# shows no mode=), nosuid and nodev, noexec and read-only as declared, empty at every
# start. The share inside /scratch is listed first: both
# backends mount shallower targets first, whatever the order in the file.
script='m=/scratch/persist
if [ -e $m ]; then echo PERSISTED; else echo fresh; fi
if echo x >$m; then echo wrote-marker; fi
for t in /scratch /srv/ro-tmp /tmp; do
	echo "$t owner=$(stat -c %u:%g $t)"
done
if echo x >/tmp/by-service; then echo wrote-tmp; fi
echo "/run owner=$(stat -c %u:%g /run) perm=$(stat -c %a /run)"
if echo x >/run/by-service.pid; then echo wrote-run; fi
for t in /scratch /srv/ro-tmp /tmp /run; do
	echo "$t fstype=$(stat -f -c %T $t) perm=$(stat -c %a $t)"
	echo "$t bytes=$(( $(stat -f -c %b $t) * $(stat -f -c %S $t) ))"
	while read -r _ mnt _ opts _; do
		if [ "$mnt" = "$t" ]; then echo "$t opts=$opts"; fi
	done </proc/mounts
done
if e=$(dd if=/dev/zero of=/scratch/fill bs=64k count=128 2>&1); then
	echo FILLED
else
	echo "dd: $e"
fi
echo "filled=$(( $(stat -c %s /scratch/fill) / 1024 ))k"
rm -f /scratch/fill
cat /scratch/share/file
cp /bin/true /scratch/true && chmod 755 /scratch/true
if /scratch/true 2>/dev/null; then echo EXECUTED; else echo exec-refused; fi
if echo x >/srv/ro-tmp/f 2>/dev/null; then echo "WROTE /srv/ro-tmp"; else echo "refused /srv/ro-tmp"; fi'
cat >"$tmp/par-tmpfs.json" <<EOF
{ "name": "par-tmpfs", "isolation": "sandbox", "root": "host-system", "user": "1000:1000",
  "exec": ["/bin/sh", "-c", $(printf '%s' "$script" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')],
  "mounts": [ { "source": "$tmp/share", "target": "/scratch/share", "mode": "ro" },
              { "type": "tmpfs", "target": "/scratch", "size": "4M", "mode": "rw", "noexec": true },
              { "type": "tmpfs", "target": "/srv/ro-tmp", "size": "1M", "mode": "ro" } ],
  "network": { "mode": "none" } }
EOF
run_both par-tmpfs
# has_opts MOUNT OPT...: the mount's options in /proc/mounts, as the service saw them,
# hold every OPT.
has_opts() {
	local line o
	line=$(grep "^$1 opts=" <<<"$out") || return 1
	for o in "${@:2}"; do
		[[ ,${line#* opts=}, == *",$o,"* ]] || return 1
	done
}
both "tmpfs: the service runs (status 0)" '[[ $rc -eq 0 ]]'
both "tmpfs: /scratch is a tmpfs, mode 1777" '[[ $out == *"/scratch fstype=tmpfs perm=1777"* ]]'
both "tmpfs: its size is the declared 4M" '[[ $out == *"/scratch bytes=4194304"* ]]'
both "tmpfs: mounted rw,nosuid,nodev,noexec,size=4096k" \
	'has_opts /scratch rw nosuid nodev noexec size=4096k'
both "tmpfs: the service's user (1000) writes there" '[[ $out == *wrote-marker* ]]'
# Owned by the tenant's root, as /tmp is on any Linux system: mode 1777 lets the
# service's user write there, its sticky bit keeps one user's files from another, and
# no user of the tenant but root can change its mode. Never the overflow id 65534,
# which is what a sandbox shows for an id of the host's it does not map.
both "tmpfs: the declared tmpfs mounts are owned by the tenant's root (0:0)" \
	'[[ $out == *"/scratch owner=0:0"* && $out == *"/srv/ro-tmp owner=0:0"* ]]'
both "tmpfs: so is the default /tmp, where the service's user writes too" \
	'[[ $out == *"/tmp owner=0:0"* && $out == *wrote-tmp* ]]'
# The default /run belongs to the service's user (mode 0755), where it writes its pid
# file or socket as a service started by systemd with RuntimeDirectory= would.
both "tmpfs: the default /run is the service's user's (1000:1000, 0755), who writes there" \
	'[[ $out == *"/run owner=1000:1000 perm=755"* && $out == *wrote-run* ]]'
both "tmpfs: the default /tmp is a 64M tmpfs, mode 1777, nosuid,nodev" \
	'[[ $out == *"/tmp fstype=tmpfs perm=1777"* && $out == *"/tmp bytes=67108864"* ]] && has_opts /tmp rw nosuid nodev'
both "tmpfs: the default /run is a 16M tmpfs, nosuid,nodev,noexec" \
	'[[ $out == *"/run fstype=tmpfs perm=755"* && $out == *"/run bytes=16777216"* ]] && has_opts /run rw nosuid nodev noexec'
# filled: the 4M less the marker's block (and rounding to pages).
both "tmpfs: writing past 4M fails with ENOSPC, after 4000k to 4096k" \
	'[[ $out == *"No space left on device"* && $out != *FILLED* && $out =~ filled=(40[0-9][0-9])k && ${BASH_REMATCH[1]} -le 4096 ]]'
both "tmpfs: a program copied there does not run (noexec)" \
	'[[ $out == *exec-refused* && $out != *EXECUTED* ]]'
both "tmpfs: a share inside it (listed before it) is mounted on top of it" \
	'[[ $out == *"shared content"* ]]'
both "tmpfs: the read-only one is a 1M tmpfs, mounted ro,nosuid,nodev, and refuses writes" \
	'[[ $out == *"/srv/ro-tmp fstype=tmpfs perm=1777"* && $out == *"/srv/ro-tmp bytes=1048576"* && $out == *"refused /srv/ro-tmp"* ]] && has_opts /srv/ro-tmp ro nosuid nodev'
both "tmpfs: empty at the first start" '[[ $out == fresh* ]]'
run_both par-tmpfs
both "tmpfs: nothing written there is left at the next start" \
	'[[ $rc -eq 0 && $out == fresh* && $out != *PERSISTED* ]]'

# ---- the host-system root's /etc: the same in both, nothing private ----
# A Debian userland reaches /etc through links: /usr/bin/awk -> /etc/alternatives/awk,
# /usr/lib/ssl/certs -> /etc/ssl/certs (whose hash links name the .pem links beside
# them), /usr/lib/ssl/openssl.cnf -> /etc/ssl/openssl.cnf, /etc/localtime -> zoneinfo.
# The listing is every entry of /etc with its type and link target, and a checksum of
# every regular file but the CA directory's (too many to print; its entries are listed).
script='echo 1 2 | awk "{print \"awk:\" \$2}"
echo "services:$(getent services ssh | tr -s " " | cut -d" " -f2)"
echo "protocols:$(getent protocols tcp | tr -s " " | cut -d" " -f2)"
echo "self:$(getent passwd 1000 | cut -d: -f1)"
echo "system:$(getent passwd www-data | cut -d: -f3)"
c=$(ls /etc/ssl/certs | grep "\.0$" | head -n 1)
if [ -n "$c" ] && grep -q "BEGIN CERTIFICATE" "/etc/ssl/certs/$c" &&
	grep -q "BEGIN CERTIFICATE" /usr/lib/ssl/certs/ca-certificates.crt; then echo certs-ok; fi
if [ -r /usr/lib/ssl/openssl.cnf ]; then echo openssl-cnf-ok; fi
if [ -r /etc/localtime ]; then echo "localtime:$(date +%Z)"; fi
for f in shadow shadow- gshadow gshadow- passwd- group- sudoers sudoers.d ssh ssl/private \
	machine-id subuid subgid tenantd libvirt crypttab fstab security pam.d; do
	if [ -e "/etc/$f" ] || [ -L "/etc/$f" ]; then echo "LEAK /etc/$f"; fi
done
if awk -F: "\$2 != \"x\" || (\$3 >= 1000 && \$3 < 65534 && \$3 != 1000)" /etc/passwd | grep -q .; then
	echo "LEAK a password or a human account in /etc/passwd"
fi
echo "== listing"
find /etc -mindepth 1 -printf "%P %y %l\n" | LC_ALL=C sort
find /etc -type f ! -path "/etc/ssl/certs/*" -exec md5sum {} + | LC_ALL=C sort -k 2'
# The host's /usr links into /etc that the fixed part does not cover (alternatives and
# ssl/certs are trees of it): each must resolve in the tenant exactly when it resolves
# for others on the host (nobody), but for the refused names (host/etc_synth.c).
usr_links=() usr_expect="" pick=""
while IFS= read -r l; do
	[[ $l =~ ^[A-Za-z0-9._/+-]+$ ]] || continue
	usr_links+=("$l")
	want=U
	if setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$l"; then want=R; fi
	# The target as a path from /, its own links not followed (systemd's
	# environment.d link is relative: ../../../etc/environment).
	target=$(readlink "$l")
	[[ $target == /* ]] || target=$(realpath -m -s "$(dirname "$l")/$target")
	case $target in
	/etc/shadow* | /etc/gshadow* | /etc/passwd- | /etc/group- | /etc/sub[ug]id* | /etc/sudoers* | \
		/etc/ssh | /etc/ssh/* | /etc/ssl/private | /etc/ssl/private/* | /etc/machine-id | \
		/etc/tenantd* | /etc/libvirt* | /etc/crypttab | /etc/fstab | /etc/security* | /etc/pam.d* | \
		/etc/environment)
		want=U ;;
	esac
	usr_expect+="usrlink $want $l"$'\n'
	# OpenJDK's security configuration when it is installed, else the first one.
	if [[ $want == R && -f $l && (-z $pick || $l == */java.security) ]]; then pick=$l; fi
done < <(find /usr -lname '/etc/*' ! -lname '/etc/alternatives/*' ! -lname '/etc/ssl/certs*' \
	2>/dev/null | LC_ALL=C sort)
mkdir -p "$tmp/etclinks"
printf '%s\n' "${usr_links[@]}" >"$tmp/etclinks/list"
chmod -R a+rX "$tmp/etclinks"
script='while read -r l; do
	if [ -r "$l" ]; then echo "usrlink R $l"; else echo "usrlink U $l"; fi
done </etclinks/list
'"$script"
cat >"$tmp/par-etc.json" <<EOF
{ "name": "par-etc", "isolation": "sandbox", "root": "host-system", "user": "1000:1000",
  "exec": ["/bin/sh", "-c", $(printf '%s' "$script" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')],
  "mounts": [ { "source": "$tmp/etclinks", "target": "/etclinks", "mode": "ro" } ],
  "network": { "mode": "none" } }
EOF
run_both par-etc
host_zone=$(date +%Z)
both "/etc: the service runs (status 0)" '[[ $rc -eq 0 ]]'
both "/etc: awk runs (/usr/bin/awk -> /etc/alternatives/awk)" '[[ $out == *"awk:2"* ]]'
both "/etc: services and protocols resolve (getent services ssh, protocols tcp)" \
	'[[ $out == *"services:22/tcp"* && $out == *"protocols:6"* ]]'
both "/etc: the service's user and the host's system accounts have names" \
	'[[ $out == *"self:par-etc"* && $out == *"system:33"* ]]'
both "/etc: the CA bundle and a hash link in /etc/ssl/certs read, through /usr/lib/ssl too" \
	'[[ $out == *certs-ok* ]]'
both "/etc: /usr/lib/ssl/openssl.cnf (-> /etc/ssl/openssl.cnf) reads" '[[ $out == *openssl-cnf-ok* ]]'
if [[ -L /etc/localtime ]]; then
	both "/etc: /etc/localtime names the host's zone ($host_zone)" \
		'[[ $out == *"localtime:$host_zone"* ]]'
else
	skip "/etc/localtime: THE HOST HAS NO /etc/localtime LINK: nothing to pass on"
fi
both "/etc: nothing of the operator's private /etc (shadow, ssh, sudoers, machine-id, human accounts ...)" \
	'[[ $out != *LEAK* ]]'
if [[ -z $pick ]]; then
	skip "/etc: a /usr link into /etc resolves: THE HOST HAS NO /usr LINK TO A FILE OF /etc OTHERS MAY READ (find /usr -lname '/etc/*')"
else
	both "/etc: a /usr link into /etc resolves: $pick -> $(readlink "$pick")" \
		'[[ $out == *"usrlink R $pick"* ]]'
	both "/etc: each of the host's ${#usr_links[@]} other /usr links into /etc resolves as it does for others on the host" \
		'[[ $(grep "^usrlink " <<<"$out")$'"'"'\n'"'"' == "$usr_expect" ]]'
	for side in sb vm; do
		[[ $side == vm && -n $vm_why ]] && continue
		o=${side}_out
		diff <(printf '%s' "$usr_expect") <(grep "^usrlink " <<<"${!o}") | grep '^[<>]' | head -n 20 |
			sed "s/^/#   $side: /"
	done
fi
if [[ -n $vm_why ]]; then
	skip "/etc is the same in both: $vm_why"
else
	sb_list=$(sed -n '/^== listing$/,$p' <<<"$sb_out")
	vm_list=$(sed -n '/^== listing$/,$p' <<<"$vm_out")
	check "/etc is the same in both: every entry, its type, link target and content" \
		'[[ $(wc -l <<<"$sb_list") -gt 50 && $sb_list == "$vm_list" ]]'
	if [[ $sb_list != "$vm_list" ]]; then
		diff <(echo "$sb_list") <(echo "$vm_list") | head -n 60 | sed 's/^/#   /'
	fi
fi

# ---- noexec on bind mounts, read-write and read-only ----
# A sandbox mounts them with MOUNT_ATTR_NOEXEC; the guest mounts the share noexec as
# well, since the host side's own noexec (tenantd-virtiofsd, QEMU's 9p) does not stop
# the guest's kernel from running a file it has read.
mkdir -p "$tmp/rwx" "$tmp/rox"
chown 1000:1000 "$tmp/rwx" # the service's ids on disk, in both backends (manifest.md)
chmod 755 "$tmp/rox"
cp /bin/true "$tmp/rox/true"
chmod 755 "$tmp/rox/true"
script='cp /bin/true /rw/true && chmod 755 /rw/true && echo copied
if /rw/true 2>/dev/null; then echo "EXECUTED /rw"; else echo "refused /rw"; fi
if /ro/true 2>/dev/null; then echo "EXECUTED /ro"; else echo "refused /ro"; fi
if /srv/plain/true 2>/dev/null; then echo "ran /srv/plain"; else echo "REFUSED /srv/plain"; fi
while read -r _ mnt _ opts _; do
	case $mnt in /rw | /ro) echo "$mnt opts=$opts" ;; esac
done </proc/mounts'
cat >"$tmp/par-noexec.json" <<EOF
{ "name": "par-noexec", "isolation": "sandbox", "root": "host-system", "user": "1000:1000",
  "exec": ["/bin/sh", "-c", $(printf '%s' "$script" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')],
  "mounts": [ { "source": "$tmp/rwx", "target": "/rw", "mode": "rw", "noexec": true },
              { "source": "$tmp/rox", "target": "/ro", "mode": "ro", "noexec": true },
              { "source": "$tmp/rox", "target": "/srv/plain", "mode": "ro" } ],
  "network": { "mode": "none" } }
EOF
run_both par-noexec
both "noexec: the service runs (status 0) and writes to the read-write bind" \
	'[[ $rc -eq 0 && $out == copied* ]]'
both "noexec: a program it copied to the read-write bind does not run" \
	'[[ $out == *"refused /rw"* && $out != *"EXECUTED /rw"* ]]'
both "noexec: a program on the read-only bind does not run" \
	'[[ $out == *"refused /ro"* && $out != *"EXECUTED /ro"* ]]'
both "noexec: the same program through a bind without noexec runs" \
	'[[ $out == *"ran /srv/plain"* ]]'
both "noexec: /proc/mounts shows noexec on both" \
	'has_opts /rw noexec nosuid nodev && has_opts /ro noexec ro nosuid nodev'
rm -f "$tmp/rwx/true"

# ---- a read-only share below a directory QEMU's user cannot traverse ----
# A sandbox's binds are made by root and reach any host path; a microVM's read-only
# shares are 9p, served by QEMU as its unprivileged user (libvirt-qemu). So the microVM
# half is refused before anything starts, in one line that names the directory, the
# permission it lacks and what to run (the sandbox half runs).
mkdir -p "$tmp/locked/share"
echo "locked content" >"$tmp/locked/share/file"
chmod 700 "$tmp/locked"
chmod 755 "$tmp/locked/share"
chmod 644 "$tmp/locked/share/file"
cat >"$tmp/par-locked.json" <<EOF
{ "name": "par-locked", "isolation": "sandbox", "root": "host-system", "user": "1000:1000",
  "exec": ["/bin/cat", "/share/file"],
  "mounts": [ { "source": "$tmp/locked/share", "target": "/share", "mode": "ro" } ],
  "network": { "mode": "none" } }
EOF
run_both par-locked
check "sandbox: a share below a 0700 directory of root's is read" \
	'[[ $sb_rc -eq 0 && $sb_out == "locked content" ]]'
if [[ -n $vm_why ]]; then
	skip "microvm: a share QEMU's user cannot reach is refused in one line: $vm_why"
else
	line=$(grep -v '^tenantd-vm-runner: note:' <<<"$vm_err")
	rc=$vm_rc out=$vm_out err=$vm_err
	check "microvm: a share QEMU's user cannot reach is refused (status 1), before the VM starts" \
		'[[ $rc -eq 1 && $err != *console:* ]]'
	check "... in one line naming the directory, the permission it lacks and what to run" \
		'[[ $(wc -l <<<"$line") -eq 1 && $line == *"$tmp/locked "* && $line == *"search (x)"* && $line == *"chmod o+x $tmp/locked"* ]]'
	check "... and nothing of the tenant is left" 'vm_domain_gone par-locked'
fi

done_testing
