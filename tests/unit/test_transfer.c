/* test_transfer.c — transfer periods (UTC days, Monday weeks, calendar months with their
 * ends and leap years), counting from interface counters (link recreation), the exceed
 * action once per period and its undoing, persistence round trips and corrupted state
 * files. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "monitor/transfer.h"

/* Seconds since the epoch of a UTC date and time (test-side, via timegm). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
        struct tm tm = {.tm_year = y - 1900,
                        .tm_mon = mo - 1,
                        .tm_mday = d,
                        .tm_hour = h,
                        .tm_min = mi,
                        .tm_sec = s};
        return (int64_t)timegm(&tm);
}

static void test_periods(void)
{
        int64_t t = utc(2026, 11, 23, 12, 36, 16); /* a Monday */
        is_int(transfer_period_start(TRANSFER_DAILY, t), utc(2026, 11, 23, 0, 0, 0), "day start");
        is_int(transfer_period_next(TRANSFER_DAILY, t), utc(2026, 11, 24, 0, 0, 0), "next day");
        is_int(transfer_period_start(TRANSFER_WEEKLY, t), utc(2026, 11, 23, 0, 0, 0),
               "a Monday starts its own week");
        is_int(transfer_period_start(TRANSFER_WEEKLY, utc(2026, 11, 29, 23, 59, 59)),
               utc(2026, 11, 23, 0, 0, 0), "Sunday 23:59:59 is still that week");
        is_int(transfer_period_start(TRANSFER_WEEKLY, utc(2026, 11, 30, 0, 0, 0)),
               utc(2026, 11, 30, 0, 0, 0), "Monday 00:00 starts the next");
        is_int(transfer_period_next(TRANSFER_WEEKLY, utc(2026, 12, 31, 8, 0, 0)),
               utc(2027, 1, 4, 0, 0, 0), "weeks cross the new year");
        is_int(transfer_period_start(TRANSFER_WEEKLY, utc(1970, 1, 1, 0, 0, 0)),
               utc(1969, 12, 29, 0, 0, 0), "the epoch's week began on Monday 1969-12-29");
        is_int(transfer_period_start(TRANSFER_MONTHLY, t), utc(2026, 11, 1, 0, 0, 0),
               "month start");
        is_int(transfer_period_next(TRANSFER_MONTHLY, t), utc(2026, 12, 1, 0, 0, 0), "next month");
        is_int(transfer_period_next(TRANSFER_MONTHLY, utc(2026, 12, 31, 23, 59, 59)),
               utc(2027, 1, 1, 0, 0, 0), "December ends at the new year");
        is_int(transfer_period_start(TRANSFER_MONTHLY, utc(2027, 1, 31, 23, 59, 59)),
               utc(2027, 1, 1, 0, 0, 0), "January 31 23:59:59 is January");
        is_int(transfer_period_next(TRANSFER_MONTHLY, utc(2027, 1, 31, 12, 0, 0)),
               utc(2027, 2, 1, 0, 0, 0), "... which ends on February 1");
        is_int(transfer_period_next(TRANSFER_MONTHLY, utc(2028, 2, 10, 0, 0, 0)),
               utc(2028, 3, 1, 0, 0, 0), "leap February 2028 ends on March 1");
        is_int(transfer_period_start(TRANSFER_MONTHLY, utc(2028, 2, 29, 23, 0, 0)),
               utc(2028, 2, 1, 0, 0, 0), "February 29 2028 is in February");
        is_int(transfer_period_start(TRANSFER_MONTHLY, utc(2100, 3, 1, 0, 0, 0)),
               utc(2100, 3, 1, 0, 0, 0), "2100 is no leap year: March 1 starts March");
        is_int(transfer_period_next(TRANSFER_MONTHLY, utc(2100, 2, 28, 0, 0, 0)),
               utc(2100, 3, 1, 0, 0, 0), "... after February 28");
        is_int(transfer_period_start(TRANSFER_MONTHLY, utc(2026, 4, 30, 23, 59, 59)),
               utc(2026, 4, 1, 0, 0, 0), "April 30 is April");
        is_int(transfer_period_start(TRANSFER_MONTHLY, utc(2026, 5, 1, 0, 0, 0)),
               utc(2026, 5, 1, 0, 0, 0), "May 1 00:00 is May");
        is_str(transfer_period_name(TRANSFER_WEEKLY), "weekly", "period names");
}

static char dir[64];

static struct transfer_counter *open_ok(const struct transfer_config *cfg, int64_t now,
                                        char **warning)
{
        struct transfer_counter *tc = NULL;
        struct tn_err *err = NULL;
        char *w = NULL;
        int r = transfer_open(dir, "mo-t", cfg, now, &tc, &w, &err);
        if (r < 0)
                diag("transfer_open: %s", tn_err_msg(err));
        tn_err_free(err);
        if (warning)
                *warning = w;
        else
                free(w);
        return tc;
}

static void test_counting(void)
{
        struct transfer_config cfg = {.period = TRANSFER_MONTHLY,
                                      .limit = 10000,
                                      .action = TRANSFER_THROTTLE,
                                      .throttle_rate = 1000000};
        int64_t t = utc(2026, 11, 30, 23, 0, 0);
        struct transfer_counter *tc = open_ok(&cfg, t, NULL);
        ok(tc && transfer_used(tc) == 0 && !transfer_exceeded(tc), "a new counter starts at 0");
        if (!tc)
                return;
        struct monitor_event ev;
        is_int(transfer_update(tc, 7, 1000, 500, t, "mo-t", &ev), TRANSFER_DO_NOTHING,
               "a new link's counters count from zero");
        is_int(transfer_used(tc), 1500, "1500 bytes");
        transfer_update(tc, 7, 4000, 1500, t + 10, "mo-t", &ev);
        is_int(transfer_used(tc), 5500, "the same link: its growth is added (5500)");
        transfer_update(tc, 7, 100, 50, t + 20, "mo-t", &ev);
        is_int(transfer_used(tc), 5650, "counters that went back (link recreated): +150");
        transfer_update(tc, 8, 200, 0, t + 30, "mo-t", &ev);
        is_int(transfer_used(tc), 5850, "another link id: counted from zero (+200)");
        is_int(transfer_update(tc, 8, 5000, 0, t + 40, "mo-t", &ev), TRANSFER_DO_THROTTLE,
               "volume reached: throttle");
        ok(ev.kind == MONITOR_EXCEEDED && ev.quota == QUOTA_TRANSFER && ev.used == 10650 &&
               ev.limit == 10000 && ev.rate == 1000000 && !strcmp(ev.action, "throttle") &&
               !strcmp(ev.period, "monthly") && !strcmp(ev.tenant, "mo-t"),
           "... with the exceeded alert (action, rate, period)");
        ok(transfer_exceeded(tc), "exceeded");
        is_int(transfer_update(tc, 8, 9000, 0, t + 50, "mo-t", &ev), TRANSFER_DO_NOTHING,
               "once per period");
        /* December 1st, 00:00 UTC: a new month. */
        int64_t dec = utc(2026, 12, 1, 0, 0, 0);
        is_int(transfer_update(tc, 8, 9100, 0, dec, "mo-t", &ev), TRANSFER_DO_RESTORE,
               "a new period: restore");
        ok(ev.kind == MONITOR_RESTORED && transfer_used(tc) == 100 && !transfer_exceeded(tc),
           "... the count starts again (100 bytes seen across the boundary)");
        is_int(transfer_period_begin(tc), dec, "the period is December");
        is_int(transfer_update(tc, 8, 9200, 0, dec + 1, "mo-t", &ev), TRANSFER_DO_NOTHING,
               "nothing more to do");

        /* A larger volume set live while exceeded: restore, then nothing. */
        transfer_update(tc, 8, 30000, 0, dec + 2, "mo-t", &ev);
        ok(transfer_exceeded(tc), "exceeded again in December");
        cfg.limit = 100000;
        transfer_set_config(tc, &cfg);
        is_int(transfer_update(tc, 8, 30000, 0, dec + 3, "mo-t", &ev), TRANSFER_DO_RESTORE,
               "a larger volume set live undoes the action");
        cfg.action = TRANSFER_CUT;
        cfg.limit = 20000;
        transfer_set_config(tc, &cfg);
        is_int(transfer_update(tc, 8, 30000, 0, dec + 4, "mo-t", &ev), TRANSFER_DO_CUT,
               "a smaller volume with action cut: cut");
        cfg.period = TRANSFER_DAILY;
        transfer_set_config(tc, &cfg);
        is_int(transfer_update(tc, 8, 30000, 0, dec + 5, "mo-t", &ev), TRANSFER_DO_RESTORE,
               "another period kind: a new count, the cut undone");
        is_int(transfer_used(tc), 0, "... from zero");
        transfer_counter_free(tc);
}

static void test_persistence(void)
{
        struct transfer_config cfg = {
            .period = TRANSFER_DAILY, .limit = 1000, .action = TRANSFER_CUT};
        int64_t t = utc(2026, 11, 23, 10, 0, 0);
        struct tn_err *err = NULL;
        char path[128];
        snprintf(path, sizeof(path), "%s/transfer/mo-t.json", dir);
        unlink(path);
        struct transfer_counter *tc = open_ok(&cfg, t, NULL);
        struct monitor_event ev;
        transfer_update(tc, 3, 600, 500, t, "mo-t", &ev);
        is_int(transfer_save_if_due(tc, 1000, 60000, &err), 1, "first save is due");
        transfer_update(tc, 3, 700, 500, t + 1, "mo-t", &ev);
        is_int(transfer_save_if_due(tc, 30000, 60000, &err), 0, "not again within 60 s");
        is_int(transfer_save_if_due(tc, 61000, 60000, &err), 1, "after 60 s it is");
        is_int(transfer_save_if_due(tc, 200000, 60000, &err), 0, "nothing changed: not written");
        transfer_counter_free(tc);

        char *text = NULL;
        FILE *f = fopen(path, "re");
        size_t len = 0;
        if (f) {
                text = calloc(1, 4096);
                len = fread(text, 1, 4095, f);
                fclose(f);
        }
        ok(text && len > 0 && strstr(text, "\"used\":1200") && strstr(text, "\"exceeded\":true") &&
               strstr(text, "\"link\":3"),
           "the state file: %s", text ? text : "(missing)");
        free(text);
        struct stat st;
        ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
        char tdir[128], names[512] = "";
        snprintf(tdir, sizeof(tdir), "%s/transfer", dir);
        DIR *d = opendir(tdir);
        for (struct dirent *de; d && (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                                 names[0] ? " " : "", de->d_name);
        if (d)
                closedir(d);
        is_str(names, "mo-t.json", "no temporary file left");

        tc = open_ok(&cfg, t + 100, NULL);
        ok(tc && transfer_used(tc) == 1200 && transfer_exceeded(tc),
           "reloaded: 1200 bytes, exceeded (a restarted tenant gets the cut again)");
        transfer_update(tc, 3, 750, 500, t + 101, "mo-t", &ev);
        is_int(transfer_used(tc), 1250, "the same link after a daemon restart: only its growth");
        is_int(transfer_save(tc, &err), 0, "save on demand");
        transfer_counter_free(tc);
        tc = open_ok(&cfg, utc(2026, 11, 24, 0, 0, 1), NULL);
        is_int(transfer_update(tc, 3, 800, 500, utc(2026, 11, 24, 0, 0, 2), "mo-t", &ev),
               TRANSFER_DO_RESTORE, "reloaded the next day: restore the cut");
        is_int(transfer_used(tc), 50, "... and count the day from zero");
        transfer_counter_free(tc);
        tn_err_free(err);
}

static void write_file(const char *path, const char *data)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
                ssize_t w = write(fd, data, strlen(data));
                (void)w;
                close(fd);
        }
}

static void corrupt_case(const char *what, const char *data)
{
        struct transfer_config cfg = {.period = TRANSFER_MONTHLY, .limit = 1000};
        char path[128], aside[160];
        snprintf(path, sizeof(path), "%s/transfer/mo-t.json", dir);
        snprintf(aside, sizeof(aside), "%s.corrupt", path);
        unlink(aside);
        write_file(path, data);
        char *warning = NULL;
        struct transfer_counter *tc = open_ok(&cfg, utc(2026, 11, 23, 0, 0, 0), &warning);
        ok(tc && transfer_used(tc) == 0 && warning && strstr(warning, "is corrupt") &&
               strstr(warning, "counting from zero") && access(aside, F_OK) == 0,
           "%s: starts from zero, moved aside, says so: %s", what, warning ? warning : "-");
        free(warning);
        transfer_counter_free(tc);
}

static void test_corrupt(void)
{
        corrupt_case("garbage", "\x01\x02not json at all");
        corrupt_case("truncated", "{\"version\": 1, \"period\": \"mon");
        corrupt_case("wrong types", "{\"version\": 1, \"period\": \"monthly\", \"period_start\": "
                                    "\"x\", \"used\": 5, \"exceeded\": false}");
        corrupt_case("negative count", "{\"version\": 1, \"period\": \"monthly\", "
                                       "\"period_start\": 0, \"used\": -5, \"exceeded\": false}");
        corrupt_case("another version", "{\"version\": 2}");
        corrupt_case("an array", "[1, 2, 3]");
        char big[8192];
        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        big[0] = '{';
        corrupt_case("larger than 4 KiB", big);

        struct transfer_config cfg = {.period = TRANSFER_MONTHLY, .limit = 1000};
        struct transfer_counter *tc = NULL;
        struct tn_err *err = NULL;
        ok(transfer_open(dir, "../etc", &cfg, 0, &tc, NULL, &err) == -EINVAL && !tc,
           "a name that is not a tenant name is refused: %s", tn_err_msg(err));
        tn_err_free(err);
        err = NULL;
        ok(transfer_open("/nonexistent/state", "mo-t", &cfg, 0, &tc, NULL, &err) < 0 && !tc,
           "an unusable state directory is an error: %s", tn_err_msg(err));
        tn_err_free(err);
}

int main(void)
{
        test_periods();
        snprintf(dir, sizeof(dir), "/tmp/test_transfer.XXXXXX");
        if (!mkdtemp(dir)) {
                skip("cannot create a temporary directory");
                return tap_done();
        }
        test_counting();
        test_persistence();
        test_corrupt();
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                diag("could not remove %s", dir);
        return tap_done();
}
