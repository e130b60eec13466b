#!/usr/bin/env bash
# test_tenantctl_cli.sh — tenantctl's daemon-less verbs as an operator uses them: exit
# statuses, hostile and oversized input, --json output, stdin, non-regular files.
set -u
ctl=${TENANTCTL:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tests/lib/tap.sh
source "$(dirname "$0")/../lib/tap.sh"

# run CMD...: sets $rc, $out (stdout), $err (stderr)
run() {
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

good=$tmp/good.json
printf '{"name": "web", "exec": ["/usr/sbin/nginx"]}\n' >"$good"

# --- the three hostile inputs named by the issue: one clear error each, exit 2 ---
python3 -c "import sys; sys.stdout.write('['*524288 + ']'*524288)" >"$tmp/nested-1mib.json"
run "$ctl" validate "$tmp/nested-1mib.json"
check "1 MiB of nested arrays: exit 2" '[[ $rc -eq 2 ]]'
check "1 MiB of nested arrays: one line that names the limit" \
	'[[ $(wc -l <<<"$err") -eq 1 && $err == *"limit is 262144 bytes"* ]]'

python3 -c "import sys; sys.stdout.write('{\"a\":' + '['*5000 + ']'*5000 + '}')" >"$tmp/nested-deep.json"
run "$ctl" validate "$tmp/nested-deep.json"
check "deep nesting within the size limit: exit 2, one line, names the depth" \
	'[[ $rc -eq 2 && $(wc -l <<<"$err") -eq 1 && $err == *"nesting deeper than 16 levels"* ]]'

printf '{"name": "caf\xc3", "exec": ["/bin/true"]}' >"$tmp/utf8.json"
run "$ctl" validate "$tmp/utf8.json"
check "invalid UTF-8: exit 2, one line with line:column" \
	'[[ $rc -eq 2 && $(wc -l <<<"$err") -eq 1 && $err == *"utf8.json:1:14: invalid UTF-8"* ]]'

: >"$tmp/empty.json"
run "$ctl" validate "$tmp/empty.json"
check "empty file: exit 2, one line" \
	'[[ $rc -eq 2 && $(wc -l <<<"$err") -eq 1 && $err == *"empty input"* ]]'

# --- every error, not just the first ---
cat >"$tmp/three.json" <<'JSON'
{
  "name": "Bad Name",
  "exec": ["/bin/true"],
  "cpu": { "max": "lots" },
  "pids": { "max": 0 }
}
JSON
run "$ctl" validate "$tmp/three.json"
check "three errors print three lines" '[[ $rc -eq 2 && $(wc -l <<<"$err") -eq 3 ]]'
check "errors come in file order" \
	'[[ $(cut -d: -f2 <<<"$err" | tr "\n" " ") == "2 4 5 " ]]'

# --- several files: all are checked, exit 0 only if all are valid ---
run "$ctl" validate "$good" "$tmp/three.json" "$good"
check "mixed files: exit 2" '[[ $rc -eq 2 ]]'
check "mixed files: both valid files reported on stdout" '[[ $(grep -c ": valid" <<<"$out") -eq 2 ]]'
run "$ctl" validate "$good" "$good"
check "all valid: exit 0" '[[ $rc -eq 0 && -z $err ]]'

# --- files that are not manifests ---
run "$ctl" validate "$tmp/does-not-exist.json"
check "missing file: exit 2 with the reason" '[[ $rc -eq 2 && $err == *"No such file"* ]]'
run "$ctl" validate "$tmp"
check "directory: exit 2" '[[ $rc -eq 2 && $err == *"is a directory"* ]]'
run timeout 10 "$ctl" validate /dev/zero
check "/dev/zero is refused, not read forever" '[[ $rc -eq 2 && $err == *"not a regular file"* ]]'
mkfifo "$tmp/fifo"
run timeout 10 "$ctl" validate "$tmp/fifo"
check "a FIFO is refused without blocking" '[[ $rc -eq 2 && $err == *"not a regular file"* ]]'
head -c 300000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
run "$ctl" validate "$tmp/big.json"
check "a 300 kB file is refused by size" '[[ $rc -eq 2 && $err == *"limit is 262144"* ]]'
run "$ctl" validate - <"$good"
check "stdin with -" '[[ $rc -eq 0 && $out == "-: valid"* ]]'

# --- --json ---
run "$ctl" --json validate "$good" "$tmp/three.json"
check "--json validate: exit 2 and parseable output" \
	'[[ $rc -eq 2 ]] && python3 -c "
import json, sys
r = json.loads(sys.argv[1])
assert len(r) == 2 and r[0][\"valid\"] and r[0][\"name\"] == \"web\"
assert not r[1][\"valid\"] and len(r[1][\"errors\"]) == 3
e = r[1][\"errors\"][0]
assert e[\"line\"] == 2 and e[\"path\"] == \"name\" and e[\"column\"] == 11
" "$out"'

# --- explain ---
run "$ctl" explain "$good"
check "explain: exit 0" '[[ $rc -eq 0 ]]'
printf '%s\n' "$out" >"$tmp/explained.json"
check "explain output is valid JSON with defaults filled in" \
	'python3 -c "
import json, sys
m = json.load(open(sys.argv[1]))
assert m[\"memory\"][\"max\"] == \"512M\" and m[\"pids\"][\"max\"] == 512
assert m[\"policy\"][\"seccomp\"] == \"default\" and m[\"network\"] == {\"mode\": \"none\"}
" "$tmp/explained.json"'
run "$ctl" validate "$tmp/explained.json"
check "explain output validates as a manifest" '[[ $rc -eq 0 ]]'
run "$ctl" explain "$tmp/three.json"
check "explain of an invalid manifest: exit 2 and the errors" \
	'[[ $rc -eq 2 && $(wc -l <<<"$err") -eq 3 && -z $out ]]'

# --- usage ---
run "$ctl"
check "no verb: exit 2 with usage" '[[ $rc -eq 2 && $err == *Usage* ]]'
run "$ctl" frobnicate
check "unknown verb: exit 2" '[[ $rc -eq 2 && $err == *"unknown verb"* ]]'
run "$ctl" validate
check "validate without files: exit 2" '[[ $rc -eq 2 ]]'
run "$ctl" --help
check "--help: exit 0, usage on stdout" '[[ $rc -eq 0 && $out == *Usage* ]]'

# --- global options after the verb too (as systemctl and virsh take them) ---
run "$ctl" --json validate "$good" "$tmp/three.json"
before=$out
run "$ctl" validate "$good" "$tmp/three.json" --json
check "validate FILE... --json: the same JSON as --json validate" \
	'[[ $rc -eq 2 && -n $out && $out == "$before" ]]'
run "$ctl" explain --socket "$tmp/nowhere.sock" "$good"
check "--socket after the verb is taken as the global option" '[[ $rc -eq 0 && -n $out ]]'
run "$ctl" list --json --socket "$tmp/nowhere.sock"
check "list --json --socket PATH: tries that socket (tenantd is not running there)" \
	'[[ $rc -eq 1 && $err == *"nothing listens on $tmp/nowhere.sock"* ]]'
run "$ctl" exec --socket "$tmp/nowhere.sock" web /bin/echo --json
check "exec NAME CMD --json: options after the command are the command's" \
	'[[ $rc -eq 1 && $err == *"nothing listens on $tmp/nowhere.sock"* ]]'

# --- usage errors say which verb and what is wrong ---
run "$ctl" list extra
check "list with an argument: exit 2, names the verb and the argument" \
	'[[ $rc -eq 2 && $err == *"tenantctl list: unexpected argument \"extra\""* && $err == *"usage: tenantctl list"* ]]'
run "$ctl" status
check "status without NAME: exit 2, says what is missing" \
	'[[ $rc -eq 2 && $err == *"tenantctl status: missing NAME"* ]]'
run "$ctl" stop --bogus web
check "an unknown option of a verb: exit 2, names verb and option" \
	'[[ $rc -eq 2 && $err == *"tenantctl stop: unknown option --bogus"* && $err == *"usage: tenantctl stop [--timeout DURATION] NAME..."* ]]'
run "$ctl" kill web --signal
check "an option without its value: exit 2, says so" \
	'[[ $rc -eq 2 && $err == *"tenantctl kill: option --signal needs a value"* ]]'
run "$ctl" exec web
check "exec without a command: exit 2, says the command is missing" \
	'[[ $rc -eq 2 && $err == *"tenantctl exec: missing COMMAND"* ]]'
run "$ctl" stop --help
check "VERB --help: exit 0, that verb's usage on stdout" \
	'[[ $rc -eq 0 && $out == *"usage: tenantctl stop [--timeout DURATION] NAME..."* ]]'
run "$ctl" policy show
check "policy show without NAME: exit 2 with the usage" '[[ $rc -eq 2 && $err == *"usage: tenantctl policy"* ]]'

done_testing
