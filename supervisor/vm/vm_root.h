/* vm_root.h — the root a microVM tenant with "root": "host-system" boots into.
 *
 * A sandbox assembles its host-system root from mounts (rootfs.c); a guest can only be
 * given directories. So tenantd writes a skeleton of its own for the guest, shared
 * read-only as the root: empty mount points (the system's and every declared mount
 * target's, as a sandbox makes them in its root), /bin, /sbin, /lib* as the host's links
 * into /usr, and a minimal /etc (passwd and group with root, the service's user and
 * nobody; hostname, hosts, nsswitch.conf, an empty resolv.conf for the agent to mount
 * over, the host's ld.so.cache and CA bundle). The host's /usr is a second read-only
 * share mounted on it. Nothing else of the host's /etc is in it. */
#pragma once

#include "lib/err.h"
#include "spec/manifest.h"

#define VM_ROOT_DIR "/run/tenantd-vm" /* skeletons: VM_ROOT_DIR/NAME, mode 0755 */

/* Writes the skeleton at dir (removing a leftover first). The directory it is in must
 * be tenantd's own (see vm_root.c); every directory of the skeleton is 0755. */
int vm_root_skeleton(const struct manifest *m, const char *dir, struct tn_err **err);

/* Removes it (depth first, by descriptor: no symbolic link followed, even one swapped
 * in meanwhile; on one file system only). */
void vm_root_remove(const char *dir);
