/* cmd_run_vm.c — `tenantctl run` for a manifest with isolation "microvm": the VM in the
 * foreground, as cmd_run.c does for sandboxes.
 *
 * Order: the tenant's network (its tap on the bridge, firewalled and shaped) before the
 * domain, which only opens the tap; the domain; the agent channel. Then, driven by the
 * agent's messages: "ready" -> hello -> setup (hostname, the shares' tags and targets,
 * the address) -> start (the service) -> log events copied to stdout/stderr until the
 * service's exit event -> shutdown through the agent, and the domain destroyed if it has
 * not powered off within a few seconds. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
 * SIGUSR2 are forwarded to the service (a third SIGINT, or any of them before the
 * service runs, stops the VM at once). Whatever goes wrong, and whatever the guest
 * sends, the domain is destroyed and the state directory, tap and firewall tables are
 * removed before tenantctl exits. */
#include <limits.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buildtree.h"
#include "lib/clock.h"
#include "lib/fileio.h"
#include "proto/exec_proto.h"
#include "proto/runner_proto.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/logtext.h"
#include "lib/seccomp_notify.h"
#include "spec/policy.h"
#include "host/net.h"
#include "host/uidrange.h"
#include "storage/volume.h"
#include "vm/vm.h"
#include "vm/vm_root.h"
#include "vm/vm_runner.h"
#include "vm/vm_agent.h"

#define BOOT_TIMEOUT_TCG_MS 60000U
#define BOOT_TIMEOUT_KVM_MS 15000U
#define REQUEST_TIMEOUT_MS 15000U
#define SHUTDOWN_GRACE_MS 5000U
/* What the runner holds of one exec session's output for tenantd; past it, output is
 * dropped (and counted) rather than the agent channel, shared by every session and
 * the service's log, left unread. tenantd stops reading only when its client does. */
#define EXEC_BUFFER_MAX (1U << 20)
#define EXEC_LINGER_MS 10000U
/* The console's shell exited: what it wrote last is still on its way over the serial
 * line and libvirt's stream when the agent reports the exit. */
#define CONSOLE_LINGER_MS 300U

enum phase {
        PHASE_BOOTING,  /* waiting for "ready" */
        PHASE_SETTING,  /* hello, setup, start in flight */
        PHASE_RUNNING,  /* the service runs */
        PHASE_STOPPING, /* shutdown sent, waiting for the domain to stop */
        PHASE_DONE,
};

struct run {
        const struct manifest *m;
        char **argv;
        struct vm *vm;
        struct vm_agent *agent;
        const struct net_tenant *net;
        enum phase phase;
        int status;    /* the exit status tenantctl returns */
        bool failed;   /* status says why: an error was logged */
        bool dom_gone; /* libvirt said the domain stopped */
        uint64_t stop_deadline;
        /* TENANTD_VM_TIMING=1: ms since the start of the run, printed at the end */
        bool timing;
        uint64_t t0, t_prepared, t_connected, t_created, t_channel, t_ready, t_started, t_exited;
        /* exec sessions requested on STATEDIR/vm/NAME/exec.sock (tenantctl exec through
         * tenantd): the command's output goes to the descriptors that came with the
         * request, its status back on the connection. */
        int exec_listen;
        struct exec_session {
                bool used;
                bool ended; /* the exit frame is queued: close once it is sent */
                uint32_t id;
                int conn;     /* to tenantd: frames of exec_proto.h, never a client's fd */
                uint8_t *buf; /* frames not yet sent, at most EXEC_BUFFER_MAX + a few */
                size_t len;
                uint64_t dropped;
                uint64_t linger_until;
                struct run *run;
                /* input (stdin, window sizes) from tenantd: one frame at a time goes to
                 * the agent, the next only once it answered (the command has read the
                 * bytes): the agent holds one chunk per session, and a command that does
                 * not read stops tenantd, then tenantctl, from reading its producer. */
                bool stdin_open, tty;
                bool in_eof;     /* the end of stdin was passed on */
                bool in_dead;    /* the command's stdin is gone: further input is dropped */
                uint32_t in_req; /* the agent request in flight, 0: none */
                uint8_t *in;     /* a partial frame from tenantd */
                size_t in_len;
                /* a console session (`tenantctl console`): the guest's serial console
                 * instead of a command; the login shell on it is the agent's session
                 * AGENT_CONSOLE_SESSION, whose exit ends the session at end_at (a
                 * moment later, for what the shell wrote last) */
                bool console;
                struct vm_console *con;
                uint64_t end_at;
                int end_status;
        } exec[8];
        uint32_t next_session;
        /* The profile's notify rules in the guest (guest_seccomp.h): the calls the agent
         * was told to notify, and what it says it denied, checked against them and
         * summed again here (lib/seccomp_notify.h: a line per call per 10 s at most,
         * whatever the guest sends). Learning (TENANTD_LEARN_FD): every call. */
        struct agent_seccomp seccomp;
        bool notified[AGENT_NR_MAX];
        struct notifier *denied; /* no listener: aggregation only */
        int event_fd;            /* TENANTD_EVENT_FD: the keeper's event pipe; -1: stderr */
        int learn_fd;            /* TENANTD_LEARN_FD: the counts go there at the end */
        bool learned;            /* the agent's learned event came (only one is taken) */
        uint64_t lies;           /* denied or learned events the filter cannot have caused */
        /* The guest's counters of the tenant's cgroup there (AGENT_EVENT_LIMITS): the
         * last taken, passed on at most once a second (limits_pending: one is owed). */
        struct agent_limits limits;
        uint64_t limits_written_ms;
        bool limits_pending;
};

static void fail(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs why the run ends and moves to stopping the VM at once. */
static void fail(struct run *run, const char *fmt, ...)
{
        if (run->failed)
                return; /* the first reason is the one to read; what follows is its echo */
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_error("\"%s\": %s", run->m->name, msg);
        if (run->phase < PHASE_STOPPING) /* else the service's status stands */
                run->status = EXIT_FAILURE;
        run->failed = true;
        run->phase = PHASE_DONE;
}

/* ---- the agent's messages ---- */

static struct exec_session *exec_find(struct run *run, uint32_t id)
{
        for (size_t i = 0; i < ARRAY_SIZE(run->exec); i++)
                if (run->exec[i].used && !run->exec[i].ended && run->exec[i].id == id)
                        return &run->exec[i];
        return NULL;
}

static void exec_close(struct exec_session *s)
{
        vm_console_close(s->con);
        if (s->conn >= 0)
                close(s->conn);
        free(s->buf);
        free(s->in);
        *s = (struct exec_session){.conn = -1};
}

/* Sends what the session holds, as far as the socket takes it without blocking. */
static void exec_flush(struct exec_session *s)
{
        size_t off = 0;
        while (off < s->len) {
                ssize_t n = send(s->conn, s->buf + off, s->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) { /* tenantd went away */
                        off = s->len;
                        s->ended = s->used;
                        break;
                }
                off += (size_t)n;
        }
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
        if (s->ended && s->len == 0)
                exec_close(s);
}

/* Queues a frame; `force` for the session's last frames, which always fit. */
static void exec_queue(struct exec_session *s, enum exec_frame_type type, const void *data,
                       size_t len, bool force)
{
        if (!force && s->len + EXEC_FRAME_HEADER + len > EXEC_BUFFER_MAX) {
                s->dropped += len;
                return;
        }
        if (!s->buf && !(s->buf = malloc(EXEC_BUFFER_MAX + 2 * (EXEC_FRAME_HEADER + 128)))) {
                s->dropped += len;
                return;
        }
        exec_frame_header(s->buf + s->len, type, len);
        memcpy(s->buf + s->len + EXEC_FRAME_HEADER, data, len);
        s->len += EXEC_FRAME_HEADER + len;
        exec_flush(s);
}

static void exec_finish(struct exec_session *s, int status)
{
        if (!s->used || s->ended)
                return;
        if (s->dropped) {
                char note[128];
                int n = snprintf(note, sizeof(note),
                                 "[tenantd: %llu bytes of output dropped: the client did not "
                                 "read them]\n",
                                 (unsigned long long)s->dropped);
                exec_queue(s, EXEC_STDERR, note, (size_t)n, true);
        }
        uint8_t st[4];
        exec_put_be32(st, (uint32_t)status);
        s->ended = true;
        s->linger_until = mono_ms() + EXEC_LINGER_MS;
        exec_queue(s, EXEC_EXIT, st, sizeof(st), true);
}

/* A message for the client before the session has a buffer of its own. */
static void exec_say(struct exec_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void exec_say(struct exec_session *s, const char *fmt, ...)
{
        char msg[AGENT_TEXT_MAX + 32];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n > 0)
                exec_queue(s, EXEC_STDERR, msg, strnlen(msg, sizeof(msg)), true);
}

static void on_log(uint32_t session, enum agent_stream stream, const uint8_t *data, size_t len,
                   void *userdata)
{
        struct run *run = userdata;
        if (session == 0) {
                (void)write_all(stream == AGENT_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO, data,
                                len);
                return;
        }
        struct exec_session *s = exec_find(run, session);
        if (s && !s->ended)
                exec_queue(s, stream == AGENT_STREAM_STDERR ? EXEC_STDERR : EXEC_STDOUT, data, len,
                           false);
}

static void guest_lied(struct run *run, const char *what);

/* The guest's counters to tenantd, as the keeper's event line "guest-limits OOM PIDS"
 * (keeper.h), which adds them to the tenant's own; `tenantctl run` says them itself. */
static void limits_write(struct run *run)
{
        run->limits_pending = false;
        run->limits_written_ms = mono_ms();
        if (run->event_fd >= 0) {
                char line[96];
                int n = snprintf(line, sizeof(line), "guest-limits %" PRIu64 " %" PRIu64 "\n",
                                 run->limits.oom_kills, run->limits.pids_max_hits);
                if (n > 0 && (size_t)n < sizeof(line) && write(run->event_fd, line, (size_t)n) == n)
                        return;
        }
        log_warning("\"%s\": in the guest, %" PRIu64
                    " of the tenant's processes were killed out of "
                    "memory and %" PRIu64 " forks refused at pids.max, since it booted",
                    run->m->name, run->limits.oom_kills, run->limits.pids_max_hits);
}

static void on_limits(const struct agent_limits *l, void *userdata)
{
        struct run *run = userdata;
        /* Totals since the boot: one that goes down is a lie, and so is every report
         * after it (only the guest's own alerts are at stake). */
        if (run->lies || l->oom_kills < run->limits.oom_kills ||
            l->pids_max_hits < run->limits.pids_max_hits)
                return guest_lied(run, "counters that went down");
        if (l->oom_kills == run->limits.oom_kills && l->pids_max_hits == run->limits.pids_max_hits)
                return;
        run->limits = *l;
        if (mono_ms() < run->limits_written_ms + 1000)
                run->limits_pending = true; /* written when its second is up (the loop) */
        else
                limits_write(run);
}

static void on_exit_event(uint32_t session, bool signaled, int code, void *userdata)
{
        struct run *run = userdata;
        if (session == 0 && run->limits_pending)
                limits_write(run);
        if (session == AGENT_CONSOLE_SESSION) {
                for (size_t i = 0; i < ARRAY_SIZE(run->exec); i++) {
                        struct exec_session *s = &run->exec[i];
                        if (s->used && s->console && !s->ended && !s->end_at) {
                                s->end_at = mono_ms() + CONSOLE_LINGER_MS;
                                s->end_status = signaled ? 128 + code : code;
                        }
                }
                return;
        }
        if (session != 0) {
                struct exec_session *s = exec_find(run, session);
                if (s)
                        exec_finish(s, signaled ? 128 + code : code);
                return;
        }
        if (run->phase != PHASE_RUNNING && run->phase != PHASE_SETTING)
                return;
        run->status = signaled ? 128 + code : code;
        run->phase = PHASE_STOPPING;
        run->t_exited = mono_ms();
}

/* A report of the host's aggregation: the keeper's event line to tenantd when the
 * keeper gave a pipe (keeper.h), else the syslog/stderr line `tenantctl run` prints for
 * a sandbox. */
static void report_denied(void *userdata, int nr, uint64_t count)
{
        struct run *run = userdata;
        char name[64] = "other", line[256];
        if (nr >= 0)
                policy_syscall_name(nr, name, sizeof(name));
        if (run->event_fd >= 0) {
                int n =
                    snprintf(line, sizeof(line), "seccomp-denied %s %" PRIu64 "\n", name, count);
                if (n > 0 && (size_t)n < sizeof(line) && write(run->event_fd, line, (size_t)n) == n)
                        return;
        }
        notifier_format(line, sizeof(line), run->m->name, name, count);
        log_warning("%s", line);
}

static void guest_lied(struct run *run, const char *what)
{
        if (run->lies++ == 0)
                log_warning("\"%s\": the guest agent reported %s; ignored (and every such report "
                            "after it)",
                            run->m->name, what);
}

static void on_denied(const struct agent_call_count *c, void *userdata)
{
        struct run *run = userdata;
        /* Only calls the guest was told to notify: anything else is a lie, and a lying
         * guest adds nothing but to the counts of calls the operator chose. */
        if (!run->denied || c->nr >= AGENT_NR_MAX || !run->notified[c->nr])
                return guest_lied(run, "a denied call its filter does not notify");
        notifier_add(run->denied, c->nr, c->count);
}

static void on_learned(const struct agent_call_count *calls, size_t n, void *userdata)
{
        struct run *run = userdata;
        if (run->learn_fd < 0 || run->learned)
                return guest_lied(run, "learned calls it was not asked for");
        run->learned = true;
        /* One line per call, "NR COUNT", then "end": bounded (AGENT_NR_MAX + 1 calls,
         * decoded and checked by agent_proto.c), read by tenantctl policy learn. */
        for (size_t i = 0; i < n; i++)
                dprintf(run->learn_fd, "%u %" PRIu64 "\n", calls[i].nr, calls[i].count);
        dprintf(run->learn_fd, "end\n");
}

static void send_request(struct run *run, struct agent_request *req, vm_agent_reply_fn fn);

static void on_started(const struct agent_reply *reply, const char *error, void *userdata)
{
        struct run *run = userdata;
        if (!reply || !reply->ok)
                return fail(run, "the agent cannot start the service: %s",
                            reply ? reply->error : error);
        if (run->phase == PHASE_SETTING)
                run->phase = PHASE_RUNNING;
        run->t_started = mono_ms();
        /* Under tenantd's keeper: the tenant is "running" from now on (keeper.c). */
        const char *ready = getenv("TENANTD_READY_FD");
        if (ready && *ready) {
                int fd = atoi(ready);
                if (fd > 2) {
                        (void)!write(fd, "1", 1);
                        close(fd);
                }
                unsetenv("TENANTD_READY_FD");
        }
}

static void on_setup(const struct agent_reply *reply, const char *error, void *userdata)
{
        struct run *run = userdata;
        if (!reply || !reply->ok)
                return fail(run, "the agent cannot set the guest up: %s",
                            reply ? reply->error : error);
        const struct manifest *m = run->m;
        size_t argc = 0;
        while (run->argv[argc])
                argc++;
        _cleanup_strv_free_ char **env = calloc(m->env_n + 1, sizeof(char *));
        if (!env)
                return fail(run, "out of memory");
        for (size_t i = 0; i < m->env_n; i++)
                if (asprintf(&env[i], "%s=%s", m->env[i].name, m->env[i].value) < 0)
                        return fail(run, "out of memory");
        struct agent_request req = {.op = AGENT_OP_START};
        req.u.start = (struct agent_proc){.argv = run->argv,
                                          .argc = argc,
                                          .env = env,
                                          .n_env = m->env_n,
                                          .uid = m->uid,
                                          .gid = m->gid,
                                          .groups = m->groups,
                                          .n_groups = m->groups_n,
                                          .workdir = m->workdir,
                                          .seccomp = run->seccomp};
        send_request(run, &req, on_started);
}

static void send_setup(struct run *run)
{
        const struct vm *vm = run->vm;
        /* The shares and the tmpfs mounts, which the guest makes (vm_root.h). */
        struct agent_mount mounts[AGENT_MOUNTS_MAX];
        size_t n_mounts = 0;
        _cleanup_err_ struct tn_err *e = NULL;
        if (vm_agent_mounts(vm->shares, vm->n_shares, run->m, mounts, ARRAY_SIZE(mounts), &n_mounts,
                            &e) < 0)
                return fail(run, "cannot set the guest up: %s", tn_err_msg(e));
        struct agent_request req = {.op = AGENT_OP_SETUP};
        req.u.setup =
            (struct agent_setup){.hostname = run->m->name, .mounts = mounts, .n_mounts = n_mounts};
        /* pids.max holds the guest's processes too (the host's bounds QEMU's threads). */
        if (run->m->pids.max != MANIFEST_UNLIMITED)
                req.u.setup.pids_max =
                    run->m->pids.max > AGENT_PIDS_MAX ? AGENT_PIDS_MAX : (uint32_t)run->m->pids.max;
        char dns[NET_MAX_RESOLVERS][16];
        if (run->net) {
                req.u.setup.has_net = true;
                struct agent_net *n = &req.u.setup.net;
                n->address.s_addr = htonl(run->net->addr);
                n->prefix = NET_POOL_PREFIX;
                n->has_gateway = true;
                n->gateway.s_addr = htonl(run->net->gateway);
                n->has_address6 = n->has_gateway6 = run->net->v6;
                n->address6 = run->net->addr6;
                n->prefix6 = NET_V6_PREFIX;
                n->gateway6 = run->net->gateway6;
                n->n_dns = net_resolvers(run->m, dns);
                for (size_t i = 0; i < n->n_dns && i < AGENT_DNS_MAX; i++)
                        n->dns[i] = dns[i];
        }
        send_request(run, &req, on_setup);
}

static void on_hello(const struct agent_reply *reply, const char *error, void *userdata)
{
        struct run *run = userdata;
        if (!reply || !reply->ok)
                return fail(run, "the agent does not answer hello: %s",
                            reply ? reply->error : error);
        log_debug("agent %s, guest kernel %s, booted in %llu ms", reply->u.hello.agent,
                  reply->u.hello.kernel, (unsigned long long)reply->u.hello.boot_ms);
        send_setup(run);
}

static void on_ready(void *userdata)
{
        struct run *run = userdata;
        if (run->phase != PHASE_BOOTING)
                return;
        run->t_ready = mono_ms();
        run->phase = PHASE_SETTING;
        struct agent_request req = {.op = AGENT_OP_HELLO};
        send_request(run, &req, on_hello);
}

static void on_shutdown_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        (void)reply;
        (void)error;
        (void)userdata; /* the domain's stop event, or the deadline, decides */
}

static void on_signal_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        (void)userdata;
        if (!reply || !reply->ok)
                log_warning("cannot forward the signal: %s", reply ? reply->error : error);
}

static void send_request(struct run *run, struct agent_request *req, vm_agent_reply_fn fn)
{
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_agent_request(run->agent, req, REQUEST_TIMEOUT_MS, fn, run, &err) < 0)
                fail(run, "agent: %s", tn_err_msg(err));
}

static void on_vm_event(enum vm_event ev, const char *name, const char *detail, void *userdata)
{
        struct run *run = userdata;
        if (ev == VM_EVENT_CONNECTION_LOST) {
                fail(run, "lost the connection to libvirtd (%s)", detail);
                return;
        }
        if (ev != VM_EVENT_STOPPED || strcmp(name, run->m->name) != 0)
                return;
        run->dom_gone = true;
        if (run->phase < PHASE_STOPPING)
                fail(run, "the VM stopped (%s) before the service ended", detail);
        else
                run->phase = PHASE_DONE;
}

/* ---- the loop ---- */

static void handle_signal(struct run *run, int sig, int *interrupts)
{
        if (sig == SIGINT && ++*interrupts >= 3) {
                log_warning("third interrupt: stopping the VM");
                run->status = 128 + SIGKILL;
                run->phase = PHASE_DONE;
                return;
        }
        if (run->phase != PHASE_RUNNING) {
                if (run->phase < PHASE_RUNNING) {
                        log_warning("%s before the service started: stopping the VM",
                                    strsignal(sig));
                        run->status = 128 + sig;
                        run->phase = PHASE_DONE;
                }
                return;
        }
        struct agent_request req = {.op = AGENT_OP_SIGNAL};
        req.u.signal = (struct agent_signal){.session = 0, .signo = sig};
        send_request(run, &req, on_signal_reply);
}

static void begin_stop(struct run *run)
{
        struct agent_request req = {.op = AGENT_OP_SHUTDOWN};
        req.u.shutdown_timeout_ms = SHUTDOWN_GRACE_MS / 2;
        _cleanup_err_ struct tn_err *err = NULL;
        (void)vm_agent_request(run->agent, &req, SHUTDOWN_GRACE_MS, on_shutdown_reply, run, &err);
        run->stop_deadline = mono_ms() + SHUTDOWN_GRACE_MS;
}

static void on_exec_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        struct exec_session *s = userdata;
        if (reply && reply->ok)
                return;
        exec_say(s, "exec: %s\n", reply ? reply->error : error);
        exec_finish(s, 127);
}

static void exec_input(struct exec_session *s);

static void on_input_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        struct exec_session *s = userdata;
        (void)error;
        if (!s->used || !s->in_req || (reply && reply->id != s->in_req))
                return; /* the session ended meanwhile */
        s->in_req = 0;
        if (!reply || !reply->ok)
                s->in_dead = true; /* no such session (any more): input has nowhere to go */
        exec_input(s);
}

static void on_kill_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        (void)reply;
        (void)error;
        (void)userdata; /* the exit event, or its absence, says the rest */
}

/* tenantd went away, or sent what no tenantd sends: the command is killed, as
 * tenantd kills a sandbox's when its client goes. */
static void exec_abandon(struct exec_session *s)
{
        if (!s->ended && !s->console) {
                struct agent_request req = {.op = AGENT_OP_SIGNAL};
                req.u.signal = (struct agent_signal){.session = s->id, .signo = SIGKILL};
                _cleanup_err_ struct tn_err *err = NULL;
                (void)vm_agent_request(s->run->agent, &req, REQUEST_TIMEOUT_MS, on_kill_reply, NULL,
                                       &err);
        }
        exec_close(s);
}

static void console_input(struct exec_session *s);

/* Passes the next whole frame tenantd sent on to the agent, unless one is in flight. */
static void exec_input(struct exec_session *s)
{
        if (s->console)
                return console_input(s);
        if (s->used && s->ended)
                s->in_len = 0; /* the command is gone: nothing to pass on */
        while (s->used && !s->in_req && s->in_len > 0) {
                struct exec_frame f;
                int r = exec_frame_decode(s->in, s->in_len, true, &f);
                if (r < 0) {
                        log_warning("exec: tenantd sent a malformed frame; the command is killed");
                        return exec_abandon(s);
                }
                if (r == 0)
                        return;
                struct agent_request req = {.op = AGENT_OP_STDIN};
                if (f.type == EXEC_WINSIZE && s->tty) {
                        uint16_t rows = (uint16_t)(f.data[0] << 8 | f.data[1]),
                                 cols = (uint16_t)(f.data[2] << 8 | f.data[3]);
                        req.op = AGENT_OP_RESIZE;
                        req.u.resize = (struct agent_resize){
                            .session = s->id, .rows = rows ? rows : 1, .cols = cols ? cols : 1};
                } else if (f.type == EXEC_STDIN && !s->in_eof && !s->in_dead) {
                        s->in_eof = f.len == 0;
                        req.u.stdin =
                            (struct agent_stdin){.session = s->id,
                                                 .data = (uint8_t *)f.data, /* read only */
                                                 .len = f.len,
                                                 .eof = f.len == 0};
                } else {
                        req.op = 0; /* nothing to pass on: dropped */
                }
                _cleanup_err_ struct tn_err *err = NULL;
                if (req.op && s->run->phase == PHASE_RUNNING &&
                    vm_agent_request(s->run->agent, &req, VM_AGENT_NO_TIMEOUT, on_input_reply, s,
                                     &err) == 0)
                        s->in_req = req.id;
                else if (req.op && req.op == AGENT_OP_STDIN)
                        s->in_dead = true;
                memmove(s->in, s->in + r, s->in_len - (size_t)r);
                s->in_len -= (size_t)r;
        }
}

/* Reads tenantd's frames while none is in flight to the agent. */
static void exec_read(struct exec_session *s)
{
        size_t cap = EXEC_FRAME_HEADER + EXEC_CLIENT_FRAME_MAX;
        if (!s->in && !(s->in = malloc(cap)))
                return exec_abandon(s);
        while (s->used && !s->in_req && s->in_len < cap) {
                ssize_t n = recv(s->conn, s->in + s->in_len, cap - s->in_len, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0)
                        return exec_abandon(s);
                s->in_len += (size_t)n;
                exec_input(s);
        }
}

static bool exec_wants_input(const struct exec_session *s)
{
        /* A console takes a frame when a whole one fits in what it holds for the guest. */
        return s->used && !s->ended && s->stdin_open && !s->in_req &&
               (!s->console || vm_console_room(s->con) >= EXEC_CLIENT_FRAME_MAX);
}

/* ---- console sessions ---- */

static void on_console_data(const uint8_t *data, size_t len, void *userdata)
{
        struct exec_session *s = userdata;
        if (!s->used || s->ended)
                return;
        if (len) { /* the guest's bytes, relayed as they are: the client's terminal shows them */
                exec_queue(s, EXEC_STDOUT, data, len, false);
                return;
        }
        exec_say(s, "\r\n[tenantd: the console closed: another client took it over, or the VM "
                    "stopped]\r\n");
        exec_finish(s, 1);
}

static void on_console_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        struct exec_session *s = userdata;
        if (reply && reply->ok)
                return;
        /* The console still shows what the kernel and the agent write there. */
        if (s->used && s->console && !s->ended)
                exec_say(s, "[tenantd: no shell on the console: %s]\r\n",
                         reply ? reply->error : error);
}

/* Asks the agent for a login shell on the console (unless one runs) and sets the
 * line's size: the same process rules as an exec (the manifest's user, groups,
 * workdir and environment, in the tenant's root). */
static void console_request(struct exec_session *s, uint16_t rows, uint16_t cols)
{
        const struct manifest *m = s->run->m;
        _cleanup_strv_free_ char **env = calloc(m->env_n + 1, sizeof(char *));
        for (size_t i = 0; env && i < m->env_n; i++)
                if (asprintf(&env[i], "%s=%s", m->env[i].name, m->env[i].value) < 0)
                        env[i] = NULL;
        char sh[] = "/bin/sh", l[] = "-l";
        char *argv[] = {sh, l, NULL};
        struct agent_request req = {.op = AGENT_OP_CONSOLE};
        req.u.console = (struct agent_console){.proc = {.argv = argv,
                                                        .argc = 2,
                                                        .env = env,
                                                        .n_env = env ? m->env_n : 0,
                                                        .uid = m->uid,
                                                        .gid = m->gid,
                                                        .workdir = m->workdir},
                                               .rows = rows ? rows : 1,
                                               .cols = cols ? cols : 1};
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_agent_request(s->run->agent, &req, REQUEST_TIMEOUT_MS, on_console_reply, s, &err) <
            0)
                on_console_reply(NULL, tn_err_msg(err), s);
}

/* tenantd's frames: what is typed goes to the console as it is, a window size to the
 * agent (the line's size), the end of input changes nothing (a terminal stays open). */
static void console_input(struct exec_session *s)
{
        while (s->used && !s->ended && s->in_len > 0) {
                struct exec_frame f;
                int r = exec_frame_decode(s->in, s->in_len, true, &f);
                if (r < 0) {
                        log_warning("console: tenantd sent a malformed frame; the session ends");
                        return exec_abandon(s);
                }
                if (r == 0)
                        return;
                if (f.type == EXEC_STDIN && f.len > 0) {
                        if (vm_console_room(s->con) < f.len)
                                return; /* again once the stream took what it holds */
                        (void)vm_console_write(s->con, f.data, f.len);
                        if (!s->used)
                                return;
                } else if (f.type == EXEC_WINSIZE && s->run->phase == PHASE_RUNNING) {
                        console_request(s, (uint16_t)(f.data[0] << 8 | f.data[1]),
                                        (uint16_t)(f.data[2] << 8 | f.data[3]));
                }
                memmove(s->in, s->in + r, s->in_len - (size_t)r);
                s->in_len -= (size_t)r;
        }
}

static void console_accept(struct run *run, struct exec_session *s, const struct runner_request *rq)
{
        s->console = true;
        s->stdin_open = s->tty = true;
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_console_open(run->vm, rq->force, on_console_data, s, &s->con, &err) < 0) {
                exec_say(s, "console: %s\n", tn_err_msg(err));
                exec_finish(s, 1);
                return;
        }
        console_request(s, rq->rows, rq->cols);
        console_input(s); /* what came with the request */
}

/* The one-line answer {"status":0|1,"detail":"..."} on a request's connection, which
 * it closes. */
static void answer_line(int conn, bool ok, const char *detail)
{
        _cleanup_free_ char *line = NULL;
        size_t len;
        if (runner_health_encode(ok, detail, &line, &len) == 0)
                (void)!send(conn, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(conn);
}

/* A health check asked for by tenantd: the answer is {"status":0|1,"detail":"..."}. */
static void on_health_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        int conn = (int)(intptr_t)userdata;
        bool ok = reply && reply->ok && reply->u.health.healthy;
        const char *detail = reply && reply->ok
                                 ? (reply->u.health.detail ? reply->u.health.detail : "")
                             : reply ? reply->error
                                     : error;
        answer_line(conn, ok, detail);
}

static void health_request(struct run *run, int conn, const struct runner_request *h)
{
        struct agent_request req = {.op = AGENT_OP_HEALTH};
        req.u.health.timeout_ms = h->timeout_ms;
        if (h->kind == RUNNER_HEALTH_TCP || h->kind == RUNNER_HEALTH_HTTP) {
                req.u.health.kind =
                    h->kind == RUNNER_HEALTH_TCP ? AGENT_HEALTH_TCP : AGENT_HEALTH_HTTP;
                req.u.health.port = h->port;
                req.u.health.path = (char *)h->path; /* read only */
        } else {
                req.u.health.kind = AGENT_HEALTH_EXEC;
                req.u.health.argv = (char **)h->argv; /* read only */
                req.u.health.argc = h->argc;
        }
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_agent_request(run->agent, &req, h->timeout_ms + 2000, on_health_reply,
                             (void *)(intptr_t)conn, &err) < 0)
                on_health_reply(NULL, tn_err_msg(err), (void *)(intptr_t)conn);
}

/* A live pids.max for the guest's service cgroup, asked for by tenantd's `set`: the
 * answer is {"status":0|1,"detail":"..."} as a health check's. The agent's reply only
 * says whether the guest did it; the host's own cgroup bounds QEMU either way. */
static void on_limits_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        int conn = (int)(intptr_t)userdata;
        bool ok = reply && reply->ok;
        const char *detail = ok ? "" : reply ? reply->error : error;
        /* tenantd does not wait for this answer (monitor_glue.c): a refusal is said in
         * the tenant's log, the guest's words escaped. */
        if (!ok) {
                size_t n = strnlen(detail, 256);
                char shown[LOGTEXT_MAX(256)];
                shown[logtext_show_line(detail, n, shown)] = '\0';
                log_warning("the guest did not take the new pids.max: %s", shown);
        }
        answer_line(conn, ok, detail);
}

static void limits_request(struct run *run, int conn, const struct runner_request *l)
{
        struct agent_request req = {.op = AGENT_OP_LIMITS};
        req.u.limits.pids_max = l->pids_max;
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_agent_request(run->agent, &req, REQUEST_TIMEOUT_MS, on_limits_reply,
                             (void *)(intptr_t)conn, &err) < 0)
                on_limits_reply(NULL, tn_err_msg(err), (void *)(intptr_t)conn);
}

/* One exec request: a line {"argv":[...]}; the session's output and status go back on
 * the connection in the frames of exec_proto.h. The peer is tenantd (the socket is
 * root's, in a 0700 directory); still, the request is bounded and checked, descriptors
 * sent with it are closed unused, and a malformed one is answered with status 127. */
static void exec_accept(struct run *run)
{
        int conn = accept4(run->exec_listen, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0)
                return;
        struct timeval tv = {.tv_sec = 1};
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char buf[RUNNER_REQUEST_MAX] = {0}; /* (cppcheck cannot see recvmsg fill it) */
        char cbuf[CMSG_SPACE(sizeof(int) * 3)];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                                close(((int *)CMSG_DATA(cm))[i]);
        fcntl(conn, F_SETFL, O_NONBLOCK);
        struct exec_session *s = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(run->exec) && !s; i++)
                if (!run->exec[i].used)
                        s = &run->exec[i];
        struct exec_session tmp = {.conn = conn};
        struct runner_request rq;
        _cleanup_err_ struct tn_err *rerr = NULL;
        /* tenantd may send input frames right behind the request: they are the
         * session's, after the line. */
        size_t line = n > 0 ? (size_t)n : 0;
        const char *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
        if (nl)
                line = (size_t)(nl - buf) + 1;
        bool decoded = n > 0 && runner_request_decode(buf, line, &rq, &rerr) == 0;
        bool session = decoded && (rq.kind == RUNNER_EXEC || rq.kind == RUNNER_CONSOLE);
        if (decoded && !session && run->phase == PHASE_RUNNING) {
                fcntl(conn, F_SETFL, 0);
                if (rq.kind == RUNNER_LIMITS)
                        limits_request(run, conn, &rq);
                else
                        health_request(run, conn, &rq);
                runner_request_clear(&rq);
                return;
        }
        bool ok = session && run->phase == PHASE_RUNNING && s;
        if (!ok) {
                tmp.used = true;
                exec_say(&tmp, "exec: %s\n",
                         !decoded                      ? (rerr ? tn_err_msg(rerr) : "no request")
                         : !s                          ? "too many exec sessions"
                         : run->phase != PHASE_RUNNING ? "the service is not running"
                                                       : "bad request");
                if (decoded)
                        runner_request_clear(&rq);
                exec_finish(&tmp, 127);
                exec_flush(&tmp);
                exec_close(&tmp); /* it had its chance: a few bytes, a non-blocking send */
                return;
        }
        *s = tmp;
        s->used = true;
        /* 0 is the service, AGENT_CONSOLE_SESSION the console's shell */
        if (++run->next_session == AGENT_CONSOLE_SESSION)
                run->next_session = 1;
        s->id = run->next_session;
        s->run = run;
        s->stdin_open = rq.stdin_open || rq.tty || rq.kind == RUNNER_CONSOLE;
        s->tty = rq.tty;
        if (s->stdin_open && (size_t)n > line) {
                s->in = malloc(EXEC_FRAME_HEADER + EXEC_CLIENT_FRAME_MAX);
                if (s->in) {
                        memcpy(s->in, buf + line, (size_t)n - line);
                        s->in_len = (size_t)n - line;
                }
        }
        if (rq.kind == RUNNER_CONSOLE) {
                console_accept(run, s, &rq);
                runner_request_clear(&rq);
                return;
        }
        const struct manifest *m = run->m;
        _cleanup_strv_free_ char **env = calloc(m->env_n + 1, sizeof(char *));
        for (size_t i = 0; env && i < m->env_n; i++)
                if (asprintf(&env[i], "%s=%s", m->env[i].name, m->env[i].value) < 0)
                        env[i] = NULL;
        struct agent_request req = {.op = AGENT_OP_EXEC};
        req.u.exec = (struct agent_exec){.session = s->id,
                                         .proc = {.argv = (char **)rq.argv, /* read only */
                                                  .argc = rq.argc,
                                                  .env = env,
                                                  .n_env = env ? m->env_n : 0,
                                                  .uid = m->uid,
                                                  .gid = m->gid,
                                                  .groups = m->groups,
                                                  .n_groups = m->groups_n,
                                                  .workdir = m->workdir},
                                         .stdin_open = s->stdin_open,
                                         .tty = rq.tty,
                                         .rows = rq.rows,
                                         .cols = rq.cols};
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_agent_request(run->agent, &req, REQUEST_TIMEOUT_MS, on_exec_reply, s, &err) < 0) {
                exec_say(s, "exec: %s\n", tn_err_msg(err));
                exec_finish(s, 127);
        }
        runner_request_clear(&rq); /* the request was encoded for the agent */
        exec_input(s);             /* what came with the request */
}

static void exec_listen_open(struct run *run)
{
        run->exec_listen = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/exec.sock", run->vm->dir) >=
            (int)sizeof(sa.sun_path))
                return;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        unlink(sa.sun_path);
        mode_t old = umask(0077);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
                umask(old);
                if (fd >= 0)
                        close(fd);
                return;
        }
        umask(old);
        run->exec_listen = fd;
}

static void loop(struct run *run, struct vm_conn *conn, int sfd)
{
        exec_listen_open(run);
        int interrupts = 0;
        bool stop_sent = false;
        while (run->phase != PHASE_DONE) {
                if (run->phase == PHASE_STOPPING && !stop_sent) {
                        begin_stop(run);
                        stop_sent = true;
                }
                struct pollfd fds[4 + ARRAY_SIZE(run->exec)] = {
                    {.fd = vm_agent_fd(run->agent), .events = vm_agent_events(run->agent)},
                    {.fd = sfd, .events = POLLIN},
                    {.fd = vm_conn_fd(conn), .events = POLLIN},
                    {.fd = run->exec_listen, .events = POLLIN},
                };
                /* Exec sessions with output for tenantd wait for their socket only. */
                bool lingering = false;
                for (size_t i = 0; i < ARRAY_SIZE(run->exec); i++) {
                        struct exec_session *x = &run->exec[i];
                        /* A running session's socket is watched even for no event:
                         * its hang-up means tenantd (its client) went away. */
                        short ev = (short)((x->used && x->len ? POLLOUT : 0) |
                                           (exec_wants_input(x) ? POLLIN : 0));
                        bool watch = ev || (x->used && !x->ended);
                        fds[4 + i] = (struct pollfd){.fd = watch ? x->conn : -1, .events = ev};
                        lingering |= x->used && x->ended;
                }
                int timeout = vm_agent_timeout_ms(run->agent);
                if (lingering && (timeout < 0 || timeout > 1000))
                        timeout = 1000;
                for (size_t i = 0; i < ARRAY_SIZE(run->exec); i++)
                        if (run->exec[i].used && run->exec[i].end_at &&
                            (timeout < 0 || timeout > (int)CONSOLE_LINGER_MS))
                                timeout = (int)CONSOLE_LINGER_MS;
                if (run->denied) {
                        int due =
                            notifier_report(run->denied, mono_ms(), false, report_denied, run);
                        if (due >= 0 && (timeout < 0 || due < timeout))
                                timeout = due;
                }
                if (stop_sent) {
                        uint64_t now = mono_ms();
                        int left = run->stop_deadline > now ? (int)(run->stop_deadline - now) : 0;
                        timeout = timeout < 0 || left < timeout ? left : timeout;
                }
                /* A report held back by the once-a-second rule is written when its second
                 * is up, whether or not the guest reports again. */
                if (run->limits_pending) {
                        uint64_t now = mono_ms(), due = run->limits_written_ms + 1000;
                        if (now >= due)
                                limits_write(run);
                        else if (timeout < 0 || (int)(due - now) < timeout)
                                timeout = (int)(due - now);
                }
                if (poll(fds, ARRAY_SIZE(fds), timeout) < 0 && errno != EINTR) {
                        fail(run, "poll: %s", strerror(errno));
                        break;
                }
                _cleanup_err_ struct tn_err *err = NULL;
                if (fds[0].revents) {
                        int r = vm_agent_handle(run->agent, fds[0].revents, &err);
                        if (r == -ECONNRESET && stop_sent) {
                                run->phase = PHASE_DONE; /* powering off closes the port */
                        } else if (r < 0) {
                                fail(run, "%s; stopping the VM", tn_err_msg(err));
                                break;
                        }
                }
                if (vm_agent_tick(run->agent, &err) < 0) {
                        fail(run, "%s; stopping the VM", tn_err_msg(err));
                        break;
                }
                struct signalfd_siginfo si;
                if ((fds[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
                        handle_signal(run, (int)si.ssi_signo, &interrupts);
                if (fds[2].revents)
                        vm_conn_dispatch(conn);
                uint64_t now = mono_ms();
                for (size_t i = 0; i < ARRAY_SIZE(run->exec); i++) {
                        struct exec_session *x = &run->exec[i];
                        short rev = x->used && fds[4 + i].fd == x->conn ? fds[4 + i].revents : 0;
                        if (rev & POLLOUT)
                                exec_flush(x);
                        if (x->used && (rev & (POLLIN | POLLHUP | POLLERR)) && exec_wants_input(x))
                                exec_read(x);
                        else if (x->used && (rev & (POLLHUP | POLLERR)))
                                exec_abandon(x);
                        if (x->used && x->console && !x->ended && x->in_len)
                                console_input(x); /* the stream took what it held */
                        if (x->used && x->console && !x->ended && x->end_at && now >= x->end_at)
                                exec_finish(x, x->end_status);
                        if (x->used && x->ended && now >= x->linger_until)
                                exec_close(x); /* tenantd did not take the end in time */
                }
                /* After the sessions: a console whose client left lets go of libvirt's
                 * console before a new client asks for it. */
                if (fds[3].revents)
                        exec_accept(run);
                if (stop_sent && mono_ms() >= run->stop_deadline)
                        run->phase = PHASE_DONE;
        }
        for (size_t i = 0; i < ARRAY_SIZE(run->exec); i++)
                if (run->exec[i].used) {
                        exec_finish(&run->exec[i], 128 + SIGKILL);
                        exec_close(&run->exec[i]);
                }
        if (run->exec_listen >= 0)
                close(run->exec_listen);
}

/* After a failure, the end of the guest's console says why more often than not. The
 * text comes from the guest: at most CONSOLE_TAIL bytes, each line prefixed, control
 * characters and non-ASCII bytes replaced, so it cannot forge the operator's terminal. */
#define CONSOLE_TAIL 1536
static void print_console_tail(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
                return;
        char buf[CONSOLE_TAIL + 1];
        off_t from = st.st_size > CONSOLE_TAIL ? st.st_size - CONSOLE_TAIL : 0;
        ssize_t n = pread(fd, buf, CONSOLE_TAIL, from);
        if (n <= 0)
                return;
        buf[n] = '\0';
        char *p = buf;
        if (from > 0 && (p = strchr(buf, '\n')))
                p++; /* start at a whole line */
        if (!p)
                return;
        fprintf(stderr, "the guest's console ended with:\n");
        for (char *save = NULL, *line = strtok_r(p, "\r\n", &save); line;
             line = strtok_r(NULL, "\r\n", &save)) {
                for (char *c = line; *c; c++)
                        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                                *c = '?';
                fprintf(stderr, "  console: %s\n", line);
        }
}

/* TENANTD_VM_TIMING=1: the summary line (bench/vm-start reads it), then where the start
 * went, step by step: each step's end in ms since the start of the run, and how long
 * it took. */
static void print_timing(const struct run *run)
{
        uint64_t end = mono_ms();
#define SINCE(t) ((t) ? (long long)((t)-run->t0) : -1LL)
        fprintf(stderr,
                "timing: libvirt %lld ms, domain created %lld ms, agent ready %lld ms, service "
                "started %lld ms, service exited %lld ms, cleaned up %lld ms\n",
                SINCE(run->t_connected), SINCE(run->t_created), SINCE(run->t_ready),
                SINCE(run->t_started), SINCE(run->t_exited), SINCE(end));
        if (!run->vm)
                return;
        const struct vm_start_times *v = &run->vm->times;
        const struct {
                const char *what;
                uint64_t at;
        } steps[] = {
            {"before libvirt (the profile, network, volumes)", run->t_prepared},
            {"libvirt connection", run->t_connected},
            {"state directory, shares checked", v->shares},
            {"TSC rate (what the 20 ms window still needed)", v->tsc},
            {"domain XML written", v->xml},
            {"libvirt until QEMU's exec (tick resolution)", v->qemu_exec},
            {"libvirt from QEMU's exec to CreateXML's return", v->created},
            {"QEMU checked (user, seccomp sandbox)", v->checked},
            {"memory limit, emulator quota (libvirt)", v->limits},
            {"QEMU and virtiofsd into the tenant's cgroups", v->cgroup},
            {"agent channel connected", run->t_channel},
            {"guest boot to the agent's ready event", run->t_ready},
            {"hello, setup, start answered", run->t_started},
        };
        fprintf(stderr, "timing: the run started at CLOCK_MONOTONIC %llu ms\n",
                (unsigned long long)run->t0);
        uint64_t prev = run->t0;
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
                if (!steps[i].at)
                        continue;
                /* QEMU's exec time is rounded to the kernel's tick: it may seem to come
                 * before the XML was handed over. */
                long long took = steps[i].at >= prev ? (long long)(steps[i].at - prev) : 0;
                fprintf(stderr, "timing: %6lld ms (+%5lld) %s\n", SINCE(steps[i].at), took,
                        steps[i].what);
                if (steps[i].at > prev)
                        prev = steps[i].at;
        }
#undef SINCE
}

static const char *image_dir(void)
{
        const char *d = getenv("TENANTD_VM_IMAGE_DIR");
        if (d && *d)
                return d;
        /* Run from a source tree's build directory: its vm/ (make vm-image; buildtree.h). */
        static char tree[PATH_MAX];
        const char *bin = buildtree_bindir();
        if (bin && snprintf(tree, sizeof(tree), "%s/vm", bin) < (int)sizeof(tree) &&
            access(tree, F_OK) == 0)
                return tree;
        return TENANTD_VMIMAGEDIR;
}

static uint32_t boot_timeout(bool kvm)
{
        const char *s = getenv("TENANTD_VM_BOOT_TIMEOUT");
        if (s && *s) {
                char *end;
                unsigned long v = strtoul(s, &end, 10);
                if (*end == '\0' && v > 0 && v <= 600)
                        return (uint32_t)v * 1000;
        }
        return kvm ? BOOT_TIMEOUT_KVM_MS : BOOT_TIMEOUT_TCG_MS;
}

/* A descriptor a keeper or tenantctl passed in the environment (then removed from
 * it, so the guest's processes, which never see the host's environment anyway, and
 * anything the runner starts do not inherit the word), or -1. */
static int env_fd(const char *name)
{
        const char *s = getenv(name);
        int fd = -1;
        if (s && *s) {
                char *end;
                long v = strtol(s, &end, 10);
                if (*end == '\0' && v > 2 && v < INT_MAX && fcntl((int)v, F_GETFD) >= 0) {
                        fd = (int)v;
                        fcntl(fd, F_SETFD, FD_CLOEXEC);
                }
        }
        unsetenv(name);
        return fd;
}

/* What the guest's filter does (guest_seccomp.h), from the manifest's profile: its
 * notify rules' calls, or, learning, every call answered as the profile would. */
static int seccomp_prepare(struct run *run, struct tn_err **err)
{
        _cleanup_policy_ struct policy *p = NULL;
        if (policy_load(run->m->policy.seccomp, &p, err) < 0)
                return tn_err_wrap(err, "policy.seccomp");
        struct agent_seccomp *sc = &run->seccomp;
        if (run->learn_fd >= 0) {
                int answers[AGENT_NR_MAX];
                policy_learning_answers(p, answers, AGENT_NR_MAX);
                sc->refuse = calloc(AGENT_NR_MAX, sizeof(*sc->refuse));
                if (!sc->refuse)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                for (uint16_t nr = 0; nr < AGENT_NR_MAX; nr++)
                        if (answers[nr] > 0 && answers[nr] <= 4095)
                                sc->refuse[sc->n_refuse++] = (struct agent_errno_rule){
                                    .nr = nr, .err = (uint16_t)answers[nr]};
                sc->set = sc->learn = true;
                return 0;
        }
        size_t conditional = policy_notified_calls(p, run->notified, AGENT_NR_MAX);
        if (conditional)
                log_warning("warning: \"%s\": %zu notify rules of profile %s have argument "
                            "conditions; a microVM's agent notifies by call number only and "
                            "leaves them out",
                            run->m->name, conditional, p->name);
        for (size_t nr = 0; nr < AGENT_NR_MAX; nr++)
                sc->n_notify += run->notified[nr];
        if (!sc->n_notify)
                return 0;
        sc->notify = calloc(sc->n_notify, sizeof(*sc->notify));
        int r = notifier_new(-1, &run->denied);
        if (!sc->notify || r < 0)
                return tn_err_setx(err, ENOMEM, "out of memory");
        sc->n_notify = 0;
        for (uint16_t nr = 0; nr < AGENT_NR_MAX; nr++)
                if (run->notified[nr])
                        sc->notify[sc->n_notify++] = nr;
        sc->set = true;
        return 0;
}

int cmd_run_vm(const struct manifest *m, char **argv, const char *state_dir,
               const char *storage_dir, const char *master_key, const sigset_t *forwarded)
{
        _cleanup_err_ struct tn_err *err = NULL;
        struct run run = {.m = m,
                          .argv = argv,
                          .status = EXIT_FAILURE,
                          .t0 = mono_ms(),
                          .event_fd = env_fd("TENANTD_EVENT_FD"),
                          .learn_fd = env_fd("TENANTD_LEARN_FD")};
        const char *timing = getenv("TENANTD_VM_TIMING");
        run.timing = timing && strcmp(timing, "1") == 0;
        struct net_tenant net = {0};
        bool have_net = false, tap = false;
        _cleanup_close_ int sfd = signalfd(-1, forwarded, SFD_CLOEXEC);
        _cleanup_(vm_conn_closep) struct vm_conn *conn = NULL;
        int r = 0;

        r = seccomp_prepare(&run, &err);
        if (r >= 0 && m->network.mode == NET_PRIVATE) {
                uint32_t base;
                r = uidrange_get(state_dir, m->name, UIDRANGE_DEFAULT_BASE, &base, &err);
                if (r >= 0)
                        r = net_private_prepare(m, state_dir,
                                                (base - UIDRANGE_DEFAULT_BASE) / UIDRANGE_SIZE,
                                                &net, &err);
                if (r >= 0) {
                        have_net = true;
                        r = net_private_attach_tap(&net, m, &err);
                        tap = r >= 0 || net.firewall;
                }
                if (r < 0)
                        tn_err_wrap(&err, "network");
        }
        /* The volumes on the host, their roots the service's: virtiofsd creates files
         * with the guest's own ids. */
        bool volumes = false;
        if (r >= 0 && m->volumes_n) {
                r = volumes_open(m, storage_dir, master_key, m->uid, m->gid, &err);
                volumes = r >= 0;
        }
        run.t_prepared = mono_ms();
        if (r >= 0)
                r = vm_conn_open(NULL, on_vm_event, &run, &conn, &err);
        run.t_connected = mono_ms();
        if (r >= 0) {
                struct vm_config cfg = {.m = m,
                                        .state_dir = state_dir,
                                        .image_dir = image_dir(),
                                        .net = have_net ? &net : NULL,
                                        .autodestroy = true};
                r = vm_start(conn, &cfg, &run.vm, &err);
                run.t_created = mono_ms();
        }
        if (r >= 0 && have_net) {
                r = net_private_shape_tap(&net, &err);
                if (r < 0)
                        tn_err_wrap(&err, "network");
        }
        if (r >= 0) {
                run.net = have_net ? &net : NULL;
                static const struct vm_agent_callbacks cb = {.ready = on_ready,
                                                             .log = on_log,
                                                             .exit = on_exit_event,
                                                             .denied = on_denied,
                                                             .learned = on_learned,
                                                             .limits = on_limits};
                log_debug("domain %s started (QEMU pid %d)", run.vm->domain, (int)run.vm->qemu_pid);
                /* Said once, at the start: it explains a slow boot and a slow service. */
                if (!run.vm->kvm)
                        log_notice("note: \"%s\" runs under QEMU's emulation (TCG): this host "
                                   "offers no hardware virtualization (vmx/svm)",
                                   m->name);
                r = vm_agent_connect(run.vm->agent_socket, boot_timeout(run.vm->kvm), &cb, &run,
                                     &run.agent, &err);
                run.t_channel = mono_ms();
        }
        if (r < 0) {
                log_error("cannot start \"%s\": %s", m->name, tn_err_msg(err));
        } else {
                loop(&run, conn, sfd);
        }

        if (run.failed && run.vm)
                print_console_tail(run.vm->console_log);

        /* Teardown, whatever happened. */
        if (run.denied)
                (void)notifier_report(run.denied, mono_ms(), true, report_denied, &run);
        notifier_free(run.denied);
        free(run.seccomp.notify);
        free(run.seccomp.refuse);
        if (run.learn_fd >= 0 && !run.learned && run.status == 0)
                log_warning("\"%s\": the guest agent reported no learned calls", m->name);
        vm_agent_free(run.agent);
        if (run.vm) {
                _cleanup_err_ struct tn_err *derr = NULL;
                if (vm_destroy(run.vm, &derr) < 0)
                        log_warning("cleanup of \"%s\": %s", m->name, tn_err_msg(derr));
                vm_remove_files(run.vm);
                vm_free(run.vm);
        }
        if (tap)
                net_private_detach_tap(&net);
        if (volumes)
                volumes_close(m->name); /* after the domain: its virtiofsd held them */
        if (run.timing)
                print_timing(&run);
        return run.status;
}
