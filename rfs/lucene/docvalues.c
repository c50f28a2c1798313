/* Doc values (.dvm/.dvd): docs-with-field of one NUMERIC field, for soft
 * deletes (snapshot-format.md 8.3-8.5). */
#include "lucene/docvalues.h"

#include <string.h>

#include <sm/err.h>
#include <sm/mem.h>

#include "lucene/lucene_int.h"

enum dv_fmt { DV70, DV80, DV90 };

struct dv_codec {
    const char *meta, *data;
    enum dv_fmt fmt;
    int minv, maxv;
};

static const struct dv_codec dv_codecs[] = {
    { "Lucene70DocValuesMetadata", "Lucene70DocValuesData", DV70, 0, 1 },
    { "Lucene80DocValuesMetadata", "Lucene80DocValuesData", DV80, 0, 2 },
    { "Lucene90DocValuesMetadata", "Lucene90DocValuesData", DV90, 0, 0 },
};

#define DV_NUMERIC 0
#define DV_BINARY 1
#define DV_SORTED 2
#define DV_SORTED_SET 3
#define DV_SORTED_NUMERIC 4

struct dv_ctx {
    struct rfs_lu_in *in;
    const struct dv_codec *c;
    int version;
    rfs_dv_field_flags_fn flags_fn;
    void *flags_arg;
};

static void skip_dm(struct rfs_lu_in *in, int64_t n, int shift)
{
    if (shift < 0 || shift > 62) {
        rfs_lu_fail(in, SM_ECORRUPT, "bad DirectMonotonic block shift %d", shift);
        return;
    }
    int64_t blocks = n <= 0 ? 0 : ((n - 1) >> shift) + 1;
    if (blocks > (int64_t)rfs_lu_remaining(in) / 21) {
        rfs_lu_fail(in, SM_ECORRUPT, "DirectMonotonic meta of %lld blocks", (long long)blocks);
        return;
    }
    rfs_lu_skip(in, (uint64_t)blocks * 21);
}

/* Numeric entry: returns dwf offset/length (and numValues). */
static void read_numeric(struct dv_ctx *x, int64_t *dwf_off, int64_t *dwf_len, int16_t *jte,
                         int8_t *drp, int64_t *num_values)
{
    struct rfs_lu_in *in = x->in;
    *dwf_off = rfs_lu_i64(in);
    *dwf_len = rfs_lu_i64(in);
    *jte = -1;
    *drp = -1;
    if (x->c->fmt != DV70) {
        *jte = rfs_lu_i16(in);
        *drp = (int8_t)rfs_lu_byte(in);
    }
    *num_values = rfs_lu_i64(in);
    int32_t table = rfs_lu_i32(in);
    if (table > 256 || table < -1) {
        rfs_lu_fail(in, SM_ECORRUPT, "numeric table size %d", table);
        return;
    }
    if (table > 0)
        rfs_lu_skip(in, (uint64_t)table * 8);
    rfs_lu_byte(in);                 /* bpv */
    rfs_lu_i64(in);                  /* min */
    rfs_lu_i64(in);                  /* gcd */
    rfs_lu_i64(in);                  /* values offset */
    rfs_lu_i64(in);                  /* values length */
    if (x->c->fmt != DV70)
        rfs_lu_i64(in);              /* value jump table offset */
}

static void skip_numeric(struct dv_ctx *x, int64_t *num_values)
{
    int64_t a, b;
    int16_t j;
    int8_t d;
    read_numeric(x, &a, &b, &j, &d, num_values);
}

static void skip_termdict(struct dv_ctx *x)
{
    struct rfs_lu_in *in = x->in;
    int64_t size = rfs_lu_vlong(in);
    if (x->c->fmt == DV90) {
        int32_t dm_shift = rfs_lu_i32(in);
        skip_dm(in, (size + 63) / 64, dm_shift);
        rfs_lu_i32(in);                      /* maxTermLength */
        rfs_lu_i32(in);                      /* maxBlockLength */
        rfs_lu_skip(in, 32);
        int32_t index_shift = rfs_lu_i32(in);
        if (index_shift < 0 || index_shift > 62) {
            rfs_lu_fail(in, SM_ECORRUPT, "bad term index shift %d", index_shift);
            return;
        }
        skip_dm(in, 1 + ((size + (1ll << index_shift) - 1) >> index_shift), dm_shift);
        rfs_lu_skip(in, 32);
        return;
    }
    int32_t code = rfs_lu_i32(in);
    bool lz4 = false;
    int32_t block_shift = code;
    if (x->c->fmt == DV80 && x->version >= 2 && code == 0x00060001) {
        lz4 = true;
        block_shift = 6;
    }
    int32_t dm_shift = rfs_lu_i32(in);
    if (block_shift < 0 || block_shift > 62) {
        rfs_lu_fail(in, SM_ECORRUPT, "bad terms block shift %d", block_shift);
        return;
    }
    skip_dm(in, (size + (1ll << block_shift) - 1) >> block_shift, dm_shift);
    rfs_lu_i32(in);                          /* maxTermLength */
    if (lz4)
        rfs_lu_i32(in);                      /* maxBlockLength */
    rfs_lu_skip(in, 32);
    int32_t index_shift = rfs_lu_i32(in);
    if (index_shift < 0 || index_shift > 62) {
        rfs_lu_fail(in, SM_ECORRUPT, "bad term index shift %d", index_shift);
        return;
    }
    skip_dm(in, 1 + ((size + (1ll << index_shift) - 1) >> index_shift), dm_shift);
    rfs_lu_skip(in, 32);
}

static void skip_sorted_numeric(struct dv_ctx *x)
{
    struct rfs_lu_in *in = x->in;
    int64_t num_values;
    skip_numeric(x, &num_values);
    int32_t ndocs = rfs_lu_i32(in);
    if (ndocs != num_values) {
        rfs_lu_i64(in);
        int32_t shift = rfs_lu_vint(in);
        skip_dm(in, (int64_t)ndocs + 1, shift);
        rfs_lu_i64(in);
    }
}

static void skip_entry(struct dv_ctx *x, int field, int type)
{
    struct rfs_lu_in *in = x->in;
    int64_t nv;
    switch (type) {
    case DV_NUMERIC:
        skip_numeric(x, &nv);
        break;
    case DV_BINARY: {
        unsigned fl = x->flags_fn ? x->flags_fn(x->flags_arg, field) : 0;
        bool compressed = x->c->fmt == DV80 &&
                          (x->version == 1 ||
                           (x->version >= 2 && (fl & RFS_DV_F_BINARY_COMPRESSED)));
        rfs_lu_skip(in, 32);                 /* data off/len, dwf off/len */
        if (x->c->fmt != DV70)
            rfs_lu_skip(in, 3);
        int32_t ndocs = rfs_lu_i32(in);
        int32_t minl = rfs_lu_i32(in), maxl = rfs_lu_i32(in);
        if ((compressed && ndocs > 0) || minl < maxl) {
            rfs_lu_i64(in);
            int32_t nchunks = ndocs + 1;
            if (compressed) {
                nchunks = rfs_lu_vint(in);
                rfs_lu_vint(in);
                rfs_lu_vint(in);
            }
            int32_t shift = rfs_lu_vint(in);
            skip_dm(in, nchunks, shift);
            rfs_lu_i64(in);
        }
        break;
    }
    case DV_SORTED:
        if (x->c->fmt == DV90) {
            skip_numeric(x, &nv);
        } else {
            rfs_lu_skip(in, 16);
            if (x->c->fmt == DV80)
                rfs_lu_skip(in, 3);
            rfs_lu_i32(in);
            rfs_lu_byte(in);
            rfs_lu_skip(in, 16);
        }
        skip_termdict(x);
        break;
    case DV_SORTED_SET: {
        uint8_t multi = rfs_lu_byte(in);
        if (multi == 0) {
            skip_entry(x, field, DV_SORTED);
            return;
        }
        if (multi != 1) {
            rfs_lu_fail(in, SM_ECORRUPT, "bad SORTED_SET multiValued byte %u", multi);
            return;
        }
        if (x->c->fmt == DV90) {
            skip_sorted_numeric(x);
        } else {
            rfs_lu_skip(in, 16);
            if (x->c->fmt == DV80)
                rfs_lu_skip(in, 3);
            rfs_lu_byte(in);
            rfs_lu_skip(in, 16);
            int32_t ndocs = rfs_lu_i32(in);
            rfs_lu_i64(in);
            int32_t shift = rfs_lu_vint(in);
            skip_dm(in, (int64_t)ndocs + 1, shift);
            rfs_lu_i64(in);
        }
        skip_termdict(x);
        break;
    }
    case DV_SORTED_NUMERIC:
        skip_sorted_numeric(x);
        break;
    default:
        rfs_lu_fail(in, SM_ECORRUPT, "field %d: unknown doc-values type %d", field, type);
    }
}

/* IndexedDISI over [off, off+len) of the data file. */
static int read_disi(struct rfs_lu_in *in, enum dv_fmt fmt, int8_t drp, int64_t off,
                     int64_t len, struct rfs_dv_docset *s)
{
    if (off < 0 || len < 0 || (uint64_t)off > in->len || (uint64_t)len > in->len - (uint64_t)off)
        return rfs_lu_fail(in, SM_ECORRUPT, "docs-with-field range %lld+%lld outside the file",
                           (long long)off, (long long)len);
    rfs_lu_seek(in, (uint64_t)off);
    uint64_t end = (uint64_t)off + (uint64_t)len;
    int prev_block = -1;
    while (!in->err) {
        if (in->pos + 4 > end)
            return rfs_lu_fail(in, SM_ECORRUPT, "IndexedDISI runs past its %lld bytes",
                               (long long)len);
        int block = (uint16_t)rfs_lu_i16(in);
        uint32_t card = (uint32_t)(uint16_t)rfs_lu_i16(in) + 1;
        if (block == 0x7fff && card == 1) {
            rfs_lu_i16(in);
            break;
        }
        if (block <= prev_block)
            return rfs_lu_fail(in, SM_ECORRUPT, "IndexedDISI block %d after %d", block,
                               prev_block);
        prev_block = block;
        int64_t base = (int64_t)block << 16;
        if (card <= 4095) {
            int prev = -1;
            for (uint32_t i = 0; i < card && !in->err; i++) {
                int lo = (uint16_t)rfs_lu_i16(in);
                int64_t doc = base + lo;
                if (lo <= prev || doc >= s->max_doc)
                    return rfs_lu_fail(in, SM_ECORRUPT, "IndexedDISI doc %lld out of order or "
                                       "range (maxDoc %d)", (long long)doc, s->max_doc);
                prev = lo;
                s->words[doc >> 6] |= 1ull << (doc & 63);
            }
            s->count += (int)card;
        } else if (card == 65536) {
            if (base + 65536 > s->max_doc)
                return rfs_lu_fail(in, SM_ECORRUPT, "IndexedDISI ALL block past maxDoc");
            for (int64_t w = base >> 6; w < (base + 65536) >> 6; w++)
                s->words[w] = ~0ull;
            s->count += 65536;
        } else {
            if (fmt != DV70 && drp != -1) {
                if (drp < 7 || drp > 15)
                    return rfs_lu_fail(in, SM_ECORRUPT, "bad denseRankPower %d", drp);
                rfs_lu_skip(in, (uint64_t)(1024 >> (drp - 7)));   /* rank: one short per 2^drp docs */
            }
            uint32_t n = 0;
            for (int w = 0; w < 1024 && !in->err; w++) {
                uint64_t bits = (uint64_t)rfs_lu_i64(in);
                if (!bits)
                    continue;
                int64_t wi = (base >> 6) + w;
                if ((wi << 6) + 64 - __builtin_clzll(bits) > s->max_doc)
                    return rfs_lu_fail(in, SM_ECORRUPT, "IndexedDISI DENSE doc past maxDoc %d",
                                       s->max_doc);
                s->words[wi] |= bits;
                n += (uint32_t)__builtin_popcountll(bits);
            }
            if (!in->err && n != card)
                return rfs_lu_fail(in, SM_ECORRUPT, "IndexedDISI DENSE block has %u docs, "
                                   "header says %u", n, card);
            s->count += (int)card;
        }
    }
    return in->err;
}

int rfs_dv_numeric_docs(struct rfs_blob *dvm, struct rfs_blob *dvd, const uint8_t *seg_id,
                        const char *suffix, int field_number, int max_doc,
                        rfs_dv_field_flags_fn flags_fn, void *flags_arg,
                        struct rfs_dv_docset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!dvm || !dvd || max_doc < 0)
        return sm_errf(err, errlen, SM_EINVAL, "doc values: bad arguments");
    struct rfs_lu_in in;
    struct rfs_lu_header h;
    rfs_lu_in_init(&in, dvm, NULL);
    rfs_lu_read_header(&in, &h);
    if (in.err)
        return rfs_lu_in_err(&in, err, errlen);
    const struct dv_codec *c = NULL;
    for (size_t i = 0; i < sizeof(dv_codecs) / sizeof(dv_codecs[0]); i++)
        if (!strcmp(dv_codecs[i].meta, h.codec))
            c = &dv_codecs[i];
    if (!c)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: unsupported doc-values codec \"%s\"",
                       in.name, h.codec);
    if (h.version < c->minv || h.version > c->maxv)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "%s: unsupported %s version %d", in.name,
                       h.codec, (int)h.version);
    rfs_lu_read_header_id(&in, &h);
    if (in.err)
        return rfs_lu_in_err(&in, err, errlen);
    if (seg_id && memcmp(seg_id, h.id, RFS_LU_ID_LEN))
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: segment id mismatch in header", in.name);
    if (suffix && strcmp(suffix, h.suffix))
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: header suffix \"%s\", expected \"%s\"",
                       in.name, h.suffix, suffix);
    in.le = c->fmt == DV90;
    struct dv_ctx x = { &in, c, h.version, flags_fn, flags_arg };
    int64_t dwf_off = 0, dwf_len = 0, nv = 0;
    int16_t jte = -1;
    int8_t drp = -1;
    bool found = false;
    for (;;) {
        int32_t field = rfs_lu_i32(&in);
        if (in.err)
            break;
        if (field == -1) {
            /* a correct walk of every entry ends exactly at the footer */
            if (in.pos + RFS_LU_FOOTER_LEN != in.len)
                rfs_lu_fail(&in, SM_ECORRUPT, "field entries end %llu bytes before the footer",
                            (unsigned long long)(in.len - RFS_LU_FOOTER_LEN - in.pos));
            break;
        }
        int type = rfs_lu_byte(&in);
        if (c->fmt == DV90 && flags_fn && (flags_fn(flags_arg, field) & RFS_DV_F_SKIP_INDEX))
            rfs_lu_skip(&in, 8 + 8 + 8 + 8 + 4 + 4);
        if (field == field_number) {
            if (type != DV_NUMERIC)
                return sm_errf(err, errlen, SM_EPROTO, "%s: field %d has doc-values type %d, "
                               "not NUMERIC", in.name, field, type);
            read_numeric(&x, &dwf_off, &dwf_len, &jte, &drp, &nv);
            found = !in.err;
            break;
        }
        skip_entry(&x, field, type);
    }
    if (in.err)
        return rfs_lu_in_err(&in, err, errlen);
    if (!found)
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: no doc values for field %d", in.name,
                       field_number);

    out->max_doc = max_doc;
    out->words = sm_calloc((size_t)max_doc / 64 + 1, sizeof(uint64_t));
    if (!out->words)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", in.name);
    int rc = SM_OK;
    if (dwf_off == -2) {
        /* no document has a value */
    } else if (dwf_off == -1) {
        for (int d = 0; d < max_doc; d++)
            out->words[d >> 6] |= 1ull << (d & 63);
        out->count = max_doc;
    } else {
        struct rfs_lu_in din;
        struct rfs_lu_header dh;
        rfs_lu_in_init(&din, dvd, NULL);
        rfs_lu_check_index_header(&din, c->data, h.version, h.version, seg_id, suffix, NULL);
        (void)dh;
        din.le = in.le;
        if (!din.err)
            read_disi(&din, c->fmt, drp, dwf_off, dwf_len, out);
        rc = rfs_lu_in_err(&din, err, errlen);
        if (!rc && nv >= 0 && nv != out->count)
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: %d docs with a value, meta says %lld",
                         din.name, out->count, (long long)nv);
    }
    if (rc)
        rfs_dv_docset_free(out);
    return rc;
}

void rfs_dv_docset_free(struct rfs_dv_docset *s)
{
    if (!s)
        return;
    sm_free(s->words);
    memset(s, 0, sizeof(*s));
}
