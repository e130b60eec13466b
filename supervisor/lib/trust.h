/* trust.h — may a root process act on what this file says? (sshd's StrictModes)
 *
 * A manifest says what tenantd runs, with which host directories, as root; a policy
 * file says which system calls a tenant may make. Whoever can change one of them, or
 * swap it for another file, controls what root does. So tenantd (and tenantctl run as
 * root) acts only on files that root alone can change:
 *  - the file: a regular file owned by root, writable by no group and no one else;
 *  - the directory it is in (for the manifest directory: the directory itself): owned
 *    by root, writable by root alone, sticky or not (in a writable directory anyone
 *    could add a file, or a link to some other root-owned file);
 *  - every directory above, up to "/": owned by root and writable by root alone, or
 *    root-owned and sticky (like /tmp): others may add entries there but cannot
 *    remove or rename root's, and the next component is checked in turn;
 *  - a symbolic link on the way: owned by root (it sits in a directory checked as
 *    above) and whatever it leads to is checked the same way, up from its real path.
 * Group- or world-writable by the mode bits (an ACL that grants writing shows in the
 * group bits) or owned by another uid: refused, with a message that names the path, what
 * is wrong and the command that fixes it ("...; fix: chmod g-w /etc/tenantd/services"). */
#pragma once

#include "lib/err.h"

enum trust_kind {
        TRUST_FILE, /* a manifest, policy or configuration file */
        TRUST_DIR,  /* a directory whose files are all trusted (the manifest directory) */
};

/* 0 if `path` is a TRUST_FILE or TRUST_DIR that root alone can change (see above), with
 * its real path (symbolic links resolved) in *ret_real if ret_real is not NULL: read
 * that, not `path` again. Else -EPERM (or the errno of a failed lookup) and *err says
 * what is wrong and how to fix it. */
int trust_check(const char *path, enum trust_kind kind, char **ret_real, struct tn_err **err);
