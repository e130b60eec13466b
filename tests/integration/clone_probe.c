/* clone_probe.c — cgroup_clone_into() (host/cgroup.h) on its own, for test_run.sh: the
 * way a sandbox's init is created on a cgroup v2 host, tried on whatever cgroup v2
 * hierarchy this host has (the build machine's v2 hierarchy holds none of the
 * controllers a tenant uses, so no tenant takes this path here).
 *
 *   clone_probe DIR   DIR: a cgroup v2 directory; "-" for none
 *
 * The child is cloned with a new mount and pid namespace and a pidfd, as init is; it
 * prints "child cgroup=PATH pid=N" (PATH from its /proc/self/cgroup "0::" line, N its
 * pid in its namespace) and exits 7. The parent prints "placed=0|1 pidfd=0|1" and
 * "status=N" once the child is reaped through the pidfd. */
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/cgroup.h"

static int child(void)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096], path[4096] = "?";
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(path, sizeof(path), "%s", line + 3);
                }
        if (f)
                fclose(f);
        printf("child cgroup=%s pid=%d\n", path, (int)getpid());
        fflush(stdout);
        return 7;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: clone_probe DIR|-\n");
                return 2;
        }
        int fd = -1;
        if (strcmp(argv[1], "-") != 0) {
                fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) {
                        perror(argv[1]);
                        return 2;
                }
        }
        fflush(stdout);
        int pidfd = -1;
        bool placed = false;
        pid_t pid =
            cgroup_clone_into(CLONE_NEWNS | CLONE_NEWPID | CLONE_PIDFD, fd, &pidfd, &placed);
        if (pid < 0) {
                perror("cgroup_clone_into");
                return 1;
        }
        if (pid == 0)
                _exit(child());
        printf("placed=%d pidfd=%d\n", placed ? 1 : 0, pidfd >= 0 ? 1 : 0);
        siginfo_t si = {0};
        if (pidfd < 0 || waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0) {
                perror("waitid");
                return 1;
        }
        printf("status=%d\n", si.si_status);
        return 0;
}
