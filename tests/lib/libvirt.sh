# shellcheck shell=bash disable=SC2154 # $tmp, $ctl, tenants=(), bg=() ... are the sourcing script's
# tests/lib/libvirt.sh — libvirtd for the tests that start microVMs. Sourced, not run.
#
# libvirt_ensure: when no libvirtd answers on qemu:///system, starts virtlogd and then
# libvirtd (each in the foreground) under build/tests/subreaper, a child subreaper
# that reaps at once whatever ends under it (PID 1 here reaps orphans only every ~2 s,
# which makes libvirt see a dead QEMU as alive: shared/MACHINE-NOTES.md). It records
# the subreaper's pid; libvirt_release, called from the caller's EXIT trap, stops
# exactly that process tree (SIGTERM to the subreaper, which stops libvirtd, then
# virtlogd) and nothing else. A libvirtd that was already running is used and left
# alone. Returns 1, with the reason in $libvirt_why, when libvirt cannot be had.

libvirt_uri=qemu:///system
libvirt_started_pid=""
libvirt_why=""

libvirt_alive() {
	timeout 10 virsh -q -c "$libvirt_uri" version >/dev/null 2>&1
}

libvirt_ensure() {
	local reaper=${BUILD:-build}/tests/subreaper i
	if ! command -v libvirtd >/dev/null || ! command -v virtlogd >/dev/null ||
		! command -v virsh >/dev/null; then
		libvirt_why="libvirtd, virtlogd or virsh is not installed (apt-get install libvirt-daemon-system)"
		return 1
	fi
	libvirt_alive && return 0
	if [[ ! -x $reaper ]]; then
		libvirt_why="$reaper is missing: run make $reaper (or make check)"
		return 1
	fi
	mkdir -p /run/libvirt
	local hide=""
	# A /dev/kvm without hardware virtualization behind it (this build machine's is
	# PVM: no vmx/svm, so tenantd runs its guests under TCG anyway), mode 0600 root,
	# makes libvirt 9.0 throw its QEMU capability cache away on every call ("KVM was
	# enabled when probing ..., but it is not available now") and probe every QEMU
	# binary again: ~9 s per domain start. The libvirtd started here then gets a
	# private mount namespace in which /dev/kvm is a character device of its own: the
	# null device (1:3), mode 0600 root. QEMU's probe finds no KVM in it, and libvirt's
	# check finds it unusable by QEMU's user: the two agree and the cache holds.
	# (/dev/null itself, readable by all, made libvirt call KVM "usable now" and probe
	# every binary again on every start: ~6 s per start, seen on this machine kind.)
	# The host's /dev is untouched, and on a host with vmx or svm nothing is hidden.
	# The namespace is a slave of the host's: volumes mounted later under the shared
	# /run/tenantd-volumes reach the virtiofsd it starts (storage/volume.c); nothing
	# goes back.
	if [[ -e /dev/kvm ]] && ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
		local node=/run/libvirt/tenantd-tests-nokvm
		rm -f "$node" && mknod -m 600 "$node" c 1 3 || {
			libvirt_why="cannot make $node (mknod) to hide the unusable /dev/kvm"
			return 1
		}
		hide="mount --bind $node /dev/kvm &&"
	fi
	unshare -m --propagation slave sh -c "$hide exec \"\$0\" \"\$@\"" "$reaper" \
		--ready /run/libvirt/virtlogd-sock --ready /run/libvirt/libvirt-sock \
		-- virtlogd -- libvirtd >"${tmp:-/tmp}/libvirtd.log" 2>&1 &
	libvirt_started_pid=$!
	for i in $(seq 150); do
		libvirt_alive && return 0
		kill -0 "$libvirt_started_pid" 2>/dev/null || break
		sleep 0.2
	done
	libvirt_why="libvirtd did not start: $(tail -c 300 "${tmp:-/tmp}/libvirtd.log" | tr '\n' ' ')"
	libvirt_release
	return 1
}

libvirt_release() {
	[[ -n $libvirt_started_pid ]] || return 0
	kill -TERM "$libvirt_started_pid" 2>/dev/null
	wait "$libvirt_started_pid" 2>/dev/null
	libvirt_started_pid=""
}

# vm_domain_gone NAME: true when libvirt knows no domain tenantd-NAME
vm_domain_gone() {
	! virsh -q -c "$libvirt_uri" dominfo "tenantd-$1" >/dev/null 2>&1
}

# vm_domain_purge NAME: destroys the domain tenantd-NAME if it is still there
vm_domain_purge() {
	vm_domain_gone "$1" || virsh -q -c "$libvirt_uri" destroy "tenantd-$1" >/dev/null 2>&1
	true
}

# vm_probe: can a microVM run here? Sets vm_why to the loud reason when it cannot (empty
# when it can) and exports TENANTD_VM_IMAGE_DIR=$vmdir (default $PWD/$BUILD/vm). Starts
# libvirtd when none answers (libvirt_ensure), so call it after tenantd has made
# /run/tenantd-volumes shared when the suite uses volumes. Always returns 0: a suite
# with a sandbox half runs that half either way. TENANTD_TEST_NO_VM=1 leaves the
# microVM halves out on purpose, loudly (CI's AddressSanitizer pass, .ci/run: the
# release pass before it ran them).
vm_probe() {
	vmdir=${vmdir:-$PWD/${BUILD:-build}/vm}
	vm_why=""
	if [[ ${TENANTD_TEST_NO_VM:-} == 1 ]]; then
		vm_why="NOT IN THIS PASS (TENANTD_TEST_NO_VM=1: CI's sanitizer pass boots no microVM; its release pass did)"
	elif ! command -v qemu-system-x86_64 >/dev/null; then
		vm_why="NO QEMU (qemu-system-x86_64 missing; make test-deps installs it)"
	elif [[ ! -r $vmdir/vmlinuz || ! -r $vmdir/initramfs.img ]]; then
		vm_why="NO VM IMAGE ($vmdir/vmlinuz, initramfs.img missing: run make vm-image)"
	elif ! libvirt_ensure; then
		vm_why="NO LIBVIRT: $libvirt_why"
	fi
	export TENANTD_VM_IMAGE_DIR=$vmdir
	return 0
}
