#!/usr/bin/env bash
# tests/integration/test_seccomp_notify_vm.sh — denied-call events from both backends
# (issue 17): ONE manifest, whose profile marks syslog(2) "notify", run by a real tenantd
# as a sandbox and as a microVM (real libvirtd, QEMU under TCG, the real guest image
# with tenant-agent). Each tenant calls syslog 100,000 times: every call fails with
# EPERM, tenantd stays responsive, and a private rsyslogd receives a bounded number of
# aggregated event=seccomp-denied lines per tenant whose counts add up to 100,000, the
# same lines for both backends; the event stream has them too. In the microVM the guest
# agent holds the listener and reports over the agent protocol, and the host sums again.
# A command exec'd into either gets EPERM for the call, unreported.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/rsyslog.sh
source tests/lib/libvirt.sh
require_sandbox
require_built "$TENANTD"
[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: microVMs need libvirt's system connection; nothing was tested"
command -v rsyslogd >/dev/null ||
	skip_all "RSYSLOGD MISSING (apt-get install rsyslog, or make test-deps): denied-call events not tested"
command -v qemu-system-x86_64 >/dev/null ||
	skip_all "NO QEMU (qemu-system-x86_64 missing; make test-deps installs it): no microVM was started"
vmdir=$PWD/$BUILD/vm
[[ -r $vmdir/vmlinuz && -r $vmdir/initramfs.img ]] ||
	skip_all "NO VM IMAGE ($vmdir: run make vm-image): no microVM was started"
[[ -x $BUILD/tests/subreaper ]] || skip_all "$BUILD/tests/subreaper missing: run make check"

tmp=$(mktemp -d /tmp/tenantd-notifyvm.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	local t
	daemon_cleanup
	for t in "${tenants[@]}"; do vm_domain_purge "$t"; done
	libvirt_release
	rsyslog_stop
	sandbox_cleanup
}
trap cleanup EXIT
libvirt_ensure || skip_all "NO LIBVIRT: $libvirt_why"
export TENANTD_VM_IMAGE_DIR=$vmdir
rsyslog_start "$tmp/syslog" || bail "a private rsyslogd starts"

cp -r policies "$tmp/policies"
cat >"$tmp/policies/seccomp/notify-test.json" <<'EOF'
{
  "description": "default, with syslog(2) denied through the listener and reported",
  "base": "default",
  "rules": [
    { "action": "notify", "syscalls": ["syslog"],
      "why": "the kernel log is not the tenant's; report who asks for it" }
  ]
}
EOF
chmod -R go-w "$tmp/policies"
export TENANTD_POLICY_DIR=$tmp/policies

mkdir -p "$tmp/manifests" "$tmp/payload"
cp "$payload_bin" "$tmp/payload/payload"
chmod 755 "$tmp/payload" "$tmp/payload/payload"
# One manifest; the second tenant is the same with "isolation" changed.
manifest() { # NAME ISOLATION
	cat >"$tmp/manifests/$1.json" <<EOF
{
  "name": "$1",
  "isolation": "$2",
  "exec": ["/bin/sh", "-c", "/payload/payload repeat syslog 100000; /payload/payload repeat acct 1000; exec /payload/payload sleep 600"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$tmp/payload", "target": "/payload", "mode": "ro" } ],
  "network": { "mode": "none" },
  "vm": { "memory": "256M" },
  "policy": { "seccomp": "notify-test" },
  "restart": { "on": "no" }
}
EOF
}
manifest snv-sb sandbox
manifest snv-vm microvm
tenants+=(snv-sb snv-vm)
check "the manifest validates for both backends" \
	'"$ctl" validate "$tmp/manifests/snv-sb.json" "$tmp/manifests/snv-vm.json" >/dev/null'
t_start=$(date +%s)
start_daemon --syslog-socket "$rsyslog_sock" --syslog-ident tenantd-test || bail "tenantd starts"
wait_state snv-sb running 10
wait_state snv-vm running 120

lines() { grep "event=seccomp-denied tenant=$1 " "$rsyslog_out"; }
sum() { lines "$1" | sed -n 's/.* count=\([0-9]*\)$/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }

# ---- tenantd answers while the guest calls the notified call in a loop ----
slow=0 worst=0
for i in $(seq 20); do
	t0=$(date +%s%N)
	"$ctl" list >/dev/null || slow=99
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	((ms > worst)) && worst=$ms
	((ms > 1000)) && slow=$((slow + 1))
	sleep 0.3
done
check "tenantd answers list within 1 s while both tenants call syslog in loops ($slow slow, worst $worst ms)" \
	'[[ $slow == 0 ]]'

# ---- every call failed with EPERM inside, in both backends ----
for t in snv-sb snv-vm; do
	for i in $(seq 3000); do
		"$ctl" logs "$t" 2>/dev/null | grep -q "ns/call acct" && break
		sleep 0.1
	done
done
logs_sb=$("$ctl" logs snv-sb 2>&1)
logs_vm=$("$ctl" logs snv-vm 2>&1)
check "sandbox: 100000 of 100000 calls of syslog failed with EPERM" \
	'grep -q "^denied 100000/100000 EPERM [0-9]* ns/call syslog" <<<"$logs_sb"'
check "microVM: 100000 of 100000 calls of syslog failed with EPERM (the agent's answer)" \
	'grep -q "^denied 100000/100000 EPERM [0-9]* ns/call syslog" <<<"$logs_vm"'
check "microVM: acct (errno:EPERM in the profile, not notify) fails with EPERM from the guest kernel" \
	'grep -q "denied 1000/1000 EPERM [0-9]* ns/call acct" <<<"$logs_vm"'
vm_ns=$(sed -n 's/^denied 100000\/100000 EPERM \([0-9]*\) ns\/call syslog.*/\1/p' <<<"$logs_vm")
sb_ns=$(sed -n 's/^denied 100000\/100000 EPERM \([0-9]*\) ns\/call syslog.*/\1/p' <<<"$logs_sb")
echo "# cost of one notified call: sandbox ${sb_ns:-?} ns, microVM guest (TCG) ${vm_ns:-?} ns"

# ---- the same aggregated lines from both, bounded ----
for i in $(seq 300); do [[ $(sum snv-sb) -ge 100000 && $(sum snv-vm) -ge 100000 ]] && break; sleep 0.1; done
# At most one line per call per 10 s (the first at once), however fast the calls come.
secs=$(($(date +%s) - t_start))
bound=$((secs / 10 + 2))
for t in snv-sb snv-vm; do
	s=$(sum "$t")
	nl=$(lines "$t" | wc -l)
	check "$t: the counts add up to 100000 ($s)" '[[ $s == 100000 ]]'
	check "$t: 100000 denials in at most one line per 10 s ($nl lines in ${secs}s, bound $bound)" \
		'[[ $nl -ge 1 && $nl -le $bound ]]'
	line=$(lines "$t" | head -1)
	check "$t: the line is the sandbox's format: ${line:-none}" \
		'[[ $line == "daemon.warning tenantd-test["*"]: event=seccomp-denied tenant=$t syscall=syslog count="* ]]'
	check "$t: the event stream has it" \
		'"$ctl" events -n 500 | grep -q "event=seccomp-denied tenant=$t syscall=syslog count="'
done
check "no line for acct, which is errno:EPERM, not notify" '! grep -q "syscall=acct" "$rsyslog_out"'

# ---- exec'd commands: the same answer, unreported ----
for t in snv-sb snv-vm; do
	before=$(sum "$t")
	out=$("$ctl" exec "$t" -- /payload/payload repeat syslog 20 2>&1)
	rc=$?
	check "$t: tenantctl exec: 20 of 20 calls of syslog failed with EPERM (rc $rc: $out)" \
		'[[ $rc == 0 && $out == "denied 20/20 EPERM "* ]]'
	sleep 1
	check "$t: the exec'd command's denials are not reported" '[[ $(sum "$t") == "$before" ]]'
done
check "tenantd is still up" '"$ctl" list >/dev/null'

done_testing
