/* test_trust.c — which files a root process acts on (trust.c, sshd's StrictModes): the
 * file and every directory above it root's alone, a sticky root-owned directory further
 * up acceptable, links on the way owned by root, and each refusal naming the path and
 * the fix. Works in a temporary directory of its own below /tmp (root-owned, sticky);
 * needs root to give files to other owners, and skips those cases without it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "lib/trust.h"

static char base[64];

static const char *at(const char *rel)
{
        static char buf[4][512];
        static int i;
        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, rel);
        return buf[i];
}

static void touch(const char *path, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode);
        if (fd >= 0)
                close(fd);
        chmod(path, mode);
}

/* trust_check's verdict: 0, or its error code with the message in `msg`. */
static int verdict(const char *path, enum trust_kind kind, char *msg, size_t len)
{
        struct tn_err *err = NULL;
        int r = trust_check(path, kind, NULL, &err);
        snprintf(msg, len, "%s", r < 0 ? tn_err_msg(err) : "trusted");
        tn_err_free(err);
        return r;
}

#define REFUSED(path, kind, needle, ...)                                                           \
        do {                                                                                       \
                char _m[1024];                                                                     \
                int _r = verdict(path, kind, _m, sizeof(_m));                                      \
                ok(_r == -EPERM && strstr(_m, needle), __VA_ARGS__);                               \
                if (_r != -EPERM || !strstr(_m, needle))                                           \
                        diag("got: %s (want \"%s\")", _m, needle);                                 \
        } while (0)

#define TRUSTED(path, kind, ...)                                                                   \
        do {                                                                                       \
                char _m[1024];                                                                     \
                int _r = verdict(path, kind, _m, sizeof(_m));                                      \
                ok(_r == 0, __VA_ARGS__);                                                          \
                if (_r != 0)                                                                       \
                        diag("got: %s", _m);                                                       \
        } while (0)

int main(void)
{
        snprintf(base, sizeof(base), "/tmp/test-trust.XXXXXX");
        if (!mkdtemp(base)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        chmod(base, 0755);
        bool root = geteuid() == 0;
        char want[600];

        mkdir(at("etc"), 0755);
        touch(at("etc/m.json"), 0644);
        if (!root) {
                skip("not root: files here are not root's, so none is trusted");
                goto out;
        }

        char *real = NULL;
        struct tn_err *err = NULL;
        ok(trust_check(at("etc/m.json"), TRUST_FILE, &real, &err) == 0 && real &&
               strcmp(real, at("etc/m.json")) == 0,
           "a root file 0644 in a root directory 0755 below /tmp (sticky) is trusted");
        free(real);
        tn_err_free(err);
        TRUSTED(at("etc"), TRUST_DIR, "... and its directory as a manifest directory");

        chmod(at("etc/m.json"), 0664);
        snprintf(want, sizeof(want), "%s is writable by group", at("etc/m.json"));
        REFUSED(at("etc/m.json"), TRUST_FILE, want, "a group-writable file is refused");
        snprintf(want, sizeof(want), "; fix: chmod g-w %s", at("etc/m.json"));
        REFUSED(at("etc/m.json"), TRUST_FILE, want, "... naming the fix");
        chmod(at("etc/m.json"), 0646);
        snprintf(want, sizeof(want), "%s is writable by everyone (mode 0646)", at("etc/m.json"));
        REFUSED(at("etc/m.json"), TRUST_FILE, want, "a world-writable file is refused");
        chmod(at("etc/m.json"), 0666);
        REFUSED(at("etc/m.json"), TRUST_FILE, "chmod go-w", "both: chmod go-w");
        chmod(at("etc/m.json"), 0644);
        if (chown(at("etc/m.json"), 1000, 0) == 0) {
                snprintf(want, sizeof(want), "%s is owned by uid 1000", at("etc/m.json"));
                REFUSED(at("etc/m.json"), TRUST_FILE, want, "a file owned by another uid");
                snprintf(want, sizeof(want), "; fix: chown root %s", at("etc/m.json"));
                REFUSED(at("etc/m.json"), TRUST_FILE, want, "... naming the fix");
                (void)!chown(at("etc/m.json"), 0, 0);
        }

        /* The directory the file is in: root's alone, sticky or not. */
        chmod(at("etc"), 0775);
        snprintf(want, sizeof(want), "%s: the directory %s on its path is writable by group",
                 at("etc/m.json"), at("etc"));
        REFUSED(at("etc/m.json"), TRUST_FILE, want, "a file in a group-writable directory");
        REFUSED(at("etc"), TRUST_DIR, "is writable by group", "... which is no manifest directory");
        chmod(at("etc"), 01777);
        REFUSED(at("etc/m.json"), TRUST_FILE, "on its path is writable by everyone",
                "a file in a sticky world-writable directory is refused too");
        REFUSED(at("etc"), TRUST_DIR, "is writable by everyone",
                "... and it is no manifest directory either");
        chmod(at("etc"), 0755);

        /* Further up: root's and sticky is fine, anything else writable is not. */
        mkdir(at("up"), 01777);
        chmod(at("up"), 01777);
        mkdir(at("up/etc"), 0755);
        touch(at("up/etc/m.json"), 0644);
        TRUSTED(at("up/etc/m.json"), TRUST_FILE,
                "a root-owned sticky directory further up is fine");
        TRUSTED(at("up/etc"), TRUST_DIR, "... above a manifest directory too");
        chmod(at("up"), 0777);
        snprintf(want, sizeof(want), "the directory %s on its path is writable by everyone",
                 at("up"));
        REFUSED(at("up/etc/m.json"), TRUST_FILE, want, "not without the sticky bit");
        chmod(at("up"), 01777);
        if (chown(at("up"), 1000, 1000) == 0) {
                REFUSED(at("up/etc/m.json"), TRUST_FILE, "is owned by uid 1000",
                        "nor when another uid owns the sticky directory");
                (void)!chown(at("up"), 0, 0);
        }

        /* Links: where they lead is checked, and they must be root's. */
        if (symlink(at("etc/m.json"), at("link.json")) == 0) {
                TRUSTED(at("link.json"), TRUST_FILE, "a root link to a trusted file is fine");
                real = NULL;
                ok(trust_check(at("link.json"), TRUST_FILE, &real, NULL) == 0 && real &&
                       strcmp(real, at("etc/m.json")) == 0,
                   "... and the real path is returned to read");
                free(real);
                if (lchown(at("link.json"), 1000, 1000) == 0) {
                        snprintf(want, sizeof(want), "%s is owned by uid 1000", at("link.json"));
                        REFUSED(at("link.json"), TRUST_FILE, want,
                                "a link owned by another uid is refused");
                }
        }
        mkdir(at("bad"), 0777);
        chmod(at("bad"), 0777);
        touch(at("bad/m.json"), 0644);
        if (symlink(at("bad/m.json"), at("tobad.json")) == 0)
                REFUSED(at("tobad.json"), TRUST_FILE, "on its path is writable by everyone",
                        "a root link into a world-writable directory is refused");
        if (symlink(at("bad"), at("etc/sub")) == 0)
                REFUSED(at("etc/sub/m.json"), TRUST_FILE, "writable by everyone",
                        "a root link to a directory on the way, into a writable one, too");

        char msg[512];
        ok(verdict(at("etc"), TRUST_FILE, msg, sizeof(msg)) == -EINVAL,
           "a directory is no file (%s)", msg);
        ok(verdict(at("etc/m.json"), TRUST_DIR, msg, sizeof(msg)) == -ENOTDIR,
           "a file is no directory (%s)", msg);
        ok(verdict(at("nothing.json"), TRUST_FILE, msg, sizeof(msg)) == -ENOENT,
           "a missing file: ENOENT (%s)", msg);
out:;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0)
                diag("could not remove %s", base);
        return tap_done();
}
