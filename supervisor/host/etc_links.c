/* etc_links.c — see etc_links.h. */
#include "host/etc_links.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/etc_synth.h"
#include "lib/cleanup.h"
#include "lib/fileio.h"

#define INDEX_HEADER "# tenantd etc-links 1: names below /etc that links in /usr point to"
#define RAW_MAX 8192 /* names held before duplicates are dropped */

/* What the key is made of, relative to the root: the package databases (the directory
 * a package manager rewrites on every install, upgrade and removal) and /usr's first
 * levels. Absent ones count as absent, so a database appearing changes the key too. */
static const char *const key_paths[] = {
    "var/lib/dpkg/info", "var/lib/rpm",   "var/lib/pacman/local",
    "lib/apk/db",        "usr",           "usr/bin",
    "usr/sbin",          "usr/lib",       "usr/share",
    "usr/local",         "usr/local/bin", "usr/local/lib",
    "usr/local/share",
};

void etc_links_key(const char *root, char *buf, size_t size)
{
        size_t used = 0;
        int n = snprintf(buf, size, "root=%s", root);
        used = n > 0 ? (size_t)n : 0;
        for (size_t i = 0; i < ARRAY_SIZE(key_paths) && used < size; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s", strcmp(root, "/") ? root : "", key_paths[i]);
                struct stat st;
                if (lstat(path, &st) < 0)
                        n = snprintf(buf + used, size - used, " %s:-", key_paths[i]);
                else
                        n = snprintf(buf + used, size - used, " %s:%jx:%jx:%jd.%09ld", key_paths[i],
                                     (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
                                     (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
                used += n > 0 ? (size_t)n : 0;
        }
}

bool etc_link_name_valid(const char *name)
{
        size_t len = strlen(name);
        if (len == 0 || len > ETC_LINK_NAME_MAX || name[0] == '/' || name[len - 1] == '/')
                return false;
        for (const char *p = name; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return false;
        for (const char *c = name; c;) {
                const char *slash = strchr(c, '/');
                size_t n = slash ? (size_t)(slash - c) : strlen(c);
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c = slash ? slash + 1 : NULL;
        }
        return true;
}

void etc_links_clear(struct etc_links *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (struct etc_links){0};
}

/* ---- the walk ---- */

struct scan {
        char **v;
        size_t n;
        size_t entries;  /* of /usr, walked */
        bool cut;        /* ETC_LINKS_SCAN_MAX reached */
        size_t too_deep; /* directories below ETC_LINKS_SCAN_DEPTH, not walked */
        size_t dropped;  /* names past RAW_MAX that were new */
        bool nomem;
};

void etc_path_normalize(char *path)
{
        char out[PATH_MAX];
        size_t len = 0;
        for (char *save = NULL, *c = strtok_r(path, "/", &save); c;
             c = strtok_r(NULL, "/", &save)) {
                if (strcmp(c, ".") == 0)
                        continue;
                if (strcmp(c, "..") == 0) {
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        if (len > 0)
                                len--; /* the slash */
                        continue;
                }
                size_t n = strlen(c);
                if (len + 1 + n >= sizeof(out))
                        break;
                out[len++] = '/';
                for (size_t i = 0; i < n; i++)
                        out[len++] = c[i];
        }
        if (len == 0)
                out[len++] = '/';
        memcpy(path, out, len);
        path[len] = '\0';
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the names and drops duplicates. */
static void compact(struct scan *s)
{
        if (s->n == 0)
                return;
        qsort(s->v, s->n, sizeof(*s->v), cmp_names);
        size_t k = 1;
        for (size_t i = 1; i < s->n; i++) {
                if (strcmp(s->v[i], s->v[k - 1]) == 0)
                        free(s->v[i]);
                else
                        s->v[k++] = s->v[i];
        }
        s->n = k;
}

static void add_name(struct scan *s, const char *name)
{
        if (s->n == RAW_MAX) {
                compact(s);
                if (s->n == RAW_MAX) {
                        s->dropped++;
                        return;
                }
        }
        if (!s->v) {
                s->v = calloc(RAW_MAX, sizeof(*s->v));
                if (!s->v) {
                        s->nomem = true;
                        return;
                }
        }
        char *copy = strdup(name);
        if (!copy) {
                s->nomem = true;
                return;
        }
        s->v[s->n++] = copy;
}

/* The link at `dir`/`name` (paths as the tenant sees them) points to `target`. */
static void consider(struct scan *s, const char *dir, const char *name, const char *target)
{
        char path[PATH_MAX];
        int n = target[0] == '/' ? snprintf(path, sizeof(path), "%s", target)
                                 : snprintf(path, sizeof(path), "%s/%s/../%s", dir, name, target);
        if (n < 0 || (size_t)n >= sizeof(path))
                return;
        etc_path_normalize(path);
        if (strncmp(path, "/etc/", 5) != 0)
                return;
        const char *rel = path + 5;
        if (!etc_link_name_valid(rel) || etc_fixed_covers(rel))
                return;
        add_name(s, rel);
}

static void walk(int dirfd, char *path, size_t len, int depth, struct scan *s)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while (!s->cut && !s->nomem && (de = readdir(d))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if (++s->entries > ETC_LINKS_SCAN_MAX) {
                        s->cut = true;
                        break;
                }
                unsigned char type = de->d_type;
                if (type == DT_UNKNOWN) {
                        struct stat st;
                        if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
                }
                if (type == DT_LNK) {
                        char target[PATH_MAX];
                        ssize_t tl = readlinkat(dirfd, n, target, sizeof(target) - 1);
                        if (tl > 0) {
                                target[tl] = '\0';
                                path[len] = '\0';
                                consider(s, path, n, target);
                        }
                        continue;
                }
                if (type != DT_DIR)
                        continue;
                size_t nl = strlen(n);
                if (depth >= ETC_LINKS_SCAN_DEPTH || len + 1 + nl >= PATH_MAX) {
                        s->too_deep++;
                        continue;
                }
                int sub = openat(dirfd, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue;
                path[len] = '/';
                memcpy(path + len + 1, n, nl + 1);
                walk(sub, path, len + 1 + nl, depth + 1, s);
                path[len] = '\0';
                close(sub);
        }
        closedir(d);
}

/* True when the directory `dirfd` is within the bounds of a tree a microVM's skeleton
 * copies (host/etc_synth.h): a sandbox binds it whole, so one over them would make the
 * two backends' /etc differ, or the microVM refuse to start. */
static bool tree_fits(int dirfd, int depth, size_t *entries, size_t *bytes)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return true; /* unreadable: etc_synth leaves it out anyway */
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return true;
        }
        bool fits = true;
        struct dirent *de;
        while (fits && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (++*entries > ETC_TREE_ENTRIES) {
                        fits = false;
                        break;
                }
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISREG(st.st_mode)) {
                        *bytes += (size_t)st.st_size;
                        fits = *bytes <= ETC_TREE_BYTES;
                } else if (S_ISDIR(st.st_mode)) {
                        if (depth <= 0) {
                                fits = false;
                                break;
                        }
                        int sub = openat(dirfd, de->d_name,
                                         O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0) {
                                fits = tree_fits(sub, depth - 1, entries, bytes);
                                close(sub);
                        }
                }
        }
        closedir(d);
        return fits;
}

/* Drops the names that are directories over a tree's bounds, saying so. */
static void drop_big_trees(const char *root, struct scan *s, FILE *warn)
{
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/etc/%s", strcmp(root, "/") ? root : "", s->v[i]);
                _cleanup_close_ int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                size_t entries = 0, bytes = 0;
                if (fd >= 0 && !tree_fits(fd, ETC_TREE_DEPTH, &entries, &bytes)) {
                        if (warn)
                                fprintf(warn,
                                        "/etc/%s (linked from /usr) is left out of host-system "
                                        "tenants' /etc: more than %d entries, %d levels or %u "
                                        "bytes\n",
                                        s->v[i], ETC_TREE_ENTRIES, ETC_TREE_DEPTH, ETC_TREE_BYTES);
                        free(s->v[i]);
                        continue;
                }
                s->v[k++] = s->v[i];
        }
        s->n = k;
}

int etc_links_scan(const char *root, struct etc_links *ret, FILE *warn, struct tn_err **err)
{
        char usr[PATH_MAX];
        snprintf(usr, sizeof(usr), "%s/usr", strcmp(root, "/") ? root : "");
        _cleanup_close_ int fd = open(usr, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open %s", usr);
        struct scan s = {0};
        char path[PATH_MAX] = "/usr";
        walk(fd, path, strlen(path), 0, &s);
        compact(&s);
        if (s.nomem) {
                etc_links_clear(&(struct etc_links){s.v, s.n});
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        drop_big_trees(root, &s, warn);
        if (warn && s.cut)
                fprintf(warn,
                        "%s has more than %u entries: links into /etc past them are not "
                        "indexed\n",
                        usr, ETC_LINKS_SCAN_MAX);
        if (warn && s.too_deep)
                fprintf(warn, "%zu directories of %s deeper than %d levels were not indexed\n",
                        s.too_deep, usr, ETC_LINKS_SCAN_DEPTH);
        if (s.n > ETC_LINKS_MAX || s.dropped) {
                if (warn)
                        fprintf(warn,
                                "%s links to more than %d entries of /etc: host-system tenants "
                                "get the first %d by name\n",
                                usr, ETC_LINKS_MAX, ETC_LINKS_MAX);
                for (size_t i = ETC_LINKS_MAX; i < s.n; i++)
                        free(s.v[i]);
                if (s.n > ETC_LINKS_MAX)
                        s.n = ETC_LINKS_MAX;
        }
        *ret = (struct etc_links){s.v, s.n};
        return 0;
}

/* ---- the index file ---- */

/* The index at `path` if its key is `key`: -ESTALE when it is another's, -EBADMSG
 * (with a line in `warn`) when it is not one tenantd wrote. */
static int index_read(const char *path, const char *key, struct etc_links *ret, FILE *warn)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
                if (warn)
                        fprintf(warn,
                                "%s is not a file of tenantd's own (owner %u, mode %04o): "
                                "rebuilding it\n",
                                path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
                return -EBADMSG;
        }
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_fd_bounded(fd, ETC_LINKS_FILE_MAX, &text, &len);
        if (r < 0)
                return r;
        char *save = NULL, *line = strtok_r(text, "\n", &save);
        if (!line || strcmp(line, INDEX_HEADER) != 0)
                return -ESTALE; /* another version's */
        line = strtok_r(NULL, "\n", &save);
        if (!line || strncmp(line, "key ", 4) != 0 || strcmp(line + 4, key) != 0)
                return -ESTALE;
        struct etc_links l = {0};
        l.v = calloc(ETC_LINKS_MAX, sizeof(*l.v));
        if (!l.v)
                return -ENOMEM;
        for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (l.n == ETC_LINKS_MAX || !etc_link_name_valid(line) ||
                    (l.n > 0 && strcmp(l.v[l.n - 1], line) >= 0)) {
                        if (warn)
                                fprintf(warn,
                                        "%s: line %zu is not a name of an index "
                                        "(more than %d, out of order or not a relative "
                                        "path): rebuilding it\n",
                                        path, l.n + 3, ETC_LINKS_MAX);
                        etc_links_clear(&l);
                        return -EBADMSG;
                }
                if (!(l.v[l.n++] = strdup(line))) {
                        etc_links_clear(&l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

static int index_write(const char *path, const char *key, const struct etc_links *l,
                       struct tn_err **err)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return tn_err_setx(err, ENOMEM, "out of memory");
        fprintf(f, "%s\nkey %s\n", INDEX_HEADER, key);
        for (size_t i = 0; i < l->n; i++)
                fprintf(f, "%s\n", l->v[i]);
        if (fclose(f) != 0) {
                free(text);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        int r = write_file_atomic(path, text, len, 0600, err);
        free(text);
        return r;
}

int etc_links_load(const char *state_dir, const char *root, enum etc_links_mode mode,
                   struct etc_links *ret, FILE *warn, struct tn_err **err)
{
        char key[2048], path[PATH_MAX], lock[PATH_MAX];
        etc_links_key(root, key, sizeof(key));
        snprintf(path, sizeof(path), "%s/%s", state_dir, ETC_LINKS_FILE);
        snprintf(lock, sizeof(lock), "%s/%s.lock", state_dir, ETC_LINKS_FILE);
        if (mode == ETC_LINKS_CACHED && index_read(path, key, ret, warn) == 0)
                return 0;

        /* One rebuild at a time: whoever waited finds the new index. */
        (void)mkdir(state_dir, 0700);
        _cleanup_close_ int lfd =
            open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        int lock_errno = errno;
        if (lfd >= 0 && flock(lfd, LOCK_EX) == 0 && mode == ETC_LINKS_CACHED &&
            index_read(path, key, ret, NULL) == 0)
                return 0;
        struct etc_links l = {0};
        int r = etc_links_scan(root, &l, warn, err);
        if (r < 0)
                return tn_err_wrap(err, "cannot index the links of /usr into /etc");
        _cleanup_err_ struct tn_err *werr = NULL;
        if (lfd < 0 || index_write(path, key, &l, &werr) < 0) {
                if (warn)
                        fprintf(warn,
                                "cannot keep the index of /usr's links into /etc (%s): the "
                                "next start walks /usr again\n",
                                lfd < 0 ? strerror(lock_errno) : tn_err_msg(werr));
        }
        *ret = l;
        return 0;
}
