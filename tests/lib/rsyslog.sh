# shellcheck shell=bash disable=SC2154 # $tmp, $ctl, tenants=(), bg=() ... are the sourcing script's
# tests/lib/rsyslog.sh — a private rsyslogd for tests: its own configuration in a
# temporary directory, listening only on its own socket (imuxsock with the system
# socket off, so /dev/log and the host's syslog are untouched), writing everything it
# receives to one file, with its own pid file. Sourced, not run.
#
#   rsyslog_start DIR   starts it; sets rsyslog_pid, rsyslog_sock (the socket to send
#                       to) and rsyslog_out (the file it writes); returns 1 if it did
#                       not come up within 5 s
#   rsyslog_stop        stops it by its pid (call it from the EXIT trap)
#
# Each line of $rsyslog_out is "FACILITY.SEVERITY TAG MSG", for example
#   daemon.warning tenantd[123]: alert=raised tenant=photos quota=cpu ...

rsyslog_pid="" rsyslog_sock="" rsyslog_out=""

rsyslog_start() {
	local dir=$1 i
	command -v rsyslogd >/dev/null || return 1
	mkdir -p "$dir/work" || return 1
	rsyslog_sock=$dir/log.sock
	rsyslog_out=$dir/messages
	cat >"$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/work")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$rsyslog_sock" CreatePath="off")
template(name="tenantd-test" type="string"
         string="%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n")
*.* action(type="omfile" file="$rsyslog_out" template="tenantd-test" flushOnTXEnd="on"
           asyncWriting="off")
CONF
	rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/rsyslogd.log" 2>&1 &
	rsyslog_pid=$!
	for i in $(seq 100); do
		[[ -S $rsyslog_sock ]] && return 0
		kill -0 "$rsyslog_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "# rsyslogd did not start: $(head -c 400 "$dir/rsyslogd.log" | tr '\n' '|')" >&2
	rsyslog_stop
	return 1
}

rsyslog_stop() {
	[[ -n $rsyslog_pid ]] || return 0
	kill -TERM "$rsyslog_pid" 2>/dev/null
	local i
	for i in $(seq 50); do
		kill -0 "$rsyslog_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$rsyslog_pid" 2>/dev/null
	wait "$rsyslog_pid" 2>/dev/null
	rsyslog_pid=""
}
