/* backup_schedule.c — when a scheduled backup is due (backup_schedule.h). */
#include "spec/backup_schedule.h"

uint32_t backup_jitter_s(const struct backup_spec *b, const char *name)
{
        uint64_t span = BACKUP_JITTER_MAX_S;
        if (b->schedule == BACKUP_EVERY && b->every_ms / 10000 < span)
                span = b->every_ms / 10000; /* a tenth of the interval, in seconds */
        if (b->schedule == BACKUP_MANUAL || span == 0)
                return 0;
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (const char *p = name; p && *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        return (uint32_t)(h % span);
}

/* HH:MM local time on the day of `day` plus `add` days. */
static time_t at_minute(time_t day, int add, uint32_t minute)
{
        struct tm tm;
        localtime_r(&day, &tm);
        tm.tm_mday += add;
        tm.tm_hour = (int)(minute / 60);
        tm.tm_min = (int)(minute % 60);
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        return mktime(&tm);
}

time_t backup_next_due(const struct backup_spec *b, const char *name, time_t now, time_t last)
{
        time_t jitter = (time_t)backup_jitter_s(b, name);
        switch (b->schedule) {
        case BACKUP_DAILY: {
                /* The first slot (HH:MM plus the jitter, which may pass midnight) after
                 * the last backup's start, or after now when there was none. */
                time_t base = last ? last : now;
                for (int add = -1; add <= 2; add++) {
                        time_t due = at_minute(base, add, b->daily_minute) + jitter;
                        if (due > base)
                                return due;
                }
                return base + 24 * 3600; /* not reached: tomorrow's slot is after base */
        }
        case BACKUP_EVERY:
                return last ? last + (time_t)(b->every_ms / 1000) : now + jitter;
        default:
                return 0;
        }
}

time_t backup_stale_at(const struct backup_spec *b, time_t last_ok, time_t since)
{
        time_t period;
        switch (b->schedule) {
        case BACKUP_DAILY:
                period = 24 * 3600;
                break;
        case BACKUP_EVERY:
                period = (time_t)(b->every_ms / 1000);
                break;
        default:
                return 0;
        }
        return (last_ok ? last_ok : since) + 2 * period;
}
