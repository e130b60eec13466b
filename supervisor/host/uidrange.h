/* uidrange.h — a host uid/gid range of its own for every tenant.
 *
 * Each tenant's uids and gids 0..65535 map onto 65536 consecutive host ids that no
 * other tenant and no /etc/subuid or /etc/subgid entry uses. The allocation is stable:
 * it is recorded in STATE_DIR/uidranges (one "NAME BASE" line per tenant, written
 * atomically under a lock) and found again on every start. */
#pragma once

#include <stdint.h>

#include "lib/err.h"

#define UIDRANGE_SIZE 65536U
#define UIDRANGE_DEFAULT_BASE 1073741824U /* 2^30: far above ordinary accounts */
#define UIDRANGE_MAX_TENANTS 16384U       /* ranges up to 2^31 */

/* Returns the base of `name`'s range, allocating one on first use. `first_base` is the
 * lowest base to hand out (UIDRANGE_DEFAULT_BASE unless configured). */
int uidrange_get(const char *state_dir, const char *name, uint32_t first_base, uint32_t *ret_base,
                 struct tn_err **err);

/* The host uid and gid (one number) that tenantd's tcp and http health probes run as
 * inside a tenant's network namespace: first_base - 1, just below every range tenantd
 * hands out. Refused (-EEXIST, saying who holds it) when a range recorded in
 * STATE_DIR/uidranges, an /etc/subuid or /etc/subgid entry, an account or a group
 * already has it: the probe must be nobody's. */
int uidrange_probe_id(const char *state_dir, uint32_t first_base, uint32_t *ret_id,
                      struct tn_err **err);
