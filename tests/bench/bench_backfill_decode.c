/* Decode-only speed of the snapshot reader for bench_backfill.py: iterates
 * every document of every shard of a snapshot (or of one Lucene directory)
 * through the ES document layer (stored fields decompressed, ids decoded,
 * _source located), the same reading work as the backfill (same shard and
 * Lucene open options: each segment's CRC pass once, or streamed with
 * SM_BENCH_SEGMENT_CHECKSUMS=streamed as backfill --segment-checksums
 * streamed) without building or sending anything. THREADS threads take
 * shards from a shared counter. Prints "docs N source_bytes M".
 *   bench_backfill_decode REPO SNAPSHOT [THREADS]
 *   bench_backfill_decode LUCENE_DIR */
#include "io/s3.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"
#include "snapshot/snapshot.h"

#include <sm/err.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    struct rfs_snapshot *snap;
    size_t nshards;
    size_t *index_of, *shard_of;     /* shard k: index index_of[k], shard shard_of[k] */
    _Atomic size_t next;
    _Atomic uint64_t docs, bytes;
    _Atomic int failed;
};

static int decode_dir(struct rfs_dir *dir, uint64_t *docs, uint64_t *bytes, char *err, size_t errlen)
{
    struct rfs_lucene_index *li = NULL;
    struct rfs_es_iter *it = NULL;
    const char *mode = getenv("SM_BENCH_SEGMENT_CHECKSUMS");
    struct rfs_lucene_opts lo = { .stream_data_checksums = mode && !strcmp(mode, "streamed") };
    int rc = rfs_lucene_open(dir, &lo, &li, err, errlen);
    if (!rc)
        rc = rfs_es_iter_open(li, 0, 0, &it, err, errlen);
    while (!rc) {
        const struct rfs_esdoc *d = NULL;
        if ((rc = rfs_es_iter_next(it, &d, err, errlen)) || !d)
            break;
        (*docs)++;
        *bytes += d->source_len;
    }
    rfs_es_iter_close(it);
    rfs_lucene_close(li);
    return rc;
}

static void *thread_main(void *arg)
{
    struct job *j = arg;
    char err[1024];
    for (size_t k; (k = atomic_fetch_add(&j->next, 1)) < j->nshards;) {
        struct rfs_shard *sh = NULL;
        struct rfs_dir *sd = NULL;
        uint64_t docs = 0, bytes = 0;
        int rc = rfs_shard_open(j->snap, j->index_of[k], (int)j->shard_of[k], &sh, err, sizeof(err));
        if (!rc)
            rc = rfs_shard_dir_open(sh, RFS_SHARD_DIR_DEFAULT, &sd, err, sizeof(err));
        if (!rc)
            rc = decode_dir(sd, &docs, &bytes, err, sizeof(err));
        rfs_dir_close(sd);
        rfs_shard_close(sh);
        if (rc) {
            fprintf(stderr, "shard %zu: %s\n", k, err);
            atomic_store(&j->failed, 1);
            break;
        }
        atomic_fetch_add(&j->docs, docs);
        atomic_fetch_add(&j->bytes, bytes);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s REPO SNAPSHOT [THREADS] | %s LUCENE_DIR\n", argv[0], argv[0]);
        return 2;
    }
    char err[1024];
    struct rfs_dir *dir = NULL;
    int rc = rfs_dir_open_uri(argv[1], NULL, &dir, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 1;
    }
    if (argc == 2) {
        uint64_t docs = 0, bytes = 0;
        rc = decode_dir(dir, &docs, &bytes, err, sizeof(err));
        rfs_dir_close(dir);
        if (rc) {
            fprintf(stderr, "%s: %s\n", argv[1], err);
            return 1;
        }
        printf("docs %" PRIu64 " source_bytes %" PRIu64 "\n", docs, bytes);
        return 0;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    struct rfs_repo *repo = NULL;
    struct job j = { 0 };
    if (!(rc = rfs_repo_open(dir, &repo, err, sizeof(err))) &&
        !(rc = rfs_snapshot_open(repo, argv[2], &j.snap, err, sizeof(err))))
        rc = rfs_snapshot_load_all(j.snap, err, sizeof(err));
    size_t n = rc ? 0 : rfs_snapshot_index_count(j.snap), total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rfs_index_info *ii;
        rfs_snapshot_index_at(j.snap, i, &ii, err, sizeof(err));
        total += (size_t)ii->number_of_shards;
    }
    j.index_of = calloc(total + 1, sizeof(size_t));
    j.shard_of = calloc(total + 1, sizeof(size_t));
    for (size_t i = 0; i < n && j.index_of && j.shard_of; i++) {
        const struct rfs_index_info *ii;
        rfs_snapshot_index_at(j.snap, i, &ii, err, sizeof(err));
        for (int s = 0; s < ii->number_of_shards; s++) {
            j.index_of[j.nshards] = i;
            j.shard_of[j.nshards++] = (size_t)s;
        }
    }
    pthread_t tids[64];
    int started = 0;
    for (int t = 0; !rc && t < threads && t < 64; t++)
        if (!pthread_create(&tids[t], NULL, thread_main, &j))
            started++;
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    free(j.index_of);
    free(j.shard_of);
    rfs_snapshot_close(j.snap);
    rfs_repo_close(repo);
    rfs_dir_close(dir);
    if (rc) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 1;
    }
    if (atomic_load(&j.failed))
        return 1;
    printf("docs %" PRIu64 " source_bytes %" PRIu64 "\n", atomic_load(&j.docs), atomic_load(&j.bytes));
    return 0;
}
