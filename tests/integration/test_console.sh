#!/usr/bin/env bash
# test_console.sh — tenantctl console (issues 12 and 16), for a microVM and a sandbox made
# from the same manifest (only "isolation" differs), against a real tenantd, libvirtd and
# QEMU (TCG here) and the real guest image. Driven from a pseudo-terminal as a person
# types (console_pty.py): a command typed into the console runs and its output comes
# back; Ctrl-] detaches, the client ends with 0 and the tenant runs on; `exit 3` in the
# console's shell ends the client with 3; a second client is refused while one is
# attached, and --force takes the console over (the first ends with 1); in the microVM
# the console shows kernel messages (a line written to /dev/kmsg); host users: one whose
# access entry grants `console` gets it through the user socket (audited), one without
# the right is refused, one with no entry on the tenant is answered exactly as for a
# tenant that does not exist; without a terminal the console is a usage error.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
source tests/lib/rsyslog.sh
source tests/lib/libvirt.sh
require_sandbox
require_built "$TENANTD"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) missing"
command -v useradd >/dev/null || skip_all "useradd (passwd) missing"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	skip_all "NO STATIC BUSYBOX (apt-get install busybox-static): the tenants have no shell"

tmp=$(mktemp -d /tmp/tenantd-console.XXXXXX)
chmod 755 "$tmp"
tenants=() bg=() made_users=()
V=tcv-$$ S=tcs-$$ O=tco-$$
cleanup() {
	local p u
	for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; done
	daemon_cleanup
	[[ -n $vm_why ]] || vm_domain_purge "$V"
	libvirt_release
	sandbox_cleanup
	rsyslog_stop
	for u in "${made_users[@]}"; do userdel "$u" 2>/dev/null; done
	[[ -n ${KEEP_TMP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for u in tc-alice tc-bob tc-carol; do
	userdel "$u" 2>/dev/null # left by a test that was killed
	useradd --no-create-home --shell /usr/sbin/nologin --user-group "$u" || bail "useradd $u"
	made_users+=("$u")
done
as() { # USER ARGS...: tenantctl as that user (it finds the user socket by itself)
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups "$ctl" "$@"
}

# The microVM half: what it needs, or why it is skipped ($vm_why).
vm_why="" vmdir=$PWD/$BUILD/vm
vm_probe

mkdir -p "$tmp/root/bin" "$tmp/manifests"
cp "$busybox" "$tmp/root/bin/busybox"
for a in sh cat echo sleep true tty stty; do ln -s busybox "$tmp/root/bin/$a"; done
access='[{ "user": "tc-alice", "allow": ["status", "console"] }, { "user": "tc-bob", "allow": ["status", "exec"] }]'
cat >"$tmp/manifests/$V.json" <<-EOF2
{ "name": "$V", "isolation": "microvm", "user": "0:0",
  "exec": ["/bin/sh", "-c", "while :; do sleep 1; done"],
  "root": { "path": "$tmp/root", "readonly": true },
  "vm": { "memory": "256M" }, "cpu": { "max": 1 }, "stop": { "timeout": "5s" },
  "access": $access }
EOF2
sed -e "s/\"$V\"/\"$S\"/" -e 's/"microvm"/"sandbox"/' -e 's/"vm": { "memory": "256M" }, //' \
	"$tmp/manifests/$V.json" >"$tmp/manifests/$S.json"
# carol's tenant: she has an entry there, none on $V and $S
cat >"$tmp/manifests/$O.json" <<-EOF2
{ "name": "$O", "isolation": "sandbox", "user": "0:0",
  "exec": ["/bin/sh", "-c", "while :; do sleep 1; done"],
  "root": { "path": "$tmp/root", "readonly": true },
  "access": [{ "user": "tc-carol", "allow": ["status", "console"] }] }
EOF2
tenants+=("$S" "$O")
if [[ -n $vm_why ]]; then
	rm "$tmp/manifests/$V.json"
else
	tenants+=("$V")
fi

rsyslog_start "$tmp/syslog" || skip_all "THE PRIVATE RSYSLOGD DID NOT START"
start_daemon --syslog-socket "$rsyslog_sock" || bail "tenantd starts"
wait_state "$S" running 30 || bail "$S runs"
wait_state "$O" running 30 || bail "$O runs"
if [[ -z $vm_why ]]; then
	wait_state "$V" running 120 || bail "$V runs"
	for i in $(seq 300); do "$ctl" exec "$V" -- /bin/true >/dev/null 2>&1 && break; sleep 0.2; done
fi

drive=$SRCDIR/tests/integration/console_pty.py
js() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
state() { "$ctl" --json status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

# How many exec events tenantd has for tenant $1 (its last 1000 events).
exec_events() { "$ctl" events -n 1000 | grep -c "event=exec tenant=$1 "; }

console_cases() { # NAME LABEL
	local t=$1 l=$2 res rc out failed pa execs
	execs=$(exec_events "$t")
	res=$(timeout -k 5 200 python3 "$drive" --rows 31 --cols 97 --timeout 90 \
		--step 'type-until:echo con-$((6*7)):con-42' --step 'type-until:stty size:31 97' \
		--step detach --step wait-exit -- "$ctl" console "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]') failed=$(js "$res" 'v["failed"]')
	check "$l: a command typed into the console runs, its output comes back" \
		'[[ $out == *con-42* ]]'
	echo "# measured: $l: from tenantctl console to a typed command's output: $(js "$res" 'v["ms"][0]') ms"
	check "$l: the console's line has the client's window size (stty size: 31 97)" \
		'[[ $out == *"31 97"* ]]'
	check "$l: Ctrl-] detaches: the client ends with 0" \
		'[[ $failed == None && $rc == 0 && $out == *"Detached from the console"* ]]'
	check "$l: the tenant runs on after the detach" '[[ $(state "$t") == running ]]'
	check "$l: a console session is one console event, not also an exec event" \
		'[[ $(exec_events "$t") == "$execs" ]] && "$ctl" events -n 1000 | grep -q "event=console tenant=$t "'

	# a second client while one is attached: refused; --force takes the console over
	rm -f "$tmp/attached"
	python3 "$drive" --timeout 90 --step 'type-until:echo first-$((6*7)):first-42' \
		--step "touch:$tmp/attached" --step 'expect:took' --step wait-exit \
		-- "$ctl" console "$t" >"$tmp/first.json" &
	pa=$!
	bg+=("$pa")
	for _ in $(seq 900); do [[ -e $tmp/attached ]] && break; sleep 0.1; done
	res=$(timeout -k 5 100 python3 "$drive" --timeout 60 --step wait-exit -- "$ctl" console "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: a second client is refused while one is attached (exit 1, says --force)" \
		'[[ $rc == 1 && $out == *"in use by another client"*"--force"* ]]'
	res=$(timeout -k 5 200 python3 "$drive" --timeout 90 \
		--step 'type-until:echo forced-$((6*7)):forced-42' --step detach --step wait-exit \
		-- "$ctl" console --force "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: console --force takes the console over and works" '[[ $rc == 0 && $out == *forced-42* ]]'
	wait "$pa"
	res=$(cat "$tmp/first.json")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: the client that had it is told and ends with 1" \
		'[[ $rc == 1 && $out =~ took\ (the\ console|it)\ over ]]'

	# the shell's exit ends the client with its status; the next console has a new one
	res=$(timeout -k 5 200 python3 "$drive" --timeout 90 \
		--step 'type-until:echo bye-$((6*7)):bye-42' --step 'type:exit 3' --step wait-exit \
		-- "$ctl" console "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: exit 3 in the console's shell ends the client with 3" '[[ $rc == 3 ]]'
	res=$(timeout -k 5 200 python3 "$drive" --timeout 90 \
		--step 'type-until:echo again-$((6*7)):again-42' --step detach --step wait-exit \
		-- "$ctl" console "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: the next console gets a new shell" '[[ $rc == 0 && $out == *again-42* ]]'
	check "$l: the tenant runs on" '[[ $(state "$t") == running ]]'

	# host users through the user socket
	res=$(timeout -k 5 200 python3 "$drive" --timeout 90 \
		--step 'type-until:echo alice-$((6*7)):alice-42' --step detach --step wait-exit \
		-- setpriv --reuid=tc-alice --regid=tc-alice --init-groups "$ctl" console "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: a user whose entry grants console gets it" '[[ $rc == 0 && $out == *alice-42* ]]'
	check "$l: syslog: alice's console is audited" \
		'grep -q "event=access user=tc-alice uid=$(id -u tc-alice) tenant=$t verb=console result=ok" "$rsyslog_out"'
	res=$(timeout -k 5 100 python3 "$drive" --timeout 60 --step wait-exit \
		-- setpriv --reuid=tc-bob --regid=tc-bob --init-groups "$ctl" console "$t")
	rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
	check "$l: a user without the console right is refused (exec alone is not enough)" \
		'[[ $rc == 1 && $out == *"permission denied: console on $t"* ]]'
	check "$l: syslog: bob's refusal is audited" \
		'grep -q "event=access user=tc-bob uid=$(id -u tc-bob) tenant=$t verb=console result=denied" "$rsyslog_out"'
	local a miss ra rn
	a=$(timeout -k 5 100 python3 "$drive" --timeout 60 --step wait-exit \
		-- setpriv --reuid=tc-carol --regid=tc-carol --init-groups "$ctl" console "$t")
	miss=$(timeout -k 5 100 python3 "$drive" --timeout 60 --step wait-exit \
		-- setpriv --reuid=tc-carol --regid=tc-carol --init-groups "$ctl" console tc-nosuch)
	ra=$(js "$a" 'v["rc"]') rn=$(js "$miss" 'v["rc"]')
	a=$(js "$a" 'v["out"]') miss=$(js "$miss" 'v["out"]')
	check "$l: another user's console answers exactly as a tenant that does not exist" \
		'[[ $ra == "$rn" && $ra == 1 && ${a//$t/X} == "${miss//tc-nosuch/X}" && $a == *"no tenant named"* ]]'
}

if [[ -n $vm_why ]]; then
	skip "microVM: $vm_why: the microVM's console was not tested"
else
	console_cases "$V" microVM
	res=$(timeout -k 5 200 python3 "$drive" --timeout 90 \
		--step 'type-until:echo "<2>kmsg-$((6*7))" >/dev/kmsg:kmsg-42' --step detach --step wait-exit \
		-- "$ctl" console "$V")
	out=$(js "$res" 'v["out"]')
	check "microVM: the console shows the guest kernel's messages (a line written to /dev/kmsg)" \
		'[[ $out =~ \]\ kmsg-42 ]]'
fi
console_cases "$S" sandbox
echo "# sandbox: no kernel of its own, so no kernel messages on its console"

out=$("$ctl" console "$S" </dev/null 2>&1)
rc=$?
check "without a terminal, console is a usage error (2) that points to exec" \
	'[[ $rc == 2 && $out == *"needs a terminal"* ]]'
daemon_stop_check() { kill -0 "$daemon_pid" 2>/dev/null; }
check "tenantd is still running" 'daemon_stop_check'
done_testing
