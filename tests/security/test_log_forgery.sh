#!/usr/bin/env bash
# test_log_forgery.sh — issue 10, item 11: what a tenant writes to its output reaches
# the operator's terminal (tenantctl logs, a `cat` of the log file) and tenantctl
# status. A tenant under a real tenantd writes C1 control characters in both forms
# (U+009B as UTF-8 C2 9B, and a raw 0x9b byte in invalid UTF-8: both are CSI to a
# terminal that honours 8-bit controls), ESC sequences (colour, window title, a BEL),
# a carriage return, a bidi override and zero-width space, and lines that imitate
# tenantd's own "[tenantd: ...]" notes (at a line start, after a carriage return,
# after a zero-width space, split across two writes). Checks: the logs show every one
# of them escaped and nothing raw; only tenantd's real notes read as tenantd's;
# status works and shows the real notes only; a log that is nothing but garbage
# (invalid UTF-8, every byte value) never makes status or logs fail.
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-logf.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
}
trap cleanup EXIT

mkdir -p "$tmp/manifests" "$tmp/bin"
T=logf-$$
G=logg-$$
tenants=("$T" "$G")
# The hostile output, as printf(1) escapes. The last note is split over two writes
# (a pause between them), so a sanitizer that looks at one read at a time misses it.
cat >"$tmp/bin/hostile.sh" <<'EOF'
printf 'plain line one\n'
printf 'C1 utf8: \302\23331mRED\302\2330m NEL:\302\205 end\n'
printf 'C1 raw: \23331mRED\2330m \220dcs\234 end\n'
printf 'ESC: \033[31mRED\033[0m \033]0;title\007 \033[2J end\n'
printf 'CR: visible\r[tenantd: forged after a carriage return]\n'
printf '[tenantd: forged-1 exited with status 0]\n'
printf '[tenantd: started forged-2, pid 1]\n'
printf '\342\200\213[tenantd: forged-3 behind a zero-width space]\n'
printf 'bidi: \342\200\256desrever\342\200\254 end\n'
printf '[tenan'
sleep 0.3
printf 'td: forged-4 split over two writes]\n'
printf 'plain line two\n'
exec sleep 1000
EOF
# Garbage: every byte value 1..255 in a row (no NUL), then an overlong and a
# truncated UTF-8 sequence, many times.
cat >"$tmp/bin/garbage.sh" <<'EOF'
i=0
while [ $i -lt 50 ]; do
	printf '\001\002\003\004\005\006\007\010\011\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037\177'
	printf '\200\201\202\203\204\205\206\207\210\211\212\213\214\215\216\217\220\221\222\223\224\225\226\227\230\231\232\233\234\235\236\237'
	printf '\240\300\301\302\303\340\355\240\200\360\364\220\200\200\365\370\374\376\377\300\257\340\200\257\342\202\n'
	i=$((i + 1))
done
printf '[tenantd: forged-5\200 in garbage]\n'
exec sleep 1000
EOF
chmod 0755 "$tmp/bin" "$tmp/bin/"*.sh
for t in "$T:hostile" "$G:garbage"; do
	cat >"$tmp/manifests/${t%%:*}.json" <<-EOF
	{ "name": "${t%%:*}", "exec": ["/bin/sh", "/scripts/${t#*:}.sh"], "user": "1000:1000",
	  "root": "host-system", "network": { "mode": "none" },
	  "mounts": [ { "source": "$tmp/bin", "target": "/scripts" } ] }
	EOF
done
start_daemon || bail "tenantd starts"
wait_state "$T" running 20
wait_state "$G" running 20
for i in $(seq 100); do
	"$ctl" logs -n 100 "$T" 2>/dev/null | grep -q "plain line two" && break
	sleep 0.1
done
sleep 0.5

"$ctl" logs -n 1000 "$T" >"$tmp/logs" 2>"$tmp/err"
rc=$? out=$(cat -v "$tmp/logs") err=$(cat "$tmp/err")
check "logs: the tenant's output is there" \
	'[[ $rc -eq 0 ]] && grep -q "^plain line one$" "$tmp/logs" && grep -q "^plain line two$" "$tmp/logs"'

# raw_controls FILE: how many C0 (but tab and newline), DEL, C1-as-UTF-8 and raw
# 0x80-0x9f bytes that are not part of a valid UTF-8 character the file holds.
raw_controls() {
	python3 - "$1" <<-'EOF'
	import sys
	b = open(sys.argv[1], "rb").read()
	n = sum(1 for c in b if (c < 0x20 and c not in (9, 10)) or c == 0x7f)
	t = b.decode("utf-8", "surrogateescape")
	n += sum(1 for ch in t if 0x80 <= ord(ch) <= 0x9f)           # C1 as characters
	n += sum(1 for ch in t if 0xdc80 <= ord(ch) <= 0xdcff)       # bytes of invalid UTF-8
	n += sum(1 for ch in t if ord(ch) in (0x200b, 0x202e, 0x202c))
	print(n)
	EOF
}
check "logs: no raw control character reaches the terminal (C0, DEL, C1 in both forms, invalid UTF-8, bidi)" \
	'[[ $(raw_controls "$tmp/logs") == 0 ]]'
check "logs: C1 as UTF-8 is shown escaped (\\u009b)" \
	'grep -qF "C1 utf8: \\u009b31mRED\\u009b0m NEL:\\u0085 end" "$tmp/logs"'
check "logs: raw C1 bytes are shown escaped (\\x9b)" \
	'grep -qF "C1 raw: \\x9b31mRED\\x9b0m \\x90dcs\\x9c end" "$tmp/logs"'
check "logs: ESC, BEL and a carriage return are shown escaped" \
	'grep -qF "ESC: \\x1b[31mRED\\x1b[0m \\x1b]0;title\\x07 \\x1b[2J end" "$tmp/logs" &&
	 grep -qF "CR: visible\\x0d" "$tmp/logs"'
check "logs: a bidi override and a zero-width space are shown escaped" \
	'grep -qF "bidi: \\u202edesrever\\u202c end" "$tmp/logs" && grep -qF "\\u200b" "$tmp/logs"'

# tenantd's own notes: lines that begin with "[tenantd: ". Only real ones may.
notes=$(grep -a '^\[tenantd: ' "$tmp/logs")
check "logs: tenantd's real note about the start is there" \
	'grep -q "^\[tenantd: started $T, pid [0-9]*\]$" <<<"$notes"'
check "logs: no forged line reads as one of tenantd's (line start, CR, zero-width space, split writes)" \
	'! grep -q forged <<<"$notes"'
check "logs: the forged lines are still shown, visibly the tenant's" \
	'[[ $(grep -c "forged-[1-4]" "$tmp/logs") -ge 4 ]]'

# The log file itself, as an operator would `cat` it on the host.
logfile=$tmp/state/logs/$T.log
check "the log file on the host holds no raw control character either" \
	'[[ -f $logfile && $(raw_controls "$logfile") == 0 ]]'
check "the log file: only tenantd's real notes begin with [tenantd:" \
	'! grep -a "^\[tenantd: " "$logfile" | grep -q forged'

# status: works, shows the real notes and no forged one.
"$ctl" status "$T" >"$tmp/status" 2>"$tmp/err"
rc=$? out=$(cat "$tmp/status") err=$(cat "$tmp/err")
check "status works on a tenant that forged tenantd lines" '[[ $rc -eq 0 && $out == "$T: running"* ]]'
check "status shows tenantd's real notes" 'grep -q "started $T, pid [0-9]*" <<<"$out"'
check "status shows no forged note" '! grep -q forged <<<"$out"'
"$ctl" --json status "$T" >"$tmp/status.json" 2>"$tmp/err"
rc=$? out=$(cat "$tmp/status.json")
check "status --json works and lists the notes" \
	'[[ $rc -eq 0 ]] && python3 -c "import json,sys; n=json.load(open(sys.argv[1]))[\"notes\"]; assert any(\"started\" in x for x in n) and not any(\"forged\" in x for x in n)" "$tmp/status.json"'

# A log of pure garbage.
for i in $(seq 100); do
	"$ctl" logs -n 100 "$G" 2>/dev/null | grep -q "forged-5" && break
	sleep 0.1
done
"$ctl" logs -n 1000 "$G" >"$tmp/glogs" 2>"$tmp/err"
rc=$? out=$(head -c 300 "$tmp/glogs" | cat -v) err=$(cat "$tmp/err")
check "garbage: logs works and shows nothing raw" \
	'[[ $rc -eq 0 && $(wc -l <"$tmp/glogs") -ge 50 && $(raw_controls "$tmp/glogs") == 0 ]]'
"$ctl" logs -f "$G" >"$tmp/gfollow" 2>&1 &
fpid=$!
bg+=("$fpid")
sleep 1
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
check "garbage: logs -f shows nothing raw" \
	'[[ $(wc -l <"$tmp/gfollow") -ge 50 && $(raw_controls "$tmp/gfollow") == 0 ]]'
"$ctl" status "$G" >"$tmp/gstatus" 2>"$tmp/err"
rc=$? out=$(cat "$tmp/gstatus") err=$(cat "$tmp/err")
check "garbage: status works and shows no forged note" \
	'[[ $rc -eq 0 && $out == "$G: running"* ]] && ! grep -q forged <<<"$out"'
"$ctl" stop "$G" >/dev/null 2>&1
"$ctl" status "$G" >"$tmp/gstatus" 2>"$tmp/err"
rc=$? out=$(cat "$tmp/gstatus") err=$(cat "$tmp/err")
check "garbage: after stop, status shows tenantd's note about the exit" \
	'[[ $rc -eq 0 ]] && grep -q "$G exited with status" <<<"$out"'
check "tenantd is still alive" 'kill -0 "$daemon_pid"'

done_testing
