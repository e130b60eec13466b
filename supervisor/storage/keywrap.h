/* keywrap.h — a volume's fscrypt key, kept on disk only wrapped by the host's master
 * key (docs/storage.md): AES-256-GCM through Nettle, which is loaded (dlopen,
 * LIBNETTLE_SONAME) only when an encrypted volume is opened, so tenantctl and tenantd
 * do not link it.
 *
 * A wrapped key, KEYWRAP_LEN bytes:
 *   magic "TNDKEY" version 1 (8 bytes) | nonce (12) | ciphertext (32) | tag (16)
 * with the additional data "TENANT/NAME": a wrapped key copied to another volume's
 * place does not unwrap there. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define KEYWRAP_KEY_LEN 32 /* a volume's key, and the master key: 256 bits */
#define KEYWRAP_MAGIC_LEN 8
#define KEYWRAP_NONCE_LEN 12
#define KEYWRAP_TAG_LEN 16
#define KEYWRAP_LEN (KEYWRAP_MAGIC_LEN + KEYWRAP_NONCE_LEN + KEYWRAP_KEY_LEN + KEYWRAP_TAG_LEN)

/* Wraps `key` under `master` with `nonce` (fresh random bytes for every wrap) and
 * `aad` into out. Pure but for loading Nettle. */
int keywrap_seal(const uint8_t master[KEYWRAP_KEY_LEN], const char *aad,
                 const uint8_t nonce[KEYWRAP_NONCE_LEN], const uint8_t key[KEYWRAP_KEY_LEN],
                 uint8_t out[KEYWRAP_LEN], struct tn_err **err);

/* Unwraps `in` (in_len bytes) into key; any change to it, another master key or
 * another aad: -EBADMSG, nothing written to key. */
int keywrap_open(const uint8_t master[KEYWRAP_KEY_LEN], const char *aad, const uint8_t *in,
                 size_t in_len, uint8_t key[KEYWRAP_KEY_LEN], struct tn_err **err);

/* Reads the master key at `path`, making it on first use (32 random bytes, root 0400,
 * in place at once or not at all). A file that is not root's, is not a regular file,
 * can be read or written by group or others, or is not 32 bytes is refused. */
int master_key_load(const char *path, uint8_t out[KEYWRAP_KEY_LEN], struct tn_err **err);
