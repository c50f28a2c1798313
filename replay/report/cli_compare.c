/* searchmig-replay compare|report TUPLES...: offline comparison of tuple
 * files and the HTML/JSON report. */
#include "report/report.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

struct cmp_cfg {
    char *rules;
    struct sm_strlist learn;
    int64_t learn_max;
    struct sm_strlist renames;
    char *tolerance;
    char *max_diffs;
    int64_t top;
    char *json;
    char *html;
    char *tuples_out;
    bool quiet;
    char *log_level;
};

#define OFF(f) offsetof(struct cmp_cfg, f)
static const struct sm_opt cmp_opts[] = {
    { "rules", SM_OPT_STR, OFF(rules), NULL, "comparison rules file (JSON or 'ignore PATH' lines; docs/compare.md)", NULL, 0, "FILE" },
    { "learn-noise", SM_OPT_LIST, OFF(learn), NULL, "tuples of a second replay to the same target: fields that differ between the two replays are ignored", NULL, 0, "TUPLES" },
    { "learn-noise-max", SM_OPT_INT, OFF(learn_max), "100000", "tuples of --learn-noise held in memory at most (the first ones; later ones are left out)", NULL, 0, "N" },
    { "index-rename", SM_OPT_LIST, OFF(renames), NULL, "index renames the replay applied (old=new, prefix*=newprefix*)", NULL, 0, "OLD=NEW" },
    { "tolerance", SM_OPT_STR, OFF(tolerance), NULL, "relative tolerance for _score/max_score (default 1e-4)", NULL, 0, "X" },
    { "max-differences", SM_OPT_STR, OFF(max_diffs), NULL, "differences listed per tuple (default 20)", NULL, 0, "N" },
    { "top", SM_OPT_INT, OFF(top), "10", "differing endpoints shown with examples", NULL, 0, "N" },
    { "json", SM_OPT_STR, OFF(json), NULL, "write the figures as JSON to this file", NULL, 0, "FILE" },
    { "html", SM_OPT_STR, OFF(html), NULL, "write the self-contained HTML report to this file", NULL, 0, "FILE" },
    { "tuples-out", SM_OPT_STR, OFF(tuples_out), NULL, "write the tuples with their \"comparison\" objects (JSON lines; .gz: gzip)", NULL, 0, "FILE" },
    { "quiet", SM_OPT_BOOL, OFF(quiet), "false", "no terminal summary", NULL, 0, NULL },
    { "log-level", SM_OPT_STR, OFF(log_level), "info", "error, warn, info or debug", NULL, 0, "LEVEL" },
    SM_OPT_END
};

struct run {
    struct replay_cmp *cmp;
    struct replay_report *rep;
    gzFile out_gz;
    FILE *out;
    json_t *noise_map;    /* learning: connectionId -> tuple of the second replay */
    size_t noise_max;     /* --learn-noise-max */
    uint64_t noise_left_out;
    size_t learned;
    uint64_t write_errors;
};

static void on_noise_tuple(void *arg, json_t *t)
{
    struct run *r = arg;
    const char *id = json_string_value(json_object_get(t, "connectionId"));
    const json_t *tr = replay_cmp_target_response(t);
    if (!id || !tr)
        return;
    /* bounded: noise repeats across requests of an endpoint, so the first
     * --learn-noise-max tuples teach what a sample can; memory stays bounded */
    if (json_object_size(r->noise_map) >= r->noise_max && !json_object_get(r->noise_map, id)) {
        r->noise_left_out++;
        return;
    }
    /* keep what learning needs: the request and the last target response */
    json_t *slim = json_object();
    json_object_set(slim, "sourceRequest", json_object_get(t, "sourceRequest"));
    json_object_set_new(slim, "targetResponses", json_pack("[O]", tr));
    json_object_set_new(r->noise_map, id, slim);
}

static void on_learn_tuple(void *arg, json_t *t)
{
    struct run *r = arg;
    const char *id = json_string_value(json_object_get(t, "connectionId"));
    const json_t *other = id ? json_object_get(r->noise_map, id) : NULL;
    if (other)
        r->learned += replay_cmp_learn_pair(r->cmp, t, other);
}

static void on_tuple(void *arg, json_t *t)
{
    struct run *r = arg;
    json_t *cmp = NULL;
    replay_cmp_tuple(r->cmp, t, &cmp);
    if (!cmp)
        return;
    replay_report_add(r->rep, t, cmp);
    if (r->out || r->out_gz) {
        json_object_set(t, "comparison", cmp);
        char *s = json_dumps(t, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) {
            size_t n = strlen(s);
            s[n] = '\n';
            if (r->out_gz ? gzwrite(r->out_gz, s, (unsigned)(n + 1)) != (int)(n + 1)
                          : fwrite(s, 1, n + 1, r->out) != n + 1)
                r->write_errors++;
            s[n] = 0;
            free(s);
        }
    }
    json_decref(cmp);
}

static void on_tuple_jd(void *arg, const struct jd_val *t)
{
    struct run *r = arg;
    json_t *cmp = NULL;
    replay_cmp_tuple_jd(r->cmp, t, &cmp);
    if (!cmp)
        return;
    replay_report_add_jd(r->rep, t, cmp);
    json_decref(cmp);
}

int replay_cli_compare(int argc, char **argv)
{
    bool report = !strcmp(argv[0], "report");
    struct cmp_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_strlist inputs = { 0 };
    struct sm_cli cli = {
        report ? "searchmig-replay report" : "searchmig-replay compare",
        report ? "TUPLES... --html FILE [--json FILE] [OPTIONS]" : "TUPLES... [--rules FILE] [--json FILE] [OPTIONS]",
        report ? "Aggregates result tuples (files or directories, gzip or plain) into a single\n"
                 "self-contained HTML report (match rate, status matrix, latency CDF and\n"
                 "per-endpoint percentiles, top differing endpoints with example diffs, errors,\n"
                 "throughput) and optionally the same figures as JSON."
               : "Classifies result tuples (files or directories, gzip or plain) offline: same,\n"
                 "status differs, body differs, target error; prints the key table and\n"
                 "optionally writes the figures as JSON and the annotated tuples.",
        cmp_opts, false,
    };
    char err[512] = "";
    int rc = sm_opts_parse(&cli, &cfg, argc, argv, &inputs, err, sizeof(err));
    if (rc == SM_EEOF) {
        sm_opts_free(cmp_opts, &cfg);
        sm_strlist_free(&inputs);
        return 0;
    }
    struct sm_log_config lc = { SM_LOG_INFO, 0, false, false, "searchmig-replay" };
    if (!rc && cfg.log_level && sm_log_parse_level(cfg.log_level, &lc.level))
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--log-level: '%s' is not error, warn, info or debug", cfg.log_level);
    if (!rc && !inputs.n)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "give tuple files or directories (see --help)");
    if (!rc && report && !cfg.html)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "report needs --html FILE");
    if (!rc && (cfg.top < 0 || cfg.top > 1000))
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--top must be 0..1000");
    if (!rc && cfg.learn_max < 1)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--learn-noise-max %" PRId64 ": at least 1", cfg.learn_max);
    struct run run;
    memset(&run, 0, sizeof(run));
    if (!rc) {
        sm_log_init(&lc);
        run.cmp = replay_cmp_new();
        run.rep = replay_report_new();
        if (!run.cmp || !run.rep)
            rc = sm_errf(err, sizeof(err), SM_ENOMEM, "out of memory");
    }
    if (!rc && cfg.rules)
        rc = replay_cmp_load_rules(run.cmp, cfg.rules, err, sizeof(err));
    if (!rc && cfg.renames.n)
        rc = replay_cmp_set_index_renames(run.cmp, &cfg.renames, err, sizeof(err));
    if (!rc && cfg.tolerance) {
        char line[128];
        snprintf(line, sizeof(line), "tolerance %s", cfg.tolerance);
        rc = replay_cmp_add_rule_line(run.cmp, line, err, sizeof(err));
    }
    if (!rc && cfg.max_diffs) {
        char line[128];
        snprintf(line, sizeof(line), "max-differences %s", cfg.max_diffs);
        rc = replay_cmp_add_rule_line(run.cmp, line, err, sizeof(err));
    }
    if (rc) {
        fprintf(stderr, "searchmig-replay %s: %s\n", argv[0], err);
        replay_cmp_free(run.cmp);
        replay_report_free(run.rep);
        sm_opts_free(cmp_opts, &cfg);
        sm_strlist_free(&inputs);
        return 2;
    }
    int exit_code = 0;
    uint64_t bad = 0;
    json_t *learned = NULL;
    if (cfg.learn.n) {
        run.noise_max = (size_t)cfg.learn_max;
        run.noise_map = json_object();
        for (size_t i = 0; i < cfg.learn.n && !exit_code; i++)
            if (replay_report_read_tuples(cfg.learn.v[i], on_noise_tuple, &run, &bad, err, sizeof(err))) {
                sm_log_err("%s", err);
                exit_code = 1;
            }
        if (run.noise_left_out)
            sm_log_info("learning from the first %zu tuples of --learn-noise; %" PRIu64 " more left out "
                        "(--learn-noise-max)", run.noise_max, run.noise_left_out);
        for (size_t i = 0; i < inputs.n && !exit_code; i++)
            if (replay_report_read_tuples(inputs.v[i], on_learn_tuple, &run, &bad, err, sizeof(err))) {
                sm_log_err("%s", err);
                exit_code = 1;
            }
        json_decref(run.noise_map);
        run.noise_map = NULL;
        learned = replay_cmp_learned_json(run.cmp);
        sm_log_info("learned %zu noise rules from %zu tuple file(s)", run.learned, cfg.learn.n);
    }
    if (cfg.tuples_out && !exit_code) {
        size_t l = strlen(cfg.tuples_out);
        if (l > 3 && !strcmp(cfg.tuples_out + l - 3, ".gz"))
            run.out_gz = gzopen(cfg.tuples_out, "wb6");
        else
            run.out = fopen(cfg.tuples_out, "wb");
        if (!run.out && !run.out_gz) {
            sm_log_err("cannot write %s", cfg.tuples_out);
            exit_code = 1;
        }
    }
    for (size_t i = 0; i < inputs.n && !exit_code; i++) {
        /* the fast parser unless the tuples are written out again */
        int rc2 = run.out || run.out_gz ? replay_report_read_tuples(inputs.v[i], on_tuple, &run, &bad, err, sizeof(err))
                                        : replay_report_read_tuples_jd(inputs.v[i], on_tuple_jd, &run, &bad, err,
                                                                       sizeof(err));
        if (rc2) {
            sm_log_err("%s", err);
            exit_code = 1;
        }
    }
    if (run.out_gz && gzclose(run.out_gz) != Z_OK)
        run.write_errors++;
    if (run.out && fclose(run.out))
        run.write_errors++;
    if (run.write_errors) {
        sm_log_err("%s: write failed", cfg.tuples_out);
        exit_code = 1;
    }
    if (bad)
        sm_log_warn("%llu lines were not JSON tuples", (unsigned long long)bad);
    json_t *fig = exit_code ? NULL : replay_report_figures(run.rep, (size_t)cfg.top, learned);
    if (fig) {
        json_object_set_new(fig, "bad_lines", json_integer((json_int_t)bad));
        if (!cfg.quiet)
            replay_report_print(fig, stdout);
        if (cfg.json && json_dump_file(fig, cfg.json, JSON_INDENT(1) | JSON_SORT_KEYS)) {
            sm_log_err("cannot write %s", cfg.json);
            exit_code = 1;
        }
        if (cfg.html && replay_report_write_html(fig, cfg.html, err, sizeof(err))) {
            sm_log_err("%s", err);
            exit_code = 1;
        }
    } else {
        exit_code = 1;   /* nothing written for an incomplete input */
    }
    json_decref(fig);
    json_decref(learned);
    replay_cmp_free(run.cmp);
    replay_report_free(run.rep);
    sm_opts_free(cmp_opts, &cfg);
    sm_strlist_free(&inputs);
    return exit_code;
}
