#!/usr/bin/env bash
# tests/integration/test_volumes.sh — the `volumes` section (issue 13) as far as it is
# built: validate and explain read it the same for both backends, from one manifest
# with only "isolation" changed; the storage directory (tenantd --storage, tenantctl
# run --storage, $TENANTD_STORAGE_DIR) is never handed to a tenant; and, until the
# storage itself exists, a tenant that declares a volume is refused at start, by
# tenantctl run and by tenantd, rather than started without it, while the daemon and
# its other tenants carry on.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-volumes.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

storage=$tmp/storage
mkdir -p "$storage/other"
# manifest ISOLATION NAME: one tenant with one volume
manifest() {
	cat <<JSON
{ "name": "$2", "isolation": "$1", "exec": ["/bin/sleep", "600"],
  "volumes": [ { "name": "data", "target": "/var/lib/app", "size": "64M",
                 "io": { "write": "20M" }, "noexec": true } ] }
JSON
}

for iso in sandbox microvm; do
	manifest "$iso" "vol-$iso" >"$tmp/$iso.json"
	out=$("$ctl" validate "$tmp/$iso.json" 2>&1)
	rc=$?
	check "$iso: validate accepts a volume" '[[ $rc == 0 && $out == *valid* ]]'
	out=$("$ctl" explain "$tmp/$iso.json" 2>&1)
	check "$iso: explain shows it with its defaults" \
		'[[ $out == *"\"volumes\": ["* && $out == *"\"encrypt\": true"* && $out == *"\"write\": \"20M/s\""* && $out == *"\"iops\": \"max\""* ]]'

	out=$(timeout -k 5 30 "$ctl" run --state "$tmp/state" --storage "$storage" "$tmp/$iso.json" 2>&1)
	rc=$?
	check "$iso: run refuses a tenant with a volume, saying why (exit $rc: $out)" \
		'[[ $rc == 1 && $out == *"volumes[0] \"data\": volumes are not supported by this tenantd yet"* ]]'
	check "$iso: and has created nothing in the storage directory" '[[ -z $(ls -A "$storage" | grep -v other) ]]'
done

# The storage directory is tenantd's own: no bind mount, in any mode, may reach it.
cat >"$tmp/grab.json" <<JSON
{ "name": "grab", "exec": ["/bin/true"],
  "mounts": [ { "source": "$storage/other", "target": "/x", "mode": "ro" } ] }
JSON
out=$(timeout -k 5 30 "$ctl" run --state "$tmp/state" --storage "$storage" "$tmp/grab.json" 2>&1)
rc=$?
check "run refuses a bind mount of the storage directory ($out)" \
	'[[ $rc == 2 && $out == *"is in tenantd'"'"'s storage directory"* ]]'
out=$(TENANTD_STORAGE_DIR=$storage "$ctl" validate "$tmp/grab.json" 2>&1)
rc=$?
check "validate too, with \$TENANTD_STORAGE_DIR" '[[ $rc == 2 && $out == *"storage directory"* ]]'
out=$(TENANTD_STORAGE_DIR=$storage timeout -k 5 30 "$ctl" run --state "$tmp/state" "$tmp/grab.json" 2>&1)
rc=$?
check "and run takes its default from \$TENANTD_STORAGE_DIR" '[[ $rc == 2 && $out == *"storage directory"* ]]'

# The daemon: --storage is an option; a volume tenant fails to start, the others run.
mkdir -p "$tmp/manifests"
cp "$tmp/sandbox.json" "$tmp/microvm.json" "$tmp/manifests/"
cp "$tmp/grab.json" "$tmp/manifests/"
cat >"$tmp/manifests/plain.json" <<JSON
{ "name": "plain", "exec": ["/bin/sleep", "600"], "autostart": false }
JSON
tenants+=(plain vol-sandbox vol-microvm)
start_daemon --storage "$storage"
rc=$?
check "tenantd starts with --storage" '[[ $rc == 0 ]]'
check "and says where volumes are kept" 'grep -q "storage $storage" "$tmp/tenantd.log"'
for iso in sandbox microvm; do
	out=$("$ctl" start "vol-$iso" 2>&1)
	rc=$?
	check "$iso: tenantd refuses to start a tenant with a volume (exit 2: the manifest asks for what is not there)" \
		'[[ $rc == 2 && $out == *"volumes are not supported by this tenantd yet"* ]]'
done
out=$("$ctl" list 2>&1)
check "tenantd refuses the manifest that binds its storage directory" \
	'grep -q "storage directory" "$tmp/tenantd.log" && [[ $out != *grab* ]]'
"$ctl" start plain >/dev/null 2>&1
check "a tenant without volumes starts beside them" '[[ $(json_field plain state) == running ]]'
check "tenantd is still running" 'kill -0 "$daemon_pid" 2>/dev/null'
"$ctl" stop plain >/dev/null 2>&1
check "the storage directory holds only what the test put there" '[[ $(ls -A "$storage") == other ]]'

done_testing
