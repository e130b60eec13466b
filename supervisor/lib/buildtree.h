/* buildtree.h — where an uninstalled tree keeps its own files.
 *
 * A program started from the build directory of a source tree (SRC/build/tenantctl,
 * beside SRC/policies and SRC/supervisor) uses that tree's policies/ and build/vm/
 * before the installed ones, so `build/tenantctl run` works without
 * TENANTD_POLICY_DIR or TENANTD_VM_IMAGE_DIR. An installed program does not sit in
 * such a directory and keeps the compiled-in paths. The files found there are still
 * checked like any other (trust.h): root believes only what root alone can change. */
#pragma once

/* The source tree's root when the running executable (/proc/self/exe) sits in its
 * build directory, else NULL. Computed once; the string is static. */
const char *buildtree_root(void);

/* That build directory (where the executable is), or NULL. */
const char *buildtree_bindir(void);
