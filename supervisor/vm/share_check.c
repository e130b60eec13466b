/* share_check.c — see share_check.h. */
#include "vm/share_check.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spec/policy.h"
#include "storage/volume.h"
#include "vm/vm_root.h"

#define DEFAULT_MANIFEST_DIR TENANTD_SYSCONFDIR "/tenantd/services"
#define DEFAULT_CONFIG_FILE TENANTD_SYSCONFDIR "/tenantd/tenantd.conf"

/* The kernel's interfaces: no share in any mode may be in them. */
static const char *const kernel_dirs[] = {"/proc", "/sys", "/dev"};

/* Host paths root's programs trust: a read-write share may not be one, lie inside one,
 * or hold one. */
static const char *const system_dirs[] = {
    "/etc",       "/usr",       "/boot",     "/root",        "/bin",     "/sbin",
    "/lib",       "/lib32",     "/lib64",    "/libx32",      "/var/lib", "/var/log",
    "/var/spool", "/var/cache", "/var/mail", "/var/backups", "/run",     "/snap",
};

/* Directories that group entries of others: a read-write share may lie inside one (a
 * directory of the operator's under /srv or /home/alice) but not be the whole. */
static const char *const grouping_dirs[] = {"/home", "/tmp",   "/var/tmp", "/srv",
                                            "/mnt",  "/media", "/opt",     "/var"};

/* Whether a is b or lies inside b (both absolute and normalised). */
static bool path_within(const char *a, const char *b)
{
        size_t n = strlen(b);
        if (n == 1) /* "/" */
                return true;
        return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

static bool overlaps(const char *a, const char *b)
{
        return path_within(a, b) || path_within(b, a);
}

/* The real path of `path`, following symbolic links as far as it exists; what does
 * not exist yet is appended as written (manifest paths are normalised: no "." or
 * ".." components, no trailing or doubled slashes). A dangling link is followed too:
 * what it names is what the path will be once that exists. */
static int resolve_depth(const char *path, char out[PATH_MAX], int depth)
{
        if (depth > 40)
                return -ELOOP;
        char head[PATH_MAX];
        if (snprintf(head, sizeof(head), "%s", path) >= (int)sizeof(head))
                return -ENAMETOOLONG;
        size_t len = strlen(head);
        for (;;) {
                char real[PATH_MAX];
                const char *tail = path + len;
                if (realpath(head, real)) {
                        bool root = strcmp(real, "/") == 0;
                        if (snprintf(out, PATH_MAX, "%s%s", root && *tail ? "" : real, tail) >=
                            PATH_MAX)
                                return -ENAMETOOLONG;
                        return 0;
                }
                if (errno != ENOENT && errno != ENOTDIR)
                        return -errno;
                char target[PATH_MAX];
                ssize_t n = readlink(head, target, sizeof(target) - 1);
                if (n > 0) { /* a dangling link: resolve what it names, then the rest */
                        target[n] = '\0';
                        char next[PATH_MAX];
                        char *slash = strrchr(head, '/');
                        int w;
                        if (target[0] == '/')
                                w = snprintf(next, sizeof(next), "%s%s", target, tail);
                        else
                                w = snprintf(next, sizeof(next), "%.*s/%s%s",
                                             (int)(slash ? slash - head : 0), head, target, tail);
                        if (w >= (int)sizeof(next))
                                return -ENAMETOOLONG;
                        return resolve_depth(next, out, depth + 1);
                }
                char *slash = strrchr(head, '/');
                if (!slash)
                        return -EINVAL;
                if (slash == head) { /* "/x" does not exist: "/" does */
                        if (snprintf(out, PATH_MAX, "%s", path) >= PATH_MAX)
                                return -ENAMETOOLONG;
                        return 0;
                }
                *slash = '\0';
                len = (size_t)(slash - head);
        }
}

static int resolve(const char *path, char out[PATH_MAX])
{
        out[0] = '\0'; /* a string even on a path that returns without writing it */
        return resolve_depth(path, out, 0);
}

/* One of tenantd's own paths, resolved; false when it cannot be (then it is compared
 * as written). */
static void own_path(const char *given, char out[PATH_MAX])
{
        if (resolve(given, out) < 0)
                snprintf(out, PATH_MAX, "%s", given);
}

struct own_path {
        const char *label, *path;
};

int share_check_path(const char *real, bool readonly, const struct tenantd_dirs *d,
                     const char *what, struct tn_err **err)
{
        if (real[0] != '/')
                return tn_err_setx(err, EINVAL, "%s: %s is not an absolute path", what, real);
        if (strcmp(real, "/") == 0)
                return tn_err_setx(err, EPERM,
                                   "%s: / is the host's whole tree; declare the directories the "
                                   "tenant needs",
                                   what);

        /* tenantd's own files, in any mode: either containing the other. */
        struct own_path own[8 + POLICY_MAX_SEARCH] = {
            {"state directory", d ? d->state_dir : NULL},
            {"storage directory", d ? d->storage_dir : NULL},
            {"manifest directory", d && d->manifest_dir ? d->manifest_dir : DEFAULT_MANIFEST_DIR},
            {"configuration file", d && d->config_file ? d->config_file : DEFAULT_CONFIG_FILE},
            {"runtime directory", "/run/tenantd"},
            {"microVM root skeletons", VM_ROOT_DIR},
            {"share mounts", SHARE_MOUNT_DIR},
            {"volume mounts", VOLUME_MOUNT_DIR},
        };
        const char *dirs[POLICY_MAX_SEARCH];
        size_t n = 8, np = policy_search_path(dirs);
        for (size_t i = 0; i < np; i++)
                own[n++] = (struct own_path){"policy directory", dirs[i]};
        for (size_t i = 0; i < n; i++) {
                if (!own[i].path)
                        continue;
                char p[PATH_MAX];
                own_path(own[i].path, p);
                if (overlaps(real, p))
                        return tn_err_setx(err, EPERM,
                                           "%s: %s %s tenantd's %s %s: a tenant never gets "
                                           "tenantd's own files",
                                           what, real, path_within(real, p) ? "is in" : "holds",
                                           own[i].label, p);
        }
        for (size_t i = 0; i < ARRAY_SIZE(kernel_dirs); i++)
                if (path_within(real, kernel_dirs[i]))
                        return tn_err_setx(err, EPERM,
                                           "%s: %s is in %s: the host kernel's interfaces are "
                                           "never shared",
                                           what, real, kernel_dirs[i]);
        if (readonly)
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(system_dirs); i++) {
                bool in = path_within(real, system_dirs[i]);
                if (in || path_within(system_dirs[i], real))
                        return tn_err_setx(err, EPERM,
                                           "%s: %s %s %s, which the host's root trusts: a tenant "
                                           "may not own it read-write; share it read-only, or a "
                                           "directory of the tenant's own (under /srv)",
                                           what, real, in ? "is in" : "holds", system_dirs[i]);
        }
        for (size_t i = 0; i < ARRAY_SIZE(grouping_dirs); i++)
                if (strcmp(real, grouping_dirs[i]) == 0)
                        return tn_err_setx(err, EPERM,
                                           "%s: %s holds others' files: share read-write a "
                                           "directory inside it that is the tenant's alone",
                                           what, real);
        return 0;
}

int share_check_source(const char *source, bool readonly, const struct tenantd_dirs *d,
                       const char *what, struct tn_err **err)
{
        char real[PATH_MAX];
        int r = resolve(source, real);
        if (r < 0)
                return tn_err_set(err, -r, "%s: %s", what, source);
        return share_check_path(real, readonly, d, what, err);
}

int share_check_fd(int fd, bool readonly, const struct tenantd_dirs *d, const char *what,
                   struct tn_err **err)
{
        char link[64], real[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, real, sizeof(real) - 1);
        if (n < 0)
                return tn_err_set(err, errno, "%s: readlink %s", what, link);
        real[n] = '\0';
        /* A directory that was removed, or is not reachable from our root, shows as
         * such: nothing to share. */
        if (real[0] != '/' || strstr(real, " (deleted)"))
                return tn_err_setx(err, ENOENT, "%s: %s is gone", what, real);
        return share_check_path(real, readonly, d, what, err);
}

int share_check_manifest(const struct manifest *m, const struct tenantd_dirs *d,
                         share_report_fn report, void *ctx, struct tn_err **err)
{
        int refused = 0;
        for (size_t i = 0; i <= m->mounts_n; i++) {
                const char *source;
                bool readonly;
                char what[48];
                if (i == m->mounts_n) {
                        if (m->root.kind != ROOT_PATH)
                                break;
                        source = m->root.path;
                        readonly = m->root.readonly;
                        snprintf(what, sizeof(what), "root.path");
                } else {
                        const struct mount_spec *ms = &m->mounts[i];
                        if (ms->type != MOUNT_BIND)
                                continue;
                        source = ms->source;
                        readonly = ms->readonly;
                        snprintf(what, sizeof(what), "mounts[%zu].source", i);
                }
                _cleanup_err_ struct tn_err *e = NULL;
                if (share_check_source(source, readonly, d, what, &e) == 0)
                        continue;
                if (!report) {
                        if (err && !*err)
                                *err = TAKE_PTR(e);
                        return -EPERM;
                }
                report(ctx, what, tn_err_msg(e));
                refused++;
        }
        return refused;
}

/* ---- what QEMU's user can reach ---- */

#define REACH_DEPTH_MAX 64
#define REACH_SOURCE_UNREADABLE 200
#define REACH_NO_IDS 201

static int reach_refusal(const char *dir, bool is_source, const char *user, const char *what,
                         struct tn_err **err)
{
        struct stat st;
        char how[96] = "";
        if (lstat(dir, &st) == 0)
                snprintf(how, sizeof(how), " (mode %04o, owner %u:%u)",
                         (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid);
        if (is_source)
                return tn_err_setx(err, EACCES,
                                   "%s: QEMU's user %s cannot read and search (rx) the share %s%s, "
                                   "which it serves to the guest: run chmod o+rx %s (or setfacl "
                                   "-m u:%s:rx %s)",
                                   what, user, dir, how, dir, user, dir);
        return tn_err_setx(err, EACCES,
                           "%s: QEMU's user %s cannot search (x) %s%s, which leads to the share "
                           "it serves to the guest: run chmod o+x %s (or setfacl -m u:%s:x %s)",
                           what, user, dir, how, dir, user, dir);
}

int share_check_reach(const char *source, const char *user, const char *what, struct tn_err **err)
{
        struct passwd pw, *found = NULL;
        char buf[4096];
        if (getpwnam_r(user, &pw, buf, sizeof(buf), &found) != 0 || !found)
                return 0;
        gid_t groups[64];
        int n_groups = (int)ARRAY_SIZE(groups);
        if (getgrouplist(user, pw.pw_gid, groups, &n_groups) < 0)
                n_groups = 0; /* more than 64 groups: check with the primary one only */
        /* Every directory on the way, outermost first: "/a", "/a/b", ... (the source
         * itself last), as lengths of `source` worked out before the fork: the child
         * only copies bytes and makes system calls. */
        size_t len = strlen(source);
        if (source[0] != '/' || len >= PATH_MAX)
                return tn_err_setx(err, EINVAL, "%s: %s is not an absolute path", what, source);
        size_t ends[REACH_DEPTH_MAX], n = 0;
        for (size_t i = 1; i <= len && n < REACH_DEPTH_MAX; i++)
                if (i == len || source[i] == '/')
                        ends[n++] = i;
        char dir[PATH_MAX];

        pid_t pid = fork();
        if (pid < 0)
                return tn_err_set(err, errno, "%s: fork to check %s", what, source);
        if (pid == 0) {
                if (setgroups((size_t)n_groups, groups) < 0 || setgid(pw.pw_gid) < 0 ||
                    setuid(pw.pw_uid) < 0)
                        _exit(REACH_NO_IDS);
                for (size_t i = 0; i < n; i++) {
                        memcpy(dir, source, ends[i]);
                        dir[ends[i]] = '\0';
                        if (access(dir, X_OK) < 0)
                                _exit((int)i + 1);
                }
                _exit(access(source, R_OK | X_OK) < 0 ? REACH_SOURCE_UNREADABLE : 0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return tn_err_set(err, errno, "%s: wait for the check of %s", what, source);
        if (!WIFEXITED(status) || WEXITSTATUS(status) == REACH_NO_IDS)
                return tn_err_setx(err, EIO, "%s: cannot check what %s can reach of %s", what, user,
                                   source);
        int code = WEXITSTATUS(status);
        if (code == 0)
                return 0;
        if (code == REACH_SOURCE_UNREADABLE)
                return reach_refusal(source, true, user, what, err);
        size_t i = (size_t)code - 1;
        if (i >= n)
                return tn_err_setx(err, EIO, "%s: cannot check what %s can reach of %s", what, user,
                                   source);
        snprintf(dir, sizeof(dir), "%.*s", (int)ends[i], source);
        return reach_refusal(dir, i + 1 == n, user, what, err);
}
