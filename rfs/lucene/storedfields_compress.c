/* Byte-level decompressors for Lucene stored-fields chunks.
 *
 * - Lucene's LZ4 without a compressed length (Lucene41/Lucene50 "Fast"):
 *   hand-written, because the stream carries no length and liblz4 does not
 *   report how many input bytes it consumed (snapshot-format.md 7.8).
 * - LZ4 blocks with a known compressed length (Lucene87/90 preset dictionary):
 *   liblz4 LZ4_decompress_safe_usingDict with a padded capacity.
 * - DEFLATE (raw, optionally with a preset dictionary): zlib.
 * - zstd: libzstd. */
#include <string.h>

#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include <sm/err.h>

#include "lucene/storedfields_int.h"

/* LZ4 length extension: a 4-bit length of 15 continues in bytes of 255
 * until a smaller one. Returns -1 when the input ends first. */
static inline int lz4_len_ext(const uint8_t **ipp, const uint8_t *iend, size_t *len)
{
    if (*len != 15)
        return 0;
    unsigned b;
    do {
        if (*ipp >= iend)
            return -1;
        b = *(*ipp)++;
        *len += b;
    } while (b == 255);
    return 0;
}

long rfs_sf_lz4_lucene(const uint8_t *in, size_t in_len, uint8_t *out, size_t n)
{
    const uint8_t *ip = in, *iend = in + in_len;
    uint8_t *op = out, *oend = out + n;

    for (;;) {
        if (ip >= iend)
            return -1;
        unsigned t = *ip++;
        size_t lit = t >> 4;
        if (lz4_len_ext(&ip, iend, &lit))
            return -1;
        if (lit > (size_t)(iend - ip) || lit > (size_t)(oend - op))
            return -1;
        if (lit <= 16 && iend - ip >= 16)
            memcpy(op, ip, 16);            /* out has RFS_SF_OUT_SLACK bytes of room */
        else
            memcpy(op, ip, lit);
        op += lit;
        ip += lit;
        if (op >= oend)
            break;
        if (iend - ip < 2)
            return -1;
        size_t off = (size_t)ip[0] | ((size_t)ip[1] << 8);
        ip += 2;
        size_t ml = t & 15;
        if (lz4_len_ext(&ip, iend, &ml))
            return -1;
        ml += 4;
        if (off == 0 || off > (size_t)(op - out) || ml > (size_t)(oend - op))
            return -1;
        const uint8_t *m = op - off;
        if (off >= 16) {
            /* may write up to 15 bytes past op + ml: inside the slack */
            for (size_t k = 0; k < ml; k += 16)
                memcpy(op + k, m + k, 16);
        } else if (off >= 8) {
            for (size_t k = 0; k < ml; k += 8)
                memcpy(op + k, m + k, 8);
        } else {
            for (size_t k = 0; k < ml; k++)
                op[k] = m[k];
        }
        op += ml;
        if (op >= oend)
            break;
    }
    return (long)(ip - in);
}

long rfs_sf_lz4_skip(const uint8_t *in, size_t in_len, size_t n)
{
    const uint8_t *ip = in, *iend = in + in_len;
    size_t o = 0;
    for (;;) {
        if (ip >= iend)
            return -1;
        unsigned t = *ip++;
        size_t lit = t >> 4;
        if (lz4_len_ext(&ip, iend, &lit))
            return -1;
        if (lit > (size_t)(iend - ip) || lit > n - o)
            return -1;
        ip += lit;
        o += lit;
        if (o >= n)
            break;
        if (iend - ip < 2)
            return -1;
        size_t off = (size_t)ip[0] | ((size_t)ip[1] << 8);
        ip += 2;
        size_t ml = t & 15;
        if (lz4_len_ext(&ip, iend, &ml))
            return -1;
        ml += 4;
        if (off == 0 || off > o || ml > n - o)
            return -1;
        o += ml;
        if (o >= n)
            break;
    }
    return (long)(ip - in);
}

int rfs_sf_lz4_block(const uint8_t *in, size_t in_len, uint8_t *out, size_t n,
                     const uint8_t *dict, size_t dict_len)
{
    if (in_len > INT32_MAX || n > INT32_MAX - RFS_SF_OUT_SLACK || dict_len > INT32_MAX)
        return SM_ECORRUPT;
    /* capacity n + slack: liblz4 rejects Lucene's late matches when the
     * capacity is exactly n (snapshot-format.md 7.8) */
    int got = LZ4_decompress_safe_usingDict((const char *)in, (char *)out, (int)in_len,
                                            (int)(n + RFS_SF_OUT_SLACK), (const char *)dict,
                                            (int)dict_len);
    if (got < 0 || (size_t)got != n)
        return SM_ECORRUPT;
    return SM_OK;
}

int rfs_sf_inflate(z_stream *z, bool *inited, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t n, const uint8_t *dict, size_t dict_len)
{
    if (!*inited) {
        memset(z, 0, sizeof(*z));
        if (inflateInit2(z, -15) != Z_OK)
            return SM_ENOMEM;
        *inited = true;
    } else if (inflateReset(z) != Z_OK) {
        return SM_ECORRUPT;
    }
    if (dict_len && inflateSetDictionary(z, dict, (uInt)dict_len) != Z_OK)
        return SM_ECORRUPT;
    if (in_len > UINT32_MAX || n > UINT32_MAX)
        return SM_ECORRUPT;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)in_len;
    z->next_out = out;
    z->avail_out = (uInt)n;
    int zr = inflate(z, Z_FINISH);
    if (zr != Z_STREAM_END || z->avail_out != 0)
        return SM_ECORRUPT;
    return SM_OK;
}

int rfs_sf_zstd(void **dctx, const uint8_t *in, size_t in_len, uint8_t *out, size_t n,
                const uint8_t *dict, size_t dict_len)
{
    if (!*dctx) {
        *dctx = ZSTD_createDCtx();
        if (!*dctx)
            return SM_ENOMEM;
    }
    ZSTD_DCtx *d = *dctx;
    ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
    /* a prefix is a raw-content dictionary for the next frame only */
    if (dict_len && ZSTD_isError(ZSTD_DCtx_refPrefix(d, dict, dict_len)))
        return SM_ECORRUPT;
    size_t got = ZSTD_decompressDCtx(d, out, n, in, in_len);
    if (ZSTD_isError(got) || got != n)
        return SM_ECORRUPT;
    return SM_OK;
}
