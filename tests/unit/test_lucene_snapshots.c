/* The Lucene + ES document layers over shards presented by the repository
 * reader (rfs/snapshot: rfs_shard_dir_open), on every fixture snapshot:
 * soft deletes with doc-values update generations (ES 7.10, OpenSearch 2.11),
 * hard deletes and Lucene 4.x (ES 1.7), binary ids and routing.
 *   RFS_LUCENE_DUMP=1 prints every document. */
#include "sm_test.h"

#include "io/blob.h"
#include "lucene/esdoc.h"
#include "lucene/lucene.h"
#include "snapshot/snapshot.h"

#include <sm/err.h>
#include <sm/util.h>

#include <stdbool.h>
#include <stdlib.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct want { const char *index, *id, *routing; size_t source_len; };

/* Reads every shard of every index of snapshot `snap` in repository `repo`
 * and compares the (index, id, routing) set with want (n entries; n < 0:
 * only count, into *count). */
static int run_snapshot(const char *repo_rel, const char *snap_name, const struct want *want,
                        long n, long *count)
{
    char err[512] = "";
    struct rfs_dir *dir = NULL;
    struct rfs_repo *repo = NULL;
    struct rfs_snapshot *snap = NULL;
    SM_CHECK_EQ_INT(rfs_dir_open_fs(sm_src_path(repo_rel), &dir, err, sizeof(err)), SM_OK);
    int rc = rfs_repo_open(dir, &repo, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s: %s\n", repo_rel, err);
    SM_CHECK_EQ_INT(rc, SM_OK);
    if (!snap_name) {
        SM_CHECK(rfs_repo_snapshot_count(repo) >= 1);
        snap_name = rfs_repo_snapshot_at(repo, rfs_repo_snapshot_count(repo) - 1)->name;
    }
    rc = rfs_snapshot_open(repo, snap_name, &snap, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s: %s\n", repo_rel, err);
    SM_CHECK_EQ_INT(rc, SM_OK);
    long got = 0;
    bool seen[64] = { false };
    struct sm_strlist ids = { 0 };     /* "<index>/<id>": must be unique */
    for (size_t i = 0; i < rfs_snapshot_index_count(snap); i++) {
        const struct rfs_index_info *ii = NULL;
        SM_CHECK_EQ_INT(rfs_snapshot_index_at(snap, i, &ii, err, sizeof(err)), SM_OK);
        for (int s = 0; s < ii->number_of_shards; s++) {
            struct rfs_shard *shard = NULL;
            struct rfs_dir *sdir = NULL;
            struct rfs_lucene_index *idx = NULL;
            struct rfs_es_iter *it = NULL;
            rc = rfs_shard_open(snap, i, s, &shard, err, sizeof(err));
            if (rc == SM_ENOTFOUND)
                continue;
            if (!rc)
                rc = rfs_shard_dir_open(shard, RFS_SHARD_DIR_DEFAULT, &sdir, err, sizeof(err));
            if (!rc)
                rc = rfs_lucene_open(sdir, NULL, &idx, err, sizeof(err));
            if (!rc)
                rc = rfs_es_iter_open(idx, 0, 0, &it, err, sizeof(err));
            while (!rc) {
                const struct rfs_esdoc *d;
                rc = rfs_es_iter_next(it, &d, err, sizeof(err));
                if (rc || !d)
                    break;
                got++;
                char key[1024];
                snprintf(key, sizeof(key), "%s/%s", ii->name, d->id);
                SM_CHECK_EQ_INT(sm_strlist_push(&ids, key), SM_OK);
                if (getenv("RFS_LUCENE_DUMP"))
                    printf("%s %s[%d] id=%s type=%s routing=%.*s source=%zu (%s)\n", repo_rel,
                           ii->name, s, d->id, d->type ? d->type : "-", (int)d->routing_len,
                           d->routing ? d->routing : "", d->source_len,
                           rfs_es_content_type_name(d->content_type));
                if (getenv("RFS_LUCENE_DUMP_SOURCE"))
                    printf("  %.*s\n", (int)d->source_len, (const char *)d->source);
                if (n < 0)
                    continue;
                long k = 0;
                for (; k < n; k++)
                    if (!strcmp(want[k].index, ii->name) && !strcmp(want[k].id, d->id))
                        break;
                if (k == n || seen[k]) {
                    fprintf(stderr, "%s: unexpected document %s/%s\n", repo_rel, ii->name, d->id);
                    return 1;
                }
                seen[k] = true;
                if (want[k].routing)
                    SM_CHECK(d->routing && d->routing_len == strlen(want[k].routing) &&
                             !memcmp(d->routing, want[k].routing, d->routing_len));
                else
                    SM_CHECK(d->routing == NULL);
                SM_CHECK(d->source_len > 0);
                if (want[k].source_len)
                    SM_CHECK_EQ_INT(d->source_len, want[k].source_len);
            }
            if (rc)
                fprintf(stderr, "%s %s[%d]: %s\n", repo_rel, ii->name, s, err);
            rfs_es_iter_close(it);
            rfs_lucene_close(idx);
            rfs_dir_close(sdir);
            rfs_shard_close(shard);
            SM_CHECK_EQ_INT(rc, SM_OK);
        }
    }
    if (n >= 0)
        SM_CHECK_EQ_INT(got, n);
    if (ids.n)
        qsort(ids.v, ids.n, sizeof(char *), cmp_str);
    for (size_t i = 1; i < ids.n; i++)
        if (!strcmp(ids.v[i - 1], ids.v[i])) {
            fprintf(stderr, "%s: document %s produced twice\n", repo_rel, ids.v[i]);
            return 1;
        }
    sm_strlist_free(&ids);
    if (count)
        *count = got;
    rfs_snapshot_close(snap);
    rfs_repo_close(repo);
    rfs_dir_close(dir);
    return 0;
}

/* ES 7.10.2: 9 documents written in 2 segments, 6 soft-deleted (old versions
 * of updated documents, deleted documents, tombstones), one segment entirely
 * soft-deleted via a doc-values update generation. The updated documents
 * come out in their new version (checked by source length). */
static int test_es710_soft(void)
{
    static const struct want w[] = {
        { "test_updates_deletes", "complexdoc", NULL, 67 },
        { "test_updates_deletes", "updateddoc", NULL, 65 },
        { "test_updates_deletes", "unchangeddoc", NULL, 143 },
    };
    return run_snapshot("tests/fixtures/snapshots/ES_7_10_Updates_Deletes_w_Soft", NULL, w,
                        (long)SM_ARRAY_LEN(w), NULL);
}

/* OpenSearch 2.11.1 (Lucene 9.7): documents 1-5 in two segments, 2 deleted
 * (soft delete through a doc-values update of a flushed segment). */
static int test_os211_soft(void)
{
    static const struct want w[] = {
        { "test-index", "1", NULL, 22 }, { "test-index", "3", NULL, 22 },
        { "test-index", "4", NULL, 22 }, { "test-index", "5", NULL, 22 },
    };
    return run_snapshot("tests/fixtures/snapshots/OS_2_11_Deletes_w_Soft_Multi_Seg", NULL, w,
                        (long)SM_ARRAY_LEN(w), NULL);
}

/* Document counts of the other fixtures (unique ids; counts as read by this
 * reader, ES 1.x/2.x ones not cross-checked with Lucene itself). */
static int test_other_snapshots(void)
{
    static const struct { const char *repo; long docs; } r[] = {
        { "tests/fixtures/snapshots/ES_7_10_Single", 4 },
        { "tests/fixtures/snapshots/ES_6_8_Single", 4 },
        { "tests/fixtures/snapshots/ES_5_6_Updates_Deletes", 3 },
        { "tests/fixtures/snapshots/ES_2_4_5", 2003 },
        { "tests/fixtures/snapshots/ES_1_7_5", 2702 },
        { "tests/fixtures/snapshots/ES_1_7_4_compressed", 50 },
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(r); i++) {
        long n = 0;
        if (run_snapshot(r[i].repo, NULL, NULL, -1, &n))
            return 1;
        printf("%s: %ld documents\n", r[i].repo, n);
        if (r[i].docs >= 0)
            SM_CHECK_EQ_INT(n, r[i].docs);
    }
    return 0;
}

SM_TEST_MAIN(SM_TC(test_es710_soft), SM_TC(test_os211_soft), SM_TC(test_other_snapshots))
