/* cgroup.h — the tenant's cgroups, through libcgroup. The only file that talks to
 * cgroups.
 *
 * Every tenant gets one cgroup per mounted hierarchy of the controllers tenantd uses
 * (cpu, cpuacct, memory, pids, blkio; on cgroup v2 the one unified hierarchy), created as
 * OWN/tenantd/NAME where OWN is the cgroup the calling process itself is in: tenantd
 * never creates cgroups beside its own, so it respects whatever delegated it. Limits
 * are set by the quota code; this file creates, joins, samples and removes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

struct tenant_cgroup;

/* Creates (or reuses, when empty) the tenant's cgroups. */
int tenant_cgroup_create(const char *name, struct tenant_cgroup **ret, struct tn_err **err);

/* Attaches to the cgroups of a tenant that already exist, creating nothing: for a
 * daemon restarted while its tenants run. -ENOENT when the tenant has no cgroup in
 * one of the hierarchies. */
int tenant_cgroup_open(const char *name, struct tenant_cgroup **ret, struct tn_err **err);

/* On a cgroup v2 hierarchy a cgroup with processes cannot hand controllers to its
 * children (the "no internal processes" rule), so a supervisor sitting in OWN could not
 * enable cpu, memory and pids for OWN/tenantd. This moves the calling process into
 * OWN/supervisor (created if needed) when it is the only process in OWN and OWN does not
 * already delegate the controllers; OWN stays the parent of OWN/tenantd afterwards (a
 * process in a cgroup named "supervisor" counts its parent as OWN). Does nothing on
 * cgroup v1 or when the process is in the root cgroup. Fails with -EBUSY, saying so, when
 * other processes share OWN. The daemon calls it once at start. */
int tenant_cgroup_prepare(struct tn_err **err);
/* The same for the cgroup v2 hierarchy mounted at `mount` (tests use it directly). */
int tenant_cgroup_prepare_at(const char *mount, struct tn_err **err);

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

/* Whether the tenant's cgroup has a pids.max (a v1 pids hierarchy, or v2 with the pids
 * controller enabled): the kernel then refuses the tenant's forks past it and counts
 * each refusal in its pids.events "max". */
bool tenant_cgroup_has_pids(const struct tenant_cgroup *cg);

/* IO limits on one block device (a volume's loop device), 0 = unlimited: cgroup v2
 * io.max (rbps, wbps, riops, wiops) or v1 blkio.throttle.*_device. Writing zeros removes
 * the rule. -ENODEV, saying so, when limits are asked and neither controller exists. */
struct tenant_io_limit {
        unsigned major, minor;
        uint64_t rbps, wbps; /* bytes per second */
        uint64_t iops;       /* read and write operations per second, each */
};
int tenant_cgroup_set_io(struct tenant_cgroup *cg, const struct tenant_io_limit *l,
                         struct tn_err **err);

/* Moves `pid` into every one of the tenant's cgroups. */
int tenant_cgroup_attach(struct tenant_cgroup *cg, pid_t pid, struct tn_err **err);

/* Moves the calling process, which must have one thread, into every one of the
 * tenant's cgroups: a sandbox's first process joins them itself, first thing.
 *
 * Why it moves itself instead of being moved (tenant_cgroup_attach): the kernel moves
 * another task between cgroups under one global lock, cgroup_threadgroup_rwsem, taken
 * for writing. It is a per-CPU rwsem, so a writer that comes when there was none for a
 * while first waits a whole RCU grace period, 5 to 20 ms on the build machine and most
 * of a sandbox's start; the writers right after it do not wait. A thread that writes
 * "0" (itself) into a cgroup v1 `tasks` file moves only itself, which cannot exit or
 * exec meanwhile, and the kernel skips that lock (on the build machine's 6.18: 0.03 ms
 * against 5-20 ms; a kernel without that shortcut is as slow as before, not wrong).
 * cgroup v2 moves a whole process through cgroup.procs, under the lock; there the
 * process is best created in its cgroup instead (tenant_cgroup_v2_fd), and in_v2 says it
 * was: the v2 hierarchy is then skipped. */
int tenant_cgroup_join_self(const struct tenant_cgroup *cg, bool in_v2, struct tn_err **err);

/* The tenant's cgroup on the cgroup v2 hierarchy, opened as a directory (close-on-exec),
 * for clone3()'s CLONE_INTO_CGROUP: a process created in its cgroup is never moved, and
 * creating it there takes the global lock only for reading. -1 when the tenant has no
 * cgroup v2 hierarchy (or it cannot be opened: the caller then joins it later). */
int tenant_cgroup_v2_fd(const struct tenant_cgroup *cg);

/* Like fork(), with clone `flags` (namespaces; CLONE_PIDFD stores into *pidfd) and
 * SIGCHLD. With a cgroup v2 directory (tenant_cgroup_v2_fd), the child is created in
 * that cgroup (clone3's CLONE_INTO_CGROUP) and *placed is true in both processes. A
 * kernel without clone3 (ENOSYS) or with an older clone_args (E2BIG) gets a plain clone,
 * *placed false: the child then joins by itself. Any other error is the caller's. */
pid_t cgroup_clone_into(uint64_t flags, int cgroup_fd, int *pidfd, bool *placed);

/* Moves every thread of the running process `pid` (a microVM's QEMU) there. */
int tenant_cgroup_attach_process(struct tenant_cgroup *cg, pid_t pid, struct tn_err **err);

/* Removes the tenant's cgroups; fails with -EBUSY while a process is still in one. */
int tenant_cgroup_remove(struct tenant_cgroup *cg, struct tn_err **err);

/* The cgroups called `name`, in whichever hierarchies they still exist (a removal
 * that half failed leaves some): sig (0: none) to every process in them, then rmdir.
 * 0 when none is left, -EBUSY while one still holds a process. For a helper's cgroup
 * whose leader died and left children behind. */
int tenant_cgroup_kill_remove(const char *name, int sig);

/* What one sample of a tenant's cgroup counters saw. `valid` says which groups of
 * fields were read (a host without a controller, or v1 without swap accounting,
 * lacks some). Counters (cpu, throttling, oom kills, pids max events) only grow while
 * the cgroup lives; a decrease means it was recreated. */
enum {
        CGS_CPU = 1 << 0,         /* cpu_usage_ns */
        CGS_THROTTLE = 1 << 1,    /* nr_periods, nr_throttled, throttled_ns */
        CGS_MEMORY = 1 << 2,      /* memory_current, memory_max */
        CGS_OOM = 1 << 3,         /* oom_kills */
        CGS_PIDS = 1 << 4,        /* pids_current, pids_max */
        CGS_PIDS_EVENTS = 1 << 5, /* pids_max_events */
};

struct cgroup_sample {
        unsigned valid;
        uint64_t cpu_usage_ns;     /* v1 cpuacct.usage, v2 cpu.stat usage_usec * 1000 */
        uint64_t cpu_nr_periods;   /* cpu.stat nr_periods */
        uint64_t cpu_nr_throttled; /* cpu.stat nr_throttled */
        uint64_t cpu_throttled_ns; /* v1 throttled_time, v2 throttled_usec * 1000 */
        uint64_t memory_current;   /* v1 memory.usage_in_bytes, v2 memory.current */
        uint64_t memory_max;       /* v1 limit_in_bytes, v2 memory.max; CGROUP_UNLIMITED */
        uint64_t oom_kills;        /* v1 memory.oom_control oom_kill, v2 memory.events oom_kill */
        uint64_t pids_current;
        uint64_t pids_max;        /* CGROUP_UNLIMITED for "max" */
        uint64_t pids_max_events; /* pids.events "max": forks refused by pids.max */
};

/* Reads the counters above. Cheap enough for a timer: the control files are opened
 * once, on the first call, and re-read with pread() afterwards (no libcgroup call).
 * Fails with -ENODEV once the cgroups are gone. */
int tenant_cgroup_sample(struct tenant_cgroup *cg, struct cgroup_sample *ret, struct tn_err **err);

/* "memory:/a/b/tenantd/web cpu:/tenantd/web ..." for messages; owned by cg. */
const char *tenant_cgroup_describe(struct tenant_cgroup *cg);

void tenant_cgroup_free(struct tenant_cgroup *cg);
DEFINE_POINTER_CLEANUP(struct tenant_cgroup, tenant_cgroup_free)

/* Freezes (frozen) or thaws every process of the running tenant `name`: cgroup.freeze
 * on v2, the v1 freezer otherwise (its processes moved into a freezer cgroup of their
 * own and back). Freezing waits until the kernel says frozen, at most 5 s; thawing a
 * tenant that is not frozen does nothing. */
int tenant_cgroup_freeze(const char *name, bool frozen, struct tn_err **err);

/* Moves `pid` into the cgroups `ref` is in, for every controller tenantd uses: how a
 * process started later (exec, health checks) joins a running tenant. */
int cgroup_attach_like(pid_t pid, pid_t ref, struct tn_err **err);
