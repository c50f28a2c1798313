/* Elasticsearch/OpenSearch document layer over the Lucene iterator:
 * turns a live Lucene document's stored fields into {_id, _type, _routing,
 * _source}, and skips what is not a top-level document.
 *
 * Stored fields used (docs/lucene.md, "ES document layer"):
 *   _id      BYTES: Uid-encoded id (indices created by ES 6.0+, all OpenSearch)
 *            STRING: plain id (ES 5.6 single-type indices)
 *   _uid     STRING "<type>#<id>" (indices created by ES <= 5.x), split at the
 *            first '#'
 *   _routing STRING
 *   _source  BYTES, exactly as stored; _recovery_source BYTES is the fallback
 *            when _source is absent (ES 6.5+/OS with _source disabled/filtered)
 * Skipped: documents without a stored _id/_uid (nested children, which are
 * indexed before their root in the same block); counted in the stats.
 * Documents with an id but neither _source nor _recovery_source are skipped
 * and counted (no_source): they cannot be re-indexed from stored fields. */
#ifndef RFS_LUCENE_ESDOC_H
#define RFS_LUCENE_ESDOC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lucene/lucene.h"

enum rfs_es_ctype {
    RFS_ES_CT_UNKNOWN = 0,
    RFS_ES_CT_JSON,          /* first non-whitespace byte '{' */
    RFS_ES_CT_SMILE,         /* ":)\n" */
    RFS_ES_CT_CBOR,          /* major type 5 (0xa0..0xbf), or self-describe tag 0xd9d9f7 */
    RFS_ES_CT_YAML,          /* "---" */
    RFS_ES_CT_LZF,           /* "ZV": ES 1.x compressed _source (decompress, then sniff again) */
};
/* Content type of a _source by its first bytes. */
int rfs_es_content_type(const uint8_t *p, size_t n);
const char *rfs_es_content_type_name(int ctype);   /* "json", "smile", ... */

/* Decodes an ES 6+ Uid-encoded _id (numeric 0xFE, UTF-8 0xFF, escaped
 * base64 0xFD, else base64url of all bytes) into out (NUL-terminated).
 * out needs at least 2 * n + 4 bytes. Returns SM_OK, SM_ECORRUPT for an
 * empty or malformed id, SM_EFULL when out is too small. */
int rfs_es_decode_id(const uint8_t *b, size_t n, char *out, size_t outcap, size_t *outlen);

struct rfs_esdoc {
    const char *id;              /* NUL-terminated (ids may not contain NUL) */
    size_t id_len;
    const char *type;            /* from _uid (ES <= 5.x indices), else NULL */
    size_t type_len;
    const char *routing;         /* NULL when none; NOT NUL-terminated */
    size_t routing_len;
    const uint8_t *source;       /* never NULL for documents the iterator yields */
    size_t source_len;
    bool recovery_source;        /* source came from _recovery_source */
    int content_type;            /* enum rfs_es_ctype */
    const struct rfs_lucene_doc *lucene;    /* position and all stored fields */
};

/* Extracts the ES fields of one Lucene document. idbuf (idcap bytes, 2048
 * suffice for any valid ES id) receives the decoded id; out borrows from
 * ldoc and idbuf. Returns SM_OK, SM_ENOTFOUND when the document has no
 * stored _id/_uid (nested child), SM_ECORRUPT for a malformed id/_uid (err
 * names segment and doc). out->source is NULL when neither _source nor
 * _recovery_source is stored. */
int rfs_esdoc_from_lucene(const struct rfs_lucene_doc *ldoc, struct rfs_esdoc *out, char *idbuf,
                          size_t idcap, char *err, size_t errlen);

struct rfs_es_iter;

struct rfs_es_iter_stats {
    uint64_t docs;               /* yielded */
    uint64_t no_id;              /* live Lucene docs without _id/_uid (nested children) */
    uint64_t no_source;          /* with an id but no _source/_recovery_source */
    uint64_t recovery_source;    /* yielded from _recovery_source */
    struct rfs_lucene_iter_stats lucene;
};

/* Iterates the documents to re-index from (seg, doc) on (see
 * rfs_lucene_iter_open for resuming). idx must outlive the iterator. */
int rfs_es_iter_open(struct rfs_lucene_index *idx, size_t seg, int doc, struct rfs_es_iter **out,
                     char *err, size_t errlen);
/* See rfs_lucene_iter_limit. */
void rfs_es_iter_limit(struct rfs_es_iter *it, size_t end_seg);
/* Also yield documents with an id but no source (source NULL; still counted
 * in no_source), for callers that must account for each of them. */
void rfs_es_iter_yield_sourceless(struct rfs_es_iter *it, bool on);
/* See rfs_lucene_iter_finish_checksum. */
int rfs_es_iter_finish_checksum(struct rfs_es_iter *it, char *err, size_t errlen);
/* *out = next document (borrowed until the next call), or NULL at the end. */
int rfs_es_iter_next(struct rfs_es_iter *it, const struct rfs_esdoc **out, char *err,
                     size_t errlen);
void rfs_es_iter_stats(const struct rfs_es_iter *it, struct rfs_es_iter_stats *out);
void rfs_es_iter_close(struct rfs_es_iter *it);    /* NULL-safe */

#endif
