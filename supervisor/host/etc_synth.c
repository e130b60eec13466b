/* etc_synth.c — see etc_synth.h. */
#include "host/etc_synth.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/net.h"
#include "lib/fileio.h"

/* Taken from the host as what they are there (link or regular file). Each holds no
 * secret; each is read by name or reached through a link of /usr's. */
static const char *const host_entries[] = {
    "ld.so.cache",  "localtime", "timezone",        "os-release", "debian_version",
    "services",     "protocols", "host.conf",       "gai.conf",   "mime.types",
    "locale.alias", "mtab",      "ssl/openssl.cnf",
};
/* Host directories of links, whole. */
static const char *const host_trees[] = {"alternatives", "ssl/certs"};

static int add(struct etc_set *s, const char *name, enum etc_kind kind, char *data, size_t len)
{
        struct etc_entry *v = reallocarray(s->v, s->n + 1, sizeof(*v));
        char *copy = strdup(name);
        if (!v || !copy) {
                if (v)
                        s->v = v;
                free(copy);
                free(data);
                return -ENOMEM;
        }
        s->v = v;
        s->v[s->n++] = (struct etc_entry){copy, kind, data, len};
        return 0;
}

static int add_text(struct etc_set *s, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_text(struct etc_set *s, const char *name, const char *fmt, ...)
{
        char *text = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return add(s, name, ETC_FILE, text, (size_t)n);
}

/* Ends the memstream `f` and adds what it holds as the file `name`. */
static int add_stream(struct etc_set *s, const char *name, FILE *f, char **text, size_t *len)
{
        if (fclose(f) != 0) {
                free(*text);
                return -ENOMEM;
        }
        return add(s, name, ETC_FILE, *text, *len);
}

/* System accounts (ids 1..999) of the host's passwd or group file, so that services
 * installed with apt find their users ("www-data", "redis") by name. Human accounts
 * (1000 and up) and every password field stay out. */
static void append_system_accounts(const char *path, bool is_group, FILE *out)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return;
        char line[1024];
        while (fgets(line, sizeof(line), f)) {
                char *fields[4] = {0};
                char *save = NULL, *tok = strtok_r(line, ":\n", &save);
                int n = 0;
                for (; tok && n < 4; tok = strtok_r(NULL, ":\n", &save))
                        fields[n++] = tok;
                if (n < 3)
                        continue;
                /* passwd: name:x:uid:gid:... ; group: name:x:gid:members */
                char *end;
                unsigned long id = strtoul(fields[2], &end, 10);
                if (*end || id == 0 || id >= 1000)
                        continue;
                if (is_group)
                        fprintf(out, "%s:x:%lu:\n", fields[0], id);
                else if (n >= 4)
                        fprintf(out, "%s:x:%lu:%s:%s:/nonexistent:/usr/sbin/nologin\n", fields[0],
                                id, fields[3], fields[0]);
        }
}

static int accounts(const struct manifest *m, const char *host_etc, struct etc_set *s)
{
        char path[PATH_MAX];
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "root:x:0:0:root:/root:/bin/sh\n");
        snprintf(path, sizeof(path), "%s/passwd", host_etc);
        append_system_accounts(path, false, f);
        if (m->uid != 0 && m->uid != 65534)
                fprintf(f, "%s:x:%u:%u:%s:/:/usr/sbin/nologin\n", m->name, m->uid, m->gid, m->name);
        fprintf(f, "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        int r = add_stream(s, "passwd", f, &text, &len);
        if (r < 0)
                return r;

        text = NULL;
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "root:x:0:\n");
        snprintf(path, sizeof(path), "%s/group", host_etc);
        append_system_accounts(path, true, f);
        if (m->gid != 0 && m->gid != 65534)
                fprintf(f, "%s:x:%u:\n", m->name, m->gid);
        fprintf(f, "nogroup:x:65534:\n");
        return add_stream(s, "group", f, &text, &len);
}

/* resolv.conf: the resolvers net_resolvers() picks, which the tenant's firewall lets
 * it reach; with network.mode "none" there is nothing to resolve with. A microVM's
 * agent writes the same resolvers over it when the guest has a network. */
static int resolv_conf(const struct manifest *m, struct etc_set *s)
{
        char dns[NET_MAX_RESOLVERS][16];
        size_t n = net_resolvers(m, dns);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        if (m->network.mode == NET_NONE)
                fprintf(f, "# network.mode is \"none\": no resolver\n");
        else if (n == 0)
                fprintf(f, "# no IPv4 resolver a tenant can reach: set network.dns\n");
        for (size_t i = 0; i < n; i++)
                fprintf(f, "nameserver %s\n", dns[i]);
        return add_stream(s, "resolv.conf", f, &text, &len);
}

/* One entry of the host's, as what it is: a link (its target) or a regular file (its
 * content, bounded); anything else, or nothing, is left out. */
static int host_entry(const char *host_etc, const char *name, struct etc_set *s)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", host_etc, name);
        struct stat st;
        if (lstat(path, &st) < 0)
                return 0;
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                if (n <= 0)
                        return 0;
                target[n] = '\0';
                char *copy = strdup(target);
                return copy ? add(s, name, ETC_LINK, copy, (size_t)n) : -ENOMEM;
        }
        if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH))
                return 0; /* a file the operator keeps from others stays theirs */
        char *data = NULL;
        size_t len;
        if (read_file_bounded(path, ETC_FILE_MAX, &data, &len, NULL) < 0)
                return 0; /* unreadable or too large: the tenant does without */
        return add(s, name, ETC_FILE, data, len);
}

int etc_synthesize(const struct manifest *m, const char *host_etc, struct etc_set *ret,
                   struct tn_err **err)
{
        struct etc_set s = {0};
        int r = accounts(m, host_etc, &s);
        if (r >= 0)
                r = add_text(&s, "hostname", "%s\n", m->name);
        if (r >= 0)
                r = add_text(&s, "hosts",
                             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                             "127.0.1.1\t%s\n",
                             m->name);
        if (r >= 0)
                r = add_text(&s, "nsswitch.conf",
                             "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                             "networks: files\nprotocols: files\nservices: files\n");
        if (r >= 0)
                r = resolv_conf(m, &s);
        for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(host_entries); i++)
                r = host_entry(host_etc, host_entries[i], &s);
        for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(host_trees); i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s", host_etc, host_trees[i]);
                struct stat st;
                if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                char *copy = strdup(path);
                r = copy ? add(&s, host_trees[i], ETC_TREE, copy, strlen(copy)) : -ENOMEM;
        }
        if (r < 0) {
                etc_set_clear(&s);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        *ret = s;
        return 0;
}

void etc_set_clear(struct etc_set *s)
{
        for (size_t i = 0; i < s->n; i++) {
                free(s->v[i].name);
                free(s->v[i].data);
        }
        free(s->v);
        *s = (struct etc_set){0};
}

/* The directory holding `name` below `etcdir`, its parents made 0755 and never
 * followed if they are links; *ret_base is the last component. */
static int open_parent(int etcdir, const char *name, const char **ret_base)
{
        int dir = fcntl(etcdir, F_DUPFD_CLOEXEC, 3);
        if (dir < 0)
                return -errno;
        const char *p = name;
        for (const char *slash; (slash = strchr(p, '/'));) {
                char part[NAME_MAX + 1];
                size_t n = (size_t)(slash - p);
                if (n == 0 || n > NAME_MAX) {
                        close(dir);
                        return -EINVAL;
                }
                memcpy(part, p, n);
                part[n] = '\0';
                if (mkdirat(dir, part, 0755) < 0 && errno != EEXIST) {
                        int e = errno;
                        close(dir);
                        return -e;
                }
                int next = openat(dir, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int e = errno;
                close(dir);
                if (next < 0)
                        return -e;
                dir = next;
                p = slash + 1;
        }
        *ret_base = p;
        return dir;
}

static int write_file_at(int dirfd, const char *name, const char *data, size_t len)
{
        _cleanup_close_ int fd =
            openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0644) < 0) /* whatever the umask */
                return -errno;
        return write_all(fd, data, len);
}

int etc_write(const struct etc_set *s, int etcdir, struct tn_err **err)
{
        for (size_t i = 0; i < s->n; i++) {
                const struct etc_entry *e = &s->v[i];
                if (e->kind == ETC_TREE)
                        continue;
                const char *base = e->name; /* open_parent sets the last component */
                _cleanup_close_ int dir = open_parent(etcdir, e->name, &base);
                if (dir < 0)
                        return tn_err_set(err, -dir, "cannot create the directory of /etc/%s",
                                          e->name);
                int r = e->kind == ETC_LINK ? (symlinkat(e->data, dir, base) < 0 ? -errno : 0)
                                            : write_file_at(dir, base, e->data, e->len);
                if (r < 0)
                        return tn_err_set(err, -r, "cannot create /etc/%s", e->name);
        }
        return 0;
}

/* The whole of the regular file open at `fd`, at most `max` bytes (-EFBIG past). */
static int read_regular(int fd, size_t max, char **ret, size_t *ret_len)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((size_t)st.st_size > max)
                return -EFBIG;
        return read_fd_bounded(fd, max, ret, ret_len); /* grown past max while read: -EFBIG */
}

struct tree_budget {
        size_t entries;
        size_t bytes;
};

/* Copies what the directory `src` (open) holds into `dst` (open), `depth` levels
 * more at most. Only what others may read, as a sandbox's bind shows it to the tenant's
 * unprivileged host ids: a file without o+r or a directory without o+rx is left out,
 * though tenantd, as root, could read it. */
static int copy_dir(int src, int dst, const char *where, int depth, struct tree_budget *b,
                    struct tn_err **err)
{
        int fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot read %s", where);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return tn_err_set(err, errno, "cannot read %s", where);
        }
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if (++b->entries > ETC_TREE_ENTRIES) {
                        r = tn_err_setx(err, E2BIG, "%s: more than %d entries", where,
                                        ETC_TREE_ENTRIES);
                        break;
                }
                struct stat st;
                if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t len = readlinkat(src, n, target, sizeof(target) - 1);
                        if (len <= 0)
                                continue;
                        target[len] = '\0';
                        if (symlinkat(target, dst, n) < 0)
                                r = tn_err_set(err, errno, "cannot copy %s/%s", where, n);
                } else if (S_ISREG(st.st_mode) && (st.st_mode & S_IROTH)) {
                        if ((size_t)st.st_size > ETC_TREE_BYTES - b->bytes) {
                                r = tn_err_setx(err, E2BIG, "%s: more than %u bytes", where,
                                                ETC_TREE_BYTES);
                                break;
                        }
                        _cleanup_close_ int in =
                            openat(src, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        _cleanup_free_ char *data = NULL;
                        size_t len = 0;
                        if (in < 0 || read_regular(in, ETC_TREE_BYTES - b->bytes, &data, &len) < 0)
                                continue; /* unreadable: left out, as a sandbox cannot read it */
                        b->bytes += len;
                        r = write_file_at(dst, n, data, len);
                        if (r < 0)
                                r = tn_err_set(err, -r, "cannot copy %s/%s", where, n);
                } else if (S_ISDIR(st.st_mode) && (st.st_mode & 05) == 05 && depth > 0) {
                        _cleanup_close_ int sub =
                            openat(src, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0)
                                continue;
                        if (mkdirat(dst, n, 0755) < 0) {
                                r = tn_err_set(err, errno, "cannot copy %s/%s", where, n);
                                break;
                        }
                        _cleanup_close_ int out =
                            openat(dst, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (out < 0) {
                                r = tn_err_set(err, errno, "cannot copy %s/%s", where, n);
                                break;
                        }
                        char sub_where[PATH_MAX];
                        snprintf(sub_where, sizeof(sub_where), "%s/%s", where, n);
                        r = copy_dir(sub, out, sub_where, depth - 1, b, err);
                }
        }
        closedir(d);
        return r;
}

int etc_tree_copy(int etcdir, const char *name, const char *source, struct tn_err **err)
{
        _cleanup_close_ int src = open(source, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (src < 0)
                return tn_err_set(err, errno, "cannot open %s", source);
        const char *base = name; /* open_parent sets the last component */
        _cleanup_close_ int parent = open_parent(etcdir, name, &base);
        if (parent < 0)
                return tn_err_set(err, -parent, "cannot create the directory of /etc/%s", name);
        if (mkdirat(parent, base, 0755) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create /etc/%s", name);
        _cleanup_close_ int dst =
            openat(parent, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dst < 0)
                return tn_err_set(err, errno, "cannot open /etc/%s", name);
        struct tree_budget b = {0};
        return copy_dir(src, dst, source, ETC_TREE_DEPTH, &b, err);
}
