/* qemu_proc.c — a microVM's QEMU, as /proc shows it (qemu_proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
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
