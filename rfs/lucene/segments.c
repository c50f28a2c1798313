/* segments_N (Lucene 4.x formats 0..3, Lucene 5-10 formats 4..10) and the
 * per-segment .si files (Lucene40/46, Lucene50, Lucene62, Lucene70, Lucene86,
 * Lucene90 incl. the 9.9+ hasBlocks byte). */
#include "lucene/lucene_int.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdio.h>
#include <string.h>

#define SEG_MAX_SEGMENTS 1000000

void rfs_lu_segment_free(struct rfs_lu_segment *seg)
{
    if (!seg)
        return;
    sm_free(seg->name);
    sm_free(seg->codec);
    sm_strlist_free(&seg->field_infos_files);
    for (size_t i = 0; i < seg->n_dv_updates; i++)
        sm_strlist_free(&seg->dv_updates[i].files);
    sm_free(seg->dv_updates);
    rfs_lu_kv_free(&seg->diagnostics);
    rfs_lu_kv_free(&seg->attributes);
    sm_strlist_free(&seg->files);
    memset(seg, 0, sizeof(*seg));
}

void rfs_lu_commit_free(struct rfs_lu_commit *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_seg; i++)
        rfs_lu_segment_free(&c->seg[i]);
    sm_free(c->seg);
    sm_free(c->file);
    rfs_lu_kv_free(&c->user_data);
    sm_free(c);
}

static void read_version3_vint(struct rfs_lu_in *in, struct rfs_lu_version *v)
{
    v->major = rfs_lu_vint(in);
    v->minor = rfs_lu_vint(in);
    v->bugfix = rfs_lu_vint(in);
}

/* Field-infos update files, then per doc-values field its update files (Lucene 4.9+). */
static void read_update_files(struct rfs_lu_in *in, bool old_sets, struct rfs_lu_segment *seg)
{
    rfs_lu_set_read(in, old_sets, &seg->field_infos_files);
    int32_t n = rfs_lu_be32(in);
    if (!in->err && (n < 0 || n > RFS_LU_MAX_COLLECTION))
        rfs_lu_fail(in, SM_ECORRUPT, "invalid doc-values update field count %d", n);
    if (!in->err && n > 0) {
        seg->dv_updates = sm_calloc((size_t)n, sizeof(*seg->dv_updates));
        if (!seg->dv_updates)
            rfs_lu_fail(in, SM_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; i < n && !in->err; i++) {
        seg->dv_updates[i].field = rfs_lu_be32(in);
        seg->n_dv_updates++;
        rfs_lu_set_read(in, old_sets, &seg->dv_updates[i].files);
    }
}

/* Lucene 4.x per-segment part (SegmentInfos VERSION_40..VERSION_49). */
static void read_seg4(struct rfs_lu_in *in, int32_t format, struct rfs_lu_segment *seg)
{
    seg->del_gen = rfs_lu_be64(in);
    seg->del_count = rfs_lu_be32(in);
    seg->field_infos_gen = format >= 1 ? rfs_lu_be64(in) : -1;
    seg->dv_gen = format >= 3 ? rfs_lu_be64(in) : seg->field_infos_gen;
    seg->soft_del_count = 0;
    if (format >= 1 && format < 3) {
        /* per-generation update files (4.6-4.8): read and drop */
        int32_t n = rfs_lu_be32(in);
        if (!in->err && (n < 0 || n > RFS_LU_MAX_COLLECTION))
            rfs_lu_fail(in, SM_ECORRUPT, "invalid generation-files count %d", n);
        for (int32_t i = 0; i < n && !in->err; i++) {
            struct sm_strlist tmp = { 0 };
            (void)rfs_lu_be64(in);
            rfs_lu_set_read(in, true, &tmp);
            sm_strlist_free(&tmp);
        }
    } else if (format >= 3) {
        read_update_files(in, true, seg);
    }
}

static void read_seg5(struct rfs_lu_in *in, int32_t format, struct rfs_lu_segment *seg)
{
    bool old_sets = format < 5;
    seg->del_gen = rfs_lu_be64(in);
    seg->del_count = rfs_lu_be32(in);
    seg->field_infos_gen = rfs_lu_be64(in);
    seg->dv_gen = rfs_lu_be64(in);
    seg->soft_del_count = format >= 9 ? rfs_lu_be32(in) : 0;
    if (format >= 10) {
        uint8_t marker = rfs_lu_byte(in);
        if (marker == 1) {
            rfs_lu_bytes(in, seg->sci_id, RFS_LU_ID_LEN);
            seg->has_sci_id = true;
        } else if (marker != 0 && !in->err) {
            rfs_lu_fail(in, SM_ECORRUPT, "invalid segment commit id marker %u", marker);
        }
    }
    read_update_files(in, old_sets, seg);
    if (!in->err && (seg->del_count < 0 || seg->soft_del_count < 0))
        rfs_lu_fail(in, SM_ECORRUPT, "invalid deletion counts %d/%d for %s", seg->del_count,
                    seg->soft_del_count, seg->name);
}

int rfs_lu_segments_parse(struct rfs_blob *blob, const char *file, int64_t gen,
                          struct rfs_lu_commit **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = rfs_lu_verify_checksum(blob, file, err, errlen);
    struct rfs_lu_header h;
    struct rfs_lu_in *in = sm_malloc(sizeof(*in));
    struct rfs_lu_commit *c = sm_calloc(1, sizeof(*c));
    if (!in || !c) {
        sm_free(in);
        sm_free(c);
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", file);
    }
    rfs_lu_in_init(in, blob, file);
    c->gen = gen;
    c->created_major = -1;
    if (!(c->file = sm_strdup(file))) {
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        goto out;
    }
    rfs_lu_read_header(in, &h);
    if (in->err)
        goto out;
    if (strcmp(h.codec, "segments")) {
        rfs_lu_fail(in, SM_ECORRUPT, "codec mismatch: actual codec '%s' vs expected 'segments'",
                    h.codec);
        goto out;
    }
    /* The checksum is verified first only for formats that have a footer
     * (Lucene 4.8+): report its error now. */
    if (rc && h.version >= 2) {
        sm_free(in);
        rfs_lu_commit_free(c);
        return rc;
    }
    rc = SM_OK;
    c->format = h.version;
    if (c->format < 0 || c->format > 10) {
        rfs_lu_fail(in, SM_EUNSUPPORTED,
                    "unsupported Lucene format segments version %d (supported 0..10)", c->format);
        goto out;
    }
    if (c->format >= 4) {
        char g[16];
        rfs_lu_read_header_id(in, &h);
        memcpy(c->id, h.id, RFS_LU_ID_LEN);
        c->has_id = true;
        rfs_lu_base36((uint64_t)gen, g, sizeof(g));
        if (!in->err && gen >= 0 && strcmp(h.suffix, g)) {
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: suffix '%s', expected '%s'", h.suffix, g);
            goto out;
        }
    }
    if (c->format >= 6)
        read_version3_vint(in, &c->lucene_version);
    if (c->format >= 7)
        c->created_major = rfs_lu_vint(in);
    c->version = rfs_lu_be64(in);
    c->counter = c->format >= 8 ? rfs_lu_vlong(in) : rfs_lu_be32(in);
    int32_t nseg = rfs_lu_be32(in);
    if (in->err)
        goto out;
    if (nseg < 0 || nseg > SEG_MAX_SEGMENTS || (uint64_t)nseg > rfs_lu_remaining(in)) {
        rfs_lu_fail(in, SM_ECORRUPT, "invalid segment count %d", nseg);
        goto out;
    }
    if (c->format >= 6 && nseg > 0) {
        struct rfs_lu_version minv;
        read_version3_vint(in, &minv);
    }
    if (nseg && !(c->seg = sm_calloc((size_t)nseg, sizeof(*c->seg)))) {
        rfs_lu_fail(in, SM_ENOMEM, "out of memory");
        goto out;
    }
    for (int32_t i = 0; i < nseg && !in->err; i++) {
        struct rfs_lu_segment *seg = &c->seg[i];
        c->n_seg++;
        seg->name = rfs_lu_string(in, NULL);
        if (!seg->name)
            break;
        if (seg->name[0] != '_' || strchr(seg->name, '/') || strchr(seg->name, '.')) {
            rfs_lu_fail(in, SM_ECORRUPT, "invalid segment name '%s'", seg->name);
            break;
        }
        if (c->format >= 4) {
            if (c->format <= 6) {
                uint8_t has_id = rfs_lu_byte(in);
                if (!in->err && has_id != 1) {
                    rfs_lu_fail(in, has_id == 0 ? SM_EUNSUPPORTED : SM_ECORRUPT,
                                has_id == 0 ? "segment %s is from Lucene 4.x (unsupported mix)"
                                            : "invalid segment id marker for %s",
                                seg->name);
                    break;
                }
            }
            rfs_lu_bytes(in, seg->id, RFS_LU_ID_LEN);
            seg->has_id = true;
        }
        seg->codec = rfs_lu_string(in, NULL);
        if (!seg->codec)
            break;
        if (c->format >= 4)
            read_seg5(in, c->format, seg);
        else
            read_seg4(in, c->format, seg);
    }
    if (in->err)
        goto out;
    rfs_lu_kv_read(in, c->format < 5, &c->user_data);
    if (c->format >= 2) {
        rfs_lu_check_footer_pos(in, NULL);
    } else {
        /* Lucene 4.0-4.7: Int64 checksum of everything before it */
        uint64_t end = rfs_lu_pos(in);
        int64_t stored = rfs_lu_be64(in);
        if (!in->err && rfs_lu_remaining(in))
            rfs_lu_fail(in, SM_ECORRUPT, "%llu trailing bytes after the checksum",
                        (unsigned long long)rfs_lu_remaining(in));
        if (!in->err) {
            uint8_t buf[4096];
            uint32_t crc = 0;
            for (uint64_t off = 0; off < end && !in->err;) {
                size_t n = (size_t)SM_MIN((uint64_t)sizeof(buf), end - off);
                if (rfs_blob_read_at(blob, off, buf, n))
                    rfs_lu_fail(in, SM_EIO, "read failed");
                crc = sm_crc32(crc, buf, n);
                off += n;
            }
            if (!in->err && (uint64_t)stored != crc)
                rfs_lu_fail(in, SM_ECORRUPT, "checksum failed (stored %08llx, computed %08x)",
                            (unsigned long long)stored, crc);
        }
    }
out:
    rc = rfs_lu_in_err(in, err, errlen);
    sm_free(in);
    if (rc) {
        rfs_lu_commit_free(c);
        return rc;
    }
    *out = c;
    return SM_OK;
}

/* .si */

static void read_version3_i32(struct rfs_lu_in *in, struct rfs_lu_version *v)
{
    v->major = rfs_lu_i32(in);
    v->minor = rfs_lu_i32(in);
    v->bugfix = rfs_lu_i32(in);
}

static void parse_version_string(struct rfs_lu_in *in, const char *s, struct rfs_lu_version *v)
{
    int32_t parts[3] = { 0, 0, 0 };
    int k = 0;
    const char *p = s;
    if (!*p)
        goto bad;
    while (k < 3) {
        int64_t x = 0;
        if (*p < '0' || *p > '9')
            goto bad;
        while (*p >= '0' && *p <= '9' && x < 100000)
            x = x * 10 + (*p++ - '0');
        parts[k++] = (int32_t)x;
        if (*p == '.')
            p++;
        else
            break;
    }
    v->major = parts[0];
    v->minor = parts[1];
    v->bugfix = parts[2];
    return;
bad:
    rfs_lu_fail(in, SM_ECORRUPT, "invalid Lucene version '%s'", s);
}

static void read_compound(struct rfs_lu_in *in, struct rfs_lu_segment *seg)
{
    uint8_t b = rfs_lu_byte(in);
    if (in->err)
        return;
    if (b == 1)
        seg->compound = true;
    else if (b == 0xff)
        seg->compound = false;
    else
        rfs_lu_fail(in, SM_ECORRUPT, "invalid isCompoundFile byte %u", b);
}

int rfs_lu_si_parse(struct rfs_blob *blob, const char *file, struct rfs_lu_segment *seg,
                    char *err, size_t errlen)
{
    struct rfs_lu_header h;
    bool footer = true;
    struct rfs_lu_in *in = sm_malloc(sizeof(*in));
    if (!in)
        return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", file);
    rfs_lu_in_init(in, blob, file);
    rfs_lu_read_header(in, &h);
    if (in->err)
        goto out;
    snprintf(seg->si_codec, sizeof(seg->si_codec), "%s", h.codec);
    seg->si_version = h.version;
    if (!strcmp(h.codec, "Lucene46SegmentInfo") || !strcmp(h.codec, "Lucene40SegmentInfo")) {
        /* Lucene 4.x: no id; the version is a String; maps/sets Int32-counted */
        bool v40 = h.codec[7] == '0';
        if (h.version < 0 || h.version > (v40 ? 0 : 1)) {
            rfs_lu_fail(in, SM_EUNSUPPORTED,
                        "unsupported Lucene format %s version %d (supported 0..%d)", h.codec,
                        h.version, v40 ? 0 : 1);
            goto out;
        }
        footer = !v40 && h.version >= 1;
        char *vs = rfs_lu_string(in, NULL);
        if (!vs)
            goto out;
        parse_version_string(in, vs, &seg->version);
        sm_free(vs);
        seg->max_doc = rfs_lu_be32(in);
        read_compound(in, seg);
        rfs_lu_kv_read(in, true, &seg->diagnostics);
        if (v40)
            rfs_lu_kv_read(in, true, &seg->attributes);
        rfs_lu_set_read(in, true, &seg->files);
        if (v40 && !in->err) {
            if (rfs_lu_remaining(in))
                rfs_lu_fail(in, SM_ECORRUPT, "trailing bytes after segment info");
            goto out;
        }
        seg->le = false;
    } else {
        int maxv;
        int kind;   /* 50, 62, 70, 86, 90 */
        if (!strcmp(h.codec, "Lucene50SegmentInfo"))
            kind = 50, maxv = 1;
        else if (!strcmp(h.codec, "Lucene62SegmentInfo"))
            kind = 62, maxv = 1;
        else if (!strcmp(h.codec, "Lucene70SegmentInfo"))
            kind = 70, maxv = 0;
        else if (!strcmp(h.codec, "Lucene86SegmentInfo"))
            kind = 86, maxv = 0;
        else if (!strcmp(h.codec, "Lucene90SegmentInfo"))
            kind = 90, maxv = 0;
        else {
            rfs_lu_fail(in, SM_EUNSUPPORTED, "unsupported Lucene segment info format %s version %d",
                        h.codec, h.version);
            goto out;
        }
        if (h.version < 0 || h.version > maxv) {
            rfs_lu_fail(in, SM_EUNSUPPORTED,
                        "unsupported Lucene format %s version %d (supported 0..%d)", h.codec,
                        h.version, maxv);
            goto out;
        }
        rfs_lu_read_header_id(in, &h);
        if (in->err)
            goto out;
        if (seg->has_id && memcmp(h.id, seg->id, RFS_LU_ID_LEN)) {
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: segment id differs from segments_N");
            goto out;
        }
        if (h.suffix[0]) {
            rfs_lu_fail(in, SM_ECORRUPT, "file mismatch: suffix '%s', expected ''", h.suffix);
            goto out;
        }
        in->le = kind >= 90;
        seg->le = in->le;
        read_version3_i32(in, &seg->version);
        if (kind >= 70) {
            uint8_t has_min = rfs_lu_byte(in);
            if (has_min == 1) {
                read_version3_i32(in, &seg->min_version);
                seg->has_min_version = true;
            } else if (has_min != 0 && !in->err) {
                rfs_lu_fail(in, SM_ECORRUPT, "invalid hasMinVersion byte %u", has_min);
            }
        }
        seg->max_doc = rfs_lu_i32(in);
        read_compound(in, seg);
        if (kind >= 90 && rfs_lu_version_cmp(seg->version, 9, 9, 0) >= 0) {
            uint8_t b = rfs_lu_byte(in);
            if (!in->err && b != 1 && b != 0xff)
                rfs_lu_fail(in, SM_ECORRUPT, "invalid hasBlocks byte %u", b);
            seg->has_blocks = b == 1;
        }
        bool old_maps = kind == 50 && h.version == 0;
        rfs_lu_kv_read(in, old_maps, &seg->diagnostics);
        rfs_lu_set_read(in, old_maps, &seg->files);
        rfs_lu_kv_read(in, old_maps, &seg->attributes);
        /* Lucene62+: IndexSort follows; not needed (its encoding varies by
         * sort type). The checksum below covers the whole file. */
        if (kind == 50 && !in->err)
            rfs_lu_check_footer_pos(in, NULL);
    }
    if (!in->err && seg->max_doc < 0)
        rfs_lu_fail(in, SM_ECORRUPT, "invalid document count %d", seg->max_doc);
out:;
    int rc = rfs_lu_in_err(in, err, errlen);
    sm_free(in);
    if (rc)
        return rc;
    if (footer)
        rc = rfs_lu_verify_checksum(blob, file, err, errlen);
    return rc;
}

/* Latest commit */

static bool parse_segments_gen(const char *name, int64_t *gen)
{
    if (strncmp(name, "segments_", 9))
        return false;
    const char *p = name + 9;
    if (!*p || strlen(p) > 12)
        return false;
    int64_t v = 0;
    for (; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'z')
            d = *p - 'a' + 10;
        else
            return false;
        v = v * 36 + d;
    }
    *gen = v;
    return true;
}

int rfs_lu_commit_read(struct rfs_dir *dir, struct rfs_lu_commit **out, char *err,
                       size_t errlen)
{
    struct sm_strlist names = { 0 };
    struct rfs_blob *blob = NULL;
    struct rfs_lu_commit *c = NULL;
    char file[64];
    *out = NULL;
    int rc = rfs_dir_list(dir, "", &names);
    if (rc) {
        sm_strlist_free(&names);
        return sm_errf(err, errlen, rc, "%s: cannot list: %s", dir->desc ? dir->desc : "dir",
                       sm_strerror(rc));
    }
    int64_t best = -1;
    for (size_t i = 0; i < names.n; i++) {
        int64_t g;
        if (parse_segments_gen(names.v[i], &g) && g > best)
            best = g;
    }
    sm_strlist_free(&names);
    if (best < 0)
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: no segments_N file (not a Lucene index)",
                       dir->desc ? dir->desc : "dir");
    char g36[16];
    snprintf(file, sizeof(file), "segments_%s", rfs_lu_base36((uint64_t)best, g36, sizeof(g36)));
    if ((rc = rfs_dir_open(dir, file, &blob, err, errlen)))
        return rc;
    rc = rfs_lu_segments_parse(blob, file, best, &c, err, errlen);
    rfs_blob_close(blob);
    blob = NULL;
    if (rc)
        return rc;
    for (size_t i = 0; i < c->n_seg; i++) {
        struct rfs_lu_segment *seg = &c->seg[i];
        char si[300];
        if (!strcmp(seg->codec, "Lucene3x")) {
            rc = sm_errf(err, errlen, SM_EUNSUPPORTED,
                         "%s: segment %s was written by Lucene 3.x (codec Lucene3x, an index created "
                         "by Elasticsearch 0.90 or earlier): unsupported Lucene format",
                         file, seg->name);
            goto fail;
        }
        snprintf(si, sizeof(si), "%s.si", seg->name);
        if ((rc = rfs_dir_open(dir, si, &blob, err, errlen)))
            goto fail;
        rc = rfs_lu_si_parse(blob, si, seg, err, errlen);
        rfs_blob_close(blob);
        if (rc)
            goto fail;
        if (seg->del_count < 0 || seg->soft_del_count < 0 ||
            (int64_t)seg->del_count + seg->soft_del_count > seg->max_doc) {
            rc = sm_errf(err, errlen, SM_ECORRUPT,
                         "%s: deletion counts %d + %d exceed maxDoc %d of %s", file,
                         seg->del_count, seg->soft_del_count, seg->max_doc, seg->name);
            goto fail;
        }
    }
    *out = c;
    return SM_OK;
fail:
    rfs_lu_commit_free(c);
    return rc;
}
