/* transfer.h — a tenant's network transfer volume per period, and what to do when it
 * is used up (network.transfer in the manifest).
 *
 * Bytes in both directions count together. The daemon reads the host end's interface
 * counters on its timer and passes them in; they only grow while the link lives, so
 * the counter adds their increase, and a decrease (or another link id) means the link
 * was recreated (the tenant restarted): the new link's counters count from zero.
 *
 * Periods are in UTC: a day starts at 00:00, a week on Monday 00:00, a month on the
 * 1st at 00:00 (calendar months, so their length varies). At the first update in a new
 * period the counter starts again from zero and an action taken in the previous period
 * is undone.
 *
 * The state lives in STATEDIR/transfer/NAME.json, written atomically (temporary file,
 * fsync, rename, fsync of the directory) at most every save_interval and on demand,
 * and read back on start, so a restarted daemon continues the count. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lib/err.h"
#include "spec/manifest.h"
#include "monitor/monitor.h"

#define TRANSFER_FILE_MAX 4096
#define TRANSFER_DEFAULT_SAVE_MS (60ULL * 1000)

struct transfer_config {
        enum transfer_period period; /* TRANSFER_NONE: nothing is counted */
        uint64_t limit;              /* bytes per period */
        enum transfer_action action;
        uint64_t throttle_rate; /* TRANSFER_THROTTLE: bits/s, both directions */
};

void transfer_config_from_manifest(const struct manifest *m, struct transfer_config *ret);

/* The start of the period that contains `t` (seconds since the epoch, UTC), and the
 * start of the next one. Pure. */
int64_t transfer_period_start(enum transfer_period p, int64_t t);
int64_t transfer_period_next(enum transfer_period p, int64_t t);

/* "daily", "weekly", "monthly" ("none"). */
const char *transfer_period_name(enum transfer_period p);

struct transfer_counter;

/* Loads the counter of tenant `name` from STATE_DIR/transfer/NAME.json, or starts one
 * at zero when there is none (the directory is created). A file that cannot be parsed is
 * no reason to keep a tenant from starting: it is renamed to NAME.json.corrupt, the count
 * starts at zero and *ret_warning says so (free it; NULL when all is well). Fails on
 * I/O errors other than a missing file. now: wall-clock seconds (time(NULL)). */
int transfer_open(const char *state_dir, const char *name, const struct transfer_config *cfg,
                  int64_t now, struct transfer_counter **ret, char **ret_warning,
                  struct tn_err **err);

/* Live change of the period, volume or action (tenantctl set, manifest reload). A
 * different period starts a new count. */
void transfer_set_config(struct transfer_counter *tc, const struct transfer_config *cfg);

enum transfer_do {
        TRANSFER_DO_NOTHING,
        TRANSFER_DO_ALERT,    /* volume used up, on_exceed "alert" */
        TRANSFER_DO_THROTTLE, /* ... "throttle:RATE": net_set_rates(rate, rate) */
        TRANSFER_DO_CUT,      /* ... "cut": net_cut(true) */
        TRANSFER_DO_RESTORE,  /* new period (or a larger volume): undo the above */
};

/* Adds the growth of the link's counters since the last update. link_id tells links
 * apart (the host end's ifindex). Returns what to do now: an exceed action at most once
 * per period, and TRANSFER_DO_RESTORE once when the period that had it is over. When
 * ret_event is not NULL and something is to be done, it gets the alert to send. */
enum transfer_do transfer_update(struct transfer_counter *tc, uint32_t link_id, uint64_t rx_bytes,
                                 uint64_t tx_bytes, int64_t now, const char *tenant,
                                 struct monitor_event *ret_event);

/* Bytes used in the current period. */
uint64_t transfer_used(const struct transfer_counter *tc);
/* True while this period's volume is used up and its action applies: a tenant
 * (re)started in that state gets the action again (throttle or cut) at once. */
bool transfer_exceeded(const struct transfer_counter *tc);
/* Start of the current period (wall-clock seconds, UTC). */
int64_t transfer_period_begin(const struct transfer_counter *tc);

/* Writes the state now if it changed since the last save. */
int transfer_save(struct transfer_counter *tc, struct tn_err **err);
/* Writes it when it changed and the last save is at least save_ms old (now_ms: a
 * monotonic clock). Returns 1 when written, 0 when not due, negative on error. */
int transfer_save_if_due(struct transfer_counter *tc, uint64_t now_ms, uint64_t save_ms,
                         struct tn_err **err);

void transfer_counter_free(struct transfer_counter *tc);
DEFINE_POINTER_CLEANUP(struct transfer_counter, transfer_counter_free)
