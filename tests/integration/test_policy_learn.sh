#!/usr/bin/env bash
# tests/integration/test_policy_learn.sh — learning mode (issue 17): `tenantctl policy
# learn` runs python3's http.server in a real sandbox with the filter that notifies and
# continues every call, while this test sends it HTTP requests through the tenant's own
# network namespace; the profile it writes loads with `policy check` and allows fewer
# calls than `default`; the same manifest run under it answers the same requests; calls
# the service never made (ptrace, keyctl, mount, and getppid, which `default` allows)
# fail with EPERM under it. The same for redis-server and a few commands. Learning from
# a microVM: test_policy_learn_vm.sh.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
require_sandbox
command -v nsenter >/dev/null ||
	skip_all "NSENTER MISSING (apt-get install util-linux): the test cannot reach the tenant's network"

tmp=$(mktemp -d /tmp/tenantd-learn.XXXXXX)
chmod 755 "$tmp"
T=learn-$$
tenants=("$T")
bg=()
trap sandbox_cleanup EXIT

# The shipped profiles, where the learned one will go too; root's and not writable by
# others, as tenantctl run (root) requires.
cp -r policies "$tmp/policies"
chmod -R go-w "$tmp/policies"
export TENANTD_POLICY_DIR=$tmp/policies
mkdir -p "$tmp/www/sub"
echo "hello from the learning test" >"$tmp/www/index.html"
head -c 300000 /dev/urandom >"$tmp/www/sub/blob.bin"
# manifest FILE PROFILE [ISOLATION]
manifest() {
	cat >"$1" <<EOF
{ "name": "$T", "isolation": "${3:-sandbox}", "user": "1000:1000", "root": "host-system",
  "exec": ["/usr/bin/python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "-d", "/www"],
  "mounts": [ { "source": "$tmp/www", "target": "/www", "mode": "ro" } ],
  "network": { "mode": "none" }, "memory": { "max": "512M" }, "pids": { "max": 64 },
  "policy": { "seccomp": "$2" } }
EOF
}
manifest "$tmp/learn.json" default
out=$tmp/policies/seccomp/learned-http.json

# tenant_pid: a process of the running tenant (its cgroup's), for nsenter
tenant_pid() {
	local d p
	for d in $(cg_paths "$T"); do
		p=$(head -1 "$d/cgroup.procs" 2>/dev/null) && [[ -n $p ]] && { echo "$p"; return 0; }
	done
	return 1
}
# requests: the same few requests each time, from inside the tenant's network namespace
# (the host's python3 with nsenter -n: the tenant's loopback, nothing published); prints
# one line per request: status and the body's sha256
requests() {
	local pid
	pid=$(tenant_pid) || return 1
	nsenter -t "$pid" -n python3 - <<'EOF'
import hashlib, time, urllib.error, urllib.request
for i in range(100):
    try:
        urllib.request.urlopen("http://127.0.0.1:8080/", timeout=2).read()
        break
    except OSError:
        time.sleep(0.1)
for path in ["/", "/index.html", "/sub/", "/sub/blob.bin", "/missing", "/index.html?x=1"]:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=5) as r:
            code, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, body = e.code, b""
    print(path, code, hashlib.sha256(body).hexdigest()[:16])
EOF
}
# wait_running: until the tenant's cgroup has a process (at most 10 s)
wait_running() {
	for _ in $(seq 100); do tenant_pid >/dev/null && return 0; sleep 0.1; done
	return 1
}

# ---- learn, while requests are sent ----
"$ctl" policy learn --duration 8s --state "$tmp/state" --out "$out" "$tmp/learn.json" \
	>"$tmp/learn.out" 2>"$tmp/learn.err" &
learner=$!
bg+=("$learner")
wait_running
learned=$(requests)
echo "$learned" | sed 's/^/# learning: /'
wait "$learner"
rc=$?
[[ -n ${LEARN_KEEP:-} ]] && cp "$out" "$LEARN_KEEP"
sed 's/^/# /' "$tmp/learn.err"
check "policy learn ran the service for its duration and wrote the profile (rc $rc)" \
	'[[ $rc == 0 && -s $out ]]'
check "the requests were answered while learning" \
	'[[ $(grep -c " 200 " <<<"$learned") == 5 && $learned == *"/missing 404 "* ]]'
check "it says where the profile went and how to use it" \
	'grep -q "wrote $out: [0-9]* calls allowed (default allows [0-9]*)" "$tmp/learn.err" &&
	grep -q "\"seccomp\": \"learned-http\"" "$tmp/learn.err"'
check "the learning tenant's cgroups are gone" 'cgroups_gone "$T"'

# ---- the profile: loads, smaller than default, denies by default ----
check_out=$("$ctl" --json policy check learned-http default 2>&1)
n_learned=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["syscalls_allowed"])' <<<"$check_out" 2>/dev/null)
n_default=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["syscalls_allowed"])' <<<"$check_out" 2>/dev/null)
check "policy check loads and compiles the learned profile" '"$ctl" policy check learned-http >/dev/null'
check "the learned profile allows fewer calls than default (${n_learned:-?} < ${n_default:-?})" \
	'[[ -n $n_learned && -n $n_default && $n_learned -gt 20 && $n_learned -lt $n_default ]]'
check "its default action is errno:EPERM" 'grep -q "\"default_action\": \"errno:EPERM\"" "$out"'
check "it names what the service used (accept4, openat, execve)" \
	'grep -q "\"accept4\?\"" "$out" && grep -q "\"openat\"" "$out" && grep -q "\"execve\"" "$out"'
check "it allows no call of the families default blocks, and names none it did not see" \
	'! grep -q "(allowed)" "$out" && ! grep -q "\"ptrace\"\|\"keyctl\"\|\"mount\"" "$out"'
# http.server's threads: glibc tries clone3, which default answers ENOSYS, then clone.
if grep -q '"clone3"' "$out"; then
	check "clone3, attempted, keeps default's errno:ENOSYS and is flagged DANGEROUS; clone is allowed" \
		'grep -q "DANGEROUS: calls seen of the families that default blocks: clone3 (refused)" "$out" &&
		grep -B3 "\"syscalls\": \[\"clone3\"\]" "$out" | grep -q "\"errno:ENOSYS\"" &&
		grep -q "\"clone\"" "$out"'
else
	check "no call of the families default blocks was seen, and the profile says so" \
		'grep -q "No call of a family that default blocks was seen" "$out"'
fi
check "the sandbox's init calls are in, marked (init) when the service did not make them" \
	'grep -q "\"wait4\"" "$out" && grep -q "wait4 (init)" "$out"'

# ---- the same manifest under the learned profile ----
manifest "$tmp/run.json" learned-http
check "the manifest with the learned profile validates" '"$ctl" validate "$tmp/run.json" >/dev/null 2>&1'
"$ctl" run --state "$tmp/state" "$tmp/run.json" >"$tmp/run.out" 2>"$tmp/run.err" &
runner=$!
bg+=("$runner")
wait_running
replayed=$(requests)
echo "$replayed" | sed 's/^/# under the learned profile: /'
check "under the learned profile it answers the same requests the same way" \
	'[[ -n $replayed && $replayed == "$learned" ]]'
kill -INT "$runner"
wait "$runner"
rc=$?
check "and stops on SIGINT as under default (rc $rc: 0 or 130)" '[[ $rc == 0 || $rc == 130 ]]'
sed 's/^/# run: /' "$tmp/run.err" | tail -5

# ---- calls it never made fail with EPERM under it ----
# python3 with ctypes, in the same tenant under the learned profile: ptrace (101),
# getppid (110; default allows it), mount (165), keyctl (250).
probe=$("$ctl" run --state "$tmp/state" "$tmp/run.json" -- /usr/bin/python3 -c '
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in [("ptrace", 101, (0, 0, 0, 0)), ("getppid", 110, ()),
                       ("mount", 165, (b"none", b"/tmp", b"tmpfs", 0, 0)), ("keyctl", 250, (0, -3, 0))]:
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    print(name, r, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
' 2>"$tmp/probe.err")
echo "$probe" | sed 's/^/# probe: /'
for c in ptrace mount keyctl getppid; do
	check "$c, never made by the service, fails with EPERM under the learned profile" \
		'grep -q "^$c -1 EPERM$" <<<"$probe"'
done

# ---- redis: learned while commands are sent, the same answers under the profile ----
# redis_cmds: the same commands each time, from inside the tenant's network namespace
redis_cmds() {
	local pid
	pid=$(tenant_pid) || return 1
	for _ in $(seq 100); do
		[[ $(nsenter -t "$pid" -n redis-cli -p 6379 ping 2>/dev/null) == PONG ]] && break
		sleep 0.1
	done
	nsenter -t "$pid" -n sh -c 'for c in "SET k v1" "GET k" "INCR n" "INCR n" "LPUSH l a b c" \
		"LRANGE l 0 -1" "MSET a 1 b 2" "MGET a b" "DBSIZE" "SAVE" "DEL k" "EXISTS k"; do
		echo "$c: $(redis-cli -p 6379 $c | tr "\n" " ")"; done'
}
redis_manifest() {
	cat >"$1" <<EOF
{ "name": "$T", "user": "1000:1000", "root": "host-system",
  "exec": ["/usr/bin/redis-server", "--port", "6379", "--bind", "127.0.0.1", "--dir", "/data",
           "--save", "", "--appendonly", "no"],
  "mounts": [ { "type": "tmpfs", "target": "/data", "size": "16M" } ],
  "network": { "mode": "none" }, "memory": { "max": "512M" }, "pids": { "max": 64 },
  "policy": { "seccomp": "$2" } }
EOF
}
if [[ ! -x /usr/bin/redis-server || ! -x /usr/bin/redis-cli ]]; then
	skip "REDIS NOT INSTALLED (apt-get install redis-server, or make test-deps): redis not learned"
else
	redis_manifest "$tmp/redis-learn.json" default
	rout=$tmp/policies/seccomp/learned-redis.json
	"$ctl" policy learn --duration 6s --state "$tmp/state" --out "$rout" "$tmp/redis-learn.json" \
		>/dev/null 2>"$tmp/redis-learn.err" &
	learner=$!
	bg+=("$learner")
	wait_running
	rlearned=$(redis_cmds)
	wait "$learner"
	rc=$?
	echo "$rlearned" | sed 's/^/# redis learning: /'
	nr=$("$ctl" --json policy check learned-redis 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["syscalls_allowed"])' 2>/dev/null)
	check "redis: learned while commands were answered; the profile loads, ${nr:-?} calls < ${n_default:-?} (rc $rc)" \
		'[[ $rc == 0 && $rlearned == *"GET k: v1"* && $rlearned == *"SAVE: OK"* && -n $nr && $nr -lt $n_default ]]'
	redis_manifest "$tmp/redis-run.json" learned-redis
	"$ctl" run --state "$tmp/state" "$tmp/redis-run.json" >/dev/null 2>"$tmp/redis-run.err" &
	runner=$!
	bg+=("$runner")
	wait_running
	rreplayed=$(redis_cmds)
	kill -TERM "$runner"
	wait "$runner"
	rc=$?
	check "redis: the same answers under the learned profile, and a clean stop on SIGTERM (rc $rc)" \
		'[[ -n $rreplayed && $rreplayed == "$rlearned" && $rc == 0 ]]' ||
		{ diff <(echo "$rlearned") <(echo "$rreplayed") | sed 's/^/# /'; tail -5 "$tmp/redis-run.err" | sed 's/^/# /'; }
fi

# ---- bad --out ----
err=$("$ctl" policy learn --out "$tmp/Not-A-Name.json" "$tmp/learn.json" 2>&1)
rc=$?
check "an --out whose name is not a profile name is refused: exit 2 ($err)" \
	'[[ $rc == 2 && $err == *"is not a profile name"* ]]'
err=$("$ctl" policy learn "$tmp/learn.json" 2>&1)
rc=$?
check "--out is required: exit 2" '[[ $rc == 2 && $err == *"--out FILE is required"* ]]'

done_testing
