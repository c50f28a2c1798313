/* Lucene stored fields reader (snapshot-format.md section 7). Streams the
 * .fdt chunk by chunk through its own input window; headers go through the
 * shared DataInput (lucene_int.h). */
#include "lucene/storedfields.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <zstd.h>

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include "lucene/lucene_int.h"
#include "lucene/storedfields_int.h"

/* Caps: a chunk (all its docs decompressed, or one sliced huge doc) and the
 * documents per chunk. Lucene's writers stay far below the doc cap (4096);
 * documents are limited by ES to http.max_content_length (100 MB default). */
#define SF_MAX_CHUNK_BYTES (1024u * 1024u * 1024u)
#define SF_MAX_CHUNK_DOCS  (1 << 20)
#define SF_IN_MIN          (256u * 1024u)
#define SF_IN_SLACK        16

enum sf_family { FAM_L41, FAM_L50, FAM_L90 };
enum sf_mode { MODE_LZ4, MODE_DEFLATE, MODE_LZ4_DICT, MODE_DEFLATE_DICT, MODE_ZSTD,
               MODE_ZSTD_DICT, MODE_ZSTD_NODICT };

struct sf_codec {
    const char *name;
    enum sf_family fam;
    enum sf_mode mode;
    int minv, maxv;
    const char *meta;          /* .fdm codec holding ChunkSize, or NULL (in .fdt) */
    bool supported;            /* false: recognised but untested on real bytes */
};

static const struct sf_codec sf_codecs[] = {
    { "Lucene41StoredFieldsData",      FAM_L41, MODE_LZ4,          0, 2, NULL, true },
    { "Lucene50StoredFieldsFastData",  FAM_L50, MODE_LZ4,          0, 2, NULL, true },
    { "Lucene50StoredFieldsHighData",  FAM_L50, MODE_DEFLATE,      0, 2, NULL, true },
    { "Lucene87StoredFieldsFastData",  FAM_L50, MODE_LZ4_DICT,     3, 4, "Lucene85FieldsIndexMeta", true },
    { "Lucene87StoredFieldsHighData",  FAM_L50, MODE_DEFLATE_DICT, 3, 4, "Lucene85FieldsIndexMeta", true },
    { "Lucene90StoredFieldsFastData",  FAM_L90, MODE_LZ4_DICT,     0, 1, "Lucene90FieldsIndexMeta", true },
    { "Lucene90StoredFieldsHighData",  FAM_L90, MODE_DEFLATE_DICT, 0, 1, "Lucene90FieldsIndexMeta", true },
    { "ZstdStoredFields813",           FAM_L90, MODE_ZSTD,         0, 1, "ZstdStoredFields813Index", false },
    { "ZstdStoredFields814",           FAM_L90, MODE_ZSTD,         0, 1, "ZstdStoredFields814Index", false },
    { "CustomStoredFieldsZstd",        FAM_L90, MODE_ZSTD_DICT,    0, 1, NULL, false },
    { "CustomStoredFieldsZstdNoDict",  FAM_L90, MODE_ZSTD_NODICT,  0, 1, NULL, false },
};

struct rfs_sf_reader {
    struct rfs_blob *fdt;
    const char *name;
    const struct sf_codec *codec;
    int version;
    int max_doc;
    int chunk_size;            /* -1 unknown (needed only for sliced chunks) */
    int packed_version;        /* Lucene41/50 PackedInts version */
    int numenc;
    uint64_t data_start, data_end;

    /* input window over the .fdt */
    uint8_t *in;
    size_t in_cap, in_len, in_pos;
    uint64_t in_off;

    /* current chunk */
    int next_doc;              /* first doc of the next chunk to load */
    int chunk_base, chunk_docs;
    uint32_t *nf;              /* stored fields per doc */
    uint32_t *lens;            /* doc lengths (scratch) */
    uint64_t *off;             /* chunk_docs + 1 offsets into out */
    size_t docs_cap;
    uint8_t *out;
    size_t out_cap, out_len;
    bool chunk_ok;             /* out holds docs [chunk_base, chunk_base + chunk_docs) */
    bool pos_ok;               /* the input is positioned at the chunk of next_doc */

    z_stream z;
    bool z_inited;
    void *zstd;
    uint8_t *dict;             /* dictionary copy for DEFLATE/zstd pieces */
    size_t dict_cap;
    uint64_t decoded;

    /* streamed CRC32 of the file prefix [0, crc_pos) (rfs_sf_verify_checksum) */
    bool crc_on;
    uint32_t crc;
    uint64_t crc_pos;
};

/* ------------------------------------------------------------------ */
/* input window                                                         */

static int fail(struct rfs_sf_reader *r, char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct rfs_sf_reader *r, char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "%s: chunk at doc %d (offset %llu): ", r->name,
                         r->chunk_base, (unsigned long long)(r->in_off + r->in_pos));
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    r->chunk_ok = false;
    r->pos_ok = false;
    return rc;
}

/* Makes up to want bytes available at r->in + r->in_pos (fewer only at the
 * end of the data area); *avail gets what is available. */
static int in_fill(struct rfs_sf_reader *r, size_t want, size_t *avail)
{
    size_t have = r->in_len - r->in_pos;
    if (have >= want) {
        *avail = have;
        return SM_OK;
    }
    uint64_t cur = r->in_off + r->in_pos;
    uint64_t left = r->data_end > cur ? r->data_end - cur : 0;
    if (want > left)
        want = (size_t)left;
    if (have && r->in_pos)
        memmove(r->in, r->in + r->in_pos, have);
    r->in_off = cur;
    r->in_pos = 0;
    r->in_len = have;
    if (want + SF_IN_SLACK > r->in_cap) {
        size_t cap = r->in_cap * 2;
        if (cap < want + SF_IN_SLACK)
            cap = want + SF_IN_SLACK;
        uint8_t *n = sm_realloc(r->in, cap);
        if (!n)
            return SM_ENOMEM;
        r->in = n;
        r->in_cap = cap;
    }
    size_t room = r->in_cap - SF_IN_SLACK - have;
    uint64_t rd = left - have < room ? left - have : room;
    if (rd) {
        int rc = rfs_blob_read_at(r->fdt, cur + have, r->in + have, (size_t)rd);
        if (rc)
            return rc;
    }
    if (r->crc_on && rd && cur + have == r->crc_pos) {
        r->crc = sm_crc32(r->crc, r->in + have, rd);
        r->crc_pos += rd;
    }
    r->in_len = have + (size_t)rd;
    memset(r->in + r->in_len, 0, SF_IN_SLACK);
    *avail = r->in_len;
    return SM_OK;
}

static int in_vlong(struct rfs_sf_reader *r, int maxbytes, uint64_t *v)
{
    size_t av;
    int rc = in_fill(r, (size_t)maxbytes, &av);
    if (rc)
        return rc;
    const uint8_t *p = r->in + r->in_pos;
    uint64_t x = 0;
    for (int i = 0; i < maxbytes; i++) {
        if ((size_t)i >= av)
            return SM_EEOF;
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            r->in_pos += (size_t)i + 1;
            *v = x;
            return SM_OK;
        }
    }
    return SM_ECORRUPT;
}

static int in_vint(struct rfs_sf_reader *r, uint32_t *v)
{
    uint64_t x;
    int rc = in_vlong(r, 5, &x);
    if (rc)
        return rc;
    if (x > UINT32_MAX)
        return SM_ECORRUPT;
    *v = (uint32_t)x;
    return SM_OK;
}

static int in_bytes(struct rfs_sf_reader *r, size_t n, const uint8_t **p)
{
    size_t av;
    int rc = in_fill(r, n, &av);
    if (rc)
        return rc;
    if (av < n)
        return SM_EEOF;
    *p = r->in + r->in_pos;
    r->in_pos += n;
    return SM_OK;
}

static int in_skip(struct rfs_sf_reader *r, uint64_t n)
{
    size_t have = r->in_len - r->in_pos;
    if (n <= have) {
        r->in_pos += (size_t)n;
        return SM_OK;
    }
    uint64_t cur = r->in_off + r->in_pos;
    if (n > r->data_end - cur)
        return SM_EEOF;
    r->in_off = cur + n;
    r->in_pos = r->in_len = 0;
    return SM_OK;
}

/* ------------------------------------------------------------------ */
/* packed ints of the chunk header                                      */

static int grow_docs(struct rfs_sf_reader *r, size_t n)
{
    if (n <= r->docs_cap)
        return SM_OK;
    size_t cap = r->docs_cap ? r->docs_cap : 128;
    while (cap < n)
        cap *= 2;
    uint32_t *nf = sm_realloc(r->nf, cap * sizeof(*nf));
    if (!nf)
        return SM_ENOMEM;
    r->nf = nf;
    uint32_t *lens = sm_realloc(r->lens, cap * sizeof(*lens));
    if (!lens)
        return SM_ENOMEM;
    r->lens = lens;
    uint64_t *off = sm_realloc(r->off, (cap + 1) * sizeof(*off));
    if (!off)
        return SM_ENOMEM;
    r->off = off;
    r->docs_cap = cap;
    return SM_OK;
}

/* Lucene 4-8: VInt bpv; 0 -> one VInt; else PACKED MSB-first. */
static int read_ints_packed(struct rfs_sf_reader *r, uint32_t n, uint32_t *v)
{
    uint32_t x;
    int rc;
    if (n == 1)
        return in_vint(r, &v[0]);
    uint32_t bpv;
    if ((rc = in_vint(r, &bpv)))
        return rc;
    if (bpv == 0) {
        if ((rc = in_vint(r, &x)))
            return rc;
        for (uint32_t i = 0; i < n; i++)
            v[i] = x;
        return SM_OK;
    }
    if (bpv > 32)
        return SM_ECORRUPT;
    uint64_t bits = (uint64_t)n * bpv;
    uint64_t nbytes = r->packed_version == 0 ? ((bits + 63) / 64) * 8 : (bits + 7) / 8;
    const uint8_t *p;
    if ((rc = in_bytes(r, (size_t)nbytes, &p)))
        return rc;
    uint64_t bitpos = 0;
    for (uint32_t i = 0; i < n; i++, bitpos += bpv) {
        /* gather the bytes covering [bitpos, bitpos + bpv) */
        uint64_t byte = bitpos >> 3;
        unsigned shift = (unsigned)(bitpos & 7);
        uint64_t acc = 0;
        unsigned need = (shift + bpv + 7) / 8;       /* <= 5 */
        for (unsigned k = 0; k < need; k++)
            acc = (acc << 8) | p[byte + k];
        acc >>= need * 8 - shift - bpv;
        v[i] = (uint32_t)(acc & ((bpv == 32) ? 0xffffffffull : ((1ull << bpv) - 1)));
    }
    return SM_OK;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

/* Lucene 9 StoredFieldsInts. */
static int read_ints_l90(struct rfs_sf_reader *r, uint32_t n, uint32_t *v)
{
    int rc;
    const uint8_t *p;
    if (n == 1)
        return in_vint(r, &v[0]);
    if ((rc = in_bytes(r, 1, &p)))
        return rc;
    unsigned bpv = p[0];
    if (bpv == 0) {
        uint32_t x;
        if ((rc = in_vint(r, &x)))
            return rc;
        for (uint32_t i = 0; i < n; i++)
            v[i] = x;
        return SM_OK;
    }
    if (bpv != 8 && bpv != 16 && bpv != 32)
        return SM_ECORRUPT;
    uint32_t k = 0;
    unsigned per = 64 / bpv;                 /* values per word */
    unsigned words = 128 / per;              /* words per block of 128 */
    uint64_t mask = bpv == 32 ? 0xffffffffull : ((1ull << bpv) - 1);
    for (; n - k >= 128; k += 128) {
        if ((rc = in_bytes(r, (size_t)words * 8, &p)))
            return rc;
        for (unsigned w = 0; w < words; w++) {
            uint64_t l = le64(p + 8 * w);
            for (unsigned j = 0; j < per; j++)
                v[k + j * words + w] = (uint32_t)((l >> (64 - bpv * (j + 1))) & mask);
        }
    }
    unsigned bytes = bpv / 8;
    if (n > k) {
        if ((rc = in_bytes(r, (size_t)(n - k) * bytes, &p)))
            return rc;
        for (uint32_t i = 0; k < n; k++, i++) {
            uint32_t x = 0;
            for (unsigned b = bytes; b-- > 0;)
                x = (x << 8) | p[i * bytes + b];
            v[k] = x;
        }
    }
    return SM_OK;
}

static int read_ints(struct rfs_sf_reader *r, uint32_t n, uint32_t *v)
{
    return r->codec->fam == FAM_L90 ? read_ints_l90(r, n, v) : read_ints_packed(r, n, v);
}

/* ------------------------------------------------------------------ */
/* decompression of one piece of n bytes into r->out + at               */

static int set_dict(struct rfs_sf_reader *r, const uint8_t *src, size_t n)
{
    if (n > r->dict_cap) {
        uint8_t *d = sm_realloc(r->dict, n);
        if (!d)
            return SM_ENOMEM;
        r->dict = d;
        r->dict_cap = n;
    }
    memcpy(r->dict, src, n);
    return SM_OK;
}

static int piece_lz4(struct rfs_sf_reader *r, uint8_t *dst, size_t n)
{
    /* no compressed length: bound by LZ4's worst case expansion */
    size_t want = n + n / 255 + 32, av;
    int rc = in_fill(r, want, &av);
    if (rc)
        return rc;
    long used = rfs_sf_lz4_lucene(r->in + r->in_pos, av, dst, n);
    if (used < 0)
        return SM_ECORRUPT;
    r->in_pos += (size_t)used;
    return SM_OK;
}

static int piece_lz4_dict(struct rfs_sf_reader *r, uint8_t *dst, size_t n)
{
    uint32_t dict_len, block_len, clen;
    int rc;
    if ((rc = in_vint(r, &dict_len)) || (rc = in_vint(r, &block_len)) ||
        (rc = in_vint(r, &clen)))
        return rc;
    if (dict_len > n)
        return SM_ECORRUPT;
    size_t rest = n - dict_len;
    if (rest && block_len == 0)
        return SM_ECORRUPT;
    size_t nblocks = rest ? (rest + block_len - 1) / block_len : 0;
    /* compressed block lengths come first; keep them in the nf area? no:
     * they are few (Lucene writes <= 10 sub-blocks); read them into a
     * small array on the heap */
    uint32_t stackl[16], *lens = stackl;
    if (nblocks > 16) {
        if (nblocks > n)
            return SM_ECORRUPT;
        lens = sm_malloc(nblocks * sizeof(*lens));
        if (!lens)
            return SM_ENOMEM;
    }
    for (size_t i = 0; i < nblocks && !rc; i++)
        rc = in_vint(r, &lens[i]);
    const uint8_t *p;
    if (!rc)
        rc = in_bytes(r, clen, &p);
    if (!rc)
        rc = rfs_sf_lz4_block(p, clen, dst, dict_len, NULL, 0);
    size_t o = dict_len;
    for (size_t i = 0; i < nblocks && !rc; i++) {
        size_t bl = rest - i * block_len < block_len ? rest - i * block_len : block_len;
        rc = in_bytes(r, lens[i], &p);
        if (!rc)
            rc = rfs_sf_lz4_block(p, lens[i], dst + o, bl, dst, dict_len);
        o += bl;
    }
    if (lens != stackl)
        sm_free(lens);
    return rc;
}

static int piece_deflate(struct rfs_sf_reader *r, uint8_t *dst, size_t n)
{
    uint32_t clen;
    const uint8_t *p;
    int rc;
    if ((rc = in_vint(r, &clen)))
        return rc;
    if (clen == 0)
        return n == 0 ? SM_OK : SM_ECORRUPT;
    if ((rc = in_bytes(r, clen, &p)))
        return rc;
    return rfs_sf_inflate(&r->z, &r->z_inited, p, clen, dst, n, NULL, 0);
}

static int piece_deflate_dict(struct rfs_sf_reader *r, uint8_t *dst, size_t n)
{
    uint32_t dict_len, block_len, clen;
    const uint8_t *p;
    int rc;
    if ((rc = in_vint(r, &dict_len)) || (rc = in_vint(r, &block_len)))
        return rc;
    if (dict_len > n)
        return SM_ECORRUPT;
    if ((rc = in_vint(r, &clen)))
        return rc;
    if (clen) {
        if ((rc = in_bytes(r, clen, &p)) ||
            (rc = rfs_sf_inflate(&r->z, &r->z_inited, p, clen, dst, dict_len, NULL, 0)))
            return rc;
    } else if (dict_len) {
        return SM_ECORRUPT;
    }
    size_t o = dict_len;
    if (o < n && block_len == 0)
        return SM_ECORRUPT;
    while (o < n) {
        size_t bl = n - o < block_len ? n - o : block_len;
        if ((rc = in_vint(r, &clen)) || (rc = in_bytes(r, clen, &p)))
            return rc;
        if ((rc = rfs_sf_inflate(&r->z, &r->z_inited, p, clen, dst + o, bl, dst, dict_len)))
            return rc;
        o += bl;
    }
    return SM_OK;
}

static int piece_zstd(struct rfs_sf_reader *r, uint8_t *dst, size_t n)
{
    uint32_t clen;
    const uint8_t *p;
    int rc;
    if (n == 0)
        return SM_OK;
    if ((rc = in_vint(r, &clen)) || (rc = in_bytes(r, clen, &p)))
        return rc;
    return rfs_sf_zstd(&r->zstd, p, clen, dst, n, NULL, 0);
}

static int piece_zstd_blocks(struct rfs_sf_reader *r, uint8_t *dst, size_t n, bool with_dict)
{
    uint32_t dict_len = 0, block_len, clen;
    const uint8_t *p;
    int rc;
    if (with_dict && (rc = in_vint(r, &dict_len)))
        return rc;
    if ((rc = in_vint(r, &block_len)))
        return rc;
    if (dict_len > n)
        return SM_ECORRUPT;
    if (with_dict) {
        if ((rc = in_vint(r, &clen)))
            return rc;
        if (clen) {
            if ((rc = in_bytes(r, clen, &p)) ||
                (rc = rfs_sf_zstd(&r->zstd, p, clen, dst, dict_len, NULL, 0)))
                return rc;
        } else if (dict_len) {
            return SM_ECORRUPT;
        }
        if ((rc = set_dict(r, dst, dict_len)))
            return rc;
    }
    size_t o = dict_len;
    if (o < n && block_len == 0)
        return SM_ECORRUPT;
    while (o < n) {
        size_t bl = n - o < block_len ? n - o : block_len;
        if ((rc = in_vint(r, &clen)) || (rc = in_bytes(r, clen, &p)))
            return rc;
        if ((rc = rfs_sf_zstd(&r->zstd, p, clen, dst + o, bl, r->dict, dict_len)))
            return rc;
        o += bl;
    }
    return SM_OK;
}

/* Skipping a piece without decompressing it (a chunk with no wanted doc).
 * Lengths are still checked against the file; the bytes are not. */
static int skip_lz4(struct rfs_sf_reader *r, size_t n)
{
    size_t want = n + n / 255 + 32, av;
    int rc = in_fill(r, want, &av);
    if (rc)
        return rc;
    long used = rfs_sf_lz4_skip(r->in + r->in_pos, av, n);
    if (used < 0)
        return SM_ECORRUPT;
    r->in_pos += (size_t)used;
    return SM_OK;
}

static int skip_piece(struct rfs_sf_reader *r, size_t n)
{
    uint32_t dict_len, block_len, clen;
    int rc;
    switch (r->codec->mode) {
    case MODE_LZ4:
        return skip_lz4(r, n);
    case MODE_DEFLATE:
        if ((rc = in_vint(r, &clen)))
            return rc;
        return clen == 0 && n != 0 ? SM_ECORRUPT : in_skip(r, clen);
    case MODE_LZ4_DICT: {
        if ((rc = in_vint(r, &dict_len)) || (rc = in_vint(r, &block_len)) ||
            (rc = in_vint(r, &clen)))
            return rc;
        if (dict_len > n || (n > dict_len && block_len == 0))
            return SM_ECORRUPT;
        uint64_t total = clen;
        size_t nblocks = n > dict_len ? (n - dict_len + block_len - 1) / block_len : 0;
        for (size_t i = 0; i < nblocks; i++) {
            if ((rc = in_vint(r, &clen)))
                return rc;
            total += clen;
        }
        return in_skip(r, total);
    }
    case MODE_DEFLATE_DICT: {
        if ((rc = in_vint(r, &dict_len)) || (rc = in_vint(r, &block_len)) ||
            (rc = in_vint(r, &clen)))
            return rc;
        if (dict_len > n || (n > dict_len && block_len == 0))
            return SM_ECORRUPT;
        if ((rc = in_skip(r, clen)))
            return rc;
        for (size_t o = dict_len; o < n; o += block_len)
            if ((rc = in_vint(r, &clen)) || (rc = in_skip(r, clen)))
                return rc;
        return SM_OK;
    }
    default:
        return SM_EUNSUPPORTED;   /* caller decodes instead */
    }
}

static int piece(struct rfs_sf_reader *r, uint8_t *dst, size_t n)
{
    switch (r->codec->mode) {
    case MODE_LZ4: return piece_lz4(r, dst, n);
    case MODE_DEFLATE: return piece_deflate(r, dst, n);
    case MODE_LZ4_DICT: return piece_lz4_dict(r, dst, n);
    case MODE_DEFLATE_DICT: return piece_deflate_dict(r, dst, n);
    case MODE_ZSTD: return piece_zstd(r, dst, n);
    case MODE_ZSTD_DICT: return piece_zstd_blocks(r, dst, n, true);
    case MODE_ZSTD_NODICT: return piece_zstd_blocks(r, dst, n, false);
    }
    return SM_EUNSUPPORTED;
}

/* ------------------------------------------------------------------ */
/* chunks                                                               */

static int rewind_to_start(struct rfs_sf_reader *r)
{
    r->in_off = r->data_start;
    r->in_pos = r->in_len = 0;
    r->next_doc = 0;
    r->chunk_docs = 0;
    r->chunk_base = 0;
    r->chunk_ok = false;
    r->pos_ok = true;
    return SM_OK;
}

/* Reads the chunk at the input position; decompresses it when it holds
 * target, else skips its data (compressed lengths known, or an LZ4 token
 * walk). */
static int load_chunk(struct rfs_sf_reader *r, int target, char *err, size_t errlen)
{
    uint32_t base, token;
    int rc;
    r->chunk_ok = false;
    r->chunk_base = r->next_doc;
    r->chunk_docs = 0;
    if ((rc = in_vint(r, &base)))
        return fail(r, err, errlen, rc == SM_EEOF ? SM_ECORRUPT : rc, "cannot read DocBase");
    if (base != (uint32_t)r->next_doc)
        return fail(r, err, errlen, SM_ECORRUPT, "DocBase %u, expected %d", base, r->next_doc);
    if ((rc = in_vint(r, &token)))
        return fail(r, err, errlen, SM_ECORRUPT, "cannot read chunk token");
    uint32_t ndocs;
    bool sliced;
    if (r->codec->fam == FAM_L90 || (r->codec->fam == FAM_L50 && r->version >= 4)) {
        /* Lucene 9, and Lucene87 v4 (8.9+): docs << 2 | dirty << 1 | sliced */
        ndocs = token >> 2;
        sliced = token & 1;
    } else if (r->codec->fam == FAM_L41) {
        ndocs = token;                    /* no slice bit: slicing is implicit, below */
        sliced = false;
    } else {
        ndocs = token >> 1;
        sliced = token & 1;
    }
    if (ndocs == 0 || ndocs > SF_MAX_CHUNK_DOCS || ndocs > (uint32_t)(r->max_doc - r->next_doc))
        return fail(r, err, errlen, SM_ECORRUPT, "chunk of %u documents (at most %d left)", ndocs,
                    r->max_doc - r->next_doc);
    if ((rc = grow_docs(r, ndocs)))
        return fail(r, err, errlen, rc, "out of memory");
    if ((rc = read_ints(r, ndocs, r->nf)))
        return fail(r, err, errlen, SM_ECORRUPT, "bad NumStoredFields ints");
    if ((rc = read_ints(r, ndocs, r->lens)))
        return fail(r, err, errlen, SM_ECORRUPT, "bad DocLengths ints");
    uint64_t total = 0;
    r->off[0] = 0;
    for (uint32_t i = 0; i < ndocs; i++) {
        if (r->nf[i] > r->lens[i])
            return fail(r, err, errlen, SM_ECORRUPT, "doc %u: %u stored fields in %u bytes",
                        r->next_doc + i, r->nf[i], r->lens[i]);
        total += r->lens[i];
        r->off[i + 1] = total;
    }
    if (total > SF_MAX_CHUNK_BYTES)
        return fail(r, err, errlen, SM_ECORRUPT, "chunk of %llu bytes exceeds the %u cap",
                    (unsigned long long)total, SF_MAX_CHUNK_BYTES);
    /* no compressor used here expands more than ~1032:1 (DEFLATE; LZ4 255:1):
     * reject impossible lengths before allocating for them */
    uint64_t left = r->data_end - (r->in_off + r->in_pos);
    if (total > left * 1100 + 4096)
        return fail(r, err, errlen, SM_ECORRUPT,
                    "chunk claims %llu bytes but only %llu compressed bytes remain",
                    (unsigned long long)total, (unsigned long long)left);
    /* Lucene 4.x (VERSION_BIG_CHUNKS+) slices whenever total >= 2 x ChunkSize */
    if (r->codec->fam == FAM_L41 && r->version >= 1 && total >= 2 * (uint64_t)r->chunk_size)
        sliced = true;
    if (sliced && r->chunk_size <= 0)
        return fail(r, err, errlen, SM_EUNSUPPORTED,
                    "sliced chunk but ChunkSize unknown (.fdm not given)");
    uint64_t step = sliced ? (uint64_t)r->chunk_size : (total ? total : 1);
    if (target >= r->next_doc + (int)ndocs) {
        bool skipped = true;
        for (uint64_t o = 0; o < total || o == 0; o += step) {
            size_t n = total - o < step ? (size_t)(total - o) : (size_t)step;
            rc = skip_piece(r, n);
            if (rc == SM_EUNSUPPORTED) {
                skipped = false;          /* no skipping for this mode: decode */
                break;
            }
            if (rc)
                return fail(r, err, errlen, rc == SM_EEOF ? SM_ECORRUPT : rc,
                            "cannot skip %llu bytes: %s", (unsigned long long)total,
                            sm_strerror(rc));
            if (n == 0)
                break;
        }
        if (skipped) {
            r->chunk_docs = (int)ndocs;
            r->next_doc += (int)ndocs;
            return SM_OK;
        }
    }
    if (total + RFS_SF_OUT_SLACK > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 65536;
        while (cap < total + RFS_SF_OUT_SLACK)
            cap *= 2;
        sm_free(r->out);
        r->out = sm_malloc(cap);
        if (!r->out) {
            r->out_cap = 0;
            return fail(r, err, errlen, SM_ENOMEM, "out of memory for %llu bytes",
                        (unsigned long long)total);
        }
        r->out_cap = cap;
    }
    if (sliced) {
        for (uint64_t o = 0; o < total || o == 0;) {
            size_t n = total - o < (uint64_t)r->chunk_size ? (size_t)(total - o)
                                                           : (size_t)r->chunk_size;
            if ((rc = piece(r, r->out + o, n)))
                return fail(r, err, errlen, rc == SM_EEOF ? SM_ECORRUPT : rc,
                            "cannot decompress slice at %llu of %llu bytes: %s",
                            (unsigned long long)o, (unsigned long long)total, sm_strerror(rc));
            o += n;
            if (n == 0)
                break;
        }
    } else if ((rc = piece(r, r->out, (size_t)total))) {
        return fail(r, err, errlen, rc == SM_EEOF ? SM_ECORRUPT : rc,
                    "cannot decompress %llu bytes: %s", (unsigned long long)total,
                    sm_strerror(rc));
    }
    r->out_len = (size_t)total;
    r->decoded += total;
    r->chunk_docs = (int)ndocs;
    r->next_doc += (int)ndocs;
    r->chunk_ok = true;
    return SM_OK;
}

static int seek_doc(struct rfs_sf_reader *r, int doc, char *err, size_t errlen)
{
    if (doc < 0 || doc >= r->max_doc)
        return sm_errf(err, errlen, SM_EINVAL, "%s: document %d out of range (maxDoc %d)",
                       r->name, doc, r->max_doc);
    if (r->chunk_ok && doc >= r->chunk_base && doc < r->chunk_base + r->chunk_docs)
        return SM_OK;
    /* backwards, or after a data error (position untrusted): from the start */
    if (!r->pos_ok || doc < r->next_doc)
        rewind_to_start(r);
    while (!(r->chunk_ok && doc < r->chunk_base + r->chunk_docs)) {
        int rc = load_chunk(r, doc, err, errlen);
        if (rc) {
            rewind_to_start(r);
            r->pos_ok = false;
            return rc;
        }
    }
    return SM_OK;
}

/* ------------------------------------------------------------------ */
/* serialized document                                                  */

static inline int rd_vlong(const uint8_t **pp, const uint8_t *end, int maxb, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (int i = 0; i < maxb; i++) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *v = x;
            return 0;
        }
    }
    return -1;
}

static inline uint64_t rd_fixed(const uint8_t *p, int n, bool le)
{
    uint64_t x = 0;
    if (le)
        for (int i = n - 1; i >= 0; i--)
            x = (x << 8) | p[i];
    else
        for (int i = 0; i < n; i++)
            x = (x << 8) | p[i];
    return x;
}

static double bits_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

int rfs_sf_parse_doc(const uint8_t *p, size_t len, int nfields, int numenc, rfs_sf_visit_fn fn,
                     void *arg, char *err, size_t errlen)
{
    const uint8_t *end = p + len;
    bool le = numenc == RFS_SF_NUM_Z_LE;
    for (int i = 0; i < nfields; i++) {
        uint64_t info, v;
        if (rd_vlong(&p, end, 9, &info))
            return sm_errf(err, errlen, SM_ECORRUPT, "field %d: bad field header", i);
        if ((info >> 3) > INT32_MAX)
            return sm_errf(err, errlen, SM_ECORRUPT, "field %d: bad field number", i);
        int number = (int)(info >> 3), type = (int)(info & 7);
        const uint8_t *bytes = NULL;
        size_t blen = 0;
        int64_t ival = 0;
        double dval = 0;
        switch (type) {
        case RFS_SF_STRING:
        case RFS_SF_BYTES:
            if (rd_vlong(&p, end, 5, &v) || v > (uint64_t)(end - p))
                return sm_errf(err, errlen, SM_ECORRUPT, "field %d (#%d): bad length", i, number);
            bytes = p;
            blen = (size_t)v;
            p += blen;
            break;
        case RFS_SF_INT:
            if (numenc == RFS_SF_NUM_FIXED_BE) {
                if (end - p < 4)
                    goto trunc;
                ival = (int32_t)(uint32_t)rd_fixed(p, 4, false);
                p += 4;
            } else {
                if (rd_vlong(&p, end, 5, &v) || v > UINT32_MAX)
                    goto trunc;
                ival = (int32_t)(((uint32_t)v >> 1) ^ -(uint32_t)(v & 1));
            }
            break;
        case RFS_SF_FLOAT:
            if (numenc == RFS_SF_NUM_FIXED_BE) {
                if (end - p < 4)
                    goto trunc;
                dval = bits_float((uint32_t)rd_fixed(p, 4, false));
                p += 4;
            } else {
                if (p >= end)
                    goto trunc;
                uint8_t b = *p++;
                if (b == 0xff) {
                    if (end - p < 4)
                        goto trunc;
                    dval = bits_float((uint32_t)rd_fixed(p, 4, le));
                    p += 4;
                } else if (b & 0x80) {
                    dval = (float)((int)(b & 0x7f) - 1);
                } else {
                    if (end - p < 3)
                        goto trunc;
                    uint32_t bits = (uint32_t)b << 24 | (uint32_t)rd_fixed(p, 2, le) << 8 | p[2];
                    dval = bits_float(bits);
                    p += 3;
                }
            }
            break;
        case RFS_SF_LONG:
            if (numenc == RFS_SF_NUM_FIXED_BE) {
                if (end - p < 8)
                    goto trunc;
                ival = (int64_t)rd_fixed(p, 8, false);
                p += 8;
            } else {
                if (p >= end)
                    goto trunc;
                uint8_t h = *p++;
                uint64_t bits = h & 0x1f;
                if (h & 0x20) {
                    if (rd_vlong(&p, end, 9, &v))
                        goto trunc;
                    bits |= v << 5;
                }
                uint64_t l = (bits >> 1) ^ -(bits & 1);
                switch (h & 0xc0) {      /* wraps like Java's long multiply */
                case 0x40: l *= 1000u; break;
                case 0x80: l *= 3600000u; break;
                case 0xc0: l *= 86400000u; break;
                default: break;
                }
                ival = (int64_t)l;
            }
            break;
        case RFS_SF_DOUBLE:
            if (numenc == RFS_SF_NUM_FIXED_BE) {
                if (end - p < 8)
                    goto trunc;
                dval = bits_double(rd_fixed(p, 8, false));
                p += 8;
            } else {
                if (p >= end)
                    goto trunc;
                uint8_t b = *p++;
                if (b == 0xff) {
                    if (end - p < 8)
                        goto trunc;
                    dval = bits_double(rd_fixed(p, 8, le));
                    p += 8;
                } else if (b == 0xfe) {
                    if (end - p < 4)
                        goto trunc;
                    dval = bits_float((uint32_t)rd_fixed(p, 4, le));
                    p += 4;
                } else if (b & 0x80) {
                    dval = (double)((int)(b & 0x7f) - 1);
                } else {
                    if (end - p < 7)
                        goto trunc;
                    uint64_t bits = (uint64_t)b << 56 | rd_fixed(p, 4, le) << 24 |
                                    rd_fixed(p + 4, 2, le) << 8 | p[6];
                    dval = bits_double(bits);
                    p += 7;
                }
            }
            break;
        default:
            return sm_errf(err, errlen, SM_ECORRUPT, "field %d (#%d): invalid type %d", i,
                           number, type);
        }
        if (fn) {
            int rc = fn(arg, number, type, bytes, blen, ival, dval);
            if (rc > 0)
                return SM_OK;
            if (rc < 0)
                return rc;
        }
        continue;
trunc:
        return sm_errf(err, errlen, SM_ECORRUPT, "field %d (#%d, type %d): truncated value", i,
                       number, type);
    }
    if (p != end)
        return sm_errf(err, errlen, SM_ECORRUPT, "%zu bytes left after %d fields",
                       (size_t)(end - p), nfields);
    return SM_OK;
}

/* ------------------------------------------------------------------ */
/* public API                                                           */

int rfs_sf_open(struct rfs_blob *fdt, struct rfs_blob *fdx, struct rfs_blob *fdm,
                const uint8_t *seg_id, const char *suffix, int max_doc,
                struct rfs_sf_reader **out, char *err, size_t errlen)
{
    (void)fdx;   /* sequential reading only; see docs/stored-fields.md */
    *out = NULL;
    if (!fdt || max_doc < 0)
        return sm_errf(err, errlen, SM_EINVAL, "stored fields: bad arguments");
    const char *name = fdt->name ? fdt->name : ".fdt";
    struct rfs_lu_in in;
    struct rfs_lu_header h;
    rfs_lu_in_init(&in, fdt, name);
    rfs_lu_read_header(&in, &h);
    if (in.err)
        return rfs_lu_in_err(&in, err, errlen);
    const struct sf_codec *c = NULL;
    for (size_t i = 0; i < sizeof(sf_codecs) / sizeof(sf_codecs[0]); i++)
        if (!strcmp(sf_codecs[i].name, h.codec))
            c = &sf_codecs[i];
    if (!c)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: unsupported stored-fields codec \"%s\"",
                       name, h.codec);
    if (h.version < c->minv || h.version > c->maxv)
        return sm_errf(err, errlen, SM_EUNSUPPORTED,
                       "%s: unsupported %s version %d (supported %d..%d)", name, c->name,
                       (int)h.version, c->minv, c->maxv);
    if (!c->supported)
        return sm_errf(err, errlen, SM_EUNSUPPORTED,
                       "%s: stored-fields format %s is recognised but untested on real bytes; "
                       "refusing to decode it", name, c->name);
    if (c->fam != FAM_L41) {
        rfs_lu_read_header_id(&in, &h);
        if (in.err)
            return rfs_lu_in_err(&in, err, errlen);
        if (seg_id && memcmp(seg_id, h.id, RFS_LU_ID_LEN))
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: segment id mismatch in header", name);
        if (suffix && strcmp(suffix, h.suffix))
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: header suffix \"%s\", expected \"%s\"",
                           name, h.suffix, suffix);
    }
    struct rfs_sf_reader *r = sm_calloc(1, sizeof(*r));
    if (!r)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", name);
    r->fdt = fdt;
    r->name = name;
    r->codec = c;
    r->version = h.version;
    r->max_doc = max_doc;
    r->chunk_size = -1;
    r->packed_version = 2;
    r->numenc = c->fam == FAM_L41 ? RFS_SF_NUM_FIXED_BE
              : c->fam == FAM_L50 ? RFS_SF_NUM_Z_BE : RFS_SF_NUM_Z_LE;
    int rc = SM_OK;
    bool has_footer = !(c->fam == FAM_L41 && h.version < 2);
    if (c->meta == NULL) {
        /* ChunkSize + PackedIntsVersion in the .fdt (Lucene41 v0: PackedIntsVersion only) */
        if (!(c->fam == FAM_L41 && h.version == 0))
            r->chunk_size = rfs_lu_vint(&in);
        r->packed_version = rfs_lu_vint(&in);
        if (in.err) {
            rc = rfs_lu_in_err(&in, err, errlen);
            goto fail;
        }
        if (r->packed_version < 0 || r->packed_version > 2 || r->chunk_size == 0) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: bad ChunkSize %d / PackedIntsVersion %d",
                         name, r->chunk_size, r->packed_version);
            goto fail;
        }
    } else if (fdm) {
        struct rfs_lu_in mi;
        rfs_lu_in_init(&mi, fdm, NULL);
        rfs_lu_check_index_header(&mi, c->meta, 0, 100, seg_id, suffix, NULL);
        r->chunk_size = rfs_lu_vint(&mi);
        if (mi.err) {
            rc = rfs_lu_in_err(&mi, err, errlen);
            goto fail;
        }
        if (r->chunk_size <= 0) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: bad ChunkSize %d", fdm->name,
                         r->chunk_size);
            goto fail;
        }
    }
    r->data_start = in.pos;
    uint64_t foot = has_footer ? RFS_LU_FOOTER_LEN : 0;
    if (fdt->size < r->data_start + foot) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: file too short (%llu bytes)", name,
                     (unsigned long long)fdt->size);
        goto fail;
    }
    r->data_end = fdt->size - foot;
    if (has_footer) {
        uint8_t f[RFS_LU_FOOTER_LEN];
        if ((rc = rfs_blob_read_at(fdt, r->data_end, f, sizeof(f)))) {
            rc = sm_errf(err, errlen, rc, "%s: cannot read footer: %s", name, sm_strerror(rc));
            goto fail;
        }
        uint32_t magic = (uint32_t)rd_fixed(f, 4, false), algo = (uint32_t)rd_fixed(f + 4, 4, false);
        if (magic != (uint32_t)RFS_LU_FOOTER_MAGIC || algo != 0 || rd_fixed(f + 8, 4, false)) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: bad codec footer", name);
            goto fail;
        }
    }
    r->in_cap = SF_IN_MIN;
    r->in = sm_malloc(r->in_cap);
    if (r->in && has_footer && r->data_start <= r->in_cap) {
        /* CRC of the header now; chunks are added as they stream through */
        if ((rc = rfs_blob_read_at(fdt, 0, r->in, (size_t)r->data_start))) {
            rc = sm_errf(err, errlen, rc, "%s: cannot read header: %s", name, sm_strerror(rc));
            goto fail;
        }
        r->crc = sm_crc32(0, r->in, r->data_start);
        r->crc_pos = r->data_start;
        r->crc_on = true;
    }
    if (!r->in) {
        rc = sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", name);
        goto fail;
    }
    rewind_to_start(r);
    *out = r;
    return SM_OK;
fail:
    rfs_sf_close(r);
    return rc;
}

int rfs_sf_document_raw(struct rfs_sf_reader *r, int doc, const uint8_t **bytes, size_t *len,
                        int *nfields, char *err, size_t errlen)
{
    int rc = seek_doc(r, doc, err, errlen);
    if (rc)
        return rc;
    int i = doc - r->chunk_base;
    *bytes = r->out + r->off[i];
    *len = (size_t)(r->off[i + 1] - r->off[i]);
    if (nfields)
        *nfields = (int)r->nf[i];
    return SM_OK;
}

int rfs_sf_document(struct rfs_sf_reader *r, int doc, rfs_sf_visit_fn fn, void *arg,
                    char *err, size_t errlen)
{
    const uint8_t *p;
    size_t len;
    int nf;
    int rc = rfs_sf_document_raw(r, doc, &p, &len, &nf, err, errlen);
    if (rc)
        return rc;
    char e[200];
    rc = rfs_sf_parse_doc(p, len, nf, r->numenc, fn, arg, e, sizeof(e));
    if (rc == SM_ECORRUPT)
        return sm_errf(err, errlen, rc, "%s: doc %d: %s", r->name, doc, e);
    return rc;
}

int rfs_sf_verify_checksum(struct rfs_sf_reader *r, char *err, size_t errlen)
{
    if (!r->crc_on)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: no checksum footer (Lucene 4.0-4.7)",
                       r->name);
    uint64_t end = r->fdt->size - 8;     /* the CRC covers all but its own 8 bytes */
    uint8_t buf[65536];
    while (r->crc_pos < end) {
        size_t n = end - r->crc_pos < sizeof(buf) ? (size_t)(end - r->crc_pos) : sizeof(buf);
        int rc = rfs_blob_read_at(r->fdt, r->crc_pos, buf, n);
        if (rc)
            return sm_errf(err, errlen, rc, "%s: read failed: %s", r->name, sm_strerror(rc));
        r->crc = sm_crc32(r->crc, buf, n);
        r->crc_pos += n;
    }
    uint8_t f[8];
    int rc = rfs_blob_read_at(r->fdt, end, f, 8);
    if (rc)
        return sm_errf(err, errlen, rc, "%s: read failed: %s", r->name, sm_strerror(rc));
    uint64_t stored = rd_fixed(f, 8, false);
    if (stored != r->crc)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: checksum failed (stored %08llx, computed %08x)",
                       r->name, (unsigned long long)stored, r->crc);
    return SM_OK;
}

bool rfs_sf_checksum_streamed(const struct rfs_sf_reader *r) { return r->crc_on; }
const char *rfs_sf_codec(const struct rfs_sf_reader *r) { return r->codec->name; }
int rfs_sf_version(const struct rfs_sf_reader *r) { return r->version; }
int rfs_sf_max_doc(const struct rfs_sf_reader *r) { return r->max_doc; }
uint64_t rfs_sf_bytes_decoded(const struct rfs_sf_reader *r) { return r->decoded; }

void rfs_sf_close(struct rfs_sf_reader *r)
{
    if (!r)
        return;
    if (r->z_inited)
        inflateEnd(&r->z);
    if (r->zstd)
        ZSTD_freeDCtx(r->zstd);
    sm_free(r->in);
    sm_free(r->out);
    sm_free(r->nf);
    sm_free(r->lens);
    sm_free(r->off);
    sm_free(r->dict);
    sm_free(r);
}
