/* monitor_glue.h — what tenantd's loop asks of the quota monitor: attach a running
 * tenant, sample all of them on the timer, report usage in list/status/top, apply
 * live changes (`tenantctl set`), and raise alerts. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct daemon;
struct manifest;
struct tenant;
struct json_gen;
struct json_value;

void monitor_glue_attach(struct daemon *d, struct tenant *t);
void monitor_glue_detach(struct daemon *d, struct tenant *t);
void monitor_glue_forget(struct daemon *d, struct tenant *t);
void monitor_glue_sample(struct daemon *d, uint64_t now_ms);
/* The tenant has ended; the keeper read these counters just before its cgroups went.
 * OOM kills and pids-limit hits the samples did not see yet, and those the rate limit
 * held back, are alerted now (detach sends what is held too). */
void monitor_glue_final(struct daemon *d, struct tenant *t, uint64_t oom_kills,
                        uint64_t pids_limit_hits);
void monitor_glue_alert_crashloop(struct daemon *d, struct tenant *t);
/* One line to the alerts' syslog sink (--syslog-socket) at `priority` (LOG_ERR, ...), as
 * they go: failed backups, the user socket's audit. */
void monitor_glue_syslog(struct daemon *d, int priority, const char *line);
/* The keeper denied `count` calls of `syscall` (a "notify" rule): to syslog through the
 * alert sink and to the event stream, "event=seccomp-denied tenant=T syscall=S count=N". */
void monitor_glue_seccomp_denied(struct daemon *d, struct tenant *t, const char *syscall,
                                 uint64_t count);
/* A microVM's guest reported its totals (keeper.h, "guest-limits"): from the next
 * sample on they are added to the tenant cgroup's OOM kills and pids.max hits, so the
 * same alerts follow, and they are saved in the tenant's state directory, where a
 * tenantd restarted while the microVM runs starts from them. Totals that go down are
 * ignored. */
void monitor_glue_guest_limits(struct daemon *d, struct tenant *t, uint64_t oom_kills,
                               uint64_t pids_max_hits);
/* Adds "usage" to a tenant object being generated. */
/* A private tenant's addresses: "address" (IPv4), "address6" when it has IPv6, and
 * "address6_routed": true when that one is in the operator's ipv6-prefix (not NATed),
 * and "prefix6" ("ADDR/64") when the tenant has a /64 of its own (network.ipv6 "prefix").
 * Nothing for a tenant without a private network. */
void monitor_glue_gen_addresses(struct daemon *d, struct json_gen *g, const struct tenant *t);
void monitor_glue_gen_usage(struct daemon *d, struct json_gen *g, const struct tenant *t);
/* Adds "volumes": each volume of the tenant's manifest, with its use of its file system
 * (used, size, avail: statfs of its host-side mount) while it is mounted. */
void monitor_glue_gen_volumes(struct daemon *d, struct json_gen *g, const struct tenant *t);
/* Adds "mounts_seen": the tenant's mount table as its init sees it. */
void monitor_glue_gen_mounts_seen(struct daemon *d, struct json_gen *g, const struct tenant *t);
/* `set`: {"values":{"cpu.max":"0.5",...},"save":bool}. Applies the values to the
 * running tenant (cgroups, rates, alert limits) and/or the manifest file; *ret_summary
 * says which ("applied and saved", ...). With `ceiling` (a tenant's user asks: the
 * manifest as loaded), every value must be at most the ceiling's, or nothing changes
 * and the error says which value and its bound (-EPERM). */
int monitor_glue_set(struct daemon *d, struct tenant *t, const struct json_value *req,
                     const struct manifest *ceiling, const char **ret_summary, struct tn_err **err);
