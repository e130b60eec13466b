/* qemu_proc.c — a microVM's QEMU, as /proc shows it (qemu_proc.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/fileio.h"
#include "vm/qemu_proc.h"
#include "vm/vm.h"

#define CMDLINE_MAX (256U << 10) /* QEMU's command line from libvirt is a few KiB */

pid_t qemu_proc_pid(const char *domain)
{
        char path[256], buf[32];
        snprintf(path, sizeof(path), VM_QEMU_STATE_DIR "/%s.pid", domain);
        if (read_small_file(path, buf, sizeof(buf)) <= 0)
                return 0;
        long pid = strtol(buf, NULL, 10);
        return pid > 0 && pid <= INT_MAX ? (pid_t)pid : 0;
}

int qemu_proc_sandboxed(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *buf = malloc(CMDLINE_MAX);
        if (!buf)
                return -ENOMEM;
        ssize_t n = read_small_file(path, buf, CMDLINE_MAX);
        if (n < 0)
                return (int)n;
        for (ssize_t i = 0; i < n;) {
                const char *arg = buf + i;
                size_t len = strlen(arg);
                if (strcmp(arg, "-sandbox") == 0 && i + (ssize_t)len + 1 < n &&
                    strncmp(arg + len + 1, "on", 2) == 0 &&
                    (arg[len + 3] == '\0' || arg[len + 3] == ','))
                        return 1;
                i += (ssize_t)len + 1;
        }
        return 0;
}

int qemu_proc_check(pid_t pid, struct tn_err **err)
{
        char path[64], buf[8192];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        ssize_t n = read_small_file(path, buf, sizeof(buf));
        if (n < 0)
                return tn_err_set(err, (int)-n, "cannot read %s", path);
        const char *uid = strstr(buf, "\nUid:");
        unsigned r_, e_, s_, f_;
        if (!uid || sscanf(uid, "\nUid: %u %u %u %u", &r_, &e_, &s_, &f_) != 4)
                return tn_err_setx(err, EIO, "cannot read QEMU's user ids");
        if (r_ == 0 || e_ == 0 || s_ == 0 || f_ == 0)
                return tn_err_setx(err, EPERM,
                                   "QEMU runs as root: set user (and group) in "
                                   "/etc/libvirt/qemu.conf to an unprivileged account");
        int r = qemu_proc_sandboxed(pid);
        if (r < 0)
                return tn_err_set(err, -r, "cannot read /proc/%d/cmdline", (int)pid);
        if (r == 0)
                return tn_err_setx(err, EPERM,
                                   "QEMU runs without its seccomp sandbox: set seccomp_sandbox = "
                                   "1 in /etc/libvirt/qemu.conf");
        return 0;
}

uint64_t qemu_proc_started_ms(pid_t pid)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_small_file(path, buf, sizeof(buf)) <= 0)
                return 0;
        /* After the command name (which may hold spaces and parentheses): state is
         * field 3, starttime field 22, in clock ticks since the boot. */
        const char *p = strrchr(buf, ')');
        unsigned long long ticks = 0;
        if (!p || sscanf(p + 2,
                         "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                         "%*d %*d %*d %llu",
                         &ticks) != 1)
                return 0;
        long hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
                return 0;
        uint64_t since_boot = ticks * 1000ULL / (uint64_t)hz;
        uint64_t boot_now = clock_ms(CLOCK_BOOTTIME), mono_now = mono_ms();
        /* CLOCK_BOOTTIME runs ahead of CLOCK_MONOTONIC by the time spent suspended. */
        uint64_t ahead = boot_now > mono_now ? boot_now - mono_now : 0;
        return since_boot > ahead ? since_boot - ahead : 0;
}

size_t proc_children(pid_t parent, pid_t *out, size_t max)
{
        DIR *d = opendir("/proc");
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *e;
        while (n < max && (e = readdir(d))) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end || pid <= 1)
                        continue;
                char path[64], buf[512];
                snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
                if (read_small_file(path, buf, sizeof(buf)) <= 0)
                        continue;
                /* The command name may hold spaces and parentheses: the fields
                 * after the last ')' are state, then ppid. */
                const char *p = strrchr(buf, ')');
                char state;
                long ppid;
                if (p && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long)parent)
                        out[n++] = (pid_t)pid;
        }
        closedir(d);
        return n;
}
