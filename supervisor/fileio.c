/* fileio.c — bounded whole-file reads (see fileio.h). */
#include "fileio.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

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

        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return tn_err_setx(err, ENOMEM, "out of memory reading %s", path);
        for (;;) {
                if (len == cap) {
                        if (cap > max_bytes)
                                return tn_err_setx(err, EFBIG,
                                                   "%s is larger than the limit of %zu bytes", path,
                                                   max_bytes);
                        size_t ncap = cap * 2;
                        char *nbuf = realloc(buf, ncap + 1);
                        if (!nbuf)
                                return tn_err_setx(err, ENOMEM, "out of memory reading %s", path);
                        buf = nbuf;
                        cap = ncap;
                }
                ssize_t n = read(in, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return tn_err_set(err, errno, "cannot read %s", path);
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max_bytes)
                return tn_err_setx(err, EFBIG, "%s is larger than the limit of %zu bytes", path,
                                   max_bytes);
        buf[len] = '\0';
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}
