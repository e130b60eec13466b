/* keywrap.c — see keywrap.h. */
#include "storage/keywrap.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/gcm.h>
#include <nettle/memops.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"

static const uint8_t magic[KEYWRAP_MAGIC_LEN] = {'T', 'N', 'D', 'K', 'E', 'Y', 0, 1};

/* The few GCM functions used, from Nettle (Debian's libnettle8) loaded at first use; the
 * prototypes are Nettle's own (nettle/gcm.h names them nettle_*). Nettle rather than
 * OpenSSL's libcrypto: the same AES-256-GCM, but libcrypto took ~10 ms to load and
 * initialise (4.7 MB of relocations, openssl.cnf) at every start of a tenant with an
 * encrypted volume, a third of what a volume may add to a start. libnettle8 has no
 * dependencies but libc and is on every Debian system that has GnuTLS (libvirt's). */
static struct {
        __typeof__(nettle_gcm_aes256_set_key) *set_key;
        __typeof__(nettle_gcm_aes256_set_iv) *set_iv;
        __typeof__(nettle_gcm_aes256_update) *update;
        __typeof__(nettle_gcm_aes256_encrypt) *encrypt;
        __typeof__(nettle_gcm_aes256_decrypt) *decrypt;
        __typeof__(nettle_gcm_aes256_digest) *digest;
        __typeof__(nettle_memeql_sec) *memeql_sec;
        char error[200];
} crypto;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_load(void)
{
        void *h = dlopen(LIBNETTLE_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (h) {
                *(void **)&crypto.set_key = dlsym(h, "nettle_gcm_aes256_set_key");
                *(void **)&crypto.set_iv = dlsym(h, "nettle_gcm_aes256_set_iv");
                *(void **)&crypto.update = dlsym(h, "nettle_gcm_aes256_update");
                *(void **)&crypto.encrypt = dlsym(h, "nettle_gcm_aes256_encrypt");
                *(void **)&crypto.decrypt = dlsym(h, "nettle_gcm_aes256_decrypt");
                *(void **)&crypto.digest = dlsym(h, "nettle_gcm_aes256_digest");
                *(void **)&crypto.memeql_sec = dlsym(h, "nettle_memeql_sec");
        }
        if (!crypto.set_key || !crypto.set_iv || !crypto.update || !crypto.encrypt ||
            !crypto.decrypt || !crypto.digest || !crypto.memeql_sec) {
                const char *e = dlerror();
                snprintf(crypto.error, sizeof(crypto.error), "%s", e ? e : "a symbol is missing");
                crypto.set_key = NULL;
        }
}

static int crypto_ready(struct tn_err **err)
{
        pthread_once(&crypto_once, crypto_load);
        if (!crypto.set_key)
                return tn_err_setx(err, ENOSYS,
                                   "encrypted volumes need Nettle (%s, Debian's libnettle8): %s",
                                   LIBNETTLE_SONAME, crypto.error);
        return 0;
}

/* The context holds the expanded master key: wiped when it goes out of scope. */
static void gcm_wipe(struct gcm_aes256_ctx *c)
{
        explicit_bzero(c, sizeof(*c));
}

int keywrap_seal(const uint8_t master[KEYWRAP_KEY_LEN], const char *aad,
                 const uint8_t nonce[KEYWRAP_NONCE_LEN], const uint8_t key[KEYWRAP_KEY_LEN],
                 uint8_t out[KEYWRAP_LEN], struct tn_err **err)
{
        int r = crypto_ready(err);
        if (r < 0)
                return r;
        _cleanup_(gcm_wipe) struct gcm_aes256_ctx c;
        uint8_t *ct = out + KEYWRAP_MAGIC_LEN + KEYWRAP_NONCE_LEN;
        crypto.set_key(&c, master);
        crypto.set_iv(&c, KEYWRAP_NONCE_LEN, nonce);
        crypto.update(&c, strlen(aad), (const uint8_t *)aad);
        crypto.encrypt(&c, KEYWRAP_KEY_LEN, ct, key);
        crypto.digest(&c, KEYWRAP_TAG_LEN, ct + KEYWRAP_KEY_LEN);
        memcpy(out, magic, KEYWRAP_MAGIC_LEN);
        memcpy(out + KEYWRAP_MAGIC_LEN, nonce, KEYWRAP_NONCE_LEN);
        return 0;
}

int keywrap_open(const uint8_t master[KEYWRAP_KEY_LEN], const char *aad, const uint8_t *in,
                 size_t in_len, uint8_t key[KEYWRAP_KEY_LEN], struct tn_err **err)
{
        if (in_len != KEYWRAP_LEN || memcmp(in, magic, KEYWRAP_MAGIC_LEN) != 0)
                return tn_err_setx(err, EBADMSG,
                                   "not a wrapped key of this format (%zu bytes, want %d "
                                   "starting \"TNDKEY\" version 1)",
                                   in_len, KEYWRAP_LEN);
        int r = crypto_ready(err);
        if (r < 0)
                return r;
        _cleanup_(gcm_wipe) struct gcm_aes256_ctx c;
        const uint8_t *nonce = in + KEYWRAP_MAGIC_LEN;
        const uint8_t *ct = nonce + KEYWRAP_NONCE_LEN;
        uint8_t tag[KEYWRAP_TAG_LEN], plain[KEYWRAP_KEY_LEN];
        crypto.set_key(&c, master);
        crypto.set_iv(&c, KEYWRAP_NONCE_LEN, nonce);
        crypto.update(&c, strlen(aad), (const uint8_t *)aad);
        crypto.decrypt(&c, KEYWRAP_KEY_LEN, plain, ct);
        crypto.digest(&c, KEYWRAP_TAG_LEN, tag);
        /* The tag is compared in constant time, and the plaintext handed on only if it
         * matches. */
        bool ok = crypto.memeql_sec(tag, ct + KEYWRAP_KEY_LEN, KEYWRAP_TAG_LEN);
        if (ok)
                memcpy(key, plain, KEYWRAP_KEY_LEN);
        explicit_bzero(plain, sizeof(plain));
        if (!ok)
                return tn_err_setx(err, EBADMSG,
                                   "it does not authenticate: changed, made for another "
                                   "volume, or wrapped by another master key");
        return 0;
}

/* Reads a master key file already there: root's, 0400 or 0600 at most, 32 bytes. */
static int master_key_read(int fd, const char *path, uint8_t out[KEYWRAP_KEY_LEN],
                           struct tn_err **err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "stat %s", path);
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0)
                return tn_err_setx(err, EPERM,
                                   "master key %s must be a regular file of root's that no "
                                   "group or other user may read or write (mode 0400)",
                                   path);
        if (st.st_size != KEYWRAP_KEY_LEN)
                return tn_err_setx(err, EINVAL, "master key %s is %lld bytes, not %d", path,
                                   (long long)st.st_size, KEYWRAP_KEY_LEN);
        ssize_t n = pread(fd, out, KEYWRAP_KEY_LEN, 0);
        if (n != KEYWRAP_KEY_LEN)
                return tn_err_set(err, n < 0 ? errno : EIO, "cannot read master key %s", path);
        return 0;
}

int master_key_load(const char *path, uint8_t out[KEYWRAP_KEY_LEN], struct tn_err **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                return master_key_read(fd, path, out, err);
        if (errno != ENOENT)
                return tn_err_set(err, errno, "cannot open master key %s", path);
        /* First use: an unnamed file in the key's directory gets the random bytes and
         * is then linked in under its name, which fails if another process made the
         * key first (whose key is then read): never a half-written key, never two. */
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) >= sizeof(dir))
                return tn_err_setx(err, EINVAL, "master key %s: not an absolute path", path);
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot make %s for master key", dir);
        _cleanup_close_ int tmp = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0400);
        if (tmp < 0)
                return tn_err_set(err, errno, "cannot make master key %s", path);
        uint8_t key[KEYWRAP_KEY_LEN];
        ssize_t got = getrandom(key, sizeof(key), 0);
        int r = got == (ssize_t)sizeof(key) ? write_all(tmp, key, sizeof(key)) : -EIO;
        explicit_bzero(key, sizeof(key));
        if (r < 0 || fchmod(tmp, 0400) < 0 || fsync(tmp) < 0)
                return tn_err_set(err, r < 0 ? -r : errno, "cannot write master key %s", path);
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tmp);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot make master key %s", path);
        /* The new name lasts: without the directory's fsync a crash could lose the key
         * after volumes were encrypted with it. */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return tn_err_set(err, errno, "cannot sync %s for master key", dir);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open master key %s", path);
        return master_key_read(fd, path, out, err);
}
