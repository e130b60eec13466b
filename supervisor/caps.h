/* caps.h — capability names (through libcap-ng's table) and the grant rules. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
