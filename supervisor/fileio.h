/* fileio.h — reading small files whole, with a hard size limit. */
#pragma once

#include <stddef.h>

#include "err.h"

/* Reads the regular file at `path` (a FIFO, device or directory is refused) into a
 * NUL-terminated buffer. A file larger than max_bytes fails with -EFBIG without being
 * read whole. "-" reads standard input (same limit). */
int read_file_bounded(const char *path, size_t max_bytes, char **ret_buf, size_t *ret_len,
                      struct tn_err **err);
