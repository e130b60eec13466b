#!/usr/bin/env bash
# tests/integration/test_libraries.sh — a process loads only the libraries it uses
# (issue 11 part 2, shared/DESIGN.md "Layout"): tenantctl, tenantd (and so its keepers
# while they start a tenant: forks of it) and the sandbox path load no libvirt, libxml2,
# glib or gnutls; a running tenant's keeper, tenantd-keeper, loads libc alone, a
# sandbox's and a microVM's (whose child, the runner, holds libvirt); the VM
# runner, tenantd-vm-runner, is the one program that links libvirt. libnftables is loaded
# by the one file that uses it when it applies a ruleset, not at start;
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
source tests/lib/libvirt.sh

tmp=$(mktemp -d /tmp/pk-libs.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
# small_keeper NAME WHAT: tenant NAME's keeper (run.json's keeper_pid, set in $keeper) has
# become tenantd-keeper (daemon/keeper_exec.h), which it does just after it reported the
# start, and maps libc and nothing else of tenantd's: two checks.
small_keeper() {
	local exe="" out
	keeper=""
	for _ in $(seq 200); do
		keeper=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keeper_pid"])' \
			"$tmp/state/tenants/$1/run.json" 2>/dev/null)
		exe=$(readlink "/proc/${keeper:-0}/exe" 2>/dev/null)
		[[ $exe == */tenantd-keeper ]] && break
		sleep 0.05
	done
	check "$2's keeper is tenantd-keeper (keeper ${keeper:-none}: ${exe:-no exe})" \
		'[[ $exe == */tenantd-keeper ]]'
	out=$(awk '$6 ~ /\.so/ {print $6}' "/proc/${keeper:-0}/maps" 2>/dev/null | grep -vE '/(libc|ld-linux[^/]*|libasan|libubsan|libstdc\+\+|libgcc_s|libm)\.so' | sort -u)
	check "it maps libc and nothing else of tenantd's${out:+ ($(tr '\n' ' ' <<<"$out"))}" \
		'[[ -n $keeper && -z $out ]]'
}

cleanup() {
	daemon_cleanup
	[[ -n ${vm_why-x} ]] || vm_domain_purge libs-vm
	libvirt_release
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

keeper=$BUILD/tenantd-keeper
if [[ -x $keeper ]]; then
	out=$(readelf -d "$keeper" 2>&1 | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -vE '^(libc|libasan|libubsan|libstdc\+\+|libgcc_s|libm)\.so')
	check "tenantd-keeper needs libc only${out:+ (needs: $(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
else
	fail "tenantd-keeper is built (no $keeper: run make)"
fi

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
	skip "not root: tenantd and tenantctl run are not started"
	skip "not root: tenantd and tenantctl run are not started"
	skip "not root: tenantd and tenantctl run are not started"
	skip "not root: tenantd and tenantctl run are not started"
	skip "not root: tenantd and tenantctl run are not started"
else
	# Before tenantd starts: it hands TENANTD_VM_IMAGE_DIR on to its keepers.
	vm_probe
	if start_daemon; then
		out=$(grep -E "$heavy" "/proc/$daemon_pid/maps" | awk '{print $6}' | sort -u)
		check "a running tenantd has none of them mapped${out:+ ($(tr '\n' ' ' <<<"$out"))}" '[[ -z $out ]]'
		# A sandboxed tenant's keeper, once the tenant runs, is tenantd-keeper
		# (daemon/keeper_exec.h): libc only, none of tenantd's libraries or heap.
		cat >"$tmp/manifests/libs-kept.json" <<EOF
{ "name": "libs-kept", "isolation": "sandbox", "root": "host-system",
  "exec": ["/bin/sleep", "60"], "network": { "mode": "none" } }
EOF
		"$ctl" reload >/dev/null 2>&1
		"$ctl" start libs-kept >/dev/null 2>&1
		small_keeper libs-kept "a running tenant"
		"$ctl" stop libs-kept >/dev/null 2>&1
		# A microVM tenant's keeper too, once the runner said the service started: its
		# child, the runner, is the one that maps libvirt.
		if [[ -n $vm_why ]]; then
			skip "$vm_why: a microVM tenant's keeper NOT TESTED"
			skip "$vm_why: a microVM tenant's keeper NOT TESTED"
			skip "$vm_why: a microVM tenant's keeper NOT TESTED"
		else
			cat >"$tmp/manifests/libs-vm.json" <<EOF
{ "name": "libs-vm", "isolation": "microvm", "root": "host-system",
  "exec": ["/bin/sleep", "600"], "network": { "mode": "none" },
  "vm": { "memory": "256M" }, "restart": { "on": "no" } }
EOF
			"$ctl" reload >/dev/null 2>&1
			"$ctl" start libs-vm >/dev/null 2>&1
			wait_state libs-vm running 120
			small_keeper libs-vm "a running microVM tenant"
			pss=$(awk '/^Pss:/ {print $2}' "/proc/${keeper:-0}/smaps_rollup" 2>/dev/null)
			echo "# measured: a running microVM tenant's keeper: ${pss:-?} KiB PSS"
			# Its end: the runner killed, so no teardown of its own; tenantd's binary,
			# exec'd by that keeper, destroys the domain (--keeper-finish).
			runner=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["init_pid"])' \
				"$tmp/state/tenants/libs-vm/run.json" 2>/dev/null)
			[[ -n $runner ]] && kill -KILL "$runner"
			wait_state libs-vm failed 60
			check "kill -9 of its runner: the keeper's finish destroys the domain and records 137 (state $(json_field libs-vm state))" \
				'vm_domain_gone libs-vm && grep -q "libs-vm exited with status 137" "$tmp/state/logs/libs-vm.log"'
			check "... and removes the tenant's cgroups, which the runner would have removed" \
				'cgroups_gone libs-vm'
		fi
	else
		fail "tenantd starts"
		fail "tenantd starts"
		fail "tenantd starts"
		fail "tenantd starts"
		fail "tenantd starts"
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
