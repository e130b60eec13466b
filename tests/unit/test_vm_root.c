/* test_vm_root.c — the microVM root skeleton (vm_root.c) on the host: no directory of
 * it is writable by anyone but tenantd; it is refused in a directory that others can
 * write or that is a symbolic link; it holds every declared mount target but those in
 * /usr or behind its links; its /etc has the host's alternatives links and nothing
 * private; its removal unlinks symbolic links planted inside it without following
 * them, and stops at other file systems. Works in a temporary directory of its own. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/manifest.h"
#include "tap.h"
#include "vm/vm_root.h"

static int writable_dirs;

static int count_writable(const char *path, const struct stat *st, int type, struct FTW *f)
{
        (void)f;
        if (type == FTW_D && (st->st_mode & 022)) {
                printf("#   %s has mode %04o\n", path, (unsigned)(st->st_mode & 07777));
                writable_dirs++;
        }
        return 0;
}

static struct manifest *tiny_manifest(void)
{
        static const char text[] = "{\"name\": \"vr-test\", \"isolation\": \"microvm\", "
                                   "\"exec\": [\"/bin/true\"], \"user\": \"1000:1000\", "
                                   "\"mounts\": [{\"source\": \"/tmp\", \"target\": \"/share\"}, "
                                   "{\"source\": \"/tmp\", \"target\": \"/srv/a/share\"}, "
                                   "{\"type\": \"tmpfs\", \"target\": \"/var/cache/x\"}, "
                                   "{\"source\": \"/tmp\", \"target\": \"/usr/local/x\"}, "
                                   "{\"source\": \"/tmp\", \"target\": \"/bin/x\"}]}";
        struct manifest *m = NULL;
        struct diag_list diags = {0};
        if (manifest_parse(text, sizeof(text) - 1, &m, &diags) < 0)
                m = NULL;
        diag_list_clear(&diags);
        return m;
}

/* The setup request's mounts: the shares and the manifest's tmpfs mount, shallower
 * targets first (as a sandbox mounts them), equal depths in their order. */
static void test_agent_mounts(const struct manifest *m)
{
        const struct vm_share shares[] = {
            {.tag = "root", .target = "/", .fs = VM_FS_9P, .readonly = true},
            {.tag = "usr", .target = "/usr", .fs = VM_FS_9P, .readonly = true},
            {.tag = "m0", .target = "/share", .fs = VM_FS_9P, .readonly = true},
            {.tag = "m1", .target = "/srv/a/share", .fs = VM_FS_VIRTIOFS, .noexec = true},
            {.tag = "m3", .target = "/usr/local/x", .fs = VM_FS_9P, .readonly = true},
            {.tag = "m4", .target = "/bin/x", .fs = VM_FS_9P, .readonly = true},
        };
        static const char *const order[] = {
            "/", "/usr", "/share", "/bin/x", "/srv/a/share", "/usr/local/x", "/var/cache/x"};
        struct agent_mount out[AGENT_MOUNTS_MAX];
        size_t n = 0;
        struct tn_err *err = NULL;
        int r = vm_agent_mounts(shares, ARRAY_SIZE(shares), m, out, ARRAY_SIZE(out), &n, &err);
        ok(r == 0 && n == ARRAY_SIZE(order), "six shares and one tmpfs go to the agent (%zu)", n);
        bool in_order = r == 0 && n == ARRAY_SIZE(order);
        for (size_t i = 0; in_order && i < n; i++)
                if (strcmp(out[i].target, order[i]) != 0) {
                        diag("mounts[%zu] is %s, expected %s", i, out[i].target, order[i]);
                        in_order = false;
                }
        ok(in_order, "the root first, then by depth, equal depths in manifest order");
        const struct agent_mount *t = r == 0 && n == ARRAY_SIZE(order) ? &out[n - 1] : NULL;
        ok(t && t->fstype == AGENT_FS_TMPFS && !t->tag && t->size == 64ULL << 20 && !t->readonly &&
               !t->noexec,
           "the tmpfs: no tag, the manifest's default size 64M, read-write");
        ok(r == 0 && out[4].fstype == AGENT_FS_VIRTIOFS && !out[4].readonly && out[4].noexec &&
               strcmp(out[4].tag, "m1") == 0,
           "a share keeps its tag, file system, mode and noexec");
        ok(r == 0 && !out[2].noexec, "a share without noexec is sent without it");
        struct agent_request req = {.id = 1, .op = AGENT_OP_SETUP};
        req.u.setup = (struct agent_setup){.mounts = out, .n_mounts = n};
        char *frame = NULL;
        size_t len = 0;
        ok(r == 0 && agent_request_encode(&req, &frame, &len) == 0,
           "... and the agent's encoder takes them");
        free(frame);
        r = vm_agent_mounts(shares, ARRAY_SIZE(shares), m, out, ARRAY_SIZE(shares), &n, &err);
        ok(r == -E2BIG, "more mounts than the request holds are refused (%s)",
           r < 0 ? tn_err_msg(err) : "accepted");
        tn_err_free(err);
}

int main(void)
{
        char base[] = "/tmp/test-vm-root.XXXXXX";
        if (!mkdtemp(base)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        chmod(base, 0755);
        _cleanup_manifest_ struct manifest *m = tiny_manifest();
        ok(m != NULL, "a microVM manifest parses");
        if (!m)
                return tap_done();
        test_agent_mounts(m);
        char dir[256], path[512], outside[256];
        snprintf(dir, sizeof(dir), "%s/vr-test", base);

        struct tn_err *err = NULL;
        int r = vm_root_skeleton(m, NULL, dir, NULL, &err);
        ok(r == 0, "the skeleton is written (%s)", r < 0 ? tn_err_msg(err) : "ok");
        tn_err_free(err);
        err = NULL;
        writable_dirs = 0;
        nftw(dir, count_writable, 16, FTW_PHYS);
        is_int(writable_dirs, 0, "no directory of the skeleton is writable by group or others");
        snprintf(path, sizeof(path), "%s/etc/passwd", dir);
        struct stat st;
        ok(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && !(st.st_mode & 022),
           "etc/passwd is a plain file only tenantd writes");
        static const char *const made[] = {"share", "srv/a/share", "var/cache/x"};
        for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
                ok(lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755,
                   "the mount target /%s is a directory of the skeleton", made[i]);
        }
        snprintf(path, sizeof(path), "%s/usr/local", dir);
        ok(lstat(path, &st) < 0, "nothing is made below usr/, where the host's /usr is mounted");
        snprintf(path, sizeof(path), "%s/bin", dir);
        ok(lstat(path, &st) < 0 || S_ISLNK(st.st_mode), "bin is the host's link, or nothing");

        /* The sandbox's /etc (host/etc_synth.c), its trees copied: the host's command
         * links are links in the skeleton, and nothing private of the host's /etc. */
        char host_target[256] = "", copy_target[256] = "";
        ssize_t hn = readlink("/etc/alternatives/awk", host_target, sizeof(host_target) - 1);
        if (hn > 0) {
                host_target[hn] = '\0';
                snprintf(path, sizeof(path), "%s/etc/alternatives/awk", dir);
                ssize_t cn = readlink(path, copy_target, sizeof(copy_target) - 1);
                copy_target[cn > 0 ? cn : 0] = '\0';
                is_str(copy_target, host_target, "etc/alternatives/awk is the host's link");
        } else {
                skip("the host has no /etc/alternatives/awk link to compare");
        }
        static const char *const never[] = {"shadow",  "gshadow",    "ssh",
                                            "sudoers", "machine-id", "ssl/private"};
        bool clean = true;
        for (size_t i = 0; i < ARRAY_SIZE(never); i++) {
                snprintf(path, sizeof(path), "%s/etc/%s", dir, never[i]);
                if (lstat(path, &st) == 0) {
                        diag("etc/%s is in the skeleton", never[i]);
                        clean = false;
                }
        }
        ok(clean, "nothing private of the host's /etc is in the skeleton");

        /* A link planted in the skeleton (where a writable directory used to be) to a
         * directory holding something precious: removal takes the link, not the target. */
        snprintf(outside, sizeof(outside), "%s/outside", base);
        mkdir(outside, 0755);
        snprintf(path, sizeof(path), "%s/precious", outside);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
                close(fd);
        snprintf(path, sizeof(path), "%s/var/tmp/link", dir);
        ok(symlink(outside, path) == 0, "a link to a directory outside is planted");
        snprintf(path, sizeof(path), "%s/var/tmp/deep/er", dir);
        char deep[512];
        snprintf(deep, sizeof(deep), "%s/var/tmp/deep", dir);
        mkdir(deep, 0755);
        mkdir(path, 0755);
        vm_root_remove(dir);
        ok(access(dir, F_OK) < 0, "the skeleton is removed");
        snprintf(path, sizeof(path), "%s/precious", outside);
        ok(access(path, F_OK) == 0, "what the planted link pointed to is untouched");

        /* The directory the skeletons live in must be tenantd's alone. */
        chmod(base, 01777);
        r = vm_root_skeleton(m, NULL, dir, NULL, &err);
        ok(r == -EPERM && strstr(tn_err_msg(err), "remove it"),
           "a skeleton in a world-writable directory is refused (%s)",
           r < 0 ? tn_err_msg(err) : "");
        tn_err_free(err);
        err = NULL;
        ok(access(dir, F_OK) < 0, "... and nothing is written there");
        chmod(base, 0755);
        char linkdir[256];
        snprintf(linkdir, sizeof(linkdir), "%s/via-link", base);
        ok(symlink(outside, linkdir) == 0, "a link to another directory");
        snprintf(dir, sizeof(dir), "%s/via-link/vr-test", base);
        ok(vm_root_skeleton(m, NULL, dir, NULL, &err) == -EPERM,
           "a skeleton below a symbolic link is refused");
        tn_err_free(err);

        snprintf(path, sizeof(path), "rm -rf '%s'", base);
        if (system(path) != 0)
                diag("could not remove %s", base);
        return tap_done();
}
