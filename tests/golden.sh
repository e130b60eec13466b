#!/usr/bin/env bash
# tests/golden.sh — manifest fixtures through the real CLI, libvirt style.
#
# tests/data/manifests/bad/NAME.json must be rejected by `tenantctl validate` with exit
# status 2 and exactly the text in NAME.err (run from inside bad/, so paths are bare
# file names). tests/data/manifests/good/*.json and examples/*.json must validate, and
# `tenantctl explain` of each must itself validate and explain to the same text (the
# effective configuration is a fixed point); where NAME.explain exists, explain prints
# exactly it, and where NAME.warn exists, validate's warnings are exactly its text.
#
# GOLDEN_UPDATE=1 rewrites the .err files from the current output: review the diff.
set -u
cd "$(dirname "$0")/.." || exit 1
ctl=${TENANTCTL:-$PWD/build/tenantctl}
export TENANTD_POLICY_DIR=${TENANTD_POLICY_DIR:-$PWD/policies}
# shellcheck source=tests/lib/tap.sh
source tests/lib/tap.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

result() { # PASS|FAIL DESCRIPTION
	if [[ $1 == PASS ]]; then pass "$2"; else fail "$2"; fi
}

for json in tests/data/manifests/bad/*.json; do
	name=${json##*/}
	expected=${json%.json}.err
	# A relative policy directory keeps messages that name it the same in every
	# checkout (they also name the installed directory, from PREFIX).
	# (Warnings about who could change the files are not what these cases are about:
	# a checkout owned by another user than root gets one per file.)
	got=$(cd tests/data/manifests/bad &&
		TENANTD_POLICY_DIR=../../../../policies "$ctl" validate "$name" 2>&1 >/dev/null)
	rc=$?
	got=$(grep -v 'tenantctl run (as root) will refuse it$' <<<"$got")
	if [[ ${GOLDEN_UPDATE:-} == 1 ]]; then
		printf '%s\n' "$got" >"$expected"
	fi
	if [[ ! -f $expected ]]; then
		result FAIL "bad/$name: no expected-error file ${expected##*/}"
		continue
	fi
	if [[ $rc -eq 2 && "$got" == "$(cat "$expected")" ]]; then
		result PASS "bad/$name rejected as expected"
	else
		result FAIL "bad/$name: exit $rc (want 2), output differs"
		diff <(printf '%s\n' "$got") "$expected" | sed 's/^/# /'
	fi
done

for json in tests/data/manifests/good/*.json examples/*.json; do
	[[ -f $json ]] || continue
	if ! out=$("$ctl" validate "$json" 2>&1); then
		result FAIL "$json does not validate: $out"
		continue
	fi
	warned=${json%.json}.warn
	if [[ -f $warned ]]; then
		got=$("$ctl" validate "$json" 2>&1 >/dev/null |
			grep -v 'tenantctl run (as root) will refuse it$')
		if [[ "$got" == "$(cat "$warned")" ]]; then
			result PASS "$json warns as ${warned##*/} says"
		else
			result FAIL "$json: warnings differ from ${warned##*/}"
			diff <(printf '%s\n' "$got") "$warned" | sed 's/^/# /'
		fi
	fi
	if "$ctl" explain "$json" >"$tmp/e1.json" 2>"$tmp/err" &&
		"$ctl" validate "$tmp/e1.json" >/dev/null 2>>"$tmp/err" &&
		"$ctl" explain "$tmp/e1.json" >"$tmp/e2.json" 2>>"$tmp/err" &&
		cmp -s "$tmp/e1.json" "$tmp/e2.json"; then
		result PASS "$json validates and explains to a fixed point"
	else
		result FAIL "$json: explain is not a valid fixed point: $(head -c 300 "$tmp/err")"
	fi
	golden=${json%.json}.explain
	if [[ -f $golden ]]; then
		if cmp -s "$tmp/e1.json" "$golden"; then
			result PASS "$json explains to ${golden##*/}"
		else
			result FAIL "$json: explain differs from ${golden##*/}"
			diff "$tmp/e1.json" "$golden" | head -20 | sed 's/^/# /'
		fi
	fi
done
done_testing
