/* buildtree.c — an uninstalled tree finds its own files (see buildtree.h). */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buildtree.h"

static char root[PATH_MAX], bindir[PATH_MAX];
static bool looked, found;

static bool is_dir(const char *base, const char *rel)
{
        char path[PATH_MAX];
        struct stat st;
        return snprintf(path, sizeof(path), "%s/%s", base, rel) < (int)sizeof(path) &&
               stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *base, const char *rel)
{
        char path[PATH_MAX];
        struct stat st;
        return snprintf(path, sizeof(path), "%s/%s", base, rel) < (int)sizeof(path) &&
               stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The markers of a source tree: its Makefile, supervisor/ and policies/seccomp/. */
static void look(void)
{
        looked = true;
        ssize_t n = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
        if (n <= 0 || (size_t)n >= sizeof(bindir) - 1)
                return;
        bindir[n] = '\0';
        char *slash = strrchr(bindir, '/');
        if (!slash || slash == bindir)
                return;
        *slash = '\0'; /* the executable's directory */
        snprintf(root, sizeof(root), "%s", bindir);
        slash = strrchr(root, '/');
        if (!slash)
                return;
        if (slash == root)
                slash[1] = '\0';
        else
                *slash = '\0';
        found = is_file(root, "Makefile") && is_dir(root, "supervisor") &&
                is_dir(root, "policies/seccomp");
}

const char *buildtree_root(void)
{
        if (!looked)
                look();
        return found ? root : NULL;
}

const char *buildtree_bindir(void)
{
        return buildtree_root() ? bindir : NULL;
}
