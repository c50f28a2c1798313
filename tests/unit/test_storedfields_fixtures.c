/* Stored fields of Lucene's own backward-compatibility indices (4.10.4 to
 * 10.3.2, tests/fixtures/lucene/ zips): every document of every segment
 * decodes, and the values match the recipe of those indices
 * (/work/shared/fixtures/README.md): 36 documents, ids "0".."35", the utf8
 * test string, "here is more content with aaa aaa aaa", a non-ASCII field
 * name's value "field with non-ascii name".
 * Usage: test_storedfields_fixtures [case] | --dump DIR */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sm_test.h"
#include <openssl/evp.h>

#include <sm/mem.h>

#include "lucene/docvalues.h"
#include "test_storedfields_util.h"

static const char UTF8[] = "Lu\xf0\x9d\x84\x9e" "ce\xf0\x9d\x85\xa0ne \x00 \xe2\x98\xa0 ab\xf1\x95\xb0\x97" "cd";
#define UTF8_LEN (sizeof(UTF8) - 1)

struct fx {
    bool dump;
    int docs;
    int with_utf8, with_content, with_nonascii;
    unsigned char ids[64];      /* ids[k] = times "k" was seen as a 1-2 digit string */
    int ndigit_strings;
    /* per-document state */
    bool d_utf8, d_content, d_nonascii;
    int strings_seen;
};

static int atoi_safe(const char *s)
{
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (*s - '0')) > 1000000)
            return -1;
    return *s ? -1 : (int)v;
}

static int visit(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                 double dv)
{
    struct fx *f = arg;
    if (f->dump) {
        printf("  f%d t%d ", field, type);
        if (type <= 1)
            printf("len %zu \"%.*s\"\n", len, (int)(len > 60 ? 60 : len), (const char *)b);
        else
            printf("i %lld d %g\n", (long long)iv, dv);
    }
    if (type == RFS_SF_STRING) {
        if (len == UTF8_LEN && !memcmp(b, UTF8, len))
            f->d_utf8 = true;
        if (len == 37 && !memcmp(b, "here is more content with aaa aaa aaa", 37))
            f->d_content = true;
        if (len == 25 && !memcmp(b, "field with non-ascii name", 25))
            f->d_nonascii = true;
    }
    return 0;
}

/* The id is the only all-digits STRING field of 1-2 chars in these docs. */
static int visit_id(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                    double dv)
{
    struct fx *f = arg;
    (void)field, (void)iv, (void)dv;
    if (type == RFS_SF_STRING && len >= 1 && len <= 2 && b[0] >= '0' && b[0] <= '9' &&
        (len == 1 || (b[1] >= '0' && b[1] <= '9'))) {
        int k = len == 1 ? b[0] - '0' : (b[0] - '0') * 10 + (b[1] - '0');
        if (k < 64)
            f->ids[k]++;
        f->ndigit_strings++;
    }
    return 0;
}

static int seg_fn(void *arg, const struct rfs_lu_segment *seg, struct rfs_dir *dir,
                  struct rfs_dir *cfs)
{
    struct fx *f = arg;
    struct rfs_blob *fdt, *fdm;
    struct rfs_sf_reader *r;
    char err[512];
    int rc = sf_open_reader(seg, dir, cfs, &fdt, &fdm, &r, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: %s\n", seg->name, err);
        return rc;
    }
    if (f->dump)
        printf("segment %s maxDoc %d codec %s v%d\n", seg->name, seg->max_doc, rfs_sf_codec(r),
               rfs_sf_version(r));
    for (int d = 0; d < seg->max_doc && !rc; d++) {
        if (f->dump)
            printf(" doc %d\n", d);
        f->d_utf8 = f->d_content = f->d_nonascii = false;
        rc = rfs_sf_document(r, d, visit, f, err, sizeof(err));
        if (!rc)
            rc = rfs_sf_document(r, d, visit_id, f, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "%s doc %d: %s\n", seg->name, d, err);
            break;
        }
        f->docs++;
        f->with_utf8 += f->d_utf8;
        f->with_content += f->d_content;
        f->with_nonascii += f->d_nonascii;
    }
    rfs_sf_close(r);
    rfs_blob_close(fdm);
    rfs_blob_close(fdt);
    return rc;
}

static const char *unzip_fixture(const char *name)
{
    static char dir[4096];
    const char *bin = getenv("SM_BINARY_DIR");
    snprintf(dir, sizeof(dir), "%s/formats-fixtures/%s", bin ? bin : ".", name);
    char cmd[20000];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && unzip -qo '%s/%s.zip' -d '%s'",
             dir, dir, sm_src_path("tests/fixtures/lucene"), name, dir);
    if (system(cmd) != 0)
        return NULL;
    return dir;
}

static int check_fixture(const char *name, const char *want_codec)
{
    const char *dir = unzip_fixture(name);
    if (!dir)
        SM_SKIP("unzip failed for %s", name);
    struct fx f = { 0 };
    char err[512];
    int rc = sf_each_segment(dir, seg_fn, &f, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s: %s (%s)\n", name, err, sm_strerror(rc));
    SM_CHECK_EQ_INT(rc, 0);
    /* 35 recipe docs + 1 "noprox" doc */
    SM_CHECK_EQ_INT(f.docs, 36);
    SM_CHECK_EQ_INT(f.with_utf8, 35);
    SM_CHECK_EQ_INT(f.with_content, 35);
    SM_CHECK_EQ_INT(f.with_nonascii, 35);
    for (int k = 0; k < 35; k++)
        if (f.ids[k] < 1) {
            fprintf(stderr, "%s: id %d missing\n", name, k);
            return 1;
        }
    (void)want_codec;
    return 0;
}

/* The codec of the first segment, to prove which format each case covers. */
struct codec_probe { char codec[64]; int version; };
static int probe_fn(void *arg, const struct rfs_lu_segment *seg, struct rfs_dir *dir,
                    struct rfs_dir *cfs)
{
    struct codec_probe *p = arg;
    struct rfs_blob *fdt, *fdm;
    struct rfs_sf_reader *r;
    char err[256];
    int rc = sf_open_reader(seg, dir, cfs, &fdt, &fdm, &r, err, sizeof(err));
    if (rc)
        return rc;
    snprintf(p->codec, sizeof(p->codec), "%s", rfs_sf_codec(r));
    p->version = rfs_sf_version(r);
    rfs_sf_close(r);
    rfs_blob_close(fdm);
    rfs_blob_close(fdt);
    return 1;   /* stop after the first segment */
}

static int check_codec(const char *name, const char *codec, int version)
{
    const char *dir = unzip_fixture(name);
    if (!dir)
        SM_SKIP("unzip failed for %s", name);
    struct codec_probe p = { "", -1 };
    char err[256];
    sf_each_segment(dir, probe_fn, &p, err, sizeof(err));
    SM_CHECK_EQ_STR(p.codec, codec);
    SM_CHECK_EQ_INT(p.version, version);
    return 0;
}

/* Doc values of the fixtures (Lucene80 v2 in 8.11, Lucene90 in 9.12/10.3):
 * every NUMERIC field's docs-with-field set decodes, and a walk for an
 * absent field crosses every entry of every type and ends at the footer. */
static unsigned dv_flags(void *arg, int number)
{
    const struct rfs_lu_field *f = rfs_lu_field_by_number(arg, number);
    unsigned fl = 0;
    const char *mode = f ? rfs_lu_kv_get(&f->attributes, "Lucene80DocValuesFormat.mode") : NULL;
    if (mode && !strcmp(mode, "BEST_COMPRESSION"))
        fl |= RFS_DV_F_BINARY_COMPRESSED;
    if (f && f->dv_skip_index)
        fl |= RFS_DV_F_SKIP_INDEX;
    return fl;
}

struct dvcount { int numeric, walks; };

static int dv_seg_fn(void *arg, const struct rfs_lu_segment *seg, struct rfs_dir *dir,
                     struct rfs_dir *cfs)
{
    struct dvcount *n = arg;
    struct rfs_lu_segctx ctx = { seg, NULL, dir, cfs };
    struct rfs_lu_fieldinfos *fis = NULL;
    char err[512];
    int rc = rfs_lu_fieldinfos_read(&ctx, &fis, err, sizeof(err));
    for (size_t i = 0; !rc && i < fis->n; i++) {
        const struct rfs_lu_field *f = &fis->v[i];
        const char *fmt = rfs_lu_kv_get(&f->attributes, "PerFieldDocValuesFormat.format");
        const char *sfx = rfs_lu_kv_get(&f->attributes, "PerFieldDocValuesFormat.suffix");
        if (!fmt || !sfx || f->dv_gen != -1)
            continue;
        char hs[128], name[160];
        snprintf(hs, sizeof(hs), "%s_%s", fmt, sfx);
        struct rfs_blob *m = NULL, *d = NULL;
        snprintf(name, sizeof(name), "_%s.dvm", hs);
        rc = sf_open_seg_file(dir, cfs, seg->name, name, &m, err, sizeof(err));
        snprintf(name, sizeof(name), "_%s.dvd", hs);
        if (!rc)
            rc = sf_open_seg_file(dir, cfs, seg->name, name, &d, err, sizeof(err));
        struct rfs_dv_docset set;
        if (!rc) {
            int r2 = rfs_dv_numeric_docs(m, d, seg->id, hs, 999999, seg->max_doc, dv_flags, fis,
                                         &set, err, sizeof(err));
            rc = r2 == SM_ENOTFOUND ? 0 : (r2 ? r2 : SM_ECORRUPT);
            n->walks++;
        }
        if (!rc && f->dv_type == RFS_LU_DV_NUMERIC) {
            rc = rfs_dv_numeric_docs(m, d, seg->id, hs, f->number, seg->max_doc, dv_flags, fis,
                                     &set, err, sizeof(err));
            if (!rc && (set.count <= 0 || set.count > seg->max_doc))
                rc = SM_ECORRUPT;
            rfs_dv_docset_free(&set);
            n->numeric++;
        }
        rfs_blob_close(d);
        rfs_blob_close(m);
        if (rc)
            fprintf(stderr, "%s field %s: %s\n", seg->name, f->name, err);
    }
    rfs_lu_fieldinfos_free(fis);
    return rc;
}

static int check_dv(const char *name)
{
    const char *dir = unzip_fixture(name);
    if (!dir)
        SM_SKIP("unzip failed for %s", name);
    struct dvcount n = { 0, 0 };
    char err[512] = "";
    int rc = sf_each_segment(dir, dv_seg_fn, &n, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err);
    SM_CHECK_EQ_INT(rc, 0);
    printf("%s: %d .dvm walks, %d NUMERIC fields\n", name, n.walks, n.numeric);
    SM_CHECK(n.numeric > 0 && n.walks > 0);
    return 0;
}

static int test_docvalues_8_11(void) { return check_dv("index.8.11.1-cfs"); }
static int test_docvalues_9_12(void) { return check_dv("index.9.12.0-nocfs"); }
static int test_docvalues_10_3(void) { return check_dv("index.10.3.2-cfs"); }

/* An Elasticsearch 1.7.5 shard (snapshot fixture): a standalone
 * Lucene41StoredFieldsData .fdt blob (__d) with its .si (__h). Every doc's
 * _uid is "doc#<id>" and its _source must hash to the expected SHA-256 of
 * tests/fixtures/expected/ES_1_7_5.test_1.tsv (id, sha256, length). */
struct es1 {
    char expected[3000][65];
    int explen[3000];
    char uid[64];
    const uint8_t *src;
    size_t srclen;
};

static int es1_visit(void *arg, int field, int type, const uint8_t *b, size_t len, int64_t iv,
                     double dv)
{
    struct es1 *e = arg;
    (void)field, (void)iv, (void)dv;
    if (type == RFS_SF_STRING && len > 4 && len < sizeof(e->uid) && !memcmp(b, "doc#", 4)) {
        memcpy(e->uid, b, len);
        e->uid[len] = 0;
    } else if (type == RFS_SF_BYTES) {
        e->src = b;
        e->srclen = len;
    }
    return 0;
}

static int test_es_1_7_shard(void)
{
    static struct es1 e;
    memset(&e, 0, sizeof(e));
    FILE *f = fopen(sm_src_path("tests/fixtures/expected/ES_1_7_5.test_1.tsv"), "r");
    if (!f)
        SM_SKIP("ES_1_7_5 expectations missing");
    char line[512];
    int nexp = 0;
    while (fgets(line, sizeof(line), f)) {
        char idx[64], type[32], routing[32], sha[65];
        int id, len;
        if (sscanf(line, "%63s %d %31s %31s %64s %d", idx, &id, routing, type, sha, &len) == 6 &&
            id >= 0 && id < 3000) {
            memcpy(e.expected[id], sha, 65);
            e.explen[id] = len;
            nexp++;
        }
    }
    fclose(f);
    SM_CHECK(nexp > 2500);
    const char *dir = sm_src_path("tests/fixtures/snapshots/ES_1_7_5/indices/index-1.7.5/0");
    char path[4200], err[512];
    struct rfs_blob *fdt, *si;
    snprintf(path, sizeof(path), "%s/__d", dir);
    SM_CHECK_EQ_INT(rfs_blob_open_file(path, "__d (_x.fdt)", &fdt, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/__h", dir);
    SM_CHECK_EQ_INT(rfs_blob_open_file(path, "__h (_x.si)", &si, err, sizeof(err)), 0);
    struct rfs_lu_segment seg;
    memset(&seg, 0, sizeof(seg));
    seg.name = sm_strdup("_x");
    SM_CHECK_EQ_INT(rfs_lu_si_parse(si, "__h", &seg, err, sizeof(err)), 0);
    SM_CHECK_EQ_INT(seg.max_doc, 2534);
    struct rfs_sf_reader *r;
    SM_CHECK_EQ_INT(rfs_sf_open(fdt, NULL, NULL, NULL, NULL, seg.max_doc, &r, err, sizeof(err)), 0);
    SM_CHECK_EQ_STR(rfs_sf_codec(r), "Lucene41StoredFieldsData");
    int matched = 0;
    for (int d = 0; d < seg.max_doc; d++) {
        e.uid[0] = 0;
        e.src = NULL;
        SM_CHECK_EQ_INT(rfs_sf_document(r, d, es1_visit, &e, err, sizeof(err)), 0);
        SM_CHECK(e.uid[0] && e.src);
        int id = atoi_safe(e.uid + 4);
        if (id < 0 || id >= 3000 || !e.expected[id][0])
            continue;              /* a deleted or superseded version */
        unsigned char md[32];
        unsigned int mdlen = 0;
        SM_CHECK(EVP_Digest(e.src, e.srclen, md, &mdlen, EVP_sha256(), NULL) == 1);
        char hex[65];
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        if (strcmp(hex, e.expected[id]) || (int)e.srclen != e.explen[id]) {
            fprintf(stderr, "doc %d (%s): _source sha256 %s len %zu, expected %s len %d\n", d,
                    e.uid, hex, e.srclen, e.expected[id], e.explen[id]);
            return 1;
        }
        matched++;
    }
    SM_CHECK_EQ_INT(rfs_sf_verify_checksum(r, err, sizeof(err)), 0);
    rfs_sf_close(r);
    rfs_lu_segment_free(&seg);
    rfs_blob_close(si);
    rfs_blob_close(fdt);
    SM_CHECK(matched > 2400);
    return 0;
}

static int test_lucene_4_10_cfs(void) { return check_fixture("unsupported.4.10.4-cfs", NULL); }
static int test_lucene_4_10_nocfs(void)
{
    return check_fixture("unsupported.4.10.4-nocfs", NULL) ||
           check_codec("unsupported.4.10.4-nocfs", "Lucene41StoredFieldsData", 2);
}
static int test_lucene_5_5(void)
{
    return check_fixture("index.5.5.4-cfs", NULL) || check_fixture("index.5.5.4-nocfs", NULL) ||
           check_codec("index.5.5.4-cfs", "Lucene50StoredFieldsFastData", 1);
}
static int test_lucene_6_6(void)
{
    return check_fixture("index.6.6.5-cfs", NULL) || check_fixture("index.6.6.5-nocfs", NULL) ||
           check_codec("index.6.6.5-cfs", "Lucene50StoredFieldsFastData", 1);
}
static int test_lucene_8_11(void)
{
    return check_fixture("index.8.11.1-cfs", NULL) || check_fixture("index.8.11.1-nocfs", NULL) ||
           check_codec("index.8.11.1-cfs", "Lucene87StoredFieldsFastData", 4);
}
static int test_lucene_9_12(void)
{
    return check_fixture("index.9.12.0-cfs", NULL) || check_fixture("index.9.12.0-nocfs", NULL) ||
           check_codec("index.9.12.0-cfs", "Lucene90StoredFieldsFastData", 1);
}
static int test_lucene_10_3(void)
{
    return check_fixture("index.10.3.2-cfs", NULL) || check_fixture("index.10.3.2-nocfs", NULL) ||
           check_codec("index.10.3.2-cfs", "Lucene90StoredFieldsFastData", 1);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--dump")) {
        struct fx f = { .dump = true };
        char err[512];
        int rc = sf_each_segment(argv[2], seg_fn, &f, err, sizeof(err));
        if (rc)
            fprintf(stderr, "error: %s\n", err);
        printf("docs %d utf8 %d content %d nonascii %d\n", f.docs, f.with_utf8, f.with_content,
               f.with_nonascii);
        return rc ? 1 : 0;
    }
    static const struct sm_test_case tcs[] = {
        SM_TC(test_lucene_4_10_cfs), SM_TC(test_lucene_4_10_nocfs), SM_TC(test_lucene_5_5),
        SM_TC(test_lucene_6_6), SM_TC(test_lucene_8_11), SM_TC(test_lucene_9_12),
        SM_TC(test_lucene_10_3), SM_TC(test_docvalues_8_11), SM_TC(test_docvalues_9_12),
        SM_TC(test_docvalues_10_3), SM_TC(test_es_1_7_shard),
    };
    return sm_test_run(tcs, sizeof(tcs) / sizeof(tcs[0]), argc, argv);
}
