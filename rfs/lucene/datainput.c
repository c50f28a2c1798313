/* Lucene DataInput primitives and CodecUtil headers/footers over rfs_blob. */
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rfs_lu_in_init(struct rfs_lu_in *in, struct rfs_blob *blob, const char *name)
{
    in->blob = blob;
    in->name = name ? name : blob->name;
    in->len = blob->size;
    in->pos = 0;
    in->le = false;
    in->err = 0;
    in->msg[0] = 0;
    in->buf_off = 0;
    in->buf_len = 0;
}

int rfs_lu_fail(struct rfs_lu_in *in, int err, const char *fmt, ...)
{
    if (in->err)
        return in->err;
    in->err = err ? err : SM_ECORRUPT;
    int n = snprintf(in->msg, sizeof(in->msg), "%s @ %llu: ", in->name ? in->name : "?",
                     (unsigned long long)in->pos);
    if (n < 0 || (size_t)n >= sizeof(in->msg))
        return in->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->msg + n, sizeof(in->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return in->err;
}

int rfs_lu_in_err(const struct rfs_lu_in *in, char *err, size_t errlen)
{
    if (in->err && err && errlen)
        snprintf(err, errlen, "%s", in->msg);
    return in->err;
}

void rfs_lu_seek(struct rfs_lu_in *in, uint64_t pos)
{
    if (in->err)
        return;
    if (pos > in->len) {
        rfs_lu_fail(in, SM_ECORRUPT, "seek to %llu past end of file (%llu bytes)",
                    (unsigned long long)pos, (unsigned long long)in->len);
        return;
    }
    in->pos = pos;
}

void rfs_lu_skip(struct rfs_lu_in *in, uint64_t n)
{
    if (in->err)
        return;
    if (n > rfs_lu_remaining(in)) {
        rfs_lu_fail(in, SM_ECORRUPT, "skip of %llu bytes past end of file (%llu bytes)",
                    (unsigned long long)n, (unsigned long long)in->len);
        return;
    }
    in->pos += n;
}

static int io_fail(struct rfs_lu_in *in, int rc, size_t n)
{
    if (rc == SM_EEOF || rc == 0)
        return rfs_lu_fail(in, SM_ECORRUPT, "read of %zu bytes past end of file (%llu bytes)", n,
                           (unsigned long long)in->len);
    return rfs_lu_fail(in, rc, "read failed: %s", sm_strerror(rc));
}

void rfs_lu_bytes(struct rfs_lu_in *in, void *dst, size_t n)
{
    uint8_t *d = dst;
    if (in->err || n > rfs_lu_remaining(in)) {
        if (!in->err)
            io_fail(in, SM_EEOF, n);
        memset(dst, 0, n);
        return;
    }
    while (n) {
        if (in->pos >= in->buf_off && in->pos < in->buf_off + in->buf_len) {
            size_t at = (size_t)(in->pos - in->buf_off);
            size_t k = SM_MIN(n, in->buf_len - at);
            memcpy(d, in->buf + at, k);
            d += k;
            n -= k;
            in->pos += k;
            continue;
        }
        if (n >= RFS_LU_BUF_SIZE) {     /* large read: straight from the blob */
            int rc = rfs_blob_read_at(in->blob, in->pos, d, n);
            if (rc) {
                io_fail(in, rc, n);
                memset(dst, 0, n);
                return;
            }
            in->pos += n;
            return;
        }
        size_t fill = (size_t)SM_MIN((uint64_t)RFS_LU_BUF_SIZE, in->len - in->pos);
        int rc = rfs_blob_read_at(in->blob, in->pos, in->buf, fill);
        if (rc) {
            in->buf_len = 0;
            io_fail(in, rc, fill);
            memset(dst, 0, (size_t)(d - (uint8_t *)dst) + n);
            return;
        }
        in->buf_off = in->pos;
        in->buf_len = fill;
    }
}

uint8_t rfs_lu_byte(struct rfs_lu_in *in)
{
    if (!in->err && in->pos >= in->buf_off && in->pos < in->buf_off + in->buf_len)
        return in->buf[in->pos++ - in->buf_off];
    uint8_t b;
    rfs_lu_bytes(in, &b, 1);
    return b;
}

static uint64_t rd_be(struct rfs_lu_in *in, size_t n)
{
    uint8_t b[8];
    rfs_lu_bytes(in, b, n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | b[i];
    return v;
}

static uint64_t rd_le(struct rfs_lu_in *in, size_t n)
{
    uint8_t b[8];
    rfs_lu_bytes(in, b, n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | b[i];
    return v;
}

int16_t rfs_lu_i16(struct rfs_lu_in *in)
{
    return (int16_t)(uint16_t)(in->le ? rd_le(in, 2) : rd_be(in, 2));
}
int32_t rfs_lu_i32(struct rfs_lu_in *in)
{
    return (int32_t)(uint32_t)(in->le ? rd_le(in, 4) : rd_be(in, 4));
}
int64_t rfs_lu_i64(struct rfs_lu_in *in)
{
    return (int64_t)(in->le ? rd_le(in, 8) : rd_be(in, 8));
}
int32_t rfs_lu_be32(struct rfs_lu_in *in) { return (int32_t)(uint32_t)rd_be(in, 4); }
int64_t rfs_lu_be64(struct rfs_lu_in *in) { return (int64_t)rd_be(in, 8); }
int32_t rfs_lu_le32(struct rfs_lu_in *in) { return (int32_t)(uint32_t)rd_le(in, 4); }
int64_t rfs_lu_le64(struct rfs_lu_in *in) { return (int64_t)rd_le(in, 8); }

int32_t rfs_lu_vint(struct rfs_lu_in *in)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        uint8_t b = rfs_lu_byte(in);
        if (in->err)
            return 0;
        if (shift == 28 && (b & 0xf0))
            break;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return (int32_t)v;
    }
    rfs_lu_fail(in, SM_ECORRUPT, "invalid VInt");
    return 0;
}

int64_t rfs_lu_vlong(struct rfs_lu_in *in)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 63; shift += 7) {
        uint8_t b = rfs_lu_byte(in);
        if (in->err)
            return 0;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return (int64_t)v;
    }
    rfs_lu_fail(in, SM_ECORRUPT, "invalid VLong");
    return 0;
}

int32_t rfs_lu_zint(struct rfs_lu_in *in)
{
    uint32_t v = (uint32_t)rfs_lu_vint(in);
    return (int32_t)((v >> 1) ^ (0u - (v & 1)));
}

int64_t rfs_lu_zlong(struct rfs_lu_in *in)
{
    /* ZLong uses the full 10-byte VLong range */
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b = rfs_lu_byte(in);
        if (in->err)
            return 0;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return (int64_t)((v >> 1) ^ (0 - (v & 1)));
    }
    rfs_lu_fail(in, SM_ECORRUPT, "invalid ZLong");
    return 0;
}

int32_t rfs_lu_vint_range(struct rfs_lu_in *in, int32_t min, int32_t max, const char *what)
{
    int32_t v = rfs_lu_vint(in);
    if (!in->err && (v < min || v > max)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid %s %d (expected %d..%d)", what, v, min, max);
        return 0;
    }
    return v;
}

char *rfs_lu_string(struct rfs_lu_in *in, size_t *len)
{
    int32_t n = rfs_lu_vint(in);
    if (in->err)
        return NULL;
    if (n < 0 || (uint32_t)n > RFS_LU_MAX_STRING || (uint64_t)n > rfs_lu_remaining(in)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid string length %d", n);
        return NULL;
    }
    char *s = sm_malloc((size_t)n + 1);
    if (!s) {
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        return NULL;
    }
    rfs_lu_bytes(in, s, (size_t)n);
    if (in->err) {
        sm_free(s);
        return NULL;
    }
    s[n] = 0;
    if (len)
        *len = (size_t)n;
    return s;
}

const char *rfs_lu_kv_get(const struct rfs_lu_kv *kv, const char *key)
{
    for (size_t i = 0; i < kv->n; i++)
        if (!strcmp(kv->key[i], key))
            return kv->val[i];
    return NULL;
}

void rfs_lu_kv_free(struct rfs_lu_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        sm_free(kv->key[i]);
        sm_free(kv->val[i]);
    }
    sm_free(kv->key);
    sm_free(kv->val);
    memset(kv, 0, sizeof(*kv));
}

static int32_t read_count(struct rfs_lu_in *in, bool i32_count, const char *what)
{
    int32_t n = i32_count ? rfs_lu_be32(in) : rfs_lu_vint(in);
    if (in->err)
        return 0;
    if (n < 0 || n > RFS_LU_MAX_COLLECTION || (uint64_t)n > rfs_lu_remaining(in)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid %s size %d", what, n);
        return 0;
    }
    return n;
}

void rfs_lu_kv_read(struct rfs_lu_in *in, bool i32_count, struct rfs_lu_kv *out)
{
    rfs_lu_kv_free(out);
    int32_t n = read_count(in, i32_count, "map");
    if (in->err || n == 0)
        return;
    out->key = sm_calloc((size_t)n, sizeof(char *));
    out->val = sm_calloc((size_t)n, sizeof(char *));
    if (!out->key || !out->val) {
        rfs_lu_kv_free(out);
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        char *k = rfs_lu_string(in, NULL);
        char *v = k ? rfs_lu_string(in, NULL) : NULL;
        if (!v) {
            sm_free(k);
            rfs_lu_kv_free(out);
            return;
        }
        out->key[out->n] = k;
        out->val[out->n] = v;
        out->n++;
    }
}

void rfs_lu_set_read(struct rfs_lu_in *in, bool i32_count, struct sm_strlist *out)
{
    int32_t n = read_count(in, i32_count, "set");
    for (int32_t i = 0; i < n && !in->err; i++) {
        char *s = rfs_lu_string(in, NULL);
        if (!s)
            return;
        if (sm_strlist_push(out, s))
            rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        sm_free(s);
    }
}

/* CodecUtil */

void rfs_lu_read_header(struct rfs_lu_in *in, struct rfs_lu_header *h)
{
    memset(h, 0, sizeof(*h));
    int32_t magic = rfs_lu_be32(in);
    if (in->err)
        return;
    if ((uint32_t)magic != RFS_LU_CODEC_MAGIC) {
        rfs_lu_fail(in, SM_ECORRUPT, "codec header mismatch: magic %08x, expected %08x",
                    (uint32_t)magic, RFS_LU_CODEC_MAGIC);
        return;
    }
    int32_t n = rfs_lu_vint(in);
    if (in->err)
        return;
    if (n < 0 || n >= (int32_t)sizeof(h->codec)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid codec name length %d", n);
        return;
    }
    rfs_lu_bytes(in, h->codec, (size_t)n);
    h->codec[n] = 0;
    for (int32_t i = 0; i < n && !in->err; i++)
        if ((uint8_t)h->codec[i] < 0x20 || (uint8_t)h->codec[i] >= 0x7f) {
            h->codec[i] = '?';
            rfs_lu_fail(in, SM_ECORRUPT, "codec header mismatch: invalid codec name '%s'",
                        h->codec);
        }
    h->version = rfs_lu_be32(in);
    h->end = in->pos;
}

void rfs_lu_read_header_id(struct rfs_lu_in *in, struct rfs_lu_header *h)
{
    rfs_lu_bytes(in, h->id, RFS_LU_ID_LEN);
    uint8_t n = rfs_lu_byte(in);
    rfs_lu_bytes(in, h->suffix, n);
    h->suffix[n] = 0;
    if (!in->err)
        h->has_id = true;
    h->end = in->pos;
}

static void check_codec(struct rfs_lu_in *in, const struct rfs_lu_header *h, const char *codec,
                        int32_t minv, int32_t maxv)
{
    if (in->err)
        return;
    if (strcmp(h->codec, codec)) {
        rfs_lu_fail(in, SM_ECORRUPT, "codec mismatch: actual codec '%s' vs expected '%s'",
                    h->codec, codec);
        return;
    }
    if (h->version < minv || h->version > maxv)
        rfs_lu_fail(in, SM_EUNSUPPORTED,
                    "unsupported Lucene format %s version %d (supported %d..%d)", codec,
                    h->version, minv, maxv);
}

void rfs_lu_check_header(struct rfs_lu_in *in, const char *codec, int32_t minv, int32_t maxv,
                         int32_t *version)
{
    struct rfs_lu_header h;
    rfs_lu_read_header(in, &h);
    check_codec(in, &h, codec, minv, maxv);
    if (version)
        *version = in->err ? 0 : h.version;
}

static void hex_id(const uint8_t *id, char *out)
{
    sm_hex(id, RFS_LU_ID_LEN, out);
}

void rfs_lu_check_index_header(struct rfs_lu_in *in, const char *codec, int32_t minv,
                               int32_t maxv, const uint8_t *id, const char *suffix,
                               int32_t *version)
{
    struct rfs_lu_header h;
    rfs_lu_read_header(in, &h);
    check_codec(in, &h, codec, minv, maxv);
    rfs_lu_read_header_id(in, &h);
    if (!in->err && id && memcmp(id, h.id, RFS_LU_ID_LEN)) {
        char a[33], b[33];
        hex_id(h.id, a);
        hex_id(id, b);
        rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: id %s, expected %s", a, b);
    }
    if (!in->err && suffix && strcmp(suffix, h.suffix))
        rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: suffix '%s', expected '%s'", h.suffix,
                    suffix);
    if (version)
        *version = in->err ? 0 : h.version;
}

uint64_t rfs_lu_index_header_len(const char *codec, const char *suffix)
{
    size_t n = strlen(codec);
    return 4 + (n < 128 ? 1 : 2) + n + 4 + RFS_LU_ID_LEN + 1 + strlen(suffix);
}

void rfs_lu_check_footer_pos(struct rfs_lu_in *in, uint32_t *crc)
{
    if (in->err)
        return;
    if (in->len < RFS_LU_FOOTER_LEN || in->pos != in->len - RFS_LU_FOOTER_LEN) {
        rfs_lu_fail(in, SM_ECORRUPT, "footer expected at %llu (file has %llu bytes)",
                    (unsigned long long)(in->len >= RFS_LU_FOOTER_LEN ? in->len - RFS_LU_FOOTER_LEN : 0),
                    (unsigned long long)in->len);
        return;
    }
    int32_t magic = rfs_lu_be32(in);
    int32_t algo = rfs_lu_be32(in);
    int64_t v = rfs_lu_be64(in);
    if (in->err)
        return;
    if (magic != RFS_LU_FOOTER_MAGIC)
        rfs_lu_fail(in, SM_ECORRUPT, "codec footer mismatch: magic %08x", (uint32_t)magic);
    else if (algo != 0)
        rfs_lu_fail(in, SM_ECORRUPT, "codec footer mismatch: unknown checksum algorithm %d", algo);
    else if ((uint64_t)v >> 32)
        rfs_lu_fail(in, SM_ECORRUPT, "illegal CRC-32 checksum %016llx", (unsigned long long)v);
    if (crc)
        *crc = (uint32_t)v;
}

int rfs_lu_verify_checksum(struct rfs_blob *blob, const char *name, char *err, size_t errlen)
{
    if (!name)
        name = blob->name;
    if (blob->size < RFS_LU_FOOTER_LEN)
        return sm_errf(err, errlen, SM_ECORRUPT,
                       "%s: file too short for a codec footer (%llu bytes)", name,
                       (unsigned long long)blob->size);
    uint8_t buf[65536];
    uint32_t crc = 0;
    uint64_t end = blob->size - 8, off = 0;
    while (off < end) {
        size_t n = (size_t)SM_MIN((uint64_t)sizeof(buf), end - off);
        int rc = rfs_blob_read_at(blob, off, buf, n);
        if (rc)
            return sm_errf(err, errlen, rc == SM_EEOF ? SM_ECORRUPT : rc, "%s: read failed: %s",
                           name, sm_strerror(rc));
        crc = sm_crc32(crc, buf, n);
        off += n;
    }
    uint8_t f[RFS_LU_FOOTER_LEN];
    int rc = rfs_blob_read_at(blob, blob->size - RFS_LU_FOOTER_LEN, f, sizeof(f));
    if (rc)
        return sm_errf(err, errlen, rc == SM_EEOF ? SM_ECORRUPT : rc, "%s: read failed: %s", name,
                       sm_strerror(rc));
    uint32_t magic = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
    uint32_t algo = (uint32_t)f[4] << 24 | (uint32_t)f[5] << 16 | (uint32_t)f[6] << 8 | f[7];
    uint64_t stored = 0;
    for (int i = 8; i < 16; i++)
        stored = (stored << 8) | f[i];
    if (magic != (uint32_t)RFS_LU_FOOTER_MAGIC)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: codec footer mismatch (magic %08x)", name,
                       magic);
    if (algo != 0)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: unknown checksum algorithm %u", name, algo);
    if (stored != crc)
        return sm_errf(err, errlen, SM_ECORRUPT,
                       "%s: checksum failed (stored %08llx, computed %08x)", name,
                       (unsigned long long)stored, crc);
    return SM_OK;
}

int rfs_lu_version_cmp(struct rfs_lu_version a, int32_t major, int32_t minor, int32_t bugfix)
{
    if (a.major != major)
        return a.major < major ? -1 : 1;
    if (a.minor != minor)
        return a.minor < minor ? -1 : 1;
    if (a.bugfix != bugfix)
        return a.bugfix < bugfix ? -1 : 1;
    return 0;
}

char *rfs_lu_base36(uint64_t v, char *out, size_t outlen)
{
    char tmp[16];
    size_t n = 0;
    do {
        unsigned d = (unsigned)(v % 36);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= 36;
    } while (v && n < sizeof(tmp));
    size_t i = 0;
    for (; i < n && i + 1 < outlen; i++)
        out[i] = tmp[n - 1 - i];
    if (outlen)
        out[i] = 0;
    return out;
}

int rfs_lu_gen_file_name(const char *seg, int64_t gen, const char *ext, char *out, size_t outlen)
{
    char g[16];
    int n;
    if (gen == -1)
        n = snprintf(out, outlen, "%s%s", seg, ext);
    else
        n = snprintf(out, outlen, "%s_%s%s", seg, rfs_lu_base36((uint64_t)gen, g, sizeof(g)), ext);
    return (n < 0 || (size_t)n >= outlen) ? SM_EFULL : SM_OK;
}
