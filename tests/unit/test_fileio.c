/* test_fileio.c — the one atomic file write (write_file_atomic, write_file_atomic_at):
 * whole or not at all, the mode asked for, no temporary file left beside it whatever
 * happened, never through a symlink planted where the temporary file goes. Works in a
 * temporary directory of its own. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "lib/fileio.h"

/* The names in `dir` but "." and "..", joined by spaces, in no particular order. */
static void list_dir(const char *dir, char *out, size_t size)
{
        out[0] = '\0';
        DIR *d = opendir(dir);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                size_t l = strlen(out);
                snprintf(out + l, size - l, "%s%s", l ? " " : "", de->d_name);
        }
        closedir(d);
}

static char *slurp(const char *path)
{
        static char buf[256];
        buf[0] = '\0';
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        return buf;
}

int main(void)
{
        char dir[] = "/tmp/test-fileio.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        char path[256], names[1024];
        struct tn_err *err = NULL;
        struct stat st;

        snprintf(path, sizeof(path), "%s/state.json", dir);
        is_int(write_file_atomic(path, "one\n", 4, 0640, &err), 0, "write a new file");
        is_str(slurp(path), "one\n", "... with the data");
        ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640, "... and the mode asked for");
        is_int(write_file_atomic(path, "two, longer\n", 12, 0600, &err), 0, "replace it");
        is_str(slurp(path), "two, longer\n", "... whole");
        list_dir(dir, names, sizeof(names));
        is_str(names, "state.json", "no temporary file left beside it");

        /* A temporary file a crashed writer left behind does not stop the next one. */
        char stale[300];
        snprintf(stale, sizeof(stale), "%s/.state.json.%d.tmp", dir, (int)getpid());
        int fd = open(stale, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                close(fd);
        is_int(write_file_atomic(path, "three\n", 6, 0600, &err), 0, "a stale temporary file");
        is_str(slurp(path), "three\n", "... is written over");
        list_dir(dir, names, sizeof(names));
        is_str(names, "state.json", "... and not left");

        /* A symlink where the temporary file goes is not followed: the file it points
         * to keeps its content. */
        char victim[300];
        snprintf(victim, sizeof(victim), "%s/victim", dir);
        fd = open(victim, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
                ok(write(fd, "keep", 4) == 4, "victim written");
                close(fd);
        }
        ok(symlink("victim", stale) == 0, "plant a symlink at the temporary name");
        is_int(write_file_atomic(path, "four\n", 5, 0600, &err), 0, "write beside the symlink");
        is_str(slurp(victim), "keep", "the symlink's target is untouched");
        is_str(slurp(path), "four\n", "the file is written");
        unlink(victim);

        /* Replacing fails (the name is a directory): nothing changes, nothing is left. */
        char sub[300];
        snprintf(sub, sizeof(sub), "%s/sub", dir);
        ok(mkdir(sub, 0700) == 0, "mkdir sub");
        int r = write_file_atomic(sub, "x", 1, 0600, &err);
        ok(r < 0 && err && strstr(tn_err_msg(err), sub), "replacing a directory fails: %s",
           err ? tn_err_msg(err) : "(no message)");
        tn_err_free(err);
        err = NULL;
        list_dir(dir, names, sizeof(names));
        ok(strcmp(names, "state.json sub") == 0 || strcmp(names, "sub state.json") == 0,
           "... and leaves only what was there: %s", names);

        /* The dirfd form, as uidrange and the BPF cache use it. */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        is_int(write_file_atomic_at(dfd, "ranges", "a 1\n", 4, 0600, &err), 0,
               "write_file_atomic_at");
        snprintf(path, sizeof(path), "%s/ranges", dir);
        is_str(slurp(path), "a 1\n", "... with the data");
        r = write_file_atomic_at(dfd, "sub", "x", 1, 0600, &err);
        ok(r < 0 && err && strstr(tn_err_msg(err), "sub"), "a failure names the file: %s",
           err ? tn_err_msg(err) : "(no message)");
        tn_err_free(err);
        err = NULL;
        ok(write_file_atomic_at(dfd, "a/b", "x", 1, 0600, &err) == -EINVAL,
           "a name with a slash is refused");
        tn_err_free(err);
        close(dfd);

        unlink(path);
        snprintf(path, sizeof(path), "%s/state.json", dir);
        unlink(path);
        rmdir(sub);
        ok(rmdir(dir) == 0, "the directory held nothing else");

        /* read_fd_bounded: the one read loop, over a pipe (no size to trust) */
        static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 10000};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (int over = 0; over < 2; over++) {
                        size_t want = sizes[i] + (size_t)over, max = sizes[i];
                        int p[2];
                        if (pipe(p) < 0)
                                break;
                        char *data = malloc(want + 1), *got = NULL;
                        for (size_t k = 0; k < want; k++)
                                data[k] = (char)('a' + k % 26);
                        pid_t pid = fork();
                        if (pid == 0) {
                                close(p[0]);
                                _exit(write(p[1], data, want) == (ssize_t)want ? 0 : 1);
                        }
                        close(p[1]);
                        size_t len = 7;
                        int rr = read_fd_bounded(p[0], max, &got, &len);
                        close(p[0]);
                        waitpid(pid, NULL, 0);
                        if (over)
                                ok(rr == -EFBIG && !got,
                                   "%zu bytes with a limit of %zu: -EFBIG (r=%d)", want, max, rr);
                        else
                                ok(rr == 0 && len == want && memcmp(got, data, want) == 0 &&
                                       got[len] == '\0',
                                   "%zu bytes with a limit of %zu: all of them, NUL-terminated "
                                   "(r=%d)",
                                   want, max, rr);
                        free(got);
                        free(data);
                }
        }
        return tap_done();
}
