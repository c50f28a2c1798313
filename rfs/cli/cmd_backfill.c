/* searchmig-rfs backfill: every live document of a snapshot into the target,
 * with workers coordinated through an index on the target (rfs/backfill/,
 * docs/backfill.md). Exit codes: 0 done, 1 failed items/rejected documents or
 * an error, 2 usage, 3 work remains (stopped, or --no-wait with items held by
 * other workers). */
#include "cli/cli.h"

#include "backfill/backfill.h"
#include "backfill/typerules.h"
#include "io/s3.h"

#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/opt.h>

#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct backfill_cli {
    struct sm_http_opts target;
    char *repo, *snapshot, *lucene_dir, *index, *coord_index, *worker_id, *dry_run, *failures_file;
    char *s3_endpoint, *s3_region, *s3_profile, *metadata_report, *segment_checksums, *ingest_pipeline;
    uint64_t s3_readahead;
    struct sm_strlist rename, type_index;
    int64_t workers, inflight, max_item_attempts, bulk_retries;
    uint64_t batch_docs, batch_bytes, lease_ms, checkpoint_ms, poll_ms, split_docs, progress_ms;
    bool allow_untested, verify_crc, no_wait, quiet, typed, coerce_booleans;
};

#define OFF(f) offsetof(struct backfill_cli, f)

static const struct sm_opt backfill_opts[] = {
    { "repo", SM_OPT_STR, OFF(repo), NULL, "snapshot repository: a directory or s3://bucket/prefix", NULL, 0, "DIR|URI" },
    { "snapshot", SM_OPT_STR, OFF(snapshot), NULL, "snapshot name (or uuid)", NULL, 0, "NAME" },
    { "index", SM_OPT_STR, OFF(index), NULL, "only indices matching these patterns (\"logs-*,-logs-old\"); with "
      "--lucene-dir: the index name to write", NULL, 0, "PATTERN" },
    { "lucene-dir", SM_OPT_STR, OFF(lucene_dir), NULL, "read one plain Lucene index directory (a shard copied off a "
      "node) instead of a snapshot", NULL, 0, "DIR" },
    SM_HTTP_OPTS("target", "SM_TARGET", struct backfill_cli, target),
    { "workers", SM_OPT_INT, OFF(workers), "1", "worker threads in this process", NULL, 0, "N" },
    { "inflight", SM_OPT_INT, OFF(inflight), "2", "bulk requests in flight per worker", NULL, 0, "N" },
    { "batch-docs", SM_OPT_INT, OFF(batch_docs), "1000", "documents per bulk request at most", NULL, 0, "N" },
    { "batch-bytes", SM_OPT_SIZE, OFF(batch_bytes), "8MiB", "bulk body size at most (a single larger document "
      "goes alone)", NULL, 0, "SIZE" },
    { "coordination-index", SM_OPT_STR, OFF(coord_index), RFS_BACKFILL_DEFAULT_COORD_INDEX,
      "index on the target holding the work items", NULL, 0, "NAME" },
    { "worker-id", SM_OPT_STR, OFF(worker_id), NULL, "name of this worker in the leases (default host-pid/n)", NULL, 0,
      "ID" },
    { "lease", SM_OPT_DURATION, OFF(lease_ms), "5m", "lease length; renewed every third of it", NULL, 0, NULL },
    { "checkpoint-interval", SM_OPT_DURATION, OFF(checkpoint_ms), "10s", "write the checkpoint at least this often",
      NULL, 0, NULL },
    { "poll-interval", SM_OPT_DURATION, OFF(poll_ms), "5s", "wait between claim attempts while others hold the "
      "remaining items", NULL, 0, NULL },
    { "split-docs", SM_OPT_INT, OFF(split_docs), "1000000", "split shards into work items of this many documents "
      "(0: one item per shard)", NULL, 0, "N" },
    { "max-item-attempts", SM_OPT_INT, OFF(max_item_attempts), "3", "failed attempts before an item is marked failed",
      NULL, 0, "N" },
    { "bulk-retries", SM_OPT_INT, OFF(bulk_retries), "8", "retry rounds per bulk request for 429/5xx items and "
      "connection errors, after the HTTP client's own retries", NULL, 0, "N" },
    { "failures-file", SM_OPT_STR, OFF(failures_file), NULL, "append rejected documents with the reason (NDJSON)",
      NULL, 0, "FILE" },
    { "ingest-pipeline", SM_OPT_STR, OFF(ingest_pipeline), "_none", "_none: documents go in as the snapshot holds "
      "them, the indices' default pipelines skipped (they ran on the source; a final pipeline still runs); "
      "default: let the default pipelines run; NAME: run this pipeline on every document", NULL, 0, "NAME" },
    { "index-rename", SM_OPT_KV, OFF(rename), NULL, "write index OLD as NEW (repeatable)", NULL, 0, "OLD=NEW" },
    { "type-index", SM_OPT_KV, OFF(type_index), NULL, "send documents of TYPE in multi-type index INDEX (ES <= 6) "
      "to NEWINDEX (repeatable; the \"split\" strategy of the metadata migration)", NULL, 0, "INDEX/TYPE=NEWINDEX" },
    { "metadata-report", SM_OPT_STR, OFF(metadata_report), NULL, "apply the type rules of this report of "
      "'searchmig-rfs metadata migrate --report' (multi-type indices split/union as migrated) and coerce legacy "
      "booleans in the fields it warns about", NULL, 0, "FILE" },
    { "coerce-legacy-booleans", SM_OPT_BOOL, OFF(coerce_booleans), "false", "with --metadata-report: turn "
      "\"on\"/\"off\"/\"yes\"/\"no\"/\"1\"/\"0\"/0/1 into true/false in every boolean field of the report's "
      "target mappings, not only those it warns about", NULL, 0, NULL },
    { "dry-run", SM_OPT_STR, OFF(dry_run), NULL, "write the bulk bodies to FILE ('-': stdout) instead of a target",
      NULL, 0, "FILE" },
    { "dry-run-typed", SM_OPT_BOOL, OFF(typed), "false", "with --dry-run: keep _type (Elasticsearch 6 targets)", NULL, 0,
      NULL },
    { "no-wait", SM_OPT_BOOL, OFF(no_wait), "false", "exit (code 3) instead of waiting when the remaining items are "
      "leased by other workers", NULL, 0, NULL },
    { "progress-interval", SM_OPT_DURATION, OFF(progress_ms), "5s", "progress output interval (0: none)", NULL, 0,
      NULL },
    { "quiet", SM_OPT_BOOL, OFF(quiet), "false", "no progress output", NULL, 0, NULL },
    { "s3-endpoint", SM_OPT_STR, OFF(s3_endpoint), NULL, "S3-compatible endpoint (path-style addressing); default AWS",
      "SM_S3_ENDPOINT", 0, "URL" },
    { "s3-region", SM_OPT_STR, OFF(s3_region), NULL, "S3 region (default AWS_REGION, else us-east-1)", NULL, 0,
      "REGION" },
    { "s3-profile", SM_OPT_STR, OFF(s3_profile), NULL, "AWS credentials profile for S3", NULL, 0, "NAME" },
    { "s3-readahead", SM_OPT_SIZE, OFF(s3_readahead), "1MiB", "S3 read-ahead window per open file", NULL, 0, "SIZE" },
    { "allow-untested", SM_OPT_BOOL, OFF(allow_untested), "false",
      "read Lucene formats implemented but never checked on real bytes", NULL, 0, NULL },
    { "verify-crc", SM_OPT_BOOL, OFF(verify_crc), "false", "recompute the CRC32 of every shard file first", NULL, 0,
      NULL },
    RFS_CLI_OPT_SEGMENT_CHECKSUMS(struct backfill_cli, segment_checksums),
    SM_OPT_END
};

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    sm_http_stop_waiting();   /* requests held for an unreachable target fail now */
}

int rfs_cmd_backfill(int argc, char **argv)
{
    struct backfill_cli cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct rfs_typerules *tr = NULL;
    struct sm_cli cli = { "searchmig-rfs backfill",
                          "--repo DIR|s3://bucket/prefix --snapshot NAME (--target URL | --dry-run FILE) [OPTIONS]",
                          "Sends every live document of the snapshot to the target with _bulk index requests "
                          "(preserving _id and routing). Any number of processes with the same --target and "
                          "--coordination-index share the work; a killed worker's item is resumed from its "
                          "checkpoint by another after the lease expires. Exit codes: 0 done, 1 failed items or "
                          "rejected documents, 2 usage, 3 work remains.", backfill_opts, true };
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, NULL);
    if (ex >= 0)
        goto out;
    ex = RFS_CLI_EXIT_USAGE;
    if (cfg.lucene_dir ? (cfg.repo || cfg.snapshot || !cfg.index) : (!cfg.repo || !cfg.snapshot)) {
        fprintf(stderr, "%s: give --repo DIR --snapshot NAME, or --lucene-dir DIR --index NAME\n", cli.prog);
        goto out;
    }
    if (!cfg.target.url && !cfg.dry_run) {
        fprintf(stderr, "%s: give --target URL (or --dry-run FILE)\n", cli.prog);
        goto out;
    }
    if (cfg.workers < 1 || cfg.workers > 256 || cfg.inflight < 1 || cfg.inflight > 64 || cfg.batch_docs < 1 ||
        cfg.batch_bytes < 1 || cfg.max_item_attempts < 1 || cfg.bulk_retries < 0 || cfg.lease_ms < 1000) {
        fprintf(stderr, "%s: --workers 1..256, --inflight 1..64, --batch-docs/--batch-bytes/--max-item-attempts >= 1, "
                        "--lease >= 1s\n", cli.prog);
        goto out;
    }
    for (size_t i = 0; i < cfg.rename.n; i++)
        if (!strchr(cfg.rename.v[i], '=') || cfg.rename.v[i][0] == '=') {
            fprintf(stderr, "%s: --index-rename '%s': expected OLD=NEW\n", cli.prog, cfg.rename.v[i]);
            goto out;
        }
    enum rfs_lu_checksums crc_mode;
    if (rfs_cli_segment_checksums(cli.prog, cfg.segment_checksums, &crc_mode))
        goto out;
    if (cfg.coerce_booleans && !cfg.metadata_report) {
        fprintf(stderr, "%s: --coerce-legacy-booleans needs --metadata-report FILE (the target mappings)\n", cli.prog);
        goto out;
    }
    if (cfg.metadata_report) {
        char terr[1024];
        if (rfs_typerules_load(cfg.metadata_report, cfg.coerce_booleans, &tr, terr, sizeof(terr))) {
            fprintf(stderr, "%s: %s\n", cli.prog, terr);
            ex = RFS_CLI_EXIT_FAIL;
            goto out;
        }
        size_t nr, nb;
        rfs_typerules_counts(tr, &nr, &nb);
        sm_log_info("metadata report %s: type rules for %zu indices, legacy booleans coerced in %zu target indices",
                    cfg.metadata_report, nr, nb);
    }
    struct rfs_s3_opts s3 = { .endpoint = cfg.s3_endpoint, .region = cfg.s3_region, .profile = cfg.s3_profile,
                              .readahead = cfg.s3_readahead, .max_retries = -1 };
    struct rfs_backfill_cfg bc = {
        .repo = cfg.lucene_dir ? cfg.lucene_dir : cfg.repo, .s3 = &s3,
        .snapshot = cfg.lucene_dir ? cfg.index : cfg.snapshot, .lucene_dir = cfg.lucene_dir,
        .index_pattern = cfg.lucene_dir ? NULL : cfg.index, .target = &cfg.target,
        .coord_index = cfg.coord_index, .worker_id = cfg.worker_id, .workers = (int)cfg.workers,
        .inflight = (int)cfg.inflight, .batch_docs = cfg.batch_docs, .batch_bytes = cfg.batch_bytes,
        .lease_ms = cfg.lease_ms, .checkpoint_ms = cfg.checkpoint_ms, .poll_ms = cfg.poll_ms ? cfg.poll_ms : 1000,
        .split_docs = cfg.split_docs, .max_item_attempts = (int)cfg.max_item_attempts,
        .bulk_retries = (int)cfg.bulk_retries, .failures_file = cfg.failures_file, .ingest_pipeline = cfg.ingest_pipeline, .rename = &cfg.rename, .type_index = &cfg.type_index,
        .typerules = tr,
        .allow_untested = cfg.allow_untested, .verify_crc = cfg.verify_crc, .no_wait = cfg.no_wait,
        .segment_checksums = crc_mode,
        .progress_ms = cfg.quiet ? 0 : cfg.progress_ms, .progress = cfg.quiet ? NULL : stderr,
        .progress_tty = isatty(2) != 0, .stop = &stop_flag,
    };
    char err[1024] = "";
    struct rfs_backfill_summary sum;
    if (cfg.dry_run) {
        int rc = rfs_backfill_dry_run(&bc, cfg.dry_run, cfg.typed, &sum, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "%s: %s\n", cli.prog, err);
            ex = RFS_CLI_EXIT_FAIL;
            goto out;
        }
        fprintf(stderr, "%s: dry run: %" PRIu64 " documents (%" PRIu64 " bytes of bulk bodies) from %" PRIu64
                " work items written to %s%s\n", cli.prog, sum.docs_sent, sum.bytes, sum.items_total, cfg.dry_run,
                sum.docs_rejected ? ", some documents NOT converted" : "");
        ex = sum.docs_rejected ? RFS_CLI_EXIT_FAIL : RFS_CLI_EXIT_OK;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    ex = rfs_backfill_run(&bc, &sum, err, sizeof(err));
    double secs = (double)sum.elapsed_ms / 1000.0;
    const char *tail = ex == RFS_BACKFILL_EXIT_DONE ? "; backfill complete"
                       : ex == RFS_BACKFILL_EXIT_MORE ? "; work remains" : "";
    if (ex != RFS_BACKFILL_EXIT_FAILED || sum.items_processed || sum.docs_sent)
        fprintf(stderr, "%s: %" PRIu64 " documents indexed, %" PRIu64 " rejected, %" PRIu64 " sent (%" PRIu64
                " bytes, %" PRIu64 " bulk requests, %" PRIu64 " item retries) in %.1fs; %" PRIu64
                " items done here%s\n", cli.prog, sum.docs_acked, sum.docs_rejected, sum.docs_sent, sum.bytes,
                sum.bulk_requests, sum.retried_items, secs, sum.items_done, tail);
    if (err[0] && ex != RFS_BACKFILL_EXIT_DONE)
        fprintf(stderr, "%s: %s\n", cli.prog, err);
out:
    rfs_typerules_free(tr);
    sm_opts_free(backfill_opts, &cfg);
    return ex;
}
