#!/usr/bin/env bash
# test_services.sh — real services installed on the host with apt run confined in a
# sandbox: "root": "host-system", seccomp profile `default`, no capabilities unless a
# step says so, network mode "none" (loopback only).
#
# Services: python3 (threaded http.server, subprocess, sqlite3, ssl/TLS, hashlib,
# multiprocessing), nginx (static files, sendfile, TLS, PUT into a tmpfs; once in the
# foreground as www-data, once daemonized as tenant root dropping to www-data), redis
# (ping/set/get/pipeline/SAVE/BGSAVE/BGREWRITEAOF, data reloaded by a second tenant),
# PostgreSQL (initdb as uid 1000 into a rw mount, postgres, psql over the unix socket
# and loopback TCP, a parallel query, pgbench, clean shutdown).
#
# The tenant has only loopback, so each server and its clients run inside the same
# tenant: one `tenantctl run` per scenario runs a script (mounted read-only at /t)
# that prints "STEP-OK <name>" for each check that passed; this file turns the
# expected steps into TAP lines. A service whose package is missing is skipped with
# the apt-get line that installs it, never passed.
#
# Environment: TENANTCTL and TENANTD_POLICY_DIR (set by tests/run-tests).
# SERVICES_SECCOMP=permissive-log runs every tenant with that profile instead (to learn
# which calls a service makes beyond `default`: read `dmesg | grep type=1326`).
set -u
ctl=${TENANTCTL:?TENANTCTL must name the tenantctl binary}
: "${TENANTD_POLICY_DIR:?TENANTD_POLICY_DIR must name the policy directory}"
export TENANTD_POLICY_DIR
profile=${SERVICES_SECCOMP:-default}
run_timeout=${SERVICES_TIMEOUT:-60}

tmp=$(mktemp -d /tmp/tenantd-services.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

# shellcheck source=tests/lib/tap.sh

source "$(dirname "$0")/../lib/tap.sh"
diag() { sed 's/^/# /'; }

# run_tenant LABEL MANIFEST [CMD...]: runs the tenant under a timeout; output in
# $tmp/LABEL.out, exit status in $rc. The pid namespace ends every process of the
# tenant when its first process exits, and timeout kills tenantctl (whose init dies
# with it) if a service hangs.
run_tenant() {
	local label=$1
	shift
	timeout -k 5 "$run_timeout" "$ctl" run "$@" >"$tmp/$label.out" 2>&1
	rc=$?
}

# report LABEL STEP:DESCRIPTION...: one TAP line per expected step.
report() {
	local label=$1 shown=0
	shift
	for s in "$@"; do
		local step=${s%%:*} desc=${s#*:}
		if grep -qx "STEP-OK $step" "$tmp/$label.out"; then
			pass "$desc"
		else
			fail "$desc"
			if [[ $shown -eq 0 ]]; then
				shown=1
				echo "tenantctl exit status $rc; last output:" | diag
				grep -v '^STEP-OK ' "$tmp/$label.out" | tail -25 | diag
			fi
		fi
	done
}

skip_steps() { # REASON STEP:DESCRIPTION...
	local reason=$1
	shift
	for s in "$@"; do skip "${s#*:}: $reason"; done
}

# A manifest: NAME USER EXTRA-JSON (a "mounts" array and more, without a leading comma)
manifest() {
	cat >"$tmp/$1.json" <<EOF
{
  "name": "$1",
  "exec": ["/bin/true"],
  "user": "$2",
  "root": "host-system",
  "env": { "LANG": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" },
  "policy": { "seccomp": "$profile"${4:-} },
  $3
}
EOF
}

echo "# seccomp profile: $profile"
if [[ $(id -u) -ne 0 ]]; then
	not_root=1
else
	not_root=0
fi

# ------------------------------------------------------------------ python3 ----------
py_steps=(
	"http:python3: ThreadingHTTPServer answers 32 concurrent urllib requests from 8 threads"
	"subprocess:python3: subprocess runs /bin/sh and reads its output"
	"sqlite:python3: sqlite3 database with 1000 rows on a rw mount"
	"tls:python3: TLS handshake and echo over loopback (ssl, self-signed certificate)"
	"hash:python3: hashlib sha256/pbkdf2 and os.urandom"
	"mp:python3: multiprocessing pool of 2 workers"
	"exit:python3: service exits 0"
	"owner:python3: the database on the host belongs to the tenant user's host id"
)
if [[ $not_root -eq 1 ]]; then
	skip_steps "needs root (tenantctl run sets up namespaces and id maps)" "${py_steps[@]}"
elif [[ ! -x /usr/bin/python3 ]]; then
	skip_steps "python3 not installed: apt-get install python3" "${py_steps[@]}"
else
	mkdir -p "$tmp/py/app" "$tmp/py/data"
	chown 1000:1000 "$tmp/py/data"
	if command -v openssl >/dev/null; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
			-addext subjectAltName=IP:127.0.0.1 \
			-keyout "$tmp/py/app/key.pem" -out "$tmp/py/app/cert.pem" >/dev/null 2>&1
		chmod 644 "$tmp/py/app/key.pem"
	fi
	cat >"$tmp/py/app/svc.py" <<'EOF'
import concurrent.futures, hashlib, http.server, multiprocessing, os, socket, sqlite3
import ssl, subprocess, sys, threading, urllib.request

def ok(step):
    print("STEP-OK", step, flush=True)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = hashlib.sha256(self.path.encode()).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
def fetch(i):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/item/{i}", timeout=10) as r:
        return r.read().decode() == hashlib.sha256(f"/item/{i}".encode()).hexdigest()
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    if all(ex.map(fetch, range(32))):
        ok("http")
srv.shutdown()

out = subprocess.run(["/bin/sh", "-c", "echo sub $((6*7))"], capture_output=True,
                     text=True, check=True).stdout
if out.strip() == "sub 42":
    ok("subprocess")

db = sqlite3.connect(os.path.join(sys.argv[1], "t.db"))
db.execute("pragma journal_mode=wal")
db.execute("create table t(k integer primary key, v text)")
db.executemany("insert into t(v) values (?)", [(str(i),) for i in range(1000)])
db.commit()
if db.execute("select count(*), sum(k) from t").fetchone() == (1000, 500500):
    ok("sqlite")
db.close()

if os.path.exists("/t/cert.pem"):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain("/t/cert.pem", "/t/key.pem")
    lsock = socket.create_server(("127.0.0.1", 0))
    tport = lsock.getsockname()[1]
    def tls_server():
        conn, _ = lsock.accept()
        with sctx.wrap_socket(conn, server_side=True) as s:
            s.sendall(s.recv(100).upper())
    t = threading.Thread(target=tls_server)
    t.start()
    cctx = ssl.create_default_context(cafile="/t/cert.pem")
    with socket.create_connection(("127.0.0.1", tport), timeout=10) as raw:
        with cctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"hello tls")
            if s.recv(100) == b"HELLO TLS" and s.version().startswith("TLS"):
                ok("tls")
    t.join()
else:
    print("no certificate (openssl missing on the host): TLS step not run")

if (hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf")
        and len(hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 10000)) == 32
        and len(os.urandom(32)) == 32 and ssl.OPENSSL_VERSION):
    ok("hash")

with multiprocessing.Pool(2) as p:
    if p.map(abs, [-1, -2, -3]) == [1, 2, 3]:
        ok("mp")
EOF
	manifest py 1000:1000 "\"mounts\": [
    { \"source\": \"$tmp/py/app\", \"target\": \"/t\", \"mode\": \"ro\" },
    { \"source\": \"$tmp/py/data\", \"target\": \"/srv/data\", \"mode\": \"rw\", \"noexec\": true } ]"
	run_tenant py "$tmp/py.json" -- /bin/sh -c \
		'PYTHONDONTWRITEBYTECODE=1 python3 /t/svc.py /srv/data && echo STEP-OK exit'
	[[ $(stat -c %u:%g "$tmp/py/data/t.db" 2>/dev/null) == 1000:1000 ]] &&
		echo "STEP-OK owner" >>"$tmp/py.out"
	report py "${py_steps[@]}"
fi

# ------------------------------------------------------------------ nginx ------------
ngx_steps=(
	"start:nginx (www-data, daemon off): answers on 127.0.0.1:8080"
	"static:nginx: serves a small file"
	"big:nginx: serves a 300 KB file intact (sendfile)"
	"tls:nginx: serves over TLS on 8443"
	"put:nginx: PUT of 100 KB lands in the tmpfs /var/lib/nginx"
	"stop:nginx: SIGQUIT ends it gracefully with status 0"
	"root-start:nginx (tenant root, daemonized, CAP_SETUID/SETGID/CHOWN): starts, workers run as www-data"
	"root-serve:nginx (daemonized): serves a file on port 80 without CAP_NET_BIND_SERVICE"
	"root-quit:nginx (daemonized): nginx -s quit stops master and workers"
)
if [[ $not_root -eq 1 ]]; then
	skip_steps "needs root (tenantctl run sets up namespaces and id maps)" "${ngx_steps[@]}"
elif [[ ! -x /usr/sbin/nginx ]]; then
	skip_steps "nginx not installed: apt-get install nginx-light" "${ngx_steps[@]}"
elif ! command -v curl >/dev/null; then
	skip_steps "curl (the test's HTTP client) not installed: apt-get install curl" "${ngx_steps[@]}"
else
	mkdir -p "$tmp/ngx/conf" "$tmp/ngx/www" "$tmp/ngx/t"
	if [[ -f /etc/nginx/mime.types ]]; then
		cp /etc/nginx/mime.types "$tmp/ngx/conf/"
	else
		echo 'types { text/html html; }' >"$tmp/ngx/conf/mime.types"
	fi
	echo "hello from nginx" >"$tmp/ngx/www/index.html"
	head -c 300000 /dev/urandom >"$tmp/ngx/www/big.bin"
	sha256sum <"$tmp/ngx/www/big.bin" | cut -d' ' -f1 >"$tmp/ngx/t/big.sha256"
	tls_listen="" tls_conf=""
	if command -v openssl >/dev/null &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
			-keyout "$tmp/ngx/conf/key.pem" -out "$tmp/ngx/conf/cert.pem" >/dev/null 2>&1; then
		chmod 644 "$tmp/ngx/conf/key.pem"
		tls_listen="listen 127.0.0.1:8443 ssl;"
		tls_conf="ssl_certificate /etc/nginx/cert.pem; ssl_certificate_key /etc/nginx/key.pem;"
	fi
	# Temp paths on the tmpfs /var/lib/nginx, the pid file on the tmpfs /run. (/run is
	# declared because a tmpfs declared below an undeclared /run, e.g. /run/nginx, is
	# hidden by the default /run that is mounted after it.)
	cat >"$tmp/ngx/conf/nginx.conf" <<EOF
worker_processes 2;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  client_body_temp_path /var/lib/nginx/body;
  proxy_temp_path /var/lib/nginx/proxy;
  fastcgi_temp_path /var/lib/nginx/fastcgi;
  uwsgi_temp_path /var/lib/nginx/uwsgi;
  scgi_temp_path /var/lib/nginx/scgi;
  server {
    listen 127.0.0.1:8080;
    $tls_listen
    $tls_conf
    root /srv/www;
    location /upload/ { root /var/lib/nginx/dav; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
	cat >"$tmp/ngx/conf/root.conf" <<'EOF'
user www-data;
worker_processes 2;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  server { listen 127.0.0.1:80; root /srv/www; }
}
EOF
	cat >"$tmp/ngx/t/fg.sh" <<'EOF'
nginx -e stderr -c /etc/nginx/nginx.conf -g 'daemon off;' &
ngx=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.05; done
curl -sf -o /dev/null http://127.0.0.1:8080/ && echo STEP-OK start
[ "$(curl -sf http://127.0.0.1:8080/index.html)" = "hello from nginx" ] && echo STEP-OK static
[ "$(curl -sf http://127.0.0.1:8080/big.bin | sha256sum | cut -d' ' -f1)" = "$(cat /t/big.sha256)" ] &&
	echo STEP-OK big
[ "$(curl -sfk https://127.0.0.1:8443/index.html)" = "hello from nginx" ] && echo STEP-OK tls
head -c 100000 /dev/urandom >/tmp/up
code=$(curl -s -o /dev/null -w '%{http_code}' -T /tmp/up http://127.0.0.1:8080/upload/x/f)
[ "$code" = 201 ] && cmp -s /tmp/up /var/lib/nginx/dav/upload/x/f && echo STEP-OK put
kill -QUIT $ngx
wait $ngx && echo STEP-OK stop
EOF
	cat >"$tmp/ngx/t/daemon.sh" <<'EOF'
nginx -e stderr -c /etc/nginx/root.conf || exit 1
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1/ && break; sleep 0.05; done
workers=$(ps -o user= -C nginx | sort | uniq -c | tr -s ' ' | tr '\n' ,)
echo "nginx processes by user: $workers"
case $workers in *" 1 root,"*"2 www-data,"*) echo STEP-OK root-start ;; esac
[ "$(curl -sf http://127.0.0.1/index.html)" = "hello from nginx" ] && echo STEP-OK root-serve
nginx -e stderr -c /etc/nginx/root.conf -s quit
for i in $(seq 100); do pgrep -x nginx >/dev/null || break; sleep 0.05; done
pgrep -x nginx >/dev/null || echo STEP-OK root-quit
EOF
	mounts="\"mounts\": [
    { \"source\": \"$tmp/ngx/conf\", \"target\": \"/etc/nginx\", \"mode\": \"ro\", \"noexec\": true },
    { \"source\": \"$tmp/ngx/www\", \"target\": \"/srv/www\", \"mode\": \"ro\", \"noexec\": true },
    { \"source\": \"$tmp/ngx/t\", \"target\": \"/t\", \"mode\": \"ro\" },
    { \"type\": \"tmpfs\", \"target\": \"/var/lib/nginx\", \"size\": \"16M\", \"noexec\": true },
    { \"type\": \"tmpfs\", \"target\": \"/run\", \"size\": \"1M\", \"noexec\": true } ]"
	manifest ngx 33:33 "$mounts"
	run_tenant ngx "$tmp/ngx.json" -- /bin/sh /t/fg.sh
	manifest ngx-root 0:0 "$mounts" \
		', "capabilities": ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE"]'
	run_tenant ngx-root "$tmp/ngx-root.json" -- /bin/sh /t/daemon.sh
	cat "$tmp/ngx-root.out" >>"$tmp/ngx.out"
	report ngx "${ngx_steps[@]}"
fi

# ------------------------------------------------------------------ redis ------------
redis_steps=(
	"ping:redis: redis-server answers PING"
	"setget:redis: SET then GET returns the value"
	"pipe:redis: 2000 keys through redis-cli --pipe"
	"save:redis: SAVE writes dump.rdb"
	"bgsave:redis: BGSAVE (fork) completes with status ok"
	"aof:redis: BGREWRITEAOF completes with status ok"
	"shutdown:redis: SHUTDOWN ends the server with status 0"
	"reload:redis: a second tenant loads the data from the rw mount"
)
if [[ $not_root -eq 1 ]]; then
	skip_steps "needs root (tenantctl run sets up namespaces and id maps)" "${redis_steps[@]}"
elif [[ ! -x /usr/bin/redis-server || ! -x /usr/bin/redis-cli ]]; then
	skip_steps "redis not installed: apt-get install redis-server" "${redis_steps[@]}"
else
	mkdir -p "$tmp/redis/data" "$tmp/redis/t"
	chown 999:999 "$tmp/redis/data"
	cat >"$tmp/redis/t/run.sh" <<'EOF'
redis-server --port 6379 --bind 127.0.0.1 --dir /var/lib/redis --appendonly yes \
	--save '' --logfile /var/lib/redis/redis.log &
srv=$!
for i in $(seq 100); do [ "$(redis-cli ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
[ "$(redis-cli ping)" = PONG ] && echo STEP-OK ping
redis-cli set greeting hello >/dev/null && [ "$(redis-cli get greeting)" = hello ] && echo STEP-OK setget
i=0; while [ $i -lt 2000 ]; do i=$((i + 1)); echo "SET key:$i val$i"; done |
	redis-cli --pipe | grep -q 'errors: 0, replies: 2000' &&
	[ "$(redis-cli get key:1234)" = val1234 ] && echo STEP-OK pipe
[ "$(redis-cli save)" = OK ] && [ -s /var/lib/redis/dump.rdb ] && echo STEP-OK save
persist() { redis-cli info persistence | tr -d '\r' | grep "^$1:" | cut -d: -f2; }
redis-cli bgsave >/dev/null
for i in $(seq 100); do [ "$(persist rdb_bgsave_in_progress)" = 0 ] && break; sleep 0.05; done
[ "$(persist rdb_last_bgsave_status)" = ok ] && echo STEP-OK bgsave
redis-cli bgrewriteaof >/dev/null
for i in $(seq 100); do [ "$(persist aof_rewrite_in_progress)" = 0 ] && break; sleep 0.05; done
[ "$(persist aof_last_bgrewrite_status)" = ok ] && echo STEP-OK aof
redis-cli shutdown >/dev/null 2>&1
wait $srv && echo STEP-OK shutdown
EOF
	cat >"$tmp/redis/t/reload.sh" <<'EOF'
redis-server --port 6379 --bind 127.0.0.1 --dir /var/lib/redis --appendonly yes \
	--save '' --logfile /var/lib/redis/redis2.log &
for i in $(seq 100); do [ "$(redis-cli ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
[ "$(redis-cli get greeting)" = hello ] && [ "$(redis-cli dbsize)" = 2001 ] && echo STEP-OK reload
redis-cli shutdown nosave >/dev/null 2>&1
EOF
	manifest redis 999:999 "\"mounts\": [
    { \"source\": \"$tmp/redis/data\", \"target\": \"/var/lib/redis\", \"mode\": \"rw\", \"noexec\": true },
    { \"source\": \"$tmp/redis/t\", \"target\": \"/t\", \"mode\": \"ro\" } ]"
	run_tenant redis "$tmp/redis.json" -- /bin/sh /t/run.sh
	first_rc=$rc
	run_tenant redis2 "$tmp/redis.json" -- /bin/sh /t/reload.sh
	cat "$tmp/redis2.out" >>"$tmp/redis.out"
	[[ $rc -eq 0 ]] && rc=$first_rc
	[[ -s $tmp/redis/data/redis.log ]] && tail -5 "$tmp/redis/data/redis.log" >>"$tmp/redis.out"
	report redis "${redis_steps[@]}"
fi

# ------------------------------------------------------------------ PostgreSQL -------
pg_steps=(
	"initdb:postgres: initdb as uid 1000 into a rw mount"
	"ready:postgres: the server accepts connections on its unix socket"
	"query:postgres: psql creates, fills, indexes and sums a 10000-row table"
	"parallel:postgres: a parallel query (background workers, dynamic shared memory)"
	"tcp:postgres: psql over loopback TCP"
	"pgbench:postgres: pgbench -T 2 with 2 clients completes without failures"
	"stop:postgres: pg_ctl stop -m fast shuts the server down cleanly"
)
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ $not_root -eq 1 ]]; then
	skip_steps "needs root (tenantctl run sets up namespaces and id maps)" "${pg_steps[@]}"
elif [[ -z $pgbin || ! -x $pgbin/postgres || ! -x $pgbin/initdb || ! -x $pgbin/psql ]]; then
	skip_steps "PostgreSQL not installed: apt-get install postgresql" "${pg_steps[@]}"
else
	mkdir -p "$tmp/pg/data" "$tmp/pg/t"
	chown 1000:1000 "$tmp/pg/data"
	cat >"$tmp/pg/t/run.sh" <<'EOF'
D=/var/lib/postgresql/15
initdb -D $D -U pg --auth=trust -E UTF8 --locale=C.UTF-8 >/var/lib/postgresql/initdb.log 2>&1 &&
	echo STEP-OK initdb || { tail -20 /var/lib/postgresql/initdb.log; exit 1; }
mkdir -p /run/postgresql
postgres -D $D -k /run/postgresql -c listen_addresses=127.0.0.1 -c shared_buffers=16MB \
	-c max_parallel_workers_per_gather=2 -c dynamic_shared_memory_type=posix \
	>/var/lib/postgresql/server.log 2>&1 &
for i in $(seq 150); do pg_isready -q -h /run/postgresql -U pg -d postgres && break; sleep 0.1; done
pg_isready -q -h /run/postgresql -U pg -d postgres && echo STEP-OK ready
q() { psql -X -v ON_ERROR_STOP=1 -h /run/postgresql -U pg -d postgres -Atc "$1"; }
[ "$(q "create table t(a int, b text);
	insert into t select g, md5(g::text) from generate_series(1, 10000) g;
	create index on t(b); analyze t; select count(*), sum(a) from t" | tail -1)" = "10000|50005000" ] &&
	echo STEP-OK query
plan=$(q "set parallel_setup_cost = 0; set parallel_tuple_cost = 0;
	set min_parallel_table_scan_size = 0;
	explain (analyze, costs off) select count(*) from t where b like 'a%'")
echo "$plan" | grep -q 'Workers Launched: [12]' && echo STEP-OK parallel
[ "$(psql -X -h 127.0.0.1 -U pg -d postgres -Atc 'select 6 * 7')" = 42 ] && echo STEP-OK tcp
pgbench -h /run/postgresql -U pg -i -s 1 -q postgres >/var/lib/postgresql/pgbench.log 2>&1 &&
	pgbench -h /run/postgresql -U pg -T 2 -c 2 -j 2 postgres >>/var/lib/postgresql/pgbench.log 2>&1 &&
	grep -q 'number of failed transactions: 0' /var/lib/postgresql/pgbench.log &&
	echo STEP-OK pgbench
grep -E '^(tps|number of)' /var/lib/postgresql/pgbench.log
pg_ctl -D $D stop -m fast -w >/dev/null && grep -q 'database system is shut down' \
	/var/lib/postgresql/server.log && echo STEP-OK stop
grep -E 'ERROR|FATAL|PANIC|WARNING' /var/lib/postgresql/server.log | head -5
EOF
	cat >"$tmp/pg.json" <<EOF
{
  "name": "pg",
  "exec": ["/bin/true"],
  "user": "1000:1000",
  "root": "host-system",
  "env": { "LANG": "C.UTF-8", "PATH": "$pgbin:/usr/bin:/bin" },
  "policy": { "seccomp": "$profile" },
  "mounts": [
    { "source": "$tmp/pg/data", "target": "/var/lib/postgresql", "mode": "rw", "noexec": true },
    { "source": "$tmp/pg/t", "target": "/t", "mode": "ro" },
    { "type": "tmpfs", "target": "/run", "size": "4M", "noexec": true }
  ]
}
EOF
	run_tenant pg "$tmp/pg.json" -- /bin/sh /t/run.sh
	report pg "${pg_steps[@]}"
fi

done_testing
