#!/usr/bin/env bash
# test_parity.sh — one manifest, both backends (issue 12): each case is written once,
# as a sandbox manifest, and run by `tenantctl run` twice, the second time with only
# "isolation" changed to "microvm". Both runs must print and refuse the same things.
#
# Cases:
#  - "root": "host-system" with read-only shares at /share and /srv/share, targets that
#    do not exist in the root: the service reads the share's file through both, and a
#    write to the share or to the root fails.
#  - a read-only image root (a static busybox, nothing else): it runs with /proc, the
#    share and the system's directories made in a writable skeleton over it, and the
#    root and the image stay read-only.
#  - a read-only share below a directory QEMU's user cannot traverse: the sandbox reads
#    it, the microVM is refused in one line that says what to run.
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
if ! command -v qemu-system-x86_64 >/dev/null; then
	vm_why="NO QEMU (qemu-system-x86_64 missing; make test-deps installs it)"
elif [[ ! -r $vmdir/vmlinuz || ! -r $vmdir/initramfs.img ]]; then
	vm_why="NO VM IMAGE ($vmdir/vmlinuz, initramfs.img missing: run make vm-image)"
elif ! libvirt_ensure; then
	vm_why="NO LIBVIRT: $libvirt_why"
fi
export TENANTD_VM_IMAGE_DIR=$vmdir

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
done'
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
