#!/usr/bin/env bash
# tests/integration/test_libraries.sh — a process loads only the libraries it uses
# (issue 11 part 2, shared/DESIGN.md "Layout"): tenantctl, tenantd (and so its keepers,
# which are forks of it) and the sandbox path load no libvirt, libxml2, glib or gnutls;
# the VM runner, tenantd-vm-runner, is the one program that links libvirt. libnftables
# is loaded by the one file that uses it when it applies a ruleset, not at start;
# Nettle (AES-GCM for volume keys) likewise only when an encrypted volume is opened.
#
# Checked three ways, each able to fail: the direct dependencies in the ELF dynamic
# section (readelf -d NEEDED), the whole closure as the loader resolves it (ldd), and
# what a running tenantd and a running `tenantctl run` of a sandbox have mapped
# (/proc/PID/maps), so that a library opened at run time (dlopen) is caught too.
set -u
cd "${SRCDIR:-.}" || exit 1
export TENANTCTL=${TENANTCTL:-$PWD/build/tenantctl}
source tests/lib/sandbox.sh
source tests/lib/daemon.sh

tmp=$(mktemp -d /tmp/pk-libs.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT

# What only the microVM path may load.
heavy='libvirt|libxml2|libglib|libgio|libgobject|libgnutls'
runner=$BUILD/tenantd-vm-runner

# A missing build product is a failure, not a skip: `make` builds all three.
for prog in "$BUILD/tenantctl" "$BUILD/tenantd"; do
	name=${prog##*/}
	if [[ ! -x $prog ]]; then
		fail "$name is built (no $prog: run make)"
		fail "$name is built (no $prog: run make)"
		fail "$name is built (no $prog: run make)"
		fail "$name is built (no $prog: run make)"
		continue
	fi
	out=$(readelf -d "$prog" 2>&1 | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -E "$heavy")
	check "$name needs no libvirt, libxml2, glib or gnutls directly${out:+ (needs: $(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
	out=$(ldd "$prog" 2>&1 | grep -E "$heavy" | awk '{print $1}')
	check "$name loads none of them through its dependencies either${out:+ (loads: $(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
	# libnftables (and libnftnl, libxtables, libjansson, libgmp) only when a firewall
	# ruleset is applied: host/net.c loads it then.
	out=$(ldd "$prog" 2>&1 | grep -E 'libnftables|libnftnl|libgmp' | awk '{print $1}')
	check "$name loads libnftables only when it applies rules${out:+ (linked: $(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
	# Nettle only when an encrypted volume is opened: storage/keywrap.c loads it. No
	# OpenSSL at all.
	out=$(ldd "$prog" 2>&1 | grep -E 'libnettle|libcrypto|libssl' | awk '{print $1}')
	check "$name loads Nettle only for an encrypted volume, and no OpenSSL${out:+ (linked: $(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
done

if [[ -x $runner ]]; then
	out=$(readelf -d "$runner" 2>&1 | grep NEEDED)
	check "tenantd-vm-runner is the program that links libvirt" '[[ $out == *libvirt.so* ]]'
else
	fail "tenantd-vm-runner is built (no $runner: run make)"
fi

# ---- what running processes have mapped ----
# tenantd idle, and `tenantctl run` of a sandbox while its service runs: neither has
# libvirt in its address space (a dlopen would show here, not in ldd).
if [[ $(id -u) != 0 ]]; then
	skip "not root: tenantd and tenantctl run are not started"
	skip "not root: tenantd and tenantctl run are not started"
else
	if start_daemon; then
		out=$(grep -E "$heavy" "/proc/$daemon_pid/maps" | awk '{print $6}' | sort -u)
		check "a running tenantd has none of them mapped${out:+ ($(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
	else
		fail "tenantd starts"
	fi
	cat >"$tmp/sleeper.json" <<EOF
{ "name": "libs-sleeper", "isolation": "sandbox", "root": "host-system",
  "exec": ["/bin/sleep", "30"], "network": { "mode": "none" } }
EOF
	tenants+=(libs-sleeper)
	"$ctl" run --state "$tmp/run-state" "$tmp/sleeper.json" >"$tmp/run.log" 2>&1 &
	runpid=$!
	bg+=("$runpid")
	# Wait until the sandbox's service has started (the tenant's sleep is a child of
	# tenantctl's init child), then read tenantctl's own maps.
	for _ in $(seq 100); do
		[[ -n $(pgrep -P "$runpid") ]] && break
		sleep 0.05
	done
	if kill -0 "$runpid" 2>/dev/null; then
		out=$(grep -E "$heavy" "/proc/$runpid/maps" | awk '{print $6}' | sort -u)
		check "a running tenantctl run (sandbox) has none of them mapped${out:+ ($(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
		kill -INT "$runpid" 2>/dev/null
		wait "$runpid" 2>/dev/null
	else
		err=$(cat "$tmp/run.log")
		fail "tenantctl run of a sandbox starts"
	fi
fi

done_testing
