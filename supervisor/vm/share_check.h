/* share_check.h — which host directories a tenant may be given (issue 10, item 3).
 *
 * A bind mount (a sandbox's) or a share (a microVM's) hands a host directory to the
 * tenant. Some never may be, whichever backend and mode:
 *  - tenantd's own: the state directory (logs, uid ranges, the VMs' sockets), the
 *    storage directory (every tenant's volume images), the manifest directory, the
 *    policy search path, the configuration file, /run/tenantd, the VM skeletons, the
 *    share mounts and the volume mounts; a share overlaps one when either contains
 *    the other (a share of /var holds /var/lib/tenantd);
 *  - the kernel's interfaces: anything in /proc, /sys or /dev.
 * And a read-write one may not be, or hold, a host path that root's programs trust:
 * /etc, /usr, /boot, /root, /var/lib, /var/log, /run, /bin, /sbin, /lib*, ...; nor be
 * a directory that only groups others' entries (/home, /tmp, /srv, ...) as a whole.
 *
 * Paths are compared by their real path: symbolic links resolved, as far as the path
 * exists (the rest is taken as written). The caller that then opens the source must
 * open exactly what was checked: refuse symbolic links on the way (RESOLVE_NO_SYMLINKS)
 * or check the real path of what it opened (share_check_fd). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "spec/manifest.h"

/* Where a microVM's read-write shares are bind-mounted nosuid,nodev before virtiofsd
 * serves them: SHARE_MOUNT_DIR/NAME/TAG, the top directory 0700 root. */
#define SHARE_MOUNT_DIR "/run/tenantd-shares"

struct tenantd_dirs {
        const char *state_dir;    /* STATEDIR */
        const char *storage_dir;  /* the volumes' images; NULL: STATEDIR/volumes, in it */
        const char *manifest_dir; /* NULL: /etc/tenantd/services */
        const char *config_file;  /* NULL: /etc/tenantd/tenantd.conf */
};

/* Checks one source given by its real path. Returns 0, or -EPERM with *err saying
 * "WHAT: SOURCE overlaps ..., why, and what to do". */
int share_check_path(const char *real, bool readonly, const struct tenantd_dirs *d,
                     const char *what, struct tn_err **err);

/* Resolves `source` (symbolic links followed as far as it exists) and checks it. */
int share_check_source(const char *source, bool readonly, const struct tenantd_dirs *d,
                       const char *what, struct tn_err **err);

/* Checks what the descriptor `fd` (an O_PATH open of the source) really is. */
int share_check_fd(int fd, bool readonly, const struct tenantd_dirs *d, const char *what,
                   struct tn_err **err);

/* Every host path of m: root.path and each bind mount's source ("mounts[N].source").
 * report (may be NULL) is called for each refusal; returns the number refused, or
 * stops at the first when report is NULL and returns -EPERM with *err set. */
typedef void (*share_report_fn)(void *ctx, const char *what, const char *msg);
int share_check_manifest(const struct manifest *m, const struct tenantd_dirs *d,
                         share_report_fn report, void *ctx, struct tn_err **err);

/* The user libvirt runs QEMU as (libvirt's build default on Debian, qemu.conf "user"):
 * it serves a microVM's read-only (9p) shares itself. */
#define SHARE_QEMU_USER "libvirt-qemu"

/* Whether `user` (SHARE_QEMU_USER) can reach the directory `source` (a real path): search
 * every directory from / down to it and read and search it. Checked in a child that
 * takes on the user's uid, gid and groups, so ACLs and groups count as the kernel counts
 * them. Returns 0 (also when no such user exists: nothing to check against), or
 * -EACCES with *err in one line: "WHAT: USER cannot search (x) DIR (mode, owner): run
 * chmod o+x DIR (or setfacl -m u:USER:x DIR)". */
int share_check_reach(const char *source, const char *user, const char *what, struct tn_err **err);
