/* abuse.h — network.limits' counters turned into abuse alerts and on_abuse actions, per
 * tenant. Pure: no clock, no file, no system call. The daemon reads the tenant's named
 * nftables counters (net_abuse_counters(), host/net.h) on its sampling timer and feeds
 * them here, stamped with a monotonic time in milliseconds; this returns the events to
 * log and the actions to apply or lift (the caller applies them: net_cut(),
 * net_set_rates()).
 *
 * Kinds (docs/abuse.md): conns, new_conns, pps (from the tenant), pps_in (to it), smtp,
 * scan, flood. Each counter only grows when the tenant hit a cap or a detector, so the
 * rule is the alert rules' shape with a threshold of one hit:
 *   raised    at the first sample whose counter grew;
 *   reminder  while hits go on, at most every reminder_ms, with the hits since the last
 *             line (the rate limit: a tenant at a cap all day writes a line every ten
 *             minutes, not one a second);
 *   cleared   once clear_ms passed without a hit (the hysteresis: a tenant that hits a
 *             cap every few seconds stays raised instead of flapping).
 * on_abuse "throttle" or "cut": at a hit of any kind but pps_in (a flood toward the
 * tenant is not its doing) while no action is in force, APPLIED; action_ms later,
 * LIFTED. Hits while the action is in force do not extend it; hits after it was lifted
 * apply it again. The first sample sets the baselines unless the tenant is fresh (its
 * table was just made and its counters start at zero); a counter that went backwards
 * means the table was made again and counts from zero. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/net.h"
#include "spec/manifest.h"

enum abuse_kind {
        ABUSE_KIND_CONNS,
        ABUSE_KIND_NEW_CONNS,
        ABUSE_KIND_PPS,
        ABUSE_KIND_PPS_IN,
        ABUSE_KIND_SMTP,
        ABUSE_KIND_SCAN,
        ABUSE_KIND_FLOOD,
        ABUSE_KIND__N,
};

/* "conns", "new_conns", "pps", "pps_in", "smtp", "scan", "flood" */
const char *abuse_kind_name(enum abuse_kind k);

#define ABUSE_DEFAULT_CLEAR_MS (60ULL * 1000)
#define ABUSE_DEFAULT_REMINDER_MS (10ULL * 60 * 1000)

struct abuse_config {
        enum abuse_action action; /* ABUSE_ALERT, ABUSE_THROTTLE, ABUSE_CUT */
        uint64_t throttle_rate;   /* bits/s, for ABUSE_THROTTLE */
        uint64_t action_ms;       /* how long an action stays in force */
        uint64_t clear_ms;        /* quiet time before an alert clears */
        uint64_t reminder_ms;     /* 0: no reminders */
};

/* network.limits.on_abuse, with the default clear and reminder times. */
void abuse_config_from_manifest(const struct manifest *m, struct abuse_config *ret);

enum abuse_event_kind {
        ABUSE_RAISED,
        ABUSE_REMINDER,
        ABUSE_CLEARED,
        ABUSE_APPLIED, /* apply cfg.action now */
        ABUSE_LIFTED,  /* undo it now */
};

struct abuse_event {
        enum abuse_event_kind kind;
        enum abuse_kind what; /* APPLIED: the kind that set it off */
        char tenant[MANIFEST_NAME_MAX + 1];
        uint64_t count;  /* RAISED: hits in the sample; REMINDER, CLEARED: since the last line */
        uint64_t total;  /* hits since the monitor started */
        uint64_t for_ms; /* REMINDER: raised that long; CLEARED, LIFTED: was raised / in force */
        enum abuse_action action; /* APPLIED, LIFTED (and RAISED: what on_abuse says) */
        uint64_t rate;            /* APPLIED, LIFTED for throttle: bits/s */
        uint64_t action_ms;       /* APPLIED: for how long */
};

/* The most events one sample gives: one per kind and an action. */
#define ABUSE_MAX_EVENTS (ABUSE_KIND__N + 1)

struct abuse_status {
        uint64_t total[ABUSE_KIND__N]; /* hits seen since the monitor started */
        bool raised[ABUSE_KIND__N];
        bool in_force;     /* an on_abuse action is applied */
        uint64_t until_ms; /* and lifted at this time */
        bool have_sample;
};

struct abuse_monitor;

/* fresh: the tenant's counters were just created (count from zero). NULL on ENOMEM. */
struct abuse_monitor *abuse_monitor_new(const char *name, const struct abuse_config *cfg,
                                        bool fresh);
void abuse_monitor_free(struct abuse_monitor *am);
DEFINE_POINTER_CLEANUP(struct abuse_monitor, abuse_monitor_free)

/* Feeds the counters read at now_ms (a monotonic clock; a sample going back is
 * ignored). c may be NULL when they could not be read: actions are still lifted on
 * time. Returns how many events it wrote to out. */
size_t abuse_feed(struct abuse_monitor *am, uint64_t now_ms, const struct net_abuse_counters *c,
                  struct abuse_event out[ABUSE_MAX_EVENTS]);

void abuse_status(const struct abuse_monitor *am, struct abuse_status *ret);

/* The key=value line (see docs/alerts.md), escaped as alert.h escapes, for example
 *   event=abuse alert=raised kind=conns tenant=web count=1900 total=1900 action=alert
 * Returns the length it needed (cut like snprintf). */
size_t abuse_format(const struct abuse_event *ev, char *buf, size_t len);

/* LOG_WARNING for raised, reminder and applied; LOG_NOTICE for cleared and lifted. */
int abuse_priority(const struct abuse_event *ev);
