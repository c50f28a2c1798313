/* Lucene doc values (.dvm/.dvd), only what a document reader needs: the set
 * of documents that have a value in one NUMERIC field - the soft-deletes field
 * `__soft_deletes` (a doc is soft-deleted iff it has a value). Formats:
 * Lucene70DocValues, Lucene80DocValues v0-v2, Lucene90DocValues (Lucene 9/10),
 * including doc-values update generations (_<seg>_<gen>_Lucene80_0.dvm).
 * See docs/stored-fields.md ("Doc values"). */
#ifndef RFS_LUCENE_DOCVALUES_H
#define RFS_LUCENE_DOCVALUES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rfs_blob;

/* Per-field facts the .dvm grammar depends on but does not store itself:
 * flags for field number n, from the field infos (.fnm). */
enum rfs_dv_field_flag {
    /* Lucene80DocValuesFormat v2: field attribute
     * "Lucene80DocValuesFormat.mode" == "BEST_COMPRESSION" (BINARY fields). */
    RFS_DV_F_BINARY_COMPRESSED = 1u << 0,
    /* Lucene 10: FieldInfo DocValuesSkipIndexType != NONE. */
    RFS_DV_F_SKIP_INDEX = 1u << 1,
};
typedef unsigned (*rfs_dv_field_flags_fn)(void *arg, int field_number);

/* A set of doc ids of one segment: bit d of words[d >> 6] (d & 63). */
struct rfs_dv_docset {
    uint64_t *words;     /* ceil(max_doc / 64) words, sm_malloc'd */
    int max_doc;
    int count;           /* number of set bits */
};

/* Finds NUMERIC field field_number in dvm (walking earlier entries of any
 * type) and returns the documents that have a value.
 *   dvm, dvd: the field's .dvm/.dvd (base files, possibly inside the .cfs, or
 *             a doc-values update generation): borrowed.
 *   seg_id:   16-byte segment id checked against both headers (NULL: skip).
 *   suffix:   header suffix: "<fmt>_<sfx>" ("Lucene80_0") or, for update
 *             generations, "<gen36>_<fmt>_<sfx>" ("2_Lucene80_0"); NULL: skip.
 *   flags_fn: per-field flags (may be NULL: no flags for any field).
 * On SM_OK *out is filled (free with rfs_dv_docset_free). SM_ENOTFOUND if the
 * field is absent, SM_EPROTO if it is not NUMERIC, SM_ECORRUPT/SM_EEOF for
 * damaged files, SM_EUNSUPPORTED for unknown codecs; err names the file. */
int rfs_dv_numeric_docs(struct rfs_blob *dvm, struct rfs_blob *dvd, const uint8_t *seg_id,
                        const char *suffix, int field_number, int max_doc,
                        rfs_dv_field_flags_fn flags_fn, void *flags_arg,
                        struct rfs_dv_docset *out, char *err, size_t errlen);

static inline bool rfs_dv_docset_has(const struct rfs_dv_docset *s, int doc)
{
    return s->words && doc >= 0 && doc < s->max_doc &&
           ((s->words[(unsigned)doc >> 6] >> ((unsigned)doc & 63)) & 1);
}

/* Frees words; NULL-safe; leaves *s zeroed. */
void rfs_dv_docset_free(struct rfs_dv_docset *s);

#endif
