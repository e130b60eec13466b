/* volume.h — a tenant's volume on the host (issue 13): an ext4 file system in a sparse
 * image file, STORAGE/TENANT/NAME.img, attached to a loop device and mounted nosuid,
 * nodev (noexec where declared) at VOLUME_MOUNT_DIR/TENANT/NAME, a place only root can
 * reach; a backend then hands that mount to the tenant (a sandbox's bind mount, a
 * microVM's virtiofs share) its directory `data`, encrypted with fscrypt unless the
 * manifest says "encrypt": false (docs/storage.md).
 *
 * The image is made on first use and never deleted here. Every open checks the file
 * system with e2fsck first (the tenant controls what is in it), and copes with what a
 * crash left behind: a mount still in place, a loop device still attached. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/cgroup.h"
#include "lib/err.h"
#include "spec/manifest.h"

/* Where volumes are mounted on the host: the top directory is root's, mode 0700, so
 * no host user and no tenant can reach a volume but through its own mount. */
#define VOLUME_MOUNT_DIR "/run/tenantd-volumes"

struct volume_host {
        char image[PATH_MAX]; /* STORAGE/TENANT/NAME.img */
        char mount[PATH_MAX]; /* VOLUME_MOUNT_DIR/TENANT/NAME */
        char data[PATH_MAX];  /* MOUNT/data: what the tenant gets (its root there) */
};

/* The paths of a volume; -ENAMETOOLONG when they do not fit. */
int volume_paths(const char *storage_dir, const char *tenant, const char *name,
                 struct volume_host *ret, struct tn_err **err);

/* Makes the volume ready on the host: image created and formatted on first use,
 * checked, attached and mounted; its `data` directory owned by uid:gid (host ids) and,
 * if the volume is encrypted, unlocked with its key, which the master key at
 * `master_key` unwraps (made on first use: keywrap.h). */
int volume_open(const char *storage_dir, const char *master_key, const char *tenant,
                const struct volume_spec *vs, uid_t uid, gid_t gid, struct volume_host *ret,
                struct tn_err **err);

/* Removes an encrypted volume's key from its file system, unmounts the volume (the loop device detaches itself with the last mount) and
 * removes its mount point. A volume that is not mounted is not an error. */
int volume_close(const char *tenant, const char *name, struct tn_err **err);

/* A mounted volume's use of its file system (statfs of its host-side mount, as df
 * counts it: used = blocks - free, size = used + available). -ENOENT when the volume
 * is not mounted (its tenant is not running). */
struct volume_usage {
        uint64_t used;  /* bytes */
        uint64_t size;  /* bytes: used + available */
        uint64_t avail; /* bytes */
};
int volume_usage(const char *tenant, const char *name, struct volume_usage *ret);

/* Grows a mounted volume to vs->size while its tenant runs: the image extended, the
 * loop device's capacity renewed (LOOP_SET_CAPACITY), the ext4 file system resized
 * online. A size below the image's is refused (-EINVAL, saying that volumes never
 * shrink) before anything changes; check_only checks just that. */
int volume_grow(const char *storage_dir, const char *tenant, const struct volume_spec *vs,
                bool check_only, struct tn_err **err);

/* Each mounted volume's io limits (0 = none) on its loop device, in the tenant's
 * cgroups (tenant_cgroup_set_io), so that the IO the tenant issues to the volume is
 * throttled there; for a start and for a live change (zeros remove a rule). */
int volumes_set_io(const struct manifest *m, struct tenant_cgroup *cg, struct tn_err **err);

/* Every volume of m, opened as above (the roots given to uid:gid); all or none: on a
 * failure the ones opened are closed again and *err names the volume. */
int volumes_open(const struct manifest *m, const char *storage_dir, const char *master_key,
                 uid_t uid, gid_t gid, struct tn_err **err);

/* Closes every volume mounted for `tenant` (what VOLUME_MOUNT_DIR/TENANT holds, not
 * what a manifest says: it may have changed since), best effort; for the stop of a
 * tenant and the cleanup after a crash. */
void volumes_close(const char *tenant);

/* The volumes in the storage directory, whatever manifests say now (orphans included:
 * a manifest removed or renamed leaves its volumes), sorted by tenant and name. */
struct volume_info {
        char tenant[65], name[65];
        uint64_t size;      /* the image's size, bytes */
        uint64_t allocated; /* what it takes on the host's disk (sparse), bytes */
        bool encrypted;     /* it has a wrapped key */
        bool mounted;       /* mounted now: its tenant runs */
};
int volume_list(const char *storage_dir, struct volume_info **ret, size_t *n, struct tn_err **err);

/* Deletes a volume, image and key, for good: the operator's command, never implicit.
 * -EBUSY while it is mounted or attached anywhere. */
int volume_remove(const char *storage_dir, const char *tenant, const char *name,
                  struct tn_err **err);
/* ---- snapshots, for backups (docs/backup.md) ---- */

/* FIFREEZE (frozen) or FITHAW the file system of the volume mounted for `tenant`; thawing
 * one that is not frozen is not an error. */
int volume_fs_freeze(const char *tenant, const char *name, bool frozen, struct tn_err **err);

/* Copies the volume's image to STORAGE/TENANT/NAME.snap (root 0600): a reflink (FICLONE)
 * where the file system can, otherwise a sparse copy of its data extents. Call it with
 * the volume's file system frozen. The path in ret_path, *ret_reflink which it was. */
int volume_snapshot(const char *storage_dir, const char *tenant, const char *name, char *ret_path,
                    size_t ret_len, bool *ret_reflink, struct tn_err **err);

/* Mounts the snapshot image `snap` of volume vs read-only at `target` (checked with
 * e2fsck -p first, which replays its journal), and for an encrypted volume adds its key
 * to that mount's file system only. Call it in a private mount namespace: the mount, the
 * key and the loop device (AUTOCLEAR) go with the namespace's last process. */
int volume_mount_snapshot(const char *storage_dir, const char *master_key, const char *tenant,
                          const struct volume_spec *vs, const char *snap, const char *target,
                          struct tn_err **err);
