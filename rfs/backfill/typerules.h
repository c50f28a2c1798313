/* Type rules of the metadata migration applied by the backfill
 * (`--metadata-report FILE`, docs/backfill.md "Type rules").
 *
 * The report of `searchmig-rfs metadata evaluate|migrate --report FILE`
 * holds `type_rules`: per source index a mode (none/drop/keep/union/split)
 * and, per source type, the target index and type (null: typeless). Its
 * index items' `body.mappings` are the target mappings: their boolean fields
 * are where ES 1.x/2.x documents may hold "on"/"off"/"yes"/"no"/"1"/"0"/0/1,
 * which 6.0+ targets reject. Read-only after loading: shared by all workers. */
#ifndef RFS_BACKFILL_TYPERULES_H
#define RFS_BACKFILL_TYPERULES_H
#include <stdbool.h>
#include <stddef.h>

#include "backfill/bulk.h"

struct rfs_typerules;

/* Loads the report. coerce_all: coerce legacy booleans in every boolean
 * field of the report's indices; otherwise only in indices whose report
 * item notes boolean fields (the lenient_booleans rule fired). */
int rfs_typerules_load(const char *path, bool coerce_all, struct rfs_typerules **out, char *err, size_t errlen);
void rfs_typerules_free(struct rfs_typerules *tr);

/* Where a document of source index/type goes. type may be NULL (typeless
 * source). Returns false when the report has no rule for the index (the
 * backfill's defaults apply). *tindex: target index; *ttype: the type to
 * send to a typed target, NULL for typeless. Strings belong to tr. */
bool rfs_typerules_lookup(const struct rfs_typerules *tr, const char *index, const char *type, const char **tindex,
                          const char **ttype);

/* Counts of source indices with a rule, of target indices with boolean
 * fields to coerce (for a log line). */
void rfs_typerules_counts(const struct rfs_typerules *tr, size_t *rules, size_t *coerce_indices);

/* The last document appended to b went to target index tindex: when that
 * index has boolean fields to coerce and the source holds legacy spellings
 * there, the source line is re-serialised with true/false (only then).
 * *changed says whether it was. Errors: SM_ENOMEM (b unchanged). */
int rfs_typerules_coerce_last(const struct rfs_typerules *tr, const char *tindex, struct rfs_bulk_batch *b,
                              bool *changed);

#endif
