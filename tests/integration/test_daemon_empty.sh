#!/usr/bin/env bash
# tests/integration/test_daemon_empty.sh — tenantd on a manifest directory with no
# manifest in it (a fresh install, or every service removed): it starts, answers list,
# status and reload, and stays up. Scanning an empty directory once sorted a NULL list
# (qsort(NULL, 0, ...)), which UBSan aborts on: run it in the asan flavour too.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-empty.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only files tenantd ignores: a dot file and one that does not end in .json.
mkdir -p "$tmp/manifests"
echo '{}' >"$tmp/manifests/.hidden.json"
echo 'notes' >"$tmp/manifests/README"
start_daemon
rc=$?
check "tenantd starts on a manifest directory without manifests" '[[ $rc == 0 ]]'

run_ctl() { out=$("$ctl" "$@" 2>"$tmp/err"); rc=$?; err=$(cat "$tmp/err"); }
run_ctl list
check "list answers, with no tenant" '[[ $rc == 0 ]] && ! grep -q "sandbox\|microvm" <<<"$out"'
run_ctl --json list
check "list --json is an empty array" '[[ $rc == 0 && $(tr -d " \n" <<<"$out") == "[]" ]]'
run_ctl status nobody
check "status of an unknown tenant says there is none" '[[ $rc != 0 ]] && grep -q "no tenant named \"nobody\"" <<<"$err"'
run_ctl reload
check "reload of the empty directory succeeds" '[[ $rc == 0 ]]'
run_ctl list
check "and tenantd still answers after the reload" '[[ $rc == 0 ]]'
check "tenantd is still running" 'kill -0 "$daemon_pid" 2>/dev/null'
check "its log has no sanitizer report" '! grep -q "runtime error\|AddressSanitizer" "$tmp/tenantd.log"'
grep -A3 "runtime error\|AddressSanitizer" "$tmp/tenantd.log" | head -8 | sed 's/^/#   /'

done_testing
