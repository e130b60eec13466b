/* transfer.c — transfer volume per period, persisted (see transfer.h). */
#include "monitor/transfer.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fileio.h"
#include "lib/json.h"
#include "lib/strutil.h"

#define DAY 86400

struct transfer_counter {
        char name[MANIFEST_NAME_MAX + 1];
        char *dir;  /* STATEDIR/transfer */
        char *path; /* .../NAME.json */
        struct transfer_config cfg;
        int64_t period_start, period_next;
        uint64_t used;
        bool exceeded;        /* this period's action was taken */
        bool restore_pending; /* undo it at the next update */
        bool have_link;
        uint32_t link_id;
        uint64_t last_rx, last_tx;
        bool dirty;
        uint64_t saved_ms;
};

static const char *const period_names[] = {
    [TRANSFER_NONE] = "none",
    [TRANSFER_DAILY] = "daily",
    [TRANSFER_WEEKLY] = "weekly",
    [TRANSFER_MONTHLY] = "monthly",
};

const char *transfer_period_name(enum transfer_period p)
{
        return (unsigned)p < ARRAY_SIZE(period_names) ? period_names[p] : "none";
}

void transfer_config_from_manifest(const struct manifest *m, struct transfer_config *ret)
{
        struct transfer_config c = {0};
        if (m->network.mode == NET_PRIVATE && m->network.transfer.period != TRANSFER_NONE) {
                c.period = m->network.transfer.period;
                c.limit = m->network.transfer.limit;
                c.action = m->network.transfer.action;
                c.throttle_rate = m->network.transfer.throttle_rate;
        }
        *ret = c;
}

/* ---- calendar, UTC, without the C library's time zone state ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of year-month-day (proleptic Gregorian; month 1..12). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
        y -= m <= 2;
        int64_t era = floor_div(y, 400);
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
        z += 719468;
        int64_t era = floor_div(z, 146097);
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = yoe + era * 400 + (*m <= 2);
}

int64_t transfer_period_start(enum transfer_period p, int64_t t)
{
        int64_t day = floor_div(t, DAY);
        switch (p) {
        case TRANSFER_DAILY:
                return day * DAY;
        case TRANSFER_WEEKLY:
                /* 1970-01-01 was a Thursday: Monday is 3 days before. */
                return (day - (((day + 3) % 7) + 7) % 7) * DAY;
        case TRANSFER_MONTHLY: {
                int64_t y, m;
                civil_from_days(day, &y, &m);
                return days_from_civil(y, m, 1) * DAY;
        }
        default:
                return 0;
        }
}

int64_t transfer_period_next(enum transfer_period p, int64_t t)
{
        int64_t start = transfer_period_start(p, t);
        switch (p) {
        case TRANSFER_DAILY:
                return start + DAY;
        case TRANSFER_WEEKLY:
                return start + 7 * DAY;
        case TRANSFER_MONTHLY: {
                int64_t y, m;
                civil_from_days(floor_div(start, DAY), &y, &m);
                return days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * DAY;
        }
        default:
                return INT64_MAX;
        }
}

/* ---- state file ---- */

static const struct json_limits state_limits = {
    .max_bytes = TRANSFER_FILE_MAX, .max_depth = 4, .allow_comments = false};

static bool get_u64(const struct json_value *root, const char *key, uint64_t *ret)
{
        int64_t v;
        const struct json_value *j = json_get(root, key);
        if (!j || j->type != JSON_NUMBER || !json_number_int64(j, &v) || v < 0)
                return false;
        *ret = (uint64_t)v;
        return true;
}

/* Parses the state file into tc. Returns 0, or -EINVAL with a reason in why. */
static int parse_state(struct transfer_counter *tc, const char *buf, size_t len, char *why,
                       size_t why_len)
{
        _cleanup_json_ struct json_value *root = NULL;
        struct json_error jerr;
        if (json_parse(buf, len, &state_limits, &root, &jerr) < 0) {
                snprintf(why, why_len, "%u:%u: %s", jerr.pos.line, jerr.pos.col, jerr.msg);
                return -EINVAL;
        }
        uint64_t version = 0, start = 0, used = 0, link = 0, rx = 0, tx = 0;
        const struct json_value *period = json_get(root, "period");
        const struct json_value *exceeded = json_get(root, "exceeded");
        if (root->type != JSON_OBJECT || !get_u64(root, "version", &version) || version != 1) {
                snprintf(why, why_len, "not a version 1 transfer state object");
                return -EINVAL;
        }
        if (!period || period->type != JSON_STRING || !get_u64(root, "period_start", &start) ||
            !get_u64(root, "used", &used) || !exceeded || exceeded->type != JSON_BOOL) {
                snprintf(why, why_len,
                         "\"period\", \"period_start\", \"used\" or \"exceeded\" is missing or "
                         "of the wrong type");
                return -EINVAL;
        }
        bool have_link = json_get(root, "link") != NULL;
        if (have_link && (!get_u64(root, "link", &link) || link > UINT32_MAX ||
                          !get_u64(root, "rx", &rx) || !get_u64(root, "tx", &tx))) {
                snprintf(why, why_len, "\"link\", \"rx\" or \"tx\" is not a counter");
                return -EINVAL;
        }
        if (start > INT64_MAX / 2) {
                snprintf(why, why_len, "\"period_start\" is out of range");
                return -EINVAL;
        }
        tc->have_link = have_link;
        tc->link_id = (uint32_t)link;
        tc->last_rx = rx;
        tc->last_tx = tx;
        /* A file from another period kind (the manifest changed) starts a new count;
         * the link baseline still holds. */
        if (strcmp(period->u.str.text, transfer_period_name(tc->cfg.period)) != 0)
                return 0;
        tc->period_start = (int64_t)start;
        tc->period_next = transfer_period_next(tc->cfg.period, (int64_t)start);
        tc->used = used;
        tc->exceeded = exceeded->u.boolean;
        return 0;
}

static char *state_json(const struct transfer_counter *tc)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return NULL;
        json_gen_object_open(g);
        json_gen_key(g, "version");
        json_gen_int(g, 1);
        json_gen_key(g, "period");
        json_gen_string(g, transfer_period_name(tc->cfg.period));
        json_gen_key(g, "period_start");
        json_gen_int(g, tc->period_start);
        json_gen_key(g, "used");
        json_gen_int(g, (int64_t)tc->used);
        json_gen_key(g, "exceeded");
        json_gen_bool(g, tc->exceeded && !tc->restore_pending);
        if (tc->have_link) {
                json_gen_key(g, "link");
                json_gen_int(g, tc->link_id);
                json_gen_key(g, "rx");
                json_gen_int(g, (int64_t)tc->last_rx);
                json_gen_key(g, "tx");
                json_gen_int(g, (int64_t)tc->last_tx);
        }
        json_gen_object_close(g);
        const char *buf;
        size_t len;
        if (json_gen_finish(g, &buf, &len) < 0)
                return NULL;
        char *out = malloc(len + 2);
        if (!out)
                return NULL;
        memcpy(out, buf, len);
        out[len] = '\n';
        out[len + 1] = '\0';
        return out;
}

int transfer_save(struct transfer_counter *tc, struct tn_err **err)
{
        if (!tc->dirty)
                return 0;
        _cleanup_free_ char *data = state_json(tc);
        if (!data)
                return tn_err_setx(err, ENOMEM, "out of memory");
        /* Whole or not at all (fileio.h): a crash leaves the old state or the new. */
        int r = write_file_atomic(tc->path, data, strlen(data), 0600, err);
        if (r < 0)
                return r;
        tc->dirty = false;
        return 0;
}

int transfer_save_if_due(struct transfer_counter *tc, uint64_t now_ms, uint64_t save_ms,
                         struct tn_err **err)
{
        if (!tc->dirty || (tc->saved_ms && now_ms - tc->saved_ms < save_ms))
                return 0;
        int r = transfer_save(tc, err);
        if (r < 0)
                return r;
        tc->saved_ms = now_ms ? now_ms : 1;
        return 1;
}

static void start_period(struct transfer_counter *tc, int64_t now)
{
        tc->period_start = transfer_period_start(tc->cfg.period, now);
        tc->period_next = transfer_period_next(tc->cfg.period, now);
        tc->used = 0;
        tc->dirty = true;
}

int transfer_open(const char *state_dir, const char *name, const struct transfer_config *cfg,
                  int64_t now, struct transfer_counter **ret, char **ret_warning,
                  struct tn_err **err)
{
        if (!is_simple_name(name) || strlen(name) > MANIFEST_NAME_MAX)
                return tn_err_setx(err, EINVAL, "invalid tenant name \"%.40s\"", name);
        _cleanup_(transfer_counter_freep) struct transfer_counter *tc = calloc(1, sizeof(*tc));
        if (!tc)
                return tn_err_setx(err, ENOMEM, "out of memory");
        snprintf(tc->name, sizeof(tc->name), "%s", name);
        tc->cfg = *cfg;
        if (asprintf(&tc->dir, "%s/transfer", state_dir) < 0) {
                tc->dir = NULL;
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        if (asprintf(&tc->path, "%s/%s.json", tc->dir, name) < 0) {
                tc->path = NULL;
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        if (mkdir(tc->dir, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", tc->dir);

        char *warning = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        struct tn_err *rerr = NULL;
        int r = read_file_bounded(tc->path, TRANSFER_FILE_MAX, &buf, &len, &rerr);
        char why[300] = "";
        if (r == -ENOENT) {
                tn_err_free(rerr);
        } else if (r == -EFBIG) {
                snprintf(why, sizeof(why), "%s", tn_err_msg(rerr));
                tn_err_free(rerr);
        } else if (r < 0) {
                if (err && !*err)
                        *err = rerr;
                else
                        tn_err_free(rerr);
                return r;
        } else if (parse_state(tc, buf, len, why, sizeof(why)) == 0) {
                why[0] = '\0';
        }
        if (why[0]) {
                /* Keep the bad file for the operator to look at, and count from zero:
                 * a lost count is better than a tenant that cannot start. */
                _cleanup_free_ char *aside = NULL;
                if (asprintf(&aside, "%s.corrupt", tc->path) < 0)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                if (rename(tc->path, aside) < 0)
                        return tn_err_set(err, errno, "%s is corrupt (%s) and cannot be moved",
                                          tc->path, why);
                if (asprintf(&warning, "%s is corrupt (%s): moved to %s; counting from zero",
                             tc->path, why, aside) < 0)
                        warning = NULL;
                tc->have_link = false;
                tc->used = 0;
                tc->exceeded = false;
                tc->period_start = tc->period_next = 0;
        }
        if (tc->period_next == 0 || tc->period_start > now) {
                bool was = tc->exceeded;
                start_period(tc, now);
                tc->exceeded = false;
                tc->restore_pending = was;
        }
        tc->dirty = tc->dirty || warning;
        *ret = TAKE_PTR(tc);
        if (ret_warning)
                *ret_warning = warning;
        else
                free(warning);
        return 0;
}

void transfer_set_config(struct transfer_counter *tc, const struct transfer_config *cfg)
{
        struct transfer_config old = tc->cfg;
        tc->cfg = *cfg;
        if (cfg->period != old.period) {
                tc->period_start = transfer_period_start(cfg->period, tc->period_start);
                tc->period_next = transfer_period_next(cfg->period, tc->period_start);
                tc->used = 0;
        }
        if (tc->exceeded && (cfg->period != old.period || cfg->action != old.action ||
                             cfg->throttle_rate != old.throttle_rate || tc->used < cfg->limit)) {
                tc->exceeded = false;
                tc->restore_pending = true;
        }
        tc->dirty = true;
}

static void fill_event(const struct transfer_counter *tc, enum monitor_event_kind kind,
                       const char *tenant, struct monitor_event *e)
{
        static const char *const actions[] = {
            [TRANSFER_ALERT] = "alert", [TRANSFER_THROTTLE] = "throttle", [TRANSFER_CUT] = "cut"};
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->quota = QUOTA_TRANSFER;
        snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
        e->used = (double)tc->used;
        e->limit = tc->cfg.limit ? (double)tc->cfg.limit : NAN;
        e->usage = tc->cfg.limit ? (double)tc->used / (double)tc->cfg.limit : NAN;
        e->threshold = NAN;
        e->period = transfer_period_name(tc->cfg.period);
        e->action =
            (unsigned)tc->cfg.action < ARRAY_SIZE(actions) ? actions[tc->cfg.action] : "alert";
        if (tc->cfg.action == TRANSFER_THROTTLE)
                e->rate = tc->cfg.throttle_rate;
}

enum transfer_do transfer_update(struct transfer_counter *tc, uint32_t link_id, uint64_t rx_bytes,
                                 uint64_t tx_bytes, int64_t now, const char *tenant,
                                 struct monitor_event *ret_event)
{
        if (tc->cfg.period == TRANSFER_NONE)
                return TRANSFER_DO_NOTHING;
        /* Counters of the same link only grow; anything else is a new link whose
         * counters started at zero. */
        uint64_t add;
        if (tc->have_link && tc->link_id == link_id && rx_bytes >= tc->last_rx &&
            tx_bytes >= tc->last_tx)
                add = (rx_bytes - tc->last_rx) + (tx_bytes - tc->last_tx);
        else
                add = rx_bytes + tx_bytes;
        if (add || !tc->have_link || tc->link_id != link_id || tc->last_rx != rx_bytes ||
            tc->last_tx != tx_bytes)
                tc->dirty = true;
        tc->have_link = true;
        tc->link_id = link_id;
        tc->last_rx = rx_bytes;
        tc->last_tx = tx_bytes;

        if (now >= tc->period_next || now < tc->period_start) {
                /* Bytes seen across the boundary count in the new period. */
                bool was = tc->exceeded;
                start_period(tc, now);
                tc->exceeded = false;
                tc->restore_pending |= was;
        }
        tc->used = tc->used > UINT64_MAX - add ? UINT64_MAX : tc->used + add;

        if (tc->restore_pending) {
                tc->restore_pending = false;
                tc->dirty = true;
                if (ret_event)
                        fill_event(tc, MONITOR_RESTORED, tenant, ret_event);
                return TRANSFER_DO_RESTORE;
        }
        if (!tc->exceeded && tc->used >= tc->cfg.limit) {
                tc->exceeded = true;
                tc->dirty = true;
                if (ret_event)
                        fill_event(tc, MONITOR_EXCEEDED, tenant, ret_event);
                switch (tc->cfg.action) {
                case TRANSFER_THROTTLE:
                        return TRANSFER_DO_THROTTLE;
                case TRANSFER_CUT:
                        return TRANSFER_DO_CUT;
                default:
                        return TRANSFER_DO_ALERT;
                }
        }
        return TRANSFER_DO_NOTHING;
}

uint64_t transfer_used(const struct transfer_counter *tc)
{
        return tc->used;
}

bool transfer_exceeded(const struct transfer_counter *tc)
{
        return tc->exceeded && !tc->restore_pending;
}

int64_t transfer_period_begin(const struct transfer_counter *tc)
{
        return tc->period_start;
}

void transfer_counter_free(struct transfer_counter *tc)
{
        if (!tc)
                return;
        free(tc->dir);
        free(tc->path);
        free(tc);
}
