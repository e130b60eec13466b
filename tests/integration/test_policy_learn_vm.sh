#!/usr/bin/env bash
# tests/integration/test_policy_learn_vm.sh — learning from a microVM (issue 17):
# `tenantctl policy learn` with a microVM manifest (real libvirtd, QEMU under TCG, the
# real guest image) runs python3's http.server in the guest (its root is host-system:
# the host's /usr) under the agent's filter that notifies, answers as `default` would
# and counts every call; the service asks itself for a few pages and ends. The agent
# reports the counts over the agent protocol and tenantctl writes the profile as for a
# sandbox: it loads, allows fewer calls than default, names what was used and nothing
# of default's blocked families. The same manifest, as a sandbox under the learned
# profile, gives the same answers; calls it never made (getppid, which default allows,
# and ptrace) are refused there with EPERM.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/libvirt.sh
require_sandbox
[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: microVMs need libvirt's system connection; nothing was tested"
command -v qemu-system-x86_64 >/dev/null ||
	skip_all "NO QEMU (qemu-system-x86_64 missing; make test-deps installs it): no microVM was started"
vmdir=$PWD/$BUILD/vm
[[ -r $vmdir/vmlinuz && -r $vmdir/initramfs.img ]] ||
	skip_all "NO VM IMAGE ($vmdir: run make vm-image): no microVM was started"
[[ -x $BUILD/tests/subreaper ]] || skip_all "$BUILD/tests/subreaper missing: run make check"
[[ -x /usr/bin/python3 ]] || skip_all "NO PYTHON3 in the host's /usr: the guest's service has none"

tmp=$(mktemp -d /tmp/tenantd-learnvm.XXXXXX)
chmod 755 "$tmp"
T=lvm-$$
tenants=("$T")
bg=()
cleanup() {
	vm_domain_purge "$T"
	libvirt_release
	sandbox_cleanup
}
trap cleanup EXIT
libvirt_ensure || skip_all "NO LIBVIRT: $libvirt_why"
export TENANTD_VM_IMAGE_DIR=$vmdir

cp -r policies "$tmp/policies"
chmod -R go-w "$tmp/policies"
export TENANTD_POLICY_DIR=$tmp/policies
mkdir -p "$tmp/www/sub"
echo "hello from the learning test" >"$tmp/www/index.html"
head -c 300000 /dev/urandom >"$tmp/www/sub/blob.bin"
# The service: http.server on 127.0.0.1:8080 in a thread, a few requests to itself
# (status and the body's sha256 per path), then the end.
cat >"$tmp/www/selftest.py" <<'EOF'
import hashlib, functools, http.server, threading, urllib.error, urllib.request
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/www")
class Quiet(handler.func):
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 8080), functools.partial(Quiet, directory="/www"))
threading.Thread(target=srv.serve_forever, daemon=True).start()
for path in ["/", "/index.html", "/sub/", "/sub/blob.bin", "/missing", "/index.html?x=1"]:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=30) as r:
            code, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, body = e.code, b""
    print(path, code, hashlib.sha256(body).hexdigest()[:16], flush=True)
srv.shutdown()
EOF
chmod -R a+rX "$tmp/www"
# manifest FILE PROFILE ISOLATION: one manifest, two backends
manifest() {
	cat >"$1" <<EOF
{ "name": "$T", "isolation": "$3", "user": "1000:1000", "root": "host-system",
  "exec": ["/usr/bin/python3", "/www/selftest.py"],
  "mounts": [ { "source": "$tmp/www", "target": "/www", "mode": "ro" } ],
  "network": { "mode": "none" }, "memory": { "max": "768M" }, "pids": { "max": 64 },
  "vm": { "memory": "512M" },
  "policy": { "seccomp": "$2" } }
EOF
}
manifest "$tmp/learn.json" default microvm
out=$tmp/policies/seccomp/learned-vm.json

# ---- learn in the guest ----
t0=$(date +%s)
timeout -k 10 600 "$ctl" policy learn --duration 300s --state "$tmp/state" --out "$out" \
	"$tmp/learn.json" >"$tmp/learn.out" 2>"$tmp/learn.err"
rc=$?
secs=$(($(date +%s) - t0))
sed 's/^/# /' "$tmp/learn.err"
sed 's/^/# learning: /' "$tmp/learn.out"
check "policy learn ran the microVM's service to its end and wrote the profile (rc $rc, ${secs}s)" \
	'[[ $rc == 0 && -s $out ]]'
check "the service answered its requests in the guest while learning" \
	'[[ $(grep -c " 200 " "$tmp/learn.out") == 5 ]] && grep -q "^/missing 404 " "$tmp/learn.out"'
check "it says where the profile went and how to use it" \
	'grep -q "wrote $out: [0-9]* calls allowed (default allows [0-9]*)" "$tmp/learn.err" &&
	grep -q "\"seccomp\": \"learned-vm\"" "$tmp/learn.err"'
check "the learning VM is gone" '! virsh -c "$libvirt_uri" dominfo "tenantd-$T" >/dev/null 2>&1'

# ---- the profile: as a sandbox's ----
check_out=$("$ctl" --json policy check learned-vm default 2>&1)
n_learned=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["syscalls_allowed"])' <<<"$check_out" 2>/dev/null)
n_default=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["syscalls_allowed"])' <<<"$check_out" 2>/dev/null)
check "policy check loads and compiles the learned profile" '"$ctl" policy check learned-vm >/dev/null'
check "the learned profile allows fewer calls than default (${n_learned:-?} < ${n_default:-?})" \
	'[[ -n $n_learned && -n $n_default && $n_learned -gt 20 && $n_learned -lt $n_default ]]'
check "its default action is errno:EPERM" 'grep -q "\"default_action\": \"errno:EPERM\"" "$out"'
check "it names what the service used in the guest (accept4, openat, execve)" \
	'grep -q "\"accept4\?\"" "$out" && grep -q "\"openat\"" "$out" && grep -q "\"execve\"" "$out"'
check "it allows no call of the families default blocks, and names none it did not see" \
	'! grep -q "(allowed)" "$out" && ! grep -q "\"ptrace\"\|\"keyctl\"\|\"mount\"" "$out"'

# ---- the same manifest as a sandbox under the learned profile ----
manifest "$tmp/replay.json" learned-vm sandbox
replayed=$(timeout -k 5 120 "$ctl" run --state "$tmp/state" "$tmp/replay.json" 2>"$tmp/replay.err")
rc=$?
check "the same service, as a sandbox under the learned profile, gives the same answers (rc $rc)" \
	'[[ $rc == 0 && -n $replayed && $replayed == "$(cat "$tmp/learn.out")" ]]' ||
	{ diff "$tmp/learn.out" <(echo "$replayed") | sed 's/^/# /'; tail -5 "$tmp/replay.err" | sed 's/^/# /'; }
# The probe runs as a script file, as the service did (python3 -c would need getcwd,
# which the service never called).
cat >"$tmp/www/probe.py" <<'EOF'
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in [("getppid", 110, ()), ("ptrace", 101, (0, 0, 0, 0))]:
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    print(name, r, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()), flush=True)
EOF
chmod 644 "$tmp/www/probe.py"
probe=$(timeout -k 5 60 "$ctl" run --state "$tmp/state" "$tmp/replay.json" -- /usr/bin/python3 /www/probe.py 2>&1)
echo "$probe" | sed 's/^/# probe: /'
for c in getppid ptrace; do
	check "$c, never made by the service in the guest, fails with EPERM under the learned profile" \
		'grep -q "^$c -1 EPERM$" <<<"$probe"'
done

done_testing
