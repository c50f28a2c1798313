/* A stored _source as one line of JSON: what `docs` prints and what backfill
 * sends in _bulk bodies. JSON is copied verbatim except that CR/LF bytes
 * (whitespace between tokens in valid JSON) become spaces, so a document stays
 * on one line; SMILE and CBOR are converted; legacy LZF-compressed sources
 * (ES 1.x `_source.compress`) are inflated first. */
#ifndef RFS_REPO_SOURCE_JSON_H
#define RFS_REPO_SOURCE_JSON_H
#include <stddef.h>
#include <stdint.h>

#include <sm/buf.h>

/* Largest decompressed LZF _source accepted. */
#define RFS_SOURCE_MAX ((size_t)512 << 20)

/* Appends _source (content type ctype, an RFS_ES_CT_* of lucene/esdoc.h) to
 * out. SM_OK, SM_EUNSUPPORTED for content types without a converter,
 * SM_ECORRUPT/SM_EPROTO for bad SMILE/CBOR/LZF, SM_EFULL/SM_ENOMEM; err says
 * why. On error out may hold a partial line (callers reset it). */
int rfs_source_append_json(struct sm_buf *out, const uint8_t *p, size_t n, int ctype, char *err, size_t errlen);

#endif
