/* virtiofsd_wrap.c — tenantd-virtiofsd: what libvirt starts instead of virtiofsd for a
 * microVM's read-write share (the domain's <filesystem><binary path=.../>), so that
 * guest root cannot leave a setuid-root program or a device node on the host's disk
 * (issue 10, item 3). A program of its own, linked with libseccomp only: libvirt
 * starts one per share and per boot.
 *
 * virtiofsd runs as root on the host and creates files with the guest's ids, root
 * included. So, in this order, before it runs:
 *  1. The share's directory, the `source=` of libvirt's `-o` option, is opened with
 *     O_PATH and RESOLVE_NO_SYMLINKS: tenantd checked that path (no symbolic link, not
 *     one of its own or of the host's system directories), and a tenant that swapped a
 *     component for a link since then gets a refusal here, not the link's target.
 *  2. A private mount namespace of its own (propagation private from "/": nothing of
 *     it reaches libvirtd's or the host's mount table).
 *  3. That very directory, by its descriptor (open_tree), is mounted nosuid, nodev and
 *     noexec on SHARE_MOUNT_DIR/share (the directory 0700 root): whatever is in the
 *     share, nothing is honoured through the mount virtiofsd serves. virtiofsd is told
 *     to serve that mount instead of the path.
 *  4. A seccomp filter that makes the bits never land on disk, where other local users
 *     reach the original directory (a nosuid mount cannot help them): mknod/mknodat of
 *     a character or block device, and chmod/fchmod/fchmodat, open/openat/creat and
 *     mkdir/mkdirat with a mode that has S_ISUID or S_ISGID, fail with EPERM; calls
 *     that carry their mode or name where a filter cannot look (openat2, fchmodat2,
 *     the *setxattr family: a "security.capability" attribute is a file capability)
 *     fail with ENOSYS or EPERM. Filters stack: virtiofsd adds its own on top.
 *  5. exec the real virtiofsd with the same arguments (but the source, and with
 *     allow_direct_io, see serve_from_private_mount).
 * Any failure is reported on stderr (libvirt's log of the domain) and the program
 * exits 1: virtiofsd then never runs, and the domain fails to start. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdbool.h>
#include <stdarg.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vm/share_check.h"

#define SHARE_MOUNT_POINT SHARE_MOUNT_DIR "/share"
#define PROG "tenantd-virtiofsd"

/* Where Debian 12 and others keep virtiofsd: the Rust one of the virtiofsd package
 * first, then QEMU's C one (qemu-system-common). */
static const char *const virtiofsd_paths[] = {"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"};

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_setxattrat
#define __NR_setxattrat 463
#endif

/* Says what failed (with strerror(e) unless e is 0) and exits 1. */
static void die(int e, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int e, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, PROG ": ");
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (e)
                fprintf(stderr, ": %s", strerror(e));
        fputc('\n', stderr);
        exit(1);
}

/* A directory of root's alone, made if missing: SHARE_MOUNT_DIR and its mount point. */
static void root_only_dir(const char *path)
{
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                die(errno, "cannot create %s", path);
        struct stat st;
        if (lstat(path, &st) < 0)
                die(errno, "%s", path);
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0)
                die(0, "%s is not a directory of root's", path);
        if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
                die(errno, "chmod 0700 %s", path);
}

/* The value of "source=" in an -o option string, with libvirt's ",," escapes undone;
 * *ret_end points past it (at the ',' that ends it, or the NUL). */
static char *source_value(const char *opts, const char **ret_start, const char **ret_end)
{
        const char *p = opts;
        while (p && strncmp(p, "source=", 7) != 0) {
                /* next option: a single ',' (",," is a comma inside a value) */
                while (*p && !(p[0] == ',' && p[1] != ',')) {
                        if (p[0] == ',' && p[1] == ',')
                                p++;
                        p++;
                }
                p = *p ? p + 1 : NULL;
        }
        if (!p)
                return NULL;
        const char *v = p + 7;
        char *out = malloc(strlen(v) + 1), *o = out;
        if (!out)
                die(0, "out of memory");
        while (*v) {
                if (v[0] == ',' && v[1] == ',') {
                        *o++ = ',';
                        v += 2;
                } else if (v[0] == ',') {
                        break;
                } else {
                        *o++ = *v++;
                }
        }
        *o = '\0';
        *ret_start = p;
        *ret_end = v;
        return out;
}

/* Steps 1-3: returns the -o string with the source replaced by the private mount. */
static char *serve_from_private_mount(const char *opts)
{
        const char *start, *end;
        char *source = source_value(opts, &start, &end);
        if (!source)
                return NULL;
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        int fd = (int)syscall(SYS_openat2, AT_FDCWD, source, &how, sizeof(how));
        if (fd < 0 && (errno == ELOOP || errno == EXDEV))
                die(0, "share %s is or passes through a symbolic link; refused", source);
        if (fd < 0)
                die(errno, "share %s", source);

        /* Cloned while still in libvirtd's namespace (open_tree refuses a mount of
         * another one), and made nosuid,nodev,noexec before it is attached anywhere. */
        int tree = (int)syscall(SYS_open_tree, fd, "",
                                AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
                die(errno, "open_tree %s", source);
        struct mount_attr attr = {.attr_set =
                                      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                                  .propagation = MS_PRIVATE};
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                die(errno, "mount_setattr %s", source);
        root_only_dir(SHARE_MOUNT_DIR);
        root_only_dir(SHARE_MOUNT_POINT);
        if (unshare(CLONE_NEWNS) < 0)
                die(errno, "unshare(CLONE_NEWNS)");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                die(errno, "making the mount namespace private");
        if (syscall(SYS_move_mount, tree, "", AT_FDCWD, SHARE_MOUNT_POINT,
                    MOVE_MOUNT_F_EMPTY_PATH) < 0)
                die(errno, "move_mount %s", source);
        close(tree);
        close(fd);

        /* allow_direct_io: a guest's O_DIRECT stays O_DIRECT on the host, as it does for a
         * sandbox's bind mount. It is also what lets a volume's io limits hold for a
         * microVM: a direct write is issued by virtiofsd itself, which is in the tenant's
         * cgroup, where a buffered one is issued later by the kernel's writeback, which
         * cgroup v1's blkio throttle does not see. */
        char *out = NULL;
        if (asprintf(&out, "%.*ssource=%s%s%s", (int)(start - opts), opts, SHARE_MOUNT_POINT, end,
                     strstr(opts, "direct_io") ? "" : ",allow_direct_io") < 0)
                die(0, "out of memory");
        free(source);
        return out;
}

static void rule(scmp_filter_ctx ctx, int err, int nr, unsigned arg, scmp_datum_t mask,
                 scmp_datum_t value)
{
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 1,
                                 SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, mask, value));
        if (r < 0)
                die(-r, "seccomp rule for syscall %d", nr);
}

/* The mode argument of a call must have neither S_ISUID nor S_ISGID. */
static void no_setid(scmp_filter_ctx ctx, int nr, unsigned arg)
{
        rule(ctx, EPERM, nr, arg, S_ISUID, S_ISUID);
        rule(ctx, EPERM, nr, arg, S_ISGID, S_ISGID);
}

static void refuse(scmp_filter_ctx ctx, int err, int nr)
{
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0);
        if (r < 0 && r != -EDOM) /* -EDOM: a call this architecture lacks */
                die(-r, "seccomp rule for syscall %d", nr);
}

/* Step 4. */
static void load_filter(void)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                die(ENOMEM, "seccomp_init");
        no_setid(ctx, SCMP_SYS(chmod), 1);
        no_setid(ctx, SCMP_SYS(fchmod), 1);
        no_setid(ctx, SCMP_SYS(fchmodat), 2);
        no_setid(ctx, SCMP_SYS(open), 2);
        no_setid(ctx, SCMP_SYS(openat), 3);
        no_setid(ctx, SCMP_SYS(creat), 1);
        no_setid(ctx, SCMP_SYS(mkdir), 1);
        no_setid(ctx, SCMP_SYS(mkdirat), 2);
        no_setid(ctx, SCMP_SYS(mknod), 1);
        no_setid(ctx, SCMP_SYS(mknodat), 2);
        rule(ctx, EPERM, SCMP_SYS(mknod), 1, S_IFMT, S_IFCHR);
        rule(ctx, EPERM, SCMP_SYS(mknod), 1, S_IFMT, S_IFBLK);
        rule(ctx, EPERM, SCMP_SYS(mknodat), 2, S_IFMT, S_IFCHR);
        rule(ctx, EPERM, SCMP_SYS(mknodat), 2, S_IFMT, S_IFBLK);
        /* Their mode is in memory a filter cannot read: callers fall back on the calls
         * above when told the kernel lacks them. */
        refuse(ctx, ENOSYS, SCMP_SYS(openat2));
        refuse(ctx, ENOSYS, __NR_fchmodat2);
        refuse(ctx, ENOSYS, SCMP_SYS(io_uring_setup));
        /* An attribute's name cannot be read either; "security.capability" would be a
         * file capability, as good as setuid. tenantd's shares carry no xattrs. */
        refuse(ctx, EPERM, SCMP_SYS(setxattr));
        refuse(ctx, EPERM, SCMP_SYS(lsetxattr));
        refuse(ctx, EPERM, SCMP_SYS(fsetxattr));
        refuse(ctx, EPERM, __NR_setxattrat);
        int r = seccomp_load(ctx);
        seccomp_release(ctx);
        if (r < 0)
                die(-r, "seccomp_load");
}

/* Whether virtiofsd is only asked about itself (libvirt may probe it): nothing served. */
static bool only_asks(char **argv)
{
        static const char *const probes[] = {"--print-capabilities", "--help", "-h", "--version",
                                             "-V"};
        for (int i = 1; argv[i]; i++)
                for (size_t j = 0; j < sizeof(probes) / sizeof(probes[0]); j++)
                        if (strcmp(argv[i], probes[j]) == 0)
                                return true;
        return false;
}

int main(int argc, char **argv)
{
        (void)argc;
        /* Steps 1-3 for the -o option that names the source. A source given in a form
         * not understood here would be served unmounted: refused instead. */
        bool served_any = false;
        for (int i = 1; argv[i] && !served_any; i++) {
                char *opts = NULL;
                if (strcmp(argv[i], "-o") == 0 && argv[i + 1])
                        opts = argv[++i];
                else if (strncmp(argv[i], "-o", 2) == 0)
                        opts = argv[i] + 2;
                else if (strncmp(argv[i], "--options=", 10) == 0)
                        opts = argv[i] + 10;
                else if (strncmp(argv[i], "--shared-dir", 12) == 0)
                        die(0, "a share given as %s is not understood; refused", argv[i]);
                if (!opts || !strstr(opts, "source="))
                        continue;
                char *served = serve_from_private_mount(opts);
                if (!served)
                        continue;
                const char *prefix = opts == argv[i]                           ? ""
                                     : strncmp(argv[i], "--options=", 10) == 0 ? "--options="
                                                                               : "-o";
                if (asprintf(&argv[i], "%s%s", prefix, served) < 0)
                        die(0, "out of memory");
                served_any = true;
        }
        if (!served_any && !only_asks(argv))
                die(0, "no source=DIR among the options: nothing to serve from a safe mount");
        load_filter();
        for (size_t i = 0; i < sizeof(virtiofsd_paths) / sizeof(virtiofsd_paths[0]); i++) {
                argv[0] = (char *)virtiofsd_paths[i];
                execv(virtiofsd_paths[i], argv);
                if (errno != ENOENT)
                        die(errno, "cannot run %s", virtiofsd_paths[i]);
        }
        die(0, "no virtiofsd (looked for /usr/libexec/virtiofsd and /usr/lib/qemu/virtiofsd)");
}
