/* rootfs.c — building the tenant's root from detached mounts (see rootfs.h).
 *
 * Threat: the tenant is hostile and may have written anything into a read-write image
 * root or a read-write bind source on an earlier run: symbolic links named like mount
 * targets ("var/lib/db" -> "/etc"), FIFOs, device nodes. So:
 *  - host paths (sources) are opened by the supervisor with RESOLVE_NO_SYMLINKS and
 *    cloned with open_tree() at once; a source that is or passes through a symbolic
 *    link is refused, not followed;
 *  - targets are opened relative to the new root with openat2(RESOLVE_IN_ROOT |
 *    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), created one component at a time
 *    with mkdirat() on the already opened parent, and mounts are attached with
 *    move_mount() to that file descriptor, never to a path that could change;
 *  - every mount is nosuid and nodev (only /dev's own nodes work), noexec where
 *    declared, read-only unless declared rw.
 * The mount namespace is owned by the host's user namespace: once the tenant runs in
 * its own user namespace it holds no capability over any of these mounts, and its
 * seccomp profile refuses the mount API besides. */
#include "sandbox/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host/etc_links.h"
#include "host/etc_synth.h"
#include "lib/fileio.h"
#include "storage/volume.h"

static const char *const top_links[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

struct tree {
        char *target; /* absolute path inside the tenant */
        int fd;       /* detached mount, attributes applied */
        bool is_dir;
};

struct rootfs_plan {
        const struct manifest *m;
        struct rootfs_ids ids;
        int image_fd;       /* ROOT_PATH: the image, else -1 */
        struct tree *trees; /* binds, in mount order (parents first) */
        size_t trees_n;
        struct etc_set etc; /* host-system: the tenant's /etc (host/etc_synth.h) */
        struct {
                char *name;
                char *target;
        } links[6];
        size_t links_n;
        bool declared_tmp, declared_run;
};

static int openat2_fd(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
        struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
        return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

#define RESOLVE_STRICT (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* ---- the supervisor's half ---- */

/* Clones the host path `path` into a detached mount with `attr_set` applied. */
static int clone_host_tree(const char *path, const char *what, uint64_t attr_set, int userns_fd,
                           int *ret_fd, struct stat *ret_st, bool *ret_idmapped,
                           struct tn_err **err)
{
        _cleanup_close_ int fd = openat2_fd(AT_FDCWD, path, O_PATH, RESOLVE_STRICT);
        if (fd < 0) {
                if (errno == ELOOP || errno == EXDEV)
                        return tn_err_setx(
                            err, ELOOP,
                            "%s %s is or passes through a symbolic link; give the real path", what,
                            path);
                return tn_err_set(err, errno, "%s %s", what, path);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "%s %s", what, path);
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return tn_err_setx(err, EINVAL, "%s %s is neither a directory nor a regular file",
                                   what, path);

        int tree = open_tree(fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
                return tn_err_set(err, errno, "%s %s: open_tree", what, path);
        struct mount_attr attr = {.attr_set = attr_set | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                                  .propagation = MS_PRIVATE};
        bool idmapped = false;
        if (userns_fd >= 0) {
                struct mount_attr with_idmap = attr;
                with_idmap.attr_set |= MOUNT_ATTR_IDMAP;
                with_idmap.userns_fd = (uint64_t)userns_fd;
                idmapped =
                    mount_setattr(tree, "", AT_EMPTY_PATH, &with_idmap, sizeof(with_idmap)) == 0;
        }
        if (!idmapped && mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
                int e = errno;
                close(tree);
                return tn_err_set(err, e, "%s %s: mount_setattr", what, path);
        }
        *ret_fd = tree;
        *ret_st = st;
        if (ret_idmapped)
                *ret_idmapped = idmapped;
        return 0;
}

static int add_tree(struct rootfs_plan *p, const char *target, const char *source, const char *what,
                    uint64_t attrs, int userns_fd, bool *ret_idmapped, struct stat *ret_st,
                    struct tn_err **err)
{
        struct tree *t = reallocarray(p->trees, p->trees_n + 1, sizeof(*t));
        if (!t)
                return tn_err_setx(err, ENOMEM, "out of memory");
        p->trees = t;
        t = &p->trees[p->trees_n];
        *t = (struct tree){.fd = -1};
        struct stat st = {0};
        int r = clone_host_tree(source, what, attrs, userns_fd, &t->fd, &st, ret_idmapped, err);
        if (r < 0)
                return r;
        t->is_dir = S_ISDIR(st.st_mode);
        if (ret_st)
                *ret_st = st;
        t->target = strdup(target);
        if (!t->target) {
                close(t->fd);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        p->trees_n++;
        return 0;
}

/* The tenant's /etc (host/etc_synth.h): files and links written on the root tmpfs in
 * build_etc(), each tree bound read-only at its place. The names /usr's links lead to
 * come from the index in the state directory (host/etc_links.h), rebuilt here only when
 * packages changed since; without it the tenant gets the fixed part, with a warning. */
static int synthesize_etc(struct rootfs_plan *p, const char *state_dir, FILE *warn,
                          struct tn_err **err)
{
        struct etc_links links = {0};
        _cleanup_err_ struct tn_err *lerr = NULL;
        if (etc_links_load(state_dir, "/", ETC_LINKS_CACHED, &links, warn, &lerr) < 0)
                fprintf(warn, "/etc: %s: links from /usr into /etc dangle\n", tn_err_msg(lerr));
        int r = etc_synthesize(p->m, "/etc", &links, &p->etc, err);
        etc_links_clear(&links);
        if (r >= 0 && p->etc.left_out)
                fprintf(warn,
                        "/etc: %zu entries that /usr links to are left out (over %u bytes, "
                        "%d directories or %d entries in all)\n",
                        p->etc.left_out, ETC_LINKED_BYTES, ETC_LINKED_TREES, ETC_LINKED_INODES);
        for (size_t i = 0; r >= 0 && i < p->etc.n; i++) {
                const struct etc_entry *e = &p->etc.v[i];
                if (e->kind != ETC_TREE)
                        continue;
                char target[256];
                snprintf(target, sizeof(target), "/etc/%s", e->name);
                r = add_tree(p, target, e->data, "host directory", MOUNT_ATTR_RDONLY, -1, NULL,
                             NULL, err);
        }
        return r;
}

/* host-system: the host's /usr read-only, and /bin, /lib ... as the host has them. */
static int plan_host_system(struct rootfs_plan *p, const char *state_dir, FILE *warn,
                            struct tn_err **err)
{
        int r =
            add_tree(p, "/usr", "/usr", "host directory", MOUNT_ATTR_RDONLY, -1, NULL, NULL, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ARRAY_SIZE(top_links); i++) {
                char path[64], target[256];
                snprintf(path, sizeof(path), "/%s", top_links[i]);
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = '\0';
                        if (strncmp(target, "usr/", 4) != 0 && strncmp(target, "/usr/", 5) != 0)
                                continue; /* a link elsewhere is not part of the OS image */
                        p->links[p->links_n].name = strdup(top_links[i]);
                        p->links[p->links_n].target = strdup(target);
                        if (!p->links[p->links_n].name || !p->links[p->links_n].target)
                                return tn_err_setx(err, ENOMEM, "out of memory");
                        p->links_n++;
                        continue;
                }
                struct stat st;
                if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                        /* A host without merged /usr: bind the directory itself. */
                        r = add_tree(p, path, path, "host directory", MOUNT_ATTR_RDONLY, -1, NULL,
                                     NULL, err);
                        if (r < 0)
                                return r;
                }
        }
        return synthesize_etc(p, state_dir, warn, err);
}

static size_t depth(const char *path)
{
        size_t n = 0;
        for (; *path; path++)
                n += *path == '/';
        return n;
}

/* Tells the operator when a read-write bind will not be writable by the service. `st`
 * is what the opened source was, never the path looked up again: a read-write source
 * may sit inside another one the tenant can change. */
static void check_ownership(const struct rootfs_plan *p, const struct mount_spec *ms, bool idmapped,
                            const struct stat *st, FILE *warn)
{
        if (ms->readonly)
                return;
        uint32_t want_uid = idmapped ? p->ids.uid : p->ids.base + p->ids.uid;
        uint32_t want_gid = idmapped ? p->ids.gid : p->ids.base + p->ids.gid;
        if (st->st_uid == want_uid || (st->st_mode & S_IWOTH) ||
            (st->st_gid == want_gid && (st->st_mode & S_IWGRP)))
                return;
        const char *why = idmapped ? "same ids on disk through an idmapped mount"
                          : p->ids.uid == 0 || p->ids.gid == 0
                              ? "a host uid of its own: tenant root is never idmapped, so "
                                "nothing it writes is owned by the host's root"
                              : "a host uid of its own because this filesystem cannot idmap";
        fprintf(warn,
                "%s (mounted rw at %s) is owned by %u:%u, so the service (uid %u in the tenant, "
                "%s) cannot write it; run: chown %u:%u %s\n",
                ms->source, ms->target, (unsigned)st->st_uid, (unsigned)st->st_gid, p->ids.uid, why,
                want_uid, want_gid, ms->source);
}

/* A volume (storage/volume.h), mounted by the supervisor at its root-only mount point
 * before the sandbox starts: cloned like a bind source, and its root given to the host
 * ids the service's uid and gid have on it, which depends on whether the clone could
 * be idmapped. The mount's root is a directory of the volume's own file system, never
 * a link the tenant could have placed. */
static int plan_volume(struct rootfs_plan *p, size_t i, int idmap_fd, struct tn_err **err)
{
        const struct volume_spec *vs = &p->m->volumes[i];
        struct volume_host v;
        int r = volume_paths("", p->m->name, vs->name, &v, err);
        if (r < 0)
                return r;
        char what[64];
        snprintf(what, sizeof(what), "volumes[%zu]", i);
        bool idmapped = false;
        struct stat st;
        r = add_tree(p, vs->target, v.data, what, vs->noexec ? MOUNT_ATTR_NOEXEC : 0, idmap_fd,
                     &idmapped, &st, err);
        if (r < 0)
                return r;
        uint32_t uid = idmapped ? p->ids.uid : p->ids.base + p->ids.uid;
        uint32_t gid = idmapped ? p->ids.gid : p->ids.base + p->ids.gid;
        if (st.st_uid == uid && st.st_gid == gid)
                return 0;
        _cleanup_close_ int fd =
            openat2_fd(AT_FDCWD, v.data, O_RDONLY | O_DIRECTORY, RESOLVE_STRICT);
        if (fd < 0 || fchown(fd, uid, gid) < 0)
                return tn_err_set(err, errno, "%s: cannot give %s to %u:%u", what, v.data,
                                  (unsigned)uid, (unsigned)gid);
        return 0;
}

static int plan_mounts(struct rootfs_plan *p, int idmap_fd, FILE *warn, struct tn_err **err)
{
        const struct manifest *m = p->m;
        /* Parents before children: a shallower target is mounted first, mounts and
         * volumes alike (entries m->mounts_n and up are volumes). */
        size_t n = m->mounts_n + m->volumes_n;
        _cleanup_free_ size_t *order = calloc(n + 1, sizeof(*order));
        if (!order)
                return tn_err_setx(err, ENOMEM, "out of memory");
#define TARGET_OF(k)                                                                               \
        ((k) < m->mounts_n ? m->mounts[(k)].target : m->volumes[(k)-m->mounts_n].target)
        for (size_t i = 0; i < n; i++) {
                size_t j = i;
                for (; j > 0 && depth(TARGET_OF(order[j - 1])) > depth(TARGET_OF(i)); j--)
                        order[j] = order[j - 1];
                order[j] = i;
        }
#undef TARGET_OF
        for (size_t k = 0; k < n; k++) {
                if (order[k] >= m->mounts_n) {
                        int r = plan_volume(p, order[k] - m->mounts_n, idmap_fd, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                const struct mount_spec *ms = &m->mounts[order[k]];
                p->declared_tmp |= strcmp(ms->target, "/tmp") == 0;
                p->declared_run |= strcmp(ms->target, "/run") == 0;
                if (ms->type != MOUNT_BIND)
                        continue;
                uint64_t attrs =
                    (ms->readonly ? MOUNT_ATTR_RDONLY : 0) | (ms->noexec ? MOUNT_ATTR_NOEXEC : 0);
                char what[64];
                snprintf(what, sizeof(what), "mounts[%zu].source", order[k]);
                bool idmapped = false;
                struct stat st;
                int r =
                    add_tree(p, ms->target, ms->source, what, attrs, idmap_fd, &idmapped, &st, err);
                if (r < 0)
                        return r;
                check_ownership(p, ms, idmapped, &st, warn);
        }
        return 0;
}

int rootfs_prepare(const struct manifest *m, const struct rootfs_ids *ids, int idmap_userns_fd,
                   const char *state_dir, struct rootfs_plan **ret, char **warnings,
                   struct tn_err **err)
{
        _cleanup_(rootfs_plan_freep) struct rootfs_plan *p = calloc(1, sizeof(*p));
        if (!p)
                return tn_err_setx(err, ENOMEM, "out of memory");
        p->m = m;
        p->ids = *ids;
        p->image_fd = -1;

        size_t wlen = 0;
        _cleanup_fclose_ FILE *warn = open_memstream(warnings, &wlen);
        if (!warn)
                return tn_err_setx(err, ENOMEM, "out of memory");
        int r;
        if (m->root.kind == ROOT_PATH) {
                struct stat st;
                r = clone_host_tree(m->root.path, "root.path",
                                    m->root.readonly ? MOUNT_ATTR_RDONLY : 0, -1, &p->image_fd, &st,
                                    NULL, err);
                if (r < 0)
                        return r;
                if (!S_ISDIR(st.st_mode))
                        return tn_err_setx(err, ENOTDIR, "root.path %s is not a directory",
                                           m->root.path);
        } else {
                r = plan_host_system(p, state_dir, warn, err);
                if (r < 0)
                        return r;
        }

        r = plan_mounts(p, idmap_userns_fd, warn, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

size_t rootfs_plan_fds(const struct rootfs_plan *p, int *fds, size_t max)
{
        size_t n = 0;
        if (p->image_fd >= 0 && n < max)
                fds[n++] = p->image_fd;
        for (size_t i = 0; i < p->trees_n && n < max; i++)
                fds[n++] = p->trees[i].fd;
        return n;
}

void rootfs_plan_free(struct rootfs_plan *p)
{
        if (!p)
                return;
        if (p->image_fd >= 0)
                close(p->image_fd);
        for (size_t i = 0; i < p->trees_n; i++) {
                free(p->trees[i].target);
                if (p->trees[i].fd >= 0)
                        close(p->trees[i].fd);
        }
        free(p->trees);
        etc_set_clear(&p->etc);
        for (size_t i = 0; i < p->links_n; i++) {
                free(p->links[i].name);
                free(p->links[i].target);
        }
        free(p);
}

/* ---- the tenant's half: runs in the new mount namespace, as root ---- */

/* Opens (creating as needed) the directory `path` inside the root `rootfd`, one
 * component at a time, never following a symbolic link. With `want_file`, the last
 * component is created as an empty regular file instead. Returns an O_PATH fd. */
static int open_target(int rootfd, const char *path, bool want_file, struct tn_err **err)
{
        _cleanup_close_ int dir =
            openat2_fd(rootfd, "/", O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_STRICT);
        if (dir < 0)
                return tn_err_set(err, errno, "cannot open the new root");
        const char *p = path;
        while (*p == '/')
                p++;
        if (!*p)
                return TAKE_FD(dir);
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                char name[256];
                if (n == 0 || n >= sizeof(name))
                        return tn_err_setx(err, EINVAL, "invalid mount target %s", path);
                memcpy(name, p, n);
                name[n] = '\0';
                bool last = !slash;

                struct stat st;
                if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return tn_err_set(err, errno, "mount target %s", path);
                        int r =
                            last && want_file
                                ? openat(dir, name,
                                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)
                                : mkdirat(dir, name, 0755);
                        if (r < 0 && errno == EROFS)
                                return tn_err_setx(
                                    err, EROFS,
                                    "mount point %s does not exist and \"%s\" cannot "
                                    "be created there (read-only); create it in the "
                                    "image or on the host side first",
                                    path, name);
                        if (r < 0)
                                return tn_err_set(err, errno, "cannot create mount point %s", path);
                        if (last && want_file)
                                close(r);
                } else if (S_ISLNK(st.st_mode)) {
                        return tn_err_setx(err, ELOOP,
                                           "mount target %s: \"%s\" in the tenant's root is a "
                                           "symbolic link; refused",
                                           path, name);
                } else if (!last && !S_ISDIR(st.st_mode)) {
                        return tn_err_setx(
                            err, ENOTDIR, "mount target %s: \"%s\" is not a directory", path, name);
                } else if (last && (want_file ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))) {
                        return tn_err_setx(err, EINVAL,
                                           "mount target %s exists in the tenant's root as a %s, "
                                           "the source is a %s",
                                           path,
                                           S_ISDIR(st.st_mode) ? "directory" : "non-directory",
                                           want_file ? "file" : "directory");
                }
                int next = openat2_fd(dir, name, O_PATH | (last && want_file ? 0 : O_DIRECTORY),
                                      RESOLVE_IN_ROOT | RESOLVE_STRICT);
                if (next < 0)
                        return tn_err_set(err, errno, "mount target %s", path);
                close(dir);
                dir = next;
                if (last)
                        return TAKE_FD(dir);
                p = slash + 1;
        }
}

static int attach(int tree, int rootfd, const char *target, bool is_file, struct tn_err **err)
{
        _cleanup_close_ int fd = open_target(rootfd, target, is_file, err);
        if (fd < 0)
                return fd;
        if (move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return tn_err_set(err, errno, "cannot mount at %s", target);
        return 0;
}

/* A fresh filesystem of `type` with string options (key, value pairs, NULL-ended),
 * mounted at `target` inside the root. */
static int attach_new_fs(int rootfd, const char *target, const char *type,
                         const char *const *options, uint64_t attrs, struct tn_err **err)
{
        _cleanup_close_ int fs = fsopen(type, FSOPEN_CLOEXEC);
        if (fs < 0)
                return tn_err_set(err, errno, "fsopen %s for %s", type, target);
        for (size_t i = 0; options && options[i]; i += 2) {
                int r = options[i + 1]
                            ? fsconfig(fs, FSCONFIG_SET_STRING, options[i], options[i + 1], 0)
                            : fsconfig(fs, FSCONFIG_SET_FLAG, options[i], NULL, 0);
                if (r < 0)
                        return tn_err_set(err, errno, "%s option %s for %s", type, options[i],
                                          target);
        }
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return tn_err_set(err, errno, "cannot create %s for %s", type, target);
        _cleanup_close_ int mnt = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned)attrs);
        if (mnt < 0)
                return tn_err_set(err, errno, "cannot mount %s at %s", type, target);
        return attach(mnt, rootfd, target, false, err);
}

static int build_etc(const struct rootfs_plan *p, int rootfd, struct tn_err **err)
{
        _cleanup_close_ int etc = open_target(rootfd, "/etc", false, err);
        if (etc < 0)
                return etc;
        return etc_write(&p->etc, etc, err);
}

/* /proc of the tenant's pid namespace, read-only, with the kernel's more revealing or
 * dangerous files hidden.
 *
 * Read-only because /proc/PID/mem opened for writing is ptrace's POKEDATA by another
 * name: the kernel allows it to any process of the same uid (a ptrace "attach" check,
 * with no seccomp filter in the way), and a process is dumpable again after every
 * execve, so PR_SET_DUMPABLE cannot hold it. Opening any /proc file for writing on a
 * read-only mount fails with EROFS, whatever the process is; the mount belongs to the
 * host's user namespace, so the tenant cannot make it writable again. What a service
 * loses: writing its own oom_score_adj, comm of another thread, and the like; /proc/sys
 * was read-only already. Reading stays as it was (see docs/security.md). */
static int build_proc(int rootfd, struct tn_err **err)
{
        static const char *const masked_files[] = {
            "kcore",       "keys",        "key-users",     "latency_stats",
            "timer_list",  "sched_debug", "kpagecount",    "kpageflags",
            "kpagecgroup", "kmsg",        "sysrq-trigger",
        };
        static const char *const masked_dirs[] = {"acpi", "asound", "scsi", "firmware", "driver"};
        static const char *const readonly_dirs[] = {"sys", "bus", "fs", "irq"};

        int r = attach_new_fs(
            rootfd, "/proc", "proc", NULL,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ARRAY_SIZE(readonly_dirs); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%s", readonly_dirs[i]);
                _cleanup_close_ int src = openat2_fd(rootfd, path, O_PATH | O_DIRECTORY,
                                                     RESOLVE_IN_ROOT | RESOLVE_STRICT);
                if (src < 0)
                        continue;
                _cleanup_close_ int tree = open_tree(
                    src, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
                if (tree < 0 ||
                    mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) < 0 ||
                    move_mount(tree, "", src, "",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        return tn_err_set(err, errno, "cannot make %s read-only", path);
        }
        for (size_t i = 0; i < ARRAY_SIZE(masked_files); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%s", masked_files[i]);
                _cleanup_close_ int target =
                    openat2_fd(rootfd, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_STRICT);
                if (target < 0)
                        continue; /* this kernel has no such file */
                _cleanup_close_ int null =
                    open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                      MOUNT_ATTR_NOEXEC};
                if (null < 0 || mount_setattr(null, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ||
                    move_mount(null, "", target, "",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        return tn_err_set(err, errno, "cannot mask %s", path);
        }
        for (size_t i = 0; i < ARRAY_SIZE(masked_dirs); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%s", masked_dirs[i]);
                _cleanup_close_ int target = openat2_fd(rootfd, path, O_PATH | O_DIRECTORY,
                                                        RESOLVE_IN_ROOT | RESOLVE_STRICT);
                if (target < 0)
                        continue;
                static const char *const opts[] = {"size", "0", "mode", "0555", NULL};
                r = attach_new_fs(rootfd, path, "tmpfs", opts,
                                  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                      MOUNT_ATTR_NOEXEC,
                                  err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A minimal /dev: null zero full random urandom tty, a private devpts instance, shm,
 * and the usual links. Nothing else of the host's devices. */
static int build_dev(const struct rootfs_plan *p, int rootfd, struct tn_err **err)
{
        static const struct {
                const char *name;
                unsigned major, minor;
        } nodes[] = {
            {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
            {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
        };
        static const char *const dev_opts[] = {"size",      "64k", "mode", "0755",
                                               "nr_inodes", "64",  NULL};
        int r = attach_new_fs(rootfd, "/dev", "tmpfs", dev_opts,
                              MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err);
        if (r < 0)
                return r;
        _cleanup_close_ int devp = open_target(rootfd, "/dev", false, err);
        if (devp < 0)
                return devp;
        _cleanup_close_ int dev = openat(devp, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dev < 0)
                return tn_err_set(err, errno, "cannot open /dev");
        for (size_t i = 0; i < ARRAY_SIZE(nodes); i++)
                if (mknodat(dev, nodes[i].name, S_IFCHR | 0666,
                            makedev(nodes[i].major, nodes[i].minor)) < 0 ||
                    fchmodat(dev, nodes[i].name, 0666, 0) < 0)
                        return tn_err_set(err, errno, "cannot create /dev/%s", nodes[i].name);
        static const char *const links[][2] = {
            {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
            {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
            {"stderr", "/proc/self/fd/2"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                if (symlinkat(links[i][1], dev, links[i][0]) < 0)
                        return tn_err_set(err, errno, "cannot create /dev/%s", links[i][0]);

        /* devpts: a new instance, so the tenant sees only its own terminals; tty group
         * as the tenant sees it (id 5 in its namespace). */
        char gid[16];
        snprintf(gid, sizeof(gid), "%u", p->ids.base + 5);
        const char *pts_opts[] = {"newinstance", NULL,  "ptmxmode", "0666", "mode",
                                  "0620",        "gid", gid,        NULL};
        r = attach_new_fs(rootfd, "/dev/pts", "devpts", pts_opts,
                          MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err);
        if (r < 0)
                return r;
        static const char *const shm_opts[] = {"size", "64m", "mode", "1777", NULL};
        return attach_new_fs(rootfd, "/dev/shm", "tmpfs", shm_opts,
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
}

static int build_tmpfs_mounts(const struct rootfs_plan *p, int rootfd, struct tn_err **err)
{
        const struct manifest *m = p->m;
        char owner_uid[16], owner_gid[16], root_id[16];
        snprintf(root_id, sizeof(root_id), "%u", p->ids.base);
        snprintf(owner_uid, sizeof(owner_uid), "%u", p->ids.base + p->ids.uid);
        snprintf(owner_gid, sizeof(owner_gid), "%u", p->ids.base + p->ids.gid);
        if (m->root.kind == ROOT_HOST_SYSTEM && !p->declared_tmp) {
                const char *opts[] = {"size",  "64m", "mode",  "1777", "uid",
                                      root_id, "gid", root_id, NULL};
                int r = attach_new_fs(rootfd, "/tmp", "tmpfs", opts,
                                      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err);
                if (r < 0)
                        return r;
        }
        if (m->root.kind == ROOT_HOST_SYSTEM && !p->declared_run) {
                const char *opts[] = {"size",    "16m", "mode",    "0755", "uid",
                                      owner_uid, "gid", owner_gid, NULL};
                int r =
                    attach_new_fs(rootfd, "/run", "tmpfs", opts,
                                  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Declared mounts in order (binds prepared by the supervisor, tmpfs made here). The
 * plan's trees are already in mount order; tmpfs mounts are placed by depth too. */
static int build_declared(const struct rootfs_plan *p, int rootfd, struct tn_err **err)
{
        const struct manifest *m = p->m;
        size_t max_depth = 0;
        for (size_t i = 0; i < m->mounts_n; i++)
                if (depth(m->mounts[i].target) > max_depth)
                        max_depth = depth(m->mounts[i].target);
        for (size_t i = 0; i < p->trees_n; i++)
                if (depth(p->trees[i].target) > max_depth)
                        max_depth = depth(p->trees[i].target);
        for (size_t d = 1; d <= max_depth; d++) {
                for (size_t i = 0; i < p->trees_n; i++) {
                        const struct tree *t = &p->trees[i];
                        if (depth(t->target) != d)
                                continue;
                        int r = attach(t->fd, rootfd, t->target, !t->is_dir, err);
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < m->mounts_n; i++) {
                        const struct mount_spec *ms = &m->mounts[i];
                        if (ms->type != MOUNT_TMPFS || depth(ms->target) != d)
                                continue;
                        char size[32], root_id[16];
                        snprintf(size, sizeof(size), "%llu", (unsigned long long)ms->size);
                        snprintf(root_id, sizeof(root_id), "%u", p->ids.base);
                        /* The tenant's root owns it, as in a microVM and as /tmp is
                         * anywhere: not the host's root, which the tenant's user
                         * namespace shows as the overflow id 65534. */
                        const char *opts[] = {"size",  size,  "mode",  "1777", "uid",
                                              root_id, "gid", root_id, NULL};
                        uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                         (ms->noexec ? MOUNT_ATTR_NOEXEC : 0) |
                                         (ms->readonly ? MOUNT_ATTR_RDONLY : 0);
                        int r = attach_new_fs(rootfd, ms->target, "tmpfs", opts, attrs, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* True when the image at `rootfd` lacks a directory or file the build mounts on: /proc,
 * /dev, a declared target. Anything else wrong with a target (a symbolic link, a file
 * where a directory is wanted) is left to open_target() to refuse with its message. */
static bool image_lacks_targets(const struct rootfs_plan *p, int rootfd)
{
        const struct manifest *m = p->m;
        static const char *const system_dirs[] = {"/proc", "/dev"};
        size_t n = ARRAY_SIZE(system_dirs) + p->trees_n + m->mounts_n;
        for (size_t i = 0; i < n; i++) {
                const char *path;
                if (i < ARRAY_SIZE(system_dirs))
                        path = system_dirs[i];
                else if (i < ARRAY_SIZE(system_dirs) + p->trees_n)
                        path = p->trees[i - ARRAY_SIZE(system_dirs)].target;
                else
                        path = m->mounts[i - ARRAY_SIZE(system_dirs) - p->trees_n].target;
                int fd = openat2_fd(rootfd, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_STRICT);
                if (fd < 0 && errno == ENOENT)
                        return true;
                if (fd >= 0)
                        close(fd);
        }
        return false;
}

/* A read-only image that lacks a mount point runs as bubblewrap runs it: on a writable
 * skeleton, never by writing into the image. The staging place gets a small tmpfs of
 * this namespace's (nothing of it is reachable once the old root is detached) holding
 * the image as the lower layer of an overlay, the overlay's upper and work directories,
 * and the overlay itself at `root`, which becomes the staging place of the new root.
 * Missing directories are then made in the upper layer by open_target() as in any
 * root, and step 6 makes the overlay's mount read-only like the image's. */
static int image_skeleton(const struct rootfs_plan *p, const char *staging, char *root,
                          size_t root_size, struct tn_err **err)
{
        static const char *const dirs[] = {"lower", "upper", "work", "root"};
        _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "1m", 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return tn_err_set(err, errno, "cannot create the skeleton's tmpfs");
        _cleanup_close_ int mnt =
            fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (mnt < 0)
                return tn_err_set(err, errno, "cannot mount the skeleton's tmpfs");
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if (mkdirat(mnt, dirs[i], 0755) < 0)
                        return tn_err_set(err, errno, "cannot create the skeleton's %s", dirs[i]);
        if (move_mount(mnt, "", AT_FDCWD, staging, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return tn_err_set(err, errno, "cannot mount the skeleton's tmpfs");
        char lower[64], upper[64], work[64];
        snprintf(lower, sizeof(lower), "%s/lower", staging);
        snprintf(upper, sizeof(upper), "%s/upper", staging);
        snprintf(work, sizeof(work), "%s/work", staging);
        snprintf(root, root_size, "%s/root", staging);
        if (move_mount(p->image_fd, "", AT_FDCWD, lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return tn_err_set(err, errno, "cannot mount the root image");
        _cleanup_close_ int ovl = fsopen("overlay", FSOPEN_CLOEXEC);
        if (ovl < 0 || fsconfig(ovl, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
            fsconfig(ovl, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
            fsconfig(ovl, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
            fsconfig(ovl, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return tn_err_set(err, errno,
                                  "the root image is read-only and lacks a mount point; the "
                                  "writable skeleton over it (overlay) failed");
        _cleanup_close_ int omnt =
            fsmount(ovl, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (omnt < 0 || move_mount(omnt, "", AT_FDCWD, root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return tn_err_set(err, errno, "cannot mount the skeleton over the root image");
        return 0;
}

int rootfs_build(const struct rootfs_plan *p, struct tn_err **err)
{
        /* 1. Nothing we mount may propagate back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return tn_err_set(err, errno, "cannot make mounts private");

        /* 2. The base: a fresh tmpfs (host-system) or the image, at a staging place in
         *    this private namespace; a read-only image that lacks a mount point gets a
         *    writable skeleton over it (image_skeleton()). */
        static const char *const base_opts[] = {"size",      "32m",  "mode", "0755",
                                                "nr_inodes", "4096", NULL};
        const char *staging = "/tmp";
        char skeleton_root[64];
        bool skeleton =
            p->image_fd >= 0 && p->m->root.readonly && image_lacks_targets(p, p->image_fd);
        if (skeleton) {
                /* A read-only image without a mount point the build needs. */
                int r = image_skeleton(p, staging, skeleton_root, sizeof(skeleton_root), err);
                if (r < 0)
                        return r;
                staging = skeleton_root;
        } else if (p->image_fd >= 0) {
                if (move_mount(p->image_fd, "", AT_FDCWD, staging, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return tn_err_set(err, errno, "cannot mount the root image");
        } else {
                _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
                for (size_t i = 0; fs >= 0 && base_opts[i]; i += 2)
                        if (fsconfig(fs, FSCONFIG_SET_STRING, base_opts[i], base_opts[i + 1], 0) <
                            0)
                                return tn_err_set(err, errno, "root tmpfs option %s", base_opts[i]);
                if (fs < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                        return tn_err_set(err, errno, "cannot create the root tmpfs");
                _cleanup_close_ int mnt =
                    fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
                if (mnt < 0 || move_mount(mnt, "", AT_FDCWD, staging, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return tn_err_set(err, errno, "cannot mount the root tmpfs");
        }
        _cleanup_close_ int rootfd = open(staging, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return tn_err_set(err, errno, "cannot open the new root");

        /* 3. host-system: /usr, the top-level links into it, a synthesized /etc. */
        int r;
        if (p->image_fd < 0) {
                _cleanup_close_ int dir = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dir < 0)
                        return tn_err_set(err, errno, "cannot open the new root");
                for (size_t i = 0; i < p->links_n; i++)
                        if (symlinkat(p->links[i].target, dir, p->links[i].name) < 0)
                                return tn_err_set(err, errno, "cannot create /%s",
                                                  p->links[i].name);
                r = build_etc(p, rootfd, err);
                if (r < 0)
                        return r;
        }

        /* 4. The default /tmp and /run unless declared, then binds (/usr, /etc trees,
         *    declared sources) and declared tmpfs mounts, parents first, so that a
         *    declared mount below /tmp or /run lands on top of the default one. */
        r = build_tmpfs_mounts(p, rootfd, err);
        if (r >= 0)
                r = build_declared(p, rootfd, err);
        /* 5. /proc and /dev. */
        if (r >= 0)
                r = build_proc(rootfd, err);
        if (r >= 0)
                r = build_dev(p, rootfd, err);
        if (r < 0)
                return r;

        /* 6. The base itself becomes read-only: the tenant writes only where a mount
         *    says rw (and in /tmp, /run, /dev/shm). */
        if (p->image_fd < 0 || skeleton) {
                struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
                if (mount_setattr(rootfd, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
                        return tn_err_set(err, errno, "cannot make the root read-only");
        }

        /* 7. pivot_root into it. pivot_root(".", ".") stacks the old root on top of the
         *    new one; unmounting "." then detaches the old root, the host's whole tree,
         *    from this namespace. No directory for the old root is needed, so this
         *    works on a read-only root too. */
        if (chdir(staging) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
                return tn_err_set(err, errno, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                return tn_err_set(err, errno, "cannot detach the host's root");
        if (chdir("/") < 0)
                return tn_err_set(err, errno, "chdir /");
        return 0;
}
