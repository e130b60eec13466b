/* vm_root.h — the root a microVM tenant with "root": "host-system" boots into.
 *
 * A sandbox assembles its host-system root from mounts (rootfs.c); a guest can only be
 * given directories. So tenantd writes a skeleton of its own for the guest, shared
 * read-only as the root: empty mount points (the system's and every declared mount
 * target's, as a sandbox makes them in its root), /bin, /sbin, /lib* as the host's links
 * into /usr, and the /etc a sandbox has (host/etc_synth.h), its trees (alternatives,
 * ssl/certs, and the directories /usr's links lead to) copied, since a guest is given
 * directories, not binds. The agent mounts its
 * resolv.conf over the skeleton's when the guest has a network. The host's /usr is a
 * second read-only share mounted on it. Nothing else of the host's /etc is in it. */
#pragma once

#include <stddef.h>

#include "lib/err.h"
#include "proto/agent_proto.h"
#include "spec/manifest.h"
#include "vm/vm_xml.h"

#define VM_ROOT_DIR "/run/tenantd-vm" /* skeletons: VM_ROOT_DIR/NAME, mode 0755 */

struct etc_links;

/* Writes the skeleton at dir (removing a leftover first). The directory it is in must
 * be tenantd's own (see vm_root.c); every directory of the skeleton is 0755. `links`:
 * the names /usr's links lead to in /etc (host/etc_links.h; NULL for none); how many of
 * the entries they lead to were over the bounds goes to *ret_left_out (if not NULL). */
int vm_root_skeleton(const struct manifest *m, const struct etc_links *links, const char *dir,
                     size_t *ret_left_out, struct tn_err **err);

/* Removes it (depth first, by descriptor: no symbolic link followed, even one swapped
 * in meanwhile; on one file system only). */
void vm_root_remove(const char *dir);

/* The mounts of the agent's setup request: every share (the root share first) and every
 * tmpfs mount of the manifest, which the guest makes itself. Ordered as a sandbox mounts
 * them (rootfs.c): shallower targets first, whatever the order in the manifest, so that a
 * mount inside another one is made after it; equal depths keep their order. `out` holds
 * `cap` entries, whose strings point into `shares` and `m`. -E2BIG when they do not fit. */
int vm_agent_mounts(const struct vm_share *shares, size_t n_shares, const struct manifest *m,
                    struct agent_mount *out, size_t cap, size_t *ret_n, struct tn_err **err);
