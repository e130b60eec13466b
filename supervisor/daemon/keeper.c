/* keeper.c — the per-tenant keeper process (see keeper.h). */
#include "daemon/keeper.h"
#include "lib/clock.h"
#include "lib/logsink.h"
#include "daemon/keeper_exec.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <inttypes.h>
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
#include "lib/strutil.h"
#include "host/net.h"
#include "lib/seccomp_notify.h"
#include "sandbox/sandbox.h"
#include "storage/volume.h"
#include "host/uidrange.h"
#include "spec/policy.h"
#include "vm/vm_runner.h"

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
        if (record_path(state_dir, name, KEEPER_GUEST_LIMITS, path, sizeof(path)) == 0)
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

/* ---- the log sink (lib/logsink.h) ---- */

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

static void write_exit_record(const char *state_dir, const char *name, uint64_t generation,
                              int status, const struct cgroup_sample *cs)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        _cleanup_err_ struct tn_err *err = NULL;
        if (!g)
                return;
        json_gen_object_open(g);
        json_gen_key(g, "generation");
        json_gen_int(g, (int64_t)generation);
        json_gen_key(g, "status");
        json_gen_int(g, status);
        json_gen_key(g, "ended_ms");
        json_gen_int(g, (int64_t)clock_ms(CLOCK_REALTIME));
        json_gen_key(g, "oom_kills");
        json_gen_int(g, (int64_t)((cs->valid & CGS_OOM) ? cs->oom_kills : 0));
        json_gen_key(g, "pids_limit_hits");
        json_gen_int(g, (int64_t)((cs->valid & CGS_PIDS_EVENTS) ? cs->pids_max_events : 0));
        json_gen_object_close(g);
        if (record_write(state_dir, name, "exit.json", g, &err) < 0)
                log_error("tenant=%s cannot record its exit: %s", name, tn_err_msg(err));
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

/* A decimal from 0 to `max` without leading zeros or sign, ending at `end` (a space or
 * the NUL): where it ends, or NULL. The one number parser of the keeper's lines and
 * words, which come from other processes. */
static const char *parse_decimal(const char *s, char end, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;
        size_t n = 0;
        for (; s[n] >= '0' && s[n] <= '9'; n++) {
                uint64_t d = (uint64_t)(s[n] - '0');
                if (v > (max - d) / 10)
                        return NULL;
                v = v * 10 + d;
        }
        if (n == 0 || (n > 1 && s[0] == '0') || s[n] != end)
                return NULL;
        *ret = v;
        return s + n;
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
        uint64_t v;
        if (!parse_decimal(sp + 1, '\0', INT64_MAX, &v) || v == 0)
                return -EBADMSG;
        *sp = '\0';
        *ret_syscall = name;
        *ret_count = v;
        return 0;
}

int keeper_event_parse_limits(const char *line, uint64_t *ret_oom, uint64_t *ret_pids)
{
        if (strncmp(line, "guest-limits ", 13) != 0)
                return -EBADMSG;
        uint64_t oom, pids;
        /* at most 2^53-1: what a JSON number holds exactly (status --json) */
        const char *p = parse_decimal(line + 13, ' ', 9007199254740991ULL, &oom);
        if (!p || !parse_decimal(p + 1, '\0', 9007199254740991ULL, &pids))
                return -EBADMSG;
        *ret_oom = oom;
        *ret_pids = pids;
        return 0;
}

int keeper_guest_limits_save(const char *state_dir, const char *name, uint64_t oom, uint64_t pids,
                             struct tn_err **err)
{
        char path[4096], line[96];
        if (record_path(state_dir, name, KEEPER_GUEST_LIMITS, path, sizeof(path)) < 0)
                return tn_err_setx(err, ENAMETOOLONG, "state path too long");
        int n = snprintf(line, sizeof(line), "guest-limits %" PRIu64 " %" PRIu64 "\n", oom, pids);
        return write_file_atomic(path, line, (size_t)n, 0600, err);
}

int keeper_guest_limits_load(const char *state_dir, const char *name, uint64_t *ret_oom,
                             uint64_t *ret_pids)
{
        char path[4096], line[96];
        if (record_path(state_dir, name, KEEPER_GUEST_LIMITS, path, sizeof(path)) < 0)
                return -ENAMETOOLONG;
        ssize_t n = read_small_file(path, line, sizeof(line));
        if (n < 0)
                return (int)n;
        if (n == 0 || (size_t)n >= sizeof(line) || line[n - 1] != '\n')
                return -EBADMSG;
        line[n - 1] = '\0';
        if (memchr(line, '\0', (size_t)n - 1))
                return -EBADMSG;
        return keeper_event_parse_limits(line, ret_oom, ret_pids);
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

void keeper_vm_cleanup(const struct manifest *m, const char *state_dir, uint32_t uid_base)
{
        /* The domain through the runner: only it loads libvirt (vm_runner.h). */
        _cleanup_err_ struct tn_err *err = NULL;
        if (vm_runner_cleanup(m->name, state_dir, &err) < 0)
                log_warning("cleanup of \"%s\": %s", m->name, tn_err_msg(err));
        /* The cgroups the runner moved QEMU and virtiofsd into (OWN/tenantd/NAME), which
         * a runner that ended by itself removes: what is left in them (a helper that
         * outlived the domain) is killed, and each goes once empty (up to ~1 s). */
        int r = -EBUSY;
        for (int i = 0; i < 200 && r == -EBUSY; i++) {
                r = tenant_cgroup_kill_remove(m->name, SIGKILL);
                if (r == -EBUSY)
                        usleep(5000);
        }
        if (r < 0)
                log_warning("cleanup of \"%s\": its cgroups: %s", m->name, strerror(-r));
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

/* What tenantd-keeper gets besides the log and the output pipes (keeper_exec.h). */
struct keeper_handover {
        const char *kind;             /* KEEPER_KIND_* */
        int pidfd;                    /* the init's, or the runner's */
        int lifeline, manifest;       /* -1: none */
        struct notifier *notifier;    /* a sandbox's listener, its counts so far; NULL */
        const struct net_tenant *net; /* a sandbox's own network; NULL: none */
};

static _Noreturn void keeper_exec_loop(const struct keeper_config *kc, struct log_sink *sink,
                                       const struct keeper_handover *h, int out, int errp,
                                       int event_fd, const char *program, int exe_fd);

/* A microVM tenant: a child execs the runner as `tenantctl run` does (vm_runner.h) with the
 * keeper's pipes as its stdout and stderr; tenantd's signals reach it directly. It is
 * what tenantd sees as the tenant's "init". Once it has said whether the service
 * started, the keeper becomes tenantd-keeper as a sandbox's does. */
static _Noreturn void keeper_vm(const struct keeper_config *kc, int status_fd, int event_fd,
                                struct log_sink *sink, int out, int errp, int devnull,
                                const char *program, int exe_fd)
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
        /* The manifest as the runner gets it, for --keeper-finish to clean up after a
         * runner that did not end by itself (keeper_vm_cleanup needs its network). */
        int manifest_fd = vm_runner_manifest_fd(m, &err);
        if (manifest_fd < 0 || fcntl(manifest_fd, F_SETFD, FD_CLOEXEC) < 0) {
                report(status_fd, 0, "%s", err ? tn_err_msg(err) : strerror(errno));
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
                 * survives the exec of the runner, which is not setuid, and the
                 * keeper's exec of tenantd-keeper, which ends no thread). */
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
        log_sink_note(sink, "[tenantd: starting microVM %s, runner pid %d]\n", m->name, (int)pid);

        /* The boot: the output goes to the log until the runner says whether the
         * service started, or ends without saying (a helper it started may still hold
         * the ready pipe, so its end is watched too). */
        bool out_open = true, err_open = true, ok = false;
        for (;;) {
                struct pollfd fds[4] = {{.fd = out_open ? out : -1, .events = POLLIN},
                                        {.fd = err_open ? errp : -1, .events = POLLIN},
                                        {.fd = pidfd, .events = POLLIN},
                                        {.fd = ready[0], .events = POLLIN}};
                if (poll(fds, 4, sink->dropped ? 1000 : -1) < 0 && errno != EINTR)
                        break;
                if (fds[3].revents) {
                        char c;
                        ok = read(ready[0], &c, 1) == 1;
                        break;
                }
                if (fds[2].revents)
                        break;
                if (fds[0].revents)
                        out_open = log_sink_pump(out, sink);
                if (fds[1].revents)
                        err_open = log_sink_pump(errp, sink);
                if (sink->dropped && !(fds[0].revents | fds[1].revents)) {
                        log_sink_refill(sink);
                        log_sink_drop_note(sink);
                }
        }
        close(ready[0]);
        if (ok)
                report(status_fd, pid, NULL);
        else
                report(status_fd, 0,
                       "the microVM's service did not start (tenantctl logs %s says why)", m->name);
        close(status_fd);
        /* A pipe already at its end is handed on as one: tenantd-keeper reads EOF. */
        const struct keeper_handover h = {
            .kind = KEEPER_KIND_MICROVM, .pidfd = pidfd, .lifeline = -1, .manifest = manifest_fd};
        keeper_exec_loop(kc, sink, &h, out, errp, event_fd, program, exe_fd);
}

/* ---- the rest of a sandboxed tenant's life: tenantd-keeper (keeper_exec.h) ---- */

struct early_report {
        const char *tenant;
        int event_fd;
        char *notify; /* the NOTIFY word (keeper_exec.h), ",NR" appended per report */
        size_t len;
};

/* A report of calls answered before the exec: the same event line tenantd-keeper
 * writes (keeper_loop.c), and the call's number added to the NOTIFY word. */
static void report_early(void *ctx, int nr, uint64_t count)
{
        struct early_report *e = ctx;
        char name[64] = "other", line[256];
        if (nr >= 0)
                policy_syscall_name(nr, name, sizeof(name));
        int n = snprintf(line, sizeof(line), "seccomp-denied %s %" PRIu64 "\n", name, count);
        if (n <= 0 || (size_t)n >= sizeof(line) || write(e->event_fd, line, (size_t)n) != n) {
                notifier_format(line, sizeof(line), e->tenant, name, count);
                log_warning("%s", line); /* tenantd does not listen: as tenantd-keeper does */
        }
        n = snprintf(e->notify + e->len, KEEPER_NOTIFY_ARG_MAX - e->len, ",%d", nr);
        if (n > 0 && (size_t)n < KEEPER_NOTIFY_ARG_MAX - e->len)
                e->len += (size_t)n;
}

/* Puts fds[i] at number KEEPER_FD_EVENT + i (-1: left closed) and closes the rest. */
static int keeper_fds_place(const int *fds, size_t n)
{
        int tmp[KEEPER_FD_MAX + 1];
        for (size_t i = 0; i < n; i++) {
                /* Above every target first: a source may sit at another's number. */
                tmp[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
                if (fds[i] >= 0 && tmp[i] < 0)
                        return -errno;
        }
        for (size_t i = 0; i < n; i++) {
                int to = KEEPER_FD_EVENT + (int)i;
                if (tmp[i] < 0)
                        close(to);
                else if (dup2(tmp[i], to) < 0) /* dup2: not close-on-exec */
                        return -errno;
        }
        close_range(KEEPER_FD_MAX + 1, ~0U, 0);
        return 0;
}

/* The tenant runs: the keeper becomes tenantd-keeper, with the sink, the pipes, the
 * init's pidfd and lifeline and the listener (a microVM: the runner's pidfd and the
 * manifest) at fixed numbers. */
static _Noreturn void keeper_exec_loop(const struct keeper_config *kc, struct log_sink *sink,
                                       const struct keeper_handover *h, int out, int errp,
                                       int event_fd, const char *program, int exe_fd)
{
        const struct manifest *m = kc->m;
        char state[LOG_SINK_STATE_MAX], gen[24], uidbase[16], net[NET_ADDR_WORD_MAX] = "-";
        if (log_sink_state_format(sink, state, sizeof(state)) == 0) {
                log_error("tenant=%s the log's state does not fit its word", m->name);
                _exit(1);
        }
        snprintf(gen, sizeof(gen), "%" PRIu64, kc->generation);
        snprintf(uidbase, sizeof(uidbase), "%" PRIu32, kc->uid_base);
        if (h->net)
                net_addr_word(h->net, net);
        int fds[KEEPER_FD_MAX - KEEPER_FD_EVENT + 1];
        fds[0] = event_fd; /* KEEPER_FD_EVENT, the first */
        fds[KEEPER_FD_LOGDIR - KEEPER_FD_EVENT] = sink->dirfd;
        fds[KEEPER_FD_LOGFILE - KEEPER_FD_EVENT] = sink->fd;
        fds[KEEPER_FD_OUT - KEEPER_FD_EVENT] = out;
        fds[KEEPER_FD_ERR - KEEPER_FD_EVENT] = errp;
        fds[KEEPER_FD_PIDFD - KEEPER_FD_EVENT] = h->pidfd;
        fds[KEEPER_FD_LIFELINE - KEEPER_FD_EVENT] = h->lifeline;
        fds[KEEPER_FD_TENANTD - KEEPER_FD_EVENT] = exe_fd;
        fds[KEEPER_FD_NOTIFY - KEEPER_FD_EVENT] = h->notifier ? h->notifier->fd : -1;
        fds[KEEPER_FD_MANIFEST - KEEPER_FD_EVENT] = h->manifest;
        /* The service may have made notified calls already: read_child_reports answered
         * them while the sandbox started. Their counts are in this process's notifier
         * and would die with the exec, so they are reported here, now (they were never
         * reported: due at once), and tenantd-keeper is told which calls were, so that
         * its next report of each is NOTIFY_REPORT_MS away as if it had made this one. */
        char notify[KEEPER_NOTIFY_ARG_MAX] = "0";
        if (h->notifier) {
                struct early_report e = {
                    .tenant = m->name, .event_fd = event_fd, .notify = notify, .len = 1};
                notify[0] = '1';
                (void)notifier_report(h->notifier, clock_ms(CLOCK_MONOTONIC), true, report_early,
                                      &e);
        }
        char *args[KEEPER_ARGC + 1] = {(char *)KEEPER_PROGRAM};
        args[KEEPER_ARG_NAME] = (char *)m->name;
        args[KEEPER_ARG_KIND] = (char *)h->kind;
        args[KEEPER_ARG_SINK] = state;
        args[KEEPER_ARG_NOTIFY] = notify;
        args[KEEPER_ARG_STATE] = (char *)kc->state_dir;
        args[KEEPER_ARG_GENERATION] = gen;
        args[KEEPER_ARG_NET] = net;
        args[KEEPER_ARG_UIDBASE] = uidbase;
        /* syslog's socket first: its number may be one of the targets. */
        closelog();
        int r = keeper_fds_place(fds, ARRAY_SIZE(fds));
        if (r >= 0) {
                execv(program, args);
                r = -errno;
        }
        log_open("tenantd-keeper", LOG_TARGET_SYSLOG, LOG_DAEMON);
        /* The tenant's init (a microVM's runner) dies with its parent: tenantd cleans up
         * (cleanup_leftovers). */
        log_error("tenant=%s cannot exec %s: %s", m->name, program, strerror(-r));
        _exit(1);
}

void keeper_sandbox_cleanup(const char *name, struct net_tenant *net,
                            struct cgroup_sample *ret_sample)
{
        /* What sandbox_destroy does for a keeper that still holds its struct sandbox:
         * the counters first, then the network, the cgroups, the volumes. */
        _cleanup_err_ struct tn_err *err = NULL;
        struct tenant_cgroup *cg = NULL;
        if (tenant_cgroup_create(name, &cg, &err) < 0) {
                log_warning("tenant=%s cleanup: %s", name, tn_err_msg(err));
                cg = NULL;
        } else if (ret_sample) {
                (void)tenant_cgroup_sample(cg, ret_sample, NULL);
        }
        if (net) {
                /* Its tables and its veth: the link named by its index is its own (the
                 * index is its uid range's, which no other tenant of this state
                 * directory ever gets). */
                net->firewall = true;
                net->veth = net->host_if[0] != '\0';
                net_private_remove(net);
        }
        if (cg) {
                /* The kernel tears the namespace down asynchronously: give the last
                 * processes a moment to leave the cgroups. */
                for (int i = 0; i < 200; i++) {
                        tn_err_free(err);
                        err = NULL;
                        if (tenant_cgroup_remove(cg, &err) >= 0)
                                break;
                        if (i == 199)
                                log_warning("tenant=%s cleanup: %s", name, tn_err_msg(err));
                        usleep(5000);
                }
                tenant_cgroup_free(cg);
        }
        /* the tenant's mount namespace died with its init: nothing else holds them */
        volumes_close(name);
}

static int parse_u64_arg(const char *s, uint64_t *ret)
{
        return parse_decimal(s, '\0', UINT64_MAX, ret) ? 0 : -EINVAL;
}

int keeper_finish_status_parse(const char *s, int *ret_status, bool *ret_exited)
{
        bool exited = strncmp(s, "exit:", 5) == 0;
        if (!exited && strncmp(s, "signal:", 7) != 0)
                return -EINVAL;
        uint64_t v;
        if (!parse_decimal(s + (exited ? 5 : 7), '\0', exited ? 255 : 127, &v) ||
            (!exited && v == 0))
                return -EINVAL;
        *ret_status = exited ? (int)v : 128 + (int)v;
        *ret_exited = exited;
        return 0;
}

/* A microVM's end: its runner tore the VM down unless it was killed; then what it
 * would have removed goes here. The exit record has no cgroup sample: the guest's
 * OOM kills and pids.max hits came as events while it ran. */
static int keeper_finish_vm(const char *state_dir, const char *name, uint64_t generation,
                            int status, bool exited, uint32_t uid_base)
{
        if (!exited) {
                _cleanup_manifest_ struct manifest *m = NULL;
                if (vm_runner_manifest_read(KEEPER_FD_MANIFEST, &m) < 0 || !m ||
                    strcmp(m->name, name) != 0)
                        log_error("tenant=%s cannot clean up after its runner: no manifest", name);
                else
                        keeper_vm_cleanup(m, state_dir, uid_base);
        }
        struct cgroup_sample cs = {0};
        write_exit_record(state_dir, name, generation, status, &cs);
        return 0;
}

int keeper_finish_main(int argc, char **argv)
{
        /* Only a microVM's manifest stays open (keeper_exec.h). */
        close_range(3, KEEPER_FD_MANIFEST - 1, 0);
        close_range(KEEPER_FD_MANIFEST + 1, ~0U, 0);
        log_open("tenantd-keeper", LOG_TARGET_SYSLOG, LOG_DAEMON);
        uint64_t generation, uid_base;
        int status;
        bool exited, vm = argc == KEEPER_FINISH_ARGC &&
                          strcmp(argv[KEEPER_FINISH_KIND], KEEPER_KIND_MICROVM) == 0;
        if (argc != KEEPER_FINISH_ARGC ||
            (!vm && strcmp(argv[KEEPER_FINISH_KIND], KEEPER_KIND_SANDBOX) != 0) ||
            !is_simple_name(argv[KEEPER_FINISH_NAME]) ||
            strlen(argv[KEEPER_FINISH_NAME]) > MANIFEST_NAME_MAX ||
            parse_u64_arg(argv[KEEPER_FINISH_GENERATION], &generation) < 0 ||
            keeper_finish_status_parse(argv[KEEPER_FINISH_STATUS], &status, &exited) < 0 ||
            parse_u64_arg(argv[KEEPER_FINISH_UIDBASE], &uid_base) < 0 || uid_base > UINT32_MAX) {
                log_error("%s: invalid arguments", KEEPER_FINISH_ARG);
                return 2;
        }
        const char *state_dir = argv[KEEPER_FINISH_STATE], *name = argv[KEEPER_FINISH_NAME],
                   *netspec = argv[KEEPER_FINISH_NET];
        if (vm)
                return keeper_finish_vm(state_dir, name, generation, status, exited,
                                        (uint32_t)uid_base);
        close(KEEPER_FD_MANIFEST);
        struct net_tenant net = {.firewall = true};
        snprintf(net.name, sizeof(net.name), "%s", name);
        if (strcmp(netspec, "-") != 0 && net_addr_word_parse(netspec, &net) < 0)
                log_error("tenant=%s %s: not a tenant's addresses: \"%s\"", name, KEEPER_FINISH_ARG,
                          netspec); /* its cgroups, tables, volumes go still */
        struct cgroup_sample cs = {0};
        keeper_sandbox_cleanup(name, strcmp(netspec, "-") != 0 ? &net : NULL, &cs);
        write_exit_record(state_dir, name, generation, status, &cs);
        return 0;
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
         * syslog instead (keeper_loop.c). */
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

        /* What the keeper execs once the tenant runs, found before anything starts: a
         * keeper that could not exec would take its tenant down with it. */
        char program[PATH_MAX];
        int exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
        if (exe_fd < 0) {
                report(status_fd, 0, "cannot open tenantd's executable: %s", strerror(errno));
                _exit(1);
        }
        if (tenantd_helper_find(KEEPER_PROGRAM, program, &err) < 0) {
                log_sink_note(&sink, "[tenantd: cannot start: %s]\n", tn_err_msg(err));
                report(status_fd, 0, "%s", tn_err_msg(err));
                _exit(1);
        }
        if (m->isolation == ISOLATION_MICROVM)
                keeper_vm(kc, status_fd, event_fd, &sink, out[0], errp[0], devnull, program,
                          exe_fd);

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
                        log_sink_note(&sink, "[tenantd: warning: %s]\n", line);
        }
        free(warnings);
        if (r < 0) {
                log_sink_note(&sink, "[tenantd: cannot start: %s]\n", tn_err_msg(err));
                report(status_fd, 0, "%s", tn_err_msg(err));
                _exit(1);
        }
        if (write_run_record(kc, sb->pid, sb->id_base, &err) < 0) {
                log_sink_note(&sink, "[tenantd: cannot record the start: %s]\n", tn_err_msg(err));
                report(status_fd, 0, "%s", tn_err_msg(err));
                (void)sandbox_destroy(sb, NULL);
                volumes_close(m->name);
                _exit(1);
        }
        log_sink_note(&sink, "[tenantd: started %s, pid %d]\n", m->name, (int)sb->pid);
        report(status_fd, sb->pid, NULL);
        close(status_fd);
        const struct keeper_handover h = {.kind = KEEPER_KIND_SANDBOX,
                                          .pidfd = sb->pidfd,
                                          .lifeline = sb->lifeline,
                                          .manifest = -1,
                                          .notifier = sb->notifier,
                                          .net = sb->has_net ? &sb->net : NULL};
        keeper_exec_loop(kc, &sink, &h, out[0], errp[0], event_fd, program, exe_fd);
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
