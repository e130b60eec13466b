/* test_keywrap.c — a volume key's wrapping (storage/keywrap.h): it unwraps with the
 * same master key and names; a change to any byte, another master key or another
 * volume's name is refused and writes nothing; the master key file's rules. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "storage/keywrap.h"

int main(void)
{
        uint8_t master[KEYWRAP_KEY_LEN], other[KEYWRAP_KEY_LEN], key[KEYWRAP_KEY_LEN];
        uint8_t nonce[KEYWRAP_NONCE_LEN], w[KEYWRAP_LEN], back[KEYWRAP_KEY_LEN];
        for (size_t i = 0; i < sizeof(master); i++) {
                master[i] = (uint8_t)i;
                other[i] = (uint8_t)(i + 1);
                key[i] = (uint8_t)(0xa0 ^ i);
        }
        memset(nonce, 7, sizeof(nonce));
        struct tn_err *err = NULL;
        int r = keywrap_seal(master, "t1/data", nonce, key, w, &err);
        ok(r == 0, "a key wraps (%s)", r < 0 ? tn_err_msg(err) : "");
        tn_err_free(err);
        err = NULL;
        ok(memcmp(w, "TNDKEY\0\1", 8) == 0 && memcmp(w + 8, nonce, sizeof(nonce)) == 0,
           "the format: magic, version 1, the nonce");
        /* Standard AES-256-GCM, byte for byte: ciphertext and tag as another
         * implementation makes them (Python's cryptography over OpenSSL, which wrapped
         * tenantd's keys before Nettle did), so keys wrapped then still unwrap. */
        static const uint8_t known[KEYWRAP_KEY_LEN + KEYWRAP_TAG_LEN] = {
            0xaf, 0xcb, 0x04, 0xff, 0xcb, 0xaa, 0x71, 0x53, 0x6e, 0x34, 0xb9, 0x2b,
            0x2c, 0xfc, 0x5a, 0x34, 0x11, 0xed, 0x3f, 0xc0, 0x3c, 0x42, 0x37, 0xae,
            0x46, 0x02, 0xe4, 0x41, 0xb8, 0x63, 0x8c, 0xa4, 0xa6, 0x97, 0x33, 0x4c,
            0x5b, 0x5e, 0xa0, 0x1c, 0x36, 0xd3, 0xd9, 0xd0, 0x5c, 0xbc, 0xe4, 0x31};
        ok(memcmp(w + KEYWRAP_MAGIC_LEN + KEYWRAP_NONCE_LEN, known, sizeof(known)) == 0,
           "ciphertext and tag are AES-256-GCM's (a known answer)");
        ok(memmem(w, sizeof(w), key, sizeof(key)) == NULL, "the key is not in it in clear");
        memset(back, 0, sizeof(back));
        r = keywrap_open(master, "t1/data", w, sizeof(w), back, &err);
        ok(r == 0 && memcmp(back, key, sizeof(key)) == 0, "and unwraps to the same key");
        tn_err_free(err);
        err = NULL;

        int refused = 0;
        for (size_t i = 0; i < sizeof(w); i++) {
                uint8_t t[KEYWRAP_LEN];
                memcpy(t, w, sizeof(t));
                t[i] ^= 0x01;
                memset(back, 0x55, sizeof(back));
                r = keywrap_open(master, "t1/data", t, sizeof(t), back, &err);
                uint8_t untouched[KEYWRAP_KEY_LEN];
                memset(untouched, 0x55, sizeof(untouched));
                if (r == -EBADMSG && memcmp(back, untouched, sizeof(back)) == 0)
                        refused++;
                tn_err_free(err);
                err = NULL;
        }
        ok(refused == KEYWRAP_LEN, "a change to any one of its %d bytes is refused (%d were)",
           KEYWRAP_LEN, refused);
        r = keywrap_open(other, "t1/data", w, sizeof(w), back, &err);
        ok(r == -EBADMSG && strstr(tn_err_msg(err), "master key"),
           "another master key is refused (%s)", tn_err_msg(err));
        tn_err_free(err);
        err = NULL;
        r = keywrap_open(master, "t2/data", w, sizeof(w), back, &err);
        ok(r == -EBADMSG, "another volume's name is refused");
        tn_err_free(err);
        err = NULL;
        r = keywrap_open(master, "t1/data", w, sizeof(w) - 1, back, &err);
        ok(r == -EBADMSG && strstr(tn_err_msg(err), "format"), "a short file is refused (%s)",
           tn_err_msg(err));
        tn_err_free(err);
        err = NULL;

        /* The master key file. */
        char dir[] = "/tmp/test_keywrap.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return tap_done();
        }
        char path[64];
        snprintf(path, sizeof(path), "%s/keys/master.key", dir);
        uint8_t m1[KEYWRAP_KEY_LEN], m2[KEYWRAP_KEY_LEN];
        r = master_key_load(path, m1, &err);
        struct stat st;
        ok(r == 0 && stat(path, &st) == 0 && (st.st_mode & 07777) == 0400 &&
               st.st_size == KEYWRAP_KEY_LEN,
           "a master key is made on first use, 0400, 32 bytes (%s)", r < 0 ? tn_err_msg(err) : "");
        tn_err_free(err);
        err = NULL;
        r = master_key_load(path, m2, &err);
        ok(r == 0 && memcmp(m1, m2, sizeof(m1)) == 0, "and read back the same");
        tn_err_free(err);
        err = NULL;
        if (geteuid() == 0) {
                chmod(path, 0440);
                r = master_key_load(path, m2, &err);
                ok(r == -EPERM, "one the group may read is refused (%s)",
                   r < 0 ? tn_err_msg(err) : "");
                tn_err_free(err);
                err = NULL;
        } else {
                skip("not root: the master key cannot be root's");
        }
        unlink(path);
        snprintf(path, sizeof(path), "%s/keys", dir);
        rmdir(path);
        rmdir(dir);
        return tap_done();
}
