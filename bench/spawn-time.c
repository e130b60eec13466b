/* spawn-time.c — start-to-exit time of a few commands, alternating, in one run (for
 * bench/cli-start). Each command is one argument, split on spaces; a word N<FILE opens
 * FILE as descriptor N of that command (no shell in between); its output goes to
 * /dev/null. Prints one line per command: median, p90 and minimum in ms.
 *
 *   spawn-time RUNS WARMUP "CMD ARGS..." ["CMD ARGS..." ...] */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double run_once(char **argv, const posix_spawn_file_actions_t *fa)
{
        double t0 = now_ms();
        pid_t pid;
        if (posix_spawn(&pid, argv[0], fa, NULL, argv, environ) != 0) {
                perror(argv[0]);
                exit(1);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "%s failed\n", argv[0]);
                exit(1);
        }
        return now_ms() - t0;
}

int main(int argc, char **argv)
{
        if (argc < 4) {
                fprintf(stderr, "usage: spawn-time RUNS WARMUP CMD...\n");
                return 2;
        }
        int runs = atoi(argv[1]), warmup = atoi(argv[2]), n = argc - 3;
        if (runs < 1 || warmup < 0)
                return 2;
        char ***cmds = calloc((size_t)n, sizeof(*cmds));
        double **t = calloc((size_t)n, sizeof(*t));
        posix_spawn_file_actions_t *fa = calloc((size_t)n, sizeof(*fa));
        for (int i = 0; i < n; i++) {
                char *s = strdup(argv[3 + i]);
                cmds[i] = calloc(strlen(s) + 2, sizeof(char *));
                posix_spawn_file_actions_init(&fa[i]);
                posix_spawn_file_actions_addopen(&fa[i], 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_addopen(&fa[i], 2, "/dev/null", O_WRONLY, 0);
                int k = 0;
                for (char *save = NULL, *w = strtok_r(s, " ", &save); w;
                     w = strtok_r(NULL, " ", &save)) {
                        char *lt = strchr(w, '<');
                        if (lt && lt > w && strspn(w, "0123456789") == (size_t)(lt - w)) {
                                posix_spawn_file_actions_addopen(&fa[i], atoi(w), lt + 1, O_RDONLY,
                                                                 0);
                                continue;
                        }
                        cmds[i][k++] = w;
                }
                t[i] = calloc((size_t)runs, sizeof(double));
        }
        for (int r = 0; r < warmup; r++)
                for (int i = 0; i < n; i++)
                        run_once(cmds[i], &fa[i]);
        /* Alternating, and the order turned every round, so that neither a trend in the
         * machine's load nor the position in a round favours one command. */
        for (int r = 0; r < runs; r++)
                for (int j = 0; j < n; j++) {
                        int i = r % 2 ? n - 1 - j : j;
                        t[i][r] = run_once(cmds[i], &fa[i]);
                }
        for (int i = 0; i < n; i++) {
                qsort(t[i], (size_t)runs, sizeof(double), cmp_double);
                printf("%s\t%.3f\t%.3f\t%.3f\n", argv[3 + i], t[i][runs / 2],
                       t[i][(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1], t[i][0]);
        }
        return 0;
}
