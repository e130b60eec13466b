/* monitor.h — quota usage and alert rules, per tenant. Pure: no clock, no file, no
 * system call. The daemon samples (cgroup.h, net.h, transfer.h) on its timer and feeds
 * what it read, stamped with a monotonic time in milliseconds; the monitor turns
 * counters into utilisation, evaluates each quota's rule with hysteresis and returns
 * the alerts to send (alert.h formats and sends them). A fake clock is all a test needs.
 *
 * Utilisation, per quota, as a fraction of its limit (1.0 = at the limit):
 *   cpu       delta cpu usage / delta time / cpu.max (in CPUs)
 *   memory    memory current / memory max (the cgroup's own value, so live changes count)
 *   pids      pids current / pids max (likewise)
 *   egress    bytes the tenant sent per second * 8 / network.egress.rate
 *   ingress   bytes the tenant received per second * 8 / network.ingress.rate
 *   transfer  bytes used in the current period / the period's volume
 *   disk      the fullest volume's used bytes / its file system's size (used + available,
 *             as df counts it); the event names that volume
 *
 * Rule (struct alert_rule): raised once utilisation has stayed at or above the threshold
 * for for_ms without a sample below it; cleared at the first sample below the clear
 * level; between the two nothing changes (hysteresis). For the rate quotas (cpu,
 * egress, ingress) a sample's value is the average over the interval since the previous
 * sample, so "above since" starts at the beginning of that interval. While an alert stays
 * raised, a reminder repeats it at most every reminder_ms. OOM kills (a rise of the
 * oom_kill counter) and pids-limit hits (a rise of pids.events "max") are reported
 * whatever the rules: the first after a quiet spell at once, later ones at most every
 * MONITOR_ONE_SHOT_MS per kind with their counts summed (a fork bomb held at pids.max
 * must not write a line per sample); what is held back goes out when the interval has
 * passed, at a later sample even without new events, or at monitor_flush. The first
 * sample only sets the baselines: counts that happened before the monitor started (a
 * restarted daemon) are not reported again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/cgroup.h"
#include "spec/manifest.h"

enum quota_kind {
        QUOTA_CPU,
        QUOTA_MEMORY,
        QUOTA_PIDS,
        QUOTA_EGRESS,
        QUOTA_INGRESS,
        QUOTA_TRANSFER,
        QUOTA_DISK,
        QUOTA__N,
};

/* "cpu", "memory", "pids", "egress", "ingress", "transfer", "disk" */
const char *quota_name(enum quota_kind q);

/* The limits and rules the monitor compares with. A limit of 0 (or MONITOR_UNLIMITED
 * for memory and pids) means the quota has none and is not evaluated. Rules that are
 * not set get the defaults below (docs/alerts.md). */
#define MONITOR_UNLIMITED UINT64_MAX

struct monitor_limits {
        uint32_t cpu_millicpus;  /* 0 = none */
        uint64_t memory_max;     /* fallback when a sample has none; MONITOR_UNLIMITED */
        uint64_t pids_max;       /* likewise */
        uint64_t egress_rate;    /* bits/s, 0 = none */
        uint64_t ingress_rate;   /* bits/s, 0 = none */
        uint64_t transfer_limit; /* bytes per period, 0 = none */
        bool disk;               /* the tenant has volumes */
        struct alert_rule rules[QUOTA__N];
};

/* The manifest's limits and alerts, with the default rules filled in where the manifest
 * has none: pids "90%" (clear 80%), transfer "90%" (clear 80%), disk "90%" (clear 80%); cpu, memory and network
 * have no default rule (a tenant at its cpu or rate limit is busy, not in trouble, and
 * memory counts the page cache, which the kernel reclaims; OOM kills are reported
 * anyway). */
void monitor_limits_from_manifest(const struct manifest *m, struct monitor_limits *ret);

/* One sample. now_ms: a monotonic clock in milliseconds (CLOCK_MONOTONIC, or a fake). */
struct monitor_sample {
        uint64_t now_ms;
        bool has_cgroup;
        struct cgroup_sample cg;
        bool has_net;
        uint64_t net_rx_bytes; /* the host end's counters: its rx is what the tenant sent */
        uint64_t net_tx_bytes; /* and its tx what the tenant received */
        uint64_t net_rx_packets, net_tx_packets; /* the same, in packets */
        bool has_transfer;
        uint64_t transfer_used; /* bytes in the current period (transfer.h) */
        bool has_disk;          /* the fullest volume (by used / size): */
        uint64_t disk_used;     /* bytes used */
        uint64_t disk_size;     /* bytes used + available */
        char disk_volume[MANIFEST_NAME_MAX + 1];
};

enum monitor_event_kind {
        MONITOR_RAISED,     /* a rule's threshold held for its duration */
        MONITOR_CLEARED,    /* utilisation fell below the clear level */
        MONITOR_REMINDER,   /* still raised, repeated at most every reminder_ms */
        MONITOR_OOM_KILL,   /* the kernel OOM-killed processes of the tenant */
        MONITOR_PIDS_LIMIT, /* forks were refused at pids.max */
        MONITOR_EXCEEDED,   /* transfer volume used up (transfer.h builds these) */
        MONITOR_RESTORED,   /* a new transfer period: the exceed action is undone */
};

/* An alert, plain data: alert.h formats it as a key=value line. */
struct monitor_event {
        enum monitor_event_kind kind;
        enum quota_kind quota;
        char tenant[MANIFEST_NAME_MAX + 1];
        double usage;     /* utilisation, fraction of the limit; NAN when unknown */
        double used;      /* in the quota's unit: CPUs, bytes, count, bits/s, bytes */
        double limit;     /* likewise */
        double threshold; /* RAISED, REMINDER: the rule's threshold as a fraction */
        uint64_t for_ms;  /* RAISED, REMINDER: how long above; CLEARED: how long raised */
        uint64_t count;   /* OOM_KILL, PIDS_LIMIT: new events since the last line of the kind */
        uint64_t total;   /* OOM_KILL, PIDS_LIMIT: the counter's value */
        /* EXCEEDED, RESTORED (transfer): */
        const char *period;                 /* "daily", "weekly", "monthly" (static string) */
        const char *action;                 /* "alert", "throttle", "cut" (static string) */
        uint64_t rate;                      /* throttle rate, bits/s */
        char volume[MANIFEST_NAME_MAX + 1]; /* disk: the volume, "" otherwise */
};

/* What `tenantctl top` and status show: the last sample's values. A field whose
 * `have_*` is false was not measured yet (no sample, or no second sample for a rate). */
struct monitor_status {
        uint64_t sample_ms;                  /* time of the last sample, 0 when none */
        double cpu_used;                     /* CPUs over the last interval (have_cpu) */
        double cpu_fraction;                 /* of cpu.max; NAN without a limit */
        double cpu_throttled_fraction;       /* throttled time / interval */
        uint64_t cpu_throttled_ns;           /* total */
        uint64_t cpu_nr_throttled;           /* total */
        uint64_t memory_current, memory_max; /* have_memory */
        uint64_t pids_current, pids_max;     /* have_pids */
        double rx_bps, tx_bps; /* the tenant's egress and ingress, bits/s (have_net) */
        double rx_pps, tx_pps; /* the same in packets/s (have_net) */
        uint64_t transfer_used, transfer_limit; /* have_transfer */
        uint64_t disk_used, disk_size;          /* have_disk: the fullest volume */
        uint64_t oom_kills;                     /* total seen since the monitor started */
        uint64_t pids_limit_hits;               /* likewise */
        double usage[QUOTA__N];                 /* last utilisation per quota; NAN when unknown */
        bool raised[QUOTA__N];
        bool have_cpu, have_memory, have_pids, have_net, have_transfer, have_disk;
};

struct monitor_tenant;

#define MONITOR_DEFAULT_REMINDER_MS (10ULL * 60 * 1000)
/* OOM kills and pids-limit hits: the first after a quiet spell is sent at the next
 * sample, later ones at most this often per tenant and kind, their counts summed. */
#define MONITOR_ONE_SHOT_MS 10000ULL
/* The most events one sample can produce: one per quota, an OOM kill, a pids hit. */
#define MONITOR_MAX_EVENTS (QUOTA__N + 2)

/* reminder_ms: the shortest interval between reminders of a raised alert (0: none).
 * Returns NULL on ENOMEM. `name` is copied (cut to MANIFEST_NAME_MAX). */
struct monitor_tenant *monitor_tenant_new(const char *name, const struct monitor_limits *l,
                                          uint64_t reminder_ms);
void monitor_tenant_free(struct monitor_tenant *mt);
DEFINE_POINTER_CLEANUP(struct monitor_tenant, monitor_tenant_free)

/* Says the tenant's cgroups are new (the tenant was just started, not found running by
 * a restarted daemon): OOM kills and pids-limit hits then count from zero instead of
 * from the first sample, so one that happens before the first sample is reported too.
 * The daemon can instead feed a first sample right after creating the cgroups, before
 * the tenant runs. Call before the first monitor_feed. */
void monitor_tenant_fresh(struct monitor_tenant *mt);

/* Live changes (tenantctl set): new limits and rules apply from the next sample. State
 * is kept; an alert raised on a quota that no longer has a limit or rule clears at the
 * next sample. */
void monitor_tenant_set_limits(struct monitor_tenant *mt, const struct monitor_limits *l);

/* Feeds one sample (now_ms must not go backwards; a sample that does is ignored).
 * Writes the alerts it causes into out[] and returns how many. */
size_t monitor_feed(struct monitor_tenant *mt, const struct monitor_sample *s,
                    struct monitor_event out[MONITOR_MAX_EVENTS]);

/* The tenant's end (after its final sample) or the monitor's: the OOM kills and
 * pids-limit hits held back by the rate limit are returned now, each kind as one event.
 * Returns how many (0..2). */
size_t monitor_flush(struct monitor_tenant *mt, uint64_t now_ms,
                     struct monitor_event out[MONITOR_MAX_EVENTS]);

void monitor_status(const struct monitor_tenant *mt, struct monitor_status *ret);
