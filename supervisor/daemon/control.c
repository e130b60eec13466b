/* control.c — the control socket: who may connect, how requests are framed, and the
 * verbs (protocol reference: docs/protocol.md).
 *
 * The socket is a unix stream socket, owned root:GROUP with mode 0660. Every peer's
 * credentials come from the kernel (SO_PEERCRED, SO_PEERGROUPS): root and members of
 * GROUP are served, anyone else gets one error line and is disconnected.
 *
 * A client sends newline-terminated JSON requests ({"v":1,"op":...}), one at a time,
 * and reads newline-terminated JSON replies. Every request is bounded (64 KiB, nesting
 * depth 8); a longer line is refused without being buffered. Replies are queued per
 * client up to 8 MiB and written as the socket accepts them: a client that does not
 * read is disconnected when its queue is full, and never blocks the loop. */
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <syslog.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "proto/control_proto.h"
#include "proto/exec_proto.h"
#include "proto/runner_proto.h"
#include "lib/json.h"
#include "daemon/keeper.h"
#include "lib/log.h"
#include "lib/logtext.h"
#include "daemon/monitor_glue.h"
#include "lib/version.h"
#include "spec/audit.h"
#include "storage/volume.h"
#include "spec/manifest_edit.h"
#include "vm/qemu_proc.h"

#define REQUEST_MAX CONTROL_REQUEST_MAX
#define OUTPUT_MAX (8U << 20)
#define MAX_CLIENTS 256
#define ROOT_RESERVED 16        /* of MAX_CLIENTS, only root gets these */
#define MAX_PER_UID 32          /* connections one non-root uid may hold at once */
#define LOG_TAIL_MAX (1U << 20) /* how far back `logs -n` looks */
#define LOG_FOLLOW_CHUNK (64U << 10)
/* exec: what tenantd holds for one session in each direction before it stops reading
 * the other side, and how long it waits, once the command has ended, for output that
 * processes the command left behind may hold open. */
#define EXEC_WINDOW (256U << 10)
#define EXEC_GRACE_MS 300
/* The user socket (docs/self-service.md): its own pool of slots, so its peers never
 * take the operator's; per uid a few connections, a request rate with a burst, a
 * smaller output queue each (so at most USER_PER_UID x USER_OUTPUT_MAX per uid) and a
 * short idle timeout. */
#define USER_MAX_CLIENTS 128
#define USER_PER_UID 8
#define USER_OUTPUT_MAX (2U << 20)
#define USER_RATE 20 /* requests per second, per uid */
#define USER_BURST 40
#define USER_IDLE_MS (60U * 1000)
#define USER_GROUPS_MAX 64
#define USER_AUDIT_REFUSALS 20 /* refusals logged per uid and minute; then one summary */
#define ACCESS_VISIBLE (1U << 31)

enum client_mode {
        CLIENT_IDLE,
        CLIENT_WAITING, /* a start/stop/restart will answer */
        CLIENT_LOGS,    /* following a log */
        CLIENT_EVENTS,  /* following events */
        CLIENT_EXEC,    /* an exec runs */
};

struct client {
        struct watch w;
        struct client *next;
        uid_t uid;
        pid_t pid;
        /* a peer of the user socket: served by the manifests' access entries only */
        bool user;
        char uname[MANIFEST_ACCOUNT_MAX + 1]; /* "" when the uid has no name */
        char gnames[USER_GROUPS_MAX][MANIFEST_ACCOUNT_MAX + 1];
        size_t n_gnames;
        uint64_t throttled_until; /* monotonic ms: no request is read before */
        uint64_t active_ms;       /* monotonic: the last request or reply (see idle_deadline) */
        char in[REQUEST_MAX + 1];
        size_t in_len;
        bool discarding; /* an overlong line is being skipped */
        char *out;
        size_t out_len, out_cap, out_off;
        bool closing; /* close once the output is written */
        bool eof;     /* the peer shut its sending side: answer what came, then close */
        int fds[3];
        int n_fds;
        enum client_mode mode;
        struct tenant *t;
        /* logs --follow */
        int log_fd;
        char log_name[MANIFEST_NAME_MAX + 8];
        /* exec: the command's pidfd (sandbox) or the runner's socket (microVM), and the
         * relay's ends: tenantd's pipes to the command, never the client's descriptors */
        struct watch exec_w;
        pid_t exec_pid;
        bool ex_vm, ex_exited, ex_paused, ex_stdin_eof;
        bool ex_console;        /* the session is the tenant's console (op_console) */
        bool ex_vm_eof_pending; /* a microVM: the client half-closed; the end goes on */
        int ex_status;
        struct watch ex_in_w, ex_out_w, ex_err_w, ex_grace_w;
        int ex_ws;         /* window sizes, with a terminal */
        uint8_t *ex_stdin; /* what the client sent and the command (a microVM: the runner,
                            * as whole frames) has not read yet */
        size_t ex_stdin_len;
        uint8_t *ex_vm_in; /* a partial frame from the runner */
        size_t ex_vm_len;
};

/* ---- output ---- */

static void client_close(struct daemon *d, struct client *c);
static void exec_resume(struct daemon *d, struct client *c);

static void client_flush(struct daemon *d, struct client *c)
{
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        client_close(d, c);
                        return;
                }
                c->out_off += (size_t)n;
        }
        if (c->out_off == c->out_len) {
                c->out_off = c->out_len = 0;
                if (c->closing) {
                        client_close(d, c);
                        return;
                }
        }
        if (c->eof && c->mode == CLIENT_IDLE && !c->out_len && !memchr(c->in, '\n', c->in_len)) {
                client_close(d, c); /* half-closed, answered, nothing left to do */
                return;
        }
        if (c->mode == CLIENT_EXEC && c->ex_paused && c->out_len - c->out_off < EXEC_WINDOW)
                exec_resume(d, c);
        /* After the peer shut its sending side, EPOLLRDHUP would fire forever. An exec
         * reads the client's frames while it has room for them. */
        bool want_in = (c->mode == CLIENT_IDLE && !c->throttled_until) ||
                       (c->mode == CLIENT_EXEC && c->in_len < REQUEST_MAX);
        uint32_t ev = (c->eof ? 0 : EPOLLRDHUP) | (c->out_len ? EPOLLOUT : 0) |
                      (want_in && !c->closing && !c->eof ? EPOLLIN : 0);
        daemon_watch_mod(d, &c->w, ev);
}

static void client_queue(struct daemon *d, struct client *c, const void *buf, size_t len,
                         bool newline)
{
        if (c->w.fd < 0)
                return;
        if (c->out_len + len + 1 > (c->user ? USER_OUTPUT_MAX : OUTPUT_MAX)) {
                log_warning("control: client pid %d does not read its replies; disconnected",
                            (int)c->pid);
                client_close(d, c);
                return;
        }
        if (c->out_len + len + 1 > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 4096;
                while (cap < c->out_len + len + 1)
                        cap *= 2;
                char *n = realloc(c->out, cap);
                if (!n) {
                        client_close(d, c);
                        return;
                }
                c->out = n;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, buf, len);
        c->active_ms = mono_ms();
        c->out_len += len;
        if (newline)
                c->out[c->out_len++] = '\n';
        client_flush(d, c);
}

static void client_send(struct daemon *d, struct client *c, const char *buf, size_t len)
{
        client_queue(d, c, buf, len, true);
}

static void send_gen(struct daemon *d, struct client *c, struct json_gen *g)
{
        const char *buf;
        size_t len;
        if (json_gen_finish(g, &buf, &len) < 0) {
                static const char fail[] =
                    "{\"v\":1,\"ok\":false,\"error\":\"internal encoding error\"}";
                client_send(d, c, fail, sizeof(fail) - 1);
                return;
        }
        client_send(d, c, buf, len);
}

/* An error reply: its text is escaped as every string a reply carries that may hold
 * what a client, a tenant or a configuration chose (control_gen_text). */
static void reply_error(struct daemon *d, struct client *c, int r, const char *msg)
{
        _cleanup_free_ char *line = NULL;
        size_t len;
        if (control_error_encode(r, msg, &line, &len) == 0)
                client_queue(d, c, line, len, false);
}

static void reply_ok(struct daemon *d, struct client *c, const char *msg)
{
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (!g)
                return;
        if (msg) {
                json_gen_key(g, CTL_MESSAGE);
                json_gen_string(g, msg);
        }
        json_gen_object_close(g);
        send_gen(d, c, g);
}

void control_complete_members(struct daemon *d, struct client *c, const struct json_value *obj)
{
        if (!c)
                return;
        c->mode = CLIENT_IDLE;
        c->t = NULL;
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (!g)
                return;
        for (size_t i = 0; i < obj->u.object.n; i++) {
                json_gen_key(g, obj->u.object.items[i].key);
                json_gen_value(g, obj->u.object.items[i].value);
        }
        json_gen_object_close(g);
        send_gen(d, c, g);
}

void control_complete(struct daemon *d, struct client *c, int r, const char *msg)
{
        if (!c)
                return;
        c->mode = CLIENT_IDLE;
        c->t = NULL;
        if (r < 0)
                reply_error(d, c, r, msg);
        else
                reply_ok(d, c, msg);
}

static void send_data(struct daemon *d, struct client *c, const char *buf, size_t len)
{
        /* A log file is escaped as it is written (logtext.h); this escapes again what
         * an older tenantd left, and characters that a chunk boundary cut in two. */
        _cleanup_free_ char *clean = malloc(LOGTEXT_MAX(len));
        if (!clean)
                return;
        size_t n = logtext_show(buf, len, clean);
        _cleanup_json_gen_ struct json_gen *g = control_stream_open();
        if (!g)
                return;
        json_gen_key(g, CTL_DATA);
        json_gen_string_len(g, clean, n);
        json_gen_object_close(g);
        send_gen(d, c, g);
}

/* ---- the user socket: what a peer may see and do ---- */

/* The verbs the access entries that match the peer grant on t (1 << enum access_op),
 * with ACCESS_VISIBLE when any entry matches; 0: the tenant does not exist for it.
 * An operator's peer may do everything. */
/* Whether an access entry names the peer: its account, or one of the account's groups. */
static bool entry_matches(const struct client *c, const struct access_entry *e)
{
        if (e->user)
                return c->uname[0] && strcmp(e->user, c->uname) == 0;
        for (size_t k = 0; e->group && k < c->n_gnames; k++)
                if (strcmp(e->group, c->gnames[k]) == 0)
                        return true;
        return false;
}

static uint32_t access_mask(const struct client *c, const struct tenant *t)
{
        if (!c->user)
                return UINT32_MAX;
        uint32_t mask = 0;
        for (size_t i = 0; i < t->m->access_n; i++)
                if (entry_matches(c, &t->m->access[i]))
                        mask |= t->m->access[i].allow | ACCESS_VISIBLE;
        return mask;
}

static bool visible(const struct client *c, const struct tenant *t)
{
        return access_mask(c, t) & ACCESS_VISIBLE;
}

/* The control op's verb in an access entry's "allow", or -1 for ops that no entry
 * grants (they are served to every peer, filtered, or to none: client_op_allowed). */
static int access_op_of(enum control_op op)
{
        switch (op) {
        case CONTROL_OP_STATUS:
                return ACCESS_STATUS;
        case CONTROL_OP_LOGS:
                return ACCESS_LOGS;
        case CONTROL_OP_START:
                return ACCESS_START;
        case CONTROL_OP_STOP:
                return ACCESS_STOP;
        case CONTROL_OP_RESTART:
                return ACCESS_RESTART;
        case CONTROL_OP_KILL:
                return ACCESS_KILL;
        case CONTROL_OP_EXEC:
                return ACCESS_EXEC;
        case CONTROL_OP_SET:
                return ACCESS_SET;
        case CONTROL_OP_AUDIT:
                return ACCESS_AUDIT;
        case CONTROL_OP_CONSOLE:
                return ACCESS_CONSOLE;
        default:
                return -1;
        }
}

/* Per-uid request buckets of the user socket: USER_RATE a second, USER_BURST at once,
 * and the uid's refusals in the current audit minute. */
static struct user_bucket {
        uid_t uid;
        uint64_t last_ms; /* 0: the slot is free */
        double tokens;
        uint64_t audit_window_ms;
        unsigned audit_refusals;
} buckets[USER_MAX_CLIENTS];

static void audit_summary(struct daemon *d, const struct user_bucket *b)
{
        if (b->audit_refusals <= USER_AUDIT_REFUSALS)
                return;
        char line[160];
        snprintf(line, sizeof(line), "event=access uid=%u result=suppressed refusals=%u",
                 (unsigned)b->uid, b->audit_refusals - USER_AUDIT_REFUSALS);
        monitor_glue_syslog(d, LOG_WARNING, line);
}

/* The uid's bucket; a slot is given to another uid only when forgetting it changes
 * nothing: no connection of its uid is open, its tokens are full again and its audit
 * minute is over (so closing and reopening connections resets neither). NULL when
 * every slot is in use: the request waits (user_take_token). */
static struct user_bucket *bucket_of(struct daemon *d, uid_t uid)
{
        uint64_t now = mono_ms();
        struct user_bucket *free_b = NULL;
        for (size_t i = 0; i < USER_MAX_CLIENTS; i++) {
                struct user_bucket *b = &buckets[i];
                if (b->last_ms && b->uid == uid)
                        return b;
                if (free_b && free_b->last_ms == 0)
                        continue;
                bool reusable = !b->last_ms;
                if (!reusable && now - b->last_ms >= 1000ULL * USER_BURST / USER_RATE &&
                    now - b->audit_window_ms >= 60000) {
                        reusable = true;
                        for (const struct client *c = d->clients; c && reusable; c = c->next)
                                reusable = !(c->user && c->uid == b->uid);
                }
                if (reusable)
                        free_b = b;
        }
        if (!free_b)
                return NULL;
        if (free_b->last_ms)
                audit_summary(d, free_b);
        *free_b = (struct user_bucket){.uid = uid, .tokens = USER_BURST, .last_ms = now ? now : 1};
        return free_b;
}

/* 0 when the client may send its next request now, else how many ms it waits. */
static uint64_t user_take_token(struct daemon *d, struct client *c, uint64_t now)
{
        struct user_bucket *b = bucket_of(d, c->uid);
        if (!b)
                return 1000;
        if (b->last_ms) {
                b->tokens += (double)(now - b->last_ms) * USER_RATE / 1000.0;
                if (b->tokens > USER_BURST)
                        b->tokens = USER_BURST;
        }
        b->last_ms = now ? now : 1;
        if (b->tokens >= 1) {
                b->tokens -= 1;
                return 0;
        }
        return (uint64_t)((1 - b->tokens) * 1000.0 / USER_RATE) + 1;
}

/* The audit line of a user-socket request (docs/self-service.md): every request that
 * was served, and refusals up to USER_AUDIT_REFUSALS per uid and minute. */
static void user_audit(struct daemon *d, const struct client *c, const char *verb,
                       const char *tenant, const char *result)
{
        /* "revoked": tenantd closed what a reload no longer grants, at most a few lines
         * per connection and reload: not rate limited. */
        bool refused = strcmp(result, "ok") != 0 && strcmp(result, "revoked") != 0;
        struct user_bucket *b = bucket_of(d, c->uid);
        uint64_t now = mono_ms();
        char line[512] = "event=access";
        if (refused && b) {
                if (now - b->audit_window_ms >= 60000) {
                        audit_summary(d, b);
                        b->audit_window_ms = now;
                        b->audit_refusals = 0;
                }
                if (++b->audit_refusals > USER_AUDIT_REFUSALS)
                        return;
        }
        char uid[32];
        snprintf(uid, sizeof(uid), "%u", (unsigned)c->uid);
        event_kv(line, sizeof(line), "user", c->uname[0] ? c->uname : "?");
        event_kv(line, sizeof(line), "uid", uid);
        event_kv(line, sizeof(line), "tenant", tenant && *tenant ? tenant : "-");
        event_kv(line, sizeof(line), "verb", verb);
        event_kv(line, sizeof(line), "result", result);
        monitor_glue_syslog(d, refused ? LOG_WARNING : LOG_NOTICE, line);
}

/* ---- views of tenants ---- */

static void logs_path(struct daemon *d, const char *name, char *buf, size_t len);

#define NOTES_WINDOW (64U << 10) /* how far back status looks for tenantd's notes */
#define NOTES_MAX 5

/* tenantd's last notes in the tenant's log ("[tenantd: started ...]"): lines that
 * begin with the mark, which the tenant's own text never contains (logtext.h). The
 * window read may begin in the middle of a line, whose rest is not a line start. */
static void gen_notes(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        char path[4200];
        logs_path(d, t->name, path, sizeof(path));
        json_gen_key(g, "notes");
        json_gen_array_open(g);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        static char buf[NOTES_WINDOW + 1];
        ssize_t n = -1;
        off_t from = 0;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                from = st.st_size > (off_t)NOTES_WINDOW ? st.st_size - (off_t)NOTES_WINDOW : 0;
                n = pread(fd, buf, NOTES_WINDOW, from);
        }
        const char *lines[NOTES_MAX];
        size_t lens[NOTES_MAX], k = 0;
        for (size_t i = 0; n > 0 && i < (size_t)n;) {
                char *nl = memchr(buf + i, '\n', (size_t)n - i);
                size_t end = nl ? (size_t)(nl - buf) : (size_t)n;
                bool start = i > 0 || from == 0;
                if (start && nl && end - i >= sizeof(LOGTEXT_MARK) &&
                    memcmp(buf + i, LOGTEXT_MARK ": ", sizeof(LOGTEXT_MARK) + 1) == 0) {
                        if (k == NOTES_MAX) {
                                memmove(lines, lines + 1, sizeof(lines[0]) * (NOTES_MAX - 1));
                                memmove(lens, lens + 1, sizeof(lens[0]) * (NOTES_MAX - 1));
                                k--;
                        }
                        lines[k] = buf + i;
                        lens[k++] = end - i > 512 ? 512 : end - i;
                }
                i = end + 1;
        }
        for (size_t j = 0; j < k; j++) {
                char clean[LOGTEXT_MAX(512)];
                size_t m = logtext_show(lines[j], lens[j], clean);
                json_gen_string_len(g, clean, m);
        }
        json_gen_array_close(g);
}

static void gen_tenant(struct daemon *d, struct json_gen *g, const struct tenant *t, bool detail)
{
        uint64_t now = wall_ms();
        json_gen_object_open(g);
        json_gen_key(g, "name");
        json_gen_string(g, t->name);
        json_gen_key(g, "isolation");
        json_gen_string(g, isolation_name(t->m->isolation));
        json_gen_key(g, "state");
        json_gen_string(g, tenant_state_name(t->state));
        if (t->boot_queued) { /* starting, but waiting for a boot slot: its place, from 1 */
                int64_t place = 1;
                for (const struct tenant *o = d->tenants; o; o = o->next)
                        place += o->boot_queued && o->boot_queued < t->boot_queued;
                json_gen_key(g, "boot_queue");
                json_gen_int(g, place);
        }
        /* The tenant's init, or for a microVM its QEMU (libvirt's pid file; the runner
         * that drives the VM is "runner_pid"). */
        json_gen_key(g, "pid");
        bool alive = t->init_pid > 0 && (t->state == TENANT_RUNNING || t->state == TENANT_STOPPING);
        if (alive && t->m->isolation == ISOLATION_MICROVM) {
                char domain[MANIFEST_NAME_MAX + 16];
                snprintf(domain, sizeof(domain), "tenantd-%s", t->name);
                pid_t qemu = qemu_proc_pid(domain);
                if (qemu > 0)
                        json_gen_int(g, qemu);
                else
                        json_gen_null(g);
                json_gen_key(g, "runner_pid");
                json_gen_int(g, t->init_pid);
        } else if (alive) {
                json_gen_int(g, t->init_pid);
        } else {
                json_gen_null(g);
        }
        json_gen_key(g, "uptime_s");
        if (t->state == TENANT_RUNNING && t->started_ms && now > t->started_ms)
                json_gen_int(g, (int64_t)((now - t->started_ms) / 1000));
        else
                json_gen_null(g);
        json_gen_key(g, "restarts");
        json_gen_int(g, t->restarts);
        json_gen_key(g, "last_status");
        if (t->last_status >= 0)
                json_gen_int(g, t->last_status);
        else
                json_gen_null(g);
        json_gen_key(g, "busy");
        if (t->busy)
                json_gen_string(g, t->busy);
        else
                json_gen_null(g);
        json_gen_key(g, "health");
        if (t->m->health.kind == HEALTH_NONE || !t->health.checked)
                json_gen_null(g);
        else
                json_gen_string(g, t->health.last_ok ? "healthy" : "unhealthy");
        if (t->manifest_error) {
                json_gen_key(g, "manifest_error");
                control_gen_text(g, t->manifest_error);
        }
        if (t->last_error) {
                json_gen_key(g, "last_error");
                control_gen_text(g, t->last_error);
        }
        if (t->m->backup.set) {
                json_gen_key(g, "backup");
                json_gen_object_open(g);
                json_gen_key(g, "last_ms");
                if (t->backup_last_ms)
                        json_gen_int(g, (int64_t)t->backup_last_ms);
                else
                        json_gen_null(g);
                json_gen_key(g, "last_ok");
                json_gen_bool(g, t->backup_last_ok);
                json_gen_key(g, "last");
                control_gen_text(g, t->backup_last);
                /* the last successful one: when it ended, its size, its duration */
                static const char *const ok_keys[] = {"ok_ms", "ok_size", "ok_added",
                                                      "ok_duration_ms"};
                const uint64_t ok_vals[] = {t->backup_ok_ms, t->backup_ok_size, t->backup_ok_added,
                                            t->backup_ok_duration_ms};
                for (size_t i = 0; i < 4; i++) {
                        json_gen_key(g, ok_keys[i]);
                        if (t->backup_ok_ms)
                                json_gen_int(g, (int64_t)ok_vals[i]);
                        else
                                json_gen_null(g);
                }
                json_gen_object_close(g);
        }
        monitor_glue_gen_addresses(d, g, t);
        monitor_glue_gen_usage(d, g, t);
        monitor_glue_gen_volumes(d, g, t);
        if (detail) {
                json_gen_key(g, "manifest");
                control_gen_text(g, t->path); /* a file name: any bytes but '/' */
                json_gen_key(g, "want_running");
                json_gen_bool(g, t->want_running);
                json_gen_key(g, "keeper_pid");
                if (t->keeper_pid > 0)
                        json_gen_int(g, t->keeper_pid);
                else
                        json_gen_null(g);
                json_gen_key(g, "started_ms");
                json_gen_int(g, (int64_t)t->started_ms);
                json_gen_key(g, "last_exit_ms");
                json_gen_int(g, (int64_t)t->last_exit_ms);
                json_gen_key(g, "health_detail");
                control_gen_text(g, t->health.detail);
                json_gen_key(g, "health_failures");
                json_gen_int(g, t->health.failures);
                json_gen_key(g, "restart_policy");
                json_gen_string(g, t->m->restart.on == RESTART_NO       ? "no"
                                   : t->m->restart.on == RESTART_ALWAYS ? "always"
                                                                        : "on-failure");
                json_gen_key(g, "mounts_declared");
                json_gen_array_open(g);
                for (size_t i = 0; i < t->m->mounts_n; i++) {
                        const struct mount_spec *ms = &t->m->mounts[i];
                        json_gen_object_open(g);
                        json_gen_key(g, "target");
                        json_gen_string(g, ms->target);
                        json_gen_key(g, "source");
                        json_gen_string(g, ms->type == MOUNT_TMPFS ? "tmpfs" : ms->source);
                        json_gen_key(g, "mode");
                        json_gen_string(g, ms->readonly ? "ro" : "rw");
                        json_gen_object_close(g);
                }
                json_gen_array_close(g);
                monitor_glue_gen_mounts_seen(d, g, t);
                gen_notes(d, g, t);
        }
        json_gen_object_close(g);
}

/* ---- logs ---- */

static void logs_path(struct daemon *d, const char *name, char *buf, size_t len)
{
        char dir[4096];
        logs_dir(d->cfg.state_dir, dir, sizeof(dir));
        snprintf(buf, len, "%s/%s.log", dir, name);
}

/* Sends what the followed file holds past the client's offset. */
static void logs_pump(struct daemon *d, struct client *c)
{
        static char buf[LOG_FOLLOW_CHUNK];
        for (int i = 0; i < 8 && c->log_fd >= 0 && c->w.fd >= 0; i++) {
                ssize_t n = read(c->log_fd, buf, sizeof(buf));
                if (n <= 0)
                        return;
                send_data(d, c, buf, (size_t)n);
        }
}

static void logs_tail(struct daemon *d, struct client *c, int fd, int64_t lines)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return;
        off_t size = st.st_size;
        off_t from = size > (off_t)LOG_TAIL_MAX ? size - (off_t)LOG_TAIL_MAX : 0;
        size_t len = (size_t)(size - from);
        _cleanup_free_ char *buf = malloc(len + 1);
        if (!buf)
                return;
        ssize_t n = pread(fd, buf, len, from);
        if (n <= 0) {
                lseek(fd, size, SEEK_SET);
                return;
        }
        size_t end = (size_t)n, start = end;
        int64_t seen = 0;
        /* Walk back over `lines` newlines (a final newline does not count). */
        while (start > 0) {
                if (buf[start - 1] == '\n' && start != end && ++seen >= lines)
                        break;
                start--;
        }
        if (lines > 0 && start < end)
                send_data(d, c, buf + start, end - start);
        lseek(fd, from + n, SEEK_SET);
}

void control_logs_changed(struct daemon *d, const char *file)
{
        for (struct client *c = d->clients; c; c = c->next) {
                if (c->mode != CLIENT_LOGS || strcmp(c->log_name, file) != 0)
                        continue;
                logs_pump(d, c); /* what is left in the file we hold (it may be rotated) */
                char path[4200];
                logs_path(d, c->t->name, path, sizeof(path));
                struct stat a, b;
                if (c->log_fd >= 0 && fstat(c->log_fd, &a) == 0 && stat(path, &b) == 0 &&
                    (a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
                        close(c->log_fd);
                        c->log_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        logs_pump(d, c);
                } else if (c->log_fd < 0) {
                        c->log_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        logs_pump(d, c);
                }
        }
}

/* ---- events ---- */

static void send_event(struct daemon *d, struct client *c, const char *line)
{
        _cleanup_json_gen_ struct json_gen *g = control_stream_open();
        if (!g)
                return;
        json_gen_key(g, CTL_EVENT);
        json_gen_string(g, line);
        json_gen_object_close(g);
        send_gen(d, c, g);
}

/* An event line ("time=T event=KIND tenant=NAME ...", daemon_event) for a user-socket
 * peer: only those of a tenant it sees; the host's own (no tenant) never. */
static bool event_visible(struct daemon *d, const struct client *c, const char *line)
{
        if (!c->user)
                return true;
        const char *p = strstr(line, " event=");
        p = p ? strchr(p + 1, ' ') : NULL;
        if (!p || strncmp(p, " tenant=", 8) != 0)
                return false;
        p += 8;
        size_t n = strcspn(p, " ");
        char name[MANIFEST_NAME_MAX + 1];
        if (n == 0 || n > MANIFEST_NAME_MAX)
                return false;
        memcpy(name, p, n);
        name[n] = '\0';
        const struct tenant *t = daemon_find(d, name);
        return t && visible(c, t);
}

void control_broadcast_event(struct daemon *d, const char *line)
{
        for (struct client *c = d->clients; c; c = c->next)
                if (c->mode == CLIENT_EVENTS && event_visible(d, c, line))
                        send_event(d, c, line);
}

void control_forget_tenant(struct daemon *d, struct tenant *t)
{
        for (struct client *c = d->clients; c; c = c->next) {
                if (c->t != t)
                        continue;
                if (c->mode == CLIENT_LOGS) {
                        c->closing = true;
                        c->mode = CLIENT_IDLE;
                        reply_error(d, c, -ENOENT, "the tenant was removed");
                } else if (c->mode == CLIENT_WAITING) {
                        control_complete(d, c, 0, "removed");
                }
                c->t = NULL;
        }
}

/* t's manifest was replaced: a user-socket peer whose grant on t went away loses what
 * it holds open on it (a followed log, an exec session, which is killed); the
 * connection is closed. Events are filtered line by line already. */
void control_access_changed(struct daemon *d, struct tenant *t)
{
        for (struct client *c = d->clients, *next; c; c = next) {
                next = c->next;
                if (!c->user || c->t != t)
                        continue;
                uint32_t mask = access_mask(c, t);
                enum access_op held = c->mode == CLIENT_LOGS ? ACCESS_LOGS
                                      : c->ex_console        ? ACCESS_CONSOLE
                                                             : ACCESS_EXEC;
                if ((c->mode == CLIENT_LOGS || c->mode == CLIENT_EXEC) && !(mask & (1U << held))) {
                        user_audit(d, c, access_op_name(held), t->name, "revoked");
                        client_close(d, c);
                }
        }
}

/* ---- exec: the relay ----
 *
 * Nothing of the client's enters a tenant (issue 10, item 4): the command gets pipes
 * tenantd made (with -t, a terminal the tenant allocates from its own devpts, fed
 * through such pipes: sandbox.c), and tenantd copies bytes between those and the
 * client's socket, in the frames of exec_proto.h. Each direction is bounded: output is
 * read from the command only while the client's queue holds less than EXEC_WINDOW (so
 * a client that stops reading stops the command's output, and nothing else), and the
 * client's frames are read only while the command's stdin buffer has room. When the
 * command has ended, output still in flight is relayed for EXEC_GRACE_MS at most (a
 * process it left behind may hold its stdout for ever), then the exit status frame
 * ends the session and the connection. Descriptors leave epoll before they are closed
 * (daemon_watch_del does both, in that order). */

static void exec_frame(struct daemon *d, struct client *c, enum exec_frame_type type,
                       const void *data, size_t len)
{
        uint8_t hdr[EXEC_FRAME_HEADER];
        exec_frame_header(hdr, type, len);
        client_queue(d, c, hdr, sizeof(hdr), false);
        if (len && c->w.fd >= 0)
                client_queue(d, c, data, len, false);
}

static void exec_teardown(struct daemon *d, struct client *c)
{
        daemon_watch_del(d, &c->ex_in_w);
        daemon_watch_del(d, &c->ex_out_w);
        daemon_watch_del(d, &c->ex_err_w);
        daemon_watch_del(d, &c->ex_grace_w);
        daemon_watch_del(d, &c->exec_w);
        if (c->ex_ws >= 0)
                close(c->ex_ws);
        c->ex_ws = -1;
        free(c->ex_stdin);
        c->ex_stdin = NULL;
        c->ex_stdin_len = 0;
        free(c->ex_vm_in);
        c->ex_vm_in = NULL;
        c->ex_vm_len = 0;
        c->exec_pid = 0;
}

static void exec_finish(struct daemon *d, struct client *c)
{
        uint8_t st[4];
        exec_put_be32(st, (uint32_t)c->ex_status);
        exec_teardown(d, c);
        c->mode = CLIENT_IDLE;
        c->t = NULL;
        exec_frame(d, c, EXEC_EXIT, st, sizeof(st));
        if (c->w.fd < 0)
                return;
        c->closing = true; /* the session was the connection's last request */
        client_flush(d, c);
}

static bool exec_full(const struct client *c)
{
        return c->out_len - c->out_off >= EXEC_WINDOW;
}

/* A microVM's runner socket: read while the client takes output, written while input
 * waits for it. */
static void exec_vm_watch(struct daemon *d, struct client *c)
{
        if (c->ex_vm && c->exec_w.fd >= 0)
                daemon_watch_mod(d, &c->exec_w,
                                 (c->ex_paused ? 0 : EPOLLIN | EPOLLRDHUP) |
                                     (c->ex_stdin_len ? EPOLLOUT : 0));
}

static void exec_pause(struct daemon *d, struct client *c)
{
        c->ex_paused = true;
        if (c->ex_out_w.fd >= 0)
                daemon_watch_mod(d, &c->ex_out_w, 0);
        if (c->ex_err_w.fd >= 0)
                daemon_watch_mod(d, &c->ex_err_w, 0);
        exec_vm_watch(d, c);
}

static void exec_resume(struct daemon *d, struct client *c)
{
        c->ex_paused = false;
        if (c->ex_out_w.fd >= 0)
                daemon_watch_mod(d, &c->ex_out_w, EPOLLIN);
        if (c->ex_err_w.fd >= 0)
                daemon_watch_mod(d, &c->ex_err_w, EPOLLIN);
        exec_vm_watch(d, c);
}

static void exec_maybe_finish(struct daemon *d, struct client *c)
{
        if (c->ex_exited && c->ex_out_w.fd < 0 && c->ex_err_w.fd < 0)
                exec_finish(d, c);
}

/* The command's stdout or stderr pipe. */
static void exec_output(struct daemon *d, struct client *c, struct watch *w,
                        enum exec_frame_type type)
{
        static uint8_t buf[EXEC_FRAME_MAX];
        while (w->fd >= 0 && !exec_full(c)) {
                ssize_t n = read(w->fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        daemon_watch_del(d, w);
                        exec_maybe_finish(d, c);
                        return;
                }
                exec_frame(d, c, type, buf, (size_t)n);
                if (c->w.fd < 0)
                        return; /* the client went away meanwhile */
        }
        if (w->fd >= 0)
                exec_pause(d, c);
}

static void exec_on_stdout(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        exec_output(d, (struct client *)((char *)w - offsetof(struct client, ex_out_w)), w,
                    EXEC_STDOUT);
}

static void exec_on_stderr(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        exec_output(d, (struct client *)((char *)w - offsetof(struct client, ex_err_w)), w,
                    EXEC_STDERR);
}

static void exec_on_grace(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct client *c = (struct client *)((char *)w - offsetof(struct client, ex_grace_w));
        exec_finish(d, c);
}

/* The command ended (its pidfd is readable). */
static void exec_on_exit(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct client *c = (struct client *)((char *)w - offsetof(struct client, exec_w));
        siginfo_t si = {0};
        (void)waitid(P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG);
        daemon_watch_del(d, w);
        c->exec_pid = 0;
        c->ex_exited = true;
        c->ex_status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        /* Its stdin goes: nobody reads it any more. */
        daemon_watch_del(d, &c->ex_in_w);
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = {.it_value = {.tv_nsec = EXEC_GRACE_MS * 1000000L}};
        if (tfd >= 0 && timerfd_settime(tfd, 0, &its, NULL) == 0) {
                c->ex_grace_w = (struct watch){.fd = tfd, .fn = exec_on_grace};
                daemon_watch_add(d, &c->ex_grace_w, EPOLLIN);
        } else if (tfd >= 0) {
                close(tfd);
        }
        exec_maybe_finish(d, c);
        if (c->mode == CLIENT_EXEC && c->ex_grace_w.fd < 0)
                exec_finish(d, c);
}

/* Writes what the client sent to the command's stdin; at its end, closes it. */
static void exec_stdin_flush(struct daemon *d, struct client *c)
{
        while (c->ex_in_w.fd >= 0 && c->ex_stdin_len) {
                ssize_t n = write(c->ex_in_w.fd, c->ex_stdin, c->ex_stdin_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        daemon_watch_mod(d, &c->ex_in_w, EPOLLOUT);
                        return;
                }
                if (n <= 0) { /* the command closed its stdin: what is left is dropped */
                        c->ex_stdin_len = 0;
                        daemon_watch_del(d, &c->ex_in_w);
                        break;
                }
                memmove(c->ex_stdin, c->ex_stdin + n, c->ex_stdin_len - (size_t)n);
                c->ex_stdin_len -= (size_t)n;
        }
        if (c->ex_in_w.fd >= 0 && c->ex_stdin_eof)
                daemon_watch_del(d, &c->ex_in_w); /* EOF reaches the command */
        else if (c->ex_in_w.fd >= 0)
                daemon_watch_mod(d, &c->ex_in_w, 0);
}

static void exec_input(struct daemon *d, struct client *c);

/* A microVM: the client's frames go to the runner as they came (it checks them again
 * and passes one at a time to the agent), through ex_stdin, at most EXEC_WINDOW bytes:
 * when the runner stops reading, the client's frames wait in c->in, then in its socket. */
static void exec_vm_flush(struct daemon *d, struct client *c)
{
        if (c->ex_vm_eof_pending && !c->ex_stdin)
                c->ex_stdin = malloc(EXEC_WINDOW);
        if (c->ex_vm_eof_pending && !c->in_len && c->ex_stdin &&
            c->ex_stdin_len + EXEC_FRAME_HEADER <= EXEC_WINDOW) {
                exec_frame_header(c->ex_stdin + c->ex_stdin_len, EXEC_STDIN, 0);
                c->ex_stdin_len += EXEC_FRAME_HEADER;
                c->ex_vm_eof_pending = false;
        }
        while (c->exec_w.fd >= 0 && c->ex_stdin_len) {
                ssize_t n =
                    send(c->exec_w.fd, c->ex_stdin, c->ex_stdin_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) { /* the runner went away: its socket's end says so */
                        c->ex_stdin_len = 0;
                        break;
                }
                memmove(c->ex_stdin, c->ex_stdin + n, c->ex_stdin_len - (size_t)n);
                c->ex_stdin_len -= (size_t)n;
        }
        exec_vm_watch(d, c);
}

static void exec_on_stdin(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct client *c = (struct client *)((char *)w - offsetof(struct client, ex_in_w));
        exec_stdin_flush(d, c);
        exec_input(d, c); /* frames held back while the buffer was full */
        if (c->w.fd >= 0)
                client_flush(d, c);
}

/* The client's frames in c->in: stdin, its end, window sizes. */
static void exec_input(struct daemon *d, struct client *c)
{
        size_t off = 0;
        while (c->mode == CLIENT_EXEC && off < c->in_len) {
                struct exec_frame f;
                int r = exec_frame_decode((const uint8_t *)c->in + off, c->in_len - off, true, &f);
                if (r < 0) {
                        log_warning("control: exec client pid %d sent a malformed frame; "
                                    "disconnected",
                                    (int)c->pid);
                        client_close(d, c);
                        return;
                }
                if (r == 0)
                        break;
                if (c->ex_vm) {
                        if (c->ex_stdin_len + (size_t)r > EXEC_WINDOW)
                                break; /* held in c->in until the runner has read some */
                        if (!c->ex_stdin && !(c->ex_stdin = malloc(EXEC_WINDOW))) {
                                client_close(d, c);
                                return;
                        }
                        memcpy(c->ex_stdin + c->ex_stdin_len, c->in + off, (size_t)r);
                        c->ex_stdin_len += (size_t)r;
                        if (f.type == EXEC_STDIN && f.len == 0)
                                c->ex_stdin_eof = true;
                } else if (f.type == EXEC_WINSIZE) {
                        if (c->ex_ws >= 0)
                                (void)!write(c->ex_ws, f.data, 4);
                } else if (f.len == 0) {
                        c->ex_stdin_eof = true;
                } else if (c->ex_stdin_eof || c->ex_in_w.fd < 0) {
                        /* nobody reads it */
                } else if (c->ex_stdin_len + f.len > EXEC_WINDOW) {
                        break; /* held in c->in until the command has read some */
                } else {
                        if (!c->ex_stdin) {
                                c->ex_stdin = malloc(EXEC_WINDOW);
                                if (!c->ex_stdin) {
                                        client_close(d, c);
                                        return;
                                }
                        }
                        memcpy(c->ex_stdin + c->ex_stdin_len, f.data, f.len);
                        c->ex_stdin_len += f.len;
                }
                off += (size_t)r;
        }
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
        if (c->mode == CLIENT_EXEC && c->ex_vm)
                exec_vm_flush(d, c);
        else if (c->mode == CLIENT_EXEC)
                exec_stdin_flush(d, c);
}

static void exec_client_read(struct daemon *d, struct client *c)
{
        while (c->w.fd >= 0 && c->mode == CLIENT_EXEC && c->in_len < REQUEST_MAX) {
                ssize_t n = recv(c->w.fd, c->in + c->in_len, REQUEST_MAX - c->in_len, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0) {
                        client_close(d, c);
                        return;
                }
                if (n == 0) {
                        c->eof = true; /* a half-close: the end of stdin too */
                        c->ex_vm_eof_pending = c->ex_vm && !c->ex_stdin_eof;
                        c->ex_stdin_eof = true;
                        break;
                }
                c->in_len += (size_t)n;
                exec_input(d, c);
        }
        if (c->w.fd >= 0 && c->mode == CLIENT_EXEC)
                exec_input(d, c);
        if (c->w.fd >= 0)
                client_flush(d, c);
}

/* A microVM: the runner relays the guest's output in the same frames, through bounded
 * buffers of its own (cmd_run_vm.c); tenantd checks each frame and passes it on. */
static void exec_on_runner(struct daemon *d, struct watch *w, uint32_t events)
{
        struct client *c = (struct client *)((char *)w - offsetof(struct client, exec_w));
        if (events & EPOLLOUT) {
                exec_vm_flush(d, c);
                exec_input(d, c); /* frames held back while the buffer was full */
                if (c->w.fd < 0 || c->mode != CLIENT_EXEC)
                        return;
                client_flush(d, c);
                if (c->w.fd < 0 || c->mode != CLIENT_EXEC)
                        return;
        }
        if (!c->ex_vm_in && !(c->ex_vm_in = malloc(EXEC_FRAME_HEADER + EXEC_FRAME_MAX)))
                return exec_finish(d, c);
        while (c->mode == CLIENT_EXEC && !exec_full(c)) {
                ssize_t n = recv(w->fd, c->ex_vm_in + c->ex_vm_len,
                                 EXEC_FRAME_HEADER + EXEC_FRAME_MAX - c->ex_vm_len, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) { /* the runner went away: the VM ended */
                        c->ex_status = 128 + SIGKILL;
                        return exec_finish(d, c);
                }
                c->ex_vm_len += (size_t)n;
                size_t off = 0;
                struct exec_frame f;
                int r;
                while ((r = exec_frame_decode(c->ex_vm_in + off, c->ex_vm_len - off, false, &f)) >
                       0) {
                        off += (size_t)r;
                        if (f.type == EXEC_EXIT) {
                                c->ex_status = (int)exec_be32(f.data);
                                return exec_finish(d, c);
                        }
                        exec_frame(d, c, f.type, f.data, f.len);
                        if (c->w.fd < 0)
                                return;
                }
                if (r < 0) {
                        log_warning("exec: the runner of %s sent a malformed frame",
                                    c->t ? c->t->name : "?");
                        c->ex_status = 127;
                        return exec_finish(d, c);
                }
                memmove(c->ex_vm_in, c->ex_vm_in + off, c->ex_vm_len - off);
                c->ex_vm_len -= off;
        }
        if (c->mode == CLIENT_EXEC)
                exec_pause(d, c);
}

static void exec_started(struct daemon *d, struct client *c, struct tenant *t, bool tty)
{
        c->mode = CLIENT_EXEC;
        c->t = t;
        c->ex_console = false;
        c->ex_exited = c->ex_paused = c->ex_stdin_eof = c->ex_vm_eof_pending = false;
        c->ex_status = 127;
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (!g)
                return;
        json_gen_key(g, CTL_TTY);
        json_gen_bool(g, tty);
        json_gen_object_close(g);
        send_gen(d, c, g);
}

/* Connects to the microVM's runner and hands it `rr` (an exec or the console); the
 * session's frames are relayed from then on. 0, or the error was answered. */
static int runner_session(struct daemon *d, struct client *c, struct tenant *t,
                          const struct runner_request *rr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        if (runner_request_encode(rr, &buf, &len) < 0) {
                reply_error(d, c, -EINVAL, "the command is too long");
                return -EINVAL;
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vm/%s/exec.sock", d->cfg.state_dir, t->name);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                reply_error(d, c, -EIO,
                            "cannot reach the microVM's runner (is the VM still booting?)");
                return -EIO;
        }
        /* The request only: no descriptor of anyone's goes to the runner. */
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n != (ssize_t)len) {
                close(fd);
                reply_error(d, c, -EIO, "cannot hand the command to the microVM's runner");
                return -EIO;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        c->ex_vm = true;
        c->exec_w = (struct watch){.fd = fd, .fn = exec_on_runner};
        daemon_watch_add(d, &c->exec_w, EPOLLIN | EPOLLRDHUP);
        return 0;
}

static void op_exec_vm(struct daemon *d, struct client *c, struct tenant *t,
                       const struct control_request *req)
{
        /* stdin always streams (tenantctl sends its end, a half-close does too); the
         * terminal, when asked for, is the guest's own, allocated by its agent. */
        struct runner_request rr = {.kind = RUNNER_EXEC,
                                    .argv = req->argv,
                                    .argc = req->argc,
                                    .stdin_open = true,
                                    .tty = req->tty,
                                    .rows = req->rows,
                                    .cols = req->cols};
        if (runner_session(d, c, t, &rr) < 0)
                return;
        exec_started(d, c, t, req->tty);
        char command[600] = "";
        event_kv(command, sizeof(command), "command", req->argv[0]);
        daemon_event(d, "exec", t, "uid=%u %s%s", (unsigned)c->uid, req->tty ? "tty=yes " : "",
                     command);
}

/* ---- requests ---- */

static void op_list(struct daemon *d, struct client *c)
{
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (!g)
                return;
        json_gen_key(g, CTL_TENANTS);
        json_gen_array_open(g);
        /* Sorted by name for people and scripts alike. */
        size_t n = 0;
        for (struct tenant *t = d->tenants; t; t = t->next)
                n++;
        _cleanup_free_ const struct tenant **v =
            calloc(n ? n : 1, sizeof(*v)); /* NOLINT(bugprone-sizeof-expression) */
        if (!v)
                return;
        n = 0;
        for (struct tenant *t = d->tenants; t; t = t->next)
                if (visible(c, t))
                        v[n++] = t;
        for (size_t i = 1; i < n; i++)
                for (size_t k = i; k > 0 && strcmp(v[k - 1]->name, v[k]->name) > 0; k--) {
                        const struct tenant *x = v[k];
                        v[k] = v[k - 1];
                        v[k - 1] = x;
                }
        for (size_t i = 0; i < n; i++)
                gen_tenant(d, g, v[i], false);
        json_gen_array_close(g);
        json_gen_object_close(g);
        send_gen(d, c, g);
}

static void op_events(struct daemon *d, struct client *c, const struct control_request *req)
{
        int64_t lines = req->lines;
        bool follow = req->follow;
        reply_ok(d, c, NULL);
        /* The last `lines` events this peer may see. */
        size_t n = 0, from = d->events_n;
        while (from > 0 && n < (size_t)lines) {
                from--;
                n += event_visible(d, c, d->events[(d->events_head + from) % 1000]);
        }
        for (size_t i = from; i < d->events_n; i++) {
                const char *line = d->events[(d->events_head + i) % 1000];
                if (event_visible(d, c, line))
                        send_event(d, c, line);
        }
        if (follow)
                c->mode = CLIENT_EVENTS;
        else
                c->closing = true;
        client_flush(d, c);
}

static void op_logs(struct daemon *d, struct client *c, struct tenant *t,
                    const struct control_request *req)
{
        int64_t lines = req->lines;
        bool follow = req->follow;
        char path[4200];
        logs_path(d, t->name, path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT) {
                char msg[4400];
                snprintf(msg, sizeof(msg), "cannot open %s: %s", path, strerror(errno));
                reply_error(d, c, -errno, msg);
                return;
        }
        reply_ok(d, c, NULL);
        if (fd >= 0)
                logs_tail(d, c, fd, lines);
        if (follow) {
                c->mode = CLIENT_LOGS;
                c->t = t;
                c->log_fd = fd;
                snprintf(c->log_name, sizeof(c->log_name), "%s.log", t->name);
                logs_pump(d, c);
        } else {
                if (fd >= 0)
                        close(fd);
                c->closing = true;
        }
        client_flush(d, c);
}

/* Starts req's command in sandbox t and relays it to c; 0, or -1 once the error is
 * replied. The caller says what the session is (an exec, a console) in its event. */
static int exec_sandbox_session(struct daemon *d, struct client *c, struct tenant *t,
                                const struct control_request *req, pid_t *ret_pid)
{
        char **argv = (char **)req->argv; /* read only, as tenant_exec_spawn does */
        _cleanup_err_ struct tn_err *err = NULL;
        bool tty = req->tty;
        uint8_t ws[4] = {(uint8_t)(req->rows >> 8), (uint8_t)req->rows, (uint8_t)(req->cols >> 8),
                         (uint8_t)req->cols};
        /* tenantd's pipes: [0] the command's stdin, [1] its stdout, [2] its stderr or,
         * with a terminal, the window sizes (the first one written at once). */
        int in[2] = {-1, -1}, out[2] = {-1, -1}, third[2] = {-1, -1};
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(third, O_CLOEXEC) < 0) {
                int r = -errno;
                for (int i = 0; i < 2; i++) {
                        if (in[i] >= 0)
                                close(in[i]);
                        if (out[i] >= 0)
                                close(out[i]);
                }
                reply_error(d, c, r, "cannot create the pipes of an exec");
                return -1;
        }
        if (tty)
                (void)!write(third[1], ws, sizeof(ws));
        int stdio[3] = {in[0], out[1], tty ? third[0] : third[1]};
        pid_t pid;
        int fd = tenant_exec_spawn(d, t, argv, stdio, tty, &pid, &err);
        close(in[0]);
        close(out[1]);
        close(tty ? third[0] : third[1]);
        int mine = tty ? third[1] : third[0];
        if (fd < 0) {
                close(in[1]);
                close(out[0]);
                close(mine);
                reply_error(d, c, fd, tn_err_msg(err));
                return -1;
        }
        fcntl(in[1], F_SETFL, O_NONBLOCK);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(mine, F_SETFL, O_NONBLOCK);
        c->ex_vm = false;
        c->exec_w = (struct watch){.fd = fd, .fn = exec_on_exit};
        c->exec_pid = pid;
        daemon_watch_add(d, &c->exec_w, EPOLLIN);
        c->ex_in_w = (struct watch){.fd = in[1], .fn = exec_on_stdin};
        daemon_watch_add(d, &c->ex_in_w, 0);
        c->ex_out_w = (struct watch){.fd = out[0], .fn = exec_on_stdout};
        daemon_watch_add(d, &c->ex_out_w, EPOLLIN);
        if (tty) {
                c->ex_ws = mine;
        } else {
                c->ex_err_w = (struct watch){.fd = mine, .fn = exec_on_stderr};
                daemon_watch_add(d, &c->ex_err_w, EPOLLIN);
        }
        exec_started(d, c, t, tty);
        *ret_pid = pid;
        return 0;
}

static void op_exec(struct daemon *d, struct client *c, struct tenant *t,
                    const struct control_request *req)
{
        pid_t pid;
        if (exec_sandbox_session(d, c, t, req, &pid) < 0)
                return;
        char command[600] = "";
        event_kv(command, sizeof(command), "command", req->argv[0]);
        daemon_event(d, "exec", t, "pid=%d uid=%u %s%s", (int)pid, (unsigned)c->uid,
                     req->tty ? "tty=yes " : "", command);
}

/* ---- the op table: one handler per op of docs/protocol.md ---- */

/* Each handler gets the decoded request (control_proto.h checked its members) and, for
 * the ops that act on one tenant (CONTROL_F_NAME), the tenant, already looked up. */
typedef void op_handler(struct daemon *d, struct client *c, struct tenant *t,
                        const struct control_request *req);

static void op_list_h(struct daemon *d, struct client *c, struct tenant *t,
                      const struct control_request *req)
{
        (void)t;
        (void)req;
        op_list(d, c);
}

static void op_events_h(struct daemon *d, struct client *c, struct tenant *t,
                        const struct control_request *req)
{
        (void)t;
        op_events(d, c, req);
}

static void op_version(struct daemon *d, struct client *c, struct tenant *t,
                       const struct control_request *req)
{
        (void)t;
        (void)req;
        reply_ok(d, c, "tenantd " TENANTD_VERSION);
}

static void op_reload(struct daemon *d, struct client *c, struct tenant *t,
                      const struct control_request *req)
{
        (void)t;
        (void)req;
        _cleanup_err_ struct tn_err *err = NULL;
        struct reload_counts rc;
        char summary[RELOAD_SUMMARY_MAX];
        int r = daemon_reload(d, &rc, &err);
        r < 0 ? reply_error(d, c, r, tn_err_msg(err))
              : reply_ok(d, c, reload_counts_format(&rc, summary, sizeof(summary)));
}

static void op_status(struct daemon *d, struct client *c, struct tenant *t,
                      const struct control_request *req)
{
        (void)req;
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (!g)
                return;
        json_gen_key(g, CTL_TENANT);
        gen_tenant(d, g, t, !c->user); /* host paths and pids are the operator's */
        json_gen_object_close(g);
        send_gen(d, c, g);
}

/* The audit of one tenant (spec/audit.h): its manifest as loaded, its profile and
 * capability sets as they are on the policy path now, and for a running microVM
 * whether its QEMU has the seccomp sandbox on. */
static void op_audit(struct daemon *d, struct client *c, struct tenant *t,
                     const struct control_request *req)
{
        (void)req;
        struct audit_facts_owned facts;
        if (audit_facts_load(t->m, &facts) < 0)
                return reply_error(d, c, -ENOMEM, "out of memory");
        bool alive = t->init_pid > 0 && (t->state == TENANT_RUNNING || t->state == TENANT_STOPPING);
        if (alive && t->m->isolation == ISOLATION_MICROVM) {
                char domain[MANIFEST_NAME_MAX + 16];
                snprintf(domain, sizeof(domain), "tenantd-%s", t->name);
                pid_t qemu = qemu_proc_pid(domain);
                int r = qemu > 0 ? qemu_proc_sandboxed(qemu) : -ESRCH;
                facts.f.qemu_sandbox = r < 0 ? -1 : r;
        }
        struct audit_report rep;
        int r = audit_manifest(t->m, &facts.f, &rep);
        audit_facts_clear(&facts);
        if (r < 0)
                return reply_error(d, c, r, "out of memory");
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (g) {
                json_gen_key(g, CTL_TENANT);
                json_gen_object_open(g);
                json_gen_key(g, "name");
                control_gen_text(g, t->name);
                json_gen_key(g, "isolation");
                json_gen_string(g, isolation_name(t->m->isolation));
                json_gen_key(g, "state");
                json_gen_string(g, tenant_state_name(t->state));
                audit_report_json(&rep, g);
                json_gen_object_close(g);
                json_gen_object_close(g);
                send_gen(d, c, g);
        }
        audit_report_clear(&rep);
}

/* The volumes in the storage directory (storage/volume.h), with whether a loaded
 * manifest still declares each: one that none does is an orphan, kept until the
 * operator removes it. */
static void op_volumes(struct daemon *d, struct client *c, struct tenant *t,
                       const struct control_request *req)
{
        (void)t;
        (void)req;
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_free_ struct volume_info *list = NULL;
        size_t n = 0;
        int r = volume_list(d->cfg.storage_dir, &list, &n, &err);
        if (r < 0)
                return reply_error(d, c, r, tn_err_msg(err));
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(true);
        if (!g)
                return;
        json_gen_key(g, CTL_VOLUMES);
        json_gen_array_open(g);
        for (size_t i = 0; i < n; i++) {
                const struct volume_info *v = &list[i];
                struct tenant *owner = daemon_find(d, v->tenant);
                const struct volume_spec *vs = NULL;
                for (size_t k = 0; owner && k < owner->m->volumes_n; k++)
                        if (strcmp(owner->m->volumes[k].name, v->name) == 0)
                                vs = &owner->m->volumes[k];
                json_gen_object_open(g);
                json_gen_key(g, "tenant");
                control_gen_text(g, v->tenant);
                json_gen_key(g, "name");
                control_gen_text(g, v->name);
                json_gen_key(g, "size");
                json_gen_int(g, (int64_t)v->size);
                json_gen_key(g, "allocated");
                json_gen_int(g, (int64_t)v->allocated);
                json_gen_key(g, "encrypted");
                json_gen_bool(g, v->encrypted);
                json_gen_key(g, "mounted");
                json_gen_bool(g, v->mounted);
                json_gen_key(g, "in_manifest");
                json_gen_bool(g, vs != NULL);
                json_gen_key(g, "state");
                if (owner)
                        json_gen_string(g, tenant_state_name(owner->state));
                else
                        json_gen_null(g);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
        json_gen_object_close(g);
        send_gen(d, c, g);
}

/* Deletes a volume for good. Refused while its tenant is anything but stopped (a
 * starting tenant is about to mount it); volume_remove() also refuses a volume that
 * is attached, whoever attached it. */
static void op_volume_rm(struct daemon *d, struct client *c, struct tenant *t,
                         const struct control_request *req)
{
        (void)t;
        _cleanup_err_ struct tn_err *err = NULL;
        char tenant[MANIFEST_NAME_MAX + 1], name[MANIFEST_NAME_MAX + 1];
        const char *slash = strchr(req->volume, '/');
        size_t tl = slash ? (size_t)(slash - req->volume) : 0;
        if (!slash || tl == 0 || tl > MANIFEST_NAME_MAX || strlen(slash + 1) > MANIFEST_NAME_MAX)
                return reply_error(d, c, -EINVAL, "expected TENANT/NAME, such as app/data");
        memcpy(tenant, req->volume, tl);
        tenant[tl] = '\0';
        snprintf(name, sizeof(name), "%s", slash + 1);
        struct tenant *owner = daemon_find(d, tenant);
        if (owner && owner->busy) {
                char msg[256];
                snprintf(msg, sizeof(msg), "%s is busy: %s", tenant, owner->busy);
                return reply_error(d, c, -EBUSY, msg);
        }
        if (owner && owner->state != TENANT_STOPPED && owner->state != TENANT_FAILED &&
            owner->state != TENANT_CRASHLOOP && owner->state != TENANT_EXITED) {
                char msg[256];
                snprintf(msg, sizeof(msg), "%s is %s: stop it first", tenant,
                         tenant_state_name(owner->state));
                return reply_error(d, c, -EBUSY, msg);
        }
        int r = volume_remove(d->cfg.storage_dir, tenant, name, &err);
        if (r < 0)
                return reply_error(d, c, r, tn_err_msg(err));
        log_notice("volume %s/%s removed by the operator", tenant, name);
        reply_ok(d, c, NULL);
}

static void op_exec_any(struct daemon *d, struct client *c, struct tenant *t,
                        const struct control_request *req)
{
        char msg[256];
        if (t->m->isolation == ISOLATION_MICROVM) {
                if (t->state != TENANT_RUNNING)
                        return reply_error(d, c, -ESRCH, "the microVM is not running");
                return op_exec_vm(d, c, t, req);
        }
        if (t->state != TENANT_RUNNING || t->init_pidfd < 0) {
                snprintf(msg, sizeof(msg), "%s is not running (%s)", t->name,
                         tenant_state_name(t->state));
                return reply_error(d, c, -ESRCH, msg);
        }
        op_exec(d, c, t, req);
}

/* ---- console ----
 *
 * A microVM's serial console (the runner relays libvirt's console stream, and the
 * agent runs a login shell on the line), or in a sandbox a login shell on a terminal
 * of its own, as `exec -t NAME -- /bin/sh -l`. One client at a time per tenant, as
 * virsh console: another gets -EBUSY, or with force takes the console over (the one
 * that had it ends with status 1). libvirt enforces this for a microVM (an operator's
 * virsh console counts too); tenantd does for a sandbox. */
#define CONSOLE_BUSY                                                                               \
        "the console is in use by another client (tenantctl console --force takes it over)"

static struct client *console_holder(struct daemon *d, const struct tenant *t)
{
        for (struct client *o = d->clients; o; o = o->next)
                if (o->mode == CLIENT_EXEC && o->ex_console && o->t == t)
                        return o;
        return NULL;
}

static void console_take_over(struct daemon *d, struct client *old)
{
        if (old->exec_w.fd >= 0 && !old->ex_vm) {
                (void)syscall(SYS_pidfd_send_signal, old->exec_w.fd, SIGKILL, NULL, 0);
                siginfo_t si;
                (void)waitid(P_PIDFD, (id_t)old->exec_w.fd, &si, WEXITED);
        }
        static const char note[] = "\r\n[tenantd: another client took the console over]\r\n";
        exec_frame(d, old, EXEC_STDERR, note, sizeof(note) - 1);
        if (old->w.fd < 0)
                return;
        old->ex_status = 1;
        exec_finish(d, old);
}

static void op_console(struct daemon *d, struct client *c, struct tenant *t,
                       const struct control_request *req)
{
        char msg[256];
        if (t->state != TENANT_RUNNING ||
            (t->m->isolation != ISOLATION_MICROVM && t->init_pidfd < 0)) {
                snprintf(msg, sizeof(msg), "%s is not running (%s)", t->name,
                         tenant_state_name(t->state));
                return reply_error(d, c, -ESRCH, msg);
        }
        if (t->m->isolation == ISOLATION_MICROVM) {
                struct runner_request rr = {.kind = RUNNER_CONSOLE,
                                            .rows = req->rows,
                                            .cols = req->cols,
                                            .force = req->force};
                if (runner_session(d, c, t, &rr) < 0)
                        return;
                exec_started(d, c, t, true);
        } else {
                struct client *old = console_holder(d, t);
                if (old && !req->force)
                        return reply_error(d, c, -EBUSY, CONSOLE_BUSY);
                if (old)
                        console_take_over(d, old);
                static const char *const login[] = {"/bin/sh", "-l", NULL};
                struct control_request x = *req;
                x.argv = login;
                x.argc = 2;
                x.tty = true;
                /* One event for the session: "console", not also "exec". */
                pid_t pid;
                if (exec_sandbox_session(d, c, t, &x, &pid) < 0)
                        return;
        }
        c->ex_console = true;
        daemon_event(d, "console", t, "uid=%u%s", (unsigned)c->uid, req->force ? " force=yes" : "");
}

static void op_set(struct daemon *d, struct client *c, struct tenant *t,
                   const struct control_request *req)
{
        _cleanup_err_ struct tn_err *err = NULL;
        const char *summary = NULL;
        int r = monitor_glue_set(d, t, req->tree, c->user ? t->m : NULL, &summary, &err);
        r < 0 ? reply_error(d, c, r, tn_err_msg(err)) : reply_ok(d, c, summary);
}

static void op_kill(struct daemon *d, struct client *c, struct tenant *t,
                    const struct control_request *req)
{
        _cleanup_err_ struct tn_err *err = NULL;
        int r = tenant_op_kill(d, t, req->signal, &err);
        r < 0 ? reply_error(d, c, r, tn_err_msg(err)) : reply_ok(d, c, NULL);
}

/* start, stop, restart (CONTROL_F_WAITS): the reply comes when the tenant got there. */
static void op_lifecycle(struct daemon *d, struct client *c, struct tenant *t,
                         const struct control_request *req)
{
        _cleanup_err_ struct tn_err *err = NULL;
        int r;
        c->mode = CLIENT_WAITING;
        c->t = t;
        if (req->op == CONTROL_OP_START)
                r = tenant_op_start(d, t, c, &err);
        else
                r = tenant_op_stop(d, t, c, req->timeout_ms, req->op == CONTROL_OP_RESTART, &err);
        if (r != 0) {
                c->mode = CLIENT_IDLE;
                c->t = NULL;
                if (r < 0)
                        reply_error(d, c, r, tn_err_msg(err));
                else
                        reply_ok(d, c, NULL);
        }
}

/* backup (CONTROL_F_WAITS): the reply comes when the worker ends (backup.c). */
static void op_backup(struct daemon *d, struct client *c, struct tenant *t,
                      const struct control_request *req)
{
        _cleanup_err_ struct tn_err *err = NULL;
        c->mode = CLIENT_WAITING;
        c->t = t;
        int r = req->action == CONTROL_BACKUP_RESTORE
                    ? tenant_op_restore(d, t, c, req->snapshot, req->as, req->yes, &err)
                    : tenant_op_backup(d, t, c, req->action, &err);
        if (r < 0) {
                c->mode = CLIENT_IDLE;
                c->t = NULL;
                reply_error(d, c, r, tn_err_msg(err));
        } else if (req->as) {
                c->t = daemon_find(d, req->as); /* the new tenant answers it */
        }
}

/* Indexed by enum control_op; the names and flags are the codec's (control_ops[]). */
static op_handler *const op_handlers[CONTROL_OP_COUNT_] = {
    [CONTROL_OP_VERSION] = op_version,   [CONTROL_OP_LIST] = op_list_h,
    [CONTROL_OP_TOP] = op_list_h,        [CONTROL_OP_STATUS] = op_status,
    [CONTROL_OP_START] = op_lifecycle,   [CONTROL_OP_STOP] = op_lifecycle,
    [CONTROL_OP_RESTART] = op_lifecycle, [CONTROL_OP_KILL] = op_kill,
    [CONTROL_OP_LOGS] = op_logs,         [CONTROL_OP_EXEC] = op_exec_any,
    [CONTROL_OP_SET] = op_set,           [CONTROL_OP_EVENTS] = op_events_h,
    [CONTROL_OP_RELOAD] = op_reload,     [CONTROL_OP_AUDIT] = op_audit,
    [CONTROL_OP_VOLUMES] = op_volumes,   [CONTROL_OP_VOLUME_RM] = op_volume_rm,
    [CONTROL_OP_BACKUP] = op_backup,     [CONTROL_OP_CONSOLE] = op_console,
};

/* A user-socket peer's request: NULL when it may go on, else the refusal's words (the
 * reply and the audit line). A tenant it does not see was answered as missing before. */
static const char *user_refusal(const struct client *c, const struct tenant *t,
                                const struct control_request *req)
{
        switch (req->op) {
        case CONTROL_OP_VERSION:
        case CONTROL_OP_LIST:
        case CONTROL_OP_TOP:
        case CONTROL_OP_EVENTS:
                return NULL; /* filtered to the peer's tenants */
        case CONTROL_OP_RELOAD:
                return "reload is the operator's (the tenantd group's socket)";
        default:
                break;
        }
        int op = access_op_of(req->op);
        if (req->op == CONTROL_OP_BACKUP && req->action == CONTROL_BACKUP_RESTORE) {
                if (req->as)
                        return "restore --as makes a new tenant, which is the operator's";
                op = ACCESS_RESTORE;
        }
        /* backup and backups touch this tenant's snapshots only (restic's tags);
         * backup check reads the whole repository, every tenant's that shares it. */
        if (req->op == CONTROL_OP_BACKUP && req->action == CONTROL_BACKUP_CHECK)
                return "backup check reads the whole repository, which is the operator's";
        if (req->op == CONTROL_OP_BACKUP &&
            (req->action == CONTROL_BACKUP_RUN || req->action == CONTROL_BACKUP_LIST))
                op = ACCESS_BACKUP;
        if (op < 0 || !t || !(access_mask(c, t) & (1U << op)))
                return "the tenant's access section does not grant this verb";
        if (req->op == CONTROL_OP_SET && req->save)
                return "set --save changes the manifest, which is the operator's";
        for (size_t i = 0; req->op == CONTROL_OP_SET && i < req->n_values; i++) {
                const char *path = manifest_settable_path(req->keys[i]);
                /* A key outside the limits table (a volume's size or io) is the
                 * operator's: a user never grows a volume nor lifts its io limits. */
                if (!path)
                        return "only the operator may set this key";
                bool listed = false;
                for (size_t k = 0; k < t->m->access_n && !listed; k++) {
                        const struct access_entry *e = &t->m->access[k];
                        if (!entry_matches(c, e) || !(e->allow & (1U << ACCESS_SET)))
                                continue;
                        listed = !e->set;
                        for (size_t j = 0; !listed && j < e->set_n; j++)
                                listed = strcmp(manifest_settable_path(e->set[j]), path) == 0;
                }
                if (!listed)
                        return "the tenant's access section does not list this key under "
                               "\"set\"";
        }
        return NULL;
}

/* A decoded request (the op table and the members' checks: control_proto.h). */
static void handle_op(struct daemon *d, struct client *c, const struct control_request *req)
{
        struct tenant *t = NULL;
        const char *verb = control_op_name(req->op);
        if (control_ops[req->op].flags & CONTROL_F_NAME) {
                t = req->name ? daemon_find(d, req->name) : NULL;
                /* A tenant a user does not see answers exactly as one that does not exist:
                 * same code, same words, nothing else to tell them apart. */
                if (!t || !visible(c, t)) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "no tenant named \"%.64s\"",
                                 req->name ? req->name : "");
                        if (c->user)
                                user_audit(d, c, verb, NULL, "not-found");
                        return reply_error(d, c, -ENOENT, msg);
                }
        }
        if (c->user) {
                const char *why = user_refusal(c, t, req);
                user_audit(d, c, verb, t ? t->name : NULL, why ? "denied" : "ok");
                if (why) {
                        char msg[256];
                        snprintf(msg, sizeof(msg), "permission denied: %s on %s: %s", verb,
                                 t ? t->name : "the host", why);
                        return reply_error(d, c, -EPERM, msg);
                }
        }
        op_handlers[req->op](d, c, t, req);
}

static void handle_request(struct daemon *d, struct client *c, const char *line, size_t len)
{
        struct control_request req;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = control_request_decode(line, len, &req, &err);
        if (r < 0)
                return reply_error(d, c, r, tn_err_msg(err));
        handle_op(d, c, &req);
        control_request_clear(&req);
}

/* ---- client I/O ---- */

static void close_fds(struct client *c)
{
        for (int i = 0; i < c->n_fds; i++)
                close(c->fds[i]);
        c->n_fds = 0;
}

/* Handles the complete request lines buffered, one at a time: a request that waits
 * (start, stop, logs -f, exec) holds the rest until it is answered. */
static void client_process(struct daemon *d, struct client *c)
{
        char *nl;
        while (c->w.fd >= 0 && c->mode == CLIENT_IDLE && !c->closing &&
               (nl = memchr(c->in, '\n', c->in_len))) {
                size_t line_len = (size_t)(nl - c->in);
                if (c->user) {
                        /* Over its uid's rate: the request waits, and nothing more is
                         * read from it, until the bucket has a token (control_tick). */
                        uint64_t now = mono_ms(), wait = user_take_token(d, c, now);
                        if (wait) {
                                c->throttled_until = now + wait;
                                daemon_rearm(d);
                                break;
                        }
                        c->throttled_until = 0;
                }
                if (c->discarding) {
                        c->discarding = false;
                        reply_error(d, c, -EINVAL, "request too long (the limit is 64 KiB)");
                } else {
                        handle_request(d, c, c->in, line_len);
                }
                close_fds(c); /* descriptors are never used: exec relays bytes */
                memmove(c->in, nl + 1, c->in_len - line_len - 1);
                c->in_len -= line_len + 1;
        }
        if (c->w.fd >= 0 && c->mode == CLIENT_EXEC && c->in_len)
                exec_input(d, c); /* frames sent right behind the request */
        if (c->w.fd >= 0 && c->eof && c->mode == CLIENT_IDLE && !c->out_len)
                client_close(d, c);
}

void control_pump(struct daemon *d)
{
        for (struct client *c = d->clients; c; c = c->next)
                if (c->mode == CLIENT_IDLE && !c->closing && !c->throttled_until &&
                    memchr(c->in, '\n', c->in_len))
                        client_process(d, c);
}

static void client_read(struct daemon *d, struct client *c)
{
        for (;;) {
                if (c->in_len >= REQUEST_MAX) {
                        /* An overlong line: dropped up to its newline, then refused. */
                        char *nl = memchr(c->in, '\n', c->in_len);
                        if (!nl) {
                                c->discarding = true;
                                c->in_len = 0;
                        }
                }
                char cbuf[CMSG_SPACE(sizeof(int) * 3)];
                struct iovec iov = {.iov_base = c->in + c->in_len,
                                    .iov_len = REQUEST_MAX - c->in_len};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = cbuf,
                                    .msg_controllen = sizeof(cbuf)};
                /* With the buffer full nothing is read, and cbuf holds no control data:
                 * the loop below must not take its stack garbage for descriptors. */
                ssize_t n = 0;
                if (iov.iov_len)
                        n = recvmsg(c->w.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                else
                        mh.msg_controllen = 0;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0) {
                        client_close(d, c);
                        return;
                }
                if (n == 0 && iov.iov_len) {
                        c->eof = true;
                        break;
                }
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                                continue;
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int *fds = (int *)CMSG_DATA(cm);
                        for (size_t i = 0; i < k; i++) {
                                if (c->n_fds < 3)
                                        c->fds[c->n_fds++] = fds[i];
                                else
                                        close(fds[i]);
                        }
                }
                if (mh.msg_flags & MSG_CTRUNC)
                        log_warning("control: client pid %d sent too many descriptors",
                                    (int)c->pid);
                c->in_len += (size_t)n;
                c->active_ms = mono_ms();
                if (memchr(c->in + c->in_len - n, '\n', (size_t)n))
                        break; /* a request is complete: handle it before reading on */
        }
        client_process(d, c);
        if (c->w.fd >= 0)
                client_flush(d, c);
}

static void on_client(struct daemon *d, struct watch *w, uint32_t events)
{
        struct client *c = (struct client *)w;
        if (events & EPOLLOUT)
                client_flush(d, c);
        if (c->w.fd >= 0 && (events & EPOLLIN) && c->mode == CLIENT_EXEC)
                exec_client_read(d, c);
        else if (c->w.fd >= 0 && (events & EPOLLIN))
                client_read(d, c);
        /* EPOLLHUP: gone in both directions (a waiting operation goes on unheard, an
         * exec is killed). EPOLLRDHUP alone is a half-close, seen by client_read. */
        if (c->w.fd >= 0 && (events & (EPOLLHUP | EPOLLERR)))
                client_close(d, c);
        else if (c->w.fd >= 0 && (events & EPOLLRDHUP) && !(events & EPOLLIN)) {
                c->eof = true;
                if (c->mode == CLIENT_EXEC) {
                        c->ex_stdin_eof = true;
                        exec_stdin_flush(d, c);
                }
                client_flush(d, c);
        }
}

static void client_close(struct daemon *d, struct client *c)
{
        if (c->w.fd < 0)
                return;
        if (c->mode == CLIENT_WAITING && c->t && c->t->waiter == c)
                c->t->waiter = NULL; /* the operation goes on; nobody hears the end */
        if (c->exec_w.fd >= 0 && !c->ex_vm) {
                /* The operator went away: the command goes too. */
                (void)syscall(SYS_pidfd_send_signal, c->exec_w.fd, SIGKILL, NULL, 0);
                siginfo_t si;
                (void)waitid(P_PIDFD, (id_t)c->exec_w.fd, &si, WEXITED);
        }
        exec_teardown(d, c); /* a microVM's runner ends the session when its socket closes */
        if (c->log_fd >= 0)
                close(c->log_fd);
        c->log_fd = -1;
        close_fds(c);
        daemon_watch_del(d, &c->w);
        for (struct client **p = &d->clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        d->n_clients--;
        if (c->user)
                d->n_user_clients--;
        c->next = d->client_graveyard;
        d->client_graveyard = c;
}

void control_bury(struct daemon *d)
{
        while (d->client_graveyard) {
                struct client *c = d->client_graveyard;
                d->client_graveyard = c->next;
                free(c->out);
                free(c);
        }
}

/* Root, or a member of the control group (primary or supplementary). */
static bool peer_allowed(struct daemon *d, int fd, const struct ucred *uc)
{
        if (uc->uid == 0)
                return true;
        if (!d->have_group)
                return false;
        if (uc->gid == d->group)
                return true;
        gid_t groups[256];
        socklen_t len = sizeof(groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == d->group)
                        return true;
        return false;
}

/* One error line to a connection that gets no slot, then it is closed. */
static void refuse(int fd, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(int fd, const char *code, const char *fmt, ...)
{
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(false);
        const char *buf;
        size_t len;
        if (g) {
                json_gen_key(g, CTL_CODE);
                json_gen_string(g, code);
                json_gen_key(g, CTL_ERROR);
                control_gen_text(g, msg); /* the group's name is anything a config says */
                json_gen_object_close(g);
        }
        if (g && json_gen_finish(g, &buf, &len) == 0) {
                (void)!send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)!send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        close(fd);
}

/* Slots: MAX_CLIENTS in all, of which the last ROOT_RESERVED are root's alone, and
 * at most MAX_PER_UID for any one other uid. So no member of the group, nor all of
 * them together, can keep root from connecting, and one member leaves room for the
 * others. Why a connection was refused is said on it, and logged (rate-limited by
 * the kernel's accept backlog only: a refused client costs one accept and a line). */
static bool slot_for(struct daemon *d, int fd, const struct ucred *uc)
{
        size_t n_clients = d->n_clients - d->n_user_clients; /* the user socket's apart */
        if (n_clients >= MAX_CLIENTS) {
                refuse(fd, "busy", "too many clients (all %d slots are taken); try again later",
                       MAX_CLIENTS);
                return false;
        }
        if (uc->uid == 0)
                return true;
        size_t mine = 0;
        for (struct client *c = d->clients; c; c = c->next)
                mine += c->uid == uc->uid && !c->user;
        if (mine >= MAX_PER_UID) {
                refuse(fd, "busy",
                       "too many connections from uid %u: it holds %zu, the limit per user is %d; "
                       "close some first",
                       (unsigned)uc->uid, mine, MAX_PER_UID);
                log_warning("control: refused uid %u (pid %d): it holds %zu connections",
                            (unsigned)uc->uid, (int)uc->pid, mine);
                return false;
        }
        if (n_clients >= MAX_CLIENTS - ROOT_RESERVED) {
                refuse(fd, "busy",
                       "too many clients: the %d slots for users other than root are taken "
                       "(%d more are kept for root); try again later",
                       MAX_CLIENTS - ROOT_RESERVED, ROOT_RESERVED);
                log_warning("control: refused uid %u (pid %d): only root's slots are left",
                            (unsigned)uc->uid, (int)uc->pid);
                return false;
        }
        return true;
}

static struct client *client_new(struct daemon *d, int fd, const struct ucred *uc);

static void on_accept(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        for (;;) {
                int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        return;
                struct ucred uc;
                socklen_t len = sizeof(uc);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                        close(fd);
                        continue;
                }
                if (!peer_allowed(d, fd, &uc)) {
                        refuse(fd, "denied",
                               "permission denied: uid %u is neither root nor in group %s",
                               (unsigned)uc.uid, d->cfg.socket_group);
                        log_warning("control: refused uid %u (pid %d): not in group %s",
                                    (unsigned)uc.uid, (int)uc.pid, d->cfg.socket_group);
                        continue;
                }
                if (!slot_for(d, fd, &uc))
                        continue;
                (void)client_new(d, fd, &uc);
        }
        daemon_rearm(d); /* the new clients' idle deadlines */
}

/* The peer's account name and the names of its groups, as the access entries name
 * them: getpwuid_r, then getgrouplist of that name (the account's groups, whatever
 * the connecting process kept or dropped). */
static void user_identity(struct client *c)
{
        struct passwd pw, *pwp = NULL;
        char buf[4096];
        if (getpwuid_r(c->uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp ||
            strlen(pw.pw_name) > MANIFEST_ACCOUNT_MAX)
                return;
        snprintf(c->uname, sizeof(c->uname), "%s", pw.pw_name);
        gid_t gids[USER_GROUPS_MAX];
        int n = USER_GROUPS_MAX;
        if (getgrouplist(pw.pw_name, pw.pw_gid, gids, &n) < 0)
                n = USER_GROUPS_MAX; /* more than we keep: the first ones */
        for (int i = 0; i < n && c->n_gnames < USER_GROUPS_MAX; i++) {
                struct group gr, *grp = NULL;
                char gbuf[8192];
                if (getgrgid_r(gids[i], &gr, gbuf, sizeof(gbuf), &grp) == 0 && grp &&
                    strlen(gr.gr_name) <= MANIFEST_ACCOUNT_MAX)
                        snprintf(c->gnames[c->n_gnames++], MANIFEST_ACCOUNT_MAX + 1, "%s",
                                 gr.gr_name);
        }
}

/* The user socket: anyone may connect (mode 0666); what they see and may do is what
 * the manifests' access entries grant their account (access_mask). */
static void on_user_accept(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        for (;;) {
                int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        break;
                struct ucred uc;
                socklen_t len = sizeof(uc);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                        close(fd);
                        continue;
                }
                size_t mine = 0;
                for (struct client *c = d->clients; c; c = c->next)
                        mine += c->user && c->uid == uc.uid;
                if (d->n_user_clients >= USER_MAX_CLIENTS || mine >= USER_PER_UID) {
                        refuse(fd, "busy",
                               mine >= USER_PER_UID
                                   ? "too many connections from uid %u (the limit is %d); "
                                     "close some first"
                                   : "too many clients on the user socket (uid %u, %d per uid); "
                                     "try again later",
                               (unsigned)uc.uid, USER_PER_UID);
                        continue;
                }
                struct client *c = client_new(d, fd, &uc);
                if (!c)
                        continue;
                c->user = true;
                d->n_user_clients++;
                user_identity(c);
        }
        daemon_rearm(d);
}

static struct client *client_new(struct daemon *d, int fd, const struct ucred *uc)
{
        {
                struct client *c = calloc(1, sizeof(*c));
                if (!c) {
                        close(fd);
                        return NULL;
                }
                c->w = (struct watch){.fd = fd, .fn = on_client};
                c->exec_w.fd = -1;
                c->ex_in_w.fd = c->ex_out_w.fd = c->ex_err_w.fd = c->ex_grace_w.fd = -1;
                c->ex_ws = -1;
                c->log_fd = -1;
                c->uid = uc->uid;
                c->pid = uc->pid;
                c->active_ms = mono_ms();
                c->next = d->clients;
                d->clients = c;
                d->n_clients++;
                daemon_watch_add(d, &c->w, EPOLLIN | EPOLLRDHUP);
                return c;
        }
}

/* ---- idle clients ---- */

/* A client is idle when it waits for nothing from tenantd (no start or stop in
 * progress, no log or event stream, no exec) and has sent no request and been sent no
 * reply for client_idle_ms. A stream is never idle, however quiet. */
static uint64_t idle_deadline(const struct daemon *d, const struct client *c)
{
        if (c->w.fd < 0 || c->mode != CLIENT_IDLE || c->closing)
                return UINT64_MAX;
        uint64_t idle = d->cfg.client_idle_ms;
        if (c->user && (!idle || idle > USER_IDLE_MS))
                idle = USER_IDLE_MS;
        return idle ? c->active_ms + idle : UINT64_MAX;
}

uint64_t control_next_deadline(const struct daemon *d)
{
        uint64_t next = UINT64_MAX;
        for (const struct client *c = d->clients; c; c = c->next) {
                uint64_t t = idle_deadline(d, c);
                if (t < next)
                        next = t;
                if (c->throttled_until && c->throttled_until < next)
                        next = c->throttled_until;
        }
        return next;
}

void control_tick(struct daemon *d, uint64_t now)
{
        for (struct client *c = d->clients, *next; c; c = next) {
                next = c->next;
                if (c->throttled_until && c->throttled_until <= now && c->w.fd >= 0) {
                        c->throttled_until = 0;
                        client_process(d, c);
                        if (c->w.fd >= 0)
                                client_flush(d, c);
                        continue;
                }
                if (idle_deadline(d, c) > now)
                        continue;
                if (c->out_len) { /* it does not even read what it was sent */
                        client_close(d, c);
                        continue;
                }
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "idle: closed after %" PRIu64 " s without a request (client-idle-timeout)",
                         (idle_deadline(d, c) - c->active_ms) / 1000);
                _cleanup_json_gen_ struct json_gen *g = control_reply_open(false);
                if (!g)
                        continue;
                json_gen_key(g, CTL_CODE);
                json_gen_string(g, "timeout");
                json_gen_key(g, CTL_ERROR);
                json_gen_string(g, msg);
                json_gen_object_close(g);
                c->closing = true;
                send_gen(d, c, g);
        }
}

/* Binds a unix stream socket at `path`, owned root:gid with `mode`, and watches it. */
static int listen_on(struct daemon *d, const char *path, gid_t gid, mode_t mode, struct watch *w,
                     void (*fn)(struct daemon *, struct watch *, uint32_t))
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(-ENAMETOOLONG, "socket path %s", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash && slash != dir) {
                *slash = '\0';
                (void)mkdir(dir, 0755);
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "socket");
        /* A socket file left by a previous tenantd is replaced only if nobody answers
         * on it: two daemons on one socket would fight over the same tenants. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                close(probe);
                close(fd);
                log_error("another tenantd is listening on %s", path);
                return -EADDRINUSE;
        }
        if (probe >= 0)
                close(probe);
        unlink(path);
        /* Created with no access for anyone, then given its owner and mode. */
        mode_t old = umask(0777);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "cannot bind %s", path);
        }
        if (chown(path, 0, gid) < 0 || chmod(path, mode) < 0 || listen(fd, 128) < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "cannot set up %s", path);
        }
        *w = (struct watch){.fd = fd, .fn = fn};
        return daemon_watch_add(d, w, EPOLLIN);
}

int control_listen(struct daemon *d)
{
        struct group *gr = getgrnam(d->cfg.socket_group);
        if (gr) {
                d->group = gr->gr_gid;
                d->have_group = true;
        } else {
                log_warning("group \"%s\" does not exist: only root can use the control socket",
                            d->cfg.socket_group);
        }
        d->user_listen_w.fd = -1;
        int r = listen_on(d, d->cfg.socket_path, d->have_group ? d->group : 0,
                          d->have_group ? 0660 : 0600, &d->listen_w, on_accept);
        if (r < 0)
                return r;
        /* The user socket: user.sock beside the control socket unless configured. */
        const char *u = d->cfg.user_socket_path;
        if (u && strcmp(u, "none") == 0)
                return 0;
        if (u) {
                d->user_socket = strdup(u);
        } else {
                const char *slash = strrchr(d->cfg.socket_path, '/');
                int dl = slash ? (int)(slash - d->cfg.socket_path) : 1;
                if (asprintf(&d->user_socket, "%.*s/user.sock", dl,
                             slash ? d->cfg.socket_path : ".") < 0)
                        d->user_socket = NULL;
        }
        if (!d->user_socket)
                return log_error_errno(-ENOMEM, "user socket");
        if (strcmp(d->user_socket, d->cfg.socket_path) == 0)
                return log_error_errno(-EINVAL, "--user-socket is the control socket %s",
                                       d->cfg.socket_path);
        r = listen_on(d, d->user_socket, 0, 0666, &d->user_listen_w, on_user_accept);
        if (r < 0) {
                free(d->user_socket);
                d->user_socket = NULL;
        }
        return r;
}

void control_close_all(struct daemon *d)
{
        while (d->clients) {
                struct client *c = d->clients;
                client_flush(d, c);
                client_close(d, c);
        }
        control_bury(d);
        daemon_watch_del(d, &d->listen_w);
        unlink(d->cfg.socket_path);
        if (d->user_socket) {
                daemon_watch_del(d, &d->user_listen_w);
                unlink(d->user_socket);
                free(d->user_socket);
                d->user_socket = NULL;
        }
}
