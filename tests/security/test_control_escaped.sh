#!/usr/bin/env bash
# test_control_escaped.sh — issue 11: text from outside reaches control replies escaped,
# never lost. First the socket group's name, which reaches control replies
# (a refused peer is told "... is neither root nor in group GROUP"), and is escaped
# there like every other string. The name comes from tenantd.conf or --group, so it
# may hold anything: a quote, a control character, bytes that are not UTF-8, or enough
# multibyte characters that the message is cut in the middle of one. Each time the
# refused peer must get one line of valid JSON that says "denied", never a closed
# connection without a word (the JSON generator refuses invalid UTF-8, and a refusal
# that cannot be encoded was silently dropped).
#
# Setup: a private tenantd per name, with no tenants, whose group does not exist (so
# its socket is root:root 0600); the test opens the socket's mode by hand, as an
# operator's mistake would, and connects as a uid of no account (setpriv).
set -u
cd "${SRCDIR:-.}" || exit
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: tenantd and setpriv need root; nothing was tested"
[[ -x $TENANTD ]] || { echo "not ok 1 - $TENANTD is missing (make)"; echo "1..1"; exit 1; }
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is missing: cannot connect as another user; nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-grpname.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	daemon_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT

# refused_line: what a uid of no account reads once connected ("" if the
# connection was closed without a line).
refused_line() {
	setpriv --reuid=65533 --regid=65533 --clear-groups /usr/bin/python3 - "$TENANTD_SOCKET" <<-'EOF'
	import socket, sys
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.connect(sys.argv[1])
	s.settimeout(10)
	data = b""  # the refusal comes unasked (sending would race with the close: a reset)
	while True:
	    try:
	        d = s.recv(4096)
	    except OSError:
	        break
	    if not d:
	        break
	    data += d
	sys.stdout.write(data.decode("latin-1"))
	EOF
}

# valid_denied LINE: one line of valid JSON, code "denied", naming the group.
valid_denied() {
	/usr/bin/python3 -c '
import json, sys
raw = sys.argv[1].encode("latin-1")
raw.decode("utf-8")  # a reply is UTF-8
r = json.loads(raw)
assert r["ok"] is False and r["code"] == "denied", r
assert "neither root nor in group " in r["error"], r
print(r["error"])' "$1"
}

names=($'q"uo\\te\x01bell' $'not\xffutf8' "$(printf 'é%.0s' $(seq 130))")
what=("a quote, a backslash and a control character" "a byte that is not UTF-8" "130 two-byte characters (the message is cut)")
for i in "${!names[@]}"; do
	daemon_group=${names[$i]}
	rm -rf "$tmp/state" "$tmp/manifests"
	if ! start_daemon; then
		fail "tenantd starts with a group named with ${what[$i]}"
		continue
	fi
	chmod 0666 "$TENANTD_SOCKET"
	line=$(refused_line)
	if shown=$(valid_denied "$line" 2>"$tmp/why"); then
		pass "group named with ${what[$i]}: the refused peer gets valid JSON"
		echo "#   error: ${shown:0:120}"
	else
		fail "group named with ${what[$i]}: the refused peer gets valid JSON"
		echo "#   got: $(printf '%q' "${line:0:200}")"
		sed 's/^/#   /' "$tmp/why" | tail -2
	fi
	if [[ $i == 0 ]]; then
		check "the control character is shown escaped as text, not sent raw" \
			'[[ $shown == *"\\x01bell"* && $shown != *$'"'"'\x01'"'"'* ]]'
	fi
	check "tenantd is still alive" 'kill -0 "$daemon_pid"'
	daemon_cleanup
	daemon_pid=""
done

# Then a manifest file whose name is not UTF-8 (the directory may hold any file name;
# the tenant's name inside is what must be simple): `status` shows its path, and must
# still answer, with the path escaped, where the generator used to fail the whole reply
# ("internal encoding error").
daemon_group=root
rm -rf "$tmp/state" "$tmp/manifests"
mkdir -p "$tmp/manifests"
cat >"$tmp/manifests/caf"$'\xe9'".json" <<'EOF'
{ "name": "ce-path", "exec": ["/bin/sleep", "100"], "root": "host-system",
  "network": { "mode": "none" }, "autostart": false }
EOF
if start_daemon; then
	out=$("$ctl" --json status ce-path 2>&1)
	rc=$?
	check "status of a tenant whose manifest's file name is not UTF-8 answers" \
		'[[ $rc == 0 ]] && grep -qF "caf\\\\xe9.json" <<<"$out"'
	check "tenantd is still alive" 'kill -0 "$daemon_pid"'
else
	fail "tenantd starts with a manifest whose file name is not UTF-8"
fi

done_testing
