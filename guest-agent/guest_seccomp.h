/* guest_seccomp.h — the filter tenant-agent puts on the service in the guest (the start
 * request's "seccomp", docs/agent-protocol.md#start), built here from call numbers: the
 * agent links no libseccomp.
 *
 * The guest's kernel is the microVM's boundary, so the guest does not get the
 * manifest's whole profile; it gets what makes the profile's "notify" rules mean what
 * they mean in a sandbox: those calls denied with EPERM and reported (notify mode), or
 * every call counted for `tenantctl policy learn` (learning mode). Calls of another
 * architecture or ABI (i386, x32) are not filtered: they are the guest kernel's
 * business, as every other call is. */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/agent_proto.h"

#define GUEST_FILTER_MAX (5 + 2 * AGENT_NR_MAX)

/* A program for sc. Notify mode: each of sc->notify hands the call to a listener
 * (SECCOMP_RET_USER_NOTIF), or, with `as_errno` (exec sessions, which have no listener),
 * fails it with EPERM, the answer the listener gives; everything else runs. Learning:
 * every call of the native ABI is handed to the listener. Returns the number of
 * instructions (at most GUEST_FILTER_MAX) written to insns. */
size_t guest_filter_build(const struct agent_seccomp *sc, bool as_errno,
                          struct sock_filter insns[GUEST_FILTER_MAX]);
