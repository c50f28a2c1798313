/* searchmig-replay: replays captured TrafficStream records against the target
 * cluster with the source's timing and order, pairs every request with the
 * source and target responses and writes result tuples. */
#include <sm/err.h>
#include <sm/http.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "accum/accum.h"
#include "input/kafka.h"
#include "input/offsets.h"
#include "ops/monitor.h"
#include "send/engine.h"
#include "transform/transform.h"
#include "tuple/tuple.h"
#include "report/report.h"

struct replay_cfg {
    struct sm_strlist inputs;
    struct sm_http_opts target;
    double speedup;
    int64_t workers, send_threads;
    int64_t max_pending;
    uint64_t expiry_ms;
    char *tuples_dir;
    bool tuples_gzip;
    uint64_t tuples_rotate;
    bool remove_auth;
    struct sm_strlist add_headers, remove_headers, index_renames, drops;
    bool remove_types;
    char *log_level;
    char *debug;
    bool log_json;
    char *summary_json;
    /* Kafka input (replay/input/kafka.c, docs/kafka.md) */
    struct sm_kafka_opts kafka;
    char *dead_letter;
    uint64_t commit_interval_ms;
    uint64_t source_wait_ms;
    int64_t poison_retries;
    uint64_t shutdown_wait_ms;
    char *compare_rules;
    /* live summary and metrics (replay/ops/monitor.c) */
    char *metrics_listen;
    uint64_t summary_interval_ms;
};

#define OFF(f) offsetof(struct replay_cfg, f)
static const struct sm_opt replay_opts[] = {
    { "input", SM_OPT_LIST, OFF(inputs), NULL, "TrafficStream file(s): base64 lines, optionally gzip; - = stdin", NULL, 0, "FILE" },
    SM_KAFKA_CONSUMER_OPTS(struct replay_cfg, kafka, "searchmig-replay"),
    { "dead-letter-file", SM_OPT_STR, OFF(dead_letter), NULL, "Kafka input: append records that cannot be replayed here (coordinates|base64 lines)", NULL, 0, "FILE" },
    { "commit-interval", SM_OPT_DURATION, OFF(commit_interval_ms), "5s", "Kafka input: commit offsets this often (only past fully replayed records)", NULL, 0, NULL },
    { "source-response-wait", SM_OPT_DURATION, OFF(source_wait_ms), "30s", "Kafka input: a source response with no new record on its connection for this long is complete (quiet keep-alive connections must not hold tuples and commits)", NULL, 0, NULL },
    { "poison-retries", SM_OPT_INT, OFF(poison_retries), "3", "Kafka input: attempts on a failing record before it goes to the dead-letter file", NULL, 0, NULL },
    { "shutdown-wait", SM_OPT_DURATION, OFF(shutdown_wait_ms), "30s", "Kafka input: on SIGTERM, wait this long for requests in flight before the last commit", NULL, 0, NULL },
    SM_HTTP_OPTS("target", "SM_TARGET", struct replay_cfg, target),
    { "speedup-factor", SM_OPT_DOUBLE, OFF(speedup), "1", "replay faster than the source (2 = twice as fast; 0 = as fast as the target answers)", NULL, 0, "F" },
    { "workers", SM_OPT_INT, OFF(workers), "256", "requests in flight at once (each source connection has its own target connection)", NULL, 0, NULL },
    { "send-threads", SM_OPT_INT, OFF(send_threads), "0", "threads sending to the target, each with its share of --workers and of the source connections (0: one per CPU, at most 4)", NULL, 0, "N" },
    { "max-pending", SM_OPT_INT, OFF(max_pending), "0", "requests queued or in flight before input reading pauses (0: 10000; at --speedup-factor 0 from files 8 per worker, 512 to 10000)", NULL, 0, NULL },
    { "expiry", SM_OPT_DURATION, OFF(expiry_ms), "360s", "source connections idle this long (source time) are ended", NULL, 0, NULL },
    { "tuples-dir", SM_OPT_STR, OFF(tuples_dir), "tuples", "directory for result tuples (- = stdout)", NULL, 0, "DIR" },
    { "tuples-gzip", SM_OPT_BOOL, OFF(tuples_gzip), "false", "gzip tuple files", NULL, 0, NULL },
    { "tuples-rotate-size", SM_OPT_SIZE, OFF(tuples_rotate), "256MiB", "start a new tuple file after this many bytes", NULL, 0, NULL },
    { "remove-auth-header", SM_OPT_BOOL, OFF(remove_auth), "false", "do not forward the captured Authorization header", NULL, 0, NULL },
    { "add-header", SM_OPT_LIST, OFF(add_headers), NULL, "add or replace a header: 'Name: value'", NULL, 0, "HEADER" },
    { "remove-header", SM_OPT_LIST, OFF(remove_headers), NULL, "remove a header by name", NULL, 0, "NAME" },
    { "index-rename", SM_OPT_LIST, OFF(index_renames), NULL, "rename indices: old=new, or prefix*=newprefix*", NULL, 0, "OLD=NEW" },
    { "remove-types", SM_OPT_BOOL, OFF(remove_types), "false", "remove mapping types from paths and _bulk action lines (ES 6 to typeless targets)", NULL, 0, NULL },
    { "drop-request", SM_OPT_LIST, OFF(drops), NULL, "do not replay requests whose 'METHOD /path?query' matches this regex", NULL, 0, "REGEX" },
    { "summary-json", SM_OPT_STR, OFF(summary_json), NULL, "write the final summary as JSON to this file", NULL, 0, "FILE" },
    { "metrics-listen", SM_OPT_STR, OFF(metrics_listen), NULL, "serve Prometheus metrics (/metrics) and /health on HOST:PORT, e.g. 127.0.0.1:9465 (port 0: any)", NULL, 0, "HOST:PORT" },
    { "summary-interval", SM_OPT_DURATION, OFF(summary_interval_ms), "10s", "print a live summary (requests/s, sent, status match, lag, pending) this often; redrawn in place on a terminal; 0: off", NULL, 0, NULL },
    { "compare-rules", SM_OPT_STR, OFF(compare_rules), NULL, "comparison rules file for the tuples' \"comparison\" (docs/compare.md)", NULL, 0, "FILE" },
    { "log-level", SM_OPT_STR, OFF(log_level), "info", "error, warn, info or debug", NULL, 0, "LEVEL" },
    { "log-json", SM_OPT_BOOL, OFF(log_json), "false", "log JSON lines", NULL, 0, NULL },
    { "debug", SM_OPT_STR, OFF(debug), NULL, "debug contexts, e.g. replay,client", NULL, 0, "LIST" },
    SM_OPT_END
};

static volatile sig_atomic_t stop_flag;

/* Kafka input: hands the input thread's counters to the monitor after every poll. */
struct monitor_feed {
    struct replay_monitor *mon;
    struct replay_kafka *kin;
    struct replay_accum *acc;
};

static void monitor_tick(void *arg)
{
    struct monitor_feed *mf = arg;
    if (!mf->mon || !mf->acc)
        return;
    struct replay_accum_stats as;
    struct replay_kafka_stats ks;
    replay_accum_stats(mf->acc, &as);
    replay_kafka_stats(mf->kin, &ks);
    replay_monitor_publish(mf->mon, &as, NULL, &ks);
}

static struct replay_engine *volatile signal_engine;   /* for on_signal() */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    if (signal_engine)   /* stopping: requests held for an unreachable target fail now */
        replay_engine_stop_holding(signal_engine);
}

/* File input: the accumulator's and readers' counters (r: the file being read, if any). */
static void publish_file_input(struct replay_monitor *mon, const struct replay_accum *acc,
                               const struct sm_ts_reader_stats *done, const struct sm_ts_reader *r)
{
    struct replay_accum_stats as;
    struct sm_ts_reader_stats rs = *done;
    replay_accum_stats(acc, &as);
    if (r) {
        struct sm_ts_reader_stats cur;
        sm_ts_reader_stats(r, &cur);
        rs.lines += cur.lines;
        rs.records += cur.records;
        rs.malformed += cur.malformed;
    }
    replay_monitor_publish(mon, &as, &rs, NULL);
}

static void write_summary(const struct replay_cfg *cfg, const struct replay_accum_stats *as,
                          const struct replay_engine_stats *es, const struct sm_ts_reader_stats *rs,
                          const struct replay_kafka_stats *ks, uint64_t tuples, uint64_t tuples_lost)
{
    if (ks)
        fprintf(stderr,
                "searchmig-replay kafka input\n"
                "  records consumed    %llu (malformed %llu, dead letters %llu (not writable %llu), retries %llu)\n"
                "  commits             %llu (errors %llu); partitions assigned %llu, revoked %llu\n"
                "  duplicate requests  %llu; tuples without source response %llu\n"
                "  input paused        %llu times, %.1f s (engine full: target slower than the traffic)\n",
                (unsigned long long)ks->records, (unsigned long long)ks->malformed,
                (unsigned long long)ks->dead_letters, (unsigned long long)ks->dead_letter_errors,
                (unsigned long long)ks->retries,
                (unsigned long long)ks->commits, (unsigned long long)ks->commit_errors,
                (unsigned long long)ks->assigned, (unsigned long long)ks->revoked,
                (unsigned long long)ks->duplicates, (unsigned long long)es->source_waits_expired,
                (unsigned long long)ks->pauses, (double)ks->paused_ms / 1000.0);
    fprintf(stderr,
            "searchmig-replay summary\n"
            "  records read        %llu (malformed lines %llu)\n"
            "  requests rebuilt    %llu (dropped by capture %llu, broken %llu)\n"
            "  requests sent       %llu (target errors %llu, dropped by rules %llu, unparsable %llu)\n"
            "  attempts            %llu (_bulk items resent %llu, retries while the target was unreachable %llu)\n"
            "  status match        %llu of %llu compared\n"
            "  tuples written      %llu (lost to write errors %llu)\n"
            "  schedule lag        p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
            (unsigned long long)as->records, (unsigned long long)rs->malformed,
            (unsigned long long)as->requests, (unsigned long long)as->requests_dropped,
            (unsigned long long)as->requests_broken, (unsigned long long)es->sent,
            (unsigned long long)es->target_errors, (unsigned long long)es->dropped,
            (unsigned long long)es->unparsable, (unsigned long long)es->attempts,
            (unsigned long long)es->bulk_item_retries, (unsigned long long)es->down_retries,
            (unsigned long long)es->status_match,
            (unsigned long long)(es->status_match + es->status_differ), (unsigned long long)tuples,
            (unsigned long long)tuples_lost,
            es->lag_p50_us / 1000.0, es->lag_p99_us / 1000.0, es->lag_max_us / 1000.0);
    if (!cfg->summary_json)
        return;
    json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
                          "records", (json_int_t)as->records, "malformed_lines", (json_int_t)rs->malformed,
                          "requests", (json_int_t)as->requests, "requests_dropped", (json_int_t)as->requests_dropped,
                          "requests_broken", (json_int_t)as->requests_broken, "sent", (json_int_t)es->sent,
                          "target_errors", (json_int_t)es->target_errors, "dropped_by_rules", (json_int_t)es->dropped,
                          "unparsable", (json_int_t)es->unparsable, "attempts", (json_int_t)es->attempts,
                          "status_match", (json_int_t)es->status_match, "status_differ", (json_int_t)es->status_differ,
                          "tuples", (json_int_t)tuples, "tuples_lost", (json_int_t)tuples_lost,
                          "lag_p99_us", (json_int_t)es->lag_p99_us);
    if (j) {
        json_object_set_new(j, "bulk_item_retries", json_integer((json_int_t)es->bulk_item_retries));
        json_object_set_new(j, "target_down_retries", json_integer((json_int_t)es->down_retries));
    }
    if (j && ks) {
        json_object_set_new(j, "kafka_records", json_integer((json_int_t)ks->records));
        json_object_set_new(j, "kafka_malformed", json_integer((json_int_t)ks->malformed));
        json_object_set_new(j, "dead_letters", json_integer((json_int_t)ks->dead_letters));
        json_object_set_new(j, "dead_letter_errors", json_integer((json_int_t)ks->dead_letter_errors));
        json_object_set_new(j, "duplicates", json_integer((json_int_t)ks->duplicates));
        json_object_set_new(j, "commits", json_integer((json_int_t)ks->commits));
        json_object_set_new(j, "commit_errors", json_integer((json_int_t)ks->commit_errors));
        json_object_set_new(j, "kafka_partitions_assigned", json_integer((json_int_t)ks->assigned));
        json_object_set_new(j, "kafka_partitions_revoked", json_integer((json_int_t)ks->revoked));
        json_object_set_new(j, "kafka_pauses", json_integer((json_int_t)ks->pauses));
        json_object_set_new(j, "source_waits_expired", json_integer((json_int_t)es->source_waits_expired));
    }
    if (j && json_dump_file(j, cfg->summary_json, JSON_INDENT(2)))
        sm_log_err("cannot write %s", cfg->summary_json);
    json_decref(j);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "compare") || !strcmp(argv[1], "report")))
        return replay_cli_compare(argc - 1, argv + 1);
    struct replay_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct sm_cli cli = {
        "searchmig-replay", "--input FILE --target URL [OPTIONS]",
        "Replays captured traffic (TrafficStream records) against the target cluster with the\n"
        "source's timing and per-connection order, and writes one result tuple per request\n"
        "(source request and response, target request and response) in the Migration\n"
        "Assistant's tuple layout.",
        replay_opts, true,
    };
    char err[512];
    int rc = sm_opts_parse(&cli, &cfg, argc, argv, NULL, err, sizeof(err));
    if (rc == SM_EEOF) {
        sm_opts_free(replay_opts, &cfg);
        return 0;
    }
    struct sm_log_config lc = { SM_LOG_INFO, 0, cfg.log_json, false, "searchmig-replay" };
    if (!rc && cfg.log_level && sm_log_parse_level(cfg.log_level, &lc.level))
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--log-level: '%s' is not error, warn, info or debug", cfg.log_level);
    if (!rc && cfg.debug && sm_log_parse_debug(cfg.debug, &lc.debug))
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--debug: unknown context in '%s'", cfg.debug);
    bool use_kafka = cfg.kafka.brokers && *cfg.kafka.brokers;
    if (!rc && !cfg.inputs.n && !use_kafka)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--input FILE or --kafka-brokers HOSTS is required (see --help)");
    if (!rc && cfg.inputs.n && use_kafka)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--input and --kafka-brokers cannot be used together");
    if (!rc && use_kafka && cfg.poison_retries < 1)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--poison-retries must be >= 1");
    if (!rc && !cfg.target.url)
        rc = sm_errf(err, sizeof(err), SM_ECONFIG, "--target URL is required (see --help)");
    if (!rc && (cfg.speedup < 0 || cfg.workers < 1 || cfg.workers > 4096 || cfg.max_pending < 0 ||
                cfg.send_threads < 0 || cfg.send_threads > 64))
        rc = sm_errf(err, sizeof(err), SM_ECONFIG,
                     "--speedup-factor must be >= 0, --workers 1..4096, --send-threads 0..64, --max-pending >= 0");
    if (rc) {
        fprintf(stderr, "searchmig-replay: %s\n", err);
        sm_opts_free(replay_opts, &cfg);
        return 2;
    }
    sm_log_init(&lc);

    struct replay_transform_cfg tc = {
        cfg.remove_auth, &cfg.add_headers, &cfg.remove_headers, &cfg.index_renames, cfg.remove_types, &cfg.drops,
    };
    struct replay_transform *tx = replay_transform_new(&tc, err, sizeof(err));
    struct replay_tuple_writer *tw = tx ? replay_tuple_writer_open(cfg.tuples_dir, cfg.tuples_gzip, cfg.tuples_rotate,
                                                                   err, sizeof(err)) : NULL;
    struct replay_live_compare live_cmp = { 0 };
    struct replay_engine *eng = NULL;
    struct replay_kafka *kin = NULL;
    struct monitor_feed mfeed = { NULL, NULL, NULL };
    if (tw && use_kafka) {
        struct replay_kafka_cfg kc = {
            &cfg.kafka, cfg.dead_letter, cfg.commit_interval_ms, (unsigned)cfg.poison_retries,
            cfg.source_wait_ms, monitor_tick, &mfeed,
        };
        kin = replay_kafka_new(&kc, err, sizeof(err));
    }
    if (tw && (kin || !use_kafka)) {
        struct replay_engine_cfg ec = {
            .target = &cfg.target, .workers = (unsigned)cfg.workers,
            .send_threads = (unsigned)cfg.send_threads, .speedup = cfg.speedup,
            .max_pending = (size_t)cfg.max_pending, .transform = tx, .tuples = tw,
            .target_down_wait_ms = cfg.target.down_wait_ms,
        };
        if (kin) {   /* at-least-once: the engine releases each request's Kafka offset */
            ec.release = replay_offsets_release;
            ec.release_arg = replay_kafka_offsets(kin);
            ec.source_wait_ms = 2 * cfg.source_wait_ms;   /* backstop; the accumulator ends idle responses first */
            ec.input_never_blocks = true;   /* the input pauses its partitions instead (input/kafka.c) */
        }
        if (replay_live_compare_init(&live_cmp, cfg.compare_rules, &cfg.index_renames, err, sizeof(err)) == SM_OK) {
            ec.compare = replay_live_compare_hook;
            ec.compare_arg = &live_cmp;
            eng = replay_engine_new(&ec, err, sizeof(err));
        }
    }
    if (!eng) {
        fprintf(stderr, "searchmig-replay: %s\n", err);
        replay_kafka_free(kin);
        replay_tuple_writer_close(tw);
        replay_transform_free(tx);
        sm_opts_free(replay_opts, &cfg);
        return 1;
    }
    struct replay_accum_cb acb = { eng, replay_engine_on_request, replay_engine_on_response, replay_engine_on_closed };
    struct replay_accum_limits lim = { cfg.expiry_ms * 1000000ull, 0, 0 };
    if (kin) {
        struct replay_accum_cb kcb = { kin, replay_kafka_on_request, replay_kafka_on_response, replay_kafka_on_closed };
        acb = kcb;
    }
    struct replay_accum *acc = replay_accum_new(&acb, &lim);
    if (kin && acc) {
        struct replay_accum_pins pins = { replay_kafka_offsets(kin), replay_offsets_pin, replay_offsets_release };
        replay_accum_set_pins(acc, &pins);
    }
    /* live summary and metrics; the input thread publishes its counters */
    struct replay_monitor_cfg mc = {
        cfg.metrics_listen, cfg.summary_interval_ms, isatty(STDERR_FILENO) && !cfg.log_json, kin != NULL, eng,
        &stop_flag,
    };
    struct replay_monitor *mon = acc ? replay_monitor_start(&mc, err, sizeof(err)) : NULL;
    if (acc && !mon) {
        sm_log_err("%s", err);
        replay_accum_free(acc);
        acc = NULL;   /* nothing is read; clean up below */
    } else if (mon && cfg.metrics_listen && *cfg.metrics_listen) {
        sm_log_info("metrics: http://%s/metrics (port %u)", cfg.metrics_listen, replay_monitor_port(mon));
    }
    mfeed.mon = mon;
    mfeed.kin = kin;
    mfeed.acc = acc;

    signal_engine = eng;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = mon ? 0 : 1;
    struct sm_ts_reader_stats rs_total = { 0 };
    if (kin && acc) {
        /* until SIGTERM/SIGINT; then stop consuming, drain, commit (docs/kafka.md) */
        replay_kafka_attach(kin, acc, eng);
        if (replay_kafka_run(kin, &stop_flag) != SM_OK)
            exit_code = 1;
        replay_kafka_shutdown(kin, sm_now_ms() + cfg.shutdown_wait_ms);
    }
    /* each record is done with before the next is decoded: one arena for all */
    struct sm_ts_arena *arena = cfg.inputs.n ? sm_ts_arena_new() : NULL;
    if (cfg.inputs.n && !arena) {
        sm_log_err("out of memory");
        exit_code = 1;
    }
    for (size_t i = 0; i < cfg.inputs.n && !stop_flag && acc && arena; i++) {
        struct sm_ts_reader *r = sm_ts_reader_open(cfg.inputs.v[i], err, sizeof(err));
        if (!r) {
            sm_log_err("%s", err);
            exit_code = 1;
            break;
        }
        TrafficStream *ts;
        while (!stop_flag && (rc = sm_ts_reader_next_in(r, arena, &ts, NULL, NULL, err, sizeof(err))) == SM_OK) {
            if (replay_accum_feed(acc, ts) == SM_EPROTO)
                sm_log_warn("%s: record without connectionId skipped", cfg.inputs.v[i]);
            if (mon)
                publish_file_input(mon, acc, &rs_total, r);
        }
        if (rc != SM_OK && rc != SM_EEOF) {
            sm_log_err("%s", err);
            exit_code = 1;
        }
        struct sm_ts_reader_stats rs;
        sm_ts_reader_stats(r, &rs);
        rs_total.lines += rs.lines;
        rs_total.records += rs.records;
        rs_total.malformed += rs.malformed;
        sm_ts_reader_close(r);
    }
    sm_ts_arena_free(arena);
    /* end of input: every open connection ends, so every request gets its tuple */
    if (acc)
        replay_accum_finish(acc);
    if (mon)
        publish_file_input(mon, acc, &rs_total, NULL);
    replay_engine_drain(eng);
    if (kin)
        monitor_tick(&mfeed);
    replay_monitor_stop(mon);   /* before the final summary (it ends the status line) */

    struct replay_accum_stats as = { 0 };
    struct replay_engine_stats es;
    if (acc)
        replay_accum_stats(acc, &as);
    replay_engine_stats(eng, &es);
    struct replay_kafka_stats ks;
    if (kin)
        replay_kafka_stats(kin, &ks);
    /* with a tuple writer: what reached the files (a failed write loses tuples it had taken) */
    uint64_t tuples_lost = replay_tuple_writer_lost(tw);
    uint64_t tuples = tw ? replay_tuple_writer_count(tw) - tuples_lost : es.tuples;
    write_summary(&cfg, &as, &es, &rs_total, kin ? &ks : NULL, tuples, tuples_lost);
    if (kin && ks.dead_letter_errors) {
        sm_log_err("%llu poison record(s) could not be written to the dead-letter file: their offsets were not "
                   "committed (a restart meets them again)", (unsigned long long)ks.dead_letter_errors);
        exit_code = 1;
    }
    if (tuples_lost) {
        sm_log_err("%llu tuple(s) could not be written (errors above)%s", (unsigned long long)tuples_lost,
                   kin ? "; no Kafka offset was committed past them: a restart replays those records" : "");
        exit_code = 1;
    }
    replay_live_compare_summary(&live_cmp, stderr, cfg.summary_json);
    replay_engine_free(eng);
    replay_live_compare_fini(&live_cmp);
    replay_accum_free(acc);
    replay_kafka_free(kin);
    if (replay_tuple_writer_close(tw))
        exit_code = 1;
    replay_transform_free(tx);
    sm_opts_free(replay_opts, &cfg);
    return exit_code;
}
