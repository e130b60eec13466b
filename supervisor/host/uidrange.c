/* uidrange.c — stable, disjoint host id ranges per tenant (see uidrange.h).
 *
 * The file is read and rewritten under an exclusive flock on STATE_DIR/uidranges.lock,
 * so two supervisors (or a daemon and `tenantctl run`) never hand out the same range.
 * A new record is written to a temporary file, fsynced, renamed over the old one and
 * the directory fsynced, so a crash leaves either the old or the new file whole. */
#include "host/uidrange.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "lib/fileio.h"
#include "lib/strutil.h"

#define MAX_FILE (4U << 20)

struct range {
        uint64_t start, len;
};

/* Reads "user:start:count" lines of /etc/subuid or /etc/subgid into *ranges. A missing
 * file is no error. */
static int read_subid(const char *path, struct range **ranges, size_t *n)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        char line[512];
        while (fgets(line, sizeof(line), f)) {
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                char *end;
                unsigned long long start = strtoull(c1 + 1, &end, 10);
                if (end != c2)
                        continue;
                unsigned long long count = strtoull(c2 + 1, &end, 10);
                struct range *nr = reallocarray(*ranges, *n + 1, sizeof(**ranges));
                if (!nr)
                        return -ENOMEM;
                *ranges = nr;
                (*ranges)[(*n)++] = (struct range){start, count};
        }
        return 0;
}

static bool overlaps(const struct range *r, size_t n, uint64_t start, uint64_t len)
{
        for (size_t i = 0; i < n; i++)
                if (start < r[i].start + r[i].len && r[i].start < start + len)
                        return true;
        return false;
}

/* Reads the "NAME BASE" records in `text` (which it cuts up): the base recorded for
 * `name` if any (returns 1), and every recorded range in *used. */
static int parse_records(char *text, const char *name, uint32_t *ret_base, struct range **used,
                         size_t *n_used, struct tn_err **err)
{
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char rec_name[64];
                unsigned long base;
                if (sscanf(line, "%63s %lu", rec_name, &base) != 2 || base > UINT32_MAX)
                        return tn_err_setx(err, EBADMSG, "uidranges: malformed line \"%.60s\"",
                                           line);
                if (strcmp(rec_name, name) == 0) {
                        *ret_base = (uint32_t)base;
                        return 1;
                }
                struct range *nr = reallocarray(*used, *n_used + 1, sizeof(**used));
                if (!nr)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                *used = nr;
                (*used)[(*n_used)++] = (struct range){base, UIDRANGE_SIZE};
        }
        return 0;
}

static int read_all(int fd, char *buf, size_t max, size_t *ret_len)
{
        size_t len = 0;
        while (len < max) {
                ssize_t r = read(fd, buf + len, max - len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        break;
                len += (size_t)r;
        }
        *ret_len = len;
        return 0;
}

int uidrange_get(const char *state_dir, const char *name, uint32_t first_base, uint32_t *ret_base,
                 struct tn_err **err)
{
        if (!is_simple_name(name))
                return tn_err_setx(err, EINVAL, "invalid tenant name \"%s\"", name);
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create state directory %s", state_dir);
        _cleanup_close_ int dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return tn_err_set(err, errno, "cannot open state directory %s", state_dir);
        _cleanup_close_ int lockfd =
            openat(dirfd, "uidranges.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
                return tn_err_set(err, errno, "cannot lock %s/uidranges.lock", state_dir);

        /* The current records, and a copy to rewrite with one more line. */
        _cleanup_free_ char *text = calloc(1, MAX_FILE + 1);
        _cleanup_free_ char *out = malloc(MAX_FILE + 128);
        if (!text || !out)
                return tn_err_setx(err, ENOMEM, "out of memory");
        size_t len = 0;
        _cleanup_close_ int fd = openat(dirfd, "uidranges", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT)
                return tn_err_set(err, errno, "cannot read %s/uidranges", state_dir);
        if (fd >= 0 && read_all(fd, text, MAX_FILE, &len) < 0)
                return tn_err_set(err, errno, "cannot read %s/uidranges", state_dir);
        memcpy(out, text, len);

        _cleanup_free_ struct range *used = NULL;
        size_t n_used = 0;
        int r = parse_records(text, name, ret_base, &used, &n_used, err);
        if (r != 0)
                return r < 0 ? tn_err_wrap(err, "%s", state_dir) : 0;

        r = read_subid("/etc/subuid", &used, &n_used);
        if (r >= 0)
                r = read_subid("/etc/subgid", &used, &n_used);
        if (r < 0)
                return tn_err_set(err, -r, "cannot read /etc/subuid or /etc/subgid");

        for (uint32_t i = 0; i < UIDRANGE_MAX_TENANTS; i++) {
                uint64_t base = (uint64_t)first_base + (uint64_t)i * UIDRANGE_SIZE;
                if (base + UIDRANGE_SIZE > 0xFFFFFFFEULL)
                        break;
                if (overlaps(used, n_used, base, UIDRANGE_SIZE))
                        continue;
                if (len && out[len - 1] != '\n')
                        out[len++] = '\n';
                len +=
                    (size_t)snprintf(out + len, 100, "%s %llu\n", name, (unsigned long long)base);
                r = write_file_atomic_at(dirfd, "uidranges", out, len, 0600, err);
                if (r < 0)
                        return tn_err_wrap(err, "%s", state_dir);
                *ret_base = (uint32_t)base;
                return 0;
        }
        return tn_err_setx(err, ENOSPC, "no free uid range left for \"%s\"", name);
}

int uidrange_probe_id(const char *state_dir, uint32_t first_base, uint32_t *ret_id,
                      struct tn_err **err)
{
        if (first_base < 2)
                return tn_err_setx(err, EINVAL, "the first uid range starts at %u: no id below it",
                                   first_base);
        uint32_t id = first_base - 1;
        _cleanup_free_ char *text = calloc(1, MAX_FILE + 1);
        if (!text)
                return tn_err_setx(err, ENOMEM, "out of memory");
        char path[4096];
        snprintf(path, sizeof(path), "%s/uidranges", state_dir);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t len = 0;
        if (fd < 0 && errno != ENOENT)
                return tn_err_set(err, errno, "cannot read %s", path);
        if (fd >= 0 && read_all(fd, text, MAX_FILE, &len) < 0)
                return tn_err_set(err, errno, "cannot read %s", path);
        _cleanup_free_ struct range *used = NULL;
        size_t n_used = 0;
        uint32_t unused;
        /* "" is no tenant's name: every record lands in `used`. */
        if (parse_records(text, "", &unused, &used, &n_used, err) < 0)
                return tn_err_wrap(err, "%s", state_dir);
        if (overlaps(used, n_used, id, 1))
                return tn_err_setx(err, EEXIST,
                                   "host id %u is in a tenant's range recorded in %s (a "
                                   "supervisor with a lower first uid handed it out)",
                                   id, path);
        n_used = 0;
        int r = read_subid("/etc/subuid", &used, &n_used);
        if (r >= 0)
                r = read_subid("/etc/subgid", &used, &n_used);
        if (r < 0)
                return tn_err_set(err, -r, "cannot read /etc/subuid or /etc/subgid");
        if (overlaps(used, n_used, id, 1))
                return tn_err_setx(err, EEXIST,
                                   "host id %u is in an /etc/subuid or /etc/subgid range", id);
        const struct passwd *pw = getpwuid(id);
        if (pw)
                return tn_err_setx(err, EEXIST, "host id %u is the uid of the account \"%s\"", id,
                                   pw->pw_name);
        const struct group *gr = getgrgid(id);
        if (gr)
                return tn_err_setx(err, EEXIST, "host id %u is the gid of the group \"%s\"", id,
                                   gr->gr_name);
        *ret_id = id;
        return 0;
}
