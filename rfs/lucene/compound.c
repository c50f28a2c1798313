/* Compound files: the .cfe entry table and the .cfs data file, presented as
 * an rfs_dir of slices. Lucene 4.x (CompoundFileWriterEntries/Data),
 * Lucene 5-8 (Lucene50Compound*, BE) and Lucene 9-10 (Lucene90Compound*, LE). */
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFS_MAX_ENTRIES 100000

struct cfs_ctx {
    struct rfs_blob *cfs;       /* owned */
    char *cfs_name;
    struct sm_strlist names;    /* full names ("_0.fdt"), sorted */
    uint64_t *off, *len;        /* parallel to names */
};

struct ent { char *name; uint64_t off, len; };

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

/* kind: 4 (Lucene 4.x), 50, 90 from the .cfe codec name */
static int cfe_kind(const char *codec)
{
    if (!strcmp(codec, "Lucene50CompoundEntries"))
        return 50;
    if (!strcmp(codec, "Lucene90CompoundEntries"))
        return 90;
    if (!strcmp(codec, "CompoundFileWriterEntries"))
        return 4;
    return 0;
}

int rfs_lu_cfe_parse(struct rfs_blob *cfe, const char *file, const struct rfs_lu_segment *seg,
                     struct sm_strlist *names, uint64_t **offs, uint64_t **lens, char *err,
                     size_t errlen)
{
    struct rfs_lu_header h;
    struct ent *ents = NULL;
    size_t n = 0;
    int kind = 0;
    struct rfs_lu_in *in = sm_malloc(sizeof(*in));
    *offs = *lens = NULL;
    if (!in)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", file);
    rfs_lu_in_init(in, cfe, file);
    rfs_lu_read_header(in, &h);
    if (in->err)
        goto out;
    kind = cfe_kind(h.codec);
    if (!kind) {
        rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene compound format %s version %d",
                    h.codec, h.version);
        goto out;
    }
    if (h.version < 0 || h.version > (kind == 4 ? 1 : 0)) {
        rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene format %s version %d (supported 0..%d)",
                    h.codec, h.version, kind == 4 ? 1 : 0);
        goto out;
    }
    if (kind != 4) {
        rfs_lu_read_header_id(in, &h);
        if (!in->err && seg && seg->has_id && memcmp(h.id, seg->id, RFS_LU_ID_LEN))
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: id differs from segment %s", seg->name);
        if (!in->err && h.suffix[0])
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: suffix '%s', expected ''", h.suffix);
    }
    in->le = kind == 90;
    int32_t count = rfs_lu_vint(in);
    if (in->err)
        goto out;
    if (count < 0 || count > CFS_MAX_ENTRIES || (uint64_t)count > rfs_lu_remaining(in)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid compound entry count %d", count);
        goto out;
    }
    if (count && !(ents = sm_calloc((size_t)count, sizeof(*ents)))) {
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        goto out;
    }
    for (int32_t i = 0; i < count && !in->err; i++) {
        size_t sl;
        char *id = rfs_lu_string(in, &sl);
        if (!id)
            break;
        int64_t off = rfs_lu_i64(in), len = rfs_lu_i64(in);
        if (in->err || sl == 0 || strlen(id) != sl || strchr(id, '/') || off < 0 || len < 0) {
            rfs_lu_fail(in, SM_ECORRUPT, "invalid compound entry '%s' (%lld, %lld)", id,
                        (long long)off, (long long)len);
            sm_free(id);
            break;
        }
        const char *sname = seg ? seg->name : "";
        size_t fl = strlen(sname) + sl + 1;
        char *full = sm_malloc(fl);
        if (!full) {
            sm_free(id);
            rfs_lu_fail(in, SM_ENOMEM, "out of memory");
            break;
        }
        snprintf(full, fl, "%s%s", sname, id);
        sm_free(id);
        ents[n].name = full;
        ents[n].off = (uint64_t)off;
        ents[n].len = (uint64_t)len;
        n++;
    }
    if (in->err)
        goto out;
    if (kind != 4 || h.version >= 1)
        rfs_lu_check_footer_pos(in, NULL);
    else if (rfs_lu_remaining(in))
        rfs_lu_fail(in, SM_ECORRUPT, "trailing bytes after compound entries");
    if (in->err)
        goto out;
    if (n > 1)   /* qsort with a NULL base is undefined even for 0 elements */
        qsort(ents, n, sizeof(*ents), ent_cmp);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(ents[i - 1].name, ents[i].name)) {
            rfs_lu_fail(in, SM_ECORRUPT, "duplicate compound entry '%s'", ents[i].name);
            goto out;
        }
    if (n) {
        *offs = sm_calloc(n, sizeof(uint64_t));
        *lens = sm_calloc(n, sizeof(uint64_t));
        if (!*offs || !*lens) {
            rfs_lu_fail(in, SM_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n && !in->err; i++) {
        if (sm_strlist_push(names, ents[i].name))
            rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        (*offs)[i] = ents[i].off;
        (*lens)[i] = ents[i].len;
    }
out:
    for (size_t i = 0; i < n; i++)
        sm_free(ents[i].name);
    sm_free(ents);
    int rc = rfs_lu_in_err(in, err, errlen);
    sm_free(in);
    if (!rc && (kind != 4 || h.version >= 1))
        rc = rfs_lu_verify_checksum(cfe, file, err, errlen);
    if (rc) {
        sm_free(*offs);
        sm_free(*lens);
        *offs = *lens = NULL;
    }
    return rc;
}

static int cfs_find(const struct cfs_ctx *cc, const char *name)
{
    size_t lo = 0, hi = cc->names.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(cc->names.v[mid], name);
        if (!c)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int cfs_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    struct cfs_ctx *cc = dir->ctx;
    if (prefix && *prefix)
        return SM_OK;
    for (size_t i = 0; i < cc->names.n; i++)
        if (sm_strlist_push(names, cc->names.v[i]))
            return SM_ENOMEM;
    return SM_OK;
}

static int cfs_open(struct rfs_dir *dir, const char *path, struct rfs_blob **out, char *err,
                    size_t errlen)
{
    struct cfs_ctx *cc = dir->ctx;
    int i = cfs_find(cc, path);
    if (i < 0)
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: no entry for %s", cc->cfs_name, path);
    char name[600];
    snprintf(name, sizeof(name), "%s (in %s)", path, cc->cfs_name);
    int rc = rfs_blob_open_slice(cc->cfs, cc->off[i], cc->len[i], name, out);
    if (rc)
        return sm_errf(err, errlen, rc, "%s: %s", name, sm_strerror(rc));
    return SM_OK;
}

static void cfs_close(struct rfs_dir *dir)
{
    struct cfs_ctx *cc = dir->ctx;
    rfs_blob_close(cc->cfs);
    sm_free(cc->cfs_name);
    sm_strlist_free(&cc->names);
    sm_free(cc->off);
    sm_free(cc->len);
    sm_free(cc);
}

static const struct rfs_dir_ops cfs_dir_ops = { "cfs", cfs_list, cfs_open, cfs_close };

int rfs_lu_cfs_open(struct rfs_dir *dir, const struct rfs_lu_segment *seg, struct rfs_dir **out,
                    char *err, size_t errlen)
{
    char cfe_name[300], cfs_name[300];
    struct rfs_blob *cfe = NULL;
    struct cfs_ctx *cc = NULL;
    struct rfs_dir *d = NULL;
    int rc;
    *out = NULL;
    snprintf(cfe_name, sizeof(cfe_name), "%s.cfe", seg->name);
    snprintf(cfs_name, sizeof(cfs_name), "%s.cfs", seg->name);
    if (!(cc = sm_calloc(1, sizeof(*cc))) || !(d = sm_calloc(1, sizeof(*d))) ||
        !(cc->cfs_name = sm_strdup(cfs_name)) || !(d->desc = sm_strdup(cfs_name))) {
        rc = sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", cfs_name);
        goto fail;
    }
    if ((rc = rfs_dir_open(dir, cfe_name, &cfe, err, errlen)))
        goto fail;
    rc = rfs_lu_cfe_parse(cfe, cfe_name, seg, &cc->names, &cc->off, &cc->len, err, errlen);
    rfs_blob_close(cfe);
    if (rc)
        goto fail;
    if ((rc = rfs_dir_open(dir, cfs_name, &cc->cfs, err, errlen)))
        goto fail;
    /* .cfs: header check and footer structure (each sub-file carries its own
     * checksum, verified when that file is read) */
    {
        struct rfs_lu_in *in = sm_malloc(sizeof(*in));
        struct rfs_lu_header h;
        if (!in) {
            rc = sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", cfs_name);
            goto fail;
        }
        rfs_lu_in_init(in, cc->cfs, cfs_name);
        rfs_lu_read_header(in, &h);
        bool lu4 = !in->err && !strcmp(h.codec, "CompoundFileWriterData");
        if (!in->err && !lu4) {
            const char *want = seg->le ? "Lucene90CompoundData" : "Lucene50CompoundData";
            if (strcmp(h.codec, want))
                rfs_lu_fail(in, SM_ECORRUPT, "codec mismatch: actual codec '%s' vs expected '%s'",
                            h.codec, want);
            else if (h.version != 0)
                rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene format %s version %d",
                            h.codec, h.version);
            rfs_lu_read_header_id(in, &h);
            if (!in->err && seg->has_id && memcmp(h.id, seg->id, RFS_LU_ID_LEN))
                rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: id differs from segment %s",
                            seg->name);
        } else if (lu4 && (h.version < 0 || h.version > 1)) {
            rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene format %s version %d",
                        h.codec, h.version);
        }
        uint64_t data_start = in->pos;
        bool has_footer = !lu4 || h.version >= 1;
        if (!in->err && has_footer) {
            if (cc->cfs->size < data_start + RFS_LU_FOOTER_LEN)
                rfs_lu_fail(in, SM_ECORRUPT, "file too short for a codec footer");
            else {
                rfs_lu_seek(in, cc->cfs->size - RFS_LU_FOOTER_LEN);
                rfs_lu_check_footer_pos(in, NULL);
            }
        }
        uint64_t data_end = has_footer ? cc->cfs->size - RFS_LU_FOOTER_LEN : cc->cfs->size;
        for (size_t i = 0; i < cc->names.n && !in->err; i++)
            if (cc->off[i] < data_start || cc->off[i] > data_end ||
                cc->len[i] > data_end - cc->off[i])
                rfs_lu_fail(in, SM_ECORRUPT,
                            "entry %s (offset %llu, length %llu) outside the data (%llu..%llu)",
                            cc->names.v[i], (unsigned long long)cc->off[i],
                            (unsigned long long)cc->len[i], (unsigned long long)data_start,
                            (unsigned long long)data_end);
        rc = rfs_lu_in_err(in, err, errlen);
        sm_free(in);
        if (rc)
            goto fail;
    }
    d->ops = &cfs_dir_ops;
    d->ctx = cc;
    *out = d;
    return SM_OK;
fail:
    if (cc) {
        rfs_blob_close(cc->cfs);
        sm_free(cc->cfs_name);
        sm_strlist_free(&cc->names);
        sm_free(cc->off);
        sm_free(cc->len);
        sm_free(cc);
    }
    if (d)
        sm_free(d->desc);
    sm_free(d);
    return rc;
}
