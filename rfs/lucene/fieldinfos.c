/* Field infos (.fnm): Lucene46FieldInfos (4.x), Lucene50FieldInfos (5.x),
 * Lucene60FieldInfos (6.0-8.x), Lucene90FieldInfos (9.0-9.3),
 * Lucene94FieldInfos (9.4-10.x), base file or _<seg>_<gen>.fnm. */
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <stdio.h>
#include <string.h>

#define FI_MAX_FIELDS 1000000

void rfs_lu_fieldinfos_free(struct rfs_lu_fieldinfos *fis)
{
    if (!fis)
        return;
    for (size_t i = 0; i < fis->n; i++) {
        sm_free(fis->v[i].name);
        rfs_lu_kv_free(&fis->v[i].attributes);
    }
    sm_free(fis->v);
    sm_free(fis->by_number);
    sm_free(fis);
}

const struct rfs_lu_field *rfs_lu_field_by_number(const struct rfs_lu_fieldinfos *fis,
                                                  int32_t number)
{
    if (number < 0 || number > fis->max_number)
        return NULL;
    if (fis->by_number) {
        int32_t i = fis->by_number[number];
        return i < 0 ? NULL : &fis->v[i];
    }
    for (size_t i = 0; i < fis->n; i++)
        if (fis->v[i].number == number)
            return &fis->v[i];
    return NULL;
}

const struct rfs_lu_field *rfs_lu_field_by_name(const struct rfs_lu_fieldinfos *fis,
                                                const char *name)
{
    for (size_t i = 0; i < fis->n; i++)
        if (!strcmp(fis->v[i].name, name))
            return &fis->v[i];
    return NULL;
}

const struct rfs_lu_field *rfs_lu_soft_deletes_field(const struct rfs_lu_fieldinfos *fis)
{
    for (size_t i = 0; i < fis->n; i++)
        if (fis->v[i].soft_deletes)
            return &fis->v[i];
    return rfs_lu_field_by_name(fis, "__soft_deletes");
}

enum fnm_kind { FNM_46 = 46, FNM_50 = 50, FNM_60 = 60, FNM_90 = 90, FNM_94 = 94 };

static void map_lucene4_bits(struct rfs_lu_field *f, uint8_t bits)
{
    /* 4.x: 0x1 indexed, 0x2 term vectors, 0x4 offsets in postings, 0x10 omit
     * norms, 0x20 payloads, 0x40 omit tf+positions, 0x80 omit positions */
    f->bits = 0;
    if (bits & 0x02)
        f->bits |= RFS_LU_FI_TERM_VECTORS;
    if (bits & 0x10)
        f->bits |= RFS_LU_FI_OMIT_NORMS;
    if (bits & 0x20)
        f->bits |= RFS_LU_FI_PAYLOADS;
    if (!(bits & 0x01))
        f->index_options = 0;
    else if (bits & 0x40)
        f->index_options = 1;
    else if (bits & 0x80)
        f->index_options = 2;
    else if (bits & 0x04)
        f->index_options = 4;
    else
        f->index_options = 3;
}

int rfs_lu_fnm_parse(struct rfs_blob *blob, const char *file, const struct rfs_lu_segment *seg,
                     const char *suffix, struct rfs_lu_fieldinfos **out, char *err,
                     size_t errlen)
{
    struct rfs_lu_header h;
    struct rfs_lu_fieldinfos *fis = sm_calloc(1, sizeof(*fis));
    struct rfs_lu_in *in = sm_malloc(sizeof(*in));
    enum fnm_kind kind = 0;
    int maxv = 0;
    *out = NULL;
    if (!fis || !in) {
        sm_free(fis);
        sm_free(in);
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", file);
    }
    rfs_lu_in_init(in, blob, file);
    rfs_lu_read_header(in, &h);
    if (in->err)
        goto out;
    snprintf(fis->codec, sizeof(fis->codec), "%s", h.codec);
    fis->version = h.version;
    if (!strcmp(h.codec, "Lucene46FieldInfos"))
        kind = FNM_46, maxv = 2;
    else if (!strcmp(h.codec, "Lucene50FieldInfos"))
        kind = FNM_50, maxv = 1;
    else if (!strcmp(h.codec, "Lucene60FieldInfos"))
        kind = FNM_60, maxv = 2;
    else if (!strcmp(h.codec, "Lucene90FieldInfos"))
        kind = FNM_90, maxv = 0;
    else if (!strcmp(h.codec, "Lucene94FieldInfos"))
        kind = FNM_94, maxv = 2;
    else {
        rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene field infos format %s version %d",
                    h.codec, h.version);
        goto out;
    }
    if (h.version < 0 || h.version > maxv) {
        rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene format %s version %d (supported 0..%d)",
                    h.codec, h.version, maxv);
        goto out;
    }
    if (kind != FNM_46) {
        rfs_lu_read_header_id(in, &h);
        if (!in->err && seg && seg->has_id && memcmp(h.id, seg->id, RFS_LU_ID_LEN))
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: id differs from segment %s", seg->name);
        if (!in->err && suffix && strcmp(h.suffix, suffix))
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: suffix '%s', expected '%s'", h.suffix,
                        suffix);
    }
    in->le = kind >= FNM_90;
    int32_t n = rfs_lu_vint(in);
    if (in->err)
        goto out;
    if (n < 0 || n > FI_MAX_FIELDS || (uint64_t)n > rfs_lu_remaining(in)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid field count %d", n);
        goto out;
    }
    if (n && !(fis->v = sm_calloc((size_t)n, sizeof(*fis->v)))) {
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        goto out;
    }
    fis->max_number = -1;
    for (int32_t i = 0; i < n && !in->err; i++) {
        struct rfs_lu_field *f = &fis->v[i];
        size_t nl;
        fis->n++;
        f->name = rfs_lu_string(in, &nl);
        if (!f->name)
            break;
        if (strlen(f->name) != nl) {
            rfs_lu_fail(in, SM_ECORRUPT, "field name with NUL byte");
            break;
        }
        f->number = rfs_lu_vint(in);
        if (!in->err && f->number < 0) {
            rfs_lu_fail(in, SM_ECORRUPT, "invalid field number %d for '%s'", f->number, f->name);
            break;
        }
        uint8_t bits = rfs_lu_byte(in);
        uint8_t dv;
        if (kind == FNM_46) {
            map_lucene4_bits(f, bits);
            dv = rfs_lu_byte(in) & 0x0f;        /* high nibble: norms type */
        } else {
            f->bits = bits;
            f->index_options = rfs_lu_byte(in);
            dv = rfs_lu_byte(in);
            if (kind == FNM_94 && h.version >= 2)
                f->dv_skip_index = rfs_lu_byte(in);
        }
        if (!in->err && (dv > 5 || f->index_options > 4 || f->dv_skip_index > 1)) {
            rfs_lu_fail(in, SM_ECORRUPT, "invalid field '%s' (doc values %u, index options %u)",
                        f->name, dv, f->index_options);
            break;
        }
        f->dv_type = dv;
        f->soft_deletes = kind != FNM_46 && (f->bits & RFS_LU_FI_SOFT_DELETES);
        f->dv_gen = kind >= FNM_90 ? rfs_lu_i64(in) : rfs_lu_be64(in);
        rfs_lu_kv_read(in, kind == FNM_46 || (kind == FNM_50 && h.version == 0), &f->attributes);
        if (kind >= FNM_60) {
            f->point_dims = rfs_lu_vint(in);
            if (f->point_dims) {
                f->point_index_dims = (kind >= FNM_90 || h.version >= 2) ? rfs_lu_vint(in)
                                                                         : f->point_dims;
                f->point_num_bytes = rfs_lu_vint(in);
            }
        }
        if (kind == FNM_90) {
            f->vector_dims = rfs_lu_vint(in);
            f->vector_similarity = rfs_lu_byte(in);
        } else if (kind == FNM_94) {
            f->vector_dims = rfs_lu_vint(in);
            f->vector_encoding = rfs_lu_byte(in);
            f->vector_similarity = rfs_lu_byte(in);
        }
        if (!in->err && (f->point_dims < 0 || f->point_index_dims < 0 ||
                         f->point_num_bytes < 0 || f->vector_dims < 0))
            rfs_lu_fail(in, SM_ECORRUPT, "invalid point/vector dimensions for '%s'", f->name);
        if (!in->err && f->number > fis->max_number)
            fis->max_number = f->number;
    }
    if (in->err)
        goto out;
    if (kind != FNM_46 || h.version >= 1)
        rfs_lu_check_footer_pos(in, NULL);
    else if (rfs_lu_remaining(in))
        rfs_lu_fail(in, SM_ECORRUPT, "trailing bytes after field infos");
    if (in->err)
        goto out;
    /* dense index when numbers are not absurdly sparse */
    if ((uint64_t)fis->max_number < 4 * (uint64_t)fis->n + 4096) {
        fis->by_number = sm_malloc(((size_t)fis->max_number + 1) * sizeof(int32_t));
        if (!fis->by_number) {
            rfs_lu_fail(in, SM_ENOMEM, "out of memory");
            goto out;
        }
        for (int32_t i = 0; i <= fis->max_number; i++)
            fis->by_number[i] = -1;
    }
    for (size_t i = 0; i < fis->n && !in->err; i++) {
        const struct rfs_lu_field *prev = rfs_lu_field_by_number(fis, fis->v[i].number);
        if (prev && prev != &fis->v[i] && (!fis->by_number || prev < &fis->v[i]))
            rfs_lu_fail(in, SM_ECORRUPT, "duplicate field number %d ('%s', '%s')",
                        fis->v[i].number, prev->name, fis->v[i].name);
        else if (fis->by_number)
            fis->by_number[fis->v[i].number] = (int32_t)i;
    }
out:;
    int rc = rfs_lu_in_err(in, err, errlen);
    sm_free(in);
    if (!rc && (kind != FNM_46 || h.version >= 1))
        rc = rfs_lu_verify_checksum(blob, file, err, errlen);
    if (rc) {
        rfs_lu_fieldinfos_free(fis);
        return rc;
    }
    *out = fis;
    return SM_OK;
}

int rfs_lu_seg_open(const struct rfs_lu_segctx *ctx, const char *file, struct rfs_blob **out,
                    char *err, size_t errlen)
{
    if (ctx->cfs) {
        int rc = rfs_dir_open(ctx->cfs, file, out, NULL, 0);
        if (rc != SM_ENOTFOUND)
            return rc ? sm_errf(err, errlen, rc, "%s (in %s.cfs): %s", file, ctx->si->name,
                                sm_strerror(rc))
                      : SM_OK;
    }
    int rc = rfs_dir_open(ctx->dir, file, out, err, errlen);
    if (rc == SM_ENOTFOUND && err && errlen && !err[0])
        sm_errf(err, errlen, rc, "%s: missing file of segment %s", file, ctx->si->name);
    return rc;
}

int rfs_lu_fieldinfos_read(const struct rfs_lu_segctx *ctx, struct rfs_lu_fieldinfos **out,
                           char *err, size_t errlen)
{
    const struct rfs_lu_segment *seg = ctx->si;
    char file[300], suffix[16] = "";
    struct rfs_blob *blob = NULL;
    int rc = rfs_lu_gen_file_name(seg->name, seg->field_infos_gen, ".fnm", file, sizeof(file));
    if (rc)
        return sm_errf(err, errlen, rc, "%s: segment name too long", seg->name);
    if (seg->field_infos_gen != -1) {
        rfs_lu_base36((uint64_t)seg->field_infos_gen, suffix, sizeof(suffix));
        /* generation files are never inside the compound file */
        rc = rfs_dir_open(ctx->dir, file, &blob, err, errlen);
    } else {
        rc = rfs_lu_seg_open(ctx, file, &blob, err, errlen);
    }
    if (rc)
        return rc;
    rc = rfs_lu_fnm_parse(blob, blob->name, seg, suffix, out, err, errlen);
    rfs_blob_close(blob);
    return rc;
}
