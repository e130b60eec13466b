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

#include "lib/fileio.h"

#define COPY_MAX (4 * 1024 * 1024) /* ld.so.cache, the CA bundle */

static const char *const dirs[] = {"usr",     "proc",          "sys",  "dev",    "run",
                                   "tmp",     "etc",           "root", "home",   "mnt",
                                   "etc/ssl", "etc/ssl/certs", "var",  "var/tmp"};
static const char *const top_links[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

static int write_at(int dirfd, const char *name, const char *data, size_t len, struct tn_err **err)
{
        _cleanup_close_ int fd =
            openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot create %s", name);
        int r = write_all(fd, data, len);
        return r < 0 ? tn_err_set(err, -r, "cannot write %s", name) : 0;
}

static int write_text(int dirfd, const char *name, struct tn_err **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int write_text(int dirfd, const char *name, struct tn_err **err, const char *fmt, ...)
{
        _cleanup_free_ char *text = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (n < 0)
                return tn_err_setx(err, ENOMEM, "out of memory");
        return write_at(dirfd, name, text, (size_t)n, err);
}

/* A plain file of the host's, copied when it is there (the guest does without else). */
static int copy_host_file(int dirfd, const char *name, const char *host_path, struct tn_err **err)
{
        struct stat st;
        if (lstat(host_path, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        _cleanup_free_ char *data = NULL;
        size_t len;
        if (read_file_bounded(host_path, COPY_MAX, &data, &len, NULL) < 0)
                return 0;
        return write_at(dirfd, name, data, len, err);
}

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

int vm_root_skeleton(const struct manifest *m, const char *dir, struct tn_err **err)
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

        _cleanup_close_ int etc =
            openat(root, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (etc < 0)
                return tn_err_set(err, errno, "cannot open %s/etc", dir);
        const char *user = m->name;
        char own_user[MANIFEST_NAME_MAX * 2 + 64] = "";
        if (m->uid != 0 && m->uid != 65534)
                snprintf(own_user, sizeof(own_user), "%s:x:%u:%u:%s:/:/usr/sbin/nologin\n", user,
                         m->uid, m->gid, user);
        r = write_text(etc, "passwd", err,
                       "root:x:0:0:root:/root:/bin/sh\n%s"
                       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                       own_user);
        if (r >= 0) {
                char own[MANIFEST_NAME_MAX + 32] = "";
                if (m->gid != 0 && m->gid != 65534)
                        snprintf(own, sizeof(own), "%s:x:%u:\n", user, m->gid);
                r = write_text(etc, "group", err, "root:x:0:\n%snogroup:x:65534:\n", own);
        }
        if (r >= 0)
                r = write_text(etc, "hostname", err, "%s\n", m->name);
        if (r >= 0)
                r = write_text(etc, "hosts", err,
                               "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                               "ip6-loopback\n127.0.1.1\t%s\n",
                               m->name);
        if (r >= 0)
                r = write_text(etc, "nsswitch.conf", err, "%s",
                               "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                               "networks: files\nprotocols: files\nservices: files\n");
        /* The agent mounts its own over this one when the tenant has a network. */
        if (r >= 0)
                r = write_text(etc, "resolv.conf", err, "%s", "");
        if (r >= 0)
                r = copy_host_file(etc, "ld.so.cache", "/etc/ld.so.cache", err);
        if (r >= 0)
                r = copy_host_file(etc, "ssl/certs/ca-certificates.crt",
                                   "/etc/ssl/certs/ca-certificates.crt", err);
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
