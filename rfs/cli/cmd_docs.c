/* searchmig-rfs docs: one JSON line per live document of a snapshot (or of a
 * plain Lucene index directory):
 *   {"_index":..,"_id":..,"_routing":..,"_type":..,"_source":{..}}
 * _routing only when set; _type when the index has mapping types (ES <= 6:
 * the _uid type, or the single mapping type of a 6.x index when it is not
 * "_doc"). JSON _source is written as stored, except that CR/LF bytes (which
 * valid JSON can only hold as whitespace between tokens) become spaces so a
 * document stays on one line; SMILE and CBOR _source are converted to JSON;
 * LZF (ES 1.x compressed _source) is decompressed first; YAML is refused. */
#include "cli/cli.h"
#include "repo/source_json.h"
#include "smile/smile.h"   /* rfs_json_append_string */

#include "io/s3.h"   /* rfs_dir_open_uri: DIR or s3://bucket/prefix */

#include "lucene/esdoc.h"
#include "lucene/lucene.h"
#include "snapshot/shard_reader.h"
#include "snapshot/snapshot.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES (1024u * 1024 * 1024)   /* one document line */

struct docs_cfg {
    char *repo;
    char *snapshot;
    char *index;
    int64_t shard;
    char *lucene_dir;
    char *output;
    bool allow_untested;
    bool verify_crc;
    char *segment_checksums;
    enum rfs_lu_checksums crc_mode;
};

#define OFF(f) offsetof(struct docs_cfg, f)

static const struct sm_opt docs_opts[] = {
    { "repo", SM_OPT_STR, OFF(repo), NULL, "snapshot repository directory", NULL, 0, "DIR" },
    { "snapshot", SM_OPT_STR, OFF(snapshot), NULL, "snapshot name (or uuid)", NULL, 0, "NAME" },
    { "index", SM_OPT_STR, OFF(index), NULL,
      "with --repo: indices matching these patterns (\"logs-*,-logs-old\"); with --lucene-dir: the index name to "
      "print (default: the directory name)", NULL, 0, "PATTERN" },
    { "shard", SM_OPT_INT, OFF(shard), "-1", "only this shard number", NULL, 0, "N" },
    { "lucene-dir", SM_OPT_STR, OFF(lucene_dir), NULL, "read a plain Lucene index directory instead of a snapshot",
      NULL, 0, "DIR" },
    { "output", SM_OPT_STR, OFF(output), NULL, "write to FILE instead of standard output", NULL, 0, "FILE" },
    { "allow-untested", SM_OPT_BOOL, OFF(allow_untested), "false",
      "read Lucene formats implemented but never checked on real bytes", NULL, 0, NULL },
    { "verify-crc", SM_OPT_BOOL, OFF(verify_crc), "false",
      "recompute the CRC32 of every shard file against the snapshot metadata before reading it", NULL, 0, NULL },
    RFS_CLI_OPT_SEGMENT_CHECKSUMS(struct docs_cfg, segment_checksums),
    SM_OPT_END
};

struct docs_run {
    const char *prog;
    FILE *out;
    struct sm_buf line;
    uint64_t written, failed_docs, failed_shards;
    uint64_t no_id, no_source;
    unsigned reported;
};

/* A document that could not be written; the first 20 are reported. */
static void report(struct docs_run *r, const char *where, const char *id, const char *msg)
{
    if (r->reported++ < 20)
        fprintf(stderr, "%s: %s: document %s: %s\n", r->prog, where, id, msg);
}

/* Writes one document line. Returns SM_OK, or an error for this document
 * (err says why); I/O errors are returned as SM_EIO. */
static int write_doc(struct docs_run *r, const char *index, const struct rfs_esdoc *d, const char *fallback_type,
                     char *err, size_t errlen)
{
    struct sm_buf *b = &r->line;
    sm_buf_reset(b);
    int rc = sm_buf_append_str(b, "{\"_index\":");
    if (!rc)
        rc = rfs_json_append_string(b, (const uint8_t *)index, strlen(index));
    if (!rc)
        rc = sm_buf_append_str(b, ",\"_id\":");
    if (!rc)
        rc = rfs_json_append_string(b, (const uint8_t *)d->id, d->id_len);
    if (!rc && d->routing) {
        rc = sm_buf_append_str(b, ",\"_routing\":");
        if (!rc)
            rc = rfs_json_append_string(b, (const uint8_t *)d->routing, d->routing_len);
    }
    const char *type = d->type;
    size_t type_len = d->type_len;
    if (!type && fallback_type) {
        type = fallback_type;
        type_len = strlen(fallback_type);
    }
    if (!rc && type && !(type_len == 4 && !memcmp(type, "_doc", 4))) {
        rc = sm_buf_append_str(b, ",\"_type\":");
        if (!rc)
            rc = rfs_json_append_string(b, (const uint8_t *)type, type_len);
    }
    if (!rc)
        rc = sm_buf_append_str(b, ",\"_source\":");
    if (rc)
        return sm_errf(err, errlen, rc, "%s", sm_strerror(rc));
    if ((rc = rfs_source_append_json(b, d->source, d->source_len, d->content_type, err, errlen)))
        return rc;
    if ((rc = sm_buf_append(b, "}\n", 2)))
        return sm_errf(err, errlen, rc, "%s", sm_strerror(rc));
    if (fwrite(b->data, 1, b->len, r->out) != b->len)
        return sm_errf(err, errlen, SM_EIO, "write failed: %s", strerror(errno));
    r->written++;
    return SM_OK;
}

/* All documents of one Lucene index. Returns SM_EIO only for output errors
 * (stop everything); other failures are counted. */
static int dump_index(struct docs_run *r, struct rfs_lucene_index *li, const char *index, const char *where,
                      const char *fallback_type, const struct docs_cfg *cfg)
{
    char err[1024];
    struct rfs_es_iter *it = NULL;
    int rc = rfs_es_iter_open(li, 0, 0, &it, err, sizeof(err));
    uint64_t before = r->written;
    while (!rc) {
        const struct rfs_esdoc *d = NULL;
        if ((rc = rfs_es_iter_next(it, &d, err, sizeof(err))) || !d)
            break;
        char derr[512];
        int wrc = write_doc(r, index, d, fallback_type, derr, sizeof(derr));
        if (wrc == SM_EIO) {
            fprintf(stderr, "%s: %s: %s\n", r->prog, cfg->output ? cfg->output : "stdout", derr);
            rc = SM_EIO;
            goto done;
        }
        if (wrc) {
            r->failed_docs++;
            report(r, where, d->id, derr);
        }
    }
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", r->prog, where, err);
        r->failed_shards++;
        rc = SM_OK;
    }
    if (it) {
        struct rfs_es_iter_stats st;
        rfs_es_iter_stats(it, &st);
        r->no_id += st.no_id;
        r->no_source += st.no_source;
        if (st.no_source)
            fprintf(stderr, "%s: %s: %llu live documents have no _source and were not written\n", r->prog, where,
                    (unsigned long long)st.no_source);
        sm_dbg(SM_DBG_LUCENE, "%s: %llu docs, %llu deleted, %llu soft-deleted, %llu nested", where,
               (unsigned long long)(r->written - before), (unsigned long long)st.lucene.hard_deleted,
               (unsigned long long)st.lucene.soft_deleted, (unsigned long long)st.no_id);
    }
done:
    rfs_es_iter_close(it);
    return rc;
}

/* The single mapping type of an ES <= 6 index when it is not "_doc". */
static const char *legacy_type(const struct rfs_index_info *ii)
{
    if (!ii->created_id || ii->created_product == NULL || strcmp(ii->created_product, "Elasticsearch") ||
        rfs_version_major(ii->created_id) > 6 || json_object_size(ii->mappings) != 1)
        return NULL;
    const char *type;
    json_t *m;
    json_object_foreach(ii->mappings, type, m)
        return strcmp(type, "_doc") ? type : NULL;
    return NULL;
}

static int dump_snapshot(struct docs_run *r, const struct docs_cfg *cfg)
{
    char err[1024];
    struct rfs_dir *dir = NULL;
    struct rfs_repo *repo = NULL;
    struct rfs_snapshot *snap = NULL;
    int rc = rfs_dir_open_uri(cfg->repo, NULL, &dir, err, sizeof(err));
    if (!rc)
        rc = rfs_repo_open(dir, &repo, err, sizeof(err));
    if (!rc)
        rc = rfs_snapshot_open(repo, cfg->snapshot, &snap, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: %s\n", r->prog, err);
        goto out;
    }
    size_t matched = 0;
    for (size_t i = 0; i < rfs_snapshot_index_count(snap) && rc != SM_EIO; i++) {
        const char *name = rfs_snapshot_index_name(snap, i);
        if (cfg->index && !sm_pattern_match(cfg->index, name))
            continue;
        matched++;
        const struct rfs_index_info *ii;
        if (rfs_snapshot_index_at(snap, i, &ii, err, sizeof(err))) {
            fprintf(stderr, "%s: index %s: %s\n", r->prog, name, err);
            r->failed_shards++;
            continue;
        }
        if (cfg->shard >= ii->number_of_shards) {
            fprintf(stderr, "%s: index %s has %d shards, no shard %lld\n", r->prog, name, ii->number_of_shards,
                    (long long)cfg->shard);
            r->failed_shards++;
            continue;
        }
        const char *ftype = legacy_type(ii);
        for (int s = 0; s < ii->number_of_shards && rc != SM_EIO; s++) {
            if (cfg->shard >= 0 && s != cfg->shard)
                continue;
            char where[600];
            snprintf(where, sizeof(where), "index %s shard %d", name, s);
            struct rfs_shard_reader *sr = NULL;
            struct rfs_lucene_opts lo = { .allow_untested = cfg->allow_untested };
            rfs_lu_checksums_apply(cfg->crc_mode, &lo);
            if (rfs_shard_reader_open(snap, i, s, cfg->verify_crc ? RFS_SHARD_VERIFY_CRC : RFS_SHARD_DIR_DEFAULT,
                                      &lo, &sr, err, sizeof(err))) {
                fprintf(stderr, "%s: %s: %s\n", r->prog, where, err);
                r->failed_shards++;
            } else {
                rc = dump_index(r, sr->index, name, where, ftype, cfg);
            }
            rfs_shard_reader_close(sr);
        }
    }
    if (!matched && cfg->index) {
        fprintf(stderr, "%s: no index of snapshot %s matches '%s'\n", r->prog, cfg->snapshot, cfg->index);
        r->failed_shards++;
    }
out:
    rfs_snapshot_close(snap);
    rfs_repo_close(repo);
    rfs_dir_close(dir);
    return rc;
}

int rfs_cmd_docs(int argc, char **argv)
{
    struct docs_cfg cfg = { 0 };
    struct sm_cli cli = { "searchmig-rfs docs",
                          "(--repo DIR --snapshot NAME [--index PATTERN] [--shard N] | --lucene-dir DIR [--index NAME])"
                          " [--output FILE]",
                          "Writes one JSON line per live document: {\"_index\",\"_id\",\"_routing\" (when set),"
                          "\"_type\" (indices with mapping types),\"_source\"}. Deleted, soft-deleted and nested "
                          "documents are not written. Errors name the file; the exit code is 1 if any shard or "
                          "document could not be read.", docs_opts, false };
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, NULL);
    if (ex >= 0)
        goto out;
    ex = RFS_CLI_EXIT_USAGE;
    if (rfs_cli_segment_checksums(cli.prog, cfg.segment_checksums, &cfg.crc_mode))
        goto out;
    if (!cfg.lucene_dir == !cfg.repo) {
        fprintf(stderr, "%s: give either --repo DIR --snapshot NAME or --lucene-dir DIR\n", cli.prog);
        goto out;
    }
    if (cfg.repo && !cfg.snapshot) {
        fprintf(stderr, "%s: --snapshot NAME is required with --repo\n", cli.prog);
        goto out;
    }
    struct docs_run r = { .prog = cli.prog, .out = stdout };
    sm_buf_init(&r.line, LINE_MAX_BYTES);
    if (cfg.output && !(r.out = fopen(cfg.output, "wb"))) {
        fprintf(stderr, "%s: %s: %s\n", cli.prog, cfg.output, strerror(errno));
        ex = RFS_CLI_EXIT_FAIL;
        goto out;
    }
    static char obuf[1 << 20];
    setvbuf(r.out, obuf, _IOFBF, sizeof(obuf));
    int rc;
    if (cfg.lucene_dir) {
        char err[1024];
        struct rfs_dir *dir = NULL;
        if ((rc = rfs_dir_open_uri(cfg.lucene_dir, NULL, &dir, err, sizeof(err)))) {
            fprintf(stderr, "%s: %s\n", cli.prog, err);
            r.failed_shards++;
        } else {
            const char *name = cfg.index;
            if (!name) {
                const char *slash = strrchr(cfg.lucene_dir, '/');
                name = slash && slash[1] ? slash + 1 : cfg.lucene_dir;
            }
            struct rfs_lucene_opts lo = { .allow_untested = cfg.allow_untested };
            rfs_lu_checksums_apply(cfg.crc_mode, &lo);
            struct rfs_lucene_index *li = NULL;
            if ((rc = rfs_lucene_open(dir, &lo, &li, err, sizeof(err)))) {
                fprintf(stderr, "%s: %s: %s\n", cli.prog, cfg.lucene_dir, err);
                r.failed_shards++;
                rc = SM_OK;
            } else {
                rc = dump_index(&r, li, name, cfg.lucene_dir, NULL, &cfg);
            }
            rfs_lucene_close(li);
            rfs_dir_close(dir);
        }
    } else {
        rc = dump_snapshot(&r, &cfg);
        if (rc && rc != SM_EIO)
            r.failed_shards++;
    }
    if (fflush(r.out) || (r.out != stdout && fclose(r.out))) {
        fprintf(stderr, "%s: %s: %s\n", cli.prog, cfg.output ? cfg.output : "stdout", strerror(errno));
        rc = SM_EIO;
    }
    sm_buf_free(&r.line);
    fprintf(stderr, "%s: %llu documents written", cli.prog, (unsigned long long)r.written);
    if (r.no_id)
        fprintf(stderr, ", %llu nested (not top-level) skipped", (unsigned long long)r.no_id);
    if (r.failed_docs || r.no_source)
        fprintf(stderr, ", %llu documents NOT written", (unsigned long long)(r.failed_docs + r.no_source));
    if (r.failed_shards)
        fprintf(stderr, ", %llu shards/indices FAILED", (unsigned long long)r.failed_shards);
    fprintf(stderr, "\n");
    ex = (rc || r.failed_docs || r.no_source || r.failed_shards) ? RFS_CLI_EXIT_FAIL : RFS_CLI_EXIT_OK;
out:
    sm_opts_free(docs_opts, &cfg);
    return ex;
}
