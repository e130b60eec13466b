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
 *  4. e2fsck -p on the image, every time, before the kernel mounts it: the tenant
 *     writes what is in the file system, and a crash may have left it unclean.
 *     Anything e2fsck cannot fix by itself stops the open.
 *  5. A free loop device (LOOP_CTL_GET_FREE), configured with the image in one call
 *     (LOOP_CONFIGURE) and AUTOCLEAR: it detaches itself when its last user, the
 *     mount, goes, even after a crash of everything that set it up.
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
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"
#include "storage/keywrap.h"

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
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
        /* 4. -p fixes what is safe to fix without asking; exit 1 and 2 mean it did. */
        const char *const fsck_args[] = {"-p", v.image, NULL};
        char out[512];
        r = run_tool("e2fsck", fsck_args, out, sizeof(out), err);
        if (r < 0)
                return r;
        if (r > 2)
                return tn_err_setx(err, EIO,
                                   "e2fsck %s found errors it cannot fix by itself (exit %d): "
                                   "%s; run e2fsck on it by hand",
                                   v.image, r, out);
        /* 5. */
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
