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
#include <stdint.h>
#include <sys/types.h>

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

/* Every volume of m, opened as above (the roots given to uid:gid); all or none: on a
 * failure the ones opened are closed again and *err names the volume. */
int volumes_open(const struct manifest *m, const char *storage_dir, const char *master_key,
                 uid_t uid, gid_t gid, struct tn_err **err);

/* Closes every volume mounted for `tenant` (what VOLUME_MOUNT_DIR/TENANT holds, not
 * what a manifest says: it may have changed since), best effort; for the stop of a
 * tenant and the cleanup after a crash. */
void volumes_close(const char *tenant);
