/* test_backup_schedule.c — when a scheduled backup is due (spec/backup_schedule.h): the
 * daily slot with its jitter, an interval, a slot served by a backup that started after
 * it, a day without the slot's local time, and no schedule. The clock is the test's. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spec/backup_schedule.h"
#include "tap.h"

/* Seconds since the epoch of a local time. */
static time_t at(int y, int mo, int d, int h, int mi)
{
        struct tm tm = {.tm_year = y - 1900,
                        .tm_mon = mo - 1,
                        .tm_mday = d,
                        .tm_hour = h,
                        .tm_min = mi,
                        .tm_isdst = -1};
        return mktime(&tm);
}

static struct backup_spec daily(unsigned h, unsigned mi)
{
        struct backup_spec b = {.set = true, .schedule = BACKUP_DAILY, .daily_minute = h * 60 + mi};
        return b;
}

static void test_jitter(void)
{
        struct backup_spec b = daily(3, 30);
        uint32_t ja = backup_jitter_s(&b, "db"), jb = backup_jitter_s(&b, "web");
        ok(ja < BACKUP_JITTER_MAX_S && jb < BACKUP_JITTER_MAX_S, "jitters under 30 min (%u, %u)",
           ja, jb);
        ok(ja != jb, "two tenants get different jitters");
        is_int(backup_jitter_s(&b, "db"), ja, "the same tenant gets the same jitter each time");
        /* 20 tenants: the jitters spread over the half hour */
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 20; i++) {
                char name[32];
                snprintf(name, sizeof(name), "tenant-%d", i);
                uint32_t j = backup_jitter_s(&b, name);
                lo = j < lo ? j : lo;
                hi = j > hi ? j : hi;
        }
        ok(hi - lo > 15 * 60, "20 tenants spread over more than 15 min (%u..%u s)", lo, hi);
        struct backup_spec e = {.set = true, .schedule = BACKUP_EVERY, .every_ms = 15 * 60 * 1000};
        ok(backup_jitter_s(&e, "db") < 90, "an interval of 15m: a jitter under 90 s (a tenth)");
        struct backup_spec m = {.set = true, .schedule = BACKUP_MANUAL};
        is_int(backup_jitter_s(&m, "db"), 0, "no schedule, no jitter");
}

static void test_daily(void)
{
        struct backup_spec b = daily(3, 30);
        time_t j = (time_t)backup_jitter_s(&b, "db");
        time_t slot6 = at(2026, 12, 6, 3, 30) + j, slot7 = at(2026, 12, 7, 3, 30) + j;
        ok(backup_next_due(&b, "db", at(2026, 12, 6, 1, 0), 0) == slot6,
           "daily 03:30 seen at 01:00: today 03:30 plus the jitter");
        ok(backup_next_due(&b, "db", at(2026, 12, 6, 4, 0), 0) == slot7,
           "seen at 04:00 without a backup since tenantd started: tomorrow (no catch-up)");
        ok(backup_next_due(&b, "db", slot6 + 1, slot6) == slot7,
           "the backup of today's slot started: tomorrow's slot");
        ok(backup_next_due(&b, "db", at(2026, 12, 6, 3, 0), at(2026, 12, 6, 2, 0)) == slot6,
           "a manual backup at 02:00 does not take today's slot");
        ok(backup_next_due(&b, "db", slot6 + 30, at(2026, 12, 5, 4, 5)) == slot6,
           "today's slot past but not served (tenantd was busy): it is due at once");
        struct backup_spec late = daily(23, 59);
        time_t jl = (time_t)backup_jitter_s(&late, "db");
        ok(backup_next_due(&late, "db", at(2026, 12, 6, 12, 0), 0) == at(2026, 12, 6, 23, 59) + jl,
           "daily 23:59: today, the jitter may pass midnight");
        ok(backup_next_due(&late, "db", at(2026, 12, 7, 0, 1), at(2026, 12, 6, 23, 59) + jl) ==
               at(2026, 12, 7, 23, 59) + jl,
           "the day after a slot served past midnight: that day's slot");
        ok(backup_next_due(&b, "db", at(2026, 12, 31, 12, 0), 0) == at(2027, 1, 1, 3, 30) + j,
           "over the year's end");
}

static void test_dst(void)
{
        /* Europe/Berlin: 2026-03-29 02:00 -> 03:00, no 02:30 that day. */
        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        struct backup_spec b = daily(2, 30);
        time_t j = (time_t)backup_jitter_s(&b, "db");
        time_t due = backup_next_due(&b, "db", at(2026, 3, 29, 1, 0), 0);
        ok(due > at(2026, 3, 29, 1, 0) && due - j <= at(2026, 3, 29, 3, 30),
           "a day without 02:30 (daylight saving): the slot still comes that morning");
        time_t next = backup_next_due(&b, "db", due + 1, due);
        ok(next - due >= 23 * 3600 && next - due <= 25 * 3600, "and the next one a day later");
        setenv("TZ", "UTC", 1);
        tzset();
}

static void test_every(void)
{
        struct backup_spec b = {
            .set = true, .schedule = BACKUP_EVERY, .every_ms = 6 * 3600 * 1000ULL};
        time_t now = at(2026, 12, 6, 12, 0), j = (time_t)backup_jitter_s(&b, "db");
        ok(j < 30 * 60, "6h: the jitter is under 30 min (%ld s)", (long)j);
        ok(backup_next_due(&b, "db", now, 0) == now + j,
           "6h without a last backup: now plus the jitter");
        ok(backup_next_due(&b, "db", now, now - 3600) == now + 5 * 3600,
           "6h after one an hour ago: in 5 hours");
        ok(backup_next_due(&b, "db", now, now - 7 * 3600) == now - 3600,
           "6h after one 7 hours ago: overdue (due at once)");
        struct backup_spec m = {.set = true, .schedule = BACKUP_MANUAL};
        is_int(backup_next_due(&m, "db", now, 0), 0, "no schedule: never due");
}

static void test_stale(void)
{
        struct backup_spec b = daily(3, 30);
        time_t t0 = at(2026, 12, 6, 12, 0);
        ok(backup_stale_at(&b, t0, t0 - 3600) == t0 + 48 * 3600,
           "daily: stale two days after the last success");
        ok(backup_stale_at(&b, 0, t0) == t0 + 48 * 3600,
           "daily without a success since tenantd looked: two days after that");
        struct backup_spec e = {
            .set = true, .schedule = BACKUP_EVERY, .every_ms = 6 * 3600 * 1000ULL};
        ok(backup_stale_at(&e, t0, 0) == t0 + 12 * 3600,
           "6h: stale 12 hours after the last success");
        struct backup_spec m = {.set = true, .schedule = BACKUP_MANUAL};
        is_int(backup_stale_at(&m, t0, t0), 0, "no schedule: never stale");
}

int main(void)
{
        setenv("TZ", "UTC", 1);
        tzset();
        test_jitter();
        test_daily();
        test_dst();
        test_every();
        test_stale();
        return tap_done();
}
