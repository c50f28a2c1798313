/* ES document layer: Uid decoding, content-type sniffing, and whole shards
 * from the ES 2.4.5 / 5.6.16 / 6.8 snapshot fixtures. The shard's `__xxx`
 * blobs are renamed back to Lucene file names from their own index headers
 * (segment id + codec + suffix), so this test does not depend on the
 * repository reader. */
#include "sm_test.h"

#include "io/blob.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <stdbool.h>

static int check_id(const uint8_t *b, size_t n, const char *want)
{
    char out[256];
    size_t len = 0;
    SM_CHECK_EQ_INT(rfs_es_decode_id(b, n, out, sizeof(out), &len), SM_OK);
    SM_CHECK_EQ_STR(out, want);
    SM_CHECK_EQ_INT(len, strlen(want));
    return 0;
}

static int test_decode_id(void)
{
    /* examples from the fixtures (docs/snapshot-format.md 9.3) */
    static const uint8_t a[] = { 0x00, 0x4d, 0x3e, 0x66, 0x8e, 0x01, 0xed, 0x3f, 0x91, 0x4b, 0xf0, 0xb9, 0x88, 0x6e, 0x5e };
    static const uint8_t b[] = { 0x76, 0x43, 0xbc, 0x66, 0x8e, 0x01, 0xe4, 0xfe, 0xeb, 0x46, 0x25, 0x1e, 0xb8, 0x54, 0x42 };
    static const uint8_t c[] = { 0xff, 'c', 'o', 'm', 'p', 'l', 'e', 'x', 'd', 'o', 'c' };
    static const uint8_t d[] = { 0xba, 0x77, 0x21, 0x6a, 0x78, 0x1e, 0x75, 0xda, 0x1c };
    static const uint8_t num_odd[] = { 0xfe, 0x12, 0x3f };
    static const uint8_t num_even[] = { 0xfe, 0x12, 0x34 };
    static const uint8_t zero[] = { 0xfe, 0x0f };
    static const uint8_t esc[] = { 0xfd, 0xfe, 0x01 };
    if (check_id(a, sizeof(a), "AE0-Zo4B7T-RS_C5iG5e") || check_id(b, sizeof(b), "dkO8Zo4B5P7rRiUeuFRC") ||
        check_id(c, sizeof(c), "complexdoc") || check_id(d, sizeof(d), "unchangeddoc") ||
        check_id(num_odd, sizeof(num_odd), "123") || check_id(num_even, sizeof(num_even), "1234") ||
        check_id(zero, sizeof(zero), "0") || check_id(esc, sizeof(esc), "_gE"))
        return 1;
    char out[64];
    size_t len;
    static const uint8_t bad1[] = { 0xfe, 0x1f, 0x23 };   /* terminator not last */
    static const uint8_t bad2[] = { 0xfe, 0xa1 };         /* nibble > 9 */
    static const uint8_t bad3[] = { 0xff };               /* empty utf-8 id */
    SM_CHECK_EQ_INT(rfs_es_decode_id(bad1, sizeof(bad1), out, sizeof(out), &len), SM_ECORRUPT);
    SM_CHECK_EQ_INT(rfs_es_decode_id(bad2, sizeof(bad2), out, sizeof(out), &len), SM_ECORRUPT);
    SM_CHECK_EQ_INT(rfs_es_decode_id(bad3, sizeof(bad3), out, sizeof(out), &len), SM_ECORRUPT);
    SM_CHECK_EQ_INT(rfs_es_decode_id(a, 0, out, sizeof(out), &len), SM_ECORRUPT);
    SM_CHECK_EQ_INT(rfs_es_decode_id(a, sizeof(a), out, 8, &len), SM_EFULL);
    return 0;
}

static int test_content_type(void)
{
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)" \n{\"a\":1}", 9), RFS_ES_CT_JSON);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)":)\n\x03", 4), RFS_ES_CT_SMILE);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)"\xa1\x61" "a\x01", 4), RFS_ES_CT_CBOR);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)"\xbf\xff", 2), RFS_ES_CT_CBOR);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)"---\na: 1\n", 9), RFS_ES_CT_YAML);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)"ZV\x00\x01", 4), RFS_ES_CT_LZF);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)"", 0), RFS_ES_CT_UNKNOWN);
    SM_CHECK_EQ_INT(rfs_es_content_type((const uint8_t *)"[1]", 3), RFS_ES_CT_UNKNOWN);
    SM_CHECK_EQ_STR(rfs_es_content_type_name(RFS_ES_CT_SMILE), "smile");
    return 0;
}

/* A Lucene document built by hand, to test the ES field rules alone. */
static int test_from_lucene(void)
{
    struct rfs_lucene_field f[4];
    struct rfs_lucene_doc d = { .seg = 0, .seg_name = "_0", .doc = 3, .fields = f };
    struct rfs_esdoc ed;
    char idbuf[256], err[256];
    memset(f, 0, sizeof(f));
    /* ES 5.x: _source + _uid */
    f[0] = (struct rfs_lucene_field){ 0, "_source", RFS_LUCENE_BINARY, (const uint8_t *)"{}", 2, 0, 0 };
    f[1] = (struct rfs_lucene_field){ 2, "_uid", RFS_LUCENE_STRING, (const uint8_t *)"type2#a#b", 9, 0, 0 };
    f[2] = (struct rfs_lucene_field){ 3, "_routing", RFS_LUCENE_STRING, (const uint8_t *)"r1", 2, 0, 0 };
    d.n_fields = 3;
    SM_CHECK_EQ_INT(rfs_esdoc_from_lucene(&d, &ed, idbuf, sizeof(idbuf), err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(ed.id, "a#b");
    SM_CHECK_EQ_STR(ed.type, "type2");
    SM_CHECK(ed.routing_len == 2 && !memcmp(ed.routing, "r1", 2));
    SM_CHECK(ed.source_len == 2 && ed.content_type == RFS_ES_CT_JSON && !ed.recovery_source);
    /* nested child: no id */
    d.n_fields = 0;
    SM_CHECK_EQ_INT(rfs_esdoc_from_lucene(&d, &ed, idbuf, sizeof(idbuf), err, sizeof(err)), SM_ENOTFOUND);
    /* ES 6+: binary _id, _recovery_source fallback */
    static const uint8_t id[] = { 0xfe, 0x42 };
    f[0] = (struct rfs_lucene_field){ 0, "_id", RFS_LUCENE_BINARY, id, 2, 0, 0 };
    f[1] = (struct rfs_lucene_field){ 5, "_recovery_source", RFS_LUCENE_BINARY, (const uint8_t *)":)\n", 3, 0, 0 };
    d.n_fields = 2;
    SM_CHECK_EQ_INT(rfs_esdoc_from_lucene(&d, &ed, idbuf, sizeof(idbuf), err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(ed.id, "42");
    SM_CHECK(ed.type == NULL && ed.routing == NULL && ed.recovery_source);
    SM_CHECK_EQ_INT(ed.content_type, RFS_ES_CT_SMILE);
    /* id but no source at all */
    d.n_fields = 1;
    SM_CHECK_EQ_INT(rfs_esdoc_from_lucene(&d, &ed, idbuf, sizeof(idbuf), err, sizeof(err)), SM_OK);
    SM_CHECK(ed.source == NULL);
    /* malformed _uid */
    f[0] = (struct rfs_lucene_field){ 2, "_uid", RFS_LUCENE_STRING, (const uint8_t *)"nohash", 6, 0, 0 };
    SM_CHECK_EQ_INT(rfs_esdoc_from_lucene(&d, &ed, idbuf, sizeof(idbuf), err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(strstr(err, "_uid") != NULL);
    return 0;
}

/* ---- a directory of snapshot blobs renamed from their index headers ---- */

struct named { char *name; char *path; };
struct blobdir { char *root; struct named *v; size_t n; };

static int bd_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    struct blobdir *bd = dir->ctx;
    (void)prefix;
    for (size_t i = 0; i < bd->n; i++)
        if (sm_strlist_push(names, bd->v[i].name))
            return SM_ENOMEM;
    return SM_OK;
}

static int bd_open(struct rfs_dir *dir, const char *path, struct rfs_blob **out, char *err, size_t errlen)
{
    struct blobdir *bd = dir->ctx;
    for (size_t i = 0; i < bd->n; i++)
        if (!strcmp(bd->v[i].name, path))
            return rfs_blob_open_file(bd->v[i].path, path, out, err, errlen);
    return sm_errf(err, errlen, SM_ENOTFOUND, "%s: not in the shard", path);
}

static void bd_close(struct rfs_dir *dir)
{
    struct blobdir *bd = dir->ctx;
    for (size_t i = 0; i < bd->n; i++) {
        free(bd->v[i].name);
        free(bd->v[i].path);
    }
    free(bd->v);
    free(bd->root);
    free(bd);
}

static const struct rfs_dir_ops bd_ops = { "test-blobs", bd_list, bd_open, bd_close };

static void bd_add(struct blobdir *bd, const char *name, const char *path)
{
    bd->v = realloc(bd->v, (bd->n + 1) * sizeof(*bd->v));
    bd->v[bd->n].name = strdup(name);
    bd->v[bd->n].path = strdup(path);
    bd->n++;
}

static const char *codec_ext(const char *codec)
{
    static const struct { const char *tail, *ext; } m[] = {
        { "SegmentInfo", ".si" }, { "CompoundEntries", ".cfe" }, { "CompoundData", ".cfs" },
        { "FieldInfos", ".fnm" }, { "LiveDocs", ".liv" }, { "DocValuesMetadata", ".dvm" },
        { "DocValuesData", ".dvd" }, { "StoredFieldsFastData", ".fdt" },
        { "StoredFieldsHighData", ".fdt" }, { "StoredFieldsFastIndex", ".fdx" },
        { "StoredFieldsHighIndex", ".fdx" }, { "FieldsIndexMeta", ".fdm" },
        { "FieldsIndexIdx", ".fdx" },
    };
    size_t cl = strlen(codec);
    for (size_t i = 0; i < SM_ARRAY_LEN(m); i++) {
        size_t tl = strlen(m[i].tail);
        if (cl >= tl && !strcmp(codec + cl - tl, m[i].tail))
            return m[i].ext;
    }
    return NULL;
}

static int read_header(const char *path, struct rfs_lu_header *h, struct rfs_blob **keep)
{
    char err[256];
    struct rfs_blob *b = NULL;
    if (rfs_blob_open_file(path, path, &b, err, sizeof(err)))
        return -1;
    struct rfs_lu_in *in = malloc(sizeof(*in));
    rfs_lu_in_init(in, b, path);
    rfs_lu_read_header(in, h);
    rfs_lu_read_header_id(in, h);   /* Lucene 5+ index header */
    int rc = in->err;
    free(in);
    if (keep && !rc)
        *keep = b;
    else
        rfs_blob_close(b);
    return rc;
}

/* Builds the Lucene directory of a snapshot shard folder of __ blobs. */
static struct rfs_dir *blobdir_open(const char *root)
{
    struct sm_strlist files = { 0 };
    struct rfs_dir *fs = NULL;
    char err[256];
    if (rfs_dir_open_fs(root, &fs, err, sizeof(err)) || rfs_dir_list(fs, "", &files))
        return NULL;
    rfs_dir_close(fs);
    struct blobdir *bd = calloc(1, sizeof(*bd));
    bd->root = strdup(root);
    char path[4096];
    /* 1: the segments_N with the largest generation */
    int64_t best = -1;
    char best_path[4096] = "";
    for (size_t i = 0; i < files.n; i++) {
        struct rfs_lu_header h;
        snprintf(path, sizeof(path), "%s/%s", root, files.v[i]);
        if (strncmp(files.v[i], "__", 2) || read_header(path, &h, NULL) || strcmp(h.codec, "segments"))
            continue;
        int64_t g = 0;
        for (const char *p = h.suffix; *p; p++)
            g = g * 36 + (*p <= '9' ? *p - '0' : *p - 'a' + 10);
        if (g > best) {
            best = g;
            snprintf(best_path, sizeof(best_path), "%s", path);
        }
    }
    struct rfs_lu_commit *c = NULL;
    if (best >= 0) {
        struct rfs_blob *b = NULL;
        char name[64], g36[16];
        snprintf(name, sizeof(name), "segments_%s", rfs_lu_base36((uint64_t)best, g36, sizeof(g36)));
        bd_add(bd, name, best_path);
        rfs_blob_open_file(best_path, name, &b, err, sizeof(err));
        if (rfs_lu_segments_parse(b, name, best, &c, err, sizeof(err)))
            fprintf(stderr, "%s\n", err);
        rfs_blob_close(b);
    }
    /* 2: every file whose id is a segment's id */
    for (size_t i = 0; c && i < files.n; i++) {
        struct rfs_lu_header h;
        snprintf(path, sizeof(path), "%s/%s", root, files.v[i]);
        if (strncmp(files.v[i], "__", 2) || read_header(path, &h, NULL) || !strcmp(h.codec, "segments"))
            continue;
        const char *ext = codec_ext(h.codec);
        if (!ext)
            continue;
        for (size_t s = 0; s < c->n_seg; s++) {
            if (memcmp(c->seg[s].id, h.id, 16))
                continue;
            char name[512];
            bool gen_named = !strcmp(ext, ".dvm") || !strcmp(ext, ".dvd") || !strcmp(ext, ".fnm") ||
                             !strcmp(ext, ".liv");
            if (h.suffix[0] && gen_named)
                snprintf(name, sizeof(name), "%s_%s%s", c->seg[s].name, h.suffix, ext);
            else
                snprintf(name, sizeof(name), "%s%s", c->seg[s].name, ext);
            bd_add(bd, name, path);
        }
    }
    rfs_lu_commit_free(c);
    sm_strlist_free(&files);
    struct rfs_dir *dir = calloc(1, sizeof(*dir));
    dir->ops = &bd_ops;
    dir->ctx = bd;
    dir->desc = sm_strdup(root);
    return dir;
}

struct expect_doc { const char *id, *type, *routing; size_t source_len; };

/* exp: exact document set; or numeric_ids > 0: ids "0".."numeric_ids-1" of
 * type numeric_type, each once. */
static int run_shard_ex(const char *rel, const struct expect_doc *exp, size_t nexp, int lucene_major,
                        int numeric_ids, const char *numeric_type)
{
    char err[512] = "";
    struct rfs_dir *dir = blobdir_open(sm_src_path(rel));
    struct rfs_lucene_index *idx = NULL;
    struct rfs_es_iter *it = NULL;
    SM_CHECK(dir != NULL);
    int rc = rfs_lucene_open(dir, NULL, &idx, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s: %s\n", rel, err);
    SM_CHECK_EQ_INT(rc, SM_OK);
    struct rfs_lucene_segment_info si;
    SM_CHECK_EQ_INT(rfs_lucene_segment(idx, 0, &si), SM_OK);
    SM_CHECK_EQ_INT(si.version.major, lucene_major);
    SM_CHECK_EQ_INT(rfs_es_iter_open(idx, 0, 0, &it, err, sizeof(err)), SM_OK);
    size_t n = 0;
    bool *seen = calloc(nexp + (size_t)numeric_ids + 1, 1);
    for (;;) {
        const struct rfs_esdoc *d;
        rc = rfs_es_iter_next(it, &d, err, sizeof(err));
        if (rc)
            fprintf(stderr, "%s: %s\n", rel, err);
        SM_CHECK_EQ_INT(rc, SM_OK);
        if (!d)
            break;
        n++;
        SM_CHECK_EQ_INT(d->content_type, RFS_ES_CT_JSON);
        if (getenv("RFS_LUCENE_DUMP"))
            printf("%s id=%s type=%s routing=%.*s source=%zu\n", rel, d->id, d->type ? d->type : "-",
                   (int)d->routing_len, d->routing ? d->routing : "", d->source_len);
        if (numeric_ids > 0) {
            char *end = NULL;
            long v = strtol(d->id, &end, 10);
            SM_CHECK(end && !*end && v >= 0 && v < numeric_ids && !seen[v]);
            seen[v] = true;
            SM_CHECK(d->type && !strcmp(d->type, numeric_type));
            continue;
        }
        if (!exp)
            continue;
        size_t k = 0;
        for (; k < nexp; k++)
            if (!strcmp(exp[k].id, d->id))
                break;
        if (k == nexp)
            fprintf(stderr, "%s: unexpected id %s\n", rel, d->id);
        SM_CHECK(k < nexp && !seen[k]);
        seen[k] = true;
        if (exp[k].type)
            SM_CHECK(d->type && !strcmp(d->type, exp[k].type));
        else
            SM_CHECK(d->type == NULL);
        if (exp[k].routing)
            SM_CHECK(d->routing && d->routing_len == strlen(exp[k].routing) &&
                     !memcmp(d->routing, exp[k].routing, d->routing_len));
        else
            SM_CHECK(d->routing == NULL);
        if (exp[k].source_len)
            SM_CHECK_EQ_INT(d->source_len, exp[k].source_len);
    }
    free(seen);
    if (exp)
        SM_CHECK_EQ_INT(n, nexp);
    if (numeric_ids > 0)
        SM_CHECK_EQ_INT(n, numeric_ids);
    rfs_es_iter_close(it);
    rfs_lucene_close(idx);
    rfs_dir_close(dir);
    return 0;
}

static int run_shard(const char *rel, const struct expect_doc *exp, size_t nexp, int lucene_major)
{
    return run_shard_ex(rel, exp, nexp, lucene_major, 0, NULL);
}

/* ES 5.6.16 (Lucene 6.6.1): multi-type index; the updated document comes out
 * once in its new version, the deleted one not at all. */
static int test_es56_shard(void)
{
    static const struct expect_doc exp[] = {
        { "complexdoc", "type1", NULL, 56 },
        { "updateddoc", "type2", NULL, 22 },
        { "unchangeddoc", "type2", NULL, 119 },
    };
    return run_shard("tests/fixtures/snapshots/ES_5_6_Updates_Deletes/indices/-KQKQKwfQ8-nhYQ8JfijxQ/0", exp, SM_ARRAY_LEN(exp), 6);
}

/* ES 6.8 (Lucene 7.7.3, segments format 9, Lucene70SegmentInfo): binary
 * _id, custom routing. */
static int test_es68_shards(void)
{
    static const struct expect_doc a[] = {
        { "AU0_Zo4B7T-RS_C5JW5A", NULL, "user123", 126 },
        { "Ak0_Zo4B7T-RS_C58m7a", NULL, "user123", 103 },
        { "A01AZo4B7T-RS_C5Am6z", NULL, "user123", 93 },
    };
    static const struct expect_doc b[] = {
        { "AE0-Zo4B7T-RS_C5iG5e", NULL, NULL, 124 },
    };
    return run_shard("tests/fixtures/snapshots/ES_6_8_Single/indices/d3oMxx4IROOWpmPdoY9f_Q/0", a, SM_ARRAY_LEN(a), 7) ||
           run_shard("tests/fixtures/snapshots/ES_6_8_Single/indices/nkLPabE1RNC2nvGEnmRO2Q/0", b, SM_ARRAY_LEN(b), 7);
}

/* ES 2.4.5 (Lucene 5.5): 2003 documents "0".."2002" of type "doc" in
 * compound and non-compound segments. */
static int test_es245_shard(void)
{
    return run_shard_ex("tests/fixtures/snapshots/ES_2_4_5/indices/index-2.4.5/0", NULL, 0, 5, 2003, "doc");
}

SM_TEST_MAIN(SM_TC(test_decode_id), SM_TC(test_content_type), SM_TC(test_from_lucene),
             SM_TC(test_es56_shard), SM_TC(test_es68_shards), SM_TC(test_es245_shard))
