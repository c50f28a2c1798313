/* searchmig-rfs snapshots / indices: what a repository holds. */
#include "cli/cli.h"

#include "io/s3.h"   /* rfs_dir_open_uri: DIR or s3://bucket/prefix */

#include "lucene/lucene.h"
#include "snapshot/shard_reader.h"
#include "snapshot/snapshot.h"

#include <sm/err.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct repo_cfg {
    char *repo;
    char *snapshot;
    char *index;
    bool json;
    bool allow_untested;
};

#define OFF(f) offsetof(struct repo_cfg, f)

static const struct sm_opt snapshots_opts[] = {
    { "repo", SM_OPT_STR, OFF(repo), NULL, "snapshot repository directory (the fs repository's location)", NULL, 0, "DIR" },
    { "json", SM_OPT_BOOL, OFF(json), "false", "print a JSON array instead of a table", NULL, 0, NULL },
    SM_OPT_END
};

static const struct sm_opt indices_opts[] = {
    { "repo", SM_OPT_STR, OFF(repo), NULL, "snapshot repository directory", NULL, 0, "DIR" },
    { "snapshot", SM_OPT_STR, OFF(snapshot), NULL, "snapshot name (or uuid)", NULL, 0, "NAME" },
    { "index", SM_OPT_STR, OFF(index), NULL, "only indices matching these patterns (\"logs-*,-logs-old\")", NULL, 0,
      "PATTERN" },
    { "json", SM_OPT_BOOL, OFF(json), "false", "print JSON (full settings and mappings) instead of a table", NULL, 0,
      NULL },
    { "allow-untested", SM_OPT_BOOL, OFF(allow_untested), "false",
      "read Lucene formats implemented but never checked on real bytes", NULL, 0, NULL },
    SM_OPT_END
};

static int open_repo(const char *prog, const char *path, struct rfs_dir **dir, struct rfs_repo **repo)
{
    char err[1024];
    if (!path) {
        fprintf(stderr, "%s: --repo DIR is required\n", prog);
        return RFS_CLI_EXIT_USAGE;
    }
    int rc = rfs_dir_open_uri(path, NULL, dir, err, sizeof(err));
    if (!rc && (rc = rfs_repo_open(*dir, repo, err, sizeof(err))))
        rfs_dir_close(*dir);
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return RFS_CLI_EXIT_FAIL;
    }
    return RFS_CLI_EXIT_OK;
}

static json_t *snapshot_json(const struct rfs_snapshot_info *s)
{
    json_t *o = json_object();
    json_t *ix = json_array();
    for (size_t k = 0; k < s->indices.n; k++)
        json_array_append_new(ix, json_string(s->indices.v[k]));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "uuid", s->uuid ? json_string(s->uuid) : json_null());
    json_object_set_new(o, "state", json_string(rfs_snapshot_state_name(s->state)));
    json_object_set_new(o, "version", s->version ? json_string(s->version) : json_null());
    json_object_set_new(o, "product", s->product ? json_string(s->product) : json_null());
    json_object_set_new(o, "version_id", s->version_id ? json_integer(s->version_id) : json_null());
    json_object_set_new(o, "start_time_millis", s->start_ms >= 0 ? json_integer(s->start_ms) : json_null());
    json_object_set_new(o, "end_time_millis", s->end_ms >= 0 ? json_integer(s->end_ms) : json_null());
    json_object_set_new(o, "indices", ix);
    if (s->details_error)
        json_object_set_new(o, "error", json_string(s->details_error));
    return o;
}

int rfs_cmd_snapshots(int argc, char **argv)
{
    struct repo_cfg cfg = { 0 };
    struct sm_cli cli = { "searchmig-rfs snapshots", "--repo DIR [--json]",
                          "Lists the snapshots of a repository: name, uuid, state, the version that wrote it, "
                          "start and end time, indices.", snapshots_opts, false };
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, NULL);
    if (ex >= 0)
        goto out;
    struct rfs_dir *dir;
    struct rfs_repo *repo;
    if ((ex = open_repo(cli.prog, cfg.repo, &dir, &repo)))
        goto out;
    ex = RFS_CLI_EXIT_OK;
    size_t n = rfs_repo_snapshot_count(repo);
    json_t *arr = cfg.json ? json_array() : NULL;
    if (!cfg.json)
        printf("%-28s %-24s %-8s %-20s %-24s %-24s %s\n", "NAME", "UUID", "STATE", "VERSION", "START", "END",
               "INDICES");
    for (size_t i = 0; i < n; i++) {
        const struct rfs_snapshot_info *s = rfs_repo_snapshot_at(repo, i);
        if (s->details_error) {
            fprintf(stderr, "%s: snapshot %s: %s\n", cli.prog, s->name, s->details_error);
            ex = RFS_CLI_EXIT_FAIL;
        }
        if (cfg.json) {
            json_array_append_new(arr, snapshot_json(s));
            continue;
        }
        char t1[40], t2[40], ver[64];
        snprintf(ver, sizeof(ver), "%s%s%s", s->product && !strcmp(s->product, "OpenSearch") ? "OpenSearch " : "",
                 s->version ? s->version : "-", "");
        printf("%-28s %-24s %-8s %-20s %-24s %-24s ", s->name, s->uuid ? s->uuid : "-",
               rfs_snapshot_state_name(s->state), ver, rfs_cli_time(s->start_ms, t1, sizeof(t1)),
               rfs_cli_time(s->end_ms, t2, sizeof(t2)));
        for (size_t k = 0; k < s->indices.n; k++)
            printf("%s%s", k ? "," : "", s->indices.v[k]);
        printf("\n");
    }
    if (cfg.json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(arr);
    }
    rfs_repo_close(repo);
    rfs_dir_close(dir);
out:
    sm_opts_free(snapshots_opts, &cfg);
    return ex;
}

/* Top-level field count of a mapping ({"properties":{...}}). */
static size_t mapping_fields(json_t *m)
{
    return json_object_size(json_object_get(m, "properties"));
}

struct shard_summary {
    int shard;
    bool ok;
    char error[512];
    uint64_t bytes;
    size_t files;
    int64_t max_doc, live_docs;
    size_t segments;
    char commit[64];
};

static void summarise_shard(struct rfs_snapshot *snap, size_t idx, int shard, const struct repo_cfg *cfg,
                            struct shard_summary *out)
{
    memset(out, 0, sizeof(*out));
    out->shard = shard;
    out->max_doc = out->live_docs = -1;
    struct rfs_shard *sh = NULL;
    /* size and file count even when the Lucene commit cannot be read */
    if (rfs_shard_open(snap, idx, shard, &sh, out->error, sizeof(out->error)))
        return;
    out->bytes = sh->total_bytes;
    out->files = sh->nfiles;
    rfs_shard_close(sh);
    struct rfs_lucene_opts lo = { .allow_untested = cfg->allow_untested };
    struct rfs_shard_reader *sr = NULL;
    if (rfs_shard_reader_open(snap, idx, shard, RFS_SHARD_DIR_DEFAULT, &lo, &sr, out->error, sizeof(out->error)))
        return;
    struct rfs_lucene_commit_info ci;
    rfs_lucene_commit_info(sr->index, &ci);
    out->max_doc = ci.max_doc;
    out->live_docs = ci.live_docs;
    out->segments = ci.n_segments;
    snprintf(out->commit, sizeof(out->commit), "%s", ci.file ? ci.file : "");
    out->ok = true;
    rfs_shard_reader_close(sr);
}

int rfs_cmd_indices(int argc, char **argv)
{
    struct repo_cfg cfg = { 0 };
    struct sm_cli cli = { "searchmig-rfs indices", "--repo DIR --snapshot NAME [--index PATTERN] [--json]",
                          "Lists the indices of a snapshot: shards, documents per shard (live documents of the "
                          "shard's Lucene commit), size, creating version, settings and mappings summary.",
                          indices_opts, false };
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, NULL);
    if (ex >= 0)
        goto out;
    if (!cfg.snapshot) {
        fprintf(stderr, "%s: --snapshot NAME is required\n", cli.prog);
        ex = RFS_CLI_EXIT_USAGE;
        goto out;
    }
    struct rfs_dir *dir;
    struct rfs_repo *repo;
    if ((ex = open_repo(cli.prog, cfg.repo, &dir, &repo)))
        goto out;
    char err[1024];
    struct rfs_snapshot *snap = NULL;
    if (rfs_snapshot_open(repo, cfg.snapshot, &snap, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", cli.prog, err);
        ex = RFS_CLI_EXIT_FAIL;
        goto close_repo;
    }
    ex = RFS_CLI_EXIT_OK;
    json_t *arr = cfg.json ? json_array() : NULL;
    for (size_t i = 0; i < rfs_snapshot_index_count(snap); i++) {
        const char *name = rfs_snapshot_index_name(snap, i);
        if (cfg.index && !sm_pattern_match(cfg.index, name))
            continue;
        const struct rfs_index_info *ii;
        if (rfs_snapshot_index_at(snap, i, &ii, err, sizeof(err))) {
            fprintf(stderr, "%s: index %s: %s\n", cli.prog, name, err);
            ex = RFS_CLI_EXIT_FAIL;
            if (cfg.json) {
                json_t *o = json_object();
                json_object_set_new(o, "name", json_string(name));
                json_object_set_new(o, "error", json_string(err));
                json_array_append_new(arr, o);
            }
            continue;
        }
        uint64_t bytes = 0;
        int64_t docs = 0;
        bool docs_known = true;
        json_t *shards = cfg.json ? json_array() : NULL;
        struct shard_summary *ss = sm_calloc((size_t)ii->number_of_shards, sizeof(*ss));
        if (!ss) {
            ex = RFS_CLI_EXIT_FAIL;
            json_decref(shards);
            break;
        }
        for (int s = 0; s < ii->number_of_shards; s++) {
            summarise_shard(snap, i, s, &cfg, &ss[s]);
            bytes += ss[s].bytes;
            if (ss[s].live_docs >= 0)
                docs += ss[s].live_docs;
            else
                docs_known = false;
            if (!ss[s].ok) {
                fprintf(stderr, "%s: index %s shard %d: %s\n", cli.prog, name, s, ss[s].error);
                ex = RFS_CLI_EXIT_FAIL;
            }
        }
        const char *replicas = json_string_value(json_object_get(ii->settings, "index.number_of_replicas"));
        const char *codec = json_string_value(json_object_get(ii->settings, "index.codec"));
        const char *soft = json_string_value(json_object_get(ii->settings, "index.soft_deletes.enabled"));
        if (cfg.json) {
            for (int s = 0; s < ii->number_of_shards; s++) {
                json_t *o = json_object();
                json_object_set_new(o, "shard", json_integer(s));
                json_object_set_new(o, "files", json_integer((json_int_t)ss[s].files));
                json_object_set_new(o, "size_bytes", json_integer((json_int_t)ss[s].bytes));
                json_object_set_new(o, "docs", ss[s].live_docs >= 0 ? json_integer(ss[s].live_docs) : json_null());
                json_object_set_new(o, "max_doc", ss[s].max_doc >= 0 ? json_integer(ss[s].max_doc) : json_null());
                json_object_set_new(o, "segments", json_integer((json_int_t)ss[s].segments));
                if (ss[s].commit[0])
                    json_object_set_new(o, "commit", json_string(ss[s].commit));
                if (!ss[s].ok)
                    json_object_set_new(o, "error", json_string(ss[s].error));
                json_array_append_new(shards, o);
            }
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(ii->name));
            json_object_set_new(o, "repository_id", json_string(ii->repo_id));
            json_object_set_new(o, "uuid", ii->index_uuid ? json_string(ii->index_uuid) : json_null());
            json_object_set_new(o, "created_version", ii->created_version[0] ? json_string(ii->created_version)
                                                                              : json_null());
            json_object_set_new(o, "created_product", ii->created_product ? json_string(ii->created_product)
                                                                           : json_null());
            json_object_set_new(o, "number_of_shards", json_integer(ii->number_of_shards));
            json_object_set_new(o, "docs", docs_known ? json_integer(docs) : json_null());
            json_object_set_new(o, "size_bytes", json_integer((json_int_t)bytes));
            json_object_set_new(o, "shards", shards);
            json_object_set(o, "settings", ii->settings);
            json_object_set(o, "mappings", ii->mappings);
            json_object_set(o, "aliases", ii->aliases);
            json_array_append_new(arr, o);
        } else {
            char sz[32];
            printf("%s  shards=%d docs=%s%lld size=%s created=%s%s uuid=%s\n", ii->name, ii->number_of_shards,
                   docs_known ? "" : ">=", (long long)docs, rfs_cli_size(bytes, sz, sizeof(sz)),
                   ii->created_product && !strcmp(ii->created_product, "OpenSearch") ? "OpenSearch " : "",
                   ii->created_version[0] ? ii->created_version : "?", ii->index_uuid ? ii->index_uuid : "-");
            printf("  settings: replicas=%s codec=%s soft_deletes=%s (%zu settings)\n", replicas ? replicas : "-",
                   codec ? codec : "default", soft ? soft : "-", json_object_size(ii->settings));
            printf("  mappings:");
            const char *type;
            json_t *m;
            if (!json_object_size(ii->mappings))
                printf(" none");
            json_object_foreach(ii->mappings, type, m)
                printf(" %s (%zu fields)", type, mapping_fields(m));
            printf("\n  aliases: %zu\n", json_object_size(ii->aliases));
            for (int s = 0; s < ii->number_of_shards; s++) {
                if (ss[s].ok)
                    printf("  shard %d: %lld docs (%lld with deleted), %zu segments, %zu files, %s, %s\n", s,
                           (long long)ss[s].live_docs, (long long)ss[s].max_doc, ss[s].segments, ss[s].files,
                           rfs_cli_size(ss[s].bytes, sz, sizeof(sz)), ss[s].commit);
                else
                    printf("  shard %d: error: %s\n", s, ss[s].error);
            }
        }
        sm_free(ss);
    }
    if (cfg.json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(arr);
    }
    rfs_snapshot_close(snap);
close_repo:
    rfs_repo_close(repo);
    rfs_dir_close(dir);
out:
    sm_opts_free(indices_opts, &cfg);
    return ex;
}

/* ---- restore-shard: copy one shard's Lucene files out of the repository ---- */

struct restore_cfg {
    char *repo;
    char *snapshot;
    char *index;
    int64_t shard;
    char *dest;
};

#define ROFF(f) offsetof(struct restore_cfg, f)

static const struct sm_opt restore_opts[] = {
    { "repo", SM_OPT_STR, ROFF(repo), NULL, "snapshot repository directory", NULL, 0, "DIR" },
    { "snapshot", SM_OPT_STR, ROFF(snapshot), NULL, "snapshot name (or uuid)", NULL, 0, "NAME" },
    { "index", SM_OPT_STR, ROFF(index), NULL, "index name", NULL, 0, "NAME" },
    { "shard", SM_OPT_INT, ROFF(shard), "0", "shard number", NULL, 0, "N" },
    { "dest", SM_OPT_STR, ROFF(dest), NULL, "existing empty directory to write the Lucene files to", NULL, 0, "DIR" },
    SM_OPT_END
};

static int copy_blob(struct rfs_blob *b, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "wbx");
    if (!fp)
        return sm_errf(err, errlen, SM_EIO, "%s: cannot create", path);
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = sm_malloc(CHUNK);
    int rc = buf ? SM_OK : SM_ENOMEM;
    for (uint64_t off = 0; !rc && off < b->size;) {
        size_t take = b->size - off < CHUNK ? (size_t)(b->size - off) : CHUNK;
        if ((rc = rfs_blob_read_at(b, off, buf, take)))
            rc = sm_errf(err, errlen, rc, "%s: read at %llu: %s", b->name, (unsigned long long)off, sm_strerror(rc));
        else if (fwrite(buf, 1, take, fp) != take)
            rc = sm_errf(err, errlen, SM_EIO, "%s: write failed", path);
        off += take;
    }
    sm_free(buf);
    if (fclose(fp) && !rc)
        rc = sm_errf(err, errlen, SM_EIO, "%s: write failed", path);
    return rc;
}

int rfs_cmd_restore_shard(int argc, char **argv)
{
    struct restore_cfg cfg = { 0 };
    struct sm_cli cli = { "searchmig-rfs restore-shard",
                          "--repo DIR --snapshot NAME --index NAME [--shard N] --dest DIR",
                          "Copies one shard's Lucene files out of the repository under their Lucene names, "
                          "checking each file's length and CRC32 against the snapshot metadata. The result is a "
                          "plain Lucene index directory (see 'docs --lucene-dir').", restore_opts, false };
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, NULL);
    if (ex >= 0)
        goto out;
    ex = RFS_CLI_EXIT_USAGE;
    if (!cfg.snapshot || !cfg.index || !cfg.dest) {
        fprintf(stderr, "%s: --snapshot, --index and --dest are required\n", cli.prog);
        goto out;
    }
    struct rfs_dir *dir;
    struct rfs_repo *repo;
    if ((ex = open_repo(cli.prog, cfg.repo, &dir, &repo)))
        goto out;
    ex = RFS_CLI_EXIT_FAIL;
    char err[1024];
    struct rfs_snapshot *snap = NULL;
    struct rfs_shard *sh = NULL;
    size_t idx;
    int rc = rfs_snapshot_open(repo, cfg.snapshot, &snap, err, sizeof(err));
    if (!rc && (rc = rfs_snapshot_index_find(snap, cfg.index, &idx)))
        sm_errf(err, sizeof(err), rc, "snapshot %s has no index '%s'", cfg.snapshot, cfg.index);
    if (!rc)
        rc = rfs_shard_open(snap, idx, (int)cfg.shard, &sh, err, sizeof(err));
    for (size_t i = 0; !rc && i < sh->nfiles; i++) {
        struct rfs_blob *b = NULL;
        if ((rc = rfs_shard_file_open(sh, &sh->files[i], RFS_SHARD_VERIFY_CRC, &b, err, sizeof(err))))
            break;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", cfg.dest, sh->files[i].physical_name);
        rc = copy_blob(b, path, err, sizeof(err));
        rfs_blob_close(b);
    }
    if (rc)
        fprintf(stderr, "%s: %s\n", cli.prog, err);
    else
        ex = RFS_CLI_EXIT_OK;
    rfs_shard_close(sh);
    rfs_snapshot_close(snap);
    rfs_repo_close(repo);
    rfs_dir_close(dir);
out:
    sm_opts_free(restore_opts, &cfg);
    return ex;
}
