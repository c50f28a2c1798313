#include "repo/source_json.h"

#include "lucene/esdoc.h"
#include "repo/cbor_json.h"
#include "repo/codec.h"
#include "smile/smile.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <string.h>

static int append_json_line(struct sm_buf *b, const uint8_t *p, size_t n)
{
    if (!memchr(p, '\n', n) && !memchr(p, '\r', n))
        return sm_buf_append(b, p, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n' && p[i] != '\r')
            continue;
        int rc = sm_buf_append(b, p + run, i - run);
        if (!rc)
            rc = sm_buf_append(b, " ", 1);
        if (rc)
            return rc;
        run = i + 1;
    }
    return sm_buf_append(b, p + run, n - run);
}

static int append_source(struct sm_buf *out, const uint8_t *p, size_t n, int ctype, int depth, char *err,
                         size_t errlen)
{
    switch (ctype) {
    case RFS_ES_CT_JSON:
        return append_json_line(out, p, n);
    case RFS_ES_CT_SMILE:
        return rfs_smile_to_json(p, n, NULL, out, err, errlen);
    case RFS_ES_CT_CBOR:
        return rfs_cbor_to_json(p, n, out, err, errlen);
    case RFS_ES_CT_LZF: {
        if (depth)
            return sm_errf(err, errlen, SM_ECORRUPT, "nested LZF _source");
        uint8_t *d = NULL;
        size_t dn = 0;
        int rc = rfs_codec_decompress(p, n, RFS_SOURCE_MAX, &d, &dn, "_source", err, errlen);
        if (!rc)
            rc = append_source(out, d, dn, rfs_es_content_type(d, dn), depth + 1, err, errlen);
        sm_free(d);
        return rc;
    }
    default:
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "_source content type %s is not supported",
                       rfs_es_content_type_name(ctype));
    }
}

int rfs_source_append_json(struct sm_buf *out, const uint8_t *p, size_t n, int ctype, char *err, size_t errlen)
{
    return append_source(out, p, n, ctype, 0, err, errlen);
}
