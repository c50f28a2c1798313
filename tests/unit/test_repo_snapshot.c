/* Repository parsing of every fixture repository (ES 1.7, 2.4, 5.6, 6.8, 7.10,
 * OpenSearch 2.11), the shard rfs_dir, multi-part files, and corrupt
 * repositories (missing/cut/flipped blobs) that must fail naming the file. */
#include "repo/codec.h"
#include "lucene/esdoc.h"
#include "snapshot/shard_reader.h"
#include "snapshot/snapshot.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sm_test.h"

struct fx {
    struct rfs_dir *dir;
    struct rfs_repo *repo;
    struct rfs_snapshot *snap;
    char err[512];
};

static int fx_open(struct fx *f, const char *path, const char *snapshot)
{
    memset(f, 0, sizeof(*f));
    int rc = rfs_dir_open_fs(path, &f->dir, f->err, sizeof(f->err));
    if (!rc)
        rc = rfs_repo_open(f->dir, &f->repo, f->err, sizeof(f->err));
    if (!rc && snapshot)
        rc = rfs_snapshot_open(f->repo, snapshot, &f->snap, f->err, sizeof(f->err));
    if (rc)
        fprintf(stderr, "fx_open %s: %s\n", path, f->err);
    return rc;
}

static void fx_close(struct fx *f)
{
    rfs_snapshot_close(f->snap);
    rfs_repo_close(f->repo);
    rfs_dir_close(f->dir);
}

static const char *fixture(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf), "%s", sm_src_path("tests/fixtures/snapshots"));
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof(buf) - n, "/%s", name);
    return buf;
}

/* Opens every file of every shard of every index with full CRC verification;
 * returns the number of files, or -1. */
static long verify_all_shards(struct fx *f)
{
    long files = 0;
    for (size_t i = 0; i < rfs_snapshot_index_count(f->snap); i++) {
        const struct rfs_index_info *ii;
        if (rfs_snapshot_index_at(f->snap, i, &ii, f->err, sizeof(f->err)))
            return -1;
        for (int s = 0; s < ii->number_of_shards; s++) {
            struct rfs_shard *sh;
            if (rfs_shard_open(f->snap, i, s, &sh, f->err, sizeof(f->err)))
                return -1;
            struct rfs_dir *sd;
            if (rfs_shard_dir_open(sh, RFS_SHARD_VERIFY_CRC, &sd, f->err, sizeof(f->err)))
                return -1;
            struct sm_strlist names = { 0 };
            if (rfs_dir_list(sd, "", &names) || names.n != sh->nfiles)
                return -1;
            for (size_t k = 0; k < names.n; k++) {
                struct rfs_blob *b;
                if (rfs_dir_open(sd, names.v[k], &b, f->err, sizeof(f->err))) {
                    fprintf(stderr, "%s\n", f->err);
                    return -1;
                }
                const struct rfs_shard_file *fi = rfs_shard_file_find(sh, names.v[k]);
                if (!fi || b->size != fi->length)
                    return -1;
                /* inline meta_hash bytes equal the uploaded blob where both exist */
                if (fi->meta_hash && !fi->is_virtual) {
                    uint8_t *all;
                    size_t len;
                    if (rfs_blob_read_all(b, 1 << 20, &all, &len) || len != fi->meta_hash_len ||
                        memcmp(all, fi->meta_hash, len))
                        return -1;
                    sm_free(all);
                }
                rfs_blob_close(b);
                files++;
            }
            sm_strlist_free(&names);
            rfs_dir_close(sd);
            rfs_shard_close(sh);
        }
    }
    return files;
}

static int test_es_1_7_5(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_1_7_5"), NULL), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_layout(f.repo), RFS_LAYOUT_V1);
    SM_CHECK_EQ_INT(rfs_repo_snapshot_count(f.repo), 1);
    const struct rfs_snapshot_info *s = rfs_repo_snapshot_at(f.repo, 0);
    SM_CHECK_EQ_STR(s->name, "test_1");
    SM_CHECK(s->uuid == NULL);
    SM_CHECK_EQ_INT(s->state, RFS_SNAP_SUCCESS);
    SM_CHECK_EQ_STR(s->version, "1.7.5");
    SM_CHECK_EQ_INT(s->version_id, 1070599);
    SM_CHECK_EQ_STR(s->product, "Elasticsearch");
    SM_CHECK_EQ_INT(s->start_ms, 1454409624606LL);
    SM_CHECK_EQ_INT(s->end_ms, 1454409624648LL);
    SM_CHECK_EQ_INT(s->indices.n, 1);
    SM_CHECK_EQ_STR(s->indices.v[0], "index-1.7.5");
    SM_CHECK_EQ_INT(rfs_snapshot_open(f.repo, "test_1", &f.snap, f.err, sizeof(f.err)), SM_OK);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(ii->meta_blob, "indices/index-1.7.5/snapshot-test_1");
    SM_CHECK_EQ_INT(ii->number_of_shards, 1);
    SM_CHECK_EQ_STR(ii->index_uuid, "PPuAfNUUQkeSZs_1z6JvNw");
    SM_CHECK_EQ_STR(ii->created_version, "1.7.5");
    SM_CHECK_EQ_INT(json_object_size(ii->mappings), 7);
    SM_CHECK(json_object_get(ii->mappings, "doc") && json_object_get(ii->mappings, "meta_fields"));
    json_t *g;
    SM_CHECK_EQ_INT(rfs_snapshot_global_metadata(f.snap, &g, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK(json_object_get(json_object_get(g, "templates"), "template_1.7.5"));
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, 0, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(sh->nfiles, 22);
    SM_CHECK_EQ_INT(sh->total_bytes, 143887);
    const struct rfs_shard_file *seg = rfs_shard_segments_file(sh);
    SM_CHECK(seg);
    SM_CHECK_EQ_STR(seg->physical_name, "segments_6w");
    SM_CHECK_EQ_STR(seg->name, "__2");
    SM_CHECK_EQ_INT(seg->meta_hash_len, 279);   /* base64 in the ES 1.x JSON */
    SM_CHECK(seg->has_crc);
    SM_CHECK_EQ_STR(seg->written_by, "4.10.4");
    rfs_shard_close(sh);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 22);
    fx_close(&f);
    return 0;
}

static int test_es_1_7_4_compressed_both_snapshots(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_1_7_4_compressed"), NULL), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_snapshot_count(f.repo), 2);
    static const char *names[] = { "snap1x_uncompressed", "snap1x" };
    static const long long start[] = { 1482168344308LL, 1482168226535LL };
    static const char *segs[] = { "segments_3", "segments_2" };
    for (size_t i = 0; i < 2; i++) {
        const struct rfs_snapshot_info *s = rfs_repo_snapshot_at(f.repo, i);
        SM_CHECK_EQ_STR(s->name, names[i]);
        SM_CHECK(!s->details_error);
        SM_CHECK_EQ_INT(s->state, RFS_SNAP_SUCCESS);
        SM_CHECK_EQ_STR(s->version, "1.7.4");
        SM_CHECK_EQ_INT(s->start_ms, start[i]);
        SM_CHECK_EQ_STR(s->indices.v[0], "idx");
        SM_CHECK_EQ_INT(rfs_snapshot_open(f.repo, names[i], &f.snap, f.err, sizeof(f.err)), SM_OK);
        const struct rfs_index_info *ii;
        SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_OK);
        SM_CHECK_EQ_INT(ii->number_of_shards, 5);
        SM_CHECK_EQ_STR(ii->index_uuid, "GrRN2VH8TkuZ6ddI6VNTJA");
        SM_CHECK_EQ_STR(json_string_value(json_object_get(
                            json_object_get(json_object_get(json_object_get(ii->mappings, "t1"), "properties"), "f1"),
                            "type")), "string");
        json_t *g;
        SM_CHECK_EQ_INT(rfs_snapshot_global_metadata(f.snap, &g, f.err, sizeof(f.err)), SM_OK);
        SM_CHECK_EQ_STR(json_string_value(json_object_get(g, "uuid")), "Frltp3ZrQ1WLeUtsJyqjzg");
        for (int s2 = 0; s2 < 5; s2++) {
            struct rfs_shard *sh;
            SM_CHECK_EQ_INT(rfs_shard_open(f.snap, 0, s2, &sh, f.err, sizeof(f.err)), SM_OK);
            SM_CHECK_EQ_INT(sh->nfiles, 4);
            SM_CHECK_EQ_STR(rfs_shard_segments_file(sh)->physical_name, segs[i]);
            rfs_shard_close(sh);
        }
        SM_CHECK_EQ_INT(verify_all_shards(&f), 20);
        rfs_snapshot_close(f.snap);
        f.snap = NULL;
    }
    fx_close(&f);
    return 0;
}

static int test_es_2_4_5(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_2_4_5"), "test_1"), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_layout(f.repo), RFS_LAYOUT_V2);
    const struct rfs_snapshot_info *s = rfs_snapshot_info(f.snap);
    SM_CHECK_EQ_STR(s->version, "2.4.5");
    SM_CHECK_EQ_INT(s->state, RFS_SNAP_SUCCESS);
    SM_CHECK_EQ_INT(s->start_ms, 1493281602866LL);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(ii->name, "index-2.4.5");
    SM_CHECK_EQ_STR(ii->meta_blob, "indices/index-2.4.5/meta-test_1.dat");
    SM_CHECK_EQ_STR(ii->index_uuid, "L-KRgWsQScuVF_CoeDJzTg");
    SM_CHECK_EQ_INT(ii->created_id, 2040599);
    SM_CHECK_EQ_INT(ii->number_of_shards, 1);
    SM_CHECK(json_object_get(ii->mappings, "doc"));
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, 0, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(sh->blob, "indices/index-2.4.5/0/snap-test_1.dat");
    SM_CHECK_EQ_INT(sh->nfiles, 20);
    SM_CHECK_EQ_STR(rfs_shard_segments_file(sh)->physical_name, "segments_4t");
    SM_CHECK_EQ_INT(rfs_shard_file_find(sh, "_a0.fdt")->length, 147679);
    rfs_shard_close(sh);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 20);
    fx_close(&f);
    return 0;
}

static int test_es_5_6_updates_deletes(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_5_6_Updates_Deletes"), "rfs_snapshot"), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_layout(f.repo), RFS_LAYOUT_V5);
    SM_CHECK_EQ_INT(rfs_repo_generation(f.repo), 0);
    const struct rfs_snapshot_info *s = rfs_snapshot_info(f.snap);
    SM_CHECK_EQ_STR(s->uuid, "FGgvQ_1CTymrGgoBFrwNTg");
    SM_CHECK_EQ_STR(s->version, "5.6.16");
    SM_CHECK_EQ_INT(s->version_id, 5061699);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(ii->name, "test_updates_deletes");
    SM_CHECK_EQ_STR(ii->repo_id, "-KQKQKwfQ8-nhYQ8JfijxQ");
    SM_CHECK_EQ_STR(ii->meta_blob, "indices/-KQKQKwfQ8-nhYQ8JfijxQ/meta-FGgvQ_1CTymrGgoBFrwNTg.dat");
    SM_CHECK_EQ_INT(json_object_size(ii->mappings), 2);   /* multi-type: type1, type2 */
    SM_CHECK(json_object_get(ii->mappings, "type1") && json_object_get(ii->mappings, "type2"));
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(ii->metadata, "routing_num_shards")), 1);
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, 0, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(sh->nfiles, 10);
    const struct rfs_shard_file *seg = rfs_shard_segments_file(sh);
    SM_CHECK_EQ_STR(seg->name, "__7");
    SM_CHECK_EQ_STR(seg->physical_name, "segments_a");
    SM_CHECK_EQ_INT(seg->length, 352);
    SM_CHECK_EQ_STR(seg->checksum, "bxaofj");
    SM_CHECK_EQ_INT(seg->part_size, INT64_MAX);
    SM_CHECK_EQ_INT(seg->parts, 1);
    SM_CHECK_EQ_INT(seg->meta_hash_len, 352);
    SM_CHECK(!seg->is_virtual);
    rfs_shard_close(sh);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 10);
    fx_close(&f);
    return 0;
}

static int test_es_6_8_single(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_6_8_Single"), "global_state_snapshot"), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_generation(f.repo), 1);
    const struct rfs_snapshot_info *s = rfs_snapshot_info(f.snap);
    SM_CHECK_EQ_STR(s->version, "6.8.24");
    SM_CHECK_EQ_INT(s->indices.n, 2);
    SM_CHECK_EQ_STR(s->indices.v[0], "posts_2023_02_25");
    SM_CHECK_EQ_STR(s->indices.v[1], "posts_2024_01_01");
    size_t idx;
    SM_CHECK_EQ_INT(rfs_snapshot_index_find(f.snap, "posts_2024_01_01", &idx), SM_OK);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, idx, &ii, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(ii->repo_id, "d3oMxx4IROOWpmPdoY9f_Q");
    SM_CHECK_EQ_STR(ii->index_uuid, "0TW4usgxS2K2TRUP_489Ag");
    SM_CHECK(json_object_get(ii->mappings, "_doc"));
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, idx, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(sh->nfiles, 10);
    SM_CHECK_EQ_STR(rfs_shard_segments_file(sh)->physical_name, "segments_4");
    SM_CHECK_EQ_STR(rfs_shard_file_find(sh, "_2.cfs")->name, "__p1_qdgjFSdSnYy-ouIQ9TA");
    rfs_shard_close(sh);
    /* the snapshot can also be opened by uuid */
    struct rfs_snapshot *by_uuid;
    SM_CHECK_EQ_INT(rfs_snapshot_open(f.repo, "5imyqv54TKyHTPTCOAOt2g", &by_uuid, f.err, sizeof(f.err)), SM_OK);
    rfs_snapshot_close(by_uuid);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 14);
    fx_close(&f);
    return 0;
}

static int test_es_7_10_single(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_7_10_Single"), "global_state_snapshot"), SM_OK);
    const struct rfs_snapshot_info *s = rfs_snapshot_info(f.snap);
    SM_CHECK_EQ_STR(s->uuid, "7_1RHMshSc6c0cuzX1NCDg");
    SM_CHECK_EQ_STR(s->version, "7.10.2");
    SM_CHECK_EQ_INT(s->start_ms, 1711120727418LL);
    const struct rfs_index_info *ii;
    size_t idx;
    SM_CHECK_EQ_INT(rfs_snapshot_index_find(f.snap, "posts_2024_01_01", &idx), SM_OK);
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, idx, &ii, f.err, sizeof(f.err)), SM_OK);
    /* 7.9+ lookup: TKzEIy9ASTq-FuWhogYPHw -> Rawk5jN7T6mhHACnMjj5Sg-_na_-1-1-1 -> e0O-Zo4B5P7rRiUeQFTe */
    SM_CHECK_EQ_STR(ii->meta_blob, "indices/TKzEIy9ASTq-FuWhogYPHw/meta-e0O-Zo4B5P7rRiUeQFTe.dat");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(ii->metadata, "routing_num_shards")), 1024);
    SM_CHECK(json_is_array(ii->shard_generations));
    SM_CHECK_EQ_STR(json_string_value(json_array_get(ii->shard_generations, 0)), "guSEIbPOR8SI_i1M0mOHLQ");
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, idx, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(sh->nfiles, 7);
    const struct rfs_shard_file *seg = rfs_shard_segments_file(sh);
    SM_CHECK_EQ_STR(seg->physical_name, "segments_4");
    SM_CHECK(seg->is_virtual);
    SM_CHECK_EQ_STR(seg->name, "v__1mzG3gQcRluWUAOgLPVqhw");
    SM_CHECK_EQ_INT(seg->meta_hash_len, 395);
    /* no shard 1 */
    struct rfs_shard *bad;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, idx, 1, &bad, f.err, sizeof(f.err)), SM_EINVAL);
    /* virtual file through the shard dir: bytes are meta_hash, footer CRC matches */
    struct rfs_dir *sd;
    SM_CHECK_EQ_INT(rfs_shard_dir_open(sh, RFS_SHARD_VERIFY_CRC, &sd, f.err, sizeof(f.err)), SM_OK);
    struct rfs_blob *b;
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "segments_4", &b, f.err, sizeof(f.err)), SM_OK);
    uint8_t head[4];
    SM_CHECK_EQ_INT(rfs_blob_read_at(b, 0, head, 4), SM_OK);
    SM_CHECK_MEM(head, "\x3f\xd7\x6c\x17", 4);
    rfs_blob_close(b);
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_9.cfs", &b, f.err, sizeof(f.err)), SM_ENOTFOUND);
    rfs_dir_close(sd);
    rfs_shard_close(sh);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 11);
    fx_close(&f);
    return 0;
}

static int test_es_7_10_soft_deletes(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_7_10_Updates_Deletes_w_Soft"), "rfs_snapshot"), SM_OK);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(ii->meta_blob, "indices/ADqaSwRmQGeZpfc8raDTtA/meta-xGqBTJEBlF9Q9SH0yNGX.dat");
    SM_CHECK_EQ_STR(ii->index_uuid, "7Zjff_ZGQp6NAqHFHTCsMw");
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, 0, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(sh->nfiles, 13);
    const struct rfs_shard_file *seg = rfs_shard_segments_file(sh);
    SM_CHECK_EQ_STR(seg->name, "v__5mUJQyVnQnuN9TZNadoLOg");
    SM_CHECK_EQ_STR(seg->physical_name, "segments_3");
    SM_CHECK_EQ_INT(seg->length, 503);
    SM_CHECK_EQ_INT(seg->part_size, 1073741824);
    const struct rfs_shard_file *dvd = rfs_shard_file_find(sh, "_0_2_Lucene80_0.dvd");
    SM_CHECK_EQ_STR(dvd->name, "__-yEaPZRTQfSRwCiHpq5vHQ");
    SM_CHECK_EQ_INT(dvd->length, 75);
    const struct rfs_shard_file *si = rfs_shard_file_find(sh, "_0.si");
    SM_CHECK_EQ_STR(si->checksum, "1piemnx");
    SM_CHECK(si->is_virtual && si->meta_hash_len == 368);
    rfs_shard_close(sh);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 13);
    fx_close(&f);
    return 0;
}

static int test_os_2_11(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("OS_2_11_Deletes_w_Soft_Multi_Seg"), NULL), SM_OK);
    /* index-0 lists only the later snapshot; the earlier one's blobs stay around */
    SM_CHECK_EQ_INT(rfs_repo_snapshot_count(f.repo), 1);
    const struct rfs_snapshot_info *s = rfs_repo_snapshot_at(f.repo, 0);
    SM_CHECK_EQ_STR(s->name, "rfs_snapshot");
    SM_CHECK_EQ_STR(s->uuid, "uSnbT3z3Q_q4GImbzkrjkQ");
    SM_CHECK_EQ_STR(s->version, "2.11.1");
    SM_CHECK_EQ_STR(s->product, "OpenSearch");
    SM_CHECK_EQ_INT(s->version_id, 2110199 ^ 0x08000000);
    SM_CHECK_EQ_INT(rfs_snapshot_open(f.repo, "rfs_snapshot", &f.snap, f.err, sizeof(f.err)), SM_OK);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_STR(ii->name, "test-index");
    SM_CHECK_EQ_STR(ii->created_version, "2.11.1");
    SM_CHECK_EQ_STR(ii->created_product, "OpenSearch");
    SM_CHECK_EQ_STR(ii->meta_blob, "indices/nGYnc_K_Rl6L6kzn8H9rQw/meta-DTv-7ZUBcBwLVKIRx6vE.dat");
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, 0, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(sh->nfiles, 13);
    SM_CHECK(rfs_shard_file_find(sh, "_0_1_Lucene90_0.dvm"));
    rfs_shard_close(sh);
    SM_CHECK_EQ_INT(verify_all_shards(&f), 13);
    /* unknown snapshot: the message lists what exists */
    struct rfs_snapshot *none;
    SM_CHECK_EQ_INT(rfs_snapshot_open(f.repo, "nope", &none, f.err, sizeof(f.err)), SM_ENOTFOUND);
    SM_CHECK(strstr(f.err, "no snapshot 'nope' (snapshots: rfs_snapshot)"));
    fx_close(&f);
    return 0;
}

/* ---- corrupt repositories: a private copy per case ---- */

static char tmproot[256];

static const char *copy_fixture(const char *name)
{
    static char dst[512];
    if (!tmproot[0]) {
        snprintf(tmproot, sizeof(tmproot), "%s/rfs-repo-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(tmproot))
            return NULL;
    }
    static int seq;
    snprintf(dst, sizeof(dst), "%s/%d", tmproot, seq++);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && chmod -R u+w '%s'", fixture(name), dst, dst);
    return system(cmd) == 0 ? dst : NULL;
}

static int flip_byte(const char *dir, const char *rel, long off)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *fp = fopen(path, "r+b");
    if (!fp)
        return -1;
    if (off < 0) {
        fseek(fp, 0, SEEK_END);
        off += ftell(fp);
    }
    fseek(fp, off, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, off, SEEK_SET);
    fputc(c ^ 0x20, fp);
    fclose(fp);
    return 0;
}

static int cut_file(const char *dir, const char *rel, long keep)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return truncate(path, keep);
}

static int rm_file(const char *dir, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return unlink(path);
}

#define SOFT_SHARD "indices/ADqaSwRmQGeZpfc8raDTtA/0/"

static int open_soft_shard(struct fx *f, const char *dir, struct rfs_shard **sh)
{
    int rc = fx_open(f, dir, "rfs_snapshot");
    if (!rc)
        rc = rfs_shard_open(f->snap, 0, 0, sh, f->err, sizeof(f->err));
    return rc;
}

static int test_corrupt_missing_data_blob(void)
{
    const char *d = copy_fixture("ES_7_10_Updates_Deletes_w_Soft");
    SM_CHECK(d);
    SM_CHECK_EQ_INT(rm_file(d, SOFT_SHARD "__GQQRFbfsQiiBKvrgjehuQQ"), 0);   /* _0.cfs */
    struct fx f;
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(open_soft_shard(&f, d, &sh), SM_OK);
    struct rfs_dir *sd;
    SM_CHECK_EQ_INT(rfs_shard_dir_open(sh, RFS_SHARD_DIR_DEFAULT, &sd, f.err, sizeof(f.err)), SM_OK);
    struct rfs_blob *b;
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_0.cfs", &b, f.err, sizeof(f.err)), SM_ENOTFOUND);
    SM_CHECK_EQ_STR(f.err, SOFT_SHARD "__GQQRFbfsQiiBKvrgjehuQQ: missing blob for _0.cfs");
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_1.cfs", &b, f.err, sizeof(f.err)), SM_OK);
    rfs_blob_close(b);
    rfs_dir_close(sd);
    rfs_shard_close(sh);
    fx_close(&f);
    return 0;
}

static int test_corrupt_cut_and_flipped_data_blob(void)
{
    const char *d = copy_fixture("ES_7_10_Updates_Deletes_w_Soft");
    SM_CHECK(d);
    SM_CHECK_EQ_INT(cut_file(d, SOFT_SHARD "__mA4kerekSIS2eEUXp5FCYQ", 5000), 0);      /* _1.cfs 5211 */
    SM_CHECK_EQ_INT(flip_byte(d, SOFT_SHARD "__vLCLViRURPidCmyHclS-cg", -3), 0);      /* _0_2.fnm checksum */
    SM_CHECK_EQ_INT(flip_byte(d, SOFT_SHARD "__9F9gSARWSXK0tLHBAmgkNA", 600), 0);     /* _1_1.fnm body */
    struct fx f;
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(open_soft_shard(&f, d, &sh), SM_OK);
    struct rfs_dir *sd;
    SM_CHECK_EQ_INT(rfs_shard_dir_open(sh, RFS_SHARD_VERIFY_FOOTER, &sd, f.err, sizeof(f.err)), SM_OK);
    struct rfs_blob *b;
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_1.cfs", &b, f.err, sizeof(f.err)), SM_ECORRUPT);
    SM_CHECK_EQ_STR(f.err, SOFT_SHARD "__mA4kerekSIS2eEUXp5FCYQ[_1.cfs]: length 5000 != 5211 in the shard metadata");
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_0_2.fnm", &b, f.err, sizeof(f.err)), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, SOFT_SHARD "__vLCLViRURPidCmyHclS-cg[_0_2.fnm]: footer checksum ") == f.err);
    /* a body flip passes the cheap footer check, the full CRC catches it */
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_1_1.fnm", &b, f.err, sizeof(f.err)), SM_OK);
    rfs_blob_close(b);
    rfs_dir_close(sd);
    SM_CHECK_EQ_INT(rfs_shard_dir_open(sh, RFS_SHARD_VERIFY_CRC, &sd, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(rfs_dir_open(sd, "_1_1.fnm", &b, f.err, sizeof(f.err)), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, SOFT_SHARD "__9F9gSARWSXK0tLHBAmgkNA[_1_1.fnm]: footer CRC ") == f.err);
    rfs_dir_close(sd);
    rfs_shard_close(sh);
    fx_close(&f);
    return 0;
}

static int test_corrupt_metadata_blobs(void)
{
    struct fx f;
    struct rfs_shard *sh;
    /* shard file list: flipped byte -> CRC error naming the blob */
    const char *d = copy_fixture("ES_7_10_Updates_Deletes_w_Soft");
    SM_CHECK(d);
    SM_CHECK_EQ_INT(flip_byte(d, SOFT_SHARD "snap-4qK_DdtfTcao0zoxNElf9Q.dat", 100), 0);
    SM_CHECK_EQ_INT(open_soft_shard(&f, d, &sh), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, SOFT_SHARD "snap-4qK_DdtfTcao0zoxNElf9Q.dat: footer CRC ") == f.err);
    fx_close(&f);
    /* shard file list missing -> shard not in snapshot */
    d = copy_fixture("ES_7_10_Updates_Deletes_w_Soft");
    SM_CHECK_EQ_INT(rm_file(d, SOFT_SHARD "snap-4qK_DdtfTcao0zoxNElf9Q.dat"), 0);
    SM_CHECK_EQ_INT(open_soft_shard(&f, d, &sh), SM_ENOTFOUND);
    SM_CHECK(strstr(f.err, "is not in snapshot 'rfs_snapshot'"));
    fx_close(&f);
    /* index metadata cut */
    d = copy_fixture("ES_7_10_Updates_Deletes_w_Soft");
    SM_CHECK_EQ_INT(cut_file(d, "indices/ADqaSwRmQGeZpfc8raDTtA/meta-xGqBTJEBlF9Q9SH0yNGX.dat", 200), 0);
    SM_CHECK_EQ_INT(fx_open(&f, d, "rfs_snapshot"), SM_OK);
    const struct rfs_index_info *ii;
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, "indices/ADqaSwRmQGeZpfc8raDTtA/meta-xGqBTJEBlF9Q9SH0yNGX.dat: ") == f.err);
    fx_close(&f);
    /* snapshot info flipped: listing still works, details_error names the blob; open fails */
    d = copy_fixture("ES_7_10_Updates_Deletes_w_Soft");
    SM_CHECK_EQ_INT(flip_byte(d, "snap-4qK_DdtfTcao0zoxNElf9Q.dat", 40), 0);
    SM_CHECK_EQ_INT(fx_open(&f, d, NULL), SM_OK);
    const struct rfs_snapshot_info *s = rfs_repo_snapshot_at(f.repo, 0);
    SM_CHECK_EQ_STR(s->name, "rfs_snapshot");
    SM_CHECK(s->details_error && strstr(s->details_error, "snap-4qK_DdtfTcao0zoxNElf9Q.dat: footer CRC ") ==
             s->details_error);
    SM_CHECK_EQ_INT(rfs_snapshot_open(f.repo, "rfs_snapshot", &f.snap, f.err, sizeof(f.err)), SM_ECORRUPT);
    fx_close(&f);
    /* repository data: bad JSON, missing index-N */
    d = copy_fixture("ES_6_8_Single");
    SM_CHECK_EQ_INT(cut_file(d, "index-1", 100), 0);
    SM_CHECK_EQ_INT(fx_open(&f, d, NULL), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, "index-1: invalid JSON") == f.err);
    fx_close(&f);
    d = copy_fixture("ES_6_8_Single");
    SM_CHECK_EQ_INT(rm_file(d, "index-1"), 0);
    SM_CHECK_EQ_INT(fx_open(&f, d, NULL), SM_ENOTFOUND);
    SM_CHECK(strstr(f.err, "index-1"));
    fx_close(&f);
    /* no index.latest: the largest index-N is used */
    d = copy_fixture("ES_6_8_Single");
    SM_CHECK_EQ_INT(rm_file(d, "index.latest"), 0);
    SM_CHECK_EQ_INT(fx_open(&f, d, NULL), SM_OK);
    SM_CHECK_EQ_INT(rfs_repo_generation(f.repo), 1);
    fx_close(&f);
    /* ES 1.x compressed: cut LZF metadata */
    d = copy_fixture("ES_1_7_4_compressed");
    SM_CHECK_EQ_INT(cut_file(d, "indices/idx/snapshot-snap1x", 100), 0);
    SM_CHECK_EQ_INT(fx_open(&f, d, "snap1x"), SM_OK);
    SM_CHECK_EQ_INT(rfs_snapshot_index_at(f.snap, 0, &ii, f.err, sizeof(f.err)), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, "indices/idx/snapshot-snap1x: ") == f.err);
    fx_close(&f);
    /* not a repository */
    SM_CHECK_EQ_INT(fx_open(&f, tmproot, NULL), SM_ENOTFOUND);
    SM_CHECK(strstr(f.err, "not a snapshot repository"));
    fx_close(&f);
    return 0;
}

/* Multi-part files (.partN) concatenate; part sizes and totals are checked. */
static int test_multi_part_file(void)
{
    const char *d = copy_fixture("ES_7_10_Single");
    SM_CHECK(d);
    const char *shard = "indices/TKzEIy9ASTq-FuWhogYPHw/0/";
    char src[1024], cmd[4096];
    snprintf(src, sizeof(src), "%s/%s__9C5IpVUjQhG_FxRPxx5RrA", d, shard);   /* _0.cfs, 3818 bytes */
    snprintf(cmd, sizeof(cmd), "cd '%s/%s' && split -b 1000 -d -a 1 __9C5IpVUjQhG_FxRPxx5RrA p && "
             "for i in 0 1 2 3; do mv p$i __9C5IpVUjQhG_FxRPxx5RrA.part$i; done && rm __9C5IpVUjQhG_FxRPxx5RrA",
             d, shard);
    SM_CHECK_EQ_INT(system(cmd), 0);
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, d, "global_state_snapshot"), SM_OK);
    size_t idx;
    SM_CHECK_EQ_INT(rfs_snapshot_index_find(f.snap, "posts_2024_01_01", &idx), SM_OK);
    struct rfs_shard *sh;
    SM_CHECK_EQ_INT(rfs_shard_open(f.snap, idx, 0, &sh, f.err, sizeof(f.err)), SM_OK);
    struct rfs_shard_file *fi = NULL;
    for (size_t i = 0; i < sh->nfiles; i++)
        if (!strcmp(sh->files[i].physical_name, "_0.cfs"))
            fi = &sh->files[i];
    SM_CHECK(fi);
    struct rfs_blob *b;
    /* as listed (one part): the single blob is gone */
    SM_CHECK_EQ_INT(rfs_shard_file_open(sh, fi, RFS_SHARD_VERIFY_CRC, &b, f.err, sizeof(f.err)), SM_ENOTFOUND);
    fi->part_size = 1000;
    fi->parts = 4;
    SM_CHECK_EQ_INT(rfs_shard_file_open(sh, fi, RFS_SHARD_VERIFY_CRC, &b, f.err, sizeof(f.err)), SM_OK);
    SM_CHECK_EQ_INT(b->size, 3818);
    uint8_t buf[64];
    SM_CHECK_EQ_INT(rfs_blob_read_at(b, 990, buf, 20), SM_OK);   /* across part0/part1 */
    rfs_blob_close(b);
    /* wrong part size in the metadata */
    fi->part_size = 2000;
    fi->parts = 2;
    SM_CHECK_EQ_INT(rfs_shard_file_open(sh, fi, 0, &b, f.err, sizeof(f.err)), SM_ECORRUPT);
    SM_CHECK(strstr(f.err, "__9C5IpVUjQhG_FxRPxx5RrA.part0: part length 1000 != 2000 expected for _0.cfs"));
    /* a missing part */
    fi->part_size = 1000;
    fi->parts = 4;
    snprintf(cmd, sizeof(cmd), "rm '%s/%s__9C5IpVUjQhG_FxRPxx5RrA.part2'", d, shard);
    SM_CHECK_EQ_INT(system(cmd), 0);
    SM_CHECK_EQ_INT(rfs_shard_file_open(sh, fi, 0, &b, f.err, sizeof(f.err)), SM_ENOTFOUND);
    SM_CHECK(strstr(f.err, "missing part 2 of 4 for _0.cfs"));
    rfs_shard_close(sh);
    fx_close(&f);
    return 0;
}

static int test_helpers(void)
{
    uint32_t c;
    SM_CHECK(rfs_checksum_parse_base36("1piemnx", &c));
    SM_CHECK_EQ_INT(c, 0xddb0d03du);
    SM_CHECK(!rfs_checksum_parse_base36("zzzzzzzz", &c));   /* > 32 bits */
    SM_CHECK(!rfs_checksum_parse_base36("ab-c", &c));
    char vb[48];
    SM_CHECK_EQ_STR(rfs_version_format(7100299, vb, sizeof(vb)), "7.10.2");
    SM_CHECK_EQ_STR(rfs_version_format(2110199 ^ 0x08000000, vb, sizeof(vb)), "2.11.1");
    SM_CHECK(rfs_version_is_opensearch(2110199 ^ 0x08000000));
    SM_CHECK_EQ_INT(rfs_version_major(6082499), 6);
    /* Elasticsearch index versions: release-numbered up to 8.10, detached from 8.11 on */
    SM_CHECK_EQ_STR(rfs_version_format(8100099, vb, sizeof(vb)), "8.10.0");
    SM_CHECK_EQ_STR(rfs_version_format(8500003, vb, sizeof(vb)), "8.11+ (index version 8500003)");
    SM_CHECK_EQ_INT(rfs_version_major(8500003), 8);
    SM_CHECK_EQ_STR(rfs_version_format(9000000, vb, sizeof(vb)), "9.0+ (index version 9000000)");
    SM_CHECK_EQ_INT(rfs_version_major(9000000), 9);
    SM_CHECK_EQ_STR(rfs_version_format(3000099 ^ 0x08000000, vb, sizeof(vb)), "3.0.0");   /* OpenSearch 3.0 */
    SM_CHECK_EQ_STR(rfs_snapshot_state_name(RFS_SNAP_PARTIAL), "PARTIAL");
    return 0;
}

/* Shard readers over one preloaded snapshot, from several threads at once. */
struct reader_job {
    struct rfs_snapshot *snap;
    size_t index;
    long docs;
    char err[512];
};

static void *reader_thread(void *arg)
{
    struct reader_job *j = arg;
    j->docs = -1;
    for (int round = 0; round < 20; round++) {
        struct rfs_shard_reader *sr;
        if (rfs_shard_reader_open(j->snap, j->index, 0, RFS_SHARD_VERIFY_CRC, NULL, &sr, j->err, sizeof(j->err)))
            return NULL;
        struct rfs_es_iter *it;
        long n = 0;
        if (rfs_es_iter_open(sr->index, 0, 0, &it, j->err, sizeof(j->err)) == SM_OK) {
            const struct rfs_esdoc *d;
            while (rfs_es_iter_next(it, &d, j->err, sizeof(j->err)) == SM_OK && d)
                n++;
            rfs_es_iter_close(it);
        }
        rfs_shard_reader_close(sr);
        if (round && n != j->docs)
            return NULL;
        j->docs = n;
    }
    return NULL;
}

static int test_shard_reader_threads(void)
{
    struct fx f;
    SM_CHECK_EQ_INT(fx_open(&f, fixture("ES_7_10_Single"), "global_state_snapshot"), SM_OK);
    SM_CHECK_EQ_INT(rfs_snapshot_load_all(f.snap, f.err, sizeof(f.err)), SM_OK);
    struct reader_job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct reader_job){ .snap = f.snap, .index = (size_t)(i % 2) };
        SM_CHECK_EQ_INT(pthread_create(&t[i], NULL, reader_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        if (jobs[i].docs < 0)
            fprintf(stderr, "thread %d: %s\n", i, jobs[i].err);
        SM_CHECK_EQ_INT(jobs[i].docs, i % 2 ? 3 : 1);   /* posts_2023_02_25: 1, posts_2024_01_01: 3 */
    }
    /* errors name the file: a shard that does not exist */
    struct rfs_shard_reader *sr;
    SM_CHECK_EQ_INT(rfs_shard_reader_open(f.snap, 0, 3, 0, NULL, &sr, f.err, sizeof(f.err)), SM_EINVAL);
    fx_close(&f);
    return 0;
}

static int cleanup(void)
{
    if (tmproot[0]) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmproot);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}

SM_TEST_MAIN(SM_TC(test_es_1_7_5), SM_TC(test_es_1_7_4_compressed_both_snapshots), SM_TC(test_es_2_4_5),
             SM_TC(test_es_5_6_updates_deletes), SM_TC(test_es_6_8_single), SM_TC(test_es_7_10_single),
             SM_TC(test_es_7_10_soft_deletes), SM_TC(test_os_2_11), SM_TC(test_corrupt_missing_data_blob),
             SM_TC(test_corrupt_cut_and_flipped_data_blob), SM_TC(test_corrupt_metadata_blobs),
             SM_TC(test_multi_part_file), SM_TC(test_helpers), SM_TC(test_shard_reader_threads),
             SM_TC(cleanup))
