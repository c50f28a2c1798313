/* ES document layer: _id/_uid/_routing/_source from stored fields. */
#include "lucene/esdoc.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <stdio.h>
#include <string.h>

#define ES_ID_BUF 4096

int rfs_es_content_type(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == 'Z' && p[1] == 'V')
        return RFS_ES_CT_LZF;
    if (n >= 3 && p[0] == ':' && p[1] == ')' && p[2] == '\n')
        return RFS_ES_CT_SMILE;
    if (n >= 3 && p[0] == 0xd9 && p[1] == 0xd9 && p[2] == 0xf7)
        return RFS_ES_CT_CBOR;
    if (n >= 1 && p[0] >= 0xa0 && p[0] <= 0xbf)
        return RFS_ES_CT_CBOR;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i < n && p[i] == '{')
        return RFS_ES_CT_JSON;
    if (n - i >= 3 && !memcmp(p + i, "---", 3))
        return RFS_ES_CT_YAML;
    return RFS_ES_CT_UNKNOWN;
}

const char *rfs_es_content_type_name(int ctype)
{
    switch (ctype) {
    case RFS_ES_CT_JSON: return "json";
    case RFS_ES_CT_SMILE: return "smile";
    case RFS_ES_CT_CBOR: return "cbor";
    case RFS_ES_CT_YAML: return "yaml";
    case RFS_ES_CT_LZF: return "lzf";
    default: return "unknown";
    }
}

int rfs_es_decode_id(const uint8_t *b, size_t n, char *out, size_t outcap, size_t *outlen)
{
    if (n == 0)
        return SM_ECORRUPT;
    if (outcap < 2 * n + 4)
        return SM_EFULL;
    size_t o = 0;
    if (b[0] == 0xfe) {
        /* numeric: two decimal digits per byte, 0xF low nibble ends an odd id */
        if (n < 2)
            return SM_ECORRUPT;
        for (size_t i = 1; i < n; i++) {
            unsigned hi = b[i] >> 4, lo = b[i] & 0x0f;
            if (hi > 9)
                return SM_ECORRUPT;
            out[o++] = (char)('0' + hi);
            if (lo == 0x0f) {
                if (i != n - 1)
                    return SM_ECORRUPT;
                break;
            }
            if (lo > 9)
                return SM_ECORRUPT;
            out[o++] = (char)('0' + lo);
        }
    } else if (b[0] == 0xff) {
        if (n < 2 || memchr(b + 1, 0, n - 1))
            return SM_ECORRUPT;
        memcpy(out, b + 1, n - 1);
        o = n - 1;
    } else if (b[0] == 0xfd) {
        if (n < 2)
            return SM_ECORRUPT;
        o = sm_base64url_encode(b + 1, n - 1, out);
    } else {
        o = sm_base64url_encode(b, n, out);
    }
    out[o] = 0;
    *outlen = o;
    return SM_OK;
}

static const struct rfs_lucene_field *field(const struct rfs_lucene_doc *d, const char *name)
{
    return rfs_lucene_doc_field(d, name);
}

static bool is_bytes(const struct rfs_lucene_field *f)
{
    return f->type == RFS_LUCENE_STRING || f->type == RFS_LUCENE_BINARY;
}

int rfs_esdoc_from_lucene(const struct rfs_lucene_doc *ld, struct rfs_esdoc *out, char *idbuf,
                          size_t idcap, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->lucene = ld;
    const struct rfs_lucene_field *id = field(ld, "_id");
    const struct rfs_lucene_field *uid = field(ld, "_uid");
    if (id && is_bytes(id)) {
        if (id->type == RFS_LUCENE_BINARY) {
            int rc = rfs_es_decode_id(id->bytes, id->len, idbuf, idcap, &out->id_len);
            if (rc)
                return sm_errf(err, errlen, SM_ECORRUPT,
                               "segment %s doc %d: malformed _id (%zu bytes)", ld->seg_name,
                               ld->doc, id->len);
        } else {
            if (id->len == 0 || id->len + 1 > idcap || memchr(id->bytes, 0, id->len))
                return sm_errf(err, errlen, SM_ECORRUPT, "segment %s doc %d: malformed _id",
                               ld->seg_name, ld->doc);
            memcpy(idbuf, id->bytes, id->len);
            idbuf[id->len] = 0;
            out->id_len = id->len;
        }
        out->id = idbuf;
    } else if (uid && is_bytes(uid)) {
        const uint8_t *hash = memchr(uid->bytes, '#', uid->len);
        if (!hash || hash == uid->bytes)
            return sm_errf(err, errlen, SM_ECORRUPT,
                           "segment %s doc %d: malformed _uid (no '<type>#')", ld->seg_name,
                           ld->doc);
        size_t tl = (size_t)(hash - uid->bytes), il = uid->len - tl - 1;
        if (il == 0 || tl + il + 2 > idcap || memchr(uid->bytes, 0, uid->len))
            return sm_errf(err, errlen, SM_ECORRUPT, "segment %s doc %d: malformed _uid",
                           ld->seg_name, ld->doc);
        /* idbuf = "<id>\0<type>\0" */
        memcpy(idbuf, hash + 1, il);
        idbuf[il] = 0;
        memcpy(idbuf + il + 1, uid->bytes, tl);
        idbuf[il + 1 + tl] = 0;
        out->id = idbuf;
        out->id_len = il;
        out->type = idbuf + il + 1;
        out->type_len = tl;
    } else {
        return SM_ENOTFOUND;
    }
    const struct rfs_lucene_field *r = field(ld, "_routing");
    if (r && is_bytes(r)) {
        out->routing = (const char *)r->bytes;
        out->routing_len = r->len;
    }
    const struct rfs_lucene_field *s = field(ld, "_source");
    if (!s || !is_bytes(s)) {
        s = field(ld, "_recovery_source");
        if (s && is_bytes(s))
            out->recovery_source = true;
        else
            s = NULL;
    }
    if (s) {
        out->source = s->bytes;
        out->source_len = s->len;
        out->content_type = rfs_es_content_type(s->bytes, s->len);
    }
    return SM_OK;
}

struct rfs_es_iter {
    struct rfs_lucene_iter *lit;
    struct rfs_esdoc doc;
    struct rfs_es_iter_stats stats;
    bool yield_sourceless;
    char idbuf[ES_ID_BUF];
};

int rfs_es_iter_open(struct rfs_lucene_index *idx, size_t seg, int doc, struct rfs_es_iter **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    struct rfs_es_iter *it = sm_calloc(1, sizeof(*it));
    if (!it)
        return sm_errf(err, errlen, SM_ENOMEM, "out of memory");
    int rc = rfs_lucene_iter_open(idx, seg, doc, &it->lit, err, errlen);
    if (rc) {
        sm_free(it);
        return rc;
    }
    *out = it;
    return SM_OK;
}

int rfs_es_iter_next(struct rfs_es_iter *it, const struct rfs_esdoc **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    for (;;) {
        const struct rfs_lucene_doc *ld;
        int rc = rfs_lucene_iter_next(it->lit, &ld, err, errlen);
        if (rc || !ld)
            return rc;
        rc = rfs_esdoc_from_lucene(ld, &it->doc, it->idbuf, sizeof(it->idbuf), err, errlen);
        if (rc == SM_ENOTFOUND) {
            it->stats.no_id++;
            continue;
        }
        if (rc)
            return rc;
        if (!it->doc.source) {
            it->stats.no_source++;
            if (!it->yield_sourceless)
                continue;
            *out = &it->doc;
            return SM_OK;
        }
        if (it->doc.recovery_source)
            it->stats.recovery_source++;
        it->stats.docs++;
        *out = &it->doc;
        return SM_OK;
    }
}

void rfs_es_iter_yield_sourceless(struct rfs_es_iter *it, bool on)
{
    it->yield_sourceless = on;
}

void rfs_es_iter_limit(struct rfs_es_iter *it, size_t end_seg)
{
    rfs_lucene_iter_limit(it->lit, end_seg);
}

int rfs_es_iter_finish_checksum(struct rfs_es_iter *it, char *err, size_t errlen)
{
    return rfs_lucene_iter_finish_checksum(it->lit, err, errlen);
}

void rfs_es_iter_stats(const struct rfs_es_iter *it, struct rfs_es_iter_stats *out)
{
    *out = it->stats;
    rfs_lucene_iter_stats(it->lit, &out->lucene);
}

void rfs_es_iter_close(struct rfs_es_iter *it)
{
    if (!it)
        return;
    rfs_lucene_iter_close(it->lit);
    sm_free(it);
}
