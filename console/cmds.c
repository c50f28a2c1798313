#include "console.h"

#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static int run_list(const char *tool, struct sm_strlist *args)
{
    int rc = console_run(tool, args->v);
    return rc;
}

static void argv_init(struct sm_strlist *a, const char *tool)
{
    memset(a, 0, sizeof(*a));
    sm_strlist_push(a, console_tool_path(tool));
}

static void push2(struct sm_strlist *a, const char *flag, const char *val)
{
    if (!val)
        return;
    sm_strlist_push(a, flag);
    sm_strlist_push(a, val);
}

static int need(const char *val, const char *key)
{
    if (val && *val)
        return 0;
    fprintf(stderr, "searchmig: '%s' is not set in the config file\n", key);
    return 1;
}

struct cluster_info {
    bool ok;
    char distribution[32];   /* elasticsearch | opensearch */
    char version[32];
    int major;
    char health[16];
    long nodes;
    char name[128];
    char error[512];
};

static void probe(const struct sm_http_opts *o, const char *label, struct cluster_info *ci)
{
    memset(ci, 0, sizeof(*ci));
    char err[512];
    struct sm_http_opts copy = *o;
    copy.max_retries = 0;
    copy.down_wait_ms = 0;     /* a check reports an unreachable cluster, it does not wait for it */
    struct sm_http_client *c = sm_http_client_new(&copy, label, err, sizeof(err));
    if (!c) {
        snprintf(ci->error, sizeof(ci->error), "%s", err);
        return;
    }
    json_t *root = NULL, *health = NULL;
    long status = 0;
    int rc = sm_http_request_json(c, "GET", "/", NULL, &root, &status, err, sizeof(err));
    if (rc) {
        snprintf(ci->error, sizeof(ci->error), "%s", status == 401 ? "401 Unauthorized: check the username and password" : err);
        goto out;
    }
    json_t *v = json_object_get(root, "version");
    const char *num = json_string_value(json_object_get(v, "number"));
    const char *dist = json_string_value(json_object_get(v, "distribution"));
    snprintf(ci->version, sizeof(ci->version), "%s", num ? num : "?");
    snprintf(ci->distribution, sizeof(ci->distribution), "%s", dist ? dist : "elasticsearch");
    snprintf(ci->name, sizeof(ci->name), "%s", json_string_value(json_object_get(root, "cluster_name")) ?
             json_string_value(json_object_get(root, "cluster_name")) : "?");
    ci->major = num ? atoi(num) : 0;   /* NOLINT: bounded by the JSON string, checked below */
    ci->ok = true;
    if (sm_http_request_json(c, "GET", "/_cluster/health", NULL, &health, &status, err, sizeof(err)) == SM_OK) {
        const char *h = json_string_value(json_object_get(health, "status"));
        snprintf(ci->health, sizeof(ci->health), "%s", h ? h : "?");
        ci->nodes = (long)json_integer_value(json_object_get(health, "number_of_nodes"));
    } else {
        snprintf(ci->health, sizeof(ci->health), "unknown");
    }
out:
    json_decref(root);
    json_decref(health);
    sm_http_client_free(c);
}

/* ---- clusters check ---- */

int console_cmd_clusters(struct console_cfg *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "check")) {
        fprintf(stderr, "usage: searchmig clusters check\n");
        return 2;
    }
    if (need(cfg->source.url, "source.url") | need(cfg->target.url, "target.url"))
        return 2;
    console_step("clusters check");
    struct cluster_info s, t;
    probe(&cfg->source, "source", &s);
    probe(&cfg->target, "target", &t);
    printf("  %-8s %-36s %-14s %-9s %-8s %s\n", "role", "url", "product", "version", "health", "nodes");
    const struct { const char *role; const char *url; struct cluster_info *ci; } rows[] = {
        { "source", cfg->source.url, &s }, { "target", cfg->target.url, &t } };
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        struct cluster_info *ci = rows[i].ci;
        if (!ci->ok) {
            printf("  %-8s %-36s FAILED: %s\n", rows[i].role, rows[i].url, ci->error);
            bad = 1;
            continue;
        }
        printf("  %-8s %-36s %-14s %-9s %-8s %ld\n", rows[i].role, rows[i].url, ci->distribution, ci->version,
               ci->health, ci->nodes);
    }
    if (bad) {
        console_next("fix the connection settings (url, ca-cert, username, password) in %s and run 'searchmig clusters check' again",
                     cfg->config_path);
        return 1;
    }
    bool s_os = !strcmp(s.distribution, "opensearch"), t_os = !strcmp(t.distribution, "opensearch");
    bool supported = (s_os ? s.major >= 1 && s.major <= 3 : s.major >= 1 && s.major <= 8) &&
                     (t_os ? t.major >= 1 && t.major <= 3 : t.major >= 7 && t.major <= 8);
    if (!supported) {
        printf("  WARNING: %s %s -> %s %s is not a supported pair (sources: Elasticsearch 1-8, OpenSearch 1-3; "
               "targets: OpenSearch 1-3, Elasticsearch 7-8)\n", s.distribution, s.version, t.distribution, t.version);
    } else if (!s_os && !t_os && t.major < s.major) {
        printf("  WARNING: target %s is older than source %s: documents written by newer versions may not fit\n",
               t.version, s.version);
        supported = false;
    }
    if (strcmp(t.health, "green") && strcmp(t.health, "yellow"))
        printf("  WARNING: target health is %s\n", t.health);
    printf("  summary: %s %s -> %s %s: %s\n", s.distribution, s.version, t.distribution, t.version,
           supported ? "supported" : "check the warnings above");
    console_next("start capture on the source nodes (searchmig-agent), then 'searchmig snapshot create'");
    return supported ? 0 : 1;
}

/* ---- snapshot ---- */

static int snapshot_status_from_repo(struct console_cfg *cfg)
{
    if (need(cfg->snapshot_repo, "snapshot.repo"))
        return 2;
    struct sm_strlist a;
    argv_init(&a, "searchmig-rfs");
    sm_strlist_push(&a, "snapshots");
    push2(&a, "--repo", cfg->snapshot_repo);
    int rc = run_list("searchmig-rfs", &a);
    sm_strlist_free(&a);
    return rc;
}

int console_cmd_snapshot(struct console_cfg *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    char err[512];
    if (!strcmp(sub, "status")) {
        console_step("snapshot status: %s", cfg->snapshot_name);
        int rc = snapshot_status_from_repo(cfg);
        if (rc == 0)
            console_next("'searchmig metadata evaluate' to see what the target will get");
        return rc;
    }
    if (strcmp(sub, "create")) {
        fprintf(stderr, "usage: searchmig snapshot create|status\n");
        return 2;
    }
    if (need(cfg->source.url, "source.url"))
        return 2;
    console_step("snapshot create: %s in repository %s", cfg->snapshot_name, cfg->snapshot_repo_name);
    struct sm_http_client *c = sm_http_client_new(&cfg->source, "source", err, sizeof(err));
    if (!c) {
        fprintf(stderr, "searchmig: %s\n", err);
        return 1;
    }
    char path[1024];
    json_t *out = NULL;
    long status = 0;
    int rc = 0;
    if (cfg->snapshot_repo_path) {
        snprintf(path, sizeof(path), "/_snapshot/%s", cfg->snapshot_repo_name);
        json_t *body = json_pack("{s:s,s:{s:s}}", "type", "fs", "settings", "location", cfg->snapshot_repo_path);
        rc = sm_http_request_json(c, "PUT", path, body, &out, &status, err, sizeof(err));
        json_decref(body);
        json_decref(out);
        out = NULL;
        if (rc) {
            fprintf(stderr, "searchmig: registering repository %s: %s\n", cfg->snapshot_repo_name, err);
            sm_http_client_free(c);
            return 1;
        }
    }
    snprintf(path, sizeof(path), "/_snapshot/%s/%s?wait_for_completion=false", cfg->snapshot_repo_name, cfg->snapshot_name);
    json_t *body = json_pack("{s:s,s:b}", "indices", cfg->indices, "include_global_state", 1);
    rc = sm_http_request_json(c, "PUT", path, body, &out, &status, err, sizeof(err));
    json_decref(body);
    json_decref(out);
    if (rc) {
        fprintf(stderr, "searchmig: snapshot %s: %s\n", cfg->snapshot_name, err);
        sm_http_client_free(c);
        return 1;
    }
    /* progress until the snapshot ends */
    snprintf(path, sizeof(path), "/_snapshot/%s/%s/_status", cfg->snapshot_repo_name, cfg->snapshot_name);
    for (int i = 0; i < 86400; i++) {
        out = NULL;
        if (sm_http_request_json(c, "GET", path, NULL, &out, &status, err, sizeof(err))) {
            fprintf(stderr, "searchmig: snapshot status: %s\n", err);
            rc = 1;
            break;
        }
        json_t *snap = json_array_get(json_object_get(out, "snapshots"), 0);
        const char *state = json_string_value(json_object_get(snap, "state"));
        json_t *sh = json_object_get(snap, "shards_stats");
        printf("\r  %s: %lld/%lld shards done", state ? state : "?",
               (long long)json_integer_value(json_object_get(sh, "done")),
               (long long)json_integer_value(json_object_get(sh, "total")));
        fflush(stdout);
        bool end = state && (!strcmp(state, "SUCCESS") || !strcmp(state, "FAILED") || !strcmp(state, "PARTIAL"));
        if (end) {
            printf("\n");
            rc = strcmp(state, "SUCCESS") ? 1 : 0;
            json_decref(out);
            break;
        }
        json_decref(out);
        sm_sleep_ms(1000);
    }
    sm_http_client_free(c);
    if (!rc)
        console_next("'searchmig metadata evaluate'");
    return rc;
}

/* ---- metadata ---- */

int console_cmd_metadata(struct console_cfg *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "evaluate") && strcmp(sub, "migrate")) {
        fprintf(stderr, "usage: searchmig metadata evaluate|migrate\n");
        return 2;
    }
    if (need(cfg->snapshot_repo, "snapshot.repo") | need(cfg->target.url, "target.url"))
        return 2;
    console_step("metadata %s (snapshot %s)", sub, cfg->snapshot_name);
    struct sm_strlist a;
    argv_init(&a, "searchmig-rfs");
    sm_strlist_push(&a, "metadata");
    sm_strlist_push(&a, sub);
    push2(&a, "--repo", cfg->snapshot_repo);
    push2(&a, "--snapshot", cfg->snapshot_name);
    push2(&a, "--index", cfg->indices);
    char report[600];
    snprintf(report, sizeof(report), "%s", console_path(cfg, !strcmp(sub, "migrate") ? "metadata-migrate.json" : "metadata-evaluate.json"));
    push2(&a, "--report", report);
    console_endpoint_args(&cfg->target, "target", &a);
    int rc = run_list("searchmig-rfs", &a);
    sm_strlist_free(&a);
    printf("  report: %s\n", report);
    if (rc == 0)
        console_next(!strcmp(sub, "evaluate") ? "'searchmig metadata migrate'" : "'searchmig backfill start'");
    return rc;
}

/* ---- backfill ---- */

int console_cmd_backfill(struct console_cfg *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    bool wait = argc > 2 && !strcmp(argv[2], "--wait");
    char err[512];
    const char *pidf = console_path(cfg, "backfill.pid");
    if (!strcmp(sub, "stop")) {
        if (console_stop(pidf, 30000, err, sizeof(err))) {
            fprintf(stderr, "searchmig: backfill: %s\n", err);
            return 1;
        }
        printf("backfill stopped; 'searchmig backfill start' resumes from the checkpoints\n");
        return 0;
    }
    if (need(cfg->target.url, "target.url"))
        return 2;
    struct sm_strlist a;
    if (!strcmp(sub, "status")) {
        console_step("backfill status");
        long pid;
        printf("  worker process: %s\n", console_running(pidf, &pid) ? "running" : "not running here");
        argv_init(&a, "searchmig-rfs");
        sm_strlist_push(&a, "backfill-status");
        console_endpoint_args(&cfg->target, "target", &a);
        int rc = run_list("searchmig-rfs", &a);
        sm_strlist_free(&a);
        if (rc == 0)
            console_next("'searchmig replay start' (the backfill is complete)");
        else if (rc == 3)
            console_next("wait, then 'searchmig backfill status' again");
        return rc;
    }
    if (!strcmp(sub, "cleanup")) {
        console_step("backfill cleanup (coordination index)");
        argv_init(&a, "searchmig-rfs");
        sm_strlist_push(&a, "backfill-status");
        sm_strlist_push(&a, "--cleanup");
        console_endpoint_args(&cfg->target, "target", &a);
        int rc = run_list("searchmig-rfs", &a);
        sm_strlist_free(&a);
        if (rc == 3)
            console_next("wait until 'searchmig backfill status' says complete");
        return rc;
    }
    if (strcmp(sub, "start")) {
        fprintf(stderr, "usage: searchmig backfill start [--wait]|status|cleanup|stop\n");
        return 2;
    }
    if (need(cfg->snapshot_repo, "snapshot.repo"))
        return 2;
    console_step("backfill start (snapshot %s, %lld workers)", cfg->snapshot_name, (long long)cfg->backfill_workers);
    argv_init(&a, "searchmig-rfs");
    sm_strlist_push(&a, "backfill");
    push2(&a, "--repo", cfg->snapshot_repo);
    push2(&a, "--snapshot", cfg->snapshot_name);
    push2(&a, "--index", cfg->indices);
    char n[32];
    snprintf(n, sizeof(n), "%lld", (long long)cfg->backfill_workers);
    push2(&a, "--workers", n);
    push2(&a, "--segment-checksums", cfg->backfill_segment_checksums);
    push2(&a, "--ingest-pipeline", cfg->backfill_ingest_pipeline);
    push2(&a, "--failures-file", console_path(cfg, "backfill-failures.ndjson"));
    const char *mdrep = console_path(cfg, "metadata-migrate.json");
    if (access(mdrep, R_OK) == 0)        /* type rules of 'searchmig metadata migrate' */
        push2(&a, "--metadata-report", mdrep);
    if (cfg->s3_endpoint)
        push2(&a, "--s3-endpoint", cfg->s3_endpoint);
    console_endpoint_args(&cfg->target, "target", &a);
    int rc;
    if (wait) {
        rc = run_list("searchmig-rfs", &a);
        if (rc == 0)
            console_next("'searchmig replay start'");
    } else {
        const char *log = console_path(cfg, "backfill.log");
        rc = console_start("searchmig-rfs", a.v, log, pidf, err, sizeof(err));
        if (rc)
            fprintf(stderr, "searchmig: %s\n", err);
        else {
            printf("  started in the background; log: %s\n", log);
            console_next("'searchmig backfill status'");
        }
    }
    sm_strlist_free(&a);
    return rc ? 1 : 0;
}

/* ---- replay ---- */

static int add_capture_inputs(struct console_cfg *cfg, struct sm_strlist *a)
{
    DIR *d = opendir(cfg->capture_dir);
    if (!d) {
        fprintf(stderr, "searchmig: capture dir %s: cannot open\n", cfg->capture_dir);
        return 0;
    }
    struct sm_strlist files = { 0 };
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", cfg->capture_dir, de->d_name);
            sm_strlist_push(&files, p);
        }
    closedir(d);
    for (size_t i = 0; i < files.n; i++)
        for (size_t j = i + 1; j < files.n; j++)
            if (strcmp(files.v[i], files.v[j]) > 0) {
                char *t = files.v[i];
                files.v[i] = files.v[j];
                files.v[j] = t;
            }
    for (size_t i = 0; i < files.n; i++)
        push2(a, "--input", files.v[i]);
    size_t n = files.n;
    sm_strlist_free(&files);
    return (int)n;
}

int console_cmd_replay(struct console_cfg *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    bool wait = argc > 2 && !strcmp(argv[2], "--wait");
    char err[512];
    const char *pidf = console_path(cfg, "replay.pid");
    const char *summary = console_path(cfg, "replay-summary.json");
    if (!strcmp(sub, "stop")) {
        if (console_stop(pidf, 30000, err, sizeof(err))) {
            fprintf(stderr, "searchmig: replay: %s\n", err);
            return 1;
        }
        printf("replay stopped\n");
        return 0;
    }
    if (!strcmp(sub, "status")) {
        console_step("replay status");
        long pid;
        bool running = console_running(pidf, &pid);
        printf("  replayer: %s\n", running ? "running" : "not running");
        json_error_t je;
        json_t *s = json_load_file(summary, 0, &je);
        if (s) {
            printf("  requests %lld, sent %lld, target errors %lld, status match %lld of %lld, tuples %lld\n",
                   (long long)json_integer_value(json_object_get(s, "requests")),
                   (long long)json_integer_value(json_object_get(s, "sent")),
                   (long long)json_integer_value(json_object_get(s, "target_errors")),
                   (long long)json_integer_value(json_object_get(s, "status_match")),
                   (long long)(json_integer_value(json_object_get(s, "status_match")) +
                               json_integer_value(json_object_get(s, "status_differ"))),
                   (long long)json_integer_value(json_object_get(s, "tuples")));
            json_decref(s);
        }
        console_next(running ? "wait, or 'searchmig compare' for what is replayed so far" : "'searchmig compare'");
        return 0;
    }
    if (strcmp(sub, "start")) {
        fprintf(stderr, "usage: searchmig replay start [--wait]|status|stop\n");
        return 2;
    }
    if (need(cfg->target.url, "target.url"))
        return 2;
    if (!cfg->capture_dir && !cfg->kafka_brokers) {
        fprintf(stderr, "searchmig: set capture.dir (files) or kafka.brokers in the config file\n");
        return 2;
    }
    console_step("replay start");
    struct sm_strlist a;
    argv_init(&a, "searchmig-replay");
    if (cfg->capture_dir) {
        if (!add_capture_inputs(cfg, &a)) {
            fprintf(stderr, "searchmig: no capture files in %s\n", cfg->capture_dir);
            sm_strlist_free(&a);
            return 1;
        }
    } else {
        push2(&a, "--kafka-brokers", cfg->kafka_brokers);
        push2(&a, "--kafka-topic", cfg->kafka_topic);
        push2(&a, "--kafka-group-id", cfg->kafka_group_id);
    }
    char n[32];
    snprintf(n, sizeof(n), "%g", cfg->replay_speedup);
    push2(&a, "--speedup-factor", n);
    snprintf(n, sizeof(n), "%lld", (long long)cfg->replay_workers);
    push2(&a, "--workers", n);
    push2(&a, "--tuples-dir", console_path(cfg, "tuples"));
    push2(&a, "--summary-json", summary);
    if (cfg->remove_types)
        sm_strlist_push(&a, "--remove-types");
    console_endpoint_args(&cfg->target, "target", &a);
    int rc;
    if (wait) {
        rc = run_list("searchmig-replay", &a);
        if (rc == 0)
            console_next("'searchmig compare'");
    } else {
        const char *log = console_path(cfg, "replay.log");
        rc = console_start("searchmig-replay", a.v, log, pidf, err, sizeof(err));
        if (rc)
            fprintf(stderr, "searchmig: %s\n", err);
        else {
            printf("  started in the background; log: %s\n", log);
            console_next("'searchmig replay status'");
        }
    }
    sm_strlist_free(&a);
    return rc ? 1 : 0;
}

/* ---- compare ---- */

static json_t *cat_indices(const struct sm_http_opts *o, const char *label, char *err, size_t errlen)
{
    struct sm_http_client *c = sm_http_client_new(o, label, err, errlen);
    if (!c)
        return NULL;
    json_t *out = NULL;
    long status;
    if (sm_http_request_json(c, "POST", "/_refresh", NULL, &out, &status, err, errlen) == SM_OK)
        json_decref(out);
    out = NULL;
    if (sm_http_request_json(c, "GET", "/_cat/indices?format=json&h=index,docs.count", NULL, &out, &status, err, errlen)) {
        json_decref(out);
        out = NULL;
    }
    sm_http_client_free(c);
    return out;
}

int console_cmd_compare(struct console_cfg *cfg, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (need(cfg->source.url, "source.url") | need(cfg->target.url, "target.url"))
        return 2;
    console_step("compare: documents per index");
    char err[512];
    json_t *s = cat_indices(&cfg->source, "source", err, sizeof(err));
    if (!s) {
        fprintf(stderr, "searchmig: source: %s\n", err);
        return 1;
    }
    json_t *t = cat_indices(&cfg->target, "target", err, sizeof(err));
    if (!t) {
        fprintf(stderr, "searchmig: target: %s\n", err);
        json_decref(s);
        return 1;
    }
    printf("  %-40s %12s %12s  %s\n", "index", "source docs", "target docs", "");
    size_t i;
    json_t *row;
    int differ = 0, shown = 0;
    json_array_foreach(s, i, row) {
        const char *name = json_string_value(json_object_get(row, "index"));
        if (!name || !sm_pattern_match(cfg->indices, name))
            continue;
        const char *sc = json_string_value(json_object_get(row, "docs.count"));
        const char *tc = NULL;
        size_t k;
        json_t *r2;
        json_array_foreach(t, k, r2) {
            const char *n2 = json_string_value(json_object_get(r2, "index"));
            if (n2 && !strcmp(n2, name))
                tc = json_string_value(json_object_get(r2, "docs.count"));
        }
        bool same = sc && tc && !strcmp(sc, tc);
        differ += !same;
        shown++;
        printf("  %-40s %12s %12s  %s\n", name, sc ? sc : "?", tc ? tc : "missing", same ? "ok" : "DIFFERS");
    }
    json_decref(s);
    json_decref(t);
    printf("  %d indices, %d differ\n", shown, differ);

    int rc = differ ? 1 : 0;
    struct stat st;
    const char *tuples = console_path(cfg, "tuples");
    if (stat(tuples, &st) == 0) {
        console_step("compare: replayed traffic");
        struct sm_strlist a;
        argv_init(&a, "searchmig-replay");
        sm_strlist_push(&a, "report");
        sm_strlist_push(&a, tuples);
        char html[600], js[600];
        snprintf(html, sizeof(html), "%s", console_path(cfg, "report.html"));
        snprintf(js, sizeof(js), "%s", console_path(cfg, "report.json"));
        push2(&a, "--html", html);
        push2(&a, "--json", js);
        int r = run_list("searchmig-replay", &a);
        sm_strlist_free(&a);
        if (r == 0) {
            char abs[4096];
            printf("  HTML report: %s\n", realpath(html, abs) ? abs : html);
        } else {
            rc = 1;
        }
    }
    console_next(rc ? "look at the differences above before moving clients" :
                      "when the report is clean, move clients to the target");
    return rc;
}
