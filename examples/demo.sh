#!/usr/bin/env bash
# examples/demo.sh — tenantd on this machine, in about a minute. Run by `make demo`
# (as root, after the build). It starts a private tenantd on a temporary state
# directory with two sandboxed tenants (a web site on a published port and a
# CPU-limited worker) and, when libvirt, QEMU and the VM image are there, a microVM
# tenant; shows them with tenantctl; and removes everything at the end, also on
# Ctrl-C. Nothing of the host's own tenantd (if any) is touched.
set -u
cd "$(dirname "$0")/.." || exit 1
ctl=${TENANTCTL:-$PWD/build/tenantctl}
tenantd=${TENANTD:-$PWD/build/tenantd}
export TENANTD_POLICY_DIR=${TENANTD_POLICY_DIR:-$PWD/policies}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "${*#"$PWD/"}"; "$@"; }

demo=$(mktemp -d /tmp/tenantd-demo.XXXXXX)
chmod 755 "$demo"
export TENANTD_SOCKET=$demo/control.sock
daemon_pid=""
vm_started=""
cleanup() {
	trap - EXIT INT TERM
	if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		say "Stopping the tenants and tenantd"
		names=$("$ctl" --json list 2>/dev/null | python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))' 2>/dev/null)
		# shellcheck disable=SC2086 # one argument per tenant name (no blanks in names)
		[[ -n $names ]] && "$ctl" stop --timeout 5s $names
		kill -TERM "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	[[ -n $vm_started ]] && libvirt_release
	rm -rf "$demo"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "1. Every example manifest validates; a broken one gets every mistake, with line and column"
show "$ctl" validate examples/*.json
show "$ctl" validate tests/data/manifests/bad/three-errors.json

if [[ $(id -u) -ne 0 ]]; then
	say "SKIPPED: tenantd needs root"
	echo "It creates namespaces, cgroups and network devices for its tenants (which get no"
	echo "privilege themselves). Run 'sudo make demo' to see the rest."
	exit 0
fi

say "2. Three tenants declared in a manifest directory"
mkdir -p "$demo/manifests" "$demo/www"
echo "<h1>hello from a sandboxed tenant</h1>" >"$demo/www/index.html"
cat >"$demo/manifests/demo-web.json" <<EOF
// A static web site served by the host's own python3, confined, on its own address
// behind NAT, published on the host's port 18080.
{
  "name": "demo-web",
  "exec": ["/usr/bin/python3", "-m", "http.server", "8080", "-d", "/srv/www"],
  "user": "1000:1000",
  "root": "host-system",
  "mounts": [ { "source": "$demo/www", "target": "/srv/www", "mode": "ro" } ],
  "memory": { "max": "128M" },
  "pids": { "max": 64 },
  "network": {
    "mode": "private",
    "egress": { "rate": "10mbit" },
    "publish": [ { "host": 18080, "port": 8080 } ]
  },
  "health": { "http": { "port": 8080, "path": "/" }, "interval": "2s", "timeout": "1s" }
}
EOF
cat >"$demo/manifests/demo-worker.json" <<'EOF'
// A busy worker held to a fifth of a CPU.
{
  "name": "demo-worker",
  "exec": ["/bin/sh", "-c", "while :; do :; done"],
  "user": "1000:1000",
  "root": "host-system",
  "cpu": { "max": 0.2 },
  "network": { "mode": "none" },
  "alerts": { "cpu": "90% for 5s" }
}
EOF
if [[ -f build/vm/vmlinuz && -f build/vm/initramfs.img ]]; then
	# libvirtd is started for the demo (and stopped at the end) if none runs.
	# shellcheck source=tests/lib/libvirt.sh
	tmp=$demo source tests/lib/libvirt.sh
	export TENANTD_VM_IMAGE_DIR=$PWD/build/vm
	if tmp=$demo libvirt_ensure; then
		vm_started=1
		cat >"$demo/manifests/demo-vm.json" <<-'EOF'
		// A tenant with a kernel of its own: a microVM (TCG here, KVM where hardware allows).
		{
		  "name": "demo-vm",
		  "isolation": "microvm",
		  "exec": ["/bin/sh", "-c", "echo \"hello from a microVM: kernel $(uname -r), $(nproc) vcpu\"; while :; do sleep 5; done"],
		  "vm": { "vcpus": 1, "memory": "256M" },
		  "network": { "mode": "none" }
		}
		EOF
	else
		echo "(no microVM in this demo: $libvirt_why)"
	fi
else
	echo "(no microVM in this demo: the VM image is missing; make demo builds it)"
fi
for f in "$demo"/manifests/*.json; do sed 's/^/    /' "$f"; echo; done

say "3. tenantd starts them (it would also run under systemd; see docs/operations.md)"
show "$tenantd" --version
"$tenantd" --foreground --manifests "$demo/manifests" --state "$demo/state" \
	--socket "$TENANTD_SOCKET" --group root >"$demo/tenantd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do "$ctl" list >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 150); do
	[[ $("$ctl" --json list | python3 -c 'import json,sys; print(all(t["state"] != "starting" for t in json.load(sys.stdin)))') == True ]] && break
	sleep 0.2
done
sleep 1
show "$ctl" list

say "4. The web site answers on the host's published port"
printf '$ python3 -c "urllib.request.urlopen(\"http://127.0.0.1:18080/\")"\n'
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18080/", timeout=5).read().decode().strip())'

say "5. Inside the tenant: its own user, root, processes and no way out"
# shellcheck disable=SC2016 # expanded by the tenant's shell, not here
show "$ctl" exec demo-web -- /bin/sh -c 'id; echo "/ holds: $(ls / | tr "\n" " ")"; ls /proc | grep -cE "^[0-9]+$" | sed "s/^/processes visible: /"; cat /etc/shadow; ls /home; touch /srv/www/defaced; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'

say "6. Status, usage and logs"
show "$ctl" status demo-web
show "$ctl" top --count 2 --interval 2s
show "$ctl" logs -n 5 demo-web
show "$ctl" events -n 12

if [[ -n $vm_started ]]; then
	say "7. The microVM tenant: its own kernel, under QEMU (TCG where there is no KVM)"
	for _ in $(seq 300); do "$ctl" logs -n 5 demo-vm 2>/dev/null | grep -q "hello from a microVM" && break; sleep 0.2; done
	show "$ctl" status demo-vm
	show "$ctl" logs -n 5 demo-vm
fi
