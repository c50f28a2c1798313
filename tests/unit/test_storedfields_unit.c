/* Unit tests of the stored-fields and doc-values decoders on synthetic bytes:
 * LZ4 (Lucene flavour) round trips and malformed blocks, numeric field
 * encodings, a synthetic Lucene50 .fdt with sliced and empty chunks, every
 * single-byte corruption of synthetic and real .fdt files (clear error or a
 * correct document, never an out-of-bounds access: run under ASan), and
 * IndexedDISI/.dvm decoding. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zlib.h>

#include <sm/err.h>
#include <sm/mem.h>

#include "io/blob.h"
#include "lucene/docvalues.h"
#include "lucene/lucene_int.h"
#include "lucene/storedfields.h"
#include "lucene/storedfields_int.h"
#include "sm_test.h"

/* ------------------------------------------------------------------ */
/* a tiny writer                                                        */

struct wb {
    uint8_t *p;
    size_t n, cap;
};

static void wb_put(struct wb *w, const void *src, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        if (!w->p)
            abort();
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}
static void wb_byte(struct wb *w, uint8_t b) { wb_put(w, &b, 1); }
static void wb_vlong(struct wb *w, uint64_t v)
{
    while (v >= 0x80) {
        wb_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    wb_byte(w, (uint8_t)v);
}
static void wb_be(struct wb *w, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        wb_byte(w, (uint8_t)(v >> (8 * i)));
}
static void wb_str(struct wb *w, const char *s)
{
    wb_vlong(w, strlen(s));
    wb_put(w, s, strlen(s));
}
static const uint8_t SEG_ID[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static void wb_index_header(struct wb *w, const char *codec, int version, const char *suffix)
{
    wb_be(w, RFS_LU_CODEC_MAGIC, 4);
    wb_str(w, codec);
    wb_be(w, (uint32_t)version, 4);
    wb_put(w, SEG_ID, 16);
    wb_byte(w, (uint8_t)strlen(suffix));
    wb_put(w, suffix, strlen(suffix));
}
static void wb_footer(struct wb *w)
{
    wb_be(w, (uint32_t)RFS_LU_FOOTER_MAGIC, 4);
    wb_be(w, 0, 4);
    uint32_t crc = (uint32_t)crc32(0, w->p, (uInt)w->n);
    wb_be(w, crc, 8);
}

/* ------------------------------------------------------------------ */
/* LZ4                                                                  */

static void fill(uint8_t *p, size_t n, int pattern, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = pattern == 0 ? (uint8_t)(seed >> 16)
             : pattern == 1 ? (uint8_t)("abcabcabd"[i % 9])
                            : (uint8_t)("the quick brown fox "[(seed >> 20) % 20]);
    }
}

static int test_lz4_roundtrip(void)
{
    static const size_t sizes[] = { 0, 1, 5, 12, 13, 17, 100, 4096, 70000 };
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
        for (int pat = 0; pat < 3; pat++) {
            size_t n = sizes[si];
            uint8_t *src = malloc(n + 1), *out = malloc(n + RFS_SF_OUT_SLACK);
            int cap = LZ4_compressBound((int)n);
            char *c = malloc((size_t)cap);
            fill(src, n, pat, (unsigned)n);
            int clen = LZ4_compress_default((const char *)src, c, (int)n, cap);
            SM_CHECK(clen > 0);
            long used = rfs_sf_lz4_lucene((const uint8_t *)c, (size_t)clen, out, n);
            SM_CHECK_EQ_INT(used, clen);
            SM_CHECK(n == 0 || !memcmp(out, src, n));
            /* every truncation fails cleanly */
            for (int cut = 0; cut < clen; cut += (clen > 300 ? 37 : 1))
                SM_CHECK_EQ_INT(rfs_sf_lz4_lucene((const uint8_t *)c, (size_t)cut, out, n), -1);
            /* liblz4 path with exact compressed size */
            SM_CHECK_EQ_INT(rfs_sf_lz4_block((const uint8_t *)c, (size_t)clen, out, n, NULL, 0), 0);
            SM_CHECK(n == 0 || !memcmp(out, src, n));
            free(src);
            free(out);
            free(c);
        }
    return 0;
}

static int test_lz4_malformed(void)
{
    uint8_t out[64 + RFS_SF_OUT_SLACK];
    /* 1 literal 'a', then a match with offset 5 > 1 byte produced */
    static const uint8_t bad_off[] = { 0x14, 'a', 0x05, 0x00, 0x50, 'a', 'b', 'c', 'd', 'e' };
    SM_CHECK_EQ_INT(rfs_sf_lz4_lucene(bad_off, sizeof(bad_off), out, 15), -1);
    /* offset 0 */
    static const uint8_t zero_off[] = { 0x14, 'a', 0x00, 0x00 };
    SM_CHECK_EQ_INT(rfs_sf_lz4_lucene(zero_off, sizeof(zero_off), out, 10), -1);
    /* match longer than the output */
    static const uint8_t too_long[] = { 0x1f, 'a', 0x01, 0x00, 0x40 };
    SM_CHECK_EQ_INT(rfs_sf_lz4_lucene(too_long, sizeof(too_long), out, 20), -1);
    /* literal run longer than the output */
    static const uint8_t lit_long[] = { 0xf0, 0x10, 'x' };
    SM_CHECK_EQ_INT(rfs_sf_lz4_lucene(lit_long, sizeof(lit_long), out, 4), -1);
    /* overlapping match (offset 1) is valid: "a" x 9 */
    static const uint8_t rle[] = { 0x14, 'a', 0x01, 0x00, 0x40, 'a', 'a', 'a', 'a' };
    SM_CHECK_EQ_INT(rfs_sf_lz4_lucene(rle, sizeof(rle), out, 13), (long)sizeof(rle));
    SM_CHECK_MEM(out, "aaaaaaaaaaaaa", 13);
    /* Lucene's late match: a match ending exactly at n, no trailing literals */
    static const uint8_t late[] = { 0x50, 'a', 'b', 'c', 'd', 'e', 0x05, 0x00 };
    /* token 0x50: 5 literals, match length 0+4 at offset 5 -> 9 bytes */
    SM_CHECK_EQ_INT(rfs_sf_lz4_lucene(late, sizeof(late), out, 9), (long)sizeof(late));
    SM_CHECK_MEM(out, "abcdeabcd", 9);
    return 0;
}

/* ------------------------------------------------------------------ */
/* serialized documents                                                 */

struct got {
    int n;
    int field[16], type[16];
    int64_t iv[16];
    double dv[16];
    size_t len[16];
};

static int collect(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                   double dv)
{
    struct got *g = arg;
    (void)b;
    if (g->n >= 16)
        return SM_EFULL;
    g->field[g->n] = field;
    g->type[g->n] = type;
    g->iv[g->n] = iv;
    g->dv[g->n] = dv;
    g->len[g->n] = len;
    g->n++;
    return 0;
}

static int test_numeric_encodings(void)
{
    struct wb w = { 0 };
    wb_vlong(&w, 1 << 3 | RFS_SF_INT);  wb_vlong(&w, 5);                 /* ZInt -3 */
    wb_vlong(&w, 2 << 3 | RFS_SF_FLOAT); wb_byte(&w, 0x80 | 6);          /* small 5.0 */
    wb_vlong(&w, 3 << 3 | RFS_SF_LONG); wb_byte(&w, 0x40 | 4);           /* 2 s = 2000 */
    wb_vlong(&w, 4 << 3 | RFS_SF_DOUBLE); wb_byte(&w, 0xfe); wb_be(&w, 0x3fc00000, 4); /* 1.5f */
    wb_vlong(&w, 5 << 3 | RFS_SF_DOUBLE); wb_byte(&w, 0xff); wb_be(&w, 0xc00921fb54442d18ull, 8);
    wb_vlong(&w, 6 << 3 | RFS_SF_DOUBLE); wb_byte(&w, 0x80);             /* small -1 */
    wb_vlong(&w, 7 << 3 | RFS_SF_LONG); wb_byte(&w, 0xc0 | 0x20 | 16); wb_vlong(&w, 62); /* 1000 days */
    wb_vlong(&w, 8 << 3 | RFS_SF_FLOAT); wb_byte(&w, 0xff); wb_be(&w, 0xbfc00000, 4);   /* -1.5 */
    wb_vlong(&w, 9 << 3 | RFS_SF_FLOAT); wb_byte(&w, 0x41); wb_be(&w, 0x2000, 2); wb_byte(&w, 0x00); /* 10.0 */
    wb_vlong(&w, 10 << 3 | RFS_SF_STRING); wb_str(&w, "h\xc3\xa9");
    wb_vlong(&w, 300 << 3 | RFS_SF_BYTES); wb_vlong(&w, 0);
    struct got g = { 0 };
    char err[128];
    SM_CHECK_EQ_INT(rfs_sf_parse_doc(w.p, w.n, 11, RFS_SF_NUM_Z_BE, collect, &g, err, sizeof(err)), 0);
    SM_CHECK_EQ_INT(g.n, 11);
    SM_CHECK_EQ_INT(g.iv[0], -3);
    SM_CHECK(g.dv[1] == 5.0);
    SM_CHECK_EQ_INT(g.iv[2], 2000);
    SM_CHECK(g.dv[3] == 1.5);
    SM_CHECK(g.dv[4] == -3.141592653589793);
    SM_CHECK(g.dv[5] == -1.0);
    SM_CHECK_EQ_INT(g.iv[6], 1000LL * 86400000LL);
    SM_CHECK(g.dv[7] == -1.5);
    SM_CHECK(g.dv[8] == 10.0);
    SM_CHECK_EQ_INT(g.len[9], 3);
    SM_CHECK_EQ_INT(g.field[10], 300);
    /* Lucene 9: the uint16 of a positive ZFloat is LE: 10.0f = 41 20 00 00 -> 41 00 20 00 */
    static const uint8_t le[] = { 9 << 3 | RFS_SF_FLOAT, 0x41, 0x00, 0x20, 0x00 };
    memset(&g, 0, sizeof(g));
    SM_CHECK_EQ_INT(rfs_sf_parse_doc(le, sizeof(le), 1, RFS_SF_NUM_Z_LE, collect, &g, err, sizeof(err)), 0);
    SM_CHECK(g.dv[0] == 10.0);
    /* Lucene 4: fixed-width BE */
    static const uint8_t fixed[] = { 1 << 3 | RFS_SF_INT, 0xff, 0xff, 0xff, 0xfd,
                                     2 << 3 | RFS_SF_LONG, 0, 0, 0, 0, 0, 0, 0x07, 0xd0 };
    memset(&g, 0, sizeof(g));
    SM_CHECK_EQ_INT(rfs_sf_parse_doc(fixed, sizeof(fixed), 2, RFS_SF_NUM_FIXED_BE, collect, &g, err,
                                     sizeof(err)), 0);
    SM_CHECK_EQ_INT(g.iv[0], -3);
    SM_CHECK_EQ_INT(g.iv[1], 2000);
    /* every truncation of the BE document fails with SM_ECORRUPT */
    for (size_t cut = 0; cut < w.n; cut++) {
        memset(&g, 0, sizeof(g));
        SM_CHECK_EQ_INT(rfs_sf_parse_doc(w.p, cut, 11, RFS_SF_NUM_Z_BE, collect, &g, err,
                                         sizeof(err)), SM_ECORRUPT);
    }
    /* invalid type 6, trailing garbage, callback abort and early stop */
    static const uint8_t t6[] = { 1 << 3 | 6, 0 };
    SM_CHECK_EQ_INT(rfs_sf_parse_doc(t6, sizeof(t6), 1, RFS_SF_NUM_Z_BE, NULL, NULL, err, sizeof(err)),
                    SM_ECORRUPT);
    SM_CHECK(strstr(err, "invalid type 6") != NULL);
    SM_CHECK_EQ_INT(rfs_sf_parse_doc(w.p, w.n, 10, RFS_SF_NUM_Z_BE, NULL, NULL, err, sizeof(err)),
                    SM_ECORRUPT);
    free(w.p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* synthetic Lucene50StoredFieldsFastData v1 .fdt                      */

#define SYN_CHUNK 64

static void syn_doc(struct wb *d, int i, size_t *len, int *nf)
{
    size_t before = d->n;
    if (i == 2) {           /* a document without stored fields */
        *nf = 0;
        *len = 0;
        return;
    }
    char s[400];
    int n = i == 4 ? 300 : 10 + i;        /* doc 4 > 2 x ChunkSize: sliced */
    for (int k = 0; k < n; k++)
        s[k] = (char)('a' + (k * 7 + i) % 26);
    s[n] = 0;
    wb_vlong(d, 0 << 3 | RFS_SF_BYTES);
    wb_str(d, s);
    wb_vlong(d, 1 << 3 | RFS_SF_INT);
    wb_vlong(d, (uint64_t)i * 4);   /* ZInt: zigzag(2i) */
    *nf = 2;
    *len = d->n - before;
}

static void lz4_piece(struct wb *w, const uint8_t *p, size_t n)
{
    char c[1024];
    int clen = LZ4_compress_default((const char *)p, c, (int)n, (int)sizeof(c));
    if (clen <= 0)
        abort();
    wb_put(w, c, (size_t)clen);
}

/* Lucene50 High: VInt compressed length + raw DEFLATE */
static void deflate_piece(struct wb *w, const uint8_t *p, size_t n)
{
    uint8_t c[2048];
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    z.next_out = c;
    z.avail_out = sizeof(c);
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    wb_vlong(w, sizeof(c) - z.avail_out);
    wb_put(w, c, sizeof(c) - z.avail_out);
    deflateEnd(&z);
}

static int syn_high;   /* build_fdt: 0 = Lucene50 Fast (LZ4), 1 = High (DEFLATE) */

/* chunks: {0,1} {2} {3,4 (sliced)} {5} ; 6 docs */
static void build_fdt(struct wb *w)
{
    static const int chunks[][2] = { { 0, 2 }, { 2, 1 }, { 3, 2 }, { 5, 1 } };
    void (*put)(struct wb *, const uint8_t *, size_t) = syn_high ? deflate_piece : lz4_piece;
    wb_index_header(w, syn_high ? "Lucene50StoredFieldsHighData" : "Lucene50StoredFieldsFastData",
                    1, "");
    wb_vlong(w, SYN_CHUNK);
    wb_vlong(w, 2);
    for (int c = 0; c < 4; c++) {
        int base = chunks[c][0], n = chunks[c][1];
        struct wb d = { 0 };
        size_t lens[4];
        int nfs[4];
        for (int k = 0; k < n; k++)
            syn_doc(&d, base + k, &lens[k], &nfs[k]);
        bool sliced = d.n >= 2 * SYN_CHUNK;
        wb_vlong(w, (uint64_t)base);
        wb_vlong(w, (uint64_t)n << 1 | sliced);
        for (int pass = 0; pass < 2; pass++) {
            if (n == 1) {
                wb_vlong(w, pass ? lens[0] : (uint64_t)nfs[0]);
                continue;
            }
            /* bpv 16 packed MSB-first */
            wb_vlong(w, 16);
            for (int k = 0; k < n; k++)
                wb_be(w, pass ? lens[k] : (uint64_t)nfs[k], 2);
        }
        if (sliced) {
            for (size_t o = 0; o < d.n; o += SYN_CHUNK)
                put(w, d.p + o, d.n - o < SYN_CHUNK ? d.n - o : SYN_CHUNK);
        } else {
            put(w, d.p ? d.p : (const uint8_t *)"", d.n);
        }
        free(d.p);
    }
    wb_vlong(w, 4);
    wb_vlong(w, 0);
    wb_footer(w);
}

struct docsum {
    int nfields;
    size_t bytes;
    int64_t ival;
    uint8_t first;
};

static int sum_fn(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                  double dv)
{
    struct docsum *s = arg;
    (void)field, (void)dv;
    s->nfields++;
    s->bytes += len;
    if (type == RFS_SF_INT)
        s->ival = iv;
    if (type == RFS_SF_BYTES && len)
        s->first = b[0];
    return 0;
}

static int synthetic_fdt(void)
{
    struct wb w = { 0 };
    build_fdt(&w);
    struct rfs_blob *blob;
    SM_CHECK_EQ_INT(rfs_blob_open_mem(w.p, w.n, false, "syn.fdt", &blob), 0);
    struct rfs_sf_reader *r;
    char err[256];
    SM_CHECK_EQ_INT(rfs_sf_open(blob, NULL, NULL, SEG_ID, "", 6, &r, err, sizeof(err)), 0);
    SM_CHECK_EQ_STR(rfs_sf_codec(r), syn_high ? "Lucene50StoredFieldsHighData"
                                              : "Lucene50StoredFieldsFastData");
    int order[] = { 3, 5, 0, 1, 2, 3, 4, 5, 4, 0, 5, 2 };   /* skips, forwards, backwards */
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        int i = order[k];
        struct docsum s = { 0 };
        SM_CHECK_EQ_INT(rfs_sf_document(r, i, sum_fn, &s, err, sizeof(err)), 0);
        if (i == 2) {
            SM_CHECK_EQ_INT(s.nfields, 0);
            continue;
        }
        SM_CHECK_EQ_INT(s.nfields, 2);
        SM_CHECK_EQ_INT(s.bytes, i == 4 ? 300 : 10 + i);
        SM_CHECK_EQ_INT(s.ival, i * 2);
        SM_CHECK_EQ_INT(s.first, 'a' + i % 26);
    }
    SM_CHECK_EQ_INT(rfs_sf_document(r, 6, sum_fn, NULL, err, sizeof(err)), SM_EINVAL);
    SM_CHECK_EQ_INT(rfs_sf_document(r, -1, sum_fn, NULL, err, sizeof(err)), SM_EINVAL);
    rfs_sf_close(r);
    /* wrong segment id / maxDoc larger than the data */
    static const uint8_t other[16] = { 9 };
    SM_CHECK_EQ_INT(rfs_sf_open(blob, NULL, NULL, other, "", 6, &r, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "syn.fdt") != NULL);
    SM_CHECK_EQ_INT(rfs_sf_open(blob, NULL, NULL, SEG_ID, "", 7, &r, err, sizeof(err)), 0);
    SM_CHECK_EQ_INT(rfs_sf_document(r, 6, sum_fn, NULL, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "syn.fdt") != NULL);
    rfs_sf_close(r);
    rfs_blob_close(blob);
    free(w.p);
    return 0;
}

/* Decodes every doc of a (possibly damaged) .fdt; returns 0 or the first error. */
static int decode_all(const uint8_t *p, size_t n, const uint8_t *id, int max_doc,
                      const uint8_t *fdm, size_t fdm_len, char *err, size_t errlen)
{
    struct rfs_blob *blob, *mblob = NULL;
    if (rfs_blob_open_mem(p, n, false, "damaged.fdt", &blob))
        return sm_errf(err, errlen, SM_ENOMEM, "blob");
    if (fdm && rfs_blob_open_mem(fdm, fdm_len, false, "x.fdm", &mblob)) {
        rfs_blob_close(blob);
        return sm_errf(err, errlen, SM_ENOMEM, "blob");
    }
    struct rfs_sf_reader *r = NULL;
    int rc = rfs_sf_open(blob, NULL, mblob, id, "", max_doc, &r, err, errlen);
    for (int d = 0; !rc && d < max_doc; d++)
        rc = rfs_sf_document(r, d, sum_fn, &(struct docsum){ 0 }, err, errlen);
    rfs_sf_close(r);
    rfs_blob_close(mblob);
    rfs_blob_close(blob);
    return rc;
}

/* Flip each byte (x3 masks) and cut at each length: a clean error or success. */
static int damage(const uint8_t *orig, size_t n, const uint8_t *id, int max_doc,
                  const uint8_t *fdm, size_t fdm_len, int *errors)
{
    uint8_t *p = malloc(n);
    char err[512];
    static const uint8_t masks[] = { 0x01, 0x80, 0xff };
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < 3; m++) {
            memcpy(p, orig, n);
            p[i] ^= masks[m];
            err[0] = 0;
            int rc = decode_all(p, n, id, max_doc, fdm, fdm_len, err, sizeof(err));
            if (rc) {
                (*errors)++;
                if (!err[0] || rc > 0) {
                    fprintf(stderr, "byte %zu ^ %02x: rc %d without message\n", i, masks[m], rc);
                    free(p);
                    return 1;
                }
            }
        }
    for (size_t cut = 0; cut < n; cut++) {
        int rc = decode_all(orig, cut, id, max_doc, fdm, fdm_len, err, sizeof(err));
        if (rc == 0) {
            fprintf(stderr, "cut at %zu of %zu decoded without error\n", cut, n);
            free(p);
            return 1;
        }
    }
    free(p);
    return 0;
}

static int test_synthetic_fdt(void)
{
    syn_high = 0;
    int rc = synthetic_fdt();
    syn_high = 1;
    rc = rc || synthetic_fdt();
    syn_high = 0;
    return rc;
}

static int synthetic_damage(void)
{
    struct wb w = { 0 };
    build_fdt(&w);
    int errors = 0;
    SM_CHECK_EQ_INT(decode_all(w.p, w.n, SEG_ID, 6, NULL, 0, NULL, 0), 0);
    SM_CHECK_EQ_INT(damage(w.p, w.n, SEG_ID, 6, NULL, 0, &errors), 0);
    SM_CHECK(errors > (int)w.n);    /* most flips are detected (literal bytes may not be) */
    free(w.p);
    return 0;
}

static int test_synthetic_damage(void)
{
    syn_high = 0;
    int rc = synthetic_damage();
    syn_high = 1;
    rc = rc || synthetic_damage();
    syn_high = 0;
    return rc;
}

/* Real Lucene bytes: the stored fields of the Lucene fixture indices. */
static int real_damage(const char *zip, const char *seg, int max_doc, bool le)
{
    (void)le;
    const char *bin = getenv("SM_BINARY_DIR");
    char dir[4096], cmd[20000];
    snprintf(dir, sizeof(dir), "%s/formats-unit/%s", bin ? bin : ".", zip);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && unzip -qo '%s/%s.zip' -d '%s'",
             dir, dir, sm_src_path("tests/fixtures/lucene"), zip, dir);
    if (system(cmd) != 0)
        SM_SKIP("unzip of %s failed", zip);
    struct rfs_dir *d, *cfs;
    struct rfs_lu_segment s = { 0 };
    char err[512];
    SM_CHECK_EQ_INT(rfs_dir_open_fs(dir, &d, err, sizeof(err)), 0);
    struct rfs_blob *si;
    char name[64];
    snprintf(name, sizeof(name), "%s.si", seg);
    SM_CHECK_EQ_INT(rfs_dir_open(d, name, &si, err, sizeof(err)), 0);
    s.name = sm_strdup(seg);
    SM_CHECK_EQ_INT(rfs_lu_si_parse(si, name, &s, err, sizeof(err)), 0);
    rfs_blob_close(si);
    SM_CHECK_EQ_INT(s.max_doc, max_doc);
    SM_CHECK_EQ_INT(rfs_lu_cfs_open(d, &s, &cfs, err, sizeof(err)), 0);
    struct rfs_blob *fdt, *fdm = NULL;
    snprintf(name, sizeof(name), "%s.fdt", seg);
    SM_CHECK_EQ_INT(rfs_dir_open(cfs, name, &fdt, err, sizeof(err)), 0);
    snprintf(name, sizeof(name), "%s.fdm", seg);
    uint8_t *fdt_b, *fdm_b = NULL;
    size_t fdt_n, fdm_n = 0;
    if (rfs_dir_open(cfs, name, &fdm, err, sizeof(err)) == 0) {
        SM_CHECK_EQ_INT(rfs_blob_read_all(fdm, 1 << 20, &fdm_b, &fdm_n), 0);
        rfs_blob_close(fdm);
    }
    SM_CHECK_EQ_INT(rfs_blob_read_all(fdt, 1 << 20, &fdt_b, &fdt_n), 0);
    rfs_blob_close(fdt);
    int errors = 0;
    const uint8_t *id = s.has_id ? s.id : NULL;
    SM_CHECK_EQ_INT(decode_all(fdt_b, fdt_n, id, max_doc, fdm_b, fdm_n, err, sizeof(err)), 0);
    int rc = damage(fdt_b, fdt_n, id, max_doc, fdm_b, fdm_n, &errors);
    sm_free(fdt_b);
    sm_free(fdm_b);
    rfs_dir_close(cfs);
    rfs_dir_close(d);
    rfs_lu_segment_free(&s);
    SM_CHECK_EQ_INT(rc, 0);
    SM_CHECK(errors > 0);
    return 0;
}

static int test_damage_lucene50(void) { return real_damage("index.6.6.5-cfs", "_0", 10, false); }
static int test_damage_lucene87(void) { return real_damage("index.8.11.1-cfs", "_0", 10, false); }
static int test_damage_lucene90(void) { return real_damage("index.9.12.0-cfs", "_0", 10, true); }

static int test_unknown_codec(void)
{
    struct wb w = { 0 };
    wb_index_header(&w, "QatStoredFieldsData", 1, "");
    wb_footer(&w);
    struct rfs_blob *blob;
    SM_CHECK_EQ_INT(rfs_blob_open_mem(w.p, w.n, false, "q.fdt", &blob), 0);
    struct rfs_sf_reader *r;
    char err[256];
    SM_CHECK_EQ_INT(rfs_sf_open(blob, NULL, NULL, NULL, NULL, 1, &r, err, sizeof(err)),
                    SM_EUNSUPPORTED);
    SM_CHECK(strstr(err, "QatStoredFieldsData") && strstr(err, "q.fdt"));
    rfs_blob_close(blob);
    free(w.p);
    /* a recognised but untested format is refused, not guessed at */
    w = (struct wb){ 0 };
    wb_index_header(&w, "ZstdStoredFields814", 1, "");
    wb_footer(&w);
    SM_CHECK_EQ_INT(rfs_blob_open_mem(w.p, w.n, false, "z.fdt", &blob), 0);
    SM_CHECK_EQ_INT(rfs_sf_open(blob, NULL, NULL, NULL, NULL, 1, &r, err, sizeof(err)),
                    SM_EUNSUPPORTED);
    SM_CHECK(strstr(err, "untested") != NULL);
    rfs_blob_close(blob);
    free(w.p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* doc values                                                           */

/* Lucene80 .dvm with a BINARY field 1 (fixed length) then NUMERIC field 3. */
static void build_dv(struct wb *m, struct wb *d, int64_t dwf_off_override,
                     const uint16_t *docs, int ndocs, int type3)
{
    wb_index_header(m, "Lucene80DocValuesMetadata", 1, "Lucene80_0");
    wb_index_header(d, "Lucene80DocValuesData", 1, "Lucene80_0");
    /* field 1 BINARY: dataOff, dataLen, dwfOff, dwfLen, jte, drp, numDocs, min, max */
    wb_be(m, 1, 4); wb_byte(m, 1);
    wb_be(m, 0, 8); wb_be(m, 0, 8); wb_be(m, (uint64_t)-1, 8); wb_be(m, 0, 8);
    wb_be(m, 0xffff, 2); wb_byte(m, 0xff);
    wb_be(m, 0, 4); wb_be(m, 3, 4); wb_be(m, 3, 4);
    /* field 3 */
    int64_t off = (int64_t)d->n;
    for (int i = 0; i < ndocs; i++) {
        if (i == 0) {
            wb_be(d, 0, 2);
            wb_be(d, (uint64_t)(ndocs - 1), 2);
        }
        wb_be(d, docs[i], 2);
    }
    wb_be(d, 0x7fff, 2); wb_be(d, 0, 2); wb_be(d, 0xffff, 2);
    int64_t len = (int64_t)d->n - off;
    wb_be(m, 3, 4); wb_byte(m, (uint8_t)type3);
    wb_be(m, (uint64_t)(dwf_off_override != 0 ? dwf_off_override : off), 8);
    wb_be(m, (uint64_t)len, 8);
    wb_be(m, 0xffff, 2); wb_byte(m, 9);
    wb_be(m, (uint64_t)ndocs, 8);
    wb_be(m, (uint64_t)-1, 4);
    wb_byte(m, 0); wb_be(m, 1, 8); wb_be(m, 0, 8); wb_be(m, 0, 8); wb_be(m, 0, 8);
    wb_be(m, (uint64_t)-1, 8);
    wb_be(m, (uint64_t)-1, 4);
    wb_footer(m);
    wb_footer(d);
}

static int dv_run(int64_t dwf, const uint16_t *docs, int ndocs, int type3, int max_doc,
                  int field, struct rfs_dv_docset *s, char *err, size_t errlen)
{
    struct wb m = { 0 }, d = { 0 };
    build_dv(&m, &d, dwf, docs, ndocs, type3);
    struct rfs_blob *mb = NULL, *db = NULL;
    int rc = SM_ENOMEM;
    memset(s, 0, sizeof(*s));
    if (!rfs_blob_open_mem(m.p, m.n, false, "_0_Lucene80_0.dvm", &mb) &&
        !rfs_blob_open_mem(d.p, d.n, false, "_0_Lucene80_0.dvd", &db))
        rc = rfs_dv_numeric_docs(mb, db, SEG_ID, "Lucene80_0", field, max_doc, NULL, NULL, s,
                                 err, errlen);
    rfs_blob_close(mb);
    rfs_blob_close(db);
    free(m.p);
    free(d.p);
    return rc;
}

static int test_docvalues(void)
{
    static const uint16_t docs[] = { 1, 5, 63, 64, 99 };
    struct rfs_dv_docset s;
    char err[256];
    SM_CHECK_EQ_INT(dv_run(0, docs, 5, 0, 100, 3, &s, err, sizeof(err)), 0);
    SM_CHECK_EQ_INT(s.count, 5);
    for (int i = 0; i < 100; i++)
        SM_CHECK_EQ_INT(rfs_dv_docset_has(&s, i), i == 1 || i == 5 || i == 63 || i == 64 || i == 99);
    SM_CHECK(!rfs_dv_docset_has(&s, 100) && !rfs_dv_docset_has(&s, -1));
    rfs_dv_docset_free(&s);
    /* -1: every doc; -2: none */
    SM_CHECK_EQ_INT(dv_run(-1, docs, 5, 0, 70, 3, &s, err, sizeof(err)), 0);
    SM_CHECK_EQ_INT(s.count, 70);
    SM_CHECK(rfs_dv_docset_has(&s, 69));
    rfs_dv_docset_free(&s);
    SM_CHECK_EQ_INT(dv_run(-2, docs, 5, 0, 70, 3, &s, err, sizeof(err)), 0);
    SM_CHECK_EQ_INT(s.count, 0);
    rfs_dv_docset_free(&s);
    /* errors: doc past maxDoc, unordered docs, absent field, wrong type */
    SM_CHECK_EQ_INT(dv_run(0, docs, 5, 0, 99, 3, &s, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "_0_Lucene80_0.dvd") != NULL);
    static const uint16_t unordered[] = { 5, 1 };
    SM_CHECK_EQ_INT(dv_run(0, unordered, 2, 0, 100, 3, &s, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK_EQ_INT(dv_run(0, docs, 5, 0, 100, 4, &s, err, sizeof(err)), SM_ENOTFOUND);
    SM_CHECK_EQ_INT(dv_run(0, docs, 5, 4, 100, 3, &s, err, sizeof(err)), SM_EPROTO);
    SM_CHECK_EQ_INT(dv_run(1000000, docs, 5, 0, 100, 3, &s, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(s.words == NULL);
    return 0;
}

/* Every allocation failing in turn: a clean error or success, no crash or
 * leak (ASan/LSan build). */
static int test_alloc_failures(void)
{
    struct wb w = { 0 };
    build_fdt(&w);
    int ok = 0, failed = 0;
    for (long n = 0; n < 40; n++) {
        char err[256] = "";
        sm_mem_fail_after(n);
        int rc = decode_all(w.p, w.n, SEG_ID, 6, NULL, 0, err, sizeof(err));
        sm_mem_fail_after(-1);
        if (rc == 0)
            ok++;
        else {
            SM_CHECK(err[0] != 0);
            failed++;
        }
    }
    SM_CHECK(ok > 0 && failed > 0);
    free(w.p);
    static const uint16_t docs[] = { 1, 5 };
    for (long n = 0; n < 10; n++) {
        struct rfs_dv_docset s;
        char err[256] = "";
        sm_mem_fail_after(n);
        int rc = dv_run(0, docs, 2, 0, 10, 3, &s, err, sizeof(err));
        sm_mem_fail_after(-1);
        if (rc == 0)
            rfs_dv_docset_free(&s);
    }
    return 0;
}

/* Lucene90StoredFieldsFastData: a 300-doc chunk whose DocLengths use the
 * StoredFieldsInts block layout (2 x 128 values as LE longs + 44 single
 * LE uint16), LZ4 with an (empty) preset dictionary, 2 blocks. */
static void le(struct wb *w, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        wb_byte(w, (uint8_t)(v >> (8 * i)));
}

static int test_lucene90_ints(void)
{
    enum { N = 300 };
    struct wb w = { 0 }, m = { 0 }, d = { 0 };
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        size_t before = d.n;
        char s[700];
        int n = 250 + (i * 37) % 400;          /* > 255: 16-bit lengths */
        for (int k = 0; k < n; k++)
            s[k] = (char)('a' + (k + i) % 26);
        s[n] = 0;
        wb_vlong(&d, 0 << 3 | RFS_SF_BYTES);
        wb_str(&d, s);
        lens[i] = d.n - before;
    }
    wb_index_header(&m, "Lucene90FieldsIndexMeta", 1, "");
    wb_vlong(&m, 1 << 20);                     /* ChunkSize */
    wb_footer(&m);
    wb_index_header(&w, "Lucene90StoredFieldsFastData", 1, "");
    wb_vlong(&w, 0);                           /* DocBase */
    wb_vlong(&w, (uint64_t)N << 2 | 2);        /* docs, dirty, not sliced */
    wb_byte(&w, 0);                            /* NumStoredFields: all equal */
    wb_vlong(&w, 1);
    wb_byte(&w, 16);                           /* DocLengths: bpv 16 */
    for (int blk = 0; blk < 2; blk++)
        for (int word = 0; word < 32; word++) {
            uint64_t l = 0;
            for (int j = 0; j < 4; j++)
                l |= (uint64_t)lens[blk * 128 + j * 32 + word] << (48 - 16 * j);
            le(&w, l, 8);
        }
    for (int i = 256; i < N; i++)
        le(&w, lens[i], 2);
    /* LZ4 with preset dictionary: DictLength 0, BlockLength, dict, 2 blocks */
    size_t bl = (d.n + 1) / 2;
    char c1[65536], c2[65536];
    int n1 = LZ4_compress_default((const char *)d.p, c1, (int)bl, (int)sizeof(c1));
    int n2 = LZ4_compress_default((const char *)d.p + bl, c2, (int)(d.n - bl), (int)sizeof(c2));
    wb_vlong(&w, 0);
    wb_vlong(&w, bl);
    wb_vlong(&w, 1);
    wb_vlong(&w, (uint64_t)n1);
    wb_vlong(&w, (uint64_t)n2);
    wb_byte(&w, 0);                            /* LZ4 of the empty dictionary */
    wb_put(&w, c1, (size_t)n1);
    wb_put(&w, c2, (size_t)n2);
    wb_footer(&w);
    struct rfs_blob *fb, *mb;
    struct rfs_sf_reader *r;
    char err[256];
    SM_CHECK_EQ_INT(rfs_blob_open_mem(w.p, w.n, false, "l9.fdt", &fb), 0);
    SM_CHECK_EQ_INT(rfs_blob_open_mem(m.p, m.n, false, "l9.fdm", &mb), 0);
    SM_CHECK_EQ_INT(rfs_sf_open(fb, NULL, mb, SEG_ID, "", N, &r, err, sizeof(err)), 0);
    for (int i = 0; i < N; i++) {
        const uint8_t *p;
        size_t len;
        int nf;
        SM_CHECK_EQ_INT(rfs_sf_document_raw(r, i, &p, &len, &nf, err, sizeof(err)), 0);
        SM_CHECK_EQ_INT(len, lens[i]);
        SM_CHECK_EQ_INT(nf, 1);
        struct docsum sum = { 0 };
        SM_CHECK_EQ_INT(rfs_sf_document(r, i, sum_fn, &sum, err, sizeof(err)), 0);
        SM_CHECK_EQ_INT(sum.first, 'a' + i % 26);
    }
    SM_CHECK_EQ_INT(rfs_sf_verify_checksum(r, err, sizeof(err)), 0);
    rfs_sf_close(r);
    rfs_blob_close(mb);
    rfs_blob_close(fb);
    free(w.p);
    free(m.p);
    free(d.p);
    return 0;
}

/* The streamed CRC: OK after a sequential pass, after random access, and
 * without any reading; a flipped literal byte that decodes fine is caught. */
static int test_checksum(void)
{
    struct wb w = { 0 };
    build_fdt(&w);
    char err[256];
    for (int mode = 0; mode < 4; mode++) {
        uint8_t *p = malloc(w.n);
        memcpy(p, w.p, w.n);
        if (mode == 3) {
            /* a byte of doc 0's literal run ("ahov..."): still decodes */
            size_t k = 0;
            while (k + 4 < w.n && memcmp(p + k, "ahov", 4))
                k++;
            SM_CHECK(k < w.n);
            p[k + 1] ^= 0x20;
        }
        struct rfs_blob *blob;
        struct rfs_sf_reader *r;
        SM_CHECK_EQ_INT(rfs_blob_open_mem(p, w.n, false, "c.fdt", &blob), 0);
        SM_CHECK_EQ_INT(rfs_sf_open(blob, NULL, NULL, SEG_ID, "", 6, &r, err, sizeof(err)), 0);
        if (mode == 0 || mode == 3)
            for (int d = 0; d < 6; d++)
                SM_CHECK_EQ_INT(rfs_sf_document(r, d, sum_fn, &(struct docsum){ 0 }, err,
                                                sizeof(err)), 0);
        if (mode == 1) {
            SM_CHECK_EQ_INT(rfs_sf_document(r, 5, sum_fn, &(struct docsum){ 0 }, err, sizeof(err)), 0);
            SM_CHECK_EQ_INT(rfs_sf_document(r, 1, sum_fn, &(struct docsum){ 0 }, err, sizeof(err)), 0);
        }
        int rc = rfs_sf_verify_checksum(r, err, sizeof(err));
        if (mode == 3) {
            SM_CHECK_EQ_INT(rc, SM_ECORRUPT);
            SM_CHECK(strstr(err, "c.fdt: checksum failed") != NULL);
        } else {
            SM_CHECK_EQ_INT(rc, 0);
        }
        rfs_sf_close(r);
        rfs_blob_close(blob);
        free(p);
    }
    free(w.p);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_lucene90_ints), SM_TC(test_checksum), SM_TC(test_alloc_failures), SM_TC(test_lz4_roundtrip), SM_TC(test_lz4_malformed), SM_TC(test_numeric_encodings),
             SM_TC(test_synthetic_fdt), SM_TC(test_synthetic_damage), SM_TC(test_damage_lucene50),
             SM_TC(test_damage_lucene87), SM_TC(test_damage_lucene90), SM_TC(test_unknown_codec),
             SM_TC(test_docvalues))
