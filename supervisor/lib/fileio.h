/* fileio.h — reading small files whole, with a hard size limit; descriptors. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

/* Reads the regular file at `path` (a FIFO, device or directory is refused) into a
 * NUL-terminated buffer. A file larger than max_bytes fails with -EFBIG without being
 * read whole. "-" reads standard input (same limit). */
int read_file_bounded(const char *path, size_t max_bytes, char **ret_buf, size_t *ret_len,
                      struct tn_err **err);

/* Reads what is left of the open descriptor `fd` (any kind: a file, a pipe, a memfd)
 * into a NUL-terminated buffer of at most max_bytes: -EFBIG when there is more (it
 * stops reading there), -errno when a read fails. The one read loop under the others. */
int read_fd_bounded(int fd, size_t max_bytes, char **ret_buf, size_t *ret_len);

/* Reads at most size-1 bytes of the small file at `path` (a /proc, /sys or pid file;
 * a symbolic link as the last component is refused) into buf, NUL-terminated, again
 * after EINTR and short reads. Returns the count, or -errno. The one such reader of
 * tenantd, the runner and the guest agent. */
ssize_t read_small_file(const char *path, char *buf, size_t size);

/* Writes all of buf to fd, again after EINTR and short writes (a blocking descriptor).
 * Returns 0, or -errno; a write that returns 0 counts as -ENOSPC. The one write loop of
 * tenantd, tenantctl, the runner and the guest agent. */
int write_all(int fd, const void *buf, size_t len);

/* Replaces `path` whole or not at all: the data goes to a temporary file beside it
 * (".NAME.PID.tmp", created with O_EXCL|O_NOFOLLOW), which gets `mode`, is fsynced,
 * renamed over `path`, and the directory fsynced. On failure (a full disk, say) the old
 * file is left as it was and the temporary file removed. The one atomic write of
 * tenantd and tenantctl. */
int write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                      struct tn_err **err);

/* The same for the file `name` (one name, no '/') in the directory open at dirfd. */
int write_file_atomic_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                         struct tn_err **err);

#define FD_KEEP_MAX 128

/* Closes every descriptor from 3 up but those in keep[0..n), n <= FD_KEEP_MAX
 * (negative entries are ignored; 0-2 are never closed). For a child about to resolve a path the tenant
 * controls: whatever it inherited, a descriptor on a host directory among it, would
 * be a way out of the tenant's root (/proc/self/fd/N/..). Async-signal-safe. */
void fd_close_all_but(const int *keep, size_t n);
