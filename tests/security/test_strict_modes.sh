#!/usr/bin/env bash
# test_strict_modes.sh — issue 10, item 10: manifests and policy files that someone
# other than root could change are refused, as sshd's StrictModes does, by tenantd
# (first load and reload) and by `tenantctl run` as root; `tenantctl validate` only
# warns. A refused file never takes a running tenant down: reload keeps its last good
# manifest. Every refusal names the path, what is wrong and the fix.
#
# Works under its own directory in /tmp (root-owned and sticky, which is acceptable
# above a manifest directory, not as one).
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-strict.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin" "$tmp/rstate" "$tmp/pol/seccomp"
cp "$payload_bin" "$tmp/bin/payload"
chmod 0755 "$tmp/bin" "$tmp/bin/payload"
cp policies/seccomp/default.json "$tmp/pol/seccomp/default.json"
chmod 644 "$tmp/pol/seccomp/default.json"
export TENANTD_POLICY_DIR=$tmp/pol

manifest() { # FILE NAME EXEC-JSON
	cat >"$1" <<-EOF
	{ "name": "$2", "exec": $3, "user": "1000:1000", "network": { "mode": "none" },
	  "mounts": [ { "source": "$tmp/bin", "target": "/payload" } ] }
	EOF
	chmod 644 "$1"
	tenants+=("$2")
}

# ---- tenantctl run, as root ----
mkdir -p "$tmp/m"
chmod 755 "$tmp/m"
manifest "$tmp/m/r.json" sm-run '["/payload/payload", "true"]'
run() { timeout -k 5 30 "$ctl" run --state "$tmp/rstate" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err"); }
run "$tmp/m/r.json"
check "run: a manifest only root can change runs" '[[ $rc -eq 0 ]]'

chmod g+w "$tmp/m/r.json"
run "$tmp/m/r.json"
check "run: a group-writable manifest is refused (exit 2), naming it and the fix" \
	'[[ $rc -eq 2 && $err == *"$tmp/m/r.json is writable by group"*"chmod g-w $tmp/m/r.json"* ]]'
chmod g-w,o+w "$tmp/m/r.json"
run "$tmp/m/r.json"
check "run: a world-writable manifest is refused" \
	'[[ $rc -eq 2 && $err == *"$tmp/m/r.json is writable by everyone"*"chmod o-w $tmp/m/r.json"* ]]'
chmod o-w "$tmp/m/r.json"
chown 1000 "$tmp/m/r.json"
run "$tmp/m/r.json"
check "run: a manifest owned by another uid is refused" \
	'[[ $rc -eq 2 && $err == *"$tmp/m/r.json is owned by uid 1000"*"chown root $tmp/m/r.json"* ]]'
chown 0 "$tmp/m/r.json"
chmod 775 "$tmp/m"
run "$tmp/m/r.json"
check "run: a manifest in a group-writable directory is refused, naming the directory" \
	'[[ $rc -eq 2 && $err == *"the directory $tmp/m on its path is writable by group"*"chmod g-w $tmp/m"* ]]'
chmod 1777 "$tmp/m"
run "$tmp/m/r.json"
check "run: ... sticky or not (anyone could add files beside it)" '[[ $rc -eq 2 && $err == *"fix: chmod go-w $tmp/m" ]]'
chmod 755 "$tmp/m"
ln -s "$tmp/m/r.json" "$tmp/link.json"
chown -h 1000 "$tmp/link.json"
run "$tmp/link.json"
check "run: a manifest reached through another user's symbolic link is refused" \
	'[[ $rc -eq 2 && $err == *"$tmp/link.json is owned by uid 1000"* ]]'
mkdir -p "$tmp/sticky/m2"
chmod 1777 "$tmp/sticky"
chmod 755 "$tmp/sticky/m2"
cp -p "$tmp/m/r.json" "$tmp/sticky/m2/r.json"
run "$tmp/sticky/m2/r.json"
check "run: a root-owned sticky directory further up is acceptable (like /tmp)" '[[ $rc -eq 0 ]]'
chmod -t "$tmp/sticky"
run "$tmp/sticky/m2/r.json"
check "run: ... but not a world-writable one without the sticky bit" \
	'[[ $rc -eq 2 && $err == *"the directory $tmp/sticky on its path is writable by everyone"* ]]'
chmod 755 "$tmp/sticky"

chmod o+w "$tmp/pol/seccomp/default.json"
run "$tmp/m/r.json"
check "run: a world-writable seccomp profile is refused, naming it" \
	'[[ $rc -eq 2 && $err == *"$tmp/pol/seccomp/default.json is writable by everyone"* ]]'
chmod o-w "$tmp/pol/seccomp/default.json"
chmod g+w "$tmp/pol/seccomp"
run "$tmp/m/r.json"
check "run: a profile in a group-writable policy directory is refused" \
	'[[ $rc -eq 2 && $err == *"the directory $tmp/pol/seccomp on its path is writable by group"* ]]'
chmod g-w "$tmp/pol/seccomp"

# ---- validate only warns ----
chmod g+w "$tmp/m/r.json" "$tmp/pol/seccomp/default.json"
out=$("$ctl" validate "$tmp/m/r.json" 2>"$tmp/err")
rc=$? err=$(cat "$tmp/err")
check "validate: an untrusted manifest and profile still validate (exit 0)" '[[ $rc -eq 0 && $out == *valid* ]]'
check "validate: ... with a warning for each, naming the fix" \
	'[[ $err == *warning*"$tmp/m/r.json is writable by group"*"chmod g-w"* && $err == *warning*"$tmp/pol/seccomp/default.json is writable by group"* ]]'
chmod g-w "$tmp/m/r.json" "$tmp/pol/seccomp/default.json"
out=$("$ctl" validate "$tmp/m/r.json" 2>&1)
check "validate: no warning for files only root can change" '[[ $out != *warning* ]]'

# ---- tenantd ----
mkdir -p "$tmp/manifests"
chmod 755 "$tmp/manifests"
ticker='["/payload/payload", "sleep", "600"]'
manifest "$tmp/manifests/sm-a.json" sm-a "$ticker"
manifest "$tmp/manifests/sm-b.json" sm-b "$ticker"
chown 1000 "$tmp/manifests/sm-b.json"
start_daemon || bail "tenantd starts"
wait_state sm-a running 10
check "tenantd: a trusted manifest starts" '[[ $(json_field sm-a state) == running ]]'
out=$("$ctl" --json list) err=$(tail -5 "$tmp/tenantd.log")
check "tenantd: a manifest owned by another uid is not loaded" '[[ $out != *sm-b* ]]'
out=$("$ctl" events -n 50)
check "tenantd: ... with a manifest-invalid event that names it and the fix" \
	'grep -q "event=manifest-invalid.*sm-b.json is owned by uid 1000.*chown root" <<<"$out"'

pid_a=$(json_field sm-a pid)
sed -i 's/"sleep", "600"/"sleep", "601"/' "$tmp/manifests/sm-a.json"
chmod g+w "$tmp/manifests/sm-a.json"
out=$("$ctl" reload 2>&1)
sleep 0.5
check "tenantd: after its file became group-writable (and changed), sm-a runs on, not restarted" \
	'[[ $(json_field sm-a state) == running && $(json_field sm-a pid) == "$pid_a" ]]'
out=$("$ctl" status sm-a 2>&1)
check "tenantd: ... and status says why its file is not used" \
	'[[ $out == *"sm-a.json is writable by group"* ]]'
out=$("$ctl" set --save sm-a pids.max=64 2>&1)
rc=$?
check "tenantd: set --save refuses to rewrite that file (root would write beside it)" \
	'[[ $rc -ne 0 && $out == *"sm-a.json is writable by group"* && $(grep -c pids "$tmp/manifests/sm-a.json") == 0 ]]'
chmod g-w "$tmp/manifests/sm-a.json"

chmod g+w "$tmp/manifests"
out=$("$ctl" reload 2>&1)
rc=$?
check "tenantd: reload refuses a group-writable manifest directory (exit 1), naming it and the fix" \
	'[[ $rc -eq 1 && $out == *"$tmp/manifests is writable by group"*"chmod g-w $tmp/manifests"* ]]'
check "tenantd: ... and the running tenant is untouched" \
	'[[ $(json_field sm-a state) == running && $(json_field sm-a pid) == "$pid_a" ]]'
chmod g-w "$tmp/manifests"
out=$("$ctl" reload 2>&1)
for i in $(seq 50); do
	[[ $(json_field sm-a state) == running && $(json_field sm-a pid) != "$pid_a" ]] && break
	sleep 0.1
done
check "tenantd: once root's alone again, reload applies the file's change (restarted)" \
	'[[ $out == *"1 changed"* && $(json_field sm-a state) == running && $(json_field sm-a pid) != "$pid_a" ]]'

chmod o+w "$tmp/pol/seccomp/default.json"
out=$("$ctl" restart sm-a 2>&1)
rc=$?
check "tenantd: a tenant does not start with a world-writable profile, naming it" \
	'[[ $rc -ne 0 && $out == *"$tmp/pol/seccomp/default.json is writable by everyone"* ]]'
chmod o-w "$tmp/pol/seccomp/default.json"
"$ctl" start sm-a >/dev/null 2>&1
wait_state sm-a running 10
check "tenantd: with the profile fixed it starts again" '[[ $(json_field sm-a state) == running ]]'

done_testing
