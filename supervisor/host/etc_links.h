/* etc_links.h — which entries of the host's /etc the host's /usr links point to.
 *
 * Packages link from /usr into /etc (OpenJDK's conf/security/java.security ->
 * /etc/java-17-openjdk/security/java.security, python3's sitecustomize.py, maven's
 * conf). A host-system tenant sees the host's /usr, so its /etc must hold those
 * entries too (host/etc_synth.c decides, per start, what each becomes and refuses every
 * secret). Finding them means walking all of /usr (some 160,000 entries, about a second
 * warm), far too slow per start, so the names are kept in an index:
 *  - built by tenantd at its start when stale, and again at every reload;
 *  - cached in STATE_DIR/etc-links for every start, `tenantctl run` without a daemon
 *    included, and rebuilt (under a lock, written atomically) by the first start that
 *    finds it stale.
 * Stale means its key changed: the identity and modification time of the package
 * databases (dpkg's info directory, rpm's, pacman's, apk's) and of /usr and its first
 * levels. Installing, upgrading or removing a package changes the database directory,
 * so the next start sees the new links; a link made by hand deep in /usr shows after a
 * reload. Walking /usr is the source, not dpkg's *.list files: those name every file
 * but not which is a link (an lstat each, the same walk), and they miss what was not
 * installed by dpkg (/usr/local, other package managers).
 * Only names are kept: what an entry is and holds is read at each start, so editing
 * /etc/java-17-openjdk/security/java.security needs no rebuild. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/err.h"

#define ETC_LINKS_MAX 1024              /* names in the index; more are left out, with a warning */
#define ETC_LINK_NAME_MAX 200           /* bytes of one name below /etc */
#define ETC_LINKS_SCAN_MAX (4U << 20)   /* entries of /usr walked; past it, a warning */
#define ETC_LINKS_SCAN_DEPTH 32         /* directory levels of /usr walked */
#define ETC_LINKS_FILE_MAX (512U << 10) /* bytes of the index file */
#define ETC_LINKS_FILE "etc-links"      /* in the state directory */

struct etc_links {
        char **v; /* names relative to /etc ("java-17-openjdk/security/java.security"), sorted */
        size_t n;
};

enum etc_links_mode {
        ETC_LINKS_CACHED,  /* the cached index, rebuilt only when stale */
        ETC_LINKS_REBUILD, /* rebuilt whatever its key says (tenantd's reload) */
};

/* Walks `root`/usr (root "/" on a host; a fake tree in tests) without following any
 * link, bounded by ETC_LINKS_SCAN_MAX and ETC_LINKS_SCAN_DEPTH, and returns the names
 * below /etc that its links point to (absolute or relative targets, resolved by their
 * text), sorted and unique, but for those the fixed part of the synthesized /etc
 * already covers (host/etc_synth.h: the alternatives and ssl/certs trees). At most
 * ETC_LINKS_MAX names. What it leaves out it says in lines written to `warn`. */
int etc_links_scan(const char *root, struct etc_links *ret, FILE *warn, struct tn_err **err);

/* The key of `root`'s index: one line of what changes when packages change. */
void etc_links_key(const char *root, char *buf, size_t size);

/* The index of `root` from STATE_DIR/etc-links, or built by etc_links_scan() and
 * written there (mode 0600) when it is missing, stale, unreadable or `mode` says so.
 * `warn` gets what a rebuild left out and why a cached file was refused. */
int etc_links_load(const char *state_dir, const char *root, enum etc_links_mode mode,
                   struct etc_links *ret, FILE *warn, struct tn_err **err);

/* A name an index may hold: relative, no empty, "." or ".." component, printable,
 * at most ETC_LINK_NAME_MAX bytes. */
bool etc_link_name_valid(const char *name);

/* `path` (absolute, of at most PATH_MAX - 1 bytes) made lexical in place: "." and ".."
 * components and repeated slashes resolved by the text alone, as a link's text spells
 * it ("/usr/lib/ssl/../../../etc/x" is "/etc/x"). */
void etc_path_normalize(char *path);

void etc_links_clear(struct etc_links *l);
