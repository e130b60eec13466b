/* tenant-agent.c — /init (PID 1) inside every tenantd microVM.
 *
 * Boot: mount /proc /sys /dev /run /tmp, load the modules the initramfs lists, bring lo
 * up, open the virtio-serial port org.tenantd.agent.0 and say "ready". Then serve the
 * protocol of docs/agent-protocol.md on that port until a shutdown op (or SIGTERM,
 * SIGINT, SIGPWR) powers the guest off.
 *
 * One thread, one poll() loop. What can grow is bounded: a frame is at most 1 MiB (the
 * reader drops longer lines), output waits in one queue, and when the host stops
 * reading, the agent stops reading the services' pipes once 4 MiB wait (the services
 * then block on a full pipe) and stops reading requests once 8 MiB wait. As PID 1 it
 * reaps every child, its own and orphans, through a signalfd for SIGCHLD.
 *
 * PID 1 must never exit (the kernel would panic): nothing here calls exit() after
 * boot; a failure to boot powers the guest off after saying why on the console. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "proto/agent_proto.h"
#include "lib/clock.h"
#include "lib/cleanup.h"
#include "lib/seccomp_notify.h"
#include "guest_seccomp.h"
#include "guest_sys.h"

#define AGENT_VERSION "1.0"
#define MODULE_LIST "/lib/modules/load.list"
#define PORT_WAIT_MS 10000
#define QUEUE_LOG_LIMIT (4u << 20)  /* stop reading service output above this */
#define QUEUE_PORT_LIMIT (8u << 20) /* stop reading requests above this */
#define EXEC_SESSIONS_MAX 32
#define SESSIONS_MAX (EXEC_SESSIONS_MAX + 1)
#define HEALTH_MAX 8
#define HEALTH_ANSWER_MAX 256        /* bytes of an http check's answer read for its status line */
#define HEALTH_DRAIN_MAX (64u << 10) /* bytes read after it, so the close is not a reset */
#define HUP_RETRY_MS 100
#define LISTENER_WAIT_MS 10000 /* for the service's seccomp listener, from fork to execve */

extern char **environ;

static void console_exited(int status);

struct session {
        bool used;
        uint32_t id;
        pid_t pid;
        int out[2]; /* stdout, stderr read ends; -1 once at end of file */
        int in;     /* exec stdin write end (with a terminal, its master), -1 when done */
        uint8_t *in_buf;
        size_t in_len, in_off;
        bool stdin_open; /* fed by stdin requests (see agent_proto.h) */
        bool in_eof;     /* the host's input ended: close once in_buf is written */
        bool tty;        /* out[0] and in are the terminal's master */
        uint32_t in_req; /* the stdin request to answer once in_buf is written, 0: none */
};

struct health_check {
        bool used;
        bool answered; /* timed out and answered; the child is still to be reaped */
        uint32_t req_id;
        enum agent_health_kind kind;
        int sock;
        pid_t pid;
        uint16_t port;
        uint32_t timeout_ms;
        uint64_t deadline;
        /* http: connect, send req[0..req_len), read the answer's first line into ans */
        bool connected;
        size_t req_len, req_off, ans_len;
        char path[AGENT_HEALTH_PATH_MAX + 1];
        char req[AGENT_HEALTH_PATH_MAX + 128];
        char ans[HEALTH_ANSWER_MAX];
};

static struct {
        int port;
        int sigfd;
        struct agent_reader reader;
        char *q; /* output queue: q[qhead..qlen) waits to be written */
        size_t qhead, qlen, qcap;
        bool hup;       /* the host side is not connected: retry at hup_retry */
        bool connected; /* data came from the host since the last hangup */
        uint64_t hup_retry;
        uint64_t boot_ms;
        struct session sessions[SESSIONS_MAX];
        struct health_check checks[HEALTH_MAX];
        uint32_t service_uid, service_gid;
        /* the login shell on the serial console (op_console), 0: none; its line */
        pid_t console_pid;
        int console_fd;
        /* The service's filter ("seccomp" in start): its listener, answered and
         * reported here (lib/seccomp_notify.h), and the same filter with EPERM in
         * place of the listener for exec sessions (guest_seccomp.h). */
        struct notifier *notifier;
        struct sock_filter exec_filter[GUEST_FILTER_MAX];
        size_t exec_filter_len;
        /* The tenant's cgroup (guest_cgroup_setup): every child joins it through
         * cg_procs; cg_watch wakes the loop when a counter changed, which is sent in a
         * limits event at most once a second (limits_due: one is owed). */
        int cg_procs, cg_watch;
        struct agent_limits limits_sent;
        uint64_t limits_sent_ms;
        bool limits_due;
} A = {.port = -1, .sigfd = -1, .console_fd = -1, .cg_procs = -1, .cg_watch = -1};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        char line[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n > sizeof(line) - 2)
                n = sizeof(line) - 2;
        line[n++] = '\n';
        dprintf(STDERR_FILENO, "tenant-agent: %.*s", n, line);
}

static void warn_msg(const char *msg)
{
        say("%s", msg);
}

static uint64_t now_ms(void)
{
        return clock_ms(CLOCK_MONOTONIC);
}

/* ---- output ---- */

static void queue(char *frame, size_t len)
{
        if (A.qhead > 0 && A.qhead == A.qlen)
                A.qhead = A.qlen = 0;
        if (A.qlen + len > A.qcap) {
                if (A.qhead > 0) {
                        memmove(A.q, A.q + A.qhead, A.qlen - A.qhead);
                        A.qlen -= A.qhead;
                        A.qhead = 0;
                }
                size_t cap = A.qcap ? A.qcap : 65536;
                while (cap < A.qlen + len)
                        cap *= 2;
                char *q = cap > A.qcap ? realloc(A.q, cap) : A.q;
                if (!q) {
                        say("out of memory: a frame of %zu bytes is dropped", len);
                        free(frame);
                        return;
                }
                A.q = q;
                A.qcap = cap;
        }
        memcpy(A.q + A.qlen, frame, len);
        A.qlen += len;
        free(frame);
}

static size_t queued(void)
{
        return A.qlen - A.qhead;
}

static void send_error(uint32_t id, const char *text)
{
        char *f;
        size_t len;
        if (agent_error_encode(id, text, &f, &len) == 0)
                queue(f, len);
}

static void send_reply(const struct agent_reply *rep)
{
        char *f;
        size_t len;
        int r = agent_reply_encode(rep, &f, &len);
        if (r < 0) {
                send_error(rep->id, "internal error: the reply could not be encoded");
                return;
        }
        queue(f, len);
}

static void send_ok(uint32_t id, enum agent_op op)
{
        struct agent_reply rep = {.id = id, .ok = true, .op = op};
        send_reply(&rep);
}

static void send_event(const struct agent_event *ev)
{
        char *f;
        size_t len;
        if (agent_event_encode(ev, &f, &len) == 0)
                queue(f, len);
}

static void port_hangup(void)
{
        /* The host side is not connected (virtio_console reports POLLHUP and reads
         * return 0 then). Whatever half line was buffered belonged to the old
         * connection. Output stays queued for the next one. */
        if (A.connected)
                say("host side of the port is not connected; waiting");
        A.connected = false;
        A.hup = true;
        A.hup_retry = now_ms() + HUP_RETRY_MS;
        agent_reader_free(&A.reader);
        agent_reader_init(&A.reader);
}

static void flush(void)
{
        while (queued() > 0) {
                ssize_t n = write(A.port, A.q + A.qhead, queued());
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        if (errno != EAGAIN)
                                port_hangup();
                        return;
                }
                A.qhead += (size_t)n;
        }
        A.qhead = A.qlen = 0;
}

/* ---- processes ---- */

struct spawn_failure {
        int step; /* index into spawn_steps */
        int err;
};

static const char *const spawn_steps[] = {
    "join the tenant's cgroup", "chroot into the root",    "setgroups", "setgid", "setuid",
    "chdir to the workdir",     "load the seccomp filter", "execute"};
#define SPAWN_LISTENER_SLOT (-1) /* a record's step: err is where the listener will be */

/* A filter for the child (guest_seccomp.h); with `listener`, the agent takes its
 * listener by pidfd_getfd() and writes a byte to `go` once it has it. */
struct spawn_filter {
        const struct sock_filter *insns;
        size_t len;
        bool listener;
        int go; /* the child's read end */
};

/* Step 5 of the child: no_new_privs, then the filter. With a listener: the number it
 * will get (the lowest free one: nothing else opens a descriptor meanwhile) goes to
 * the agent first, and the child waits until the agent has taken it, so that the
 * listener is not closed by execve() before; calls the filter notifies meanwhile (in
 * learning mode, every call, this read included) wait for the agent's answer. */
static int child_filter(const struct spawn_filter *sf, int report)
{
        struct sock_fprog prog = {.len = (unsigned short)sf->len,
                                  .filter = (struct sock_filter *)sf->insns};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        if (!sf->listener)
                return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
        int slot = fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (slot < 0)
                return -1;
        close(slot);
        struct spawn_failure rec = {.step = SPAWN_LISTENER_SLOT, .err = slot};
        if (write(report, &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
                return -1;
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog) <
            0)
                return -1;
        char c;
        ssize_t n;
        do
                n = read(sf->go, &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
                errno = EPIPE;
                return -1;
        }
        return 0;
}

/* The child's half: never returns. Reports the failing step on `report`. With a
 * terminal, in, out and err are its slave, which becomes the controlling terminal of
 * the new session (the guest's own devpts: nothing of the host's). */
static void __attribute__((noreturn)) child(const struct agent_proc *p, int in, int out, int err,
                                            bool tty, int report, const struct spawn_filter *sf)
{
        struct spawn_failure f = {0};
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        /* Before the dup2()s below, which may reuse its number. */
        if (A.cg_procs >= 0 && write(A.cg_procs, "0", 1) != 1)
                goto fail;
        f.step++;
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
                _exit(127);
        if (tty && ioctl(0, TIOCSCTTY, 0) < 0)
                _exit(127);
        const char *root = guest_root();
        if (strcmp(root, "/") != 0 && (chroot(root) < 0 || chdir("/") < 0))
                goto fail;
        f.step++;
        gid_t groups[AGENT_GROUPS_MAX];
        for (size_t i = 0; i < p->n_groups; i++)
                groups[i] = p->groups[i];
        if (setgroups(p->n_groups, groups) < 0)
                goto fail;
        f.step++;
        if (setresgid(p->gid, p->gid, p->gid) < 0)
                goto fail;
        f.step++;
        if (setresuid(p->uid, p->uid, p->uid) < 0)
                goto fail;
        f.step++;
        if (chdir(p->workdir) < 0)
                goto fail;
        f.step++;
        if (sf && sf->len && child_filter(sf, report) < 0)
                goto fail;
        f.step++;
        environ = p->env;
        execvp(p->argv[0], p->argv);
fail:
        f.err = errno;
        if (write(report, &f, sizeof(f)) < 0)
                _exit(127);
        _exit(127);
}

static const struct spawn_filter *exec_filter(void);

/* The listener of the child's filter, taken from it (child_filter) into n->fd. A
 * descriptor in that slot that is not a seccomp listener is refused. Returns 1 when it
 * is there, 0 when not yet, or -errno. */
static int take_listener(int pidfd, int slot, struct notifier *n)
{
        int fd = (int)syscall(SYS_pidfd_getfd, pidfd, slot, 0);
        if (fd < 0)
                return errno == EBADF ? 0 : -errno;
        char link[64], want[] = "anon_inode:seccomp notify", path[32];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, link, sizeof(link));
        if (len != (ssize_t)strlen(want) || memcmp(link, want, (size_t)len) != 0) {
                close(fd);
                return -EBADF;
        }
        n->fd = fd;
        return 1;
}

/* Waits for the child's report: EOF once the program runs, a record when a step
 * failed. With a notifier, the child first says where its listener will be, and until
 * execve() the agent answers the calls it notifies (all of them, learning). Returns 0
 * (running), 1 with *f filled (a step failed), or -errno. */
static int spawn_wait(pid_t pid, int report, int go, struct notifier *n, struct spawn_failure *f)
{
        int pidfd = -1, slot = -1, r = 0;
        uint64_t deadline = now_ms() + LISTENER_WAIT_MS;
        for (;;) {
                bool waiting = slot >= 0 && n->fd < 0;
                struct pollfd p[2] = {{.fd = report, .events = POLLIN},
                                      {.fd = n && n->fd >= 0 ? n->fd : -1, .events = POLLIN}};
                uint64_t now = now_ms();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                int timeout = waiting ? 1 : (int)(deadline - now);
                if (poll(p, 2, timeout) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (p[1].revents)
                        (void)notifier_answer(n, now_ms());
                if (waiting) {
                        r = take_listener(pidfd, slot, n);
                        if (r < 0)
                                break;
                        if (r > 0 && write(go, "g", 1) != 1) {
                                r = -errno;
                                break;
                        }
                        r = 0;
                }
                if (!p[0].revents)
                        continue;
                ssize_t got;
                do
                        got = read(report, f, sizeof(*f));
                while (got < 0 && errno == EINTR);
                if (got == 0)
                        break; /* close-on-exec: the program runs */
                if (got != (ssize_t)sizeof(*f)) {
                        r = -EIO;
                        break;
                }
                if (f->step != SPAWN_LISTENER_SLOT) {
                        r = 1;
                        break;
                }
                if (!n || slot >= 0 || f->err < 0 ||
                    (pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
                        r = -EPROTO;
                        break;
                }
                slot = f->err;
        }
        if (pidfd >= 0)
                close(pidfd);
        return r;
}

/* Starts p with its stdio on in/out/err (the parent keeps its own ends), under filter
 * sf if not NULL; with sf->listener, n receives the listener (n->fd). Returns the pid
 * once the program runs, or an error naming the step that failed. */
static int spawn(const struct agent_proc *p, int in, int out, int err, bool tty,
                 const struct spawn_filter *sf, struct notifier *n, pid_t *ret, struct tn_err **e)
{
        int report[2], go[2] = {-1, -1};
        if (pipe2(report, O_CLOEXEC) < 0)
                return tn_err_set(e, errno, "pipe");
        if (sf && sf->listener && pipe2(go, O_CLOEXEC) < 0) {
                int saved = errno;
                close(report[0]);
                close(report[1]);
                return tn_err_set(e, saved, "pipe");
        }
        struct spawn_filter filter = sf ? *sf : (struct spawn_filter){0};
        filter.go = go[0];
        pid_t pid = fork();
        if (pid < 0) {
                int saved = errno;
                close(report[0]);
                close(report[1]);
                closep(&go[0]);
                closep(&go[1]);
                return tn_err_set(e, saved, "fork");
        }
        if (pid == 0)
                child(p, in, out, err, tty, report[1], sf ? &filter : NULL);
        close(report[1]);
        closep(&go[0]);
        /* The report pipe closes on a successful execve (close-on-exec): EOF means the
         * program runs, a record means a step failed. */
        struct spawn_failure f = {0};
        int r = spawn_wait(pid, report[0], go[1], sf && sf->listener ? n : NULL, &f);
        close(report[0]);
        closep(&go[1]);
        if (r != 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                if (n)
                        closep(&n->fd);
                if (r < 0)
                        return tn_err_set(e, -r, "%s: cannot take the seccomp listener",
                                          p->argv[0]);
                const char *step =
                    (unsigned)f.step < ARRAY_SIZE(spawn_steps) ? spawn_steps[f.step] : "start";
                return tn_err_set(e, f.err, "%s: cannot %s", p->argv[0], step);
        }
        *ret = pid;
        return 0;
}

static int open_null(void)
{
        return open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
}

static struct session *session_find(uint32_t id)
{
        for (size_t i = 0; i < SESSIONS_MAX; i++)
                if (A.sessions[i].used && A.sessions[i].id == id)
                        return &A.sessions[i];
        return NULL;
}

static void session_close(struct session *s)
{
        if (s->in_req) /* its bytes are dropped: the command is gone */
                send_ok(s->in_req, AGENT_OP_STDIN);
        closep(&s->out[0]);
        closep(&s->out[1]);
        closep(&s->in);
        free(s->in_buf);
        *s = (struct session){.out = {-1, -1}, .in = -1};
}

/* Reads one chunk of a session's output into a log event. Returns false at end of
 * file or when nothing was there. */
static bool session_pump(struct session *s, int k)
{
        static uint8_t buf[AGENT_DATA_MAX];
        if (s->out[k] < 0)
                return false;
        ssize_t n = read(s->out[k], buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return false;
        if (n <= 0) { /* a terminal's master says EIO once no slave is open */
                closep(&s->out[k]);
                s->out[k] = -1;
                return false;
        }
        struct agent_event ev = {
            .kind = AGENT_EVENT_LOG,
            .session = s->id,
            .stream = k == 0 ? AGENT_STREAM_STDOUT : AGENT_STREAM_STDERR,
            .data = buf,
            .len = (size_t)n,
        };
        send_event(&ev);
        return true;
}

/* A report of lib/seccomp_notify.h: a "denied" event. */
static void send_denied(void *ctx, int nr, uint64_t count)
{
        (void)ctx;
        struct agent_event ev = {
            .kind = AGENT_EVENT_DENIED,
            .denied = {.nr = (uint16_t)(nr >= 0 && nr < AGENT_NR_MAX ? nr : AGENT_NR_MAX),
                       .count = count < AGENT_COUNT_MAX ? count : AGENT_COUNT_MAX}};
        send_event(&ev);
}

/* The service has ended: what its filter's listener still has to say goes out before
 * its exit event (the denials not reported yet, or, learning, every call counted),
 * and the listener is closed. */
static void service_filter_done(void)
{
        struct notifier *n = A.notifier;
        if (!n)
                return;
        if (n->learn) {
                static struct agent_call_count calls[NOTIFY_MAX_NR + 1];
                size_t k = 0;
                for (int i = 0; i <= NOTIFY_MAX_NR; i++)
                        if (n->seen[i])
                                calls[k++] = (struct agent_call_count){
                                    .nr = (uint16_t)(i < AGENT_NR_MAX ? i : AGENT_NR_MAX),
                                    .count = n->seen[i] < AGENT_COUNT_MAX ? n->seen[i]
                                                                          : AGENT_COUNT_MAX};
                struct agent_event ev = {.kind = AGENT_EVENT_LEARNED, .calls = calls, .n_calls = k};
                send_event(&ev);
        } else {
                (void)notifier_report(n, now_ms(), true, send_denied, NULL);
        }
        notifier_free(n);
        A.notifier = NULL;
}

/* The service ended: its last counters go before its exit, whenever the last report
 * was (the host stops the guest soon after the exit). */
static void limits_final(void)
{
        if (A.cg_watch < 0)
                return;
        struct agent_limits l;
        guest_cgroup_counts(&l);
        A.limits_due = false;
        if (l.oom_kills == A.limits_sent.oom_kills &&
            l.pids_max_hits == A.limits_sent.pids_max_hits)
                return;
        struct agent_event ev = {.kind = AGENT_EVENT_LIMITS, .limits = l};
        send_event(&ev);
        A.limits_sent = l;
        A.limits_sent_ms = now_ms();
}

static void session_exited(struct session *s, int status)
{
        /* Everything the process wrote is in its pipes now: send it before the exit
         * (at most two pipe buffers, whatever the queue holds). A grandchild that
         * keeps a pipe open does not hold the exit event back. */
        for (int k = 0; k < 2; k++)
                while (session_pump(s, k))
                        ;
        /* A terminal passes what the command wrote on through a kernel worker: wait a
         * little for the master to say EIO (no slave left), 200 ms at most. */
        for (int i = 0; s->tty && s->out[0] >= 0 && i < 20; i++) {
                struct pollfd p = {.fd = s->out[0], .events = POLLIN};
                if (poll(&p, 1, 10) > 0)
                        while (session_pump(s, 0))
                                ;
        }
        if (s->in_req) { /* before the exit: the host forgets the session then */
                send_ok(s->in_req, AGENT_OP_STDIN);
                s->in_req = 0;
        }
        if (s->id == 0) {
                service_filter_done();
                limits_final();
        }
        struct agent_event ev = {.kind = AGENT_EVENT_EXIT, .session = s->id};
        if (WIFSIGNALED(status)) {
                ev.signaled = true;
                ev.code = WTERMSIG(status);
        } else {
                ev.code = WEXITSTATUS(status);
        }
        send_event(&ev);
        session_close(s);
}

/* A terminal from the guest's devpts: its master (non-blocking) and slave, the
 * window size set. */
static int open_tty(uint16_t rows, uint16_t cols, int *ret_master, int *ret_slave,
                    struct tn_err **err)
{
        _cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (master < 0)
                return tn_err_set(err, errno, "open /dev/ptmx");
        int unlock = 0;
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return tn_err_set(err, errno, "unlock the terminal");
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return tn_err_set(err, errno, "open the terminal's slave");
        struct winsize ws = {.ws_row = rows, .ws_col = cols};
        (void)ioctl(master, TIOCSWINSZ, &ws);
        *ret_master = TAKE_FD(master);
        *ret_slave = slave;
        return 0;
}

static int session_start(uint32_t id, const struct agent_proc *p, const struct agent_exec *x,
                         const struct spawn_filter *sf, struct notifier *n, pid_t *ret,
                         struct tn_err **err)
{
        struct session *s = NULL;
        for (size_t i = 0; i < SESSIONS_MAX && !s; i++)
                if (!A.sessions[i].used)
                        s = &A.sessions[i];
        if (!s)
                return tn_err_setx(err, EBUSY, "too many sessions");
        bool has_stdin = x && x->has_stdin, stdin_open = x && x->stdin_open, tty = x && x->tty;
        int out[2] = {-1, -1}, errp[2] = {-1, -1}, in[2] = {-1, -1};
        int r = 0;
        if (tty) {
                /* out[0] reads the master, in[1] writes it (a copy: closed apart), and
                 * the slave is the command's stdin, stdout and stderr. */
                r = open_tty(x->rows, x->cols, &out[0], &in[0], err);
                if (r == 0 && (in[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 3)) < 0)
                        r = tn_err_set(err, errno, "dup");
        } else {
                if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
                        r = tn_err_set(err, errno, "pipe");
                if (r == 0 && (has_stdin || stdin_open) && pipe2(in, O_CLOEXEC) < 0)
                        r = tn_err_set(err, errno, "pipe");
                if (r == 0 && !has_stdin && !stdin_open && (in[0] = open_null()) < 0)
                        r = tn_err_set(err, errno, "open /dev/null");
        }
        pid_t pid = 0;
        if (r == 0)
                r = tty ? spawn(p, in[0], in[0], in[0], true, sf, n, &pid, err)
                        : spawn(p, in[0], out[1], errp[1], false, sf, n, &pid, err);
        closep(&in[0]);
        closep(&out[1]);
        closep(&errp[1]);
        if (r < 0) {
                closep(&out[0]);
                closep(&errp[0]);
                closep(&in[1]);
                return r;
        }
        *s = (struct session){.used = true,
                              .id = id,
                              .pid = pid,
                              .out = {out[0], errp[0]},
                              .in = in[1],
                              .stdin_open = stdin_open,
                              .tty = tty};
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        if (errp[0] >= 0)
                fcntl(errp[0], F_SETFL, O_NONBLOCK);
        if (s->in >= 0) {
                fcntl(s->in, F_SETFL, O_NONBLOCK);
                if (has_stdin && x->stdin_len) {
                        s->in_buf = malloc(x->stdin_len);
                        if (s->in_buf)
                                memcpy(s->in_buf, x->stdin_data, x->stdin_len);
                        s->in_len = s->in_buf ? x->stdin_len : 0;
                }
                if (has_stdin && s->in_len == 0)
                        closep(&s->in);
        }
        *ret = pid;
        return 0;
}

/* Writes what waits for the command's stdin. Once it is all written (or the command
 * closed its stdin), the stdin request that brought it is answered, so the host sends
 * the next chunk: one chunk per session is all the agent ever holds. */
static void session_feed(struct session *s)
{
        while (s->in >= 0 && s->in_off < s->in_len) {
                ssize_t n = write(s->in, s->in_buf + s->in_off, s->in_len - s->in_off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        closep(&s->in); /* EPIPE: the program does not read its input */
                        break;
                }
                s->in_off += (size_t)n;
        }
        free(s->in_buf);
        s->in_buf = NULL;
        s->in_len = s->in_off = 0;
        if (s->in_req) {
                send_ok(s->in_req, AGENT_OP_STDIN);
                s->in_req = 0;
        }
        /* A terminal stays open at the end of the input, as a terminal does. */
        if (!s->stdin_open || (s->in_eof && !s->tty))
                closep(&s->in);
}

/* ---- health ---- */

static void health_answer(struct health_check *c, bool healthy, const char *detail)
{
        struct agent_reply rep = {.id = c->req_id, .ok = true, .op = AGENT_OP_HEALTH};
        rep.u.health.healthy = healthy;
        rep.u.health.detail = (char *)detail;
        send_reply(&rep);
        c->answered = true;
        if (c->sock >= 0)
                closep(&c->sock);
        if (c->pid <= 0)
                *c = (struct health_check){.sock = -1};
}

/* The connect of a tcp or http check has finished (e 0: its socket is ready), or failed
 * at once with error e: returns 0, or the error with why in detail. An error that
 * connect() itself returned is not in SO_ERROR (which then reads 0), so it must be the
 * one passed here: reading SO_ERROR instead once made a connect that failed at once
 * (ENETUNREACH when the guest's root takes 127.0.0.1 off its loopback) "connected". */
static int health_connected(struct health_check *c, int e, char *detail, size_t size)
{
        socklen_t len = sizeof(e);
        if (e == 0 && getsockopt(c->sock, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
        if (e == ECONNREFUSED)
                snprintf(detail, size, "port %u refused the connection", c->port);
        else if (e)
                snprintf(detail, size, "connect to 127.0.0.1:%u: %s", c->port, strerror(e));
        return e;
}

/* A tcp check's connect has finished, or failed at once with error e (else 0). */
static void health_tcp_done(struct health_check *c, int e)
{
        char detail[160];
        if (health_connected(c, e, detail, sizeof(detail)) == 0) {
                snprintf(detail, sizeof(detail), "connected to 127.0.0.1:%u", c->port);
                health_answer(c, true, detail);
        } else {
                health_answer(c, false, detail);
        }
}

/* Up to max bytes of the service's answer as one line of printable ASCII: it is
 * untrusted, and it ends up in an event and a terminal. */
static void printable_line(const char *in, size_t len, char *out, size_t max)
{
        size_t n = 0;
        for (size_t i = 0; i < len && n + 1 < max && in[i] != '\r' && in[i] != '\n'; i++)
                out[n++] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
        out[n] = '\0';
}

/* The answer so far is all there is (end of file, a full buffer or a line): judge it,
 * as the sandbox's probe does (daemon/health.c), on its status line. A detail shows at
 * most 200 bytes of the path and 127 of the line: it stays under AGENT_TEXT_MAX. */
static void health_http_judge(struct health_check *c)
{
        char line[128], detail[AGENT_TEXT_MAX];
        printable_line(c->ans, c->ans_len, line, sizeof(line));
        int code = agent_http_status(c->ans, c->ans_len);
        bool healthy = code >= 200 && code < 400;
        if (healthy)
                snprintf(detail, sizeof(detail), "%s", line);
        else if (code > 0)
                snprintf(detail, sizeof(detail), "no 2xx/3xx answer to GET %.200s: %s", c->path,
                         line);
        else if (c->ans_len == 0)
                snprintf(detail, sizeof(detail),
                         "no 2xx/3xx answer to GET %.200s: the connection closed without one",
                         c->path);
        else
                snprintf(detail, sizeof(detail),
                         "no 2xx/3xx answer to GET %.200s: not HTTP: \"%s\"", c->path, line);
        /* What else has already arrived is read (bounded) so that the close is orderly. */
        char sink[4096];
        for (size_t total = 0; total < HEALTH_DRAIN_MAX;) {
                ssize_t r = recv(c->sock, sink, sizeof(sink), MSG_DONTWAIT);
                if (r <= 0)
                        break;
                total += (size_t)r;
        }
        health_answer(c, healthy, detail);
}

/* One step of an http check, when its socket is ready: finish the connect, send the
 * GET (the rest of it), or read what the service answered. Never blocks. */
static void health_http_step(struct health_check *c, int connect_error)
{
        char detail[AGENT_TEXT_MAX];
        if (!c->connected) {
                if (health_connected(c, connect_error, detail, sizeof(detail)) != 0) {
                        health_answer(c, false, detail);
                        return;
                }
                c->connected = true;
        }
        if (c->req_off < c->req_len) {
                ssize_t r = send(c->sock, c->req + c->req_off, c->req_len - c->req_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (r < 0) {
                        snprintf(detail, sizeof(detail), "send GET %.200s: %s", c->path,
                                 strerror(errno));
                        health_answer(c, false, detail);
                        return;
                }
                c->req_off += (size_t)r;
                return;
        }
        ssize_t r = recv(c->sock, c->ans + c->ans_len, sizeof(c->ans) - c->ans_len, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (r < 0) {
                snprintf(detail, sizeof(detail), "no 2xx/3xx answer to GET %.200s: %s", c->path,
                         strerror(errno));
                health_answer(c, false, detail);
                return;
        }
        c->ans_len += (size_t)r;
        if (r == 0 || c->ans_len == sizeof(c->ans) || memchr(c->ans, '\n', c->ans_len))
                health_http_judge(c);
}

/* What the loop waits for on a check's socket. */
static short health_events(const struct health_check *c)
{
        if (c->kind == AGENT_HEALTH_HTTP && c->connected && c->req_off == c->req_len)
                return POLLIN;
        return POLLOUT;
}

static void op_health(const struct agent_request *req)
{
        struct health_check *c = NULL;
        for (size_t i = 0; i < HEALTH_MAX && !c; i++)
                if (!A.checks[i].used)
                        c = &A.checks[i];
        if (!c) {
                send_error(req->id, "too many health checks in flight");
                return;
        }
        const struct agent_health *h = &req->u.health;
        *c = (struct health_check){.used = true,
                                   .req_id = req->id,
                                   .kind = h->kind,
                                   .sock = -1,
                                   .port = h->port,
                                   .timeout_ms = h->timeout_ms,
                                   .deadline = now_ms() + h->timeout_ms};
        if (h->kind == AGENT_HEALTH_HTTP) {
                /* The decoder checked the path (agent_http_path_ok): no space, no CR/LF. */
                snprintf(c->path, sizeof(c->path), "%s", h->path);
                int n =
                    snprintf(c->req, sizeof(c->req),
                             "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: tenantd-health\r\n"
                             "Connection: close\r\n\r\n",
                             c->path);
                c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
        }
        if (h->kind == AGENT_HEALTH_TCP || h->kind == AGENT_HEALTH_HTTP) {
                c->sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                struct sockaddr_in sin = {.sin_family = AF_INET,
                                          .sin_port = htons(h->port),
                                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                if (c->sock < 0 || (connect(c->sock, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
                                    errno != EINPROGRESS)) {
                        int e = errno ? errno : EIO;
                        if (h->kind == AGENT_HEALTH_TCP)
                                health_tcp_done(c, e);
                        else
                                health_http_step(c, e);
                }
                return;
        }
        /* exec: as the service's user, output discarded, in the service's root. */
        static char root[] = "/";
        struct agent_proc p = {.argv = h->argv,
                               .argc = h->argc,
                               .env = (char *[]){NULL},
                               .uid = A.service_uid,
                               .gid = A.service_gid,
                               .workdir = root};
        _cleanup_close_ int null = open_null();
        _cleanup_err_ struct tn_err *err = NULL;
        if (null < 0 ||
            spawn(&p, null, null, null, false, exec_filter(), NULL, &c->pid, &err) < 0) {
                c->pid = 0;
                health_answer(c, false, err ? tn_err_msg(err) : "cannot open /dev/null");
        }
}

static void health_exited(struct health_check *c, int status)
{
        c->pid = 0;
        if (c->answered) {
                *c = (struct health_check){.sock = -1};
                return;
        }
        char detail[64];
        if (WIFSIGNALED(status))
                snprintf(detail, sizeof(detail), "killed by signal %d", WTERMSIG(status));
        else
                snprintf(detail, sizeof(detail), "exit status %d", WEXITSTATUS(status));
        health_answer(c, WIFEXITED(status) && WEXITSTATUS(status) == 0, detail);
}

static void health_timeouts(uint64_t now)
{
        for (size_t i = 0; i < HEALTH_MAX; i++) {
                struct health_check *c = &A.checks[i];
                if (!c->used || c->answered || now < c->deadline)
                        continue;
                char detail[64];
                snprintf(detail, sizeof(detail), "no answer within %" PRIu32 " ms", c->timeout_ms);
                if (c->pid > 0)
                        kill(-c->pid, SIGKILL);
                health_answer(c, false, detail);
        }
}

/* ---- reaping ---- */

/* Reaps every child that has exited. Returns true when no child is left at all. */
static bool reap(void)
{
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return pid < 0 && errno == ECHILD;
                bool known = false;
                for (size_t i = 0; i < SESSIONS_MAX && !known; i++) {
                        if (A.sessions[i].used && A.sessions[i].pid == pid) {
                                session_exited(&A.sessions[i], status);
                                known = true;
                        }
                }
                for (size_t i = 0; i < HEALTH_MAX && !known; i++) {
                        if (A.checks[i].used && A.checks[i].pid == pid) {
                                health_exited(&A.checks[i], status);
                                known = true;
                        }
                }
                if (!known && A.console_pid > 0 && pid == A.console_pid)
                        console_exited(status);
                /* Anything else was an orphan re-parented to PID 1: reaped, done. */
        }
}

/* ---- ops ---- */

static void op_hello(uint32_t id)
{
        struct utsname u;
        uname(&u);
        struct agent_reply rep = {.id = id, .ok = true, .op = AGENT_OP_HELLO};
        rep.u.hello.agent = (char *)"tenant-agent " AGENT_VERSION;
        rep.u.hello.kernel = u.release;
        rep.u.hello.boot_ms = A.boot_ms;
        send_reply(&rep);
}

static uint64_t meminfo(const char *text, const char *key)
{
        const char *p = strstr(text, key);
        return p ? strtoull(p + strlen(key), NULL, 10) * 1024 : 0;
}

static void op_stats(uint32_t id)
{
        struct agent_reply rep = {.id = id, .ok = true, .op = AGENT_OP_STATS};
        char buf[4096];
        _cleanup_close_ int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n > 0) {
                buf[n] = '\0';
                unsigned long long v[8] = {0};
                if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                           &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
                        unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
                        long hz = sysconf(_SC_CLK_TCK);
                        rep.u.stats.cpu_ns =
                            busy * (1000000000ull / (unsigned long)(hz > 0 ? hz : 100));
                }
        }
        closep(&fd);
        fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n > 0) {
                buf[n] = '\0';
                rep.u.stats.mem_total = meminfo(buf, "MemTotal:");
                rep.u.stats.mem_available = meminfo(buf, "MemAvailable:");
        }
        struct sysinfo si;
        if (sysinfo(&si) == 0)
                rep.u.stats.load1 = (double)si.loads[0] / (double)(1 << SI_LOAD_SHIFT);
        rep.u.stats.uptime_ms = clock_ms(CLOCK_BOOTTIME);
        send_reply(&rep);
}

/* Exec sessions and exec health checks: the service's notify rules as EPERM. */
static const struct spawn_filter *exec_filter(void)
{
        static struct spawn_filter f;
        f = (struct spawn_filter){.insns = A.exec_filter, .len = A.exec_filter_len, .go = -1};
        return A.exec_filter_len ? &f : NULL;
}

/* A notifier for the service's filter, its listener still to come (spawn). */
static int service_notifier(const struct agent_seccomp *sc, struct notifier **ret,
                            struct tn_err **err)
{
        int r = notifier_new(-1, ret);
        if (r < 0)
                return tn_err_set(err, -r, "seccomp notifier");
        (*ret)->learn = sc->learn;
        for (size_t i = 0; i < sc->n_refuse; i++)
                if (sc->refuse[i].nr < NOTIFY_MAX_NR)
                        (*ret)->answer[sc->refuse[i].nr] = sc->refuse[i].err;
        return 0;
}

/* The mounts and network (guest_setup), then the tenant's cgroup: without it the guest
 * runs on, unreported, unless a pids_max was asked for, which it could not hold. */
static void op_setup(const struct agent_request *req)
{
        _cleanup_err_ struct tn_err *e = NULL;
        if (guest_setup(&req->u.setup, &e) < 0) {
                send_error(req->id, tn_err_msg(e));
                return;
        }
        if (A.cg_procs < 0 &&
            guest_cgroup_setup(req->u.setup.pids_max, &A.cg_procs, &A.cg_watch, &e) < 0) {
                if (req->u.setup.pids_max) {
                        send_error(req->id, tn_err_msg(e));
                        return;
                }
                say("the tenant's cgroup: %s; its OOM kills and refused forks go unreported",
                    tn_err_msg(e));
        }
        send_ok(req->id, AGENT_OP_SETUP);
}

/* A live `tenantctl set pids.max`: the tenant's cgroup, made at setup, takes the new
 * value (0: "max"); processes above a lowered one stay, new forks fail. */
static void op_limits(const struct agent_request *req)
{
        _cleanup_err_ struct tn_err *e = NULL;
        if (A.cg_procs < 0) {
                send_error(req->id, "the tenant's cgroup is not set up");
                return;
        }
        if (guest_cgroup_set_pids_max(req->u.limits.pids_max, &e) < 0) {
                send_error(req->id, tn_err_msg(e));
                return;
        }
        send_ok(req->id, AGENT_OP_LIMITS);
}

/* Sends the cgroup's counters when one grew, at most once a second; returns the poll
 * timeout, shortened to when an owed report is due. */
static int limits_report(uint64_t now, int timeout)
{
        if (A.cg_watch < 0)
                return timeout;
        if (A.limits_due && now >= A.limits_sent_ms + 1000) {
                struct agent_limits l;
                guest_cgroup_counts(&l);
                A.limits_due = false;
                if (l.oom_kills != A.limits_sent.oom_kills ||
                    l.pids_max_hits != A.limits_sent.pids_max_hits) {
                        struct agent_event ev = {.kind = AGENT_EVENT_LIMITS, .limits = l};
                        send_event(&ev);
                        A.limits_sent = l;
                        A.limits_sent_ms = now;
                }
        }
        if (!A.limits_due)
                return timeout;
        int left = (int)(A.limits_sent_ms + 1000 - now);
        return timeout < 0 || left < timeout ? left : timeout;
}

/* The cgroup's event files changed: drain the notifications, owe a report. */
static void limits_changed(void)
{
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(A.cg_watch, buf, sizeof(buf)) > 0)
                ;
        A.limits_due = true;
}

static void op_start(const struct agent_request *req)
{
        if (session_find(0)) {
                send_error(req->id, "the service is already running");
                return;
        }
        int r = guest_give_run(req->u.start.uid, req->u.start.gid);
        if (r < 0) {
                send_error(req->id, "cannot give /run to the service's user");
                return;
        }
        const struct agent_seccomp *sc = &req->u.start.seccomp;
        _cleanup_err_ struct tn_err *err = NULL;
        struct notifier *n = NULL;
        struct sock_filter insns[GUEST_FILTER_MAX];
        struct spawn_filter sf = {.insns = insns, .listener = true, .go = -1};
        if (sc->set) {
                sf.len = guest_filter_build(sc, false, insns);
                if (service_notifier(sc, &n, &err) < 0) {
                        send_error(req->id, tn_err_msg(err));
                        return;
                }
        }
        pid_t pid;
        if (session_start(0, &req->u.start, NULL, sc->set ? &sf : NULL, n, &pid, &err) < 0) {
                notifier_free(n);
                send_error(req->id, tn_err_msg(err));
                return;
        }
        notifier_free(A.notifier);
        A.notifier = n;
        A.exec_filter_len = sc->set && !sc->learn ? guest_filter_build(sc, true, A.exec_filter) : 0;
        A.service_uid = req->u.start.uid;
        A.service_gid = req->u.start.gid;
        struct agent_reply rep = {.id = req->id, .ok = true, .op = AGENT_OP_START, .u.pid = pid};
        send_reply(&rep);
}

static void op_exec(const struct agent_request *req)
{
        const struct agent_exec *x = &req->u.exec;
        if (session_find(x->session)) {
                send_error(req->id, "that session is still running");
                return;
        }
        size_t running = 0;
        for (size_t i = 0; i < SESSIONS_MAX; i++)
                running += A.sessions[i].used && A.sessions[i].id != 0;
        if (running >= EXEC_SESSIONS_MAX) {
                send_error(req->id, "too many exec sessions");
                return;
        }
        _cleanup_err_ struct tn_err *err = NULL;
        pid_t pid;
        if (session_start(x->session, &x->proc, x, exec_filter(), NULL, &pid, &err) < 0) {
                send_error(req->id, tn_err_msg(err));
                return;
        }
        struct agent_reply rep = {.id = req->id, .ok = true, .op = AGENT_OP_EXEC, .u.pid = pid};
        send_reply(&rep);
        session_feed(session_find(x->session));
}

/* Input for a session: written without blocking the loop, answered once written. */
static void op_stdin(struct agent_request *req)
{
        struct agent_stdin *in = &req->u.stdin;
        struct session *s = session_find(in->session);
        if (!s || s->id == 0) {
                send_error(req->id, "no such session");
                return;
        }
        if (!s->stdin_open) {
                send_error(req->id, "that session takes no input");
                return;
        }
        if (s->in_req || s->in_len) {
                send_error(req->id, "the previous input is not written yet");
                return;
        }
        if (in->eof)
                s->in_eof = true;
        if (s->in >= 0 && in->len) {
                s->in_buf = TAKE_PTR(in->data);
                s->in_len = in->len;
                s->in_off = 0;
        }
        s->in_req = req->id;
        session_feed(s);
}

static void op_resize(const struct agent_request *req)
{
        struct session *s = session_find(req->u.resize.session);
        if (!s || s->id == 0) {
                send_error(req->id, "no such session");
                return;
        }
        struct winsize ws = {.ws_row = req->u.resize.rows, .ws_col = req->u.resize.cols};
        if (!s->tty || s->out[0] < 0 || ioctl(s->out[0], TIOCSWINSZ, &ws) < 0) {
                send_error(req->id,
                           s->tty ? "the terminal is closed" : "that session has no terminal");
                return;
        }
        send_ok(req->id, AGENT_OP_RESIZE);
}

/* ---- the serial console ----
 *
 * The host relays the guest's first serial port (the kernel's console=ttyS0) to
 * `tenantctl console`. Nothing reads that line in the guest until a client opens the
 * console: then the host asks for a login shell on it, which runs like an exec session
 * (chroot into the tenant's root, the manifest's user, groups, workdir and environment,
 * a session of its own with the line as its controlling terminal), and stays when the
 * client detaches, as a shell on a serial line does. Its exit is the exit event of
 * AGENT_CONSOLE_SESSION; the next console request starts a new one. */
#define CONSOLE_TTY "/dev/ttyS0"

static void console_exited(int status)
{
        /* As a getty's vhangup: what the shell left behind (a background job) loses
         * the line, so the next client's typing goes to the next shell only. Files
         * opened as /dev/console (the agent's own stdio) are not hung up. */
        (void)ioctl(A.console_fd, TIOCVHANGUP, 0);
        closep(&A.console_fd);
        A.console_fd = -1;
        A.console_pid = 0;
        struct agent_event ev = {.kind = AGENT_EVENT_EXIT, .session = AGENT_CONSOLE_SESSION};
        ev.signaled = WIFSIGNALED(status);
        ev.code = ev.signaled ? WTERMSIG(status) : WEXITSTATUS(status);
        send_event(&ev);
}

/* The line in the state a getty leaves it in: canonical input with echo and signals,
 * CR read as NL, NL written as CR NL; the window size the client has. */
static int console_line(int fd, uint16_t rows, uint16_t cols)
{
        struct termios t;
        if (tcgetattr(fd, &t) < 0)
                return -errno;
        t.c_iflag = (t.c_iflag & ~(tcflag_t)(IGNCR | INLCR | IXOFF)) | ICRNL | IXON;
        t.c_oflag |= OPOST | ONLCR;
        t.c_lflag |= ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | ISIG | IEXTEN;
        t.c_cflag |= CREAD | CLOCAL | HUPCL;
        if (tcsetattr(fd, TCSANOW, &t) < 0)
                return -errno;
        struct winsize ws = {.ws_row = rows, .ws_col = cols};
        return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

static void op_console(const struct agent_request *req)
{
        const struct agent_console *c = &req->u.console;
        if (A.console_pid > 0) { /* a shell runs there: the new client takes it over */
                struct winsize ws = {.ws_row = c->rows, .ws_col = c->cols};
                (void)ioctl(A.console_fd, TIOCSWINSZ, &ws);
                struct agent_reply rep = {
                    .id = req->id, .ok = true, .op = AGENT_OP_CONSOLE, .u.pid = A.console_pid};
                send_reply(&rep);
                return;
        }
        _cleanup_close_ int fd = open(CONSOLE_TTY, O_RDWR | O_NOCTTY | O_CLOEXEC);
        char msg[128];
        int r = fd < 0 ? -errno : console_line(fd, c->rows, c->cols);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "cannot set the console line " CONSOLE_TTY " up: %s",
                         strerror(-r));
                send_error(req->id, msg);
                return;
        }
        _cleanup_err_ struct tn_err *err = NULL;
        pid_t pid;
        if (spawn(&c->proc, fd, fd, fd, true, exec_filter(), NULL, &pid, &err) < 0) {
                send_error(req->id, tn_err_msg(err));
                return;
        }
        A.console_pid = pid;
        A.console_fd = TAKE_FD(fd);
        struct agent_reply rep = {.id = req->id, .ok = true, .op = AGENT_OP_CONSOLE, .u.pid = pid};
        send_reply(&rep);
}

static void op_signal(const struct agent_request *req)
{
        struct session *s = session_find(req->u.signal.session);
        if (!s) {
                send_error(req->id, "no such session");
                return;
        }
        /* Each session leads its own process group (setsid): the signal reaches the
         * whole tree the session started. */
        if (kill(-s->pid, req->u.signal.signo) < 0 && kill(s->pid, req->u.signal.signo) < 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "kill: %s", strerror(errno));
                send_error(req->id, msg);
                return;
        }
        send_ok(req->id, AGENT_OP_SIGNAL);
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* Writes out what is queued, for at most ms milliseconds. */
static void drain_output(unsigned ms)
{
        uint64_t end = now_ms() + ms;
        while (queued() > 0 && !A.hup && now_ms() < end) {
                flush();
                if (queued() > 0) {
                        struct pollfd p = {.fd = A.port, .events = POLLOUT};
                        poll(&p, 1, 20);
                }
        }
}

static void __attribute__((noreturn)) power_off(void)
{
        guest_unmount_all();
        reboot(RB_POWER_OFF);
        for (;;)
                pause();
}

static void __attribute__((noreturn)) do_shutdown(uint32_t timeout_ms)
{
        say("shutting down (%" PRIu32 " ms for processes to exit)", timeout_ms);
        drain_output(1000);
        /* kill(-1) reaches every process but PID 1. */
        kill(-1, SIGTERM);
        uint64_t end = now_ms() + timeout_ms;
        for (;;) {
                if (reap())
                        break;
                if (now_ms() >= end) {
                        kill(-1, SIGKILL);
                        sleep_ms(100);
                        (void)reap();
                        break;
                }
                sleep_ms(10);
        }
        drain_output(500);
        power_off();
}

static void handle_frame(const char *line, size_t len)
{
        struct agent_request req;
        uint32_t id = 0;
        _cleanup_err_ struct tn_err *err = NULL;
        if (agent_request_decode(line, len, &req, &id, &err) < 0) {
                send_error(id, tn_err_msg(err));
                return;
        }
        switch (req.op) {
        case AGENT_OP_HELLO:
                op_hello(req.id);
                break;
        case AGENT_OP_SETUP:
                op_setup(&req);
                break;
        case AGENT_OP_START:
                op_start(&req);
                break;
        case AGENT_OP_SIGNAL:
                op_signal(&req);
                break;
        case AGENT_OP_EXEC:
                op_exec(&req);
                break;
        case AGENT_OP_STDIN:
                op_stdin(&req);
                break;
        case AGENT_OP_RESIZE:
                op_resize(&req);
                break;
        case AGENT_OP_CONSOLE:
                op_console(&req);
                break;
        case AGENT_OP_STATS:
                op_stats(req.id);
                break;
        case AGENT_OP_HEALTH:
                op_health(&req);
                break;
        case AGENT_OP_LIMITS:
                op_limits(&req);
                break;
        case AGENT_OP_SHUTDOWN:
                send_ok(req.id, AGENT_OP_SHUTDOWN);
                do_shutdown(req.u.shutdown_timeout_ms);
        }
        agent_request_clear(&req);
}

static void port_read(void)
{
        while (queued() < QUEUE_PORT_LIMIT) {
                ssize_t n = agent_reader_fill(&A.reader, A.port);
                if (n == -EINTR)
                        continue;
                if (n == -EAGAIN)
                        return;
                if (n <= 0) {
                        port_hangup();
                        return;
                }
                A.hup = false;
                A.connected = true;
                const char *line;
                size_t len;
                enum agent_read k;
                while ((k = agent_reader_next(&A.reader, &line, &len)) != AGENT_READ_NONE) {
                        if (k == AGENT_READ_OVERSIZED)
                                send_error(0, "frame too large");
                        else
                                handle_frame(line, len);
                }
        }
}

static void handle_signals(void)
{
        struct signalfd_siginfo si;
        while (read(A.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                        (void)reap();
                else
                        do_shutdown(AGENT_SHUTDOWN_TIMEOUT_DEFAULT_MS);
        }
}

/* ---- the loop ---- */

enum { TAG_PORT, TAG_SIGNAL, TAG_OUT, TAG_IN, TAG_HEALTH, TAG_NOTIFY, TAG_CGROUP };

static void serve(void)
{
        struct pollfd fds[4 + SESSIONS_MAX * 3 + HEALTH_MAX];
        struct {
                int tag;
                size_t index;
                int k;
        } what[ARRAY_SIZE(fds)];
        for (;;) {
                size_t n = 0;
                uint64_t now = now_ms();
                int timeout = -1;
                if (A.hup && now >= A.hup_retry)
                        A.hup = false;
                if (!A.hup) {
                        short ev = (short)((queued() < QUEUE_PORT_LIMIT ? POLLIN : 0) |
                                           (queued() > 0 ? POLLOUT : 0));
                        fds[n] = (struct pollfd){.fd = A.port, .events = ev};
                        what[n++].tag = TAG_PORT;
                } else {
                        timeout = (int)(A.hup_retry - now);
                }
                fds[n] = (struct pollfd){.fd = A.sigfd, .events = POLLIN};
                what[n++].tag = TAG_SIGNAL;
                for (size_t i = 0; i < SESSIONS_MAX; i++) {
                        struct session *s = &A.sessions[i];
                        if (!s->used)
                                continue;
                        for (int k = 0; k < 2 && queued() < QUEUE_LOG_LIMIT; k++) {
                                if (s->out[k] < 0)
                                        continue;
                                fds[n] = (struct pollfd){.fd = s->out[k], .events = POLLIN};
                                what[n].tag = TAG_OUT;
                                what[n].index = i;
                                what[n++].k = k;
                        }
                        if (s->in >= 0 && s->in_off < s->in_len) {
                                fds[n] = (struct pollfd){.fd = s->in, .events = POLLOUT};
                                what[n].tag = TAG_IN;
                                what[n++].index = i;
                        }
                }
                for (size_t i = 0; i < HEALTH_MAX; i++) {
                        struct health_check *c = &A.checks[i];
                        if (!c->used || c->answered)
                                continue;
                        int left = c->deadline > now ? (int)(c->deadline - now) : 0;
                        if (timeout < 0 || left < timeout)
                                timeout = left;
                        if (c->sock >= 0) {
                                fds[n] = (struct pollfd){.fd = c->sock, .events = health_events(c)};
                                what[n].tag = TAG_HEALTH;
                                what[n++].index = i;
                        }
                }
                /* The service's notified calls: a bounded number answered per window
                 * (lib/seccomp_notify.h), their reports when due. */
                if (A.notifier) {
                        timeout = notifier_pollfd(A.notifier, now, &fds[n], timeout);
                        what[n++].tag = TAG_NOTIFY;
                }
                if (A.cg_watch >= 0) {
                        fds[n] = (struct pollfd){.fd = A.cg_watch, .events = POLLIN};
                        what[n++].tag = TAG_CGROUP;
                }
                timeout = limits_report(now, timeout);
                if (poll(fds, n, timeout) < 0 && errno != EINTR) {
                        say("poll: %s", strerror(errno));
                        sleep_ms(100);
                        continue;
                }
                for (size_t i = 0; i < n; i++) {
                        if (!fds[i].revents)
                                continue;
                        switch (what[i].tag) {
                        case TAG_PORT:
                                if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                                        port_read();
                                if (!A.hup && (fds[i].revents & POLLOUT))
                                        flush();
                                break;
                        case TAG_SIGNAL:
                                handle_signals();
                                break;
                        case TAG_NOTIFY:
                                if (A.notifier)
                                        (void)notifier_answer(A.notifier, now_ms());
                                break;
                        case TAG_CGROUP:
                                limits_changed();
                                break;
                        case TAG_OUT: {
                                struct session *s = &A.sessions[what[i].index];
                                if (s->used)
                                        session_pump(s, what[i].k);
                                break;
                        }
                        case TAG_IN:
                                if (A.sessions[what[i].index].used)
                                        session_feed(&A.sessions[what[i].index]);
                                break;
                        case TAG_HEALTH: {
                                struct health_check *c = &A.checks[what[i].index];
                                if (c->used && !c->answered && c->sock >= 0 &&
                                    c->kind == AGENT_HEALTH_HTTP)
                                        health_http_step(c, 0);
                                else if (c->used && !c->answered && c->sock >= 0)
                                        health_tcp_done(c, 0);
                                break;
                        }
                        }
                }
                health_timeouts(now_ms());
                if (A.notifier)
                        (void)notifier_report(A.notifier, now_ms(), false, send_denied, NULL);
                if (!A.hup && queued() > 0)
                        flush();
        }
}

/* ---- boot ---- */

static void __attribute__((noreturn)) boot_failed(const char *what)
{
        say("cannot boot: %s; powering off", what);
        sleep_ms(200);
        power_off();
}

static void console_stdio(void)
{
        int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (int i = 0; i < 3; i++)
                if (fcntl(i, F_GETFD) < 0)
                        dup2(fd, i);
        if (fd > 2)
                close(fd);
}

int main(int argc, char **argv)
{
        if (getpid() != 1) {
                if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                        printf("tenant-agent " AGENT_VERSION "\n");
                        return 0;
                }
                fprintf(stderr, "tenant-agent " AGENT_VERSION
                                ": the init of a tenantd microVM; it runs only as PID 1\n"
                                "usage: tenant-agent --version\n");
                return 2;
        }
        umask(022);
        setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
        _cleanup_err_ struct tn_err *err = NULL;
        if (guest_mount_early(&err) < 0)
                boot_failed(tn_err_msg(err));
        console_stdio();
        reboot(RB_DISABLE_CAD); /* Ctrl-Alt-Del becomes SIGINT: a clean shutdown */
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPWR);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        A.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (A.sigfd < 0)
                boot_failed("signalfd");

        int loaded = guest_load_modules(MODULE_LIST, warn_msg);
        if (guest_loopback_up() < 0)
                say("cannot bring lo up: %s", strerror(errno));
        A.port = guest_open_port(AGENT_PORT_NAME, PORT_WAIT_MS, &err);
        if (A.port < 0)
                boot_failed(tn_err_msg(err));
        agent_reader_init(&A.reader);
        A.connected = true; /* so that a first hangup is reported once */
        A.boot_ms = clock_ms(CLOCK_BOOTTIME);
        say("ready after %" PRIu64 " ms (%d modules loaded)", A.boot_ms, loaded);
        for (size_t i = 0; i < HEALTH_MAX; i++)
                A.checks[i].sock = -1;
        for (size_t i = 0; i < SESSIONS_MAX; i++)
                session_close(&A.sessions[i]);
        struct agent_event ready = {.kind = AGENT_EVENT_READY};
        send_event(&ready);
        serve();
}
