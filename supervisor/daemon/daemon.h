/* daemon.h — tenantd's state and its event loop, shared by daemon.c (the loop, the
 * tenants' lifecycle, reload and recovery), control.c (the control socket) and
 * health.c (health checks and exec).
 *
 * One thread, one epoll set: the control socket and its clients, a signalfd, one
 * timerfd for every deadline (sampling, backoff, stop timeouts, health checks), an
 * inotify watch on the log directory (for `logs --follow`), and per tenant the
 * keeper's pidfd and its status pipe. Nothing blocks: a slow client, a slow tenant or
 * a slow disk never holds the loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "proto/control_proto.h"
#include "spec/manifest.h"
#include "daemon/keeper.h"
#include "lib/clock.h"
#include "lib/err.h"

struct daemon;
struct client;
struct policy_bpf;

/* Something in the epoll set. */
struct watch {
        int fd;
        void (*fn)(struct daemon *d, struct watch *w, uint32_t events);
};

enum tenant_state {
        TENANT_STOPPED,   /* not running, and not meant to run */
        TENANT_STARTING,  /* keeper forked, waiting for "started" */
        TENANT_RUNNING,   /* the service runs */
        TENANT_STOPPING,  /* stop signal sent, waiting for the end */
        TENANT_BACKOFF,   /* ended, restarts when the backoff delay is over */
        TENANT_FAILED,    /* ended with a failure and is not restarted */
        TENANT_EXITED,    /* ended on its own with status 0 and is not restarted */
        TENANT_CRASHLOOP, /* restarted too often: waits for an operator's start */
};

const char *tenant_state_name(enum tenant_state s);

struct health_state {
        uint64_t next_ms; /* monotonic: when the next check starts */
        uint32_t failures;
        bool last_ok;
        bool checked;
        char detail[300];
        pid_t pid;    /* a check in progress (a child of tenantd) */
        bool vm_busy; /* a check in progress in a microVM (through its runner) */
        struct watch w;
        uint64_t deadline_ms;
};

struct tenant {
        struct tenant *next;
        char name[MANIFEST_NAME_MAX + 1];
        char *path;           /* its manifest file */
        struct manifest *m;   /* as loaded; replaced by reload */
        char *explained;      /* manifest_explain(m): what "changed" compares */
        char *manifest_error; /* the last reload found the file invalid: why */

        enum tenant_state state;
        bool want_running;       /* the operator's last word (persisted) */
        bool removed;            /* its manifest is gone: forget it once stopped */
        struct manifest *next_m; /* reload changed it: restart with this one */
        char *next_explained;

        uint64_t generation;
        pid_t keeper_pid;
        struct watch keeper_w; /* keeper pidfd */
        struct watch status_w; /* keeper status pipe, while starting */
        char status_buf[1280]; /* > KEEPER_STATUS_MAX: a whole line fits */
        size_t status_len;
        struct watch event_w; /* keeper event pipe, while it runs (keeper.h) */
        char event_buf[KEEPER_EVENT_MAX];
        size_t event_len;
        bool event_skip; /* inside a line too long to be one: dropped to its end */
        pid_t init_pid;
        int init_pidfd;
        uint32_t id_base;
        uint64_t started_ms; /* wall clock */
        uint64_t started_mono;
        bool adopted; /* found running by this tenantd rather than started by it */

        uint32_t restarts;    /* automatic restarts since the operator's last start */
        uint32_t consecutive; /* failures without a stable run in between */
        int last_status;      /* -1: never ended */
        uint64_t last_exit_ms;
        uint64_t deadline_ms; /* monotonic; 0 = none (backoff end, stop timeout) */
        bool stop_requested;
        bool start_failed; /* the keeper said "error": the run never started */
        char *last_error;  /* why the last start failed, for status */
        bool killed;       /* SIGKILL sent at the stop timeout */

        const char *busy; /* an operation in progress ("starting", ...) */
        /* A microVM in TENANT_STARTING that waits for a boot slot (vm_boots): nothing
         * of it runs yet; boot_queued is its place in the line. */
        uint64_t boot_queued;
        struct client *waiter; /* the client to answer when it completes */
        bool restart_after_stop;

        struct health_state health;
        void *monitor;           /* monitor state, see daemon_monitor_* */
        void *backup_job;        /* a backup worker running (backup.c) */
        uint64_t backup_last_ms; /* wall clock of the last backup's end; 0: none */
        bool backup_last_ok;
        char backup_last[256]; /* what it said: the snapshot ids, or why it failed */
        time_t backup_started; /* wall clock of the last backup's start; 0: none */
        time_t backup_due;     /* the next scheduled backup (backup_tick); 0: not set */
        const struct manifest *backup_due_m; /* the manifest backup_due was set from */
        time_t backup_ok_at;      /* wall clock of the last successful backup's end; 0: none */
        uint64_t backup_ok_ms;    /* the same in ms, for status */
        uint64_t backup_ok_size;  /* its bytes read from the volumes (restic's total) */
        uint64_t backup_ok_added; /* what the repository grew by */
        uint64_t backup_ok_duration_ms; /* from its start (pre, freeze, upload) to its end */
        time_t backup_since;            /* when backup_tick first saw the tenant */
        bool backup_stale;              /* backup-stale was said; cleared by a success */
        bool backup_cg_left; /* backup-of-NAME could not be removed yet (backup_tick retries) */
        char *restore_note;  /* a restore's text, while the start that follows it runs */
        bool restore_new;    /* made by restore --as, which has not succeeded yet */
};

struct daemon_config {
        char *manifest_dir;
        char *state_dir;
        char *storage_dir; /* volume images: STORAGE/TENANT/NAME.img; default STATE/volumes */
        char *master_key;  /* wraps the volumes' keys; default STATE/master.key */
        char *socket_path;
        char *socket_group;     /* "tenantd" */
        char *user_socket_path; /* NULL: user.sock beside socket_path; "none": none */
        int syslog_facility;
        char *syslog_ident;
        char *syslog_socket; /* alerts: /dev/log unless set */
        char *pidfile;       /* or NULL */
        char *ipv6_prefix;   /* "ADDR/LEN" (net_prefix_parse() checked it), or NULL */
        uint64_t sample_ms;
        uint64_t client_idle_ms; /* control clients idle this long are closed; 0: never */
        bool foreground;
        uint32_t uid_base;
        uint32_t vm_boots; /* microVMs booting at once; the others wait their turn */
};

struct daemon {
        struct daemon_config cfg;
        int ready_fd; /* written to once tenantd serves (when it detached), else -1 */
        int epfd;
        struct watch signal_w, timer_w, listen_w, inotify_w;
        struct watch user_listen_w; /* the user socket (control.c), fd -1 when none */
        char *user_socket;          /* its path, or NULL */
        size_t n_user_clients;
        struct tenant *tenants;
        struct tenant *graveyard; /* freed once the current batch of events is done */
        struct client *clients;
        struct client *client_graveyard;
        size_t n_clients;
        gid_t group;
        bool have_group;
        bool quit;
        uint64_t next_sample_ms;
        uint64_t started_mono;
        uint64_t boot_seq; /* the order in which microVMs wait for a boot slot */
        /* the index of /usr's links into /etc (host/etc_links.h) was made or checked:
         * every later reload rebuilds it */
        bool etc_links_indexed;
        /* tcp/http health probes run as this host uid and gid (uidrange_probe_id);
         * 0 when it cannot be used, and probe_error says why */
        uint32_t probe_id;
        char probe_error[256];
        /* recent events for `tenantctl events` */
        char **events;
        size_t events_head, events_n;
};

/* Runs the loop until SIGTERM/SIGINT; tenants keep running after it returns. */
int daemon_run(struct daemon *d);
/* READY=1 to $NOTIFY_SOCKET, as sd_notify(3). */
int sd_notify_ready(const char *path);

int daemon_watch_add(struct daemon *d, struct watch *w, uint32_t events);
int daemon_watch_mod(struct daemon *d, struct watch *w, uint32_t events);
void daemon_watch_del(struct daemon *d, struct watch *w);
/* Re-arms the timer for the earliest deadline. */
void daemon_rearm(struct daemon *d);

struct tenant *daemon_find(struct daemon *d, const char *name);

/* Operations behind the control verbs. Each returns 0 when accepted (the reply follows
 * through control_complete()), 1 when already done (tenant_op_stop of a stopped
 * tenant), or a negative errno with *err saying why. */
int tenant_op_start(struct daemon *d, struct tenant *t, struct client *c, struct tn_err **err);
int tenant_op_stop(struct daemon *d, struct tenant *t, struct client *c, uint64_t timeout_ms,
                   bool restart, struct tn_err **err);
int tenant_op_kill(struct daemon *d, struct tenant *t, int sig, struct tn_err **err);

/* What a reload found, against what tenantd knew. */
struct reload_counts {
        unsigned added, changed, removed, unchanged, invalid;
};
#define RELOAD_SUMMARY_MAX 128
/* "1 added, 0 changed, ...": the reply to `reload` and the log line at start. */
const char *reload_counts_format(const struct reload_counts *rc, char *buf, size_t len);
/* Reads the manifest directory again: new tenants are added (and started if their
 * manifest says so), changed ones restarted, removed ones stopped and forgotten. A
 * directory that cannot be read or trusted changes nothing. *ret may be NULL. */
int daemon_reload(struct daemon *d, struct reload_counts *ret, struct tn_err **err);
/* restore --as: a copy of from's manifest file named `name`, written to the manifest
 * directory and added as a stopped tenant (*ret); -EEXIST when the name is taken. */
int daemon_tenant_copy(struct daemon *d, const struct tenant *from, const char *name,
                       struct tenant **ret, struct tn_err **err);
/* Forgets a stopped tenant whose manifest file is gone (a failed restore --as). */
void daemon_tenant_drop(struct daemon *d, struct tenant *t);

/* An event: logged, appended to the event ring, sent to `events --follow` clients.
 * `fmt` gives key=value pairs after "event=KIND tenant=NAME". */
void daemon_event(struct daemon *d, const char *kind, const struct tenant *t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* control.c */
int control_listen(struct daemon *d);
void control_close_all(struct daemon *d);
/* Idle control clients: the next deadline (UINT64_MAX: none), and closing those due. */
uint64_t control_next_deadline(const struct daemon *d);
void control_tick(struct daemon *d, uint64_t now);
/* Frees clients closed during the current batch of events. */
void control_bury(struct daemon *d);
/* Handles requests that arrived while an earlier one of the same client waited. */
void control_pump(struct daemon *d);
/* Appends " key=value" to an event line, the value quoted and escaped when it is not
 * plain (alert.h's rules): what a tenant or a client chose cannot forge a line. */
void event_kv(char *buf, size_t len, const char *key, const char *value);
/* An event with one such key=value. */
void event_with(struct daemon *d, const char *kind, const struct tenant *t, const char *key,
                const char *value);
/* The operation a client waited for is over: reply ok or with the error. */
void control_complete(struct daemon *d, struct client *c, int r, const char *msg);
/* The same, ok, with the members of the object obj (backups' "snapshots"). */
void control_complete_members(struct daemon *d, struct client *c, const struct json_value *obj);
/* New bytes in a tenant's log file, or a new event line. */
void control_logs_changed(struct daemon *d, const char *file);
void control_broadcast_event(struct daemon *d, const char *line);
/* A tenant is being forgotten: clients following or waiting on it are told. */
void control_forget_tenant(struct daemon *d, struct tenant *t);
/* t->m was replaced: user-socket streams and execs it no longer grants are closed. */
void control_access_changed(struct daemon *d, struct tenant *t);

/* backup.c: a backup, a listing, a check or a restore of t's volumes in a worker;
 * answered through control_complete() when it ends (docs/backup.md). */
int tenant_op_backup(struct daemon *d, struct tenant *t, struct client *c,
                     enum control_backup_action action, struct tn_err **err);
/* restore: into t's own volumes (t stopped; `yes` needed when they hold data, which is
 * kept aside as VOLUME.img.pre-restore until t has started again), or with `as` into a
 * new tenant of that name (daemon_tenant_copy); then the tenant is started, and the
 * client answered when it runs or failed (backup_restore_started). */
int tenant_op_restore(struct daemon *d, struct tenant *t, struct client *c, const char *snapshot,
                      const char *as, bool yes, struct tn_err **err);
/* A start after a restore ended (r, msg: as finish_op has them): on success the old
 * images kept aside are removed; the reply's text, in buf, says what happened. */
const char *backup_restore_started(struct daemon *d, struct tenant *t, int r, const char *msg,
                                   char *buf, size_t len);
/* What a backup that died with tenantd may have left (a frozen tenant or file system, a
 * snapshot image, restic's cgroup) is undone; at tenantd's start, for each tenant. */
void backup_recover(struct daemon *d, struct tenant *t);

/* At tenantd's start: the old images a restore in place left aside (VOLUME.img.pre-restore)
 * go when the tenant has started since (`started`), and are put back otherwise. */
void backup_restore_recover(struct daemon *d, struct tenant *t, bool started);
/* backup.schedule: starts a due backup (a tenant busy with something else gets it a
 * minute later); the monotonic time of the next one, UINT64_MAX without a schedule. */
void backup_tick(struct daemon *d, struct tenant *t, uint64_t now);
uint64_t backup_deadline(const struct tenant *t);
/* The tenant is being freed: a backup worker of its is killed and what it froze thawed. */
void backup_forget(struct daemon *d, struct tenant *t);

/* health.c */
void health_schedule(struct daemon *d, struct tenant *t);
void health_tick(struct daemon *d, struct tenant *t, uint64_t now);
void health_cancel(struct daemon *d, struct tenant *t);
/* Forks a process that enters the running tenant with its confinement and executes
 * argv with stdio on the given descriptors (-1: /dev/null); they must be tenantd's own
 * (pipes), never a client's. With tty, see sandbox_config.tty for what 0-2 carry.
 * Returns its pidfd. */
int tenant_exec_spawn(struct daemon *d, struct tenant *t, char **argv, const int stdio[3], bool tty,
                      pid_t *ret_pid, struct tn_err **err);
