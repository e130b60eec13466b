#!/usr/bin/env bash
# tests/integration/test_health.sh — http health checks, one manifest, both backends
# (issue 12). tenantd runs the same manifest (busybox httpd in a read-only busybox
# root) as a sandbox and, with only "isolation" changed, as a microVM: once checking
# "/" (a file: 200), once checking "/cgi-bin/fail" (a CGI that answers 500). The first
# must be healthy and never restarted; the second must fail with the GET's path in the
# detail, be declared unhealthy after `retries` and restarted. In a sandbox the check
# is tenantd's probe in the tenant's network namespace; in a microVM it is the guest
# agent's GET, so a 500 is no longer a healthy tcp connect there.
#
# tcp checks, the same way: a tenant whose service listens nowhere (and takes 127.0.0.1
# off its loopback where it can: a microVM's root can, a sandbox's cannot) must fail
# its tcp check and be restarted. Without that address the guest's connect fails at
# once (ENETUNREACH) instead of being refused later; the agent once read that as
# connected, and the tenant as healthy.
#
# The microVM half needs libvirt, QEMU and make vm-image, and skips loudly without
# them; the sandbox half still runs.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/libvirt.sh
require_sandbox
[[ -x $TENANTD ]] || skip_all "$TENANTD missing: run make check"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the service has no httpd"
busybox httpd --help 2>&1 | grep -q -- "-h HOME" ||
	skip_all "busybox has no httpd applet: nothing answers the checks"

tmp=$(mktemp -d /tmp/tenantd-health.XXXXXX)
chmod 755 "$tmp"
tenants=() bg=()
cleanup() {
	local t
	daemon_cleanup
	for t in "${tenants[@]}"; do vm_domain_purge "$t"; done
	libvirt_release
	sandbox_cleanup
}
trap cleanup EXIT

vm_why=""
vmdir=$PWD/$BUILD/vm
vm_probe

# The root: a static busybox, a page, and a CGI that answers 500.
mkdir -p "$tmp/root/bin" "$tmp/root/www/cgi-bin" "$tmp/manifests"
cp "$busybox" "$tmp/root/bin/busybox"
for a in sh httpd printf ip sleep; do ln -s busybox "$tmp/root/bin/$a"; done
echo "hello" >"$tmp/root/www/index.html"
printf '#!/bin/sh\nprintf "Status: 500 Broken\\r\\nContent-Type: text/plain\\r\\n\\r\\nbroken\\n"\n' \
	>"$tmp/root/www/cgi-bin/fail"
chmod -R a+rX "$tmp/root"
chmod 755 "$tmp/root/www/cgi-bin/fail"

# manifest NAME ISOLATION PATH: the one manifest, its name, isolation and checked path
# filled in (PATH "tcp": the tcp tenant). The timeout and interval leave room for a
# guest under TCG.
manifest() {
	python3 - "$tmp" "$@" <<'PY'
import json, sys
tmp, name, isolation, path = sys.argv[1:5]
m = {"name": name, "isolation": isolation, "user": "0:0",
     "exec": ["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"],
     "root": {"path": tmp + "/root", "readonly": True},
     "restart": {"on": "always", "backoff": "1s..2s", "burst": 20},
     "stop": {"timeout": "5s"},
     "health": {"http": {"port": 8080, "path": path}, "interval": "2s", "timeout": "2s",
                "retries": 2, "start_period": "0s" if path != "/" else "30s"}}
if path == "tcp":
    m["exec"] = ["/bin/sh", "-c", "ip addr del 127.0.0.1/8 dev lo 2>/dev/null && echo no-127; exec sleep 100000"]
    m["health"] = {"tcp": 8081, "interval": "2s", "timeout": "2s", "retries": 2,
                   "start_period": "0s"}
    m["restart"]["burst"] = 1  # one restart, then crashloop: no churn beside the others
if isolation == "microvm":
    m["vm"] = {"memory": "256M"}
json.dump(m, open(tmp + "/manifests/" + name + ".json", "w"), indent=2)
PY
	tenants+=("$1")
}

backends=(sandbox)
[[ -z $vm_why ]] && backends+=(microvm)
for b in "${backends[@]}"; do
	manifest "hh-ok-${b:0:2}" "$b" /
	manifest "hh-bad-${b:0:2}" "$b" /cgi-bin/fail
	manifest "hh-tcp-${b:0:2}" "$b" tcp
done
start_daemon || bail "tenantd did not start"

# results BACKEND: the checks for the two tenants of one backend
results() {
	local b=$1 ok=hh-ok-${1:0:2} bad=hh-bad-${1:0:2} i
	for i in $(seq 1800); do
		[[ $(json_field "$ok" health) == healthy ]] && break
		sleep 0.1
	done
	check "$b: an http check of a service answering 200 is healthy" \
		'[[ $(json_field "$ok" health) == healthy ]]'
	for i in $(seq 1800); do
		"$ctl" events -n 500 2>/dev/null | grep -q "event=unhealthy tenant=$bad action=restart" && break
		sleep 0.1
	done
	out=$("$ctl" events -n 500 2>/dev/null)
	check "$b: a service answering 500 fails its check, with the path in the detail" \
		'grep "event=health-failed tenant=$bad " <<<"$out" | grep -q "GET /cgi-bin/fail"'
	check "$b: after 2 failures (retries) it is unhealthy and restarted" \
		'grep -q "event=unhealthy tenant=$bad action=restart failures=2" <<<"$out"'
	# (started twice: it keeps failing, so a microVM under TCG is running again only
	# for the seconds between its boot and the next two failed checks)
	started() { "$ctl" events -n 500 2>/dev/null | grep -c "event=started tenant=$bad "; }
	for i in $(seq 600); do
		[[ $(json_field "$bad" restarts) -ge 1 && $(started) -ge 2 ]] && break
		sleep 0.1
	done
	check "$b: it runs again, restarted ($(json_field "$bad" restarts) restarts, started $(started) times)" \
		'[[ $(json_field "$bad" restarts) -ge 1 && $(started) -ge 2 ]]'
	check "$b: the healthy one was never restarted and never failed a check" \
		'[[ $(json_field "$ok" restarts) == 0 ]] && ! grep -q "tenant=$ok " <<<"$(grep "event=health-failed" <<<"$out")"'
	tcp_results "$b"
}

# tcp_results BACKEND: the tcp tenant of one backend
tcp_results() {
	local b=$1 t=hh-tcp-${1:0:2} i
	for i in $(seq 1800); do
		"$ctl" events -n 500 2>/dev/null | grep -qE "event=(unhealthy|healthy) tenant=$t " && break
		sleep 0.1
	done
	out=$("$ctl" events -n 500 2>/dev/null)
	check "$b: a tcp check on a port nothing listens on fails, unhealthy after 2, restarted" \
		'grep -q "event=health-failed tenant=$t .*8081" <<<"$out" && grep -q "event=unhealthy tenant=$t action=restart failures=2" <<<"$out"'
	check "$b: ... and it is never once healthy" '! grep -q "event=healthy tenant=$t" <<<"$out" && [[ $(json_field "$t" health) != healthy ]]'
	[[ $b == microvm ]] && check "microvm: the guest's root took 127.0.0.1 off its loopback (so connect fails at once)" \
		'grep -qs no-127 "$tmp/state/logs/$t.log"'
	"$ctl" stop "hh-ok-${b:0:2}" "hh-bad-${b:0:2}" "$t" >/dev/null 2>&1
}
results sandbox
if [[ -n $vm_why ]]; then
	skip "microvm: the http checks: $vm_why"
else
	results microvm
	out=$("$ctl" events -n 500 2>/dev/null)
	check "microvm: the detail is the agent's, with the status line it read" \
		'grep "event=health-failed tenant=hh-bad-mi " <<<"$out" | grep -q "500 Broken"'
fi
done_testing
