/* Kafka sink: librdkafka producer (idempotent, acks=all, key = connectionId so
 * a connection stays in one partition and in order) with a bounded on-disk
 * spool (spool.c) for when Kafka is slow or down. Rules (docs/kafka.md):
 *
 *  - write() produces directly unless Kafka is considered down, the local
 *    queue is full, or the record's connection has records in the spool; then
 *    the record is appended to the spool. Spool full: SM_EFULL (the caller
 *    drops and counts it), logged rate-limited.
 *  - "down" starts with an all-brokers-down error or a failed delivery and ends
 *    with the next successful delivery. While down, at most one spooled
 *    record is in flight (the probe); once up, the spool drains in order with
 *    a bounded number of bytes in flight.
 *  - A record whose delivery fails (timeout, purge at close, broker error) goes
 *    to the spool (direct record) or stays there (spooled record, handed out
 *    again: the spool rewinds).
 *  - poll() never sleeps; flush(deadline) waits for the queue and the spool;
 *    close() purges what librdkafka still holds into the spool, so nothing
 *    accepted is lost across a restart (it may be sent twice: at-least-once).
 */
#include "sink/kafka.h"
#include "sink/sink.h"
#include "sink/spool.h"

#include <sm/err.h>
#include <sm/kafka.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SPOOL_INFLIGHT_MAX (8u << 20)    /* spooled bytes in flight once up */
#define QUEUE_KBYTES_DEFAULT "65536"     /* librdkafka's in-memory queue (default 1 GiB) */

struct kmsg {
    struct agent_sink_msg *msg;  /* direct: the accepted message; spooled: NULL */
    uint64_t spool_id;
    size_t len;
};

struct kctx {
    struct agent_sink *sink;
    rd_kafka_t *rk;
    char *topic;
    struct agent_spool *sp;
    bool down;
    bool closing;
    uint64_t inflight;           /* direct + spooled records in librdkafka */
    uint64_t spool_inflight, spool_inflight_bytes;
    struct agent_sink_stats st;
    uint64_t spooled_total;
    struct agent_sink_msg **purged;  /* close: direct records taken back from librdkafka */
    size_t npurged, cpurged;
    struct sm_ratelimit rl_full, rl_err;
};

static void count_error(struct kctx *k, const char *what, rd_kafka_resp_err_t e)
{
    k->st.errors++;
    uint64_t sup = 0;
    if (sm_log_ratelimited(&k->rl_err, 5000, &sup))
        sm_log_warn("kafka sink: %s: %s (%" PRIu64 " similar messages suppressed)", what, sm_kafka_err_str(e), sup);
}

/* Appends a record to the spool; on SM_EFULL counts and logs. */
static int to_spool(struct kctx *k, const char *key, size_t key_len, const uint8_t *data, size_t len, bool last)
{
    int rc = agent_spool_append(k->sp, key, key_len, data, len, last);
    if (rc == SM_OK) {
        k->spooled_total++;
        return SM_OK;
    }
    uint64_t sup = 0;
    if (sm_log_ratelimited(&k->rl_full, 5000, &sup))
        sm_log_warn("kafka sink: spool %s %s: record of %s dropped (%" PRIu64 " more since last message)",
                    agent_spool_dir(k->sp), rc == SM_EFULL ? "full" : "write failed", key, sup);
    return rc;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct kctx *k = opaque;
    struct kmsg *km = m->_private;
    if (!km)
        return;
    k->inflight--;
    if (!km->msg) {
        k->spool_inflight--;
        k->spool_inflight_bytes -= km->len;
    }
    if (!m->err) {
        k->down = false;
        k->st.delivered++;
        if (km->msg) {
            agent_sink_report(k->sink, km->msg, SM_OK);
            agent_sink_msg_free(km->msg);
        } else {
            agent_spool_ack(k->sp, km->spool_id);
            struct agent_sink_msg view = {
                .key = (char *)(m->key ? (const char *)m->key : ""), .key_len = m->key_len,
                .data = m->payload, .len = m->len, .last = false,
            };
            agent_sink_report(k->sink, &view, SM_OK);
        }
        sm_free(km);
        return;
    }
    bool purged = m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (!purged) {
        count_error(k, "delivery failed", m->err);
        k->down = true;
    }
    if (km->msg && k->closing) {
        /* kept in order; written in front of the spool by kafka_close() */
        if (k->npurged == k->cpurged) {
            size_t nc = k->cpurged ? k->cpurged * 2 : 256;
            struct agent_sink_msg **np = sm_realloc(k->purged, nc * sizeof(*np));
            if (np) {
                k->purged = np;
                k->cpurged = nc;
            }
        }
        if (k->npurged < k->cpurged) {
            k->purged[k->npurged++] = km->msg;
        } else {
            k->st.failed++;
            agent_sink_report(k->sink, km->msg, SM_ENOMEM);
            agent_sink_msg_free(km->msg);
        }
    } else if (km->msg) {
        struct agent_sink_msg *msg = km->msg;
        if (to_spool(k, msg->key, msg->key_len, msg->data, msg->len, msg->last) != SM_OK) {
            k->st.failed++;
            agent_sink_report(k->sink, msg, SM_EIO);
        }
        agent_sink_msg_free(msg);
    } else if (!k->closing) {
        /* still in the spool: hand it out again, in order */
        agent_spool_rewind(k->sp);
    }
    sm_free(km);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kctx *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!k->down)
            sm_log_warn("kafka sink: all brokers down: records go to the spool %s", agent_spool_dir(k->sp));
        k->down = true;
    }
    k->st.errors++;
    if (rd_kafka_fatal_error(rk, NULL, 0))
        sm_log_err("kafka sink: fatal producer error: %s", reason);
    else
        sm_dbg(SM_DBG_SINK, "kafka sink: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int kproduce(struct kctx *k, const char *key, size_t key_len, const uint8_t *data, size_t len,
                    struct kmsg *km)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(k->topic),
                                              RD_KAFKA_V_KEY(key, key_len),
                                              RD_KAFKA_V_VALUE((void *)data, len),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_OPAQUE(km), RD_KAFKA_V_END);
    if (!e) {
        k->inflight++;
        return SM_OK;
    }
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        count_error(k, "produce", e);
    return sm_kafka_err_to_sm(e);
}

/* Sends spooled records while there is room; never sleeps. */
static void drain_spool(struct kctx *k)
{
    while (agent_spool_unsent(k->sp)) {
        if (k->down ? k->spool_inflight >= 1 : k->spool_inflight_bytes >= SPOOL_INFLIGHT_MAX)
            return;
        struct agent_spool_rec r;
        int rc = agent_spool_peek(k->sp, &r);
        if (rc == SM_EEOF)
            return;
        if (rc == SM_ENOMEM)
            return;
        if (rc) {
            k->st.failed++;      /* unreadable record: skipped by the spool */
            continue;
        }
        struct kmsg *km = sm_calloc(1, sizeof(*km));
        if (!km)
            return;
        km->spool_id = r.id;
        km->len = r.len;
        if (kproduce(k, r.key, r.key_len, r.data, r.len, km) != SM_OK) {
            sm_free(km);
            return;
        }
        agent_spool_advance(k->sp);
        k->spool_inflight++;
        k->spool_inflight_bytes += r.len;
    }
}

static int kafka_open(struct agent_sink *sink, const struct agent_sink_conf *conf, char *err, size_t errlen)
{
    if (!conf->kafka)
        return sm_errf(err, errlen, SM_ECONFIG, "kafka sink: no Kafka settings");
    struct kctx *k = sm_calloc(1, sizeof(*k));
    if (!k)
        return sm_errf(err, errlen, SM_ENOMEM, "kafka sink: out of memory");
    k->sink = sink;
    const char *topic = conf->kafka->topic && *conf->kafka->topic ? conf->kafka->topic : SM_KAFKA_DEFAULT_TOPIC;
    k->topic = sm_strdup(topic);
    int rc = k->topic ? agent_spool_open(conf->spool_dir, conf->spool_max, 0, &k->sp, err, errlen) : SM_ENOMEM;
    if (rc) {
        if (rc == SM_ENOMEM)
            sm_errf(err, errlen, rc, "kafka sink: out of memory");
        sm_free(k->topic);
        sm_free(k);
        return rc;
    }
    rd_kafka_conf_t *kc = sm_kafka_producer_conf_new(conf->kafka, err, errlen);
    /* Defaults of the sink over the producer's (the user's properties still win):
     * a bounded in-memory queue (past it records go to the spool), and no
     * message timeout: records queued when Kafka went down wait for it in
     * order instead of failing into the spool behind later records of their
     * connection (close() moves them to the front of the spool). */
    static const char *const sink_defaults[][3] = {
        /* property, librdkafka's default, the sink's */
        { "queue.buffering.max.kbytes", "1048576", QUEUE_KBYTES_DEFAULT },
        { "message.timeout.ms", "300000", "0" },
    };
    for (size_t i = 0; kc && i < sizeof(sink_defaults) / sizeof(sink_defaults[0]); i++) {
        char cur[64] = "";
        size_t cl = sizeof(cur);
        /* only where neither --kafka-property nor the properties file set it
         * (message.timeout.ms is a topic property: it lives in the default
         * topic configuration once set) */
        rd_kafka_conf_res_t res = rd_kafka_conf_get(kc, sink_defaults[i][0], cur, &cl);
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            rd_kafka_topic_conf_t *tc = rd_kafka_conf_get_default_topic_conf(kc);
            res = tc ? rd_kafka_topic_conf_get(tc, sink_defaults[i][0], cur, &cl) : RD_KAFKA_CONF_OK;
            if (!tc)
                snprintf(cur, sizeof(cur), "%s", sink_defaults[i][1]);
        }
        if (res != RD_KAFKA_CONF_OK || strcmp(cur, sink_defaults[i][1]))
            continue;
        if (sm_kafka_conf_set(kc, sink_defaults[i][0], sink_defaults[i][2], err, errlen)) {
            rd_kafka_conf_destroy(kc);
            kc = NULL;
        }
    }
    if (kc) {
        rd_kafka_conf_set_opaque(kc, k);
        rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
        rd_kafka_conf_set_error_cb(kc, error_cb);
        k->rk = sm_kafka_producer_new(kc, err, errlen);
    }
    if (!k->rk) {
        agent_spool_close(k->sp);
        sm_free(k->topic);
        sm_free(k);
        return SM_ECONFIG;
    }
    sink->ctx = k;
    snprintf(sink->name, sizeof(sink->name), "kafka[%s]", k->topic);
    struct agent_spool_stats ss;
    agent_spool_stats(k->sp, &ss);
    if (ss.records)
        sm_log_info("kafka sink: %" PRIu64 " spooled records from a previous run will be sent first", ss.records);
    return SM_OK;
}

static int kafka_write(struct agent_sink *sink, struct agent_sink_msg *msg)
{
    struct kctx *k = sink->ctx;
    rd_kafka_poll(k->rk, 0);
    int rc;
    if (!k->down && !agent_spool_has_key(k->sp, msg->key, msg->key_len)) {
        struct kmsg *km = sm_calloc(1, sizeof(*km));
        if (!km)
            return SM_ENOMEM;
        km->msg = msg;
        km->len = msg->len;
        rc = kproduce(k, msg->key, msg->key_len, msg->data, msg->len, km);
        if (rc == SM_OK) {
            k->st.written++;
            k->st.written_bytes += msg->len;
            return SM_OK;
        }
        sm_free(km);
        if (rc == SM_EPROTO)     /* too large for Kafka: the spool would not help */
            return rc;
    }
    rc = to_spool(k, msg->key, msg->key_len, msg->data, msg->len, msg->last);
    if (rc == SM_OK) {
        k->st.written++;
        k->st.written_bytes += msg->len;
        agent_sink_msg_free(msg);
        drain_spool(k);
        return SM_OK;
    }
    if (rc == SM_EFULL)
        k->st.refused_full++;
    else
        k->st.errors++;
    return SM_EFULL;
}

static int kafka_poll(struct agent_sink *sink)
{
    struct kctx *k = sink->ctx;
    rd_kafka_poll(k->rk, 0);
    drain_spool(k);
    return SM_OK;
}

static int kafka_flush(struct agent_sink *sink, uint64_t deadline_ms)
{
    struct kctx *k = sink->ctx;
    for (;;) {
        rd_kafka_poll(k->rk, 0);
        drain_spool(k);
        if (!k->inflight && !agent_spool_unsent(k->sp) && !rd_kafka_outq_len(k->rk))
            break;
        uint64_t now = sm_now_ms();
        if (now >= deadline_ms)
            break;
        uint64_t left = deadline_ms - now;
        rd_kafka_poll(k->rk, (int)(left < 50 ? left : 50));
    }
    agent_spool_sync(k->sp);
    struct agent_spool_stats ss;
    agent_spool_stats(k->sp, &ss);
    if (k->inflight || ss.records) {
        sm_log_warn("kafka sink: flush deadline: %" PRIu64 " records in flight, %" PRIu64
                    " in the spool %s (sent at the next start)", k->inflight, ss.records, agent_spool_dir(k->sp));
        return SM_ETIMEOUT;
    }
    return SM_OK;
}

static bool kafka_full(struct agent_sink *sink)
{
    struct kctx *k = sink->ctx;
    return agent_spool_would_overflow(k->sp, 64, 1024) && (k->down || agent_spool_unsent(k->sp));
}

static void kafka_stats(struct agent_sink *sink, struct agent_sink_stats *out)
{
    struct kctx *k = sink->ctx;
    *out = k->st;
    struct agent_spool_stats ss;
    agent_spool_stats(k->sp, &ss);
    out->spooled = ss.records;
    out->spool_bytes = ss.bytes;
    out->refused_full = k->st.refused_full;
}

static void kafka_close(struct agent_sink *sink)
{
    struct kctx *k = sink->ctx;
    if (!k)
        return;
    /* what librdkafka still holds goes (back) to the spool for the next start */
    k->closing = true;
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(k->rk, 0);
    for (int i = 0; i < 100 && k->inflight; i++)
        rd_kafka_poll(k->rk, 10);
    rd_kafka_destroy(k->rk);
    if (k->npurged) {
        struct agent_spool_rec *recs = sm_calloc(k->npurged, sizeof(*recs));
        size_t done = 0;
        if (recs) {
            for (size_t i = 0; i < k->npurged; i++)
                recs[i] = (struct agent_spool_rec){ 0, k->purged[i]->key, k->purged[i]->key_len,
                                                    k->purged[i]->data, k->purged[i]->len, k->purged[i]->last };
            done = agent_spool_prepend(k->sp, recs, k->npurged);
            sm_free(recs);
        }
        if (done < k->npurged)
            sm_log_err("kafka sink: %zu undelivered records lost at close (spool full or unwritable)",
                       k->npurged - done);
        for (size_t i = 0; i < k->npurged; i++) {
            if (i >= done) {
                k->st.failed++;
                agent_sink_report(k->sink, k->purged[i], SM_EIO);
            }
            agent_sink_msg_free(k->purged[i]);
        }
        sm_free(k->purged);
    }
    struct agent_spool_stats ss;
    agent_spool_stats(k->sp, &ss);
    if (ss.records)
        sm_log_info("kafka sink: %" PRIu64 " records (%" PRIu64 " bytes) left in the spool %s", ss.records,
                    ss.bytes, agent_spool_dir(k->sp));
    agent_spool_close(k->sp);
    sm_free(k->topic);
    sm_free(k);
    sink->ctx = NULL;
}

uint64_t agent_sink_kafka_spooled_total(struct agent_sink *sink)
{
    struct kctx *k = sink->ctx;
    return k ? k->spooled_total : 0;
}

const struct agent_sink_ops agent_sink_kafka_ops = {
    .name = "kafka",
    .open = kafka_open,
    .write = kafka_write,
    .poll = kafka_poll,
    .flush = kafka_flush,
    .full = kafka_full,
    .stats = kafka_stats,
    .close = kafka_close,
};
