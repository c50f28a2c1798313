/* Coordination index access: documents with optimistic concurrency.
 * Internal to the backfill (docs/backfill.md, "Coordination index"). */
#ifndef RFS_BACKFILL_COORD_H
#define RFS_BACKFILL_COORD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sm_http_client;

struct rfs_coord {
    struct sm_http_client *c;   /* borrowed */
    const char *index;
    bool typed;                 /* ES <= 6 target: mappings wrapped in "_doc" */
};

struct rfs_target_info {
    char version[32];           /* "2.11.0" */
    bool opensearch;
    int major;
    bool typed;                 /* documents need _type (Elasticsearch <= 6) */
};

/* GET / on the target. */
int rfs_target_info(struct sm_http_client *c, struct rfs_target_info *out, char *err, size_t errlen);

/* Creates the coordination index (keyword fields, 1 shard) unless it exists. */
int rfs_coord_ensure(struct rfs_coord *co, char *err, size_t errlen);
/* SM_ENOTFOUND when absent (or when the index is absent). */
int rfs_coord_get(struct rfs_coord *co, const char *id, json_t **src, int64_t *seq, int64_t *term, char *err,
                  size_t errlen);
/* op_type=create: SM_OK, SM_ECONFLICT when the document exists already. */
int rfs_coord_create(struct rfs_coord *co, const char *id, json_t *src, char *err, size_t errlen);
/* Replaces the document if (seq, term) still match; SM_ECONFLICT otherwise.
 * seq and term receive the new values. */
int rfs_coord_replace(struct rfs_coord *co, const char *id, json_t *src, int64_t *seq, int64_t *term, char *err,
                      size_t errlen);
int rfs_coord_refresh(struct rfs_coord *co, char *err, size_t errlen);
/* Deletes the coordination index; SM_ENOTFOUND when it does not exist. */
int rfs_coord_delete_index(struct rfs_coord *co, char *err, size_t errlen);
/* _search with body; *hits = hits.hits array (new reference). */
int rfs_coord_search(struct rfs_coord *co, json_t *body, json_t **hits, char *err, size_t errlen);
/* The same, the whole response (aggregations, hits.total); *resp NULL on error. */
int rfs_coord_search_raw(struct rfs_coord *co, json_t *body, json_t **resp, char *err, size_t errlen);
/* _count with query (borrowed). */
int rfs_coord_count(struct rfs_coord *co, json_t *query, int64_t *count, char *err, size_t errlen);

#endif
