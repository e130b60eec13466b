/* policy_learn.h — the profile that `tenantctl policy learn` writes: the system calls a
 * service was seen to make, in the policies/ format (docs/policies.md), arranged by the
 * families of a reference profile ("default") so that it reads like one.
 *
 * The learning run answered every call as the manifest's profile (`ref`) would by its
 * number (policy_learning_answers), so the service took the paths it takes under it.
 * For each call seen:
 *  - if ref lets it run, in full or under argument conditions, every rule of ref for
 *    it is copied (action, conditions, why), so the learned profile never lets it run
 *    wider than ref does (socket families, clone without CLONE_NEWUSER, ioctl without
 *    TIOCSTI, personality values);
 *  - if ref refuses it by name, ref's rule is copied for it (the same errno: ENOSYS for
 *    clone3 keeps glibc falling back to clone), with a comment that it was attempted;
 *  - if ref does not name it, its default action decided: a refusal becomes a comment
 *    (the learned profile refuses it with EPERM), a call it let run gets an allow rule.
 * A call that `dflt` ("default") blocks by name is flagged DANGEROUS in a comment,
 * with default's reason, whatever ref did with it. Everything not seen fails with
 * EPERM (the default action). Pure: no file is read or written here. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct policy;

struct learned_call {
        const char *name; /* libseccomp's name, or "nr-N" for a number it does not know */
        uint64_t count;   /* times seen; 0: not seen, needed by the sandbox (its init) */
};

/* What went into the profile, for the report on the terminal. */
struct learned_summary {
        size_t allowed;   /* calls the profile lets run (in full or under conditions) */
        size_t refused;   /* calls seen that ref refused, and the profile refuses */
        size_t dangerous; /* calls seen that dflt blocks by name (allowed or refused) */
        size_t unknown;   /* numbers libseccomp has no name for: in a comment only */
};

/* The profile text: `header` (lines, each written as a // comment; may be NULL), then
 * the JSON. `description` is the profile's description. calls[] has no duplicates. */
int policy_learned_profile(const struct policy *ref, const struct policy *dflt,
                           const struct learned_call *calls, size_t n, const char *description,
                           const char *header, char **ret_text, struct learned_summary *ret_summary,
                           struct tn_err **err);
