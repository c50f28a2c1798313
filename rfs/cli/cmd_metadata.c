/* searchmig-rfs metadata evaluate|migrate: templates and indices (settings,
 * mappings, aliases) from a snapshot or a live cluster to a target, with the
 * transformations of rfs/metadata/rules.c (docs/metadata.md). */
#include "cli/cli.h"

#include "io/s3.h"
#include "metadata/metadata.h"
#include "snapshot/snapshot.h"

#include <sm/err.h>
#include <sm/http.h>
#include <sm/mem.h>
#include <sm/opt.h>

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct md_cfg {
    char *repo;
    char *snapshot;
    struct sm_http_opts source;
    struct sm_http_opts target;
    char *index;
    char *template_pattern;
    char *report;
    bool overwrite;
    int64_t replicas;
    char *multi_type;
    bool drop_allocation;
    bool include_system;
    bool json;
    bool list_rules;
    char *s3_endpoint, *s3_region, *s3_profile;
};

#define OFF(f) offsetof(struct md_cfg, f)

static const struct sm_opt md_opts[] = {
    { "repo", SM_OPT_STR, OFF(repo), NULL, "snapshot repository: a directory or s3://bucket/prefix", NULL, 0,
      "DIR|URI" },
    { "snapshot", SM_OPT_STR, OFF(snapshot), NULL, "snapshot name (or uuid)", NULL, 0, "NAME" },
    SM_HTTP_OPTS("source", "SM_SOURCE", struct md_cfg, source),
    SM_HTTP_OPTS("target", "SM_TARGET", struct md_cfg, target),
    { "index", SM_OPT_STR, OFF(index), NULL, "only indices matching these patterns (\"logs-*,-logs-old\")", NULL, 0,
      "PATTERN" },
    { "template", SM_OPT_STR, OFF(template_pattern), NULL,
      "only templates (legacy, composable, component) matching these patterns", NULL, 0, "PATTERN" },
    { "report", SM_OPT_STR, OFF(report), NULL, "write the JSON report to FILE", NULL, 0, "FILE" },
    { "overwrite", SM_OPT_BOOL, OFF(overwrite), "false",
      "replace items that exist on the target (indices are deleted and recreated: their documents are lost)",
      NULL, 0, NULL },
    { "replicas", SM_OPT_INT, OFF(replicas), "-1", "set index.number_of_replicas of created indices (-1: keep)",
      NULL, 0, "N" },
    { "multi-type", SM_OPT_STR, OFF(multi_type), "union",
      "multi-type indices (Elasticsearch 5.x): union (merge the types' fields; conflicting definitions fail) or "
      "split (one index <index>_<type> per type)", NULL, 0, "union|split" },
    { "drop-allocation", SM_OPT_BOOL, OFF(drop_allocation), "false", "remove index.routing.allocation.* settings",
      NULL, 0, NULL },
    { "include-system", SM_OPT_BOOL, OFF(include_system), "false",
      "also migrate system/internal items (names starting with '.', X-Pack/stack templates)", NULL, 0, NULL },
    { "json", SM_OPT_BOOL, OFF(json), "false", "print the JSON report on standard output instead of the table",
      NULL, 0, NULL },
    { "list-rules", SM_OPT_BOOL, OFF(list_rules), "false", "print the transformation table and exit", NULL, 0,
      NULL },
    { "s3-endpoint", SM_OPT_STR, OFF(s3_endpoint), NULL, "S3-compatible endpoint (path-style addressing)",
      "SM_S3_ENDPOINT", 0, "URL" },
    { "s3-region", SM_OPT_STR, OFF(s3_region), NULL, "S3 region", NULL, 0, "REGION" },
    { "s3-profile", SM_OPT_STR, OFF(s3_profile), NULL, "AWS credentials profile for S3", NULL, 0, "NAME" },
    SM_OPT_END
};

static void print_table(const struct rfs_md_plan *plan, FILE *out)
{
    fprintf(out, "%-18s %-36s %-9s %-40s %s\n", "KIND", "NAME", "ACTION", "TRANSFORMATIONS", "PROBLEMS / NOTES");
    for (size_t i = 0; i < plan->nitems; i++) {
        const struct rfs_md_item *it = plan->items[i];
        char rules[256] = "";
        size_t o = 0, k;
        json_t *t;
        json_array_foreach(it->transforms, k, t) {
            int w = snprintf(rules + o, sizeof(rules) - o, "%s%s", o ? "," : "",
                             json_string_value(json_object_get(t, "rule")));
            if (w < 0 || (size_t)w >= sizeof(rules) - o)
                break;
            o += (size_t)w;
        }
        const char *why = it->error;
        if (!why)
            why = json_string_value(json_array_get(it->problems, 0));
        if (!why)
            why = json_string_value(json_array_get(it->notes, 0));
        size_t more = json_array_size(it->problems) + json_array_size(it->notes) - (why && !it->error ? 1 : 0);
        fprintf(out, "%-18s %-36s %-9s %-40s %s", rfs_md_kind_name(it->kind), it->name,
                rfs_md_action_name(it->action), o ? rules : "-", why ? why : "");
        if (more && why)
            fprintf(out, " (+%zu more in the report)", more);
        fprintf(out, "\n");
    }
}

static void range(char *buf, size_t len, int lo, int hi)
{
    if (hi >= 99)
        snprintf(buf, len, "%d+", lo);
    else if (lo == hi)
        snprintf(buf, len, "%d", lo);
    else
        snprintf(buf, len, "%d-%d", lo, hi);
}

static void print_rules(FILE *out)
{
    fprintf(out, "%-22s %-7s %-7s %-32s %s\n", "RULE", "SOURCE", "TARGET", "APPLIES TO", "WHAT");
    for (size_t i = 0; i < rfs_md_nrules; i++) {
        const struct rfs_md_rule *r = &rfs_md_rules[i];
        char s[16], t[16], kinds[128] = "";
        range(s, sizeof(s), r->src_min, r->src_max);
        range(t, sizeof(t), r->tgt_min, r->tgt_max);
        size_t o = 0;
        if (r->kinds == RFS_MD_ALL_KINDS)
            snprintf(kinds, sizeof(kinds), "all");
        for (int k = 0; r->kinds != RFS_MD_ALL_KINDS && k < RFS_MD_KINDS; k++)
            if (r->kinds & RFS_MD_KIND_BIT(k)) {
                int w = snprintf(kinds + o, sizeof(kinds) - o, "%s%s", o ? "," : "", rfs_md_kind_name(k));
                if (w > 0 && (size_t)w < sizeof(kinds) - o)
                    o += (size_t)w;
            }
        fprintf(out, "%-22s %-7s %-7s %-32s %s\n", r->name, s, t, kinds, r->description);
    }
    fprintf(out, "\nVersions are Elasticsearch majors; OpenSearch 1.x counts as 7, 2.x and later as 8.\n");
}

static int write_report(const char *path, json_t *rep, const char *prog)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (json_dump_file(rep, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) || rename(tmp, path)) {
        fprintf(stderr, "%s: cannot write the report %s\n", prog, path);
        return -1;
    }
    return 0;
}

int rfs_cmd_metadata(int argc, char **argv)
{
    struct md_cfg cfg = { 0 };
    struct sm_strlist pos = { 0 };
    struct sm_cli cli = { "searchmig-rfs metadata",
                          "evaluate|migrate (--repo DIR|s3://... --snapshot NAME | --source URL) --target URL [OPTIONS]",
                          "Migrates templates (component, composable, legacy) and indices (settings, mappings, "
                          "aliases) to the target, transformed for its version. 'evaluate' only reads the target and "
                          "reports what would be created; 'migrate' creates the items (component templates, index "
                          "templates, legacy templates, then indices). Items that exist are left alone unless "
                          "--overwrite. Exit code: 0 all ok, 1 some item failed or conflicts, 2 usage.",
                          md_opts, false };
    struct rfs_md_plan *plan = NULL;
    struct sm_http_client *tgt = NULL, *src = NULL;
    struct rfs_dir *dir = NULL;
    struct rfs_repo *repo = NULL;
    struct rfs_snapshot *snap = NULL;
    char err[2048];
    int ex = rfs_cli_parse(&cli, &cfg, argc, argv, &pos);
    if (ex >= 0)
        goto out;
    if (cfg.list_rules) {
        print_rules(stdout);
        ex = RFS_CLI_EXIT_OK;
        goto out;
    }
    ex = RFS_CLI_EXIT_USAGE;
    const char *mode = pos.n == 1 ? pos.v[0] : NULL;
    if (!mode || (strcmp(mode, "evaluate") && strcmp(mode, "migrate"))) {
        fprintf(stderr, "%s: expected 'evaluate' or 'migrate'\nTry '%s --help'.\n", cli.prog, cli.prog);
        goto out;
    }
    bool migrate = !strcmp(mode, "migrate");
    if (!cfg.target.url) {
        fprintf(stderr, "%s: --target URL is required\n", cli.prog);
        goto out;
    }
    if (!!cfg.repo == !!cfg.source.url || (cfg.repo && !cfg.snapshot)) {
        fprintf(stderr, "%s: give either --repo and --snapshot, or --source\n", cli.prog);
        goto out;
    }
    if (strcmp(cfg.multi_type, "union") && strcmp(cfg.multi_type, "split")) {
        fprintf(stderr, "%s: --multi-type must be union or split\n", cli.prog);
        goto out;
    }
    ex = RFS_CLI_EXIT_FAIL;
    struct rfs_md_opts mo = { .index_pattern = cfg.index, .template_pattern = cfg.template_pattern,
                              .include_system = cfg.include_system, .overwrite = cfg.overwrite,
                              .replicas = cfg.replicas, .drop_allocation = cfg.drop_allocation,
                              .multi_type = strcmp(cfg.multi_type, "split") ? RFS_MD_MULTI_UNION
                                                                            : RFS_MD_MULTI_SPLIT };
    if (!(plan = rfs_md_plan_new(&mo)))
        goto out;
    if (!(tgt = sm_http_client_new(&cfg.target, "target", err, sizeof(err)))) {
        fprintf(stderr, "%s: %s\n", cli.prog, err);
        goto out;
    }
    if (rfs_md_cluster_version(tgt, &plan->target, &plan->target_info, err, sizeof(err))) {
        fprintf(stderr, "%s: target: %s\n", cli.prog, err);
        goto out;
    }
    plan->target_known = true;
    int rc;
    if (cfg.repo) {
        struct rfs_s3_opts s3 = { .endpoint = cfg.s3_endpoint, .region = cfg.s3_region, .profile = cfg.s3_profile,
                                  .max_retries = -1 };
        rc = rfs_dir_open_uri(cfg.repo, &s3, &dir, err, sizeof(err));
        if (!rc)
            rc = rfs_repo_open(dir, &repo, err, sizeof(err));
        if (!rc)
            rc = rfs_snapshot_open(repo, cfg.snapshot, &snap, err, sizeof(err));
        if (!rc)
            rc = rfs_md_collect_snapshot(plan, snap, err, sizeof(err));
        if (!rc)
            json_object_set_new(plan->source_info, "repo", json_string(cfg.repo));
    } else {
        if (!(src = sm_http_client_new(&cfg.source, "source", err, sizeof(err))))
            rc = SM_ECONFIG;
        else
            rc = rfs_md_collect_live(plan, src, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", cli.prog, err);
        goto out;
    }
    if ((rc = rfs_md_transform(plan))) {
        fprintf(stderr, "%s: %s\n", cli.prog, sm_strerror(rc));
        goto out;
    }
    if ((rc = rfs_md_check_target(plan, tgt, err, sizeof(err)))) {
        fprintf(stderr, "%s: %s\n", cli.prog, err);
        goto out;
    }
    size_t bad = 0;
    if (migrate) {
        bad = rfs_md_apply(plan, tgt);
    } else {
        for (size_t i = 0; i < plan->nitems; i++)
            if (plan->items[i]->action == RFS_MD_CONFLICT || plan->items[i]->action == RFS_MD_FAILED)
                bad++;
    }
    json_t *rep = rfs_md_report(plan, mode);
    if (cfg.json) {
        json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("\n");
    } else {
        printf("%s %s %s -> %s %s (%s)\n", mode, plan->source.opensearch ? "OpenSearch" : "Elasticsearch",
               plan->source.number, plan->target.opensearch ? "OpenSearch" : "Elasticsearch", plan->target.number,
               sm_http_client_url(tgt));
        print_table(plan, stdout);
        json_t *sum = json_object_get(rep, "summary");
        printf("\n%zu items: %lld %s, %lld skipped, %lld existing, %lld overwritten, %lld conflicts, %lld failed\n",
               plan->nitems, (long long)json_integer_value(json_object_get(sum, "create")),
               migrate ? "created" : "to create", (long long)json_integer_value(json_object_get(sum, "skip")),
               (long long)json_integer_value(json_object_get(sum, "exists")),
               (long long)json_integer_value(json_object_get(sum, "overwrite")),
               (long long)json_integer_value(json_object_get(sum, "conflict")),
               (long long)json_integer_value(json_object_get(sum, "failed")));
    }
    int wr = cfg.report ? write_report(cfg.report, rep, cli.prog) : 0;
    json_decref(rep);
    ex = bad || wr ? RFS_CLI_EXIT_FAIL : RFS_CLI_EXIT_OK;
out:
    rfs_md_plan_free(plan);
    sm_http_client_free(tgt);
    sm_http_client_free(src);
    rfs_snapshot_close(snap);
    rfs_repo_close(repo);
    if (dir)
        rfs_dir_close(dir);
    sm_strlist_free(&pos);
    sm_opts_free(md_opts, &cfg);
    return ex;
}
