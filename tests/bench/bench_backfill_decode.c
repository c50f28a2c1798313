/* Decode-only speed of the snapshot reader for bench_backfill.py: iterates
 * every document of one Lucene directory through the ES document layer
 * (stored fields decompressed, ids decoded, _source located) and prints
 * "docs N source_bytes M". No output per document.
 *   bench_backfill_decode DIR|s3://bucket/prefix */
#include "io/s3.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"

#include <sm/err.h>

#include <inttypes.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s LUCENE_DIR\n", argv[0]);
        return 2;
    }
    char err[1024];
    struct rfs_dir *dir = NULL;
    struct rfs_lucene_index *li = NULL;
    struct rfs_es_iter *it = NULL;
    uint64_t docs = 0, bytes = 0;
    int rc = rfs_dir_open_uri(argv[1], NULL, &dir, err, sizeof(err));
    if (!rc)
        rc = rfs_lucene_open(dir, NULL, &li, err, sizeof(err));
    if (!rc)
        rc = rfs_es_iter_open(li, 0, 0, &it, err, sizeof(err));
    while (!rc) {
        const struct rfs_esdoc *d = NULL;
        if ((rc = rfs_es_iter_next(it, &d, err, sizeof(err))) || !d)
            break;
        docs++;
        bytes += d->source_len;
    }
    rfs_es_iter_close(it);
    rfs_lucene_close(li);
    rfs_dir_close(dir);
    if (rc) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 1;
    }
    printf("docs %" PRIu64 " source_bytes %" PRIu64 "\n", docs, bytes);
    return 0;
}
