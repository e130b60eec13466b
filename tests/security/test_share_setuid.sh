#!/usr/bin/env bash
# test_share_setuid.sh — issue 10, item 3: a read-write share must not give the
# tenant's root the host's root.
#
# A microVM's read-write share is served by virtiofsd, which runs as root on the host
# and passes the guest's uids through: guest root could leave a setuid-root program or
# a device node in the shared directory on the host's disk, and any local user who
# reaches that directory would become root (or read the disk). The attack, as a tenant
# does it, from the same manifest on both backends (the sandbox's user namespace must
# hold as well):
#   - copy a program the tenant was given (the host's `id`) and chmod it 4755 and 2755;
#   - create a file with mode 04755 in one open(O_CREAT) call (no chmod after);
#   - mknod a character device (1,3) and a block device (7,0, mode 0666);
#   - mkdir a setgid directory;
# while ordinary things must keep working there (a fifo, a chmod 0640, a plain mkdir).
# The verdict comes from the host, as an unprivileged user (nobody): the setuid copy
# must not run as root, and no device node may exist. While the VM runs, the share must
# be served from a nosuid,nodev bind mount in a root-only directory, by a virtiofsd
# that runs under tenantd's seccomp filter.
#
# Then `tenantctl validate` and `tenantctl run` must refuse shares that overlap
# tenantd's own directories or host paths no tenant may own, naming the mount and why,
# also when the source is reached through a symbolic link.
set -u
cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sandbox.sh
source tests/lib/libvirt.sh
require_sandbox

have_vm=1 why_no_vm=""
if ! command -v qemu-system-x86_64 >/dev/null; then
	have_vm=0 why_no_vm="NO QEMU (qemu-system-x86_64 missing; make test-deps installs it)"
fi
vmdir=$PWD/$BUILD/vm
if [[ $have_vm -eq 1 && ! (-r $vmdir/vmlinuz && -r $vmdir/initramfs.img) ]]; then
	have_vm=0 why_no_vm="NO VM IMAGE ($vmdir/vmlinuz, initramfs.img missing: run make vm-image)"
fi
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the tenant's attack needs a shell"
command -v setpriv >/dev/null || skip_all "NO setpriv (util-linux): cannot act as an unprivileged host user"

# /tmp here honours setuid bits (no nosuid): checked, else the exec check proves nothing.
tmp=$(mktemp -d /tmp/tenantd-share.XXXXXX)
chmod 755 "$tmp" # QEMU (unprivileged) serves the read-only root; nobody reaches the shares
tenants=() bg=()
cleanup() {
	local t
	for t in "${tenants[@]}"; do
		vm_domain_purge "$t"
	done
	libvirt_release
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM
state=$tmp/state
mkdir -p "$state"

# The tenant's root: a static busybox, the payload, the attack script, mount points.
mkdir -p "$tmp/root/bin" "$tmp/root/rw" "$tmp/root/proc" "$tmp/root/dev" "$tmp/root/tmp" \
	"$tmp/root/run" "$tmp/root/etc"
cp "$busybox" "$tmp/root/bin/busybox"
cp "$payload_bin" "$tmp/root/bin/payload"
for a in sh cp chmod mknod mkdir mkfifo echo sleep ls cat; do ln -s busybox "$tmp/root/bin/$a"; done
cat >"$tmp/root/bin/attack" <<'EOF'
#!/bin/sh
# Run as the tenant's root; /rw is the read-write share.
d=/rw
cp $d/id.orig $d/suid-id && chmod 4755 $d/suid-id; echo "chmod-suid=$?"
cp $d/id.orig $d/sgid-id && chmod 2755 $d/sgid-id; echo "chmod-sgid=$?"
/bin/payload creat $d/creat-suid 4755 >/dev/null; echo "creat-suid=$?"
mknod $d/char-dev c 1 3; echo "mknod-c=$?"
mknod -m 666 $d/block-dev b 7 0; echo "mknod-b=$?"
mkdir -m 2775 $d/sgid-dir; echo "mkdir-sgid=$?"
mkfifo $d/fifo; echo "mkfifo=$?"
echo hello >$d/plain && chmod 640 $d/plain; echo "chmod-plain=$?"
mkdir $d/dir && chmod 750 $d/dir; echo "plain-dir=$?"
echo attack-done
sleep "$HOLD"
EOF
chmod 755 "$tmp/root/bin/attack"
touch "$tmp/root/etc/resolv.conf"

# One manifest; the backend and the share's directory are all that differ.
manifest() { # NAME ISOLATION RW-DIR HOLD
	local vm=""
	[[ $2 == microvm ]] && vm='"vm": { "memory": "256M" },'
	cat >"$tmp/$1.json" <<EOF
{ "name": "$1", "isolation": "$2", "exec": ["/bin/sh", "/bin/attack"], "user": "0:0",
  "env": { "HOLD": "$4" }, "network": { "mode": "none" },
  "root": { "path": "$tmp/root", "readonly": true },
  "mounts": [ { "source": "$3", "target": "/rw", "mode": "rw" } ],
  $vm "cpu": { "max": 1 } }
EOF
	tenants+=("$1")
}

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

# host_verdict BACKEND DIR: what an unprivileged host user finds in the share.
host_verdict() {
	local b=$1 d=$2 f
	out=$(as_nobody "$d/suid-id" -u 2>&1)
	check "$b: the tenant's setuid copy of id does not run as root for a host user (euid $out)" \
		'[[ ! -e $d/suid-id || $out != 0 ]]'
	out=$(as_nobody "$d/sgid-id" -g 2>&1)
	check "$b: the tenant's setgid copy of id does not run with gid 0 for a host user (egid $out)" \
		'[[ ! -e $d/sgid-id || $out != 0 ]]'
	for f in suid-id sgid-id creat-suid; do
		out=$(stat -c '%a %u' "$d/$f" 2>&1)
		check "$b: $f is not setuid or setgid root on the host's disk ($out)" \
			'[[ ! -e $d/$f || $(stat -c %u "$d/$f") != 0 || $(( 0$(stat -c %a "$d/$f") & 06000 )) -eq 0 ]]'
	done
	out=$(ls -l "$d" 2>&1)
	check "$b: no character device node was created in the share" '[[ ! -c $d/char-dev ]]'
	check "$b: no block device node was created in the share" '[[ ! -b $d/block-dev ]]'
	check "$b: no setgid-root directory was created in the share" \
		'[[ ! -d $d/sgid-dir || $(stat -c %u "$d/sgid-dir") != 0 || ! -g $d/sgid-dir ]]'
}

# ---- the sandbox ----
sbrw=$tmp/rw-sandbox
mkdir -p "$sbrw" && chmod 1777 "$sbrw" # writable by the tenant's (unprivileged) root
cp /usr/bin/id "$sbrw/id.orig" && chmod 755 "$sbrw/id.orig"
manifest sh-sb sandbox "$sbrw" 0
out=$(timeout -k 5 60 "$ctl" run --state "$state" "$tmp/sh-sb.json" 2>"$tmp/err")
rc=$? err=$(cat "$tmp/err")
check "sandbox: the attack ran to its end" '[[ $out == *attack-done* ]]'
check "sandbox: ordinary files still work in the share (fifo, chmod 640, mkdir)" \
	'[[ $out == *mkfifo=0* && $out == *chmod-plain=0* && $out == *plain-dir=0* && -p $sbrw/fifo ]]'
check "sandbox: mknod of a device is refused inside" '[[ $out == *mknod-c=1* && $out == *mknod-b=1* ]]'
host_verdict sandbox "$sbrw"

# ---- the microVM ----
vmrw=$tmp/rw-vm
mkdir -p "$vmrw" && chmod 755 "$vmrw"
cp /usr/bin/id "$vmrw/id.orig" && chmod 755 "$vmrw/id.orig"
if [[ $have_vm -eq 0 ]]; then
	skip "$why_no_vm: the microVM half of this test did not run"
elif ! libvirt_ensure; then
	skip "NO LIBVIRT ($libvirt_why): the microVM half of this test did not run"
else
	export TENANTD_VM_IMAGE_DIR=$vmdir
	manifest sh-vm microvm "$vmrw" 8
	"$ctl" run --state "$state" "$tmp/sh-vm.json" >"$tmp/vm.out" 2>"$tmp/err" &
	ctl_pid=$!
	bg+=("$ctl_pid")
	for i in $(seq 1500); do
		grep -q attack-done "$tmp/vm.out" 2>/dev/null && break
		kill -0 "$ctl_pid" 2>/dev/null || break
		sleep 0.1
	done
	# While the guest holds on: how its share is served. virtiofsd's processes are the
	# ones whose root (it pivots into what it serves) is the share's directory.
	want=$(stat -c '%d:%i' "$vmrw")
	vfs_pids=""
	for p in $(pgrep -x virtiofsd); do
		[[ $(stat -L -c '%d:%i' "/proc/$p/root" 2>/dev/null) == "$want" ]] && vfs_pids+=" $p"
	done
	mounts="" filters=""
	for p in $vfs_pids; do
		mounts+=" $(awk '$5 == "/" { print $6 }' "/proc/$p/mountinfo" 2>/dev/null | tail -1)"
		filters+=" $(awk '/^Seccomp_filters:/ { print $2 }' "/proc/$p/status" 2>/dev/null)"
	done
	dirmode=$(stat -c '%a %U' /run/tenantd-shares 2>&1)
	wait "$ctl_pid"
	rc=$? out=$(cat "$tmp/vm.out") err=$(cat "$tmp/err")
	echo "# vm: rc=$rc $(tr '\n' ' ' <<<"$out")"
	check "microVM: the attack ran to its end in the guest" '[[ $out == *attack-done* ]]'
	check "microVM: ordinary files still work in the share (fifo, chmod 640, mkdir)" \
		'[[ $out == *mkfifo=0* && $out == *chmod-plain=0* && $out == *plain-dir=0* && -p $vmrw/fifo ]]'
	check "microVM: guest root's chmod 4755 / 2755 and its setuid create get EPERM" \
		'[[ $out == *chmod-suid=1* && $out == *chmod-sgid=1* && $out == *creat-suid=1* ]]'
	check "microVM: guest root's mknod of a device gets EPERM" '[[ $out == *mknod-c=1* && $out == *mknod-b=1* ]]'
	host_verdict microVM "$vmrw"
	check "microVM: virtiofsd served the share from a nosuid,nodev mount (pids$vfs_pids:$mounts)" \
		'[[ -n $vfs_pids && $mounts == *nosuid* && $mounts == *nodev* ]]'
	check "microVM: ... made in a directory only root can enter ($dirmode)" '[[ $dirmode == "700 root" ]]'
	# Its processes (the one that waits outside its pid namespace, and the one that
	# serves) all carry tenantd's filter; the server has its own on top.
	check "microVM: virtiofsd ran under tenantd's filter as well as its own (filters:$filters)" \
		'[[ -n $filters && $filters != *" 0"* && " $filters " == *" 2 "* ]]'
	left=$(awk 'index($5, "/run/tenantd-shares") == 1' /proc/self/mountinfo)
	check "microVM: no share mount shows in the host's mount table" '[[ -z $left ]]'
fi

# ---- shares that overlap tenantd or the host's own directories ----
ln -s /etc "$tmp/link-to-etc"
mkdir -p "$tmp/ok"
refused() { # DESCRIPTION ISOLATION MODE SOURCE WANT-IN-MESSAGE [EXTRA-MOUNT-FIRST]
	local f=$tmp/refused.json first=""
	[[ -n ${6:-} ]] && first="{ \"source\": \"$6\", \"target\": \"/first\", \"mode\": \"rw\" },"
	cat >"$f" <<EOF
{ "name": "sh-bad", "isolation": "$2", "exec": ["/bin/true"],
  "mounts": [ $first { "source": "$4", "target": "/data", "mode": "$3" } ] }
EOF
	idx=0 want=$5
	[[ -n $first ]] && idx=1
	out=$("$ctl" validate "$f" 2>&1)
	rc=$? err=$out
	check "validate refuses a $3 share of $1 ($2), naming mounts[$idx].source and $want" \
		'[[ $rc -eq 2 && $out == *"mounts[$idx].source"* && $out == *"$want"* ]]'
}
refused "/etc" microvm rw /etc "/etc"
refused "/etc through a symbolic link" microvm rw "$tmp/link-to-etc" "/etc"
refused "/usr/local" sandbox rw /usr/local "/usr"
refused "/var (it holds /var/lib)" microvm rw /var "/var/lib"
refused "the state directory" microvm rw /var/lib/tenantd "/var/lib/tenantd"
refused "the manifest directory" microvm ro /etc/tenantd/services "/etc/tenantd"
refused "/proc/sys" sandbox ro /proc/sys "/proc"
refused "/run" microvm rw /run "/run"
refused "/root, after an acceptable mount" microvm rw /root "/root" "$tmp/ok"
manifest sh-ok microvm "$vmrw" 0
out=$("$ctl" validate "$tmp/sh-ok.json" 2>&1)
rc=$?
check "validate accepts a share of the test's own directory" '[[ $rc -eq 0 ]]'
cat >"$tmp/ro-usr.json" <<EOF
{ "name": "sh-usr", "exec": ["/bin/true"],
  "mounts": [ { "source": "/usr/share/zoneinfo", "target": "/zi", "mode": "ro" } ] }
EOF
out=$("$ctl" validate "$tmp/ro-usr.json" 2>&1)
rc=$?
check "validate accepts a read-only share of a system directory (/usr/share/zoneinfo)" '[[ $rc -eq 0 ]]'

# run knows its state directory: a share inside it is refused at start, both backends.
mkdir -p "$state/inside"
for iso in sandbox microvm; do
	cat >"$tmp/in-state.json" <<EOF
{ "name": "sh-state", "isolation": "$iso", "exec": ["/bin/true"],
  "root": { "path": "$tmp/root", "readonly": true },
  "mounts": [ { "source": "$state/inside", "target": "/rw", "mode": "rw" } ] }
EOF
	out=$(timeout -k 5 60 "$ctl" run --state "$state" "$tmp/in-state.json" 2>&1)
	rc=$? err=$out
	check "run ($iso) refuses a share inside its state directory, saying so" \
		'[[ $rc -ne 0 && $out == *"mounts[0].source"* && $out == *"state directory"* ]]'
done
tenants+=(sh-state)

done_testing
