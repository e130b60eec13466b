/* cmd_ctl.c — the verbs that talk to tenantd over its control socket: list, status,
 * start, stop, restart, kill, logs, exec, set, top, events, reload.
 * The protocol is in docs/protocol.md; this file only frames requests and prints
 * replies (tables for people, the reply objects with --json). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "proto/control_proto.h"
#include "proto/exec_proto.h"
#include "lib/clock.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/logtext.h"
#include "cli/tenantctl.h"
#include "lib/units.h"
#include "lib/version.h"

#define REPLY_MAX (16U << 20)

static const struct json_limits reply_limits = {
    .max_bytes = REPLY_MAX, .max_depth = 16, .allow_comments = false};

struct conn {
        int fd;
        char *buf;
        size_t len, cap;
};

static int connect_to(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

/* The user socket tenantctl falls back to when the control socket refuses the caller:
 * $TENANTD_USER_SOCKET ("none": no fallback), else user.sock beside the control socket
 * (tenantd's default, docs/self-service.md). */
static int user_socket_path(const struct cli *cli, char *buf, size_t len)
{
        const char *env = getenv("TENANTD_USER_SOCKET");
        if (env && strcmp(env, "none") == 0)
                return -ENOENT;
        if (env && *env) {
                snprintf(buf, len, "%s", env);
                return 0;
        }
        const char *slash = strrchr(cli->socket, '/');
        if (!slash)
                snprintf(buf, len, "user.sock");
        else
                snprintf(buf, len, "%.*s/user.sock", (int)(slash - cli->socket), cli->socket);
        return 0;
}

static int ctl_connect(const struct cli *cli, struct conn *c)
{
        if (strlen(cli->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                log_error("socket path too long: %s", cli->socket);
                return -ENAMETOOLONG;
        }
        c->fd = connect_to(cli->socket);
        char user[4200];
        /* Not root nor in the tenantd group: a tenant's user, served on the user socket
         * what the manifests' access sections grant them. */
        if (c->fd == -EACCES && user_socket_path(cli, user, sizeof(user)) == 0) {
                int fd = connect_to(user);
                if (fd >= 0) {
                        c->fd = fd;
                        return 0;
                }
        }
        if (c->fd >= 0)
                return 0;
        int e = -c->fd;
        c->fd = -1;
        if (e == ENOENT || e == ECONNREFUSED)
                log_error("tenantd is not running (nothing listens on %s); start it, or "
                          "point --socket or TENANTD_SOCKET at its socket",
                          cli->socket);
        else if (e == EACCES)
                log_error("permission denied on %s: run as root or as a member of the "
                          "tenantd group (a tenant's user: no user socket answers)",
                          cli->socket);
        else
                log_error("cannot connect to %s: %s", cli->socket, strerror(e));
        return -e;
}

static void ctl_close(struct conn *c)
{
        if (c->fd >= 0)
                close(c->fd);
        free(c->buf);
}

/* Sends one request, encoded by the protocol's codec. */
static int ctl_send(struct conn *c, const struct control_request *req)
{
        _cleanup_free_ char *line = NULL;
        size_t len, off = 0;
        int r = control_request_encode(req, &line, &len);
        if (r < 0)
                return r;
        while (off < len) {
                ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                /* tenantd may have answered and closed already (a refused peer): the
                 * reply waiting in the socket says why. */
                if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
                        return 0;
                if (n <= 0)
                        return -errno;
                off += (size_t)n;
        }
        return 0;
}

/* Checks the request as tenantd would, and connects: EXIT_OK, or the exit status after
 * saying why not (a request tenantd would refuse is refused here, with its words). */
static int ctl_open(const struct cli *cli, const struct control_request *req, struct conn *c)
{
        _cleanup_err_ struct tn_err *err = NULL;
        if (control_request_check(req, &err) < 0) {
                log_error("%s", tn_err_msg(err));
                return EXIT_USAGE;
        }
        return ctl_connect(cli, c) < 0 ? EXIT_FAILED : EXIT_OK;
}

/* One reply line; 0 with *ret set, -EPIPE when tenantd closed the connection. */
static int ctl_recv(struct conn *c, struct json_value **ret)
{
        for (;;) {
                char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
                if (nl) {
                        size_t line = (size_t)(nl - c->buf);
                        struct json_error je;
                        int r = json_parse(c->buf, line, &reply_limits, ret, &je);
                        memmove(c->buf, nl + 1, c->len - line - 1);
                        c->len -= line + 1;
                        if (r < 0) {
                                log_error("tenantd sent a reply this tenantctl cannot read: %s",
                                          je.msg);
                                return r;
                        }
                        return 0;
                }
                if (c->len == REPLY_MAX) {
                        log_error("a reply from tenantd is longer than %u bytes", REPLY_MAX);
                        return -EFBIG;
                }
                if (c->cap - c->len < 65536) {
                        size_t cap = c->cap ? c->cap * 2 : 65536;
                        if (cap > REPLY_MAX)
                                cap = REPLY_MAX;
                        char *n = realloc(c->buf, cap);
                        if (!n)
                                return -ENOMEM;
                        c->buf = n;
                        c->cap = cap;
                }
                ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -EPIPE;
                c->len += (size_t)n;
        }
}

static struct control_request request(enum control_op op, const char *name)
{
        struct control_request req;
        control_request_init(&req, op);
        req.name = name;
        return req;
}

static bool reply_ok(const struct json_value *v)
{
        const struct json_value *ok = json_get(v, CTL_OK);
        return ok && ok->type == JSON_BOOL && ok->u.boolean;
}

static const char *str_of(const struct json_value *v, const char *key)
{
        const struct json_value *x = json_get(v, key);
        return x && x->type == JSON_STRING ? x->u.str.text : NULL;
}

/* What tenantd sent, made safe to print (logtext.h): C0 and C1 control characters,
 * bidi and invisible characters and invalid UTF-8 escaped; in a one-line field
 * (`line`), newlines too. Much of a reply is a tenant's choice (its mounts, its health
 * check's answer, paths in its root); tenantd escapes them, and tenantctl does not
 * count on it. A ring of buffers, so that one printf can show several; NULL stays
 * NULL. */
static const char *shown_(const char *s, bool line)
{
        static char *ring[24];
        static size_t next;
        if (!s)
                return NULL;
        size_t len = strnlen(s, 1 << 20);
        char *out = malloc(LOGTEXT_MAX(len));
        if (!out)
                return "(out of memory)";
        size_t n = line ? logtext_show_line(s, len, out) : logtext_show(s, len, out);
        out[n] = '\0';
        free(ring[next]);
        ring[next] = out;
        next = (next + 1) % (sizeof(ring) / sizeof(ring[0]));
        return out;
}

static const char *shown(const char *s)
{
        return shown_(s, true);
}

/* str_of, shown. */
static const char *show_of(const struct json_value *v, const char *key)
{
        return shown(str_of(v, key));
}

static int64_t int_of(const struct json_value *v, const char *key, int64_t dflt);

/* A tenant's state for the tables: "queued" for a microVM that waits for a boot slot. */
static const char *state_of(const struct json_value *t)
{
        return json_get(t, "boot_queue") ? "queued" : show_of(t, "state");
}

static int64_t int_of(const struct json_value *v, const char *key, int64_t dflt)
{
        int64_t n;
        const struct json_value *x = json_get(v, key);
        return x && json_number_int64(x, &n) ? n : dflt;
}

static double num_of(const struct json_value *v, const char *key, double dflt)
{
        const struct json_value *x = json_get(v, key);
        return x && x->type == JSON_NUMBER ? strtod(x->u.str.text, NULL) : dflt;
}

/* The exit code for a failed reply, after printing its error. */
static int reply_failure(const struct json_value *v)
{
        const char *msg = show_of(v, CTL_ERROR);
        const char *code = str_of(v, CTL_CODE);
        log_error("%s", msg ? msg : "the request failed");
        return code && strcmp(code, "invalid") == 0 ? EXIT_USAGE : EXIT_FAILED;
}

static void print_value(const struct json_value *v);

/* A failed reply: with --json the reply itself on stdout, and always the message on
 * stderr; the exit code from its error code. */
static int failed(const struct cli *cli, const struct json_value *v)
{
        if (cli->json)
                print_value(v);
        return reply_failure(v);
}

static void print_value(const struct json_value *v)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g || !v)
                return;
        json_gen_value(g, v);
        cli_print_json(g);
}

/* Sends the request and prints a one-shot reply. */
static int simple(const struct cli *cli, const struct control_request *req, const char *done)
{
        const char *name = req->name;
        struct conn c = {.fd = -1};
        int rc = ctl_open(cli, req, &c);
        if (rc != EXIT_OK) {
                ctl_close(&c);
                return rc;
        }
        _cleanup_json_ struct json_value *v = NULL;
        int r = ctl_send(&c, req);
        if (r == 0)
                r = ctl_recv(&c, &v);
        ctl_close(&c);
        if (r < 0) {
                if (r == -EPIPE)
                        log_error("tenantd closed the connection without a reply");
                return EXIT_FAILED;
        }
        if (!reply_ok(v))
                return failed(cli, v);
        if (cli->json)
                print_value(v);
        if (!cli->json && done) {
                const char *msg = show_of(v, CTL_MESSAGE);
                printf("%s%s%s", name ? shown(name) : "", name ? ": " : "", done);
                if (msg)
                        printf(" (%s)", msg);
                putchar('\n');
        }
        return EXIT_OK;
}

int ctl_call(const struct cli *cli, const struct control_request *req, struct json_value **ret)
{
        struct conn c = {.fd = -1};
        int rc = ctl_open(cli, req, &c);
        if (rc == EXIT_OK) {
                int r = ctl_send(&c, req);
                if (r == 0)
                        r = ctl_recv(&c, ret);
                if (r == -EPIPE)
                        log_error("tenantd closed the connection without a reply");
                if (r < 0)
                        rc = EXIT_FAILED;
        }
        ctl_close(&c);
        if (rc == EXIT_OK && !reply_ok(*ret))
                rc = failed(cli, *ret);
        return rc;
}

/* ---- tables ---- */

static void fmt_bytes(char *buf, size_t len, double v)
{
        static const char *const units[] = {"B", "K", "M", "G", "T"};
        int u = 0;
        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        snprintf(buf, len, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

/* A count per second: 950, 1.2k, 3.4M. */
static void fmt_count(char *buf, size_t len, double v)
{
        if (v < 1000)
                snprintf(buf, len, "%.0f", v);
        else if (v < 1e6)
                snprintf(buf, len, "%.1fk", v / 1e3);
        else
                snprintf(buf, len, "%.1fM", v / 1e6);
}

static void fmt_uptime(char *buf, size_t len, int64_t s)
{
        if (s < 0)
                snprintf(buf, len, "-");
        else if (s < 120)
                snprintf(buf, len, "%" PRId64 "s", s);
        else if (s < 7200)
                snprintf(buf, len, "%" PRId64 "m", s / 60);
        else if (s < 172800)
                snprintf(buf, len, "%" PRId64 "h", s / 3600);
        else
                snprintf(buf, len, "%" PRId64 "d", s / 86400);
}

static void print_list(const struct json_value *tenants)
{
        printf("%-20s %-8s %-10s %8s %7s %8s %-9s\n", "NAME", "BACKEND", "STATE", "PID", "UPTIME",
               "RESTARTS", "HEALTH");
        for (size_t i = 0; i < tenants->u.array.n; i++) {
                const struct json_value *t = tenants->u.array.items[i];
                char pid[24] = "-", up[32];
                int64_t p = int_of(t, "pid", -1);
                if (p > 0)
                        snprintf(pid, sizeof(pid), "%" PRId64, p);
                fmt_uptime(up, sizeof(up), int_of(t, "uptime_s", -1));
                const char *health = show_of(t, "health");
                const char *state = state_of(t);
                printf("%-20s %-8s %-10s %8s %7s %8" PRId64 " %-9s%s\n", show_of(t, "name"),
                       show_of(t, "isolation"), state ? state : "?", pid, up,
                       int_of(t, "restarts", 0), health ? health : "-",
                       json_get(t, "manifest_error")
                           ? "  (manifest invalid: running the last good one)"
                           : "");
        }
}

static void print_top(const struct json_value *tenants)
{
        printf("%-20s %-9s %6s %6s %17s %11s %9s %9s %13s %11s %13s %9s %17s\n", "NAME", "STATE",
               "CPU", "LIMIT", "MEMORY", "PIDS", "RX/s", "TX/s", "PKTS/s RX/TX", "CONNS",
               "TRANSFER", "THROTTLED", "DISK");
        for (size_t i = 0; i < tenants->u.array.n; i++) {
                const struct json_value *t = tenants->u.array.items[i];
                const struct json_value *u = json_get(t, "usage");
                char cpu[32] = "-", lim[32] = "-", mem[48] = "-", pids[48] = "-", rx[24] = "-",
                     tx[24] = "-", pkts[32] = "-", conns[48] = "-", xfer[48] = "-", thr[32] = "-",
                     disk[48] = "-";
                if (u && u->type == JSON_OBJECT) {
                        double c = num_of(u, "cpu", -1), cl = num_of(u, "cpu_limit", 0);
                        if (c >= 0)
                                snprintf(cpu, sizeof(cpu), "%.0f%%", c * 100);
                        if (cl > 0)
                                snprintf(lim, sizeof(lim), "%.2f", cl);
                        double m = num_of(u, "memory", -1), mm = num_of(u, "memory_max", 0);
                        if (m >= 0) {
                                char a[16], b[16] = "-";
                                fmt_bytes(a, sizeof(a), m);
                                if (mm > 0)
                                        fmt_bytes(b, sizeof(b), mm);
                                snprintf(mem, sizeof(mem), "%s/%s", a, b);
                        }
                        int64_t p = int_of(u, "pids", -1), pm = int_of(u, "pids_max", -1);
                        if (p >= 0) {
                                if (pm > 0)
                                        snprintf(pids, sizeof(pids), "%" PRId64 "/%" PRId64, p, pm);
                                else
                                        snprintf(pids, sizeof(pids), "%" PRId64, p);
                        }
                        double r = num_of(u, "rx_bps", -1), w = num_of(u, "tx_bps", -1);
                        if (r >= 0)
                                fmt_bytes(rx, sizeof(rx), r / 8);
                        if (w >= 0)
                                fmt_bytes(tx, sizeof(tx), w / 8);
                        double pr = num_of(u, "rx_pps", -1), pt = num_of(u, "tx_pps", -1);
                        if (pr >= 0 && pt >= 0) {
                                char a[16], b[16];
                                fmt_count(a, sizeof(a), pr);
                                fmt_count(b, sizeof(b), pt);
                                snprintf(pkts, sizeof(pkts), "%s/%s", a, b);
                        }
                        /* the host's tracked connections of the tenant, of its conns cap */
                        int64_t cn = int_of(u, "conns", -1), cm = int_of(u, "conns_max", -1);
                        if (cn >= 0) {
                                if (cm > 0)
                                        snprintf(conns, sizeof(conns), "%" PRId64 "/%" PRId64, cn,
                                                 cm);
                                else
                                        snprintf(conns, sizeof(conns), "%" PRId64, cn);
                        }
                        double xu = num_of(u, "transfer_used", -1),
                               xl = num_of(u, "transfer_limit", 0);
                        if (xu >= 0) {
                                char a[16], b[16] = "-";
                                fmt_bytes(a, sizeof(a), xu);
                                if (xl > 0)
                                        fmt_bytes(b, sizeof(b), xl);
                                snprintf(xfer, sizeof(xfer), "%s/%s", a, b);
                        }
                        double th = num_of(u, "throttled_ms", -1);
                        if (th >= 0)
                                snprintf(thr, sizeof(thr), "%.1fs", th / 1000);
                        /* the fullest volume */
                        double du = num_of(u, "disk_used", -1), ds = num_of(u, "disk_size", 0);
                        if (du >= 0 && ds > 0) {
                                char a[16], b[16];
                                fmt_bytes(a, sizeof(a), du);
                                fmt_bytes(b, sizeof(b), ds);
                                snprintf(disk, sizeof(disk), "%s/%s", a, b);
                        }
                }
                const char *state = state_of(t);
                printf("%-20s %-9s %6s %6s %17s %11s %9s %9s %13s %11s %13s %9s %17s\n",
                       show_of(t, "name"), state ? state : "?", cpu, lim, mem, pids, rx, tx, pkts,
                       conns, xfer, thr, disk);
        }
}

/* The reply to "list" in *ret (the caller frees it) and its tenants array in *tenants,
 * for list and top; an error reply is reported here. */
static int fetch_list(const struct cli *cli, struct json_value **ret,
                      const struct json_value **tenants)
{
        struct conn c = {.fd = -1};
        struct control_request req = request(CONTROL_OP_LIST, NULL);
        int rc = ctl_open(cli, &req, &c);
        if (rc == EXIT_OK && (ctl_send(&c, &req) < 0 || ctl_recv(&c, ret) < 0)) {
                log_error("no reply from tenantd");
                rc = EXIT_FAILED;
        }
        ctl_close(&c);
        if (rc != EXIT_OK)
                return rc;
        if (!reply_ok(*ret))
                return failed(cli, *ret);
        *tenants = json_get(*ret, CTL_TENANTS);
        return *tenants && (*tenants)->type == JSON_ARRAY ? EXIT_OK : EXIT_FAILED;
}

int cmd_list(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        (void)argv;
        _cleanup_json_ struct json_value *v = NULL;
        const struct json_value *tenants;
        int rc = fetch_list(cli, &v, &tenants);
        if (rc != EXIT_OK)
                return rc;
        if (cli->json)
                print_value(tenants);
        else
                print_list(tenants);
        return EXIT_OK;
}

int cmd_top(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        (void)argv;
        bool once = cli->json || !isatty(STDOUT_FILENO);
        uint64_t interval = 1000;
        long count = -1;
        for (size_t i = 0; i < cli->opts_n; i++) {
                const char *arg = cli->opts[i].arg;
                char why[128], *end;
                if (cli->opts[i].id == OPT_ONCE)
                        once = true;
                else if (cli->opts[i].id == OPT_INTERVAL &&
                         (parse_duration(arg, &interval, why, sizeof(why)) < 0 || interval < 100))
                        return cli_usage_error(cli,
                                               "--interval \"%.64s\": a duration of 100ms "
                                               "or more",
                                               arg);
                else if (cli->opts[i].id == OPT_COUNT &&
                         ((count = strtol(arg, &end, 10)) <= 0 || *end))
                        return cli_usage_error(cli, "--count \"%.64s\": a whole number from 1",
                                               arg);
        }
        if (once && count < 0)
                count = 1;
        for (long i = 0; count < 0 || i < count; i++) {
                _cleanup_json_ struct json_value *v = NULL;
                const struct json_value *tenants;
                int rc = fetch_list(cli, &v, &tenants);
                if (rc != EXIT_OK)
                        return rc;
                if (cli->json) {
                        print_value(tenants);
                } else {
                        if (!once && isatty(STDOUT_FILENO))
                                fputs("\033[H\033[2J", stdout);
                        print_top(tenants);
                }
                fflush(stdout);
                if (count < 0 || i + 1 < count)
                        usleep((useconds_t)interval * 1000);
        }
        return EXIT_OK;
}

static void print_status(const struct json_value *t)
{
        const struct json_value *x;
        printf("%s: %s", show_of(t, "name"), show_of(t, "state"));
        if (show_of(t, "busy"))
                printf(" (%s)", show_of(t, "busy"));
        if (int_of(t, "boot_queue", 0) > 0)
                printf(" (waiting for a boot slot: %" PRId64 " in line; tenantd.conf "
                       "parallel-vm-boots)",
                       int_of(t, "boot_queue", 0));
        putchar('\n');
        printf("  backend:      %s\n", show_of(t, "isolation"));
        printf("  manifest:     %s\n", show_of(t, "manifest"));
        if (int_of(t, "pid", -1) > 0)
                printf("  pid:          %" PRId64 " (keeper %" PRId64 ")\n", int_of(t, "pid", 0),
                       int_of(t, "keeper_pid", 0));
        if (show_of(t, "address")) {
                bool routed =
                    (x = json_get(t, "address6_routed")) && x->type == JSON_BOOL && x->u.boolean;
                const char *a6 = show_of(t, "address6"), *p6 = show_of(t, "prefix6");
                printf("  address:      %s", show_of(t, "address"));
                if (a6)
                        printf(", %s", a6);
                if (a6 && routed)
                        printf(" (routed%s%s)", p6 ? ", " : "", p6 ? p6 : "");
                putchar('\n');
        }
        char up[32];
        fmt_uptime(up, sizeof(up), int_of(t, "uptime_s", -1));
        printf("  uptime:       %s\n", up);
        printf("  restarts:     %" PRId64 " (policy %s)\n", int_of(t, "restarts", 0),
               show_of(t, "restart_policy"));
        if (int_of(t, "last_status", -1) >= 0)
                printf("  last exit:    status %" PRId64 "\n", int_of(t, "last_status", 0));
        if (show_of(t, "last_error"))
                printf("  start failed: %s\n", show_of(t, "last_error"));
        if (show_of(t, "health"))
                printf("  health:       %s (%s)\n", show_of(t, "health"),
                       show_of(t, "health_detail"));
        if ((x = json_get(t, "backup")) && x->type == JSON_OBJECT) {
                int64_t last = int_of(x, "last_ms", 0);
                if (last > 0) {
                        char ago[32];
                        fmt_uptime(ago, sizeof(ago), ((int64_t)wall_ms() - last) / 1000);
                        const struct json_value *okv = json_get(x, "last_ok");
                        printf("  backup:       %s %s ago: %s\n",
                               okv && okv->type == JSON_BOOL && okv->u.boolean ? "ok" : "FAILED",
                               ago, show_of(x, "last") ? show_of(x, "last") : "");
                } else {
                        printf("  backup:       none since tenantd started\n");
                }
                int64_t ok_ms = int_of(x, "ok_ms", 0);
                if (ok_ms > 0) {
                        char ago[32], size[16], added[16];
                        fmt_uptime(ago, sizeof(ago), ((int64_t)wall_ms() - ok_ms) / 1000);
                        fmt_bytes(size, sizeof(size), num_of(x, "ok_size", 0));
                        fmt_bytes(added, sizeof(added), num_of(x, "ok_added", 0));
                        printf("  last good:    %s ago, %s (%s new in the repository) in %.1f s\n",
                               ago, size, added, (double)int_of(x, "ok_duration_ms", 0) / 1000);
                }
        }
        if (show_of(t, "manifest_error"))
                printf("  manifest:     INVALID, the last good one is used:\n%s",
                       shown_(str_of(t, "manifest_error"), false));
        if ((x = json_get(t, "usage")) && x->type == JSON_OBJECT) {
                for (size_t i = 0; i < x->u.object.n; i++) {
                        const struct json_member *mb = &x->u.object.items[i];
                        if (mb->value->type == JSON_NUMBER)
                                printf("  %-13s %s\n", shown(mb->key), mb->value->u.str.text);
                        else if (mb->value->type == JSON_STRING)
                                printf("  %-13s %s\n", shown(mb->key),
                                       shown(mb->value->u.str.text));
                }
                /* network.limits' counters: hits per kind since tenantd watches it. */
                const struct json_value *a = json_get(x, "abuse");
                if (a && a->type == JSON_OBJECT) {
                        printf("  abuse:       ");
                        for (size_t i = 0; i < a->u.object.n; i++)
                                if (a->u.object.items[i].value->type == JSON_NUMBER)
                                        printf(" %s=%s", shown(a->u.object.items[i].key),
                                               a->u.object.items[i].value->u.str.text);
                        printf("\n");
                }
        }
        if ((x = json_get(t, "mounts_declared")) && x->type == JSON_ARRAY) {
                printf("  mounts declared:\n");
                for (size_t i = 0; i < x->u.array.n; i++)
                        printf("    %-30s %s (%s)\n", show_of(x->u.array.items[i], "target"),
                               show_of(x->u.array.items[i], "source"),
                               show_of(x->u.array.items[i], "mode"));
                if (x->u.array.n == 0)
                        printf("    (none)\n");
        }
        if ((x = json_get(t, "volumes")) && x->type == JSON_ARRAY && x->u.array.n) {
                printf("  volumes:\n");
                for (size_t i = 0; i < x->u.array.n; i++) {
                        const struct json_value *v = x->u.array.items[i];
                        char used[64] = "not mounted", a[16], b[16];
                        double u = num_of(v, "used", -1), sz = num_of(v, "size", 0);
                        if (u >= 0 && sz > 0) {
                                fmt_bytes(a, sizeof(a), u);
                                fmt_bytes(b, sizeof(b), sz);
                                snprintf(used, sizeof(used), "%s of %s used (%.0f%%)", a, b,
                                         100 * u / sz);
                        }
                        /* IO limits, when the volume has any: "max" for none */
                        char io[96] = "", r[24] = "max/s", w[24] = "max/s", ops[24] = "max";
                        double ir = num_of(v, "io_read", 0), iw = num_of(v, "io_write", 0);
                        int64_t iops = int_of(v, "io_iops", 0);
                        char rate[16];
                        if (ir > 0) {
                                fmt_bytes(rate, sizeof(rate), ir);
                                snprintf(r, sizeof(r), "%s/s", rate);
                        }
                        if (iw > 0) {
                                fmt_bytes(rate, sizeof(rate), iw);
                                snprintf(w, sizeof(w), "%s/s", rate);
                        }
                        if (iops > 0)
                                snprintf(ops, sizeof(ops), "%" PRId64, iops);
                        if (ir > 0 || iw > 0 || iops > 0)
                                snprintf(io, sizeof(io), ", io read %s write %s iops %s", r, w,
                                         ops);
                        printf("    %-12s %-24s %s%s\n", show_of(v, "name"), show_of(v, "target"),
                               used, io);
                }
        }
        if ((x = json_get(t, "notes")) && x->type == JSON_ARRAY && x->u.array.n) {
                printf("  tenantd said:\n");
                for (size_t i = 0; i < x->u.array.n; i++)
                        if (x->u.array.items[i]->type == JSON_STRING)
                                printf("    %s\n", shown(x->u.array.items[i]->u.str.text));
        }
        if ((x = json_get(t, "mounts_seen")) && x->type == JSON_ARRAY) {
                printf("  mounts seen inside:\n");
                for (size_t i = 0; i < x->u.array.n; i++)
                        printf("    %-30s %s %s\n", show_of(x->u.array.items[i], "target"),
                               show_of(x->u.array.items[i], "fstype"),
                               show_of(x->u.array.items[i], "mode"));
        }
}

int cmd_status(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        struct conn c = {.fd = -1};
        struct control_request req = request(CONTROL_OP_STATUS, argv[1]);
        int rc = ctl_open(cli, &req, &c);
        if (rc != EXIT_OK)
                return rc;
        _cleanup_json_ struct json_value *v = NULL;
        int r = ctl_send(&c, &req);
        if (r == 0)
                r = ctl_recv(&c, &v);
        ctl_close(&c);
        if (r < 0)
                return EXIT_FAILED;
        if (!reply_ok(v))
                return failed(cli, v);
        const struct json_value *t = json_get(v, CTL_TENANT);
        if (!t)
                return EXIT_FAILED;
        if (cli->json)
                print_value(t);
        else
                print_status(t);
        return EXIT_OK;
}

int cmd_lifecycle(const struct cli *cli, int argc, char **argv)
{
        const char *verb = argv[0];
        uint64_t timeout = 0;
        for (size_t i = 0; i < cli->opts_n; i++) {
                char why[128];
                if (cli->opts[i].id == OPT_TIMEOUT &&
                    parse_duration(cli->opts[i].arg, &timeout, why, sizeof(why)) < 0)
                        return cli_usage_error(cli, "--timeout: %s", why);
        }
        int rc = EXIT_OK;
        const struct control_op_info *op = control_op_lookup(verb);
        for (int i = 1; i < argc; i++) {
                struct control_request req = request(op->op, argv[i]);
                req.timeout_ms = timeout;
                const char *done = op->op == CONTROL_OP_START  ? "started"
                                   : op->op == CONTROL_OP_STOP ? "stopped"
                                                               : "restarted";
                int r = simple(cli, &req, done);
                if (r != EXIT_OK && rc != EXIT_USAGE)
                        rc = r;
        }
        return rc;
}

int cmd_kill(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        const char *sig = "TERM";
        for (size_t i = 0; i < cli->opts_n; i++)
                if (cli->opts[i].id == OPT_SIGNAL)
                        sig = cli->opts[i].arg;
        struct control_request req = request(CONTROL_OP_KILL, argv[1]);
        if (control_signal_parse(sig, &req.signal) < 0)
                return cli_usage_error(cli,
                                       "\"%.32s\" is not a signal: a name (TERM, KILL, HUP, INT, "
                                       "QUIT, USR1, USR2, CONT, WINCH, with or without SIG) or a "
                                       "number from 1 to 64",
                                       sig);
        return simple(cli, &req, "signal sent");
}

/* The array `key` of a successful reply, or NULL after saying that it is missing (a
 * tenantd of another version, or a bug): never a silent exit 1. */
static const struct json_value *reply_array(const struct json_value *v, const char *key,
                                            const char *verb)
{
        const struct json_value *a = json_get(v, key);
        if (a && a->type == JSON_ARRAY)
                return a;
        log_error("tenantd's reply to %s has no \"%s\" array (%s): is tenantd the same version "
                  "as this tenantctl (%s)?",
                  verb, key, a ? json_type_name(a->type) : "missing", TENANTD_VERSION);
        return NULL;
}

/* backup, backup list, backup check, restore: tenantd's worker answers with text. */
static int backup_call(const struct cli *cli, struct control_request *req)
{
        _cleanup_json_ struct json_value *v = NULL;
        int rc = ctl_call(cli, req, &v);
        if (rc != EXIT_OK)
                return rc;
        if (cli->json) {
                print_value(v);
                return EXIT_OK;
        }
        /* the worker's text: several lines (restic's output, a restore and its start) */
        const char *msg = shown_(str_of(v, CTL_MESSAGE), false);
        if (msg)
                printf("%s\n", msg);
        return EXIT_OK;
}

static int backup_action(const struct cli *cli, const char *name, enum control_backup_action a)
{
        struct control_request req = request(CONTROL_OP_BACKUP, name);
        req.action = a;
        return backup_call(cli, &req);
}

int cmd_backup(const struct cli *cli, int argc, char **argv)
{
        return backup_action(cli, argv[argc - 1], CONTROL_BACKUP_RUN);
}

/* backups, backup list: the snapshots, newest first (--json: the array, as tenantd sent
 * it; docs/cli.md#backups). */
int cmd_backups(const struct cli *cli, int argc, char **argv)
{
        struct control_request req = request(CONTROL_OP_BACKUP, argv[argc - 1]);
        req.action = CONTROL_BACKUP_LIST;
        _cleanup_json_ struct json_value *v = NULL;
        int rc = ctl_call(cli, &req, &v);
        if (rc != EXIT_OK)
                return rc;
        const struct json_value *snaps = reply_array(v, CTL_SNAPSHOTS, "backups");
        if (!snaps)
                return EXIT_FAILED;
        if (cli->json) {
                print_value(snaps);
                return EXIT_OK;
        }
        printf("%-8s  %-19s  %-16s %9s %7s\n", "ID", "TIME (UTC)", "VOLUMES", "SIZE", "FILES");
        for (size_t i = 0; i < snaps->u.array.n; i++) {
                const struct json_value *x = snaps->u.array.items[i];
                const char *id = show_of(x, "id"), *time = show_of(x, "time");
                char when[20] = "?", size[16] = "?", files[24] = "?", vols[64] = "";
                if (time && strlen(time) >= 19) {
                        snprintf(when, sizeof(when), "%.19s", time);
                        when[10] = ' ';
                }
                const struct json_value *s = json_get(x, "size");
                if (s && s->type == JSON_NUMBER)
                        fmt_bytes(size, sizeof(size), num_of(x, "size", 0));
                if ((s = json_get(x, "files")) && s->type == JSON_NUMBER)
                        snprintf(files, sizeof(files), "%" PRId64, int_of(x, "files", 0));
                const struct json_value *vl = json_get(x, CTL_VOLUMES);
                for (size_t k = 0; vl && vl->type == JSON_ARRAY && k < vl->u.array.n; k++) {
                        const struct json_value *n = vl->u.array.items[k];
                        if (n->type == JSON_STRING)
                                snprintf(vols + strlen(vols), sizeof(vols) - strlen(vols), "%s%s",
                                         k ? "," : "", shown(n->u.str.text));
                }
                printf("%-8.8s  %-19s  %-16s %9s %7s\n", id ? id : "?", when, vols, size, files);
        }
        int64_t more = int_of(v, CTL_MORE, 0);
        if (more > 0)
                printf("(%" PRId64 " older snapshots not listed)\n", more);
        return EXIT_OK;
}

int cmd_backup_check(const struct cli *cli, int argc, char **argv)
{
        return backup_action(cli, argv[argc - 1], CONTROL_BACKUP_CHECK);
}

int cmd_restore(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        struct control_request req = request(CONTROL_OP_BACKUP, argv[1]);
        req.action = CONTROL_BACKUP_RESTORE;
        for (size_t i = 0; i < cli->opts_n; i++)
                if (cli->opts[i].id == OPT_SNAPSHOT)
                        req.snapshot = cli->opts[i].arg;
                else if (cli->opts[i].id == OPT_AS)
                        req.as = cli->opts[i].arg;
                else if (cli->opts[i].id == OPT_YES)
                        req.yes = true;
        struct tn_err *err = NULL;
        if (control_request_check(&req, &err) < 0) {
                int rc = cli_usage_error(cli, "%s", tn_err_msg(err));
                tn_err_free(err);
                return rc;
        }
        return backup_call(cli, &req);
}

int cmd_reload(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        (void)argv;
        struct control_request req = request(CONTROL_OP_RELOAD, NULL);
        return simple(cli, &req, "reloaded");
}

int cmd_set(const struct cli *cli, int argc, char **argv)
{
        bool save = false;
        for (size_t i = 0; i < cli->opts_n; i++)
                save |= cli->opts[i].id == OPT_SAVE;
        struct control_request req = request(CONTROL_OP_SET, argv[1]);
        req.save = save;
        const char *keys[CONTROL_VALUES_MAX], *values[CONTROL_VALUES_MAX];
        for (int i = 2; i < argc; i++) {
                char *eq = strchr(argv[i], '=');
                if (!eq || eq == argv[i])
                        return cli_usage_error(
                            cli, "\"%.64s\": expected KEY=VALUE, e.g. cpu.max=0.5", argv[i]);
                if (req.n_values == CONTROL_VALUES_MAX)
                        return cli_usage_error(cli, "at most %d KEY=VALUE pairs at once",
                                               CONTROL_VALUES_MAX);
                *eq = '\0'; /* argv is ours: the key ends here */
                keys[req.n_values] = argv[i];
                values[req.n_values++] = eq + 1;
        }
        req.keys = keys;
        req.values = values;
        return simple(cli, &req, "updated");
}

/* Streams: logs and events print each data/event line as it comes. */
static int stream(const struct cli *cli, const struct control_request *req)
{
        bool events = req->op == CONTROL_OP_EVENTS;
        struct conn c = {.fd = -1};
        int rc = ctl_open(cli, req, &c);
        if (rc != EXIT_OK)
                return rc;
        int r = ctl_send(&c, req);
        bool first = true;
        while (r == 0) {
                _cleanup_json_ struct json_value *v = NULL;
                r = ctl_recv(&c, &v);
                if (r < 0)
                        break;
                if (first) {
                        first = false;
                        if (!reply_ok(v)) {
                                rc = failed(cli, v);
                                break;
                        }
                        continue;
                }
                if (json_get(v, CTL_OK) && !reply_ok(v)) {
                        rc = failed(cli, v);
                        break;
                }
                const char *s = str_of(v, events ? CTL_EVENT : CTL_DATA);
                if (!s)
                        continue;
                if (cli->json)
                        print_value(v);
                else if (events)
                        puts(shown(s));
                else
                        fputs(shown_(s, false), stdout);
                fflush(stdout);
        }
        ctl_close(&c);
        if (first && rc == EXIT_OK) {
                log_error("tenantd closed the connection without a reply");
                rc = EXIT_FAILED;
        }
        return rc;
}

/* -f and -n LINES of logs and events; false after reporting a bad value. */
static bool stream_options(const struct cli *cli, bool *follow, long *lines)
{
        for (size_t i = 0; i < cli->opts_n; i++) {
                char *end;
                if (cli->opts[i].id == OPT_FOLLOW) {
                        *follow = true;
                } else if (cli->opts[i].id == OPT_LINES &&
                           ((*lines = strtol(cli->opts[i].arg, &end, 10)) < 0 || *end ||
                            end == cli->opts[i].arg)) {
                        cli_usage_error(cli, "-n \"%.64s\": a whole number of lines",
                                        cli->opts[i].arg);
                        return false;
                }
        }
        return true;
}

int cmd_logs(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        bool follow = false;
        long lines = 50;
        if (!stream_options(cli, &follow, &lines))
                return EXIT_USAGE;
        struct control_request req = request(CONTROL_OP_LOGS, argv[1]);
        req.lines = lines;
        req.follow = follow;
        return stream(cli, &req);
}

int cmd_events(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        (void)argv;
        bool follow = false;
        long lines = 20;
        if (!stream_options(cli, &follow, &lines))
                return EXIT_USAGE;
        struct control_request req = request(CONTROL_OP_EVENTS, NULL);
        req.lines = lines;
        req.follow = follow;
        return stream(cli, &req);
}

/* exec: the command runs inside the tenant, and tenantctl relays bytes in the frames of
 * exec_proto.h: what comes on our stdin, and the window size of our terminal (also when
 * it changes: SIGWINCH), go out; the command's stdout and stderr, then its exit status,
 * come back. No descriptor of ours goes to tenantd or into the tenant. With a terminal
 * (-t, the default when stdin is one; -T: none), ours is in raw mode meanwhile and the
 * command gets a terminal of the tenant's own. */
static struct termios exec_saved_tio;
static bool exec_raw;

static void exec_restore_tty(void)
{
        if (exec_raw)
                tcsetattr(STDIN_FILENO, TCSADRAIN, &exec_saved_tio);
        exec_raw = false;
}

/* Frames for tenantd wait here while the socket is full: tenantctl never blocks on a
 * write to tenantd, so it always reads what tenantd sends (both sides stop reading
 * only the direction that is full). */
struct exec_out {
        uint8_t buf[EXEC_FRAME_HEADER + EXEC_CLIENT_FRAME_MAX + EXEC_FRAME_HEADER + 4];
        size_t len, off;
};

static void queue_frame(struct exec_out *o, enum exec_frame_type type, const void *data, size_t len)
{
        exec_frame_header(o->buf + o->len, type, len);
        memcpy(o->buf + o->len + EXEC_FRAME_HEADER, data, len);
        o->len += EXEC_FRAME_HEADER + len;
}

static void get_winsize(uint8_t ws[4])
{
        struct winsize w = {.ws_row = 24, .ws_col = 80};
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &w) < 0 || !w.ws_row || !w.ws_col)
                w = (struct winsize){.ws_row = 24, .ws_col = 80};
        ws[0] = (uint8_t)(w.ws_row >> 8);
        ws[1] = (uint8_t)w.ws_row;
        ws[2] = (uint8_t)(w.ws_col >> 8);
        ws[3] = (uint8_t)w.ws_col;
}

#define CONSOLE_ESCAPE 0x1d /* Ctrl-], as virsh console and telnet */
#define RELAY_DETACHED (-2)

/* Sends what waits in `o`, waiting at most a second for room. */
static void flush_out(struct conn *c, struct exec_out *o)
{
        while (o->off < o->len) {
                struct pollfd p = {.fd = c->fd, .events = POLLOUT};
                if (poll(&p, 1, 1000) <= 0)
                        break;
                ssize_t n = send(c->fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                o->off += (size_t)n;
        }
        o->off = o->len = 0;
}

/* Relays until the exit frame; returns the command's status, or -1. With `escape`
 * (console), Ctrl-] on stdin detaches: what came before it is sent, and the return is
 * RELAY_DETACHED. */
static int exec_relay(struct conn *c, bool tty, bool escape)
{
        sigset_t winch;
        sigemptyset(&winch);
        sigaddset(&winch, SIGWINCH);
        sigprocmask(SIG_BLOCK, &winch, NULL);
        _cleanup_close_ int sfd = signalfd(-1, &winch, SFD_CLOEXEC);
        bool in_open = true;
        static uint8_t buf[EXEC_FRAME_HEADER + EXEC_FRAME_MAX];
        static struct exec_out o;
        size_t have = c->len < sizeof(buf) ? c->len : 0; /* what came behind the reply */
        if (have)
                memcpy(buf, c->buf, have);
        for (;;) {
                size_t off = 0;
                struct exec_frame f;
                int r;
                while ((r = exec_frame_decode(buf + off, have - off, false, &f)) > 0) {
                        off += (size_t)r;
                        if (f.type == EXEC_EXIT)
                                return (int)exec_be32(f.data);
                        (void)write_all(f.type == EXEC_STDERR ? STDERR_FILENO : STDOUT_FILENO,
                                        f.data, f.len);
                }
                if (r < 0) {
                        log_error("tenantd sent an exec frame this tenantctl cannot read");
                        return -1;
                }
                memmove(buf, buf + off, have - off);
                have -= off;
                bool pending = o.off < o.len;
                struct pollfd p[3] = {
                    {.fd = c->fd, .events = (short)(POLLIN | (pending ? POLLOUT : 0))},
                    {.fd = in_open && !pending ? STDIN_FILENO : -1, .events = POLLIN},
                    {.fd = tty && o.len + EXEC_FRAME_HEADER + 4 <= sizeof(o.buf) ? sfd : -1,
                     .events = POLLIN}};
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                if (p[0].revents & POLLOUT) {
                        ssize_t n =
                            send(c->fd, o.buf + o.off, o.len - o.off, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n < 0 && errno != EAGAIN && errno != EINTR)
                                return -1;
                        if (n > 0 && (o.off += (size_t)n) == o.len)
                                o.off = o.len = 0;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = read(c->fd, buf + have, sizeof(buf) - have);
                        if (n <= 0)
                                return -1;
                        have += (size_t)n;
                }
                if (p[1].revents) {
                        static uint8_t in[EXEC_CLIENT_FRAME_MAX];
                        ssize_t n = read(STDIN_FILENO, in, sizeof(in));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                in_open = false; /* the end of stdin: an empty frame */
                                n = 0;
                        }
                        const uint8_t *esc = escape ? memchr(in, CONSOLE_ESCAPE, (size_t)n) : NULL;
                        if (esc) {
                                if (esc > in)
                                        queue_frame(&o, EXEC_STDIN, in, (size_t)(esc - in));
                                flush_out(c, &o);
                                return RELAY_DETACHED;
                        }
                        if (escape && n == 0)
                                continue; /* a console's input does not end */
                        queue_frame(&o, EXEC_STDIN, in, (size_t)n);
                }
                if (p[2].revents) {
                        struct signalfd_siginfo si;
                        uint8_t ws[4];
                        (void)!read(sfd, &si, sizeof(si));
                        get_winsize(ws);
                        queue_frame(&o, EXEC_WINSIZE, ws, sizeof(ws));
                }
        }
}

/* A session that goes on after tenantd's first reply (exec, console): sends the
 * request and reads that reply. On EXIT_OK the connection stays open for the relay,
 * with the reply in *ret; otherwise it is closed and the failure said. */
static int session_open(const struct cli *cli, const struct control_request *req, struct conn *c,
                        struct json_value **ret)
{
        int rc = ctl_open(cli, req, c);
        if (rc != EXIT_OK)
                return rc;
        int r = ctl_send(c, req);
        if (r == 0)
                r = ctl_recv(c, ret);
        if (r < 0) {
                ctl_close(c);
                log_error("lost the connection to tenantd");
                return EXIT_FAILED;
        }
        if (!reply_ok(*ret)) {
                ctl_close(c);
                return failed(cli, *ret);
        }
        return EXIT_OK;
}

/* exec NAME -- cmd; `login`: a login session (shell), which must get a terminal when
 * it asked for one (both backends give one; an older tenantd may not). */
static int exec_cmd(const struct cli *cli, const char *name, char **cmd, bool login)
{
        bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
        for (size_t i = 0; i < cli->opts_n; i++)
                if (cli->opts[i].id == OPT_TTY || cli->opts[i].id == OPT_NO_TTY)
                        tty = cli->opts[i].id == OPT_TTY;
        if (tty && !isatty(STDIN_FILENO))
                return cli_usage_error(cli, "-t: standard input is not a terminal");
        size_t n_cmd = 0;
        while (cmd[n_cmd])
                n_cmd++;
        struct control_request req = request(CONTROL_OP_EXEC, name);
        req.argv = (const char *const *)cmd;
        req.argc = n_cmd;
        req.tty = tty;
        if (tty) {
                uint8_t ws[4];
                get_winsize(ws);
                req.rows = (uint16_t)(ws[0] << 8 | ws[1]);
                req.cols = (uint16_t)(ws[2] << 8 | ws[3]);
        }
        struct conn c = {.fd = -1};
        _cleanup_json_ struct json_value *v = NULL;
        /* Ctrl-C (without a terminal) ends tenantctl, and tenantd then kills the command. */
        int rc = session_open(cli, &req, &c, &v);
        if (rc != EXIT_OK)
                return rc;
        const struct json_value *granted = json_get(v, CTL_TTY);
        bool asked = tty;
        tty = granted && granted->type == JSON_BOOL && granted->u.boolean;
        if (login && asked && !tty) {
                ctl_close(&c); /* tenantd ends the shell with the connection */
                log_error("%s gives no terminal: give the command to run instead (ssh HOST "
                          "COMMAND)",
                          name);
                return EXIT_FAILED;
        }
        if (tty && tcgetattr(STDIN_FILENO, &exec_saved_tio) == 0) {
                struct termios raw = exec_saved_tio;
                cfmakeraw(&raw);
                exec_raw = tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0;
        }
        int status = exec_relay(&c, tty, false);
        exec_restore_tty();
        ctl_close(&c);
        if (status < 0) {
                log_error("lost the connection to tenantd");
                return EXIT_FAILED;
        }
        return status;
}

int cmd_volume_list(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        (void)argv;
        struct control_request req = request(CONTROL_OP_VOLUMES, NULL);
        _cleanup_json_ struct json_value *v = NULL;
        int rc = ctl_call(cli, &req, &v);
        if (rc != EXIT_OK)
                return rc;
        const struct json_value *vols = reply_array(v, CTL_VOLUMES, "volume list");
        if (!vols)
                return EXIT_FAILED;
        if (cli->json) {
                print_value(vols);
                return EXIT_OK;
        }
        printf("%-20s %-16s %9s %9s %-9s %s\n", "TENANT", "VOLUME", "SIZE", "ON DISK", "ENCRYPTED",
               "STATE");
        for (size_t i = 0; i < vols->u.array.n; i++) {
                const struct json_value *x = vols->u.array.items[i];
                char size[16], disk[16];
                fmt_bytes(size, sizeof(size), num_of(x, "size", 0));
                fmt_bytes(disk, sizeof(disk), num_of(x, "allocated", 0));
                const struct json_value *st = json_get(x, "state");
                const struct json_value *decl = json_get(x, "in_manifest");
                const struct json_value *mnt = json_get(x, "mounted");
                const struct json_value *enc = json_get(x, "encrypted");
                const char *state = !st || st->type != JSON_STRING ? "orphan: no manifest"
                                    : !decl || decl->type != JSON_BOOL || !decl->u.boolean
                                        ? "orphan: not declared"
                                    : mnt && mnt->type == JSON_BOOL && mnt->u.boolean ? "in use"
                                                                                      : "idle";
                printf("%-20s %-16s %9s %9s %-9s %s\n", show_of(x, "tenant"), show_of(x, "name"),
                       size, disk, enc && enc->type == JSON_BOOL && enc->u.boolean ? "yes" : "no",
                       state);
        }
        return EXIT_OK;
}

int cmd_volume_rm(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        bool yes = false;
        for (size_t i = 0; i < cli->opts_n; i++)
                yes |= cli->opts[i].id == OPT_YES;
        if (!yes)
                return cli_usage_error(cli,
                                       "volume rm deletes the volume's data for good; say --yes");
        struct control_request req = request(CONTROL_OP_VOLUME_RM, NULL);
        req.volume = argv[1];
        int rc = simple(cli, &req, NULL);
        if (rc == EXIT_OK && !cli->json)
                printf("%s: removed\n", shown(argv[1]));
        return rc;
}

/* console NAME: a microVM's serial console, or a login shell in a sandbox, on our
 * terminal in raw mode; Ctrl-] detaches (the tenant, and a microVM's console shell,
 * go on). Exit status: 0 when detached, the shell's when it ended, 1 when another
 * client took the console over. */
int cmd_console(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
                return cli_usage_error(cli, "the console needs a terminal on standard input and "
                                            "output (tenantctl exec runs commands)");
        struct control_request req = request(CONTROL_OP_CONSOLE, argv[1]);
        for (size_t i = 0; i < cli->opts_n; i++)
                req.force |= cli->opts[i].id == OPT_FORCE;
        uint8_t ws[4];
        get_winsize(ws);
        req.rows = (uint16_t)(ws[0] << 8 | ws[1]);
        req.cols = (uint16_t)(ws[2] << 8 | ws[3]);
        struct conn c = {.fd = -1};
        _cleanup_json_ struct json_value *v = NULL;
        int rc = session_open(cli, &req, &c, &v);
        if (rc != EXIT_OK)
                return rc;
        fprintf(stderr, "Connected to the console of %s (Ctrl-] detaches).\n", shown(argv[1]));
        if (tcgetattr(STDIN_FILENO, &exec_saved_tio) == 0) {
                struct termios raw = exec_saved_tio;
                cfmakeraw(&raw);
                exec_raw = tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0;
        }
        int status = exec_relay(&c, true, true);
        exec_restore_tty();
        ctl_close(&c);
        if (status == RELAY_DETACHED) {
                fprintf(stderr, "\nDetached from the console of %s.\n", shown(argv[1]));
                return EXIT_OK;
        }
        if (status < 0) {
                log_error("lost the connection to tenantd");
                return EXIT_FAILED;
        }
        return status;
}

int cmd_exec(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        return exec_cmd(cli, argv[1], cli->cmd, false);
}

/* `shell NAME`, meant for an authorized_keys line (docs/self-service.md):
 *   command="tenantctl shell acme",restrict,pty ssh-ed25519 ...
 * A login shell inside the tenant, on a terminal of the tenant's own when ssh gave one;
 * when the ssh client asked for a command (sshd puts it in $SSH_ORIGINAL_COMMAND), that
 * command through the tenant's /bin/sh instead. It is exec, with exec's rights: on the
 * user socket the tenant's access section must grant exec. */
int cmd_shell(const struct cli *cli, int argc, char **argv)
{
        char *asked = getenv("SSH_ORIGINAL_COMMAND");
        char sh[] = "/bin/sh", l[] = "-l", dash_c[] = "-c";
        char *login[] = {sh, l, NULL};
        char *command[] = {sh, dash_c, asked, NULL};
        (void)argc;
        return asked && *asked ? exec_cmd(cli, argv[1], command, false)
                               : exec_cmd(cli, argv[1], login, true);
}
