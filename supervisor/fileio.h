/* fileio.h — reading small files whole, with a hard size limit. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Reads the regular file at `path` (a FIFO, device or directory is refused) into a
 * NUL-terminated buffer. A file larger than max_bytes fails with -EFBIG without being
 * read whole. "-" reads standard input (same limit). */
int read_file_bounded(const char *path, size_t max_bytes, char **ret_buf, size_t *ret_len,
                      struct tn_err **err);

/* Replaces `path` whole or not at all: the data goes to a temporary file beside it,
 * which is fsynced, renamed over `path`, and the directory fsynced. On failure (a full
 * disk, say) the old file is left as it was and the temporary file removed. */
int write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode,
                      struct tn_err **err);
