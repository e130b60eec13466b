#!/usr/bin/env bash
# test_proc_mem.sh — issue 10, item 6: the seccomp profile refuses ptrace and
# process_vm_writev, so one process of a tenant must not write another's memory
# through /proc/PID/mem either. Two processes of one tenant (the payload and a child it
# forks, both after execve, same uid), as a non-root and as the tenant's root user:
# the write through /proc/CHILD/mem must be refused, and process_vm_writev too. The
# refusal must hold whatever the process does (it comes from the tenant's /proc being
# mounted read-only, not from a flag that execve resets); reading /proc still works.
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox

tmp=$(mktemp -d /tmp/tenantd-pmem.XXXXXX)
state=$tmp/state
tenants=()
bg=()
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin" "$state"
cp "$payload_bin" "$tmp/bin/payload"
chmod 0755 "$tmp/bin" "$tmp/bin/payload"

U=pmu-$$ # user 1000
R=pmr-$$ # the tenant's root
tenants=("$U" "$R")
for t in "$U:1000:1000" "$R:0:0"; do
	IFS=: read -r name uid gid <<<"$t"
	cat >"$tmp/$name.json" <<-EOF
	{ "name": "$name", "exec": ["/payload/payload", "true"], "user": "$uid:$gid",
	  "network": { "mode": "none" },
	  "mounts": [ { "source": "$tmp/bin", "target": "/payload" } ] }
	EOF
done

trc() { # NAME CMD...
	local name=$1
	shift
	timeout -k 5 30 "$ctl" run --state "$state" "$tmp/$name.json" -- "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# The payload works here at all (else every refusal below would prove nothing).
trc "$U" /payload/payload memread
check "baseline: a tenant process reads its child's memory through /proc/PID/mem" \
	'[[ $rc -eq 0 && $out == "ok memread" ]]'

for name in "$U" "$R"; do
	who=$([[ $name == "$U" ]] && echo "uid 1000" || echo "tenant root")
	trc "$name" /payload/payload memwrite
	check "$who: writing another tenant process's memory through /proc/PID/mem is refused" \
		'[[ $rc -eq 1 && $out == "fail "*" /proc/"*"/mem" ]]'
	trc "$name" /payload/payload vmwrite
	check "$who: process_vm_writev into another tenant process is refused (EPERM)" \
		'[[ $rc -eq 1 && $out == "fail EPERM vmwrite" ]]'
	trc "$name" /bin/sh -c 'exec /payload/payload memwrite'
	check "$who: still refused after another execve (nothing execve resets)" \
		'[[ $rc -eq 1 && $out == "fail "*" /proc/"*"/mem" ]]'
	trc "$name" /payload/payload sysctl /proc/self/mem x
	check "$who: /proc/self/mem cannot be opened for writing either (EROFS)" \
		'[[ $rc -eq 1 && $out == "fail EROFS /proc/self/mem" ]]'
done

# Reading /proc keeps working.
trc "$U" /payload/payload open /proc/self/status
check "reading /proc/self/status still works" '[[ $rc -eq 0 && $out == "ok /proc/self/status: Name:"* ]]'

done_testing
