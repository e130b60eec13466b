# shellcheck shell=bash
# tests/lib/tap.sh — TAP output for the shell tests (tests/run-tests tallies it). Sourced,
# not run. Every result goes through these helpers, so that a skip is never counted as a
# pass and a missing build product is a failure, not a skip:
#
#   pass DESC / fail DESC      one result ("ok N - DESC" / "not ok N - DESC"); fail adds
#                              $rc, $out and $err as diagnostics when the test set them
#   check DESC EXPR            pass when EXPR (eval'd) is true, fail otherwise
#   skip REASON                one result that did not run ("ok N # SKIP REASON"): say
#                              loudly what was not tested and what would make it run
#   skip_all REASON            the rest of the script cannot run here: one skip, the plan,
#                              exit 0
#   require_built FILE...      fails the script (exit 1) when a file `make check` builds
#                              is missing, or older than the library it links
#                              ($BUILD/libtenantd.a): a broken build must not look like a
#                              skip, and a stale test program (plain make does not
#                              rebuild them) tests yesterday's code
#   bail DESC                  a failure after which the rest cannot run: fail, plan, exit 1
#   done_testing               prints the plan (1..N); the last line of every script
#
# The count lives in _tap_n, a name no test would pick for its own variable.
_tap_n=0
pass() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}
fail() {
	_tap_n=$((_tap_n + 1))
	echo "not ok $_tap_n - $1"
	if [[ -n ${rc+x}${out+x}${err+x} ]]; then
		echo "#   rc=${rc:-} out=$(head -c 600 <<<"${out:-}" | tr '\n' '|')"
		echo "#   err=$(head -c 600 <<<"${err:-}" | tr '\n' '|')"
	fi
	return 0
}
check() {
	if eval "$2"; then pass "$1"; else fail "$1"; fi
}
skip() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n # SKIP $1"
}
skip_all() {
	skip "$1"
	done_testing
	exit 0
}
require_built() {
	local f missing=0
	for f in "$@"; do
		if [[ ! -x $f ]]; then
			_tap_n=$((_tap_n + 1))
			echo "not ok $_tap_n - $f is missing: run make check (it builds every test program)"
			missing=1
		elif [[ $f == */tests/integration/* || $f == */tests/security/* ]] && [[ -e ${BUILD:-build}/libtenantd.a && ${BUILD:-build}/libtenantd.a -nt $f ]]; then
			_tap_n=$((_tap_n + 1))
			echo "not ok $_tap_n - $f is older than ${BUILD:-build}/libtenantd.a: make $f (or make check)"
			missing=1
		fi
	done
	if [[ $missing == 1 ]]; then
		done_testing
		exit 1
	fi
}
done_testing() {
	echo "1..$_tap_n"
}
bail() {
	fail "$1"
	done_testing
	exit 1
}
