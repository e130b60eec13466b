#!/usr/bin/env bash
# tests/integration/test_daemon_vm.sh — a microVM tenant run by tenantd: real libvirtd,
# real QEMU (TCG here), the real guest image. tenantd starts it from its manifest
# directory, lists it with QEMU's pid, collects its output in the tenant's log,
# runs commands inside it with exec (through the VM's agent), survives its own kill -9 and adopts the VM again, stops it gracefully (the service
# sees SIGTERM), and restarts it by its policy when QEMU is killed. QEMU runs in the
# tenant's own cgroups: status and top measure it, and a live set of cpu.max holds it.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/libvirt.sh

[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: microVMs need libvirt's system connection; nothing was tested"
command -v qemu-system-x86_64 >/dev/null ||
	skip_all "NO QEMU (qemu-system-x86_64 missing; make test-deps installs it): no microVM was started"
vmdir=$PWD/$BUILD/vm
[[ -r $vmdir/vmlinuz && -r $vmdir/initramfs.img ]] ||
	skip_all "NO VM IMAGE ($vmdir: run make vm-image): no microVM was started"
[[ -x $BUILD/tests/subreaper && -x $TENANTD ]] ||
	skip_all "$BUILD/tests/subreaper or $TENANTD missing: run make check"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the guest's service has no shell"

tmp=$(mktemp -d /tmp/tenantd-dvm.XXXXXX)
chmod 755 "$tmp"
tenants=() bg=()
cleanup() {
	local t
	daemon_cleanup
	for t in "${tenants[@]}"; do vm_domain_purge "$t"; done
	libvirt_release
	sandbox_cleanup
}
trap cleanup EXIT
libvirt_ensure || skip_all "NO LIBVIRT: $libvirt_why"
export TENANTD_VM_IMAGE_DIR=$vmdir

mkdir -p "$tmp/root/bin" "$tmp/manifests"
cp "$busybox" "$tmp/root/bin/busybox"
for a in sh cat echo sleep ls true timeout; do ln -s busybox "$tmp/root/bin/$a"; done
service="trap 'echo got-sigterm; exit 0' TERM; echo hello-from-the-vm; while :; do sleep 1; done"
python3 - "$tmp" "$service" <<'PY'
import json, sys
tmp, service = sys.argv[1], sys.argv[2]
m = {"name": "dv-vm", "isolation": "microvm", "user": "0:0",
     "exec": ["/bin/sh", "-c", service],
     "root": {"path": tmp + "/root", "readonly": True},
     "vm": {"memory": "256M"}, "cpu": {"max": 1},
     "restart": {"on": "on-failure", "backoff": "1s..2s", "burst": 3},
     "stop": {"timeout": "30s"},
     "health": {"exec": ["/bin/true"], "interval": "1s", "timeout": "1s", "start_period": "5s"}}
json.dump(m, open(tmp + "/manifests/dv-vm.json", "w"), indent=2)
PY
tenants+=(dv-vm)
start_daemon
wait_state dv-vm running 90
for i in $(seq 600); do grep -qs hello-from-the-vm "$tmp/state/logs/dv-vm.log" && break; sleep 0.1; done
check "the microVM tenant runs and its service's output reaches the tenant's log" \
	'grep -q hello-from-the-vm "$tmp/state/logs/dv-vm.log"'
qemu=$(json_field dv-vm pid)
check "list shows QEMU's pid for a microVM ($qemu)" \
	'[[ -n $qemu ]] && grep -q qemu "/proc/$qemu/cmdline" 2>/dev/null'
out=$("$ctl" --json audit dv-vm)
check "audit of the running microVM reads QEMU's command line: -sandbox on, so no qemu-no-sandbox" \
	'tr "\\0" " " <"/proc/$qemu/cmdline" | grep -q -- "-sandbox on" &&
	 python3 -c "import json,sys; t=json.loads(sys.argv[1])[0]; assert t[\"state\"] == \"running\"; assert \"qemu-no-sandbox\" not in [f[\"id\"] for f in t[\"findings\"]]" "$out"'
out=$("$ctl" logs -n 20 dv-vm)
check "tenantctl logs shows it" 'grep -q hello-from-the-vm <<<"$out"'
check "status says it is a microVM" '"$ctl" status dv-vm | grep -q "backend: *microvm"'
for i in $(seq 100); do [[ $(json_field dv-vm health) == healthy ]] && break; sleep 0.1; done
check "its exec health check runs inside the guest, through the agent" '[[ $(json_field dv-vm health) == healthy ]]'
out=$("$ctl" exec dv-vm -- /bin/sh -c 'echo inside $(uname -r); echo to-stderr >&2; exit 3' 2>"$tmp/exec.err")
rc=$?
check "exec runs a command inside the microVM through its agent: output, stderr, status 3" \
	'[[ $rc == 3 && $out == "inside "* ]] && grep -q to-stderr "$tmp/exec.err"'
out=$("$ctl" exec dv-vm -- /nonexistent 2>&1)
rc=$?
check "exec of a missing command in the VM fails with the agent's reason (127)" '[[ $rc == 127 ]] && grep -qi "nonexistent\|no such" <<<"$out"'

# ---- QEMU in the tenant's own cgroups: usage in status and top, live set ----
# in_cgroups PID NAME: PID is in every cgroup tenantd made for tenant NAME (one at least)
in_cgroups() {
	local d n=0
	for d in $(cg_paths "$2"); do
		# (the empty v2 hierarchy of a hybrid host holds no cgroup of tenantd's)
		[[ -f $d/cgroup.procs ]] || continue
		grep -qx "$1" "$d/cgroup.procs" || { echo "# $1 not in $d"; return 1; }
		n=$((n + 1))
	done
	[[ $n -gt 0 ]]
}
usage() { "$ctl" --json status "$1" | python3 -c 'import json,sys; u=json.load(sys.stdin).get("usage") or {}; print(u.get(sys.argv[1], ""))' "$2"; }
check "QEMU ($qemu) runs in the tenant's cgroups, as a sandbox's init does" 'in_cgroups "$qemu" dv-vm'
"$ctl" exec dv-vm -- /bin/timeout 15 /bin/sh -c 'while :; do :; done' >/dev/null 2>&1 &
bg+=($!)
out=$("$ctl" set dv-vm cpu.max=0.5)
check "set applies a live cpu.max to the microVM" 'grep -q "applied; not saved" <<<"$out"'
sleep 6
cpu=$(usage dv-vm cpu) mem=$(usage dv-vm memory) pids=$(usage dv-vm pids)
check "status: a busy microVM under cpu.max 0.5 is measured at ~0.5 ($cpu)" \
	'awk -v c="$cpu" "BEGIN { exit !(c > 0.42 && c < 0.55) }"'
check "status: its memory and pids are measured ($mem bytes, $pids pids)" \
	'[[ $mem -gt 10000000 && $pids -gt 1 ]]'
out=$("$ctl" top --once)
check "top shows cpu, limit, memory and pids for the microVM" \
	'grep -qE "^dv-vm +running +[0-9]+% +0.50 +[0-9.]+[KMG]?/[0-9.]+[KMG] +[0-9]+/[0-9]+" <<<"$out"'
"$ctl" set dv-vm cpu.max=1 >/dev/null

kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
sleep 1
check "after kill -9 of tenantd the VM still runs" 'kill -0 "$qemu" 2>/dev/null'
start_daemon
check "the restarted tenantd adopts it: running, same QEMU" \
	'[[ $(json_field dv-vm state) == running && $(json_field dv-vm pid) == "$qemu" ]]'

t0=$(date +%s%N)
"$ctl" stop dv-vm >/dev/null 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
check "stop is graceful: the service got SIGTERM and exited 0 (${ms} ms)" \
	'grep -q got-sigterm "$tmp/state/logs/dv-vm.log" && [[ $(json_field dv-vm last_status) == 0 ]]'
check "and the domain is gone" 'vm_domain_gone dv-vm'

"$ctl" start dv-vm >/dev/null
out=$("$ctl" exec dv-vm -- /bin/sh -c 'echo ready-at-once' 2>&1)
check "start returns once the agent has started the service (exec works at once)" \
	'[[ $out == ready-at-once ]]'
wait_state dv-vm running 90
for i in $(seq 600); do [[ $(grep -c hello-from-the-vm "$tmp/state/logs/dv-vm.log") -ge 2 ]] && break; sleep 0.1; done
qemu=$(json_field dv-vm pid)
[[ -n $qemu ]] && kill -KILL "$qemu"
for i in $(seq 900); do
	q=$(json_field dv-vm pid)
	[[ $(json_field dv-vm restarts) -ge 1 && -n $q && $q != "$qemu" ]] && break
	sleep 0.1
done
check "kill -9 of QEMU: the restart policy starts a new VM (restarts: $(json_field dv-vm restarts))" \
	'[[ -n $qemu && $(json_field dv-vm restarts) -ge 1 && -n $(json_field dv-vm pid) && $(json_field dv-vm pid) != "$qemu" ]]'
"$ctl" stop --timeout 20s dv-vm >/dev/null 2>&1
check "after the last stop nothing of the VM is left, its cgroups included" \
	'vm_domain_gone dv-vm && cgroups_gone dv-vm'

done_testing
