/* manifest.h — a service manifest (schema v1): bytes in, one validated plain struct out.
 *
 * manifest_parse() is pure: no file or system access. It checks everything that can be
 * checked from the text alone (syntax, keys, types, units, ranges, cross-field rules)
 * and collects every problem it finds as a diagnostic naming FILE:LINE:COL, the key
 * path and what would be accepted. What needs the host (does a mount source exist, is
 * a seccomp profile installed) is checked later by the caller.
 *
 * The reference for every key is docs/manifest.md; keep the two in step. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/cleanup.h"

#define MANIFEST_NAME_MAX 32
/* The cgroup of a tenant's backup worker is OWN/tenantd/backup-of-NAME, beside the
 * tenants' own (backup.c): no tenant may be called so, or its cgroup would be another
 * tenant's backup cgroup, limited and killed with it. */
#define MANIFEST_BACKUP_CGROUP_PREFIX "backup-of-"
#define MANIFEST_MAX_EXEC_ARGS 256
#define MANIFEST_MAX_ENV 256
#define MANIFEST_MAX_MOUNTS 64
#define MANIFEST_MAX_VOLUMES 16
#define MANIFEST_MAX_PUBLISH 64
#define MANIFEST_MAX_CIDRS 256
#define MANIFEST_MAX_CAPS 64
#define MANIFEST_MAX_ACCESS 64   /* entries of "access" */
#define MANIFEST_ACCOUNT_MAX 32  /* bytes of a host user or group name in "access" */
#define MANIFEST_MAX_STRING 4096 /* any single string value, in bytes */
#define MANIFEST_UID_MAX 65535   /* tenants map uids/gids 0..65535 */
#define MANIFEST_UNLIMITED UINT64_MAX

enum isolation {
        ISOLATION_SANDBOX,
        ISOLATION_MICROVM,
};

enum root_kind {
        ROOT_HOST_SYSTEM, /* read-only /usr of the host and a synthesized /etc */
        ROOT_PATH,        /* an image directory on the host */
};

enum mount_type {
        MOUNT_BIND,
        MOUNT_TMPFS,
};

enum net_mode {
        NET_NONE,    /* loopback only */
        NET_PRIVATE, /* own address, NAT egress, firewall, shaping */
};

enum transfer_period {
        TRANSFER_NONE,
        TRANSFER_DAILY,
        TRANSFER_WEEKLY,
        TRANSFER_MONTHLY,
};

enum transfer_action {
        TRANSFER_ALERT,
        TRANSFER_THROTTLE,
        TRANSFER_CUT,
};

enum abuse_action {
        ABUSE_ALERT,    /* say so, nothing more */
        ABUSE_THROTTLE, /* both rates down to throttle_rate for ABUSE_THROTTLE_MS */
        ABUSE_CUT,      /* no traffic at all for cut_ms */
};

/* network.limits defaults (docs/manifest.md and docs/abuse.md say why). */
#define LIMITS_DEFAULT_CONNS 4096
#define LIMITS_DEFAULT_NEW_CONNS 200 /* per second */
#define LIMITS_DEFAULT_PPS 50000     /* per second, each way */
#define ABUSE_THROTTLE_MS (10 * 60 * 1000)

/* backup.schedule (docs/backup.md): none (only `tenantctl backup`), once a day at a
 * local time, or every so often; tenantd adds a jitter of its own to both. */
enum backup_schedule {
        BACKUP_MANUAL,
        BACKUP_DAILY, /* at daily_minute past midnight, local time */
        BACKUP_EVERY, /* every every_ms */
};

enum backup_io_class {
        BACKUP_IO_BEST_EFFORT, /* ionice -c 2 -n 7 */
        BACKUP_IO_IDLE,        /* ionice -c 3 */
};

/* backup defaults (docs/backup.md): restic gets half a CPU, 512M and nice 10. */
#define BACKUP_DEFAULT_CPU 500 /* millicpus */
#define BACKUP_DEFAULT_MEMORY (512ULL << 20)
#define BACKUP_DEFAULT_NICE 10

/* The `backup` section: restic repository, password, schedule, retention, which
 * volumes, the command run inside the tenant first, and restic's own limits. */
struct backup_spec {
        bool set;            /* the manifest has a backup section */
        char *repository;    /* an absolute path or "sftp:...", "rest:...", ... */
        char *password_file; /* absolute host path; root's, not readable by others */
        char *ssh_key;       /* sftp: ssh's identity file (root's, mode 0600) */
        char *known_hosts;   /* sftp: the server's host key (root's, not group-writable) */
        enum backup_schedule schedule;
        uint32_t daily_minute; /* BACKUP_DAILY: 0..1439 */
        uint64_t every_ms;     /* BACKUP_EVERY */
        struct {
                uint32_t last, hourly, daily, weekly, monthly, yearly; /* 0: not kept by that */
        } keep;
        char **volumes; /* NULL-terminated names, NULL = every volume */
        size_t volumes_n;
        char **pre; /* NULL-terminated argv, or NULL */
        size_t pre_n;
        struct {
                uint32_t cpu_millicpus; /* 0 = unlimited */
                uint64_t memory;        /* bytes; MANIFEST_UNLIMITED */
                uint32_t nice;          /* 0..19 */
                enum backup_io_class io;
        } limits;
};

enum restart_on {
        RESTART_NO,
        RESTART_ON_FAILURE,
        RESTART_ALWAYS,
};

enum health_kind {
        HEALTH_NONE,
        HEALTH_TCP,
        HEALTH_HTTP,
        HEALTH_EXEC,
};

enum proto {
        PROTO_TCP,
        PROTO_UDP,
};

struct env_var {
        char *name;
        char *value;
};

struct mount_spec {
        enum mount_type type;
        char *source; /* bind only: absolute host path */
        char *target; /* absolute, normalised path inside the tenant */
        bool readonly;
        bool noexec;
        uint64_t size; /* tmpfs only, bytes */
};

/* A volume: an ext4 file system of its own, in an image file on the host, mounted at
 * target in the tenant (docs/storage.md). Its data outlives the tenant. */
struct volume_spec {
        char *name;    /* [a-z0-9-], unique in the manifest: the image is NAME.img */
        char *target;  /* absolute, normalised path inside the tenant */
        uint64_t size; /* bytes */
        bool encrypt;  /* fscrypt with a key of its own (default true) */
        bool noexec;
        struct {
                uint64_t read;  /* bytes per second; 0 = unlimited */
                uint64_t write; /* bytes per second; 0 = unlimited */
                uint64_t iops;  /* read and write operations per second each; 0 = unlimited */
        } io;
};

struct cidr {
        int family; /* AF_INET or AF_INET6 */
        uint8_t addr[16];
        uint8_t prefix;
};

struct publish_spec {
        uint16_t host_port;
        uint16_t port;
        enum proto proto;
        int bind_family; /* AF_INET/AF_INET6: host address to listen on; 0 = all */
        uint8_t bind_addr[16];
};

/* What a host user may do to this tenant through tenantd's user socket (docs/self-service.md):
 * one bit per verb, 1 << enum access_op. `list`, `top` and `events` are implied by any
 * entry and show this tenant only. */
enum access_op {
        ACCESS_STATUS,
        ACCESS_LOGS,
        ACCESS_START,
        ACCESS_STOP,
        ACCESS_RESTART,
        ACCESS_KILL,
        ACCESS_EXEC,
        ACCESS_SET,
        ACCESS_AUDIT,
        ACCESS_RESTORE, /* restore in place (docs/backup.md); never --as */
        ACCESS_CONSOLE, /* a microVM's serial console, a sandbox's login shell */
        ACCESS_BACKUP,  /* backup now, and the list of its snapshots; never backup check */
        ACCESS_OP_COUNT_,
};

/* One entry of "access": a host user or a host group (exactly one of the two), matched by
 * name when a peer connects, never resolved by the parser (manifest_parse is pure). */
struct access_entry {
        char *user;  /* or NULL */
        char *group; /* or NULL */
        uint32_t allow;
        char **set; /* the keys `set` may lower; NULL: every key `set` takes */
        size_t set_n;
};

struct alert_rule {
        bool set;
        uint32_t threshold_bp; /* basis points: 90% = 9000 */
        uint32_t clear_bp;     /* below this the alert clears */
        uint64_t for_ms;       /* how long the threshold must hold */
};

struct manifest {
        char *name;
        char *description;
        enum isolation isolation;
        bool autostart;

        char **exec; /* NULL-terminated; exec[0] absolute */
        size_t exec_n;
        uint32_t uid, gid;
        uint32_t *groups; /* supplementary groups */
        size_t groups_n;
        struct env_var *env;
        size_t env_n;
        char *workdir;

        struct {
                enum root_kind kind;
                char *path; /* ROOT_PATH */
                bool readonly;
        } root;

        struct mount_spec *mounts;
        size_t mounts_n;
        struct volume_spec *volumes;
        size_t volumes_n;

        struct {
                uint32_t max_millicpus; /* 0 = unlimited */
                uint32_t weight;        /* 1..10000 */
                char *cpuset;           /* "0-1,3" or NULL */
        } cpu;
        struct {
                uint64_t max;  /* bytes; MANIFEST_UNLIMITED */
                uint64_t high; /* bytes; MANIFEST_UNLIMITED when unset */
                uint64_t swap; /* bytes; MANIFEST_UNLIMITED */
        } memory;
        struct {
                uint64_t max; /* MANIFEST_UNLIMITED */
        } pids;

        struct {
                enum net_mode mode;
                uint64_t egress_rate;  /* bits/s; 0 = unshaped */
                uint64_t ingress_rate; /* bits/s; 0 = unshaped */
                bool deny_lan;
                bool allow_host;
                bool ipv6;        /* private: an IPv6 address besides the IPv4 one (default) */
                bool ipv6_prefix; /* with ipv6 ("ipv6": "prefix"): a routed /64 of its own */
                struct cidr *allow;
                size_t allow_n;
                struct cidr *deny;
                size_t deny_n;
                struct {
                        enum transfer_period period;
                        uint64_t limit; /* bytes per period */
                        enum transfer_action action;
                        uint64_t throttle_rate; /* TRANSFER_THROTTLE: bits/s */
                } transfer;
                struct publish_spec *publish;
                size_t publish_n;
                uint32_t public_ipv4; /* host byte order; 0 = none (1:1 NAT, see net_rules) */
                char **dns;           /* NULL-terminated list of resolver addresses, or NULL */
                size_t dns_n;
                struct {
                        uint32_t conns;     /* tracked connections at once; 0 = no cap */
                        uint32_t new_conns; /* new connections per second; 0 = no limit */
                        uint32_t new_burst; /* connections beyond the rate at once */
                        uint32_t pps;       /* packets per second, each way; 0 = no limit */
                        bool smtp;          /* outbound 25, 465 and 587 allowed */
                        enum abuse_action on_abuse;
                        uint64_t throttle_rate; /* ABUSE_THROTTLE: bits/s */
                        uint64_t cut_ms;        /* ABUSE_CUT: how long */
                } limits;
        } network;

        struct {
                bool set; /* the manifest has a vm section (checked, and ignored by a sandbox) */
                uint32_t vcpus;
                uint64_t memory; /* bytes */
                char *kernel;    /* NULL = the built image */
                char *initrd;
                char *cmdline; /* extra kernel command line, or NULL */
        } vm;

        struct {
                char *seccomp;       /* profile name */
                char **capabilities; /* NULL-terminated, "CAP_X" or "@set" */
                size_t capabilities_n;
        } policy;

        struct {
                enum restart_on on;
                uint64_t backoff_min_ms;
                uint64_t backoff_max_ms;
                uint32_t burst;
                uint64_t stable_ms;
        } restart;

        struct {
                int signal;
                uint64_t timeout_ms;
        } stop;

        struct {
                enum health_kind kind;
                uint16_t port; /* TCP, HTTP */
                char *path;    /* HTTP */
                char **exec;   /* EXEC, NULL-terminated */
                size_t exec_n;
                uint64_t interval_ms;
                uint64_t timeout_ms;
                uint32_t retries;
                uint64_t start_period_ms;
        } health;

        struct {
                struct alert_rule cpu, memory, pids, network, transfer;
                struct alert_rule disk; /* the fullest volume's use of its file system */
        } alerts;

        struct backup_spec backup;
        struct access_entry *access;
        size_t access_n;

        struct {
                uint64_t max_size; /* bytes per file before rotation */
                uint32_t keep;     /* rotated files kept */
                uint64_t rate;     /* bytes per second; 0 = unlimited */
                bool syslog;
        } logs;
};

/* One problem found in a manifest. line/col are 0 when the problem is about the file
 * as a whole. */
struct diag {
        uint32_t line, col;
        char *path; /* key path such as "network.egress.rate" or "mounts[2].target"; may be "" */
        char *msg;
};

struct diag_list {
        struct diag *items;
        size_t n, cap;
        size_t dropped; /* diagnostics beyond the limit, counted but not kept */
        bool oom;
};

void diag_list_clear(struct diag_list *l);
/* Adds a diagnostic; on allocation failure sets l->oom (checked by the printer).
 * Control characters in the text are replaced, so a hostile manifest cannot forge
 * lines or escape sequences in the operator's terminal or log. */
void diag_add(struct diag_list *l, uint32_t line, uint32_t col, const char *path, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
/* Prints "FILE:LINE:COL: PATH: MSG" lines (FILE: MSG when there is no position). */
void diag_print(const struct diag_list *l, const char *file, FILE *out);

/* Parses and validates buf[0..len). Returns 0 and a manifest in *ret when there is no
 * diagnostic, otherwise -EINVAL with every problem in *diags (and *ret untouched). */
int manifest_parse(const char *buf, size_t len, struct manifest **ret, struct diag_list *diags);

void manifest_free(struct manifest *m);
DEFINE_POINTER_CLEANUP(struct manifest, manifest_free)
#define _cleanup_manifest_ _cleanup_(manifest_freep)

/* The effective configuration, every default filled in, as a manifest that parses back
 * to the same struct. Returns a malloc'd NUL-terminated string or NULL on ENOMEM. */
char *manifest_explain(const struct manifest *m);

const char *isolation_name(enum isolation i);

/* Whether backup.volumes (or, when it names none, every volume) includes `name`. */
bool backup_includes(const struct manifest *m, const char *name);
/* "status", "logs", ... for an access op; access_op_lookup: the op named so, or -1. */
const char *access_op_name(enum access_op op);
int access_op_lookup(const char *name);

/* "SIGTERM" for the stop signals a manifest may name. */
const char *manifest_signal_name(int sig);
