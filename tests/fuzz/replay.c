/* replay.c — runs a fuzz target's saved corpus as ordinary tests, without clang.
 *
 * Usage: replay_TARGET DIR|FILE...   Prints one TAP line per input; an input that
 * crashes the target aborts the run, which tests/run-tests reports as a failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/err.h"
#include "lib/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count;

static void run_file(const char *path)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        size_t len;
        count++;
        if (read_file_bounded(path, 4 << 20, &buf, &len, &err) < 0) {
                printf("not ok %d - %s: %s\n", count, path, tn_err_msg(err));
                return;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        printf("ok %d - %s\n", count, path);
        fflush(stdout);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        printf("not ok %d - cannot stat %s\n", ++count, argv[i]);
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        run_file(argv[i]);
                        continue;
                }
                struct dirent **names;
                int n = scandir(argv[i], &names, NULL, by_name);
                for (int k = 0; k < n; k++) {
                        if (names[k]->d_name[0] != '.') {
                                char path[4096];
                                snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
                                run_file(path);
                        }
                        free(names[k]);
                }
                free(names);
                if (n <= 0)
                        printf("not ok %d - empty corpus %s\n", ++count, argv[i]);
        }
        printf("1..%d\n", count);
        return 0;
}
