/* test_share_check.c — which host paths a tenant's bind mount or share may be
 * (share_check.c, issue 10 item 3): never tenantd's own directories or the kernel's,
 * either containing the other; read-write, never a path the host's root trusts nor a
 * directory that groups others' files as a whole. Symbolic links are resolved, as far
 * as the path exists, before comparing. And what QEMU's user can reach of a share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/share_check.h"
#include "tap.h"

static const struct tenantd_dirs dirs = {.state_dir = "/var/lib/tenantd-test",
                                         .manifest_dir = "/etc/tenantd-test/services",
                                         .storage_dir = "/data/tenantd-volumes-test"};

/* Refused, with the message holding `want`. */
static void refused(const char *path, bool readonly, const char *want)
{
        struct tn_err *err = NULL;
        int r = share_check_source(path, readonly, &dirs, "mounts[3].source", &err);
        const char *msg = err ? tn_err_msg(err) : "";
        ok(r == -EPERM && strstr(msg, "mounts[3].source: ") == msg && strstr(msg, want),
           "%s %s: refused naming %s (%s)", readonly ? "ro" : "rw", path, want, msg);
        tn_err_free(err);
}

/* share_check_reach(): what an unprivileged user ("nobody") can reach, checked with
 * its own ids in a child. Needs root to take them on. */
static void reach_checks(void)
{
        if (geteuid() != 0) {
                skip("NOT ROOT: share_check_reach() takes on another user's ids");
                return;
        }
        char base[] = "/tmp/test-reach.XXXXXX", locked[64], share[128];
        if (!mkdtemp(base)) {
                ok(false, "mkdtemp");
                return;
        }
        chmod(base, 0755);
        snprintf(locked, sizeof(locked), "%s/locked", base);
        snprintf(share, sizeof(share), "%s/share", locked);
        mkdir(locked, 0700);
        mkdir(share, 0755);
        struct tn_err *err = NULL;
        int r = share_check_reach(share, "nobody", "mounts[1].source", &err);
        const char *msg = err ? tn_err_msg(err) : "";
        char want[160];
        snprintf(want, sizeof(want), "cannot search (x) %s (mode 0700, owner 0:0)", locked);
        ok(r == -EACCES && strstr(msg, "mounts[1].source: QEMU's user nobody ") == msg &&
               strstr(msg, want) && strstr(msg, "chmod o+x ") && !strchr(msg, '\n'),
           "a share below a 0700 directory: refused in one line naming it (%s)", msg);
        tn_err_free(err);
        err = NULL;
        chmod(locked, 0711);
        chmod(share, 0700);
        r = share_check_reach(share, "nobody", "mounts[1].source", &err);
        msg = err ? tn_err_msg(err) : "";
        ok(r == -EACCES && strstr(msg, "cannot read and search (rx) the share") &&
               strstr(msg, "chmod o+rx "),
           "a share it may not read: refused, saying so (%s)", msg);
        tn_err_free(err);
        err = NULL;
        chmod(share, 0755);
        ok(share_check_reach(share, "nobody", "mounts[1].source", &err) == 0,
           "a share it can reach: accepted");
        ok(share_check_reach(share, "no-such-user-tnd", "mounts[1].source", &err) == 0,
           "no such user: nothing to check against");
        rmdir(share);
        rmdir(locked);
        rmdir(base);
}

static void accepted(const char *path, bool readonly)
{
        struct tn_err *err = NULL;
        int r = share_check_source(path, readonly, &dirs, "mounts[0].source", &err);
        ok(r == 0, "%s %s: accepted%s%s", readonly ? "ro" : "rw", path, err ? ": " : "",
           err ? tn_err_msg(err) : "");
        tn_err_free(err);
}

int main(void)
{
        setenv("TENANTD_POLICY_DIR", "/srv/policies-test", 1);
        /* tenantd's own, in any mode, either way round. */
        for (int ro = 0; ro <= 1; ro++) {
                refused("/var/lib/tenantd-test", ro, "state directory /var/lib/tenantd-test");
                refused("/var/lib/tenantd-test/logs", ro, "is in tenantd's state directory");
                refused("/var/lib", ro, "holds tenantd's state directory");
                refused("/etc/tenantd-test", ro, "holds tenantd's manifest directory");
                refused("/srv/policies-test/seccomp", ro, "policy directory");
                refused("/srv", ro, "holds tenantd's policy directory");
                refused("/run/tenantd", ro, "runtime directory");
                /* every tenant's volume images, and their mounts, live there */
                refused("/data/tenantd-volumes-test/app", ro, "is in tenantd's storage directory");
                refused("/data", ro, "holds tenantd's storage directory");
                refused("/run/tenantd-vm/web", ro, "skeletons");
                refused("/run/tenantd-shares", ro, "share mounts");
                refused("/run/tenantd-volumes/app/data", ro, "volume mounts");
                refused("/proc/sys", ro, "is in /proc");
                refused("/sys/kernel", ro, "is in /sys");
                refused("/dev/shm", ro, "is in /dev");
                refused("/", ro, "whole tree");
        }
        /* Read-write: what root trusts, in it or holding it. */
        refused("/etc/nginx", false, "is in /etc");
        refused("/usr/local/bin", false, "is in /usr");
        refused("/var/log/app", false, "is in /var/log");
        refused("/root/data", false, "is in /root");
        refused("/boot", false, "/boot");
        refused("/lib64", false, "/lib64");
        refused("/home", false, "holds others' files");
        refused("/tmp", false, "holds others' files");
        refused("/srv/../etc", false, "/etc holds"); /* realpath, should it get here */
        accepted("/srv/photos", false);
        accepted("/srv/does/not/exist/yet", false);
        accepted("/home/alice/data", false);
        accepted("/tmp/x", false);
        accepted("/etc/ssl/certs", true);
        accepted("/usr/share/zoneinfo", true);
        accepted("/devices", false); /* whole components only */
        accepted("/etcetera", false);

        /* A link is compared by where it leads, also when what follows does not exist. */
        char dir[] = "/tmp/share-check.XXXXXX";
        if (mkdtemp(dir)) {
                char link[64], below[96];
                snprintf(link, sizeof(link), "%s/l", dir);
                snprintf(below, sizeof(below), "%s/l/new/dir", dir);
                ok(symlink("/etc", link) == 0, "a link to /etc");
                refused(link, false, "/etc holds");
                refused(below, false, "/etc/new/dir is in /etc");
                snprintf(link, sizeof(link), "%s/s", dir);
                ok(symlink("/var/lib/tenantd-test", link) == 0,
                   "a dangling link to the state directory (which does not exist yet)");
                refused(link, true, "state directory");
                snprintf(below, sizeof(below), "%s/r", dir);
                ok(symlink("s", below) == 0, "a relative link to that link");
                refused(below, true, "state directory");
                unlink(below);
                snprintf(link, sizeof(link), "%s/l", dir);
                unlink(link);
                snprintf(link, sizeof(link), "%s/s", dir);
                unlink(link);
                rmdir(dir);
        }
        reach_checks();
        return tap_done();
}
