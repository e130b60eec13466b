/* trust.c — may a root process act on what this file says? (see trust.h)
 *
 * The path is walked twice: as given (every prefix, so a symbolic link on the way is
 * seen and must be root's), and as the kernel resolves it (realpath(), every directory
 * from the file up to "/"). Both walks apply the same rules; the role of a directory
 * decides whether a sticky root-owned directory may be writable by others. */
#include "lib/trust.h"

#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum role {
        ROLE_TARGET,   /* the file (or, for TRUST_DIR, the directory) asked about */
        ROLE_PARENT,   /* the directory a file is in: no sticky exception */
        ROLE_ANCESTOR, /* any directory above: root-owned and sticky is acceptable */
};

static const char *owner_name(uid_t uid, char *buf, size_t len)
{
        const struct passwd *pw = getpwuid(uid);
        if (pw)
                snprintf(buf, len, "uid %u (%s)", (unsigned)uid, pw->pw_name);
        else
                snprintf(buf, len, "uid %u", (unsigned)uid);
        return buf;
}

/* Says what is wrong with `what` (the subject itself, or a directory or link on its
 * path), or returns 0. */
static int judge(const char *subject, const char *what, const struct stat *st, enum role role,
                 struct tn_err **err)
{
        char on_path[PATH_MAX + 64] = "";
        if (strcmp(subject, what) != 0)
                snprintf(on_path, sizeof(on_path), "%s: %s %s on its path", subject,
                         S_ISLNK(st->st_mode)   ? "the symbolic link"
                         : S_ISDIR(st->st_mode) ? "the directory"
                                                : "the file",
                         what);
        else
                snprintf(on_path, sizeof(on_path), "%s", subject);
        char who[128];
        if (st->st_uid != 0) {
                if (S_ISLNK(st->st_mode))
                        return tn_err_setx(err, EPERM,
                                           "%s is owned by %s, not root: that user could point "
                                           "it elsewhere; fix: name the real path, or have root "
                                           "own the link",
                                           on_path, owner_name(st->st_uid, who, sizeof(who)));
                return tn_err_setx(err, EPERM,
                                   "%s is owned by %s, not root: that user could change what "
                                   "tenantd runs as root; fix: chown root %s",
                                   on_path, owner_name(st->st_uid, who, sizeof(who)), what);
        }
        if (S_ISLNK(st->st_mode))
                return 0; /* a link's mode means nothing; where it leads is walked too */
        mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);
        if (!w)
                return 0;
        if (role == ROLE_ANCESTOR && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
                return 0; /* others may add entries, never remove or rename root's */
        char group[96];
        const struct group *gr = getgrgid(st->st_gid);
        if (gr)
                snprintf(group, sizeof(group), "group %s", gr->gr_name);
        else
                snprintf(group, sizeof(group), "group %u", (unsigned)st->st_gid);
        return tn_err_setx(err, EPERM,
                           "%s is writable by %s (mode %04o): %s could change what tenantd runs "
                           "as root; fix: chmod %s %s",
                           on_path, (w & S_IWOTH) ? "everyone" : group,
                           (unsigned)(st->st_mode & 07777),
                           (w & S_IWOTH) ? "any local user" : "any member of that group",
                           w == (S_IWGRP | S_IWOTH) ? "go-w"
                           : (w & S_IWOTH)          ? "o-w"
                                                    : "g-w",
                           what);
}

/* Checks `path` (absolute) and every directory above it. For a file, the directory it
 * is in is held to the target's rule (no sticky exception); for a directory, only the
 * directory itself is. */
static int walk(const char *subject, const char *path, enum trust_kind kind, struct tn_err **err)
{
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", subject);
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/')
                buf[--len] = '\0';
        enum role role = ROLE_TARGET;
        for (;;) {
                struct stat st;
                if (lstat(buf, &st) < 0)
                        return strcmp(subject, buf) == 0
                                   ? tn_err_set(err, errno, "%s", subject)
                                   : tn_err_set(err, errno, "%s: %s", subject, buf);
                int r = judge(subject, buf, &st, role, err);
                if (r < 0)
                        return r;
                if (strcmp(buf, "/") == 0)
                        return 0;
                char *slash = strrchr(buf, '/');
                if (slash == buf)
                        slash[1] = '\0'; /* the parent is "/" */
                else
                        *slash = '\0';
                role = role == ROLE_TARGET && kind == TRUST_FILE ? ROLE_PARENT : ROLE_ANCESTOR;
        }
}

int trust_check(const char *path, enum trust_kind kind, char **ret_real, struct tn_err **err)
{
        char abs[PATH_MAX];
        if (path[0] == '/') {
                if (snprintf(abs, sizeof(abs), "%s", path) >= (int)sizeof(abs))
                        return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", path);
        } else {
                char cwd[PATH_MAX];
                if (!getcwd(cwd, sizeof(cwd)))
                        return tn_err_set(err, errno, "%s: cannot know the current directory",
                                          path);
                if (snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= (int)sizeof(abs))
                        return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", path);
        }
        int r = walk(path, abs, kind, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *real = realpath(abs, NULL);
        if (!real)
                return tn_err_set(err, errno, "%s", path);
        struct stat st;
        if (stat(real, &st) < 0)
                return tn_err_set(err, errno, "%s", path);
        if (kind == TRUST_FILE && !S_ISREG(st.st_mode))
                return tn_err_setx(err, EINVAL, "%s is not a regular file", path);
        if (kind == TRUST_DIR && !S_ISDIR(st.st_mode))
                return tn_err_setx(err, ENOTDIR, "%s is not a directory", path);
        if (strcmp(real, abs) != 0) {
                r = walk(path, real, kind, err);
                if (r < 0)
                        return r;
        }
        if (ret_real)
                *ret_real = TAKE_PTR(real);
        return 0;
}
