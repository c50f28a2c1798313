/* CodecUtil framing, compression wrappers and metadata blob decoding (codec.h). */
#include "repo/codec.h"

#include "smile/smile.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <lzf.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int rfs_codec_read_header(const uint8_t *p, size_t n, bool id_and_suffix, const char *expect_codec,
                          int32_t min_ver, int32_t max_ver, struct rfs_codec_header *hdr,
                          const char *name, char *err, size_t errlen)
{
    memset(hdr, 0, sizeof(*hdr));
    if (n < 4)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated codec header (%zu bytes)", name, n);
    uint32_t magic = be32(p);
    if (magic != RFS_CODEC_MAGIC)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: codec header magic %08x != %08x", name, magic,
                       RFS_CODEC_MAGIC);
    size_t pos = 4;
    uint32_t slen = 0;
    for (int shift = 0;; shift += 7) {
        if (pos >= n || shift > 28)
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated codec header", name);
        uint8_t b = p[pos++];
        slen |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    if (slen >= sizeof(hdr->codec) || slen > n - pos || n - pos - slen < 4)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated codec header", name);
    memcpy(hdr->codec, p + pos, slen);
    hdr->codec[slen] = 0;
    pos += slen;
    hdr->version = (int32_t)be32(p + pos);
    pos += 4;
    if (expect_codec && strcmp(hdr->codec, expect_codec))
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: codec '%s', expected '%s'", name, hdr->codec,
                       expect_codec);
    if (hdr->version < min_ver || hdr->version > max_ver)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: codec '%s' version %d not supported (%d..%d)",
                       name, hdr->codec, (int)hdr->version, (int)min_ver, (int)max_ver);
    if (id_and_suffix) {
        if (n - pos < 17)
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated index header", name);
        hdr->has_id = true;
        memcpy(hdr->id, p + pos, 16);
        pos += 16;
        size_t sl = p[pos++];
        if (sl > n - pos)
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated index header suffix", name);
        memcpy(hdr->suffix, p + pos, sl);
        hdr->suffix[sl] = 0;
        pos += sl;
    }
    hdr->len = pos;
    return SM_OK;
}

static int check_footer_fields(const uint8_t *f, uint64_t *crc, const char *name, char *err, size_t errlen)
{
    uint32_t magic = be32(f);
    if (magic != RFS_CODEC_FOOTER_MAGIC)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: footer magic %08x != %08x", name, magic,
                       RFS_CODEC_FOOTER_MAGIC);
    uint32_t algo = be32(f + 4);
    if (algo != 0)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: footer checksum algorithm %u != 0", name, algo);
    uint64_t v = be64(f + 8);
    if (v >> 32)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: footer checksum %016llx has high bits set", name,
                       (unsigned long long)v);
    *crc = v;
    return SM_OK;
}

int rfs_codec_check_footer(const uint8_t *p, size_t n, uint64_t *crc, const char *name,
                           char *err, size_t errlen)
{
    if (n < RFS_CODEC_FOOTER_LEN)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated footer (%zu bytes)", name, n);
    uint64_t stored = 0;   /* set by check_footer_fields on success (gcc -O3 cannot tell) */
    int rc = check_footer_fields(p + n - RFS_CODEC_FOOTER_LEN, &stored, name, err, errlen);
    if (rc)
        return rc;
    uint32_t actual = sm_crc32(0, p, n - 8);
    if (actual != stored)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: footer CRC %08x != %08x", name, actual,
                       (uint32_t)stored);
    if (crc)
        *crc = stored;
    return SM_OK;
}

int rfs_codec_blob_footer(struct rfs_blob *blob, uint64_t *crc, char *err, size_t errlen)
{
    uint8_t f[RFS_CODEC_FOOTER_LEN];
    if (blob->size < RFS_CODEC_FOOTER_LEN)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated footer (%llu bytes)", blob->name,
                       (unsigned long long)blob->size);
    int rc = rfs_blob_read_at(blob, blob->size - RFS_CODEC_FOOTER_LEN, f, sizeof(f));
    if (rc)
        return sm_errf(err, errlen, rc, "%s: reading footer: %s", blob->name, sm_strerror(rc));
    return check_footer_fields(f, crc, blob->name, err, errlen);
}

int rfs_codec_blob_verify(struct rfs_blob *blob, uint64_t *crc, char *err, size_t errlen)
{
    uint64_t stored;
    int rc = rfs_codec_blob_footer(blob, &stored, err, errlen);
    if (rc)
        return rc;
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = sm_malloc(CHUNK);
    if (!buf)
        return SM_ENOMEM;
    uint32_t c = 0;
    uint64_t end = blob->size - 8, off = 0;
    while (off < end) {
        size_t take = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
        if ((rc = rfs_blob_read_at(blob, off, buf, take))) {
            sm_free(buf);
            return sm_errf(err, errlen, rc, "%s: read at %llu: %s", blob->name, (unsigned long long)off,
                           sm_strerror(rc));
        }
        c = sm_crc32(c, buf, take);
        off += take;
    }
    sm_free(buf);
    if (c != stored)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: footer CRC %08x != %08x", blob->name, c,
                       (uint32_t)stored);
    if (crc)
        *crc = stored;
    return SM_OK;
}

enum rfs_codec_compression rfs_codec_detect_compression(const uint8_t *p, size_t n)
{
    if (n >= 4 && !memcmp(p, "DFL\0", 4))
        return RFS_COMP_DEFLATE;
    if (n >= 5 && !memcmp(p, "ZSTD\0", 5))
        return RFS_COMP_ZSTD;
    if (n >= 3 && p[0] == 'Z' && p[1] == 'V' && (p[2] == 0 || p[2] == 1))
        return RFS_COMP_LZF;
    return RFS_COMP_NONE;
}

int rfs_lzf_decode(const uint8_t *p, size_t n, size_t max, uint8_t **out, size_t *outlen,
                   const char *name, char *err, size_t errlen)
{
    struct sm_buf b;
    sm_buf_init(&b, max);
    size_t pos = 0;
    int rc = SM_OK;
    while (pos < n) {
        if (n - pos < 5 || p[pos] != 'Z' || p[pos + 1] != 'V') {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: bad LZF chunk header at offset %zu", name, pos);
            goto fail;
        }
        uint8_t type = p[pos + 2];
        size_t clen = (size_t)p[pos + 3] << 8 | p[pos + 4];
        if (type == 0) {
            pos += 5;
            if (clen > n - pos) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated LZF chunk at offset %zu", name, pos - 5);
                goto fail;
            }
            if ((rc = sm_buf_append(&b, p + pos, clen)))
                goto full;
            pos += clen;
        } else if (type == 1) {
            if (n - pos < 7) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated LZF chunk at offset %zu", name, pos);
                goto fail;
            }
            size_t ulen = (size_t)p[pos + 5] << 8 | p[pos + 6];
            pos += 7;
            if (clen > n - pos) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated LZF chunk at offset %zu", name, pos - 7);
                goto fail;
            }
            if ((rc = sm_buf_reserve(&b, ulen + 1)))
                goto full;
            unsigned got = ulen ? lzf_decompress(p + pos, (unsigned)clen, b.data + b.len, (unsigned)ulen) : 0;
            if (got != ulen) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: corrupt LZF chunk at offset %zu (%u of %zu bytes)",
                             name, pos - 7, got, ulen);
                goto fail;
            }
            b.len += ulen;
            pos += clen;
        } else {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: unknown LZF chunk type %u at offset %zu", name, type, pos);
            goto fail;
        }
    }
    if ((rc = sm_buf_reserve(&b, 1)))
        goto full;
    b.data[b.len] = 0;
    *outlen = b.len;
    *out = sm_buf_steal(&b, outlen);
    return SM_OK;
full:
    rc = sm_errf(err, errlen, rc, "%s: LZF output over %zu bytes: %s", name, max, sm_strerror(rc));
fail:
    sm_buf_free(&b);
    return rc;
}

static int inflate_raw(const uint8_t *p, size_t n, size_t max, struct sm_buf *b, const char *name,
                       char *err, size_t errlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -15) != Z_OK)
        return SM_ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)p;
    int rc = SM_OK, zr = Z_OK;
    size_t left = n;
    while (zr != Z_STREAM_END) {
        if ((rc = sm_buf_reserve(b, 64 * 1024 + 1))) {
            rc = sm_errf(err, errlen, rc, "%s: inflated size over %zu bytes", name, max);
            break;
        }
        uInt inchunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        zs.next_in = (Bytef *)(uintptr_t)(p + (n - left));
        zs.avail_in = inchunk;
        size_t room = b->cap - b->len - 1;
        if (room > b->max - b->len)
            room = b->max - b->len;
        zs.next_out = b->data + b->len;
        zs.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt before_out = zs.avail_out;
        zr = inflate(&zs, Z_NO_FLUSH);
        left -= inchunk - zs.avail_in;
        b->len += before_out - zs.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_BUF_ERROR && left == 0) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated deflate stream", name);
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: corrupt deflate stream: %s", name,
                         zs.msg ? zs.msg : "error");
            break;
        }
        if (b->len >= b->max) {
            rc = sm_errf(err, errlen, SM_EFULL, "%s: inflated size over %zu bytes", name, max);
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

static int unzstd(const uint8_t *p, size_t n, size_t max, struct sm_buf *b, const char *name,
                  char *err, size_t errlen)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds)
        return SM_ENOMEM;
    ZSTD_inBuffer in = { p, n, 0 };
    int rc = SM_OK;
    size_t zr = 1;
    while (in.pos < in.size || zr != 0) {
        if ((rc = sm_buf_reserve(b, 64 * 1024 + 1))) {
            rc = sm_errf(err, errlen, rc, "%s: zstd output over %zu bytes", name, max);
            break;
        }
        size_t room = b->cap - b->len - 1;
        if (room > b->max - b->len)
            room = b->max - b->len;
        ZSTD_outBuffer o = { b->data + b->len, room, 0 };
        size_t in_before = in.pos;
        zr = ZSTD_decompressStream(ds, &o, &in);
        if (ZSTD_isError(zr)) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: corrupt zstd stream: %s", name, ZSTD_getErrorName(zr));
            break;
        }
        b->len += o.pos;
        if (in.pos == in.size && zr != 0 && o.pos == 0 && in.pos == in_before) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated zstd stream", name);
            break;
        }
        if (b->len >= b->max && zr != 0) {
            rc = sm_errf(err, errlen, SM_EFULL, "%s: zstd output over %zu bytes", name, max);
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

int rfs_codec_decompress(const uint8_t *p, size_t n, size_t max, uint8_t **out, size_t *outlen,
                         const char *name, char *err, size_t errlen)
{
    enum rfs_codec_compression c = rfs_codec_detect_compression(p, n);
    if (c == RFS_COMP_LZF)
        return rfs_lzf_decode(p, n, max, out, outlen, name, err, errlen);
    struct sm_buf b;
    sm_buf_init(&b, max);
    int rc;
    if (c == RFS_COMP_DEFLATE)
        rc = inflate_raw(p + 4, n - 4, max, &b, name, err, errlen);
    else if (c == RFS_COMP_ZSTD)
        rc = unzstd(p + 5, n - 5, max, &b, name, err, errlen);
    else if (n > max)
        rc = sm_errf(err, errlen, SM_EFULL, "%s: %zu bytes over limit %zu", name, n, max);
    else
        rc = sm_buf_append(&b, p, n);
    if (!rc && (rc = sm_buf_reserve(&b, 1)))
        rc = sm_errf(err, errlen, rc, "%s: output over %zu bytes", name, max);
    if (rc) {
        sm_buf_free(&b);
        return rc;
    }
    b.data[b.len] = 0;
    *out = sm_buf_steal(&b, outlen);
    return SM_OK;
}

/* Payload (after any decompression) -> JSON tree. */
static int decode_payload(const uint8_t *p, size_t n, json_t **out, const char *name, char *err, size_t errlen)
{
    if (rfs_smile_detect(p, n)) {
        char e2[256];
        int rc = rfs_smile_to_jansson(p, n, NULL, out, e2, sizeof(e2));
        if (rc)
            return sm_errf(err, errlen, rc, "%s: %s", name, e2);
        return SM_OK;
    }
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i < n && (p[i] == '{' || p[i] == '[')) {
        json_error_t je;
        json_t *j = json_loadb((const char *)p, n, JSON_ALLOW_NUL, &je);
        if (!j)
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: invalid JSON at line %d column %d: %s", name, je.line,
                           je.column, je.text);
        *out = j;
        return SM_OK;
    }
    return sm_errf(err, errlen, SM_ECORRUPT, "%s: payload is neither SMILE nor JSON (first byte %02x)", name,
                   n ? p[0] : 0);
}

static int decode_maybe_compressed(const uint8_t *p, size_t n, json_t **out, const char *name,
                                   char *err, size_t errlen)
{
    if (rfs_codec_detect_compression(p, n) == RFS_COMP_NONE)
        return decode_payload(p, n, out, name, err, errlen);
    uint8_t *d = NULL;
    size_t dn = 0;
    int rc = rfs_codec_decompress(p, n, RFS_REPO_META_MAX, &d, &dn, name, err, errlen);
    if (rc)
        return rc;
    rc = decode_payload(d, dn, out, name, err, errlen);
    sm_free(d);
    return rc;
}

int rfs_codec_decode_xcontent(const uint8_t *p, size_t n, const char *expect_codec, bool allow_plain,
                              json_t **out, const char *name, char *err, size_t errlen)
{
    if (n >= 4 && be32(p) == RFS_CODEC_MAGIC) {
        struct rfs_codec_header hdr;
        int rc = rfs_codec_read_header(p, n, false, expect_codec, 1, 1, &hdr, name, err, errlen);
        if (rc)
            return rc;
        if (n < hdr.len + RFS_CODEC_FOOTER_LEN)
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated blob (%zu bytes)", name, n);
        if ((rc = rfs_codec_check_footer(p, n, NULL, name, err, errlen)))
            return rc;
        return decode_maybe_compressed(p + hdr.len, n - hdr.len - RFS_CODEC_FOOTER_LEN, out, name, err, errlen);
    }
    if (!allow_plain)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: no codec header (first bytes %02x%02x%02x%02x)", name,
                       n > 0 ? p[0] : 0, n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0);
    return decode_maybe_compressed(p, n, out, name, err, errlen);
}

int rfs_repo_read_xcontent(struct rfs_dir *dir, const char *path, const char *expect_codec,
                           bool allow_plain, json_t **out, char *err, size_t errlen)
{
    struct rfs_blob *blob = NULL;
    int rc = rfs_dir_open(dir, path, &blob, err, errlen);
    if (rc)
        return rc;
    uint8_t *data = NULL;
    size_t len = 0;
    rc = rfs_blob_read_all(blob, RFS_REPO_META_MAX, &data, &len);
    if (rc) {
        rc = sm_errf(err, errlen, rc, "%s: %s", path, sm_strerror(rc));
    } else {
        rc = rfs_codec_decode_xcontent(data, len, expect_codec, allow_plain, out, path, err, errlen);
    }
    sm_free(data);
    rfs_blob_close(blob);
    return rc;
}
