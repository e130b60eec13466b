#!/usr/bin/env bash
# test_workdir_escape.sh — issue 10, item 1: a tenant replaces its working directory
# (on a read-write mount) with a symbolic link through a descriptor or a /proc magic
# link that leads out of its root (the runc CVE-2024-21626 class), then gets itself
# started again. Each case is one tenant that plants its own link on a first run and
# reports, on the next start, where it stands:
#
#   (a) tenantd: the tenant plants the link and exits 1; the restart policy starts it
#       again (the keeper's descriptors were the way out);
#   (b) tenantctl run, started with descriptors 3-14 open on the host's / (as a
#       careless caller would leave them);
#   (c) tenantctl exec into a running tenant, and exec health checks, with a tenantd
#       that was itself started holding descriptors 3-14 on the host's /;
#
# for every descriptor number from 3 to 14, plus variants: /proc/thread-self, /dev/fd,
# /proc/self/cwd/.., /proc/1/root/.., /proc/self/root, an absolute link to /, a chain
# of links, ".." components, and an exec whose stdin is a host directory.
#
# The verdict is positive: the reporting process (payload whereami) gives the device and
# inode of "." and the kernel's getcwd(); a case fails when "." is the host's /, /tmp,
# the state or log directory (compared with the host's own stat), when the kernel says
# "." is not reachable from the tenant's root, or when its marker file appears in one
# of those host directories. A case whose start is refused cannot escape; a case that
# never planted its link fails (the attack did not happen, so nothing was shown).
set -u
cd "${SRCDIR:-.}" || exit 1
source tests/lib/sandbox.sh
source tests/lib/daemon.sh
require_sandbox
require_built "$TENANTD"

tmp=$(mktemp -d /tmp/tenantd-wde.XXXXXX)
chmod 755 "$tmp"
tenants=()
bg=()
cleanup() {
	daemon_cleanup
	sandbox_cleanup
	rm -f /escape-marker-wde-* /tmp/escape-marker-wde-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin" "$tmp/d" "$tmp/manifests" "$tmp/rstate"
cp "$payload_bin" "$tmp/bin/payload"
chmod 0755 "$tmp/bin" "$tmp/bin/payload"

# The wrapper through which descriptors 3-14 on the host's / reach a program.
cat >"$tmp/with-dirs" <<'EOF'
#!/bin/bash
exec 3</ 4</ 5</ 6</ 7</ 8</ 9</ 10</ 11</ 12</ 13</ 14</
exec "$@"
EOF
chmod 755 "$tmp/with-dirs"

UP=../../../../../../../../../.. # more ".." than any path here is deep

# case NAME PLANT-LINES: the tenant's data directory (its /data, read-write) with the
# script the tenant runs to plant its link.
case_dir() {
	mkdir -p "$tmp/d/$1/work"
	printf '%s\n' "touch /data/planted" "rm -rf /data/work" "$2" >"$tmp/d/$1/plant.sh"
	chown -R 1000:1000 "$tmp/d/$1"
}
link_to() { echo "ln -s '$1' /data/work"; }
chain_to() { # work -> l1 -> l2 -> TARGET
	echo "ln -s '$1' /data/l2; ln -s /data/l2 /data/l1; ln -s /data/l1 /data/work"
}

# manifest FILE NAME EXEC-JSON [EXTRA-MEMBERS]
manifest() {
	cat >"$1" <<-EOF
	{
	  "name": "$2",
	  "exec": $3,
	  "user": "1000:1000",
	  "root": "host-system",
	  "workdir": "/data/work",
	  "network": { "mode": "none" },
	  "mounts": [
	    { "source": "$tmp/bin", "target": "/payload" },
	    { "source": "$tmp/d/$2", "target": "/data", "mode": "rw" }
	  ],
	  "restart": { "on": "on-failure", "backoff": "100ms..1s", "burst": 3 }${4:+,
	  $4}
	}
	EOF
	tenants+=("$2")
}
# First start: plant and fail. Next start: report where "." is.
plant_then_report() {
	echo "[\"/bin/sh\", \"-c\", \"if [ -e /data/planted ]; then exec /payload/payload whereami /data/report escape-marker-$1; else sh /data/plant.sh; exit 1; fi\"]"
}
plant_then_sleep='["/bin/sh", "-c", "sh /data/plant.sh; exec /payload/payload sleep 600"]'

# escaped NAME REPORT-FILE: prints why (and succeeds) if the report shows an escape or
# the tenant's marker is in a host directory.
host_dirs=(/ /tmp "$tmp" "$tmp/state" "$tmp/state/logs" "$tmp/rstate" /var /var/lib)
escaped() {
	local name=$1 line="" cwd reach d
	for d in "${host_dirs[@]}"; do
		[[ -e $d/escape-marker-$name ]] && { echo "its marker is in the host's $d"; return 0; }
	done
	[[ -f $2 ]] || return 1
	line=$(head -1 "$2")
	cwd=$(sed -n 's/.*cwd=\([0-9]*:[0-9]*\).*/\1/p' <<<"$line")
	reach=$(sed -n 's/.* reach=\([a-z]*\).*/\1/p' <<<"$line")
	for d in "${host_dirs[@]}"; do
		[[ -d $d && $cwd == "$(stat -c %d:%i "$d")" ]] && {
			echo "its cwd is the host's $d ($line)"
			return 0
		}
	done
	[[ $reach == yes ]] || { echo "its cwd is outside its root ($line)"; return 0; }
	return 1
}
# verdict WHAT NAME REPORT-FILE
verdict() {
	local why
	if [[ ! -L $tmp/d/$2/work ]]; then
		out="" err="the tenant did not plant its link: $(ls -la "$tmp/d/$2" 2>&1 | tr '\n' ' ')"
		fail "$1: $2 planted its link"
	elif why=$(escaped "$2" "$3"); then
		out="" err="$why"
		fail "$1: $2 ($(readlink "$tmp/d/$2/work")) stays in its root"
	else
		pass "$1: $2 ($(readlink "$tmp/d/$2/work")) stays in its root"
	fi
}

# ---- the cases ----
daemon_cases=() run_cases=() exec_cases=() health_cases=()
for fd in $(seq 3 14); do
	for kind in a r e; do
		name=wde-$kind$fd
		case_dir "$name" "$(link_to "/proc/self/fd/$fd/$UP")"
		case $kind in
		a) daemon_cases+=("$name") ;;
		r) run_cases+=("$name") ;;
		e) exec_cases+=("$name") ;;
		esac
	done
done
variant() { # KIND NAME PLANT-LINE
	case_dir "$2" "$3"
	case $1 in
	a) daemon_cases+=("$2") ;;
	r) run_cases+=("$2") ;;
	e) exec_cases+=("$2") ;;
	h) health_cases+=("$2") ;;
	esac
}
variant a wde-atmp "$(link_to "/proc/self/fd/4/$UP/tmp")"
variant a wde-afd4 "$(link_to /proc/self/fd/4)"
variant a wde-athread "$(link_to "/proc/thread-self/fd/4/$UP")"
variant a wde-adevfd "$(link_to "/dev/fd/4/$UP")"
variant a wde-acwd "$(link_to "/proc/self/cwd/$UP")"
variant a wde-ainit "$(link_to "/proc/1/root/$UP")"
variant a wde-aroot "$(link_to /proc/self/root)"
variant a wde-aslash "$(link_to /)"
variant a wde-achain "$(chain_to "/proc/self/fd/4/$UP")"
variant a wde-adotdot "$(link_to "$UP")"
variant a wde-adotabs "$(link_to "/data/$UP")"
variant r wde-rtmp "$(link_to "/proc/self/fd/5/$UP/tmp")"
variant r wde-rchain "$(chain_to "/proc/self/fd/7/$UP")"
variant r wde-rcwd "$(link_to "/proc/self/cwd/$UP")"
variant e wde-echain "$(chain_to "/proc/self/fd/4/$UP")"
variant e wde-edevfd "$(link_to "/dev/fd/4/$UP")"
variant e wde-estdin "$(link_to "/proc/self/fd/0/$UP")"
variant e wde-etmp "$(link_to "/proc/self/fd/4/$UP/tmp")"
for fd in 3 4 5; do
	variant h "wde-h$fd" "$(link_to "/proc/self/fd/$fd/$UP")"
done

for name in "${daemon_cases[@]}"; do
	manifest "$tmp/manifests/$name.json" "$name" "$(plant_then_report "$name")"
done
for name in "${exec_cases[@]}"; do
	manifest "$tmp/manifests/$name.json" "$name" "$plant_then_sleep"
done
for name in "${health_cases[@]}"; do
	manifest "$tmp/manifests/$name.json" "$name" "$plant_then_sleep" \
		"\"health\": { \"exec\": [\"/payload/payload\", \"whereami\", \"/data/report\", \"escape-marker-$name\"], \"interval\": \"2s\", \"timeout\": \"2s\", \"start_period\": \"0s\" }"
done
for name in "${run_cases[@]}"; do
	manifest "$tmp/$name.json" "$name" "$(plant_then_report "$name")"
done

# ---- (b) tenantctl run ----
for name in "${run_cases[@]}"; do
	timeout -k 5 30 "$ctl" run --state "$tmp/rstate" "$tmp/$name.json" >"$tmp/$name.out1" 2>&1
	timeout -k 5 30 "$tmp/with-dirs" "$ctl" run --state "$tmp/rstate" "$tmp/$name.json" \
		>"$tmp/$name.out2" 2>&1
	verdict "run" "$name" "$tmp/d/$name/report"
done

echo "# ${SECONDS}s"
# ---- (a) tenantd restarts a tenant that planted its link ----
# tenantd itself holds descriptors 3-14 on the host's / (for (c)); its keepers close
# them, so for (a) the way out is what the keeper holds itself.
printf '#!/bin/bash\nexec "%s" "%s" "$@"\n' "$tmp/with-dirs" "$(realpath "$TENANTD")" >"$tmp/tenantd"
chmod 755 "$tmp/tenantd"
TENANTD=$tmp/tenantd
start_daemon || bail "tenantd starts"
decided() { # NAME: reported, or its start was refused (or it gave up)
	[[ -f $tmp/d/$1/report ]] && return 0
	grep -q "cannot start" "$tmp/state/logs/$1.log" 2>/dev/null && return 0
	return 1
}
for i in $(seq 300); do
	left=0
	for name in "${daemon_cases[@]}"; do decided "$name" || left=$((left + 1)); done
	((left == 0)) && break
	sleep 0.1
done
for name in "${daemon_cases[@]}"; do
	decided "$name" || echo "# $name: neither a report nor a refused start: $(tail -3 "$tmp/state/logs/$name.log" 2>&1 | tr '\n' '|')"
done
for name in "${daemon_cases[@]}"; do
	verdict "tenantd restart" "$name" "$tmp/d/$name/report"
done

echo "# ${SECONDS}s"
# ---- (c) tenantctl exec into a running tenant whose workdir is now a link ----
for name in "${exec_cases[@]}" "${health_cases[@]}"; do
	for i in $(seq 100); do [[ -L $tmp/d/$name/work ]] && break; sleep 0.1; done
done
for name in "${exec_cases[@]}"; do
	if [[ $name == wde-estdin ]]; then
		timeout -k 5 20 "$ctl" exec "$name" -- /payload/payload whereami /data/report \
			"escape-marker-$name" </ >"$tmp/$name.exec" 2>&1
	else
		timeout -k 5 20 "$ctl" exec "$name" -- /payload/payload whereami /data/report \
			"escape-marker-$name" </dev/null >"$tmp/$name.exec" 2>&1
	fi
	verdict "exec" "$name" "$tmp/d/$name/report"
done

echo "# ${SECONDS}s"
# ---- (c) exec health checks run the same way ----
for name in "${health_cases[@]}"; do
	for i in $(seq 100); do
		[[ -f $tmp/d/$name/report ]] && break
		[[ -n $(json_field "$name" health) ]] && break
		sleep 0.1
	done
	verdict "exec health check" "$name" "$tmp/d/$name/report"
done

echo "# ${SECONDS}s"
# ---- a refused workdir says why ----
grep -h "cannot start" "$tmp/state/logs/wde-a4.log" >"$tmp/why" 2>/dev/null
out=$(cat "$tmp/why") err=""
check "a workdir through a descriptor is refused, naming the workdir (tenantd)" \
	'grep -q "workdir /data/work" "$tmp/why"'
out=$(cat "$tmp/wde-r7.out2") err=""
check "a workdir through a descriptor is refused, naming the workdir (run)" \
	'grep -q "workdir /data/work" "$tmp/wde-r7.out2"'
out=$(cat "$tmp/wde-e4.exec") err=""
check "a workdir through a descriptor is refused, naming the workdir (exec)" \
	'grep -q "workdir /data/work" "$tmp/wde-e4.exec"'

echo "# ${SECONDS}s"
# ---- an in-root link is still followed ----
name=wde-inroot
case_dir "$name" "mkdir -p /data/real; ln -s /data/real /data/work"
manifest "$tmp/$name.json" "$name" "$(plant_then_report "$name")"
"$ctl" run --state "$tmp/rstate" "$tmp/$name.json" >/dev/null 2>&1
out=$("$ctl" run --state "$tmp/rstate" "$tmp/$name.json" 2>&1) err=""
check "a workdir that is a link inside the tenant's root is followed" \
	'[[ $(cut -d" " -f1 "$tmp/d/$name/report" 2>/dev/null) == "cwd=$(stat -c %d:%i "$tmp/d/$name/real")" ]]'

done_testing
