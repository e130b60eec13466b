/* agent_client.c — the host side of tests/integration/test_agent_boot.sh: talks to a
 * booted tenant-agent over its virtio-serial unix socket with the real codec, and prints
 * TAP for what it sees.
 *
 * Usage: agent_client SOCKET   (the guest's initramfs must have busybox at /bin; the
 * guest has 9p shares tagged t0, holding hello.txt, and t1, holding a symlink evil -> /etc)
 *        agent_client --tsc-khz  (prints the host's TSC rate in kHz, 0 when unknown, for
 *                                 the guest's tsc_early_khz as vm.c passes it) */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/agent_proto.h"
#include "tap.h"

#define SESSIONS 16

static int sock = -1;
static struct agent_reader reader;
static uint32_t next_id = 1;
#define IDS 128
static int pending_op[IDS]; /* op of each request id (ids stay below IDS here) */

static struct {
        char *out[2];
        size_t len[2];
        bool exited;
        bool signaled;
        int code;
} sessions[SESSIONS];
static int ready_events, oversize_errors;

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int op_of(uint32_t id, void *userdata)
{
        (void)userdata;
        return id < IDS && pending_op[id] ? pending_op[id] : -1;
}

static void send_raw(const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(sock, buf, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        diag("write: %s", strerror(errno));
                        return;
                }
                buf += n;
                len -= (size_t)n;
        }
}

static void record_event(const struct agent_event *ev)
{
        if (ev->kind == AGENT_EVENT_READY) {
                ready_events++;
                return;
        }
        if (ev->session >= SESSIONS)
                return;
        if (ev->kind == AGENT_EVENT_LOG) {
                int k = ev->stream == AGENT_STREAM_STDERR;
                char **buf = &sessions[ev->session].out[k];
                size_t *len = &sessions[ev->session].len[k];
                *buf = realloc(*buf, *len + ev->len + 1);
                memcpy(*buf + *len, ev->data, ev->len);
                *len += ev->len;
                (*buf)[*len] = '\0';
        } else if (ev->kind == AGENT_EVENT_EXIT) {
                sessions[ev->session].exited = true;
                sessions[ev->session].signaled = ev->signaled;
                sessions[ev->session].code = ev->code;
        }
}

/* Reads frames until `want_id` is answered (0: until the deadline or `until` holds).
 * Events on the way are recorded. Returns 1 with *ret filled, 0 on timeout, -1 on
 * EOF or a frame the codec refuses. */
static int pump(uint32_t want_id, struct agent_reply *ret, long long deadline, bool (*until)(void))
{
        for (;;) {
                const char *line;
                size_t len;
                enum agent_read k;
                while ((k = agent_reader_next(&reader, &line, &len)) != AGENT_READ_NONE) {
                        if (k == AGENT_READ_OVERSIZED) {
                                diag("agent sent an oversized frame");
                                return -1;
                        }
                        struct agent_msg m;
                        _cleanup_err_ struct tn_err *err = NULL;
                        if (agent_msg_decode(line, len, op_of, NULL, &m, &err) < 0) {
                                diag("agent frame refused: %s: %.200s", tn_err_msg(err), line);
                                return -1;
                        }
                        if (m.is_event) {
                                record_event(&m.event);
                                agent_msg_clear(&m);
                        } else if (!m.reply.ok && m.reply.id == 0 && want_id != 0 &&
                                   strcmp(m.reply.error, "frame too large") == 0) {
                                oversize_errors++;
                                agent_msg_clear(&m);
                        } else if (m.reply.id == want_id) {
                                *ret = m.reply;
                                m.reply = (struct agent_reply){0};
                                agent_msg_clear(&m);
                                return 1;
                        } else {
                                diag("unexpected reply to id %u (ok %d, %s)", m.reply.id,
                                     m.reply.ok, m.reply.error ? m.reply.error : "");
                                agent_msg_clear(&m);
                        }
                }
                if (until && until())
                        return 0;
                long long left = deadline - now_ms();
                if (left <= 0)
                        return 0;
                struct pollfd p = {.fd = sock, .events = POLLIN};
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                ssize_t n = agent_reader_fill(&reader, sock);
                if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR)) {
                        diag("agent channel closed (%zd)", n);
                        return -1;
                }
        }
}

/* Sends req (its id is assigned here) and waits up to timeout_ms for the reply. */
static int call(struct agent_request *req, struct agent_reply *ret, int timeout_ms)
{
        req->id = next_id++;
        pending_op[req->id] = req->op;
        char *frame;
        size_t len;
        int r = agent_request_encode(req, &frame, &len);
        if (r < 0) {
                diag("cannot encode %s: %d", agent_op_name(req->op), r);
                return r;
        }
        send_raw(frame, len);
        free(frame);
        *ret = (struct agent_reply){0};
        return pump(req->id, ret, now_ms() + timeout_ms, NULL) == 1 ? 0 : -ETIMEDOUT;
}

static int waiting_session = -1;
static bool session_done(void)
{
        return sessions[waiting_session].exited;
}

static bool wait_exit(int session, int timeout_ms)
{
        struct agent_reply dummy;
        waiting_session = session;
        pump(0, &dummy, now_ms() + timeout_ms, session_done);
        return sessions[session].exited;
}

static bool got_ready(void)
{
        return ready_events > 0;
}

static char **strv(const char *first, ...)
{
        char **v = calloc(16, sizeof(char *));
        va_list ap;
        va_start(ap, first);
        size_t n = 0;
        for (const char *s = first; s && n < 15; s = va_arg(ap, const char *))
                v[n++] = strdup(s);
        va_end(ap);
        return v;
}

static size_t strv_len(char **v)
{
        size_t n = 0;
        while (v[n])
                n++;
        return n;
}

static void proc_set(struct agent_proc *p, char **argv, uint32_t uid)
{
        *p = (struct agent_proc){.argv = argv,
                                 .argc = strv_len(argv),
                                 .env = strv("PATH=/bin", NULL),
                                 .uid = uid,
                                 .gid = uid,
                                 .workdir = strdup("/")};
        p->n_env = 1;
}

static int connect_socket(const char *path)
{
        for (int i = 0; i < 200; i++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return fd;
                close(fd);
                usleep(50000);
        }
        return -1;
}

static void test_exec(void)
{
        int r;
        struct agent_request req = {.op = AGENT_OP_EXEC};
        struct agent_reply rep;
        req.u.exec.session = 1;
        proc_set(&req.u.exec.proc,
                 strv("/bin/sh", "-c", "echo out; echo err >&2; cat; exit 3", NULL), 0);
        req.u.exec.has_stdin = true;
        req.u.exec.stdin_data = (uint8_t *)strdup("piped-in\n");
        req.u.exec.stdin_len = 9;
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && rep.u.pid > 1, "exec session 1 starts (pid %d)", rep.u.pid);
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        ok(wait_exit(1, 20000), "exec session 1 exits");
        ok(!sessions[1].signaled && sessions[1].code == 3, "exit event carries code 3 (got %s%d)",
           sessions[1].signaled ? "signal " : "", sessions[1].code);
        is_str(sessions[1].out[0], "out\npiped-in\n", "stdout log events, then the stdin we sent");
        is_str(sessions[1].out[1], "err\n", "stderr arrives as its own stream");

        req = (struct agent_request){.op = AGENT_OP_EXEC};
        req.u.exec.session = 2;
        proc_set(&req.u.exec.proc, strv("id", "-u", NULL), 1000);
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok, "exec as uid 1000");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        ok(wait_exit(2, 20000) && sessions[2].code == 0, "id exits 0");
        is_str(sessions[2].out[0], "1000\n", "the process runs as uid 1000");

        req = (struct agent_request){.op = AGENT_OP_EXEC};
        req.u.exec.session = 3;
        proc_set(&req.u.exec.proc, strv("/no/such/program", NULL), 0);
        r = call(&req, &rep, 10000);
        ok(r == 0 && !rep.ok && rep.error && strstr(rep.error, "No such file"),
           "a missing program is an error reply: %s", rep.error ? rep.error : "(none)");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
}

static void test_shares(void)
{
        int r;
        struct agent_request req = {.op = AGENT_OP_SETUP};
        struct agent_reply rep;
        struct agent_setup *s = &req.u.setup;
        s->mounts = calloc(2, sizeof(*s->mounts));
        s->n_mounts = 2;
        s->mounts[0] = (struct agent_mount){.tag = strdup("t1"),
                                            .target = strdup("/mnt/e"),
                                            .fstype = AGENT_FS_9P,
                                            .readonly = true};
        s->mounts[1] = (struct agent_mount){.tag = strdup("t2"),
                                            .target = strdup("/mnt/e/evil/sub"),
                                            .fstype = AGENT_FS_9P,
                                            .readonly = true};
        r = call(&req, &rep, 20000);
        ok(r == 0 && !rep.ok && rep.error && strstr(rep.error, "symlink"),
           "a mount target through a symlink in a share is refused: %s",
           rep.error ? rep.error : "(none)");
        agent_reply_clear(&rep);
        agent_request_clear(&req);

        /* The same for a tmpfs, through the symlink of the share left mounted above. */
        req = (struct agent_request){.op = AGENT_OP_SETUP};
        s->mounts = calloc(1, sizeof(*s->mounts));
        s->n_mounts = 1;
        s->mounts[0] = (struct agent_mount){
            .target = strdup("/mnt/e/evil/tmp"), .fstype = AGENT_FS_TMPFS, .size = 1 << 20};
        r = call(&req, &rep, 20000);
        ok(r == 0 && !rep.ok && rep.error && strstr(rep.error, "symlink") &&
               strstr(rep.error, "tmpfs on /mnt/e/evil/tmp"),
           "a tmpfs target through a symlink in a share is refused: %s",
           rep.error ? rep.error : "(none)");
        agent_reply_clear(&rep);
        agent_request_clear(&req);

        req = (struct agent_request){.op = AGENT_OP_SETUP};
        s->hostname = strdup("ag-smoke");
        s->mounts = calloc(2, sizeof(*s->mounts));
        s->n_mounts = 2;
        s->mounts[0] = (struct agent_mount){.tag = strdup("t0"),
                                            .target = strdup("/data"),
                                            .fstype = AGENT_FS_9P,
                                            .readonly = true};
        s->mounts[1] = (struct agent_mount){.target = strdup("/scratch/t"),
                                            .fstype = AGENT_FS_TMPFS,
                                            .noexec = true,
                                            .size = 2 << 20};
        s->has_net = true;
        inet_pton(AF_INET, "10.0.2.15", &s->net.address);
        s->net.prefix = 24;
        s->net.has_gateway = true;
        inet_pton(AF_INET, "10.0.2.2", &s->net.gateway);
        s->net.dns[0] = strdup("10.0.2.3");
        s->net.n_dns = 1;
        r = call(&req, &rep, 20000);
        ok(r == 0 && rep.ok, "setup: hostname, a read-only 9p share, a tmpfs, network (%s)",
           rep.error ? rep.error : "ok");
        agent_reply_clear(&rep);
        agent_request_clear(&req);

        req = (struct agent_request){.op = AGENT_OP_EXEC};
        req.u.exec.session = 4;
        proc_set(&req.u.exec.proc,
                 strv("/bin/sh", "-c",
                      "uname -n; cat /data/hello.txt; cat /etc/resolv.conf; ls -d /etc/sub 2>&1; "
                      "echo x > /data/w 2>&1 || echo read-only; grep /scratch/t /proc/mounts; "
                      "stat -c perm=%a /scratch/t",
                      NULL),
                 0);
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok, "exec a look at the setup");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        ok(wait_exit(4, 20000), "it exits");
        const char *o = sessions[4].out[0] ? sessions[4].out[0] : "";
        ok(strstr(o, "ag-smoke\n") != NULL, "hostname is set");
        ok(strstr(o, "hello from the host\n") != NULL, "the share's file is readable at /data");
        ok(strstr(o, "nameserver 10.0.2.3\n") != NULL, "resolv.conf written");
        ok(strstr(o, "No such file") != NULL, "nothing was created under /etc through the symlink");
        ok(strstr(o, "read-only") != NULL, "the read-only share refuses writes");
        /* The options as the guest's kernel shows them (6.1 adds inode64); mode 1777 is
         * tmpfs's default, so no mode= is shown. */
        static const char line[] =
            "tmpfs /scratch/t tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k";
        const char *at = strstr(o, line);
        bool made = at && (at[sizeof(line) - 1] == ',' || at[sizeof(line) - 1] == ' ') &&
                    strstr(o, "perm=1777\n");
        ok(made, "the tmpfs is made where the root lacks its target: 2M, noexec, mode 1777");
        if (!strstr(o, "ag-smoke") || !made)
                diag("output: %s", o);
}

/* A live pids.max (`tenantctl set` on a running microVM): the limits request writes the
 * tenant's cgroup in the guest, made at setup; 0 is "max". What an exec'd shell (in
 * that cgroup) then sees, and that forks past the new limit fail. */
static void limits_set(uint32_t pids_max)
{
        struct agent_request req = {.op = AGENT_OP_LIMITS, .u.limits.pids_max = pids_max};
        struct agent_reply rep;
        int r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok, "limits: pids_max %u taken (%s)", pids_max,
           rep.error ? rep.error : "ok");
        agent_reply_clear(&rep);
}

static const char *limits_look(int session, const char *script)
{
        struct agent_request req = {.op = AGENT_OP_EXEC};
        struct agent_reply rep;
        req.u.exec.session = (uint32_t)session;
        proc_set(&req.u.exec.proc, strv("/bin/sh", "-c", script, NULL), 0);
        int r = call(&req, &rep, 10000);
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        if (r < 0 || !wait_exit(session, 20000))
                return "(no exit)";
        return sessions[session].out[0] ? sessions[session].out[0] : "";
}

static void test_limits(void)
{
        limits_set(4);
        /* The shell and cat are 2 of 4; three sleeps more cannot all start. */
        const char *o =
            limits_look(6, "cat /run/tenant-cgroup/tenant/pids.max; "
                           "sleep 3 & sleep 3 & sleep 3 & "
                           "echo current $(cat /run/tenant-cgroup/tenant/pids.current)");
        ok(strncmp(o, "4\n", 2) == 0, "the guest's cgroup says pids.max 4");
        const char *e = sessions[6].out[1] ? sessions[6].out[1] : "no error";
        ok(strstr(e, "fork") != NULL, "a fork past it fails in the guest (%.*s)",
           (int)strcspn(e, "\n"), e);
        if (strncmp(o, "4\n", 2) != 0)
                diag("output: %s", o);
        limits_set(0);
        o = limits_look(7, "cat /run/tenant-cgroup/tenant/pids.max");
        is_str(o, "max\n", "pids_max 0 is no limit: max");
}

/* http checks against busybox httpd (a page: 200, a missing one: 404), a listener
 * that answers a line that is not HTTP, and a closed port. */
static void http_check(uint16_t port, const char *path, bool want_healthy, const char *want,
                       const char *what)
{
        struct agent_request req = {.op = AGENT_OP_HEALTH};
        struct agent_reply rep;
        req.u.health.kind = AGENT_HEALTH_HTTP;
        req.u.health.port = port;
        req.u.health.path = strdup(path);
        req.u.health.timeout_ms = 5000;
        int r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && rep.u.health.healthy == want_healthy &&
               strstr(rep.u.health.detail, want),
           "health http %s: %s (%s)", what, want_healthy ? "healthy" : "unhealthy",
           rep.ok ? rep.u.health.detail : "");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
}

static void test_http_health(void)
{
        struct agent_request req = {.op = AGENT_OP_EXEC};
        struct agent_reply rep;
        req.u.exec.session = 5;
        proc_set(&req.u.exec.proc,
                 strv("/bin/sh", "-c",
                      "mkdir -p /tmp/www && echo hi >/tmp/www/index.html && "
                      "busybox httpd -p 127.0.0.1:8081 -h /tmp/www </dev/null >/dev/null 2>&1; "
                      "(echo SSH-2.0-not-http | busybox nc -l -p 8082 >/dev/null 2>&1 &); "
                      "sleep 1",
                      NULL),
                 0);
        int r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok, "exec: start httpd and a listener that is not HTTP");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        ok(wait_exit(5, 20000) && sessions[5].code == 0, "they are up");
        http_check(8081, "/", true, "HTTP/1.", "GET / of a page");
        http_check(8081, "/missing", false, "no 2xx/3xx answer to GET /missing: HTTP/1.", "a 404");
        http_check(8082, "/", false, "not HTTP: \"SSH-2.0-not-http\"", "a line that is not HTTP");
        http_check(9, "/", false, "port 9 refused the connection", "a closed port");
}

static void test_service_and_health(void)
{
        int r;
        struct agent_request req = {.op = AGENT_OP_START};
        struct agent_reply rep;
        proc_set(&req.u.start, strv("/bin/sh", "-c", "echo service up; exec sleep 1000", NULL), 0);
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok, "start the service (session 0)");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        proc_set(&req.u.start, strv("/bin/true", NULL), 0);
        req.op = AGENT_OP_START;
        r = call(&req, &rep, 10000);
        ok(r == 0 && !rep.ok, "a second start is refused: %s", rep.error ? rep.error : "");
        agent_reply_clear(&rep);
        agent_request_clear(&req);

        req = (struct agent_request){.op = AGENT_OP_STATS};
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && rep.u.stats.mem_total > 0 && rep.u.stats.mem_available > 0 &&
               rep.u.stats.uptime_ms > 0 && rep.u.stats.cpu_ns > 0,
           "stats: mem_total %llu, available %llu, cpu_ns %llu, uptime %llu ms",
           (unsigned long long)rep.u.stats.mem_total, (unsigned long long)rep.u.stats.mem_available,
           (unsigned long long)rep.u.stats.cpu_ns, (unsigned long long)rep.u.stats.uptime_ms);
        agent_reply_clear(&rep);

        req = (struct agent_request){.op = AGENT_OP_HEALTH};
        req.u.health.kind = AGENT_HEALTH_TCP;
        req.u.health.port = 9;
        req.u.health.timeout_ms = 2000;
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && !rep.u.health.healthy, "health tcp to a closed port: unhealthy (%s)",
           rep.ok ? rep.u.health.detail : "");
        agent_reply_clear(&rep);
        test_http_health();
        req = (struct agent_request){.op = AGENT_OP_HEALTH};
        req.u.health.kind = AGENT_HEALTH_EXEC;
        req.u.health.argv = strv("/bin/true", NULL);
        req.u.health.argc = 1;
        req.u.health.timeout_ms = 5000;
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && rep.u.health.healthy, "health exec /bin/true: healthy (%s)",
           rep.ok ? rep.u.health.detail : "");
        agent_reply_clear(&rep);
        agent_request_clear(&req);
        req = (struct agent_request){.op = AGENT_OP_HEALTH};
        req.u.health.kind = AGENT_HEALTH_EXEC;
        req.u.health.argv = strv("sleep", "10", NULL);
        req.u.health.argc = 2;
        req.u.health.timeout_ms = 500;
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && !rep.u.health.healthy &&
               strstr(rep.u.health.detail, "within 500 ms"),
           "health exec that hangs: unhealthy after its timeout (%s)",
           rep.ok ? rep.u.health.detail : "");
        agent_reply_clear(&rep);
        agent_request_clear(&req);

        req = (struct agent_request){.op = AGENT_OP_SIGNAL};
        req.u.signal.session = 0;
        req.u.signal.signo = SIGTERM;
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok, "signal the service");
        agent_reply_clear(&rep);
        ok(wait_exit(0, 20000) && sessions[0].signaled && sessions[0].code == SIGTERM,
           "the service's exit event says SIGTERM");
        is_str(sessions[0].out[0], "service up\n", "the service's output was streamed");
}

static void test_hostile_input(void)
{
        int r;
        struct agent_reply rep;
        static const char garbage[] = "\x00\xff\xfe garbage \x01\x02\n";
        send_raw(garbage, sizeof(garbage) - 1);
        /* pump(0) returns on a reply with id 0: the answer to a frame without an id. */
        r = pump(0, &rep, now_ms() + 10000, NULL);
        ok(r == 1 && !rep.ok && rep.id == 0, "binary garbage is answered with an error (%s)",
           rep.error ? rep.error : "none");
        agent_reply_clear(&rep);

        const char *unknown = "{\"v\":1,\"id\":60,\"op\":\"format-disk\"}\n";
        send_raw(unknown, strlen(unknown));
        pending_op[60] = AGENT_OP_HELLO;
        r = pump(60, &rep, now_ms() + 10000, NULL);
        ok(r == 1 && !rep.ok && strcmp(rep.error, "unknown op") == 0,
           "an unknown op is answered \"unknown op\" with its id");
        agent_reply_clear(&rep);

        /* 10 MB without a newline, then one: one "frame too large" answer. */
        size_t big = 10 * 1000 * 1000;
        char *junk = malloc(big + 1);
        memset(junk, 'A', big);
        junk[big] = '\n';
        oversize_errors = 0;
        send_raw(junk, big + 1);
        free(junk);

        struct agent_request req = {.op = AGENT_OP_HELLO};
        r = call(&req, &rep, 60000);
        ok(r == 0 && rep.ok, "hello still answered after a 10 MB line");
        agent_reply_clear(&rep);
        is_int(oversize_errors, 1, "the 10 MB line was answered with one \"frame too large\"");
}

/* As vm.c's host_tsc_khz: rdtsc against CLOCK_MONOTONIC_RAW over 20 ms. Under TCG the
 * guest's TSC is the host's, and its calibration against the emulated PIT fails when the
 * host is busy, after which the kernel hangs before /init. */
static unsigned long host_tsc_khz(void)
{
#if defined(__x86_64__) || defined(__i386__)
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC_RAW, &a);
        unsigned long long c0 = __builtin_ia32_rdtsc();
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
        unsigned long long c1 = __builtin_ia32_rdtsc();
        clock_gettime(CLOCK_MONOTONIC_RAW, &b);
        long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        if (ns <= 0 || c1 <= c0)
                return 0;
        return (unsigned long)((c1 - c0) * 1000000ULL / (unsigned long long)ns);
#else
        return 0;
#endif
}

int main(int argc, char **argv)
{
        int r;
        signal(SIGPIPE, SIG_IGN);
        if (argc == 2 && strcmp(argv[1], "--tsc-khz") == 0) {
                printf("%lu\n", host_tsc_khz());
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "usage: agent_client SOCKET\n");
                return 2;
        }
        agent_reader_init(&reader);
        sock = connect_socket(argv[1]);
        if (!ok(sock >= 0, "connect to the agent socket"))
                return tap_done();
        struct agent_reply rep;
        long long t0 = now_ms();
        pump(0, &rep, now_ms() + 120000, got_ready);
        if (!ok(ready_events == 1, "ready event (after %lld ms on the socket)", now_ms() - t0))
                return tap_done();

        struct agent_request req = {.op = AGENT_OP_HELLO};
        r = call(&req, &rep, 10000);
        ok(r == 0 && rep.ok && strcmp(rep.u.hello.agent, "tenant-agent 1.0") == 0 &&
               strstr(rep.u.hello.kernel, "amd64") && rep.u.hello.boot_ms > 0,
           "hello: %s, kernel %s, ready %llu ms after boot", rep.ok ? rep.u.hello.agent : "-",
           rep.ok ? rep.u.hello.kernel : "-",
           rep.ok ? (unsigned long long)rep.u.hello.boot_ms : 0ull);
        agent_reply_clear(&rep);

        test_shares();
        test_limits();
        test_exec();
        test_service_and_health();
        test_hostile_input();

        req = (struct agent_request){.op = AGENT_OP_SHUTDOWN, .u.shutdown_timeout_ms = 2000};
        r = call(&req, &rep, 20000);
        ok(r == 0 && rep.ok, "shutdown acknowledged");
        agent_reply_clear(&rep);
        close(sock);
        return tap_done();
}
