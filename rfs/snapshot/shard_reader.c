/* Shard -> Lucene index in one call (shard_reader.h). */
#include "snapshot/shard_reader.h"

#include <sm/err.h>
#include <sm/mem.h>

int rfs_shard_reader_open(struct rfs_snapshot *snap, size_t index, int shard, unsigned flags,
                          const struct rfs_lucene_opts *lucene_opts, struct rfs_shard_reader **out,
                          char *err, size_t errlen)
{
    struct rfs_shard_reader *r = sm_calloc(1, sizeof(*r));
    if (!r)
        return SM_ENOMEM;
    int rc = rfs_snapshot_index_at(snap, index, &r->info, err, errlen);
    if (!rc)
        rc = rfs_shard_open(snap, index, shard, &r->shard, err, errlen);
    if (!rc)
        rc = rfs_shard_dir_open(r->shard, flags, &r->dir, err, errlen);
    if (!rc)
        rc = rfs_lucene_open(r->dir, lucene_opts, &r->index, err, errlen);
    if (rc) {
        rfs_shard_reader_close(r);
        return rc;
    }
    *out = r;
    return SM_OK;
}

void rfs_shard_reader_close(struct rfs_shard_reader *reader)
{
    if (!reader)
        return;
    rfs_lucene_close(reader->index);
    rfs_dir_close(reader->dir);
    rfs_shard_close(reader->shard);
    sm_free(reader);
}
