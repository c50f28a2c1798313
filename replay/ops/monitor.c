/* Live summary and Prometheus metrics of searchmig-replay (see monitor.h). */
#include "ops/monitor.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/metrics.h>
#include <sm/util.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct replay_monitor {
    struct replay_monitor_cfg cfg;
    struct sm_metrics *metrics;

    pthread_mutex_t lock;            /* the input side's copies, the stop flag */
    struct replay_accum_stats as;
    struct sm_ts_reader_stats rs;
    struct replay_kafka_stats ks;

    struct sm_recent_growth tuples_lost;   /* /ready: the metrics thread's own */

    pthread_cond_t cv;               /* CLOCK_MONOTONIC: wakes the summary thread on stop */
    bool stopping;
    bool thread_started;
    pthread_t thread;
};

void replay_monitor_publish(struct replay_monitor *mon, const struct replay_accum_stats *as,
                            const struct sm_ts_reader_stats *rs, const struct replay_kafka_stats *ks)
{
    if (!mon || (!mon->metrics && !mon->thread_started))
        return;              /* nobody reads them */
    pthread_mutex_lock(&mon->lock);
    if (as)
        mon->as = *as;
    if (rs)
        mon->rs = *rs;
    if (ks)
        mon->ks = *ks;
    pthread_mutex_unlock(&mon->lock);
}

/* ---- /metrics ---- */

static void render(void *arg, struct sm_buf *out)
{
    struct replay_monitor *mon = arg;
    pthread_mutex_lock(&mon->lock);
    struct replay_accum_stats as = mon->as;
    struct sm_ts_reader_stats rs = mon->rs;
    struct replay_kafka_stats ks = mon->ks;
    pthread_mutex_unlock(&mon->lock);
    struct replay_engine_stats es;
    replay_engine_stats(mon->cfg.eng, &es);
    /* attempts are counted when a request is finished, with sent or target_errors */
    uint64_t finished = es.sent + es.target_errors;
    uint64_t retries = es.attempts > finished ? es.attempts - finished : 0;
    bool kafka = mon->cfg.kafka;

#define C(name, help, v) sm_metrics_put(out, "searchmig_replay_" name, "counter", help, v)
#define G(name, help, v) sm_metrics_put(out, "searchmig_replay_" name, "gauge", help, v)
#define GS(name, help, us) sm_metrics_put_double(out, "searchmig_replay_" name, "gauge", help, (double)(us) / 1e6)
    C("input_records_total", kafka ? "TrafficStream records consumed from Kafka." : "TrafficStream records read from the input files.",
      kafka ? ks.records : rs.records);
    C("input_malformed_total", kafka ? "Kafka records that could not be decoded or were rejected." : "Input lines skipped as malformed.",
      kafka ? ks.malformed : rs.malformed);
    C("input_dead_letters_total", "Records written to the dead-letter file (Kafka input).", kafka ? ks.dead_letters : 0);
    C("requests_rebuilt_total", "Requests rebuilt from the records.", as.requests);
    C("requests_dropped_by_capture_total", "Requests the capture marked dropped (requestDropped).", as.requests_dropped);
    C("requests_broken_total", "Requests lost to capture gaps, connection exceptions or size limits.", as.requests_broken);
    C("source_connections_total", "Source connections seen.", as.connections_opened);
    C("source_connections_expired_total", "Source connections ended by idle expiry.", as.connections_expired);
    G("source_connections_open", "Source connections open in the accumulator.", as.open_connections);
    C("requests_submitted_total", "Requests handed to the sender.", es.submitted);
    C("requests_sent_total", "Requests that got a target response.", es.sent);
    C("target_errors_total", "Requests without a target response after retries (connection errors, timeouts).",
      es.target_errors);
    C("target_attempts_total", "Target attempts, retries included.", es.attempts);
    C("target_retries_total", "Target attempts after the first one of a request.", retries);
    C("bulk_item_retries_total", "_bulk items resent after a retryable item error (429, 5xx).", es.bulk_item_retries);
    C("target_down_retries_total", "Attempts past --target-max-retries while the target was unreachable (--target-down-wait).",
      es.down_retries);
    C("requests_dropped_by_rules_total", "Requests not sent because of --drop-request.", es.dropped);
    C("requests_unparsable_total", "Source requests the HTTP parser rejected.", es.unparsable);
    C("transform_errors_total", "Requests a transformation failed on.", es.transform_errors);
    C("tuples_written_total", "Result tuples handed to the tuple files.", es.tuples);
    C("tuples_lost_total", "Result tuples that could not be written (disk full, I/O errors).", es.tuples_lost);
    C("status_match_total", "Requests whose target status equals the source's.", es.status_match);
    C("status_differ_total", "Requests whose target status differs from the source's.", es.status_differ);
    C("source_waits_expired_total", "Tuples written without the source response (it did not come in time).",
      es.source_waits_expired);
    G("requests_pending", "Requests queued, in flight or waiting for their tuple.", es.pending);
    GS("lag_p50_seconds", "Send time behind the source schedule, median of recent requests.", es.lag_p50_us);
    GS("lag_p99_seconds", "Send time behind the source schedule, 99th percentile of recent requests.", es.lag_p99_us);
    GS("lag_max_seconds", "Send time behind the source schedule, maximum since start.", es.lag_max_us);
    if (kafka) {
        C("kafka_record_retries_total", "Extra attempts on failing Kafka records.", ks.retries);
        C("kafka_commits_total", "Offset commits.", ks.commits);
        C("kafka_commit_errors_total", "Failed offset commits.", ks.commit_errors);
        C("kafka_partitions_assigned_total", "Partitions assigned, over all rebalances.", ks.assigned);
        C("kafka_partitions_revoked_total", "Partitions revoked, over all rebalances.", ks.revoked);
        C("kafka_consumer_errors_total", "Consumer errors reported by librdkafka.", ks.consumer_errors);
        C("kafka_input_pauses_total", "Times the partitions were paused because the engine was full (--max-pending).",
          ks.pauses);
        sm_metrics_put_double(out, "searchmig_replay_kafka_input_paused_seconds_total", "counter",
                              "Time the partitions spent paused (ended pauses).", (double)ks.paused_ms / 1e3);
        C("duplicate_requests_total", "Requests seen again (redelivered after a restart or rebalance).", ks.duplicates);
    }
#undef C
#undef G
#undef GS
}

static bool health(void *arg, char *why, size_t whylen)
{
    struct replay_monitor *mon = arg;
    if (mon->cfg.stop && *mon->cfg.stop) {
        snprintf(why, whylen, "stopping");
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}

/* /ready: healthy, and no result tuple lost to write errors (a full disk)
 * in the last minute; /health stays 200 through that. */
static bool ready(void *arg, char *why, size_t whylen)
{
    struct replay_monitor *mon = arg;
    if (!health(arg, why, whylen))
        return false;
    struct replay_engine_stats es;
    replay_engine_stats(mon->cfg.eng, &es);
    if (sm_recent_growth(&mon->tuples_lost, es.tuples_lost, sm_now_ns(), 60ull * 1000000000u)) {
        snprintf(why, whylen, "losing result tuples: %" PRIu64 " lost to write errors so far, the last within 60 s",
                 es.tuples_lost);
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}

/* ---- summary ---- */

/* The summary line for two engine snapshots interval_ms apart. */
static void format_line(char *out, size_t outlen, const struct replay_engine_stats *es,
                        const struct replay_engine_stats *prev, uint64_t interval_ms)
{
    char rate[32] = "-", match[32] = "-";
    if (interval_ms && es->sent >= prev->sent)
        snprintf(rate, sizeof(rate), "%.1f", (double)(es->sent - prev->sent) * 1000.0 / (double)interval_ms);
    uint64_t compared = es->status_match + es->status_differ;
    if (compared)
        snprintf(match, sizeof(match), "%.1f%%", 100.0 * (double)es->status_match / (double)compared);
    snprintf(out, outlen, "live: %s req/s, sent %llu, status match %s, lag p99 %.1f ms, pending %llu", rate,
             (unsigned long long)es->sent, match, (double)es->lag_p99_us / 1000.0,
             (unsigned long long)es->pending);
}

static void emit(struct replay_monitor *mon, struct replay_engine_stats *prev, uint64_t *prev_ms)
{
    struct replay_engine_stats es;
    replay_engine_stats(mon->cfg.eng, &es);
    uint64_t now = sm_now_ms();
    char line[256];
    format_line(line, sizeof(line), &es, prev, now - *prev_ms);
    if (mon->cfg.tty)
        sm_log_status(line);
    else
        sm_log_info("%s", line);
    *prev = es;
    *prev_ms = now;
}

static void *summary_run(void *arg)
{
    struct replay_monitor *mon = arg;
    struct replay_engine_stats prev;
    memset(&prev, 0, sizeof(prev));
    uint64_t prev_ms = sm_now_ms();
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&mon->lock);
    while (!mon->stopping) {
        uint64_t ns = (uint64_t)next.tv_nsec + (mon->cfg.summary_interval_ms % 1000) * 1000000ull;
        next.tv_sec += (time_t)(mon->cfg.summary_interval_ms / 1000 + ns / 1000000000ull);
        next.tv_nsec = (long)(ns % 1000000000ull);
        int rc = 0;
        while (!mon->stopping && rc == 0)   /* 0: woken early (spurious), wait on */
            rc = pthread_cond_timedwait(&mon->cv, &mon->lock, &next);
        if (mon->stopping)
            break;
        pthread_mutex_unlock(&mon->lock);
        emit(mon, &prev, &prev_ms);
        pthread_mutex_lock(&mon->lock);
    }
    pthread_mutex_unlock(&mon->lock);
    if (mon->cfg.tty) {   /* the status line ends with the last values */
        emit(mon, &prev, &prev_ms);
        sm_log_status(NULL);
    }
    return NULL;
}

/* ---- lifecycle ---- */

struct replay_monitor *replay_monitor_start(const struct replay_monitor_cfg *cfg, char *err, size_t errlen)
{
    struct replay_monitor *mon = sm_calloc(1, sizeof(*mon));
    if (!mon) {
        sm_errf(err, errlen, SM_ENOMEM, "monitor: out of memory");
        return NULL;
    }
    mon->cfg = *cfg;
    pthread_mutex_init(&mon->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mon->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (cfg->metrics_listen && *cfg->metrics_listen) {
        mon->metrics = sm_metrics_start(cfg->metrics_listen, render, health, ready, mon, err, errlen);
        if (!mon->metrics) {
            replay_monitor_stop(mon);
            return NULL;
        }
    }
    if (cfg->summary_interval_ms) {
        if (pthread_create(&mon->thread, NULL, summary_run, mon) != 0) {
            sm_errf(err, errlen, SM_EIO, "monitor: cannot start the summary thread");
            replay_monitor_stop(mon);
            return NULL;
        }
        mon->thread_started = true;
    }
    return mon;
}

uint16_t replay_monitor_port(const struct replay_monitor *mon)
{
    return mon && mon->metrics ? sm_metrics_port(mon->metrics) : 0;
}

void replay_monitor_stop(struct replay_monitor *mon)
{
    if (!mon)
        return;
    if (mon->thread_started) {
        pthread_mutex_lock(&mon->lock);
        mon->stopping = true;
        pthread_cond_broadcast(&mon->cv);
        pthread_mutex_unlock(&mon->lock);
        pthread_join(mon->thread, NULL);
    }
    sm_metrics_stop(mon->metrics);
    pthread_cond_destroy(&mon->cv);
    pthread_mutex_destroy(&mon->lock);
    sm_free(mon);
}
