/* backup_schedule.h — when tenantd runs a tenant's scheduled backup (backup.schedule,
 * docs/backup.md#schedule): pure functions of the manifest, the tenant's name and the
 * clock, so that the unit test can set the clock. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "spec/manifest.h"

/* The longest jitter: tenants with the same schedule start up to 30 minutes apart. */
#define BACKUP_JITTER_MAX_S (30 * 60)

/* The tenant's own delay after each scheduled time, from a hash of its name: the same
 * on every start of tenantd, different from tenant to tenant. At most
 * BACKUP_JITTER_MAX_S, and at most a tenth of an interval schedule. */
uint32_t backup_jitter_s(const struct backup_spec *b, const char *name);

/* The time (seconds since the epoch) the next scheduled backup is due, seen at `now`,
 * the last one having started at `last` (0: none since tenantd started); 0 without a
 * schedule. A time already past means: now.
 * - "daily HH:MM": the first HH:MM local time, plus the jitter, after `last` (after
 *   `now` without one: a slot missed while tenantd was down is not made up); a day
 *   without that local time (daylight saving) takes mktime's normalised one.
 * - an interval: `last` + the interval, or without a last one `now` + the jitter. */
time_t backup_next_due(const struct backup_spec *b, const char *name, time_t now, time_t last);

/* When the tenant's backups become stale (seconds since the epoch): twice the
 * schedule's period (a day for "daily HH:MM") after the last successful backup, or
 * after `since` (tenantd's first look at the tenant) when none succeeded since; 0
 * without a schedule. */
time_t backup_stale_at(const struct backup_spec *b, time_t last_ok, time_t since);
