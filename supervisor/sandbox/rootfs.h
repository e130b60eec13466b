/* rootfs.h — the tenant's root filesystem: only what the manifest declares.
 *
 * Two halves, because they run in two places:
 *  - rootfs_prepare() runs in the supervisor, as root, in the host's mount namespace.
 *    It resolves every host path the tenant will see (the image root or the host's
 *    /usr, each declared bind source, a few harmless /etc files), refusing symbolic
 *    links, and turns each into a detached mount (open_tree) that already carries its
 *    final attributes: read-only, nosuid, nodev, noexec, idmapped. Nothing is resolved
 *    by path after this point.
 *  - rootfs_build() runs in the tenant's first process, still root but already in a
 *    new mount namespace owned by the host's user namespace. It assembles those
 *    mounts on a fresh tmpfs, adds /proc (masked), a minimal /dev and tmpfs mounts,
 *    resolves every mount target inside the new root without following symbolic
 *    links, and pivots into it.
 * docs/security.md describes the result and why each step is where it is. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "spec/manifest.h"

struct rootfs_ids {
        uint32_t base; /* host id that tenant id 0 maps to */
        uint32_t uid;  /* the service's uid/gid inside the tenant */
        uint32_t gid;
};

struct rootfs_plan;

/* idmap_userns_fd: a user namespace mapping the service's uid and gid (only those)
 * onto their host ids, used for idmapped binds; -1 disables idmapping. state_dir holds
 * the index of /usr's links into /etc (host/etc_links.h). Warnings for the operator
 * (ownership that will not work, /etc entries left out) are appended to *warnings, one
 * per line. */
int rootfs_prepare(const struct manifest *m, const struct rootfs_ids *ids, int idmap_userns_fd,
                   const char *state_dir, struct rootfs_plan **ret, char **warnings,
                   struct tn_err **err);

/* In the tenant's first process (see above). On return the process's root and working
 * directory are the tenant's root. */
int rootfs_build(const struct rootfs_plan *plan, struct tn_err **err);

/* The descriptors the plan holds (its detached mounts), at most `max` of them into
 * fds[]: what the tenant's first process must keep open until rootfs_build(). */
size_t rootfs_plan_fds(const struct rootfs_plan *plan, int *fds, size_t max);

void rootfs_plan_free(struct rootfs_plan *plan);
DEFINE_POINTER_CLEANUP(struct rootfs_plan, rootfs_plan_free)
