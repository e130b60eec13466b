/* guest_sys.h — what tenant-agent does to the guest system as PID 1: early mounts,
 * kernel modules, finding the agent port, shares, network, and power-off.
 *
 * Every function returns 0 or a negative errno and fills a struct tn_err. */
#pragma once

#include <stdbool.h>

#include "proto/agent_proto.h"
#include "lib/err.h"

/* Mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run and /tmp. */
int guest_mount_early(struct tn_err **err);

/* Loads, in order, the modules listed one path a line in `list` with finit_module();
 * a module already loaded (EEXIST) is fine. Returns the count loaded; failures of single
 * modules are reported through `warn` and do not stop the rest. */
int guest_load_modules(const char *list, void (*warn)(const char *msg));

/* Brings lo up (network or not: health checks connect to 127.0.0.1). */
int guest_loopback_up(void);

/* Waits up to timeout_ms for the virtio-serial port named `name` and opens it
 * (O_RDWR, non-blocking, close-on-exec). Returns the fd. */
int guest_open_port(const char *name, unsigned timeout_ms, struct tn_err **err);

/* The directory services run in: "/sysroot" once a root share is mounted, else "/". */
const char *guest_root(void);

/* Applies a setup request: hostname, shares (the root share first), the system mounts
 * inside a new root, network and resolv.conf. */
int guest_setup(const struct agent_setup *setup, struct tn_err **err);

/* Gives the /run tmpfs the setup mounted in a new root to the service's user, as a
 * sandbox's /run is (sandbox/rootfs.c): a declared mount at /run lies over it and is
 * left as it is. 0 without a new root; else 0 or -errno. */
int guest_give_run(uint32_t uid, uint32_t gid);
/* The tenant's processes in a cgroup of their own in the guest (guest_sys.c): mounts
 * cgroup2 in the agent's /run, makes the group, applies pids_max (0: none). Returns 0
 * with *ret_procs its cgroup.procs (a child writes "0" there to join) and *ret_watch an
 * inotify descriptor that is readable when a counter changed. */
int guest_cgroup_setup(uint32_t pids_max, int *ret_procs, int *ret_watch, struct tn_err **err);
/* A new pids.max for the group made by guest_cgroup_setup (0: none, "max"). */
int guest_cgroup_set_pids_max(uint32_t pids_max, struct tn_err **err);
/* The group's counters: OOM kills (memory.events) and forks refused (pids.events). */
void guest_cgroup_counts(struct agent_limits *out);

/* Unmounts the shares (reverse order, lazily) and syncs. */
void guest_unmount_all(void);

/* Opens `path` (absolute, canonical) as an O_PATH directory inside `root_fd`, creating
 * missing components one by one (mode 0755) without following any symlink. */
int guest_resolve_dir(int root_fd, const char *path, bool create, struct tn_err **err);
