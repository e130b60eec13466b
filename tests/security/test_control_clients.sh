#!/usr/bin/env bash
# test_control_clients.sh — issue 10, item 9: one member of the control group must not
# lock root (or other members) out of tenantd's control socket, and idle clients must
# not hold slots forever. A temporary group is tenantd's socket group; a process with
# a uid of no account (setpriv, that group as a supplementary group) opens as many
# connections as it can and keeps them open. Then: its connections beyond the per-uid
# cap were refused with an error line that says why; root still runs `tenantctl list`;
# a second member also gets in. With the idle timeout shortened (the
# client-idle-timeout key of tenantd.conf), an idle client is told and closed, while a
# client following events (a stream) is not cut.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is missing: cannot act as a group member; nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-ctlc.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
grp=tndc$$
cleanup() {
	local p
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done
	daemon_cleanup
	sandbox_cleanup
	getent group "$grp" >/dev/null && groupdel "$grp"
}
trap cleanup EXIT
groupadd "$grp" || bail "groupadd $grp"
gid=$(getent group "$grp" | cut -d: -f3)
member=1987650 # a uid of no account
member2=1987651

cat >"$tmp/tenantd.conf" <<EOF
# test: idle clients are closed after 2 seconds
client-idle-timeout = 2s
EOF
chmod 0644 "$tmp/tenantd.conf"
daemon_group=$grp
start_daemon --config "$tmp/tenantd.conf" || bail "tenantd starts"
chmod 0711 "$tmp" # the member reaches the socket (root:GROUP 0660) inside

# hog UID N HOLD-SECONDS: opens up to N connections as UID (member of the group),
# sends one request on each that a slot was given to, and reports per connection
# "served", or the error line it got ("refused: ..."), or "closed" (nothing). Keeps
# them open for HOLD-SECONDS, then reports how many are still open (peer not gone).
hog() {
	setpriv --reuid "$1" --regid "$1" --groups "$gid" --inh-caps=-all /usr/bin/python3 - "$TENANTD_SOCKET" "$2" "$3" <<-'EOF'
	import json, socket, sys, time, select
	path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
	socks, res = [], []
	for i in range(n):
	    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	    try:
	        s.connect(path)
	    except OSError as e:
	        res.append("connect: %s" % e.strerror)
	        continue
	    try:
	        s.sendall(b'{"v":1,"op":"version"}\n')
	    except OSError:
	        pass  # refused and closed already: its line is still there to read
	    s.settimeout(5)
	    try:
	        line = s.makefile("rb").readline()
	    except OSError:
	        line = b""
	    if not line:
	        res.append("closed")
	        continue
	    r = json.loads(line)
	    res.append("served" if r.get("ok") else "refused: %s: %s" % (r.get("code"), r.get("error")))
	    socks.append(s)
	for r in sorted(set(res)):
	    print("%d x %s" % (res.count(r), r))
	sys.stdout.flush()
	time.sleep(hold)
	open_ = 0
	for s in socks:
	    s.setblocking(False)
	    try:
	        d = s.recv(4096)
	        if d:
	            print("told: %s" % d.decode().strip())
	        else:
	            continue  # closed by tenantd
	    except BlockingIOError:
	        pass
	    open_ += 1
	print("open after %gs: %d" % (hold, open_))
	EOF
}

# One member opens 300 connections (more than all slots) and holds them 1 s: idle
# clients are closed after 2 s, so nothing is closed yet.
hog "$member" 300 1 >"$tmp/hog1" 2>&1 &
hp=$!
bg+=("$hp")
for i in $(seq 100); do grep -q "x " "$tmp/hog1" && break; sleep 0.1; done
out=$(cat "$tmp/hog1")
check "a member gets at most 32 connections" 'grep -qx "32 x served" <<<"$out"'
check "its other connections are refused with a line that says why" \
	'grep -q "^268 x refused: busy: .*uid $member.* 32" <<<"$out"'
timeout 10 "$ctl" list >"$tmp/out" 2>"$tmp/err"
rc=$? err=$(cat "$tmp/err")
check "root can still run tenantctl list" '[[ $rc -eq 0 ]]'
hog "$member2" 3 0 >"$tmp/hog2" 2>&1
out=$(cat "$tmp/hog2")
check "another member is still served" 'grep -qx "3 x served" <<<"$out"'
wait "$hp"
out=$(cat "$tmp/hog1")

# Fill every slot a member can have (several uids), then root.
fills=()
for u in $(seq 1987700 1987707); do
	hog "$u" 32 4 >"$tmp/fill.$u" 2>&1 &
	fills+=("$!")
	bg+=("$!")
done
sleep 2
cat "$tmp"/fill.* >"$tmp/fill"
served=$(awk '/x served/ {s += $1} END {print s + 0}' "$tmp/fill")
out="served=$served $(grep refused "$tmp/fill" | sort | uniq -c | head -3)"
check "members together get no more than 256 - 16 slots" '[[ $served -le 240 && $served -ge 200 ]]'
check "a member refused for lack of slots is told they are kept for root" \
	'grep -q "refused: busy: .*root" "$tmp/fill"'
timeout 10 "$ctl" list >"$tmp/out" 2>"$tmp/err"
rc=$? err=$(cat "$tmp/err")
check "with every member slot taken, root still runs tenantctl list" '[[ $rc -eq 0 ]]'
wait "${fills[@]}" # not a bare wait: tenantd is a child of this shell too

# Idle: a client that sends nothing is told and closed after the (2 s) timeout; one
# that follows events is not.
"$ctl" events -f >"$tmp/events" 2>&1 &
ep=$!
bg+=("$ep")
out=$(python3 - "$TENANTD_SOCKET" <<-'EOF'
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.connect(sys.argv[1])
	t0 = time.monotonic()
	s.settimeout(10)
	data = b""
	while True:
	    try:
	        d = s.recv(4096)
	    except OSError:
	        print("still open after %.1f s" % (time.monotonic() - t0))
	        sys.exit(0)
	    if not d:
	        break
	    data += d
	print("closed after %.1f s: %s" % (time.monotonic() - t0, data.decode().strip()))
	EOF
)
check "an idle client is closed after the timeout, with a line that says so" \
	'[[ $out =~ ^closed\ after\ [2-4]\.[0-9]\ s:.*\"code\":\"timeout\".*idle ]]'
sleep 1
check "a client following events is not closed as idle" 'kill -0 "$ep" 2>/dev/null'
kill "$ep" 2>/dev/null
wait "$ep" 2>/dev/null
check "tenantd is still alive" 'kill -0 "$daemon_pid"'

done_testing
