/* audit.h — how exposed a tenant leaves the host: findings from its manifest and what
 * is known of it live, each with a weight and a one-line fix, and an exposure score.
 * `tenantctl audit` prints them; docs/audit.md explains every finding and its weight.
 *
 * audit_manifest() is pure: what needs files (the profiles, the capability sets) or the
 * running tenant (QEMU's command line) comes in struct audit_facts, which
 * audit_facts_load() fills from the policy search path for the file-based part. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "lib/json.h"
#include "spec/manifest.h"

struct policy;

#define AUDIT_ID_MAX 32
#define AUDIT_SCORE_MAX 100

struct audit_finding {
        char id[AUDIT_ID_MAX]; /* stable: "uid-0", "host-rw-mount", ... (docs/audit.md) */
        unsigned weight;       /* what it adds to the score */
        char *what;            /* one line: what is exposed */
        char *fix;             /* one line: what to change */
};

struct audit_report {
        struct audit_finding *items; /* heaviest first */
        size_t n;
        unsigned score; /* sum of the weights, at most AUDIT_SCORE_MAX */
};

struct audit_facts {
        const struct policy *profile;   /* the manifest's seccomp profile; NULL: not loadable */
        const struct policy *reference; /* "default"; NULL: not loadable */
        const int *caps;                /* the capabilities granted, sets expanded */
        size_t caps_n;
        int qemu_sandbox; /* a running microVM's QEMU: 1 with -sandbox on, 0 without, -1 unknown */
};

/* Audits m with f. 0, or -ENOMEM (r is then empty). */
int audit_manifest(const struct manifest *m, const struct audit_facts *f, struct audit_report *r);
void audit_report_clear(struct audit_report *r);

/* "score" and "findings" members, into an object the caller opened. */
void audit_report_json(const struct audit_report *r, struct json_gen *g);

/* The file-based facts for m: its profile and "default" loaded, its capabilities
 * expanded. What cannot be loaded is left NULL/empty (the audit says so); only -ENOMEM
 * fails. qemu_sandbox is set to -1: the caller knows if QEMU runs. */
struct audit_facts_owned {
        struct audit_facts f;
        struct policy *profile_, *reference_;
        int *caps_;
};
int audit_facts_load(const struct manifest *m, struct audit_facts_owned *ret);
void audit_facts_clear(struct audit_facts_owned *o);
