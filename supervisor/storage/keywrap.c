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

#include <openssl/evp.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"

static const uint8_t magic[KEYWRAP_MAGIC_LEN] = {'T', 'N', 'D', 'K', 'E', 'Y', 0, 1};

/* The few EVP functions used, from the library loaded at first use; the prototypes are
 * OpenSSL's own (openssl/evp.h). */
static struct {
        __typeof__(EVP_CIPHER_CTX_new) *ctx_new;
        __typeof__(EVP_CIPHER_CTX_free) *ctx_free;
        __typeof__(EVP_CIPHER_CTX_ctrl) *ctx_ctrl;
        __typeof__(EVP_aes_256_gcm) *aes_256_gcm;
        __typeof__(EVP_EncryptInit_ex) *encrypt_init;
        __typeof__(EVP_EncryptUpdate) *encrypt_update;
        __typeof__(EVP_EncryptFinal_ex) *encrypt_final;
        __typeof__(EVP_DecryptInit_ex) *decrypt_init;
        __typeof__(EVP_DecryptUpdate) *decrypt_update;
        __typeof__(EVP_DecryptFinal_ex) *decrypt_final;
        char error[200];
} crypto;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_load(void)
{
        void *h = dlopen(LIBCRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (h) {
                *(void **)&crypto.ctx_new = dlsym(h, "EVP_CIPHER_CTX_new");
                *(void **)&crypto.ctx_free = dlsym(h, "EVP_CIPHER_CTX_free");
                *(void **)&crypto.ctx_ctrl = dlsym(h, "EVP_CIPHER_CTX_ctrl");
                *(void **)&crypto.aes_256_gcm = dlsym(h, "EVP_aes_256_gcm");
                *(void **)&crypto.encrypt_init = dlsym(h, "EVP_EncryptInit_ex");
                *(void **)&crypto.encrypt_update = dlsym(h, "EVP_EncryptUpdate");
                *(void **)&crypto.encrypt_final = dlsym(h, "EVP_EncryptFinal_ex");
                *(void **)&crypto.decrypt_init = dlsym(h, "EVP_DecryptInit_ex");
                *(void **)&crypto.decrypt_update = dlsym(h, "EVP_DecryptUpdate");
                *(void **)&crypto.decrypt_final = dlsym(h, "EVP_DecryptFinal_ex");
        }
        if (!crypto.ctx_new || !crypto.ctx_free || !crypto.ctx_ctrl || !crypto.aes_256_gcm ||
            !crypto.encrypt_init || !crypto.encrypt_update || !crypto.encrypt_final ||
            !crypto.decrypt_init || !crypto.decrypt_update || !crypto.decrypt_final) {
                const char *e = dlerror();
                snprintf(crypto.error, sizeof(crypto.error), "%s", e ? e : "a symbol is missing");
                crypto.ctx_new = NULL;
        }
}

static int crypto_ready(struct tn_err **err)
{
        pthread_once(&crypto_once, crypto_load);
        if (!crypto.ctx_new)
                return tn_err_setx(err, ENOSYS,
                                   "encrypted volumes need OpenSSL's libcrypto (%s, Debian's "
                                   "libssl3): %s",
                                   LIBCRYPTO_SONAME, crypto.error);
        return 0;
}

static void ctx_freep(EVP_CIPHER_CTX **c)
{
        if (*c)
                crypto.ctx_free(*c);
}

int keywrap_seal(const uint8_t master[KEYWRAP_KEY_LEN], const char *aad,
                 const uint8_t nonce[KEYWRAP_NONCE_LEN], const uint8_t key[KEYWRAP_KEY_LEN],
                 uint8_t out[KEYWRAP_LEN], struct tn_err **err)
{
        int r = crypto_ready(err);
        if (r < 0)
                return r;
        _cleanup_(ctx_freep) EVP_CIPHER_CTX *c = crypto.ctx_new();
        if (!c)
                return tn_err_setx(err, ENOMEM, "out of memory");
        uint8_t *ct = out + KEYWRAP_MAGIC_LEN + KEYWRAP_NONCE_LEN;
        int n = 0, fin = 0;
        if (crypto.encrypt_init(c, crypto.aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            crypto.ctx_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KEYWRAP_NONCE_LEN, NULL) != 1 ||
            crypto.encrypt_init(c, NULL, NULL, master, nonce) != 1 ||
            crypto.encrypt_update(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
            crypto.encrypt_update(c, ct, &n, key, KEYWRAP_KEY_LEN) != 1 || n != KEYWRAP_KEY_LEN ||
            crypto.encrypt_final(c, ct + n, &fin) != 1 || fin != 0 ||
            crypto.ctx_ctrl(c, EVP_CTRL_GCM_GET_TAG, KEYWRAP_TAG_LEN, ct + KEYWRAP_KEY_LEN) != 1)
                return tn_err_setx(err, EIO, "AES-256-GCM failed to wrap a key");
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
        _cleanup_(ctx_freep) EVP_CIPHER_CTX *c = crypto.ctx_new();
        if (!c)
                return tn_err_setx(err, ENOMEM, "out of memory");
        const uint8_t *nonce = in + KEYWRAP_MAGIC_LEN;
        const uint8_t *ct = nonce + KEYWRAP_NONCE_LEN;
        uint8_t tag[KEYWRAP_TAG_LEN], plain[KEYWRAP_KEY_LEN + 16];
        memcpy(tag, ct + KEYWRAP_KEY_LEN, sizeof(tag));
        int n = 0, fin = 0;
        bool ok =
            crypto.decrypt_init(c, crypto.aes_256_gcm(), NULL, NULL, NULL) == 1 &&
            crypto.ctx_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KEYWRAP_NONCE_LEN, NULL) == 1 &&
            crypto.decrypt_init(c, NULL, NULL, master, nonce) == 1 &&
            crypto.decrypt_update(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
            crypto.decrypt_update(c, plain, &n, ct, KEYWRAP_KEY_LEN) == 1 && n == KEYWRAP_KEY_LEN &&
            crypto.ctx_ctrl(c, EVP_CTRL_GCM_SET_TAG, KEYWRAP_TAG_LEN, tag) == 1 &&
            crypto.decrypt_final(c, plain + n, &fin) == 1 && fin == 0;
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
