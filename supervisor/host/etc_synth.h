/* etc_synth.h — the /etc of a "host-system" root: one list for both backends.
 *
 * A tenant whose root is "host-system" sees the host's /usr read-only and an /etc of its
 * own, never the host's. etc_synthesize() decides, once for both backends, what that
 * /etc holds:
 *  - written by tenantd: passwd and group (root, the host's system accounts 1..999
 *    without any password field, the service's user, nobody), hostname, hosts,
 *    nsswitch.conf, resolv.conf (the resolvers net_resolvers() picks);
 *  - taken from the host, each as what it is there (a symbolic link keeps its target,
 *    a regular file others may read is copied by etc_write(), in the kernel, as an
 *    ETC_COPY: the supervisor reads none of it; anything else, or nothing, is left
 *    out): the few entries
 *    a Debian userland reaches through links from /usr or reads by name and that hold
 *    no secret: ld.so.cache, localtime, timezone, os-release, debian_version, services,
 *    protocols, host.conf, gai.conf, mime.types, locale.alias, mtab, ssl/openssl.cnf;
 *  - two host directories of links, as trees: alternatives (/usr/bin/awk ->
 *    /etc/alternatives/awk ...) and ssl/certs (the CA bundle and its hash links);
 *  - the entries the host's /usr links point to (host/etc_links.h finds their names
 *    once, not per start): OpenJDK's /etc/java-17-openjdk/..., python's sitecustomize.py,
 *    maven's conf directory. Each is decided as the fixed ones are: a link keeps its
 *    target (and a target inside /etc is taken too, ETC_LINKED_HOPS links at most), a
 *    regular file others may read is copied (by etc_write(), in the kernel: the
 *    supervisor reads none of it), a directory others may list is a tree,
 *    anything else is left out; every directory on the way must be one others may
 *    search. Never an entry of refused_names[] (etc_synth.c: shadow, ssh, sudoers,
 *    ssl/private, machine-id ...) or a tree that holds one, never one that the fixed
 *    part already has or covers, never a name outside /etc. Bounded by ETC_LINKED_*;
 *    what the bounds leave out is counted in etc_set.left_out.
 * Nothing else of the host's /etc: no shadow, no ssh keys, no sudoers, no machine-id,
 * no human account. A sandbox writes the files and links on its root tmpfs and binds the
 * trees read-only (sandbox/rootfs.c); a microVM's skeleton holds all of it, the trees
 * copied (vm/vm_root.c), so that the guest's /etc is the sandbox's, entry for entry. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"
#include "spec/manifest.h"

#define ETC_FILE_MAX (8U << 20)     /* one file taken from the host (ld.so.cache, CA bundle) */
#define ETC_TREE_ENTRIES 16384      /* entries of one tree copied into a skeleton */
#define ETC_TREE_DEPTH 4            /* directory levels of one tree (ssl/certs/java) */
#define ETC_TREE_BYTES (64U << 20)  /* bytes of the regular files of one tree */
#define ETC_LINKED_HOPS 8           /* links inside /etc followed from one linked name */
#define ETC_LINKED_BYTES (8U << 20) /* bytes of the files taken for /usr's links */
#define ETC_LINKED_TREES 16         /* directories bound or copied for /usr's links */
#define ETC_LINKED_INODES 2048      /* entries and directories made for /usr's links */

struct etc_links;

enum etc_kind {
        ETC_FILE, /* data: the content */
        ETC_LINK, /* data: the link's target */
        ETC_TREE, /* data: the host directory ("/etc/alternatives") */
        ETC_COPY, /* data: the host file, copied by etc_write(); len: its size, the most copied */
};

struct etc_entry {
        char *name; /* relative to /etc: "passwd", "ssl/certs" */
        enum etc_kind kind;
        char *data;
        size_t len;
};

struct etc_set {
        struct etc_entry *v;
        size_t n;
        size_t left_out; /* linked entries the ETC_LINKED_* bounds left out */
};

/* The entries of the tenant's /etc for manifest `m`, read from the host directory
 * `host_etc` ("/etc"; another directory in tests), with those the names in `links`
 * (etc_links.h; NULL for none) lead to. -ENOMEM is the only failure. */
int etc_synthesize(const struct manifest *m, const char *host_etc, const struct etc_links *links,
                   struct etc_set *ret, struct tn_err **err);

/* True when `name` (relative to /etc) is one of the fixed trees or below one: the
 * fixed part of every synthesized /etc has it already. */
bool etc_fixed_covers(const char *name);

void etc_set_clear(struct etc_set *s);

/* Writes the files (mode 0644) and links of `s` into the directory `etcdir`, making the
 * parent directories of a name ("ssl") 0755; trees are left to the caller. Existing
 * names are errors, nothing is followed. An ETC_COPY whose host file is no longer a
 * regular file others may read is left out; one that grew is cut at its len. Allocates
 * nothing: a sandbox calls it in the tenant's first process, where the host's files are
 * still reachable (sandbox/rootfs.c, before pivot_root). */
int etc_write(const struct etc_set *s, int etcdir, struct tn_err **err);

/* Copies the host directory `source` to `name` (made 0755, with its parents) below
 * `etcdir`: links with their targets, regular files others may read (copied 0644),
 * directories others may list (0755), down to ETC_TREE_DEPTH levels; anything else is
 * left out, and more than ETC_TREE_ENTRIES entries or ETC_TREE_BYTES bytes is an error.
 * Nothing of the source is followed. */
int etc_tree_copy(int etcdir, const char *name, const char *source, struct tn_err **err);
