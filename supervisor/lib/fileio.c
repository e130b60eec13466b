/* fileio.c — bounded whole-file reads, descriptors (see fileio.h). */
#include "lib/fileio.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int read_file_bounded(const char *path, size_t max_bytes, char **ret_buf, size_t *ret_len,
                      struct tn_err **err)
{
        _cleanup_close_ int fd = -1;
        int in = STDIN_FILENO;
        if (strcmp(path, "-") != 0) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0)
                        return tn_err_set(err, errno, "cannot open %s", path);
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return tn_err_set(err, errno, "cannot stat %s", path);
                if (S_ISDIR(st.st_mode))
                        return tn_err_setx(err, EISDIR, "%s is a directory", path);
                if (!S_ISREG(st.st_mode))
                        return tn_err_setx(err, EINVAL, "%s is not a regular file", path);
                if ((size_t)st.st_size > max_bytes)
                        return tn_err_setx(err, EFBIG, "%s is %lld bytes; the limit is %zu bytes",
                                           path, (long long)st.st_size, max_bytes);
                /* The size check above is advisory (the file may grow): the read below
                 * enforces the limit on its own. */
                int flags = fcntl(fd, F_GETFL);
                if (flags >= 0)
                        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
                in = fd;
        }

        int r = read_fd_bounded(in, max_bytes, ret_buf, ret_len);
        if (r == -EFBIG)
                return tn_err_setx(err, EFBIG, "%s is larger than the limit of %zu bytes", path,
                                   max_bytes);
        if (r == -ENOMEM)
                return tn_err_setx(err, ENOMEM, "out of memory reading %s", path);
        if (r < 0)
                return tn_err_set(err, -r, "cannot read %s", path);
        return 0;
}

int read_fd_bounded(int fd, size_t max_bytes, char **ret_buf, size_t *ret_len)
{
        if (max_bytes > SIZE_MAX / 4)
                return -EINVAL;
        size_t cap = max_bytes < 4096 ? max_bytes + 1 : 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (len > max_bytes)
                                return -EFBIG;
                        size_t ncap = cap > max_bytes / 2 ? max_bytes + 1 : cap * 2;
                        char *nbuf = realloc(buf, ncap + 1);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max_bytes)
                return -EFBIG;
        buf[len] = '\0';
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

ssize_t read_small_file(const char *path, char *buf, size_t size)
{
        if (size == 0)
                return -EINVAL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t len = 0;
        while (len < size - 1) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return (ssize_t)len;
}

int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ENOSPC;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* write_file_atomic_at, its messages naming the file `shown`. */
static int atomic_at(int dirfd, const char *name, const char *shown, const void *buf, size_t len,
                     mode_t mode, struct tn_err **err)
{
        if (!*name || strchr(name, '/'))
                return tn_err_setx(err, EINVAL, "\"%s\": not a file name", name);
        /* The temporary file is hidden (a leading dot: tenantd's directory scans skip
         * it) and named after this process, so two writers never share one. O_EXCL and
         * O_NOFOLLOW: a symlink or file planted under that name is never written
         * through; one left by a crashed writer with a reused pid is removed first. */
        char tmp[NAME_MAX + 1];
        if (snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid()) >= (int)sizeof(tmp))
                return tn_err_setx(err, ENAMETOOLONG, "%s: name too long", shown);
        int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
        _cleanup_close_ int fd = openat(dirfd, tmp, flags, mode);
        if (fd < 0 && errno == EEXIST && unlinkat(dirfd, tmp, 0) == 0)
                fd = openat(dirfd, tmp, flags, mode);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot create a temporary file for %s", shown);
        /* The mode asked for, whatever the umask took away. */
        int r = fchmod(fd, mode) < 0 ? -errno : write_all(fd, buf, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dirfd, tmp, 0);
                return tn_err_set(err, -r, "cannot write %s", shown);
        }
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                int e = errno;
                (void)unlinkat(dirfd, tmp, 0);
                return tn_err_set(err, e, "cannot replace %s", shown);
        }
        if (fsync(dirfd) < 0)
                return tn_err_set(err, errno, "cannot sync the directory of %s", shown);
        return 0;
}

int write_file_atomic_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                         struct tn_err **err)
{
        return atomic_at(dirfd, name, name, buf, len, mode, err);
}

int write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                      struct tn_err **err)
{
        /* The directory: what comes before the last '/', or "." (a path of one name in
         * the working directory). */
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else if (slash == path)
                snprintf(dir, sizeof(dir), "/");
        else if (snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) >= (int)sizeof(dir))
                return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", path);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return tn_err_set(err, errno, "cannot open %s", dir);
        return atomic_at(dfd, slash ? slash + 1 : path, path, buf, len, mode, err);
}

void fd_close_all_but(const int *keep, size_t n)
{
        /* The descriptors to keep, sorted (a handful: insertion sort, no allocation),
         * then every gap between them closed. */
        unsigned sorted[FD_KEEP_MAX];
        size_t k = 0;
        for (size_t i = 0; i < n && k < ARRAY_SIZE(sorted); i++) {
                if (keep[i] < 3)
                        continue;
                size_t j = k++;
                for (; j > 0 && sorted[j - 1] > (unsigned)keep[i]; j--)
                        sorted[j] = sorted[j - 1];
                sorted[j] = (unsigned)keep[i];
        }
        unsigned from = 3;
        for (size_t i = 0; i < k; i++) {
                if (sorted[i] > from)
                        (void)close_range(from, sorted[i] - 1, 0);
                if (sorted[i] + 1 > from)
                        from = sorted[i] + 1;
        }
        (void)close_range(from, ~0U, 0);
}
