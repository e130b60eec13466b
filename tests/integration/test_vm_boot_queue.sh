#!/usr/bin/env bash
# tests/integration/test_vm_boot_queue.sh — microVMs boot at most parallel-vm-boots at
# once (tenantd.conf); the others wait their turn in STARTING with nothing running, and
# boot in the order they were asked for. Real tenantd, libvirtd and QEMU (TCG here).
# - with parallel-vm-boots = 1, three microVMs from one reload: never more than one QEMU
#   that is not yet running, all three run in the end, in the order of the queue;
# - a sandbox in the same reload does not wait;
# - `list` says "queued", `status` the place in line, the events say "queued";
# - a queued tenant stopped leaves the line at once and never boots; started again, it
#   boots;
# - a bad value of the key is refused with the key's name.
# Why: twenty microVMs started by one reload on two cores each got a tenth of a core,
# none reached its agent's ready deadline, and most ended in crashloop (bench/vm-many).
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/libvirt.sh

[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: microVMs need libvirt's system connection; nothing was tested"
require_built "$TENANTD"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the guests' service has no shell"

tmp=$(mktemp -d /tmp/tenantd-vmq.XXXXXX)
chmod 755 "$tmp"
tenants=(vq-1 vq-2 vq-3 vq-sbx) bg=()
cleanup() {
	local t
	daemon_cleanup
	for t in "${tenants[@]}"; do vm_domain_purge "$t"; done
	libvirt_release
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vm_probe
[[ -z $vm_why ]] || skip_all "$vm_why: no microVM was started"

# A bad value is refused, naming the key and the file.
printf 'parallel-vm-boots = 0\n' >"$tmp/bad.conf"
out=$("$TENANTD" --foreground --config "$tmp/bad.conf" --manifests "$tmp/none" \
	--state "$tmp/none" --socket "$tmp/none.sock" 2>&1)
rc=$?
check "tenantd refuses parallel-vm-boots = 0, naming the key and its bounds (exit 2)" \
	'[[ $rc == 2 && $out == *"parallel-vm-boots"*"1 to 1024"* ]]'

mkdir -p "$tmp/root/bin" "$tmp/manifests" "$tmp/later"
cp "$busybox" "$tmp/root/bin/busybox"
for a in sh echo sleep; do ln -s busybox "$tmp/root/bin/$a"; done
for t in vq-1 vq-2 vq-3 vq-sbx; do
	iso=microvm
	[[ $t == vq-sbx ]] && iso=sandbox
	cat >"$tmp/later/$t.json" <<-EOF
	{ "name": "$t", "isolation": "$iso", "user": "0:0", "network": { "mode": "none" },
	  "exec": ["/bin/sh", "-c", "echo up; while :; do sleep 1; done"],
	  "root": { "path": "$tmp/root", "readonly": true },
	  "vm": { "memory": "256M" }, "stop": { "timeout": "5s" } }
	EOF
done
printf 'parallel-vm-boots = 1\n' >"$tmp/tenantd.conf"
start_daemon --config "$tmp/tenantd.conf" || bail "tenantd starts"

# One reload brings all four; vq-3 is stopped while it waits.
cp "$tmp"/later/*.json "$tmp/manifests/"
"$ctl" reload >/dev/null
list=$("$ctl" list)
st3=$("$ctl" status vq-3)
stop_out=$(timeout 10 "$ctl" stop vq-3 2>&1)
stop_rc=$?
check "list shows the microVMs that wait as queued" '[[ $(grep -c "^vq-[23] .*queued" <<<"$list") == 2 ]]'
check "status gives a queued tenant's place in line (vq-3: 2)" \
	'[[ $st3 == *"waiting for a boot slot: 2 in line"* ]]'
check "a queued tenant stops at once (nothing of it runs)" \
	'[[ $stop_rc == 0 && $(json_field vq-3 state) == stopped ]]'

# Sample until vq-1 and vq-2 run: the QEMUs alive that are not yet running, at most one.
max_booting=0 sbx_first="" order=() seen_qemu3=0
for i in $(seq 1200); do
	# The QEMUs first, then the states: a VM that comes to run between the two reads
	# counts as running, and the next one's QEMU, started when it ran, cannot be seen
	# beside it as a second one booting.
	nq=0
	for t in vq-1 vq-2 vq-3; do
		pgrep -f "guest=tenantd-$t," >/dev/null && nq=$((nq + 1))
		[[ $t == vq-3 ]] && pgrep -f "guest=tenantd-$t," >/dev/null && seen_qemu3=1
	done
	json=$("$ctl" --json list)
	running=$(python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.loads(sys.argv[1]) if t["state"] == "running"))' "$json")
	for t in vq-1 vq-2; do
		[[ " $running " == *" $t "* && " ${order[*]} " != *" $t "* ]] && order+=("$t")
	done
	nrun=0
	for t in vq-1 vq-2; do [[ " $running " == *" $t "* ]] && nrun=$((nrun + 1)); done
	((nq - nrun > max_booting)) && max_booting=$((nq - nrun))
	[[ -z $sbx_first && " $running " == *" vq-sbx "* ]] && sbx_first=${#order[@]}
	((nrun == 2)) && break
	sleep 0.2
done
check "both queued-by-reload microVMs run in the end" '[[ $nrun == 2 ]]'
check "never more than one microVM booting at once (seen: $max_booting)" '[[ $max_booting -le 1 ]]'
check "they booted in the order of the queue (${order[*]})" '[[ "${order[*]}" == "vq-1 vq-2" ]]'
check "the sandbox did not wait for a boot slot (it ran before any microVM)" '[[ $sbx_first == 0 ]]'
check "the stopped queued tenant never booted (no QEMU of it)" '[[ $seen_qemu3 == 0 && $(json_field vq-3 state) == stopped ]]'
ev=$("$ctl" events -n 200)
check "the events say which microVMs were queued (vq-2 and vq-3)" \
	'grep -q "event=queued tenant=vq-2 " <<<"$ev" && grep -q "event=queued tenant=vq-3 " <<<"$ev" &&
	 ! grep -q "event=queued tenant=vq-1 " <<<"$ev"'
check "no microVM hit its ready deadline or a restart" \
	'! grep -q "event=start-failed\|event=backoff" <<<"$ev"'

# Started again, vq-3 boots (a free slot: at once).
out=$(timeout 200 "$ctl" start vq-3 2>&1)
rc=$?
check "the stopped one, started again, boots and runs" '[[ $rc == 0 && $(json_field vq-3 state) == running ]]'

done_testing
