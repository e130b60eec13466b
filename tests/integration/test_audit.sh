#!/usr/bin/env bash
# tests/integration/test_audit.sh — `tenantctl audit`: a deliberately risky manifest
# lists each of its risks, for a sandbox and, with only "isolation" changed, for a
# microVM; the same manifest with each risk fixed lists none of them. Audited from the
# file, and through a real tenantd (a running sandbox tenant and a microVM tenant that
# is not started: the manifest's findings need no boot; test_daemon_vm.sh audits a
# running microVM's QEMU). The --json form has the documented members.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-audit.XXXXXX)
chmod 755 "$tmp"
tenants=() bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT
mkdir -p "$tmp/manifests" "$tmp/files" "$tmp/shared" "$tmp/root/bin"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the risky tenant's image has no shell"
cp "$busybox" "$tmp/root/bin/busybox"
for a in sh sleep; do ln -s busybox "$tmp/root/bin/$a"; done
export TENANTD_POLICY_DIR=$PWD/policies

# write_manifest FILE NAME ISOLATION risky|fixed [NETWORK-MODE]
write_manifest() {
	python3 - "$@" "$tmp" <<'PY'
import json, sys
path, name, iso, kind, net, tmp = sys.argv[1:7]
m = {"name": name, "isolation": iso, "autostart": iso == "sandbox",
     "exec": ["/bin/sh", "-c", "while :; do sleep 1; done"]}
if kind == "risky":
    m.update({
        "root": {"path": tmp + "/root", "readonly": False},
        "mounts": [{"source": tmp + "/shared", "target": "/shared", "mode": "rw"}],
        "volumes": [{"name": "data", "target": "/data", "size": "64M", "encrypt": False}],
        "memory": {"max": "max"}, "pids": {"max": "max"}, "cpu": {"max": "max"},
        "policy": {"seccomp": "permissive-log", "capabilities": ["net_bind_service", "net_raw"]},
        "restart": {"on": "always"}})
    if net == "private":
        m["network"] = {"mode": "private",
                        "egress": {"deny_lan": False, "allow_host": True},
                        "publish": [{"host": 18080, "port": 80}],
                        "limits": {"conns": "max", "pps": "max", "new_conns": "max",
                                   "smtp": True}}
    else:
        m["network"] = {"mode": "none"}
else:
    m.update({
        "user": "1000:1000",
        "mounts": [{"source": tmp + "/shared", "target": "/shared"}],
        "volumes": [{"name": "data", "target": "/data", "size": "64M"}],
        "restart": {"on": "always"},
        "health": {"exec": ["/bin/true"]},
        "logs": {"syslog": True}})
    if net == "private":
        m["network"] = {"mode": "private", "egress": {"rate": "100mbit"},
                        "ingress": {"rate": "100mbit"},
                        "publish": [{"host": 18080, "port": 80, "address": "127.0.0.1"}]}
    else:
        m["network"] = {"mode": "none"}
if iso == "microvm":
    m["vm"] = {"memory": "128M"}
json.dump(m, open(path, "w"), indent=2)
PY
}

# ids JSON-ARRAY-TEXT: the finding ids of every audited tenant, "name:id" per line
ids() {
	python3 -c '
import json, sys
for t in json.loads(sys.argv[1]):
    for f in t["findings"]:
        print("%s:%s" % (t["name"], f["id"]))' "$1"
}

common="capabilities seccomp-permissive host-rw-mount volume-clear no-memory-limit no-pids-limit no-cpu-limit restart-unchecked logs-local"
network="publish-all lan-open host-open smtp-open no-rate-limit no-abuse-limits"

# ---- from the file, both backends from one manifest ----
for iso in sandbox microvm; do
	write_manifest "$tmp/files/risky-$iso.json" "au-$iso" "$iso" risky private
	write_manifest "$tmp/files/fixed-$iso.json" "au-$iso" "$iso" fixed private
	out=$("$ctl" --json audit "$tmp/files/risky-$iso.json" 2>"$tmp/err")
	rc=$?
	got=$(ids "$out" 2>/dev/null)
	missing=""
	want="$common $network"
	[[ $iso == sandbox ]] && want+=" uid-0 root-writable"
	for id in $want; do grep -qx "au-$iso:$id" <<<"$got" || missing+=" $id"; done
	check "$iso, risky manifest file: every risk is listed (missing:${missing:- none})" \
		'[[ $rc == 0 && -z $missing ]]'
	if [[ $iso == microvm ]]; then
		check "microvm: uid 0 is the guest's, not a finding" '! grep -qx "au-$iso:uid-0" <<<"$got"'
	fi
	out=$("$ctl" --json audit "$tmp/files/fixed-$iso.json")
	got=$(ids "$out" 2>/dev/null)
	check "$iso, the same manifest with each risk fixed: no finding left (${got:-none})" \
		'[[ -n $out && -z $got ]]'
	check "$iso: score 0 once fixed" \
		'python3 -c "import json,sys; assert json.loads(sys.argv[1])[0][\"score\"] == 0" "$out"'
done

out=$("$ctl" audit "$tmp/files/risky-sandbox.json")
check "the text form names each finding with its weight and a fix" \
	'grep -qE "^ +[0-9]+ +uid-0 " <<<"$out" && grep -q "fix: " <<<"$out" && grep -q "exposure [0-9]*/100" <<<"$out"'
out=$("$ctl" --json audit "$tmp/files/risky-sandbox.json")
check "--json: name, isolation, file, score and findings of id, weight, what, fix" \
	'python3 -c "
import json, sys
t = json.loads(sys.argv[1])[0]
assert set(t) == {\"name\", \"isolation\", \"file\", \"score\", \"findings\"}, set(t)
assert 0 < t[\"score\"] <= 100
for f in t[\"findings\"]:
    assert set(f) == {\"id\", \"weight\", \"what\", \"fix\"}, set(f)
w = [f[\"weight\"] for f in t[\"findings\"]]
assert w == sorted(w, reverse=True)
" "$out"'
echo '{"name": "bad", "exec": ["x"]}' >"$tmp/files/bad.json"
out=$("$ctl" audit "$tmp/files/bad.json" 2>&1)
rc=$?
check "an invalid manifest file: exit 2 and the manifest's own error" \
	'[[ $rc == 2 ]] && grep -q "bad.json:1:" <<<"$out"'

# ---- validate warns about a profile that lets dangerous families run ----
mkdir -p "$tmp/policies"
cp -r policies/. "$tmp/policies/"
cp tests/data/policies/good/seccomp/wide.json "$tmp/policies/seccomp/"
for prof in wide default permissive-log; do
	printf '{"name": "v", "exec": ["/bin/true"], "policy": {"seccomp": "%s"}}' "$prof" \
		>"$tmp/files/v-$prof.json"
done
out=$(TENANTD_POLICY_DIR=$tmp/policies "$ctl" validate "$tmp/files/v-wide.json" 2>&1)
rc=$?
check "validate: a profile allowing keyctl and ptrace is valid, with a warning naming both" \
	'[[ $rc == 0 ]] && grep -q "warning: policy.seccomp \"wide\" allows calls that \"default\" refuses as dangerous: ptrace, keyctl" <<<"$out"'
out=$(TENANTD_POLICY_DIR=$tmp/policies "$ctl" --json validate "$tmp/files/v-wide.json" 2>&1)
check "validate --json keeps the warning in the file's warnings" \
	'python3 -c "import json,sys; w = json.loads(sys.argv[1])[0][\"warnings\"]; assert any(\"keyctl\" in x for x in w), w" "$out"'
out=$(TENANTD_POLICY_DIR=$tmp/policies "$ctl" validate "$tmp/files/v-default.json" "$tmp/files/v-permissive-log.json" 2>&1)
check "no such warning for default, nor for permissive-log (its blocked families stay blocked)" \
	'! grep -q "refuses as dangerous" <<<"$out"'

# ---- through tenantd: a running sandbox, a microVM not started ----
write_manifest "$tmp/manifests/au-sandbox.json" au-sandbox sandbox risky none
write_manifest "$tmp/manifests/au-microvm.json" au-microvm microvm risky none
tenants+=(au-sandbox au-microvm)
start_daemon || bail "tenantd starts"
wait_state au-sandbox running 20
check "the risky sandbox tenant runs" '[[ $(json_field au-sandbox state) == running ]]'

out=$("$ctl" --json audit 2>"$tmp/err")
rc=$?
got=$(ids "$out" 2>/dev/null)
missing=""
for t in au-sandbox au-microvm; do
	for id in $common; do grep -qx "$t:$id" <<<"$got" || missing+=" $t:$id"; done
done
grep -qx "au-sandbox:uid-0" <<<"$got" || missing+=" au-sandbox:uid-0"
check "audit (every tenant, through tenantd): each risk of both tenants (missing:${missing:- none})" \
	'[[ $rc == 0 && -z $missing ]]'
check "through tenantd each tenant has its state" \
	'python3 -c "
import json, sys
ts = {t[\"name\"]: t for t in json.loads(sys.argv[1])}
assert ts[\"au-sandbox\"][\"state\"] == \"running\" and ts[\"au-microvm\"][\"state\"] == \"stopped\", ts
scores = [t[\"score\"] for t in json.loads(sys.argv[1])]
assert scores == sorted(scores, reverse=True), scores
" "$out"'
out=$("$ctl" audit au-microvm)
check "audit NAME: one tenant, the text form" 'grep -q "^au-microvm (microvm, stopped): exposure" <<<"$out"'
out=$("$ctl" audit no-such-tenant 2>&1)
rc=$?
check "audit of a name tenantd does not have: exit 1, 'no tenant named'" \
	'[[ $rc == 1 ]] && grep -q "no tenant named \"no-such-tenant\"" <<<"$out"'
out=$("$ctl" audit --all au-sandbox 2>&1)
rc=$?
check "--all with names is a usage error" '[[ $rc == 2 ]] && grep -q "usage" <<<"$out"'

# fixed: the manifests are rewritten and reloaded; the findings are gone
write_manifest "$tmp/manifests/au-sandbox.json" au-sandbox sandbox fixed none
write_manifest "$tmp/manifests/au-microvm.json" au-microvm microvm fixed none
"$ctl" reload >/dev/null
wait_state au-sandbox running 20
out=$("$ctl" --json audit)
got=$(ids "$out" 2>/dev/null)
check "after the fixes and a reload: no finding for either tenant (${got:-none})" \
	'[[ -n $out && -z $got ]]'

done_testing
