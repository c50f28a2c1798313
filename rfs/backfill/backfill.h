/* Backfill: every live document of a snapshot into a target cluster, with
 * any number of workers coordinated through an index on the target
 * (docs/backfill.md has the design: work items, leases, checkpoints).
 *
 *   rfs_backfill_run()     setup (work items created once, idempotently),
 *                          then cfg->workers threads claim items, stream
 *                          documents from the Lucene iterator into `_bulk`
 *                          requests (cfg->inflight per worker) and checkpoint
 *                          the acknowledged prefix, until no work is left.
 *   rfs_backfill_dry_run() the same bulk bodies written to a file, no target.
 *   rfs_backfill_status()  the coordination index summarised. */
#ifndef RFS_BACKFILL_BACKFILL_H
#define RFS_BACKFILL_BACKFILL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sm/http.h>
#include <sm/opt.h>

#include "io/s3.h"
#include "lucene/lucene.h"

struct rfs_typerules;

#define RFS_BACKFILL_DEFAULT_COORD_INDEX ".searchmig_backfill"

/* Exit codes of backfill and backfill-status. */
#define RFS_BACKFILL_EXIT_DONE   0   /* every item done, no document rejected */
#define RFS_BACKFILL_EXIT_FAILED 1   /* failed items or rejected documents (or an error) */
#define RFS_BACKFILL_EXIT_MORE   3   /* work remains (stopped, or others still working) */

struct rfs_backfill_cfg {
    const char *repo;                  /* DIR or s3://bucket/prefix */
    const struct rfs_s3_opts *s3;      /* NULL: defaults */
    const char *snapshot;              /* with lucene_dir: the index name to write */
    const char *lucene_dir;            /* instead of repo: one Lucene index directory (dir or s3://) as
                                        * shard 0 of index `snapshot` */
    const char *index_pattern;         /* NULL: all indices */
    const struct sm_http_opts *target;
    const char *coord_index;           /* NULL: RFS_BACKFILL_DEFAULT_COORD_INDEX */
    const char *worker_id;             /* NULL: host-pid */
    int workers;                       /* threads; >= 1 */
    int inflight;                      /* bulk requests in flight per worker; >= 1 */
    uint64_t batch_docs, batch_bytes;
    uint64_t lease_ms;                 /* lease length; renewed every lease/3 */
    uint64_t checkpoint_ms;            /* checkpoint at least this often while working */
    uint64_t poll_ms;                  /* wait between claim attempts when others hold the rest */
    uint64_t split_docs;               /* split shards into items of about this many documents (0: never) */
    int max_item_attempts;             /* item marked failed after this many failed attempts */
    int bulk_retries;                  /* rounds of bulk retries per batch after the client's own */
    const char *failures_file;         /* NULL: rejected documents only counted and logged */
    /* ingest pipeline of the bulk requests: NULL or "_none" skips the indices'
     * default pipelines (the snapshot's documents went through them on the
     * source) where the target knows `pipeline=_none` (OpenSearch, Elasticsearch
     * 6.5+); "default" lets them run; any other name runs that pipeline */
    const char *ingest_pipeline;
    const struct sm_strlist *rename;   /* "old=new" index renames */
    const struct sm_strlist *type_index; /* "index/type=new index": one type of a multi-type index elsewhere */
    const struct rfs_typerules *typerules; /* --metadata-report: type rules and legacy booleans (NULL: none) */
    bool allow_untested;
    bool verify_crc;
    /* the .fdt CRC32 of each segment (lucene.h); with STREAMED (one read of
     * the data instead of two) a mismatch fails the item for good, its
     * documents already sent */
    enum rfs_lu_checksums segment_checksums;
    bool no_wait;                      /* exit (code 3) when the remaining items are leased by others */
    uint64_t progress_ms;              /* 0: no progress output */
    FILE *progress;                    /* stderr usually */
    bool progress_tty;                 /* progress bar instead of lines */
    volatile int *stop;                /* set by a signal handler: finish batches, release items */
};

struct rfs_backfill_summary {
    uint64_t items_total, items_done, items_failed, items_left;
    uint64_t items_processed;          /* by this process */
    uint64_t docs_acked, docs_rejected, docs_sent, bytes;
    uint64_t retried_items, bulk_requests;
    uint64_t elapsed_ms;
};

/* Returns RFS_BACKFILL_EXIT_* (err says why for FAILED caused by an error). */
int rfs_backfill_run(const struct rfs_backfill_cfg *cfg, struct rfs_backfill_summary *sum, char *err,
                     size_t errlen);

/* Writes the bulk bodies to path. Typed targets: type_mode true keeps _type. */
int rfs_backfill_dry_run(const struct rfs_backfill_cfg *cfg, const char *path, bool typed,
                         struct rfs_backfill_summary *sum, char *err, size_t errlen);

/* Prints the state of the coordination index; returns RFS_BACKFILL_EXIT_*. */
int rfs_backfill_status(const struct sm_http_opts *target, const char *coord_index, FILE *out, bool tty,
                        bool json, char *err, size_t errlen);
/* Deletes the coordination index of a finished backfill (state as
 * rfs_backfill_status). Refuses while work remains (RFS_BACKFILL_EXIT_MORE)
 * or when items failed or documents were rejected (RFS_BACKFILL_EXIT_FAILED),
 * unless force. RFS_BACKFILL_EXIT_DONE when deleted or absent. */
int rfs_backfill_cleanup(const struct sm_http_opts *target, const char *coord_index, bool force, FILE *out,
                         char *err, size_t errlen);

#endif
