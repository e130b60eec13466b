/* etc_synth.c — see etc_synth.h. */
#include "host/etc_synth.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/etc_links.h"
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
/* Never taken for a /usr link, nor a tree that holds one of them: secrets, the
 * operator's accounts and their backups, and tenantd's and libvirt's own.
 * "environment" (systemd's environment.d links to it) is where operators put proxy
 * credentials and the like for every login: readable by the host's users, not the
 * tenants' business. */
static const char *const refused_names[] = {
    "shadow",      "shadow-",        "gshadow",
    "gshadow-",    "passwd-",        "group-",
    "subuid",      "subuid-",        "subgid",
    "subgid-",     "sudoers",        "sudoers.d",
    "ssh",         "ssl/private",    "machine-id",
    "tenantd",     "libvirt",        "crypttab",
    "fstab",       "security",       "pam.d",
    "wireguard",   "ipsec.secrets",  "ipsec.d",
    "krb5.keytab", "credstore",      "credstore.encrypted",
    "letsencrypt", "NetworkManager", "polkit-1",
    "openvpn",     "environment",
};

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

/* The host's link at `path` as `name`, with the same target; 0 when it cannot be read
 * (gone meanwhile): left out. */
static int add_link(struct etc_set *s, const char *name, const char *path)
{
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
                return 0;
        target[n] = '\0';
        char *copy = strdup(target);
        return copy ? add(s, name, ETC_LINK, copy, (size_t)n) : -ENOMEM;
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
        if (S_ISLNK(st.st_mode))
                return add_link(s, name, path);
        if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH))
                return 0; /* a file the operator keeps from others stays theirs */
        if ((size_t)st.st_size > ETC_FILE_MAX)
                return 0;          /* too large: the tenant does without */
        char *copy = strdup(path); /* copied by etc_write(), in the kernel */
        return copy ? add(s, name, ETC_COPY, copy, (size_t)st.st_size) : -ENOMEM;
}

/* True when `name` is `dir` or below it. */
static bool is_below(const char *name, const char *dir)
{
        size_t n = strlen(dir);
        return strncmp(name, dir, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

bool etc_fixed_covers(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(host_trees); i++)
                if (is_below(name, host_trees[i]))
                        return true;
        return false;
}

static bool refused(const char *name, bool tree)
{
        for (size_t i = 0; i < ARRAY_SIZE(refused_names); i++)
                if (is_below(name, refused_names[i]) || (tree && is_below(refused_names[i], name)))
                        return true;
        return false;
}

struct linked {
        const char *host_etc;
        size_t fixed_n; /* entries before the first linked one */
        size_t bytes, trees, inodes;
};

/* Whether an entry `name` of `kind` fits beside those of `s`: not one already there,
 * not below a file, link or tree, and (unless it is a tree) not over a directory that
 * others imply. A tree over linked entries replaces them. */
static bool fits(struct etc_set *s, const struct linked *l, const char *name, enum etc_kind kind)
{
        for (size_t i = 0; i < s->n; i++) {
                const char *e = s->v[i].name;
                if (is_below(name, e))
                        return false; /* the same, or below a file, link or tree */
                if (is_below(e, name) && (kind != ETC_TREE || i < l->fixed_n))
                        return false;
        }
        if (kind != ETC_TREE)
                return true;
        size_t k = l->fixed_n;
        for (size_t i = l->fixed_n; i < s->n; i++) {
                if (is_below(s->v[i].name, name)) {
                        free(s->v[i].name);
                        free(s->v[i].data);
                } else {
                        s->v[k++] = s->v[i];
                }
        }
        s->n = k;
        return true;
}

static size_t components(const char *name)
{
        size_t n = 1;
        for (; *name; name++)
                n += *name == '/';
        return n;
}

/* Adds what `name` is on the host, within the bounds; 1 when the bounds said no. */
static int add_bounded(struct etc_set *s, struct linked *l, const char *name, enum etc_kind kind,
                       const struct stat *st, const char *path)
{
        size_t inodes = components(name);
        if (l->inodes + inodes > ETC_LINKED_INODES)
                return 1;
        if (kind == ETC_TREE) {
                if (l->trees >= ETC_LINKED_TREES)
                        return 1;
                char *copy = strdup(path);
                if (!copy)
                        return -ENOMEM;
                l->trees++;
                l->inodes += inodes;
                return add(s, name, ETC_TREE, copy, strlen(copy));
        }
        if (kind == ETC_LINK) {
                l->inodes += inodes;
                return add_link(s, name, path);
        }
        size_t size = (size_t)st->st_size;
        if (size > ETC_FILE_MAX || size > ETC_LINKED_BYTES - l->bytes)
                return 1;
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        l->bytes += size;
        l->inodes += inodes;
        return add(s, name, ETC_COPY, copy, size);
}

/* The entry of the host's /etc that a /usr link names, decided as the fixed ones are
 * (etc_synth.h), following links that stay inside /etc. */
static int add_linked(struct etc_set *s, struct linked *l, const char *start)
{
        char cur[ETC_LINK_NAME_MAX + 1];
        size_t start_len = strlen(start);
        if (start_len >= sizeof(cur))
                return 0;
        memcpy(cur, start, start_len + 1);
        for (int hop = 0; hop <= ETC_LINKED_HOPS; hop++) {
                if (!etc_link_name_valid(cur))
                        return 0;
                size_t len = strlen(cur);
                for (size_t end = 0; end < len;) {
                        const char *slash = strchr(cur + end, '/');
                        end = slash ? (size_t)(slash - cur) : len;
                        bool last = end == len;
                        char name[ETC_LINK_NAME_MAX + 1], path[PATH_MAX];
                        memcpy(name, cur, end);
                        name[end] = '\0';
                        int pn = snprintf(path, sizeof(path), "%s/%s", l->host_etc, name);
                        end++;
                        struct stat st;
                        if (pn < 0 || (size_t)pn >= sizeof(path) || refused(name, false) ||
                            lstat(path, &st) < 0)
                                return 0;
                        if (S_ISLNK(st.st_mode)) {
                                int r = fits(s, l, name, ETC_LINK)
                                            ? add_bounded(s, l, name, ETC_LINK, &st, path)
                                            : 0;
                                if (r != 0)
                                        return r;
                                /* Go on with what it names, if that is inside /etc. */
                                char target[PATH_MAX], next[PATH_MAX * 2];
                                ssize_t n = readlink(path, target, sizeof(target) - 1);
                                if (n <= 0)
                                        return 0;
                                target[n] = '\0';
                                const char *rest = last ? "" : cur + end;
                                if (target[0] == '/')
                                        snprintf(next, sizeof(next), "%s/%s", target, rest);
                                else
                                        snprintf(next, sizeof(next), "/etc/%s/../%s/%s", name,
                                                 target, rest);
                                etc_path_normalize(next);
                                if (strncmp(next, "/etc/", 5) != 0 ||
                                    strlen(next + 5) >= sizeof(cur))
                                        return 0;
                                memcpy(cur, next + 5, strlen(next + 5) + 1);
                                break;
                        }
                        if (!last) {
                                if (!S_ISDIR(st.st_mode) || !(st.st_mode & S_IXOTH))
                                        return 0; /* others could not reach it */
                                continue;
                        }
                        if (S_ISREG(st.st_mode) && (st.st_mode & S_IROTH))
                                return fits(s, l, name, ETC_COPY)
                                           ? add_bounded(s, l, name, ETC_COPY, &st, path)
                                           : 0;
                        if (S_ISDIR(st.st_mode) && (st.st_mode & 05) == 05 && !refused(name, true))
                                return fits(s, l, name, ETC_TREE)
                                           ? add_bounded(s, l, name, ETC_TREE, &st, path)
                                           : 0;
                        return 0; /* anything else, or what others may not read */
                }
        }
        return 0;
}

int etc_synthesize(const struct manifest *m, const char *host_etc, const struct etc_links *links,
                   struct etc_set *ret, struct tn_err **err)
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
        struct linked l = {.host_etc = host_etc, .fixed_n = s.n};
        for (size_t i = 0; r >= 0 && links && i < links->n; i++) {
                r = add_linked(&s, &l, links->v[i]);
                if (r > 0) {
                        s.left_out++;
                        r = 0;
                }
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

/* The host file `source` as `name` in `dirfd`, at most `max` bytes, copied by the
 * kernel (sendfile): nothing of it passes through this process. */
static int copy_file_at(int dirfd, const char *name, const char *source, size_t max)
{
        _cleanup_close_ int in = open(source, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH))
                return 0; /* gone or changed since etc_synthesize(): left out */
        _cleanup_close_ int out =
            openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0)
                return -errno;
        if (fchmod(out, 0644) < 0) /* whatever the umask */
                return -errno;
        for (size_t left = max; left > 0;) {
                ssize_t n = sendfile(out, in, NULL, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                left -= (size_t)n;
        }
        return 0;
}

int etc_write(const struct etc_set *s, int etcdir, struct tn_err **err)
{
        /* The last entry's directory, kept for the next one in it: the linked entries
         * come sorted, many in one directory (java-17-openjdk/security/...). */
        _cleanup_close_ int dir = -1;
        size_t dir_len = 0;
        const char *dir_name = NULL;
        for (size_t i = 0; i < s->n; i++) {
                const struct etc_entry *e = &s->v[i];
                if (e->kind == ETC_TREE)
                        continue;
                const char *slash = strrchr(e->name, '/');
                size_t len = slash ? (size_t)(slash - e->name) : 0;
                const char *base = slash ? slash + 1 : e->name;
                if (dir < 0 || !dir_name || len != dir_len ||
                    strncmp(e->name, dir_name, len) != 0) {
                        closep(&dir);
                        dir = open_parent(etcdir, e->name, &base);
                        dir_name = e->name;
                        dir_len = len;
                }
                if (dir < 0)
                        return tn_err_set(err, -dir, "cannot create the directory of /etc/%s",
                                          e->name);
                int r = e->kind == ETC_LINK   ? (symlinkat(e->data, dir, base) < 0 ? -errno : 0)
                        : e->kind == ETC_COPY ? copy_file_at(dir, base, e->data, e->len)
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
