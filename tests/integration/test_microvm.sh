#!/usr/bin/env bash
# test_microvm.sh — `tenantctl run` with isolation "microvm": real libvirtd, real QEMU
# (under TCG where the host has no hardware virtualization), the real guest image
# (make vm-image), and, for the hostile cases, a test initramfs whose /init is
# tests/vm/test-guest, a stand-in agent that floods its channel.
#
# Checked: the service writes to a rw share (virtiofs), reads a ro share (9p) and
# cannot write it, its stdout and stderr arrive, its exit status is returned, and so is
# 128+N when a forwarded signal ends it; afterwards the domain, its state directory and
# its network (tap, ifb, firewall tables) are gone. A guest that sends garbage, a
# 10 MiB line, or never says "ready" gets its VM stopped and tenantctl reports it.
#
# libvirtd is started (under build/tests/subreaper) only when none is running, and only
# what this script started is stopped. Every domain it creates is named
# tenantd-vm-mvm-*, and destroyed in the EXIT trap if a check failed halfway.
set -u
cd "$(dirname "$0")/../.." || exit 1
source tests/lib/sandbox.sh
source tests/lib/libvirt.sh

[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: microVMs need libvirt's system connection; nothing was tested"
command -v qemu-system-x86_64 >/dev/null ||
	skip_all "NO QEMU (qemu-system-x86_64 missing; make test-deps installs it): no microVM was started"
vmdir=$PWD/$BUILD/vm
[[ -r $vmdir/vmlinuz && -r $vmdir/initramfs.img ]] ||
	skip_all "NO VM IMAGE ($vmdir/vmlinuz, initramfs.img missing: run make vm-image): no microVM was started"
guest=$BUILD/tests/vm/test-guest
[[ -x $guest && -x $BUILD/tests/subreaper ]] ||
	skip_all "$guest or $BUILD/tests/subreaper missing: run make check"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the guest's service has no shell"

tmp=$(mktemp -d /tmp/tenantd-microvm.XXXXXX)
# QEMU runs as an unprivileged user and serves the read-only (9p) shares itself: it
# must be able to reach them.
chmod 755 "$tmp"
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

libvirt_ensure || skip_all "NO LIBVIRT: $libvirt_why"
export TENANTD_VM_IMAGE_DIR=$vmdir
state=$tmp/state

# The guest's root: a static busybox, mount points, nothing else.
mkdir -p "$tmp/root/bin" "$tmp/root/rw" "$tmp/root/ro" "$tmp/rw" "$tmp/ro"
cp "$busybox" "$tmp/root/bin/busybox"
for a in sh cat echo sleep ls; do ln -s busybox "$tmp/root/bin/$a"; done
echo "read-only content" >"$tmp/ro/in"

manifest() { # NAME EXEC-JSON [EXTRA-JSON]
	cat >"$tmp/$1.json" <<EOF
{ "name": "$1", "isolation": "microvm", "exec": $2, "user": "0:0",
  "root": { "path": "$tmp/root", "readonly": true },
  "mounts": [ { "source": "$tmp/rw", "target": "/rw", "mode": "rw" },
              { "source": "$tmp/ro", "target": "/ro", "mode": "ro" } ],
  "vm": { "memory": "256M" ${3:-} }, "cpu": { "max": 1 } }
EOF
	tenants+=("$1")
}

run_vm() { # NAME [ENV...]: runs it in the foreground; sets rc, out, err, secs
	local name=$1 t0
	shift
	t0=$(date +%s%N)
	out=$(env "$@" timeout 150 "$ctl" run --state "$state" "$tmp/$name.json" 2>"$tmp/err")
	rc=$?
	err=$(cat "$tmp/err")
	secs=$((($(date +%s%N) - t0) / 1000000000))
}

gone() { # NAME: no domain and no state directory left
	vm_domain_gone "$1" && [[ ! -e $state/vm/$1 ]] ||
		{ echo "# left: $(virsh -q -c "$libvirt_uri" list --all) $(ls "$state/vm" 2>/dev/null)"; return 1; }
}

# 1. Shares, output, exit status.
manifest vm-mvm-shares '["/bin/sh", "-c", "echo written >/rw/out && cat /ro/in && if echo x >/ro/in 2>/dev/null; then echo ro-WRITABLE; else echo ro-refused; fi; echo to-stderr >&2; exit 3"]'
run_vm vm-mvm-shares
check "the service's exit status is returned (3)" '[[ $rc -eq 3 ]]'
check "the service wrote to its rw (virtiofs) share" '[[ $(cat "$tmp/rw/out" 2>/dev/null) == written ]]'
check "the service read its ro (9p) share" '[[ $out == *"read-only content"* ]]'
check "the service cannot write its ro share" '[[ $out == *ro-refused* && $(cat "$tmp/ro/in") == "read-only content" ]]'
check "stderr is streamed apart from stdout" '[[ $err == *to-stderr* && $out != *to-stderr* ]]'
check "the domain and its state are gone afterwards" 'gone vm-mvm-shares'
echo "# shares run: ${secs}s"

# 1b. "root": "host-system": the host's /usr read-only on a skeleton root of tenantd's.
cat >"$tmp/vm-mvm-hostsys.json" <<EOF
{ "name": "vm-mvm-hostsys", "isolation": "microvm", "exec": ["/bin/sh", "-c", "/usr/bin/id\n\texit 0"],
  "user": "1000:1000" }
EOF
tenants+=(vm-mvm-hostsys)
# Without TENANTD_VM_IMAGE_DIR and TENANTD_POLICY_DIR: the build tree's tenantctl finds
# build/vm and policies/ itself. The script has a newline and a tab (one manifest, two
# backends: test_run.sh runs the same in a sandbox).
run_vm vm-mvm-hostsys -u TENANTD_VM_IMAGE_DIR -u TENANTD_POLICY_DIR
check "host-system root: a program of the host's /usr runs as the manifest's user" \
	'[[ $rc -eq 0 && $out == "uid=1000(vm-mvm-hostsys) gid=1000(vm-mvm-hostsys)"* ]]'
check "host-system: the domain, its state and its root skeleton are gone" \
	'gone vm-mvm-hostsys && [[ ! -e /run/tenantd-vm/vm-mvm-hostsys ]]'

# 2. A forwarded signal ends the service: 128+15.
manifest vm-mvm-signal '["/bin/sh", "-c", "echo started; exec sleep 300"]'
"$ctl" run --state "$state" "$tmp/vm-mvm-signal.json" >"$tmp/signal.out" 2>"$tmp/err" &
ctl_pid=$!
bg+=("$ctl_pid")
for i in $(seq 1200); do
	grep -q started "$tmp/signal.out" 2>/dev/null && break
	sleep 0.1
done
# While it runs: QEMU unprivileged and seccomp-sandboxed, the limits in place.
qemu=$(cat /run/libvirt/qemu/tenantd-vm-mvm-signal.pid 2>/dev/null)
qemu_user=$(ps -o user= -p "$qemu" 2>/dev/null)
qemu_cmd=$(tr '\0' ' ' <"/proc/$qemu/cmdline" 2>/dev/null)
memtune=$(virsh -q -c "$libvirt_uri" memtune tenantd-vm-mvm-signal 2>&1)
sched=$(virsh -q -c "$libvirt_uri" schedinfo tenantd-vm-mvm-signal 2>&1)
qemu_cg=$(for d in $(cg_paths vm-mvm-signal); do
	[[ -f $d/cgroup.procs ]] && grep -qx "$qemu" "$d/cgroup.procs" && echo "${d##*/}:$(cat "$d/memory.limit_in_bytes" "$d/cpu.cfs_quota_us" 2>/dev/null | tr '\n' ' ')"
done)
kill -TERM "$ctl_pid"
wait "$ctl_pid"
rc=$? err=$(cat "$tmp/err") out=$(cat "$tmp/signal.out")
check "QEMU runs as an unprivileged user ($qemu_user) with -sandbox on" \
	'[[ -n $qemu_user && $qemu_user != root && $qemu_cmd == *"-sandbox on,"* ]]'
# memory.max defaults to vm.memory + 256M = 512M; cpu.max 1 = 100000/100000 us, the
# emulator threads at most half of it.
check "memory.max is QEMU's hard limit (512M)" '[[ $memtune == *"hard_limit"*"524288"* ]]'
check "cpu.max is the domain's global quota, the emulator's is half" \
	'[[ $sched == *"global_quota"*"100000"* && $sched == *"emulator_quota"*"50000"* ]]'
check "QEMU runs in the tenant's own cgroups, with memory.max and cpu.max there ($(tr '\n' ' ' <<<"$qemu_cg"))" \
	'[[ -n $qemu && $qemu_cg == *"536870912"* && $qemu_cg == *"100000"* ]]'
check "SIGTERM is forwarded to the service: status 143" '[[ $rc -eq 143 ]]'
check "the tenant's cgroups are gone with the VM" 'cgroups_gone vm-mvm-signal'
check "the domain and its state are gone after a signal" 'gone vm-mvm-signal'

# 3. A private network: the guest's address, the tap on the bridge shaped both ways
# (tbf on the tap, ifb + tbf for the other direction), all gone afterwards. The
# tenant's index is set in its state so its tap does not collide with the tnd-0 of
# other tests running at the same time.
index=4321
mkdir -p "$state"
echo "vm-mvm-net $((1073741824 + 65536 * index))" >>"$state/uidranges"
mkdir -p "$tmp/root/etc" && touch "$tmp/root/etc/resolv.conf"
ln -s busybox "$tmp/root/bin/ip"
manifest vm-mvm-net '["/bin/sh", "-c", "ip -4 addr show eth0; echo net-ready; sleep 4"]'
sed -i 's|"cpu": { "max": 1 } }|"cpu": { "max": 1 }, "network": { "mode": "private", "egress": { "rate": "10mbit" }, "ingress": { "rate": "20mbit" } } }|' "$tmp/vm-mvm-net.json"
"$ctl" run --state "$state" "$tmp/vm-mvm-net.json" >"$tmp/net.out" 2>"$tmp/err" &
ctl_pid=$!
bg+=("$ctl_pid")
for i in $(seq 1200); do
	grep -q net-ready "$tmp/net.out" 2>/dev/null && break
	sleep 0.1
done
tap_q=$(tc qdisc show dev "tnd-$index" 2>&1) ifb_q=$(tc qdisc show dev "tndi-$index" 2>&1)
master=$(ip -o link show "tnd-$index" 2>&1)
brport=$(bridge -d link show dev "tnd-$index" 2>&1) fdb=$(bridge fdb show dev "tnd-$index" 2>&1)
wait "$ctl_pid"
rc=$? err=$(cat "$tmp/err") out=$(cat "$tmp/net.out")
want_ip=$(printf '10.88.%d.%d' $(((index + 2) / 256)) $(((index + 2) % 256)))
check "private network: the guest has its address ($want_ip/16)" '[[ $rc -eq 0 && $out == *"inet $want_ip/16"* ]]'
check "the tap is on the bridge, shaped at 20mbit towards the guest" \
	'[[ $master == *"master tenantd0"* && $tap_q == *"tbf"*"rate 20Mbit"* ]]'
check "what the guest sends goes through an ifb shaped at 10mbit" '[[ $ifb_q == *"tbf"*"rate 10Mbit"* ]]'
want_mac=$(printf '02:74:0a:58:%02x:%02x' $(((index + 2) / 256)) $(((index + 2) % 256)))
check "with the VM running, its tap learns nothing and is flooded nothing" \
	'[[ $brport == *"learning off flood off mcast_flood off bcast_flood off"* ]]'
fdb=$(grep "^$want_mac " <<<"$fdb")
check "... and the guest's MAC is a static, sticky entry on it ($fdb)" \
	'[[ $fdb == *" master tenantd0"* && " $fdb " == *" static "* && " $fdb " == *" sticky "* ]]'
check "tap, ifb and firewall tables are gone afterwards" \
	'! ip link show "tnd-$index" >/dev/null 2>&1 && ! ip link show "tndi-$index" >/dev/null 2>&1 && ! nft list tables 2>/dev/null | grep -q "tenantd-vm-mvm-net\$"'

# 4. Hostile guests: the stand-in agent replaces /init in a copy of the image.
tests/vm/make-test-initramfs.sh "$vmdir/initramfs.img" "$tmp/hostile.img" "$guest"
chmod 644 "$tmp/hostile.img"
for mode in garbage bigline; do
	manifest "vm-mvm-$mode" '["/bin/true"]' ", \"initrd\": \"$tmp/hostile.img\", \"cmdline\": \"tnd_test=$mode\""
	run_vm "vm-mvm-$mode"
	case $mode in
	garbage) want="the agent misbehaves: 9 bad frames" ;;
	bigline) want="the agent misbehaves: a frame over 1048576 bytes" ;;
	esac
	check "$mode on the channel: the VM is stopped, tenantctl says why and exits 1" \
		'[[ $rc -eq 1 && $err == *"$want"* && $err == *"stopping the VM"* ]]'
	check "$mode: the domain and its state are gone" "gone vm-mvm-$mode"
	echo "# $mode run: ${secs}s"
done
manifest vm-mvm-silent '["/bin/true"]' ", \"initrd\": \"$tmp/hostile.img\", \"cmdline\": \"tnd_test=silent\""
run_vm vm-mvm-silent TENANTD_VM_BOOT_TIMEOUT=12
check "an agent that never says ready: stopped after the boot timeout" \
	'[[ $rc -eq 1 && $err == *"did not say it was ready within 12000 ms"* && $secs -lt 60 ]]'
check "silent: the domain and its state are gone" 'gone vm-mvm-silent'

done_testing
