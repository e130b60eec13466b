/* keeper.c — the per-tenant keeper process (see keeper.h). */
#include "daemon/keeper.h"
#include "lib/clock.h"
#include "lib/logtext.h"

#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/cgroup.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "lib/log.h"
#include "host/net.h"
#include "lib/seccomp_notify.h"
#include "sandbox/sandbox.h"
#include "storage/volume.h"
#include "host/uidrange.h"
#include "spec/policy.h"
#include "vm/vm_runner.h"

#define LOG_READ_CHUNK (64U << 10)
#define DRAIN_MS 1000 /* after the tenant's end, how long its output may still arrive */

void tenant_dir(const char *state_dir, const char *name, char *buf, size_t len)
{
        snprintf(buf, len, "%s/tenants/%s", state_dir, name);
}

void logs_dir(const char *state_dir, char *buf, size_t len)
{
        snprintf(buf, len, "%s/logs", state_dir);
}

uint64_t proc_start_time(pid_t pid)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: fields are counted from
         * the last ')'. After it come field 3 (state) ... field 22 (starttime). */
        char *p = strrchr(buf, ')');
        if (!p)
                return 0;
        p++; /* at the space before field 3 */
        for (int field = 3; field < 22 && p; field++)
                p = strchr(p + 1, ' ');
        /* p is at the space before field 22 */
        if (!p)
                return 0;
        return strtoull(p + 1, NULL, 10);
}

int pidfd_open_checked(pid_t pid, uint64_t start)
{
        if (pid <= 0 || start == 0)
                return -ESRCH;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        /* The pidfd pins the process it was opened for: if /proc now shows the
         * recorded start time, the pidfd is that process and not a later one. */
        if (proc_start_time(pid) != start) {
                close(fd);
                return -ESRCH;
        }
        return fd;
}

/* ---- records ---- */

static int record_path(const char *state_dir, const char *name, const char *file, char *buf,
                       size_t len)
{
        char dir[4096];
        tenant_dir(state_dir, name, dir, sizeof(dir));
        if (snprintf(buf, len, "%s/%s", dir, file) >= (int)len)
                return -ENAMETOOLONG;
        return 0;
}

static int record_write(const char *state_dir, const char *name, const char *file,
                        struct json_gen *g, struct tn_err **err)
{
        char path[4096];
        const char *buf;
        size_t len;
        if (record_path(state_dir, name, file, path, sizeof(path)) < 0)
                return tn_err_setx(err, ENAMETOOLONG, "state path too long");
        if (json_gen_finish(g, &buf, &len) < 0)
                return tn_err_setx(err, EINVAL, "cannot encode %s", file);
        return write_file_atomic(path, buf, len, 0600, err);
}

static int record_load(const char *state_dir, const char *name, const char *file,
                       struct json_value **ret, struct tn_err **err)
{
        char path[4096];
        if (record_path(state_dir, name, file, path, sizeof(path)) < 0)
                return tn_err_setx(err, ENAMETOOLONG, "state path too long");
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, 64 << 10, &buf, &len, err);
        if (r < 0)
                return r;
        return json_parse_err(buf, len, &json_limits_config, path, ret, err);
}

static bool get_u64(const struct json_value *o, const char *key, uint64_t *ret)
{
        int64_t v;
        const struct json_value *x = json_get(o, key);
        if (!x || !json_number_int64(x, &v) || v < 0)
                return false;
        *ret = (uint64_t)v;
        return true;
}

int run_record_read(const char *state_dir, const char *name, struct run_record *ret,
                    struct tn_err **err)
{
        _cleanup_json_ struct json_value *v = NULL;
        int r = record_load(state_dir, name, "run.json", &v, err);
        if (r < 0)
                return r;
        uint64_t gen, kp, ks, ip, is, st, base;
        if (!get_u64(v, "generation", &gen) || !get_u64(v, "keeper_pid", &kp) ||
            !get_u64(v, "keeper_start", &ks) || !get_u64(v, "init_pid", &ip) ||
            !get_u64(v, "init_start", &is) || !get_u64(v, "started_ms", &st) ||
            !get_u64(v, "id_base", &base) || kp > INT32_MAX || ip > INT32_MAX || base > UINT32_MAX)
                return tn_err_setx(err, EINVAL,
                                   "%s/tenants/%s/run.json: a field is missing or invalid",
                                   state_dir, name);
        *ret = (struct run_record){.generation = gen,
                                   .keeper_pid = (pid_t)kp,
                                   .keeper_start = ks,
                                   .init_pid = (pid_t)ip,
                                   .init_start = is,
                                   .started_ms = st,
                                   .id_base = (uint32_t)base};
        return 0;
}

int exit_record_read(const char *state_dir, const char *name, struct exit_record *ret,
                     struct tn_err **err)
{
        _cleanup_json_ struct json_value *v = NULL;
        int r = record_load(state_dir, name, "exit.json", &v, err);
        if (r < 0)
                return r;
        uint64_t gen, status, ended, oom = 0, pids = 0;
        if (!get_u64(v, "generation", &gen) || !get_u64(v, "status", &status) ||
            !get_u64(v, "ended_ms", &ended) || status > 255 + 128)
                return tn_err_setx(err, EINVAL,
                                   "%s/tenants/%s/exit.json: a field is missing or invalid",
                                   state_dir, name);
        (void)get_u64(v, "oom_kills", &oom);
        (void)get_u64(v, "pids_limit_hits", &pids);
        *ret = (struct exit_record){.generation = gen,
                                    .status = (int)status,
                                    .ended_ms = ended,
                                    .oom_kills = oom,
                                    .pids_limit_hits = pids};
        return 0;
}

void keeper_records_remove(const char *state_dir, const char *name)
{
        char path[4096];
        if (record_path(state_dir, name, "run.json", path, sizeof(path)) == 0)
                unlink(path);
        if (record_path(state_dir, name, "exit.json", path, sizeof(path)) == 0)
                unlink(path);
        if (record_path(state_dir, name, KEEPER_EVENTS_FIFO, path, sizeof(path)) == 0)
                unlink(path);
}

int keeper_events_open(const char *state_dir, const char *name, struct tn_err **err)
{
        char path[4096];
        if (record_path(state_dir, name, KEEPER_EVENTS_FIFO, path, sizeof(path)) < 0)
                return tn_err_setx(err, ENAMETOOLONG, "the state directory's path is too long");
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0)
                return tn_err_set(err, errno, "open %s", path);
        if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
                close(fd);
                return tn_err_setx(err, EPERM, "%s is not the keeper's event pipe", path);
        }
        return fd;
}

/* ---- the log sink: size rotation and a rate cap ---- */

struct log_sink {
        int dirfd;
        char file[MANIFEST_NAME_MAX + 8]; /* NAME.log */
        int fd;
        uint64_t size;
        uint64_t max_size;
        uint32_t keep;
        uint64_t rate;   /* bytes per second, 0 = unlimited */
        uint64_t tokens; /* token bucket, at most `burst` */
        uint64_t burst;
        uint64_t refilled_ms;
        uint64_t dropped;
        bool to_syslog;
        const char *tenant;
        char line[1024];
        size_t line_len;
        struct logtext text; /* the tenant's bytes are escaped before they are stored */
        bool mid_line;       /* the last byte stored was not a newline */
};

static void sink_rotate(struct log_sink *s)
{
        if (s->fd >= 0)
                close(s->fd);
        char from[96], to[96];
        for (uint32_t i = s->keep; i >= 1; i--) {
                if (i == 1)
                        snprintf(from, sizeof(from), "%s", s->file);
                else
                        snprintf(from, sizeof(from), "%s.%u", s->file, i - 1);
                snprintf(to, sizeof(to), "%s.%u", s->file, i);
                (void)renameat(s->dirfd, from, s->dirfd, to);
        }
        s->fd = openat(s->dirfd, s->file,
                       O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        s->size = 0;
}

static void sink_raw(struct log_sink *s, const char *buf, size_t len)
{
        while (len > 0 && s->fd >= 0) {
                size_t room = s->max_size > s->size ? (size_t)(s->max_size - s->size) : 0;
                size_t n = len < room ? len : room;
                if (n == 0) {
                        sink_rotate(s);
                        continue;
                }
                ssize_t w = write(s->fd, buf, n);
                if (w <= 0)
                        return; /* a full disk loses output, never the tenant */
                s->size += (uint64_t)w;
                s->mid_line = buf[w - 1] != '\n';
                buf += w;
                len -= (size_t)w;
        }
}

/* Complete lines go to syslog as well when the manifest asks; control characters were
 * already the tenant's choice in its own log file, but not in the system's. */
static void sink_syslog(struct log_sink *s, const char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (c == '\n' || s->line_len == sizeof(s->line) - 1) {
                        s->line[s->line_len] = '\0';
                        syslog(LOG_INFO, "tenant=%s %s", s->tenant, s->line);
                        s->line_len = 0;
                        if (c == '\n')
                                continue;
                }
                s->line[s->line_len++] = (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
        }
}

static void sink_refill(struct log_sink *s)
{
        uint64_t now = clock_ms(CLOCK_MONOTONIC);
        uint64_t add = (now - s->refilled_ms) * s->rate / 1000;
        if (add > 0) {
                s->tokens = s->tokens + add > s->burst ? s->burst : s->tokens + add;
                s->refilled_ms = now;
        }
}

/* Once output is accepted again, or the tenant went quiet, the log says what was lost. */
static void sink_drop_note(struct log_sink *s)
{
        if (!s->dropped || s->tokens == 0)
                return;
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "\n[tenantd: %" PRIu64 " bytes of output dropped: over the rate limit of "
                         "%" PRIu64 " bytes/s]\n",
                         s->dropped, s->rate);
        sink_raw(s, note, (size_t)n);
        s->dropped = 0;
}

/* The tenant's bytes, escaped (logtext.h): in the file, "[tenantd" begins only
 * tenantd's own notes, and nothing in it drives the terminal of whoever reads it. */
static void sink_text(struct log_sink *s, const char *buf, size_t len, bool final)
{
        static char out[LOGTEXT_MAX(65536)];
        while (len > 0 || final) {
                size_t n = len < 65536 ? len : 65536;
                size_t o = logtext_stream(&s->text, buf, n, final && n == len, out);
                sink_raw(s, out, o);
                if (s->to_syslog)
                        sink_syslog(s, out, o);
                buf += n;
                len -= n;
                if (len == 0)
                        break;
        }
}

static void sink_write(struct log_sink *s, const char *buf, size_t len)
{
        if (s->rate) {
                sink_refill(s);
                size_t allowed = len < s->tokens ? len : (size_t)s->tokens;
                if (allowed == len)
                        sink_drop_note(s);
                s->dropped += len - allowed;
                s->tokens -= allowed;
                len = allowed;
        }
        if (len == 0)
                return;
        sink_text(s, buf, len, false);
}

static void sink_note(struct log_sink *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sink_note(struct log_sink *s, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n <= 0)
                return;
        /* A note begins a line of its own: what the tenant left held back or
         * unfinished is written out first. */
        sink_text(s, "", 0, true);
        if (s->mid_line)
                sink_raw(s, "\n", 1);
        sink_raw(s, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int sink_open(struct log_sink *s, const struct keeper_config *kc, struct tn_err **err)
{
        const struct manifest *m = kc->m;
        char dir[4096];
        logs_dir(kc->state_dir, dir, sizeof(dir));
        (void)mkdir(dir, 0750);
        *s = (struct log_sink){.fd = -1,
                               .max_size = m->logs.max_size,
                               .keep = m->logs.keep,
                               .rate = m->logs.rate,
                               .burst = m->logs.rate > (64U << 10) ? m->logs.rate : 64U << 10,
                               .to_syslog = m->logs.syslog,
                               .tenant = m->name};
        s->tokens = s->burst;
        s->refilled_ms = clock_ms(CLOCK_MONOTONIC);
        snprintf(s->file, sizeof(s->file), "%s.log", m->name);
        s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (s->dirfd < 0)
                return tn_err_set(err, errno, "cannot open %s", dir);
        s->fd =
            openat(s->dirfd, s->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (s->fd < 0)
                return tn_err_set(err, errno, "cannot open %s/%s", dir, s->file);
        struct stat st;
        if (fstat(s->fd, &st) == 0)
                s->size = (uint64_t)st.st_size;
        return 0;
}

/* ---- the keeper process ---- */

static int write_run_record(const struct keeper_config *kc, pid_t init_pid, uint32_t id_base,
                            struct tn_err **err)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return tn_err_setx(err, ENOMEM, "out of memory");
        json_gen_object_open(g);
        json_gen_key(g, "generation");
        json_gen_int(g, (int64_t)kc->generation);
        json_gen_key(g, "keeper_pid");
        json_gen_int(g, getpid());
        json_gen_key(g, "keeper_start");
        json_gen_int(g, (int64_t)proc_start_time(getpid()));
        json_gen_key(g, "init_pid");
        json_gen_int(g, init_pid);
        json_gen_key(g, "init_start");
        json_gen_int(g, (int64_t)proc_start_time(init_pid));
        json_gen_key(g, "started_ms");
        json_gen_int(g, (int64_t)clock_ms(CLOCK_REALTIME));
        json_gen_key(g, "id_base");
        json_gen_int(g, id_base);
        json_gen_object_close(g);
        return record_write(kc->state_dir, kc->m->name, "run.json", g, err);
}

static void write_exit_record(const struct keeper_config *kc, int status,
                              const struct cgroup_sample *cs)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        _cleanup_err_ struct tn_err *err = NULL;
        if (!g)
                return;
        json_gen_object_open(g);
        json_gen_key(g, "generation");
        json_gen_int(g, (int64_t)kc->generation);
        json_gen_key(g, "status");
        json_gen_int(g, status);
        json_gen_key(g, "ended_ms");
        json_gen_int(g, (int64_t)clock_ms(CLOCK_REALTIME));
        json_gen_key(g, "oom_kills");
        json_gen_int(g, (int64_t)((cs->valid & CGS_OOM) ? cs->oom_kills : 0));
        json_gen_key(g, "pids_limit_hits");
        json_gen_int(g, (int64_t)((cs->valid & CGS_PIDS_EVENTS) ? cs->pids_max_events : 0));
        json_gen_object_close(g);
        if (record_write(kc->state_dir, kc->m->name, "exit.json", g, &err) < 0)
                log_error("tenant=%s cannot record its exit: %s", kc->m->name, tn_err_msg(err));
}

size_t keeper_status_format(char *buf, size_t len, pid_t pid, const char *error)
{
        if (len < 2)
                return 0;
        int n = error ? snprintf(buf, len - 1, "error %s", error)
                      : snprintf(buf, len - 1, "started %d", (int)pid);
        size_t l = n < 0 ? 0 : (size_t)n > len - 2 ? len - 2 : (size_t)n;
        for (size_t i = 0; i < l; i++)
                if (buf[i] == '\n')
                        buf[i] = ' ';
        buf[l++] = '\n';
        buf[l] = '\0';
        return l;
}

int keeper_status_parse(char *line, pid_t *ret_pid, const char **ret_error)
{
        size_t len = strcspn(line, "\n");
        line[len] = '\0';
        if (strncmp(line, "error ", 6) == 0) {
                *ret_pid = 0;
                *ret_error = line + 6;
                return 0;
        }
        if (strncmp(line, "started ", 8) != 0 || len == 8 || len > 8 + 10)
                return -EBADMSG;
        long long v = 0;
        for (size_t i = 8; i < len; i++) {
                if (line[i] < '0' || line[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (line[i] - '0');
        }
        if (v <= 0 || v > INT_MAX)
                return -EBADMSG;
        *ret_pid = (pid_t)v;
        return 0;
}

int keeper_event_parse(char *line, const char **ret_syscall, uint64_t *ret_count)
{
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "seccomp-denied ", 15) != 0)
                return -EBADMSG;
        char *name = line + 15, *sp = strchr(name, ' ');
        if (!sp || sp == name || sp - name > 63)
                return -EBADMSG;
        for (char *c = name; c < sp; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                      *c == '-'))
                        return -EBADMSG;
        const char *num = sp + 1;
        size_t len = strlen(num);
        if (len == 0 || len > 19 || num[0] == '0')
                return -EBADMSG;
        uint64_t v = 0;
        for (size_t i = 0; i < len; i++) {
                if (num[i] < '0' || num[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (uint64_t)(num[i] - '0');
        }
        if (v > INT64_MAX)
                return -EBADMSG;
        *sp = '\0';
        *ret_syscall = name;
        *ret_count = v;
        return 0;
}

/* A report of lib/seccomp_notify.h: to tenantd if it listens, else to syslog. */
struct denied_ctx {
        int event_fd;
        const char *tenant;
};

static void keeper_denied(void *ctx, int nr, uint64_t count)
{
        const struct denied_ctx *c = ctx;
        char name[64] = "other", buf[KEEPER_EVENT_MAX];
        if (nr >= 0)
                policy_syscall_name(nr, name, sizeof(name));
        int n = snprintf(buf, sizeof(buf), "seccomp-denied %s %" PRIu64 "\n", name, count);
        if (n > 0 && (size_t)n < sizeof(buf) && write(c->event_fd, buf, (size_t)n) == n)
                return;
        notifier_format(buf, sizeof(buf), c->tenant, name, count);
        log_warning("%s", buf);
}

static void report(int fd, pid_t pid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The status line: "started PID" with fmt NULL, else the error fmt says. */
static void report(int fd, pid_t pid, const char *fmt, ...)
{
        char msg[KEEPER_STATUS_MAX], buf[KEEPER_STATUS_MAX];
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                (void)vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
        }
        size_t n = keeper_status_format(buf, sizeof(buf), pid, fmt ? msg : NULL);
        (void)!write(fd, buf, n);
}

/* Reads what is there; false once the pipe is at its end. */
static bool pump(int fd, struct log_sink *s)
{
        static char buf[LOG_READ_CHUNK];
        for (int i = 0; i < 16; i++) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN;
                if (n == 0)
                        return false;
                sink_write(s, buf, (size_t)n);
        }
        return true;
}

void keeper_vm_cleanup(const struct manifest *m, const char *state_dir, uint32_t uid_base)
{
        /* The domain through the runner: only it loads libvirt (vm_runner.h). */
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_runner_cleanup(m->name, state_dir, &err) < 0)
                log_warning("cleanup of \"%s\": %s", m->name, tn_err_msg(err));
        volumes_close(m->name); /* after the domain: virtiofsd held them */
        uint32_t base;
        struct net_tenant net = {0};
        if (m->network.mode == NET_PRIVATE &&
            uidrange_get(state_dir, m->name, uid_base, &base, NULL) == 0 &&
            net_private_prepare(m, state_dir, (base - uid_base) / UIDRANGE_SIZE, &net, NULL) == 0) {
                net.firewall = true;
                net.tap = true;
                net_private_detach_tap(&net);
        }
}

/* A microVM tenant: a child execs the runner as `tenantctl run` does (vm_runner.h) with the
 * keeper's pipes as its stdout and stderr, and signals from tenantd forwarded to the
 * service through the agent. It is what tenantd sees as the tenant's "init". */
static _Noreturn void keeper_vm(const struct keeper_config *kc, int status_fd, int event_fd,
                                struct log_sink *sink, int out, int errp, int devnull)
{
        const struct manifest *m = kc->m;
        struct tn_err *err = NULL;
        sigset_t forwarded;
        sigemptyset(&forwarded);
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaddset(&forwarded, sigs[i]);
        uint32_t base = 0;
        if (uidrange_get(kc->state_dir, m->name, kc->uid_base, &base, &err) < 0) {
                report(status_fd, 0, "%s", tn_err_msg(err));
                _exit(1);
        }
        /* The runner says on `ready` when the agent has started the service: only then
         * is the tenant "running" for tenantd, as a sandbox is once its service runs. */
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0) {
                report(status_fd, 0, "pipe: %s", strerror(errno));
                _exit(1);
        }
        int pidfd = -1;
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
        if (pid == 0) {
                close(status_fd);
                close(ready[0]);
                fcntl(ready[1], F_SETFD, 0);
                char fdstr[16];
                snprintf(fdstr, sizeof(fdstr), "%d", ready[1]);
                setenv("TENANTD_READY_FD", fdstr, 1);
                /* The guest's denied calls, as the runner sums them (cmd_run_vm.c), come
                 * to tenantd as a sandbox's do from the keeper. */
                fcntl(event_fd, F_SETFD, 0);
                snprintf(fdstr, sizeof(fdstr), "%d", event_fd);
                setenv("TENANTD_EVENT_FD", fdstr, 1);
                sigprocmask(SIG_BLOCK, &forwarded, NULL);
                /* The keeper gone, the VM is stopped as on Ctrl-C (the death signal
                 * survives the exec of the runner, which is not setuid). */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                struct tn_err *xerr = NULL;
                (void)vm_runner_exec(m, kc->argv, kc->state_dir, kc->storage_dir, kc->master_key,
                                     &xerr);
                fprintf(stderr, "tenantd: cannot start the microVM runner: %s\n", tn_err_msg(xerr));
                _exit(1);
        }
        close(ready[1]);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (pid < 0) {
                report(status_fd, 0, "cannot fork: %s", strerror(errno));
                _exit(1);
        }
        if (write_run_record(kc, pid, base, &err) < 0) {
                report(status_fd, 0, "%s", tn_err_msg(err));
                kill(pid, SIGKILL);
                _exit(1);
        }
        sink_note(sink, "[tenantd: starting microVM %s, runner pid %d]\n", m->name, (int)pid);

        bool out_open = true, err_open = true, ended = false, reported = false;
        while (out_open || err_open || !ended) {
                struct pollfd fds[4] = {{.fd = out_open ? out : -1, .events = POLLIN},
                                        {.fd = err_open ? errp : -1, .events = POLLIN},
                                        {.fd = ended ? -1 : pidfd, .events = POLLIN},
                                        {.fd = reported ? -1 : ready[0], .events = POLLIN}};
                if (poll(fds, 4, ended ? DRAIN_MS : (sink->dropped ? 1000 : -1)) <= 0 && ended)
                        break;
                if (fds[3].revents) {
                        char c;
                        bool ok = read(ready[0], &c, 1) == 1;
                        reported = true;
                        close(ready[0]);
                        if (ok)
                                report(status_fd, pid, NULL);
                        else
                                report(status_fd, 0,
                                       "the microVM's service did not start (tenantctl logs "
                                       "%s says why)",
                                       m->name);
                        close(status_fd);
                }
                if (fds[0].revents)
                        out_open = pump(out, sink);
                if (fds[1].revents)
                        err_open = pump(errp, sink);
                if (fds[2].revents)
                        ended = true;
                if (sink->dropped && !(fds[0].revents | fds[1].revents)) {
                        sink_refill(sink);
                        sink_drop_note(sink);
                }
        }
        siginfo_t si = {0};
        while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        int status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        /* A runner that did not end by itself left its domain, tap and tables. */
        if (si.si_code != CLD_EXITED)
                keeper_vm_cleanup(m, kc->state_dir, kc->uid_base);
        sink_note(sink, "[tenantd: %s exited with status %d]\n", m->name, status);
        struct cgroup_sample cs = {0};
        write_exit_record(kc, status, &cs);
        _exit(0);
}

static _Noreturn void keeper_main(const struct keeper_config *kc, int status_fd, int event_fd)
{
        const struct manifest *m = kc->m;
        struct tn_err *err = NULL;

        /* Nothing of tenantd stays open here: not its control socket, not other
         * tenants' descriptors. The status pipe becomes 3, the event pipe 4. */
        int s3 = fcntl(status_fd, F_DUPFD_CLOEXEC, 10), e4 = fcntl(event_fd, F_DUPFD_CLOEXEC, 10);
        dup3(s3, 3, O_CLOEXEC);
        dup3(e4, 4, O_CLOEXEC);
        status_fd = 3;
        event_fd = 4;
        close_range(5, ~0U, 0);
        /* Never blocked by a tenantd that does not read: a line it cannot take goes to
         * syslog instead (keeper_denied). */
        fcntl(event_fd, F_SETFL, O_NONBLOCK);
        setsid();
        prctl(PR_SET_NAME, "tenantd-keeper");
        sigset_t none;
        sigemptyset(&none);
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        sigprocmask(SIG_SETMASK, &none, NULL);
        log_open("tenantd-keeper", LOG_TARGET_SYSLOG, LOG_DAEMON);

        struct log_sink sink;
        if (sink_open(&sink, kc, &err) < 0) {
                report(status_fd, 0, "logs: %s", tn_err_msg(err));
                _exit(1);
        }
        int out[2], errp[2];
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
                report(status_fd, 0, "cannot create the output pipes: %s", strerror(errno));
                _exit(1);
        }
        /* The tenant's stdio: /dev/null in, the two pipes out. dup2 clears
         * close-on-exec on 0-2, which the sandbox hands down to the service. */
        dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(errp[1], 2);
        close(out[1]);
        close(errp[1]);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(errp[0], F_SETFL, O_NONBLOCK);

        if (m->isolation == ISOLATION_MICROVM)
                keeper_vm(kc, status_fd, event_fd, &sink, out[0], errp[0], devnull);

        struct sandbox_config cfg = {.m = m,
                                     .argv = kc->argv,
                                     .state_dir = kc->state_dir,
                                     .uid_base = kc->uid_base,
                                     .bpf = kc->bpf,
                                     .caps = kc->caps,
                                     .caps_n = kc->caps_n,
                                     .die_with_parent = true};
        struct sandbox *sb = NULL;
        char *warnings = NULL;
        /* The volumes first, on the host, owned by root until the sandbox's plan gives
         * each root to the service's ids (rootfs.c); closed when the tenant has ended. */
        int r = volumes_open(m, kc->storage_dir, kc->master_key, 0, 0, &err);
        if (r >= 0) {
                r = sandbox_start(&cfg, &sb, &warnings, &err);
                if (r < 0)
                        volumes_close(m->name);
        }
        /* From here the keeper's own 1 and 2 are /dev/null: only the tenant holds the
         * pipes' write ends, so they end when the tenant does. */
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (warnings && *warnings) {
                for (char *save = NULL, *line = strtok_r(warnings, "\n", &save); line;
                     line = strtok_r(NULL, "\n", &save))
                        sink_note(&sink, "[tenantd: warning: %s]\n", line);
        }
        free(warnings);
        if (r < 0) {
                sink_note(&sink, "[tenantd: cannot start: %s]\n", tn_err_msg(err));
                report(status_fd, 0, "%s", tn_err_msg(err));
                _exit(1);
        }
        if (write_run_record(kc, sb->pid, sb->id_base, &err) < 0) {
                sink_note(&sink, "[tenantd: cannot record the start: %s]\n", tn_err_msg(err));
                report(status_fd, 0, "%s", tn_err_msg(err));
                (void)sandbox_destroy(sb, NULL);
                volumes_close(m->name);
                _exit(1);
        }
        sink_note(&sink, "[tenantd: started %s, pid %d]\n", m->name, (int)sb->pid);
        report(status_fd, sb->pid, NULL);
        close(status_fd);
        /* The keeper is a fork of tenantd: its heap is tenantd's, shared until either
         * side writes a page, and tenantd's churn makes those pages the keeper's own
         * one by one. What is free in this copy (tenantd's free chunks at the fork, and
         * what the start allocated and released) goes back to the kernel now: ~150
         * KiB of the keeper's PSS (bench/daemon-cost). */
        malloc_trim(0);

        bool out_open = true, err_open = true;
        uint64_t ended_at = 0;
        struct denied_ctx dc = {.event_fd = event_fd, .tenant = m->name};
        while (out_open || err_open) {
                struct pollfd fds[4] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                                        {.fd = err_open ? errp[0] : -1, .events = POLLIN},
                                        {.fd = ended_at ? -1 : sb->pidfd, .events = POLLIN}};
                int timeout = sink.dropped ? 1000 : -1;
                uint64_t now = clock_ms(CLOCK_MONOTONIC);
                if (ended_at) {
                        if (now >= ended_at + DRAIN_MS)
                                break;
                        timeout = (int)(ended_at + DRAIN_MS - now);
                }
                /* Notified calls: answered a bounded number at a time, between the
                 * rest of the loop's work (lib/seccomp_notify.h). */
                timeout = notifier_pollfd(sb->notifier, now, &fds[3], timeout);
                /* Output over the rate cap is read and dropped, with a note in the
                 * log once output is accepted again: the tenant is never blocked on
                 * its own stdout, and its logs take at most max_size * (keep + 1). */
                if (poll(fds, 4, timeout) < 0 && errno != EINTR)
                        break;
                if (fds[3].revents)
                        (void)notifier_answer(sb->notifier, clock_ms(CLOCK_MONOTONIC));
                if (sb->notifier)
                        (void)notifier_report(sb->notifier, clock_ms(CLOCK_MONOTONIC), false,
                                              keeper_denied, &dc);
                if (fds[0].revents)
                        out_open = pump(out[0], &sink);
                if (fds[1].revents)
                        err_open = pump(errp[0], &sink);
                if (fds[2].revents)
                        ended_at = clock_ms(CLOCK_MONOTONIC);
                if (sink.dropped && !(fds[0].revents | fds[1].revents)) {
                        sink_refill(&sink);
                        sink_drop_note(&sink);
                }
        }
        if (sb->notifier)
                (void)notifier_report(sb->notifier, 0, true, keeper_denied, &dc);
        int status = 128 + SIGKILL;
        if (sandbox_wait(sb, &status, &err) < 0)
                log_error("tenant=%s %s", m->name, tn_err_msg(err));
        tn_err_free(err);
        err = NULL;
        if (sink.dropped) {
                sink.tokens = 1;
                sink_drop_note(&sink);
        }
        sink_note(&sink, "[tenantd: %s exited with status %d]\n", m->name, status);
        struct cgroup_sample cs = {0};
        (void)tenant_cgroup_sample(sb->cgroup, &cs, NULL);
        if (sandbox_destroy(sb, &err) < 0)
                log_warning("tenant=%s cleanup: %s", m->name, tn_err_msg(err));
        volumes_close(m->name);
        write_exit_record(kc, status, &cs);
        _exit(0);
}

int keeper_spawn(const struct keeper_config *kc, struct keeper *ret, struct tn_err **err)
{
        char dir[4096];
        tenant_dir(kc->state_dir, "", dir, sizeof(dir));
        (void)mkdir(kc->state_dir, 0711);
        (void)mkdir(dir, 0700);
        tenant_dir(kc->state_dir, kc->m->name, dir, sizeof(dir));
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", dir);
        keeper_records_remove(kc->state_dir, kc->m->name);

        /* The events go through a named pipe in the tenant's directory (0700, root's),
         * so that a tenantd restarted while the tenant runs opens it again (adoption)
         * and keeps receiving what the keeper, and a microVM's runner, write. */
        int st[2], ev[2] = {-1, -1};
        char fifo[4096];
        if (pipe2(st, O_CLOEXEC) < 0)
                return tn_err_set(err, errno, "pipe");
        int r = record_path(kc->state_dir, kc->m->name, KEEPER_EVENTS_FIFO, fifo, sizeof(fifo));
        if (r == 0 && mkfifo(fifo, 0600) < 0)
                r = -errno;
        if (r == 0 && (ev[0] = keeper_events_open(kc->state_dir, kc->m->name, NULL)) < 0)
                r = ev[0];
        if (r == 0 && (ev[1] = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
                r = -errno;
        if (r < 0) {
                close(st[0]);
                close(st[1]);
                if (ev[0] >= 0)
                        close(ev[0]);
                unlink(fifo);
                return tn_err_set(err, -r, "the keeper's event pipe %s", fifo);
        }
        int pidfd = -1;
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
        if (pid < 0) {
                int e = errno;
                close(st[0]);
                close(st[1]);
                close(ev[0]);
                close(ev[1]);
                return tn_err_set(err, e, "cannot fork the keeper");
        }
        if (pid == 0) {
                close(st[0]);
                close(ev[0]);
                keeper_main(kc, st[1], ev[1]);
        }
        close(st[1]);
        close(ev[1]);
        fcntl(st[0], F_SETFL, O_NONBLOCK);
        fcntl(ev[0], F_SETFL, O_NONBLOCK);
        *ret = (struct keeper){.pid = pid, .pidfd = pidfd, .status_fd = st[0], .event_fd = ev[0]};
        return 0;
}
