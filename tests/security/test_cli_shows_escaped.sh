#!/usr/bin/env bash
# test_cli_shows_escaped.sh — tenantctl shows what tenantd sends it escaped, whatever
# tenantd sends. Much of a reply is a tenant's choice: the directories its mounts show
# (mounts_seen), its health check's answer (health_detail), a start error naming a path
# in its root, the notes. tenantd escapes them (test_control_escaped.sh), but the
# operator's terminal must not depend on every string on every path of the daemon being
# escaped: tenantctl escapes what it prints, too. ESC, CSI (raw 0x9b or U+009B), other
# C0/C1 characters, bidi overrides and invalid UTF-8 are shown as \x.. or \u....; a
# newline in a one-line field cannot begin a line of its own.
#
# Setup: a stand-in for tenantd (python3 on a private socket) that answers every
# request with replies full of such bytes; tenantctl --socket talks to it. No root,
# no tenant: this tests the client alone.
set -u
cd "${SRCDIR:-.}" || exit
source tests/lib/tap.sh
TENANTCTL=${TENANTCTL:-$PWD/${BUILD:-build}/tenantctl}
require_built "$TENANTCTL"
command -v python3 >/dev/null || skip_all "python3 is missing: no stand-in daemon; nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-cliesc.XXXXXX)
server_pid=
cleanup() {
	[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
sock=$tmp/ctl.sock

# Every hostile string: ESC-CSI (clears the screen), a raw C1 CSI byte, U+009B, BEL,
# a bidi override, a newline that would begin a forged line, invalid UTF-8.
python3 - "$sock" >"$tmp/server.log" 2>&1 <<-'EOF' &
import json, os, socket, sys
bad = "\x1b[2J\x1b]0;owned\x07" + "\u009b31m" + "\u202e" + "\nFORGED: all is well"
# Fields of many lines (a log, the manifest's diagnostics) keep their newlines: there
# a line of its own is the text's, not a forgery; the rest is escaped the same.
bad_ml = bad.replace("\n", " ")
raw = b'"\x9b\xff"'  # bytes that are not UTF-8, inside a JSON string (tenantd would never send them)
tenant = {"name": "t" + bad, "state": "running" + bad, "busy": "b" + bad,
          "isolation": "sandbox" + bad, "manifest": "/m" + bad, "restart_policy": "on-failure" + bad,
          "pid": 42, "keeper_pid": 41, "uptime_s": 5, "restarts": 0,
          "last_error": "cannot open /srv" + bad, "health": "unhealthy" + bad,
          "health_detail": "http 500: " + bad, "manifest_error": "line 1: " + bad_ml,
          "usage": {"note": "u" + bad},
          "mounts_declared": [{"target": "/d" + bad, "source": "/s" + bad, "mode": "ro" + bad}],
          "notes": ["n" + bad],
          "mounts_seen": [{"target": "/x" + bad, "fstype": "tmpfs" + bad, "mode": "rw" + bad}]}
replies = {
    "status": {"v": 1, "ok": True, "tenant": tenant},
    "list": {"v": 1, "ok": True, "tenants": [tenant]},
    "top": {"v": 1, "ok": True, "tenants": [tenant]},
    "start": {"v": 1, "ok": False, "code": "failed", "error": "cannot start: " + bad},
    "set": {"v": 1, "ok": True, "message": "applied" + bad},
}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rb")
    line = f.readline()
    try:
        op = json.loads(line).get("op", "")
    except Exception:
        op = ""
    if op == "logs":
        c.sendall(json.dumps({"v": 1, "ok": True}).encode() + b"\n")
        c.sendall(json.dumps({"v": 1, "data": "log " + bad_ml + "\n"}).encode() + b"\n")
    elif op == "events":
        c.sendall(json.dumps({"v": 1, "ok": True}).encode() + b"\n")
        c.sendall(json.dumps({"v": 1, "event": "event=x " + bad}).encode() + b"\n")
    elif op == "version":
        c.sendall(b'{"v": 1, "ok": true, "message": "tenantd ' + raw[1:-1] + b'"}\n')
    else:
        c.sendall(json.dumps(replies.get(op, replies["start"])).encode() + b"\n")
    f.close()  # the file holds the socket open too
    c.close()
EOF
server_pid=$!
for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || bail "the stand-in daemon did not start: $(cat "$tmp/server.log")"

# clean FILE: no ESC, BEL, raw C1 (0x80-0x9f as a UTF-8 continuation after 0xc2, or
# alone), U+202E, invalid UTF-8, and no line that begins with the forged text.
clean() {
	python3 - "$1" <<-'EOF'
	import sys
	b = open(sys.argv[1], "rb").read()
	problems = []
	if b"\x1b" in b: problems.append("ESC")
	if b"\x07" in b: problems.append("BEL")
	try:
	    t = b.decode("utf-8")
	except UnicodeDecodeError as e:
	    problems.append("invalid UTF-8 at %d" % e.start)
	    t = b.decode("utf-8", "replace")
	if any(0x80 <= ord(ch) <= 0x9f for ch in t): problems.append("a C1 character")
	if "\u202e" in t: problems.append("U+202E")
	if any(l.lstrip().startswith("FORGED") for l in t.splitlines()): problems.append("a forged line")
	print(", ".join(problems))
	sys.exit(1 if problems else 0)
	EOF
}

shown_clean() { # DESC VERB...
	local desc=$1
	shift
	timeout 10 "$TENANTCTL" --socket "$sock" "$@" >"$tmp/out" 2>"$tmp/err"
	local what
	if what=$(clean "$tmp/out") && what2=$(clean "$tmp/err"); then
		pass "$desc: escaped"
	else
		fail "$desc: ${what:-} ${what2:-} in $(head -c 300 "$tmp/out" "$tmp/err" | od -c | head -5 | tr '\n' ' ')"
	fi
}

shown_clean "status" status t
grep -q 'start failed: cannot open /srv\\x1b\[2J' "$tmp/out" &&
	pass "status: the escaped text is still there to read" ||
	fail "status: the start error is missing or shown otherwise: $(grep 'start failed' "$tmp/out")"
grep -q 'http 500: \\x1b.*\\x0aFORGED' "$tmp/out" &&
	pass "status: the newline in health_detail is shown as \\x0a on the same line" ||
	fail "status: health_detail: $(grep -a 'health:' "$tmp/out")"
shown_clean "list" list
shown_clean "top" top --once
shown_clean "an error reply" start t
grep -q 'cannot start: \\x1b' "$tmp/err" && pass "the error is still shown, escaped" ||
	fail "error: $(cat "$tmp/err")"
shown_clean "set's message" set t cpu.max=1
shown_clean "logs" logs t
shown_clean "events" events
shown_clean "version (bytes that are not UTF-8)" version
done_testing
