/* daemon.c — tenantd's event loop and the tenants' lifecycle (see daemon.h).
 *
 * A tenant's life, as this file drives it:
 *   start    policy resolved, a keeper forked (keeper.c); STARTING until the keeper
 *            reports "started PID" on its status pipe (RUNNING) or an error.
 *   stop     the manifest's stop signal to the tenant's init (which forwards it to the
 *            service); STOPPING; SIGKILL to the init when stop.timeout passes.
 *   the end  the keeper exits after recording the status in exit.json; its pidfd
 *            becomes readable. A requested stop ends in STOPPED; otherwise the
 *            restart policy decides: EXITED/FAILED, or BACKOFF (1 s doubling up to
 *            5 min by default) and a new start, or CRASHLOOP once `burst` failures
 *            came without a stable run (restart.stable) in between.
 * What the operator asked for last (running or stopped) is kept in
 * STATE/tenants/NAME/state.json, so a restarted tenantd neither starts what the
 * operator stopped nor forgets what was running. */
#include "daemon/daemon.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor/alert.h"
#include "host/cgroup.h"
#include "host/etc_links.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "daemon/keeper.h"
#include "spec/launch.h"
#include "spec/manifest_edit.h"
#include "lib/log.h"
#include "daemon/monitor_glue.h"
#include "host/net.h"
#include "spec/policy.h"
#include "vm/share_check.h"
#include "storage/volume.h"
#include "lib/strutil.h"
#include "lib/trust.h"
#include "host/uidrange.h"

#define EVENTS_KEPT 1000
#define MAX_TENANTS 4096

const char *tenant_state_name(enum tenant_state s)
{
        static const char *const names[] = {
            [TENANT_STOPPED] = "stopped", [TENANT_STARTING] = "starting",
            [TENANT_RUNNING] = "running", [TENANT_STOPPING] = "stopping",
            [TENANT_BACKOFF] = "backoff", [TENANT_FAILED] = "failed",
            [TENANT_EXITED] = "exited",   [TENANT_CRASHLOOP] = "crashloop",
        };
        return names[s];
}

/* ---- the epoll set ---- */

int daemon_watch_add(struct daemon *d, struct watch *w, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};
        return epoll_ctl(d->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

int daemon_watch_mod(struct daemon *d, struct watch *w, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = w};
        return epoll_ctl(d->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void daemon_watch_del(struct daemon *d, struct watch *w)
{
        if (w->fd < 0)
                return;
        (void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->fd, NULL);
        close(w->fd);
        w->fd = -1;
}

struct tenant *daemon_find(struct daemon *d, const char *name)
{
        for (struct tenant *t = d->tenants; t; t = t->next)
                if (strcmp(t->name, name) == 0)
                        return t;
        return NULL;
}

static uint64_t tenant_next_deadline(const struct tenant *t)
{
        uint64_t next = t->deadline_ms ? t->deadline_ms : UINT64_MAX;
        if ((t->health.pid > 0 || t->health.vm_busy) && t->health.deadline_ms < next)
                next = t->health.deadline_ms;
        else if (t->state == TENANT_RUNNING && t->health.next_ms && t->health.next_ms < next)
                next = t->health.next_ms;
        uint64_t backup = backup_deadline(t);
        return backup < next ? backup : next;
}

void daemon_rearm(struct daemon *d)
{
        uint64_t next = d->next_sample_ms;
        uint64_t idle = control_next_deadline(d);
        if (idle < next)
                next = idle;
        for (struct tenant *t = d->tenants; t; t = t->next) {
                uint64_t n = tenant_next_deadline(t);
                if (n < next)
                        next = n;
        }
        uint64_t now = mono_ms();
        uint64_t in = next > now ? next - now : 1;
        struct itimerspec its = {
            .it_value = {.tv_sec = (time_t)(in / 1000), .tv_nsec = (long)(in % 1000) * 1000000}};
        timerfd_settime(d->timer_w.fd, 0, &its, NULL);
}

/* ---- events ---- */

void daemon_event(struct daemon *d, const char *kind, const struct tenant *t, const char *fmt, ...)
{
        char rest[768] = "";
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(rest, sizeof(rest), fmt, ap);
                va_end(ap);
        }
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        for (char *p = rest; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        char *line = NULL;
        if (asprintf(&line, "time=%s event=%s%s%s%s%s", stamp, kind, t ? " tenant=" : "",
                     t ? t->name : "", *rest ? " " : "", rest) < 0)
                return;
        log_info("%s", line + strlen("time=") + strlen(stamp) + 1);
        if (!d->events) {
                d->events = calloc(EVENTS_KEPT, sizeof(*d->events));
                if (!d->events) {
                        free(line);
                        return;
                }
        }
        size_t slot = (d->events_head + d->events_n) % EVENTS_KEPT;
        if (d->events_n == EVENTS_KEPT) {
                free(d->events[d->events_head]);
                d->events_head = (d->events_head + 1) % EVENTS_KEPT;
                slot = (d->events_head + d->events_n - 1) % EVENTS_KEPT;
        } else {
                d->events_n++;
        }
        d->events[slot] = line;
        control_broadcast_event(d, line);
}

void event_kv(char *buf, size_t len, const char *key, const char *value)
{
        alert_kv_append(buf, len, key, value);
}

void event_with(struct daemon *d, const char *kind, const struct tenant *t, const char *key,
                const char *value)
{
        char kv[800] = "";
        event_kv(kv, sizeof(kv), key, value);
        daemon_event(d, kind, t, "%s", kv);
}

/* ---- persisted operator intent ---- */

static void tenant_save(struct daemon *d, struct tenant *t)
{
        char dir[4096], path[4200];
        tenant_dir(d->cfg.state_dir, t->name, dir, sizeof(dir));
        (void)mkdir(dir, 0700);
        snprintf(path, sizeof(path), "%s/state.json", dir);
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return;
        json_gen_object_open(g);
        json_gen_key(g, "want_running");
        json_gen_bool(g, t->want_running);
        json_gen_key(g, "crashloop");
        json_gen_bool(g, t->state == TENANT_CRASHLOOP);
        json_gen_key(g, "restarts");
        json_gen_int(g, t->restarts);
        json_gen_key(g, "last_status");
        json_gen_int(g, t->last_status);
        json_gen_key(g, "last_exit_ms");
        json_gen_int(g, (int64_t)t->last_exit_ms);
        json_gen_object_close(g);
        const char *buf;
        size_t len;
        _cleanup_err_ struct tn_err *err = NULL;
        if (json_gen_finish(g, &buf, &len) < 0 || write_file_atomic(path, buf, len, 0600, &err) < 0)
                log_error("tenant=%s cannot save its state (the previous state is kept): %s",
                          t->name, err ? tn_err_msg(err) : "encoding failed");
}

/* Returns false when there is no saved state. */
static bool tenant_load_saved(struct daemon *d, struct tenant *t, bool *crashloop)
{
        char dir[4096], path[4200];
        tenant_dir(d->cfg.state_dir, t->name, dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/state.json", dir);
        _cleanup_free_ char *buf = NULL;
        size_t len;
        if (read_file_bounded(path, 64 << 10, &buf, &len, NULL) < 0)
                return false;
        _cleanup_json_ struct json_value *v = NULL;
        struct json_error je;
        if (json_parse(buf, len, &json_limits_config, &v, &je) < 0) {
                log_warning("tenant=%s ignoring %s:%u:%u: %s", t->name, path, je.pos.line,
                            je.pos.col, je.msg);
                return false;
        }
        const struct json_value *x = json_get(v, "want_running");
        if (!x || x->type != JSON_BOOL)
                return false;
        t->want_running = x->u.boolean;
        x = json_get(v, "crashloop");
        *crashloop = x && x->type == JSON_BOOL && x->u.boolean;
        int64_t n;
        if ((x = json_get(v, "restarts")) && json_number_int64(x, &n) && n >= 0 && n < UINT32_MAX)
                t->restarts = (uint32_t)n;
        if ((x = json_get(v, "last_status")) && json_number_int64(x, &n) && n >= -1 && n < 512)
                t->last_status = (int)n;
        if ((x = json_get(v, "last_exit_ms")) && json_number_int64(x, &n) && n >= 0)
                t->last_exit_ms = (uint64_t)n;
        return true;
}

/* ---- tenants ---- */

static struct tenant *tenant_new(struct daemon *d, const char *path, struct manifest *m,
                                 char *explained)
{
        struct tenant *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        snprintf(t->name, sizeof(t->name), "%s", m->name);
        t->path = strdup(path);
        t->m = m;
        t->explained = explained;
        t->keeper_w.fd = -1;
        t->status_w.fd = -1;
        t->event_w.fd = -1;
        t->init_pidfd = -1;
        t->health.w.fd = -1;
        t->last_status = -1;
        t->next = d->tenants;
        d->tenants = t;
        return t;
}

/* Unlinks the tenant and closes its descriptors now; the memory goes at the end of
 * the loop's current batch, which may still hold events for its watches. */
static void tenant_free(struct daemon *d, struct tenant *t)
{
        for (struct tenant **p = &d->tenants; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        break;
                }
        t->next = d->graveyard;
        d->graveyard = t;
        backup_forget(d, t);
        control_forget_tenant(d, t);
        health_cancel(d, t);
        daemon_watch_del(d, &t->keeper_w);
        daemon_watch_del(d, &t->status_w);
        daemon_watch_del(d, &t->event_w);
        if (t->init_pidfd >= 0)
                close(t->init_pidfd);
        monitor_glue_forget(d, t);
}

static void bury(struct daemon *d)
{
        while (d->graveyard) {
                struct tenant *t = d->graveyard;
                d->graveyard = t->next;
                manifest_free(t->m);
                manifest_free(t->next_m);
                free(t->explained);
                free(t->next_explained);
                free(t->manifest_error);
                free(t->last_error);
                free(t->restore_note);
                free(t->path);
                free(t);
        }
        control_bury(d);
}

static void tenant_set_state(struct daemon *d, struct tenant *t, enum tenant_state s)
{
        (void)d;
        t->state = s;
        if (s != TENANT_RUNNING)
                health_cancel(d, t);
}

static void finish_op(struct daemon *d, struct tenant *t, int r, const char *msg)
{
        if (t->backup_job)
                return; /* busy and waiter are the backup's until its worker ends */
        t->busy = NULL;
        char buf[2048];
        if (t->restore_note) /* the start that follows a restore */
                msg = backup_restore_started(d, t, r, msg, buf, sizeof(buf));
        if (t->waiter) {
                struct client *c = t->waiter;
                t->waiter = NULL;
                control_complete(d, c, r, msg);
        }
}

/* Leftovers of a tenant whose keeper died without cleaning up (killed with -9): its
 * init died with the keeper (lifeline); its cgroups and firewall tables may remain. */
static void cleanup_leftovers(struct daemon *d, struct tenant *t)
{
        if (t->m->isolation == ISOLATION_MICROVM) {
                keeper_vm_cleanup(t->m, d->cfg.state_dir, d->cfg.uid_base);
                keeper_records_remove(d->cfg.state_dir, t->name);
                return;
        }
        struct net_tenant nt = {0};
        snprintf(nt.name, sizeof(nt.name), "%s", t->name);
        uint32_t base;
        if (t->m->network.mode == NET_PRIVATE &&
            uidrange_get(d->cfg.state_dir, t->name, d->cfg.uid_base, &base, NULL) == 0)
                net_tenant_index(&nt, (base - d->cfg.uid_base) / UIDRANGE_SIZE);
        keeper_sandbox_cleanup(t->name, t->m->network.mode == NET_PRIVATE ? &nt : NULL, NULL);
        keeper_records_remove(d->cfg.state_dir, t->name);
}

static void keeper_exited(struct daemon *d, struct watch *w, uint32_t events);
static void keeper_status(struct daemon *d, struct watch *w, uint32_t events);
static void keeper_events(struct daemon *d, struct watch *w, uint32_t events);

static int tenant_launch_now(struct daemon *d, struct tenant *t, struct tn_err **err)
{
        _cleanup_(policy_bpf_freep) struct policy_bpf *bpf = NULL;
        _cleanup_free_ int *caps = NULL;
        size_t caps_n = 0;
        if (launch_resolve_policy(t->m, d->cfg.state_dir, &bpf, &caps, &caps_n, err) < 0) {
                (void)tn_err_wrap(err, "%s", t->path);
                return -EINVAL;
        }
        struct keeper_config kc = {.m = t->m,
                                   .argv = t->m->exec,
                                   .state_dir = d->cfg.state_dir,
                                   .storage_dir = d->cfg.storage_dir,
                                   .master_key = d->cfg.master_key,
                                   .uid_base = d->cfg.uid_base,
                                   .bpf = bpf,
                                   .caps = caps,
                                   .caps_n = caps_n,
                                   .generation = wall_ms() * 1000 + (t->generation % 1000) + 1};
        struct keeper k;
        if (keeper_spawn(&kc, &k, err) < 0)
                return -EIO;
        t->generation = kc.generation;
        t->keeper_pid = k.pid;
        t->keeper_w = (struct watch){.fd = k.pidfd, .fn = keeper_exited};
        t->status_w = (struct watch){.fd = k.status_fd, .fn = keeper_status};
        t->status_len = 0;
        daemon_watch_del(d, &t->event_w); /* an earlier run's, if it never ended */
        t->event_w = (struct watch){.fd = k.event_fd, .fn = keeper_events};
        t->event_len = 0;
        t->event_skip = false;
        daemon_watch_add(d, &t->keeper_w, EPOLLIN);
        daemon_watch_add(d, &t->status_w, EPOLLIN);
        daemon_watch_add(d, &t->event_w, EPOLLIN);
        t->stop_requested = false;
        t->killed = false;
        t->deadline_ms = 0;
        t->started_mono = mono_ms();
        t->started_ms = wall_ms();
        t->adopted = false;
        tenant_set_state(d, t, TENANT_STARTING);
        return 0;
}

/* ---- boot slots ----
 * A microVM's boot is CPU-bound under TCG (and not free under KVM). Twenty of them
 * started by one reload on two cores each got a tenth of a core, none reached its
 * agent's ready deadline, all were killed and started again, and most ended in
 * crashloop (bench/vm-many, issue 12). So at most cfg.vm_boots microVMs boot at once;
 * the others stay STARTING with nothing running (boot_queued) and boot in the order
 * they were asked for, each as a slot frees: when a booting one runs, or ends. A
 * sandbox starts in milliseconds and never waits. */
static unsigned vm_booting(const struct daemon *d)
{
        unsigned n = 0;
        for (const struct tenant *t = d->tenants; t; t = t->next)
                n += t->state == TENANT_STARTING && !t->boot_queued &&
                     t->m->isolation == ISOLATION_MICROVM;
        return n;
}

static int tenant_launch(struct daemon *d, struct tenant *t, struct tn_err **err)
{
        unsigned booting = vm_booting(d);
        if (t->m->isolation != ISOLATION_MICROVM || booting < d->cfg.vm_boots)
                return tenant_launch_now(d, t, err);
        t->boot_queued = ++d->boot_seq;
        t->stop_requested = false;
        t->killed = false;
        t->deadline_ms = 0;
        tenant_set_state(d, t, TENANT_STARTING);
        daemon_event(d, "queued", t, "booting=%u parallel-vm-boots=%u", booting, d->cfg.vm_boots);
        return 0;
}

/* A launch that failed at once: the tenant's state, an event, and the answer to the
 * start or restart that waits for it, if any. */
static void launch_failed(struct daemon *d, struct tenant *t, int r, const struct tn_err *err)
{
        tenant_set_state(d, t, TENANT_FAILED);
        event_with(d, "start-failed", t, "error", tn_err_msg(err));
        finish_op(d, t, r, tn_err_msg(err));
}

/* Boots the microVMs that wait, first asked first, while slots are free. Called when a
 * booting one leaves TENANT_STARTING; a launch that fails is that tenant's failure
 * (its waiting `start`, if any, is answered with it) and the next one is tried. */
static void boot_queue_next(struct daemon *d)
{
        while (vm_booting(d) < d->cfg.vm_boots) {
                struct tenant *next = NULL;
                for (struct tenant *t = d->tenants; t; t = t->next)
                        if (t->boot_queued && (!next || t->boot_queued < next->boot_queued))
                                next = t;
                if (!next)
                        return;
                next->boot_queued = 0;
                _cleanup_err_ struct tn_err *err = NULL;
                int r = tenant_launch_now(d, next, &err);
                if (r < 0) {
                        launch_failed(d, next, r, err);
                        tenant_save(d, next);
                }
        }
}

/* A microVM that waits for its boot slot leaves the line: nothing of it ran. */
static void boot_unqueue(struct daemon *d, struct tenant *t)
{
        t->boot_queued = 0;
        tenant_set_state(d, t, TENANT_STOPPED);
}

static void tenant_running(struct daemon *d, struct tenant *t, pid_t pid)
{
        free(t->last_error);
        t->last_error = NULL;
        struct run_record rr;
        _cleanup_err_ struct tn_err *err = NULL;
        if (run_record_read(d->cfg.state_dir, t->name, &rr, &err) == 0 && rr.init_pid == pid) {
                int fd = pidfd_open_checked(rr.init_pid, rr.init_start);
                if (fd >= 0) {
                        if (t->init_pidfd >= 0)
                                close(t->init_pidfd);
                        t->init_pidfd = fd;
                }
                t->id_base = rr.id_base;
        }
        t->init_pid = pid;
        tenant_set_state(d, t, TENANT_RUNNING);
        daemon_event(d, "started", t, "pid=%d", (int)pid);
        health_schedule(d, t);
        monitor_glue_attach(d, t);
        finish_op(d, t, 0, NULL);
        boot_queue_next(d);
}

/* One line from the keeper's event pipe (keeper.h); anything else is dropped. */
static void keeper_event_line(struct daemon *d, struct tenant *t, char *line)
{
        const char *syscall;
        uint64_t count, oom, pids;
        if (keeper_event_parse_limits(line, &oom, &pids) == 0)
                monitor_glue_guest_limits(d, t, oom, pids);
        else if (keeper_event_parse(line, &syscall, &count) == 0)
                monitor_glue_seccomp_denied(d, t, syscall, count);
        else
                log_warning("tenant=%s the keeper sent an event line tenantd does not know",
                            t->name);
}

/* The keeper's events: at most a few lines per 10 s (lib/seccomp_notify.h), read as they
 * come, cut into lines of at most KEEPER_EVENT_MAX bytes. */
static void keeper_events(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct tenant *t = (struct tenant *)((char *)w - offsetof(struct tenant, event_w));
        for (int rounds = 0; rounds < 16; rounds++) {
                size_t room = sizeof(t->event_buf) - 1 - t->event_len;
                ssize_t n = read(w->fd, t->event_buf + t->event_len, room);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        daemon_watch_del(d, w); /* the keeper has ended */
                        return;
                }
                t->event_len += (size_t)n;
                t->event_buf[t->event_len] = '\0';
                char *start = t->event_buf, *nl;
                while ((nl = memchr(start, '\n', t->event_len - (size_t)(start - t->event_buf)))) {
                        *nl = '\0';
                        if (!t->event_skip)
                                keeper_event_line(d, t, start);
                        t->event_skip = false;
                        start = nl + 1;
                }
                t->event_len -= (size_t)(start - t->event_buf);
                memmove(t->event_buf, start, t->event_len);
                if (t->event_len == sizeof(t->event_buf) - 1) { /* no line is this long */
                        t->event_skip = true;
                        t->event_len = 0;
                }
        }
}

static void keeper_status(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct tenant *t = (struct tenant *)((char *)w - offsetof(struct tenant, status_w));
        for (;;) {
                size_t room = sizeof(t->status_buf) - 1 - t->status_len;
                ssize_t n = room ? read(w->fd, t->status_buf + t->status_len, room) : 0;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n > 0) {
                        t->status_len += (size_t)n;
                        continue;
                }
                break; /* EOF, error or full: the keeper has said what it will say */
        }
        t->status_buf[t->status_len] = '\0';
        daemon_watch_del(d, w);
        pid_t pid = 0;
        const char *why = NULL;
        if (keeper_status_parse(t->status_buf, &pid, &why) == 0 && pid > 0) {
                tenant_running(d, t, pid);
                return;
        }
        /* "error ..." or nothing: the keeper exits and keeper_exited() counts it as a
         * failed run (status 127, as a shell's "cannot run"). */
        if (!why || !*why)
                why = "the keeper ended early";
        free(t->last_error);
        t->last_error = strdup(why);
        t->start_failed = true;
        event_with(d, "start-failed", t, "error", why);
        finish_op(d, t, -EIO, why);
}

static void apply_restart_policy(struct daemon *d, struct tenant *t, int status)
{
        const struct manifest *m = t->m;
        uint64_t now = mono_ms();
        if (t->started_mono && now - t->started_mono >= m->restart.stable_ms)
                t->consecutive = 0;
        bool failure = status != 0;
        bool again =
            m->restart.on == RESTART_ALWAYS || (m->restart.on == RESTART_ON_FAILURE && failure);
        if (!again || !t->want_running) {
                tenant_set_state(d, t, failure ? TENANT_FAILED : TENANT_EXITED);
                return;
        }
        t->consecutive++;
        if (t->consecutive > m->restart.burst) {
                tenant_set_state(d, t, TENANT_CRASHLOOP);
                daemon_event(d, "crashloop", t, "failures=%u status=%d", t->consecutive, status);
                monitor_glue_alert_crashloop(d, t);
                return;
        }
        uint64_t delay = m->restart.backoff_min_ms;
        for (uint32_t i = 1; i < t->consecutive && delay < m->restart.backoff_max_ms; i++)
                delay *= 2;
        if (delay > m->restart.backoff_max_ms)
                delay = m->restart.backoff_max_ms;
        t->deadline_ms = now + delay;
        tenant_set_state(d, t, TENANT_BACKOFF);
        daemon_event(d, "backoff", t, "delay=%" PRIu64 "ms attempt=%u", delay, t->consecutive);
}

static void tenant_ended(struct daemon *d, struct tenant *t, int status)
{
        t->last_status = status;
        t->last_exit_ms = wall_ms();
        t->init_pid = 0;
        if (t->init_pidfd >= 0) {
                close(t->init_pidfd);
                t->init_pidfd = -1;
        }
        t->deadline_ms = 0;
        monitor_glue_detach(d, t);
        bool was_starting = t->state == TENANT_STARTING && !t->start_failed;
        if (t->start_failed)
                ; /* said as start-failed already */
        else if (status >= 0)
                daemon_event(d, "exited", t, "status=%d", status);
        else
                daemon_event(d, "lost", t, "reason=\"the keeper died; tenant killed\"");
        t->start_failed = false;
        int st = status < 0 ? 128 + SIGKILL : status;

        if (t->removed) {
                daemon_event(d, "removed", t, NULL);
                finish_op(d, t, 0, NULL);
                tenant_free(d, t);
                return;
        }
        if (t->next_m) { /* reload changed the manifest */
                manifest_free(t->m);
                free(t->explained);
                t->m = TAKE_PTR(t->next_m);
                t->explained = TAKE_PTR(t->next_explained);
                control_access_changed(d, t);
                t->restart_after_stop = t->want_running;
                t->stop_requested = true;
        }
        if (t->stop_requested) {
                t->stop_requested = false;
                tenant_set_state(d, t, TENANT_STOPPED);
                if (t->restart_after_stop) {
                        t->restart_after_stop = false;
                        _cleanup_err_ struct tn_err *err = NULL;
                        int r = tenant_launch(d, t, &err);
                        if (r < 0)
                                launch_failed(d, t, r, err);
                        tenant_save(d, t);
                        return; /* a waiting `restart` is answered when it runs */
                }
                finish_op(d, t, 0, NULL);
                tenant_save(d, t);
                return;
        }
        if (was_starting)
                finish_op(d, t, -EIO, "the service ended while starting");
        apply_restart_policy(d, t, st);
        if (t->state == TENANT_BACKOFF)
                t->restarts++;
        tenant_save(d, t);
        finish_op(d, t, 0, NULL);
}

static void keeper_exited(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct tenant *t = (struct tenant *)((char *)w - offsetof(struct tenant, keeper_w));
        siginfo_t si;
        /* Our child unless tenantd was restarted since (then init reaps it). */
        (void)waitid(P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG);
        daemon_watch_del(d, w);
        if (t->status_w.fd >= 0)
                keeper_status(d, &t->status_w, 0);
        if (t->event_w.fd >= 0) /* its last lines, then EOF */
                keeper_events(d, &t->event_w, 0);
        struct exit_record er;
        int status = -1;
        if (t->start_failed) {
                status = 127; /* the keeper cleaned up what it had started */
        } else if (exit_record_read(d->cfg.state_dir, t->name, &er, NULL) == 0 &&
                   er.generation == t->generation) {
                status = er.status;
                log_debug("tenant=%s exit.json oom_kills=%llu pids_limit_hits=%llu", t->name,
                          (unsigned long long)er.oom_kills, (unsigned long long)er.pids_limit_hits);
                monitor_glue_final(d, t, er.oom_kills, er.pids_limit_hits);
        } else {
                cleanup_leftovers(d, t);
        }
        keeper_records_remove(d->cfg.state_dir, t->name);
        t->keeper_pid = 0;
        tenant_ended(d, t, status); /* t may be freed */
        boot_queue_next(d);
        daemon_rearm(d);
}

/* ---- operations ---- */

int tenant_op_start(struct daemon *d, struct tenant *t, struct client *c, struct tn_err **err)
{
        if (t->busy)
                return tn_err_setx(err, EBUSY, "%s is busy: %s", t->name, t->busy);
        if (t->state == TENANT_RUNNING || t->state == TENANT_STARTING)
                return tn_err_setx(err, EALREADY, "%s is already %s", t->name,
                                   tenant_state_name(t->state));
        if (t->state == TENANT_STOPPING)
                return tn_err_setx(err, EBUSY, "%s is stopping; start it again once it has stopped",
                                   t->name);
        if (t->manifest_error)
                return tn_err_setx(err, EINVAL, "%s: the manifest is invalid: %s", t->name,
                                   t->manifest_error);
        t->want_running = true;
        t->consecutive = 0;
        t->restarts = 0;
        int r = tenant_launch(d, t, err);
        if (r < 0) {
                tenant_set_state(d, t, TENANT_FAILED);
                tenant_save(d, t);
                return r;
        }
        tenant_save(d, t);
        t->busy = "starting";
        t->waiter = c;
        return 0;
}

static void send_stop_signal(struct tenant *t, int sig)
{
        if (t->init_pidfd >= 0)
                (void)syscall(SYS_pidfd_send_signal, t->init_pidfd, sig, NULL, 0);
}

int tenant_op_stop(struct daemon *d, struct tenant *t, struct client *c, uint64_t timeout_ms,
                   bool restart, struct tn_err **err)
{
        /* A start that waits for a boot slot can be called off: nothing of it runs. */
        if (t->boot_queued && t->busy && !t->backup_job)
                finish_op(d, t, -ECANCELED, "stopped while it waited for a boot slot");
        if (t->busy)
                return tn_err_setx(err, EBUSY, "%s is busy: %s", t->name, t->busy);
        t->want_running = restart;
        if (t->boot_queued) /* nothing of it runs: stopped at once, as below */
                boot_unqueue(d, t);
        switch (t->state) {
        case TENANT_RUNNING:
        case TENANT_STARTING:
                break;
        case TENANT_STOPPING:
                return tn_err_setx(err, EBUSY, "%s is already stopping", t->name);
        default:
                /* Not running: a backoff or crashloop ends here. */
                t->deadline_ms = 0;
                if (restart) {
                        tenant_save(d, t);
                        return tenant_op_start(d, t, c, err);
                }
                tenant_set_state(d, t, TENANT_STOPPED);
                tenant_save(d, t);
                return 1; /* done, nothing to wait for */
        }
        t->stop_requested = true;
        t->restart_after_stop = restart;
        t->busy = restart ? "restarting" : "stopping";
        t->waiter = c;
        tenant_save(d, t);
        if (t->state == TENANT_STARTING) {
                /* No init pidfd yet: the keeper holds the tenant; end it through the
                 * keeper's death (its lifeline kills the tenant). */
                (void)syscall(SYS_pidfd_send_signal, t->keeper_w.fd, SIGKILL, NULL, 0);
        } else {
                send_stop_signal(t, t->m->stop.signal);
        }
        tenant_set_state(d, t, TENANT_STOPPING);
        t->deadline_ms = mono_ms() + (timeout_ms ? timeout_ms : t->m->stop.timeout_ms);
        daemon_event(d, restart ? "restarting" : "stopping", t, "signal=%s",
                     manifest_signal_name(t->m->stop.signal));
        daemon_rearm(d);
        return 0;
}

int tenant_op_kill(struct daemon *d, struct tenant *t, int sig, struct tn_err **err)
{
        (void)d;
        if (t->state != TENANT_RUNNING && t->state != TENANT_STOPPING)
                return tn_err_setx(err, ESRCH, "%s is not running (%s)", t->name,
                                   tenant_state_name(t->state));
        if (t->init_pidfd < 0)
                return tn_err_setx(err, ESRCH, "%s: cannot send signal %d: no process", t->name,
                                   sig);
        if (syscall(SYS_pidfd_send_signal, t->init_pidfd, sig, NULL, 0) < 0)
                return tn_err_set(err, errno, "%s: cannot send signal %d", t->name, sig);
        daemon_event(d, "signal", t, "signal=%d", sig);
        return 0;
}

/* ---- the timer ---- */

static void tenant_deadline(struct daemon *d, struct tenant *t, uint64_t now)
{
        if (!t->deadline_ms || now < t->deadline_ms)
                return;
        t->deadline_ms = 0;
        if (t->state == TENANT_STOPPING && !t->killed) {
                t->killed = true;
                daemon_event(d, "stop-timeout", t, "action=SIGKILL");
                send_stop_signal(t, SIGKILL);
        } else if (t->state == TENANT_BACKOFF) {
                _cleanup_err_ struct tn_err *err = NULL;
                int r = tenant_launch(d, t, &err);
                if (r < 0) {
                        event_with(d, "start-failed", t, "error", tn_err_msg(err));
                        apply_restart_policy(d, t, 1);
                }
        }
}

static void on_timer(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        uint64_t ticks;
        (void)!read(w->fd, &ticks, sizeof(ticks));
        uint64_t now = mono_ms();
        for (struct tenant *t = d->tenants, *next; t; t = next) {
                next = t->next;
                tenant_deadline(d, t, now);
                health_tick(d, t, now);
                backup_tick(d, t, now);
        }
        control_tick(d, now);
        if (now >= d->next_sample_ms) {
                monitor_glue_sample(d, now);
                d->next_sample_ms = now + d->cfg.sample_ms;
        }
        daemon_rearm(d);
}

/* ---- manifests: the first load and reload ---- */

struct found {
        char *path;
        struct manifest *m;
        char *explained;
        char *error; /* invalid: what is wrong */
        char name[MANIFEST_NAME_MAX + 1];
};

static int cmp_found(const void *a, const void *b)
{
        return strcmp(((const struct found *)a)->path, ((const struct found *)b)->path);
}

/* Every *.json in the manifest directory, parsed, sorted by file name. The directory
 * (and every directory above it) and each file must be root's alone (trust.h): a
 * directory that others can write fails the whole scan, so a reload changes nothing;
 * a file that others can change is reported like an invalid one, and a tenant running
 * from it keeps its last good manifest. */
/* An access entry naming a user or group the host does not have matches nobody
 * (docs/manifest.md#access): said at each load, so that a typo does not go unseen. */
static void warn_unknown_accounts(const struct manifest *m, const char *path)
{
        for (size_t i = 0; i < m->access_n; i++) {
                const struct access_entry *e = &m->access[i];
                char buf[8192];
                if (e->user) {
                        struct passwd pw, *pwp = NULL;
                        if (getpwnam_r(e->user, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
                                log_warning("%s: access[%zu].user \"%s\" is no user of this host: "
                                            "the entry matches nobody",
                                            path, i, e->user);
                } else if (e->group) {
                        struct group gr, *grp = NULL;
                        if (getgrnam_r(e->group, &gr, buf, sizeof(buf), &grp) != 0 || !grp)
                                log_warning("%s: access[%zu].group \"%s\" is no group of this "
                                            "host: the entry matches nobody",
                                            path, i, e->group);
                }
        }
}

static int scan_manifests(struct daemon *d, struct found **ret, size_t *ret_n, struct tn_err **err)
{
        _cleanup_free_ char *real_dir = NULL;
        _cleanup_err_ struct tn_err *terr = NULL;
        int tr = trust_check(d->cfg.manifest_dir, TRUST_DIR, &real_dir, &terr);
        if (tr < 0 && tr != -ENOENT)
                return tn_err_setx(err, -tr, "untrusted manifest directory refused: %s",
                                   tn_err_msg(terr));
        DIR *dir = opendir(real_dir ? real_dir : d->cfg.manifest_dir);
        if (!dir)
                return tn_err_set(err, errno, "cannot open the manifest directory %s",
                                  d->cfg.manifest_dir);
        struct found *list = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(dir)) && n < MAX_TENANTS) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
                        continue;
                struct found *nl = realloc(list, (n + 1) * sizeof(*list));
                if (!nl)
                        break;
                list = nl;
                struct found *f = &list[n++];
                memset(f, 0, sizeof(*f));
                if (asprintf(&f->path, "%s/%s", d->cfg.manifest_dir, de->d_name) < 0) {
                        n--;
                        continue;
                }
                _cleanup_err_ struct tn_err *lerr = NULL;
                char *diags = NULL;
                int r = manifest_load(f->path, true, &f->m, &diags, &lerr);
                if (r < 0) {
                        f->error = diags ? diags : strdup(tn_err_msg(lerr));
                        /* The name, if the file says it, tells which tenant it was. */
                        continue;
                }
                /* A manifest that would give the tenant tenantd's own files, or a host
                 * path root trusts read-write, is refused like an invalid one. */
                const struct tenantd_dirs dirs = {.state_dir = d->cfg.state_dir,
                                                  .storage_dir = d->cfg.storage_dir,
                                                  .manifest_dir = d->cfg.manifest_dir};
                if (share_check_manifest(f->m, &dirs, NULL, NULL, &lerr) < 0) {
                        if (asprintf(&f->error, "%s: %s", f->path, tn_err_msg(lerr)) < 0)
                                f->error = NULL;
                        manifest_free(f->m);
                        f->m = NULL;
                        continue;
                }
                warn_unknown_accounts(f->m, f->path);
                snprintf(f->name, sizeof(f->name), "%s", f->m->name);
                f->explained = manifest_explain(f->m);
        }
        closedir(dir);
        /* An empty directory leaves list NULL, which qsort must not be given even with
         * no element (its argument is declared nonnull; UBSan aborts). */
        if (n > 1)
                qsort(list, n, sizeof(*list), cmp_found);
        *ret = list;
        *ret_n = n;
        return 0;
}

static void found_free(struct found *list, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(list[i].path);
                manifest_free(list[i].m);
                free(list[i].explained);
                free(list[i].error);
        }
        free(list);
}

static void report_invalid(struct daemon *d, const struct found *f)
{
        /* One event per file, the first diagnostic line in it; the whole text is in
         * the daemon's log. */
        char first[300];
        snprintf(first, sizeof(first), "%s", f->error ? f->error : "invalid");
        char *nl = strchr(first, '\n');
        if (nl)
                *nl = '\0';
        for (char *p = first; *p; p++)
                if (*p == '"')
                        *p = '\'';
        log_error("%s", f->error ? f->error : "invalid manifest");
        char kv[1200] = "";
        event_kv(kv, sizeof(kv), "file", f->path);
        event_kv(kv, sizeof(kv), "error", first);
        daemon_event(d, "manifest-invalid", NULL, "%s", kv);
}

enum adopt_result {
        ADOPT_NONE,    /* no record of a run */
        ADOPT_RUNNING, /* found running and adopted */
        ADOPT_ENDED,   /* it ended while tenantd was away: *ret_status says how */
};

/* Adopts a tenant that was running before tenantd (re)started, if its keeper and init
 * are still the processes recorded. */
static enum adopt_result tenant_adopt(struct daemon *d, struct tenant *t, int *ret_status)
{
        struct run_record rr;
        if (run_record_read(d->cfg.state_dir, t->name, &rr, NULL) < 0)
                return ADOPT_NONE;
        int kfd = pidfd_open_checked(rr.keeper_pid, rr.keeper_start);
        if (kfd < 0) {
                /* The keeper is gone. If it recorded an exit, that is this run's end;
                 * otherwise the tenant died with it and its leftovers are removed. */
                struct exit_record er;
                t->generation = rr.generation;
                if (exit_record_read(d->cfg.state_dir, t->name, &er, NULL) == 0 &&
                    er.generation == rr.generation) {
                        t->last_status = er.status;
                        t->last_exit_ms = er.ended_ms;
                        daemon_event(d, "exited", t, "status=%d while=tenantd-down", er.status);
                } else {
                        cleanup_leftovers(d, t);
                        t->last_status = 128 + SIGKILL;
                        t->last_exit_ms = wall_ms();
                        daemon_event(d, "lost", t, "reason=\"keeper gone while tenantd was down\"");
                }
                keeper_records_remove(d->cfg.state_dir, t->name);
                /* The run's start time is known: a stable run resets the failure count. */
                uint64_t ran =
                    t->last_exit_ms > rr.started_ms ? t->last_exit_ms - rr.started_ms : 0;
                t->started_mono = mono_ms() > ran ? mono_ms() - ran : 0;
                *ret_status = t->last_status;
                return ADOPT_ENDED;
        }
        int ifd = pidfd_open_checked(rr.init_pid, rr.init_start);
        t->generation = rr.generation;
        t->keeper_pid = rr.keeper_pid;
        t->keeper_w = (struct watch){.fd = kfd, .fn = keeper_exited};
        daemon_watch_add(d, &t->keeper_w, EPOLLIN);
        t->init_pid = rr.init_pid;
        t->init_pidfd = ifd;
        t->id_base = rr.id_base;
        t->started_ms = rr.started_ms;
        t->adopted = true;
        /* The keeper's event pipe (keeper.h): denied calls reach this tenantd too. */
        _cleanup_err_ struct tn_err *eerr = NULL;
        int efd = keeper_events_open(d->cfg.state_dir, t->name, &eerr);
        daemon_watch_del(d, &t->event_w);
        t->event_w = (struct watch){.fd = efd, .fn = keeper_events};
        t->event_len = 0;
        t->event_skip = false;
        if (efd >= 0)
                daemon_watch_add(d, &t->event_w, EPOLLIN);
        else
                log_warning("tenant=%s its denied-call events go to syslog only: %s", t->name,
                            tn_err_msg(eerr));
        uint64_t age = wall_ms() > rr.started_ms ? wall_ms() - rr.started_ms : 0;
        t->started_mono = mono_ms() > age ? mono_ms() - age : 0;
        tenant_set_state(d, t, TENANT_RUNNING);
        daemon_event(d, "adopted", t, "pid=%d keeper=%d", (int)rr.init_pid, (int)rr.keeper_pid);
        health_schedule(d, t);
        monitor_glue_attach(d, t);
        return ADOPT_RUNNING;
}

const char *reload_counts_format(const struct reload_counts *rc, char *buf, size_t len)
{
        snprintf(buf, len, "%u added, %u changed, %u removed, %u unchanged, %u invalid", rc->added,
                 rc->changed, rc->removed, rc->unchanged, rc->invalid);
        return buf;
}

/* A launch the operator did not ask for this moment (a reload, tenantd's start): a
 * failure is the tenant's state and an event, nobody's reply. */
static void tenant_launch_or_fail(struct daemon *d, struct tenant *t)
{
        _cleanup_err_ struct tn_err *err = NULL;
        if (tenant_launch(d, t, &err) < 0) {
                tenant_set_state(d, t, TENANT_FAILED);
                event_with(d, "start-failed", t, "error", tn_err_msg(err));
        }
}

/* A file that does not parse, or is not trusted. A running tenant whose file became
 * invalid keeps running on its last good manifest. */
static void reload_invalid(struct daemon *d, struct found *f)
{
        report_invalid(d, f);
        for (struct tenant *t = d->tenants; t; t = t->next)
                if (t->path && strcmp(t->path, f->path) == 0) {
                        t->removed = false;
                        free(t->manifest_error);
                        t->manifest_error = f->error ? strdup(f->error) : NULL;
                }
}

/* A tenant tenantd did not know: new, or known before tenantd (re)started. Its saved
 * state says whether it should run; a tenant left running by an earlier tenantd is
 * adopted, one that ended meanwhile gets what its restart policy says. */
static bool reload_added(struct daemon *d, struct found *f)
{
        struct tenant *t = tenant_new(d, f->path, TAKE_PTR(f->m), TAKE_PTR(f->explained));
        if (!t)
                return false; /* out of memory */
        bool crashloop = false;
        if (!tenant_load_saved(d, t, &crashloop))
                t->want_running = t->m->autostart;
        backup_recover(d, t);
        int status = 0;
        enum adopt_result ar = tenant_adopt(d, t, &status);
        backup_restore_recover(d, t, ar != ADOPT_NONE);
        if (ar == ADOPT_RUNNING)
                return true;
        if (ar == ADOPT_ENDED && t->want_running && !crashloop) {
                /* What the restart policy would have done had tenantd been there:
                 * restart (after the backoff), or not. */
                apply_restart_policy(d, t, status);
                if (t->state == TENANT_BACKOFF)
                        t->restarts++;
                tenant_save(d, t);
        } else if (crashloop) {
                tenant_set_state(d, t, TENANT_CRASHLOOP);
        } else if (t->want_running) {
                tenant_launch_or_fail(d, t);
        }
        return true;
}

/* Whether a and b differ in their access sections only (compared as explained, with
 * both sections set aside for the while). */
static bool only_access_differs(struct manifest *a, struct manifest *b)
{
        struct access_entry *xa = a->access, *xb = b->access;
        size_t na = a->access_n, nb = b->access_n;
        a->access = b->access = NULL;
        a->access_n = b->access_n = 0;
        char *ea = manifest_explain(a), *eb = manifest_explain(b);
        a->access = xa;
        a->access_n = na;
        b->access = xb;
        b->access_n = nb;
        bool same = ea && eb && strcmp(ea, eb) == 0;
        free(ea);
        free(eb);
        return same;
}

/* A known tenant whose file was found again: returns whether its manifest changed. A
 * stopped tenant takes the new manifest at once (and a failed one a fresh try); an
 * active one is restarted into it (tenant_ended() swaps next_m in), unless only its
 * access section changed: who may manage a tenant is no reason to restart it, and a
 * revocation takes effect at once (docs/self-service.md). Only the access entries
 * move into the running manifest; nothing holds a pointer into them. */
static bool reload_existing(struct daemon *d, struct tenant *t, struct found *f)
{
        t->removed = false;
        free(t->manifest_error);
        t->manifest_error = NULL;
        free(t->path);
        t->path = strdup(f->path);
        if (strcmp(t->explained, f->explained) == 0)
                return false;
        daemon_event(d, "manifest-changed", t, "file=%s", f->path);
        bool active = t->state == TENANT_RUNNING ||
                      (t->state == TENANT_STARTING && !t->boot_queued) ||
                      t->state == TENANT_STOPPING;
        if (active && !t->next_m && only_access_differs(t->m, f->m)) {
                struct access_entry *old = t->m->access;
                size_t old_n = t->m->access_n;
                t->m->access = f->m->access;
                t->m->access_n = f->m->access_n;
                f->m->access = old; /* freed with f->m by found_free */
                f->m->access_n = old_n;
                free(t->explained);
                t->explained = TAKE_PTR(f->explained);
                log_info("%s: only its access section changed: applied without a restart", t->name);
                control_access_changed(d, t);
                return true;
        }
        if (!active) {
                manifest_free(t->m);
                free(t->explained);
                t->m = TAKE_PTR(f->m);
                t->explained = TAKE_PTR(f->explained);
                control_access_changed(d, t);
                if (t->boot_queued && t->m->isolation != ISOLATION_MICROVM) {
                        t->boot_queued = 0; /* a sandbox now: it need not wait */
                        tenant_launch_or_fail(d, t);
                }
                bool failed = t->state == TENANT_BACKOFF || t->state == TENANT_CRASHLOOP ||
                              t->state == TENANT_FAILED;
                if (failed && t->want_running) { /* a fixed manifest deserves a fresh try */
                        t->consecutive = 0;
                        t->deadline_ms = 0;
                        tenant_launch_or_fail(d, t);
                }
                return true;
        }
        manifest_free(t->next_m);
        free(t->next_explained);
        t->next_m = TAKE_PTR(f->m);
        t->next_explained = TAKE_PTR(f->explained);
        if (t->state != TENANT_STOPPING && !t->busy) {
                bool want = t->want_running;
                (void)tenant_op_stop(d, t, NULL, 0, want, NULL);
                t->want_running = want;
        }
        return true;
}

/* A tenant whose file is gone: stopped, then forgotten (tenant_ended() frees it). */
static void reload_removed(struct daemon *d, struct tenant *t)
{
        daemon_event(d, "manifest-removed", t, NULL);
        if (t->boot_queued) {
                boot_unqueue(d, t);
                finish_op(d, t, -ECANCELED, "its manifest was removed before it booted");
        }
        if (t->state == TENANT_RUNNING || t->state == TENANT_STARTING) {
                if (!t->busy)
                        (void)tenant_op_stop(d, t, NULL, 0, false, NULL);
        } else if (t->state != TENANT_STOPPING) {
                tenant_free(d, t);
        }
}

void daemon_tenant_drop(struct daemon *d, struct tenant *t)
{
        tenant_free(d, t);
}

/* restore --as (backup.c): a copy of from's manifest file under the name `name`, written
 * to the manifest directory as NAME.json (the text as the operator wrote it, comments
 * and layout kept, only "name" changed: manifest_edit.h) and added as a stopped tenant,
 * so the next reload finds it unchanged. A name that a tenant, a manifest file or a
 * volume in the storage directory already has is refused. */
int daemon_tenant_copy(struct daemon *d, const struct tenant *from, const char *name,
                       struct tenant **ret, struct tn_err **err)
{
        char path[PATH_MAX], vol[PATH_MAX];
        struct stat st;
        if (daemon_find(d, name))
                return tn_err_setx(err, EEXIST, "a tenant named %s exists already", name);
        /* One address, one tenant (see public_ipv4_claims): a copy would be refused at
         * the next reload and, until then, fight the source for its address. */
        if (from->m->network.public_ipv4)
                return tn_err_setx(err, EADDRINUSE,
                                   "%s has network.public_ipv4, which a copy cannot share: "
                                   "restore in place, or copy its manifest without it first",
                                   from->name);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s.json", d->cfg.manifest_dir, name) >=
            sizeof(path))
                return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", name);
        if (lstat(path, &st) == 0)
                return tn_err_setx(err, EEXIST, "%s exists already", path);
        for (size_t i = 0; i < from->m->volumes_n; i++) {
                snprintf(vol, sizeof(vol), "%s/%s/%s.img", d->cfg.storage_dir, name,
                         from->m->volumes[i].name);
                if (lstat(vol, &st) == 0)
                        return tn_err_setx(err, EEXIST,
                                           "%s exists already: a volume of an earlier tenant "
                                           "%s (tenantctl volume rm --yes %s/%s removes it)",
                                           vol, name, name, from->m->volumes[i].name);
        }
        _cleanup_free_ char *file = NULL, *text = NULL, *value = NULL;
        size_t len = 0, text_len = 0;
        if (trust_check(from->path, TRUST_FILE, NULL, err) < 0)
                return -EPERM;
        if (read_file_bounded(from->path, json_limits_config.max_bytes, &file, &len, err) < 0 ||
            stat(from->path, &st) < 0)
                return -EIO;
        if (asprintf(&value, "\"%s\"", name) < 0)
                return tn_err_setx(err, ENOMEM, "out of memory");
        int r = manifest_text_set(file, len, "name", value, &text, &text_len, err);
        if (r < 0)
                return tn_err_wrap(err, "%s", from->path);
        _cleanup_manifest_ struct manifest *m = NULL;
        struct diag_list diags = {0};
        r = manifest_parse(text, text_len, &m, &diags);
        if (r < 0) {
                r = tn_err_setx(err, EINVAL, "the copy of %s does not parse: %s", from->path,
                                diags.n ? diags.items[0].msg : "out of memory");
                diag_list_clear(&diags);
                return r;
        }
        const struct tenantd_dirs dirs = {.state_dir = d->cfg.state_dir,
                                          .storage_dir = d->cfg.storage_dir,
                                          .manifest_dir = d->cfg.manifest_dir};
        if (share_check_manifest(m, &dirs, NULL, NULL, err) < 0)
                return -EPERM;
        _cleanup_free_ char *explained = manifest_explain(m);
        if (!explained)
                return tn_err_setx(err, ENOMEM, "out of memory");
        if (write_file_atomic(path, text, text_len, st.st_mode & 0644, err) < 0)
                return -EIO;
        struct tenant *t = tenant_new(d, path, m, explained);
        if (!t) {
                (void)unlink(path);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        TAKE_PTR(m);
        TAKE_PTR(explained);
        tenant_save(d, t);
        daemon_event(d, "added", t, "copy_of=%s file=%s", from->name, path);
        *ret = t;
        return 0;
}

/* network.public_ipv4 gives one tenant an address of the host's; two tenants cannot
 * both have it (the second's NAT would never be reached, and its traffic would leave
 * with the first's address). Of the manifests that name one address, the tenant that
 * has it already keeps it, whatever the order of the files; otherwise the first file
 * in name order gets it. The others are invalid this reload, with the reason: a new one
 * is not added, and a running one keeps running with the manifest it had. */
static void public_ipv4_claims(struct daemon *d, struct found *list, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct found *f = &list[i];
                if (!f->m || !f->m->network.public_ipv4)
                        continue;
                uint32_t a = f->m->network.public_ipv4;
                const struct found *owner = NULL;
                for (size_t j = 0; j < n && !owner; j++) {
                        const struct tenant *t = list[j].m ? daemon_find(d, list[j].name) : NULL;
                        if (t && t->m && list[j].m->network.public_ipv4 == a &&
                            t->m->network.public_ipv4 == a)
                                owner = &list[j];
                }
                for (size_t j = 0; j < n && !owner; j++)
                        if (list[j].m && list[j].m->network.public_ipv4 == a)
                                owner = &list[j];
                if (owner == f)
                        continue;
                char addr[INET_ADDRSTRLEN];
                struct in_addr in = {.s_addr = htonl(a)};
                inet_ntop(AF_INET, &in, addr, sizeof(addr));
                if (asprintf(&f->error,
                             "%s: network.public_ipv4 %s is already the address of tenant %s "
                             "(%s); one address, one tenant",
                             f->path, addr, owner->name, owner->path) < 0)
                        f->error = NULL;
                manifest_free(f->m);
                f->m = NULL;
        }
}

/* The index of the host's /usr links into /etc that every host-system tenant's /etc
 * takes entries from (host/etc_links.h): at tenantd's start, checked and rebuilt only
 * if packages changed; at every later reload, rebuilt, so that a link made by hand
 * counts too. Tenants read it from the state directory; a failure here only means
 * that the first start rebuilds it. */
static void etc_links_refresh(struct daemon *d)
{
        enum etc_links_mode mode = d->etc_links_indexed ? ETC_LINKS_REBUILD : ETC_LINKS_CACHED;
        d->etc_links_indexed = true;
        uint64_t t0 = mono_ms();
        char *warnings = NULL;
        size_t wlen = 0;
        FILE *warn = open_memstream(&warnings, &wlen);
        if (!warn)
                return;
        struct etc_links links = {0};
        _cleanup_err_ struct tn_err *err = NULL;
        int r = etc_links_load(d->cfg.state_dir, "/", mode, &links, warn, &err);
        fclose(warn);
        for (char *save = NULL, *line = strtok_r(warnings, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                log_warning("etc-links: %s", line);
        free(warnings);
        if (r < 0)
                log_warning("etc-links: %s", tn_err_msg(err));
        else
                log_info(
                    "etc-links: %zu entries of /etc linked from /usr (index %s in %" PRIu64 " ms)",
                    links.n, mode == ETC_LINKS_REBUILD ? "rebuilt" : "checked, rebuilt if stale",
                    mono_ms() - t0);
        etc_links_clear(&links);
}

int daemon_reload(struct daemon *d, struct reload_counts *ret, struct tn_err **err)
{
        struct found *list = NULL;
        size_t n = 0;
        int r = scan_manifests(d, &list, &n, err);
        if (r < 0)
                return r;
        etc_links_refresh(d);
        struct reload_counts rc = {0};

        public_ipv4_claims(d, list, n);
        for (struct tenant *t = d->tenants; t; t = t->next)
                t->removed = true; /* until its file is found again */

        for (size_t i = 0; i < n; i++) {
                struct found *f = &list[i];
                /* No manifest and no error text: out of memory while reading it. */
                if (f->error || !f->m) {
                        rc.invalid++;
                        reload_invalid(d, f);
                        continue;
                }
                struct tenant *t = daemon_find(d, f->name);
                if (t && !t->removed) {
                        rc.invalid++;
                        log_error("%s: name \"%s\" is already used by %s; ignored", f->path,
                                  f->name, t->path);
                        daemon_event(d, "manifest-invalid", NULL,
                                     "file=%s error=\"duplicate name %s\"", f->path, f->name);
                } else if (!t) {
                        rc.added += reload_added(d, f);
                } else if (reload_existing(d, t, f)) {
                        rc.changed++;
                } else {
                        rc.unchanged++;
                }
        }
        for (struct tenant *t = d->tenants, *next; t; t = next) {
                next = t->next;
                if (t->removed) {
                        rc.removed++;
                        reload_removed(d, t);
                }
        }
        found_free(list, n);
        if (ret)
                *ret = rc;
        daemon_event(d, "reloaded", NULL, "added=%u changed=%u removed=%u unchanged=%u invalid=%u",
                     rc.added, rc.changed, rc.removed, rc.unchanged, rc.invalid);
        daemon_rearm(d);
        return 0;
}

/* ---- signals, inotify, the loop ---- */

static void on_signal(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct signalfd_siginfo si;
        while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        _cleanup_err_ struct tn_err *err = NULL;
                        if (daemon_reload(d, NULL, &err) < 0)
                                log_error("reload: %s", tn_err_msg(err));
                } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        log_notice("exiting on signal %u; tenants keep running", si.ssi_signo);
                        d->quit = true;
                }
        }
}

static void on_inotify(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (;;) {
                ssize_t n = read(w->fd, buf, sizeof(buf));
                if (n <= 0)
                        return;
                for (char *p = buf; p < buf + n;) {
                        struct inotify_event *ev = (struct inotify_event *)p;
                        if (ev->len)
                                control_logs_changed(d, ev->name);
                        p += sizeof(*ev) + ev->len;
                }
        }
}

int daemon_run(struct daemon *d)
{
        d->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (d->epfd < 0)
                return log_error_errno(-errno, "epoll_create1");
        char path[4096];
        (void)mkdir(d->cfg.state_dir, 0711);
        tenant_dir(d->cfg.state_dir, "", path, sizeof(path));
        (void)mkdir(path, 0700);
        logs_dir(d->cfg.state_dir, path, sizeof(path));
        (void)mkdir(path, 0750);
        /* The prefix every tenant started from now on takes its IPv6 address from
         * (net.h); running tenants keep the address they started with. */
        _cleanup_err_ struct tn_err *prefix_err = NULL;
        int pr = net_prefix_store(d->cfg.state_dir, d->cfg.ipv6_prefix, &prefix_err);
        if (pr < 0)
                return log_error_errno(pr, "%s", tn_err_msg(prefix_err));

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        d->signal_w =
            (struct watch){.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK), .fn = on_signal};
        d->timer_w = (struct watch){
            .fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), .fn = on_timer};
        d->inotify_w =
            (struct watch){.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), .fn = on_inotify};
        if (d->signal_w.fd < 0 || d->timer_w.fd < 0 || d->inotify_w.fd < 0)
                return log_error_errno(-errno, "cannot create the loop's descriptors");
        inotify_add_watch(d->inotify_w.fd, path, IN_MODIFY | IN_CREATE | IN_MOVED_TO);
        daemon_watch_add(d, &d->signal_w, EPOLLIN);
        daemon_watch_add(d, &d->timer_w, EPOLLIN);
        daemon_watch_add(d, &d->inotify_w, EPOLLIN);
        /* The id health probes drop to: checked once, before any tenant starts. */
        _cleanup_err_ struct tn_err *probe_err = NULL;
        if (uidrange_probe_id(d->cfg.state_dir, d->cfg.uid_base, &d->probe_id, &probe_err) < 0) {
                snprintf(d->probe_error, sizeof(d->probe_error), "%s", tn_err_msg(probe_err));
                log_error("tcp and http health checks will not run: %s", d->probe_error);
        }
        /* On cgroup v2, tenantd steps into a leaf of its own so that its cgroup can
         * delegate controllers to the tenants' (cgroup.c explains). */
        _cleanup_err_ struct tn_err *cgerr = NULL;
        if (tenant_cgroup_prepare(&cgerr) < 0)
                log_warning("cgroups: %s", tn_err_msg(cgerr));
        int r = control_listen(d);
        if (r < 0)
                return r;
        d->started_mono = mono_ms();
        d->next_sample_ms = mono_ms() + d->cfg.sample_ms;

        _cleanup_err_ struct tn_err *err = NULL;
        struct reload_counts rc;
        char summary[RELOAD_SUMMARY_MAX];
        if (daemon_reload(d, &rc, &err) < 0)
                log_error("%s", tn_err_msg(err)); /* an empty or missing directory is not fatal */
        else
                log_notice("manifests: %s", reload_counts_format(&rc, summary, sizeof(summary)));

        /* Readiness: the socket accepts, the tenants found were adopted or started. */
        const char *ns = getenv("NOTIFY_SOCKET");
        if (ns && *ns)
                (void)sd_notify_ready(ns);
        if (d->cfg.pidfile) {
                char pid[32];
                int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
                _cleanup_err_ struct tn_err *perr = NULL;
                if (write_file_atomic(d->cfg.pidfile, pid, (size_t)n, 0644, &perr) < 0)
                        log_warning("pidfile: %s", tn_err_msg(perr));
        }
        if (d->ready_fd >= 0) {
                /* Detached: from now on syslog, and nothing of the terminal is kept. */
                log_open(d->cfg.syslog_ident, LOG_TARGET_SYSLOG, d->cfg.syslog_facility);
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(null, 2);
                        close(null);
                }
                (void)!write(d->ready_fd, "1", 1);
                close(d->ready_fd);
                d->ready_fd = -1;
        }
        daemon_rearm(d);
        while (!d->quit) {
                struct epoll_event evs[64];
                int n = epoll_wait(d->epfd, evs, 64, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(-errno, "epoll_wait");
                for (int i = 0; i < n; i++) {
                        struct watch *w = evs[i].data.ptr;
                        if (w->fd >= 0) /* not closed by an earlier event of this batch */
                                w->fn(d, w, evs[i].events);
                }
                control_pump(d);
                bury(d);
        }
        control_close_all(d);
        if (d->cfg.pidfile)
                unlink(d->cfg.pidfile);
        /* The tenants run on (their keepers hold them); only our view of them goes. */
        while (d->tenants) {
                struct tenant *t = d->tenants;
                monitor_glue_detach(d, t);
                health_cancel(d, t);
                tenant_free(d, t);
        }
        bury(d);
        for (size_t i = 0; i < d->events_n; i++)
                free(d->events[(d->events_head + i) % EVENTS_KEPT]);
        free(d->events);
        return 0;
}
