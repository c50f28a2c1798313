/* Lucene stored fields (.fdt/.fdx/.fdm) reader: every generation from
 * Lucene41StoredFieldsData (Lucene 4.1-4.10, ES 1.x) to Lucene90StoredFields
 * (Lucene 9/10) plus the ES/OpenSearch zstd variants. See docs/stored-fields.md.
 *
 * The reader streams: it decompresses one chunk at a time, so memory is
 * bounded by the largest chunk (a document larger than the chunk size is one
 * "sliced" chunk and is held whole). Documents visited in increasing order
 * cost one decompression per chunk; visiting a document before the current
 * chunk restarts from the first chunk (or seeks with .fdx/.fdm when given).
 *
 * Format is decided from the .fdt index header (codec name + version), never
 * from product versions. Unknown codecs fail with SM_EUNSUPPORTED. */
#ifndef RFS_LUCENE_STOREDFIELDS_H
#define RFS_LUCENE_STOREDFIELDS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rfs_blob;
struct rfs_sf_reader;

/* Stored-field value types, as encoded in the low 3 bits of InfoAndBits. */
enum rfs_sf_type {
    RFS_SF_STRING = 0,  /* bytes = UTF-8 (not NUL-terminated) */
    RFS_SF_BYTES  = 1,  /* bytes = binary (ES _source, _id) */
    RFS_SF_INT    = 2,  /* ival */
    RFS_SF_FLOAT  = 3,  /* dval (float widened) */
    RFS_SF_LONG   = 4,  /* ival */
    RFS_SF_DOUBLE = 5,  /* dval */
};

/* Opens a segment's stored fields.
 *   fdt:    required. The .fdt blob (a window of the .cfs when compound).
 *   fdx:    optional (may be NULL): enables seeking to a chunk instead of
 *           decoding forward; sequential reading never needs it.
 *   fdm:    required for Lucene87 and Lucene90 formats and later (.fdm holds ChunkSize,
 *           needed to split sliced chunks); NULL for Lucene 4-8.6 formats
 *           (Lucene41, Lucene50 v0-v2).
 *   seg_id: 16-byte segment id checked against the index headers; NULL skips
 *           the check (Lucene 4 headers have no id).
 *   suffix: segment suffix checked against the headers (NULL or "" = none).
 *   max_doc: documents in the segment (from .si).
 * The blobs are borrowed: they must outlive the reader. On success *out
 * owns all reader memory; free it with rfs_sf_close(). err names the file
 * (blob->name) on failure. */
int rfs_sf_open(struct rfs_blob *fdt, struct rfs_blob *fdx, struct rfs_blob *fdm,
                const uint8_t *seg_id, const char *suffix, int max_doc,
                struct rfs_sf_reader **out, char *err, size_t errlen);

/* Called once per stored field of a document, in the order the fields were
 * added. bytes/len are valid for STRING and BYTES only and point into the
 * reader's chunk buffer: borrowed for the duration of the call (copy them to
 * keep them). ival is set for INT/LONG, dval for FLOAT/DOUBLE.
 * Return 0 to continue, > 0 to stop visiting this document (rfs_sf_document
 * then returns SM_OK), < 0 (an enum sm_err) to abort: rfs_sf_document
 * returns that value. */
typedef int (*rfs_sf_visit_fn)(void *arg, int field_number, int type,
                               const uint8_t *bytes, size_t len, int64_t ival, double dval);

/* Visits the stored fields of document doc (0 <= doc < max_doc). Returns
 * SM_OK, SM_EINVAL for doc out of range, SM_ECORRUPT/SM_EEOF for damaged
 * data (err names the .fdt blob and the chunk), SM_EUNSUPPORTED, SM_ENOMEM,
 * SM_EIO, or the callback's negative return. After a data error the reader
 * stays usable only for documents in later chunks when .fdx was given. */
int rfs_sf_document(struct rfs_sf_reader *r, int doc, rfs_sf_visit_fn fn, void *arg,
                    char *err, size_t errlen);

/* Raw serialized bytes of doc (the field records of 7.5), borrowed until the
 * next call on r; *nfields receives the stored-field count. For callers that
 * want to parse lazily or hash documents. */
int rfs_sf_document_raw(struct rfs_sf_reader *r, int doc, const uint8_t **bytes, size_t *len,
                        int *nfields, char *err, size_t errlen);

/* Verifies the .fdt CRC32 footer. The reader computes the CRC of the file
 * prefix it streamed through sequentially, so after a full in-order pass only
 * the unread tail (trailer, footer) is read here; otherwise the rest of the
 * file is read now. Callers that already verified the file need not call it.
 * SM_OK, SM_ECORRUPT ("<file>: checksum failed (stored .., computed ..)"),
 * SM_EIO, or SM_EUNSUPPORTED for Lucene 4.0-4.7 files without a footer.
 * Documents returned before a failed check came from a damaged file. */
int rfs_sf_verify_checksum(struct rfs_sf_reader *r, char *err, size_t errlen);
/* True when the reader streams the CRC (the file has a footer and its header
 * was read at open): rfs_sf_verify_checksum() can then end a sequential pass
 * without reading the file again. */
bool rfs_sf_checksum_streamed(const struct rfs_sf_reader *r);

/* Informational. */
const char *rfs_sf_codec(const struct rfs_sf_reader *r);   /* ".fdt" codec name */
int rfs_sf_version(const struct rfs_sf_reader *r);         /* ".fdt" header version */
int rfs_sf_max_doc(const struct rfs_sf_reader *r);
/* Bytes of decompressed document data produced so far (benchmarks). */
uint64_t rfs_sf_bytes_decoded(const struct rfs_sf_reader *r);

/* NULL-safe. Does not close the blobs. */
void rfs_sf_close(struct rfs_sf_reader *r);

/* Numeric value encodings of the serialized document, per format family. */
enum rfs_sf_numenc {
    RFS_SF_NUM_FIXED_BE = 0,  /* Lucene41: Int32/Int64 BE, float/double as raw bits */
    RFS_SF_NUM_Z_BE     = 1,  /* Lucene50/87: ZInt, ZFloat, TLong, ZDouble; BE fixed parts */
    RFS_SF_NUM_Z_LE     = 2,  /* Lucene90 and later: same with LE fixed parts */
};

/* Serialized-document walker used by rfs_sf_document; exposed for tests and
 * fuzzing. numenc: enum rfs_sf_numenc. Returns SM_OK, SM_ECORRUPT (err says
 * which field), or the callback's negative return. */
int rfs_sf_parse_doc(const uint8_t *p, size_t len, int nfields, int numenc, rfs_sf_visit_fn fn,
                     void *arg, char *err, size_t errlen);

#endif
