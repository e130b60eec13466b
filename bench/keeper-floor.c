/* keeper-floor.c — the memory floor of a keeper that would exec a small program of its
 * own once its tenant runs (for bench/daemon-cost): a process linked with libc and the
 * keeper loop's pure files only (lib/logtext.c, lib/seccomp_notify.c), which touches
 * what that loop touches — a notifier (seccomp_notify.h), the first page of a 64 KiB
 * read buffer and of the escaped-text buffer, one line of text escaped, a note
 * formatted, syslog opened — and then waits in poll() as the keeper does. It never
 * installs a filter and reads nothing from anyone; it ends when its stdin does.
 *
 *   cc -O2 -Isupervisor -o keeper-floor bench/keeper-floor.c supervisor/lib/logtext.c \
 *      supervisor/lib/seccomp_notify.c */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/logtext.h"
#include "lib/seccomp_notify.h"

static char in[64 << 10];
static char out[LOGTEXT_MAX(64 << 10)];

int main(void)
{
        struct notifier *n = NULL;
        if (notifier_new(-1, &n) < 0)
                return 1;
        n->pending[59] = 1; /* a denial counted, as an answer does */
        struct logtext text = {0};
        size_t len = (size_t)snprintf(in, sizeof(in), "hello from the tenant\n");
        size_t o = logtext_stream(&text, in, len, false, out);
        char note[160];
        snprintf(note, sizeof(note), "[tenantd: started %s, pid %d, %zu bytes]\n", "floor",
                 (int)getpid(), o);
        openlog("tenantd-keeper", LOG_PID, LOG_DAEMON);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        struct pollfd fds[4] = {{.fd = 0, .events = POLLIN}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
        while (poll(fds, 4, -1) > 0 && read(0, in, sizeof(in)) > 0)
                ;
        notifier_free(n);
        return 0;
}
