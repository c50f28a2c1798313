/* Public Lucene index API (lucene.h): latest commit, segment listing, and the
 * live-document iterator combining field infos, hard deletes, soft deletes
 * (docvalues.h) and stored fields (storedfields.h). */
#include "lucene/lucene.h"

#include "lucene/docvalues.h"
#include "lucene/lucene_int.h"
#include "lucene/storedfields.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include <stdio.h>
#include <string.h>

_Static_assert((int)RFS_LUCENE_STRING == (int)RFS_SF_STRING &&
               (int)RFS_LUCENE_BINARY == (int)RFS_SF_BYTES &&
               (int)RFS_LUCENE_INT == (int)RFS_SF_INT && (int)RFS_LUCENE_FLOAT == (int)RFS_SF_FLOAT &&
               (int)RFS_LUCENE_LONG == (int)RFS_SF_LONG &&
               (int)RFS_LUCENE_DOUBLE == (int)RFS_SF_DOUBLE,
               "stored-field type values");

#define DOC_MAX_FIELDS 100000
#define DOC_MAX_BYTES (256u << 20)     /* one document's stored fields */

struct rfs_lucene_index {
    struct rfs_dir *dir;
    struct rfs_lucene_opts opts;
    struct rfs_lu_commit *commit;
    int64_t *doc_base;
};

/* Formats verified on real bytes written by Lucene (tests/fixtures/lucene,
 * the snapshot fixtures). Anything else parses only with allow_untested. */
struct tested { const char *codec; int32_t minv, maxv; };
static const struct tested tested_formats[] = {
    { "segments", 3, 3 },               /* Lucene 4.10.4 */
    { "segments", 6, 6 },               /* Lucene 5.5.4, 6.6.x */
    { "segments", 9, 10 },              /* Lucene 7.7.3 (ES 6.8), 8.x, 9.x, 10.x */
    { "Lucene46SegmentInfo", 1, 1 },
    { "Lucene50SegmentInfo", 1, 1 },
    { "Lucene62SegmentInfo", 1, 1 },
    { "Lucene70SegmentInfo", 0, 0 },
    { "Lucene86SegmentInfo", 0, 0 },
    { "Lucene90SegmentInfo", 0, 0 },
    { "CompoundFileWriterEntries", 1, 1 },
    { "Lucene50CompoundEntries", 0, 0 },
    { "Lucene90CompoundEntries", 0, 0 },
    { "Lucene46FieldInfos", 2, 2 },
    { "Lucene50FieldInfos", 1, 1 },
    { "Lucene60FieldInfos", 0, 0 },     /* Lucene 6.6 */
    { "Lucene60FieldInfos", 2, 2 },     /* Lucene 7.7, 8.x */
    { "Lucene94FieldInfos", 0, 2 },     /* 0: OpenSearch 2.11 (Lucene 9.7); 1: 9.12; 2: 10.x */
    { "BitVector", 2, 2 },
    { "Lucene50LiveDocs", 0, 0 },
    { "Lucene90LiveDocs", 0, 0 },
};

static int check_tested(const struct rfs_lucene_index *idx, const char *file, const char *codec,
                        int32_t version, const char *what, char *err, size_t errlen)
{
    if (idx->opts.allow_untested)
        return SM_OK;
    for (size_t i = 0; i < sizeof(tested_formats) / sizeof(tested_formats[0]); i++)
        if (!strcmp(tested_formats[i].codec, codec) && version >= tested_formats[i].minv &&
            version <= tested_formats[i].maxv)
            return SM_OK;
    return sm_errf(err, errlen, SM_EUNSUPPORTED,
                   "%s: untested Lucene format %s version %d (%s): never verified on real bytes; "
                   "allow untested Lucene formats to try it",
                   file, codec, version, what);
}

static int peek_header(struct rfs_blob *blob, const char *file, struct rfs_lu_header *h,
                       char *err, size_t errlen)
{
    struct rfs_lu_in *in = sm_malloc(sizeof(*in));
    if (!in)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", file);
    rfs_lu_in_init(in, blob, file);
    rfs_lu_read_header(in, h);
    int rc = rfs_lu_in_err(in, err, errlen);
    sm_free(in);
    return rc;
}

int rfs_lucene_open(struct rfs_dir *dir, const struct rfs_lucene_opts *opts,
                    struct rfs_lucene_index **out, char *err, size_t errlen)
{
    *out = NULL;
    struct rfs_lucene_index *idx = sm_calloc(1, sizeof(*idx));
    if (!idx)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    idx->dir = dir;
    if (opts)
        idx->opts = *opts;
    int rc = rfs_lu_commit_read(dir, &idx->commit, err, errlen);
    if (rc)
        goto fail;
    struct rfs_lu_commit *c = idx->commit;
    const char *what = c->format <= 3 ? "Lucene 4.x commit" : "Lucene 5+ commit";
    if ((rc = check_tested(idx, c->file, "segments", c->format, what, err, errlen)))
        goto fail;
    if (c->n_seg && !(idx->doc_base = sm_calloc(c->n_seg, sizeof(int64_t)))) {
        rc = sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        goto fail;
    }
    int64_t base = 0;
    for (size_t i = 0; i < c->n_seg; i++) {
        struct rfs_lu_segment *seg = &c->seg[i];
        char file[300], vs[48];
        snprintf(file, sizeof(file), "%s.si", seg->name);
        snprintf(vs, sizeof(vs), "written by Lucene %d.%d.%d", seg->version.major,
                 seg->version.minor, seg->version.bugfix);
        if ((rc = check_tested(idx, file, seg->si_codec, seg->si_version, vs, err, errlen)))
            goto fail;
        /* Lucene 4.x segments must come from Lucene 4.8+ (checksummed files) */
        if (!seg->has_id && rfs_lu_version_cmp(seg->version, 4, 8, 0) < 0 &&
            !idx->opts.allow_untested) {
            rc = sm_errf(err, errlen, SM_EUNSUPPORTED,
                         "%s: untested Lucene format (segment %s written by Lucene %d.%d.%d; "
                         "only 4.8-4.10 segments of Lucene 4.x were verified)",
                         file, seg->name, seg->version.major, seg->version.minor,
                         seg->version.bugfix);
            goto fail;
        }
        idx->doc_base[i] = base;
        base += seg->max_doc;
    }
    *out = idx;
    return SM_OK;
fail:
    rfs_lucene_close(idx);
    return rc;
}

int rfs_lu_checksums_parse(const char *s, enum rfs_lu_checksums *out)
{
    static const char *const names[] = { "first", "streamed", "off" };
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, names[i])) {
            *out = (enum rfs_lu_checksums)i;
            return SM_OK;
        }
    return SM_EINVAL;
}

void rfs_lu_checksums_apply(enum rfs_lu_checksums mode, struct rfs_lucene_opts *opts)
{
    opts->skip_data_checksums = mode == RFS_LU_CRC_OFF;
    opts->stream_data_checksums = mode == RFS_LU_CRC_STREAMED;
}

void rfs_lucene_close(struct rfs_lucene_index *idx)
{
    if (!idx)
        return;
    rfs_lu_commit_free(idx->commit);
    sm_free(idx->doc_base);
    sm_free(idx);
}

void rfs_lucene_commit_info(const struct rfs_lucene_index *idx, struct rfs_lucene_commit_info *out)
{
    const struct rfs_lu_commit *c = idx->commit;
    memset(out, 0, sizeof(*out));
    out->file = c->file;
    out->generation = c->gen;
    out->format = c->format;
    out->lucene_version.major = c->lucene_version.major;
    out->lucene_version.minor = c->lucene_version.minor;
    out->lucene_version.bugfix = c->lucene_version.bugfix;
    out->created_major = c->created_major;
    out->n_segments = c->n_seg;
    for (size_t i = 0; i < c->n_seg; i++) {
        out->max_doc += c->seg[i].max_doc;
        out->live_docs += (int64_t)c->seg[i].max_doc - c->seg[i].del_count -
                          c->seg[i].soft_del_count;
    }
}

const char *rfs_lucene_user_data(const struct rfs_lucene_index *idx, const char *key)
{
    return rfs_lu_kv_get(&idx->commit->user_data, key);
}

int rfs_lucene_segment(const struct rfs_lucene_index *idx, size_t i,
                       struct rfs_lucene_segment_info *out)
{
    if (i >= idx->commit->n_seg)
        return SM_EINVAL;
    const struct rfs_lu_segment *seg = &idx->commit->seg[i];
    memset(out, 0, sizeof(*out));
    out->name = seg->name;
    out->codec = seg->codec;
    out->version.major = seg->version.major;
    out->version.minor = seg->version.minor;
    out->version.bugfix = seg->version.bugfix;
    out->max_doc = seg->max_doc;
    out->del_count = seg->del_count;
    out->soft_del_count = seg->soft_del_count;
    out->live_docs = seg->max_doc - seg->del_count - seg->soft_del_count;
    out->compound = seg->compound;
    out->doc_base = idx->doc_base[i];
    return SM_OK;
}

/* Iterator */

struct rfs_lucene_iter {
    struct rfs_lucene_index *idx;
    size_t seg;                 /* current segment index */
    size_t end_seg;             /* stop before this segment */
    size_t start_seg;           /* where the iterator started */
    int start_doc;
    int next_doc;               /* next doc id to look at in seg */
    bool seg_open;
    bool seg_skip;              /* every doc of the segment is deleted */
    /* per-segment state */
    struct rfs_lu_segctx ctx;
    struct rfs_dir *cfs;
    struct rfs_lu_fieldinfos *fis;
    uint64_t *live;             /* hard deletes, NULL = none */
    struct rfs_dv_docset soft;  /* soft-deleted docs, words NULL = none */
    bool all_soft;
    struct rfs_blob *fdt, *fdx, *fdm;
    struct rfs_sf_reader *sf;
    bool crc_at_end;            /* stream_data_checksums: the .fdt CRC is checked after the last document */
    /* current document */
    struct rfs_lucene_doc doc;
    struct rfs_lucene_field *fields;
    size_t n_fields, cap_fields;
    uint8_t *arena;
    size_t arena_len, arena_cap;
    bool arena_full;
    struct rfs_lucene_iter_stats stats;
};

static void seg_close(struct rfs_lucene_iter *it)
{
    rfs_sf_close(it->sf);
    it->sf = NULL;
    rfs_blob_close(it->fdt);
    rfs_blob_close(it->fdx);
    rfs_blob_close(it->fdm);
    it->fdt = it->fdx = it->fdm = NULL;
    rfs_lu_fieldinfos_free(it->fis);
    it->fis = NULL;
    sm_free(it->live);
    it->live = NULL;
    rfs_dv_docset_free(&it->soft);
    it->all_soft = false;
    rfs_dir_close(it->cfs);
    it->cfs = NULL;
    memset(&it->ctx, 0, sizeof(it->ctx));
    it->seg_open = false;
    it->seg_skip = false;
    it->crc_at_end = false;
}

static unsigned dv_flags(void *arg, int number)
{
    const struct rfs_lu_fieldinfos *fis = arg;
    const struct rfs_lu_field *f = rfs_lu_field_by_number(fis, number);
    unsigned fl = 0;
    if (!f)
        return 0;
    const char *mode = rfs_lu_kv_get(&f->attributes, "Lucene80DocValuesFormat.mode");
    if (mode && !strcmp(mode, "BEST_COMPRESSION"))
        fl |= RFS_DV_F_BINARY_COMPRESSED;
    if (f->dv_skip_index)
        fl |= RFS_DV_F_SKIP_INDEX;
    return fl;
}

static int open_soft_deletes(struct rfs_lucene_iter *it, char *err, size_t errlen)
{
    const struct rfs_lu_segment *seg = it->ctx.si;
    const struct rfs_lu_field *f = rfs_lu_soft_deletes_field(it->fis);
    if (!f)
        return sm_errf(err, errlen, SM_ECORRUPT,
                       "segment %s: %d soft deletes but no soft-deletes field in its field infos",
                       seg->name, seg->soft_del_count);
    if (f->dv_type != RFS_LU_DV_NUMERIC)
        return sm_errf(err, errlen, SM_ECORRUPT, "segment %s: soft-deletes field %s is not NUMERIC",
                       seg->name, f->name);
    const char *fmt = rfs_lu_kv_get(&f->attributes, "PerFieldDocValuesFormat.format");
    const char *sfx = rfs_lu_kv_get(&f->attributes, "PerFieldDocValuesFormat.suffix");
    if (!fmt || !sfx)
        return sm_errf(err, errlen, SM_EUNSUPPORTED,
                       "segment %s: soft-deletes field %s has no per-field doc-values format",
                       seg->name, f->name);
    char base[300], dvm[400], dvd[400], suffix[300], g36[16] = "";
    if (rfs_lu_gen_file_name(seg->name, f->dv_gen, "", base, sizeof(base)))
        return sm_errf(err, errlen, SM_EINVAL, "segment name too long");
    if (f->dv_gen != -1) {
        rfs_lu_base36((uint64_t)f->dv_gen, g36, sizeof(g36));
        snprintf(suffix, sizeof(suffix), "%s_%s_%s", g36, fmt, sfx);
    } else {
        snprintf(suffix, sizeof(suffix), "%s_%s", fmt, sfx);
    }
    snprintf(dvm, sizeof(dvm), "%s_%s_%s.dvm", base, fmt, sfx);
    snprintf(dvd, sizeof(dvd), "%s_%s_%s.dvd", base, fmt, sfx);
    struct rfs_blob *bm = NULL, *bd = NULL;
    int rc;
    if (f->dv_gen != -1) {
        if (!(rc = rfs_dir_open(it->ctx.dir, dvm, &bm, err, errlen)))
            rc = rfs_dir_open(it->ctx.dir, dvd, &bd, err, errlen);
    } else {
        if (!(rc = rfs_lu_seg_open(&it->ctx, dvm, &bm, err, errlen)))
            rc = rfs_lu_seg_open(&it->ctx, dvd, &bd, err, errlen);
    }
    /* the doc-values reader checks headers only: verify the CRCs here (.dvd
     * can be large: it follows skip_data_checksums like the .fdt) */
    if (!rc)
        rc = rfs_lu_verify_checksum(bm, bm->name, err, errlen);
    if (!rc && !it->idx->opts.skip_data_checksums)
        rc = rfs_lu_verify_checksum(bd, bd->name, err, errlen);
    if (!rc)
        rc = rfs_dv_numeric_docs(bm, bd, seg->has_id ? seg->id : NULL, suffix, f->number,
                                 seg->max_doc, dv_flags, it->fis, &it->soft, err, errlen);
    rfs_blob_close(bm);
    rfs_blob_close(bd);
    if (rc)
        return rc;
    /* softDelCount counts soft-deleted docs that are not hard-deleted */
    int64_t n = 0;
    for (int d = 0; d < seg->max_doc; d++)
        if (rfs_dv_docset_has(&it->soft, d) && (!it->live || rfs_lu_bit_get(it->live, (uint32_t)d)))
            n++;
    if (n != seg->soft_del_count)
        return sm_errf(err, errlen, SM_ECORRUPT,
                       "%s: %lld soft-deleted documents but segments_N says %d for segment %s",
                       dvm, (long long)n, seg->soft_del_count, seg->name);
    return SM_OK;
}

static int open_optional(struct rfs_lucene_iter *it, const char *file, struct rfs_blob **out,
                         char *err, size_t errlen)
{
    char e[256] = "";
    int rc = rfs_lu_seg_open(&it->ctx, file, out, e, sizeof(e));
    if (rc == SM_ENOTFOUND) {
        *out = NULL;
        return SM_OK;
    }
    if (rc)
        return sm_errf(err, errlen, rc, "%s", e);
    return SM_OK;
}

static int seg_open(struct rfs_lucene_iter *it, char *err, size_t errlen)
{
    struct rfs_lucene_index *idx = it->idx;
    const struct rfs_lu_segment *seg = &idx->commit->seg[it->seg];
    int rc;
    it->ctx.si = seg;
    it->ctx.dir = idx->dir;
    it->seg_open = true;
    if (seg->max_doc == 0 || seg->del_count + seg->soft_del_count >= seg->max_doc) {
        it->seg_skip = true;           /* nothing live (ES_7_10 soft `_0`) */
        it->stats.hard_deleted += (uint64_t)seg->del_count;
        it->stats.soft_deleted += (uint64_t)seg->soft_del_count;
        return SM_OK;
    }
    if (seg->compound) {
        char cfe[300];
        snprintf(cfe, sizeof(cfe), "%s.cfe", seg->name);
        struct rfs_blob *b = NULL;
        struct rfs_lu_header h;
        if ((rc = rfs_dir_open(idx->dir, cfe, &b, err, errlen)))
            return rc;
        rc = peek_header(b, cfe, &h, err, errlen);
        rfs_blob_close(b);
        if (rc || (rc = check_tested(idx, cfe, h.codec, h.version, "compound file", err, errlen)))
            return rc;
        if ((rc = rfs_lu_cfs_open(idx->dir, seg, &it->cfs, err, errlen)))
            return rc;
        it->ctx.cfs = it->cfs;
    }
    if ((rc = rfs_lu_fieldinfos_read(&it->ctx, &it->fis, err, errlen)))
        return rc;
    it->ctx.fis = it->fis;
    {
        char fnm[300];
        rfs_lu_gen_file_name(seg->name, seg->field_infos_gen, ".fnm", fnm, sizeof(fnm));
        if ((rc = check_tested(idx, fnm, it->fis->codec, it->fis->version, "field infos", err,
                               errlen)))
            return rc;
    }
    if (seg->del_gen != -1) {
        char liv[300];
        struct rfs_blob *b = NULL;
        struct rfs_lu_header h;
        rfs_lu_gen_file_name(seg->name, seg->del_gen, seg->has_id ? ".liv" : ".del", liv,
                             sizeof(liv));
        if ((rc = rfs_dir_open(idx->dir, liv, &b, err, errlen)))
            return rc;
        if (!seg->has_id) {
            /* BitVector: Int32 -2 precedes the codec header */
            struct rfs_blob *s = NULL;
            rc = b->size < 4 ? sm_errf(err, errlen, SM_ECORRUPT, "%s: truncated", liv)
                             : rfs_blob_open_slice(b, 4, b->size - 4, liv, &s);
            if (!rc)
                rc = peek_header(s, liv, &h, err, errlen);
            rfs_blob_close(s);
        } else {
            rc = peek_header(b, liv, &h, err, errlen);
        }
        rfs_blob_close(b);
        if (rc || (rc = check_tested(idx, liv, h.codec, h.version, "live docs", err, errlen)))
            return rc;
        if ((rc = rfs_lu_livedocs_read(&it->ctx, &it->live, err, errlen)))
            return rc;
    }
    if (seg->soft_del_count > 0 && (rc = open_soft_deletes(it, err, errlen)))
        return rc;
    char fdt[300], fdx[300], fdm[300];
    snprintf(fdt, sizeof(fdt), "%s.fdt", seg->name);
    snprintf(fdx, sizeof(fdx), "%s.fdx", seg->name);
    snprintf(fdm, sizeof(fdm), "%s.fdm", seg->name);
    if ((rc = rfs_lu_seg_open(&it->ctx, fdt, &it->fdt, err, errlen)))
        return rc;
    if ((rc = open_optional(it, fdx, &it->fdx, err, errlen)) ||
        (rc = open_optional(it, fdm, &it->fdm, err, errlen)))
        return rc;
    /* Lucene 4.0-4.7 files have no footer (only reachable with allow_untested) */
    bool footers = seg->has_id || rfs_lu_version_cmp(seg->version, 4, 8, 0) >= 0;
    bool check = footers && !idx->opts.skip_data_checksums &&
                 !(idx->opts.skip_start_checksum && it->seg == it->start_seg && it->start_doc > 0);
    /* streamed: only when the whole segment is read from its first document */
    bool streamed = check && idx->opts.stream_data_checksums && it->next_doc == 0;
    if (check && !streamed && (rc = rfs_lu_verify_checksum(it->fdt, it->fdt->name, err, errlen)))
        return rc;
    if (footers && it->fdm && (rc = rfs_lu_verify_checksum(it->fdm, it->fdm->name, err, errlen)))
        return rc;
    if (footers && it->fdx && (rc = rfs_lu_verify_checksum(it->fdx, it->fdx->name, err, errlen)))
        return rc;
    rc = rfs_sf_open(it->fdt, it->fdx, it->fdm, seg->has_id ? seg->id : NULL, "", seg->max_doc,
                     &it->sf, err, errlen);
    if (!rc && streamed) {
        if (rfs_sf_checksum_streamed(it->sf))
            it->crc_at_end = true;
        else      /* the reader cannot stream this file's CRC: the pass first after all */
            rc = rfs_lu_verify_checksum(it->fdt, it->fdt->name, err, errlen);
    }
    return rc;
}

static int arena_add(struct rfs_lucene_iter *it, const uint8_t *p, size_t n, size_t *off)
{
    if (it->arena_len + n > DOC_MAX_BYTES)
        return SM_EFULL;
    if (it->arena_len + n > it->arena_cap) {
        size_t cap = it->arena_cap ? it->arena_cap : 4096;
        while (cap < it->arena_len + n)
            cap *= 2;
        uint8_t *a = sm_realloc(it->arena, cap);
        if (!a)
            return SM_ENOMEM;
        it->arena = a;
        it->arena_cap = cap;
    }
    if (n)
        memcpy(it->arena + it->arena_len, p, n);
    *off = it->arena_len;
    it->arena_len += n;
    return SM_OK;
}

static int visit(void *arg, int number, int type, const uint8_t *bytes, size_t len, int64_t ival,
                 double dval)
{
    struct rfs_lucene_iter *it = arg;
    if (it->n_fields >= DOC_MAX_FIELDS)
        return SM_EFULL;
    if (it->n_fields == it->cap_fields) {
        size_t cap = it->cap_fields ? it->cap_fields * 2 : 16;
        struct rfs_lucene_field *f = sm_realloc(it->fields, cap * sizeof(*f));
        if (!f)
            return SM_ENOMEM;
        it->fields = f;
        it->cap_fields = cap;
    }
    struct rfs_lucene_field *f = &it->fields[it->n_fields];
    memset(f, 0, sizeof(*f));
    f->number = number;
    const struct rfs_lu_field *fi = rfs_lu_field_by_number(it->fis, number);
    if (!fi)
        return SM_ECORRUPT;
    f->name = fi->name;
    f->type = type;
    f->ival = ival;
    f->dval = dval;
    if (type == RFS_SF_STRING || type == RFS_SF_BYTES) {
        size_t off;
        int rc = arena_add(it, bytes, len, &off);
        if (rc)
            return rc;
        f->bytes = (const uint8_t *)(uintptr_t)off;     /* fixed up after the doc */
        f->len = len;
    }
    it->n_fields++;
    return 0;
}

int rfs_lucene_iter_open(struct rfs_lucene_index *idx, size_t seg, int doc,
                         struct rfs_lucene_iter **out, char *err, size_t errlen)
{
    *out = NULL;
    if (seg > idx->commit->n_seg || doc < 0 ||
        (seg < idx->commit->n_seg && doc > idx->commit->seg[seg].max_doc) ||
        (seg == idx->commit->n_seg && doc != 0))
        return sm_errf(err, errlen, SM_EINVAL, "start position (%zu, %d) outside the index", seg,
                       doc);
    struct rfs_lucene_iter *it = sm_calloc(1, sizeof(*it));
    if (!it)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    it->idx = idx;
    it->seg = seg;
    it->end_seg = idx->commit->n_seg;
    it->next_doc = doc;
    it->start_seg = seg;
    it->start_doc = doc;
    *out = it;
    return SM_OK;
}

void rfs_lucene_iter_close(struct rfs_lucene_iter *it)
{
    if (!it)
        return;
    seg_close(it);
    sm_free(it->fields);
    sm_free(it->arena);
    sm_free(it);
}

int rfs_lucene_iter_next(struct rfs_lucene_iter *it, const struct rfs_lucene_doc **out,
                         char *err, size_t errlen)
{
    struct rfs_lucene_index *idx = it->idx;
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    for (;;) {
        if (it->seg >= idx->commit->n_seg || it->seg >= it->end_seg) {
            if (it->seg_open)
                seg_close(it);
            return SM_OK;
        }
        const struct rfs_lu_segment *seg = &idx->commit->seg[it->seg];
        if (!it->seg_open) {
            int rc = seg_open(it, err, errlen);
            if (rc) {
                seg_close(it);
                return rc;
            }
        }
        if (it->seg_skip || it->next_doc >= seg->max_doc) {
            int rc = rfs_lucene_iter_finish_checksum(it, err, errlen);
            if (rc) {
                seg_close(it);
                return rc;
            }
            seg_close(it);
            it->seg++;
            it->next_doc = 0;
            continue;
        }
        int d = it->next_doc++;
        if (it->live && !rfs_lu_bit_get(it->live, (uint32_t)d)) {
            it->stats.hard_deleted++;
            continue;
        }
        if (rfs_dv_docset_has(&it->soft, d)) {
            it->stats.soft_deleted++;
            continue;
        }
        it->n_fields = 0;
        it->arena_len = 0;
        int rc = rfs_sf_document(it->sf, d, visit, it, err, errlen);
        if (rc) {
            if (rc == SM_EFULL || (rc == SM_ECORRUPT && err && errlen && !err[0]) ||
                rc == SM_ENOMEM)
                sm_errf(err, errlen, rc, "%s.fdt: document %d: %s", seg->name, d,
                        rc == SM_ECORRUPT ? "field number not in field infos"
                                          : sm_strerror(rc));
            return rc;
        }
        for (size_t i = 0; i < it->n_fields; i++)
            if (it->fields[i].type == RFS_SF_STRING || it->fields[i].type == RFS_SF_BYTES)
                it->fields[i].bytes = it->arena ? it->arena + (uintptr_t)it->fields[i].bytes
                                                : (const uint8_t *)"";
        it->doc.seg = it->seg;
        it->doc.seg_name = seg->name;
        it->doc.doc = d;
        it->doc.global_doc = idx->doc_base[it->seg] + d;
        it->doc.n_fields = it->n_fields;
        it->doc.fields = it->fields;
        it->stats.docs++;
        it->stats.bytes += it->arena_len;
        *out = &it->doc;
        return SM_OK;
    }
}

void rfs_lucene_iter_limit(struct rfs_lucene_iter *it, size_t end_seg)
{
    it->end_seg = end_seg;
}

int rfs_lucene_iter_finish_checksum(struct rfs_lucene_iter *it, char *err, size_t errlen)
{
    if (!it->seg_open || !it->crc_at_end)
        return SM_OK;
    it->crc_at_end = false;
    char e[400];
    int rc = rfs_sf_verify_checksum(it->sf, e, sizeof(e));
    if (rc == SM_ECORRUPT)
        return sm_errf(err, errlen, rc, "%s (checked after the segment's documents were read: "
                       "documents of segment %s may be damaged)", e, it->idx->commit->seg[it->seg].name);
    if (rc)
        return sm_errf(err, errlen, rc, "%s", e);
    return SM_OK;
}

const struct rfs_lucene_field *rfs_lucene_doc_field(const struct rfs_lucene_doc *doc,
                                                    const char *name)
{
    for (size_t i = 0; i < doc->n_fields; i++)
        if (!strcmp(doc->fields[i].name, name))
            return &doc->fields[i];
    return NULL;
}

void rfs_lucene_iter_stats(const struct rfs_lucene_iter *it, struct rfs_lucene_iter_stats *out)
{
    *out = it->stats;
}
