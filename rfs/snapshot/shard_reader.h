/* One shard of a snapshot opened as a Lucene index: the shard's file list,
 * its rfs_dir of Lucene files and the Lucene commit, in one call. This is
 * the unit a backfill worker or `searchmig-rfs docs` reads; iterate it with
 * rfs_es_iter_open(reader->index, seg, doc, ...) (lucene/esdoc.h). */
#ifndef RFS_SNAPSHOT_SHARD_READER_H
#define RFS_SNAPSHOT_SHARD_READER_H
#include <stddef.h>

#include "lucene/lucene.h"
#include "snapshot/snapshot.h"

struct rfs_shard_reader {
    struct rfs_shard *shard;            /* file list, paths, sizes */
    struct rfs_dir *dir;                /* Lucene files by physical name */
    struct rfs_lucene_index *index;     /* the shard's commit */
    const struct rfs_index_info *info;  /* index metadata (borrowed from the snapshot) */
};

/* Opens shard `shard` of index `index` of snap. flags: enum rfs_shard_dir_flags
 * (RFS_SHARD_DIR_DEFAULT); lucene_opts may be NULL. snap must outlive the
 * reader. Errors name the file (shard metadata, blob or Lucene file). */
int rfs_shard_reader_open(struct rfs_snapshot *snap, size_t index, int shard, unsigned flags,
                          const struct rfs_lucene_opts *lucene_opts, struct rfs_shard_reader **out,
                          char *err, size_t errlen);
void rfs_shard_reader_close(struct rfs_shard_reader *reader);   /* NULL-safe */

#endif
