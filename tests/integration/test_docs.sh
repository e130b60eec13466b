#!/usr/bin/env bash
# tests/integration/test_docs.sh — the operator-facing reference against the programs:
# the man pages render without warnings and name every verb, option and manifest key
# the programs and docs/manifest.md have; docs/cli.md and docs/protocol.md cover every
# verb, op and error code; the bash completion completes verbs, options, files,
# signals, profiles and the tenant names of a running tenantd; the systemd unit and the
# example configuration are accepted by systemd-analyze and tenantd; make install and
# uninstall put everything where docs/operations.md says.
set -u
cd "${SRCDIR:-.}" || exit 1
export TENANTCTL=${TENANTCTL:-$PWD/build/tenantctl}
source tests/lib/sandbox.sh
source tests/lib/daemon.sh

tmp=$(mktemp -d /tmp/pk-docs.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT

MAN=docs/man
render() { MANWIDTH=80 man -l "$1" 2>/dev/null | col -b; }

# ---- the man pages render without warnings ----
if command -v man >/dev/null && command -v col >/dev/null; then
	for page in "$MAN/tenantd.8" "$MAN/tenantctl.8" "$MAN/tenantd-manifest.5"; do
		warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		lines=$(render "$page" | wc -l)
		check "$page renders without warnings ($lines lines)" '[[ -z $warnings && $lines -gt 50 ]]'
		[[ -n $warnings ]] && sed 's/^/#   /' <<<"$warnings" | head -5
	done
	have_man=1
else
	skip "man or col missing (apt-get install man-db bsdextrautils): man pages not rendered"
	have_man=0
fi

# missing WHAT LIST TEXT: prints the items of LIST that TEXT does not contain as a word
missing() {
	local item out=
	for item in $2; do
		grep -qwF -- "$item" <<<"$3" || out+=" $item"
	done
	[[ -n $out ]] && echo "# $1 lacks:$out"
	[[ -z $out ]]
}

# ---- every verb of tenantctl --help, in tenantctl.8 and docs/cli.md ----
help=$("$ctl" --help)
verbs=$(awk '/^(Without a daemon|With tenantd)/ { s = 1; next } /^[A-Z]/ { s = 0 }
	s && /^  [a-z]/ { print $1 }' <<<"$help" | sort -u)
subverbs=$(awk '/^  policy [a-z]/ { print $1 "_" $2 }' <<<"$help")
check "tenantctl --help lists the verbs ($(wc -w <<<"$verbs") found)" '[[ $(wc -w <<<"$verbs") -ge 16 ]]'
if ((have_man)); then
	ctl_man=$(render "$MAN/tenantctl.8")
	verbs_man=$(sed -n '/^VERBS WITHOUT A DAEMON/,/^EXIT STATUS/p' <<<"$ctl_man" |
		awk '/^       [a-z]/ { print $1; if ($1 == "policy") print $1 "_" $2 }' | sort -u)
	check "every verb of --help has an entry in tenantctl.8" \
		'missing tenantctl.8 "$verbs $subverbs" "$verbs_man"'
	opts=$(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u)
	check "every option of --help is in tenantctl.8" 'missing tenantctl.8 "$opts" "$ctl_man"'
else
	skip "man missing: tenantctl.8 not checked"
	skip "man missing: tenantctl.8 not checked"
fi
cli_headings=$(grep -E '^#+ ' docs/cli.md | tr -c 'a-z\n' ' ')
check "every verb of --help has a section in docs/cli.md" 'missing cli.md "$verbs" "$cli_headings"'
check "and the policy subcommands are in docs/cli.md" \
	'missing cli.md "policy_list policy_check policy_show" "$(sed "s/policy \([a-z]\)/policy_\1/g" docs/cli.md)"'
check "docs/cli.md no longer lists daemon verbs as planned" '! grep -qi "^## planned" docs/cli.md'

# ---- every option of tenantd --help, in tenantd.8 ----
dhelp=$("$TENANTD" --help)
dopts=$(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$dhelp" | sort -u)
check "tenantd --help lists its options ($(wc -w <<<"$dopts") found)" '[[ $(wc -w <<<"$dopts") -ge 12 ]]'
if ((have_man)); then
	check "every tenantd option is in tenantd.8" 'missing tenantd.8 "$dopts" "$(render "$MAN/tenantd.8")"'
else
	skip "man missing: tenantd.8 not checked"
fi

# ---- every manifest key of docs/manifest.md's tables, in tenantd-manifest.5 ----
# The first column of every table whose header starts with "| key |"; a bare word after
# a dotted key in the same cell ("`network.transfer.monthly` / `weekly`") is its sibling.
keys=$(awk -F'|' '/^\| key \|/ { t = 1; next } /^\|---/ { next } /^\|/ && t { print $2; next } { t = 0 }' docs/manifest.md |
	python3 -c '
import re, sys
for cell in sys.stdin:
    parent = ""
    for k in re.findall(r"`([a-z_.@]+)`", cell):
        if "." in k:
            parent = k.rsplit(".", 1)[0]
        elif parent:
            k = parent + "." + k
        print(k)' | sort -u)
check "docs/manifest.md's tables list the keys ($(wc -w <<<"$keys") found)" '[[ $(wc -w <<<"$keys") -ge 70 ]]'
if ((have_man)); then
	check "every manifest key is in tenantd-manifest.5" \
		'missing tenantd-manifest.5 "$keys" "$(render "$MAN/tenantd-manifest.5")"'
else
	skip "man missing: tenantd-manifest.5 not checked"
fi

# ---- docs/protocol.md: every op and error code of the control protocol ----
# (the op table and the error codes are the codec's: supervisor/proto/control_proto.c)
ops=$(grep -oE '\{CONTROL_OP_[A-Z]+, "[a-z]+"' supervisor/proto/control_proto.c | grep -oE '"[a-z]+"' | tr -d '"')
ops=$(sort -u <<<"$ops")
codes=$(sed -n '/^const char \*control_error_code/,/^}/p' supervisor/proto/control_proto.c | grep -oE 'return "[a-z-]+"' |
	grep -oE '"[a-z-]+"' | tr -d '"')
proto_headings=$(grep -E '^### ' docs/protocol.md | tr -c 'a-z\n' ' ')
check "docs/protocol.md has a section for every op of control.c ($(wc -w <<<"$ops") ops)" \
	'[[ $(wc -w <<<"$ops") -ge 13 ]] && missing protocol.md "$ops" "$proto_headings"'
check "docs/protocol.md lists every error code of control.c ($(wc -w <<<"$codes") codes)" \
	'[[ $(wc -w <<<"$codes") -ge 8 ]] && missing protocol.md "$codes" "$(grep "^| \`" docs/protocol.md)"'
limits=$(grep -hE '^#define (CONTROL_REQUEST_MAX|CONTROL_DEPTH_MAX|OUTPUT_MAX|MAX_CLIENTS) ' \
	supervisor/daemon/control.c supervisor/proto/control_proto.h | tr -s ' ')
check "the limits docs/protocol.md gives are the code's (64 KiB, 8 MiB, 256 clients, depth 8)" \
	'grep -q "CONTROL_REQUEST_MAX (64U << 10)" <<<"$limits" && grep -q "OUTPUT_MAX (8U << 20)" <<<"$limits" &&
	 grep -q "MAX_CLIENTS 256" <<<"$limits" && grep -q "CONTROL_DEPTH_MAX 8" <<<"$limits" &&
	 grep -q "64 KiB per request" docs/protocol.md && grep -q "8 MiB of replies" docs/protocol.md &&
	 grep -q "At most \*\*256 clients\*\*" docs/protocol.md && grep -q "Nesting depth 8" docs/protocol.md'

kinds=$( (grep -ohE 'daemon_event\(d, "[a-z-]+"' supervisor/*/*.c
	grep -ohE 'daemon_event\(d, [a-z]+ \? "[a-z-]+" : "[a-z-]+"' supervisor/*/*.c) | grep -oE '"[a-z-]+"' | tr -d '"' | sort -u)
events_table=$(sed -n '/^## Events/,/^## /p' docs/protocol.md | grep '^| `')
check "docs/protocol.md describes every event kind of the daemon ($(wc -w <<<"$kinds") kinds)" \
	'[[ $(wc -w <<<"$kinds") -ge 20 ]] && missing protocol.md "$kinds" "$events_table"'

# ---- bash completion ----
comp=contrib/bash-completion/tenantctl
# complete WORD...: what the completion offers for the last WORD (the one being typed)
complete_words() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_tenantctl; ((${#COMPREPLY[@]})) && printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$ctl" "$@" 2>&1 |
		LC_ALL=C sort | tr '\n' ' '
}
check "bash -n accepts the completion script" 'bash -n "$comp"'
out=$(complete_words "")
check "completes the verbs: $out" 'missing completion "$verbs" "$out" && [[ $(wc -w <<<"$out") == $(wc -w <<<"$verbs") ]]'
out=$(complete_words re)
check "completes a verb's beginning: $out" '[[ $out == "reload restart restore " ]]'
out=$(complete_words --)
check "completes the global options: $out" '[[ $out == "--help --json --socket --version " ]]'
out=$(complete_words kill --signal "")
check "completes signal names for kill --signal" '[[ $out == "CONT HUP INT KILL QUIT TERM USR1 USR2 WINCH " ]]'
out=$(complete_words stop -)
check "completes stop's options and the global ones (they may follow the verb): $out" \
	'[[ $out == "--json --socket --timeout " ]]'
out=$(complete_words logs -)
check "completes logs' options: $out" '[[ $out == "--follow --json --lines --socket -f -n " ]]'
out=$(complete_words list --j)
check "completes a global option after a verb that has none of its own: $out" '[[ $out == "--json " ]]'
out=$(complete_words kill --json --socket "$tmp/none.sock" --signal "")
check "global options after the verb are not operands: $out" \
	'[[ $out == "CONT HUP INT KILL QUIT TERM USR1 USR2 WINCH " ]]'
out=$(complete_words policy --json check "")
check "... nor is --json before policy's own operand: $out" '[[ " $out" == *" default "* ]]'
out=$(complete_words status --socket tests/data/manifests/g)
check "a path completes after --socket given after the verb: $out" \
	'[[ $out == "tests/data/manifests/good " ]]'
out=$(complete_words validate examples/re)
check "completes manifest files for validate: $out" '[[ $out == "examples/redis.json " ]]'
out=$(complete_words explain tests/data/manifests/g)
check "completes directories for explain: $out" '[[ $out == "tests/data/manifests/good " ]]'
out=$(complete_words policy check "")
check "completes seccomp profile names for policy check: $out" \
	'[[ " $out" == *" default "* && " $out" == *" strict "* ]]'
settable=$(sed -n '/^} settable\[\] = {/,/^};/p' supervisor/spec/manifest_edit.c | grep -oE '^ *\{"[a-z.]+"' |
	grep -oE '[a-z.]+' | grep -v '^network\.' | sed 's/$/=/' | LC_ALL=C sort | tr '\n' ' ')
out=$(complete_words set pk-x "")
check "completes the keys set accepts (spec/manifest_edit.c): $out" '[[ -n $settable && $out == "$settable" ]]'
out=$(complete_words --socket "$tmp/none.sock" status "")
check "without a tenantd, tenant names complete to nothing, quietly" '[[ -z $out ]]'

# ---- tenant names from a running tenantd (its tenants are never started) ----
if [[ $(id -u) -ne 0 ]]; then
	skip "NOT ROOT: tenantd needs root; tenant name completion not tested"
	skip "NOT ROOT: tenantd needs root; tenant name completion not tested"
	skip "NOT ROOT: tenantd needs root; tenant name completion not tested"
elif [[ ! -x $TENANTD ]]; then
	fail "$TENANTD is missing (make)"
	fail "$TENANTD is missing (make)"
	fail "$TENANTD is missing (make)"
else
	mkdir -p "$tmp/manifests"
	for t in pk-doc-alpha pk-doc-beta; do
		printf '{ "name": "%s", "exec": ["/bin/true"], "autostart": false }\n' "$t" >"$tmp/manifests/$t.json"
	done
	if start_daemon; then
		out=$(complete_words --socket "$TENANTD_SOCKET" status "")
		check "completes tenant names from tenantd (--socket): $out" '[[ $out == "pk-doc-alpha pk-doc-beta " ]]'
		out=$(complete_words start pk-doc-b)
		check "completes tenant names from tenantd (\$TENANTD_SOCKET): $out" '[[ $out == "pk-doc-beta " ]]'
		out=$(complete_words exec pk-doc-alpha "")
		check "after exec NAME, offers -- : $out" '[[ $out == "-- " ]]'
	else
		fail "tenantd starts for the completion test"
		fail "tenantd starts for the completion test"
		fail "tenantd starts for the completion test"
	fi
	daemon_cleanup
	daemon_pid=""
	unset TENANTD_SOCKET
fi

# ---- the systemd unit and the example configuration ----
unit=contrib/systemd/tenantd.service
check "the unit runs tenantd in the foreground as Type=notify, KillMode=process, Delegate=yes" \
	'grep -qx "Type=notify" $unit && grep -qx "ExecStart=@SBINDIR@/tenantd --foreground" $unit &&
	 grep -qx "KillMode=process" $unit && grep -qx "Delegate=yes" $unit && grep -qx "Restart=on-failure" $unit'
check "the unit has no option that gives tenantd a mount namespace or a seccomp filter" \
	'! grep -qE "^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|ProtectKernel[A-Za-z]*|ProtectControlGroups|ReadOnlyPaths|InaccessiblePaths|SystemCallFilter|RestrictNamespaces|MemoryDenyWriteExecute|RestrictAddressFamilies|CapabilityBoundingSet|User|DynamicUser|DeviceAllow|DevicePolicy|ProtectClock|OOMScoreAdjust)=" $unit'
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$tmp/unit"
	sed "s|@SBINDIR@|$PWD/$BUILD|" $unit >"$tmp/unit/tenantd.service"
	out=$(timeout 60 systemd-analyze verify --man=no "$tmp/unit/tenantd.service" 2>&1)
	rc=$?
	check "systemd-analyze verify accepts the unit, without a warning" '[[ $rc == 0 && -z $out ]]'
	[[ -n $out ]] && sed 's/^/#   /' <<<"$out" | head -5
else
	skip "systemd-analyze missing: the unit is not verified"
fi
sed 's/^#\([a-z]\)/\1/' contrib/tenantd.conf.example >"$tmp/all.conf"
check "the example configuration sets every key tenantd's options have" \
	'missing tenantd.conf.example "$(sed "s/^--//" <<<"$dopts" | grep -vE "^(config|foreground|debug|help|version)$")" "$(cut -d" " -f1 "$tmp/all.conf")"'
# tenantd reads its configuration before it checks for root: as a user it stops at
# "needs root" (exit 1) when the file is good, at the file's line (exit 2) when not.
as_user=()
if [[ $(id -u) -eq 0 ]]; then
	command -v setpriv >/dev/null && as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if [[ $(id -u) -ne 0 || ${#as_user[@]} -gt 0 ]]; then
	cp "$TENANTD" "$tmp/tenantd"
	chmod 644 "$tmp/all.conf"
	out=$("${as_user[@]}" "$tmp/tenantd" --config "$tmp/all.conf" 2>&1)
	rc=$?
	check "tenantd accepts the example configuration with every key set" '[[ $rc == 1 && $out == *"needs root"* ]]'
	printf 'manifests = /x\nbogus = 1\n' >"$tmp/bad.conf"
	chmod 644 "$tmp/bad.conf"
	out=$("${as_user[@]}" "$tmp/tenantd" --config "$tmp/bad.conf" 2>&1)
	rc=$?
	check "and refuses an unknown key with the file and line" '[[ $rc == 2 && $out == *"bad.conf:2: unknown key \"bogus\""* ]]'
else
	skip "setpriv missing: the example configuration is not read by tenantd"
	skip "setpriv missing: the example configuration is not read by tenantd"
fi

# ---- make install and uninstall ----
# In a build directory of its own: PREFIX is compiled into the programs (the policy and
# image directories), so installing from $BUILD would rebuild the tree under test with
# /usr paths and leave it so for every suite after this one.
root=$tmp/root
ibuild=$tmp/build
out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory B="$ibuild" FLAVOR=release install DESTDIR="$root" PREFIX=/usr 2>&1)
rc=$?
expect="usr/bin/tenantctl usr/sbin/tenantd usr/libexec/tenantd/tenantd-virtiofsd usr/libexec/tenantd/tenantd-vm-runner usr/libexec/tenantd/tenantd-keeper
	usr/share/man/man8/tenantd.8 usr/share/man/man8/tenantctl.8
	usr/share/man/man5/tenantd-manifest.5 usr/share/bash-completion/completions/tenantctl
	usr/lib/sysusers.d/tenantd.conf usr/lib/tmpfiles.d/tenantd.conf lib/systemd/system/tenantd.service
	etc/tenantd/tenantd.conf usr/share/tenantd/policies/seccomp/default.json"
absent=
for f in $expect; do [[ -f $root/$f ]] || absent+=" $f"; done
check "make install puts everything in place${absent:+ (missing:$absent)}" '[[ $rc == 0 && -z $absent && -d $root/etc/tenantd/services ]]'
check "the installed unit starts the installed tenantd" \
	'grep -qx "ExecStart=/usr/sbin/tenantd --foreground" "$root/lib/systemd/system/tenantd.service"'
echo "state = /srv/mine" >"$root/etc/tenantd/tenantd.conf"
out=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory B="$ibuild" FLAVOR=release install DESTDIR="$root" PREFIX=/usr 2>&1)
check "a second install keeps the operator's tenantd.conf" \
	'[[ $(cat "$root/etc/tenantd/tenantd.conf") == "state = /srv/mine" && $out == *keeping* ]]'
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory B="$ibuild" FLAVOR=release uninstall DESTDIR="$root" PREFIX=/usr >/dev/null 2>&1
left=$(cd "$root" && find . -type f | sort | tr '\n' ' ')
check "make uninstall removes all but the configuration ($left)" \
	'[[ $left == "./etc/tenantd/tenantd.conf " && -d $root/etc/tenantd/services ]]'

done_testing
