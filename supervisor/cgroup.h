/* cgroup.h — the tenant's cgroups, through libcgroup. The only file that talks to
 * cgroups.
 *
 * Every tenant gets one cgroup per mounted hierarchy of the controllers tenantd uses
 * (cpu, cpuacct, memory, pids; on cgroup v2 the one unified hierarchy), created as
 * OWN/tenantd/NAME where OWN is the cgroup the calling process itself is in: tenantd
 * never creates cgroups beside its own, so it respects whatever delegated it. Limits
 * are set by the quota code; this file creates, joins and removes. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct tenant_cgroup;

/* Creates (or reuses, when empty) the tenant's cgroups. */
int tenant_cgroup_create(const char *name, struct tenant_cgroup **ret, struct tn_err **err);

#define CGROUP_UNLIMITED UINT64_MAX

struct tenant_limits {
        uint32_t cpu_millicpus; /* 0 = unlimited */
        uint32_t cpu_weight;    /* 1..10000, 100 = normal */
        uint64_t memory_max;    /* bytes or CGROUP_UNLIMITED */
        uint64_t memory_high;   /* bytes or CGROUP_UNLIMITED */
        uint64_t swap_max;      /* bytes or CGROUP_UNLIMITED */
        uint64_t pids_max;      /* or CGROUP_UNLIMITED */
};

/* Writes the limits into the tenant's cgroups: cgroup v2 files (cpu.max, cpu.weight,
 * memory.max, memory.high, memory.swap.max, pids.max) or their v1 counterparts
 * (cfs quota/period and shares, limit_in_bytes, memsw, soft limit, pids.max). A knob the
 * host does not have (swap accounting off) is skipped. */
int tenant_cgroup_set_limits(struct tenant_cgroup *cg, const struct tenant_limits *l,
                             struct tn_err **err);

/* Moves `pid` into every one of the tenant's cgroups. */
int tenant_cgroup_attach(struct tenant_cgroup *cg, pid_t pid, struct tn_err **err);

/* Removes the tenant's cgroups; fails with -EBUSY while a process is still in one. */
int tenant_cgroup_remove(struct tenant_cgroup *cg, struct tn_err **err);

/* "memory:/a/b/tenantd/web cpu:/tenantd/web ..." for messages; owned by cg. */
const char *tenant_cgroup_describe(struct tenant_cgroup *cg);

void tenant_cgroup_free(struct tenant_cgroup *cg);
DEFINE_POINTER_CLEANUP(struct tenant_cgroup, tenant_cgroup_free)

/* Moves `pid` into the cgroups `ref` is in, for every controller tenantd uses: how a
 * process started later (exec, health checks) joins a running tenant. */
int cgroup_attach_like(pid_t pid, pid_t ref, struct tn_err **err);
