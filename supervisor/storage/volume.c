/* volume.c — a tenant's volume on the host: image, file system, loop device, mount.
 *
 * Opening a volume, step by step (every path here is root's: the storage directory and
 * VOLUME_MOUNT_DIR are made 0700 root and checked; only the file system's contents
 * are the tenant's):
 *
 *  1. STORAGE and STORAGE/TENANT are directories of root's, 0700, not symbolic links;
 *     the image is opened through the tenant directory's descriptor, O_NOFOLLOW.
 *  2. First use: NAME.img.new is made sparse at the declared size, mkfs.ext4 formats
 *     it (no reserved blocks: the tenant gets the whole size, and nothing more), and
 *     only then is it renamed to NAME.img: a crash half way leaves no half-made image
 *     that would be taken for a volume.
 *  3. An exclusive flock on the image's open file. The loop device takes a reference
 *     to that same open file (LOOP_CONFIGURE), so the lock lasts exactly as long as a
 *     loop device is attached to the image, whoever attached it: a second open of a
 *     volume still attached (a crash left it mounted) never mounts the file system
 *     twice. It unmounts the stale mount instead and waits for the lock.
 *  4. e2fsck -p on the image before the kernel mounts it, whenever it would do more
 *     than read the superblock: the tenant writes what is in the file system, and a
 *     crash may have left it unclean. Anything e2fsck cannot fix by itself stops the
 *     open. A clean file system is not handed to e2fsck at all (fs_needs_check): the
 *     superblock says what -p would decide, and the fork and exec of e2fsck cost
 *     25-35 ms on a busy machine, most of what a volume added to a start.
 *  5. A free loop device (LOOP_CTL_GET_FREE), configured with the image in one call
 *     (LOOP_CONFIGURE) and AUTOCLEAR: it detaches itself when its last user, the
 *     mount, goes, even after a crash of everything that set it up. An image smaller
 *     than the declared size (the manifest's size was raised) is extended first and
 *     its file system grown offline (resize2fs, after a forced e2fsck in 4.). An
 *     image larger than the declared size stays as it is: a volume never shrinks.
 *  6. The mount point VOLUME_MOUNT_DIR/TENANT/NAME (directories 0700 root), mounted
 *     ext4 nosuid, nodev (noexec as declared), errors=remount-ro.
 *  7. The tenant's view is the directory `data` in the file system's root, made on
 *     first use and given to the service's host uid:gid; the root itself (and
 *     lost+found) stays root's, 0700, never handed on. One layout for every volume:
 *     ext4 refuses an encryption policy on a file system's root directory.
 *  8. Encrypted volumes (docs/storage.md): the volume's 256-bit key, kept only wrapped
 *     at STORAGE/TENANT/NAME.key (made with the image, from getrandom), is unwrapped
 *     with the master key (keywrap.h) and added to the mounted file system's keyring
 *     (FS_IOC_ADD_ENCRYPTION_KEY, by identifier); on first use `data`, still empty,
 *     gets a v2 policy (AES-256-XTS contents, AES-256-CTS names) for that key; on
 *     every later open its policy must be exactly that one, or nothing is handed on.
 *     The key's bytes are wiped from memory once the kernel has them. Closing removes
 *     the key from the file system (FS_IOC_REMOVE_ENCRYPTION_KEY) before unmounting. */
#include "storage/volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/fscrypt.h>
#include <linux/loop.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"
#include "lib/strutil.h"
#include "storage/keywrap.h"

/* <linux/ext4.h> is not in every distribution's uapi headers (Debian 12 has it not). */
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#endif

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

static uint16_t le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *const tool_dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};

/* Runs an e2fsprogs tool by its absolute path, clean environment, output kept for the
 * message. Returns its exit status (>= 0), or a negative errno with *err set. */
static int run_tool(const char *tool, const char *const args[], char *out, size_t out_len,
                    struct tn_err **err)
{
        char path[64];
        size_t i;
        for (i = 0; i < ARRAY_SIZE(tool_dirs); i++) {
                snprintf(path, sizeof(path), "%s/%s", tool_dirs[i], tool);
                if (access(path, X_OK) == 0)
                        break;
        }
        if (i == ARRAY_SIZE(tool_dirs))
                return tn_err_setx(err, ENOENT, "%s not found (install e2fsprogs)", tool);
        const char *argv[16];
        size_t n = 0;
        argv[n++] = tool;
        for (i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return tn_err_set(err, errno, "pipe");
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return tn_err_set(err, e, "fork");
        }
        if (pid == 0) {
                static const char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
                                                   NULL};
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
                        _exit(127);
                execve(path, (char *const *)argv, (char *const *)envp);
                _exit(127);
        }
        close(p[1]);
        size_t got = 0;
        for (;;) {
                char buf[512];
                ssize_t r = read(p[0], buf, sizeof(buf));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                /* keep the last out_len - 1 bytes: the error is at the end */
                for (ssize_t k = 0; k < r && out_len > 1; k++) {
                        if (got == out_len - 1) {
                                memmove(out, out + 1, out_len - 2);
                                got--;
                        }
                        out[got++] = buf[k];
                }
        }
        close(p[0]);
        if (out_len)
                out[got] = '\0';
        for (char *c = out; out_len && *c; c++)
                if (*c == '\n' || *c == '\t' || (unsigned char)*c < 0x20)
                        *c = ' ';
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return tn_err_set(err, errno, "waitpid %s", tool);
        if (!WIFEXITED(status))
                return tn_err_setx(err, EIO, "%s killed by signal %d", tool, WTERMSIG(status));
        return WEXITSTATUS(status);
}

/* A directory of root's, 0700, made when missing; its descriptor in *ret. */
static int root_dir(int at, const char *name, const char *shown, int *ret, struct tn_err **err)
{
        if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", shown);
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open %s (a directory, not a symbolic link)",
                                  shown);
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int e = errno;
                close(fd);
                return tn_err_set(err, e, "stat %s", shown);
        }
        if (st.st_uid != 0 || (st.st_mode & 077)) {
                close(fd);
                return tn_err_setx(err, EPERM,
                                   "%s must be root's and mode 0700 (it is %u, %04o): it holds "
                                   "every tenant's volumes",
                                   shown, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        }
        *ret = fd;
        return 0;
}

/* Opens an absolute directory path component by component (each 0700 root, made
 * when missing; the first component's parent, such as /var/lib, is taken as is). */
static int root_path(const char *path, int *ret, struct tn_err **err)
{
        if (path[0] != '/')
                return tn_err_setx(err, EINVAL, "%s is not an absolute path", path);
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return tn_err_setx(err, ENOMEM, "out of memory");
        char *slash = strrchr(copy, '/');
        const char *leaf = slash + 1;
        *slash = '\0';
        _cleanup_close_ int parent = open(copy[0] ? copy : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0 && errno == ENOENT) {
                /* make the missing parents like `mkdir -p`, 0755 (the leaf is 0700) */
                for (char *p = copy + 1; *p; p++) {
                        if (*p != '/')
                                continue;
                        *p = '\0';
                        (void)mkdir(copy, 0755);
                        *p = '/';
                }
                (void)mkdir(copy, 0755);
                parent = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (parent < 0)
                return tn_err_set(err, errno, "cannot open %s", copy[0] ? copy : "/");
        return root_dir(parent, leaf, path, ret, err);
}

int volume_paths(const char *storage_dir, const char *tenant, const char *name,
                 struct volume_host *ret, struct tn_err **err)
{
        struct volume_host v;
        if ((size_t)snprintf(v.image, sizeof(v.image), "%s/%s/%s.img", storage_dir, tenant, name) >=
                sizeof(v.image) ||
            (size_t)snprintf(v.mount, sizeof(v.mount), "%s/%s/%s", VOLUME_MOUNT_DIR, tenant,
                             name) >= sizeof(v.mount) ||
            (size_t)snprintf(v.data, sizeof(v.data), "%s/%s/%s/data", VOLUME_MOUNT_DIR, tenant,
                             name) >= sizeof(v.data))
                return tn_err_setx(err, ENAMETOOLONG, "volume %s: path too long", name);
        *ret = v;
        return 0;
}

/* Step 2: NAME.img.new, sparse, formatted, renamed to NAME.img. */
static int image_create(int dir, const char *dir_path, const struct volume_spec *vs,
                        struct tn_err **err)
{
        char tmp[NAME_MAX + 1], img[NAME_MAX + 1], path[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s.img.new", vs->name);
        snprintf(img, sizeof(img), "%s.img", vs->name);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir_path, tmp) >= sizeof(path))
                return tn_err_setx(err, ENAMETOOLONG, "volume %s: path too long", vs->name);
        _cleanup_close_ int fd =
            openat(dir, tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot create %s", path);
        if (ftruncate(fd, (off_t)vs->size) < 0)
                return tn_err_set(err, errno, "cannot size %s", path);
        /* -m 0: no blocks reserved for root, the tenant's size is the size it gets;
         * the encrypt feature lets an encryption policy be set on the root later. */
        char label[17];
        snprintf(label, sizeof(label), "%s", vs->name);
        const char *const args[] = {
            "-q",      "-F", "-m",  "0",  "-O",
            "encrypt", "-L", label, "-E", "lazy_itable_init=1,lazy_journal_init=1",
            path,      NULL};
        char out[512];
        int r = run_tool("mkfs.ext4", args, out, sizeof(out), err);
        if (r < 0)
                return r;
        if (r != 0) {
                (void)unlinkat(dir, tmp, 0);
                return tn_err_setx(err, EIO, "mkfs.ext4 %s failed (exit %d): %s", path, r, out);
        }
        if (fsync(fd) < 0)
                return tn_err_set(err, errno, "fsync %s", path);
        if (renameat(dir, tmp, dir, img) < 0)
                return tn_err_set(err, errno, "cannot rename %s", path);
        if (fsync(dir) < 0)
                return tn_err_set(err, errno, "fsync %s", dir_path);
        return 0;
}

/* Is `path` the root of a mount? (its device differs from its parent's) */
static bool is_mount_point(const char *path)
{
        struct statx a, b;
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s/..", path);
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &a) < 0 ||
            statx(AT_FDCWD, parent, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &b) < 0)
                return false;
        if (a.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                return a.stx_attributes & STATX_ATTR_MOUNT_ROOT;
        return a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor;
}

/* Step 6, first half: VOLUME_MOUNT_DIR is a mount of its own with shared propagation,
 * so that a mount namespace copied from the host's and made a slave of it (libvirtd
 * run by a service manager that gives it one, and with it the virtiofsd it starts)
 * still sees the volumes mounted after it was made. Propagation goes one way only:
 * nothing mounted in such a namespace comes back. */
static int shared_top(struct tn_err **err)
{
        if (!is_mount_point(VOLUME_MOUNT_DIR) &&
            mount(VOLUME_MOUNT_DIR, VOLUME_MOUNT_DIR, NULL, MS_BIND, NULL) < 0)
                return tn_err_set(err, errno, "cannot bind %s onto itself", VOLUME_MOUNT_DIR);
        if (mount(NULL, VOLUME_MOUNT_DIR, NULL, MS_SHARED, NULL) < 0)
                return tn_err_set(err, errno, "cannot make %s shared", VOLUME_MOUNT_DIR);
        return 0;
}

/* Step 3: the image's lock; a stale mount of it (a crash) is taken down first. */
static int image_lock(int fd, const struct volume_host *v, struct tn_err **err)
{
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                return 0;
        if (errno != EWOULDBLOCK)
                return tn_err_set(err, errno, "flock %s", v->image);
        /* Attached: by what an earlier run left mounted, or by a run still going. Only
         * the mount at our own mount point is ours to take down; the loop device then
         * detaches itself (AUTOCLEAR) and the lock is free. */
        if (is_mount_point(v->mount))
                (void)umount2(v->mount, MNT_DETACH | UMOUNT_NOFOLLOW);
        for (int i = 0; i < 100; i++) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                (void)poll(NULL, 0, 20);
        }
        return tn_err_setx(err, EBUSY,
                           "%s is still attached to a loop device that something else holds "
                           "(is the tenant running elsewhere?); see losetup -j %s",
                           v->image, v->image);
}

/* Step 3, second half: a loop device attached to the image without our lock (losetup
 * by hand, another program) would mount the same file system twice; look for one. */
static int image_attached(int fd, const struct volume_host *v, struct tn_err **err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "stat %s", v->image);
        _cleanup_(closedirp) DIR *d = opendir("/sys/block");
        if (!d)
                return tn_err_set(err, errno, "cannot list /sys/block");
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strncmp(e->d_name, "loop", 4) != 0)
                        continue;
                char dev[300];
                snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
                _cleanup_close_ int lfd = open(dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                struct loop_info64 info;
                if (lfd < 0 || ioctl(lfd, LOOP_GET_STATUS64, &info) < 0)
                        continue; /* no node, or nothing attached */
                if (info.lo_inode == st.st_ino && info.lo_device == st.st_dev)
                        return tn_err_setx(err, EBUSY,
                                           "%s is still attached to %s, which tenantd did not "
                                           "set up; detach it (losetup -d %s) once nothing "
                                           "uses it",
                                           v->image, dev, dev);
        }
        return 0;
}

/* Step 5: a free loop device with the image, AUTOCLEAR; its descriptor in *ret. */
static int loop_attach(int image_fd, const struct volume_host *v, int *ret, char *dev,
                       size_t dev_len, struct tn_err **err)
{
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return tn_err_set(err, errno, "cannot open /dev/loop-control");
        for (int attempt = 0; attempt < 8; attempt++) {
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return tn_err_set(err, errno, "no free loop device");
                snprintf(dev, dev_len, "/dev/loop%d", n);
                int fd = open(dev, O_RDWR | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT) {
                        /* no devtmpfs node yet: make one (block major 7) */
                        if (mknod(dev, S_IFBLK | 0660, makedev(7, (unsigned)n)) == 0 ||
                            errno == EEXIST)
                                fd = open(dev, O_RDWR | O_CLOEXEC);
                }
                if (fd < 0)
                        return tn_err_set(err, errno, "cannot open %s", dev);
                struct loop_config cfg = {.fd = (uint32_t)image_fd};
                cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
                /* for losetup -l: the image's path, cut to what the field holds */
                size_t len = strnlen(v->image, sizeof(cfg.info.lo_file_name) - 1);
                memcpy(cfg.info.lo_file_name, v->image, len);
                if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
                        *ret = fd;
                        return 0;
                }
                int e = errno;
                close(fd);
                if (e != EBUSY) /* EBUSY: another process took it first */
                        return tn_err_set(err, e, "LOOP_CONFIGURE %s", dev);
        }
        return tn_err_setx(err, EBUSY, "no loop device stayed free long enough");
}

/* A live grow's last step: the ext4 file system mounted at `root` grown online
 * (EXT4_IOC_RESIZE_FS) to the size of its loop device. */
static int fs_grow_online(int root, int loop, const char *shown, struct tn_err **err)
{
        uint64_t dev_bytes = 0;
        struct statfs sf;
        if (ioctl(loop, BLKGETSIZE64, &dev_bytes) < 0 || fstatfs(root, &sf) < 0 || !sf.f_bsize)
                return tn_err_set(err, errno, "cannot size %s", shown);
        uint64_t blocks = dev_bytes / (uint64_t)sf.f_bsize;
        if (ioctl(root, EXT4_IOC_RESIZE_FS, &blocks) < 0)
                return tn_err_set(err, errno,
                                  "cannot grow the file system of %s to %" PRIu64 " blocks", shown,
                                  blocks);
        return 0;
}

/* Whether this process may resize a mounted file system: the kernel asks for
 * CAP_SYS_RESOURCE, which a host may keep out of root's bounding set. */
static bool may_resize_online(void)
{
        char text[2048];
        if (read_small_file("/proc/self/status", text, sizeof(text)) < 0)
                return true; /* let the kernel say */
        const char *p = strstr(text, "\nCapEff:");
        unsigned long long eff = 0;
        if (!p || sscanf(p + 9, "%llx", &eff) != 1)
                return true;
        return eff & (1ULL << CAP_SYS_RESOURCE);
}

/* Step 8, the key: NAME.key unwrapped with the master key, or on first use a new
 * random key, wrapped and written (root 0600) before it is used. */
static int volume_key(int dir, const char *tenant, const struct volume_spec *vs,
                      const char *master_path, uint8_t key[KEYWRAP_KEY_LEN], struct tn_err **err)
{
        char name[NAME_MAX + 1], aad[MANIFEST_NAME_MAX * 2 + 2], shown[PATH_MAX];
        snprintf(name, sizeof(name), "%s.key", vs->name);
        snprintf(aad, sizeof(aad), "%s/%s", tenant, vs->name);
        snprintf(shown, sizeof(shown), "%s", name);
        uint8_t master[KEYWRAP_KEY_LEN];
        int r = master_key_load(master_path, master, err);
        if (r < 0)
                return r;
        uint8_t wrapped[KEYWRAP_LEN + 1];
        _cleanup_close_ int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                struct stat st;
                ssize_t n = -1;
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0)
                        n = read(fd, wrapped, sizeof(wrapped));
                r = n < 0 ? tn_err_setx(err, EPERM, "%s is not a readable file of root's", name)
                          : keywrap_open(master, aad, wrapped, (size_t)n, key, err);
                explicit_bzero(master, sizeof(master));
                return r < 0 ? tn_err_wrap(err, "cannot unwrap the key %s with master key %s", name,
                                           master_path)
                             : 0;
        }
        if (errno != ENOENT) {
                explicit_bzero(master, sizeof(master));
                return tn_err_set(err, errno, "cannot open %s", name);
        }
        uint8_t nonce[KEYWRAP_NONCE_LEN];
        if (getrandom(key, KEYWRAP_KEY_LEN, 0) != KEYWRAP_KEY_LEN ||
            getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
                explicit_bzero(master, sizeof(master));
                return tn_err_set(err, errno ? errno : EIO, "getrandom");
        }
        r = keywrap_seal(master, aad, nonce, key, wrapped, err);
        explicit_bzero(master, sizeof(master));
        if (r >= 0)
                r = write_file_atomic_at(dir, name, wrapped, KEYWRAP_LEN, 0600, err);
        if (r < 0)
                explicit_bzero(key, KEYWRAP_KEY_LEN);
        return r;
}

static void policy_for(struct fscrypt_policy_v2 *p, const uint8_t id[FSCRYPT_KEY_IDENTIFIER_SIZE])
{
        memset(p, 0, sizeof(*p));
        p->version = FSCRYPT_POLICY_V2;
        p->contents_encryption_mode = FSCRYPT_MODE_AES_256_XTS;
        p->filenames_encryption_mode = FSCRYPT_MODE_AES_256_CTS;
        p->flags = FSCRYPT_POLICY_FLAGS_PAD_32;
        memcpy(p->master_key_identifier, id, FSCRYPT_KEY_IDENTIFIER_SIZE);
}

/* Step 8 on the mounted file system: root the descriptor of its root, data that of
 * `data`. */
static int volume_encrypt(int root, int data, const char *shown, const uint8_t key[KEYWRAP_KEY_LEN],
                          struct tn_err **err)
{
        /* The argument ends in the key's bytes (a flexible array member): one buffer,
         * aligned for the struct, holds both. */
        _Alignas(struct fscrypt_add_key_arg)
            uint8_t buf[sizeof(struct fscrypt_add_key_arg) + KEYWRAP_KEY_LEN];
        memset(buf, 0, sizeof(buf));
        struct fscrypt_add_key_arg *add = (struct fscrypt_add_key_arg *)(void *)buf;
        add->key_spec.type = FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER;
        add->raw_size = KEYWRAP_KEY_LEN;
        memcpy(add->raw, key, KEYWRAP_KEY_LEN);
        int r = ioctl(root, FS_IOC_ADD_ENCRYPTION_KEY, add);
        int e = errno;
        explicit_bzero(add->raw, KEYWRAP_KEY_LEN);
        if (r < 0)
                return tn_err_set(err, e, "FS_IOC_ADD_ENCRYPTION_KEY on %s", shown);
        struct fscrypt_policy_v2 want;
        policy_for(&want, add->key_spec.u.identifier);
        struct fscrypt_get_policy_ex_arg got;
        memset(&got, 0, sizeof(got));
        got.policy_size = sizeof(got.policy);
        if (ioctl(data, FS_IOC_GET_ENCRYPTION_POLICY_EX, &got) < 0) {
                if (errno != ENODATA)
                        return tn_err_set(err, errno, "FS_IOC_GET_ENCRYPTION_POLICY_EX on %s/data",
                                          shown);
                /* First use: `data` has no policy; the kernel refuses one on a directory
                 * that is not empty (data written unencrypted before). */
                if (ioctl(data, FS_IOC_SET_ENCRYPTION_POLICY, &want) < 0)
                        return tn_err_set(err, errno, "cannot encrypt %s/data%s", shown,
                                          errno == ENOTEMPTY ? ": it holds data written "
                                                               "without encryption"
                                                             : "");
                return 0;
        }
        if (got.policy_size != sizeof(want) || memcmp(&got.policy.v2, &want, sizeof(want)) != 0)
                return tn_err_setx(err, EPERM,
                                   "%s/data is encrypted, but not with this volume's key and "
                                   "policy (v2, AES-256-XTS/AES-256-CTS); refusing it",
                                   shown);
        return 0;
}

/* Step 8 undone: the key of `data`'s policy removed from the mounted file system. */
static void volume_forget_key(const char *mount_path)
{
        _cleanup_close_ int root =
            open(mount_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root < 0)
                return;
        _cleanup_close_ int data =
            openat(root, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct fscrypt_get_policy_ex_arg got;
        memset(&got, 0, sizeof(got));
        got.policy_size = sizeof(got.policy);
        if (data < 0 || ioctl(data, FS_IOC_GET_ENCRYPTION_POLICY_EX, &got) < 0 ||
            got.policy.version != FSCRYPT_POLICY_V2)
                return;
        struct fscrypt_remove_key_arg rm;
        memset(&rm, 0, sizeof(rm));
        rm.key_spec.type = FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER;
        memcpy(rm.key_spec.u.identifier, got.policy.v2.master_key_identifier,
               FSCRYPT_KEY_IDENTIFIER_SIZE);
        (void)ioctl(root, FS_IOC_REMOVE_ENCRYPTION_KEY, &rm);
}

static int volume_mount(int fd, const char *tenant, const struct volume_spec *vs, uid_t uid,
                        gid_t gid, const uint8_t key[KEYWRAP_KEY_LEN], struct volume_host *vp,
                        struct tn_err **err);

int volume_open(const char *storage_dir, const char *master_key, const char *tenant,
                const struct volume_spec *vs, uid_t uid, gid_t gid, struct volume_host *ret,
                struct tn_err **err)
{
        struct volume_host v;
        int r = volume_paths(storage_dir, tenant, vs->name, &v, err);
        if (r < 0)
                return r;
        char dir_path[PATH_MAX];
        snprintf(dir_path, sizeof(dir_path), "%s/%s", storage_dir, tenant);

        /* 1. */
        _cleanup_close_ int storage = -1, dir = -1;
        r = root_path(storage_dir, &storage, err);
        if (r < 0)
                return r;
        r = root_dir(storage, tenant, dir_path, &dir, err);
        if (r < 0)
                return r;
        char img[NAME_MAX + 1];
        snprintf(img, sizeof(img), "%s.img", vs->name);
        /* 2. */
        _cleanup_close_ int fd = openat(dir, img, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                r = image_create(dir, dir_path, vs, err);
                if (r < 0)
                        return r;
                fd = openat(dir, img, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open %s", v.image);
        /* 8., the key first: a volume whose key does not unwrap is not even checked. */
        uint8_t key[KEYWRAP_KEY_LEN] = {0};
        if (vs->encrypt) {
                r = volume_key(dir, tenant, vs, master_key, key, err);
                if (r < 0)
                        return r;
        }
        r = volume_mount(fd, tenant, vs, uid, gid, key, &v, err);
        explicit_bzero(key, sizeof(key));
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* Step 4's question: would e2fsck -p do anything with the file system in the image open at
 * fd but say "clean"? It checks a file system that is not marked valid, or marked with
 * errors or with orphans being cleaned; it replays a journal that needs recovery; it checks
 * when the mount count or the check interval has run out (mkfs here sets neither). The
 * superblock (1024 bytes at offset 1024, little-endian) answers each of these. Anything
 * it does not recognise (no ext2/3/4 magic, a short read) goes to e2fsck, which says what
 * is wrong. A kernel mount would replay the journal and clean orphans too; e2fsck runs
 * for them anyway, so that an unclean file system is checked by one tool, as before. */
static bool fs_needs_check(int fd)
{
        uint8_t sb[1024];
        if (pread(fd, sb, sizeof(sb), 1024) != (ssize_t)sizeof(sb))
                return true;
        uint16_t mnt_count = le16(sb + 52), magic = le16(sb + 56), state = le16(sb + 58);
        int16_t max_mnt_count = (int16_t)le16(sb + 54);
        uint32_t lastcheck = le32(sb + 64), interval = le32(sb + 68);
        uint32_t incompat = le32(sb + 96), last_orphan = le32(sb + 232);
        const uint16_t valid_fs = 0x0001; /* EXT2_VALID_FS: cleanly unmounted or mounted */
        const uint32_t recover = 0x0004;  /* EXT3_FEATURE_INCOMPAT_RECOVER */
        if (magic != 0xef53 || state != valid_fs || (incompat & recover) || last_orphan)
                return true;
        if (max_mnt_count > 0 && mnt_count >= max_mnt_count)
                return true;
        time_t now = time(NULL);
        return interval && (now < (time_t)lastcheck || now >= (time_t)lastcheck + interval);
}

/* Steps 3 to 8 for the image open at fd (key: the volume's key if it is encrypted). */
static int volume_mount(int fd, const char *tenant, const struct volume_spec *vs, uid_t uid,
                        gid_t gid, const uint8_t key[KEYWRAP_KEY_LEN], struct volume_host *vp,
                        struct tn_err **err)
{
        const struct volume_host v = *vp;
        int r;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "stat %s", v.image);
        if (!S_ISREG(st.st_mode) || st.st_uid != 0)
                return tn_err_setx(err, EPERM, "%s is not a regular file of root's", v.image);
        /* 3. */
        r = image_lock(fd, &v, err);
        if (r >= 0)
                r = image_attached(fd, &v, err);
        if (r < 0)
                return r;
        /* 4. -p fixes what is safe to fix without asking; exit 1 and 2 mean it did.
         * Before a grow (5.) the check is forced: resize2fs wants a file system
         * checked since it was last mounted. */
        bool grow = (uint64_t)st.st_size < vs->size;
        const char *const fsck_args[] = {"-p", v.image, NULL};
        const char *const fsck_full[] = {"-f", "-p", v.image, NULL};
        char out[512];
        r = grow || fs_needs_check(fd)
                ? run_tool("e2fsck", grow ? fsck_full : fsck_args, out, sizeof(out), err)
                : 0;
        if (r < 0)
                return r;
        if (r > 2)
                return tn_err_setx(err, EIO,
                                   "e2fsck %s found errors it cannot fix by itself (exit %d): "
                                   "%s; run e2fsck on it by hand",
                                   v.image, r, out);
        /* 5. */
        if (grow) {
                if (ftruncate(fd, (off_t)vs->size) < 0)
                        return tn_err_set(err, errno, "cannot extend %s to %" PRIu64 " bytes",
                                          v.image, vs->size);
                const char *const resize_args[] = {v.image, NULL};
                r = run_tool("resize2fs", resize_args, out, sizeof(out), err);
                if (r < 0)
                        return r;
                if (r != 0)
                        return tn_err_setx(err, EIO, "resize2fs %s failed (exit %d): %s", v.image,
                                           r, out);
        }
        char dev[32];
        _cleanup_close_ int loop = -1;
        r = loop_attach(fd, &v, &loop, dev, sizeof(dev), err);
        if (r < 0)
                return r;
        /* 6. */
        char top[PATH_MAX];
        snprintf(top, sizeof(top), "%s/%s", VOLUME_MOUNT_DIR, tenant);
        _cleanup_close_ int run = -1, tdir = -1, mdir = -1;
        r = root_path(VOLUME_MOUNT_DIR, &run, err);
        if (r >= 0)
                r = shared_top(err);
        if (r >= 0)
                r = root_dir(run, tenant, top, &tdir, err);
        if (r >= 0)
                r = root_dir(tdir, vs->name, v.mount, &mdir, err);
        if (r < 0)
                return r; /* the loop device detaches when `loop` closes (AUTOCLEAR) */
        unsigned long flags = MS_NOSUID | MS_NODEV | (vs->noexec ? MS_NOEXEC : 0);
        if (mount(dev, v.mount, "ext4", flags, "errors=remount-ro") < 0)
                return tn_err_set(err, errno, "cannot mount %s (%s) on %s", v.image, dev, v.mount);
        /* 7. */
        _cleanup_close_ int root = open(v.mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int data = -1;
        if (root < 0 || fchown(root, 0, 0) < 0 || fchmod(root, 0700) < 0 ||
            (mkdirat(root, "data", 0700) < 0 && errno != EEXIST) ||
            (data = openat(root, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                r = tn_err_set(err, errno, "cannot make %s", v.data);
        } else if (vs->encrypt) { /* 8. */
                r = volume_encrypt(root, data, v.mount, key, err);
        }
        if (r >= 0 && fchown(data, uid, gid) < 0)
                r = tn_err_set(err, errno, "cannot give %s to %u:%u", v.data, (unsigned)uid,
                               (unsigned)gid);
        if (r < 0) {
                if (root >= 0)
                        volume_forget_key(v.mount);
                (void)umount2(v.mount, UMOUNT_NOFOLLOW);
                return r;
        }
        return 0;
}

int volume_close(const char *tenant, const char *name, struct tn_err **err)
{
        struct volume_host v;
        int r = volume_paths("", tenant, name, &v, err);
        if (r < 0)
                return r;
        bool mounted = is_mount_point(v.mount);
        if (mounted)
                volume_forget_key(v.mount);
        if (mounted && umount2(v.mount, UMOUNT_NOFOLLOW) < 0) {
                int e = errno;
                /* Busy: something still uses it (a process that outlived the tenant's
                 * mount namespace?). Detach it from the tree; the file system and the
                 * loop device go with its last user. */
                if (umount2(v.mount, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        return tn_err_set(err, errno, "cannot unmount %s", v.mount);
                (void)rmdir(v.mount);
                return tn_err_set(err, e, "%s was still in use: detached lazily", v.mount);
        }
        if (rmdir(v.mount) < 0 && errno != ENOENT)
                return tn_err_set(err, errno, "cannot remove %s", v.mount);
        return 0;
}

/* The loop device under the mount at `mount` (its st_dev), opened, and checked to be
 * attached to the image open at `image` (not some other device that took its number). */
static int mounted_loop(const char *mount, int image, int *ret, struct tn_err **err)
{
        struct stat mst, ist;
        if (stat(mount, &mst) < 0 || fstat(image, &ist) < 0)
                return tn_err_set(err, errno, "stat %s", mount);
        char path[64], text[512];
        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", major(mst.st_dev),
                 minor(mst.st_dev));
        ssize_t n = read_small_file(path, text, sizeof(text));
        if (n < 0)
                return tn_err_set(err, (int)-n, "cannot read %s", path);
        char dev[80] = "";
        const char *p = strstr(text, "DEVNAME=loop");
        if (p)
                snprintf(dev, sizeof(dev), "/dev/%.*s", (int)strcspn(p + 8, "\n"), p + 8);
        if (!*dev)
                return tn_err_setx(err, ENODEV, "%s is not on a loop device", mount);
        _cleanup_close_ int fd = open(dev, O_RDWR | O_CLOEXEC);
        struct loop_info64 info;
        struct stat dst;
        if (fd < 0 || fstat(fd, &dst) < 0 || ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
                return tn_err_set(err, errno, "cannot open %s", dev);
        if (dst.st_rdev != mst.st_dev || info.lo_inode != ist.st_ino ||
            info.lo_device != ist.st_dev)
                return tn_err_setx(err, EXDEV, "%s is not the loop device of the volume at %s", dev,
                                   mount);
        *ret = TAKE_FD(fd);
        return 0;
}

int volume_grow(const char *storage_dir, const char *tenant, const struct volume_spec *vs,
                bool check_only, struct tn_err **err)
{
        struct volume_host v;
        int r = volume_paths(storage_dir, tenant, vs->name, &v, err);
        if (r < 0)
                return r;
        char dir_path[PATH_MAX], img[NAME_MAX + 1];
        snprintf(dir_path, sizeof(dir_path), "%s/%s", storage_dir, tenant);
        snprintf(img, sizeof(img), "%s.img", vs->name);
        _cleanup_close_ int storage = -1, dir = -1, fd = -1;
        r = root_path(storage_dir, &storage, err);
        if (r >= 0)
                r = root_dir(storage, tenant, dir_path, &dir, err);
        if (r < 0)
                return r;
        fd = openat(dir, img, (check_only ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "cannot open %s", v.image);
        if ((uint64_t)st.st_size > vs->size)
                return tn_err_setx(err, EINVAL,
                                   "%" PRIu64 " bytes is less than the volume's %" PRIu64
                                   " bytes: a volume never shrinks (make a new volume and copy "
                                   "the data over)",
                                   vs->size, (uint64_t)st.st_size);
        if ((uint64_t)st.st_size == vs->size)
                return 0;
        if (!may_resize_online())
                return tn_err_setx(
                    err, EPERM,
                    "growing a mounted volume needs CAP_SYS_RESOURCE, which "
                    "tenantd does not have (the host keeps it out of its bounding "
                    "set); stop the tenant, save the size (set --save) and start it: "
                    "the volume grows as it starts");
        if (check_only)
                return 0;
        if (!is_mount_point(v.mount))
                return tn_err_setx(err, ENOENT, "%s is not mounted", v.mount);
        /* The image first, then the loop device learns its new size, then the file
         * system grows into it: each step leaves a volume that mounts. */
        _cleanup_close_ int loop = -1, root = -1;
        r = mounted_loop(v.mount, fd, &loop, err);
        if (r < 0)
                return r;
        if (ftruncate(fd, (off_t)vs->size) < 0)
                return tn_err_set(err, errno, "cannot extend %s", v.image);
        if (ioctl(loop, LOOP_SET_CAPACITY, 0) < 0)
                return tn_err_set(err, errno, "LOOP_SET_CAPACITY for %s", v.image);
        root = open(v.mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root < 0)
                return tn_err_set(err, errno, "cannot open %s", v.mount);
        return fs_grow_online(root, loop, v.image, err);
}

int volume_usage(const char *tenant, const char *name, struct volume_usage *ret)
{
        struct volume_host v;
        if (volume_paths("", tenant, name, &v, NULL) < 0)
                return -ENAMETOOLONG;
        /* Not mounted: the statfs would be of the directory's file system, /run. */
        if (!is_mount_point(v.mount))
                return -ENOENT;
        struct statfs sf;
        if (statfs(v.mount, &sf) < 0)
                return -errno;
        uint64_t bs = (uint64_t)sf.f_frsize ? (uint64_t)sf.f_frsize : (uint64_t)sf.f_bsize;
        uint64_t used = ((uint64_t)sf.f_blocks - (uint64_t)sf.f_bfree) * bs;
        uint64_t avail = (uint64_t)sf.f_bavail * bs;
        *ret = (struct volume_usage){.used = used, .size = used + avail, .avail = avail};
        return 0;
}

int volumes_set_io(const struct manifest *m, struct tenant_cgroup *cg, struct tn_err **err)
{
        for (size_t i = 0; i < m->volumes_n; i++) {
                const struct volume_spec *vs = &m->volumes[i];
                struct volume_host v;
                int r = volume_paths("", m->name, vs->name, &v, err);
                if (r < 0)
                        return r;
                struct stat st;
                if (!is_mount_point(v.mount) || stat(v.mount, &st) < 0)
                        continue; /* not mounted: nothing to limit */
                /* The mount's device is the loop device the file system is on. */
                struct tenant_io_limit l = {.major = major(st.st_dev),
                                            .minor = minor(st.st_dev),
                                            .rbps = vs->io.read,
                                            .wbps = vs->io.write,
                                            .iops = vs->io.iops};
                r = tenant_cgroup_set_io(cg, &l, err);
                if (r < 0)
                        return tn_err_wrap(err, "volumes[%zu] \"%s\": io", i, vs->name);
        }
        return 0;
}

int volumes_open(const struct manifest *m, const char *storage_dir, const char *master_key,
                 uid_t uid, gid_t gid, struct tn_err **err)
{
        for (size_t i = 0; i < m->volumes_n; i++) {
                struct volume_host v;
                int r = volume_open(storage_dir, master_key, m->name, &m->volumes[i], uid, gid, &v,
                                    err);
                if (r < 0) {
                        for (size_t j = 0; j < i; j++)
                                (void)volume_close(m->name, m->volumes[j].name, NULL);
                        return tn_err_wrap(err, "volumes[%zu] \"%s\"", i, m->volumes[i].name);
                }
        }
        return 0;
}

/* STORAGE/TENANT, which must exist already (a listing or a removal makes nothing). */
static int tenant_dir(int storage, const char *storage_dir, const char *tenant, int *ret,
                      struct tn_err **err)
{
        char shown[PATH_MAX];
        snprintf(shown, sizeof(shown), "%s/%s", storage_dir, tenant);
        struct stat st;
        if (fstatat(storage, tenant, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return tn_err_set(err, errno, "%s", shown);
        return root_dir(storage, tenant, shown, ret, err);
}

static int volume_info_cmp(const void *a, const void *b)
{
        const struct volume_info *x = a, *y = b;
        int c = strcmp(x->tenant, y->tenant);
        return c ? c : strcmp(x->name, y->name);
}

int volume_list(const char *storage_dir, struct volume_info **ret, size_t *ret_n,
                struct tn_err **err)
{
        _cleanup_close_ int storage = -1;
        int r = root_path(storage_dir, &storage, err);
        if (r < 0)
                return r;
        _cleanup_free_ struct volume_info *list = NULL;
        size_t n = 0, cap = 0;
        int dup = fcntl(storage, F_DUPFD_CLOEXEC, 0);
        _cleanup_(closedirp) DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
        if (!d) {
                if (dup >= 0)
                        close(dup);
                return tn_err_set(err, errno, "cannot list %s", storage_dir);
        }
        struct dirent *e;
        while ((e = readdir(d))) {
                /* Only what tenantd would have made: a tenant's name, a directory of
                 * root's; anything else in the storage directory is not listed. */
                if (!is_simple_name(e->d_name) || strlen(e->d_name) >= sizeof(list->tenant))
                        continue;
                _cleanup_close_ int td = -1;
                if (tenant_dir(storage, storage_dir, e->d_name, &td, NULL) < 0)
                        continue;
                int tdup = fcntl(td, F_DUPFD_CLOEXEC, 0);
                _cleanup_(closedirp) DIR *t = tdup >= 0 ? fdopendir(tdup) : NULL;
                if (!t) {
                        if (tdup >= 0)
                                close(tdup);
                        continue;
                }
                struct dirent *f;
                while ((f = readdir(t))) {
                        size_t l = strlen(f->d_name);
                        if (l < 5 || strcmp(f->d_name + l - 4, ".img") != 0 ||
                            l - 4 >= sizeof(list->name))
                                continue;
                        struct volume_info vi = {0};
                        memcpy(vi.name, f->d_name, l - 4);
                        if (!is_simple_name(vi.name))
                                continue;
                        struct stat st;
                        if (fstatat(td, f->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(st.st_mode))
                                continue;
                        memcpy(vi.tenant, e->d_name, strlen(e->d_name) + 1); /* fits: above */
                        vi.size = (uint64_t)st.st_size;
                        vi.allocated = (uint64_t)st.st_blocks * 512;
                        char key[NAME_MAX + 1];
                        snprintf(key, sizeof(key), "%s.key", vi.name);
                        vi.encrypted = faccessat(td, key, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
                        struct volume_host v;
                        vi.mounted = volume_paths("", vi.tenant, vi.name, &v, NULL) == 0 &&
                                     is_mount_point(v.mount);
                        if (n == cap) {
                                size_t nc = cap ? cap * 2 : 16;
                                struct volume_info *nl = realloc(list, nc * sizeof(*nl));
                                if (!nl)
                                        return tn_err_setx(err, ENOMEM, "out of memory");
                                list = nl;
                                cap = nc;
                        }
                        list[n++] = vi;
                }
        }
        if (n)
                qsort(list, n, sizeof(*list), volume_info_cmp);
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int volume_remove(const char *storage_dir, const char *tenant, const char *name,
                  struct tn_err **err)
{
        if (!is_simple_name(tenant) || !is_simple_name(name))
                return tn_err_setx(err, EINVAL, "\"%.64s/%.64s\" is not TENANT/VOLUME", tenant,
                                   name);
        struct volume_host v;
        int r = volume_paths(storage_dir, tenant, name, &v, err);
        if (r < 0)
                return r;
        _cleanup_close_ int storage = -1, dir = -1;
        r = root_path(storage_dir, &storage, err);
        if (r >= 0)
                r = tenant_dir(storage, storage_dir, tenant, &dir, err);
        if (r < 0)
                return r;
        char img[NAME_MAX + 1], key[NAME_MAX + 1];
        snprintf(img, sizeof(img), "%s.img", name);
        snprintf(key, sizeof(key), "%s.key", name);
        _cleanup_close_ int fd = openat(dir, img, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "%s", v.image);
        /* The image's lock is held as long as a loop device is attached (step 3): a
         * volume in use is never removed, whoever uses it. The lock is kept until the
         * files are gone, so no open starts in between. */
        if (is_mount_point(v.mount) || flock(fd, LOCK_EX | LOCK_NB) < 0)
                return tn_err_setx(err, EBUSY, "%s/%s is in use (its tenant runs?): stop it first",
                                   tenant, name);
        if (unlinkat(dir, key, 0) < 0 && errno != ENOENT)
                return tn_err_set(err, errno, "cannot remove %s/%s", v.image, key);
        if (unlinkat(dir, img, 0) < 0)
                return tn_err_set(err, errno, "cannot remove %s", v.image);
        /* The tenant's directory goes with its last volume. */
        (void)unlinkat(storage, tenant, AT_REMOVEDIR);
        return 0;
}

void volumes_close(const char *tenant)
{
        char dir[PATH_MAX];
        if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", VOLUME_MOUNT_DIR, tenant) >= sizeof(dir))
                return;
        _cleanup_(closedirp) DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        (void)volume_close(tenant, e->d_name, NULL);
        (void)rmdir(dir);
}

/* ---- snapshots, for backups (docs/backup.md) ---- */

int volume_fs_freeze(const char *tenant, const char *name, bool frozen, struct tn_err **err)
{
        struct volume_host v;
        int r = volume_paths("", tenant, name, &v, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(v.mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || !is_mount_point(v.mount))
                return tn_err_setx(err, ENOENT, "volume %s is not mounted at %s", name, v.mount);
        if (ioctl(fd, frozen ? FIFREEZE : FITHAW, 0) < 0) {
                if (!frozen && errno == EINVAL)
                        return 0; /* not frozen */
                return tn_err_set(err, errno, "%s %s", frozen ? "FIFREEZE" : "FITHAW", v.mount);
        }
        return 0;
}

/* A sparse copy of in to out: only the extents SEEK_DATA finds. */
static int sparse_copy(int in, int out, off_t size)
{
        static char buf[1 << 20];
        off_t pos = 0;
        while (pos < size) {
                off_t data = lseek(in, pos, SEEK_DATA);
                if (data < 0 && errno == ENXIO)
                        break;
                if (data < 0)
                        return -errno;
                off_t hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                for (off_t o = data; o < hole;) {
                        size_t want =
                            (size_t)(hole - o) < sizeof(buf) ? (size_t)(hole - o) : sizeof(buf);
                        ssize_t n = pread(in, buf, want, o);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                return n < 0 ? -errno : -EIO;
                        for (ssize_t w = 0; w < n;) {
                                ssize_t k = pwrite(out, buf + w, (size_t)(n - w), o + w);
                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k < 0)
                                        return -errno;
                                w += k;
                        }
                        o += n;
                }
                pos = hole;
        }
        return ftruncate(out, size) < 0 ? -errno : 0;
}

int volume_snapshot(const char *storage_dir, const char *tenant, const char *name, char *ret_path,
                    size_t ret_len, bool *ret_reflink, struct tn_err **err)
{
        struct volume_host v;
        int r = volume_paths(storage_dir, tenant, name, &v, err);
        if (r < 0)
                return r;
        char snap[PATH_MAX];
        if ((size_t)snprintf(snap, sizeof(snap), "%s/%s/%s.snap", storage_dir, tenant, name) >=
                sizeof(snap) ||
            strlen(snap) >= ret_len)
                return tn_err_setx(err, ENAMETOOLONG, "volume %s: path too long", name);
        _cleanup_close_ int in = open(v.image, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return tn_err_set(err, errno, "cannot open %s", v.image);
        struct stat st;
        if (fstat(in, &st) < 0)
                return tn_err_set(err, errno, "stat %s", v.image);
        (void)unlink(snap); /* a crash's leftover */
        _cleanup_close_ int out =
            open(snap, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return tn_err_set(err, errno, "cannot create %s", snap);
        bool reflink = ioctl(out, FICLONE, in) == 0;
        r = reflink ? 0 : sparse_copy(in, out, st.st_size);
        if (r < 0) {
                (void)unlink(snap);
                return tn_err_set(err, -r, "cannot copy %s to %s", v.image, snap);
        }
        snprintf(ret_path, ret_len, "%s", snap);
        *ret_reflink = reflink;
        return 0;
}

int volume_mount_snapshot(const char *storage_dir, const char *master_key, const char *tenant,
                          const struct volume_spec *vs, const char *snap, const char *target,
                          struct tn_err **err)
{
        struct volume_host v;
        int r = volume_paths(storage_dir, tenant, vs->name, &v, err);
        if (r < 0)
                return r;
        snprintf(v.image, sizeof(v.image), "%s", snap);
        _cleanup_close_ int fd = open(snap, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open %s", snap);
        /* The copy of a frozen file system is clean but may hold a journal to replay:
         * e2fsck -p replays it (and checks, as for every mount). */
        const char *const fsck_args[] = {"-p", snap, NULL};
        char out[512];
        r = run_tool("e2fsck", fsck_args, out, sizeof(out), err);
        if (r < 0)
                return r;
        if (r > 2)
                return tn_err_setx(err, EIO, "e2fsck %s (exit %d): %s", snap, r, out);
        char dev[32];
        _cleanup_close_ int loop = -1;
        r = loop_attach(fd, &v, &loop, dev, sizeof(dev), err);
        if (r < 0)
                return r;
        if (mount(dev, target, "ext4", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return tn_err_set(err, errno, "cannot mount %s (%s) on %s", snap, dev, target);
        if (!vs->encrypt)
                return 0;
        char dir_path[PATH_MAX];
        snprintf(dir_path, sizeof(dir_path), "%s/%s", storage_dir, tenant);
        _cleanup_close_ int dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        uint8_t key[KEYWRAP_KEY_LEN];
        if (dir < 0)
                return tn_err_set(err, errno, "cannot open %s", dir_path);
        r = volume_key(dir, tenant, vs, master_key, key, err);
        if (r < 0)
                return r;
        _cleanup_close_ int root = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int data =
            root < 0 ? -1 : openat(root, "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = data < 0 ? tn_err_set(err, errno, "cannot open %s/data", target)
                     : volume_encrypt(root, data, target, key, err);
        explicit_bzero(key, sizeof(key));
        return r;
}
