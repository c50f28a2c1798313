/* Cipher suites, key schedules (TLS 1.3 HKDF-Expand-Label, TLS 1.2 PRF key
 * block) and AEAD record decryption with OpenSSL EVP. */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <sm/err.h>

#include "tls/tls_int.h"

static const struct tls_suite suites[] = {
    { 0x1301, "TLS_AES_128_GCM_SHA256", true, "AES-128-GCM", 16, 12, false, "SHA256", 32 },
    { 0x1302, "TLS_AES_256_GCM_SHA384", true, "AES-256-GCM", 32, 12, false, "SHA384", 48 },
    { 0x1303, "TLS_CHACHA20_POLY1305_SHA256", true, "ChaCha20-Poly1305", 32, 12, false, "SHA256", 32 },
    { 0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256", false, "AES-128-GCM", 16, 4, true, "SHA256", 32 },
    { 0xC02F, "ECDHE-RSA-AES128-GCM-SHA256", false, "AES-128-GCM", 16, 4, true, "SHA256", 32 },
    { 0xC02C, "ECDHE-ECDSA-AES256-GCM-SHA384", false, "AES-256-GCM", 32, 4, true, "SHA384", 48 },
    { 0xC030, "ECDHE-RSA-AES256-GCM-SHA384", false, "AES-256-GCM", 32, 4, true, "SHA384", 48 },
    { 0xCCA8, "ECDHE-RSA-CHACHA20-POLY1305", false, "ChaCha20-Poly1305", 32, 12, false, "SHA256", 32 },
    { 0xCCA9, "ECDHE-ECDSA-CHACHA20-POLY1305", false, "ChaCha20-Poly1305", 32, 12, false, "SHA256", 32 },
    { 0x009E, "DHE-RSA-AES128-GCM-SHA256", false, "AES-128-GCM", 16, 4, true, "SHA256", 32 },
    { 0x009F, "DHE-RSA-AES256-GCM-SHA384", false, "AES-256-GCM", 32, 4, true, "SHA384", 48 },
    { 0xCCAA, "DHE-RSA-CHACHA20-POLY1305", false, "ChaCha20-Poly1305", 32, 12, false, "SHA256", 32 },
    { 0x009C, "AES128-GCM-SHA256", false, "AES-128-GCM", 16, 4, true, "SHA256", 32 },
    { 0x009D, "AES256-GCM-SHA384", false, "AES-256-GCM", 32, 4, true, "SHA384", 48 },
};

static const struct { uint16_t id; const char *name; } other_names[] = {
    { 0x1304, "TLS_AES_128_CCM_SHA256" }, { 0x1305, "TLS_AES_128_CCM_8_SHA256" },
    { 0xC009, "ECDHE-ECDSA-AES128-SHA" }, { 0xC00A, "ECDHE-ECDSA-AES256-SHA" },
    { 0xC013, "ECDHE-RSA-AES128-SHA" }, { 0xC014, "ECDHE-RSA-AES256-SHA" },
    { 0xC023, "ECDHE-ECDSA-AES128-SHA256" }, { 0xC024, "ECDHE-ECDSA-AES256-SHA384" },
    { 0xC027, "ECDHE-RSA-AES128-SHA256" }, { 0xC028, "ECDHE-RSA-AES256-SHA384" },
    { 0x002F, "AES128-SHA" }, { 0x0035, "AES256-SHA" }, { 0x003C, "AES128-SHA256" },
    { 0x003D, "AES256-SHA256" }, { 0x000A, "DES-CBC3-SHA" }, { 0xC0AC, "ECDHE-ECDSA-AES128-CCM" },
};

const struct tls_suite *tls_suite_find(uint16_t id)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (suites[i].id == id)
            return &suites[i];
    return NULL;
}

const char *tls_suite_name(uint16_t id, char *buf, size_t len)
{
    const struct tls_suite *s = tls_suite_find(id);
    const char *name = s ? s->name : NULL;
    for (size_t i = 0; !name && i < sizeof other_names / sizeof other_names[0]; i++)
        if (other_names[i].id == id)
            name = other_names[i].name;
    if (name)
        snprintf(buf, len, "%s (0x%04x)", name, id);
    else
        snprintf(buf, len, "cipher suite 0x%04x", id);
    return buf;
}

void tls_aead_clear(struct tls_aead *a)
{
    EVP_CIPHER_CTX_free(a->ctx);
    OPENSSL_cleanse(a, sizeof *a);
}

static int kdf_derive(const char *kdfname, OSSL_PARAM *params, uint8_t *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, kdfname, NULL);
    if (!kdf)
        return SM_EUNSUPPORTED;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!kctx)
        return SM_ENOMEM;
    int ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
    EVP_KDF_CTX_free(kctx);
    return ok ? SM_OK : SM_EPROTO;
}

/* HKDF-Expand-Label(secret, label, "", outlen), RFC 8446 7.1. */
static int hkdf_expand_label(const char *md, const uint8_t *secret, size_t slen, const char *label, uint8_t *out,
                             size_t outlen)
{
    uint8_t info[2 + 1 + 255 + 1];
    size_t ll = strlen(label), n = 0;
    if (6 + ll > 255)
        return SM_EINVAL;
    info[n++] = (uint8_t)(outlen >> 8);
    info[n++] = (uint8_t)outlen;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    return kdf_derive("HKDF", p, out, outlen);
}

static int aead_key(struct tls_aead *a, const struct tls_suite *suite, const uint8_t *key)
{
    if (!a->ctx && !(a->ctx = EVP_CIPHER_CTX_new()))
        return SM_ENOMEM;
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, suite->cipher, NULL);
    if (!c)
        return SM_EUNSUPPORTED;
    int ok = EVP_DecryptInit_ex(a->ctx, c, NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1 &&
             EVP_DecryptInit_ex(a->ctx, NULL, NULL, key, NULL) == 1;
    EVP_CIPHER_free(c);
    if (!ok)
        return SM_EPROTO;
    a->suite = suite;
    a->seq = 0;
    a->ready = true;
    return SM_OK;
}

int tls13_aead_set(struct tls_aead *a, const struct tls_suite *suite, const uint8_t *secret, size_t slen)
{
    uint8_t key[32];
    if (slen > TLS_SECRET_MAX)
        return SM_EINVAL;
    int rc = hkdf_expand_label(suite->md, secret, slen, "key", key, suite->keylen);
    if (rc == SM_OK)
        rc = hkdf_expand_label(suite->md, secret, slen, "iv", a->iv, 12);
    if (rc == SM_OK)
        rc = aead_key(a, suite, key);
    if (rc == SM_OK) {
        if (secret != a->secret)
            memcpy(a->secret, secret, slen);
        a->slen = slen;
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int tls13_aead_update(struct tls_aead *a)
{
    uint8_t next[TLS_SECRET_MAX];
    if (!a->ready || !a->suite)
        return SM_EINVAL;
    int rc = hkdf_expand_label(a->suite->md, a->secret, a->slen, "traffic upd", next, a->slen);
    if (rc == SM_OK)
        rc = tls13_aead_set(a, a->suite, next, a->slen);
    OPENSSL_cleanse(next, sizeof next);
    return rc;
}

int tls12_aead_set(struct tls_aead *client, struct tls_aead *server, const struct tls_suite *suite,
                   const uint8_t *master, size_t mlen, const uint8_t crandom[32], const uint8_t srandom[32])
{
    uint8_t seed[13 + 64], kb[2 * 32 + 2 * 12];
    memcpy(seed, "key expansion", 13);
    memcpy(seed + 13, srandom, 32);
    memcpy(seed + 45, crandom, 32);
    size_t kbl = 2 * suite->keylen + 2 * suite->fixed_iv;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)suite->md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master, mlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
        OSSL_PARAM_construct_end(),
    };
    int rc = kdf_derive("TLS1-PRF", p, kb, kbl);
    if (rc == SM_OK) {
        const uint8_t *ck = kb, *sk = kb + suite->keylen, *civ = kb + 2 * suite->keylen,
                      *siv = civ + suite->fixed_iv;
        memset(client->iv, 0, 12);
        memset(server->iv, 0, 12);
        memcpy(client->iv, civ, suite->fixed_iv);
        memcpy(server->iv, siv, suite->fixed_iv);
        rc = aead_key(client, suite, ck);
        if (rc == SM_OK)
            rc = aead_key(server, suite, sk);
    }
    OPENSSL_cleanse(kb, sizeof kb);
    return rc;
}

int tls_aead_open(struct tls_aead *a, const uint8_t hdr[5], const uint8_t *body, size_t n, uint8_t *out,
                  size_t *outlen, uint8_t *type)
{
    const struct tls_suite *s = a->suite;
    uint8_t nonce[12], aad[13];
    size_t aadlen;
    const uint8_t *ct = body;
    size_t ctlen;
    if (!a->ready || !s)
        return SM_EINVAL;
    size_t over = 16 + (s->explicit_nonce ? 8 : 0);
    if (n < over || n > TLS_MAX_CIPHER)
        return SM_EPROTO;
    ctlen = n - over;
    if (s->explicit_nonce) {            /* TLS 1.2 GCM: salt || explicit nonce */
        memcpy(nonce, a->iv, 4);
        memcpy(nonce + 4, body, 8);
        ct = body + 8;
    } else {                            /* TLS 1.3, TLS 1.2 ChaCha20: iv XOR seq */
        memcpy(nonce, a->iv, 12);
        for (int i = 0; i < 8; i++)
            nonce[4 + i] ^= (uint8_t)(a->seq >> (56 - 8 * i));
    }
    if (s->tls13) {
        memcpy(aad, hdr, 5);
        aadlen = 5;
    } else {
        for (int i = 0; i < 8; i++)
            aad[i] = (uint8_t)(a->seq >> (56 - 8 * i));
        aad[8] = hdr[0];
        aad[9] = hdr[1];
        aad[10] = hdr[2];
        aad[11] = (uint8_t)(ctlen >> 8);
        aad[12] = (uint8_t)ctlen;
        aadlen = 13;
    }
    int len = 0, fl = 0;
    if (EVP_DecryptInit_ex(a->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(a->ctx, NULL, &len, aad, (int)aadlen) != 1 ||
        EVP_DecryptUpdate(a->ctx, out, &len, ct, (int)ctlen) != 1 ||
        EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(ct + ctlen)) != 1 ||
        EVP_DecryptFinal_ex(a->ctx, out + len, &fl) != 1)
        return SM_EPROTO;
    size_t pl = (size_t)len + (size_t)fl;
    if (s->tls13) {                     /* TLSInnerPlaintext: content || type || zeros */
        while (pl && out[pl - 1] == 0)
            pl--;
        if (!pl)
            return SM_EPROTO;
        *type = out[--pl];
    } else {
        *type = hdr[0];
    }
    if (pl > TLS_MAX_PLAIN)
        return SM_EPROTO;
    *outlen = pl;
    a->seq++;
    return SM_OK;
}
