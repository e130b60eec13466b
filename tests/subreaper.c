/* subreaper.c — runs daemons for the tests as a child subreaper that reaps at once.
 *
 *   subreaper [--ready PATH]... -- CMD ARGS... [-- CMD ARGS...]...
 *
 * Starts each command in order (each in the foreground, as a child), waiting before the
 * next one until the matching --ready PATH exists (a socket the daemon creates), then
 * reaps every process that ends under it: the daemons, and whatever they leave behind,
 * such as a QEMU that libvirtd started and that exited. PID 1 on the build machine
 * reaps orphans only every ~2 s (shared/MACHINE-NOTES.md), which makes libvirt see a
 * dead QEMU as alive; a subreaper that reaps at once avoids that.
 *
 * SIGTERM or SIGINT: the commands get SIGTERM in reverse order, each is waited for (up
 * to 10 s, then SIGKILL), and the subreaper exits 0. It exits 1 when a command fails
 * to start or to become ready within 30 s, having stopped the others. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 8

static pid_t pids[MAX_CMDS];
static int ncmds;
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
        (void)sig;
        stop_requested = 1;
}

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Reaps whatever has ended; forgets a command that did. */
static void reap(void)
{
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, WNOHANG);
                if (p <= 0)
                        return;
                for (int i = 0; i < ncmds; i++)
                        if (pids[i] == p)
                                pids[i] = 0;
        }
}

static void stop_all(void)
{
        for (int i = ncmds - 1; i >= 0; i--) {
                if (pids[i] <= 0)
                        continue;
                kill(pids[i], SIGTERM);
                long long deadline = now_ms() + 10000;
                while (pids[i] > 0 && now_ms() < deadline) {
                        reap();
                        usleep(10000);
                }
                if (pids[i] > 0) {
                        kill(pids[i], SIGKILL);
                        while (pids[i] > 0) {
                                reap();
                                usleep(10000);
                        }
                }
        }
}

int main(int argc, char **argv)
{
        const char *ready[MAX_CMDS] = {0};
        int nready = 0, i = 1;
        for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc && nready < MAX_CMDS) {
                        ready[nready++] = argv[++i];
                } else {
                        fprintf(stderr,
                                "usage: subreaper [--ready PATH]... -- CMD... [-- CMD...]\n");
                        return 2;
                }
        }
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                perror("subreaper: PR_SET_CHILD_SUBREAPER");
                return 1;
        }
        struct sigaction sa = {.sa_handler = on_stop};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        while (i < argc && ncmds < MAX_CMDS) {
                char **cmd = &argv[++i]; /* past "--" */
                int n = 0;
                while (i < argc && strcmp(argv[i], "--") != 0) {
                        i++;
                        n++;
                }
                if (n == 0)
                        break;
                argv[i < argc ? i : argc] = NULL; /* ends this command's argv */
                pid_t p = fork();
                if (p < 0) {
                        perror("subreaper: fork");
                        stop_all();
                        return 1;
                }
                if (p == 0) {
                        sigset_t none;
                        sigemptyset(&none);
                        sigprocmask(SIG_SETMASK, &none, NULL);
                        execvp(cmd[0], cmd);
                        fprintf(stderr, "subreaper: cannot execute %s: %s\n", cmd[0],
                                strerror(errno));
                        _exit(127);
                }
                pids[ncmds] = p;
                const char *want = ready[ncmds];
                ncmds++;
                long long deadline = now_ms() + 30000;
                struct stat st;
                while (want && stat(want, &st) < 0) {
                        reap();
                        if (pids[ncmds - 1] == 0 || now_ms() > deadline || stop_requested) {
                                fprintf(stderr, "subreaper: %s did not create %s\n", cmd[0], want);
                                stop_all();
                                return 1;
                        }
                        usleep(20000);
                }
        }

        /* Reap until told to stop or until every command has ended: SIGCHLD, SIGTERM and
         * SIGINT arrive through a signalfd, so none is lost between checks. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        int sfd = signalfd(-1, &set, SFD_CLOEXEC);
        while (!stop_requested && sfd >= 0) {
                reap();
                bool any = false;
                for (int k = 0; k < ncmds; k++)
                        any |= pids[k] > 0;
                if (!any && waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
                        return 0;
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) == sizeof(si) &&
                    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT))
                        stop_requested = 1;
        }
        stop_all();
        reap();
        return 0;
}
