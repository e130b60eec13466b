#!/usr/bin/env bash
# test_exec_relay.sh — issue 10, item 4, for sandboxes: `tenantctl exec` must never hand
# the operator's terminal, or any descriptor of the client, to a process in the tenant.
# tenantd relays the bytes instead, through pipes it creates, or through a terminal
# allocated inside the tenant (its own devpts instance) when one is asked for.
#
# The hostile case, as a tenant would play it: the exec'd command leaves a process
# behind (`sleep 600 &`), which keeps whatever descriptors the command had. After exec
# has ended, every process in the tenant's cgroups is looked at from the host
# (/proc/PID/fd followed to the file: device and inode, so a terminal is recognised
# whatever its name in the tenant's namespace): none may hold the operator's terminal,
# nor the files or pipes that were the client's stdin, stdout and stderr. Then what the
# relay must still do: stdin reaches the command (and its end, EOF, too), -t gives a
# terminal inside with the operator's window size, a resize reaches it, -T gives none,
# several MiB arrive intact, the exit status comes back, and exec returns although a
# process it left behind still holds the other end of the relay.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"
command -v python3 >/dev/null || skip_all "NO PYTHON3: the terminal helper cannot run; nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-exrelay.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM
here=$SRCDIR/tests/security
T=exr-$$
mkdir -p "$tmp/manifests" "$tmp/data"
chmod 755 "$tmp/data"
cat >"$tmp/manifests/$T.json" <<-EOF2
{ "name": "$T", "exec": ["/bin/sh", "-c", "while :; do sleep 1; done"],
  "user": "1000:1000", "root": "host-system", "network": { "mode": "none" },
  "mounts": [ { "source": "$tmp/data", "target": "/data", "mode": "ro" } ] }
EOF2
tenants+=("$T")
head -c $((8 << 20)) /dev/urandom >"$tmp/data/big"
chmod 644 "$tmp/data/big"
want_sum=$(sha256sum <"$tmp/data/big" | cut -d' ' -f1)
start_daemon || bail "tenantd starts"
wait_state "$T" running 20
rss_before=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon_pid/status")

# Every process in the tenant's cgroups (the hierarchy that has cgroup.procs first).
tenant_procs() {
	local d
	for d in $(cg_paths "$T"); do
		[[ -r $d/cgroup.procs ]] && { cat "$d/cgroup.procs"; return; }
	done
}
leftover_sleeps() { # how many `sleep 600` the tenant holds
	local p c=0
	for p in $(tenant_procs); do
		[[ $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) == "sleep 600 " ]] && c=$((c + 1))
	done
	echo "$c"
}
kill_sleeps() {
	local p
	for p in $(tenant_procs); do
		[[ $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) == "sleep 600 " ]] && kill -KILL "$p" 2>/dev/null
	done
	sleep 0.2
}
js() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- 1. the operator's terminal: a process left behind must not hold it ----
# (It ignores SIGHUP, so that the end of a terminal does not end it.)
res=$(timeout -k 5 60 python3 "$here/exec_pty.py" --record "$tmp/tty.json" -- \
	"$ctl" exec "$T" -- /bin/sh -c 'trap "" HUP; sleep 600 & echo started-bg')
rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
check "exec from a terminal runs and returns (a process left behind)" \
	'[[ $rc == 0 && $out == *started-bg* && $(leftover_sleeps) -ge 1 ]]'
# shellcheck disable=SC2046 # one argument per pid
held=$(python3 "$here/held_fds.py" "[$(cat "$tmp/tty.json")]" $(tenant_procs))
out=$held
check "no process in the tenant holds the operator's terminal after exec (from the host: /proc/PID/fd)" \
	'[[ -z $held ]]'
kill_sleeps

# ---- 2. the client's pipes and files: same ----
mkfifo "$tmp/in.fifo"
sleep 30 >"$tmp/in.fifo" & # a writer that keeps the client's stdin open
bg+=($!)
timeout -k 5 30 "$ctl" exec "$T" -- /bin/sh -c 'sleep 600 & echo started-bg; echo to-stderr >&2' \
	<"$tmp/in.fifo" >"$tmp/o" 2>"$tmp/e"
rc=$?
kill -KILL "${bg[-1]}" 2>/dev/null
wait "${bg[-1]}" 2>/dev/null
files=$(python3 -c 'import os,sys,json; print(json.dumps([[os.stat(p).st_dev, os.stat(p).st_ino] for p in sys.argv[1:]]))' \
	"$tmp/in.fifo" "$tmp/o" "$tmp/e")
# shellcheck disable=SC2046 # one argument per pid
held=$(python3 "$here/held_fds.py" "$files" $(tenant_procs))
out=$held
check "no process in the tenant holds the client's stdin, stdout or stderr after exec" \
	'[[ $rc == 0 && -z $held && $(leftover_sleeps) -ge 1 ]]'
check "stdout and stderr stay apart" '[[ $(cat "$tmp/o") == started-bg && $(cat "$tmp/e") == to-stderr ]]'
kill_sleeps

# ---- 3. exec returns although a process it left behind holds the relay's other end ----
t0=$(date +%s%N)
# (to a file: before the fix, the process left behind held a $(...) pipe forever)
timeout -k 5 20 "$ctl" exec "$T" -- /bin/sh -c 'sleep 600 & echo quick' >"$tmp/o" 2>&1
rc=$?
out=$(cat "$tmp/o")
ms=$((($(date +%s%N) - t0) / 1000000))
check "exec returns (in ${ms} ms) while a background process still holds its stdout" \
	'[[ $rc == 0 && $out == quick && $ms -lt 5000 ]]'
kill_sleeps

# ---- 4. stdin reaches the command; its end does too ----
out=$(printf 'hello\nworld\n' | timeout -k 5 20 "$ctl" exec "$T" -- /bin/cat)
rc=$?
check "stdin reaches the command" '[[ $rc == 0 && $out == $'"'"'hello\nworld'"'"' ]]'
out=$(printf 'abc' | timeout -k 5 20 "$ctl" exec "$T" -- /bin/sh -c 'cat; echo END')
rc=$?
check "the end of stdin (EOF) reaches the command" '[[ $rc == 0 && $out == abcEND ]]'

# ---- 5. -t: a terminal inside the tenant, with the operator's window size ----
res=$(timeout -k 5 60 python3 "$here/exec_pty.py" --rows 37 --cols 101 -- \
	"$ctl" exec "$T" -- /bin/sh -c 'tty; stty size; ls -l /proc/self/fd/0')
rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
check "from a terminal, exec gives the command a terminal of the tenant's own (tty)" \
	'[[ $rc == 0 && $out == */dev/pts/* && $out != *"not a tty"* ]]'
check "the window size is forwarded (stty size says 37 101)" '[[ $out == *"37 101"* ]]'
res=$(timeout -k 5 60 python3 "$here/exec_pty.py" --rows 20 --cols 70 --resize 41 133 1.5 -- \
	"$ctl" exec "$T" -- /bin/sh -c 'stty size; sleep 3; stty size')
rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
check "a resize of the operator's terminal reaches the command (SIGWINCH)" \
	'[[ $rc == 0 && $out == *"20 70"*"41 133"* ]]'
res=$(timeout -k 5 60 python3 "$here/exec_pty.py" -- "$ctl" exec -T "$T" -- /bin/sh -c 'tty; echo x')
rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
check "-T: no terminal even from one" '[[ $out == *"not a tty"* ]]'
res=$(timeout -k 5 60 python3 "$here/exec_pty.py" --input $'typed-line\n' -- \
	"$ctl" exec -t "$T" -- /bin/sh -c 'read l; echo "got:$l"')
rc=$(js "$res" 'v["rc"]') out=$(js "$res" 'v["out"]')
check "-t: what the operator types reaches the command through the terminal" \
	'[[ $rc == 0 && $out == *"got:typed-line"* ]]'

# ---- 6. several MiB arrive intact, both ways; exit status ----
sum=$(timeout -k 5 60 "$ctl" exec "$T" -- /bin/cat /data/big | sha256sum | cut -d' ' -f1)
check "8 MiB of output arrive intact (sha256)" '[[ $sum == "$want_sum" ]]'
t0=$(date +%s%N)
sum=$(timeout -k 5 60 "$ctl" exec -T "$T" -- /bin/cat <"$tmp/data/big" | sha256sum | cut -d' ' -f1)
ns=$(($(date +%s%N) - t0))
check "8 MiB through stdin and back arrive intact (sha256)" '[[ $sum == "$want_sum" ]]'
echo "# measured: exec -T cat of 8 MiB: $((8 * 1000000000 * 100 / ns / 100)).$((8 * 1000000000 * 100 / ns % 100)) MiB/s ($((ns / 1000000)) ms)"
timeout -k 5 20 "$ctl" exec "$T" -- /bin/sh -c 'exit 7'
rc=$?
check "the exit status comes back (7)" '[[ $rc == 7 ]]'
timeout -k 5 20 "$ctl" exec "$T" -- /bin/sh -c 'kill -9 $$'
rc=$?
check "a command killed by a signal: 128+9" '[[ $rc == 137 ]]'
timeout -k 5 20 "$ctl" exec "$T" -- /nonexistent 2>"$tmp/e"
rc=$?
out=$(cat "$tmp/e")
check "a command that cannot run: 127 and the reason on stderr" '[[ $rc == 127 && $out == *nonexistent* ]]'

rss_after=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon_pid/status")
echo "# measured: tenantd RSS before the exec tests ${rss_before} kB, after ${rss_after} kB"
check "tenantd still answers" '"$ctl" list >/dev/null'
done_testing
