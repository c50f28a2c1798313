/* Private to agent/tls: key log store, cipher suites, key schedule, AEAD. */
#ifndef AGENT_TLS_TLS_INT_H
#define AGENT_TLS_TLS_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tls/tls.h"

#define TLS_RANDOM_LEN 32
#define TLS_SECRET_MAX 64
#define TLS_MAX_PLAIN 16384u
#define TLS_MAX_CIPHER (16384u + 2048u)   /* TLS 1.2 ciphertext bound (1.3: +256) */

enum tls_sec { TLS_SEC_MASTER, TLS_SEC_CHS, TLS_SEC_SHS, TLS_SEC_CTS0, TLS_SEC_STS0, TLS_SEC_N };

struct tls_keys {
    uint8_t random[TLS_RANDOM_LEN];
    unsigned have;                       /* bit (1u << enum tls_sec) */
    uint8_t len[TLS_SEC_N];
    uint8_t sec[TLS_SEC_N][TLS_SECRET_MAX];
    struct tls_keys *hnext, *newer, *older;
};

#define TLS_KEYLOG_BUCKETS 16384u

struct tls_keylog {
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    off_t off;
    char line[512];                      /* partial line carried between reads */
    size_t llen;
    bool overlong;                       /* skipping the rest of an overlong line */
    struct tls_keys *bucket[TLS_KEYLOG_BUCKETS];
    struct tls_keys *newest, *oldest;
    uint32_t count, max;
    struct agent_tls_stats *st;
};

void tls_keylog_init(struct tls_keylog *kl, uint32_t max, struct agent_tls_stats *st);
int tls_keylog_set_path(struct tls_keylog *kl, const char *path);
void tls_keylog_fini(struct tls_keylog *kl);
/* Reads what was appended since the last call (reopens on truncation or
 * replacement). Returns the number of secrets stored. */
int tls_keylog_poll(struct tls_keylog *kl);
int tls_keylog_parse(struct tls_keylog *kl, const char *line, size_t n);
const struct tls_keys *tls_keylog_find(const struct tls_keylog *kl, const uint8_t random[TLS_RANDOM_LEN]);

struct tls_suite {
    uint16_t id;
    const char *name;
    bool tls13;
    const char *cipher;                  /* EVP cipher name */
    size_t keylen;
    size_t fixed_iv;                     /* TLS 1.2 salt (4 for GCM, 12 ChaCha); 1.3: 12 */
    bool explicit_nonce;                 /* TLS 1.2 GCM: 8-byte nonce in each record */
    const char *md;                      /* PRF / HKDF hash */
    size_t hashlen;
};

/* Supported suite or NULL. */
const struct tls_suite *tls_suite_find(uint16_t id);
/* A name for any suite id (known names or "0x1234"), into buf. */
const char *tls_suite_name(uint16_t id, char *buf, size_t len);

/* One direction's record protection. */
struct tls_aead {
    const struct tls_suite *suite;
    EVP_CIPHER_CTX *ctx;
    uint8_t iv[12];
    uint64_t seq;
    uint8_t secret[TLS_SECRET_MAX];      /* TLS 1.3 traffic secret (for KeyUpdate) */
    size_t slen;
    bool ready;
};

void tls_aead_clear(struct tls_aead *a);
/* TLS 1.3: key/iv from a traffic secret (HKDF-Expand-Label). SM_OK or SM_EPROTO. */
int tls13_aead_set(struct tls_aead *a, const struct tls_suite *suite, const uint8_t *secret, size_t slen);
/* TLS 1.3 KeyUpdate: next traffic secret ("traffic upd"), new key/iv, seq 0. */
int tls13_aead_update(struct tls_aead *a);
/* TLS 1.2: key block from the master secret (PRF "key expansion"). */
int tls12_aead_set(struct tls_aead *client, struct tls_aead *server, const struct tls_suite *suite,
                   const uint8_t *master, size_t mlen, const uint8_t crandom[32], const uint8_t srandom[32]);
/* Decrypts one record (hdr = the 5-byte record header, body its payload)
 * into out (room for TLS_MAX_CIPHER). TLS 1.3: strips the inner type into
 * *type. SM_OK (seq advanced), SM_EPROTO (tag mismatch or malformed; seq
 * unchanged). */
int tls_aead_open(struct tls_aead *a, const uint8_t hdr[5], const uint8_t *body, size_t n, uint8_t *out,
                  size_t *outlen, uint8_t *type);

#endif
