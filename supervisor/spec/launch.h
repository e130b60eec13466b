/* launch.h — what starting a tenant needs before any backend runs, shared by
 * `tenantctl run` and tenantd: a manifest loaded from its file, and its policy (the
 * seccomp profile compiled, the capability list resolved). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "spec/manifest.h"

struct policy_bpf;

/* Reads and validates the manifest at `path`. On invalid input returns -EINVAL and, in
 * *ret_diags, every diagnostic as "FILE:LINE:COL: PATH: MSG" lines (free it); on a
 * read error returns the error in *err. With `trusted_only` (a root process that will
 * act on it), a file that someone other than root could change is refused first
 * (-EPERM, trust.h says what is checked). */
int manifest_load(const char *path, bool trusted_only, struct manifest **ret, char **ret_diags,
                  struct tn_err **err);

/* The manifest's capabilities as numbers: sets such as "@web" expanded (from the
 * policy search path), duplicates removed, at most 64. */
int launch_resolve_caps(const struct manifest *m, int **ret_caps, size_t *ret_n,
                        struct tn_err **err);

/* The manifest's seccomp profile, compiled (through the cache in STATE_DIR), and its
 * capabilities as numbers: sets such as "@web" expanded, duplicates removed. */
int launch_resolve_policy(const struct manifest *m, const char *state_dir,
                          struct policy_bpf **ret_bpf, int **ret_caps, size_t *ret_n,
                          struct tn_err **err);
