/* caps.h — capabilities through libcap-ng: names, the grant rules, and applying a
 * grant to the calling process. Everything but caps_apply() is pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

/* Accepts "CAP_NET_BIND_SERVICE", "cap_net_bind_service" or "net_bind_service".
 * Returns the capability number or -1. */
int caps_from_name(const char *name);

/* "CAP_NET_BIND_SERVICE" into buf (at least 48 bytes); "CAP_<n>" if unknown. */
const char *caps_to_name(int cap, char *buf, size_t len);

/* The known capability name nearest to `name` (for "did you mean"), or NULL. */
const char *caps_suggest(const char *name, char *buf, size_t len);

/* True when a capability is never granted to a sandboxed tenant, whatever a manifest
 * says, with the reason in *ret_why (see docs/policies.md). */
bool caps_forbidden_in_sandbox(int cap, const char **ret_why);

/* In a process that still holds CAP_SETPCAP, CAP_SETUID and CAP_SETGID (the tenant's
 * root, freshly in its user namespace): limits the bounding set to `caps`, sets the
 * supplementary groups, switches to uid/gid keeping exactly `caps` as effective,
 * permitted and inheritable, and raises them as ambient so they survive execve() for
 * a non-root uid. With n == 0 the process ends with no capability in any set. */
int caps_apply(const int *caps, size_t n, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
               struct tn_err **err);
