/* vm_root.c — see vm_root.h. */
#include "vm/vm_root.h"

#include <fcntl.h>
#include <stdarg.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/etc_synth.h"

static const char *const dirs[] = {"usr", "proc", "sys",  "dev", "run", "tmp",
                                   "etc", "root", "home", "mnt", "var", "var/tmp"};
static const char *const top_links[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

/* The directory the skeletons live in (VM_ROOT_DIR, or the parent of `dir`) must be
 * tenantd's own: a directory, not a link, owned by this uid and writable by it alone.
 * Else whoever could write there could swap a skeleton's path for a link between the
 * checks here and the removal or the share. */
static int check_parent(const char *dir, struct tn_err **err)
{
        char parent[4096];
        const char *slash = strrchr(dir, '/');
        if (!slash || slash == dir || (size_t)(slash - dir) >= sizeof(parent))
                return tn_err_setx(err, EINVAL, "%s: not a path below a directory", dir);
        snprintf(parent, sizeof(parent), "%.*s", (int)(slash - dir), dir);
        struct stat st;
        if (lstat(parent, &st) < 0)
                return tn_err_set(err, errno, "cannot look at %s", parent);
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
                return tn_err_setx(err, EPERM,
                                   "%s must be a directory of tenantd's own (owned by uid %u, "
                                   "writable by it alone, not a symbolic link); it is %s owned "
                                   "by %u with mode %04o: remove it",
                                   parent, (unsigned)geteuid(),
                                   S_ISLNK(st.st_mode)   ? "a symbolic link"
                                   : S_ISDIR(st.st_mode) ? "a directory"
                                                         : "not a directory",
                                   (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return 0;
}

/* The directories of one declared mount target, made in the skeleton as a sandbox
 * makes them in its root (rootfs.c), so that the guest finds every mount point in its
 * read-only root. One component at a time below the skeleton's own descriptor; a
 * component that is not a directory of the skeleton's (the /bin, /lib ... links, or
 * /usr, where the host's /usr is mounted) ends the walk without an error: the guest
 * then refuses the target as a sandbox does, read-only /usr and all. */
static int make_target(int root, const char *dir, const char *target, struct tn_err **err)
{
        _cleanup_free_ char *copy = strdup(target);
        if (!copy)
                return tn_err_setx(err, ENOMEM, "out of memory");
        _cleanup_close_ int cur = fcntl(root, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return tn_err_set(err, errno, "dup");
        bool top = true;
        for (char *save = NULL, *c = strtok_r(copy, "/", &save); c;
             c = strtok_r(NULL, "/", &save), top = false) {
                if (top && strcmp(c, "usr") == 0)
                        break;
                if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST)
                        return tn_err_set(err, errno, "cannot create %s%s (at \"%s\")", dir, target,
                                          c);
                int next = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        break;
                closep(&cur);
                cur = next;
        }
        return 0;
}

int vm_root_skeleton(const struct manifest *m, const struct etc_links *links, const char *dir,
                     size_t *ret_left_out, struct tn_err **err)
{
        int r = check_parent(dir, err);
        if (r < 0)
                return r;
        vm_root_remove(dir); /* a leftover of a killed run */
        if (mkdir(dir, 0755) < 0)
                return tn_err_set(err, errno, "cannot create %s", dir);
        _cleanup_close_ int root = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root < 0)
                return tn_err_set(err, errno, "cannot open %s", dir);
        /* Every directory 0755, /tmp and /var/tmp included: the guest mounts a tmpfs of
         * its own on /tmp and sees this whole tree read-only, while on the host a
         * world-writable directory here would let any local user put files into the
         * guest's root, and race tenantd when it removes the tree. */
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if (mkdirat(root, dirs[i], 0755) < 0)
                        return tn_err_set(err, errno, "cannot create %s/%s", dir, dirs[i]);
        /* /bin, /lib ... as the host has them: links into /usr on a merged-/usr host. */
        for (size_t i = 0; i < ARRAY_SIZE(top_links); i++) {
                char host[32], target[256];
                snprintf(host, sizeof(host), "/%s", top_links[i]);
                ssize_t n = readlink(host, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                if (symlinkat(target, root, top_links[i]) < 0)
                        return tn_err_set(err, errno, "cannot link %s/%s", dir, top_links[i]);
        }

        /* /etc as a sandbox's (host/etc_synth.h), its trees copied: a guest is given
         * directories, not binds. */
        _cleanup_close_ int etc =
            openat(root, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (etc < 0)
                return tn_err_set(err, errno, "cannot open %s/etc", dir);
        struct etc_set set = {0};
        r = etc_synthesize(m, "/etc", links, &set, err);
        if (r >= 0 && ret_left_out)
                *ret_left_out = set.left_out;
        if (r >= 0)
                r = etc_write(&set, etc, err);
        for (size_t i = 0; r >= 0 && i < set.n; i++)
                if (set.v[i].kind == ETC_TREE)
                        r = etc_tree_copy(etc, set.v[i].name, set.v[i].data, err);
        etc_set_clear(&set);
        for (size_t i = 0; r >= 0 && i < m->mounts_n; i++)
                r = make_target(root, dir, m->mounts[i].target, err);
        return r;
}

/* Removes what is inside the directory `dir` (an open descriptor), depth first, by
 * descriptor: every directory is opened with O_NOFOLLOW relative to its parent's
 * descriptor, links are unlinked and never followed, and a directory on another file
 * system (a mount) is left alone. Nothing is looked up by a path that could be changed
 * under us, unlike nftw(), whose unlink(path) follows a directory that was swapped for
 * a link meanwhile. `depth` bounds the recursion. */
static void remove_children(int dir, dev_t dev, int depth)
{
        int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISDIR(st.st_mode)) {
                        (void)unlinkat(dir, de->d_name, 0);
                        continue;
                }
                if (st.st_dev != dev || depth <= 0)
                        continue;
                int sub = openat(dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue;
                struct stat again;
                if (fstat(sub, &again) == 0 && again.st_dev == dev && again.st_ino == st.st_ino)
                        remove_children(sub, dev, depth - 1);
                close(sub);
                (void)unlinkat(dir, de->d_name, AT_REMOVEDIR);
        }
        closedir(d);
}

void vm_root_remove(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                (void)unlink(dir); /* a link or a file where the skeleton was */
                return;
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return;
        remove_children(fd, st.st_dev, 64);
        (void)rmdir(dir);
}

static size_t depth(const char *path)
{
        size_t n = 0;
        for (; *path; path++)
                n += *path == '/' && path[1];
        return n;
}

int vm_agent_mounts(const struct vm_share *shares, size_t n_shares, const struct manifest *m,
                    struct agent_mount *out, size_t cap, size_t *ret_n, struct tn_err **err)
{
        size_t n = 0;
        for (size_t i = 0; i < n_shares; i++) {
                if (n >= cap)
                        return tn_err_setx(err, E2BIG, "more than %zu mounts in the guest", cap);
                out[n++] = (struct agent_mount){
                    .tag = (char *)shares[i].tag,
                    .target = (char *)shares[i].target,
                    .fstype = shares[i].fs == VM_FS_VIRTIOFS ? AGENT_FS_VIRTIOFS : AGENT_FS_9P,
                    .readonly = shares[i].readonly,
                    .noexec = shares[i].noexec};
        }
        for (size_t i = 0; i < m->mounts_n; i++) {
                const struct mount_spec *ms = &m->mounts[i];
                if (ms->type != MOUNT_TMPFS)
                        continue;
                if (n >= cap)
                        return tn_err_setx(err, E2BIG, "more than %zu mounts in the guest", cap);
                out[n++] = (struct agent_mount){.target = ms->target,
                                                .fstype = AGENT_FS_TMPFS,
                                                .readonly = ms->readonly,
                                                .noexec = ms->noexec,
                                                .size = ms->size};
        }
        /* Insertion sort by depth: stable, and "/" (depth 0, the root share) stays first. */
        for (size_t i = 1; i < n; i++) {
                struct agent_mount cur = out[i];
                size_t j = i;
                for (; j > 0 && depth(out[j - 1].target) > depth(cur.target); j--)
                        out[j] = out[j - 1];
                out[j] = cur;
        }
        *ret_n = n;
        return 0;
}
