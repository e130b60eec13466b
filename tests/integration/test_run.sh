#!/usr/bin/env bash
# test_run.sh — `tenantctl run` as an operator uses it: exit statuses, signals, the
# command override, refusals and their messages, the ownership warning, quotas,
# capabilities, and that every run cleans up its cgroups and processes.
#
# Needs root, user namespaces and cgroups; otherwise it says loudly why it skips.
set -u
# shellcheck source=tests/lib/sandbox.sh
. "$(dirname "$0")/../lib/sandbox.sh"
require_sandbox

tmp=$(mktemp -d /tmp/tenantd-run.XXXXXX)
state=$tmp/state
tenants=()
bg=()

trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM


# run MANIFEST [ARGS...]: `tenantctl run MANIFEST ARGS`; sets rc, out, err
run() {
	local m=$1
	shift
	timeout -k 5 30 "$ctl" run --state "$state" "$m" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# wait_gone PID...: true once none of the pids exists (at most ~5 s)
wait_gone() {
	local i p alive
	for i in $(seq 100); do
		alive=0
		for p in "$@"; do [[ -n $p ]] && kill -0 "$p" 2>/dev/null && alive=1; done
		[[ $alive -eq 0 ]] && return 0
		sleep 0.05
	done
	return 1
}

mkdir -p "$tmp/bin" "$tmp/pub" "$state"
chmod 0755 "$tmp" "$tmp/pub"
cp "$payload_bin" "$tmp/bin/payload"
chmod 0755 "$tmp/bin" "$tmp/bin/payload"

T=trun-$$
tenants=("$T" "$T-r" "$T-nb")
# manifest FILE NAME USER EXEC-JSON [EXTRA-JSON]: a tenant with the payload at /payload
manifest() {
	cat >"$1" <<EOF
{ "name": "$2", "user": "$3", "exec": $4,
  "mounts": [ { "source": "$tmp/bin", "target": "/payload" }${6:-} ]${5:+, $5} }
EOF
}
manifest "$tmp/m.json" "$T" 1000:1000 '["/payload/payload", "exit", "3"]'

# ---- exit status ----
run "$tmp/m.json" -- /payload/payload exit 7
check "exit status passthrough: payload exit 7 -> 7" '[[ $rc -eq 7 && -z $err ]]'
check "after the run: no cgroup of the tenant is left" 'cgroups_gone "$T"'
run "$tmp/m.json" -- /payload/payload exit 0
check "exit status passthrough: payload exit 0 -> 0" '[[ $rc -eq 0 ]]'
run "$tmp/m.json"
check "without an override, the manifest's exec runs (exit 3)" '[[ $rc -eq 3 ]]'
run "$tmp/m.json" -- /payload/payload exit 5
check "CMD after -- overrides the manifest's exec (exit 5)" '[[ $rc -eq 5 ]]'
run "$tmp/m.json" -- /payload/payload id
check "the override's arguments reach the program" '[[ $rc -eq 0 && $out == "uid=1000 gid=1000 euid=1000" ]]'
run "$tmp/m.json" -- payload/payload true
check "a relative override command is refused: exit 2 with the reason" \
	'[[ $rc -eq 2 && $err == *"payload/payload: the command must be an absolute path inside the tenant"* ]]'
run "$tmp/m.json" -- /payload/nonexistent
check "an override that does not exist: exit 1, naming it" \
	'[[ $rc -eq 1 && $err == *"cannot execute /payload/nonexistent"* ]]'
check "after a failed start: no cgroup is left" 'cgroups_gone "$T"'

# ---- signals ----
# bg_run MANIFEST ARGS...: tenantctl in the background; sets ctl_pid, init_pid, svc_pid
bg_run() {
	local m=$1
	shift
	"$ctl" run --state "$state" "$m" -- /payload/payload "$@" >"$tmp/bg.out" 2>"$tmp/bg.err" &
	ctl_pid=$!
	bg+=("$ctl_pid")
	find_service "$ctl_pid"
}
if bg_run "$tmp/m.json" sleep 30; then
	start=$SECONDS
	kill -TERM "$ctl_pid"
	wait "$ctl_pid"
	rc=$?
	check "SIGTERM to tenantctl is forwarded: payload sleep 30 ends with 143" \
		'[[ $rc -eq 143 && $((SECONDS - start)) -lt 10 ]]'
	check "after SIGTERM: no tenant process is left (host pids $init_pid $svc_pid)" \
		'wait_gone "$init_pid" "$svc_pid"'
	check "after SIGTERM: no cgroup is left" 'cgroups_gone "$T"'
else
	fail "could not start a background tenant (SIGTERM)"
fi
if bg_run "$tmp/m.json" sleep 30; then
	kill -INT "$ctl_pid"
	wait "$ctl_pid"
	rc=$?
	check "one SIGINT is forwarded: payload sleep 30 ends with 130" '[[ $rc -eq 130 ]]'
	check "after SIGINT: no tenant process, no cgroup left" \
		'wait_gone "$init_pid" "$svc_pid" && cgroups_gone "$T"'
else
	fail "could not start a background tenant (SIGINT)"
fi
if bg_run "$tmp/m.json" nointr 30; then
	kill -INT "$ctl_pid"
	sleep 0.3
	kill -INT "$ctl_pid"
	sleep 0.3
	check "a service that ignores SIGINT survives two interrupts" \
		'kill -0 "$svc_pid" 2>/dev/null && kill -0 "$ctl_pid" 2>/dev/null'
	kill -INT "$ctl_pid"
	wait "$ctl_pid"
	rc=$?
	err=$(cat "$tmp/bg.err")
	check "the third SIGINT kills the tenant (137) and says so" \
		'[[ $rc -eq 137 && $err == *"third interrupt: killing the tenant"* ]]'
	check "after the third SIGINT: no tenant process, no cgroup left" \
		'wait_gone "$init_pid" "$svc_pid" && cgroups_gone "$T"'
else
	fail "could not start a background tenant (SIGINT x3)"
fi
if bg_run "$tmp/m.json" sleep 30; then
	kill -KILL "$ctl_pid"
	wait "$ctl_pid" 2>/dev/null
	wait_gone "$init_pid" "$svc_pid"
	rc="" err="" out=$(ps -o pid=,ppid=,uid=,args= -p "$init_pid,$svc_pid" 2>/dev/null)
	check "when tenantctl itself is killed, the tenant dies with it (host pids $init_pid $svc_pid)" \
		'wait_gone "$init_pid" "$svc_pid"'
	cg_purge "$T" # tenantctl had no chance to remove them: that is expected after SIGKILL
else
	fail "could not start a background tenant (SIGKILL of tenantctl)"
fi

# ---- refusals ----
cat >"$tmp/bad.json" <<'EOF'
{
  "name": "bad",
  "exec": ["/payload/payload", "true"],
  "memroy": { "max": "64M" }
}
EOF
run "$tmp/bad.json"
check "an invalid manifest: exit 2 with FILE:LINE:COLUMN: KEY: message" \
	'[[ $rc -eq 2 && $err == *"$tmp/bad.json:4:3: memroy: unknown key; did you mean \"memory\"?"* ]]'
printf '{ "name": "%s-vm", "isolation": "microvm", "exec": ["/bin/true"], "vm": { "kernel": "%s/no-kernel" } }\n' "$T" "$tmp" >"$tmp/vm.json"
run "$tmp/vm.json"
check "a microvm manifest that cannot start (no kernel there): exit 1, says so, leaves nothing" \
	'[[ $rc -eq 1 && $err == *"cannot start \"$T-vm\""* && ! -e /run/tenantd-vm/$T-vm ]]'
manifest "$tmp/missing.json" "$T" 1000:1000 '["/payload/payload", "true"]' "" \
	", { \"source\": \"$tmp/does-not-exist\", \"target\": \"/data\" }"
run "$tmp/missing.json"
check "a missing bind source: exit 1, naming mounts[1].source and the path" \
	'[[ $rc -eq 1 && $err == *"mounts[1].source $tmp/does-not-exist: No such file or directory"* ]]'
check "after the refused start: no cgroup is left" 'cgroups_gone "$T"'
timeout 10 "$ctl" run >"$tmp/out" 2>"$tmp/err"
rc=$? err=$(cat "$tmp/err")
check "no manifest: usage, exit 2" '[[ $rc -eq 2 && $err == *"usage: tenantctl run"* ]]'

cp "$tmp/m.json" "$tmp/pub/m.json"
chmod 0644 "$tmp/pub/m.json"
if command -v setpriv >/dev/null; then
	timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$ctl" run --state "$tmp/pub/state" "$tmp/pub/m.json" >"$tmp/out" 2>"$tmp/err"
	rc=$? err=$(cat "$tmp/err")
	check "not root: exit 1 with the explanation" \
		'[[ $rc -eq 1 && $err == *"tenantctl run needs root: it creates namespaces and cgroups"* ]]'
	check "not root: nothing was created (no state dir, no cgroup)" \
		'[[ ! -e $tmp/pub/state ]] && cgroups_gone "$T"'
else
	skip "setpriv (util-linux) is missing: the not-root refusal is NOT TESTED"
	skip "setpriv (util-linux) is missing: the not-root refusal is NOT TESTED"
fi

# ---- the ownership warning for a rw mount the service cannot write ----
mkdir -p "$tmp/data"
chown 0:0 "$tmp/data"
chmod 0755 "$tmp/data"
manifest "$tmp/own.json" "$T" 1000:1000 '["/payload/payload", "write", "/data/f"]' "" \
	", { \"source\": \"$tmp/data\", \"target\": \"/data\", \"mode\": \"rw\" }"
run "$tmp/own.json"
check "rw mount owned by root, service uid 1000: warning with the exact chown command" \
	'[[ $err == *"warning: $tmp/data (mounted rw at /data) is owned by 0:0"*"run: chown 1000:1000 $tmp/data"* ]]'
check "the tenant still starts, and indeed cannot write there (EACCES)" \
	'[[ $rc -eq 1 && $out == "fail EACCES /data/f" ]]'
chown 1000:1000 "$tmp/data"
run "$tmp/own.json"
check "after that chown: no warning, the write succeeds" \
	'[[ $rc -eq 0 && $out == "ok /data/f" && $err != *warning* && $(stat -c %u:%g "$tmp/data/f") == 1000:1000 ]]'
manifest "$tmp/own-r.json" "$T-r" 0:0 '["/payload/payload", "write", "/data/g"]' "" \
	", { \"source\": \"$tmp/data\", \"target\": \"/data\", \"mode\": \"rw\" }"
run "$tmp/own-r.json"
rbase=$(awk -v t="$T-r" '$1 == t { print $2 }' "$state/uidranges")
check "a root tenant: the warning names its own host ids (chown $rbase:$rbase)" \
	'[[ -n $rbase && $err == *"run: chown $rbase:$rbase $tmp/data"* && $rc -eq 1 && $out == "fail EACCES /data/g" ]]'
chown "$rbase:$rbase" "$tmp/data"
run "$tmp/own-r.json"
check "after that chown the root tenant writes, files owned by host uid $rbase" \
	'[[ $rc -eq 0 && $err != *warning* && $(stat -c %u:%g "$tmp/data/g") == "$rbase:$rbase" ]]'
check "after the root tenant's runs: no cgroup is left" 'cgroups_gone "$T-r"'

# ---- quotas: a fork bomb ----
manifest "$tmp/fb.json" "$T" 1000:1000 '["/payload/payload", "forkbomb"]' '"pids": { "max": 64 }'
"$ctl" run --state "$state" "$tmp/fb.json" >"$tmp/fb.out" 2>"$tmp/fb.err" &
fb=$!
bg+=("$fb")
start=$(date +%s%N)
for i in $(seq 20); do /bin/true; done
host_ms=$((($(date +%s%N) - start) / 1000000))
wait "$fb"
rc=$?
out=$(cat "$tmp/fb.out") err=$(cat "$tmp/fb.err")
forks=$(sed -n 's/^fail EAGAIN after \([0-9]*\) forks$/\1/p' <<<"$out")
check "forkbomb with pids.max 64: fork fails with EAGAIN before 64 processes" \
	'[[ -n $forks && $forks -lt 64 && $forks -gt 0 ]]'
check "forkbomb: the payload then kills its process group (137)" '[[ $rc -eq 137 ]]'
check "the host stayed responsive (20 host processes in ${host_ms} ms during the bomb)" \
	'[[ $host_ms -lt 5000 ]]'
check "after the fork bomb: no cgroup is left" 'cgroups_gone "$T"'

# ---- capabilities ----
run "$tmp/own-r.json" -- /payload/payload caps
capline() { awk -v k="$1:" '$1 == k { print $2 }' <<<"$out"; }
check "user 0:0: no capability (CapEff, CapPrm, CapBnd, CapAmb, CapInh all 0)" \
	'[[ $rc -eq 0 && $(capline CapEff)$(capline CapPrm)$(capline CapBnd)$(capline CapAmb)$(capline CapInh) == $(printf "%016d" 0 0 0 0 0) ]]'
manifest "$tmp/nb.json" "$T-nb" 1000:1000 '["/payload/payload", "caps"]' \
	'"policy": { "capabilities": ["@net-bind"] }'
run "$tmp/nb.json"
check "@net-bind: exactly CAP_NET_BIND_SERVICE (0x400) in CapEff and CapAmb" \
	'[[ $rc -eq 0 && $(capline CapEff) == 0000000000000400 && $(capline CapAmb) == 0000000000000400 ]]'
check "@net-bind: and nothing more in the bounding set" '[[ $(capline CapBnd) == 0000000000000400 ]]'
check "after the capability runs: no cgroup is left" 'cgroups_gone "$T-r" && cgroups_gone "$T-nb"'

# ---- cgroup limits from the manifest ----
manifest "$tmp/lim.json" "$T-l" 1000:1000 '["/payload/payload", "sleep", "3"]' \
	'"cpu": { "max": 0.5, "weight": 200 }, "memory": { "max": "32M", "swap": "0" }, "pids": { "max": 40 }'
tenants+=("$T-l")
"$TENANTCTL" run --state "$state" "$tmp/lim.json" >/dev/null 2>&1 &
lim_pid=$!
limits=""
for _ in $(seq 50); do
	limits=""
	for d in $(cg_paths "$T-l"); do
		for f in memory.limit_in_bytes cpu.cfs_quota_us cpu.shares pids.max memory.max cpu.max; do
			[[ -r $d/$f ]] && limits+="$f=$(cat "$d/$f") "
		done
	done
	[[ $limits == *pids.max=* ]] && break
	sleep 0.1
done
wait "$lim_pid"
check "limits reach the cgroups (cpu 0.5 -> quota 50000/100000, weight 200, 32M, pids 40): $limits" \
	'[[ $limits == *"memory.limit_in_bytes=33554432 "* && $limits == *"cpu.cfs_quota_us=50000 "* &&
	   $limits == *"cpu.shares=2048 "* && $limits == *"pids.max=40 "* ]] ||
	 [[ $limits == *"memory.max=33554432 "* && $limits == *"cpu.max=50000 100000 "* && $limits == *"pids.max=40 "* ]]'
# A host process beside the tenant (in the test's own cgroup, outside the tenant's): the
# OOM killer must pick the tenant's memhog, never it.
sleep 600 &
bystander=$!
bg+=("$bystander")
run "$tmp/lim.json" -- /payload/payload memhog 200
check "memhog beyond memory.max 32M is OOM-killed inside its cgroup (137)" '[[ $rc -eq 137 ]]'
check "the OOM kill stayed in the tenant: a host process beside it lives, no cgroup is left" \
	'kill -0 "$bystander" && cgroups_gone "$T-l"'
kill "$bystander" 2>/dev/null
TIMEFORMAT=%U
cpu_user=$( { time "$TENANTCTL" run --state "$state" "$tmp/lim.json" -- /payload/payload cpuburn 2 >/dev/null 2>&1; } 2>&1 )
check "cpu.max 0.5: a 2 s CPU burn gets about 1 s of CPU (got ${cpu_user}s; 0.5..1.2 accepted)" \
	'awk -v u="$cpu_user" "BEGIN { exit !(u >= 0.5 && u <= 1.2) }"'
check "after the limit runs: no cgroup is left" 'cgroups_gone "$T-l"'

# ---- one tenant per name ----
"$TENANTCTL" run --state "$state" "$tmp/lim.json" -- /payload/payload sleep 3 >/dev/null 2>&1 &
first=$!
bg+=("$first")
for _ in $(seq 50); do
	[[ -n $(cat "$(cg_paths "$T-l" | head -1)/cgroup.procs" 2>/dev/null) ]] && break
	sleep 0.1
done
run "$tmp/lim.json" -- /payload/payload true
check "a second tenant with a running tenant's name is refused (exit 1, says why)" \
	'[[ $rc -eq 1 && $err == *"a tenant named \"$T-l\" is already running"* ]]'
wait "$first"
first_rc=$?
check "... and the running one is not disturbed (it exits 0 on its own)" '[[ $first_rc -eq 0 ]]'
check "... and its cgroups are removed when it ends" 'cgroups_gone "$T-l"'

# ---- declared mounts below the default /tmp and /run stay visible ----
mkdir -p "$tmp/under-tmp" && echo marker >"$tmp/under-tmp/file"
manifest "$tmp/under.json" "$T-u" 1000:1000 '["/payload/payload", "cat", "/tmp/x/file"]' \
	'' ', { "source": "'"$tmp/under-tmp"'", "target": "/tmp/x" }, { "type": "tmpfs", "target": "/run/app" }'
run "$tmp/under.json"
check "a bind declared at /tmp/x is not hidden by the default /tmp" '[[ $rc -eq 0 && $out == *marker* ]]'
run "$tmp/under.json" -- /payload/payload write /run/app/pid
check "a tmpfs declared at /run/app is not hidden by the default /run" '[[ $rc -eq 0 && $out == "ok /run/app/pid" ]]'
tenants+=("$T-u")

# ---- newline and tab in exec arguments and environment values ----
# A python3 -c or sh -c script is ordinary; only NUL and the controls that would
# corrupt what an operator reads are refused (docs/manifest.md).
cat >"$tmp/py.json" <<EOF
{ "name": "$T-py", "user": "1000:1000",
  "exec": ["/usr/bin/python3", "-c", "import os\nprint(1)\nprint(os.environ['SCRIPT'])"],
  "env": { "SCRIPT": "a\tb\nc" } }
EOF
tenants+=("$T-py")
run "$tmp/py.json"
check "exec [python3, -c, \"import os\\nprint(1)\"] runs; a tab and a newline reach env" \
	'[[ $rc -eq 0 && $out == $'"'"'1\na\tb\nc'"'"' ]]'

# ---- an uninstalled tree: build/tenantctl finds ../policies by itself ----
# No TENANTD_POLICY_DIR: the seccomp profile "default" comes from the policies/ next to
# the build/ that holds the running tenantctl (nothing is installed on a test machine;
# where something is, the build tree's own files still win for its own programs).
(
	unset TENANTD_POLICY_DIR TENANTD_VM_IMAGE_DIR
	timeout -k 5 30 "$ctl" run --state "$state" "$tmp/m.json" -- /payload/payload exit 6
) >"$tmp/out" 2>"$tmp/err"
rc=$? out=$(cat "$tmp/out") err=$(cat "$tmp/err")
check "without TENANTD_POLICY_DIR the build tree's tenantctl runs a sandbox (exit 6)" \
	'[[ $rc -eq 6 && -z $err ]]'

# ---- options after the command belong to it ----
run "$tmp/m.json" /payload/payload exit 4 --json
check "run FILE CMD ARGS --json: --json is the command's argument (exit 4)" '[[ $rc -eq 4 && -z $err ]]'

# ---- init created in its cgroup on cgroup v2 ----
# On a cgroup v2 host a sandbox's init is cloned straight into the tenant's v2 cgroup
# (clone3 CLONE_INTO_CGROUP, host/cgroup.c) instead of being moved there under the
# kernel's global migration lock. This machine's v2 hierarchy holds none of a tenant's
# controllers, so no tenant takes that path here: clone_probe tries the very call, with
# init's flags, on a cgroup of this script's own in whatever v2 hierarchy is mounted.
v2_mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
v2_own=$(sed -n 's/^0:://p' /proc/self/cgroup)
probe=$BUILD/tests/integration/clone_probe
if [[ -z $v2_mnt || -z $v2_own ]]; then
	skip "init cloned into a cgroup v2 cgroup: NO CGROUP V2 HIERARCHY MOUNTED here"
elif ! mkdir "$v2_mnt${v2_own%/}/tenantd-clone-$$" 2>"$tmp/err"; then
	skip "init cloned into a cgroup v2 cgroup: cannot create one under $v2_own: $(cat "$tmp/err")"
else
	cg="${v2_own%/}/tenantd-clone-$$"
	out=$("$probe" "$v2_mnt$cg" 2>&1)
	check "clone3 CLONE_INTO_CGROUP: the child starts in $cg, pid 1 of its namespace, reaped by pidfd ($out)" \
		'[[ $out == *"child cgroup=$cg pid=1"* && $out == *"placed=1 pidfd=1"* && $out == *"status=7"* ]]'
	out=$("$probe" - 2>&1)
	check "without a cgroup: a plain clone, the child in this script's cgroup ($out)" \
		'[[ $out == *"child cgroup=$v2_own pid=1"* && $out == *"placed=0 pidfd=1"* && $out == *"status=7"* ]]'
	rmdir "$v2_mnt$cg"
fi

# ---- nothing left behind ----
left=""
for t in "${tenants[@]}"; do
	for d in $(cg_paths "$t"); do [[ -d $d ]] && left+=" $d"; done
done
check "no cgroup of this script's tenants exists now" '[[ -z $left ]] || { echo "# left:$left"; false; }'
check "no mount of the test directory on the host" '! grep -qF " $tmp" /proc/self/mountinfo'

done_testing
