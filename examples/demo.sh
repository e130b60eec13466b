#!/usr/bin/env bash
# examples/demo.sh — what tenantd does today, on this machine, in about a minute.
# Run by `make demo` (as root, after the build). Everything it creates lives in one
# temporary directory and is removed at the end, also on Ctrl-C.
set -u
cd "$(dirname "$0")/.."
ctl=${TENANTCTL:-$PWD/build/tenantctl}
export TENANTD_POLICY_DIR=${TENANTD_POLICY_DIR:-$PWD/policies}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

demo=$(mktemp -d /tmp/tenantd-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
state=$demo/state

say "1. Every example manifest validates"
show "$ctl" validate examples/*.json

say "2. A manifest with mistakes gets all of them, with line, column and key (exit 2)"
show "$ctl" validate tests/data/manifests/bad/three-errors.json

say "3. The seccomp profiles compile with libseccomp"
show "$ctl" policy check default strict permissive-log

if [[ $(id -u) -ne 0 ]]; then
	say "4. SKIPPED: starting sandboxed tenants needs root"
	echo "tenantctl run creates namespaces and cgroups and maps a host uid range for the"
	echo "tenant (which itself gets no privilege). Run 'sudo make demo' to see it."
	exit 0
fi

say "4. A sandboxed web site: python3's http.server from the host, confined"
mkdir -p "$demo/www" "$demo/data" "$demo/scripts"
echo "<h1>hello from a tenant</h1>" >"$demo/www/index.html"
echo "the operator's private notes" >"$demo/secret.txt"
chown 1000:1000 "$demo/data"
cat >"$demo/site.json" <<EOF
// A static site served by the host's own python3, confined (see examples/ for more).
{
  "name": "demo-site",
  "exec": ["/usr/bin/python3", "-m", "http.server", "8080", "-d", "/srv/www"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [
    { "source": "$demo/www", "target": "/srv/www", "mode": "ro" },
    { "source": "$demo/data", "target": "/data", "mode": "rw" },
    { "source": "$demo/scripts", "target": "/demo", "mode": "ro" }
  ],
  "pids": { "max": 64 }
}
EOF
show "$ctl" validate "$demo/site.json"
# network.mode "none": the tenant has loopback only, so the client runs inside too.
cat >"$demo/scripts/look-around.sh" <<'EOF'
python3 -m http.server 8080 -d /srv/www >/dev/null 2>&1 &
sleep 1
echo "GET / from inside the tenant:"; python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8080/").read().decode().strip())'
echo; echo "who am I:"; id
echo; echo "what I can see at /:"; ls /
echo; echo "my capabilities and filter:"; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status
echo; echo "processes I can see:"; ls /proc | grep -E "^[0-9]+$" | tr "\n" " "; echo
echo; echo "attacks:"
cat /etc/shadow 2>&1 | head -1
ls /home 2>&1 | head -1
touch /srv/www/defaced 2>&1
echo data >/data/written-by-tenant && echo "wrote /data/written-by-tenant (a declared rw mount)"
python3 -c 'import ctypes,os; libc=ctypes.CDLL(None, use_errno=True); r=libc.unshare(0x10000000); print("unshare(CLONE_NEWUSER) ->", os.strerror(ctypes.get_errno()) if r else "succeeded")'
EOF
show "$ctl" run --state "$state" "$demo/site.json" -- /bin/sh /demo/look-around.sh
echo
echo "On the host, the file the tenant wrote is owned by the manifest's uid:"
ls -ln "$demo/data"

say "5. The tenant's exit status is tenantctl's, cgroups and processes are cleaned up"
show "$ctl" run --state "$state" "$demo/site.json" -- /bin/sh -c 'exit 7'
echo "exit status: $?"

say "Not in this demo yet"
echo "The daemon (tenantd, tenantctl list/top), usage monitoring and alerts, transfer"
echo "volumes, and microVM tenants are being built next; see README.md."
